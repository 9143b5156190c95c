/* The measurement stage of `run`: per-vertebra metrics and SINS imaging components into
 * results.json, with caller-supplied pain turning the SINS range into a total. */
#include "sm_metrics.h"
#include "sins_rules.h"
#include "sm_pipeline.h"
#include "sm_segment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *num(double v, double scale)
{
    return isfinite(v) ? json_real(round(v * scale) / scale) : json_null();
}

static json_t *int_or_null(int v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static const char *deformity_name(SmDeformity d)
{
    switch (d) {
    case SM_DEFORMITY_NONE: return "none";
    case SM_DEFORMITY_WEDGE: return "wedge";
    case SM_DEFORMITY_BICONCAVE: return "biconcave";
    case SM_DEFORMITY_CRUSH: return "crush";
    }
    return "none";
}

static int pain_for(const SmSegmentStageOptions *opt, const char *level)
{
    for (size_t i = 0; i < opt->n_pain; i++)
        if (strcmp(opt->pain_level[i], level) == 0)
            return opt->pain_points[i];
    return -1;
}

static json_t *sins_json(const SmVertebraMetrics *v, int pain)
{
    json_t *s = json_object();
    json_object_set_new(s, "location", int_or_null(v->sins_location));
    json_object_set_new(s, "lesion_quality", int_or_null(v->sins_lesion_quality));
    json_object_set_new(s, "alignment", int_or_null(v->sins_alignment));
    json_object_set_new(s, "collapse", int_or_null(v->sins_collapse));
    json_object_set_new(s, "posterolateral", int_or_null(v->sins_posterolateral));
    int sub = sm_sins_imaging_subtotal(v);
    json_object_set_new(s, "imaging_subtotal", int_or_null(sub));
    int lo = -1, hi = -1;
    const char *cats[3];
    size_t nc = 0;
    sm_sins_range(sub, &lo, &hi, cats, &nc);
    json_t *range = json_array(), *ca = json_array();
    if (lo >= 0) {
        json_array_append_new(range, json_integer(lo));
        json_array_append_new(range, json_integer(hi));
    }
    for (size_t i = 0; i < nc; i++)
        json_array_append_new(ca, json_string(cats[i]));
    json_object_set_new(s, "total_range", lo >= 0 ? range : json_null());
    if (lo < 0)
        json_decref(range);
    json_object_set_new(s, "categories", ca);
    if (pain >= 0 && sub >= 0) {
        json_object_set_new(s, "pain", json_integer(pain));
        json_object_set_new(s, "total", json_integer(sub + pain));
        json_object_set_new(s, "category", json_string(sm_sins_category_name(sub + pain)));
    }
    return s;
}

static void add_vertebra_metrics(json_t *o, const SmVertebraMetrics *v, int pain)
{
    json_t *h = json_object();
    json_object_set_new(h, "anterior", num(v->height_anterior_mm, 100));
    json_object_set_new(h, "middle", num(v->height_middle_mm, 100));
    json_object_set_new(h, "posterior", num(v->height_posterior_mm, 100));
    json_object_set_new(o, "heights_mm", h);
    json_object_set_new(o, "ap_depth_mm", num(v->ap_depth_mm, 100));
    json_object_set_new(o, "expected_height_mm", num(v->expected_height_mm, 100));
    json_object_set_new(o, "height_loss_pct", num(v->height_loss_pct, 10));
    json_object_set_new(o, "genant_grade", int_or_null(v->genant_grade));
    json_object_set_new(o, "deformity", json_string(deformity_name(v->deformity)));
    json_t *l = json_object();
    json_object_set_new(l, "class", json_string(sm_sins_lesion_class_name((int)v->lesion_class)));
    json_object_set_new(l, "lytic_fraction", num(v->lytic_fraction, 1000));
    json_object_set_new(l, "blastic_fraction", num(v->blastic_fraction, 1000));
    json_object_set_new(l, "body_involvement_fraction", num(v->body_involvement_fraction, 1000));
    json_object_set_new(l, "cancellous_median_hu", num(v->cancellous_median_hu, 10));
    json_object_set_new(l, "lytic_mean_hu", num(v->lytic_mean_hu, 10));
    json_object_set_new(l, "blastic_mean_hu", num(v->blastic_mean_hu, 10));
    json_object_set_new(o, "lesion", l);
    json_object_set_new(o, "posterolateral", json_string(sm_sins_side_name((int)v->posterolateral)));
    json_object_set_new(o, "posterolateral_fraction",
                        json_pack("{s:o, s:o}", "left", num(v->posterolateral_fraction[0], 1000),
                                  "right", num(v->posterolateral_fraction[1], 1000)));
    json_t *a = json_object();
    json_object_set_new(a, "translation_mm", num(v->translation_mm, 100));
    json_object_set_new(a, "kyphosis_deg", num(v->kyphosis_deg, 10));
    json_object_set_new(a, "scoliosis_deg", num(v->scoliosis_deg, 10));
    const char *ac = sm_sins_alignment_class_name((int)v->alignment);
    json_object_set_new(a, "class", ac ? json_string(ac) : json_null());
    json_object_set_new(o, "alignment", a);
    json_object_set_new(o, "sins", sins_json(v, pain));
    json_object_set_new(o, "metric_notes", sm_json_strlist(&v->notes));
}

bool sm_stage_metrics(SmError **error, const SmVolume *ct, const struct SmSpineSeg *seg,
                      const SmSegmentStageOptions *opt, json_t *doc, SmSeriesMetrics **out)
{
    size_t n = seg->n_vertebrae;
    int *ids = calloc(n ? n : 1, sizeof *ids);
    const char **names = calloc(n ? n : 1, sizeof *names);
    bool *doubtful = calloc(n ? n : 1, sizeof *doubtful);
    if (!ids || !names || !doubtful) {
        free(ids);
        free((void *)names);
        free(doubtful);
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = seg->vertebrae[i].verse_label;
        names[i] = seg->vertebrae[i].level;
        doubtful[i] = seg->vertebrae[i].extent_doubtful;
    }
    SmMetricsInput in = {.ct = ct, .labels = seg->labels, .subregions = seg->subregions,
                         .n_levels = n, .verse_labels = ids, .level_names = names,
                         .extent_doubtful = doubtful, .threads = opt->threads};
    SmSeriesMetrics *m = NULL;
    bool ok = sm_metrics_run(error, &in, &m);
    free(doubtful);
    free(ids);
    free((void *)names);
    if (!ok)
        return false;
    json_t *arr = json_object_get(doc, "vertebrae");
    for (size_t i = 0; i < m->n && i < json_array_size(arr); i++)
        add_vertebra_metrics(json_array_get(arr, i), &m->v[i], pain_for(opt, m->v[i].level));
    json_t *s = json_object();
    json_object_set_new(s, "reference_cancellous_hu", num(m->reference_cancellous_hu, 10));
    json_object_set_new(s, "reference_spread_hu", num(m->reference_spread_hu, 10));
    json_object_set_new(s, "reference_method", sm_json_strlist(&m->reference_method));
    json_object_set_new(s, "lesion_levels", sm_json_strlist(&m->lesion_levels));
    json_object_set_new(s, "n_vertebral_body_metastases", json_integer(m->n_vertebral_body_metastases));
    json_object_set_new(s, "worst_level", m->worst_level[0] ? json_string(m->worst_level) : json_null());
    json_object_set_new(s, "notes", sm_json_strlist(&m->notes));
    json_object_set_new(doc, "series_metrics", s);
    *out = m;
    return true;
}
