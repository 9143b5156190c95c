/* Tests of the DICOM SEG reader against dcmqi's test data: voxel counts per segment on the
 * CT grid equal an independent pydicom count, off-grid references and broken files fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sm_io.h"

#define SEG_DIR SM_SHARED_DATA "/dicom-conformance/dicom-seg-dcmqi/data/segmentations"

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* The 3-slice CT (512x512, 0.810547 mm pixels, 1 mm apart) the SEG objects were made on. */
static SmVolume *load_ct(void)
{
    const char *in[] = {SEG_DIR "/ct-3slice"};
    SmError *err = NULL;
    SmDicomScan *scan = NULL;
    SmVolume *ct = NULL;
    bool ok = sm_io_dicom_scan(&err, in, 1, &scan);
    assert_true(ok);
    assert_int_equal(scan->n_series, 1);
    SmDicomLoadOptions opt = {SM_TILT_RESAMPLE, 1};
    ok = sm_io_dicom_series_load(&err, scan, 0, &opt, &ct, NULL);
    if (!ok)
        fail_msg("%s", err->message);
    sm_io_dicom_scan_destroy(scan);
    assert_int_equal(ct->dims[0], 512);
    assert_int_equal(ct->dims[1], 512);
    assert_int_equal(ct->dims[2], 3);
    return ct;
}

static size_t count_value(const SmVolume *v, uint16_t value)
{
    size_t n = 0, nv = sm_volume_n_voxels(v);
    const uint16_t *d = v->data;
    for (size_t i = 0; i < nv; i++)
        n += d[i] == value;
    return n;
}

#define SKIP_WITHOUT_DATA()                                                                 \
    do {                                                                                    \
        if (!file_exists(SEG_DIR "/liver.dcm")) {                                           \
            print_message("dcmqi SEG test data absent (%s): skipped\n", SEG_DIR);          \
            skip();                                                                         \
        }                                                                                   \
    } while (0)

/* liver.dcm: one segment "Liver", 3 frames. pydicom: 36233 + 35645 + 35220 = 107098 set
 * pixels; the first in the slice at z = -126.69 is row 147, column 249. */
static void test_liver_counts(void **state)
{
    (void)state;
    SKIP_WITHOUT_DATA();
    SmVolume *ct = load_ct();
    SmVolume *seg = NULL;
    SmError *err = NULL;
    SmStrList names = {0};
    if (!sm_io_dicom_seg_load(&err, SEG_DIR "/liver.dcm", ct, &seg, &names))
        fail_msg("%s", err->message);
    assert_int_equal(seg->type, SM_VOXEL_U16);
    assert_true(sm_volume_same_grid(seg, ct, 1e-6));
    assert_int_equal(names.n, 2);
    assert_string_equal(names.items[0], "");
    assert_string_equal(names.items[1], "Liver");
    assert_int_equal(count_value(seg, 1), 107098);
    assert_int_equal(count_value(seg, 0), (size_t)512 * 512 * 3 - 107098);
    /* one voxel placed through the patient coordinates of the CT */
    const double lps[3] = {-235.199997 + 249 * 0.810547, -226.800003 + 147 * 0.810547, -126.690002};
    double ijk[3];
    assert_true(sm_volume_lps_to_index(ct, lps, ijk));
    size_t i = (size_t)(ijk[0] + 0.5), j = (size_t)(ijk[1] + 0.5), k = (size_t)(ijk[2] + 0.5);
    assert_int_equal((int)sm_volume_get(seg, i, j, k), 1);
    assert_int_equal((int)sm_volume_get(seg, i - 1, j, k), 0); /* first set pixel of its row-major scan */
    sm_strlist_clear(&names);
    sm_volume_destroy(seg);
    sm_volume_destroy(ct);
}

/* partial_overlaps.dcm: 5 segments in 7 frames, 3106 voxels claimed by two segments.
 * pydicom, higher segment number winning: 6518, 11838, 10743, 6693, 4713 voxels (raw
 * frame counts 9602, 11888, 10743, 6693, 4713). */
static void test_overlaps_counts(void **state)
{
    (void)state;
    SKIP_WITHOUT_DATA();
    SmVolume *ct = load_ct();
    SmVolume *seg = NULL;
    SmError *err = NULL;
    SmStrList names = {0};
    if (!sm_io_dicom_seg_load(&err, SEG_DIR "/partial_overlaps.dcm", ct, &seg, &names))
        fail_msg("%s", err->message);
    static const char *const want_names[] = {"", "GREEN", "ORANGE", "PURPLE", "LIGHT_BLUE", "DARK_BLUE"};
    static const size_t want[] = {0, 6518, 11838, 10743, 6693, 4713};
    assert_int_equal(names.n, 6);
    for (int s = 1; s <= 5; s++) {
        assert_string_equal(names.items[s], want_names[s]);
        assert_int_equal(count_value(seg, (uint16_t)s), want[s]);
    }
    assert_int_equal(count_value(seg, 6), 0);
    sm_strlist_clear(&names);
    sm_volume_destroy(seg);
    sm_volume_destroy(ct);
}

/* partial_overlaps.dcm rewritten as FRACTIONAL by tests/tools/seg_to_fractional.py (set
 * pixels 100, unset 99, maximum 200): thresholding at half the maximum gives the BINARY
 * counts above exactly (100 is inside, 99 outside). */
static void test_fractional_threshold(void **state)
{
    (void)state;
    SKIP_WITHOUT_DATA();
    char tmpl[] = "/tmp/sm_test_segfrac_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    close(fd);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "for p in /usr/bin/python3 python3; do if $p -c 'import pydicom, numpy' 2>/dev/null; then "
             "exec $p %s/tests/tools/seg_to_fractional.py %s/partial_overlaps.dcm %s >/dev/null; fi; done; exit 77",
             SM_SOURCE_DIR, SEG_DIR, tmpl);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        unlink(tmpl);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
            print_message("python3 with pydicom and numpy not found: FRACTIONAL test skipped\n");
            skip();
        }
        fail_msg("seg_to_fractional.py failed (status %d)", st);
    }
    SmVolume *ct = load_ct();
    SmVolume *seg = NULL;
    SmError *err = NULL;
    bool ok = sm_io_dicom_seg_load(&err, tmpl, ct, &seg, NULL);
    unlink(tmpl);
    if (!ok)
        fail_msg("%s", err->message);
    static const size_t want[] = {6518, 11838, 10743, 6693, 4713};
    for (int s = 1; s <= 5; s++)
        assert_int_equal(count_value(seg, (uint16_t)s), want[s - 1]);
    sm_volume_destroy(seg);
    sm_volume_destroy(ct);
}

static void expect_geometry_error(const char *path, const SmVolume *ref, const char *needle)
{
    SmVolume *seg = NULL;
    SmError *err = NULL;
    assert_false(sm_io_dicom_seg_load(&err, path, ref, &seg, NULL));
    assert_null(seg);
    assert_non_null(err);
    assert_int_equal(err->code, SM_ERR_GEOMETRY);
    assert_non_null(strstr(err->message, "liver.dcm"));
    if (!strstr(err->message, needle))
        fail_msg("message lacks '%s': %s", needle, err->message);
    sm_error_destroy(err);
}

/* The same SEG against the CT moved by half a voxel (x, then z), with a 1 % different
 * pixel spacing, and with one slice only: never resampled, always SM_ERR_GEOMETRY. */
static void test_off_grid_reference(void **state)
{
    (void)state;
    SKIP_WITHOUT_DATA();
    SmVolume *ct = load_ct();
    double a03 = ct->affine[0][3], a23 = ct->affine[2][3];
    ct->affine[0][3] = a03 + 0.5 * ct->spacing[0];
    expect_geometry_error(SEG_DIR "/liver.dcm", ct, "not on a slice plane");
    ct->affine[0][3] = a03;
    ct->affine[2][3] = a23 + 0.5 * ct->spacing[2];
    expect_geometry_error(SEG_DIR "/liver.dcm", ct, "not on a slice plane");
    ct->affine[2][3] = a23;
    for (int d = 0; d < 3; d++)
        ct->affine[d][0] *= 1.01;
    ct->spacing[0] *= 1.01;
    expect_geometry_error(SEG_DIR "/liver.dcm", ct, "pixel spacing");
    ct->spacing[0] /= 1.01;
    for (int d = 0; d < 3; d++)
        ct->affine[d][0] /= 1.01;
    SmVolume *seg = NULL;
    SmError *err = NULL;
    assert_true(sm_io_dicom_seg_load(&err, SEG_DIR "/liver.dcm", ct, &seg, NULL)); /* restored: loads */
    sm_volume_destroy(seg);
    ct->dims[2] = 1; /* a one-slice reference: two of the three frames fall outside it */
    expect_geometry_error(SEG_DIR "/liver.dcm", ct, "outside the image grid");
    ct->dims[2] = 3;
    sm_volume_destroy(ct);
}

static void expect_error(const char *path, const SmVolume *ref, SmErrorCode code, const char *needle)
{
    SmVolume *seg = NULL;
    SmError *err = NULL;
    assert_false(sm_io_dicom_seg_load(&err, path, ref, &seg, NULL));
    assert_null(seg);
    assert_non_null(err);
    if (err->code != code || !strstr(err->message, needle))
        fail_msg("%s: expected %s with '%s', got %s: %s", path, sm_error_code_name(code), needle,
                 sm_error_code_name(err->code), err->message);
    sm_error_destroy(err);
}

/* Garbage, a missing file, a CT image instead of a SEG and a Label Map SEG. */
static void test_bad_files(void **state)
{
    (void)state;
    SKIP_WITHOUT_DATA();
    SmVolume *ct = load_ct();
    char tmpl[] = "/tmp/sm_test_seg_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    char junk[1000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 37 + 11);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    expect_error(tmpl, ct, SM_ERR_FORMAT, "not a readable DICOM file");
    unlink(tmpl);
    expect_error("/nonexistent/seg.dcm", ct, SM_ERR_IO, "cannot open");
    expect_error(SEG_DIR "/ct-3slice/01.dcm", ct, SM_ERR_FORMAT, "not a DICOM Segmentation object");
    if (file_exists(SEG_DIR "/sparse-labelmap-ppv5.dcm"))
        expect_error(SEG_DIR "/sparse-labelmap-ppv5.dcm", ct, SM_ERR_UNSUPPORTED, "Label Map");
    sm_volume_destroy(ct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_liver_counts),
        cmocka_unit_test(test_overlaps_counts),
        cmocka_unit_test(test_fractional_threshold),
        cmocka_unit_test(test_off_grid_reference),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
