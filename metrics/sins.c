/* The five SINS imaging components of each vertebra from the measured fields, the SINS
 * total range and categories, and the series' worst lesion level. */
#include "metrics_internal.h"

#include <math.h>
#include <stdio.h>

#include "sins_rules.h"

/* Points of the segment between v[s] and the vertebra below; -1 when it was not measured. */
static int segment_points(const SmSeriesMetrics *m, size_t s)
{
    const SmVertebraMetrics *v = &m->v[s];
    if (isnan(v->translation_mm) && isnan(v->kyphosis_deg) && isnan(v->scoliosis_deg))
        return -1;
    return sm_sins_alignment_class_points((int)v->alignment);
}

int sm_sins_imaging_subtotal(const SmVertebraMetrics *v)
{
    if (!v || v->sins_location < 0 || v->sins_alignment < 0 || v->sins_collapse < 0 ||
        v->sins_posterolateral < 0)
        return -1;
    int q = v->sins_lesion_quality < 0 ? 0 : v->sins_lesion_quality;
    return v->sins_location + q + v->sins_alignment + v->sins_collapse + v->sins_posterolateral;
}

void sm_sins_range(int subtotal, int *lo, int *hi, const char **categories, size_t *n_categories)
{
    int l = -1, h = -1, n = 0;
    const char *names[3] = {NULL, NULL, NULL};
    if (subtotal >= 0 && subtotal <= 15) {
        /* pain, the one clinical component, scores 0, 1 or 3 */
        l = subtotal;
        h = subtotal + 3;
        n = sm_sins_categories(l, h, names);
    }
    if (lo)
        *lo = l;
    if (hi)
        *hi = h;
    if (categories)
        for (int q = 0; q < 3; q++)
            categories[q] = q < n ? names[q] : NULL;
    if (n_categories)
        *n_categories = n > 0 ? (size_t)n : 0;
}

void sm_metric_sins(SmSeriesMetrics *m)
{
    for (size_t i = 0; i < m->n; i++) {
        SmVertebraMetrics *v = &m->v[i];
        v->sins_location = sm_sins_location_points(v->verse_label);
        v->sins_lesion_quality = sm_sins_lesion_quality_points((int)v->lesion_class);
        /* a translation or focal deformity involves both vertebrae of its segment: the
         * worse of the segments above and below */
        int below = segment_points(m, i), above = i > 0 ? segment_points(m, i - 1) : -1;
        v->sins_alignment = below > above ? below : above;
        v->sins_collapse = sm_sins_collapse_points(v->height_loss_pct, v->body_involvement_fraction);
        v->sins_posterolateral = isnan(v->posterolateral_fraction[0]) && isnan(v->posterolateral_fraction[1])
                                     ? -1
                                     : sm_sins_posterolateral_points((int)v->posterolateral);
    }
    /* worst lesion level: highest imaging subtotal, then larger involvement, then the
     * superior one */
    m->worst_index = -1;
    m->worst_level[0] = '\0';
    int best_sub = -2;
    double best_inv = -1.0;
    for (size_t i = 0; i < m->n; i++) {
        const SmVertebraMetrics *v = &m->v[i];
        if (v->lesion_class == SM_LESION_NONE)
            continue;
        int sub = sm_sins_imaging_subtotal(v);
        double inv = isnan(v->body_involvement_fraction) ? 0.0 : v->body_involvement_fraction;
        if (sub > best_sub || (sub == best_sub && inv > best_inv)) {
            best_sub = sub;
            best_inv = inv;
            m->worst_index = (int)i;
        }
    }
    if (m->worst_index >= 0)
        snprintf(m->worst_level, sizeof m->worst_level, "%s", m->v[m->worst_index].level);
}
