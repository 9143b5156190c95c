/* Public API of the synthetic spine CT phantom: spec, in-memory generation, truth, output. */
#ifndef SM_PHANTOM_H
#define SM_PHANTOM_H

#include "sm_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Levels are indexed 0..24 along the column: 0..6 C1..C7, 7..18 T1..T12, 19..23 L1..L5,
 * 24 S1 (the sacrum). */
#define SM_PHANTOM_N_LEVELS 25
#define SM_PHANTOM_LEVEL_S1 24

/* Tissue values in HU. */
typedef struct SmPhantomHu {
    double air, fat, muscle, soft_tissue, lung, blood, contrast;
    double cortical, cancellous, disc, csf, cord, epidural_fat, table;
} SmPhantomHu;

/* Pathology codes (docs/phantom.md "Pathology"). */
enum {
    SM_PHANTOM_LESION_LYTIC = 1,       /* soft-tissue density replacing trabecular bone */
    SM_PHANTOM_LESION_BLASTIC = 2,     /* sclerotic, ~700 HU */
    SM_PHANTOM_LESION_MIXED = 3,       /* spec only: a lytic and a blastic component */
    SM_PHANTOM_LESION_BONE_ISLAND = 4  /* enostosis, ~1200 HU: a confounder, not a metastasis */
};
/* Values of truth_lesions.nii.gz. */
enum { SM_PHANTOM_LESMAP_LYTIC = 1, SM_PHANTOM_LESMAP_BLASTIC = 2, SM_PHANTOM_LESMAP_ISLAND = 3 };
/* Sides, numbered as SmSide / SM_SINS_SIDE_* (metrics/sins_rules.h). */
enum { SM_PHANTOM_SIDE_NONE = 0, SM_PHANTOM_SIDE_LEFT = 1, SM_PHANTOM_SIDE_RIGHT = 2,
       SM_PHANTOM_SIDE_BILATERAL = 3 };
/* Collapse shapes, numbered as SmDeformity (metrics/sm_metrics.h). */
enum { SM_PHANTOM_COLLAPSE_NONE = 0, SM_PHANTOM_COLLAPSE_WEDGE = 1,
       SM_PHANTOM_COLLAPSE_BICONCAVE = 2, SM_PHANTOM_COLLAPSE_CRUSH = 3 };

#define SM_PHANTOM_MAX_LESIONS 4

/* Transitional anatomy (docs/phantom.md "Transitional anatomy"). The model keeps its 25
 * level slots (0..24 = C1..S1 shapes); the anomaly moves the ribs, the fusion and the true
 * labels:
 *  L6             ribs on the C7..T11 slots (12 pairs), the T12..L5 slots are six rib-free
 *                 lumbar vertebrae: true labels T1 at the C7 slot .. L6 (25) at the L5 slot;
 *  T13            ribs on the C7..T12 slots (13 pairs): T1 at the C7 slot, T13 (28) at the
 *                 T12 slot, L1..L5 at the L1..L5 slots;
 *  RIBS_11        T12 without ribs (or with a rudimentary rib of t12_rib_mm < 40 mm): 11
 *                 rib pairs, labels unchanged (T12 is the 12th thoracic vertebra);
 *  SACRALISED_L5  the L5 transverse process fused to the sacral ala (sacralised_side),
 *                 labels unchanged.
 * L6 and T13 use the C7 slot as T1, so the levels must start at C7 or below. */
enum { SM_PHANTOM_TRANS_NONE = 0, SM_PHANTOM_TRANS_L6 = 1, SM_PHANTOM_TRANS_T13 = 2,
       SM_PHANTOM_TRANS_RIBS_11 = 3, SM_PHANTOM_TRANS_SACRALISED_L5 = 4 };

/* One lesion of a vertebra. The shape is a union of a few ellipsoids drawn from `seed`,
 * scaled so its volume inside the body is `fraction` of the body volume. */
typedef struct SmPhantomLesionSpec {
    int type;                /* SM_PHANTOM_LESION_*; 0 = unused slot */
    double fraction;         /* target lesion volume / body volume, 0.02..0.95 (not islands) */
    double center[3];        /* body frame in fractions of the semi-axes: x patient left,
                                y posterior, z cranial (-1..1) */
    int extension;           /* SM_PHANTOM_SIDE_*: pedicle + articular processes replaced */
    bool cortical_breach;    /* may replace the body cortex (else stays in cancellous bone) */
    double hu;               /* NAN: lytic 45, blastic 700, island 1200 */
    double radius_mm;        /* bone island radius (1.5..8) */
    uint64_t seed;           /* shape */
} SmPhantomLesionSpec;

/* Per-vertebra overrides and pathology. NAN / 1.0 / 0 mean "as the default anatomy". */
typedef struct SmPhantomVertebraSpec {
    double cancellous_hu;   /* NAN: spec hu.cancellous (or osteoporotic_hu) */
    double height_scale;    /* uniform body height factor (1.0 normal; < 1 acts as a crush) */
    int collapse_type;      /* SM_PHANTOM_COLLAPSE_* */
    double collapse_pct;    /* worst height loss vs the pre-morbid height, 0..75 % */
    size_t n_lesions;
    SmPhantomLesionSpec lesion[SM_PHANTOM_MAX_LESIONS];
    /* alignment with the vertebra below, applied at the disc below this vertebra */
    double translation_mm[2]; /* [lateral (+ patient left), AP (+ posterior)] displacement of
                                 this vertebra relative to the one below, in the lower
                                 vertebra's frame */
    double kyphosis_deg;    /* focal kyphosis added at the disc below (+ kyphotic) */
    double scoliosis_deg;   /* focal coronal tilt added at the disc below (+ towards left) */
} SmPhantomVertebraSpec;

typedef struct SmPhantomSpec {
    uint64_t seed;
    int level_first, level_last;    /* inclusive, level_first <= level_last */
    size_t dims[3];                 /* columns, rows, slices; dims[2] == 0: cover the levels */
    double pixel_mm;                /* in-plane spacing */
    double slice_mm;                /* slice spacing (slice thickness is set equal) */
    bool fov_center_set;
    double fov_center[3];           /* LPS mm of the grid centre; default: the levels' centre */
    char patient_position[8];       /* "HFS" or "FFS" */
    bool ffs_standard_axes;         /* FFS only: false (default) = rows towards patient
                                       right, first image at the feet; true = the axes of
                                       an HFS scan (IOP 1\0\0\0\1\0, first image at the
                                       head), as many scanners reconstruct FFS */
    double oblique_deg;             /* rotation of the image axes (0: axial) */
    int oblique_axis;               /* 0 L-R, 1 A-P, 2 S-I: axis the image grid is rotated about */
    double noise_sigma_hu;          /* Gaussian noise, >= 0 */
    double texture_hu;              /* amplitude of the cancellous-bone texture */
    double cervical_lordosis_deg;   /* C2..C7 */
    double thoracic_kyphosis_deg;   /* T1..T12 */
    double lumbar_lordosis_deg;     /* L1..S1 */
    double scoliosis_deg;           /* coronal Cobb-like total bend, + convex to patient left */
    int scoliosis_apex;             /* level index of the apex */
    bool aorta;
    bool contrast;                  /* aorta and kidneys enhanced */
    int conus_level;                /* cord ends at the lower endplate of this level */
    SmPhantomHu hu;
    bool osteoporotic;              /* every body: cancellous osteoporotic_hu, thin cortex */
    double osteoporotic_hu;         /* 40..150, default 75 */
    SmPhantomVertebraSpec vertebra[SM_PHANTOM_N_LEVELS];
    char series_description[64];
    int transitional;               /* SM_PHANTOM_TRANS_* (0: none) */
    double t12_rib_mm;              /* RIBS_11: rudimentary T12 rib length, 0 (none)..39 */
    int sacralised_side;            /* SACRALISED_L5: SM_PHANTOM_SIDE_LEFT/RIGHT/BILATERAL */
} SmPhantomSpec;

/* Ground truth of one vertebra (LPS mm). has_body is false for C1 (no body): its body
 * fields are NAN. Heights are along the vertebra's own axis at 15 % / 50 % / 85 % of the
 * midline AP depth (anterior / middle / posterior). */
typedef struct SmPhantomVertebra {
    int level;                      /* 0..24: the model slot (shape), not the true level */
    char name[4];                   /* true level: "C1" ... "L6", "T13", "S1" */
    int verse_id;                   /* true VerSe id: 1..25, 26 for S1 (sacrum), 28 T13 */
    bool has_body;
    double body_centroid[3];        /* centroid of the body subregion (incl. the dens on C2) */
    double body_volume_mm3;
    double axis_superior[3];        /* unit vector of the vertebra's own axis, cranial */
    double axis_posterior[3];       /* unit vector, posterior, perpendicular to the axis */
    double height_anterior_mm, height_middle_mm, height_posterior_mm;
    double endplate_superior[3], endplate_inferior[3]; /* endplate centres on the midline */
    double ap_depth_mm, width_mm;   /* at the endplates, midline AP and maximum width */
    double canal_center[3];         /* at the body's mid-height */
    double canal_area_mm2;          /* canal (dural sac + epidural space) cross-section */
    double cancellous_hu;
    /* collapse: pre-morbid heights (same positions), loss = worst of the three, % */
    double expected_anterior_mm, expected_middle_mm, expected_posterior_mm;
    double expected_height_mm;      /* pre-morbid height at the position of the worst loss */
    double height_loss_pct;
    int genant_grade;               /* sm_genant_grade(height_loss_pct); -1 without body */
    int collapse_type;              /* as specified (SM_PHANTOM_COLLAPSE_*) */
    int deformity;                  /* collapse_type when genant_grade >= 1, else NONE */
    /* lesions, measured on the rasterised grid (voxels of this vertebra's label) */
    size_t body_voxels, lytic_voxels, blastic_voxels, island_voxels; /* in the body */
    size_t pl_voxels[2], pl_lesion_voxels[2]; /* [left, right] posterolateral subregions */
    double lytic_fraction, blastic_fraction, body_involvement_fraction, island_fraction;
    double pl_lesion_fraction[2];
    int lesion_class;               /* SM_SINS_LESION_* (0 none, 1 lytic, 2 blastic, 3 mixed) */
    int posterolateral;             /* SM_PHANTOM_SIDE_*: side with >= 20 % replaced */
    /* alignment with the vertebra below, in the lower vertebra's frame (has_below false for
     * the last requested level: NAN) */
    bool has_below;
    double translation_mm, translation_lateral_mm, translation_ap_mm;
    double kyphosis_deg, scoliosis_deg;             /* segmental angles incl. physiology */
    double focal_kyphosis_deg, focal_scoliosis_deg; /* versus the pathology-free spine */
    int alignment_class;            /* SM_SINS_ALIGN_* */
    /* SINS imaging components (-1 = not scored: lesion quality without a lesion) */
    int sins_location, sins_lesion_quality, sins_alignment, sins_collapse, sins_posterolateral;
} SmPhantomVertebra;

/* Subregion codes of truth_subregions (docs/phantom.md). */
enum {
    SM_PHANTOM_SUB_BODY = 1,
    SM_PHANTOM_SUB_POSTEROLATERAL_LEFT = 2,  /* pedicle + articular processes, patient left */
    SM_PHANTOM_SUB_POSTEROLATERAL_RIGHT = 3,
    SM_PHANTOM_SUB_ARCH = 4,                 /* laminae + spinous process */
    SM_PHANTOM_SUB_TRANSVERSE = 5,
    SM_PHANTOM_SUB_DISC = 6,
    SM_PHANTOM_SUB_CANAL = 7,                /* dural sac + epidural space */
    SM_PHANTOM_SUB_RIB = 8,                  /* ribs and sternum (thoracic cage) */
    SM_PHANTOM_SUB_PELVIS = 9,               /* sacrum outside S1 body, ilium */
    SM_PHANTOM_SUB_CORD = 10                 /* spinal cord (inside the canal) */
};

/* A generated phantom: CT (I16 HU), labels (U8 VerSe ids of the whole vertebra; ribs,
 * ilium and discs are 0), subregions (U8 codes above), all on one grid, and the truth of
 * each requested vertebra (n_vertebrae = level_last - level_first + 1, cranial first). */
typedef struct SmPhantom {
    SmPhantomSpec spec;
    SmVolume *ct;
    SmVolume *labels;
    SmVolume *subregions;
    SmVolume *lesions;              /* U8 SM_PHANTOM_LESMAP_* (0 elsewhere) */
    size_t n_vertebrae;
    SmPhantomVertebra *vertebrae;
} SmPhantom;

/* Fills spec with the defaults (T10..S1 lumbar sample, 256x256 at 0.9 mm, 2 mm slices,
 * seed 1, noise 12 HU). Always returns true. */
bool sm_phantom_spec_default(SmPhantomSpec *spec);
/* Loads a JSON spec file over the defaults already in *spec (call spec_default first).
 * On error (SM_ERR_IO, SM_ERR_FORMAT) the message names the file and the field; *spec may
 * be partly updated. Thread-safe. */
bool sm_phantom_spec_load(SmError **error, const char *path, SmPhantomSpec *spec);
/* Checks ranges (dims, spacing, levels, noise...); SM_ERR_USAGE naming the field. */
bool sm_phantom_spec_validate(SmError **error, const SmPhantomSpec *spec);
/* "T10" -> 16; -1 when not a level name. */
int sm_phantom_level_parse(const char *name);
/* 16 -> "T10"; "?" when out of range. */
const char *sm_phantom_level_name(int level);
/* "lytic", "blastic", "mixed", "bone_island"; "none", "wedge", "biconcave", "crush";
 * "none", "left", "right", "bilateral"; "?" when out of range. */
const char *sm_phantom_lesion_type_name(int type);
const char *sm_phantom_collapse_name(int type);
const char *sm_phantom_side_name(int side);
/* "none", "L6", "T13", "11_ribs", "sacralised_L5"; "?" when out of range. */
const char *sm_phantom_transitional_name(int code);
/* True VerSe id of model slot `level` (0..24) under spec->transitional. */
int sm_phantom_verse_id(const SmPhantomSpec *spec, int level);
/* VerSe id -> name ("C1".."L6", "S1" for 26, "T13" for 28; "?" otherwise). */
const char *sm_phantom_verse_name(int verse_id);
/* Parses "T10-S1" or "L3" into a range; false when malformed. */
bool sm_phantom_levels_parse(const char *text, int *first, int *last);

/* Draws plausible pathology over the spec's levels from `seed` (replacing any pathology
 * already there; anatomy, grid and osteoporosis are kept): each vertebra with a body gets a
 * lesion with probability p_lesion (lytic / blastic / mixed, 10-70 % of the body, random
 * placement, cortical breach, pedicle extension; or a bone island), a wedge / biconcave /
 * crush collapse of 10-60 % with probability p_collapse, and with probability p_alignment
 * a translation (3-8 mm) or a focal kyphosis / scoliosis (10-25 deg) at the disc below
 * (never at two adjacent discs). Deterministic for a seed. Always returns true. */
bool sm_phantom_spec_randomize(SmPhantomSpec *spec, uint64_t seed, double p_lesion,
                               double p_collapse, double p_alignment);

/* Generates the phantom in memory (OpenMP over slices; identical output at any thread
 * count). Caller owns *out (sm_phantom_destroy). Errors: SM_ERR_USAGE (invalid spec),
 * SM_ERR_NOMEM. */
bool sm_phantom_generate(SmError **error, const SmPhantomSpec *spec, SmPhantom **out);
void sm_phantom_destroy(SmPhantom *ph); /* NULL is a no-op */

/* Writes OUT/dicom/IM*.dcm, OUT/truth.json, OUT/truth_labels.nii.gz,
 * OUT/truth_subregions.nii.gz and OUT/truth_lesions.nii.gz (creating outdir). SM_ERR_OUTPUT when not writable. */
bool sm_phantom_write(SmError **error, const SmPhantom *ph, const char *outdir);
/* Writes an 8-bit mid-sagittal and an axial (mid-slice) preview PNG (bone window). */
bool sm_phantom_write_previews(SmError **error, const SmPhantom *ph, const char *sagittal_png,
                               const char *axial_png);

#ifdef __cplusplus
}
#endif
#endif
