/* Body mask on the working grid: air threshold, per-slice largest component after a small
 * erosion (detaches the table and cushions), dilated back and hole-filled. */
#include "segment_internal.h"

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
    free(q_all);
    free(lab_all);
    free(thr);
    return ok;
}
