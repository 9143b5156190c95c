/* Unit tests of segment/ kernels on small odd-sized volumes with hand-computed answers:
 * connected components, hole filling, box morphology, threshold selection, disc valleys,
 * disc-plane partition, sub-region geometry, level names, the bitmap font, and the
 * error paths of the public API. */
#include "segment_internal.h"
#include "sm_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t count_nonzero(const uint8_t *m, size_t n)
{
    size_t c = 0;
    for (size_t v = 0; v < n; v++)
        c += m[v] != 0;
    return c;
}

static void test_components_connectivity(void **state)
{
    (void)state;
    /* 7 x 5 x 3: two voxels touching only by a corner (26- but not 6-connected), one
     * isolated voxel, and a 3-voxel bar. */
    const size_t d[3] = {7, 5, 3};
    uint8_t m[7 * 5 * 3] = {0};
    uint32_t lab[7 * 5 * 3];
    m[seg_idx(d, 1, 1, 0)] = 1;
    m[seg_idx(d, 2, 2, 1)] = 1;           /* corner neighbour of (1,1,0) */
    m[seg_idx(d, 6, 4, 2)] = 1;           /* isolated, last in raster order */
    m[seg_idx(d, 4, 0, 0)] = 1;           /* bar along z */
    m[seg_idx(d, 4, 0, 1)] = 1;
    m[seg_idx(d, 4, 0, 2)] = 1;
    uint32_t n = 0;
    assert_true(sm_seg_components_label(NULL, m, d, 26, lab, &n));
    assert_int_equal(n, 3);
    /* numbered by the raster order of the first voxel: bar (4,0,0) first, then (1,1,0) */
    assert_int_equal(lab[seg_idx(d, 4, 0, 0)], 1);
    assert_int_equal(lab[seg_idx(d, 4, 0, 2)], 1);
    assert_int_equal(lab[seg_idx(d, 1, 1, 0)], 2);
    assert_int_equal(lab[seg_idx(d, 2, 2, 1)], 2);
    assert_int_equal(lab[seg_idx(d, 6, 4, 2)], 3);
    assert_int_equal(lab[seg_idx(d, 0, 0, 0)], 0);
    assert_true(sm_seg_components_label(NULL, m, d, 6, lab, &n));
    assert_int_equal(n, 4); /* the corner pair splits */
    assert_int_equal(lab[seg_idx(d, 2, 2, 1)], 3);
    /* empty and full volumes */
    uint8_t z[7 * 5 * 3] = {0};
    assert_true(sm_seg_components_label(NULL, z, d, 26, lab, &n));
    assert_int_equal(n, 0);
    memset(z, 1, sizeof z);
    assert_true(sm_seg_components_label(NULL, z, d, 6, lab, &n));
    assert_int_equal(n, 1);
}

/* Second reader: breadth-first flood fill from each unlabelled voxel in raster order
 * (so numbering is by first voxel), neighbours by Manhattan distance. */
static uint32_t bfs_components(const uint8_t *m, const size_t d[3], int conn, uint32_t *lab,
                               size_t *queue)
{
    size_t n = d[0] * d[1] * d[2];
    int maxman = conn == 6 ? 1 : conn == 18 ? 2 : 3;
    uint32_t nc = 0;
    memset(lab, 0, n * sizeof *lab);
    for (size_t v0 = 0; v0 < n; v0++) {
        if (!m[v0] || lab[v0])
            continue;
        lab[v0] = ++nc;
        size_t qh = 0, qt = 0;
        queue[qt++] = v0;
        while (qh < qt) {
            size_t v = queue[qh++];
            long i = (long)(v % d[0]), j = (long)(v / d[0] % d[1]), k = (long)(v / (d[0] * d[1]));
            for (long dk = -1; dk <= 1; dk++)
                for (long dj = -1; dj <= 1; dj++)
                    for (long di = -1; di <= 1; di++) {
                        long man = labs(di) + labs(dj) + labs(dk);
                        if (man == 0 || man > maxman)
                            continue;
                        long a = i + di, b = j + dj, c = k + dk;
                        if (a < 0 || b < 0 || c < 0 || a >= (long)d[0] || b >= (long)d[1] ||
                            c >= (long)d[2])
                            continue;
                        size_t u = (size_t)a + d[0] * ((size_t)b + d[1] * (size_t)c);
                        if (m[u] && !lab[u]) {
                            lab[u] = nc;
                            queue[qt++] = u;
                        }
                    }
        }
    }
    return nc;
}

/* The slice-parallel labelling equals a flood fill on random odd-sized masks, for 6, 18
 * and 26 connectivity, at 1 and 2 threads. */
static void test_components_random(void **state)
{
    (void)state;
    const size_t d[3] = {23, 17, 11};
    const size_t n = 23 * 17 * 11;
    uint8_t *m = malloc(n);
    uint32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    size_t *queue = malloc(n * sizeof *queue);
    assert_non_null(m);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(queue);
    uint32_t seed = 12345;
    int saved = sm_omp_threads();
    for (int density = 25; density <= 55; density += 15) {
        for (size_t v = 0; v < n; v++) {
            seed = seed * 1103515245u + 12345u;
            m[v] = (uint8_t)(((seed >> 16) % 100) < (uint32_t)density);
        }
        const int conns[3] = {6, 18, 26};
        for (int c = 0; c < 3; c++) {
            uint32_t nref = bfs_components(m, d, conns[c], b, queue);
            for (int t = 1; t <= 2; t++) {
                sm_omp_set_threads(t);
                uint32_t nc = 0;
                assert_true(sm_seg_components_label(NULL, m, d, conns[c], a, &nc));
                assert_int_equal(nc, nref);
                assert_memory_equal(a, b, n * sizeof *a);
            }
        }
    }
    sm_omp_set_threads(saved);
    free(m);
    free(a);
    free(b);
    free(queue);
}

static void test_holes_fill(void **state)
{
    (void)state;
    /* 9 x 7 x 2: slice 0 holds a ring enclosing a 3x1 hole; slice 1 a ring enclosing a
     * 5x3 hole, drawn on the slice border (columns 7-8 stay outside). */
    const size_t d[3] = {9, 7, 2};
    uint8_t m[9 * 7 * 2] = {0};
    for (size_t i = 1; i <= 5; i++) {
        m[seg_idx(d, i, 1, 0)] = 1;
        m[seg_idx(d, i, 3, 0)] = 1;
    }
    m[seg_idx(d, 1, 2, 0)] = 1;
    m[seg_idx(d, 5, 2, 0)] = 1; /* hole = (2..4, 2, 0): 3 voxels */
    for (size_t i = 0; i <= 6; i++) {
        m[seg_idx(d, i, 0, 1)] = 1;
        m[seg_idx(d, i, 4, 1)] = 1;
    }
    for (size_t j = 0; j <= 4; j++) {
        m[seg_idx(d, 0, j, 1)] = 1;
        m[seg_idx(d, 6, j, 1)] = 1;
    } /* hole = (1..5, 1..3, 1): 15 voxels; the ring lies on the slice border */
    size_t before = count_nonzero(m, sizeof m);
    uint8_t m2[sizeof m];
    memcpy(m2, m, sizeof m);
    assert_true(sm_seg_holes_fill_2d(NULL, m2, d, 3, 1));
    assert_int_equal(count_nonzero(m2, sizeof m2), before + 3); /* only the small hole */
    assert_int_equal(m2[seg_idx(d, 3, 2, 0)], 1);
    assert_int_equal(m2[seg_idx(d, 3, 2, 1)], 0);
    memcpy(m2, m, sizeof m);
    assert_true(sm_seg_holes_fill_2d(NULL, m2, d, 100, 1));
    assert_int_equal(count_nonzero(m2, sizeof m2), before + 3 + 15);
    assert_int_equal(m2[seg_idx(d, 8, 6, 1)], 0); /* outside stays outside */
}

static void test_box_morphology(void **state)
{
    (void)state;
    const size_t d[3] = {23, 17, 11};
    const size_t n = 23 * 17 * 11;
    uint8_t *m = calloc(n, 1);
    assert_non_null(m);
    m[seg_idx(d, 10, 8, 5)] = 1;
    const int r[3] = {2, 1, 0};
    assert_true(sm_seg_box_morph(NULL, m, d, r, false));
    assert_int_equal(count_nonzero(m, n), 5 * 3 * 1);
    assert_int_equal(m[seg_idx(d, 8, 7, 5)], 1);
    assert_int_equal(m[seg_idx(d, 12, 9, 5)], 1);
    assert_int_equal(m[seg_idx(d, 13, 8, 5)], 0);
    assert_int_equal(m[seg_idx(d, 10, 8, 6)], 0);
    /* a 7x5x3 block eroded by 1 in every direction leaves 5x3x1 */
    memset(m, 0, n);
    for (size_t k = 4; k < 7; k++)
        for (size_t j = 6; j < 11; j++)
            for (size_t i = 3; i < 10; i++)
                m[seg_idx(d, i, j, k)] = 1;
    const int r1[3] = {1, 1, 1};
    assert_true(sm_seg_box_morph(NULL, m, d, r1, true));
    assert_int_equal(count_nonzero(m, n), 5 * 3 * 1);
    assert_int_equal(m[seg_idx(d, 4, 7, 5)], 1);
    assert_int_equal(m[seg_idx(d, 3, 7, 5)], 0);
    free(m);
}

static void test_thresholds_from_histogram(void **state)
{
    (void)state;
    /* soft tissue: Gaussian at 40 HU, sigma 15, 1e6 voxels; bone: flat 400..900 HU */
    const int hmin = -1024;
    const size_t nb = 4096;
    uint64_t *h = calloc(nb, sizeof *h);
    assert_non_null(h);
    for (int hv = -100; hv <= 200; hv++)
        h[hv - hmin] = (uint64_t)(1e6 / (15 * sqrt(2 * M_PI)) *
                                  exp(-0.5 * (hv - 40) * (hv - 40) / (15.0 * 15.0)));
    for (int hv = 400; hv <= 900; hv++)
        h[hv - hmin] += 200;
    SegThresholds t;
    sm_seg_thresholds_from_histogram(h, nb, hmin, &t);
    assert_true(fabs(t.soft - 40) <= 1);
    /* half width at half maximum of sigma 15 is 17.7 HU: sigma within 2 HU */
    assert_true(fabs(t.soft_sigma - 15) <= 2);
    /* Otsu over [soft + 3 sigma, 1500] is dominated by the flat bone block and splits it
     * near its middle (~650 HU); the seed threshold is clamped to soft + 450 = 490 HU */
    assert_true(fabs(t.hi - 490) < 1e-9);
    /* grow threshold: soft + max(0.3 (hi - soft), 3.5 sigma) = 40 + 135 = 175 HU */
    assert_true(fabs(t.lo - 175) < 1e-9);
    assert_true(fabs(t.edge - 0.5 * (t.soft + t.lo)) < 1e-9);
    free(h);
}

static void test_profile_valleys(void **state)
{
    (void)state;
    /* flat 200 with narrow dips (disc-like, 100 deep) at 20 and 50 and a wide shallow dip
     * (20 deep, like a body's low-density middle) at 80 */
    double p[101];
    for (int i = 0; i < 101; i++) {
        p[i] = 200;
        p[i] -= 100 * exp(-0.5 * (i - 20) * (i - 20) / 4.0);
        p[i] -= 100 * exp(-0.5 * (i - 50) * (i - 50) / 4.0);
        p[i] -= 20 * exp(-0.5 * (i - 80) * (i - 80) / 36.0);
    }
    size_t idx[8];
    double depth[8];
    size_t n = sm_seg_profile_valleys(p, NULL, 101, 3, 8, 50, 6, 0.0, idx, depth, 8);
    assert_int_equal(n, 2);
    assert_int_equal(idx[0], 20);
    assert_int_equal(idx[1], 50);
    assert_true(depth[0] > 80 && depth[1] > 80);
    /* with a low bar the wide dip appears, far shallower */
    n = sm_seg_profile_valleys(p, NULL, 101, 3, 8, 5, 6, 0.0, idx, depth, 8);
    assert_int_equal(n, 3);
    assert_int_equal(idx[2], 80);
    assert_true(depth[2] < 20);
    assert_int_equal(sm_seg_profile_valleys(p, NULL, 2, 3, 8, 5, 6, 0.0, idx, depth, 8), 0);
}

static void test_segment_of_planes(void **state)
{
    (void)state;
    SegDisc d[2];
    memset(d, 0, sizeof d);
    d[0].n[2] = 1;
    d[1].n[2] = 1;
    d[1].p[2] = 10;
    double a[3] = {0, 0, 5}, b[3] = {3, -4, -1}, c[3] = {0, 0, 11};
    assert_int_equal(sm_seg_segment_of(d, 2, a), 1);
    assert_int_equal(sm_seg_segment_of(d, 2, b), 0);
    assert_int_equal(sm_seg_segment_of(d, 2, c), 2);
    /* bent cut: 4 mm behind the canal with slope 0.5 lifts a point 1 mm below the plane */
    double e[3] = {0, 0, 9};
    assert_int_equal(sm_seg_segment_of_bent(d, 2, e, 4.0, 0.5), 2);
    assert_int_equal(sm_seg_segment_of(d, 0, e), 0);
}

static void test_subregion_geometry(void **state)
{
    (void)state;
    SegSlice s;
    memset(&s, 0, sizeof s);
    s.cx = 0;
    s.cy = 0;
    s.rx = 8;
    s.ry_ant = 7;
    s.ry_post = 8;
    s.bx = 0;
    s.by = -25;
    s.half_width = 20;
    s.depth = 30;
    double body[3] = {5, -20, 0}, left[3] = {12, 0, 0}, right[3] = {-12, 0, 0};
    double arch[3] = {0, 20, 0}, tp[3] = {40, 5, 0};
    assert_int_equal(sm_seg_subregion_classify(&s, body), SM_SUB_BODY);
    /* LPS +x is the patient's left */
    assert_int_equal(sm_seg_subregion_classify(&s, left), SM_SUB_POSTEROLATERAL_L);
    assert_int_equal(sm_seg_subregion_classify(&s, right), SM_SUB_POSTEROLATERAL_R);
    assert_int_equal(sm_seg_subregion_classify(&s, arch), SM_SUB_POSTERIOR_ARCH);
    assert_int_equal(sm_seg_subregion_classify(&s, tp), SM_SUB_TRANSVERSE);
}

/* First-rib rule on hand values: short (reach <= 0.8 x the rib below), at least a stump,
 * the rib below a real rib, and not cut by the field of view. */
/* Canal front refinement: a synthetic column (2 mm grid) with a body of fatty marrow
 * (100 HU) whose posterior wall is the boundary between rows 19 and 20, the canal (10 HU,
 * rows 20-27), a lamina (800 HU, rows 28-29) and soft tissue (20 HU) elsewhere. A tracked
 * canal whose centre sits in the body (row 17, front 6 mm further forward) moves back so
 * that its front is the wall (y = 39 mm); a canal already behind the wall is left alone. */
static void test_canal_front_refine(void **state)
{
    (void)state;
    SegGrid grid;
    memset(&grid, 0, sizeof grid);
    grid.dims[0] = 40; grid.dims[1] = 40; grid.dims[2] = 5;
    grid.n = 40 * 40 * 5;
    grid.g = 2.0;
    int16_t *hu = malloc(grid.n * sizeof *hu);
    assert_non_null(hu);
    for (size_t k = 0; k < 5; k++)
        for (size_t j = 0; j < 40; j++)
            for (size_t i = 0; i < 40; i++) {
                int16_t h = 20;
                if (i >= 8 && i <= 32 && j >= 5 && j <= 19) h = 100;
                else if (i >= 14 && i <= 26 && j >= 20 && j <= 27) h = 10;
                else if (i >= 12 && i <= 28 && j >= 28 && j <= 29) h = 800;
                hu[seg_idx(grid.dims, i, j, k)] = h;
            }
    grid.hu = hu;
    SegFrame fr;
    memset(&fr, 0, sizeof fr);
    fr.nz = 5; fr.k0 = 0; fr.k1 = 4;
    fr.s = calloc(5, sizeof *fr.s);
    assert_non_null(fr.s);
    for (size_t k = 0; k < 5; k++) {
        SegSlice *sl = &fr.s[k];
        sl->valid = sl->observed = true;
        sl->cx = 40.0; sl->cy = 34.0;           /* row 17: inside the body */
        sl->rx = 8.0; sl->ry_ant = 6.0; sl->ry_post = 20.0; /* back wall at y = 54 */
        sl->bx = 40.0; sl->by = 20.0; sl->depth = 16.0; /* body from y = 12 to 28 */
        sl->half_width = 24.0;
    }
    const double edge = 60.0;
    assert_int_equal(sm_seg_canal_refine(&grid, edge, &fr), 5);
    for (size_t k = 0; k < 5; k++) {
        const SegSlice *sl = &fr.s[k];
        assert_true(fabs(sl->cy - sl->ry_ant - 39.0) < 1e-9); /* front = the wall */
        assert_true(fabs(sl->ry_ant - 6.0) < 1e-9);
        assert_true(fabs(sl->cy + sl->ry_post - 54.0) < 1e-9); /* back wall kept */
        assert_true(fabs(sl->by - 0.5 * sl->depth - 12.0) < 1e-9); /* body front kept */
        assert_true(fabs(sl->by + 0.5 * sl->depth - 39.0) < 1e-9); /* ... reaches the wall */
    }
    /* a canal already in the lumen, front on the wall: unchanged */
    for (size_t k = 0; k < 5; k++) {
        SegSlice *sl = &fr.s[k];
        sl->cy = 47.0; sl->ry_ant = 8.0; sl->ry_post = 7.0;
        sl->by = 25.0; sl->depth = 28.0;
    }
    assert_int_equal(sm_seg_canal_refine(&grid, edge, &fr), 0);
    assert_true(fabs(fr.s[2].cy - 47.0) < 1e-9);
    /* a dense layer behind 6 mm of lumen (an epidural mass): the front stops at the
     * body's wall, not at the layer's back */
    for (size_t k = 0; k < 5; k++)
        for (size_t i = 14; i <= 26; i++)
            hu[seg_idx(grid.dims, i, 23, k)] = 800;
    for (size_t k = 0; k < 5; k++) {
        SegSlice *sl = &fr.s[k];
        sl->cy = 34.0; sl->ry_ant = 6.0; sl->ry_post = 20.0;
        sl->by = 20.0; sl->depth = 16.0;
    }
    assert_int_equal(sm_seg_canal_refine(&grid, edge, &fr), 5);
    for (size_t k = 0; k < 5; k++)
        assert_true(fabs(fr.s[k].cy - fr.s[k].ry_ant - 39.0) < 1e-9);
    /* a track in marrow whose back radius ends in front of the wall (the real CT's
     * sacrum: the track's lowest slices on a fatty hole in S1, 'back wall' = the body's
     * posterior cortex): the wall is sought behind it, the front moves onto it */
    for (size_t k = 0; k < 5; k++)
        for (size_t i = 14; i <= 26; i++)
            hu[seg_idx(grid.dims, i, 23, k)] = 10; /* no epidural layer */
    for (size_t k = 0; k < 5; k++) {
        SegSlice *sl = &fr.s[k];
        sl->cy = 30.0; sl->ry_ant = 4.0; sl->ry_post = 6.0; /* lumen 26..36 in the body */
        sl->by = 18.0; sl->depth = 12.0;                      /* body front y = 12 */
    }
    assert_int_equal(sm_seg_canal_refine(&grid, edge, &fr), 5);
    for (size_t k = 0; k < 5; k++) {
        const SegSlice *sl = &fr.s[k];
        assert_true(fabs(sl->cy - sl->ry_ant - 39.0) < 1e-9); /* front = the wall */
        assert_true(fabs(sl->ry_ant - 4.0) < 1e-9);
        assert_true(fabs(sl->by - 0.5 * sl->depth - 12.0) < 1e-9); /* body front kept */
        assert_true(fabs(sl->by + 0.5 * sl->depth - 39.0) < 1e-9); /* ... reaches the wall */
    }
    free(fr.s);
    free(hu);
}

static void test_first_rib_rule(void **state)
{
    (void)state;
    assert_true(sm_seg_first_rib_test(61.0, 108.0, false));   /* phantom T1 vs T2 */
    assert_true(sm_seg_first_rib_test(122.0, 166.0, false));  /* LIDC right: 0.73 */
    assert_false(sm_seg_first_rib_test(106.0, 130.0, false)); /* T2 vs T3: 0.815 */
    assert_false(sm_seg_first_rib_test(61.0, 108.0, true));   /* cut by the FOV */
    assert_false(sm_seg_first_rib_test(40.0, 108.0, false));  /* no rib at all */
    assert_false(sm_seg_first_rib_test(61.0, 0.0, false));    /* nothing below */
    assert_false(sm_seg_first_rib_test(50.0, 54.0, false));   /* next is no rib */
}

static void test_level_names(void **state)
{
    (void)state;
    assert_string_equal(sm_seg_level_name(1), "C1");
    assert_string_equal(sm_seg_level_name(8), "T1");
    assert_string_equal(sm_seg_level_name(19), "T12");
    assert_string_equal(sm_seg_level_name(20), "L1");
    assert_string_equal(sm_seg_level_name(25), "L6");
    assert_string_equal(sm_seg_level_name(26), "S1");
    assert_string_equal(sm_seg_level_name(28), "T13");
    assert_null(sm_seg_level_name(0));
    assert_null(sm_seg_level_name(29));
    assert_int_equal(sm_seg_level_from_name("L3"), 22);
    assert_int_equal(sm_seg_level_from_name("T13"), 28);
    assert_int_equal(sm_seg_level_from_name("sacrum"), 26);
    assert_int_equal(sm_seg_level_from_name("X9"), 0);
    assert_int_equal(sm_seg_level_from_name(NULL), 0);
}

static void test_font(void **state)
{
    (void)state;
    uint8_t rgb[11 * 9 * 3];
    memset(rgb, 0, sizeof rgb);
    const uint8_t white[3] = {255, 255, 255};
    sm_seg_font_draw(rgb, 11, 9, 1, 1, "1", 1, white);
    size_t lit = 0;
    for (size_t q = 0; q < sizeof rgb; q += 3)
        lit += rgb[q] == 255;
    /* glyph '1': rows 0x04 0x0C 0x04 0x04 0x04 0x04 0x0E -> 1+2+1+1+1+1+3 pixels */
    assert_int_equal(lit, 10);
    /* clipped at the border without writing outside */
    sm_seg_font_draw(rgb, 11, 9, 8, 6, "88", 2, white);
}

static void test_api_errors(void **state)
{
    (void)state;
    SmError *err = NULL;
    SmSpineSeg *seg = NULL;
    assert_false(sm_seg_spine_run(&err, NULL, NULL, &seg));
    assert_int_equal(err->code, SM_ERR_USAGE);
    sm_error_destroy(err);
    err = NULL;
    size_t dims[3] = {23, 17, 11};
    SmVolume *ct = sm_volume_create(NULL, dims, SM_VOXEL_I16);
    assert_non_null(ct);
    SmSegOptions opt = {1, true, "X9", 10.0};
    assert_false(sm_seg_spine_run(&err, ct, &opt, &seg));
    assert_int_equal(err->code, SM_ERR_USAGE);
    assert_non_null(strstr(err->message, "X9"));
    sm_error_destroy(err);
    err = NULL;
    /* an all-air volume has no body */
    int16_t *d = ct->data;
    for (size_t v = 0; v < 23 * 17 * 11; v++)
        d[v] = -1000;
    opt.has_anchor = false;
    assert_false(sm_seg_spine_run(&err, ct, &opt, &seg));
    assert_int_equal(err->code, SM_ERR_UNSUPPORTED);
    assert_null(seg);
    sm_error_destroy(err);
    err = NULL;
    /* MR is refused */
    strcpy(ct->meta.modality, "MR");
    ct->meta.is_hu = false;
    assert_false(sm_seg_spine_run(&err, ct, &opt, &seg));
    assert_int_equal(err->code, SM_ERR_USAGE);
    assert_non_null(strstr(err->message, "MR"));
    sm_error_destroy(err);
    err = NULL;
    /* imported labels on another grid */
    strcpy(ct->meta.modality, "CT");
    size_t d2[3] = {23, 17, 9};
    SmVolume *lab = sm_volume_create(NULL, d2, SM_VOXEL_U8);
    assert_false(sm_seg_from_labels(&err, ct, lab, &opt, &seg));
    assert_int_equal(err->code, SM_ERR_GEOMETRY);
    sm_error_destroy(err);
    err = NULL;
    SmVolume *labf = sm_volume_create(NULL, dims, SM_VOXEL_F32);
    assert_false(sm_seg_from_labels(&err, ct, labf, &opt, &seg));
    assert_int_equal(err->code, SM_ERR_USAGE);
    sm_error_destroy(err);
    sm_volume_destroy(labf);
    sm_volume_destroy(lab);
    sm_volume_destroy(ct);
    sm_seg_spine_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_components_connectivity),
        cmocka_unit_test(test_components_random),
        cmocka_unit_test(test_holes_fill),
        cmocka_unit_test(test_box_morphology),
        cmocka_unit_test(test_thresholds_from_histogram),
        cmocka_unit_test(test_profile_valleys),
        cmocka_unit_test(test_segment_of_planes),
        cmocka_unit_test(test_subregion_geometry),
        cmocka_unit_test(test_canal_front_refine),
        cmocka_unit_test(test_first_rib_rule),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_font),
        cmocka_unit_test(test_api_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
