/* The canal stage of `run`: canal profile and Bilsky ESCC grade per vertebra, the series'
 * worst level, and an axial QC picture of every graded level. */
#include "escc.h"
#include "sm_metrics.h"
#include "sm_pipeline.h"
#include "sm_segment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *area(double v)
{
    return isfinite(v) ? json_real(round(v * 10.0) / 10.0) : json_null();
}

static json_t *ratio(double v)
{
    return isfinite(v) ? json_real(round(v * 1000.0) / 1000.0) : json_null();
}

static json_t *canal_json(const SmCanalLevel *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "in_view", json_boolean(c->in_view));
    json_object_set_new(o, "level_kind",
                        json_string(!c->below_conus ? "cord"
                                    : c->cord_expected ? "cord_not_resolved" : "cauda_equina"));
    json_object_set_new(o, "canal_area_mm2", area(c->canal_area_mm2));
    json_object_set_new(o, "thecal_sac_area_mm2", area(c->sac_area_mm2));
    json_object_set_new(o, "cord_area_mm2", area(c->cord_area_mm2));
    json_object_set_new(o, "free_csf_area_mm2", area(c->csf_area_mm2));
    json_object_set_new(o, "epidural_fat_area_mm2", area(c->fat_area_mm2));
    json_object_set_new(o, "epidural_soft_tissue_area_mm2", area(c->tumour_area_mm2));
    json_object_set_new(o, "epidural_soft_tissue_thickness_mm", area(c->tumour_thickness_mm));
    json_object_set_new(o, "epidural_soft_tissue_position", json_string(sm_escc_position_name(c->position)));
    json_t *ref = json_object();
    json_object_set_new(ref, "canal_area_mm2", area(c->ref_canal_area_mm2));
    json_object_set_new(ref, "thecal_sac_area_mm2", area(c->ref_sac_area_mm2));
    json_object_set_new(ref, "free_csf_area_mm2", area(c->ref_csf_area_mm2));
    json_object_set_new(ref, "cord_area_mm2", area(c->ref_cord_area_mm2));
    json_object_set_new(o, "neighbour_reference", ref);
    json_object_set_new(o, "canal_ratio", ratio(c->canal_ratio));
    json_object_set_new(o, "thecal_sac_ratio", ratio(c->sac_ratio));
    json_object_set_new(o, "free_csf_ratio", ratio(c->csf_ratio));
    json_object_set_new(o, "thecal_sac_diameter_ratio", ratio(c->sac_diameter_ratio));
    json_object_set_new(o, "cord_gap_mm", area(c->cord_gap_mm));
    return o;
}

bool sm_stage_escc(SmError **error, const SmVolume *ct, const struct SmSpineSeg *seg,
                   const struct SmSeriesMetrics *m, int threads, const char *dir, json_t *doc)
{
    /* The sacrum is not graded: the thecal sac ends at about S2 and the sacral canal holds
     * no cord; Bilsky grading is defined for the mobile spine. at[] maps graded levels
     * back to vertebrae[]. */
    size_t nv = seg->n_vertebrae, n = 0;
    int *ids = calloc(nv ? nv : 1, sizeof *ids);
    bool *near = calloc(nv ? nv : 1, sizeof *near);
    size_t *at = calloc(nv ? nv : 1, sizeof *at);
    if (!ids || !near || !at) {
        free(ids);
        free(near);
        free(at);
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    json_t *arr = json_object_get(doc, "vertebrae");
    for (size_t i = 0; i < nv; i++) {
        int id = seg->vertebrae[i].verse_label;
        if (id == SM_VERSE_SACRUM || id == SM_VERSE_COCCYX) {
            json_t *v = json_array_get(arr, i);
            json_object_set_new(v, "escc_grade", json_null());
            json_object_set_new(v, "escc_confidence", json_null());
            json_object_set_new(v, "escc_reasons", json_pack("[s]", "sacrum: ESCC is graded on the mobile spine only"));
            continue;
        }
        ids[n] = id;
        /* A bone lesion in the body or the posterolateral elements can reach the canal. */
        near[n] = i < m->n && (m->v[i].lesion_class != SM_LESION_NONE || m->v[i].posterolateral != SM_SIDE_NONE);
        at[n++] = i;
    }
    SmEsccResult *res = NULL;
    bool ok = seg->n_canal >= 3 &&
              sm_escc_run(error, ct, seg->labels, seg->subregions, (const double(*)[3])seg->canal_lps,
                          seg->n_canal, ids, n, near, threads, &res);
    free(ids);
    free(near);
    json_t *summary = json_object();
    if (!ok && seg->n_canal < 3) {
        free(at);
        json_object_set_new(summary, "worst_grade", json_null());
        json_object_set_new(summary, "notes", json_pack("[s]", "canal centreline not found: no grading"));
        json_object_set_new(doc, "escc", summary);
        return true;
    }
    if (!ok) {
        free(at);
        json_decref(summary);
        return false;
    }
    for (size_t lv = 0; lv < res->n_levels; lv++) {
        const SmCanalLevel *c = &res->levels[lv];
        size_t i = at[lv];
        json_t *v = json_array_get(arr, i);
        const char *g = sm_escc_grade_name(c->grade);
        json_object_set_new(v, "escc_grade", g ? json_string(g) : json_null());
        json_object_set_new(v, "escc_confidence", g ? ratio(c->confidence) : json_null());
        json_object_set_new(v, "escc_reasons", sm_json_strlist(&c->reasons));
        json_object_set_new(v, "canal", canal_json(c));
        if (!g)
            continue;
        uint8_t *rgb = NULL;
        size_t w = 0, h = 0;
        char path[4200];
        snprintf(path, sizeof path, "%s/qc_axial_%s.png", dir, seg->vertebrae[i].level);
        if (!sm_escc_qc_axial(error, res, lv, 4, &rgb, &w, &h) || !sm_io_png_save(error, path, rgb, w, h, 3)) {
            free(rgb);
            free(at);
            json_decref(summary);
            sm_escc_destroy(res);
            return false;
        }
        free(rgb);
        json_object_set_new(v, "qc_axial", json_string(path + strlen(dir) + 1));
    }
    const char *wg = sm_escc_grade_name(res->worst_grade);
    json_object_set_new(summary, "worst_grade", wg ? json_string(wg) : json_null());
    json_object_set_new(summary, "worst_level",
                        res->worst_verse_label ? json_string(sm_seg_level_name(res->worst_verse_label)) : json_null());
    json_object_set_new(summary, "worst_confidence", wg ? ratio(res->worst_confidence) : json_null());
    json_t *st = json_object();
    json_object_set_new(st, "fat_hu", area(res->stats.fat_hu));
    json_object_set_new(st, "csf_hu", area(res->stats.csf_hu));
    json_object_set_new(st, "cord_hu", area(res->stats.cord_hu));
    json_object_set_new(st, "muscle_hu", area(res->stats.muscle_hu));
    json_object_set_new(st, "noise_sigma_hu", area(res->stats.noise_sigma_hu));
    json_object_set_new(st, "fat_threshold_hu", area(res->stats.fat_threshold_hu));
    json_object_set_new(st, "dense_threshold_hu", area(res->stats.dense_threshold_hu));
    json_object_set_new(summary, "tissue_statistics", st);
    json_object_set_new(summary, "notes", sm_json_strlist(&res->notes));
    json_object_set_new(doc, "escc", summary);
    sm_escc_destroy(res);
    free(at);
    return true;
}
