/* Unit tests of pathology in the phantom (lesions, collapse, alignment, osteoporosis, the
 * random pathology generator) and of the shared SINS / Genant rule functions. */
#define _POSIX_C_SOURCE 200809L
#include "sm_test.h"

#include "phantom.h"
#include "sins_rules.h"
#include "sm_io.h"
#include "sm_pipeline.h"

#include <jansson.h>
#include <math.h>

enum { T11 = 17, T12 = 18, L1 = 19, L2 = 20, L3 = 21, L4 = 22, L5 = 23 };

static void base_spec(SmPhantomSpec *s, const char *levels, size_t n, double px, double sl)
{
    sm_phantom_spec_default(s);
    assert_true(sm_phantom_levels_parse(levels, &s->level_first, &s->level_last));
    s->dims[0] = s->dims[1] = n;
    s->dims[2] = 0;
    s->pixel_mm = px;
    s->slice_mm = sl;
}

static SmPhantom *gen(const SmPhantomSpec *s)
{
    SmError *e = NULL;
    SmPhantom *ph = NULL;
    bool ok = sm_phantom_generate(&e, s, &ph);
    if (!ok)
        fprintf(stderr, "generate failed: %s\n", e ? e->message : "?");
    assert_true(ok);
    return ph;
}

static size_t nvox(const SmVolume *v)
{
    return v->dims[0] * v->dims[1] * v->dims[2];
}

static const SmPhantomVertebra *vert(const SmPhantom *ph, int level)
{
    for (size_t i = 0; i < ph->n_vertebrae; i++)
        if (ph->vertebrae[i].level == level)
            return &ph->vertebrae[i];
    fail_msg("level %d not in the phantom", level);
    return NULL;
}

static SmPhantomLesionSpec *add_lesion(SmPhantomSpec *s, int level, int type, double fraction)
{
    SmPhantomVertebraSpec *v = &s->vertebra[level];
    SmPhantomLesionSpec *ls = &v->lesion[v->n_lesions++];
    memset(ls, 0, sizeof *ls);
    ls->type = type;
    ls->fraction = fraction;
    ls->hu = NAN;
    ls->radius_mm = 4;
    ls->seed = (uint64_t)level * 7 + 1;
    return ls;
}

/* ---- rule functions, by hand against docs/domain.md ---- */

static void test_rules_genant(void **state)
{
    (void)state;
    assert_int_equal(sm_genant_grade(0), 0);
    assert_int_equal(sm_genant_grade(-12), 0);
    assert_int_equal(sm_genant_grade(19.999), 0);
    assert_int_equal(sm_genant_grade(20.0), 1);
    assert_int_equal(sm_genant_grade(24.999), 1);
    assert_int_equal(sm_genant_grade(25.0), 2);
    assert_int_equal(sm_genant_grade(33), 2);
    assert_int_equal(sm_genant_grade(40.0), 2);
    assert_int_equal(sm_genant_grade(40.001), 3);
    assert_int_equal(sm_genant_grade(75), 3);
    assert_int_equal(sm_genant_grade(NAN), -1);
}

static void test_rules_sins(void **state)
{
    (void)state;
    /* collapse: > 50 % 3, < 50 % 2 (exactly 50 % scores 2), none with > 50 % involved 1 */
    assert_int_equal(sm_sins_collapse_points(50.0, 0.0), 2);
    assert_int_equal(sm_sins_collapse_points(50.001, 0.0), 3);
    assert_int_equal(sm_sins_collapse_points(70, 0.9), 3);
    assert_int_equal(sm_sins_collapse_points(20.0, 0.0), 2);
    assert_int_equal(sm_sins_collapse_points(19.99, 0.51), 1);
    assert_int_equal(sm_sins_collapse_points(19.99, 0.5), 0);
    assert_int_equal(sm_sins_collapse_points(0, 0.2), 0);
    assert_int_equal(sm_sins_collapse_points(0, NAN), 0);
    assert_int_equal(sm_sins_collapse_points(NAN, 0.9), -1);
    /* location: junctional 3, mobile 2, semi-rigid 1 (VerSe labels) */
    static const int loc[][2] = {{1, 3},  {2, 3},  {3, 2},  {6, 2},  {7, 3},  {8, 3},  {9, 3},
                                 {10, 1}, {13, 1}, {17, 1}, {18, 3}, {19, 3}, {20, 3}, {21, 2},
                                 {22, 2}, {23, 2}, {24, 3}, {25, 3}, {26, 3}, {28, 3}, {0, -1},
                                 {27, -1}, {29, -1}};
    for (size_t i = 0; i < sizeof loc / sizeof loc[0]; i++) {
        if (sm_sins_location_points(loc[i][0]) != loc[i][1])
            fail_msg("location of VerSe %d: %d, expected %d", loc[i][0],
                     sm_sins_location_points(loc[i][0]), loc[i][1]);
    }
    /* lesion quality: lytic 2, mixed 1, blastic 0, none null */
    assert_int_equal(sm_sins_lesion_quality_points(SM_SINS_LESION_LYTIC), 2);
    assert_int_equal(sm_sins_lesion_quality_points(SM_SINS_LESION_MIXED), 1);
    assert_int_equal(sm_sins_lesion_quality_points(SM_SINS_LESION_BLASTIC), 0);
    assert_int_equal(sm_sins_lesion_quality_points(SM_SINS_LESION_NONE), -1);
    /* alignment: subluxation/translation 4, de novo deformity 2, normal 0 */
    assert_int_equal(sm_sins_alignment_points(3.0, 0, 0), 4);
    assert_int_equal(sm_sins_alignment_points(-3.5, 0, 0), 4);
    assert_int_equal(sm_sins_alignment_points(2.99, 0, 0), 0);
    assert_int_equal(sm_sins_alignment_points(0, 10.0, 0), 2);
    assert_int_equal(sm_sins_alignment_points(0, 9.99, 0), 0);
    assert_int_equal(sm_sins_alignment_points(0, 0, -10.0), 2);
    assert_int_equal(sm_sins_alignment_points(4, 20, 0), 4);
    assert_int_equal(sm_sins_alignment_points(NAN, NAN, NAN), -1);
    assert_int_equal(sm_sins_alignment_points(NAN, 12, NAN), 2);
    assert_int_equal(sm_sins_alignment_class(1, 1, 1), SM_SINS_ALIGN_NORMAL);
    assert_int_equal(sm_sins_alignment_class(1, 15, 1), SM_SINS_ALIGN_DEFORMITY);
    assert_int_equal(sm_sins_alignment_class(5, 1, 1), SM_SINS_ALIGN_SUBLUXATION);
    /* posterolateral: bilateral 3, unilateral 1, none 0 */
    assert_int_equal(sm_sins_posterolateral_points(SM_SINS_SIDE_NONE), 0);
    assert_int_equal(sm_sins_posterolateral_points(SM_SINS_SIDE_LEFT), 1);
    assert_int_equal(sm_sins_posterolateral_points(SM_SINS_SIDE_RIGHT), 1);
    assert_int_equal(sm_sins_posterolateral_points(SM_SINS_SIDE_BILATERAL), 3);
    /* categories: 0-6 stable, 7-12 potentially unstable, 13-18 unstable */
    assert_string_equal(sm_sins_category_name(6), "stable");
    assert_string_equal(sm_sins_category_name(7), "potentially unstable");
    assert_string_equal(sm_sins_category_name(12), "potentially unstable");
    assert_string_equal(sm_sins_category_name(13), "unstable");
    assert_null(sm_sins_category_name(19));
    const char *c[3];
    assert_int_equal(sm_sins_categories(0, 3, c), 1); /* subtotal <= 3: always stable */
    assert_string_equal(c[0], "stable");
    assert_int_equal(sm_sins_categories(4, 7, c), 2);
    assert_string_equal(c[1], "potentially unstable");
    assert_int_equal(sm_sins_categories(7, 10, c), 1);
    assert_int_equal(sm_sins_categories(10, 13, c), 2);
    assert_int_equal(sm_sins_categories(13, 16, c), 1);
    assert_string_equal(c[0], "unstable");
    assert_int_equal(sm_sins_categories(0, 18, c), 3);
    assert_string_equal(sm_sins_lesion_class_name(3), "mixed");
    assert_string_equal(sm_sins_side_name(3), "bilateral");
    assert_string_equal(sm_sins_alignment_class_name(2), "subluxation");
}

/* ---- lesions ---- */

/* Counts of one vertebra on the maps, independent of the generator's own counting. */
typedef struct Counts {
    size_t body, lytic, blastic, island, pl[2], pl_les[2], stray;
    double hu_lytic, hu_blastic, hu_island, hu_plain;
    size_t n_lytic_core, n_blastic_core, n_plain_core;
} Counts;

static void count_maps(const SmPhantom *ph, int id, Counts *c)
{
    memset(c, 0, sizeof *c);
    const uint8_t *lab = ph->labels->data, *sub = ph->subregions->data, *les = ph->lesions->data;
    const int16_t *ct = ph->ct->data;
    const size_t *d = ph->ct->dims;
    for (size_t k = 1; k + 1 < d[2]; k++)
        for (size_t j = 1; j + 1 < d[1]; j++)
            for (size_t i = 1; i + 1 < d[0]; i++) {
                size_t idx = i + d[0] * (j + d[1] * k);
                if (lab[idx] != id) {
                    continue;
                }
                if (les[idx] && (sub[idx] < 1 || sub[idx] > 3))
                    c->stray++;
                if (sub[idx] == SM_PHANTOM_SUB_BODY) {
                    c->body++;
                    c->lytic += les[idx] == 1;
                    c->blastic += les[idx] == 2;
                    c->island += les[idx] == 3;
                    /* interior: 2 voxels deep in-plane, 1 across slices (clear of the cortex) */
                    size_t nb[10] = {idx - 1, idx + 1, idx - d[0], idx + d[0], idx - d[0] * d[1],
                                     idx + d[0] * d[1], idx - 2, idx + 2, idx - 2 * d[0],
                                     idx + 2 * d[0]};
                    bool core = i >= 2 && j >= 2 && i + 2 < d[0] && j + 2 < d[1];
                    for (int q = 0; q < 10 && core; q++)
                        core = core && les[nb[q]] == les[idx] && sub[nb[q]] == 1 &&
                               lab[nb[q]] == id;
                    if (core && les[idx] == 1) {
                        c->hu_lytic += ct[idx];
                        c->n_lytic_core++;
                    } else if (core && les[idx] == 2) {
                        c->hu_blastic += ct[idx];
                        c->n_blastic_core++;
                    } else if (core && les[idx] == 0) {
                        c->hu_plain += ct[idx];
                        c->n_plain_core++;
                    }
                    if (les[idx] == 3)
                        c->hu_island = fmax(c->hu_island, ct[idx]);
                } else if (sub[idx] == 2 || sub[idx] == 3) {
                    c->pl[sub[idx] - 2]++;
                    c->pl_les[sub[idx] - 2] += les[idx] == 1 || les[idx] == 2;
                }
            }
    if (c->n_lytic_core)
        c->hu_lytic /= (double)c->n_lytic_core;
    if (c->n_blastic_core)
        c->hu_blastic /= (double)c->n_blastic_core;
    if (c->n_plain_core)
        c->hu_plain /= (double)c->n_plain_core;
}

static void test_lesion_fractions_match_maps(void **state)
{
    (void)state;
    SmPhantomSpec s;
    base_spec(&s, "T12-L4", 128, 0.9, 1.5);
    add_lesion(&s, L1, SM_PHANTOM_LESION_BONE_ISLAND, 0)->center[1] = -0.3;
    SmPhantomLesionSpec *a = add_lesion(&s, L2, SM_PHANTOM_LESION_LYTIC, 0.40);
    a->cortical_breach = true;
    a->extension = SM_PHANTOM_SIDE_LEFT;
    a->center[1] = 0.4;
    add_lesion(&s, L3, SM_PHANTOM_LESION_BLASTIC, 0.25)->center[0] = -0.4;
    SmPhantomLesionSpec *m = add_lesion(&s, L4, SM_PHANTOM_LESION_MIXED, 0.5);
    m->extension = SM_PHANTOM_SIDE_BILATERAL;
    SmPhantom *ph = gen(&s);
    static const struct { int level; int cls; double lytic, blastic; int side; } want[] = {
        {T12, SM_SINS_LESION_NONE, 0, 0, 0},
        {L1, SM_SINS_LESION_NONE, 0, 0, 0},
        {L2, SM_SINS_LESION_LYTIC, 0.40, 0, SM_PHANTOM_SIDE_LEFT},
        {L3, SM_SINS_LESION_BLASTIC, 0, 0.25, 0},
        {L4, SM_SINS_LESION_MIXED, 0.275, 0.225, SM_PHANTOM_SIDE_BILATERAL}};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        const SmPhantomVertebra *v = vert(ph, want[w].level);
        Counts c;
        count_maps(ph, v->verse_id, &c);
        assert_int_equal(c.stray, 0);
        /* the truth counts are exactly what the maps hold */
        assert_int_equal(v->body_voxels, c.body);
        assert_int_equal(v->lytic_voxels, c.lytic);
        assert_int_equal(v->blastic_voxels, c.blastic);
        assert_int_equal(v->island_voxels, c.island);
        assert_true(fabs(v->lytic_fraction - (double)c.lytic / (double)c.body) < 1e-12);
        assert_true(fabs(v->blastic_fraction - (double)c.blastic / (double)c.body) < 1e-12);
        assert_true(fabs(v->body_involvement_fraction -
                         (double)(c.lytic + c.blastic) / (double)c.body) < 1e-12);
        /* the achieved fractions are close to the spec (calibrated on a 1 mm lattice) */
        if (fabs(v->lytic_fraction - want[w].lytic) > 0.05 ||
            fabs(v->blastic_fraction - want[w].blastic) > 0.05)
            fprintf(stderr, "%s: lytic %.3f blastic %.3f\n", v->name, v->lytic_fraction,
                    v->blastic_fraction);
        assert_true(fabs(v->lytic_fraction - want[w].lytic) <= 0.05);
        assert_true(fabs(v->blastic_fraction - want[w].blastic) <= 0.05);
        assert_int_equal(v->lesion_class, want[w].cls);
        assert_int_equal(v->posterolateral, want[w].side);
        for (int side = 0; side < 2; side++) {
            bool inv = want[w].side & (1 << side);
            double f = c.pl[side] ? (double)c.pl_les[side] / (double)c.pl[side] : 0;
            assert_true(fabs(f - v->pl_lesion_fraction[side]) < 1e-12);
            /* an extension replaces (nearly) all of the side; else nothing leaks there */
            if (!(inv ? f > 0.9 : f == 0.0))
                fprintf(stderr, "%s side %d: %zu of %zu posterolateral voxels are lesion\n",
                        v->name, side, c.pl_les[side], c.pl[side]);
            assert_true(inv ? f > 0.9 : f == 0.0);
        }
        /* the CT shows what the lesion map says */
        if (c.n_lytic_core > 20)
            assert_true(c.hu_lytic > 20 && c.hu_lytic < 80);
        if (c.n_blastic_core > 20)
            assert_true(c.hu_blastic > 550 && c.hu_blastic < 850);
        if (!(c.n_plain_core > 100 && fabs(c.hu_plain - 200) < 25))
            fprintf(stderr, "%s: %zu plain core voxels, mean %.1f HU\n", v->name,
                    c.n_plain_core, c.hu_plain);
        assert_true(c.n_plain_core > 100 && fabs(c.hu_plain - 200) < 25);
        /* SINS components expected */
        assert_int_equal(v->sins_lesion_quality, sm_sins_lesion_quality_points(want[w].cls));
        assert_int_equal(v->sins_posterolateral, sm_sins_posterolateral_points(want[w].side));
        assert_int_equal(v->sins_location, sm_sins_location_points(v->verse_id));
    }
    /* the bone island: dense (enostosis ~1200 HU), small, not a metastasis */
    const SmPhantomVertebra *l1 = vert(ph, L1);
    Counts c;
    count_maps(ph, l1->verse_id, &c);
    double vox = ph->ct->spacing[0] * ph->ct->spacing[1] * ph->ct->spacing[2];
    double sphere = 4.0 / 3.0 * M_PI * 64;
    assert_true(fabs((double)c.island * vox - sphere) < 0.35 * sphere);
    assert_true(c.hu_island > 1050);
    assert_true(l1->island_fraction > 0 && l1->body_involvement_fraction == 0);
    sm_phantom_destroy(ph);
}

/* ---- collapse ---- */

/* Body extent along the axis through p from the label map (mm). */
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

/* Heights at 15/50/85 % of the AP depth measured on the label map. */
static void label_heights(const SmPhantom *ph, const SmPhantomVertebra *v, double h[3])
{
    double o[3], ant = NAN;
    for (int d = 0; d < 3; d++)
        o[d] = 0.5 * (v->endplate_superior[d] + v->endplate_inferior[d]);
    /* the anterior cortex on the midline: the most anterior body voxel over the body's
     * height (at the endplates, where the depth is defined; a wedge tilts them) */
    for (double z = -0.5 * v->height_posterior_mm; z <= 0.5 * v->height_posterior_mm; z += 0.5)
        for (double t = -40; t <= 40; t += 0.05) {
            double q[3], ijk[3];
            for (int d = 0; d < 3; d++)
                q[d] = o[d] + z * v->axis_superior[d] + t * v->axis_posterior[d];
            sm_volume_lps_to_index(ph->labels, q, ijk);
            long a = lround(ijk[0]), b = lround(ijk[1]), c = lround(ijk[2]);
            if (a < 0 || b < 0 || c < 0 || a >= (long)ph->labels->dims[0] ||
                b >= (long)ph->labels->dims[1] || c >= (long)ph->labels->dims[2])
                continue;
            size_t idx =
                (size_t)a + ph->labels->dims[0] * ((size_t)b + ph->labels->dims[1] * (size_t)c);
            if (((uint8_t *)ph->labels->data)[idx] == v->verse_id &&
                ((uint8_t *)ph->subregions->data)[idx] == SM_PHANTOM_SUB_BODY) {
                if (isnan(ant) || t < ant)
                    ant = t;
                break;
            }
        }
    /* the AP depth does not change with collapse */
    double depth = v->ap_depth_mm;
    double frac[3] = {0.15, 0.5, 0.85};
    for (int q = 0; q < 3; q++) {
        double p[3];
        for (int d = 0; d < 3; d++)
            p[d] = o[d] + (ant + frac[q] * depth) * v->axis_posterior[d];
        h[q] = axis_extent(ph, v->verse_id, p, v->axis_superior);
    }
}

static void test_collapse_heights_match_labels(void **state)
{
    (void)state;
    SmPhantomSpec s, s0;
    base_spec(&s, "T11-L5", 160, 0.8, 0.8);
    s0 = s;
    s.vertebra[T12].collapse_type = SM_PHANTOM_COLLAPSE_WEDGE;
    s.vertebra[T12].collapse_pct = 40;
    s.vertebra[L2].collapse_type = SM_PHANTOM_COLLAPSE_BICONCAVE;
    s.vertebra[L2].collapse_pct = 30;
    s.vertebra[L4].collapse_type = SM_PHANTOM_COLLAPSE_CRUSH;
    s.vertebra[L4].collapse_pct = 55;
    SmPhantom *ph = gen(&s), *ref = gen(&s0);
    for (size_t i = 0; i < ph->n_vertebrae; i++) {
        const SmPhantomVertebra *v = &ph->vertebrae[i], *r = &ref->vertebrae[i];
        double h[3], truth[3] = {v->height_anterior_mm, v->height_middle_mm,
                                 v->height_posterior_mm};
        label_heights(ph, v, h);
        for (int q = 0; q < 3; q++) {
            if (fabs(h[q] - truth[q]) > 1.5)
                fprintf(stderr, "%s height %d: labels %.2f truth %.2f\n", v->name, q, h[q],
                        truth[q]);
            assert_true(fabs(h[q] - truth[q]) <= 1.5);
        }
        /* the expected (pre-morbid) heights are those of the same spine without collapse */
        assert_true(fabs(v->expected_anterior_mm - r->height_anterior_mm) < 1e-9);
        assert_true(fabs(v->expected_middle_mm - r->height_middle_mm) < 1e-9);
        assert_true(fabs(v->expected_posterior_mm - r->height_posterior_mm) < 1e-9);
        double worst = 0;
        for (int q = 0; q < 3; q++) {
            double e = q == 0 ? r->height_anterior_mm
                              : (q == 1 ? r->height_middle_mm : r->height_posterior_mm);
            worst = fmax(worst, 100 * (1 - truth[q] / e));
        }
        assert_true(fabs(v->height_loss_pct - worst) < 1e-9);
        /* the label map shows the loss too (within the 1.5 mm height tolerance) */
        double e_lab[3];
        label_heights(ref, r, e_lab);
        double worst_lab = 0;
        for (int q = 0; q < 3; q++)
            worst_lab = fmax(worst_lab, 100 * (1 - h[q] / e_lab[q]));
        assert_true(fabs(worst_lab - worst) < 100 * 3.0 / r->height_middle_mm);
    }
    const SmPhantomVertebra *t12 = vert(ph, T12), *l2 = vert(ph, L2), *l4 = vert(ph, L4),
                            *l3 = vert(ph, L3);
    /* the specified loss is the worst loss, at the expected place */
    assert_true(fabs(t12->height_loss_pct - 40) < 1e-9);
    assert_true(fabs(l2->height_loss_pct - 30) < 1e-9);
    assert_true(fabs(l4->height_loss_pct - 55) < 1e-9);
    assert_true(fabs(l3->height_loss_pct) < 1e-9);
    assert_true(t12->height_anterior_mm < t12->height_middle_mm &&
                t12->height_middle_mm < t12->height_posterior_mm);
    assert_true(l2->height_middle_mm < l2->height_anterior_mm - 3 &&
                l2->height_middle_mm < l2->height_posterior_mm - 3);
    assert_true(fabs(l4->height_anterior_mm / l4->expected_anterior_mm - 0.45) < 1e-9);
    assert_true(fabs(l4->height_posterior_mm / l4->expected_posterior_mm - 0.45) < 1e-9);
    /* Genant 40 % -> 2 (the boundary belongs to moderate), 30 -> 2, 55 -> 3 */
    assert_int_equal(t12->genant_grade, 2);
    assert_int_equal(l2->genant_grade, 2);
    assert_int_equal(l4->genant_grade, 3);
    assert_int_equal(l3->genant_grade, 0);
    assert_int_equal(t12->deformity, SM_PHANTOM_COLLAPSE_WEDGE);
    assert_int_equal(l2->deformity, SM_PHANTOM_COLLAPSE_BICONCAVE);
    assert_int_equal(l4->deformity, SM_PHANTOM_COLLAPSE_CRUSH);
    assert_int_equal(l3->deformity, SM_PHANTOM_COLLAPSE_NONE);
    assert_int_equal(t12->sins_collapse, 2);
    assert_int_equal(l2->sins_collapse, 2);
    assert_int_equal(l4->sins_collapse, 3);
    assert_int_equal(l3->sins_collapse, 0);
    /* a crushed body is smaller in the labels */
    Counts c4, c4r;
    count_maps(ph, l4->verse_id, &c4);
    count_maps(ref, l4->verse_id, &c4r);
    assert_true(fabs((double)c4.body / (double)c4r.body - 0.45) < 0.06);
    sm_phantom_destroy(ph);
    sm_phantom_destroy(ref);
}

/* ---- alignment ---- */

static void body_centroid_labels(const SmPhantom *ph, int id, double c[3])
{
    const uint8_t *lab = ph->labels->data, *sub = ph->subregions->data;
    const size_t *d = ph->labels->dims;
    double s[3] = {0, 0, 0};
    size_t n = 0;
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
    assert_true(n > 0);
    for (int q = 0; q < 3; q++)
        c[q] = s[q] / (double)n;
}

/* Offset of the upper body centroid from the lower one in the lower vertebra's frame
 * ([lateral (+left), AP (+posterior)]), from the label maps. */
static void centroid_offset(const SmPhantom *ph, int upper, int lower, double out[2])
{
    const SmPhantomVertebra *lo = vert(ph, lower);
    double cu[3], cl[3], left[3];
    body_centroid_labels(ph, vert(ph, upper)->verse_id, cu);
    body_centroid_labels(ph, lo->verse_id, cl);
    const double *p = lo->axis_posterior, *u = lo->axis_superior;
    left[0] = p[1] * u[2] - p[2] * u[1];
    left[1] = p[2] * u[0] - p[0] * u[2];
    left[2] = p[0] * u[1] - p[1] * u[0];
    double dlt[3] = {cu[0] - cl[0], cu[1] - cl[1], cu[2] - cl[2]};
    out[0] = dlt[0] * left[0] + dlt[1] * left[1] + dlt[2] * left[2];
    out[1] = dlt[0] * p[0] + dlt[1] * p[1] + dlt[2] * p[2];
}

static void test_translation_matches_centroids(void **state)
{
    (void)state;
    SmPhantomSpec s, s0;
    base_spec(&s, "L1-L5", 128, 0.9, 1.0);
    s0 = s;
    s.vertebra[L3].translation_mm[1] = -6.0; /* L3 6 mm anterior on L4 */
    s.vertebra[L1].translation_mm[0] = 4.0;  /* L1 4 mm to the left on L2 */
    SmPhantom *ph = gen(&s), *ref = gen(&s0);
    double a[2], b[2];
    centroid_offset(ph, L3, L4, a);
    centroid_offset(ref, L3, L4, b);
    const SmPhantomVertebra *l3 = vert(ph, L3);
    fprintf(stderr, "L3 on L4: centroid shift lateral %.2f AP %.2f (truth %.2f %.2f)\n",
            a[0] - b[0], a[1] - b[1], l3->translation_lateral_mm, l3->translation_ap_mm);
    assert_true(fabs((a[1] - b[1]) - l3->translation_ap_mm) < 0.5);
    assert_true(fabs((a[0] - b[0]) - l3->translation_lateral_mm) < 0.5);
    /* translation_mm is the posterior-wall offset at the disc mid-plane (docs/phantom.md):
     * L3 and L4 have equal depths and notches in the model, so the pathology-free walls
     * differ only by the lordotic bend about the disc centre (the mid-plane passes through
     * the posterior endplate points, not the centre: ~0.5 mm), and the translation adds
     * the applied 6 mm */
    const SmPhantomVertebra *r3 = vert(ref, L3);
    fprintf(stderr, "L3 on L4: posterior-wall offset %.3f mm (pathology-free %.3f mm)\n",
            l3->translation_mm, r3->translation_mm);
    assert_true(r3->translation_mm < 1.0);
    assert_true(fabs(l3->translation_mm - r3->translation_mm - 6.0) < 0.3);
    centroid_offset(ph, L1, L2, a);
    centroid_offset(ref, L1, L2, b);
    const SmPhantomVertebra *l1 = vert(ph, L1);
    assert_true(fabs((a[0] - b[0]) - 4.0) < 0.5 && fabs(l1->translation_lateral_mm - 4) < 1e-9);
    assert_true(fabs(a[1] - b[1]) < 0.5);
    /* classes and SINS: a translated segment scores 4 for both of its vertebrae */
    assert_int_equal(l3->alignment_class, SM_SINS_ALIGN_SUBLUXATION);
    assert_int_equal(vert(ph, L2)->alignment_class, SM_SINS_ALIGN_NORMAL);
    assert_int_equal(vert(ph, L3)->sins_alignment, 4);
    assert_int_equal(vert(ph, L4)->sins_alignment, 4);
    assert_int_equal(vert(ph, L5)->sins_alignment, 0);
    assert_false(vert(ph, L5)->has_below);
    assert_true(isnan(vert(ph, L5)->translation_mm));
    sm_phantom_destroy(ph);
    sm_phantom_destroy(ref);
}

static double angle_deg(const double a[3], const double b[3])
{
    double d = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    return acos(fmin(1.0, fmax(-1.0, d))) * 180.0 / M_PI;
}

static void test_focal_angles(void **state)
{
    (void)state;
    SmPhantomSpec s, s0;
    base_spec(&s, "T11-L4", 96, 1.2, 2.0);
    s0 = s;
    s.vertebra[T12].kyphosis_deg = 20;
    s.vertebra[L2].scoliosis_deg = -15;
    SmPhantom *ph = gen(&s), *ref = gen(&s0);
    const SmPhantomVertebra *t12 = vert(ph, T12), *l2 = vert(ph, L2);
    assert_true(fabs(t12->focal_kyphosis_deg - 20) < 1e-6);
    assert_true(fabs(t12->focal_scoliosis_deg) < 1e-6);
    assert_true(fabs(l2->focal_scoliosis_deg + 15) < 0.5); /* the tilt mixes the planes */
    assert_true(fabs(l2->focal_kyphosis_deg) < 0.5);
    /* independently: the angle between the two vertebra axes grows by the focal angle */
    const SmPhantomVertebra *l1 = vert(ph, L1);
    const SmPhantomVertebra *t12r = vert(ref, T12), *l1r = vert(ref, L1);
    double a = angle_deg(t12->axis_superior, l1->axis_superior);
    double a0 = angle_deg(t12r->axis_superior, l1r->axis_superior);
    assert_true(fabs(fabs(t12->kyphosis_deg) - a) < 1e-6);
    assert_true(fabs(t12r->kyphosis_deg) - a0 < 1e-6);
    assert_true(fabs((t12->kyphosis_deg - t12r->kyphosis_deg) - 20) < 1e-6);
    /* the physiological segment is not a deformity; the focal ones are */
    assert_int_equal(t12->alignment_class, SM_SINS_ALIGN_DEFORMITY);
    assert_int_equal(l2->alignment_class, SM_SINS_ALIGN_DEFORMITY);
    assert_int_equal(vert(ph, L3)->alignment_class, SM_SINS_ALIGN_NORMAL);
    assert_int_equal(vert(ph, T11)->sins_alignment, 0);
    assert_int_equal(vert(ph, L1)->sins_alignment, 2);
    sm_phantom_destroy(ph);
    sm_phantom_destroy(ref);
}

/* ---- osteoporosis ---- */

static void test_osteoporotic(void **state)
{
    (void)state;
    SmPhantomSpec s;
    base_spec(&s, "L1-L3", 96, 1.0, 1.5);
    s.osteoporotic = true;
    s.osteoporotic_hu = 70;
    SmPhantom *ph = gen(&s);
    const uint8_t *les = ph->lesions->data;
    for (size_t i = 0; i < nvox(ph->lesions); i++)
        assert_int_equal(les[i], 0);
    for (size_t i = 0; i < ph->n_vertebrae; i++) {
        const SmPhantomVertebra *v = &ph->vertebrae[i];
        Counts c;
        count_maps(ph, v->verse_id, &c);
        assert_true(c.n_plain_core > 100);
        if (fabs(c.hu_plain - 70) > 15)
            fprintf(stderr, "%s: cancellous %.1f\n", v->name, c.hu_plain);
        assert_true(fabs(c.hu_plain - 70) <= 15);
        assert_int_equal(v->lesion_class, SM_SINS_LESION_NONE);
        assert_int_equal(v->sins_lesion_quality, -1);
        assert_true(v->cancellous_hu == 70);
    }
    sm_phantom_destroy(ph);
}

/* ---- determinism ---- */

static void pathology_spec(SmPhantomSpec *s)
{
    base_spec(s, "T12-L3", 96, 1.2, 2.0);
    s->oblique_deg = 3;
    SmPhantomLesionSpec *a = add_lesion(s, L1, SM_PHANTOM_LESION_MIXED, 0.4);
    a->extension = SM_PHANTOM_SIDE_RIGHT;
    a->cortical_breach = true;
    add_lesion(s, L2, SM_PHANTOM_LESION_BONE_ISLAND, 0);
    s->vertebra[L2].collapse_type = SM_PHANTOM_COLLAPSE_BICONCAVE;
    s->vertebra[L2].collapse_pct = 25;
    s->vertebra[T12].translation_mm[1] = 5;
}

static void test_pathology_threads_identical(void **state)
{
    (void)state;
    SmPhantomSpec s;
    pathology_spec(&s);
    int before = sm_omp_threads();
    sm_omp_set_threads(1);
    SmPhantom *a = gen(&s);
    SmPhantom *a2 = gen(&s);
    sm_omp_set_threads(2);
    SmPhantom *b = gen(&s);
    sm_omp_set_threads(before);
    size_t n = nvox(a->ct);
    assert_memory_equal(a->ct->data, b->ct->data, n * 2);
    assert_memory_equal(a->labels->data, b->labels->data, n);
    assert_memory_equal(a->subregions->data, b->subregions->data, n);
    assert_memory_equal(a->lesions->data, b->lesions->data, n);
    assert_memory_equal(a->vertebrae, b->vertebrae, a->n_vertebrae * sizeof *a->vertebrae);
    assert_memory_equal(a->ct->data, a2->ct->data, n * 2);
    assert_memory_equal(a->lesions->data, a2->lesions->data, n);
    /* the lesion shape comes from its own seed: another seed, another shape */
    s.vertebra[L1].lesion[0].seed = 99;
    SmPhantom *c = gen(&s);
    assert_true(memcmp(a->lesions->data, c->lesions->data, n) != 0);
    sm_phantom_destroy(a);
    sm_phantom_destroy(a2);
    sm_phantom_destroy(b);
    sm_phantom_destroy(c);
}

/* ---- random pathology ---- */

static void test_randomize(void **state)
{
    (void)state;
    int types[5] = {0}, collapses[4] = {0}, aligns = 0, ext = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        SmPhantomSpec s, s2;
        base_spec(&s, "T10-L5", 96, 1.2, 2.0);
        s2 = s;
        assert_true(sm_phantom_spec_randomize(&s, seed, 0.5, 0.3, 0.15));
        assert_true(sm_phantom_spec_randomize(&s2, seed, 0.5, 0.3, 0.15));
        assert_memory_equal(&s, &s2, sizeof s);
        SmError *e = NULL;
        bool ok = sm_phantom_spec_validate(&e, &s);
        if (!ok)
            fprintf(stderr, "seed %llu: %s\n", (unsigned long long)seed, e->message);
        assert_true(ok);
        for (int l = 0; l < SM_PHANTOM_N_LEVELS; l++) {
            const SmPhantomVertebraSpec *v = &s.vertebra[l];
            if (l < s.level_first || l > s.level_last) {
                assert_int_equal(v->n_lesions, 0);
                continue;
            }
            if (v->n_lesions) {
                types[v->lesion[0].type]++;
                ext += v->lesion[0].extension != 0;
            }
            collapses[v->collapse_type]++;
            aligns += v->translation_mm[0] != 0 || v->translation_mm[1] != 0 ||
                      v->kyphosis_deg != 0 || v->scoliosis_deg != 0;
            /* never two adjacent discs */
            if (l > s.level_first && (v->kyphosis_deg != 0 || v->scoliosis_deg != 0 ||
                                      v->translation_mm[0] != 0 || v->translation_mm[1] != 0)) {
                const SmPhantomVertebraSpec *u = &s.vertebra[l - 1];
                assert_true(u->kyphosis_deg == 0 && u->scoliosis_deg == 0 &&
                            u->translation_mm[0] == 0 && u->translation_mm[1] == 0);
            }
        }
    }
    for (int t = 1; t <= 4; t++)
        assert_true(types[t] > 5);
    for (int c = 1; c <= 3; c++)
        assert_true(collapses[c] > 10);
    assert_true(aligns > 10 && ext > 10);
    /* a random case: what was drawn is what the truth measures */
    SmPhantomSpec s;
    base_spec(&s, "T11-L5", 112, 1.0, 1.5);
    sm_phantom_spec_randomize(&s, 7, 0.8, 0.4, 0.3);
    SmPhantom *ph = gen(&s);
    for (size_t i = 0; i < ph->n_vertebrae; i++) {
        const SmPhantomVertebra *v = &ph->vertebrae[i];
        const SmPhantomVertebraSpec *vs = &s.vertebra[v->level];
        int want = SM_SINS_LESION_NONE;
        double frac = 0;
        if (vs->n_lesions) {
            int t = vs->lesion[0].type;
            want = t == SM_PHANTOM_LESION_BONE_ISLAND ? SM_SINS_LESION_NONE : t;
            frac = t == SM_PHANTOM_LESION_BONE_ISLAND ? 0 : vs->lesion[0].fraction;
        }
        assert_int_equal(v->lesion_class, want);
        if (fabs(v->body_involvement_fraction - frac) > 0.06)
            fprintf(stderr, "%s: involvement %.3f spec %.3f\n", v->name,
                    v->body_involvement_fraction, frac);
        assert_true(fabs(v->body_involvement_fraction - frac) <= 0.05);
        if (vs->collapse_type)
            assert_true(fabs(v->height_loss_pct - vs->collapse_pct) < 1e-5);
    }
    sm_phantom_destroy(ph);
}

/* ---- spec files, truth JSON ---- */

static void test_sample_specs_and_errors(void **state)
{
    (void)state;
    const char *names[] = {"lytic", "blastic_mixed", "collapse", "subluxation", "osteoporotic"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/sample-data/%s.json", SM_SOURCE_DIR, names[i]);
        SmPhantomSpec s;
        sm_phantom_spec_default(&s);
        SmError *e = NULL;
        bool ok = sm_phantom_spec_load(&e, path, &s) && sm_phantom_spec_validate(&e, &s);
        if (!ok)
            fprintf(stderr, "%s\n", e->message);
        assert_true(ok);
        if (i == 0) {
            assert_int_equal(s.vertebra[L1].n_lesions, 1);
            assert_int_equal(s.vertebra[L1].lesion[0].type, SM_PHANTOM_LESION_LYTIC);
            assert_int_equal(s.vertebra[L1].lesion[0].extension, SM_PHANTOM_SIDE_LEFT);
            assert_true(s.vertebra[L1].lesion[0].cortical_breach);
            assert_true(fabs(s.vertebra[L1].lesion[0].center[1] - 0.45) < 1e-12);
        }
        if (i == 3)
            assert_true(fabs(s.vertebra[L3].translation_mm[1] + 6) < 1e-12);
        if (i == 4)
            assert_true(s.osteoporotic && s.osteoporotic_hu == 70);
    }
    char *dir = sm_test_tmpdir();
    assert_non_null(dir);
    static const struct { const char *json, *field; } bad[] = {
        {"{\"vertebrae\": {\"L2\": {\"collapse\": {\"type\": \"flat\", \"percent\": 3}}}}",
         "vertebrae.L2.collapse.type"},
        {"{\"vertebrae\": {\"L2\": {\"lesions\": [{\"type\": \"lytic\", \"size\": 3}]}}}",
         "vertebrae.L2.lesions[0].size"},
        {"{\"vertebrae\": {\"L2\": {\"lesions\": [{\"fraction\": 0.3}]}}}",
         "vertebrae.L2.lesions[0].type"},
        {"{\"vertebrae\": {\"L2\": {\"lesions\": [{\"type\": \"lytic\", \"placement\": \"up\"}]}}}",
         "vertebrae.L2.lesions[0].placement"},
        {"{\"vertebrae\": {\"L2\": {\"translation\": {\"direction\": \"up\", \"mm\": 3}}}}",
         "vertebrae.L2.translation"},
        {"{\"osteoporotic\": 1}", "osteoporotic"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/bad%zu.json", dir, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[i].json, f);
        fclose(f);
        SmPhantomSpec s;
        sm_phantom_spec_default(&s);
        SmError *e = NULL;
        assert_false(sm_phantom_spec_load(&e, path, &s));
        assert_non_null(e);
        assert_int_equal(e->code, SM_ERR_FORMAT);
        if (!strstr(e->message, bad[i].field) || !strstr(e->message, path))
            fail_msg("message '%s' does not name %s and the file", e->message, bad[i].field);
        sm_error_destroy(e);
    }
    /* validation: ranges and levels without a body or a disc below */
    SmPhantomSpec s;
    SmError *e = NULL;
    sm_phantom_spec_default(&s);
    add_lesion(&s, L2, SM_PHANTOM_LESION_LYTIC, 0.99);
    assert_false(sm_phantom_spec_validate(&e, &s));
    assert_int_equal(e->code, SM_ERR_USAGE);
    assert_non_null(strstr(e->message, "vertebrae.L2.lesions[0]"));
    sm_error_destroy(e);
    e = NULL;
    sm_phantom_spec_default(&s);
    s.vertebra[SM_PHANTOM_LEVEL_S1].translation_mm[1] = 4;
    assert_false(sm_phantom_spec_validate(&e, &s));
    assert_non_null(strstr(e->message, "vertebrae.S1"));
    sm_error_destroy(e);
    e = NULL;
    sm_phantom_spec_default(&s);
    s.vertebra[0].collapse_type = SM_PHANTOM_COLLAPSE_CRUSH;
    s.vertebra[0].collapse_pct = 20;
    assert_false(sm_phantom_spec_validate(&e, &s));
    assert_non_null(strstr(e->message, "C1"));
    sm_error_destroy(e);
    sm_test_rmrf(dir);
    free(dir);
}

static void test_truth_json_and_lesion_map(void **state)
{
    (void)state;
    char *dir = sm_test_tmpdir();
    assert_non_null(dir);
    SmPhantomSpec s;
    pathology_spec(&s);
    s.dims[0] = s.dims[1] = 64;
    s.pixel_mm = 2.0;
    s.slice_mm = 3.0;
    SmPhantom *ph = gen(&s);
    char out[1024], p[1200];
    snprintf(out, sizeof out, "%s/out", dir);
    SmError *e = NULL;
    assert_true(sm_phantom_write(&e, ph, out));
    snprintf(p, sizeof p, "%s/truth_lesions.nii.gz", out);
    SmVolume *lv = NULL;
    assert_true(sm_io_nifti_load(&e, p, &lv));
    assert_memory_equal(lv->dims, ph->lesions->dims, sizeof lv->dims);
    for (size_t i = 0; i < nvox(lv); i++)
        assert_int_equal((int)sm_volume_get(lv, i % lv->dims[0], (i / lv->dims[0]) % lv->dims[1],
                                            i / (lv->dims[0] * lv->dims[1])),
                         ((uint8_t *)ph->lesions->data)[i]);
    sm_volume_destroy(lv);
    snprintf(p, sizeof p, "%s/truth.json", out);
    json_error_t je;
    json_t *doc = json_load_file(p, 0, &je);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "schema")),
                        "spinemets.phantom-truth/2");
    json_t *vs = json_object_get(doc, "vertebrae");
    for (size_t i = 0; i < json_array_size(vs); i++) {
        json_t *v = json_array_get(vs, i);
        const SmPhantomVertebra *t = &ph->vertebrae[i];
        json_t *le = json_object_get(v, "lesion"), *si = json_object_get(v, "sins");
        assert_string_equal(json_string_value(json_object_get(le, "class")),
                            sm_sins_lesion_class_name(t->lesion_class));
        assert_true(fabs(json_real_value(json_object_get(le, "body_involvement_fraction")) -
                         t->body_involvement_fraction) < 1e-4);
        assert_int_equal(json_integer_value(json_object_get(le, "body_voxels")), t->body_voxels);
        if (t->lesion_class == SM_SINS_LESION_NONE)
            assert_true(json_is_null(json_object_get(si, "lesion_quality")));
        else
            assert_int_equal(json_integer_value(json_object_get(si, "lesion_quality")),
                             t->sins_lesion_quality);
        int sub = t->sins_location + (t->sins_lesion_quality > 0 ? t->sins_lesion_quality : 0) +
                  t->sins_alignment + t->sins_collapse + t->sins_posterolateral;
        assert_int_equal(json_integer_value(json_object_get(si, "imaging_subtotal")), sub);
        assert_int_equal(json_integer_value(json_array_get(json_object_get(si, "total_range"), 1)),
                         sub + 3);
        assert_true(fabs(json_real_value(json_object_get(v, "height_loss_pct")) -
                         t->height_loss_pct) < 1e-3);
    }
    /* the effective spec in truth.json reads back as the same pathology */
    char sp[1200];
    snprintf(sp, sizeof sp, "%s/spec_back.json", dir);
    assert_int_equal(json_dump_file(json_object_get(doc, "spec"), sp, 0), 0);
    SmPhantomSpec back;
    sm_phantom_spec_default(&back);
    bool ok = sm_phantom_spec_load(&e, sp, &back);
    if (!ok)
        fprintf(stderr, "%s\n", e->message);
    assert_true(ok);
    for (int l = 0; l < SM_PHANTOM_N_LEVELS; l++) {
        const SmPhantomVertebraSpec *a = &s.vertebra[l], *b = &back.vertebra[l];
        assert_int_equal(a->n_lesions, b->n_lesions);
        assert_int_equal(a->collapse_type, b->collapse_type);
        assert_true(fabs(a->collapse_pct - b->collapse_pct) < 1e-4);
        assert_true(fabs(a->translation_mm[1] - b->translation_mm[1]) < 1e-4);
        for (size_t k = 0; k < a->n_lesions; k++) {
            assert_int_equal(a->lesion[k].type, b->lesion[k].type);
            assert_int_equal(a->lesion[k].extension, b->lesion[k].extension);
            assert_int_equal(a->lesion[k].seed, b->lesion[k].seed);
            assert_int_equal(a->lesion[k].cortical_breach, b->lesion[k].cortical_breach);
        }
    }
    json_decref(doc);
    sm_phantom_destroy(ph);
    sm_test_rmrf(dir);
    free(dir);
}

/* The CLI draws the same pathology as the library call, and the truth records it. */
static void test_cli_random_pathology(void **state)
{
    (void)state;
    char *dir = sm_test_tmpdir();
    assert_non_null(dir);
    char out[1024], p[1200];
    snprintf(out, sizeof out, "%s/rnd", dir);
    char *argv[] = {"phantom", "--levels", "T12-L5", "--dims", "64x64", "--pixel", "2.0",
                    "--slice", "3", "--random-pathology", "4", "-o", out, NULL};
    assert_int_equal(sm_cmd_phantom(13, argv), 0);
    char *bad[] = {"phantom", "--random-pathology", "x", "-o", out, NULL};
    assert_int_equal(sm_cmd_phantom(5, bad), 2);
    SmPhantomSpec s;
    sm_phantom_spec_default(&s);
    assert_true(sm_phantom_levels_parse("T12-L5", &s.level_first, &s.level_last));
    sm_phantom_spec_randomize(&s, 4, 0.5, 0.3, 0.15);
    snprintf(p, sizeof p, "%s/truth.json", out);
    json_t *doc = json_load_file(p, 0, NULL);
    assert_non_null(doc);
    json_t *vs = json_object_get(json_object_get(doc, "spec"), "vertebrae");
    size_t n_patho = 0;
    for (int l = s.level_first; l <= s.level_last; l++) {
        json_t *v = json_object_get(vs, sm_phantom_level_name(l));
        size_t nl = v ? json_array_size(json_object_get(v, "lesions")) : 0;
        assert_int_equal(nl, s.vertebra[l].n_lesions);
        json_t *c = v ? json_object_get(v, "collapse") : NULL;
        assert_int_equal(c != NULL, s.vertebra[l].collapse_type != 0);
        n_patho += nl + (c != NULL);
    }
    assert_true(n_patho > 0);
    json_decref(doc);
    sm_test_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_genant),
        cmocka_unit_test(test_rules_sins),
        cmocka_unit_test(test_lesion_fractions_match_maps),
        cmocka_unit_test(test_collapse_heights_match_labels),
        cmocka_unit_test(test_translation_matches_centroids),
        cmocka_unit_test(test_focal_angles),
        cmocka_unit_test(test_osteoporotic),
        cmocka_unit_test(test_pathology_threads_identical),
        cmocka_unit_test(test_randomize),
        cmocka_unit_test(test_sample_specs_and_errors),
        cmocka_unit_test(test_truth_json_and_lesion_map),
        cmocka_unit_test(test_cli_random_pathology),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
