/* Runs the DICOM fuzz entry point over the seed corpus and cut copies of each seed, so the
 * corpus is exercised by every ordinary test run (no libFuzzer needed). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(void)
{
    DIR *d = opendir(SM_FUZZ_SEEDS);
    if (d == NULL) {
        fprintf(stderr, "no seed folder %s\n", SM_FUZZ_SEEDS);
        return 1;
    }
    struct dirent *e;
    size_t n_seeds = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", SM_FUZZ_SEEDS, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 20);
        size_t n = fread(buf, 1, 1 << 20, f);
        fclose(f);
        n_seeds++;
        LLVMFuzzerTestOneInput(buf, n);
        if (strncmp(e->d_name, "regress_", 8) == 0) { /* found by fuzzing: replayed as is */
            free(buf);
            continue;
        }
        /* about 256 cut lengths per seed (every length for tiny seeds) */
        size_t stride = n > 256 ? n / 256 : 1;
        for (size_t cut = 0; cut < n; cut += stride)
            LLVMFuzzerTestOneInput(buf, cut);
        /* flipped bytes in the header area */
        for (size_t i = 128; i < n && i < 1024; i += 7) {
            uint8_t old = buf[i];
            buf[i] ^= 0xFF;
            LLVMFuzzerTestOneInput(buf, n);
            buf[i] = old;
        }
        free(buf);
    }
    closedir(d);
    printf("ran %zu seeds with cut and flipped variants\n", n_seeds);
    return n_seeds > 0 ? 0 : 1;
}
