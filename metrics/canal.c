/* Canal cross-section measurement: resamples a plane perpendicular to the canal
 * centreline, smooths it inside the bony canal and measures fat / fluid / dense tissue
 * along rays from the canal centre (the raw material of metrics/escc.c). */
#include "escc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N SM_ESCC_PLANE_N
#define PX SM_ESCC_PLANE_MM

static double ct_trilinear(const SmVolume *v, double x, double y, double z)
{
    if (x < 0 || y < 0 || z < 0 || x > (double)v->dims[0] - 1 || y > (double)v->dims[1] - 1 ||
        z > (double)v->dims[2] - 1)
        return -1000.0;
    size_t i0 = (size_t)x, j0 = (size_t)y, k0 = (size_t)z;
    size_t i1 = i0 + 1 < v->dims[0] ? i0 + 1 : i0;
    size_t j1 = j0 + 1 < v->dims[1] ? j0 + 1 : j0;
    size_t k1 = k0 + 1 < v->dims[2] ? k0 + 1 : k0;
    double fx = x - (double)i0, fy = y - (double)j0, fz = z - (double)k0;
    double c00 = sm_volume_get(v, i0, j0, k0) * (1 - fx) + sm_volume_get(v, i1, j0, k0) * fx;
    double c10 = sm_volume_get(v, i0, j1, k0) * (1 - fx) + sm_volume_get(v, i1, j1, k0) * fx;
    double c01 = sm_volume_get(v, i0, j0, k1) * (1 - fx) + sm_volume_get(v, i1, j0, k1) * fx;
    double c11 = sm_volume_get(v, i0, j1, k1) * (1 - fx) + sm_volume_get(v, i1, j1, k1) * fx;
    double c0 = c00 * (1 - fy) + c10 * fy, c1 = c01 * (1 - fy) + c11 * fy;
    return c0 * (1 - fz) + c1 * fz;
}

static bool canal_code(const SmVolume *sub, double x, double y, double z)
{
    double rx = floor(x + 0.5), ry = floor(y + 0.5), rz = floor(z + 0.5);
    if (rx < 0 || ry < 0 || rz < 0 || rx >= (double)sub->dims[0] || ry >= (double)sub->dims[1] ||
        rz >= (double)sub->dims[2])
        return false;
    double v = sm_volume_get(sub, (size_t)rx, (size_t)ry, (size_t)rz);
    return v == 7.0 || v == 10.0;
}

void sm_canal_plane_sample(const SmVolume *ct, const SmVolume *sub, const double c[3],
                           const double ex[3], const double ey[3], const double ez[3],
                           float *hu, uint8_t *mask, int16_t *hu_out)
{
    double inv[4][4];
    if (!sm_mat4_affine_inverse(ct->affine, inv)) {
        memset(mask, 0, (size_t)N * N);
        return;
    }
    double ic[3], dx[3], dy[3], dz[3];
    sm_mat4_apply(inv, c, ic);
    for (int d = 0; d < 3; d++) { /* linear part only */
        dx[d] = (inv[d][0] * ex[0] + inv[d][1] * ex[1] + inv[d][2] * ex[2]) * PX;
        dy[d] = (inv[d][0] * ey[0] + inv[d][1] * ey[1] + inv[d][2] * ey[2]) * PX;
        dz[d] = inv[d][0] * ez[0] + inv[d][1] * ez[1] + inv[d][2] * ez[2];
    }
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            double fa = a - N / 2 + 0.5, fb = b - N / 2 + 0.5;
            double p[3];
            for (int d = 0; d < 3; d++)
                p[d] = ic[d] + fa * dx[d] + fb * dy[d];
            double s = 0;
            /* a 3 mm slab (three planes 1 mm apart) lowers the noise without blurring
             * the cross-section, since the canal contents vary slowly along the canal */
            for (int t = -1; t <= 1; t++)
                s += ct_trilinear(ct, p[0] + t * dz[0], p[1] + t * dz[1], p[2] + t * dz[2]);
            s /= 3.0;
            size_t idx = (size_t)b * N + (size_t)a;
            hu[idx] = (float)s;
            hu_out[idx] = (int16_t)floor(s + 0.5);
            mask[idx] = canal_code(sub, p[0], p[1], p[2]) ? 1 : 0;
        }
}

double sm_canal_plane_outside(const SmVolume *ct, const double c[3], const double ex[3],
                              const double ey[3], const double ez[3], double radius_mm)
{
    double inv[4][4];
    if (!sm_mat4_affine_inverse(ct->affine, inv))
        return 1.0;
    size_t out = 0, all = 0;
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            double fa = (a - N / 2 + 0.5) * PX, fb = (b - N / 2 + 0.5) * PX;
            if (fa * fa + fb * fb > radius_mm * radius_mm)
                continue;
            for (int t = -1; t <= 1; t++) {
                double p[3], ijk[3];
                for (int d = 0; d < 3; d++)
                    p[d] = c[d] + fa * ex[d] + fb * ey[d] + t * ez[d];
                sm_mat4_apply(inv, p, ijk);
                bool in = true;
                for (int d = 0; d < 3; d++)
                    in = in && ijk[d] >= -0.5 && ijk[d] <= (double)ct->dims[d] - 0.5;
                out += !in;
                all++;
            }
        }
    return all ? (double)out / (double)all : 1.0;
}

void sm_canal_plane_interior(const uint8_t *mask, int radius_px, uint8_t *inner)
{
    int rr = radius_px;
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            bool in = mask[b * N + a] != 0;
            for (int db = -rr; in && db <= rr; db++)
                for (int da = -rr; in && da <= rr; da++) {
                    int aa = a + da, bb = b + db;
                    if (da * da + db * db > rr * rr + rr)
                        continue;
                    if (aa < 0 || bb < 0 || aa >= N || bb >= N || !mask[bb * N + aa])
                        in = false;
                }
            inner[b * N + a] = in ? 1 : 0;
        }
}

void sm_canal_plane_smooth(const float *hu, const uint8_t *mask, const uint8_t *weight,
                           double r_mm, float *out)
{
    int r = (int)ceil(r_mm / PX);
    double r2 = (r_mm / PX) * (r_mm / PX);
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            size_t idx = (size_t)b * N + (size_t)a;
            if (!mask[idx]) {
                out[idx] = hu[idx];
                continue;
            }
            double s = 0, w = 0;
            int rr = r;
            /* a pixel with no weighted neighbour in the disc looks further (edge pixels) */
            for (int pass = 0; pass < 2 && w == 0; pass++, rr = 2 * r + 3) {
                double rr2 = pass ? (double)rr * rr : r2;
                for (int db = -rr; db <= rr; db++)
                    for (int da = -rr; da <= rr; da++) {
                        if ((double)(da * da + db * db) > rr2)
                            continue;
                        int aa = a + da, bb = b + db;
                        if (aa < 0 || bb < 0 || aa >= N || bb >= N || !weight[bb * N + aa])
                            continue;
                        s += hu[bb * N + aa];
                        w += 1;
                    }
            }
            out[idx] = w > 0 ? (float)(s / w) : hu[idx];
        }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Pixel (nearest) of the point at distance r along direction (cx, cy) from the centre. */
static int ray_pixel(double r, double cx, double cy)
{
    double fa = N / 2 - 0.5 + r * cx / PX, fb = N / 2 - 0.5 + r * cy / PX;
    int a = (int)floor(fa + 0.5), b = (int)floor(fb + 0.5);
    if (a < 0 || b < 0 || a >= N || b >= N)
        return -1;
    return b * N + a;
}

void sm_canal_plane_measure(const float *sm_fat, const float *sm_dense, const uint8_t *mask,
                            const uint8_t *core, double fat_thr, double dense_thr, double csf_hu,
                            uint8_t *classes, SmCanalPlane *m)
{
    memset(m, 0, sizeof *m);
    size_t n_in = 0;
    for (size_t i = 0; i < (size_t)N * N; i++) {
        if (!mask[i]) {
            classes[i] = SM_ESCC_CLASS_OUTSIDE;
            continue;
        }
        n_in++;
        classes[i] = sm_fat[i] < fat_thr ? SM_ESCC_CLASS_FAT
                                         : (sm_dense[i] < dense_thr ? SM_ESCC_CLASS_CSF
                                                                    : SM_ESCC_CLASS_CORD);
    }
    /* the fine image is noisier: count CSF below a lower cut so that cord pixels rarely
     * pass as CSF, and compare with the neighbours measured the same way */
    double csf_thr = dense_thr - 0.3 * (dense_thr - csf_hu);
    int c0 = ray_pixel(0, 1, 0);
    if (n_in < 20 || c0 < 0 || !mask[c0])
        return;
    double pa = PX * PX;
    for (size_t i = 0; i < (size_t)N * N; i++) {
        if (!mask[i])
            continue;
        m->canal_area += pa;
        if (classes[i] == SM_ESCC_CLASS_FAT)
            m->fat_area += pa;
        else {
            m->nonfat_area += pa;
            /* free CSF on the small-radius image: thin CSF layers (between a mass and the
             * cord) survive there; the large radius would average them away */
            if (core[i] && sm_fat[i] < csf_thr)
                m->csf_area += pa;
            if (classes[i] == SM_ESCC_CLASS_CORD)
                m->dense_area += pa;
        }
    }
    const double step = 0.1;
    for (int r = 0; r < SM_ESCC_RAYS; r++) {
        double th = 2 * M_PI * r / SM_ESCC_RAYS;
        double cx = cos(th), cy = sin(th);
        double wall = 0;
        for (double d = 0; d < 0.5 * N * PX; d += step) {
            int p = ray_pixel(d, cx, cy);
            if (p < 0 || !mask[p])
                break;
            wall = d;
        }
        m->wall_mm[r] = wall;
        /* dense tissue inward from the wall (the first 0.3 mm may be partial volume); a
         * run ends at the first non-dense pixel confirmed by the next one */
        double epi = 0;
        double d0 = wall - 0.3;
        int p0 = ray_pixel(d0 > 0 ? d0 : 0, cx, cy);
        if (p0 >= 0 && classes[p0] == SM_ESCC_CLASS_CORD) {
            double d = d0;
            while (d > 0) {
                int p = ray_pixel(d, cx, cy), q = ray_pixel(d - 0.4, cx, cy);
                if (p < 0 || (classes[p] != SM_ESCC_CLASS_CORD &&
                              (q < 0 || classes[q] != SM_ESCC_CLASS_CORD)))
                    break;
                d -= step;
            }
            epi = wall - (d > 0 ? d : 0);
        }
        m->epi_mm[r] = epi;
        /* sac: from the centre out to the first fat */
        double sac = wall;
        for (double d = 0; d <= wall; d += step) {
            int p = ray_pixel(d, cx, cy);
            if (p < 0 || classes[p] == SM_ESCC_CLASS_FAT || classes[p] == SM_ESCC_CLASS_OUTSIDE) {
                sac = d;
                break;
            }
        }
        m->sac_out_mm[r] = sac;
        double core_r = 0;
        for (double d = 0; d <= wall; d += step) {
            int p = ray_pixel(d, cx, cy), q = ray_pixel(d + 0.4, cx, cy);
            if (p < 0 || (classes[p] != SM_ESCC_CLASS_CORD &&
                          (q < 0 || classes[q] != SM_ESCC_CLASS_CORD)))
                break;
            core_r = d;
        }
        m->cord_out_mm[r] = core_r;
    }
    /* centre and rim statistics of the sac (for the scan's own CSF / cord values) */
    float vals_c[64], vals_r[4 * N];
    size_t nc = 0, nr = 0;
    double rim_s = 0, rim_s2 = 0;
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            size_t i = (size_t)b * N + (size_t)a;
            if (!mask[i])
                continue;
            double x = (a - N / 2 + 0.5) * PX, y = (b - N / 2 + 0.5) * PX;
            double rr = sqrt(x * x + y * y);
            if (rr <= 1.2 && nc < 64)
                vals_c[nc++] = sm_dense[i];
            int ri = (int)floor(atan2(y, x) / (2 * M_PI) * SM_ESCC_RAYS + SM_ESCC_RAYS + 0.5) %
                     SM_ESCC_RAYS;
            double so = m->sac_out_mm[ri];
            if (classes[i] != SM_ESCC_CLASS_FAT && rr > 0.75 * so && rr < so - 0.6 &&
                nr < 4 * N && ((a + b) % 3 == 0)) {
                vals_r[nr++] = sm_dense[i];
                rim_s += sm_dense[i];
                rim_s2 += (double)sm_dense[i] * sm_dense[i];
            }
        }
    if (nc > 0) {
        qsort(vals_c, nc, sizeof *vals_c, cmp_float);
        m->centre_hu = vals_c[nc / 2];
    }
    if (nr > 0) {
        qsort(vals_r, nr, sizeof *vals_r, cmp_float);
        m->rim_hu = vals_r[nr / 2];
        double mean = rim_s / (double)nr;
        double var = rim_s2 / (double)nr - mean * mean;
        m->rim_sd = var > 0 ? sqrt(var) : 0;
    } else {
        m->rim_hu = NAN;
        m->rim_sd = NAN;
    }
    if (nc == 0)
        m->centre_hu = NAN;
    m->ok = true;
}

/* Bony canal from the CT itself: rays from the plane centre to the first bone (two
 * consecutive samples >= bone_thr), robust against gaps (lytic wall, foramina) and
 * segmentation errors by clipping each ray to its angular neighbourhood's median. */
#define NB SM_ESCC_BONY_RAYS
bool sm_canal_plane_bony(const float *hu, const uint8_t *seg, double bone_thr, double fat_thr,
                         uint8_t *mask, double shift_mm[2], double *bone_edge_mm)
{
    const double rmax = 16.0, step = 0.2;
    double r[NB], keep[NB], ctr[NB], core[NB];
    int n_closed = 0;
    for (int q = 0; q < NB; q++) {
        double th = 2 * M_PI * q / NB, cx = cos(th), cy = sin(th);
        double segr = NAN;
        ctr[q] = NAN;
        if (bone_edge_mm)
            bone_edge_mm[q] = NAN;
        int run = 0, fat_run = 0, out_run = 0;
        bool seen_fat = false;
        for (double d = 0; d <= rmax; d += step) {
            double fa = N / 2 - 0.5 + d * cx / PX, fb = N / 2 - 0.5 + d * cy / PX;
            int a = (int)floor(fa + 0.5), b = (int)floor(fb + 0.5);
            if (a < 0 || b < 0 || a >= N || b >= N)
                break;
            double v = hu[b * N + a];
            if (seg[b * N + a])
                segr = d;
            run = v >= bone_thr ? run + 1 : 0;
            if (run >= 2 && bone_edge_mm && isnan(bone_edge_mm[q]))
                bone_edge_mm[q] = d - step; /* first bone, even beyond a fat edge */
            if (!isnan(ctr[q]))
                continue;
            if (run >= 2) {
                ctr[q] = d - step;
                continue;
            }
            /* where no bone closes the canal at this height, the outer edge of the
             * epidural fat does (fat, then >= 0.8 mm of soft tissue) */
            fat_run = v < fat_thr ? fat_run + 1 : 0;
            if (fat_run >= 3)
                seen_fat = true;
            out_run = seen_fat && v >= fat_thr + 20.0 ? out_run + 1 : 0;
            if (out_run >= 4 && d >= 4.0)
                ctr[q] = d - 4 * step;
        }
        if (!isnan(ctr[q]))
            n_closed++;
        /* the segmentation's extent bounded by the CT's; where it stops far (> 4 mm) short
         * of the CT's (a canal it missed, not a wall eroded by a lesion) the CT's */
        r[q] = isnan(ctr[q]) ? segr
               : (isnan(segr) || ctr[q] - segr > 4.0 ? ctr[q] : fmin(ctr[q], segr));
        core[q] = r[q];
    }
    if (n_closed < NB / 2)
        return false;
    double all[NB];
    int na = 0;
    for (int q = 0; q < NB; q++)
        if (!isnan(ctr[q]))
            all[na++] = ctr[q];
    if (sm_median_inplace(all, (size_t)na) < 3.0)
        return false; /* the centre lies in bone: not a canal */
    na = 0;
    for (int q = 0; q < NB; q++)
        if (!isnan(r[q]))
            all[na++] = r[q];
    double med = sm_median_inplace(all, (size_t)na);
    /* each ray against the median of its +-30 degree neighbourhood */
    for (int q = 0; q < NB; q++) {
        double loc[NB / 3 + 1];
        int nl = 0;
        for (int o = -NB / 12; o <= NB / 12; o++) {
            double v = r[(q + o + NB) % NB];
            if (!isnan(v))
                loc[nl++] = v;
        }
        double lm = nl >= 3 ? sm_median_inplace(loc, (size_t)nl) : med;
        double lim = 1.15 * lm + 1.0;
        keep[q] = isnan(r[q]) ? fmin(lm, lim) : fmin(r[q], lim);
        core[q] = isnan(core[q]) ? keep[q] : fmin(core[q], keep[q]);
    }
    /* polygon mask and its centroid */
    double sa = 0, sb = 0, n = 0;
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            double x = (a - N / 2 + 0.5) * PX, y = (b - N / 2 + 0.5) * PX;
            double rho = sqrt(x * x + y * y);
            double t = atan2(y, x) / (2 * M_PI) * NB;
            if (t < 0)
                t += NB;
            int q0 = (int)floor(t) % NB, q1 = (q0 + 1) % NB;
            double f = t - floor(t);
            double lim = keep[q0] * (1 - f) + keep[q1] * f;
            bool in = rho <= lim && hu[b * N + a] < bone_thr;
            mask[b * N + a] = in ? 1 : 0;
            if (in && rho <= core[q0] * (1 - f) + core[q1] * f) {
                sa += x;
                sb += y;
                n += 1;
            }
        }
    if (n < 10)
        return false;
    shift_mm[0] = sa / n;
    shift_mm[1] = sb / n;
    return true;
}
#undef NB
