/* Posterolateral involvement (pedicle + facet, per side) judged against the same
 * sub-region at neighbouring levels (docs/metrics.md "Posterolateral involvement"). */
#include "metrics_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PL_LYTIC_MIN_DROP_HU 40.0
#define PL_LYTIC_MAX_HU 100.0
#define PL_GAS_HU (-200.0)
#define PL_K_SPREAD 3.0
#define PL_BLASTIC_BAND_HU 100.0 /* blastic-like: within this of the body's blastic tissue mean */
#define PL_MIN_MM3 100.0         /* smaller sub-regions are not assessed */
#define PL_CUT_SHARE 0.5         /* a side on a face of the grid with less than this share of
                                  * its neighbours' median volume is a fragment */
#define PL_NEIGHBOURS 3          /* levels either side that form the baseline */
#define PL_INVOLVED 0.25         /* excess fraction that makes a side involved */
#define HB_LO (-1024)
#define HB_W 8                   /* histogram bin width, HU */
#define HB_N 512

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

static size_t bin_of(double h)
{
    long b = (long)floor((h - HB_LO) / HB_W);
    return b < 0 ? 0 : b >= HB_N ? HB_N - 1 : (size_t)b;
}

/* Fraction of a histogram's voxels in bins [b0, b1). */
static double band_fraction(const size_t *h, size_t b0, size_t b1)
{
    size_t n = 0, in = 0;
    for (size_t b = 0; b < HB_N; b++) {
        n += h[b];
        if (b >= b0 && b < b1)
            in += h[b];
    }
    return n ? (double)in / (double)n : NAN;
}

/* How far f exceeds the baseline, scaled to what the baseline leaves free, in 0..1. */
static double excess(double f, double base)
{
    if (isnan(f) || isnan(base))
        return NAN;
    double room = 1.0 - base;
    double e = room > 0.05 ? (f - base) / room : 0.0;
    return e < 0.0 ? 0.0 : e > 1.0 ? 1.0 : e;
}

/* Median over the neighbours' (both sides, up to PL_NEIGHBOURS levels away, not l) band
 * fractions. */
static double baseline(const size_t *hist, const bool *ok, size_t nl, size_t l, size_t b0,
                       size_t b1, double *tmp)
{
    size_t n = 0;
    size_t lo = l >= PL_NEIGHBOURS ? l - PL_NEIGHBOURS : 0;
    for (size_t o = lo; o <= l + PL_NEIGHBOURS && o < nl; o++)
        for (size_t s = 0; s < 2; s++)
            if (o != l && ok[o * 2 + s])
                tmp[n++] = band_fraction(hist + (o * 2 + s) * HB_N, b0, b1);
    return sm_median_inplace(tmp, n);
}

bool sm_metric_posterolateral(SmError **error, const SmMetricsInput *in, SmSeriesMetrics *m)
{
    size_t nl = in->n_levels;
    int nthreads = in->threads > 0 ? in->threads : sm_omp_threads();
    if (nl == 0)
        return true;
    double ref = m->reference_cancellous_hu, spread = m->reference_spread_hu;
    if (isnan(ref)) {
        for (size_t l = 0; l < nl; l++)
            sm_strlist_add(&m->v[l].notes, "posterolateral: no bone reference; not assessed");
        return true;
    }
    if (isnan(spread))
        spread = 0.0;
    double lyt_thr = fmin(ref - fmax(PL_K_SPREAD * spread, PL_LYTIC_MIN_DROP_HU), PL_LYTIC_MAX_HU);

    const SmVolume *ct = in->ct, *lab = in->labels;
    const uint8_t *sd = in->subregions->data;
    size_t nx = ct->dims[0], ny = ct->dims[1], nz = ct->dims[2];
    /* per thread, per level and side: an integer histogram (the merge is exact at any
     * thread count) */
    int nt = nthreads > 0 ? nthreads : 1;
    size_t per = nl * 2 * HB_N, total = 0;
    int *lut = malloc(65536 * sizeof *lut);
    size_t *th = NULL, *hist = calloc(per, sizeof *hist);
    size_t *tb = calloc((size_t)nt * nl * 2, sizeof *tb); /* per thread: voxels on a grid face */
    bool *ok = calloc(nl * 2, sizeof *ok);
    double *tmp = malloc((4 * PL_NEIGHBOURS + 2) * sizeof *tmp);
    if (!lut || !hist || !tb || !ok || !tmp || !sm_size_mul((size_t)nt, per, &total) ||
        !(th = calloc(total, sizeof *th))) {
        free(tb);
        free(lut);
        free(hist);
        free(ok);
        free(tmp);
        sm_error_set(error, SM_ERR_NOMEM, "posterolateral: out of memory");
        return false;
    }
    for (int x = 0; x < 65536; x++)
        lut[x] = -1;
    for (size_t l = 0; l < nl; l++)
        lut[in->verse_labels[l]] = (int)l;
#pragma omp parallel default(none) shared(ct, lab, sd, lut, th, tb) firstprivate(nx, ny, nz, per, nl) \
    num_threads(nt)
    {
#ifdef _OPENMP
        size_t tid = (size_t)omp_get_thread_num();
#else
        size_t tid = 0;
#endif
        size_t *h = th + tid * per, *hb = tb + tid * nl * 2;
#pragma omp for schedule(static)
        for (size_t k = 0; k < nz; k++)
            for (size_t j = 0; j < ny; j++)
                for (size_t i = 0; i < nx; i++) {
                    size_t idx = i + nx * (j + ny * k);
                    uint8_t s = sd[idx];
                    if (s != SM_MET_SUB_PL_LEFT && s != SM_MET_SUB_PL_RIGHT)
                        continue;
                    int l = lut[label_at(lab, idx)];
                    if (l < 0)
                        continue;
                    double v = hu_at(ct, idx);
                    if (v <= PL_GAS_HU)
                        continue;
                    h[((size_t)l * 2 + (s == SM_MET_SUB_PL_RIGHT)) * HB_N + bin_of(v)]++;
                    if (i == 0 || j == 0 || k == 0 || i + 1 == nx || j + 1 == ny || k + 1 == nz)
                        hb[(size_t)l * 2 + (s == SM_MET_SUB_PL_RIGHT)]++;
                }
    }
    for (int t = 0; t < nt; t++)
        for (size_t x = 0; x < per; x++)
            hist[x] += th[(size_t)t * per + x];
    for (int t = 1; t < nt; t++)
        for (size_t q = 0; q < nl * 2; q++)
            tb[q] += tb[(size_t)t * nl * 2 + q];
    free(th);
    double voxel_mm3 = ct->spacing[0] * ct->spacing[1] * ct->spacing[2];
    size_t *vol = calloc(nl * 2, sizeof *vol);
    if (!vol) {
        free(tb); free(hist); free(ok); free(tmp); free(lut);
        sm_error_set(error, SM_ERR_NOMEM, "posterolateral: out of memory");
        return false;
    }
    for (size_t q = 0; q < nl * 2; q++) {
        for (size_t b = 0; b < HB_N; b++)
            vol[q] += hist[q * HB_N + b];
        ok[q] = (double)vol[q] * voxel_mm3 >= PL_MIN_MM3;
    }
    /* A side cut by the field of view (voxels on a face of the grid) that holds less than
     * PL_CUT_SHARE of the median volume of its neighbours' sides is a fragment: a sliver of
     * pedicle at the field's edge is mostly cortex, so its blastic band is not read (held-
     * out driver 6001, T8 at the top of a field tilted 21 deg: 299 voxels of posterior
     * elements in view, called blastic with a right posterolateral involvement). Its
     * lytic band is: tumour that replaced a cut pedicle is still soft tissue (T9 below it,
     * also cut, lytic on both sides). */
    bool *frag = calloc(nl * 2, sizeof *frag);
    if (!frag) {
        free(vol); free(tb); free(hist); free(ok); free(tmp); free(lut);
        sm_error_set(error, SM_ERR_NOMEM, "posterolateral: out of memory");
        return false;
    }
    for (size_t l = 0; l < nl; l++)
        for (size_t side = 0; side < 2; side++) {
            size_t q = l * 2 + side, n = 0;
            if (!ok[q] || tb[q] == 0)
                continue;
            size_t lo = l >= PL_NEIGHBOURS ? l - PL_NEIGHBOURS : 0;
            for (size_t o = lo; o <= l + PL_NEIGHBOURS && o < nl; o++)
                if (o != l && ok[o * 2 + side] && tb[o * 2 + side] == 0)
                    tmp[n++] = (double)vol[o * 2 + side];
            double med = sm_median_inplace(tmp, n);
            if (!isnan(med) && (double)vol[q] < PL_CUT_SHARE * med)
                frag[q] = true;
        }
    free(vol);
    free(tb);
    size_t lb1 = bin_of(lyt_thr); /* lytic-like: bins below the lytic threshold */
    bool relist = false;
    /* the patient's blastic tissue density: median over the levels with a blastic lesion */
    size_t nbm = 0;
    double *bm = malloc(nl * sizeof *bm), series_b = NAN;
    if (bm) {
        for (size_t l = 0; l < nl; l++)
            if (!isnan(m->v[l].blastic_mean_hu))
                bm[nbm++] = m->v[l].blastic_mean_hu;
        series_b = sm_median_inplace(bm, nbm);
        free(bm);
    }
    /* First pass: sides that look involved against all their neighbours. The baselines of
     * the second pass leave them out (a lytic pedicle has lost the bone whose partial-volume
     * voxels fill the blastic band of a normal one, so next to several involved levels a
     * median over all neighbours is not normal); with no side left, all are used. */
    bool *base_ok = calloc(nl * 2, sizeof *base_ok);
    if (!base_ok) {
        free(frag);
        free(hist);
        free(ok);
        free(tmp);
        free(lut);
        sm_error_set(error, SM_ERR_NOMEM, "posterolateral: out of memory");
        return false;
    }
    for (size_t l = 0; l < nl; l++) {
        double bmean = !isnan(m->v[l].blastic_mean_hu) ? m->v[l].blastic_mean_hu : series_b;
        bool has_b = !isnan(bmean);
        size_t bb0 = has_b ? bin_of(bmean - PL_BLASTIC_BAND_HU) : 0;
        size_t bb1 = has_b ? bin_of(bmean + PL_BLASTIC_BAND_HU) + 1 : 0;
        double base_l = baseline(hist, ok, nl, l, 0, lb1, tmp);
        double base_b = has_b ? baseline(hist, ok, nl, l, bb0, bb1, tmp) : NAN;
        if (isnan(base_l))
            base_l = 0.0;
        for (size_t side = 0; side < 2; side++) {
            size_t q = l * 2 + side;
            if (!ok[q])
                continue;
            const size_t *h = hist + q * HB_N;
            double el = excess(band_fraction(h, 0, lb1), base_l), eb = 0.0;
            if (has_b && !isnan(base_b) && !frag[q])
                eb = excess(band_fraction(h, bb0, bb1), base_b);
            base_ok[q] = fmax(el, eb) < PL_INVOLVED;
        }
    }
    for (size_t l = 0; l < nl; l++) {
        SmVertebraMetrics *v = &m->v[l];
        /* blastic-like: the band around this vertebra's own blastic tissue, or the
         * patient's elsewhere */
        double bmean = !isnan(v->blastic_mean_hu) ? v->blastic_mean_hu : series_b;
        bool has_b = !isnan(bmean);
        size_t bb0 = has_b ? bin_of(bmean - PL_BLASTIC_BAND_HU) : 0;
        size_t bb1 = has_b ? bin_of(bmean + PL_BLASTIC_BAND_HU) + 1 : 0;
        double base_l = baseline(hist, base_ok, nl, l, 0, lb1, tmp);
        double base_b = has_b ? baseline(hist, base_ok, nl, l, bb0, bb1, tmp) : NAN;
        if (isnan(base_l))
            base_l = baseline(hist, ok, nl, l, 0, lb1, tmp);
        if (has_b && isnan(base_b))
            base_b = baseline(hist, ok, nl, l, bb0, bb1, tmp);
        if (isnan(base_l)) {
            /* no neighbour to compare with: a normal pedicle has no soft-tissue voxels */
            base_l = 0.0;
        }
        bool inv[2] = {false, false}, assessed = true, pl_lytic = false, pl_blastic = false;
        for (size_t side = 0; side < 2; side++) {
            size_t q = l * 2 + side;
            if (!ok[q]) {
                assessed = false;
                continue;
            }
            const size_t *h = hist + q * HB_N;
            double el = excess(band_fraction(h, 0, lb1), base_l), eb = 0.0;
            if (has_b && !isnan(base_b) && !frag[q])
                eb = excess(band_fraction(h, bb0, bb1), base_b);
            v->posterolateral_fraction[side] = fmax(el, eb);
            inv[side] = v->posterolateral_fraction[side] >= PL_INVOLVED;
            pl_lytic = pl_lytic || (inv[side] && el >= eb);
            pl_blastic = pl_blastic || (inv[side] && eb > el);
        }
        v->posterolateral = inv[0] && inv[1] ? SM_SIDE_BILATERAL
                            : inv[0]         ? SM_SIDE_LEFT
                            : inv[1]         ? SM_SIDE_RIGHT
                                             : SM_SIDE_NONE;
        if (v->lesion_class == SM_LESION_NONE && (pl_lytic || pl_blastic)) {
            /* tumour in the pedicle/facet with no body lesion of calling size: the level
             * still has a lesion, of the pedicle's tissue */
            v->lesion_class = pl_lytic && pl_blastic ? SM_LESION_MIXED
                              : pl_lytic            ? SM_LESION_LYTIC
                                                    : SM_LESION_BLASTIC;
            relist = true;
            sm_strlist_add(&v->notes, "lesion class from the posterolateral elements (no body "
                                      "lesion of calling size)");
        }
        if (frag[l * 2] || frag[l * 2 + 1])
            sm_strlist_add(&v->notes, "posterolateral: a side cut by the field of view holds "
                                      "less than half its neighbours' volume; only its lytic "
                                      "band is read");
        if (!assessed)
            sm_strlist_add(&v->notes, "posterolateral: a side has < %.0f mm3 of pedicle/facet "
                                      "voxels; that side not assessed", PL_MIN_MM3);
    }
    free(frag);
    free(base_ok);
    free(hist);
    free(ok);
    free(tmp);
    free(lut);
    if (relist) {
        sm_strlist_clear(&m->lesion_levels);
        for (size_t l = 0; l < nl; l++)
            if (m->v[l].lesion_class != SM_LESION_NONE &&
                !sm_strlist_add(&m->lesion_levels, "%s", m->v[l].level)) {
                sm_error_set(error, SM_ERR_NOMEM, "posterolateral: out of memory");
                return false;
            }
        m->n_vertebral_body_metastases = (int)m->lesion_levels.n;
    }
    return true;
}
