/* Driver of the metric families: validates the input, allocates the results and runs
 * heights, alignment, lesions, posterolateral and SINS in that order. */
#include "metrics_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* VerSe id to level name for callers that pass no names. */
static void verse_name(int id, char out[8])
{
    if (id >= 1 && id <= 7)
        snprintf(out, 8, "C%d", id);
    else if (id >= 8 && id <= 19)
        snprintf(out, 8, "T%d", id - 7);
    else if (id >= 20 && id <= 25)
        snprintf(out, 8, "L%d", id - 19);
    else if (id == 26)
        snprintf(out, 8, "S1");
    else if (id == 28)
        snprintf(out, 8, "T13");
    else
        snprintf(out, 8, "?%d", id);
}

static void vertebra_init(SmVertebraMetrics *v, int verse_label, const char *name)
{
    memset(v, 0, sizeof *v);
    v->verse_label = verse_label;
    if (name && *name)
        snprintf(v->level, sizeof v->level, "%s", name);
    else
        verse_name(verse_label, v->level);
    for (int d = 0; d < 3; d++) {
        v->body_centroid_lps[d] = NAN;
        v->axis_superior[d] = NAN;
        v->axis_anterior[d] = NAN;
        v->axis_left[d] = NAN;
    }
    v->height_anterior_mm = v->height_middle_mm = v->height_posterior_mm = NAN;
    v->ap_depth_mm = NAN;
    v->expected_height_mm = NAN;
    v->height_loss_pct = NAN;
    v->genant_grade = -1;
    v->deformity = SM_DEFORMITY_NONE;
    v->lesion_class = SM_LESION_NONE;
    v->lytic_fraction = v->blastic_fraction = v->body_involvement_fraction = NAN;
    v->cancellous_median_hu = NAN;
    v->lytic_mean_hu = v->blastic_mean_hu = NAN;
    v->posterolateral = SM_SIDE_NONE;
    v->posterolateral_fraction[0] = v->posterolateral_fraction[1] = NAN;
    v->translation_mm = v->kyphosis_deg = v->scoliosis_deg = NAN;
    v->alignment = SM_ALIGN_NORMAL;
    v->sins_location = v->sins_lesion_quality = v->sins_alignment = -1;
    v->sins_collapse = v->sins_posterolateral = -1;
}

static bool validate(SmError **error, const SmMetricsInput *in)
{
    if (!in || !in->ct || !in->labels || !in->subregions) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: ct, labels and subregions are all required");
        return false;
    }
    if (in->ct->type != SM_VOXEL_I16 && in->ct->type != SM_VOXEL_F32) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: CT must be I16 or F32 HU, got %s",
                     sm_voxel_type_name(in->ct->type));
        return false;
    }
    if (in->labels->type != SM_VOXEL_U8 && in->labels->type != SM_VOXEL_U16) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: label map must be U8 or U16, got %s",
                     sm_voxel_type_name(in->labels->type));
        return false;
    }
    if (in->subregions->type != SM_VOXEL_U8) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: sub-region map must be U8, got %s",
                     sm_voxel_type_name(in->subregions->type));
        return false;
    }
    if (!sm_volume_same_grid(in->ct, in->labels, 0.01) ||
        !sm_volume_same_grid(in->ct, in->subregions, 0.01)) {
        sm_error_set(error, SM_ERR_USAGE,
                     "metrics: CT, labels and sub-regions must share one grid (dims and affine); "
                     "re-index the label maps onto the CT first");
        return false;
    }
    if (in->n_levels > 0 && !in->verse_labels) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: %zu levels but no VerSe labels", in->n_levels);
        return false;
    }
    for (size_t i = 0; i < in->n_levels; i++) {
        int id = in->verse_labels[i];
        int max_id = in->labels->type == SM_VOXEL_U8 ? 255 : 65535;
        if (id < 1 || id > max_id) {
            sm_error_set(error, SM_ERR_USAGE, "metrics: level %zu has VerSe id %d outside 1..%d", i,
                         id, max_id);
            return false;
        }
        for (size_t j = 0; j < i; j++)
            if (in->verse_labels[j] == id) {
                sm_error_set(error, SM_ERR_USAGE, "metrics: VerSe id %d is listed twice", id);
                return false;
            }
    }
    return true;
}

bool sm_metrics_run(SmError **error, const SmMetricsInput *in, SmSeriesMetrics **out)
{
    if (!out) {
        sm_error_set(error, SM_ERR_USAGE, "metrics: no output pointer");
        return false;
    }
    if (!validate(error, in))
        return false;
    SmSeriesMetrics *m = calloc(1, sizeof *m);
    if (!m) {
        sm_error_set(error, SM_ERR_NOMEM, "metrics: out of memory");
        return false;
    }
    m->n = in->n_levels;
    m->reference_cancellous_hu = NAN;
    m->reference_spread_hu = NAN;
    m->worst_index = -1;
    if (m->n > 0) {
        m->v = calloc(m->n, sizeof *m->v);
        if (!m->v) {
            free(m);
            sm_error_set(error, SM_ERR_NOMEM, "metrics: out of memory for %zu levels", in->n_levels);
            return false;
        }
    }
    for (size_t i = 0; i < m->n; i++)
        vertebra_init(&m->v[i], in->verse_labels[i], in->level_names ? in->level_names[i] : NULL);

    bool ok = sm_metric_heights(error, in, m) && sm_metric_alignment(error, in, m) &&
              sm_metric_lesions(error, in, m) && sm_metric_posterolateral(error, in, m);
    if (!ok) {
        sm_metrics_destroy(m);
        return false;
    }
    sm_metric_sins(m);
    *out = m;
    return true;
}

void sm_metrics_destroy(SmSeriesMetrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        sm_strlist_clear(&m->v[i].notes);
    free(m->v);
    sm_strlist_clear(&m->reference_method);
    sm_strlist_clear(&m->lesion_levels);
    sm_strlist_clear(&m->notes);
    free(m);
}
