/* Ribs and pelvis: bone lateral to the column core that reaches far from the canal (without
 * enhanced organs: thick lateral bone far from cortex). Rib attachments (the rib passing the
 * transverse-process tip) are assigned to the segment between disc planes; components
 * reaching below the sacral promontory are pelvis next to the sacrum, but where they cross
 * the shell higher up, a rib joined to the ilium. */
#include "segment_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORE_HALF_MM 36.0   /* lateral half-width of the column core */
#define SHELL_MM 8.0        /* attachment shell just outside the core */
#define RIB_REACH_MM 55.0   /* lateral reach of a rib of >= ~4 cm (VerSe T12 rule) */
#define STUMP_REACH_MM 46.0 /* shorter lateral bone: stump rib or long process */
#define REMOVE_REACH_MM 65.0 /* removed from the vertebra mask: beyond any transverse process */
/* The first rib is short and tightly curved (the thoracic inlet is narrow): its reach from
 * the canal is at most this fraction of the second rib's (anatomy ~0.6-0.75; phantom 0.56,
 * LIDC chest CT 0.73; the second rib against the third: 0.82-0.89). */
#define FIRST_RIB_RATIO 0.8
/* The first rib's curve (used when the ratio test has nothing to compare with: the second
 * rib leaves a narrow field of view). Its tubercle lies beside the canal and its shaft turns
 * forward at once, beside the vertebral body; the second and lower ribs run back and out to
 * their angles first. Within RIB_REACH_MM of the canal axis (in the vertebra's own plane,
 * so a kyphotic or tilted column does not move it) the first rib reaches in front of the
 * canal centre: LIDC chest CT cropped to 124-160 mm around the spine 12-24 mm per side
 * (means 14.5-17.9, 21-28 mm more than the second ribs), the top ribs of the same scan
 * cropped to start at T1's lower part, T2 or T3 -15 to -7 mm (means <= -7, within 2 mm of
 * the ribs below); phantom first ribs means 15-41 mm (18-51 more than the second ribs),
 * the other top rib pairs of ten sweeps means <= 3 mm (contrast <= 6) but one (19 mm) whose
 * canal track wandered at the window's top (6.5 more than the ribs below). Both sides are
 * averaged (an axial rotation moves one side forward and the other back by as much). */
#define FIRST_RIB_FRONT_MM 10.0    /* mean front of the two top ribs at least this */
#define FIRST_RIB_CONTRAST_MM 15.0 /* and this much more than the mean of the ribs below */
#define FRONT_LATERAL_MM 20.0      /* only bone this far beside the midline counts */
/* The reach ratio's first rib must not lack the curve: mean front below RATIO_FRONT_MIN_MM
 * or mean excess over the ribs below under RATIO_CONTRAST_MIN_MM vetoes it. Fourteen
 * sweeps: every top rib that is no first rib reads front <= 6.7 mm and excess <= 5.9 (a
 * second rib passing the ratio at 0.798: -1.7 / 3.2); the first ribs the ratio found
 * mean front >= 6.3 and excess >= 8.1 (one side 4.7 / 8.3 on a rotated case, averaged with
 * the other side 23 / 27); LIDC chest CT 14.7 / 21.6 (per side 12.6-16.8 / 18.6-24.6). */
#define RATIO_FRONT_MIN_MM 3.0
#define RATIO_CONTRAST_MIN_MM 7.0
/* Every rib from the second down articulates with its vertebra's transverse process behind
 * the body and runs back to its angle before it turns forward: its lateral component
 * reaches behind the canal centre (the thoracic windows of six sweeps: every crossing
 * below a top one 6-13 mm behind it but one, -20; top first ribs -12 to 5). A crossing
 * whose component lies wholly FRONT_ONLY_MM or more in front of the canal centre is bone
 * beside the body with no course behind it (a rib's forward part, a calcified vessel
 * wall): never "the rib below" the top one that the first-rib rules compare with (a T1-T6
 * phantom with a 16 deg scoliosis: the left first rib's front end, 20 mm in front of the
 * canal on the right, 56 mm from it, lay between the right first rib, 73 mm, and the
 * right second rib, 114 mm). */
#define FRONT_ONLY_MM 10.0
#define CORTEX_NEAR_MM 4.0  /* lateral bone this close to seed-dense bone is bone */
#define THICK_MM 14.0       /* lateral bone this thick in-plane and far from cortex: an organ */

/* One rib crossing of the attachment shell (a run of slices on one side). */
typedef struct RibRun {
    int side;          /* 0: patient left (+x), 1: right */
    long ktop;         /* top slice of the run */
    long kc;           /* its shell-weighted mean slice */
    double reach;      /* reach of its component */
    bool cut;          /* its component touches the edge of the field of view (top, bottom
                        * or side): its reach is a lower bound */
    size_t seg;        /* segment holding the run's top */
    uint32_t comp;     /* its component */
    double p[3];       /* the point assigned to the segment (beside the canal centre) */
    double dy;         /* shell-weighted mean AP offset of its voxels from the canal (mm) */
} RibRun;

/* The segment of a crossing placed at its own AP position (its voxels' shell-weighted mean
 * offset, where that lies in front of the canal centre): a first rib crosses the shell
 * beside the body, where a tilted disc plane lies lower than at the canal. */
static long own_ap_segment(const RibRun *run, const SegDisc *discs, size_t n_discs,
                           const SegFrame *frame)
{
    double q[3] = {run->p[0], run->p[1] + fmin(run->dy, 0.0), run->p[2]};
    return (long)sm_seg_segment_of_beside(discs, n_discs, q, frame->body_halfw_med);
}

bool sm_seg_first_rib_test(double top_reach, double next_reach, bool top_cut)
{
    return !top_cut && top_reach >= STUMP_REACH_MM && next_reach >= RIB_REACH_MM &&
           top_reach <= FIRST_RIB_RATIO * next_reach;
}

bool sm_seg_rib_head_gap(const SmVolume *ct, const double inv[4][4], double step,
                         const double p[3], double bx, double hw, double edge, double bone_lo,
                         bool at_disc)
{
    if (!(hw > 0) || !(step > 0) || fabs(p[0] - bx) <= hw)
        return false;
    /* walk along patient x (LPS) toward the body, whatever the image orientation */
    double dir = p[0] > bx ? -1.0 : 1.0;
    long n4 = lround(4.0 / step);
    for (long q = 1;; q++) {
        double x = p[0] + dir * step * (double)q;
        if (fabs(x - bx) <= hw)
            return false;
        double v = sm_seg_ct_nearest(ct, inv, x, p[1], p[2]);
        if (isnan(v))
            return false;
        if (v >= edge)
            continue;
        if (at_disc)
            return true; /* beside the disc space: a rib head, never vertebra */
        /* a joint, not low-density marrow: the body's cortex follows within 4 mm */
        for (long r = 1; r <= n4; r++) {
            double w = sm_seg_ct_nearest(ct, inv, x + dir * step * (double)r, p[1], p[2]);
            if (isnan(w))
                break;
            if (w >= bone_lo)
                return true;
        }
        return false;
    }
}

static int cmp_run_top(const void *a, const void *b)
{
    const RibRun *x = a, *y = b;
    if (x->side != y->side)
        return x->side - y->side;
    return (x->ktop < y->ktop) - (x->ktop > y->ktop); /* superior first */
}

typedef struct CompInfo {
    double reach;      /* max in-plane distance from the canal centre */
    double zmin;
    bool cut;          /* has a voxel next to the top or bottom of the field of view (or
                        * of the canal track's reach) */
    double side_sum;   /* sum of sign(dx) */
    size_t count;
    bool pelvic;       /* reaches below the sacral promontory */
    bool edge;         /* has a voxel at the in-plane edge of the field of view */
    double back;       /* largest offset of a voxel behind the canal centre of its slice */
} CompInfo;

/* The component of crossing r lies wholly in front of the canal (FRONT_ONLY_MM). */
static bool front_only(const CompInfo *ci, const RibRun *r)
{
    return ci[r->comp].back < -FRONT_ONLY_MM;
}

/* "The rib below" the top crossing runs[q0] of a side (n crossings from q0, top first): the
 * next crossing at least 8 mm lower, passing over bone wholly in front of the canal
 * (front_only; each one noted when notes is given); NULL when there is none. */
static const RibRun *rib_below(const SegGrid *grid, const RibRun *runs, size_t q0, size_t n,
                               const CompInfo *ci, const char *side, SmStrList *notes)
{
    if (n < 2)
        return NULL;
    const double g = grid->g;
    const long kmax = runs[q0].ktop - (long)lround(8.0 / g);
    for (size_t q = q0 + 1; q < q0 + n; q++) {
        if (runs[q].ktop > kmax)
            continue;
        if (!front_only(ci, &runs[q]))
            return &runs[q];
        if (notes)
            sm_strlist_add(notes, "ribs %s: the crossing at z %.0f mm (%.1f mm) lies wholly in "
                           "front of the canal (%.0f mm): not the rib below", side,
                           grid->origin[2] + g * (double)runs[q].ktop, runs[q].reach,
                           -ci[runs[q].comp].back);
    }
    return NULL;
}

/* Removes from the lateral mask `lat` the voxels that are neither within CORTEX_NEAR_MM of a
 * voxel of bone at or above the seed threshold (cortex; a rib's marrow is never far from it)
 * nor thin: in-plane THICK_MM across or more (an organ's bulk; its rim is covered by
 * dilating the eroded core further than it was eroded). A faint rib is thin and stays; a
 * kidney goes but for the layer touching the rib; so does the deep marrow of the ilium,
 * whose cortical shell stays connected. */
static bool lateral_clean(SmError **error, const SegGrid *grid, const uint8_t *bone,
                          double seed_hu, uint8_t *lat, size_t *n_removed)
{
    const size_t n = grid->n;
    uint8_t *near = malloc(n), *thick = malloc(n);
    if (!near || !thick) {
        free(near);
        free(thick);
        sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
        return false;
    }
    const int hi = (int)lround(seed_hu);
    const int16_t *hu = grid->hu;
#pragma omp parallel for default(none) shared(near, thick, bone, hu, lat) firstprivate(n, hi) \
    schedule(static)
    for (size_t v = 0; v < n; v++) {
        near[v] = bone[v] && hu[v] >= hi;
        thick[v] = lat[v];
    }
    int rn = (int)lround(CORTEX_NEAR_MM / grid->g);
    int re = (int)lround(0.5 * THICK_MM / grid->g);
    int rd = re + (int)lround(4.0 / grid->g);
    const int rnear[3] = {rn, rn, rn}, rer[3] = {re, re, 0}, rdr[3] = {rd, rd, 1};
    bool ok = sm_seg_box_morph(error, near, grid->dims, rnear, false) &&
              sm_seg_box_morph(error, thick, grid->dims, rer, true) &&
              sm_seg_box_morph(error, thick, grid->dims, rdr, false);
    size_t removed = 0;
    if (ok) {
#pragma omp parallel for default(none) shared(near, thick, lat) firstprivate(n) \
    reduction(+ : removed) schedule(static)
        for (size_t v = 0; v < n; v++)
            if (lat[v] && !near[v] && thick[v]) {
                lat[v] = 0;
                removed++;
            }
    }
    free(near);
    free(thick);
    *n_removed = removed;
    return ok;
}

/* Per component: max in-plane distance from the canal centre of its slice. Parallel over
 * slices into per-thread maxima, merged in thread order (a maximum: the same at any thread
 * count). Fails only when out of memory. */
static bool comp_reach(const SegGrid *grid, const SegFrame *frame, const uint32_t *lab,
                       uint32_t nc, double *reach)
{
    const size_t nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const double g = grid->g, ox = grid->origin[0], oy = grid->origin[1];
    const size_t k0 = frame->k0, k1 = frame->k1, per = (size_t)nc + 1;
    const SegSlice *fs = frame->s;
    int nt = sm_omp_threads();
    if (nt < 1)
        nt = 1;
    double *part = nt > 1 ? calloc((size_t)nt * per, sizeof *part) : reach;
    if (!part)
        return false;
#pragma omp parallel for default(none) shared(part, lab, fs) \
    firstprivate(nx, ny, nz, g, ox, oy, k0, k1, per, nt) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        double *pr = part + (nt > 1 ? (size_t)sm_seg_thread_id() * per : 0);
        const SegSlice *sl = &fs[k < k0 ? k0 : k > k1 ? k1 : k];
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                uint32_t c = lab[i + nx * (j + ny * k)];
                if (!c)
                    continue;
                double dx = ox + g * (double)i - sl->cx;
                double dy = oy + g * (double)j - sl->cy;
                double rr = sqrt(dx * dx + dy * dy);
                if (rr > pr[c])
                    pr[c] = rr;
            }
    }
    if (nt > 1) {
        for (int t = 0; t < nt; t++)
            for (size_t c = 0; c < per; c++)
                if (part[(size_t)t * per + c] > reach[c])
                    reach[c] = part[(size_t)t * per + c];
        free(part);
    }
    return true;
}

/* Working-grid voxel w lies beyond what the rib search sees: outside the scanned field, or
 * dense bone (>= seed) outside the bone mask (beyond the body mask's hull). */
static inline bool beyond_view(const int16_t *hu, const uint8_t *bone, size_t w, double seed)
{
    return hu[w] == SEG_OUTSIDE || (!bone[w] && hu[w] >= seed);
}

/* Per component of lab (1..nc): reach, lowest z, side, size and whether the field of view cuts it (see CompInfo). A component also counts as leaving the field where
 * an in-plane neighbour outside the bone mask reads at least the seed threshold: bone
 * goes on beyond the body mask, whose hull stops where lungs cut by a narrow field open
 * to its edge (body_mask.c): ribs running out through the lungs were cut at the hull,
 * 54 mm from the canal beside T4-T6 on a 136 mm field rotated 9.4 degrees (random sweep
 * 1190463/1), and T3 passed as the lowest rib-bearing vertebra. Parallel over slices into
 * per-thread records merged in thread order: maxima, minima, logical or and integer sums,
 * so the same at any thread count. ci[0..nc] must be initialised by the caller. Fails only
 * when out of memory. */
static bool comp_info_collect(const SegGrid *grid, const SegFrame *frame, const uint8_t *bone,
                              const uint32_t *lab, uint32_t nc, long margin, CompInfo *ci)
{
    const double seed = frame->bone_seed_hu > 0 ? frame->bone_seed_hu : INFINITY;
    const size_t nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const double g = grid->g, ox = grid->origin[0], oy = grid->origin[1], oz = grid->origin[2];
    const size_t k0 = frame->k0, k1 = frame->k1, per = (size_t)nc + 1;
    const SegSlice *fs = frame->s;
    const int16_t *hu = grid->hu;
    int nt = sm_omp_threads();
    if (nt < 1)
        nt = 1;
    CompInfo *part = ci;
    if (nt > 1) {
        part = malloc((size_t)nt * per * sizeof *part);
        if (!part)
            return false;
        for (int t = 0; t < nt; t++)
            memcpy(part + (size_t)t * per, ci, per * sizeof *part);
    }
#pragma omp parallel for default(none) shared(part, lab, fs, hu, bone) \
    firstprivate(nx, ny, nz, g, ox, oy, oz, k0, k1, per, nt, margin, seed) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        CompInfo *pc = part + (nt > 1 ? (size_t)sm_seg_thread_id() * per : 0);
        const SegSlice *sl = &fs[k < k0 ? k0 : k > k1 ? k1 : k];
        double z = oz + g * (double)k;
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                size_t v = i + nx * (j + ny * k);
                uint32_t c = lab[v];
                if (!c)
                    continue;
                CompInfo *q = &pc[c];
                double dx = ox + g * (double)i - sl->cx;
                double dy = oy + g * (double)j - sl->cy;
                /* in-plane distance from the canal: a short first rib curving forward to
                 * the manubrium reaches far, though not far laterally */
                double rr = sqrt(dx * dx + dy * dy);
                if (rr > q->reach) q->reach = rr;
                if (z < q->zmin) q->zmin = z;
                if (dy > q->back) q->back = dy;
                /* a rib leaving the field of view sideways, or the body mask (dense bone
                 * beyond the bone mask): its reach is a lower bound */
                if (i == 0 || j == 0 || i + 1 == nx || j + 1 == ny ||
                    beyond_view(hu, bone, v - 1, seed) || beyond_view(hu, bone, v + 1, seed) ||
                    beyond_view(hu, bone, v - nx, seed) || beyond_view(hu, bone, v + nx, seed))
                    q->edge = true;
                /* lateral bone is only looked at within `margin` of the canal track */
                if (k == 0 || k + 1 == nz || (long)k <= (long)k0 - margin ||
                    (long)k >= (long)k1 + margin ||
                    hu[v + nx * ny] == SEG_OUTSIDE || hu[v - nx * ny] == SEG_OUTSIDE)
                    q->cut = true;
                q->side_sum += dx > 0 ? 1 : -1;
                q->count++;
            }
    }
    if (nt > 1) {
        for (size_t c = 0; c < per; c++) {
            CompInfo m = part[c];
            for (int t = 1; t < nt; t++) {
                const CompInfo *q = &part[(size_t)t * per + c];
                m.reach = fmax(m.reach, q->reach);
                m.zmin = fmin(m.zmin, q->zmin);
                m.back = fmax(m.back, q->back);
                m.edge |= q->edge;
                m.cut |= q->cut;
                m.side_sum += q->side_sum - ci[c].side_sum; /* integer-valued: exact */
                m.count += q->count - ci[c].count;
            }
            ci[c] = m;
        }
        free(part);
    }
    return true;
}

/* How far in front of the canal centre component `comp` reaches near it, in the vertebra's
 * own plane: the canal centre at slice kc is the reference point and the normal of the
 * disc nearest to it the axis (the canal track's direction over +-10 mm there when there
 * is no disc; the track can wander at the end of the field, the disc planes hold). Among
 * the component's voxels within 40 mm of that plane, `radius` mm of the axis and
 * FRONT_LATERAL_MM or more beside the midline (a sternum joined to a rib by calcified
 * cartilage lies at the midline; the first rib lies beside the body), the largest
 * distance along the anterior direction (LPS -y made perpendicular to the axis);
 * -INFINITY when there is none. Serial (a maximum over one pass: the same at any thread
 * count). */
static double comp_front(const SegGrid *grid, const SegFrame *frame, const SegDisc *discs,
                         size_t n_discs, const uint32_t *lab, uint32_t comp, long kc,
                         double radius)
{
    const size_t nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const double g = grid->g;
    long k0 = (long)frame->k0, k1 = (long)frame->k1, dk = lround(10.0 / g);
    if (kc < k0) kc = k0;
    if (kc > k1) kc = k1;
    const SegSlice *sc = &frame->s[kc];
    const double c[3] = {sc->cx, sc->cy, grid->origin[2] + g * (double)kc};
    double t[3];
    size_t best = n_discs;
    for (size_t d = 0; d < n_discs; d++)
        if (best == n_discs || fabs(discs[d].p[2] - c[2]) < fabs(discs[best].p[2] - c[2]))
            best = d;
    if (best < n_discs) {
        for (int a = 0; a < 3; a++)
            t[a] = discs[best].n[a];
    } else {
        long ka = kc - dk < k0 ? k0 : kc - dk, kb = kc + dk > k1 ? k1 : kc + dk;
        const SegSlice *sa = &frame->s[ka], *sb = &frame->s[kb];
        t[0] = sb->cx - sa->cx;
        t[1] = sb->cy - sa->cy;
        t[2] = g * (double)(kb - ka);
    }
    double tn = sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
    if (!(tn > 0)) {
        t[0] = t[1] = 0;
        t[2] = tn = 1;
    }
    for (int a = 0; a < 3; a++)
        t[a] /= tn;
    /* anterior: -y without its component along the axis; lateral: x likewise */
    double an[3] = {t[1] * t[0], -1.0 + t[1] * t[1], t[1] * t[2]};
    double la[3] = {1.0 - t[0] * t[0], -t[0] * t[1], -t[0] * t[2]};
    double anl = sqrt(an[0] * an[0] + an[1] * an[1] + an[2] * an[2]);
    double lal = sqrt(la[0] * la[0] + la[1] * la[1] + la[2] * la[2]);
    for (int a = 0; a < 3; a++) {
        an[a] /= anl;
        la[a] /= lal;
    }
    double fmax = -INFINITY;
    for (size_t k = 0; k < nz; k++)
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                if (lab[i + nx * (j + ny * k)] != comp)
                    continue;
                double d[3] = {grid->origin[0] + g * (double)i - c[0],
                               grid->origin[1] + g * (double)j - c[1],
                               grid->origin[2] + g * (double)k - c[2]};
                double along = d[0] * t[0] + d[1] * t[1] + d[2] * t[2];
                double r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] - along * along;
                double lat = fabs(d[0] * la[0] + d[1] * la[1] + d[2] * la[2]);
                if (fabs(along) > 40.0 || r2 > radius * radius || lat < FRONT_LATERAL_MM)
                    continue;
                double f = d[0] * an[0] + d[1] * an[1] + d[2] * an[2];
                if (f > fmax)
                    fmax = f;
            }
    return fmax;
}

bool sm_seg_ribs_find(SmError **error, const SegGrid *grid, const uint8_t *bone,
                      const SegFrame *frame, const SegDisc *discs, size_t n_discs,
                      SegVert *verts, size_t n_verts, double sacrum_top_z, uint8_t *rib,
                      SmStrList *notes)
{
    const size_t nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const double g = grid->g;
    uint32_t *lab = malloc(grid->n * sizeof *lab);
    if (!lab) {
        sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
        return false;
    }
    long margin = (long)(10.0 / g);
    {
        const size_t k0 = frame->k0, k1 = frame->k1;
        const SegSlice *fs = frame->s;
        const double ox = grid->origin[0];
#pragma omp parallel for default(none) shared(rib, bone, fs) \
    firstprivate(nx, ny, nz, k0, k1, margin, ox, g) schedule(static)
        for (size_t k = 0; k < nz; k++) {
            const SegSlice *sl = NULL;
            if ((long)k >= (long)k0 - margin && (long)k <= (long)k1 + margin)
                sl = &fs[k < k0 ? k0 : k > k1 ? k1 : k];
            for (size_t j = 0; j < ny; j++)
                for (size_t i = 0; i < nx; i++) {
                    size_t v = i + nx * (j + ny * k);
                    rib[v] = 0;
                    if (!sl || !bone[v])
                        continue;
                    double dx = ox + g * (double)i - sl->cx;
                    if (fabs(dx) >= CORE_HALF_MM)
                        rib[v] = 1;
                }
        }
    }
    /* Lateral bone that is neither near cortex nor thin is not bone: an enhanced organ
     * (kidney, 150-250 HU with contrast) passes the grow threshold and is kept by the
     * hysteresis where it touches a rib; it then joined a 12th rib to the iliac crest, and
     * the rib was taken for pelvis (see lateral_clean). The uncleaned components still
     * decide what leaves the vertebra mask. */
    uint8_t *lat0 = NULL;
    uint32_t *lab0 = NULL;
    uint32_t nc0 = 0;
    size_t n_removed = 0;
    if (frame->bone_seed_hu > 0) {
        lat0 = malloc(grid->n);
        lab0 = malloc(grid->n * sizeof *lab0);
        if (!lat0 || !lab0) {
            free(lat0); free(lab0); free(lab);
            sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
            return false;
        }
        memcpy(lat0, rib, grid->n);
        if (!lateral_clean(error, grid, bone, frame->bone_seed_hu, rib, &n_removed) ||
            !sm_seg_components_label(error, lat0, grid->dims, 26, lab0, &nc0)) {
            free(lat0); free(lab0); free(lab);
            return false;
        }
        if (n_removed)
            sm_strlist_add(notes, "lateral bone: %.0f cm3 neither near cortex (>= %.0f HU) nor "
                           "thin left out of the rib search (enhanced organs)",
                           (double)n_removed * g * g * g / 1000.0, frame->bone_seed_hu);
    }
    uint32_t nc = 0;
    if (!sm_seg_components_label(error, rib, grid->dims, 26, lab, &nc)) {
        free(lat0); free(lab0); free(lab);
        return false;
    }
    CompInfo *ci = calloc((size_t)nc + 1, sizeof *ci);
    size_t *att = calloc(2 * (n_verts ? n_verts : 1), sizeof *att);
    if (!ci || !att) {
        free(ci);
        free(att);
        free(lab); free(lat0); free(lab0);
        sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
        return false;
    }
    for (uint32_t c = 0; c <= nc; c++) {
        ci[c].zmin = INFINITY;
        ci[c].back = -INFINITY;
    }
    if (!comp_info_collect(grid, frame, bone, lab, nc, margin, ci)) {
        free(ci);
        free(att);
        free(lab); free(lat0); free(lab0);
        sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
        return false;
    }
    /* Attachments of far-reaching, non-pelvic components: shell voxels just outside the
     * core near the canal's AP level, counted per slice. One component may hold several
     * ribs (joined laterally), so its shell voxels are split into runs along z (one run per
     * rib crossing the shell). A rib descends as it runs laterally, so each run is placed
     * at its top (near the costotransverse joint) and assigned to one segment. */
    uint32_t *fid = calloc((size_t)nc + 1, sizeof *fid);
    uint8_t *crossing = calloc((size_t)nc + 1, 1); /* component crosses the shell */
    if (!fid || !crossing) {
        free(fid); free(crossing); free(ci); free(att); free(lab); free(lat0); free(lab0);
        sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
        return false;
    }
    /* Pelvic bone is only plausible next to the sacrum: where a pelvic component crosses
     * the shell two or more segments above the sacrum (above L5's neighbour, the iliac
     * crest's level), that crossing is a rib joined to the ilium (a low 12th rib resting
     * on the crest in a collapsed, kyphotic spine), counted as any rib crossing. */
    size_t seg_pelvis_max = 0; /* pelvic crossings below this segment are pelvis */
    if (!isnan(sacrum_top_z)) {
        /* the segment just above the sacrum's upper disc (the disc's centre z is
         * sacrum_top_z), 2 mm along its normal */
        double p[3] = {NAN, NAN, sacrum_top_z + 2.0};
        for (size_t d = 0; d < n_discs; d++)
            if (discs[d].p[2] == sacrum_top_z)
                for (int a = 0; a < 3; a++)
                    p[a] = discs[d].p[a] + 2.0 * discs[d].n[a];
        if (isnan(p[0])) { /* not one of the discs: the canal track at that height */
            long ks = lround((sacrum_top_z - grid->origin[2]) / g);
            if (ks < (long)frame->k0) ks = (long)frame->k0;
            if (ks > (long)frame->k1) ks = (long)frame->k1;
            p[0] = frame->s[ks].cx;
            p[1] = frame->s[ks].cy;
        }
        seg_pelvis_max = sm_seg_segment_of(discs, n_discs, p) + 2;
    }
    uint32_t nf = 0;
    for (uint32_t c = 1; c <= nc; c++) {
        ci[c].pelvic = !isnan(sacrum_top_z) && ci[c].zmin < sacrum_top_z - 10.0;
        /* a component cut by the field of view may be a rib that leaves it: kept, so that
         * it cannot make its vertebra look rib-free */
        bool cut_rib = (ci[c].cut || ci[c].edge) && ci[c].reach >= CORE_HALF_MM + SHELL_MM;
        if (ci[c].reach >= STUMP_REACH_MM || cut_rib)
            fid[c] = ++nf;
    }
    /* Pelvic components crossing the attachment shell of a segment above the sacrum: a
     * lumbar transverse process fused to the sacral ala (sacralisation) joins the pelvis
     * there; a free transverse process stays a separate, short component. */
    for (size_t s = 0; s < n_verts; s++)
        verts[s].pelvis_join_mm3[0] = verts[s].pelvis_join_mm3[1] = 0;
    double *pz = !isnan(sacrum_top_z) ? malloc(4 * (n_verts ? n_verts : 1) * sizeof *pz) : NULL;
    if (pz) {
        for (size_t s = 0; s < 2 * n_verts; s++) {
            pz[2 * s] = INFINITY;
            pz[2 * s + 1] = -INFINITY;
        }
        for (size_t k = frame->k0; k <= frame->k1; k++) {
            const SegSlice *sl = &frame->s[k];
            double z = grid->origin[2] + g * (double)k;
            if (z < sacrum_top_z - 20.0)
                continue;
            for (size_t j = 0; j < ny; j++)
                for (size_t i = 0; i < nx; i++) {
                    uint32_t c = lab[seg_idx(grid->dims, i, j, k)];
                    if (!c || ci[c].zmin >= sacrum_top_z - 10.0)
                        continue;
                    double dx = grid->origin[0] + g * (double)i - sl->cx;
                    double dy = grid->origin[1] + g * (double)j - sl->cy;
                    if (fabs(dx) >= CORE_HALF_MM + SHELL_MM || dy < -30.0 || dy > 45.0)
                        continue;
                    double p[3] = {grid->origin[0] + g * (double)i, grid->origin[1] + g * (double)j, z};
                    size_t seg = sm_seg_segment_of(discs, n_discs, p);
                    if (seg >= n_verts || seg >= seg_pelvis_max) /* higher up: a rib */
                        continue;
                    int sd = dx > 0 ? 0 : 1;
                    verts[seg].pelvis_join_mm3[sd] += g * g * g;
                    size_t q = 2 * (2 * seg + (size_t)sd);
                    if (z < pz[q]) pz[q] = z;
                    if (z > pz[q + 1]) pz[q + 1] = z;
                }
        }
        /* a fused process is a bar over much of the vertebra's height; the top of an ala
         * cut by a tilted disc plane is a few mm tall: only >= 12 mm of height counts */
        for (size_t s = 0; s < n_verts; s++)
            for (int sd = 0; sd < 2; sd++) {
                double v = verts[s].pelvis_join_mm3[sd];
                if (v <= 0)
                    continue;
                double h = pz[2 * (2 * s + (size_t)sd) + 1] - pz[2 * (2 * s + (size_t)sd)] + g;
                sm_strlist_add(notes, "segment %zu: pelvic bone in the %s attachment shell: "
                               "%.0f mm3 over %.0f mm of height", s, sd == 0 ? "left" : "right",
                               v, h);
                if (h < 12.0)
                    verts[s].pelvis_join_mm3[sd] = 0;
            }
        free(pz);
    }
    size_t hn = (size_t)nf * 2 * nz;
    uint32_t *hist = calloc(hn ? hn : 1, sizeof *hist);
    double *hdy = calloc(hn ? hn : 1, sizeof *hdy); /* sums of AP offsets from the canal */
    if (!hist || !hdy) {
        free(hdy);
        free(hist);
        free(fid); free(crossing); free(ci); free(att); free(lab); free(lat0); free(lab0);
        sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
        return false;
    }
    {
        /* each slice writes its own bins (the bin index holds k): parallel over slices */
        const size_t k0 = frame->k0, k1 = frame->k1;
        const SegSlice *fs = frame->s;
        const double ox = grid->origin[0], oy = grid->origin[1];
#pragma omp parallel for default(none) shared(hist, hdy, lab, fid, fs) \
    firstprivate(nx, ny, nz, k0, k1, ox, oy, g) schedule(static)
        for (size_t k = k0; k <= k1; k++) {
            const SegSlice *sl = &fs[k];
            for (size_t j = 0; j < ny; j++)
                for (size_t i = 0; i < nx; i++) {
                    uint32_t c = lab[i + nx * (j + ny * k)];
                    if (!c || !fid[c])
                        continue;
                    double dx = ox + g * (double)i - sl->cx;
                    double dy = oy + g * (double)j - sl->cy;
                    if (fabs(dx) >= CORE_HALF_MM + SHELL_MM || dy < -30.0 || dy > 45.0)
                        continue;
                    size_t b = ((size_t)(fid[c] - 1) * 2 + (dx > 0 ? 0 : 1)) * nz + k;
                    hist[b]++;
                    hdy[b] += dy;
                }
        }
    }
    size_t nruns = 0, cap = 64;
    RibRun *runs = malloc(cap * sizeof *runs);
    if (!runs) {
        free(hdy); free(hist); free(fid); free(crossing); free(ci); free(att); free(lab); free(lat0); free(lab0);
        sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
        return false;
    }
    for (uint32_t c = 1; c <= nc; c++) {
        if (!fid[c])
            continue;
        for (int side = 0; side < 2; side++) {
            const uint32_t *h = hist + ((size_t)(fid[c] - 1) * 2 + (size_t)side) * nz;
            const double *hy = hdy + ((size_t)(fid[c] - 1) * 2 + (size_t)side) * nz;
            /* runs from the top (superior) down, bridging gaps of up to 2 slices */
            long k = (long)frame->k1;
            while (k >= (long)frame->k0) {
                if (!h[k]) {
                    k--;
                    continue;
                }
                long top = k, gap = 0;
                uint32_t total = 0;
                double kw = 0, yw = 0;
                while (k >= (long)frame->k0 && gap <= 2) {
                    if (h[k]) {
                        total += h[k];
                        kw += (double)h[k] * (double)k;
                        yw += hy[k];
                        gap = 0;
                    } else {
                        gap++;
                    }
                    k--;
                }
                if (total < 2)
                    continue;
                /* the run's shell-weighted mean height: its top is the rib's upper edge
                 * where it leaves the head, level with the disc above for every rib, and
                 * falls either side of a tilted disc plane */
                const double kc = kw / (double)total;
                const SegSlice *sl = &frame->s[lround(kc)];
                double p[3] = {sl->cx + (side == 0 ? 1.0 : -1.0) * (CORE_HALF_MM + 0.5 * SHELL_MM),
                               sl->cy, grid->origin[2] + g * kc};
                size_t seg = sm_seg_segment_of_beside(discs, n_discs, p, frame->body_halfw_med);
                if (seg >= n_verts || (ci[c].pelvic && seg < seg_pelvis_max))
                    continue;
                if (ci[c].pelvic)
                    sm_strlist_add(notes, "segment %zu: bone joined to the pelvis crosses the %s "
                                   "attachment shell at z %.0f mm, two or more segments above "
                                   "the sacrum: a rib", seg, side == 0 ? "left" : "right",
                                   grid->origin[2] + g * kc);
                att[2 * seg + (size_t)side] += total;
                if (ci[c].reach > verts[seg].rib_reach_mm)
                    verts[seg].rib_reach_mm = ci[c].reach;
                if (nruns == cap) {
                    RibRun *nr = realloc(runs, 2 * cap * sizeof *runs);
                    if (!nr) {
                        free(runs); free(hdy); free(hist); free(fid); free(crossing); free(ci); free(att); free(lab); free(lat0); free(lab0);
                        sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
                        return false;
                    }
                    runs = nr;
                    cap *= 2;
                }
                runs[nruns++] = (RibRun){side, top, lround(kc), ci[c].reach,
                                         ci[c].cut || ci[c].edge, seg, c,
                                         {p[0], p[1], p[2]}, yw / (double)total};
                crossing[c] = 1;
            }
        }
    }
    free(hdy);
    free(hist);
    free(fid);
    for (size_t s = 0; s < n_verts; s++) {
        bool far = verts[s].rib_reach_mm >= RIB_REACH_MM;
        verts[s].rib_left = far && att[2 * s] >= 2;
        verts[s].rib_right = far && att[2 * s + 1] >= 2;
        verts[s].first_rib = false;
        verts[s].rib_runs = 0;
    }
    /* First rib, per side: the topmost crossing, fully in view, clearly shorter than the
     * crossing below it (the second rib). Both sides must agree on the segment when both
     * qualify. */
    qsort(runs, nruns, sizeof *runs, cmp_run_top);
    long first_seg[2] = {-1, -1};
    uint32_t first_comp[2] = {0, 0};
    /* per side: the topmost crossing is whole, a rib of >= RIB_REACH_MM, and no shorter
     * than FIRST_RIB_RATIO of the crossing below it (measurably not a first rib); its
     * segment and reach */
    bool long_top[2] = {false, false};
    long top_seg_of[2] = {-1, -1};
    double top_reach_of[2] = {0, 0};
    /* per side: the run of the crossing below the topmost that the ratio compared with
     * (NULL: none), and whether that comparison measured anything (the crossing below is a
     * separate component, whole) */
    const RibRun *below_of[2] = {NULL, NULL};
    bool ratio_measured[2] = {false, false};
    /* per side whose top crossing passed the ratio test in the segment of the crossing
     * below it: that top crossing's segment at its own AP position (-1: not measured) */
    long own_seg_ratio[2] = {-1, -1};
    size_t n_side[2] = {0, 0};
    for (size_t q = 0; q < nruns; q++) {
        if (runs[q].reach >= RIB_REACH_MM || runs[q].cut)
            verts[runs[q].seg].rib_runs++;
        n_side[runs[q].side]++;
    }
    for (int side = 0; side < 2; side++) {
        size_t q0 = side == 0 ? 0 : n_side[0];
        if (n_side[side] == 0)
            continue;
        const RibRun *top = &runs[q0];
        double next = 0;
        /* the second rib: the next crossing at least 8 mm lower, in the same or the next
         * segment down (a crossing several vertebrae lower means the ribs in between were
         * not seen: no comparison), passing over bone wholly in front of the canal
         * (FRONT_ONLY_MM; also in the two rules below) */
        const RibRun *rb = rib_below(grid, runs, q0, n_side[side], ci,
                                     side == 0 ? "left" : "right", notes);
        if (rb && rb->seg + 1 >= top->seg) {
            next = rb->reach;
            below_of[side] = rb;
            ratio_measured[side] = !rb->cut && rb->comp != top->comp;
        }
        sm_strlist_add(notes, "ribs %s: %zu shell crossings; topmost at z %.0f mm reaches "
                       "%.1f mm%s, the next %.1f mm", side == 0 ? "left" : "right",
                       n_side[side], grid->origin[2] + g * (double)top->ktop, top->reach,
                       top->cut ? " (cut by the field of view)" : "", next);
        {
            char buf[512];
            size_t used = 0;
            buf[0] = 0;
            for (size_t q = q0; q < q0 + n_side[side] && used + 24 < sizeof buf; q++)
                used += (size_t)snprintf(buf + used, sizeof buf - used, " %.0f(%zu%s,%.0f)",
                                         grid->origin[2] + g * (double)runs[q].ktop,
                                         runs[q].seg, runs[q].cut ? ",cut" : "",
                                         ci[runs[q].comp].back);
            sm_strlist_add(notes, "rib crossings %s, z mm (segment, mm behind the canal):%s",
                           side == 0 ? "left" : "right", buf);
        }
        top_seg_of[side] = (long)top->seg;
        top_reach_of[side] = top->reach;
        long_top[side] = !top->cut && top->reach >= RIB_REACH_MM && next >= RIB_REACH_MM &&
                         top->reach > FIRST_RIB_RATIO * next;
        if (sm_seg_first_rib_test(top->reach, next, top->cut)) {
            first_seg[side] = (long)top->seg;
            first_comp[side] = top->comp;
            /* rib 1 and rib 2 articulate with different vertebrae, yet both crossings
             * may lie in one segment: see the move below */
            if (below_of[side] && below_of[side]->seg == top->seg && top->dy < 0)
                own_seg_ratio[side] = own_ap_segment(top, discs, n_discs, frame);
        }
    }
    {
        /* As in the curve rule below: where, on every side whose first rib the ratio found,
         * that rib's crossing and the second rib's lie in one segment, and the first rib,
         * placed at its own AP position in front of the canal, falls in the segment above
         * on each of them, that segment is the first ribs' (a T1-T9 window with a 58 degree
         * kyphosis: first ribs 24-25 mm in front of the canal, T1/T2 plane tilted 27
         * degrees; random sweep 9109383/21) */
        int nr = 0, up = 0;
        for (int side = 0; side < 2; side++) {
            if (first_seg[side] < 0)
                continue;
            nr++;
            up += own_seg_ratio[side] == first_seg[side] + 1 &&
                  (size_t)own_seg_ratio[side] < n_verts;
        }
        if (nr > 0 && up == nr) {
            sm_strlist_add(notes, "first rib by the reach ratio: its crossing and the one below "
                           "in one segment; at its own AP position in front of the canal the "
                           "segment above (%ld)", own_seg_ratio[first_seg[0] >= 0 ? 0 : 1]);
            for (int side = 0; side < 2; side++)
                if (first_seg[side] >= 0)
                    first_seg[side] = own_seg_ratio[side];
        }
    }
    long fs = first_seg[0] >= 0 ? first_seg[0] : first_seg[1];
    for (int side = 0; side < 2; side++) {
        /* one side only: where the other side's top rib, level with it, is a whole rib as
         * long as the one below, a top crossing that is short of a rib's reach is a rib
         * broken up at the edge of a narrow field (T4-T12 on 139 mm: 46 mm against 64 on
         * the right, 64 against 67 on the left), not a first rib; a first rib reaching
         * 55 mm or more is one (chest CT: 122 mm against 172 on the right, 126 against
         * 152 on the left) */
        int o = 1 - side;
        if (first_seg[side] >= 0 && first_seg[o] < 0 && long_top[o] &&
            labs(top_seg_of[o] - first_seg[side]) <= 1 && top_reach_of[side] < RIB_REACH_MM) {
            /* ... unless the other side's comparison measured nothing (the crossing below
             * its top is cut by the field, a lower bound, or is the same component) and
             * the short rib itself turns forward at once (its own front and contrast with
             * the rib below it at least the curve rule's, FIRST_RIB_FRONT_MM and
             * FIRST_RIB_CONTRAST_MM): a broken-up rib piece or a stump runs back and out.
             * A scoliotic T1-T6 on 160 mm: the right first rib's turn above the field, its
             * second rib cut at the side (78 against 79 mm), the left first rib 49 mm,
             * 34 mm in front of the canal against -4 for the rib below. */
            double f = -INFINITY, fb = -INFINITY;
            if (!ratio_measured[o] && below_of[side]) {
                const RibRun *t = &runs[side == 0 ? 0 : n_side[0]];
                f = comp_front(grid, frame, discs, n_discs, lab, t->comp, t->kc, RIB_REACH_MM);
                if (below_of[side]->comp != t->comp)
                    fb = comp_front(grid, frame, discs, n_discs, lab, below_of[side]->comp,
                                    t->kc, RIB_REACH_MM);
            }
            if (isfinite(f) && isfinite(fb) && f >= FIRST_RIB_FRONT_MM &&
                f - fb >= FIRST_RIB_CONTRAST_MM) {
                sm_strlist_add(notes, "first rib: a short top rib on the %s only (%.1f mm) "
                               "turns forward at once (%.0f mm in front of the canal, the rib "
                               "below %.0f); the %s rib below the top one is %s: used",
                               side == 0 ? "left" : "right", top_reach_of[side], f, fb,
                               o == 0 ? "left" : "right",
                               below_of[o] && below_of[o]->comp == runs[o == 0 ? 0 : n_side[0]].comp
                                   ? "the same component"
                                   : "cut by the field of view");
                continue;
            }
            sm_strlist_add(notes, "first rib: a short top rib on the %s only (%.1f mm), the "
                           "top rib on the %s as long as the one below: not used",
                           side == 0 ? "left" : "right", top_reach_of[side],
                           o == 0 ? "left" : "right");
            fs = -1;
        }
    }
    if (first_seg[0] >= 0 && first_seg[1] >= 0 && first_seg[0] != first_seg[1]) {
        /* a rib head is assigned by its top, which can fall either side of a disc plane:
         * accept neighbours, take the upper */
        long d = first_seg[0] - first_seg[1];
        fs = (d == 1 || d == -1) ? (first_seg[0] > first_seg[1] ? first_seg[0] : first_seg[1])
                                 : -1;
        if (fs < 0)
            sm_strlist_add(notes, "first rib: left and right disagree, not used");
    }
    if (fs >= 0) {
        /* The reach ratio's first rib must also turn forward (FIRST_RIB_FRONT_MM): a second
         * rib just short of its third's reach (0.798 against FIRST_RIB_RATIO) runs back and
         * out. Over the sides whose top crossing passed the ratio or lies in its segment
         * (the same rib pair: an axial rotation moves one side forward and the other back
         * by as much), from the top rib's canal centre and disc axis, the mean front of
         * the top ribs and its excess over the ribs below; the ratio is not used when
         * either is clearly short of a first rib's (RATIO_FRONT_MIN_MM,
         * RATIO_CONTRAST_MIN_MM). Not measurable on any side (no bone in range, or the rib
         * below is the same component): the ratio stands. */
        double sf = 0, sc = 0;
        int nfr = 0, ncon = 0;
        for (int side = 0; side < 2; side++) {
            if (n_side[side] == 0 || (first_seg[side] < 0 && top_seg_of[side] != fs))
                continue;
            const RibRun *t = &runs[side == 0 ? 0 : n_side[0]];
            double f = comp_front(grid, frame, discs, n_discs, lab, t->comp, t->kc,
                                  RIB_REACH_MM);
            if (!isfinite(f))
                continue;
            sf += f;
            nfr++;
            if (below_of[side] && below_of[side]->comp != t->comp) {
                double fb = comp_front(grid, frame, discs, n_discs, lab,
                                       below_of[side]->comp, t->kc, RIB_REACH_MM);
                if (isfinite(fb)) {
                    sc += f - fb;
                    ncon++;
                }
            }
        }
        if (nfr > 0) {
            double mf = sf / nfr, mc = ncon > 0 ? sc / ncon : NAN;
            bool absent = mf < RATIO_FRONT_MIN_MM || (ncon > 0 && mc < RATIO_CONTRAST_MIN_MM);
            sm_strlist_add(notes, "first rib by the reach ratio: the top ribs reach %.1f mm in "
                           "front of the canal (%d side%s), %.1f mm more than the ribs below%s",
                           mf, nfr, nfr == 1 ? "" : "s", mc,
                           absent ? ": no first rib's curve, not used" : "");
            if (absent)
                fs = -1;
        }
    }
    if (fs < 0 && first_seg[0] < 0 && first_seg[1] < 0 && n_side[0] >= 2 && n_side[1] >= 2) {
        /* Short ribs on both sides below a rib-free vertebra: the topmost crossing on each
         * side (fully in view, >= STUMP_REACH_MM but < RIB_REACH_MM) in one segment (or neighbours: the upper),
         * the next crossing >= 8 mm lower on each side reaching as far, in that segment or
         * the one below, and a whole vertebra above with no lateral bone crossing the shell.
         * The first rib is short (below 55 mm from the canal: 54.6 mm on a cervicothoracic
         * window), and so is the second rib where the field of view or its lower edge
         * shortens it, so the ratio test has nothing to compare with; a C7 transverse
         * process stays short of STUMP_REACH_MM and crosses the shell on no vertebra
         * below it. */
        long top_seg[2] = {-1, -1};
        for (int side = 0; side < 2; side++) {
            size_t q0 = side == 0 ? 0 : n_side[0];
            const RibRun *top = &runs[q0];
            if (top->cut || top->reach < STUMP_REACH_MM || top->reach >= RIB_REACH_MM)
                continue; /* a rib of >= 55 mm: the highest rib-bearing rule (labels.c) */
            const RibRun *rb = rib_below(grid, runs, q0, n_side[side], ci, NULL, NULL);
            if (rb && rb->seg + 1 >= top->seg && rb->seg <= top->seg &&
                (rb->reach >= STUMP_REACH_MM || rb->cut))
                top_seg[side] = (long)top->seg;
        }
        long d = top_seg[0] - top_seg[1];
        long s = top_seg[0] > top_seg[1] ? top_seg[0] : top_seg[1];
        if (top_seg[0] >= 0 && top_seg[1] >= 0 && d >= -1 && d <= 1 &&
            (size_t)s + 1 < n_verts && !verts[s + 1].partial && !(verts[s + 1].rib_reach_mm > 0)) {
            fs = s;
            first_comp[0] = runs[0].comp;
            first_comp[1] = runs[n_side[0]].comp;
            sm_strlist_add(notes, "short ribs on both sides, below a whole vertebra with no "
                           "lateral bone: the first ribs (segment %ld)", fs);
        }
    }
    if (fs < 0 && first_seg[0] < 0 && first_seg[1] < 0 && n_side[0] >= 2 && n_side[1] >= 2) {
        /* The first rib by its curve (FIRST_RIB_FRONT_MM): on both sides the topmost
         * crossing (not pelvis) and the next crossing >= 8 mm lower in the same or the next
         * segment down, a separate component reaching >= RIB_REACH_MM (its course to that
         * radius is in view); the mean front of the two top ribs within RIB_REACH_MM of the
         * canal axis >= FIRST_RIB_FRONT_MM and >= FIRST_RIB_CONTRAST_MM more than that of
         * the two ribs below, measured from the same reference (the top rib's canal centre
         * and disc axis: a canal track that wanders at the window's top moves both alike;
         * T3-T11 phantom 91919/21, its third ribs 17 / 21 mm, the fourth 16 / 9 from the
         * same reference, -2 / 4 from their own); both top crossings in the same or
         * adjacent segments (the upper is taken). For a narrow field where the second rib leaves the field before
         * it is measurably longer than the first: where a rib below is whole and reaches
         * as far as the top one, the reach ratio (above) decides and this rule is not used
         * (a T2-T6 phantom on a 215 mm field whose canal track wandered 10 mm back at the
         * top read its second ribs 25 / 20 mm forward; its right third rib was whole). */
        long top_seg[2] = {-1, -1}, own_seg[2] = {-1, -1};
        bool same_seg[2] = {false, false};
        double ftop[2] = {0, 0}, fnext[2] = {0, 0};
        for (int side = 0; side < 2; side++) {
            size_t q0 = side == 0 ? 0 : n_side[0];
            const RibRun *top = &runs[q0], *below = rib_below(grid, runs, q0, n_side[side], ci,
                                                               NULL, NULL);
            if (below && !(below->seg + 1 >= top->seg && below->seg <= top->seg))
                below = NULL;
            if (!below || below->comp == top->comp || ci[top->comp].pelvic ||
                below->reach < RIB_REACH_MM)
                continue;
            if (below->seg == top->seg) {
                /* rib 1 and rib 2 articulate with different vertebrae: one of the two
                 * crossings lies a segment off. The first rib crosses the shell beside
                 * the body, in front of the canal, where a tilted disc plane lies lower
                 * than at the canal: its segment at its own AP position */
                own_seg[side] = own_ap_segment(top, discs, n_discs, frame);
                same_seg[side] = true;
            }
            if (!below->cut && !top->cut && below->reach >= top->reach) {
                /* the rib below is whole and reaches as far: the reach ratio was measurable
                 * and did not find the first rib (a whole second rib shorter than the top
                 * one has broken up at the field's edge: the ratio says nothing there) */
                sm_strlist_add(notes, "ribs %s: the rib below the topmost is whole and "
                               "reaches %.1f mm against %.1f: the reach ratio decides",
                               side == 0 ? "left" : "right", below->reach, top->reach);
                continue;
            }
            ftop[side] = comp_front(grid, frame, discs, n_discs, lab, top->comp, top->kc,
                                    RIB_REACH_MM);
            fnext[side] = comp_front(grid, frame, discs, n_discs, lab, below->comp, top->kc,
                                     RIB_REACH_MM);
            if (isfinite(ftop[side]) && isfinite(fnext[side]))
                top_seg[side] = (long)top->seg;
        }
        if (top_seg[0] >= 0 && top_seg[1] >= 0 && same_seg[0] && same_seg[1]) {
            /* both sides put the top crossing and the one below in one segment: the first
             * rib's is the misplaced one only when, placed at its own AP position, it
             * falls in the segment above on both sides (a 59 deg kyphosis: the first rib
             * crosses 25 mm in front of the canal, where the tilted T1/T2 plane lies ~16
             * mm lower than at the canal); otherwise which one is off is a guess */
            bool up = own_seg[0] == top_seg[0] + 1 && own_seg[1] == top_seg[1] + 1 &&
                      (size_t)own_seg[0] < n_verts && (size_t)own_seg[1] < n_verts;
            sm_strlist_add(notes, "top crossings and the ones below in one segment on both "
                           "sides (%ld / %ld); at the top ribs' own AP position %ld / %ld%s",
                           top_seg[0], top_seg[1], own_seg[0], own_seg[1],
                           up ? ": the first ribs' segment is the one above"
                              : ": the first rib's segment is doubtful, not used");
            if (up) {
                top_seg[0] = own_seg[0];
                top_seg[1] = own_seg[1];
            } else {
                top_seg[0] = top_seg[1] = -1;
            }
        }
        if (top_seg[0] >= 0 && top_seg[1] >= 0) {
            double mt = 0.5 * (ftop[0] + ftop[1]), mn = 0.5 * (fnext[0] + fnext[1]);
            long d = top_seg[0] - top_seg[1];
            long s = top_seg[0] > top_seg[1] ? top_seg[0] : top_seg[1];
            bool yes = d >= -1 && d <= 1 && mt >= FIRST_RIB_FRONT_MM &&
                       mt - mn >= FIRST_RIB_CONTRAST_MM;
            sm_strlist_add(notes, "top ribs reach %.0f / %.0f mm in front of the canal within "
                           "%.0f mm of it (left / right), the ribs below %.0f / %.0f mm%s",
                           ftop[0], ftop[1], RIB_REACH_MM, fnext[0], fnext[1],
                           yes ? ": the first ribs turn forward at once" : "");
            if (yes) {
                fs = s;
                first_comp[0] = runs[0].comp;
                first_comp[1] = runs[n_side[0]].comp;
            }
        }
    }
    if (fs >= 0) {
        verts[fs].first_rib = true;
        sm_strlist_add(notes, "first rib found (segment %ld)", fs);
    }
    free(runs);
    if (fs < 0)
        first_comp[0] = first_comp[1] = 0;
    if (fs < 0)
        first_comp[0] = first_comp[1] = 0;
    /* rib mask: far-reaching lateral components (ribs, pelvis, scapula); shorter lateral
     * bone (long lumbar transverse processes, stump ribs) stays with the vertebra */
    /* ... and the first rib, short as it is (it curves forward at once); and any
     * component that makes its segment rib-bearing (a rib by the VerSe rule, >= 55 mm,
     * crossing the attachment shell): a first rib whose second rib is out of view reached
     * 58 mm on a 135 mm field and stayed with T1 */
    {
        const size_t n = grid->n;
        const uint32_t fc0 = first_comp[0], fc1 = first_comp[1];
#pragma omp parallel for default(none) shared(rib, lab, ci, crossing) firstprivate(n, fc0, fc1) \
    schedule(static)
        for (size_t v = 0; v < n; v++) {
            uint32_t c = lab[v];
            rib[v] = c && (ci[c].reach >= REMOVE_REACH_MM || c == fc0 || c == fc1 ||
                           (crossing[c] && ci[c].reach >= RIB_REACH_MM));
        }
    }
    /* what the cleaning left out goes with its uncleaned component (an organ joined to a
     * rib or the pelvis leaves the vertebra mask with them, as before) */
    if (lat0) {
        double *reach0 = calloc((size_t)nc0 + 1, sizeof *reach0);
        if (!reach0) {
            free(crossing); free(att); free(ci); free(lab); free(lat0); free(lab0);
            sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
            return false;
        }
        if (!comp_reach(grid, frame, lab0, nc0, reach0)) {
            free(reach0); free(crossing); free(att); free(ci); free(lab); free(lat0); free(lab0);
            sm_error_set(error, SM_ERR_NOMEM, "rib detection: out of memory");
            return false;
        }
        const size_t n = grid->n;
#pragma omp parallel for default(none) shared(rib, lat0, lab, lab0, reach0) firstprivate(n) \
    schedule(static)
        for (size_t v = 0; v < n; v++)
            if (lat0[v] && !lab[v] && reach0[lab0[v]] >= REMOVE_REACH_MM)
                rib[v] = 1;
        free(reach0);
    }
    free(lat0);
    free(lab0);
    free(crossing);
    free(att);
    free(ci);
    free(lab);
    return true;
}
