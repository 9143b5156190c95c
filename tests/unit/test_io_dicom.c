/* Tests of DICOM discovery, loading and writing: geometry round trips on odd oblique
 * volumes, broken inputs, duplicate/missing/tilted stacks and the real fixtures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sm_io.h"
#include "sm_io_internal.h"

/* ---------- helpers ---------- */

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static char *temp_dir(void)
{
    char tmpl[] = "/tmp/sm_test_dicom_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static bool dir_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Rotation by angles (radians) about z then x: columns are unit axis directions. */
static void oblique_dirs(double a, double b, double dir[3][3])
{
    double rz[3][3] = {{cos(a), -sin(a), 0}, {sin(a), cos(a), 0}, {0, 0, 1}};
    double rx[3][3] = {{1, 0, 0}, {0, cos(b), -sin(b)}, {0, sin(b), cos(b)}};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            dir[r][c] = 0;
            for (int q = 0; q < 3; q++)
                dir[r][c] += rx[r][q] * rz[q][c];
        }
}

/* 23x17x11, spacing 0.7/0.9/2.5, values that identify each voxel. */
static SmVolume *make_volume(const double dir[3][3], const double origin[3])
{
    size_t dims[3] = {23, 17, 11};
    double sp[3] = {0.7, 0.9, 2.5};
    SmError *e = NULL;
    SmVolume *v = sm_volume_create(&e, dims, SM_VOXEL_I16);
    assert_non_null(v);
    int16_t *d = v->data;
    for (size_t k = 0; k < dims[2]; k++)
        for (size_t j = 0; j < dims[1]; j++)
            for (size_t i = 0; i < dims[0]; i++)
                d[i + dims[0] * (j + dims[1] * k)] = (int16_t)((int)(i * 7 + j * 131 + k * 997) % 4000 - 1024);
    sm_volume_set_geometry(v, dir, sp, origin);
    v->meta.is_hu = true;
    snprintf(v->meta.modality, sizeof v->meta.modality, "CT");
    return v;
}

static SmDicomScan *scan_one(const char *path, SmError **e)
{
    SmDicomScan *scan = NULL;
    const char *in[1] = {path};
    if (!sm_io_dicom_scan(e, in, 1, &scan))
        return NULL;
    return scan;
}

static SmVolume *load_one(const char *path, SmTiltPolicy tilt, SmError **e)
{
    SmDicomScan *scan = scan_one(path, e);
    if (!scan)
        return NULL;
    assert_int_equal(scan->n_series, 1);
    SmDicomLoadOptions opt = {tilt, 0};
    SmVolume *v = NULL;
    sm_io_dicom_series_load(e, scan, 0, &opt, &v, NULL);
    sm_io_dicom_scan_destroy(scan);
    return v;
}

/* b (loaded) must hold a's voxels at a's world positions. The loader always orders slices
 * ascending along the slice normal (row x column direction), so when a's slice axis runs
 * against the normal b holds the same grid with k reversed. */
static void assert_same_volume(const SmVolume *a, const SmVolume *b)
{
    for (int d = 0; d < 3; d++)
        assert_int_equal(a->dims[d], b->dims[d]);
    assert_int_equal(a->type, b->type);
    const double(*m)[4] = b->affine;
    double n[3] = {m[1][0] * m[2][1] - m[2][0] * m[1][1], m[2][0] * m[0][1] - m[0][0] * m[2][1],
                   m[0][0] * m[1][1] - m[1][0] * m[0][1]};
    assert_true(n[0] * m[0][2] + n[1] * m[1][2] + n[2] * m[2][2] > 0.0);
    SmGridMap map;
    assert_true(sm_volume_grid_match(a, b, 1e-4 * (double)a->dims[2], &map));
    assert_true(map.perm[0] == 0 && map.perm[1] == 1 && map.perm[2] == 2);
    assert_false(map.flip[0] || map.flip[1]);
    SmVolume *r = sm_volume_reindex(NULL, a, b, &map);
    assert_non_null(r);
    for (int row = 0; row < 3; row++)
        for (int c = 0; c < 4; c++)
            assert_true(fabs(a->affine[row][c] - r->affine[row][c]) < 1e-4);
    assert_memory_equal(a->data, r->data, sm_volume_n_voxels(a) * sm_voxel_size(a->type));
    sm_volume_destroy(r);
}

static void write_volume(const SmVolume *v, const char *dir, const char *series_uid)
{
    SmDicomWriteOptions o = {0};
    o.rescale_intercept = -1024;
    o.kvp = 120;
    o.convolution_kernel = "B30f";
    o.series_description = "unit test";
    o.series_uid = series_uid;
    SmError *e = NULL;
    bool ok = sm_io_dicom_series_write(&e, v, dir, &o);
    if (!ok)
        fail_msg("write failed: %s", e->message);
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* ---------- geometry round trips ---------- */

static void roundtrip(double a, double b, bool feet_first, bool shuffle)
{
    double dir[3][3], origin[3] = {-12.3, 45.6, -78.9};
    oblique_dirs(a, b, dir);
    if (feet_first)
        for (int r = 0; r < 3; r++)
            dir[r][2] = -dir[r][2];
    SmVolume *v = make_volume(dir, origin);
    char *tmp = temp_dir();
    char *sub = path_join(tmp, "series");
    write_volume(v, sub, NULL);
    if (shuffle) {
        /* names that sort in neither slice order nor its reverse */
        static const int perm[11] = {7, 2, 10, 0, 5, 8, 1, 9, 3, 6, 4};
        for (int k = 0; k < 11; k++) {
            char from[64], to[64];
            snprintf(from, sizeof from, "IM%05d.dcm", k + 1);
            snprintf(to, sizeof to, "z%02d_%c", perm[k], 'a' + (k * 5) % 11);
            char *f = path_join(sub, from), *t = path_join(sub, to);
            assert_int_equal(rename(f, t), 0);
            free(f);
            free(t);
        }
    }
    SmError *e = NULL;
    if (!shuffle) {
        /* files[] is in slice order, ascending along the normal: IM00001 ... IM00011, or
         * the reverse when the written slice axis ran against the normal (feet-first here) */
        SmDicomScan *scan = scan_one(sub, &e);
        assert_non_null(scan);
        for (size_t k = 0; k < 11; k++) {
            char want[32];
            snprintf(want, sizeof want, "IM%05zu.dcm", feet_first ? 11 - k : k + 1);
            assert_non_null(strstr(scan->series[0].files[k], want));
        }
        sm_io_dicom_scan_destroy(scan);
    }
    SmVolume *r = load_one(sub, SM_TILT_RESAMPLE, &e);
    if (!r)
        fail_msg("load failed: %s", e->message);
    assert_same_volume(v, r);
    assert_true(fabs(r->spacing[0] - 0.7) < 1e-6 && fabs(r->spacing[1] - 0.9) < 1e-6 && fabs(r->spacing[2] - 2.5) < 1e-6);
    assert_string_equal(r->meta.modality, "CT");
    assert_string_equal(r->meta.source, "dicom");
    assert_string_equal(r->meta.convolution_kernel, "B30f");
    assert_string_equal(r->meta.patient_position, "HFS");
    assert_true(fabs(r->meta.kvp - 120) < 1e-9);
    assert_true(fabs(r->meta.slice_thickness_mm - 2.5) < 1e-9);
    assert_false(r->meta.resampled);
    assert_true(r->meta.is_hu);
    sm_volume_destroy(r);
    sm_volume_destroy(v);
    rm_rf(tmp);
    free(sub);
    free(tmp);
}

static void test_roundtrip_axial(void **state)
{
    (void)state;
    roundtrip(0, 0, false, false);
}

static void test_roundtrip_oblique(void **state)
{
    (void)state;
    roundtrip(0.35, -0.2, false, false);
}

static void test_roundtrip_feet_first_shuffled(void **state)
{
    (void)state;
    roundtrip(0.35, -0.2, true, true);
}

static void test_roundtrip_feet_first(void **state)
{
    (void)state;
    roundtrip(0.1, 0.05, true, false);
}

static void test_roundtrip_shuffled(void **state)
{
    (void)state;
    roundtrip(-0.1, 0.5, false, true);
}

/* Thread count must not change a voxel. */
static void test_threads_deterministic(void **state)
{
    (void)state;
    double dir[3][3], origin[3] = {1, 2, 3};
    oblique_dirs(0.2, 0.1, dir);
    SmVolume *v = make_volume(dir, origin);
    char *tmp = temp_dir();
    write_volume(v, tmp, NULL);
    SmError *e = NULL;
    SmDicomScan *scan = scan_one(tmp, &e);
    assert_non_null(scan);
    SmVolume *a = NULL, *b = NULL;
    SmDicomLoadOptions o1 = {SM_TILT_RESAMPLE, 1}, o2 = {SM_TILT_RESAMPLE, 3};
    assert_true(sm_io_dicom_series_load(&e, scan, 0, &o1, &a, NULL));
    assert_true(sm_io_dicom_series_load(&e, scan, 0, &o2, &b, NULL));
    assert_same_volume(a, b);
    assert_same_volume(v, a);
    sm_volume_destroy(a);
    sm_volume_destroy(b);
    sm_volume_destroy(v);
    sm_io_dicom_scan_destroy(scan);
    rm_rf(tmp);
    free(tmp);
}

/* F32 input with non-integer values is rounded to integer HU by the writer (16-bit storage). */
static void test_write_f32_rounds(void **state)
{
    (void)state;
    size_t dims[3] = {5, 3, 2};
    SmError *e = NULL;
    SmVolume *v = sm_volume_create(&e, dims, SM_VOXEL_F32);
    float *d = v->data;
    for (size_t i = 0; i < 30; i++)
        d[i] = (float)i * 10.4f - 100.0f;
    char *tmp = temp_dir();
    write_volume(v, tmp, NULL);
    SmVolume *r = load_one(tmp, SM_TILT_RESAMPLE, &e);
    assert_non_null(r);
    assert_int_equal(r->type, SM_VOXEL_I16);
    for (size_t i = 0; i < 30; i++)
        assert_int_equal(((int16_t *)r->data)[i], (int)nearbyint(d[i]));
    sm_volume_destroy(r);
    sm_volume_destroy(v);
    rm_rf(tmp);
    free(tmp);
}

/* ---------- policies ---------- */

static void test_missing_slice_refused(void **state)
{
    (void)state;
    double dir[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, origin[3] = {0, 0, 0};
    SmVolume *v = make_volume(dir, origin);
    char *tmp = temp_dir();
    write_volume(v, tmp, NULL);
    char *f = path_join(tmp, "IM00006.dcm");
    assert_int_equal(unlink(f), 0);
    free(f);
    SmError *e = NULL;
    SmDicomScan *scan = scan_one(tmp, &e);
    assert_non_null(scan);
    assert_int_equal(scan->series[0].n_files, 10);
    SmVolume *r = NULL;
    assert_false(sm_io_dicom_series_load(&e, scan, 0, NULL, &r, NULL));
    assert_null(r);
    assert_int_equal(e->code, SM_ERR_GEOMETRY);
    /* slice 6 (index 5) is missing: the gap runs from z=10.0 (IM00005) to z=15.0 (IM00007) */
    assert_non_null(strstr(e->message, "missing slice"));
    assert_non_null(strstr(e->message, "5.000 mm"));
    assert_non_null(strstr(e->message, "IM00005.dcm"));
    assert_non_null(strstr(e->message, "IM00007.dcm"));
    /* the scan already warned */
    assert_true(scan->series[0].warnings.n >= 1);
    assert_non_null(strstr(scan->series[0].warnings.items[0], "missing slice"));
    sm_error_destroy(e);
    sm_io_dicom_scan_destroy(scan);
    sm_volume_destroy(v);
    rm_rf(tmp);
    free(tmp);
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

static void test_duplicates(void **state)
{
    (void)state;
    double dir[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, origin[3] = {0, 0, 0};
    SmVolume *v = make_volume(dir, origin);
    char *tmp = temp_dir();
    char *a = path_join(tmp, "a"), *b = path_join(tmp, "b");
    write_volume(v, a, "1.2.826.0.1.3680043.2.1125.77.1");
    /* same file copied: same SOP Instance UID -> skipped at scan */
    char *f = path_join(a, "IM00003.dcm"), *g = path_join(a, "copy_of_3.dcm");
    copy_file(f, g);
    /* same pixels and position, new SOP Instance UID (written again) -> dropped at load */
    write_volume(v, b, "1.2.826.0.1.3680043.2.1125.77.1");
    SmError *e = NULL;
    SmDicomScan *scan = scan_one(tmp, &e);
    assert_non_null(scan);
    assert_int_equal(scan->n_series, 1);
    assert_int_equal(scan->n_skipped, 1);
    assert_non_null(strstr(scan->skipped[0].reason, "same SOP Instance UID"));
    SmVolume *r = NULL;
    SmStrList w = {0};
    assert_true(sm_io_dicom_series_load(&e, scan, 0, NULL, &r, &w));
    assert_same_volume(v, r);
    size_t dropped = 0;
    for (size_t i = 0; i < w.n; i++)
        dropped += strstr(w.items[i], "dropped exact duplicate") != NULL;
    assert_int_equal(dropped, 11);
    sm_strlist_clear(&w);
    sm_volume_destroy(r);
    sm_io_dicom_scan_destroy(scan);

    /* different pixels at the same positions under one UID: refused */
    rm_rf(b);
    ((int16_t *)v->data)[0] += 1;
    write_volume(v, b, "1.2.826.0.1.3680043.2.1125.77.1");
    scan = scan_one(tmp, &e);
    assert_non_null(scan);
    assert_false(sm_io_dicom_series_load(&e, scan, 0, NULL, &r, NULL));
    assert_int_equal(e->code, SM_ERR_GEOMETRY);
    assert_non_null(strstr(e->message, "two different images at the same position"));
    sm_error_destroy(e);
    sm_io_dicom_scan_destroy(scan);
    sm_volume_destroy(v);
    rm_rf(tmp);
    free(a);
    free(b);
    free(f);
    free(g);
    free(tmp);
}

static void test_mixed_series_and_localizer(void **state)
{
    (void)state;
    double dir[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, origin[3] = {0, 0, 0};
    double dir2[3][3];
    oblique_dirs(0.3, 0.0, dir2);
    SmVolume *v = make_volume(dir, origin), *v2 = make_volume(dir2, origin);
    char *tmp = temp_dir();
    char *a = path_join(tmp, "one"), *b = path_join(tmp, "two");
    write_volume(v, a, "1.2.826.0.1.3680043.2.1125.77.2");
    write_volume(v2, b, "1.2.826.0.1.3680043.2.1125.77.3");
    /* a localizer in the same series folder */
    uint16_t px[6] = {1, 2, 3, 4, 5, 6};
    SmDcmWriteSlice sl = {0};
    sl.study_uid = "1.2.3";
    sl.series_uid = "1.2.826.0.1.3680043.2.1125.77.2";
    sl.frame_of_reference_uid = "1.2.3.4";
    sl.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER";
    sl.iop[0] = 1;
    sl.iop[5] = -1;
    sl.pixel_spacing[0] = sl.pixel_spacing[1] = 1;
    sl.slice_thickness = 1;
    sl.rescale_slope = 1;
    sl.kvp = NAN;
    sl.rows = 2;
    sl.cols = 3;
    sl.pixels = px;
    char *loc = path_join(a, "scout.dcm");
    SmError *e = NULL;
    assert_true(sm_dcm_ct_write(&e, loc, &sl));
    SmDicomScan *scan = scan_one(tmp, &e);
    assert_non_null(scan);
    assert_int_equal(scan->n_series, 2);
    assert_int_equal(scan->n_skipped, 1);
    assert_non_null(strstr(scan->skipped[0].path, "scout.dcm"));
    assert_non_null(strstr(scan->skipped[0].reason, "LOCALIZER"));
    for (size_t s = 0; s < 2; s++) {
        SmVolume *r = NULL;
        assert_true(sm_io_dicom_series_load(&e, scan, s, NULL, &r, NULL));
        const SmVolume *want = strcmp(scan->series[s].series_uid, "1.2.826.0.1.3680043.2.1125.77.2") == 0 ? v : v2;
        assert_same_volume(want, r);
        sm_volume_destroy(r);
    }
    sm_io_dicom_scan_destroy(scan);

    /* one UID, two orientations: split into two stacks, never mixed */
    rm_rf(b);
    write_volume(v2, b, "1.2.826.0.1.3680043.2.1125.77.2");
    scan = scan_one(tmp, &e);
    assert_non_null(scan);
    assert_int_equal(scan->n_series, 2);
    assert_string_equal(scan->series[0].series_uid, scan->series[1].series_uid);
    assert_string_not_equal(scan->series[0].stack_id, scan->series[1].stack_id);
    assert_int_equal(scan->series[0].n_files, 11);
    assert_int_equal(scan->series[1].n_files, 11);
    sm_io_dicom_scan_destroy(scan);
    sm_volume_destroy(v);
    sm_volume_destroy(v2);
    rm_rf(tmp);
    free(a);
    free(b);
    free(loc);
    free(tmp);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* Offset of the first explicit-VR element (group,elem) after the preamble. */
static size_t tag_offset(const unsigned char *buf, size_t n, unsigned group, unsigned elem)
{
    for (size_t i = 132; i + 8 <= n; i++)
        if (buf[i] == (group & 0xFF) && buf[i + 1] == group >> 8 && buf[i + 2] == (elem & 0xFF) &&
            buf[i + 3] == elem >> 8 && buf[i + 4] >= 'A' && buf[i + 4] <= 'Z')
            return i;
    fail_msg("tag not found");
    return 0;
}

/* Patches the first US value of tag (group,elem) in an explicit VR LE file. */
static void patch_us(unsigned char *buf, size_t n, unsigned group, unsigned elem, unsigned value)
{
    for (size_t i = 132; i + 10 <= n; i++)
        if (buf[i] == (group & 0xFF) && buf[i + 1] == group >> 8 && buf[i + 2] == (elem & 0xFF) &&
            buf[i + 3] == elem >> 8 && buf[i + 4] == 'U' && buf[i + 5] == 'S') {
            buf[i + 8] = value & 0xFF;
            buf[i + 9] = value >> 8;
            return;
        }
    fail_msg("tag not found");
}

static void test_broken_files(void **state)
{
    (void)state;
    double dir[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, origin[3] = {0, 0, 0};
    SmVolume *v = make_volume(dir, origin);
    char *tmp = temp_dir();
    char *good = path_join(tmp, "good"), *bad = path_join(tmp, "bad");
    write_volume(v, good, NULL);
    assert_int_equal(mkdir(bad, 0755), 0);
    size_t n;
    char *src = path_join(good, "IM00001.dcm");
    unsigned char *buf = read_all(src, &n);
    char *p;
    p = path_join(bad, "truncated.dcm");
    write_bytes(p, buf, n / 2);
    free(p);
    /* cut inside the value of the dataset's first UID (SOP Class UID), whatever the
     * generated UIDs' lengths: always mid-element */
    p = path_join(bad, "header_cut.dcm");
    write_bytes(p, buf, tag_offset(buf, n, 0x0008, 0x0016) + 8 + 5);
    free(p);
    p = path_join(bad, "empty.dcm");
    write_bytes(p, "", 0);
    free(p);
    unsigned char garbage[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof garbage; i++) {
        x = x * 1103515245u + 12345u;
        garbage[i] = (unsigned char)(x >> 16);
    }
    p = path_join(bad, "garbage.dcm");
    write_bytes(p, garbage, sizeof garbage);
    free(p);
    p = path_join(bad, "notes.txt");
    write_bytes(p, "hello, not DICOM\n", 17);
    free(p);
    unsigned char *absurd = malloc(n);
    memcpy(absurd, buf, n);
    patch_us(absurd, n, 0x0028, 0x0010, 65535);
    patch_us(absurd, n, 0x0028, 0x0011, 65535);
    p = path_join(bad, "absurd.dcm");
    write_bytes(p, absurd, n);
    free(p);
    memcpy(absurd, buf, n);
    patch_us(absurd, n, 0x0028, 0x0100, 12); /* Bits Allocated 12 */
    p = path_join(bad, "bits12.dcm");
    write_bytes(p, absurd, n);
    free(p);
    free(absurd);

    SmError *e = NULL;
    SmDicomScan *scan = scan_one(bad, &e);
    assert_null(scan);
    assert_int_equal(e->code, SM_ERR_NO_SERIES);
    sm_error_destroy(e);
    e = NULL;

    scan = scan_one(tmp, &e);
    assert_non_null(scan);
    assert_int_equal(scan->n_series, 1);
    assert_int_equal(scan->series[0].n_files, 11);
    assert_int_equal(scan->n_skipped, 7);
    for (size_t i = 0; i < scan->n_skipped; i++) {
        const char *path = scan->skipped[i].path, *why = scan->skipped[i].reason;
        assert_true(strlen(why) > 5);
        if (strstr(path, "empty.dcm"))
            assert_non_null(strstr(why, "empty file"));
        else if (strstr(path, "absurd.dcm"))
            assert_true(strstr(why, "absurd") || strstr(why, "short Pixel Data") || strstr(why, "Rows"));
        else if (strstr(path, "truncated.dcm") || strstr(path, "header_cut.dcm"))
            assert_true(strstr(why, "truncated") || strstr(why, "not a readable DICOM") || strstr(why, "short"));
        else if (strstr(path, "bits12.dcm"))
            assert_non_null(strstr(why, "Bits Allocated 12"));
    }
    SmVolume *r = NULL;
    assert_true(sm_io_dicom_series_load(&e, scan, 0, NULL, &r, NULL));
    assert_same_volume(v, r);
    sm_volume_destroy(r);
    sm_io_dicom_scan_destroy(scan);

    /* a path that does not exist is an I/O error */
    scan = scan_one("/nonexistent/dicom/folder", &e);
    assert_null(scan);
    assert_int_equal(e->code, SM_ERR_IO);
    assert_non_null(strstr(e->message, "/nonexistent/dicom/folder"));
    sm_error_destroy(e);
    free(buf);
    free(src);
    sm_volume_destroy(v);
    rm_rf(tmp);
    free(good);
    free(bad);
    free(tmp);
}

/* A sheared stack (gantry tilt) written by hand: every slice is shifted by half a row
 * spacing along the column direction. Values 10*j make linear interpolation exact. */
static void test_tilt_synthetic(void **state)
{
    (void)state;
    size_t dims[3] = {9, 13, 7};
    SmError *e = NULL;
    SmVolume *v = sm_volume_create(&e, dims, SM_VOXEL_I16);
    int16_t *d = v->data;
    for (size_t k = 0; k < 7; k++)
        for (size_t j = 0; j < 13; j++)
            for (size_t i = 0; i < 9; i++)
                d[i + 9 * (j + 13 * k)] = (int16_t)(10 * j);
    double dir[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, sp[3] = {0.8, 0.6, 2.0}, origin[3] = {5, -7, 30};
    sm_volume_set_geometry(v, dir, sp, origin);
    v->affine[1][2] = 0.3; /* k column (0, 0.3, 2.0): 0.5 row spacing of drift per slice */
    char *tmp = temp_dir();
    write_volume(v, tmp, NULL);

    SmVolume *r = load_one(tmp, SM_TILT_REFUSE, &e);
    assert_null(r);
    assert_int_equal(e->code, SM_ERR_UNSUPPORTED);
    assert_non_null(strstr(e->message, "gantry tilt"));
    sm_error_destroy(e);
    e = NULL;

    r = load_one(tmp, SM_TILT_RESAMPLE, &e);
    assert_non_null(r);
    assert_true(r->meta.resampled);
    double expect_deg = atan2(0.3, 2.0) * 180.0 / 3.14159265358979323846;
    assert_true(fabs(r->meta.gantry_tilt_deg - expect_deg) < 1e-3);
    assert_int_equal(r->dims[2], 7);
    /* regular orthogonal grid: k column along the normal, origin at the first slice */
    assert_true(fabs(r->affine[0][2]) < 1e-9 && fabs(r->affine[1][2]) < 1e-9 && fabs(r->affine[2][2] - 2.0) < 1e-6);
    assert_true(fabs(r->affine[1][3] + 7) < 1e-6 && fabs(r->affine[2][3] - 30) < 1e-6);
    const int16_t *o = r->data;
    for (size_t k = 0; k < 7; k++)
        for (size_t j = 0; j < 13; j++) {
            /* output point (j,k) is input row j - 0.5k of slice k */
            double src = (double)j - 0.5 * (double)k;
            /* outside the acquired field is air; half a row outside blends with air */
            int want = src <= -1 ? -1024 : src < 0 ? (int)nearbyint(-src * -1024.0) : (int)nearbyint(10.0 * src);
            if (src > 12)
                continue;
            for (size_t i = 0; i < 9; i++)
                if (o[i + 9 * (j + 13 * k)] != want)
                    fail_msg("voxel %zu,%zu,%zu = %d, expected %d", i, j, k, o[i + 9 * (j + 13 * k)], want);
        }
    sm_volume_destroy(r);
    sm_volume_destroy(v);
    rm_rf(tmp);
    free(tmp);
}

/* One Enhanced CT multi-frame file whose frames are stored out of order, geometry only in
 * the functional groups (shared orientation/spacing/rescale, per-frame position). */
static void test_enhanced_multiframe(void **state)
{
    (void)state;
    double dir[3][3], origin[3] = {3.5, -20.25, 101.0};
    oblique_dirs(-0.3, 0.25, dir);
    SmVolume *v = make_volume(dir, origin);
    const size_t nx = 23, ny = 17, nz = 11;
    static const int perm[11] = {4, 9, 0, 7, 2, 10, 5, 1, 8, 3, 6};
    uint16_t *px = malloc(nx * ny * nz * sizeof *px);
    double ipp[11][3];
    for (size_t f = 0; f < nz; f++) {
        size_t k = (size_t)perm[f];
        for (size_t q = 0; q < nx * ny; q++)
            px[f * nx * ny + q] = (uint16_t)(((int16_t *)v->data)[k * nx * ny + q] + 1024);
        for (int a = 0; a < 3; a++)
            ipp[f][a] = v->affine[a][3] + (double)k * v->affine[a][2];
    }
    SmDcmWriteSlice sl = {0};
    sl.study_uid = "1.2.826.0.1.3680043.2.1125.77.10";
    sl.series_uid = "1.2.826.0.1.3680043.2.1125.77.11";
    sl.frame_of_reference_uid = "1.2.826.0.1.3680043.2.1125.77.12";
    for (int a = 0; a < 3; a++) {
        sl.iop[a] = dir[a][0];
        sl.iop[3 + a] = dir[a][1];
    }
    sl.pixel_spacing[0] = 0.9;
    sl.pixel_spacing[1] = 0.7;
    sl.slice_thickness = 2.5;
    sl.rescale_intercept = -1024;
    sl.rescale_slope = 1;
    sl.rows = (unsigned)ny;
    sl.cols = (unsigned)nx;
    char *tmp = temp_dir();
    char *path = path_join(tmp, "enhanced.dcm");
    SmError *e = NULL;
    assert_true(sm_dcm_enhanced_ct_write(&e, path, &sl, nz, (const double(*)[3])ipp, px));
    SmDicomScan *scan = scan_one(path, &e);
    assert_non_null(scan);
    assert_int_equal(scan->series[0].n_files, 1);
    assert_int_equal(scan->series[0].n_frames, 11);
    SmVolume *r = NULL;
    assert_true(sm_io_dicom_series_load(&e, scan, 0, NULL, &r, NULL));
    /* no Instance Numbers per frame: k runs along the normal, as the written volume does */
    assert_same_volume(v, r);
    sm_volume_destroy(r);
    sm_io_dicom_scan_destroy(scan);
    sm_volume_destroy(v);
    free(px);
    rm_rf(tmp);
    free(path);
    free(tmp);
}

/* The seed corpus holds one 7x5 CT slice (values (i*37) mod 2500 - 1024 HU, i the pixel
 * index) in nine transfer syntaxes, made with our writer and DCMTK's/OpenJPEG's encoders;
 * every one must decode to exactly those values. */
static void test_seed_transfer_syntaxes(void **state)
{
    (void)state;
    const char *names[] = {"ct_explicit_le.dcm", "ct_implicit_le.dcm", "ct_big_endian.dcm",
                           "ct_deflate.dcm",     "ct_rle.dcm",         "ct_jpeg_lossless.dcm",
                           "ct_jpegls.dcm",      "ct_j2k_lossless.dcm", "ct_htj2k_label.dcm"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tests/fuzz/seeds/%s", SM_SOURCE_DIR, names[f]);
        SmError *e = NULL;
        SmVolume *r = load_one(path, SM_TILT_RESAMPLE, &e);
        if (!r)
            fail_msg("%s: %s", names[f], e->message);
        assert_int_equal(r->dims[0], 7);
        assert_int_equal(r->dims[1], 5);
        assert_int_equal(r->dims[2], 1);
        assert_int_equal(r->type, SM_VOXEL_I16);
        for (int i = 0; i < 35; i++)
            if (((int16_t *)r->data)[i] != (i * 37) % 2500 - 1024)
                fail_msg("%s: pixel %d = %d", names[f], i, ((int16_t *)r->data)[i]);
        assert_true(fabs(r->spacing[0] - 0.7) < 1e-9 && fabs(r->spacing[1] - 0.9) < 1e-9);
        sm_volume_destroy(r);
    }
}

/* Our lossless JPEG decoder, called directly (not through the DCMTK fallback) on DCMTK-made
 * streams with every predictor (selection value 1..7) and a point transform: 31x23 pixels
 * whose stored values are ((i*37) mod 2500 - 1024) + 1024. */
static void test_ljpeg_predictors(void **state)
{
    (void)state;
    const char *names[] = {"ljpeg_sv1.dcm", "ljpeg_sv2.dcm", "ljpeg_sv3.dcm", "ljpeg_sv4.dcm",
                           "ljpeg_sv5.dcm", "ljpeg_sv6.dcm", "ljpeg_sv7.dcm", "ljpeg_sv1_pt2.dcm"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tests/fuzz/seeds/%s", SM_SOURCE_DIR, names[f]);
        size_t n;
        unsigned char *buf = read_all(path, &n);
        size_t off = 0;
        while (off + 3 < n && !(buf[off] == 0xFF && buf[off + 1] == 0xD8 && buf[off + 2] == 0xFF))
            off++;
        assert_true(off + 3 < n);
        uint16_t out[31 * 23];
        SmError *e = NULL;
        if (!sm_ljpeg_decode(&e, buf + off, n - off, 23, 31, 2, out))
            fail_msg("%s: %s", names[f], e->message);
        int pt = strstr(names[f], "pt2") ? 2 : 0;
        for (int i = 0; i < 31 * 23; i++) {
            int want = ((i * 37) % 2500) >> pt << pt;
            if (out[i] != want)
                fail_msg("%s: pixel %d = %u, expected %d", names[f], i, out[i], want);
        }
        free(buf);
        /* and through the whole loader */
        SmVolume *r = load_one(path, SM_TILT_RESAMPLE, &e);
        assert_non_null(r);
        for (int i = 0; i < 31 * 23; i++)
            assert_int_equal(((int16_t *)r->data)[i], (((i * 37) % 2500) >> pt << pt) - 1024);
        sm_volume_destroy(r);
    }
    /* corrupt streams are refused, not mis-decoded */
    const uint8_t junk[] = {0xFF, 0xD8, 0xFF, 0xC3, 0x00, 0x0B, 0x10, 0x00, 0x05, 0x00, 0x07, 0x01, 0x01, 0x11, 0x00};
    uint16_t out[35];
    SmError *e = NULL;
    assert_false(sm_ljpeg_decode(&e, junk, sizeof junk, 5, 7, 2, out));
    assert_non_null(e);
    sm_error_destroy(e);
}

/* Writes nz axial slices (1 x 1 mm pixels, 2 mm apart) of stored values with sm_dcm_ct_write. */
static void write_raw_series(const char *dir, const char *prefix, const char *series_uid, long acq, unsigned nx,
                             unsigned ny, unsigned nz, const uint16_t *stored, double slope, double intercept,
                             bool sgn)
{
    mkdir(dir, 0755);
    for (unsigned k = 0; k < nz; k++) {
        SmDcmWriteSlice sl = {0};
        sl.study_uid = "1.2.826.0.1.3680043.2.1125.77.20";
        sl.series_uid = series_uid;
        sl.frame_of_reference_uid = "1.2.826.0.1.3680043.2.1125.77.21";
        sl.iop[0] = 1;
        sl.iop[4] = 1;
        sl.ipp[2] = 2.0 * k;
        sl.pixel_spacing[0] = sl.pixel_spacing[1] = 1;
        sl.slice_thickness = 2;
        sl.rescale_slope = slope;
        sl.rescale_intercept = intercept;
        sl.kvp = NAN;
        sl.instance_number = (long)k + 1;
        sl.acquisition_number = acq;
        sl.rows = ny;
        sl.cols = nx;
        sl.pixel_signed = sgn;
        sl.pixels = stored + (size_t)k * nx * ny;
        char name[256];
        snprintf(name, sizeof name, "%s%02u.dcm", prefix, k);
        char *path = path_join(dir, name);
        SmError *e = NULL;
        if (!sm_dcm_ct_write(&e, path, &sl))
            fail_msg("%s", e->message);
        free(path);
    }
}

/* One Series Instance UID, two acquisitions of the same slab: two stacks, never mixed. */
static void test_acquisitions_split(void **state)
{
    (void)state;
    uint16_t a[5 * 3 * 4], b[5 * 3 * 4];
    for (int i = 0; i < 60; i++) {
        a[i] = (uint16_t)(1000 + i);
        b[i] = (uint16_t)(2000 + i);
    }
    char *tmp = temp_dir();
    write_raw_series(tmp, "acq1_", "1.2.826.0.1.3680043.2.1125.77.22", 1, 5, 3, 4, a, 1, -1024, false);
    write_raw_series(tmp, "acq2_", "1.2.826.0.1.3680043.2.1125.77.22", 2, 5, 3, 4, b, 1, -1024, false);
    SmError *e = NULL;
    SmDicomScan *scan = scan_one(tmp, &e);
    assert_non_null(scan);
    assert_int_equal(scan->n_series, 2);
    for (size_t s = 0; s < 2; s++) {
        assert_int_equal(scan->series[s].n_files, 4);
        SmVolume *r = NULL;
        assert_true(sm_io_dicom_series_load(&e, scan, s, NULL, &r, NULL));
        assert_int_equal(r->dims[2], 4);
        int16_t first = ((int16_t *)r->data)[0];
        assert_true(first == 1000 - 1024 || first == 2000 - 1024);
        const uint16_t *src = first == 1000 - 1024 ? a : b;
        for (int i = 0; i < 60; i++)
            assert_int_equal(((int16_t *)r->data)[i], src[i] - 1024);
        sm_volume_destroy(r);
    }
    assert_true(scan->series[0].files[0][strlen(tmp) + 4] != scan->series[1].files[0][strlen(tmp) + 4]);
    sm_io_dicom_scan_destroy(scan);
    rm_rf(tmp);
    free(tmp);
}

/* Voxel type choice: slope 0.5 gives non-integers (float32); slope 2 with large stored values
 * gives integers beyond int16 (float32 after the int16 attempt overflows); slope 1 with a
 * signed 16-bit pattern stays int16. */
static void test_voxel_type_choice(void **state)
{
    (void)state;
    uint16_t st[4 * 2 * 2];
    for (int i = 0; i < 16; i++)
        st[i] = (uint16_t)(i * 2001 + 1);
    struct {
        double slope, intercept;
        bool sgn;
        SmVoxelType type;
    } cases[] = {{0.5, -10, false, SM_VOXEL_F32}, {2, -1024, false, SM_VOXEL_F32}, {1, 0, true, SM_VOXEL_I16}};
    for (size_t c = 0; c < 3; c++) {
        char *tmp = temp_dir();
        write_raw_series(tmp, "s", "1.2.826.0.1.3680043.2.1125.77.23", 1, 4, 2, 2, st, cases[c].slope,
                         cases[c].intercept, cases[c].sgn);
        SmError *e = NULL;
        SmVolume *r = load_one(tmp, SM_TILT_RESAMPLE, &e);
        if (!r)
            fail_msg("%s", e->message);
        assert_int_equal(r->type, cases[c].type);
        for (int i = 0; i < 16; i++) {
            double stored = cases[c].sgn ? (double)(int16_t)st[i] : (double)st[i];
            double want = stored * cases[c].slope + cases[c].intercept;
            if (sm_volume_get(r, (size_t)i % 4, ((size_t)i / 4) % 2, (size_t)i / 8) != want)
                fail_msg("case %zu voxel %d: %g != %g", c, i,
                         sm_volume_get(r, (size_t)i % 4, ((size_t)i / 4) % 2, (size_t)i / 8), want);
        }
        sm_volume_destroy(r);
        rm_rf(tmp);
        free(tmp);
    }
}

/* Pixel Padding Value (signed storage, BitsStored 16) becomes air, -1024 HU, whatever the
 * rescale; neighbouring values are untouched. */
static void test_padding_to_air(void **state)
{
    (void)state;
    int16_t vals[6] = {-2000, -2000, 0, 40, 1000, -1999};
    SmDcmWriteSlice sl = {0};
    sl.study_uid = "1.2.826.0.1.3680043.2.1125.77.30";
    sl.series_uid = "1.2.826.0.1.3680043.2.1125.77.31";
    sl.frame_of_reference_uid = "1.2.826.0.1.3680043.2.1125.77.32";
    sl.iop[0] = 1;
    sl.iop[4] = 1;
    sl.pixel_spacing[0] = sl.pixel_spacing[1] = 1;
    sl.slice_thickness = 1;
    sl.rescale_slope = 1;
    sl.rescale_intercept = -24;
    sl.kvp = NAN;
    sl.rows = 2;
    sl.cols = 3;
    sl.pixel_signed = true;
    sl.has_padding = true;
    sl.padding_value = (uint16_t)(int16_t)-2000;
    sl.pixels = (const uint16_t *)vals;
    char *tmp = temp_dir();
    char *path = path_join(tmp, "pad.dcm");
    SmError *e = NULL;
    assert_true(sm_dcm_ct_write(&e, path, &sl));
    SmVolume *r = load_one(path, SM_TILT_RESAMPLE, &e);
    assert_non_null(r);
    const int16_t want[6] = {-1024, -1024, -24, 16, 976, -2023};
    assert_memory_equal(r->data, want, sizeof want);
    sm_volume_destroy(r);
    rm_rf(tmp);
    free(path);
    free(tmp);
}

/* ---------- real data ---------- */

static bool have(const char *path)
{
    if (dir_exists(path) || access(path, R_OK) == 0)
        return true;
    print_message("skipping: %s is absent\n", path);
    return false;
}

static void test_real_gantry_tilt(void **state)
{
    (void)state;
    const char *dir = SM_SHARED_DATA "/dicom-conformance/gantry-tilt-ct/In/GE";
    if (!have(dir))
        skip();
    SmError *e = NULL;
    SmVolume *r = load_one(dir, SM_TILT_REFUSE, &e);
    assert_null(r);
    assert_int_equal(e->code, SM_ERR_UNSUPPORTED);
    sm_error_destroy(e);
    e = NULL;
    r = load_one(dir, SM_TILT_RESAMPLE, &e);
    if (!r)
        fail_msg("%s", e->message);
    /* Ref/_2.json (dcm2niix): IOP 1,0,0 / 0,0.948324,-0.317305; 18.5 degree tilt in the header */
    assert_true(fabs(r->meta.gantry_tilt_deg - 18.5) < 0.05);
    assert_true(r->meta.resampled);
    double iop[6] = {1, 0, 0, 0, 0.948324, -0.317305};
    for (int a = 0; a < 3; a++) {
        assert_true(fabs(r->affine[a][0] / r->spacing[0] - iop[a]) < 1e-5);
        assert_true(fabs(r->affine[a][1] / r->spacing[1] - iop[3 + a]) < 1e-5);
    }
    assert_true(fabs(r->spacing[0] - 0.4882812) < 1e-6 && fabs(r->spacing[1] - 0.4882812) < 1e-6);
    /* 28 slices: 14 at 4 mm, one 1.08 mm gap, 13 at 7 mm along the normal; median 4 mm grid over
     * 4*13 + 1.08 + 7*13 = 144.1 mm -> 37 slices */
    assert_true(fabs(r->spacing[2] - 4.0) < 0.01);
    assert_int_equal(r->dims[2], 37);
    assert_string_equal(r->meta.modality, "CT");
    assert_string_equal(r->meta.convolution_kernel, "STD+");
    assert_string_equal(r->meta.body_part, "HEAD");
    assert_string_equal(r->meta.patient_position, "HFS");
    assert_true(fabs(r->meta.slice_thickness_mm - 4.0) < 1e-9);
    assert_non_null(strstr(r->meta.manufacturer, "GE"));
    double mn, mx, mean;
    sm_volume_stats(r, &mn, &mx, &mean);
    assert_true(mn >= -1024 && mx > 1000);
    sm_volume_destroy(r);
}

/* True if every voxel centre of a is a voxel centre of b: inv(B)*A is a signed permutation
 * with an integer translation and a's corners land inside b. */
static bool grid_maps_exactly(const SmVolume *a, const SmVolume *b)
{
    double binv[4][4], m[4][4];
    if (!sm_mat4_affine_inverse(b->affine, binv))
        return false;
    sm_mat4_mul(binv, a->affine, m);
    for (int r = 0; r < 3; r++) {
        int ones = 0;
        for (int c = 0; c < 3; c++) {
            double v = fabs(m[r][c]);
            if (fabs(v - 1) < 1e-4)
                ones++;
            else if (v > 1e-4)
                return false;
        }
        if (ones != 1 || fabs(m[r][3] - nearbyint(m[r][3])) > 1e-3)
            return false;
    }
    for (int corner = 0; corner < 8; corner++) {
        double ijk[3], lps[3], out[3];
        for (int d = 0; d < 3; d++)
            ijk[d] = (corner >> d) & 1 ? (double)(a->dims[d] - 1) : 0.0;
        sm_volume_index_to_lps(a, ijk, lps);
        sm_volume_lps_to_index(b, lps, out);
        for (int d = 0; d < 3; d++)
            if (out[d] < -1e-3 || out[d] > (double)(b->dims[d] - 1) + 1e-3)
                return false;
    }
    return true;
}

static void test_real_totalseg_j2k(void **state)
{
    (void)state;
    const char *dir = SM_SHARED_DATA "/ct-totalseg-dicom/dicom";
    if (!have(dir))
        skip();
    SmError *e = NULL;
    SmDicomScan *scan = scan_one(dir, &e);
    assert_non_null(scan);
    assert_int_equal(scan->n_series, 1);
    assert_non_null(strstr(scan->series[0].transfer_syntaxes.items[0], "1.2.840.10008.1.2.4.90"));
    SmVolume *r = NULL;
    assert_true(sm_io_dicom_series_load(&e, scan, 0, NULL, &r, NULL));
    sm_io_dicom_scan_destroy(scan);
    assert_int_equal(r->dims[0], 512);
    assert_int_equal(r->dims[1], 512);
    assert_int_equal(r->dims[2], 20);
    assert_true(fabs(r->spacing[0] - 0.977) < 1e-3 && fabs(r->spacing[1] - 0.977) < 1e-3);
    assert_true(fabs(r->spacing[2] - 2.0) < 1e-3);
    assert_int_equal(r->type, SM_VOXEL_I16);
    double mn, mx, mean;
    sm_volume_stats(r, &mn, &mx, &mean);
    assert_true(mn >= -1025 && mn <= -1000);
    assert_true(mx > 1000);
    const char *lab_path = SM_SHARED_DATA "/ct-totalseg-dicom/labels_total.nii.gz";
    SmVolume *lab = NULL;
    if (sm_io_nifti_load(&e, lab_path, &lab)) {
        /* dcm2niix-style files store rows and slices flipped: the grids must be the same
         * points, index for index up to axis flips/permutations. */
        assert_true(grid_maps_exactly(r, lab));
        sm_volume_destroy(lab);
    } else {
        print_message("label grid check not run: %s\n", e ? e->message : "?");
        sm_error_destroy(e);
    }
    sm_volume_destroy(r);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_real_transfer_syntaxes(void **state)
{
    (void)state;
    const char *dir = SM_SHARED_DATA "/dicom-conformance/transfer-syntaxes";
    if (!have(dir))
        skip();
    SmVolume *first = NULL;
    for (int i = 1; i <= 9; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/In/%d.dcm", dir, i);
        SmError *e = NULL;
        SmVolume *r = load_one(path, SM_TILT_RESAMPLE, &e);
        if (!r)
            fail_msg("%s: %s", path, e->message);
        if (first == NULL) {
            first = r;
            /* Independent reader: dcm2niix's Ref NIfTI. The image is a Siemens MOSAIC (6x6
             * tiles of 64x64, 35 slices) that dcm2niix demosaics and flips; we load the mosaic
             * as one 2D image. Compare per-tile sums with per-slice sums as multisets. */
            char ref[4096];
            snprintf(ref, sizeof ref, "%s/Ref/%d.nii", dir, i);
            SmVolume *nii = NULL;
            if (sm_io_nifti_load(&e, ref, &nii)) {
                assert_int_equal(nii->dims[0], 64);
                assert_int_equal(nii->dims[1], 64);
                assert_int_equal(nii->dims[2], 35);
                assert_int_equal(r->dims[0], 384);
                double ours[36] = {0}, theirs[35] = {0};
                for (size_t y = 0; y < 384; y++)
                    for (size_t x = 0; x < 384; x++)
                        ours[(y / 64) * 6 + x / 64] += sm_volume_get(r, x, y, 0);
                for (size_t z = 0; z < 35; z++)
                    for (size_t y = 0; y < 64; y++)
                        for (size_t x = 0; x < 64; x++)
                            theirs[z] += sm_volume_get(nii, x, y, z);
                assert_true(ours[35] == 0.0); /* the unused 36th tile */
                qsort(ours, 35, sizeof(double), cmp_dbl);
                qsort(theirs, 35, sizeof(double), cmp_dbl);
                for (int z = 0; z < 35; z++)
                    if (ours[z] != theirs[z])
                        fail_msg("tile sum %g != Ref slice sum %g", ours[z], theirs[z]);
                sm_volume_destroy(nii);
            } else {
                print_message("Ref NIfTI not compared: %s\n", e ? e->message : "?");
                sm_error_destroy(e);
            }
            continue;
        }
        assert_same_volume(first, r);
        sm_volume_destroy(r);
    }
    double mn, mx, mean;
    sm_volume_stats(first, &mn, &mx, &mean);
    assert_true(mn == 0 && mx == 2362);
    sm_volume_destroy(first);
}

static void test_real_lidc_jpegls(void **state)
{
    (void)state;
    const char *dir = SM_SHARED_DATA "/ct-chest-lidc/dicom";
    if (!have(dir))
        skip();
    SmError *e = NULL;
    SmVolume *r = load_one(dir, SM_TILT_RESAMPLE, &e);
    if (!r)
        fail_msg("%s", e->message);
    assert_int_equal(r->dims[0], 512);
    assert_int_equal(r->dims[1], 512);
    assert_int_equal(r->dims[2], 275);
    assert_true(fabs(r->spacing[0] - 0.78125) < 1e-4 && fabs(r->spacing[2] - 1.0) < 1e-3);
    assert_string_equal(r->meta.patient_position, "FFS");
    assert_false(r->meta.resampled);
    double mn, mx, mean;
    sm_volume_stats(r, &mn, &mx, &mean);
    assert_true(mn >= -1100 && mx > 1000 && mean < 0);
    sm_volume_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_axial),
        cmocka_unit_test(test_roundtrip_oblique),
        cmocka_unit_test(test_roundtrip_feet_first_shuffled),
        cmocka_unit_test(test_roundtrip_shuffled),
        cmocka_unit_test(test_roundtrip_feet_first),
        cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_write_f32_rounds),
        cmocka_unit_test(test_missing_slice_refused),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_mixed_series_and_localizer),
        cmocka_unit_test(test_broken_files),
        cmocka_unit_test(test_tilt_synthetic),
        cmocka_unit_test(test_seed_transfer_syntaxes),
        cmocka_unit_test(test_enhanced_multiframe),
        cmocka_unit_test(test_ljpeg_predictors),
        cmocka_unit_test(test_acquisitions_split),
        cmocka_unit_test(test_voxel_type_choice),
        cmocka_unit_test(test_padding_to_air),
        cmocka_unit_test(test_real_gantry_tilt),
        cmocka_unit_test(test_real_totalseg_j2k),
        cmocka_unit_test(test_real_transfer_syntaxes),
        cmocka_unit_test(test_real_lidc_jpegls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
