/* Vertebra bone on the working grid: filled bone in a box around the canal, ribs and
 * pelvis removed, canal lumen excluded, kept only where connected to the column; and the
 * disc-plane partition into segments. */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t sm_seg_segment_of(const SegDisc *discs, size_t n_discs, const double p[3])
{
    return sm_seg_segment_of_bent(discs, n_discs, p, 0.0, 0.0);
}

/* Number of disc planes below p: each plane's sideways (x) tilt followed up to lat_mm from
 * its centre and level beyond; bend lowers the cut at p (posterior elements). */
static size_t planes_below(const SegDisc *discs, size_t n_discs, const double p[3],
                           double lat_mm, double bend)
{
    size_t c = 0;
    for (size_t d = 0; d < n_discs; d++) {
        const SegDisc *q = &discs[d];
        double dx = p[0] - q->p[0];
        if (dx > lat_mm) dx = lat_mm;
        if (dx < -lat_mm) dx = -lat_mm;
        double s = q->n[0] * dx + q->n[1] * (p[1] - q->p[1]) + q->n[2] * (p[2] - q->p[2]) +
                   bend;
        if (s > 0)
            c++;
    }
    return c;
}

size_t sm_seg_segment_of_bent(const SegDisc *discs, size_t n_discs, const double p[3],
                              double posterior_mm, double slope)
{
    return planes_below(discs, n_discs, p, INFINITY,
                        slope * (posterior_mm > 0 ? posterior_mm : 0));
}

/* A disc plane's lateral tilt is measured over its footprint, the body's own width: on a
 * small cervical or upper-thoracic body a tilt of 10-12 degrees that is not there moves the
 * plane by little more than a millimetre at the footprint's edge, within the disc, so the
 * darkest plane does not pin it down; carried on to a rib 40 mm beside the canal the same
 * tilt moves the plane by 8 mm (random sweep 1928374/4, C1-T2 on 0.96 mm slices: a C7/T1
 * plane tilted 0.20 sideways put the left first rib on C7, which was then named T1). */
size_t sm_seg_segment_of_beside(const SegDisc *discs, size_t n_discs, const double p[3],
                                double lat_mm)
{
    return planes_below(discs, n_discs, p, lat_mm, 0.0);
}

/* The frame slice for working slice k: beyond the tracked range the end slice, up to
 * VERT_BOTTOM_MM below it and VERT_TOP_MM above it (the dens rises above the track end, into
 * C1's ring; spine.c labels bone there only when the top vertebra is C2, and then only near
 * the axis; the caudal end vertebra's body goes on below the track's end, and spine.c labels
 * bone more than 10 mm below it only above that body's measured end). */
#define VERT_TOP_MM 25.0
#define VERT_BOTTOM_MM 40.0 /* BOTTOM_EXT_MM (spine.c) */
static const SegSlice *slice_near(const SegFrame *fr, size_t k, double g)
{
    long margin = (long)(VERT_BOTTOM_MM / g), top = (long)(VERT_TOP_MM / g);
    if ((long)k < (long)fr->k0 - margin || (long)k > (long)fr->k1 + top)
        return NULL;
    if (k < fr->k0) return &fr->s[fr->k0];
    if (k > fr->k1) return &fr->s[fr->k1];
    return &fr->s[k];
}

/* Canal lumen on slice k: non-bone voxels 4-connected to the canal centre inside the
 * canal ellipse enlarged 1.6 times laterally (the lumbar canal is triangular) and 1.3
 * times front and back (a weak posterior body wall must not let it leak, nor the open
 * ring at disc levels). Marks them in out (slice plane). */
static void canal_lumen(const SegGrid *grid, const uint8_t *bone, const SegSlice *sl,
                        size_t k, uint8_t *out, size_t *queue)
{
    const size_t nx = grid->dims[0], ny = grid->dims[1];
    const double g = grid->g;
    long i0 = lround((sl->cx - grid->origin[0]) / g), j0 = lround((sl->cy - grid->origin[1]) / g);
    if (i0 < 0 || j0 < 0 || i0 >= (long)nx || j0 >= (long)ny)
        return;
    const uint8_t *b = bone + k * nx * ny;
    size_t start = (size_t)i0 + nx * (size_t)j0;
    if (b[start])
        return;
    size_t qh = 0, qt = 0;
    out[start] = 1;
    queue[qt++] = start;
    while (qh < qt) {
        size_t u = queue[qh++];
        long ui = (long)(u % nx), uj = (long)(u / nx);
        const long di[4] = {1, -1, 0, 0}, dj[4] = {0, 0, 1, -1};
        for (int q = 0; q < 4; q++) {
            long ii = ui + di[q], jj = uj + dj[q];
            if (ii < 0 || jj < 0 || ii >= (long)nx || jj >= (long)ny)
                continue;
            size_t w = (size_t)ii + nx * (size_t)jj;
            if (out[w] || b[w])
                continue;
            double dx = grid->origin[0] + g * (double)ii - sl->cx;
            double dy = grid->origin[1] + g * (double)jj - sl->cy;
            double ry = 1.3 * (dy < 0 ? sl->ry_ant : sl->ry_post), rx = 1.6 * sl->rx;
            if (dx * dx / (rx * rx) + dy * dy / (ry * ry) > 1.0)
                continue;
            out[w] = 1;
            queue[qt++] = w;
        }
    }
}

bool sm_seg_vertebra_mask(SmError **error, const SegGrid *grid, const uint8_t *bone,
                          const uint8_t *filled, const SegFrame *frame, const uint8_t *rib,
                          uint8_t *vmask)
{
    const size_t nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const double g = grid->g, ox = grid->origin[0], oy = grid->origin[1];
    uint8_t *seed = calloc(grid->n, 1);
    uint32_t *lab = malloc(grid->n * sizeof *lab);
    if (!seed || !lab) {
        free(seed);
        free(lab);
        sm_error_set(error, SM_ERR_NOMEM, "vertebra mask: out of memory");
        return false;
    }
    const size_t fr_k0 = frame->k0, fr_k1 = frame->k1;
#pragma omp parallel for default(none) shared(filled, rib, vmask, seed, frame) \
    firstprivate(nx, ny, nz, g, ox, oy, fr_k0, fr_k1) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        const SegSlice *sl = slice_near(frame, k, g);
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                size_t v = i + nx * (j + ny * k);
                vmask[v] = 0;
                if (!sl || !filled[v] || rib[v])
                    continue;
                double dx = ox + g * (double)i - sl->cx, dy = oy + g * (double)j - sl->cy;
                if (fabs(dx) > 60.0 || dy < -(sl->ry_ant + sl->depth + 12.0) ||
                    dy > sl->ry_post + 70.0)
                    continue;
                double ry = dy < 0 ? sl->ry_ant : sl->ry_post;
                double e = (dx * dx) / (sl->rx * sl->rx) + (dy * dy) / (ry * ry);
                /* canal lumen (it was filled as a hole); beyond the tracked range the frame
                 * is the end slice's, and its canal can lie on the S1 body */
                if (e <= 0.9 && k >= fr_k0 && k <= fr_k1)
                    continue;
                vmask[v] = 1;
                double rr = sqrt(dx * dx + dy * dy);
                double bdx = ox + g * (double)i - sl->bx, bdy = oy + g * (double)j - sl->by;
                if (rr <= (sl->rx > ry ? sl->rx : ry) + 6.0 || bdx * bdx + bdy * bdy < 25.0)
                    seed[v] = 1;
            }
    }
    /* remove the canal lumen (filled as a hole; its shape is not an ellipse) */
    {
        size_t plane = nx * ny;
        uint8_t *lum = malloc(plane);
        size_t *queue = malloc(plane * sizeof *queue);
        if (!lum || !queue) {
            free(lum);
            free(queue);
            free(seed);
            free(lab);
            sm_error_set(error, SM_ERR_NOMEM, "vertebra mask: out of memory");
            return false;
        }
        /* above the track's top, where the frame serves as its end slice (slice_near), the
         * lumen is followed slice by slice from the centroid of the one below: the canal
         * leaves the end slice's centre on a tilted column (a kyphotic upper thoracic spine
         * cut by the field's top), and a ring closed there (a lamina sloping over the canal)
         * would otherwise keep its canal filled as vertebra */
        SegSlice up = frame->s[frame->k1];
        for (size_t k = frame->k0; k < nz && slice_near(frame, k, g); k++) {
            memset(lum, 0, plane);
            const bool above = k > frame->k1;
            canal_lumen(grid, bone, above ? &up : &frame->s[k], k, lum, queue);
            double si = 0, sj = 0;
            size_t cnt = 0;
            for (size_t q = 0; q < plane; q++)
                if (lum[q]) {
                    vmask[q + k * plane] = 0;
                    seed[q + k * plane] = 0;
                    si += (double)(q % nx);
                    sj += (double)(q / nx);
                    cnt++;
                }
            if (k >= frame->k1) {
                if (!cnt)
                    break;
                up = frame->s[frame->k1];
                up.cx = ox + g * si / (double)cnt;
                up.cy = oy + g * sj / (double)cnt;
            }
        }
        free(lum);
        free(queue);
    }
    uint32_t nc = 0;
    if (!sm_seg_components_label(error, vmask, grid->dims, 26, lab, &nc)) {
        free(seed);
        free(lab);
        return false;
    }
    uint8_t *keep = calloc((size_t)nc + 1, 1);
    if (!keep) {
        free(seed);
        free(lab);
        sm_error_set(error, SM_ERR_NOMEM, "vertebra mask: out of memory");
        return false;
    }
    for (size_t v = 0; v < grid->n; v++)
        if (lab[v] && seed[v])
            keep[lab[v]] = 1;
    for (size_t v = 0; v < grid->n; v++)
        vmask[v] = lab[v] && keep[lab[v]];
    free(keep);
    free(seed);
    free(lab);
    /* bridge single-slice gaps of the per-slice filling (an open ring on one slice) */
    const int rz[3] = {0, 0, 1};
    return sm_seg_box_morph(error, vmask, grid->dims, rz, false) &&
           sm_seg_box_morph(error, vmask, grid->dims, rz, true);
}

