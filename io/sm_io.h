/* Public API of spinemets io: DICOM series discovery and loading (DCMTK + OpenJPEG),
 * DICOM series writing (phantom), NIfTI volumes and label maps, PNG pictures.
 * Library code never prints: problems come back as SmError or as warning lists. */
#ifndef SM_IO_H
#define SM_IO_H

#include "sm_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------- DICOM: discovery ---------- */

/* A file that was looked at but is not part of any loadable volume series, and why
 * (e.g. "not a DICOM file", "localizer (ImageType LOCALIZER)", "SEG object",
 * "truncated: ..."). */
typedef struct SmDicomSkip {
    char *path;
    char *reason;
} SmDicomSkip;

/* One candidate volume: files sharing Series Instance UID and one acquisition stack
 * (same orientation, size, ...). Files are in the order they will become slices. */
typedef struct SmDicomSeries {
    char series_uid[65];
    char stack_id[16];            /* "" or a suffix when one UID was split into stacks */
    char modality[17];
    char series_description[65];
    size_t n_files;
    char **files;                 /* owned paths */
    size_t n_frames;              /* total frames (multi-frame files count > 1) */
    size_t rows, cols;
    SmStrList transfer_syntaxes;  /* distinct transfer syntax UIDs + names, e.g.
                                     "1.2.840.10008.1.2.4.90 (JPEG 2000 lossless)" */
    SmStrList warnings;           /* found at scan time (duplicates, gaps, tilt...) */
} SmDicomSeries;

typedef struct SmDicomScan {
    size_t n_series;
    SmDicomSeries *series;
    size_t n_skipped;
    SmDicomSkip *skipped;
    SmStrList warnings;          /* scan-wide notes */
} SmDicomScan;

/* Scans inputs: each a directory (recursive), a single file, or a DICOMDIR. Reads
 * headers only. Groups into series and stacks; skips localizers, secondary captures,
 * SEG/SR/RT objects and non-image or unreadable files, noting each in skipped[].
 * Fails (SM_ERR_NO_SERIES) only if no volume series is left, or SM_ERR_IO if an input
 * path does not exist. Caller owns *out (sm_io_dicom_scan_destroy). Not thread-safe
 * with respect to concurrent DCMTK codec registration: call from one thread. */
bool sm_io_dicom_scan(SmError **error, const char *const *inputs, size_t n_inputs,
                      SmDicomScan **out);
void sm_io_dicom_scan_destroy(SmDicomScan *scan);

typedef enum SmTiltPolicy {
    SM_TILT_RESAMPLE = 0, /* resample a gantry-tilted stack onto a regular grid (default) */
    SM_TILT_REFUSE        /* fail with SM_ERR_UNSUPPORTED */
} SmTiltPolicy;

typedef struct SmDicomLoadOptions {
    SmTiltPolicy tilt;
    int threads;          /* <= 0: sm_omp_threads() */
} SmDicomLoadOptions;

/* Loads one series of a scan into a volume (HU for CT after Rescale Slope/Intercept;
 * Pixel Padding Value -> air (-1024 for CT, 0 otherwise); MONOCHROME1 inverted).
 * Slices are sorted along the slice normal. Missing slices / irregular spacing /
 * duplicates are handled as docs/loading.md says; warnings appended to *warnings
 * (may be NULL). Decodes files in parallel. Caller owns *out. */
bool sm_io_dicom_series_load(SmError **error, const SmDicomScan *scan, size_t index,
                             const SmDicomLoadOptions *options, SmVolume **out,
                             SmStrList *warnings);

/* ---------- DICOM: writing (phantom, benchmark data) ---------- */

typedef struct SmDicomWriteOptions {
    const char *patient_id;       /* NULL: "PHANTOM" */
    const char *series_description;
    const char *study_uid;        /* NULL: generated */
    const char *series_uid;       /* NULL: generated */
    const char *patient_position; /* NULL: "HFS" */
    double rescale_intercept;     /* stored = HU - intercept (CT: -1024) */
    double kvp;                   /* NAN: omit */
    const char *convolution_kernel; /* NULL: omit */
} SmDicomWriteOptions;

/* Writes vol (I16 HU or F32, rounded) as one single-frame CT image file per slice
 * k (IM00001.dcm ...) into directory dir (created if missing), explicit VR little
 * endian, with Image Position/Orientation Patient from the affine. Files are written
 * to a temporary name and renamed so a reader never sees half a file. */
bool sm_io_dicom_series_write(SmError **error, const SmVolume *vol, const char *dir,
                              const SmDicomWriteOptions *options);

/* ---------- DICOM: segmentation objects (SEG) ---------- */

/* Reads a DICOM Segmentation (BINARY, or FRACTIONAL thresholded at half the Maximum
 * Fractional Value) with DCMTK's dcmseg and rasterises its frames onto reference's grid,
 * never resampling: each frame's pixel grid (per-frame Plane Position, shared or per-frame
 * Plane Orientation and Pixel Measures) must lie on a slice plane of reference, every
 * pixel within 0.01 mm of a voxel centre, its axes parallel to the image axes within 1e-4
 * and its pixel spacing equal; otherwise SM_ERR_GEOMETRY naming the file and the
 * mismatch. *out is U16 with reference's geometry holding the segment number (1..n) per
 * voxel, 0 where no segment is set; where segments overlap the higher segment number wins
 * (independent of frame order). If segment_names is not NULL, n+1 items are appended:
 * item 0 is "" and item s is segment s's label (else its description, else the meaning of
 * its Segmented Property Type code). SM_ERR_IO when the file cannot be opened,
 * SM_ERR_FORMAT when it is not a readable SEG, SM_ERR_UNSUPPORTED for Label Map SEG.
 * Caller owns *out. */
bool sm_io_dicom_seg_load(SmError **error, const char *path, const SmVolume *reference, SmVolume **out,
                          SmStrList *segment_names);

/* ---------- NIfTI ---------- */

/* Loads a .nii/.nii.gz (NIfTI-1 or -2) into a volume with LPS affine (from sform if
 * set, else qform, else pixdim). Integer data that fits stays I16 (or U8/U16 for
 * unsigned label maps); scl_slope/inter applied; anything else becomes F32. */
bool sm_io_nifti_load(SmError **error, const char *path, SmVolume **out);
/* Writes vol as .nii.gz (or .nii) with both sform and qform set (code 1, scanner),
 * converting LPS to NIfTI's RAS. Atomic: temp file + rename. */
bool sm_io_nifti_save(SmError **error, const SmVolume *vol, const char *path);
/* As sm_io_nifti_save; with flip_rows the rows (axis j) are stored last-to-first and the
 * affine adjusted so every voxel keeps its world position. That is dcm2niix's layout for
 * DICOM-derived volumes, so arrays match files made by dcm2niix-based tools. */
bool sm_io_nifti_save_ex(SmError **error, const SmVolume *vol, const char *path, bool flip_rows);

/* ---------- PNG ---------- */

/* Writes an 8-bit RGB (channels 3) or grey (channels 1) image. Atomic. */
bool sm_io_png_save(SmError **error, const char *path, const uint8_t *pixels, size_t width,
                    size_t height, int channels);

/* ---------- files ---------- */

/* mkdir -p; fails with SM_ERR_OUTPUT naming the path. */
bool sm_io_mkdir_p(SmError **error, const char *path);
/* Writes bytes to path atomically (path.tmp-PID then rename). */
bool sm_io_write_file_atomic(SmError **error, const char *path, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif
