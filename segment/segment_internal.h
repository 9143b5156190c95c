/* Internal interfaces shared by the files of segment/: the 2 mm working grid, the column
 * frame, discs, vertebra records under construction, and the kernels. */
#ifndef SM_SEGMENT_INTERNAL_H
#define SM_SEGMENT_INTERNAL_H

#include "sm_segment.h"

#include <stdint.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Working-grid value of voxels outside the CT's field of view. */
#define SEG_OUTSIDE INT16_MIN
/* Working-grid spacing in mm (isotropic, axes along LPS). */
#define SEG_GRID_MM 2.0

/* LPS-aligned isotropic working grid: LPS = origin + g * (i, j, k). i -> patient left,
 * j -> posterior, k -> superior. */
typedef struct SegGrid {
    size_t dims[3];
    size_t n;
    double g;
    double origin[3];
    int16_t *hu;          /* HU, SEG_OUTSIDE outside the field of view */
} SegGrid;

static inline size_t seg_idx(const size_t d[3], size_t i, size_t j, size_t k)
{
    return i + d[0] * (j + d[1] * k);
}

/* Column frame sampled on every working slice k. */
typedef struct SegSlice {
    bool valid;           /* inside the tracked canal range */
    bool observed;        /* canal actually detected on this slice (not interpolated) */
    double cx, cy;        /* canal centre, LPS mm */
    double rx, ry_ant, ry_post; /* canal half-width and anterior/posterior radii, mm */
    double bx, by;        /* body centre, LPS mm */
    double depth;         /* body AP depth, mm */
    double half_width;    /* body half width, mm */
    double arc;           /* arc length of the body axis from slice k0, mm */
    double raw_depth;     /* unsmoothed filled-bone AP run in front of the canal (NAN: none,
                           * typically a disc level) */
} SegSlice;

typedef struct SegFrame {
    size_t nz;
    size_t k0, k1;        /* valid slices k0..k1 inclusive */
    SegSlice *s;
    double body_depth_med;
    double body_halfw_med;
    double bone_seed_hu;  /* the bone mask's seed threshold (canal.c; ribs.c tells the cortex
                           * of lateral bone from enhanced organs by it; 0: not known) */
} SegFrame;

typedef struct SegDisc {
    double p[3];          /* centre on the body axis, LPS */
    double n[3];          /* unit normal pointing superior */
    double s;             /* arc position along the body axis, mm */
    double half_thick;    /* mm */
    double strength;      /* prominence relative to the profile's range */
    bool inserted;        /* placed by spacing, no clear minimum */
    /* footprint means on the native CT along the normal (valid when plates_hu is set): the
     * disc's own value and the peak of each end plate (below [0], above [1]), HU */
    bool plates_hu;
    double disc_hu, plate_hu[2];
} SegDisc;

/* A vertebra between two disc planes while it is being built. */
typedef struct SegVert {
    int lower_disc;       /* index of disc below (-1: none, FOV or sacrum) */
    int upper_disc;       /* index of disc above (-1: none) */
    double s_lo, s_hi;    /* arc range along the body axis */
    double centre[3];     /* body axis point at mid-range */
    bool sacral;          /* fused to the pelvis (sacrum) */
    double sacral_spread_mm; /* lateral reach of bone joined to the body (both sides) */
    bool touches_pelvis;  /* spreads like the sacrum but clearly less: L5 touching the ilia */
    double pelvis_join_mm3[2]; /* [left, right] bone of a pelvic component (reaching below the
                                  sacral promontory) in this segment's attachment shell:
                                  a transverse process fused to the ala (sacralisation) */
    bool rib_left, rib_right;
    double rib_reach_mm;  /* longest rib reach (lateral mm from the canal) */
    int rib_runs;         /* shell crossings by ribs (reach >= 55 mm, or cut by the FOV) here */
    bool first_rib;       /* holds the first rib (short, below no other rib, fully in view) */
    bool rib_heads;       /* rib heads beside the body on both sides (spine.c; set for
                             segments that are not rib-bearing before labelling) */
    bool partial;
    bool cervical_top;    /* topmost segment is C1+C2 (dens with the C1 arch in front) */
    double c1_z;          /* LPS z above which bone in front of the dens belongs to C1 */
    double c2_top_z;      /* LPS z of C2's body top: above it bone off the dens is C1 */
    double dens_p[3];     /* a point on the dens axis (LPS mm) */
    double dens_sx, dens_sy; /* dens axis: patient x and y change per mm of z */
    double dens_ry_mm;    /* dens AP half-depth: the atlanto-dental joint lies that far in
                             front of the dens axis */
    double dens_radius_mm; /* dens half-width (NAN: not measured) */
    double canal_to_body; /* canal width / body width at mid-height (NAN: not measured):
                             above 1 in the cervical spine, about 0.5 below it */
    int verse;            /* assigned VerSe id */
    double confidence;
    bool extent_doubtful; /* a bounding disc plane may be missed or misplaced (labels.c) */
    SmStrList anchors;
    SmStrList reasons;
} SegVert;

typedef struct SegThresholds {
    double soft;          /* soft-tissue mode */
    double soft_sigma;
    double lo, hi;        /* hysteresis grow / seed thresholds */
    double edge;          /* partial-volume edge threshold between soft tissue and bone */
    bool enhanced;        /* the soft-tissue mode is contrast-enhanced parenchyma */
} SegThresholds;

/* ---- resample.c ---- */
bool sm_seg_grid_build(SmError **error, const SmVolume *ct, SegGrid *grid);
void sm_seg_grid_free(SegGrid *grid);
/* The CT value of the voxel nearest to LPS (x, y, z), inv = the CT's LPS -> index matrix
 * (NAN outside the volume). */
double sm_seg_ct_nearest(const SmVolume *ct, const double inv[4][4], double x, double y,
                         double z);

/* ---- morphology.c ---- */
/* Connected components of mask (non-zero), 6- or 26-connectivity, labels numbered in raster
 * order of their first voxel (deterministic). labels must hold n entries. Returns the count
 * via *count; fails only when out of memory. */
bool sm_seg_components_label(SmError **error, const uint8_t *mask, const size_t dims[3],
                             int connectivity, uint32_t *labels, uint32_t *count);
/* Fills, on every slice k, background regions (4-connected) not touching the slice border
 * and no larger than max_area voxels, writing fill_value. Parallel over slices. */
bool sm_seg_holes_fill_2d(SmError **error, uint8_t *mask, const size_t dims[3],
                          size_t max_area, uint8_t fill_value);
/* Binary dilation (erode=false) or erosion with a box of half-sizes r[3] voxels, separable. */
bool sm_seg_box_morph(SmError **error, uint8_t *mask, const size_t dims[3], const int r[3],
                      bool erode);

/* ---- body_mask.c ---- */
bool sm_seg_body_mask(SmError **error, const SegGrid *grid, uint8_t *body);

/* ---- bone.c ---- */
bool sm_seg_thresholds_compute(SmError **error, const SegGrid *grid, const uint8_t *body,
                               SegThresholds *thr);
/* Threshold selection used by thresholds_compute on a histogram (bins of 1 HU starting at
 * hist_min). Exposed for unit tests. */
void sm_seg_thresholds_from_histogram(const uint64_t *hist, size_t nbins, int hist_min,
                                      SegThresholds *thr);
/* bone = hysteresis(lo, hi) inside body, 26-connected; filled = bone + small holes. */
bool sm_seg_bone_mask(SmError **error, const SegGrid *grid, const uint8_t *body,
                      const SegThresholds *thr, uint8_t *bone, uint8_t *filled);

/* ---- canal.c ---- */
bool sm_seg_canal_track(SmError **error, const SegGrid *grid, const uint8_t *bone,
                        const uint8_t *body, const SegThresholds *thr, SegFrame *frame, SmStrList *notes);
void sm_seg_frame_free(SegFrame *frame);

/* ---- column.c ---- */
/* Body centre, depth and width per slice, smoothed. */
void sm_seg_column_body_axis(const SegGrid *grid, const uint8_t *filled, SegFrame *frame);
/* Frame values at LPS z (linear interpolation between slices); false outside the range. */
bool sm_seg_frame_at(const SegFrame *frame, const SegGrid *grid, double z, SegSlice *out);

/* ---- discs.c ---- */
/* Body-axis point and unit tangent (pointing superior) at arc position s. */
void sm_seg_axis_at(const SegGrid *grid, const SegFrame *frame, double s, double p[3],
                    double t[3]);
/* ct (I16 HU, may be NULL): the disc profile and planes are sampled on it when given,
 * else on the working grid. */
bool sm_seg_discs_find(SmError **error, const SmVolume *ct, const SegGrid *grid,
                       const SegFrame *frame, const SegThresholds *thr, SegDisc **discs,
                       size_t *n_discs, SmStrList *notes);
/* Valleys of a 1D profile: depth(i) = max over half-widths d in [dmin, dmax] of
 * min(flank[i-d], flank[i+d]) - p[i] (flank NULL: p itself); local maxima of depth >=
 * min_depth, strongest first, at least min_sep samples apart -- except, with same_floor > 0,
 * a pair at least min_sep / 2 apart whose profile values differ by at least same_floor x
 * the shallower depth (both kept). Writes indices ascending; returns the count. */
size_t sm_seg_profile_valleys(const double *p, const double *flank, size_t n, size_t dmin,
                              size_t dmax, double min_depth, size_t min_sep, double same_floor,
                              size_t *idx, double *depth, size_t max_out);
/* Unit vectors u, v spanning the plane normal to unit n (u: patient x made normal to n,
 * v = n x u); false when n is along x. */
bool sm_seg_plane_basis(const double n[3], double u[3], double v[3]);

/* ---- canal.c: refined canal for the vertebra outline (segmask) ---- */
/* On a copy of the frame: where the posterior body wall (the dense-to-dark HU step on AP
 * lines near the midline; edge = soft-tissue/bone edge level) lies behind the canal
 * front, the canal moves back so that its front is that wall. Returns the slices
 * changed. */
size_t sm_seg_canal_refine(const SegGrid *grid, double edge, SegFrame *frame);

/* ---- vertebrae.c ---- */
/* Which segment (0 = below disc 0, i = between disc i-1 and i, n = above the last) a point
 * falls into. */
size_t sm_seg_segment_of(const SegDisc *discs, size_t n_discs, const double p[3]);
/* Same, with the cut bent downward by slope * posterior_mm behind the canal centre
 * (posterior elements can hang below their body). */
size_t sm_seg_segment_of_bent(const SegDisc *discs, size_t n_discs, const double p[3],
                              double posterior_mm, double slope);
/* Same for a point beside the column (a rib where it leaves its head): each disc plane's
 * lateral (x) tilt is followed only up to lat_mm from the plane's centre and continues
 * level beyond it. */
size_t sm_seg_segment_of_beside(const SegDisc *discs, size_t n_discs, const double p[3],
                                double lat_mm);
/* Vertebra bone mask on the working grid: filled bone near the column, ribs and pelvis
 * removed, the component that holds the bodies. */
bool sm_seg_vertebra_mask(SmError **error, const SegGrid *grid, const uint8_t *bone,
                          const uint8_t *filled, const SegFrame *frame, const uint8_t *rib,
                          uint8_t *vmask);

/* ---- ribs.c ---- */
/* Marks rib/pelvis bone (far-reaching lateral components) in rib[] and records rib
 * attachments per segment. */
bool sm_seg_ribs_find(SmError **error, const SegGrid *grid, const uint8_t *bone,
                      const SegFrame *frame, const SegDisc *discs, size_t n_discs,
                      SegVert *verts, size_t n_verts, double sacrum_top_z, uint8_t *rib,
                      SmStrList *notes);
/* First-rib decision on one side from the reaches (mm) of the two topmost rib crossings
 * (top_reach, next_reach; next_reach <= 0 when there is none) and whether the top rib is
 * cut by the field of view. Exposed for tests. */
bool sm_seg_first_rib_test(double top_reach, double next_reach, bool top_cut);
/* Rib head across its costovertebral joint (seglabel): CT point p (LPS) lies beyond the
 * body's half-width hw from the body centre x = bx, and walking from p toward the body
 * along patient x (CT sampled at the nearest voxel every `step` mm; inv = the CT's inverse
 * affine) meets a value below `edge` (the joint) followed within 4 mm by cortex (>= bone_lo)
 * -- or any sub-edge value when at_disc (beside a disc space). Any image orientation. */
bool sm_seg_rib_head_gap(const SmVolume *ct, const double inv[4][4], double step,
                         const double p[3], double bx, double hw, double edge, double bone_lo,
                         bool at_disc);

/* ---- sacrum.c ---- */
bool sm_seg_sacrum_find(SmError **error, const SegGrid *grid, const uint8_t *filled,
                        const SegFrame *frame, SegVert *verts, size_t n_verts);

/* Canal width / body width (canal_to_body; median over a window) from which the window is
 * cervical: half-way between C7 (about 1.0) and T1 (about 0.7); thoracic and lumbar canals
 * are about half as wide as their bodies */
#define CERVICAL_CANAL_TO_BODY 0.85

/* Segment index of S1 (top of the lowest sacral run with mobile segments above), or -1.
 * May demote a pelvis-touching L5 (sets touches_pelvis), or a candidate under a cervical
 * canal (clears its sacral flag; noted when notes is not NULL). Reads canal_to_body. */
long sm_seg_sacrum_pick(SegVert *verts, size_t n_verts, SmStrList *notes);

/* ---- cervical.c ---- */
/* Marks the topmost segment cervical_top (C2 anchor) when it holds dens and C1 arch. */
void sm_seg_c2_find(const SegGrid *grid, const SegThresholds *thr, const SegFrame *frame,
                    SegVert *verts, size_t n_verts);

/* ---- labels.c ---- */
bool sm_seg_levels_assign(SmError **error, SegVert *verts, size_t n_verts,
                          const SmSegOptions *opt, const SegGrid *grid, SmStrList *anchors,
                          SmStrList *notes);

/* ---- subregions.c ---- */
/* Sub-region code of a vertebra voxel at LPS p given the frame slice there. */
uint8_t sm_seg_subregion_classify(const SegSlice *sl, const double p[3]);
/* Body outline test: <= 1 inside the rounded-rectangle body cross-section of slice sl. */
double sm_seg_body_shape(const SegSlice *sl, const double p[3]);

/* ---- plates.c ---- */
/* Voxels taken out of one label's body by sm_seg_trim_plate_slices (count, index sums). */
typedef struct SegTrimmed {
    size_t n;
    uint64_t si, sj, sk;
} SegTrimmed;
/* Thick-slice CT (slice spacing >= 1.5 mm): a body's end slice holding a whole end plate
 * leaves the body (label 0; disc where the slice beyond is disc) when its wall ring keeps
 * less than PLATE_RING_KEEP of the inner slices' ring contrast over the level beyond (the
 * plate's outer fringe). One note per slice taken; trimmed[29] gets what left each label.
 * ct: I16 HU; lab, sub: U8 label and sub-region maps on its grid. */
bool sm_seg_trim_plate_slices(SmError **error, const SmVolume *ct, SmVolume *lab, SmVolume *sub,
                              double bone_lo, SmStrList *notes, SegTrimmed trimmed[29]);

/* ---- font.c ---- */
/* Draws ASCII text (digits, upper-case letters) with a 5x7 font scaled by scale into an RGB
 * buffer. Clips at the borders. */
void sm_seg_font_draw(uint8_t *rgb, size_t w, size_t h, long x, long y, const char *text,
                      int scale, const uint8_t colour[3]);

/* Index of the calling OpenMP thread (0 without OpenMP). */
int sm_seg_thread_id(void);

#endif
