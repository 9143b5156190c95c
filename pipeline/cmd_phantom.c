/* The `spinemets phantom` subcommand: spec file + flags -> synthetic CT series and truth. */
#define _POSIX_C_SOURCE 200809L
#include "phantom.h"
#include "phantom_tumour.h"
#include "sm_pipeline.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: spinemets phantom [options] -o OUTDIR\n"
            "Writes a synthetic spine CT series with ground truth:\n"
            "  OUTDIR/dicom/IM*.dcm, OUTDIR/truth.json, OUTDIR/truth_labels.nii.gz,\n"
            "  OUTDIR/truth_subregions.nii.gz (docs/phantom.md).\n"
            "options (flags override the spec file; defaults: T10-S1, 256x256, 0.9 mm, 2 mm):\n"
            "  --spec FILE          JSON spec (sample-data/*.json)\n"
            "  --levels A-B         level range, e.g. T10-S1, C1-T2 (C1..S1)\n"
            "  --seed N             random seed (noise, texture); same seed, same bytes\n"
            "  --dims CxR[xS]       columns x rows [x slices]; slices 0 or omitted = cover levels\n"
            "  --pixel MM           in-plane pixel spacing\n"
            "  --slice MM           slice spacing and thickness\n"
            "  --feet-first         FFS: first image at the feet, row direction patient right\n"
            "  --head-first         HFS (default)\n"
            "  --ffs-axes A         flipped (default) or standard: FFS with the image axes and\n"
            "                       slice order of an HFS scan, as many scanners write FFS\n"
            "  --oblique DEG        rotate the image axes by DEG degrees\n"
            "  --oblique-axis AX    LR (default), AP or SI: the axis of that rotation\n"
            "  --noise HU           Gaussian noise sigma (default 12)\n"
            "  --fov-center X,Y,Z   grid centre in patient LPS mm (default: levels' centre)\n"
            "  --contrast           enhanced aorta and kidneys\n"
            "  --threads N          OpenMP threads (output is identical for any N)\n"
            "  --preview            also write OUTDIR/preview_sagittal.png and preview_axial.png\n"
            "  --random-pathology N replace the spec's pathology with lesions, collapses and\n"
            "                       malalignment drawn from seed N (docs/phantom.md)\n"
            "  -o, --output DIR     output directory (created)\n"
            "  -h, --help           this help\n"
            "exit codes: 0 ok, 2 usage or invalid spec, 5 output not writable, 1 other\n");
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_dims(const char *s, size_t dims[3])
{
    unsigned long v[3] = {0, 0, 0};
    int n = 0;
    const char *p = s;
    while (n < 3) {
        char *end;
        if (*p < '0' || *p > '9')
            return false;
        v[n++] = strtoul(p, &end, 10);
        if (*end == '\0')
            break;
        if (*end != 'x' && *end != 'X')
            return false;
        p = end + 1;
    }
    if (n < 2 || *p == '\0')
        return false;
    for (int d = 0; d < 3; d++)
        dims[d] = (size_t)v[d];
    return true;
}

enum {
    OPT_SPEC = 256, OPT_LEVELS, OPT_SEED, OPT_DIMS, OPT_PIXEL, OPT_SLICE, OPT_FFS, OPT_HFS,
    OPT_OBLIQUE, OPT_OBLIQUE_AXIS, OPT_FFS_AXES, OPT_NOISE, OPT_FOV, OPT_CONTRAST, OPT_THREADS,
    OPT_PREVIEW, OPT_RANDOM_PATHOLOGY
};

static int fail_usage(const char *what, const char *arg)
{
    fprintf(stderr, "spinemets phantom: %s%s\n'spinemets phantom --help' lists the options.\n",
            what, arg);
    return SM_EXIT_USAGE;
}

static int fail_usage2(const char *pre, const char *arg, const char *post)
{
    fprintf(stderr, "spinemets phantom: %s%s%s\n'spinemets phantom --help' lists the options.\n",
            pre, arg, post);
    return SM_EXIT_USAGE;
}

/* Epidural tumours of a spec file ("epidural_tumours" array, docs/phantom.md): parsed and
 * applied to the generated phantom; their truth goes to OUTDIR/truth_escc.json. */
#define MAX_TUMOURS 24
static bool apply_spec_tumours(SmError **error, const char *spec_path, SmPhantom *ph, json_t **truth)
{
    *truth = NULL;
    if (!spec_path)
        return true;
    json_error_t je;
    json_t *doc = json_load_file(spec_path, 0, &je);
    json_t *arr = doc ? json_object_get(doc, "epidural_tumours") : NULL;
    if (!arr) {
        json_decref(doc);
        return true;
    }
    char *text = json_dumps(arr, 0);
    SmPhantomTumourSpec specs[MAX_TUMOURS];
    SmPhantomTumourTruth tt[MAX_TUMOURS];
    size_t n = 0;
    bool ok = text && sm_phantom_tumour_parse(error, text, specs, MAX_TUMOURS, &n) &&
              sm_phantom_tumour_apply(error, ph, specs, n, tt);
    free(text);
    json_decref(doc);
    if (!ok) {
        sm_error_prefix(error, "%s: epidural_tumours: ", spec_path);
        return false;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_pack("{s:s, s:i, s:s, s:s, s:b, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
            "level", sm_phantom_level_name(tt[i].level), "verse_id", tt[i].verse_id,
            "position", sm_phantom_tumour_position_name(tt[i].position),
            "grade", sm_phantom_tumour_grade_name(tt[i].grade), "below_conus", tt[i].below_conus,
            "canal_area_mm2", tt[i].canal_area_mm2, "sac_area_before_mm2", tt[i].sac_area_before_mm2,
            "sac_area_mm2", tt[i].sac_area_mm2, "cord_area_before_mm2", tt[i].cord_area_before_mm2,
            "cord_area_mm2", tt[i].cord_area_mm2, "csf_area_before_mm2", tt[i].csf_area_before_mm2,
            "csf_area_mm2", tt[i].csf_area_mm2, "tumour_area_mm2", tt[i].tumour_area_mm2));
    *truth = json_pack("{s:s, s:o}", "schema", "spinemets.phantom-escc-truth/1", "epidural_tumours", out);
    return true;
}

int sm_cmd_phantom(int argc, char **argv)
{
    static const struct option opts[] = {
        {"spec", required_argument, NULL, OPT_SPEC},
        {"levels", required_argument, NULL, OPT_LEVELS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"dims", required_argument, NULL, OPT_DIMS},
        {"pixel", required_argument, NULL, OPT_PIXEL},
        {"slice", required_argument, NULL, OPT_SLICE},
        {"feet-first", no_argument, NULL, OPT_FFS},
        {"head-first", no_argument, NULL, OPT_HFS},
        {"oblique", required_argument, NULL, OPT_OBLIQUE},
        {"oblique-axis", required_argument, NULL, OPT_OBLIQUE_AXIS},
        {"ffs-axes", required_argument, NULL, OPT_FFS_AXES},
        {"noise", required_argument, NULL, OPT_NOISE},
        {"fov-center", required_argument, NULL, OPT_FOV},
        {"contrast", no_argument, NULL, OPT_CONTRAST},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"preview", no_argument, NULL, OPT_PREVIEW},
        {"random-pathology", required_argument, NULL, OPT_RANDOM_PATHOLOGY},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    /* first pass: find --spec and --help; flags are applied over the spec afterwards */
    const char *spec_path = NULL, *outdir = NULL;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return SM_EXIT_OK;
        }
        if (c == '?')
            return fail_usage2("unknown option or missing value: ", argv[optind - 1], "");
        if (c == OPT_SPEC)
            spec_path = optarg;
        if (c == 'o')
            outdir = optarg;
    }
    if (optind < argc)
        return fail_usage2("unexpected argument '", argv[optind], "'");
    if (!outdir)
        return fail_usage("an output directory is required (-o OUTDIR)", "");
    SmPhantomSpec spec;
    sm_phantom_spec_default(&spec);
    SmError *err = NULL;
    if (spec_path && !sm_phantom_spec_load(&err, spec_path, &spec)) {
        fprintf(stderr, "spinemets phantom: %s\n", err->message);
        sm_error_destroy(err);
        return SM_EXIT_USAGE;
    }
    int threads = 0;
    bool preview = false, random_pathology = false;
    uint64_t random_seed = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        double v;
        switch (c) {
        case OPT_LEVELS:
            if (!sm_phantom_levels_parse(optarg, &spec.level_first, &spec.level_last))
                return fail_usage2("--levels '", optarg,
                                   "': expected FIRST-LAST with levels C1..S1");
            break;
        case OPT_SEED: {
            char *end;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (end == optarg || *end != '\0' || optarg[0] == '-')
                return fail_usage2("--seed '", optarg, "': expected a non-negative integer");
            spec.seed = (uint64_t)s;
            break;
        }
        case OPT_DIMS:
            if (!parse_dims(optarg, spec.dims))
                return fail_usage2("--dims '", optarg, "': expected COLSxROWS or COLSxROWSxSLICES");
            break;
        case OPT_PIXEL:
            if (!parse_double(optarg, &spec.pixel_mm))
                return fail_usage2("--pixel '", optarg, "': expected a number (mm)");
            break;
        case OPT_SLICE:
            if (!parse_double(optarg, &spec.slice_mm))
                return fail_usage2("--slice '", optarg, "': expected a number (mm)");
            break;
        case OPT_FFS:
            snprintf(spec.patient_position, sizeof spec.patient_position, "FFS");
            break;
        case OPT_HFS:
            snprintf(spec.patient_position, sizeof spec.patient_position, "HFS");
            break;
        case OPT_OBLIQUE:
            if (!parse_double(optarg, &spec.oblique_deg))
                return fail_usage2("--oblique '", optarg, "': expected degrees");
            break;
        case OPT_OBLIQUE_AXIS:
            if (strcmp(optarg, "LR") == 0)
                spec.oblique_axis = 0;
            else if (strcmp(optarg, "AP") == 0)
                spec.oblique_axis = 1;
            else if (strcmp(optarg, "SI") == 0)
                spec.oblique_axis = 2;
            else
                return fail_usage2("--oblique-axis '", optarg, "': expected LR, AP or SI");
            break;
        case OPT_FFS_AXES:
            if (strcmp(optarg, "flipped") == 0)
                spec.ffs_standard_axes = false;
            else if (strcmp(optarg, "standard") == 0)
                spec.ffs_standard_axes = true;
            else
                return fail_usage2("--ffs-axes '", optarg, "': expected flipped or standard");
            break;
        case OPT_NOISE:
            if (!parse_double(optarg, &v) || v < 0)
                return fail_usage2("--noise '", optarg, "': expected a sigma >= 0 (HU)");
            spec.noise_sigma_hu = v;
            break;
        case OPT_FOV:
            if (sscanf(optarg, "%lf,%lf,%lf", &spec.fov_center[0], &spec.fov_center[1],
                       &spec.fov_center[2]) != 3)
                return fail_usage2("--fov-center '", optarg, "': expected X,Y,Z in mm");
            spec.fov_center_set = true;
            break;
        case OPT_CONTRAST:
            spec.contrast = true;
            break;
        case OPT_THREADS:
            if (!parse_double(optarg, &v) || v < 1 || v > 1024 || v != floor(v))
                return fail_usage2("--threads '", optarg, "': expected a positive integer");
            threads = (int)v;
            break;
        case OPT_PREVIEW:
            preview = true;
            break;
        case OPT_RANDOM_PATHOLOGY: {
            char *end;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (end == optarg || *end != '\0' || optarg[0] == '-')
                return fail_usage2("--random-pathology '", optarg,
                                   "': expected a non-negative integer seed");
            random_pathology = true;
            random_seed = (uint64_t)s;
            break;
        }
        default:
            break;
        }
    }
    /* after the level flags: the draw covers the final levels */
    if (random_pathology)
        sm_phantom_spec_randomize(&spec, random_seed, 0.5, 0.3, 0.15);
    if (!sm_phantom_spec_validate(&err, &spec)) {
        fprintf(stderr, "spinemets phantom: %s\n", err->message);
        sm_error_destroy(err);
        return SM_EXIT_USAGE;
    }
    if (threads > 0)
        sm_omp_set_threads(threads);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    SmPhantom *ph = NULL;
    int rc = SM_EXIT_OK;
    json_t *escc_truth = NULL;
    if (!sm_phantom_generate(&err, &spec, &ph) || !apply_spec_tumours(&err, spec_path, ph, &escc_truth) ||
        !sm_phantom_write(&err, ph, outdir)) {
        rc = err && err->code == SM_ERR_OUTPUT ? SM_EXIT_OUTPUT
             : err && err->code == SM_ERR_USAGE ? SM_EXIT_USAGE
                                                : SM_EXIT_INTERNAL;
    }
    if (rc == SM_EXIT_OK && escc_truth) {
        char path[4200];
        snprintf(path, sizeof path, "%s/truth_escc.json", outdir);
        if (!sm_json_save(&err, escc_truth, path))
            rc = SM_EXIT_OUTPUT;
    }
    json_decref(escc_truth);
    if (rc == SM_EXIT_OK && preview) {
        size_t n = strlen(outdir) + 32;
        char *a = malloc(n), *b = malloc(n);
        if (a && b) {
            snprintf(a, n, "%s/preview_sagittal.png", outdir);
            snprintf(b, n, "%s/preview_axial.png", outdir);
            if (!sm_phantom_write_previews(&err, ph, a, b))
                rc = err && err->code == SM_ERR_OUTPUT ? SM_EXIT_OUTPUT : SM_EXIT_INTERNAL;
        } else {
            rc = SM_EXIT_INTERNAL;
        }
        free(a);
        free(b);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != SM_EXIT_OK) {
        fprintf(stderr, "spinemets phantom: %s\n", err ? err->message : "out of memory");
    } else {
        printf("spinemets phantom: wrote %s (%zux%zux%zu, %s-%s, %s, seed %llu) in %.2f s\n",
               outdir, ph->ct->dims[0], ph->ct->dims[1], ph->ct->dims[2],
               sm_phantom_level_name(spec.level_first), sm_phantom_level_name(spec.level_last),
               spec.patient_position, (unsigned long long)spec.seed,
               (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    }
    sm_error_destroy(err);
    sm_phantom_destroy(ph);
    return rc;
}
