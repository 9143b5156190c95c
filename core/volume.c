/* Volume allocation with checked sizes, geometry setters and whole-volume statistics. */
#include "sm_core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t sm_voxel_size(SmVoxelType type)
{
    switch (type) {
    case SM_VOXEL_I16: return 2;
    case SM_VOXEL_F32: return 4;
    case SM_VOXEL_U8: return 1;
    case SM_VOXEL_U16: return 2;
    }
    return 0;
}

const char *sm_voxel_type_name(SmVoxelType type)
{
    switch (type) {
    case SM_VOXEL_I16: return "int16";
    case SM_VOXEL_F32: return "float32";
    case SM_VOXEL_U8: return "uint8";
    case SM_VOXEL_U16: return "uint16";
    }
    return "unknown";
}

bool sm_size_mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

bool sm_size_voxels(const size_t dims[3], size_t elem, size_t *out)
{
    size_t n;
    return sm_size_mul(dims[0], dims[1], &n) && sm_size_mul(n, dims[2], &n) &&
           sm_size_mul(n, elem, out);
}

static void meta_init(SmVolumeMeta *m)
{
    memset(m, 0, sizeof *m);
    m->slice_thickness_mm = NAN;
    m->kvp = NAN;
    m->gantry_tilt_deg = 0.0;
}

static SmVolume *volume_alloc(SmError **error, const size_t dims[3], SmVoxelType type, bool zero)
{
    size_t bytes;
    size_t elem = sm_voxel_size(type);
    if (elem == 0) {
        sm_error_set(error, SM_ERR_USAGE, "unknown voxel type %d", (int)type);
        return NULL;
    }
    if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0) {
        sm_error_set(error, SM_ERR_USAGE, "volume dimensions %zux%zux%zu: every dimension must be at least 1",
                     dims[0], dims[1], dims[2]);
        return NULL;
    }
    /* Keep headroom for index arithmetic in ptrdiff_t. */
    if (!sm_size_voxels(dims, elem, &bytes) || bytes > (size_t)PTRDIFF_MAX / 2) {
        sm_error_set(error, SM_ERR_NOMEM, "volume dimensions %zux%zux%zu overflow the address space",
                     dims[0], dims[1], dims[2]);
        return NULL;
    }
    SmVolume *v = calloc(1, sizeof *v);
    if (!v) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory allocating a volume header");
        return NULL;
    }
    v->data = zero ? calloc(1, bytes) : malloc(bytes);
    if (!v->data) {
        free(v);
        sm_error_set(error, SM_ERR_NOMEM, "out of memory allocating %zux%zux%zu %s voxels (%zu bytes)",
                     dims[0], dims[1], dims[2], sm_voxel_type_name(type), bytes);
        return NULL;
    }
    memcpy(v->dims, dims, sizeof v->dims);
    v->type = type;
    for (int a = 0; a < 3; a++)
        v->spacing[a] = 1.0;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            v->affine[r][c] = r == c ? 1.0 : 0.0;
    meta_init(&v->meta);
    return v;
}

SmVolume *sm_volume_create(SmError **error, const size_t dims[3], SmVoxelType type)
{
    return volume_alloc(error, dims, type, true);
}

SmVolume *sm_volume_create_uninit(SmError **error, const size_t dims[3], SmVoxelType type)
{
    return volume_alloc(error, dims, type, false);
}

void sm_volume_destroy(SmVolume *vol)
{
    if (!vol)
        return;
    free(vol->data);
    free(vol);
}

size_t sm_volume_n_voxels(const SmVolume *vol)
{
    return vol->dims[0] * vol->dims[1] * vol->dims[2];
}

void sm_volume_copy_geometry(SmVolume *dst, const SmVolume *src)
{
    memcpy(dst->spacing, src->spacing, sizeof dst->spacing);
    memcpy(dst->affine, src->affine, sizeof dst->affine);
    dst->meta = src->meta;
}

void sm_volume_set_geometry(SmVolume *vol, const double dir[3][3], const double spacing[3],
                            const double origin[3])
{
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++)
            vol->affine[r][c] = dir[r][c] * spacing[c];
        vol->affine[r][3] = origin[r];
    }
    vol->affine[3][0] = vol->affine[3][1] = vol->affine[3][2] = 0.0;
    vol->affine[3][3] = 1.0;
    for (int c = 0; c < 3; c++)
        vol->spacing[c] = spacing[c];
}

double sm_volume_get(const SmVolume *vol, size_t i, size_t j, size_t k)
{
    size_t idx = i + vol->dims[0] * (j + vol->dims[1] * k);
    switch (vol->type) {
    case SM_VOXEL_I16: return ((const int16_t *)vol->data)[idx];
    case SM_VOXEL_F32: return ((const float *)vol->data)[idx];
    case SM_VOXEL_U8: return ((const uint8_t *)vol->data)[idx];
    case SM_VOXEL_U16: return ((const uint16_t *)vol->data)[idx];
    }
    return NAN;
}

SmVolume *sm_volume_to_i16(SmError **error, const SmVolume *vol)
{
    SmVolume *out = sm_volume_create_uninit(error, vol->dims, SM_VOXEL_I16);
    if (!out)
        return NULL;
    sm_volume_copy_geometry(out, vol);
    size_t n = sm_volume_n_voxels(vol);
    int16_t *restrict dst = out->data;
    if (vol->type == SM_VOXEL_I16) {
        memcpy(dst, vol->data, n * sizeof *dst);
        return out;
    }
    const void *src = vol->data;
    SmVoxelType type = vol->type;
#pragma omp parallel for default(none) shared(dst, src, n, type) schedule(static)
    for (size_t i = 0; i < n; i++) {
        double v;
        switch (type) {
        case SM_VOXEL_F32: v = ((const float *)src)[i]; break;
        case SM_VOXEL_U8: v = ((const uint8_t *)src)[i]; break;
        case SM_VOXEL_U16: v = ((const uint16_t *)src)[i]; break;
        default: v = ((const int16_t *)src)[i]; break;
        }
        v = isnan(v) ? 0.0 : floor(v + 0.5);
        dst[i] = (int16_t)(v < -32768.0 ? -32768.0 : v > 32767.0 ? 32767.0 : v);
    }
    return out;
}

/* Per-slice statistics of one voxel type: the loop body is specialised so the compiler
 * vectorises it (a per-voxel type switch costs more than the arithmetic). */
#define SLICE_STATS(T, ACC, data, plane, k, lo, hi, sum)                                      \
    do {                                                                                      \
        const T *restrict q_ = (const T *)(data) + (k) * (plane);                             \
        T mn_ = q_[0], mx_ = q_[0];                                                           \
        ACC s_ = 0;                                                                           \
        for (size_t p_ = 0; p_ < (plane); p_++) {                                             \
            T v_ = q_[p_];                                                                    \
            mn_ = v_ < mn_ ? v_ : mn_;                                                        \
            mx_ = v_ > mx_ ? v_ : mx_;                                                        \
            s_ += (ACC)v_;                                                                    \
        }                                                                                     \
        lo = (double)mn_, hi = (double)mx_, sum = (double)s_;                                 \
    } while (0)

void sm_volume_stats(const SmVolume *vol, double *min, double *max, double *mean)
{
    size_t n = sm_volume_n_voxels(vol);
    size_t nz = vol->dims[2], plane = vol->dims[0] * vol->dims[1];
    /* Per-slice results merged in slice order keep the figures identical at any thread count. */
    double *st = malloc(3 * nz * sizeof *st);
    if (!st) {
        double s = 0.0, lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            double v = sm_volume_get(vol, i, 0, 0);
            s += v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        *min = lo, *max = hi, *mean = n ? s / (double)n : NAN;
        return;
    }
    const void *data = vol->data;
    SmVoxelType type = vol->type;
#pragma omp parallel for default(none) shared(data, st, nz, plane, type) schedule(static)
    for (size_t k = 0; k < nz; k++) {
        double lo = 0.0, hi = 0.0, sum = 0.0;
        switch (type) {
        /* integer sums are exact (a slice holds far fewer than 2^47 voxels) and vectorise */
        case SM_VOXEL_I16: SLICE_STATS(int16_t, int64_t, data, plane, k, lo, hi, sum); break;
        case SM_VOXEL_F32: SLICE_STATS(float, double, data, plane, k, lo, hi, sum); break;
        case SM_VOXEL_U8: SLICE_STATS(uint8_t, int64_t, data, plane, k, lo, hi, sum); break;
        case SM_VOXEL_U16: SLICE_STATS(uint16_t, int64_t, data, plane, k, lo, hi, sum); break;
        }
        st[3 * k] = lo;
        st[3 * k + 1] = hi;
        st[3 * k + 2] = sum;
    }
    double lo = INFINITY, hi = -INFINITY, s = 0.0;
    for (size_t k = 0; k < nz; k++) {
        lo = st[3 * k] < lo ? st[3 * k] : lo;
        hi = st[3 * k + 1] > hi ? st[3 * k + 1] : hi;
        s += st[3 * k + 2];
    }
    free(st);
    *min = lo;
    *max = hi;
    *mean = s / (double)n;
}
