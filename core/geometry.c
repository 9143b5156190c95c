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
