/* Binary morphology on U8 masks: deterministic connected components, per-slice hole
 * filling and separable box dilation/erosion. */
#include "segment_internal.h"

#include <stdlib.h>
#include <string.h>

int sm_seg_thread_id(void)
{
    return sm_omp_thread_num();
}

static uint32_t uf_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void uf_union(uint32_t *parent, uint32_t a, uint32_t b)
{
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* In-plane neighbours before (i, j) in raster order for the connectivity (the 2D part of
 * 6/18/26: 4-connected for 6, 8-connected otherwise). */
static bool in_plane_diag(int connectivity)
{
    return connectivity != 6;
}

/* Whether (di, dj) on the slice below is a neighbour for the connectivity. */
static bool below_neighbour(int connectivity, int di, int dj)
{
    int manhattan = abs(di) + abs(dj) + 1;
    if (connectivity == 6)
        return manhattan == 1;
    if (connectivity == 18)
        return manhattan <= 2;
    return true;
}

/* Connected components in three steps: (1) every slice labelled on its own, in parallel,
 * with provisional labels from a range reserved for that slice (so the union-find entries
 * of different slices never mix); (2) a serial merge across each pair of adjacent slices;
 * (3) final numbering in raster order of each component's first voxel. The result depends
 * only on the components, not on the union order, hence not on the thread count. */
bool sm_seg_components_label(SmError **error, const uint8_t *mask, const size_t dims[3],
                             int connectivity, uint32_t *labels, uint32_t *count)
{
    size_t n;
    if (!sm_size_voxels(dims, 1, &n)) {
        sm_error_set(error, SM_ERR_NOMEM, "component labelling: volume size overflows");
        return false;
    }
    if (n >= UINT32_MAX) {
        sm_error_set(error, SM_ERR_UNSUPPORTED, "component labelling: more than 2^32 voxels");
        return false;
    }
    const size_t nx = dims[0], ny = dims[1], nz = dims[2], plane = nx * ny;
    /* prepare: foreground voxels per slice -> each slice's provisional label range */
    size_t *base = malloc((nz + 1) * sizeof *base);
    if (!base) {
        sm_error_set(error, SM_ERR_NOMEM, "component labelling: out of memory");
        return false;
    }
#pragma omp parallel for default(none) shared(mask, base) firstprivate(nz, plane) \
    schedule(static)
    for (size_t k = 0; k < nz; k++) {
        size_t c = 0;
        const uint8_t *m = mask + k * plane;
        for (size_t q = 0; q < plane; q++)
            c += m[q] != 0;
        base[k + 1] = c;
    }
    base[0] = 0;
    for (size_t k = 0; k < nz; k++)
        base[k + 1] += base[k];
    size_t nfg = base[nz];
    uint32_t *parent = malloc((nfg + 1) * sizeof *parent);
    if (!parent) {
        free(base);
        sm_error_set(error, SM_ERR_NOMEM, "component labelling: out of memory");
        return false;
    }
    parent[0] = 0;
    const bool diag = in_plane_diag(connectivity);
    /* run: per-slice 2D labelling */
#pragma omp parallel for default(none) shared(mask, labels, parent, base) \
    firstprivate(nx, ny, nz, diag) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        uint32_t next = (uint32_t)base[k] + 1;
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                size_t v = i + nx * (j + ny * k);
                if (!mask[v]) {
                    labels[v] = 0;
                    continue;
                }
                uint32_t best = 0;
                /* in-plane neighbours before v: (i-1,j), and (i-1..i+1, j-1) */
                const long nb[4][2] = {{-1, 0}, {-1, -1}, {0, -1}, {1, -1}};
                for (int q = 0; q < 4; q++) {
                    long di = nb[q][0], dj = nb[q][1];
                    if (!diag && di != 0 && dj != 0)
                        continue;
                    if ((di < 0 && i == 0) || (di > 0 && i + 1 >= nx) || (dj < 0 && j == 0))
                        continue;
                    uint32_t lu = labels[v + (size_t)((long)nx * dj + di)];
                    if (!lu)
                        continue;
                    if (!best)
                        best = lu;
                    else if (lu != best)
                        uf_union(parent, best, lu);
                }
                if (!best) {
                    parent[next] = next;
                    best = next++;
                }
                labels[v] = best;
            }
    }
    /* finish: merge each slice with the one below (serial), then number */
    for (size_t k = 1; k < nz; k++)
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                size_t v = i + nx * (j + ny * k);
                if (!labels[v])
                    continue;
                for (int dj = -1; dj <= 1; dj++) {
                    if ((dj < 0 && j == 0) || (dj > 0 && j + 1 >= ny))
                        continue;
                    for (int di = -1; di <= 1; di++) {
                        if ((di < 0 && i == 0) || (di > 0 && i + 1 >= nx))
                            continue;
                        if (!below_neighbour(connectivity, di, dj))
                            continue;
                        uint32_t lu = labels[(size_t)((long)v - (long)plane +
                                                      (long)nx * dj + di)];
                        if (lu)
                            uf_union(parent, labels[v], lu);
                    }
                }
            }
    free(base);
    uint32_t *final = calloc(nfg + 1, sizeof *final);
    if (!final) {
        free(parent);
        sm_error_set(error, SM_ERR_NOMEM, "component labelling: out of memory");
        return false;
    }
    uint32_t nc = 0;
    for (size_t v = 0; v < n; v++) {
        if (!labels[v])
            continue;
        uint32_t r = uf_find(parent, labels[v]);
        if (!final[r])
            final[r] = ++nc;
        labels[v] = final[r];
    }
    free(final);
    free(parent);
    *count = nc;
    return true;
}

/* Breadth-first 4-connected flood over the background (m == 0) of one slice: pops
 * queue[qh..qt), marks unseen background neighbours with `mark` and appends them; returns
 * the new queue end (the flooded region is queue[..end)). */
static size_t flood4(const uint8_t *m, uint8_t *seen, size_t *queue, size_t qh, size_t qt,
                     size_t nx, size_t ny, uint8_t mark)
{
    while (qh < qt) {
        size_t v = queue[qh++];
        size_t i = v % nx, j = v / nx;
        size_t nb[4];
        int c = 0;
        if (i > 0) nb[c++] = v - 1;
        if (i + 1 < nx) nb[c++] = v + 1;
        if (j > 0) nb[c++] = v - nx;
        if (j + 1 < ny) nb[c++] = v + nx;
        for (int q = 0; q < c; q++)
            if (!m[nb[q]] && !seen[nb[q]]) {
                seen[nb[q]] = mark;
                queue[qt++] = nb[q];
            }
    }
    return qt;
}

bool sm_seg_holes_fill_2d(SmError **error, uint8_t *mask, const size_t dims[3],
                          size_t max_area, uint8_t fill_value)
{
    const size_t nx = dims[0], ny = dims[1], nz = dims[2];
    size_t plane;
    if (!sm_size_mul(nx, ny, &plane)) {
        sm_error_set(error, SM_ERR_NOMEM, "hole filling: slice size overflows");
        return false;
    }
    int nt = sm_omp_threads();
    size_t scratch_n;
    if (!sm_size_mul(plane, (size_t)nt, &scratch_n)) {
        sm_error_set(error, SM_ERR_NOMEM, "hole filling: scratch size overflows");
        return false;
    }
    uint8_t *seen_all = malloc(scratch_n);
    size_t *queue_all = malloc(scratch_n * sizeof *queue_all);
    if (!seen_all || !queue_all) {
        free(seen_all);
        free(queue_all);
        sm_error_set(error, SM_ERR_NOMEM, "hole filling: out of memory");
        return false;
    }
#pragma omp parallel for default(none) shared(mask, seen_all, queue_all) \
    firstprivate(nx, ny, nz, plane, max_area, fill_value) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        int t = sm_seg_thread_id();
        uint8_t *seen = seen_all + (size_t)t * plane;
        size_t *queue = queue_all + (size_t)t * plane;
        uint8_t *m = mask + k * plane;
        memset(seen, 0, plane);
        /* 1 = outside (reached from the border), 2 = visited hole */
        size_t qh = 0, qt = 0;
        for (size_t i = 0; i < nx; i++) {
            size_t a = i, b = i + nx * (ny - 1);
            if (!m[a] && !seen[a]) { seen[a] = 1; queue[qt++] = a; }
            if (!m[b] && !seen[b]) { seen[b] = 1; queue[qt++] = b; }
        }
        for (size_t j = 0; j < ny; j++) {
            size_t a = nx * j, b = nx * j + nx - 1;
            if (!m[a] && !seen[a]) { seen[a] = 1; queue[qt++] = a; }
            if (!m[b] && !seen[b]) { seen[b] = 1; queue[qt++] = b; }
        }
        qt = flood4(m, seen, queue, qh, qt, nx, ny, 1);
        for (size_t s = 0; s < plane; s++) {
            if (m[s] || seen[s])
                continue;
            /* flood this hole, then fill it if small enough */
            qh = 0;
            qt = 0;
            seen[s] = 2;
            queue[qt++] = s;
            qt = flood4(m, seen, queue, qh, qt, nx, ny, 2);
            if (qt <= max_area)
                for (size_t q = 0; q < qt; q++)
                    m[queue[q]] = fill_value;
        }
    }
    free(seen_all);
    free(queue_all);
    return true;
}

bool sm_seg_box_morph(SmError **error, uint8_t *mask, const size_t dims[3], const int r[3],
                      bool erode)
{
    size_t maxd = dims[0];
    if (dims[1] > maxd) maxd = dims[1];
    if (dims[2] > maxd) maxd = dims[2];
    int nt = sm_omp_threads();
    size_t per = 2 * maxd + 2;
    size_t total;
    if (!sm_size_mul(per, (size_t)nt, &total) || !sm_size_mul(total, sizeof(uint32_t), &total)) {
        sm_error_set(error, SM_ERR_NOMEM, "box morphology: scratch size overflows");
        return false;
    }
    uint32_t *scratch = malloc(total);
    if (!scratch) {
        sm_error_set(error, SM_ERR_NOMEM, "box morphology: out of memory");
        return false;
    }
    for (int axis = 0; axis < 3; axis++) {
        const long rad = r[axis];
        if (rad <= 0)
            continue;
        const size_t len = dims[axis];
        size_t stride = 1;
        for (int a = 0; a < axis; a++)
            stride *= dims[a];
        const size_t nlines = dims[0] * dims[1] * dims[2] / len;
        const size_t d0 = dims[0], d1 = dims[1];
        const int ax = axis;
        const uint8_t target = erode ? 0 : 1; /* value that spreads */
#pragma omp parallel for default(none) shared(mask, scratch) \
    firstprivate(len, stride, nlines, d0, d1, ax, rad, per, target, erode) schedule(static)
        for (size_t line = 0; line < nlines; line++) {
            uint32_t *pre = scratch + (size_t)sm_seg_thread_id() * per;
            size_t base;
            if (ax == 0)
                base = line * len;
            else if (ax == 1)
                base = (line % d0) + (line / d0) * d0 * len;
            else
                base = line;
            (void)d1;
            /* prefix count of voxels equal to the spreading value */
            pre[0] = 0;
            for (size_t t = 0; t < len; t++) {
                uint8_t v = mask[base + t * stride] ? 1 : 0;
                pre[t + 1] = pre[t] + (v == target);
            }
            for (size_t t = 0; t < len; t++) {
                long lo = (long)t - rad, hi = (long)t + rad;
                if (lo < 0) lo = 0;
                if (hi > (long)len - 1) hi = (long)len - 1;
                uint32_t c = pre[hi + 1] - pre[lo];
                size_t v = base + t * stride;
                if (erode) {
                    /* outside the volume counts as foreground (no border erosion) */
                    mask[v] = (c == 0 && mask[v]) ? 1 : 0;
                } else {
                    mask[v] = (c > 0) ? 1 : 0;
                }
            }
        }
    }
    free(scratch);
    return true;
}
