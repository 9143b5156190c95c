/* Column frame: body centre, AP depth and half-width in front of the canal on every slice,
 * robustly smoothed (disc slices carry no bone and are interpolated), and the arc length
 * of the body axis. */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool filled_at(const SegGrid *grid, const uint8_t *filled, double x, double y, size_t k)
{
    long i = lround((x - grid->origin[0]) / grid->g), j = lround((y - grid->origin[1]) / grid->g);
    if (i < 0 || j < 0 || i >= (long)grid->dims[0] || j >= (long)grid->dims[1])
        return false;
    return filled[seg_idx(grid->dims, (size_t)i, (size_t)j, k)] != 0;
}

void sm_seg_column_body_axis(const SegGrid *grid, const uint8_t *filled, SegFrame *frame)
{
    const double g = grid->g;
    const double step = 0.5 * g;
    size_t nz = frame->nz;
    double *raw = malloc(4 * nz * sizeof *raw);
    double *win = malloc(64 * sizeof *win);
    if (!raw || !win) {
        free(raw);
        free(win);
        return; /* frame keeps canal-only geometry: body centre = canal centre */
    }
    for (size_t k = frame->k0; k <= frame->k1; k++) {
        SegSlice *sl = &frame->s[k];
        double *r = raw + 4 * k;
        r[0] = r[1] = r[2] = r[3] = NAN;
        /* from the canal's anterior wall forward through filled bone */
        double start = sl->ry_ant;
        double y = sl->cy - start;
        /* move into bone (up to 4 mm) */
        double t = 0;
        while (t < 4.0 && !filled_at(grid, filled, sl->cx, y - t, k))
            t += step;
        if (t >= 4.0)
            continue;
        double y_post = y - t;
        double len = 0;
        int miss = 0;
        double last = 0;
        while (len < 80.0) {
            len += step;
            if (filled_at(grid, filled, sl->cx, y_post - len, k)) {
                miss = 0;
                last = len;
            } else if (++miss * step > 2.5) {
                break;
            }
        }
        if (last < 8.0)
            continue; /* disc level or no body */
        double by = y_post - 0.5 * last;
        /* half width at the body centre */
        double wl = 0, wr = 0;
        miss = 0;
        for (double d = step; d < 50.0; d += step) {
            if (filled_at(grid, filled, sl->cx + d, by, k)) { wl = d; miss = 0; }
            else if (++miss * step > 2.5) break;
        }
        miss = 0;
        for (double d = step; d < 50.0; d += step) {
            if (filled_at(grid, filled, sl->cx - d, by, k)) { wr = d; miss = 0; }
            else if (++miss * step > 2.5) break;
        }
        r[0] = sl->cx + 0.5 * (wl - wr);
        r[1] = by;
        r[2] = last;
        r[3] = 0.5 * (wl + wr);
    }
    /* running median over +-6 slices of each field, then fill by interpolation */
    const long hw = (long)(12.0 / g);
    double meds[4] = {0, 0, 0, 0};
    for (int f = 0; f < 4; f++) {
        double *all = malloc(nz * sizeof *all);
        size_t na = 0;
        if (all) {
            for (size_t k = frame->k0; k <= frame->k1; k++)
                if (!isnan(raw[4 * k + f]))
                    all[na++] = raw[4 * k + f];
            if (na) {
                qsort(all, na, sizeof *all, sm_cmp_double);
                meds[f] = all[na / 2];
            }
            free(all);
        }
    }
    for (size_t k = frame->k0; k <= frame->k1; k++)
        frame->s[k].raw_depth = raw[4 * k + 2];
    frame->body_depth_med = meds[2] > 0 ? meds[2] : 30.0;
    frame->body_halfw_med = meds[3] > 0 ? meds[3] : 20.0;
    for (size_t k = frame->k0; k <= frame->k1; k++) {
        SegSlice *sl = &frame->s[k];
        double vals[4];
        for (int f = 0; f < 4; f++) {
            size_t nw = 0;
            for (long d = -hw; d <= hw && nw < 64; d++) {
                long m = (long)k + d;
                if (m < (long)frame->k0 || m > (long)frame->k1)
                    continue;
                double v = raw[4 * m + f];
                if (f == 0 || f == 1) {
                    /* express relative to the canal so curvature does not bias the median */
                    v = f == 0 ? v - frame->s[m].cx : v - frame->s[m].cy;
                }
                if (!isnan(v))
                    win[nw++] = v;
            }
            if (nw == 0) {
                vals[f] = NAN;
                continue;
            }
            qsort(win, nw, sizeof *win, sm_cmp_double);
            vals[f] = win[nw / 2];
        }
        double dy = isnan(vals[1]) ? -(sl->ry_ant + 0.5 * frame->body_depth_med) : vals[1];
        sl->bx = sl->cx + (isnan(vals[0]) ? 0 : vals[0]);
        sl->by = sl->cy + dy;
        sl->depth = isnan(vals[2]) ? frame->body_depth_med : vals[2];
        sl->half_width = isnan(vals[3]) ? frame->body_halfw_med : vals[3];
    }
    /* light smoothing of the axis (+-2 slices) */
    for (size_t k = frame->k0; k <= frame->k1; k++) {
        double sx = 0, sy = 0;
        int c = 0;
        for (long d = -2; d <= 2; d++) {
            long m = (long)k + d;
            if (m < (long)frame->k0 || m > (long)frame->k1)
                continue;
            sx += frame->s[m].bx - frame->s[m].cx;
            sy += frame->s[m].by - frame->s[m].cy;
            c++;
        }
        raw[4 * k] = sx / c;
        raw[4 * k + 1] = sy / c;
    }
    double arc = 0;
    for (size_t k = frame->k0; k <= frame->k1; k++) {
        SegSlice *sl = &frame->s[k];
        sl->bx = sl->cx + raw[4 * k];
        sl->by = sl->cy + raw[4 * k + 1];
        if (k > frame->k0) {
            const SegSlice *pv = &frame->s[k - 1];
            double dx = sl->bx - pv->bx, dy = sl->by - pv->by;
            arc += sqrt(dx * dx + dy * dy + g * g);
        }
        sl->arc = arc;
    }
    free(raw);
    free(win);
}

bool sm_seg_frame_at(const SegFrame *frame, const SegGrid *grid, double z, SegSlice *out)
{
    double fk = (z - grid->origin[2]) / grid->g;
    if (fk < (double)frame->k0 - 0.5 || fk > (double)frame->k1 + 0.5)
        return false;
    if (fk < (double)frame->k0) fk = (double)frame->k0;
    if (fk > (double)frame->k1) fk = (double)frame->k1;
    size_t k = (size_t)fk;
    if (k >= frame->k1) {
        *out = frame->s[frame->k1];
        return true;
    }
    double f = fk - (double)k;
    const SegSlice *a = &frame->s[k], *b = &frame->s[k + 1];
    *out = *a;
    out->cx = a->cx + f * (b->cx - a->cx);
    out->cy = a->cy + f * (b->cy - a->cy);
    out->rx = a->rx + f * (b->rx - a->rx);
    out->ry_ant = a->ry_ant + f * (b->ry_ant - a->ry_ant);
    out->ry_post = a->ry_post + f * (b->ry_post - a->ry_post);
    out->bx = a->bx + f * (b->bx - a->bx);
    out->by = a->by + f * (b->by - a->by);
    out->depth = a->depth + f * (b->depth - a->depth);
    out->half_width = a->half_width + f * (b->half_width - a->half_width);
    out->arc = a->arc + f * (b->arc - a->arc);
    return true;
}
