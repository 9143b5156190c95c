/* Segmentation on generated phantoms with known truth: every level named, body centroids
 * and body Dice against the truth sub-regions, identical output at 1 and 2 threads. */
#include "phantom.h"
#include "seg_score.h"
#include "sm_segment.h"
#include "sm_test.h"

#include <math.h>
#include <string.h>

typedef struct Score {
    int named;            /* truth vertebrae (with a body) whose level was found */
    int with_body;
    double worst_centroid_mm; /* over levels in [first, last] */
    double worst_body_dice;
} Score;

/* Compares seg with the phantom truth for VerSe ids in [first, last]. */
static Score score(const SmPhantom *ph, const SmSpineSeg *seg, int first, int last)
{
    Score s = {0, 0, 0, 1};
    size_t n = sm_volume_n_voxels(ph->ct);
    const uint8_t *tl = ph->labels->data, *ts = ph->subregions->data;
    const uint8_t *pl = seg->labels->data, *ps = seg->subregions->data;
    for (size_t q = 0; q < ph->n_vertebrae; q++) {
        const SmPhantomVertebra *tv = &ph->vertebrae[q];
        if (!tv->has_body || tv->verse_id < first || tv->verse_id > last)
            continue;
        s.with_body++;
        const SmVertebra *pv = NULL;
        for (size_t v = 0; v < seg->n_vertebrae; v++)
            if (seg->vertebrae[v].verse_label == tv->verse_id)
                pv = &seg->vertebrae[v];
        if (!pv)
            continue;
        s.named++;
        double d = 0;
        for (int c = 0; c < 3; c++)
            d += (pv->centroid_lps[c] - tv->body_centroid[c]) *
                 (pv->centroid_lps[c] - tv->body_centroid[c]);
        d = sqrt(d);
        if (d > s.worst_centroid_mm)
            s.worst_centroid_mm = d;
        size_t a = 0, b = 0, ab = 0;
        for (size_t v = 0; v < n; v++) {
            bool t = tl[v] == tv->verse_id && ts[v] == SM_PHANTOM_SUB_BODY;
            bool p = pl[v] == tv->verse_id && ps[v] == SM_SUB_BODY;
            a += t;
            b += p;
            ab += t && p;
        }
        double dice = a + b ? 2.0 * (double)ab / (double)(a + b) : 0;
        if (dice < s.worst_body_dice)
            s.worst_body_dice = dice;
        fprintf(stderr, "  %s: body centroid error %.2f mm, body Dice %.3f, confidence %.2f\n",
                tv->name, d, dice, pv->confidence);
    }
    return s;
}

static SmPhantom *make(const char *sample)
{
    SmPhantomSpec spec;
    sm_phantom_spec_default(&spec);
    SmError *err = NULL;
    if (sample) {
        char path[1024];
        snprintf(path, sizeof path, "%s/sample-data/%s", SM_SOURCE_DIR, sample);
        if (!sm_phantom_spec_load(&err, path, &spec)) {
            fprintf(stderr, "%s\n", err->message);
            sm_error_destroy(err);
            return NULL;
        }
    }
    SmPhantom *ph = NULL;
    if (!sm_phantom_generate(&err, &spec, &ph)) {
        fprintf(stderr, "%s\n", err->message);
        sm_error_destroy(err);
        return NULL;
    }
    return ph;
}

/* Default lumbar phantom (T10-S1, sacrum and ribs): levels, centroids, body Dice, and
 * identical labels and sub-regions at 1 and 2 threads. */
static void test_lumbar_phantom(void **state)
{
    (void)state;
    SmPhantom *ph = make(NULL);
    assert_non_null(ph);
    SmError *err = NULL;
    SmSegOptions o1 = {1, false, NULL, 0}, o2 = {2, false, NULL, 0};
    SmSpineSeg *s1 = NULL, *s2 = NULL;
    assert_true(sm_seg_spine_run(&err, ph->ct, &o1, &s1));
    assert_true(sm_seg_spine_run(&err, ph->ct, &o2, &s2));
    size_t n = sm_volume_n_voxels(ph->ct);
    assert_memory_equal(s1->labels->data, s2->labels->data, n);
    assert_memory_equal(s1->subregions->data, s2->subregions->data, n);
    assert_int_equal(s1->n_vertebrae, s2->n_vertebrae);
    Score sc = score(ph, s2, SM_VERSE_T1, SM_VERSE_L5);
    assert_int_equal(sc.named, sc.with_body);
    assert_true(sc.worst_centroid_mm <= 2.0);
    assert_true(sc.worst_body_dice >= 0.90);
    /* the S1 record is the S1 body (truth: the S1 body only), not the whole sacrum; on
     * target since its footprint is measured (L5-sized, centred on the sacral bone and
     * the canal, bottom at its inferior end plate): was 0.92 held to 0.85 */
    Score s1s = score(ph, s2, SM_VERSE_SACRUM, SM_VERSE_SACRUM);
    assert_int_equal(s1s.named, 1);
    assert_true(s1s.worst_centroid_mm <= 2.0);
    assert_true(s1s.worst_body_dice >= 0.90);
    /* the sacrum is found and named */
    bool sacrum = false;
    for (size_t v = 0; v < s2->n_vertebrae; v++)
        sacrum |= s2->vertebrae[v].verse_label == SM_VERSE_SACRUM;
    assert_true(sacrum);
    /* canal centreline inside the field of view, superior to inferior */
    assert_true(s2->n_canal > 10);
    assert_true(s2->canal_lps[0][2] > s2->canal_lps[s2->n_canal - 1][2]);
    sm_seg_spine_destroy(s1);
    sm_seg_spine_destroy(s2);
    sm_phantom_destroy(ph);
}

/* The sample phantoms: every level with a body named (anchors: sacrum, ribs, C2); in
 * [acc_first, acc_last] also body centroid <= 2 mm and body Dice >= 0.90. */
static void check_sample(const char *sample, int first, int last, int acc_first, int acc_last)
{
    SmPhantom *ph = make(sample);
    assert_non_null(ph);
    SmError *err = NULL;
    SmSegOptions o = {2, false, NULL, 0};
    SmSpineSeg *seg = NULL;
    assert_true(sm_seg_spine_run(&err, ph->ct, &o, &seg));
    fprintf(stderr, "%s:\n", sample);
    Score sc = score(ph, seg, first, last);
    assert_int_equal(sc.named, sc.with_body);
    Score acc = score(ph, seg, acc_first, acc_last);
    assert_int_equal(acc.named, acc.with_body);
    assert_true(acc.worst_centroid_mm <= 2.0);
    assert_true(acc.worst_body_dice >= 0.90);
    sm_seg_spine_destroy(seg);
    sm_phantom_destroy(ph);
}

static void test_feet_first_oblique(void **state)
{
    (void)state;
    /* L1-L5 and the S1 body (0.878 before its footprint was measured) */
    check_sample("feet_first_oblique.json", 1, 26, SM_VERSE_L1, SM_VERSE_SACRUM);
}

static void test_scoliosis(void **state)
{
    (void)state;
    check_sample("scoliosis.json", 1, 26, SM_VERSE_T1, SM_VERSE_L5);
}

static void test_cervical(void **state)
{
    (void)state;
    /* C2 (body + dens, C1 split at the atlanto-dental joint) on target; T1 too since its
     * outline is held to C7's width (rib heads; 0.900 before); T2 (partial) is below the
     * Dice target: see docs */
    check_sample("cervical.json", 1, 26, 2, SM_VERSE_T1);
}

static bool has_anchor(const SmSpineSeg *seg, const char *prefix)
{
    for (size_t q = 0; q < seg->anchors.n; q++)
        if (!strncmp(seg->anchors.items[q], prefix, strlen(prefix)))
            return true;
    return false;
}

/* Thoracic T1-T12 only (no rib-free vertebra, no sacrum, no C2): named from the first
 * rib; every level right; bodies T3-T12 on target (T2 0.90), and T1's too: without C7 in
 * view its outline is held to the other rib-bearing levels' width (rib heads; 0.827
 * before, 0.903 with it). */
static void test_thoracic_first_rib(void **state)
{
    (void)state;
    SmPhantom *ph = make("thoracic.json");
    assert_non_null(ph);
    SmError *err = NULL;
    SmSegOptions o = {2, false, NULL, 0};
    SmSpineSeg *seg = NULL;
    assert_true(sm_seg_spine_run(&err, ph->ct, &o, &seg));
    assert_true(has_anchor(seg, "first rib"));
    assert_false(has_anchor(seg, "none"));
    Score all = score(ph, seg, SM_VERSE_T1, SM_VERSE_T12);
    assert_int_equal(all.named, 12);
    assert_true(all.worst_centroid_mm <= 2.0);
    Score acc = score(ph, seg, SM_VERSE_T1 + 2, SM_VERSE_T12);
    assert_true(acc.worst_body_dice >= 0.90);
    Score t1 = score(ph, seg, SM_VERSE_T1, SM_VERSE_T1);
    assert_true(t1.worst_body_dice >= 0.90);
    for (size_t v = 0; v < seg->n_vertebrae; v++)
        if (seg->vertebrae[v].verse_label == SM_VERSE_T1)
            assert_true(seg->vertebrae[v].confidence >= 0.75);
    sm_seg_spine_destroy(seg);
    sm_phantom_destroy(ph);
}

/* Spec variants not used to set any constant: a neck-to-upper-chest field (C5-T5, ribs
 * leaving the bottom of the field: no false T12) is named from the first rib; a field
 * starting at T2 (its rib is the topmost) must not claim a first rib. */
static void test_rib_anchor_variants(void **state)
{
    (void)state;
    SmPhantomSpec spec;
    sm_phantom_spec_default(&spec);
    spec.seed = 9;
    spec.level_first = sm_phantom_level_parse("C5");
    spec.level_last = sm_phantom_level_parse("T5");
    spec.dims[0] = spec.dims[1] = 260;
    spec.dims[2] = 0;
    spec.pixel_mm = 0.8;
    spec.slice_mm = 2.0;
    spec.noise_sigma_hu = 12;
    spec.oblique_deg = 5;
    spec.oblique_axis = 1;
    SmError *err = NULL;
    SmPhantom *ph = NULL;
    SmSpineSeg *seg = NULL;
    assert_true(sm_test_phantom_segment(&err, &spec, &ph, &seg));
    assert_true(has_anchor(seg, "first rib"));
    assert_false(has_anchor(seg, "last rib"));
    Score sc = score(ph, seg, 5, SM_VERSE_T1 + 4);
    assert_int_equal(sc.named, sc.with_body);
    assert_true(sc.worst_centroid_mm <= 2.0);
    sm_seg_spine_destroy(seg);
    sm_phantom_destroy(ph);

    sm_phantom_spec_default(&spec);
    spec.seed = 5;
    spec.level_first = sm_phantom_level_parse("T2");
    spec.level_last = sm_phantom_level_parse("T10");
    spec.dims[0] = spec.dims[1] = 300;
    spec.dims[2] = 0;
    spec.pixel_mm = 1.0;
    spec.slice_mm = 3.0;
    spec.noise_sigma_hu = 15;
    spec.thoracic_kyphosis_deg = 40;
    assert_true(sm_test_phantom_segment(&err, &spec, &ph, &seg));
    assert_false(has_anchor(seg, "first rib"));
    assert_false(has_anchor(seg, "C2"));
    assert_false(has_anchor(seg, "last rib"));
    sm_seg_spine_destroy(seg);
    sm_phantom_destroy(ph);
}

/* A field starting at C2 (C1 not in view): the dens rises more than 10 mm above the end
 * of the canal track and belongs to C2's body (phantom truth: body + dens). Spec not used
 * to set any constant (the rule was found on random sweep cases 4 and 8). */
static void test_c2_field_start(void **state)
{
    (void)state;
    SmPhantomSpec spec;
    sm_phantom_spec_default(&spec);
    spec.seed = 77;
    spec.level_first = sm_phantom_level_parse("C2");
    spec.level_last = sm_phantom_level_parse("T1");
    spec.dims[0] = spec.dims[1] = 240;
    spec.dims[2] = 0;
    spec.pixel_mm = 0.8;
    spec.slice_mm = 1.5;
    spec.noise_sigma_hu = 12;
    SmError *err = NULL;
    SmPhantom *ph = NULL;
    SmSpineSeg *seg = NULL;
    assert_true(sm_test_phantom_segment(&err, &spec, &ph, &seg));
    Score sc = score(ph, seg, SM_VERSE_C1 + 1, SM_VERSE_C1 + 1);
    assert_int_equal(sc.named, 1);
    assert_true(sc.worst_centroid_mm <= 2.0);
    assert_true(sc.worst_body_dice >= 0.90);
    sm_seg_spine_destroy(seg);
    sm_phantom_destroy(ph);
}

/* Windows with no anchor in view (no C2, rib or sacrum) are named by a guess, and the guess
 * must at least be the right region: a rib-free neck field below C2 (C3-C6) reads cervical
 * from its wide canal, a rib-free lumbar field above the sacrum (L1-L4) lumbar. Specs not
 * used to set any constant. */
static void test_unanchored_region(void **state)
{
    (void)state;
    static const char *const win[2][2] = {{"C3", "C6"}, {"L1", "L4"}};
    for (int w = 0; w < 2; w++) {
        SmPhantomSpec spec;
        sm_phantom_spec_default(&spec);
        spec.seed = 31 + (uint64_t)w;
        spec.level_first = sm_phantom_level_parse(win[w][0]);
        spec.level_last = sm_phantom_level_parse(win[w][1]);
        spec.dims[0] = spec.dims[1] = w == 0 ? 180 : 260;
        spec.dims[2] = 0;
        spec.pixel_mm = w == 0 ? 0.7 : 0.9;
        spec.slice_mm = w == 0 ? 2.0 : 2.5;
        spec.noise_sigma_hu = 15;
        SmError *err = NULL;
        SmPhantom *ph = NULL;
        SmSpineSeg *seg = NULL;
        assert_true(sm_test_phantom_segment(&err, &spec, &ph, &seg));
        assert_true(seg->anchors.n > 0 && !strncmp(seg->anchors.items[0], "none", 4));
        int lo = w == 0 ? SM_VERSE_C1 + 1 : SM_VERSE_L1, hi = w == 0 ? SM_VERSE_C7 : SM_VERSE_L5;
        size_t n = 0;
        for (size_t v = 0; v < seg->n_vertebrae; v++) {
            int lab = seg->vertebrae[v].verse_label;
            print_message("%s-%s window: %s (confidence %.2f)\n", win[w][0], win[w][1],
                          sm_seg_level_name(lab), seg->vertebrae[v].confidence);
            assert_true(lab >= lo && lab <= hi);
            assert_true(seg->vertebrae[v].confidence <= 0.3);
            n++;
        }
        assert_true(n >= 4);
        sm_seg_spine_destroy(seg);
        sm_phantom_destroy(ph);
    }
}

/* A user anchor overrides the anatomy: the vertebra at the L3 centroid called L2 shifts
 * every name by one. */
static void test_user_anchor(void **state)
{
    (void)state;
    SmPhantom *ph = make(NULL);
    assert_non_null(ph);
    double z = NAN;
    for (size_t q = 0; q < ph->n_vertebrae; q++)
        if (ph->vertebrae[q].verse_id == 22)
            z = ph->vertebrae[q].body_centroid[2];
    SmError *err = NULL;
    SmSegOptions o = {2, true, "L2", z};
    SmSpineSeg *seg = NULL;
    assert_true(sm_seg_spine_run(&err, ph->ct, &o, &seg));
    bool found = false;
    for (size_t v = 0; v < seg->n_vertebrae; v++)
        if (seg->vertebrae[v].verse_label == 21) {
            assert_true(fabs(seg->vertebrae[v].centroid_lps[2] - z) < 5.0);
            found = true;
        }
    assert_true(found);
    sm_seg_spine_destroy(seg);
    sm_phantom_destroy(ph);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lumbar_phantom),
        cmocka_unit_test(test_feet_first_oblique),
        cmocka_unit_test(test_scoliosis),
        cmocka_unit_test(test_cervical),
        cmocka_unit_test(test_user_anchor),
        cmocka_unit_test(test_thoracic_first_rib),
        cmocka_unit_test(test_rib_anchor_variants),
        cmocka_unit_test(test_c2_field_start),
        cmocka_unit_test(test_unanchored_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
