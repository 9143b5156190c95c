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

/* The mid-sagittal posterior wall of a body next to one endplate (sense +1 superior, -1
 * inferior): the mean wall crossing of 4 x 3 rays along the anterior axis (lateral
 * offsets -3, 0, 3 mm) at 25-40 % of the body height from its middle towards that
 * endplate, but never closer to the endplate than the largest voxel spacing (there the
 * interpolated mask mixes with the disc and the wall seems to recede); placed at the
 * middle of the sampled band. Corners themselves are rounded and blurred, so they are not
 * used. */
static bool posterior_wall(const SmMetricsInput *in, const SmVertebraMetrics *v, int sense,
                           double p[3])
{
    SmBodyMask mask;
    sm_frame_mask_init(&mask, in->labels, in->subregions, v->verse_label);
    const double *c = v->body_centroid_lps, *S = v->axis_superior, *A = v->axis_anterior,
                 *L = v->axis_left;
    double lo, hi;
    if (!sm_frame_ray_extent(&mask, c, S, 10.0, 80.0, &lo, &hi))
        return false;
    double tm = 0.5 * (lo + hi), h = hi - lo, sum = 0;
    const double *sp = in->labels->spacing;
    double smax = fmax(sp[0], fmax(sp[1], sp[2]));
    double b1 = fmin(0.40 * h, fmax(0.0, 0.5 * h - smax));
    double b0 = fmin(0.25 * h, 0.6 * b1);
    int k = 0;
    for (int q = 0; q < 4; q++)
        for (int x = -1; x <= 1; x++) {
            double o[3], off = b0 + (b1 - b0) * q / 3.0;
            for (int d = 0; d < 3; d++)
                o[d] = c[d] + (tm + sense * off) * S[d] + x * 3.0 * L[d];
            if (sm_frame_ray_extent(&mask, o, A, 3.0, 80.0, &lo, &hi))
                sum += lo, k++;
        }
    if (k < 4)
        return false;
    for (int d = 0; d < 3; d++)
        p[d] = c[d] + (tm + sense * 0.5 * (b0 + b1)) * S[d] + (sum / k) * A[d];
    return true;
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
        qsort(ys, (size_t)k, sizeof *ys, cmp_double);
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
        /* posterior walls extended along the body axes to the disc mid-plane (normal: the
         * bisector of the two axes, through the midpoint of the two wall points) */
        double pu[3], pl[3], q[3], nrm[3], xu[3], xl[3];
        if (posterior_wall(in, up, -1, pu) && posterior_wall(in, lo, +1, pl)) {
            for (int d = 0; d < 3; d++) {
                q[d] = 0.5 * (pu[d] + pl[d]);
                nrm[d] = Su[d] + S[d];
            }
            if (sm_frame_normalize(nrm) && line_plane(pu, Su, q, nrm, xu) &&
                line_plane(pl, S, q, nrm, xl)) {
                double dv[3] = {xu[0] - xl[0], xu[1] - xl[1], xu[2] - xl[2]};
                double sag = sm_frame_dot(dv, A), cor = sm_frame_dot(dv, L);
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
