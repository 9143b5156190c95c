/* Tests of NIfTI load/save (RAS<->LPS, datatypes, atomic output) and PNG writing. */
#include "sm_io.h"
#include "sm_test.h"

#include <math.h>

static SmVolume *make_oblique(SmVoxelType type)
{
    size_t dims[3] = {23, 17, 11};
    SmVolume *v = sm_volume_create(NULL, dims, type);
    assert_non_null(v);
    double a = 7.0 * M_PI / 180.0;
    double dir[3][3] = {{1, 0, 0}, {0, cos(a), -sin(a)}, {0, sin(a), cos(a)}};
    double sp[3] = {0.7, 0.9, 2.5}, org[3] = {12.5, -30.25, 101.0};
    sm_volume_set_geometry(v, dir, sp, org);
    size_t n = sm_volume_n_voxels(v);
    for (size_t i = 0; i < n; i++) {
        switch (type) {
        case SM_VOXEL_I16: ((int16_t *)v->data)[i] = (int16_t)((int)(i * 37 % 4001) - 1024); break;
        case SM_VOXEL_F32: ((float *)v->data)[i] = (float)i * 0.25f - 7.125f; break;
        case SM_VOXEL_U8: ((uint8_t *)v->data)[i] = (uint8_t)(i % 29); break;
        case SM_VOXEL_U16: ((uint16_t *)v->data)[i] = (uint16_t)(i * 13 % 60000); break;
        }
    }
    return v;
}

static void roundtrip(SmVoxelType type, const char *name)
{
    char *dir = sm_test_tmpdir();
    assert_non_null(dir);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    SmVolume *v = make_oblique(type);
    SmError *err = NULL;
    assert_true(sm_io_nifti_save(&err, v, path));
    SmVolume *w = NULL;
    assert_true(sm_io_nifti_load(&err, path, &w));
    assert_null(err);
    assert_int_equal(w->type, type);
    assert_true(sm_volume_same_grid(v, w, 1e-3));
    assert_memory_equal(v->data, w->data, sm_volume_n_voxels(v) * sm_voxel_size(type));
    sm_volume_destroy(v);
    sm_volume_destroy(w);
    sm_test_rmrf(dir);
    free(dir);
}

static void test_roundtrip_types(void **state)
{
    (void)state;
    roundtrip(SM_VOXEL_I16, "a.nii.gz");
    roundtrip(SM_VOXEL_F32, "b.nii");
    roundtrip(SM_VOXEL_U8, "c.nii.gz");
    roundtrip(SM_VOXEL_U16, "d.nii.gz");
}

static void test_flipped_rows_same_world(void **state)
{
    (void)state;
    char *dir = sm_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/flip.nii.gz", dir);
    SmVolume *v = make_oblique(SM_VOXEL_I16);
    assert_true(sm_io_nifti_save_ex(NULL, v, path, true));
    SmVolume *w = NULL;
    assert_true(sm_io_nifti_load(NULL, path, &w));
    /* Stored bottom-up: the first stored row is the original last row. */
    const int16_t *a = v->data, *b = w->data;
    assert_int_equal(b[0], a[(size_t)23 * 16]);
    assert_false(sm_volume_same_grid(v, w, 1e-3));
    SmGridMap map;
    assert_true(sm_volume_grid_match(v, w, 1e-3, &map));
    assert_int_equal(map.perm[0], 0);
    assert_int_equal(map.perm[1], 1);
    assert_int_equal(map.perm[2], 2);
    assert_false(map.flip[0]);
    assert_true(map.flip[1]);
    assert_false(map.flip[2]);
    SmVolume *r = sm_volume_reindex(NULL, v, w, &map);
    assert_non_null(r);
    assert_true(sm_volume_same_grid(v, r, 1e-6));
    assert_memory_equal(v->data, r->data, sm_volume_n_voxels(v) * 2);
    sm_volume_destroy(r);
    sm_volume_destroy(w);
    sm_volume_destroy(v);
    sm_test_rmrf(dir);
    free(dir);
}

/* Whole file read back into memory (test helper). */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    unsigned char *b = malloc((size_t)len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* A volume of several compression blocks (.nii.gz is written as one gzip member per block
 * of slices, compressed side by side): it reads back exactly, plain and with flipped rows,
 * the file is byte-identical at 1 and 2 threads, and it holds more than one gzip member. */
static void test_gz_blocks(void **state)
{
    (void)state;
    size_t dims[3] = {301, 257, 47}; /* 14.5 MB of F32: 4 blocks */
    SmVolume *v = sm_volume_create(NULL, dims, SM_VOXEL_F32);
    assert_non_null(v);
    double dir[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, sp[3] = {0.8, 0.8, 1.5}, org[3] = {1, 2, 3};
    sm_volume_set_geometry(v, dir, sp, org);
    size_t n = sm_volume_n_voxels(v);
    uint64_t r = 12345;
    for (size_t i = 0; i < n; i++) { /* compressible but not trivial */
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        ((float *)v->data)[i] = (float)((i / 97) % 50) + 0.25f * (float)(r >> 61) + 0.125f;
    }
    char *dir_s = sm_test_tmpdir();
    assert_non_null(dir_s);
    for (int flip = 0; flip < 2; flip++) {
        char p1[600], p2[600];
        snprintf(p1, sizeof p1, "%s/t1_%d.nii.gz", dir_s, flip);
        snprintf(p2, sizeof p2, "%s/t2_%d.nii.gz", dir_s, flip);
        sm_omp_set_threads(1);
        assert_true(sm_io_nifti_save_ex(NULL, v, p1, flip));
        sm_omp_set_threads(2);
        assert_true(sm_io_nifti_save_ex(NULL, v, p2, flip));
        size_t n1, n2;
        unsigned char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        /* gzip members: the magic 1f 8b 08 at the start and again later in the file */
        int members = 0;
        for (size_t i = 0; i + 3 < n1; i++)
            members += b1[i] == 0x1f && b1[i + 1] == 0x8b && b1[i + 2] == 8 && b1[i + 3] == 0;
        assert_true(members >= 2);
        free(b1);
        free(b2);
        SmVolume *w = NULL;
        assert_true(sm_io_nifti_load(NULL, p2, &w));
        assert_int_equal(w->dims[0], dims[0]);
        assert_int_equal(w->dims[2], dims[2]);
        assert_int_equal(w->type, SM_VOXEL_F32);
        const float *a = v->data, *b = w->data;
        size_t nx = dims[0], ny = dims[1];
        bool same = true;
        for (size_t k = 0; k < dims[2] && same; k++)
            for (size_t j = 0; j < ny && same; j++) {
                size_t jj = flip ? ny - 1 - j : j;
                same = memcmp(a + (k * ny + j) * nx, b + (k * ny + jj) * nx, nx * sizeof *a) == 0;
            }
        if (!same)
            printf("flip %d: voxels differ after reading back\n", flip);
        assert_true(same);
        sm_volume_destroy(w);
    }
    sm_volume_destroy(v);
    sm_test_rmrf(dir_s);
    free(dir_s);
}

static void test_errors(void **state)
{
    (void)state;
    SmError *err = NULL;
    SmVolume *v = NULL;
    assert_false(sm_io_nifti_load(&err, "/nonexistent/x.nii.gz", &v));
    assert_int_equal(err->code, SM_ERR_IO);
    assert_non_null(strstr(err->message, "/nonexistent/x.nii.gz"));
    sm_error_destroy(err);
    err = NULL;
    char *dir = sm_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/garbage.nii", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("this is not a nifti file at all", f);
    fclose(f);
    assert_false(sm_io_nifti_load(&err, path, &v));
    assert_int_equal(err->code, SM_ERR_FORMAT);
    sm_error_destroy(err);
    err = NULL;
    /* Unwritable output: a directory that does not exist. Nothing is left behind. */
    SmVolume *w = make_oblique(SM_VOXEL_I16);
    snprintf(path, sizeof path, "%s/missing/out.nii.gz", dir);
    assert_false(sm_io_nifti_save(&err, w, path));
    assert_int_equal(err->code, SM_ERR_OUTPUT);
    sm_error_destroy(err);
    err = NULL;
    snprintf(path, sizeof path, "%s/out.txt", dir);
    assert_false(sm_io_nifti_save(&err, w, path));
    assert_int_equal(err->code, SM_ERR_USAGE);
    sm_error_destroy(err);
    sm_volume_destroy(w);
    sm_test_rmrf(dir);
    free(dir);
}

static void test_real_ct(void **state)
{
    (void)state;
    char path[600];
    if (!sm_test_shared("ct-totalseg-example/ct.nii.gz", path, sizeof path))
        skip();
    SmError *err = NULL;
    SmVolume *v = NULL;
    assert_true(sm_io_nifti_load(&err, path, &v));
    assert_int_equal(v->dims[0], 122);
    assert_int_equal(v->dims[1], 101);
    assert_int_equal(v->dims[2], 112);
    assert_int_equal(v->type, SM_VOXEL_I16);
    /* Header (read independently with python): sform RAS diag(3,3,3), offset
     * (-177.956, 11.319, 94.302). In LPS the x and y rows flip sign. */
    assert_true(fabs(v->affine[0][0] + 3.0) < 1e-6);
    assert_true(fabs(v->affine[1][1] + 3.0) < 1e-6);
    assert_true(fabs(v->affine[2][2] - 3.0) < 1e-6);
    assert_true(fabs(v->affine[0][3] - 177.95632934570312) < 1e-4);
    assert_true(fabs(v->affine[1][3] + 11.319000244140625) < 1e-4);
    assert_true(fabs(v->affine[2][3] - 94.3017578125) < 1e-4);
    double lo, hi, mean;
    sm_volume_stats(v, &lo, &hi, &mean);
    assert_true(lo <= -900 && hi >= 1000); /* air and cortical bone present */
    SmVolume *lab = NULL;
    assert_true(sm_test_shared("ct-totalseg-example/labels/total.nii.gz", path, sizeof path));
    assert_true(sm_io_nifti_load(&err, path, &lab));
    assert_int_equal(lab->type, SM_VOXEL_U8);
    assert_true(sm_volume_same_grid(v, lab, 1e-6));
    bool seen[256] = {false};
    for (size_t i = 0; i < sm_volume_n_voxels(lab); i++)
        seen[((uint8_t *)lab->data)[i]] = true;
    for (int id = 26; id <= 33; id++) /* S1, L5..L1, T12, T11 */
        assert_true(seen[id]);
    sm_volume_destroy(lab);
    sm_volume_destroy(v);
}

static void test_png(void **state)
{
    (void)state;
    char *dir = sm_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/q.png", dir);
    uint8_t px[7 * 5 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    SmError *err = NULL;
    assert_true(sm_io_png_save(&err, path, px, 7, 5, 3));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char sig[8];
    assert_int_equal(fread(sig, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    snprintf(path, sizeof path, "%s/nodir/q.png", dir);
    assert_false(sm_io_png_save(&err, path, px, 7, 5, 3));
    assert_int_equal(err->code, SM_ERR_OUTPUT);
    sm_error_destroy(err);
    sm_test_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_types),
        cmocka_unit_test(test_flipped_rows_same_world),
        cmocka_unit_test(test_gz_blocks),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_real_ct),
        cmocka_unit_test(test_png),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
