/* Resamples an I16 HU volume of any orientation onto the isotropic LPS-aligned 2 mm working
 * grid, averaging 8 trilinear sub-samples per voxel (a mild anti-alias filter). */
#include "segment_internal.h"

#include <math.h>
#include <stdlib.h>

static double trilinear(const int16_t *d, const size_t dims[3], double x, double y, double z)
{
    const double nx = (double)dims[0], ny = (double)dims[1], nz = (double)dims[2];
    if (x < -0.5 || y < -0.5 || z < -0.5 || x > nx - 0.5 || y > ny - 0.5 || z > nz - 0.5)
        return NAN;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (z < 0) z = 0;
    if (x > nx - 1) x = nx - 1;
    if (y > ny - 1) y = ny - 1;
    if (z > nz - 1) z = nz - 1;
    size_t i0 = (size_t)x, j0 = (size_t)y, k0 = (size_t)z;
    size_t i1 = i0 + 1 < dims[0] ? i0 + 1 : i0;
    size_t j1 = j0 + 1 < dims[1] ? j0 + 1 : j0;
    size_t k1 = k0 + 1 < dims[2] ? k0 + 1 : k0;
    double fx = x - (double)i0, fy = y - (double)j0, fz = z - (double)k0;
    const size_t sx = 1, sy = dims[0], sz = dims[0] * dims[1];
    (void)sx;
    double c00 = d[i0 + sy * j0 + sz * k0] * (1 - fx) + d[i1 + sy * j0 + sz * k0] * fx;
    double c10 = d[i0 + sy * j1 + sz * k0] * (1 - fx) + d[i1 + sy * j1 + sz * k0] * fx;
    double c01 = d[i0 + sy * j0 + sz * k1] * (1 - fx) + d[i1 + sy * j0 + sz * k1] * fx;
    double c11 = d[i0 + sy * j1 + sz * k1] * (1 - fx) + d[i1 + sy * j1 + sz * k1] * fx;
    double c0 = c00 * (1 - fy) + c10 * fy;
    double c1 = c01 * (1 - fy) + c11 * fy;
    return c0 * (1 - fz) + c1 * fz;
}

bool sm_seg_grid_build(SmError **error, const SmVolume *ct, SegGrid *grid)
{
    double inv[4][4];
    if (ct->type != SM_VOXEL_I16) {
        sm_error_set(error, SM_ERR_INTERNAL, "working grid: expected an I16 volume");
        return false;
    }
    if (!sm_mat4_affine_inverse(ct->affine, inv)) {
        sm_error_set(error, SM_ERR_GEOMETRY, "working grid: the CT affine is singular");
        return false;
    }
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int c = 0; c < 8; c++) {
        double ijk[3] = {(c & 1) ? (double)ct->dims[0] - 1 : 0,
                         (c & 2) ? (double)ct->dims[1] - 1 : 0,
                         (c & 4) ? (double)ct->dims[2] - 1 : 0};
        double p[3];
        sm_mat4_apply(ct->affine, ijk, p);
        for (int a = 0; a < 3; a++) {
            if (p[a] < lo[a]) lo[a] = p[a];
            if (p[a] > hi[a]) hi[a] = p[a];
        }
    }
    const double g = SEG_GRID_MM;
    for (int a = 0; a < 3; a++) {
        double ext = (hi[a] - lo[a]) / g;
        if (!(ext < 1e6)) {
            sm_error_set(error, SM_ERR_GEOMETRY, "working grid: field of view is implausible");
            return false;
        }
        grid->dims[a] = (size_t)floor(ext) + 1;
        grid->origin[a] = lo[a] + 0.5 * (ext - floor(ext)) * g;
    }
    grid->g = g;
    if (!sm_size_voxels(grid->dims, sizeof(int16_t), &grid->n)) {
        sm_error_set(error, SM_ERR_NOMEM, "working grid: size overflows");
        return false;
    }
    grid->n /= sizeof(int16_t);
    grid->hu = malloc(grid->n * sizeof(int16_t));
    if (!grid->hu) {
        sm_error_set(error, SM_ERR_NOMEM, "working grid: out of memory (%zu voxels)", grid->n);
        return false;
    }
    const int16_t *src = ct->data;
    int16_t *dst = grid->hu;
    const size_t nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const double ox = grid->origin[0], oy = grid->origin[1], oz = grid->origin[2];
    const size_t *cd = ct->dims;
    /* CT at least twice as fine as the grid in every direction: nearest sub-samples */
    const bool nearest = ct->spacing[0] <= 0.5 * g && ct->spacing[1] <= 0.5 * g &&
                         ct->spacing[2] <= 0.5 * g;
    double m[3][4];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            m[r][c] = inv[r][c];
    /* the 8 sub-sample offsets (+-g/4 along each LPS axis) in CT index space */
    double off[8][3];
    for (int s = 0; s < 8; s++) {
        double d[3] = {(s & 1) ? 0.25 * g : -0.25 * g, (s & 2) ? 0.25 * g : -0.25 * g,
                       (s & 4) ? 0.25 * g : -0.25 * g};
        for (int r = 0; r < 3; r++)
            off[s][r] = m[r][0] * d[0] + m[r][1] * d[1] + m[r][2] * d[2];
    }
#pragma omp parallel for default(none) shared(src, dst, cd, m, off) \
    firstprivate(nx, ny, nz, ox, oy, oz, g, nearest) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        for (size_t j = 0; j < ny; j++) {
            for (size_t i = 0; i < nx; i++) {
                double sum = 0;
                int cnt = 0;
                const double pc[3] = {ox + g * (double)i, oy + g * (double)j, oz + g * (double)k};
                const double xc = m[0][0] * pc[0] + m[0][1] * pc[1] + m[0][2] * pc[2] + m[0][3];
                const double yc = m[1][0] * pc[0] + m[1][1] * pc[1] + m[1][2] * pc[2] + m[1][3];
                const double zc = m[2][0] * pc[0] + m[2][1] * pc[1] + m[2][2] * pc[2] + m[2][3];
                for (int s = 0; s < 8; s++) {
                    double x = xc + off[s][0], y = yc + off[s][1], z = zc + off[s][2];
                    double v;
                    if (nearest) {
                        /* fine CT: 8 nearest voxels approximate a box average */
                        double fx = floor(x + 0.5), fy = floor(y + 0.5), fz = floor(z + 0.5);
                        if (fx < 0 || fy < 0 || fz < 0 || fx >= (double)cd[0] ||
                            fy >= (double)cd[1] || fz >= (double)cd[2])
                            v = NAN;
                        else
                            v = src[(size_t)fx + cd[0] * ((size_t)fy + cd[1] * (size_t)fz)];
                    } else {
                        v = trilinear(src, cd, x, y, z);
                    }
                    if (!isnan(v)) {
                        sum += v;
                        cnt++;
                    }
                }
                int16_t out = SEG_OUTSIDE;
                if (cnt > 0) {
                    double v = sum / cnt;
                    if (v < -32000) v = -32000;
                    if (v > 32767) v = 32767;
                    out = (int16_t)lround(v);
                }
                dst[i + nx * (j + ny * k)] = out;
            }
        }
    }
    return true;
}

void sm_seg_grid_free(SegGrid *grid)
{
    if (!grid)
        return;
    free(grid->hu);
    grid->hu = NULL;
}

double sm_seg_ct_nearest(const SmVolume *ct, const double inv[4][4], double x, double y,
                         double z)
{
    const double p[3] = {x, y, z};
    double ijk[3];
    sm_mat4_apply(inv, p, ijk);
    long i = lround(ijk[0]), j = lround(ijk[1]), k = lround(ijk[2]);
    if (i < 0 || j < 0 || k < 0 || i >= (long)ct->dims[0] || j >= (long)ct->dims[1] ||
        k >= (long)ct->dims[2])
        return NAN;
    const int16_t *hu = ct->data;
    return hu[(size_t)i + ct->dims[0] * ((size_t)j + ct->dims[1] * (size_t)k)];
}
