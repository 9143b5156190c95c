/* Output-side file helpers: recursive mkdir and atomic whole-file writes. */
#include "sm_io.h"
#include "sm_io_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool sm_io_mkdir_p(SmError **error, const char *path)
{
    size_t n = strlen(path);
    if (n == 0) {
        sm_error_set(error, SM_ERR_USAGE, "empty output directory name");
        return false;
    }
    char *buf = malloc(n + 1);
    if (!buf) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            sm_error_set(error, SM_ERR_OUTPUT, "%s: cannot create directory: %s", buf, strerror(errno));
            free(buf);
            return false;
        }
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        sm_error_set(error, SM_ERR_OUTPUT, "%s: exists and is not a directory", path);
        free(buf);
        return false;
    }
    free(buf);
    return true;
}

char *sm_io_temp_name(const char *path)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (tmp)
        snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    return tmp;
}

bool sm_io_commit_temp(SmError **error, const char *tmp, const char *path)
{
    if (rename(tmp, path) != 0) {
        sm_error_set(error, SM_ERR_OUTPUT, "%s: cannot move the finished file into place: %s", path,
                     strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

FILE *sm_io_temp_open(SmError **error, const char *path, char **tmp_out)
{
    *tmp_out = NULL;
    char *tmp = sm_io_temp_name(path);
    if (!tmp) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        sm_error_set(error, SM_ERR_OUTPUT, "%s: cannot write: %s", path, strerror(errno));
        free(tmp);
        return NULL;
    }
    *tmp_out = tmp;
    errno = 0; /* a later failure's reason is then its own */
    return f;
}

bool sm_io_temp_finish(SmError **error, FILE *f, char *tmp, const char *path, bool ok,
                       const char *what)
{
    ok = (fflush(f) == 0) && ok;
    int saved_errno = errno;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        sm_error_set(error, SM_ERR_OUTPUT, "%s: %s failed: %s", path, what,
                     saved_errno ? strerror(saved_errno) : "unknown error");
        unlink(tmp);
        free(tmp);
        return false;
    }
    ok = sm_io_commit_temp(error, tmp, path);
    free(tmp);
    return ok;
}

bool sm_io_write_file_atomic(SmError **error, const char *path, const void *data, size_t n)
{
    char *tmp = NULL;
    FILE *f = sm_io_temp_open(error, path, &tmp);
    if (!f)
        return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return sm_io_temp_finish(error, f, tmp, path, ok, "write");
}
