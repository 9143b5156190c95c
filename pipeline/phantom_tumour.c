/* Epidural tumour post-process for the synthetic phantom: repaints the canal contents
 * around a level so that an epidural mass has the geometry of a target Bilsky grade. */
#include "phantom_tumour.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ names, random */

const char *sm_phantom_tumour_position_name(int position)
{
    static const char *names[] = {"?", "anterior", "posterior", "left", "right", "circumferential"};
    return position >= 1 && position <= 5 ? names[position] : "?";
}

const char *sm_phantom_tumour_grade_name(int grade)
{
    static const char *names[] = {"?", "1a", "1b", "1c", "2", "3"};
    return grade >= 1 && grade <= 5 ? names[grade] : "?";
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static double unit_rand(uint64_t *state)
{
    *state = mix64(*state);
    return (double)(*state >> 11) * (1.0 / 9007199254740992.0);
}

static double gauss_hash(uint64_t h)
{
    double s = (double)(h & 0xFFFF) + (double)((h >> 16) & 0xFFFF) +
               (double)((h >> 32) & 0xFFFF) + (double)(h >> 48);
    return (s - 131070.0) / 37837.23;
}

/* ------------------------------------------------------------------ 2D model */

typedef struct Ell {
    double x, y, a, b; /* centre and semi-axes in the level's local plane (x left, y posterior) */
} Ell;

static bool in_ell(const Ell *e, double x, double y)
{
    double u = (x - e->x) / e->a, v = (y - e->y) / e->b;
    return u * u + v * v <= 1.0;
}

/* Distance from (ox, oy) along the unit direction (ux, uy) to the far boundary of e. */
static double ray_ell(const Ell *e, double ox, double oy, double ux, double uy)
{
    double px = (ox - e->x) / e->a, py = (oy - e->y) / e->b;
    double dx = ux / e->a, dy = uy / e->b;
    double A = dx * dx + dy * dy, B = 2 * (px * dx + py * dy), C = px * px + py * py - 1;
    double disc = B * B - 4 * A * C;
    if (disc < 0)
        return 0;
    return (-B + sqrt(disc)) / (2 * A);
}

enum { T_BONE = -1, T_FAT = 0, T_CSF, T_CORD, T_TUMOUR };

typedef struct Geo {
    Ell canal, sac0, cord0, sac1, cord1;
    bool has_cord;
    double ox, oy;          /* reference point (cord centre, else sac centre) */
    bool dir;               /* directional front */
    double ux, uy, s0, rw, kappa;
    bool ring;              /* circumferential: tumour outside `inner` */
    Ell inner;
    bool csf_to_tumour;     /* grade 3: no CSF left */
    double half_len;        /* slab half length along the axis (mm) */
    double tum_hu, fat_hu, csf_hu, cord_hu;
} Geo;

static double taper(const Geo *g, double z)
{
    double t = (fabs(z) - 0.5 * g->half_len) / (0.5 * g->half_len);
    if (t <= 0)
        return 0;
    if (t >= 1)
        return 1;
    return t * t * (3 - 2 * t);
}

static int old_tissue(const Geo *g, double x, double y)
{
    if (!in_ell(&g->canal, x, y))
        return T_BONE;
    if (g->has_cord && in_ell(&g->cord0, x, y))
        return T_CORD;
    if (in_ell(&g->sac0, x, y))
        return T_CSF;
    return T_FAT;
}

static Ell blend(const Ell *a, const Ell *b, double t)
{
    Ell e = {a->x + (b->x - a->x) * t, a->y + (b->y - a->y) * t, a->a + (b->a - a->a) * t,
             a->b + (b->b - a->b) * t};
    return e;
}

static int new_tissue(const Geo *g, double x, double y, double z)
{
    if (!in_ell(&g->canal, x, y))
        return T_BONE;
    double t = taper(g, z);
    if (t >= 1)
        return old_tissue(g, x, y);
    bool tum = false;
    if (g->dir) {
        double px = x - g->ox, py = y - g->oy;
        double along = px * g->ux + py * g->uy, perp = -px * g->uy + py * g->ux;
        double s = g->s0 + (g->rw + 1.0 - g->s0) * t;
        tum = along > s + g->kappa * perp * perp;
    }
    if (!tum && g->ring) {
        Ell big = {g->canal.x, g->canal.y, g->canal.a + 1, g->canal.b + 1};
        Ell in = blend(&g->inner, &big, t);
        tum = !in_ell(&in, x, y);
    }
    if (tum)
        return T_TUMOUR;
    Ell k = blend(&g->cord1, &g->cord0, t), s = blend(&g->sac1, &g->sac0, t);
    if (g->has_cord && in_ell(&k, x, y))
        return T_CORD;
    if (in_ell(&s, x, y))
        return g->csf_to_tumour && t < 0.5 ? T_TUMOUR : T_CSF;
    return T_FAT;
}

static double tissue_hu(const Geo *g, int t)
{
    switch (t) {
    case T_FAT: return g->fat_hu;
    case T_CSF: return g->csf_hu;
    case T_CORD: return g->cord_hu;
    case T_TUMOUR: return g->tum_hu;
    default: return 0;
    }
}

/* Areas at z = 0 on a 0.1 mm grid: [0] canal, by tissue [1 + T_*] (new or old model). */
static void model_areas(const Geo *g, bool after, double out[5])
{
    memset(out, 0, 5 * sizeof *out);
    double h = 0.1;
    double ext = fmax(g->canal.a, g->canal.b) + 1;
    for (double y = g->canal.y - ext; y <= g->canal.y + ext; y += h)
        for (double x = g->canal.x - ext; x <= g->canal.x + ext; x += h) {
            int t = after ? new_tissue(g, x, y, 0) : old_tissue(g, x, y);
            if (t == T_BONE)
                continue;
            out[0] += h * h;
            out[1 + t] += h * h;
        }
}

/* Directional front for `grade` along (ux, uy); sets g->dir fields and the deformed sac/cord. */
static void directional(Geo *g, int grade, double ux, double uy)
{
    g->dir = true;
    g->ux = ux;
    g->uy = uy;
    g->kappa = 1.0 / (2 * 7.0);
    double ox = g->ox, oy = g->oy;
    double rw = ray_ell(&g->canal, ox, oy, ux, uy), rw_far = ray_ell(&g->canal, ox, oy, -ux, -uy);
    double rs = ray_ell(&g->sac0, ox, oy, ux, uy), rs_far = ray_ell(&g->sac0, ox, oy, -ux, -uy);
    double rk = g->has_cord ? ray_ell(&g->cord0, ox, oy, ux, uy) : 0;
    double rk_far = g->has_cord ? ray_ell(&g->cord0, ox, oy, -ux, -uy) : 0;
    g->rw = rw;
    if (grade == SM_PHANTOM_ESCC_1A) {
        /* tumour in the epidural space only: the sac is pushed (not deformed) if the fat
         * layer is too thin for a visible mass */
        double delta = fmax(0, 3.0 - (rw - rs));
        delta = fmin(delta, fmax(0, (rw_far - rs_far) - 0.4));
        g->sac1.x -= delta * ux;
        g->sac1.y -= delta * uy;
        g->cord1.x -= delta * ux;
        g->cord1.y -= delta * uy;
        g->s0 = rs - delta + 0.4;
        g->kappa = 1.0 / (2 * 20.0);
        return;
    }
    if (!g->has_cord)
        return; /* cauda: s0 chosen by the caller (target sac fraction) */
    if (grade == SM_PHANTOM_ESCC_1B) {
        /* the cord floats away from the mass inside the sac (not touched, not deformed) */
        double dc = fmin(1.5, 0.5 * (rs_far - rk_far));
        g->cord1.x -= dc * ux;
        g->cord1.y -= dc * uy;
        double s0 = rk - dc + 1.6;
        if (s0 > rs - 1.2)
            s0 = 0.5 * (rk - dc + rs);
        g->s0 = s0;
        g->kappa = 1.0 / (2 * 10.0);
    } else if (grade == SM_PHANTOM_ESCC_1C) {
        g->s0 = rk; /* abuts the cord, which keeps its shape */
        g->kappa = 1.0 / (2 * 5.0);
    } else {
        /* compressed: flattened along u, pushed towards the far side of the sac */
        double f = grade == SM_PHANTOM_ESCC_2 ? 0.5 : 0.5;
        double gfar = rs_far - rk_far;
        double gnew = grade == SM_PHANTOM_ESCC_2 ? fmax(0.6, 0.35 * gfar) : 0;
        bool along_x = fabs(ux) > fabs(uy);
        double su = along_x ? g->cord0.a : g->cord0.b;
        double far_edge = rk_far + (gfar - gnew); /* from o along -u */
        double centre = -far_edge + f * su;        /* along u */
        g->cord1.x = ox + centre * ux;
        g->cord1.y = oy + centre * uy;
        if (along_x) {
            g->cord1.a = f * g->cord0.a;
            g->cord1.b = fmin(1.15 * g->cord0.b, 0.95 * g->sac0.b);
        } else {
            g->cord1.b = f * g->cord0.b;
            g->cord1.a = fmin(1.15 * g->cord0.a, 0.95 * g->sac0.a);
        }
        g->s0 = centre + f * su;
        g->kappa = 1.0 / (2 * 5.0);
        g->csf_to_tumour = grade == SM_PHANTOM_ESCC_3;
    }
}

/* Cauda (no cord): front position giving the target remaining sac fraction (bisection). */
static void cauda_front(Geo *g, double target)
{
    double before[5], after[5];
    model_areas(g, false, before);
    double sac0 = before[1 + T_CSF];
    double lo = -ray_ell(&g->sac0, g->ox, g->oy, -g->ux, -g->uy) - 1, hi = g->rw;
    for (int it = 0; it < 30; it++) {
        g->s0 = 0.5 * (lo + hi);
        model_areas(g, true, after);
        if (after[1 + T_CSF] / sac0 > target)
            hi = g->s0;
        else
            lo = g->s0;
    }
    g->s0 = 0.5 * (lo + hi);
}

static const double CAUDA_TARGET[6] = {1, 1, 0.82, 0.58, 0.32, 0.0};

/* ------------------------------------------------------------------ apply */

static bool measure_ell(const SmPhantom *ph, const double c[3], const double ex[3],
                        const double ey[3], const double ez[3], int code_a, int code_b, Ell *e,
                        size_t *count)
{
    const SmVolume *sub = ph->subregions;
    double s[5] = {0};
    double inv[4][4];
    if (!sm_mat4_affine_inverse(sub->affine, inv))
        return false;
    /* scan a box of +-22 mm in plane and +-2.5 mm along the axis */
    long lo[3], hi[3];
    for (int d = 0; d < 3; d++) {
        lo[d] = 1L << 40;
        hi[d] = -(1L << 40);
    }
    for (int q = 0; q < 8; q++) {
        double p[3], ijk[3];
        for (int d = 0; d < 3; d++)
            p[d] = c[d] + ((q & 1) ? 22 : -22) * ex[d] + ((q & 2) ? 22 : -22) * ey[d] +
                   ((q & 4) ? 2.5 : -2.5) * ez[d];
        sm_mat4_apply(inv, p, ijk);
        for (int d = 0; d < 3; d++) {
            long f = (long)floor(ijk[d]), cc = (long)ceil(ijk[d]);
            if (f < lo[d])
                lo[d] = f;
            if (cc > hi[d])
                hi[d] = cc;
        }
    }
    for (int d = 0; d < 3; d++) {
        if (lo[d] < 0)
            lo[d] = 0;
        if (hi[d] > (long)sub->dims[d] - 1)
            hi[d] = (long)sub->dims[d] - 1;
    }
    const uint8_t *sv = sub->data;
    for (long k = lo[2]; k <= hi[2]; k++)
        for (long j = lo[1]; j <= hi[1]; j++)
            for (long i = lo[0]; i <= hi[0]; i++) {
                size_t idx = (size_t)i + sub->dims[0] * ((size_t)j + sub->dims[1] * (size_t)k);
                if (sv[idx] != code_a && sv[idx] != code_b)
                    continue;
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3];
                sm_volume_index_to_lps(sub, ijk, p);
                double dv[3] = {p[0] - c[0], p[1] - c[1], p[2] - c[2]};
                double x = dv[0] * ex[0] + dv[1] * ex[1] + dv[2] * ex[2];
                double y = dv[0] * ey[0] + dv[1] * ey[1] + dv[2] * ey[2];
                double z = dv[0] * ez[0] + dv[1] * ez[1] + dv[2] * ez[2];
                if (fabs(z) > 2.5 || fabs(x) > 20 || fabs(y) > 20)
                    continue;
                s[0] += x;
                s[1] += y;
                s[2] += x * x;
                s[3] += y * y;
                s[4] += 1;
            }
    *count = (size_t)s[4];
    if (s[4] < 8)
        return false;
    e->x = s[0] / s[4];
    e->y = s[1] / s[4];
    double vx = s[2] / s[4] - e->x * e->x, vy = s[3] / s[4] - e->y * e->y;
    /* a uniform ellipse has variance a^2/4 along its axis; add half a voxel of the
     * discretisation back */
    e->a = 2 * sqrt(fmax(vx, 0.01));
    e->b = 2 * sqrt(fmax(vy, 0.01));
    return true;
}

static bool apply_one(SmError **error, SmPhantom *ph, const SmPhantomTumourSpec *t,
                      SmPhantomTumourTruth *truth)
{
    const SmPhantomSpec *sp = &ph->spec;
    if (t->level < sp->level_first || t->level > sp->level_last) {
        sm_error_set(error, SM_ERR_USAGE, "epidural tumour: level %s is not in the phantom (%s-%s)",
                     sm_phantom_level_name(t->level), sm_phantom_level_name(sp->level_first),
                     sm_phantom_level_name(sp->level_last));
        return false;
    }
    if (t->level == 0 || t->level == SM_PHANTOM_LEVEL_S1 || t->level == sp->conus_level) {
        sm_error_set(error, SM_ERR_USAGE, "epidural tumour at %s: not supported at C1, S1 or the "
                     "conus level (the cord tapers there)", sm_phantom_level_name(t->level));
        return false;
    }
    if (t->position < 1 || t->position > 5 || t->grade < 1 || t->grade > 5) {
        sm_error_set(error, SM_ERR_USAGE, "epidural tumour at %s: bad position %d or grade %d",
                     sm_phantom_level_name(t->level), t->position, t->grade);
        return false;
    }
    const SmPhantomVertebra *v = &ph->vertebrae[t->level - sp->level_first];
    double c[3], ez[3], ey[3], ex[3];
    memcpy(c, v->canal_center, sizeof c);
    memcpy(ez, v->axis_superior, sizeof ez);
    memcpy(ey, v->axis_posterior, sizeof ey);
    ex[0] = ey[1] * ez[2] - ey[2] * ez[1];
    ex[1] = ey[2] * ez[0] - ey[0] * ez[2];
    ex[2] = ey[0] * ez[1] - ey[1] * ez[0];
    Geo g;
    memset(&g, 0, sizeof g);
    size_t nc = 0, nk = 0;
    if (!measure_ell(ph, c, ex, ey, ez, SM_PHANTOM_SUB_CANAL, SM_PHANTOM_SUB_CORD, &g.canal, &nc)) {
        sm_error_set(error, SM_ERR_USAGE, "epidural tumour at %s: the canal is not in the grid",
                     sm_phantom_level_name(t->level));
        return false;
    }
    g.has_cord = t->level < sp->conus_level &&
                 measure_ell(ph, c, ex, ey, ez, SM_PHANTOM_SUB_CORD, SM_PHANTOM_SUB_CORD, &g.cord0, &nk);
    /* the dural sac of the phantom: 80 % of the canal, shifted anteriorly by 8 % of its AP
     * diameter (pipeline/phantom.c, add_canal_piece) */
    g.sac0 = (Ell){g.canal.x, g.canal.y - 0.16 * g.canal.b, 0.8 * g.canal.a, 0.8 * g.canal.b};
    g.sac1 = g.sac0;
    g.cord1 = g.cord0;
    g.ox = g.has_cord ? g.cord0.x : g.sac0.x;
    g.oy = g.has_cord ? g.cord0.y : g.sac0.y;
    double hm = isnan(v->height_middle_mm) ? 22 : v->height_middle_mm;
    g.half_len = fmax(6.0, 0.5 * hm);
    g.fat_hu = sp->hu.epidural_fat;
    g.csf_hu = sp->hu.csf;
    g.cord_hu = sp->hu.cord;
    g.tum_hu = isnan(t->hu) ? sp->hu.muscle + (sp->contrast ? 15 : 5) : t->hu;
    static const double dirs[6][2] = {{0, 0}, {0, -1}, {0, 1}, {1, 0}, {-1, 0}, {0, -1}};
    if (t->position != SM_PHANTOM_EPI_CIRCUMFERENTIAL) {
        directional(&g, t->grade, dirs[t->position][0], dirs[t->position][1]);
        if (!g.has_cord && t->grade > SM_PHANTOM_ESCC_1A) {
            cauda_front(&g, CAUDA_TARGET[t->grade]);
            g.csf_to_tumour = t->grade == SM_PHANTOM_ESCC_3;
        }
    } else {
        g.ring = true;
        if (t->grade == SM_PHANTOM_ESCC_1A) {
            g.inner = (Ell){g.sac0.x, g.sac0.y, g.sac0.a + 0.4, g.sac0.b + 0.4};
        } else if (!g.has_cord) {
            double f = sqrt(CAUDA_TARGET[t->grade]);
            g.inner = (Ell){g.sac0.x, g.sac0.y, g.sac0.a * f, g.sac0.b * f};
            g.csf_to_tumour = t->grade == SM_PHANTOM_ESCC_3;
        } else if (t->grade == SM_PHANTOM_ESCC_3) {
            g.inner = (Ell){g.cord0.x, g.cord0.y, 0.8 * g.cord0.a, 0.8 * g.cord0.b};
            g.cord1 = g.inner;
            g.csf_to_tumour = true;
        } else if (t->grade == SM_PHANTOM_ESCC_1B) {
            /* a ring that indents the sac but leaves CSF around the cord */
            double gap = 2.0;
            g.inner = (Ell){g.cord0.x, g.cord0.y, fmin(g.cord0.a + gap + 0.5, g.sac0.a - 0.8),
                            fmin(g.cord0.b + gap, g.sac0.b - 0.8)};
        } else {
            /* 1c / 2: the mass fills the epidural space all round and reaches / compresses
             * the cord from the front */
            g.inner = (Ell){g.sac0.x, g.sac0.y, g.sac0.a + 0.4, g.sac0.b + 0.4};
            directional(&g, t->grade, 0, -1);
        }
    }

    /* repaint the slab */
    SmVolume *ct = ph->ct, *sub = ph->subregions;
    int16_t *cv = ct->data;
    uint8_t *sv = sub->data;
    const uint8_t *lv = ph->labels->data;
    uint8_t *les = ph->lesions ? ph->lesions->data : NULL;
    double inv[4][4];
    if (!sm_mat4_affine_inverse(ct->affine, inv)) {
        sm_error_set(error, SM_ERR_INTERNAL, "epidural tumour: singular CT affine");
        return false;
    }
    long lo[3], hi[3];
    for (int d = 0; d < 3; d++) {
        lo[d] = 1L << 40;
        hi[d] = -(1L << 40);
    }
    double R = fmax(g.canal.a, g.canal.b) + 6;
    for (int q = 0; q < 8; q++) {
        double p[3], ijk[3];
        for (int d = 0; d < 3; d++)
            p[d] = c[d] + ((q & 1) ? R : -R) * ex[d] + ((q & 2) ? R : -R) * ey[d] +
                   ((q & 4) ? g.half_len : -g.half_len) * ez[d];
        sm_mat4_apply(inv, p, ijk);
        for (int d = 0; d < 3; d++) {
            long f = (long)floor(ijk[d]) - 1, cc = (long)ceil(ijk[d]) + 1;
            if (f < lo[d])
                lo[d] = f;
            if (cc > hi[d])
                hi[d] = cc;
        }
    }
    for (int d = 0; d < 3; d++) {
        if (lo[d] < 0)
            lo[d] = 0;
        if (hi[d] > (long)ct->dims[d] - 1)
            hi[d] = (long)ct->dims[d] - 1;
    }
    /* sub-sample offsets (index space, +-1/4 voxel) mapped to local coordinates */
    double col[3][3];
    for (int a = 0; a < 3; a++)
        for (int d = 0; d < 3; d++)
            col[a][d] = ct->affine[d][a];
    double loc_step[3][3]; /* [index axis][local x,y,z] */
    for (int a = 0; a < 3; a++) {
        loc_step[a][0] = col[a][0] * ex[0] + col[a][1] * ex[1] + col[a][2] * ex[2];
        loc_step[a][1] = col[a][0] * ey[0] + col[a][1] * ey[1] + col[a][2] * ey[2];
        loc_step[a][2] = col[a][0] * ez[0] + col[a][1] * ez[1] + col[a][2] * ez[2];
    }
    double sigma = sp->noise_sigma_hu;
    int16_t verse = (int16_t)v->verse_id;
    double cosmax = cos(55.0 * M_PI / 180.0);
    for (long k = lo[2]; k <= hi[2]; k++)
        for (long j = lo[1]; j <= hi[1]; j++)
            for (long i = lo[0]; i <= hi[0]; i++) {
                size_t idx = (size_t)i + ct->dims[0] * ((size_t)j + ct->dims[1] * (size_t)k);
                double ijk[3] = {(double)i, (double)j, (double)k}, p[3];
                sm_volume_index_to_lps(ct, ijk, p);
                double dv[3] = {p[0] - c[0], p[1] - c[1], p[2] - c[2]};
                double x = dv[0] * ex[0] + dv[1] * ex[1] + dv[2] * ex[2];
                double y = dv[0] * ey[0] + dv[1] * ey[1] + dv[2] * ey[2];
                double z = dv[0] * ez[0] + dv[1] * ez[1] + dv[2] * ez[2];
                if (fabs(z) > g.half_len + 1)
                    continue;
                uint8_t s = sv[idx];
                if (s == SM_PHANTOM_SUB_CANAL || s == SM_PHANTOM_SUB_CORD) {
                    double delta = 0;
                    for (int q = 0; q < 8; q++) {
                        double o[3] = {(q & 1) ? 0.25 : -0.25, (q & 2) ? 0.25 : -0.25,
                                       (q & 4) ? 0.25 : -0.25};
                        double xs = x, ys = y, zs = z;
                        for (int a = 0; a < 3; a++) {
                            xs += o[a] * loc_step[a][0];
                            ys += o[a] * loc_step[a][1];
                            zs += o[a] * loc_step[a][2];
                        }
                        int to = old_tissue(&g, xs, ys), tn = new_tissue(&g, xs, ys, zs);
                        if (to == T_BONE || tn == T_BONE)
                            continue;
                        delta += tissue_hu(&g, tn) - tissue_hu(&g, to);
                    }
                    double val = cv[idx] + delta / 8.0;
                    val = floor(val + 0.5);
                    cv[idx] = (int16_t)(val < -1024 ? -1024 : (val > 3071 ? 3071 : val));
                    int tc = new_tissue(&g, x, y, z);
                    if (tc != T_BONE)
                        sv[idx] = tc == T_CORD ? SM_PHANTOM_SUB_CORD : SM_PHANTOM_SUB_CANAL;
                    continue;
                }
                /* the bone the mass grows from: within 3.5 mm outside the canal wall, on
                 * the tumour's side, in this vertebra */
                if (lv[idx] != verse || s < SM_PHANTOM_SUB_BODY || s > SM_PHANTOM_SUB_ARCH ||
                    fabs(z) > 0.5 * g.half_len)
                    continue;
                double X = x - g.canal.x, Y = y - g.canal.y;
                double re = sqrt((X / g.canal.a) * (X / g.canal.a) + (Y / g.canal.b) * (Y / g.canal.b));
                double rr = sqrt(X * X + Y * Y);
                if (re <= 1.0 || rr * (1 - 1 / re) > 3.5)
                    continue;
                if (t->position != SM_PHANTOM_EPI_CIRCUMFERENTIAL) {
                    double ux = dirs[t->position][0], uy = dirs[t->position][1];
                    if ((X * ux + Y * uy) / (rr > 0 ? rr : 1) < cosmax)
                        continue;
                }
                double val = g.tum_hu;
                if (sigma > 0)
                    val += sigma * gauss_hash(mix64(t->seed ^ 0x7475DEADULL ^ ((uint64_t)idx * 0x9E3779B97F4A7C15ULL)));
                val = floor(val + 0.5);
                cv[idx] = (int16_t)(val < -1024 ? -1024 : (val > 3071 ? 3071 : val));
                if (les)
                    les[idx] = SM_PHANTOM_LESMAP_LYTIC;
            }
    if (truth) {
        double b[5], a[5];
        model_areas(&g, false, b);
        model_areas(&g, true, a);
        memset(truth, 0, sizeof *truth);
        truth->level = t->level;
        truth->verse_id = v->verse_id;
        truth->position = t->position;
        truth->grade = t->grade;
        truth->below_conus = !g.has_cord;
        truth->canal_area_mm2 = a[0];
        truth->sac_area_before_mm2 = b[1 + T_CSF] + b[1 + T_CORD];
        truth->sac_area_mm2 = a[1 + T_CSF] + a[1 + T_CORD];
        truth->cord_area_before_mm2 = b[1 + T_CORD];
        truth->cord_area_mm2 = a[1 + T_CORD];
        truth->csf_area_before_mm2 = b[1 + T_CSF];
        truth->csf_area_mm2 = a[1 + T_CSF];
        truth->tumour_area_mm2 = a[1 + T_TUMOUR];
    }
    return true;
}

bool sm_phantom_tumour_apply(SmError **error, SmPhantom *ph, const SmPhantomTumourSpec *specs,
                             size_t n, SmPhantomTumourTruth *truth)
{
    if (!ph || !ph->ct || !ph->subregions || !ph->labels || (n && !specs)) {
        sm_error_set(error, SM_ERR_USAGE, "sm_phantom_tumour_apply: missing argument");
        return false;
    }
    if (ph->ct->type != SM_VOXEL_I16 || ph->subregions->type != SM_VOXEL_U8 ||
        ph->labels->type != SM_VOXEL_U8) {
        sm_error_set(error, SM_ERR_USAGE, "sm_phantom_tumour_apply: not a generated phantom");
        return false;
    }
    for (size_t q = 0; q < n; q++)
        for (size_t r = 0; r < q; r++)
            if (specs[q].level == specs[r].level) {
                sm_error_set(error, SM_ERR_USAGE, "epidural tumour: two tumours at %s",
                             sm_phantom_level_name(specs[q].level));
                return false;
            }
    for (size_t q = 0; q < n; q++)
        if (!apply_one(error, ph, &specs[q], truth ? &truth[q] : NULL))
            return false;
    return true;
}

/* ------------------------------------------------------------------ spec, random */

bool sm_phantom_tumour_parse(SmError **error, const char *json_text, SmPhantomTumourSpec *specs,
                             size_t max, size_t *n)
{
    json_error_t je;
    json_t *root = json_loads(json_text ? json_text : "", 0, &je);
    if (!root || !json_is_array(root)) {
        sm_error_set(error, SM_ERR_FORMAT, "epidural_tumours: expected a JSON array (%s, line %d)",
                     root ? "not an array" : je.text, je.line);
        json_decref(root);
        return false;
    }
    size_t cnt = json_array_size(root);
    if (cnt > max) {
        sm_error_set(error, SM_ERR_FORMAT, "epidural_tumours: %zu elements, at most %zu", cnt, max);
        json_decref(root);
        return false;
    }
    for (size_t q = 0; q < cnt; q++) {
        json_t *o = json_array_get(root, q);
        SmPhantomTumourSpec *t = &specs[q];
        memset(t, 0, sizeof *t);
        t->hu = NAN;
        t->seed = 1 + q;
        const char *key;
        json_t *val;
        bool have_level = false;
        if (!json_is_object(o)) {
            sm_error_set(error, SM_ERR_FORMAT, "epidural_tumours[%zu]: expected an object", q);
            json_decref(root);
            return false;
        }
        json_object_foreach(o, key, val) {
            const char *s = json_string_value(val);
            bool ok = true;
            if (strcmp(key, "level") == 0) {
                t->level = s ? sm_phantom_level_parse(s) : -1;
                ok = t->level >= 0;
                have_level = ok;
            } else if (strcmp(key, "position") == 0) {
                t->position = 0;
                for (int p = 1; p <= 5 && s; p++)
                    if (strcmp(s, sm_phantom_tumour_position_name(p)) == 0)
                        t->position = p;
                ok = t->position != 0;
            } else if (strcmp(key, "grade") == 0) {
                t->grade = 0;
                for (int p = 1; p <= 5 && s; p++)
                    if (strcmp(s, sm_phantom_tumour_grade_name(p)) == 0)
                        t->grade = p;
                ok = t->grade != 0;
            } else if (strcmp(key, "hu") == 0) {
                ok = json_is_number(val) && json_number_value(val) > -200 &&
                     json_number_value(val) < 300;
                t->hu = ok ? json_number_value(val) : NAN;
            } else if (strcmp(key, "seed") == 0) {
                ok = json_is_integer(val) && json_integer_value(val) >= 0;
                t->seed = ok ? (uint64_t)json_integer_value(val) : 0;
            } else {
                sm_error_set(error, SM_ERR_FORMAT, "epidural_tumours[%zu]: unknown field \"%s\"", q, key);
                json_decref(root);
                return false;
            }
            if (!ok) {
                sm_error_set(error, SM_ERR_FORMAT, "epidural_tumours[%zu].%s: invalid value", q, key);
                json_decref(root);
                return false;
            }
        }
        if (!have_level || t->position == 0 || t->grade == 0) {
            sm_error_set(error, SM_ERR_FORMAT,
                         "epidural_tumours[%zu]: \"level\", \"position\" and \"grade\" are required", q);
            json_decref(root);
            return false;
        }
    }
    *n = cnt;
    json_decref(root);
    return true;
}

size_t sm_phantom_tumour_randomize(const SmPhantom *ph, uint64_t seed, size_t max,
                                   SmPhantomTumourSpec *specs)
{
    const SmPhantomSpec *sp = &ph->spec;
    uint64_t st = mix64(seed ^ 0x65736363ULL);
    int cand[SM_PHANTOM_N_LEVELS];
    int nc = 0;
    for (int l = sp->level_first + 1; l <= sp->level_last - 1; l++)
        if (l != 0 && l != SM_PHANTOM_LEVEL_S1 && l != sp->conus_level)
            cand[nc++] = l;
    /* shuffle (Fisher-Yates) */
    for (int q = nc - 1; q > 0; q--) {
        int r = (int)(unit_rand(&st) * (q + 1));
        int tmp = cand[q];
        cand[q] = cand[r];
        cand[r] = tmp;
    }
    size_t n = 0;
    for (int q = 0; q < nc && n < max; q++) {
        bool near = false;
        for (size_t r = 0; r < n; r++)
            if (abs(specs[r].level - cand[q]) < 2)
                near = true;
        if (near)
            continue;
        SmPhantomTumourSpec *t = &specs[n++];
        t->level = cand[q];
        t->position = 1 + (int)(unit_rand(&st) * 5);
        t->grade = 1 + (int)(unit_rand(&st) * 5);
        t->hu = sp->hu.muscle + (sp->contrast ? 15 : 0) - 10 + 25 * unit_rand(&st);
        t->seed = mix64(st);
    }
    return n;
}
