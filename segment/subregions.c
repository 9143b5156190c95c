/* Sub-region of a vertebra voxel from its position relative to the canal and the body
 * axis on its slice: body, patient-left/right posterolateral (pedicle + facet), posterior
 * arch, transverse process. */
#include "segment_internal.h"

#include <math.h>

/* Beyond this lateral distance past the canal wall bone is a transverse process (or rib
 * head), not pedicle/facet. */
#define FACET_BAND_MM 18.0

uint8_t sm_seg_subregion_classify(const SegSlice *sl, const double p[3])
{
    double dx = p[0] - sl->cx, dy = p[1] - sl->cy;
    double adx = fabs(dx);
    uint8_t side = dx > 0 ? SM_SUB_POSTEROLATERAL_L : SM_SUB_POSTEROLATERAL_R;
    /* vertebra bone inside the anterior half of the canal ellipse, medially, can only be the
     * body's posterior wall (the canal's anterior radius runs large where the canal is
     * triangular, as at L5) */
    if (dy < 0 && adx < 0.7 * sl->rx && dy > -sl->ry_ant)
        return SM_SUB_BODY;
    /* the canal's anterior wall is curved: beside the canal the body reaches back to the
     * pedicles, limited by its own outline */
    double ux = adx < sl->rx ? adx / sl->rx : 1.0;
    if (dy < -sl->ry_ant * sqrt(1.0 - ux * ux)) {
        /* the body outline, 2 mm margin (6 mm in front: the per-slice frame lags behind
         * tilted bodies such as L5, and only vertebra voxels are classified) */
        double a = sl->half_width + 2.0;
        double b = 0.5 * sl->depth + (p[1] < sl->by ? 6.0 : 2.0);
        double u = fabs(p[0] - sl->bx) / a, w = fabs(p[1] - sl->by) / b;
        if (u * u * u + w * w * w <= 1.0)
            return SM_SUB_BODY;
        return adx > sl->rx + FACET_BAND_MM ? SM_SUB_TRANSVERSE : side;
    }
    if (adx > sl->rx + FACET_BAND_MM)
        return SM_SUB_TRANSVERSE;
    if (dy > sl->ry_post + 1.0 && (adx < 0.9 * sl->rx || dy > sl->ry_post + 10.0))
        return SM_SUB_POSTERIOR_ARCH;
    return side;
}

double sm_seg_body_shape(const SegSlice *sl, const double p[3])
{
    /* rounded rectangle (superellipse, exponent 3) around the body centre, 2 mm margin */
    double a = sl->half_width + 2.0, b = 0.5 * sl->depth + 2.0;
    double u = fabs(p[0] - sl->bx) / a, w = fabs(p[1] - sl->by) / b;
    return u * u * u + w * w * w;
}
