/* Bilsky ESCC grading on CT: per-level canal planes, scan-derived tissue thresholds,
 * comparison with the neighbouring normal levels, grade + confidence + reasons, QC. */
#include "escc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>

/* VerSe ids (docs/segmentation.md): C1 = 1 ... T11 = 18; the conus lies at T12-L2 */
/* unenhanced muscle, organs and blood read 30-70 HU; a soft-tissue peak above this is
 * contrast-enhanced parenchyma */
#define ESCC_ENHANCED_HU 80.0
#define VERSE_C1 1
#define VERSE_T11 18
/* radius around the canal centre that must lie inside the CT volume: the disc the canal
 * component and the bone-ring rays are taken from (level_sample) */
#define FOV_RADIUS_MM 16.0
#endif

#define N SM_ESCC_PLANE_N
#define PX SM_ESCC_PLANE_MM
#define NR SM_ESCC_RAYS

const char *sm_escc_grade_name(SmEsccGrade grade)
{
    static const char *names[] = {"0", "1a", "1b", "1c", "2", "3"};
    if (grade < SM_ESCC_0 || grade > SM_ESCC_3)
        return NULL;
    return names[grade];
}

const char *sm_escc_position_name(SmEsccPosition pos)
{
    static const char *names[] = {"none", "anterior", "posterior", "left", "right",
                                  "circumferential"};
    if ((int)pos < 0 || pos > SM_ESCC_POS_CIRCUMFERENTIAL)
        return "?";
    return names[pos];
}

SmEsccGrade sm_escc_grade_parse(const char *text)
{
    for (int g = SM_ESCC_0; g <= SM_ESCC_3; g++)
        if (text && strcmp(text, sm_escc_grade_name((SmEsccGrade)g)) == 0)
            return (SmEsccGrade)g;
    return SM_ESCC_NONE;
}

void sm_escc_destroy(SmEsccResult *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_levels; i++)
        sm_strlist_clear(&res->levels[i].reasons);
    free(res->levels);
    sm_strlist_clear(&res->notes);
    free(res);
}

/* ------------------------------------------------------------------ small helpers */

static void vnorm(double v[3])
{
    double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    if (n > 0)
        for (int d = 0; d < 3; d++)
            v[d] /= n;
}

static double vdot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void vcross(const double a[3], const double b[3], double o[3])
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

/* Histogram mode (1 HU bins) in [lo, hi) and its half width at half maximum. */
static void hist_mode(const size_t *h, int lo, int hi, double *mode, double *hwhm)
{
    /* smooth over 5 HU first: phantoms and real CT have integer-HU comb artefacts */
    double best = -1;
    int bi = lo;
    double sm[4096];
    for (int v = lo; v < hi; v++) {
        double s = 0;
        for (int d = -2; d <= 2; d++)
            s += (double)h[v + d + 1024];
        sm[v - lo] = s / 5;
        if (sm[v - lo] > best) {
            best = sm[v - lo];
            bi = v;
        }
    }
    *mode = bi;
    int a = bi, b = bi;
    while (a > lo && sm[a - lo] > best / 2)
        a--;
    while (b < hi - 1 && sm[b - lo] > best / 2)
        b++;
    *hwhm = 0.5 * (double)(b - a);
}

/* ------------------------------------------------------------------ per-level work */

typedef struct LevelWork {
    bool in_view;
    bool fov_cut;          /* the plane's canal neighbourhood leaves the CT volume */
    double c[3], ex[3], ey[3], ez[3];
    float hu[N * N];
    float sm_fat[N * N];   /* small-radius smoothing: fat | non-fat */
    float sm_dense[N * N]; /* larger radius over non-fat pixels only: fluid | dense */
    uint8_t mask[N * N];
    uint8_t inner[N * N];
    uint8_t nonfat[N * N];
    SmCanalPlane pl;
    bool bone_ok;                          /* the canal came from the CT's bone ring */
    double bone_edge[SM_ESCC_BONY_RAYS];   /* distance to the first bone per ray (NAN: none) */
    double wall_exp[SM_ESCC_BONY_RAYS];    /* expected wall from the neighbours (NAN: none) */
    bool eroded[SM_ESCC_BONY_RAYS];        /* bone edge beyond the expected wall */
    double erosion_deg;                    /* longest run of eroded rays (degrees) */
    double off[2];                         /* plane-centre offset fitted by wall_model (mm) */
    double ext[SM_ESCC_BONY_RAYS];         /* canal outline extent per ray (mm) */
    double ext_exp[SM_ESCC_BONY_RAYS];     /* outline expected from the neighbours (NAN: none) */
    bool ext_clip[SM_ESCC_BONY_RAYS];      /* no bone, outline far beyond the neighbours' */
    int n_clip;                            /* longest run of clipped rays */
    double ring_frac;                      /* fraction of rays that meet bone within 16 mm */
    bool ring_open;                        /* bony ring open here but closed at the neighbours */
    bool ext_grow[SM_ESCC_BONY_RAYS];      /* outline short of an intact wall the neighbours reach */
    int n_grow;                            /* longest run of grown rays */
} LevelWork;

/* Extent of the canal mask along each of the SM_ESCC_BONY_RAYS rays from the plane centre. */
static void outline_extent(const uint8_t *mask, double *ext)
{
    enum { NB = SM_ESCC_BONY_RAYS };
    for (int q = 0; q < NB; q++) {
        double th = 2 * M_PI * q / NB, cx = cos(th), cy = sin(th);
        double e = 0;
        for (double d = 0; d < 0.5 * N * PX; d += 0.1) {
            double fa = N / 2 - 0.5 + d * cx / PX, fb = N / 2 - 0.5 + d * cy / PX;
            int a = (int)floor(fa + 0.5), b = (int)floor(fb + 0.5);
            if (a < 0 || b < 0 || a >= N || b >= N || !mask[b * N + a])
                break;
            e = d;
        }
        ext[q] = e;
    }
}

/* Recentres the plane on the canal component nearest its centre; false if no canal. */
static bool recentre(LevelWork *w)
{
    long best = -1;
    double bd = 1e30;
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++)
            if (w->mask[b * N + a]) {
                double d = (a - N / 2 + 0.5) * (a - N / 2 + 0.5) + (b - N / 2 + 0.5) * (b - N / 2 + 0.5);
                if (d < bd) {
                    bd = d;
                    best = b * N + a;
                }
            }
    if (best < 0 || bd > (12.0 / PX) * (12.0 / PX))
        return false;
    /* centroid of the mask pixels within 14 mm of that seed (a flood fill would be exact;
     * the canal is the only canal-coded structure that close) */
    double sa = 0, sb = 0, n = 0;
    int ba = (int)(best % N), bb = (int)(best / N);
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++)
            if (w->mask[b * N + a] && (a - ba) * (a - ba) + (b - bb) * (b - bb) < (int)((14 / PX) * (14 / PX))) {
                sa += a;
                sb += b;
                n += 1;
            }
    if (n < 10)
        return false;
    double oa = (sa / n - N / 2 + 0.5) * PX, ob = (sb / n - N / 2 + 0.5) * PX;
    for (int d = 0; d < 3; d++)
        w->c[d] += oa * w->ex[d] + ob * w->ey[d];
    return true;
}

static void level_sample(const SmVolume *ct, const SmVolume *sub, double bone_thr, double fat_thr,
                         LevelWork *w, int16_t *hu_out)
{
    if (!w->in_view)
        return;
    /* the canal, its wall and the tissue around it must be in the field of view: samples
     * outside read as air, which the grader would take for fat or a widened canal */
    if (sm_canal_plane_outside(ct, w->c, w->ex, w->ey, w->ez, FOV_RADIUS_MM) > 0.0) {
        w->fov_cut = true;
        w->in_view = false;
        return;
    }
    sm_canal_plane_sample(ct, sub, w->c, w->ex, w->ey, w->ez, w->hu, w->mask, hu_out);
    if (!recentre(w)) {
        w->in_view = false;
        return;
    }
    sm_canal_plane_sample(ct, sub, w->c, w->ex, w->ey, w->ez, w->hu, w->mask, hu_out);
    /* keep only the component around the centre (a 14 mm disc) */
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            double x = (a - N / 2 + 0.5) * PX, y = (b - N / 2 + 0.5) * PX;
            if (x * x + y * y > 16.0 * 16.0)
                w->mask[b * N + a] = 0;
        }
    int c0 = (N / 2) * N + N / 2;
    if (!w->mask[c0] && !w->mask[c0 - 1] && !w->mask[c0 - N] && !w->mask[c0 - N - 1])
        w->in_view = false;
    if (!w->in_view)
        return;
    /* the segmentation's canal may stop short of a mass or include it, and its centre may
     * be off: re-derive the bony canal from the CT (two re-centring passes), keeping the
     * segmentation's mask only where the CT gives no closed bone ring */
    double sh[2];
    double c0lps[3];
    memcpy(c0lps, w->c, sizeof c0lps);
    for (int it = 0; it < 2; it++) {
        if (!sm_canal_plane_bony(w->hu, w->mask, bone_thr, fat_thr, w->inner, sh, NULL) ||
            sh[0] * sh[0] + sh[1] * sh[1] > 100.0)
            break;
        for (int d = 0; d < 3; d++)
            w->c[d] += sh[0] * w->ex[d] + sh[1] * w->ey[d];
        sm_canal_plane_sample(ct, sub, w->c, w->ex, w->ey, w->ez, w->hu, w->mask, hu_out);
    }
    if (sm_canal_plane_bony(w->hu, w->mask, bone_thr, fat_thr, w->inner, sh, w->bone_edge)) {
        memcpy(w->mask, w->inner, sizeof w->mask);
        w->bone_ok = true;
        outline_extent(w->mask, w->ext);
        int nbone = 0;
        for (int q = 0; q < SM_ESCC_BONY_RAYS; q++)
            nbone += !isnan(w->bone_edge[q]);
        w->ring_frac = (double)nbone / SM_ESCC_BONY_RAYS;
        return;
    }
    w->bone_ok = false;
    /* no closed bone ring: back to the segmentation's canal */
    memcpy(w->c, c0lps, sizeof c0lps);
    sm_canal_plane_sample(ct, sub, w->c, w->ex, w->ey, w->ez, w->hu, w->mask, hu_out);
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            double x = (a - N / 2 + 0.5) * PX, y = (b - N / 2 + 0.5) * PX;
            if (x * x + y * y > 16.0 * 16.0)
                w->mask[b * N + a] = 0;
        }
}

/* ------------------------------------------------------------------ grading */

/* Up to two levels on each side of level i (within four places) that are in view with a
 * closed bone ring: their indices in idx, the count returned. */
static size_t bony_neighbours(const LevelWork *w, size_t n, size_t i, size_t idx[4])
{
    size_t k = 0;
    for (size_t s = 1; s <= 4 && k < 2; s++)
        if (i >= s && w[i - s].in_view && w[i - s].bone_ok)
            idx[k++] = i - s;
    size_t k_up = k;
    for (size_t s = 1; s <= 4 && k < k_up + 2; s++)
        if (i + s < n && w[i + s].in_view && w[i + s].bone_ok)
            idx[k++] = i + s;
    return k;
}

typedef struct Ref {
    bool ok;
    size_t n;
    double canal, sac, csf, cord;
    double epi[NR], sac_rel[NR], cord_out[NR], wall[NR];
} Ref;

static void build_ref(const LevelWork *w, size_t n, size_t i, const bool *skip, Ref *r)
{
    memset(r, 0, sizeof *r);
    size_t idx[4];
    size_t k = 0;
    /* up to two nearest measured levels on each side */
    for (size_t s = 1; s <= 4 && k < 2; s++)
        if (i >= s && w[i - s].in_view && w[i - s].pl.ok && !(skip && skip[i - s]))
            idx[k++] = i - s;
    size_t k_up = k;
    for (size_t s = 1; s <= 4 && k < k_up + 2; s++)
        if (i + s < n && w[i + s].in_view && w[i + s].pl.ok && !(skip && skip[i + s]))
            idx[k++] = i + s;
    if (k == 0)
        return;
    double v[4];
#define MED(field, expr)                                                                    \
    do {                                                                                    \
        for (size_t q = 0; q < k; q++)                                                      \
            v[q] = (expr);                                                                  \
        field = sm_median_inplace(v, k);                                                            \
    } while (0)
    MED(r->canal, w[idx[q]].pl.canal_area);
    MED(r->sac, w[idx[q]].pl.nonfat_area);
    MED(r->csf, w[idx[q]].pl.csf_area);
    MED(r->cord, w[idx[q]].pl.dense_area);
    for (int a = 0; a < NR; a++) {
        MED(r->epi[a], w[idx[q]].pl.epi_mm[a]);
        MED(r->sac_rel[a], w[idx[q]].pl.wall_mm[a] > 0
                               ? w[idx[q]].pl.sac_out_mm[a] / w[idx[q]].pl.wall_mm[a]
                               : 0);
        MED(r->cord_out[a], w[idx[q]].pl.cord_out_mm[a]);
        MED(r->wall[a], w[idx[q]].pl.wall_mm[a]);
    }
#undef MED
    r->n = k;
    r->ok = true;
}

static int pixel_at(double r, double cx, double cy)
{
    double fa = N / 2 - 0.5 + r * cx / PX, fb = N / 2 - 0.5 + r * cy / PX;
    int a = (int)floor(fa + 0.5), b = (int)floor(fb + 0.5);
    if (a < 0 || b < 0 || a >= N || b >= N)
        return -1;
    return b * N + a;
}

/* Bone behind the first bone of ray q: the length (mm, up to 6) over which the 1 mm running
 * mean beyond the first bone stays at or above lysis_thr, and where bone (two samples >=
 * bone_thr) resumes after that dip (distance from the centre; NAN: not within 8 mm of the
 * first bone). */
static double bone_solid(const LevelWork *W, int q, double bone_thr, double lysis_thr, double *resume)
{
    double th = 2 * M_PI * q / SM_ESCC_BONY_RAYS, cx = cos(th), cy = sin(th);
    double e = W->bone_edge[q];
    *resume = NAN;
    if (isnan(e))
        return NAN;
    double win[5] = {0};
    int nw = 0;
    double solid = 6.0, dip = NAN;
    for (double d = e; d <= e + 6.0; d += 0.2) {
        int px = pixel_at(d, cx, cy);
        if (px < 0)
            return NAN;
        win[nw % 5] = W->hu[px];
        nw++;
        if (nw >= 5) {
            double m = (win[0] + win[1] + win[2] + win[3] + win[4]) / 5.0;
            if (m < lysis_thr) {
                solid = d - 0.8 - e;
                dip = d;
                break;
            }
        }
    }
    if (isnan(dip))
        return solid;
    int run = 0;
    for (double d = dip; d <= e + 8.0; d += 0.2) {
        int px = pixel_at(d, cx, cy);
        if (px < 0)
            break;
        run = W->hu[px] >= bone_thr ? run + 1 : 0;
        if (run >= 2) {
            *resume = d - 0.2;
            break;
        }
    }
    return solid;
}

/* A first look (before any reference is trusted): epidural dense tissue clearly thicker
 * than at the neighbours. Such levels are left out of the others' references. */
static bool tumour_suspect(const LevelWork *w, const Ref *ref)
{
    if (!ref->ok)
        return false;
    int run = 0, best = 0;
    for (int a = 0; a < 2 * NR; a++) {
        int q = a % NR;
        if (w->pl.epi_mm[q] - ref->epi[q] >= 1.2)
            run++;
        else
            run = 0;
        if (run > best)
            best = run;
    }
    return best >= 3 || (ref->sac > 0 && w->pl.nonfat_area < 0.6 * ref->sac);
}

/* The bony wall expected from the neighbours, and where a lesion eroded it. Reference: per
 * ray the median of the first-bone distances of up to two measured levels on each side. Model
 * of this level's wall: scale x reference (scale = median ratio over the rays, within -10 % /
 * +8 %: adjacent canals differ little, a lesion eroding the whole ring must not inflate it)
 * plus a shift of the plane centre (a cos + b sin, least squares over the rays that fit within
 * 1.5 mm, twice). A ray is eroded when its first bone lies 1.5-4.5 mm beyond the model with
 * soft tissue (not faint bone) just beyond the model, or when the wall is in place but the bone
 * behind it is short with bone resuming behind a soft-tissue dip (lysis behind a rim).
 * erosion_deg: the longest run of adjacent eroded rays. Serial; reads bone_edge and the plane
 * of the neighbours only. */
static void wall_model(LevelWork *w, size_t n, size_t i, double bone_thr, double muscle_hu)
{
    enum { NB = SM_ESCC_BONY_RAYS };
    LevelWork *W = &w[i];
    const double lysis_thr = 0.5 * (muscle_hu + bone_thr);
    W->erosion_deg = 0;
    W->off[0] = W->off[1] = 0;
    for (int q = 0; q < NB; q++) {
        W->wall_exp[q] = NAN;
        W->eroded[q] = false;
    }
    if (!W->in_view || !W->bone_ok)
        return;
    size_t idx[4];
    size_t k = bony_neighbours(w, n, i, idx);
    if (k == 0)
        return;
    double ref[NB], ratio[NB];
    size_t nr = 0;
    for (int q = 0; q < NB; q++) {
        double v[4];
        size_t nv = 0;
        for (size_t j = 0; j < k; j++)
            if (!isnan(w[idx[j]].bone_edge[q]))
                v[nv++] = w[idx[j]].bone_edge[q];
        ref[q] = nv * 2 > k ? sm_median_inplace(v, nv) : NAN;
        if (!isnan(ref[q]) && ref[q] > 0 && !isnan(W->bone_edge[q]))
            ratio[nr++] = W->bone_edge[q] / ref[q];
    }
    if (nr < NB / 2)
        return;
    double scale = fmin(1.08, fmax(0.9, sm_median_inplace(ratio, nr)));
    double fa = 0, fb = 0;
    for (int it = 0; it < 3; it++) {
        double scc = 0, sss = 0, scs = 0, src = 0, srs = 0;
        int used = 0;
        for (int q = 0; q < NB; q++) {
            if (isnan(ref[q]) || isnan(W->bone_edge[q]))
                continue;
            double th = 2 * M_PI * q / NB, c = cos(th), sn = sin(th);
            double r = W->bone_edge[q] - scale * ref[q];
            if (it > 0 && fabs(r - (fa * c + fb * sn)) >= 1.5)
                continue;
            scc += c * c;
            sss += sn * sn;
            scs += c * sn;
            src += r * c;
            srs += r * sn;
            used++;
        }
        double det = scc * sss - scs * scs;
        if (used < NB / 3 || fabs(det) < 1e-9)
            break;
        fa = (src * sss - srs * scs) / det;
        fb = (srs * scc - src * scs) / det;
        /* the plane centre is re-centred on the canal: only a small offset is plausible */
        double off = sqrt(fa * fa + fb * fb);
        if (off > 3.0) {
            fa *= 3.0 / off;
            fb *= 3.0 / off;
        }
    }
    W->off[0] = fa;
    W->off[1] = fb;
    bool any = false;
    for (int q = 0; q < NB; q++) {
        if (isnan(ref[q]))
            continue;
        double th = 2 * M_PI * q / NB;
        W->wall_exp[q] = scale * ref[q] + fa * cos(th) + fb * sin(th);
        double cur = W->bone_edge[q];
        /* a notch in the wall: bone resumes 1.5-4.5 mm beyond the model. A ray with no bone
         * for longer runs out of the ring (foramen, gap between the laminae: the plane's
         * height against the pedicles varies level to level; on a lesion-free chest CT these
         * rays made 26-45 degree "erosions"); a lesion destroying the whole pedicle is the
         * lesion metrics' to find */
        W->eroded[q] = !isnan(cur) && cur - W->wall_exp[q] >= 1.5 && cur - W->wall_exp[q] <= 4.5;
        if (W->eroded[q]) {
            /* and no bone where the wall should be: 0.5-2.5 mm beyond the expected wall the
             * mean is below the midpoint of soft tissue and the bone threshold (tumour, not a
             * faint cancellous body; half the bone threshold, used before, is within ~10 HU
             * of a contrast-enhanced tumour) */
            double sum = 0;
            int cnt = 0;
            for (double d = W->wall_exp[q] + 0.5; d <= W->wall_exp[q] + 2.5; d += 0.2) {
                double pa = N / 2 - 0.5 + d * cos(th) / PX, pb = N / 2 - 0.5 + d * sin(th) / PX;
                int a = (int)floor(pa + 0.5), b = (int)floor(pb + 0.5);
                if (a < 0 || b < 0 || a >= N || b >= N)
                    break;
                sum += W->hu[b * N + a];
                cnt++;
            }
            W->eroded[q] = cnt > 0 && sum / cnt < lysis_thr;
        }
        any = any || W->eroded[q];
    }
    {
        /* lysis behind a wall that is still in place (a thin rim of bone left in front of the
         * lesion, the wall's first bone where the model puts it): the bone beyond the first
         * bone is short here (<= 2 mm before soft tissue), bone resumes behind the dip (a
         * notch, not the end of a thin lamina), and the neighbours' bone on that ray is
         * >= 2 mm longer */
        for (int q = 0; q < NB; q++) {
            if (W->eroded[q] || isnan(W->wall_exp[q]) || isnan(W->bone_edge[q]) ||
                fabs(W->bone_edge[q] - W->wall_exp[q]) > 1.5)
                continue;
            double res_here, res_n;
            double sh = bone_solid(W, q, bone_thr, lysis_thr, &res_here);
            if (isnan(sh) || sh > 2.0 || isnan(res_here))
                continue;
            double v[4];
            size_t nv = 0;
            for (size_t j = 0; j < k; j++) {
                double sn = bone_solid(&w[idx[j]], q, bone_thr, lysis_thr, &res_n);
                if (!isnan(sn))
                    v[nv++] = sn;
            }
            if (nv * 2 > k && sm_median_inplace(v, nv) >= sh + 2.0) {
                W->eroded[q] = true;
                any = true;
            }
        }
    }
    /* a wall is only called eroded against neighbours on both sides: from one side (the
     * end of the field of view or of the measured levels) the expected wall is extrapolated
     * across a canal that changes shape along the spine (the cervicothoracic and
     * thoracolumbar transitions of a lesion-free chest CT made 26-41 degree "erosions" at
     * T1, T11 and T12 that way) */
    bool below = false, above = false;
    for (size_t j = 0; j < k; j++) {
        below = below || idx[j] < i;
        above = above || idx[j] > i;
    }
    if (!(below && above)) {
        for (int q = 0; q < NB; q++)
            W->eroded[q] = false;
        any = false;
    }
    if (!any)
        return;
    int run = 0, best = 0;
    for (int a = 0; a < 2 * NB; a++) {
        run = W->eroded[a % NB] ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    if (best > NB)
        best = NB;
    W->erosion_deg = 360.0 * best / NB;
}

/* The canal outline of a level against its neighbours' outlines (up to two measured levels
 * on each side), three checks (docs/escc.md, step 1):
 * - ring_open: the plane misses the bony ring (level not graded);
 * - ext_grow: the outline stops short of an intact wall that the neighbours' outlines reach;
 * - ext_clip: rays that no bone closes at this level (the outline there is the segmentation's
 * canal or the fat edge) and whose outline reaches far beyond the neighbours' outline on the same ray
 * (>= 2.5 mm and >= 30 % beyond scale x their median + the fitted centre offset): the
 * segmentation's canal took in tissue outside the canal (e.g. an osteopenic body behind a
 * posterior wall below the bone threshold, the basivertebral foramen at mid-height). These
 * rays take the neighbours' outline. No claim of a bone lesion is made (the neighbours had no
 * bone there either). Serial; reads ext of the neighbours only. */
static void outline_model(LevelWork *w, size_t n, size_t i)
{
    enum { NB = SM_ESCC_BONY_RAYS };
    LevelWork *W = &w[i];
    W->n_clip = W->n_grow = 0;
    W->ring_open = false;
    for (int q = 0; q < NB; q++) {
        W->ext_exp[q] = NAN;
        W->ext_clip[q] = W->ext_grow[q] = false;
    }
    if (!W->in_view || !W->bone_ok)
        return;
    size_t idx[4];
    size_t k = bony_neighbours(w, n, i, idx);
    if (k == 0)
        return;
    {
        /* the plane misses the bony ring (between two arches, above or below the vertebra
         * at the end of the field of view): bone meets under half of the rays here, on
         * >= 80 % at the neighbours (a lytic lesion leaves bone further out on most rays) */
        double v[4];
        for (size_t j = 0; j < k; j++)
            v[j] = w[idx[j]].ring_frac;
        W->ring_open = W->ring_frac < 0.5 && sm_median_inplace(v, k) >= 0.8;
    }
    /* the outline stops short of an intact bony wall (first bone within 1.5 mm of the wall
     * expected from the neighbours, not eroded) by >= 1.5 mm (the smallest reported mass
     * thickness) where the neighbours' outlines reach their wall (median gap <= 0.6 mm): the
     * segmentation's canal stopped at tissue in the epidural space, which is canal content;
     * runs of >= 3 rays reach the wall */
    for (int q = 0; q < NB; q++) {
        if (isnan(W->bone_edge[q]) || isnan(W->wall_exp[q]) || W->eroded[q] ||
            fabs(W->bone_edge[q] - W->wall_exp[q]) > 1.5 || W->bone_edge[q] - W->ext[q] < 1.5)
            continue;
        double v[4];
        size_t nv = 0;
        for (size_t j = 0; j < k; j++)
            if (!isnan(w[idx[j]].bone_edge[q]))
                v[nv++] = w[idx[j]].bone_edge[q] - w[idx[j]].ext[q];
        W->ext_grow[q] = nv * 2 > k && sm_median_inplace(v, nv) <= 0.6;
    }
    /* keep only runs of >= 3 adjacent rays */
    bool keep[NB];
    int bg = 0;
    for (int q = 0; q < NB; q++) {
        int len = 0;
        if (W->ext_grow[q]) {
            int lo = 0, hi = 0;
            while (lo < NB && W->ext_grow[(q - lo - 1 + NB) % NB])
                lo++;
            while (hi < NB && W->ext_grow[(q + hi + 1) % NB])
                hi++;
            len = lo + hi + 1 > NB ? NB : lo + hi + 1;
        }
        keep[q] = len >= 3;
        if (len > bg)
            bg = len;
    }
    for (int q = 0; q < NB; q++)
        W->ext_grow[q] = keep[q];
    W->n_grow = bg;
    if (k < 2)
        return; /* one neighbour is not a reference for an outline */
    double ref[NB], ratio[NB];
    size_t nr = 0;
    for (int q = 0; q < NB; q++) {
        double v[4];
        for (size_t j = 0; j < k; j++)
            v[j] = w[idx[j]].ext[q];
        ref[q] = sm_median_inplace(v, k);
        if (ref[q] > 0)
            ratio[nr++] = W->ext[q] / ref[q];
    }
    if (nr < NB / 2)
        return;
    double scale = fmin(1.08, fmax(0.9, sm_median_inplace(ratio, nr)));
    int run = 0, best = 0;
    for (int q = 0; q < NB; q++) {
        if (!(ref[q] > 0))
            continue;
        double th = 2 * M_PI * q / NB;
        double e = scale * ref[q] + W->off[0] * cos(th) + W->off[1] * sin(th);
        W->ext_exp[q] = e;
        W->ext_clip[q] = isnan(W->bone_edge[q]) && isnan(W->wall_exp[q]) && W->ext[q] >= e + 2.5 &&
                         W->ext[q] >= 1.3 * e;
    }
    for (int a = 0; a < 2 * NB; a++) {
        run = W->ext_clip[a % NB] ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    W->n_clip = best > NB ? NB : best;
}

/* Where the wall is eroded (>= 22 degrees), the canal outline takes the expected wall on the
 * eroded rays (the mass in the eroded notch is not canal; a segmentation that stopped short of
 * the mass is extended to the wall), keeps the current outline elsewhere, and the plane is
 * re-centred on the new outline and re-sampled. */
static void level_refine(const SmVolume *ct, const SmVolume *sub, double bone_thr, LevelWork *w,
                         int16_t *hu_out)
{
    enum { NB = SM_ESCC_BONY_RAYS };
    if (!w->in_view || !w->bone_ok || (w->erosion_deg < 22.0 && w->n_clip < 2 && w->n_grow < 3))
        return;
    bool use_eroded = w->erosion_deg >= 22.0;
    double R[NB];
    outline_extent(w->mask, R);
    for (int q = 0; q < NB; q++) {
        if (use_eroded && w->eroded[q] && !isnan(w->wall_exp[q]))
            R[q] = w->wall_exp[q];
        else if (w->n_clip >= 2 && w->ext_clip[q])
            R[q] = w->ext_exp[q];
        else if (w->n_grow >= 3 && w->ext_grow[q])
            R[q] = w->bone_edge[q];
    }
    /* outline polygon in the current plane; centroid of its non-bone pixels */
    double sa = 0, sb = 0, cnt = 0;
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            double x = (a - N / 2 + 0.5) * PX, y = (b - N / 2 + 0.5) * PX;
            double t = atan2(y, x) / (2 * M_PI) * NB;
            if (t < 0)
                t += NB;
            int q0 = (int)floor(t) % NB, q1 = (q0 + 1) % NB;
            double f = t - floor(t);
            if (sqrt(x * x + y * y) <= R[q0] * (1 - f) + R[q1] * f && w->hu[b * N + a] < bone_thr) {
                sa += x;
                sb += y;
                cnt += 1;
            }
        }
    if (cnt < 10)
        return;
    double sx = sa / cnt, sy = sb / cnt;
    for (int d = 0; d < 3; d++)
        w->c[d] += sx * w->ex[d] + sy * w->ey[d];
    sm_canal_plane_sample(ct, sub, w->c, w->ex, w->ey, w->ez, w->hu, w->mask, hu_out);
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            /* the pixel in the old plane's coordinates */
            double x = (a - N / 2 + 0.5) * PX + sx, y = (b - N / 2 + 0.5) * PX + sy;
            double t = atan2(y, x) / (2 * M_PI) * NB;
            if (t < 0)
                t += NB;
            int q0 = (int)floor(t) % NB, q1 = (q0 + 1) % NB;
            double f = t - floor(t);
            w->mask[b * N + a] =
                sqrt(x * x + y * y) <= R[q0] * (1 - f) + R[q1] * f && w->hu[b * N + a] < bone_thr;
        }
}

static int cmp_flt(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int ray_of(double x, double y)
{
    return (int)floor(atan2(y, x) / (2 * M_PI) * NR + NR + 0.5) % NR;
}

static double clamp01(double v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

static void grade_level(const LevelWork *w, const Ref *ref, bool cord_level,
                        const SmEsccStats *st, bool lesion_known, bool lesion_flag,
                        double erosion_deg, SmCanalLevel *L)
{
    const SmCanalPlane *p = &w->pl;
    L->canal_area_mm2 = p->canal_area;
    L->fat_area_mm2 = p->fat_area;
    L->below_conus = !cord_level;
    L->ref_canal_area_mm2 = ref->ok ? ref->canal : NAN;
    L->ref_sac_area_mm2 = ref->ok ? ref->sac : NAN;
    L->ref_csf_area_mm2 = ref->ok ? ref->csf : NAN;
    L->ref_cord_area_mm2 = ref->ok && cord_level ? ref->cord : NAN;
    /* epidural dense tissue in excess of the neighbours, per ray */
    bool tum[NR];
    double excess[NR];
    double max_ex = 0;
    for (int a = 0; a < NR; a++) {
        double base = ref->ok ? ref->epi[a] : 0;
        excess[a] = p->epi_mm[a] - base;
        tum[a] = excess[a] >= 0.8;
    }
    bool tum2[NR];
    int n_tum = 0;
    for (int a = 0; a < NR; a++) {
        /* an isolated ray is noise: keep runs of >= 2 */
        tum2[a] = tum[a] && (tum[(a + 1) % NR] || tum[(a + NR - 1) % NR]);
        if (tum2[a]) {
            n_tum++;
            if (excess[a] > max_ex)
                max_ex = excess[a];
        }
    }
    /* tumour pixels */
    double tarea = 0, tx = 0, ty = 0;
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++) {
            size_t i = (size_t)b * N + (size_t)a;
            if (L->classes[i] != SM_ESCC_CLASS_CORD)
                continue;
            double x = (a - N / 2 + 0.5) * PX, y = (b - N / 2 + 0.5) * PX;
            int r = ray_of(x, y);
            if (!tum2[r])
                continue;
            double rho = sqrt(x * x + y * y);
            double inner = p->wall_mm[r] - p->epi_mm[r] - 0.3;
            if (cord_level && ref->ok && inner < ref->cord_out[r])
                inner = ref->cord_out[r];
            if (rho >= inner) {
                L->classes[i] = SM_ESCC_CLASS_TUMOUR;
                tarea += PX * PX;
                tx += x;
                ty += y;
            }
        }
    /* where the bony canal wall is eroded (a bone lesion at the canal, step 1) a thin mass
     * growing from it is expected: half the area limit there (the thickness limit stays) */
    double min_area = erosion_deg >= 22.0 ? 0.5 * st->min_area_mm2 : st->min_area_mm2;
    if (!cord_level && tarea >= min_area && max_ex >= st->min_thickness_mm) {
        /* below the conus anything dense in the sac is abnormal. The fluid | dense threshold
         * is set for the cord's faint contrast, low between CSF and a mass: on the
         * small-radius image the mass | CSF edge is placed midway between the CSF and the
         * mass's own value (median of the dense pixels), so the remaining sac is not eroded
         * by the smoothing */
        static const size_t NN = (size_t)N * N;
        float vals[N * N];
        size_t nv = 0;
        for (size_t i = 0; i < NN; i++)
            if (L->classes[i] == SM_ESCC_CLASS_CORD || L->classes[i] == SM_ESCC_CLASS_TUMOUR)
                vals[nv++] = w->sm_dense[i];
        double tum_hu = NAN;
        if (nv > 0) {
            qsort(vals, nv, sizeof *vals, cmp_flt);
            tum_hu = vals[nv / 2];
        }
        double mid = !isnan(tum_hu) && tum_hu > st->dense_threshold_hu
                         ? 0.5 * (st->csf_hu + tum_hu) : st->dense_threshold_hu;
        if (mid < st->dense_threshold_hu)
            mid = st->dense_threshold_hu;
        tarea = 0;
        for (size_t i = 0; i < NN; i++) {
            uint8_t c = L->classes[i];
            if (c != SM_ESCC_CLASS_CSF && c != SM_ESCC_CLASS_CORD && c != SM_ESCC_CLASS_TUMOUR)
                continue;
            if (w->sm_fat[i] >= mid || (c != SM_ESCC_CLASS_CSF && w->sm_dense[i] >= mid)) {
                L->classes[i] = SM_ESCC_CLASS_TUMOUR;
                tarea += PX * PX;
            } else {
                L->classes[i] = SM_ESCC_CLASS_CSF;
            }
        }
    }
    bool tumour = tarea >= min_area && max_ex >= st->min_thickness_mm;
    L->tumour_area_mm2 = tumour ? tarea : 0;
    L->tumour_thickness_mm = tumour ? max_ex : 0;
    if (!tumour) /* below the detection limits: show as sac content */
        for (size_t i = 0; i < (size_t)N * N; i++)
            if (L->classes[i] == SM_ESCC_CLASS_TUMOUR)
                L->classes[i] = SM_ESCC_CLASS_CORD;
    double t_used = tumour ? tarea : 0;
    L->sac_area_mm2 = p->nonfat_area - t_used;
    L->csf_area_mm2 = p->csf_area;
    if (tumour && cord_level && ref->ok) {
        /* free CSF is counted away from fat (one pixel); where the mass took the place of
         * epidural fat (outside the neighbours' sac extent) the CSF next to it was next to
         * fat at the neighbours: leave it out here too, so the ratio compares like with like
         * (a circumferential ring in the fat raised the CSF ratio of 2s to 0.75-0.80) */
        double csf_thr = st->dense_threshold_hu - 0.3 * (st->dense_threshold_hu - st->csf_hu);
        double drop = 0;
        for (int b = 1; b < N - 1; b++)
            for (int a = 1; a < N - 1; a++) {
                size_t i = (size_t)b * N + (size_t)a;
                if (!w->nonfat[i] || L->classes[i] == SM_ESCC_CLASS_OUTSIDE ||
                    L->classes[i] == SM_ESCC_CLASS_TUMOUR || w->sm_fat[i] >= csf_thr)
                    continue;
                double xi = (a - N / 2 + 0.5) * PX, yi = (b - N / 2 + 0.5) * PX;
                int ri = ray_of(xi, yi);
                bool near = sqrt(xi * xi + yi * yi) > ref->sac_rel[ri] * p->wall_mm[ri] + 0.5;
                for (int db = -1; !near && db <= 1; db++)
                    for (int da = -1; !near && da <= 1; da++) {
                        size_t j = (size_t)(b + db) * N + (size_t)(a + da);
                        if (L->classes[j] != SM_ESCC_CLASS_TUMOUR)
                            continue;
                        double x = (a + da - N / 2 + 0.5) * PX, y = (b + db - N / 2 + 0.5) * PX;
                        int r = ray_of(x, y);
                        near = sqrt(x * x + y * y) > ref->sac_rel[r] * p->wall_mm[r];
                    }
                if (near)
                    drop += PX * PX;
            }
        L->csf_area_mm2 = fmax(0, p->csf_area - drop);
    }
    L->cord_area_mm2 = cord_level ? p->dense_area - t_used : 0;
    L->canal_ratio = ref->ok && ref->canal > 0 ? p->canal_area / ref->canal : NAN;
    L->sac_ratio = ref->ok && ref->sac > 0 ? L->sac_area_mm2 / ref->sac : NAN;

    L->csf_ratio = ref->ok && ref->csf > 0 ? L->csf_area_mm2 / ref->csf : NAN;
    L->sac_diameter_ratio = NAN;
    L->cord_gap_mm = NAN;
    L->position = SM_ESCC_POS_NONE;
    sm_strlist_add(&L->reasons, "canal %.0f mm2 (neighbours %.0f), sac %.0f (%.0f), CSF %.0f (%.0f)",
                   p->canal_area, ref->ok ? ref->canal : NAN, L->sac_area_mm2,
                   ref->ok ? ref->sac : NAN, L->csf_area_mm2, ref->ok ? ref->csf : NAN);
    bool eroded = erosion_deg >= 22.0;
    if (w->ring_open) {
        L->grade = SM_ESCC_NONE;
        L->confidence = 0;
        L->position = SM_ESCC_POS_NONE;
        sm_strlist_add(&L->reasons, "bone closes only %.0f%% of the canal outline here against "
                                    "most of it at the neighbours: the plane misses the bony ring "
                                    "(segmentation level or field of view); not graded",
                       100 * w->ring_frac);
        return;
    }
    if (ref->ok && ref->canal > 0 && p->canal_area < 0.5 * ref->canal) {
        /* a mass fills the bony canal but does not shrink it: a section under half of the
         * neighbours' is a plane off the canal (segmentation or centreline error) */
        L->grade = SM_ESCC_NONE;
        L->confidence = 0;
        L->position = SM_ESCC_POS_NONE;
        sm_strlist_add(&L->reasons, "bony canal section under half of the neighbours': the plane "
                                    "is off the canal (segmentation); not graded");
        return;
    }
    if (!tumour) {
        if (lesion_known && !lesion_flag && !eroded) {
            L->grade = SM_ESCC_NONE;
            L->confidence = 0.9;
            sm_strlist_add(&L->reasons, "no bone lesion near the canal, no epidural soft tissue");
            return;
        }
        L->grade = SM_ESCC_0;
        L->confidence = 0.9 - 0.3 * clamp01(max_ex / 1.0);
        sm_strlist_add(&L->reasons, "no epidural soft tissue beyond the neighbour levels "
                                    "(largest excess %.1f mm)", max_ex);
        if (eroded)
            sm_strlist_add(&L->reasons, "bony canal wall eroded over %.0f degrees (bone lesion at "
                                        "the canal)", erosion_deg);
        return;
    }
    /* position: rays covered and the tumour centroid */
    if (n_tum >= (NR * 6) / 10) {
        L->position = SM_ESCC_POS_CIRCUMFERENTIAL;
    } else {
        double cx = tx, cy = ty;
        if (fabs(cy) >= fabs(cx))
            L->position = cy < 0 ? SM_ESCC_POS_ANTERIOR : SM_ESCC_POS_POSTERIOR;
        else
            L->position = cx > 0 ? SM_ESCC_POS_LEFT : SM_ESCC_POS_RIGHT;
    }
    /* the direction of the deepest excess, its opposite and the sac extent along them */
    int ua = 0;
    for (int a = 1; a < NR; a++)
        if (tum2[a] && (!tum2[ua] || excess[a] > excess[ua]))
            ua = a;
    int ub = (ua + NR / 2) % NR;
    /* at cord levels the dense run from the wall may go on through a thin CSF layer into
     * the cord: the mass front is taken no deeper than the neighbours' cord edge here (the
     * sac deformation only decides 1a | 1b, where the mass does not reach the cord) */
    double f_a = p->wall_mm[ua] - p->epi_mm[ua], f_b = p->wall_mm[ub] - p->epi_mm[ub];
    if (cord_level && ref->ok) {
        f_a = fmax(f_a, ref->cord_out[ua]);
        f_b = fmax(f_b, ref->cord_out[ub]);
    }
    double s_a = fmin(p->sac_out_mm[ua], f_a);
    double s_b = tum2[ub] ? fmin(p->sac_out_mm[ub], f_b) : p->sac_out_mm[ub];
    /* the expected sac extent: the neighbours' sac scaled by this canal's size relative to
     * theirs, as the median over the rays (a wall eroded by a lytic lesion, or a canal
     * outline that took in part of the mass, does not inflate it) */
    double wr[NR];
    size_t nwr = 0;
    for (int a = 0; a < NR; a++)
        if (ref->ok && ref->wall[a] > 0 && p->wall_mm[a] > 0)
            wr[nwr++] = p->wall_mm[a] / ref->wall[a];
    double scale = nwr >= NR / 2 ? sm_median_inplace(wr, nwr) : NAN;
    double wa = isnan(scale) ? p->wall_mm[ua] : fmin(p->wall_mm[ua], scale * ref->wall[ua]);
    double wb = isnan(scale) ? p->wall_mm[ub] : fmin(p->wall_mm[ub], scale * ref->wall[ub]);
    double ref_a = ref->ok ? ref->sac_rel[ua] * wa : NAN;
    double ref_b = ref->ok ? ref->sac_rel[ub] * wb : NAN;
    L->sac_diameter_ratio = (s_a + s_b) / (ref_a + ref_b);
    sm_strlist_add(&L->reasons, "epidural soft tissue %.0f mm2, %.1f mm thick, %s",
                   tarea, max_ex, sm_escc_position_name(L->position));
    double conf = 0.85;
    SmEsccGrade g;
    double sr = isnan(L->sac_ratio) ? 1 : L->sac_ratio;
    double dr = isnan(L->sac_diameter_ratio) ? 1 : L->sac_diameter_ratio;
    bool deformed = sr < 0.9 || dr < 0.84;
    if (cord_level) {
        /* CSF between the mass and the cord: on the small-radius image (sharper than the
         * fluid | dense one), along the rays of deepest excess, median over them */
        double gaps[NR];
        size_t ng = 0;
        double dthr = st->dense_threshold_hu;
        for (int a = 0; a < NR; a++) {
            if (!tum2[a] || !ref->ok || ref->cord_out[a] <= 0 || excess[a] < 0.6 * max_ex)
                continue;
            double th = 2 * M_PI * a / NR, cx = cos(th), cy = sin(th);
            double d = p->wall_mm[a] - 0.3;
            double far = -p->wall_mm[(a + NR / 2) % NR];
            while (d > far) {
                int pa = pixel_at(d, cx, cy);
                if (pa < 0 || w->sm_fat[pa] < dthr)
                    break;
                d -= 0.1;
            }
            if (d < ref->cord_out[a] - 1.0) {
                gaps[ng++] = 0; /* the mass runs on into the cord: no CSF between them */
                continue;
            }
            /* the CSF run after the front, up to the cord (which may have moved away) */
            double e = d;
            while (e > far) {
                int pa = pixel_at(e, cx, cy), pb = pixel_at(e - 0.4, cx, cy);
                if (pa >= 0 && w->sm_fat[pa] >= dthr && pb >= 0 && w->sm_fat[pb] >= dthr)
                    break;
                e -= 0.1;
            }
            /* the cord is pushed away by a mass, never towards it: a front that stops well
             * short of where the neighbours' cord edge lies cannot abut the cord, whatever
             * noise follows it (floor of the gap: that distance less 1 mm for the centre's
             * and the neighbours' uncertainty) */
            gaps[ng++] = fmax(d - e, d - ref->cord_out[a] - 1.0);
        }
        double gap = ng ? sm_median_inplace(gaps, ng) : NAN;
        L->cord_gap_mm = isnan(gap) ? NAN : (gap > 0 ? gap : 0);
        /* no ray of the mass meets a cord edge at the neighbours (their dense core does not
         * reach along it): nothing to abut. Without any neighbour the gap is unknown and the
         * cord is assumed reached (the cautious side) */
        if (isnan(gap))
            gap = ref->ok ? 1e9 : 0;
        double cr = isnan(L->csf_ratio) ? 1 : L->csf_ratio;
        if (cr < 0.22) {
            g = SM_ESCC_3;
            conf = 0.6 + 0.25 * clamp01((0.22 - cr) / 0.1);
        } else if (gap <= 0.3) {
            /* CSF ratio step 1c | 2 at 0.56: on the product path (seeds 0-3) abutting
             * non-circumferential 2s measured 0.26-0.52, abutting 1b / 1c 0.59-0.96 */
            g = cr < 0.56 ? SM_ESCC_2 : SM_ESCC_1C;
            conf = 0.5 + 0.2 * clamp01(fabs(cr - 0.56) / 0.15);
        } else {
            g = deformed ? SM_ESCC_1B : SM_ESCC_1A;
            conf = 0.6 + 0.25 * clamp01(fmin(gap - 0.3, fabs(sr - 0.9) * 10));
        }
        sm_strlist_add(&L->reasons, "cord gap %.1f mm, CSF ratio %.2f, sac ratio %.2f, "
                                    "sac diameter ratio %.2f",
                       L->cord_gap_mm, cr, sr, dr);
        if (g >= SM_ESCC_1C)
            sm_strlist_add(&L->reasons, "cord and CSF differ by only ~%.0f HU on CT: grades 1c-3 "
                                        "are less certain than on T2 MRI; confirm on MRI",
                           st->cord_hu - st->csf_hu);
    } else {
        /* cauda equina: grade the thecal-sac compression */
        if (!deformed)
            g = SM_ESCC_1A;
        else if (sr >= 0.68)
            g = SM_ESCC_1B;
        else if (sr >= 0.42)
            g = SM_ESCC_1C;
        else if (sr >= 0.15)
            g = SM_ESCC_2;
        else
            g = SM_ESCC_3;
        static const double edges[] = {0.9, 0.68, 0.42, 0.15};
        double md = 1;
        for (int e = 0; e < 4; e++)
            md = fmin(md, fabs(sr - edges[e]));
        conf = 0.55 + 0.35 * clamp01(md / 0.08);
        if (L->cord_expected) {
            /* the conus lies at T12-L2: above T12 the cord is there but was not resolved
             * (non-contrast CT, thin CSF); the sac grade stands for it, less certain */
            conf *= 0.7;
            sm_strlist_add(&L->reasons, "cord not resolved on this CT at a cord level: thecal sac "
                                        "%.0f%% of the neighbours, diameter ratio %.2f (graded on "
                                        "the sac; confirm on MRI)",
                           100 * sr, dr);
        } else {
            sm_strlist_add(&L->reasons, "below the conus (cauda equina): thecal sac %.0f%% of the "
                                        "neighbours, diameter ratio %.2f",
                           100 * sr, dr);
        }
    }
    if (!ref->ok) {
        conf *= 0.5;
        sm_strlist_add(&L->reasons, "no neighbouring level to compare with");
    }
    if (eroded)
        sm_strlist_add(&L->reasons, "bony canal wall eroded over %.0f degrees (bone lesion at the "
                                    "canal)", erosion_deg);
    else if (lesion_known && !lesion_flag)
        sm_strlist_add(&L->reasons, "epidural soft tissue without a detected bone lesion");
    if (lesion_known && !lesion_flag && !eroded && ref->ok && ref->sac > 0 &&
        p->nonfat_area < 0.9 * ref->sac) {
        /* an epidural mass adds tissue to the canal's contents: the sac area it takes is
         * tumour in the same plane, and it fills epidural fat, so sac + tissue is at least
         * the neighbours' sac. Less (here < 90 %) without any bone lesion means the "tissue"
         * is part of the sac or cord measured in another position than at the neighbours
         * (the anterior thoracic canal of a lesion-free chest CT: 66-84 %; every phantom
         * tumour level graded on the product path, seeds 0-3: >= 95 %) */
        L->grade = SM_ESCC_NONE;
        L->confidence = 0.6;
        sm_strlist_add(&L->reasons, "not graded: no bone lesion at the level and sac + tissue "
                                    "(%.0f mm2) smaller than the neighbours' sac (%.0f mm2): a sac "
                                    "displaced, not compressed by a mass",
                       p->nonfat_area, ref->sac);
        return;
    }
    if (lesion_known && !lesion_flag && !eroded && st->muscle_hu > ESCC_ENHANCED_HU) {
        /* contrast-enhanced CT (the soft-tissue peak is enhanced parenchyma): the anterior
         * epidural venous plexus enhances and reads as epidural tissue; with no bone lesion
         * at the level or beside it to grow from, nothing tells it from a mass */
        L->grade = SM_ESCC_NONE;
        L->confidence = 0.6;
        sm_strlist_add(&L->reasons, "not graded: contrast-enhanced CT (soft-tissue peak %.0f "
                                    "HU) and no bone lesion at the level; enhancing epidural "
                                    "veins cannot be told from a mass",
                       st->muscle_hu);
        return;
    }
    if (lesion_known && !lesion_flag && !eroded && L->cord_expected && L->below_conus) {
        /* at a cord level where the cord is not resolved (non-contrast CT: cord, CSF and
         * soft tissue within ~20 HU) the "tissue" may be the cord lying against the canal
         * wall; with no bone lesion to grow from, nothing supports a mass */
        L->grade = SM_ESCC_NONE;
        L->confidence = 0.6;
        sm_strlist_add(&L->reasons, "not graded: the cord is not resolved on this CT and no bone "
                                    "lesion is found at the level; the tissue cannot be told "
                                    "from the cord and sac");
        return;
    }
    L->grade = g;
    L->confidence = conf;
}

/* ------------------------------------------------------------------ driver */

bool sm_escc_run(SmError **error, const SmVolume *ct, const SmVolume *labels,
                 const SmVolume *subregions, const double (*canal_lps)[3], size_t n_canal,
                 const int *verse_labels, size_t n_levels, const bool *lesion_near_canal,
                 int threads, SmEsccResult **out)
{
    if (!ct || !labels || !subregions || !out || (n_levels > 0 && !verse_labels) ||
        (n_canal > 0 && !canal_lps)) {
        sm_error_set(error, SM_ERR_USAGE, "sm_escc_run: missing argument");
        return false;
    }
    if (!sm_volume_same_grid(ct, labels, 0.01) || !sm_volume_same_grid(ct, subregions, 0.01)) {
        sm_error_set(error, SM_ERR_USAGE, "sm_escc_run: CT, labels and sub-regions must share one grid");
        return false;
    }
    if (labels->type != SM_VOXEL_U8 && labels->type != SM_VOXEL_U16) {
        sm_error_set(error, SM_ERR_USAGE, "sm_escc_run: labels must be U8 or U16");
        return false;
    }
    SmEsccResult *res = calloc(1, sizeof *res);
    LevelWork *w = n_levels ? calloc(n_levels, sizeof *w) : NULL;
    SmCanalLevel *lv = n_levels ? calloc(n_levels, sizeof *lv) : NULL;
    if (!res || (n_levels && (!w || !lv))) {
        free(res);
        free(w);
        free(lv);
        sm_error_set(error, SM_ERR_NOMEM, "sm_escc_run: out of memory (%zu levels)", n_levels);
        return false;
    }
    res->levels = lv;
    res->n_levels = n_levels;
    res->worst_grade = SM_ESCC_NONE;

    /* --- prepare: tissue histogram and body centroids (per-thread sums over slices, then
     * added up: counts and sums of voxel indices are integers, exact in double, so the
     * result does not depend on the thread count) --- */
    const int nth0 = threads > 0 ? threads : sm_omp_threads();
    size_t *hist_t = calloc((size_t)nth0 * 4096, sizeof *hist_t);
    double (*csum_t)[4] = calloc((size_t)nth0 * 2 * 65536, sizeof *csum_t); /* [label][body?]: x y z n */
    if (!hist_t || !csum_t) {
        free(hist_t);
        free(csum_t);
        sm_escc_destroy(res);
        free(w);
        sm_error_set(error, SM_ERR_NOMEM, "sm_escc_run: out of memory");
        return false;
    }
    const long nk = (long)ct->dims[2];
#pragma omp parallel default(none) shared(ct, labels, subregions, hist_t, csum_t) \
    firstprivate(nk) num_threads(nth0)
    {
        const int t = sm_omp_thread_num();
        size_t *hist = hist_t + (size_t)t * 4096;
        double (*csum)[4] = csum_t + (size_t)t * 2 * 65536;
#pragma omp for schedule(static)
        for (long kk = 0; kk < nk; kk++) {
            const size_t k = (size_t)kk;
            for (size_t j = 0; j < ct->dims[1]; j++)
                for (size_t i = 0; i < ct->dims[0]; i++) {
                    if ((i + j + k) % 3 == 0) {
                        double v = sm_volume_get(ct, i, j, k);
                        long b = (long)floor(v + 0.5) + 1024;
                        if (b >= 0 && b < 4096)
                            hist[b]++;
                    }
                    unsigned lab = (unsigned)sm_volume_get(labels, i, j, k);
                    if (lab == 0 || lab > 65535)
                        continue;
                    unsigned body = sm_volume_get(subregions, i, j, k) == 1.0 ? 1 : 0;
                    double *s = csum[lab * 2 + body];
                    s[0] += (double)i;
                    s[1] += (double)j;
                    s[2] += (double)k;
                    s[3] += 1;
                }
        }
    }
    size_t *hist = hist_t;
    double (*csum)[4] = csum_t;
    for (int t = 1; t < nth0; t++) {
        for (size_t b = 0; b < 4096; b++)
            hist[b] += hist_t[(size_t)t * 4096 + b];
        for (size_t q = 0; q < 2 * 65536; q++)
            for (int c = 0; c < 4; c++)
                csum[q][c] += csum_t[(size_t)t * 2 * 65536 + q][c];
    }
    SmEsccStats *st = &res->stats;
    double fat_hwhm, mus_hwhm;
    hist_mode(hist, -250, -20, &st->fat_hu, &fat_hwhm);
    hist_mode(hist, 15, 110, &st->muscle_hu, &mus_hwhm);
    free(hist);
    /* the fat peak's width is noise (plus fat texture): it sets the smoothing */
    double sigma_vox = fat_hwhm / 1.1774;
    st->smooth_radius_mm = fmin(2.0, fmax(0.8, 0.6 + sigma_vox / 20.0));
    sm_strlist_add(&res->notes, "fat peak %.0f HU (noise ~%.0f HU), soft-tissue peak %.0f HU, "
                                "smoothing radius %.1f mm",
                   st->fat_hu, sigma_vox, st->muscle_hu, st->smooth_radius_mm);

    /* --- per-level geometry (serial) --- */
    for (size_t l = 0; l < n_levels; l++) {
        SmCanalLevel *L = &lv[l];
        LevelWork *W = &w[l];
        L->verse_label = verse_labels[l];
        L->cord_expected = verse_labels[l] >= VERSE_C1 && verse_labels[l] <= VERSE_T11;
        L->grade = SM_ESCC_NONE;
        for (int d = 0; d < 3; d++)
            L->center_lps[d] = L->normal_lps[d] = NAN;
        int lab = verse_labels[l];
        if (lab <= 0 || lab > 65535 || n_canal < 3)
            continue;
        const double *s = csum[lab * 2 + 1][3] >= 50 ? csum[lab * 2 + 1] : csum[lab * 2];
        if (s[3] < 50)
            continue;
        double ijk[3] = {s[0] / s[3], s[1] / s[3], s[2] / s[3]}, body[3];
        sm_volume_index_to_lps(ct, ijk, body);
        /* canal point at the body's height: nearest along the cranio-caudal direction
         * of the canal (the canal lies ~2-4 cm behind the body centre) */
        size_t best = 0;
        double bd = 1e30;
        for (size_t q = 0; q < n_canal; q++) {
            double d[3] = {canal_lps[q][0] - body[0], canal_lps[q][1] - body[1],
                           canal_lps[q][2] - body[2]};
            double dd = vdot(d, d);
            if (dd < bd) {
                bd = dd;
                best = q;
            }
        }
        if (bd > 70.0 * 70.0)
            continue;
        size_t q0 = best, q1 = best;
        while (q0 > 0) {
            double d[3] = {canal_lps[q0 - 1][0] - canal_lps[best][0], canal_lps[q0 - 1][1] - canal_lps[best][1],
                           canal_lps[q0 - 1][2] - canal_lps[best][2]};
            if (vdot(d, d) > 36.0)
                break;
            q0--;
        }
        while (q1 + 1 < n_canal) {
            double d[3] = {canal_lps[q1 + 1][0] - canal_lps[best][0], canal_lps[q1 + 1][1] - canal_lps[best][1],
                           canal_lps[q1 + 1][2] - canal_lps[best][2]};
            if (vdot(d, d) > 36.0)
                break;
            q1++;
        }
        if (q1 == q0)
            continue;
        double ez[3] = {canal_lps[q1][0] - canal_lps[q0][0], canal_lps[q1][1] - canal_lps[q0][1],
                        canal_lps[q1][2] - canal_lps[q0][2]};
        vnorm(ez);
        if (ez[2] < 0)
            for (int d = 0; d < 3; d++)
                ez[d] = -ez[d];
        double ey[3] = {canal_lps[best][0] - body[0], canal_lps[best][1] - body[1],
                        canal_lps[best][2] - body[2]};
        if (s == csum[lab * 2] || vdot(ey, ey) < 4.0) {
            ey[0] = 0;
            ey[1] = 1;
            ey[2] = 0;
        }
        double pz = vdot(ey, ez);
        for (int d = 0; d < 3; d++)
            ey[d] -= pz * ez[d];
        vnorm(ey);
        double ex[3];
        vcross(ey, ez, ex); /* posterior x cranial = patient left */
        vnorm(ex);
        /* the plane at the body's mid-height: move along the canal to the body's level */
        double off[3] = {body[0] - canal_lps[best][0], body[1] - canal_lps[best][1],
                         body[2] - canal_lps[best][2]};
        double t = vdot(off, ez);
        for (int d = 0; d < 3; d++) {
            W->c[d] = canal_lps[best][d] + t * ez[d];
            W->ex[d] = ex[d];
            W->ey[d] = ey[d];
            W->ez[d] = ez[d];
        }
        W->in_view = true;
    }
    free(csum);

    /* --- run: sample and smooth every level's plane (parallel over levels) --- */
    int nth = threads > 0 ? threads : sm_omp_threads();
    (void)nth;
    long nl = (long)n_levels;
    double r_s = st->smooth_radius_mm;
    double r_f = fmin(1.2, fmax(0.8, 0.6 + sigma_vox / 50.0));
    double fat_thr0 = 0.5 * (st->fat_hu + 10.0);
    double dense0 = 25.0;
    /* the wall's partial-volume ring is about half an in-plane voxel wide */
    double vox = fmax(ct->spacing[0], ct->spacing[1]);
    int wall_px = (int)ceil(fmax(0.8, 0.5 * vox) / PX);
    st->min_thickness_mm = fmax(1.5, 1.2 * vox);
    st->min_area_mm2 = fmax(10.0, 3.0 * ct->spacing[0] * ct->spacing[1]);
    /* bone for the CT-derived canal wall: well above any soft tissue, below cancellous bone */
    double bone_thr = fmax(150.0, st->muscle_hu + 100.0);
#pragma omp parallel for default(none) shared(ct, subregions, w, lv, nl, fat_thr0, bone_thr) schedule(dynamic, 1) num_threads(nth)
    for (long l = 0; l < nl; l++)
        level_sample(ct, subregions, bone_thr, fat_thr0, &w[l], lv[l].hu);
    /* the wall expected from the neighbours, eroded rays (serial: reads other levels) */
    for (size_t l = 0; l < n_levels; l++) {
        wall_model(w, n_levels, l, bone_thr, st->muscle_hu);
    }
    for (size_t l = 0; l < n_levels; l++)
        outline_model(w, n_levels, l);
#pragma omp parallel for default(none) shared(ct, subregions, w, lv, nl, r_s, r_f, fat_thr0, dense0, wall_px, bone_thr) schedule(dynamic, 1) num_threads(nth)
    for (long l = 0; l < nl; l++) {
        LevelWork *W = &w[l];
        level_refine(ct, subregions, bone_thr, W, lv[l].hu);
        if (!W->in_view)
            continue;
        sm_canal_plane_interior(W->mask, wall_px, W->inner);
        sm_canal_plane_smooth(W->hu, W->mask, W->inner, r_f, W->sm_fat);
        /* clearly non-fat pixels one pixel away from any fat: the fluid | dense average
         * never sees the fat partial volume */
        for (int b = 0; b < N; b++)
            for (int a = 0; a < N; a++) {
                bool ok = W->inner[b * N + a] != 0;
                for (int db = -1; ok && db <= 1; db++)
                    for (int da = -1; ok && da <= 1; da++) {
                        int aa = a + da, bb = b + db;
                        if (aa >= 0 && bb >= 0 && aa < N && bb < N && W->mask[bb * N + aa] &&
                            W->sm_fat[bb * N + aa] < fat_thr0)
                            ok = false;
                    }
                W->nonfat[b * N + a] = ok;
            }
        sm_canal_plane_smooth(W->hu, W->mask, W->nonfat, r_s, W->sm_dense);
        /* a first pass with generic thresholds gives the CSF rim and the sac centre */
        sm_canal_plane_measure(W->sm_fat, W->sm_dense, W->mask, W->nonfat, fat_thr0, dense0, 10.0,
                               lv[l].classes, &W->pl);
    }

    /* --- tissue values of this scan's canal (serial) --- */
    double *rim = malloc((n_levels + 1) * sizeof *rim);
    double *cen = malloc((n_levels + 1) * sizeof *cen);
    double *sd = malloc((n_levels + 1) * sizeof *sd);
    if (!rim || !cen || !sd) {
        free(rim);
        free(cen);
        free(sd);
        free(w);
        sm_escc_destroy(res);
        sm_error_set(error, SM_ERR_NOMEM, "sm_escc_run: out of memory");
        return false;
    }
    size_t nm = 0;
    for (size_t l = 0; l < n_levels; l++)
        if (w[l].in_view && w[l].pl.ok && !isnan(w[l].pl.rim_hu) && !isnan(w[l].pl.centre_hu)) {
            rim[nm] = w[l].pl.rim_hu;
            sd[nm] = w[l].pl.rim_sd;
            cen[nm] = w[l].pl.centre_hu - w[l].pl.rim_hu;
            nm++;
        }
    st->csf_hu = nm ? sm_median_inplace(rim, nm) : 10.0;
    /* noise left after smoothing: the fat-peak noise over the independent voxels averaged
     * (disc of radius r_s in plane, a 3 mm slab along the canal) */
    {
        double n_plane = M_PI * r_s * r_s / (ct->spacing[0] * ct->spacing[1]);
        double n_slab = fmax(1.0, 3.0 / fmax(ct->spacing[2], 1.0));
        st->noise_sigma_hu = sigma_vox / sqrt(fmax(1.0, n_plane * n_slab));
    }
    /* cord contrast: the upper quartile of centre-minus-rim over the levels */
    double cord_d = 0;
    if (nm) {
        qsort(cen, nm, sizeof *cen, sm_cmp_double);
        cord_d = cen[(3 * nm) / 4];
    }
    bool any_cord = cord_d >= 10.0;
    st->cord_hu = any_cord ? st->csf_hu + cord_d : NAN;
    st->fat_threshold_hu = 0.5 * (st->fat_hu + st->csf_hu);
    double dd = any_cord ? fmax(0.5 * cord_d, 2.0 * st->noise_sigma_hu)
                         : fmax(18.0, 2.5 * st->noise_sigma_hu);
    st->dense_threshold_hu = st->csf_hu + fmin(dd, 30.0);
    sm_strlist_add(&res->notes, "canal: CSF %.0f HU, cord %+.0f HU, smoothed noise %.1f HU; "
                                "thresholds fat|fluid %.0f HU, fluid|dense %.0f HU",
                   st->csf_hu, cord_d, st->noise_sigma_hu, st->fat_threshold_hu,
                   st->dense_threshold_hu);
    free(rim);
    free(cen);
    free(sd);

    /* --- final measurement with the scan's thresholds (parallel) --- */
    double fthr = st->fat_threshold_hu, dthr = st->dense_threshold_hu, csfv = st->csf_hu;
#pragma omp parallel for default(none) shared(w, lv, nl, fthr, dthr, csfv) schedule(dynamic, 1) num_threads(nth)
    for (long l = 0; l < nl; l++)
        if (w[l].in_view)
            sm_canal_plane_measure(w[l].sm_fat, w[l].sm_dense, w[l].mask, w[l].nonfat, fthr, dthr, csfv,
                                   lv[l].classes, &w[l].pl);

    /* --- finish (serial): references without the suspect levels, then grades --- */
    bool *suspect = calloc(n_levels + 1, sizeof *suspect);
    if (!suspect) {
        free(w);
        sm_escc_destroy(res);
        sm_error_set(error, SM_ERR_NOMEM, "sm_escc_run: out of memory");
        return false;
    }
    for (size_t l = 0; l < n_levels; l++)
        if (w[l].in_view && w[l].pl.ok) {
            Ref r0;
            build_ref(w, n_levels, l, NULL, &r0);
            suspect[l] = tumour_suspect(&w[l], &r0);
        }
    /* cord presence per level: centre denser than the rim, down to the conus */
    bool *cordl = calloc(n_levels + 1, sizeof *cordl);
    if (!cordl) {
        free(suspect);
        free(w);
        sm_escc_destroy(res);
        sm_error_set(error, SM_ERR_NOMEM, "sm_escc_run: out of memory");
        return false;
    }
    long last_cord = -1;
    double cthr = fmax(8.0, 0.4 * cord_d);
    for (size_t l = 0; l < n_levels; l++) {
        if (!w[l].in_view || !w[l].pl.ok || !any_cord)
            continue;
        bool is_cord;
        if (!suspect[l]) {
            is_cord = !isnan(w[l].pl.centre_hu) && !isnan(w[l].pl.rim_hu) &&
                      w[l].pl.centre_hu - w[l].pl.rim_hu >= cthr;
        } else {
            /* epidural tissue can fake or hide a cord: interpolate the nearest normal
             * levels above and below */
            double cn[2] = {NAN, NAN}; /* above, below */
            for (int side = 0; side < 2; side++) {
                long dir = side ? 1 : -1;
                for (long q = (long)l + dir; q >= 0 && q < (long)n_levels; q += dir)
                    if (w[q].in_view && w[q].pl.ok && !suspect[q] && !isnan(w[q].pl.centre_hu) &&
                        !isnan(w[q].pl.rim_hu)) {
                        cn[side] = w[q].pl.centre_hu - w[q].pl.rim_hu;
                        break;
                    }
            }
            /* a cord above and below (or nothing below): with a cord above and none below
             * the conus lies between, and the sac is graded (the sac at cauda levels near the
             * conus shows a few HU of centre - rim contrast without a cord) */
            is_cord = (isnan(cn[0]) || cn[0] >= cthr) && (isnan(cn[1]) || cn[1] >= cthr) &&
                      !(isnan(cn[0]) && isnan(cn[1]));
        }
        /* the cord runs from the top of the scan down to the conus */
        if (is_cord)
            last_cord = (long)l;
    }
    for (size_t l = 0; l < n_levels; l++)
        cordl[l] = any_cord && (long)l <= last_cord;

    for (size_t l = 0; l < n_levels; l++) {
        SmCanalLevel *L = &lv[l];
        L->in_view = w[l].in_view && w[l].pl.ok;
        if (!L->in_view) {
            L->canal_area_mm2 = L->sac_area_mm2 = L->csf_area_mm2 = L->cord_area_mm2 = NAN;
            L->fat_area_mm2 = L->tumour_area_mm2 = L->tumour_thickness_mm = NAN;
            L->ref_canal_area_mm2 = L->ref_sac_area_mm2 = L->ref_csf_area_mm2 = NAN;
            L->ref_cord_area_mm2 = L->canal_ratio = L->sac_ratio = L->csf_ratio = NAN;
            L->sac_diameter_ratio = L->cord_gap_mm = NAN;
            L->confidence = 0;
            sm_strlist_add(&L->reasons, w[l].fov_cut
                                            ? "the measurement plane leaves the field of view "
                                              "within 16 mm of the canal: not graded"
                                            : "canal not in view at this level");
            memset(L->classes, 0, sizeof L->classes);
            continue;
        }
        for (int d = 0; d < 3; d++) {
            L->center_lps[d] = w[l].c[d];
            L->normal_lps[d] = w[l].ez[d];
            L->axis_left_lps[d] = w[l].ex[d];
            L->axis_posterior_lps[d] = w[l].ey[d];
        }
        Ref ref;
        build_ref(w, n_levels, l, suspect, &ref);
        if (!ref.ok)
            build_ref(w, n_levels, l, NULL, &ref);
        grade_level(&w[l], &ref, cordl[l], st, lesion_near_canal != NULL,
                    lesion_near_canal ? lesion_near_canal[l] : false, w[l].erosion_deg, L);
        if (L->grade != SM_ESCC_NONE &&
            (res->worst_grade == SM_ESCC_NONE || L->grade > res->worst_grade)) {
            res->worst_grade = L->grade;
            res->worst_verse_label = L->verse_label;
            res->worst_confidence = L->confidence;
        }
    }
    free(suspect);
    free(cordl);
    free(w);
    *out = res;
    return true;
}

/* ------------------------------------------------------------------ QC */

bool sm_escc_qc_axial(SmError **error, const SmEsccResult *res, size_t index, int scale,
                      uint8_t **rgb, size_t *w, size_t *h)
{
    if (!res || index >= res->n_levels || !rgb || !w || !h || scale < 1 || scale > 16) {
        sm_error_set(error, SM_ERR_USAGE, "sm_escc_qc_axial: bad arguments");
        return false;
    }
    const SmCanalLevel *L = &res->levels[index];
    size_t W = (size_t)N * (size_t)scale;
    uint8_t *img = malloc(W * W * 3);
    if (!img) {
        sm_error_set(error, SM_ERR_NOMEM, "sm_escc_qc_axial: out of memory");
        return false;
    }
    static const uint8_t col[5][3] = {{0, 0, 0}, {255, 220, 0}, {0, 220, 255}, {0, 230, 0}, {255, 40, 40}};
    for (size_t y = 0; y < W; y++)
        for (size_t x = 0; x < W; x++) {
            /* image row 0 = anterior (plane b = 0 is the anterior end: b grows posterior) */
            int a = (int)(x / (size_t)scale), b = (int)(y / (size_t)scale);
            size_t i = (size_t)b * N + (size_t)a;
            double g = (L->hu[i] - (40.0 - 200.0)) / 400.0 * 255.0;
            uint8_t v = (uint8_t)(g < 0 ? 0 : (g > 255 ? 255 : g));
            uint8_t *o = img + (y * W + x) * 3;
            o[0] = o[1] = o[2] = v;
            /* outlines: a pixel whose class region differs from a 4-neighbour's */
            uint8_t c = L->classes[i];
            int groups[4] = {0};
            /* canal: in vs out; sac: CSF|cord vs other; cord; tumour */
            int nb[4][2] = {{a - 1, b}, {a + 1, b}, {a, b - 1}, {a, b + 1}};
            bool edge_px = (x % (size_t)scale == 0) || (y % (size_t)scale == 0) ||
                           (x % (size_t)scale == (size_t)scale - 1) ||
                           (y % (size_t)scale == (size_t)scale - 1) || scale == 1;
            if (!edge_px)
                continue;
            for (int q = 0; q < 4; q++) {
                int aa = nb[q][0], bb = nb[q][1];
                uint8_t cn = (aa < 0 || bb < 0 || aa >= N || bb >= N) ? 0 : L->classes[bb * N + aa];
                if ((c != 0) != (cn != 0))
                    groups[0] = 1;
                bool s1 = c == SM_ESCC_CLASS_CSF || c == SM_ESCC_CLASS_CORD;
                bool s2 = cn == SM_ESCC_CLASS_CSF || cn == SM_ESCC_CLASS_CORD;
                if (s1 != s2)
                    groups[1] = 1;
                if ((c == SM_ESCC_CLASS_CORD) != (cn == SM_ESCC_CLASS_CORD))
                    groups[2] = 1;
                if ((c == SM_ESCC_CLASS_TUMOUR) != (cn == SM_ESCC_CLASS_TUMOUR))
                    groups[3] = 1;
            }
            for (int q = 3; q >= 0; q--)
                if (groups[q] && (q != 2 || !L->below_conus)) {
                    memcpy(o, col[q + 1], 3);
                    break;
                }
        }
    *rgb = img;
    *w = W;
    *h = W;
    return true;
}
