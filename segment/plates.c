/* End-plate slices on thick-slice CT: a body's first or last slice that holds a whole end
 * plate (the plate nearly parallel to the slices) is either inside the body, its centre in
 * the cortex or the marrow behind it, or the plate's outer fringe, its centre in the disc
 * (or the soft tissue at the column's end) in front of it. Along the axis the two read
 * alike (200-450 HU with marrow behind and disc in front; docs/segmentation.md, step 7).
 * Across the slice they differ: a slice through the body crosses the body's walls, whose
 * cortex it samples at full contrast, as every inner slice does; a slice in front of the
 * plate meets the walls only in the same fringe as the plate. So the slice's ring (the 90th
 * percentile of the HU over the outer band of its body section) is compared with the inner
 * slices' ring, both over the level beyond the plate: a slice whose ring keeps less than
 * PLATE_RING_KEEP of the inner contrast is the fringe and leaves the body. On a CT whose
 * slice profile spans the slice (real scanners) the ring's share is the slice's share of
 * body, and the rule keeps the slices of which the body holds most. */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PLATE_MIN_SPACING_MM 1.5 /* thinner slices resolve the plate: not judged */
#define PLATE_WHOLE 0.3          /* an end section of at least this of the median section */
#define PLATE_INNER 0.6          /* inner slices for the reference ring: full sections */
#define PLATE_STRAY 0.05         /* stray bits of a body beyond its end plate */
#define PLATE_RING_KEEP 0.7      /* ring contrast kept by a slice through the body */
#define PLATE_MIN_CONTRAST 100.0 /* inner ring over the level beyond, HU: else not judged */
#define RING_ERODE 3             /* outer band: the section less its 3-voxel erosion, */
#define RING_DILATE 1            /* plus a 1-voxel rim outside it */
#define N_LABELS 29

typedef struct Box {
    long i0, i1, j0, j1; /* inclusive; i0 > i1 when empty */
} Box;

static int cmp_i16(const void *a, const void *b)
{
    int16_t x = *(const int16_t *)a, y = *(const int16_t *)b;
    return (x > y) - (x < y);
}

/* 4-connected binary erosion (grow = false) or dilation (true) of an nx x ny mask. */
static void morph2(const uint8_t *in, uint8_t *out, long nx, long ny, bool grow)
{
    for (long j = 0; j < ny; j++)
        for (long i = 0; i < nx; i++) {
            uint8_t c = in[i + nx * j];
            uint8_t l = i > 0 ? in[i - 1 + nx * j] : 0, r = i + 1 < nx ? in[i + 1 + nx * j] : 0;
            uint8_t u = j > 0 ? in[i + nx * (j - 1)] : 0, d = j + 1 < ny ? in[i + nx * (j + 1)] : 0;
            out[i + nx * j] = grow ? (c | l | r | u | d) : (c & l & r & u & d);
        }
}

/* Body section of label lb on slice k inside box b (grown by a margin) into m (nx x ny). */
static void section(const SmVolume *lab, const SmVolume *sub, int lb, size_t k, const Box *b,
                    long m0, uint8_t *m, long nx, long ny)
{
    const uint8_t *L = lab->data, *S = sub->data;
    const size_t *d = lab->dims;
    memset(m, 0, (size_t)(nx * ny));
    for (long j = b->j0; j <= b->j1; j++)
        for (long i = b->i0; i <= b->i1; i++) {
            size_t v = (size_t)i + d[0] * ((size_t)j + d[1] * k);
            if (L[v] == lb && S[v] == SM_SUB_BODY)
                m[(i - b->i0 + m0) + nx * (j - b->j0 + m0)] = 1;
        }
}

/* 90th percentile of the CT over the outer band of the body section of label lb on slice
 * k (NAN when the band is empty). buf: 4 masks of nx x ny; vals: nx * ny values. */
static double ring_p90(const SmVolume *ct, const SmVolume *lab, const SmVolume *sub, int lb,
                       size_t k, const Box *b, uint8_t *buf, int16_t *vals)
{
    const long m0 = RING_ERODE + RING_DILATE + 1;
    long nx = b->i1 - b->i0 + 1 + 2 * m0, ny = b->j1 - b->j0 + 1 + 2 * m0;
    size_t nn = (size_t)(nx * ny);
    uint8_t *m = buf, *e = buf + nn, *t = buf + 2 * nn, *g = buf + 3 * nn;
    section(lab, sub, lb, k, b, m0, m, nx, ny);
    memcpy(e, m, nn);
    for (int it = 0; it < RING_ERODE; it++) {
        morph2(e, t, nx, ny, false);
        memcpy(e, t, nn);
    }
    memcpy(g, m, nn);
    for (int it = 0; it < RING_DILATE; it++) {
        morph2(g, t, nx, ny, true);
        memcpy(g, t, nn);
    }
    const int16_t *hu = ct->data;
    const size_t *d = ct->dims;
    size_t nv = 0;
    for (long y = 0; y < ny; y++)
        for (long x = 0; x < nx; x++) {
            if (!g[x + nx * y] || e[x + nx * y])
                continue;
            long i = x - m0 + b->i0, j = y - m0 + b->j0;
            if (i < 0 || j < 0 || i >= (long)d[0] || j >= (long)d[1])
                continue;
            vals[nv++] = hu[(size_t)i + d[0] * ((size_t)j + d[1] * k)];
        }
    if (nv == 0)
        return NAN;
    qsort(vals, nv, sizeof *vals, cmp_i16);
    return vals[(size_t)(0.9 * (double)(nv - 1))];
}

bool sm_seg_trim_plate_slices(SmError **error, const SmVolume *ct, SmVolume *lab, SmVolume *sub,
                              double bone_lo, SmStrList *notes, SegTrimmed trimmed[29])
{
    memset(trimmed, 0, N_LABELS * sizeof *trimmed);
    if (ct->type != SM_VOXEL_I16 || lab->type != SM_VOXEL_U8 || sub->type != SM_VOXEL_U8 ||
        ct->spacing[2] < PLATE_MIN_SPACING_MM)
        return true;
    const size_t *d = ct->dims;
    const size_t nz = d[2];
    size_t *cnt = calloc(N_LABELS * nz, sizeof *cnt);
    Box *box = malloc(N_LABELS * nz * sizeof *box);
    if (!cnt || !box) {
        free(cnt), free(box);
        sm_error_set(error, SM_ERR_NOMEM, "end-plate slices: out of memory");
        return false;
    }
    const uint8_t *L = lab->data, *S = sub->data;
    /* prepare: body voxels per label and slice, with their in-plane box */
#pragma omp parallel for default(none) shared(L, S, d, cnt, box) firstprivate(nz) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        for (int l = 0; l < N_LABELS; l++)
            box[l * nz + k] = (Box){(long)d[0], -1, (long)d[1], -1};
        for (size_t j = 0; j < d[1]; j++)
            for (size_t i = 0; i < d[0]; i++) {
                size_t v = i + d[0] * (j + d[1] * k);
                int l = L[v];
                if (l == 0 || l >= N_LABELS || S[v] != SM_SUB_BODY)
                    continue;
                cnt[l * nz + k]++;
                Box *b = &box[l * nz + k];
                if ((long)i < b->i0) b->i0 = (long)i;
                if ((long)i > b->i1) b->i1 = (long)i;
                if ((long)j < b->j0) b->j0 = (long)j;
                if ((long)j > b->j1) b->j1 = (long)j;
            }
    }
    /* run: per label (serial; a few slices each) */
    const long m0 = RING_ERODE + RING_DILATE + 1;
    size_t cap = (d[0] + 2 * (size_t)m0) * (d[1] + 2 * (size_t)m0);
    uint8_t *buf = malloc(4 * cap);
    int16_t *vals = malloc(cap * sizeof *vals);
    double *sorted = malloc(nz * sizeof *sorted);
    double *rings = malloc(nz * sizeof *rings);
    if (!buf || !vals || !sorted || !rings) {
        free(buf), free(vals), free(sorted), free(rings), free(cnt), free(box);
        sm_error_set(error, SM_ERR_NOMEM, "end-plate slices: out of memory");
        return false;
    }
    const int16_t *hu = ct->data;
    uint8_t *Lw = lab->data, *Sw = sub->data;
    for (int l = 1; l < N_LABELS; l++) {
        if (l == SM_VERSE_SACRUM || l == 27)
            continue; /* the sacrum's body is S1's top only; its lower end is no plate */
        const size_t *c = cnt + (size_t)l * nz;
        size_t ka = nz, kb = 0, ns = 0;
        for (size_t k = 0; k < nz; k++)
            if (c[k] > 0) {
                if (ka == nz) ka = k;
                kb = k;
                sorted[ns++] = (double)c[k];
            }
        if (ns < 4 || kb - ka + 1 != ns)
            continue; /* fewer than 4 slices, or a body in pieces: not judged */
        double med = sm_median_inplace(sorted, ns);
        /* the end slices: the outermost holding more than stray bits (PLATE_STRAY of the
         * median section) */
        long kend[2] = {(long)ka, (long)kb};
        while ((double)c[kend[0]] < PLATE_STRAY * med && kend[0] < (long)kb)
            kend[0]++;
        while ((double)c[kend[1]] < PLATE_STRAY * med && kend[1] > kend[0])
            kend[1]--;
        size_t nr = 0;
        for (long k = kend[0] + 1; k < kend[1]; k++)
            if ((double)c[k] >= PLATE_INNER * med) {
                double r = ring_p90(ct, lab, sub, l, (size_t)k, &box[(size_t)l * nz + (size_t)k],
                                    buf, vals);
                if (isfinite(r))
                    rings[nr++] = r;
            }
        if (nr < 2)
            continue;
        double rref = sm_median_inplace(rings, nr);
        for (int end = 0; end < 2; end++) {
            const long st = end ? -1 : 1; /* inward */
            const size_t ke = (size_t)kend[end];
            const long kx = kend[end] - st; /* the slice beyond the plate */
            if (kx < 0 || kx >= (long)nz || (double)c[ke] < PLATE_WHOLE * med)
                continue;
            const Box *b = &box[(size_t)l * nz + ke];
            /* level beyond: median CT over the section's footprint on the next slice */
            size_t nv = 0;
            for (long j = b->j0; j <= b->j1; j++)
                for (long i = b->i0; i <= b->i1; i++) {
                    size_t v = (size_t)i + d[0] * ((size_t)j + d[1] * ke);
                    if (L[v] == l && S[v] == SM_SUB_BODY)
                        vals[nv++] = hu[(size_t)i + d[0] * ((size_t)j + d[1] * (size_t)kx)];
                }
            if (nv == 0)
                continue;
            qsort(vals, nv, sizeof *vals, cmp_i16);
            double beyond = vals[nv / 2];
            if (!(beyond < bone_lo) || !(rref - beyond >= PLATE_MIN_CONTRAST))
                continue; /* bone beyond (a disc thinner than a slice), or no contrast */
            double r = ring_p90(ct, lab, sub, l, ke, b, buf, vals);
            double share = (r - beyond) / (rref - beyond);
            if (!(share < PLATE_RING_KEEP))
                continue;
            /* finish: the fringe leaves the body (disc where the slice beyond is disc) */
            SegTrimmed *t = &trimmed[l];
            double si = 0, sj = 0;
            size_t n0 = t->n;
            for (long j = b->j0; j <= b->j1; j++)
                for (long i = b->i0; i <= b->i1; i++) {
                    size_t v = (size_t)i + d[0] * ((size_t)j + d[1] * ke);
                    if (Lw[v] != l || Sw[v] != SM_SUB_BODY)
                        continue;
                    size_t vx = (size_t)i + d[0] * ((size_t)j + d[1] * (size_t)kx);
                    Lw[v] = 0;
                    Sw[v] = Sw[vx] == SM_SUB_DISC ? SM_SUB_DISC : SM_SUB_NONE;
                    t->n++;
                    t->si += (uint64_t)i, t->sj += (uint64_t)j, t->sk += (uint64_t)ke;
                    si += (double)i, sj += (double)j;
                }
            /* stray bits beyond the fringe go with it */
            for (long k = kx; k >= (long)ka && k <= (long)kb; k -= st) {
                const Box *bs = &box[(size_t)l * nz + (size_t)k];
                for (long j = bs->j0; j <= bs->j1; j++)
                    for (long i = bs->i0; i <= bs->i1; i++) {
                        size_t v = (size_t)i + d[0] * ((size_t)j + d[1] * (size_t)k);
                        if (Lw[v] != l || Sw[v] != SM_SUB_BODY)
                            continue;
                        Lw[v] = 0;
                        Sw[v] = SM_SUB_NONE;
                        t->n++;
                        t->si += (uint64_t)i, t->sj += (uint64_t)j, t->sk += (uint64_t)k;
                    }
            }
            size_t nt = t->n - n0;
            double p[3];
            for (int a = 0; a < 3; a++)
                p[a] = ct->affine[a][0] * si / (double)nt + ct->affine[a][1] * sj / (double)nt +
                       ct->affine[a][2] * (double)ke + ct->affine[a][3];
            sm_strlist_add(notes,
                           "%s: end slice at z %.1f mm left the body (%zu voxels): its wall "
                           "ring reads %.0f HU against %.0f on the inner slices over %.0f "
                           "beyond (share %.2f < %.2f), the end plate's outer fringe",
                           sm_seg_level_name(l), p[2], nt, r, rref, beyond, share,
                           PLATE_RING_KEEP);
        }
    }
    free(buf), free(vals), free(sorted), free(rings), free(cnt), free(box);
    return true;
}
