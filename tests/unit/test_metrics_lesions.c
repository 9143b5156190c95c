/* Tests of lesion quality, posterolateral involvement and SINS assembly on synthetic
 * spines with planted lesions of known size, the real CT with implanted lesions, and
 * phantoms. */
#include "sm_test.h"

#include <math.h>

#include "implant.h"
#include "metrics_internal.h"
#include "sm_io.h"
#include "sm_segment.h"

/* ---------- a synthetic spine on an odd anisotropic grid ---------- */

#define SYN_NX 53
#define SYN_NY 47
#define SYN_LEVELS 5
static const double SYN_SP[3] = {0.8, 0.9, 1.7};
#define SYN_BODY_MM 22.0
#define SYN_DISC_MM 4.0
#define SYN_AX 18.0 /* body semi-axis along x (mm) */
#define SYN_AY 14.0 /* along y */
#define SYN_PL_R 4.0

typedef struct Syn {
    SmVolume *ct, *labels, *sub;
    int verse[SYN_LEVELS];
    const char *names[SYN_LEVELS];
    size_t body_n[SYN_LEVELS];
} Syn;

static double syn_cx(void) { return (SYN_NX - 1) * 0.5 * SYN_SP[0]; }
static double syn_cy(void) { return 16.0; }
/* Mid-height z (mm) of level l (0 = top = highest z). */
static double syn_cz(size_t nz, int l)
{
    double top = (double)(nz - 1) * SYN_SP[2] - 3.0;
    return top - SYN_BODY_MM * 0.5 - l * (SYN_BODY_MM + SYN_DISC_MM);
}

/* Builds the spine with cancellous HU cancel (per level if cancel_per != NULL) and
 * Gaussian noise sigma. Body = elliptic cylinder with a 1 mm cortex of 900 HU; the
 * posterolateral sub-regions are cylinders of radius SYN_PL_R behind the body. */
static void syn_build(Syn *s, double cancel, const double *cancel_per, double sigma, uint64_t seed)
{
    size_t nz = (size_t)ceil((SYN_LEVELS * (SYN_BODY_MM + SYN_DISC_MM) + 6.0) / SYN_SP[2]);
    size_t dims[3] = {SYN_NX, SYN_NY, nz};
    s->ct = sm_volume_create(NULL, dims, SM_VOXEL_I16);
    s->labels = sm_volume_create(NULL, dims, SM_VOXEL_U8);
    s->sub = sm_volume_create(NULL, dims, SM_VOXEL_U8);
    assert_non_null(s->ct);
    double dir[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, org[3] = {-10, 20, 300};
    sm_volume_set_geometry(s->ct, dir, SYN_SP, org);
    sm_volume_copy_geometry(s->labels, s->ct);
    sm_volume_copy_geometry(s->sub, s->ct);
    static const char *nm[SYN_LEVELS] = {"L1", "L2", "L3", "L4", "L5"};
    for (int l = 0; l < SYN_LEVELS; l++) {
        s->verse[l] = 20 + l;
        s->names[l] = nm[l];
        s->body_n[l] = 0;
    }
    int16_t *ct = s->ct->data;
    uint8_t *lab = s->labels->data, *sub = s->sub->data;
    uint64_t st = seed;
    for (size_t k = 0; k < nz; k++)
        for (size_t j = 0; j < SYN_NY; j++)
            for (size_t i = 0; i < SYN_NX; i++) {
                size_t x = i + SYN_NX * (j + SYN_NY * k);
                double px = i * SYN_SP[0] - syn_cx(), py = j * SYN_SP[1] - syn_cy(), pz = k * SYN_SP[2];
                double hu = 30.0; /* soft tissue */
                for (int l = 0; l < SYN_LEVELS; l++) {
                    double dz = pz - syn_cz(nz, l);
                    if (fabs(dz) > SYN_BODY_MM * 0.5)
                        continue;
                    double c = cancel_per ? cancel_per[l] : cancel;
                    double rr = hypot(px / SYN_AX, py / SYN_AY);
                    if (rr <= 1.0) {
                        lab[x] = (uint8_t)s->verse[l];
                        sub[x] = 1;
                        s->body_n[l]++;
                        double wall = (1.0 - rr) * SYN_AY;
                        hu = (wall < 1.0 || SYN_BODY_MM * 0.5 - fabs(dz) < 1.0) ? 900.0 : c;
                    }
                    for (int side = 0; side < 2; side++) {
                        /* patient left = +x = sub-region 2 */
                        double cxp = side == 0 ? 8.0 : -8.0;
                        double d = hypot(px - cxp, py - (SYN_AY + 3.5));
                        if (d <= SYN_PL_R && fabs(dz) <= 5.0) {
                            lab[x] = (uint8_t)s->verse[l];
                            sub[x] = (uint8_t)(2 + side);
                            hu = d > SYN_PL_R - 1.0 ? 900.0 : c;
                        }
                    }
                }
                hu += sigma * sm_test_rand_normal(&st);
                ct[x] = (int16_t)lround(hu);
            }
}

static void syn_free(Syn *s)
{
    sm_volume_destroy(s->ct);
    sm_volume_destroy(s->labels);
    sm_volume_destroy(s->sub);
}

/* Plants a sphere of HU value (sharp) in level l's body, or with side != 0 only its part on
 * one side of the plane x = ox (side < 0: x < ox); returns the voxel count and the
 * tolerance (voxels of the body within half the largest spacing of the sphere boundary:
 * one voxel shell; for a part, plus its layer of voxels next to the plane). */
static size_t syn_sphere_part(Syn *s, int l, double ox, double oy, double r, int side,
                              double hu, bool write, size_t *tol)
{
    size_t nz = s->ct->dims[2], n = 0, shell = 0;
    double h = 0.5 * SYN_SP[2];
    int16_t *ct = s->ct->data;
    const uint8_t *lab = s->labels->data, *sub = s->sub->data;
    for (size_t k = 0; k < nz; k++)
        for (size_t j = 0; j < SYN_NY; j++)
            for (size_t i = 0; i < SYN_NX; i++) {
                size_t x = i + SYN_NX * (j + SYN_NY * k);
                if (lab[x] != s->verse[l] || sub[x] != 1)
                    continue;
                double px = i * SYN_SP[0] - syn_cx() - ox, py = j * SYN_SP[1] - syn_cy() - oy;
                double pz = k * SYN_SP[2] - syn_cz(nz, l);
                if (side != 0 && (side < 0) != (px < 0))
                    continue;
                double d = sqrt(px * px + py * py + pz * pz);
                if (d <= r) {
                    n++;
                    if (write)
                        ct[x] = (int16_t)lround(hu);
                    if (side != 0 && fabs(px) <= SYN_SP[0])
                        shell++;
                }
                if (fabs(d - r) <= h)
                    shell++;
            }
    if (tol)
        *tol = shell;
    return n;
}

static size_t syn_sphere(Syn *s, int l, double ox, double oy, double r, double hu, bool write,
                         size_t *tol)
{
    return syn_sphere_part(s, l, ox, oy, r, 0, hu, write, tol);
}

static SmMetricsInput syn_input(const Syn *s, int threads)
{
    SmMetricsInput in = {s->ct, s->labels, s->sub, SYN_LEVELS, s->verse, s->names, threads, NULL};
    return in;
}

/* Runs lesions + posterolateral (+ SINS when available) on fresh results. */
static SmSeriesMetrics *run_lesions(const SmMetricsInput *in)
{
    SmSeriesMetrics *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->n = in->n_levels;
    m->v = calloc(m->n, sizeof *m->v);
    m->worst_index = -1;
    for (size_t l = 0; l < m->n; l++) {
        SmVertebraMetrics *v = &m->v[l];
        v->verse_label = in->verse_labels[l];
        snprintf(v->level, sizeof v->level, "%s", in->level_names[l]);
        v->height_loss_pct = NAN;
        v->genant_grade = -1;
        v->posterolateral_fraction[0] = v->posterolateral_fraction[1] = NAN;
        v->translation_mm = NAN;
    }
    SmError *err = NULL;
    bool ok = sm_metric_lesions(&err, in, m) && sm_metric_posterolateral(&err, in, m);
    if (!ok)
        fail_msg("lesions failed: %s", err ? err->message : "?");
    return m;
}

static void free_metrics(SmSeriesMetrics *m)
{
    for (size_t l = 0; l < m->n; l++)
        sm_strlist_clear(&m->v[l].notes);
    sm_strlist_clear(&m->reference_method);
    sm_strlist_clear(&m->lesion_levels);
    sm_strlist_clear(&m->notes);
    free(m->v);
    free(m);
}

static void test_synthetic_planted(void **state)
{
    (void)state;
    Syn s;
    syn_build(&s, 220.0, NULL, 15.0, 7);
    size_t tol_l, tol_b, tol_m1, tol_m2;
    /* L1: a giant bone island (1200 HU, 1.5 cm3: r 7.1 mm) -> not blastic by its density;
     * L2: lytic sphere r 7 mm at the centre; L3: blastic 600 HU r 6.5 mm off-centre;
     * L4: a 1200 HU bone island of 0.5 cm3 (r 4.92 mm); L5: mixed (lytic + blastic) */
    syn_sphere(&s, 0, 1.0, 0.0, 7.1, 1200.0, true, NULL);
    size_t n_l = syn_sphere(&s, 1, 0.0, 0.0, 7.0, 40.0, true, &tol_l);
    size_t n_b = syn_sphere(&s, 2, 3.0, -1.0, 6.5, 600.0, true, &tol_b);
    syn_sphere(&s, 3, -2.0, 0.0, 4.92, 1200.0, true, NULL);
    size_t n_m1 = syn_sphere(&s, 4, -7.0, 0.0, 5.5, 40.0, true, &tol_m1);
    size_t n_m2 = syn_sphere(&s, 4, 7.0, 0.0, 5.5, 650.0, true, &tol_m2);
    SmMetricsInput in = syn_input(&s, 2);
    SmSeriesMetrics *m = run_lesions(&in);
    for (size_t l = 0; l < m->n; l++)
        printf("  %s class %d lytic %.3f blastic %.3f involved %.3f median %.0f\n", m->v[l].level,
               m->v[l].lesion_class, m->v[l].lytic_fraction, m->v[l].blastic_fraction,
               m->v[l].body_involvement_fraction, m->v[l].cancellous_median_hu);
    printf("  reference %.1f HU spread %.1f\n", m->reference_cancellous_hu, m->reference_spread_hu);
    printf("  truth lytic L2 %.3f+-%.3f blastic L3 %.3f+-%.3f mixed L5 %.3f/%.3f\n", n_l / (double)s.body_n[1],
           tol_l / (double)s.body_n[1], n_b / (double)s.body_n[2], tol_b / (double)s.body_n[2],
           n_m1 / (double)s.body_n[4], n_m2 / (double)s.body_n[4]);
    assert_true(fabs(m->reference_cancellous_hu - 220.0) <= 5.0);
    assert_int_equal(m->v[0].lesion_class, SM_LESION_NONE); /* giant bone island */
    assert_int_equal(m->v[1].lesion_class, SM_LESION_LYTIC);
    assert_int_equal(m->v[2].lesion_class, SM_LESION_BLASTIC);
    assert_int_equal(m->v[3].lesion_class, SM_LESION_NONE); /* bone island */
    assert_int_equal(m->v[4].lesion_class, SM_LESION_MIXED);
    double bn1 = (double)s.body_n[1], bn2 = (double)s.body_n[2], bn4 = (double)s.body_n[4];
    assert_true(fabs(m->v[1].lytic_fraction - n_l / bn1) <= tol_l / bn1);
    assert_true(fabs(m->v[2].blastic_fraction - n_b / bn2) <= tol_b / bn2);
    assert_true(fabs(m->v[4].lytic_fraction - n_m1 / bn4) <= tol_m1 / bn4);
    assert_true(fabs(m->v[4].blastic_fraction - n_m2 / bn4) <= tol_m2 / bn4);
    assert_true(m->v[1].blastic_fraction == 0.0 && m->v[2].lytic_fraction == 0.0);
    assert_int_equal(m->n_vertebral_body_metastases, 3);
    bool noted = false;
    for (size_t q = 0; q < m->v[0].notes.n; q++)
        noted = noted || strstr(m->v[0].notes.items[q], "bone island") != NULL;
    assert_true(noted);
    for (size_t l = 0; l < m->n; l++)
        assert_int_equal(m->v[l].posterolateral, SM_SIDE_NONE);
    free_metrics(m);
    syn_free(&s);
}

/* A mixed lesion whose lytic and blastic halves touch (no normal bone between): both
 * fractions within one voxel shell (sphere boundary and the plane between the halves) of
 * their exact voxel counts. Smoothing blends the two tissues (~600 HU apart) at the plane,
 * which the mixed transition must not turn into a gap or a shifted boundary (with sharp
 * synthetic edges both the smoothed- and the raw-HU transition pass; the generated
 * phantoms' soft edges are where they differ, see docs/metrics.md). */
static void test_synthetic_mixed_touching(void **state)
{
    (void)state;
    Syn s;
    syn_build(&s, 220.0, NULL, 15.0, 23);
    size_t tol_l, tol_b;
    /* the plane x = 0.4 mm lies half-way between voxel centres (0.8 mm spacing) */
    size_t n_l = syn_sphere_part(&s, 2, 0.4, 0.0, 8.0, -1, 40.0, true, &tol_l);
    size_t n_b = syn_sphere_part(&s, 2, 0.4, 0.0, 8.0, 1, 650.0, true, &tol_b);
    SmMetricsInput in = syn_input(&s, 2);
    SmSeriesMetrics *m = run_lesions(&in);
    double bn = (double)s.body_n[2];
    printf("  touching mixed: lytic truth %.3f+-%.3f measured %.3f; blastic truth %.3f+-%.3f measured "
           "%.3f\n", n_l / bn, tol_l / bn, m->v[2].lytic_fraction, n_b / bn, tol_b / bn,
           m->v[2].blastic_fraction);
    assert_int_equal(m->v[2].lesion_class, SM_LESION_MIXED);
    assert_true(fabs(m->v[2].lytic_fraction - n_l / bn) <= tol_l / bn);
    assert_true(fabs(m->v[2].blastic_fraction - n_b / bn) <= tol_b / bn);
    for (int l = 0; l < SYN_LEVELS; l++)
        if (l != 2)
            assert_int_equal(m->v[l].lesion_class, SM_LESION_NONE);
    free_metrics(m);
    syn_free(&s);
}

/* A lesion breaching the cortex: the fraction counts the shell out to the boundary. */
static void test_synthetic_breach(void **state)
{
    (void)state;
    Syn s;
    syn_build(&s, 220.0, NULL, 15.0, 11);
    size_t tol;
    /* sphere centred 8 mm anterior of the centre with r 7 mm: cut by the anterior wall */
    size_t n = syn_sphere(&s, 2, 0.0, -11.0, 8.0, 40.0, true, &tol);
    SmMetricsInput in = syn_input(&s, 1);
    SmSeriesMetrics *m = run_lesions(&in);
    double bn = (double)s.body_n[2];
    printf("  breach: truth %.3f measured %.3f tol %.3f\n", n / bn, m->v[2].lytic_fraction, tol / bn);
    assert_int_equal(m->v[2].lesion_class, SM_LESION_LYTIC);
    assert_true(fabs(m->v[2].lytic_fraction - n / bn) <= tol / bn);
    free_metrics(m);
    syn_free(&s);
}

/* A level whose extent the segmentation doubts (a disc plane missed or misplaced) gets no
 * heights, grade or alignment, and is no reference; its neighbours are still measured
 * (synthetic bodies of known height SYN_BODY_MM). */
static void test_extent_doubtful(void **state)
{
    (void)state;
    Syn s;
    syn_build(&s, 220.0, NULL, 15.0, 17);
    for (int pass = 0; pass < 2; pass++) {
        bool doubtful[SYN_LEVELS] = {false};
        doubtful[2] = pass == 1;
        SmMetricsInput in = syn_input(&s, 2);
        in.extent_doubtful = doubtful;
        SmSeriesMetrics *m = NULL;
        SmError *e = NULL;
        assert_true(sm_metrics_run(&e, &in, &m));
        for (int l = 1; l <= 3; l++) {
            const SmVertebraMetrics *v = &m->v[l];
            bool notes = false;
            for (size_t q = 0; q < v->notes.n; q++)
                notes = notes || strstr(v->notes.items[q], "extent doubtful") != NULL;
            if (pass == 1 && l == 2) {
                assert_true(isnan(v->height_anterior_mm) && isnan(v->height_posterior_mm));
                assert_int_equal(v->genant_grade, -1);
                assert_true(isnan(v->translation_mm));
                assert_true(notes);
            } else {
                assert_true(fabs(v->height_middle_mm - SYN_BODY_MM) <= 1.5);
                assert_int_equal(v->genant_grade, 0);
                assert_false(notes);
            }
        }
        sm_metrics_destroy(m);
    }
    syn_free(&s);
}

static void test_synthetic_noise_and_osteoporosis(void **state)
{
    (void)state;
    for (int c = 0; c < 3; c++) {
        Syn s;
        double per[SYN_LEVELS] = {230, 225, 215, 210, 205};
        if (c == 0)
            syn_build(&s, 220.0, NULL, 30.0, 3);      /* noise only */
        else if (c == 1)
            syn_build(&s, 70.0, NULL, 20.0, 5);       /* uniformly osteoporotic */
        else
            syn_build(&s, 0.0, per, 30.0, 9);         /* a gentle trend with noise */
        SmMetricsInput in = syn_input(&s, 2);
        SmSeriesMetrics *m = run_lesions(&in);
        for (size_t l = 0; l < m->n; l++) {
            assert_int_equal(m->v[l].lesion_class, SM_LESION_NONE);
            assert_true(m->v[l].body_involvement_fraction == 0.0);
            assert_int_equal(m->v[l].posterolateral, SM_SIDE_NONE);
        }
        double want = c == 0 ? 220.0 : c == 1 ? 70.0 : 217.0;
        printf("  case %d reference %.1f (want %.0f) spread %.1f\n", c, m->reference_cancellous_hu,
               want, m->reference_spread_hu);
        assert_true(fabs(m->reference_cancellous_hu - want) <= 8.0);
        assert_int_equal(m->n_vertebral_body_metastases, 0);
        free_metrics(m);
        syn_free(&s);
    }
}

/* Plants an ellipsoid (semi-axes a[3] mm, centred in level l's body) of HU value into the
 * body; returns its voxel count and in *tol the body voxels within half the largest
 * spacing of its boundary (distance to the boundary to first order: |q - 1| / |grad q|,
 * q the normalised radius). */
static size_t syn_ellipsoid(Syn *s, int l, const double a[3], double hu, size_t *tol)
{
    size_t nz = s->ct->dims[2], n = 0, shell = 0;
    double h = 0.5 * SYN_SP[2];
    int16_t *ct = s->ct->data;
    const uint8_t *lab = s->labels->data, *sub = s->sub->data;
    for (size_t k = 0; k < nz; k++)
        for (size_t j = 0; j < SYN_NY; j++)
            for (size_t i = 0; i < SYN_NX; i++) {
                size_t x = i + SYN_NX * (j + SYN_NY * k);
                if (lab[x] != s->verse[l] || sub[x] != 1)
                    continue;
                double p[3] = {i * SYN_SP[0] - syn_cx(), j * SYN_SP[1] - syn_cy(), k * SYN_SP[2] - syn_cz(nz, l)};
                double q2 = 0.0, g2 = 0.0;
                for (int c = 0; c < 3; c++) {
                    q2 += p[c] * p[c] / (a[c] * a[c]);
                    g2 += p[c] * p[c] / (a[c] * a[c] * a[c] * a[c]);
                }
                double q = sqrt(q2);
                if (q <= 1.0) {
                    n++;
                    ct[x] = (int16_t)lround(hu);
                }
                /* |grad q| = sqrt(g2) / q */
                if (q > 0.0 && fabs(q - 1.0) * q / sqrt(g2) <= h)
                    shell++;
            }
    *tol = shell;
    return n;
}

/* Diffuse disease: three of the five levels (a majority) each carry a planted ellipsoid
 * (semi-axes 15 x 10 x 9.5 mm, inside the cancellous bone) covering more than half of the
 * level's eroded core, so those levels' whole-core medians read as the lesion: lytic
 * (40 HU), then faint blastic (420 HU, below the 450 HU cap of a level's cancellous
 * median). The reference must still be the patient's normal bone (220 HU), all three
 * levels of the right class within 10 points of the planted volume, and the two clean
 * levels without lesion. */
static void test_synthetic_diffuse_disease(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        Syn s;
        syn_build(&s, 220.0, NULL, 20.0, 11 + (uint64_t)kind);
        static const int hit[3] = {0, 2, 3};
        static const double ax[3] = {15.0, 10.0, 9.5};
        double hu = kind == 0 ? 40.0 : 420.0;
        size_t n_pl[3], tol_pl[3];
        for (int q = 0; q < 3; q++)
            n_pl[q] = syn_ellipsoid(&s, hit[q], ax, hu, &tol_pl[q]);
        SmMetricsInput in = syn_input(&s, 2);
        SmSeriesMetrics *m = run_lesions(&in);
        printf("  %s: reference %.1f HU spread %.1f\n", kind == 0 ? "lytic" : "blastic",
               m->reference_cancellous_hu, m->reference_spread_hu);
        for (size_t q = 0; q < m->reference_method.n; q++)
            printf("    %s\n", m->reference_method.items[q]);
        for (size_t l = 0; l < m->n; l++)
            printf("  %s class %d lytic %.3f blastic %.3f involved %.3f median %.0f\n", m->v[l].level,
                   m->v[l].lesion_class, m->v[l].lytic_fraction, m->v[l].blastic_fraction,
                   m->v[l].body_involvement_fraction, m->v[l].cancellous_median_hu);
        /* the premise: the lesion levels' whole-core medians read as the lesion */
        for (int q = 0; q < 3; q++)
            assert_true(fabs(m->v[hit[q]].cancellous_median_hu - hu) < 60.0);
        assert_true(fabs(m->reference_cancellous_hu - 220.0) <= 8.0);
        for (int q = 0; q < 3; q++) {
            const SmVertebraMetrics *v = &m->v[hit[q]];
            double bn = (double)s.body_n[hit[q]];
            double got = kind == 0 ? v->lytic_fraction : v->blastic_fraction;
            printf("  %s truth %.3f +- %.3f\n", v->level, n_pl[q] / bn, tol_pl[q] / bn);
            assert_int_equal(v->lesion_class, kind == 0 ? SM_LESION_LYTIC : SM_LESION_BLASTIC);
            /* the tolerance (the one-voxel-shell bound of this large ellipsoid on
             * 1.7 mm slices, 16 points, is looser) */
            assert_true(fabs(got - n_pl[q] / bn) <= fmin(tol_pl[q] / bn, 0.10));
        }
        assert_int_equal(m->v[1].lesion_class, SM_LESION_NONE);
        assert_int_equal(m->v[4].lesion_class, SM_LESION_NONE);
        assert_int_equal(m->n_vertebral_body_metastases, 3);
        free_metrics(m);
        syn_free(&s);
    }
}

/* Posterolateral: lytic left pedicle at L2; at L4 a blastic body lesion extending into
 * both pedicles (blastic pedicles are recognised by the body's own blastic tissue). */
static void test_synthetic_posterolateral(void **state)
{
    (void)state;
    Syn s;
    syn_build(&s, 220.0, NULL, 15.0, 13);
    int16_t *ct = s.ct->data;
    const uint8_t *lab = s.labels->data, *sub = s.sub->data;
    size_t n = sm_volume_n_voxels(s.ct);
    for (size_t x = 0; x < n; x++) {
        if (lab[x] == 21 && sub[x] == SM_MET_SUB_PL_LEFT)
            ct[x] = 45;
        if (lab[x] == 23 && (sub[x] == SM_MET_SUB_PL_LEFT || sub[x] == SM_MET_SUB_PL_RIGHT))
            ct[x] = 650;
    }
    syn_sphere(&s, 3, 0.0, 6.0, 6.5, 650.0, true, NULL);
    SmMetricsInput in = syn_input(&s, 2);
    SmSeriesMetrics *m = run_lesions(&in);
    SmSide want[SYN_LEVELS] = {SM_SIDE_NONE, SM_SIDE_LEFT, SM_SIDE_NONE, SM_SIDE_BILATERAL, SM_SIDE_NONE};
    for (size_t l = 0; l < m->n; l++) {
        printf("  %s posterolateral %d (L %.2f R %.2f)\n", m->v[l].level, m->v[l].posterolateral,
               m->v[l].posterolateral_fraction[0], m->v[l].posterolateral_fraction[1]);
        assert_int_equal(m->v[l].posterolateral, want[l]);
    }
    /* L2's body is clean: its class comes from the lytic pedicle */
    assert_int_equal(m->v[1].lesion_class, SM_LESION_LYTIC);
    assert_true(m->v[1].body_involvement_fraction == 0.0);
    assert_int_equal(m->v[3].lesion_class, SM_LESION_BLASTIC);
    assert_int_equal(m->n_vertebral_body_metastases, 2);
    free_metrics(m);
    syn_free(&s);
}

static void assert_same_metrics(const SmSeriesMetrics *a, const SmSeriesMetrics *b)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(&a->reference_cancellous_hu, &b->reference_cancellous_hu, sizeof(double));
    assert_memory_equal(&a->reference_spread_hu, &b->reference_spread_hu, sizeof(double));
    for (size_t l = 0; l < a->n; l++) {
        const SmVertebraMetrics *x = &a->v[l], *y = &b->v[l];
        assert_int_equal(x->lesion_class, y->lesion_class);
        assert_int_equal(x->posterolateral, y->posterolateral);
        assert_memory_equal(&x->lytic_fraction, &y->lytic_fraction, sizeof(double));
        assert_memory_equal(&x->blastic_fraction, &y->blastic_fraction, sizeof(double));
        assert_memory_equal(&x->body_involvement_fraction, &y->body_involvement_fraction, sizeof(double));
        assert_memory_equal(&x->cancellous_median_hu, &y->cancellous_median_hu, sizeof(double));
        assert_memory_equal(x->posterolateral_fraction, y->posterolateral_fraction, 2 * sizeof(double));
    }
}

static void test_threads_identical(void **state)
{
    (void)state;
    Syn s;
    syn_build(&s, 220.0, NULL, 20.0, 17);
    syn_sphere(&s, 1, 2.0, 1.0, 6.0, 50.0, true, NULL);
    syn_sphere(&s, 3, -3.0, 0.0, 6.0, 620.0, true, NULL);
    SmMetricsInput in1 = syn_input(&s, 1), in2 = syn_input(&s, 2);
    SmSeriesMetrics *a = run_lesions(&in1), *b = run_lesions(&in2);
    assert_same_metrics(a, b);
    free_metrics(a);
    free_metrics(b);
    syn_free(&s);
}

/* ---------- the real CT ---------- */

typedef struct Real {
    SmVolume *ct, *labels, *sub;
    int verse[6];
    const char *names[6];
    size_t n;
} Real;

static SmVolume *load_on(const char *path, const SmVolume *ref)
{
    SmVolume *v = NULL;
    SmError *err = NULL;
    if (!sm_io_nifti_load(&err, path, &v)) {
        fail_msg("load %s: %s", path, err ? err->message : "?");
        return NULL;
    }
    if (ref && !sm_volume_same_grid(ref, v, 0.05)) {
        SmGridMap map;
        assert_true(sm_volume_grid_match(ref, v, 0.05, &map));
        SmVolume *r = sm_volume_reindex(&err, ref, v, &map);
        assert_non_null(r);
        sm_volume_destroy(v);
        v = r;
    }
    return v;
}

static bool real_load(Real *r)
{
    char ct[1024], tot[1024], body[1024];
    if (!sm_test_shared("ct-totalseg-example/ct.nii.gz", ct, sizeof ct) ||
        !sm_test_shared("ct-totalseg-example/labels/total.nii.gz", tot, sizeof tot) ||
        !sm_test_shared("ct-totalseg-example/labels/vertebrae_body.nii.gz", body, sizeof body))
        return false;
    SmVolume *c = load_on(ct, NULL);
    SmError *err = NULL;
    r->ct = c->type == SM_VOXEL_I16 ? c : sm_volume_to_i16(&err, c);
    if (r->ct != c)
        sm_volume_destroy(c);
    SmVolume *t = load_on(tot, r->ct), *b = load_on(body, r->ct);
    r->labels = sm_volume_create(NULL, r->ct->dims, SM_VOXEL_U8);
    r->sub = sm_volume_create(NULL, r->ct->dims, SM_VOXEL_U8);
    sm_volume_copy_geometry(r->labels, r->ct);
    sm_volume_copy_geometry(r->sub, r->ct);
    /* TotalSegmentator 32 T12, 31 L1 ... 27 L5 -> VerSe 19 T12, 20 L1 ... 24 L5 */
    static const char *nm[6] = {"T12", "L1", "L2", "L3", "L4", "L5"};
    r->n = 6;
    for (int q = 0; q < 6; q++) {
        r->verse[q] = 19 + q;
        r->names[q] = nm[q];
    }
    size_t n = sm_volume_n_voxels(r->ct);
    uint8_t *lab = r->labels->data, *sub = r->sub->data;
    for (size_t x = 0; x < n; x++) {
        double tv = sm_volume_get(t, x, 0, 0), bv = sm_volume_get(b, x, 0, 0);
        int id = (int)lround(tv);
        if (id >= 27 && id <= 32) {
            lab[x] = (uint8_t)(19 + (32 - id));
            if (lround(bv) == 1)
                sub[x] = SM_MET_SUB_BODY;
        }
    }
    sm_volume_destroy(t);
    sm_volume_destroy(b);
    return true;
}

static void real_free(Real *r)
{
    sm_volume_destroy(r->ct);
    sm_volume_destroy(r->labels);
    sm_volume_destroy(r->sub);
}

static void test_real_no_lesion(void **state)
{
    (void)state;
    Real r;
    if (!real_load(&r)) {
        skip();
        return;
    }
    SmMetricsInput in = {r.ct, r.labels, r.sub, r.n, r.verse, r.names, 2, NULL};
    SmSeriesMetrics *m = run_lesions(&in);
    printf("  real CT reference %.1f HU spread %.1f\n", m->reference_cancellous_hu, m->reference_spread_hu);
    for (size_t q = 0; q < m->reference_method.n; q++)
        printf("    %s\n", m->reference_method.items[q]);
    for (size_t l = 0; l < m->n; l++) {
        printf("  %s median %.0f class %d lytic %.4f blastic %.4f\n", m->v[l].level,
               m->v[l].cancellous_median_hu, m->v[l].lesion_class, m->v[l].lytic_fraction,
               m->v[l].blastic_fraction);
        assert_int_equal(m->v[l].lesion_class, SM_LESION_NONE);
    }
    assert_true(m->reference_cancellous_hu > 80.0 && m->reference_cancellous_hu < 350.0);
    SmMetricsInput in1 = in;
    in1.threads = 1;
    SmSeriesMetrics *m1 = run_lesions(&in1);
    assert_same_metrics(m, m1);
    free_metrics(m1);
    free_metrics(m);
    real_free(&r);
}

/* Random lytic and blastic implants (seeded) into real bodies: found, classed right,
 * involvement within 10 points of the implanted fraction. */
static void test_real_implants(void **state)
{
    (void)state;
    Real r;
    if (!real_load(&r)) {
        skip();
        return;
    }
    SmVolume *orig = sm_volume_to_i16(NULL, r.ct);
    uint64_t rng = 20261126;
    int trials = 24, right = 0, within = 0;
    int conf[3][4] = {{0}}; /* truth none/lytic/blastic x called none/lytic/blastic/mixed */
    size_t nvox = sm_volume_n_voxels(r.ct);
    for (int t = 0; t < trials; t++) {
        memcpy(r.ct->data, orig->data, nvox * sizeof(int16_t));
        /* one level (L1..L4 mostly, never the only normal ones) gets one implant */
        int l = 1 + (int)(sm_test_rand_uniform(&rng) * 5.0);
        bool lytic = (t % 2) == 0;
        double frac = 0.15 + 0.45 * sm_test_rand_uniform(&rng);
        /* centre: a random body voxel of that level */
        const uint8_t *lab = r.labels->data, *sub = r.sub->data;
        size_t cnt = 0;
        for (size_t x = 0; x < nvox; x++)
            cnt += lab[x] == r.verse[l] && sub[x] == 1;
        size_t pick = (size_t)(sm_test_rand_uniform(&rng) * (double)cnt), seen = 0, at = 0;
        for (size_t x = 0; x < nvox; x++)
            if (lab[x] == r.verse[l] && sub[x] == 1 && seen++ == pick) {
                at = x;
                break;
            }
        /* a combined mask value: body of this level */
        SmVolume *mask = sm_volume_create(NULL, r.ct->dims, SM_VOXEL_U8);
        sm_volume_copy_geometry(mask, r.ct);
        uint8_t *mk = mask->data;
        for (size_t x = 0; x < nvox; x++)
            mk[x] = lab[x] == r.verse[l] && sub[x] == 1;
        SmImplant imp = {{(double)(at % r.ct->dims[0]), (double)((at / r.ct->dims[0]) % r.ct->dims[1]),
                          (double)(at / (r.ct->dims[0] * r.ct->dims[1]))},
                         {8.0 + 6.0 * sm_test_rand_uniform(&rng), 8.0 + 6.0 * sm_test_rand_uniform(&rng),
                          8.0 + 6.0 * sm_test_rand_uniform(&rng)},
                         lytic ? 45.0 : 650.0, lytic ? 20.0 : 60.0, 2.0, 0.15, rng};
        double achieved = sm_test_implant_fit(r.ct, mask, 1, &imp, frac);
        sm_test_implant(r.ct, mask, 1, &imp, false);
        sm_volume_destroy(mask);
        SmMetricsInput in = {r.ct, r.labels, r.sub, r.n, r.verse, r.names, 2, NULL};
        SmSeriesMetrics *m = run_lesions(&in);
        SmLesionClass want = lytic ? SM_LESION_LYTIC : SM_LESION_BLASTIC;
        bool ok_class = m->v[l].lesion_class == want;
        bool others = true;
        for (size_t q = 0; q < m->n; q++)
            if ((int)q != l && m->v[q].lesion_class != SM_LESION_NONE)
                others = false;
        double inv = m->v[l].body_involvement_fraction;
        bool ok_inv = fabs(inv - achieved) <= 0.10;
        conf[lytic ? 1 : 2][m->v[l].lesion_class]++;
        for (size_t q = 0; q < m->n; q++)
            if ((int)q != l)
                conf[0][m->v[q].lesion_class]++;
        printf("  trial %2d %s %-7s truth %.3f measured %.3f class %d %s%s\n", t, r.names[l],
               lytic ? "lytic" : "blastic", achieved, inv, m->v[l].lesion_class,
               ok_class ? "" : "WRONG-CLASS ", others ? "" : "FALSE-ELSEWHERE");
        right += ok_class && others;
        within += ok_inv;
        free_metrics(m);
    }
    printf("  confusion (rows truth none/lytic/blastic; cols none/lytic/blastic/mixed)\n");
    for (int a = 0; a < 3; a++)
        printf("    %4d %4d %4d %4d\n", conf[a][0], conf[a][1], conf[a][2], conf[a][3]);
    printf("  class right %d/%d, involvement within 10 points %d/%d\n", right, trials, within, trials);
    assert_int_equal(right, trials);
    assert_int_equal(within, trials);
    sm_volume_destroy(orig);
    real_free(&r);
}

/* The whole driver on the real CT with sub-regions from sm_seg_from_labels: no lesion,
 * no posterolateral call; then a lytic left pedicle of L3 (implanted) is found on that
 * side only. */
static void test_real_driver_posterolateral(void **state)
{
    (void)state;
    Real r;
    if (!real_load(&r)) {
        skip();
        return;
    }
    char tot[1024];
    assert_true(sm_test_shared("ct-totalseg-example/labels/total.nii.gz", tot, sizeof tot));
    SmVolume *t = load_on(tot, r.ct);
    SmVolume *verse = sm_volume_create(NULL, r.ct->dims, SM_VOXEL_U8);
    sm_volume_copy_geometry(verse, r.ct);
    size_t nv = sm_volume_n_voxels(r.ct);
    uint8_t *vd = verse->data;
    for (size_t x = 0; x < nv; x++) {
        long id = lround(sm_volume_get(t, x, 0, 0));
        if (id >= 27 && id <= 32)
            vd[x] = (uint8_t)(19 + (32 - id));
        else if (id == 26)
            vd[x] = 26;
    }
    sm_volume_destroy(t);
    SmSegOptions opt = {2, false, NULL, 0.0};
    SmSpineSeg *seg = NULL;
    SmError *err = NULL;
    if (!sm_seg_from_labels(&err, r.ct, verse, &opt, &seg))
        fail_msg("sm_seg_from_labels: %s", err ? err->message : "?");
    SmMetricsInput in = {r.ct, seg->labels, seg->subregions, r.n, r.verse, r.names, 2, NULL};
    SmSeriesMetrics *m = NULL;
    if (!sm_metrics_run(&err, &in, &m))
        fail_msg("metrics: %s", err ? err->message : "?");
    printf("  driver on real CT: reference %.1f HU\n", m->reference_cancellous_hu);
    for (size_t l = 0; l < m->n; l++) {
        printf("  %s class %d inv %.3f PL %d (%.2f/%.2f) SINS %d %d %d %d %d\n", m->v[l].level,
               m->v[l].lesion_class, m->v[l].body_involvement_fraction, m->v[l].posterolateral,
               m->v[l].posterolateral_fraction[0], m->v[l].posterolateral_fraction[1], m->v[l].sins_location,
               m->v[l].sins_lesion_quality, m->v[l].sins_alignment, m->v[l].sins_collapse,
               m->v[l].sins_posterolateral);
        printf("    (heights.c/alignment.c: Ha %.1f Hm %.1f Hp %.1f expected %.1f loss %.1f %%, "
               "translation %.1f mm kyphosis %.1f scoliosis %.1f)\n",
               m->v[l].height_anterior_mm, m->v[l].height_middle_mm, m->v[l].height_posterior_mm,
               m->v[l].expected_height_mm, m->v[l].height_loss_pct, m->v[l].translation_mm,
               m->v[l].kyphosis_deg, m->v[l].scoliosis_deg);
        assert_int_equal(m->v[l].lesion_class, SM_LESION_NONE);
        assert_int_equal(m->v[l].posterolateral, SM_SIDE_NONE);
        assert_int_equal(m->v[l].sins_lesion_quality, -1);
    }
    assert_int_equal(m->n_vertebral_body_metastases, 0);
    assert_int_equal(m->worst_index, -1);
    sm_metrics_destroy(m);
    /* lytic tissue replacing L3's left pedicle + facet */
    SmVolume *mask = sm_volume_create(NULL, r.ct->dims, SM_VOXEL_U8);
    sm_volume_copy_geometry(mask, r.ct);
    uint8_t *mk = mask->data;
    const uint8_t *sl = seg->labels->data, *ss = seg->subregions->data;
    double c[3] = {0, 0, 0};
    size_t n_pl = 0;
    for (size_t x = 0; x < nv; x++)
        if (sl[x] == 22 && ss[x] == SM_MET_SUB_PL_LEFT) {
            mk[x] = 1;
            c[0] += (double)(x % r.ct->dims[0]);
            c[1] += (double)((x / r.ct->dims[0]) % r.ct->dims[1]);
            c[2] += (double)(x / (r.ct->dims[0] * r.ct->dims[1]));
            n_pl++;
        }
    assert_true(n_pl > 0);
    SmImplant imp = {{c[0] / n_pl, c[1] / n_pl, c[2] / n_pl}, {40.0, 40.0, 40.0}, 45.0, 20.0, 0.0, 0.0, 99};
    sm_test_implant(r.ct, mask, 1, &imp, false);
    sm_volume_destroy(mask);
    if (!sm_metrics_run(&err, &in, &m))
        fail_msg("metrics: %s", err ? err->message : "?");
    for (size_t l = 0; l < m->n; l++) {
        printf("  implanted: %s class %d PL %d (%.2f/%.2f)\n", m->v[l].level, m->v[l].lesion_class,
               m->v[l].posterolateral, m->v[l].posterolateral_fraction[0], m->v[l].posterolateral_fraction[1]);
        assert_int_equal(m->v[l].posterolateral, l == 3 ? SM_SIDE_LEFT : SM_SIDE_NONE);
    }
    assert_int_equal(m->v[3].lesion_class, SM_LESION_LYTIC);
    assert_int_equal(m->v[3].sins_posterolateral, 1);
    sm_metrics_destroy(m);
    sm_seg_spine_destroy(seg);
    sm_volume_destroy(verse);
    real_free(&r);
}

/* ---------- driver and SINS helpers ---------- */

static void test_driver_errors(void **state)
{
    (void)state;
    Syn s;
    syn_build(&s, 220.0, NULL, 0.0, 1);
    SmMetricsInput in = syn_input(&s, 1);
    SmSeriesMetrics *m = NULL;
    SmError *err = NULL;
    SmMetricsInput bad = in;
    bad.ct = NULL;
    assert_false(sm_metrics_run(&err, &bad, &m));
    assert_null(m);
    assert_int_equal(err->code, SM_ERR_USAGE);
    assert_non_null(strstr(err->message, "required"));
    sm_error_destroy(err);
    err = NULL;
    /* a label map on another grid */
    size_t dims[3] = {SYN_NX, SYN_NY, s.ct->dims[2] - 1};
    SmVolume *other = sm_volume_create(NULL, dims, SM_VOXEL_U8);
    bad = in;
    bad.labels = other;
    assert_false(sm_metrics_run(&err, &bad, &m));
    assert_int_equal(err->code, SM_ERR_USAGE);
    assert_non_null(strstr(err->message, "one grid"));
    sm_error_destroy(err);
    err = NULL;
    sm_volume_destroy(other);
    /* CT of the wrong type */
    bad = in;
    bad.ct = s.labels;
    assert_false(sm_metrics_run(&err, &bad, &m));
    assert_int_equal(err->code, SM_ERR_USAGE);
    assert_non_null(strstr(err->message, "I16 or F32"));
    sm_error_destroy(err);
    err = NULL;
    /* a level listed twice */
    int dup[SYN_LEVELS] = {20, 21, 21, 23, 24};
    bad = in;
    bad.verse_labels = dup;
    assert_false(sm_metrics_run(&err, &bad, &m));
    assert_int_equal(err->code, SM_ERR_USAGE);
    assert_non_null(strstr(err->message, "twice"));
    sm_error_destroy(err);
    /* no levels: an empty, valid result */
    bad = in;
    bad.n_levels = 0;
    err = NULL;
    assert_true(sm_metrics_run(&err, &bad, &m));
    assert_int_equal(m->n, 0);
    assert_int_equal(m->worst_index, -1);
    sm_metrics_destroy(m);
    sm_metrics_destroy(NULL);
    syn_free(&s);
}

static void test_sins_range(void **state)
{
    (void)state;
    /* pain adds 0, 1 or 3: subtotal s reaches s..s+3; stable 0-6, potentially unstable
     * 7-12, unstable 13-18 */
    struct { int sub, lo, hi; size_t n; const char *c0, *c1; } cases[] = {
        {0, 0, 3, 1, "stable", NULL},
        {3, 3, 6, 1, "stable", NULL},
        {4, 4, 7, 2, "stable", "potentially unstable"},
        {7, 7, 10, 1, "potentially unstable", NULL},
        {9, 9, 12, 1, "potentially unstable", NULL},
        {10, 10, 13, 2, "potentially unstable", "unstable"},
        {13, 13, 16, 1, "unstable", NULL},
        {15, 15, 18, 1, "unstable", NULL},
    };
    for (size_t q = 0; q < sizeof cases / sizeof cases[0]; q++) {
        int lo, hi;
        const char *cat[3];
        size_t n;
        sm_sins_range(cases[q].sub, &lo, &hi, cat, &n);
        assert_int_equal(lo, cases[q].lo);
        assert_int_equal(hi, cases[q].hi);
        assert_int_equal(n, cases[q].n);
        assert_string_equal(cat[0], cases[q].c0);
        if (cases[q].c1)
            assert_string_equal(cat[1], cases[q].c1);
    }
    int lo, hi;
    size_t n;
    sm_sins_range(16, &lo, &hi, NULL, &n);
    assert_int_equal(lo, -1);
    assert_int_equal(n, 0);
    sm_sins_range(-1, NULL, NULL, NULL, NULL);
    /* subtotal of one vertebra: a null lesion quality counts 0 */
    SmVertebraMetrics v;
    memset(&v, 0, sizeof v);
    v.sins_location = 3;
    v.sins_lesion_quality = -1;
    v.sins_alignment = 2;
    v.sins_collapse = 1;
    v.sins_posterolateral = 3;
    assert_int_equal(sm_sins_imaging_subtotal(&v), 9);
    v.sins_lesion_quality = 2;
    assert_int_equal(sm_sins_imaging_subtotal(&v), 11);
    v.sins_collapse = -1;
    assert_int_equal(sm_sins_imaging_subtotal(&v), -1);
}

/* SINS assembly from hand-set fields (the rule values come from domain.md's table). */
static void test_sins_assembly(void **state)
{
    (void)state;
    SmSeriesMetrics m;
    memset(&m, 0, sizeof m);
    SmVertebraMetrics v[4];
    memset(v, 0, sizeof v);
    m.n = 4;
    m.v = v;
    int ids[4] = {19, 20, 21, 24}; /* T12 L1 L2 L5 */
    for (int q = 0; q < 4; q++) {
        v[q].verse_label = ids[q];
        snprintf(v[q].level, sizeof v[q].level, "%s", q == 0 ? "T12" : q == 1 ? "L1" : q == 2 ? "L2" : "L5");
        v[q].translation_mm = 0.5;
        v[q].kyphosis_deg = v[q].scoliosis_deg = 0.0;
        v[q].height_loss_pct = 5.0;
        v[q].body_involvement_fraction = 0.0;
        v[q].posterolateral_fraction[0] = v[q].posterolateral_fraction[1] = 0.0;
    }
    v[3].translation_mm = v[3].kyphosis_deg = v[3].scoliosis_deg = NAN; /* last: no segment below */
    /* T12: lytic, 60 % involved, no collapse, bilateral -> 3 + 2 + 0 + 1 + 3 */
    v[0].lesion_class = SM_LESION_LYTIC;
    v[0].body_involvement_fraction = 0.6;
    v[0].posterolateral = SM_SIDE_BILATERAL;
    /* L1: blastic, 55 % collapse, subluxation with L2 below -> 3 + 0 + 4 + 3 + 0 */
    v[1].lesion_class = SM_LESION_BLASTIC;
    v[1].body_involvement_fraction = 0.3;
    v[1].height_loss_pct = 55.0;
    v[1].alignment = SM_ALIGN_SUBLUXATION;
    v[1].translation_mm = 5.0;
    /* L2: mixed, exactly 50 % collapse (scores 2), left -> 2 + 1 + 4 (segment above) + 2 + 1 */
    v[2].lesion_class = SM_LESION_MIXED;
    v[2].body_involvement_fraction = 0.2;
    v[2].height_loss_pct = 50.0;
    v[2].posterolateral = SM_SIDE_LEFT;
    /* L5: no lesion -> quality null */
    sm_metric_sins(&m);
    int want[4][5] = {{3, 2, 0, 1, 3}, {3, 0, 4, 3, 0}, {2, 1, 4, 2, 1}, {3, -1, 0, 0, 0}};
    for (int q = 0; q < 4; q++) {
        int got[5] = {v[q].sins_location, v[q].sins_lesion_quality, v[q].sins_alignment,
                      v[q].sins_collapse, v[q].sins_posterolateral};
        for (int c = 0; c < 5; c++)
            assert_int_equal(got[c], want[q][c]);
    }
    /* worst: L1 subtotal 10 vs T12 9 vs L2 10 -> L1 (tie broken by involvement 0.3 > 0.2) */
    assert_int_equal(m.worst_index, 1);
    assert_string_equal(m.worst_level, "L1");
}

#ifdef SM_TEST_PHANTOMS
#include "phantom.h"

typedef struct Tally {
    int conf[4][4];       /* truth class x called class */
    int n_body, class_right;
    int n_lesion, inv_within;
    int n_pl, pl_right, pl_conf[4][4];
    int sins_right[5], sins_n[5];
    double inv_err_max;
    double inv_err_sum[4]; /* signed involvement error (measured - truth) per truth class */
    int inv_err_n[4];
} Tally;

static void run_phantom(const SmPhantomSpec *spec, Tally *t, bool osteoporotic)
{
    SmPhantom *ph = NULL;
    SmError *err = NULL;
    if (!sm_phantom_generate(&err, spec, &ph))
        fail_msg("phantom: %s", err ? err->message : "?");
    size_t n = 0;
    int ids[SM_PHANTOM_N_LEVELS];
    const char *names[SM_PHANTOM_N_LEVELS];
    size_t map[SM_PHANTOM_N_LEVELS];
    for (size_t q = 0; q < ph->n_vertebrae; q++) {
        if (!ph->vertebrae[q].has_body || ph->vertebrae[q].verse_id == 26)
            continue;
        map[n] = q;
        ids[n] = ph->vertebrae[q].verse_id;
        names[n] = ph->vertebrae[q].name;
        n++;
    }
    SmMetricsInput in = {ph->ct, ph->labels, ph->subregions, n, ids, names, 2, NULL};
    SmSeriesMetrics *m = NULL;
    if (!sm_metrics_run(&err, &in, &m))
        fail_msg("metrics: %s", err ? err->message : "?");
    if (t->n_body == 0) {
        /* the whole driver at 1 thread gives the same lesion results bit for bit */
        SmMetricsInput in1 = in;
        in1.threads = 1;
        SmSeriesMetrics *m1 = NULL;
        assert_true(sm_metrics_run(&err, &in1, &m1));
        assert_same_metrics(m, m1);
        for (size_t l = 0; l < n; l++) {
            assert_int_equal(m->v[l].sins_collapse, m1->v[l].sins_collapse);
            assert_int_equal(m->v[l].sins_alignment, m1->v[l].sins_alignment);
        }
        sm_metrics_destroy(m1);
    }
    if (getenv("SM_TEST_PHANTOM_REF")) {
        printf("  seed %llu reference %.1f HU spread %.1f; level medians:", (unsigned long long)spec->seed,
               m->reference_cancellous_hu, m->reference_spread_hu);
        for (size_t l = 0; l < n; l++)
            printf(" %s %.0f", m->v[l].level, m->v[l].cancellous_median_hu);
        printf("\n");
        for (size_t q = 0; q < m->reference_method.n; q++)
            printf("    %s\n", m->reference_method.items[q]);
    }
    for (size_t l = 0; l < n; l++) {
        const SmPhantomVertebra *tv = &ph->vertebrae[map[l]];
        const SmVertebraMetrics *v = &m->v[l];
        t->conf[tv->lesion_class][v->lesion_class]++;
        t->n_body++;
        t->class_right += tv->lesion_class == (int)v->lesion_class;
        if (osteoporotic)
            assert_int_equal(v->lesion_class, SM_LESION_NONE);
        double err_inv = fabs(v->body_involvement_fraction - tv->body_involvement_fraction);
        if (tv->lesion_class != 0 || v->lesion_class != SM_LESION_NONE) {
            t->n_lesion++;
            t->inv_within += err_inv <= 0.10;
            if (err_inv > t->inv_err_max)
                t->inv_err_max = err_inv;
            if (tv->lesion_class > 0 && tv->lesion_class < 4) {
                t->inv_err_sum[tv->lesion_class] += v->body_involvement_fraction - tv->body_involvement_fraction;
                t->inv_err_n[tv->lesion_class]++;
            }
        }
        t->pl_conf[tv->posterolateral][v->posterolateral]++;
        if (tv->posterolateral != 0 || v->posterolateral != SM_SIDE_NONE) {
            t->n_pl++;
            t->pl_right += tv->posterolateral == (int)v->posterolateral;
        }
        int tc[5] = {tv->sins_location, tv->sins_lesion_quality, tv->sins_alignment, tv->sins_collapse,
                     tv->sins_posterolateral};
        int mc[5] = {v->sins_location, v->sins_lesion_quality, v->sins_alignment, v->sins_collapse,
                     v->sins_posterolateral};
        for (int c = 0; c < 5; c++) {
            t->sins_n[c]++;
            t->sins_right[c] += tc[c] == mc[c];
        }
        if (getenv("SM_TEST_PHANTOM_DEBUG") && err_inv > 0.10) {
            size_t nb = 0, nles = 0, nlook = 0, nlook_out = 0, nv = sm_volume_n_voxels(ph->ct);
            const uint8_t *lb = ph->labels->data, *sb = ph->subregions->data, *lm = ph->lesions->data;
            const int16_t *cv = ph->ct->data;
            for (size_t x = 0; x < nv; x++) {
                if (lb[x] != tv->verse_id || sb[x] != 1)
                    continue;
                nb++;
                nles += lm[x] != 0;
                bool look = v->blastic_mean_hu == v->blastic_mean_hu && fabs(cv[x] - v->blastic_mean_hu) <= 100;
                nlook += look;
                nlook_out += look && lm[x] == 0;
            }
            printf("    debug %s: body %zu truth-lesion %zu (%.3f) blastic-looking %zu, of which outside truth %zu\n",
                   tv->name, nb, nles, (double)nles / nb, nlook, nlook_out);
        }
        if (tv->lesion_class != (int)v->lesion_class || err_inv > 0.10 ||
            tv->posterolateral != (int)v->posterolateral)
            printf("    seed %llu %s: truth class %d inv %.2f (lyt %.2f bla %.2f isl %.3f) PL %d (%.2f/%.2f) | "
                   "got %d inv %.2f (lyt %.2f bla %.2f) PL %d (%.2f/%.2f)\n",
                   (unsigned long long)spec->seed, tv->name, tv->lesion_class, tv->body_involvement_fraction,
                   tv->lytic_fraction, tv->blastic_fraction, tv->island_fraction, tv->posterolateral,
                   tv->pl_lesion_fraction[0], tv->pl_lesion_fraction[1], v->lesion_class,
                   v->body_involvement_fraction, v->lytic_fraction, v->blastic_fraction, v->posterolateral,
                   v->posterolateral_fraction[0], v->posterolateral_fraction[1]);
    }
    sm_metrics_destroy(m);
    sm_phantom_destroy(ph);
}

static void test_phantoms(void **state)
{
    (void)state;
    Tally t;
    memset(&t, 0, sizeof t);
    int n_ph = getenv("SM_TEST_N_PHANTOMS") ? atoi(getenv("SM_TEST_N_PHANTOMS")) : 6;
    int first = getenv("SM_TEST_FIRST_PHANTOM") ? atoi(getenv("SM_TEST_FIRST_PHANTOM")) : 0;
    for (int q = first; q < first + n_ph; q++) {
        SmPhantomSpec spec;
        sm_phantom_spec_default(&spec);
        spec.seed = 1000 + (uint64_t)q;
        sm_phantom_spec_randomize(&spec, 5000 + (uint64_t)q, 0.6, 0.3, 0.2);
        run_phantom(&spec, &t, false);
    }
    /* the osteoporotic spine: uniformly low density and lesion-free */
    Tally to;
    memset(&to, 0, sizeof to);
    SmPhantomSpec spec;
    sm_phantom_spec_default(&spec);
    spec.seed = 77;
    spec.osteoporotic = true;
    run_phantom(&spec, &to, true);
    static const char *cn[4] = {"none", "lytic", "blastic", "mixed"};
    printf("  lesion class confusion (rows truth, cols measured: none lytic blastic mixed)\n");
    for (int a = 0; a < 4; a++)
        printf("    %-8s %4d %4d %4d %4d\n", cn[a], t.conf[a][0], t.conf[a][1], t.conf[a][2], t.conf[a][3]);
    static const char *sn[4] = {"none", "left", "right", "bilat"};
    printf("  posterolateral confusion (rows truth, cols measured: none left right bilateral)\n");
    for (int a = 0; a < 4; a++)
        printf("    %-8s %4d %4d %4d %4d\n", sn[a], t.pl_conf[a][0], t.pl_conf[a][1], t.pl_conf[a][2], t.pl_conf[a][3]);
    printf("  class right %d/%d; involvement within 10 points %d/%d (max error %.3f); PL right %d/%d; "
           "osteoporotic spine: %d/%d none\n",
           t.class_right, t.n_body, t.inv_within, t.n_lesion, t.inv_err_max, t.pl_right, t.n_pl,
           to.conf[0][0], to.n_body);
    printf("  mean signed involvement error (points) per truth class: lytic %+.2f (%d), blastic %+.2f (%d), "
           "mixed %+.2f (%d)\n",
           t.inv_err_n[1] ? 100.0 * t.inv_err_sum[1] / t.inv_err_n[1] : NAN, t.inv_err_n[1],
           t.inv_err_n[2] ? 100.0 * t.inv_err_sum[2] / t.inv_err_n[2] : NAN, t.inv_err_n[2],
           t.inv_err_n[3] ? 100.0 * t.inv_err_sum[3] / t.inv_err_n[3] : NAN, t.inv_err_n[3]);
    static const char *kn[5] = {"location", "lesion_quality", "alignment", "collapse", "posterolateral"};
    for (int c = 0; c < 5; c++)
        printf("  SINS %-15s right %d/%d\n", kn[c], t.sins_right[c], t.sins_n[c]);
    assert_true(t.class_right >= 0.95 * t.n_body);
    assert_true(t.inv_within >= 0.95 * t.n_lesion);
    assert_true(t.pl_right >= 0.90 * t.n_pl);
    assert_int_equal(to.conf[0][0], to.n_body);
    for (int c = 0; c < 5; c++)
        if (c != 2 && c != 3) /* alignment and collapse depend on heights/alignment (own tests) */
            assert_true(t.sins_right[c] >= 0.90 * t.sins_n[c]);
}
#endif

/* ---------- the real chest CT LIDC-IDRI-0314 through the built-in segmentation ---------- */

/* Loads the LIDC series (the one with most frames) as I16 and segments it; false when the
 * data is absent. */
static bool lidc_load(SmVolume **ct_out, SmSpineSeg **seg_out)
{
    char dir[1024];
    if (!sm_test_shared("ct-chest-lidc/dicom", dir, sizeof dir))
        return false;
    SmError *err = NULL;
    SmDicomScan *scan = NULL;
    const char *inputs[1] = {dir};
    if (!sm_io_dicom_scan(&err, inputs, 1, &scan))
        fail_msg("scan %s: %s", dir, err ? err->message : "?");
    size_t best = 0;
    for (size_t q = 1; q < scan->n_series; q++)
        if (scan->series[q].n_frames > scan->series[best].n_frames)
            best = q;
    SmDicomLoadOptions lo = {SM_TILT_RESAMPLE, 2};
    SmVolume *c = NULL;
    if (!sm_io_dicom_series_load(&err, scan, best, &lo, &c, NULL))
        fail_msg("load %s: %s", dir, err ? err->message : "?");
    sm_io_dicom_scan_destroy(scan);
    SmVolume *ct = c->type == SM_VOXEL_I16 ? c : sm_volume_to_i16(&err, c);
    assert_non_null(ct);
    if (ct != c)
        sm_volume_destroy(c);
    SmSegOptions so = {.threads = 2};
    SmSpineSeg *seg = NULL;
    if (!sm_seg_spine_run(&err, ct, &so, &seg))
        fail_msg("segmentation of %s: %s", dir, err ? err->message : "?");
    *ct_out = ct;
    *seg_out = seg;
    return true;
}

/* A lesion-free thoracic spine (C7-T12 in view; degenerative osteophytes, a narrowed
 * sclerotic disc that the segmentation may leave inside a body mask, young dense bone
 * ~260 HU cancellous; a lung nodule that is not spine): no level called through the
 * whole metrics driver. Then a blastic and a lytic implant (30 % of the body, at the body
 * centre) in each of the two largest thoracic bodies are found and classed right, so the
 * rules that reject degenerative sclerosis do not hide a real lesion in this spine. */
static void test_lidc_no_lesion(void **state)
{
    (void)state;
    SmVolume *ct = NULL;
    SmSpineSeg *seg = NULL;
    if (!lidc_load(&ct, &seg)) {
        skip();
        return;
    }
    size_t n = seg->n_vertebrae;
    int ids[32];
    const char *names[32];
    assert_true(n > 0 && n <= 32);
    for (size_t l = 0; l < n; l++) {
        ids[l] = seg->vertebrae[l].verse_label;
        names[l] = seg->vertebrae[l].level;
    }
    SmMetricsInput in = {ct, seg->labels, seg->subregions, n, ids, names, 2, NULL};
    SmSeriesMetrics *m = NULL;
    SmError *err = NULL;
    if (!sm_metrics_run(&err, &in, &m))
        fail_msg("metrics: %s", err ? err->message : "?");
    printf("  LIDC reference %.1f HU spread %.1f\n", m->reference_cancellous_hu, m->reference_spread_hu);
    for (size_t q = 0; q < m->reference_method.n; q++)
        printf("    %s\n", m->reference_method.items[q]);
    size_t n_thoracic = 0;
    for (size_t l = 0; l < m->n; l++) {
        const SmVertebraMetrics *v = &m->v[l];
        printf("  %-4s median %.0f class %d lytic %.4f blastic %.4f\n", v->level, v->cancellous_median_hu,
               v->lesion_class, v->lytic_fraction, v->blastic_fraction);
        for (size_t q = 0; q < v->notes.n; q++)
            if (strncmp(v->notes.items[q], "lesions:", 8) == 0)
                printf("       %s\n", v->notes.items[q]);
        printf("       heights %.1f/%.1f/%.1f Genant %d translation %.1f mm class %d\n",
               v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm,
               v->genant_grade, v->translation_mm, (int)v->alignment);
        if (v->level[0] == 'T') {
            n_thoracic++;
            assert_int_equal(v->lesion_class, SM_LESION_NONE);
            /* a normal spine: no collapse, no subluxation (radiologist's read) */
            assert_true(v->genant_grade <= 0);
            assert_true(v->alignment != SM_ALIGN_SUBLUXATION);
        }
    }
    /* T1-T12 are in view (C7-T12 by the radiologist's count); allow a level or two lost */
    assert_true(n_thoracic >= 10);
    assert_int_equal(m->n_vertebral_body_metastases, 0);
    /* young dense bone: cancellous ~260 HU (T9 266 HU, measured by hand on the CT) */
    assert_true(m->reference_cancellous_hu > 200.0 && m->reference_cancellous_hu < 350.0);
    sm_metrics_destroy(m);

    /* implants into the two largest thoracic bodies */
    size_t big[2] = {SIZE_MAX, SIZE_MAX};
    for (size_t l = 0; l < n; l++) {
        if (seg->vertebrae[l].level[0] != 'T')
            continue;
        size_t nb = seg->vertebrae[l].n_body_voxels;
        if (big[0] == SIZE_MAX || nb > seg->vertebrae[big[0]].n_body_voxels) {
            big[1] = big[0];
            big[0] = l;
        } else if (big[1] == SIZE_MAX || nb > seg->vertebrae[big[1]].n_body_voxels) {
            big[1] = l;
        }
    }
    assert_true(big[1] != SIZE_MAX);
    size_t nvox = sm_volume_n_voxels(ct);
    SmVolume *orig = sm_volume_to_i16(NULL, ct);
    SmVolume *mask = sm_volume_create(NULL, ct->dims, SM_VOXEL_U8);
    assert_non_null(orig);
    assert_non_null(mask);
    sm_volume_copy_geometry(mask, ct);
    const uint8_t *lab = seg->labels->data, *sub = seg->subregions->data;
    uint64_t rng = 314;
    int right = 0, trials = 0;
    for (int b = 0; b < 2; b++) {
        size_t l = big[b];
        uint8_t *mk = mask->data;
        double c[3] = {0, 0, 0};
        size_t cnt = 0;
        for (size_t x = 0; x < nvox; x++) {
            mk[x] = lab[x] == ids[l] && sub[x] == SM_SUB_BODY;
            if (mk[x]) {
                c[0] += (double)(x % ct->dims[0]);
                c[1] += (double)((x / ct->dims[0]) % ct->dims[1]);
                c[2] += (double)(x / (ct->dims[0] * ct->dims[1]));
                cnt++;
            }
        }
        assert_true(cnt > 0);
        for (int lytic = 0; lytic < 2; lytic++) {
            memcpy(ct->data, orig->data, nvox * sizeof(int16_t));
            SmImplant imp = {{c[0] / (double)cnt, c[1] / (double)cnt, c[2] / (double)cnt},
                             {9.0, 8.0, 7.0}, lytic ? 45.0 : 650.0, lytic ? 20.0 : 60.0, 2.0, 0.15, rng++};
            double achieved = sm_test_implant_fit(ct, mask, 1, &imp, 0.30);
            sm_test_implant(ct, mask, 1, &imp, false);
            SmMetricsInput li = in;
            SmSeriesMetrics *mi = run_lesions(&li);
            SmLesionClass want = lytic ? SM_LESION_LYTIC : SM_LESION_BLASTIC;
            bool others = true;
            for (size_t q = 0; q < mi->n; q++)
                if (q != l && mi->v[q].level[0] == 'T' && mi->v[q].lesion_class != SM_LESION_NONE)
                    others = false;
            printf("  implant %s %-7s truth %.3f measured %.3f class %d%s\n", mi->v[l].level,
                   lytic ? "lytic" : "blastic", achieved, mi->v[l].body_involvement_fraction,
                   mi->v[l].lesion_class, others ? "" : " FALSE-ELSEWHERE");
            right += mi->v[l].lesion_class == want && others &&
                     fabs(mi->v[l].body_involvement_fraction - achieved) <= 0.10;
            trials++;
            free_metrics(mi);
        }
    }
    assert_int_equal(right, trials);
    memcpy(ct->data, orig->data, nvox * sizeof(int16_t));
    sm_volume_destroy(mask);
    sm_volume_destroy(orig);
    sm_seg_spine_destroy(seg);
    sm_volume_destroy(ct);
}

int main(void)
{
#ifdef SM_TEST_PHANTOMS
    /* this executable runs only the phantom study; the others run in test_metrics_lesions */
    void (*other[])(void **) = {test_synthetic_planted, test_synthetic_breach,
                                test_synthetic_mixed_touching, test_extent_doubtful,
                                test_synthetic_noise_and_osteoporosis, test_synthetic_diffuse_disease,
                                test_synthetic_posterolateral,
                                test_threads_identical, test_driver_errors, test_sins_range,
                                test_sins_assembly, test_real_no_lesion, test_real_implants,
                                test_real_driver_posterolateral, test_lidc_no_lesion};
    (void)other;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phantoms),
    };
#elif defined(SM_TEST_LIDC)
    /* this executable runs only the LIDC chest CT study (slow: DICOM load + segmentation) */
    void (*other[])(void **) = {test_synthetic_planted, test_synthetic_breach,
                                test_synthetic_mixed_touching, test_extent_doubtful,
                                test_synthetic_noise_and_osteoporosis, test_synthetic_diffuse_disease,
                                test_synthetic_posterolateral,
                                test_threads_identical, test_driver_errors, test_sins_range,
                                test_sins_assembly, test_real_no_lesion, test_real_implants,
                                test_real_driver_posterolateral};
    (void)other;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lidc_no_lesion),
    };
#else
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_planted),
        cmocka_unit_test(test_synthetic_breach),
        cmocka_unit_test(test_synthetic_mixed_touching),
        cmocka_unit_test(test_extent_doubtful),
        cmocka_unit_test(test_synthetic_noise_and_osteoporosis),
        cmocka_unit_test(test_synthetic_diffuse_disease),
        cmocka_unit_test(test_synthetic_posterolateral),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_driver_errors),
        cmocka_unit_test(test_sins_range),
        cmocka_unit_test(test_sins_assembly),
        cmocka_unit_test(test_real_no_lesion),
        cmocka_unit_test(test_real_implants),
        cmocka_unit_test(test_real_driver_posterolateral),
    };
    (void)test_lidc_no_lesion;
#endif
    return cmocka_run_group_tests(tests, NULL, NULL);
}
