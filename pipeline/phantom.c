/* Synthetic spine CT phantom: builds an analytic anatomy model and rasterises it with
 * partial-volume edges, texture and noise onto a CT grid plus two truth label maps. */
#include "phantom.h"
#include "sins_rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ------------------------------------------------------------------ small vector math */

static double dot3(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void cross3(const double a[3], const double b[3], double out[3])
{
    double r[3] = {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                   a[0] * b[1] - a[1] * b[0]};
    memcpy(out, r, sizeof r);
}

static void norm3(double v[3])
{
    double n = sqrt(dot3(v, v));
    if (n > 0) {
        v[0] /= n;
        v[1] /= n;
        v[2] /= n;
    }
}

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static double lerp(double a, double b, double t)
{
    return a + (b - a) * t;
}

/* A right-handed orthonormal frame: world = o + l0*ax[0] + l1*ax[1] + l2*ax[2]. For a
 * vertebra ax[0] points to patient left, ax[1] posterior, ax[2] cranial. */
typedef struct Frame {
    double o[3];
    double ax[3][3];
} Frame;

static void frame_point(const Frame *f, const double l[3], double out[3])
{
    for (int d = 0; d < 3; d++)
        out[d] = f->o[d] + l[0] * f->ax[0][d] + l[1] * f->ax[1][d] + l[2] * f->ax[2][d];
}

static void frame_dir(const Frame *f, const double l[3], double out[3])
{
    for (int d = 0; d < 3; d++)
        out[d] = l[0] * f->ax[0][d] + l[1] * f->ax[1][d] + l[2] * f->ax[2][d];
}

static void frame_local(const Frame *f, const double p[3], double out[3])
{
    double q[3] = {p[0] - f->o[0], p[1] - f->o[1], p[2] - f->o[2]};
    for (int d = 0; d < 3; d++)
        out[d] = dot3(q, f->ax[d]);
}

/* Rotates the frame's axes about its own x axis so the caudal direction turns posterior by
 * `sag` radians, then about its own y axis so it turns to patient left by `cor`. */
static void frame_bend(Frame *f, double sag, double cor)
{
    double c = cos(sag), s = sin(sag);
    double z[3], y[3];
    for (int d = 0; d < 3; d++) {
        z[d] = c * f->ax[2][d] - s * f->ax[1][d];
        y[d] = c * f->ax[1][d] + s * f->ax[2][d];
    }
    memcpy(f->ax[1], y, sizeof y);
    memcpy(f->ax[2], z, sizeof z);
    c = cos(cor);
    s = sin(cor);
    double x[3];
    for (int d = 0; d < 3; d++) {
        z[d] = c * f->ax[2][d] - s * f->ax[0][d];
        x[d] = c * f->ax[0][d] + s * f->ax[2][d];
    }
    memcpy(f->ax[0], x, sizeof x);
    memcpy(f->ax[2], z, sizeof z);
}

/* ------------------------------------------------------------------ hashing, noise */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static double lattice(uint64_t seed, int64_t ix, int64_t iy, int64_t iz)
{
    uint64_t h = splitmix64(seed ^ ((uint64_t)ix * 0x8CB92BA72F3D8DD7ULL) ^
                            ((uint64_t)iy * 0xD6E8FEB86659FD93ULL) ^
                            ((uint64_t)iz * 0xA0761D6478BD642FULL));
    return (double)(h >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* Smooth value noise in [-1, 1] on a unit lattice: the trabecular texture. */
static double value_noise(uint64_t seed, double x, double y, double z)
{
    double fx = floor(x), fy = floor(y), fz = floor(z);
    double tx = x - fx, ty = y - fy, tz = z - fz;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    tz = tz * tz * (3 - 2 * tz);
    int64_t ix = (int64_t)fx, iy = (int64_t)fy, iz = (int64_t)fz;
    double c[2][2][2];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int e = 0; e < 2; e++)
                c[a][b][e] = lattice(seed, ix + a, iy + b, iz + e);
    double x00 = lerp(c[0][0][0], c[1][0][0], tx), x10 = lerp(c[0][1][0], c[1][1][0], tx);
    double x01 = lerp(c[0][0][1], c[1][0][1], tx), x11 = lerp(c[0][1][1], c[1][1][1], tx);
    return lerp(lerp(x00, x10, ty), lerp(x01, x11, ty), tz);
}

/* Approximately standard normal from one 64-bit hash (sum of four 16-bit uniforms):
 * cheap, counter-based, so every voxel's noise is independent of the thread layout. */
static double gauss_from_hash(uint64_t h)
{
    double s = (double)(h & 0xFFFF) + (double)((h >> 16) & 0xFFFF) +
               (double)((h >> 32) & 0xFFFF) + (double)(h >> 48);
    return (s - 131070.0) / 37837.23;
}

/* ------------------------------------------------------------------ primitives */

enum { OBJ_ECYL = 0, OBJ_ELLIPSOID, OBJ_BOX, OBJ_CAPSULE, OBJ_LESION };

/* Painting layers: later layers overwrite earlier ones (labels where inside). */
enum {
    LAYER_VISCERA = 0,
    LAYER_DISC,
    LAYER_POST_OUT,
    LAYER_POST_IN,
    LAYER_BODY_OUT,
    LAYER_BODY_IN,
    LAYER_LESION,   /* pathology: changes values, never labels */
    LAYER_RIB_OUT,
    LAYER_RIB_IN,
    LAYER_PELVIS_OUT,
    LAYER_PELVIS_IN,
    LAYER_EPIDURAL,
    LAYER_DURA,
    LAYER_CORD,
    N_LAYERS
};

#define MAX_PLANES 4

/* One analytic solid with an approximate signed distance (mm, negative inside). */
typedef struct Obj {
    int type, layer;
    Frame f;
    double a, b, c;       /* ECYL: ellipse semi-axes a (x), b (y); ELLIPSOID a,b,c; BOX half sizes;
                             CAPSULE: r0 = a, r1 = b */
    double round_r;       /* BOX rounding */
    double ia2, ib2, ic2; /* 1/a^2, 1/b^2, 1/c^2 (ECYL, ELLIPSOID), set before rasterising */
    double waist, waist_hz;
    double kid_r, kid_cy; /* posterior concavity circle (ECYL) */
    double shell;         /* ECYL: hollow wall thickness (0 solid) */
    double seg[3];        /* CAPSULE: second end point in local coordinates */
    int n_planes;
    double plane[MAX_PLANES][4]; /* local n (unit), offset: inside where n.l - off <= 0 */
    double inset;         /* shrinks the solid by this many mm */
    double ext[3];        /* local half extents (conservative) for bounding */
    double hu, texture;
    int label, sub;
    int vert;             /* level index owning it, -1 none */
    double bowl_d, bowl_rx, bowl_ry, bowl_cy, bowl_k, bowl_h2; /* ECYL body: endplate
                             depressions (biconcave collapse), depth bowl_d at (0, bowl_cy) */
    int lesion;           /* OBJ_LESION: index into Model.lesions */
    double wmin[3], wmax[3];
    long bb[6];
} Obj;

static inline double ellipse_sdf(double x, double y, double a, double b)
{
    double k0 = sqrt(x * x / (a * a) + y * y / (b * b));
    double k1 = sqrt(x * x / (a * a * a * a) + y * y / (b * b * b * b));
    if (k1 < 1e-12)
        return -(a < b ? a : b);
    return k0 * (k0 - 1.0) / k1;
}

/* Signed distance in the object's local coordinates. When the point is provably farther
 * outside than `cutoff` mm, returns some value > cutoff without the exact computation. */
static double obj_sdf_local(const Obj *o, const double l[3], double cutoff)
{
    double d;
    switch (o->type) {
    case OBJ_ECYL: {
        double ia2 = o->ia2, ib2 = o->ib2, mab = o->a < o->b ? o->a : o->b;
        if (o->waist > 0) {
            double t = clampd(l[2] / o->waist_hz, -1.0, 1.0);
            double s = 1.0 - o->waist * (1.0 - t * t);
            double is2 = 1.0 / (s * s);
            ia2 *= is2;
            ib2 *= is2;
            mab *= s;
        }
        double x2 = l[0] * l[0], y2 = l[1] * l[1];
        double k2 = x2 * ia2 + y2 * ib2;
        {
            /* far outside (or, for a shell, far from the wall): no exact distance needed */
            double margin = cutoff - o->inset + (o->shell > 0 ? 0.5 * o->shell : 0);
            double hout = 1.0 + (margin > 0 ? margin : 0) / mab;
            if (k2 >= hout * hout)
                return cutoff + 1.0;
            if (o->shell > 0) {
                double hin = 1.0 - (0.5 * o->shell + fabs(cutoff) + o->inset) / mab;
                if (hin > 0 && k2 <= hin * hin)
                    return cutoff + 1.0;
            }
        }
        {
            double k1 = sqrt(x2 * ia2 * ia2 + y2 * ib2 * ib2);
            double k0 = sqrt(k2);
            d = k1 < 1e-12 ? -mab : k0 * (k0 - 1.0) / k1;
        }
        if (o->kid_r > 0) {
            double ky = l[1] - o->kid_cy;
            double dk = o->kid_r - sqrt(l[0] * l[0] + ky * ky);
            if (dk > d)
                d = dk;
        }
        if (o->shell > 0)
            d = fabs(d) - 0.5 * o->shell;
        break;
    }
    case OBJ_ELLIPSOID: {
        double x2 = l[0] * l[0], y2 = l[1] * l[1], z2 = l[2] * l[2];
        double k2 = x2 * o->ia2 + y2 * o->ib2 + z2 * o->ic2;
        double mn = fmin(o->a, fmin(o->b, o->c));
        double margin = cutoff - o->inset;
        double hout = 1.0 + (margin > 0 ? margin : 0) / mn;
        if (k2 >= hout * hout)
            return cutoff + 1.0;
        double k1 = sqrt(x2 * o->ia2 * o->ia2 + y2 * o->ib2 * o->ib2 + z2 * o->ic2 * o->ic2);
        double k0 = sqrt(k2);
        d = k1 < 1e-12 ? -mn : k0 * (k0 - 1.0) / k1;
        break;
    }
    case OBJ_BOX: {
        double r = o->round_r;
        double q0 = fabs(l[0]) - o->a + r, q1 = fabs(l[1]) - o->b + r, q2 = fabs(l[2]) - o->c + r;
        double m0 = q0 > 0 ? q0 : 0, m1 = q1 > 0 ? q1 : 0, m2 = q2 > 0 ? q2 : 0;
        double mx = fmax(q0, fmax(q1, q2));
        d = sqrt(m0 * m0 + m1 * m1 + m2 * m2) + (mx < 0 ? mx : 0) - r;
        break;
    }
    default: { /* CAPSULE with linearly tapered radius */
        double bb = dot3(o->seg, o->seg);
        double t = bb > 0 ? clampd(dot3(l, o->seg) / bb, 0.0, 1.0) : 0.0;
        double q[3] = {l[0] - t * o->seg[0], l[1] - t * o->seg[1], l[2] - t * o->seg[2]};
        d = sqrt(dot3(q, q)) - lerp(o->a, o->b, t);
        break;
    }
    }
    for (int i = 0; i < o->n_planes; i++) {
        double dp = o->plane[i][0] * l[0] + o->plane[i][1] * l[1] + o->plane[i][2] * l[2] -
                    o->plane[i][3];
        if (dp > d)
            d = dp;
    }
    if (o->bowl_d > 0) {
        double u = l[0] / o->bowl_rx, v = (l[1] - o->bowl_cy) / o->bowl_ry;
        double r2 = u * u + v * v;
        if (r2 < 1) {
            /* quartic bowl pressed into both endplates; the distance is the level-set value
             * divided by its gradient length (good to a few percent at these slopes) */
            double q = 1 - r2, dep = o->bowl_d * q * q;
            double gx = -4 * o->bowl_d * q * l[0] / (o->bowl_rx * o->bowl_rx);
            double gy = -4 * o->bowl_d * q * (l[1] - o->bowl_cy) / (o->bowl_ry * o->bowl_ry);
            double nrm = sqrt(gx * gx + (o->bowl_k + gy) * (o->bowl_k + gy) + 1);
            double ft = (l[2] - o->bowl_h2 + o->bowl_k * l[1] + dep) / nrm;
            double fb = (-l[2] - o->bowl_h2 + o->bowl_k * l[1] + dep) / nrm;
            d = fmax(d, fmax(ft, fb));
        }
    }
    return d + o->inset;
}

/* ------------------------------------------------------------------ anatomy tables */

/* Per level C1..S1 (mm). Body width/depth are full sizes at the endplates. */
static const double T_WIDTH[25] = {0, 17, 16, 17, 18, 20, 22, 26, 27, 27, 28, 29, 30, 31,
                                   32, 33, 35, 38, 41, 43, 45, 47, 49, 50, 50};
static const double T_DEPTH[25] = {0, 16, 15.5, 16, 16.5, 17, 17, 16, 17, 18, 20, 22, 24,
                                   26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 35, 33};
static const double T_HEIGHT[25] = {10, 16, 14, 14, 14, 14, 15, 17, 18, 18.5, 19, 19.5, 20,
                                    20.5, 21, 21.5, 22.5, 23.5, 24.5, 25, 26, 26.5, 27,
                                    26.5, 25};
/* anterior minus posterior height */
static const double T_WEDGE[25] = {0, 0, 0, 0, 0, 0, 0, -1.0, -1.2, -1.4, -1.6, -1.8, -2,
                                   -2, -2, -1.8, -1.5, -1.2, -1, -0.5, 0, 0.5, 1.5, 3.5, 2};
/* disc (or joint space) below each level; [24] unused */
static const double T_DISC[25] = {2.5, 5, 5.5, 5.5, 5.5, 5.5, 5, 3.5, 3.5, 4, 4, 4.5, 4.5,
                                  5, 5, 5.5, 6, 6.5, 7.5, 9, 10, 10.5, 11, 10, 0};
static const double T_CANAL_W[25] = {28, 24, 25, 25, 25, 24, 23, 19, 17, 16, 16, 16, 16, 16,
                                     16, 16, 17, 18, 19, 21, 22, 23, 23, 24, 26};
static const double T_CANAL_AP[25] = {17, 16, 14, 14, 14, 14, 14, 15, 16, 16, 16, 16, 16, 16,
                                      16, 16, 16, 16.5, 17, 17, 16.5, 16, 16, 16, 13};

static bool is_cervical(int l) { return l <= 6; }
static bool is_thoracic(int l) { return l >= 7 && l <= 18; }

/* Level-dependent shape parameters of the posterior elements. */
typedef struct LevelShape {
    double a, b, hm, wedge, notch, waist;
    double bowl_d, bowl_rx, bowl_ry, bowl_cy; /* biconcave endplate depressions (each) */
    double cw, ca, yc;             /* canal width, AP, centre y */
    double ped_w, ped_h, ped_x;    /* pedicle semi-axes and x of its axis */
    double lam_h, lam_t;           /* lamina semi height / thickness */
    double sp_len, sp_angle, sp_h, sp_t;
    double tp_len, tp_angle, tp_h, tp_t;
    double facet_r;
} LevelShape;

static LevelShape level_shape(int l, double height_scale)
{
    LevelShape s;
    memset(&s, 0, sizeof s);
    s.a = T_WIDTH[l] / 2;
    s.b = T_DEPTH[l] / 2;
    s.hm = T_HEIGHT[l] * height_scale;
    s.wedge = T_WEDGE[l] * height_scale;
    s.notch = is_cervical(l) ? 0.5 : (is_thoracic(l) ? 1.5 : 3.0);
    s.waist = is_cervical(l) ? 0.03 : 0.07;
    s.cw = T_CANAL_W[l];
    s.ca = T_CANAL_AP[l];
    s.yc = l == 0 ? 4.0 + s.ca / 2 : s.b - s.notch + s.ca / 2 + 0.3;
    if (is_cervical(l)) {
        s.ped_w = 2.6;
        s.ped_h = 3.5;
        s.lam_h = 4.5;
        s.lam_t = 2.5;
        s.sp_len = l == 6 ? 30 : (l == 1 ? 24 : 18);
        s.sp_angle = l == 6 ? 15 : 25;
        s.sp_h = 4;
        s.sp_t = 2.8;
        s.tp_len = l == 6 ? 14 : 9;
        s.tp_angle = -35;
        s.tp_h = 3;
        s.tp_t = 3;
        s.facet_r = 4.2;
    } else if (is_thoracic(l)) {
        double t = (l - 7) / 11.0;
        s.ped_w = lerp(3.5, 4.2, t);
        s.ped_h = lerp(5, 7.5, t);
        s.lam_h = 0.38 * s.hm;
        s.lam_t = 3.2;
        static const double sp_ang[12] = {30, 38, 45, 55, 60, 62, 62, 58, 50, 40, 28, 18};
        static const double sp_len[12] = {38, 40, 40, 42, 42, 42, 40, 38, 36, 34, 32, 30};
        s.sp_len = sp_len[l - 7];
        s.sp_angle = sp_ang[l - 7];
        s.sp_h = lerp(4, 7, t);
        s.sp_t = 3;
        s.tp_len = lerp(21, 11, t);
        s.tp_angle = lerp(30, 20, t);
        s.tp_h = 5;
        s.tp_t = 4.5;
        s.facet_r = 4;
    } else {
        static const double tp_len[6] = {18, 22, 26, 22, 18, 0};
        int i = l - 19;
        double t = i / 4.0;
        s.ped_w = lerp(4.5, 7.0, clampd(t, 0, 1));
        s.ped_h = lerp(7.5, 8.0, clampd(t, 0, 1));
        s.lam_h = 0.4 * s.hm;
        s.lam_t = 3.6;
        s.sp_len = l == 23 ? 22 : (l == 24 ? 12 : 30);
        s.sp_angle = 5;
        s.sp_h = l >= 23 ? 7 : 9;
        s.sp_t = 4.2;
        s.tp_len = tp_len[i];
        s.tp_angle = 5;
        s.tp_h = 5.5;
        s.tp_t = 3.6;
        s.facet_r = 5.5;
    }
    s.ped_x = s.cw / 2 + s.ped_w - 1.0;
    return s;
}

/* Height of the body at AP position y (local, mm) on the midline: endplate planes minus the
 * two endplate depressions. */
static double body_height_at(const LevelShape *s, double y)
{
    double h = s->hm - s->wedge * y / (2 * s->b);
    if (s->bowl_d > 0) {
        double v = (y - s->bowl_cy) / s->bowl_ry;
        if (v * v < 1)
            h -= 2 * s->bowl_d * (1 - v * v) * (1 - v * v);
    }
    return h;
}

/* Midline AP positions (local y) of the anterior / middle / posterior heights: 15, 50 and
 * 85 % of the AP depth from the anterior cortex. */
static void height_positions(const LevelShape *s, double yq[3])
{
    double depth = 2 * s->b - s->notch;
    yq[0] = -s->b + 0.15 * depth;
    yq[1] = -s->b + 0.5 * depth;
    yq[2] = -s->b + 0.85 * depth;
}

/* Applies a collapse of `pct` % (worst height loss versus this pre-morbid shape). Wedge:
 * the loss falls linearly from the anterior position to zero at the posterior wall, split
 * between both endplates (the column shortens by the loss at the centre). Biconcave: both
 * endplates get a central depression, the rims keep their height. Crush: uniform. */
static void shape_collapse(LevelShape *s, int type, double pct)
{
    double p = pct / 100.0, yq[3];
    height_positions(s, yq);
    if (p <= 0 || type == SM_PHANTOM_COLLAPSE_NONE)
        return;
    if (type == SM_PHANTOM_COLLAPSE_CRUSH) {
        s->hm *= 1 - p;
        s->wedge *= 1 - p;
    } else if (type == SM_PHANTOM_COLLAPSE_WEDGE) {
        double yp = s->b - s->notch;
        double l0 = p * body_height_at(s, yq[0]);
        double c1 = l0 / (yp - yq[0]);
        s->hm -= c1 * yp;
        s->wedge -= 2 * s->b * c1;
    } else if (type == SM_PHANTOM_COLLAPSE_BICONCAVE) {
        double depth = 2 * s->b - s->notch;
        s->bowl_d = p * body_height_at(s, yq[1]) / 2;
        s->bowl_cy = yq[1];
        s->bowl_rx = 0.8 * s->a;
        s->bowl_ry = 0.45 * depth;
    }
}

/* The body shape of level l as generated (collapse applied) or pre-morbid. */
static LevelShape level_shape_of(const SmPhantomSpec *sp, int l, bool premorbid)
{
    /* L6 / T13: the C7 slot is the first thoracic vertebra (it carries the first rib) and
     * takes the T1 shape */
    int shape_l = l == 6 && (sp->transitional == SM_PHANTOM_TRANS_L6 ||
                             sp->transitional == SM_PHANTOM_TRANS_T13) ? 7 : l;
    if (premorbid)
        return level_shape(shape_l, 1.0);
    LevelShape s = level_shape(shape_l, sp->vertebra[l].height_scale);
    shape_collapse(&s, sp->vertebra[l].collapse_type, sp->vertebra[l].collapse_pct);
    return s;
}

/* ------------------------------------------------------------------ model */

/* Per-z soft-tissue description (rows every ZROW_STEP mm of patient z). */
/* A soft-tissue ellipse of one row, with its coverage thresholds precomputed. */
typedef struct Ell {
    double cx, cy, bx, by;    /* centre and bounding half sizes (a + w, b + w) */
    double a, b, ia2, ib2;    /* semi-axes and 1/a^2, 1/b^2 */
    double hin2, hout2;       /* normalised radius^2 of full / no coverage */
    float hu;
    bool on;
} Ell;

enum {
    E_OUTLINE = 0, E_WALL, E_CAVITY, E_LUNG_L, E_LUNG_R, E_MEDIASTINUM, E_LIVER, E_RETRO,
    E_KIDNEY_L, E_KIDNEY_R, E_AORTA, E_IVC, E_TRACHEA, E_PARAVERT, E_PARA_L, E_PARA_R,
    E_PSOAS_L, E_PSOAS_R, N_ELL
};
#define E_FIRST_ORGAN E_LUNG_L
#define E_LAST_ORGAN E_TRACHEA

typedef struct ZRow {
    Ell e[N_ELL];
    double u, sx, sy, ba, bb;          /* level coordinate, spine body centre, body semi-axes */
    double ocx, ocy, oa, ob, fat, mus;  /* outline ellipse, fat and muscle wall thickness */
    double px, py, pa, pb;              /* paraspinal muscles (+-px) */
    double qx, qy, qr;                  /* psoas (+-qx), radius 0 = none */
    double lx, ly, la, lb;              /* lungs (+-lx), 0 = none */
    double mx, my, ma, mb;              /* mediastinum */
    double vx, vy, va, vb;              /* liver (patient right), 0 = none */
    double rx, ry, ra, rb;              /* retroperitoneal fat around the lumbar spine */
    double kx, ky, ka, kb;              /* kidneys (+-kx) */
    double ax, ay, ar;                  /* aorta */
    double ix, iy, ir;                  /* inferior vena cava */
    double tx, ty, tr;                  /* trachea */
    double sa, sb;                      /* paravertebral soft tissue around the body */
} ZRow;

#define ZROW_STEP 0.5

/* One lesion component: a union of ellipsoids in the vertebra frame, clipped to the body
 * (cancellous or whole), plus optionally whole posterolateral structures. */
#define LES_MAX_BLOBS 8
#define LES_MAX_CLIPS 16
typedef struct Lesion {
    int level, code;             /* SM_PHANTOM_LESMAP_* */
    int label;                   /* VerSe id of the vertebra: only its voxels are touched */
    double body_dilate, ext_dilate; /* mm the clips grow: a lytic breach leaves no partial-
                                    volume rim of cortex behind */
    double hu, texture;
    Frame f;                     /* the vertebra frame */
    int n_blobs;
    double bc[LES_MAX_BLOBS][3], br[LES_MAX_BLOBS][3]; /* centres, radii before scaling */
    double scale;
    uint64_t rough_seed;         /* boundary irregularity (value noise), deterministic */
    double rough_mm;
    bool has_conn;               /* connector into the pedicle base (inside the body clip) */
    double conn_c[3], conn_r[3];
    int n_body_clips, n_clips;   /* clip[0..n_body_clips) body, then extension structures */
    Obj clip[LES_MAX_CLIPS];
} Lesion;

typedef struct Model {
    Frame vf[SM_PHANTOM_N_LEVELS + 4];  /* vertebra frames, then S2..S5 */
    double shift[SM_PHANTOM_N_LEVELS][3]; /* world translation of level i relative to i+1 */
    Lesion *lesions;
    size_t n_lesions;
    LevelShape shape[SM_PHANTOM_N_LEVELS];
    double disc[SM_PHANTOM_N_LEVELS];
    double sag[SM_PHANTOM_N_LEVELS];    /* bend applied at the disc below level i */
    double cor[SM_PHANTOM_N_LEVELS];
    Obj *objs;
    size_t n_objs, cap_objs;
    bool oom;
    ZRow *rows;
    size_t n_rows;
    double row_z0;
    double table_y, table_r;
    double back_max_y;
} Model;

static Obj *obj_new(Model *m, int type, int layer, const Frame *f, double hu, int label, int sub,
                    int vert)
{
    if (m->n_objs == m->cap_objs) {
        size_t nc = m->cap_objs ? m->cap_objs * 2 : 256;
        Obj *no = realloc(m->objs, nc * sizeof *no);
        if (!no) {
            m->oom = true;
            return NULL;
        }
        m->objs = no;
        m->cap_objs = nc;
    }
    Obj *o = &m->objs[m->n_objs++];
    memset(o, 0, sizeof *o);
    o->type = type;
    o->layer = layer;
    o->f = *f;
    o->hu = hu;
    o->label = label;
    o->sub = sub;
    o->vert = vert;
    return o;
}

static void obj_plane(Obj *o, double nx, double ny, double nz, double off)
{
    if (!o || o->n_planes >= MAX_PLANES)
        return;
    double n = sqrt(nx * nx + ny * ny + nz * nz);
    o->plane[o->n_planes][0] = nx / n;
    o->plane[o->n_planes][1] = ny / n;
    o->plane[o->n_planes][2] = nz / n;
    o->plane[o->n_planes][3] = off / n;
    o->n_planes++;
}

/* Adds a copy of o (cortex) shrunk by inset as the inner (marrow) object. */
static Obj *obj_inner(Model *m, const Obj *outer, int layer, double inset, double hu,
                      double texture)
{
    Obj tmp = *outer;
    Obj *o = obj_new(m, tmp.type, layer, &tmp.f, hu, tmp.label, tmp.sub, tmp.vert);
    if (!o)
        return NULL;
    *o = tmp;
    o->layer = layer;
    o->inset = inset;
    o->hu = hu;
    o->texture = texture;
    return o;
}

/* Frame for a rod from p0 to p1 (world) whose cross-section semi-axis `ra` lies along u. */
static Frame rod_frame(const double p0[3], const double p1[3], const double u[3], double *len)
{
    Frame f;
    double z[3] = {p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]};
    *len = sqrt(dot3(z, z));
    norm3(z);
    double x[3] = {u[0], u[1], u[2]};
    double k = dot3(x, z);
    for (int d = 0; d < 3; d++)
        x[d] -= k * z[d];
    if (dot3(x, x) < 1e-12) {
        double alt[3] = {fabs(z[0]) < 0.9 ? 1 : 0, fabs(z[0]) < 0.9 ? 0 : 1, 0};
        k = dot3(alt, z);
        for (int d = 0; d < 3; d++)
            x[d] = alt[d] - k * z[d];
    }
    norm3(x);
    double y[3];
    cross3(z, x, y);
    for (int d = 0; d < 3; d++) {
        f.o[d] = 0.5 * (p0[d] + p1[d]);
        f.ax[0][d] = x[d];
        f.ax[1][d] = y[d];
        f.ax[2][d] = z[d];
    }
    return f;
}

/* Elliptic rod with flat ends (extended by `ext` mm) between two points given in frame F. */
static Obj *add_rod(Model *m, const Frame *F, const double l0[3], const double l1[3],
                    const double lu[3], double ra, double rb, double ext, int layer, double hu,
                    int label, int sub, int vert)
{
    double p0[3], p1[3], u[3], len;
    frame_point(F, l0, p0);
    frame_point(F, l1, p1);
    frame_dir(F, lu, u);
    Frame f = rod_frame(p0, p1, u, &len);
    Obj *o = obj_new(m, OBJ_ECYL, layer, &f, hu, label, sub, vert);
    if (!o)
        return NULL;
    o->a = ra;
    o->b = rb;
    obj_plane(o, 0, 0, 1, len / 2 + ext);
    obj_plane(o, 0, 0, -1, len / 2 + ext);
    o->ext[0] = ra;
    o->ext[1] = rb;
    o->ext[2] = len / 2 + ext;
    return o;
}

/* Cortex + marrow pair of a rod. */
static void add_bone_rod(Model *m, const SmPhantomSpec *sp, const Frame *F, const double l0[3],
                         const double l1[3], const double lu[3], double ra, double rb, double ext,
                         int layer_out, int label, int sub, int vert, double cancellous)
{
    Obj *o = add_rod(m, F, l0, l1, lu, ra, rb, ext, layer_out, sp->hu.cortical, label, sub, vert);
    if (o && fmin(ra, rb) > 1.8) {
        /* thin posterior elements are mostly cortex: their marrow reads denser than a body's */
        Obj copy = *o;
        double marrow = layer_out == LAYER_BODY_OUT ? cancellous
                                                    : 0.5 * (cancellous + sp->hu.cortical);
        obj_inner(m, &copy, layer_out + 1, 1.0, marrow, sp->texture_hu * 0.6);
    }
}

static Frame sub_frame(const Frame *F, const double lo[3])
{
    Frame f = *F;
    frame_point(F, lo, f.o);
    return f;
}

/* World-space frame with axes parallel to the patient axes. */
static Frame world_frame(const double o[3])
{
    Frame f;
    memset(&f, 0, sizeof f);
    memcpy(f.o, o, sizeof f.o);
    f.ax[0][0] = f.ax[1][1] = f.ax[2][2] = 1.0;
    return f;
}

/* Plane of the disc mid-section below level i, in world: point q, unit normal n (cranial). */
static void disc_plane(const Model *m, int i, double q[3], double n[3])
{
    const Frame *f = &m->vf[i];
    const LevelShape *s = &m->shape[i];
    double l[3] = {0, 0, -(s->hm / 2 + m->disc[i] / 2)};
    frame_point(f, l, q);
    for (int d = 0; d < 3; d++) {
        q[d] -= 0.5 * m->shift[i][d]; /* half way between the two translated vertebrae */
        n[d] = f->ax[2][d] + m->vf[i + 1].ax[2][d];
    }
    norm3(n);
}

/* Adds a world plane (inside where n.(p-q) * sign <= 0) to o in o's local coordinates. */
static void obj_world_plane(Obj *o, const double q[3], const double n[3], double sign)
{
    if (!o)
        return;
    double ln[3], lq[3];
    for (int d = 0; d < 3; d++)
        ln[d] = sign * dot3(n, o->f.ax[d]);
    frame_local(&o->f, q, lq);
    obj_plane(o, ln[0], ln[1], ln[2], dot3(ln, lq));
}

/* Endplate plane of level i in its own frame: top (+1) or bottom (-1). */
static void body_plane(Obj *o, const LevelShape *s, int top, double extra)
{
    double k = s->wedge / (4 * s->b);
    if (top > 0)
        obj_plane(o, 0, k, 1, s->hm / 2 + extra);
    else
        obj_plane(o, 0, k, -1, s->hm / 2 + extra);
}

/* ---- chain of frames ---- */

/* Frames of all levels. `patho` false leaves out the focal angles and translations (the
 * reference for the focal truth angles); collapse is always applied. */
static void build_chain(Model *m, const SmPhantomSpec *sp, bool patho)
{
    for (int l = 0; l < SM_PHANTOM_N_LEVELS; l++) {
        m->shape[l] = level_shape_of(sp, l, false);
        m->disc[l] = T_DISC[l];
        m->sag[l] = 0;
        m->cor[l] = 0;
    }
    double deg = M_PI / 180.0;
    for (int i = 1; i <= 5; i++) /* C2/3 .. C6/7 */
        m->sag[i] = sp->cervical_lordosis_deg / 5 * deg;
    for (int i = 7; i <= 17; i++) /* T1/2 .. T11/12 */
        m->sag[i] = -sp->thoracic_kyphosis_deg / 11 * deg;
    for (int i = 19; i <= 23; i++) /* L1/2 .. L5/S1 */
        m->sag[i] = sp->lumbar_lordosis_deg / 5 * deg;
    if (sp->scoliosis_deg != 0) {
        double st = sp->scoliosis_deg / 6 * deg;
        for (int i = sp->scoliosis_apex - 6; i <= sp->scoliosis_apex + 5; i++) {
            if (i < 1 || i > 23)
                continue;
            int r = i - sp->scoliosis_apex;
            m->cor[i] = r < -3 ? st : (r < 3 ? -st : st);
        }
    }
    if (patho)
        for (int i = 1; i < SM_PHANTOM_LEVEL_S1; i++) {
            m->sag[i] -= sp->vertebra[i].kyphosis_deg * deg;
            m->cor[i] += sp->vertebra[i].scoliosis_deg * deg;
        }
    Frame f;
    memset(&f, 0, sizeof f);
    f.ax[0][0] = f.ax[1][1] = f.ax[2][2] = 1;
    m->vf[0] = f;
    for (int i = 0; i + 1 < SM_PHANTOM_N_LEVELS; i++) {
        double l1[3] = {0, 0, -(m->shape[i].hm / 2 + m->disc[i] / 2)};
        Frame g = f;
        frame_point(&f, l1, g.o);
        frame_bend(&g, m->sag[i], m->cor[i]);
        double l2[3] = {0, 0, -(m->disc[i] / 2 + m->shape[i + 1].hm / 2)};
        frame_point(&g, l2, f.o);
        if (patho) { /* the upper vertebra sits translated relative to the lower one */
            const double *t = sp->vertebra[i].translation_mm;
            for (int d = 0; d < 3; d++)
                f.o[d] -= t[0] * g.ax[0][d] + t[1] * g.ax[1][d];
        }
        memcpy(f.ax, g.ax, sizeof f.ax);
        m->vf[i + 1] = f;
    }
    /* sacral segments S2..S5 continue with a kyphotic curve */
    static const double sh[4] = {22, 20, 17, 14};
    double prev_h = m->shape[24].hm;
    for (int k = 0; k < 4; k++) {
        double l1[3] = {0, 0, -(prev_h / 2 + 1.0)};
        Frame g = f;
        frame_point(&f, l1, g.o);
        frame_bend(&g, -14 * deg, 0);
        double l2[3] = {0, 0, -(1.0 + sh[k] / 2)};
        frame_point(&g, l2, f.o);
        memcpy(f.ax, g.ax, sizeof f.ax);
        m->vf[25 + k] = f;
        prev_h = sh[k];
    }
    /* global pose: C7..S1 plumb line vertical, S1 on x = 0, L3 body centre at y = z = 0 */
    double v[3] = {m->vf[6].o[0] - m->vf[24].o[0], m->vf[6].o[1] - m->vf[24].o[1],
                   m->vf[6].o[2] - m->vf[24].o[2]};
    norm3(v);
    /* rotation taking v to +z: Rodrigues about v x z */
    double zc[3] = {0, 0, 1}, axis[3];
    cross3(v, zc, axis);
    double s = sqrt(dot3(axis, axis)), c = dot3(v, zc);
    double R[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    if (s > 1e-12) {
        for (int d = 0; d < 3; d++)
            axis[d] /= s;
        double K[3][3] = {{0, -axis[2], axis[1]}, {axis[2], 0, -axis[0]}, {-axis[1], axis[0], 0}};
        double K2[3][3];
        for (int r = 0; r < 3; r++)
            for (int q = 0; q < 3; q++) {
                K2[r][q] = 0;
                for (int t = 0; t < 3; t++)
                    K2[r][q] += K[r][t] * K[t][q];
            }
        for (int r = 0; r < 3; r++)
            for (int q = 0; q < 3; q++)
                R[r][q] += s * K[r][q] + (1 - c) * K2[r][q];
    }
    for (int i = 0; i < SM_PHANTOM_N_LEVELS + 4; i++) {
        Frame *g = &m->vf[i];
        double o[3], a[3][3];
        for (int r = 0; r < 3; r++) {
            o[r] = R[r][0] * g->o[0] + R[r][1] * g->o[1] + R[r][2] * g->o[2];
            for (int k = 0; k < 3; k++)
                a[k][r] = R[r][0] * g->ax[k][0] + R[r][1] * g->ax[k][1] + R[r][2] * g->ax[k][2];
        }
        memcpy(g->o, o, sizeof o);
        memcpy(g->ax, a, sizeof a);
    }
    double t[3] = {-m->vf[24].o[0], -m->vf[21].o[1], -m->vf[21].o[2]};
    for (int i = 0; i < SM_PHANTOM_N_LEVELS + 4; i++)
        for (int d = 0; d < 3; d++)
            m->vf[i].o[d] += t[d];
    for (int i = 0; i + 1 < SM_PHANTOM_N_LEVELS; i++) {
        const double *tr = sp->vertebra[i].translation_mm;
        for (int d = 0; d < 3; d++)
            m->shift[i][d] = patho ? tr[0] * m->vf[i + 1].ax[0][d] + tr[1] * m->vf[i + 1].ax[1][d]
                                   : 0.0;
    }
}

/* ---- vertebrae ---- */


static double cancellous_of(const SmPhantomSpec *sp, int l)
{
    double v = sp->vertebra[l].cancellous_hu;
    if (isfinite(v))
        return v;
    return sp->osteoporotic ? sp->osteoporotic_hu : sp->hu.cancellous;
}

/* Cortical thickness of vertebral bodies (mm): osteoporosis thins it. */
static double body_cortex_mm(const SmPhantomSpec *sp)
{
    return sp->osteoporotic ? 0.6 : 1.0;
}

static void add_body(Model *m, const SmPhantomSpec *sp, int l)
{
    const LevelShape *s = &m->shape[l];
    int lab = sm_phantom_verse_id(sp, l);
    Obj *o = obj_new(m, OBJ_ECYL, LAYER_BODY_OUT, &m->vf[l], sp->hu.cortical, lab,
                     SM_PHANTOM_SUB_BODY, l);
    if (!o)
        return;
    o->a = s->a;
    o->b = s->b;
    o->waist = s->waist;
    o->waist_hz = s->hm / 2;
    o->kid_r = s->a * 0.9;
    o->kid_cy = s->b - s->notch + o->kid_r;
    body_plane(o, s, 1, 0);
    body_plane(o, s, -1, 0);
    o->ext[0] = s->a;
    o->ext[1] = s->b;
    o->ext[2] = s->hm / 2 + fabs(s->wedge) / 2 + 1;
    if (s->bowl_d > 0) {
        o->bowl_d = s->bowl_d;
        o->bowl_rx = s->bowl_rx;
        o->bowl_ry = s->bowl_ry;
        o->bowl_cy = s->bowl_cy;
        o->bowl_k = s->wedge / (4 * s->b);
        o->bowl_h2 = s->hm / 2;
    }
    Obj copy = *o;
    obj_inner(m, &copy, LAYER_BODY_IN, body_cortex_mm(sp), cancellous_of(sp, l), sp->texture_hu);
}

static void add_disc(Model *m, const SmPhantomSpec *sp, int i)
{
    const LevelShape *su = &m->shape[i], *sl = &m->shape[i + 1];
    double q[3], n[3];
    disc_plane(m, i, q, n);
    Frame f = m->vf[i];
    memcpy(f.o, q, sizeof q);
    frame_bend(&f, m->sag[i] / 2, m->cor[i] / 2);
    Obj *o = obj_new(m, OBJ_ECYL, LAYER_DISC, &f, sp->hu.disc, 0, SM_PHANTOM_SUB_DISC, -1);
    if (!o)
        return;
    o->a = 0.5 * (su->a + sl->a) + 0.8;
    o->b = 0.5 * (su->b + sl->b) + 0.8;
    o->kid_r = o->a * 0.9;
    o->kid_cy = o->b - 0.5 * (su->notch + sl->notch) + o->kid_r;
    o->ext[0] = o->a;
    o->ext[1] = o->b;
    o->ext[2] = m->disc[i] / 2 + 8;
    /* bounded by the two endplates, pushed 1 mm into each body (bodies paint over it) */
    Obj tmp_u = *o, tmp_l = *o;
    tmp_u.n_planes = tmp_l.n_planes = 0;
    tmp_u.f = m->vf[i];
    tmp_l.f = m->vf[i + 1];
    /* the disc fills endplate depressions too (the bodies paint over the rest) */
    body_plane(&tmp_u, su, -1, -1.0 - su->bowl_d);
    body_plane(&tmp_l, sl, 1, -1.0 - sl->bowl_d);
    /* tmp_u plane: inside the upper body bottom half-space; the disc is its complement */
    for (int which = 0; which < 2; which++) {
        Obj *t = which ? &tmp_l : &tmp_u;
        double ln[3] = {-t->plane[0][0], -t->plane[0][1], -t->plane[0][2]};
        double off = -t->plane[0][3];
        double wn[3], p0[3], l0[3] = {ln[0] * off, ln[1] * off, ln[2] * off};
        frame_dir(&t->f, ln, wn);
        frame_point(&t->f, l0, p0);
        obj_world_plane(o, p0, wn, 1.0);
    }
}

/* Facet column (articular process) between z0 and z1 in joint frame J at (x, y). */
static void add_facet(Model *m, const SmPhantomSpec *sp, const Frame *J, double x, double y,
                      double z0, double z1, double r, int l)
{
    double p0[3] = {x, y, z0}, p1[3] = {x, y, z1}, u[3] = {1, 0, 0};
    int sub = x > 0 ? SM_PHANTOM_SUB_POSTEROLATERAL_LEFT : SM_PHANTOM_SUB_POSTEROLATERAL_RIGHT;
    add_bone_rod(m, sp, J, p0, p1, u, r, r * 0.85, 0.0, LAYER_POST_OUT, sm_phantom_verse_id(sp, l), sub, l,
                 cancellous_of(sp, l));
}

/* Joint frame at the disc between levels i and i+1 (virtual beyond the column ends). */
static Frame joint_frame(const Model *m, int i)
{
    Frame f = m->vf[i];
    double q[3], n[3];
    disc_plane(m, i, q, n);
    memcpy(f.o, q, sizeof q);
    frame_bend(&f, m->sag[i] / 2, m->cor[i] / 2);
    return f;
}

static void facet_offsets(int l, const LevelShape *s, double *xs, double *ys, double *dxi,
                          double *dyi)
{
    double dist = 2 * s->facet_r + 2.0;
    *xs = s->ped_x + 1.0;
    *ys = s->yc + s->ca * 0.28;
    if (l >= 19) { /* lumbar: inferior process postero-medial of the superior one */
        *dxi = -0.62 * dist;
        *dyi = 0.78 * dist;
    } else {
        *dxi = 0;
        *dyi = dist;
    }
}

static void add_posterior(Model *m, const SmPhantomSpec *sp, int l)
{
    const LevelShape *s = &m->shape[l];
    const Frame *F = &m->vf[l];
    int lab = sm_phantom_verse_id(sp, l);
    double can = cancellous_of(sp, l);
    double zp = s->hm * 0.12;
    double up[3] = {0, 0, 1};
    for (int side = -1; side <= 1; side += 2) {
        int sub_pl = side > 0 ? SM_PHANTOM_SUB_POSTEROLATERAL_LEFT
                              : SM_PHANTOM_SUB_POSTEROLATERAL_RIGHT;
        double x = side * s->ped_x;
        /* pedicle: from inside the body to the lamina junction */
        double p0[3] = {x, s->b - 5, zp}, p1[3] = {x, s->yc + s->ca * 0.3, zp};
        add_bone_rod(m, sp, F, p0, p1, up, s->ped_h, s->ped_w, 1.0, LAYER_POST_OUT, lab, sub_pl,
                     l, can);
        /* lamina: from the pedicle back to the midline roof of the canal */
        double q0[3] = {side * (s->cw / 2 + s->ped_w * 0.4), s->yc + s->ca * 0.28,
                        zp - 0.12 * s->hm};
        double q1[3] = {0, s->yc + s->ca / 2 + s->lam_t * 0.7, -0.12 * s->hm};
        add_bone_rod(m, sp, F, q0, q1, up, s->lam_h, s->lam_t, 2.0, LAYER_POST_OUT, lab,
                     SM_PHANTOM_SUB_ARCH, l, can);
        /* transverse process */
        if (s->tp_len > 0) {
            double ang = s->tp_angle * M_PI / 180;
            double t0[3] = {side * (s->ped_x + s->ped_w * 0.3), s->yc + s->ca * 0.15, zp};
            double t1[3] = {t0[0] + side * s->tp_len * cos(ang), t0[1] + s->tp_len * sin(ang), zp};
            add_bone_rod(m, sp, F, t0, t1, up, s->tp_h, s->tp_t, 1.0, LAYER_POST_OUT, lab,
                         SM_PHANTOM_SUB_TRANSVERSE, l, can);
        }
    }
    /* spinous process */
    double ang = s->sp_angle * M_PI / 180;
    double y0 = s->yc + s->ca / 2 + 1.0;
    double sp0[3] = {0, y0, -0.12 * s->hm};
    double sp1[3] = {0, y0 + s->sp_len * cos(ang), -0.12 * s->hm - s->sp_len * sin(ang)};
    double sdir[3] = {0, sin(ang), cos(ang)};
    add_bone_rod(m, sp, F, sp0, sp1, sdir, s->sp_h, s->sp_t, 1.0, LAYER_POST_OUT, lab,
                 SM_PHANTOM_SUB_ARCH, l, can);
    /* articular processes, built in the joint frames so the joint gap is exact */
    double xs, ys, dxi, dyi;
    for (int side = -1; side <= 1; side += 2) {
        if (l >= 2) { /* superior process, in the joint with the level above */
            Frame J = joint_frame(m, l - 1);
            for (int d = 0; d < 3; d++) /* moves with this vertebra under translation */
                J.o[d] -= 0.5 * m->shift[l - 1][d];
            facet_offsets(l, s, &xs, &ys, &dxi, &dyi);
            add_facet(m, sp, &J, side * xs, ys, -(m->disc[l - 1] / 2 + s->hm * 0.35), 5.0,
                      s->facet_r, l);
        }
        if (l <= 23) { /* inferior process, in the joint with the level below */
            Frame J = joint_frame(m, l);
            for (int d = 0; d < 3; d++)
                J.o[d] += 0.5 * m->shift[l][d];
            const LevelShape *sl = &m->shape[l + 1];
            facet_offsets(l + 1, sl, &xs, &ys, &dxi, &dyi);
            add_facet(m, sp, &J, side * (xs + dxi), ys + dyi, -5.0,
                      m->disc[l] / 2 + s->hm * 0.35, sl->facet_r, l);
        }
    }
}

static void add_c1(Model *m, const SmPhantomSpec *sp)
{
    const Frame *F = &m->vf[0];
    double can = cancellous_of(sp, 0), up[3] = {0, 0, 1};
    int lab = sm_phantom_verse_id(sp, 0);
    double a0[3] = {-9, -12, 0}, a1[3] = {9, -12, 0};
    add_bone_rod(m, sp, F, a0, a1, up, 5, 3.2, 3, LAYER_POST_OUT, lab, SM_PHANTOM_SUB_ARCH, 0, can);
    for (int side = -1; side <= 1; side += 2) {
        int sub = side > 0 ? SM_PHANTOM_SUB_POSTEROLATERAL_LEFT
                           : SM_PHANTOM_SUB_POSTEROLATERAL_RIGHT;
        double lm[3] = {side * 17.0, 0, 0};
        Frame lf = sub_frame(F, lm);
        Obj *o = obj_new(m, OBJ_ELLIPSOID, LAYER_POST_OUT, &lf, sp->hu.cortical, lab, sub, 0);
        if (o) {
            o->a = 7.5;
            o->b = 10;
            o->c = 8;
            o->ext[0] = 7.5;
            o->ext[1] = 10;
            o->ext[2] = 8;
            Obj copy = *o;
            obj_inner(m, &copy, LAYER_POST_IN, 1.0, can, sp->texture_hu * 0.6);
        }
        double r0[3] = {side * 11.0, -11, 0}, r1[3] = {side * 16.0, -6, 0};
        add_bone_rod(m, sp, F, r0, r1, up, 4.5, 3.2, 2, LAYER_POST_OUT, lab, SM_PHANTOM_SUB_ARCH, 0,
                     can);
        double pa0[3] = {side * 15.0, 8, 0}, pa1[3] = {side * 9.0, 24, 0}, pa2[3] = {0, 27, 0};
        add_bone_rod(m, sp, F, pa0, pa1, up, 4.0, 3.0, 2, LAYER_POST_OUT, lab, SM_PHANTOM_SUB_ARCH, 0,
                     can);
        add_bone_rod(m, sp, F, pa1, pa2, up, 4.0, 3.0, 2, LAYER_POST_OUT, lab, SM_PHANTOM_SUB_ARCH, 0,
                     can);
        double t0[3] = {side * 22.0, 0, 0}, t1[3] = {side * 37.0, 2, 0};
        add_bone_rod(m, sp, F, t0, t1, up, 4.0, 4.0, 1, LAYER_POST_OUT, lab,
                     SM_PHANTOM_SUB_TRANSVERSE, 0, can);
    }
}

static void add_dens(Model *m, const SmPhantomSpec *sp)
{
    const LevelShape *s = &m->shape[1];
    double d0[3] = {0, -1.5, s->hm / 2 - 3}, d1[3] = {0, -1.5, s->hm / 2 + m->disc[0] + 16};
    double up[3] = {0, 1, 0};
    add_bone_rod(m, sp, &m->vf[1], d0, d1, up, 5.0, 5.0, 0, LAYER_BODY_OUT, sm_phantom_verse_id(sp, 1),
                 SM_PHANTOM_SUB_BODY, 1, cancellous_of(sp, 1));
}

/* ---- ribs ---- */

static const double RIB_LEN[12] = {140, 200, 240, 265, 280, 290, 290, 280, 260, 225, 160, 90};
/* 13 rib pairs (T13): the lower ribs shorten over one more level */
static const double RIB_LEN13[13] = {140, 200, 240, 265, 280, 290, 290, 280, 260, 235, 195, 150,
                                     90};

/* The rib of slot l under the spec's transitional anatomy: false when the slot carries none;
 * else its number t (0 = first rib) and length. */
static bool rib_of(const SmPhantomSpec *sp, int l, int *t, double *total)
{
    switch (sp->transitional) {
    case SM_PHANTOM_TRANS_L6: /* ribs one slot higher: C7 shape = T1 .. T11 shape = T12 */
        if (l < 6 || l > 17)
            return false;
        *t = l - 6;
        *total = RIB_LEN[*t];
        return true;
    case SM_PHANTOM_TRANS_T13: /* C7 shape = T1 .. T12 shape = T13 */
        if (l < 6 || l > 18)
            return false;
        *t = l - 6;
        *total = RIB_LEN13[*t];
        return true;
    case SM_PHANTOM_TRANS_RIBS_11:
        if (l == 18) { /* T12: none, or a rudimentary stub */
            *t = 11;
            *total = sp->t12_rib_mm;
            return sp->t12_rib_mm > 0;
        }
        break;
    default:
        break;
    }
    if (!is_thoracic(l))
        return false;
    *t = l - 7;
    *total = RIB_LEN[*t];
    return true;
}

/* Rib number t (0 = first rib) of total length `total` mm on the vertebra of slot l. */
static void add_rib(Model *m, const SmPhantomSpec *sp, int l, int side, int t, double total)
{
    const LevelShape *s = &m->shape[l];
    const Frame *F = &m->vf[l];
    double rh = 4.6;
    double hz = (t >= 1 && t <= 8) ? s->hm / 2 + m->disc[l] / 2 : s->hm / 2 - 4;
    double head[3] = {side * (s->a * (1 - s->waist * 0.3) + 1.8 + rh), s->b * 0.1, hz};
    double ang = s->tp_angle * M_PI / 180;
    double tip[3] = {side * (s->ped_x + s->ped_w * 0.3 + s->tp_len * cos(ang)),
                     s->yc + s->ca * 0.15 + s->tp_len * sin(ang), s->hm * 0.12};
    double tub[3] = {tip[0] + side * 1.5, tip[1] - (s->tp_t + 1.8 + rh * 0.9), tip[2] + 1};
    double pts[64][3];
    int np = 0;
    frame_point(F, head, pts[np++]);
    frame_point(F, tub, pts[np++]);
    /* shaft: follows an ellipse inside the chest wall, descending */
    double cx = 0, cy = 0, A = 0, B = 0;
    double zt = pts[1][2];
    if (m->n_rows) {
        long r = (long)floor((zt - m->row_z0) / ZROW_STEP);
        if (r < 0)
            r = 0;
        if (r >= (long)m->n_rows)
            r = (long)m->n_rows - 1;
        const ZRow *row = &m->rows[r];
        cx = row->ocx;
        cy = row->ocy;
        A = row->oa - row->fat - row->mus * 0.5;
        B = row->ob - row->fat - row->mus * 0.5;
    }
    double scale = t == 0 ? 0.62 : (t == 1 ? 0.82 : 1.0);
    A *= scale;
    B *= scale;
    /* the rib's angle: the shaft turns a little behind and lateral to the tubercle, then
     * sweeps round the chest wall to the front; its posterior half uses a flatter ellipse
     * that passes through the angle */
    double xs = fmin(fabs(pts[1][0] - cx) + 20, 0.9 * A);
    double phi = acos(xs / A);
    double Bp = clampd((pts[1][1] + 8 - cy) / sin(phi), 0.3 * B, B);
    double len = 0;
    double drop = total * (t == 0 ? 0.15 : (t >= 10 ? 0.3 : 0.34));
    double prev[3];
    memcpy(prev, pts[1], sizeof prev);
    len = sqrt((pts[1][0] - pts[0][0]) * (pts[1][0] - pts[0][0]) +
               (pts[1][1] - pts[0][1]) * (pts[1][1] - pts[0][1]) +
               (pts[1][2] - pts[0][2]) * (pts[1][2] - pts[0][2]));
    for (int guard = 0; guard < 2000 && np < 64 && len < total; guard++) {
        double x = cx + side * A * cos(phi), y = cy + (phi > 0 ? Bp : B) * sin(phi);
        double frac = len / total;
        double z = zt - drop * frac;
        double p[3] = {x, y, z};
        double d = sqrt((p[0] - prev[0]) * (p[0] - prev[0]) + (p[1] - prev[1]) * (p[1] - prev[1]) +
                        (p[2] - prev[2]) * (p[2] - prev[2]));
        if (d >= 9.0 || np == 2) {
            memcpy(pts[np++], p, sizeof p);
            memcpy(prev, p, sizeof p);
            len += d;
        }
        phi -= 0.02;
    }
    Frame W = world_frame((double[3]){0, 0, 0});
    double zup[3] = {0, 0, 1};
    for (int i = 0; i + 1 < np; i++) {
        double ra = i == 0 ? rh : 5.2, rb = i == 0 ? rh : 3.0;
        Obj *o = add_rod(m, &W, pts[i], pts[i + 1], zup, ra, rb, i == 0 ? 0.5 : 2.0,
                         LAYER_RIB_OUT, sp->hu.cortical * 0.9, 0, SM_PHANTOM_SUB_RIB, l);
        if (o) {
            Obj copy = *o;
            obj_inner(m, &copy, LAYER_RIB_IN, 1.1, 0.6 * sp->hu.cancellous + 0.4 * sp->hu.cortical,
                      sp->texture_hu * 0.5);
        }
    }
    /* rounded head */
    double hw[3];
    frame_point(F, head, hw);
    Frame hf = world_frame(hw);
    Obj *o = obj_new(m, OBJ_ELLIPSOID, LAYER_RIB_OUT, &hf, sp->hu.cortical * 0.9, 0,
                     SM_PHANTOM_SUB_RIB, l);
    if (o) {
        o->a = o->b = o->c = rh + 0.5;
        o->ext[0] = o->ext[1] = o->ext[2] = rh + 0.5;
        Obj copy = *o;
        obj_inner(m, &copy, LAYER_RIB_IN, 1.1, sp->hu.cancellous, sp->texture_hu * 0.5);
    }
}

/* Sternum in front of the requested thoracic levels (T2..T9): pieces of bone following
 * the anterior chest wall; ribs and sternum share subregion 8 (thoracic cage). */
static void add_sternum(Model *m, const SmPhantomSpec *sp)
{
    int f = sp->level_first > 8 ? sp->level_first : 8;
    int l = sp->level_last < 15 ? sp->level_last : 15;
    if (f > l || !m->n_rows)
        return;
    double ztop = m->vf[f].o[2] + 10, zbot = m->vf[l].o[2] - 10;
    double lat[3] = {1, 0, 0};
    Frame W = world_frame((double[3]){0, 0, 0});
    for (double z = ztop; z > zbot; z -= 10) {
        long r = (long)((z - m->row_z0) / ZROW_STEP);
        if (r < 0 || r >= (long)m->n_rows)
            continue;
        const ZRow *row = &m->rows[r];
        double y = row->ocy - row->ob + row->fat + row->mus * 0.6;
        double half_w = z > m->vf[8].o[2] - 15 ? 24 : 14; /* manubrium wider */
        double p0[3] = {0, y, z + 5.5}, p1[3] = {0, y, z - 5.5};
        Obj *o = add_rod(m, &W, p0, p1, lat, half_w, 5.5, 0.5, LAYER_RIB_OUT,
                         sp->hu.cortical * 0.9, 0, SM_PHANTOM_SUB_RIB, -1);
        if (o) {
            Obj copy = *o;
            obj_inner(m, &copy, LAYER_RIB_IN, 1.0, sp->hu.cancellous, sp->texture_hu * 0.5);
        }
    }
}

/* ---- sacrum and pelvis ---- */

/* Sacralised L5: a broad bar of bone from the L5 transverse process down into the sacral
 * ala on the chosen side(s), without a joint gap (fused). Labelled L5 (transverse
 * process); the part inside the ala stays sacrum (the ala is painted after it). */
static void add_sacralisation(Model *m, const SmPhantomSpec *sp)
{
    const int l = 23;
    const LevelShape *s = &m->shape[l], *s1 = &m->shape[SM_PHANTOM_LEVEL_S1];
    double ang = s->tp_angle * M_PI / 180;
    for (int side = -1; side <= 1; side += 2) {
        int code = side > 0 ? SM_PHANTOM_SIDE_LEFT : SM_PHANTOM_SIDE_RIGHT;
        if (sp->sacralised_side != code && sp->sacralised_side != SM_PHANTOM_SIDE_BILATERAL)
            continue;
        double x0 = side * (s->ped_x + s->ped_w * 0.3 + 0.7 * s->tp_len * cos(ang));
        double a0[3] = {x0, s->yc + s->ca * 0.15 + 0.7 * s->tp_len * sin(ang), s->hm * 0.12};
        double a1[3] = {side * (s1->a + 16), 3, 8};
        double p0[3], p1[3], u[3];
        frame_point(&m->vf[l], a0, p0);
        frame_point(&m->vf[SM_PHANTOM_LEVEL_S1], a1, p1);
        frame_dir(&m->vf[l], (double[3]){1, 0, 0}, u);
        Frame W = world_frame((double[3]){0, 0, 0});
        add_bone_rod(m, sp, &W, p0, p1, u, 7.0, 6.0, 3.0, LAYER_POST_OUT,
                     sm_phantom_verse_id(sp, l), SM_PHANTOM_SUB_TRANSVERSE, l,
                     cancellous_of(sp, l));
    }
}

static void add_sacrum_pelvis(Model *m, const SmPhantomSpec *sp)
{
    const int l = SM_PHANTOM_LEVEL_S1;
    const LevelShape *s = &m->shape[l];
    const Frame *F = &m->vf[l];
    int lab = sm_phantom_verse_id(sp, l);
    double can = cancellous_of(sp, l);
    /* alae */
    for (int side = -1; side <= 1; side += 2) {
        double c[3] = {side * (s->a + 19), 3, -3};
        Frame af = sub_frame(F, c);
        /* painted before the S1 body, which keeps its own shape where they meet */
        Obj *o = obj_new(m, OBJ_BOX, LAYER_POST_OUT, &af, sp->hu.cortical, lab,
                         SM_PHANTOM_SUB_PELVIS, l);
        if (o) {
            o->a = 21;
            o->b = 15;
            o->c = 16;
            o->round_r = 5;
            memcpy(o->ext, (double[3]){21, 15, 16}, sizeof o->ext);
            Obj copy = *o;
            obj_inner(m, &copy, LAYER_POST_IN, 1.2, can, sp->texture_hu);
        }
    }
    /* S2..S5 */
    static const double sa[4] = {44, 34, 24, 14}, sb[4] = {14, 12, 10, 8};
    static const double shh[4] = {22, 20, 17, 14};
    for (int k = 0; k < 4; k++) {
        const Frame *G = &m->vf[25 + k];
        Obj *o = obj_new(m, OBJ_ECYL, LAYER_PELVIS_OUT, G, sp->hu.cortical, lab,
                         SM_PHANTOM_SUB_PELVIS, l);
        if (!o)
            continue;
        o->a = sa[k];
        o->b = sb[k];
        obj_plane(o, 0, 0, 1, shh[k] / 2 + 1.0);
        obj_plane(o, 0, 0, -1, shh[k] / 2 + 1.0);
        memcpy(o->ext, ((double[3]){sa[k], sb[k], shh[k] / 2 + 1}), sizeof o->ext);
        Obj copy = *o;
        obj_inner(m, &copy, LAYER_PELVIS_IN, 1.2, can, sp->texture_hu);
        /* dorsal plate behind the sacral canal */
        double pc[3] = {0, sb[k] + 9 - k, 0};
        Frame pf = sub_frame(G, pc);
        Obj *p = obj_new(m, OBJ_BOX, LAYER_PELVIS_OUT, &pf, sp->hu.cortical, lab,
                         SM_PHANTOM_SUB_PELVIS, l);
        if (p) {
            p->a = sa[k] * 0.55;
            p->b = 3.5;
            p->c = shh[k] / 2 + 1;
            p->round_r = 1.5;
            memcpy(p->ext, ((double[3]){p->a, p->b, p->c}), sizeof p->ext);
        }
    }
    /* ilium: sacroiliac block facing the ala across a joint gap, and the wing */
    double crest_z = m->vf[22].o[2] - m->vf[24].o[2] - m->shape[22].hm / 2;
    for (int side = -1; side <= 1; side += 2) {
        double c[3] = {side * (s->a + 40 + 2.5 + 9), 5, -8};
        Frame bf = sub_frame(F, c);
        Obj *o = obj_new(m, OBJ_BOX, LAYER_PELVIS_OUT, &bf, sp->hu.cortical, 0,
                         SM_PHANTOM_SUB_PELVIS, -1);
        if (o) {
            o->a = 9;
            o->b = 17;
            o->c = 26;
            o->round_r = 4;
            memcpy(o->ext, ((double[3]){9, 17, 26}), sizeof o->ext);
            Obj copy = *o;
            obj_inner(m, &copy, LAYER_PELVIS_IN, 1.5, sp->hu.cancellous, sp->texture_hu);
        }
        double wc_l[3] = {side * (s->a + 40 + 2.5 + 4), 0, 0};
        double wc[3];
        frame_point(F, wc_l, wc);
        wc[1] -= 62;
        Frame wf = world_frame(wc);
        Obj *w = obj_new(m, OBJ_ECYL, LAYER_PELVIS_OUT, &wf, sp->hu.cortical, 0,
                         SM_PHANTOM_SUB_PELVIS, -1);
        if (w) {
            w->a = 72;
            w->b = 68;
            w->shell = 9;
            obj_plane(w, -side, 0, 0, 0);        /* lateral half */
            obj_plane(w, 0, -1, 0, 30);          /* not too anterior */
            obj_plane(w, 0, 0, 1, crest_z + 2);  /* iliac crest */
            obj_plane(w, 0, 0, -1, 60);
            memcpy(w->ext, ((double[3]){77, 73, 80}), sizeof w->ext);
            Obj copy = *w;
            obj_inner(m, &copy, LAYER_PELVIS_IN, 2.0, sp->hu.cancellous, sp->texture_hu);
        }
    }
}

/* ---- canal ---- */

static void add_canal_piece(Model *m, const SmPhantomSpec *sp, int l, bool first, bool last)
{
    const LevelShape *s = &m->shape[l];
    const Frame *F = &m->vf[l];
    double sc[3][3] = {{1.0, 1.0, 0.0}, {0.8, 0.8, -0.08}, {0, 0, 0}}; /* w, ap, y shift */
    double cord_w = is_cervical(l) ? (l >= 3 && l <= 5 ? 13 : 11) : (l >= 16 ? 9.5 : 8.5);
    double cord_ap = is_cervical(l) ? 8 : 7;
    bool sacral = l == SM_PHANTOM_LEVEL_S1;
    for (int layer = 0; layer < 3; layer++) {
        double w, ap, yshift;
        double hu;
        int sub = SM_PHANTOM_SUB_CANAL;
        if (layer == 0) {
            w = s->cw;
            ap = s->ca;
            yshift = 0;
            hu = sp->hu.epidural_fat;
        } else if (layer == 1) {
            w = s->cw * sc[1][0];
            ap = s->ca * sc[1][1];
            yshift = s->ca * sc[1][2];
            hu = sp->hu.csf;
        } else {
            if (l > sp->conus_level)
                break;
            w = cord_w;
            ap = cord_ap;
            yshift = -s->ca * 0.06;
            hu = sp->hu.cord;
            sub = SM_PHANTOM_SUB_CORD;
        }
        if (sacral && layer == 2)
            break;
        int lay = layer == 0 ? LAYER_EPIDURAL : (layer == 1 ? LAYER_DURA : LAYER_CORD);
        double c[3] = {0, s->yc + yshift, 0};
        Frame cf = sub_frame(F, c);
        bool conus = layer == 2 && l == sp->conus_level;
        Obj *o = obj_new(m, conus ? OBJ_ELLIPSOID : OBJ_ECYL, lay, &cf, hu, 0, sub, l);
        if (!o)
            return;
        o->a = w / 2;
        o->b = ap / 2;
        double zr = s->hm / 2 + 60;
        if (conus) {
            /* the cord tapers to the conus, ending at this level's lower endplate */
            double ztop = s->hm / 2 + m->disc[l - 1] / 2;
            o->f = sub_frame(F, (double[3]){0, s->yc + yshift, ztop});
            o->c = s->hm + m->disc[l - 1] / 2;
            obj_plane(o, 0, 0, 1, 0);
            memcpy(o->ext, ((double[3]){o->a, o->b, o->c}), sizeof o->ext);
            continue;
        }
        if (!first && l > 0) {
            double q[3], n[3];
            disc_plane(m, l - 1, q, n);
            obj_world_plane(o, q, n, 1.0);
        } else {
            obj_plane(o, 0, 0, 1, zr);
        }
        if (sacral) {
            obj_plane(o, 0, 0, -1, layer == 0 ? s->hm / 2 + 1 : 0);
        } else if (!last) {
            double q[3], n[3];
            disc_plane(m, l, q, n);
            obj_world_plane(o, q, n, -1.0);
        } else {
            obj_plane(o, 0, 0, -1, zr);
        }
        memcpy(o->ext, ((double[3]){o->a, o->b, zr}), sizeof o->ext);
    }
    if (sacral) { /* sacral canal behind S2..S3 (fat), dural sac ends at S2 */
        for (int k = 0; k < 3; k++) {
            const Frame *G = &m->vf[25 + k];
            static const double sbb[3] = {14, 12, 10};
            double c[3] = {0, sbb[k] + 3.5 - k * 0.6, 0};
            Frame cf = sub_frame(G, c);
            for (int layer = 0; layer < (k == 0 ? 2 : 1); layer++) {
                Obj *o = obj_new(m, OBJ_ECYL, layer ? LAYER_DURA : LAYER_EPIDURAL, &cf,
                                 layer ? sp->hu.csf : sp->hu.epidural_fat, 0,
                                 SM_PHANTOM_SUB_CANAL, l);
                if (!o)
                    return;
                o->a = (22 - 4 * k) / 2.0 * (layer ? 0.7 : 1.0);
                o->b = (10 - 2 * k) / 2.0 * (layer ? 0.7 : 1.0);
                obj_plane(o, 0, 0, 1, 14);
                obj_plane(o, 0, 0, -1, layer ? 2 : 12);
                memcpy(o->ext, ((double[3]){o->a, o->b, 14}), sizeof o->ext);
            }
        }
    }
}

/* ---- soft tissue rows ---- */

/* piecewise-linear profile over the level coordinate u (0 = C1 ... 24 = S1) */
static double profile(const double *u, const double *v, int n, double x)
{
    if (x <= u[0])
        return v[0];
    for (int i = 0; i + 1 < n; i++)
        if (x <= u[i + 1])
            return lerp(v[i], v[i + 1], (x - u[i]) / (u[i + 1] - u[i]));
    return v[n - 1];
}

static double ramp(double x, double a0, double a1, double b0, double b1)
{
    if (x <= a0 || x >= b1)
        return 0;
    if (x < a1)
        return (x - a0) / (a1 - a0);
    if (x > b0)
        return (b1 - x) / (b1 - b0);
    return 1;
}

/* Soft-tissue profile coordinate of slot coordinate u: with L6 / T13 the thorax starts one
 * slot higher (the C7 slot is T1) and the thoracic (T13) or lumbar (L6) profile stretches
 * over one more slot; identity otherwise. */
static double profile_u(const SmPhantomSpec *sp, double u)
{
    if (sp->transitional == SM_PHANTOM_TRANS_L6) {
        if (u <= 17)
            return u + 1;
        if (u <= 24)
            return 18 + (u - 17) * (6.0 / 7.0);
    } else if (sp->transitional == SM_PHANTOM_TRANS_T13) {
        if (u <= 6)
            return u + 1;
        if (u <= 19)
            return 7 + (u - 6) * (12.0 / 13.0);
    }
    return u;
}

static bool build_rows(Model *m, const SmPhantomSpec *sp, double zmin, double zmax)
{
    zmin -= 20;
    zmax += 20;
    size_t n = (size_t)((zmax - zmin) / ZROW_STEP) + 2;
    m->rows = calloc(n, sizeof *m->rows);
    if (!m->rows)
        return false;
    m->n_rows = n;
    m->row_z0 = zmin;
    /* chain of centres: C1..S1 then S2..S5 (u 25..28) */
    const int nc = SM_PHANTOM_N_LEVELS + 4;
    static const double U[] = {0, 3, 6, 7, 10, 14, 18, 21, 23, 24, 26};
    static const double OA[] = {55, 55, 70, 125, 140, 148, 150, 155, 162, 170, 175};
    static const double OB[] = {62, 62, 64, 85, 100, 108, 110, 105, 105, 108, 110};
    static const double BACK[] = {75, 75, 75, 78, 82, 80, 84, 92, 92, 88, 80};
    static const double FAT[] = {9, 9, 10, 13, 15, 16, 20, 24, 24, 26, 26};
    static const double MUS[] = {30, 30, 30, 14, 12, 12, 12, 12, 12, 13, 13};
    static const double PA[] = {16, 16, 16, 17, 18, 19, 20, 22, 22, 18, 14};
    static const double PB[] = {20, 20, 20, 18, 18, 19, 22, 25, 25, 20, 16};
    const int NP = (int)(sizeof U / sizeof U[0]);
    m->back_max_y = -1e9;
    for (size_t r = 0; r < n; r++) {
        ZRow *row = &m->rows[r];
        double z = zmin + (double)r * ZROW_STEP;
        int i = 0;
        while (i + 1 < nc - 1 && m->vf[i + 1].o[2] > z)
            i++;
        double z0 = m->vf[i].o[2], z1 = m->vf[i + 1].o[2];
        double t = (z0 - z) / (z0 - z1);
        row->u = i + t;
        row->sx = lerp(m->vf[i].o[0], m->vf[i + 1].o[0], t);
        row->sy = lerp(m->vf[i].o[1], m->vf[i + 1].o[1], t);
        double u = row->u;
        int li = (int)clampd(floor(u), 0, 23);
        double lt = clampd(u - li, 0, 1);
        int lj = li + 1 > 24 ? 24 : li + 1;
        row->ba = lerp(T_WIDTH[li > 0 ? li : 1], T_WIDTH[lj > 0 ? lj : 1], lt) / 2;
        row->bb = lerp(T_DEPTH[li > 0 ? li : 1], T_DEPTH[lj > 0 ? lj : 1], lt) / 2;
        double ca = lerp(T_CANAL_AP[li], T_CANAL_AP[lj], lt);
        u = profile_u(sp, u);
        row->oa = profile(U, OA, NP, u);
        row->ob = profile(U, OB, NP, u);
        double back = profile(U, BACK, NP, u);
        row->ocx = 0;
        row->ocy = row->sy + back - row->ob;
        if (row->sy + back > m->back_max_y)
            m->back_max_y = row->sy + back;
        row->fat = profile(U, FAT, NP, u);
        row->mus = profile(U, MUS, NP, u);
        row->pa = profile(U, PA, NP, u);
        row->pb = profile(U, PB, NP, u);
        row->px = row->pa + 5;
        row->py = row->sy + row->bb + ca + row->pb * 0.75;
        /* paraspinal muscles must stay inside the outline, under the fat */
        double xr = clampd(row->px / row->oa, 0, 0.95);
        double lim = row->ocy + row->ob * sqrt(1 - xr * xr) - row->fat - row->pb * 0.9;
        if (row->py > lim)
            row->py = lim;
        double cav_a = row->oa - row->fat - row->mus, cav_b = row->ob - row->fat - row->mus;
        double cav_cy = row->ocy;
        double ps = ramp(u, 18.3, 23.5, 24.2, 25.5);
        row->qr = ps > 0 ? lerp(4, 22, clampd((u - 18.3) / 5.2, 0, 1)) * (ps < 1 ? sqrt(ps) : 1)
                         : 0;
        row->qx = row->ba + row->qr * 0.85 + 1;
        row->qy = row->sy + 1;
        double ls = ramp(u, 6.2, 9.5, 15.5, 19.0);
        if (ls > 0 && cav_a > 10) {
            double g = sqrt(ls);
            row->la = cav_a * 0.46 * g;
            row->lb = cav_b * 0.8 * g;
            row->lx = cav_a * 0.5;
            row->ly = cav_cy + cav_b * 0.04 + (1 - g) * cav_b * 0.55;
        }
        double ms = clampd((u - 7) / 5, 0, 1);
        row->ma = cav_a * lerp(0.18, 0.36, ms);
        row->mb = cav_b * 0.72;
        row->mx = 0;
        row->my = cav_cy - cav_b * 0.2;
        double vs = ramp(u, 14.5, 16.5, 19.0, 21.0);
        if (vs > 0) {
            row->va = cav_a * 0.55 * sqrt(vs);
            row->vb = cav_b * 0.72 * sqrt(vs);
            row->vx = -cav_a * 0.38;
            row->vy = cav_cy - cav_b * 0.05;
        }
        double rs = ramp(u, 17.0, 19.0, 24.0, 26.0);
        if (rs > 0) {
            row->ra = (row->ba + 80) * rs;
            row->rb = (row->bb + 30) * rs;
            row->rx = row->sx;
            row->ry = row->sy + 6;
        }
        double ks = ramp(u, 17.5, 18.8, 21.0, 22.3);
        if (ks > 0) {
            row->ka = 26 * sqrt(ks);
            row->kb = 20 * sqrt(ks);
            row->kx = row->ba + 48;
            row->ky = row->sy + 8;
        }
        if (u >= 9.3 && u <= 22.7) {
            row->ar = u < 18 ? 12.5 : lerp(12.5, 9, (u - 18) / 4.7);
            row->ax = row->sx + row->ba * 0.55 + 2;
            row->ay = row->sy - row->bb - row->ar - 3;
        }
        if (u >= 16.5 && u <= 23.2) {
            row->ir = 10;
            row->ix = row->sx - row->ba * 0.7 - 4;
            row->iy = row->sy - row->bb - row->ir - 6;
        }
        if (u >= 2.0 && u <= 10.5) {
            row->tr = 8.5;
            row->tx = row->sx;
            row->ty = row->sy - row->bb - (u < 7 ? 22 : 26);
        }
        row->sa = row->ba + 10;
        row->sb = row->bb + 14;
    }
    m->table_y = m->back_max_y + 12;
    m->table_r = 420;
    return true;
}

static inline double cov(double d, double inv_w)
{
    return clampd(0.5 - d * inv_w, 0.0, 1.0);
}

static void paint(float *v, double hu, double d, double inv_w)
{
    double a = cov(d, inv_w);
    if (a > 0)
        *v += (float)(a * (hu - *v));
}

static void ell_set(Ell *e, double cx, double cy, double a, double b, double hu, double w)
{
    memset(e, 0, sizeof *e);
    if (!(a > 0.2 && b > 0.2))
        return;
    e->on = true;
    e->cx = cx;
    e->cy = cy;
    e->a = a;
    e->b = b;
    e->bx = a + w;
    e->by = b + w;
    e->ia2 = 1.0 / (a * a);
    e->ib2 = 1.0 / (b * b);
    double m = a < b ? a : b;
    double hin = 1.0 - 0.5 * w / m, hout = 1.0 + 0.5 * w / m;
    e->hin2 = hin > 0 ? hin * hin : -1.0;
    e->hout2 = hout * hout;
    e->hu = (float)hu;
}

/* Turns each row's description into ellipses with the tissue values of the spec and the
 * blend width of the grid (serial, before rasterising). */
static void rows_compile(Model *m, const SmPhantomSpec *sp, double w)
{
    const SmPhantomHu *hu = &sp->hu;
    for (size_t r = 0; r < m->n_rows; r++) {
        ZRow *row = &m->rows[r];
        Ell *e = row->e;
        double cav_a = row->oa - row->fat - row->mus, cav_b = row->ob - row->fat - row->mus;
        bool neck = profile_u(sp, row->u) < 6.5;
        ell_set(&e[E_OUTLINE], row->ocx, row->ocy, row->oa, row->ob, hu->fat, w);
        ell_set(&e[E_WALL], row->ocx, row->ocy, row->oa - row->fat, row->ob - row->fat,
                hu->muscle, w);
        ell_set(&e[E_CAVITY], row->ocx, row->ocy, cav_a, cav_b,
                neck ? hu->muscle - 5 : hu->soft_tissue, w);
        ell_set(&e[E_LUNG_L], row->lx, row->ly, row->la, row->lb, hu->lung, w);
        ell_set(&e[E_LUNG_R], -row->lx, row->ly, row->la, row->lb, hu->lung, w);
        ell_set(&e[E_MEDIASTINUM], row->mx, row->my, row->la > 0 ? row->ma : 0, row->mb,
                hu->soft_tissue + 5, w);
        ell_set(&e[E_LIVER], row->vx, row->vy, row->va, row->vb, hu->soft_tissue + 25, w);
        ell_set(&e[E_RETRO], row->rx, row->ry, row->ra, row->rb, hu->fat + 10, w);
        double khu = sp->contrast ? 150 : hu->soft_tissue;
        ell_set(&e[E_KIDNEY_L], row->sx + row->kx, row->ky, row->ka, row->kb, khu, w);
        ell_set(&e[E_KIDNEY_R], row->sx - row->kx, row->ky, row->ka, row->kb, khu, w);
        ell_set(&e[E_AORTA], row->ax, row->ay, sp->aorta ? row->ar : 0, row->ar,
                sp->contrast ? hu->contrast : hu->blood, w);
        ell_set(&e[E_IVC], row->ix, row->iy, row->ir * 1.2, row->ir * 0.8,
                sp->contrast ? hu->blood + 80 : hu->blood, w);
        ell_set(&e[E_TRACHEA], row->tx, row->ty, row->tr, row->tr * 0.85, hu->air, w);
        ell_set(&e[E_PARAVERT], row->sx, row->sy + 4, row->sa, row->sb, hu->soft_tissue + 5, w);
        ell_set(&e[E_PARA_L], row->sx + row->px, row->py, row->pa, row->pb, hu->muscle, w);
        ell_set(&e[E_PARA_R], row->sx - row->px, row->py, row->pa, row->pb, hu->muscle, w);
        ell_set(&e[E_PSOAS_L], row->sx + row->qx, row->qy, row->qr, row->qr * 1.1, hu->muscle, w);
        ell_set(&e[E_PSOAS_R], row->sx - row->qx, row->qy, row->qr, row->qr * 1.1, hu->muscle, w);
    }
}

/* Coverage of a compiled ellipse: exact distance only within half a voxel of its edge. */
static inline double ell_cov(const Ell *e, double x, double y, double inv_w)
{
    double dx = x - e->cx, dy = y - e->cy;
    if (!e->on || fabs(dx) > e->bx || fabs(dy) > e->by)
        return 0;
    double k2 = dx * dx * e->ia2 + dy * dy * e->ib2;
    if (k2 <= e->hin2)
        return 1;
    if (k2 >= e->hout2)
        return 0;
    return cov(ellipse_sdf(dx, dy, e->a, e->b), inv_w);
}

static inline void ell_paint(float *v, const Ell *e, double x, double y, double inv_w)
{
    double al = ell_cov(e, x, y, inv_w);
    if (al >= 1)
        *v = e->hu;
    else if (al > 0)
        *v += (float)(al * (e->hu - *v));
}

static float background(const Model *m, const SmPhantomSpec *sp, const double p[3],
                        double inv_w)
{
    long r = (long)((p[2] - m->row_z0) * (1.0 / ZROW_STEP) + 0.5);
    if (r < 0)
        r = 0;
    if (r >= (long)m->n_rows)
        r = (long)m->n_rows - 1;
    const Ell *e = m->rows[r].e;
    double x = p[0], y = p[1];
    /* table: a curved slab behind (below) the patient */
    float tv = (float)sp->hu.air;
    if (y > m->table_y - 5 && fabs(x) < 230) {
        double ty0 = m->table_y - m->table_r;
        double rr = sqrt(x * x + (y - ty0) * (y - ty0));
        double d = fabs(rr - (m->table_r + 9)) - 9;
        d = fmax(d, fabs(x) - 225);
        paint(&tv, sp->hu.table, d, inv_w);
    }
    double aout = ell_cov(&e[E_OUTLINE], x, y, inv_w);
    if (aout <= 0)
        return tv;
    double acav = ell_cov(&e[E_CAVITY], x, y, inv_w);
    float v;
    if (acav >= 1) {
        v = e[E_CAVITY].hu;
    } else {
        v = e[E_OUTLINE].hu;
        ell_paint(&v, &e[E_WALL], x, y, inv_w);
        if (acav > 0)
            v += (float)(acav * (e[E_CAVITY].hu - v));
    }
    if (acav > 0) /* organs live inside the body cavity */
        for (int i = E_FIRST_ORGAN; i <= E_LAST_ORGAN; i++)
            ell_paint(&v, &e[i], x, y, inv_w);
    for (int i = E_PARAVERT; i < N_ELL; i++)
        ell_paint(&v, &e[i], x, y, inv_w);
    return (float)(tv + aout * (v - tv));
}

/* ---- bounds ---- */

static void obj_world_bounds(Obj *o)
{
    if (o->type == OBJ_CAPSULE) {
        double p1[3];
        frame_point(&o->f, o->seg, p1);
        double r = fmax(o->a, o->b);
        for (int d = 0; d < 3; d++) {
            o->wmin[d] = fmin(o->f.o[d], p1[d]) - r;
            o->wmax[d] = fmax(o->f.o[d], p1[d]) + r;
        }
        return;
    }
    for (int d = 0; d < 3; d++) {
        double e = fabs(o->ext[0] * o->f.ax[0][d]) + fabs(o->ext[1] * o->f.ax[1][d]) +
                   fabs(o->ext[2] * o->f.ax[2][d]);
        o->wmin[d] = o->f.o[d] - e;
        o->wmax[d] = o->f.o[d] + e;
    }
}

static void obj_index_bounds(Obj *o, const double inv[4][4], const size_t dims[3])
{
    double lo[3] = {1e30, 1e30, 1e30}, hi[3] = {-1e30, -1e30, -1e30};
    for (int c = 0; c < 8; c++) {
        double p[3] = {(c & 1) ? o->wmax[0] : o->wmin[0], (c & 2) ? o->wmax[1] : o->wmin[1],
                       (c & 4) ? o->wmax[2] : o->wmin[2]};
        double q[3];
        sm_mat4_apply(inv, p, q);
        for (int d = 0; d < 3; d++) {
            lo[d] = fmin(lo[d], q[d]);
            hi[d] = fmax(hi[d], q[d]);
        }
    }
    for (int d = 0; d < 3; d++) {
        double a = floor(lo[d]) - 2, b = ceil(hi[d]) + 2;
        if (a < 0)
            a = 0;
        if (b > (double)dims[d] - 1)
            b = (double)dims[d] - 1;
        o->bb[2 * d] = (long)a;
        o->bb[2 * d + 1] = (long)b;
    }
}

static int cmp_layer(const void *a, const void *b)
{
    const Obj *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    /* stable: ties keep creation order, stored in bb[0] before bounds are computed */
    return x->bb[0] < y->bb[0] ? -1 : (x->bb[0] > y->bb[0]);
}

/* ---- bowel ---- */

/* Bowel loops (wall, gas or fluid content) and mesenteric fat in front of the lumbar
 * spine, placed pseudo-randomly from the seed: the abdomen is not a uniform blob. */
static void add_bowel(Model *m, const SmPhantomSpec *sp)
{
    double u0 = fmax(sp->level_first - 1.0, 18.5), u1 = fmin(sp->level_last + 1.5, 26.0);
    if (u1 <= u0 || !m->n_rows)
        return;
    uint64_t h = splitmix64(sp->seed ^ 0x626F77656CULL);
    int n = (int)((u1 - u0) * 14);
    for (int q = 0; q < n; q++) {
        double r[6];
        for (int k = 0; k < 6; k++) {
            h = splitmix64(h);
            r[k] = (double)(h >> 11) / 9007199254740992.0;
        }
        double u = u0 + r[0] * (u1 - u0);
        int li = (int)clampd(floor(u), 0, 27);
        double t = u - li;
        double z = lerp(m->vf[li].o[2], m->vf[li + 1].o[2], t);
        long ri = (long)((z - m->row_z0) / ZROW_STEP);
        if (ri < 0 || ri >= (long)m->n_rows)
            continue;
        const ZRow *row = &m->rows[ri];
        double ca = row->oa - row->fat - row->mus - 18, cb = row->ob - row->fat - row->mus - 15;
        if (ca < 30 || cb < 30)
            continue;
        double th = M_PI * (1.0 + r[1]); /* anterior half of the cavity */
        double rad = sqrt(r[2]) * 0.9;
        double x = row->ocx + ca * rad * cos(th), y = row->ocy + cb * rad * sin(th);
        if (y > row->sy - row->bb - 22 ||
            (fabs(x - row->sx) < row->ba + 30 && y > row->sy - row->bb - 40))
            continue;
        double c[3] = {x, y, z};
        Frame f = world_frame(c);
        double ea = 9 + 9 * r[3], eb = 8 + 7 * r[4], ec = 10 + 14 * r[5];
        int kind = (int)(r[5] * 1000) % 3;
        double hu = kind == 2 ? sp->hu.fat + 10 : sp->hu.soft_tissue - 5;
        Obj *o = obj_new(m, OBJ_ELLIPSOID, LAYER_VISCERA, &f, hu, 0, 0, -1);
        if (!o)
            return;
        o->a = ea;
        o->b = eb;
        o->c = ec;
        memcpy(o->ext, ((double[3]){ea, eb, ec}), sizeof o->ext);
        if (kind != 2) {
            Obj copy = *o;
            obj_inner(m, &copy, LAYER_VISCERA, 2.5, kind == 0 ? -900 : 10, 0);
        }
    }
}

/* ---- lesions ---- */

static double blob_sdf(const double l[3], const double c[3], const double r[3], double sc)
{
    double ra = r[0] * sc, rb = r[1] * sc, rc = r[2] * sc;
    double x = l[0] - c[0], y = l[1] - c[1], z = l[2] - c[2];
    double k0 = sqrt(x * x / (ra * ra) + y * y / (rb * rb) + z * z / (rc * rc));
    double k1 = sqrt(x * x / (ra * ra * ra * ra) + y * y / (rb * rb * rb * rb) +
                     z * z / (rc * rc * rc * rc));
    if (k1 < 1e-12)
        return -fmin(ra, fmin(rb, rc));
    return k0 * (k0 - 1.0) / k1;
}

/* Union of the scaled blobs at local point l, with an irregular boundary. */
static double blobs_sdf(const Lesion *ls, const double l[3])
{
    double db = 1e30;
    for (int b = 0; b < ls->n_blobs; b++)
        db = fmin(db, blob_sdf(l, ls->bc[b], ls->br[b], ls->scale));
    if (ls->rough_mm > 0 && db < 3 * ls->rough_mm)
        db += ls->rough_mm * value_noise(ls->rough_seed, l[0] * 0.3, l[1] * 0.3, l[2] * 0.3);
    return db;
}

static double clip_sdf(const Obj *o, const double p[3], double cutoff)
{
    for (int d = 0; d < 3; d++)
        if (p[d] < o->wmin[d] - cutoff - 1 || p[d] > o->wmax[d] + cutoff + 1)
            return cutoff + 1;
    double l[3];
    frame_local(&o->f, p, l);
    return obj_sdf_local(o, l, cutoff);
}

static double body_clip_sdf(const Lesion *ls, const double p[3], double cutoff)
{
    double dc = 1e30;
    for (int k = 0; k < ls->n_body_clips; k++)
        dc = fmin(dc, clip_sdf(&ls->clip[k], p, cutoff + ls->body_dilate));
    return dc - ls->body_dilate;
}

/* Approximate signed distances (mm) of a lesion component at world point p: its part in
 * the body (*d_body) and its extension into posterolateral structures (*d_ext); values
 * above `cutoff` are only bounds. */
static void lesion_parts(const Lesion *ls, const double p[3], double cutoff, double *d_body,
                         double *d_ext)
{
    double l[3];
    frame_local(&ls->f, p, l);
    double d = 1e30;
    double db = ls->n_blobs > 0 ? blobs_sdf(ls, l) : 1e30;
    if (ls->has_conn) /* connector blobs are stored after the scaled ones, unscaled */
        for (int b = ls->n_blobs; b < LES_MAX_BLOBS && ls->br[b][0] > 0; b++)
            db = fmin(db, blob_sdf(l, ls->bc[b], ls->br[b], 1.0));
    if (db <= cutoff)
        d = fmax(db, body_clip_sdf(ls, p, cutoff));
    double de = 1e30;
    for (int k = ls->n_body_clips; k < ls->n_clips; k++)
        de = fmin(de, clip_sdf(&ls->clip[k], p, cutoff + ls->ext_dilate) - ls->ext_dilate);
    *d_body = d;
    *d_ext = de;
}

/* The part of a lesion that does not scale: connectors and extension structures. */
static double lesion_fixed_sdf(const Lesion *ls, const double p[3])
{
    double l[3], d = 1e30;
    frame_local(&ls->f, p, l);
    if (ls->has_conn) {
        double dc = 1e30;
        for (int b = ls->n_blobs; b < LES_MAX_BLOBS && ls->br[b][0] > 0; b++)
            dc = fmin(dc, blob_sdf(l, ls->bc[b], ls->br[b], 1.0));
        if (dc <= 0)
            d = fmax(dc, body_clip_sdf(ls, p, 0.0));
    }
    for (int k = ls->n_body_clips; k < ls->n_clips; k++)
        d = fmin(d, clip_sdf(&ls->clip[k], p, ls->ext_dilate) - ls->ext_dilate);
    return d;
}

static double lesion_sdf(const Lesion *ls, const double p[3], double cutoff)
{
    double db, de;
    lesion_parts(ls, p, cutoff, &db, &de);
    return fmin(db, de);
}

static double rnd01(uint64_t *h)
{
    *h = splitmix64(*h);
    return (double)(*h >> 11) / 9007199254740992.0;
}

/* Scales the blobs so the lesion covers `target` of the body volume (counted on a 1 mm
 * lattice of the body), together with `prev` (the other component of a mixed lesion, or
 * NULL). False only when out of memory. */
static bool lesion_calibrate(Lesion *ls, const Obj *body_out, size_t n_out, double target,
                             const Lesion *prev)
{
    double lo[3] = {1e30, 1e30, 1e30}, hi[3] = {-1e30, -1e30, -1e30};
    for (size_t i = 0; i < n_out; i++)
        for (int d = 0; d < 3; d++) {
            lo[d] = fmin(lo[d], body_out[i].wmin[d]);
            hi[d] = fmax(hi[d], body_out[i].wmax[d]);
        }
    const double step = 1.0;
    size_t nx = (size_t)((hi[0] - lo[0]) / step) + 1, ny = (size_t)((hi[1] - lo[1]) / step) + 1,
           nz = (size_t)((hi[2] - lo[2]) / step) + 1;
    size_t cap = nx * ny * nz, n = 0, n_body = 0, n_prev = 0;
    double *pts = malloc(cap * 3 * sizeof *pts);
    if (!pts)
        return false;
    for (size_t k = 0; k < nz; k++)
        for (size_t j = 0; j < ny; j++)
            for (size_t i = 0; i < nx; i++) {
                double p[3] = {lo[0] + ((double)i + 0.5) * step, lo[1] + ((double)j + 0.5) * step,
                               lo[2] + ((double)k + 0.5) * step};
                bool in = false;
                for (size_t q = 0; q < n_out && !in; q++)
                    in = clip_sdf(&body_out[q], p, 0.0) <= 0;
                if (!in)
                    continue;
                n_body++;
                if ((prev && lesion_sdf(prev, p, 0.0) <= 0) ||
                    ((ls->has_conn || ls->n_clips > ls->n_body_clips) &&
                     lesion_fixed_sdf(ls, p) <= 0)) {
                    n_prev++; /* covered anyway */
                    continue;
                }
                if (body_clip_sdf(ls, p, 0.0) > 0)
                    continue;
                frame_local(&ls->f, p, pts + 3 * n);
                n++;
            }
    double s0 = 0.02, s1 = 4.0;
    for (int it = 0; it < 30 && n_body > 0; it++) {
        double sm = 0.5 * (s0 + s1);
        size_t c = n_prev;
        ls->scale = sm;
        for (size_t q = 0; q < n; q++)
            c += blobs_sdf(ls, pts + 3 * q) <= 0;
        if ((double)c / (double)n_body < target)
            s0 = sm;
        else
            s1 = sm;
    }
    ls->scale = 0.5 * (s0 + s1);
    free(pts);
    return true;
}

/* Adds clip copies of level l's objects of one layer and subregion (sub < 0: body). */
static void lesion_add_clips(const Model *m, Lesion *ls, int l, int layer, int sub)
{
    for (size_t i = 0; i < m->n_objs && ls->n_clips < LES_MAX_CLIPS; i++) {
        const Obj *o = &m->objs[i];
        if (o->vert == l && o->layer == layer && o->sub == sub && o->label != 0 &&
            o->type != OBJ_LESION)
            ls->clip[ls->n_clips++] = *o;
    }
}

/* Builds the lesion components of one specified lesion (a mixed lesion gives two). */
static bool add_lesion(Model *m, const SmPhantomSpec *sp, int l, size_t k)
{
    const SmPhantomLesionSpec *spec = &sp->vertebra[l].lesion[k];
    const LevelShape *s = &m->shape[l];
    int ncomp = spec->type == SM_PHANTOM_LESION_MIXED ? 2 : 1;
    size_t first = m->n_lesions;
    for (int comp = 0; comp < ncomp; comp++) {
        if (m->n_lesions % 8 == 0) {
            Lesion *nl = realloc(m->lesions, (m->n_lesions + 8) * sizeof *nl);
            if (!nl)
                return false;
            m->lesions = nl;
        }
        Lesion *ls = &m->lesions[m->n_lesions];
        memset(ls, 0, sizeof *ls);
        ls->level = l;
        ls->label = sm_phantom_verse_id(sp, l);
        ls->f = m->vf[l];
        int type = spec->type == SM_PHANTOM_LESION_MIXED
                       ? (comp == 0 ? SM_PHANTOM_LESION_LYTIC : SM_PHANTOM_LESION_BLASTIC)
                       : spec->type;
        ls->code = type == SM_PHANTOM_LESION_LYTIC     ? SM_PHANTOM_LESMAP_LYTIC
                   : type == SM_PHANTOM_LESION_BLASTIC ? SM_PHANTOM_LESMAP_BLASTIC
                                                       : SM_PHANTOM_LESMAP_ISLAND;
        double dflt = type == SM_PHANTOM_LESION_LYTIC ? 45 : (type == SM_PHANTOM_LESION_BLASTIC ? 700 : 1200);
        ls->hu = isfinite(spec->hu) && (ncomp == 1 || comp == 0) ? spec->hu : dflt;
        ls->texture = type == SM_PHANTOM_LESION_LYTIC ? 8 : (type == SM_PHANTOM_LESION_BLASTIC ? 90 : 0);
        bool breach = spec->cortical_breach && type != SM_PHANTOM_LESION_BONE_ISLAND;
        double vox = cbrt(sp->pixel_mm * sp->pixel_mm * sp->slice_mm);
        if (type == SM_PHANTOM_LESION_LYTIC) {
            ls->body_dilate = breach ? 0.5 * vox : 0.0;
            ls->ext_dilate = 0.5 * vox;
        }
        /* body clip: the whole body (cortex may go) or only its cancellous bone */
        lesion_add_clips(m, ls, l, breach ? LAYER_BODY_OUT : LAYER_BODY_IN, SM_PHANTOM_SUB_BODY);
        ls->n_body_clips = ls->n_clips;
        uint64_t h = splitmix64(spec->seed ^ ((uint64_t)l << 40) ^ ((uint64_t)k << 48) ^
                                ((uint64_t)comp << 56) ^ 0x6C6573696F6EULL);
        ls->rough_seed = splitmix64(h ^ 0x726F756768ULL);
        ls->rough_mm = type == SM_PHANTOM_LESION_BONE_ISLAND ? 0.0 : 1.8;
        double c0[3] = {spec->center[0] * s->a, spec->center[1] * s->b, spec->center[2] * s->hm / 2};
        if (comp == 1) /* the blastic part of a mixed lesion lies beside the lytic part */
            c0[0] += (spec->center[0] > 0 ? -0.45 : 0.45) * s->a;
        if (type == SM_PHANTOM_LESION_BONE_ISLAND) {
            ls->n_blobs = 1;
            memcpy(ls->bc[0], c0, sizeof c0);
            ls->br[0][0] = ls->br[0][1] = ls->br[0][2] = spec->radius_mm;
            ls->scale = 1.0;
        } else {
            double R[3] = {s->a * 0.5, s->b * 0.5, s->hm * 0.38};
            memcpy(ls->bc[0], c0, sizeof c0);
            for (int d = 0; d < 3; d++)
                ls->br[0][d] = R[d];
            int extra = 2 + (int)(rnd01(&h) * 3);
            ls->n_blobs = 1 + extra;
            for (int b = 1; b <= extra; b++)
                for (int d = 0; d < 3; d++) {
                    ls->bc[b][d] = c0[d] + (rnd01(&h) - 0.5) * 1.2 * R[d];
                    ls->br[b][d] = R[d] * (0.45 + 0.35 * rnd01(&h));
                }
            if (breach && ls->n_blobs < LES_MAX_BLOBS) {
                /* a blob centred on the cortex, towards the placement (else anterolateral) */
                double dx = c0[0], dy = c0[1];
                if (hypot(dx / s->a, dy / s->b) < 0.15) {
                    double ang = M_PI * (1.1 + 0.8 * rnd01(&h));
                    dx = cos(ang) * s->a;
                    dy = sin(ang) * s->b;
                }
                double t = 1.0 / sqrt(dx * dx / (s->a * s->a) + dy * dy / (s->b * s->b));
                int b = ls->n_blobs++;
                ls->bc[b][0] = t * dx;
                ls->bc[b][1] = t * dy;
                ls->bc[b][2] = c0[2];
                for (int d = 0; d < 3; d++)
                    ls->br[b][d] = R[d] * 0.45;
            }
        }
        /* extension: the pedicle and articular processes of a side are replaced */
        if (comp == 0 && type != SM_PHANTOM_LESION_BONE_ISLAND && spec->extension) {
            int nconn = 0;
            for (int side = 0; side < 2; side++) {
                if (!(spec->extension & (1 << side)))
                    continue;
                lesion_add_clips(m, ls, l, LAYER_POST_OUT,
                                 side == 0 ? SM_PHANTOM_SUB_POSTEROLATERAL_LEFT
                                           : SM_PHANTOM_SUB_POSTEROLATERAL_RIGHT);
                int b = LES_MAX_BLOBS - 1 - nconn++;
                if (b >= ls->n_blobs) {
                    double sx = side == 0 ? 1.0 : -1.0;
                    ls->bc[b][0] = sx * s->ped_x;
                    ls->bc[b][1] = s->b - 4;
                    ls->bc[b][2] = s->hm * 0.12;
                    ls->br[b][0] = s->ped_w + 2.5;
                    ls->br[b][1] = 7;
                    ls->br[b][2] = s->ped_h + 1;
                    ls->has_conn = true;
                }
            }
        }
        /* connectors sit at the end of the blob array: compact them behind the blobs */
        if (ls->has_conn) {
            int w = ls->n_blobs;
            for (int b = ls->n_blobs; b < LES_MAX_BLOBS; b++)
                if (ls->br[b][0] > 0) {
                    if (b != w) {
                        memcpy(ls->bc[w], ls->bc[b], sizeof ls->bc[w]);
                        memcpy(ls->br[w], ls->br[b], sizeof ls->br[w]);
                        memset(ls->br[b], 0, sizeof ls->br[b]);
                    }
                    w++;
                }
        }
        if (ls->n_body_clips == 0)
            continue; /* no body (cannot happen past validation) */
        if (type != SM_PHANTOM_LESION_BONE_ISLAND) {
            Obj outs[4];
            size_t no = 0;
            for (size_t i = 0; i < m->n_objs && no < 4; i++) {
                const Obj *o = &m->objs[i];
                if (o->vert == l && o->layer == LAYER_BODY_OUT && o->sub == SM_PHANTOM_SUB_BODY &&
                    o->label != 0)
                    outs[no++] = *o;
            }
            /* a mixed lesion: the lytic part alone 55 %, then the blastic part so that both
             * together reach the fraction (it paints over the lytic part where they meet) */
            double target = spec->fraction * (ncomp == 2 && comp == 0 ? 0.55 : 1.0);
            if (!lesion_calibrate(ls, outs, no, target, comp == 1 ? ls - 1 : NULL))
                return false;
        }
        m->n_lesions++;
    }
    /* painting objects, the last component first: the lytic part of a mixed lesion keeps
     * its calibrated share, the blastic part shows where they do not overlap */
    for (size_t li = m->n_lesions; li-- > first;) {
        const Lesion *ls = &m->lesions[li];
        /* a world-aligned box around everything the lesion may touch */
        double lo[3] = {1e30, 1e30, 1e30}, hi[3] = {-1e30, -1e30, -1e30};
        for (int c = 0; c < ls->n_clips; c++)
            for (int d = 0; d < 3; d++) {
                lo[d] = fmin(lo[d], ls->clip[c].wmin[d]);
                hi[d] = fmax(hi[d], ls->clip[c].wmax[d]);
            }
        double ctr[3] = {0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])};
        Frame wf = world_frame(ctr);
        Obj *o = obj_new(m, OBJ_LESION, LAYER_LESION, &wf, ls->hu, 0, 0, l);
        if (!o)
            return false;
        o->lesion = (int)li;
        o->texture = ls->texture;
        for (int d = 0; d < 3; d++)
            o->ext[d] = 0.5 * (hi[d] - lo[d]);
        obj_world_bounds(o);
    }
    return true;
}

/* ---- model assembly ---- */

static bool model_build(SmError **error, const SmPhantomSpec *sp, Model *m)
{
    memset(m, 0, sizeof *m);
    build_chain(m, sp, true);
    double zmin = m->vf[28].o[2] - 120, zmax = m->vf[0].o[2] + 120;
    if (!build_rows(m, sp, zmin, zmax)) {
        sm_error_set(error, SM_ERR_NOMEM, "phantom: out of memory");
        return false;
    }
    int f = sp->level_first, l = sp->level_last;
    add_bowel(m, sp);
    add_sternum(m, sp);
    for (int i = f; i <= l; i++) {
        if (i == 0) {
            add_c1(m, sp);
        } else {
            add_body(m, sp, i);
            if (i == 1)
                add_dens(m, sp);
            if (i < SM_PHANTOM_LEVEL_S1)
                add_posterior(m, sp, i);
            else {
                /* S1: superior articular processes and a short median crest only */
                const LevelShape *s = &m->shape[i];
                double xs, ys, dxi, dyi;
                facet_offsets(i, s, &xs, &ys, &dxi, &dyi);
                Frame J = joint_frame(m, i - 1);
                for (int d = 0; d < 3; d++)
                    J.o[d] -= 0.5 * m->shift[i - 1][d];
                for (int side = -1; side <= 1; side += 2)
                    add_facet(m, sp, &J, side * xs, ys, -(m->disc[i - 1] / 2 + s->hm * 0.4),
                              5.0, s->facet_r, i);
                double up[3] = {0, 0, 1};
                for (int side = -1; side <= 1; side += 2) {
                    double q0[3] = {side * (s->cw / 2 + 3), s->yc + s->ca * 0.2, 0};
                    double q1[3] = {0, s->yc + s->ca / 2 + 3, -2};
                    add_bone_rod(m, sp, &m->vf[i], q0, q1, up, 9, 3.5, 2, LAYER_POST_OUT,
                                 sm_phantom_verse_id(sp, i), SM_PHANTOM_SUB_ARCH, i, cancellous_of(sp, i));
                }
                double c0[3] = {0, s->yc + s->ca / 2 + 2, -2};
                double c1[3] = {0, s->yc + s->ca / 2 + 12, -6};
                add_bone_rod(m, sp, &m->vf[i], c0, c1, up, 7, 3, 1, LAYER_POST_OUT, sm_phantom_verse_id(sp, i),
                             SM_PHANTOM_SUB_ARCH, i, cancellous_of(sp, i));
                add_sacrum_pelvis(m, sp);
            }
        }
        if (i < l && i >= 1)
            add_disc(m, sp, i);
        int rib_t;
        double rib_len;
        if (rib_of(sp, i, &rib_t, &rib_len)) {
            add_rib(m, sp, i, 1, rib_t, rib_len);
            add_rib(m, sp, i, -1, rib_t, rib_len);
        }
        if (i == 23 && sp->transitional == SM_PHANTOM_TRANS_SACRALISED_L5 &&
            sp->level_last == SM_PHANTOM_LEVEL_S1)
            add_sacralisation(m, sp);
        add_canal_piece(m, sp, i, i == f, i == l);
    }
    if (m->oom) {
        sm_error_set(error, SM_ERR_NOMEM, "phantom: out of memory");
        return false;
    }
    for (size_t i = 0; i < m->n_objs; i++) {
        Obj *o = &m->objs[i];
        obj_world_bounds(o);
        o->ia2 = o->a > 0 ? 1.0 / (o->a * o->a) : 0;
        o->ib2 = o->b > 0 ? 1.0 / (o->b * o->b) : 0;
        o->ic2 = o->c > 0 ? 1.0 / (o->c * o->c) : 0;
    }
    /* lesions need the finished bone objects (bounds set) to clip to; metastases first,
     * bone islands last so they stay visible */
    for (int pass = 0; pass < 2; pass++)
        for (int i = f; i <= l; i++)
            for (size_t k = 0; k < sp->vertebra[i].n_lesions; k++) {
                bool island = sp->vertebra[i].lesion[k].type == SM_PHANTOM_LESION_BONE_ISLAND;
                if (i > 0 && island == (pass == 1) && !add_lesion(m, sp, i, k)) {
                    sm_error_set(error, SM_ERR_NOMEM, "phantom: out of memory");
                    return false;
                }
            }
    if (m->oom) {
        sm_error_set(error, SM_ERR_NOMEM, "phantom: out of memory");
        return false;
    }
    for (size_t i = 0; i < m->n_objs; i++)
        m->objs[i].bb[0] = (long)i;
    qsort(m->objs, m->n_objs, sizeof *m->objs, cmp_layer);
    return true;
}

static void model_free(Model *m)
{
    free(m->lesions);
    free(m->objs);
    free(m->rows);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ grid geometry */

static void grid_geometry(const SmPhantomSpec *sp, const Model *m, size_t dims[3],
                          double dir[3][3], double spacing[3], double origin[3])
{
    /* dir[r][c]: column c = direction of index axis c (volume convention) */
    double base[3][3];
    bool ffs = strcmp(sp->patient_position, "FFS") == 0 && !sp->ffs_standard_axes;
    double ci[3] = {ffs ? -1.0 : 1.0, 0, 0}, cj[3] = {0, 1, 0}, ck[3] = {0, 0, ffs ? 1.0 : -1.0};
    for (int r = 0; r < 3; r++) {
        base[r][0] = ci[r];
        base[r][1] = cj[r];
        base[r][2] = ck[r];
    }
    double th = sp->oblique_deg * M_PI / 180.0, c = cos(th), s = sin(th);
    double R[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    int a = sp->oblique_axis, b1 = (a + 1) % 3, b2 = (a + 2) % 3;
    R[b1][b1] = c;
    R[b1][b2] = -s;
    R[b2][b1] = s;
    R[b2][b2] = c;
    for (int r = 0; r < 3; r++)
        for (int q = 0; q < 3; q++)
            dir[r][q] = R[r][0] * base[0][q] + R[r][1] * base[1][q] + R[r][2] * base[2][q];
    spacing[0] = spacing[1] = sp->pixel_mm;
    spacing[2] = sp->slice_mm;
    dims[0] = sp->dims[0];
    dims[1] = sp->dims[1];
    /* extent of the requested vertebrae (labelled objects) along each index axis */
    double lo[3] = {1e30, 1e30, 1e30}, hi[3] = {-1e30, -1e30, -1e30};
    double csum[3] = {0, 0, 0};
    int nc = 0;
    for (size_t i = 0; i < m->n_objs; i++) {
        const Obj *o = &m->objs[i];
        if (o->label == 0)
            continue;
        for (int cc = 0; cc < 8; cc++) {
            double p[3] = {(cc & 1) ? o->wmax[0] : o->wmin[0], (cc & 2) ? o->wmax[1] : o->wmin[1],
                           (cc & 4) ? o->wmax[2] : o->wmin[2]};
            for (int q = 0; q < 3; q++) {
                double t = p[0] * dir[0][q] + p[1] * dir[1][q] + p[2] * dir[2][q];
                lo[q] = fmin(lo[q], t);
                hi[q] = fmax(hi[q], t);
            }
        }
    }
    for (int l = sp->level_first; l <= sp->level_last; l++) {
        for (int d = 0; d < 3; d++)
            csum[d] += m->vf[l].o[d];
        nc++;
    }
    double centre[3];
    if (sp->fov_center_set) {
        memcpy(centre, sp->fov_center, sizeof centre);
    } else {
        centre[0] = csum[0] / nc;
        centre[1] = csum[1] / nc - 12.0;
        /* along the slice axis: the middle of the levels' extent */
        double tk = 0.5 * (lo[2] + hi[2]);
        double cur = centre[0] * dir[0][2] + centre[1] * dir[1][2] + (csum[2] / nc) * dir[2][2];
        centre[2] = csum[2] / nc;
        /* a fraction of a voxel off the anatomy's round numbers, so endplates and other
         * planes do not fall exactly on rows of voxel centres (which biases label maps) */
        double shift[3] = {0.3183 * spacing[0], 0.3183 * spacing[1], 0.3183 * spacing[2]};
        for (int d = 0; d < 3; d++)
            centre[d] += (tk - cur) * dir[d][2] + shift[0] * dir[d][0] + shift[1] * dir[d][1] +
                         shift[2] * dir[d][2];
    }
    if (sp->dims[2] > 0) {
        dims[2] = sp->dims[2];
    } else {
        double ext = hi[2] - lo[2] + 6.0;
        dims[2] = (size_t)ceil(ext / sp->slice_mm) + 1;
        if (dims[2] < 8)
            dims[2] = 8;
    }
    for (int d = 0; d < 3; d++) {
        origin[d] = centre[d];
        for (int q = 0; q < 3; q++)
            origin[d] -= dir[d][q] * spacing[q] * 0.5 * (double)(dims[q] - 1);
    }
}

/* ------------------------------------------------------------------ rasterisation */

typedef struct Raster {
    const Model *m;
    const SmPhantomSpec *sp;
    double aff[4][4];
    size_t nx, ny, nz;
    double w, inv_w;
    uint64_t tex_seed, noise_seed;
} Raster;

static void raster_slice(const Raster *R, size_t k, float *buf, int16_t *ct, uint8_t *lab,
                         uint8_t *sub, uint8_t *les)
{
    const Model *m = R->m;
    size_t nx = R->nx, ny = R->ny;
    double a0[3] = {R->aff[0][0], R->aff[1][0], R->aff[2][0]};
    double a1[3] = {R->aff[0][1], R->aff[1][1], R->aff[2][1]};
    double a2[3] = {R->aff[0][2], R->aff[1][2], R->aff[2][2]};
    double o[3] = {R->aff[0][3], R->aff[1][3], R->aff[2][3]};
    double kk = (double)k;
    for (size_t j = 0; j < ny; j++) {
        double pr[3];
        for (int d = 0; d < 3; d++)
            pr[d] = o[d] + (double)j * a1[d] + kk * a2[d];
        for (size_t i = 0; i < nx; i++) {
            double p[3] = {pr[0] + (double)i * a0[0], pr[1] + (double)i * a0[1],
                           pr[2] + (double)i * a0[2]};
            buf[j * nx + i] = background(m, R->sp, p, R->inv_w);
            lab[j * nx + i] = 0;
            sub[j * nx + i] = 0;
            les[j * nx + i] = 0;
        }
    }
    long kl = (long)k;
    for (size_t n = 0; n < m->n_objs; n++) {
        const Obj *ob = &m->objs[n];
        if (kl < ob->bb[4] || kl > ob->bb[5])
            continue;
        /* local coordinates are affine in (i, j): precompute the increments */
        double la0[3], la1[3], lorg[3], q[3];
        for (int d = 0; d < 3; d++)
            q[d] = o[d] + kk * a2[d] - ob->f.o[d];
        for (int d = 0; d < 3; d++) {
            la0[d] = dot3(a0, ob->f.ax[d]);
            la1[d] = dot3(a1, ob->f.ax[d]);
            lorg[d] = dot3(q, ob->f.ax[d]);
        }
        double e0 = ob->ext[0] + R->w, e1 = ob->ext[1] + R->w, e2 = ob->ext[2] + R->w;
        bool capsule = ob->type == OBJ_CAPSULE;
        for (long j = ob->bb[2]; j <= ob->bb[3]; j++) {
            for (long i = ob->bb[0]; i <= ob->bb[1]; i++) {
                double l[3];
                for (int d = 0; d < 3; d++)
                    l[d] = lorg[d] + (double)i * la0[d] + (double)j * la1[d];
                if (!capsule && (fabs(l[0]) > e0 || fabs(l[1]) > e1 || fabs(l[2]) > e2))
                    continue;
                size_t idx = (size_t)j * nx + (size_t)i;
                if (ob->type == OBJ_LESION) {
                    /* values only: lesion voxels keep their body / posterolateral labels */
                    const Lesion *ls = &m->lesions[ob->lesion];
                    if (lab[idx] != 0 && lab[idx] != ls->label)
                        continue; /* another vertebra's bone (e.g. a dislocated facet) */
                    double p[3];
                    for (int d = 0; d < 3; d++)
                        p[d] = o[d] + (double)i * a0[d] + (double)j * a1[d] + kk * a2[d];
                    /* the body part stays in the body, the extension in the posterolateral
                     * structures (their grown clips must not spill into each other) */
                    double db, de, dl;
                    lesion_parts(ls, p, 0.5 * R->w, &db, &de);
                    if (lab[idx] == 0 || sub[idx] == SM_PHANTOM_SUB_BODY)
                        dl = fmin(db, de);
                    else if (sub[idx] == SM_PHANTOM_SUB_POSTEROLATERAL_LEFT ||
                             sub[idx] == SM_PHANTOM_SUB_POSTEROLATERAL_RIGHT)
                        dl = de;
                    else
                        continue;
                    double al = 0.5 - dl * R->inv_w;
                    if (al <= 0)
                        continue;
                    double hu = ls->hu;
                    if (ls->texture > 0)
                        hu += ls->texture *
                              value_noise(R->tex_seed ^ 0x5A5A, p[0] * 0.5, p[1] * 0.5, p[2] * 0.5);
                    buf[idx] += (float)((al > 1 ? 1 : al) * (hu - buf[idx]));
                    if (dl <= 0 && lab[idx] == ls->label)
                        les[idx] = (uint8_t)ls->code;
                    continue;
                }
                double dist = obj_sdf_local(ob, l, 0.5 * R->w);
                double a = 0.5 - dist * R->inv_w;
                if (a <= 0)
                    continue;
                if (a > 1)
                    a = 1;
                double hu = ob->hu;
                if (ob->texture > 0) {
                    double p[3];
                    for (int d = 0; d < 3; d++)
                        p[d] = o[d] + (double)i * a0[d] + (double)j * a1[d] + kk * a2[d];
                    hu += ob->texture *
                          value_noise(R->tex_seed, p[0] * 0.7, p[1] * 0.7, p[2] * 0.7);
                }
                buf[idx] += (float)(a * (hu - buf[idx]));
                if (dist <= 0) {
                    lab[idx] = (uint8_t)ob->label;
                    sub[idx] = (uint8_t)ob->sub;
                }
            }
        }
    }
    /* a lesion voxel is one that ends up in this vertebra's bone (not painted over by a
     * canal, rib or another structure afterwards) */
    for (size_t idx = 0; idx < nx * ny; idx++)
        if (les[idx] && (lab[idx] == 0 || sub[idx] < SM_PHANTOM_SUB_BODY ||
                         sub[idx] > SM_PHANTOM_SUB_POSTEROLATERAL_RIGHT))
            les[idx] = 0;
    double sigma = R->sp->noise_sigma_hu;
    size_t base = k * nx * ny;
    for (size_t idx = 0; idx < nx * ny; idx++) {
        double v = buf[idx];
        if (sigma > 0)
            v += sigma * gauss_from_hash(splitmix64(R->noise_seed ^ (uint64_t)(base + idx) *
                                                                        0x9E3779B97F4A7C15ULL));
        v = floor(v + 0.5);
        if (v < -1024)
            v = -1024;
        if (v > 3071)
            v = 3071;
        ct[idx] = (int16_t)v;
    }
}

/* ------------------------------------------------------------------ truth */

/* Which object paints point p last (inside): returns its index or -1. */
static long owner_at(const Model *m, const size_t *cand, size_t nc, const double p[3])
{
    long own = -1;
    for (size_t c = 0; c < nc; c++) {
        const Obj *o = &m->objs[cand[c]];
        if (p[0] < o->wmin[0] || p[0] > o->wmax[0] || p[1] < o->wmin[1] || p[1] > o->wmax[1] ||
            p[2] < o->wmin[2] || p[2] > o->wmax[2])
            continue;
        double l[3];
        frame_local(&o->f, p, l);
        if (obj_sdf_local(o, l, 0.0) <= 0)
            own = (long)cand[c];
    }
    return own;
}

static void vertebra_truth(const Model *m, const SmPhantomSpec *sp, int l, size_t *cand,
                           SmPhantomVertebra *v)
{
    memset(v, 0, sizeof *v);
    v->level = l;
    snprintf(v->name, sizeof v->name, "%s", sm_phantom_verse_name(sm_phantom_verse_id(sp, l)));
    v->verse_id = sm_phantom_verse_id(sp, l);
    v->cancellous_hu = cancellous_of(sp, l);
    const Frame *F = &m->vf[l];
    const LevelShape *s = &m->shape[l];
    memcpy(v->axis_superior, F->ax[2], sizeof v->axis_superior);
    memcpy(v->axis_posterior, F->ax[1], sizeof v->axis_posterior);
    double cc[3] = {0, s->yc, 0};
    frame_point(F, cc, v->canal_center);
    v->canal_area_mm2 = M_PI * s->cw / 2 * s->ca / 2;
    v->has_body = l != 0;
    v->genant_grade = -1;
    if (!v->has_body) {
        v->expected_anterior_mm = v->expected_middle_mm = v->expected_posterior_mm = NAN;
        v->expected_height_mm = v->height_loss_pct = NAN;
        v->body_centroid[0] = v->body_centroid[1] = v->body_centroid[2] = NAN;
        v->height_anterior_mm = v->height_middle_mm = v->height_posterior_mm = NAN;
        for (int d = 0; d < 3; d++)
            v->endplate_superior[d] = v->endplate_inferior[d] = NAN;
        v->ap_depth_mm = v->width_mm = v->body_volume_mm3 = NAN;
        return;
    }
    double depth = 2 * s->b - s->notch;
    double yq[3];
    height_positions(s, yq);
    v->height_anterior_mm = body_height_at(s, yq[0]);
    v->height_middle_mm = body_height_at(s, yq[1]);
    v->height_posterior_mm = body_height_at(s, yq[2]);
    {
        LevelShape s0 = level_shape_of(sp, l, true);
        double h0[3], h[3] = {v->height_anterior_mm, v->height_middle_mm, v->height_posterior_mm};
        for (int q = 0; q < 3; q++)
            h0[q] = body_height_at(&s0, yq[q]);
        v->expected_anterior_mm = h0[0];
        v->expected_middle_mm = h0[1];
        v->expected_posterior_mm = h0[2];
        int worst = 0;
        double loss = -1e30;
        for (int q = 0; q < 3; q++) {
            double lq = 100.0 * (1.0 - h[q] / h0[q]);
            if (lq > loss + 1e-9) {
                loss = lq;
                worst = q;
            }
        }
        v->height_loss_pct = round(loss * 1e6) / 1e6; /* 40 % stays 40 %, not 40.0000001 */
        v->expected_height_mm = h0[worst];
        v->genant_grade = sm_genant_grade(v->height_loss_pct);
        int ct = sp->vertebra[l].collapse_type;
        if (ct == SM_PHANTOM_COLLAPSE_NONE && sp->vertebra[l].height_scale < 1.0)
            ct = SM_PHANTOM_COLLAPSE_CRUSH; /* height_scale is a uniform collapse */
        v->collapse_type = ct;
        v->deformity = v->genant_grade >= 1 ? ct : SM_PHANTOM_COLLAPSE_NONE;
    }
    double es[3] = {0, 0, s->hm / 2}, ei[3] = {0, 0, -s->hm / 2};
    frame_point(F, es, v->endplate_superior);
    frame_point(F, ei, v->endplate_inferior);
    v->ap_depth_mm = depth;
    v->width_mm = 2 * s->a;
    /* centroid and volume of the body subregion, integrated on a fine grid */
    double lo[3] = {1e30, 1e30, 1e30}, hi[3] = {-1e30, -1e30, -1e30};
    for (size_t i = 0; i < m->n_objs; i++) {
        const Obj *o = &m->objs[i];
        if (o->vert != l || o->sub != SM_PHANTOM_SUB_BODY || o->label == 0)
            continue;
        for (int d = 0; d < 3; d++) {
            lo[d] = fmin(lo[d], o->wmin[d]);
            hi[d] = fmax(hi[d], o->wmax[d]);
        }
    }
    size_t nc = 0;
    for (size_t i = 0; i < m->n_objs; i++) {
        const Obj *o = &m->objs[i];
        /* objects painted before the bodies cannot own a body point */
        bool overlap = o->layer >= LAYER_BODY_OUT && o->type != OBJ_LESION;
        for (int d = 0; d < 3; d++)
            if (o->wmax[d] < lo[d] || o->wmin[d] > hi[d])
                overlap = false;
        if (overlap)
            cand[nc++] = i;
    }
    const double step = 0.6;
    double sum[3] = {0, 0, 0};
    double count = 0;
    int lab = sm_phantom_verse_id(sp, l);
    for (double z = lo[2] + step / 2; z < hi[2]; z += step)
        for (double y = lo[1] + step / 2; y < hi[1]; y += step)
            for (double x = lo[0] + step / 2; x < hi[0]; x += step) {
                double p[3] = {x, y, z};
                long own = owner_at(m, cand, nc, p);
                if (own >= 0 && m->objs[own].label == lab &&
                    m->objs[own].sub == SM_PHANTOM_SUB_BODY) {
                    sum[0] += x;
                    sum[1] += y;
                    sum[2] += z;
                    count += 1;
                }
            }
    for (int d = 0; d < 3; d++)
        v->body_centroid[d] = count > 0 ? sum[d] / count : NAN;
    v->body_volume_mm3 = count * step * step * step;
}

/* Segmental angles of level i against level i+1, in the lower vertebra's frame (deg):
 * kyphosis + when the upper axis leans anteriorly, scoliosis + when it leans to the left. */
static void segment_angles(const Model *m, int i, double *kyph, double *scol)
{
    const double *u = m->vf[i].ax[2];
    const Frame *L = &m->vf[i + 1];
    *kyph = atan2(-dot3(u, L->ax[1]), dot3(u, L->ax[2])) * 180.0 / M_PI;
    *scol = atan2(dot3(u, L->ax[0]), dot3(u, L->ax[2])) * 180.0 / M_PI;
}

/* Endplate of a body at local AP position y on its midline (x = 0): local z of the
 * superior (top > 0) or inferior endplate, with the wedge tilt and the biconcave
 * depression (each endplate takes half of body_height_at's depression). */
static double endplate_z(const LevelShape *s, double y, int top)
{
    double k = s->wedge / (4 * s->b), z = s->hm / 2 - k * y, dep = 0;
    if (s->bowl_d > 0) {
        double v = (y - s->bowl_cy) / s->bowl_ry;
        if (v * v < 1)
            dep = s->bowl_d * (1 - v * v) * (1 - v * v);
    }
    return top > 0 ? z - dep : -(z - dep);
}

/* Translation of level i on level i + 1 by the documented definition (docs/phantom.md,
 * docs/metrics.md "Alignment"): the offset between the two posterior wall lines (each in
 * its vertebra's mid-sagittal plane, at the midline posterior wall y = b - notch, parallel
 * to its axis) where they cross the disc mid-plane. That plane passes through the midpoint
 * of the two facing endplate points at 85 % of the AP depth from the anterior wall (the
 * posterior-height positions, next to the posterior corners) and its normal is the
 * bisector of the two superior axes. Sagittal part along the mean anterior axis (made
 * perpendicular to the normal; + = the upper vertebra anterior), coronal part along
 * normal x anterior (+ = patient left). Exact geometry of the model, no voxels. */
static void posterior_wall_offset(const Model *m, int i, double *sag, double *cor)
{
    const Frame *F[2] = {&m->vf[i], &m->vf[i + 1]};
    const LevelShape *S[2] = {&m->shape[i], &m->shape[i + 1]};
    double ep[2][3], wp[2][3];
    for (int k = 0; k < 2; k++) {
        double yq[3];
        height_positions(S[k], yq);
        double le[3] = {0, yq[2], endplate_z(S[k], yq[2], k == 0 ? -1 : 1)};
        double lw[3] = {0, S[k]->b - S[k]->notch, 0};
        frame_point(F[k], le, ep[k]);
        frame_point(F[k], lw, wp[k]);
    }
    double q[3], nrm[3], am[3], lm[3], x[2][3];
    for (int d = 0; d < 3; d++) {
        q[d] = 0.5 * (ep[0][d] + ep[1][d]);
        nrm[d] = F[0]->ax[2][d] + F[1]->ax[2][d];
        am[d] = -(F[0]->ax[1][d] + F[1]->ax[1][d]); /* ax[1] is posterior */
    }
    norm3(nrm);
    double dd = dot3(am, nrm);
    for (int d = 0; d < 3; d++)
        am[d] -= dd * nrm[d];
    norm3(am);
    cross3(nrm, am, lm);
    for (int k = 0; k < 2; k++) {
        const double *dir = F[k]->ax[2];
        double w[3] = {q[0] - wp[k][0], q[1] - wp[k][1], q[2] - wp[k][2]};
        double t = dot3(w, nrm) / dot3(dir, nrm);
        for (int d = 0; d < 3; d++)
            x[k][d] = wp[k][d] + t * dir[d];
    }
    double dv[3] = {x[0][0] - x[1][0], x[0][1] - x[1][1], x[0][2] - x[1][2]};
    *sag = dot3(dv, am);
    *cor = dot3(dv, lm);
}

/* Lesion fractions measured on the rasterised maps, alignment with the vertebra below and
 * the SINS components expected for each vertebra (serial; integer counts). */
static void pathology_truth(const Model *m, const SmPhantomSpec *sp, SmPhantom *ph)
{
    int index_of[256];
    for (int i = 0; i < 256; i++)
        index_of[i] = -1;
    for (size_t v = 0; v < ph->n_vertebrae; v++)
        index_of[ph->vertebrae[v].verse_id & 255] = (int)v;
    const uint8_t *lab = ph->labels->data, *sub = ph->subregions->data, *les = ph->lesions->data;
    size_t n = ph->ct->dims[0] * ph->ct->dims[1] * ph->ct->dims[2];
    for (size_t idx = 0; idx < n; idx++) {
        int vi = index_of[lab[idx]];
        if (vi < 0 || lab[idx] == 0)
            continue;
        SmPhantomVertebra *v = &ph->vertebrae[vi];
        int c = les[idx];
        if (sub[idx] == SM_PHANTOM_SUB_BODY) {
            v->body_voxels++;
            v->lytic_voxels += c == SM_PHANTOM_LESMAP_LYTIC;
            v->blastic_voxels += c == SM_PHANTOM_LESMAP_BLASTIC;
            v->island_voxels += c == SM_PHANTOM_LESMAP_ISLAND;
        } else if (sub[idx] == SM_PHANTOM_SUB_POSTEROLATERAL_LEFT ||
                   sub[idx] == SM_PHANTOM_SUB_POSTEROLATERAL_RIGHT) {
            int side = sub[idx] == SM_PHANTOM_SUB_POSTEROLATERAL_LEFT ? 0 : 1;
            v->pl_voxels[side]++;
            v->pl_lesion_voxels[side] +=
                c == SM_PHANTOM_LESMAP_LYTIC || c == SM_PHANTOM_LESMAP_BLASTIC;
        }
    }
    Model ref; /* the same spine without focal angles and translations */
    memset(&ref, 0, sizeof ref);
    build_chain(&ref, sp, false);
    for (size_t vi = 0; vi < ph->n_vertebrae; vi++) {
        SmPhantomVertebra *v = &ph->vertebrae[vi];
        int l = v->level;
        double nb = (double)v->body_voxels;
        v->lytic_fraction = nb > 0 ? (double)v->lytic_voxels / nb : NAN;
        v->blastic_fraction = nb > 0 ? (double)v->blastic_voxels / nb : NAN;
        v->island_fraction = nb > 0 ? (double)v->island_voxels / nb : NAN;
        v->body_involvement_fraction =
            nb > 0 ? (double)(v->lytic_voxels + v->blastic_voxels) / nb : NAN;
        v->posterolateral = SM_PHANTOM_SIDE_NONE;
        for (int side = 0; side < 2; side++) {
            v->pl_lesion_fraction[side] =
                v->pl_voxels[side] ? (double)v->pl_lesion_voxels[side] / (double)v->pl_voxels[side]
                                   : 0.0;
            if (v->pl_lesion_fraction[side] >= 0.2)
                v->posterolateral |= side == 0 ? SM_PHANTOM_SIDE_LEFT : SM_PHANTOM_SIDE_RIGHT;
        }
        bool ly = v->lytic_voxels > 0, bl = v->blastic_voxels > 0;
        v->lesion_class = ly && bl ? SM_SINS_LESION_MIXED
                        : ly       ? SM_SINS_LESION_LYTIC
                        : bl       ? SM_SINS_LESION_BLASTIC
                                   : SM_SINS_LESION_NONE;
        v->has_below = l < sp->level_last && l < SM_PHANTOM_LEVEL_S1;
        if (v->has_below) {
            const double *t = sp->vertebra[l].translation_mm;
            double k0, s0;
            v->translation_lateral_mm = t[0];
            v->translation_ap_mm = t[1];
            double sag, cor;
            posterior_wall_offset(m, l, &sag, &cor);
            v->translation_mm = hypot(sag, cor);
            segment_angles(m, l, &v->kyphosis_deg, &v->scoliosis_deg);
            segment_angles(&ref, l, &k0, &s0);
            v->focal_kyphosis_deg = v->kyphosis_deg - k0;
            v->focal_scoliosis_deg = v->scoliosis_deg - s0;
            v->alignment_class = sm_sins_alignment_class(v->translation_mm, v->focal_kyphosis_deg,
                                                         v->focal_scoliosis_deg);
        } else {
            v->translation_mm = v->translation_lateral_mm = v->translation_ap_mm = NAN;
            v->kyphosis_deg = v->scoliosis_deg = NAN;
            v->focal_kyphosis_deg = v->focal_scoliosis_deg = NAN;
            v->alignment_class = -1; /* no vertebra below in the field */
        }
        v->sins_location = sm_sins_location_points(v->verse_id);
        v->sins_lesion_quality = sm_sins_lesion_quality_points(v->lesion_class);
        v->sins_collapse = v->has_body ? sm_sins_collapse_points(v->height_loss_pct,
                                                                 v->body_involvement_fraction)
                                       : -1;
        v->sins_posterolateral = sm_sins_posterolateral_points(v->posterolateral);
    }
    /* SINS alignment of a vertebra: the worse of its segments above and below (a
     * translation or a focal deformity involves both vertebrae of the segment) */
    for (size_t vi = 0; vi < ph->n_vertebrae; vi++) {
        int pts = -1;
        int below = ph->vertebrae[vi].alignment_class;
        int above = vi > 0 ? ph->vertebrae[vi - 1].alignment_class : -1;
        int a = sm_sins_alignment_class_points(below), b = sm_sins_alignment_class_points(above);
        pts = a > b ? a : b;
        ph->vertebrae[vi].sins_alignment = pts;
    }
}

/* ------------------------------------------------------------------ public */

void sm_phantom_destroy(SmPhantom *ph)
{
    if (!ph)
        return;
    sm_volume_destroy(ph->ct);
    sm_volume_destroy(ph->labels);
    sm_volume_destroy(ph->subregions);
    sm_volume_destroy(ph->lesions);
    free(ph->vertebrae);
    free(ph);
}

static uint64_t mix_double(uint64_t h, double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return splitmix64(h ^ b);
}

/* Identity of a spec for UIDs: the same spec gives the same UIDs, different specs (not
 * only different seeds) give different ones. */
static uint64_t spec_hash(const SmPhantomSpec *s)
{
    uint64_t h = splitmix64(s->seed);
    h = splitmix64(h ^ (uint64_t)(s->level_first * 64 + s->level_last));
    for (int d = 0; d < 3; d++)
        h = splitmix64(h ^ (uint64_t)s->dims[d]);
    double v[] = {s->pixel_mm, s->slice_mm, s->oblique_deg, s->oblique_axis, s->noise_sigma_hu,
                  s->texture_hu, s->cervical_lordosis_deg, s->thoracic_kyphosis_deg,
                  s->lumbar_lordosis_deg, s->scoliosis_deg, s->scoliosis_apex, s->conus_level,
                  s->fov_center_set ? s->fov_center[0] : 1e9, s->fov_center[1], s->fov_center[2],
                  s->aorta, s->contrast, s->ffs_standard_axes, s->patient_position[0],
                  s->hu.cortical, s->hu.cancellous, s->hu.disc};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        h = mix_double(h, v[i]);
    h = mix_double(h, s->osteoporotic ? s->osteoporotic_hu : -1);
    if (s->transitional != SM_PHANTOM_TRANS_NONE) { /* absent: UIDs of older specs unchanged */
        h = mix_double(h, 1000.0 + s->transitional);
        h = mix_double(h, s->t12_rib_mm);
        h = mix_double(h, s->sacralised_side);
    }
    for (int l = 0; l < SM_PHANTOM_N_LEVELS; l++) {
        const SmPhantomVertebraSpec *vs = &s->vertebra[l];
        double c = vs->cancellous_hu;
        h = mix_double(h, isfinite(c) ? c : -1);
        h = mix_double(h, vs->height_scale);
        double pv[] = {vs->collapse_type, vs->collapse_pct, (double)vs->n_lesions,
                       vs->translation_mm[0], vs->translation_mm[1], vs->kyphosis_deg,
                       vs->scoliosis_deg};
        for (size_t i = 0; i < sizeof pv / sizeof pv[0]; i++)
            h = mix_double(h, pv[i]);
        for (size_t k = 0; k < vs->n_lesions && k < SM_PHANTOM_MAX_LESIONS; k++) {
            const SmPhantomLesionSpec *ls = &vs->lesion[k];
            double lv[] = {ls->type, ls->fraction, ls->center[0], ls->center[1], ls->center[2],
                           ls->extension, ls->cortical_breach, isfinite(ls->hu) ? ls->hu : -1e9,
                           ls->radius_mm, (double)ls->seed};
            for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++)
                h = mix_double(h, lv[i]);
        }
    }
    return h;
}

static void make_uid(char *out, size_t n, uint64_t seed, uint64_t salt)
{
    uint64_t a = splitmix64(seed * 0x2545F4914F6CDD1DULL ^ salt);
    uint64_t b = splitmix64(a ^ 0x5851F42D4C957F2DULL);
    snprintf(out, n, "2.25.%llu%llu", (unsigned long long)(a % 10000000000000000000ULL),
             (unsigned long long)(b % 100000000000000ULL));
}

bool sm_phantom_generate(SmError **error, const SmPhantomSpec *spec, SmPhantom **out)
{
    if (!sm_phantom_spec_validate(error, spec))
        return false;
    Model m;
    if (!model_build(error, spec, &m)) {
        model_free(&m);
        return false;
    }
    size_t dims[3];
    double dir[3][3], spacing[3], origin[3];
    grid_geometry(spec, &m, dims, dir, spacing, origin);
    SmPhantom *ph = calloc(1, sizeof *ph);
    if (!ph) {
        model_free(&m);
        sm_error_set(error, SM_ERR_NOMEM, "phantom: out of memory");
        return false;
    }
    ph->spec = *spec;
    ph->ct = sm_volume_create_uninit(error, dims, SM_VOXEL_I16);
    ph->labels = ph->ct ? sm_volume_create_uninit(error, dims, SM_VOXEL_U8) : NULL;
    ph->subregions = ph->labels ? sm_volume_create_uninit(error, dims, SM_VOXEL_U8) : NULL;
    ph->lesions = ph->subregions ? sm_volume_create_uninit(error, dims, SM_VOXEL_U8) : NULL;
    size_t nv = (size_t)(spec->level_last - spec->level_first + 1);
    ph->vertebrae = calloc(nv, sizeof *ph->vertebrae);
    int nth = sm_omp_threads();
    if (nth < 1)
        nth = 1;
    size_t slice = dims[0] * dims[1];
    float *scratch = NULL;
    size_t *cand = NULL;
    size_t nsc;
    if (ph->lesions && ph->vertebrae && sm_size_mul(slice, (size_t)nth, &nsc)) {
        scratch = malloc(nsc * sizeof *scratch);
        cand = malloc((size_t)nth * (m.n_objs + 1) * sizeof *cand);
    }
    if (!ph->lesions || !ph->vertebrae || !scratch || !cand) {
        sm_error_set(error, SM_ERR_NOMEM, "phantom: out of memory for %zux%zux%zu voxels",
                     dims[0], dims[1], dims[2]);
        free(scratch);
        free(cand);
        sm_phantom_destroy(ph);
        model_free(&m);
        return false;
    }
    SmVolume *vols[4] = {ph->ct, ph->labels, ph->subregions, ph->lesions};
    for (int v = 0; v < 4; v++) {
        sm_volume_set_geometry(vols[v], dir, spacing, origin);
        SmVolumeMeta *mt = &vols[v]->meta;
        memset(mt, 0, sizeof *mt);
        snprintf(mt->modality, sizeof mt->modality, "%s", v == 0 ? "CT" : "");
        snprintf(mt->source, sizeof mt->source, "phantom");
        snprintf(mt->patient_position, sizeof mt->patient_position, "%s", spec->patient_position);
        snprintf(mt->series_description, sizeof mt->series_description, "%s",
                 v == 0   ? spec->series_description
                 : v == 1 ? "phantom truth labels"
                 : v == 2 ? "phantom truth subregions"
                          : "phantom truth lesions");
        snprintf(mt->manufacturer, sizeof mt->manufacturer, "spinemets phantom");
        snprintf(mt->convolution_kernel, sizeof mt->convolution_kernel, "%s",
                 v == 0 ? "SYNTH" : "");
        snprintf(mt->contrast_agent, sizeof mt->contrast_agent, "%s",
                 spec->contrast ? "synthetic iodine" : "");
        snprintf(mt->body_part, sizeof mt->body_part, "SPINE");
        make_uid(mt->study_uid, sizeof mt->study_uid, spec_hash(spec), 1);
        make_uid(mt->series_uid, sizeof mt->series_uid, spec_hash(spec), 2 + (uint64_t)v);
        mt->slice_thickness_mm = spec->slice_mm;
        mt->kvp = v == 0 ? 120 : NAN;
        mt->gantry_tilt_deg = 0;
        mt->resampled = false;
        mt->is_hu = v == 0;
    }
    double inv[4][4];
    sm_mat4_affine_inverse(ph->ct->affine, inv);
    for (size_t i = 0; i < m.n_objs; i++)
        obj_index_bounds(&m.objs[i], inv, dims);
    Raster R;
    R.m = &m;
    R.sp = spec;
    memcpy(R.aff, ph->ct->affine, sizeof R.aff);
    R.nx = dims[0];
    R.ny = dims[1];
    R.nz = dims[2];
    R.w = cbrt(spacing[0] * spacing[1] * spacing[2]);
    R.inv_w = 1.0 / R.w;
    rows_compile(&m, spec, R.w);
    R.tex_seed = splitmix64(spec->seed ^ 0x7465787475726500ULL);
    R.noise_seed = splitmix64(spec->seed ^ 0x6E6F697365000000ULL);
    int16_t *ct = ph->ct->data;
    uint8_t *lab = ph->labels->data, *sub = ph->subregions->data, *les = ph->lesions->data;
    long nz = (long)dims[2];
#pragma omp parallel for default(none) shared(R, ct, lab, sub, les, scratch, nz, slice) \
    schedule(dynamic, 1)
    for (long k = 0; k < nz; k++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        size_t off = (size_t)k * slice;
        raster_slice(&R, (size_t)k, scratch + (size_t)tid * slice, ct + off, lab + off, sub + off,
                     les + off);
    }
    ph->n_vertebrae = nv;
    long nvl = (long)nv;
    size_t ncand = m.n_objs + 1;
    const Model *mp = &m;
    SmPhantomVertebra *verts = ph->vertebrae;
    int first = spec->level_first;
#pragma omp parallel for default(none) shared(mp, spec, cand, verts, nvl, ncand, first) \
    schedule(dynamic, 1)
    for (long v = 0; v < nvl; v++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        vertebra_truth(mp, spec, first + (int)v, cand + (size_t)tid * ncand, &verts[v]);
    }
    free(scratch);
    free(cand);
    pathology_truth(&m, spec, ph);
    model_free(&m);
    *out = ph;
    return true;
}
