/* `spinemets inspect`: what series an input holds, their geometry and value ranges. */
#include "sm_pipeline.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: spinemets inspect [--json] [--series UID] [--threads N] INPUT...\n"
               "  INPUT: DICOM folder (recursive), DICOM files, DICOMDIR, or .nii/.nii.gz\n"
               "  --json         print one JSON document on stdout\n"
               "  --series UID   only this Series Instance UID\n"
               "  --threads N    decoding threads (default: all cores)\n");
}

static json_t *series_json(const SmInputSet *set, size_t index, const SmVolume *vol,
                           const SmStrList *warnings)
{
    json_t *o = json_object();
    size_t nd = set->scan ? set->scan->n_series : 0;
    const SmDicomSeries *ds = index < nd ? &set->scan->series[index] : NULL;
    json_object_set_new(o, "series_uid", json_string(ds ? ds->series_uid : vol ? vol->meta.series_uid : ""));
    if (ds && ds->stack_id[0])
        json_object_set_new(o, "stack", json_string(ds->stack_id));
    json_object_set_new(o, "source", json_string(ds ? "dicom" : "nifti"));
    if (!ds)
        json_object_set_new(o, "path", json_string(set->nifti_paths[index - nd]));
    json_object_set_new(o, "modality", json_string(ds ? ds->modality : vol ? vol->meta.modality : ""));
    if (ds)
        json_object_set_new(o, "series_description", json_string(ds->series_description));
    json_object_set_new(o, "n_files", json_integer(ds ? (json_int_t)ds->n_files : 1));
    if (ds) {
        json_object_set_new(o, "transfer_syntaxes", sm_json_strlist(&ds->transfer_syntaxes));
    }
    if (vol) {
        json_t *g = sm_json_volume_geometry(vol);
        json_object_update(o, g);
        json_decref(g);
        json_object_set_new(o, "voxel_type", json_string(sm_voxel_type_name(vol->type)));
        double lo, hi, mean;
        sm_volume_stats(vol, &lo, &hi, &mean);
        json_t *hu = json_object();
        json_object_set_new(hu, "min", json_real(lo));
        json_object_set_new(hu, "max", json_real(hi));
        json_object_set_new(hu, "mean", json_real(round(mean * 1000.0) / 1000.0));
        json_object_set_new(o, vol->meta.is_hu ? "hu" : "intensity", hu);
        json_t *acq = json_object();
        json_object_set_new(acq, "patient_position", json_string(vol->meta.patient_position));
        json_object_set_new(acq, "slice_thickness_mm", sm_json_number_or_null(vol->meta.slice_thickness_mm));
        json_object_set_new(acq, "kvp", sm_json_number_or_null(vol->meta.kvp));
        json_object_set_new(acq, "convolution_kernel", json_string(vol->meta.convolution_kernel));
        json_object_set_new(acq, "contrast_agent", json_string(vol->meta.contrast_agent));
        json_object_set_new(acq, "manufacturer", json_string(vol->meta.manufacturer));
        json_object_set_new(acq, "gantry_tilt_deg", json_real(vol->meta.gantry_tilt_deg));
        json_object_set_new(acq, "resampled", json_boolean(vol->meta.resampled));
        json_object_set_new(o, "acquisition", acq);
    }
    json_object_set_new(o, "warnings", sm_pipeline_series_warnings(set, index, warnings));
    return o;
}

static void print_text(const json_t *s)
{
    printf("series %s (%s, %s)\n", json_string_value(json_object_get(s, "series_uid")),
           json_string_value(json_object_get(s, "modality")),
           json_string_value(json_object_get(s, "source")));
    json_t *err = json_object_get(s, "error");
    if (err) {
        printf("  error: %s\n", json_string_value(err));
        return;
    }
    json_t *d = json_object_get(s, "dims"), *sp = json_object_get(s, "spacing_mm");
    printf("  files %lld, dims %lldx%lldx%lld, spacing %.4g x %.4g x %.4g mm\n",
           (long long)json_integer_value(json_object_get(s, "n_files")),
           (long long)json_integer_value(json_array_get(d, 0)),
           (long long)json_integer_value(json_array_get(d, 1)),
           (long long)json_integer_value(json_array_get(d, 2)), json_real_value(json_array_get(sp, 0)),
           json_real_value(json_array_get(sp, 1)), json_real_value(json_array_get(sp, 2)));
    json_t *hu = json_object_get(s, "hu");
    if (!hu)
        hu = json_object_get(s, "intensity");
    printf("  %s min %.1f max %.1f mean %.2f\n", json_object_get(s, "hu") ? "HU" : "values",
           json_real_value(json_object_get(hu, "min")), json_real_value(json_object_get(hu, "max")),
           json_real_value(json_object_get(hu, "mean")));
    json_t *ts = json_object_get(s, "transfer_syntaxes");
    for (size_t i = 0; ts && i < json_array_size(ts); i++)
        printf("  transfer syntax: %s\n", json_string_value(json_array_get(ts, i)));
    json_t *w = json_object_get(s, "warnings");
    for (size_t i = 0; i < json_array_size(w); i++)
        printf("  warning: %s\n", json_string_value(json_array_get(w, i)));
}

int sm_cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"series", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool as_json = false;
    const char *only = NULL;
    int threads = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "js:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 's': only = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'h': usage(stdout); return SM_EXIT_OK;
        default: usage(stderr); return SM_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return SM_EXIT_USAGE;
    }
    if (threads > 0)
        sm_omp_set_threads(threads);
    SmError *err = NULL;
    SmInputSet *set = NULL;
    if (!sm_pipeline_inputs_open(&err, argv + optind, (size_t)(argc - optind), &set)) {
        fprintf(stderr, "spinemets inspect: %s\n", err->message);
        int code = sm_exit_code_for(err->code);
        sm_error_destroy(err);
        return code;
    }
    json_t *doc = json_object(), *arr = json_array();
    json_object_set_new(doc, "spinemets_version", json_string(SM_VERSION_STRING));
    size_t n = sm_pipeline_inputs_count(set), n_ok = 0, n_failed = 0;
    int worst = SM_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        char name[160];
        sm_pipeline_inputs_name(set, i, name, sizeof name);
        if (!sm_pipeline_inputs_selected(set, i, only))
            continue;
        SmVolume *vol = NULL;
        SmStrList warnings = {0};
        json_t *s;
        if (sm_pipeline_inputs_load(&err, set, i, threads, &vol, &warnings)) {
            s = series_json(set, i, vol, &warnings);
            n_ok++;
        } else {
            s = series_json(set, i, NULL, &warnings);
            json_object_set_new(s, "error", json_string(err->message));
            json_object_set_new(s, "error_kind", json_string(sm_error_code_name(err->code)));
            worst = sm_exit_code_for(err->code);
            sm_error_destroy(err);
            err = NULL;
            n_failed++;
        }
        json_array_append_new(arr, s);
        sm_volume_destroy(vol);
        sm_strlist_clear(&warnings);
    }
    json_object_set_new(doc, "series", arr);
    json_t *skipped = sm_json_skipped(set->scan);
    json_object_set_new(doc, "skipped", skipped);
    json_object_set_new(doc, "warnings", sm_json_strlist(set->scan ? &set->scan->warnings : NULL));
    if (as_json) {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        if (text) {
            puts(text);
            free(text);
        }
    } else {
        for (size_t i = 0; i < json_array_size(arr); i++)
            print_text(json_array_get(arr, i));
        for (size_t i = 0; i < json_array_size(skipped); i++) {
            json_t *k = json_array_get(skipped, i);
            printf("skipped %s: %s\n", json_string_value(json_object_get(k, "path")),
                   json_string_value(json_object_get(k, "reason")));
        }
    }
    json_decref(doc);
    sm_pipeline_inputs_destroy(set);
    if (only && n_ok + n_failed == 0) {
        fprintf(stderr, "spinemets inspect: no series with UID %s in the input\n", only);
        return SM_EXIT_NO_SERIES;
    }
    if (n_failed == 0)
        return SM_EXIT_OK;
    return n_ok > 0 ? SM_EXIT_PARTIAL : worst;
}
