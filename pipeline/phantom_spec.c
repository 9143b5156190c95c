/* Phantom specification: defaults, level names, JSON spec parsing and validation. */
#include "phantom.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const level_names[SM_PHANTOM_N_LEVELS] = {
    "C1", "C2", "C3", "C4", "C5", "C6", "C7",
    "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12",
    "L1", "L2", "L3", "L4", "L5", "S1"};

const char *sm_phantom_level_name(int level)
{
    if (level < 0 || level >= SM_PHANTOM_N_LEVELS)
        return "?";
    return level_names[level];
}

int sm_phantom_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < SM_PHANTOM_N_LEVELS; i++) {
        const char *a = level_names[i];
        size_t n = strlen(a);
        if (strlen(name) == n && (name[0] == a[0] || name[0] == a[0] + ('a' - 'A')) &&
            strcmp(name + 1, a + 1) == 0)
            return i;
    }
    return -1;
}

bool sm_phantom_levels_parse(const char *text, int *first, int *last)
{
    char a[8], b[8];
    const char *dash = strchr(text, '-');
    size_t na = dash ? (size_t)(dash - text) : strlen(text);
    if (na == 0 || na >= sizeof a)
        return false;
    memcpy(a, text, na);
    a[na] = '\0';
    if (dash) {
        size_t nb = strlen(dash + 1);
        if (nb == 0 || nb >= sizeof b)
            return false;
        memcpy(b, dash + 1, nb + 1);
    } else {
        memcpy(b, a, na + 1);
    }
    int f = sm_phantom_level_parse(a), l = sm_phantom_level_parse(b);
    if (f < 0 || l < 0 || f > l)
        return false;
    *first = f;
    *last = l;
    return true;
}

bool sm_phantom_spec_default(SmPhantomSpec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->seed = 1;
    spec->level_first = sm_phantom_level_parse("T10");
    spec->level_last = SM_PHANTOM_LEVEL_S1;
    spec->dims[0] = 256;
    spec->dims[1] = 256;
    spec->dims[2] = 0;
    spec->pixel_mm = 0.9;
    spec->slice_mm = 2.0;
    spec->fov_center_set = false;
    snprintf(spec->patient_position, sizeof spec->patient_position, "HFS");
    spec->oblique_deg = 0.0;
    spec->oblique_axis = 0;
    spec->noise_sigma_hu = 12.0;
    spec->texture_hu = 20.0;
    spec->cervical_lordosis_deg = 25.0;
    spec->thoracic_kyphosis_deg = 40.0;
    spec->lumbar_lordosis_deg = 45.0;
    spec->scoliosis_deg = 0.0;
    spec->scoliosis_apex = sm_phantom_level_parse("T9");
    spec->aorta = true;
    spec->contrast = false;
    spec->conus_level = sm_phantom_level_parse("L1");
    spec->hu = (SmPhantomHu){.air = -1000, .fat = -100, .muscle = 50, .soft_tissue = 35,
                             .lung = -850, .blood = 40, .contrast = 200, .cortical = 850,
                             .cancellous = 200, .disc = 85, .csf = 10, .cord = 35,
                             .epidural_fat = -100, .table = 250};
    for (int i = 0; i < SM_PHANTOM_N_LEVELS; i++) {
        spec->vertebra[i].cancellous_hu = NAN;
        spec->vertebra[i].height_scale = 1.0;
    }
    snprintf(spec->series_description, sizeof spec->series_description, "spinemets phantom");
    return true;
}

/* ---- JSON field readers: each names the file and the field on error ---- */

static bool get_number(SmError **error, const char *path, json_t *obj, const char *key,
                       const char *field, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_number(v)) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": expected a number", path, field);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

static bool get_bool(SmError **error, const char *path, json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_boolean(v)) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": expected true or false", path, key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

static bool get_level(SmError **error, const char *path, json_t *obj, const char *key,
                      const char *field, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    int l = json_is_string(v) ? sm_phantom_level_parse(json_string_value(v)) : -1;
    if (l < 0) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": expected a level name C1..S1",
                     path, field);
        return false;
    }
    *out = l;
    return true;
}

static bool parse_levels(SmError **error, const char *path, json_t *v, SmPhantomSpec *spec)
{
    bool ok = false;
    if (json_is_string(v)) {
        ok = sm_phantom_levels_parse(json_string_value(v), &spec->level_first, &spec->level_last);
    } else if (json_is_array(v) && json_array_size(v) == 2 &&
               json_is_string(json_array_get(v, 0)) && json_is_string(json_array_get(v, 1))) {
        int f = sm_phantom_level_parse(json_string_value(json_array_get(v, 0)));
        int l = sm_phantom_level_parse(json_string_value(json_array_get(v, 1)));
        ok = f >= 0 && l >= f;
        if (ok) {
            spec->level_first = f;
            spec->level_last = l;
        }
    }
    if (!ok)
        sm_error_set(error, SM_ERR_FORMAT,
                     "%s: field \"levels\": expected \"FIRST-LAST\" or [\"FIRST\", \"LAST\"] "
                     "with levels C1..S1 in cranio-caudal order",
                     path);
    return ok;
}

static bool parse_dims(SmError **error, const char *path, json_t *v, SmPhantomSpec *spec)
{
    if (!json_is_array(v) || json_array_size(v) != 3) {
        sm_error_set(error, SM_ERR_FORMAT,
                     "%s: field \"dims\": expected [columns, rows, slices] (slices 0 = auto)",
                     path);
        return false;
    }
    for (size_t d = 0; d < 3; d++) {
        json_t *e = json_array_get(v, d);
        if (!json_is_integer(e) || json_integer_value(e) < (d == 2 ? 0 : 1) ||
            json_integer_value(e) > 4096) {
            sm_error_set(error, SM_ERR_FORMAT,
                         "%s: field \"dims[%zu]\": expected an integer in %d..4096", path, d,
                         d == 2 ? 0 : 1);
            return false;
        }
        spec->dims[d] = (size_t)json_integer_value(e);
    }
    return true;
}

static bool parse_point(SmError **error, const char *path, json_t *v, const char *field,
                        double out[3])
{
    if (!json_is_array(v) || json_array_size(v) != 3) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": expected [x, y, z] in LPS mm",
                     path, field);
        return false;
    }
    for (size_t d = 0; d < 3; d++) {
        json_t *e = json_array_get(v, d);
        if (!json_is_number(e)) {
            sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s[%zu]\": expected a number", path,
                         field, d);
            return false;
        }
        out[d] = json_number_value(e);
    }
    return true;
}

static bool parse_hu(SmError **error, const char *path, json_t *o, SmPhantomHu *hu)
{
    if (!json_is_object(o)) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: field \"hu\": expected an object", path);
        return false;
    }
    struct { const char *key; double *dst; } f[] = {
        {"air", &hu->air}, {"fat", &hu->fat}, {"muscle", &hu->muscle},
        {"soft_tissue", &hu->soft_tissue}, {"lung", &hu->lung}, {"blood", &hu->blood},
        {"contrast", &hu->contrast}, {"cortical", &hu->cortical},
        {"cancellous", &hu->cancellous}, {"disc", &hu->disc}, {"csf", &hu->csf},
        {"cord", &hu->cord}, {"epidural_fat", &hu->epidural_fat}, {"table", &hu->table}};
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        size_t i;
        for (i = 0; i < sizeof f / sizeof f[0]; i++)
            if (strcmp(key, f[i].key) == 0)
                break;
        char field[80];
        snprintf(field, sizeof field, "hu.%s", key);
        if (i == sizeof f / sizeof f[0]) {
            sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": unknown tissue", path, field);
            return false;
        }
        if (!get_number(error, path, o, key, field, f[i].dst))
            return false;
    }
    return true;
}

static bool parse_vertebrae(SmError **error, const char *path, json_t *o, SmPhantomSpec *spec)
{
    if (!json_is_object(o)) {
        sm_error_set(error, SM_ERR_FORMAT,
                     "%s: field \"vertebrae\": expected an object keyed by level name", path);
        return false;
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        int l = sm_phantom_level_parse(key);
        if (l < 0 || !json_is_object(val)) {
            sm_error_set(error, SM_ERR_FORMAT,
                         "%s: field \"vertebrae.%s\": expected a level name C1..S1 with an "
                         "object value",
                         path, key);
            return false;
        }
        char field[80];
        const char *k2;
        json_t *v2;
        json_object_foreach(val, k2, v2) {
            snprintf(field, sizeof field, "vertebrae.%s.%s", key, k2);
            double *dst = NULL;
            if (strcmp(k2, "cancellous_hu") == 0)
                dst = &spec->vertebra[l].cancellous_hu;
            else if (strcmp(k2, "height_scale") == 0)
                dst = &spec->vertebra[l].height_scale;
            if (!dst) {
                sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": unknown key", path, field);
                return false;
            }
            if (!get_number(error, path, val, k2, field, dst))
                return false;
        }
    }
    return true;
}

bool sm_phantom_spec_load(SmError **error, const char *path, SmPhantomSpec *spec)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            sm_error_set(error, SM_ERR_IO, "%s: cannot open the phantom spec", path);
            return false;
        }
        fclose(f);
        sm_error_set(error, SM_ERR_FORMAT, "%s:%d:%d: not valid JSON: %s", path, jerr.line,
                     jerr.column, jerr.text);
        return false;
    }
    bool ok = false;
    if (!json_is_object(root)) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: the spec must be a JSON object", path);
        goto done;
    }
    static const char *const known[] = {
        "seed", "levels", "dims", "pixel_mm", "slice_mm", "fov_center", "patient_position",
        "oblique_deg", "oblique_axis", "ffs_axes", "noise_sigma_hu", "texture_hu", "curvature",
        "aorta",
        "contrast", "conus_level", "hu", "vertebrae", "series_description", "comment"};
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        size_t i;
        for (i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strcmp(key, known[i]) == 0)
                break;
        if (i == sizeof known / sizeof known[0]) {
            sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": unknown field", path, key);
            goto done;
        }
    }
    json_t *v;
    if ((v = json_object_get(root, "seed"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            sm_error_set(error, SM_ERR_FORMAT, "%s: field \"seed\": expected an integer >= 0",
                         path);
            goto done;
        }
        spec->seed = (uint64_t)json_integer_value(v);
    }
    if ((v = json_object_get(root, "levels")) && !parse_levels(error, path, v, spec))
        goto done;
    if ((v = json_object_get(root, "dims")) && !parse_dims(error, path, v, spec))
        goto done;
    if (!get_number(error, path, root, "pixel_mm", "pixel_mm", &spec->pixel_mm) ||
        !get_number(error, path, root, "slice_mm", "slice_mm", &spec->slice_mm) ||
        !get_number(error, path, root, "oblique_deg", "oblique_deg", &spec->oblique_deg) ||
        !get_number(error, path, root, "noise_sigma_hu", "noise_sigma_hu",
                    &spec->noise_sigma_hu) ||
        !get_number(error, path, root, "texture_hu", "texture_hu", &spec->texture_hu) ||
        !get_bool(error, path, root, "aorta", &spec->aorta) ||
        !get_bool(error, path, root, "contrast", &spec->contrast) ||
        !get_level(error, path, root, "conus_level", "conus_level", &spec->conus_level))
        goto done;
    if ((v = json_object_get(root, "fov_center"))) {
        if (json_is_null(v)) {
            spec->fov_center_set = false;
        } else {
            if (!parse_point(error, path, v, "fov_center", spec->fov_center))
                goto done;
            spec->fov_center_set = true;
        }
    }
    if ((v = json_object_get(root, "patient_position"))) {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(s, "HFS") != 0 && strcmp(s, "FFS") != 0) {
            sm_error_set(error, SM_ERR_FORMAT,
                         "%s: field \"patient_position\": expected \"HFS\" or \"FFS\"", path);
            goto done;
        }
        snprintf(spec->patient_position, sizeof spec->patient_position, "%s", s);
    }
    if ((v = json_object_get(root, "ffs_axes"))) {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(s, "flipped") == 0)
            spec->ffs_standard_axes = false;
        else if (strcmp(s, "standard") == 0)
            spec->ffs_standard_axes = true;
        else {
            sm_error_set(error, SM_ERR_FORMAT,
                         "%s: field \"ffs_axes\": expected \"flipped\" or \"standard\"", path);
            goto done;
        }
    }
    if ((v = json_object_get(root, "oblique_axis"))) {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(s, "LR") == 0)
            spec->oblique_axis = 0;
        else if (strcmp(s, "AP") == 0)
            spec->oblique_axis = 1;
        else if (strcmp(s, "SI") == 0)
            spec->oblique_axis = 2;
        else {
            sm_error_set(error, SM_ERR_FORMAT,
                         "%s: field \"oblique_axis\": expected \"LR\", \"AP\" or \"SI\"", path);
            goto done;
        }
    }
    if ((v = json_object_get(root, "series_description"))) {
        if (!json_is_string(v)) {
            sm_error_set(error, SM_ERR_FORMAT,
                         "%s: field \"series_description\": expected a string", path);
            goto done;
        }
        snprintf(spec->series_description, sizeof spec->series_description, "%s",
                 json_string_value(v));
    }
    if ((v = json_object_get(root, "curvature"))) {
        if (!json_is_object(v)) {
            sm_error_set(error, SM_ERR_FORMAT, "%s: field \"curvature\": expected an object",
                         path);
            goto done;
        }
        const char *k;
        json_t *cv;
        json_object_foreach(v, k, cv) {
            char field[80];
            snprintf(field, sizeof field, "curvature.%s", k);
            double *dst = NULL;
            if (strcmp(k, "cervical_lordosis_deg") == 0)
                dst = &spec->cervical_lordosis_deg;
            else if (strcmp(k, "thoracic_kyphosis_deg") == 0)
                dst = &spec->thoracic_kyphosis_deg;
            else if (strcmp(k, "lumbar_lordosis_deg") == 0)
                dst = &spec->lumbar_lordosis_deg;
            else if (strcmp(k, "scoliosis_deg") == 0)
                dst = &spec->scoliosis_deg;
            if (strcmp(k, "scoliosis_apex") == 0) {
                if (!get_level(error, path, v, k, field, &spec->scoliosis_apex))
                    goto done;
                continue;
            }
            if (!dst) {
                sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": unknown key", path, field);
                goto done;
            }
            if (!get_number(error, path, v, k, field, dst))
                goto done;
        }
    }
    if ((v = json_object_get(root, "hu")) && !parse_hu(error, path, v, &spec->hu))
        goto done;
    if ((v = json_object_get(root, "vertebrae")) && !parse_vertebrae(error, path, v, spec))
        goto done;
    ok = true;
done:
    json_decref(root);
    return ok;
}

bool sm_phantom_spec_validate(SmError **error, const SmPhantomSpec *s)
{
    if (s->level_first < 0 || s->level_last >= SM_PHANTOM_N_LEVELS ||
        s->level_first > s->level_last) {
        sm_error_set(error, SM_ERR_USAGE, "phantom spec: levels: need C1 <= first <= last <= S1");
        return false;
    }
    if (s->dims[0] < 8 || s->dims[1] < 8 || s->dims[0] > 4096 || s->dims[1] > 4096 ||
        s->dims[2] > 8192) {
        sm_error_set(error, SM_ERR_USAGE,
                     "phantom spec: dims: columns and rows must be 8..4096, slices 0..8192");
        return false;
    }
    if (!(s->pixel_mm >= 0.2 && s->pixel_mm <= 5.0)) {
        sm_error_set(error, SM_ERR_USAGE, "phantom spec: pixel_mm %g: expected 0.2..5 mm",
                     s->pixel_mm);
        return false;
    }
    if (!(s->slice_mm >= 0.2 && s->slice_mm <= 10.0)) {
        sm_error_set(error, SM_ERR_USAGE, "phantom spec: slice_mm %g: expected 0.2..10 mm",
                     s->slice_mm);
        return false;
    }
    if (!(fabs(s->oblique_deg) <= 45.0) || s->oblique_axis < 0 || s->oblique_axis > 2) {
        sm_error_set(error, SM_ERR_USAGE, "phantom spec: oblique_deg %g: expected -45..45",
                     s->oblique_deg);
        return false;
    }
    if (!(s->noise_sigma_hu >= 0.0 && s->noise_sigma_hu <= 500.0) ||
        !(s->texture_hu >= 0.0 && s->texture_hu <= 500.0)) {
        sm_error_set(error, SM_ERR_USAGE,
                     "phantom spec: noise_sigma_hu / texture_hu must be 0..500 HU");
        return false;
    }
    if (strcmp(s->patient_position, "HFS") != 0 && strcmp(s->patient_position, "FFS") != 0) {
        sm_error_set(error, SM_ERR_USAGE, "phantom spec: patient_position \"%s\": HFS or FFS",
                     s->patient_position);
        return false;
    }
    double curv[4] = {s->cervical_lordosis_deg, s->thoracic_kyphosis_deg,
                      s->lumbar_lordosis_deg, s->scoliosis_deg};
    for (int i = 0; i < 4; i++)
        if (!(fabs(curv[i]) <= 90.0)) {
            sm_error_set(error, SM_ERR_USAGE, "phantom spec: curvature angles must be -90..90");
            return false;
        }
    if (s->conus_level < 2 || s->conus_level >= SM_PHANTOM_LEVEL_S1 || s->scoliosis_apex < 0 ||
        s->scoliosis_apex >= SM_PHANTOM_N_LEVELS) {
        sm_error_set(error, SM_ERR_USAGE,
                     "phantom spec: conus_level (C3..L5) / scoliosis_apex out of range");
        return false;
    }
    for (int i = 0; i < SM_PHANTOM_N_LEVELS; i++)
        if (!(s->vertebra[i].height_scale >= 0.3 && s->vertebra[i].height_scale <= 1.5)) {
            sm_error_set(error, SM_ERR_USAGE,
                         "phantom spec: vertebrae.%s.height_scale %g: expected 0.3..1.5",
                         sm_phantom_level_name(i), s->vertebra[i].height_scale);
            return false;
        }
    return true;
}
