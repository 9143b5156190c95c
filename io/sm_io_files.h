/* Helpers shared inside io/ for atomic output files (not part of the public API). */
#ifndef SM_IO_FILES_H
#define SM_IO_FILES_H

#include "sm_core.h"

/* "path.tmp-PID", malloc'd; NULL when out of memory. */
char *sm_io_temp_name(const char *path);
/* rename(tmp, path); on failure unlinks tmp and sets SM_ERR_OUTPUT naming path. */
bool sm_io_commit_temp(SmError **error, const char *tmp, const char *path);

#endif
