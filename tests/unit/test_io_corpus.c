/* Robustness corpus: every file of pydicom's test set, and cut copies of each, goes through
 * DICOM scan and load; each must give a volume or a clear error, never a crash or hang. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sm_io.h"

typedef struct Tally {
    size_t inputs, volumes, errors;
} Tally;

/* Scans one path and loads every series; returns the number of volumes. */
static size_t run_one(const char *path, Tally *t, size_t *dims_out)
{
    const char *in[1] = {path};
    SmDicomScan *scan = NULL;
    SmError *e = NULL;
    size_t vols = 0;
    t->inputs++;
    if (!sm_io_dicom_scan(&e, in, 1, &scan)) {
        assert_non_null(e);
        assert_non_null(e->message);
        assert_true(strlen(e->message) > 0);
        assert_true(e->code == SM_ERR_NO_SERIES || e->code == SM_ERR_IO || e->code == SM_ERR_NOMEM);
        sm_error_destroy(e);
        t->errors++;
        return 0;
    }
    for (size_t i = 0; i < scan->n_skipped; i++)
        assert_true(scan->skipped[i].reason && strlen(scan->skipped[i].reason) > 0);
    for (size_t s = 0; s < scan->n_series; s++) {
        SmVolume *v = NULL;
        SmError *e2 = NULL;
        if (sm_io_dicom_series_load(&e2, scan, s, NULL, &v, NULL)) {
            assert_true(sm_volume_n_voxels(v) > 0);
            if (dims_out)
                memcpy(dims_out, v->dims, sizeof v->dims);
            sm_volume_destroy(v);
            vols++;
            t->volumes++;
        } else {
            assert_non_null(e2);
            assert_true(strlen(e2->message) > 0);
            sm_error_destroy(e2);
            t->errors++;
        }
    }
    sm_io_dicom_scan_destroy(scan);
    return vols;
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    size_t got = fread(buf, 1, (size_t)(len > 0 ? len : 0), f);
    fclose(f);
    *n = got;
    return buf;
}

static void cut_copies(const char *path, const char *tmpdir, Tally *t)
{
    size_t n;
    unsigned char *buf = read_all(path, &n);
    if (!buf)
        return;
    size_t cuts[] = {0, 1, 4, 64, 128, 131, 132, 136, 140, 200, 300, 512, n / 4, n / 2, 3 * n / 4, n - 2, n - 1};
    char out[4096];
    snprintf(out, sizeof out, "%s/cut.dcm", tmpdir);
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        if (cuts[c] >= n)
            continue;
        FILE *f = fopen(out, "wb");
        assert_non_null(f);
        if (cuts[c])
            assert_int_equal(fwrite(buf, 1, cuts[c], f), cuts[c]);
        fclose(f);
        run_one(out, t, NULL);
    }
    unlink(out);
    free(buf);
}

static void walk(const char *dir, const char *tmpdir, Tally *t, Tally *cut)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            walk(p, tmpdir, t, cut);
            continue;
        }
        run_one(p, t, NULL);
        cut_copies(p, tmpdir, cut);
    }
    closedir(d);
}

static void test_pydicom_corpus(void **state)
{
    (void)state;
    const char *root = SM_PYDICOM_DATA;
    struct stat st;
    if (stat(root, &st) != 0) {
        print_message("skipping: %s is absent (apt install python3-pydicom)\n", root);
        skip();
    }
    char tmpl[] = "/tmp/sm_test_corpus_XXXXXX";
    char *tmp = mkdtemp(tmpl);
    assert_non_null(tmp);
    Tally whole = {0}, cut = {0};
    walk(root, tmp, &whole, &cut);
    rmdir(tmp);
    print_message("whole files: %zu inputs, %zu volumes, %zu errors; cut copies: %zu inputs, %zu volumes, %zu errors\n",
                  whole.inputs, whole.volumes, whole.errors, cut.inputs, cut.volumes, cut.errors);
    assert_true(whole.inputs >= 100);
    /* Known readable images, checked one by one below; many more load. */
    assert_true(whole.volumes >= 30);
    assert_true(cut.inputs > 1000);
}

static void test_known_files(void **state)
{
    (void)state;
    struct {
        const char *name;
        size_t dims[3];
    } known[] = {
        {"CT_small.dcm", {128, 128, 1}},
        {"MR_small.dcm", {64, 64, 1}},
        {"MR_small_RLE.dcm", {64, 64, 1}},
        {"MR_small_bigendian.dcm", {64, 64, 1}},
        {"MR_small_jp2klossless.dcm", {64, 64, 1}},
        {"MR_small_jpeg_ls_lossless.dcm", {64, 64, 1}},
        {"693_J2KI.dcm", {512, 512, 1}},
        {"J2K_pixelrep_mismatch.dcm", {512, 512, 1}},
    };
    Tally t = {0};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", SM_PYDICOM_DATA, known[i].name);
        if (access(p, R_OK) != 0) {
            print_message("not present: %s\n", p);
            continue;
        }
        size_t dims[3] = {0, 0, 0};
        if (run_one(p, &t, dims) != 1)
            fail_msg("%s did not load", known[i].name);
        for (int d = 0; d < 3; d++)
            if (dims[d] != known[i].dims[d])
                fail_msg("%s: dims %zux%zux%zu", known[i].name, dims[0], dims[1], dims[2]);
    }
    /* MR_small in five encodings must give identical voxels */
    const char *mr[] = {"MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                        "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_expb.dcm"};
    SmVolume *ref = NULL;
    for (size_t i = 0; i < sizeof mr / sizeof mr[0]; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", SM_PYDICOM_DATA, mr[i]);
        if (access(p, R_OK) != 0)
            continue;
        const char *in[1] = {p};
        SmDicomScan *scan = NULL;
        SmError *e = NULL;
        SmVolume *v = NULL;
        assert_true(sm_io_dicom_scan(&e, in, 1, &scan));
        if (!sm_io_dicom_series_load(&e, scan, 0, NULL, &v, NULL))
            fail_msg("%s: %s", mr[i], e->message);
        sm_io_dicom_scan_destroy(scan);
        if (!ref) {
            ref = v;
            continue;
        }
        assert_int_equal(v->type, ref->type);
        if (memcmp(v->data, ref->data, sm_volume_n_voxels(v) * sm_voxel_size(v->type)) != 0)
            fail_msg("%s differs from %s", mr[i], mr[0]);
        sm_volume_destroy(v);
    }
    sm_volume_destroy(ref);
}

static void test_dicomdir(void **state)
{
    (void)state;
    char p[4096];
    snprintf(p, sizeof p, "%s/dicomdirtests/DICOMDIR", SM_PYDICOM_DATA);
    if (access(p, R_OK) != 0)
        skip();
    const char *in[1] = {p};
    SmDicomScan *scan = NULL;
    SmError *e = NULL;
    assert_true(sm_io_dicom_scan(&e, in, 1, &scan));
    /* the DICOMDIR references 31 image files of several CT, CR and MR series */
    size_t files = scan->n_skipped;
    for (size_t s = 0; s < scan->n_series; s++)
        files += scan->series[s].n_files;
    assert_true(scan->n_series >= 3);
    assert_true(files >= 20);
    sm_io_dicom_scan_destroy(scan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_files),
        cmocka_unit_test(test_dicomdir),
        cmocka_unit_test(test_pydicom_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
