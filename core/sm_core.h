/* Public API of spinemets core: errors, volumes with patient geometry, OpenMP helpers.
 * core depends on nothing but libc and libm; every other folder depends on it. */
#ifndef SM_CORE_H
#define SM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------- errors ---------- */

/* Error categories. pipeline/main.c maps them onto documented exit codes. */
typedef enum SmErrorCode {
    SM_ERR_NONE = 0,
    SM_ERR_NOMEM,       /* allocation failed or a size would overflow */
    SM_ERR_USAGE,       /* caller passed bad arguments / options */
    SM_ERR_IO,          /* a file could not be opened or read */
    SM_ERR_FORMAT,      /* input is corrupt, truncated or not what it claims */
    SM_ERR_UNSUPPORTED, /* valid input we do not handle (documented limits) */
    SM_ERR_GEOMETRY,    /* slices/images do not form a valid volume */
    SM_ERR_NO_SERIES,   /* nothing usable was found in the input */
    SM_ERR_OUTPUT,      /* output could not be written */
    SM_ERR_INTERNAL     /* a bug: an invariant did not hold */
} SmErrorCode;

typedef struct SmError {
    SmErrorCode code;
    char *message; /* owned, never NULL for a set error */
} SmError;

/* Sets *error (if error != NULL and *error is still NULL: an error is set once) to a
 * new error with a printf-style message. Always safe to call with error == NULL. */
void sm_error_set(SmError **error, SmErrorCode code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Prefixes an existing error message with context ("file.dcm: "), if set. */
void sm_error_prefix(SmError **error, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void sm_error_destroy(SmError *error); /* NULL is a no-op */
const char *sm_error_code_name(SmErrorCode code);

/* ---------- string list (warnings, notes) ---------- */

typedef struct SmStrList {
    char **items;
    size_t n;
    size_t cap;
} SmStrList;

/* Appends a formatted string; returns false only when out of memory. */
bool sm_strlist_add(SmStrList *list, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void sm_strlist_clear(SmStrList *list); /* frees items, leaves an empty list */

/* ---------- checked sizes ---------- */

/* *out = a*b; false on overflow. */
bool sm_size_mul(size_t a, size_t b, size_t *out);
/* *out = d0*d1*d2*elem; false on overflow. */
bool sm_size_voxels(const size_t dims[3], size_t elem, size_t *out);

/* ---------- volumes ---------- */

/* Voxel storage. CT is stored as SM_VOXEL_I16 holding HU exactly whenever every
 * rescaled value is an integer in [-32768, 32767] (rescale slope 1, integer intercept:
 * nearly all CT); otherwise SM_VOXEL_F32. Label maps are SM_VOXEL_U8 or SM_VOXEL_U16. */
typedef enum SmVoxelType {
    SM_VOXEL_I16 = 0,
    SM_VOXEL_F32,
    SM_VOXEL_U8,
    SM_VOXEL_U16
} SmVoxelType;

size_t sm_voxel_size(SmVoxelType type);
const char *sm_voxel_type_name(SmVoxelType type);

/* Acquisition facts later stages need. Strings are "" when unknown, numbers NAN. */
typedef struct SmVolumeMeta {
    char modality[17];          /* "CT", "MR", ... */
    char series_uid[65];
    char study_uid[65];
    char series_description[65];
    char patient_position[17];  /* HFS, FFS, ... */
    char manufacturer[65];
    char convolution_kernel[65];
    char contrast_agent[65];
    char body_part[65];
    char source[32];            /* "dicom" | "nifti" | "phantom" */
    double slice_thickness_mm;
    double kvp;
    double gantry_tilt_deg;     /* as acquired (resampled is true when it was corrected) */
    bool resampled;             /* true if the loader resampled (tilt, spacing) */
    bool is_hu;                 /* values are Hounsfield units */
} SmVolumeMeta;

/* A 3D image. Voxel (i,j,k) is at data[i + dims[0]*(j + dims[1]*k)]: i is the column
 * (fastest), j the row, k the slice. affine maps (i,j,k,1) to patient LPS millimetres
 * (DICOM convention: +x left, +y posterior, +z superior). spacing[] are the column
 * norms of affine[0..2][0..2]. */
typedef struct SmVolume {
    size_t dims[3];
    double spacing[3];
    double affine[4][4];
    SmVoxelType type;
    void *data; /* owned; aligned; dims[0]*dims[1]*dims[2] voxels of type */
    SmVolumeMeta meta;
} SmVolume;

/* Creates a volume with zeroed (calloc) voxels, identity-scaled affine from spacing and
 * an origin at 0. Checks dims for overflow and rejects any zero dimension. Caller owns
 * the result; destroy with sm_volume_destroy. Thread-safe. */
SmVolume *sm_volume_create(SmError **error, const size_t dims[3], SmVoxelType type);
/* Like create but does not zero the buffer (malloc): the caller writes every voxel. */
SmVolume *sm_volume_create_uninit(SmError **error, const size_t dims[3], SmVoxelType type);
void sm_volume_destroy(SmVolume *vol); /* NULL is a no-op */
size_t sm_volume_n_voxels(const SmVolume *vol);
/* Copies dims/spacing/affine/meta from src (not the data). */
void sm_volume_copy_geometry(SmVolume *dst, const SmVolume *src);
/* Sets affine from a 3x3 direction matrix (columns = unit axis directions in LPS),
 * spacing and origin (LPS of voxel 0,0,0); updates spacing[]. */
void sm_volume_set_geometry(SmVolume *vol, const double dir[3][3], const double spacing[3],
                            const double origin[3]);
/* Voxel value as double (any type). No bounds check. */
double sm_volume_get(const SmVolume *vol, size_t i, size_t j, size_t k);
/* Returns a new I16 volume (HU rounded, clamped) with the same geometry; if vol is already
 * I16 returns a copy. */
SmVolume *sm_volume_to_i16(SmError **error, const SmVolume *vol);
/* min/max/mean over all voxels (mean in double, deterministic). */
void sm_volume_stats(const SmVolume *vol, double *min, double *max, double *mean);

/* ---------- geometry ---------- */

/* out = a*b for 4x4 matrices. */
void sm_mat4_mul(const double a[4][4], const double b[4][4], double out[4][4]);
/* Inverse of an affine 4x4 (last row 0 0 0 1); false if singular. */
bool sm_mat4_affine_inverse(const double m[4][4], double out[4][4]);
/* p_out = m * (p,1). */
void sm_mat4_apply(const double m[4][4], const double p[3], double out[3]);
/* Index (double) to LPS and back through the volume's affine. */
void sm_volume_index_to_lps(const SmVolume *vol, const double ijk[3], double lps[3]);
bool sm_volume_lps_to_index(const SmVolume *vol, const double lps[3], double ijk[3]);
/* True if the two volumes have the same dims and their affines agree within tol_mm at
 * every corner of the grid. */
bool sm_volume_same_grid(const SmVolume *a, const SmVolume *b, double tol_mm);

/* Index mapping between two grids that cover the same voxel centres in world space but
 * may order their axes differently (axis permutation and/or reversal, e.g. DICOM row
 * order versus a NIfTI written bottom-up). b's axis d runs along a's axis perm[d],
 * reversed when flip[d]: index_a[perm[d]] = flip[d] ? dims_a - 1 - index_b[d] : index_b[d]. */
typedef struct SmGridMap {
    int perm[3];
    bool flip[3];
} SmGridMap;

/* True (and *map filled) if every voxel centre of b coincides with one of a within
 * tol_mm under some axis permutation/reversal; false otherwise. Exact re-indexing, never
 * interpolation. */
bool sm_volume_grid_match(const SmVolume *a, const SmVolume *b, double tol_mm, SmGridMap *map);
/* Returns a new volume holding b's voxels re-indexed onto a's grid (geometry of a, type
 * and meta of b), given a map from sm_volume_grid_match. */
SmVolume *sm_volume_reindex(SmError **error, const SmVolume *a, const SmVolume *b,
                            const SmGridMap *map);

/* ---------- small statistics ---------- */

/* qsort comparator for doubles (ascending; NaNs compare equal to everything). */
int sm_cmp_double(const void *a, const void *b);
/* Median of v[0..n) (sorts v in place); NAN when n == 0. */
double sm_median_inplace(double *v, size_t n);

/* ---------- OpenMP helpers ---------- */

/* Number of threads kernels will use (omp_get_max_threads, 1 without OpenMP). */
int sm_omp_threads(void);
/* Index of the calling thread in the current parallel region (0 outside, or without
 * OpenMP). */
int sm_omp_thread_num(void);
/* Sets the thread count for subsequent kernels (n <= 0: leave default). */
void sm_omp_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
