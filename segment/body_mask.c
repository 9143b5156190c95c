/* Body mask on the working grid: air threshold, per-slice largest component after a small
 * erosion (detaches the table and cushions), dilated back and hole-filled; above-air
 * voxels inside the slice's convex hull are added back (ribs in lungs cut by the field). */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>

/* Air/body boundary: halfway between air (-1000) and fat (-100). */
#define BODY_HU -500

/* Keeps the largest 8-connected component of slice m (nx x ny); lab/queue are scratch. */
static void keep_largest(uint8_t *m, size_t nx, size_t ny, uint32_t *lab, size_t *queue)
{
    const size_t plane = nx * ny;
    for (size_t s = 0; s < plane; s++)
        lab[s] = 0;
    uint32_t next = 0, best = 0;
    size_t best_area = 0;
    for (size_t s = 0; s < plane; s++) {
        if (!m[s] || lab[s])
            continue;
        next++;
        size_t qh = 0, qt = 0;
        lab[s] = next;
        queue[qt++] = s;
        while (qh < qt) {
            size_t u = queue[qh++];
            long ui = (long)(u % nx), uj = (long)(u / nx);
            for (long dj = -1; dj <= 1; dj++)
                for (long di = -1; di <= 1; di++) {
                    long ii = ui + di, jj = uj + dj;
                    if (ii < 0 || jj < 0 || ii >= (long)nx || jj >= (long)ny)
                        continue;
                    size_t w = (size_t)ii + nx * (size_t)jj;
                    if (m[w] && !lab[w]) {
                        lab[w] = next;
                        queue[qt++] = w;
                    }
                }
        }
        if (qt > best_area) {
            best_area = qt;
            best = next;
        }
    }
    for (size_t s = 0; s < plane; s++)
        m[s] = best && lab[s] == best;
}

/* Convex envelope of a function sampled at rows lo..hi (rows without a value, NAN, are
 * skipped): lower (convex minorant) when lower, else upper (concave majorant); written
 * back into f over lo..hi, linear between hull vertices. idx is scratch (hi-lo+1). */
static void envelope(double *f, long lo, long hi, bool lower, long *idx)
{
    long m = 0;
    for (long j = lo; j <= hi; j++) {
        if (isnan(f[j]))
            continue;
        while (m >= 2) {
            long a = idx[m - 2], b = idx[m - 1];
            /* cross product of (b-a, f[b]-f[a]) and (j-a, f[j]-f[a]) */
            double cr = (double)(b - a) * (f[j] - f[a]) - (f[b] - f[a]) * (double)(j - a);
            if (lower ? cr <= 0 : cr >= 0)
                m--;
            else
                break;
        }
        idx[m++] = j;
    }
    for (long q = 0; q + 1 < m; q++) {
        long a = idx[q], b = idx[q + 1];
        for (long j = a + 1; j < b; j++)
            f[j] = f[a] + (f[b] - f[a]) * (double)(j - a) / (double)(b - a);
    }
}

/* Adds to slice m the above-air voxels of thr inside the convex hull of m. Where the field
 * of view cuts the chest, the lungs reach its edge: they are then no hole of the body, and
 * the ribs next to the spine sit in air connected to the outside, as islands the largest
 * component drops. Inside the body's hull they are body again (as they are in a whole
 * chest, where the lungs are filled as holes). */
static void hull_add(uint8_t *m, const uint8_t *thr, size_t nx, size_t ny, double *lo_x,
                     double *hi_x, long *idx)
{
    long j0 = -1, j1 = -1;
    for (size_t j = 0; j < ny; j++) {
        long a = -1, b = -1;
        for (size_t i = 0; i < nx; i++)
            if (m[i + nx * j]) {
                if (a < 0) a = (long)i;
                b = (long)i;
            }
        lo_x[j] = a < 0 ? NAN : (double)a;
        hi_x[j] = a < 0 ? NAN : (double)b;
        if (a >= 0) {
            if (j0 < 0) j0 = (long)j;
            j1 = (long)j;
        }
    }
    if (j0 < 0)
        return;
    envelope(lo_x, j0, j1, true, idx);
    envelope(hi_x, j0, j1, false, idx);
    for (long j = j0; j <= j1; j++) {
        long a = (long)ceil(lo_x[j] - 1e-9), b = (long)floor(hi_x[j] + 1e-9);
        for (long i = a < 0 ? 0 : a; i <= b && i < (long)nx; i++)
            if (thr[(size_t)i + nx * (size_t)j])
                m[(size_t)i + nx * (size_t)j] = 1;
    }
}

bool sm_seg_body_mask(SmError **error, const SegGrid *grid, uint8_t *body)
{
    const size_t n = grid->n, nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const size_t plane = nx * ny;
    const int16_t *hu = grid->hu;
    int nt = sm_omp_threads();
    size_t scratch;
    if (!sm_size_mul(plane, (size_t)nt, &scratch)) {
        sm_error_set(error, SM_ERR_NOMEM, "body mask: size overflows");
        return false;
    }
    uint8_t *thr = malloc(n);
    uint32_t *lab_all = malloc(scratch * sizeof *lab_all);
    size_t *q_all = malloc(scratch * sizeof *q_all);
    if (!thr || !lab_all || !q_all) {
        free(thr);
        free(lab_all);
        free(q_all);
        sm_error_set(error, SM_ERR_NOMEM, "body mask: out of memory");
        return false;
    }
#pragma omp parallel for default(none) shared(hu, thr, body) firstprivate(n) schedule(static)
    for (size_t v = 0; v < n; v++) {
        uint8_t t = hu[v] != SEG_OUTSIDE && hu[v] > BODY_HU;
        thr[v] = t;
        body[v] = t;
    }
    /* erosion radius 4 mm in-plane */
    int r = (int)(4.0 / grid->g + 0.5);
    if (r < 1)
        r = 1;
    const int rr[3] = {r, r, 0};
    bool ok = sm_seg_box_morph(error, body, grid->dims, rr, true);
    if (ok) {
#pragma omp parallel for default(none) shared(body, lab_all, q_all) \
    firstprivate(nx, ny, nz, plane) schedule(dynamic, 4)
        for (size_t k = 0; k < nz; k++) {
            int t = sm_seg_thread_id();
            keep_largest(body + k * plane, nx, ny, lab_all + (size_t)t * plane,
                         q_all + (size_t)t * plane);
        }
        ok = sm_seg_box_morph(error, body, grid->dims, rr, false);
    }
    if (ok) {
#pragma omp parallel for default(none) shared(thr, body) firstprivate(n) schedule(static)
        for (size_t v = 0; v < n; v++)
            body[v] = body[v] && thr[v];
        ok = sm_seg_holes_fill_2d(error, body, grid->dims, plane, 1);
    }
    if (ok) {
        /* scratch per thread: two row envelopes and the hull's row indices */
        double *env = malloc((size_t)nt * 2 * ny * sizeof *env);
        long *idx = malloc((size_t)nt * ny * sizeof *idx);
        if (!env || !idx) {
            free(env);
            free(idx);
            free(q_all);
            free(lab_all);
            free(thr);
            sm_error_set(error, SM_ERR_NOMEM, "body mask: out of memory");
            return false;
        }
#pragma omp parallel for default(none) shared(body, thr, env, idx)     firstprivate(nx, ny, nz, plane) schedule(dynamic, 4)
        for (size_t k = 0; k < nz; k++) {
            int t = sm_seg_thread_id();
            hull_add(body + k * plane, thr + k * plane, nx, ny, env + (size_t)t * 2 * ny,
                     env + (size_t)t * 2 * ny + ny, idx + (size_t)t * ny);
        }
        free(env);
        free(idx);
    }
    free(q_all);
    free(lab_all);
    free(thr);
    return ok;
}
