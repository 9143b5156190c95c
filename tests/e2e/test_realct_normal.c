/* End-to-end: the real lesion-free, fracture-free lumbar CT (ct-totalseg-example, 3 mm
 * voxels, T11-S1, steep L5/S1) run through the CLI with the built-in segmentation and with
 * the imported TotalSegmentator labels must come out normal: no collapse (Genant 0) at
 * L1-L5 and no translation of SINS size (>= 3 mm) at L1/L2 ... L5/S1, each segment of
 * alignment class normal (the lateral offset between L5 and S1 is measured on the body
 * centres: on the posterior wall points it read 3.1 mm on the imported labels, from 7 degrees
 * of axial rotation between the two body frames).
 */
#include "sm_core.h"
#include "sm_io.h"
#include "sm_test.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>

#define EXE SM_BINARY_DIR "/pipeline/spinemets"

static char *g_tmp;

static int setup(void **state)
{
    (void)state;
    g_tmp = sm_test_tmpdir();
    return g_tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sm_test_rmrf(g_tmp);
    free(g_tmp);
    return 0;
}

static void run_and_check(const char *args, const char *out)
{
    char cmd[8192], path[1024];
    snprintf(cmd, sizeof cmd, "%s run %s -o %s >/dev/null 2>>%s/stderr.txt", EXE, args, out, g_tmp);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    snprintf(path, sizeof path, "%s/ct/results.json", out);
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    assert_non_null(doc);
    json_t *vs = json_object_get(doc, "vertebrae");
    assert_true(json_is_array(vs));
    int seen = 0;
    for (size_t i = 0; i < json_array_size(vs); i++) {
        json_t *v = json_array_get(vs, i);
        const char *lev = json_string_value(json_object_get(v, "level"));
        json_t *h = json_object_get(v, "heights_mm");
        json_t *al = json_object_get(v, "alignment");
        json_int_t g = json_integer_value(json_object_get(v, "genant_grade"));
        printf("  %-4s H %.1f/%.1f/%.1f grade %d translation %.1f kyphosis %.1f class %s\n", lev,
               json_number_value(json_object_get(h, "anterior")),
               json_number_value(json_object_get(h, "middle")),
               json_number_value(json_object_get(h, "posterior")), (int)g,
               json_number_value(json_object_get(al, "translation_mm")),
               json_number_value(json_object_get(al, "kyphosis_deg")),
               json_string_value(json_object_get(al, "class")));
        if (lev && lev[0] == 'L' && lev[1] >= '1' && lev[1] <= '5' && lev[2] == '\0') {
            assert_true(json_is_integer(json_object_get(v, "genant_grade")));
            assert_int_equal(g, 0);
            {
                json_t *t = json_object_get(al, "translation_mm");
                assert_true(json_is_number(t));
                assert_true(json_number_value(t) < 3.0); /* SINS subluxation threshold */
                assert_string_equal(json_string_value(json_object_get(al, "class")), "normal");
            }
            seen++;
        }
    }
    assert_int_equal(seen, 5);
    /* a lesion-free scan: no level (T11/T12-S1) carries a lesion and the series reports
     * none, on both paths (with imported labels S1 used to read lytic: the fat of its
     * basivertebral foramen inside TotalSegmentator's label; docs/metrics.md, "Built-in
     * segmentation versus --labels") */
    assert_true(json_array_size(vs) >= 6);
    for (size_t i = 0; i < json_array_size(vs); i++) {
        json_t *les = json_object_get(json_array_get(vs, i), "lesion");
        assert_string_equal(json_string_value(json_object_get(les, "class")), "none");
    }
    json_t *sm = json_object_get(doc, "series_metrics");
    assert_int_equal(json_array_size(json_object_get(sm, "lesion_levels")), 0);
    assert_int_equal(json_integer_value(json_object_get(sm, "n_vertebral_body_metastases")), 0);
    json_decref(doc);
}

static void test_realct_builtin(void **state)
{
    (void)state;
    char ct[600], out[700], args[1400];
    if (!sm_test_shared("ct-totalseg-example/ct.nii.gz", ct, sizeof ct))
        skip();
    snprintf(out, sizeof out, "%s/out-builtin", g_tmp);
    snprintf(args, sizeof args, "%s", ct);
    run_and_check(args, out);
}

static void test_realct_imported(void **state)
{
    (void)state;
    char ct[600], labels[600], out[700], args[1400];
    if (!sm_test_shared("ct-totalseg-example/ct.nii.gz", ct, sizeof ct))
        skip();
    assert_true(sm_test_shared("ct-totalseg-example/labels/total.nii.gz", labels, sizeof labels));
    snprintf(out, sizeof out, "%s/out-imported", g_tmp);
    snprintf(args, sizeof args, "%s --labels %s --label-map total", ct, labels);
    run_and_check(args, out);
}

static json_t *level_entry(json_t *doc, const char *level)
{
    json_t *vs = json_object_get(doc, "vertebrae");
    for (size_t i = 0; i < json_array_size(vs); i++) {
        json_t *v = json_array_get(vs, i);
        const char *l = json_string_value(json_object_get(v, "level"));
        if (l && strcmp(l, level) == 0)
            return v;
    }
    return NULL;
}

static bool same_json(json_t *a, json_t *b)
{
    return (!a && !b) || (a && b && json_equal(a, b));
}

/* The two paths agree within the tolerance documented in docs/metrics.md ("Built-in
 * segmentation versus --labels"): at L1-L5 every categorical output is identical (Genant
 * grade, deformity, lesion class, posterolateral, alignment class at L1/L2 ... L5/S1, the
 * five SINS components, ESCC grade); body centroids within one voxel diagonal; each
 * height within two voxels (each path places each endplate on a binary mask boundary, to
 * +-0.5 voxel) and the mean absolute height difference within one voxel. Runs after the
 * two tests above (their outputs stay in the group's directory). */
static void test_realct_paths_agree(void **state)
{
    (void)state;
    char ct[600], path[1024];
    if (!sm_test_shared("ct-totalseg-example/ct.nii.gz", ct, sizeof ct))
        skip();
    json_error_t je;
    snprintf(path, sizeof path, "%s/out-builtin/ct/results.json", g_tmp);
    json_t *a = json_load_file(path, 0, &je);
    snprintf(path, sizeof path, "%s/out-imported/ct/results.json", g_tmp);
    json_t *b = json_load_file(path, 0, &je);
    assert_non_null(a);
    assert_non_null(b);
    json_t *sp = json_object_get(json_object_get(a, "geometry"), "spacing_mm");
    double vox = 0, diag = 0;
    for (size_t c = 0; c < 3; c++) {
        double d = json_number_value(json_array_get(sp, c));
        vox = d > vox ? d : vox;
        diag += d * d;
    }
    diag = sqrt(diag);
    assert_true(vox > 0);
    static const char *const levels[] = {"L1", "L2", "L3", "L4", "L5"};
    static const char *const hk[] = {"anterior", "middle", "posterior"};
    static const char *const sk[] = {"location", "lesion_quality", "alignment", "collapse",
                                     "posterolateral"};
    double sum = 0, worst = 0;
    int n = 0;
    for (size_t l = 0; l < 5; l++) {
        json_t *x = level_entry(a, levels[l]), *y = level_entry(b, levels[l]);
        assert_non_null(x);
        assert_non_null(y);
        assert_true(same_json(json_object_get(x, "genant_grade"), json_object_get(y, "genant_grade")));
        assert_true(same_json(json_object_get(x, "deformity"), json_object_get(y, "deformity")));
        assert_true(same_json(json_object_get(json_object_get(x, "lesion"), "class"),
                              json_object_get(json_object_get(y, "lesion"), "class")));
        assert_true(same_json(json_object_get(x, "posterolateral"), json_object_get(y, "posterolateral")));
        assert_true(same_json(json_object_get(x, "escc_grade"), json_object_get(y, "escc_grade")));
        assert_true(same_json(json_object_get(json_object_get(x, "alignment"), "class"),
                              json_object_get(json_object_get(y, "alignment"), "class")));
        for (size_t k = 0; k < 5; k++) {
            assert_true(same_json(json_object_get(json_object_get(x, "sins"), sk[k]),
                                  json_object_get(json_object_get(y, "sins"), sk[k])));
        }
        double d2 = 0;
        for (size_t c = 0; c < 3; c++) {
            double d = json_number_value(json_array_get(json_object_get(x, "centroid_lps_mm"), c)) -
                       json_number_value(json_array_get(json_object_get(y, "centroid_lps_mm"), c));
            d2 += d * d;
        }
        assert_true(sqrt(d2) <= diag);
        for (size_t k = 0; k < 3; k++) {
            json_t *hx = json_object_get(json_object_get(x, "heights_mm"), hk[k]);
            json_t *hy = json_object_get(json_object_get(y, "heights_mm"), hk[k]);
            assert_true(json_is_number(hx));
            assert_true(json_is_number(hy));
            double d = fabs(json_number_value(hx) - json_number_value(hy));
            printf("  %s %-9s built-in %.1f imported %.1f mm\n", levels[l], hk[k],
                   json_number_value(hx), json_number_value(hy));
            sum += d;
            worst = d > worst ? d : worst;
            n++;
        }
    }
    printf("  heights: mean |difference| %.2f mm, largest %.2f mm (voxel %.1f mm)\n", sum / n,
           worst, vox);
    assert_true(worst <= 2.0 * vox);
    assert_true(sum / n <= vox);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_realct_builtin),
        cmocka_unit_test(test_realct_imported),
        cmocka_unit_test(test_realct_paths_agree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
