/* Writes a volume as a CT Image Storage series (one file per slice, explicit VR little
 * endian) for phantoms and benchmarks; each file appears atomically. */
#include "sm_io_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool sm_io_dicom_series_write(SmError **error, const SmVolume *vol, const char *dir,
                              const SmDicomWriteOptions *options)
{
    if (vol == NULL || dir == NULL || vol->data == NULL) {
        sm_error_set(error, SM_ERR_USAGE, "sm_io_dicom_series_write: NULL volume or folder");
        return false;
    }
    if (vol->type != SM_VOXEL_I16 && vol->type != SM_VOXEL_F32) {
        sm_error_set(error, SM_ERR_USAGE, "sm_io_dicom_series_write: %s volumes cannot be written as CT (I16 or F32)",
                     sm_voxel_type_name(vol->type));
        return false;
    }
    if (vol->dims[0] > 65535 || vol->dims[1] > 65535 || vol->dims[2] > 99999) {
        sm_error_set(error, SM_ERR_USAGE, "volume %zux%zux%zu too large for a CT series", vol->dims[0], vol->dims[1],
                     vol->dims[2]);
        return false;
    }
    SmDicomWriteOptions defaults = {0};
    const SmDicomWriteOptions *o = options ? options : &defaults;
    if (!sm_io_mkdir_p(error, dir))
        return false;

    /* Directions and spacings from the affine columns. */
    double col[3][3], len[3];
    for (int c = 0; c < 3; c++) {
        for (int r = 0; r < 3; r++)
            col[c][r] = vol->affine[r][c];
        len[c] = sqrt(col[c][0] * col[c][0] + col[c][1] * col[c][1] + col[c][2] * col[c][2]);
        if (!(len[c] > 0) || !isfinite(len[c])) {
            sm_error_set(error, SM_ERR_USAGE, "affine column %d is degenerate", c);
            return false;
        }
    }
    char study[65], series[65], frame_ref[65];
    if (o->study_uid)
        snprintf(study, sizeof study, "%s", o->study_uid);
    else
        sm_dcm_uid_generate(study);
    if (o->series_uid)
        snprintf(series, sizeof series, "%s", o->series_uid);
    else
        sm_dcm_uid_generate(series);
    sm_dcm_uid_generate(frame_ref);
    double intercept = isfinite(o->rescale_intercept) ? o->rescale_intercept : 0.0;
    /* Stored values must fit: signed storage unless everything is >= 0 after the intercept. */
    size_t nx = vol->dims[0], ny = vol->dims[1], n = nx * ny;
    double vmin = INFINITY, vmax = -INFINITY;
    for (size_t i = 0, total = sm_volume_n_voxels(vol); i < total; i++) {
        double v = vol->type == SM_VOXEL_I16 ? ((const int16_t *)vol->data)[i] : ((const float *)vol->data)[i];
        v = nearbyint(v) - intercept;
        vmin = fmin(vmin, v);
        vmax = fmax(vmax, v);
    }
    bool is_signed = vmin < 0;
    if ((is_signed && (vmin < INT16_MIN || vmax > INT16_MAX)) || (!is_signed && vmax > UINT16_MAX)) {
        sm_error_set(error, SM_ERR_USAGE,
                     "values minus the rescale intercept (%g..%g) do not fit 16-bit storage; choose another intercept",
                     vmin, vmax);
        return false;
    }
    uint16_t *px = malloc(n * sizeof *px);
    size_t plen = strlen(dir) + 64;
    char *path = malloc(plen), *tmp = malloc(plen);
    if (!px || !path || !tmp) {
        free(px);
        free(path);
        free(tmp);
        sm_error_set(error, SM_ERR_NOMEM, "out of memory writing a DICOM series");
        return false;
    }
    char date[16] = "", tod[16] = "";
    time_t now = time(NULL);
    struct tm tmv;
    if (gmtime_r(&now, &tmv)) {
        strftime(date, sizeof date, "%Y%m%d", &tmv);
        strftime(tod, sizeof tod, "%H%M%S", &tmv);
    }
    bool ok = true;
    for (size_t k = 0; k < vol->dims[2] && ok; k++) {
        for (size_t i = 0; i < n; i++) {
            size_t idx = k * n + i;
            double v = vol->type == SM_VOXEL_I16 ? ((const int16_t *)vol->data)[idx] : ((const float *)vol->data)[idx];
            double s = nearbyint(v) - intercept;
            px[i] = is_signed ? (uint16_t)(int16_t)s : (uint16_t)s;
        }
        SmDcmWriteSlice sl = {0};
        sl.patient_id = o->patient_id ? o->patient_id : "PHANTOM";
        sl.patient_name = sl.patient_id;
        sl.study_uid = study;
        sl.series_uid = series;
        sl.frame_of_reference_uid = frame_ref;
        sl.series_description = o->series_description;
        sl.patient_position = o->patient_position ? o->patient_position : "HFS";
        sl.convolution_kernel = o->convolution_kernel;
        sl.study_date = date;
        sl.study_time = tod;
        for (int a = 0; a < 3; a++) {
            sl.ipp[a] = vol->affine[a][3] + (double)k * vol->affine[a][2];
            sl.iop[a] = col[0][a] / len[0];
            sl.iop[3 + a] = col[1][a] / len[1];
        }
        sl.pixel_spacing[0] = len[1]; /* between rows = along j */
        sl.pixel_spacing[1] = len[0]; /* between columns = along i */
        sl.slice_thickness = len[2];
        sl.rescale_intercept = intercept;
        sl.rescale_slope = 1.0;
        sl.kvp = o->kvp;
        sl.instance_number = (long)k + 1;
        sl.rows = (unsigned)ny;
        sl.cols = (unsigned)nx;
        sl.pixel_signed = is_signed;
        sl.pixels = px;
        snprintf(path, plen, "%s/IM%05zu.dcm", dir, k + 1);
        snprintf(tmp, plen, "%s/.IM%05zu.dcm.tmp-%ld", dir, k + 1, (long)getpid());
        ok = sm_dcm_ct_write(error, tmp, &sl);
        if (ok && rename(tmp, path) != 0) {
            sm_error_set(error, SM_ERR_OUTPUT, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
            ok = false;
        }
        if (!ok)
            unlink(tmp);
    }
    free(px);
    free(path);
    free(tmp);
    return ok;
}
