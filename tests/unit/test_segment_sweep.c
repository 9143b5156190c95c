/* Randomised phantom sweep of the built-in segmentation (issue 3, "Must show"): level
 * windows (cervical, thoracic, lumbar, thoracolumbar with ribs and sacrum), curvature
 * (lordosis, kyphosis, scoliosis), head-first and feet-first, oblique acquisitions, fields
 * of view, 0.6-1.0 mm pixels and 0.6-3 mm slices, all drawn from a fixed seed (nobody picks
 * the cases). Prints one table row per case and checks the issue's thresholds: every level
 * named correctly whenever an anchor is in view, and for every vertebra whose body lies
 * wholly inside the grid a body centroid error <= 2 mm and a body Dice >= 0.90.
 *
 * Default run: a field of view cutting the body (L3-S1 in 96 mm: the sacrum must anchor),
 * then the sweep table, asserting that whenever the sacrum is in view it anchors and every
 * level is named, and that no window the segmentation anchored (on any anchor, also where
 * the truth has none in view) is named wrong. "--targets" (a second CTest entry, expected to fail until every case
 * meets them; docs/segmentation.md) asserts the issue's thresholds on every case.
 * "--cases N" changes the number of cases (default 32); "--seed S" the base seed;
 * "--case N" runs case N only; "--window W" the windows of type W only (cervical,
 * thoracic, lumbar, thoracolumbar); "--named" asserts that every window with an anchor in
 * view has every level named right (names only, not the geometry); "--notes" prints the segmentation notes and, for a body
 * below the Dice target (every body with the environment variable SWEEP_DETAIL set), where
 * it disagrees with the truth (truth-only and predicted-only voxels, their mean offsets,
 * what the truth holds under the excess; with the environment variable SWEEP_MAP set, an
 * axial projection map of both; with SWEEP_SPEC set, each draw's parameters at full
 * precision); "--qc DIR" writes
 * the QC sagittal picture of each case to DIR/sweep_<case>.png; "--write DIR" the phantom
 * (DICOM + truth, its spec in truth.json) to DIR/case_<case>/, with the CT and the
 * predicted label and sub-region maps as NIfTI (ct, pred_labels, pred_subregions). */
#include "phantom.h"
#include "seg_score.h"
#include "segment_internal.h"
#include "sm_io.h"
#include "sm_segment.h"
#include "sm_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_VOXELS 24000000.0 /* per case: the sweep must run in minutes on 2 cores */
#define CENTROID_MM 2.0
#define BODY_DICE 0.90

static uint64_t g_base_seed = 20261127;
static int g_cases = 32;
static bool g_targets = false; /* --targets: assert the issue's thresholds on every case */
static int g_only = -1;        /* --case N: run that case only */
static bool g_verbose = false; /* --notes: print the segmentation notes */
static const char *g_qc_dir = NULL; /* --qc DIR: write DIR/sweep_<case>.png (QC sagittal) */
static const char *g_write_dir = NULL; /* --write DIR: the phantom to DIR/case_<case>/ */
static int g_window = -1;      /* --window NAME: run the windows of that type only */
static bool g_named = false;   /* --named: assert every window with an anchor is named right */

/* splitmix64 */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }
static double rng_range(uint64_t *s, double a, double b) { return a + (b - a) * rng_unit(s); }
static int rng_int(uint64_t *s, int a, int b) { return a + (int)(rng_next(s) % (uint64_t)(b - a + 1)); }

enum { WIN_CERVICAL, WIN_THORACIC, WIN_LUMBAR, WIN_THORACOLUMBAR };
static const char *const WIN_NAME[4] = {"cervical", "thoracic", "lumbar", "thoracolumbar"};

/* phantom level indices: 0..6 C1..C7, 7..18 T1..T12, 19..23 L1..L5, 24 S1 */
#define LV_C1 0
#define LV_T1 7
#define LV_T12 18
#define LV_L1 19
#define LV_L5 23
#define LV_S1 24

typedef struct Case {
    int window;
    SmPhantomSpec spec;
    int dropped;           /* levels dropped to keep the volume under MAX_VOXELS */
} Case;

/* Number of slices the phantom would have (a 8x8 probe of the same spec). */
static size_t probe_slices(const SmPhantomSpec *spec)
{
    SmPhantomSpec p = *spec;
    p.dims[0] = p.dims[1] = 8;
    p.dims[2] = 0;
    SmError *err = NULL;
    SmPhantom *ph = NULL;
    if (!sm_phantom_generate(&err, &p, &ph)) {
        sm_error_destroy(err);
        return 0;
    }
    size_t nz = ph->ct->dims[2];
    sm_phantom_destroy(ph);
    return nz;
}

/* Draws case c: every parameter from the case's own random stream. */
static void case_draw(int c, Case *out)
{
    uint64_t s = g_base_seed * 1000003ull + (uint64_t)c;
    (void)rng_next(&s);
    memset(out, 0, sizeof *out);
    SmPhantomSpec *sp = &out->spec;
    sm_phantom_spec_default(sp);
    sp->seed = rng_next(&s) % 100000u;
    int w = c % 4; /* every window type equally often; the rest is random */
    out->window = w;
    switch (w) {
    case WIN_CERVICAL:
        sp->level_first = LV_C1 + rng_int(&s, 0, 2);  /* C1..C3 */
        sp->level_last = 5 + rng_int(&s, 0, 3);       /* C6..T2 */
        break;
    case WIN_THORACIC:
        sp->level_first = LV_T1 + rng_int(&s, 0, 5);  /* T1..T6 */
        sp->level_last = sp->level_first + rng_int(&s, 4, 8);
        if (sp->level_last > LV_T12) sp->level_last = LV_T12;
        break;
    case WIN_LUMBAR:
        sp->level_first = LV_L1 + rng_int(&s, 0, 2);  /* L1..L3 */
        sp->level_last = rng_unit(&s) < 0.5 ? LV_L5 : LV_S1;
        break;
    default:
        sp->level_first = LV_T12 - 3 + rng_int(&s, 0, 3); /* T9..T12 */
        sp->level_last = LV_S1;
        break;
    }
    sp->cervical_lordosis_deg = rng_range(&s, 10, 40);
    sp->thoracic_kyphosis_deg = rng_range(&s, 20, 60);
    sp->lumbar_lordosis_deg = rng_range(&s, 25, 60);
    sp->scoliosis_deg = 0;
    if (rng_unit(&s) < 0.4) {
        sp->scoliosis_deg = rng_range(&s, 8, 25) * (rng_unit(&s) < 0.5 ? -1 : 1);
        sp->scoliosis_apex = rng_int(&s, sp->level_first, sp->level_last);
        if (sp->scoliosis_apex == LV_S1) sp->scoliosis_apex = LV_L5;
    }
    if (rng_unit(&s) < 0.5) {
        snprintf(sp->patient_position, sizeof sp->patient_position, "FFS");
        sp->ffs_standard_axes = rng_unit(&s) < 0.3;
    }
    sp->oblique_deg = 0;
    if (rng_unit(&s) < 0.5) {
        sp->oblique_deg = rng_range(&s, 2, 10) * (rng_unit(&s) < 0.5 ? -1 : 1);
        sp->oblique_axis = rng_int(&s, 0, 2);
    }
    sp->pixel_mm = rng_range(&s, 0.6, 1.0);
    sp->slice_mm = rng_range(&s, 0.6, 3.0);
    sp->noise_sigma_hu = rng_range(&s, 8, 20);
    double fov = rng_range(&s, 120, 260);
    size_t nxy = (size_t)lround(fov / sp->pixel_mm);
    if (nxy > 320) nxy = 320;
    sp->dims[0] = sp->dims[1] = nxy;
    sp->dims[2] = 0;
    /* keep the volume small: drop levels at the end away from the window's anchor
     * (cervical, thoracic: the caudal end; lumbar, thoracolumbar: the cranial end) */
    for (;;) {
        size_t nz = probe_slices(sp);
        if ((double)nxy * (double)nxy * (double)nz <= MAX_VOXELS ||
            sp->level_last - sp->level_first < 3)
            break;
        if (w == WIN_CERVICAL || w == WIN_THORACIC)
            sp->level_last--;
        else
            sp->level_first++;
        out->dropped++;
    }
    snprintf(sp->series_description, sizeof sp->series_description, "sweep case %d", c);
    if (getenv("SWEEP_SPEC")) /* a draw's exact parameters, to rebuild it in a test */
        fprintf(stderr, "spec %d: seed %llu dims %zu pixel %.17g slice %.17g noise %.17g "
                "lordosis %.17g kyphosis %.17g lumbar %.17g scoliosis %.17g apex %d %s "
                "oblique %.17g axis %d standard-axes %d\n",
                c, (unsigned long long)sp->seed, sp->dims[0], sp->pixel_mm, sp->slice_mm,
                sp->noise_sigma_hu, sp->cervical_lordosis_deg, sp->thoracic_kyphosis_deg,
                sp->lumbar_lordosis_deg, sp->scoliosis_deg, sp->scoliosis_apex,
                sp->patient_position, sp->oblique_deg, sp->oblique_axis,
                (int)sp->ffs_standard_axes);
}

/* Anchors the truth puts in view (what the labelling can use): sacrum, last rib (T12 with
 * L1 below), first rib (T1), C2 (with C1 above). */
static int anchors_in_view(const SmPhantomSpec *sp, char *buf, size_t n)
{
    int na = 0;
    buf[0] = 0;
    size_t used = 0;
#define ADD(txt)                                                                       \
    do {                                                                               \
        used += (size_t)snprintf(buf + used, n - used, "%s%s", na ? "+" : "", txt);    \
        na++;                                                                          \
    } while (0)
    if (sp->level_last == LV_S1) ADD("S");
    if (sp->level_first <= LV_T12 && sp->level_last >= LV_L1) ADD("T12");
    if (sp->level_first <= LV_T1 && sp->level_last >= LV_T1) ADD("T1");
    if (sp->level_first == LV_C1 && sp->level_last >= 1) ADD("C2");
#undef ADD
    if (!na) snprintf(buf, n, "none");
    return na;
}

/* Anchors the segmentation used, abbreviated. */
static void anchors_used(const SmSpineSeg *seg, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t q = 0; q < seg->anchors.n && used + 8 < n; q++) {
        const char *a = seg->anchors.items[q];
        const char *t = !strncmp(a, "sacrum", 6)       ? "S"
                        : !strncmp(a, "last rib", 8)   ? "T12"
                        : !strncmp(a, "first rib", 9)  ? "T1"
                        : !strncmp(a, "C2", 2)         ? "C2"
                        : !strncmp(a, "none", 4)       ? "none"
                        : !strncmp(a, "user", 4)       ? "user"
                                                       : "?";
        used += (size_t)snprintf(buf + used, n - used, "%s%s", q ? "+" : "", t);
    }
    if (!used) snprintf(buf, n, "-");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Analytic model of a body beside a rib head: body bone (700 HU) for |x| <= 15 mm, a
 * 1.8 mm costovertebral gap (40 HU), the rib head (700 HU) to x = 26 mm, soft tissue
 * beyond; the same on both sides. */
static double rib_model(const double p[3])
{
    double ax = fabs(p[0]);
    return ax <= 15.0 ? 700 : ax <= 16.8 ? 40 : ax <= 26.0 ? 700 : 40;
}

/* CT of the model on a grid rotated by deg about LPS axis `axis` (0 x, 1 y, 2 z), pixel
 * 0.7 mm, slices 2 mm, centred on the origin; nearest sampling of voxel centres. */
static SmVolume *rib_volume(int axis, double deg)
{
    const size_t d[3] = {100, 100, 12};
    SmError *err = NULL;
    SmVolume *v = sm_volume_create(&err, d, SM_VOXEL_I16);
    if (!v)
        return NULL;
    double c = cos(deg * M_PI / 180.0), sn = sin(deg * M_PI / 180.0);
    double R[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    int a = (axis + 1) % 3, b = (axis + 2) % 3;
    R[a][a] = c; R[a][b] = -sn; R[b][a] = sn; R[b][b] = c;
    const double sp[3] = {0.7, 0.7, 2.0};
    for (int r = 0; r < 3; r++) {
        double o = 0;
        for (int q = 0; q < 3; q++) {
            v->affine[r][q] = R[r][q] * sp[q];
            o -= v->affine[r][q] * 0.5 * (double)(d[q] - 1);
        }
        v->affine[r][3] = o;
        v->spacing[r] = sp[r];
    }
    int16_t *hu = v->data;
    for (size_t k = 0; k < d[2]; k++)
        for (size_t j = 0; j < d[1]; j++)
            for (size_t i = 0; i < d[0]; i++) {
                double p[3];
                for (int r = 0; r < 3; r++)
                    p[r] = v->affine[r][0] * (double)i + v->affine[r][1] * (double)j +
                           v->affine[r][2] * (double)k + v->affine[r][3];
                hu[i + d[0] * (j + d[1] * k)] = (int16_t)rib_model(p);
            }
    return v;
}

/* The rib-head cut walks along patient x whatever the image orientation: the same answer
 * on an axial grid, a grid tilted 5 deg about y (rows no longer in one axial plane) and
 * one rotated 20 deg about z (rows oblique in-plane). */
static void test_rib_head_gap_orientation(void **state)
{
    (void)state;
    const int axes[3] = {0, 1, 2};
    const double degs[3] = {0, 5, 20};
    /* points (x, y, z) and the expected answer: rib head on either side (true), body bone
     * (false), bone beyond the body but joined to it (none here), soft tissue start */
    const double pts[4][3] = {{22, 0, 0}, {-20, 3, 1}, {12, 0, 0}, {-13, -2, -1}};
    const bool expect[4] = {true, true, false, false};
    for (int o = 0; o < 3; o++) {
        SmVolume *ct = rib_volume(axes[o], degs[o]);
        assert_non_null(ct);
        double inv[4][4];
        assert_true(sm_mat4_affine_inverse(ct->affine, inv));
        for (int q = 0; q < 4; q++) {
            bool got = sm_seg_rib_head_gap(ct, inv, 0.7, pts[q], 0.0, 8.0, 150.0, 250.0, false);
            if (got != expect[q])
                fprintf(stderr, "orientation %d, point %d: %d\n", o, q, got);
            assert_true(got == expect[q]);
        }
        sm_volume_destroy(ct);
    }
}

/* A field of view that cuts the body (96 x 96 mm at 1 mm, L3-S1): the alae leave the field
 * on both sides, so the sacrum cannot reach the ilia in view; it must still anchor. Not a
 * tuning fixture: the ala rule was measured on the random sweep (docs). */
static void test_tiny_fov_sacrum(void **state)
{
    (void)state;
    SmPhantomSpec spec;
    sm_phantom_spec_default(&spec);
    spec.seed = 3;
    spec.level_first = sm_phantom_level_parse("L3");
    spec.level_last = LV_S1;
    spec.dims[0] = spec.dims[1] = 96;
    spec.dims[2] = 0;
    spec.pixel_mm = 1.0;
    spec.slice_mm = 2.0;
    SmError *err = NULL;
    SmPhantom *ph = NULL;
    SmSpineSeg *seg = NULL;
    assert_true(sm_test_phantom_segment(&err, &spec, &ph, &seg));
    bool sacrum = false;
    for (size_t q = 0; q < seg->anchors.n; q++)
        sacrum |= !strncmp(seg->anchors.items[q], "sacrum", 6);
    assert_true(sacrum);
    SmTestLevelScore sc[SM_PHANTOM_N_LEVELS];
    assert_true(sm_test_seg_score(ph, seg, sc));
    for (size_t q = 0; q < ph->n_vertebrae; q++) {
        fprintf(stderr, "  %s -> %s centroid %.2f mm body Dice %.3f\n", sc[q].name,
                sc[q].best_label ? sm_seg_level_name(sc[q].best_label) : "-",
                sc[q].centroid_mm, sc[q].body_dice);
        assert_true(sc[q].named);
        assert_true(sc[q].centroid_mm <= CENTROID_MM);
        /* the S1 body too (its footprint measured: 0.897 before, held to 0.85 then) */
        assert_true(sc[q].body_dice >= BODY_DICE);
    }
    sm_seg_spine_destroy(seg);
    sm_phantom_destroy(ph);
}


/* --notes: where a body below the Dice target disagrees with the truth body: voxels of the
 * truth body only and of the predicted body only, with their mean offsets (LPS mm) from the
 * truth body centroid. The predicted body is that of label pred, the label holding most of
 * the truth vertebra (as scored: a misnamed level is compared with its own prediction). */
static void body_miss_detail(const SmPhantom *ph, const SmSpineSeg *seg, int verse, int pred)
{
    const size_t *d = ph->ct->dims;
    const uint8_t *tl = ph->labels->data, *ts = ph->subregions->data;
    const uint8_t *pl = seg->labels->data, *ps = seg->subregions->data;
    double sum[3][3] = {{0}};
    size_t cnt[3] = {0};
    size_t v = 0;
    for (size_t k = 0; k < d[2]; k++)
        for (size_t j = 0; j < d[1]; j++)
            for (size_t i = 0; i < d[0]; i++, v++) {
                bool tb = tl[v] == verse && ts[v] == SM_PHANTOM_SUB_BODY;
                bool pb = pl[v] == pred && ps[v] == SM_SUB_BODY;
                int c = tb && pb ? 0 : tb ? 1 : pb ? 2 : -1;
                if (c < 0)
                    continue;
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3];
                sm_volume_index_to_lps(ph->ct, ijk, p);
                cnt[c]++;
                for (int a = 0; a < 3; a++)
                    sum[c][a] += p[a];
            }
    double tc[3];
    for (int a = 0; a < 3; a++)
        tc[a] = (sum[0][a] + sum[1][a]) / (double)(cnt[0] + cnt[1] ? cnt[0] + cnt[1] : 1);
    fprintf(stderr, "          truth body centroid LPS %.1f %.1f %.1f\n", tc[0], tc[1], tc[2]);
    for (size_t q = 0; q < ph->n_vertebrae; q++) {
        const SmPhantomVertebra *tv = &ph->vertebrae[q];
        if (tv->verse_id != verse || !tv->has_body)
            continue;
        fprintf(stderr, "          truth axis (%.2f %.2f %.2f) posterior (%.2f %.2f %.2f), end plates "
                "(%.1f %.1f %.1f) (%.1f %.1f %.1f), height %.1f, AP depth %.1f, width %.1f mm\n",
                tv->axis_superior[0], tv->axis_superior[1], tv->axis_superior[2],
                tv->axis_posterior[0], tv->axis_posterior[1], tv->axis_posterior[2],
                tv->endplate_superior[0], tv->endplate_superior[1], tv->endplate_superior[2],
                tv->endplate_inferior[0], tv->endplate_inferior[1], tv->endplate_inferior[2],
                tv->height_middle_mm, tv->ap_depth_mm, tv->width_mm);
    }
    if (getenv("SWEEP_MAP")) {
        /* projection along z of truth-only (t), pred-only (p), both (#) in 2 mm bins */
        enum { W = 41 };
        static size_t cnt_map[3][W][W];
        memset(cnt_map, 0, sizeof cnt_map);
        size_t v2 = 0;
        for (size_t k = 0; k < d[2]; k++)
            for (size_t j = 0; j < d[1]; j++)
                for (size_t i = 0; i < d[0]; i++, v2++) {
                    bool tb = tl[v2] == verse && ts[v2] == SM_PHANTOM_SUB_BODY;
                    bool pb = pl[v2] == pred && ps[v2] == SM_SUB_BODY;
                    int c = tb && pb ? 0 : tb ? 1 : pb ? 2 : -1;
                    if (c < 0)
                        continue;
                    double ijk[3] = {(double)i, (double)j, (double)k}, p[3];
                    sm_volume_index_to_lps(ph->ct, ijk, p);
                    long bx = lround((p[0] - tc[0]) / 2.0) + W / 2, by = lround((p[1] - tc[1]) / 2.0) + W / 2;
                    if (bx < 0 || by < 0 || bx >= W || by >= W)
                        continue;
                    cnt_map[c][by][bx]++;
                }
        for (int by = 0; by < W; by++) {
            fprintf(stderr, "          ");
            for (int bx = W - 1; bx >= 0; bx--) {
                size_t a = cnt_map[0][by][bx], t = cnt_map[1][by][bx], q = cnt_map[2][by][bx];
                fputc(q > a && q > t ? 'p' : t > a ? 't' : a ? '#' : '.', stderr);
            }
            fputc('\n', stderr);
        }
    }
    {
        /* what the truth holds where the predicted body is extra: (label, sub-region) */
        static size_t what[32][16];
        memset(what, 0, sizeof what);
        size_t v3 = 0;
        for (size_t k = 0; k < d[2]; k++)
            for (size_t j = 0; j < d[1]; j++)
                for (size_t i = 0; i < d[0]; i++, v3++) {
                    bool tb = tl[v3] == verse && ts[v3] == SM_PHANTOM_SUB_BODY;
                    bool pb = pl[v3] == pred && ps[v3] == SM_SUB_BODY;
                    if (pb && !tb)
                        what[tl[v3] & 31][ts[v3] & 15]++;
                }
        fprintf(stderr, "          pred-only voxels by truth (label/sub):");
        for (int a = 0; a < 32; a++)
            for (int b = 0; b < 16; b++)
                if (what[a][b])
                    fprintf(stderr, " %d/%d:%zu", a, b, what[a][b]);
        fprintf(stderr, "\n");
    }
    static const char *const nm[3] = {"both", "truth only", "pred only"};
    for (int c = 0; c < 3; c++)
        fprintf(stderr, "          %-10s %7zu  mean offset LPS %+6.1f %+6.1f %+6.1f mm\n", nm[c],
                cnt[c], cnt[c] ? sum[c][0] / (double)cnt[c] - tc[0] : 0,
                cnt[c] ? sum[c][1] / (double)cnt[c] - tc[1] : 0,
                cnt[c] ? sum[c][2] / (double)cnt[c] - tc[2] : 0);
}

static void test_sweep(void **state)
{
    (void)state;
    int misses = 0, anchored_cases = 0, named_cases = 0, n_run = 0;
    int sacrum_cases = 0, sacrum_ok = 0; /* windows ending at S1: sacrum anchor, all named */
    /* windows the segmentation anchored (on any anchor, whether or not the truth has one in
     * view) but named wrong: a wrong name given with an anchor's confidence */
    int wrong_anchored = 0;
    char missbuf[4096];
    size_t mused = 0;
    missbuf[0] = 0;
    fprintf(stderr,
            "case seed  window        levels   pos oblique  pixel slice dims         anchors(truth/used) "
            "named  worst-centroid      worst-body-Dice   S1-body  time\n");
    for (int c = 0; c < g_cases; c++) {
        if (g_only >= 0 && c != g_only)
            continue;
        Case cs;
        case_draw(c, &cs);
        if (g_window >= 0 && cs.window != g_window)
            continue;
        n_run++;
        SmPhantomSpec *sp = &cs.spec;
        double t0 = now_s();
        SmError *err = NULL;
        SmPhantom *ph = NULL;
        assert_true(sm_phantom_generate(&err, sp, &ph));
        if (g_write_dir) {
            char path[1024];
            snprintf(path, sizeof path, "%s/case_%d", g_write_dir, c);
            if (!sm_phantom_write(&err, ph, path)) {
                fprintf(stderr, "case %d: %s\n", c, err->message);
                sm_error_destroy(err);
                err = NULL;
            }
        }
        SmSegOptions o = {2, false, NULL, 0};
        SmSpineSeg *seg = NULL;
        if (!sm_seg_spine_run(&err, ph->ct, &o, &seg)) {
            fprintf(stderr, "case %d: segmentation failed: %s\n", c, err ? err->message : "?");
            sm_error_destroy(err);
            err = NULL;
        }
        if (g_write_dir && seg) {
            /* the predicted label and sub-region maps next to the truth (and the CT) */
            char path[1024];
            const struct { const char *name; const SmVolume *vol; } outv[3] = {
                {"pred_labels", seg->labels}, {"pred_subregions", seg->subregions},
                {"ct", ph->ct}};
            for (int q = 0; q < 3; q++) {
                snprintf(path, sizeof path, "%s/case_%d/%s.nii.gz", g_write_dir, c, outv[q].name);
                if (!sm_io_nifti_save(&err, outv[q].vol, path)) {
                    fprintf(stderr, "case %d: %s\n", c, err->message);
                    sm_error_destroy(err);
                    err = NULL;
                }
            }
        }
        for (size_t q = 0; g_verbose && seg && q < seg->notes.n; q++)
            fprintf(stderr, "note: %s\n", seg->notes.items[q]);
        if (g_qc_dir && seg) {
            uint8_t *rgb = NULL;
            size_t w = 0, h = 0;
            char path[1024];
            snprintf(path, sizeof path, "%s/sweep_%d.png", g_qc_dir, c);
            if (!sm_seg_qc_sagittal(&err, ph->ct, seg, &rgb, &w, &h) ||
                !sm_io_png_save(&err, path, rgb, w, h, 3)) {
                sm_error_destroy(err);
                err = NULL;
            }
            free(rgb);
        }
        SmTestLevelScore sc[SM_PHANTOM_N_LEVELS];
        bool ok_score = seg && sm_test_seg_score(ph, seg, sc);
        char at[32], au[48];
        int n_truth_anchors = anchors_in_view(sp, at, sizeof at);
        if (seg) anchors_used(seg, au, sizeof au);
        else snprintf(au, sizeof au, "-");
        int named = 0, scored = 0;
        double worst_c = 0, worst_d = 1, s1_dice = NAN;
        const char *wc = "-", *wd = "-";
        for (size_t q = 0; ok_score && q < ph->n_vertebrae; q++) {
            const SmTestLevelScore *l = &sc[q];
            if (!l->has_body)
                continue; /* C1 */
            named += l->named;
            if (l->verse_id == SM_VERSE_SACRUM)
                s1_dice = l->body_dice;
            if (!l->whole)
                continue;
            scored++;
            double ce = isnan(l->centroid_mm) ? INFINITY : l->centroid_mm;
            if (ce >= worst_c) { worst_c = ce; wc = l->name; }
            if (l->body_dice <= worst_d) { worst_d = l->body_dice; wd = l->name; }
        }
        int with_body = 0;
        for (size_t q = 0; q < ph->n_vertebrae; q++)
            with_body += ph->vertebrae[q].has_body;
        char lv[16], dims[48], obl[32];
        snprintf(lv, sizeof lv, "%s-%s", sm_phantom_level_name(sp->level_first),
                 sm_phantom_level_name(sp->level_last));
        snprintf(dims, sizeof dims, "%zux%zux%zu", ph->ct->dims[0], ph->ct->dims[1],
                 ph->ct->dims[2]);
        if (sp->oblique_deg != 0)
            snprintf(obl, sizeof obl, "%+.1f%s", sp->oblique_deg,
                     sp->oblique_axis == 0 ? "LR" : sp->oblique_axis == 1 ? "AP" : "SI");
        else
            snprintf(obl, sizeof obl, "0");
        char pos[16];
        snprintf(pos, sizeof pos, "%s%s", sp->patient_position,
                 !strcmp(sp->patient_position, "FFS") && sp->ffs_standard_axes ? "s" : "");
        char nm[32], cbuf[48], dbuf[48], s1b[16];
        snprintf(nm, sizeof nm, "%d/%d", named, with_body);
        snprintf(cbuf, sizeof cbuf, "%.2f mm (%s)", worst_c, wc);
        snprintf(dbuf, sizeof dbuf, "%.3f (%s)", worst_d, wd);
        if (isnan(s1_dice)) snprintf(s1b, sizeof s1b, "-");
        else snprintf(s1b, sizeof s1b, "%.3f", s1_dice);
        fprintf(stderr, "%4d %5llu %-13s %-8s %-4s %-8s %.2f  %.2f  %-12s %-8s/%-10s %-6s %-19s %-17s %-8s %.1f s%s\n",
                c, (unsigned long long)sp->seed, WIN_NAME[cs.window], lv, pos, obl, sp->pixel_mm,
                sp->slice_mm, dims, at, au, nm, cbuf, dbuf, s1b, now_s() - t0,
                cs.dropped ? " (levels dropped for size)" : "");
        /* per-level detail */
        for (size_t q = 0; ok_score && q < ph->n_vertebrae; q++) {
            const SmTestLevelScore *l = &sc[q];
            if (!l->has_body)
                continue;
            fprintf(stderr, "        %-3s -> %-3s %s centroid %5.2f mm  body Dice %.3f  conf %.2f%s\n",
                    l->name, l->best_label ? sm_seg_level_name(l->best_label) : "-",
                    l->named ? "ok " : "BAD", l->centroid_mm, l->body_dice, l->confidence,
                    l->whole ? "" : "  (cut by the grid: not scored)");
            if (g_verbose && (l->body_dice < BODY_DICE || getenv("SWEEP_DETAIL")))
                body_miss_detail(ph, seg, l->verse_id, l->best_label);
        }
        /* the sacrum in view must anchor (whatever the field of view cuts off) */
        if (sp->level_last == LV_S1) {
            sacrum_cases++;
            bool used = false;
            for (size_t q = 0; seg && q < seg->anchors.n; q++)
                used |= !strncmp(seg->anchors.items[q], "sacrum", 6);
            if (used && named == with_body)
                sacrum_ok++;
            else
                fprintf(stderr, "case %d: sacrum in view but %s\n", c,
                        used ? "not every level named" : "not used as an anchor");
        }
        bool pipeline_anchored = seg && seg->anchors.n > 0 &&
                                 strncmp(seg->anchors.items[0], "none", 4) != 0;
        if (ok_score && pipeline_anchored && named != with_body) {
            wrong_anchored++;
            fprintf(stderr, "case %d: anchored on %s but named %d/%d\n", c, au, named, with_body);
        }
        /* thresholds */
        bool case_ok = seg && ok_score;
        if (n_truth_anchors > 0) {
            anchored_cases++;
            if (named != with_body) case_ok = false;
            else named_cases++;
        }
        if (scored > 0 && (worst_c > CENTROID_MM || worst_d < BODY_DICE))
            case_ok = false;
        if (!case_ok) {
            misses++;
            if (mused + 160 < sizeof missbuf)
                mused += (size_t)snprintf(missbuf + mused, sizeof missbuf - mused,
                                          "  case %d (%s %s): named %s%s, worst centroid %s, "
                                          "worst body Dice %s\n", c, WIN_NAME[cs.window], lv, nm,
                                          n_truth_anchors ? "" : " (no anchor in view)", cbuf,
                                          dbuf);
        }
        sm_seg_spine_destroy(seg);
        sm_phantom_destroy(ph);
    }
    fprintf(stderr, "sweep: %d cases, %d with an anchor in view, %d of them named right; "
            "%d cases miss a threshold; %d of %d with the sacrum in view anchored on it and "
            "named right; %d anchored windows named wrong\n%s", n_run, anchored_cases,
            named_cases, misses, sacrum_ok, sacrum_cases, wrong_anchored, missbuf);
    /* always: whenever the sacrum is in view it anchors and every level is named, and no
     * window is named wrong from an anchor (a wrong anchor is worse than none) */
    assert_int_equal(sacrum_ok, sacrum_cases);
    assert_int_equal(wrong_anchored, 0);
    /* --targets: the issue's "must show" on every case (see docs/segmentation.md) */
    if (g_targets)
        assert_int_equal(misses, 0);
    /* --named: every level named right whenever an anchor is in view */
    if (g_named)
        assert_int_equal(named_cases, anchored_cases);
}

int main(int argc, char **argv)
{
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--cases") && a + 1 < argc)
            g_cases = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--seed") && a + 1 < argc)
            g_base_seed = strtoull(argv[++a], NULL, 10);
        else if (!strcmp(argv[a], "--case") && a + 1 < argc)
            g_only = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--qc") && a + 1 < argc)
            g_qc_dir = argv[++a];
        else if (!strcmp(argv[a], "--write") && a + 1 < argc)
            g_write_dir = argv[++a];
        else if (!strcmp(argv[a], "--targets"))
            g_targets = true;
        else if (!strcmp(argv[a], "--notes"))
            g_verbose = true;
        else if (!strcmp(argv[a], "--named"))
            g_named = true;
        else if (!strcmp(argv[a], "--window") && a + 1 < argc) {
            const char *w = argv[++a];
            for (int q = 0; q < 4; q++)
                if (!strcmp(w, WIN_NAME[q]))
                    g_window = q;
            if (g_window < 0) {
                fprintf(stderr, "--window: one of cervical, thoracic, lumbar, thoracolumbar\n");
                return 2;
            }
        }
    }
    if (g_targets || g_named || g_window >= 0 || g_only >= 0) {
        const struct CMUnitTest targets[] = {cmocka_unit_test(test_sweep)};
        return cmocka_run_group_tests_name("issue targets on random phantoms", targets, NULL,
                                           NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rib_head_gap_orientation),
        cmocka_unit_test(test_tiny_fov_sacrum),
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests_name("randomised phantom sweep", tests, NULL, NULL);
}
