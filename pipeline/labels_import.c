/* Imported vertebra label maps (NIfTI or DICOM SEG): other tools' numbering or segment
 * names converted to VerSe ids, and the geometry checked against the image (exact
 * re-indexing only, never resampling). */
#include "sm_pipeline.h"
#include "sm_segment.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* TotalSegmentator "total" (v2): 25 sacrum, 26 S1, 27 L5 ... 31 L1, 32 T12 ... 43 T1,
 * 44 C7 ... 50 C1. From 27 to 50 the VerSe id is 51 - id. */
static void lut_total(int lut[65536])
{
    lut[25] = SM_VERSE_SACRUM;
    lut[26] = SM_VERSE_SACRUM;
    for (int t = 27; t <= 50; t++)
        lut[t] = 51 - t;
}

/* VerSe itself and TotalSegmentator "vertebrae_pp": 1 C1 ... 24 L5 (VerSe adds 25 L6,
 * 26 sacrum, 28 T13; 27 coccyx is not a vertebra we measure). */
static void lut_verse(int lut[65536])
{
    for (int t = 1; t <= 26; t++)
        lut[t] = t;
    lut[28] = SM_VERSE_T13;
}

/* Custom map: a JSON object {"source id": "level name", ...}, e.g. {"12": "L1"}. */
static bool lut_custom(SmError **error, const char *path, int lut[65536])
{
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc) {
        sm_error_set(error, SM_ERR_USAGE, "%s:%d:%d: label map is not valid JSON: %s", path, je.line,
                     je.column, je.text);
        return false;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        sm_error_set(error, SM_ERR_USAGE, "%s: label map must be a JSON object {\"id\": \"level\"}", path);
        return false;
    }
    const char *key;
    json_t *val;
    json_object_foreach(doc, key, val) {
        char *end;
        long id = strtol(key, &end, 10);
        const char *name = json_string_value(val);
        int verse = name ? sm_seg_level_from_name(name) : 0;
        if (*end || id < 1 || id > 65535 || verse == 0) {
            sm_error_set(error, SM_ERR_USAGE,
                         "%s: entry \"%s\": expected a label id 1..65535 mapped to a level name such as \"L1\"",
                         path, key);
            json_decref(doc);
            return false;
        }
        lut[id] = verse;
    }
    json_decref(doc);
    return true;
}

/* VerSe id of a segment name, 0 if it names no vertebra. Accepts a level alone ("L1",
 * "t12", "S1", "sacrum") or with the word vertebra(e) before or after it, separated by
 * spaces, '_' or '-' ("vertebrae_L1", "L1 vertebra", "Vertebra L1"); case-insensitive. */
static int level_from_segment_name(const char *name)
{
    char tok[16];
    int found = 0;
    size_t n_level_tokens = 0;
    const char *p = name;
    while (*p) {
        while (*p && !isalnum((unsigned char)*p))
            p++;
        size_t len = 0;
        bool long_tok = false;
        while (isalnum((unsigned char)*p)) {
            if (len + 1 < sizeof tok)
                tok[len++] = (char)toupper((unsigned char)*p);
            else
                long_tok = true;
            p++;
        }
        tok[len] = '\0';
        if (len == 0)
            break;
        if (!long_tok && (strcmp(tok, "VERTEBRA") == 0 || strcmp(tok, "VERTEBRAE") == 0))
            continue;
        n_level_tokens++;
        found = long_tok ? 0 : strcmp(tok, "SACRUM") == 0 ? SM_VERSE_SACRUM : sm_seg_level_from_name(tok);
    }
    return n_level_tokens == 1 ? found : 0;
}

/* Source ids (NIfTI values or SEG segment numbers) to VerSe ids. */
static bool lut_fill(SmError **error, const char *mapping, int lut[65536])
{
    if (!mapping || strcmp(mapping, "verse") == 0 || strcmp(mapping, "vertebrae_pp") == 0)
        lut_verse(lut);
    else if (strcmp(mapping, "total") == 0)
        lut_total(lut);
    else
        return lut_custom(error, mapping, lut);
    return true;
}

/* Converts raw (source ids, on ct's grid voxel for voxel) to a U8 VerSe map. */
static SmVolume *labels_convert(SmError **error, const SmVolume *ct, const SmVolume *raw, const int lut[65536],
                                size_t *unknown)
{
    SmVolume *labels = sm_volume_create_uninit(error, ct->dims, SM_VOXEL_U8);
    if (!labels)
        return NULL;
    sm_volume_copy_geometry(labels, ct);
    size_t n = sm_volume_n_voxels(ct);
    uint8_t *dst = labels->data;
    *unknown = 0;
    for (size_t i = 0; i < n; i++) {
        double v = sm_volume_get(raw, i, 0, 0);
        int id = v >= 0 && v < 65536 ? (int)v : 0;
        dst[i] = (uint8_t)lut[id];
        *unknown += id != 0 && lut[id] == 0;
    }
    return labels;
}

/* A map read under the wrong id scheme (e.g. a TotalSegmentator "total" map, whose L4 is 28
 * and whose lungs and liver have ids below 27, read as VerSe) gives nonsense levels, not an
 * error. Two checks catch it: under a vertebra-only scheme (verse, vertebrae_pp; a "total"
 * map also holds organs), more voxels carry ids the scheme does not know than ids it maps,
 * or, under any scheme, one mapped label covers more than
 * MAX_LABEL_CM3 (a whole lumbar vertebra, arch included, is about 60-100 cm3; a sacrum
 * about 100-200 cm3; lungs and liver are litres). */
#define MAX_LABEL_CM3 400.0
static bool labels_plausible(SmError **error, const SmVolume *labels, size_t unknown, const char *path,
                             const char *mapping)
{
    size_t count[256] = {0}, n = sm_volume_n_voxels(labels), mapped = 0;
    const uint8_t *d = labels->data;
    for (size_t i = 0; i < n; i++)
        count[d[i]]++;
    for (int id = 1; id < 256; id++)
        mapped += count[id];
    static const char hint[] = "the ids are probably of another scheme: choose --label-map (verse, "
                               "vertebrae_pp, total, or a JSON file {\"id\": \"L1\"})";
    bool vertebra_only = strcmp(mapping, "verse") == 0 || strcmp(mapping, "vertebrae_pp") == 0;
    if (vertebra_only && unknown > mapped) {
        sm_error_set(error, SM_ERR_USAGE,
                     "%s: %zu voxels carry ids that mapping '%s' does not know against %zu it maps to "
                     "vertebrae; %s",
                     path, unknown, mapping, mapped, hint);
        return false;
    }
    double vox_cm3 = labels->spacing[0] * labels->spacing[1] * labels->spacing[2] / 1000.0;
    for (int id = 1; id < 256; id++)
        if ((double)count[id] * vox_cm3 > MAX_LABEL_CM3) {
            const char *name = sm_seg_level_name(id);
            sm_error_set(error, SM_ERR_USAGE,
                         "%s: the label mapped to %s under mapping '%s' covers %.0f cm3, more than any "
                         "vertebra (%.0f cm3); %s",
                         path, name ? name : "?", mapping, (double)count[id] * vox_cm3, MAX_LABEL_CM3, hint);
            return false;
        }
    return true;
}

/* True if s ends with suffix (lower case), ignoring the case of s. */
static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m)
        return false;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != suffix[i])
            return false;
    return true;
}

/* DICOM SEG: segments rasterised on ct's grid, then mapped by name, or by segment number
 * with a custom JSON map. */
static bool labels_import_seg(SmError **error, const SmVolume *ct, const char *path, const char *mapping,
                              int lut[65536], SmVolume **out, SmStrList *notes)
{
    SmVolume *raw = NULL;
    SmStrList names = {0};
    if (!sm_io_dicom_seg_load(error, path, ct, &raw, &names))
        return false;
    bool by_number = mapping && strcmp(mapping, "verse") != 0 && strcmp(mapping, "vertebrae_pp") != 0 &&
                     strcmp(mapping, "total") != 0;
    bool ok = true;
    if (by_number) {
        ok = lut_custom(error, mapping, lut);
    } else {
        size_t n_levels = 0;
        for (size_t s = 1; s < names.n && s < 65536; s++) {
            lut[s] = level_from_segment_name(names.items[s]);
            n_levels += lut[s] != 0;
            if (lut[s] == 0 && notes)
                sm_strlist_add(notes, "%s: segment %zu \"%s\" is not a vertebra (ignored)", path, s,
                               names.items[s]);
        }
        if (n_levels == 0) {
            sm_error_set(error, SM_ERR_USAGE,
                         "%s: no segment is named after a vertebra (\"L1\", \"vertebrae_T12\", \"sacrum\"...); "
                         "map segment numbers with --label-map FILE.json {\"1\": \"L1\"}",
                         path);
            ok = false;
        }
    }
    SmVolume *labels = NULL;
    size_t unknown = 0;
    if (ok) {
        labels = labels_convert(error, ct, raw, lut, &unknown);
        ok = labels != NULL;
    }
    if (ok && by_number && unknown && notes)
        sm_strlist_add(notes, "%s: %zu voxels belong to segments that %s does not map (ignored)", path, unknown,
                       mapping);
    sm_strlist_clear(&names);
    sm_volume_destroy(raw);
    if (ok)
        *out = labels;
    return ok;
}

bool sm_pipeline_labels_import(SmError **error, const SmVolume *ct, const char *path,
                               const char *mapping, SmVolume **out, SmStrList *notes)
{
    int *lut = calloc(65536, sizeof *lut);
    if (!lut) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    if (!has_suffix(path, ".nii") && !has_suffix(path, ".nii.gz")) {
        bool ok = labels_import_seg(error, ct, path, mapping, lut, out, notes);
        free(lut);
        return ok;
    }
    SmVolume *raw = NULL;
    bool ok = sm_io_nifti_load(error, path, &raw) && lut_fill(error, mapping, lut);
    if (ok && raw->type == SM_VOXEL_F32) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: a label map must hold integer ids", path);
        ok = false;
    }
    SmGridMap map;
    if (ok && !sm_volume_grid_match(ct, raw, 0.01, &map)) {
        sm_error_set(error, SM_ERR_GEOMETRY,
                     "%s: label map grid (%zux%zux%zu) does not coincide with the image grid (%zux%zux%zu) in "
                     "patient space; labels must be made on this series (no resampling is done)",
                     path, raw->dims[0], raw->dims[1], raw->dims[2], ct->dims[0], ct->dims[1], ct->dims[2]);
        ok = false;
    }
    SmVolume *labels = NULL;
    if (ok) {
        SmVolume *re = sm_volume_reindex(error, ct, raw, &map);
        size_t unknown = 0;
        labels = re ? labels_convert(error, ct, re, lut, &unknown) : NULL;
        ok = labels != NULL;
        if (ok)
            ok = labels_plausible(error, labels, unknown, path, mapping ? mapping : "verse");
        if (ok && unknown && notes)
            sm_strlist_add(notes, "%s: %zu voxels carry ids that are not vertebrae under mapping '%s' (ignored)",
                           path, unknown, mapping ? mapping : "verse");
        sm_volume_destroy(re);
        if (!ok) {
            sm_volume_destroy(labels);
            labels = NULL;
        }
    }
    free(lut);
    sm_volume_destroy(raw);
    if (!ok)
        return false;
    *out = labels;
    return true;
}
