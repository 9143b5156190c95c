/* Public API of spinemets segment: classical (no trained weights) vertebral segmentation,
 * sub-regions and level labelling of spine CT, plus the QC picture.
 * segment/ sees volumes and label maps only: no file formats, no printing. */
#ifndef SM_SEGMENT_H
#define SM_SEGMENT_H

#include "sm_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* VerSe vertebra ids used in the label volume (domain.md "Label conventions"). */
enum {
    SM_VERSE_C1 = 1,
    SM_VERSE_C7 = 7,
    SM_VERSE_T1 = 8,
    SM_VERSE_T12 = 19,
    SM_VERSE_L1 = 20,
    SM_VERSE_L5 = 24,
    SM_VERSE_L6 = 25,
    SM_VERSE_SACRUM = 26,
    SM_VERSE_COCCYX = 27,
    SM_VERSE_T13 = 28
};

/* Sub-region codes of the sub-region volume (docs/segmentation.md). Left/right are the
 * PATIENT's (LPS +x is patient left). */
typedef enum SmSubregion {
    SM_SUB_NONE = 0,
    SM_SUB_BODY = 1,              /* vertebral body, anterior to the canal's anterior wall */
    SM_SUB_POSTEROLATERAL_L = 2,  /* patient-left pedicle + facet (SINS posterolateral) */
    SM_SUB_POSTEROLATERAL_R = 3,  /* patient-right pedicle + facet */
    SM_SUB_POSTERIOR_ARCH = 4,    /* laminae + spinous process, behind the canal */
    SM_SUB_TRANSVERSE = 5,        /* transverse processes (beyond the facets) */
    SM_SUB_DISC = 6,              /* intervertebral disc between two bodies */
    SM_SUB_CANAL = 7              /* spinal canal lumen */
} SmSubregion;

typedef struct SmSegOptions {
    int threads;             /* <= 0: sm_omp_threads() */
    bool has_anchor;         /* user override: the vertebra at LPS z = anchor_z_mm is ... */
    const char *anchor_level; /* ... this level ("L3", "T12", "C2", "S1"); borrowed */
    double anchor_z_mm;
} SmSegOptions;

/* One vertebra found (or imported). Arrays are ordered superior to inferior. */
typedef struct SmVertebra {
    char level[8];              /* "C1".."C7", "T1".."T13", "L1".."L6", "S1" (sacrum) */
    int verse_label;            /* VerSe id in the label volume */
    double centroid_lps[3];     /* body (sub-region 1) centroid, LPS mm */
    double vertebra_centroid_lps[3]; /* whole-vertebra centroid, LPS mm */
    double confidence;          /* [0,1] that the level name is right */
    SmStrList anchors;          /* anchors the name was derived from */
    SmStrList reasons;          /* why confidence is below 1, flags ("transitional") */
    size_t n_voxels;            /* whole vertebra voxels on the CT grid */
    size_t n_body_voxels;       /* sub-region 1 voxels */
    bool partial;               /* touches the edge of the field of view */
    bool extent_doubtful;       /* a disc plane bounding it may be missed or misplaced
                                 * (reason in `reasons`): its extent is no body's height */
} SmVertebra;

typedef struct SmSpineSeg {
    SmVolume *labels;           /* U8 VerSe ids on the CT grid (owned) */
    SmVolume *subregions;       /* U8 SmSubregion codes on the CT grid (owned) */
    size_t n_vertebrae;
    SmVertebra *vertebrae;      /* superior to inferior */
    size_t n_canal;
    double (*canal_lps)[3];     /* canal centreline, LPS mm, superior to inferior */
    SmStrList anchors;          /* anchors used for the whole column */
    SmStrList notes;            /* method notes and warnings (thresholds, FOV, ...) */
    double bone_low_hu;         /* hysteresis thresholds derived from the scan */
    double bone_high_hu;
    double soft_tissue_hu;      /* soft-tissue histogram mode inside the body */
} SmSpineSeg;

/* Segments and labels the spine of a CT volume (any voxel type holding HU, any
 * orientation). Works on an internal 2 mm LPS-aligned grid and refines masks on the CT
 * grid. Outputs are identical for any thread count. Caller owns *out
 * (sm_seg_spine_destroy); *out is written only on success. Fails with SM_ERR_USAGE for
 * a non-HU volume or a bad anchor, SM_ERR_UNSUPPORTED when no spinal canal is found.
 * Uses opt->threads OpenMP threads; thread-safe with respect to other calls. */
bool sm_seg_spine_run(SmError **error, const SmVolume *ct, const SmSegOptions *opt,
                      SmSpineSeg **out);

/* Builds the same records and sub-regions from an imported VerSe-numbered label map on the
 * CT grid (labels U8/U16; ids 1..28). The CT is used for the canal and the body split.
 * Confidence is 1 with anchor "imported labels". Caller owns *out. */
bool sm_seg_from_labels(SmError **error, const SmVolume *ct, const SmVolume *verse_labels,
                        const SmSegOptions *opt, SmSpineSeg **out);

void sm_seg_spine_destroy(SmSpineSeg *seg); /* NULL is a no-op */

/* Level name ("L1") for a VerSe id, or NULL for ids outside 1..28. */
const char *sm_seg_level_name(int verse_label);
/* VerSe id for a level name ("L1", "T13", "S1"/"sacrum"), 0 if unknown. */
int sm_seg_level_from_name(const char *name);

/* QC picture: curved mid-sagittal plane through the canal (1 mm pixels, superior at the
 * top, anterior at the left), CT in a bone window, label colours blended, level names
 * drawn. *rgb is malloc'ed (caller frees), w*h*3 bytes. */
bool sm_seg_qc_sagittal(SmError **error, const SmVolume *ct, const SmSpineSeg *seg,
                        uint8_t **rgb, size_t *w, size_t *h);

#ifdef __cplusplus
}
#endif
#endif
