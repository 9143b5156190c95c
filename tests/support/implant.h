/* Test helper that implants synthetic lytic or blastic lesions into a CT volume inside a
 * mask (e.g. one real vertebral body), with texture noise and a soft boundary. */
#ifndef SM_TEST_IMPLANT_H
#define SM_TEST_IMPLANT_H

#include "sm_core.h"

typedef struct SmImplant {
    double center_ijk[3]; /* ellipsoid centre, voxel indices */
    double radii_mm[3];   /* semi-axes along the grid axes, mm */
    double target_hu;     /* mean HU of the lesion tissue (e.g. 40 lytic, 650 blastic) */
    double texture_hu;    /* SD of the lesion's own Gaussian texture */
    double edge_mm;       /* width of the blend between bone and lesion (0: sharp) */
    double wobble;        /* 0..0.3: relative irregularity of the boundary */
    uint64_t seed;
} SmImplant;

/* Changes the voxels of ct (I16) inside mask (U8/U16, voxels == mask_value) that lie in the
 * implant: HU -> (1-w)*HU + w*(target + texture), w = 1 inside and a linear ramp of width
 * edge_mm across the (wobbly) boundary. Returns the number of mask voxels whose w >= 0.5
 * (the truth lesion volume). With dry_run the CT is not changed (count only). */
size_t sm_test_implant(SmVolume *ct, const SmVolume *mask, unsigned mask_value,
                       const SmImplant *imp, bool dry_run);

/* Scales imp->radii_mm so that the implant covers about target_fraction of the mask_value
 * voxels (bisection over a factor); returns the achieved fraction. */
double sm_test_implant_fit(const SmVolume *ct, const SmVolume *mask, unsigned mask_value,
                           SmImplant *imp, double target_fraction);

/* Deterministic generator for tests: uniform in [0,1) and standard normal. */
double sm_test_rand_uniform(uint64_t *state);
double sm_test_rand_normal(uint64_t *state);

#endif
