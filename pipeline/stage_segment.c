/* The segmentation stage of `run`: built-in or imported vertebra labels, their files
 * (labels.nii.gz, subregions.nii.gz, qc_sagittal.png) and the vertebrae[] entries. */
#include "sm_pipeline.h"
#include "sm_segment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static json_t *vec3(const double v[3])
{
    json_t *a = json_array();
    for (int d = 0; d < 3; d++)
        json_array_append_new(a, sm_json_number_or_null(round(v[d] * 100.0) / 100.0));
    return a;
}

json_t *sm_json_vertebra(const SmVertebra *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "level", json_string(v->level));
    json_object_set_new(o, "label", json_integer(v->verse_label));
    json_object_set_new(o, "centroid_lps_mm", vec3(v->centroid_lps));
    json_object_set_new(o, "vertebra_centroid_lps_mm", vec3(v->vertebra_centroid_lps));
    json_object_set_new(o, "confidence", json_real(round(v->confidence * 1000.0) / 1000.0));
    json_object_set_new(o, "labelling_anchors", sm_json_strlist(&v->anchors));
    json_object_set_new(o, "confidence_reasons", sm_json_strlist(&v->reasons));
    json_object_set_new(o, "voxels", json_integer((json_int_t)v->n_voxels));
    json_object_set_new(o, "body_voxels", json_integer((json_int_t)v->n_body_voxels));
    json_object_set_new(o, "partial", json_boolean(v->partial));
    return o;
}

bool sm_stage_segment(SmError **error, const SmVolume *ct, const SmSegmentStageOptions *opt,
                      const char *dir, json_t *doc, SmSpineSeg **out)
{
    SmSegOptions so = {.threads = opt->threads};
    if (opt->anchor_level) {
        so.has_anchor = true;
        so.anchor_level = opt->anchor_level;
        so.anchor_z_mm = opt->anchor_z_mm;
    }
    SmSpineSeg *seg = NULL;
    SmStrList notes = {0};
    json_t *info = json_object();
    if (opt->labels_path) {
        SmVolume *labels = NULL;
        if (!sm_pipeline_labels_import(error, ct, opt->labels_path, opt->label_map, &labels, &notes)) {
            json_decref(info);
            sm_strlist_clear(&notes);
            return false;
        }
        bool ok = sm_seg_from_labels(error, ct, labels, &so, &seg);
        sm_volume_destroy(labels);
        if (!ok) {
            json_decref(info);
            sm_strlist_clear(&notes);
            return false;
        }
        json_object_set_new(info, "method", json_string("imported"));
        json_object_set_new(info, "labels_file", json_string(opt->labels_path));
        const char *lp = opt->labels_path;
        size_t ll = strlen(lp);
        bool nifti = (ll > 4 && strcasecmp(lp + ll - 4, ".nii") == 0) ||
                     (ll > 7 && strcasecmp(lp + ll - 7, ".nii.gz") == 0);
        json_object_set_new(info, "label_map",
                            json_string(opt->label_map ? opt->label_map
                                                       : nifti ? "verse" : "segment names"));
    } else {
        if (!sm_seg_spine_run(error, ct, &so, &seg)) {
            json_decref(info);
            return false;
        }
        json_object_set_new(info, "method", json_string("built-in"));
    }
    for (size_t i = 0; i < seg->notes.n; i++)
        sm_strlist_add(&notes, "%s", seg->notes.items[i]);
    json_object_set_new(info, "anchors", sm_json_strlist(&seg->anchors));
    json_object_set_new(info, "bone_threshold_hu", json_pack("{s:f, s:f}", "low", seg->bone_low_hu, "high", seg->bone_high_hu));
    json_object_set_new(info, "notes", sm_json_strlist(&notes));
    sm_strlist_clear(&notes);
    json_object_set_new(doc, "segmentation", info);

    json_t *arr = json_array();
    for (size_t i = 0; i < seg->n_vertebrae; i++)
        json_array_append_new(arr, sm_json_vertebra(&seg->vertebrae[i]));
    json_object_set_new(doc, "vertebrae", arr);

    char path[4200];
    bool flip = strcmp(ct->meta.source, "dicom") == 0;
    snprintf(path, sizeof path, "%s/labels.nii.gz", dir);
    bool ok = sm_io_nifti_save_ex(error, seg->labels, path, flip);
    snprintf(path, sizeof path, "%s/subregions.nii.gz", dir);
    ok = ok && sm_io_nifti_save_ex(error, seg->subregions, path, flip);
    uint8_t *rgb = NULL;
    size_t w = 0, h = 0;
    if (ok && sm_seg_qc_sagittal(error, ct, seg, &rgb, &w, &h)) {
        snprintf(path, sizeof path, "%s/qc_sagittal.png", dir);
        ok = sm_io_png_save(error, path, rgb, w, h, 3);
        free(rgb);
    } else {
        ok = false;
    }
    if (!ok) {
        sm_seg_spine_destroy(seg);
        return false;
    }
    *out = seg;
    return true;
}
