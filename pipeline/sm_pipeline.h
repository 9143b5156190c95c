/* Internal API of the pipeline folder: inputs, subcommands, results documents, exit codes. */
#ifndef SM_PIPELINE_H
#define SM_PIPELINE_H

#include "sm_core.h"
#include "sm_io.h"

#include <jansson.h>

#define SM_VERSION_STRING "0.1.0"
#define SM_RESULTS_SCHEMA "spinemets.results/1"

/* Documented process exit codes (docs/errors.md). */
enum {
    SM_EXIT_OK = 0,
    SM_EXIT_INTERNAL = 1,   /* a bug or out of memory */
    SM_EXIT_USAGE = 2,      /* bad command line */
    SM_EXIT_NO_SERIES = 3,  /* input holds no usable image series */
    SM_EXIT_BAD_INPUT = 4,  /* input unreadable, corrupt or unsupported */
    SM_EXIT_OUTPUT = 5,     /* output not writable */
    SM_EXIT_PARTIAL = 6     /* some series done, others failed */
};

/* Maps an error category onto an exit code. */
int sm_exit_code_for(SmErrorCode code);

/* What an input path turned out to be, and the series it offers. A NIfTI file is one
 * series; DICOM inputs are scanned together (several files/folders may form one). */
typedef struct SmInputSet {
    SmDicomScan *scan;      /* NULL if there were no DICOM inputs */
    size_t n_nifti;
    char **nifti_paths;
} SmInputSet;

bool sm_pipeline_inputs_open(SmError **error, char *const *paths, size_t n, SmInputSet **out);
void sm_pipeline_inputs_destroy(SmInputSet *set);
size_t sm_pipeline_inputs_count(const SmInputSet *set);
/* Stable, filesystem-safe identity of series `index` (the Series Instance UID plus any
 * stack suffix for DICOM, the file name stem for NIfTI), written into name[n]. */
void sm_pipeline_inputs_name(const SmInputSet *set, size_t index, char *name, size_t n);
/* True when series `index` is wanted: always without a UID filter, else only the DICOM
 * series with that Series Instance UID. */
bool sm_pipeline_inputs_selected(const SmInputSet *set, size_t index, const char *uid);
/* The scan-time warnings of series `index` followed by `extra` (may be NULL), as JSON. */
json_t *sm_pipeline_series_warnings(const SmInputSet *set, size_t index, const SmStrList *extra);
/* Loads series `index`; warnings appended to *warnings. */
bool sm_pipeline_inputs_load(SmError **error, const SmInputSet *set, size_t index, int threads,
                             SmVolume **out, SmStrList *warnings);

/* Reads a vertebra label map made on ct's grid and converts it to VerSe ids: a NIfTI map
 * (axes may be ordered differently: re-indexed exactly, never resampled) with mapping
 * NULL/"verse"/"vertebrae_pp" (identity 1..28), "total" (TotalSegmentator v2) or the path
 * of a JSON object {"id": "level"}; or a DICOM SEG whose frames lie on ct's slices, its
 * segments named by level ("L1", "vertebrae_L1", ...) or mapped by number with a JSON
 * map. SM_ERR_GEOMETRY when the grids differ. Returns U8. */
bool sm_pipeline_labels_import(SmError **error, const SmVolume *ct, const char *path,
                               const char *mapping, SmVolume **out, SmStrList *notes);

/* Options of the segmentation stage (from the run command line). */
typedef struct SmSegmentStageOptions {
    int threads;
    const char *labels_path;   /* --labels: import instead of segmenting */
    const char *label_map;     /* --label-map: verse | total | vertebrae_pp | FILE.json */
    const char *anchor_level;  /* --anchor LEVEL@Z */
    double anchor_z_mm;
    size_t n_pain;             /* --pain LEVEL=POINTS, repeatable */
    char pain_level[32][8];
    int pain_points[32];
} SmSegmentStageOptions;

struct SmSpineSeg;
struct SmVertebra;
/* Runs built-in segmentation or imports labels, writes labels.nii.gz, subregions.nii.gz
 * and qc_sagittal.png into dir, adds "segmentation" and "vertebrae" to doc. */
bool sm_stage_segment(SmError **error, const SmVolume *ct, const SmSegmentStageOptions *opt,
                      const char *dir, json_t *doc, struct SmSpineSeg **out);
json_t *sm_json_vertebra(const struct SmVertebra *v);
struct SmSeriesMetrics;
/* Measures every vertebra of seg and merges the results into doc's vertebrae[] (same
 * order) plus "series_metrics"; the caller owns *out (sm_metrics_destroy). */
bool sm_stage_metrics(SmError **error, const SmVolume *ct, const struct SmSpineSeg *seg,
                      const SmSegmentStageOptions *opt, json_t *doc, struct SmSeriesMetrics **out);
/* Canal profile and Bilsky ESCC grade per vertebra (levels with a lesion are graded, others
 * only when epidural tissue is seen), merged into vertebrae[] plus "escc"; writes
 * qc_axial_<level>.png for every graded level into dir. */
bool sm_stage_escc(SmError **error, const SmVolume *ct, const struct SmSpineSeg *seg,
                   const struct SmSeriesMetrics *m, int threads, const char *dir, json_t *doc);

/* JSON helpers shared by inspect and run. */
json_t *sm_json_volume_geometry(const SmVolume *vol);
json_t *sm_json_strlist(const SmStrList *list);
json_t *sm_json_number_or_null(double v);
/* [{path, reason}] for every file the scan did not use (empty array for NULL). */
json_t *sm_json_skipped(const SmDicomScan *scan);
/* Dumps a JSON document atomically (temp + rename), indent 2, keys in insertion order. */
bool sm_json_save(SmError **error, const json_t *doc, const char *path);

/* Subcommands: each returns a process exit code. */
int sm_cmd_inspect(int argc, char **argv);
int sm_cmd_run(int argc, char **argv);
int sm_cmd_phantom(int argc, char **argv);

#endif
