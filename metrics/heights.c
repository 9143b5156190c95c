/* Vertebral body frame, anterior/middle/posterior heights along the vertebra's own axis,
 * expected heights from normal neighbours, height loss, Genant grade and deformity. */
#include "frame.h"
#include "metrics_internal.h"
#include "sins_rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* AP positions of the three heights, fraction of the depth from the anterior wall */
static const double Q_POS[3] = {0.15, 0.50, 0.85};
#define N_LAT 15         /* parasagittal rays over the central LAT_SPAN[q] of the width */
/* anterior, middle, posterior: the middle band is wider (the middle of an endplate is
 * flat or a depression, fitted below); near the anterior and posterior walls the
 * endplate's rim rounds off laterally (on the real example CT a 50 % band moved the
 * anterior heights by up to 1.6 mm), so those bands stay narrow */
static const double LAT_SPAN[3] = {0.25, 0.5, 0.25};
#define N_AP 5           /* and AP offsets of AP_STEP of the depth around each position */
#define AP_STEP 0.04
/* middle height: the bowl model replaces the plane when its lateral curvature spans more
 * than this across the band (mm) */
#define BOWL_MIN_MM 1.0
/* Deformity: crush when the posterior height is reduced too (vs the neighbours) by at
 * least this and at least CRUSH_SHARE of the worst loss. */
#define CRUSH_MIN 0.15
#define CRUSH_SHARE 0.6

/* Least-squares line h = c0 + c1*y over the samples marked in use[]; false if < 6. */
static bool fit_line(const double *y, const double *h, const bool *use, int n, double c[2])
{
    double my = 0, mh = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (use[i])
            my += y[i], mh += h[i], m++;
    if (m < 6)
        return false;
    my /= m, mh /= m;
    double syy = 0, syh = 0;
    for (int i = 0; i < n; i++)
        if (use[i]) {
            syy += (y[i] - my) * (y[i] - my);
            syh += (y[i] - my) * (h[i] - mh);
        }
    c[1] = syy > 0 ? syh / syy : 0;
    c[0] = mh - c[1] * my;
    return true;
}

/* Least-squares h = c0 + c1*y + c2*y^2 + c3*x^2 over the samples marked in use[]
 * (normal equations, Gaussian elimination with partial pivoting); false if fewer than 12
 * samples or singular. */
static bool fit_bowl(const double *y, const double *x, const double *h, const bool *use, int n,
                     double c[4])
{
    enum { NP = 4 };
    double A[NP][NP + 1];
    memset(A, 0, sizeof A);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!use[i])
            continue;
        double v[NP] = {1, y[i], x[i] * x[i], y[i] * y[i]};
        for (int a = 0; a < NP; a++) {
            for (int b = 0; b < NP; b++)
                A[a][b] += v[a] * v[b];
            A[a][NP] += v[a] * h[i];
        }
        m++;
    }
    if (m < 12)
        return false;
    for (int col = 0; col < NP; col++) {
        int piv = col;
        for (int r = col + 1; r < NP; r++)
            if (fabs(A[r][col]) > fabs(A[piv][col]))
                piv = r;
        if (!(fabs(A[piv][col]) > 1e-12))
            return false;
        for (int b = 0; b <= NP; b++) {
            double t = A[col][b];
            A[col][b] = A[piv][b];
            A[piv][b] = t;
        }
        for (int r = col + 1; r < NP; r++) {
            double f = A[r][col] / A[col][col];
            for (int b = col; b <= NP; b++)
                A[r][b] -= f * A[col][b];
        }
    }
    double z[NP];
    for (int r = NP - 1; r >= 0; r--) {
        double acc = A[r][NP];
        for (int b = r + 1; b < NP; b++)
            acc -= A[r][b] * z[b];
        z[r] = acc / A[r][r];
    }
    c[0] = z[0], c[1] = z[1], c[2] = z[3], c[3] = z[2];
    return true;
}

/* Endplate-to-endplate extent of the body along a ray parallel to the axis: the run
 * through the origin (sm_frame_ray_extent), extended over interior gaps of the mask to
 * the outermost body voxels within SPAN_REACH body heights (h0) of the mid-height. A
 * ray near the posterior wall crosses the basivertebral foramen (a notch at mid-height
 * filled with veins, not bone) and a ray through a lytic focus crosses tissue below the
 * bone threshold: neither interrupts the body between its endplates, while the next body
 * (another label) and the disc are never inside the mask. 0.2 mm steps, 0.5 level. */
#define SPAN_REACH 0.75
static bool ray_span(const SmBodyMask *mask, const double p[3], const double dir[3], double h0,
                     double *lo, double *hi)
{
    if (!sm_frame_ray_extent(mask, p, dir, 0.3 * h0, 80.0, lo, hi))
        return false;
    double reach = SPAN_REACH * h0;
    for (int s = -1; s <= 1; s += 2) {
        double edge = s > 0 ? *hi : *lo, last = edge, prev_v = 0, prev_t = edge;
        bool in = false;
        for (double t = edge + 0.2 * s; s > 0 ? t <= reach : t >= -reach; t += 0.2 * s) {
            double q[3] = {p[0] + t * dir[0], p[1] + t * dir[1], p[2] + t * dir[2]};
            double v = sm_frame_mask_sample(mask, q);
            if (v >= 0.5)
                in = true;
            else if (in) { /* left a re-entered piece: its 0.5 crossing */
                last = prev_t + s * 0.2 * (prev_v - 0.5) / (prev_v - v);
                in = false;
            }
            prev_v = v, prev_t = t;
        }
        if (s > 0)
            *hi = last;
        else
            *lo = last;
    }
    return *lo < *hi;
}

/* Heights of one body at the three AP positions: for each, N_LAT parasagittal rays over
 * the central LAT_SPAN[q] of the width (wider for the middle) times 5 AP offsets (-8..+8 %
 * of the depth, at most two voxels each), endplate-to-endplate extents; a line in the AP
 * offset is fitted (one pass of outlier rejection: 3 robust sigmas, at least 1 mm) and
 * evaluated at the position.
 * The band averages the voxel staircase of thick slices (an endplate nearly parallel to
 * the slices crosses a slice somewhere in it; a staircase across the band averages out
 * with its width), and the line keeps a wedge's gradient exact. For the middle height a
 * depression (biconcave) is fitted with its curvature (fit_bowl) and read on the midline
 * when its lateral curvature spans more than BOWL_MIN_MM across the band. NAN where fewer
 * than half the rays hit. */
static void body_heights(const SmBodyMask *mask, const SmBodyFrame *f, double hq[3])
{
    double depth = f->y_ant + f->y_post;
    /* The AP band exists to average the staircase of coarse voxels: it need not be wider
     * than two voxels each side, so on fine grids it stays clear of endplate features near
     * the measuring points (e.g. the rim of a biconcave depression). */
    const double *sp = mask->labels->spacing;
    double vmax = fmax(sp[0], fmax(sp[1], sp[2]));
    double ap_step = fmin(AP_STEP * depth, vmax);
    for (int q = 0; q < 3; q++) {
        double ys[N_LAT * N_AP], xs[N_LAT * N_AP], hs[N_LAT * N_AP];
        bool use[N_LAT * N_AP];
        int n = 0;
        double y0 = f->y_ant - Q_POS[q] * depth;
        for (int a = 0; a < N_AP; a++)
            for (int b = 0; b < N_LAT; b++) {
                double dy = (a - (N_AP - 1) / 2) * ap_step;
                double x = (-0.5 + b / (N_LAT - 1.0)) * LAT_SPAN[q] * f->width;
                double p[3], lo, hi;
                for (int d = 0; d < 3; d++)
                    p[d] = f->c[d] + x * f->left[d] + (y0 - dy) * f->ant[d] + f->t_mid * f->sup[d];
                if (ray_span(mask, p, f->sup, f->height0, &lo, &hi)) {
                    ys[n] = dy, xs[n] = x, hs[n] = hi - lo, use[n] = true;
                    n++;
                }
            }
        double c[2];
        hq[q] = NAN;
        if (n < (N_LAT * N_AP) / 2 || !fit_line(ys, hs, use, n, c))
            continue;
        double res[N_LAT * N_AP], srt[N_LAT * N_AP];
        for (int i = 0; i < n; i++)
            srt[i] = res[i] = fabs(hs[i] - c[0] - c[1] * ys[i]);
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && srt[j - 1] > srt[j]; j--) {
                double t = srt[j];
                srt[j] = srt[j - 1];
                srt[j - 1] = t;
            }
        double lim = fmax(1.0, 3 * 1.4826 * srt[n / 2]);
        for (int i = 0; i < n; i++)
            use[i] = res[i] <= lim;
        if (!fit_line(ys, hs, use, n, c))
            continue;
        hq[q] = c[0];
        if (q != 1)
            continue;
        /* an endplate depression (biconcave): heights rise laterally away from the
         * midline by more than BOWL_MIN_MM across the band; the band would average the
         * bowl's bottom away, so its curvature is fitted and the height taken on the
         * midline. Only the lateral curvature decides: the AP band is at most two voxels
         * each side (it averages the slice staircase), too short to resolve a depression's
         * AP curvature, so the fitted AP curvature is mostly the staircase; it stays in
         * the model (a round depression has one) but gating on it dropped shallow
         * depressions when the staircase made it negative and fired on flat endplates
         * when it made it large (docs/metrics.md "Heights"). */
        double cb[4];
        double xmax = 0.5 * LAT_SPAN[q] * f->width;
        if (fit_bowl(ys, xs, hs, use, n, cb) && cb[3] * xmax * xmax > BOWL_MIN_MM &&
            cb[0] < hq[q])
            hq[q] = cb[0];
    }
}

/* Levels whose body is not a reference for others nor graded: C1 (none), C2 (dens), sacrum. */
static bool gradable(int verse)
{
    return verse >= 3 && verse <= 25 ? true : verse == 28;
}

/* Normal caudal growth of body heights from one level to the next, as a factor: 3 % per
 * level from T1 to L1, 2 % from L1 to L4, flat in the cervical spine (C3-C7 about 14 mm)
 * and from L4 down. 3 % is what the real chest CT LIDC-IDRI-0314 shows (middle heights
 * 17.0 mm at T1 to 22.7 mm at T11, 2.9 % per level); morphometric means (posterior heights
 * about 17 mm at T4, 25 mm at L1) imply up to 4.4 %. References lie within 3 places, so
 * that spread moves an expected height by at most about 4 %. */
static double level_growth(int verse)
{
    if (verse >= 8 && verse <= 19)
        return 0.03;
    return verse >= 20 && verse <= 22 ? 0.02 : 0.0;
}

/* Height q of neighbour j carried over to the level of vertebra i with the normal trend. */
static double carry(int verse_j, int verse_i, double h)
{
    double f = 1.0;
    if (verse_j < verse_i)
        for (int l = verse_j; l < verse_i; l++)
            f *= 1.0 + level_growth(l);
    else
        for (int l = verse_i; l < verse_j; l++)
            f /= 1.0 + level_growth(l);
    return h * f;
}

#define NEIGH_RANGE 2
/* Reference vertebrae for the expected heights: a tricube-weighted mean over the vertebrae
 * judged normal within REF_WINDOW places; a vertebra is judged normal while each of its
 * heights is at least (1 - NORMAL_LOSS) of its own expectation (NORMAL_LOSS is half the
 * Genant grade 1 threshold: a sub-threshold collapse is not a reference); the judgement
 * and the expectations are iterated (at most REF_ITER times) until they agree. */
#define REF_WINDOW 3
#define NORMAL_LOSS 0.10
#define REF_ITER 10

static int trend_level(int verse)
{
    return verse == 28 ? 19 : verse;
}

/* First pass only: the largest of the gradable neighbours' heights q within +-range
 * places, each carried to this level with the normal trend. NAN when there is none. */
static double expected_from(const SmSeriesMetrics *m, const bool *ref, size_t i, int q, long range)
{
    double best = NAN;
    for (long d = -range; d <= range; d++) {
        long j = (long)i + d;
        if (d == 0 || j < 0 || j >= (long)m->n || !ref[j])
            continue;
        const SmVertebraMetrics *v = &m->v[j];
        double h = q == 0 ? v->height_anterior_mm : (q == 1 ? v->height_middle_mm : v->height_posterior_mm);
        if (!isfinite(h))
            continue;
        double e = carry(trend_level(v->verse_label), trend_level(m->v[i].verse_label), h);
        if (isnan(best) || e > best)
            best = e;
    }
    return best;
}

/* Expected value of height q of vertebra i from the vertebrae marked in ok[] (never i
 * itself): the tricube-weighted (by distance in places, window REF_WINDOW) geometric mean
 * of their heights q, each carried to this level with the normal trend; with none inside
 * the window, the nearest ones (both sides when equally near). NAN when there is none. */
static double expected_ref(const SmSeriesMetrics *m, const bool *ok, size_t i, int q)
{
    int li = trend_level(m->v[i].verse_label);
    double sw = 0, sy = 0;
    long dmin = -1;
    for (long pass = 0; pass < 2 && sw == 0; pass++) {
        for (size_t j = 0; j < m->n; j++) {
            long d = labs((long)j - (long)i);
            if (j == i || !ok[j])
                continue;
            if (pass == 0 && d > REF_WINDOW)
                continue;
            if (pass == 1 && dmin >= 0 && d != dmin)
                continue;
            const SmVertebraMetrics *v = &m->v[j];
            double h = q == 0 ? v->height_anterior_mm : (q == 1 ? v->height_middle_mm : v->height_posterior_mm);
            if (!(h > 0))
                continue;
            double u = (double)d / (REF_WINDOW + 1.0);
            double w = pass == 0 ? (1 - u * u * u) * (1 - u * u * u) * (1 - u * u * u) : 1.0;
            sw += w;
            sy += w * log(carry(trend_level(v->verse_label), li, h));
        }
        if (pass == 0 && sw == 0) /* nearest reference outside the window */
            for (size_t j = 0; j < m->n; j++) {
                long d = labs((long)j - (long)i);
                if (j != i && ok[j] && (dmin < 0 || d < dmin))
                    dmin = d;
            }
        if (dmin < 0 && sw == 0)
            break;
    }
    return sw > 0 ? exp(sy / sw) : NAN;
}

static void heights_of(const SmVertebraMetrics *v, double h[3])
{
    h[0] = v->height_anterior_mm;
    h[1] = v->height_middle_mm;
    h[2] = v->height_posterior_mm;
}

bool sm_metric_heights(SmError **error, const SmMetricsInput *in, SmSeriesMetrics *m)
{
    if (!in || !m || m->n != in->n_levels || (in->n_levels > 0 && !in->verse_labels)) {
        sm_error_set(error, SM_ERR_USAGE, "metrics heights: inconsistent input");
        return false;
    }
    size_t n = in->n_levels;
    if (n == 0)
        return true;
    SmFrameStats *st = calloc(n, sizeof *st);
    SmBodyFrame *fr = calloc(n, sizeof *fr);
    double *hh = calloc(n * 3, sizeof *hh);
    bool *ref = calloc(n, sizeof *ref);
    if (!st || !fr || !hh || !ref) {
        free(st), free(fr), free(hh), free(ref);
        sm_error_set(error, SM_ERR_NOMEM, "metrics heights: out of memory");
        return false;
    }
    if (!sm_frame_stats_scan(error, in, st)) {
        free(st), free(fr), free(hh), free(ref);
        return false;
    }

    /* run: one body per iteration; each is a pure function of the maps */
    const int *ids = in->verse_labels;
    const SmVolume *lab = in->labels, *sub = in->subregions;
    long nv = (long)n;
    int nth = in->threads > 0 ? in->threads : sm_omp_threads();
#pragma omp parallel for default(none) shared(st, fr, hh, ids, lab, sub) firstprivate(nv) \
    schedule(dynamic, 1) num_threads(nth)
    for (long i = 0; i < nv; i++) {
        SmBodyMask mask;
        sm_frame_mask_init(&mask, lab, sub, ids[i]);
        /* local direction of the column from the nearest bodies above and below */
        double hint[3] = {0, 0, 0};
        const double *up = NULL, *dn = NULL;
        /* (a neighbour whose body mask is under a quarter of this one's, e.g. a sacrum cut
         * to a sliver by the segmentation, would point the hint anywhere) */
        if (i > 0 && st[i - 1].n_body >= 8 && 4 * st[i - 1].n_body >= st[i].n_body)
            up = st[i - 1].body_centroid;
        if (i + 1 < nv && st[i + 1].n_body >= 8 && 4 * st[i + 1].n_body >= st[i].n_body)
            dn = st[i + 1].body_centroid;
        const double *a = up ? up : st[i].body_centroid, *b = dn ? dn : st[i].body_centroid;
        bool have_hint = (up || dn) && st[i].n_body >= 8;
        for (int d = 0; d < 3; d++)
            hint[d] = a[d] - b[d];
        if (have_hint)
            have_hint = sm_frame_normalize(hint);
        sm_frame_fit(&mask, &st[i], have_hint ? hint : NULL, &fr[i]);
        if (fr[i].ok)
            body_heights(&mask, &fr[i], hh + 3 * i);
        else
            hh[3 * i] = hh[3 * i + 1] = hh[3 * i + 2] = NAN;
    }

    /* finish (serial): frames and heights into the results */
    for (size_t i = 0; i < n; i++) {
        SmVertebraMetrics *v = &m->v[i];
        if (st[i].n_body > 0)
            memcpy(v->body_centroid_lps, st[i].body_centroid, sizeof v->body_centroid_lps);
        if (!fr[i].ok) {
            sm_strlist_add(&v->notes, st[i].n_body == 0 ? "no vertebral body in the label maps"
                                                        : "body frame could not be fitted");
            continue;
        }
        if (v->verse_label == SM_FRAME_SACRUM_ID && i > 0 && 4 * st[i].n_body < st[i - 1].n_body) {
            /* a sacral body mask under a quarter of the body above it is a fragment (the
             * S1 body not found in the sub-regions, e.g. the promontory classed as arch on
             * a steep L5/S1): its axis and posterior wall are no reference for L5/S1 */
            sm_strlist_add(&v->notes, "S1 body mask too small (%zu voxels against %zu above): "
                                      "frame not fitted, L5/S1 alignment not measured",
                           st[i].n_body, st[i - 1].n_body);
            continue;
        }
        if (in->extent_doubtful && in->extent_doubtful[i]) {
            /* a segment that may hold two bodies, or part of one: its extent is not a
             * height and its axis is no reference (segmentation's reason in confidence) */
            sm_strlist_add(&v->notes, "vertebra extent doubtful (a disc plane may be missed "
                                      "or misplaced): frame, heights and alignment not measured");
            continue;
        }
        if (st[i].n_body_border > 0) {
            /* a body that reaches a face of the grid is cut by the field of view: its
             * extents are not its heights and its axis is fitted to a fragment */
            sm_strlist_add(&v->notes, "body cut by the field of view: frame, heights and "
                                      "alignment not measured");
            continue;
        }
        memcpy(v->axis_superior, fr[i].sup, sizeof v->axis_superior);
        memcpy(v->axis_anterior, fr[i].ant, sizeof v->axis_anterior);
        memcpy(v->axis_left, fr[i].left, sizeof v->axis_left);
        v->ap_depth_mm = fr[i].y_ant + fr[i].y_post;
        v->height_anterior_mm = hh[3 * i];
        v->height_middle_mm = hh[3 * i + 1];
        v->height_posterior_mm = hh[3 * i + 2];
        if (st[i].n_post < 8)
            sm_strlist_add(&v->notes, "no posterior elements: anterior axis from the body shape");
        ref[i] = gradable(v->verse_label) && isfinite(hh[3 * i]) && isfinite(hh[3 * i + 1]) &&
                 isfinite(hh[3 * i + 2]);
    }

    /* first pass: which references are themselves collapsed (>= 20 % against the tallest
     * of their own neighbours, or Ha/Hp or Hm/Hp below 0.8); they are then left out of
     * their neighbours' expectations (unless nothing else is left) */
    bool *ref2 = calloc(n, sizeof *ref2);
    if (!ref2) {
        free(st), free(fr), free(hh), free(ref);
        sm_error_set(error, SM_ERR_NOMEM, "metrics heights: out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        ref2[i] = ref[i];
        if (!ref[i])
            continue;
        double h[3];
        heights_of(&m->v[i], h);
        bool collapsed = fmin(h[0], h[1]) < 0.8 * h[2];
        for (int q = 0; q < 3; q++) {
            double e = expected_from(m, ref, i, q, NEIGH_RANGE);
            if (isfinite(e) && h[q] < 0.8 * e)
                collapsed = true;
        }
        if (collapsed)
            ref2[i] = false;
    }

    /* expected heights: iterate "judged normal" and the expectations from the normal ones */
    bool *ok = calloc(n, sizeof *ok), *nok = calloc(n, sizeof *nok);
    double *ee = calloc(3 * n, sizeof *ee);
    if (!ok || !nok || !ee) {
        free(ok), free(nok), free(ee), free(ref2);
        free(st), free(fr), free(hh), free(ref);
        sm_error_set(error, SM_ERR_NOMEM, "metrics heights: out of memory");
        return false;
    }
    bool any_ok = false;
    for (size_t i = 0; i < n; i++)
        any_ok |= ref2[i];
    for (size_t i = 0; i < n; i++)
        ok[i] = any_ok ? ref2[i] : ref[i];
    for (int it = 0; it < REF_ITER; it++) {
        for (size_t i = 0; i < n; i++)
            for (int q = 0; q < 3; q++) {
                double e = expected_ref(m, ok, i, q);
                ee[3 * i + q] = isfinite(e) ? e : expected_ref(m, ref, i, q);
            }
        bool changed = false, any = false;
        for (size_t j = 0; j < n; j++) {
            double h[3];
            heights_of(&m->v[j], h);
            nok[j] = ref[j];
            for (int q = 0; q < 3 && nok[j]; q++)
                nok[j] = isfinite(ee[3 * j + q]) && h[q] >= (1 - NORMAL_LOSS) * ee[3 * j + q];
            any |= nok[j];
            changed |= nok[j] != ok[j];
        }
        if (!any || !changed)
            break;
        memcpy(ok, nok, n * sizeof *ok);
    }

    /* loss, grade, deformity */
    for (size_t i = 0; i < n; i++) {
        SmVertebraMetrics *v = &m->v[i];
        if (!fr[i].ok)
            continue;
        if (!gradable(v->verse_label)) {
            sm_strlist_add(&v->notes, "%s: not graded for collapse (no comparable body)", v->level);
            continue;
        }
        if (st[i].n_body_border > 0)
            continue; /* noted above */
        double h[3], e[3], loss[3];
        heights_of(v, h);
        if (!isfinite(h[0]) || !isfinite(h[1]) || !isfinite(h[2])) {
            sm_strlist_add(&v->notes, "heights not measurable (body too small or cut off)");
            continue;
        }
        bool any = true;
        for (int q = 0; q < 3; q++) {
            e[q] = ee[3 * i + q];
            if (!isfinite(e[q]))
                any = false;
        }
        if (!any) {
            /* no normal neighbour: Genant's within-vertebra ratios against Hp */
            e[0] = e[1] = e[2] = h[2];
            sm_strlist_add(&v->notes, "no normal neighbour: loss from Ha/Hp and Hm/Hp only");
        }
        int worst = 0;
        for (int q = 0; q < 3; q++) {
            loss[q] = 1 - h[q] / e[q];
            if (loss[q] > loss[worst])
                worst = q;
        }
        double lw = loss[worst] > 0 ? loss[worst] : 0;
        v->expected_height_mm = e[worst];
        v->height_loss_pct = 100 * lw;
        v->genant_grade = sm_genant_grade(v->height_loss_pct);
        v->deformity = SM_DEFORMITY_NONE;
        if (v->genant_grade >= 1) {
            if (any && loss[2] >= CRUSH_MIN && loss[2] >= CRUSH_SHARE * lw)
                v->deformity = SM_DEFORMITY_CRUSH;
            else if (loss[1] > loss[0])
                v->deformity = SM_DEFORMITY_BICONCAVE;
            else
                v->deformity = SM_DEFORMITY_WEDGE;
        }
    }
    free(ok), free(nok), free(ee), free(ref2);
    free(st), free(fr), free(hh), free(ref);
    return true;
}
