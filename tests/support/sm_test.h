/* Shared helpers for the test executables: cmocka includes, fixture paths, temp dirs. */
#ifndef SM_TEST_H
#define SM_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Path under the shared real-data folder; returns false (and prints why) if absent. */
static inline bool sm_test_shared(const char *rel, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", SM_SHARED_DATA, rel);
    struct stat st;
    if (stat(out, &st) != 0) {
        fprintf(stderr, "SKIP: real fixture %s is absent (../shared/data not beside the repo)\n", out);
        return false;
    }
    return true;
}

/* A fresh temporary directory (mkdtemp) for one test; caller removes it with
 * sm_test_rmrf. */
static inline char *sm_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/smtest-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline void sm_test_rmrf(const char *dir)
{
    if (!dir || !*dir || strcmp(dir, "/") == 0)
        return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

#endif
