/* Phantom outputs: truth JSON document, DICOM series + truth NIfTI writing, preview PNGs. */
#define _POSIX_C_SOURCE 200809L
#include "phantom.h"
#include "sins_rules.h"
#include "sm_io.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRUTH_SCHEMA "spinemets.phantom-truth/2"

static json_t *num(double v)
{
    if (!isfinite(v))
        return json_null();
    double r = round(v * 1e4) / 1e4;
    return json_real(r == 0.0 ? 0.0 : r);
}

static json_t *vec3(const double v[3])
{
    if (!isfinite(v[0]))
        return json_null();
    json_t *a = json_array();
    for (int d = 0; d < 3; d++)
        json_array_append_new(a, num(v[d]));
    return a;
}

/* The spec in the same shape sm_phantom_spec_load reads, so truth.json's "spec" can be fed
 * back as a spec file. */
static json_t *spec_json(const SmPhantomSpec *s)
{
    json_t *o = json_object();
    char lv[16];
    snprintf(lv, sizeof lv, "%s-%s", sm_phantom_level_name(s->level_first),
             sm_phantom_level_name(s->level_last));
    json_object_set_new(o, "seed", json_integer((json_int_t)s->seed));
    json_object_set_new(o, "levels", json_string(lv));
    json_t *dims = json_array();
    for (int d = 0; d < 3; d++)
        json_array_append_new(dims, json_integer((json_int_t)s->dims[d]));
    json_object_set_new(o, "dims", dims);
    json_object_set_new(o, "pixel_mm", num(s->pixel_mm));
    json_object_set_new(o, "slice_mm", num(s->slice_mm));
    json_object_set_new(o, "fov_center", s->fov_center_set ? vec3(s->fov_center) : json_null());
    json_object_set_new(o, "patient_position", json_string(s->patient_position));
    json_object_set_new(o, "ffs_axes", json_string(s->ffs_standard_axes ? "standard" : "flipped"));
    json_object_set_new(o, "oblique_deg", num(s->oblique_deg));
    static const char *const axes[3] = {"LR", "AP", "SI"};
    json_object_set_new(o, "oblique_axis", json_string(axes[s->oblique_axis % 3]));
    json_object_set_new(o, "noise_sigma_hu", num(s->noise_sigma_hu));
    json_object_set_new(o, "texture_hu", num(s->texture_hu));
    json_t *c = json_object();
    json_object_set_new(c, "cervical_lordosis_deg", num(s->cervical_lordosis_deg));
    json_object_set_new(c, "thoracic_kyphosis_deg", num(s->thoracic_kyphosis_deg));
    json_object_set_new(c, "lumbar_lordosis_deg", num(s->lumbar_lordosis_deg));
    json_object_set_new(c, "scoliosis_deg", num(s->scoliosis_deg));
    json_object_set_new(c, "scoliosis_apex", json_string(sm_phantom_level_name(s->scoliosis_apex)));
    json_object_set_new(o, "curvature", c);
    json_object_set_new(o, "aorta", json_boolean(s->aorta));
    json_object_set_new(o, "contrast", json_boolean(s->contrast));
    json_object_set_new(o, "conus_level", json_string(sm_phantom_level_name(s->conus_level)));
    const SmPhantomHu *h = &s->hu;
    json_t *hu = json_object();
    struct { const char *k; double v; } t[] = {
        {"air", h->air}, {"fat", h->fat}, {"muscle", h->muscle}, {"soft_tissue", h->soft_tissue},
        {"lung", h->lung}, {"blood", h->blood}, {"contrast", h->contrast},
        {"cortical", h->cortical}, {"cancellous", h->cancellous}, {"disc", h->disc},
        {"csf", h->csf}, {"cord", h->cord}, {"epidural_fat", h->epidural_fat},
        {"table", h->table}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        json_object_set_new(hu, t[i].k, num(t[i].v));
    json_object_set_new(o, "hu", hu);
    json_object_set_new(o, "osteoporotic", json_boolean(s->osteoporotic));
    json_object_set_new(o, "osteoporotic_hu", num(s->osteoporotic_hu));
    if (s->transitional != SM_PHANTOM_TRANS_NONE) { /* absent when none: older truths unchanged */
        json_t *tr = json_object();
        json_object_set_new(tr, "anomaly", json_string(sm_phantom_transitional_name(s->transitional)));
        if (s->transitional == SM_PHANTOM_TRANS_RIBS_11)
            json_object_set_new(tr, "t12_rib_mm", num(s->t12_rib_mm));
        if (s->transitional == SM_PHANTOM_TRANS_SACRALISED_L5)
            json_object_set_new(tr, "side", json_string(sm_phantom_side_name(s->sacralised_side)));
        json_object_set_new(o, "transitional", tr);
    }
    json_t *vs = json_object();
    for (int l = 0; l < SM_PHANTOM_N_LEVELS; l++) {
        const SmPhantomVertebraSpec *v = &s->vertebra[l];
        json_t *e = json_object();
        if (isfinite(v->cancellous_hu))
            json_object_set_new(e, "cancellous_hu", num(v->cancellous_hu));
        if (v->height_scale != 1.0)
            json_object_set_new(e, "height_scale", num(v->height_scale));
        if (v->collapse_type != SM_PHANTOM_COLLAPSE_NONE) {
            json_t *co = json_object();
            json_object_set_new(co, "type", json_string(sm_phantom_collapse_name(v->collapse_type)));
            json_object_set_new(co, "percent", num(v->collapse_pct));
            json_object_set_new(e, "collapse", co);
        }
        if (v->translation_mm[0] != 0 || v->translation_mm[1] != 0) {
            json_t *tr = json_array();
            json_array_append_new(tr, num(v->translation_mm[0]));
            json_array_append_new(tr, num(v->translation_mm[1]));
            json_object_set_new(e, "translation_mm", tr);
        }
        if (v->kyphosis_deg != 0)
            json_object_set_new(e, "kyphosis_deg", num(v->kyphosis_deg));
        if (v->scoliosis_deg != 0)
            json_object_set_new(e, "scoliosis_deg", num(v->scoliosis_deg));
        if (v->n_lesions > 0) {
            json_t *la = json_array();
            for (size_t k = 0; k < v->n_lesions && k < SM_PHANTOM_MAX_LESIONS; k++) {
                const SmPhantomLesionSpec *ls = &v->lesion[k];
                json_t *lo = json_object();
                json_object_set_new(lo, "type", json_string(sm_phantom_lesion_type_name(ls->type)));
                if (ls->type == SM_PHANTOM_LESION_BONE_ISLAND)
                    json_object_set_new(lo, "radius_mm", num(ls->radius_mm));
                else
                    json_object_set_new(lo, "fraction", num(ls->fraction));
                json_object_set_new(lo, "center", vec3(ls->center));
                json_object_set_new(lo, "extension", json_string(sm_phantom_side_name(ls->extension)));
                json_object_set_new(lo, "cortical_breach", json_boolean(ls->cortical_breach));
                if (isfinite(ls->hu))
                    json_object_set_new(lo, "hu", num(ls->hu));
                json_object_set_new(lo, "seed", json_integer((json_int_t)ls->seed));
                json_array_append_new(la, lo);
            }
            json_object_set_new(e, "lesions", la);
        }
        if (json_object_size(e) == 0) {
            json_decref(e);
            continue;
        }
        json_object_set_new(vs, sm_phantom_level_name(l), e);
    }
    json_object_set_new(o, "vertebrae", vs);
    json_object_set_new(o, "series_description", json_string(s->series_description));
    return o;
}

static json_t *geometry_json(const SmVolume *v)
{
    json_t *g = json_object();
    json_t *dims = json_array(), *sp = json_array(), *aff = json_array(), *iop = json_array();
    for (int d = 0; d < 3; d++) {
        json_array_append_new(dims, json_integer((json_int_t)v->dims[d]));
        json_array_append_new(sp, num(v->spacing[d]));
    }
    for (int r = 0; r < 4; r++) {
        json_t *row = json_array();
        for (int c = 0; c < 4; c++)
            json_array_append_new(row, json_real(round(v->affine[r][c] * 1e6) / 1e6));
        json_array_append_new(aff, row);
    }
    for (int c = 0; c < 2; c++)
        for (int r = 0; r < 3; r++)
            json_array_append_new(iop, num(v->affine[r][c] / v->spacing[c]));
    double ipp0[3] = {v->affine[0][3], v->affine[1][3], v->affine[2][3]};
    json_object_set_new(g, "dims", dims);
    json_object_set_new(g, "spacing_mm", sp);
    json_object_set_new(g, "affine_lps", aff);
    json_object_set_new(g, "image_orientation_patient", iop);
    json_object_set_new(g, "first_slice_position_lps", vec3(ipp0));
    json_object_set_new(g, "patient_position", json_string(v->meta.patient_position));
    json_object_set_new(g, "slice_order", json_string(v->affine[2][2] < 0 ? "head-to-feet"
                                                                          : "feet-to-head"));
    json_object_set_new(g, "study_uid", json_string(v->meta.study_uid));
    json_object_set_new(g, "series_uid", json_string(v->meta.series_uid));
    return g;
}

static bool in_grid(const SmVolume *v, const double p[3])
{
    double ijk[3];
    if (!isfinite(p[0]) || !sm_volume_lps_to_index(v, p, ijk))
        return false;
    for (int d = 0; d < 3; d++)
        if (ijk[d] < -0.5 || ijk[d] > (double)v->dims[d] - 0.5)
            return false;
    return true;
}

static json_t *truth_json(const SmPhantom *ph)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "schema", json_string(TRUTH_SCHEMA));
    json_object_set_new(doc, "generator", json_string("spinemets phantom"));
    json_object_set_new(doc, "spec", spec_json(&ph->spec));
    json_object_set_new(doc, "geometry", geometry_json(ph->ct));
    json_t *files = json_object();
    json_object_set_new(files, "ct_dicom", json_string("dicom/IM*.dcm"));
    json_object_set_new(files, "labels", json_string("truth_labels.nii.gz"));
    json_object_set_new(files, "subregions", json_string("truth_subregions.nii.gz"));
    json_object_set_new(files, "lesions", json_string("truth_lesions.nii.gz"));
    json_object_set_new(doc, "files", files);
    json_t *codes = json_object();
    static const char *const names[] = {"", "body", "posterolateral_left", "posterolateral_right",
                                        "posterior_arch", "transverse_processes", "disc",
                                        "canal", "rib", "pelvis_sacrum_other", "spinal_cord"};
    for (int i = 1; i <= 10; i++) {
        char k[4];
        snprintf(k, sizeof k, "%d", i);
        json_object_set_new(codes, k, json_string(names[i]));
    }
    json_object_set_new(doc, "subregion_codes", codes);
    json_t *lcodes = json_object();
    json_object_set_new(lcodes, "1", json_string("lytic"));
    json_object_set_new(lcodes, "2", json_string("blastic"));
    json_object_set_new(lcodes, "3", json_string("bone_island"));
    json_object_set_new(doc, "lesion_codes", lcodes);
    json_object_set_new(doc, "osteoporotic", json_boolean(ph->spec.osteoporotic));
    json_t *rules = json_object();
    json_object_set_new(rules, "genant", json_string("<20 % 0, [20,25) 1, [25,40] 2, >40 3"));
    json_object_set_new(rules, "sins_collapse",
                        json_string(">50 % loss 3 (exactly 50 % scores 2), [20,50] % 2, "
                                    "<20 % with involvement >0.5 of the body 1, else 0"));
    json_object_set_new(rules, "sins_alignment",
                        json_string("translation >= 3 mm 4, focal kyphosis or scoliosis >= 10 "
                                    "deg 2, else 0; a vertebra takes the worse of its segments "
                                    "above and below"));
    json_object_set_new(rules, "translation",
                        json_string("posterior-wall offset: the two posterior wall lines (mid-"
                                    "sagittal, parallel to each axis) at the disc mid-plane "
                                    "through the midpoint of the facing endplate points at 85 % "
                                    "of the AP depth, normal = bisector of the two superior axes; "
                                    "translation_lateral_mm / translation_ap_mm are the applied "
                                    "displacement"));
    json_object_set_new(rules, "posterolateral",
                        json_string("a side is involved when >= 20 % of its posterolateral "
                                    "subregion voxels are lesion"));
    json_object_set_new(doc, "rules", rules);
    if (ph->spec.transitional == SM_PHANTOM_TRANS_NONE) {
        json_object_set_new(doc, "label_scheme",
                            json_string("VerSe: 1-7 C1-C7, 8-19 T1-T12, 20-24 L1-L5, 26 sacrum"));
    } else {
        const SmPhantomSpec *s = &ph->spec;
        json_object_set_new(doc, "label_scheme",
                            json_string("VerSe: 1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, "
                                        "28 T13"));
        json_t *tr = json_object();
        json_object_set_new(tr, "anomaly", json_string(sm_phantom_transitional_name(s->transitional)));
        int ribs = s->transitional == SM_PHANTOM_TRANS_T13 ? 13
                   : s->transitional == SM_PHANTOM_TRANS_RIBS_11 ? 11 : 12;
        int lumbar = s->transitional == SM_PHANTOM_TRANS_L6 ? 6 : 5;
        json_object_set_new(tr, "rib_pairs", json_integer(ribs));
        json_object_set_new(tr, "thoracic_vertebrae",
                            json_integer(s->transitional == SM_PHANTOM_TRANS_T13 ? 13 : 12));
        json_object_set_new(tr, "lumbar_vertebrae", json_integer(lumbar));
        json_object_set_new(tr, "presacral_vertebrae",
                            json_integer(7 + (s->transitional == SM_PHANTOM_TRANS_T13 ? 13 : 12) +
                                         lumbar));
        const char *what = "";
        int flagged = 0;
        switch (s->transitional) {
        case SM_PHANTOM_TRANS_L6:
            what = "six lumbar vertebrae: the sixth (L6, VerSe 25) sits on the sacrum; 12 rib "
                   "pairs (the C7 model shape is T1)";
            flagged = 25;
            break;
        case SM_PHANTOM_TRANS_T13:
            what = "13 rib-bearing thoracic vertebrae: the 13th is T13 (VerSe 28), five lumbar "
                   "below (the C7 model shape is T1)";
            flagged = 28;
            break;
        case SM_PHANTOM_TRANS_RIBS_11:
            what = s->t12_rib_mm > 0 ? "11 rib pairs: T12 carries only a rudimentary rib "
                                       "(< 40 mm, not a rib by the VerSe rule)"
                                     : "11 rib pairs: T12 carries no rib";
            flagged = 19;
            break;
        default:
            what = "sacralised L5: its transverse process is fused to the sacral ala";
            flagged = 24;
            break;
        }
        json_object_set_new(tr, "description", json_string(what));
        json_object_set_new(tr, "transitional_level", json_string(sm_phantom_verse_name(flagged)));
        json_object_set_new(tr, "transitional_verse_id", json_integer(flagged));
        if (s->transitional == SM_PHANTOM_TRANS_RIBS_11)
            json_object_set_new(tr, "t12_rib_mm", num(s->t12_rib_mm));
        if (s->transitional == SM_PHANTOM_TRANS_SACRALISED_L5)
            json_object_set_new(tr, "side", json_string(sm_phantom_side_name(s->sacralised_side)));
        json_object_set_new(doc, "transitional", tr);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < ph->n_vertebrae; i++) {
        const SmPhantomVertebra *v = &ph->vertebrae[i];
        json_t *e = json_object();
        json_object_set_new(e, "level", json_string(v->name));
        json_object_set_new(e, "verse_id", json_integer(v->verse_id));
        if (ph->spec.transitional != SM_PHANTOM_TRANS_NONE)
            json_object_set_new(e, "model_shape", json_string(sm_phantom_level_name(v->level)));
        json_object_set_new(e, "has_body", json_boolean(v->has_body));
        json_object_set_new(e, "body_centroid_lps", vec3(v->body_centroid));
        json_object_set_new(e, "body_centroid_in_grid",
                            json_boolean(in_grid(ph->ct, v->body_centroid)));
        json_object_set_new(e, "body_volume_mm3", num(v->body_volume_mm3));
        json_object_set_new(e, "axis_superior", vec3(v->axis_superior));
        json_object_set_new(e, "axis_posterior", vec3(v->axis_posterior));
        json_t *h = json_object();
        json_object_set_new(h, "anterior_mm", num(v->height_anterior_mm));
        json_object_set_new(h, "middle_mm", num(v->height_middle_mm));
        json_object_set_new(h, "posterior_mm", num(v->height_posterior_mm));
        json_object_set_new(e, "body_height", h);
        json_object_set_new(e, "endplate_superior_lps", vec3(v->endplate_superior));
        json_object_set_new(e, "endplate_inferior_lps", vec3(v->endplate_inferior));
        json_object_set_new(e, "ap_depth_mm", num(v->ap_depth_mm));
        json_object_set_new(e, "width_mm", num(v->width_mm));
        json_object_set_new(e, "canal_center_lps", vec3(v->canal_center));
        json_object_set_new(e, "canal_area_mm2", num(v->canal_area_mm2));
        json_object_set_new(e, "cancellous_hu", num(v->cancellous_hu));
        json_object_set_new(e, "height_scale", num(ph->spec.vertebra[v->level].height_scale));
        json_object_set_new(e, "lesions", json_deep_copy(json_object_get(
                                              json_object_get(json_object_get(
                                                  json_object_get(doc, "spec"), "vertebrae"),
                                                  v->name),
                                              "lesions")));
        if (!json_object_get(e, "lesions") || json_is_null(json_object_get(e, "lesions")))
            json_object_set_new(e, "lesions", json_array());
        json_object_set_new(e, "collapse", json_string(sm_phantom_collapse_name(v->collapse_type)));
        json_t *xh = json_object();
        json_object_set_new(xh, "anterior_mm", num(v->expected_anterior_mm));
        json_object_set_new(xh, "middle_mm", num(v->expected_middle_mm));
        json_object_set_new(xh, "posterior_mm", num(v->expected_posterior_mm));
        json_object_set_new(e, "expected_body_height", xh);
        json_object_set_new(e, "expected_height_mm", num(v->expected_height_mm));
        json_object_set_new(e, "height_loss_pct", num(v->height_loss_pct));
        json_object_set_new(e, "genant_grade",
                            v->genant_grade >= 0 ? json_integer(v->genant_grade) : json_null());
        json_object_set_new(e, "deformity", json_string(sm_phantom_collapse_name(v->deformity)));
        json_t *le = json_object();
        json_object_set_new(le, "class", json_string(sm_sins_lesion_class_name(v->lesion_class)));
        json_object_set_new(le, "lytic_fraction", num(v->lytic_fraction));
        json_object_set_new(le, "blastic_fraction", num(v->blastic_fraction));
        json_object_set_new(le, "body_involvement_fraction", num(v->body_involvement_fraction));
        json_object_set_new(le, "bone_island_fraction", num(v->island_fraction));
        json_object_set_new(le, "body_voxels", json_integer((json_int_t)v->body_voxels));
        json_object_set_new(le, "lytic_voxels", json_integer((json_int_t)v->lytic_voxels));
        json_object_set_new(le, "blastic_voxels", json_integer((json_int_t)v->blastic_voxels));
        json_object_set_new(le, "bone_island_voxels", json_integer((json_int_t)v->island_voxels));
        json_object_set_new(e, "lesion", le);
        json_t *pl = json_object();
        json_object_set_new(pl, "side", json_string(sm_phantom_side_name(v->posterolateral)));
        json_object_set_new(pl, "left_fraction", num(v->pl_lesion_fraction[0]));
        json_object_set_new(pl, "right_fraction", num(v->pl_lesion_fraction[1]));
        json_object_set_new(e, "posterolateral", pl);
        if (v->has_below) {
            json_t *al = json_object();
            json_object_set_new(al, "level_below", json_string(sm_phantom_verse_name(
                                                        sm_phantom_verse_id(&ph->spec, v->level + 1))));
            json_object_set_new(al, "translation_mm", num(v->translation_mm));
            json_object_set_new(al, "translation_lateral_mm", num(v->translation_lateral_mm));
            json_object_set_new(al, "translation_ap_mm", num(v->translation_ap_mm));
            json_object_set_new(al, "kyphosis_deg", num(v->kyphosis_deg));
            json_object_set_new(al, "scoliosis_deg", num(v->scoliosis_deg));
            json_object_set_new(al, "focal_kyphosis_deg", num(v->focal_kyphosis_deg));
            json_object_set_new(al, "focal_scoliosis_deg", num(v->focal_scoliosis_deg));
            json_object_set_new(al, "class",
                                json_string(sm_sins_alignment_class_name(v->alignment_class)));
            json_object_set_new(e, "alignment", al);
        } else {
            json_object_set_new(e, "alignment", json_null());
        }
        json_t *sins = json_object();
        int comp[5] = {v->sins_location, v->sins_lesion_quality, v->sins_alignment,
                       v->sins_collapse, v->sins_posterolateral};
        static const char *const cn[5] = {"location", "lesion_quality", "alignment", "collapse",
                                          "posterolateral"};
        int subtotal = 0;
        bool complete = true;
        for (int c = 0; c < 5; c++) {
            json_object_set_new(sins, cn[c], comp[c] >= 0 ? json_integer(comp[c]) : json_null());
            if (comp[c] >= 0)
                subtotal += comp[c];
            else if (c != 1) /* lesion quality is null without a lesion and adds 0 */
                complete = false;
        }
        if (complete) {
            json_object_set_new(sins, "imaging_subtotal", json_integer(subtotal));
            json_t *rng = json_array();
            json_array_append_new(rng, json_integer(subtotal));
            json_array_append_new(rng, json_integer(subtotal + 3));
            json_object_set_new(sins, "total_range", rng);
            const char *cat[3];
            int nn = sm_sins_categories(subtotal, subtotal + 3, cat);
            json_t *cats = json_array();
            for (int c = 0; c < nn; c++)
                json_array_append_new(cats, json_string(cat[c]));
            json_object_set_new(sins, "categories", cats);
        } else {
            json_object_set_new(sins, "imaging_subtotal", json_null());
            json_object_set_new(sins, "total_range", json_null());
            json_object_set_new(sins, "categories", json_null());
        }
        json_object_set_new(e, "sins", sins);
        json_array_append_new(arr, e);
    }
    json_object_set_new(doc, "vertebrae", arr);
    return doc;
}


static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Removes IM<digits>.dcm left in dir by an earlier run (a longer series would otherwise
 * leave stale slices behind that join the new series). Nothing else is touched. */
static bool remove_stale_images(SmError **error, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return true; /* not there yet */
    bool ok = true;
    struct dirent *de;
    while (ok && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        if (len < 7 || strncmp(n, "IM", 2) != 0 || strcmp(n + len - 4, ".dcm") != 0)
            continue;
        bool digits = true;
        for (size_t i = 2; i < len - 4; i++)
            digits &= n[i] >= '0' && n[i] <= '9';
        if (!digits)
            continue;
        char *p = join(dir, n);
        if (!p || (remove(p) != 0 && errno != ENOENT)) {
            sm_error_set(error, SM_ERR_OUTPUT, "%s/%s: cannot remove the stale image", dir, n);
            ok = false;
        }
        free(p);
    }
    closedir(d);
    return ok;
}

bool sm_phantom_write(SmError **error, const SmPhantom *ph, const char *outdir)
{
    if (!sm_io_mkdir_p(error, outdir))
        return false;
    char *dcm = join(outdir, "dicom"), *tj = join(outdir, "truth.json");
    char *lab = join(outdir, "truth_labels.nii.gz"), *sub = join(outdir, "truth_subregions.nii.gz");
    char *les = join(outdir, "truth_lesions.nii.gz");
    bool ok = false;
    json_t *doc = NULL;
    char *text = NULL;
    if (!dcm || !tj || !lab || !sub || !les) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        goto done;
    }
    SmDicomWriteOptions opt;
    memset(&opt, 0, sizeof opt);
    opt.patient_id = "PHANTOM";
    opt.series_description = ph->spec.series_description;
    opt.study_uid = ph->ct->meta.study_uid;
    opt.series_uid = ph->ct->meta.series_uid;
    opt.patient_position = ph->spec.patient_position;
    opt.rescale_intercept = -1024;
    opt.kvp = 120;
    opt.convolution_kernel = "SYNTH";
    if (!remove_stale_images(error, dcm) ||
        !sm_io_dicom_series_write(error, ph->ct, dcm, &opt) ||
        !sm_io_nifti_save(error, ph->labels, lab) || !sm_io_nifti_save(error, ph->subregions, sub) ||
        !sm_io_nifti_save(error, ph->lesions, les))
        goto done;
    doc = truth_json(ph);
    text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))
               : NULL;
    if (!text) {
        sm_error_set(error, SM_ERR_NOMEM, "%s: cannot serialise the truth document", tj);
        goto done;
    }
    ok = sm_io_write_file_atomic(error, tj, text, strlen(text));
done:
    free(text);
    json_decref(doc);
    free(dcm);
    free(tj);
    free(lab);
    free(sub);
    free(les);
    return ok;
}

static uint8_t window(double hu)
{
    double v = (hu - (350 - 900)) / 1800.0 * 255.0;
    return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v + 0.5));
}

bool sm_phantom_write_previews(SmError **error, const SmPhantom *ph, const char *sagittal_png,
                               const char *axial_png)
{
    const SmVolume *ct = ph->ct;
    /* mid-sagittal: a plane through the mean body x, rows superior->inferior, columns A->P */
    double cx = 0, ymin = 1e30, ymax = -1e30, zmin = 1e30, zmax = -1e30;
    int n = 0;
    for (size_t i = 0; i < ph->n_vertebrae; i++)
        if (isfinite(ph->vertebrae[i].canal_center[0])) {
            cx += ph->vertebrae[i].canal_center[0];
            n++;
        }
    cx = n ? cx / n : 0;
    for (int c = 0; c < 8; c++) {
        double ijk[3] = {(c & 1) ? (double)ct->dims[0] - 1 : 0,
                         (c & 2) ? (double)ct->dims[1] - 1 : 0,
                         (c & 4) ? (double)ct->dims[2] - 1 : 0};
        double p[3];
        sm_volume_index_to_lps(ct, ijk, p);
        ymin = fmin(ymin, p[1]);
        ymax = fmax(ymax, p[1]);
        zmin = fmin(zmin, p[2]);
        zmax = fmax(zmax, p[2]);
    }
    double px = ct->spacing[0];
    size_t w = (size_t)((ymax - ymin) / px) + 1, h = (size_t)((zmax - zmin) / px) + 1;
    uint8_t *img = malloc(w * h > ct->dims[0] * ct->dims[1] ? w * h : ct->dims[0] * ct->dims[1]);
    if (!img) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    for (size_t r = 0; r < h; r++)
        for (size_t c = 0; c < w; c++) {
            double p[3] = {cx, ymin + (double)c * px, zmax - (double)r * px}, ijk[3];
            sm_volume_lps_to_index(ct, p, ijk);
            long i = lround(ijk[0]), j = lround(ijk[1]), k = lround(ijk[2]);
            double v = -1024;
            if (i >= 0 && j >= 0 && k >= 0 && i < (long)ct->dims[0] && j < (long)ct->dims[1] &&
                k < (long)ct->dims[2])
                v = sm_volume_get(ct, (size_t)i, (size_t)j, (size_t)k);
            img[r * w + c] = window(v);
        }
    bool ok = sm_io_png_save(error, sagittal_png, img, w, h, 1);
    if (ok) {
        size_t k = ct->dims[2] / 2;
        for (size_t j = 0; j < ct->dims[1]; j++)
            for (size_t i = 0; i < ct->dims[0]; i++)
                img[j * ct->dims[0] + i] = window(sm_volume_get(ct, i, j, k));
        ok = sm_io_png_save(error, axial_png, img, ct->dims[0], ct->dims[1], 1);
    }
    free(img);
    return ok;
}
