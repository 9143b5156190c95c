/* Helpers shared inside io/ for atomic output files (not part of the public API). */
#ifndef SM_IO_FILES_H
#define SM_IO_FILES_H

#include "sm_core.h"

#include <stdio.h>

/* "path.tmp-PID", malloc'd; NULL when out of memory. */
char *sm_io_temp_name(const char *path);
/* rename(tmp, path); on failure unlinks tmp and sets SM_ERR_OUTPUT naming path. */
bool sm_io_commit_temp(SmError **error, const char *tmp, const char *path);
/* Opens a new temporary file beside path for writing ("wb"); *tmp_out receives its name
 * (malloc'd). NULL (error set naming path, nothing left behind) on failure. */
FILE *sm_io_temp_open(SmError **error, const char *path, char **tmp_out);
/* Closes f; when ok and the close succeeded, moves tmp into place as path; otherwise
 * removes tmp and sets SM_ERR_OUTPUT ("path: <what> failed: reason"). Frees tmp. */
bool sm_io_temp_finish(SmError **error, FILE *f, char *tmp, const char *path, bool ok,
                       const char *what);

#endif
