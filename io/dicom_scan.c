/* DICOM discovery: finds files (folders, single files, DICOMDIR), reads their headers in
 * parallel, skips what is not a volume image and groups the rest into series and stacks. */
#include "sm_io_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define SCAN_MAGIC 0x534d444353434e31ull /* "SMDCSCN1" */
#define MAX_DEPTH 32

/* The public scan followed by what only the loader needs. */
typedef struct ScanImpl {
    SmDicomScan pub;
    uint64_t magic;
    SmDcmSeriesPriv *priv; /* n_series entries */
} ScanImpl;

const SmDcmSeriesPriv *sm_dcm_scan_priv(const SmDicomScan *scan, size_t index)
{
    if (scan == NULL || index >= scan->n_series)
        return NULL;
    const ScanImpl *impl = (const ScanImpl *)scan;
    if (impl->magic != SCAN_MAGIC)
        return NULL;
    return &impl->priv[index];
}

/* ---------- file collection ---------- */

static bool is_dicomdir_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return strcasecmp(b, "DICOMDIR") == 0;
}

static bool walk_dir(SmError **error, const char *dir, int depth, SmStrList *files, SmStrList *warnings)
{
    if (depth > MAX_DEPTH) {
        if (!sm_strlist_add(warnings, "%s: deeper than %d folders, not scanned", dir, MAX_DEPTH))
            goto nomem;
        return true;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (!sm_strlist_add(warnings, "%s: cannot open folder: %s", dir, strerror(errno)))
            goto nomem;
        return true;
    }
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ., .., hidden files (.DS_Store, partial downloads) */
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (p == NULL) {
            closedir(d);
            goto nomem;
        }
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            ok = walk_dir(error, p, depth + 1, files, warnings);
        else if (lstat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
            ok = sm_strlist_add(files, "%s", p);
        free(p);
        if (!ok && error && *error == NULL)
            sm_error_set(error, SM_ERR_NOMEM, "out of memory listing %s", dir);
    }
    closedir(d);
    return ok;
nomem:
    sm_error_set(error, SM_ERR_NOMEM, "out of memory listing %s", dir);
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------- classification ---------- */

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool image_type_has(const char *image_type, const char *word)
{
    /* ImageType values are separated by backslashes. */
    const char *p = image_type;
    size_t n = strlen(word);
    while (*p) {
        const char *end = strchr(p, '\\');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len == n && strncasecmp(p, word, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* Returns NULL if hdr is a candidate volume image, else why it is skipped (static text or
 * written to buf). */
static const char *skip_reason(const SmDcmHeader *h, char *buf, size_t cap)
{
    const char *sc = h->sop_class;
    if (h->is_dicomdir)
        return "DICOMDIR index (its files are scanned directly)";
    if (strcmp(sc, "1.2.840.10008.5.1.4.1.1.66.4") == 0)
        return "SEG object (segmentation), not an image volume";
    if (starts_with(sc, "1.2.840.10008.5.1.4.1.1.88."))
        return "structured report (SR), not an image";
    if (starts_with(sc, "1.2.840.10008.5.1.4.1.1.481."))
        return "RT object (plan, structure set or dose), not an image volume";
    if (starts_with(sc, "1.2.840.10008.5.1.4.1.1.11."))
        return "presentation state, not an image";
    if (starts_with(sc, "1.2.840.10008.5.1.4.1.1.9."))
        return "waveform, not an image";
    if (strcmp(sc, "1.2.840.10008.5.1.4.1.1.104.1") == 0 || strcmp(sc, "1.2.840.10008.5.1.4.1.1.66") == 0)
        return "encapsulated document or raw data, not an image";
    if (strcmp(sc, "1.2.840.10008.5.1.4.1.1.7") == 0 || starts_with(sc, "1.2.840.10008.5.1.4.1.1.7."))
        return "secondary capture, not an acquired volume";
    if (image_type_has(h->image_type, "LOCALIZER") || image_type_has(h->image_type, "SCOUT"))
        return "localizer (ImageType LOCALIZER)";
    if (!h->has_pixel_data)
        return "no Pixel Data (not an image)";
    if (h->samples != 1) {
        snprintf(buf, cap, "colour image (Samples per Pixel %u), not a grey-level volume", h->samples);
        return buf;
    }
    if (h->rows == 0 || h->cols == 0 || h->rows > SM_DCM_MAX_DIM || h->cols > SM_DCM_MAX_DIM) {
        snprintf(buf, cap, "absurd image size Rows %u x Columns %u (limit %u)", h->rows, h->cols, SM_DCM_MAX_DIM);
        return buf;
    }
    if (h->bits_allocated != 8 && h->bits_allocated != 16 && h->bits_allocated != 32) {
        snprintf(buf, cap, "unsupported Bits Allocated %u (8, 16 or 32 expected)", h->bits_allocated);
        return buf;
    }
    if (h->bits_stored == 0 || h->bits_stored > h->bits_allocated || h->high_bit >= h->bits_allocated ||
        h->high_bit + 1 < h->bits_stored) {
        snprintf(buf, cap, "inconsistent Bits Stored %u / High Bit %u / Bits Allocated %u", h->bits_stored,
                 h->high_bit, h->bits_allocated);
        return buf;
    }
    if (h->pixel_representation > 1) {
        snprintf(buf, cap, "invalid Pixel Representation %u", h->pixel_representation);
        return buf;
    }
    if (!sm_dcm_transfer_syntax_supported(h->transfer_syntax)) {
        snprintf(buf, cap, "unsupported transfer syntax %s", h->transfer_syntax[0] ? h->transfer_syntax : "(none)");
        return buf;
    }
    size_t bytes;
    if (!sm_size_mul((size_t)h->rows * h->cols, h->bits_allocated / 8, &bytes) ||
        !sm_size_mul(bytes, h->frames, &bytes) || bytes > SM_DCM_MAX_FILE_BYTES) {
        snprintf(buf, cap, "absurd pixel data size (%u x %u x %zu frames x %u bits, limit %zu bytes)", h->rows,
                 h->cols, h->frames, h->bits_allocated, SM_DCM_MAX_FILE_BYTES);
        return buf;
    }
    if (!h->encapsulated && h->pixel_length < bytes) {
        snprintf(buf, cap, "truncated or short Pixel Data: %llu bytes, %zu expected",
                 (unsigned long long)h->pixel_length, bytes);
        return buf;
    }
    if (strcmp(h->modality, "SEG") == 0 || strcmp(h->modality, "SR") == 0 || starts_with(h->modality, "RT") ||
        strcmp(h->modality, "PR") == 0)
        return "non-image modality (SEG/SR/RT/PR)";
    return NULL;
}

/* ---------- grouping ---------- */

typedef struct Frame {
    size_t file;  /* index into the scanned file list */
    size_t frame;
    SmDcmFrameGeom geom;
} Frame;

static void normal_of(const double iop[6], double n[3])
{
    n[0] = iop[1] * iop[5] - iop[2] * iop[4];
    n[1] = iop[2] * iop[3] - iop[0] * iop[5];
    n[2] = iop[0] * iop[4] - iop[1] * iop[3];
    double len = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
    if (len > 0)
        for (int a = 0; a < 3; a++)
            n[a] /= len;
}

/* Geometry of frame f of a file: per-frame group, else the file's own; a legacy multi-frame
 * file without per-frame positions is stacked along its normal. */
static SmDcmFrameGeom frame_geom(const SmDcmHeader *h, size_t f)
{
    if (h->frame_geom != NULL)
        return h->frame_geom[f];
    SmDcmFrameGeom g = h->geom;
    if (f > 0 && g.has_ipp && g.has_iop) {
        double step = isfinite(h->spacing_between_slices) && h->spacing_between_slices > 0
                          ? h->spacing_between_slices
                          : (isfinite(h->slice_thickness) && h->slice_thickness > 0 ? h->slice_thickness : 1.0);
        double n[3];
        normal_of(g.iop, n);
        for (int a = 0; a < 3; a++)
            g.ipp[a] += (double)f * step * n[a];
    }
    return g;
}

static bool same_stack(const SmDcmHeader *a, const SmDcmFrameGeom *ga, const SmDcmHeader *b,
                       const SmDcmFrameGeom *gb)
{
    if (strcmp(a->series_uid, b->series_uid) != 0 || a->rows != b->rows || a->cols != b->cols ||
        a->bits_allocated != b->bits_allocated)
        return false;
    if (ga->has_iop != gb->has_iop || ga->has_spacing != gb->has_spacing)
        return false;
    for (int i = 0; i < 6 && ga->has_iop; i++)
        if (fabs(ga->iop[i] - gb->iop[i]) > 1e-3)
            return false;
    for (int i = 0; i < 2 && ga->has_spacing; i++)
        if (fabs(ga->spacing[i] - gb->spacing[i]) > 1e-3 * fmax(1.0, ga->spacing[i]))
            return false;
    return true;
}

typedef struct Group {
    size_t *frames; /* indices into the Frame array */
    size_t n, cap;
} Group;

static bool group_add(Group *g, size_t v)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        size_t *p = realloc(g->frames, cap * sizeof *p);
        if (!p)
            return false;
        g->frames = p;
        g->cap = cap;
    }
    g->frames[g->n++] = v;
    return true;
}

/* Sort context: position along the normal of the group's first frame. */
typedef struct SortKey {
    double s;
    long instance;
    size_t file, frame, idx;
} SortKey;

static int cmp_key(const void *pa, const void *pb)
{
    const SortKey *a = pa, *b = pb;
    if (a->s < b->s - 1e-6)
        return -1;
    if (a->s > b->s + 1e-6)
        return 1;
    if (a->instance != b->instance)
        return a->instance < b->instance ? -1 : 1;
    if (a->file != b->file)
        return a->file < b->file ? -1 : 1;
    return a->frame < b->frame ? -1 : (a->frame > b->frame);
}

static void scan_free_series(SmDicomSeries *s, SmDcmSeriesPriv *p)
{
    for (size_t i = 0; i < s->n_files; i++)
        free(s->files[i]);
    free(s->files);
    sm_strlist_clear(&s->transfer_syntaxes);
    sm_strlist_clear(&s->warnings);
    if (p) {
        for (size_t i = 0; i < s->n_files && p->headers; i++)
            sm_dcm_header_clear(&p->headers[i]);
        free(p->headers);
        free(p->frames);
    }
}

void sm_io_dicom_scan_destroy(SmDicomScan *scan)
{
    if (scan == NULL)
        return;
    ScanImpl *impl = (ScanImpl *)scan;
    for (size_t i = 0; i < scan->n_series; i++)
        scan_free_series(&scan->series[i], impl->priv ? &impl->priv[i] : NULL);
    free(scan->series);
    free(impl->priv);
    for (size_t i = 0; i < scan->n_skipped; i++) {
        free(scan->skipped[i].path);
        free(scan->skipped[i].reason);
    }
    free(scan->skipped);
    sm_strlist_clear(&scan->warnings);
    impl->magic = 0;
    free(impl);
}

static bool add_skip(ScanImpl *impl, size_t *cap, const char *path, const char *reason)
{
    SmDicomScan *s = &impl->pub;
    if (s->n_skipped == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        SmDicomSkip *p = realloc(s->skipped, nc * sizeof *p);
        if (!p)
            return false;
        s->skipped = p;
        *cap = nc;
    }
    char *a = strdup(path), *b = strdup(reason);
    if (!a || !b) {
        free(a);
        free(b);
        return false;
    }
    s->skipped[s->n_skipped].path = a;
    s->skipped[s->n_skipped].reason = b;
    s->n_skipped++;
    return true;
}

/* Builds series i of the scan from a group of frames (moves headers it uses). */
static bool build_series(SmError **error, ScanImpl *impl, size_t si, const Group *g, const Frame *frames,
                         SmDcmHeader *headers, char **paths, size_t n_stacks_of_uid, size_t stack_no)
{
    SmDicomSeries *out = &impl->pub.series[si];
    SmDcmSeriesPriv *priv = &impl->priv[si];
    const Frame *f0 = &frames[g->frames[0]];
    const SmDcmHeader *h0 = &headers[f0->file];
    double n[3] = {0, 0, 1};
    if (f0->geom.has_iop)
        normal_of(f0->geom.iop, n);
    SortKey *keys = calloc(g->n, sizeof *keys);
    size_t *file_map = NULL;
    if (!keys)
        goto nomem;
    for (size_t k = 0; k < g->n; k++) {
        const Frame *f = &frames[g->frames[k]];
        const SmDcmHeader *h = &headers[f->file];
        keys[k].s = f->geom.has_ipp ? f->geom.ipp[0] * n[0] + f->geom.ipp[1] * n[1] + f->geom.ipp[2] * n[2] : 0.0;
        keys[k].instance = h->has_instance ? h->instance_number : 0;
        keys[k].file = f->file;
        keys[k].frame = f->frame;
        keys[k].idx = g->frames[k];
    }
    qsort(keys, g->n, sizeof *keys, cmp_key);

    /* Files in slice order, each once. */
    file_map = malloc(g->n * sizeof *file_map); /* scan file index -> series file index via search */
    out->files = calloc(g->n, sizeof *out->files);
    priv->headers = calloc(g->n, sizeof *priv->headers);
    priv->frames = calloc(g->n, sizeof *priv->frames);
    if (!file_map || !out->files || !priv->headers || !priv->frames)
        goto nomem;
    size_t nf = 0;
    for (size_t k = 0; k < g->n; k++) {
        size_t sf = keys[k].file, found = SIZE_MAX;
        for (size_t q = nf; q-- > 0;) /* multi-frame files: frames of one file are usually adjacent */
            if (file_map[q] == sf) {
                found = q;
                break;
            }
        if (found == SIZE_MAX) {
            found = nf;
            file_map[nf] = sf;
            out->files[nf] = strdup(paths[sf]);
            if (!out->files[nf])
                goto nomem;
            priv->headers[nf] = headers[sf];
            headers[sf].frame_geom = NULL; /* moved */
            nf++;
        }
        priv->frames[k].file = found;
        priv->frames[k].frame = keys[k].frame;
        priv->frames[k].geom = frames[keys[k].idx].geom;
    }
    out->n_files = nf;
    priv->n_frames = g->n;
    /* files[] lists files in slice order: ascending along the normal, as the loader builds k. */
    for (size_t k = 0; k < g->n; k++)
        priv->frames[k].hdr = &priv->headers[priv->frames[k].file];
    out->n_frames = g->n;
    out->rows = h0->rows;
    out->cols = h0->cols;
    snprintf(out->series_uid, sizeof out->series_uid, "%s", h0->series_uid);
    if (n_stacks_of_uid > 1)
        snprintf(out->stack_id, sizeof out->stack_id, "%zu", stack_no);
    snprintf(out->modality, sizeof out->modality, "%s", h0->modality);
    snprintf(out->series_description, sizeof out->series_description, "%s", h0->series_description);
    for (size_t i = 0; i < nf; i++) {
        const char *ts = priv->headers[i].transfer_syntax;
        const char *name = sm_dcm_transfer_syntax_name(ts);
        bool seen = false;
        for (size_t q = 0; q < out->transfer_syntaxes.n && !seen; q++)
            seen = strncmp(out->transfer_syntaxes.items[q], ts, strlen(ts)) == 0 &&
                   out->transfer_syntaxes.items[q][strlen(ts)] == ' ';
        if (!seen && !sm_strlist_add(&out->transfer_syntaxes, "%s (%s)", ts, name ? name : "unknown"))
            goto nomem;
    }
    free(keys);
    free(file_map);
    return true;
nomem:
    free(keys);
    free(file_map);
    sm_error_set(error, SM_ERR_NOMEM, "out of memory grouping series");
    return false;
}

static int cmp_series(const void *pa, const void *pb)
{
    const SmDicomSeries *a = pa, *b = pb;
    int c = strcmp(a->series_uid, b->series_uid);
    if (c)
        return c;
    c = strcmp(a->stack_id, b->stack_id);
    if (c)
        return c;
    return strcmp(a->files[0], b->files[0]);
}

bool sm_io_dicom_scan(SmError **error, const char *const *inputs, size_t n_inputs, SmDicomScan **out)
{
    if (out == NULL || (inputs == NULL && n_inputs > 0)) {
        sm_error_set(error, SM_ERR_USAGE, "sm_io_dicom_scan: NULL argument");
        return false;
    }
    sm_dcm_init();
    ScanImpl *impl = calloc(1, sizeof *impl);
    if (!impl) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    impl->magic = SCAN_MAGIC;
    SmDicomScan *scan = &impl->pub;
    SmStrList files = {0};
    SmDcmHeader *headers = NULL;
    SmError **errs = NULL;
    Frame *frames = NULL;
    Group *groups = NULL;
    size_t n_groups = 0, groups_cap = 0, skip_cap = 0, n_frames = 0;
    bool ok = false;

    /* 1. collect paths */
    for (size_t i = 0; i < n_inputs; i++) {
        const char *in = inputs[i];
        struct stat st;
        if (in == NULL || stat(in, &st) != 0) {
            sm_error_set(error, SM_ERR_IO, "input %s does not exist or cannot be read: %s", in ? in : "(null)",
                         strerror(errno));
            goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
            size_t len = strlen(in);
            char *d = strdup(in);
            if (!d)
                goto nomem;
            while (len > 1 && d[len - 1] == '/')
                d[--len] = '\0';
            bool w = walk_dir(error, d, 0, &files, &scan->warnings);
            free(d);
            if (!w)
                goto fail;
        } else if (is_dicomdir_name(in)) {
            SmError *e = NULL;
            if (!sm_dcm_dicomdir_files(&e, in, &files)) {
                bool a = add_skip(impl, &skip_cap, in, e ? e->message : "unreadable DICOMDIR");
                sm_error_destroy(e);
                if (!a)
                    goto nomem;
            }
        } else if (!sm_strlist_add(&files, "%s", in)) {
            goto nomem;
        }
    }
    if (files.n > 1) {
        qsort(files.items, files.n, sizeof *files.items, cmp_str);
        size_t w = 1;
        for (size_t r = 1; r < files.n; r++) {
            if (strcmp(files.items[r], files.items[w - 1]) == 0)
                free(files.items[r]);
            else
                files.items[w++] = files.items[r];
        }
        files.n = w;
    }

    /* 2. read headers in parallel: each file its own DCMTK objects and error slot */
    if (files.n > 0) {
        headers = calloc(files.n, sizeof *headers);
        errs = calloc(files.n, sizeof *errs);
        if (!headers || !errs)
            goto nomem;
    }
    {
        const ptrdiff_t nfiles = (ptrdiff_t)files.n;
        char **paths = files.items;
#pragma omp parallel for default(none) shared(headers, errs, paths) firstprivate(nfiles) schedule(dynamic, 4)
        for (ptrdiff_t i = 0; i < nfiles; i++)
            sm_dcm_header_read(&errs[i], paths[i], &headers[i]);
    }

    /* 3. classify, expand frames */
    for (size_t i = 0; i < files.n; i++) {
        char buf[256];
        const char *why = NULL;
        if (errs[i] != NULL)
            why = errs[i]->message;
        else
            why = skip_reason(&headers[i], buf, sizeof buf);
        if (why == NULL) {
            /* an exact duplicate file (same SOP Instance UID) is dropped here */
            for (size_t q = 0; q < i && why == NULL; q++)
                if (errs[q] == NULL && headers[i].sop_instance[0] && headers[q].rows &&
                    strcmp(headers[q].sop_instance, headers[i].sop_instance) == 0 &&
                    strcmp(headers[q].series_uid, headers[i].series_uid) == 0) {
                    snprintf(buf, sizeof buf, "duplicate of %.200s (same SOP Instance UID)", files.items[q]);
                    why = buf;
                }
        }
        if (why != NULL) {
            if (!add_skip(impl, &skip_cap, files.items[i], why))
                goto nomem;
            sm_dcm_header_clear(&headers[i]);
            headers[i].rows = 0; /* marks "not used" */
            continue;
        }
        size_t nf;
        if (!sm_size_mul(1, headers[i].frames, &nf) || n_frames + nf < n_frames)
            goto nomem;
        Frame *p = realloc(frames, (n_frames + nf) * sizeof *p);
        if (!p)
            goto nomem;
        frames = p;
        for (size_t f = 0; f < nf; f++) {
            frames[n_frames + f].file = i;
            frames[n_frames + f].frame = f;
            frames[n_frames + f].geom = frame_geom(&headers[i], f);
        }
        n_frames += nf;
    }

    /* 4. group: series UID, then orientation / size / pixel spacing */
    for (size_t k = 0; k < n_frames; k++) {
        const Frame *f = &frames[k];
        size_t gi = SIZE_MAX;
        for (size_t q = n_groups; q-- > 0;) {
            const Frame *r = &frames[groups[q].frames[0]];
            if (same_stack(&headers[r->file], &r->geom, &headers[f->file], &f->geom)) {
                gi = q;
                break;
            }
        }
        if (gi == SIZE_MAX) {
            if (n_groups == groups_cap) {
                size_t nc = groups_cap ? groups_cap * 2 : 8;
                Group *p = realloc(groups, nc * sizeof *p);
                if (!p)
                    goto nomem;
                groups = p;
                groups_cap = nc;
            }
            memset(&groups[n_groups], 0, sizeof groups[n_groups]);
            gi = n_groups++;
        }
        if (!group_add(&groups[gi], k))
            goto nomem;
    }
    /* Split a stack whose positions repeat with different Acquisition Numbers (two
     * acquisitions of the same slab under one Series Instance UID). */
    for (size_t q = 0; q < n_groups; q++) {
        Group *g = &groups[q];
        const SmDcmHeader *h0 = &headers[frames[g->frames[0]].file];
        bool differ = false;
        for (size_t k = 1; k < g->n && !differ; k++) {
            const SmDcmHeader *h = &headers[frames[g->frames[k]].file];
            differ = h->has_acquisition != h0->has_acquisition ||
                     (h->has_acquisition && h->acquisition_number != h0->acquisition_number);
        }
        if (!differ)
            continue;
        bool repeat = false;
        for (size_t a = 0; a < g->n && !repeat; a++)
            for (size_t b = a + 1; b < g->n && !repeat; b++) {
                const SmDcmFrameGeom *ga = &frames[g->frames[a]].geom, *gb = &frames[g->frames[b]].geom;
                if (!ga->has_ipp || !gb->has_ipp)
                    continue;
                double d = fabs(ga->ipp[0] - gb->ipp[0]) + fabs(ga->ipp[1] - gb->ipp[1]) + fabs(ga->ipp[2] - gb->ipp[2]);
                const SmDcmHeader *ha = &headers[frames[g->frames[a]].file], *hb = &headers[frames[g->frames[b]].file];
                repeat = d < 1e-3 && ha->acquisition_number != hb->acquisition_number;
            }
        if (!repeat)
            continue;
        /* move frames whose acquisition differs from the first into new groups */
        size_t w = 0;
        size_t *rest = malloc(g->n * sizeof *rest);
        size_t nrest = 0;
        if (!rest)
            goto nomem;
        for (size_t k = 0; k < g->n; k++) {
            const SmDcmHeader *h = &headers[frames[g->frames[k]].file];
            if (h->acquisition_number == h0->acquisition_number)
                g->frames[w++] = g->frames[k];
            else
                rest[nrest++] = g->frames[k];
        }
        g->n = w;
        if (n_groups == groups_cap) {
            size_t nc = groups_cap * 2;
            Group *p = realloc(groups, nc * sizeof *p);
            if (!p) {
                free(rest);
                goto nomem;
            }
            groups = p;
            groups_cap = nc;
            g = &groups[q];
        }
        groups[n_groups].frames = rest;
        groups[n_groups].n = nrest;
        groups[n_groups].cap = g->n + nrest;
        n_groups++; /* examined again later in this loop: splits per acquisition */
    }

    if (n_groups > 0) {
        scan->series = calloc(n_groups, sizeof *scan->series);
        impl->priv = calloc(n_groups, sizeof *impl->priv);
        if (!scan->series || !impl->priv)
            goto nomem;
    }
    for (size_t q = 0; q < n_groups; q++) {
        const char *uid = headers[frames[groups[q].frames[0]].file].series_uid;
        size_t n_same = 0, my_no = 0;
        for (size_t r = 0; r < n_groups; r++)
            if (strcmp(headers[frames[groups[r].frames[0]].file].series_uid, uid) == 0) {
                n_same++;
                if (r <= q)
                    my_no++;
            }
        if (!build_series(error, impl, q, &groups[q], frames, headers, files.items, n_same, my_no)) {
            scan->n_series = q + 1;
            goto fail;
        }
        scan->n_series = q + 1;
    }
    /* Deterministic order: series UID, stack, first file (priv moves with its series). */
    if (scan->n_series > 1) {
        size_t ns = scan->n_series;
        for (size_t a = 1; a < ns; a++)
            for (size_t b = a; b > 0 && cmp_series(&scan->series[b - 1], &scan->series[b]) > 0; b--) {
                SmDicomSeries ts = scan->series[b - 1];
                scan->series[b - 1] = scan->series[b];
                scan->series[b] = ts;
                SmDcmSeriesPriv tp = impl->priv[b - 1];
                impl->priv[b - 1] = impl->priv[b];
                impl->priv[b] = tp;
            }
        for (size_t q = 0; q < ns; q++)
            for (size_t k = 0; k < impl->priv[q].n_frames; k++)
                impl->priv[q].frames[k].hdr = &impl->priv[q].headers[impl->priv[q].frames[k].file];
    }
    /* Scan-time geometry notes (gaps, duplicates, tilt) for each series. */
    for (size_t q = 0; q < scan->n_series; q++) {
        SmError *e = NULL;
        if (!sm_dcm_series_check(&e, &impl->priv[q], &scan->series[q].warnings)) {
            if (e && !sm_strlist_add(&scan->series[q].warnings, "will not load: %s", e->message)) {
                sm_error_destroy(e);
                goto nomem;
            }
            sm_error_destroy(e);
        }
    }
    if (scan->n_series == 0) {
        if (scan->n_skipped > 0)
            sm_error_set(error, SM_ERR_NO_SERIES,
                         "no loadable image series among %zu file(s); %zu skipped, e.g. %s: %s", files.n,
                         scan->n_skipped, scan->skipped[0].path, scan->skipped[0].reason);
        else
            sm_error_set(error, SM_ERR_NO_SERIES, "no files found in the %zu input(s)", n_inputs);
        goto fail;
    }
    ok = true;
    goto done;
nomem:
    sm_error_set(error, SM_ERR_NOMEM, "out of memory scanning DICOM inputs");
fail:
    ok = false;
done:
    for (size_t i = 0; i < files.n; i++) {
        if (headers)
            sm_dcm_header_clear(&headers[i]);
        if (errs)
            sm_error_destroy(errs[i]);
    }
    free(headers);
    free(errs);
    free(frames);
    for (size_t q = 0; q < n_groups; q++)
        free(groups[q].frames);
    free(groups);
    sm_strlist_clear(&files);
    if (!ok) {
        sm_io_dicom_scan_destroy(scan);
        return false;
    }
    *out = scan;
    return true;
}
