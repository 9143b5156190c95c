/* Internal to metrics/: a vertebral body's own frame and sub-voxel sampling of its mask,
 * shared by heights.c and alignment.c. */
#ifndef SM_METRICS_FRAME_H
#define SM_METRICS_FRAME_H

#include "sm_metrics.h"

/* VerSe id of the sacrum: its frame's superior axis is the S1 endplate normal. */
#define SM_FRAME_SACRUM_ID 26

/* Moments of one level's voxels, from one scan of the label/sub-region maps. */
typedef struct SmFrameStats {
    size_t n_body;              /* voxels with label == id and sub-region == body */
    double body_centroid[3];    /* LPS mm */
    double body_cov[3][3];      /* LPS mm^2 */
    size_t n_post;              /* same label, posterior elements (sub-regions 2-5) */
    double post_centroid[3];
    size_t n_body_border;       /* body voxels on a face of the grid (cut by the field of view) */
} SmFrameStats;

/* Scans the maps once (OpenMP over slices, integer moments: identical at any thread
 * count) and fills stats[0..in->n_levels). Caller owns stats. SM_ERR_USAGE when the maps
 * are missing, of the wrong type or not on one grid; SM_ERR_NOMEM. */
bool sm_frame_stats_scan(SmError **error, const SmMetricsInput *in, SmFrameStats *stats);

/* The binary mask "label == id AND sub-region == body" seen as a continuous function
 * (trilinear interpolation of the 0/1 voxels; 0 outside the grid). */
typedef struct SmBodyMask {
    const SmVolume *labels, *subregions;
    int id;
    double inv[4][4];           /* LPS -> index */
} SmBodyMask;

void sm_frame_mask_init(SmBodyMask *mask, const SmVolume *labels, const SmVolume *subregions,
                        int id);
double sm_frame_mask_sample(const SmBodyMask *mask, const double p[3]);

/* Along the line origin + t*dir (dir unit): finds an inside point (value >= 0.5) within
 * |t| <= search of the origin (nearest first), then the 0.5 crossings on both sides
 * (0.2 mm steps, linear interpolation, gaps shorter than 1 mm bridged), at most tmax
 * away. *lo < *hi on success; false when no inside point or no crossing is found. */
bool sm_frame_ray_extent(const SmBodyMask *mask, const double origin[3], const double dir[3],
                         double search, double tmax, double *lo, double *hi);

/* A vertebral body's own frame and extents (LPS mm). The centre is the body centroid;
 * superior is the bisector of the two fitted endplate-plane normals (blended with the
 * walls' direction where thick slices make the endplates coarse; for the sacrum the S1
 * endplate normal); anterior points
 * from the posterior elements towards the body, perpendicular to superior; left =
 * superior x anterior (patient left, LPS +x side). y_ant / y_post are the distances from
 * the centre to the anterior / posterior walls on the mid-sagittal line (largest over
 * the central heights), width the largest lateral extent, t_mid the offset along the
 * axis of the body's mid-height on the central ray. */
typedef struct SmBodyFrame {
    bool ok;
    double c[3], sup[3], ant[3], left[3];
    double y_ant, y_post, width, t_mid, height0;
} SmBodyFrame;

/* Fits the frame of one body. hint (unit, superior sense) is the local direction of the
 * column (from neighbouring centroids) or NULL. Pure function of its inputs; no
 * allocation (safe inside OpenMP loops). */
void sm_frame_fit(const SmBodyMask *mask, const SmFrameStats *stats, const double hint[3],
                  SmBodyFrame *out);

/* Small vector helpers. */
double sm_frame_dot(const double a[3], const double b[3]);
void sm_frame_cross(const double a[3], const double b[3], double out[3]);
bool sm_frame_normalize(double v[3]);

#endif
