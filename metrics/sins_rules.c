/* Pure rule functions of SINS and Genant: the single place where their thresholds live. */
#include "sins_rules.h"

#include <math.h>
#include <stddef.h>

int sm_genant_grade(double loss_pct)
{
    if (isnan(loss_pct))
        return -1;
    if (loss_pct < SM_GENANT_MILD_PCT)
        return 0;
    if (loss_pct < SM_GENANT_MODERATE_PCT)
        return 1;
    if (loss_pct <= SM_GENANT_SEVERE_PCT)
        return 2;
    return 3;
}

int sm_sins_location_points(int v)
{
    if (v == 1 || v == 2 || v == 7 || v == 8 || v == 9)
        return 3; /* occiput-C2, C7-T2 */
    if (v >= 3 && v <= 6)
        return 2; /* C3-C6 */
    if (v >= 10 && v <= 17)
        return 1; /* T3-T10 */
    if (v == 18 || v == 19 || v == 20 || v == 28)
        return 3; /* T11-L1 (T13 belongs to the thoracolumbar junction) */
    if (v >= 21 && v <= 23)
        return 2; /* L2-L4 */
    if (v == 24 || v == 25 || v == 26)
        return 3; /* L5-S1 (L6 is the lumbosacral junction) */
    return -1;
}

int sm_sins_lesion_quality_points(int c)
{
    switch (c) {
    case SM_SINS_LESION_LYTIC:
        return 2;
    case SM_SINS_LESION_MIXED:
        return 1;
    case SM_SINS_LESION_BLASTIC:
        return 0;
    default:
        return -1;
    }
}

int sm_sins_collapse_points(double loss_pct, double involvement_fraction)
{
    if (isnan(loss_pct))
        return -1;
    if (loss_pct > SM_SINS_COLLAPSE_SEVERE_PCT)
        return 3;
    if (loss_pct >= SM_SINS_COLLAPSE_MIN_PCT)
        return 2;
    if (involvement_fraction > SM_SINS_INVOLVEMENT_MIN) /* false for NAN */
        return 1;
    return 0;
}

int sm_sins_alignment_class(double translation_mm, double kyphosis_deg, double scoliosis_deg)
{
    if (fabs(translation_mm) >= SM_SINS_TRANSLATION_MM)
        return SM_SINS_ALIGN_SUBLUXATION;
    if (fabs(kyphosis_deg) >= SM_SINS_DEFORMITY_DEG || fabs(scoliosis_deg) >= SM_SINS_DEFORMITY_DEG)
        return SM_SINS_ALIGN_DEFORMITY;
    if (isnan(translation_mm))
        return -1;
    return SM_SINS_ALIGN_NORMAL;
}

int sm_sins_alignment_class_points(int c)
{
    switch (c) {
    case SM_SINS_ALIGN_SUBLUXATION:
        return 4;
    case SM_SINS_ALIGN_DEFORMITY:
        return 2;
    case SM_SINS_ALIGN_NORMAL:
        return 0;
    default:
        return -1;
    }
}

int sm_sins_alignment_points(double translation_mm, double kyphosis_deg, double scoliosis_deg)
{
    return sm_sins_alignment_class_points(
        sm_sins_alignment_class(translation_mm, kyphosis_deg, scoliosis_deg));
}

int sm_sins_posterolateral_points(int side)
{
    switch (side) {
    case SM_SINS_SIDE_BILATERAL:
        return 3;
    case SM_SINS_SIDE_LEFT:
    case SM_SINS_SIDE_RIGHT:
        return 1;
    case SM_SINS_SIDE_NONE:
        return 0;
    default:
        return -1;
    }
}

const char *sm_sins_category_name(int total)
{
    if (total < 0 || total > 18)
        return NULL;
    if (total <= 6)
        return "stable";
    if (total <= 12)
        return "potentially unstable";
    return "unstable";
}

int sm_sins_categories(int lo, int hi, const char *names[3])
{
    int n = 0;
    const char *last = NULL;
    if (lo < 0)
        lo = 0;
    if (hi > 18)
        hi = 18;
    for (int t = lo; t <= hi; t++) {
        const char *c = sm_sins_category_name(t);
        if (c != last) {
            names[n++] = c;
            last = c;
        }
    }
    return n;
}

const char *sm_sins_lesion_class_name(int c)
{
    static const char *const n[] = {"none", "lytic", "blastic", "mixed"};
    return c >= 0 && c <= 3 ? n[c] : NULL;
}

const char *sm_sins_side_name(int s)
{
    static const char *const n[] = {"none", "left", "right", "bilateral"};
    return s >= 0 && s <= 3 ? n[s] : NULL;
}

const char *sm_sins_alignment_class_name(int c)
{
    static const char *const n[] = {"normal", "deformity", "subluxation"};
    return c >= 0 && c <= 2 ? n[c] : NULL;
}
