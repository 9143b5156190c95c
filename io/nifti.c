/* NIfTI-1/2 volumes and label maps in and out, converting NIfTI's RAS world to LPS. */
#include "sm_io.h"
#include "sm_io_files.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static double raw_value(const void *data, int datatype, size_t i)
{
    switch (datatype) {
    case DT_UINT8: return ((const uint8_t *)data)[i];
    case DT_INT8: return ((const int8_t *)data)[i];
    case DT_INT16: return ((const int16_t *)data)[i];
    case DT_UINT16: return ((const uint16_t *)data)[i];
    case DT_INT32: return ((const int32_t *)data)[i];
    case DT_UINT32: return ((const uint32_t *)data)[i];
    case DT_INT64: return (double)((const int64_t *)data)[i];
    case DT_UINT64: return (double)((const uint64_t *)data)[i];
    case DT_FLOAT32: return ((const float *)data)[i];
    case DT_FLOAT64: return ((const double *)data)[i];
    default: return NAN;
    }
}

static bool datatype_supported(int datatype)
{
    switch (datatype) {
    case DT_UINT8: case DT_INT8: case DT_INT16: case DT_UINT16: case DT_INT32:
    case DT_UINT32: case DT_INT64: case DT_UINT64: case DT_FLOAT32: case DT_FLOAT64:
        return true;
    default:
        return false;
    }
}

/* Picks exact storage: U8 for uint8 data, I16 for integers in int16 range, U16 for
 * larger non-negative integers (label maps), F32 otherwise. */
static SmVoxelType choose_type(const nifti_image *nim, double slope, double inter)
{
    size_t n = (size_t)nim->nvox;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v = raw_value(nim->data, nim->datatype, i) * slope + inter;
        if (!isfinite(v) || v != floor(v))
            return SM_VOXEL_F32;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (nim->datatype == DT_UINT8 && lo >= 0.0 && hi <= 255.0)
        return SM_VOXEL_U8;
    if (lo >= -32768.0 && hi <= 32767.0)
        return SM_VOXEL_I16;
    if (lo >= 0.0 && hi <= 65535.0)
        return SM_VOXEL_U16;
    return SM_VOXEL_F32;
}

bool sm_io_nifti_load(SmError **error, const char *path, SmVolume **out)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        sm_error_set(error, SM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    nifti_set_debug_level(0);
    nifti_image *nim = nifti_image_read(path, 1);
    if (!nim || !nim->data) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: not a readable NIfTI file (bad header or truncated data)", path);
        if (nim)
            nifti_image_free(nim);
        return false;
    }
    bool ok = false;
    SmVolume *vol = NULL;
    if (nim->nx < 1 || nim->ny < 1 || nim->nz < 1 || nim->nvox != nim->nx * nim->ny * nim->nz) {
        sm_error_set(error, SM_ERR_UNSUPPORTED,
                     "%s: only 3D volumes are supported (dims %lldx%lldx%lldx%lld)", path,
                     (long long)nim->nx, (long long)nim->ny, (long long)nim->nz, (long long)nim->nt);
        goto done;
    }
    if (!datatype_supported(nim->datatype)) {
        sm_error_set(error, SM_ERR_UNSUPPORTED, "%s: NIfTI datatype %d (%s) is not supported", path,
                     nim->datatype, nifti_datatype_string(nim->datatype));
        goto done;
    }
    double slope = nim->scl_slope, inter = nim->scl_inter;
    if (!isfinite(slope) || slope == 0.0) {
        slope = 1.0;
        inter = 0.0;
    }
    if (!isfinite(inter))
        inter = 0.0;
    size_t dims[3] = {(size_t)nim->nx, (size_t)nim->ny, (size_t)nim->nz};
    SmVoxelType type = choose_type(nim, slope, inter);
    vol = sm_volume_create_uninit(error, dims, type);
    if (!vol) {
        sm_error_prefix(error, "%s: ", path);
        goto done;
    }
    size_t n = sm_volume_n_voxels(vol);
    const void *src = nim->data;
    int dt = nim->datatype;
    void *dst = vol->data;
#pragma omp parallel for default(none) shared(src, dst, dt, n, type, slope, inter) schedule(static)
    for (size_t i = 0; i < n; i++) {
        double v = raw_value(src, dt, i) * slope + inter;
        switch (type) {
        case SM_VOXEL_I16: ((int16_t *)dst)[i] = (int16_t)v; break;
        case SM_VOXEL_U8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
        case SM_VOXEL_U16: ((uint16_t *)dst)[i] = (uint16_t)v; break;
        case SM_VOXEL_F32: ((float *)dst)[i] = (float)v; break;
        }
    }
    /* World matrix: sform, else qform, else scaled identity (Analyze). RAS -> LPS. */
    double m[4][4] = {{0}};
    if (nim->sform_code > 0) {
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                m[r][c] = nim->sto_xyz.m[r][c];
    } else if (nim->qform_code > 0) {
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                m[r][c] = nim->qto_xyz.m[r][c];
    } else {
        m[0][0] = nim->dx > 0 ? nim->dx : 1.0;
        m[1][1] = nim->dy > 0 ? nim->dy : 1.0;
        m[2][2] = nim->dz > 0 ? nim->dz : 1.0;
        m[3][3] = 1.0;
    }
    for (int c = 0; c < 4; c++) {
        m[0][c] = -m[0][c];
        m[1][c] = -m[1][c];
    }
    m[3][0] = m[3][1] = m[3][2] = 0.0;
    m[3][3] = 1.0;
    memcpy(vol->affine, m, sizeof m);
    for (int c = 0; c < 3; c++)
        vol->spacing[c] = sqrt(m[0][c] * m[0][c] + m[1][c] * m[1][c] + m[2][c] * m[2][c]);
    if (!(vol->spacing[0] > 0 && vol->spacing[1] > 0 && vol->spacing[2] > 0)) {
        sm_error_set(error, SM_ERR_GEOMETRY, "%s: degenerate voxel-to-world matrix", path);
        goto done;
    }
    snprintf(vol->meta.source, sizeof vol->meta.source, "nifti");
    snprintf(vol->meta.series_description, sizeof vol->meta.series_description, "%.64s",
             nim->descrip);
    ok = true;
done:
    nifti_image_free(nim);
    if (ok)
        *out = vol;
    else
        sm_volume_destroy(vol);
    return ok;
}

static int nifti_datatype(SmVoxelType t)
{
    switch (t) {
    case SM_VOXEL_I16: return DT_INT16;
    case SM_VOXEL_F32: return DT_FLOAT32;
    case SM_VOXEL_U8: return DT_UINT8;
    case SM_VOXEL_U16: return DT_UINT16;
    }
    return DT_UNKNOWN;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* .nii.gz output: the byte stream (header, extension, voxels) is cut into blocks of whole
 * slices of about GZ_BLOCK bytes, each compressed (level 1) into its own gzip member side by
 * side, and the members are written in order. A file of concatenated members is one valid
 * gzip stream (RFC 1952, 2.2), read by zlib's gzread, nifti2 and Python's gzip alike. The
 * block boundaries depend only on the volume, so the file is the same at any thread count. */
#define GZ_BLOCK ((size_t)4 << 20)

typedef struct GzBlock {
    unsigned char *buf; /* cap bytes, allocated once per batch slot (never inside the loop) */
    size_t cap, len;
    bool ok;
} GzBlock;

/* One gzip member of slices [k0, k1) (rows in reverse order when flip), prefixed by
 * `pre` (pre_n bytes, may be 0), into out->buf. */
static void gz_block(const SmVolume *vol, bool flip, size_t k0, size_t k1, const void *pre,
                     size_t pre_n, GzBlock *out)
{
    size_t row = vol->dims[0] * sm_voxel_size(vol->type), ny = vol->dims[1];
    const unsigned char *p = vol->data;
    size_t n_in = pre_n + (k1 - k0) * ny * row;
    z_stream z;
    memset(&z, 0, sizeof z);
    out->ok = false;
    out->len = 0;
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return;
    if (deflateBound(&z, (uLong)n_in) + 18 > out->cap) { /* cannot happen: cap bounds a full block */
        deflateEnd(&z);
        return;
    }
    z.next_out = out->buf;
    z.avail_out = (uInt)(out->cap > UINT_MAX ? UINT_MAX : out->cap);
    bool ok = true;
    /* feeds one piece (< 4 GiB: a row or the header) without finishing */
#define GZ_FEED(ptr, n)                                                                  \
    do {                                                                                 \
        z.next_in = (Bytef *)(uintptr_t)(ptr);                                           \
        z.avail_in = (uInt)(n);                                                          \
        while (ok && z.avail_in > 0)                                                     \
            ok = deflate(&z, Z_NO_FLUSH) == Z_OK && z.avail_out > 0;                     \
    } while (0)
    if (pre_n > 0)
        GZ_FEED(pre, pre_n);
    for (size_t k = k0; ok && k < k1; k++)
        for (size_t jj = 0; ok && jj < ny; jj++) {
            size_t j = flip ? ny - 1 - jj : jj;
            GZ_FEED(p + (k * ny + j) * row, row);
        }
#undef GZ_FEED
    z.next_in = NULL;
    z.avail_in = 0;
    int rc = Z_OK;
    while (ok && rc == Z_OK)
        rc = deflate(&z, Z_FINISH);
    ok = ok && rc == Z_STREAM_END;
    out->len = z.total_out;
    deflateEnd(&z);
    out->ok = ok;
}

static bool gz_save_parallel(SmError **error, const SmVolume *vol, const nifti_1_header *hdr,
                             const char *tmp, const char *path, bool flip)
{
    size_t row = vol->dims[0] * sm_voxel_size(vol->type), nz = vol->dims[2];
    size_t slice = row * vol->dims[1];
    if (row > ((size_t)1 << 28) || slice == 0) {
        sm_error_set(error, SM_ERR_OUTPUT, "%s: slice too large to write", path);
        return false;
    }
    size_t per = slice >= GZ_BLOCK ? 1 : GZ_BLOCK / slice;
    size_t nb = nz == 0 ? 1 : (nz + per - 1) / per;
    int nt = sm_omp_threads();
    if (nt < 1)
        nt = 1;
    unsigned char pre[sizeof *hdr + 4];
    /* one output buffer per batch slot, large enough for any block (header included) */
    size_t cap = (size_t)compressBound((uLong)(sizeof pre + per * slice)) + 64;
    GzBlock *blk = calloc((size_t)nt, sizeof *blk);
    bool mem = blk != NULL;
    for (int t = 0; mem && t < nt; t++) {
        blk[t].buf = malloc(cap);
        blk[t].cap = cap;
        mem = blk[t].buf != NULL;
    }
    FILE *f = mem ? fopen(tmp, "wb") : NULL;
    if (!f) {
        sm_error_set(error, mem ? SM_ERR_OUTPUT : SM_ERR_NOMEM, "%s: cannot write: %s", path,
                     mem ? strerror(errno) : "out of memory");
        for (int t = 0; blk && t < nt; t++)
            free(blk[t].buf);
        free(blk);
        return false;
    }
    memcpy(pre, hdr, sizeof *hdr);
    memset(pre + sizeof *hdr, 0, 4); /* no extensions */
    bool ok = true;
    for (size_t b0 = 0; ok && b0 < nb; b0 += (size_t)nt) {
        long nbat = (long)((nb - b0) < (size_t)nt ? nb - b0 : (size_t)nt);
#pragma omp parallel for num_threads(nt) default(none) shared(blk, pre) \
    firstprivate(vol, flip, per, nz, b0, nbat) schedule(dynamic, 1)
        for (long i = 0; i < nbat; i++) {
            size_t b = b0 + (size_t)i, k0 = b * per, k1 = k0 + per > nz ? nz : k0 + per;
            gz_block(vol, flip, k0, k1, pre, b == 0 ? sizeof pre : 0, &blk[i]);
        }
        for (long i = 0; i < nbat; i++)
            ok = ok && blk[i].ok && fwrite(blk[i].buf, 1, blk[i].len, f) == blk[i].len;
    }
    for (int t = 0; t < nt; t++)
        free(blk[t].buf);
    free(blk);
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        sm_error_set(error, SM_ERR_OUTPUT, "%s: write failed (disk full or not writable?)", path);
    return ok;
}

bool sm_io_nifti_save(SmError **error, const SmVolume *vol, const char *path)
{
    return sm_io_nifti_save_ex(error, vol, path, false);
}

bool sm_io_nifti_save_ex(SmError **error, const SmVolume *vol, const char *path, bool flip_rows)
{
    bool gz = ends_with(path, ".nii.gz");
    if (!gz && !ends_with(path, ".nii")) {
        sm_error_set(error, SM_ERR_USAGE, "%s: NIfTI output name must end in .nii or .nii.gz", path);
        return false;
    }
    int64_t dims[8] = {3, (int64_t)vol->dims[0], (int64_t)vol->dims[1], (int64_t)vol->dims[2], 1, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, nifti_datatype(vol->type), 0);
    if (!nim) {
        sm_error_set(error, SM_ERR_NOMEM, "%s: cannot build a NIfTI header", path);
        return false;
    }
    nifti_dmat44 R;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            R.m[r][c] = vol->affine[r][c];
    if (flip_rows) { /* row j is stored at ny-1-j: origin moves to the last row */
        for (int r = 0; r < 3; r++) {
            R.m[r][3] += R.m[r][1] * (double)(vol->dims[1] - 1);
            R.m[r][1] = -R.m[r][1];
        }
    }
    for (int c = 0; c < 4; c++) { /* LPS -> RAS */
        R.m[0][c] = -R.m[0][c];
        R.m[1][c] = -R.m[1][c];
    }
    nim->sto_xyz = R;
    nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
    nifti_dmat44_to_quatern(R, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d, &nim->qoffset_x,
                            &nim->qoffset_y, &nim->qoffset_z, NULL, NULL, NULL, &nim->qfac);
    nim->dx = nim->pixdim[1] = vol->spacing[0];
    nim->dy = nim->pixdim[2] = vol->spacing[1];
    nim->dz = nim->pixdim[3] = vol->spacing[2];
    nim->xyz_units = NIFTI_UNITS_MM;
    nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
    nim->iname_offset = 352;
    snprintf(nim->descrip, sizeof nim->descrip, "spinemets %s", vol->meta.is_hu ? "HU" : "");
    nifti_1_header hdr;
    int rc = nifti_convert_nim2n1hdr(nim, &hdr);
    nifti_image_free(nim);
    if (rc != 0) {
        sm_error_set(error, SM_ERR_INTERNAL, "%s: cannot convert the NIfTI header", path);
        return false;
    }
    memcpy(hdr.magic, "n+1\0", 4);
    hdr.vox_offset = 352.0f;

    char *tmp = sm_io_temp_name(path);
    if (!tmp) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    if (gz) {
        bool done = gz_save_parallel(error, vol, &hdr, tmp, path, flip_rows);
        if (done)
            done = sm_io_commit_temp(error, tmp, path);
        else
            unlink(tmp);
        free(tmp);
        return done;
    }
    gzFile f = gzopen(tmp, "wbT");
    if (!f) {
        sm_error_set(error, SM_ERR_OUTPUT, "%s: cannot write: %s", path, strerror(errno));
        free(tmp);
        return false;
    }
    gzbuffer(f, 1u << 20);
    static const char ext[4] = {0, 0, 0, 0};
    bool ok = gzwrite(f, &hdr, sizeof hdr) == (int)sizeof hdr && gzwrite(f, ext, 4) == 4;
    const char *p = vol->data;
    size_t row = vol->dims[0] * sm_voxel_size(vol->type), ny = vol->dims[1];
    if (flip_rows && row > (1u << 28)) {
        ok = false;
    } else if (flip_rows) {
        for (size_t k = 0; ok && k < vol->dims[2]; k++)
            for (size_t j = ny; ok && j-- > 0;)
                ok = gzwrite(f, p + (k * ny + j) * row, (unsigned)row) == (int)row;
    } else {
        size_t left = sm_volume_n_voxels(vol) * sm_voxel_size(vol->type);
        while (ok && left > 0) {
            unsigned chunk = left > (1u << 28) ? (1u << 28) : (unsigned)left;
            ok = gzwrite(f, p, chunk) == (int)chunk;
            p += chunk;
            left -= chunk;
        }
    }
    ok = (gzclose(f) == Z_OK) && ok;
    if (!ok) {
        sm_error_set(error, SM_ERR_OUTPUT, "%s: write failed (disk full or not writable?)", path);
        unlink(tmp);
        free(tmp);
        return false;
    }
    ok = sm_io_commit_temp(error, tmp, path);
    free(tmp);
    return ok;
}
