/* Internal API between the metric families of metrics/ (not installed, not for pipeline). */
#ifndef SM_METRICS_INTERNAL_H
#define SM_METRICS_INTERNAL_H

#include "sm_metrics.h"

/* Each family fills its own fields of m->v[0..n) (already allocated, levels and labels
 * set, every number NAN / enum NONE / -1 beforehand) and may append notes. Families run in
 * this order inside sm_metrics_run: frame+heights, alignment, lesions, posterolateral, sins.
 * All are deterministic at any thread count. */

/* metrics/heights.c: body centroid, the vertebra's own frame (axis_*), heights at
 * 15/50/85 % of AP depth, ap_depth_mm, expected_height_mm (neighbours), height_loss_pct,
 * genant_grade, deformity. */
bool sm_metric_heights(SmError **error, const SmMetricsInput *in, SmSeriesMetrics *m);

/* metrics/alignment.c: translation_mm, kyphosis_deg, scoliosis_deg, alignment class,
 * between each vertebra and the one below (uses the frames from heights). */
bool sm_metric_alignment(SmError **error, const SmMetricsInput *in, SmSeriesMetrics *m);

/* metrics/lesions.c: reference_cancellous_hu (+ method), cancellous_median_hu,
 * lytic/blastic/body_involvement fractions, lesion_class. */
bool sm_metric_lesions(SmError **error, const SmMetricsInput *in, SmSeriesMetrics *m);

/* metrics/posterolateral.c: posterolateral side (uses the reference from lesions). */
bool sm_metric_posterolateral(SmError **error, const SmMetricsInput *in, SmSeriesMetrics *m);

/* metrics/sins.c: the five SINS imaging components from the fields above. */
void sm_metric_sins(SmSeriesMetrics *m);

#endif
