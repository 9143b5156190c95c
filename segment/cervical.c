/* C2 anchor: the topmost segment is C1+C2 (no disc between them) when it is a small
 * cervical body, much taller than the segments below (body plus dens), and the anterior
 * arch of C1 lies in front of the dens, separated from it by the atlanto-dental joint.
 * For the C1/C2 split (spine.c) it measures the dens axis, its half-width and AP
 * half-depth, the level of C1's anterior arch and the top of C2's body. */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>

#define C2_MAX_HALF_WIDTH_MM 15.0
#define C2_TALL_RATIO 1.15
#define C2_MIN_CANAL_HALF_WIDTH_MM 10.0
#define C2_BODY_TOP_NARROW 0.75

static double hu_at(const SegGrid *grid, double x, double y, size_t k)
{
    double fi = (x - grid->origin[0]) / grid->g, fj = (y - grid->origin[1]) / grid->g;
    if (fi < 0 || fj < 0 || fi > (double)grid->dims[0] - 1 || fj > (double)grid->dims[1] - 1)
        return NAN;
    size_t i0 = (size_t)fi, j0 = (size_t)fj;
    size_t i1 = i0 + 1 < grid->dims[0] ? i0 + 1 : i0, j1 = j0 + 1 < grid->dims[1] ? j0 + 1 : j0;
    double ax = fi - (double)i0, ay = fj - (double)j0;
    const int16_t *h = grid->hu;
    double v00 = h[seg_idx(grid->dims, i0, j0, k)], v10 = h[seg_idx(grid->dims, i1, j0, k)];
    double v01 = h[seg_idx(grid->dims, i0, j1, k)], v11 = h[seg_idx(grid->dims, i1, j1, k)];
    if (v00 == SEG_OUTSIDE || v10 == SEG_OUTSIDE || v01 == SEG_OUTSIDE || v11 == SEG_OUTSIDE)
        return NAN;
    return (v00 * (1 - ax) + v10 * ax) * (1 - ay) + (v01 * (1 - ax) + v11 * ax) * ay;
}

/* Width across (along x) of the bone (>= the soft-tissue/bone edge) through (x, y) on slice
 * k, up to 25 mm each side; 0 when (x, y) itself is not bone. */
static double bone_width_x(const SegGrid *grid, const SegThresholds *thr, size_t k, double x,
                           double y)
{
    double h0 = hu_at(grid, x, y, k);
    if (!(h0 >= thr->edge))
        return 0;
    double w = 0;
    for (int side = -1; side <= 1; side += 2) {
        double d = 0.5;
        for (; d <= 25.0; d += 0.5) {
            double h = hu_at(grid, x + side * d, y, k);
            if (!(h >= thr->edge))
                break;
        }
        w += d - 0.5;
    }
    return w;
}

/* In front of the dens on slice k: a dip in density (the atlanto-dental joint, often
 * narrower than a working voxel) followed by bone again (the anterior arch of C1). The dip
 * lies at or in front of (x, y); the dens before it may start up to DENS_BACK_MM behind
 * (x, y), since a forward-leaning dens can end at the body centre of the slice. *dip_mm:
 * mm in front of (x, y). */
#define DENS_BACK_MM 4
static bool arch_in_front(const SegGrid *grid, const SegThresholds *thr, size_t k, double x,
                          double y, double body_hw, double *dip_mm)
{
    enum { N = 30 + DENS_BACK_MM };
    double prof[N + 1];
    for (int d = 0; d <= N; d++) {
        prof[d] = hu_at(grid, x, y + DENS_BACK_MM - d, k);
        if (isnan(prof[d]))
            return false;
    }
    double peak = prof[0];
    for (int d = 1; d < N - 2; d++) {
        if (prof[d] > peak)
            peak = prof[d];
        if (d < DENS_BACK_MM || peak < thr->lo)
            continue; /* behind (x, y), or not yet through the dens */
        if (!(prof[d] <= prof[d - 1] && prof[d] <= prof[d + 1]))
            continue;
        double dip = prof[d];
        double after = dip;
        for (int e = d + 1; e <= d + 8 && e <= N; e++)
            if (prof[e] > after)
                after = prof[e];
        double contrast = 0.25 * (thr->hi - thr->soft);
        int e_after = d;
        for (int e = d + 1; e <= d + 8 && e <= N; e++)
            if (prof[e] >= prof[e_after])
                e_after = e;
        if (peak - dip >= contrast && after - dip >= contrast && after >= thr->lo) {
            /* C1's anterior arch spans between its lateral masses, wider than the dens; a
             * dip inside a bone whose front is no wider than the bone behind the dip is the
             * cancellous core of the dens (or of C2's body) between its cortices, the
             * "bone after" its anterior cortex. Bone in front wider than C2's body is no
             * cortex of the dens or body either (the rows behind the dip can reach C1's
             * lateral masses across a gap the working grid does not resolve) */
            double w_front = bone_width_x(grid, thr, k, x, y + DENS_BACK_MM - e_after);
            double w_back = 0;
            for (int q = 0; q < d; q++) {
                double wq = bone_width_x(grid, thr, k, x, y + DENS_BACK_MM - q);
                if (wq > w_back)
                    w_back = wq;
            }
            if (!(w_front > w_back || w_front > 2.0 * body_hw))
                continue;
            *dip_mm = (double)(d - DENS_BACK_MM);
            return true;
        }
        if (dip < thr->soft + 2 * thr->soft_sigma)
            return false; /* soft tissue in front of the dens: no arch */
    }
    return false;
}

/* Lateral extent of the dens on slice k along x through (x, y): the first drop below the
 * soft-tissue/bone edge on each side (the gap to the lateral masses of C1). */
static bool dens_sides(const SegGrid *grid, const SegThresholds *thr, size_t k, double x,
                       double y, double *left, double *right)
{
    double ext[2];
    for (int side = 0; side < 2; side++) {
        double sg = side ? 1.0 : -1.0;
        ext[side] = NAN;
        for (double d = 0.5; d <= 15.0; d += 0.5) {
            double h = hu_at(grid, x + sg * d, y, k);
            if (isnan(h))
                return false;
            if (h < thr->edge) {
                ext[side] = d;
                break;
            }
        }
        if (isnan(ext[side]))
            return false;
    }
    *right = ext[0];
    *left = ext[1];
    return true;
}

/* The dens's back wall on slice k along y at x: the first drop below the soft-tissue/bone
 * edge behind bone met within 3 mm behind the joint yj (the canal and the transverse
 * ligament lie behind the dens), at most 25 mm behind it. */
static bool dens_back(const SegGrid *grid, const SegThresholds *thr, size_t k, double x,
                      double yj, double *yb)
{
    bool bone = false;
    double hp = NAN;
    for (double d = 0.0; d <= 25.0; d += 0.5) {
        double h = hu_at(grid, x, yj + d, k);
        if (isnan(h))
            return false;
        if (h >= thr->edge) {
            bone = true;
        } else if (bone) {
            /* the edge crossing between the last bone sample and this one */
            *yb = yj + d - 0.5 + 0.5 * (hp - thr->edge) / (hp - h);
            return true;
        } else if (d > 3.0) {
            return false;
        }
        hp = h;
    }
    return false;
}

/* The body centre on slice k of the top segment: the frame's, up to its last tracked
 * slice ktop; above it, the top axis (ptop, ttop) carried on. line (NULL: none): a point
 * and direction (6 values) whose point on slice k is used on every slice instead. */
static void top_body_centre(const SegGrid *grid, const SegFrame *frame, long k, long ktop,
                            const double ptop[3], const double ttop[3], const double *line,
                            double *bx, double *by)
{
    if (line) {
        double f = (grid->origin[2] + grid->g * (double)k - line[2]) / line[5];
        *bx = line[0] + f * line[3];
        *by = line[1] + f * line[4];
    } else if (k <= ktop && k <= (long)frame->k1) {
        const SegSlice *s2 = &frame->s[k < (long)frame->k0 ? frame->k0 : (size_t)k];
        *bx = s2->bx;
        *by = s2->by;
    } else {
        double f = (grid->origin[2] + grid->g * (double)k - ptop[2]) / ttop[2];
        *bx = ptop[0] + f * ttop[0];
        *by = ptop[1] + f * ttop[1];
    }
}

/* Slices kmid..kend with C1's anterior arch in front of the dens (arch_in_front on the
 * body centre of top_body_centre): their count, the first 64 slices and dips, the lowest
 * slice's LPS z in *zlow. */
static int arch_scan(const SegGrid *grid, const SegThresholds *thr, const SegFrame *frame,
                     long kmid, long kend, long ktop, const double ptop[3],
                     const double ttop[3], const double *line, double hw, double dips[64],
                     long arch_k[64], double *zlow)
{
    int arches = 0;
    *zlow = INFINITY;
    for (long k = kmid; k <= kend; k++) {
        if (k < 0)
            continue;
        double bx, by;
        top_body_centre(grid, frame, k, ktop, ptop, ttop, line, &bx, &by);
        double dip = 0;
        if (arch_in_front(grid, thr, (size_t)k, bx, by, hw, &dip)) {
            if (arches < 64) {
                dips[arches] = dip;
                arch_k[arches] = k;
            }
            arches++;
            double z = grid->origin[2] + grid->g * (double)k;
            if (z < *zlow)
                *zlow = z;
        }
    }
    return arches;
}

void sm_seg_c2_find(const SegGrid *grid, const SegThresholds *thr, const SegFrame *frame,
                    SegVert *verts, size_t n_verts)
{
    long top = -1;
    for (size_t s = 0; s < n_verts; s++)
        if (verts[s].verse >= 0)
            top = (long)s;
    if (top < 3)
        return;
    SegVert *vt = &verts[top];
    if (vt->lower_disc < 0)
        return;
    double h[3];
    for (int q = 0; q < 3; q++)
        h[q] = verts[top - 1 - q].s_hi - verts[top - 1 - q].s_lo;
    qsort(h, 3, sizeof h[0], sm_cmp_double);
    double height = vt->s_hi - vt->s_lo;
    /* the body's width on the lower half of the segment (C2's body; C1's lateral masses
     * widen the slices near the segment's middle when the dens makes it tall): the
     * narrowest of five levels */
    double hw = INFINITY, crx[5];
    int ncrx = 0;
    for (int q = 0; q < 5; q++) {
        double pq[3], tq[3];
        SegSlice sl;
        sm_seg_axis_at(grid, frame, vt->s_lo + (0.1 + 0.1 * q) * (vt->s_hi - vt->s_lo), pq, tq);
        if (!sm_seg_frame_at(frame, grid, pq[2], &sl))
            continue;
        if (sl.half_width < hw)
            hw = sl.half_width;
        crx[ncrx++] = sl.rx;
    }
    if (!(hw <= C2_MAX_HALF_WIDTH_MM))
        return;
    /* the canal at C2 is among the widest of the spine (about 22-26 mm across; C1 wider
     * still), the thoracic canal the narrowest (about 15-18 mm): a small, tall top segment
     * with a thoracic-width canal is two thoracic bodies (an enhanced aorta in front of
     * them can pose as C1's anterior arch), not C1 + C2 */
    if (ncrx > 0) {
        qsort(crx, (size_t)ncrx, sizeof crx[0], sm_cmp_double);
        if (!(crx[ncrx / 2] >= C2_MIN_CANAL_HALF_WIDTH_MM))
            return;
    }
    /* Above the end of the canal track (the dens rises above C2's ring, into C1's) the body
     * axis is extrapolated along its direction at the top of the track: a lordotic or
     * tilted dens leans away from the last tracked body centre. */
    double ptop[3], ttop[3];
    sm_seg_axis_at(grid, frame, vt->s_hi, ptop, ttop);
    if (!(ttop[2] > 0.2)) {
        ttop[0] = ttop[1] = 0;
        ttop[2] = 1;
    }
    long ktop = lround((ptop[2] - grid->origin[2]) / grid->g);
    /* the segment's height includes the dens above the track: bone on the extrapolated
     * axis, up to 30 mm above the track end */
    {
        double zb = ptop[2];
        for (double dz = grid->g; dz <= 30.0; dz += grid->g) {
            long k = lround((ptop[2] + dz - grid->origin[2]) / grid->g);
            if (k < 0 || k >= (long)grid->dims[2])
                break;
            double f = dz / ttop[2];
            double hv = hu_at(grid, ptop[0] + f * ttop[0], ptop[1] + f * ttop[1], (size_t)k);
            if (isnan(hv))
                break;
            if (hv >= thr->edge)
                zb = ptop[2] + dz;
        }
        height += (zb - ptop[2]) / ttop[2];
    }
    if (height < C2_TALL_RATIO * h[1])
        return;
    /* slices from the middle of the segment to 10 mm above its top (the C1 arch sits at
     * the top of the dens, where the canal track may already have stopped) */
    double dips[64];
    long arch_k[64];
    double pm[3], tm[3];
    sm_seg_axis_at(grid, frame, vt->s_lo + 0.5 * (vt->s_hi - vt->s_lo), pm, tm);
    long kmid = lround((pm[2] - grid->origin[2]) / grid->g);
    long kend = (long)frame->k1 + lround(10.0 / grid->g);
    if (kend < ktop + lround(30.0 / grid->g))
        kend = ktop + lround(30.0 / grid->g);
    if (kend >= (long)grid->dims[2])
        kend = (long)grid->dims[2] - 1;
    double zlow;
    const double *line = NULL;
    int arches = arch_scan(grid, thr, frame, kmid, kend, ktop, ptop, ttop, NULL, hw, dips,
                           arch_k, &zlow);
    /* The body centres near the track's top are pulled forward by C1's anterior arch, and
     * the track's end tangent can lean forward while the dens leans back (a lordotic C2):
     * that line can run through the arch with the dens behind the window. Failing that,
     * the slices are searched again on C2's own axis: the line through the body centre a
     * quarter up the segment (below C1) along the axis tangent there. */
    double lq[6];
    if (arches < 2) {
        sm_seg_axis_at(grid, frame, vt->s_lo + 0.25 * (vt->s_hi - vt->s_lo), lq, lq + 3);
        if (lq[5] > 0.5) {
            arches = arch_scan(grid, thr, frame, kmid, kend, ktop, ptop, ttop, lq, hw, dips,
                               arch_k, &zlow);
            line = lq;
        }
    }
    if (arches < 2)
        return;
    vt->cervical_top = true;
    vt->c1_z = zlow - 3.0;
    vt->c2_top_z = vt->c1_z;
    /* the middle of C1's anterior arch (the median slice with the joint in front): C1's
     * lateral masses reach below it, C2's body top stays under it */
    size_t nd = arches < 64 ? (size_t)arches : 64;
    double zarch = grid->origin[2] + grid->g * (double)arch_k[nd / 2];
    /* C1's lateral masses reach lower than its anterior arch, down onto C2's body, and sit
     * beside the dens above C2's body top: the first slice up from the segment's middle
     * where the bone across the axis narrows to the dens (< C2_BODY_TOP_NARROW x the body's
     * width over the lower half, after a slice at least that wide; the lateral masses
     * beside the dens lie across a gap). Below it bone is C2's body (a lordotic C2's body
     * top can rise beside C1's anterior arch), except in front of the atlanto-dental
     * joint; above it bone off the dens is C1 (no higher than the middle of the arch).
     * C1 starts no higher than that top. */
    bool wide = false;
    long knar = -1;
    for (long k = kmid < 0 ? 0 : kmid; k <= kend; k++) {
        double bx, by;
        top_body_centre(grid, frame, k, ktop, ptop, ttop, line, &bx, &by);
        double w = bone_width_x(grid, thr, (size_t)k, bx, by);
        if (w >= C2_BODY_TOP_NARROW * 2.0 * hw) {
            wide = true;
        } else if (wide && w > 0) {
            double zt = grid->origin[2] + grid->g * ((double)k - 0.5);
            vt->c2_top_z = zt < zarch ? zt : zarch;
            if (zt < vt->c1_z)
                vt->c1_z = zt;
            knar = k;
            break;
        }
    }
    /* the dens on each slice above C2's body with the joint in front of it: its back
     * wall (canal and transverse ligament behind it), its sides (the gaps to the lateral
     * masses) and the joint (the front of a round dens: AP depth 1.2-3.2 x its half-width,
     * else the dip was the dens's cancellous core between its cortices); the dens axis is
     * the line through their centres (the body centre on these slices is pulled forward
     * by C1's anterior arch) */
    double dz[64], dxv[64], dyv[64], drx[64], dry[64];
    size_t nm = 0;
    for (size_t q = 0; q < nd; q++) {
        long k = arch_k[q];
        if (knar >= 0 && k < knar)
            continue;
        double bx, by;
        top_body_centre(grid, frame, k, ktop, ptop, ttop, line, &bx, &by);
        double yj = by - dips[q], xc = bx, yb = NAN, el, er;
        bool ok = true;
        for (int it = 0; it < 2 && ok; it++) {
            ok = dens_back(grid, thr, (size_t)k, xc, yj, &yb);
            if (ok)
                ok = dens_sides(grid, thr, (size_t)k, xc, 0.5 * (yj + yb), &el, &er);
            if (ok)
                xc += 0.5 * (el - er);
        }
        if (!ok)
            continue;
        double rx = 0.5 * (el + er), ry = 0.5 * (yb - yj);
        if (!(rx >= 2.0 && ry >= 0.6 * rx && ry <= 1.6 * rx))
            continue;
        dz[nm] = grid->origin[2] + grid->g * (double)k;
        dxv[nm] = xc;
        dyv[nm] = 0.5 * (yj + yb);
        drx[nm] = rx;
        dry[nm++] = ry;
    }
    /* the dens continues C2's body axis: its direction from the body centre a quarter up
     * the segment (below C1) to the dens, its position the median over the slices (a
     * slice through a tilted body top can measure the body's back wall) */
    double sx = tm[2] > 0.2 ? tm[0] / tm[2] : 0, sy = tm[2] > 0.2 ? tm[1] / tm[2] : 0;
    if (nm > 0) {
        double pl[3], tl[3];
        SegSlice sl;
        sm_seg_axis_at(grid, frame, vt->s_lo + 0.25 * (vt->s_hi - vt->s_lo), pl, tl);
        bool low = sm_seg_frame_at(frame, grid, pl[2], &sl);
        double tmp[64];
        for (size_t q = 0; q < nm; q++)
            tmp[q] = dz[q];
        qsort(tmp, nm, sizeof tmp[0], sm_cmp_double);
        double mz = tmp[nm / 2], mx = 0, my = 0;
        for (int it = 0; it < 3; it++) {
            for (int c = 0; c < 2; c++) {
                const double *v = c ? dyv : dxv;
                double sl_c = c ? sy : sx;
                for (size_t q = 0; q < nm; q++)
                    tmp[q] = v[q] - sl_c * (dz[q] - mz);
                qsort(tmp, nm, sizeof tmp[0], sm_cmp_double);
                if (c)
                    my = tmp[nm / 2];
                else
                    mx = tmp[nm / 2];
            }
            if (low && mz - pl[2] >= 8.0) {
                sx = (mx - sl.bx) / (mz - pl[2]);
                sy = (my - sl.by) / (mz - pl[2]);
            }
        }
        qsort(drx, nm, sizeof drx[0], sm_cmp_double);
        qsort(dry, nm, sizeof dry[0], sm_cmp_double);
        vt->dens_p[0] = mx;
        vt->dens_p[1] = my;
        vt->dens_p[2] = mz;
        vt->dens_radius_mm = drx[nm / 2];
        vt->dens_ry_mm = dry[nm / 2];
    } else {
        /* no slice measured: the dens behind the median joint by its median half-width
         * at the median arch slice */
        qsort(dips, nd, sizeof dips[0], sm_cmp_double);
        long k = arch_k[nd / 2];
        double bx, by, el = 5.0, er = 5.0;
        top_body_centre(grid, frame, k, ktop, ptop, ttop, line, &bx, &by);
        dens_sides(grid, thr, (size_t)k, bx, by, &el, &er);
        vt->dens_radius_mm = 0.5 * (el + er);
        vt->dens_ry_mm = vt->dens_radius_mm;
        vt->dens_p[0] = bx + 0.5 * (el - er);
        vt->dens_p[1] = by - dips[nd / 2] + vt->dens_ry_mm;
        vt->dens_p[2] = grid->origin[2] + grid->g * (double)k;
    }
    vt->dens_sx = sx;
    vt->dens_sy = sy;
}
