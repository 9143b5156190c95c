/* Unit tests of the vertebral body frame, heights, collapse grading and alignment:
 * analytic solids on oblique anisotropic grids, generated phantoms with known truth, the
 * real TotalSegmentator example, and 1 versus 2 threads. */
#define _POSIX_C_SOURCE 200809L
#include "sm_test.h"

#include "frame.h"
#include "metrics_internal.h"
#include "phantom.h"
#include "sins_rules.h"
#include "sm_io.h"

#include <jansson.h>
#include <math.h>

#define DEG (M_PI / 180.0)

/* ---------------------------------------------------------------- helpers */

static void series_init(SmSeriesMetrics *m, size_t n, const int *ids)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    m->v = calloc(n, sizeof *m->v);
    assert_non_null(m->v);
    for (size_t i = 0; i < n; i++) {
        SmVertebraMetrics *v = &m->v[i];
        v->verse_label = ids[i];
        snprintf(v->level, sizeof v->level, "%d", ids[i]);
        for (int d = 0; d < 3; d++)
            v->body_centroid_lps[d] = v->axis_superior[d] = v->axis_anterior[d] = v->axis_left[d] = NAN;
        v->height_anterior_mm = v->height_middle_mm = v->height_posterior_mm = NAN;
        v->ap_depth_mm = v->expected_height_mm = v->height_loss_pct = NAN;
        v->genant_grade = -1;
        v->translation_mm = v->kyphosis_deg = v->scoliosis_deg = NAN;
    }
}

static void series_free(SmSeriesMetrics *m)
{
    for (size_t i = 0; i < m->n; i++)
        sm_strlist_clear(&m->v[i].notes);
    free(m->v);
    m->v = NULL;
}

static void run_geometry(const SmVolume *labels, const SmVolume *sub, size_t n, const int *ids,
                         int threads, SmSeriesMetrics *m)
{
    SmMetricsInput in = {.ct = NULL, .labels = labels, .subregions = sub, .n_levels = n,
                         .verse_labels = ids, .threads = threads};
    series_init(m, n, ids);
    sm_omp_set_threads(threads);
    SmError *e = NULL;
    bool ok = sm_metric_heights(&e, &in, m) && sm_metric_alignment(&e, &in, m);
    if (!ok)
        fprintf(stderr, "metrics failed: %s\n", e ? e->message : "?");
    assert_true(ok);
    assert_null(e);
}

static double angle_deg(const double a[3], const double b[3])
{
    double c = sm_frame_dot(a, b) / sqrt(sm_frame_dot(a, a) * sm_frame_dot(b, b));
    return acos(fmin(1.0, fmax(-1.0, c))) / DEG;
}

/* Rotation matrix about axis (0 x, 1 y, 2 z) by deg; R[r][c]. */
static void rot(int axis, double deg, double R[3][3])
{
    double c = cos(deg * DEG), s = sin(deg * DEG);
    memset(R, 0, 9 * sizeof(double));
    int a = (axis + 1) % 3, b = (axis + 2) % 3;
    R[axis][axis] = 1;
    R[a][a] = c, R[a][b] = -s;
    R[b][a] = s, R[b][b] = c;
}

static void matmul3(const double A[3][3], const double B[3][3], double C[3][3])
{
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            C[r][c] = 0;
            for (int k = 0; k < 3; k++)
                C[r][c] += A[r][k] * B[k][c];
        }
}

/* ------------------------------------------------- analytic solids on oblique grids */

/* One synthetic vertebra: body frame (columns of B = left, anterior, superior in LPS) and
 * centre; body height profile: top/bottom = +-(hm - slope*y)/2 minus a trough of depth
 * `trough` and half-width `trough_r` (along y) on both endplates, and minus a round dish
 * of depth `dish` with a cos^2 profile over the ellipse of semi-axes dish_rx (x), dish_ry
 * (y) (a depression that flattens towards its rim, unlike a parabola). */
typedef struct Solid {
    int id;
    double B[3][3], c[3];
    double half_w, half_d, hm, slope, trough, trough_r;
    double dish, dish_rx, dish_ry;
} Solid;

static int solid_sub(const Solid *s, const double p[3])
{
    double d[3] = {p[0] - s->c[0], p[1] - s->c[1], p[2] - s->c[2]}, l[3];
    for (int k = 0; k < 3; k++)
        l[k] = s->B[0][k] * d[0] + s->B[1][k] * d[1] + s->B[2][k] * d[2];
    double x = l[0], y = l[1], z = l[2];
    double h = 0.5 * (s->hm - s->slope * y);
    if (s->trough > 0 && fabs(y) < s->trough_r)
        h -= s->trough * (1 - (y / s->trough_r) * (y / s->trough_r));
    if (s->dish > 0) {
        double r2 = (x / s->dish_rx) * (x / s->dish_rx) + (y / s->dish_ry) * (y / s->dish_ry);
        if (r2 < 1) {
            double cr = cos(0.5 * M_PI * sqrt(r2));
            h -= s->dish * cr * cr;
        }
    }
    if (fabs(x) <= s->half_w && fabs(y) <= s->half_d && fabs(z) <= h)
        return SM_MET_SUB_BODY;
    /* a posterior element block behind the body (gives the anterior sense) */
    if (fabs(x) <= 5 && y <= -s->half_d - 2 && y >= -s->half_d - 12 && fabs(z) <= 5)
        return SM_MET_SUB_ARCH;
    return 0;
}

/* Grid dims d, spacing sp, direction = rotation gr, centred on the origin. */
static void make_maps(const size_t d[3], const double sp[3], const double gr[3][3],
                      const Solid *s, int ns, SmVolume **labels, SmVolume **sub)
{
    SmError *e = NULL;
    *labels = sm_volume_create(&e, d, SM_VOXEL_U8);
    *sub = sm_volume_create(&e, d, SM_VOXEL_U8);
    assert_non_null(*labels);
    assert_non_null(*sub);
    double origin[3];
    for (int r = 0; r < 3; r++) {
        origin[r] = 0;
        for (int k = 0; k < 3; k++)
            origin[r] -= gr[r][k] * sp[k] * (double)(d[k] - 1) / 2;
    }
    sm_volume_set_geometry(*labels, gr, sp, origin);
    sm_volume_set_geometry(*sub, gr, sp, origin);
    uint8_t *L = (*labels)->data, *S = (*sub)->data;
    for (size_t k = 0; k < d[2]; k++)
        for (size_t j = 0; j < d[1]; j++)
            for (size_t i = 0; i < d[0]; i++) {
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3];
                sm_volume_index_to_lps(*labels, ijk, p);
                for (int q = 0; q < ns; q++) {
                    int code = solid_sub(&s[q], p);
                    if (code) {
                        size_t idx = i + d[0] * (j + d[1] * k);
                        L[idx] = (uint8_t)s[q].id;
                        S[idx] = (uint8_t)code;
                        break;
                    }
                }
            }
}

static void solid_frame(Solid *s, const double R[3][3])
{
    /* local left/anterior/superior = LPS +x / -y / +z rotated by R */
    double base[3][3] = {{1, 0, 0}, {0, -1, 0}, {0, 0, 1}}; /* columns */
    matmul3(R, base, s->B);
}

static void check_axes(const SmVertebraMetrics *v, const Solid *s, double tol_deg)
{
    double sup[3] = {s->B[0][2], s->B[1][2], s->B[2][2]};
    double ant[3] = {s->B[0][1], s->B[1][1], s->B[2][1]};
    double left[3] = {s->B[0][0], s->B[1][0], s->B[2][0]};
    double es = angle_deg(v->axis_superior, sup), ea = angle_deg(v->axis_anterior, ant),
           el = angle_deg(v->axis_left, left);
    printf("  axes error: superior %.2f, anterior %.2f, left %.2f deg\n", es, ea, el);
    assert_true(es <= tol_deg);
    assert_true(ea <= tol_deg);
    assert_true(el <= tol_deg);
}

static const size_t GRID_D[3] = {47, 41, 23};
static const double GRID_SP[3] = {0.9, 1.1, 2.5};

static void oblique_grid(double G[3][3])
{
    double a[3][3], b[3][3];
    rot(0, 11, a); /* acquisition tilted about L-R */
    rot(2, 4, b);
    matmul3(a, b, G);
}

static void test_box_rotated(void **state)
{
    (void)state;
    double G[3][3], R[3][3], r1[3][3], r2[3][3];
    oblique_grid(G);
    rot(0, 15, r1); /* the vertebra: 15 deg sagittal tilt, 6 deg coronal */
    rot(1, 6, r2);
    matmul3(r1, r2, R);
    Solid s = {.id = 22, .half_w = 15, .half_d = 12, .hm = 20, .c = {0.3, -0.4, 0.7}};
    solid_frame(&s, R);
    SmVolume *lab, *sub;
    make_maps(GRID_D, GRID_SP, G, &s, 1, &lab, &sub);
    int ids[1] = {22};
    SmSeriesMetrics m;
    run_geometry(lab, sub, 1, ids, 1, &m);
    const SmVertebraMetrics *v = &m.v[0];
    printf("  box: Ha %.2f Hm %.2f Hp %.2f depth %.2f (truth 20, 20, 20, 24)\n",
           v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm, v->ap_depth_mm);
    assert_float_equal(v->height_anterior_mm, 20.0, 0.3);
    assert_float_equal(v->height_middle_mm, 20.0, 0.3);
    assert_float_equal(v->height_posterior_mm, 20.0, 0.3);
    assert_float_equal(v->ap_depth_mm, 24.0, 0.6);
    for (int d = 0; d < 3; d++)
        assert_float_equal(v->body_centroid_lps[d], s.c[d], 0.3);
    check_axes(v, &s, 1.0);
    assert_int_equal(v->genant_grade, 0);
    assert_int_equal(v->deformity, SM_DEFORMITY_NONE);
    series_free(&m);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);
}

static void test_wedge_and_biconcave(void **state)
{
    (void)state;
    double G[3][3], R[3][3];
    oblique_grid(G);
    rot(0, -20, R);
    /* wedge: Ha 16 at 15 % of the depth, Hp 24 at 85 %: slope 8 / 16.8 per mm of y */
    Solid w = {.id = 21, .half_w = 15, .half_d = 12, .hm = 20, .slope = 8.0 / 16.8};
    solid_frame(&w, R);
    SmVolume *lab, *sub;
    make_maps(GRID_D, GRID_SP, G, &w, 1, &lab, &sub);
    int ids[1] = {21};
    SmSeriesMetrics m;
    run_geometry(lab, sub, 1, ids, 1, &m);
    const SmVertebraMetrics *v = &m.v[0];
    printf("  wedge: Ha %.2f Hm %.2f Hp %.2f (truth 16, 20, 24) loss %.1f %% grade %d\n",
           v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm,
           v->height_loss_pct, v->genant_grade);
    assert_float_equal(v->height_anterior_mm, 16.0, 0.5);
    assert_float_equal(v->height_middle_mm, 20.0, 0.5);
    assert_float_equal(v->height_posterior_mm, 24.0, 0.5);
    assert_float_equal(v->height_anterior_mm / v->height_posterior_mm, 16.0 / 24.0, 0.03);
    check_axes(v, &w, 1.5);
    /* alone: Genant's within-vertebra ratio Ha/Hp = 0.667 -> 33 % -> grade 2, wedge */
    assert_int_equal(v->genant_grade, 2);
    assert_int_equal(v->deformity, SM_DEFORMITY_WEDGE);
    series_free(&m);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);

    /* biconcave: flat 24 mm body, 3.5 mm deep troughs (half-width 9 mm along AP) in both
     * endplates; truth = the profile averaged over the three AP offsets the method uses
     * (+-3 % of the depth): Ha = Hp = 23.06, Hm = 17.03 */
    Solid b = {.id = 21, .half_w = 15, .half_d = 12, .hm = 24, .trough = 3.5, .trough_r = 9.0};
    double tq[3];
    for (int q = 0; q < 3; q++) {
        static const double fq[3] = {0.15, 0.5, 0.85};
        tq[q] = 0;
        for (int a = -1; a <= 1; a++) {
            double y = 12 - (fq[q] + 0.03 * a) * 24, u = y / b.trough_r;
            tq[q] += (24 - 2 * b.trough * fmax(0.0, 1 - u * u)) / 3;
        }
    }
    solid_frame(&b, R);
    make_maps(GRID_D, GRID_SP, G, &b, 1, &lab, &sub);
    run_geometry(lab, sub, 1, ids, 1, &m);
    v = &m.v[0];
    printf("  biconcave: Ha %.2f Hm %.2f Hp %.2f (truth %.2f, %.2f, %.2f) loss %.1f %% grade %d\n",
           v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm, tq[0], tq[1],
           tq[2], v->height_loss_pct, v->genant_grade);
    /* the 2.5 mm slices, tilted 31 deg to the endplates, sample a 9 mm-wide trough with
     * a staircase: the mask itself is off by up to ~1 mm here (the same solid on a 0.4 mm
     * grid measures 22.85 / 17.10 / 23.22), so this grid is held to the product tolerance */
    assert_float_equal(v->height_anterior_mm, tq[0], 1.5);
    assert_float_equal(v->height_middle_mm, tq[1], 1.5);
    assert_float_equal(v->height_posterior_mm, tq[2], 1.5);
    check_axes(v, &b, 1.5);
    assert_int_equal(v->genant_grade, 2); /* 1 - 17.03/23.06 = 26 % */
    assert_int_equal(v->deformity, SM_DEFORMITY_BICONCAVE);
    series_free(&m);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);

    /* a sharp trough (half-width 7.2 mm, 3.5 mm deep) needs a fine grid: 0.4 mm iso */
    Solid c2 = {.id = 21, .half_w = 15, .half_d = 12, .hm = 24, .trough = 3.5, .trough_r = 7.2};
    solid_frame(&c2, R);
    size_t fd[3] = {121, 119, 117};
    double fs[3] = {0.4, 0.4, 0.4};
    make_maps(fd, fs, G, &c2, 1, &lab, &sub);
    run_geometry(lab, sub, 1, ids, 2, &m);
    v = &m.v[0];
    printf("  sharp biconcave (0.4 mm grid): Ha %.2f Hm %.2f Hp %.2f (truth 24, 17.05, 24)\n",
           v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm);
    assert_float_equal(v->height_middle_mm, 24 - 7 * (1 - 0.01 * 2.0 / 3.0), 0.3);
    assert_float_equal(v->height_anterior_mm, 24.0, 0.3);
    assert_int_equal(v->deformity, SM_DEFORMITY_BICONCAVE);
    series_free(&m);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);

    /* a round dish 3 mm deep in each endplate, cos^2 profile over 12 x 10 mm (semi-axes,
     * x / y), on the same fine grid: the middle height is the dish's bottom on the midline,
     * 24 - 2 * 3 = 18 mm. Across the middle band (+-7.5 mm) the profile is not a parabola,
     * and the quadratic depression model reads the bottom about 0.2 mm high (18.21 mm;
     * a quartic lateral term read 18.07 but did not generalise on thick slices, see
     * docs/metrics.md "Heights"); held to 0.3 mm, the fine-grid tolerance above. */
    Solid c3 = {.id = 21, .half_w = 15, .half_d = 12, .hm = 24, .dish = 3.0, .dish_rx = 12.0,
                .dish_ry = 10.0};
    solid_frame(&c3, R);
    make_maps(fd, fs, G, &c3, 1, &lab, &sub);
    run_geometry(lab, sub, 1, ids, 2, &m);
    v = &m.v[0];
    printf("  dish (0.4 mm grid): Ha %.2f Hm %.2f Hp %.2f (truth middle 18.00)\n",
           v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm);
    assert_float_equal(v->height_middle_mm, 18.0, 0.3);
    assert_int_equal(v->deformity, SM_DEFORMITY_BICONCAVE);
    series_free(&m);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);

    /* a shallow dish (2.5 mm deep in each endplate, the same cos^2 profile: middle height
     * 24 - 2 * 2.5 = 19 mm, a 21 % loss against the 24 mm rims, Genant grade 1) on the
     * thick oblique grid, the body tilted 0-24 deg about L-R: the AP band (two voxels
     * each side) sees the slice staircase rather than the dish's AP curvature, so the
     * depression must be found from its lateral curvature whatever the staircase does.
     * Held to the product tolerance (1.5 mm). When the AP curvature also had to be >= 0,
     * the 24 deg case lost the dish to the staircase and read 20.68 mm (the band's plane);
     * now 18.1-19.5 mm over the five tilts. */
    for (int t = 0; t < 5; t++) {
        double Rt[3][3];
        rot(0, -6.0 * t, Rt);
        Solid c4 = {.id = 21, .half_w = 15, .half_d = 12, .hm = 24, .dish = 2.5, .dish_rx = 12.0,
                    .dish_ry = 10.0};
        solid_frame(&c4, Rt);
        make_maps(GRID_D, GRID_SP, G, &c4, 1, &lab, &sub);
        run_geometry(lab, sub, 1, ids, 1, &m);
        v = &m.v[0];
        printf("  shallow dish, body tilt %d deg, 2.5 mm slices: Ha %.2f Hm %.2f Hp %.2f (truth "
               "middle 19.00)\n", -6 * t, v->height_anterior_mm, v->height_middle_mm,
               v->height_posterior_mm);
        assert_float_equal(v->height_middle_mm, 19.0, 1.5);
        series_free(&m);
        sm_volume_destroy(lab);
        sm_volume_destroy(sub);
    }
}

/* Five bodies stacked along a tilted column; the middle one uniformly crushed, the two
 * upper ones translated 5 mm anteriorly. */
static void test_stack_crush_translation(void **state)
{
    (void)state;
    double G[3][3], R[3][3];
    rot(1, 9, G);
    rot(0, 12, R);
    static const double hs[5] = {22, 23, 14, 25, 26};
    Solid s[5];
    int ids[5];
    double z = 2 * (23 + 8);
    for (int i = 0; i < 5; i++) {
        Solid q = {.id = 20 + i, .half_w = 16, .half_d = 13, .hm = hs[i]};
        solid_frame(&q, R);
        double zc = z - (i > 0 ? (hs[i - 1] + hs[i]) / 2 + 8 : 0);
        z = zc;
        double shift = i < 2 ? 5.0 : 0.0;
        for (int d = 0; d < 3; d++)
            q.c[d] = zc * q.B[d][2] + shift * q.B[d][1];
        s[i] = q;
        ids[i] = q.id;
    }
    size_t d[3] = {51, 71, 101};
    double sp[3] = {1.1, 1.3, 1.7};
    SmVolume *lab, *sub;
    make_maps(d, sp, G, s, 5, &lab, &sub);
    SmSeriesMetrics m;
    run_geometry(lab, sub, 5, ids, 2, &m);
    for (int i = 0; i < 5; i++) {
        const SmVertebraMetrics *v = &m.v[i];
        printf("  stack %d: H %.2f %.2f %.2f (truth %.0f) expected %.2f loss %.1f grade %d def %d "
               "transl %.2f kyph %.2f scol %.2f class %d\n",
               i, v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm, hs[i],
               v->expected_height_mm, v->height_loss_pct, v->genant_grade, v->deformity,
               v->translation_mm, v->kyphosis_deg, v->scoliosis_deg, v->alignment);
        assert_float_equal(v->height_anterior_mm, hs[i], 0.4);
        assert_float_equal(v->height_middle_mm, hs[i], 0.4);
        assert_float_equal(v->height_posterior_mm, hs[i], 0.4);
        check_axes(v, &s[i], 1.0);
        if (i == 2) {
            /* neighbours (VerSe 20, 21, 23, 24) 22, 23, 25, 26 mm carried to VerSe 22 with
             * the documented trend (x1.02 per level from L1 to L4, flat from L4 to L5):
             * 22.89, 23.46, 24.51, 25.49, all
             * judged normal; expected = their geometric mean with tricube weights over
             * 3 places ((1 - (d/4)^3)^3: 0.954 at d = 1, 0.670 at d = 2) = 24.05 mm;
             * loss 1 - 14/24.05 = 41.8 % */
            assert_float_equal(v->expected_height_mm, 24.05, 0.5);
            assert_int_equal(v->genant_grade, 3);
            assert_int_equal(v->deformity, SM_DEFORMITY_CRUSH);
        } else {
            assert_int_equal(v->genant_grade, 0);
        }
        if (i < 4) {
            assert_float_equal(v->kyphosis_deg, 0.0, 1.0);
            assert_float_equal(v->scoliosis_deg, 0.0, 1.0);
            assert_float_equal(v->translation_mm, i == 1 ? 5.0 : 0.0, 0.5);
            assert_int_equal(v->alignment, i == 1 ? SM_ALIGN_SUBLUXATION : SM_ALIGN_NORMAL);
        } else {
            assert_true(isnan(v->translation_mm));
        }
    }
    series_free(&m);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);
}

/* L4, L5 and a sacrum in line (no translation) on an oblique grid; the back of the sacral
 * body's lower part is taken by the canal (label 0, sub-region canal), as a segmentation
 * can leave it. The S1 wall line must come from what is left of the wall (the
 * translation stays ~0, class normal) instead of a line tilted through the eaten part. */
static void test_sacrum_wall_eaten(void **state)
{
    (void)state;
    double G[3][3], R[3][3];
    rot(1, 9, G);
    rot(0, -20, R);
    static const double hs[3] = {25, 26, 30};
    static const int vid[3] = {23, 24, 26};
    Solid s[3];
    int ids[3];
    double z = 30;
    for (int i = 0; i < 3; i++) {
        Solid q = {.id = vid[i], .half_w = 18, .half_d = 15, .hm = hs[i]};
        solid_frame(&q, R);
        double zc = z - (i > 0 ? (hs[i - 1] + hs[i]) / 2 + 9 : 0);
        z = zc;
        for (int d = 0; d < 3; d++)
            q.c[d] = zc * q.B[d][2];
        s[i] = q;
        ids[i] = q.id;
    }
    size_t d[3] = {61, 81, 91};
    double sp[3] = {0.9, 1.1, 1.7};
    SmVolume *lab, *sub;
    make_maps(d, sp, G, s, 3, &lab, &sub);
    /* the canal takes the posterior 7 mm of the sacral body below 4 mm above its centre */
    uint8_t *L = lab->data, *S = sub->data;
    const Solid *sa = &s[2];
    size_t eaten = 0;
    for (size_t k = 0; k < d[2]; k++)
        for (size_t j = 0; j < d[1]; j++)
            for (size_t i = 0; i < d[0]; i++) {
                size_t idx = i + d[0] * (j + d[1] * k);
                if (L[idx] != 26 || S[idx] != SM_MET_SUB_BODY)
                    continue;
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3], l[3];
                sm_volume_index_to_lps(lab, ijk, p);
                double dd[3] = {p[0] - sa->c[0], p[1] - sa->c[1], p[2] - sa->c[2]};
                for (int a = 0; a < 3; a++)
                    l[a] = sa->B[0][a] * dd[0] + sa->B[1][a] * dd[1] + sa->B[2][a] * dd[2];
                if (l[1] < -sa->half_d + 7 && l[2] < 4) {
                    L[idx] = 0;
                    S[idx] = SM_MET_SUB_CANAL;
                    eaten++;
                }
            }
    assert_true(eaten > 100);
    SmSeriesMetrics m;
    run_geometry(lab, sub, 3, ids, 2, &m);
    for (int i = 0; i < 2; i++)
        printf("  %d/below: transl %.2f kyph %.2f class %d\n", vid[i], m.v[i].translation_mm,
               m.v[i].kyphosis_deg, m.v[i].alignment);
    assert_float_equal(m.v[0].translation_mm, 0.0, 0.5);
    assert_float_equal(m.v[1].translation_mm, 0.0, 1.0);
    assert_int_equal(m.v[1].alignment, SM_ALIGN_NORMAL);
    series_free(&m);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);
}

/* ------------------------------------------------------------------ phantoms */

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}
static double unif(uint64_t *s, double a, double b)
{
    return a + (b - a) * (double)(lcg(s) & 0xFFFFFF) / (double)0x1000000;
}

typedef struct Tally {
    int n_h, n_h_ok;          /* heights within 1.5 mm */
    double max_h_err, sum_h_err;
    int n_col, n_col_grade, n_col_sins, n_col_def; /* truly collapsed vertebrae */
    int n_norm, n_norm_fp;    /* truly normal vertebrae called collapsed */
    double sum_loss_norm, sum_loss_col; /* signed height_loss_pct error (measured - truth) */
    int n_tr, n_tr_ok;        /* translations within 1.5 mm */
    double max_tr_err;
    int n_ky, n_ky_ok;        /* kyphosis within 5 deg */
    double max_ky_err;
    int n_al, n_al_ok;        /* alignment class */
    int conf_grade[4][4];     /* truth x measured */
    int n_ax;
    double sum_ax, max_ax;    /* superior axis versus truth, degrees */
    int n_cut, n_cut_nan;     /* bodies cut by the field of view (truth maps), reported NAN */
} Tally;

static void phantom_spec_draw(uint64_t *rs, SmPhantomSpec *s, int k)
{
    sm_phantom_spec_default(s);
    static const char *ranges[] = {"T10-S1", "T6-L4", "T11-S1", "T4-L2", "T8-L5", "L1-S1"};
    assert_true(sm_phantom_levels_parse(ranges[k % 6], &s->level_first, &s->level_last));
    s->seed = lcg(rs);
    s->pixel_mm = unif(rs, 0.6, 1.0);
    s->slice_mm = unif(rs, 0.6, 3.0);
    size_t side = (size_t)(180.0 / s->pixel_mm);
    s->dims[0] = s->dims[1] = side | 1;
    s->dims[2] = 0;
    if (lcg(rs) % 3 == 0)
        snprintf(s->patient_position, sizeof s->patient_position, "FFS");
    s->oblique_deg = lcg(rs) % 3 ? unif(rs, -25, 25) : 0;
    s->oblique_axis = (int)(lcg(rs) % 3);
    s->thoracic_kyphosis_deg = unif(rs, 20, 55);
    s->lumbar_lordosis_deg = unif(rs, 25, 60);
    if (lcg(rs) % 2) {
        s->scoliosis_deg = unif(rs, -30, 30);
        s->scoliosis_apex = sm_phantom_level_parse("T12");
    }
    s->noise_sigma_hu = unif(rs, 5, 25);
    /* pathology of the geometry: collapse shapes, translation, focal angles */
    int prev_align = -5;
    for (int l = s->level_first; l <= s->level_last; l++) {
        SmPhantomVertebraSpec *v = &s->vertebra[l];
        if (l == 0 || l == 1 || l == SM_PHANTOM_LEVEL_S1)
            continue;
        double u = unif(rs, 0, 1);
        if (u < 0.15) {
            v->height_scale = unif(rs, 0.45, 0.95);
        } else if (u < 0.45) {
            v->collapse_type = 1 + (int)(lcg(rs) % 3);
            v->collapse_pct = unif(rs, 10, 60);
        }
        if (l < s->level_last && l - prev_align > 1 && unif(rs, 0, 1) < 0.3) {
            prev_align = l;
            int kind = (int)(lcg(rs) % 3);
            double sg = lcg(rs) % 2 ? 1 : -1;
            if (kind == 0) {
                v->translation_mm[1] = sg * unif(rs, 3, 8);
            } else if (kind == 1) {
                v->kyphosis_deg = unif(rs, 10, 25);
            } else {
                v->scoliosis_deg = sg * unif(rs, 10, 25);
            }
        }
    }
}

/* Whether the truth body of a vertebra reaches a face of the grid (cut by the field of
 * view; from the phantom's truth maps, not from the metric). */
static bool truth_body_cut(const SmPhantom *ph, int verse_id)
{
    const size_t *d = ph->labels->dims;
    for (size_t k = 0; k < d[2]; k++)
        for (size_t j = 0; j < d[1]; j++) {
            bool edge_kj = k == 0 || k + 1 == d[2] || j == 0 || j + 1 == d[1];
            for (size_t i = 0; i < d[0]; i += edge_kj ? 1 : d[0] - 1) {
                if ((int)sm_volume_get(ph->labels, i, j, k) == verse_id &&
                    (int)sm_volume_get(ph->subregions, i, j, k) == SM_MET_SUB_BODY)
                    return true;
                if (d[0] < 2)
                    break;
            }
        }
    return false;
}

static void phantom_evaluate(const SmPhantom *ph, const SmSeriesMetrics *m, Tally *t, bool verbose)
{
    for (size_t i = 0; i < ph->n_vertebrae; i++) {
        const SmPhantomVertebra *tv = &ph->vertebrae[i];
        const SmVertebraMetrics *v = &m->v[i];
        if (!tv->has_body || tv->verse_id <= 2 || tv->verse_id == 26)
            continue;
        double th[3] = {tv->height_anterior_mm, tv->height_middle_mm, tv->height_posterior_mm};
        double mh[3] = {v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm};
        /* a body cut by the field of view has no measurable heights: the metric must say
         * so (NAN, grade -1) rather than grade the cut extents */
        bool cut = truth_body_cut(ph, tv->verse_id);
        if (cut) {
            t->n_cut++;
            t->n_cut_nan += isnan(mh[0]) && isnan(mh[1]) && isnan(mh[2]) && v->genant_grade == -1;
            printf("    %-3s body cut by the field of view: heights %.1f/%.1f/%.1f grade %d\n", tv->name,
                   mh[0], mh[1], mh[2], v->genant_grade);
        }
        if (!cut && getenv("SM_TEST_DUMP")) /* debugging aid: one line per body for offline study */
            printf("DUMP %s %d %.3f %.3f %d %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f %d %d %.3f %.3f %.3f %.3f\n",
                   tv->name, tv->verse_id, ph->spec.slice_mm, ph->spec.pixel_mm, tv->collapse_type,
                   mh[0], mh[1], mh[2], th[0], th[1], th[2], tv->expected_anterior_mm,
                   tv->expected_middle_mm, tv->expected_posterior_mm, tv->genant_grade,
                   v->genant_grade, v->height_loss_pct, tv->height_loss_pct, v->ap_depth_mm, tv->ap_depth_mm);
        if (!cut) {
            for (int q = 0; q < 3; q++) {
                double err = fabs(mh[q] - th[q]);
                t->n_h++;
                if (err <= 1.5)
                    t->n_h_ok++;
                if (!(err <= t->max_h_err))
                    t->max_h_err = isnan(err) ? INFINITY : fmax(err, t->max_h_err);
                if (isfinite(err))
                    t->sum_h_err += err;
            }
            double ax = angle_deg(v->axis_superior, tv->axis_superior);
            t->n_ax++;
            t->sum_ax += ax;
            t->max_ax = fmax(t->max_ax, isnan(ax) ? INFINITY : ax);
            int tg = tv->genant_grade, mg = v->genant_grade;
            if (tg >= 0 && tg <= 3 && mg >= 0 && mg <= 3)
                t->conf_grade[tg][mg]++;
            int ts = sm_sins_collapse_points(tv->height_loss_pct, 0.0);
            int ms = sm_sins_collapse_points(v->height_loss_pct, 0.0);
            double le = v->height_loss_pct - tv->height_loss_pct;
            if (tg >= 1)
                t->sum_loss_col += isfinite(le) ? le : 0;
            else
                t->sum_loss_norm += isfinite(le) ? le : 0;
            if (tg >= 1) {
                t->n_col++;
                t->n_col_grade += tg == mg;
                t->n_col_sins += ts == ms;
                t->n_col_def += tv->deformity == (int)v->deformity;
            } else {
                t->n_norm++;
                t->n_norm_fp += mg >= 1;
            }
            if (verbose || tg != mg || ts != ms || fabs(mh[0] - th[0]) > 1.5 ||
                fabs(mh[1] - th[1]) > 1.5 || fabs(mh[2] - th[2]) > 1.5)
                printf("    %-3s H %.1f/%.1f/%.1f truth %.1f/%.1f/%.1f expected %.1f (truth %.1f/%.1f/%.1f) "
                       "loss %.1f (truth %.1f) grade %d (truth %d) def %d (truth %d)\n",
                       tv->name, mh[0], mh[1], mh[2], th[0], th[1], th[2], v->expected_height_mm,
                       tv->expected_anterior_mm, tv->expected_middle_mm, tv->expected_posterior_mm,
                       v->height_loss_pct, tv->height_loss_pct, mg, tg, v->deformity, tv->deformity);
            if (verbose || fabs(mh[0] - th[0]) > 1.5 || fabs(mh[1] - th[1]) > 1.5 || fabs(mh[2] - th[2]) > 1.5)
                printf("      axis error %.2f deg, depth %.1f (truth %.1f)\n",
                       angle_deg(v->axis_superior, tv->axis_superior), v->ap_depth_mm, tv->ap_depth_mm);
        }
        bool seg_cut = tv->has_below && i + 1 < ph->n_vertebrae &&
                       (cut || truth_body_cut(ph, ph->vertebrae[i + 1].verse_id));
        if (seg_cut) {
            t->n_cut++;
            t->n_cut_nan += isnan(v->translation_mm) && isnan(v->kyphosis_deg);
            printf("    %-3s/below: a body cut by the field of view, translation %.2f kyphosis %.2f\n",
                   tv->name, v->translation_mm, v->kyphosis_deg);
        }
        if (!seg_cut && tv->has_below && i + 1 < ph->n_vertebrae && ph->vertebrae[i + 1].has_body) {
            double te = fabs(v->translation_mm - tv->translation_mm);
            double ke = fabs(v->kyphosis_deg - tv->kyphosis_deg);
            t->n_tr++;
            t->n_tr_ok += te <= 1.5;
            t->max_tr_err = fmax(t->max_tr_err, isnan(te) ? INFINITY : te);
            t->n_ky++;
            t->n_ky_ok += ke <= 5.0;
            t->max_ky_err = fmax(t->max_ky_err, isnan(ke) ? INFINITY : ke);
            t->n_al++;
            t->n_al_ok += (int)v->alignment == tv->alignment_class;
            if (verbose || te > 1.5 || ke > 5.0 || (int)v->alignment != tv->alignment_class)
                printf("    %-3s/below transl %.2f (truth %.2f) kyph %.2f (truth %.2f) scol %.2f "
                       "(truth %.2f) class %d (truth %d)\n",
                       tv->name, v->translation_mm, tv->translation_mm, v->kyphosis_deg,
                       tv->kyphosis_deg, v->scoliosis_deg, tv->scoliosis_deg, v->alignment,
                       tv->alignment_class);
        }
    }
}

static void phantom_run(const SmPhantom *ph, int threads, SmSeriesMetrics *m, int **ids_out)
{
    int *ids = calloc(ph->n_vertebrae, sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < ph->n_vertebrae; i++)
        ids[i] = ph->vertebrae[i].verse_id;
    run_geometry(ph->labels, ph->subregions, ph->n_vertebrae, ids, threads, m);
    *ids_out = ids;
}

static void test_phantoms(void **state)
{
    (void)state;
    Tally t;
    memset(&t, 0, sizeof t);
    /* SM_TEST_SEED re-draws the whole set (to check that the method generalises) */
    uint64_t rs = getenv("SM_TEST_SEED") ? strtoull(getenv("SM_TEST_SEED"), NULL, 10) : 20261126;
    int n_ph = getenv("SM_TEST_PHANTOMS") ? atoi(getenv("SM_TEST_PHANTOMS")) : 8;
    for (int k = 0; k < n_ph; k++) {
        SmPhantomSpec s;
        phantom_spec_draw(&rs, &s, k);
        if (getenv("SM_TEST_ONLY") && atoi(getenv("SM_TEST_ONLY")) != k)
            continue; /* debugging one phantom of a set */
        SmError *e = NULL;
        SmPhantom *ph = NULL;
        bool ok = sm_phantom_generate(&e, &s, &ph);
        if (!ok)
            fprintf(stderr, "phantom %d: %s\n", k, e ? e->message : "?");
        assert_true(ok);
        printf("  phantom %d: %s-%s %zux%zux%zu pixel %.2f slice %.2f %s oblique %.1f (axis %d) "
               "scoliosis %.0f\n",
               k, sm_phantom_level_name(s.level_first), sm_phantom_level_name(s.level_last),
               ph->ct->dims[0], ph->ct->dims[1], ph->ct->dims[2], s.pixel_mm, s.slice_mm,
               s.patient_position, s.oblique_deg, s.oblique_axis, s.scoliosis_deg);
        SmSeriesMetrics m;
        int *ids;
        phantom_run(ph, 2, &m, &ids);
        phantom_evaluate(ph, &m, &t, getenv("SM_TEST_VERBOSE") != NULL);
        series_free(&m);
        free(ids);
        sm_phantom_destroy(ph);
    }
    printf("  heights: %d/%d within 1.5 mm, mean |err| %.2f mm, max %.2f mm\n", t.n_h_ok, t.n_h,
           t.sum_h_err / (t.n_h ? t.n_h : 1), t.max_h_err);
    printf("  superior axis versus truth: mean %.2f deg, max %.2f deg (%d vertebrae)\n",
           t.sum_ax / (t.n_ax ? t.n_ax : 1), t.max_ax, t.n_ax);
    printf("  collapsed vertebrae: %d; Genant right %d, SINS collapse right %d, deformity right %d;"
           " normal called collapsed %d/%d\n",
           t.n_col, t.n_col_grade, t.n_col_sins, t.n_col_def, t.n_norm_fp, t.n_norm);
    printf("  height_loss_pct mean signed error (measured - truth): normal %+.2f points, "
           "collapsed %+.2f points\n", t.sum_loss_norm / (t.n_norm ? t.n_norm : 1),
           t.sum_loss_col / (t.n_col ? t.n_col : 1));
    printf("  Genant confusion (rows truth 0-3, columns measured 0-3):\n");
    for (int r = 0; r < 4; r++)
        printf("    %3d %3d %3d %3d\n", t.conf_grade[r][0], t.conf_grade[r][1], t.conf_grade[r][2],
               t.conf_grade[r][3]);
    printf("  translation: %d/%d within 1.5 mm (max err %.2f); kyphosis %d/%d within 5 deg (max "
           "err %.2f); alignment class right %d/%d\n",
           t.n_tr_ok, t.n_tr, t.max_tr_err, t.n_ky_ok, t.n_ky, t.max_ky_err, t.n_al_ok, t.n_al);
    printf("  bodies and segments cut by the field of view: %d, reported not measurable %d\n", t.n_cut,
           t.n_cut_nan);
    fflush(stdout);
    assert_int_equal(t.n_cut_nan, t.n_cut);
    assert_true(t.n_h > 0);
    assert_int_equal(t.n_h_ok, t.n_h);
    assert_true(t.n_col > 0);
    assert_true(t.n_col_grade >= 0.9 * t.n_col);
    assert_true(t.n_col_sins >= 0.9 * t.n_col);
    /* specificity held to the same 90 % as the sensitivity requirements */
    assert_true(t.n_norm_fp <= 0.10 * t.n_norm);
    assert_int_equal(t.n_tr_ok, t.n_tr);
    assert_int_equal(t.n_ky_ok, t.n_ky);
    assert_true(t.n_al_ok >= 0.9 * t.n_al);
}

/* ------------------------------------------ the whole driver on random pathology */

/* Confusion of two small integer codes, -1 (not scored / null) .. 4. */
#define CF_MIN (-1)
#define CF_N 6
typedef struct Confusion {
    const char *name;
    int c[CF_N][CF_N]; /* [truth - CF_MIN][measured - CF_MIN] */
} Confusion;

static void cf_add(Confusion *cf, int truth, int measured)
{
    if (truth < CF_MIN || truth >= CF_MIN + CF_N || measured < CF_MIN || measured >= CF_MIN + CF_N)
        return;
    cf->c[truth - CF_MIN][measured - CF_MIN]++;
}

static int cf_total(const Confusion *cf, int *right)
{
    int n = 0, r = 0;
    for (int a = 0; a < CF_N; a++)
        for (int b = 0; b < CF_N; b++) {
            n += cf->c[a][b];
            r += a == b ? cf->c[a][b] : 0;
        }
    *right = r;
    return n;
}

/* Prints the rows and columns that hold any count; codes are named by `names` (index =
 * code - CF_MIN) when given. */
static void cf_print(const Confusion *cf, const char *const *names)
{
    bool used[CF_N] = {false};
    for (int a = 0; a < CF_N; a++)
        for (int b = 0; b < CF_N; b++)
            if (cf->c[a][b])
                used[a] = used[b] = true;
    int right, n = cf_total(cf, &right);
    printf("  %s: %d/%d right (%.1f %%); rows truth, columns measured\n", cf->name, right, n,
           n ? 100.0 * right / n : 0.0);
    printf("    %-12s", "");
    for (int b = 0; b < CF_N; b++)
        if (used[b]) {
            char nm[16];
            snprintf(nm, sizeof nm, "%d", b + CF_MIN);
            printf(" %9s", names && names[b] ? names[b] : nm);
        }
    printf("\n");
    for (int a = 0; a < CF_N; a++) {
        if (!used[a])
            continue;
        char nm[16];
        snprintf(nm, sizeof nm, "%d", a + CF_MIN);
        printf("    %-12s", names && names[a] ? names[a] : nm);
        for (int b = 0; b < CF_N; b++)
            if (used[b])
                printf(" %9d", cf->c[a][b]);
        printf("\n");
    }
}

enum { CF_LESION, CF_GENANT, CF_COLLAPSE, CF_PL, CF_ALIGN, CF_S_LOC, CF_S_QUAL, CF_S_ALIGN,
       CF_S_COLLAPSE, CF_S_PL, CF_COUNT };

typedef struct Study {
    Confusion cf[CF_COUNT];
    int n_geom_cut;           /* vertebrae left out of the geometric components (cut bodies) */
    int n_inv, n_inv_ok;      /* involvement within 10 points, lesion vertebrae */
    double max_inv_err;
    int n_osteo, n_osteo_called;
    int n_col, n_col_genant, n_col_sins; /* truly collapsed (Genant >= 1) */
    int n_pl, n_pl_ok;        /* posterolateral side, vertebrae involved in truth or call */
} Study;

static void study_run(const SmPhantomSpec *spec, Study *st, bool osteoporotic)
{
    SmPhantom *ph = NULL;
    SmError *err = NULL;
    bool ok = sm_phantom_generate(&err, spec, &ph);
    if (!ok)
        fprintf(stderr, "phantom: %s\n", err ? err->message : "?");
    assert_true(ok);
    size_t n = 0, map[SM_PHANTOM_N_LEVELS];
    int ids[SM_PHANTOM_N_LEVELS];
    const char *names[SM_PHANTOM_N_LEVELS];
    /* every level with a body, the sacrum included (as the pipeline passes it: it is the
     * lower body of the L5/S1 segment); the sacrum itself is not scored below */
    for (size_t q = 0; q < ph->n_vertebrae; q++) {
        if (!ph->vertebrae[q].has_body)
            continue;
        map[n] = q;
        ids[n] = ph->vertebrae[q].verse_id;
        names[n] = ph->vertebrae[q].name;
        n++;
    }
    if (getenv("SM_TEST_WRITE_DIR")) { /* debugging aid: the phantom as the CLI writes it */
        char dir[1024];
        static int count = 0;
        snprintf(dir, sizeof dir, "%s/phantom%02d", getenv("SM_TEST_WRITE_DIR"), count++);
        if (!sm_phantom_write(&err, ph, dir))
            fprintf(stderr, "write %s: %s\n", dir, err ? err->message : "?");
        sm_error_destroy(err);
        err = NULL;
    }
    SmMetricsInput in = {ph->ct, ph->labels, ph->subregions, n, ids, names, 2, NULL};
    SmSeriesMetrics *m = NULL;
    ok = sm_metrics_run(&err, &in, &m);
    if (!ok)
        fprintf(stderr, "metrics: %s\n", err ? err->message : "?");
    assert_true(ok);
    if (getenv("SM_TEST_PL_DEBUG")) { /* debugging aid: HU mix of each pedicle/facet region */
        size_t nvx = sm_volume_n_voxels(ph->ct);
        for (size_t l = 0; l < n; l++)
            for (int side = 0; side < 2; side++) {
                size_t cnt = 0, band = 0, low = 0, hi = 0;
                double sum = 0;
                for (size_t x = 0; x < nvx; x++) {
                    size_t i = x % ph->ct->dims[0], j = (x / ph->ct->dims[0]) % ph->ct->dims[1],
                           k = x / (ph->ct->dims[0] * ph->ct->dims[1]);
                    if ((int)sm_volume_get(ph->labels, i, j, k) != ids[l] ||
                        (int)sm_volume_get(ph->subregions, i, j, k) != SM_MET_SUB_PL_LEFT + side)
                        continue;
                    double h = sm_volume_get(ph->ct, i, j, k);
                    cnt++, sum += h;
                    band += h >= 550 && h <= 750;
                    low += h < 100;
                    hi += h > 750;
                }
                printf("    PL debug %s %s: n %zu mean %.0f HU, 550-750 %.2f, <100 %.2f, >750 %.2f\n",
                       names[l], side ? "right" : "left", cnt, cnt ? sum / cnt : NAN,
                       cnt ? (double)band / cnt : NAN, cnt ? (double)low / cnt : NAN,
                       cnt ? (double)hi / cnt : NAN);
            }
    }
    bool cut[SM_PHANTOM_N_LEVELS];
    for (size_t l = 0; l < n; l++)
        cut[l] = truth_body_cut(ph, ids[l]);
    for (size_t l = 0; l < n; l++) {
        const SmPhantomVertebra *tv = &ph->vertebrae[map[l]];
        const SmVertebraMetrics *v = &m->v[l];
        if (tv->verse_id == 26)
            continue;
        if (osteoporotic) {
            st->n_osteo++;
            st->n_osteo_called += v->lesion_class != SM_LESION_NONE;
        }
        cf_add(&st->cf[CF_LESION], tv->lesion_class, (int)v->lesion_class);
        if (tv->lesion_class != 0 || v->lesion_class != SM_LESION_NONE) {
            double e = fabs(v->body_involvement_fraction - tv->body_involvement_fraction);
            st->n_inv++;
            st->n_inv_ok += e <= 0.10;
            st->max_inv_err = fmax(st->max_inv_err, isnan(e) ? INFINITY : e);
        }
        cf_add(&st->cf[CF_PL], tv->posterolateral, (int)v->posterolateral);
        if (tv->posterolateral != 0 || v->posterolateral != SM_SIDE_NONE) {
            st->n_pl++;
            st->n_pl_ok += tv->posterolateral == (int)v->posterolateral;
        }
        cf_add(&st->cf[CF_S_LOC], tv->sins_location, v->sins_location);
        cf_add(&st->cf[CF_S_QUAL], tv->sins_lesion_quality, v->sins_lesion_quality);
        cf_add(&st->cf[CF_S_PL], tv->sins_posterolateral, v->sins_posterolateral);
        /* geometric components: not for a body cut by the field of view (reported as not
         * measurable, checked in the heights study) nor, for alignment, its neighbours */
        bool near_cut = cut[l] || (l > 0 && cut[l - 1]) || (l + 1 < n && cut[l + 1]);
        if (cut[l] || near_cut)
            st->n_geom_cut++;
        if (!cut[l]) {
            cf_add(&st->cf[CF_GENANT], tv->genant_grade, v->genant_grade);
            cf_add(&st->cf[CF_COLLAPSE], tv->sins_collapse, v->sins_collapse);
            cf_add(&st->cf[CF_S_COLLAPSE], tv->sins_collapse, v->sins_collapse);
            if (tv->genant_grade >= 1) {
                st->n_col++;
                st->n_col_genant += tv->genant_grade == v->genant_grade;
                st->n_col_sins += tv->sins_collapse == v->sins_collapse;
            }
        }
        if (!near_cut) {
            cf_add(&st->cf[CF_S_ALIGN], tv->sins_alignment, v->sins_alignment);
            if (tv->has_below && l + 1 < n)
                cf_add(&st->cf[CF_ALIGN], tv->alignment_class,
                       isnan(v->translation_mm) && isnan(v->kyphosis_deg) ? -1 : (int)v->alignment);
        }
        if (getenv("SM_TEST_DUMP") && tv->has_body) {
            /* debugging aid: one line per body for offline study of the whole driver */
            const SmPhantomVertebraSpec *vs = &ph->spec.vertebra[tv->level];
            printf("FDUMP %s %d %d %.3f %.3f %.2f %d %d %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f "
                   "%d %d %.3f %.3f %.3f %d %.3f %d %d %d %.3f %.3f %.3f\n",
                   tv->name, tv->verse_id, (int)cut[l], ph->spec.slice_mm, ph->spec.pixel_mm,
                   ph->spec.oblique_deg, (int)osteoporotic, tv->collapse_type,
                   v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm,
                   tv->height_anterior_mm, tv->height_middle_mm, tv->height_posterior_mm,
                   tv->expected_anterior_mm, tv->expected_middle_mm, tv->expected_posterior_mm,
                   tv->genant_grade, v->genant_grade, v->height_loss_pct, tv->height_loss_pct,
                   v->expected_height_mm, tv->lesion_class, tv->body_involvement_fraction,
                   vs->n_lesions ? vs->lesion[0].type : 0,
                   vs->n_lesions ? (int)vs->lesion[0].cortical_breach : 0, v->deformity,
                   v->ap_depth_mm, tv->ap_depth_mm, vs->collapse_pct);
        }
        bool miss = tv->lesion_class != (int)v->lesion_class ||
                    tv->posterolateral != (int)v->posterolateral ||
                    tv->sins_location != v->sins_location ||
                    tv->sins_lesion_quality != v->sins_lesion_quality ||
                    (!cut[l] && tv->sins_collapse != v->sins_collapse) ||
                    (!cut[l] && tv->genant_grade != v->genant_grade) ||
                    (!near_cut && tv->sins_alignment != v->sins_alignment);
        if (miss || getenv("SM_TEST_VERBOSE"))
            printf("    %-3s class %d (truth %d) inv %.2f (%.2f) PL %d [%.2f/%.2f] (%d) loss %.1f (%.1f) grade %d (%d) "
                   "SINS loc %d (%d) qual %d (%d) align %d (%d) coll %d (%d) pl %d (%d)%s\n",
                   tv->name, v->lesion_class, tv->lesion_class, v->body_involvement_fraction,
                   tv->body_involvement_fraction, v->posterolateral, v->posterolateral_fraction[0],
                   v->posterolateral_fraction[1], tv->posterolateral,
                   v->height_loss_pct, tv->height_loss_pct, v->genant_grade, tv->genant_grade,
                   v->sins_location, tv->sins_location, v->sins_lesion_quality,
                   tv->sins_lesion_quality, v->sins_alignment, tv->sins_alignment,
                   v->sins_collapse, tv->sins_collapse, v->sins_posterolateral,
                   tv->sins_posterolateral, cut[l] ? " [cut by the field of view]" : "");
    }
    sm_metrics_destroy(m);
    sm_phantom_destroy(ph);
}

/* The per-vertebra targets for the whole metrics driver on phantoms whose
 * geometry (levels, pixel 0.6-1 mm, slice 0.6-3 mm, obliquity, position, curvature,
 * noise) and pathology (sm_phantom_spec_randomize: lesions 50 %, collapse 35 %,
 * alignment 25 % of levels) are drawn, not hand-picked; one osteoporotic spine per set.
 * SM_TEST_SEED re-draws the sets, SM_TEST_FULL_SETS sets their number (default 2). */
static void test_phantoms_full(void **state)
{
    (void)state;
    Study st;
    memset(&st, 0, sizeof st);
    static const char *cfn[CF_COUNT] = {"lesion class", "Genant grade", "SINS collapse category",
                                        "posterolateral", "alignment class (segment below)",
                                        "SINS location", "SINS lesion quality", "SINS alignment",
                                        "SINS collapse", "SINS posterolateral"};
    for (int c = 0; c < CF_COUNT; c++)
        st.cf[c].name = cfn[c];
    uint64_t base = getenv("SM_TEST_SEED") ? strtoull(getenv("SM_TEST_SEED"), NULL, 10) : 20261127;
    int n_sets = getenv("SM_TEST_FULL_SETS") ? atoi(getenv("SM_TEST_FULL_SETS")) : 2;
    for (int set = 0; set < n_sets; set++) {
        uint64_t rs = base * 7919 + (uint64_t)set;
        for (int k = 0; k < 7; k++) {
            SmPhantomSpec s;
            phantom_spec_draw(&rs, &s, k); /* geometry; its pathology is replaced below */
            bool osteo = k == 6;
            if (osteo) {
                s.osteoporotic = true;
                s.osteoporotic_hu = unif(&rs, 45, 110);
                sm_phantom_spec_randomize(&s, lcg(&rs), 0.0, 0.35, 0.0);
            } else {
                sm_phantom_spec_randomize(&s, lcg(&rs), 0.5, 0.35, 0.25);
            }
            printf("  set %d phantom %d: %s-%s pixel %.2f slice %.2f %s oblique %.1f%s\n", set, k,
                   sm_phantom_level_name(s.level_first), sm_phantom_level_name(s.level_last),
                   s.pixel_mm, s.slice_mm, s.patient_position, s.oblique_deg,
                   osteo ? " osteoporotic" : "");
            study_run(&s, &st, osteo);
        }
    }
    static const char *lesion_names[CF_N] = {"n/a", "none", "lytic", "blastic", "mixed", NULL};
    static const char *side_names[CF_N] = {"n/a", "none", "left", "right", "bilateral", NULL};
    static const char *align_names[CF_N] = {"not meas.", "normal", "deformity", "subluxation",
                                            NULL, NULL};
    static const char *grade_names[CF_N] = {"not meas.", "0", "1", "2", "3", NULL};
    static const char *pts_names[CF_N] = {"null/n.s.", "0", "1", "2", "3", "4"};
    printf("\n  ===== confusion matrices: %d set(s) of 6 random + 1 osteoporotic phantom =====\n",
           n_sets);
    cf_print(&st.cf[CF_LESION], lesion_names);
    cf_print(&st.cf[CF_GENANT], grade_names);
    cf_print(&st.cf[CF_COLLAPSE], pts_names);
    cf_print(&st.cf[CF_PL], side_names);
    cf_print(&st.cf[CF_ALIGN], align_names);
    for (int c = CF_S_LOC; c <= CF_S_PL; c++)
        if (c != CF_S_COLLAPSE)
            cf_print(&st.cf[c], pts_names);
    printf("  (SINS collapse points: the \"SINS collapse category\" table above)\n");
    printf("  collapsed vertebrae (truth Genant >= 1): %d; Genant right %d, SINS collapse right %d\n",
           st.n_col, st.n_col_genant, st.n_col_sins);
    printf("  body involvement within 10 points: %d/%d (max error %.1f points)\n", st.n_inv_ok,
           st.n_inv, 100 * st.max_inv_err);
    printf("  posterolateral side right: %d/%d involved (truth or call)\n", st.n_pl_ok, st.n_pl);
    printf("  osteoporotic spines: %d vertebrae, lesion called %d\n", st.n_osteo, st.n_osteo_called);
    printf("  vertebrae left out of the geometric components (a body cut by the field of view): %d\n",
           st.n_geom_cut);
    fflush(stdout);
    int r, t;
    t = cf_total(&st.cf[CF_LESION], &r);
    assert_true(t > 0 && r >= 0.95 * t);
    assert_int_equal(st.n_osteo_called, 0);
    assert_int_equal(st.n_inv_ok, st.n_inv);
    assert_true(st.n_col > 0);
    assert_true(st.n_col_genant >= 0.9 * st.n_col);
    assert_true(st.n_col_sins >= 0.9 * st.n_col);
    assert_true(st.n_pl_ok >= 0.9 * st.n_pl);
    for (int c = CF_S_LOC; c <= CF_S_PL; c++) {
        t = cf_total(&st.cf[c], &r);
        assert_true(t > 0 && r >= 0.9 * t);
    }
}

/* Identical results at 1 and 2 threads (every number, bit for bit). */
static void test_threads(void **state)
{
    (void)state;
    SmPhantomSpec s;
    uint64_t rs = 77;
    phantom_spec_draw(&rs, &s, 0);
    SmError *e = NULL;
    SmPhantom *ph = NULL;
    assert_true(sm_phantom_generate(&e, &s, &ph));
    SmSeriesMetrics m1, m2;
    int *ids1, *ids2;
    phantom_run(ph, 1, &m1, &ids1);
    phantom_run(ph, 2, &m2, &ids2);
    for (size_t i = 0; i < ph->n_vertebrae; i++) {
        const SmVertebraMetrics *a = &m1.v[i], *b = &m2.v[i];
        assert_memory_equal(a->body_centroid_lps, b->body_centroid_lps, sizeof a->body_centroid_lps);
        assert_memory_equal(a->axis_superior, b->axis_superior, sizeof a->axis_superior);
        assert_memory_equal(a->axis_anterior, b->axis_anterior, sizeof a->axis_anterior);
        double x[] = {a->height_anterior_mm, a->height_middle_mm, a->height_posterior_mm,
                      a->ap_depth_mm, a->expected_height_mm, a->height_loss_pct,
                      a->translation_mm, a->kyphosis_deg, a->scoliosis_deg};
        double y[] = {b->height_anterior_mm, b->height_middle_mm, b->height_posterior_mm,
                      b->ap_depth_mm, b->expected_height_mm, b->height_loss_pct,
                      b->translation_mm, b->kyphosis_deg, b->scoliosis_deg};
        for (size_t q = 0; q < sizeof x / sizeof x[0]; q++)
            if (memcmp(&x[q], &y[q], sizeof x[q]) != 0)
                printf("  vertebra %zu field %zu: %.17g vs %.17g\n", i, q, x[q], y[q]);
        assert_memory_equal(x, y, sizeof x);
        assert_int_equal(a->genant_grade, b->genant_grade);
        assert_int_equal(a->deformity, b->deformity);
        assert_int_equal(a->alignment, b->alignment);
    }
    series_free(&m1);
    series_free(&m2);
    free(ids1);
    free(ids2);
    sm_phantom_destroy(ph);
}

/* ------------------------------------------------------------------ real CT */

static void test_realdata(void **state)
{
    (void)state;
    char p_total[1024], p_body[1024], p_ref[1024];
    if (!sm_test_shared("ct-totalseg-example/labels/total.nii.gz", p_total, sizeof p_total) ||
        !sm_test_shared("ct-totalseg-example/labels/vertebrae_body.nii.gz", p_body, sizeof p_body) ||
        !sm_test_shared("ct-totalseg-example/reference_spine_report.json", p_ref, sizeof p_ref)) {
        skip();
        return;
    }
    SmError *e = NULL;
    SmVolume *total = NULL, *body = NULL;
    assert_true(sm_io_nifti_load(&e, p_total, &total));
    assert_true(sm_io_nifti_load(&e, p_body, &body));
    assert_true(sm_volume_same_grid(total, body, 0.01));
    SmVolume *lab = sm_volume_create(&e, total->dims, SM_VOXEL_U8);
    SmVolume *sub = sm_volume_create(&e, total->dims, SM_VOXEL_U8);
    assert_non_null(lab);
    assert_non_null(sub);
    sm_volume_copy_geometry(lab, total);
    sm_volume_copy_geometry(sub, total);
    size_t nv = sm_volume_n_voxels(total);
    bool present[32] = {false};
    uint8_t *L = lab->data, *S = sub->data;
    for (size_t idx = 0; idx < nv; idx++) {
        size_t i = idx % total->dims[0], j = (idx / total->dims[0]) % total->dims[1],
               k = idx / (total->dims[0] * total->dims[1]);
        int t = (int)sm_volume_get(total, i, j, k), b = (int)sm_volume_get(body, i, j, k);
        /* TotalSegmentator total: 26 S1, 27 L5 ... 50 C1 -> VerSe 26, 24 ... 1 */
        int verse = t == 26 ? 26 : (t >= 27 && t <= 50 ? 51 - t : 0);
        if (b == 2)
            S[idx] = SM_MET_SUB_DISC;
        if (!verse)
            continue;
        L[idx] = (uint8_t)verse;
        S[idx] = b == 1 ? SM_MET_SUB_BODY : SM_MET_SUB_ARCH;
        present[verse] = true;
    }
    int ids[32];
    size_t n = 0;
    for (int id = 1; id <= 26; id++)
        if (present[id])
            ids[n++] = id;
    SmSeriesMetrics m;
    run_geometry(lab, sub, n, ids, 2, &m);

    json_error_t je;
    json_t *ref = json_load_file(p_ref, 0, &je);
    assert_non_null(ref);
    json_t *res = json_object_get(ref, "results");
    double max_diff = 0, diffs[15];
    int nd = 0;
    for (size_t i = 0; i < n; i++) {
        const SmVertebraMetrics *v = &m.v[i];
        printf("  VerSe %d: centroid %.1f %.1f %.1f superior %.3f %.3f %.3f anterior %.3f %.3f %.3f"
               " depth %.1f\n", ids[i], v->body_centroid_lps[0], v->body_centroid_lps[1],
               v->body_centroid_lps[2], v->axis_superior[0], v->axis_superior[1],
               v->axis_superior[2], v->axis_anterior[0], v->axis_anterior[1], v->axis_anterior[2],
               v->ap_depth_mm);
        if (ids[i] < 20 || ids[i] > 24) {
            printf("  VerSe %d: H %.1f/%.1f/%.1f loss %.1f grade %d kyph %.1f transl %.1f\n", ids[i],
                   v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm,
                   v->height_loss_pct, v->genant_grade, v->kyphosis_deg, v->translation_mm);
            continue;
        }
        static const char *pos[3] = {"anterior", "middle", "posterior"};
        double mh[3] = {v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm};
        printf("  L%d:", ids[i] - 19);
        for (int q = 0; q < 3; q++) {
            char key[64];
            snprintf(key, sizeof key, "vertebrae_L%d_height_%s_mm", ids[i] - 19, pos[q]);
            json_t *jv = json_object_get(res, key);
            assert_non_null(jv);
            double r = json_number_value(jv), d = mh[q] - r;
            printf(" %s %.1f (ref %.1f, diff %+.1f)", pos[q], mh[q], r, d);
            max_diff = fmax(max_diff, fabs(d));
            diffs[nd++] = d;
        }
        printf(" depth %.1f loss %.1f grade %d kyph %.1f scol %.1f transl %.2f class %d\n",
               v->ap_depth_mm, v->height_loss_pct, v->genant_grade, v->kyphosis_deg,
               v->scoliosis_deg, v->translation_mm, v->alignment);
    }
    /* The report's heights are systematically shorter than the body-mask extents (its
     * convention is not documented; values are multiples of 1.5 mm): the check is that
     * both agree up to one constant offset, with the offset and the spread each within
     * 3 mm (one voxel), and that no collapse is called on this normal spine. */
    assert_int_equal(nd, 15);
    double mean = 0, spread = 0;
    for (int q = 0; q < nd; q++)
        mean += diffs[q] / nd;
    for (int q = 0; q < nd; q++)
        spread = fmax(spread, fabs(diffs[q] - mean));
    printf("  real CT: max |difference| to the TotalSegmentator report %.1f mm, mean difference "
           "%+.2f mm, largest deviation from the mean %.2f mm\n", max_diff, mean, spread);
    assert_true(fabs(mean) <= 3.0);
    assert_true(spread <= 3.0);
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 20 && ids[i] <= 24)
            assert_int_equal(m.v[i].genant_grade, 0);
    /* a normal spine: every lumbar segment (L1/L2 ... L5/S1) is measured and classed normal,
     * translation below the 3 mm SINS threshold */
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 20 && ids[i] <= 24) {
            assert_true(isfinite(m.v[i].translation_mm));
            assert_true(m.v[i].translation_mm < SM_SINS_TRANSLATION_MM);
            assert_int_equal(m.v[i].alignment, SM_ALIGN_NORMAL);
        }
    json_decref(ref);
    series_free(&m);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);
    sm_volume_destroy(total);
    sm_volume_destroy(body);
}

/* ------------------------------------------------------------------ errors */

static void test_errors(void **state)
{
    (void)state;
    size_t d[3] = {5, 4, 3};
    SmError *e = NULL;
    SmVolume *lab = sm_volume_create(&e, d, SM_VOXEL_I16);
    SmVolume *sub = sm_volume_create(&e, d, SM_VOXEL_U8);
    int ids[1] = {20};
    SmMetricsInput in = {.labels = lab, .subregions = sub, .n_levels = 1, .verse_labels = ids};
    SmSeriesMetrics m;
    series_init(&m, 1, ids);
    assert_false(sm_metric_heights(&e, &in, &m));
    assert_non_null(e);
    assert_int_equal(e->code, SM_ERR_USAGE);
    assert_non_null(strstr(e->message, "label map"));
    sm_error_destroy(e);
    e = NULL;
    /* an empty U8 map: no body, NAN heights, a note, no error */
    sm_volume_destroy(lab);
    lab = sm_volume_create(&e, d, SM_VOXEL_U8);
    in.labels = lab;
    assert_true(sm_metric_heights(&e, &in, &m));
    assert_true(isnan(m.v[0].height_anterior_mm));
    assert_int_equal(m.v[0].genant_grade, -1);
    assert_true(m.v[0].notes.n >= 1);
    series_free(&m);
    sm_volume_destroy(lab);
    sm_volume_destroy(sub);
}

/* Draws phantom k of set `set` of the whole driver at base seed `seed` (as
 * test_phantoms_full draws it, k < 6), generates it and runs every metric on it; *at is the
 * metrics index of level `name` and *tv its truth. */
static void driver_draw_run(uint64_t seed, int set, int k, const char *name, SmPhantom **ph,
                            SmSeriesMetrics **m, size_t *at, const SmPhantomVertebra **tv)
{
    uint64_t rs = seed * 7919 + (uint64_t)set;
    SmPhantomSpec s;
    for (int q = 0; q <= k; q++) {
        phantom_spec_draw(&rs, &s, q);
        sm_phantom_spec_randomize(&s, lcg(&rs), 0.5, 0.35, 0.25);
    }
    SmError *err = NULL;
    *ph = NULL;
    assert_true(sm_phantom_generate(&err, &s, ph));
    size_t n = 0;
    *at = SIZE_MAX;
    int ids[SM_PHANTOM_N_LEVELS];
    const char *names[SM_PHANTOM_N_LEVELS];
    for (size_t q = 0; q < (*ph)->n_vertebrae; q++) {
        if (!(*ph)->vertebrae[q].has_body)
            continue;
        if (strcmp((*ph)->vertebrae[q].name, name) == 0)
            *at = n, *tv = &(*ph)->vertebrae[q];
        ids[n] = (*ph)->vertebrae[q].verse_id;
        names[n] = (*ph)->vertebrae[q].name;
        n++;
    }
    assert_true(*at != SIZE_MAX);
    SmMetricsInput in = {(*ph)->ct, (*ph)->labels, (*ph)->subregions, n, ids, names, 2, NULL};
    *m = NULL;
    assert_true(sm_metrics_run(&err, &in, m));
}

/* A crushed body is mostly shell: a held-out draw of the whole driver (SM_TEST_SEED=5004,
 * set 0, phantom 3: T4-L2, 0.87 mm slices) has T4 crushed by 58 % (7.8 mm tall) with a
 * mixed lesion over 70 % of the body; 85 % of the blastic part lies within the 2.5 mm
 * shell, so its core part (344 voxels) fell short of the calling size and T4 read lytic.
 * The class must be the truth's (mixed), the involvement no lower than before (0.33). */
static void test_crushed_mixed_shell(void **state)
{
    (void)state;
    SmPhantom *ph;
    SmSeriesMetrics *m;
    size_t t4;
    const SmPhantomVertebra *tv = NULL;
    driver_draw_run(5004, 0, 3, "T4", &ph, &m, &t4, &tv);
    assert_int_equal(tv->lesion_class, SM_LESION_MIXED); /* the draw this test is about */
    assert_true(tv->height_loss_pct > 50);
    const SmVertebraMetrics *v = &m->v[t4];
    printf("  crushed T4: class %d (truth %d), involvement %.2f (truth %.2f)\n", (int)v->lesion_class,
           tv->lesion_class, v->body_involvement_fraction, tv->body_involvement_fraction);
    assert_int_equal(v->lesion_class, SM_LESION_MIXED);
    assert_true(v->body_involvement_fraction >= 0.33);
    sm_metrics_destroy(m);
    sm_phantom_destroy(ph);
}

/* A sliver of pedicle at the field's edge is mostly cortex: a held-out draw of the whole
 * driver (SM_TEST_SEED=6001, set 0, phantom 4: T8-L5, 1.53 mm slices, grid tilted 21 deg)
 * has T8 cut by the field's top with 299 voxels of its posterior elements in view; its
 * right side filled the blastic band and T8, lesion-free, was called blastic from the
 * posterolateral elements with a right posterolateral involvement. T9 below it, also cut,
 * has a lytic lesion replacing both pedicles, which must still be found. */
static void test_cut_pedicle_fragment(void **state)
{
    (void)state;
    SmPhantom *ph;
    SmSeriesMetrics *m;
    size_t t8;
    const SmPhantomVertebra *tv = NULL;
    driver_draw_run(6001, 0, 4, "T8", &ph, &m, &t8, &tv);
    assert_int_equal(tv->lesion_class, SM_LESION_NONE); /* the draw this test is about */
    const SmVertebraMetrics *v = &m->v[t8], *v9 = &m->v[t8 + 1];
    printf("  cut T8: class %d, posterolateral %d [%.2f/%.2f]; T9: class %d, posterolateral %d\n",
           (int)v->lesion_class, (int)v->posterolateral, v->posterolateral_fraction[0],
           v->posterolateral_fraction[1], (int)v9->lesion_class, (int)v9->posterolateral);
    assert_int_equal(v->lesion_class, SM_LESION_NONE);
    assert_int_equal(v->posterolateral, SM_SIDE_NONE);
    assert_int_equal(v9->lesion_class, SM_LESION_LYTIC);
    assert_int_equal(v9->posterolateral, SM_SIDE_BILATERAL);
    sm_metrics_destroy(m);
    sm_phantom_destroy(ph);
}

/* Two CTest entries share this file: the default run holds every check that the method
 * meets; "--targets" runs the product issue's phantom accuracy targets: the heights /
 * alignment study (every height and translation within 1.5 mm, every kyphosis within
 * 5 deg, Genant / SINS collapse >= 90 % of collapsed vertebrae) and the whole driver on
 * drawn pathology (lesion class >= 95 %, involvement within 10 points, posterolateral side
 * >= 90 %, every SINS component >= 90 %, Genant / SINS collapse >= 90 %; confusion
 * matrices printed). Registered as an expected failure while the Genant grade of collapsed
 * vertebrae and a few involvement fractions still miss; see docs/metrics.md "Open
 * targets". "--targets-heights" runs the heights / alignment study alone (for sweeps over
 * SM_TEST_SEED; SM_TEST_DUMP=1 prints one line per body), "--targets-full" the whole driver
 * alone (SM_TEST_SEED, SM_TEST_FULL_SETS; SM_TEST_DUMP=1 prints one FDUMP line per body:
 * level, cut, slice, pixel, obliquity, osteoporotic, collapse type, measured and true
 * heights, true pre-morbid heights, true and measured grade and loss, expected height,
 * lesion class, involvement, lesion type, breach, deformity, depths, collapse %). */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_box_rotated),
        cmocka_unit_test(test_wedge_and_biconcave),
        cmocka_unit_test(test_stack_crush_translation),
        cmocka_unit_test(test_sacrum_wall_eaten),
        cmocka_unit_test(test_realdata),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_crushed_mixed_shell),
        cmocka_unit_test(test_cut_pedicle_fragment),
    };
    const struct CMUnitTest targets[] = {
        cmocka_unit_test(test_phantoms),
        cmocka_unit_test(test_phantoms_full),
    };
    const struct CMUnitTest targets_full[] = {
        cmocka_unit_test(test_phantoms_full),
    };
    const struct CMUnitTest targets_heights[] = {
        cmocka_unit_test(test_phantoms),
    };
    if (argc > 1 && strcmp(argv[1], "--targets") == 0)
        return cmocka_run_group_tests_name("issue targets on random phantoms", targets, NULL, NULL);
    /* the heights / alignment study alone (quicker, for sweeps over SM_TEST_SEED) */
    /* the whole driver alone (SM_TEST_SEED, SM_TEST_FULL_SETS; SM_TEST_DUMP=1 prints one
     * FDUMP line per body) */
    if (argc > 1 && strcmp(argv[1], "--targets-full") == 0)
        return cmocka_run_group_tests_name("whole driver on random phantoms", targets_full, NULL,
                                           NULL);
    if (argc > 1 && strcmp(argv[1], "--targets-heights") == 0)
        return cmocka_run_group_tests_name("heights study on random phantoms", targets_heights, NULL,
                                           NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
