/* Body mask on the working grid: air threshold, per-slice largest component after a small
 * erosion (detaches the table and cushions), dilated back and hole-filled. */
#include "segment_internal.h"

#include <stdlib.h>
#include <string.h>

/* Air/body boundary: halfway between air (-1000) and fat (-100). */
#define BODY_HU -500

bool sm_seg_body_mask(SmError **error, const SegGrid *grid, uint8_t *body)
{
    const size_t n = grid->n, nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const int16_t *hu = grid->hu;
    uint8_t *thr = malloc(n);
    uint32_t *lab = malloc(nx * ny * sizeof *lab);
    uint32_t *area = NULL;
    if (!thr || !lab) {
        free(thr);
        free(lab);
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
    const size_t sdims[3] = {nx, ny, 1};
    for (size_t k = 0; ok && k < nz; k++) {
        uint8_t *m = body + k * nx * ny;
        uint32_t nc = 0;
        if (!sm_seg_components_label(error, m, sdims, 26, lab, &nc)) {
            ok = false;
            break;
        }
        if (nc == 0)
            continue;
        uint32_t *a2 = realloc(area, (nc + 1) * sizeof *area);
        if (!a2) {
            sm_error_set(error, SM_ERR_NOMEM, "body mask: out of memory");
            ok = false;
            break;
        }
        area = a2;
        memset(area, 0, (nc + 1) * sizeof *area);
        for (size_t s = 0; s < nx * ny; s++)
            area[lab[s]]++;
        uint32_t best = 1;
        for (uint32_t c = 2; c <= nc; c++)
            if (area[c] > area[best])
                best = c;
        for (size_t s = 0; s < nx * ny; s++)
            m[s] = lab[s] == best;
    }
    if (ok)
        ok = sm_seg_box_morph(error, body, grid->dims, rr, false);
    if (ok) {
#pragma omp parallel for default(none) shared(thr, body) firstprivate(n) schedule(static)
        for (size_t v = 0; v < n; v++)
            body[v] = body[v] && thr[v];
        ok = sm_seg_holes_fill_2d(error, body, grid->dims, nx * ny, 1);
    }
    free(area);
    free(lab);
    free(thr);
    return ok;
}
