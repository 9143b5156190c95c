/* JSON building blocks shared by the subcommands, and atomic JSON output. */
#include "sm_pipeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

json_t *sm_json_number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *sm_json_strlist(const SmStrList *list)
{
    json_t *a = json_array();
    for (size_t i = 0; list && i < list->n; i++)
        json_array_append_new(a, json_string(list->items[i]));
    return a;
}

json_t *sm_json_skipped(const SmDicomScan *scan)
{
    json_t *skipped = json_array();
    for (size_t i = 0; scan && i < scan->n_skipped; i++) {
        json_t *k = json_object();
        json_object_set_new(k, "path", json_string(scan->skipped[i].path));
        json_object_set_new(k, "reason", json_string(scan->skipped[i].reason));
        json_array_append_new(skipped, k);
    }
    return skipped;
}

/* Rounds to 1e-6 so the JSON shows the geometry, not float noise. */
static json_t *real6(double v)
{
    double r = round(v * 1e6) / 1e6;
    return json_real(r == 0.0 ? 0.0 : r);
}

json_t *sm_json_volume_geometry(const SmVolume *vol)
{
    json_t *g = json_object();
    json_t *dims = json_array(), *sp = json_array(), *aff = json_array();
    for (int d = 0; d < 3; d++) {
        json_array_append_new(dims, json_integer((json_int_t)vol->dims[d]));
        json_array_append_new(sp, real6(vol->spacing[d]));
    }
    for (int r = 0; r < 4; r++) {
        json_t *row = json_array();
        for (int c = 0; c < 4; c++)
            json_array_append_new(row, real6(vol->affine[r][c]));
        json_array_append_new(aff, row);
    }
    json_object_set_new(g, "dims", dims);
    json_object_set_new(g, "spacing_mm", sp);
    json_object_set_new(g, "affine_lps", aff);
    return g;
}

bool sm_json_save(SmError **error, const json_t *doc, const char *path)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!text) {
        sm_error_set(error, SM_ERR_NOMEM, "%s: cannot serialise JSON", path);
        return false;
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite */
    bool ok = sm_io_write_file_atomic(error, path, text, n + 1);
    free(text);
    return ok;
}
