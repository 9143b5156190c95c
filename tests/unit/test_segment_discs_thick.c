/* Disc planes on thick slices through a kyphotic upper thoracic spine (docs/segmentation.md
 * step 6). On 2.4-3 mm slices a 3-4 mm upper thoracic disc between dense endplates is only
 * a notch in the endplates' ridge of the working-grid profile, and smoothing that profile
 * with a 2 mm Gaussian filled the notch. The chain then took the bodies' middles for discs,
 * and the levels below T2 were named one too low (random sweep case 1). Here the
 * phantoms are T1-T8 windows with strong kyphosis, and geometries and seeds that are not
 * the sweep's. Names are counted from a user anchor on T4's true body centre, so that only
 * the disc planes decide them; the first-rib anchor is the sweep's concern (on 3 mm
 * slices the top slice can cut the first rib). Every level must be named. T2-T7 lie
 * between two detected disc planes, so their geometry is the planes' test: body centroid
 * within 2 mm of the truth and body Dice at least 0.85. That is a loose bound (a plane in
 * a body's middle gives 0.4-0.7; the rib heads in the upper thoracic outline, a separate
 * weakness, cost T2 about 0.1). T1 and T8 end at the track's ends and are held to their
 * names only.
 * The disc planes themselves (from the segmentation notes): each plane between two bodies
 * within DISC_TILT_DEG of the truth's disc normal (the bisector of the two bodies' own
 * axes). On thick slices a 3-4 mm disc lies within one or two slices and the darkest
 * footprint barely depends on the tilt: the search leaned 15-30 degrees towards the
 * slices' plane or sideways out of a small body (sweep seeds 80808 case 1 and the default
 * case 17), where the axis smoothed over the column was within ~5 degrees (with the
 * +-20 degree search: 11-19 degrees off on three of these planes). */
#include "phantom.h"
#include "seg_score.h"
#include "sm_segment.h"
#include "sm_test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CENTROID_MM 2.0
#define BODY_DICE_LOOSE 0.85
#define DISC_TILT_DEG 10.0

typedef struct ThickCase {
    unsigned seed;
    double slice_mm, pixel_mm, kyphosis_deg;
    size_t nxy;
} ThickCase;

static const ThickCase CASES[] = {
    {101, 2.5, 0.90, 55.0, 230},
    {202, 2.8, 0.95, 48.0, 220},
    {303, 3.0, 0.85, 60.0, 250},
};

/* Generates the phantom, segments it named from a user anchor on T4's true body centre
 * (so only the disc planes decide the names) and scores it against the truth. */
static void run_anchored_t4(const SmPhantomSpec *spec, SmPhantom **ph, SmSpineSeg **seg,
                            SmTestLevelScore *sc)
{
    SmError *err = NULL;
    *ph = NULL;
    assert_true(sm_phantom_generate(&err, spec, ph));
    const SmPhantomVertebra *t4 = &(*ph)->vertebrae[3];
    assert_string_equal(t4->name, "T4");
    SmSegOptions o = {2, true, "T4", t4->body_centroid[2]};
    *seg = NULL;
    assert_true(sm_seg_spine_run(&err, (*ph)->ct, &o, seg));
    assert_true(sm_test_seg_score(*ph, *seg, sc));
}

static void run_case(const ThickCase *tc, int *bad)
{
    SmPhantomSpec spec;
    sm_phantom_spec_default(&spec);
    spec.seed = tc->seed;
    spec.level_first = sm_phantom_level_parse("T1");
    spec.level_last = sm_phantom_level_parse("T8");
    spec.thoracic_kyphosis_deg = tc->kyphosis_deg;
    spec.pixel_mm = tc->pixel_mm;
    spec.slice_mm = tc->slice_mm;
    spec.dims[0] = spec.dims[1] = tc->nxy;
    spec.dims[2] = 0;
    SmPhantom *ph = NULL;
    SmSpineSeg *seg = NULL;
    SmTestLevelScore sc[SM_PHANTOM_N_LEVELS];
    run_anchored_t4(&spec, &ph, &seg, sc);
    fprintf(stderr, "seed %u, %.2f mm slices, kyphosis %.0f deg:\n", tc->seed, tc->slice_mm,
            tc->kyphosis_deg);
    for (size_t q = 0; q < ph->n_vertebrae; q++) {
        /* T1 and T8 end at the track's ends: named only */
        bool inner = q > 0 && q + 1 < ph->n_vertebrae;
        bool ok = sc[q].named && (!inner || (sc[q].centroid_mm <= CENTROID_MM &&
                                             sc[q].body_dice >= BODY_DICE_LOOSE));
        fprintf(stderr, "  %-3s -> %-3s centroid %5.2f mm body Dice %.3f %s%s\n", sc[q].name,
                sc[q].best_label ? sm_seg_level_name(sc[q].best_label) : "-",
                sc[q].centroid_mm, sc[q].body_dice, ok ? "ok" : "BAD",
                inner ? "" : " (window end: name only)");
        *bad += !ok;
    }
    /* disc planes: "disc N: arc A mm, z Z mm, ..., normal (x y z), ...; CT disc D HU" */
    for (size_t nn = 0; nn < seg->notes.n; nn++) {
        const char *s = seg->notes.items[nn];
        int d;
        double arc, z, nx, ny, nz;
        if (sscanf(s, "disc %d: arc %lf mm, z %lf mm", &d, &arc, &z) != 3)
            continue;
        const char *pn = strstr(s, "normal (");
        if (!pn || sscanf(pn, "normal (%lf %lf %lf)", &nx, &ny, &nz) != 3)
            continue;
        /* the two bodies either side of the plane (truth end plates) */
        for (size_t q = 0; q + 1 < ph->n_vertebrae; q++) {
            const SmPhantomVertebra *up = &ph->vertebrae[q], *lo = &ph->vertebrae[q + 1];
            if (!(z <= up->endplate_inferior[2] + 3.0 && z >= lo->endplate_superior[2] - 3.0))
                continue;
            double tn[3], l = 0, dot = 0;
            for (int c = 0; c < 3; c++) {
                tn[c] = up->axis_superior[c] + lo->axis_superior[c];
                l += tn[c] * tn[c];
            }
            const double pnv[3] = {nx, ny, nz};
            for (int c = 0; c < 3; c++)
                dot += tn[c] / sqrt(l) * pnv[c];
            double ang = acos(fmin(1.0, fabs(dot))) * 180.0 / M_PI;
            bool ok = ang <= DISC_TILT_DEG;
            fprintf(stderr, "  disc %s/%s: normal %.1f deg off the truth %s\n", up->name,
                    lo->name, ang, ok ? "ok" : "BAD");
            *bad += !ok;
        }
    }
    sm_seg_spine_destroy(seg);
    sm_phantom_destroy(ph);
}

static void test_thick_kyphotic_thoracic(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++)
        run_case(&CASES[c], &bad);
    assert_int_equal(bad, 0);
}

/* Scoliotic upper thoracic windows on an oblique grid (issue 3): T1-T6, scoliosis 17 deg
 * with its apex at T4, kyphosis 26 deg, 0.62 mm pixels, 2.4 mm slices, the grid rotated 10
 * degrees about the body's long axis. Every disc valley is faint here (strengths 0.05-0.5
 * of the profile's range), and a body's dark middle gave valleys as faint as the real
 * T3/T4 disc (0.07 and 0.08 against a chain median of 0.20): the chain took them, split T3
 * (and T2) in two and named every level below wrong from the first-rib anchor. A disc
 * that weak whose two pieces are each shorter than a vertebra and together one spacing is
 * not a disc (docs/segmentation.md step 6); the real T3/T4 disc, as weak, has a whole
 * vertebra on either side and stays. Names counted from a user anchor on T4's true body
 * centre (only the disc planes decide them): every level named, and no disc plane more
 * than 2 mm inside a body (truth end plates; the window's ends excepted). */
static void run_scoliotic(unsigned seed, int *bad)
{
    SmPhantomSpec spec;
    sm_phantom_spec_default(&spec);
    spec.seed = seed;
    spec.level_first = sm_phantom_level_parse("T1");
    spec.level_last = sm_phantom_level_parse("T6");
    spec.pixel_mm = 0.62;
    spec.slice_mm = 2.4;
    spec.oblique_deg = -10.0;
    spec.oblique_axis = 2;
    spec.dims[0] = spec.dims[1] = 266;
    spec.dims[2] = 0;
    spec.thoracic_kyphosis_deg = 26.0;
    spec.scoliosis_deg = 17.0;
    spec.scoliosis_apex = sm_phantom_level_parse("T4");
    SmPhantom *ph = NULL;
    SmSpineSeg *seg = NULL;
    SmTestLevelScore sc[SM_PHANTOM_N_LEVELS];
    run_anchored_t4(&spec, &ph, &seg, sc);
    fprintf(stderr, "scoliotic T1-T6, seed %u:\n", seed);
    for (size_t q = 0; q < ph->n_vertebrae; q++) {
        bool ok = !sc[q].whole || sc[q].named;
        fprintf(stderr, "  %-3s -> %-3s body Dice %.3f %s\n", sc[q].name,
                sc[q].best_label ? sm_seg_level_name(sc[q].best_label) : "-", sc[q].body_dice,
                ok ? "ok" : "BAD");
        *bad += !ok;
    }
    for (size_t nn = 0; nn < seg->notes.n; nn++) {
        int d;
        double arc, z;
        if (sscanf(seg->notes.items[nn], "disc %d: arc %lf mm, z %lf mm", &d, &arc, &z) != 3)
            continue;
        for (size_t q = 0; q < ph->n_vertebrae; q++) {
            const SmPhantomVertebra *v = &ph->vertebrae[q];
            if (z > v->endplate_inferior[2] + 2.0 && z < v->endplate_superior[2] - 2.0) {
                fprintf(stderr, "  disc plane %d at z %.1f mm inside %s's body (%.1f-%.1f) BAD\n",
                        d, z, v->name, v->endplate_inferior[2], v->endplate_superior[2]);
                (*bad)++;
            }
        }
    }
    sm_seg_spine_destroy(seg);
    sm_phantom_destroy(ph);
}

static void test_scoliotic_weak_discs(void **state)
{
    (void)state;
    int bad = 0;
    static const unsigned seeds[] = {2001, 2010};
    for (size_t c = 0; c < sizeof seeds / sizeof seeds[0]; c++)
        run_scoliotic(seeds[c], &bad);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thick_kyphotic_thoracic),
        cmocka_unit_test(test_scoliotic_weak_discs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
