/* DICOM series loading: slice geometry (order, duplicates, gaps, tilt), parallel pixel
 * decoding straight into one preallocated volume, value conversion to HU and resampling of
 * tilted or irregularly spaced stacks onto a regular grid. */
#include "sm_io_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Two slices closer than this along the normal are at the same position. */
#define SAME_POS_MM 0.01
/* Gaps within this fraction of the median gap are jitter, not irregular spacing. */
#define JITTER_REL 0.10
/* In-plane drift (pixels) over the whole stack below which a stack is not tilted. */
#define TILT_MIN_PX 0.05

typedef struct Geo {
    double r[3], c[3], n[3]; /* row direction (i), column direction (j), slice normal */
    double sx, sy;           /* spacing along i (Pixel Spacing[1]) and j (Pixel Spacing[0]) */
    size_t n_all;            /* frames of the series */
    double *s_all;           /* position along n of every frame (ascending: scan sorted them) */
    size_t n_in;             /* frames kept */
    size_t *in;              /* indices into priv->frames of kept frames, ascending s */
    double *s, *dx, *dy;     /* per kept frame: position, in-plane offset (px) from in[0] */
    bool tilt, irregular, reverse;
    double tilt_deg, step;
    size_t n_out;
} Geo;

static void geo_free(Geo *g)
{
    free(g->s_all);
    free(g->in);
    free(g->s);
    free(g->dx);
    free(g->dy);
    memset(g, 0, sizeof *g);
}

static double dot3(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *file_of(const SmDcmSeriesPriv *p, const SmDicomSeries *s, size_t frame)
{
    return s ? s->files[p->frames[frame].file] : "?";
}

/* Orientation, spacing and positions of every frame. */
static bool geo_positions(SmError **error, const SmDcmSeriesPriv *p, const SmDicomSeries *ser, Geo *g,
                          SmStrList *warnings)
{
    const SmDcmFrameRef *f0 = &p->frames[0];
    double iop[6] = {1, 0, 0, 0, 1, 0};
    if (f0->geom.has_iop)
        memcpy(iop, f0->geom.iop, sizeof iop);
    for (size_t k = 0; k < p->n_frames; k++) {
        if (p->n_frames > 1 && (!p->frames[k].geom.has_ipp || !p->frames[k].geom.has_iop)) {
            sm_error_set(error, SM_ERR_GEOMETRY,
                         "%s: Image Position/Orientation (Patient) missing: cannot order %zu slices",
                         file_of(p, ser, k), p->n_frames);
            return false;
        }
    }
    if (!f0->geom.has_iop || !f0->geom.has_ipp)
        sm_strlist_add(warnings, "single image without Image Position/Orientation: identity geometry assumed");
    double lr = sqrt(dot3(iop, iop)), lc = sqrt(dot3(iop + 3, iop + 3));
    if (!(lr > 0.5 && lr < 1.5 && lc > 0.5 && lc < 1.5) || fabs(dot3(iop, iop + 3)) > 0.01 * lr * lc) {
        sm_error_set(error, SM_ERR_GEOMETRY,
                     "%s: Image Orientation (Patient) %g\\%g\\%g\\%g\\%g\\%g is not two orthogonal unit vectors",
                     file_of(p, ser, 0), iop[0], iop[1], iop[2], iop[3], iop[4], iop[5]);
        return false;
    }
    for (int a = 0; a < 3; a++) {
        g->r[a] = iop[a] / lr;
        g->c[a] = iop[3 + a] / lc;
    }
    g->n[0] = g->r[1] * g->c[2] - g->r[2] * g->c[1];
    g->n[1] = g->r[2] * g->c[0] - g->r[0] * g->c[2];
    g->n[2] = g->r[0] * g->c[1] - g->r[1] * g->c[0];
    double ln = sqrt(dot3(g->n, g->n));
    for (int a = 0; a < 3; a++)
        g->n[a] /= ln;
    g->sy = 1.0;
    g->sx = 1.0;
    if (f0->geom.has_spacing && f0->geom.spacing[0] > 0 && f0->geom.spacing[1] > 0 &&
        isfinite(f0->geom.spacing[0]) && isfinite(f0->geom.spacing[1])) {
        g->sy = f0->geom.spacing[0]; /* between rows: along the column direction */
        g->sx = f0->geom.spacing[1]; /* between columns: along the row direction */
    } else {
        sm_strlist_add(warnings, "Pixel Spacing missing or invalid: 1 mm assumed");
    }
    g->n_all = p->n_frames;
    g->s_all = malloc(p->n_frames * sizeof *g->s_all);
    if (!g->s_all) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    for (size_t k = 0; k < p->n_frames; k++)
        g->s_all[k] = p->frames[k].geom.has_ipp ? dot3(p->frames[k].geom.ipp, g->n) : 0.0;
    return true;
}

/* Spacing, gaps and tilt of the kept frames g->in[0..n_in). */
static bool geo_spacing(SmError **error, const SmDcmSeriesPriv *p, const SmDicomSeries *ser, Geo *g,
                        SmStrList *warnings, bool *needs_resample)
{
    size_t n = g->n_in;
    if (n == 0) {
        sm_error_set(error, SM_ERR_INTERNAL, "no slices left");
        return false;
    }
    g->s = malloc(n * sizeof *g->s);
    g->dx = malloc(n * sizeof *g->dx);
    g->dy = malloc(n * sizeof *g->dy);
    double *gaps = n > 1 ? calloc(n - 1, sizeof *gaps) : NULL;
    if (!g->s || !g->dx || !g->dy || (n > 1 && !gaps)) {
        free(gaps);
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    const double *ipp0 = p->frames[g->in[0]].geom.ipp;
    double max_px = 0.0;
    for (size_t k = 0; k < n; k++) {
        const double *ipp = p->frames[g->in[k]].geom.ipp;
        g->s[k] = g->s_all[g->in[k]];
        double d[3];
        for (int a = 0; a < 3; a++)
            d[a] = (ipp[a] - ipp0[a]) - (g->s[k] - g->s[0]) * g->n[a];
        g->dx[k] = dot3(d, g->r) / g->sx;
        g->dy[k] = dot3(d, g->c) / g->sy;
        max_px = fmax(max_px, fmax(fabs(g->dx[k]), fabs(g->dy[k])));
    }
    *needs_resample = false;
    g->tilt = false;
    g->irregular = false;
    g->tilt_deg = 0.0;
    if (n == 1) {
        const SmDcmHeader *h = p->frames[g->in[0]].hdr;
        g->step = isfinite(h->spacing_between_slices) && h->spacing_between_slices > 0 ? h->spacing_between_slices
                  : isfinite(h->slice_thickness) && h->slice_thickness > 0            ? h->slice_thickness
                                                                                       : 1.0;
        g->n_out = 1;
        return true;
    }
    double range = g->s[n - 1] - g->s[0];
    for (size_t k = 0; k + 1 < n; k++)
        gaps[k] = g->s[k + 1] - g->s[k];
    qsort(gaps, n - 1, sizeof *gaps, cmp_double);
    double med = gaps[(n - 1) / 2];
    double mn = gaps[0], mx = gaps[n - 2];
    free(gaps);
    double tol = fmax(SAME_POS_MM, JITTER_REL * med);
    if (max_px > TILT_MIN_PX) {
        const double *ipp_last = p->frames[g->in[n - 1]].geom.ipp;
        double d[3], dl;
        for (int a = 0; a < 3; a++)
            d[a] = (ipp_last[a] - ipp0[a]) - range * g->n[a];
        dl = sqrt(dot3(d, d));
        g->tilt = true;
        g->tilt_deg = atan2(dl, range) * 57.29577951308232;
        sm_strlist_add(warnings,
                       "gantry tilt: slices are stacked %.2f degrees off their normal (in-plane drift %.1f pixels)",
                       g->tilt_deg, max_px);
    }
    if (mx - mn > 2 * tol || fabs(mx - med) > tol || fabs(med - mn) > tol) {
        /* Not jitter: a missing slice (a gap close to a whole multiple of the usual step,
         * everything else regular) or genuinely variable spacing. */
        bool all_missing = true;
        size_t first_gap = SIZE_MAX;
        for (size_t k = 0; k + 1 < n; k++) {
            double gap = g->s[k + 1] - g->s[k];
            if (fabs(gap - med) <= tol)
                continue;
            double j = floor(gap / med + 0.5);
            if (j >= 2 && fabs(gap - j * med) <= tol * j) {
                if (first_gap == SIZE_MAX)
                    first_gap = k;
            } else {
                all_missing = false;
            }
        }
        if (all_missing && first_gap != SIZE_MAX) {
            double gap = g->s[first_gap + 1] - g->s[first_gap];
            sm_error_set(error, SM_ERR_GEOMETRY,
                         "missing slice(s): gap of %.3f mm (usual step %.3f mm, about %.0f slice(s) missing) between "
                         "position %.3f mm (%s) and %.3f mm (%s) along the slice normal; re-export the complete "
                         "series",
                         gap, med, floor(gap / med + 0.5) - 1, g->s[first_gap], file_of(p, ser, g->in[first_gap]),
                         g->s[first_gap + 1], file_of(p, ser, g->in[first_gap + 1]));
            return false;
        }
        g->irregular = true;
        g->step = med;
        sm_strlist_add(warnings,
                       "irregular slice spacing (%.3f to %.3f mm): resampled onto a regular %.3f mm grid "
                       "(median step)",
                       mn, mx, med);
    } else {
        g->step = range / (double)(n - 1);
        if (mx - mn > 0.01 * med)
            sm_strlist_add(warnings, "slice spacing jitter %.3f..%.3f mm tolerated (mean step %.4f mm used)", mn, mx,
                           g->step);
    }
    if (!(g->step > 1e-4)) {
        sm_error_set(error, SM_ERR_GEOMETRY, "slice step %.6f mm is not positive", g->step);
        return false;
    }
    *needs_resample = g->tilt || g->irregular;
    if (*needs_resample) {
        double nf = floor(range / g->step + 1e-3) + 1.0;
        if (!(nf >= 1.0) || nf > (double)SM_DCM_MAX_FRAMES) {
            sm_error_set(error, SM_ERR_GEOMETRY, "resampled stack would have %.0f slices", nf);
            return false;
        }
        g->n_out = (size_t)nf;
    } else {
        g->n_out = n;
    }
    /* Slices always ascend along the slice normal (as dcm2niix orders them), whatever the
     * file names or Instance Numbers say: one deterministic grid per series. */
    g->reverse = false;
    return true;
}

/* Frames at the same position as their predecessor: runs [start, end). */
static size_t count_dup_runs(const Geo *g)
{
    size_t runs = 0;
    for (size_t k = 1; k < g->n_all; k++)
        if (g->s_all[k] - g->s_all[k - 1] < SAME_POS_MM && (k == 1 || g->s_all[k - 1] - g->s_all[k - 2] >= SAME_POS_MM))
            runs++;
    return runs;
}

bool sm_dcm_series_check(SmError **error, const SmDcmSeriesPriv *priv, SmStrList *warnings)
{
    Geo g = {0};
    bool ok = false, resample = false;
    if (priv == NULL || priv->n_frames == 0) {
        sm_error_set(error, SM_ERR_INTERNAL, "empty series");
        return false;
    }
    if (!geo_positions(error, priv, NULL, &g, warnings))
        goto done;
    g.in = malloc(priv->n_frames * sizeof *g.in);
    if (!g.in) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t runs = count_dup_runs(&g);
    for (size_t k = 0; k < priv->n_frames; k++)
        if (k == 0 || g.s_all[k] - g.s_all[g.in[g.n_in - 1]] >= SAME_POS_MM)
            g.in[g.n_in++] = k;
    if (runs > 0)
        sm_strlist_add(warnings,
                       "%zu position(s) hold more than one slice (%zu slices in all): exact duplicates are dropped at "
                       "load, different images there make the load fail",
                       runs, priv->n_frames - g.n_in);
    ok = geo_spacing(error, priv, NULL, &g, warnings, &resample);
done:
    geo_free(&g);
    return ok;
}

/* ---------- pixel conversion ---------- */

typedef struct Conv {
    unsigned bits_alloc, bits_stored, shift;
    bool is_signed, invert, has_pad;
    int64_t pad_lo, pad_hi; /* stored values that are padding */
    double slope, intercept, fill;
    int64_t islope, iintercept;
    bool integer; /* slope and intercept are integers */
} Conv;

static void conv_init(Conv *cv, const SmDcmHeader *h, const SmDcmFrameGeom *fg, double fill)
{
    memset(cv, 0, sizeof *cv);
    cv->bits_alloc = h->bits_allocated;
    cv->bits_stored = h->bits_stored;
    cv->shift = h->high_bit + 1 - h->bits_stored;
    cv->is_signed = h->pixel_representation == 1;
    cv->slope = fg->has_rescale ? fg->slope : 1.0;
    cv->intercept = fg->has_rescale ? fg->intercept : 0.0;
    if (cv->slope == 0.0 || !isfinite(cv->slope))
        cv->slope = 1.0;
    cv->integer = cv->slope == floor(cv->slope) && cv->intercept == floor(cv->intercept) &&
                  fabs(cv->slope) < 65536 && fabs(cv->intercept) < 1e9;
    cv->islope = cv->integer ? (int64_t)cv->slope : 1;
    cv->iintercept = cv->integer ? (int64_t)cv->intercept : 0;
    cv->invert = strcmp(h->photometric, "MONOCHROME1") == 0 && !(strcmp(h->modality, "CT") == 0 && fg->has_rescale);
    cv->fill = fill;
    if (h->has_padding) {
        double lo = h->padding_value, hi = h->padding_value;
        if (h->has_padding_limit) {
            lo = fmin(h->padding_value, h->padding_limit);
            hi = fmax(h->padding_value, h->padding_limit);
        }
        cv->has_pad = true;
        cv->pad_lo = (int64_t)lo;
        cv->pad_hi = (int64_t)hi;
    }
}

static inline int64_t stored_value(const Conv *cv, uint32_t raw)
{
    uint32_t mask = cv->bits_stored >= 32 ? 0xFFFFFFFFu : ((1u << cv->bits_stored) - 1u);
    uint32_t u = (raw >> cv->shift) & mask;
    int64_t v = u;
    if (cv->is_signed && cv->bits_stored < 64 && (u >> (cv->bits_stored - 1)) & 1u)
        v -= (int64_t)1 << cv->bits_stored;
    return v;
}

/* The common CT case: 16-bit samples, slope 1, integer intercept, I16 output. Branch-free
 * so that it vectorises; sign extension by the xor trick. */
static void convert_fast16(const Conv *cv, const uint16_t *restrict raw, size_t count, int16_t *restrict o,
                           bool *overflow)
{
    const uint32_t mask = (1u << cv->bits_stored) - 1u, shift = cv->shift;
    const int32_t sb = cv->is_signed ? (int32_t)(1u << (cv->bits_stored - 1)) : 0;
    const int32_t icpt = (int32_t)cv->iintercept;
    int32_t lo = 0, hi = 0;
    if (!cv->has_pad) {
        for (size_t i = 0; i < count; i++) {
            int32_t v = (int32_t)((((uint32_t)raw[i] >> shift) & mask) ^ (uint32_t)sb) - sb;
            int32_t w = v + icpt;
            lo = w < lo ? w : lo;
            hi = w > hi ? w : hi;
            o[i] = (int16_t)w;
        }
    } else {
        const int32_t plo = (int32_t)cv->pad_lo, phi = (int32_t)cv->pad_hi, fill = (int32_t)cv->fill;
        for (size_t i = 0; i < count; i++) {
            int32_t v = (int32_t)((((uint32_t)raw[i] >> shift) & mask) ^ (uint32_t)sb) - sb;
            int32_t w = (v >= plo && v <= phi) ? fill : v + icpt;
            lo = w < lo ? w : lo;
            hi = w > hi ? w : hi;
            o[i] = (int16_t)w;
        }
    }
    if (lo < INT16_MIN || hi > INT16_MAX)
        *overflow = true;
}

/* Converts count stored samples into I16 or F32 output; sets *overflow when an I16 output
 * cannot hold a value exactly. Runs inside the parallel region: no allocation, no I/O. */
static void convert(const Conv *cv, const void *raw, size_t count, SmVoxelType type, void *dst, bool *overflow)
{
    if (type == SM_VOXEL_I16 && cv->bits_alloc == 16 && cv->bits_stored <= 16 && cv->integer && cv->islope == 1 &&
        !cv->invert && cv->iintercept > -(1 << 20) && cv->iintercept < (1 << 20) && cv->pad_lo > -(1 << 20) &&
        cv->pad_hi < (1 << 20)) {
        convert_fast16(cv, raw, count, dst, overflow);
        return;
    }
    const uint8_t *r8 = raw;
    const uint16_t *r16 = raw;
    const uint32_t *r32 = raw;
    int64_t inv_max = cv->is_signed ? -1 : (int64_t)((cv->bits_stored >= 32 ? 0xFFFFFFFFu : ((1u << cv->bits_stored) - 1u)));
    bool ovf = false;
    for (size_t i = 0; i < count; i++) {
        uint32_t rv = cv->bits_alloc == 16 ? r16[i] : cv->bits_alloc == 8 ? r8[i] : r32[i];
        int64_t v = stored_value(cv, rv);
        bool pad = cv->has_pad && v >= cv->pad_lo && v <= cv->pad_hi;
        if (cv->invert)
            v = cv->is_signed ? inv_max - v : inv_max - v;
        if (type == SM_VOXEL_I16) {
            int16_t *o = dst;
            if (pad) {
                o[i] = (int16_t)cv->fill;
                continue;
            }
            if (cv->integer) {
                int64_t w = v * cv->islope + cv->iintercept;
                if (w < INT16_MIN || w > INT16_MAX) {
                    ovf = true;
                    w = w < INT16_MIN ? INT16_MIN : INT16_MAX;
                }
                o[i] = (int16_t)w;
            } else {
                double w = (double)v * cv->slope + cv->intercept;
                double rw = nearbyint(w);
                if (rw != w || rw < INT16_MIN || rw > INT16_MAX) {
                    ovf = true;
                    rw = fmin(fmax(rw, INT16_MIN), INT16_MAX);
                }
                o[i] = (int16_t)rw;
            }
        } else {
            float *o = dst;
            o[i] = pad ? (float)cv->fill : (float)((double)v * cv->slope + cv->intercept);
        }
    }
    if (ovf)
        *overflow = true;
}

/* ---------- decode ---------- */

typedef struct Job {
    size_t frame;  /* frame number in the file */
    size_t slice;  /* destination slice */
    size_t ref;    /* index into priv->frames */
} Job;

/* Decodes the listed frames into vol slices, in parallel over files. */
static bool decode_into(SmError **error, const SmDicomSeries *ser, const SmDcmSeriesPriv *p, const size_t *slice_of,
                        SmVolume *vol, double fill, int threads, bool *overflow_out)
{
    size_t nfiles = ser->n_files;
    size_t *job_off = calloc(nfiles + 1, sizeof *job_off);
    Job *jobs = malloc(p->n_frames * sizeof *jobs);
    SmError **errs = calloc(nfiles, sizeof *errs);
    bool *ovf = calloc(nfiles, sizeof *ovf);
    uint8_t *scratch = NULL;
    bool ok = false;
    size_t max_raw = 0, njobs = 0;
    if (!job_off || !jobs || !errs || !ovf) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < p->n_frames; k++)
        if (slice_of[k] != SIZE_MAX)
            job_off[p->frames[k].file + 1]++;
    for (size_t f = 0; f < nfiles; f++)
        job_off[f + 1] += job_off[f];
    {
        size_t *fill_pos = calloc(nfiles, sizeof *fill_pos);
        if (!fill_pos) {
            sm_error_set(error, SM_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (size_t k = 0; k < p->n_frames; k++) {
            if (slice_of[k] == SIZE_MAX)
                continue;
            size_t f = p->frames[k].file;
            Job *j = &jobs[job_off[f] + fill_pos[f]++];
            j->frame = p->frames[k].frame;
            j->slice = slice_of[k];
            j->ref = k;
            njobs++;
        }
        free(fill_pos);
    }
    for (size_t f = 0; f < nfiles; f++) {
        const SmDcmHeader *h = &p->headers[f];
        size_t b = (size_t)h->rows * h->cols * (h->bits_allocated / 8) * h->frames;
        if (job_off[f + 1] > job_off[f] && b > max_raw)
            max_raw = b;
    }
    if (threads <= 0)
        threads = sm_omp_threads();
    if ((size_t)threads > nfiles)
        threads = (int)(nfiles ? nfiles : 1);
    size_t scratch_bytes;
    if (!sm_size_mul(max_raw, (size_t)threads, &scratch_bytes) || (scratch = malloc(scratch_bytes ? scratch_bytes : 1)) == NULL) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory for %d decode buffers of %zu bytes", threads, max_raw);
        goto done;
    }
    {
        const ptrdiff_t nf = (ptrdiff_t)nfiles;
        const size_t slice_vox = vol->dims[0] * vol->dims[1];
        const size_t elem = sm_voxel_size(vol->type);
        const SmVoxelType type = vol->type;
        uint8_t *base = vol->data;
        char **paths = ser->files;
        const SmDcmHeader *headers = p->headers;
        const SmDcmFrameRef *frames = p->frames;
        /* The decode reads files and DCMTK allocates inside this loop: that is the work
         * itself. Dynamic schedule because compressed files differ in cost; every file
         * writes only its own slices, so the result does not depend on the schedule. */
#pragma omp parallel for num_threads(threads) default(none) schedule(dynamic, 1) \
    shared(errs, ovf, jobs, job_off, scratch, base, paths, headers, frames) \
    firstprivate(nf, slice_vox, elem, type, max_raw, fill)
        for (ptrdiff_t f = 0; f < nf; f++) {
            if (job_off[f + 1] == job_off[f])
                continue;
#ifdef _OPENMP
            uint8_t *buf = scratch + (size_t)omp_get_thread_num() * max_raw;
#else
            uint8_t *buf = scratch;
#endif
            const SmDcmHeader *h = &headers[f];
            if (!sm_dcm_pixels_read(&errs[f], paths[f], h, buf, max_raw))
                continue;
            size_t fbytes = (size_t)h->rows * h->cols * (h->bits_allocated / 8);
            for (size_t q = job_off[f]; q < job_off[f + 1]; q++) {
                Conv cv;
                conv_init(&cv, h, &frames[jobs[q].ref].geom, fill);
                convert(&cv, buf + jobs[q].frame * fbytes, slice_vox, type, base + jobs[q].slice * slice_vox * elem,
                        &ovf[f]);
            }
        }
    }
    *overflow_out = false;
    for (size_t f = 0; f < nfiles; f++) {
        if (errs[f] != NULL) {
            sm_error_set(error, errs[f]->code, "%s: %s", ser->files[f], errs[f]->message);
            goto done;
        }
        if (ovf[f])
            *overflow_out = true;
    }
    ok = true;
done:
    for (size_t f = 0; errs && f < nfiles; f++)
        sm_error_destroy(errs[f]);
    free(errs);
    free(ovf);
    free(jobs);
    free(job_off);
    free(scratch);
    (void)njobs;
    return ok;
}

/* Decodes with I16 when every frame's rescale is integral, falling back to F32 when a value
 * does not fit. */
static SmVolume *decode_volume(SmError **error, const SmDicomSeries *ser, const SmDcmSeriesPriv *p,
                               const size_t *slice_of, size_t n_slices, double fill, int threads)
{
    bool integer = true;
    for (size_t k = 0; k < p->n_frames && integer; k++) {
        const SmDcmFrameGeom *fg = &p->frames[k].geom;
        if (fg->has_rescale && (fg->slope != floor(fg->slope) || fg->intercept != floor(fg->intercept)))
            integer = false;
    }
    size_t dims[3] = {ser->cols, ser->rows, n_slices};
    size_t nvox;
    if (!sm_size_voxels(dims, 1, &nvox) || nvox > SM_DCM_MAX_VOLUME_VOXELS) {
        sm_error_set(error, SM_ERR_UNSUPPORTED, "volume %zux%zux%zu exceeds the limit of %zu voxels", dims[0], dims[1],
                     dims[2], SM_DCM_MAX_VOLUME_VOXELS);
        return NULL;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        SmVoxelType type = (integer && attempt == 0) ? SM_VOXEL_I16 : SM_VOXEL_F32;
        SmVolume *vol = sm_volume_create_uninit(error, dims, type);
        if (!vol)
            return NULL;
        bool overflow = false;
        if (!decode_into(error, ser, p, slice_of, vol, fill, threads, &overflow)) {
            sm_volume_destroy(vol);
            return NULL;
        }
        if (!(overflow && type == SM_VOXEL_I16))
            return vol;
        sm_volume_destroy(vol);
        integer = false;
    }
    sm_error_set(error, SM_ERR_INTERNAL, "voxel type selection failed");
    return NULL;
}

/* ---------- resampling ---------- */

static double sample_slice(const SmVolume *in, size_t k, double u, double v, double fill)
{
    size_t nx = in->dims[0], ny = in->dims[1];
    double fu = floor(u), fv = floor(v);
    double wu = u - fu, wv = v - fv;
    double acc = 0.0;
    for (int b = 0; b < 2; b++) {
        double wy = b ? wv : 1.0 - wv;
        if (wy <= 1e-9)
            continue;
        for (int a = 0; a < 2; a++) {
            double wx = a ? wu : 1.0 - wu;
            if (wx <= 1e-9)
                continue;
            double x = fu + a, y = fv + b;
            double val = fill;
            if (x >= 0 && y >= 0 && x < (double)nx && y < (double)ny)
                val = sm_volume_get(in, (size_t)x, (size_t)y, k);
            acc += wx * wy * val;
        }
    }
    return acc;
}

/* out slice m (ascending) lies at s[0] + m*step; each is interpolated linearly between the
 * two input slices around it, each sampled bilinearly at its own in-plane offset. */
static void resample(const Geo *g, const SmVolume *in, SmVolume *out, double fill)
{
    const ptrdiff_t n_out = (ptrdiff_t)g->n_out;
    const size_t nx = out->dims[0], ny = out->dims[1];
    const bool reverse = g->reverse;
    const size_t n_in = g->n_in;
#pragma omp parallel for default(none) shared(g, in, out) firstprivate(n_out, nx, ny, reverse, n_in, fill) \
    schedule(static)
    for (ptrdiff_t m = 0; m < n_out; m++) {
        double s = g->s[0] + (double)m * g->step;
        size_t a = 0;
        while (a + 1 < n_in && g->s[a + 1] <= s)
            a++;
        size_t b = a + 1 < n_in ? a + 1 : a;
        double t = b == a ? 0.0 : (s - g->s[a]) / (g->s[b] - g->s[a]);
        if (t < 1e-9)
            t = 0.0;
        size_t mo = reverse ? (size_t)(n_out - 1 - m) : (size_t)m;
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                double va = sample_slice(in, a, (double)i - g->dx[a], (double)j - g->dy[a], fill);
                double v = va;
                if (t > 0.0) {
                    double vb = sample_slice(in, b, (double)i - g->dx[b], (double)j - g->dy[b], fill);
                    v = (1.0 - t) * va + t * vb;
                }
                size_t idx = i + nx * (j + ny * mo);
                if (out->type == SM_VOXEL_I16) {
                    double rv = nearbyint(v);
                    ((int16_t *)out->data)[idx] = (int16_t)fmin(fmax(rv, INT16_MIN), INT16_MAX);
                } else {
                    ((float *)out->data)[idx] = (float)v;
                }
            }
    }
}

/* ---------- duplicates ---------- */

/* Resolves runs of frames at one position: keeps the first of identical images, fails on
 * different images. Fills g->in / g->n_in. */
static bool resolve_duplicates(SmError **error, const SmDicomSeries *ser, const SmDcmSeriesPriv *p, Geo *g,
                               SmStrList *warnings)
{
    g->in = malloc(p->n_frames * sizeof *g->in);
    if (!g->in) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        return false;
    }
    g->n_in = 0;
    for (size_t k = 0; k < p->n_frames; k++) {
        if (g->n_in == 0 || g->s_all[k] - g->s_all[g->in[g->n_in - 1]] >= SAME_POS_MM) {
            g->in[g->n_in++] = k;
            continue;
        }
        size_t keep = g->in[g->n_in - 1];
        const SmDcmFrameRef *a = &p->frames[keep], *b = &p->frames[k];
        const SmDcmHeader *ha = a->hdr, *hb = b->hdr;
        bool same = ha->rows == hb->rows && ha->cols == hb->cols && ha->bits_allocated == hb->bits_allocated &&
                    ha->pixel_representation == hb->pixel_representation && a->geom.slope == b->geom.slope &&
                    a->geom.intercept == b->geom.intercept;
        if (same) {
            size_t fa = (size_t)ha->rows * ha->cols * (ha->bits_allocated / 8);
            size_t ba = fa * ha->frames, bb = fa * hb->frames;
            uint8_t *ra = malloc(ba), *rb = malloc(bb);
            if (!ra || !rb) {
                free(ra);
                free(rb);
                sm_error_set(error, SM_ERR_NOMEM, "out of memory comparing duplicate slices");
                return false;
            }
            SmError *e = NULL;
            if (!sm_dcm_pixels_read(&e, ser->files[a->file], ha, ra, ba) ||
                !sm_dcm_pixels_read(&e, ser->files[b->file], hb, rb, bb)) {
                sm_error_set(error, e ? e->code : SM_ERR_FORMAT, "comparing duplicate slices: %s",
                             e ? e->message : "decode failed");
                sm_error_destroy(e);
                free(ra);
                free(rb);
                return false;
            }
            same = memcmp(ra + a->frame * fa, rb + b->frame * fa, fa) == 0;
            free(ra);
            free(rb);
        }
        if (!same) {
            sm_error_set(error, SM_ERR_GEOMETRY,
                         "two different images at the same position %.3f mm along the slice normal (%s and %s): the "
                         "series mixes acquisitions; select the files of one acquisition",
                         g->s_all[k], ser->files[a->file], ser->files[b->file]);
            return false;
        }
        sm_strlist_add(warnings, "dropped exact duplicate slice %s (same pixels and position as %s)",
                       ser->files[b->file], ser->files[a->file]);
    }
    return true;
}

/* ---------- meta ---------- */

static void fill_meta(SmVolume *vol, const SmDicomSeries *ser, const SmDcmHeader *h, const Geo *g, bool resampled)
{
    SmVolumeMeta *m = &vol->meta;
    memset(m, 0, sizeof *m);
    snprintf(m->modality, sizeof m->modality, "%s", h->modality);
    snprintf(m->series_uid, sizeof m->series_uid, "%s", ser->series_uid);
    snprintf(m->study_uid, sizeof m->study_uid, "%s", h->study_uid);
    snprintf(m->series_description, sizeof m->series_description, "%s", h->series_description);
    snprintf(m->patient_position, sizeof m->patient_position, "%s", h->patient_position);
    snprintf(m->manufacturer, sizeof m->manufacturer, "%s", h->manufacturer);
    snprintf(m->convolution_kernel, sizeof m->convolution_kernel, "%s", h->kernel);
    snprintf(m->contrast_agent, sizeof m->contrast_agent, "%s", h->contrast);
    snprintf(m->body_part, sizeof m->body_part, "%s", h->body_part);
    snprintf(m->source, sizeof m->source, "dicom");
    m->slice_thickness_mm = h->slice_thickness;
    m->kvp = h->kvp;
    m->gantry_tilt_deg = g->tilt ? g->tilt_deg : 0.0;
    m->resampled = resampled;
    m->is_hu = strcmp(h->modality, "CT") == 0;
}

bool sm_io_dicom_series_load(SmError **error, const SmDicomScan *scan, size_t index,
                             const SmDicomLoadOptions *options, SmVolume **out, SmStrList *warnings)
{
    SmStrList local = {0};
    if (warnings == NULL)
        warnings = &local;
    if (out == NULL || scan == NULL || index >= scan->n_series) {
        sm_error_set(error, SM_ERR_USAGE, "sm_io_dicom_series_load: bad scan, index %zu or output", index);
        return false;
    }
    const SmDcmSeriesPriv *p = sm_dcm_scan_priv(scan, index);
    const SmDicomSeries *ser = &scan->series[index];
    if (p == NULL || p->n_frames == 0) {
        sm_error_set(error, SM_ERR_USAGE, "scan was not made by sm_io_dicom_scan");
        return false;
    }
    SmTiltPolicy tilt = options ? options->tilt : SM_TILT_RESAMPLE;
    int threads = options && options->threads > 0 ? options->threads : sm_omp_threads();
    Geo g = {0};
    SmVolume *vol = NULL, *tmp = NULL;
    size_t *slice_of = NULL;
    bool ok = false, resample_needed = false;
    const SmDcmHeader *h0 = p->frames[0].hdr;
    bool is_ct = strcmp(h0->modality, "CT") == 0;
    double fill = is_ct ? -1024.0 : 0.0;

    if (!geo_positions(error, p, ser, &g, warnings) || !resolve_duplicates(error, ser, p, &g, warnings) ||
        !geo_spacing(error, p, ser, &g, warnings, &resample_needed))
        goto done;
    if (g.tilt && tilt == SM_TILT_REFUSE) {
        sm_error_set(error, SM_ERR_UNSUPPORTED,
                     "series %s is acquired with a gantry tilt of %.2f degrees and the tilt policy is refuse; load "
                     "with tilt resampling to correct the shear",
                     ser->series_uid, g.tilt_deg);
        goto done;
    }
    slice_of = malloc(p->n_frames * sizeof *slice_of);
    if (!slice_of) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < p->n_frames; k++)
        slice_of[k] = SIZE_MAX;
    for (size_t k = 0; k < g.n_in; k++)
        slice_of[g.in[k]] = (!resample_needed && g.reverse) ? g.n_in - 1 - k : k;
    vol = decode_volume(error, ser, p, slice_of, g.n_in, fill, threads);
    if (!vol)
        goto done;
    if (resample_needed) {
        size_t dims[3] = {vol->dims[0], vol->dims[1], g.n_out};
        tmp = vol;
        vol = sm_volume_create_uninit(error, dims, tmp->type);
        if (!vol)
            goto done;
        resample(&g, tmp, vol, fill);
    }
    {
        double dir[3][3], spacing[3] = {g.sx, g.sy, g.step}, origin[3];
        double sign = g.reverse ? -1.0 : 1.0;
        for (int a = 0; a < 3; a++) {
            dir[a][0] = g.r[a];
            dir[a][1] = g.c[a];
            dir[a][2] = sign * g.n[a];
        }
        static const double zero[3] = {0, 0, 0};
        const double *ipp0 = p->frames[g.in[0]].geom.has_ipp ? p->frames[g.in[0]].geom.ipp : zero;
        if (!g.reverse) {
            memcpy(origin, ipp0, sizeof origin);
        } else if (resample_needed) {
            for (int a = 0; a < 3; a++)
                origin[a] = ipp0[a] + (double)(g.n_out - 1) * g.step * g.n[a];
        } else {
            memcpy(origin, p->frames[g.in[g.n_in - 1]].geom.ipp, sizeof origin);
        }
        sm_volume_set_geometry(vol, dir, spacing, origin);
    }
    fill_meta(vol, ser, h0, &g, resample_needed);
    if (strcmp(h0->photometric, "MONOCHROME1") == 0)
        sm_strlist_add(warnings, "MONOCHROME1 image: %s", vol->meta.is_hu ? "CT values kept as HU (not inverted)"
                                                                           : "stored values inverted");
    ok = true;
done:
    sm_volume_destroy(tmp);
    if (!ok) {
        sm_volume_destroy(vol);
        vol = NULL;
    }
    free(slice_of);
    geo_free(&g);
    sm_strlist_clear(&local);
    if (ok)
        *out = vol;
    return ok;
}
