/* Unit tests of the synthetic spine CT phantom: spec parsing, determinism, geometry,
 * truth versus the label maps, tissue statistics, outputs and the CLI. */
#define _POSIX_C_SOURCE 200809L
#include "sm_test.h"

#include "phantom.h"
#include "sm_io.h"
#include "sm_pipeline.h"

#include <jansson.h>
#include <math.h>

/* A small, fast phantom: 96x96 at 1.2 mm, 2 mm slices. */
static void small_spec(SmPhantomSpec *s, const char *levels)
{
    sm_phantom_spec_default(s);
    assert_true(sm_phantom_levels_parse(levels, &s->level_first, &s->level_last));
    s->dims[0] = 96;
    s->dims[1] = 96;
    s->dims[2] = 0;
    s->pixel_mm = 1.2;
    s->slice_mm = 2.0;
}

static SmPhantom *gen(const SmPhantomSpec *s)
{
    SmError *e = NULL;
    SmPhantom *ph = NULL;
    bool ok = sm_phantom_generate(&e, s, &ph);
    if (!ok)
        fprintf(stderr, "generate failed: %s\n", e ? e->message : "?");
    assert_true(ok);
    assert_null(e);
    return ph;
}

static size_t nvox(const SmVolume *v)
{
    return v->dims[0] * v->dims[1] * v->dims[2];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- levels and spec ---- */

static void test_level_names(void **state)
{
    (void)state;
    assert_int_equal(sm_phantom_level_parse("C1"), 0);
    assert_int_equal(sm_phantom_level_parse("C7"), 6);
    assert_int_equal(sm_phantom_level_parse("T1"), 7);
    assert_int_equal(sm_phantom_level_parse("t12"), 18);
    assert_int_equal(sm_phantom_level_parse("L5"), 23);
    assert_int_equal(sm_phantom_level_parse("S1"), 24);
    assert_int_equal(sm_phantom_level_parse("L6"), -1);
    assert_int_equal(sm_phantom_level_parse("T13"), -1);
    assert_int_equal(sm_phantom_level_parse(""), -1);
    assert_string_equal(sm_phantom_level_name(16), "T10");
    assert_string_equal(sm_phantom_level_name(25), "?");
    int f = -1, l = -1;
    assert_true(sm_phantom_levels_parse("T10-S1", &f, &l));
    assert_int_equal(f, 16);
    assert_int_equal(l, 24);
    assert_true(sm_phantom_levels_parse("L3", &f, &l));
    assert_int_equal(f, 21);
    assert_int_equal(l, 21);
    assert_false(sm_phantom_levels_parse("S1-T10", &f, &l));
    assert_false(sm_phantom_levels_parse("T10-", &f, &l));
    assert_false(sm_phantom_levels_parse("X1-L2", &f, &l));
}

static void test_spec_sample_files(void **state)
{
    (void)state;
    const char *names[] = {"lumbar", "thoracic", "cervical", "feet_first_oblique", "scoliosis"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/sample-data/%s.json", SM_SOURCE_DIR, names[i]);
        SmPhantomSpec s;
        sm_phantom_spec_default(&s);
        SmError *e = NULL;
        bool ok = sm_phantom_spec_load(&e, path, &s);
        if (!ok)
            fprintf(stderr, "%s\n", e->message);
        assert_true(ok);
        assert_true(sm_phantom_spec_validate(&e, &s));
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/sample-data/lumbar.json", SM_SOURCE_DIR);
    SmPhantomSpec s;
    sm_phantom_spec_default(&s);
    assert_true(sm_phantom_spec_load(NULL, path, &s));
    assert_int_equal(s.level_first, 16);
    assert_int_equal(s.level_last, 24);
    assert_int_equal(s.dims[0], 256);
    assert_true(fabs(s.pixel_mm - 0.9) < 1e-12);
    snprintf(path, sizeof path, "%s/sample-data/feet_first_oblique.json", SM_SOURCE_DIR);
    sm_phantom_spec_default(&s);
    assert_true(sm_phantom_spec_load(NULL, path, &s));
    assert_string_equal(s.patient_position, "FFS");
    assert_true(fabs(s.oblique_deg - 6) < 1e-12);
    assert_true(s.contrast);
    snprintf(path, sizeof path, "%s/sample-data/scoliosis.json", SM_SOURCE_DIR);
    sm_phantom_spec_default(&s);
    assert_true(sm_phantom_spec_load(NULL, path, &s));
    assert_true(fabs(s.vertebra[20].cancellous_hu - 90) < 1e-12);
    assert_true(fabs(s.vertebra[20].height_scale - 0.75) < 1e-12);
    assert_int_equal(s.scoliosis_apex, 18);
}

/* Each broken spec must fail with a message naming the file and the field. */
static void test_spec_errors_name_file_and_field(void **state)
{
    (void)state;
    char *dir = sm_test_tmpdir();
    assert_non_null(dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/bad.json", dir);
    struct { const char *text; const char *field; SmErrorCode code; } cases[] = {
        {"{\"pixel_mm\": \"thin\"}", "\"pixel_mm\"", SM_ERR_FORMAT},
        {"{\"levels\": \"T10-X3\"}", "\"levels\"", SM_ERR_FORMAT},
        {"{\"dims\": [256, 0, 0]}", "\"dims[1]\"", SM_ERR_FORMAT},
        {"{\"hu\": {\"bone\": 700}}", "\"hu.bone\"", SM_ERR_FORMAT},
        {"{\"curvature\": {\"scoliosis_apex\": \"Q2\"}}", "\"curvature.scoliosis_apex\"",
         SM_ERR_FORMAT},
        {"{\"vertebrae\": {\"L2\": {\"cancellous_hu\": true}}}", "\"vertebrae.L2.cancellous_hu\"",
         SM_ERR_FORMAT},
        {"{\"patient_position\": \"HFP\"}", "\"patient_position\"", SM_ERR_FORMAT},
        {"{\"sede\": 3}", "\"sede\"", SM_ERR_FORMAT},
        {"{\"seed\": 1,\n \"levels\": }", ":2:", SM_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(path, cases[i].text);
        SmPhantomSpec s;
        sm_phantom_spec_default(&s);
        SmError *e = NULL;
        assert_false(sm_phantom_spec_load(&e, path, &s));
        assert_non_null(e);
        assert_int_equal(e->code, cases[i].code);
        assert_non_null(strstr(e->message, path));
        if (!strstr(e->message, cases[i].field))
            fprintf(stderr, "message '%s' lacks '%s'\n", e->message, cases[i].field);
        assert_non_null(strstr(e->message, cases[i].field));
        sm_error_destroy(e);
    }
    SmPhantomSpec s;
    sm_phantom_spec_default(&s);
    SmError *e = NULL;
    snprintf(path, sizeof path, "%s/missing.json", dir);
    assert_false(sm_phantom_spec_load(&e, path, &s));
    assert_int_equal(e->code, SM_ERR_IO);
    assert_non_null(strstr(e->message, "missing.json"));
    sm_error_destroy(e);
    sm_test_rmrf(dir);
    free(dir);
}

static void test_spec_validate(void **state)
{
    (void)state;
    SmPhantomSpec s;
    sm_phantom_spec_default(&s);
    assert_true(sm_phantom_spec_validate(NULL, &s));
    SmError *e = NULL;
    s.pixel_mm = 0.0;
    assert_false(sm_phantom_spec_validate(&e, &s));
    assert_int_equal(e->code, SM_ERR_USAGE);
    assert_non_null(strstr(e->message, "pixel_mm"));
    sm_error_destroy(e);
    e = NULL;
    sm_phantom_spec_default(&s);
    s.dims[0] = 5000;
    assert_false(sm_phantom_spec_validate(&e, &s));
    assert_non_null(strstr(e->message, "dims"));
    sm_error_destroy(e);
    e = NULL;
    sm_phantom_spec_default(&s);
    s.vertebra[21].height_scale = 0.1;
    assert_false(sm_phantom_spec_validate(&e, &s));
    assert_non_null(strstr(e->message, "vertebrae.L3.height_scale"));
    sm_error_destroy(e);
    e = NULL;
    /* generate refuses an invalid spec and leaves *out alone */
    SmPhantom *ph = (SmPhantom *)&s;
    assert_false(sm_phantom_generate(&e, &s, &ph));
    assert_ptr_equal(ph, (SmPhantom *)&s);
    sm_error_destroy(e);
}

/* ---- determinism ---- */

static void test_deterministic_and_seeded(void **state)
{
    (void)state;
    SmPhantomSpec s;
    small_spec(&s, "L2-L4");
    SmPhantom *a = gen(&s), *b = gen(&s);
    assert_memory_equal(a->ct->data, b->ct->data, nvox(a->ct) * 2);
    assert_memory_equal(a->labels->data, b->labels->data, nvox(a->ct));
    assert_memory_equal(a->subregions->data, b->subregions->data, nvox(a->ct));
    s.seed = 2;
    SmPhantom *c = gen(&s);
    assert_true(memcmp(a->ct->data, c->ct->data, nvox(a->ct) * 2) != 0);
    /* the anatomy does not depend on the seed, only noise and texture do */
    assert_memory_equal(a->labels->data, c->labels->data, nvox(a->ct));
    size_t ndiff = 0;
    const int16_t *pa = a->ct->data, *pc = c->ct->data;
    for (size_t i = 0; i < nvox(a->ct); i++)
        ndiff += pa[i] != pc[i];
    assert_true(ndiff > nvox(a->ct) / 2);
    sm_phantom_destroy(a);
    sm_phantom_destroy(b);
    sm_phantom_destroy(c);
}

static void test_threads_identical(void **state)
{
    (void)state;
    SmPhantomSpec s;
    small_spec(&s, "T11-L2");
    s.oblique_deg = 4;
    int before = sm_omp_threads();
    sm_omp_set_threads(1);
    SmPhantom *a = gen(&s);
    sm_omp_set_threads(2);
    SmPhantom *b = gen(&s);
    sm_omp_set_threads(3);
    SmPhantom *c = gen(&s);
    sm_omp_set_threads(before);
    assert_memory_equal(a->ct->data, b->ct->data, nvox(a->ct) * 2);
    assert_memory_equal(a->ct->data, c->ct->data, nvox(a->ct) * 2);
    assert_memory_equal(a->labels->data, b->labels->data, nvox(a->ct));
    assert_memory_equal(a->subregions->data, c->subregions->data, nvox(a->ct));
    assert_memory_equal(a->vertebrae, b->vertebrae, a->n_vertebrae * sizeof *a->vertebrae);
    sm_phantom_destroy(a);
    sm_phantom_destroy(b);
    sm_phantom_destroy(c);
}

/* ---- levels present ---- */

static void test_levels_exactly_as_requested(void **state)
{
    (void)state;
    const char *ranges[] = {"C1-C3", "T11-L1", "L5-S1", "T4"};
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        SmPhantomSpec s;
        small_spec(&s, ranges[r]);
        SmPhantom *ph = gen(&s);
        bool seen[256] = {false};
        const uint8_t *lab = ph->labels->data;
        for (size_t i = 0; i < nvox(ph->labels); i++)
            seen[lab[i]] = true;
        for (int id = 1; id < 256; id++) {
            bool want = false;
            for (int l = s.level_first; l <= s.level_last; l++)
                want |= (l == SM_PHANTOM_LEVEL_S1 ? 26 : l + 1) == id;
            if (want != seen[id])
                fprintf(stderr, "%s: label %d want %d seen %d\n", ranges[r], id, want, seen[id]);
            assert_int_equal(want, seen[id]);
        }
        assert_int_equal(ph->n_vertebrae, (size_t)(s.level_last - s.level_first + 1));
        for (size_t i = 0; i < ph->n_vertebrae; i++) {
            assert_int_equal(ph->vertebrae[i].level, s.level_first + (int)i);
            assert_string_equal(ph->vertebrae[i].name, sm_phantom_level_name(s.level_first + (int)i));
        }
        /* ribs exist exactly for thoracic ranges and are never labelled as vertebra */
        const uint8_t *sub = ph->subregions->data;
        size_t nrib = 0;
        for (size_t i = 0; i < nvox(ph->labels); i++)
            if (sub[i] == SM_PHANTOM_SUB_RIB) {
                nrib++;
                assert_int_equal(lab[i], 0);
            }
        bool thoracic = s.level_first <= 18 && s.level_last >= 7;
        assert_int_equal(nrib > 0, thoracic);
        sm_phantom_destroy(ph);
    }
}

/* ---- truth versus label maps ---- */

static void label_centroid(const SmPhantom *ph, int id, double c[3], size_t *count)
{
    const uint8_t *lab = ph->labels->data, *sub = ph->subregions->data;
    double s[3] = {0, 0, 0};
    size_t n = 0;
    const size_t *d = ph->labels->dims;
    for (size_t k = 0; k < d[2]; k++)
        for (size_t j = 0; j < d[1]; j++)
            for (size_t i = 0; i < d[0]; i++) {
                size_t idx = i + d[0] * (j + d[1] * k);
                if (lab[idx] != id || sub[idx] != SM_PHANTOM_SUB_BODY)
                    continue;
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3];
                sm_volume_index_to_lps(ph->labels, ijk, p);
                for (int q = 0; q < 3; q++)
                    s[q] += p[q];
                n++;
            }
    for (int q = 0; q < 3; q++)
        c[q] = n ? s[q] / (double)n : NAN;
    *count = n;
}

/* The label map's body centroid must agree with the truth within half a voxel along each
 * grid axis (the most a plane boundary sampled at voxel centres can move it), and the body
 * volume within one slice of height (plus 3 % for curved edges). */
static void check_centroids(const SmPhantom *ph)
{
    double vox = ph->ct->spacing[0] * ph->ct->spacing[1] * ph->ct->spacing[2];
    double inv[4][4];
    assert_true(sm_mat4_affine_inverse(ph->labels->affine, inv));
    for (size_t i = 0; i < ph->n_vertebrae; i++) {
        const SmPhantomVertebra *v = &ph->vertebrae[i];
        double c[3];
        size_t n;
        label_centroid(ph, v->verse_id, c, &n);
        if (!v->has_body) {
            assert_int_equal(n, 0);
            continue;
        }
        double dl[3] = {c[0] - v->body_centroid[0], c[1] - v->body_centroid[1],
                        c[2] - v->body_centroid[2]};
        for (int a = 0; a < 3; a++) {
            double di = inv[a][0] * dl[0] + inv[a][1] * dl[1] + inv[a][2] * dl[2];
            if (fabs(di) > 0.5)
                fprintf(stderr, "%s: label centroid %.2f %.2f %.2f truth %.2f %.2f %.2f\n",
                        v->name, c[0], c[1], c[2], v->body_centroid[0], v->body_centroid[1],
                        v->body_centroid[2]);
            assert_true(fabs(di) <= 0.5);
        }
        double vol = (double)n * vox;
        double tol = ph->ct->spacing[2] / v->height_middle_mm + 0.03;
        if (fabs(vol - v->body_volume_mm3) > tol * v->body_volume_mm3)
            fprintf(stderr, "%s: label volume %.0f truth %.0f\n", v->name, vol, v->body_volume_mm3);
        assert_true(fabs(vol - v->body_volume_mm3) <= tol * v->body_volume_mm3);
    }
}

static void test_truth_centroids_match_labels(void **state)
{
    (void)state;
    SmPhantomSpec s;
    small_spec(&s, "T12-S1");
    s.dims[0] = s.dims[1] = 128;
    s.pixel_mm = 0.9;
    SmPhantom *ph = gen(&s);
    check_centroids(ph);
    sm_phantom_destroy(ph);
    small_spec(&s, "C1-C4");
    s.pixel_mm = 0.8;
    s.slice_mm = 1.0;
    ph = gen(&s);
    check_centroids(ph);
    sm_phantom_destroy(ph);
}

/* Body extent along the vertebra's own axis through point p, from the label map. */
static double axis_extent(const SmPhantom *ph, int id, const double p[3], const double ax[3])
{
    double lo = NAN, hi = NAN;
    for (double t = -30; t <= 30; t += 0.05) {
        double q[3] = {p[0] + t * ax[0], p[1] + t * ax[1], p[2] + t * ax[2]}, ijk[3];
        sm_volume_lps_to_index(ph->labels, q, ijk);
        long i = lround(ijk[0]), j = lround(ijk[1]), k = lround(ijk[2]);
        if (i < 0 || j < 0 || k < 0 || i >= (long)ph->labels->dims[0] ||
            j >= (long)ph->labels->dims[1] || k >= (long)ph->labels->dims[2])
            continue;
        size_t idx = (size_t)i + ph->labels->dims[0] * ((size_t)j + ph->labels->dims[1] * (size_t)k);
        if (((uint8_t *)ph->labels->data)[idx] == id &&
            ((uint8_t *)ph->subregions->data)[idx] == SM_PHANTOM_SUB_BODY) {
            if (isnan(lo))
                lo = t;
            hi = t;
        }
    }
    return hi - lo;
}

static void test_truth_heights_match_labels(void **state)
{
    (void)state;
    SmPhantomSpec s;
    small_spec(&s, "T10-L5");
    s.dims[0] = s.dims[1] = 160;
    s.pixel_mm = 0.8;
    s.slice_mm = 0.8;
    s.vertebra[20].height_scale = 0.7; /* a collapsed L2 */
    SmPhantom *ph = gen(&s);
    for (size_t i = 0; i < ph->n_vertebrae; i++) {
        const SmPhantomVertebra *v = &ph->vertebrae[i];
        double o[3], ant = NAN, post = NAN;
        for (int d = 0; d < 3; d++)
            o[d] = 0.5 * (v->endplate_superior[d] + v->endplate_inferior[d]);
        /* the endplate centres are a height apart along the axis */
        double h0 = 0;
        for (int d = 0; d < 3; d++)
            h0 += (v->endplate_superior[d] - v->endplate_inferior[d]) * v->axis_superior[d];
        /* anterior and posterior edges of the body on the midline 1 mm below the superior
         * endplate (the depth is defined at the endplates; the body has a waist) */
        double oe[3];
        for (int d = 0; d < 3; d++)
            oe[d] = v->endplate_superior[d] - 1.0 * v->axis_superior[d];
        for (double t = -40; t <= 40; t += 0.05) {
            double q[3], ijk[3];
            for (int d = 0; d < 3; d++)
                q[d] = oe[d] + t * v->axis_posterior[d];
            sm_volume_lps_to_index(ph->labels, q, ijk);
            long a = lround(ijk[0]), b = lround(ijk[1]), c = lround(ijk[2]);
            size_t idx = (size_t)a + ph->labels->dims[0] * ((size_t)b + ph->labels->dims[1] * (size_t)c);
            if (((uint8_t *)ph->labels->data)[idx] == v->verse_id &&
                ((uint8_t *)ph->subregions->data)[idx] == SM_PHANTOM_SUB_BODY) {
                if (isnan(ant))
                    ant = t;
                post = t;
            }
        }
        double depth = post - ant;
        if (fabs(depth - v->ap_depth_mm) > 1.5)
            fprintf(stderr, "%s depth: labels %.2f truth %.2f\n", v->name, depth, v->ap_depth_mm);
        assert_true(fabs(depth - v->ap_depth_mm) <= 1.5);
        double frac[3] = {0.15, 0.5, 0.85};
        double truth[3] = {v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm};
        for (int q = 0; q < 3; q++) {
            double p[3];
            for (int d = 0; d < 3; d++)
                p[d] = o[d] + (ant + frac[q] * depth) * v->axis_posterior[d];
            double h = axis_extent(ph, v->verse_id, p, v->axis_superior);
            if (fabs(h - truth[q]) > 1.4)
                fprintf(stderr, "%s height %d: labels %.2f truth %.2f\n", v->name, q, h, truth[q]);
            assert_true(fabs(h - truth[q]) <= 1.4);
        }
        assert_true(fabs(h0 - v->height_middle_mm) < 1.0);
    }
    /* realistic sizes: heights grow caudally, the collapsed L2 is 30 % lower than L1 */
    const SmPhantomVertebra *t10 = &ph->vertebrae[0], *l1 = &ph->vertebrae[3],
                            *l2 = &ph->vertebrae[4], *l4 = &ph->vertebrae[6];
    assert_string_equal(l2->name, "L2");
    assert_true(t10->height_middle_mm > 20 && t10->height_middle_mm < 25);
    assert_true(l4->height_middle_mm > 25 && l4->height_middle_mm < 29);
    assert_true(l2->height_middle_mm < 0.75 * l1->height_middle_mm);
    assert_true(l4->width_mm > t10->width_mm && l4->ap_depth_mm > t10->ap_depth_mm);
    sm_phantom_destroy(ph);
}

/* ---- tissue values ---- */

static void sphere_stats(const SmPhantom *ph, const double c[3], double r, double *mean,
                         double *sd, size_t *n)
{
    double s = 0, s2 = 0;
    size_t cnt = 0;
    const size_t *d = ph->ct->dims;
    const int16_t *ct = ph->ct->data;
    for (size_t k = 0; k < d[2]; k++)
        for (size_t j = 0; j < d[1]; j++)
            for (size_t i = 0; i < d[0]; i++) {
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3];
                sm_volume_index_to_lps(ph->ct, ijk, p);
                double dd = (p[0] - c[0]) * (p[0] - c[0]) + (p[1] - c[1]) * (p[1] - c[1]) +
                            (p[2] - c[2]) * (p[2] - c[2]);
                if (dd > r * r)
                    continue;
                double v = ct[i + d[0] * (j + d[1] * k)];
                s += v;
                s2 += v * v;
                cnt++;
            }
    *n = cnt;
    *mean = cnt ? s / (double)cnt : NAN;
    *sd = cnt > 1 ? sqrt((s2 - s * s / (double)cnt) / (double)(cnt - 1)) : NAN;
}

static void test_hu_statistics(void **state)
{
    (void)state;
    SmPhantomSpec s;
    small_spec(&s, "L1-L4");
    s.pixel_mm = 0.9;
    s.dims[0] = s.dims[1] = 160;
    s.vertebra[20].cancellous_hu = 120; /* L2: osteoporotic */
    SmPhantom *ph = gen(&s);
    for (size_t i = 0; i < ph->n_vertebrae; i++) {
        const SmPhantomVertebra *v = &ph->vertebrae[i];
        double mean, sd;
        size_t n;
        /* 6 mm around the centroid is cancellous bone only (body half-height >= 12 mm) */
        sphere_stats(ph, v->body_centroid, 6.0, &mean, &sd, &n);
        double want = v->level == 20 ? 120 : 200;
        assert_true(fabs(v->cancellous_hu - want) < 1e-9);
        if (fabs(mean - want) > 4)
            fprintf(stderr, "%s cancellous mean %.1f want %.0f (n %zu)\n", v->name, mean, want, n);
        assert_true(n > 300);
        assert_true(fabs(mean - want) <= 4.0);
        assert_true(sd > 10 && sd < 30); /* noise 12 plus mild texture */
    }
    sm_phantom_destroy(ph);
    /* noise: a wide field of view whose front corner rows are air; without noise they are
     * exactly -1000, with noise their standard deviation is the spec's sigma */
    small_spec(&s, "L3");
    s.dims[0] = s.dims[1] = 128;
    s.pixel_mm = 2.5;
    s.noise_sigma_hu = 0;
    ph = gen(&s);
    const int16_t *ct = ph->ct->data;
    size_t nx = ph->ct->dims[0];
    for (size_t k = 0; k < ph->ct->dims[2]; k++)
        for (size_t j = 0; j < 10; j++)
            for (size_t i = 0; i < 40; i++)
                assert_int_equal(ct[i + nx * (j + ph->ct->dims[1] * k)], -1000);
    sm_phantom_destroy(ph);
    s.noise_sigma_hu = 12;
    ph = gen(&s);
    ct = ph->ct->data;
    double s1 = 0, s2 = 0;
    size_t n = 0;
    for (size_t k = 0; k < ph->ct->dims[2]; k++)
        for (size_t j = 0; j < 10; j++)
            for (size_t i = 0; i < 40; i++) {
                double v = ct[i + nx * (j + ph->ct->dims[1] * k)];
                s1 += v;
                s2 += v * v;
                n++;
            }
    double mean = s1 / (double)n, sd = sqrt((s2 - s1 * s1 / (double)n) / (double)(n - 1));
    assert_true(n > 5000);
    assert_true(fabs(mean - (-1000)) < 1.0);
    assert_true(fabs(sd - 12.0) < 0.4);
    sm_phantom_destroy(ph);
}

/* A hand-checkable phantom: 23x17x11 voxels of 2 x 2 x 3 mm around L3, no noise and no
 * texture, with the grid centre given. */
static void test_tiny_hand_checked(void **state)
{
    (void)state;
    SmPhantomSpec s;
    sm_phantom_spec_default(&s);
    assert_true(sm_phantom_levels_parse("L3", &s.level_first, &s.level_last));
    s.dims[0] = 23;
    s.dims[1] = 17;
    s.dims[2] = 11;
    s.pixel_mm = 2.0;
    s.slice_mm = 3.0;
    s.noise_sigma_hu = 0;
    s.texture_hu = 0;
    s.fov_center_set = true;
    s.fov_center[0] = 0;
    s.fov_center[1] = 8;
    s.fov_center[2] = 0;
    SmPhantom *ph = gen(&s);
    /* HFS axial: columns +x (left), rows +y (posterior), slices -z; the centre voxel (11,8,5)
     * is at (0, 8, 0) */
    const double want[4][4] = {{2, 0, 0, -22}, {0, 2, 0, -8}, {0, 0, -3, 15}, {0, 0, 0, 1}};
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            assert_true(fabs(ph->ct->affine[r][c] - want[r][c]) < 1e-9);
    assert_int_equal(ph->ct->dims[2], 11);
    assert_true(sm_volume_same_grid(ph->ct, ph->labels, 1e-9));
    assert_true(sm_volume_same_grid(ph->ct, ph->subregions, 1e-9));
    /* L3's body centre is near the patient origin by construction (voxel 11, 4, 5) */
    const SmPhantomVertebra *v = &ph->vertebrae[0];
    assert_string_equal(v->name, "L3");
    assert_int_equal(v->verse_id, 22);
    double ijk[3];
    assert_true(sm_volume_lps_to_index(ph->ct, v->body_centroid, ijk));
    long i = lround(ijk[0]), j = lround(ijk[1]), k = lround(ijk[2]);
    assert_int_equal(i, 11);
    assert_int_equal(j, 4);
    assert_int_equal(k, 5);
    size_t idx = (size_t)i + 23 * ((size_t)j + 17 * (size_t)k);
    assert_int_equal(((int16_t *)ph->ct->data)[idx], 200);
    assert_int_equal(((uint8_t *)ph->labels->data)[idx], 22);
    assert_int_equal(((uint8_t *)ph->subregions->data)[idx], SM_PHANTOM_SUB_BODY);
    /* the canal centre (below the conus: CSF only) */
    assert_true(sm_volume_lps_to_index(ph->ct, v->canal_center, ijk));
    idx = (size_t)lround(ijk[0]) + 23 * ((size_t)lround(ijk[1]) + 17 * (size_t)lround(ijk[2]));
    assert_int_equal(((int16_t *)ph->ct->data)[idx], 10);
    assert_int_equal(((uint8_t *)ph->labels->data)[idx], 0);
    assert_int_equal(((uint8_t *)ph->subregions->data)[idx], SM_PHANTOM_SUB_CANAL);
    /* canal area of an ellipse 23 x 16 mm */
    assert_true(fabs(v->canal_area_mm2 - M_PI * 11.5 * 8.0) < 1e-9);
    sm_phantom_destroy(ph);
}

/* ---- orientation variants ---- */

static void test_ffs_and_oblique_affine(void **state)
{
    (void)state;
    SmPhantomSpec s;
    small_spec(&s, "L2-L3");
    SmPhantom *hfs = gen(&s);
    snprintf(s.patient_position, sizeof s.patient_position, "FFS");
    SmPhantom *ffs = gen(&s);
    /* HFS: columns +x, slices towards the feet; FFS: columns to patient right, slices
     * from the feet up; both in-plane rows +y */
    assert_true(fabs(hfs->ct->affine[0][0] - 1.2) < 1e-12);
    assert_true(fabs(hfs->ct->affine[2][2] + 2.0) < 1e-12);
    assert_true(fabs(ffs->ct->affine[0][0] + 1.2) < 1e-12);
    assert_true(fabs(ffs->ct->affine[1][1] - 1.2) < 1e-12);
    assert_true(fabs(ffs->ct->affine[2][2] - 2.0) < 1e-12);
    assert_string_equal(ffs->ct->meta.patient_position, "FFS");
    /* same anatomy in patient space */
    for (size_t i = 0; i < hfs->n_vertebrae; i++)
        for (int d = 0; d < 3; d++)
            assert_true(fabs(hfs->vertebrae[i].body_centroid[d] - ffs->vertebrae[i].body_centroid[d]) < 1e-9);
    check_centroids(ffs);
    /* first FFS slice is the most caudal */
    double first[3], last[3];
    double i0[3] = {0, 0, 0}, i1[3] = {0, 0, (double)ffs->ct->dims[2] - 1};
    sm_volume_index_to_lps(ffs->ct, i0, first);
    sm_volume_index_to_lps(ffs->ct, i1, last);
    assert_true(first[2] < last[2]);
    sm_phantom_destroy(ffs);
    /* FFS written with HFS axes (as the LIDC fixture's scanner does) */
    s.ffs_standard_axes = true;
    ffs = gen(&s);
    assert_memory_equal(ffs->ct->affine, hfs->ct->affine, sizeof hfs->ct->affine);
    assert_string_equal(ffs->ct->meta.patient_position, "FFS");
    assert_memory_equal(ffs->ct->data, hfs->ct->data, nvox(hfs->ct) * 2);
    sm_phantom_destroy(ffs);
    s.ffs_standard_axes = false;
    /* oblique: 5 degrees about the left-right axis */
    snprintf(s.patient_position, sizeof s.patient_position, "HFS");
    s.oblique_deg = 5;
    s.oblique_axis = 0;
    SmPhantom *ob = gen(&s);
    double c = cos(5 * M_PI / 180), sn = sin(5 * M_PI / 180);
    const double want[3][3] = {{1.2, 0, 0}, {0, 1.2 * c, 2.0 * sn}, {0, 1.2 * sn, -2.0 * c}};
    for (int r = 0; r < 3; r++)
        for (int q = 0; q < 3; q++)
            assert_true(fabs(ob->ct->affine[r][q] - want[r][q]) < 1e-9);
    check_centroids(ob);
    for (size_t i = 0; i < ob->n_vertebrae; i++)
        for (int d = 0; d < 3; d++)
            assert_true(fabs(hfs->vertebrae[i].body_centroid[d] - ob->vertebrae[i].body_centroid[d]) < 1e-9);
    sm_phantom_destroy(ob);
    sm_phantom_destroy(hfs);
}

/* Left/right are patient sides: subregion 2 (left) lies at larger LPS x than 3 (right). */
static void test_patient_left_right(void **state)
{
    (void)state;
    SmPhantomSpec s;
    small_spec(&s, "L3");
    snprintf(s.patient_position, sizeof s.patient_position, "FFS");
    SmPhantom *ph = gen(&s);
    double sx[4] = {0, 0, 0, 0};
    size_t n[4] = {0, 0, 0, 0};
    const uint8_t *sub = ph->subregions->data;
    const size_t *d = ph->ct->dims;
    for (size_t k = 0; k < d[2]; k++)
        for (size_t j = 0; j < d[1]; j++)
            for (size_t i = 0; i < d[0]; i++) {
                uint8_t c = sub[i + d[0] * (j + d[1] * k)];
                if (c != 2 && c != 3)
                    continue;
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3];
                sm_volume_index_to_lps(ph->ct, ijk, p);
                sx[c] += p[0];
                n[c]++;
            }
    assert_true(n[2] > 50 && n[3] > 50);
    assert_true(sx[2] / (double)n[2] > 8.0);
    assert_true(sx[3] / (double)n[3] < -8.0);
    sm_phantom_destroy(ph);
}

/* ---- outputs ---- */

static void test_write_outputs(void **state)
{
    (void)state;
    char *dir = sm_test_tmpdir();
    assert_non_null(dir);
    SmPhantomSpec s;
    small_spec(&s, "L4-S1");
    s.dims[0] = s.dims[1] = 64;
    s.pixel_mm = 2.0;
    s.slice_mm = 3.0;
    SmPhantom *ph = gen(&s);
    char out[1024], p[1200];
    snprintf(out, sizeof out, "%s/out", dir);
    SmError *e = NULL;
    bool ok = sm_phantom_write(&e, ph, out);
    if (!ok)
        fprintf(stderr, "%s\n", e->message);
    assert_true(ok);
    /* truth.json: schema, levels, geometry */
    snprintf(p, sizeof p, "%s/truth.json", out);
    json_error_t je;
    json_t *doc = json_load_file(p, 0, &je);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "schema")), "spinemets.phantom-truth/2");
    json_t *verts = json_object_get(doc, "vertebrae");
    assert_int_equal(json_array_size(verts), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(verts, 2), "level")), "S1");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(verts, 2), "verse_id")), 26);
    json_t *dims = json_object_get(json_object_get(doc, "geometry"), "dims");
    assert_int_equal(json_integer_value(json_array_get(dims, 2)), (json_int_t)ph->ct->dims[2]);
    /* the spec echo is itself a loadable spec that regenerates the same CT */
    snprintf(p, sizeof p, "%s/echo.json", dir);
    assert_int_equal(json_dump_file(json_object_get(doc, "spec"), p, 0), 0);
    json_decref(doc);
    SmPhantomSpec s2;
    sm_phantom_spec_default(&s2);
    assert_true(sm_phantom_spec_load(NULL, p, &s2));
    SmPhantom *ph2 = gen(&s2);
    assert_int_equal(ph2->ct->dims[2], ph->ct->dims[2]);
    assert_memory_equal(ph->ct->data, ph2->ct->data, nvox(ph->ct) * 2);
    sm_phantom_destroy(ph2);
    /* truth volumes on the exact CT grid */
    snprintf(p, sizeof p, "%s/truth_labels.nii.gz", out);
    SmVolume *lab = NULL;
    assert_true(sm_io_nifti_load(NULL, p, &lab));
    assert_true(sm_volume_same_grid(lab, ph->ct, 1e-3));
    for (size_t i = 0; i < nvox(lab); i++)
        assert_int_equal((int)sm_volume_get(lab, i % 64, (i / 64) % 64, i / 4096),
                         ((uint8_t *)ph->labels->data)[i]);
    sm_volume_destroy(lab);
    snprintf(p, sizeof p, "%s/truth_subregions.nii.gz", out);
    SmVolume *sub = NULL;
    assert_true(sm_io_nifti_load(NULL, p, &sub));
    assert_true(sm_volume_same_grid(sub, ph->ct, 1e-3));
    sm_volume_destroy(sub);
    /* the DICOM series reads back as the same HU on the same grid */
    snprintf(p, sizeof p, "%s/dicom", out);
    const char *inputs[1] = {p};
    SmDicomScan *scan = NULL;
    ok = sm_io_dicom_scan(&e, inputs, 1, &scan);
    if (!ok)
        fprintf(stderr, "%s\n", e->message);
    assert_true(ok);
    assert_int_equal(scan->n_series, 1);
    assert_int_equal(scan->series[0].n_files, ph->ct->dims[2]);
    SmVolume *ct = NULL;
    ok = sm_io_dicom_series_load(&e, scan, 0, NULL, &ct, NULL);
    if (!ok)
        fprintf(stderr, "%s\n", e->message);
    assert_true(ok);
    /* The loader orders slices ascending along the normal; the phantom writes its first
     * image at the head like a scanner, so compare in world space. */
    SmGridMap map;
    assert_true(sm_volume_grid_match(ph->ct, ct, 1e-3, &map));
    assert_int_equal(ct->type, SM_VOXEL_I16);
    SmVolume *re = sm_volume_reindex(NULL, ph->ct, ct, &map);
    assert_non_null(re);
    assert_memory_equal(re->data, ph->ct->data, nvox(ct) * 2);
    sm_volume_destroy(re);
    sm_volume_destroy(ct);
    sm_io_dicom_scan_destroy(scan);
    /* rewriting a shorter series into the same directory leaves no stale slices */
    SmPhantomSpec s3 = s;
    s3.slice_mm = 6.0;
    SmPhantom *ph3 = gen(&s3);
    assert_true(ph3->ct->dims[2] < ph->ct->dims[2]);
    assert_true(sm_phantom_write(NULL, ph3, out));
    snprintf(p, sizeof p, "%s/dicom", out);
    scan = NULL;
    assert_true(sm_io_dicom_scan(NULL, inputs, 1, &scan));
    assert_int_equal(scan->n_series, 1);
    assert_int_equal(scan->series[0].n_files, ph3->ct->dims[2]);
    sm_io_dicom_scan_destroy(scan);
    sm_phantom_destroy(ph3);
    /* not writable: the output directory would be below a regular file */
    snprintf(p, sizeof p, "%s/truth.json/x", out);
    assert_false(sm_phantom_write(&e, ph, p));
    assert_int_equal(e->code, SM_ERR_OUTPUT);
    sm_error_destroy(e);
    sm_phantom_destroy(ph);
    sm_test_rmrf(dir);
    free(dir);
}

static void test_cli(void **state)
{
    (void)state;
    char *dir = sm_test_tmpdir();
    assert_non_null(dir);
    char out[1024], bad[1200], spec[1200];
    snprintf(out, sizeof out, "%s/cli", dir);
    char *a1[] = {"phantom", "--levels", "L3-L4", "--dims", "48x48", "--pixel", "2.5",
                  "--slice", "3", "--seed", "9", "--feet-first", "--oblique", "3", "-o", out, NULL};
    assert_int_equal(sm_cmd_phantom(16, a1), 0);
    char p[1300];
    snprintf(p, sizeof p, "%s/truth.json", out);
    json_t *doc = json_load_file(p, 0, NULL);
    assert_non_null(doc);
    json_t *sp = json_object_get(doc, "spec");
    assert_string_equal(json_string_value(json_object_get(sp, "levels")), "L3-L4");
    assert_string_equal(json_string_value(json_object_get(sp, "patient_position")), "FFS");
    assert_int_equal(json_integer_value(json_object_get(sp, "seed")), 9);
    json_decref(doc);
    char *a2[] = {"phantom", "--levels", "X3-L4", "-o", out, NULL};
    assert_int_equal(sm_cmd_phantom(5, a2), 2);
    char *a3[] = {"phantom", "--levels", "L3"};
    assert_int_equal(sm_cmd_phantom(3, a3), 2);
    snprintf(bad, sizeof bad, "%s/truth.json/sub", out);
    char *a4[] = {"phantom", "--levels", "L3", "--dims", "32x32", "-o", bad, NULL};
    assert_int_equal(sm_cmd_phantom(7, a4), 5);
    snprintf(spec, sizeof spec, "%s/bad.json", dir);
    write_text(spec, "{\"noise_sigma_hu\": \"loud\"}");
    char *a5[] = {"phantom", "--spec", spec, "-o", out, NULL};
    assert_int_equal(sm_cmd_phantom(5, a5), 2);
    char *a6[] = {"phantom", "--help", NULL};
    assert_int_equal(sm_cmd_phantom(2, a6), 0);
    char *a7[] = {"phantom", "--dims", "64", "-o", out, NULL};
    assert_int_equal(sm_cmd_phantom(5, a7), 2);
    sm_test_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_spec_sample_files),
        cmocka_unit_test(test_spec_errors_name_file_and_field),
        cmocka_unit_test(test_spec_validate),
        cmocka_unit_test(test_deterministic_and_seeded),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_levels_exactly_as_requested),
        cmocka_unit_test(test_truth_centroids_match_labels),
        cmocka_unit_test(test_truth_heights_match_labels),
        cmocka_unit_test(test_hu_statistics),
        cmocka_unit_test(test_tiny_hand_checked),
        cmocka_unit_test(test_ffs_and_oblique_affine),
        cmocka_unit_test(test_patient_left_right),
        cmocka_unit_test(test_write_outputs),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
