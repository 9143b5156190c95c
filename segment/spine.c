/* The spine segmentation pipeline: working grid, masks, canal, discs, anchors and labels,
 * then the CT-grid label and sub-region volumes and the per-vertebra records. */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Thoracic spinous processes point steeply down over the vertebra below (about 40-50
 * degrees): behind the canal the cut between rib-bearing vertebrae descends by this much
 * per mm. Lumbar and cervical processes are near horizontal: flat cut. */
#define THORACIC_SPINOUS_SLOPE 0.9

/* A rib-bearing body under a cervical one (T1 under C7) is outlined no wider than C7's
 * median half-width plus this. */
#define T1_WIDTH_ALLOW_MM 1.0

/* A capped rib-bearing body whose per-slice outline is wider than the cap by more than this
 * is centred on the canal (the outline's centre is pulled aside by rib heads). */
#define BODY_RECENTRE_MM 4.0

/* A body the rib search found no ribs on, next to a rib-bearing one, is rib-bearing when
 * rib heads lie beside it, across a joint gap, over this much of its height on each side
 * (a rib head is about 10 mm across; sweep thoracic bodies show 3-10 mm per side) ... */
#define RIB_HEADS_MIN_MM 3.0

/* ... with each joint gap at least this far (mm) outside the body's own mid-height side
 * (its CT width): sub-edge marrow inside a body (low density, noise) reads as a gap too
 * (phantom L1/L2: gaps 0-3 mm outside; rib heads: 2-5 mm) */
#define RIB_JOINT_OUT_MM 1.5

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Shared state of one run. */
typedef struct SegRun {
    const SmVolume *ct;       /* I16 view of the CT */
    SegGrid grid;
    uint8_t *body, *bone, *filled, *rib, *vmask, *vin;
    SegThresholds thr;
    SegFrame frame;
    SegFrame frame_sub;       /* frame with the canal refined for the vertebra outline */
    SegDisc *discs;
    size_t n_discs;
    SegVert *verts;           /* n_discs + 1 segments, lowest first */
    size_t n_verts;
    double t[8];              /* stage end times (notes) */
    double ext_hi;            /* vertebral bone beyond the track's cranial end, mm */
    double ext_lo;            /* ... and beyond its caudal end, mm */
    double ext_hi_follow;     /* ext_hi along a walk recentred on the bone (a leaning dens) */
    double lo_p[3], lo_n[3];  /* the caudal end's body axis: the point at the track's end
                               * and the unit tangent (up) along which ext_lo was measured */
} SegRun;

static void run_free(SegRun *r)
{
    sm_seg_grid_free(&r->grid);
    free(r->body);
    free(r->bone);
    free(r->filled);
    free(r->rib);
    free(r->vmask);
    free(r->vin);
    sm_seg_frame_free(&r->frame);
    sm_seg_frame_free(&r->frame_sub);
    free(r->discs);
    if (r->verts)
        for (size_t s = 0; s < r->n_verts; s++) {
            sm_strlist_clear(&r->verts[s].anchors);
            sm_strlist_clear(&r->verts[s].reasons);
        }
    free(r->verts);
    memset(r, 0, sizeof *r);
}

void sm_seg_spine_destroy(SmSpineSeg *seg)
{
    if (!seg)
        return;
    sm_volume_destroy(seg->labels);
    sm_volume_destroy(seg->subregions);
    for (size_t v = 0; v < seg->n_vertebrae; v++) {
        sm_strlist_clear(&seg->vertebrae[v].anchors);
        sm_strlist_clear(&seg->vertebrae[v].reasons);
    }
    free(seg->vertebrae);
    free(seg->canal_lps);
    sm_strlist_clear(&seg->anchors);
    sm_strlist_clear(&seg->notes);
    free(seg);
}

static bool check_input(SmError **error, const SmVolume *ct)
{
    if (!ct || !ct->data) {
        sm_error_set(error, SM_ERR_USAGE, "spine segmentation: no CT volume given");
        return false;
    }
    if (ct->meta.modality[0] && strcmp(ct->meta.modality, "CT") != 0 && !ct->meta.is_hu) {
        sm_error_set(error, SM_ERR_USAGE,
                     "spine segmentation needs CT in Hounsfield units; series %s is %s",
                     ct->meta.series_uid[0] ? ct->meta.series_uid : "(no UID)",
                     ct->meta.modality);
        return false;
    }
    for (int a = 0; a < 3; a++)
        if (ct->dims[a] < 2) {
            sm_error_set(error, SM_ERR_UNSUPPORTED,
                         "spine segmentation needs a 3D volume (dims %zu x %zu x %zu)",
                         ct->dims[0], ct->dims[1], ct->dims[2]);
            return false;
        }
    return true;
}

/* Grid, masks, thresholds, canal and body axis: everything before discs. */
static bool run_front(SmError **error, SegRun *r, SmSpineSeg *seg)
{
    r->t[0] = now_s();
    if (!sm_seg_grid_build(error, r->ct, &r->grid))
        return false;
    r->t[1] = now_s();
    size_t n = r->grid.n;
    r->body = malloc(n);
    r->bone = malloc(n);
    r->filled = malloc(n);
    if (!r->body || !r->bone || !r->filled) {
        sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
        return false;
    }
    if (!sm_seg_body_mask(error, &r->grid, r->body))
        return false;
    if (!sm_seg_thresholds_compute(error, &r->grid, r->body, &r->thr))
        return false;
    seg->soft_tissue_hu = r->thr.soft;
    seg->bone_low_hu = r->thr.lo;
    seg->bone_high_hu = r->thr.hi;
    sm_strlist_add(&seg->notes,
                   "thresholds from the scan: soft tissue %.0f HU (sigma %.0f), bone grow %.0f "
                   "HU, bone seed %.0f HU%s", r->thr.soft, r->thr.soft_sigma, r->thr.lo, r->thr.hi,
                   r->thr.enhanced ? " (soft-tissue mode above 80 HU: contrast-enhanced "
                                     "parenchyma; the canal search takes the lumen below "
                                     "soft tissue + 3.5 sigma)" : "");
    if (!sm_seg_bone_mask(error, &r->grid, r->body, &r->thr, r->bone, r->filled))
        return false;
    r->t[2] = now_s();
    if (!sm_seg_canal_track(error, &r->grid, r->bone, r->body, &r->thr, &r->frame, &seg->notes))
        return false;
    sm_seg_column_body_axis(&r->grid, r->filled, &r->frame);
    r->t[3] = now_s();
    return true;
}

/* True when p lies in the slab of a disc (its half thickness + margin) inside the body
 * footprint of the slice frame sl. */
/* Trilinear value of a working-grid mask at LPS p (0 beyond half a voxel outside). */
static double grid_mask_at(const SegGrid *grid, const uint8_t *mask, const double p[3])
{
    const double g = grid->g;
    double x = (p[0] - grid->origin[0]) / g, y = (p[1] - grid->origin[1]) / g,
           z = (p[2] - grid->origin[2]) / g;
    const double gx = (double)grid->dims[0] - 1, gy = (double)grid->dims[1] - 1,
                 gz = (double)grid->dims[2] - 1;
    if (x < -0.5 || y < -0.5 || z < -0.5 || x > gx + 0.5 || y > gy + 0.5 || z > gz + 0.5)
        return 0;
    x = x < 0 ? 0 : x > gx ? gx : x;
    y = y < 0 ? 0 : y > gy ? gy : y;
    z = z < 0 ? 0 : z > gz ? gz : z;
    size_t i0 = (size_t)x, j0 = (size_t)y, k0 = (size_t)z;
    double fx = x - (double)i0, fy = y - (double)j0, fz = z - (double)k0;
    size_t i1 = i0 + 1 < grid->dims[0] ? i0 + 1 : i0;
    size_t j1 = j0 + 1 < grid->dims[1] ? j0 + 1 : j0;
    size_t k1 = k0 + 1 < grid->dims[2] ? k0 + 1 : k0;
    double m = 0;
    for (int c = 0; c < 8; c++) {
        size_t q = seg_idx(grid->dims, (c & 1) ? i1 : i0, ((c >> 1) & 1) ? j1 : j0,
                           ((c >> 2) & 1) ? k1 : k0);
        if (mask[q])
            m += ((c & 1) ? fx : 1 - fx) * ((c & 2) ? fy : 1 - fy) * ((c & 4) ? fz : 1 - fz);
    }
    return m;
}

/* Marrow under a thin cortex: from CT voxel (i, j, k) at p, along the CT axis on which the
 * working-grid interior vin fades fastest (outward), a voxel >= bone_lo (the cortex) within
 * CORTEX_WALK_MM. A voxel outside the cortex finds soft tissue that way. */
#define CORTEX_WALK_MM 3.0
static bool cortex_outward(const SegGrid *grid, const uint8_t *vin, const int16_t *hu,
                           const size_t dims[3], const double A[3][4], size_t i, size_t j,
                           size_t k, const double p[3], double bone_lo)
{
    int best_a = -1, best_sgn = 0;
    double best = 2.0;
    for (int a = 0; a < 3; a++)
        for (int sg = -1; sg <= 1; sg += 2) {
            double q[3] = {p[0] + sg * A[0][a], p[1] + sg * A[1][a], p[2] + sg * A[2][a]};
            double mq = grid_mask_at(grid, vin, q);
            if (mq < best) {
                best = mq;
                best_a = a;
                best_sgn = sg;
            }
        }
    if (best_a < 0)
        return false;
    double sp = sqrt(A[0][best_a] * A[0][best_a] + A[1][best_a] * A[1][best_a] +
                     A[2][best_a] * A[2][best_a]);
    long n = sp > 0 ? (long)(CORTEX_WALK_MM / sp) : 0;
    if (n < 1)
        n = 1;
    long idx[3] = {(long)i, (long)j, (long)k};
    for (long t = 1; t <= n; t++) {
        idx[best_a] += best_sgn;
        if (idx[best_a] < 0 || idx[best_a] >= (long)dims[best_a])
            return false;
        if (hu[(size_t)idx[0] + dims[0] * ((size_t)idx[1] + dims[1] * (size_t)idx[2])] >= bone_lo)
            return true;
    }
    return false;
}

static bool in_disc_space(const SegDisc *discs, size_t n_discs, const SegSlice *sl,
                          const double p[3], double margin_mm, const SegDisc **hit,
                          double *h_out)
{
    for (size_t d = 0; d < n_discs; d++) {
        const SegDisc *q = &discs[d];
        double w[3] = {p[0] - q->p[0], p[1] - q->p[1], p[2] - q->p[2]};
        double h = q->n[0] * w[0] + q->n[1] * w[1] + q->n[2] * w[2];
        if (fabs(h) > q->half_thick + margin_mm)
            continue;
        double ix = w[0] - h * q->n[0], iy = w[1] - h * q->n[1];
        double ax = ix / (sl->half_width + 2.0), ay = iy / (0.5 * sl->depth + 2.0);
        if (hit)
            *hit = q;
        if (h_out)
            *h_out = h;
        return ax * ax + ay * ay <= 1.0;
    }
    return false;
}

/* HU of the first CT voxel other than (i, j, k) from p along sg * n (within 4 mm; NAN:
 * none, or outside the volume). */
static double ct_next_along(const SmVolume *ct, const double inv[4][4], const double p[3],
                            const double n[3], double sg, size_t i, size_t j, size_t k)
{
    for (double t = 0.25; t <= 4.0; t += 0.25) {
        const double x[3] = {p[0] + sg * t * n[0], p[1] + sg * t * n[1], p[2] + sg * t * n[2]};
        double ijk[3];
        sm_mat4_apply(inv, x, ijk);
        long a = lround(ijk[0]), b = lround(ijk[1]), c = lround(ijk[2]);
        if (a == (long)i && b == (long)j && c == (long)k)
            continue;
        if (a < 0 || b < 0 || c < 0 || a >= (long)ct->dims[0] || b >= (long)ct->dims[1] ||
            c >= (long)ct->dims[2])
            return NAN;
        const int16_t *hu = ct->data;
        return hu[(size_t)a + ct->dims[0] * ((size_t)b + ct->dims[1] * (size_t)c)];
    }
    return NAN;
}

/* The end-plate level of CT voxel (i, j, k) at p (value hv) in the slab of disc q, h mm
 * from its mid-plane along the normal: the half-way level between the disc and that side's
 * end plate, both measured on this CT (discs.c). A voxel centred on the plate's surface
 * reads about that level whatever the slice thickness, so one below it is centred on the
 * disc side -- judged only for the body's last voxel before the disc (the next voxel towards
 * the mid-plane is disc, below bone_lo) that holds the plate's partial volume, not its
 * peak: the next voxel away from the disc reads more (the rest of the plate). Marrow
 * behind the plate, or a last voxel with no brighter plate behind it (the plate unresolved
 * or within that voxel), keeps the grow threshold. 0: no level. */
static double end_plate_level(const SmVolume *ct, const double inv[4][4], const SegDisc *q,
                              const double p[3], double h, size_t i, size_t j, size_t k,
                              double hv, double bone_lo)
{
    if (!q->plates_hu)
        return 0;
    const double sg = h > 0 ? -1.0 : 1.0; /* towards the mid-plane */
    double toward = ct_next_along(ct, inv, p, q->n, sg, i, j, k);
    if (!(toward < bone_lo))
        return 0;
    double away = ct_next_along(ct, inv, p, q->n, -sg, i, j, k);
    if (!(away > hv))
        return 0;
    return 0.5 * (q->disc_hu + q->plate_hu[h > 0]);
}

#define CERVICAL_MAX_HALF_WIDTH_MM 15.0 /* as C2_MAX_HALF_WIDTH_MM (cervical.c) */
#define DENS_TOP_MM 25.0 /* frame extension above the track end when the top vertebra is C2 */
#define BOTTOM_EXT_MM 40.0 /* frame extension below the track's end (before the plane cut) */
#define BOTTOM_BODY_GAP_MM 2.0 /* body back in front of the canal front at the bottom end */

/* Frame slice at LPS z, extended by the nearest end within 10 mm of the tracked range
 * (top_mm above its top). lean (NULL: none, else LEAN_N values): the body axis's patient x
 * and y change per mm of z beyond the top end ([0], [1]) and the bottom end ([2], [3]); the
 * end slice is moved along it (a tilted dens or end vertebra leaves the end slice's centres
 * behind). Above the top, [4] = n working slices k1 + 1 .. k1 + n whose centre offsets from
 * the top slice's body centre were tracked on the dens (x, y pairs from [5]; dens_track),
 * interpolated in z and continued along the lean beyond them. */
#define LEAN_TRACK_MAX 64
/* [LEAN_ANCHOR] (NAN: none) = LPS z of the top disc's centre, [+1], [+2] = the canal centre
 * there: above that z the canal of the top vertebra lies on the line from it along the lean
 * (the top disc's normal, the top vertebra's own axis), never behind it. Set only where the
 * tracked canal's top slice lies more than TOP_CANAL_BEHIND_MM behind that line: at the
 * field's top the track can bend backward out of a strongly tilted top vertebra's open or
 * cut ring (seed 16180 case 5, T1 tilted 37 deg: the track's top 7.3 mm behind the line,
 * 8.5 mm behind the truth canal; seed 55557 case 5: 5.0 mm). Real CT (T12 at the top,
 * leaning back) and the T4-T12 geometry case: the track's top 3.8 and 4.2 mm in front of
 * it, no line. A slice whose canal lies behind the line is moved forward onto it (its body
 * with it); one in front of it stays (a kyphosis can tilt the top body further than its
 * disc's normal says: T4-T12's T4, truth axis 0.16 mm/mm, disc normal 0.04). */
#define TOP_CANAL_BEHIND_MM 2.0
#define LEAN_ANCHOR (5 + 2 * LEAN_TRACK_MAX)
#define LEAN_N (LEAN_ANCHOR + 3)
static bool frame_at_ext_top0(const SegFrame *frame, const SegGrid *grid, double z, double top_mm,
                              double bot_mm, const double *lean, SegSlice *sl);
static bool frame_at_ext_top(const SegFrame *frame, const SegGrid *grid, double z, double top_mm,
                             double bot_mm, const double *lean, SegSlice *sl)
{
    if (!frame_at_ext_top0(frame, grid, z, top_mm, bot_mm, lean, sl))
        return false;
    if (lean && !isnan(lean[LEAN_ANCHOR]) && z > lean[LEAN_ANCHOR]) {
        double f = z - lean[LEAN_ANCHOR];
        double ox = lean[LEAN_ANCHOR + 1] + f * lean[0] - sl->cx;
        double oy = lean[LEAN_ANCHOR + 2] + f * lean[1] - sl->cy;
        if (oy < 0) { /* the slice's canal lies behind the line: moved onto it */
            sl->cx += ox;
            sl->bx += ox;
            sl->cy += oy;
            sl->by += oy;
        }
    }
    return true;
}
static bool frame_at_ext_top0(const SegFrame *frame, const SegGrid *grid, double z, double top_mm,
                              double bot_mm, const double *lean, SegSlice *sl)
{
    if (sm_seg_frame_at(frame, grid, z, sl))
        return true;
    double z0 = grid->origin[2] + grid->g * (double)frame->k0;
    double z1 = grid->origin[2] + grid->g * (double)frame->k1;
    if (z < z0 - bot_mm || z > z1 + top_mm)
        return false;
    double ze = z < z0 ? z0 : z1;
    if (!sm_seg_frame_at(frame, grid, ze, sl))
        return false;
    if (lean) {
        double ox, oy;
        size_t n = z > z1 ? (size_t)lean[4] : 0;
        if (n > 0) {
            double f = (z - z1) / grid->g;
            size_t j = (size_t)f;
            if (j >= n) {
                ox = lean[5 + 2 * (n - 1)] + (z - z1 - grid->g * (double)n) * lean[0];
                oy = lean[6 + 2 * (n - 1)] + (z - z1 - grid->g * (double)n) * lean[1];
            } else {
                /* offsets at j and j + 1 (0: the top slice itself) */
                double xa = j ? lean[5 + 2 * (j - 1)] : 0, ya = j ? lean[6 + 2 * (j - 1)] : 0;
                double w = f - (double)j;
                ox = xa + w * (lean[5 + 2 * j] - xa);
                oy = ya + w * (lean[6 + 2 * j] - ya);
            }
        } else {
            const double *l = z < z0 ? lean + 2 : lean;
            ox = (z - ze) * l[0];
            oy = (z - ze) * l[1];
        }
        sl->cx += ox;
        sl->bx += ox;
        sl->cy += oy;
        sl->by += oy;
    }
    /* below the track: the body's back wall is the canal's front. The end slice can cut a
     * tilted disc, its filled-bone run in front of the canal then starting at the bone in
     * front of the disc (the vertebra above's lip), not at the end vertebra's back wall */
    if (z < z0 && sl->by + 0.5 * sl->depth < sl->cy - sl->ry_ant - BOTTOM_BODY_GAP_MM)
        sl->by = sl->cy - sl->ry_ant - 0.5 * sl->depth;
    return true;
}

static bool frame_at_ext(const SegFrame *frame, const SegGrid *grid, double z, SegSlice *sl)
{
    return frame_at_ext_top(frame, grid, z, 10.0, 10.0, NULL, sl);
}

/* lean[4] for frame_at_ext_top: the end vertebra's own axis, the normal of its disc plane
 * nearest that end of the track (at the bottom, with two or more discs, the chord from the
 * lowest disc's centre to the next one's -- the axis of the vertebra above the end one: a
 * single disc normal is noisy, C3-C6 phantom C5/C6 normal 0.21 mm/mm, C5 chord 0.29, C6
 * 0.52) (an end plate is normal to its body's axis; the tracked canal bends at the
 * track's ends, where the ring opens or the field cuts it, and the axis tangent there
 * can lean the other way: C2-T1 phantom, dens leaning 0.39 mm/mm back, tangent 0.40 mm/mm
 * forward); the axis tangent at the end without a disc. None where the
 * axis is more than 60 degrees from the scanner axis. */
static void frame_lean(const SegGrid *grid, const SegFrame *frame, const SegDisc *discs,
                       size_t n_discs, double lean[4])
{
    for (int e = 0; e < 2; e++) {
        double p[3], t[3];
        if (e == 1 && n_discs >= 2) {
            for (int a = 0; a < 3; a++)
                t[a] = discs[1].p[a] - discs[0].p[a];
        } else if (n_discs > 0) {
            const double *n = discs[e == 0 ? n_discs - 1 : 0].n;
            t[0] = n[0];
            t[1] = n[1];
            t[2] = n[2];
        } else {
            sm_seg_axis_at(grid, frame, e == 0 ? frame->s[frame->k1].arc : 0.0, p, t);
        }
        bool ok = t[2] >= 0.5;
        lean[2 * e] = ok ? t[0] / t[2] : 0;
        lean[2 * e + 1] = ok ? t[1] / t[2] : 0;
    }
}

/* Frame slice at LPS z for the per-segment body measures (rib heads, a rib-bearing body's
 * own width): on the tracked range, or below its caudal end down to the end of the
 * vertebral bone measured there (r->ext_lo, along the end vertebra's axis), as native_pass
 * extends it (the end slice moved along the lean). At the field's bottom the track can stop
 * just below the last disc (the ring cut or open there) while the end vertebra's body goes
 * on below it: C3-T1 sweep draw 42424/28, T1's body 14-16 mm below the track's end, its
 * segment 3 mm tall on the track. */
static bool frame_at_body_below(const SegRun *r, double z, SegSlice *sl, bool *below)
{
    if (below)
        *below = false;
    if (sm_seg_frame_at(&r->frame, &r->grid, z, sl))
        return true;
    const double z0 = r->grid.origin[2] + r->grid.g * (double)r->frame.k0;
    const double zb = r->lo_p[2] - r->ext_lo * r->lo_n[2];
    if (!(r->ext_lo > 0) || z >= z0 || z < zb)
        return false;
    double lean[LEAN_N];
    frame_lean(&r->grid, &r->frame, r->discs, r->n_discs, lean);
    lean[4] = 0;
    lean[LEAN_ANCHOR] = NAN;
    if (below)
        *below = true;
    return frame_at_ext_top(&r->frame, &r->grid, z, 0.0, z0 - zb + 1.0, lean, sl);
}

static bool frame_at_body(const SegRun *r, double z, SegSlice *sl)
{
    return frame_at_body_below(r, z, sl, NULL);
}

/* Axis z range of segment s (its disc planes' arc positions), for the caudal end segment
 * down to the end of the vertebral bone below the track (frame_at_body). */
static void seg_z_range(const SegRun *r, size_t s, double *zl, double *zh)
{
    double ph[3], th[3];
    sm_seg_axis_at(&r->grid, &r->frame, r->verts[s].s_lo, ph, th);
    *zl = ph[2];
    sm_seg_axis_at(&r->grid, &r->frame, r->verts[s].s_hi, ph, th);
    *zh = ph[2];
    if (s == 0 && r->ext_lo > 0) {
        double zb = r->lo_p[2] - r->ext_lo * r->lo_n[2];
        if (*zl <= *zh && zb < *zl)
            *zl = zb;
        else if (*zl > *zh && zb > *zl) /* not expected: z decreasing along the arc */
            *zl = zb;
    }
}

/* The dens above the track's top (a C2 on top): on each working slice up to top_mm above
 * it, the centroid of the bone (>= the soft-tissue/bone edge) within DENS_TRACK_R_MM of the
 * position predicted from the slice below along the lean (3 mean-shift steps); it stops
 * where less than DENS_TRACK_MIN_MM2 of bone is left (the dens's tip). The dens is a rod
 * about 10 mm across: C1's anterior arch (behind a joint of 1-3 mm) and lateral masses
 * lie beyond the window. The disc normal below C2 bisects C2's and C3's axes and is noisy
 * (+-0.1 per mm): a lordotic C2 leans further (a C2-T1 phantom: C2 axis 0.27 mm/mm, C2/C3
 * normal 0.10), and 15-25 mm up the dens leaves a straight extrapolation. */
#define DENS_TRACK_R_MM 5.0
#define DENS_TRACK_MIN_MM2 12.0
static void dens_track(const SegGrid *grid, const SegFrame *frame, double top_mm, double edge,
                       double *lean)
{
    lean[4] = 0;
    const double g = grid->g;
    double z1 = grid->origin[2] + g * (double)frame->k1;
    SegSlice s1;
    if (!sm_seg_frame_at(frame, grid, z1, &s1))
        return;
    double cx = s1.bx, cy = s1.by;
    const long rv = (long)ceil(DENS_TRACK_R_MM / g);
    size_t n = 0;
    for (size_t j = 1; j <= LEAN_TRACK_MAX && frame->k1 + j < grid->dims[2] &&
                       g * (double)j <= top_mm;
         j++) {
        size_t k = frame->k1 + j;
        double px = cx + g * lean[0], py = cy + g * lean[1];
        bool found = false;
        for (int it = 0; it < 3; it++) {
            long ic = lround((px - grid->origin[0]) / g), jc = lround((py - grid->origin[1]) / g);
            double sx = 0, sy = 0;
            size_t cnt = 0;
            for (long jj = jc - rv; jj <= jc + rv; jj++)
                for (long ii = ic - rv; ii <= ic + rv; ii++) {
                    if (ii < 0 || jj < 0 || ii >= (long)grid->dims[0] || jj >= (long)grid->dims[1])
                        continue;
                    double x = grid->origin[0] + g * (double)ii, y = grid->origin[1] + g * (double)jj;
                    if ((x - px) * (x - px) + (y - py) * (y - py) > DENS_TRACK_R_MM * DENS_TRACK_R_MM)
                        continue;
                    int16_t h = grid->hu[seg_idx(grid->dims, (size_t)ii, (size_t)jj, k)];
                    if (h == SEG_OUTSIDE || h < edge)
                        continue;
                    sx += x;
                    sy += y;
                    cnt++;
                }
            if ((double)cnt * g * g < DENS_TRACK_MIN_MM2)
                break;
            px = sx / (double)cnt;
            py = sy / (double)cnt;
            found = true;
        }
        if (!found)
            break;
        cx = px;
        cy = py;
        lean[5 + 2 * n] = cx - s1.bx;
        lean[6 + 2 * n] = cy - s1.by;
        n++;
    }
    lean[4] = (double)n;
}

/* Limits a CT row (j, k) to the columns that can hold spine (the box around the canal
 * used by native_pass), when the row lies in one axial plane; false when none can. */
/* A rib-free vertebra's body frame at mid-height: its slice with the median body width and
 * depth over the middle half of the vertebra (the body outline on any of its slices is at
 * least that), and the body-axis point and tangent there. */
typedef struct MidFrame {
    bool ok;
    SegSlice sl;
    double c[3], t[3];
} MidFrame;

static bool row_range(const SegGrid *grid, const SegFrame *frame, double top_mm,
                      double bot_mm, const double *lean, const double A[3][4], size_t nx, size_t j, size_t k, size_t *i_lo,
                      size_t *i_hi)
{
    double p0[3];
    for (int a = 0; a < 3; a++)
        p0[a] = A[a][1] * (double)j + A[a][2] * (double)k + A[a][3];
    if (fabs(A[2][0]) * (double)nx > 0.25)
        return true; /* oblique row: tested voxel by voxel */
    SegSlice sl;
    if (!frame_at_ext_top(frame, grid, p0[2], top_mm, bot_mm, lean, &sl))
        return false;
    double lo = 0, hi = (double)nx - 1;
    const double bounds[2][2] = {{-64.0, 64.0},
                                 {-(sl.ry_ant + sl.depth + 16.0), sl.ry_post + 74.0}};
    const double c0[2] = {p0[0] - sl.cx, p0[1] - sl.cy}, c1[2] = {A[0][0], A[1][0]};
    for (int q = 0; q < 2; q++) {
        /* margin of 2 mm for the frame's change with z inside the row */
        double b0 = bounds[q][0] - 2.0, b1 = bounds[q][1] + 2.0;
        if (fabs(c1[q]) < 1e-9) {
            if (c0[q] < b0 || c0[q] > b1)
                return false;
            continue;
        }
        double t0 = (b0 - c0[q]) / c1[q], t1 = (b1 - c0[q]) / c1[q];
        if (t0 > t1) {
            double t = t0;
            t0 = t1;
            t1 = t;
        }
        if (t0 > lo) lo = t0;
        if (t1 < hi) hi = t1;
    }
    if (lo > hi)
        return false;
    *i_lo = (size_t)floor(lo);
    *i_hi = (size_t)ceil(hi) + 1;
    if (*i_hi > nx)
        *i_hi = nx;
    return true;
}

/* The S1 body: sacral bone below the L5/S1 disc's mid-plane (the end plate's own surface is
 * the top) down to the S1/S2 junction, inside an elliptical footprint of L5's body size.
 * The junction is the inferior end plate where it shows in the CT, else one L5-body height
 * below the disc's lower surface. The footprint's centre is measured, not assumed at the
 * disc centre (on the tracked axis) along the disc normal: laterally L5's lower half,
 * continued along the disc normal, and the tracked canal where it was detected at S1's
 * mid-depth; AP by a fit to the sacral bone in the upper and the lower half of the body (the
 * S1 body sits behind the disc centre with the sacral slope). The sacrum keeps one label (VerSe 26);
 * only its S1 part is sub-region "body", and the record's body centroid is the S1 body's. */
typedef struct S1Body {
    bool valid;
    double p[3], n[3];        /* L5/S1 disc centre and normal (superior) */
    double u[3], v[3];        /* in-plane lateral and AP (posterior) unit vectors */
    double top, height;       /* mm below the disc plane: the body's top, and its height */
    double a, b;              /* lateral and AP semi-axes, mm */
    double tm, xc, yc;        /* footprint centre (u, v) at depth tm (negative) */
    double dx, dy;            /* its change per mm of t */
    double ax[3], ua[3], va[3]; /* the body's own axis (the centre line's direction, up)
                                 * and lateral and AP unit vectors normal to it */
    bool lateral_l5;          /* lateral centre from L5's lower half (else the disc centre) */
    bool lateral_canal;       /* ... and halfway to the tracked canal at mid-depth */
    double canal_dx;          /* that patient-x shift, mm */
    bool bottom_plate;        /* height from the inferior end plate seen in the CT */
    double junction;          /* its half thickness (the dense run), mm */
} S1Body;

/* Centre of the S1 footprint at depth t (LPS). */
static void s1_centre_at(const S1Body *sb, double t, double c[3])
{
    double xc = sb->xc + (t - sb->tm) * sb->dx, yc = sb->yc + (t - sb->tm) * sb->dy;
    for (int a = 0; a < 3; a++)
        c[a] = sb->p[a] + t * sb->n[a] + xc * sb->u[a] + yc * sb->v[a];
}

/* The body's own axis (normal to its end plates): in the sagittal plane the fitted centre
 * line's (the L5/S1 disc is wedged: its normal is not S1's axis); laterally the disc
 * normal's (the footprint's centre keeps the disc centre's patient x, but its end plates
 * tilt with the disc in a scoliosis), and the in-plane vectors normal to it. */
static void s1_axis_set(S1Body *sb)
{
    double a[3], nn = 0;
    for (int q = 0; q < 3; q++) {
        a[q] = sb->n[q] + sb->dy * sb->v[q];
        nn += a[q] * a[q];
    }
    nn = sqrt(nn);
    double ua = 0;
    for (int q = 0; q < 3; q++) {
        sb->ax[q] = a[q] / nn;
        ua += sb->u[q] * sb->ax[q];
    }
    double un = 0;
    for (int q = 0; q < 3; q++) {
        sb->ua[q] = sb->u[q] - ua * sb->ax[q];
        un += sb->ua[q] * sb->ua[q];
    }
    un = sqrt(un);
    for (int q = 0; q < 3; q++)
        sb->ua[q] /= un;
    sb->va[0] = sb->ax[1] * sb->ua[2] - sb->ax[2] * sb->ua[1];
    sb->va[1] = sb->ax[2] * sb->ua[0] - sb->ax[0] * sb->ua[2];
    sb->va[2] = sb->ax[0] * sb->ua[1] - sb->ax[1] * sb->ua[0];
}

/* Working-grid voxel (i, j, k) in the S1 footprint's frame: depth t along the disc normal
 * (negative below the disc), lateral offset qx from the footprint's centre line at that
 * depth, AP offset qy from the disc centre, mm. */
static void s1_local(const SegGrid *gr, const S1Body *sb, long i, long j, long k, double *t,
                     double *qx, double *qy)
{
    const double g = gr->g;
    double w[3] = {gr->origin[0] + g * (double)i - sb->p[0],
                   gr->origin[1] + g * (double)j - sb->p[1],
                   gr->origin[2] + g * (double)k - sb->p[2]};
    *t = sb->n[0] * w[0] + sb->n[1] * w[1] + sb->n[2] * w[2];
    *qx = sb->u[0] * w[0] + sb->u[1] * w[1] + sb->u[2] * w[2] - (sb->xc + (*t - sb->tm) * sb->dx);
    *qy = sb->v[0] * w[0] + sb->v[1] * w[1] + sb->v[2] * w[2];
}

/* Centre of a body in the slab t in [t1, t0] (t0 > t1) of the S1 frame: mean shift of the
 * footprint ellipse over the working-grid vertebra mask, in AP (*yc, from the disc centre)
 * and, with fit_x, laterally too (*xo, from the footprint's centre line; else 0). Below the
 * disc (t < 0) the S1 body: solid bone in front of the sacral canal, with soft tissue in
 * front of it (laterally the alae, which need not be symmetric: not fitted there). Above it
 * (t > 0) L5's lower half, an isolated body. False with too little bone. */
static bool s1_slab_centre(const SegRun *r, const S1Body *sb, double t0, double t1, bool fit_x,
                           double *xo, double *yc)
{
    const SegGrid *gr = &r->grid;
    const double g = gr->g;
    /* bounding box of the slab (the footprint with margins) */
    double lo[3], hi[3];
    for (int a = 0; a < 3; a++) {
        lo[a] = INFINITY;
        hi[a] = -INFINITY;
    }
    for (int c = 0; c < 8; c++) {
        double t = (c & 1) ? t0 : t1;
        double x = sb->xc + (t - sb->tm) * sb->dx +
                   ((c & 2) ? 1.0 : -1.0) * ((fit_x ? 1.5 : 1.0) * sb->a + 2.0);
        double y = (c & 4) ? 2.0 * sb->b + 10.0 : -(2.0 * sb->b + 10.0);
        for (int a = 0; a < 3; a++) {
            double q = sb->p[a] + t * sb->n[a] + x * sb->u[a] + y * sb->v[a];
            if (q < lo[a]) lo[a] = q;
            if (q > hi[a]) hi[a] = q;
        }
    }
    long i0[3], i1[3], b0[3], b1[3];
    for (int a = 0; a < 3; a++) {
        i0[a] = b0[a] = (long)floor((lo[a] - gr->origin[a]) / g);
        i1[a] = b1[a] = (long)ceil((hi[a] - gr->origin[a]) / g);
        if (i0[a] < 0) i0[a] = 0;
        if (i1[a] > (long)gr->dims[a] - 1) i1[a] = (long)gr->dims[a] - 1;
        if (i0[a] > i1[a])
            return false;
    }
    double x = 0, y = 0;
    bool ok = false;
    for (int it = 0; it < 12; it++) {
        double sx = 0, sy = 0;
        size_t ny = 0;
        for (long k = i0[2]; k <= i1[2]; k++)
            for (long j = i0[1]; j <= i1[1]; j++)
                for (long i = i0[0]; i <= i1[0]; i++) {
                    if (!r->vmask[seg_idx(gr->dims, (size_t)i, (size_t)j, (size_t)k)])
                        continue;
                    double t, qx, qy;
                    s1_local(gr, sb, i, j, k, &t, &qx, &qy);
                    if (t > t0 || t < t1)
                        continue;
                    double ex = (qx - x) / sb->a, ey = (qy - y) / sb->b;
                    if (ex * ex + ey * ey <= 1.0) {
                        sx += qx;
                        sy += qy;
                        ny++;
                    }
                }
        /* at least a sixth of the window's volume in bone */
        double need = 0.16 * M_PI * sb->a * sb->b * (t0 - t1) / (g * g * g);
        if ((double)ny < need)
            break;
        double x_new = fit_x ? sx / (double)ny : 0, y_new = sy / (double)ny;
        /* the fit corrects the disc centre; it does not wander off to other bone */
        if (x_new > 0.5 * sb->a) x_new = 0.5 * sb->a;
        if (x_new < -0.5 * sb->a) x_new = -0.5 * sb->a;
        if (y_new > 0.5 * sb->b) y_new = 0.5 * sb->b;
        if (y_new < -0.5 * sb->b) y_new = -0.5 * sb->b;
        bool done = fabs(x_new - x) < 0.05 && fabs(y_new - y) < 0.05;
        x = x_new;
        y = y_new;
        ok = true;
        if (done)
            break;
    }
    if (ok && fit_x) {
        /* a lateral fit needs the whole window in the field of view (a body cut by it has
         * its centre moved off) */
        size_t n_in = 0, n_out = 0;
        for (long k = b0[2]; k <= b1[2]; k++)
            for (long j = b0[1]; j <= b1[1]; j++)
                for (long i = b0[0]; i <= b1[0]; i++) {
                    double t, qx, qy;
                    s1_local(gr, sb, i, j, k, &t, &qx, &qy);
                    if (t > t0 || t < t1)
                        continue;
                    double ex = (qx - x) / sb->a, ey = (qy - y) / sb->b;
                    if (ex * ex + ey * ey > 1.0)
                        continue;
                    bool in = i >= 0 && j >= 0 && k >= 0 && i < (long)gr->dims[0] &&
                              j < (long)gr->dims[1] && k < (long)gr->dims[2] &&
                              gr->hu[seg_idx(gr->dims, (size_t)i, (size_t)j, (size_t)k)] !=
                                  SEG_OUTSIDE;
                    if (in) n_in++;
                    else n_out++;
                }
        if (n_out > 0.01 * (double)(n_in + n_out))
            ok = false;
    }
    *xo = x;
    *yc = y;
    return ok;
}

/* CT value at LPS p, trilinear (a profile along a tilted axis stays smooth on thick
 * slices); -1024 outside. */
static double ct_at(const SmVolume *ct, const double p[3])
{
    double ijk[3];
    if (!sm_volume_lps_to_index(ct, p, ijk))
        return -1024;
    const int16_t *hu = ct->data;
    double f[3];
    long i0[3];
    for (int a = 0; a < 3; a++) {
        double m = (double)ct->dims[a] - 1;
        if (ijk[a] < -0.5 || ijk[a] > m + 0.5)
            return -1024;
        double x = ijk[a] < 0 ? 0 : ijk[a] > m ? m : ijk[a];
        i0[a] = (long)floor(x);
        if (i0[a] > (long)m - 1) i0[a] = (long)m - 1 < 0 ? 0 : (long)m - 1;
        f[a] = x - (double)i0[a];
    }
    double v = 0;
    for (int c = 0; c < 8; c++) {
        size_t q[3];
        double w = 1;
        for (int a = 0; a < 3; a++) {
            int up = (c >> a) & 1;
            q[a] = (size_t)i0[a] + (size_t)up;
            if (q[a] >= ct->dims[a]) q[a] = ct->dims[a] - 1;
            w *= up ? f[a] : 1 - f[a];
        }
        v += w * hu[q[0] + ct->dims[0] * (q[1] + ct->dims[1] * q[2])];
    }
    return v;
}

/* Mean CT value of the footprint's core (the ellipse at 0.6 of its size) at depth t. */
static double s1_core_mean(const SegRun *r, const S1Body *sb, double t)
{
    double c[3];
    s1_centre_at(sb, t, c);
    double sum = 0;
    int n = 0;
    const double ra = 0.6 * sb->a, rb = 0.6 * sb->b;
    for (double x = -ra; x <= ra; x += 1.0)
        for (double y = -rb; y <= rb; y += 1.0) {
            if (x * x / (ra * ra) + y * y / (rb * rb) > 1.0)
                continue;
            /* on the plane normal to the body's axis (an end plate's plane) */
            double q[3];
            for (int a = 0; a < 3; a++)
                q[a] = c[a] + x * sb->ua[a] + y * sb->va[a];
            sum += ct_at(r->ct, q);
            n++;
        }
    return n ? sum / n : NAN;
}

/* The S1 body's inferior end plate, where it shows: down the footprint's core, a dense
 * plate (a local maximum of the core's mean) near the L5-based height, standing out of the
 * marrow by at least half the superior end plate's contrast. It then sets the height (the
 * sacrum's S1/S2 junction; an L5-based height overshoots it by the discs' and the S1 body's
 * difference). Not seen (a fused, fatty junction), the L5-based height holds. */
static void s1_bottom_find(const SegRun *r, S1Body *sb)
{
    enum { NP = 96 };
    double prof[NP];
    const double h = sb->height, t0 = -sb->top;
    int np = (int)(h + 6.0) + 1;
    if (np > NP) np = NP;
    for (int q = 0; q < np; q++)
        prof[q] = s1_core_mean(r, sb, t0 - (double)q);
    /* marrow: median over the body's middle; superior plate: the maximum near the top */
    double mid[NP];
    int nm = 0;
    for (int q = (int)(0.25 * h); q <= (int)(0.6 * h) && q < np; q++)
        mid[nm++] = prof[q];
    if (nm < 3)
        return;
    qsort(mid, (size_t)nm, sizeof mid[0], sm_cmp_double);
    double marrow = mid[nm / 2], top_plate = -INFINITY;
    for (int q = 0; q <= 6 && q < np; q++)
        if (prof[q] > top_plate) top_plate = prof[q];
    if (!(top_plate > marrow))
        return;
    int lo = (int)(0.75 * h), best = -1;
    double bv = -INFINITY;
    for (int q = lo; q < np; q++)
        if (prof[q] > bv) {
            bv = prof[q];
            best = q;
        }
    /* a plate, not the window's edge of a falling profile */
    if (best <= lo || best >= np - 1 || bv < marrow + 0.5 * (top_plate - marrow))
        return;
    /* the plate's middle: the excess-weighted centre of the run above the half level
     * around the maximum (a plate tilted against the disc plane spreads over some mm) */
    double half = marrow + 0.5 * (bv - marrow), sw = 0, swq = 0;
    int q0 = best, q1 = best;
    while (q0 - 1 > lo && prof[q0 - 1] >= half) q0--;
    while (q1 + 1 < np && prof[q1 + 1] >= half) q1++;
    for (int q = q0; q <= q1; q++) {
        sw += prof[q] - marrow;
        swq += (prof[q] - marrow) * (double)q;
    }
    sb->height = swq / sw;
    sb->junction = 0.5 * (double)(q1 - q0 + 1);
    sb->bottom_plate = true;
}

static void s1_body_prepare(const SegRun *r, double l5_hw, double l5_d, S1Body *sb)
{
    memset(sb, 0, sizeof *sb);
    long s1 = -1;
    for (size_t s = 0; s < r->n_verts; s++)
        if (r->verts[s].verse == SM_VERSE_SACRUM)
            s1 = (long)s; /* the topmost sacral segment */
    if (s1 < 0 || r->verts[s1].upper_disc < 0)
        return;
    const SegDisc *d = &r->discs[r->verts[s1].upper_disc];
    const SegVert *l5 = (size_t)s1 + 1 < r->n_verts ? &r->verts[s1 + 1] : NULL;
    SegSlice sl;
    if (!l5 || !frame_at_ext(&r->frame, &r->grid, d->p[2], &sl))
        return;
    /* S1's body is about as tall as L5's: L5's segment (the chord between its disc
     * centres; the arc along a lordotic axis is longer) less the two half discs */
    double h = l5->s_hi - l5->s_lo - d->half_thick;
    if (l5->upper_disc >= 0) {
        const SegDisc *du = &r->discs[l5->upper_disc];
        double w[3] = {du->p[0] - d->p[0], du->p[1] - d->p[1], du->p[2] - d->p[2]};
        h = sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]) - d->half_thick - du->half_thick;
    }
    if (h < 15.0) h = 15.0;
    if (h > 45.0) h = 45.0;
    memcpy(sb->p, d->p, sizeof sb->p);
    memcpy(sb->n, d->n, sizeof sb->n);
    double u[3] = {1 - d->n[0] * d->n[0], -d->n[0] * d->n[1], -d->n[0] * d->n[2]};
    double un = sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
    for (int q = 0; q < 3; q++)
        sb->u[q] = u[q] / un;
    sb->v[0] = d->n[1] * sb->u[2] - d->n[2] * sb->u[1];
    sb->v[1] = d->n[2] * sb->u[0] - d->n[0] * sb->u[2];
    sb->v[2] = d->n[0] * sb->u[1] - d->n[1] * sb->u[0];
    /* the L5-based height counts from the disc's lower surface */
    sb->top = d->half_thick;
    sb->height = h;
    /* the frame is unreliable at the end of the track (the promontory: too small on the
     * real CT, the alae on phantoms): the footprint is L5's body at mid-height (S1's upper
     * end plate faces L5's lower one across the disc) with 1.5 mm for its cortex and
     * partial volume; without it, the column's median body size with 3 mm */
    if (l5_hw > 0 && l5_d > 0) {
        sb->a = l5_hw + 1.5;
        sb->b = 0.5 * l5_d + 1.5;
    } else {
        sb->a = r->frame.body_halfw_med + 3.0;
        sb->b = 0.5 * r->frame.body_depth_med + 3.0;
    }
    /* lateral centre: L5's body in its lower half (above the disc), continued along the disc
     * normal. The disc centre lies on the tracked axis, which strays laterally near the
     * track's end (sweep draws 31337/3, 31337/23, 4242/6: 2.1-3.8 mm off the S1 body's x;
     * S1 centroid 2.2-3.4 mm off); S1's own bone is no measure (the alae join it and need not
     * be symmetric: an axially rotated sacrum has one ala against the body, the other
     * detached, and the ilia and the field of view follow). L5's lower half is an isolated
     * body of the footprint's size (its pedicles and transverse processes are higher, its
     * inferior facets behind it). S1's end plates tilt with the disc in a scoliosis, and so
     * does its centre line (phantom truth, sweep draw 4242/6: S1's axis tilts 0.18
     * laterally, the disc normal 0.19; the measured normal can be off: 0.09 against 0.19 on
     * 4242/7). Without enough bone there or with the window cut by the field of view: the
     * disc centre's patient x, kept down the body. */
    sb->tm = -(sb->top + 0.5 * h);
    double xl, yl;
    if (s1_slab_centre(r, sb, sb->top + 0.5 * h, sb->top, true, &xl, &yl)) {
        sb->dx = 0;
        sb->xc = xl;
        sb->lateral_l5 = true;
    } else {
        sb->dx = fabs(sb->u[0]) > 0.5 ? -sb->n[0] / sb->u[0] : 0;
        sb->xc = sb->tm * sb->dx;
    }
    /* AP centre: fitted in the upper and the lower half of the body, straight line between */
    const double tt = -sb->top, tb = -(sb->top + h), tmid = -(sb->top + 0.5 * h);
    double xa, xb, ya, yb;
    if (s1_slab_centre(r, sb, tt, tmid, false, &xa, &ya) &&
        s1_slab_centre(r, sb, tmid, tb, false, &xb, &yb)) {
        double tma = 0.5 * (tt + tmid), tmb = 0.5 * (tmid + tb);
        sb->yc = 0.5 * (ya + yb);
        sb->dy = (ya - yb) / (tma - tmb);
    }
    /* the tracked canal is a second, independent measure of the midline (the sacral canal
     * lies behind the S1 body's centre): where the canal was detected on the mid-depth
     * slice (not interpolated or run on past the track's end), the centre line moves
     * halfway to the canal's x there. Over the 71 sacral sweep cases of six seeds, the
     * L5-based centre's x at mid-depth was off the truth's by RMS 0.9 mm (at most 2.9), the
     * canal's (on any tracked slice) by 0.9 mm (at most 3.3), their mean by 0.7 mm (at
     * most 2.0). The canal's larger misses lay where it was not detected (sweep draw
     * 31337/27: S1 centroid 0.59 -> 1.69 mm with it; the 96 mm field 0.56 -> 1.13 mm). */
    if (sb->lateral_l5 && fabs(sb->u[0]) > 0.5) {
        double c[3];
        s1_centre_at(sb, sb->tm, c);
        long kc = lround((c[2] - r->grid.origin[2]) / r->grid.g);
        if (kc >= (long)r->frame.k0 && kc <= (long)r->frame.k1 && r->frame.s[kc].valid &&
            r->frame.s[kc].observed) {
            sb->canal_dx = 0.5 * (r->frame.s[kc].cx - c[0]);
            sb->lateral_canal = true;
            sb->xc += sb->canal_dx / sb->u[0];
        }
    }
    s1_axis_set(sb);
    s1_bottom_find(r, sb);
    sb->valid = true;
}

/* Height of p above the S1 body's bottom plane, mm. */
static double s1_above_bottom(const S1Body *sb, const double p[3])
{
    double cb[3];
    s1_centre_at(sb, -(sb->top + sb->height), cb);
    return (p[0] - cb[0]) * sb->ax[0] + (p[1] - cb[1]) * sb->ax[1] + (p[2] - cb[2]) * sb->ax[2];
}

static bool s1_body_contains(const S1Body *sb, const double p[3])
{
    double w[3] = {p[0] - sb->p[0], p[1] - sb->p[1], p[2] - sb->p[2]};
    double t = sb->n[0] * w[0] + sb->n[1] * w[1] + sb->n[2] * w[2];
    /* up to the disc's mid-plane: only sacral bone is classified, so the S1 end plate's
     * own surface is the top (the disc is wedged: its plane is not the end plate's) */
    if (t > 0.0)
        return false;
    /* the bottom: the plane normal to the body's axis through its centre line at the
     * body's height (the inferior end plate is normal to S1's axis, not the disc's) */
    if (s1_above_bottom(sb, p) < 0)
        return false;
    double xc = sb->xc + (t - sb->tm) * sb->dx, yc = sb->yc + (t - sb->tm) * sb->dy;
    double xr = sb->u[0] * w[0] + sb->u[1] * w[1] + sb->u[2] * w[2] - xc;
    double yv = sb->v[0] * w[0] + sb->v[1] * w[1] + sb->v[2] * w[2];
    double x = xr / sb->a, y = (yv - yc) / sb->b;
    return x * x + y * y <= 1.0;
}

/* Per-label accumulators merged after the parallel pass (integers: exact at any thread
 * count). */
typedef struct LabelAcc {
    uint64_t n, nb;
    uint64_t si, sj, sk;      /* index sums, whole vertebra */
    uint64_t bi, bj, bk;      /* index sums, body */
    uint8_t edge;
} LabelAcc;

/* A rib-bearing body's own half-width from the CT at the finest spacing: on each slice of
 * its middle half (z from zl to zh), along the body-centre row, walking in from beyond the
 * per-slice width, the first bone that the rib-head cut keeps (no costovertebral joint gap
 * between it and the body, sm_seg_rib_head_gap with walk limit lim) is the body's side;
 * the slice's value is the wider side. The working-grid width (2 mm, closed over 4 mm)
 * bridges the joints and holds the rib heads. Returns the lower quartile over the slices
 * (the rib heads that articulate high on the body, the first ribs on T1, leave its lower
 * slices clean; a lesion's notch on one slice does not count), NAN when under 3 slices. */
static double rib_body_halfwidth_ct(const SegRun *r, double zl, double zh, double lim)
{
    const SmVolume *ct = r->ct;
    double inv[4][4];
    double step = fmin(ct->spacing[0], fmin(ct->spacing[1], ct->spacing[2]));
    if (!(step > 0) || !(lim > 0) || !sm_mat4_affine_inverse(ct->affine, inv))
        return NAN;
    double zc = 0.5 * (zl + zh), hz = 0.25 * fabs(zh - zl);
    double wv[64];
    size_t nv = 0;
    for (double z = zc - hz; z <= zc + hz && nv < 64; z += 0.5 * r->grid.g) {
        SegSlice ms;
        bool below;
        if (!frame_at_body_below(r, z, &ms, &below) || !(ms.half_width > 0))
            continue;
        /* below the track the frame's body centre is the end slice's moved along the
         * axis above, which a body tilted further (T1 in a kyphosis) leaves: the rows a
         * quarter of the body depth behind and in front of it are tried in turn */
        for (int row = 0; row < (below ? 3 : 1); row++) {
            double y = ms.by + (row == 1 ? 0.25 : row == 2 ? -0.25 : 0.0) * ms.depth;
            double w = 0;
            bool ok = true;
            for (int side = -1; side <= 1 && ok; side += 2) {
                double d = ms.half_width + 6.0, found = NAN;
                for (; d > lim; d -= step) {
                    double p[3] = {ms.bx + side * d, y, z};
                    double v = sm_seg_ct_nearest(ct, inv, p[0], p[1], p[2]);
                    if (isnan(v))
                        break;
                    if (v >= r->thr.edge &&
                        !sm_seg_rib_head_gap(ct, inv, step, p, ms.bx, lim, r->thr.edge,
                                             r->thr.lo, false)) {
                        found = d;
                        break;
                    }
                }
                if (isnan(found))
                    ok = false;
                else if (found > w)
                    w = found;
            }
            if (ok) {
                wv[nv++] = w;
                break;
            }
        }
    }
    if (nv < 3)
        return NAN;
    qsort(wv, nv, sizeof wv[0], sm_cmp_double);
    return wv[nv / 4];
}

/* Rib heads beside a body the rib search did not count as rib-bearing (its ribs leave a
 * small field of view, or are cut by it): on each slice from zl to zh, on the body-centre
 * row and a row a quarter of the body depth behind it, walking in along patient x from
 * beyond the per-slice width, bone that a costovertebral joint gap separates from the body
 * (sm_seg_rib_head_gap with walk limit lim) before the body's own side is reached, its
 * joint gap RIB_JOINT_OUT_MM or more outside the body's own half-width `own` (NAN: none
 * counts). Counts the slices with such bone, per side (n[0] patient right, n[1] left). */
static void rib_heads_seen(const SegRun *r, double zl, double zh, double lim, double own,
                           int n[2])
{
    const SmVolume *ct = r->ct;
    double inv[4][4];
    double step = fmin(ct->spacing[0], fmin(ct->spacing[1], ct->spacing[2]));
    n[0] = n[1] = 0;
    if (!(step > 0) || !(lim > 0) || !sm_mat4_affine_inverse(ct->affine, inv))
        return;
    double z0 = fmin(zl, zh), z1 = fmax(zl, zh);
    for (double z = z0; z <= z1; z += 0.5 * r->grid.g) {
        SegSlice ms;
        if (!frame_at_body(r, z, &ms) || !(ms.half_width > 0))
            continue;
        for (int side = -1; side <= 1; side += 2) {
            bool seen = false;
            for (int row = 0; row < 2 && !seen; row++) {
                double y = ms.by + 0.25 * ms.depth * row;
                for (double d = ms.half_width + 6.0; d > lim; d -= step) {
                    double p[3] = {ms.bx + side * d, y, z};
                    double v = sm_seg_ct_nearest(ct, inv, p[0], p[1], p[2]);
                    if (isnan(v))
                        break;
                    if (v < r->thr.edge)
                        continue;
                    if (!sm_seg_rib_head_gap(ct, inv, step, p, ms.bx, lim, r->thr.edge,
                                             r->thr.lo, false))
                        break; /* the body's side */
                    /* the joint gap lies outside the body's own side (a gap inside it
                     * is marrow); e: the inner end of the bone before the gap */
                    double e = d;
                    while (e > lim) {
                        double w = sm_seg_ct_nearest(ct, inv, ms.bx + side * (e - step), y, z);
                        if (isnan(w) || w < r->thr.edge)
                            break;
                        e -= step;
                    }
                    seen = e >= own + RIB_JOINT_OUT_MM;
                    break;
                }
            }
            if (seen)
                n[side > 0]++;
        }
    }
}

/* Narrowest body half-width of segment s over the middle half of its height (frame
 * slices every half working voxel), NAN without one; its axis z range in *zl, *zh (the
 * caudal end segment's down to the bone below the track, seg_z_range). */
static double seg_mid_narrowest_halfwidth(const SegRun *r, size_t s, double *zl, double *zh)
{
    seg_z_range(r, s, zl, zh);
    double zc = 0.5 * (*zl + *zh), hz = 0.25 * fabs(*zh - *zl), narrow = NAN;
    for (double z = zc - hz; z <= zc + hz; z += 0.5 * r->grid.g) {
        SegSlice ms;
        if (frame_at_body(r, z, &ms) && ms.half_width > 0 &&
            (isnan(narrow) || ms.half_width < narrow))
            narrow = ms.half_width;
    }
    return narrow;
}

/* Walk limit of the rib-head cut for segment s (its narrowest mid-height half-width
 * `narrow`, canal half-width rx): half the narrowest half-width, or the canal's
 * half-width. The caudal end segment whose body goes on below the track takes the
 * smaller of its own and the next vertebra's narrowest half-width: below the track the
 * frame repeats its end slice, and the tracked slices show only the body's top, where the
 * first ribs' heads sit beside T1 (adjacent bodies differ in width by far less than half). */
static double rib_walk_limit(const SegRun *r, size_t s, double narrow, double rx)
{
    double w = narrow;
    if (s == 0 && r->ext_lo > 0 && r->n_verts > 1) {
        double zl, zh, nb = seg_mid_narrowest_halfwidth(r, 1, &zl, &zh);
        if (nb > 0 && !(w <= nb))
            w = nb;
    }
    return fmax(0.5 * w, rx);
}

/* Rib heads beside segment s's body on both sides over >= RIB_HEADS_MIN_MM of its height
 * (nh: the counts per side), walking in as for a rib-bearing body: the walk limit is half
 * the narrowest mid-height half-width, or the canal's half-width. */
static bool rib_heads_beside(const SegRun *r, size_t s, int nh[2])
{
    double zl, zh, narrow = seg_mid_narrowest_halfwidth(r, s, &zl, &zh);
    SegSlice cs;
    double rx = frame_at_body(r, 0.5 * (zl + zh), &cs) ? cs.rx : 0;
    double lim = rib_walk_limit(r, s, narrow, rx);
    rib_heads_seen(r, zl, zh, lim, rib_body_halfwidth_ct(r, zl, zh, lim), nh);
    return 0.5 * r->grid.g * (double)(nh[0] < nh[1] ? nh[0] : nh[1]) >= RIB_HEADS_MIN_MM;
}

/* Native (CT-grid) pass: labels from the segments (in_labels == NULL) or from an imported
 * label map, sub-regions from the frame. */
static bool native_pass(SmError **error, SegRun *r, const SmVolume *in_labels,
                        SmSpineSeg *seg, LabelAcc *acc_out /* [29] */)
{
    const SmVolume *ct = r->ct;
    SmVolume *lab = sm_volume_create(error, ct->dims, SM_VOXEL_U8);
    SmVolume *sub = lab ? sm_volume_create(error, ct->dims, SM_VOXEL_U8) : NULL;
    if (!lab || !sub) {
        sm_volume_destroy(lab);
        return false;
    }
    sm_volume_copy_geometry(lab, ct);
    sm_volume_copy_geometry(sub, ct);
    int nt = sm_omp_threads();
    LabelAcc *acc = calloc((size_t)nt * 29, sizeof *acc);
    /* [0, n_verts]: label per segment; [n_verts + 1 ...]: whether the segment's body counts
     * for the record's body centroid (for the sacrum only S1, its top segment) */
    int *seg_label = calloc(2 * (r->n_verts + 1), sizeof *seg_label);
    /* per-segment values, 10 blocks of n_verts + 1: C1 cut z (NAN: none), C2 body top z,
     * dens half-depth, dens half-width, rib-head walk limit, median body half-width, median depth,
     * largest body half-width of a rib-bearing body (its own width on the CT; T1 also under
     * C7, or capped by the other rib-bearing levels; a rib-free body over a rib-bearing
     * one), body-centre offset from the canal for a capped rib-bearing body next to a
     * rib-free one, the cap a body passes to the rib-free body above it */
    double *seg_c1z = malloc(10 * (r->n_verts + 1) * sizeof *seg_c1z);
    uint8_t *seg_thoracic = calloc(r->n_verts + 1, 1);
    MidFrame *mids = calloc(r->n_verts + 1, sizeof *mids);
    if (!acc || !seg_label || !seg_c1z || !seg_thoracic || !mids) {
        free(mids);
        free(seg_thoracic);
        free(acc);
        free(seg_label);
        free(seg_c1z);
        sm_volume_destroy(lab);
        sm_volume_destroy(sub);
        sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
        return false;
    }
    for (size_t s = 0; s < r->n_verts; s++)
        seg_label[s] = r->verts[s].verse > 0 ? r->verts[s].verse : 0;
    /* rib-bearing: a rib of >= 55 mm, or the first rib (short: its head still sits on the
     * body's posterolateral corners) */
    for (size_t s = 0; s < r->n_verts; s++)
        seg_thoracic[s] = r->verts[s].rib_left || r->verts[s].rib_right || r->verts[s].first_rib;
    /* also a body next to a rib-bearing one (in a run of such bodies) with rib heads beside
     * it on both sides, across their joint gaps, over RIB_HEADS_MIN_MM of its height each:
     * its ribs leave or are cut by a small field of view and the rib search counts none.
     * Not a C1+C2 segment, the sacrum, a segment above the first rib's or one named C1-C7
     * from an anchor (cervical: the foramina transversaria are gaps too); a lone body with
     * bone across a gap (L5 beside its transverse processes and the sacral alae on 3 mm
     * voxels) is not enough. */
    uint8_t *heads = in_labels ? NULL : calloc(r->n_verts + 1, 1);
    size_t above_first = r->n_verts; /* segments above the first rib's: cervical */
    const bool anchored = seg->anchors.n > 0; /* names from an anchor: C1-C7 are cervical */
    for (size_t s = 0; s < r->n_verts; s++)
        if (r->verts[s].first_rib)
            above_first = s + 1;
    for (size_t s = 0; heads && s < r->n_verts; s++) {
        if (seg_thoracic[s] || r->verts[s].cervical_top || seg_label[s] == SM_VERSE_SACRUM ||
            s >= above_first || (anchored && seg_label[s] >= 1 && seg_label[s] <= 7))
            continue;
        int nh[2];
        heads[s] = rib_heads_beside(r, s, nh);
        if (heads[s])
            sm_strlist_add(&seg->notes, "segment %zu: rib heads beside the body over %.0f and "
                           "%.0f mm of its height", s, 0.5 * r->grid.g * nh[0],
                           0.5 * r->grid.g * nh[1]);
    }
    /* an end segment of the window (no vertebra beyond it in view) with rib heads beside
     * it and a rib crossing its attachment shell, or named thoracic from an anchor (every
     * thoracic vertebra carries ribs; a field cut through the body may leave its rib no
     * crossing of the shell): its rib-bearing neighbour lies beyond the field (T1 at the
     * bottom of a cervical field, its short first rib) */
    for (size_t s = 0; heads && s < r->n_verts; s++)
        if (heads[s] && !seg_thoracic[s] && (s == 0 || s + 1 == r->n_verts) &&
            (r->verts[s].rib_runs >= 1 ||
             (anchored && seg_label[s] >= SM_VERSE_T1 && seg_label[s] <= SM_VERSE_T12))) {
            seg_thoracic[s] = 1;
            sm_strlist_add(&seg->notes, "segment %zu: rib-bearing (rib heads and %s, at the "
                           "window's end)", s,
                           r->verts[s].rib_runs >= 1 ? "a rib crossing" : "a thoracic name");
        }
    for (bool grew = heads != NULL; grew;) {
        grew = false;
        for (size_t s = 0; s < r->n_verts; s++)
            if (heads[s] && !seg_thoracic[s] &&
                ((s > 0 && seg_thoracic[s - 1]) || (s + 1 < r->n_verts && seg_thoracic[s + 1]))) {
                seg_thoracic[s] = 1;
                grew = true;
                sm_strlist_add(&seg->notes, "segment %zu: rib-bearing (rib heads, next to a "
                               "rib-bearing segment)", s);
            }
    }
    free(heads);
    /* the body's own half-width at mid-height of each rib-bearing segment (smallest over
     * its middle half: the per-slice width near the endplates includes the rib heads) */
    double *seg_hw = seg_c1z + 4 * (r->n_verts + 1);
    /* rib-free segments: the median body half-width and depth over the middle half, the
     * least the body outline gets on any slice of the segment (the per-slice frame is
     * interpolated across tilted discs such as L5/S1 and comes out narrow there) */
    double *seg_wmed = seg_c1z + 5 * (r->n_verts + 1), *seg_dmed = seg_c1z + 6 * (r->n_verts + 1);
    /* rib-bearing bodies: the body outline's largest half-width (NAN elsewhere) */
    double *seg_own = seg_c1z + 7 * (r->n_verts + 1);
    for (size_t s = 0; s < r->n_verts; s++) {
        seg_wmed[s] = seg_dmed[s] = 0;
        mids[s].ok = false;
        if (seg_thoracic[s] || in_labels)
            continue;
        double pa[3], ta[3], pb[3];
        sm_seg_axis_at(&r->grid, &r->frame, r->verts[s].s_lo, pa, ta);
        sm_seg_axis_at(&r->grid, &r->frame, r->verts[s].s_hi, pb, ta);
        double zc = 0.5 * (pa[2] + pb[2]), hz = 0.25 * fabs(pb[2] - pa[2]);
        double wv[64], dv[64];
        size_t nv = 0;
        for (double z = zc - hz; z <= zc + hz && nv < 64; z += 0.5 * r->grid.g) {
            SegSlice ms;
            if (sm_seg_frame_at(&r->frame, &r->grid, z, &ms) && ms.half_width > 0) {
                wv[nv] = ms.half_width;
                dv[nv++] = ms.depth;
            }
        }
        if (nv < 3)
            continue;
        qsort(wv, nv, sizeof wv[0], sm_cmp_double);
        qsort(dv, nv, sizeof dv[0], sm_cmp_double);
        seg_wmed[s] = wv[nv / 2];
        seg_dmed[s] = dv[nv / 2];
        MidFrame *mf = &mids[s];
        sm_seg_axis_at(&r->grid, &r->frame, 0.5 * (r->verts[s].s_lo + r->verts[s].s_hi), mf->c,
                       mf->t);
        if (!r->verts[s].cervical_top && sm_seg_frame_at(&r->frame, &r->grid, mf->c[2], &mf->sl)) {
            mf->sl.half_width = seg_wmed[s];
            mf->sl.depth = seg_dmed[s];
            mf->ok = true;
        }
    }
    /* narrowest mid-height half-width per segment, then (second half) a sort buffer */
    double *narrow_all = malloc(2 * (r->n_verts + 1) * sizeof *narrow_all);
    for (size_t s = 0; narrow_all && s < r->n_verts; s++)
        narrow_all[s] = NAN;
    /* a rib-bearing body's own width on the CT (else its narrowest mid-height half-width),
     * the measure passed up to the rib-free bodies above it (below) */
    double *seg_capup = seg_c1z + 9 * (r->n_verts + 1);
    for (size_t s = 0; s < r->n_verts; s++) {
        seg_hw[s] = seg_own[s] = seg_capup[s] = NAN;
        if (!seg_thoracic[s])
            continue;
        double zl, zh;
        seg_hw[s] = seg_mid_narrowest_halfwidth(r, s, &zl, &zh);
        double zc = 0.5 * (zl + zh);
        /* under a cervical segment (T1 under C7): the body outline no wider than C7's
         * median half-width + T1_WIDTH_ALLOW_MM (C7 and T1 are about as wide; the first
         * ribs' heads sit on T1's posterolateral corners and fill its per-slice width,
         * and so does its narrowest slice). Not next to a thoracic segment whose ribs the
         * rib search missed (chest CT: it counts as rib-free, its width is no measure).
         * NAN: the per-slice width holds. */
        if (s + 1 < r->n_verts && !seg_thoracic[s + 1] && seg_wmed[s + 1] > 0 &&
            seg_label[s + 1] >= 1 && seg_label[s + 1] <= 7)
            seg_own[s] = seg_wmed[s + 1] + T1_WIDTH_ALLOW_MM;
        /* the per-slice width can still hold the rib heads (the first ribs articulate
         * high on the body): the walk back stops at half of it, or the canal's width */
        SegSlice cs;
        double rx = frame_at_body(r, zc, &cs) ? cs.rx : 0;
        double narrow = seg_hw[s];
        if (narrow_all)
            narrow_all[s] = narrow;
        seg_hw[s] = rib_walk_limit(r, s, narrow, rx);
        sm_strlist_add(&seg->notes, "segment %zu: rib heads cut across a joint gap lateral to %.1f mm (narrowest half-width %.1f)", s, seg_hw[s], narrow);
        /* no wider than its own body measured on the CT: the working-grid width holds
         * the rib heads of its own ribs and of the ribs above (the first ribs high on
         * T1; at the top of a window with no disc plane above to stop them). A CT width
         * above the working-grid narrowest by more than half a working voxel: the walk
         * went astray (a lost canal track puts the body-centre row off the body), no
         * measure. Within half a voxel it is the grid's own error: a 2 mm voxel on the
         * body's side reads below the threshold when less than half of it is bone, and
         * the walk takes the wider side from the body centre where the grid's width is the
         * mean of both (sweep 777/28, T2 at a C1-T2 field's bottom: CT 12.96 mm against a
         * narrowest 12.50, truth 13.5; ignored, the rib heads and pedicles stayed in its
         * outline, body Dice 0.894). */
        double own = rib_body_halfwidth_ct(r, zl, zh, seg_hw[s]);
        own = own > 0 && own < narrow + 0.5 * r->grid.g ? fmin(own, narrow) : NAN;
        seg_capup[s] = own > 0 ? own : narrow;
        if (own > 0 && (isnan(seg_own[s]) || own < seg_own[s])) {
            seg_own[s] = own;
            if (narrow_all)
                narrow_all[s] = own; /* the measure for T1 below */
            sm_strlist_add(&seg->notes, "segment %zu: rib-bearing body no wider than %.1f mm "
                           "(its own width on the CT)", s, own);
        }
    }
    /* a rib-free body over a rib-bearing one (C7 over T1; a thoracic body whose ribs the
     * rib search missed, as at the top of a small field of view the ribs leave, named
     * cervical when the first rib is then found too low), and each rib-free body above it
     * in turn: no wider than its own width on the CT (walking in across the joint gaps,
     * as for a rib-bearing body; cervical bodies have no rib heads and the walk finds
     * their sides) where that is below its narrowest working-grid width, and never wider
     * than the rib-bearing body's own width + T1_WIDTH_ALLOW_MM (bodies widen caudally
     * from C3 through the thoracic spine; C7 is about as wide as T1). Without it such a
     * body's per-slice outline, and its median width, hold the heads of the ribs that the
     * rib search missed. */
    for (size_t s = 1; s < r->n_verts; s++) {
        if (in_labels || seg_thoracic[s] || seg_label[s] == SM_VERSE_SACRUM ||
            !(seg_capup[s - 1] > 0))
            continue;
        seg_capup[s] = seg_capup[s - 1];
        double cap = seg_capup[s] + T1_WIDTH_ALLOW_MM, zl, zh;
        double narrow = seg_mid_narrowest_halfwidth(r, s, &zl, &zh);
        SegSlice cs;
        double rx = sm_seg_frame_at(&r->frame, &r->grid, 0.5 * (zl + zh), &cs) ? cs.rx : 0;
        double own = narrow > 0 ? rib_body_halfwidth_ct(r, zl, zh, fmax(0.5 * narrow, rx)) : NAN;
        if (own > 0 && own < narrow && own < cap)
            cap = own;
        if (isnan(seg_own[s]) || cap < seg_own[s]) {
            seg_own[s] = cap;
            sm_strlist_add(&seg->notes, "segment %zu: rib-free body over a rib-bearing one: no "
                           "wider than %.1f mm", s, cap);
        }
    }
    /* body centre of a capped rib-bearing body next to a rib-free one (T1 under C7, T12
     * over L1): the rib-free neighbour's body-centre offset from the canal at mid-height
     * (axial rotation changes little from one vertebra to the next; NAN: none) */
    double *seg_boff = seg_c1z + 8 * (r->n_verts + 1);
    for (size_t s = 0; s < r->n_verts; s++) {
        seg_boff[s] = NAN;
        if (!seg_thoracic[s] || !(seg_own[s] > 0))
            continue;
        if (s + 1 < r->n_verts && !seg_thoracic[s + 1] && mids[s + 1].ok)
            seg_boff[s] = mids[s + 1].sl.bx - mids[s + 1].sl.cx;
        else if (s > 0 && !seg_thoracic[s - 1] && mids[s - 1].ok)
            seg_boff[s] = mids[s - 1].sl.bx - mids[s - 1].sl.cx;
    }
    /* T1 without C7 in view: no wider than the narrowest mid-height half-width (on the CT
     * where measured) of the other whole rib-bearing segments (thoracic bodies widen
     * caudally: T1 is the narrowest, so no allowance; working-grid widths can still hold
     * rib heads, tilted against thick slices, which only loosens the cap). */
    if (narrow_all) {
        size_t nn = 0;
        for (size_t s = 0; s < r->n_verts; s++)
            if (seg_thoracic[s] && !r->verts[s].partial && seg_label[s] != 8 &&
                narrow_all[s] > 0)
                narrow_all[r->n_verts + nn++] = narrow_all[s];
        if (nn >= 2) {
            qsort(narrow_all + r->n_verts, nn, sizeof *narrow_all, sm_cmp_double);
            double ref = narrow_all[r->n_verts];
            /* also where T1's own ribs were missed (a partial top segment): its outline
             * would otherwise take them in as the rib-free levels' median width */
            for (size_t s = 0; s < r->n_verts; s++)
                if (seg_label[s] == 8 && (isnan(seg_own[s]) || ref < seg_own[s]) &&
                    !(s + 1 < r->n_verts && seg_label[s + 1] >= 1 && seg_label[s + 1] <= 7)) {
                    seg_own[s] = ref;
                    sm_strlist_add(&seg->notes, "segment %zu: T1 without C7: body no wider "
                                   "than %.1f mm (the other rib-bearing levels)", s, ref);
                }
        }
        free(narrow_all);
    }
    /* C1+C2: C2's body no wider than its narrowest half-width over the segment's lower half
     * (as the C2 test measures it): higher up C1's lateral masses beside the dens widen the
     * per-slice outline, and on a tilted C2 they share slices with its body's top */
    for (size_t s = 0; s < r->n_verts; s++) {
        if (in_labels || !r->verts[s].cervical_top || seg_thoracic[s])
            continue;
        double own = INFINITY;
        for (int q = 0; q < 5; q++) {
            double pq[3], tq[3];
            SegSlice sq;
            sm_seg_axis_at(&r->grid, &r->frame,
                           r->verts[s].s_lo + (0.1 + 0.1 * q) * (r->verts[s].s_hi - r->verts[s].s_lo),
                           pq, tq);
            if (sm_seg_frame_at(&r->frame_sub, &r->grid, pq[2], &sq) && sq.half_width > 0 &&
                sq.half_width < own)
                own = sq.half_width;
        }
        if (isfinite(own)) {
            seg_own[s] = own;
            sm_strlist_add(&seg->notes, "segment %zu: C2 body no wider than %.1f mm (its lower "
                           "half)", s, own);
        }
    }
    for (size_t s = 0; s <= r->n_verts; s++)
        seg_c1z[s] = (s < r->n_verts && r->verts[s].cervical_top && r->verts[s].verse == 2)
                         ? r->verts[s].c1_z
                         : NAN;
    /* per segment after the C1 levels: C2's body top, the dens's AP half-depth and
     * half-width; the dens axis of the C1+C2 segment (point, x and y per mm of z) */
    double dens_ax[5] = {NAN, NAN, NAN, 0, 0};
    for (size_t s = 0; s < r->n_verts; s++) {
        const SegVert *vs = &r->verts[s];
        seg_c1z[r->n_verts + 1 + s] = vs->c2_top_z;
        seg_c1z[2 * (r->n_verts + 1) + s] = vs->dens_ry_mm;
        seg_c1z[3 * (r->n_verts + 1) + s] = vs->dens_radius_mm;
        if (!isnan(seg_c1z[s])) {
            dens_ax[0] = vs->dens_p[0];
            dens_ax[1] = vs->dens_p[1];
            dens_ax[2] = vs->dens_p[2];
            dens_ax[3] = vs->dens_sx;
            dens_ax[4] = vs->dens_sy;
            sm_strlist_add(&seg->notes, "segment %zu: C1 in front of the dens from z %.1f mm, "
                           "beside it from C2's body top at %.1f (track ends at %.1f); dens "
                           "axis (%.1f %.1f %.1f) per mm of z %+.2f %+.2f, half-width %.1f mm, "
                           "AP half-depth %.1f mm", s, seg_c1z[s], vs->c2_top_z,
                           r->grid.origin[2] + r->grid.g * (double)r->frame.k1, vs->dens_p[0],
                           vs->dens_p[1], vs->dens_p[2], vs->dens_sx, vs->dens_sy,
                           vs->dens_radius_mm, vs->dens_ry_mm);
        }
    }
    for (size_t s = 0; s < r->n_verts; s++)
        seg_label[r->n_verts + 1 + s] =
            seg_label[s] != SM_VERSE_SACRUM ||
            !(s + 1 < r->n_verts && seg_label[s + 1] == SM_VERSE_SACRUM);
    S1Body s1b;
    if (in_labels) {
        memset(&s1b, 0, sizeof s1b);
    } else {
        /* L5's median body size (rib-free: measured over its middle half) */
        long s1i = -1;
        for (size_t s = 0; s < r->n_verts; s++)
            if (r->verts[s].verse == SM_VERSE_SACRUM)
                s1i = (long)s;
        bool l5ok = s1i >= 0 && (size_t)s1i + 1 < r->n_verts;
        s1_body_prepare(r, l5ok ? seg_wmed[s1i + 1] : 0, l5ok ? seg_dmed[s1i + 1] : 0, &s1b);
    }
    if (s1b.valid)
        sm_strlist_add(&seg->notes, "S1 body: below the L5/S1 disc at (%.1f %.1f %.1f), "
                       "normal (%.2f %.2f %.2f), from %.1f to %.1f mm below it, semi-axes "
                       "%.1f x %.1f mm, centre at mid-depth %+.1f mm lateral (%s) %+.1f mm "
                       "posterior (fitted), per mm down %+.2f %+.2f%s",
                       s1b.p[0], s1b.p[1], s1b.p[2], s1b.n[0], s1b.n[1], s1b.n[2], s1b.top,
                       s1b.top + s1b.height, s1b.a, s1b.b, s1b.xc,
                       !s1b.lateral_l5      ? "the disc centre's x"
                       : s1b.lateral_canal ? "L5's lower half and the canal"
                                           : "L5's lower half",
                       s1b.yc,
                       -s1b.dx, -s1b.dy,
                       s1b.bottom_plate ? ", bottom at its inferior end plate" : "");
    const S1Body *s1body = &s1b;
    const size_t nx = ct->dims[0], ny = ct->dims[1], nz = ct->dims[2];
    const int16_t *hu = ct->data;
    uint8_t *lo = lab->data, *so = sub->data;
    const SegGrid *grid = &r->grid;
    const SegFrame *frame = in_labels ? &r->frame : &r->frame_sub;
    const SegFrame *frame_trk = &r->frame; /* the tracked canal */
    const uint8_t *vmask = r->vmask, *vin = r->vin;
    const SegDisc *discs = r->discs;
    const size_t n_discs = r->n_discs, n_verts = r->n_verts;
    const double edge = r->thr.edge, bone_lo = r->thr.lo, soft = r->thr.soft;
    const void *inl = in_labels ? in_labels->data : NULL;
    const SmVoxelType intype = in_labels ? in_labels->type : SM_VOXEL_U8;
    double A[3][4];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++)
            A[a][b] = ct->affine[a][b];
    /* rib-head walk along patient x, any orientation: CT inverse affine, finest spacing */
    double inv[4][4];
    double walk_step = fmin(ct->spacing[0], fmin(ct->spacing[1], ct->spacing[2]));
    if (!sm_mat4_affine_inverse(ct->affine, inv)) {
        memset(inv, 0, sizeof inv);
        walk_step = 0; /* no walk (sm_seg_rib_head_gap returns false) */
    }
    /* The dens rises above the end of the canal track (into C1's ring, where the track may
     * stop): when the top vertebra is C2 the frame's top slice serves up to DENS_TOP_MM above
     * the track, and beyond the usual 10 mm only bone near the body axis (the dens, within
     * 0.6 of the body half-width, or its own measured width) is C2. */
    /* Also a top vertebra of cervical size (rib-free, median body half-width <= 15 mm)
     * with bone on its axis more than 10 mm above the track's end, whatever its name:
     * a C2 the anchors could not name (C1 out of view) keeps its dens. */
    const bool c2_top =
        !in_labels && n_verts > 0 &&
        (seg_label[n_verts - 1] == 2 ||
         (seg_label[n_verts - 1] > 0 && fmax(r->ext_hi, r->ext_hi_follow) > 10.0 &&
          !seg_thoracic[n_verts - 1] &&
          seg_wmed[n_verts - 1] > 0 && seg_wmed[n_verts - 1] <= CERVICAL_MAX_HALF_WIDTH_MM));
    const double top_ext = c2_top ? DENS_TOP_MM : 10.0;
    const double z_ext = grid->origin[2] + grid->g * (double)frame->k1 + 10.0;
    /* The caudal end vertebra's body goes on below the track's end (the ring opens below
     * the pedicles, and a tilted body's front reaches further down than its axis): with
     * vertebral bone measured beyond that end (end_bone_mm), the frame serves down to
     * BOTTOM_EXT_MM below it, and beyond the usual 10 mm only what lies above the plane
     * normal to the body axis 1 mm past that bone's end (the end plate; the next
     * vertebra, whose disc the track did not reach, lies below it). */
    const double z_bot = grid->origin[2] + grid->g * (double)frame->k0 - 10.0;
    const bool bot_cut = !in_labels && r->ext_lo > 0;
    const double bot_ext = bot_cut ? BOTTOM_EXT_MM : 10.0;
    double bot_q[3], bot_n[3];
    for (int a = 0; a < 3; a++) {
        bot_q[a] = r->lo_p[a] - (r->ext_lo + 1.0) * r->lo_n[a];
        bot_n[a] = r->lo_n[a];
    }
    /* beyond the track's ends the end slices follow the body axis (tracked frame) */
    double lean[LEAN_N];
    frame_lean(grid, frame_trk, discs, n_discs, lean);
    /* the dens tracked where C1 is not in view (C1's anterior arch, 1-3 mm in front of the
     * dens, would pull the window's centroid forward: there the lean holds) */
    bool c1_seen = false;
    for (size_t s = 0; s < n_verts; s++)
        c1_seen |= !isnan(seg_c1z[s]);
    if (c2_top && !c1_seen)
        dens_track(grid, frame, top_ext, edge, lean);
    else
        lean[4] = 0;
    /* the top vertebra's canal line (not a C2 on top: the dens track holds there) */
    lean[LEAN_ANCHOR] = NAN;
    if (!in_labels && !c2_top && n_discs > 0 && !r->verts[n_verts - 1].cervical_top) {
        const SegDisc *dt = &discs[n_discs - 1];
        SegSlice sa;
        const double z1 = grid->origin[2] + grid->g * (double)frame->k1;
        SegSlice st;
        if (z1 > dt->p[2] && frame_at_ext_top0(frame, grid, dt->p[2], top_ext, bot_ext, lean, &sa) &&
            frame_at_ext_top0(frame, grid, z1, top_ext, bot_ext, lean, &st)) {
            double behind = st.cy - (sa.cy + (z1 - dt->p[2]) * lean[1]);
            if (behind > TOP_CANAL_BEHIND_MM) {
                lean[LEAN_ANCHOR] = dt->p[2];
                lean[LEAN_ANCHOR + 1] = sa.cx;
                lean[LEAN_ANCHOR + 2] = sa.cy;
            }
        }
    }
#pragma omp parallel for default(none) \
    shared(hu, lo, so, grid, frame, frame_trk, vmask, vin, discs, seg_label, seg_c1z, seg_thoracic, acc, inl, A, \
           ct, inv, lean, bot_q, bot_n, dens_ax, \
           mids, \
           s1body) \
    firstprivate(nx, ny, nz, n_discs, n_verts, edge, bone_lo, soft, intype, walk_step, top_ext, c2_top, \
                 z_ext, z_bot, bot_cut, bot_ext) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        LabelAcc *ta = acc + (size_t)sm_seg_thread_id() * 29;
        const double g = grid->g;
        const size_t cdims[3] = {nx, ny, nz};
        for (size_t j = 0; j < ny; j++) {
            size_t i_lo = 0, i_hi = nx;
            if (!inl && !row_range(grid, frame, top_ext, bot_ext, lean, A, nx, j, k, &i_lo, &i_hi))
                continue;
            /* an axial row shares one frame slice */
            bool row_axial = fabs(A[2][0]) * (double)nx <= 0.25;
            SegSlice row_sl;
            bool row_have = false;
            if (row_axial)
                row_have = frame_at_ext_top(frame, grid,
                                            A[2][1] * (double)j + A[2][2] * (double)k + A[2][3],
                                            top_ext, bot_ext, lean, &row_sl);
            for (size_t i = i_lo; i < i_hi; i++) {
                size_t v = i + nx * (j + ny * k);
                double p[3];
                for (int a = 0; a < 3; a++)
                    p[a] = A[a][0] * (double)i + A[a][1] * (double)j + A[a][2] * (double)k +
                           A[a][3];
                int label = 0;
                size_t seg_s = n_verts; /* segment of a vertebra voxel */
                bool body_ok = true;
                if (inl) {
                    int lv = intype == SM_VOXEL_U8 ? ((const uint8_t *)inl)[v]
                                                   : ((const uint16_t *)inl)[v];
                    label = (lv >= 1 && lv <= 28) ? lv : 0;
                }
                SegSlice sl;
                bool have;
                if (row_axial) {
                    have = row_have;
                    sl = row_sl;
                } else {
                    have = frame_at_ext_top(frame, grid, p[2], top_ext, bot_ext, lean, &sl);
                }
                if (have && bot_cut && p[2] < z_bot &&
                    (p[0] - bot_q[0]) * bot_n[0] + (p[1] - bot_q[1]) * bot_n[1] +
                            (p[2] - bot_q[2]) * bot_n[2] < 0)
                    have = false;
                double dx = 0, dy = 0;
                if (have) {
                    dx = p[0] - sl.cx;
                    dy = p[1] - sl.cy;
                    if (fabs(dx) > 64.0 || dy < -(sl.ry_ant + sl.depth + 16.0) ||
                        dy > sl.ry_post + 74.0)
                        have = false;
                }
                if (!have && !label)
                    continue;
                if (!inl) {
                    /* trilinear of the working-grid vertebra mask */
                    double x = (p[0] - grid->origin[0]) / g, y = (p[1] - grid->origin[1]) / g,
                           z = (p[2] - grid->origin[2]) / g;
                    double m = 0, mi = 0;
                    /* up to half a working voxel beyond the outer grid nodes (the CT's
                     * first and last slices) the border node's value is used */
                    const double gx = (double)grid->dims[0] - 1, gy = (double)grid->dims[1] - 1,
                                 gz = (double)grid->dims[2] - 1;
                    if (x >= -0.5 && y >= -0.5 && z >= -0.5 && x <= gx + 0.5 && y <= gy + 0.5 &&
                        z <= gz + 0.5) {
                        x = x < 0 ? 0 : x > gx ? gx : x;
                        y = y < 0 ? 0 : y > gy ? gy : y;
                        z = z < 0 ? 0 : z > gz ? gz : z;
                        size_t i0 = (size_t)x, j0 = (size_t)y, k0 = (size_t)z;
                        double fx = x - (double)i0, fy = y - (double)j0, fz = z - (double)k0;
                        size_t i1 = i0 + 1 < grid->dims[0] ? i0 + 1 : i0;
                        size_t j1 = j0 + 1 < grid->dims[1] ? j0 + 1 : j0;
                        size_t k1 = k0 + 1 < grid->dims[2] ? k0 + 1 : k0;
                        for (int c = 0; c < 8; c++) {
                            size_t q = seg_idx(grid->dims, (c & 1) ? i1 : i0,
                                               ((c >> 1) & 1) ? j1 : j0, ((c >> 2) & 1) ? k1 : k0);
                            double w = ((c & 1) ? fx : 1 - fx) * ((c & 2) ? fy : 1 - fy) *
                                       ((c & 4) ? fz : 1 - fz);
                            if (vmask[q])
                                m += w;
                            if (vin[q])
                                mi += w;
                        }
                    }
                    /* inside the working mask and not soft tissue, or near it and bone */
                    /* Interior of the filled working mask: marrow of any density (fatty
                     * marrow can be near 0 HU), not gas -- except next to a disc, where the
                     * endplate is the boundary. Just outside it (the one-voxel erosion's
                     * trilinear level 0.2-0.5) a voxel with cortex on its outward side is
                     * marrow under a thin (osteoporotic) cortex, which the density rules
                     * below miss. Elsewhere: a voxel enclosed by dense tissue
                     * (no soft-tissue neighbour) is bone above the soft-tissue/bone midpoint;
                     * a surface voxel must reach the 50 % partial-volume level between soft
                     * tissue and the densest bone among its 6 neighbours. */
                    const SegDisc *dq = NULL;
                    double dh = 0;
                    bool near_disc =
                        have && in_disc_space(discs, n_discs, &sl, p, 0.5, &dq, &dh);
                    bool member = !near_disc && mi >= 0.5 && hu[v] >= -300;
                    if (!member && !near_disc && mi >= 0.2 && hu[v] >= -300 &&
                        cortex_outward(grid, vin, hu, cdims, A, i, j, k, p, bone_lo))
                        member = true;
                    if (!member && m >= 0.15 && hu[v] >= edge) {
                        double nb = hu[v], nmin = hu[v];
                        const size_t nbr[6] = {i > 0 ? v - 1 : v, i + 1 < nx ? v + 1 : v,
                                               j > 0 ? v - nx : v, j + 1 < ny ? v + nx : v,
                                               k > 0 ? v - nx * ny : v,
                                               k + 1 < nz ? v + nx * ny : v};
                        for (int q = 0; q < 6; q++) {
                            double hq = hu[nbr[q]];
                            if (hq > nb) nb = hq;
                            if (hq < nmin) nmin = hq;
                        }
                        if (nmin >= edge)
                            member = true;
                        else
                            member = hu[v] >= 0.5 * (soft + (nb > bone_lo ? nb : bone_lo));
                    }
                    /* lateral to the body and in front of the pedicles lie rib heads (or
                     * osteophytes and vessels), not vertebra. Judged in front of the
                     * tracked canal's front (the body's posterolateral corners between it
                     * and a wall found further back stay), against the per-slice body
                     * width: not the vertebra's median body (mids), whose width on a
                     * thoracic segment whose ribs the rib search missed holds the rib
                     * heads and would keep them. */
                    if (member && have && dy < -sl.ry_ant && fabs(p[0] - sl.bx) > sl.half_width &&
                        sm_seg_body_shape(&sl, p) > 1.3) {
                        SegSlice slw;
                        if (frame_trk == frame || !frame_at_ext(frame_trk, grid, p[2], &slw))
                            slw = sl;
                        if (p[1] - slw.cy < -slw.ry_ant && fabs(p[0] - slw.bx) > slw.half_width &&
                            sm_seg_body_shape(&slw, p) > 1.3)
                            member = false;
                    }
                    /* the disc space is not vertebra, whatever the filling bridged: in
                     * the disc's slab bone is at least the grow threshold and, on the disc
                     * side of the end plate, its half-way level (sub-voxel surface) */
                    if (member && near_disc &&
                        (hu[v] < bone_lo ||
                         hu[v] < end_plate_level(ct, inv, dq, p, dh, i, j, k, hu[v], bone_lo)))
                        member = false;
                    if (member) {
                        size_t s = sm_seg_segment_of(discs, n_discs, p);
                        seg_s = s;
                        /* rib heads: in front of the pedicles of a rib-bearing level, bone
                         * beyond the body's mid-height half-width reached across a gap
                         * (the costovertebral joint) along patient x toward the body */
                        if (have && s < n_verts && seg_thoracic[s] && dy < -sl.ry_ant &&
                            sm_seg_rib_head_gap(ct, inv, walk_step, p, sl.bx,
                                                seg_c1z[4 * (n_verts + 1) + s], edge, bone_lo,
                                                near_disc))
                            s = n_verts; /* not vertebra */
                        /* behind the canal, rib-bearing (thoracic) levels: spinous processes
                         * slope down over the vertebra below; bend the cut */
                        if (have && dy > sl.ry_post && s < n_verts && seg_thoracic[s])
                            s = sm_seg_segment_of_bent(discs, n_discs, p, dy - sl.ry_post,
                                                       THORACIC_SPINOUS_SLOPE);
                        if (s < n_verts) {
                            label = seg_label[s];
                            body_ok = seg_label[n_verts + 1 + s] != 0;
                            /* C1: bone of the C1+C2 segment in front of the dens above
                             * the arch level, off the dens above C2's body top */
                            if (!isnan(seg_c1z[s]) && p[2] >= seg_c1z[s] && have) {
                                double f = p[2] - dens_ax[2];
                                double ddx = p[0] - (dens_ax[0] + f * dens_ax[3]);
                                double ddy = p[1] - (dens_ax[1] + f * dens_ax[4]);
                                double rd = 0.6 * sl.half_width;
                                double rdens = seg_c1z[3 * (n_verts + 1) + s] + 1.0;
                                if (rdens < rd) rd = rdens; /* its own width, 1 mm margin */
                                if (rd < 4.0) rd = 4.0;
                                /* in front of the atlanto-dental joint: C1's anterior arch */
                                if (-ddy > seg_c1z[2 * (n_verts + 1) + s] ||
                                    (p[2] >= seg_c1z[n_verts + 1 + s] &&
                                     ddx * ddx + ddy * ddy > rd * rd))
                                    label = 1;
                                /* the hole filling closes the C1 ring around the dens:
                                 * there only bone is vertebra, not the soft tissue inside */
                                if (hu[v] < edge)
                                    label = 0;
                            }
                            /* above the usual frame extension: the dens only */
                            if ((label == 2 || (c2_top && s + 1 == n_verts)) && p[2] > z_ext &&
                                have) {
                                double ddx = p[0] - sl.bx, ddy = p[1] - sl.by;
                                double rd = 0.6 * sl.half_width;
                                double rdens = seg_c1z[3 * (n_verts + 1) + s] + 1.0;
                                if (!isnan(seg_c1z[s]) && isfinite(rdens)) {
                                    double f = p[2] - dens_ax[2];
                                    ddx = p[0] - (dens_ax[0] + f * dens_ax[3]);
                                    ddy = p[1] - (dens_ax[1] + f * dens_ax[4]);
                                    if (rdens < rd) rd = rdens;
                                }
                                if (rd < 4.0) rd = 4.0;
                                if (ddx * ddx + ddy * ddy > rd * rd)
                                    label = 0;
                            }
                        }
                    }
                }
                uint8_t code = 0;
                bool in_canal = false; /* inside the tracked canal's elliptical section */
                if (have) {
                    double cry = dy < 0 ? sl.ry_ant : sl.ry_post;
                    in_canal = dx * dx / (sl.rx * sl.rx) + dy * dy / (cry * cry) <= 1.0;
                }
                if (label) {
                    SegSlice slb = sl;
                    if (seg_s < n_verts && mids[seg_s].ok) {
                        /* never narrower than the vertebra's median body */
                        if (mids[seg_s].sl.half_width > slb.half_width)
                            slb.half_width = mids[seg_s].sl.half_width;
                        if (mids[seg_s].sl.depth > slb.depth)
                            slb.depth = mids[seg_s].sl.depth;
                    }
                    if (seg_s < n_verts) {
                        /* rib-bearing bodies: no wider than their own width on the CT,
                         * T1 than C7 or the other rib-bearing levels (rib heads; NAN
                         * elsewhere) */
                        double own = seg_c1z[7 * (n_verts + 1) + seg_s];
                        /* an outline wider than the body by more than BODY_RECENTRE_MM
                         * holds rib heads (or a first rib against the body) beside it,
                         * on one side more than the other where a rib is cut by the field
                         * or missed: its centre is not the body's. The body lies in front
                         * of the canal, offset as in the rib-free neighbour. */
                        double boff = seg_c1z[8 * (n_verts + 1) + seg_s];
                        if (own > 0 && isfinite(boff) && slb.half_width > own + BODY_RECENTRE_MM)
                            slb.bx = sl.cx + boff;
                        if (own > 0 && own < slb.half_width)
                            slb.half_width = own;
                    }
                    code = have ? sm_seg_subregion_classify(&slb, p) : 0;
                    if (in_canal && hu[v] < edge)
                        /* canal contents inside the tracked canal's ellipse (CSF, epidural
                         * fat, the fat of the basivertebral foramen at a body's posterior
                         * wall), no denser than the soft-tissue/bone edge, are canal
                         * whoever drew the label: the built-in vertebra mask leaves them
                         * out, an imported map (TotalSegmentator's S1) can hold them in the
                         * body, where they read as a lytic pocket. At the grow threshold
                         * instead of the edge level the rule also took an imported L2's
                         * fatty posterior wall (its L2/L3 kyphosis -8.6 -> -14.8 deg). */
                        code = SM_SUB_CANAL;
                    if (label == 1 && code == SM_SUB_BODY)
                        code = SM_SUB_POSTERIOR_ARCH; /* C1 has no body: its ring is arch */
                    if (label == SM_VERSE_SACRUM && s1body->valid && code != SM_SUB_CANAL) {
                        /* body = the S1 body only (canal contents excepted, above); the
                         * lower sacrum has no body code */
                        /* the S1/S2 junction between the two end plates (a disc remnant,
                         * below bone density) is not body, as the disc space is not */
                        if (s1_body_contains(s1body, p) &&
                            !(s1body->bottom_plate && hu[v] < bone_lo &&
                              s1_above_bottom(s1body, p) < s1body->junction))
                            code = SM_SUB_BODY;
                        else if (code == SM_SUB_BODY)
                            code = SM_SUB_NONE;
                        body_ok = true;
                    }
                    lo[v] = (uint8_t)label;
                    LabelAcc *la = &ta[label];
                    la->n++;
                    la->si += i;
                    la->sj += j;
                    la->sk += k;
                    if (code == SM_SUB_BODY && body_ok) {
                        la->nb++;
                        la->bi += i;
                        la->bj += j;
                        la->bk += k;
                    }
                    if (i == 0 || j == 0 || k == 0 || i + 1 == nx || j + 1 == ny || k + 1 == nz)
                        la->edge = 1;
                } else if (have) {
                    if (in_canal && hu[v] < bone_lo) {
                        code = SM_SUB_CANAL;
                    } else if (hu[v] < bone_lo && hu[v] > soft - 100 && n_discs > 0) {
                        if (in_disc_space(discs, n_discs, &sl, p, 1.0, NULL, NULL))
                            code = SM_SUB_DISC;
                    }
                }
                so[v] = code;
            }
        }
    }
    /* merge per-thread accumulators in thread order */
    for (int t = 0; t < nt; t++)
        for (int l = 0; l < 29; l++) {
            const LabelAcc *a = &acc[(size_t)t * 29 + l];
            LabelAcc *o = &acc_out[l];
            o->n += a->n; o->nb += a->nb;
            o->si += a->si; o->sj += a->sj; o->sk += a->sk;
            o->bi += a->bi; o->bj += a->bj; o->bk += a->bk;
            o->edge |= a->edge;
        }
    free(acc);
    free(seg_label);
    free(seg_c1z);
    free(seg_thoracic);
    free(mids);
    seg->labels = lab;
    seg->subregions = sub;
    return true;
}

/* End-plate slices of thick-slice CT (plates.c): the voxels that leave a body leave its
 * label's accumulators too. */
static bool trim_plates(SmError **error, const SegRun *r, SmSpineSeg *seg, LabelAcc *acc)
{
    SegTrimmed t[29];
    if (!sm_seg_trim_plate_slices(error, r->ct, seg->labels, seg->subregions, r->thr.lo,
                                  &seg->notes, t))
        return false;
    for (int l = 0; l < 29; l++) {
        acc[l].n -= t[l].n, acc[l].nb -= t[l].n;
        acc[l].si -= t[l].si, acc[l].sj -= t[l].sj, acc[l].sk -= t[l].sk;
        acc[l].bi -= t[l].si, acc[l].bj -= t[l].sj, acc[l].bk -= t[l].sk;
    }
    return true;
}

/* Records for every label present, superior to inferior. */
static bool build_records(SmError **error, SegRun *r, SmSpineSeg *seg, const LabelAcc *acc,
                          bool imported)
{
    /* superior-to-inferior order of VerSe ids: C1..T12, T13, L1..L6, sacrum, coccyx */
    static const int order[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                                18, 19, 28, 20, 21, 22, 23, 24, 25, 26, 27};
    size_t count = 0;
    for (size_t q = 0; q < sizeof order / sizeof order[0]; q++)
        if (acc[order[q]].n > 0)
            count++;
    seg->vertebrae = calloc(count ? count : 1, sizeof *seg->vertebrae);
    if (!seg->vertebrae) {
        sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
        return false;
    }
    for (size_t q = 0; q < sizeof order / sizeof order[0]; q++) {
        int l = order[q];
        const LabelAcc *a = &acc[l];
        if (a->n == 0)
            continue;
        SmVertebra *vt = &seg->vertebrae[seg->n_vertebrae++];
        const char *name = sm_seg_level_name(l);
        strncpy(vt->level, name ? name : "?", sizeof vt->level - 1);
        vt->verse_label = l;
        vt->n_voxels = (size_t)a->n;
        vt->n_body_voxels = (size_t)a->nb;
        double ijk[3] = {(double)a->si / (double)a->n, (double)a->sj / (double)a->n,
                         (double)a->sk / (double)a->n};
        sm_volume_index_to_lps(r->ct, ijk, vt->vertebra_centroid_lps);
        if (a->nb > 0) {
            double bijk[3] = {(double)a->bi / (double)a->nb, (double)a->bj / (double)a->nb,
                              (double)a->bk / (double)a->nb};
            sm_volume_index_to_lps(r->ct, bijk, vt->centroid_lps);
        } else {
            memcpy(vt->centroid_lps, vt->vertebra_centroid_lps, sizeof vt->centroid_lps);
        }
        vt->partial = a->edge != 0;
        if (imported) {
            vt->confidence = 1.0;
            sm_strlist_add(&vt->anchors, "imported labels");
            continue;
        }
        /* confidence and reasons from the segment(s) that carry this label */
        double conf = 1.0;
        bool found = false;
        for (size_t s = 0; s < r->n_verts; s++) {
            SegVert *sv = &r->verts[s];
            if (sv->verse != l)
                continue;
            if (!found) {
                for (size_t m = 0; m < sv->anchors.n; m++)
                    sm_strlist_add(&vt->anchors, "%s", sv->anchors.items[m]);
                for (size_t m = 0; m < sv->reasons.n; m++)
                    sm_strlist_add(&vt->reasons, "%s", sv->reasons.items[m]);
                if (sv->confidence > 0)
                    conf = sv->confidence;
            }
            if (sv->extent_doubtful)
                vt->extent_doubtful = true;
            found = true;
            if (s > 0 && (r->discs[s - 1].inserted))
                conf -= 0.1;
            if (s < r->n_discs && r->discs[s].inserted)
                conf -= 0.1;
        }
        if (vt->partial && !found)
            conf *= 0.9;
        if (vt->partial)
            sm_strlist_add(&vt->reasons, "touches the edge of the field of view");
        if (conf < 0.05) conf = 0.05;
        vt->confidence = conf;
    }
    return true;
}

static bool canal_points(SmError **error, SegRun *r, SmSpineSeg *seg)
{
    size_t nk = r->frame.k1 - r->frame.k0 + 1;
    seg->canal_lps = malloc(nk * sizeof *seg->canal_lps);
    if (!seg->canal_lps) {
        sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
        return false;
    }
    for (size_t q = 0; q < nk; q++) {
        size_t k = r->frame.k1 - q;
        const SegSlice *sl = &r->frame.s[k];
        seg->canal_lps[q][0] = sl->cx;
        seg->canal_lps[q][1] = sl->cy;
        seg->canal_lps[q][2] = r->grid.origin[2] + r->grid.g * (double)k;
    }
    seg->n_canal = nk;
    return true;
}

/* Vertebral bone beyond an end of the canal track (top: its cranial end): along the body
 * axis extrapolated from that end, the run of slices whose mean working-grid HU within
 * END_BONE_RADIUS_MM of the axis is at least the soft-tissue/bone edge, up to
 * END_BONE_MAX_MM; it stops at a disc or at the field's end. The track can start or stop
 * inside a vertebra at the field's end (the bony ring around the canal is open below the
 * pedicles, or cut by the field), leaving a short end segment whose body goes on beyond it. */
#define END_BONE_RADIUS_MM 3.0
#define END_BONE_MAX_MM 20.0
#define END_BONE_FOLLOW 0.5 /* lateral offset per mm of a walk following the bone */
#define END_DISC_AT_START_MM 3.0 /* a disc this near the track's start lies at it */
#define END_DISC_SKIP_MM 10.0    /* the walk passes at most this much disc first */
static double end_bone_mm(const SegRun *r, bool top, bool follow, double skip_mm, double p[3],
                          double t[3])
{
    const SegGrid *g = &r->grid;
    sm_seg_axis_at(g, &r->frame, top ? r->frame.s[r->frame.k1].arc : 0.0, p, t);
    if (r->n_discs > 0) /* the end vertebra's own axis (see frame_lean) */
        memcpy(t, r->discs[top ? r->n_discs - 1 : 0].n, 3 * sizeof *t);
    if (!(t[2] > 0.5)) {
        t[0] = t[1] = 0;
        t[2] = 1;
    }
    double dir = top ? 1.0 : -1.0, extra = 0;
    long rv = lround(END_BONE_RADIUS_MM / g->g);
    double ox = 0, oy = 0; /* the walk's lateral offset from the straight line (follow) */
    bool gap = skip_mm > 0; /* still in the disc at the track's end */
    for (double d = 0.5 * g->g; d <= END_BONE_MAX_MM + skip_mm; d += 0.5 * g->g) {
        double q[3] = {p[0] + dir * d * t[0] + ox, p[1] + dir * d * t[1] + oy,
                       p[2] + dir * d * t[2]};
        long k = lround((q[2] - g->origin[2]) / g->g);
        if (k < 0 || k >= (long)g->dims[2])
            break;
        if (follow) {
            /* one mean-shift step onto the bone (>= the edge level) within
             * DENS_TRACK_R_MM, the offset kept within END_BONE_FOLLOW of the distance */
            long rf = (long)ceil(DENS_TRACK_R_MM / g->g);
            long ic = lround((q[0] - g->origin[0]) / g->g), jc = lround((q[1] - g->origin[1]) / g->g);
            double sx = 0, sy = 0;
            long n = 0;
            for (long j = jc - rf; j <= jc + rf; j++)
                for (long i = ic - rf; i <= ic + rf; i++) {
                    if (i < 0 || j < 0 || i >= (long)g->dims[0] || j >= (long)g->dims[1] ||
                        (double)((i - ic) * (i - ic) + (j - jc) * (j - jc)) * g->g * g->g >
                            DENS_TRACK_R_MM * DENS_TRACK_R_MM)
                        continue;
                    int16_t v = g->hu[seg_idx(g->dims, (size_t)i, (size_t)j, (size_t)k)];
                    if (v == SEG_OUTSIDE || v < r->thr.edge)
                        continue;
                    sx += g->origin[0] + g->g * (double)i;
                    sy += g->origin[1] + g->g * (double)j;
                    n++;
                }
            if (n > 0) {
                double nx = ox + sx / (double)n - q[0], ny = oy + sy / (double)n - q[1];
                double lim = END_BONE_FOLLOW * d, len = sqrt(nx * nx + ny * ny);
                if (len > lim) {
                    nx *= lim / len;
                    ny *= lim / len;
                }
                q[0] += nx - ox;
                q[1] += ny - oy;
                ox = nx;
                oy = ny;
            }
        }
        long ic = lround((q[0] - g->origin[0]) / g->g), jc = lround((q[1] - g->origin[1]) / g->g);
        double sum = 0;
        long cnt = 0, out = 0;
        for (long j = jc - rv; j <= jc + rv; j++)
            for (long i = ic - rv; i <= ic + rv; i++) {
                if ((i - ic) * (i - ic) + (j - jc) * (j - jc) > rv * rv)
                    continue;
                if (i < 0 || j < 0 || i >= (long)g->dims[0] || j >= (long)g->dims[1]) {
                    out++;
                    continue;
                }
                int16_t v = g->hu[seg_idx(g->dims, (size_t)i, (size_t)j, (size_t)k)];
                if (v == SEG_OUTSIDE) {
                    out++;
                    continue;
                }
                sum += v;
                cnt++;
            }
        if (gap && out == 0 && cnt > 0 && sum / (double)cnt < r->thr.edge && d <= skip_mm)
            continue;
        gap = false;
        if (out > 0 || cnt == 0 || sum / (double)cnt < r->thr.edge)
            break;
        extra = d;
    }
    return extra;
}

/* Segments between disc planes, lowest first. */
static bool build_segments(SmError **error, SegRun *r)
{
    r->n_verts = r->n_discs + 1;
    r->verts = calloc(r->n_verts, sizeof *r->verts);
    if (!r->verts) {
        sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
        return false;
    }
    double len = r->frame.s[r->frame.k1].arc;
    double p_hi[3], t_hi[3];
    /* a disc found at the track's start (the canal leaves the field or its ring opens
     * there, in the disc): the bone beyond it is the next vertebra's, measured past the
     * disc (END_DISC_SKIP_MM at most) */
    const double skip_lo = r->n_discs > 0 && r->discs[0].s <= END_DISC_AT_START_MM
                               ? END_DISC_SKIP_MM
                               : 0.0;
    const double ext_lo = end_bone_mm(r, false, false, skip_lo, r->lo_p, r->lo_n),
                 ext_hi = end_bone_mm(r, true, false, 0.0, p_hi, t_hi);
    r->ext_hi = ext_hi;
    /* the dens can lean off the disc normal (C2-C6 phantom: 0.5 mm/mm back against a
     * C2/C3 normal of 0.13, the straight walk leaving it after 9 mm): the bone above the
     * track's end followed, for the C2 test (native_pass) */
    r->ext_hi_follow = end_bone_mm(r, true, true, 0.0, p_hi, t_hi);
    r->ext_lo = ext_lo;
    for (size_t s = 0; s < r->n_verts; s++) {
        SegVert *vt = &r->verts[s];
        vt->lower_disc = s > 0 ? (int)s - 1 : -1;
        vt->upper_disc = s < r->n_discs ? (int)s : -1;
        vt->s_lo = s > 0 ? r->discs[s - 1].s : 0;
        vt->s_hi = s < r->n_discs ? r->discs[s].s : len;
        double t[3];
        sm_seg_axis_at(&r->grid, &r->frame, 0.5 * (vt->s_lo + vt->s_hi), vt->centre, t);
        vt->partial = (s == 0 || s == r->n_discs);
        vt->verse = 0;
        /* an end segment shorter than 8 mm, with the vertebral bone beyond the track's
         * end, is a sliver of a vertebra: dropped */
        double ext = (s == 0 ? ext_lo : 0) + (s == r->n_discs ? ext_hi : 0);
        if ((s == 0 || s == r->n_discs) && vt->s_hi - vt->s_lo + ext < 8.0)
            vt->verse = -1;
    }
    return true;
}

/* Mean working-grid HU within radius_mm of the body axis on the slice of arc position s. */
static double axis_disc_mean(const SegRun *r, double s, double radius_mm)
{
    double p[3], t[3];
    sm_seg_axis_at(&r->grid, &r->frame, s, p, t);
    const SegGrid *g = &r->grid;
    long k = lround((p[2] - g->origin[2]) / g->g);
    if (k < 0 || k >= (long)g->dims[2])
        return NAN;
    long ic = lround((p[0] - g->origin[0]) / g->g), jc = lround((p[1] - g->origin[1]) / g->g);
    long rv = lround(radius_mm / g->g);
    double sum = 0;
    long cnt = 0;
    for (long j = jc - rv; j <= jc + rv; j++)
        for (long i = ic - rv; i <= ic + rv; i++) {
            if (i < 0 || j < 0 || i >= (long)g->dims[0] || j >= (long)g->dims[1])
                continue;
            if ((i - ic) * (i - ic) + (j - jc) * (j - jc) > rv * rv)
                continue;
            int16_t v = g->hu[seg_idx(g->dims, (size_t)i, (size_t)j, (size_t)k)];
            if (v == SEG_OUTSIDE)
                continue;
            sum += v;
            cnt++;
        }
    return cnt ? sum / (double)cnt : NAN;
}

/* Mean CT value (trilinear) over the disc of radius_mm about the body axis, normal to it, at
 * arc position s: the end-plate profile at the CT's own resolution. */
static double axis_ct_mean(const SegRun *r, double s, double radius_mm)
{
    double p[3], t[3], u[3], w[3];
    sm_seg_axis_at(&r->grid, &r->frame, s, p, t);
    if (!sm_seg_plane_basis(t, u, w))
        return NAN;
    double sum = 0;
    long cnt = 0;
    for (double a = -radius_mm; a <= radius_mm; a += 1.0)
        for (double b = -radius_mm; b <= radius_mm; b += 1.0) {
            if (a * a + b * b > radius_mm * radius_mm)
                continue;
            double q[3];
            for (int c = 0; c < 3; c++)
                q[c] = p[c] + a * u[c] + b * w[c];
            double v = ct_at(r->ct, q);
            if (v <= -1024)
                continue;
            sum += v;
            cnt++;
        }
    return cnt ? sum / (double)cnt : NAN;
}

/* The highest axis_disc_mean within half a median height hm below and above position s0
 * (inside [s_lo, s_hi]): the two flanks of a valley at s0 (-INFINITY where none). */
static void valley_flanks(const SegRun *r, double s0, double hm, double s_lo, double s_hi,
                          double *below, double *above)
{
    *below = -INFINITY;
    *above = -INFINITY;
    for (double s = s0 - 0.5 * hm; s <= s0 + 0.5 * hm; s += 0.5) {
        if (s < s_lo || s > s_hi)
            continue;
        double v = axis_disc_mean(r, s, 5.0);
        if (isnan(v))
            continue;
        if (s < s0 && v > *below)
            *below = v;
        if (s > s0 && v > *above)
            *above = v;
    }
}

/* Rebuild the segments from r->discs[0..n_discs) and run the sacrum and C2 tests on them;
 * *found: the top segment is C1+C2. */
static bool c2_rebuild(SmError **error, SegRun *r, bool *found)
{
    *found = false;
    r->verts = NULL;
    bool ok = build_segments(error, r);
    if (ok)
        ok = sm_seg_sacrum_find(error, &r->grid, r->filled, &r->frame, r->verts, r->n_verts);
    if (ok) {
        sm_seg_c2_find(&r->grid, &r->thr, &r->frame, r->verts, r->n_verts);
        for (size_t s = 0; s < r->n_verts; s++)
            *found |= r->verts[s].cervical_top;
    }
    return ok;
}

/* Undoes a trial disc insertion: drops the rebuilt vertebrae and the disc array holding
 * the inserted disc (nd2), and restores the saved ones. */
static void disc_trial_undo(SegRun *r, SegDisc *nd2, SegDisc *saved_discs, SegVert *saved,
                            size_t saved_n)
{
    free(r->verts);
    free(nd2);
    r->discs = saved_discs;
    r->n_discs--;
    r->verts = saved;
    r->n_verts = saved_n;
}

/* Disc-plane corrections at the top of a cervical track, each kept only when the top
 * segment then passes the C2 test (sm_seg_c2_find: a small body, tall with the dens, C1's
 * anterior arch in front of the dens):
 * - C1 split from C2: the lateral atlanto-axial joints (and the dens's waist) give a faint
 *   valley at the top of the track, and when the track runs on through C1's ring the
 *   chain-end rule of the disc search (less than half a spacing of track beyond it) keeps
 *   it as a disc, leaving C2's body in the segment below and C1 with the upper dens as the
 *   top "vertebra" -- neither passes the C2 test. When no C2 was found and the topmost disc
 *   is far weaker than the others (< C2_JOINT_WEAK of their median strength; up to
 *   C2_JOINT_WEAK_CUT under a top fragment cut by the field), the segments are rebuilt
 *   without it. Under such a fragment a valley weaker than the median (< C2_JOINT_WEAK_TOP)
 *   is dropped too when the C2 test then puts C2's body top at it (within
 *   C2_JOINT_TOP_RATIO of the median height): a lordotic C2 on thick slices (C1-C6 FFS,
 *   2.57 mm) leaves a valley at the dens's waist over C2's body top, at
 *   0.68-0.85 x the median strength; a true C2/C3 disc lies a body height below C2's top.
 * - C2/C3 disc missed: a top segment more than C2_SPLIT_RATIO x as tall as the median of
 *   the three below holds more than C1+C2 (body and dens: ~1.5-2 x). The deepest valley of
 *   the mean HU around the body axis between 0.6 and 1.4 median heights above its bottom,
 *   with bone on both sides, becomes a disc (flagged inserted, on the axis normal). */
#define C2_JOINT_WEAK 0.25
#define C2_JOINT_WEAK_CUT 0.5
#define C2_JOINT_WEAK_TOP 1.0
#define C2_JOINT_TOP_RATIO 0.25
#define C2_SPLIT_RATIO 2.3
static bool c2_disc_fix(SmError **error, SegRun *r, SmStrList *notes)
{
    bool found = false;
    for (size_t s = 0; s < r->n_verts; s++)
        found |= r->verts[s].cervical_top;
    const SegVert *vtop = &r->verts[r->n_verts - 1];
    if (r->n_discs < 3 || r->n_discs >= 64 || vtop->verse < 0)
        return true;
    double sv[64];
    size_t nd = r->n_discs;
    for (size_t d = 0; d < nd; d++)
        sv[d] = r->discs[d].strength;
    qsort(sv, nd, sizeof sv[0], sm_cmp_double);
    double med = sv[nd / 2];
    const SegDisc top = r->discs[r->n_discs - 1];
    double hmed = NAN;
    SegVert *saved = r->verts;
    size_t saved_n = r->n_verts;
    /* a top segment cut by the field and shorter than half the median of the three below
     * is a fragment: the valley under it is scored against an upper flank the track end
     * cuts short, so it is tried up to C2_JOINT_WEAK_CUT (up to C2_JOINT_WEAK_TOP at the
     * body top the C2 test finds) */
    double weak = C2_JOINT_WEAK, weak_top = C2_JOINT_WEAK;
    if (vtop->partial && r->n_verts >= 4) {
        double hb[3];
        for (int q = 0; q < 3; q++)
            hb[q] = r->verts[r->n_verts - 2 - q].s_hi - r->verts[r->n_verts - 2 - q].s_lo;
        qsort(hb, 3, sizeof hb[0], sm_cmp_double);
        if (vtop->s_hi - vtop->s_lo < 0.5 * hb[1]) {
            weak = C2_JOINT_WEAK_CUT;
            weak_top = C2_JOINT_WEAK_TOP;
            hmed = hb[1];
        }
    }
    if (!found && r->n_discs >= 4 && top.strength < weak_top * med) {
        r->n_discs--;
        bool hit = false;
        bool ok = c2_rebuild(error, r, &hit);
        /* above C2_JOINT_WEAK_CUT: only a valley at the body top the C2 test finds */
        double top_off = NAN;
        for (size_t s = 0; ok && hit && s < r->n_verts; s++)
            if (r->verts[s].cervical_top)
                top_off = fabs(r->verts[s].c2_top_z - top.p[2]);
        if (ok && hit && top.strength >= weak * med && !(top_off <= C2_JOINT_TOP_RATIO * hmed))
            hit = false;
        if (ok && hit) {
            if (top.strength >= weak * med)
                sm_strlist_add(notes, "faint top disc (arc %.0f mm, strength %.2f against a "
                               "median of %.2f) under a fragment, %.1f mm from C2's body top: "
                               "not taken as a disc: the segment above it is C1 with the dens "
                               "of the C2 below", top.s, top.strength, med, top_off);
            else
                sm_strlist_add(notes, "faint top disc (arc %.0f mm, strength %.2f against a "
                               "median of %.2f) not taken as a disc: the segment above it is C1 "
                               "with the dens of the C2 below", top.s, top.strength, med);
            free(saved);
            return true;
        }
        free(r->verts);
        r->verts = saved;
        r->n_verts = saved_n;
        r->n_discs++;
        if (!ok)
            return false;
    }
    /* a top segment too tall for C1+C2 */
    double h[3];
    for (int q = 0; q < 3; q++)
        h[q] = r->verts[r->n_verts - 2 - q].s_hi - r->verts[r->n_verts - 2 - q].s_lo;
    qsort(h, 3, sizeof h[0], sm_cmp_double);
    double hm = h[1], s_lo = vtop->s_lo, s_hi = vtop->s_hi;
    if (!(hm > 0 && s_hi - s_lo > C2_SPLIT_RATIO * hm))
        return true;
    double best = INFINITY, sbest = NAN;
    for (double s = s_lo + 0.6 * hm; s <= s_lo + 1.4 * hm && s < s_hi; s += 0.5) {
        double v = axis_disc_mean(r, s, 5.0);
        if (v < best) {
            best = v;
            sbest = s;
        }
    }
    if (isnan(sbest))
        return true;
    double below, above;
    valley_flanks(r, sbest, hm, s_lo, s_hi, &below, &above);
    double contrast = 0.25 * (r->thr.hi - r->thr.soft);
    if (!(below - best >= contrast && above - best >= contrast && above >= r->thr.lo &&
          below >= r->thr.lo))
        return true;
    SegDisc *nd2 = malloc((r->n_discs + 1) * sizeof *nd2);
    if (!nd2) {
        sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
        return false;
    }
    memcpy(nd2, r->discs, r->n_discs * sizeof *nd2);
    SegDisc *dn = &nd2[r->n_discs];
    memset(dn, 0, sizeof *dn);
    sm_seg_axis_at(&r->grid, &r->frame, sbest, dn->p, dn->n);
    dn->s = sbest;
    dn->half_thick = 2.0;
    dn->strength = 0;
    dn->inserted = true;
    SegDisc *saved_discs = r->discs;
    r->discs = nd2;
    r->n_discs++;
    bool hit = false;
    bool ok = c2_rebuild(error, r, &hit);
    if (ok && hit) {
        sm_strlist_add(notes, "top segment %.0f mm tall against a median of %.0f mm (more than "
                       "C1+C2): disc inserted at its valley (arc %.0f mm, %.0f HU between %.0f "
                       "and %.0f HU); C2 above it", s_hi - s_lo, hm, sbest, best, below, above);
        free(saved);
        free(saved_discs);
        return true;
    }
    disc_trial_undo(r, nd2, saved_discs, saved, saved_n);
    return ok;
}

/* An end segment of the track (not C1+C2, not the sacrum) more than END_SPLIT_RATIO x as
 * tall as the median of the three next to it holds a second vertebra whose disc the chain
 * missed: at the field's end the disc profile stops with the track, and a valley next to
 * it has no flank beyond (C3-T1 phantom: the C3/C4 valley, 132 HU between 411 and 218 HU,
 * scored 17 against 186 for C4/C5, and C3 + C4 became one "C4"). As for a top segment too
 * tall for C1+C2 (c2_disc_fix): the deepest point of the mean working-grid HU within 5 mm
 * of the axis between 0.6 and 1.4 median heights from the segment's inner disc, with bone
 * on both sides within half a median height, becomes an inserted disc (noted). A disc thinner
 * than the slices reads as a bright band instead (its two end plates averaged with it; C1-T2
 * phantom, 2.96 mm slices: T1/T2 387 HU between marrow at 215 and 207 HU, while T1's own
 * marrow, 211 HU between that band and its upper end plate, passed as a valley): the
 * brightest point in the same range, at least the bone seed threshold with marrow (bone,
 * the same contrast darker) on both sides within half a median height, is tried first. */
#define END_SPLIT_RATIO 1.5
/* Insertions at one end: the new end segment is measured again, and a second missed disc
 * split off in turn (97531/29, T3-T10: the chain ended at T5/T6, and after T4/T5 was
 * inserted the top T3 + T4 segment was still 47 mm against a median of 28 mm). */
#define END_SPLIT_MAX 3
static bool end_disc_fix_one(SmError **error, SegRun *r, SmStrList *notes, int e, bool *done)
{
    *done = false;
    if (r->n_verts < 4 || r->n_discs >= 64)
        return true;
    const size_t si = e == 0 ? r->n_verts - 1 : 0;
    const SegVert *vt = &r->verts[si];
    if (vt->verse < 0 || vt->cervical_top || vt->sacral)
        return true;
    double h[3];
    for (int q = 0; q < 3; q++) {
        const SegVert *vq = &r->verts[e == 0 ? r->n_verts - 2 - (size_t)q : 1 + (size_t)q];
        h[q] = vq->s_hi - vq->s_lo;
    }
    qsort(h, 3, sizeof h[0], sm_cmp_double);
    double hm = h[1], s_lo = vt->s_lo, s_hi = vt->s_hi;
    if (!(hm > 0 && s_hi - s_lo > END_SPLIT_RATIO * hm))
        return true;
    const double dir = e == 0 ? 1.0 : -1.0, inner = e == 0 ? s_lo : s_hi;
    double best = INFINITY, sbest = NAN;
    for (double d = 0.6 * hm; d <= 1.4 * hm; d += 0.5) {
        double sq = inner + dir * d;
        if (sq <= s_lo || sq >= s_hi)
            break;
        double v = axis_disc_mean(r, sq, 5.0);
        if (v < best) {
            best = v;
            sbest = sq;
        }
    }
    if (isnan(sbest))
        return true;
    double below, above;
    valley_flanks(r, sbest, hm, s_lo, s_hi, &below, &above);
    double contrast = 0.25 * (r->thr.hi - r->thr.soft);
    bool band = false;
    {
        /* a disc thinner than the slices reads as a bright band (the two end plates
         * averaged with it) between the two bodies' marrow: the brightest point, as
         * dense as the bone seed, with marrow (bone, >= contrast darker) on both sides
         * within half a median height */
        double peak = -INFINITY, speak = NAN;
        for (double d = 0.6 * hm; d <= 1.4 * hm; d += 0.5) {
            double sq = inner + dir * d;
            if (sq <= s_lo || sq >= s_hi)
                break;
            double v = axis_disc_mean(r, sq, 5.0);
            if (v > peak) {
                peak = v;
                speak = sq;
            }
        }
        bool cand = !isnan(speak) && peak >= r->thr.hi;
        double lo_b = INFINITY, lo_a = INFINITY;
        for (double sq = speak - 0.5 * hm; cand && sq <= speak + 0.5 * hm; sq += 0.5) {
            if (sq < s_lo || sq > s_hi)
                continue;
            double v = axis_disc_mean(r, sq, 5.0);
            if (isnan(v))
                continue;
            if (sq < speak && v < lo_b)
                lo_b = v;
            if (sq > speak && v < lo_a)
                lo_a = v;
        }
        if (cand && peak - lo_b >= contrast && peak - lo_a >= contrast &&
            lo_b >= r->thr.lo && lo_a >= r->thr.lo) {
            band = true;
            best = peak;
            sbest = speak;
            below = lo_b;
            above = lo_a;
        }
    }
    bool resolved = false; /* a band whose disc the CT resolves beside it */
    if (band) {
        /* a disc a little thicker than the slices: on the working grid its darker
         * slice merges with the end plates into one band, while the CT resolves it
         * (an end plate, not the disc, is then the band's peak: 55557-like thoracic
         * discs of 3-4 mm on 2.4 mm slices, 90 HU between plates of 850 and 350 HU).
         * Within 5 mm of the peak, the darkest point of the CT profile about the axis
         * (trilinear, radius 5 mm) is the disc when it is below the grow threshold (or,
         * partial-volumed with its plates on ~2 mm slices, at least half the contrast
         * below the marrow on both sides: 55557/1, T3/T4 at 143 HU against a grow
         * threshold of 135 and marrow at 200 HU) and the profile rises again beyond it,
         * away from the peak, by the contrast within 4 mm (the other end plate). Next to
         * a true thin-disc band the darkest point is marrow, or fatty marrow that stays
         * dark for the body's height (no end plate rises beyond it): the peak stays. */
        double cmin = INFINITY, scmin = NAN;
        for (double sq = sbest - 5.0; sq <= sbest + 5.0; sq += 0.25) {
            if (sq <= s_lo || sq >= s_hi)
                continue;
            double v = axis_ct_mean(r, sq, 5.0);
            if (v < cmin) {
                cmin = v;
                scmin = sq;
            }
        }
        /* the other end plate beyond it: the profile rises again, away from the peak */
        double far = -INFINITY;
        for (double sq = scmin; !isnan(scmin) && fabs(sq - scmin) <= 4.0;
             sq += scmin > sbest ? 0.25 : -0.25) {
            if (sq <= s_lo || sq >= s_hi)
                break;
            double v = axis_ct_mean(r, sq, 5.0);
            if (v > far)
                far = v;
        }
        /* the marrow on each side, on the CT, clear of the band (from 6 mm to half a
         * median height off the peak; the grid's flanks can be the half-resolved disc) */
        double mar[2] = {NAN, NAN};
        for (int side = 0; side < 2; side++) {
            double mv[64];
            int nm = 0;
            for (double o = 6.0; o <= 0.5 * hm && nm < 64; o += 0.5) {
                double sq = sbest + (side ? o : -o);
                if (sq <= s_lo || sq >= s_hi)
                    continue;
                double v = axis_ct_mean(r, sq, 5.0);
                if (isfinite(v))
                    mv[nm++] = v;
            }
            if (nm > 0)
                mar[side] = sm_median_inplace(mv, (size_t)nm);
        }
        double marrow = fmin(isnan(mar[0]) ? below : mar[0], isnan(mar[1]) ? above : mar[1]);
        if (!isnan(scmin) &&
            (cmin < r->thr.lo || cmin < marrow - 0.5 * contrast) &&
            far - cmin >= contrast) {
            resolved = true;
            sbest = scmin;
            best = cmin;
        }
    }
    if (!band && !(below - best >= contrast && above - best >= contrast &&
                   above >= r->thr.lo && below >= r->thr.lo))
        return true;
    SegDisc *nd2 = malloc((r->n_discs + 1) * sizeof *nd2);
    if (!nd2) {
        sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
        return false;
    }
    SegDisc dn;
    memset(&dn, 0, sizeof dn);
    sm_seg_axis_at(&r->grid, &r->frame, sbest, dn.p, dn.n);
    dn.s = sbest;
    dn.half_thick = 2.0;
    dn.strength = 0;
    dn.inserted = true;
    if (e == 0) {
        memcpy(nd2, r->discs, r->n_discs * sizeof *nd2);
        nd2[r->n_discs] = dn;
    } else {
        nd2[0] = dn;
        memcpy(nd2 + 1, r->discs, r->n_discs * sizeof *nd2);
    }
    SegDisc *saved_discs = r->discs;
    SegVert *saved = r->verts;
    size_t saved_n = r->n_verts;
    size_t sacral_before = 0, sacral_after = 0;
    bool c2_before = false;
    for (size_t q = 0; q < saved_n; q++) {
        sacral_before += saved[q].sacral;
        c2_before |= saved[q].cervical_top;
    }
    r->discs = nd2;
    r->n_discs++;
    bool hit = false;
    bool ok = c2_rebuild(error, r, &hit);
    for (size_t q = 0; ok && q < r->n_verts; q++)
        sacral_after += r->verts[q].sacral;
    /* kept only when the anchors' tests find what they found before: a split-off
     * short end segment with the first ribs' heads in its attachment shell passed the
     * sacrum test (a C1-T2 field named from a false sacrum) */
    if (!ok || hit != c2_before || sacral_after > sacral_before) {
        disc_trial_undo(r, nd2, saved_discs, saved, saved_n);
        if (!ok)
            return false;
        sm_strlist_add(notes, "%s end segment %.0f mm tall against a median of %.0f mm: "
                       "a disc at its valley (arc %.0f mm) would change the sacrum or C2 "
                       "test; not inserted", e == 0 ? "top" : "bottom", s_hi - s_lo, hm,
                       sbest);
        return true;
    }
    sm_strlist_add(notes, "%s end segment %.0f mm tall against a median of %.0f mm: disc "
                   "inserted at its %s (arc %.0f mm, %.0f HU between %.0f and %.0f HU)",
                   e == 0 ? "top" : "bottom", s_hi - s_lo, hm,
                   resolved ? "end-plate band's disc on the CT"
                   : band   ? "end-plate band"
                            : "valley",
                   sbest, best, below, above);
    for (size_t q = 0; q < saved_n; q++) {
        sm_strlist_clear(&saved[q].anchors);
        sm_strlist_clear(&saved[q].reasons);
    }
    free(saved);
    free(saved_discs);
    *done = true;
    return true;
}

static bool end_disc_fix(SmError **error, SegRun *r, SmStrList *notes)
{
    for (int e = 0; e < 2; e++) /* 0: the top end, 1: the bottom end */
        for (int rep = 0; rep < END_SPLIT_MAX; rep++) {
            bool done = false;
            if (!end_disc_fix_one(error, r, notes, e, &done))
                return false;
            if (!done)
                break;
        }
    return true;
}

bool sm_seg_spine_run(SmError **error, const SmVolume *ct, const SmSegOptions *opt,
                      SmSpineSeg **out)
{
    if (!out) {
        sm_error_set(error, SM_ERR_USAGE, "sm_seg_spine_run: out is NULL");
        return false;
    }
    if (!check_input(error, ct))
        return false;
    if (opt && opt->has_anchor && !sm_seg_level_from_name(opt->anchor_level)) {
        sm_error_set(error, SM_ERR_USAGE,
                     "anchor level \"%s\" is not a vertebra name (expected C1..C7, T1..T13, "
                     "L1..L6 or S1)", opt->anchor_level ? opt->anchor_level : "(null)");
        return false;
    }
    int saved_threads = sm_omp_threads();
    if (opt && opt->threads > 0)
        sm_omp_set_threads(opt->threads);
    SmVolume *tmp16 = NULL;
    SegRun r;
    memset(&r, 0, sizeof r);
    SmSpineSeg *seg = calloc(1, sizeof *seg);
    bool ok = seg != NULL;
    if (!ok)
        sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
    if (ok && ct->type != SM_VOXEL_I16) {
        tmp16 = sm_volume_to_i16(error, ct);
        ok = tmp16 != NULL;
    }
    r.ct = tmp16 ? tmp16 : ct;
    if (ok)
        ok = run_front(error, &r, seg);
    if (ok)
        ok = sm_seg_discs_find(error, r.ct, &r.grid, &r.frame, &r.thr, &r.discs, &r.n_discs,
                               &seg->notes);
    r.t[4] = now_s();
    if (ok)
        ok = build_segments(error, &r);
    if (ok) {
        r.rib = malloc(r.grid.n);
        r.vmask = malloc(r.grid.n);
        if (!r.rib || !r.vmask) {
            sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
            ok = false;
        }
    }
    if (ok)
        ok = sm_seg_sacrum_find(error, &r.grid, r.filled, &r.frame, r.verts, r.n_verts);
    if (ok)
        sm_seg_c2_find(&r.grid, &r.thr, &r.frame, r.verts, r.n_verts);
    if (ok)
        ok = c2_disc_fix(error, &r, &seg->notes);
    if (ok)
        ok = end_disc_fix(error, &r, &seg->notes);
    /* canal width against body width at mid-height (the sacrum pick, labels.c: the
     * unanchored guess) */
    for (size_t s = 0; ok && s < r.n_verts; s++) {
        SegSlice cs;
        SegVert *vt = &r.verts[s];
        vt->canal_to_body = NAN;
        if (sm_seg_frame_at(&r.frame, &r.grid, vt->centre[2], &cs) && cs.rx > 0 &&
            cs.half_width > 0)
            vt->canal_to_body = cs.rx / cs.half_width;
    }
    double sacrum_top_z = NAN;
    if (ok) {
        long s1 = sm_seg_sacrum_pick(r.verts, r.n_verts, &seg->notes);
        if (s1 >= 0 && r.verts[s1].upper_disc >= 0)
            sacrum_top_z = r.discs[r.verts[s1].upper_disc].p[2];
    }
    if (ok)
        ok = sm_seg_ribs_find(error, &r.grid, r.bone, &r.frame, r.discs, r.n_discs, r.verts,
                              r.n_verts, sacrum_top_z, r.rib, &seg->notes);
    if (ok) {
        /* the vertebra outline and sub-regions use the canal as seen on each slice */
        r.frame_sub = r.frame;
        r.frame_sub.s = malloc(r.frame.nz * sizeof *r.frame_sub.s);
        if (!r.frame_sub.s) {
            sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
            ok = false;
        } else {
            memcpy(r.frame_sub.s, r.frame.s, r.frame.nz * sizeof *r.frame_sub.s);
            size_t moved = sm_seg_canal_refine(&r.grid, r.thr.edge, &r.frame_sub);
            if (moved)
                sm_strlist_add(&seg->notes, "canal front moved back to the posterior body wall on %zu "
                               "slices (vertebra outline)", moved);
        }
    }
    if (ok)
        ok = sm_seg_vertebra_mask(error, &r.grid, r.bone, r.filled, &r.frame_sub, r.rib, r.vmask);
    if (ok) {
        /* deep interior (one working voxel inside the surface): marrow of any density */
        r.vin = malloc(r.grid.n);
        if (!r.vin) {
            sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
            ok = false;
        } else {
            memcpy(r.vin, r.vmask, r.grid.n);
            const int r1[3] = {1, 1, 1};
            ok = sm_seg_box_morph(error, r.vin, r.grid.dims, r1, true);
        }
    }
    r.t[5] = now_s();
    /* rib heads beside bodies the rib search found rib-free (labels.c: such a vertebra
     * is no C7 above T1), as in native_pass */
    for (size_t s = 0; ok && s < r.n_verts; s++) {
        SegVert *vt = &r.verts[s];
        vt->rib_heads = false;
        if (vt->rib_left || vt->rib_right || vt->first_rib || vt->cervical_top || vt->sacral)
            continue;
        int nh[2];
        vt->rib_heads = rib_heads_beside(&r, s, nh);
    }
    if (ok)
        ok = sm_seg_levels_assign(error, r.verts, r.n_verts, opt, &r.grid, &seg->anchors,
                                  &seg->notes);
    for (size_t s = 0; ok && s < r.n_discs; s++)
        sm_strlist_add(&seg->notes, "disc %zu: arc %.0f mm, z %.1f mm, half thickness %.1f mm, normal (%.2f %.2f %.2f), strength %.2f%s; CT disc %.0f HU, end plates %.0f (below) %.0f (above) HU", s,
                       r.discs[s].s, r.discs[s].p[2], r.discs[s].half_thick, r.discs[s].n[0], r.discs[s].n[1], r.discs[s].n[2], r.discs[s].strength,
                       r.discs[s].inserted ? " (inserted)" : "", r.discs[s].plates_hu ? r.discs[s].disc_hu : NAN,
                       r.discs[s].plates_hu ? r.discs[s].plate_hu[0] : NAN, r.discs[s].plates_hu ? r.discs[s].plate_hu[1] : NAN);
    for (size_t s = 0; ok && s < r.n_verts; s++) {
        const SegVert *vt = &r.verts[s];
        sm_strlist_add(&seg->notes,
                       "segment %zu: arc %.0f-%.0f mm, z %.1f, spread %.0f %s%s%s%s%s rib reach %.0f mm, %d rib crossings -> %s",
                       s, vt->s_lo, vt->s_hi, vt->centre[2], vt->sacral_spread_mm, vt->sacral ? "sacral " : "", vt->cervical_top ? "C1+C2 " : "",
                       vt->rib_left ? "rib-L " : "", vt->rib_right ? "rib-R " : "",
                       vt->partial ? "partial" : "", vt->rib_reach_mm, vt->rib_runs,
                       vt->verse > 0 ? sm_seg_level_name(vt->verse) : "-");
    }
    LabelAcc acc[29];
    memset(acc, 0, sizeof acc);
    double t_native = now_s();
    if (ok)
        ok = native_pass(error, &r, NULL, seg, acc);
    if (ok)
        ok = trim_plates(error, &r, seg, acc);
    if (ok)
        sm_strlist_add(&seg->notes,
                       "timing: working grid %.2f s, masks %.2f s, canal %.2f s, discs %.2f s, "
                       "anchors and vertebra mask %.2f s, CT-grid labels %.2f s",
                       r.t[1] - r.t[0], r.t[2] - r.t[1], r.t[3] - r.t[2], r.t[4] - r.t[3],
                       t_native - r.t[4], now_s() - t_native);
    if (ok)
        ok = build_records(error, &r, seg, acc, false);
    if (ok)
        ok = canal_points(error, &r, seg);
    if (ok)
        sm_strlist_add(&seg->notes, "%zu discs, %zu vertebrae labelled, canal tracked over %.0f mm",
                       r.n_discs, seg->n_vertebrae,
                       (double)(r.frame.k1 - r.frame.k0) * r.grid.g);
    run_free(&r);
    sm_volume_destroy(tmp16);
    sm_omp_set_threads(saved_threads);
    if (!ok) {
        sm_seg_spine_destroy(seg);
        return false;
    }
    *out = seg;
    return true;
}

bool sm_seg_from_labels(SmError **error, const SmVolume *ct, const SmVolume *verse_labels,
                        const SmSegOptions *opt, SmSpineSeg **out)
{
    if (!out || !verse_labels) {
        sm_error_set(error, SM_ERR_USAGE, "sm_seg_from_labels: labels or out is NULL");
        return false;
    }
    if (!check_input(error, ct))
        return false;
    if (verse_labels->type != SM_VOXEL_U8 && verse_labels->type != SM_VOXEL_U16) {
        sm_error_set(error, SM_ERR_USAGE, "imported labels must be an unsigned integer map "
                     "(got %s)", sm_voxel_type_name(verse_labels->type));
        return false;
    }
    if (!sm_volume_same_grid(ct, verse_labels, 0.5)) {
        sm_error_set(error, SM_ERR_GEOMETRY,
                     "imported labels are not on the CT grid (dims %zu x %zu x %zu vs %zu x %zu "
                     "x %zu, or a different affine); resample them first",
                     verse_labels->dims[0], verse_labels->dims[1], verse_labels->dims[2],
                     ct->dims[0], ct->dims[1], ct->dims[2]);
        return false;
    }
    int saved_threads = sm_omp_threads();
    if (opt && opt->threads > 0)
        sm_omp_set_threads(opt->threads);
    SmVolume *tmp16 = NULL;
    SegRun r;
    memset(&r, 0, sizeof r);
    SmSpineSeg *seg = calloc(1, sizeof *seg);
    bool ok = seg != NULL;
    if (!ok)
        sm_error_set(error, SM_ERR_NOMEM, "spine segmentation: out of memory");
    if (ok && ct->type != SM_VOXEL_I16) {
        tmp16 = sm_volume_to_i16(error, ct);
        ok = tmp16 != NULL;
    }
    r.ct = tmp16 ? tmp16 : ct;
    if (ok)
        ok = run_front(error, &r, seg);
    LabelAcc acc[29];
    memset(acc, 0, sizeof acc);
    if (ok) {
        sm_strlist_add(&seg->anchors, "imported labels");
        ok = native_pass(error, &r, verse_labels, seg, acc);
    }
    if (ok)
        ok = build_records(error, &r, seg, acc, true);
    if (ok)
        ok = canal_points(error, &r, seg);
    run_free(&r);
    sm_volume_destroy(tmp16);
    sm_omp_set_threads(saved_threads);
    if (!ok) {
        sm_seg_spine_destroy(seg);
        return false;
    }
    *out = seg;
    return true;
}
