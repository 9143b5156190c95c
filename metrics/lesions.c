/* Lytic / blastic lesion quality of each vertebral body, relative to this patient's own
 * cancellous bone (docs/metrics.md "Reference bone density" and "Lesions"). */
#include "metrics_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Thresholds (HU, mm); every one is documented in docs/metrics.md. */
#define ERODE_MM 2.5          /* cortical shell removed before statistics and detection */
#define SMOOTH_MIN_SIGMA_MM 1.0 /* Gaussian inside the eroded core against noise and texture, */
#define SMOOTH_VOXEL_FACTOR (2.0 / 3.0) /* ... or 2/3 of the coarser in-plane spacing */
#define K_SPREAD 3.0          /* voxel threshold = expected +/- K * spread */
#define LYTIC_MIN_DROP_HU 40.0
#define LYTIC_MAX_HU 100.0    /* lytic tissue is soft-tissue density */
#define GAS_HU (-200.0)       /* gas never counts as lytic */
#define FAT_MEAN_HU (-30.0)   /* a low region with a fat mean is a haemangioma */
#define BLASTIC_MIN_RISE_HU 100.0
#define BLASTIC_MIN_HU 350.0
#define BONE_ISLAND_HU 885.0  /* Ulano 2016: dense mean >= 885 HU is an enostosis */
#define MARGINAL_RIM_MM 3.0   /* a dense region whose part deeper than this inside the core is
                               * below the calling size (it hugs the rim/endplates) ... */
#define MARGINAL_MAX_HU 550.0 /* ... and that is fainter than this ... */
#define MARGINAL_MAX_BODY_FRACTION 0.10 /* ... or smaller than this share of the body is
                                         * degenerative sclerosis / osteophyte */
#define MIN_LESION_MM3 150.0  /* smallest connected region called a lesion ... */
#define MIN_LESION_BODY_FRACTION 0.025 /* ... and at least this share of its body */
#define MIXED_MIN_FRACTION 0.02 /* each kind must cover this much of the body for "mixed" */
#define MIXED_GAP_MM 3.0      /* transition between lytic and blastic parts of one lesion */
#define SHELL_REACH_MM 5.0    /* lytic shell voxels: path length from a lytic core voxel */
#define SHELL_BLASTIC_BAND_HU 100.0 /* blastic shell voxel: within this of the blastic mean */
#define FINE_VOXEL_MM 1.25    /* in-plane spacing up to which the outer layer is weighted */
#define CORTEX_MM 1.0         /* imaged cortical shell: the body's outermost layer is cortex to
                               * this depth (blastic tissue there cannot be told from it) */
#define MIN_CORE_MM3 1000.0   /* bodies with less eroded core do not enter the reference */
#define REF_OUTLIER_MIN_HU 40.0
#define REF_MAX_HU 450.0      /* a level core median above this is not cancellous bone */
#define REF_REFIT_INVOLVEMENT 0.10 /* levels above this involvement are dropped and refitted */
#define POP_KDE_HU 10.0      /* density populations of a level: Gaussian kernel of its histogram */
#define POP_MIN_SEP_HU 40.0   /* two populations' modes at least this far apart (LYTIC_MIN_DROP_HU) */
#define POP_VALLEY_RATIO 0.5  /* ... with a valley at most this share of the lower peak ... */
#define POP_MIN_FRACTION 0.10 /* ... and each at least this share of the core */
#define POP_MAX 8
#define HIST_LO (-1024)
#define HIST_N 4096

typedef struct Box {
    size_t i0, j0, k0, ni, nj, nk, n;
} Box;

/* One density population of a level's core: a mode of its smoothed-HU histogram and the
 * core voxels whose smoothed HU lies in [lo, hi] (histogram bins). */
typedef struct Pop {
    long lo, hi, mode;
    double mass;         /* share of the core */
    double median_hu;    /* median raw HU of its voxels */
    double mad_smoothed; /* MAD of their smoothed HU */
} Pop;

typedef struct Level {
    Box box;
    float *hu;       /* raw HU in the box */
    float *sm;       /* smoothed HU inside the core, NAN elsewhere */
    uint8_t *body;   /* 1 body, 0 else */
    uint8_t *pl;     /* 1 this vertebra's pedicle/facet (posterolateral) voxels, 0 else */
    uint8_t *core;   /* eroded body */
    uint8_t *lesion; /* 1 lytic, 2 blastic in the core */
    size_t body_n, core_n;
    double median_hu, mad_smoothed;
    Pop pop[POP_MAX];    /* density populations, ascending HU */
    int n_pop;
    int ref_pop;         /* the population taken as this level's normal bone */
    bool in_reference;
} Level;

typedef struct Offset {
    ptrdiff_t di, dj, dk;
} Offset;

static double hu_at(const SmVolume *ct, size_t idx)
{
    return ct->type == SM_VOXEL_I16 ? (double)((const int16_t *)ct->data)[idx]
                                    : (double)((const float *)ct->data)[idx];
}

static unsigned label_at(const SmVolume *lab, size_t idx)
{
    return lab->type == SM_VOXEL_U8 ? ((const uint8_t *)lab->data)[idx]
                                    : ((const uint16_t *)lab->data)[idx];
}

/* Radius in voxels along each axis for a distance in mm, at least one voxel so that thick
 * slices still lose their partial-volume cortex. */
static void radii_for(const SmVolume *v, double mm, int r[3])
{
    for (int a = 0; a < 3; a++) {
        double q = mm / v->spacing[a];
        r[a] = (int)floor(q + 0.5);
        if (r[a] < 1)
            r[a] = 1;
    }
}

/* The ellipsoidal structuring element with those radii (centre excluded). */
static Offset *ellipsoid(const int r[3], size_t *n_out)
{
    size_t cap = (size_t)(2 * r[0] + 1) * (size_t)(2 * r[1] + 1) * (size_t)(2 * r[2] + 1);
    Offset *o = malloc(cap * sizeof *o);
    if (!o)
        return NULL;
    size_t n = 0;
    for (int dk = -r[2]; dk <= r[2]; dk++)
        for (int dj = -r[1]; dj <= r[1]; dj++)
            for (int di = -r[0]; di <= r[0]; di++) {
                double q = (double)di * di / ((double)r[0] * r[0]) +
                           (double)dj * dj / ((double)r[1] * r[1]) +
                           (double)dk * dk / ((double)r[2] * r[2]);
                if (q <= 1.0 + 1e-9 && (di || dj || dk))
                    o[n++] = (Offset){di, dj, dk};
            }
    *n_out = n;
    return o;
}

/* The 1-HU histogram bin of value v (clamped to the histogram's range). */
static long hist_bin(double v)
{
    long b = lround(v) - HIST_LO;
    return b < 0 ? 0 : b >= HIST_N ? HIST_N - 1 : b;
}

/* Median and MAD of values under mask from a 1-HU histogram (exact for integer HU). */
static void hist_median_mad(const float *v, const uint8_t *mask, size_t n, double *med, double *mad)
{
    size_t *h = calloc(HIST_N, sizeof *h);
    *med = *mad = NAN;
    if (!h)
        return;
    size_t cnt = 0;
    for (size_t x = 0; x < n; x++) {
        if (!mask[x] || isnan(v[x]))
            continue;
        long b = hist_bin(v[x]);
        h[b]++;
        cnt++;
    }
    if (cnt == 0) {
        free(h);
        return;
    }
    size_t half = (cnt + 1) / 2, acc = 0;
    long mb = 0;
    for (long b = 0; b < HIST_N; b++) {
        acc += h[b];
        if (acc >= half) {
            mb = b;
            break;
        }
    }
    acc = h[mb];
    long d = 0;
    while (acc < half && d < HIST_N) {
        d++;
        if (mb + d < HIST_N)
            acc += h[mb + d];
        if (mb - d >= 0)
            acc += h[mb - d];
    }
    *med = (double)(mb + HIST_LO);
    *mad = (double)d;
    free(h);
}

/* Bounding boxes of the body sub-region of every level, padded by pad voxels. */
static bool find_boxes(SmError **error, const SmMetricsInput *in, Level *lv, const int pad[3],
                       int nthreads)
{
    const SmVolume *lab = in->labels, *sub = in->subregions;
    size_t nx = lab->dims[0], ny = lab->dims[1], nz = lab->dims[2], nl = in->n_levels;
    int *lut = malloc(65536 * sizeof *lut);
    size_t *ext = NULL, n_ext = 0;
    if (!lut || !sm_size_mul(nz * 4, nl, &n_ext) || !(ext = malloc((n_ext ? n_ext : 1) * sizeof *ext))) {
        free(lut);
        sm_error_set(error, SM_ERR_NOMEM, "lesions: out of memory for level boxes");
        return false;
    }
    for (int x = 0; x < 65536; x++)
        lut[x] = -1;
    for (size_t l = 0; l < nl; l++)
        lut[in->verse_labels[l]] = (int)l;
    const uint8_t *sd = sub->data;
    (void)nthreads;
#pragma omp parallel for default(none) shared(lab, sd, lut, ext, nx, ny, nz, nl) num_threads(nthreads) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        size_t *e = ext + k * nl * 4;
        for (size_t l = 0; l < nl; l++) {
            e[4 * l] = SIZE_MAX;
            e[4 * l + 1] = 0;
            e[4 * l + 2] = SIZE_MAX;
            e[4 * l + 3] = 0;
        }
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                size_t idx = i + nx * (j + ny * k);
                if (sd[idx] != SM_MET_SUB_BODY)
                    continue;
                int l = lut[label_at(lab, idx)];
                if (l < 0)
                    continue;
                size_t *q = e + 4 * (size_t)l;
                if (i < q[0]) q[0] = i;
                if (i > q[1]) q[1] = i;
                if (j < q[2]) q[2] = j;
                if (j > q[3]) q[3] = j;
            }
    }
    for (size_t l = 0; l < nl; l++) {
        size_t b[6] = {SIZE_MAX, 0, SIZE_MAX, 0, SIZE_MAX, 0};
        for (size_t k = 0; k < nz; k++) {
            const size_t *q = ext + (k * nl + l) * 4;
            if (q[0] == SIZE_MAX)
                continue;
            if (q[0] < b[0]) b[0] = q[0];
            if (q[1] > b[1]) b[1] = q[1];
            if (q[2] < b[2]) b[2] = q[2];
            if (q[3] > b[3]) b[3] = q[3];
            if (k < b[4]) b[4] = k;
            if (k > b[5]) b[5] = k;
        }
        Box *bx = &lv[l].box;
        memset(bx, 0, sizeof *bx);
        if (b[0] == SIZE_MAX)
            continue;
        size_t lim[3] = {nx, ny, nz};
        size_t lo[3], hi[3];
        for (int a = 0; a < 3; a++) {
            lo[a] = b[2 * a] >= (size_t)pad[a] ? b[2 * a] - (size_t)pad[a] : 0;
            hi[a] = b[2 * a + 1] + (size_t)pad[a] < lim[a] ? b[2 * a + 1] + (size_t)pad[a] : lim[a] - 1;
        }
        bx->i0 = lo[0];
        bx->j0 = lo[1];
        bx->k0 = lo[2];
        bx->ni = hi[0] - lo[0] + 1;
        bx->nj = hi[1] - lo[1] + 1;
        bx->nk = hi[2] - lo[2] + 1;
        bx->n = bx->ni * bx->nj * bx->nk;
    }
    free(ext);
    free(lut);
    return true;
}

static void level_free(Level *l)
{
    free(l->hu);
    free(l->sm);
    free(l->body);
    free(l->pl);
    free(l->core);
    free(l->lesion);
}

/* One separable Gaussian pass along axis a of num/den (in place through tmp). */
static void gauss_pass(float *num, float *den, float *tn, float *td, const Box *b, int a,
                       const double *w, int r, int nthreads)
{
    size_t ni = b->ni, nj = b->nj, nk = b->nk;
    size_t stride = a == 0 ? 1 : a == 1 ? ni : ni * nj;
    size_t len = a == 0 ? ni : a == 1 ? nj : nk;
    (void)nthreads;
#pragma omp parallel for default(none) shared(num, den, tn, td, w) firstprivate(ni, nj, nk, stride, len, r, a) num_threads(nthreads) schedule(static)
    for (size_t k = 0; k < nk; k++)
        for (size_t j = 0; j < nj; j++)
            for (size_t i = 0; i < ni; i++) {
                size_t idx = i + ni * (j + nj * k);
                size_t pos = a == 0 ? i : a == 1 ? j : k;
                double sn = 0.0, sd = 0.0;
                for (int d = -r; d <= r; d++) {
                    if ((ptrdiff_t)pos + d < 0 || (size_t)((ptrdiff_t)pos + d) >= len)
                        continue;
                    size_t q = (size_t)((ptrdiff_t)idx + (ptrdiff_t)d * (ptrdiff_t)stride);
                    sn += w[d + r] * num[q];
                    sd += w[d + r] * den[q];
                }
                tn[idx] = (float)sn;
                td[idx] = (float)sd;
            }
    memcpy(num, tn, b->n * sizeof *num);
    memcpy(den, td, b->n * sizeof *den);
}

/* The density populations of a level's core. A focal lesion is a population of its own
 * inside the level, and the level's remaining normal bone still sits at the patient's
 * level; an osteoporotic body is one population at low density. The histogram of the
 * smoothed core is smoothed by a Gaussian of POP_KDE_HU; each local maximum starts a
 * population, bounded by the minima between maxima. Adjacent populations are merged, the
 * least separated pair first (highest valley / lower peak), until every adjacent pair has
 * modes >= POP_MIN_SEP_HU apart, a valley <= POP_VALLEY_RATIO of the lower peak, and each
 * side >= POP_MIN_FRACTION of the core. A unimodal core is one population of all its voxels
 * (median and spread as before). */
static bool level_populations(Level *L)
{
    L->n_pop = 0;
    if (L->core_n == 0)
        return true;
    size_t n = L->box.n;
    size_t *h = calloc(HIST_N, sizeof *h);
    double *f = calloc(HIST_N, sizeof *f);
    uint8_t *mask = malloc(n ? n : 1);
    if (!h || !f || !mask) {
        free(h);
        free(f);
        free(mask);
        return false;
    }
    long bmin = HIST_N, bmax = -1;
    size_t total = 0;
    for (size_t x = 0; x < n; x++) {
        if (!L->core[x] || isnan(L->sm[x]))
            continue;
        long b = hist_bin(L->sm[x]);
        h[b]++;
        total++;
        if (b < bmin)
            bmin = b;
        if (b > bmax)
            bmax = b;
    }
    if (total == 0) {
        free(h);
        free(f);
        free(mask);
        return true;
    }
    int kr = (int)ceil(4.0 * POP_KDE_HU);
    double w[256];
    for (int d = -kr; d <= kr; d++)
        w[d + kr] = exp(-0.5 * (d / POP_KDE_HU) * (d / POP_KDE_HU));
    long flo = bmin - kr > 0 ? bmin - kr : 0, fhi = bmax + kr < HIST_N - 1 ? bmax + kr : HIST_N - 1;
    for (long b = bmin; b <= bmax; b++) {
        if (!h[b])
            continue;
        for (int d = -kr; d <= kr; d++)
            if (b + d >= 0 && b + d < HIST_N)
                f[b + d] += w[d + kr] * (double)h[b];
    }
    /* local maxima (a plateau counts once, at its first bin) */
    long mx[64];
    int nm = 0;
    for (long b = flo; b <= fhi && nm < 64; b++) {
        double left = b > flo ? f[b - 1] : 0.0, right = b < fhi ? f[b + 1] : 0.0;
        if (f[b] > left && f[b] >= right)
            mx[nm++] = b;
    }
    /* populations between the minima of consecutive maxima */
    typedef struct Seg {
        long lo, hi, mode;
        double peak;
        size_t cnt;
    } Seg;
    Seg sg[64];
    double valley[64];
    long lo = flo;
    for (int q = 0; q < nm; q++) {
        long hi = fhi;
        if (q + 1 < nm) {
            hi = mx[q];
            for (long b = mx[q]; b <= mx[q + 1]; b++)
                if (f[b] < f[hi])
                    hi = b;
            valley[q] = f[hi];
        }
        sg[q] = (Seg){lo, hi, mx[q], f[mx[q]], 0};
        for (long b = lo; b <= hi; b++)
            sg[q].cnt += h[b];
        lo = hi + 1;
    }
    if (nm == 0) {
        sg[0] = (Seg){flo, fhi, bmin, f[bmin], total};
        nm = 1;
    }
    double minc = POP_MIN_FRACTION * (double)total;
    for (;;) {
        int best = -1;
        double best_ratio = -1.0;
        for (int q = 0; q + 1 < nm; q++) {
            double ratio = valley[q] / fmin(sg[q].peak, sg[q + 1].peak);
            bool fail = (double)(sg[q + 1].mode - sg[q].mode) < POP_MIN_SEP_HU ||
                        ratio > POP_VALLEY_RATIO || (double)sg[q].cnt < minc ||
                        (double)sg[q + 1].cnt < minc;
            if (fail && ratio > best_ratio) {
                best_ratio = ratio;
                best = q;
            }
        }
        if (best < 0)
            break;
        Seg *a = &sg[best], *c = &sg[best + 1];
        if (c->peak > a->peak) {
            a->peak = c->peak;
            a->mode = c->mode;
        }
        a->hi = c->hi;
        a->cnt += c->cnt;
        /* drop population best + 1 and the valley between the two */
        for (int q = best + 1; q + 1 < nm; q++)
            sg[q] = sg[q + 1];
        for (int q = best; q + 2 < nm; q++)
            valley[q] = valley[q + 1];
        nm--;
    }
    if (nm > POP_MAX)
        nm = POP_MAX; /* cannot happen: each population holds >= 10 % of the core */
    for (int q = 0; q < nm; q++) {
        Pop *p = &L->pop[q];
        p->lo = q == 0 ? 0 : sg[q].lo;
        p->hi = q + 1 == nm ? HIST_N - 1 : sg[q].hi;
        p->mode = sg[q].mode + HIST_LO;
        p->mass = (double)sg[q].cnt / (double)total;
        if (nm == 1) {
            p->median_hu = L->median_hu;
            p->mad_smoothed = L->mad_smoothed;
            continue;
        }
        for (size_t x = 0; x < n; x++) {
            mask[x] = 0;
            if (!L->core[x] || isnan(L->sm[x]))
                continue;
            long b = hist_bin(L->sm[x]);
            mask[x] = b >= p->lo && b <= p->hi;
        }
        double med_s;
        hist_median_mad(L->hu, mask, n, &p->median_hu, &med_s);
        hist_median_mad(L->sm, mask, n, &med_s, &p->mad_smoothed);
    }
    L->n_pop = nm;
    L->ref_pop = 0;
    free(h);
    free(f);
    free(mask);
    return true;
}

/* Extracts the box, erodes the body and smooths inside the core. */
static bool level_prepare(SmError **error, const SmMetricsInput *in, Level *L, int verse, double sigma,
                          const Offset *se, size_t n_se, int nthreads)
{
    const Box *b = &L->box;
    if (b->n == 0)
        return true;
    L->hu = malloc(b->n * sizeof *L->hu);
    L->sm = malloc(b->n * sizeof *L->sm);
    L->body = calloc(b->n, 1);
    L->pl = calloc(b->n, 1);
    L->core = calloc(b->n, 1);
    L->lesion = calloc(b->n, 1);
    float *tn = malloc(b->n * sizeof *tn), *td = malloc(b->n * sizeof *td);
    float *den = malloc(b->n * sizeof *den);
    if (!L->hu || !L->sm || !L->body || !L->pl || !L->core || !L->lesion || !tn || !td || !den) {
        free(tn);
        free(td);
        free(den);
        sm_error_set(error, SM_ERR_NOMEM, "lesions: out of memory for level %d", verse);
        return false;
    }
    const SmVolume *ct = in->ct, *lab = in->labels;
    const uint8_t *sd = in->subregions->data;
    size_t nx = ct->dims[0], ny = ct->dims[1];
    size_t ni = b->ni, nj = b->nj, nk = b->nk, i0 = b->i0, j0 = b->j0, k0 = b->k0;
    float *hu = L->hu, *sm = L->sm;
    uint8_t *body = L->body, *core = L->core, *pl = L->pl;
    unsigned want = (unsigned)verse;
    size_t body_n = 0, core_n = 0;
    (void)nthreads;
#pragma omp parallel for default(none) shared(ct, lab, sd, hu, body, pl) firstprivate(nx, ny, ni, nj, nk, i0, j0, k0, want) reduction(+ : body_n) num_threads(nthreads) schedule(static)
    for (size_t k = 0; k < nk; k++)
        for (size_t j = 0; j < nj; j++)
            for (size_t i = 0; i < ni; i++) {
                size_t g = (i0 + i) + nx * ((j0 + j) + ny * (k0 + k));
                size_t x = i + ni * (j + nj * k);
                hu[x] = (float)hu_at(ct, g);
                body[x] = sd[g] == SM_MET_SUB_BODY && label_at(lab, g) == want;
                pl[x] = (sd[g] == SM_MET_SUB_PL_LEFT || sd[g] == SM_MET_SUB_PL_RIGHT) &&
                        label_at(lab, g) == want;
                body_n += body[x];
            }
#pragma omp parallel for default(none) shared(body, core, se) firstprivate(ni, nj, nk, n_se) reduction(+ : core_n) num_threads(nthreads) schedule(static)
    for (size_t k = 0; k < nk; k++)
        for (size_t j = 0; j < nj; j++)
            for (size_t i = 0; i < ni; i++) {
                size_t x = i + ni * (j + nj * k);
                if (!body[x])
                    continue;
                bool keep = true;
                for (size_t s = 0; s < n_se && keep; s++) {
                    ptrdiff_t a = (ptrdiff_t)i + se[s].di, bb = (ptrdiff_t)j + se[s].dj,
                              c = (ptrdiff_t)k + se[s].dk;
                    if (a < 0 || bb < 0 || c < 0 || (size_t)a >= ni || (size_t)bb >= nj || (size_t)c >= nk)
                        keep = false;
                    else
                        keep = body[(size_t)a + ni * ((size_t)bb + nj * (size_t)c)] != 0;
                }
                core[x] = keep;
                core_n += keep;
            }
    L->body_n = body_n;
    L->core_n = core_n;
    /* normalised convolution: the cortex and the outside never leak into the core */
    for (size_t x = 0; x < b->n; x++) {
        sm[x] = core[x] ? hu[x] : 0.0f;
        den[x] = core[x] ? 1.0f : 0.0f;
    }
    for (int a = 0; a < 3; a++) {
        double sp = ct->spacing[a];
        int r = (int)ceil(2.5 * sigma / sp);
        double w[64];
        if (r > 31)
            r = 31;
        for (int d = -r; d <= r; d++)
            w[d + r] = exp(-0.5 * (d * sp / sigma) * (d * sp / sigma));
        gauss_pass(sm, den, tn, td, b, a, w, r, nthreads);
    }
    for (size_t x = 0; x < b->n; x++)
        sm[x] = core[x] && den[x] > 0.0f ? sm[x] / den[x] : NAN;
    free(tn);
    free(td);
    free(den);
    double mad_raw;
    hist_median_mad(hu, core, b->n, &L->median_hu, &mad_raw);
    double med_s;
    hist_median_mad(sm, core, b->n, &med_s, &L->mad_smoothed);
    if (!level_populations(L)) {
        sm_error_set(error, SM_ERR_NOMEM, "lesions: out of memory for level %d", verse);
        return false;
    }
    return true;
}

typedef struct Ref {
    double intercept, slope; /* expected HU at level index l = intercept + slope * l */
    double spread;           /* robust SD of smoothed core HU */
} Ref;

/* The patient reference from the per-level medians of levels still marked in_reference. */
static bool fit_reference(const SmMetricsInput *in, const SmSeriesMetrics *m, Level *lv,
                          double voxel_mm3, Ref *ref, SmStrList *method)
{
    size_t nl = in->n_levels, n = 0;
    double *med = malloc((nl ? nl : 1) * sizeof *med);
    double *tmp = malloc((nl * nl + 1) * sizeof *tmp);
    if (!med || !tmp) {
        free(med);
        free(tmp);
        return false;
    }
    for (size_t l = 0; l < nl; l++) {
        bool any = false;
        for (int p = 0; p < lv[l].n_pop; p++)
            any = any || lv[l].pop[p].median_hu <= REF_MAX_HU;
        if (lv[l].in_reference && !any) {
            /* young cancellous bone is ~230 +- 45 HU: a core this dense is cortex and
             * endplates (a mask missing the cancellous bone) or diffuse sclerosis */
            lv[l].in_reference = false;
            sm_strlist_add(method, "%s excluded: core median %.0f HU is above %.0f HU, not "
                                   "cancellous bone", m->v[l].level, lv[l].median_hu, REF_MAX_HU);
        }
        if (!(lv[l].in_reference && (double)lv[l].core_n * voxel_mm3 >= MIN_CORE_MM3))
            lv[l].in_reference = false;
    }
    /* Each level's normal bone: of its density populations (<= REF_MAX_HU), the one nearest
     * the value most levels share. That value is the population median with the most levels
     * holding a population within REF_OUTLIER_MIN_HU of it (ties: the higher, right under
     * diffuse lytic disease; a wrong choice misses lesions but calls none, the lytic
     * threshold being at most LYTIC_MAX_HU and the blastic at least BLASTIC_MIN_HU). A
     * lytic majority of
     * levels still keeps its normal bone at the patient's level; a uniformly osteoporotic
     * spine has one low population per level and is its own reference. */
    double consensus = NAN;
    size_t best_support = 0;
    for (size_t l = 0; l < nl; l++) {
        if (!lv[l].in_reference)
            continue;
        for (int p = 0; p < lv[l].n_pop; p++) {
            double c = lv[l].pop[p].median_hu;
            if (c > REF_MAX_HU)
                continue;
            size_t support = 0;
            for (size_t l2 = 0; l2 < nl; l2++) {
                if (!lv[l2].in_reference)
                    continue;
                for (int p2 = 0; p2 < lv[l2].n_pop; p2++)
                    if (lv[l2].pop[p2].median_hu <= REF_MAX_HU &&
                        fabs(lv[l2].pop[p2].median_hu - c) <= REF_OUTLIER_MIN_HU) {
                        support++;
                        break;
                    }
            }
            if (support > best_support || (support == best_support && c > consensus)) {
                best_support = support;
                consensus = c;
            }
        }
    }
    for (size_t l = 0; l < nl; l++) {
        if (!lv[l].in_reference)
            continue;
        int bp = -1;
        for (int p = 0; p < lv[l].n_pop; p++)
            if (lv[l].pop[p].median_hu <= REF_MAX_HU &&
                (bp < 0 || fabs(lv[l].pop[p].median_hu - consensus) <
                               fabs(lv[l].pop[bp].median_hu - consensus)))
                bp = p;
        lv[l].ref_pop = bp;
        med[n++] = lv[l].pop[bp].median_hu;
        if (lv[l].n_pop > 1)
            sm_strlist_add(method, "%s: core has %d density populations; its normal bone is the "
                                   "one at %.0f HU (%.0f %% of the core; whole-core median %.0f HU)",
                           m->v[l].level, lv[l].n_pop, lv[l].pop[bp].median_hu,
                           100.0 * lv[l].pop[bp].mass, lv[l].median_hu);
    }
    if (n == 0) {
        free(med);
        free(tmp);
        ref->intercept = ref->slope = ref->spread = NAN;
        sm_strlist_add(method, "no vertebral body with >= %.0f mm3 of eroded core with a "
                               "cancellous median (<= %.0f HU): no reference, lesions not "
                               "assessed", MIN_CORE_MM3, REF_MAX_HU);
        return true;
    }
    memcpy(tmp, med, n * sizeof *med);
    double m0 = sm_median_inplace(tmp, n);
    for (size_t q = 0; q < n; q++)
        tmp[q] = fabs(med[q] - m0);
    double lmad = 1.4826 * sm_median_inplace(tmp, n);
    double lim = fmax(3.0 * lmad, REF_OUTLIER_MIN_HU);
    size_t kept = 0;
    for (size_t l = 0; l < nl; l++) {
        if (!lv[l].in_reference)
            continue;
        if (fabs(lv[l].pop[lv[l].ref_pop].median_hu - m0) > lim) {
            lv[l].in_reference = false;
            sm_strlist_add(method, "%s excluded: median %.0f HU is more than %.0f HU from the "
                                   "median of levels (%.0f HU)",
                           m->v[l].level, lv[l].pop[lv[l].ref_pop].median_hu, lim, m0);
        } else {
            kept++;
        }
    }
    /* Theil-Sen trend over level index; a constant when too few levels */
    size_t np = 0;
    double *xs = med; /* reuse: medians of kept levels */
    size_t *ix = malloc((nl ? nl : 1) * sizeof *ix);
    if (!ix) {
        free(med);
        free(tmp);
        return false;
    }
    size_t nk = 0;
    for (size_t l = 0; l < nl; l++)
        if (lv[l].in_reference) {
            ix[nk] = l;
            xs[nk++] = lv[l].pop[lv[l].ref_pop].median_hu;
        }
    if (kept >= 4) {
        for (size_t a = 0; a < nk; a++)
            for (size_t c = a + 1; c < nk; c++)
                tmp[np++] = (xs[c] - xs[a]) / (double)(ix[c] - ix[a]);
        double slope = sm_median_inplace(tmp, np);
        /* cancellous density varies slowly along the spine; a steep fit is noise */
        slope = fmax(-10.0, fmin(10.0, slope));
        for (size_t a = 0; a < nk; a++)
            tmp[a] = xs[a] - slope * (double)ix[a];
        ref->slope = slope;
        ref->intercept = sm_median_inplace(tmp, nk);
        sm_strlist_add(method, "Theil-Sen trend over %zu levels: slope %.1f HU per level "
                               "(clamped to +/-10)", kept, slope);
    } else {
        memcpy(tmp, xs, nk * sizeof *xs);
        ref->slope = 0.0;
        ref->intercept = sm_median_inplace(tmp, nk);
        sm_strlist_add(method, "median of %zu levels' normal-bone medians (too few levels for a "
                               "trend)", kept);
    }
    /* lesions only widen a level's distribution: the narrower half of the reference levels
     * describes normal bone */
    np = 0;
    for (size_t l = 0; l < nl; l++)
        if (lv[l].in_reference)
            tmp[np++] = 1.4826 * lv[l].pop[lv[l].ref_pop].mad_smoothed;
    qsort(tmp, np, sizeof *tmp, sm_cmp_double);
    ref->spread = sm_median_inplace(tmp, (np + 1) / 2);
    free(ix);
    free(med);
    free(tmp);
    return true;
}

typedef struct Comp {
    size_t n, dense_n;
    double sum, dense_sum;
} Comp;

typedef struct CompCtx {
    const Box *b;
    const uint8_t *cand, *core, *body, *pl;
    const float *hu, *sm;
    double min_vox;     /* smallest component called a lesion, voxels */
    double body_n;      /* body voxels of the level */
    double dense_thr;   /* blastic voxel threshold (for the dense mean) */
    double expected;    /* expected HU of this level */
    uint8_t *seen;
    size_t *queue;
    uint8_t *keep;
    uint8_t *reach;       /* scratch for pedicle_reach: visited voxels ... */
    size_t *reach_q;      /* ... and its queue (box size each) */
    const Offset *se;     /* ellipsoid of radius ERODE_MM (the shell's width) */
    size_t n_se;
    const Offset *rim_se; /* ellipsoid of radius MARGINAL_RIM_MM */
    size_t n_rim_se;
    double lytic_thr;     /* lytic voxel threshold */
    int gap_r[3];         /* MIXED_GAP_MM in voxels per axis */
    size_t n_island, n_fat, n_small, n_marginal, n_pedicle, n_shell;
    double sum[3];      /* raw HU of the seeds of kept regions, per class */
    size_t cnt[3];
} CompCtx;

static int neighbours6(const Box *b, size_t x, size_t nb[6])
{
    size_t ni = b->ni, nj = b->nj, nk = b->nk;
    size_t i = x % ni, j = (x / ni) % nj, k = x / (ni * nj);
    int m = 0;
    if (i > 0) nb[m++] = x - 1;
    if (i + 1 < ni) nb[m++] = x + 1;
    if (j > 0) nb[m++] = x - ni;
    if (j + 1 < nj) nb[m++] = x + ni;
    if (k > 0) nb[m++] = x - ni * nj;
    if (k + 1 < nk) nb[m++] = x + ni * nj;
    return m;
}

/* Number of the region's voxels (region[0..n)) deeper than MARGINAL_RIM_MM inside the
 * core, i.e. not near its boundary: the endplates, the cortex, and any gap in the body
 * mask (a disc space the segmentation left inside the body, a hole). */
static size_t deep_count(const CompCtx *cx, const size_t *region, size_t n)
{
    const Box *b = cx->b;
    size_t ni = b->ni, nj = b->nj, nk = b->nk, n_deep = 0;
    for (size_t q = 0; q < n; q++) {
        size_t x = region[q];
        ptrdiff_t i = (ptrdiff_t)(x % ni), j = (ptrdiff_t)((x / ni) % nj), k = (ptrdiff_t)(x / (ni * nj));
        bool deep = true;
        for (size_t s = 0; s < cx->n_rim_se && deep; s++) {
            ptrdiff_t a = i + cx->rim_se[s].di, bb = j + cx->rim_se[s].dj, c = k + cx->rim_se[s].dk;
            deep = a >= 0 && bb >= 0 && c >= 0 && (size_t)a < ni && (size_t)bb < nj && (size_t)c < nk &&
                   cx->core[(size_t)a + ni * ((size_t)bb + nj * (size_t)c)];
        }
        n_deep += deep;
    }
    return n_deep;
}

/* True when one of the region's voxels has a voxel already kept as class cls within
 * MIXED_GAP_MM (box neighbourhood). */
static bool region_near(const CompCtx *cx, const size_t *region, size_t n, uint8_t cls)
{
    const Box *b = cx->b;
    size_t ni = b->ni, nj = b->nj, nk = b->nk;
    const int *r = cx->gap_r;
    for (size_t q = 0; q < n; q++) {
        size_t x = region[q];
        ptrdiff_t i = (ptrdiff_t)(x % ni), j = (ptrdiff_t)((x / ni) % nj), k = (ptrdiff_t)(x / (ni * nj));
        for (int dk = -r[2]; dk <= r[2]; dk++)
            for (int dj = -r[1]; dj <= r[1]; dj++)
                for (int di = -r[0]; di <= r[0]; di++) {
                    ptrdiff_t a = i + di, bb = j + dj, c = k + dk;
                    if (a < 0 || bb < 0 || c < 0 || (size_t)a >= ni || (size_t)bb >= nj || (size_t)c >= nk)
                        continue;
                    if (cx->keep[(size_t)a + ni * ((size_t)bb + nj * (size_t)c)] == cls)
                        return true;
                }
    }
    return false;
}

/* A lytic region below the calling size may be the body end of a lesion that continues
 * through the posterior wall into a pedicle (its bulk outside the body). Follows
 * lytic-looking voxels (raw HU below lim, not gas) 6-connected to the region through the
 * body and this vertebra's posterolateral voxels (within the level's box) and returns how
 * many posterolateral voxels it reaches (an intact cortex stops it), at most `enough`. */
static size_t pedicle_reach(CompCtx *cx, const size_t *region, size_t n, double lim, size_t enough)
{
    const Box *b = cx->b;
    uint8_t *vis = cx->reach;
    size_t *q = cx->reach_q;
    memset(vis, 0, b->n);
    size_t head = 0, tail = 0, n_pl = 0, nb[6];
    for (size_t r = 0; r < n; r++) {
        vis[region[r]] = 1;
        q[tail++] = region[r];
    }
    while (head < tail && n_pl < enough) {
        size_t x = q[head++];
        int m = neighbours6(b, x, nb);
        for (int k = 0; k < m; k++) {
            size_t y = nb[k];
            if (vis[y] || !(cx->body[y] || cx->pl[y]) || !(cx->hu[y] < lim && cx->hu[y] > GAS_HU))
                continue;
            vis[y] = 1;
            q[tail++] = y;
            n_pl += cx->pl[y];
        }
    }
    return n_pl;
}

/* Core voxels of the box within the ellipsoid se around (i, j, k): returns their number;
 * *c1 and *c2 count those whose mark[] is m1 and m2. A shell voxel takes a class held by at
 * least half of them (the fractions, and the shell part of a small blastic region). */
static size_t core_votes(const Box *b, const Offset *se, size_t n_se, ptrdiff_t i, ptrdiff_t j,
                         ptrdiff_t k, const uint8_t *core, const uint8_t *mark, uint8_t m1,
                         uint8_t m2, size_t *c1, size_t *c2)
{
    size_t nc = 0;
    *c1 = *c2 = 0;
    for (size_t s = 0; s < n_se; s++) {
        ptrdiff_t a = i + se[s].di, bb = j + se[s].dj, c = k + se[s].dk;
        if (a < 0 || bb < 0 || c < 0 || (size_t)a >= b->ni || (size_t)bb >= b->nj || (size_t)c >= b->nk)
            continue;
        size_t y = (size_t)a + b->ni * ((size_t)bb + b->nj * (size_t)c);
        if (!core[y])
            continue;
        nc++;
        *c1 += mark[y] == m1;
        *c2 += mark[y] == m2;
    }
    return nc;
}

/* A blastic region below the calling size may be the core part of a lesion whose bulk lies
 * in the shell the erosion removed (in a thin, collapsed body most of the body is shell).
 * Counts the shell voxels the fractions would give the region (see level_classify): at
 * least half of the core voxels within ERODE_MM belong to it and the voxel's raw HU lies
 * within SHELL_BLASTIC_BAND_HU of the region's mean; the body's outermost voxel layer,
 * where blastic tissue cannot be told from cortex, is left out. Stops at `enough`. */
static size_t shell_part(CompCtx *cx, const size_t *region, size_t n, double mean, size_t enough)
{
    const Box *b = cx->b;
    size_t ni = b->ni, nj = b->nj, nk = b->nk, cnt = 0;
    uint8_t *vis = cx->reach;
    memset(vis, 0, b->n);
    for (size_t r = 0; r < n; r++)
        vis[region[r]] = 1;
    for (size_t r = 0; r < n && cnt < enough; r++) {
        size_t x = region[r];
        ptrdiff_t i = (ptrdiff_t)(x % ni), j = (ptrdiff_t)((x / ni) % nj), k = (ptrdiff_t)(x / (ni * nj));
        for (size_t s = 0; s < cx->n_se && cnt < enough; s++) {
            ptrdiff_t a = i + cx->se[s].di, bb = j + cx->se[s].dj, c = k + cx->se[s].dk;
            if (a < 1 || bb < 1 || c < 1 || (size_t)a + 1 >= ni || (size_t)bb + 1 >= nj || (size_t)c + 1 >= nk)
                continue; /* the box edge is the body's outermost layer or outside it */
            size_t y = (size_t)a + ni * ((size_t)bb + nj * (size_t)c);
            if (vis[y] || !cx->body[y] || cx->core[y])
                continue;
            vis[y] = 2;
            if (fabs(cx->hu[y] - mean) > SHELL_BLASTIC_BAND_HU || !cx->body[y - 1] || !cx->body[y + 1] ||
                !cx->body[y - ni] || !cx->body[y + ni] || !cx->body[y - ni * nj] || !cx->body[y + ni * nj])
                continue;
            size_t nr, unused;
            size_t nc = core_votes(b, cx->se, cx->n_se, a, bb, c, cx->core, vis, 1, 1, &nr, &unused);
            cnt += nc > 0 && 2 * nr >= nc;
        }
    }
    return cnt;
}

/* Labels 6-connected regions of candidate class cls (serial flood fill), keeps those that
 * pass the size, density and degenerative-sclerosis tests and extends each kept region to its half-contrast
 * boundary (voxels connected to it whose smoothed HU lies beyond the midpoint between the
 * expected HU and the region's mean), writing cls into keep[]. */
static void components(CompCtx *cx, uint8_t cls)
{
    const Box *b = cx->b;
    const uint8_t *cand = cx->cand;
    const float *hu = cx->hu;
    uint8_t *seen = cx->seen;
    size_t *queue = cx->queue;
    memset(seen, 0, b->n);
    for (size_t s = 0; s < b->n; s++) {
        if (cand[s] != cls || seen[s])
            continue;
        size_t head = 0, tail = 0, nb[6];
        queue[tail++] = s;
        seen[s] = 1;
        Comp c = {0, 0, 0.0, 0.0};
        while (head < tail) {
            size_t x = queue[head++];
            c.n++;
            c.sum += hu[x];
            if (hu[x] > cx->dense_thr) {
                c.dense_n++;
                c.dense_sum += hu[x];
            }
            int m = neighbours6(b, x, nb);
            for (int q = 0; q < m; q++)
                if (cand[nb[q]] == cls && !seen[nb[q]]) {
                    seen[nb[q]] = 1;
                    queue[tail++] = nb[q];
                }
        }
        double mean = c.sum / (double)c.n;
        size_t n_seed = tail;
        /* half-contrast growth from the seeds (seen marks them already). The seeds lie
         * beyond the candidate threshold on smoothed HU, so their tissue is at least that
         * far from normal: a raw mean short of it (a few seeds, e.g. one voxel lifted by a
         * neighbouring lesion's blur, whose raw HU is normal bone) would put the
         * half-contrast level inside normal bone and grow through it. */
        double contrast_mean = cls == 1 ? fmin(mean, cx->lytic_thr) : fmax(mean, cx->dense_thr);
        double mid = 0.5 * (cx->expected + contrast_mean);
        for (size_t q = 0; q < tail; q++)
            cx->keep[queue[q]] = cls;
        head = 0;
        while (head < tail) {
            size_t x = queue[head++];
            int m = neighbours6(b, x, nb);
            for (int q = 0; q < m; q++) {
                size_t y = nb[q];
                if (seen[y] || !cx->core[y] || cx->keep[y] || (cand[y] && cand[y] != cls))
                    continue;
                bool beyond = cls == 1 ? (cx->sm[y] < mid && hu[y] > GAS_HU) : cx->sm[y] > mid;
                if (!beyond)
                    continue;
                seen[y] = 1;
                cx->keep[y] = cls;
                queue[tail++] = y;
            }
        }
        bool ok = (double)tail >= cx->min_vox;
        /* the calling size applies to the lesion: a lytic region that continues through the
         * posterior wall into a pedicle counts that pedicle part too */
        if (!ok && cls == 1 && mean >= FAT_MEAN_HU && (double)tail >= 0.2 * cx->min_vox) {
            size_t need = (size_t)ceil(cx->min_vox) - tail;
            if (pedicle_reach(cx, queue, tail, mid, need) >= need) {
                ok = true;
                cx->n_pedicle++;
            }
        }
        /* ... and a blastic region counts its part in the shell (see shell_part) */
        bool via_shell = false;
        if (!ok && cls == 2 && (double)tail >= 0.2 * cx->min_vox) {
            size_t need = (size_t)ceil(cx->min_vox) - tail;
            ok = via_shell = shell_part(cx, queue, tail, mean, need) >= need;
        }
        if (!ok && (double)tail >= 0.2 * cx->min_vox)
            cx->n_small++;
        if (ok && cls == 1 && mean < FAT_MEAN_HU) {
            ok = false;
            cx->n_fat++;
        }
        if (ok && cls == 2 && c.dense_n > 0 && c.dense_sum / (double)c.dense_n >= BONE_ISLAND_HU) {
            ok = false;
            cx->n_island++;
        }
        /* degenerative sclerosis (subchondral bands along the endplates, marginal sclerosis
         * and osteophytes at the rim) hugs the boundary of the body; the disc space of a
         * narrowed, sclerotic disc may even lie inside the mask. Such a region without a
         * calling-size part away from that boundary is degenerative when it is faint or
         * small; a dense, large one is a blastic lesion (also in a thin, collapsed body). */
        bool faint_or_small = mean < MARGINAL_MAX_HU ||
                              (double)tail < MARGINAL_MAX_BODY_FRACTION * cx->body_n;
        /* a dense region beside a called lytic region is the blastic part of a mixed lesion
         * (a small one in a thin, collapsed body lies wholly within the rim zone): only
         * faintness marks it degenerative (lytic regions are kept before blastic ones) */
        if (ok && cls == 2 && faint_or_small && mean >= MARGINAL_MAX_HU && region_near(cx, queue, tail, 1))
            faint_or_small = false;
        if (ok && cls == 2 && faint_or_small && (double)deep_count(cx, queue, tail) < cx->min_vox) {
            ok = false;
            cx->n_marginal++;
        }
        if (!ok) {
            for (size_t q = 0; q < tail; q++)
                cx->keep[queue[q]] = 0;
        } else {
            cx->sum[cls] += c.sum;
            cx->cnt[cls] += n_seed;
            cx->n_shell += via_shell;
        }
    }
}

/* Classifies one level against the reference; fills the vertebra's lesion fields. */
static bool level_classify(SmError **error, Level *L, SmVertebraMetrics *v, double expected,
                           double spread, const double spacing[3], const Offset *se, size_t n_se,
                           const Offset *rim_se, size_t n_rim_se, int nthreads)
{
    const Box *b = &L->box;
    size_t ni = b->ni, nj = b->nj, nk = b->nk, n = b->n;
    double voxel_mm3 = spacing[0] * spacing[1] * spacing[2];
    double lyt_thr = fmin(expected - fmax(K_SPREAD * spread, LYTIC_MIN_DROP_HU), LYTIC_MAX_HU);
    double bla_thr = fmax(expected + fmax(K_SPREAD * spread, BLASTIC_MIN_RISE_HU), BLASTIC_MIN_HU);
    uint8_t *cand = calloc(n, 1), *seen = malloc(n), *reach = malloc(n);
    size_t *queue = malloc(n * sizeof *queue), *reach_q = malloc(n * sizeof *reach_q);
    if (!cand || !seen || !reach || !queue || !reach_q) {
        free(cand);
        free(seen);
        free(reach);
        free(queue);
        free(reach_q);
        sm_error_set(error, SM_ERR_NOMEM, "lesions: out of memory classifying %s", v->level);
        return false;
    }
    const float *hu = L->hu, *sm = L->sm;
    const uint8_t *core = L->core, *body = L->body;
    uint8_t *les = L->lesion;
    (void)nthreads;
#pragma omp parallel for default(none) shared(hu, sm, core, cand) firstprivate(ni, nj, nk, lyt_thr, bla_thr) num_threads(nthreads) schedule(static)
    for (size_t k = 0; k < nk; k++)
        for (size_t x = k * ni * nj; x < (k + 1) * ni * nj; x++) {
            if (!core[x])
                continue;
            if (sm[x] < lyt_thr && hu[x] > GAS_HU)
                cand[x] = 1;
            else if (sm[x] > bla_thr)
                cand[x] = 2;
        }
    memset(les, 0, n);
    CompCtx cx = {.b = b, .cand = cand, .core = core, .body = body, .pl = L->pl, .hu = hu, .sm = sm,
                  .min_vox = 0.0, .body_n = (double)L->body_n, .dense_thr = bla_thr,
                  .expected = expected, .seen = seen, .queue = queue, .keep = les, .reach = reach, .reach_q = reach_q,
                  .se = se, .n_se = n_se, .rim_se = rim_se, .n_rim_se = n_rim_se, .lytic_thr = lyt_thr, .gap_r = {1, 1, 1}};
    for (int a = 0; a < 3; a++) {
        cx.gap_r[a] = (int)floor(MIXED_GAP_MM / spacing[a] + 0.5);
        if (cx.gap_r[a] < 1)
            cx.gap_r[a] = 1;
    }
    cx.min_vox = fmax(MIN_LESION_MM3, MIN_LESION_BODY_FRACTION * (double)L->body_n * voxel_mm3) / voxel_mm3;
    components(&cx, 1);
    components(&cx, 2);
    size_t n_island = cx.n_island, n_fat = cx.n_fat, n_marginal = cx.n_marginal, n_pedicle = cx.n_pedicle,
           n_shell = cx.n_shell;
    free(queue);
    free(reach);
    free(reach_q);
    if (cx.cnt[1] && cx.cnt[2]) {
        /* mixed: where a lytic and a blastic part meet, the smoothing blends two tissues
         * ~600 HU apart, which moves the half-contrast boundaries (a lytic voxel next to
         * blastic tissue reads normal or even blastic once smoothed) and the blend passes
         * through normal density. Core voxels with both kinds within MIXED_GAP_MM are
         * classed on their raw HU instead: the tissue whose mean is nearer, unless the
         * voxel reads as normal bone (then it keeps what the regions gave it). */
        double ml = cx.sum[1] / (double)cx.cnt[1], mb = cx.sum[2] / (double)cx.cnt[2];
        int rg[3];
        for (int a = 0; a < 3; a++) {
            rg[a] = (int)floor(MIXED_GAP_MM / spacing[a] + 0.5);
            if (rg[a] < 1)
                rg[a] = 1;
        }
        uint8_t *add = cand; /* reuse as the new labels */
        memset(add, 0, n);
        int r0 = rg[0], r1 = rg[1], r2 = rg[2];
        double normal_w = fmax(K_SPREAD * spread, LYTIC_MIN_DROP_HU);
#pragma omp parallel for default(none) shared(hu, core, les, add) firstprivate(ni, nj, nk, r0, r1, r2, ml, mb, expected, normal_w) num_threads(nthreads) schedule(static)
        for (size_t k = 0; k < nk; k++)
            for (size_t j = 0; j < nj; j++)
                for (size_t i = 0; i < ni; i++) {
                    size_t x = i + ni * (j + nj * k);
                    if (!core[x] || fabs(hu[x] - expected) <= normal_w)
                        continue;
                    uint8_t want = hu[x] < 0.5 * (ml + mb) ? (hu[x] > GAS_HU ? 1 : 0) : 2;
                    if (want == 0 || les[x] == want)
                        continue;
                    bool h1 = false, h2 = false;
                    for (int dk = -r2; dk <= r2 && !(h1 && h2); dk++)
                        for (int dj = -r1; dj <= r1 && !(h1 && h2); dj++)
                            for (int di = -r0; di <= r0; di++) {
                                ptrdiff_t a = (ptrdiff_t)i + di, bb = (ptrdiff_t)j + dj, c = (ptrdiff_t)k + dk;
                                if (a < 0 || bb < 0 || c < 0 || (size_t)a >= ni || (size_t)bb >= nj ||
                                    (size_t)c >= nk)
                                    continue;
                                uint8_t q = les[(size_t)a + ni * ((size_t)bb + nj * (size_t)c)];
                                h1 = h1 || q == 1;
                                h2 = h2 || q == 2;
                            }
                    if (h1 && h2)
                        add[x] = want;
                }
        for (size_t x = 0; x < n; x++)
            if (add[x])
                les[x] = add[x];
    }
    free(cand);
    free(seen);
    /* lesion voxels over the whole body: the shell takes the class of lesion core voxels
     * within the erosion radius, so breaching lesions reach the body's boundary */
    v->lytic_mean_hu = cx.cnt[1] ? cx.sum[1] / (double)cx.cnt[1] : NAN;
    v->blastic_mean_hu = cx.cnt[2] ? cx.sum[2] / (double)cx.cnt[2] : NAN;
    /* shell voxels must look like the lesion themselves: lytic below the half-contrast
     * level, blastic within the blastic tissue's band (so intact dense cortex, which a
     * blastic lesion cannot be told from by density, is not counted) */
    double shell_lyt = cx.cnt[1] ? 0.5 * (expected + v->lytic_mean_hu) : -1e9;
    double band_c = cx.cnt[2] ? v->blastic_mean_hu : 1e9, band_w = SHELL_BLASTIC_BAND_HU;
    /* lytic tissue also reaches the shell where the core beneath it is not mostly lytic
     * (at a pedicle base whose pedicle the lesion has replaced, around a breach): shell
     * voxels below the half-contrast level that are 6-connected through such shell voxels
     * to a lytic core voxel, within SHELL_REACH_MM along that path, are lytic too (serial
     * flood fill; the reach keeps a low rim of a loose mask from carrying it round the
     * body) */
    uint8_t *shl = calloc(n, 1);
    size_t *sq = cx.cnt[1] ? malloc(n * sizeof *sq) : NULL;
    float *sd = cx.cnt[1] ? malloc(n * sizeof *sd) : NULL;
    if (!shl || (cx.cnt[1] && (!sq || !sd))) {
        free(shl);
        free(sq);
        free(sd);
        sm_error_set(error, SM_ERR_NOMEM, "lesions: out of memory classifying %s", v->level);
        return false;
    }
    if (sq) {
        size_t tail = 0, head = 0, nb6[6];
        for (size_t x = 0; x < n; x++) {
            if (!body[x] || core[x] || !(hu[x] < shell_lyt && hu[x] > GAS_HU))
                continue;
            int m = neighbours6(b, x, nb6);
            for (int q = 0; q < m; q++)
                if (core[nb6[q]] && les[nb6[q]] == 1) {
                    shl[x] = 1;
                    sd[x] = 0.0f;
                    sq[tail++] = x;
                    break;
                }
        }
        while (head < tail) {
            size_t x = sq[head++];
            int m = neighbours6(b, x, nb6);
            for (int q = 0; q < m; q++) {
                size_t y = nb6[q];
                if (shl[y] || !body[y] || core[y] || !(hu[y] < shell_lyt && hu[y] > GAS_HU))
                    continue;
                size_t dxy = y > x ? y - x : x - y;
                double step = dxy == 1 ? spacing[0] : dxy == ni ? spacing[1] : spacing[2];
                if (sd[x] + step > SHELL_REACH_MM)
                    continue;
                shl[y] = 1;
                sd[y] = (float)(sd[x] + step);
                sq[tail++] = y;
            }
        }
    }
    free(sq);
    free(sd);
    /* the axis along which each outer voxel is exposed with the finest spacing decides
     * how much of it lies beneath the cortex (see below) */
    int ax_order[3] = {0, 1, 2};
    for (int a = 0; a < 3; a++)
        for (int c = a + 1; c < 3; c++)
            if (spacing[ax_order[c]] < spacing[ax_order[a]]) {
                int t = ax_order[a];
                ax_order[a] = ax_order[c];
                ax_order[c] = t;
            }
    int ax0 = ax_order[0], ax1 = ax_order[1];
    size_t lyt_n = 0, bla_n = 0, bla_o0 = 0, bla_o1 = 0, bla_o2 = 0;
#pragma omp parallel for default(none) shared(body, core, les, se, hu, shl) firstprivate(b, ni, nj, nk, n_se, shell_lyt, band_c, band_w, ax0, ax1) reduction(+ : lyt_n, bla_n, bla_o0, bla_o1, bla_o2) num_threads(nthreads) schedule(static)
    for (size_t k = 0; k < nk; k++)
        for (size_t j = 0; j < nj; j++)
            for (size_t i = 0; i < ni; i++) {
                size_t x = i + ni * (j + nj * k);
                if (!body[x])
                    continue;
                bool l1 = false, l2 = false;
                if (core[x]) {
                    l1 = les[x] == 1;
                    l2 = les[x] == 2;
                } else {
                    /* a shell voxel takes a class held by at least half of the core voxels
                     * within the erosion radius */
                    size_t c1, c2;
                    size_t nc = core_votes(b, se, n_se, (ptrdiff_t)i, (ptrdiff_t)j, (ptrdiff_t)k,
                                           core, les, 1, 2, &c1, &c2);
                    l1 = shl[x] || (nc > 0 && 2 * c1 >= nc && hu[x] < shell_lyt && hu[x] > GAS_HU);
                    l2 = !l1 && nc > 0 && 2 * c2 >= nc && fabs(hu[x] - band_c) <= band_w;
                    /* where a mixed lesion's two parts meet beneath the shell, lesion holds at
                     * least half of the core voxels there but neither kind alone: the voxel
                     * takes the kind it looks like (the same tests) */
                    if (!l1 && !l2 && c1 > 0 && c2 > 0 && 2 * (c1 + c2) >= nc) {
                        l1 = hu[x] < shell_lyt && hu[x] > GAS_HU;
                        l2 = !l1 && fabs(hu[x] - band_c) <= band_w;
                    }
                    /* the body's outermost layer: which axes expose it */
                    bool ex[3] = {i == 0 || i + 1 == ni || !body[x - 1] || !body[x + 1],
                                  j == 0 || j + 1 == nj || !body[x - ni] || !body[x + ni],
                                  k == 0 || k + 1 == nk || !body[x - ni * nj] || !body[x + ni * nj]};
                    if (l2 && (ex[0] || ex[1] || ex[2])) {
                        /* counted below with the weight of its finest exposed axis */
                        int ax = ex[ax0] ? ax0 : ex[ax1] ? ax1 : 3 - ax0 - ax1;
                        bla_o0 += ax == 0;
                        bla_o1 += ax == 1;
                        bla_o2 += ax == 2;
                        l2 = false;
                    }
                }
                lyt_n += l1;
                bla_n += l2;
            }
    free(shl);
    /* an outermost voxel exposed along an axis of spacing s has its centre at a depth
     * spread evenly over [0, s) below the body's surface; the cortex (CORTEX_MM) covers the
     * shallowest part, where blastic tissue cannot be told from cortex by density, so such
     * voxels in the blastic band count max(0, 1 - CORTEX_MM / s) of a voxel: the share of
     * them whose centre lies beneath the cortex (integer counts, weighted at the end) */
    double wo[3];
    bool fine_voxels = fmax(spacing[0], spacing[1]) <= FINE_VOXEL_MM;
    for (int a = 0; a < 3; a++)
        wo[a] = fine_voxels ? fmax(0.0, 1.0 - CORTEX_MM / spacing[a]) : 1.0;
    double bn = (double)L->body_n;
    double bla = (double)bla_n + wo[0] * (double)bla_o0 + wo[1] * (double)bla_o1 + wo[2] * (double)bla_o2;
    v->lytic_fraction = (double)lyt_n / bn;
    v->blastic_fraction = bla / bn;
    v->body_involvement_fraction = ((double)lyt_n + bla) / bn;
    double fl = v->lytic_fraction, fb = v->blastic_fraction;
    if (fl >= MIXED_MIN_FRACTION && fb >= MIXED_MIN_FRACTION)
        v->lesion_class = SM_LESION_MIXED;
    else if (lyt_n == 0 && bla <= 0.0)
        v->lesion_class = SM_LESION_NONE;
    else
        v->lesion_class = fl >= fb ? SM_LESION_LYTIC : SM_LESION_BLASTIC;
    if (n_island)
        sm_strlist_add(&v->notes, "lesions: %zu dense region(s) with mean >= %.0f HU treated as "
                                  "bone island(s), not blastic", n_island, BONE_ISLAND_HU);
    if (n_marginal)
        sm_strlist_add(&v->notes, "lesions: %zu faint or small dense region(s) lying within %.1f mm "
                                  "of the endplates/rim treated as degenerative sclerosis, not "
                                  "blastic", n_marginal, MARGINAL_RIM_MM + ERODE_MM);
    if (n_pedicle)
        sm_strlist_add(&v->notes, "lesions: %zu lytic region(s) below the calling size counted "
                                  "with their continuation into a pedicle", n_pedicle);
    if (n_shell)
        sm_strlist_add(&v->notes, "lesions: %zu blastic region(s) below the calling size in the core "
                                  "counted with their part in the %.1f mm shell", n_shell, ERODE_MM);
    if (cx.n_small)
        sm_strlist_add(&v->notes, "lesions: %zu focal region(s) below the calling size (%.2f cm3) "
                                  "not called", cx.n_small, cx.min_vox * voxel_mm3 / 1000.0);
    if (n_fat)
        sm_strlist_add(&v->notes, "lesions: %zu low region(s) with fat mean < %.0f HU treated as "
                                  "haemangioma/fat, not lytic", n_fat, FAT_MEAN_HU);
    return true;
}

/* notes0[l]: the level's note count before the first classification (a refit classifies
 * again; the notes of the earlier pass are dropped) */
static bool classify_all(SmError **error, const SmMetricsInput *in, SmSeriesMetrics *m, Level *lv,
                         const Ref *ref, const Offset *se, size_t n_se, const Offset *rim_se,
                         size_t n_rim_se, const size_t *notes0, int nthreads)
{
    for (size_t l = 0; l < in->n_levels; l++) {
        SmVertebraMetrics *v = &m->v[l];
        while (v->notes.n > notes0[l])
            free(v->notes.items[--v->notes.n]);
        v->lesion_class = SM_LESION_NONE;
        v->lytic_fraction = v->blastic_fraction = v->body_involvement_fraction = NAN;
        v->lytic_mean_hu = v->blastic_mean_hu = NAN;
        if (lv[l].core_n == 0)
            continue;
        if (isnan(ref->intercept)) {
            sm_strlist_add(&v->notes, "lesions: not assessed (no reference cancellous bone in "
                                      "this series)");
            continue;
        }
        double expected = ref->intercept + ref->slope * (double)l;
        if (!level_classify(error, &lv[l], v, expected, ref->spread, in->ct->spacing, se, n_se, rim_se,
                            n_rim_se, nthreads))
            return false;
    }
    return true;
}

bool sm_metric_lesions(SmError **error, const SmMetricsInput *in, SmSeriesMetrics *m)
{
    size_t nl = in->n_levels;
    int nthreads = in->threads > 0 ? in->threads : sm_omp_threads();
    m->reference_cancellous_hu = NAN;
    m->reference_spread_hu = NAN;
    sm_strlist_clear(&m->reference_method);
    sm_strlist_clear(&m->lesion_levels);
    m->n_vertebral_body_metastases = 0;
    if (nl == 0)
        return true;
    const SmVolume *ct = in->ct;
    double voxel_mm3 = ct->spacing[0] * ct->spacing[1] * ct->spacing[2];
    int rse[3], pad[3];
    double sigma = fmax(SMOOTH_MIN_SIGMA_MM,
                        SMOOTH_VOXEL_FACTOR * fmax(ct->spacing[0], ct->spacing[1]));
    radii_for(ct, ERODE_MM, rse);
    for (int a = 0; a < 3; a++) {
        int rs = (int)ceil(2.5 * sigma / ct->spacing[a]);
        pad[a] = (rse[a] > rs ? rse[a] : rs) + 1;
    }
    size_t n_se = 0, n_rim_se = 0;
    Offset *se = ellipsoid(rse, &n_se);
    int rrim[3];
    radii_for(ct, MARGINAL_RIM_MM, rrim);
    Offset *rim_se = ellipsoid(rrim, &n_rim_se);
    Level *lv = calloc(nl, sizeof *lv);
    size_t *notes0 = calloc(nl, sizeof *notes0);
    if (!se || !rim_se || !lv || !notes0) {
        free(se);
        free(rim_se);
        free(lv);
        free(notes0);
        sm_error_set(error, SM_ERR_NOMEM, "lesions: out of memory");
        return false;
    }
    bool ok = find_boxes(error, in, lv, pad, nthreads);
    for (size_t l = 0; ok && l < nl; l++) {
        ok = level_prepare(error, in, &lv[l], in->verse_labels[l], sigma, se, n_se, nthreads);
        m->v[l].cancellous_median_hu = lv[l].core_n ? lv[l].median_hu : NAN;
        lv[l].in_reference = lv[l].core_n > 0;
        if (ok && lv[l].body_n == 0)
            sm_strlist_add(&m->v[l].notes, "lesions: no vertebral-body voxels; not assessed");
        else if (ok && lv[l].core_n == 0)
            sm_strlist_add(&m->v[l].notes, "lesions: body thinner than twice %.1f mm; not assessed",
                           ERODE_MM);
    }
    for (size_t l = 0; l < nl; l++)
        notes0[l] = m->v[l].notes.n;
    Ref ref = {NAN, NAN, NAN};
    if (ok && !fit_reference(in, m, lv, voxel_mm3, &ref, &m->reference_method)) {
        sm_error_set(error, SM_ERR_NOMEM, "lesions: out of memory fitting the reference");
        ok = false;
    }
    if (ok)
        ok = classify_all(error, in, m, lv, &ref, se, n_se, rim_se, n_rim_se, notes0, nthreads);
    /* lesions bias the reference they are judged against: drop involved levels and refit
     * once */
    if (ok && !isnan(ref.intercept)) {
        bool refit = false;
        for (size_t l = 0; l < nl; l++)
            if (lv[l].in_reference && m->v[l].body_involvement_fraction > REF_REFIT_INVOLVEMENT) {
                lv[l].in_reference = false;
                refit = true;
                sm_strlist_add(&m->reference_method, "%s excluded: %.0f %% of its body is lesion",
                               m->v[l].level, 100.0 * m->v[l].body_involvement_fraction);
            }
        size_t left = 0;
        for (size_t l = 0; l < nl; l++)
            left += lv[l].in_reference;
        if (refit && left > 0) {
            if (!fit_reference(in, m, lv, voxel_mm3, &ref, &m->reference_method)) {
                sm_error_set(error, SM_ERR_NOMEM, "lesions: out of memory fitting the reference");
                ok = false;
            } else {
                ok = classify_all(error, in, m, lv, &ref, se, n_se, rim_se, n_rim_se, notes0, nthreads);
            }
        } else if (refit) {
            sm_strlist_add(&m->reference_method, "every level is involved: kept the first fit "
                                                 "(diffuse disease; interpret with care)");
        }
    }
    if (ok && !isnan(ref.intercept)) {
        /* the series reference: expected HU at the middle of the measured levels */
        m->reference_cancellous_hu = ref.intercept + ref.slope * 0.5 * (double)(nl - 1);
        m->reference_spread_hu = ref.spread;
        sm_strlist_add(&m->reference_method,
                       "per level: median HU of the normal-bone population of the body eroded by "
                       "%.1f mm; reference at mid-series "
                       "%.0f HU, spread (robust SD after %.1f mm Gaussian) %.1f HU",
                       ERODE_MM, m->reference_cancellous_hu, sigma, ref.spread);
        for (size_t l = 0; l < nl; l++)
            if (m->v[l].lesion_class != SM_LESION_NONE) {
                if (!sm_strlist_add(&m->lesion_levels, "%s", m->v[l].level)) {
                    sm_error_set(error, SM_ERR_NOMEM, "lesions: out of memory");
                    ok = false;
                    break;
                }
            }
        m->n_vertebral_body_metastases = (int)m->lesion_levels.n;
    }
    for (size_t l = 0; l < nl; l++)
        level_free(&lv[l]);
    free(lv);
    free(notes0);
    free(se);
    free(rim_se);
    return ok;
}
