/* Tests of the canal profile and Bilsky ESCC grading (metrics/escc.c, metrics/canal.c) and
 * of the phantom's epidural tumour (pipeline/phantom_tumour.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escc.h"
#include "phantom.h"
#include "phantom_tumour.h"
#include "sm_io.h"
#include "sm_metrics.h"
#include "sm_segment.h"

/* ------------------------------------------------------------------ synthetic section */

/* A straight canal along z on a 0.5 x 0.6 x 1.0 mm grid: canal ellipse 9 x 7.5 mm semi-axes
 * (fat), sac 7 x 6 (CSF 10 HU), cord 4 x 3 (35 HU), three "vertebrae" stacked in z with a
 * body block in front. Areas known by hand: canal pi*9*7.5 = 212.1, sac pi*7*6 = 131.9,
 * cord pi*4*3 = 37.7 mm^2. */
static void make_section(SmVolume **ct, SmVolume **lab, SmVolume **sub, bool tumour)
{
    size_t dims[3] = {81, 71, 61};
    *ct = sm_volume_create(NULL, dims, SM_VOXEL_I16);
    *lab = sm_volume_create(NULL, dims, SM_VOXEL_U8);
    *sub = sm_volume_create(NULL, dims, SM_VOXEL_U8);
    assert_non_null(*ct);
    double dir[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, sp[3] = {0.5, 0.6, 1.0};
    double org[3] = {-20, -25, -30};
    sm_volume_set_geometry(*ct, dir, sp, org);
    sm_volume_set_geometry(*lab, dir, sp, org);
    sm_volume_set_geometry(*sub, dir, sp, org);
    int16_t *c = (*ct)->data;
    uint8_t *l = (*lab)->data, *s = (*sub)->data;
    for (size_t k = 0; k < dims[2]; k++)
        for (size_t j = 0; j < dims[1]; j++)
            for (size_t i = 0; i < dims[0]; i++) {
                size_t idx = i + dims[0] * (j + dims[1] * k);
                double x = -20 + 0.5 * (double)i, y = -25 + 0.6 * (double)j, z = -30 + (double)k;
                double hu = 400; /* bone around the canal */
                int code = 0;
                double e = (x / 9) * (x / 9) + (y / 7.5) * (y / 7.5);
                if (e <= 1) {
                    code = 7;
                    hu = -100;
                    double es = (x / 7) * (x / 7) + ((y + 0.5) / 6) * ((y + 0.5) / 6);
                    if (es <= 1)
                        hu = 10;
                    double ek = (x / 4) * (x / 4) + ((y + 0.5) / 3) * ((y + 0.5) / 3);
                    if (ek <= 1)
                        hu = 35;
                    if (tumour && z > -5 && z < 5 && y < -4.8)
                        hu = 60; /* anterior mass of the middle level: 2.7 mm thick, 1.3 mm of CSF left before the cord */
                } else if (y < -9 && fabs(x) < 14) {
                    code = 1; /* body */
                }
                if (x < -17 || x > 17)
                    hu = -100; /* a strip of fat: the scan's fat peak */
                c[idx] = (int16_t)hu;
                s[idx] = (uint8_t)code;
                if (code == 1 || (e > 1 && hu == 400))
                    l[idx] = (uint8_t)(z < -10 ? 20 : (z < 10 ? 21 : 22));
            }
}

static void centreline(double (*cl)[3], size_t n, double z0, double z1)
{
    for (size_t q = 0; q < n; q++) {
        cl[q][0] = 0;
        cl[q][1] = 0;
        cl[q][2] = z1 - (z1 - z0) * (double)q / (double)(n - 1);
    }
}

static void test_section_areas(void **state)
{
    (void)state;
    SmVolume *ct, *lab, *sub;
    make_section(&ct, &lab, &sub, false);
    double cl[50][3];
    centreline(cl, 50, -29, 29);
    int levels[3] = {20, 21, 22};
    SmEsccResult *res = NULL;
    SmError *err = NULL;
    assert_true(sm_escc_run(&err, ct, lab, sub, cl, 50, levels, 3, NULL, 1, &res));
    for (size_t i = 0; i < res->notes.n; i++)
        print_message("note: %s\n", res->notes.items[i]);
    for (size_t i = 0; i < 3; i++) {
        const SmCanalLevel *L = &res->levels[i];
        print_message("section level %zu: canal %.1f sac %.1f cord %.1f csf %.1f fat %.1f\n", i,
                      L->canal_area_mm2, L->sac_area_mm2, L->cord_area_mm2, L->csf_area_mm2,
                      L->fat_area_mm2);
        assert_true(L->in_view);
        /* canal, sac and cord areas against the hand values (resampling + partial volume) */
        assert_true(fabs(L->canal_area_mm2 - M_PI * 9 * 7.5) < 0.04 * M_PI * 9 * 7.5);
        /* the fat layer next to the wall is thin here (1 mm): the 0.8 mm wall ring takes its
         * values from inside, so the sac reads ~0.3 mm larger all round (+9 %) */
        assert_true(fabs(L->sac_area_mm2 - M_PI * 7 * 6) < 0.12 * M_PI * 7 * 6);
        assert_true(fabs(L->cord_area_mm2 - M_PI * 4 * 3) < 0.15 * M_PI * 4 * 3);
        assert_int_equal(L->grade, SM_ESCC_0);
        assert_false(L->below_conus);
    }
    assert_int_equal(res->worst_grade, SM_ESCC_0);
    /* QC picture */
    uint8_t *rgb = NULL;
    size_t w = 0, h = 0;
    assert_true(sm_escc_qc_axial(&err, res, 1, 3, &rgb, &w, &h));
    assert_int_equal(w, 3 * SM_ESCC_PLANE_N);
    assert_int_equal(h, 3 * SM_ESCC_PLANE_N);
    free(rgb);
    assert_false(sm_escc_qc_axial(&err, res, 3, 3, &rgb, &w, &h));
    assert_int_equal(err->code, SM_ERR_USAGE);
    sm_error_destroy(err);
    sm_escc_destroy(res);
    /* an anterior mass 2.7 mm deep whose front stays 1.3 mm from the cord: 1b */
    sm_volume_destroy(ct);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);
    make_section(&ct, &lab, &sub, true);
    assert_true(sm_escc_run(NULL, ct, lab, sub, cl, 50, levels, 3, NULL, 2, &res));
    const SmCanalLevel *L = &res->levels[1];
    /* mass: the part of the canal ellipse with y < -4.8: 9*7.5*(acos(h)-h*sqrt(1-h^2)), h=4.8/7.5 */
    double hh = 4.8 / 7.5, seg = 9 * 7.5 * (acos(hh) - hh * sqrt(1 - hh * hh));
    print_message("synthetic mass: %.1f mm2 measured, %.1f mm2 true, grade %s\n",
                  L->tumour_area_mm2, seg, sm_escc_grade_name(L->grade));
    assert_true(fabs(L->tumour_area_mm2 - seg) < 0.25 * seg);
    assert_int_equal(L->position, SM_ESCC_POS_ANTERIOR);
    assert_int_equal(L->grade, SM_ESCC_1B);
    assert_int_equal(res->levels[0].grade, SM_ESCC_0);
    sm_escc_destroy(res);
    sm_volume_destroy(ct);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);
}

static void test_bad_args(void **state)
{
    (void)state;
    SmError *err = NULL;
    SmEsccResult *res = NULL;
    assert_false(sm_escc_run(&err, NULL, NULL, NULL, NULL, 0, NULL, 0, NULL, 1, &res));
    assert_int_equal(err->code, SM_ERR_USAGE);
    assert_null(res);
    sm_error_destroy(err);
    assert_string_equal(sm_escc_grade_name(SM_ESCC_1C), "1c");
    assert_null(sm_escc_grade_name(SM_ESCC_NONE));
    assert_int_equal(sm_escc_grade_parse("2"), SM_ESCC_2);
    assert_int_equal(sm_escc_grade_parse("4"), SM_ESCC_NONE);
    SmPhantomTumourSpec sp[4];
    size_t n = 0;
    err = NULL;
    assert_true(sm_phantom_tumour_parse(&err, "[{\"level\":\"T11\",\"position\":\"left\",\"grade\":\"1c\"}]",
                                        sp, 4, &n));
    assert_int_equal(n, 1);
    assert_int_equal(sp[0].level, sm_phantom_level_parse("T11"));
    assert_int_equal(sp[0].position, SM_PHANTOM_EPI_LEFT);
    assert_int_equal(sp[0].grade, SM_PHANTOM_ESCC_1C);
    assert_false(sm_phantom_tumour_parse(&err, "[{\"level\":\"T11\",\"grade\":\"4\",\"position\":\"left\"}]",
                                         sp, 4, &n));
    assert_int_equal(err->code, SM_ERR_FORMAT);
    assert_non_null(strstr(err->message, "grade"));
    sm_error_destroy(err);
}

/* ------------------------------------------------------------------ phantoms */

/* Runs the grader on a phantom with its truth labels and a centreline through the truth
 * canal centres (1 mm steps). */
static SmEsccResult *grade_phantom(const SmPhantom *ph, int threads)
{
    size_t nv = ph->n_vertebrae;
    size_t ncl = 0;
    double (*cl)[3] = malloc(sizeof *cl * 4000);
    assert_non_null(cl);
    for (size_t v = 0; v + 1 < nv; v++) {
        const double *a = ph->vertebrae[v].canal_center, *b = ph->vertebrae[v + 1].canal_center;
        double d = sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                        (a[2] - b[2]) * (a[2] - b[2]));
        int steps = (int)ceil(d);
        for (int s = 0; s < steps && ncl < 4000; s++, ncl++)
            for (int e = 0; e < 3; e++)
                cl[ncl][e] = a[e] + (b[e] - a[e]) * s / steps;
    }
    int *lv = malloc(sizeof *lv * nv);
    for (size_t v = 0; v < nv; v++)
        lv[v] = ph->vertebrae[v].verse_id;
    SmEsccResult *res = NULL;
    SmError *err = NULL;
    bool ok = sm_escc_run(&err, ph->ct, ph->labels, ph->subregions, (const double(*)[3])cl, ncl,
                          lv, nv, NULL, threads, &res);
    if (!ok)
        print_message("escc: %s\n", err ? err->message : "?");
    assert_true(ok);
    free(cl);
    free(lv);
    return res;
}

static int grade_of_truth(int g) { return g; } /* SM_PHANTOM_ESCC_* == SmEsccGrade */

static void test_phantom_grades(void **state)
{
    (void)state;
    int conf[6][7] = {{0}}; /* [true 0..5][measured 0..5, 6 = not graded] */
    size_t n_cauda_ok = 0;
    size_t n_graded = 0, exact = 0, within1 = 0, group_ok = 0, false_pos = 0, n_clean = 0;
    const char *ranges[] = {"T10-S1", "T8-L3", "T3-T12", "T11-L5"};
    const int n_ph = 24;
    for (int r = 0; r < n_ph; r++) {
        SmPhantomSpec spec;
        sm_phantom_spec_default(&spec);
        spec.seed = 100 + (uint64_t)r;
        sm_phantom_levels_parse(ranges[r % 4], &spec.level_first, &spec.level_last);
        spec.noise_sigma_hu = 5 + 25.0 * (r % 4) / 3.0;      /* 5 .. 30 */
        spec.slice_mm = 1.0 + (double)(r % 3);               /* 1, 2, 3 */
        spec.contrast = r % 2 == 1;
        spec.dims[2] = 0;
        spec.pixel_mm = r % 5 == 0 ? 0.7 : 0.9;
        if (r % 3 == 2) {
            spec.thoracic_kyphosis_deg = 55;
            spec.lumbar_lordosis_deg = 30;
        }
        SmPhantom *ph = NULL;
        SmError *err = NULL;
        assert_true(sm_phantom_generate(&err, &spec, &ph));
        SmPhantomTumourSpec ts[8];
        SmPhantomTumourTruth tt[8];
        size_t nt = sm_phantom_tumour_randomize(ph, 7 + (uint64_t)r * 31, 4, ts);
        if (!sm_phantom_tumour_apply(&err, ph, ts, nt, tt)) {
            print_message("apply: %s\n", err->message);
            fail();
        }
        SmEsccResult *res = grade_phantom(ph, 2);
        print_message("ph%d sigma %.0f slice %.0f contrast %d: %s | %s\n", r, spec.noise_sigma_hu,
                      spec.slice_mm, spec.contrast, res->notes.n > 0 ? res->notes.items[0] : "",
                      res->notes.n > 1 ? res->notes.items[1] : "");
        for (size_t v = 0; v < ph->n_vertebrae; v++) {
            int lvl = ph->vertebrae[v].level;
            int truth = 0;
            const SmPhantomTumourTruth *T = NULL;
            for (size_t q = 0; q < nt; q++)
                if (ts[q].level == lvl) {
                    truth = grade_of_truth(ts[q].grade);
                    T = &tt[q];
                }
            const SmCanalLevel *L = &res->levels[v];
            if (lvl == SM_PHANTOM_LEVEL_S1)
                continue; /* sacral canal: not graded by the phantom */
            int m = L->grade == SM_ESCC_NONE ? 6 : (int)L->grade;
            conf[truth][m]++;
            /* anatomy, independent of the image: the cord runs down to T11 at least */
            assert_int_equal(L->cord_expected, L->verse_label >= 1 && L->verse_label <= 18);
            if (truth == 0) {
                n_clean++;
                if (m != 6 && m > 0)
                    false_pos++;
            } else {
                n_graded++;
                if (m == truth)
                    exact++;
                if (m != 6 && abs(m - truth) <= 1)
                    within1++;
                bool hi_t = truth >= SM_ESCC_2, hi_m = m != 6 && m >= SM_ESCC_2;
                if (hi_t == hi_m)
                    group_ok++;
                if (L->below_conus == T->below_conus)
                    n_cauda_ok++;
                else
                    print_message("ph%d %s: cauda truth %d measured %d\n", r,
                                  sm_phantom_level_name(lvl), T->below_conus, L->below_conus);
            }
            if (getenv("SM_ESCC_QC_DIR") && truth > 0) {
                uint8_t *rgb = NULL;
                size_t qw = 0, qh = 0;
                char path[1200];
                snprintf(path, sizeof path, "%s/ph%d_%s_%s.png", getenv("SM_ESCC_QC_DIR"), r,
                         sm_phantom_level_name(lvl), sm_escc_grade_name((SmEsccGrade)truth));
                assert_true(sm_escc_qc_axial(NULL, res, v, 3, &rgb, &qw, &qh));
                assert_true(sm_io_png_save(NULL, path, rgb, qw, qh, 3));
                free(rgb);
            }
            if (truth > 0 || (m != 6 && m > 0))
                print_message("ph%d %s %-15s truth %-2s measured %-2s  conf %.2f  sac %.0f/%.0f "
                              "csf %.0f/%.0f cord %.0f/%.0f tum %.0f (true sac %.0f/%.0f csf %.0f/%.0f "
                              "tum %.0f%s) gap %.1f dr %.2f\n",
                              r, sm_phantom_level_name(lvl),
                              T ? sm_phantom_tumour_position_name(T->position) : "-",
                              T ? sm_phantom_tumour_grade_name(T->grade) : "0",
                              m == 6 ? "-" : sm_escc_grade_name(L->grade), L->confidence,
                              L->sac_area_mm2, L->ref_sac_area_mm2, L->csf_area_mm2,
                              L->ref_csf_area_mm2, L->cord_area_mm2, L->ref_cord_area_mm2,
                              L->tumour_area_mm2, T ? T->sac_area_mm2 : NAN,
                              T ? T->sac_area_before_mm2 : NAN, T ? T->csf_area_mm2 : NAN,
                              T ? T->csf_area_before_mm2 : NAN, T ? T->tumour_area_mm2 : NAN,
                              T && T->below_conus ? ", cauda" : "", L->cord_gap_mm,
                              L->sac_diameter_ratio);
        }
        sm_escc_destroy(res);
        sm_phantom_destroy(ph);
    }
    print_message("confusion matrix (rows truth 0 1a 1b 1c 2 3; columns measured 0 1a 1b 1c 2 3 -):\n");
    for (int t = 0; t < 6; t++)
        print_message("  %-2s: %4d %4d %4d %4d %4d %4d %4d\n", t ? sm_escc_grade_name((SmEsccGrade)t) : "0",
                      conf[t][0], conf[t][1], conf[t][2], conf[t][3], conf[t][4], conf[t][5], conf[t][6]);
    print_message("graded levels %zu: exact %.1f%%, within one %.1f%%, low/high %.1f%%; "
                  "clean levels %zu, false positives %zu\n",
                  n_graded, 100.0 * (double)exact / (double)n_graded,
                  100.0 * (double)within1 / (double)n_graded, 100.0 * (double)group_ok / (double)n_graded,
                  n_clean, false_pos);
    print_message("cord / cauda equina level right at %zu of %zu graded levels\n", n_cauda_ok,
                  n_graded);
    assert_true(n_cauda_ok * 100 >= 90 * n_graded);
    assert_true(n_graded >= 20);
    assert_true(exact * 100 >= 80 * n_graded);
    assert_true(within1 * 100 >= 95 * n_graded);
    assert_true(group_ok * 100 >= 95 * n_graded);
    assert_int_equal(false_pos, 0);
}

static void test_phantom_clean_and_threads(void **state)
{
    (void)state;
    const char *ranges[] = {"T10-S1", "T2-L2", "C3-T6"};
    for (int r = 0; r < 3; r++) {
        SmPhantomSpec spec;
        sm_phantom_spec_default(&spec);
        spec.seed = 900 + (uint64_t)r;
        sm_phantom_levels_parse(ranges[r], &spec.level_first, &spec.level_last);
        spec.noise_sigma_hu = r == 0 ? 30 : 15;
        spec.slice_mm = r == 1 ? 3.0 : 2.0;
        spec.dims[2] = 0;
        SmPhantom *ph = NULL;
        assert_true(sm_phantom_generate(NULL, &spec, &ph));
        SmEsccResult *a = grade_phantom(ph, 1), *b = grade_phantom(ph, 2);
        for (size_t v = 0; v < ph->n_vertebrae; v++) {
            const SmCanalLevel *A = &a->levels[v], *B = &b->levels[v];
            if (ph->vertebrae[v].level != SM_PHANTOM_LEVEL_S1 && A->grade > SM_ESCC_0)
                print_message("clean %s graded %s: %s\n", ph->vertebrae[v].name,
                              sm_escc_grade_name(A->grade), A->reasons.n > 1 ? A->reasons.items[1] : "");
            if (ph->vertebrae[v].level != SM_PHANTOM_LEVEL_S1)
                assert_true(A->grade <= SM_ESCC_0);
            /* identical at 1 and 2 threads */
            assert_int_equal(A->grade, B->grade);
            assert_memory_equal(A->classes, B->classes, sizeof A->classes);
            assert_memory_equal(A->hu, B->hu, sizeof A->hu);
            assert_true(A->canal_area_mm2 == B->canal_area_mm2 ||
                        (isnan(A->canal_area_mm2) && isnan(B->canal_area_mm2)));
            assert_true(A->sac_area_mm2 == B->sac_area_mm2 ||
                        (isnan(A->sac_area_mm2) && isnan(B->sac_area_mm2)));
            assert_true(A->confidence == B->confidence);
            /* canal area against the phantom truth (ellipse) where the canal is in view */
            if (A->in_view && ph->vertebrae[v].level != SM_PHANTOM_LEVEL_S1 && ph->vertebrae[v].level > 0)
                assert_true(fabs(A->canal_area_mm2 - ph->vertebrae[v].canal_area_mm2) <
                            0.15 * ph->vertebrae[v].canal_area_mm2);
        }
        sm_escc_destroy(a);
        sm_escc_destroy(b);
        sm_phantom_destroy(ph);
    }
}

/* ------------------------------------------------------------------ real CT */

static void test_real_ct(void **state)
{
    (void)state;
    char ctp[1024], labp[1024];
    snprintf(ctp, sizeof ctp, "%s/ct-totalseg-example/ct.nii.gz", SM_SHARED_DATA);
    snprintf(labp, sizeof labp, "%s/ct-totalseg-example/labels/total.nii.gz", SM_SHARED_DATA);
    FILE *f = fopen(ctp, "rb");
    if (!f) {
        print_message("real CT not found at %s: skipped\n", ctp);
        skip();
    }
    fclose(f);
    SmVolume *ct = NULL, *tot = NULL;
    SmError *err = NULL;
    assert_true(sm_io_nifti_load(&err, ctp, &ct));
    assert_true(sm_io_nifti_load(&err, labp, &tot));
    /* TotalSegmentator ids -> VerSe: 27 L5 .. 31 L1, 32 T12 .. 43 T1 */
    SmVolume *verse = sm_volume_create(&err, tot->dims, SM_VOXEL_U8);
    assert_non_null(verse);
    sm_volume_copy_geometry(verse, tot);
    uint8_t *vv = verse->data;
    size_t nvox = sm_volume_n_voxels(tot);
    for (size_t i = 0; i < nvox; i++) {
        int t = (int)sm_volume_get(tot, i % tot->dims[0], (i / tot->dims[0]) % tot->dims[1],
                                   i / (tot->dims[0] * tot->dims[1]));
        vv[i] = (uint8_t)(t >= 27 && t <= 31 ? 20 + (31 - t) : (t >= 32 && t <= 43 ? 19 - (t - 32) : 0));
    }
    SmGridMap map;
    SmVolume *verse_ct = verse;
    if (!sm_volume_same_grid(ct, verse, 0.05)) {
        assert_true(sm_volume_grid_match(ct, verse, 0.05, &map));
        verse_ct = sm_volume_reindex(&err, ct, verse, &map);
        assert_non_null(verse_ct);
    }
    SmSegOptions opt = {0};
    opt.threads = 2;
    SmSpineSeg *seg = NULL;
    if (!sm_seg_from_labels(&err, ct, verse_ct, &opt, &seg)) {
        print_message("sm_seg_from_labels: %s\n", err->message);
        fail();
    }
    int lv[32];
    size_t n = 0;
    for (size_t v = 0; v < seg->n_vertebrae && n < 32; v++)
        if (seg->vertebrae[v].verse_label != SM_VERSE_SACRUM)
            lv[n++] = seg->vertebrae[v].verse_label;
    SmEsccResult *a = NULL, *b = NULL;
    assert_true(sm_escc_run(&err, ct, seg->labels, seg->subregions, (const double(*)[3])seg->canal_lps,
                            seg->n_canal, lv, n, NULL, 1, &a));
    assert_true(sm_escc_run(&err, ct, seg->labels, seg->subregions, (const double(*)[3])seg->canal_lps,
                            seg->n_canal, lv, n, NULL, 2, &b));
    for (size_t i = 0; i < a->notes.n; i++)
        print_message("note: %s\n", a->notes.items[i]);
    size_t n_in = 0;
    for (size_t i = 0; i < n; i++) {
        const SmCanalLevel *A = &a->levels[i], *B = &b->levels[i];
        print_message("%-4s in view %d  grade %-2s conf %.2f  canal %.0f mm2  sac %.0f  csf %.0f  "
                      "dense %.0f  fat %.0f  tumour %.0f  %s\n",
                      sm_seg_level_name(A->verse_label), A->in_view,
                      A->grade == SM_ESCC_NONE ? "-" : sm_escc_grade_name(A->grade), A->confidence,
                      A->canal_area_mm2, A->sac_area_mm2, A->csf_area_mm2, A->cord_area_mm2,
                      A->fat_area_mm2, A->tumour_area_mm2,
                      A->reasons.n > 1 ? A->reasons.items[1] : "");
        if (getenv("SM_ESCC_QC_DIR") && A->in_view) {
            uint8_t *rgb = NULL;
            size_t qw = 0, qh = 0;
            char path[1200];
            snprintf(path, sizeof path, "%s/qc_axial_%s.png", getenv("SM_ESCC_QC_DIR"),
                     sm_seg_level_name(A->verse_label));
            assert_true(sm_escc_qc_axial(NULL, a, i, 4, &rgb, &qw, &qh));
            assert_true(sm_io_png_save(NULL, path, rgb, qw, qh, 3));
            free(rgb);
        }
        assert_true(A->grade == SM_ESCC_NONE || A->grade == SM_ESCC_0);
        assert_int_equal(A->grade, B->grade);
        assert_memory_equal(A->classes, B->classes, sizeof A->classes);
        assert_true(A->confidence == B->confidence);
        if (A->in_view) {
            n_in++;
            /* adult lumbar / lower thoracic bony canal: ~150-350 mm^2 (published CT
             * morphometry); the lower bound is the stenosis threshold ~100 mm^2 */
            if (A->verse_label >= SM_VERSE_L1 && A->verse_label <= SM_VERSE_L5) {
                assert_true(A->canal_area_mm2 > 100 && A->canal_area_mm2 < 450);
            }
        }
    }
    assert_true(n_in >= 3);
    sm_escc_destroy(a);
    sm_escc_destroy(b);
    sm_seg_spine_destroy(seg);
    seg = NULL;
    /* the same lesion-free scan through the built-in segmentation (as `spinemets run`):
     * without lesion flags every level in view is 0, none above; 1 and 2 threads agree */
    SmSegOptions so = {.threads = 2};
    assert_true(sm_seg_spine_run(&err, ct, &so, &seg));
    n = 0;
    for (size_t v = 0; v < seg->n_vertebrae && n < 32; v++)
        if (seg->vertebrae[v].verse_label != SM_VERSE_SACRUM)
            lv[n++] = seg->vertebrae[v].verse_label;
    assert_true(sm_escc_run(&err, ct, seg->labels, seg->subregions, (const double(*)[3])seg->canal_lps,
                            seg->n_canal, lv, n, NULL, 1, &a));
    assert_true(sm_escc_run(&err, ct, seg->labels, seg->subregions, (const double(*)[3])seg->canal_lps,
                            seg->n_canal, lv, n, NULL, 2, &b));
    n_in = 0;
    for (size_t i = 0; i < n; i++) {
        const SmCanalLevel *A = &a->levels[i], *B = &b->levels[i];
        print_message("built-in segmentation: %-4s grade %-2s canal %.0f mm2  tumour %.0f  %s\n",
                      sm_seg_level_name(A->verse_label),
                      A->grade == SM_ESCC_NONE ? "-" : sm_escc_grade_name(A->grade),
                      A->canal_area_mm2, A->tumour_area_mm2,
                      A->reasons.n > 1 ? A->reasons.items[1] : "");
        assert_true(A->grade == SM_ESCC_NONE || A->grade == SM_ESCC_0);
        assert_int_equal(A->grade, B->grade);
        assert_memory_equal(A->classes, B->classes, sizeof A->classes);
        n_in += A->in_view;
    }
    assert_true(n_in >= 3);
    sm_escc_destroy(a);
    sm_escc_destroy(b);
    sm_seg_spine_destroy(seg);
    if (verse_ct != verse)
        sm_volume_destroy(verse_ct);
    sm_volume_destroy(verse);
    sm_volume_destroy(tot);
    sm_volume_destroy(ct);
}

/* ------------------------------------------------------------------ product path */

/* Grades a phantom as `spinemets run` does: built-in segmentation (labels, sub-regions,
 * canal centreline), lesion metrics for the "lesion near the canal" flags, then
 * sm_escc_run. Levels are matched to the truth by VerSe id. Returns false when the
 * segmentation fails (counted, not graded). */
static bool grade_product(const SmPhantom *ph, int threads, SmSpineSeg **seg_out, SmEsccResult **res_out)
{
    SmError *err = NULL;
    SmSegOptions so = {.threads = threads};
    SmSpineSeg *seg = NULL;
    if (!sm_seg_spine_run(&err, ph->ct, &so, &seg)) {
        print_message("segmentation: %s\n", err ? err->message : "?");
        sm_error_destroy(err);
        return false;
    }
    size_t n = seg->n_vertebrae;
    int *ids = calloc(n ? n : 1, sizeof *ids);
    const char **names = calloc(n ? n : 1, sizeof *names);
    bool *near = calloc(n ? n : 1, sizeof *near);
    assert_true(ids && names && near);
    for (size_t i = 0; i < n; i++) {
        ids[i] = seg->vertebrae[i].verse_label;
        names[i] = seg->vertebrae[i].level;
    }
    SmMetricsInput in = {.ct = ph->ct, .labels = seg->labels, .subregions = seg->subregions,
                         .n_levels = n, .verse_labels = ids, .level_names = names, .threads = threads};
    SmSeriesMetrics *m = NULL;
    assert_true(sm_metrics_run(&err, &in, &m));
    for (size_t i = 0; i < n && i < m->n; i++)
        near[i] = m->v[i].lesion_class != SM_LESION_NONE || m->v[i].posterolateral != SM_SIDE_NONE;
    SmEsccResult *res = NULL;
    bool ok = seg->n_canal >= 3 &&
              sm_escc_run(&err, ph->ct, seg->labels,
                          getenv("SM_ESCC_E2E_TRUTH_SUB") ? ph->subregions : seg->subregions,
                          (const double(*)[3])seg->canal_lps,
                          seg->n_canal, ids, n, near, threads, &res);
    if (!ok)
        print_message("escc: %s\n", err ? err->message : "no centreline");
    sm_error_destroy(err);
    sm_metrics_destroy(m);
    free(ids);
    free((void *)names);
    free(near);
    if (!ok) {
        sm_seg_spine_destroy(seg);
        return false;
    }
    *seg_out = seg;
    *res_out = res;
    return true;
}

/* End-to-end evaluation through the built-in segmentation. The thresholds (exact
 * >= 80 %, within one >= 95 %, low/high >= 95 %, no grade above 0 on lesion-free levels)
 * are printed; they are asserted only once the product path meets them (see docs/escc.md
 * for the measured figures). What is asserted: the run succeeds and is identical at 1 and 2
 * threads on the first phantom. Development knobs (environment): SM_ESCC_E2E_N phantoms
 * (default 12), SM_ESCC_E2E_SEED another random draw of phantoms and tumours (default 0),
 * SM_ESCC_E2E_FIRST first phantom index, SM_ESCC_E2E_ONLY one phantom index, SM_ESCC_E2E_VERBOSE one more line per level (cord /
 * cauda, plane offset, deciding ratios), SM_ESCC_E2E_TRUTH_SUB the phantom's sub-regions
 * instead of the segmentation's (isolates the canal mask), SM_ESCC_QC_DIR QC pictures;
 * SM_ESCC_TEST_FILTER runs only the named tests. */
static bool g_targets; /* --targets */

static void test_product_path(void **state)
{
    (void)state;
    int conf[6][7] = {{0}};
    size_t n_graded = 0, exact = 0, within1 = 0, group_ok = 0, false_pos = 0, n_clean = 0;
    size_t n_fail = 0, n_missing = 0, n_renamed = 0;
    const char *ranges[] = {"T8-L3", "T10-S1", "T6-L2", "T11-L5"};
    int n_ph = getenv("SM_ESCC_E2E_N") ? atoi(getenv("SM_ESCC_E2E_N")) : 12;
    /* SM_ESCC_E2E_SEED: another random draw of phantoms and tumours (development checks);
     * --targets: the draws 4-7 of 24 phantoms each pooled (held out: no method choice was
     * made on them) */
    int seed_first = getenv("SM_ESCC_E2E_SEED") ? atoi(getenv("SM_ESCC_E2E_SEED")) : 0;
    int seed_last = seed_first;
    if (g_targets) {
        seed_first = 4;
        seed_last = 7;
        n_ph = 24;
    }
    int n_total = 0;
    for (int seed0 = seed_first; seed0 <= seed_last; seed0++) {
        int r_first = getenv("SM_ESCC_E2E_FIRST") ? atoi(getenv("SM_ESCC_E2E_FIRST")) : 0;
        /* SM_ESCC_E2E_ONLY: only this phantom index of the draw (development: QC of one miss) */
        int r_only = getenv("SM_ESCC_E2E_ONLY") ? atoi(getenv("SM_ESCC_E2E_ONLY")) : -1;
        for (int r = r_first; r < n_ph; r++) {
            if (r_only >= 0 && r != r_only)
                continue;
            n_total++;
            SmPhantomSpec spec;
            sm_phantom_spec_default(&spec);
            spec.seed = 300 + (uint64_t)r + (uint64_t)seed0 * 1000;
            sm_phantom_levels_parse(ranges[r % 4], &spec.level_first, &spec.level_last);
            spec.noise_sigma_hu = 5 + 25.0 * (r % 4) / 3.0;
            spec.slice_mm = 1.0 + (double)(r % 3);
            spec.contrast = r % 2 == 1;
            spec.dims[2] = 0;
            spec.pixel_mm = r % 5 == 0 ? 0.7 : 0.9;
            if (r % 3 == 2) {
                spec.thoracic_kyphosis_deg = 55;
                spec.lumbar_lordosis_deg = 30;
            }
            SmPhantom *ph = NULL;
            SmError *err = NULL;
            assert_true(sm_phantom_generate(&err, &spec, &ph));
            SmPhantomTumourSpec ts[8];
            SmPhantomTumourTruth tt[8];
            size_t nt = r == n_ph - 1 ? 0 : sm_phantom_tumour_randomize(ph, 11 + (uint64_t)r * 17 + (uint64_t)seed0 * 7919, 3, ts);
            if (nt > 0 && !sm_phantom_tumour_apply(&err, ph, ts, nt, tt)) {
                print_message("apply: %s\n", err->message);
                fail();
            }
            SmSpineSeg *seg = NULL;
            SmEsccResult *res = NULL;
            if (!grade_product(ph, 2, &seg, &res)) {
                n_fail++;
                sm_phantom_destroy(ph);
                continue;
            }
            if (r == 0 && seed0 == seed_first) { /* identical at 1 thread */
                SmSpineSeg *seg1 = NULL;
                SmEsccResult *res1 = NULL;
                assert_true(grade_product(ph, 1, &seg1, &res1));
                assert_int_equal(res1->n_levels, res->n_levels);
                for (size_t i = 0; i < res->n_levels; i++) {
                    assert_int_equal(res1->levels[i].grade, res->levels[i].grade);
                    assert_memory_equal(res1->levels[i].classes, res->levels[i].classes,
                                        sizeof res->levels[i].classes);
                }
                sm_escc_destroy(res1);
                sm_seg_spine_destroy(seg1);
            }
            if (getenv("SM_ESCC_E2E_WRITE")) { /* development: the phantom CT and labels */
                char path[700];
                snprintf(path, sizeof path, "%s/ph%d_ct.nii.gz", getenv("SM_ESCC_E2E_WRITE"), r);
                assert_true(sm_io_nifti_save(NULL, ph->ct, path));
                snprintf(path, sizeof path, "%s/ph%d_labels.nii.gz", getenv("SM_ESCC_E2E_WRITE"), r);
                assert_true(sm_io_nifti_save(NULL, seg->labels, path));
            }
            if (getenv("SM_ESCC_E2E_NOTES")) /* development: the segmentation's notes */
                for (size_t q = 0; q < seg->notes.n; q++)
                    print_message("e2e ph%d note: %s\n", r, seg->notes.items[q]);
            for (size_t v = 0; v < ph->n_vertebrae; v++) {
                int lvl = ph->vertebrae[v].level;
                if (lvl == SM_PHANTOM_LEVEL_S1)
                    continue;
                int truth = 0;
                const SmPhantomTumourTruth *T = NULL;
                for (size_t q = 0; q < nt; q++)
                    if (ts[q].level == lvl) {
                        truth = ts[q].grade;
                        T = &tt[q];
                    }
                /* matched by position (body centroid within 12 mm), so that a level-naming
                 * shift of the segmentation does not count as a grading error */
                const SmCanalLevel *L = NULL;
                for (size_t i = 0; i < res->n_levels && i < seg->n_vertebrae; i++) {
                    const double *a = seg->vertebrae[i].centroid_lps, *b = ph->vertebrae[v].body_centroid;
                    double d2 = (a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                                (a[2] - b[2]) * (a[2] - b[2]);
                    if (d2 < 144.0)
                        L = &res->levels[i];
                    if (d2 < 144.0 && seg->vertebrae[i].verse_label != ph->vertebrae[v].verse_id) {
                        n_renamed++;
                        print_message("e2e ph%d %s-%s: %s named %s (confidence %.2f)\n", r,
                                      sm_phantom_level_name(spec.level_first),
                                      sm_phantom_level_name(spec.level_last), sm_phantom_level_name(lvl),
                                      sm_seg_level_name(seg->vertebrae[i].verse_label),
                                      seg->vertebrae[i].confidence);
                    }
                }
                if (!L) {
                    n_missing++;
                    if (truth > 0)
                        print_message("e2e ph%d %s (truth %s): level not found by the segmentation\n", r,
                                      sm_phantom_level_name(lvl), sm_escc_grade_name((SmEsccGrade)truth));
                    continue;
                }
                int m = L->grade == SM_ESCC_NONE ? 6 : (int)L->grade;
                conf[truth][m]++;
                /* anatomy, independent of the image: the cord runs down to T11 at least */
                assert_int_equal(L->cord_expected, L->verse_label >= 1 && L->verse_label <= 18);
                if (truth == 0) {
                    n_clean++;
                    if (m != 6 && m > 0)
                        false_pos++;
                } else {
                    n_graded++;
                    exact += m == truth;
                    within1 += m != 6 && abs(m - truth) <= 1;
                    bool hi_t = truth >= SM_ESCC_2, hi_m = m != 6 && m >= SM_ESCC_2;
                    group_ok += hi_t == hi_m;
                }
                if (truth > 0 || (m != 6 && m > 0))
                    print_message("e2e ph%d %s %-15s truth %-2s measured %-2s canal %.0f (true %.0f) "
                                  "sac %.0f/%.0f csf %.0f/%.0f tum %.0f (true %.0f) | %s\n",
                                  r, sm_phantom_level_name(lvl),
                                  T ? sm_phantom_tumour_position_name(T->position) : "-",
                                  T ? sm_phantom_tumour_grade_name(T->grade) : "0",
                                  m == 6 ? "-" : sm_escc_grade_name(L->grade), L->canal_area_mm2,
                                  ph->vertebrae[v].canal_area_mm2, L->sac_area_mm2, L->ref_sac_area_mm2,
                                  L->csf_area_mm2, L->ref_csf_area_mm2, L->tumour_area_mm2,
                                  T ? T->tumour_area_mm2 : 0.0, L->reasons.n > 1 ? L->reasons.items[1] : "");
                if (getenv("SM_ESCC_E2E_VERBOSE") && (truth > 0 || (m != 6 && m > 0)))
                {
                    const SmPhantomVertebra *PV = &ph->vertebrae[v];
                    double dz = 0;
                    for (int d = 0; d < 3; d++)
                        dz += (L->center_lps[d] - PV->canal_center[d]) * PV->axis_superior[d];
                    print_message("    cauda truth %d measured %d | plane %.1f mm from the phantom's level centre | %s | %s\n",
                                  T ? T->below_conus : -1, L->below_conus, dz,
                                  L->reasons.n > 2 ? L->reasons.items[2] : "",
                                  L->reasons.n > 3 ? L->reasons.items[L->reasons.n - 1] : "");
                }
                if (getenv("SM_ESCC_QC_DIR") && (truth > 0 || (m != 6 && m > 0))) {
                    uint8_t *rgb = NULL;
                    size_t qw = 0, qh = 0;
                    char path[1200];
                    snprintf(path, sizeof path, "%s/e2e%d_%s_%s_%s.png", getenv("SM_ESCC_QC_DIR"), r,
                             sm_phantom_level_name(lvl), truth ? sm_escc_grade_name((SmEsccGrade)truth) : "0",
                             m == 6 ? "-" : sm_escc_grade_name(L->grade));
                    size_t idx = (size_t)(L - res->levels);
                    assert_true(sm_escc_qc_axial(NULL, res, idx, 3, &rgb, &qw, &qh));
                    assert_true(sm_io_png_save(NULL, path, rgb, qw, qh, 3));
                    free(rgb);
                }
            }
            sm_escc_destroy(res);
            sm_seg_spine_destroy(seg);
            sm_phantom_destroy(ph);
        }
    }
    print_message("PRODUCT PATH confusion matrix (rows truth 0 1a 1b 1c 2 3; columns measured 0 1a 1b 1c 2 3 -):\n");
    for (int t = 0; t < 6; t++)
        print_message("  %-2s: %4d %4d %4d %4d %4d %4d %4d\n", t ? sm_escc_grade_name((SmEsccGrade)t) : "0",
                      conf[t][0], conf[t][1], conf[t][2], conf[t][3], conf[t][4], conf[t][5], conf[t][6]);
    double ng = n_graded ? (double)n_graded : 1.0;
    print_message("product path: %d phantoms (%zu segmentation failures), %zu truth levels not found, %zu named differently; "
                  "graded levels %zu: exact %.1f%%, within one %.1f%%, low/high %.1f%%; clean levels %zu, "
                  "false positives %zu\n",
                  n_total, n_fail, n_missing, n_renamed, n_graded, 100.0 * (double)exact / ng,
                  100.0 * (double)within1 / ng, 100.0 * (double)group_ok / ng, n_clean, false_pos);
    bool met = n_graded >= 20 && exact * 100 >= 80 * n_graded && within1 * 100 >= 95 * n_graded &&
               group_ok * 100 >= 95 * n_graded && false_pos == 0;
    print_message("issue thresholds %s on the product path\n", met ? "MET" : "NOT met");
    assert_true(n_fail < (size_t)n_total);
    if (g_targets)
        assert_true(met);
}

int main(int argc, char **argv)
{
    /* --targets: only the product path, on the held-out draws 4-7 pooled, asserting the
     * issue's thresholds (exact >= 80 %, within one >= 95 %, low/high >= 95 %, no false
     * positive) */
    if (argc > 1 && strcmp(argv[1], "--targets") == 0) {
        g_targets = true;
        const struct CMUnitTest targets[] = {cmocka_unit_test(test_product_path)};
        return cmocka_run_group_tests_name("issue targets, product path", targets, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_section_areas),
        cmocka_unit_test(test_phantom_clean_and_threads),
        cmocka_unit_test(test_phantom_grades),
        cmocka_unit_test(test_real_ct),
        cmocka_unit_test(test_product_path),
    };
    if (getenv("SM_ESCC_TEST_FILTER")) /* e.g. "test_product_path" (development runs) */
        cmocka_set_test_filter(getenv("SM_ESCC_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
