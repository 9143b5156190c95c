/* 4x4 affine arithmetic and index <-> patient (LPS) mapping. */
#include "sm_core.h"

#include <math.h>
#include <string.h>

void sm_mat4_mul(const double a[4][4], const double b[4][4], double out[4][4])
{
    double t[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            double s = 0.0;
            for (int k = 0; k < 4; k++)
                s += a[r][k] * b[k][c];
            t[r][c] = s;
        }
    memcpy(out, t, sizeof t);
}

bool sm_mat4_affine_inverse(const double m[4][4], double out[4][4])
{
    const double a = m[0][0], b = m[0][1], c = m[0][2];
    const double d = m[1][0], e = m[1][1], f = m[1][2];
    const double g = m[2][0], h = m[2][1], i = m[2][2];
    double det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
    if (!isfinite(det) || fabs(det) < 1e-12)
        return false;
    double inv[3][3] = {
        {(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det},
        {(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det},
        {(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det},
    };
    double t[4][4];
    for (int r = 0; r < 3; r++) {
        for (int col = 0; col < 3; col++)
            t[r][col] = inv[r][col];
        t[r][3] = -(inv[r][0] * m[0][3] + inv[r][1] * m[1][3] + inv[r][2] * m[2][3]);
    }
    t[3][0] = t[3][1] = t[3][2] = 0.0;
    t[3][3] = 1.0;
    memcpy(out, t, sizeof t);
    return true;
}

void sm_mat4_apply(const double m[4][4], const double p[3], double out[3])
{
    double t[3];
    for (int r = 0; r < 3; r++)
        t[r] = m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3];
    memcpy(out, t, sizeof t);
}

void sm_volume_index_to_lps(const SmVolume *vol, const double ijk[3], double lps[3])
{
    sm_mat4_apply(vol->affine, ijk, lps);
}

bool sm_volume_lps_to_index(const SmVolume *vol, const double lps[3], double ijk[3])
{
    double inv[4][4];
    if (!sm_mat4_affine_inverse(vol->affine, inv))
        return false;
    sm_mat4_apply(inv, lps, ijk);
    return true;
}

bool sm_volume_same_grid(const SmVolume *a, const SmVolume *b, double tol_mm)
{
    for (int d = 0; d < 3; d++)
        if (a->dims[d] != b->dims[d])
            return false;
    for (int corner = 0; corner < 8; corner++) {
        double ijk[3];
        for (int d = 0; d < 3; d++)
            ijk[d] = (corner >> d & 1) ? (double)(a->dims[d] - 1) : 0.0;
        double pa[3], pb[3];
        sm_mat4_apply(a->affine, ijk, pa);
        sm_mat4_apply(b->affine, ijk, pb);
        double d2 = 0.0;
        for (int d = 0; d < 3; d++)
            d2 += (pa[d] - pb[d]) * (pa[d] - pb[d]);
        if (!(sqrt(d2) <= tol_mm))
            return false;
    }
    return true;
}

bool sm_volume_grid_match(const SmVolume *a, const SmVolume *b, double tol_mm, SmGridMap *map)
{
    SmGridMap m;
    bool used[3] = {false, false, false};
    for (int d = 0; d < 3; d++) {
        /* b's axis d: find the axis of a with a parallel step vector of equal length. */
        int best = -1;
        bool flip = false;
        for (int e = 0; e < 3 && best < 0; e++) {
            if (used[e] || a->dims[e] != b->dims[d])
                continue;
            double dp = 0.0, dm = 0.0;
            for (int r = 0; r < 3; r++) {
                dp += fabs(b->affine[r][d] - a->affine[r][e]);
                dm += fabs(b->affine[r][d] + a->affine[r][e]);
            }
            /* Step mismatch accumulates over the axis: bound it by tol over the extent. */
            double lim = tol_mm / (double)(a->dims[e] > 1 ? a->dims[e] - 1 : 1);
            if (dp <= lim) {
                best = e;
                flip = false;
            } else if (dm <= lim) {
                best = e;
                flip = true;
            }
        }
        if (best < 0)
            return false;
        used[best] = true;
        m.perm[d] = best;
        m.flip[d] = flip;
    }
    /* Check that b's corners land on a's corners. */
    for (int corner = 0; corner < 8; corner++) {
        double ib[3], ia[3], pb[3], pa[3];
        for (int d = 0; d < 3; d++)
            ib[d] = (corner >> d & 1) ? (double)(b->dims[d] - 1) : 0.0;
        for (int d = 0; d < 3; d++)
            ia[m.perm[d]] = m.flip[d] ? (double)(b->dims[d] - 1) - ib[d] : ib[d];
        sm_mat4_apply(b->affine, ib, pb);
        sm_mat4_apply(a->affine, ia, pa);
        double d2 = 0.0;
        for (int r = 0; r < 3; r++)
            d2 += (pa[r] - pb[r]) * (pa[r] - pb[r]);
        if (!(sqrt(d2) <= tol_mm))
            return false;
    }
    if (map)
        *map = m;
    return true;
}

SmVolume *sm_volume_reindex(SmError **error, const SmVolume *a, const SmVolume *b,
                            const SmGridMap *map)
{
    SmVolume *out = sm_volume_create_uninit(error, a->dims, b->type);
    if (!out)
        return NULL;
    memcpy(out->spacing, a->spacing, sizeof out->spacing);
    memcpy(out->affine, a->affine, sizeof out->affine);
    out->meta = b->meta;
    size_t es = sm_voxel_size(b->type);
    const size_t *db = b->dims, *da = a->dims;
    /* Stride in out (a's layout) of one step along each of b's axes. */
    ptrdiff_t stride_a[3] = {1, (ptrdiff_t)da[0], (ptrdiff_t)(da[0] * da[1])};
    ptrdiff_t step[3], start = 0;
    for (int d = 0; d < 3; d++) {
        ptrdiff_t s = stride_a[map->perm[d]];
        step[d] = map->flip[d] ? -s : s;
        if (map->flip[d])
            start += s * (ptrdiff_t)(db[d] - 1);
    }
    const unsigned char *src = b->data;
    unsigned char *dst = out->data;
    size_t nk = db[2], nj = db[1], ni = db[0];
#pragma omp parallel for default(none) shared(src, dst, step, start, nk, nj, ni, es) schedule(static)
    for (size_t k = 0; k < nk; k++)
        for (size_t j = 0; j < nj; j++) {
            ptrdiff_t o = start + step[2] * (ptrdiff_t)k + step[1] * (ptrdiff_t)j;
            const unsigned char *s = src + (k * nj + j) * ni * es;
            for (size_t i = 0; i < ni; i++, o += step[0])
                memcpy(dst + (size_t)o * es, s + i * es, es);
        }
    return out;
}
