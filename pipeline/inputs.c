/* Turns command-line input paths into loadable series: DICOM files/folders/DICOMDIRs
 * scanned together, NIfTI files one series each. */
#include "sm_pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_nifti_name(const char *p)
{
    size_t n = strlen(p);
    return (n > 4 && strcmp(p + n - 4, ".nii") == 0) || (n > 7 && strcmp(p + n - 7, ".nii.gz") == 0);
}

bool sm_pipeline_inputs_open(SmError **error, char *const *paths, size_t n, SmInputSet **out)
{
    SmInputSet *set = calloc(1, sizeof *set);
    const char **dicom = calloc(n ? n : 1, sizeof *dicom);
    set = set && dicom ? set : NULL;
    if (!set || (n && !(set->nifti_paths = calloc(n, sizeof *set->nifti_paths)))) {
        free(set);
        free(dicom);
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    size_t n_dicom = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            sm_error_set(error, SM_ERR_IO, "%s: cannot open input: %s", paths[i], strerror(errno));
            free(dicom);
            sm_pipeline_inputs_destroy(set);
            return false;
        }
        if (S_ISREG(st.st_mode) && is_nifti_name(paths[i]))
            set->nifti_paths[set->n_nifti++] = strdup(paths[i]);
        else
            dicom[n_dicom++] = paths[i];
    }
    if (n_dicom > 0 && !sm_io_dicom_scan(error, dicom, n_dicom, &set->scan)) {
        free(dicom);
        sm_pipeline_inputs_destroy(set);
        return false;
    }
    free(dicom);
    *out = set;
    return true;
}

void sm_pipeline_inputs_destroy(SmInputSet *set)
{
    if (!set)
        return;
    sm_io_dicom_scan_destroy(set->scan);
    for (size_t i = 0; i < set->n_nifti; i++)
        free(set->nifti_paths[i]);
    free(set->nifti_paths);
    free(set);
}

size_t sm_pipeline_inputs_count(const SmInputSet *set)
{
    return (set->scan ? set->scan->n_series : 0) + set->n_nifti;
}

static void sanitize(char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '.' || *s == '-' || *s == '_'))
            *s = '_';
}

static void base_name(const SmInputSet *set, size_t index, char *name, size_t n)
{
    size_t nd = set->scan ? set->scan->n_series : 0;
    if (index < nd) {
        const SmDicomSeries *s = &set->scan->series[index];
        snprintf(name, n, "%s%s%s", s->series_uid[0] ? s->series_uid : "no-series-uid",
                 s->stack_id[0] ? "_" : "", s->stack_id);
    } else {
        const char *p = set->nifti_paths[index - nd];
        const char *base = strrchr(p, '/');
        base = base ? base + 1 : p;
        snprintf(name, n, "%s", base);
        char *dot = strstr(name, ".nii");
        if (dot)
            *dot = '\0';
    }
    sanitize(name);
}

void sm_pipeline_inputs_name(const SmInputSet *set, size_t index, char *name, size_t n)
{
    /* Two series may share a base name (no Series Instance UID; NIfTI files with the same
     * stem in different folders): later ones get their position appended, so no output
     * folder is ever shared. */
    base_name(set, index, name, n);
    char other[256];
    for (size_t i = 0; i < index; i++) {
        base_name(set, i, other, sizeof other);
        if (strcmp(other, name) == 0) {
            size_t len = strlen(name);
            snprintf(name + len, n > len ? n - len : 0, "_%zu", index + 1);
            break;
        }
    }
}

bool sm_pipeline_inputs_load(SmError **error, const SmInputSet *set, size_t index, int threads,
                             SmVolume **out, SmStrList *warnings)
{
    size_t nd = set->scan ? set->scan->n_series : 0;
    if (index < nd) {
        SmDicomLoadOptions opt = {.tilt = SM_TILT_RESAMPLE, .threads = threads};
        return sm_io_dicom_series_load(error, set->scan, index, &opt, out, warnings);
    }
    if (!sm_io_nifti_load(error, set->nifti_paths[index - nd], out))
        return false;
    /* NIfTI carries no modality: a volume whose values span air to bone is taken as CT HU. */
    double lo, hi, mean;
    sm_volume_stats(*out, &lo, &hi, &mean);
    if (lo <= -900.0 && hi >= 300.0) {
        snprintf((*out)->meta.modality, sizeof (*out)->meta.modality, "CT");
        (*out)->meta.is_hu = true;
    } else {
        snprintf((*out)->meta.modality, sizeof (*out)->meta.modality, "OT");
        if (warnings)
            sm_strlist_add(warnings, "%s: value range %.0f..%.0f is not CT Hounsfield units; treated as a non-CT intensity image",
                           set->nifti_paths[index - nd], lo, hi);
    }
    return true;
}

bool sm_pipeline_inputs_selected(const SmInputSet *set, size_t index, const char *uid)
{
    if (!uid)
        return true;
    return set->scan && index < set->scan->n_series &&
           strcmp(set->scan->series[index].series_uid, uid) == 0;
}

json_t *sm_pipeline_series_warnings(const SmInputSet *set, size_t index, const SmStrList *extra)
{
    json_t *a = json_array();
    size_t nd = set->scan ? set->scan->n_series : 0;
    for (size_t i = 0; index < nd && i < set->scan->series[index].warnings.n; i++)
        json_array_append_new(a, json_string(set->scan->series[index].warnings.items[i]));
    for (size_t i = 0; extra && i < extra->n; i++)
        json_array_append_new(a, json_string(extra->items[i]));
    return a;
}
