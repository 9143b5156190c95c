/* Internal interfaces of the io folder: the extern "C" boundary to DCMTK (dicom_dcmtk.cpp),
 * the OpenJPEG frame decoder (j2k.c) and what scan and load share. Not installed. */
#ifndef SM_IO_INTERNAL_H
#define SM_IO_INTERNAL_H

#include "sm_io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------- DICOM ---------- */

/* Sanity limits applied to headers before anything is allocated. */
#define SM_DCM_MAX_DIM 32768u            /* Rows, Columns */
#define SM_DCM_MAX_FRAMES 65536u         /* NumberOfFrames */
#define SM_DCM_MAX_FILE_BYTES ((size_t)1 << 31) /* decoded pixel bytes of one file */
#define SM_DCM_MAX_VOLUME_VOXELS ((size_t)1 << 31)

/* Geometry and value transform of one frame (top level, shared group or per-frame group). */
typedef struct SmDcmFrameGeom {
    double ipp[3];       /* Image Position (Patient), LPS mm */
    double iop[6];       /* Image Orientation (Patient): row direction, column direction */
    double spacing[2];   /* Pixel Spacing as stored: [0] between rows, [1] between columns */
    double slope, intercept;
    bool has_ipp, has_iop, has_spacing, has_rescale;
} SmDcmFrameGeom;

/* Facts read from one file's header (pixel data is not read). Strings are "" when absent. */
typedef struct SmDcmHeader {
    char sop_class[65];
    char sop_instance[65];
    char series_uid[65];
    char study_uid[65];
    char transfer_syntax[65];
    char modality[17];
    char image_type[129];
    char series_description[65];
    char patient_position[17];
    char manufacturer[65];
    char kernel[65];
    char contrast[65];
    char body_part[65];
    char photometric[17];
    bool is_dicomdir;      /* Media Storage Directory (DICOMDIR) */
    bool has_pixel_data;
    bool encapsulated;     /* compressed transfer syntax */
    bool big_endian;       /* explicit VR big endian */
    unsigned rows, cols, samples, bits_allocated, bits_stored, high_bit;
    unsigned pixel_representation; /* 0 unsigned, 1 two's complement */
    size_t frames;
    bool has_instance;
    long instance_number;
    bool has_acquisition;
    long acquisition_number;
    double slice_thickness, kvp, spacing_between_slices; /* NAN when absent */
    bool has_padding;
    double padding_value;  /* Pixel Padding Value as stored (before rescale) */
    bool has_padding_limit;
    double padding_limit;  /* Pixel Padding Range Limit */
    SmDcmFrameGeom geom;   /* top-level attributes merged with the shared functional group */
    SmDcmFrameGeom *frame_geom; /* per-frame groups (frames entries) or NULL; owned */
    bool pixel_offset_known; /* native little-endian pixel data at a verified offset */
    uint64_t pixel_offset;   /* file offset of the first pixel byte */
    uint64_t pixel_length;   /* value length of Pixel Data in bytes */
} SmDcmHeader;

/* Registers the DCMTK decoders and silences DCMTK logging, once per process (thread-safe). */
void sm_dcm_init(void);

/* Reads the header of path without loading pixel data. On failure (not DICOM, truncated
 * header, ...) sets SM_ERR_FORMAT or SM_ERR_IO with a reason and leaves *out cleared.
 * On success the caller frees out->frame_geom with sm_dcm_header_clear. Thread-safe. */
bool sm_dcm_header_read(SmError **error, const char *path, SmDcmHeader *out);
void sm_dcm_header_clear(SmDcmHeader *hdr);

/* Lists the image files a DICOMDIR references (absolute or relative to its folder),
 * appending to files. Thread-safe. */
bool sm_dcm_dicomdir_files(SmError **error, const char *path, SmStrList *files);

/* Decodes every frame of path into raw (frames*rows*cols samples of bits_allocated/8
 * bytes, host byte order, as stored: no rescale, no masking), raw_size bytes. hdr is the
 * header read from the same file. Uses the direct-read fast path when possible.
 * Thread-safe (each call has its own DCMTK objects). */
bool sm_dcm_pixels_read(SmError **error, const char *path, const SmDcmHeader *hdr, void *raw,
                        size_t raw_size);

/* One CT slice for the writer. */
typedef struct SmDcmWriteSlice {
    const char *patient_id, *patient_name, *study_uid, *series_uid, *frame_of_reference_uid;
    const char *series_description, *patient_position, *convolution_kernel;
    const char *study_date, *study_time;
    const char *image_type;  /* NULL: ORIGINAL\\PRIMARY\\AXIAL */
    double ipp[3], iop[6];
    double pixel_spacing[2]; /* row spacing, column spacing */
    double slice_thickness, rescale_intercept, rescale_slope, kvp; /* kvp NAN: omit */
    long instance_number;
    long acquisition_number; /* <= 0: 1 */
    unsigned rows, cols;
    bool pixel_signed;       /* PixelRepresentation 1 */
    bool has_padding;        /* write Pixel Padding Value padding_value (stored units) */
    uint16_t padding_value;
    const uint16_t *pixels;  /* rows*cols stored values (two's complement if signed) */
} SmDcmWriteSlice;

/* Writes one CT Image Storage file (explicit VR little endian) to path (not atomic: the
 * caller writes a temporary name and renames). Thread-safe. */
bool sm_dcm_ct_write(SmError **error, const char *path, const SmDcmWriteSlice *slice);
/* Writes one multi-frame CT file in the Enhanced CT layout (shared Pixel Measures, Plane
 * Orientation and Pixel Value Transformation; per-frame Plane Position ipp[f]); slice gives
 * everything but the positions, pixels holds n_frames*rows*cols stored values. A minimal
 * object for tests and phantoms, not a complete Enhanced CT IOD. Thread-safe. */
bool sm_dcm_enhanced_ct_write(SmError **error, const char *path, const SmDcmWriteSlice *slice, size_t n_frames,
                              const double (*ipp)[3], const uint16_t *pixels);
/* Writes a new UID (root of DCMTK's site UID) into out (65 bytes). Thread-safe. */
void sm_dcm_uid_generate(char out[65]);

/* Decodes one JPEG 2000 / HTJ2K frame (raw codestream or JP2 file) from memory into dst:
 * rows*cols samples of bytes_per_sample (1, 2 or 4) bytes, host order, signed or not as
 * stored. Fails with SM_ERR_FORMAT on a corrupt stream or one whose size/components do
 * not match. Thread-safe. */
bool sm_j2k_decode(SmError **error, const uint8_t *data, size_t n, unsigned rows, unsigned cols,
                   unsigned bytes_per_sample, void *dst);

/* Decodes one RLE Lossless frame from memory into dst (rows*cols samples of
 * bytes_per_sample bytes, host little-endian order). SM_ERR_FORMAT when corrupt or short.
 * Thread-safe. */
bool sm_rle_decode(SmError **error, const uint8_t *data, size_t n, unsigned rows, unsigned cols,
                   unsigned bytes_per_sample, void *dst);

/* Decodes one lossless JPEG (process 14, one component, 16-bit samples, no restart
 * intervals) frame into dst. SM_ERR_UNSUPPORTED for other JPEG flavours (the caller then
 * uses DCMTK), SM_ERR_FORMAT when corrupt. Thread-safe. */
bool sm_ljpeg_decode(SmError **error, const uint8_t *data, size_t n, unsigned rows, unsigned cols,
                     unsigned bytes_per_sample, void *dst);

/* Human name of a transfer syntax UID ("JPEG 2000 lossless", ...) or NULL if unknown. */
const char *sm_dcm_transfer_syntax_name(const char *uid);
/* True if the loader can decode this transfer syntax. */
bool sm_dcm_transfer_syntax_supported(const char *uid);

/* ---------- what dicom_scan.c hands to dicom_load.c ---------- */

/* One frame of a series: which file, which frame in it, and its header (shared by the
 * frames of one file). */
typedef struct SmDcmFrameRef {
    size_t file;           /* index into SmDicomSeries.files */
    size_t frame;          /* frame number in that file */
    const SmDcmHeader *hdr;
    SmDcmFrameGeom geom;   /* resolved geometry of this frame */
} SmDcmFrameRef;

typedef struct SmDcmSeriesPriv {
    SmDcmHeader *headers;  /* one per file of the series, same order as files */
    size_t n_frames;
    SmDcmFrameRef *frames;
} SmDcmSeriesPriv;

/* Returns the private data of series index of a scan made by sm_io_dicom_scan, or NULL
 * if scan was not made by it. */
const SmDcmSeriesPriv *sm_dcm_scan_priv(const SmDicomScan *scan, size_t index);

/* Checks the geometry of a scanned series without decoding pixels (duplicates, gaps,
 * irregular spacing, tilt), appending notes to warnings; false (with the reason) if the
 * series cannot be loaded as it stands. Implemented in dicom_load.c. */
bool sm_dcm_series_check(SmError **error, const SmDcmSeriesPriv *priv, SmStrList *warnings);

#ifdef __cplusplus
}
#endif
#endif
