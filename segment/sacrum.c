/* Sacrum: a segment is sacral when, on slices of its upper part, the bone connected to its body
 * spreads far laterally on both sides (alae joined to the ilia at the sacroiliac joints). */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>

#define SACRAL_SPREAD_MM 80.0
/* bone area per side 45-90 mm lateral of the canal: alae + ilia are massive, rib
 * cross-sections are thin strips */
#define SACRAL_MASS_MM2 700.0

/* Lateral reach (mm from the canal centre, smaller of the two sides) of the filled bone
 * connected to (x, y) on slice k. */
static double lateral_spread(const SegGrid *grid, const uint8_t *filled, size_t k, double x,
                             double y, double cx, uint8_t *seen, size_t *queue)
{
    const size_t nx = grid->dims[0], ny = grid->dims[1];
    const uint8_t *m = filled + k * nx * ny;
    long i0 = lround((x - grid->origin[0]) / grid->g), j0 = lround((y - grid->origin[1]) / grid->g);
    if (i0 < 1 || j0 < 1 || i0 >= (long)nx - 1 || j0 >= (long)ny - 1)
        return 0;
    for (size_t s = 0; s < nx * ny; s++)
        seen[s] = 0;
    size_t qh = 0, qt = 0;
    size_t start = (size_t)i0 + nx * (size_t)j0;
    seen[start] = 1;
    queue[qt++] = start;
    double reach_l = 0, reach_r = 0;
    while (qh < qt) {
        size_t u = queue[qh++];
        long ui = (long)(u % nx), uj = (long)(u / nx);
        double dx = grid->origin[0] + grid->g * (double)ui - cx;
        if (dx > reach_l) reach_l = dx;
        if (-dx > reach_r) reach_r = -dx;
        for (long dj = -1; dj <= 1; dj++)
            for (long di = -1; di <= 1; di++) {
                long ii = ui + di, jj = uj + dj;
                if (ii < 1 || jj < 1 || ii >= (long)nx - 1 || jj >= (long)ny - 1)
                    continue;
                size_t w = (size_t)ii + nx * (size_t)jj;
                if (seen[w])
                    continue;
                if (!m[w])
                    continue;
                seen[w] = 1;
                queue[qt++] = w;
            }
    }
    /* both alae must reach the ilia: the smaller side decides */
    return reach_l < reach_r ? reach_l : reach_r;
}

/* Smaller of the left and right filled-bone areas (mm^2) in the band 45-90 mm lateral of
 * the canal, between 40 mm anterior and 60 mm posterior of it, on slice k. */
static double lateral_mass(const SegGrid *grid, const uint8_t *filled, size_t k, double cx,
                           double cy)
{
    const double g = grid->g;
    size_t nl = 0, nr = 0;
    for (size_t j = 0; j < grid->dims[1]; j++) {
        double dy = grid->origin[1] + g * (double)j - cy;
        if (dy < -40.0 || dy > 60.0)
            continue;
        for (size_t i = 0; i < grid->dims[0]; i++) {
            double dx = grid->origin[0] + g * (double)i - cx;
            if (fabs(dx) < 45.0 || fabs(dx) > 90.0)
                continue;
            if (filled[seg_idx(grid->dims, i, j, k)]) {
                if (dx > 0) nl++;
                else nr++;
            }
        }
    }
    return (double)(nl < nr ? nl : nr) * g * g;
}

bool sm_seg_sacrum_find(SmError **error, const SegGrid *grid, const uint8_t *filled,
                        const SegFrame *frame, SegVert *verts, size_t n_verts)
{
    size_t plane = grid->dims[0] * grid->dims[1];
    uint8_t *seen = malloc(plane);
    size_t *queue = malloc(plane * sizeof *queue);
    if (!seen || !queue) {
        free(seen);
        free(queue);
        sm_error_set(error, SM_ERR_NOMEM, "sacrum detection: out of memory");
        return false;
    }
    for (size_t s = 0; s < n_verts; s++) {
        SegVert *vt = &verts[s];
        vt->sacral = false;
        if (vt->s_hi - vt->s_lo < 8.0)
            continue;
        /* sample the upper part of the segment (S1's alae; lower sacral pieces narrow) */
        static const double fr[4] = {0.35, 0.5, 0.65, 0.8};
        int big = 0, ns = 0;
        double best = 0;
        for (int q = 0; q < 4; q++) {
            double p[3], t[3];
            sm_seg_axis_at(grid, frame, vt->s_lo + fr[q] * (vt->s_hi - vt->s_lo), p, t);
            long kk = lround((p[2] - grid->origin[2]) / grid->g);
            if (kk < (long)frame->k0 || kk > (long)frame->k1)
                continue;
            const SegSlice *sl = &frame->s[kk];
            double sp = lateral_spread(grid, filled, (size_t)kk, sl->bx, sl->by, sl->cx, seen,
                                       queue);
            ns++;
            big += sp >= SACRAL_SPREAD_MM &&
                   lateral_mass(grid, filled, (size_t)kk, sl->cx, sl->cy) >= SACRAL_MASS_MM2;
            if (sp > best)
                best = sp;
        }
        vt->sacral = ns > 0 && big >= 2;
        vt->sacral_spread_mm = best;
    }
    free(seen);
    free(queue);
    return true;
}

long sm_seg_sacrum_pick(SegVert *verts, size_t n_verts)
{
    /* valid segments, lowest first */
    long idx[256];
    size_t nv = 0;
    for (size_t s = 0; s < n_verts && nv < 256; s++)
        if (verts[s].verse >= 0)
            idx[nv++] = (long)s;
    /* S1 is the top of the lowest run of sacral segments (segments below it are lower
     * sacral or coccygeal pieces, whatever their spread), with a mobile segment above */
    long s1 = -1;
    for (size_t a = 0; a < nv; a++) {
        if (!verts[idx[a]].sacral)
            continue;
        size_t top = a;
        while (top + 1 < nv && verts[idx[top + 1]].sacral)
            top++;
        if (top + 1 < nv)
            s1 = (long)top;
        break;
    }
    if (s1 < 0)
        return -1;
    /* A lumbar vertebra whose transverse processes touch the ilia also looks fused; the
     * real S1 spreads clearly further (the alae join the ilia along the sacroiliac
     * joints). Step down when the segment below spreads much more. */
    if (s1 > 0 && verts[idx[s1]].sacral_spread_mm < 0.8 * verts[idx[s1 - 1]].sacral_spread_mm) {
        verts[idx[s1]].sacral = false;
        verts[idx[s1]].touches_pelvis = true;
        s1--;
    }
    return idx[s1];
}
