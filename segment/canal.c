/* Spinal canal centreline: per-slice low-density regions enclosed by bone (ray closure,
 * body in front), linked across slices by a longest-path dynamic programme that bridges
 * disc levels where the bony ring is open (Yao et al. 2006). */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CANAL_MAX_CAND 8        /* clusters kept per slice */
#define CANAL_RAY_MM 24.0       /* ray length for closure */
#define CANAL_NRAYS 16
#define CANAL_MAX_AREA_MM2 700.0
#define CANAL_GAP_MM 40.0       /* longest bridged gap along z */
/* a candidate with a larger lumen (>= CANAL_BEHIND_AREA_MM2) behind it, laterally within
 * CANAL_BEHIND_DX_MM and CANAL_BEHIND_MIN_MM..CANAL_BEHIND_MAX_MM posterior, is in a body */
#define CANAL_BEHIND_DX_MM 10.0
#define CANAL_BEHIND_MIN_MM 8.0
#define CANAL_BEHIND_MAX_MM 35.0
#define CANAL_BEHIND_AREA_MM2 100.0
/* two candidates behind a larger lumen (>= CANAL_BEHIND_AREA_MM2), CANAL_BEHIND_MIN_MM..
 * CANAL_BEHIND_MAX_MM posterior and CANAL_POCKET_DX_MIN_MM..CANAL_POCKET_DX_MAX_MM to
 * either side of it, within CANAL_POCKET_DY_MM of each other antero-posteriorly, are the
 * pockets of the posterior elements */
#define CANAL_POCKET_DX_MIN_MM 5.0
#define CANAL_POCKET_DX_MAX_MM 20.0
#define CANAL_POCKET_DY_MM 5.0
#define WALL_NCOLS 5            /* AP lines for the posterior body wall */
#define WALL_OFF_MM 3.0         /* their spacing across the canal centre */

typedef struct CanalCand {
    double x, y;                /* LPS mm */
    double score;
    double area_mm2;
} CanalCand;

/* Distance (mm) to the first bone voxel along (dx, dy) in slice k, or -1 if none within
 * maxmm. Steps of half a voxel. */
static double ray_hit(const uint8_t *bone, const size_t d[3], size_t k, double i0, double j0,
                      double dx, double dy, double g, double maxmm)
{
    double step = 0.5;
    int nsteps = (int)(maxmm / (g * step));
    for (int s = 1; s <= nsteps; s++) {
        double fi = i0 + dx * step * s, fj = j0 + dy * step * s;
        long i = lround(fi), j = lround(fj);
        if (i < 0 || j < 0 || i >= (long)d[0] || j >= (long)d[1])
            return -1;
        if (bone[seg_idx(d, (size_t)i, (size_t)j, k)])
            return s * step * g;
    }
    return -1;
}

/* Length (mm) of the run of filled voxels starting at distance start_mm along (dx,dy),
 * tolerating one-voxel gaps. */
static double run_length(const uint8_t *filled, const size_t d[3], size_t k, double i0,
                         double j0, double dx, double dy, double g, double start_mm,
                         double maxmm)
{
    double step = 0.5;
    int s0 = (int)(start_mm / (g * step));
    int nsteps = (int)(maxmm / (g * step));
    int miss = 0;
    double last = start_mm;
    for (int s = s0; s <= nsteps; s++) {
        long i = lround(i0 + dx * step * s), j = lround(j0 + dy * step * s);
        if (i < 0 || j < 0 || i >= (long)d[0] || j >= (long)d[1])
            break;
        if (filled[seg_idx(d, (size_t)i, (size_t)j, k)]) {
            miss = 0;
            last = s * step * g;
        } else if (++miss > 2) {
            break;
        }
    }
    return last - start_mm;
}

/* Candidate score of a canal point; 0 if it is not one. */
static double point_score(const SegGrid *grid, const uint8_t *bone, const uint8_t *filled,
                          size_t i, size_t j, size_t k)
{
    const double g = grid->g;
    double di = (double)i, dj = (double)j;
    /* axis rays first (cheap rejection): anterior (-y) must hit (body), and 3 of 4 */
    double a = ray_hit(bone, grid->dims, k, di, dj, 0, -1, g, CANAL_RAY_MM);
    if (a < 0)
        return 0;
    double p = ray_hit(bone, grid->dims, k, di, dj, 0, 1, g, CANAL_RAY_MM);
    double l = ray_hit(bone, grid->dims, k, di, dj, 1, 0, g, CANAL_RAY_MM);
    double r = ray_hit(bone, grid->dims, k, di, dj, -1, 0, g, CANAL_RAY_MM);
    int axis_hits = 1 + (p >= 0) + (l >= 0) + (r >= 0);
    if (axis_hits < 3)
        return 0;
    /* a vertebral body in front: at least 8 mm of filled bone beyond the first hit */
    double body = run_length(filled, grid->dims, k, di, dj, 0, -1, g, a, 80.0);
    if (body < 8.0)
        return 0;
    int hits = 0;
    for (int q = 0; q < CANAL_NRAYS; q++) {
        double ang = 2 * M_PI * q / CANAL_NRAYS;
        if (ray_hit(bone, grid->dims, k, di, dj, cos(ang), sin(ang), g, CANAL_RAY_MM) >= 0)
            hits++;
    }
    double closure = (double)hits / CANAL_NRAYS;
    if (closure < 0.6)
        return 0;
    double cent = 1.0;
    if (l >= 0 && r >= 0)
        cent -= fabs(l - r) / (l + r);
    else
        cent = 0.3;
    if (p >= 0)
        cent -= 0.5 * fabs(a - p) / (a + p);
    return closure + 0.5 * cent;
}

/* A short run at an end of the track that the path reached across a long gap, off the
 * line of the track beyond the gap, is another lumen: below a window's bottom body the
 * ring is open over the disc and the pedicles, and the path can resume in the notch
 * between the inferior articular processes, 22-24 mm behind the canal (sweep seed 54321
 * case 21, T12 at the bottom: its body grew back to the notch, centroid 3.4 mm off). The
 * longest path bridges gaps of CANAL_GAP_MM with a lateral allowance that grows with the
 * gap, so the test is here, once the path is known: an end run of at most STRAY_RUN_MM
 * after a gap of at least STRAY_GAP_MM (and longer than the run) whose every slice lies
 * more than STRAY_DEV_MM from the straight line fitted to the next STRAY_FIT_MM of track
 * is dropped. The canal itself bends off that line by 10-12 mm across such gaps at the
 * ends of the column (below S1 in random sweep draws; at the real example CT's top, T12:
 * 10 mm after a 10 mm gap, and dropping that run cost T12's body Dice 0.930 -> 0.851);
 * the articular notch lies 20 mm or more behind the canal (21-31 mm in the sweep). */
#define STRAY_GAP_MM 10.0
#define STRAY_RUN_MM 8.0
#define STRAY_FIT_MM 20.0
#define STRAY_DEV_MM 15.0
static size_t drop_stray_end(const SegGrid *grid, SegFrame *frame, bool bottom, long *kmin,
                             long *kmax, SmStrList *notes)
{
    const double g = grid->g;
    const long step = bottom ? 1 : -1, k_end = bottom ? *kmin : *kmax, k_far = bottom ? *kmax : *kmin;
    /* the end run: observed slices from the end up to the first gap >= STRAY_GAP_MM */
    long last = k_end, k = k_end + step;
    for (; bottom ? k <= k_far : k >= k_far; k += step) {
        if (!frame->s[k].observed)
            continue;
        if (labs(k - last) * g >= STRAY_GAP_MM)
            break;
        last = k;
    }
    if (bottom ? k > k_far : k < k_far)
        return 0; /* no gap */
    double run = labs(last - k_end) * g, gap = labs(k - last) * g;
    if (run > STRAY_RUN_MM || gap <= run)
        return 0;
    /* line through the track beyond the gap: x, y against z (slice index) */
    double sz = 0, sx = 0, sy = 0, szz = 0, szx = 0, szy = 0;
    int n = 0;
    for (long m = k; bottom ? m <= k_far : m >= k_far; m += step) {
        if (labs(m - k) * g > STRAY_FIT_MM)
            break;
        if (!frame->s[m].observed)
            continue;
        double z = (double)m, x = frame->s[m].cx, y = frame->s[m].cy;
        sz += z, sx += x, sy += y, szz += z * z, szx += z * x, szy += z * y;
        n++;
    }
    if (n < 3)
        return 0;
    double den = n * szz - sz * sz;
    if (!(fabs(den) > 0))
        return 0;
    double bx = (n * szx - sz * sx) / den, by = (n * szy - sz * sy) / den;
    double ax = (sx - bx * sz) / n, ay = (sy - by * sz) / n;
    double dev_min = INFINITY;
    for (long m = k_end; bottom ? m <= last : m >= last; m += step) {
        if (!frame->s[m].observed)
            continue;
        double dx = frame->s[m].cx - (ax + bx * (double)m), dy = frame->s[m].cy - (ay + by * (double)m);
        double dv = sqrt(dx * dx + dy * dy);
        if (dv < dev_min)
            dev_min = dv;
    }
    if (!(dev_min > STRAY_DEV_MM))
        return 0;
    size_t dropped = 0;
    for (long m = k_end; bottom ? m <= last : m >= last; m += step)
        if (frame->s[m].observed) {
            frame->s[m].observed = false;
            dropped++;
        }
    if (bottom)
        *kmin = k;
    else
        *kmax = k;
    sm_strlist_add(notes, "canal track: %zu slices at its %s end dropped (after a %.0f mm gap, "
                   "at least %.0f mm off the track's line beyond it)", dropped,
                   bottom ? "bottom" : "top", gap, dev_min);
    return dropped;
}

bool sm_seg_canal_track(SmError **error, const SegGrid *grid, const uint8_t *bone,
                        const uint8_t *body, const SegThresholds *thr, SegFrame *frame, SmStrList *notes)
{
    const size_t nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const size_t plane = nx * ny;
    const double g = grid->g;
    int nt = sm_omp_threads();
    CanalCand *cand = calloc(nz * CANAL_MAX_CAND, sizeof *cand);
    size_t *ncand = calloc(nz, sizeof *ncand);
    float *sc_all = malloc((size_t)nt * plane * sizeof *sc_all);
    size_t *q_all = malloc((size_t)nt * plane * sizeof *q_all);
    uint8_t *filled = malloc(grid->n);
    if (!cand || !ncand || !sc_all || !q_all || !filled) {
        free(cand); free(ncand); free(sc_all); free(q_all); free(filled);
        sm_error_set(error, SM_ERR_NOMEM, "canal tracking: out of memory");
        return false;
    }
    /* Filled bone without the canal: fill holes up to a body's size, but the candidate test
     * only needs "solid bone in front", so reuse the same rule as bone.c. */
    memcpy(filled, bone, grid->n);
    if (!sm_seg_holes_fill_2d(error, filled, grid->dims, (size_t)(2500.0 / (g * g)), 1)) {
        free(cand); free(ncand); free(sc_all); free(q_all); free(filled);
        return false;
    }
    /* left-right centre and half-width of the body per slice: the canal lies near the
     * body's midline */
    double *mid = malloc(2 * nz * sizeof *mid);
    if (!mid) {
        free(cand); free(ncand); free(sc_all); free(q_all); free(filled);
        sm_error_set(error, SM_ERR_NOMEM, "canal tracking: out of memory");
        return false;
    }
    for (size_t k = 0; k < nz; k++) {
        double sx = 0, cnt = 0;
        size_t imin = nx, imax = 0;
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++)
                if (body[seg_idx(grid->dims, i, j, k)]) {
                    sx += (double)i;
                    cnt++;
                    if (i < imin) imin = i;
                    if (i > imax) imax = i;
                }
        mid[2 * k] = cnt > 0 ? grid->origin[0] + g * sx / cnt : NAN;
        mid[2 * k + 1] = cnt > 0 ? 0.5 * g * (double)(imax - imin + 1) : NAN;
    }
    const int16_t *hu = grid->hu;
    /* Under contrast the soft-tissue mode is the enhanced parenchyma, and the grow
     * threshold (lifted by it and by enhanced vessels) can lie above an older patient's
     * cancellous bone (100-160 HU): the bodies' thin shells then do not close, and the
     * marrow below the threshold looks like a lumen enclosed by bone. There the lumen
     * (CSF, cord, epidural fat: no denser than soft tissue) is taken below soft tissue +
     * 3.5 sigma, and marrow at or above that level counts as solid body in front. */
    int lo = (int)lround(thr->lo);
    if (thr->enhanced && thr->soft + 3.5 * thr->soft_sigma < thr->lo) {
        lo = (int)lround(thr->soft + 3.5 * thr->soft_sigma);
        for (size_t v = 0; v < grid->n; v++)
            if (!filled[v] && grid->hu[v] != SEG_OUTSIDE && grid->hu[v] >= lo)
                filled[v] = 1;
    }
    const int floor_hu = (int)lround(thr->soft - 150);
    const double gx = grid->origin[0], gy = grid->origin[1];
    const size_t max_area = (size_t)(CANAL_MAX_AREA_MM2 / (g * g));
#pragma omp parallel for default(none) \
    shared(grid, bone, filled, hu, cand, ncand, sc_all, q_all, mid) \
    firstprivate(nx, ny, nz, plane, lo, floor_hu, g, gx, gy, max_area) schedule(dynamic, 4)
    for (size_t k = 0; k < nz; k++) {
        int t = sm_seg_thread_id();
        float *sc = sc_all + (size_t)t * plane;
        size_t *queue = q_all + (size_t)t * plane;
        for (size_t s = 0; s < plane; s++) {
            size_t v = s + plane * k;
            int h = hu[v];
            sc[s] = 0;
            if (bone[v] || h == SEG_OUTSIDE || h >= lo || h < floor_hu)
                continue;
            sc[s] = (float)point_score(grid, bone, filled, s % nx, s / nx, k);
        }
        /* clusters of candidate pixels (8-connected), best first */
        CanalCand *out = cand + k * CANAL_MAX_CAND;
        size_t nout = 0;
        for (size_t s = 0; s < plane; s++) {
            if (sc[s] <= 0)
                continue;
            size_t qh = 0, qt = 0;
            queue[qt++] = s;
            double best = sc[s], sw = 0, sx = 0, sy = 0;
            sc[s] = -sc[s];
            while (qh < qt) {
                size_t u = queue[qh++];
                double w = -sc[u];
                if (w > best) best = w;
                sw += w;
                sx += w * (double)(u % nx);
                sy += w * (double)(u / nx);
                long ui = (long)(u % nx), uj = (long)(u / nx);
                for (long dj = -1; dj <= 1; dj++)
                    for (long di = -1; di <= 1; di++) {
                        long ii = ui + di, jj = uj + dj;
                        if (ii < 0 || jj < 0 || ii >= (long)nx || jj >= (long)ny)
                            continue;
                        size_t w2 = (size_t)ii + nx * (size_t)jj;
                        if (sc[w2] > 0) {
                            sc[w2] = -sc[w2];
                            queue[qt++] = w2;
                        }
                    }
            }
            if (qt > max_area || sw <= 0)
                continue;
            CanalCand c = {gx + g * sx / sw, gy + g * sy / sw, best + 0.1 * log((double)qt),
                           (double)qt * g * g};
            if (!isnan(mid[2 * k]) && mid[2 * k + 1] > 0) {
                double off = fabs(c.x - mid[2 * k]) / mid[2 * k + 1];
                if (off > 0.15)
                    c.score -= 2.0 * (off - 0.15);
                if (c.score <= 0.05)
                    continue;
            }
            /* insert sorted by score, keep the best CANAL_MAX_CAND */
            size_t pos = nout;
            while (pos > 0 && out[pos - 1].score < c.score)
                pos--;
            if (pos >= CANAL_MAX_CAND)
                continue;
            size_t last = nout < CANAL_MAX_CAND ? nout : CANAL_MAX_CAND - 1;
            for (size_t m = last; m > pos; m--)
                out[m] = out[m - 1];
            out[pos] = c;
            if (nout < CANAL_MAX_CAND)
                nout++;
        }
        /* a lumen with a larger one behind it on the midline (the canal, closed behind by
         * the arch) is inside the body: marrow below the bone threshold, the
         * basivertebral plexus. On a steep lumbosacral junction the canal runs back by
         * 20 mm within a body height, and the track would rather stay on that hole. */
        bool inside[CANAL_MAX_CAND] = {false};
        for (size_t a = 0; a < nout; a++)
            for (size_t b = 0; b < nout && !inside[a]; b++) {
                double ddx = out[b].x - out[a].x, ddy = out[b].y - out[a].y;
                inside[a] = b != a && fabs(ddx) < CANAL_BEHIND_DX_MM &&
                            ddy > CANAL_BEHIND_MIN_MM && ddy < CANAL_BEHIND_MAX_MM &&
                            out[b].area_mm2 >= out[a].area_mm2 &&
                            out[b].area_mm2 >= CANAL_BEHIND_AREA_MM2;
            }
        /* a pair of lumens behind a larger one (the canal), one on each side and level
         * with each other, are the pockets of the posterior elements, left and right
         * (between the laminae, the articular and transverse processes and the ribs'
         * necks): their anterior ray crosses the lamina, the enclosed canal and its front,
         * and above a window's top body, where the canal has no body in front and ends,
         * their chain would carry the track on beside it */
        bool pocket[CANAL_MAX_CAND] = {false};
        for (size_t b = 0; b < nout; b++) {
            if (out[b].area_mm2 < CANAL_BEHIND_AREA_MM2)
                continue;
            for (size_t a1 = 0; a1 < nout; a1++)
                for (size_t a2 = a1 + 1; a2 < nout; a2++) {
                    double dx1 = out[a1].x - out[b].x, dx2 = out[a2].x - out[b].x;
                    double dy1 = out[a1].y - out[b].y, dy2 = out[a2].y - out[b].y;
                    if (a1 == b || a2 == b || dx1 * dx2 >= 0 ||
                        out[a1].area_mm2 >= out[b].area_mm2 ||
                        out[a2].area_mm2 >= out[b].area_mm2 ||
                        fabs(out[a1].y - out[a2].y) > CANAL_POCKET_DY_MM)
                        continue;
                    if (fabs(dx1) < CANAL_POCKET_DX_MIN_MM || fabs(dx1) > CANAL_POCKET_DX_MAX_MM ||
                        fabs(dx2) < CANAL_POCKET_DX_MIN_MM || fabs(dx2) > CANAL_POCKET_DX_MAX_MM ||
                        dy1 < CANAL_BEHIND_MIN_MM || dy1 > CANAL_BEHIND_MAX_MM ||
                        dy2 < CANAL_BEHIND_MIN_MM || dy2 > CANAL_BEHIND_MAX_MM)
                        continue;
                    pocket[a1] = pocket[a2] = true;
                }
        }
        size_t kept = 0;
        for (size_t a = 0; a < nout; a++)
            if (!inside[a] && !pocket[a])
                out[kept++] = out[a];
        ncand[k] = kept;
    }
    free(sc_all);
    free(q_all);
    free(mid);

    /* Longest path over candidates (DAG ordered by slice). */
    size_t total = nz * CANAL_MAX_CAND;
    double *val = malloc(total * sizeof *val);
    long *prev = malloc(total * sizeof *prev);
    if (!val || !prev) {
        free(val); free(prev); free(cand); free(ncand); free(filled);
        sm_error_set(error, SM_ERR_NOMEM, "canal tracking: out of memory");
        return false;
    }
    const long gap = (long)(CANAL_GAP_MM / g);
    double best_val = -1;
    long best_node = -1;
    for (size_t k = 0; k < nz; k++) {
        for (size_t c = 0; c < ncand[k]; c++) {
            size_t b = k * CANAL_MAX_CAND + c;
            const CanalCand *cb = &cand[b];
            val[b] = cb->score;
            prev[b] = -1;
            for (long dk = 1; dk <= gap && (long)k - dk >= 0; dk++) {
                size_t ka = k - (size_t)dk;
                for (size_t ca = 0; ca < ncand[ka]; ca++) {
                    size_t a = ka * CANAL_MAX_CAND + ca;
                    double dx = cand[a].x - cb->x, dy = cand[a].y - cb->y;
                    double d = sqrt(dx * dx + dy * dy);
                    /* the canal drifts laterally slowly (scoliosis) and antero-posteriorly
                     * faster (lordosis, sacral curve) */
                    if (fabs(dx) > 2.0 + 0.35 * dk * g || fabs(dy) > 3.0 + 0.8 * dk * g)
                        continue;
                    double w = val[a] + cb->score - 0.02 * d * d / dk - 0.15 * (dk - 1);
                    if (w > val[b]) {
                        val[b] = w;
                        prev[b] = (long)a;
                    }
                }
            }
            if (val[b] > best_val) {
                best_val = val[b];
                best_node = (long)b;
            }
        }
    }
    free(val);
    frame->nz = nz;
    frame->bone_seed_hu = thr->hi;
    frame->s = calloc(nz, sizeof *frame->s);
    if (!frame->s) {
        free(prev); free(cand); free(ncand); free(filled);
        sm_error_set(error, SM_ERR_NOMEM, "canal tracking: out of memory");
        return false;
    }
    size_t nobs = 0;
    long kmin = -1, kmax = -1;
    for (long b = best_node; b >= 0; b = prev[b]) {
        size_t k = (size_t)b / CANAL_MAX_CAND;
        SegSlice *sl = &frame->s[k];
        sl->observed = true;
        sl->cx = cand[b].x;
        sl->cy = cand[b].y;
        nobs++;
        if (kmax < 0) kmax = (long)k;
        kmin = (long)k;
    }
    free(prev);
    free(cand);
    free(ncand);
    for (int end = 0; end < 2 && nobs >= 5; end++)
        nobs -= drop_stray_end(grid, frame, end == 0, &kmin, &kmax, notes);
    if (nobs < 5 || (kmax - kmin) * g < 30.0) {
        free(filled);
        sm_error_set(error, SM_ERR_UNSUPPORTED,
                     "no spinal canal found (longest canal track %zu slices); is the spine "
                     "in the field of view?", nobs);
        return false;
    }
    frame->k0 = (size_t)kmin;
    frame->k1 = (size_t)kmax;
    /* interpolate centres over gaps */
    size_t last = frame->k0;
    for (size_t k = frame->k0 + 1; k <= frame->k1; k++) {
        if (!frame->s[k].observed)
            continue;
        for (size_t m = last + 1; m < k; m++) {
            double f = (double)(m - last) / (double)(k - last);
            frame->s[m].cx = frame->s[last].cx + f * (frame->s[k].cx - frame->s[last].cx);
            frame->s[m].cy = frame->s[last].cy + f * (frame->s[k].cy - frame->s[last].cy);
        }
        last = k;
    }
    /* smooth centres (+-2 slices) */
    double *tmp = malloc(2 * nz * sizeof *tmp);
    if (!tmp) {
        free(filled);
        sm_error_set(error, SM_ERR_NOMEM, "canal tracking: out of memory");
        return false;
    }
    for (size_t k = frame->k0; k <= frame->k1; k++) {
        double sx = 0, sy = 0;
        int c = 0;
        for (long d = -2; d <= 2; d++) {
            long m = (long)k + d;
            if (m < (long)frame->k0 || m > (long)frame->k1)
                continue;
            sx += frame->s[m].cx;
            sy += frame->s[m].cy;
            c++;
        }
        tmp[2 * k] = sx / c;
        tmp[2 * k + 1] = sy / c;
    }
    for (size_t k = frame->k0; k <= frame->k1; k++) {
        frame->s[k].cx = tmp[2 * k];
        frame->s[k].cy = tmp[2 * k + 1];
        frame->s[k].valid = true;
    }
    free(tmp);
    /* canal radii from axis rays on observed slices, interpolated elsewhere */
    for (size_t k = frame->k0; k <= frame->k1; k++) {
        SegSlice *sl = &frame->s[k];
        double i0 = (sl->cx - grid->origin[0]) / g, j0 = (sl->cy - grid->origin[1]) / g;
        double a = ray_hit(bone, grid->dims, k, i0, j0, 0, -1, g, CANAL_RAY_MM);
        double p = ray_hit(bone, grid->dims, k, i0, j0, 0, 1, g, CANAL_RAY_MM);
        double l = ray_hit(bone, grid->dims, k, i0, j0, 1, 0, g, CANAL_RAY_MM);
        double r = ray_hit(bone, grid->dims, k, i0, j0, -1, 0, g, CANAL_RAY_MM);
        sl->ry_ant = a > 0 ? a : NAN;
        sl->ry_post = p > 0 ? p : NAN;
        sl->rx = (l > 0 && r > 0) ? 0.5 * (l + r) : NAN;
    }
    /* robust radii: running median (+-10 mm) of the observed slices' values, the column
     * median where none; a weak posterior body wall or a foramen must not inflate them */
    double *raw = malloc(3 * nz * sizeof *raw);
    double *win = malloc((size_t)(2 * (long)(10.0 / g) + 2) * sizeof *win);
    double *all = malloc(nz * sizeof *all);
    if (!raw || !win || !all) {
        free(raw); free(win); free(all); free(filled);
        sm_error_set(error, SM_ERR_NOMEM, "canal tracking: out of memory");
        return false;
    }
    for (size_t k = frame->k0; k <= frame->k1; k++) {
        const SegSlice *sl = &frame->s[k];
        raw[3 * k] = sl->observed ? sl->ry_ant : NAN;
        raw[3 * k + 1] = sl->observed ? sl->ry_post : NAN;
        raw[3 * k + 2] = sl->observed ? sl->rx : NAN;
    }
    const long hwin = (long)(10.0 / g);
    for (int field = 0; field < 3; field++) {
        size_t na = 0;
        for (size_t k = frame->k0; k <= frame->k1; k++)
            if (!isnan(raw[3 * k + field]))
                all[na++] = raw[3 * k + field];
        qsort(all, na, sizeof *all, sm_cmp_double);
        double gmed = na ? all[na / 2] : 8.0;
        for (size_t k = frame->k0; k <= frame->k1; k++) {
            size_t nw = 0;
            for (long d = -hwin; d <= hwin; d++) {
                long m = (long)k + d;
                if (m < (long)frame->k0 || m > (long)frame->k1 || isnan(raw[3 * m + field]))
                    continue;
                win[nw++] = raw[3 * m + field];
            }
            double v = gmed;
            if (nw >= 3) {
                qsort(win, nw, sizeof *win, sm_cmp_double);
                v = win[nw / 2];
            }
            if (v < 3.0) v = 3.0;
            if (v > 16.0) v = 16.0;
            SegSlice *sl = &frame->s[k];
            if (field == 0) sl->ry_ant = v;
            else if (field == 1) sl->ry_post = v;
            else sl->rx = v;
        }
    }
    free(raw);
    free(win);
    free(all);
    free(filled);
    return true;
}

void sm_seg_frame_free(SegFrame *frame)
{
    if (!frame)
        return;
    free(frame->s);
    frame->s = NULL;
}

/* Refined canal front for the vertebra outline and sub-regions (see segment_internal.h).
 * The canal track is smoothed and interpolated, and its anterior radius is a running
 * median of the midline ray to the bone mask: where the lumbosacral canal turns backward,
 * or the posterior third of a fatty body lies below the bone threshold (basivertebral
 * veins, 3 mm partial volume), the front lies inside the body. On each slice the
 * posterior body wall is sought on WALL_NCOLS AP lines near the midline, between
 * WALL_FRONT_MM in front of the frame's canal front and WALL_BACK_MM behind the canal
 * centre (less than its back radius), as the strongest dense-to-dark step of the
 * working-grid HU: mean of WALL_STEP voxels in front >= the soft-tissue/bone edge level,
 * mean behind below it, WALL_LUMEN voxels of lumen behind it all below it, and what lies
 * between the frame's front and the step dense on average with no such lumen in it.
 * Where the median of the lines lies more than WALL_MIN_SHIFT_MM behind the frame's
 * front, the canal moves back so that its front is that wall (centre and front radius;
 * the back wall stays), and the body, whose depth the column frame measured from the old
 * front, reaches it. A wall is a surface: a slice whose track lies in marrow (searched up to
 * WALL_BACK_MM behind the canal's back wall) keeps the frame when neither neighbouring slice
 * moves too (below the last body at a field's caudal end the track runs on over the
 * posterior elements, bone on its core; a step behind the articular processes read as a
 * wall on every other slice, 9-19 mm behind the front, and the processes became body). */
#define WALL_FRONT_MM 4.0
#define WALL_BACK_MM 12.0
#define WALL_STEP 2
#define WALL_LUMEN 3 /* 6 mm of lumen behind the wall */
#define WALL_MIN_SHIFT_MM 5.0 /* 2.5 working voxels: smaller differences are the step's noise */

/* Posterior body wall (LPS y of the step) on column i of slice k between rows j_lo and
 * j_hi (j_front: the frame's canal front); NAN when no step. */
static double wall_step(const SegGrid *grid, size_t k, long i, long j_lo, long j_front,
                        long j_hi, double edge)
{
    const size_t *d = grid->dims;
    if (i < 0 || i >= (long)d[0])
        return NAN;
    if (j_lo < WALL_STEP) j_lo = WALL_STEP;
    if (j_hi > (long)d[1] - 1 - WALL_STEP) j_hi = (long)d[1] - 1 - WALL_STEP;
    double best = 0, at = NAN;
    for (long j = j_lo; j <= j_hi; j++) {
        /* boundary between rows j (in front) and j + 1 (behind) */
        double sa = 0, sb = 0;
        bool ok = true;
        for (long q = 0; q < WALL_STEP && ok; q++) {
            int ha = grid->hu[seg_idx(d, (size_t)i, (size_t)(j - q), k)];
            int hb = grid->hu[seg_idx(d, (size_t)i, (size_t)(j + 1 + q), k)];
            if (ha == SEG_OUTSIDE || hb == SEG_OUTSIDE)
                ok = false;
            sa += ha;
            sb += hb;
        }
        /* the lumen behind the wall: WALL_LUMEN voxels all below the edge level */
        for (long q = 0; q < WALL_LUMEN && ok; q++) {
            long jq = j + 1 + q;
            if (jq >= (long)d[1] || grid->hu[seg_idx(d, (size_t)i, (size_t)jq, k)] >= edge)
                ok = false;
        }
        /* what the wall gives back to the body, from the frame's front, is dense on
         * average (marrow) and holds no lumen (WALL_LUMEN voxels in a row below the edge
         * level): not the canal with something dense behind it */
        if (ok && j > j_front) {
            double sf = 0;
            long dark = 0;
            for (long q = j_front < 0 ? 0 : j_front; q <= j && ok; q++) {
                int h = grid->hu[seg_idx(d, (size_t)i, (size_t)q, k)];
                sf += h;
                dark = h < edge ? dark + 1 : 0;
                if (dark >= WALL_LUMEN)
                    ok = false;
            }
            ok = ok && sf >= edge * (double)(j - (j_front < 0 ? 0 : j_front) + 1);
        }
        if (!ok)
            continue;
        sa /= WALL_STEP;
        sb /= WALL_STEP;
        if (sa >= edge && sb < edge && sa - sb > best) {
            best = sa - sb;
            at = grid->origin[1] + grid->g * ((double)j + 0.5);
        }
    }
    return at;
}

/* Mean working-grid HU over the core of the frame's canal ellipse (half its radii) on
 * slice k; NAN when nothing of it is in the grid. */
static double canal_core_mean(const SegGrid *grid, size_t k, const SegSlice *sl)
{
    const size_t *d = grid->dims;
    const double g = grid->g;
    double sum = 0;
    size_t n = 0;
    for (double y = -0.5 * sl->ry_ant; y <= 0.5 * sl->ry_post; y += 0.5 * g)
        for (double x = -0.5 * sl->rx; x <= 0.5 * sl->rx; x += 0.5 * g) {
            double ry = y < 0 ? sl->ry_ant : sl->ry_post;
            if (4.0 * (x * x / (sl->rx * sl->rx) + y * y / (ry * ry)) > 1.0)
                continue;
            long i = lround((sl->cx + x - grid->origin[0]) / g);
            long j = lround((sl->cy + y - grid->origin[1]) / g);
            if (i < 0 || j < 0 || i >= (long)d[0] || j >= (long)d[1])
                continue;
            int h = grid->hu[seg_idx(d, (size_t)i, (size_t)j, k)];
            if (h == SEG_OUTSIDE)
                continue;
            sum += h;
            n++;
        }
    return n ? sum / (double)n : NAN;
}

size_t sm_seg_canal_refine(const SegGrid *grid, double edge, SegFrame *frame)
{
    const double g = grid->g;
    static const double off[WALL_NCOLS] = {-2.0 * WALL_OFF_MM, -WALL_OFF_MM, 0.0, WALL_OFF_MM,
                                           2.0 * WALL_OFF_MM};
    size_t moved = 0;
    if (frame->k1 < frame->k0)
        return 0;
    const size_t nk = frame->k1 - frame->k0 + 1;
    SegSlice *mv = malloc(nk * sizeof *mv);
    uint8_t *is_mv = calloc(nk, sizeof *is_mv); /* 1: moved, 2: moved from marrow */
    if (!mv || !is_mv) {
        free(mv);
        free(is_mv);
        return 0; /* out of memory: the frame as tracked */
    }
    for (size_t k = frame->k0; k <= frame->k1; k++) {
        SegSlice *sl = &mv[k - frame->k0];
        *sl = frame->s[k];
        double front = sl->cy - sl->ry_ant;
        long j_front = lround((front - grid->origin[1]) / g);
        long j_lo = j_front - lround(WALL_FRONT_MM / g);
        /* never as far back as the canal's back wall (the laminae's surfaces are
         * stronger steps) */
        double back_mm = sl->ry_post - g < WALL_BACK_MM ? sl->ry_post - g : WALL_BACK_MM;
        /* a track in marrow (its core as dense as the edge level on average: a fatty
         * body's centre, where the canal turns back into the sacrum): its back wall is the
         * posterior body wall itself, and the canal lies behind it */
        double core = canal_core_mean(grid, k, sl);
        bool in_marrow = !isnan(core) && core >= edge;
        if (in_marrow)
            back_mm = sl->ry_post + WALL_BACK_MM;
        long j_hi = lround((sl->cy + back_mm - grid->origin[1]) / g);
        double w[WALL_NCOLS];
        size_t nw = 0;
        for (int c = 0; c < WALL_NCOLS; c++) {
            long i = lround((sl->cx + off[c] - grid->origin[0]) / g);
            double y = wall_step(grid, k, i, j_lo, j_front, j_hi, edge);
            if (!isnan(y))
                w[nw++] = y;
        }
        if (nw < (WALL_NCOLS + 1) / 2 + 1)
            continue; /* no wall on most lines: keep the frame */
        qsort(w, nw, sizeof w[0], sm_cmp_double);
        double wall = nw % 2 ? w[nw / 2] : 0.5 * (w[nw / 2 - 1] + w[nw / 2]);
        if (wall <= front + WALL_MIN_SHIFT_MM)
            continue;
        /* the body's depth was measured from the old front: it now reaches the wall */
        double ant = sl->by - 0.5 * sl->depth;
        if (wall - ant > sl->depth) {
            sl->depth = wall - ant;
            sl->by = 0.5 * (ant + wall);
        }
        double back = sl->cy + sl->ry_post;
        sl->cy = wall + sl->ry_ant;
        sl->ry_post = back - sl->cy < 3.0 ? 3.0 : back - sl->cy;
        is_mv[k - frame->k0] = in_marrow ? 2 : 1;
    }
    for (size_t q = 0; q < nk; q++) {
        if (!is_mv[q] ||
            (is_mv[q] == 2 && !((q > 0 && is_mv[q - 1]) || (q + 1 < nk && is_mv[q + 1]))))
            continue;
        frame->s[frame->k0 + q] = mv[q];
        moved++;
    }
    free(mv);
    free(is_mv);
    return moved;
}
