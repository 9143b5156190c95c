/* libFuzzer target: bytes become one file that goes through DICOM scan and load, the same
 * path a user's folder takes. Also linked without libFuzzer into the seed-corpus test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sm_io.h"

/* Larger inputs are cut: the parsers' interesting states are in the first bytes, and big
 * inputs only slow the fuzzer down. */
#define FUZZ_MAX_BYTES (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_BYTES)
        size = FUZZ_MAX_BYTES;
    char path[64];
    snprintf(path, sizeof path, "/tmp/sm_fuzz_dicom_%ld.dcm", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    size_t written = size ? fwrite(data, 1, size, f) : 0;
    fclose(f);
    if (written != size) {
        unlink(path);
        return 0;
    }
    const char *in[1] = {path};
    SmDicomScan *scan = NULL;
    SmError *error = NULL;
    if (sm_io_dicom_scan(&error, in, 1, &scan)) {
        for (size_t s = 0; s < scan->n_series; s++) {
            SmVolume *vol = NULL;
            SmError *e2 = NULL;
            SmDicomLoadOptions opt = {SM_TILT_RESAMPLE, 1};
            if (sm_io_dicom_series_load(&e2, scan, s, &opt, &vol, NULL)) {
                if (sm_volume_n_voxels(vol) == 0)
                    abort(); /* a loaded volume always has voxels */
                sm_volume_destroy(vol);
            } else if (e2 == NULL || e2->message == NULL) {
                abort(); /* failure must say why */
            }
            sm_error_destroy(e2);
        }
        sm_io_dicom_scan_destroy(scan);
    } else if (error == NULL || error->message == NULL) {
        abort();
    }
    sm_error_destroy(error);
    unlink(path);
    return 0;
}
