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

static json_t *run_results(const char *out);

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

/* The bundled lumbar sample (lesion-free): levels T10-S1 named, no lesion and no ESCC
 * grade above 0 anywhere. */
static void test_lumbar_sample_lesion_free(void **state)
{
    (void)state;
    char ph[600], out[700], spec[700];
    snprintf(ph, sizeof ph, "%s/ph-lumbar", g_tmp);
    snprintf(spec, sizeof spec, "%s/sample-data/lumbar.json", SM_SOURCE_DIR);
    assert_int_equal(cli(NULL, "phantom --spec %s -o %s", spec, ph), 0);
    snprintf(out, sizeof out, "%s/out-lumbar", g_tmp);
    assert_int_equal(cli(NULL, "run %s/dicom -o %s", ph, out), 0);
    json_t *r = run_results(out);
    json_t *verts = json_object_get(r, "vertebrae");
    static const char *levels[] = {"T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"};
    assert_int_equal(json_array_size(verts), 9);
    for (size_t i = 0; i < json_array_size(verts); i++) {
        json_t *v = json_array_get(verts, i);
        assert_string_equal(json_string_value(json_object_get(v, "level")), levels[i]);
        json_t *g = json_object_get(v, "escc_grade");
        assert_true(json_is_null(g) || strcmp(json_string_value(g), "0") == 0);
        assert_string_equal(json_string_value(json_object_get(json_object_get(v, "lesion"), "class")), "none");
    }
    json_decref(r);
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
    /* a lesion-free, contrast-enhanced scan: no lesion, and the enhancing epidural veins
     * are not graded as a mass */
    json_t *r = run_results(out);
    json_t *verts = json_object_get(r, "vertebrae");
    assert_true(json_array_size(verts) >= 1);
    for (size_t i = 0; i < json_array_size(verts); i++) {
        json_t *v = json_array_get(verts, i);
        json_t *les = json_object_get(v, "lesion");
        assert_string_equal(json_string_value(json_object_get(les, "class")), "none");
        assert_true(json_is_null(json_object_get(v, "escc_grade")));
    }
    json_decref(r);
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

static json_t *run_results(const char *out)
{
    char path[900];
    snprintf(path, sizeof path, "%s/run.json", out);
    json_t *run = load_json(path);
    const char *res = json_string_value(
        json_object_get(json_array_get(json_object_get(run, "series"), 0), "results"));
    assert_non_null(res);
    json_t *r = load_json(res);
    json_decref(run);
    return r;
}

static json_t *find_level(json_t *vertebrae, const char *level)
{
    for (size_t i = 0; i < json_array_size(vertebrae); i++) {
        json_t *v = json_array_get(vertebrae, i);
        if (strcmp(json_string_value(json_object_get(v, "level")), level) == 0)
            return v;
    }
    return NULL;
}

/* --labels with TotalSegmentator ids gives the same levels and body centroids as the
 * built-in segmentation on the real lumbar CT (3 mm voxels: centroids within 3 mm). */
static void test_imported_labels_match_builtin(void **state)
{
    (void)state;
    char ct[600], labels[600], out1[700], out2[700];
    if (!sm_test_shared("ct-totalseg-example/ct.nii.gz", ct, sizeof ct))
        skip();
    assert_true(sm_test_shared("ct-totalseg-example/labels/total.nii.gz", labels, sizeof labels));
    snprintf(out1, sizeof out1, "%s/out-builtin", g_tmp);
    snprintf(out2, sizeof out2, "%s/out-imported", g_tmp);
    assert_int_equal(cli(NULL, "run %s -o %s", ct, out1), 0);
    assert_int_equal(cli(NULL, "run %s --labels %s --label-map total -o %s", ct, labels, out2), 0);
    json_t *a = run_results(out1), *b = run_results(out2);
    json_t *va = json_object_get(a, "vertebrae"), *vb = json_object_get(b, "vertebrae");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "segmentation"), "method")), "imported");
    static const char *levels[] = {"T12", "L1", "L2", "L3", "L4", "L5"};
    for (size_t i = 0; i < 6; i++) {
        json_t *x = find_level(va, levels[i]), *y = find_level(vb, levels[i]);
        assert_non_null(x);
        assert_non_null(y);
        assert_int_equal(json_integer_value(json_object_get(x, "label")),
                         json_integer_value(json_object_get(y, "label")));
        json_t *cx = json_object_get(x, "centroid_lps_mm"), *cy = json_object_get(y, "centroid_lps_mm");
        double d2 = 0.0;
        for (size_t k = 0; k < 3; k++) {
            double d = json_number_value(json_array_get(cx, k)) - json_number_value(json_array_get(cy, k));
            d2 += d * d;
        }
        printf("%s body centroid built-in vs imported: %.2f mm\n", levels[i], sqrt(d2));
        assert_true(sqrt(d2) <= 3.0);
    }
    json_decref(a);
    json_decref(b);
}

/* A label map made on another grid is refused with a geometry error (exit 4), and a bad
 * custom label map is a usage error (exit 2). */
static void test_labels_wrong_grid(void **state)
{
    (void)state;
    char ct[600], labels[600], out[700], map[700];
    if (!sm_test_shared("ct-totalseg-example/ct.nii.gz", ct, sizeof ct))
        skip();
    assert_true(sm_test_shared("ct-totalseg-dicom/labels_total.nii.gz", labels, sizeof labels));
    snprintf(out, sizeof out, "%s/out-wronggrid", g_tmp);
    assert_int_equal(cli(NULL, "run %s --labels %s --label-map total -o %s", ct, labels, out), 4);
    json_t *r = run_results(out);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "failed");
    const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    assert_non_null(strstr(msg, "does not coincide"));
    json_decref(r);
    snprintf(map, sizeof map, "%s/map.json", g_tmp);
    FILE *f = fopen(map, "w");
    fputs("{\"12\": \"Q7\"}", f);
    fclose(f);
    assert_true(sm_test_shared("ct-totalseg-example/labels/total.nii.gz", labels, sizeof labels));
    assert_int_equal(cli(NULL, "run %s --labels %s --label-map %s -o %s-2", ct, labels, map, out), 2);
    /* a TotalSegmentator map read under the default VerSe ids (its 26 S1 and 28 L4 would
     * be a sacrum and a T13) is refused as a usage error that points at --label-map */
    snprintf(out, sizeof out, "%s/out-wrongscheme", g_tmp);
    assert_int_equal(cli(NULL, "run %s --labels %s -o %s", ct, labels, out), 2);
    r = run_results(out);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "failed");
    msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "--label-map"));
    json_decref(r);
}

/* The DICOM series' TotalSegmentator labels (stored in dcm2niix's axis order) are
 * accepted on the DICOM grid by exact re-indexing. */
static void test_labels_on_dicom_grid(void **state)
{
    (void)state;
    char dicom[600], labels[600], out[700];
    if (!sm_test_shared("ct-totalseg-dicom/dicom", dicom, sizeof dicom))
        skip();
    assert_true(sm_test_shared("ct-totalseg-dicom/labels_total.nii.gz", labels, sizeof labels));
    snprintf(out, sizeof out, "%s/out-dcmlabels", g_tmp);
    assert_int_equal(cli(NULL, "run %s --labels %s --label-map total -o %s", dicom, labels, out), 0);
    json_t *r = run_results(out);
    json_t *v = json_object_get(r, "vertebrae");
    assert_non_null(find_level(v, "T12"));
    json_decref(r);
}

/* The full chain on the ESCC sample phantom: every vertebra carries the SINS components,
 * pain supplied for one level turns its range into a total (subtotal + pain, category
 * from the SINS table), and every graded level has its axial QC picture. */
static void test_escc_sample_and_pain(void **state)
{
    (void)state;
    char ph[600], out[700], spec[700];
    snprintf(ph, sizeof ph, "%s/ph-escc", g_tmp);
    snprintf(spec, sizeof spec, "%s/sample-data/escc.json", SM_SOURCE_DIR);
    assert_int_equal(cli(NULL, "phantom --spec %s -o %s", spec, ph), 0);
    snprintf(out, sizeof out, "%s/out-escc", g_tmp);
    assert_int_equal(cli(NULL, "run %s/dicom -o %s --pain T9=3 --pain T10=1", ph, out), 0);
    json_t *r = run_results(out);
    json_t *stages = json_object_get(r, "stages");
    assert_int_equal(json_array_size(stages), 4);
    assert_string_equal(json_string_value(json_array_get(stages, 3)), "escc");
    json_t *verts = json_object_get(r, "vertebrae");
    assert_true(json_array_size(verts) >= 6);
    size_t graded = 0;
    for (size_t i = 0; i < json_array_size(verts); i++) {
        json_t *v = json_array_get(verts, i);
        json_t *sins = json_object_get(v, "sins");
        assert_non_null(sins);
        const char *level = json_string_value(json_object_get(v, "level"));
        json_t *sub = json_object_get(sins, "imaging_subtotal");
        if (json_is_integer(sub)) {
            json_int_t s0 = json_integer_value(sub);
            json_t *range = json_object_get(sins, "total_range");
            assert_int_equal(json_integer_value(json_array_get(range, 0)), s0);
            assert_int_equal(json_integer_value(json_array_get(range, 1)), s0 + 3);
            int pain = strcmp(level, "T9") == 0 ? 3 : strcmp(level, "T10") == 0 ? 1 : -1;
            json_t *total = json_object_get(sins, "total");
            if (pain < 0) {
                assert_null(total);
            } else {
                assert_int_equal(json_integer_value(total), s0 + pain);
                const char *cat = json_string_value(json_object_get(sins, "category"));
                json_int_t t = s0 + pain;
                assert_string_equal(cat, t <= 6 ? "stable" : t <= 12 ? "potentially unstable" : "unstable");
            }
        }
        if (json_is_string(json_object_get(v, "escc_grade"))) {
            graded++;
            const char *name = json_string_value(json_object_get(v, "qc_axial"));
            assert_non_null(strstr(name, level));
            char png[1500], runj[800];
            snprintf(runj, sizeof runj, "%s/run.json", out);
            json_t *run = load_json(runj);
            snprintf(png, sizeof png, "%s", json_string_value(json_object_get(
                json_array_get(json_object_get(run, "series"), 0), "results")));
            json_decref(run);
            *strrchr(png, '/') = '\0';
            strcat(png, "/");
            strcat(png, name);
            struct stat st;
            assert_int_equal(stat(png, &st), 0);
            assert_true(st.st_size > 100);
        }
    }
    assert_true(graded >= 1);
    assert_non_null(json_object_get(json_object_get(r, "escc"), "worst_grade"));
    json_decref(r);
    assert_int_equal(cli(NULL, "run %s/dicom -o %s-2 --pain T9=2", ph, out), 2); /* 2 is not a SINS pain score */
}

/* Two inputs with the same name never share an output folder (no result is lost). */
static void test_same_name_inputs(void **state)
{
    (void)state;
    char a[700], b[800], out[700];
    size_t dims[3] = {9, 7, 5};
    SmVolume *v = sm_volume_create(NULL, dims, SM_VOXEL_I16);
    assert_non_null(v);
    for (int k = 0; k < 2; k++) {
        snprintf(a, sizeof a, "%s/same%d", g_tmp, k);
        assert_true(sm_io_mkdir_p(NULL, a));
        snprintf(b, sizeof b, "%s/x.nii.gz", a);
        assert_true(sm_io_nifti_save(NULL, v, b));
    }
    sm_volume_destroy(v);
    snprintf(out, sizeof out, "%s/out-same", g_tmp);
    assert_int_equal(cli(NULL, "run %s/same0/x.nii.gz %s/same1/x.nii.gz --no-segment -o %s", g_tmp, g_tmp, out), 0);
    snprintf(b, sizeof b, "%s/run.json", out);
    json_t *run = load_json(b);
    json_t *rows = json_object_get(run, "series");
    assert_int_equal(json_array_size(rows), 2);
    const char *r0 = json_string_value(json_object_get(json_array_get(rows, 0), "results"));
    const char *r1 = json_string_value(json_object_get(json_array_get(rows, 1), "results"));
    assert_string_not_equal(r0, r1);
    struct stat st;
    assert_int_equal(stat(r0, &st), 0);
    assert_int_equal(stat(r1, &st), 0);
    json_decref(run);
}

/* Asserts that the run in out failed with an error message containing needle. */
static void dseg_expect_failure(const char *out, const char *needle)
{
    json_t *r = run_results(out);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "failed");
    const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    assert_non_null(msg);
    if (!strstr(msg, needle))
        fail_msg("error message lacks '%s': %s", needle, msg);
    json_decref(r);
}

/* --labels with a DICOM SEG. dcmqi's test data has no spine SEG object (its spine is an NRRD
 * only) and its CT has 3 slices, too few for a canal track; so the vertebra case uses a
 * BINARY SEG written by tests/tools/seg_from_nifti.py (pydicom) from the TotalSegmentator
 * T12 (id 32, 23576 voxels counted by that script) of the DICOM CT it was made on:
 * segments "vertebrae_T12" and "Vertebra t12" import as T12 by name, and --label-map {"1": "L2"} renames it
 * by segment number. dcmqi's liver.dcm is refused on another CT (geometry, exit 4) and,
 * on its own 3-slice CT, without a map (no segment names a vertebra: usage, exit 2). */
static void test_labels_dicom_seg(void **state)
{
    (void)state;
    char dicom[600], nii[600], liver[700], ct3[700], seg[700], map[700], out[700], cmd[4096];
    if (!sm_test_shared("ct-totalseg-dicom/dicom", dicom, sizeof dicom) ||
        !sm_test_shared("dicom-conformance/dicom-seg-dcmqi/data/segmentations/liver.dcm", liver, sizeof liver))
        skip();
    assert_true(sm_test_shared("ct-totalseg-dicom/labels_total.nii.gz", nii, sizeof nii));
    assert_true(sm_test_shared("dicom-conformance/dicom-seg-dcmqi/data/segmentations/ct-3slice", ct3, sizeof ct3));
    snprintf(seg, sizeof seg, "%s/t12_seg.dcm", g_tmp);
    snprintf(cmd, sizeof cmd,
             "for p in /usr/bin/python3 python3; do if $p -c 'import pydicom, numpy' 2>/dev/null; then "
             "exec $p %s/tests/tools/seg_from_nifti.py %s %s 32 vertebrae_T12 %s >%s/seg_count.txt; fi; done; "
             "exit 77",
             SM_SOURCE_DIR, dicom, nii, seg, g_tmp);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) {
        print_message("python3 with pydicom and numpy not found: DICOM SEG e2e skipped\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(st), 0);
    snprintf(out, sizeof out, "%s/seg_count.txt", g_tmp);
    FILE *f = fopen(out, "r");
    long want = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &want), 1);
    fclose(f);
    assert_int_equal(want, 23576);

    /* by segment name */
    snprintf(out, sizeof out, "%s/out-seg-name", g_tmp);
    assert_int_equal(cli(NULL, "run %s --labels %s -o %s", dicom, seg, out), 0);
    json_t *r = run_results(out);
    json_t *v = find_level(json_object_get(r, "vertebrae"), "T12");
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "voxels")), want);
    assert_int_equal(json_array_size(json_object_get(r, "vertebrae")), 1);
    json_decref(r);

    /* another spelling of the same name: "Vertebra t12" (word first, lower case) */
    snprintf(cmd, sizeof cmd,
             "for p in /usr/bin/python3 python3; do if $p -c 'import pydicom, numpy' 2>/dev/null; then "
             "exec $p %s/tests/tools/seg_from_nifti.py %s %s 32 'Vertebra t12' %s/t12_seg2.dcm >/dev/null; fi; "
             "done; exit 77",
             SM_SOURCE_DIR, dicom, nii, g_tmp);
    st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    snprintf(out, sizeof out, "%s/out-seg-name2", g_tmp);
    assert_int_equal(cli(NULL, "run %s --labels %s/t12_seg2.dcm -o %s", dicom, g_tmp, out), 0);
    r = run_results(out);
    v = find_level(json_object_get(r, "vertebrae"), "T12");
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "voxels")), want);
    json_decref(r);

    /* by segment number through a custom map */
    snprintf(map, sizeof map, "%s/seg_map.json", g_tmp);
    f = fopen(map, "w");
    assert_non_null(f);
    fputs("{\"1\": \"L2\"}", f);
    fclose(f);
    snprintf(out, sizeof out, "%s/out-seg-map", g_tmp);
    assert_int_equal(cli(NULL, "run %s --labels %s --label-map %s -o %s", dicom, seg, map, out), 0);
    r = run_results(out);
    v = find_level(json_object_get(r, "vertebrae"), "L2");
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "voxels")), want);
    assert_null(find_level(json_object_get(r, "vertebrae"), "T12"));
    json_decref(r);

    /* dcmqi's liver SEG on a CT it was not made on: geometry error, nothing resampled */
    snprintf(out, sizeof out, "%s/out-seg-wronggrid", g_tmp);
    assert_int_equal(cli(NULL, "run %s --labels %s --label-map %s -o %s", dicom, liver, map, out), 4);
    dseg_expect_failure(out, "no resampling is done");
    /* on its own CT but with no vertebra among its segment names and no map */
    snprintf(out, sizeof out, "%s/out-seg-noname", g_tmp);
    assert_int_equal(cli(NULL, "run %s --labels %s -o %s", ct3, liver, out), 2);
    dseg_expect_failure(out, "no segment is named after a vertebra");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_no_series),
        cmocka_unit_test(test_phantom_run),
        cmocka_unit_test(test_lumbar_sample_lesion_free),
        cmocka_unit_test(test_unwritable_output),
        cmocka_unit_test(test_real_jpeg2000_series),
        cmocka_unit_test(test_transfer_syntaxes_identical),
        cmocka_unit_test(test_imported_labels_match_builtin),
        cmocka_unit_test(test_labels_wrong_grid),
        cmocka_unit_test(test_labels_on_dicom_grid),
        cmocka_unit_test(test_escc_sample_and_pain),
        cmocka_unit_test(test_same_name_inputs),
        cmocka_unit_test(test_labels_dicom_seg),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
