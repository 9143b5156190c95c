/* Alignment of each vertebra with the one below, in the lower vertebra's frame:
 * translation of the posterior walls, segmental sagittal and coronal angles, and the SINS
 * alignment class from the focal change versus the neighbouring segments. */
#include "frame.h"
#include "metrics_internal.h"
#include "sins_rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEG (180.0 / M_PI)

static bool frame_ok(const SmVertebraMetrics *v)
{
    return isfinite(v->axis_superior[0]) && isfinite(v->axis_anterior[0]) &&
           isfinite(v->body_centroid_lps[0]);
}

#define WALL_N 7       /* heights sampled on the posterior wall */
#define WALL_SPAN 0.30 /* from -WALL_SPAN to +WALL_SPAN of the body height about mid-height */
#define SACRUM_WALL_MM 15.0
#define SACRUM_EATEN_MM 4.0
#define SACRUM_MAX_DEG 20.0

/* Fraction of the body height that the wall crossing bridges along the axis. */
#define NOTCH_REACH 0.35

/* True when the mask holds body both above and below p along the axis S within reach
 * (0.5 mm steps): p lies in a notch of the body, not outside it. */
static bool between_body(const SmBodyMask *mask, const double p[3], const double S[3],
                         double reach)
{
    for (int s = -1; s <= 1; s += 2) {
        bool hit = false;
        for (double t = 0.5; t <= reach && !hit; t += 0.5) {
            double q[3] = {p[0] + s * t * S[0], p[1] + s * t * S[1], p[2] + s * t * S[2]};
            hit = sm_frame_mask_sample(mask, q) >= 0.5;
        }
        if (!hit)
            return false;
    }
    return true;
}

/* Posterior wall crossing of the ray o + w*A (w < 0 posterior): the posterior end of the
 * run found by sm_frame_ray_extent, carried back over a notch of the body, i.e. over
 * points with body above and below them within NOTCH_REACH of the body height h along
 * the axis. At mid-height the basivertebral foramen (veins, not bone) opens a notch of
 * several mm in the posterior wall on the midline, which would pull the wall line
 * forward at one body and not at the next; the wall's own concavity between its rims is
 * not filled (that would need a reach of half the height). False when no crossing. */
static bool wall_crossing(const SmBodyMask *mask, const double o[3], const double A[3],
                          const double S[3], double h, double *w)
{
    double lo, hi;
    if (!sm_frame_ray_extent(mask, o, A, 3.0, 80.0, &lo, &hi))
        return false;
    double reach = NOTCH_REACH * h, last = lo;
    for (double t = lo - 0.2; t >= lo - 20.0; t -= 0.2) {
        double q[3] = {o[0] + t * A[0], o[1] + t * A[1], o[2] + t * A[2]};
        if (sm_frame_mask_sample(mask, q) < 0.5 && !between_body(mask, q, S, reach))
            break;
        last = t;
    }
    *w = last;
    return true;
}

/* The posterior wall line and the endplate centres of one body, in its own mid-sagittal
 * plane. Wall: the crossings of rays along the anterior axis (lateral offsets -3, 0,
 * +3 mm, averaged per height) at WALL_N heights over the central 60 % of the body height
 * (and at least the largest voxel spacing from each endplate: nearer, the interpolated
 * mask mixes with the disc and the corner is rounded); a least-squares line w = a + b t
 * (t along the axis from the mid-height, w along the anterior axis; one pass of outlier
 * rejection, 3 robust sigmas, at least 1 mm) keeps the wall's own inclination (a wedge-
 * shaped L5) and averages its concavity. The endplate centres are the crossings of the
 * central ray along the axis. The sacrum (whose axis is the S1 endplate normal): only
 * the upper SACRUM_WALL_MM of the wall without crossings eaten by an overlapping canal
 * mask (more than SACRUM_EATEN_MM anterior of the most posterior one), false when that
 * line is more than SACRUM_MAX_DEG off the S1 axis, and the lateral centre of those
 * sections instead of the centroid. line_p is the wall point at mid-height, line_d the unit
 * direction of the wall (superior sense), ep[0] / ep[1] the superior / inferior endplate
 * centres, centre_p the body's centre at mid-height (lateral centre as above), on which
 * the lateral offset is measured. */
static bool wall_line(const SmMetricsInput *in, const SmVertebraMetrics *v, double line_p[3],
                      double line_d[3], double ep[2][3], double centre_p[3])
{
    SmBodyMask mask;
    sm_frame_mask_init(&mask, in->labels, in->subregions, v->verse_label);
    const double *c = v->body_centroid_lps, *S = v->axis_superior, *A = v->axis_anterior,
                 *L = v->axis_left;
    double lo, hi;
    if (!sm_frame_ray_extent(&mask, c, S, 10.0, 80.0, &lo, &hi))
        return false;
    double tm = 0.5 * (lo + hi), h = hi - lo;
    for (int d = 0; d < 3; d++) {
        ep[0][d] = c[d] + hi * S[d];
        ep[1][d] = c[d] + lo * S[d];
    }
    const double *sp = in->labels->spacing;
    double smax = fmax(sp[0], fmax(sp[1], sp[2]));
    double span = fmin(WALL_SPAN * h, 0.5 * h - smax), t0 = -span, t1 = span;
    bool sacrum = v->verse_label == SM_FRAME_SACRUM_ID;
    if (sacrum) {
        /* the sacrum: only the wall of S1 below its endplate (the mask goes on into the
         * sacral bodies, whose wall turns posteriorly with the sacral kyphosis) */
        t1 = 0.5 * h - smax;
        t0 = t1 - fmin(SACRUM_WALL_MM, h - 2 * smax);
    }
    if (!(t1 - t0 > 0.2 * h))
        return false;
    double ts[WALL_N], ws[WALL_N];
    bool use[WALL_N];
    int k = 0;
    for (int q = 0; q < WALL_N; q++) {
        double t = t0 + (t1 - t0) * q / (WALL_N - 1), sum = 0;
        int nk = 0;
        for (int x = -1; x <= 1; x++) {
            double o[3];
            for (int d = 0; d < 3; d++)
                o[d] = c[d] + (tm + t) * S[d] + x * 3.0 * L[d];
            double w;
            if (wall_crossing(&mask, o, A, S, h, &w))
                sum += w, nk++;
        }
        if (nk >= 2) {
            ts[k] = t, ws[k] = sum / nk, use[k] = true;
            k++;
        }
    }
    if (k < 4)
        return false;
    if (sacrum) {
        /* a body mask loses the back of S1 where the canal (or the arch) mask overlaps it:
         * those crossings lie anterior of the wall, never posterior of it, and the S1 wall
         * itself bends by less than SACRUM_EATEN_MM over these 15 mm; so crossings more
         * than SACRUM_EATEN_MM anterior of the most posterior one are not the wall (the
         * robust-sigma pass below is not used: a wall eaten over half its length
         * defeats it) */
        double wmin = ws[0];
        for (int i = 1; i < k; i++)
            wmin = fmin(wmin, ws[i]);
        for (int i = 0; i < k; i++)
            use[i] = ws[i] <= wmin + SACRUM_EATEN_MM;
    }
    double a = 0, b = 0;
    for (int pass = 0; pass < 2; pass++) {
        double mt = 0, mw = 0, stt = 0, stw = 0;
        int m = 0;
        for (int i = 0; i < k; i++)
            if (use[i])
                mt += ts[i], mw += ws[i], m++;
        if (m < 4)
            return false;
        mt /= m, mw /= m;
        for (int i = 0; i < k; i++)
            if (use[i]) {
                stt += (ts[i] - mt) * (ts[i] - mt);
                stw += (ts[i] - mt) * (ws[i] - mw);
            }
        b = stt > 0 ? stw / stt : 0;
        a = mw - b * mt;
        if (pass == 1)
            break;
        if (sacrum)
            continue; /* its outliers are the eaten wall, removed above */
        double res[WALL_N], srt[WALL_N];
        for (int i = 0; i < k; i++)
            srt[i] = res[i] = fabs(ws[i] - a - b * ts[i]);
        qsort(srt, (size_t)k, sizeof *srt, sm_cmp_double);
        double lim = fmax(1.0, 3 * 1.4826 * srt[k / 2]);
        for (int i = 0; i < k; i++)
            use[i] = res[i] <= lim;
    }
    /* an S1 wall line more than SACRUM_MAX_DEG off the S1 endplate normal is not the wall
     * (what is left of a wall eaten along its length): no L5/S1 translation */
    if (sacrum && fabs(b) > tan(SACRUM_MAX_DEG / DEG))
        return false;
    /* lateral position: the body centroid; for the sacrum, whose mask goes on into the
     * lower sacral bodies and alae, the lateral centre of S1's own sections (rays along
     * the left axis at mid-depth over the sampled heights) */
    double xc = 0;
    if (v->verse_label == SM_FRAME_SACRUM_ID) {
        double sx = 0;
        int nx = 0;
        for (int q = 0; q < WALL_N; q++) {
            double t = t0 + (t1 - t0) * q / (WALL_N - 1), o[3], yw = a + b * t;
            double y = yw + 0.5 * (v->ap_depth_mm > 0 ? v->ap_depth_mm : 0);
            for (int d = 0; d < 3; d++)
                o[d] = c[d] + (tm + t) * S[d] + y * A[d];
            if (sm_frame_ray_extent(&mask, o, L, 3.0, 80.0, &lo, &hi))
                sx += 0.5 * (lo + hi), nx++;
        }
        if (nx < 4)
            return false;
        xc = sx / nx;
    }
    for (int d = 0; d < 3; d++) {
        line_p[d] = c[d] + tm * S[d] + a * A[d] + xc * L[d];
        line_d[d] = S[d] + b * A[d];
        centre_p[d] = c[d] + tm * S[d] + xc * L[d];
    }
    /* endplate points at the posterior-height position (85 % of the depth from the
     * anterior wall, i.e. 15 % of it in front of the posterior wall), next to the posterior
     * corners that listhesis is measured at; the central ray would move with a biconcave
     * or wedge collapse */
    if (v->ap_depth_mm > 0) {
        double o[3];
        for (int d = 0; d < 3; d++)
            o[d] = line_p[d] + 0.15 * v->ap_depth_mm * A[d];
        if (sm_frame_ray_extent(&mask, o, S, 3.0, 80.0, &lo, &hi))
            for (int d = 0; d < 3; d++) {
                ep[0][d] = o[d] + hi * S[d];
                ep[1][d] = o[d] + lo * S[d];
            }
    }
    return sm_frame_normalize(line_d);
}

/* Point where the line p + s*dir meets the plane through q with normal nrm. */
static bool line_plane(const double p[3], const double dir[3], const double q[3],
                       const double nrm[3], double out[3])
{
    double den = sm_frame_dot(dir, nrm);
    if (fabs(den) < 1e-6)
        return false;
    double w[3] = {q[0] - p[0], q[1] - p[1], q[2] - p[2]};
    double s = sm_frame_dot(w, nrm) / den;
    for (int d = 0; d < 3; d++)
        out[d] = p[d] + s * dir[d];
    return true;
}

/* Expected segmental angle of segment i from segments within +-2 that are usable:
 * median (first pass) or least-squares line over the order (both sides) / mean. */
static double expected_angle(const double *ang, const bool *use, size_t n, size_t i, bool med)
{
    double xs[4], ys[4];
    int k = 0, above = 0, below = 0;
    for (long d = -2; d <= 2; d++) {
        long j = (long)i + d;
        if (d == 0 || j < 0 || j >= (long)n || !use[j] || !isfinite(ang[j]))
            continue;
        xs[k] = (double)d;
        ys[k++] = ang[j];
        if (d < 0)
            above++;
        else
            below++;
    }
    if (k == 0)
        return NAN;
    if (med) {
        qsort(ys, (size_t)k, sizeof *ys, sm_cmp_double);
        return k % 2 ? ys[k / 2] : 0.5 * (ys[k / 2 - 1] + ys[k / 2]);
    }
    double mx = 0, my = 0;
    for (int q = 0; q < k; q++)
        mx += xs[q], my += ys[q];
    mx /= k, my /= k;
    if (above == 0 || below == 0 || k < 2)
        return my;
    double sxx = 0, sxy = 0;
    for (int q = 0; q < k; q++) {
        sxx += (xs[q] - mx) * (xs[q] - mx);
        sxy += (xs[q] - mx) * (ys[q] - my);
    }
    return sxx > 0 ? my - (sxy / sxx) * mx : my;
}

bool sm_metric_alignment(SmError **error, const SmMetricsInput *in, SmSeriesMetrics *m)
{
    if (!in || !m || m->n != in->n_levels || !in->labels || !in->subregions) {
        sm_error_set(error, SM_ERR_USAGE, "metrics alignment: inconsistent input");
        return false;
    }
    size_t n = m->n;
    if (n < 2)
        return true;
    double *kyph = malloc(n * sizeof *kyph), *scol = malloc(n * sizeof *scol);
    bool *use = malloc(n * sizeof *use), *use2 = malloc(n * sizeof *use2);
    if (!kyph || !scol || !use || !use2) {
        free(kyph), free(scol), free(use), free(use2);
        sm_error_set(error, SM_ERR_NOMEM, "metrics alignment: out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        kyph[i] = scol[i] = NAN;
        use[i] = false;
    }
    /* segment i joins vertebra i and the one below it (i + 1) */
    for (size_t i = 0; i + 1 < n; i++) {
        SmVertebraMetrics *up = &m->v[i];
        const SmVertebraMetrics *lo = &m->v[i + 1];
        if (!frame_ok(up) || !frame_ok(lo))
            continue;
        const double *S = lo->axis_superior, *A = lo->axis_anterior, *L = lo->axis_left;
        const double *Su = up->axis_superior;
        up->kyphosis_deg = kyph[i] = atan2(sm_frame_dot(Su, A), sm_frame_dot(Su, S)) * DEG;
        up->scoliosis_deg = scol[i] = atan2(sm_frame_dot(Su, L), sm_frame_dot(Su, S)) * DEG;
        /* posterior wall lines at the disc mid-plane (through the midpoint of the two
         * facing endplate centres, normal = the mean axis of the two vertebrae); the offset
         * is measured perpendicular to that mean axis */
        double pu[3], du[3], pl[3], dl[3], eu[2][3], el[2][3], q[3], nrm[3], xu[3], xl[3];
        double cu[3], cl[3], yu[3], yl[3];
        if (wall_line(in, up, pu, du, eu, cu) && wall_line(in, lo, pl, dl, el, cl)) {
            double am[3];
            for (int d = 0; d < 3; d++) {
                q[d] = 0.5 * (eu[1][d] + el[0][d]);
                nrm[d] = Su[d] + S[d];
                am[d] = up->axis_anterior[d] + A[d];
            }
            double lm[3];
            bool ok = sm_frame_normalize(nrm);
            double dd = sm_frame_dot(am, nrm);
            for (int d = 0; d < 3; d++)
                am[d] -= dd * nrm[d];
            ok = ok && sm_frame_normalize(am);
            sm_frame_cross(nrm, am, lm);
            if (ok && line_plane(pu, du, q, nrm, xu) && line_plane(pl, dl, q, nrm, xl) &&
                line_plane(cu, du, q, nrm, yu) && line_plane(cl, dl, q, nrm, yl)) {
                /* sagittal: the posterior walls; lateral: the body centres (a wall point
                 * lies a body's half-depth behind its centre along the body's own
                 * anterior axis, so a few degrees of axial rotation between two bodies
                 * would move it sideways by millimetres) */
                double dv[3] = {xu[0] - xl[0], xu[1] - xl[1], xu[2] - xl[2]};
                double dc[3] = {yu[0] - yl[0], yu[1] - yl[1], yu[2] - yl[2]};
                double sag = sm_frame_dot(dv, am), cor = sm_frame_dot(dc, lm);
                up->translation_mm = hypot(sag, cor);
                if (up->translation_mm >= SM_SINS_TRANSLATION_MM)
                    sm_strlist_add(&up->notes,
                                   "%s/%s translation %.1f mm (%.1f mm %s, %.1f mm to the %s)",
                                   up->level, lo->level, up->translation_mm, fabs(sag),
                                   sag >= 0 ? "anterior" : "posterior", fabs(cor),
                                   cor >= 0 ? "left" : "right");
            }
        }
        use[i] = true;
    }
    /* focal angles: versus the neighbouring segments, excluding abnormal ones */
    for (size_t i = 0; i < n; i++) {
        use2[i] = use[i];
        if (!use[i])
            continue;
        double ek = expected_angle(kyph, use, n, i, true), es = expected_angle(scol, use, n, i, true);
        double dk = isfinite(ek) ? kyph[i] - ek : 0, ds = isfinite(es) ? scol[i] - es : 0;
        if (fabs(dk) >= SM_SINS_DEFORMITY_DEG || fabs(ds) >= SM_SINS_DEFORMITY_DEG)
            use2[i] = false;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        SmVertebraMetrics *up = &m->v[i];
        if (!use[i])
            continue;
        double ek = expected_angle(kyph, use2, n, i, false), es = expected_angle(scol, use2, n, i, false);
        /* without a comparable segment the physiological angle is unknown: a lone segment
         * is judged on its raw angles */
        double dk = kyph[i] - (isfinite(ek) ? ek : 0), ds = scol[i] - (isfinite(es) ? es : 0);
        int c = sm_sins_alignment_class(up->translation_mm, dk, ds);
        up->alignment = c < 0 ? SM_ALIGN_NORMAL : (SmAlignClass)c;
        if (c == SM_SINS_ALIGN_DEFORMITY)
            sm_strlist_add(&up->notes,
                           "%s/%s focal angle: kyphosis %+.1f deg, scoliosis %+.1f deg versus "
                           "the neighbouring segments",
                           up->level, m->v[i + 1].level, dk, ds);
        if (c < 0)
            sm_strlist_add(&up->notes, "alignment not measurable (posterior walls not found)");
    }
    free(kyph), free(scol), free(use), free(use2);
    return true;
}
