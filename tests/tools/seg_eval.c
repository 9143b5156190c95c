/* Development/evaluation tool for segment/: runs the spine segmentation on a NIfTI CT, a
 * DICOM folder or a generated phantom, compares with truth labels (Dice per level, level
 * agreement, body centroid error), times it, checks 1- vs 2-thread identity and writes the
 * QC picture. Not installed; used to produce the figures in docs/segmentation.md. */
#include "sm_core.h"
#include "sm_io.h"
#include "sm_segment.h"
#ifdef SEG_EVAL_PHANTOM
#include "phantom.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(SmError *e)
{
    fprintf(stderr, "error: %s\n", e ? e->message : "?");
    sm_error_destroy(e);
    return 1;
}

/* TotalSegmentator "total" ids to VerSe ids. */
static int totalseg_to_verse(int id)
{
    if (id == 25 || id == 26) return 26;
    if (id >= 27 && id <= 31) return 24 - (id - 27);
    if (id >= 32 && id <= 43) return 19 - (id - 32);
    if (id >= 44 && id <= 50) return 7 - (id - 44);
    return 0;
}

static int vox_label(const SmVolume *v, size_t i)
{
    if (v->type == SM_VOXEL_U8) return ((const uint8_t *)v->data)[i];
    if (v->type == SM_VOXEL_U16) return ((const uint16_t *)v->data)[i];
    if (v->type == SM_VOXEL_I16) return ((const int16_t *)v->data)[i];
    return (int)lround(((const float *)v->data)[i]);
}

/* truth: VerSe label map; tbody: optional body-code map (value body_code = body). */
static void compare(const SmSpineSeg *seg, const SmVolume *truth, const SmVolume *tsub,
                    int body_code, bool totalseg)
{
    size_t n = sm_volume_n_voxels(seg->labels);
    const uint8_t *pl = seg->labels->data, *ps = seg->subregions->data;
    static size_t inter[29], np[29], nt[29], binter[29], bnp[29], bnt[29];
    static size_t over[29][29];
    static double tc[29][3];
    memset(tc, 0, sizeof tc);
    memset(inter, 0, sizeof inter); memset(np, 0, sizeof np); memset(nt, 0, sizeof nt);
    memset(binter, 0, sizeof binter); memset(bnp, 0, sizeof bnp); memset(bnt, 0, sizeof bnt);
    memset(over, 0, sizeof over);
    for (size_t v = 0; v < n; v++) {
        int t = vox_label(truth, v);
        if (totalseg) t = totalseg_to_verse(t);
        if (t < 0 || t > 28) t = 0;
        int p = pl[v];
        bool tb = t && tsub && vox_label(tsub, v) == body_code;
        bool pb = p && ps[v] == 1;
        if (p) np[p]++;
        if (t) {
            nt[t]++;
            size_t ii = v % truth->dims[0], jj = (v / truth->dims[0]) % truth->dims[1],
                   kk = v / (truth->dims[0] * truth->dims[1]);
            tc[t][0] += (double)ii; tc[t][1] += (double)jj; tc[t][2] += (double)kk;
        }
        if (p && p == t) inter[p]++;
        if (p && t) over[p][t]++;
        if (pb) bnp[p]++;
        if (tb) bnt[t]++;
        if (pb && tb && p == t) binter[p]++;
    }
    printf("level  truth_vox pred_vox  inter  vert_dice body_dice  best_truth_overlap\n");
    int agree = 0, total = 0;
    for (int l = 1; l <= 28; l++) {
        if (!np[l] && !nt[l]) continue;
        int best = 0;
        for (int t = 1; t <= 28; t++)
            if (over[l][t] > over[l][best]) best = t;
        double d = (np[l] + nt[l]) ? 2.0 * inter[l] / (double)(np[l] + nt[l]) : 0;
        double bd = (bnp[l] + bnt[l]) ? 2.0 * binter[l] / (double)(bnp[l] + bnt[l]) : 0;
        double ijk[3] = {0, 0, 0}, lps[3] = {0, 0, 0};
        if (nt[l]) {
            for (int c = 0; c < 3; c++) ijk[c] = tc[l][c] / (double)nt[l];
            sm_volume_index_to_lps(truth, ijk, lps);
        }
        printf("%-5s %9zu %9zu %6zu   %.3f     %.3f      %-4s truth centroid (%.1f %.1f %.1f)\n",
               sm_seg_level_name(l), nt[l], np[l], inter[l], d, bd, best ? sm_seg_level_name(best) : "-",
               lps[0], lps[1], lps[2]);
        if (np[l]) {
            total++;
            agree += best == l;
        }
    }
    {
        /* mask-level Dice over T12..L5 (any label), separating the bone mask from the split */
        size_t a = 0, b = 0, ab = 0, lab_err = 0;
        for (size_t v = 0; v < n; v++) {
            int t = vox_label(truth, v);
            if (totalseg) t = totalseg_to_verse(t);
            int p = pl[v];
            bool tt = t >= 19 && t <= 24, pp = p >= 19 && p <= 24;
            a += tt; b += pp; ab += tt && pp;
            lab_err += tt && pp && t != p;
        }
        printf("T12-L5 union mask Dice %.3f (truth %zu, pred %zu, both %zu, of which wrong level %zu)\n",
               a + b ? 2.0 * ab / (double)(a + b) : 0, a, b, ab, lab_err);
    }
    if (tsub && !totalseg) {
        /* sub-region confusion (truth rows, predicted columns) over all voxels */
        static size_t conf[11][8];
        memset(conf, 0, sizeof conf);
        for (size_t v = 0; v < n; v++) {
            int ts = vox_label(tsub, v), ps2 = ps[v];
            if (ts < 0 || ts > 10) ts = 0;
            if (ps2 > 7) ps2 = 0;
            conf[ts][ps2]++;
        }
        printf("sub-region confusion (rows truth 0..10, cols pred 0..7):\n");
        for (int a = 1; a <= 10; a++) {
            printf("  t%-2d", a);
            for (int b = 0; b <= 7; b++) printf(" %8zu", conf[a][b]);
            printf("\n");
        }
        printf("  t0 ");
        for (int b = 0; b <= 7; b++) printf(" %8zu", b ? conf[0][b] : (size_t)0);
        printf("\n");
    }
    for (int t = 1; t <= 28; t++) {
        if (!nt[t]) continue;
        printf("truth %-4s ->", sm_seg_level_name(t));
        for (int p = 0; p <= 28; p++)
            if (over[p][t] * 20 > nt[t] || (p == 0 && nt[t] > inter[t]))
                printf(" %s:%zu", p ? sm_seg_level_name(p) : "none",
                       p ? over[p][t] : nt[t] - inter[t]);
        printf("\n");
    }
    if (tsub) {
        /* where each level's truth body voxels went: same label with which sub-region
         * code, another label, or nothing */
        for (int t = 1; t <= 28; t++) {
            size_t same[8] = {0}, other = 0, none = 0, tot = 0, mcnt[2] = {0, 0};
            double mpos[2][3] = {{0, 0, 0}, {0, 0, 0}};
            for (size_t v = 0; v < n; v++) {
                int tl = vox_label(truth, v);
                if (totalseg) tl = totalseg_to_verse(tl);
                if (tl != t || vox_label(tsub, v) != body_code)
                    continue;
                tot++;
                int p = pl[v];
                if (!p) none++;
                else if (p != t) other++;
                else {
                    same[ps[v] < 8 ? ps[v] : 0]++;
                    int w = ps[v] == 1 ? 0 : 1;
                    mpos[w][0] += (double)(v % truth->dims[0]);
                    mpos[w][1] += (double)((v / truth->dims[0]) % truth->dims[1]);
                    mpos[w][2] += (double)(v / (truth->dims[0] * truth->dims[1]));
                    mcnt[w]++;
                }
            }
            /* SEG_EVAL_BODY_DEBUG set: mean voxel position of the truth body voxels we
             * label with this level as body and as another sub-region code */
            if (getenv("SEG_EVAL_BODY_DEBUG") && mcnt[0] && mcnt[1])
                printf("truth body %s, same label: body code at (%.1f %.1f %.1f), other codes at "
                       "(%.1f %.1f %.1f) voxels\n", sm_seg_level_name(t),
                       mpos[0][0] / (double)mcnt[0], mpos[0][1] / (double)mcnt[0],
                       mpos[0][2] / (double)mcnt[0], mpos[1][0] / (double)mcnt[1],
                       mpos[1][1] / (double)mcnt[1], mpos[1][2] / (double)mcnt[1]);
            if (!tot) continue;
            printf("truth body %-4s %6zu: none %zu, other level %zu, same level codes", sm_seg_level_name(t), tot, none, other);
            for (int c = 0; c < 8; c++)
                if (same[c]) printf(" %d:%zu", c, same[c]);
            printf("\n");
            /* and where the predicted body voxels of this level lie in the truth */
            size_t tcode[11] = {0}, tother = 0, tnone = 0;
            for (size_t v = 0; v < n; v++) {
                if (pl[v] != t || ps[v] != 1)
                    continue;
                int tl = vox_label(truth, v);
                if (totalseg) tl = totalseg_to_verse(tl);
                int tcv = vox_label(tsub, v);
                if (!tl) tnone++;
                else if (tl != t) tother++;
                else tcode[tcv >= 0 && tcv <= 10 ? tcv : 0]++;
            }
            printf("  pred body %-4s: truth none %zu, other level %zu, same level codes", sm_seg_level_name(t), tnone, tother);
            for (int c = 0; c <= 10; c++)
                if (tcode[c]) printf(" %d:%zu", c, tcode[c]);
            printf("\n");
        }
    }
    printf("level agreement: %d/%d predicted vertebrae overlap most with the same truth level\n",
           agree, total);
}


/* set: the axial comparison shows body sub-regions only (--body-only) */
static const SmVolume *g_tsub_axial = NULL;

/* Axial comparison picture on CT slice k: red = prediction only, green = truth only,
 * yellow = both (label equality ignored: masks), 2x upscaled. */
static void axial_compare(const SmVolume *ct, const SmSpineSeg *seg, const SmVolume *truth,
                          bool totalseg, size_t k, const char *path)
{
    size_t nx = ct->dims[0], ny = ct->dims[1], sc = 3;
    size_t W = nx * sc, H = ny * sc;
    uint8_t *img = malloc(W * H * 3);
    if (!img) return;
    for (size_t y = 0; y < H; y++)
        for (size_t x = 0; x < W; x++) {
            size_t i = x / sc, j = y / sc;
            size_t v = i + nx * (j + ny * k);
            double hv = sm_volume_get(ct, i, j, k);
            double gv = (hv + 450) / 1800 * 255;
            if (gv < 0) gv = 0;
            if (gv > 255) gv = 255;
            int t = vox_label(truth, v);
            if (totalseg) t = totalseg_to_verse(t);
            int p = ((const uint8_t *)seg->labels->data)[v];
            if (g_tsub_axial) {
                if (vox_label(g_tsub_axial, v) != 1) t = 0;
                if (((const uint8_t *)seg->subregions->data)[v] != 1) p = 0;
            }
            uint8_t *o = img + 3 * (y * W + x);
            o[0] = o[1] = o[2] = (uint8_t)gv;
            if (p && t) { o[0] = 255; o[1] = 255; o[2] = (uint8_t)(gv / 2); }
            else if (p) { o[0] = 255; o[1] = (uint8_t)(gv / 2); o[2] = (uint8_t)(gv / 2); }
            else if (t) { o[0] = (uint8_t)(gv / 2); o[1] = 255; o[2] = (uint8_t)(gv / 2); }
        }
    SmError *e = NULL;
    if (!sm_io_png_save(&e, path, img, W, H, 3)) sm_error_destroy(e);
    free(img);
}


/* Sagittal comparison on CT column i (through the canal), colours as axial_compare, plus
 * a label-boundary tint: predicted label parity in blue channel. */
static const SmVolume *g_tsub = NULL; /* set: compare body sub-regions only */

static void sagittal_compare(const SmVolume *ct, const SmSpineSeg *seg, const SmVolume *truth,
                             bool totalseg, const char *path)
{
    double lps[3] = {seg->canal_lps[seg->n_canal / 2][0], seg->canal_lps[seg->n_canal / 2][1],
                     seg->canal_lps[seg->n_canal / 2][2]}, ijk[3];
    sm_volume_lps_to_index(ct, lps, ijk);
    long ic = lround(ijk[0]);
    if (ic < 0 || ic >= (long)ct->dims[0]) return;
    size_t i = (size_t)ic, ny = ct->dims[1], nz = ct->dims[2], sc = 3;
    size_t W = 3 * (ny * sc + 4), H = nz * sc;
    uint8_t *img = calloc(W * H * 3, 1);
    if (!img) return;
    for (size_t y = 0; y < H; y++)
        for (size_t x = 0; x < W; x++) {
            size_t half = x / (ny * sc + 4);
            size_t xx = x % (ny * sc + 4);
            if (xx >= ny * sc) continue;
            size_t j = xx / sc, k = nz - 1 - y / sc;
            size_t v = i + ct->dims[0] * (j + ny * k);
            double hv = sm_volume_get(ct, i, j, k);
            double gv = (hv + 450) / 1800 * 255;
            if (gv < 0) gv = 0;
            if (gv > 255) gv = 255;
            int t = vox_label(truth, v);
            if (totalseg) t = totalseg_to_verse(t);
            int p = ((const uint8_t *)seg->labels->data)[v];
            if (g_tsub) {
                if (vox_label(g_tsub, v) != 1) t = 0;
                if (((const uint8_t *)seg->subregions->data)[v] != 1) p = 0;
            }
            int l = half == 0 ? p : t;
            uint8_t *o = img + 3 * (y * W + x);
            o[0] = o[1] = o[2] = (uint8_t)gv;
            if (half == 2) {
                if (p && t) { o[0] = 255; o[1] = 255; o[2] = (uint8_t)(gv / 2); }
                else if (p) { o[0] = 255; o[1] = (uint8_t)(gv / 2); o[2] = (uint8_t)(gv / 2); }
                else if (t) { o[0] = (uint8_t)(gv / 2); o[1] = 255; o[2] = (uint8_t)(gv / 2); }
                continue;
            }
            if (l) {
                static const uint8_t pal[6][3] = {{230, 60, 60},  {60, 200, 80},  {70, 120, 240},
                                                  {240, 200, 40}, {200, 70, 220}, {40, 210, 210}};
                for (int c = 0; c < 3; c++) o[c] = (uint8_t)(0.4 * gv + 0.6 * pal[l % 6][c]);
            }
        }
    SmError *e = NULL;
    if (!sm_io_png_save(&e, path, img, W, H, 3)) sm_error_destroy(e);
    free(img);
}


/* Nearest-neighbour resampling of a label map onto the CT grid (through LPS) when the two
 * grids differ in index order (e.g. NIfTI labels beside a DICOM series). */
static SmVolume *labels_on_grid(const SmVolume *lab, const SmVolume *ct)
{
    if (sm_volume_same_grid(lab, ct, 0.5))
        return NULL;
    SmVolume *out = sm_volume_create(NULL, ct->dims, SM_VOXEL_U16);
    if (!out) return NULL;
    sm_volume_copy_geometry(out, ct);
    uint16_t *o = out->data;
    for (size_t k = 0; k < ct->dims[2]; k++)
        for (size_t j = 0; j < ct->dims[1]; j++)
            for (size_t i = 0; i < ct->dims[0]; i++) {
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3], q[3];
                sm_volume_index_to_lps(ct, ijk, p);
                if (!sm_volume_lps_to_index(lab, p, q)) continue;
                long a = lround(q[0]), b = lround(q[1]), c = lround(q[2]);
                if (a < 0 || b < 0 || c < 0 || a >= (long)lab->dims[0] || b >= (long)lab->dims[1] ||
                    c >= (long)lab->dims[2]) continue;
                o[i + ct->dims[0] * (j + ct->dims[1] * k)] =
                    (uint16_t)sm_volume_get(lab, (size_t)a, (size_t)b, (size_t)c);
            }
    return out;
}


/* Coronal maximum-intensity projection of a slab from 30 mm in front of the canal centre to
 * 5 mm behind it (bodies, rib heads and necks), z up, labels tinted: to count ribs by eye.
 * Assumes an axial CT (index axes along LPS up to sign). */
static void coronal_mip(const SmVolume *ct, const SmSpineSeg *seg, const char *path)
{
    size_t nx = ct->dims[0], ny = ct->dims[1], nz = ct->dims[2];
    uint8_t *img = calloc(nx * nz * 3, 1);
    if (!img || seg->n_canal < 2) { free(img); return; }
    static const uint8_t pal[6][3] = {{230, 60, 60},  {60, 200, 80},  {70, 120, 240},
                                      {240, 200, 40}, {200, 70, 220}, {40, 210, 210}};
    const uint8_t *pl = seg->labels->data;
    double zmin = INFINITY, zmax = -INFINITY;
    for (size_t k = 0; k < nz; k += nz - 1) {
        double ijk[3] = {0, 0, (double)k}, p[3];
        sm_volume_index_to_lps(ct, ijk, p);
        if (p[2] < zmin) zmin = p[2];
        if (p[2] > zmax) zmax = p[2];
    }
    for (size_t k = 0; k < nz; k++) {
        double ijk[3] = {0, 0, (double)k}, p0[3];
        sm_volume_index_to_lps(ct, ijk, p0);
        /* canal centre nearest in z */
        size_t best = 0;
        for (size_t q = 1; q < seg->n_canal; q++)
            if (fabs(seg->canal_lps[q][2] - p0[2]) < fabs(seg->canal_lps[best][2] - p0[2]))
                best = q;
        double cy = seg->canal_lps[best][1];
        size_t row = (size_t)lround((zmax - p0[2]) / (zmax - zmin) * (double)(nz - 1));
        for (size_t i = 0; i < nx; i++) {
            double mx = -2000;
            int lab = 0;
            for (size_t j = 0; j < ny; j++) {
                double q[3] = {(double)i, (double)j, (double)k}, p[3];
                sm_volume_index_to_lps(ct, q, p);
                if (p[1] < cy - 30 || p[1] > cy + 5) continue;
                double h = sm_volume_get(ct, i, j, k);
                if (h > mx) { mx = h; lab = pl[i + nx * (j + ny * k)]; }
            }
            double gv = (mx + 450) / 1800 * 255;
            if (gv < 0) gv = 0;
            if (gv > 255) gv = 255;
            uint8_t *o = img + 3 * (row * nx + i);
            o[0] = o[1] = o[2] = (uint8_t)gv;
            if (lab)
                for (int c = 0; c < 3; c++) o[c] = (uint8_t)(0.6 * gv + 0.4 * pal[lab % 6][c]);
        }
    }
    SmError *e = NULL;
    if (!sm_io_png_save(&e, path, img, nx, nz, 3)) sm_error_destroy(e);
    free(img);
}

static void print_seg(const SmSpineSeg *seg)
{
    for (size_t q = 0; q < seg->notes.n; q++)
        printf("note: %s\n", seg->notes.items[q]);
    for (size_t q = 0; q < seg->anchors.n; q++)
        printf("anchor: %s\n", seg->anchors.items[q]);
    for (size_t v = 0; v < seg->n_vertebrae; v++) {
        const SmVertebra *vt = &seg->vertebrae[v];
        printf("%-4s id %2d body (%.1f %.1f %.1f) conf %.2f vox %zu body %zu%s", vt->level,
               vt->verse_label, vt->centroid_lps[0], vt->centroid_lps[1], vt->centroid_lps[2],
               vt->confidence, vt->n_voxels, vt->n_body_voxels, vt->partial ? " partial" : "");
        for (size_t q = 0; q < vt->reasons.n; q++)
            printf(" [%s]", vt->reasons.items[q]);
        printf("\n");
    }
}

static const char *g_qc_plain = NULL; /* --qc-plain: unlabelled QC picture */

static int evaluate(const SmVolume *ct, int threads, const char *qc, const char *anchor,
                    double anchor_z, SmSpineSeg **out)
{
    SmError *e = NULL;
    SmSegOptions opt = {threads, anchor != NULL, anchor, anchor_z};
    double t0 = now_s();
    SmSpineSeg *seg = NULL;
    if (!sm_seg_spine_run(&e, ct, &opt, &seg))
        return die(e);
    double t1 = now_s();
    printf("segmentation: %.2f s at %d threads for %zu voxels (%.2f s per 100 M)\n", t1 - t0,
           threads, sm_volume_n_voxels(ct), (t1 - t0) * 1e8 / (double)sm_volume_n_voxels(ct));
    print_seg(seg);
    if (qc) {
        uint8_t *rgb = NULL;
        size_t w = 0, h = 0;
        if (!sm_seg_qc_sagittal(&e, ct, seg, &rgb, &w, &h) ||
            !sm_io_png_save(&e, qc, rgb, w, h, 3)) {
            free(rgb);
            sm_seg_spine_destroy(seg);
            return die(e);
        }
        free(rgb);
        if (g_qc_plain) {
            /* the same curved plane without labels, to judge the anatomy by eye */
            size_t n = sm_volume_n_voxels(seg->labels);
            uint8_t *keep = malloc(n);
            if (keep) {
                memcpy(keep, seg->labels->data, n);
                memset(seg->labels->data, 0, n);
                if (sm_seg_qc_sagittal(&e, ct, seg, &rgb, &w, &h)) {
                    if (!sm_io_png_save(&e, g_qc_plain, rgb, w, h, 3))
                        sm_error_destroy(e);
                    free(rgb);
                } else {
                    sm_error_destroy(e);
                }
                e = NULL;
                memcpy(seg->labels->data, keep, n);
                free(keep);
            }
        }
    }
    *out = seg;
    return 0;
}

static int check_threads(const SmVolume *ct, const SmSpineSeg *seg2)
{
    SmError *e = NULL;
    SmSegOptions opt = {1, false, NULL, 0};
    SmSpineSeg *seg1 = NULL;
    double t0 = now_s();
    if (!sm_seg_spine_run(&e, ct, &opt, &seg1))
        return die(e);
    double t1 = now_s();
    size_t n = sm_volume_n_voxels(ct);
    bool same = !memcmp(seg1->labels->data, seg2->labels->data, n) &&
                !memcmp(seg1->subregions->data, seg2->subregions->data, n);
    printf("1 thread: %.2f s; labels and sub-regions identical to the 2-thread run: %s\n",
           t1 - t0, same ? "yes" : "NO");
    sm_seg_spine_destroy(seg1);
    return same ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: seg_eval nifti CT.nii.gz [--truth-totalseg T.nii.gz] [--body B.nii.gz]\n"
                "                [--truth-verse V.nii.gz] [--body-subreg TPTBOX_SUBREG.nii.gz]\n"
                "       seg_eval dicom DIR\n"
                "       seg_eval phantom SPEC.json|default\n"
                "  common: [--threads N] [--qc out.png] [--labels-out L.nii.gz] [--sub-out S.nii.gz] [--check-threads]\n"
                "          [--anchor LEVEL Z]\n");
        return 2;
    }
    const char *mode = argv[1], *in = argv[2];
    const char *truth_path = NULL, *body_path = NULL, *qc = NULL, *lab_out = NULL, *anchor = NULL;
    const char *verse_path = NULL, *subreg_path = NULL;
    const char *sub_out = NULL;
    const char *truth_qc = NULL, *axial = NULL;
    long axial_k = -1;
    const char *sagcmp = NULL, *ct_out = NULL, *coronal = NULL;
    double anchor_z = 0;
    int threads = 2;
    bool check = false, body_only = false;
    for (int a = 3; a < argc; a++) {
        if (!strcmp(argv[a], "--truth-totalseg") && a + 1 < argc) truth_path = argv[++a];
        else if (!strcmp(argv[a], "--truth-verse") && a + 1 < argc) verse_path = argv[++a];
        else if (!strcmp(argv[a], "--body-subreg") && a + 1 < argc) subreg_path = argv[++a];
        else if (!strcmp(argv[a], "--body") && a + 1 < argc) body_path = argv[++a];
        else if (!strcmp(argv[a], "--qc") && a + 1 < argc) qc = argv[++a];
        else if (!strcmp(argv[a], "--truth-qc") && a + 1 < argc) truth_qc = argv[++a];
        else if (!strcmp(argv[a], "--qc-plain") && a + 1 < argc) g_qc_plain = argv[++a];
        else if (!strcmp(argv[a], "--coronal") && a + 1 < argc) coronal = argv[++a];
        else if (!strcmp(argv[a], "--sag-compare") && a + 1 < argc) sagcmp = argv[++a];
        else if (!strcmp(argv[a], "--ct-out") && a + 1 < argc) ct_out = argv[++a];
        else if (!strcmp(argv[a], "--axial") && a + 2 < argc) {
            axial_k = atol(argv[++a]);
            axial = argv[++a];
        }
        else if (!strcmp(argv[a], "--labels-out") && a + 1 < argc) lab_out = argv[++a];
        else if (!strcmp(argv[a], "--sub-out") && a + 1 < argc) sub_out = argv[++a];
        else if (!strcmp(argv[a], "--threads") && a + 1 < argc) threads = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--check-threads")) check = true;
        else if (!strcmp(argv[a], "--body-only")) body_only = true;
        else if (!strcmp(argv[a], "--anchor") && a + 2 < argc) {
            anchor = argv[++a];
            anchor_z = atof(argv[++a]);
        }
    }
    SmError *e = NULL;
    SmVolume *ct = NULL, *truth = NULL, *tsub = NULL;
    bool totalseg = false;
    int body_code = 1;
#ifdef SEG_EVAL_PHANTOM
    SmPhantom *ph = NULL;
#endif
    double t0 = now_s();
    if (!strcmp(mode, "nifti")) {
        if (!sm_io_nifti_load(&e, in, &ct))
            return die(e);
        if (truth_path && !sm_io_nifti_load(&e, truth_path, &truth))
            return die(e);
        if (body_path && !sm_io_nifti_load(&e, body_path, &tsub))
            return die(e);
        totalseg = true;
        if (verse_path) { /* VerSe ids; body from a TPTBox sub-region map (49, 50) */
            sm_volume_destroy(truth);
            if (!sm_io_nifti_load(&e, verse_path, &truth))
                return die(e);
            totalseg = false;
        }
        if (subreg_path) {
            SmVolume *sr = NULL;
            if (!sm_io_nifti_load(&e, subreg_path, &sr))
                return die(e);
            sm_volume_destroy(tsub);
            tsub = sm_volume_create(&e, sr->dims, SM_VOXEL_U8);
            if (!tsub)
                return die(e);
            sm_volume_copy_geometry(tsub, sr);
            for (size_t v = 0; v < sm_volume_n_voxels(sr); v++) {
                int c = vox_label(sr, v);
                ((uint8_t *)tsub->data)[v] = c == 49 || c == 50;
            }
            sm_volume_destroy(sr);
        }
    } else if (!strcmp(mode, "dicom")) {
        SmDicomScan *scan = NULL;
        const char *inputs[1] = {in};
        if (!sm_io_dicom_scan(&e, inputs, 1, &scan))
            return die(e);
        size_t best = 0;
        for (size_t s = 1; s < scan->n_series; s++)
            if (scan->series[s].n_frames > scan->series[best].n_frames) best = s;
        SmDicomLoadOptions lo = {SM_TILT_RESAMPLE, threads};
        if (!sm_io_dicom_series_load(&e, scan, best, &lo, &ct, NULL)) {
            sm_io_dicom_scan_destroy(scan);
            return die(e);
        }
        sm_io_dicom_scan_destroy(scan);
        if (truth_path && !sm_io_nifti_load(&e, truth_path, &truth))
            return die(e);
        totalseg = true;
    } else if (!strcmp(mode, "phantom")) {
#ifdef SEG_EVAL_PHANTOM
        SmPhantomSpec spec;
        sm_phantom_spec_default(&spec);
        if (strcmp(in, "default") && !sm_phantom_spec_load(&e, in, &spec))
            return die(e);
        if (!sm_phantom_generate(&e, &spec, &ph))
            return die(e);
        ct = ph->ct;
        truth = ph->labels;
        tsub = ph->subregions;
        body_code = 1;
#else
        fprintf(stderr, "phantom mode not built\n");
        return 2;
#endif
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("load: %.2f s, CT %zu x %zu x %zu, spacing %.2f %.2f %.2f\n", now_s() - t0,
           ct->dims[0], ct->dims[1], ct->dims[2], ct->spacing[0], ct->spacing[1], ct->spacing[2]);
    printf("affine rows: [%.3f %.3f %.3f %.1f] [%.3f %.3f %.3f %.1f] [%.3f %.3f %.3f %.1f]\n",
           ct->affine[0][0], ct->affine[0][1], ct->affine[0][2], ct->affine[0][3],
           ct->affine[1][0], ct->affine[1][1], ct->affine[1][2], ct->affine[1][3],
           ct->affine[2][0], ct->affine[2][1], ct->affine[2][2], ct->affine[2][3]);
    if (truth) {
        SmVolume *rs = labels_on_grid(truth, ct);
        if (rs) {
            printf("truth labels resampled onto the CT grid (different index order)\n");
            sm_volume_destroy(truth);
            truth = rs;
        }
    }
    SmSpineSeg *seg = NULL;
    int rc = evaluate(ct, threads, qc, anchor, anchor_z, &seg);
    if (rc)
        return rc;
    if (coronal)
        coronal_mip(ct, seg, coronal);
    if (truth)
        compare(seg, truth, tsub, body_code, totalseg);
    if (body_only)
        g_tsub_axial = tsub;
    if (truth && axial && axial_k >= 0 && (size_t)axial_k < ct->dims[2])
        axial_compare(ct, seg, truth, totalseg, (size_t)axial_k, axial);
    if (truth && sagcmp) {
        if (body_only)
            g_tsub = tsub;
        sagittal_compare(ct, seg, truth, totalseg, sagcmp);
    }
    if (truth && truth_qc) {
        /* QC picture of the truth through the same code path (imported labels) */
        SmVolume *vl = sm_volume_create(&e, truth->dims, SM_VOXEL_U8);
        if (!vl)
            return die(e);
        sm_volume_copy_geometry(vl, truth);
        for (size_t v = 0; v < sm_volume_n_voxels(truth); v++) {
            int t = vox_label(truth, v);
            ((uint8_t *)vl->data)[v] = (uint8_t)(totalseg ? totalseg_to_verse(t) : (t <= 28 ? t : 0));
        }
        SmSpineSeg *ts = NULL;
        SmSegOptions o = {threads, false, NULL, 0};
        uint8_t *rgb = NULL;
        size_t w = 0, h = 0;
        if (!sm_seg_from_labels(&e, ct, vl, &o, &ts) ||
            !sm_seg_qc_sagittal(&e, ct, ts, &rgb, &w, &h) ||
            !sm_io_png_save(&e, truth_qc, rgb, w, h, 3))
            return die(e);
        for (size_t q = 0; q < ts->n_vertebrae; q++)
            printf("truth %s body centroid (%.1f %.1f %.1f)\n", ts->vertebrae[q].level,
                   ts->vertebrae[q].centroid_lps[0], ts->vertebrae[q].centroid_lps[1],
                   ts->vertebrae[q].centroid_lps[2]);
        free(rgb);
        sm_seg_spine_destroy(ts);
        sm_volume_destroy(vl);
    }
#ifdef SEG_EVAL_PHANTOM
    if (ph) {
        double worst = 0;
        int named = 0, nbody = 0;
        for (size_t q = 0; q < ph->n_vertebrae; q++) {
            const SmPhantomVertebra *tv = &ph->vertebrae[q];
            for (size_t v = 0; v < seg->n_vertebrae; v++) {
                const SmVertebra *pv = &seg->vertebrae[v];
                if (pv->verse_label != tv->verse_id || !tv->has_body)
                    continue;
                double d = 0;
                for (int c = 0; c < 3; c++)
                    d += (pv->centroid_lps[c] - tv->body_centroid[c]) *
                         (pv->centroid_lps[c] - tv->body_centroid[c]);
                d = sqrt(d);
                printf("phantom %s: body centroid error %.2f mm (LPS %+.1f %+.1f %+.1f)\n", tv->name,
                       d, pv->centroid_lps[0] - tv->body_centroid[0],
                       pv->centroid_lps[1] - tv->body_centroid[1],
                       pv->centroid_lps[2] - tv->body_centroid[2]);
                if (d > worst) worst = d;
                named++;
            }
            nbody += tv->has_body;
        }
        printf("phantom: %d of %d truth vertebrae named; worst centroid error %.2f mm\n", named,
               nbody, worst);
    }
#endif
    if (sub_out && !sm_io_nifti_save(&e, seg->subregions, sub_out))
        return die(e);
    if (lab_out && !sm_io_nifti_save(&e, seg->labels, lab_out))
        return die(e);
    if (ct_out && !sm_io_nifti_save(&e, ct, ct_out))
        return die(e);
    if (check)
        rc = check_threads(ct, seg);
    sm_seg_spine_destroy(seg);
#ifdef SEG_EVAL_PHANTOM
    if (ph) {
        sm_phantom_destroy(ph);
        ct = NULL;
        truth = NULL;
        tsub = NULL;
    }
#endif
    sm_volume_destroy(ct);
    sm_volume_destroy(truth);
    sm_volume_destroy(tsub);
    return rc;
}
