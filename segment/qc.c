/* QC picture: a curved mid-sagittal plane through the canal centreline (1 or 0.5 mm pixels),
 * CT in a bone window with the vertebra label colours blended and level names drawn. */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QC_WIN_LO (-450.0)
#define QC_WIN_HI 1350.0

static void label_colour(int l, uint8_t c[3])
{
    /* alternate hues along the column so neighbours always differ */
    static const uint8_t pal[6][3] = {{230, 60, 60},  {60, 200, 80},  {70, 120, 240},
                                      {240, 200, 40}, {200, 70, 220}, {40, 210, 210}};
    if (l == SM_VERSE_SACRUM) {
        c[0] = 255; c[1] = 140; c[2] = 0;
        return;
    }
    memcpy(c, pal[l % 6], 3);
}

static double canal_x_at(const SmSpineSeg *seg, double z)
{
    /* canal points are superior to inferior (z descending) */
    const double (*cp)[3] = (const double (*)[3])seg->canal_lps;
    size_t n = seg->n_canal;
    if (z >= cp[0][2])
        return cp[0][0];
    if (z <= cp[n - 1][2])
        return cp[n - 1][0];
    for (size_t q = 0; q + 1 < n; q++)
        if (z <= cp[q][2] && z >= cp[q + 1][2]) {
            double f = (cp[q][2] - z) / (cp[q][2] - cp[q + 1][2]);
            return cp[q][0] + f * (cp[q + 1][0] - cp[q][0]);
        }
    return cp[n - 1][0];
}

bool sm_seg_qc_sagittal(SmError **error, const SmVolume *ct, const SmSpineSeg *seg,
                        uint8_t **rgb, size_t *w, size_t *h)
{
    if (!ct || !seg || !rgb || !w || !h || !seg->labels || seg->n_canal < 2) {
        sm_error_set(error, SM_ERR_USAGE, "QC picture: missing CT, segmentation or canal");
        return false;
    }
    double inv[4][4];
    if (!sm_mat4_affine_inverse(ct->affine, inv)) {
        sm_error_set(error, SM_ERR_GEOMETRY, "QC picture: the CT affine is singular");
        return false;
    }
    /* z range: the CT's extent; y range around the canal */
    double zlo = INFINITY, zhi = -INFINITY;
    for (int c = 0; c < 8; c++) {
        double ijk[3] = {(c & 1) ? (double)ct->dims[0] - 1 : 0, (c & 2) ? (double)ct->dims[1] - 1 : 0,
                         (c & 4) ? (double)ct->dims[2] - 1 : 0};
        double p[3];
        sm_mat4_apply(ct->affine, ijk, p);
        if (p[2] < zlo) zlo = p[2];
        if (p[2] > zhi) zhi = p[2];
    }
    double ymin = INFINITY, ymax = -INFINITY;
    for (size_t q = 0; q < seg->n_canal; q++) {
        if (seg->canal_lps[q][1] < ymin) ymin = seg->canal_lps[q][1];
        if (seg->canal_lps[q][1] > ymax) ymax = seg->canal_lps[q][1];
    }
    double y0 = ymin - 100.0, y1 = ymax + 70.0;
    /* 1 mm pixels, or 0.5 mm when the field of view is short */
    double px = (zhi - zlo) < 300.0 ? 0.5 : 1.0;
    size_t W = (size_t)((y1 - y0) / px) + 1, H = (size_t)((zhi - zlo) / px) + 1;
    if (H > 4000 || W > 4000) {
        sm_error_set(error, SM_ERR_UNSUPPORTED, "QC picture: field of view too large");
        return false;
    }
    uint8_t *img = malloc(W * H * 3);
    if (!img) {
        sm_error_set(error, SM_ERR_NOMEM, "QC picture: out of memory");
        return false;
    }
    const uint8_t *labels = seg->labels->data;
    for (size_t r = 0; r < H; r++) {
        double z = zhi - px * (double)r;
        double x = canal_x_at(seg, z);
        for (size_t c = 0; c < W; c++) {
            double p[3] = {x, y0 + px * (double)c, z}, ijk[3];
            sm_mat4_apply(inv, p, ijk);
            uint8_t *o = img + 3 * (r * W + c);
            long i = lround(ijk[0]), j = lround(ijk[1]), k = lround(ijk[2]);
            if (i < 0 || j < 0 || k < 0 || i >= (long)ct->dims[0] || j >= (long)ct->dims[1] ||
                k >= (long)ct->dims[2]) {
                o[0] = o[1] = o[2] = 0;
                continue;
            }
            double v = sm_volume_get(ct, (size_t)i, (size_t)j, (size_t)k);
            double gval = (v - QC_WIN_LO) / (QC_WIN_HI - QC_WIN_LO) * 255.0;
            if (gval < 0) gval = 0;
            if (gval > 255) gval = 255;
            uint8_t gv = (uint8_t)gval;
            o[0] = o[1] = o[2] = gv;
            size_t vi = (size_t)i + ct->dims[0] * ((size_t)j + ct->dims[1] * (size_t)k);
            int l = labels[vi];
            if (l) {
                uint8_t col[3];
                label_colour(l, col);
                for (int q = 0; q < 3; q++)
                    o[q] = (uint8_t)(0.55 * gv + 0.45 * col[q]);
            }
        }
    }
    for (size_t v = 0; v < seg->n_vertebrae; v++) {
        const SmVertebra *vt = &seg->vertebrae[v];
        long col = lround((vt->centroid_lps[1] - y0) / px) - 48;
        long row = lround((zhi - vt->centroid_lps[2]) / px) - 7;
        uint8_t c[3];
        label_colour(vt->verse_label, c);
        const uint8_t black[3] = {0, 0, 0};
        sm_seg_font_draw(img, W, H, col + 1, row + 1, vt->level, 2, black);
        sm_seg_font_draw(img, W, H, col, row, vt->level, 2, c);
    }
    *rgb = img;
    *w = W;
    *h = H;
    return true;
}
