/* Thoracic windows on narrow fields of view (issue 3: every level named right whenever an
 * anchor is in view, and no anchor faked where none is). A targeted spine reconstruction
 * of ~120 mm cuts every rib short of its true reach: beside an upper thoracic vertebra the
 * rib leaves the field (or breaks up at its edge) at 49-61 mm from the canal, so a vertebra
 * can look rib-free although it carries a rib. The last-rib (T12) anchor must not come from
 * such a vertebra. Expectations come from the phantom truth only:
 *  - thoracic windows T1..T8 / T2..T7 / T4..T9 on 120-125 mm fields: the truth has no T12
 *    with L1 below in view, so the column must not be anchored on "last rib-bearing
 *    vertebra"; if it is anchored at all, every whole vertebra is named as the truth, and if
 *    not, every vertebra carries a low confidence (<= 0.3: the names are a guess);
 *  - thoracolumbar windows T11..S1 on the same fields: the T12 rib is seen (the lowest rib
 *    reaches past 55 mm within 60 mm of field) and L1 below shows no lateral bone at all:
 *    the last-rib anchor is used, agrees with the sacrum, and every level is named;
 *  - windows from T1 (the truth's first level; the first rib is in view): the first rib
 *    anchors (its shaft turns forward beside the body within 55 mm of the canal, the
 *    second rib's runs back first, though the second leaves the field before it is seen
 *    to be longer) and every whole vertebra is named as the truth; windows from T2 or
 *    lower (no first rib in view) never use a first-rib anchor.
 * Labels identical at 1 and 2 threads on every case. "--notes" prints the segmentation
 * notes, "--case N" runs case N only. */
#include "phantom.h"
#include "seg_score.h"
#include "sm_segment.h"
#include "sm_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_only = -1;
static bool g_notes = false;

typedef struct Case {
    const char *first, *last;
    const char *position;
    double pixel_mm, slice_mm, oblique_deg;
    int oblique_axis;
    size_t nxy;
    uint64_t seed;
    double kyphosis_deg;  /* thoracic kyphosis (0: the phantom default) */
    double scoliosis_deg; /* with its apex at scoliosis_apex */
    const char *scoliosis_apex;
    bool ffs_standard_axes;
    double noise_hu; /* noise sigma (0: the phantom default) */
    double cervical_lordosis_deg, lumbar_lordosis_deg; /* 0: the phantom defaults */
} Case;

/* fields of view 121-125 mm (nxy x pixel_mm); then three more: a steep kyphosis (59 deg,
 * T1 tilted ~37 deg) on a 192 mm field whose top cuts the first ribs ~55 mm from the canal
 * while the second ribs are whole (the reach ratio cannot be measured; the first rib's
 * curve must anchor); T6-T12 on 124 mm, T7 and T6 showing no lateral bone at all; T4-T12
 * on 139 mm cut ~40 mm behind T4/T5's bodies (their ribs leave the field behind the spine),
 * with a scoliosis. The last two must not be named from a false T1. Then three scoliotic
 * windows (15-18 deg, apex T4/T5) on 160-240 mm fields: T2-T10 and T2-T9, where the
 * scoliosis shortens one second rib to ~0.79-0.80 of the third's reach (the reach ratio
 * alone took it for a first rib: it runs back and out, it must not anchor), and T1-T6,
 * where it lifts one first rib's forward turn above the field and the other side's first
 * rib reads ~50 mm (short, but turning forward at once beside the body: it must anchor).
 * Then T1-T6 on 220 mm, scoliosis 16 deg at T4, 8.9 deg oblique (the parameters of sweep
 * 42424/29), where the left first rib's front end lies across the midline, 20 mm in front
 * of the canal beside the body, between the right first and second ribs' crossings (it must
 * not be taken for the rib below the first: the window must anchor on the first rib), and
 * the same column as T2-T7 (no first rib in view: no first-rib anchor). */
static const Case CASES[] = {
    {"T1", "T6", "HFS", 1.00, 1.8, -8.5, 2, 124, 27247, 0, 0, NULL, false, 0, 0, 0},
    {"T1", "T8", "FFS", 0.95, 2.4, 0.0, 0, 128, 6644, 0, 0, NULL, false, 0, 0, 0},
    {"T2", "T7", "HFS", 0.97, 1.2, 0.0, 0, 126, 311, 0, 0, NULL, false, 0, 0, 0},
    {"T4", "T9", "FFS", 0.92, 2.0, 5.0, 1, 134, 4711, 0, 0, NULL, false, 0, 0, 0},
    {"T11", "S1", "HFS", 0.95, 1.7, -4.8, 2, 127, 24702, 0, 0, NULL, false, 0, 0, 0},
    {"T11", "S1", "FFS", 0.72, 1.3, 0.0, 0, 170, 2467, 0, 0, NULL, false, 0, 0, 0},
    {"T1", "T7", "FFS", 0.9409, 2.5618, 8.6425, 0, 204, 16136, 59.2112, 0, NULL, true, 18.36, 0, 0},
    {"T6", "T12", "HFS", 0.98, 2.75, 0.0, 0, 127, 30009, 44.0, 0, NULL, false, 0, 0, 0},
    {"T4", "T12", "FFS", 0.97, 2.84, 4.3, 0, 143, 77340, 21.0, -20.0, "T10", false, 0, 0, 0},
    {"T2", "T10", "FFS", 0.75, 2.5, 0.0, 0, 320, 1001, 22.0, 15.0, "T4", false, 0, 0, 0},
    {"T2", "T9", "HFS", 0.74, 2.0, 0.0, 0, 320, 1003, 25.0, 18.0, "T5", false, 0, 0, 0},
    {"T1", "T6", "HFS", 0.60, 2.4, 0.0, 0, 266, 2005, 26.0, 17.0, "T4", false, 0, 0, 0},
    {"T1", "T6", "HFS", 0.6871, 0.9735, -8.9041, 2, 320, 8040, 44.1543, 15.9788, "T4", false, 9.9731, 17.716, 52.6297},
    {"T2", "T7", "HFS", 0.6871, 0.9735, -8.9041, 2, 320, 8040, 44.1543, 15.9788, "T4", false, 9.9731, 17.716, 52.6297},
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

static bool has_text(const SmStrList *l, const char *s)
{
    for (size_t q = 0; q < l->n; q++)
        if (strstr(l->items[q], s))
            return true;
    return false;
}

static const SmVertebra *record_of(const SmSpineSeg *seg, int label)
{
    for (size_t r = 0; r < seg->n_vertebrae; r++)
        if (seg->vertebrae[r].verse_label == label)
            return &seg->vertebrae[r];
    return NULL;
}

static int run_case(int c)
{
    const Case *k = &CASES[c];
    SmPhantomSpec sp;
    sm_phantom_spec_default(&sp);
    sp.seed = k->seed;
    sp.level_first = sm_phantom_level_parse(k->first);
    sp.level_last = sm_phantom_level_parse(k->last);
    snprintf(sp.patient_position, sizeof sp.patient_position, "%s", k->position);
    sp.pixel_mm = k->pixel_mm;
    sp.slice_mm = k->slice_mm;
    sp.oblique_deg = k->oblique_deg;
    sp.oblique_axis = k->oblique_axis;
    sp.dims[0] = sp.dims[1] = k->nxy;
    sp.dims[2] = 0;
    if (k->kyphosis_deg > 0)
        sp.thoracic_kyphosis_deg = k->kyphosis_deg;
    if (k->scoliosis_apex) {
        sp.scoliosis_deg = k->scoliosis_deg;
        sp.scoliosis_apex = sm_phantom_level_parse(k->scoliosis_apex);
    }
    if (k->cervical_lordosis_deg > 0)
        sp.cervical_lordosis_deg = k->cervical_lordosis_deg;
    if (k->lumbar_lordosis_deg > 0)
        sp.lumbar_lordosis_deg = k->lumbar_lordosis_deg;
    sp.ffs_standard_axes = k->ffs_standard_axes;
    if (k->noise_hu > 0)
        sp.noise_sigma_hu = k->noise_hu;
    snprintf(sp.series_description, sizeof sp.series_description, "thoracic window %d", c);
    SmError *err = NULL;
    SmPhantom *ph = NULL;
    assert_true(sm_phantom_generate(&err, &sp, &ph));
    SmSpineSeg *seg[2] = {NULL, NULL};
    for (int t = 0; t < 2; t++) {
        SmSegOptions o = {t + 1, false, NULL, 0};
        assert_true(sm_seg_spine_run(&err, ph->ct, &o, &seg[t]));
    }
    const SmVolume *l1 = seg[0]->labels, *l2 = seg[1]->labels;
    size_t nvox = l1->dims[0] * l1->dims[1] * l1->dims[2];
    assert_int_equal(memcmp(l1->data, l2->data, nvox), 0);
    assert_int_equal(seg[0]->n_vertebrae, seg[1]->n_vertebrae);
    const SmSpineSeg *s = seg[1];
    if (g_notes)
        for (size_t q = 0; q < s->notes.n; q++)
            fprintf(stderr, "note: %s\n", s->notes.items[q]);
    SmTestLevelScore sc[SM_PHANTOM_N_LEVELS];
    assert_true(sm_test_seg_score(ph, s, sc));
    bool lumbar_in_view = sp.level_last >= sm_phantom_level_parse("L1");
    bool t1_in_view = sp.level_first == sm_phantom_level_parse("T1");
    bool t12_used = false, anchored = false, first_rib_used = false;
    for (size_t q = 0; q < s->anchors.n; q++) {
        const char *a = s->anchors.items[q];
        if (strstr(a, "disagrees") || !strncmp(a, "none", 4))
            continue;
        anchored = true;
        t12_used |= strstr(a, "last rib-bearing vertebra") != NULL;
        first_rib_used |= strstr(a, "first rib") != NULL;
    }
    fprintf(stderr, "case %d: %s-%s %s, field %.0f mm, anchors:", c, k->first, k->last,
            k->position, (double)k->nxy * k->pixel_mm);
    for (size_t q = 0; q < s->anchors.n; q++)
        fprintf(stderr, " [%s]", s->anchors.items[q]);
    fprintf(stderr, "\n");
    int fails = 0;
    if (!lumbar_in_view && t12_used) {
        fprintf(stderr, "  last-rib anchor used without T12 and L1 in view\n");
        fails++;
    }
    if (lumbar_in_view && (!has_text(&s->anchors, "last rib-bearing vertebra = T12") ||
                           has_text(&s->anchors, "T12 (disagrees"))) {
        fprintf(stderr, "  last-rib anchor not used (or disagreeing) with T12 and L1 in view\n");
        fails++;
    }
    if (t1_in_view && !first_rib_used) {
        fprintf(stderr, "  first rib in view (window from T1) but not used as the anchor\n");
        fails++;
    }
    if (!t1_in_view && first_rib_used) {
        fprintf(stderr, "  first-rib anchor used without the first rib in view\n");
        fails++;
    }
    for (size_t q = 0; q < ph->n_vertebrae; q++) {
        const SmVertebra *rec = sc[q].best_label ? record_of(s, sc[q].best_label) : NULL;
        bool name_ok = sc[q].named;
        bool ok = !sc[q].whole || (anchored ? name_ok : (rec && rec->confidence <= 0.3));
        fprintf(stderr, "  %-4s -> %-4s conf %.2f %s\n", sc[q].name,
                sc[q].best_label ? sm_seg_level_name(sc[q].best_label) : "-",
                rec ? rec->confidence : NAN, ok ? "ok" : "BAD");
        if (!ok)
            fails++;
    }
    sm_seg_spine_destroy(seg[0]);
    sm_seg_spine_destroy(seg[1]);
    sm_phantom_destroy(ph);
    return fails;
}

static void test_thoracic_windows(void **state)
{
    (void)state;
    int fails = 0;
    for (int c = 0; c < N_CASES; c++)
        if (g_only < 0 || g_only == c)
            fails += run_case(c);
    assert_int_equal(fails, 0);
}

int main(int argc, char **argv)
{
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--case") && a + 1 < argc)
            g_only = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--notes"))
            g_notes = true;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thoracic_windows),
    };
    return cmocka_run_group_tests_name("thoracic windows on narrow fields", tests, NULL, NULL);
}
