/* Sacrum: a segment is sacral when, on slices of its upper part, the bone connected to its body
 * spreads far laterally on both sides (alae joined to the ilia at the sacroiliac joints), or
 * forms massive alae on both sides (also where the field of view cuts them off). */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>

#define SACRAL_SPREAD_MM 80.0
/* a segment above the lowest sacral run spreading this much further, and at least
 * SACRAL_STEP_UP_MIN of the sacral spread, is S1 */
#define SACRAL_STEP_UP 1.25
#define SACRAL_STEP_UP_MIN 0.75
/* bone area per side 45-90 mm lateral of the canal: alae + ilia are massive, rib
 * cross-sections are thin strips */
#define SACRAL_MASS_MM2 700.0
/* an ala that ends inside the field of view (at the sacroiliac joint) reaches at least this
 * far lateral of the canal: the adult sacrum is >= 90 mm wide across the alae, while the
 * cervical transverse processes and the first ribs' heads and necks beside T1, which are
 * as thick as a cervical body is deep, end within about 40 mm of the canal */
#define SACRAL_ALA_REACH_MM 41.0
/* vertebrae above a sacrum candidate whose canal width is checked (they are lumbar) */
#define SACRUM_CANAL_N 4

/* Lateral extent of the filled bone connected to (x, y) on slice k, per side (0: patient
 * left, +x; 1: right): reach[] in mm from the canal centre cx, open[] when that side's
 * outermost bone steps laterally out of the field of view (grid border or outside voxels,
 * within 4 mm of the reach): the reach is then only a lower bound. seen[] is left marking
 * the component. */
static void lateral_spread(const SegGrid *grid, const uint8_t *filled, size_t k, double x,
                           double y, double cx, uint8_t *seen, size_t *queue, double reach[2],
                           bool open[2])
{
    const size_t nx = grid->dims[0], ny = grid->dims[1];
    const uint8_t *m = filled + k * nx * ny;
    const int16_t *h = grid->hu + k * nx * ny;
    for (size_t s = 0; s < nx * ny; s++)
        seen[s] = 0;
    reach[0] = reach[1] = 0;
    open[0] = open[1] = false;
    long i0 = lround((x - grid->origin[0]) / grid->g), j0 = lround((y - grid->origin[1]) / grid->g);
    if (i0 < 1 || j0 < 1 || i0 >= (long)nx - 1 || j0 >= (long)ny - 1)
        return;
    size_t qh = 0, qt = 0;
    size_t start = (size_t)i0 + nx * (size_t)j0;
    seen[start] = 1;
    queue[qt++] = start;
    /* outermost field-of-view contact per side */
    double touch[2] = {-1, -1};
    while (qh < qt) {
        size_t u = queue[qh++];
        long ui = (long)(u % nx), uj = (long)(u / nx);
        double dx = grid->origin[0] + grid->g * (double)ui - cx;
        int side = dx > 0 ? 0 : 1;
        if (fabs(dx) > reach[side]) reach[side] = fabs(dx);
        for (long dj = -1; dj <= 1; dj++)
            for (long di = -1; di <= 1; di++) {
                long ii = ui + di, jj = uj + dj;
                if (ii < 1 || jj < 1 || ii >= (long)nx - 1 || jj >= (long)ny - 1 ||
                    h[(size_t)ii + nx * (size_t)jj] == SEG_OUTSIDE) {
                    /* a lateral step out of the field (not a posterior or anterior cut) */
                    if (dj == 0 && fabs(dx) > touch[side]) touch[side] = fabs(dx);
                    continue;
                }
                size_t w = (size_t)ii + nx * (size_t)jj;
                if (seen[w])
                    continue;
                if (!m[w])
                    continue;
                seen[w] = 1;
                queue[qt++] = w;
            }
    }
    for (int s = 0; s < 2; s++)
        open[s] = touch[s] >= 0 && touch[s] >= reach[s] - 4.0;
}

/* Mean AP extent (mm of bone per lateral mm) of the component marked in seen[] on one side,
 * within the body's AP extent (by +- depth/2), over the columns from `from` to `to` mm
 * lateral of the canal that are in the field of view at the body's AP level; *band gets
 * the width of that band (mm). */
static double lateral_thickness(const SegGrid *grid, size_t k, const uint8_t *seen, double cx,
                                double by, double depth, int side, double from, double to,
                                double *band)
{
    const size_t nx = grid->dims[0], ny = grid->dims[1];
    const int16_t *h = grid->hu + k * nx * ny;
    const double g = grid->g;
    size_t cols = 0, area = 0;
    for (size_t i = 1; i + 1 < nx; i++) {
        double dx = grid->origin[0] + g * (double)i - cx;
        if ((side == 0 ? dx : -dx) < from || (side == 0 ? dx : -dx) > to)
            continue;
        /* a column counts when it is in the field of view at the body's AP level */
        long jb = lround((by - grid->origin[1]) / g);
        if (jb < 0 || jb >= (long)ny || h[i + nx * (size_t)jb] == SEG_OUTSIDE)
            continue;
        size_t col = 0;
        for (size_t j = 1; j + 1 < ny; j++) {
            double dy = grid->origin[1] + g * (double)j - by;
            if (dy < -0.5 * depth || dy > 0.5 * depth)
                continue;
            col += seen[i + nx * j] != 0;
        }
        cols++;
        area += col;
    }
    *band = (double)cols * g;
    return cols ? (double)area * g / (double)cols : 0;
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
    /* the median segment height: a sacral segment that runs on over the lower sacrum and
     * the coccyx (no disc below S1 in the field) is sampled over its top 1.5 medians only */
    double hs[256];
    size_t nh = 0;
    for (size_t s = 0; s < n_verts && nh < 256; s++)
        if (verts[s].verse >= 0 && verts[s].s_hi > verts[s].s_lo)
            hs[nh++] = verts[s].s_hi - verts[s].s_lo;
    qsort(hs, nh, sizeof hs[0], sm_cmp_double);
    double h_cap = nh >= 3 ? 1.5 * hs[nh / 2] : INFINITY;
    for (size_t s = 0; s < n_verts; s++) {
        SegVert *vt = &verts[s];
        vt->sacral = false;
        if (vt->s_hi - vt->s_lo < 8.0)
            continue;
        /* sample the upper part of the segment (S1's alae; lower sacral pieces narrow),
         * down to a fifth of its height: the alae of an S1 tilted sideways lie at heights
         * up to 30 mm apart, and an axial slice meets both only near the body's middle
         * (random sweep 5018273/31, L3-S1, scoliosis -25 deg: on 35-80 % both passed on
         * one slice, the ilia were taken for ribs and S1 for T1) */
        static const double fr[5] = {0.2, 0.35, 0.5, 0.65, 0.8};
        double h_eff = fmin(vt->s_hi - vt->s_lo, h_cap);
        int big = 0, ns = 0;
        double best = 0;
        for (int q = 0; q < 5; q++) {
            double p[3], t[3];
            sm_seg_axis_at(grid, frame, vt->s_hi - (1.0 - fr[q]) * h_eff, p, t);
            long kk = lround((p[2] - grid->origin[2]) / grid->g);
            if (kk < (long)frame->k0 || kk > (long)frame->k1)
                continue;
            const SegSlice *sl = &frame->s[kk];
            double reach[2];
            bool open[2];
            lateral_spread(grid, filled, (size_t)kk, sl->bx, sl->by, sl->cx, seen, queue, reach,
                           open);
            double sp = reach[0] < reach[1] ? reach[0] : reach[1];
            ns++;
            bool ok = sp >= SACRAL_SPREAD_MM &&
                      lateral_mass(grid, filled, (size_t)kk, sl->cx, sl->cy) >= SACRAL_MASS_MM2;
            /* or the alae themselves, which need neither the ilia joined across the
             * sacroiliac joints nor a field of view wide enough to show them: on each side,
             * bone joined to the body beyond the column's median body half-width + 6 mm,
             * from there to where it ends (or leaves the field of view) at least 10 mm wide,
             * covering on average at least half of the body's AP extent beside it (alae lie
             * beside the body; transverse processes and ribs run behind it or are thin).
             * Measured on 16 random phantoms: sacral segments 0.51-0.97 per slice (0.56 or
             * more on at least two of the four), other segments <= 0.64 on one slice and
             * <= 0.49 on any second one. */
            bool side_ok[2];
            for (int sd = 0; sd < 2; sd++) {
                double band = 0;
                double th = lateral_thickness(grid, (size_t)kk, seen, sl->cx, sl->by,
                                              frame->body_depth_med, sd,
                                              frame->body_halfw_med + 6.0,
                                              open[sd] ? INFINITY : reach[sd], &band);
                side_ok[sd] = band >= 10.0 && th >= 0.5 * frame->body_depth_med &&
                              (open[sd] || reach[sd] >= SACRAL_ALA_REACH_MM);
            }
            ok = ok || (side_ok[0] && side_ok[1]);
            big += ok;
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

long sm_seg_sacrum_pick(SegVert *verts, size_t n_verts, SmStrList *notes)
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
    /* The vertebrae above the sacrum are lumbar, whose canal is about half as wide as their
     * bodies. A candidate under a cervical canal (median canal / body width >=
     * CERVICAL_CANAL_TO_BODY over the SACRUM_CANAL_N vertebrae above it, at least three)
     * is the bottom of a cervical field: there the first ribs, joined to T1's transverse
     * processes, spread like alae (random sweep 8675309/20, C1-T1 feet first on 0.89 mm
     * slices, and 3141592/28, C3-T1 on 1.93 mm: the "sacrum" outvoted the dens or stood
     * alone, and C2-T1 were named T12-S1, C3-T1 L1-S1). */
    {
        double ratios[SACRUM_CANAL_N];
        size_t nr = 0;
        for (size_t a = (size_t)s1 + 1; a < nv && nr < SACRUM_CANAL_N; a++)
            if (verts[idx[a]].canal_to_body > 0)
                ratios[nr++] = verts[idx[a]].canal_to_body;
        double ratio = nr >= 3 ? sm_median_inplace(ratios, nr) : NAN;
        if (ratio >= CERVICAL_CANAL_TO_BODY) {
            if (notes)
                sm_strlist_add(notes, "lateral bone at z %.0f mm spreads like a sacrum, but the "
                               "canal above it is cervical (%.2f times the body width): not "
                               "the sacrum", verts[idx[s1]].centre[2], ratio);
            verts[idx[s1]].sacral = false;
            return -1;
        }
    }
    /* A lumbar vertebra whose transverse processes touch the ilia also looks fused; the
     * real S1 spreads clearly further (the alae join the ilia along the sacroiliac
     * joints). Step down when the segment below spreads much more. */
    if (s1 > 0 && verts[idx[s1]].sacral_spread_mm < 0.8 * verts[idx[s1 - 1]].sacral_spread_mm) {
        verts[idx[s1]].sacral = false;
        verts[idx[s1]].touches_pelvis = true;
        s1--;
    } else if (s1 + 2 < (long)nv &&
               verts[idx[s1 + 1]].sacral_spread_mm >= SACRAL_STEP_UP_MIN * SACRAL_SPREAD_MM &&
               verts[idx[s1 + 1]].sacral_spread_mm > SACRAL_STEP_UP * verts[idx[s1]].sacral_spread_mm) {
        /* The real S1 spreads furthest (its alae; S2 narrows): a segment above the pick,
         * with a mobile one above it, spreading to the sacral width and clearly further
         * than the pick is S1 whose alae passed on too few of the sampled slices (a steep
         * S1, 28 deg from the slices: random sweep 9182736/23, T11-S1, the true S1 spread
         * 89 mm, S2 46 mm, and S1 was named L6; 8812345/26, L1-S1, S1 30 deg from the
         * slices, 74 mm against 44 mm, and L1-L5 were named T12-L4). Over the 32
         * development seeds the segment above S1 spreads at most 0.87 of it and at most
         * 39 mm. */
        if (notes)
            sm_strlist_add(notes, "the segment above the lowest sacral run spreads %.0f mm "
                           "against its %.0f mm: it is S1", verts[idx[s1 + 1]].sacral_spread_mm,
                           verts[idx[s1]].sacral_spread_mm);
        verts[idx[s1 + 1]].sacral = true;
        s1++;
    }
    return idx[s1];
}
