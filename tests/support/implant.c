/* Implants synthetic lesions (lytic / blastic tissue with texture and a soft, irregular
 * boundary) into a CT inside a mask, for lesion-detection tests on real scans. */
#include "implant.h"

#include <math.h>

double sm_test_rand_uniform(uint64_t *state)
{
    /* splitmix64 */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

double sm_test_rand_normal(uint64_t *state)
{
    double u = sm_test_rand_uniform(state), v = sm_test_rand_uniform(state);
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Hash of a voxel position and seed to a normal deviate: texture independent of the
 * visiting order. */
static double voxel_normal(uint64_t seed, size_t idx)
{
    uint64_t s = seed * 0x100000001B3ull ^ (uint64_t)idx * 0x9E3779B97F4A7C15ull;
    return sm_test_rand_normal(&s);
}

static unsigned mask_at(const SmVolume *m, size_t idx)
{
    return m->type == SM_VOXEL_U8 ? ((const uint8_t *)m->data)[idx] : ((const uint16_t *)m->data)[idx];
}

size_t sm_test_implant(SmVolume *ct, const SmVolume *mask, unsigned mask_value,
                       const SmImplant *imp, bool dry_run)
{
    size_t nx = ct->dims[0], ny = ct->dims[1], nz = ct->dims[2], count = 0;
    int16_t *d = ct->data;
    /* boundary wobble: three low-frequency angular harmonics with seeded phases */
    uint64_t st = imp->seed ^ 0xA5A5A5A5ull;
    double ph[6];
    for (int q = 0; q < 6; q++)
        ph[q] = 6.283185307179586 * sm_test_rand_uniform(&st);
    double rmax = fmax(imp->radii_mm[0], fmax(imp->radii_mm[1], imp->radii_mm[2]));
    for (size_t k = 0; k < nz; k++)
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                size_t idx = i + nx * (j + ny * k);
                if (mask_at(mask, idx) != mask_value)
                    continue;
                double p[3] = {((double)i - imp->center_ijk[0]) * ct->spacing[0],
                               ((double)j - imp->center_ijk[1]) * ct->spacing[1],
                               ((double)k - imp->center_ijk[2]) * ct->spacing[2]};
                double q2 = 0.0;
                for (int a = 0; a < 3; a++)
                    q2 += (p[a] / imp->radii_mm[a]) * (p[a] / imp->radii_mm[a]);
                double rho = sqrt(q2);
                double az = atan2(p[1], p[0]), el = atan2(p[2], hypot(p[0], p[1]));
                double wob = 1.0 + imp->wobble * (0.5 * sin(2.0 * az + ph[0]) + 0.3 * sin(3.0 * az + ph[1]) +
                                                  0.4 * sin(2.0 * el + ph[2]) * cos(az + ph[3]));
                /* signed distance to the boundary in mm (approximate for an ellipsoid) */
                double dist = (wob - rho) * rmax;
                double w;
                if (imp->edge_mm <= 0.0)
                    w = dist >= 0.0 ? 1.0 : 0.0;
                else
                    w = fmin(1.0, fmax(0.0, 0.5 + dist / imp->edge_mm));
                if (w >= 0.5)
                    count++;
                if (dry_run || w <= 0.0)
                    continue;
                double t = imp->target_hu + imp->texture_hu * voxel_normal(imp->seed, idx);
                double h = (1.0 - w) * d[idx] + w * t;
                d[idx] = (int16_t)lround(fmax(-1024.0, fmin(3071.0, h)));
            }
    return count;
}

double sm_test_implant_fit(const SmVolume *ct, const SmVolume *mask, unsigned mask_value,
                           SmImplant *imp, double target_fraction)
{
    size_t n = 0, total = ct->dims[0] * ct->dims[1] * ct->dims[2];
    for (size_t x = 0; x < total; x++)
        n += mask_at(mask, x) == mask_value;
    if (n == 0)
        return 0.0;
    double base[3] = {imp->radii_mm[0], imp->radii_mm[1], imp->radii_mm[2]};
    double lo = 0.05, hi = 20.0, frac = 0.0;
    for (int it = 0; it < 40; it++) {
        double s = 0.5 * (lo + hi);
        for (int a = 0; a < 3; a++)
            imp->radii_mm[a] = base[a] * s;
        frac = (double)sm_test_implant((SmVolume *)ct, mask, mask_value, imp, true) / (double)n;
        if (frac < target_fraction)
            lo = s;
        else
            hi = s;
    }
    return frac;
}
