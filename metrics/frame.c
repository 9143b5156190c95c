/* The vertebral body frame: voxel moments of the body masks, sub-voxel ray sampling of a
 * mask, and the fit of each body's own axes from its endplates and posterior elements. */
#include "frame.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LUT_SIZE 65536
#define N_SUMS 15 /* n, si sj sk, sii sjj skk sij sik sjk, np, spi spj spk, n on the border */

double sm_frame_dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

void sm_frame_cross(const double a[3], const double b[3], double out[3])
{
    double r[3] = {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
    memcpy(out, r, sizeof r);
}

bool sm_frame_normalize(double v[3])
{
    double n = sqrt(sm_frame_dot(v, v));
    if (!(n > 1e-12))
        return false;
    for (int d = 0; d < 3; d++)
        v[d] /= n;
    return true;
}

static inline unsigned label_at(const SmVolume *v, size_t idx)
{
    return v->type == SM_VOXEL_U8 ? ((const uint8_t *)v->data)[idx] : ((const uint16_t *)v->data)[idx];
}

bool sm_frame_stats_scan(SmError **error, const SmMetricsInput *in, SmFrameStats *stats)
{
    if (!in || !in->labels || !in->subregions || !stats) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: labels and sub-regions are required");
        return false;
    }
    const SmVolume *lab = in->labels, *sub = in->subregions;
    if (lab->type != SM_VOXEL_U8 && lab->type != SM_VOXEL_U16) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: label map must be U8 or U16, not %s",
                     sm_voxel_type_name(lab->type));
        return false;
    }
    if (sub->type != SM_VOXEL_U8) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: sub-region map must be U8, not %s",
                     sm_voxel_type_name(sub->type));
        return false;
    }
    if (!sm_volume_same_grid(lab, sub, 0.01)) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: label and sub-region maps are not on one grid");
        return false;
    }
    size_t nl = in->n_levels;
    memset(stats, 0, nl * sizeof *stats);
    if (nl == 0)
        return true;
    size_t d0 = lab->dims[0], d1 = lab->dims[1], d2 = lab->dims[2], per_slice, total;
    int *lut = malloc(LUT_SIZE * sizeof *lut);
    if (!sm_size_mul(nl, N_SUMS, &per_slice) || !sm_size_mul(per_slice, d2, &total) ||
        !sm_size_mul(total, sizeof(int64_t), &total) || !lut) {
        free(lut);
        sm_error_set(error, SM_ERR_NOMEM, "metrics: out of memory for label moments");
        return false;
    }
    int64_t *acc = calloc(1, total);
    if (!acc) {
        free(lut);
        sm_error_set(error, SM_ERR_NOMEM, "metrics: out of memory for label moments");
        return false;
    }
    for (size_t i = 0; i < LUT_SIZE; i++)
        lut[i] = -1;
    for (size_t l = nl; l-- > 0;)
        if (in->verse_labels[l] > 0 && in->verse_labels[l] < LUT_SIZE)
            lut[in->verse_labels[l]] = (int)l;

    /* run: one row of sums per slice and level; integer sums make the merge exact */
    const uint8_t *restrict sd = sub->data;
    long nk = (long)d2;
    int nth = in->threads > 0 ? in->threads : sm_omp_threads();
#pragma omp parallel for default(none) shared(lab, sd, lut, acc) \
    firstprivate(d0, d1, nk, per_slice) schedule(static) num_threads(nth)
    for (long k = 0; k < nk; k++) {
        int64_t *row = acc + (size_t)k * per_slice;
        for (size_t j = 0; j < d1; j++) {
            size_t base = d0 * (j + d1 * (size_t)k);
            for (size_t i = 0; i < d0; i++) {
                unsigned s = sd[base + i];
                if (s < SM_MET_SUB_BODY || s > SM_MET_SUB_TRANSVERSE)
                    continue;
                int l = lut[label_at(lab, base + i)];
                if (l < 0)
                    continue;
                int64_t *a = row + (size_t)l * N_SUMS;
                int64_t ii = (int64_t)i, jj = (int64_t)j, kk = (int64_t)k;
                if (s == SM_MET_SUB_BODY) {
                    a[0]++;
                    a[1] += ii, a[2] += jj, a[3] += kk;
                    a[4] += ii * ii, a[5] += jj * jj, a[6] += kk * kk;
                    a[7] += ii * jj, a[8] += ii * kk, a[9] += jj * kk;
                    a[14] += i == 0 || i + 1 == d0 || j == 0 || j + 1 == d1 || k == 0 ||
                             k + 1 == nk;
                } else {
                    a[10]++;
                    a[11] += ii, a[12] += jj, a[13] += kk;
                }
            }
        }
    }

    /* finish: merge in slice order, convert index moments to LPS */
    double M[3][3];
    for (int r = 0; r < 3; r++)
        for (int q = 0; q < 3; q++)
            M[r][q] = lab->affine[r][q];
    for (size_t l = 0; l < nl; l++) {
        int64_t s[N_SUMS] = {0};
        for (size_t k = 0; k < d2; k++)
            for (int q = 0; q < N_SUMS; q++)
                s[q] += acc[k * per_slice + l * N_SUMS + (size_t)q];
        SmFrameStats *st = &stats[l];
        st->n_body = (size_t)s[0];
        st->n_post = (size_t)s[10];
        st->n_body_border = (size_t)s[14];
        for (int d = 0; d < 3; d++)
            st->body_centroid[d] = st->post_centroid[d] = NAN;
        if (s[0] > 0) {
            double n = (double)s[0], mu[3] = {s[1] / n, s[2] / n, s[3] / n};
            double C[3][3];
            C[0][0] = s[4] / n - mu[0] * mu[0];
            C[1][1] = s[5] / n - mu[1] * mu[1];
            C[2][2] = s[6] / n - mu[2] * mu[2];
            C[0][1] = C[1][0] = s[7] / n - mu[0] * mu[1];
            C[0][2] = C[2][0] = s[8] / n - mu[0] * mu[2];
            C[1][2] = C[2][1] = s[9] / n - mu[1] * mu[2];
            sm_volume_index_to_lps(lab, mu, st->body_centroid);
            for (int r = 0; r < 3; r++)
                for (int q = 0; q < 3; q++) {
                    double v = 0;
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++)
                            v += M[r][a] * C[a][b] * M[q][b];
                    st->body_cov[r][q] = v;
                }
        }
        if (s[10] > 0) {
            double n = (double)s[10], mu[3] = {s[11] / n, s[12] / n, s[13] / n};
            sm_volume_index_to_lps(lab, mu, st->post_centroid);
        }
    }
    free(acc);
    free(lut);
    return true;
}

void sm_frame_mask_init(SmBodyMask *mask, const SmVolume *labels, const SmVolume *subregions,
                        int id)
{
    mask->labels = labels;
    mask->subregions = subregions;
    mask->id = id;
    if (!sm_mat4_affine_inverse(labels->affine, mask->inv))
        memset(mask->inv, 0, sizeof mask->inv);
}

static inline double mask_at(const SmBodyMask *m, long i, long j, long k)
{
    const size_t *d = m->labels->dims;
    if (i < 0 || j < 0 || k < 0 || (size_t)i >= d[0] || (size_t)j >= d[1] || (size_t)k >= d[2])
        return 0.0;
    size_t idx = (size_t)i + d[0] * ((size_t)j + d[1] * (size_t)k);
    return ((const uint8_t *)m->subregions->data)[idx] == SM_MET_SUB_BODY &&
                   label_at(m->labels, idx) == (unsigned)m->id
               ? 1.0
               : 0.0;
}

double sm_frame_mask_sample(const SmBodyMask *m, const double p[3])
{
    double x[3];
    sm_mat4_apply(m->inv, p, x);
    double f[3];
    long b[3];
    for (int d = 0; d < 3; d++) {
        double fl = floor(x[d]);
        if (!(fabs(fl) < 1e9))
            return 0.0;
        b[d] = (long)fl;
        f[d] = x[d] - fl;
    }
    double v = 0;
    for (int c = 0; c < 8; c++) {
        double w = ((c & 1) ? f[0] : 1 - f[0]) * ((c & 2) ? f[1] : 1 - f[1]) *
                   ((c & 4) ? f[2] : 1 - f[2]);
        if (w > 0)
            v += w * mask_at(m, b[0] + (c & 1), b[1] + ((c >> 1) & 1), b[2] + ((c >> 2) & 1));
    }
    return v;
}

#define RAY_STEP 0.2
#define FIT_N 9
#define FIT_MAX (FIT_N * FIT_N)
#define RAY_GAP 1.0

static double sample_at(const SmBodyMask *m, const double o[3], const double dir[3], double t)
{
    double p[3] = {o[0] + t * dir[0], o[1] + t * dir[1], o[2] + t * dir[2]};
    return sm_frame_mask_sample(m, p);
}

/* From t0 (inside) walk in sense s (+1/-1) to the 0.5 crossing; gaps < RAY_GAP bridged. */
static bool ray_exit(const SmBodyMask *m, const double o[3], const double dir[3], double t0,
                     double s, double tmax, double *out)
{
    double prev_t = t0, prev_v = sample_at(m, o, dir, t0);
    int n = (int)(tmax / RAY_STEP) + 1;
    for (int q = 1; q <= n; q++) {
        double t = t0 + s * q * RAY_STEP, v = sample_at(m, o, dir, t);
        if (v < 0.5) {
            /* bridge a short gap: inside again within RAY_GAP? */
            bool back = false;
            int ng = (int)(RAY_GAP / RAY_STEP);
            for (int g = 1; g <= ng && q + g <= n; g++)
                if (sample_at(m, o, dir, t + s * g * RAY_STEP) >= 0.5) {
                    back = true;
                    q += g;
                    break;
                }
            if (!back) {
                double fr = (prev_v - 0.5) / (prev_v - v);
                *out = prev_t + s * fr * RAY_STEP;
                return true;
            }
            t = t0 + s * q * RAY_STEP;
            v = sample_at(m, o, dir, t);
        }
        prev_t = t;
        prev_v = v;
    }
    return false;
}

bool sm_frame_ray_extent(const SmBodyMask *m, const double origin[3], const double dir[3],
                         double search, double tmax, double *lo, double *hi)
{
    double t0 = NAN;
    int ns = (int)(search / RAY_STEP);
    for (int q = 0; q <= ns && isnan(t0); q++) {
        if (sample_at(m, origin, dir, q * RAY_STEP) >= 0.5)
            t0 = q * RAY_STEP;
        else if (q > 0 && sample_at(m, origin, dir, -q * RAY_STEP) >= 0.5)
            t0 = -q * RAY_STEP;
    }
    if (isnan(t0))
        return false;
    double a, b;
    if (!ray_exit(m, origin, dir, t0, -1.0, tmax, &a) || !ray_exit(m, origin, dir, t0, 1.0, tmax, &b))
        return false;
    *lo = a;
    *hi = b;
    return true;
}

/* Jacobi eigen-decomposition of a symmetric 3x3 matrix: values w, vectors as columns of V. */
static void eigen3(const double A[3][3], double w[3], double V[3][3])
{
    double a[3][3];
    memcpy(a, A, sizeof a);
    for (int r = 0; r < 3; r++)
        for (int q = 0; q < 3; q++)
            V[r][q] = r == q;
    for (int sweep = 0; sweep < 50; sweep++) {
        double off = fabs(a[0][1]) + fabs(a[0][2]) + fabs(a[1][2]);
        if (off < 1e-14)
            break;
        for (int p = 0; p < 2; p++)
            for (int q = p + 1; q < 3; q++) {
                if (fabs(a[p][q]) < 1e-300)
                    continue;
                double th = 0.5 * atan2(2 * a[p][q], a[q][q] - a[p][p]);
                double c = cos(th), s = sin(th);
                for (int k = 0; k < 3; k++) {
                    double akp = a[k][p], akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < 3; k++) {
                    double apk = a[p][k], aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for (int k = 0; k < 3; k++) {
                    double vkp = V[k][p], vkq = V[k][q];
                    V[k][p] = c * vkp - s * vkq;
                    V[k][q] = s * vkp + c * vkq;
                }
            }
    }
    for (int d = 0; d < 3; d++)
        w[d] = a[d][d];
}

/* p = c + x*left + y*ant + t*sup */
static void local_point(const SmBodyFrame *f, double x, double y, double t, double p[3])
{
    for (int d = 0; d < 3; d++)
        p[d] = f->c[d] + x * f->left[d] + y * f->ant[d] + t * f->sup[d];
}

/* Least-squares plane t = a + b*x + c*y through n points, one outlier-rejection pass. */
static bool fit_plane(const double *x, const double *y, const double *t, int n, double coef[3])
{
    bool use[FIT_MAX];
    for (int i = 0; i < n; i++)
        use[i] = true;
    for (int pass = 0; pass < 2; pass++) {
        double S[3][3] = {{0}}, r[3] = {0};
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (!use[i])
                continue;
            double v[3] = {1, x[i], y[i]};
            for (int a = 0; a < 3; a++) {
                for (int b = 0; b < 3; b++)
                    S[a][b] += v[a] * v[b];
                r[a] += v[a] * t[i];
            }
            m++;
        }
        if (m < 6)
            return false;
        /* Cramer's rule */
        double det = S[0][0] * (S[1][1] * S[2][2] - S[1][2] * S[2][1]) -
                     S[0][1] * (S[1][0] * S[2][2] - S[1][2] * S[2][0]) +
                     S[0][2] * (S[1][0] * S[2][1] - S[1][1] * S[2][0]);
        if (!(fabs(det) > 1e-9))
            return false;
        for (int c = 0; c < 3; c++) {
            double T[3][3];
            memcpy(T, S, sizeof T);
            for (int a = 0; a < 3; a++)
                T[a][c] = r[a];
            coef[c] = (T[0][0] * (T[1][1] * T[2][2] - T[1][2] * T[2][1]) -
                       T[0][1] * (T[1][0] * T[2][2] - T[1][2] * T[2][0]) +
                       T[0][2] * (T[1][0] * T[2][1] - T[1][1] * T[2][0])) / det;
        }
        if (pass == 1)
            break;
        /* drop points farther than 3 robust sigmas (>= 1 mm) from the first fit */
        double res[FIT_MAX], sorted[FIT_MAX];
        int k = 0;
        for (int i = 0; i < n; i++) {
            res[i] = fabs(t[i] - coef[0] - coef[1] * x[i] - coef[2] * y[i]);
            sorted[k++] = res[i];
        }
        for (int i = 1; i < k; i++)
            for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
                double tmp = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = tmp;
            }
        double lim = 3 * 1.4826 * sorted[k / 2];
        if (lim < 1.0)
            lim = 1.0;
        for (int i = 0; i < n; i++)
            use[i] = res[i] <= lim;
    }
    return true;
}

/* Mid-sagittal AP walls and the width, from rays through the central heights: the walls
 * of the second-deepest of five sections (robust to a single staircase outlier; bodies are
 * waisted, so the deepest sections are the ones nearest the endplates). */
static bool measure_extents(const SmBodyMask *mask, SmBodyFrame *f)
{
    double ya[5], yp[5], dep[5], wd[5];
    int n = 0, nw = 0;
    for (int q = -2; q <= 2; q++) {
        double t = f->t_mid + q * 0.15 * f->height0, p[3], lo, hi;
        local_point(f, 0, 0, t, p);
        if (sm_frame_ray_extent(mask, p, f->ant, 3.0, 80.0, &lo, &hi)) {
            ya[n] = hi, yp[n] = -lo, dep[n] = hi - lo;
            n++;
        }
        if (sm_frame_ray_extent(mask, p, f->left, 3.0, 80.0, &lo, &hi))
            wd[nw++] = hi - lo;
    }
    if (n < 3 || nw < 3)
        return false;
    /* rank 2 from the top (n >= 3) */
    int order[5];
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && dep[order[j - 1]] < dep[order[j]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    for (int i = 1; i < nw; i++)
        for (int j = i; j > 0 && wd[j - 1] < wd[j]; j--) {
            double tmp = wd[j];
            wd[j] = wd[j - 1];
            wd[j - 1] = tmp;
        }
    int pick = order[n >= 5 ? 1 : 0];
    if (ya[pick] <= 0 || yp[pick] <= 0)
        return false;
    f->y_ant = ya[pick];
    f->y_post = yp[pick];
    f->width = wd[nw >= 5 ? 1 : 0];
    return true;
}

/* Height along sup through the mid-sagittal centre of the body. */
static bool central_height(const SmBodyMask *mask, SmBodyFrame *f)
{
    double lo, hi;
    double y0 = f->y_ant > 0 ? 0.5 * (f->y_ant - f->y_post) : 0;
    double p[3];
    local_point(f, 0, y0, 0, p);
    if (!sm_frame_ray_extent(mask, p, f->sup, 10.0, 80.0, &lo, &hi))
        return false;
    f->t_mid = 0.5 * (lo + hi);
    f->height0 = hi - lo;
    return true;
}

static void set_axes(SmBodyFrame *f, const double sup[3], const double ant_hint[3])
{
    memcpy(f->sup, sup, sizeof f->sup);
    double a[3];
    double d = sm_frame_dot(ant_hint, sup);
    for (int k = 0; k < 3; k++)
        a[k] = ant_hint[k] - d * sup[k];
    sm_frame_normalize(a);
    memcpy(f->ant, a, sizeof a);
    sm_frame_cross(f->sup, f->ant, f->left);
    sm_frame_normalize(f->left);
}

/* Positional resolution of the grid along the unit direction u (LPS): the root sum of
 * squares of the voxel spacings weighted by u's components along the image axes. */
static double grid_step(const SmVolume *v, const double u[3])
{
    double s2 = 0;
    for (int i = 0; i < 3; i++) {
        double e[3] = {v->affine[0][i], v->affine[1][i], v->affine[2][i]};
        double sp = v->spacing[i] > 0 ? v->spacing[i] : 1.0, c = sm_frame_dot(u, e) / sp;
        s2 += c * c * sp * sp;
    }
    return sqrt(s2);
}

#define WALL_N 7
#define FRAME_MAX_DEG 60.0
#define WALL_MAX_DEG 12.0
#define WALL_WEIGHT 0.25 /* 7 x 5 wall lines against 9 x 9 endplate rays */

/* Tilt of the body's walls against the current axis: the centres of the cross-sections
 * (midpoints of the anterior/posterior and of the left/right wall crossings on the
 * central lines) at WALL_N heights over the central 60 % of the height (at least one grid
 * step from the endplates), least-squares slopes along the anterior (*b) and left (*d)
 * axes per mm of height. Walls run across thick slices, so they are located to within a
 * pixel where the endplates are only known to within a slice. False when fewer than 4
 * sections are found. */
static bool wall_tilt(const SmBodyMask *mask, const SmBodyFrame *f, double gs, double *span_out,
                      double *b, double *d)
{
    double span = fmin(0.3 * f->height0, 0.5 * f->height0 - gs);
    if (!(span > 0.1 * f->height0))
        return false;
    double y0 = 0.5 * (f->y_ant - f->y_post);
    double ts[WALL_N], ys[WALL_N], xs[WALL_N];
    int n = 0;
    for (int q = 0; q < WALL_N; q++) {
        double t = -span + 2.0 * span * q / (WALL_N - 1), sy = 0, sx = 0;
        int ny = 0, nx = 0;
        /* five parallel lines each way (offsets of up to 20 % of the width / depth)
         * average the phase of the pixel staircase */
        for (int o = -2; o <= 2; o++) {
            double p[3], lo, hi;
            local_point(f, 0.1 * o * f->width, y0, f->t_mid + t, p);
            if (sm_frame_ray_extent(mask, p, f->ant, 3.0, 80.0, &lo, &hi))
                sy += 0.5 * (lo + hi), ny++;
            local_point(f, 0, y0 + 0.1 * o * (f->y_ant + f->y_post), f->t_mid + t, p);
            if (sm_frame_ray_extent(mask, p, f->left, 3.0, 80.0, &lo, &hi))
                sx += 0.5 * (lo + hi), nx++;
        }
        if (ny < 5 || nx < 5)
            continue;
        ts[n] = t, ys[n] = sy / ny, xs[n] = sx / nx;
        n++;
    }
    if (n < 4)
        return false;
    double mt = 0, my = 0, mx = 0;
    for (int i = 0; i < n; i++)
        mt += ts[i] / n, my += ys[i] / n, mx += xs[i] / n;
    double stt = 0, sty = 0, stx = 0;
    for (int i = 0; i < n; i++) {
        stt += (ts[i] - mt) * (ts[i] - mt);
        sty += (ts[i] - mt) * (ys[i] - my);
        stx += (ts[i] - mt) * (xs[i] - mx);
    }
    if (!(stt > 0))
        return false;
    *b = sty / stt;
    *d = stx / stt;
    *span_out = span;
    return true;
}

void sm_frame_fit(const SmBodyMask *mask, const SmFrameStats *st, const double hint[3],
                  SmBodyFrame *f)
{
    memset(f, 0, sizeof *f);
    f->ok = false;
    if (st->n_body < 8)
        return;
    memcpy(f->c, st->body_centroid, sizeof f->c);
    double w[3], V[3][3];
    eigen3(st->body_cov, w, V);
    double zpat[3] = {0, 0, 1}, sup[3];
    int lo_ax = 0;
    for (int d = 1; d < 3; d++)
        if (w[d] < w[lo_ax])
            lo_ax = d;
    double next_w = INFINITY;
    for (int d = 0; d < 3; d++)
        if (d != lo_ax && w[d] < next_w)
            next_w = w[d];
    double e_lo[3] = {V[0][lo_ax], V[1][lo_ax], V[2][lo_ax]};
    if (hint) {
        /* the column direction, or the body's own least-spread axis when that is clear and
         * near it (a strongly tilted body such as L5 starts closer to its own axis). Not for
         * the sacrum: its body mask (S1 only, no inferior end plate of its own) has no
         * height axis; on the real 3 mm CT its fatty posterior part, once labelled, made
         * the least-spread axis 30 deg off the column and the end-plate fit ran away. */
        if (mask->id != SM_FRAME_SACRUM_ID && next_w > 1.25 * w[lo_ax] &&
            fabs(sm_frame_dot(e_lo, hint)) > cos(40 * M_PI / 180))
            memcpy(sup, e_lo, sizeof sup);
        else
            memcpy(sup, hint, sizeof sup);
    } else {
        /* no neighbours: the least-spread principal axis (the body is lower than wide or
         * deep), else the patient's long axis */
        int lo = 0;
        for (int d = 1; d < 3; d++)
            if (w[d] < w[lo])
                lo = d;
        double nxt = INFINITY;
        for (int d = 0; d < 3; d++)
            if (d != lo && w[d] < nxt)
                nxt = w[d];
        if (nxt > 1.2 * w[lo]) {
            for (int d = 0; d < 3; d++)
                sup[d] = V[d][lo];
        } else {
            memcpy(sup, zpat, sizeof sup);
        }
    }
    if (sm_frame_dot(sup, hint ? hint : zpat) < 0)
        for (int d = 0; d < 3; d++)
            sup[d] = -sup[d];
    if (!sm_frame_normalize(sup))
        return;
    /* anterior: from the posterior elements to the body */
    double ant[3] = {0, -1, 0};
    if (st->n_post >= 8) {
        for (int d = 0; d < 3; d++)
            ant[d] = st->body_centroid[d] - st->post_centroid[d];
        double dd = sm_frame_dot(ant, sup);
        double chk[3] = {ant[0] - dd * sup[0], ant[1] - dd * sup[1], ant[2] - dd * sup[2]};
        if (!sm_frame_normalize(chk)) {
            ant[0] = 0, ant[1] = -1, ant[2] = 0;
        }
    } else {
        /* no posterior elements: the in-plane minor principal axis, sign towards LPS -y */
        double best = -1;
        for (int d = 0; d < 3; d++) {
            double e[3] = {V[0][d], V[1][d], V[2][d]};
            if (fabs(sm_frame_dot(e, sup)) > 0.7)
                continue;
            if (best < 0 || w[d] < best) {
                best = w[d];
                memcpy(ant, e, sizeof ant);
            }
        }
        if (ant[1] > 0)
            for (int d = 0; d < 3; d++)
                ant[d] = -ant[d];
    }
    set_axes(f, sup, ant);
    if (!central_height(mask, f) || !measure_extents(mask, f) || !central_height(mask, f))
        return;

    /* refine: fit both endplate planes on a 9x9 grid of rays parallel to sup (inside an
     * ellipse over 76 % of the width and 15-85 % of the depth); the new axis is the
     * bisector of their normals */
    for (int it = 0; it < 12; it++) {
        double xs[FIT_MAX], ys[FIT_MAX], tt[FIT_MAX], tb[FIT_MAX];
        int n = 0;
        double depth = f->y_ant + f->y_post;
        for (int b = 0; b < FIT_N; b++) {
            double v = -1.0 + 2.0 * b / (FIT_N - 1); /* -1..1 over the AP band */
            double y = f->y_ant - (0.5 + 0.35 * v) * depth;
            double half = 0.38 * f->width * sqrt(fmax(0.0, 1.0 - 0.5 * v * v));
            for (int a = 0; a < FIT_N; a++) {
                double x = half * (-1.0 + 2.0 * a / (FIT_N - 1));
                double p[3], lo, hi;
                local_point(f, x, y, f->t_mid, p);
                if (!sm_frame_ray_extent(mask, p, f->sup, 0.3 * f->height0, 80.0, &lo, &hi))
                    continue;
                xs[n] = x, ys[n] = y, tt[n] = f->t_mid + hi, tb[n] = f->t_mid + lo;
                n++;
            }
        }
        double ct[3], cb[3];
        if (!fit_plane(xs, ys, tt, n, ct) || !fit_plane(xs, ys, tb, n, cb))
            break;
        double nt[3] = {-ct[1], -ct[2], 1}, nb[3] = {-cb[1], -cb[2], 1};
        sm_frame_normalize(nt);
        sm_frame_normalize(nb);
        /* the sacrum: its own axis is the normal of the S1 endplate (the body mask of a
         * sacrum has no inferior endplate of its own) */
        bool sacrum = mask->id == SM_FRAME_SACRUM_ID;
        double loc[3] = {nt[0] + (sacrum ? 0 : nb[0]), nt[1] + (sacrum ? 0 : nb[1]),
                         nt[2] + (sacrum ? 0 : nb[2])};
        if (!sm_frame_normalize(loc))
            break;
        /* blend with the walls' tilt, each weighted by its angular precision: the grid
         * step along the measured direction over the lever arm it is measured across */
        if (!sacrum && loc[2] > 0.5) {
            double be = loc[1] / loc[2], de = loc[0] / loc[2], bw, dw, span;
            double gs = grid_step(mask->labels, f->sup);
            if (wall_tilt(mask, f, gs, &span, &bw, &dw)) {
                double ga = grid_step(mask->labels, f->ant), gl = grid_step(mask->labels, f->left);
                double we_s = pow(0.7 * (f->y_ant + f->y_post) / gs, 2);
                double ww_s = pow(2 * span / ga, 2);
                double we_c = pow(0.76 * f->width / gs, 2), ww_c = pow(2 * span / gl, 2);
                /* 7 sections against 81 endplate rays; walls that disagree by more than
                 * WALL_MAX_DEG (a deformed body, a wall cut by the endplates) are not used */
                ww_s *= WALL_WEIGHT, ww_c *= WALL_WEIGHT;
                if (fabs(atan(bw) - atan(be)) > WALL_MAX_DEG * M_PI / 180)
                    ww_s = 0;
                if (fabs(atan(dw) - atan(de)) > WALL_MAX_DEG * M_PI / 180)
                    ww_c = 0;
                loc[1] = (we_s * be + ww_s * bw) / (we_s + ww_s);
                loc[0] = (we_c * de + ww_c * dw) / (we_c + ww_c);
                loc[2] = 1.0;
                sm_frame_normalize(loc);
            }
        }
        double ns[3];
        for (int d = 0; d < 3; d++)
            ns[d] = loc[0] * f->left[d] + loc[1] * f->ant[d] + loc[2] * f->sup[d];
        sm_frame_normalize(ns);
        double change = acos(fmin(1.0, fabs(sm_frame_dot(ns, f->sup))));
        double keep_ant[3];
        memcpy(keep_ant, f->ant, sizeof keep_ant);
        set_axes(f, ns, keep_ant);
        if (!central_height(mask, f) || !measure_extents(mask, f) || !central_height(mask, f))
            return;
        if (change < 0.05 * M_PI / 180)
            break;
    }
    /* a body axis more than FRAME_MAX_DEG from the local column direction is a failed fit
     * (a fragment of a body, a mask cut across), not a vertebra lying on its side */
    if (hint && sm_frame_dot(f->sup, hint) < cos(FRAME_MAX_DEG * M_PI / 180))
        return;
    f->ok = true;
}
