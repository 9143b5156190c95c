/* Public API of spinemets metrics: per-vertebra measurements and the imaging components
 * of SINS, computed from a CT volume and a vertebra label map + sub-region map.
 * metrics/ depends on core only: it sees volumes and label maps, never files. */
#ifndef SM_METRICS_H
#define SM_METRICS_H

#include "sm_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sub-region codes expected in `subregions` (same as segment/sm_segment.h SmSubregion and
 * the phantom's truth_subregions): 1 body, 2 left posterolateral (pedicle+facet, patient
 * left = LPS +x), 3 right posterolateral, 4 posterior arch, 5 transverse process, 6 disc,
 * 7 canal. */
enum {
    SM_MET_SUB_BODY = 1,
    SM_MET_SUB_PL_LEFT = 2,
    SM_MET_SUB_PL_RIGHT = 3,
    SM_MET_SUB_ARCH = 4,
    SM_MET_SUB_TRANSVERSE = 5,
    SM_MET_SUB_DISC = 6,
    SM_MET_SUB_CANAL = 7
};

/* What metrics read. All volumes on one grid (same dims and affine). */
typedef struct SmMetricsInput {
    const SmVolume *ct;          /* HU (I16 or F32) */
    const SmVolume *labels;      /* U8/U16 VerSe ids (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 28 T13) */
    const SmVolume *subregions;  /* U8 codes above */
    size_t n_levels;             /* vertebrae to measure, superior to inferior */
    const int *verse_labels;     /* their VerSe ids */
    const char *const *level_names; /* "L1", ... (borrowed) */
    int threads;                 /* <= 0: sm_omp_threads() */
    const bool *extent_doubtful; /* per level or NULL: the segmentation doubts the
                                  * vertebra's extent (a disc plane missed or misplaced);
                                  * such a level is not measured for heights/alignment */
} SmMetricsInput;

/* --- heights, collapse, alignment (metrics/heights.c, metrics/alignment.c) --- */
typedef enum SmDeformity { SM_DEFORMITY_NONE = 0, SM_DEFORMITY_WEDGE, SM_DEFORMITY_BICONCAVE, SM_DEFORMITY_CRUSH } SmDeformity;
typedef enum SmAlignClass { SM_ALIGN_NORMAL = 0, SM_ALIGN_DEFORMITY, SM_ALIGN_SUBLUXATION } SmAlignClass;
/* --- lesions, posterolateral (metrics/lesions.c, metrics/posterolateral.c) --- */
typedef enum SmLesionClass { SM_LESION_NONE = 0, SM_LESION_LYTIC, SM_LESION_BLASTIC, SM_LESION_MIXED } SmLesionClass;
typedef enum SmSide { SM_SIDE_NONE = 0, SM_SIDE_LEFT, SM_SIDE_RIGHT, SM_SIDE_BILATERAL } SmSide;

/* Per-vertebra results. NAN means "not measurable" (reason in notes). */
typedef struct SmVertebraMetrics {
    int verse_label;
    char level[8];
    /* frame */
    double body_centroid_lps[3];
    double axis_superior[3], axis_anterior[3], axis_left[3]; /* the vertebra's own frame */
    /* heights (mm) along the vertebra's own axis at 15/50/85 % of AP depth from the anterior cortex */
    double height_anterior_mm, height_middle_mm, height_posterior_mm;
    double ap_depth_mm;
    double expected_height_mm;   /* from neighbouring normal vertebrae */
    double height_loss_pct;      /* worst of the three vs expected, 0..100 */
    int genant_grade;            /* 0..3, -1 unknown */
    SmDeformity deformity;
    /* lesions */
    SmLesionClass lesion_class;
    double lytic_fraction, blastic_fraction, body_involvement_fraction; /* of body volume, 0..1 */
    double cancellous_median_hu;
    double lytic_mean_hu, blastic_mean_hu; /* mean HU of the called lesion tissue, NAN if none */
    SmSide posterolateral;
    double posterolateral_fraction[2]; /* involved fraction of the left / right sub-region, 0..1 */
    /* alignment with the vertebra below (NAN for the last) */
    double translation_mm, kyphosis_deg, scoliosis_deg;
    SmAlignClass alignment;
    /* SINS imaging components (-1 = not scored) */
    int sins_location, sins_lesion_quality, sins_alignment, sins_collapse, sins_posterolateral;
    SmStrList notes;
} SmVertebraMetrics;

typedef struct SmSeriesMetrics {
    size_t n;
    SmVertebraMetrics *v;        /* superior to inferior, one per input level */
    double reference_cancellous_hu;  /* the patient's own uninvolved bone */
    SmStrList reference_method;      /* how it was chosen */
    /* lesions (metrics/lesions.c, metrics/sins.c) */
    double reference_spread_hu;      /* robust SD of smoothed cancellous HU within normal bodies */
    SmStrList lesion_levels;         /* level names with lesion_class != none, superior first */
    int n_vertebral_body_metastases; /* = lesion_levels.n (Tokuhashi input) */
    int worst_index;                 /* index into v of the worst lesion level, -1 if none */
    char worst_level[8];             /* its name, "" if none */
    SmStrList notes;
} SmSeriesMetrics;

bool sm_metrics_run(SmError **error, const SmMetricsInput *in, SmSeriesMetrics **out);

/* SINS imaging subtotal of one vertebra (0..15): the sum of its five components, a null
 * lesion quality (no lesion) counting 0; -1 when location, alignment, collapse or
 * posterolateral could not be scored. Pure, thread-safe. */
int sm_sins_imaging_subtotal(const SmVertebraMetrics *v);
/* SINS total range for an imaging subtotal when pain (0, 1 or 3 points) is unknown:
 * lo = subtotal, hi = subtotal + 3, and the categories ("stable", "potentially unstable",
 * "unstable") those totals can fall in, in order (categories needs room for 3; the names
 * are static strings). Subtotal outside 0..15: lo = hi = -1 and no categories. Any output
 * pointer may be NULL. Pure, thread-safe. */
void sm_sins_range(int subtotal, int *lo, int *hi, const char **categories, size_t *n_categories);
void sm_metrics_destroy(SmSeriesMetrics *m);

#ifdef __cplusplus
}
#endif
#endif
