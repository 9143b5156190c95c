/* The written rules of SINS (imaging components) and the Genant grade, shared by the
 * metrics and the phantom truth so both score by exactly the same thresholds. */
#ifndef SM_SINS_RULES_H
#define SM_SINS_RULES_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Thresholds (docs/metrics.md, docs/phantom.md). Percentages are height loss versus the
 * expected (pre-morbid) height, 0..100. */
#define SM_GENANT_MILD_PCT 20.0      /* grade 1 from 20 % (inclusive) */
#define SM_GENANT_MODERATE_PCT 25.0  /* grade 2 from 25 % (inclusive) up to 40 % (inclusive) */
#define SM_GENANT_SEVERE_PCT 40.0    /* grade 3 strictly above 40 % */
#define SM_SINS_COLLAPSE_MIN_PCT 20.0 /* "collapse" present from 20 % loss (= Genant >= 1) */
#define SM_SINS_COLLAPSE_SEVERE_PCT 50.0 /* "> 50 % collapse": strictly greater scores 3 */
#define SM_SINS_INVOLVEMENT_MIN 0.5  /* "> 50 % of the body involved": strictly greater */
#define SM_SINS_TRANSLATION_MM 3.0   /* subluxation/translation from 3 mm (inclusive) */
#define SM_SINS_DEFORMITY_DEG 10.0   /* de novo kyphosis or scoliosis from 10 deg (inclusive) */

/* Lesion classes (same numbering as SmLesionClass in sm_metrics.h). */
enum { SM_SINS_LESION_NONE = 0, SM_SINS_LESION_LYTIC = 1, SM_SINS_LESION_BLASTIC = 2,
       SM_SINS_LESION_MIXED = 3 };
/* Sides (same numbering as SmSide in sm_metrics.h). */
enum { SM_SINS_SIDE_NONE = 0, SM_SINS_SIDE_LEFT = 1, SM_SINS_SIDE_RIGHT = 2,
       SM_SINS_SIDE_BILATERAL = 3 };
/* Alignment classes (same numbering as SmAlignClass in sm_metrics.h). */
enum { SM_SINS_ALIGN_NORMAL = 0, SM_SINS_ALIGN_DEFORMITY = 1, SM_SINS_ALIGN_SUBLUXATION = 2 };

/* All functions are pure and thread-safe; -1 means "cannot be scored" (NAN input or an
 * unknown code). */

/* Genant semi-quantitative grade from the worst height loss: < 20 % -> 0, [20, 25) -> 1,
 * [25, 40] -> 2, > 40 -> 3. Negative loss (taller than expected) -> 0. NAN -> -1. */
int sm_genant_grade(double loss_pct);

/* SINS location from a VerSe label (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum,
 * 28 T13): junctional (C1-C2, C7-T2, T11-L1, L5-S1, and L6/T13) 3, mobile (C3-C6,
 * L2-L4) 2, semi-rigid (T3-T10) 1. The sacrum label (26) is scored as S1 (junctional, 3):
 * the pipeline only labels S1 as sacrum; S2-S5 (rigid, 0) are not separate labels. */
int sm_sins_location_points(int verse_label);

/* SINS bone lesion quality: lytic 2, mixed 1, blastic 0; no lesion -> -1 (null). */
int sm_sins_lesion_quality_points(int lesion_class);

/* SINS vertebral body collapse: loss > 50 % -> 3; 20 % <= loss <= 50 % -> 2 (so exactly
 * 50 % scores 2); loss < 20 % with more than half of the body involved (fraction > 0.5)
 * -> 1; otherwise 0. NAN loss -> -1; NAN fraction counts as not involved. */
int sm_sins_collapse_points(double loss_pct, double involvement_fraction);

/* Alignment class from the segment's deviation from normal alignment: translation >= 3 mm
 * -> subluxation; otherwise |kyphosis| or |scoliosis| >= 10 deg -> deformity; otherwise
 * normal. The angles are the focal (de novo) change versus the expected segmental angle,
 * not the physiological lordosis/kyphosis. Returns -1 when translation is NAN and no
 * angle decides. NAN angles are ignored. */
int sm_sins_alignment_class(double translation_mm, double kyphosis_deg, double scoliosis_deg);
/* Points of an alignment class: subluxation 4, deformity 2, normal 0; -1 unknown. */
int sm_sins_alignment_class_points(int align_class);
/* Shorthand: sm_sins_alignment_class_points(sm_sins_alignment_class(...)). */
int sm_sins_alignment_points(double translation_mm, double kyphosis_deg, double scoliosis_deg);

/* SINS posterolateral involvement: bilateral 3, unilateral 1, none 0. */
int sm_sins_posterolateral_points(int side);

/* Category of a SINS total (0-18): "stable" 0-6, "potentially unstable" 7-12,
 * "unstable" 13-18; NULL out of range. */
const char *sm_sins_category_name(int total);
/* Categories reachable by totals lo..hi (e.g. an imaging subtotal without pain gives
 * lo = subtotal, hi = subtotal + 3): writes up to 3 names in order, returns how many. */
int sm_sins_categories(int lo, int hi, const char *names[3]);

/* Names: "none" "lytic" "blastic" "mixed"; "none" "left" "right" "bilateral";
 * "normal" "deformity" "subluxation"; NULL for unknown codes. */
const char *sm_sins_lesion_class_name(int lesion_class);
const char *sm_sins_side_name(int side);
const char *sm_sins_alignment_class_name(int align_class);

#ifdef __cplusplus
}
#endif
#endif
