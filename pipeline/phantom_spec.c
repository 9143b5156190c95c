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

static const char *const transitional_names[] = {"none", "L6", "T13", "11_ribs",
                                                   "sacralised_L5"};

const char *sm_phantom_transitional_name(int code)
{
    if (code < 0 || code > SM_PHANTOM_TRANS_SACRALISED_L5)
        return "?";
    return transitional_names[code];
}

int sm_phantom_verse_id(const SmPhantomSpec *spec, int level)
{
    if (level == SM_PHANTOM_LEVEL_S1)
        return 26;
    int t = spec ? spec->transitional : SM_PHANTOM_TRANS_NONE;
    if (t == SM_PHANTOM_TRANS_L6 && level >= 6)
        return level + 2; /* C7 slot = T1 (8) .. T11 slot = T12, T12 slot = L1 .. L5 slot = L6 */
    if (t == SM_PHANTOM_TRANS_T13 && level >= 6) {
        if (level <= 17)
            return level + 2; /* C7 slot = T1 .. T11 slot = T12 */
        if (level == 18)
            return 28; /* T13 */
    }
    return level + 1;
}

const char *sm_phantom_verse_name(int verse_id)
{
    static const char *const n[29] = {
        "?", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "T1", "T2", "T3", "T4", "T5", "T6",
        "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "L6", "S1",
        "?", "T13"};
    if (verse_id < 1 || verse_id > 28)
        return "?";
    return n[verse_id];
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
    spec->osteoporotic = false;
    spec->osteoporotic_hu = 75.0;
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

/* Names of the pathology codes in the spec and truth files. */
static const char *const lesion_type_names[] = {"", "lytic", "blastic", "mixed", "bone_island"};
static const char *const collapse_names[] = {"none", "wedge", "biconcave", "crush"};
static const char *const side_names[] = {"none", "left", "right", "bilateral"};

const char *sm_phantom_lesion_type_name(int type)
{
    return type >= 1 && type <= 4 ? lesion_type_names[type] : "?";
}

const char *sm_phantom_collapse_name(int type)
{
    return type >= 0 && type <= 3 ? collapse_names[type] : "?";
}

const char *sm_phantom_side_name(int side)
{
    return side >= 0 && side <= 3 ? side_names[side] : "?";
}

/* Named placements: lesion centres in the body frame (fractions of the semi-axes). */
static const struct { const char *name; double c[3]; } placements[] = {
    {"central", {0, 0, 0}},          {"anterior", {0, -0.5, 0}},
    {"posterior", {0, 0.45, 0}},     {"left", {0.5, 0, 0}},
    {"right", {-0.5, 0, 0}},         {"superior", {0, 0, 0.45}},
    {"inferior", {0, 0, -0.45}},     {"posterolateral_left", {0.45, 0.35, 0}},
    {"posterolateral_right", {-0.45, 0.35, 0}}};

static bool parse_name(SmError **error, const char *path, json_t *v, const char *field,
                       const char *const *names, int n, int first, int *out)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    for (int i = first; s && i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return true;
        }
    if (s && names == side_names && strcmp(s, "both") == 0) {
        *out = SM_PHANTOM_SIDE_BILATERAL;
        return true;
    }
    char list[160] = "";
    for (int i = first; i < n; i++) {
        size_t k = strlen(list);
        snprintf(list + k, sizeof list - k, "%s\"%s\"", i > first ? ", " : "", names[i]);
    }
    sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": expected one of %s", path, field, list);
    return false;
}

static bool parse_lesion(SmError **error, const char *path, json_t *o, const char *where,
                         SmPhantomLesionSpec *ls)
{
    char field[96];
    if (!json_is_object(o)) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": expected an object", path, where);
        return false;
    }
    memset(ls, 0, sizeof *ls);
    ls->fraction = 0.3;
    ls->hu = NAN;
    ls->radius_mm = 4.0;
    ls->type = 0;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        snprintf(field, sizeof field, "%s.%s", where, k);
        if (strcmp(k, "type") == 0) {
            if (!parse_name(error, path, v, field, lesion_type_names, 5, 1, &ls->type))
                return false;
        } else if (strcmp(k, "fraction") == 0) {
            if (!get_number(error, path, o, k, field, &ls->fraction))
                return false;
        } else if (strcmp(k, "hu") == 0) {
            if (!get_number(error, path, o, k, field, &ls->hu))
                return false;
        } else if (strcmp(k, "radius_mm") == 0) {
            if (!get_number(error, path, o, k, field, &ls->radius_mm))
                return false;
        } else if (strcmp(k, "cortical_breach") == 0) {
            if (!get_bool(error, path, o, k, &ls->cortical_breach))
                return false;
        } else if (strcmp(k, "extension") == 0) {
            if (!parse_name(error, path, v, field, side_names, 4, 0, &ls->extension))
                return false;
        } else if (strcmp(k, "seed") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": expected an integer >= 0",
                             path, field);
                return false;
            }
            ls->seed = (uint64_t)json_integer_value(v);
        } else if (strcmp(k, "placement") == 0) {
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            size_t i;
            for (i = 0; i < sizeof placements / sizeof placements[0]; i++)
                if (strcmp(s, placements[i].name) == 0)
                    break;
            if (i == sizeof placements / sizeof placements[0]) {
                sm_error_set(error, SM_ERR_FORMAT,
                             "%s: field \"%s\": expected central, anterior, posterior, left, "
                             "right, superior, inferior, posterolateral_left or "
                             "posterolateral_right",
                             path, field);
                return false;
            }
            memcpy(ls->center, placements[i].c, sizeof ls->center);
        } else if (strcmp(k, "center") == 0) {
            if (!parse_point(error, path, v, field, ls->center))
                return false;
        } else {
            sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": unknown key", path, field);
            return false;
        }
    }
    if (ls->type == 0) {
        snprintf(field, sizeof field, "%s.type", where);
        sm_error_set(error, SM_ERR_FORMAT,
                     "%s: field \"%s\": required (lytic, blastic, mixed or bone_island)", path,
                     field);
        return false;
    }
    return true;
}

static bool parse_vertebra(SmError **error, const char *path, const char *key, json_t *val,
                           SmPhantomVertebraSpec *vs)
{
    char field[80];
    const char *k2;
    json_t *v2;
    json_object_foreach(val, k2, v2) {
        snprintf(field, sizeof field, "vertebrae.%s.%s", key, k2);
        double *dst = NULL;
        if (strcmp(k2, "cancellous_hu") == 0)
            dst = &vs->cancellous_hu;
        else if (strcmp(k2, "height_scale") == 0)
            dst = &vs->height_scale;
        else if (strcmp(k2, "kyphosis_deg") == 0)
            dst = &vs->kyphosis_deg;
        else if (strcmp(k2, "scoliosis_deg") == 0)
            dst = &vs->scoliosis_deg;
        if (dst) {
            if (!get_number(error, path, val, k2, field, dst))
                return false;
        } else if (strcmp(k2, "collapse") == 0) {
            json_t *t = json_is_object(v2) ? json_object_get(v2, "type") : NULL;
            json_t *pc = json_is_object(v2) ? json_object_get(v2, "percent") : NULL;
            if (!t || !json_is_number(pc) || json_object_size(v2) != 2) {
                sm_error_set(error, SM_ERR_FORMAT,
                             "%s: field \"%s\": expected {\"type\": wedge|biconcave|crush, "
                             "\"percent\": P}",
                             path, field);
                return false;
            }
            snprintf(field, sizeof field, "vertebrae.%s.collapse.type", key);
            if (!parse_name(error, path, t, field, collapse_names, 4, 1, &vs->collapse_type))
                return false;
            vs->collapse_pct = json_number_value(pc);
        } else if (strcmp(k2, "translation") == 0) {
            json_t *d = json_is_object(v2) ? json_object_get(v2, "direction") : NULL;
            json_t *mm = json_is_object(v2) ? json_object_get(v2, "mm") : NULL;
            const char *ds = json_is_string(d) ? json_string_value(d) : "";
            static const char *const dirs[4] = {"left", "right", "posterior", "anterior"};
            int di = -1;
            for (int i = 0; i < 4; i++)
                if (strcmp(ds, dirs[i]) == 0)
                    di = i;
            if (di < 0 || !json_is_number(mm) || json_object_size(v2) != 2) {
                sm_error_set(error, SM_ERR_FORMAT,
                             "%s: field \"%s\": expected {\"direction\": anterior|posterior|"
                             "left|right, \"mm\": D}",
                             path, field);
                return false;
            }
            double mmv = json_number_value(mm);
            vs->translation_mm[0] = di == 0 ? mmv : (di == 1 ? -mmv : 0);
            vs->translation_mm[1] = di == 2 ? mmv : (di == 3 ? -mmv : 0);
        } else if (strcmp(k2, "translation_mm") == 0) {
            if (!json_is_array(v2) || json_array_size(v2) != 2 ||
                !json_is_number(json_array_get(v2, 0)) || !json_is_number(json_array_get(v2, 1))) {
                sm_error_set(error, SM_ERR_FORMAT,
                             "%s: field \"%s\": expected [lateral (+ left), AP (+ posterior)] mm",
                             path, field);
                return false;
            }
            vs->translation_mm[0] = json_number_value(json_array_get(v2, 0));
            vs->translation_mm[1] = json_number_value(json_array_get(v2, 1));
        } else if (strcmp(k2, "lesions") == 0) {
            if (!json_is_array(v2) || json_array_size(v2) > SM_PHANTOM_MAX_LESIONS) {
                sm_error_set(error, SM_ERR_FORMAT,
                             "%s: field \"%s\": expected an array of at most %d lesions", path,
                             field, SM_PHANTOM_MAX_LESIONS);
                return false;
            }
            vs->n_lesions = 0;
            for (size_t i = 0; i < json_array_size(v2); i++) {
                char where[80];
                snprintf(where, sizeof where, "vertebrae.%s.lesions[%zu]", key, i);
                if (!parse_lesion(error, path, json_array_get(v2, i), where, &vs->lesion[i]))
                    return false;
                vs->n_lesions++;
            }
        } else {
            sm_error_set(error, SM_ERR_FORMAT, "%s: field \"%s\": unknown key", path, field);
            return false;
        }
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
        if (!parse_vertebra(error, path, key, val, &spec->vertebra[l]))
            return false;
    }
    return true;
}

static bool name_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* "transitional": "L6" or {"anomaly": "...", "t12_rib_mm": N, "side": "..."} */
static bool parse_transitional(SmError **error, const char *path, json_t *v,
                               SmPhantomSpec *spec)
{
    json_t *a = json_is_object(v) ? json_object_get(v, "anomaly") : v;
    if (json_is_object(v)) {
        const char *field;
        json_t *val;
        json_object_foreach(v, field, val) {
            if (strcmp(field, "anomaly") && strcmp(field, "t12_rib_mm") && strcmp(field, "side")) {
                sm_error_set(error, SM_ERR_FORMAT, "%s: field \"transitional.%s\": unknown key",
                             path, field);
                return false;
            }
        }
    }
    const char *name = a && json_is_string(a) ? json_string_value(a) : NULL;
    int code = -1;
    for (int i = 0; name && i <= SM_PHANTOM_TRANS_SACRALISED_L5; i++)
        if (name_ieq(name, transitional_names[i]))
            code = i;
    if (code < 0 && name && name_ieq(name, "sacralized_L5"))
        code = SM_PHANTOM_TRANS_SACRALISED_L5;
    if (code < 0) {
        sm_error_set(error, SM_ERR_FORMAT,
                     "%s: field \"transitional\": expected none | L6 | T13 | 11_ribs | "
                     "sacralised_L5 (a string, or an object with \"anomaly\")", path);
        return false;
    }
    spec->transitional = code;
    if (json_is_object(v)) {
        json_t *r = json_object_get(v, "t12_rib_mm");
        if (r) {
            if (!json_is_number(r)) {
                sm_error_set(error, SM_ERR_FORMAT,
                             "%s: field \"transitional.t12_rib_mm\": expected a number", path);
                return false;
            }
            spec->t12_rib_mm = json_number_value(r);
        }
        json_t *sd = json_object_get(v, "side");
        if (sd) {
            const char *sn = json_is_string(sd) ? json_string_value(sd) : "";
            int side = -1;
            for (int i = 1; i <= 3; i++)
                if (!strcmp(sn, side_names[i]))
                    side = i;
            if (!strcmp(sn, "both"))
                side = SM_PHANTOM_SIDE_BILATERAL;
            if (side < 0) {
                sm_error_set(error, SM_ERR_FORMAT,
                             "%s: field \"transitional.side\": expected left | right | "
                             "bilateral", path);
                return false;
            }
            spec->sacralised_side = side;
        }
    }
    if (code == SM_PHANTOM_TRANS_SACRALISED_L5 && spec->sacralised_side == SM_PHANTOM_SIDE_NONE)
        spec->sacralised_side = SM_PHANTOM_SIDE_BILATERAL;
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
        "contrast", "conus_level", "hu", "vertebrae", "series_description", "comment",
        "epidural_tumours", /* applied after generation (phantom_tumour.c) */
        "osteoporotic", "osteoporotic_hu", "transitional"};
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
        !get_bool(error, path, root, "osteoporotic", &spec->osteoporotic) ||
        !get_number(error, path, root, "osteoporotic_hu", "osteoporotic_hu",
                    &spec->osteoporotic_hu) ||
        !get_level(error, path, root, "conus_level", "conus_level", &spec->conus_level))
        goto done;
    if ((v = json_object_get(root, "transitional")) && !parse_transitional(error, path, v, spec))
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
    if (s->transitional < 0 || s->transitional > SM_PHANTOM_TRANS_SACRALISED_L5) {
        sm_error_set(error, SM_ERR_USAGE, "phantom spec: transitional %d: unknown anomaly",
                     s->transitional);
        return false;
    }
    if ((s->transitional == SM_PHANTOM_TRANS_L6 || s->transitional == SM_PHANTOM_TRANS_T13) &&
        s->level_first < 6) {
        sm_error_set(error, SM_ERR_USAGE,
                     "phantom spec: transitional %s: levels must start at C7 or below (the "
                     "C7 shape carries the first rib)", sm_phantom_transitional_name(s->transitional));
        return false;
    }
    if (!(s->t12_rib_mm >= 0 && s->t12_rib_mm < 40)) {
        sm_error_set(error, SM_ERR_USAGE,
                     "phantom spec: transitional.t12_rib_mm %g: expected 0..39 (a rib >= 40 mm "
                     "is a normal T12 rib by the VerSe rule)", s->t12_rib_mm);
        return false;
    }
    if (s->transitional == SM_PHANTOM_TRANS_SACRALISED_L5 &&
        (s->sacralised_side < SM_PHANTOM_SIDE_LEFT || s->sacralised_side > SM_PHANTOM_SIDE_BILATERAL ||
         s->level_first > 23 || s->level_last < SM_PHANTOM_LEVEL_S1)) {
        sm_error_set(error, SM_ERR_USAGE,
                     "phantom spec: transitional sacralised_L5 needs L5 and S1 in the levels "
                     "and a side (left, right, bilateral)");
        return false;
    }
    if (!(s->osteoporotic_hu >= 40 && s->osteoporotic_hu <= 150)) {
        sm_error_set(error, SM_ERR_USAGE, "phantom spec: osteoporotic_hu %g: expected 40..150",
                     s->osteoporotic_hu);
        return false;
    }
    for (int i = 0; i < SM_PHANTOM_N_LEVELS; i++) {
        const SmPhantomVertebraSpec *v = &s->vertebra[i];
        const char *n = sm_phantom_level_name(i);
        bool patho = v->collapse_type != SM_PHANTOM_COLLAPSE_NONE || v->n_lesions > 0;
        if (i == 0 && patho) {
            sm_error_set(error, SM_ERR_USAGE,
                         "phantom spec: vertebrae.C1: C1 has no body (no collapse or lesions)");
            return false;
        }
        if (v->collapse_type < 0 || v->collapse_type > 3 ||
            !(v->collapse_pct >= 0 && v->collapse_pct <= 75)) {
            sm_error_set(error, SM_ERR_USAGE,
                         "phantom spec: vertebrae.%s.collapse.percent %g: expected 0..75", n,
                         v->collapse_pct);
            return false;
        }
        if (v->n_lesions > SM_PHANTOM_MAX_LESIONS) {
            sm_error_set(error, SM_ERR_USAGE, "phantom spec: vertebrae.%s.lesions: at most %d",
                         n, SM_PHANTOM_MAX_LESIONS);
            return false;
        }
        for (size_t k = 0; k < v->n_lesions; k++) {
            const SmPhantomLesionSpec *ls = &v->lesion[k];
            bool ok = ls->type >= 1 && ls->type <= 4 && ls->extension >= 0 &&
                      ls->extension <= 3;
            for (int d = 0; d < 3; d++)
                ok = ok && fabs(ls->center[d]) <= 1.0;
            if (ls->type == SM_PHANTOM_LESION_BONE_ISLAND)
                ok = ok && ls->radius_mm >= 1.5 && ls->radius_mm <= 8;
            else
                ok = ok && ls->fraction >= 0.02 && ls->fraction <= 0.95;
            ok = ok && (isnan(ls->hu) || (ls->hu >= -200 && ls->hu <= 2000));
            if (!ok) {
                sm_error_set(error, SM_ERR_USAGE,
                             "phantom spec: vertebrae.%s.lesions[%zu]: fraction 0.02..0.95, "
                             "center -1..1, radius_mm 1.5..8, hu -200..2000",
                             n, k);
                return false;
            }
        }
        bool align = v->translation_mm[0] != 0 || v->translation_mm[1] != 0 ||
                     v->kyphosis_deg != 0 || v->scoliosis_deg != 0;
        if (align && (i == SM_PHANTOM_LEVEL_S1 || i == 0)) {
            sm_error_set(error, SM_ERR_USAGE,
                         "phantom spec: vertebrae.%s: translation / kyphosis / scoliosis apply "
                         "at the disc below a level C2..L5",
                         n);
            return false;
        }
        if (!(fabs(v->translation_mm[0]) <= 20 && fabs(v->translation_mm[1]) <= 20 &&
              fabs(v->kyphosis_deg) <= 45 && fabs(v->scoliosis_deg) <= 45)) {
            sm_error_set(error, SM_ERR_USAGE,
                         "phantom spec: vertebrae.%s: translation up to 20 mm, kyphosis / "
                         "scoliosis up to 45 deg",
                         n);
            return false;
        }
    }
    return true;
}

/* ---- random pathology ---- */

static uint64_t rnd_next(uint64_t *st)
{
    uint64_t x = (*st += 0x9E3779B97F4A7C15ULL);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static double rnd_uniform(uint64_t *st, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(rnd_next(st) >> 11) / 9007199254740992.0);
}

bool sm_phantom_spec_randomize(SmPhantomSpec *spec, uint64_t seed, double p_lesion,
                               double p_collapse, double p_alignment)
{
    uint64_t st = seed ^ 0x70617468ULL;
    for (int l = 0; l < SM_PHANTOM_N_LEVELS; l++) {
        SmPhantomVertebraSpec *v = &spec->vertebra[l];
        v->collapse_type = SM_PHANTOM_COLLAPSE_NONE;
        v->collapse_pct = 0;
        v->n_lesions = 0;
        memset(v->lesion, 0, sizeof v->lesion);
        v->translation_mm[0] = v->translation_mm[1] = 0;
        v->kyphosis_deg = v->scoliosis_deg = 0;
        v->height_scale = 1.0;
    }
    int last_align = -10;
    for (int l = spec->level_first; l <= spec->level_last; l++) {
        SmPhantomVertebraSpec *v = &spec->vertebra[l];
        /* draw every number whatever the branch, so one level's outcome does not shift the
         * draws of the next */
        double r[16];
        for (int i = 0; i < 16; i++)
            r[i] = rnd_uniform(&st, 0, 1);
        uint64_t shape_seed = rnd_next(&st) >> 16;
        if (l == 0)
            continue;
        if (r[0] < p_lesion) {
            SmPhantomLesionSpec *ls = &v->lesion[0];
            ls->hu = NAN;
            ls->radius_mm = 4;
            ls->seed = shape_seed;
            if (r[1] < 0.12) {
                ls->type = SM_PHANTOM_LESION_BONE_ISLAND;
                ls->radius_mm = 2.5 + 3.0 * r[2];
                ls->center[0] = (r[3] - 0.5) * 0.8;
                ls->center[1] = (r[4] - 0.5) * 0.8;
                ls->center[2] = (r[5] - 0.5) * 0.6;
            } else {
                ls->type = r[1] < 0.55 ? SM_PHANTOM_LESION_LYTIC
                         : (r[1] < 0.8 ? SM_PHANTOM_LESION_BLASTIC : SM_PHANTOM_LESION_MIXED);
                ls->fraction = 0.1 + 0.6 * r[2];
                ls->center[0] = (r[3] - 0.5) * 1.0;
                ls->center[1] = (r[4] - 0.5) * 1.0;
                ls->center[2] = (r[5] - 0.5) * 0.6;
                ls->cortical_breach = ls->type != SM_PHANTOM_LESION_BLASTIC && r[6] < 0.5;
                if (l != SM_PHANTOM_LEVEL_S1 && r[7] < 0.35)
                    ls->extension = r[8] < 0.4 ? SM_PHANTOM_SIDE_LEFT
                                  : (r[8] < 0.8 ? SM_PHANTOM_SIDE_RIGHT
                                                : SM_PHANTOM_SIDE_BILATERAL);
            }
            v->n_lesions = 1;
        }
        if (r[9] < p_collapse && l != SM_PHANTOM_LEVEL_S1) {
            v->collapse_type = 1 + (int)(r[10] * 3) % 3;
            v->collapse_pct = 10 + 50 * r[11];
        }
        if (r[12] < p_alignment && l != SM_PHANTOM_LEVEL_S1 && l < spec->level_last &&
            l > last_align + 1) {
            last_align = l;
            double sign = r[14] < 0.5 ? -1 : 1;
            if (r[13] < 0.4) {
                double mm = 3.5 + 4.5 * r[15];
                if (r[14] < 0.75)
                    v->translation_mm[1] = sign * mm; /* antero/retrolisthesis */
                else
                    v->translation_mm[0] = (r[15] < 0.5 ? -1 : 1) * mm;
            } else if (r[13] < 0.75) {
                v->kyphosis_deg = 12 + 13 * r[15];
            } else {
                v->scoliosis_deg = sign * (12 + 13 * r[15]);
            }
        }
    }
    return true;
}
