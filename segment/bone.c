/* Bone thresholds derived from the scan's own histogram (soft-tissue mode and an Otsu split
 * of the dense tail) and the hysteresis bone mask with small holes filled per slice. */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HIST_MIN (-1024)
#define HIST_MAX 3071
/* Unenhanced muscle, organs and blood read 30-70 HU; a soft-tissue mode above this is
 * contrast-enhanced parenchyma (liver, spleen, kidneys of a portal-venous abdomen). */
#define SOFT_ENHANCED_HU 80

void sm_seg_thresholds_from_histogram(const uint64_t *hist, size_t nbins, int hist_min,
                                      SegThresholds *thr)
{
    /* Soft-tissue mode: the strongest peak of a 9-HU box-smoothed histogram in [-30, 120]
     * (muscle, organs, blood); the fat peak lies below this window. */
    double best = -1;
    long mode = 40;
    for (long hv = -30; hv <= 120; hv++) {
        long b = hv - hist_min;
        if (b < 4 || b + 4 >= (long)nbins)
            continue;
        double s = 0;
        for (long d = -4; d <= 4; d++)
            s += (double)hist[b + d];
        if (s > best) {
            best = s;
            mode = hv;
        }
    }
    /* Right half-width at half maximum gives the soft-tissue spread. */
    double half = best / 2;
    long hw = 60;
    for (long hv = mode; hv < mode + 300; hv++) {
        long b = hv - hist_min;
        if (b + 4 >= (long)nbins)
            break;
        double s = 0;
        for (long d = -4; d <= 4; d++)
            s += (double)hist[b + d];
        if (s < half) {
            hw = hv - mode;
            break;
        }
    }
    double sigma = hw / 1.1774;
    if (sigma < 8) sigma = 8;
    /* Otsu on the dense tail [mode + 3 sigma, 1500]: separates enhanced soft tissue from
     * bone. */
    long t0 = mode + (long)(3 * sigma), t1 = 1500;
    double wsum = 0, msum = 0;
    for (long hv = t0; hv <= t1; hv++) {
        long b = hv - hist_min;
        if (b < 0 || b >= (long)nbins) continue;
        wsum += (double)hist[b];
        msum += (double)hist[b] * hv;
    }
    double otsu = mode + 250;
    if (wsum > 0) {
        double w0 = 0, m0 = 0, bestvar = -1;
        for (long hv = t0; hv < t1; hv++) {
            long b = hv - hist_min;
            if (b < 0 || b >= (long)nbins) continue;
            w0 += (double)hist[b];
            m0 += (double)hist[b] * hv;
            double w1 = wsum - w0;
            if (w0 <= 0 || w1 <= 0)
                continue;
            double mu0 = m0 / w0, mu1 = (msum - m0) / w1;
            double var = w0 * w1 * (mu0 - mu1) * (mu0 - mu1);
            if (var > bestvar) {
                bestvar = var;
                otsu = (double)hv;
            }
        }
    }
    double hi = otsu;
    if (hi < mode + 150) hi = mode + 150;
    if (hi > mode + 450) hi = mode + 450;
    /* grow threshold: above soft tissue (3.5 sigma) and discs, low enough that the thin,
     * partial-volumed cortex of osteoporotic bone on thick slices stays connected */
    double lo = mode + 0.3 * (hi - mode);
    if (lo < mode + 3.5 * sigma) lo = mode + 3.5 * sigma;
    if (lo > hi - 20) lo = hi - 20;
    thr->soft = (double)mode;
    thr->soft_sigma = sigma;
    thr->hi = hi;
    thr->lo = lo;
    thr->edge = 0.5 * (mode + lo);
    thr->enhanced = mode > SOFT_ENHANCED_HU;
}

bool sm_seg_thresholds_compute(SmError **error, const SegGrid *grid, const uint8_t *body,
                               SegThresholds *thr)
{
    const size_t nbins = HIST_MAX - HIST_MIN + 1;
    uint64_t *hist = calloc(nbins, sizeof *hist);
    if (!hist) {
        sm_error_set(error, SM_ERR_NOMEM, "bone thresholds: out of memory");
        return false;
    }
    size_t cnt = 0;
    for (size_t v = 0; v < grid->n; v++) {
        if (!body[v])
            continue;
        int h = grid->hu[v];
        if (h < HIST_MIN) h = HIST_MIN;
        if (h > HIST_MAX) h = HIST_MAX;
        hist[h - HIST_MIN]++;
        cnt++;
    }
    if (cnt < 1000) {
        free(hist);
        sm_error_set(error, SM_ERR_UNSUPPORTED,
                     "bone thresholds: the body mask holds only %zu voxels; is this a body CT?",
                     cnt);
        return false;
    }
    sm_seg_thresholds_from_histogram(hist, nbins, HIST_MIN, thr);
    free(hist);
    return true;
}

bool sm_seg_bone_mask(SmError **error, const SegGrid *grid, const uint8_t *body,
                      const SegThresholds *thr, uint8_t *bone, uint8_t *filled)
{
    const size_t n = grid->n;
    const int16_t *hu = grid->hu;
    const int lo = (int)lround(thr->lo), hi = (int)lround(thr->hi);
    uint32_t *lab = malloc(n * sizeof *lab);
    if (!lab) {
        sm_error_set(error, SM_ERR_NOMEM, "bone mask: out of memory");
        return false;
    }
#pragma omp parallel for default(none) shared(hu, body, bone) firstprivate(n, lo) schedule(static)
    for (size_t v = 0; v < n; v++)
        bone[v] = body[v] && hu[v] != SEG_OUTSIDE && hu[v] >= lo;
    uint32_t nc = 0;
    if (!sm_seg_components_label(error, bone, grid->dims, 26, lab, &nc)) {
        free(lab);
        return false;
    }
    uint8_t *seeded = calloc((size_t)nc + 1, 1);
    if (!seeded) {
        free(lab);
        sm_error_set(error, SM_ERR_NOMEM, "bone mask: out of memory");
        return false;
    }
    for (size_t v = 0; v < n; v++)
        if (lab[v] && hu[v] >= hi)
            seeded[lab[v]] = 1;
#pragma omp parallel for default(none) shared(lab, seeded, bone, filled) firstprivate(n) \
    schedule(static)
    for (size_t v = 0; v < n; v++) {
        bone[v] = lab[v] && seeded[lab[v]];
        filled[v] = bone[v];
    }
    free(seeded);
    free(lab);
    /* In-plane closing (4 mm) bridges the gaps of a thin, partial-volumed cortex (thick
     * slices, osteoporosis, basivertebral foramen) before the holes are filled. */
    int rc = (int)lround(4.0 / grid->g);
    if (rc < 1)
        rc = 1;
    const int rr[3] = {rc, rc, 0};
    if (!sm_seg_box_morph(error, filled, grid->dims, rr, false) ||
        !sm_seg_box_morph(error, filled, grid->dims, rr, true))
        return false;
    /* Holes up to 2500 mm^2 (a lumbar body's cross-section) are trabecular bone or the
     * canal; larger ones (pelvic inlet, thorax) are not filled. */
    size_t max_area = (size_t)(2500.0 / (grid->g * grid->g));
    if (!sm_seg_holes_fill_2d(error, filled, grid->dims, max_area, 1))
        return false;
#pragma omp parallel for default(none) shared(bone, filled) firstprivate(n) schedule(static)
    for (size_t v = 0; v < n; v++)
        filled[v] = filled[v] || bone[v];
    return true;
}
