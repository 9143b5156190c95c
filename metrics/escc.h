/* Public API of the spinal canal profile and Bilsky epidural spinal cord compression (ESCC)
 * grading on CT (metrics/canal.c measures, metrics/escc.c grades; docs/escc.md).
 * metrics/ depends on core only: volumes and label maps in, numbers and pictures out. */
#ifndef SM_ESCC_H
#define SM_ESCC_H

#include "sm_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bilsky grades. SM_ESCC_NONE: not graded (canal not in view / not measurable, or no
 * lesion near the canal when the caller passes lesion flags). */
typedef enum SmEsccGrade {
    SM_ESCC_NONE = -1,
    SM_ESCC_0 = 0,
    SM_ESCC_1A,
    SM_ESCC_1B,
    SM_ESCC_1C,
    SM_ESCC_2,
    SM_ESCC_3
} SmEsccGrade;

/* Position of the epidural soft tissue around the canal (patient's left/right). */
typedef enum SmEsccPosition {
    SM_ESCC_POS_NONE = 0,
    SM_ESCC_POS_ANTERIOR,
    SM_ESCC_POS_POSTERIOR,
    SM_ESCC_POS_LEFT,
    SM_ESCC_POS_RIGHT,
    SM_ESCC_POS_CIRCUMFERENTIAL
} SmEsccPosition;

/* "0" "1a" "1b" "1c" "2" "3"; NULL for SM_ESCC_NONE. */
const char *sm_escc_grade_name(SmEsccGrade grade);
/* "none" "anterior" "posterior" "left" "right" "circumferential". */
const char *sm_escc_position_name(SmEsccPosition pos);
/* "0" -> SM_ESCC_0 ... "3" -> SM_ESCC_3; SM_ESCC_NONE when not a grade name. */
SmEsccGrade sm_escc_grade_parse(const char *text);

/* Side of the measurement plane image (pixels) and its pixel size. */
#define SM_ESCC_PLANE_N 96
#define SM_ESCC_PLANE_MM 0.4

/* Classes of the plane's pixels (SmCanalLevel.classes). */
enum {
    SM_ESCC_CLASS_OUTSIDE = 0, /* not in the bony canal */
    SM_ESCC_CLASS_FAT = 1,     /* epidural fat */
    SM_ESCC_CLASS_CSF = 2,     /* thecal sac fluid */
    SM_ESCC_CLASS_CORD = 3,    /* dense tissue inside the sac (cord / roots) */
    SM_ESCC_CLASS_TUMOUR = 4   /* epidural soft tissue in excess of the neighbour levels */
};

/* Canal profile and grade of one vertebral level. Areas in mm^2 in the plane perpendicular
 * to the canal centreline at the level's mid-height; NAN when not measurable. */
typedef struct SmCanalLevel {
    int verse_label;
    bool in_view;                 /* canal found in the plane at this level */
    bool below_conus;             /* no cord found at this level: the sac is graded */
    bool cord_expected;           /* C1-T11: the cord is there anatomically (below_conus
                                   * then means "cord not resolved on this CT") */
    double center_lps[3];         /* plane centre (canal centreline point) */
    double normal_lps[3];         /* canal tangent (cranial) */
    double axis_left_lps[3], axis_posterior_lps[3]; /* plane axes (image +x, +y) */
    double canal_area_mm2;        /* bony canal */
    double sac_area_mm2;          /* thecal sac: CSF + cord (non-fat, not tumour) */
    double csf_area_mm2;          /* free CSF (around the cord) */
    double cord_area_mm2;         /* dense tissue inside the sac */
    double fat_area_mm2;          /* epidural fat */
    double tumour_area_mm2;       /* epidural soft tissue in excess of the neighbours */
    double tumour_thickness_mm;   /* its largest radial thickness */
    SmEsccPosition position;
    /* compromise relative to the neighbouring normal levels (ratios, NAN without reference) */
    double ref_canal_area_mm2, ref_sac_area_mm2, ref_csf_area_mm2, ref_cord_area_mm2;
    double canal_ratio, sac_ratio, csf_ratio;
    double sac_diameter_ratio;    /* sac extent along the tumour direction vs reference */
    double cord_gap_mm;           /* smallest CSF gap between tumour and cord (0: abutted) */
    SmEsccGrade grade;
    double confidence;            /* [0,1] */
    SmStrList reasons;            /* the measured quantities behind the grade, and doubts */
    uint8_t classes[SM_ESCC_PLANE_N * SM_ESCC_PLANE_N]; /* SM_ESCC_CLASS_* (row = +posterior) */
    int16_t hu[SM_ESCC_PLANE_N * SM_ESCC_PLANE_N];      /* resampled HU of the plane */
} SmCanalLevel;

/* Scan-derived tissue statistics and thresholds used for the whole series. */
typedef struct SmEsccStats {
    double fat_hu, csf_hu, cord_hu, muscle_hu;
    double noise_sigma_hu;        /* of one voxel, from the sac at normal levels */
    double fat_threshold_hu;      /* fat | fluid */
    double dense_threshold_hu;    /* fluid | cord / soft tissue */
    double smooth_radius_mm;      /* in-plane smoothing, grows with the noise */
    double min_thickness_mm;      /* smallest epidural mass reported (scales with voxel size) */
    double min_area_mm2;
} SmEsccStats;

typedef struct SmEsccResult {
    size_t n_levels;
    SmCanalLevel *levels;         /* as requested (superior to inferior) */
    SmEsccStats stats;
    SmEsccGrade worst_grade;      /* series summary (SM_ESCC_NONE if nothing graded) */
    int worst_verse_label;        /* 0 if none */
    double worst_confidence;
    SmStrList notes;
} SmEsccResult;

/* Measures the canal profile and grades ESCC at each requested vertebra.
 * ct: HU (I16 or F32); labels: VerSe ids (U8/U16); subregions: U8 with 7 = canal (10 =
 * cord, as the phantom writes, also counts as canal); all on one grid. canal_lps: the canal
 * centreline (LPS mm, n_canal >= 3 points, any order along the canal). verse_labels: the
 * n_levels vertebrae to grade, superior to inferior. lesion_near_canal: optional (NULL =
 * unknown): per level, whether a bone lesion touches the canal walls; a level with no
 * lesion and no epidural tissue is reported as not graded (SM_ESCC_NONE) instead of "0".
 * threads <= 0: sm_omp_threads(). Output identical at any thread count. Caller owns *out
 * (sm_escc_destroy); written only on success. Errors: SM_ERR_USAGE (bad arguments, grids
 * differ), SM_ERR_NOMEM. Thread-safe. */
bool sm_escc_run(SmError **error, const SmVolume *ct, const SmVolume *labels,
                 const SmVolume *subregions, const double (*canal_lps)[3], size_t n_canal,
                 const int *verse_labels, size_t n_levels, const bool *lesion_near_canal,
                 int threads, SmEsccResult **out);
void sm_escc_destroy(SmEsccResult *res); /* NULL is a no-op */

/* QC picture of level `index`: the measurement plane (scale x scale pixels per plane pixel,
 * soft-tissue window W400/L40) with the canal (yellow), thecal sac (cyan), cord (green) and
 * tumour (red) outlined, anterior at the top, patient left on the image right. *rgb is
 * malloc'ed (caller frees), w*h*3 bytes. Errors: SM_ERR_USAGE, SM_ERR_NOMEM. Pure. */
bool sm_escc_qc_axial(SmError **error, const SmEsccResult *res, size_t index, int scale,
                      uint8_t **rgb, size_t *w, size_t *h);

/* ---- internal to metrics/canal.c and metrics/escc.c (not for callers) ---- */

/* Measurement of one plane, before grading. Rays from the reference centre. */
#define SM_ESCC_RAYS 48
typedef struct SmCanalPlane {
    bool ok;
    double wall_mm[SM_ESCC_RAYS];     /* distance to the canal wall */
    double epi_mm[SM_ESCC_RAYS];      /* dense tissue thickness inward from the wall */
    double sac_out_mm[SM_ESCC_RAYS];  /* outer edge of the sac (first fat from the centre) */
    double cord_out_mm[SM_ESCC_RAYS]; /* outer edge of the dense core from the centre */
    double canal_area, fat_area, nonfat_area, csf_area, dense_area;
    double centre_hu, rim_hu, rim_sd; /* median HU at the sac centre, in the CSF rim, rim SD */
} SmCanalPlane;

/* Fraction of the plane's slab samples within radius_mm of c that fall outside the CT
 * volume (0 when the plane lies wholly inside the field of view). */
double sm_canal_plane_outside(const SmVolume *ct, const double c[3], const double ex[3],
                              const double ey[3], const double ez[3], double radius_mm);

/* Resamples the plane (hu and canal mask), with a slab average of three planes 1 mm apart. */
void sm_canal_plane_sample(const SmVolume *ct, const SmVolume *sub, const double c[3],
                           const double ex[3], const double ey[3], const double ez[3],
                           float *hu, uint8_t *mask, int16_t *hu_out);
/* inner = mask pixels at least radius_px pixels from the canal wall (bone partial volume
 * excluded). */
void sm_canal_plane_interior(const uint8_t *mask, int radius_px, uint8_t *inner);
/* Disc smoothing of radius r_mm: out = mean of hu over the `weight` pixels of the disc, at
 * every `mask` pixel (normalised convolution; hu elsewhere). */
void sm_canal_plane_smooth(const float *hu, const uint8_t *mask, const uint8_t *weight,
                           double r_mm, float *out);
/* Classifies (fat: sm_fat < fat_thr; dense: sm_dense >= dense_thr; else CSF) and measures;
 * csf_area counts `core` pixels (non-fat, away from fat and wall) with sm_fat below
 * dense_thr - 0.3 (dense_thr - csf_hu). */
void sm_canal_plane_measure(const float *sm_fat, const float *sm_dense, const uint8_t *mask,
                            const uint8_t *core, double fat_thr, double dense_thr, double csf_hu,
                            uint8_t *classes, SmCanalPlane *m);

/* Canal re-derived from the CT of the plane (hu as sampled) and the segmentation's mask
 * seg: per ray from the plane centre the CT's canal edge is the first bone (>= bone_thr) or,
 * where no bone closes the canal, the outer edge of the epidural fat (< fat_thr); the ray
 * keeps the segmentation's extent bounded by that edge, or takes the CT's edge when the
 * segmentation stops > 4 mm short of it; each ray is clipped to 1.15 x the median of its
 * +-30 degree neighbours + 1 mm (gaps in a lytic wall, segmentation errors); mask =
 * non-bone pixels inside. shift_mm: the mask centroid (plane x, y). bone_edge_mm (NULL or
 * SM_ESCC_BONY_RAYS values, ray q at angle 2 pi q / SM_ESCC_BONY_RAYS): distance to the first
 * bone, NAN where no bone closes the ray. False (mask untouched) when fewer than half the
 * rays find an edge or the centre lies in bone. */
#define SM_ESCC_BONY_RAYS 96
bool sm_canal_plane_bony(const float *hu, const uint8_t *seg, double bone_thr, double fat_thr,
                         uint8_t *mask, double shift_mm[2], double *bone_edge_mm);

#ifdef __cplusplus
}
#endif
#endif
