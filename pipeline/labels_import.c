/* Imported vertebra label maps: other tools' numbering converted to VerSe ids, and the
 * geometry checked against the image (exact re-indexing only, never resampling). */
#include "sm_pipeline.h"
#include "sm_segment.h"

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

bool sm_pipeline_labels_import(SmError **error, const SmVolume *ct, const char *path,
                               const char *mapping, SmVolume **out, SmStrList *notes)
{
    SmVolume *raw = NULL;
    if (!sm_io_nifti_load(error, path, &raw))
        return false;
    int *lut = calloc(65536, sizeof *lut);
    if (!lut) {
        sm_volume_destroy(raw);
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    bool ok = true;
    if (!mapping || strcmp(mapping, "verse") == 0 || strcmp(mapping, "vertebrae_pp") == 0)
        lut_verse(lut);
    else if (strcmp(mapping, "total") == 0)
        lut_total(lut);
    else
        ok = lut_custom(error, mapping, lut);
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
        labels = sm_volume_create_uninit(error, ct->dims, SM_VOXEL_U8);
        ok = labels != NULL;
    }
    if (ok) {
        SmVolume *re = sm_volume_reindex(error, ct, raw, &map);
        ok = re != NULL;
        if (ok) {
            sm_volume_copy_geometry(labels, ct);
            size_t n = sm_volume_n_voxels(ct), unknown = 0;
            uint8_t *dst = labels->data;
            for (size_t i = 0; i < n; i++) {
                double v = sm_volume_get(re, i, 0, 0);
                int id = v >= 0 && v < 65536 ? (int)v : 0;
                dst[i] = (uint8_t)lut[id];
                unknown += id != 0 && lut[id] == 0;
            }
            if (unknown && notes)
                sm_strlist_add(notes, "%s: %zu voxels carry ids that are not vertebrae under mapping '%s' (ignored)",
                               path, unknown, mapping ? mapping : "verse");
            sm_volume_destroy(re);
        }
    }
    free(lut);
    sm_volume_destroy(raw);
    if (!ok) {
        sm_volume_destroy(labels);
        return false;
    }
    *out = labels;
    return true;
}
