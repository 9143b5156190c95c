/* End-to-end tests of the spinemets CLI: the real binary on real and generated files. */
#include "sm_core.h"
#include "sm_io.h"
#include "sm_test.h"

#include <jansson.h>
#include <math.h>
#include <sys/wait.h>

#define EXE SM_BINARY_DIR "/pipeline/spinemets"

static char *g_tmp;

/* Runs `spinemets ARGS` with stdout to OUT (if not NULL); returns the exit code. */
static int cli(const char *out, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>>%s/stderr.txt", EXE, args, out ? out : "/dev/null", g_tmp);
    int st = system(cmd);
    assert_true(WIFEXITED(st)); /* a signal (crash, abort) fails the test */
    return WEXITSTATUS(st);
}

static json_t *load_json(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fprintf(stderr, "%s: %s\n", path, e.text);
    assert_non_null(j);
    return j;
}

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

static void test_usage_errors(void **state)
{
    (void)state;
    assert_int_equal(cli(NULL, ""), 2);
    assert_int_equal(cli(NULL, "frobnicate"), 2);
    assert_int_equal(cli(NULL, "run %s", g_tmp), 2); /* no -o */
    assert_int_equal(cli(NULL, "inspect --bogus x"), 2);
    assert_int_equal(cli(NULL, "--help"), 0);
    assert_int_equal(cli(NULL, "inspect /nonexistent/path"), 4);
}

static void test_no_series(void **state)
{
    (void)state;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/junk", g_tmp);
    assert_true(sm_io_mkdir_p(NULL, dir));
    snprintf(path, sizeof path, "%s/readme.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("not an image\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/empty.dcm", dir);
    fclose(fopen(path, "w"));
    assert_int_equal(cli(NULL, "inspect %s", dir), 3);
    assert_int_equal(cli(NULL, "run %s -o %s/out-junk", dir, g_tmp), 3);
}

static void test_phantom_run(void **state)
{
    (void)state;
    char ph[600], out[700], path[900];
    snprintf(ph, sizeof ph, "%s/ph", g_tmp);
    assert_int_equal(cli(NULL, "phantom --levels L3-S1 --dims 96x96x60 --pixel 1.0 --slice 2.0 --seed 3 -o %s", ph), 0);
    snprintf(out, sizeof out, "%s/out-ph", g_tmp);
    assert_int_equal(cli(NULL, "run %s/dicom -o %s", ph, out), 0);
    snprintf(path, sizeof path, "%s/run.json", out);
    json_t *run = load_json(path);
    json_t *rows = json_object_get(run, "series");
    assert_int_equal(json_array_size(rows), 1);
    const char *res = json_string_value(json_object_get(json_array_get(rows, 0), "results"));
    json_t *r = load_json(res);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(r, "schema")), "spinemets.results/1");
    json_t *dims = json_object_get(json_object_get(r, "geometry"), "dims");
    assert_int_equal(json_integer_value(json_array_get(dims, 0)), 96);
    assert_int_equal(json_integer_value(json_array_get(dims, 2)), 60);
    /* The volume written by run lies on the phantom's own truth grid. */
    char vpath[1000], tpath[1000];
    snprintf(vpath, sizeof vpath, "%s", res);
    *strrchr(vpath, '/') = '\0';
    strcat(vpath, "/volume.nii.gz");
    snprintf(tpath, sizeof tpath, "%s/truth_labels.nii.gz", ph);
    SmVolume *v = NULL, *t = NULL;
    assert_true(sm_io_nifti_load(NULL, vpath, &v));
    assert_true(sm_io_nifti_load(NULL, tpath, &t));
    /* Same voxel centres in world space (index order may differ: see docs/outputs.md). */
    assert_true(sm_volume_grid_match(v, t, 1e-3, NULL));
    sm_volume_destroy(v);
    sm_volume_destroy(t);
    json_decref(r);
    json_decref(run);
}

static void test_unwritable_output(void **state)
{
    (void)state;
    char ph[600], blocker[700];
    snprintf(ph, sizeof ph, "%s/ph2", g_tmp);
    assert_int_equal(cli(NULL, "phantom --levels L4-L5 --dims 48x48x20 --pixel 1.0 --slice 2.0 -o %s", ph), 0);
    /* A regular file where the output directory should be. */
    snprintf(blocker, sizeof blocker, "%s/blocker", g_tmp);
    fclose(fopen(blocker, "w"));
    assert_int_equal(cli(NULL, "run %s/dicom -o %s/sub", ph, blocker), 5);
}

static void test_real_jpeg2000_series(void **state)
{
    (void)state;
    char dicom[600], labels[600], out[700], json[800];
    if (!sm_test_shared("ct-totalseg-dicom/dicom", dicom, sizeof dicom))
        skip();
    assert_true(sm_test_shared("ct-totalseg-dicom/labels_total.nii.gz", labels, sizeof labels));
    snprintf(json, sizeof json, "%s/inspect.json", g_tmp);
    assert_int_equal(cli(json, "inspect --json %s", dicom), 0);
    json_t *doc = load_json(json);
    json_t *s = json_array_get(json_object_get(doc, "series"), 0);
    assert_non_null(s);
    json_t *dims = json_object_get(s, "dims"), *sp = json_object_get(s, "spacing_mm");
    assert_int_equal(json_integer_value(json_array_get(dims, 0)), 512);
    assert_int_equal(json_integer_value(json_array_get(dims, 1)), 512);
    assert_int_equal(json_integer_value(json_array_get(dims, 2)), 20);
    assert_true(fabs(json_real_value(json_array_get(sp, 0)) - 0.9765625) < 1e-4);
    assert_true(fabs(json_real_value(json_array_get(sp, 2)) - 2.0) < 1e-4);
    json_t *hu = json_object_get(s, "hu");
    assert_true(json_real_value(json_object_get(hu, "min")) <= -1000.0);
    assert_true(json_real_value(json_object_get(hu, "max")) >= 1000.0);
    json_decref(doc);

    snprintf(out, sizeof out, "%s/out-j2k", g_tmp);
    assert_int_equal(cli(NULL, "run %s -o %s", dicom, out), 0);
    snprintf(json, sizeof json, "%s/run.json", out);
    doc = load_json(json);
    const char *res = json_string_value(json_object_get(json_array_get(json_object_get(doc, "series"), 0), "results"));
    char vol_path[1000];
    snprintf(vol_path, sizeof vol_path, "%s", res);
    *strrchr(vol_path, '/') = '\0';
    strcat(vol_path, "/volume.nii.gz");
    json_decref(doc);
    SmVolume *v = NULL, *l = NULL;
    assert_true(sm_io_nifti_load(NULL, vol_path, &v));
    assert_true(sm_io_nifti_load(NULL, labels, &l));
    /* Same grid in world space: corners agree to 1 micrometre. */
    assert_true(sm_volume_same_grid(v, l, 1e-3));
    sm_volume_destroy(v);
    sm_volume_destroy(l);
}

static void test_transfer_syntaxes_identical(void **state)
{
    (void)state;
    char dir[600], json[800];
    if (!sm_test_shared("dicom-conformance/transfer-syntaxes/In", dir, sizeof dir))
        skip();
    double ref[3] = {0};
    for (int i = 1; i <= 9; i++) {
        snprintf(json, sizeof json, "%s/ts%d.json", g_tmp, i);
        assert_int_equal(cli(json, "inspect --json %s/%d.dcm", dir, i), 0);
        json_t *doc = load_json(json);
        json_t *s = json_array_get(json_object_get(doc, "series"), 0);
        json_t *hu = json_object_get(s, "hu");
        if (!hu)
            hu = json_object_get(s, "intensity");
        double v[3] = {json_real_value(json_object_get(hu, "min")), json_real_value(json_object_get(hu, "max")),
                       json_real_value(json_object_get(hu, "mean"))};
        if (i == 1)
            memcpy(ref, v, sizeof v);
        for (int k = 0; k < 3; k++)
            assert_true(v[k] == ref[k]);
        json_decref(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_no_series),
        cmocka_unit_test(test_phantom_run),
        cmocka_unit_test(test_unwritable_output),
        cmocka_unit_test(test_real_jpeg2000_series),
        cmocka_unit_test(test_transfer_syntaxes_identical),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
