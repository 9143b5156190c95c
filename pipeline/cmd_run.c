/* `spinemets run`: load each series, run the stages, write results per series. */
#include "sm_pipeline.h"
#include "sm_metrics.h"
#include "sm_segment.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: spinemets run [options] INPUT... -o OUTDIR\n"
               "  INPUT: DICOM folder (recursive), DICOM files, DICOMDIR, or .nii/.nii.gz\n"
               "  -o, --output DIR   output directory (created); one subfolder per series\n"
               "  --series UID       only this Series Instance UID\n"
               "  --threads N        threads for decoding and kernels (default: all cores)\n"
               "  --no-volume        do not write volume.nii.gz\n"
               "  --labels FILE      vertebra label map (NIfTI) on this series' grid, instead of\n"
               "                     the built-in segmentation\n"
               "  --label-map MAP    ids in --labels: verse (default), total (TotalSegmentator),\n"
               "                     vertebrae_pp, or a JSON file {\"id\": \"L1\", ...}\n"
               "  --anchor LEVEL@Z   the vertebra whose body spans LPS z = Z mm is LEVEL (e.g. L3@-120.5)\n"
               "  --pain LEVEL=N     clinical SINS pain points (0, 1 or 3) for a level; then\n"
               "                     the SINS total and category are given (repeatable)\n"
               "  --no-segment       load and write the volume only\n");
}

typedef struct RunOptions {
    const char *outdir;
    const char *only;
    int threads;
    bool write_volume;
    bool segment;
    SmSegmentStageOptions seg;
} RunOptions;

static json_t *input_json(const SmInputSet *set, size_t index, const SmVolume *vol)
{
    json_t *o = json_object();
    size_t nd = set->scan ? set->scan->n_series : 0;
    if (index < nd) {
        const SmDicomSeries *ds = &set->scan->series[index];
        json_object_set_new(o, "source", json_string("dicom"));
        json_object_set_new(o, "series_uid", json_string(ds->series_uid));
        json_object_set_new(o, "n_files", json_integer((json_int_t)ds->n_files));
        json_object_set_new(o, "transfer_syntaxes", sm_json_strlist(&ds->transfer_syntaxes));
    } else {
        json_object_set_new(o, "source", json_string("nifti"));
        json_object_set_new(o, "path", json_string(set->nifti_paths[index - nd]));
    }
    if (vol) {
        json_object_set_new(o, "modality", json_string(vol->meta.modality));
        json_object_set_new(o, "study_uid", json_string(vol->meta.study_uid));
        json_object_set_new(o, "series_description", json_string(vol->meta.series_description));
        json_object_set_new(o, "patient_position", json_string(vol->meta.patient_position));
        json_object_set_new(o, "slice_thickness_mm", sm_json_number_or_null(vol->meta.slice_thickness_mm));
        json_object_set_new(o, "kvp", sm_json_number_or_null(vol->meta.kvp));
        json_object_set_new(o, "convolution_kernel", json_string(vol->meta.convolution_kernel));
        json_object_set_new(o, "contrast_agent", json_string(vol->meta.contrast_agent));
        json_object_set_new(o, "gantry_tilt_deg", json_real(vol->meta.gantry_tilt_deg));
        json_object_set_new(o, "resampled", json_boolean(vol->meta.resampled));
    }
    return o;
}

/* Runs one series end to end. Returns SM_EXIT_OK or the series' failure code; the
 * per-series results.json is written in either case (status ok/failed). */
static int run_series(const SmInputSet *set, size_t index, const RunOptions *opt, json_t *summary)
{
    char name[160], dir[4096], path[4200];
    sm_pipeline_inputs_name(set, index, name, sizeof name);
    snprintf(dir, sizeof dir, "%s/%s", opt->outdir, name);
    SmError *err = NULL;
    SmStrList warnings = {0};
    SmVolume *vol = NULL;
    json_t *doc = json_object();
    json_object_set_new(doc, "schema", json_string(SM_RESULTS_SCHEMA));
    json_object_set_new(doc, "spinemets_version", json_string(SM_VERSION_STRING));
    json_object_set_new(doc, "series", json_string(name));
    json_t *stages = json_array();
    int code = SM_EXIT_OK;

    if (!sm_io_mkdir_p(&err, dir)) {
        code = SM_EXIT_OUTPUT;
        goto finish;
    }
    if (!sm_pipeline_inputs_load(&err, set, index, opt->threads, &vol, &warnings)) {
        code = sm_exit_code_for(err->code);
        goto write;
    }
    json_array_append_new(stages, json_string("load"));
    if (opt->write_volume) {
        snprintf(path, sizeof path, "%s/volume.nii.gz", dir);
        /* DICOM-derived volumes are stored bottom-up like dcm2niix, so arrays line up
         * with label maps made by dcm2niix-based tools. */
        bool flip = strcmp(vol->meta.source, "dicom") == 0;
        if (!sm_io_nifti_save_ex(&err, vol, path, flip)) {
            code = SM_EXIT_OUTPUT;
            goto write;
        }
    }
    if (opt->segment && vol->meta.is_hu) {
        SmSpineSeg *seg = NULL;
        if (!sm_stage_segment(&err, vol, &opt->seg, dir, doc, &seg)) {
            code = sm_exit_code_for(err->code);
            sm_error_prefix(&err, "segmentation: ");
            goto write;
        }
        json_array_append_new(stages, json_string("segment"));
        SmSeriesMetrics *metrics = NULL;
        if (!sm_stage_metrics(&err, vol, seg, &opt->seg, doc, &metrics)) {
            sm_seg_spine_destroy(seg);
            code = sm_exit_code_for(err->code);
            sm_error_prefix(&err, "metrics: ");
            goto write;
        }
        json_array_append_new(stages, json_string("metrics"));
        bool graded = sm_stage_escc(&err, vol, seg, metrics, opt->threads, dir, doc);
        sm_metrics_destroy(metrics);
        sm_seg_spine_destroy(seg);
        if (!graded) {
            code = sm_exit_code_for(err->code);
            sm_error_prefix(&err, "escc: ");
            goto write;
        }
        json_array_append_new(stages, json_string("escc"));
    } else if (opt->segment) {
        sm_strlist_add(&warnings, "segmentation skipped: modality %s is not CT in HU (CT only for now)",
                       vol->meta.modality[0] ? vol->meta.modality : "unknown");
    }
write:
    json_object_set_new(doc, "status", json_string(code == SM_EXIT_OK ? "ok" : "failed"));
    json_object_set_new(doc, "input", input_json(set, index, vol));
    if (vol)
        json_object_set_new(doc, "geometry", sm_json_volume_geometry(vol));
    json_object_set_new(doc, "stages", json_incref(stages));
    if (err) {
        json_t *e = json_object();
        json_object_set_new(e, "kind", json_string(sm_error_code_name(err->code)));
        json_object_set_new(e, "message", json_string(err->message));
        json_object_set_new(doc, "error", e);
    }
    json_object_set_new(doc, "warnings", sm_pipeline_series_warnings(set, index, &warnings));
    snprintf(path, sizeof path, "%s/results.json", dir);
    {
        SmError *werr = NULL;
        if (!sm_json_save(&werr, doc, path)) {
            if (!err)
                err = werr;
            else
                sm_error_destroy(werr);
            code = SM_EXIT_OUTPUT;
        }
    }
finish:
    {
        json_t *row = json_object();
        json_object_set_new(row, "series", json_string(name));
        json_object_set_new(row, "status", json_string(code == SM_EXIT_OK ? "ok" : "failed"));
        json_object_set_new(row, "results", json_string(code == SM_EXIT_OUTPUT ? "" : path));
        if (err)
            json_object_set_new(row, "error", json_string(err->message));
        json_array_append_new(summary, row);
    }
    if (err) {
        fprintf(stderr, "spinemets run: series %s: %s\n", name, err->message);
        sm_error_destroy(err);
    } else {
        printf("%s\n", path);
    }
    json_decref(stages);
    json_decref(doc);
    sm_volume_destroy(vol);
    sm_strlist_clear(&warnings);
    return code;
}

int sm_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"series", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"no-volume", no_argument, NULL, 'V'},
        {"labels", required_argument, NULL, 'L'},
        {"label-map", required_argument, NULL, 'M'},
        {"anchor", required_argument, NULL, 'A'},
        {"no-segment", no_argument, NULL, 'S'},
        {"pain", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    RunOptions opt = {.write_volume = true, .segment = true};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:s:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': opt.outdir = optarg; break;
        case 's': opt.only = optarg; break;
        case 't': opt.threads = atoi(optarg); break;
        case 'V': opt.write_volume = false; break;
        case 'L': opt.seg.labels_path = optarg; break;
        case 'M': opt.seg.label_map = optarg; break;
        case 'S': opt.segment = false; break;
        case 'P': {
            char *eq = strchr(optarg, '='), *end = NULL;
            long pts = eq ? strtol(eq + 1, &end, 10) : -1;
            if (eq)
                *eq = '\0';
            if (!eq || !end || *end || (pts != 0 && pts != 1 && pts != 3) ||
                sm_seg_level_from_name(optarg) == 0 || opt.seg.n_pain >= 32) {
                fprintf(stderr, "spinemets run: --pain wants LEVEL=POINTS with points 0, 1 or 3, e.g. L2=3\n");
                return SM_EXIT_USAGE;
            }
            snprintf(opt.seg.pain_level[opt.seg.n_pain], sizeof opt.seg.pain_level[0], "%s", optarg);
            opt.seg.pain_points[opt.seg.n_pain++] = (int)pts;
            break;
        }
        case 'A': {
            char *at = strchr(optarg, '@'), *end = NULL;
            if (at) {
                *at = '\0';
                opt.seg.anchor_z_mm = strtod(at + 1, &end);
            }
            if (!at || !end || *end || sm_seg_level_from_name(optarg) == 0) {
                fprintf(stderr, "spinemets run: --anchor wants LEVEL@Z, e.g. L3@-120.5\n");
                return SM_EXIT_USAGE;
            }
            opt.seg.anchor_level = optarg;
            break;
        }
        case 'h': usage(stdout); return SM_EXIT_OK;
        default: usage(stderr); return SM_EXIT_USAGE;
        }
    }
    if (optind >= argc || !opt.outdir) {
        usage(stderr);
        return SM_EXIT_USAGE;
    }
    if (opt.threads > 0)
        sm_omp_set_threads(opt.threads);
    opt.seg.threads = opt.threads;
    SmError *err = NULL;
    if (!sm_io_mkdir_p(&err, opt.outdir)) {
        fprintf(stderr, "spinemets run: %s\n", err->message);
        sm_error_destroy(err);
        return SM_EXIT_OUTPUT;
    }
    SmInputSet *set = NULL;
    if (!sm_pipeline_inputs_open(&err, argv + optind, (size_t)(argc - optind), &set)) {
        fprintf(stderr, "spinemets run: %s\n", err->message);
        int code = sm_exit_code_for(err->code);
        sm_error_destroy(err);
        return code;
    }
    json_t *summary = json_array();
    size_t n = sm_pipeline_inputs_count(set), n_ok = 0, n_failed = 0;
    int worst = SM_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        if (!sm_pipeline_inputs_selected(set, i, opt.only))
            continue;
        int code = run_series(set, i, &opt, summary);
        if (code == SM_EXIT_OK) {
            n_ok++;
        } else {
            n_failed++;
            worst = worst == SM_EXIT_OK || worst == code ? code : SM_EXIT_BAD_INPUT;
        }
    }
    json_t *run = json_object();
    json_object_set_new(run, "schema", json_string("spinemets.run/1"));
    json_object_set_new(run, "spinemets_version", json_string(SM_VERSION_STRING));
    json_t *skipped = sm_json_skipped(set->scan);
    json_object_set_new(run, "series", summary);
    json_object_set_new(run, "skipped", skipped);
    char path[4200];
    snprintf(path, sizeof path, "%s/run.json", opt.outdir);
    int rc;
    if (!sm_json_save(&err, run, path)) {
        fprintf(stderr, "spinemets run: %s\n", err->message);
        sm_error_destroy(err);
        rc = SM_EXIT_OUTPUT;
    } else if (opt.only && n_ok + n_failed == 0) {
        fprintf(stderr, "spinemets run: no series with UID %s in the input\n", opt.only);
        rc = SM_EXIT_NO_SERIES;
    } else if (n_failed == 0) {
        rc = SM_EXIT_OK;
    } else {
        rc = n_ok > 0 ? SM_EXIT_PARTIAL : worst;
    }
    json_decref(run);
    sm_pipeline_inputs_destroy(set);
    return rc;
}
