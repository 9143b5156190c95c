/* Unit tests of core: errors, checked sizes, volumes, affine geometry. */
#include "sm_core.h"
#include "sm_test.h"

#include <math.h>

static void test_error_set_once(void **state)
{
    (void)state;
    SmError *err = NULL;
    sm_error_set(&err, SM_ERR_FORMAT, "bad tag %s", "(0028,0010)");
    sm_error_set(&err, SM_ERR_IO, "second");
    assert_non_null(err);
    assert_int_equal(err->code, SM_ERR_FORMAT);
    assert_string_equal(err->message, "bad tag (0028,0010)");
    sm_error_prefix(&err, "%s: ", "a.dcm");
    assert_string_equal(err->message, "a.dcm: bad tag (0028,0010)");
    sm_error_destroy(err);
    sm_error_set(NULL, SM_ERR_IO, "ignored");
    sm_error_destroy(NULL);
}

static void test_size_overflow(void **state)
{
    (void)state;
    size_t out;
    size_t big[3] = {SIZE_MAX / 2, 3, 1};
    assert_false(sm_size_voxels(big, 1, &out));
    size_t dims[3] = {23, 17, 11};
    assert_true(sm_size_voxels(dims, 2, &out));
    assert_int_equal(out, 23 * 17 * 11 * 2);
    SmError *err = NULL;
    size_t huge[3] = {1u << 20, 1u << 20, 1u << 20};
    assert_null(sm_volume_create(&err, huge, SM_VOXEL_F32));
    assert_non_null(err);
    assert_int_equal(err->code, SM_ERR_NOMEM);
    assert_non_null(strstr(err->message, "1048576x1048576x1048576"));
    sm_error_destroy(err);
    err = NULL;
    size_t zero[3] = {4, 0, 3};
    assert_null(sm_volume_create(&err, zero, SM_VOXEL_I16));
    assert_int_equal(err->code, SM_ERR_USAGE);
    sm_error_destroy(err);
}

static void test_volume_stats_and_convert(void **state)
{
    (void)state;
    size_t dims[3] = {23, 17, 11};
    SmVolume *v = sm_volume_create(NULL, dims, SM_VOXEL_F32);
    assert_non_null(v);
    float *d = v->data;
    size_t n = sm_volume_n_voxels(v);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        d[i] = (float)((double)(i % 97) - 40.5);
        sum += d[i];
    }
    d[5] = 40000.0f; /* clamps to int16 max */
    sum += 40000.0 - ((5 % 97) - 40.5);
    double lo, hi, mean;
    sm_volume_stats(v, &lo, &hi, &mean);
    assert_true(lo == -40.5);
    assert_true(hi == 40000.0);
    assert_true(fabs(mean - sum / (double)n) < 1e-9);
    SmVolume *s = sm_volume_to_i16(NULL, v);
    assert_non_null(s);
    const int16_t *q = s->data;
    assert_int_equal(q[0], -40);  /* -40.5 rounds half up to -40 */
    assert_int_equal(q[1], -39);  /* -39.5 -> -39 */
    assert_int_equal(q[5], 32767);
    assert_true(sm_volume_same_grid(v, s, 1e-9));
    sm_volume_destroy(s);
    sm_volume_destroy(v);
}

static void test_affine_roundtrip_oblique(void **state)
{
    (void)state;
    size_t dims[3] = {23, 17, 11};
    SmVolume *v = sm_volume_create(NULL, dims, SM_VOXEL_I16);
    assert_non_null(v);
    double a = 10.0 * M_PI / 180.0;
    /* Rows/columns rotated about z by 10 degrees; slices go inferior (feet-first-like). */
    double dir[3][3] = {{cos(a), -sin(a), 0}, {sin(a), cos(a), 0}, {0, 0, -1}};
    double sp[3] = {0.7, 0.9, 2.5}, org[3] = {-100.0, 50.0, 300.0};
    sm_volume_set_geometry(v, dir, sp, org);
    double ijk[3] = {22, 16, 10}, lps[3], back[3];
    sm_volume_index_to_lps(v, ijk, lps);
    /* Hand computation: origin + 22*0.7*col0 + 16*0.9*col1 + 10*2.5*col2 */
    double ex = -100.0 + 22 * 0.7 * cos(a) - 16 * 0.9 * sin(a);
    double ey = 50.0 + 22 * 0.7 * sin(a) + 16 * 0.9 * cos(a);
    double ez = 300.0 - 25.0;
    assert_true(fabs(lps[0] - ex) < 1e-9 && fabs(lps[1] - ey) < 1e-9 && fabs(lps[2] - ez) < 1e-9);
    assert_true(sm_volume_lps_to_index(v, lps, back));
    for (int d = 0; d < 3; d++)
        assert_true(fabs(back[d] - ijk[d]) < 1e-9);
    assert_true(fabs(v->spacing[2] - 2.5) < 1e-12);
    double sing[4][4] = {{1, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}, inv[4][4];
    assert_false(sm_mat4_affine_inverse(sing, inv));
    sm_volume_destroy(v);
}

static void test_grid_match_permuted(void **state)
{
    (void)state;
    /* b stores a's axes in order (k, i, j) with j reversed; grid_match must find it and
     * reindex must reproduce a's voxels exactly. */
    size_t da[3] = {5, 4, 3}, db[3] = {3, 5, 4};
    SmVolume *a = sm_volume_create(NULL, da, SM_VOXEL_I16);
    SmVolume *b = sm_volume_create(NULL, db, SM_VOXEL_I16);
    double dir[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, sp[3] = {0.5, 0.8, 2.0}, org[3] = {1, 2, 3};
    sm_volume_set_geometry(a, dir, sp, org);
    int16_t *pa = a->data, *pb = b->data;
    for (size_t k = 0; k < 3; k++)
        for (size_t j = 0; j < 4; j++)
            for (size_t i = 0; i < 5; i++)
                pa[i + 5 * (j + 4 * k)] = (int16_t)(100 * k + 10 * j + i);
    /* b(u, v, w) = a(i = v, j = 3 - w, k = u) */
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            b->affine[r][c] = 0.0;
    b->affine[2][0] = 2.0;  /* u -> k */
    b->affine[0][1] = 0.5;  /* v -> i */
    b->affine[1][2] = -0.8; /* w -> reversed j */
    b->affine[0][3] = 1.0;
    b->affine[1][3] = 2.0 + 3 * 0.8;
    b->affine[2][3] = 3.0;
    b->affine[3][3] = 1.0;
    for (size_t w = 0; w < 4; w++)
        for (size_t v = 0; v < 5; v++)
            for (size_t u = 0; u < 3; u++)
                pb[u + 3 * (v + 5 * w)] = pa[v + 5 * ((3 - w) + 4 * u)];
    SmGridMap m;
    assert_true(sm_volume_grid_match(a, b, 1e-6, &m));
    assert_int_equal(m.perm[0], 2);
    assert_int_equal(m.perm[1], 0);
    assert_int_equal(m.perm[2], 1);
    assert_true(m.flip[2] && !m.flip[0] && !m.flip[1]);
    SmVolume *r = sm_volume_reindex(NULL, a, b, &m);
    assert_memory_equal(r->data, a->data, 60 * sizeof(int16_t));
    /* A shifted grid does not match. */
    b->affine[0][3] += 0.25;
    assert_false(sm_volume_grid_match(a, b, 1e-3, &m));
    sm_volume_destroy(r);
    sm_volume_destroy(a);
    sm_volume_destroy(b);
}

static void test_strlist(void **state)
{
    (void)state;
    SmStrList l = {0};
    for (int i = 0; i < 20; i++)
        assert_true(sm_strlist_add(&l, "w%d", i));
    assert_int_equal(l.n, 20);
    assert_string_equal(l.items[19], "w19");
    sm_strlist_clear(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_once),
        cmocka_unit_test(test_size_overflow),
        cmocka_unit_test(test_volume_stats_and_convert),
        cmocka_unit_test(test_affine_roundtrip_oblique),
        cmocka_unit_test(test_grid_match_permuted),
        cmocka_unit_test(test_strlist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
