/* Level labelling from anatomical anchors (sacrum, last and first rib-bearing vertebrae,
 * C2 under the skull, a user override), with transitional anatomy flagged and a
 * per-vertebra confidence with reasons. */
#include "segment_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const LEVEL_NAMES[29] = {
    NULL, "C1", "C2", "C3", "C4", "C5", "C6", "C7", "T1", "T2", "T3", "T4", "T5", "T6",
    "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "L6", "S1",
    "Co", "T13"};

const char *sm_seg_level_name(int verse_label)
{
    if (verse_label < 1 || verse_label > 28)
        return NULL;
    return LEVEL_NAMES[verse_label];
}

int sm_seg_level_from_name(const char *name)
{
    if (!name)
        return 0;
    if (!strcmp(name, "sacrum") || !strcmp(name, "S") || !strcmp(name, "S1"))
        return SM_VERSE_SACRUM;
    for (int l = 1; l <= 28; l++)
        if (!strcmp(name, LEVEL_NAMES[l]))
            return l;
    return 0;
}

/* Labels along the column: vertebra index i (0 = lowest) gets base - i, mapped so that
 * ids between T12 and L1 and beyond L5 stay VerSe ids. "base" is the label of index 0. */
static int label_of(int base, size_t i)
{
    return base - (int)i;
}

/* Bone of a pelvic component in the attachment shell of the vertebra above the sacrum, per
 * side (counted only over >= 12 mm of height, ribs.c): a fused transverse process is a bar
 * of >= ~10 x 10 mm crossing the 8 mm shell over >= 12 mm (>= ~1000 mm3; generated
 * fusions 1590-2500 mm3); less is contact (the real T11-S1 CT: 552 mm3 on one side). */
#define SACRALISED_MM3 1000.0
#define PELVIS_CONTACT_MM3 300.0

typedef struct Anchor {
    const char *what;
    int base;       /* label of the lowest valid vertebra implied by this anchor */
    size_t at;      /* index (in the valid list) of the anchored vertebra */
} Anchor;

/* A rib of >= 4 cm reaches >= 55 mm from the canal (ribs.c RIB_REACH_MM); it is seen as one
 * only where the field of view extends that far beside the vertebra, with a margin for
 * the rib's descent and its thin, partial-volume end (narrow fields of view cut ribs short
 * or break them up at their edge: pieces reaching 49-53 mm beside T3-T6 on a 124 mm field;
 * beside T5-T7 on a 122 mm field no piece crossed the shell at all). */
#define RIB_ROOM_MM 65.0

/* Lateral extent of the field of view beside a vertebra, from its body axis: the larger
 * side's smallest extent over a few rows (body centre and 10 / 20 mm behind it, where
 * ribs leave the column) and slices (the centre and +-5 mm), in mm. Bone masks cannot
 * show a rib where the grid holds no CT (SEG_OUTSIDE) or ends. */
static double lateral_room(const SegGrid *grid, const SegVert *vt)
{
    if (!grid || !grid->hu)
        return INFINITY;
    const size_t nx = grid->dims[0], ny = grid->dims[1], nz = grid->dims[2];
    const double g = grid->g;
    double side_min[2] = {INFINITY, INFINITY};
    for (int dz = -1; dz <= 1; dz++)
        for (int row = 0; row < 3; row++) {
            double y = vt->centre[1] + 10.0 * row, z = vt->centre[2] + 5.0 * dz;
            long j = lround((y - grid->origin[1]) / g), k = lround((z - grid->origin[2]) / g);
            long i0 = lround((vt->centre[0] - grid->origin[0]) / g);
            if (j < 0 || k < 0 || j >= (long)ny || k >= (long)nz || i0 < 0 || i0 >= (long)nx)
                continue;
            for (int side = 0; side < 2; side++) {
                long step = side == 0 ? 1 : -1; /* 0: patient left (+x) */
                long i = i0;
                while (i + step >= 0 && i + step < (long)nx &&
                       grid->hu[seg_idx(grid->dims, (size_t)(i + step), (size_t)j, (size_t)k)] !=
                           SEG_OUTSIDE &&
                       g * (double)labs(i + step - i0) <= 2.0 * RIB_ROOM_MM)
                    i += step;
                double room = g * (double)labs(i - i0);
                if (room < side_min[side])
                    side_min[side] = room;
            }
        }
    return fmax(side_min[0], side_min[1]);
}

/* Segment a lies strictly between the lowest and highest rib-bearing segments and shows no
 * rib crossing, or more than two. */
static bool rib_doubtful(const SegVert *verts, const size_t *vi, long a, long lowest_rib,
                         long highest_rib)
{
    if (lowest_rib < 0 || a <= lowest_rib || a >= highest_rib)
        return false;
    int r = verts[vi[a]].rib_runs;
    return r == 0 || r > 2;
}

bool sm_seg_levels_assign(SmError **error, SegVert *verts, size_t n_verts,
                          const SmSegOptions *opt, const SegGrid *grid, SmStrList *anchors,
                          SmStrList *notes)
{
    /* valid vertebrae, lowest first; all sacral segments form one "S1" (sacrum) */
    size_t *vi = malloc((n_verts ? n_verts : 1) * sizeof *vi);
    if (!vi) {
        sm_error_set(error, SM_ERR_NOMEM, "level labelling: out of memory");
        return false;
    }
    size_t nv = 0;
    long s1 = -1;  /* index in vi of the sacrum */
    long sacralised = -1; /* index in vi of a vertebra fused to (or touching) the sacrum */
    double sacral_cap = 1.0; /* its confidence cap */
    char sacbuf[160];
    for (size_t s = 0; s < n_verts; s++) {
        if (verts[s].verse < 0)
            continue; /* rejected segment */
        vi[nv++] = s;
    }
    {
        long seg = sm_seg_sacrum_pick(verts, n_verts, notes);
        for (size_t a = 0; a < nv && seg >= 0; a++)
            if ((long)vi[a] == seg)
                s1 = (long)a;
        /* ribs on it or on the two vertebrae above it: that was a rib-connected thoracic
         * segment (a first rib curving forward beside T1 looks like an ala on one slice) */
        for (size_t a = (size_t)s1; s1 >= 0 && a < nv && a <= (size_t)s1 + 2; a++)
            if (verts[vi[a]].rib_left || verts[vi[a]].rib_right) {
                sm_strlist_add(notes, "lateral bone at z %.0f mm spreads like a sacrum but "
                               "ribs lie just above: not used as an anchor",
                               verts[vi[s1]].centre[2]);
                s1 = -1;
            }
        if (s1 >= 0 && (long)vi[s1] != seg)
            s1 = -1;
        if (s1 >= 0 && s1 + 1 < (long)nv) {
            SegVert *up = &verts[vi[s1 + 1]];
            /* a transverse process joined to the sacral ala (bone of the pelvic component
             * in this vertebra's attachment shell; a free process is a separate component:
             * 0 mm3 on the normal phantoms, ~2000 mm3 per fused side) */
            bool fl = up->pelvis_join_mm3[0] >= SACRALISED_MM3;
            bool fr = up->pelvis_join_mm3[1] >= SACRALISED_MM3;
            bool cl = up->pelvis_join_mm3[0] >= PELVIS_CONTACT_MM3;
            bool cr = up->pelvis_join_mm3[1] >= PELVIS_CONTACT_MM3;
            if (fl || fr) {
                snprintf(sacbuf, sizeof sacbuf, "sacralisation: transverse process fused to the "
                         "sacral ala on the %s (transitional lumbosacral vertebra)",
                         fl && fr ? "left and right" : fl ? "left" : "right");
                sm_strlist_add(notes, "vertebra above the sacrum: %s (%.0f / %.0f mm3 of "
                               "pelvic bone in its attachment shell, left / right)", sacbuf,
                               up->pelvis_join_mm3[0], up->pelvis_join_mm3[1]);
                sacralised = s1 + 1;
                sacral_cap = 0.5;
            } else if (cl || cr) {
                snprintf(sacbuf, sizeof sacbuf, "lateral bone joins the pelvis on the %s: "
                         "transverse process contact with the sacrum or ilium, possible "
                         "sacralisation", cl && cr ? "left and right" : cl ? "left" : "right");
                sm_strlist_add(notes, "vertebra above the sacrum: %s (%.0f / %.0f mm3, left / "
                               "right)", sacbuf, up->pelvis_join_mm3[0], up->pelvis_join_mm3[1]);
                sacralised = s1 + 1;
                sacral_cap = 0.7;
            } else if (up->touches_pelvis) {
                snprintf(sacbuf, sizeof sacbuf, "touches the pelvis: possible sacralisation "
                         "(transitional vertebra)");
                sm_strlist_add(notes, "vertebra above the sacrum touches the pelvis: lumbar "
                               "vertebra with transverse process contact or sacralisation");
                sacralised = s1 + 1;
                sacral_cap = 0.5;
            }
        }
    }
    if (s1 > 0) {
        /* segments below S1 are sacrum/coccyx too: mark them merged (verse 26 later) */
        for (long a = 0; a < s1; a++)
            verts[vi[a]].verse = SM_VERSE_SACRUM;
    }
    Anchor anc[8];
    int na = 0;
    if (opt && opt->has_anchor) {
        int lvl = sm_seg_level_from_name(opt->anchor_level);
        long best = -1;
        double bestd = INFINITY;
        for (size_t a = 0; a < nv; a++) {
            const SegVert *vt = &verts[vi[a]];
            double d = fabs(vt->centre[2] - opt->anchor_z_mm);
            if (d < bestd) {
                bestd = d;
                best = (long)a;
            }
        }
        if (best >= 0 && lvl > 0) {
            int at_label = lvl == SM_VERSE_T13 ? SM_VERSE_T12 + 1 : lvl;
            anc[na++] = (Anchor){"user anchor", at_label + (int)best, (size_t)best};
        }
    }
    if (s1 >= 0)
        anc[na++] = (Anchor){"sacrum (S1 joined to the pelvis)", SM_VERSE_L5 + (int)s1 + 1,
                             (size_t)s1};
    /* T12: the lowest rib-bearing vertebra, if a rib-free, non-sacral, whole vertebra lies
     * below it. T1: the highest rib-bearing vertebra, if a rib-free whole vertebra lies
     * above it. A rib missed in between cannot fake either. */
    long t12 = -1, t1 = -1, lowest_rib = -1, highest_rib = -1;
    for (size_t a = 0; a < nv; a++)
        if (verts[vi[a]].rib_left || verts[vi[a]].rib_right) {
            if (lowest_rib < 0)
                lowest_rib = (long)a;
            highest_rib = (long)a;
        }
    if (lowest_rib > 0) {
        const SegVert *below = &verts[vi[lowest_rib - 1]];
        /* no rib may cross the attachment shell below the candidate (a rib whose head
         * fell into a dropped sliver or a missed segment would fake a rib-free vertebra) */
        bool rib_below = false;
        for (size_t s = 0; s < vi[lowest_rib]; s++)
            rib_below |= verts[s].rib_runs > 0;
        if (rib_below)
            sm_strlist_add(notes, "a rib crosses below the lowest rib-bearing vertebra: "
                           "no T12 anchor");
        /* T11 carries ribs too: a whole vertebra just above the candidate with no rib
         * crossing at all means ribs are being missed here (a thoracic field whose
         * posterior ribs drop out of the bone mask), not that the ribs end. Rib heads
         * beside its body count as ribs: its ribs leave the field before the shell (an
         * oblique field's top, random sweep 3300733/3) */
        bool above_bare = false;
        if (lowest_rib + 1 < (long)nv) {
            const SegVert *up = &verts[vi[lowest_rib + 1]];
            above_bare = !up->partial && up->rib_runs == 0 && !up->rib_left && !up->rib_right &&
                         !up->rib_heads;
        }
        if (above_bare)
            sm_strlist_add(notes, "the vertebra above the lowest rib-bearing one shows no rib: "
                           "no T12 anchor");
        /* the vertebra below is rib-free only if a rib could be seen beside it: a narrow
         * field of view (a targeted spine reconstruction) cuts ribs short there, leaving
         * pieces of lateral bone that reach beyond a transverse process but not 55 mm. In
         * such a field the vertebra below must show no lateral bone beyond a transverse
         * process at all (rib_reach_mm stays 0: L1 under T12 on 120-130 mm fields). */
        double room = lateral_room(grid, below);
        bool no_room = room < RIB_ROOM_MM && (below->rib_reach_mm > 0 || below->rib_runs > 0);
        if (no_room)
            sm_strlist_add(notes, "the field of view extends %.0f mm beside the vertebra below "
                           "the lowest rib-bearing one (< %.0f mm) and lateral bone there "
                           "reaches %.0f mm: a rib cut short by the field, no T12 anchor", room,
                           RIB_ROOM_MM, below->rib_reach_mm);
        if (!below->sacral && !below->partial && (s1 < 0 || lowest_rib - 1 > s1) && !rib_below &&
            !above_bare && !no_room)
            t12 = lowest_rib;
    }
    if (highest_rib >= 0 && highest_rib + 1 < (long)nv) {
        const SegVert *above = &verts[vi[highest_rib + 1]];
        /* the vertebra above is C7 only if it carries no rib at all: on a narrow field of
         * view (or one cut behind the spine) mid-thoracic ribs leave the field, or break up
         * at its edge, before they reach 55 mm or before they cross the shell at all, like
         * C7's absent rib (T6-T12 on 124 mm: T7 and T6 showed no lateral bone; T4-T12 on
         * 139 mm cut ~40 mm behind T4/T5; T4-T9 on 122 mm: only the lowest segment carried
         * a rib; five such windows of twelve sweeps were named from T1, all wrong). Their
         * rib heads still sit beside the body across the costovertebral joint gaps (spine.c
         * rib_heads); lateral bone crossing the shell and reaching beyond a transverse
         * process (>= STUMP_REACH_MM, ribs.c) is a rib cut short. The first rib's own shape
         * still counts (below). */
        /* no rib may cross the attachment shell above it either (a rib in a dropped sliver
         * at the field's top: chest CT cropped to T4-T10 read T5, whose ribs fell into
         * T6's segment, as C7) */
        bool rib_above = false;
        for (size_t s = vi[highest_rib + 1] + 1; s < n_verts; s++)
            rib_above |= verts[s].rib_runs > 0;
        if (rib_above)
            sm_strlist_add(notes, "a rib crosses above the vertebra over the highest "
                           "rib-bearing one: no T1 anchor from the highest rib");
        else if (!above->partial && above->rib_heads)
            sm_strlist_add(notes, "rib heads beside the vertebra above the highest rib-bearing "
                           "one: its ribs leave the field of view, no T1 anchor from the "
                           "highest rib");
        else if (!above->partial && (above->rib_reach_mm > 0 || above->rib_runs > 0))
            sm_strlist_add(notes, "lateral bone beside the vertebra above the highest "
                           "rib-bearing one reaches %.0f mm, beyond a transverse process: a "
                           "rib cut short, no T1 anchor from the highest rib",
                           above->rib_reach_mm);
        else if (!above->partial && (t12 < 0 || highest_rib > t12 + 3))
            t1 = highest_rib;
    }
    /* T1 from the first rib itself (short, below no other rib, in view): needs no
     * vertebra above, so it works on chest scans that start at C7/T1 */
    for (size_t a = 0; a < nv; a++)
        if (verts[vi[a]].first_rib) {
            if (t1 >= 0 && t1 != (long)a)
                sm_strlist_add(notes, "first rib at vertebra %zu, highest rib-bearing vertebra "
                               "below a rib-free one at %ld: the first rib decides", a, t1);
            t1 = (long)a;
            break;
        }
    /* T1 at the bottom of a cervical field (C1/C3 to T1, the usual C-spine CT): the field
     * ends in or just below T1, so its first rib is the only lateral bone crossing the
     * attachment shell and the second rib is out of view (no reach ratio, no curve
     * contrast). Bone beside the lowest vertebra crossing the shell and reaching
     * >= FIELD_T1_REACH_MM from the canal (beyond a C7 transverse process, ribs.c
     * STUMP_REACH_MM; the first ribs cut by the field's bottom reached 52-54 mm), with
     * at least three whole vertebrae above it that show no lateral bone and no rib heads
     * at all, whose canal is cervical (median canal / body width >= CERVICAL_CANAL_TO_BODY;
     * thoracic canals are about half the body's width), and no sacrum: T1. */
#define FIELD_T1_REACH_MM 46.0
    if (t1 < 0 && t12 < 0 && s1 < 0 && nv >= 4) {
        const SegVert *bot = &verts[vi[0]];
        bool above_free = true;
        size_t whole = 0, nr = 0;
        double ratios[64];
        for (size_t a = 1; a < nv; a++) {
            const SegVert *vt = &verts[vi[a]];
            above_free &= !vt->rib_left && !vt->rib_right && !vt->first_rib &&
                          vt->rib_runs == 0 && !(vt->rib_reach_mm > 0) && !vt->rib_heads;
            whole += !vt->partial;
            if (vt->canal_to_body > 0 && nr < 64)
                ratios[nr++] = vt->canal_to_body;
        }
        /* rib crossings in dropped slivers below or above count as well */
        for (size_t s = 0; s < n_verts; s++)
            if (s != vi[0] && (verts[s].rib_runs > 0 || verts[s].rib_reach_mm > 0))
                above_free = false;
        double ratio = nr ? sm_median_inplace(ratios, nr) : NAN;
        if (!bot->sacral && bot->rib_reach_mm >= FIELD_T1_REACH_MM && above_free &&
            whole >= 3 && ratio >= CERVICAL_CANAL_TO_BODY) {
            t1 = 0;
            sm_strlist_add(notes, "lateral bone beside the lowest vertebra reaches %.0f mm "
                           "from the canal under %zu rib-free vertebrae with a cervical canal "
                           "(%.2f times the body width): T1 at the field's bottom",
                           bot->rib_reach_mm, nv - 1, ratio);
        }
    }
    /* Twelve rib pairs cannot span thirteen vertebrae. With the field ending among the
     * ribs (no T12 anchor), a first rib twelve segments above a lowest segment that
     * carries ribs on both sides would name that segment L1 -- a lumbar vertebra with a
     * rib pair -- while no side shows more than twelve rib crossings (no 13th pair, so
     * no T13). One rib was placed a segment off; the first rib's is the doubtful one:
     * rib 1 articulates with T1 alone, its head level with the C7/T1 disc, where the
     * upper thoracic disc plane is tilted most (a few mm of AP offset moves the plane by
     * as much), whereas the lowest rib's head lies mid-body on a flat plane. */
    if (t1 >= 0 && t12 < 0 && lowest_rib >= 0 && t1 - lowest_rib == 12 &&
        verts[vi[lowest_rib]].rib_left && verts[vi[lowest_rib]].rib_right) {
        int crossings = 0;
        for (size_t s = 0; s < n_verts; s++)
            crossings += verts[s].rib_runs;
        if (crossings <= 24) {
            sm_strlist_add(notes, "first rib 12 segments above the lowest rib pair with %d rib "
                           "crossings (at most 12 pairs): the first rib's head sits on the "
                           "vertebra below the one its crossing fell in", crossings);
            t1--;
            highest_rib = t1; /* the crossing above belongs to T1's rib */
        }
    }
    if (t1 >= 0 && t12 >= 0 && t1 - t12 < 10) {
        /* fewer than 11 rib-bearing vertebrae cannot be: the "rib-free" vertebra below the
         * T12 candidate hides a rib (cut by the field of view, broken up on thick slices);
         * the first rib's shape is the more specific sign */
        sm_strlist_add(notes, "first rib and last rib %ld vertebrae apart: the last-rib "
                       "anchor is not used", t1 - t12);
        t12 = -1;
    }
    if (t12 >= 0)
        anc[na++] = (Anchor){"last rib-bearing vertebra (T12)", SM_VERSE_T12 + (int)t12,
                             (size_t)t12};
    if (t1 >= 0)
        anc[na++] = (Anchor){"first rib-bearing vertebra (T1)", SM_VERSE_T1 + (int)t1,
                             (size_t)t1};
    for (size_t a = 0; a < nv; a++)
        if (verts[vi[a]].cervical_top && a + 1 == nv && verts[vi[a]].rib_runs == 0 &&
            !verts[vi[a]].rib_left && !verts[vi[a]].rib_right)
            anc[na++] = (Anchor){"C2 (dens with the C1 arch in front)", 2 + (int)a, a};

    int base = 0;
    double conf0 = 0.2;
    const char *transitional = NULL;
    bool t13 = false;
    char trbuf[200];
    bool sacrum_confirmed = false;
    bool used[8] = {false, false, false, false, false, false, false, false};
    if (na == 0) {
        /* unanchored: guess from morphology, say so */
        bool any_rib = false;
        for (size_t a = 0; a < nv; a++)
            any_rib |= verts[vi[a]].rib_left || verts[vi[a]].rib_right;
        /* canal against body width, median over the window: the cervical canal is wider
         * than its bodies (C3-C6 about 1.2-1.5, C7 about 1.0), the thoracic and lumbar
         * canals about half as wide (T1 about 0.7); a ratio, so independent of size */
        double ratios[64];
        size_t nr = 0;
        for (size_t a = 0; a < nv && nr < 64; a++)
            if (verts[vi[a]].canal_to_body > 0 && !verts[vi[a]].sacral)
                ratios[nr++] = verts[vi[a]].canal_to_body;
        double ratio = nr ? sm_median_inplace(ratios, nr) : NAN;
        if (!any_rib && ratio >= CERVICAL_CANAL_TO_BODY) {
            /* rib-free with a wide canal: assume the lowest is C7, but never name the top
             * C1 (the atlas has no body: a body named C1 would be dropped) */
            base = SM_VERSE_C7;
            if (base - (int)nv + 1 < SM_VERSE_C1 + 1)
                base = (int)nv + SM_VERSE_C1;
            sm_strlist_add(notes, "canal %.2f times as wide as the bodies: a cervical window",
                           ratio);
        } else if (!any_rib)
            base = SM_VERSE_L5; /* rib-free column without sacrum: assume the lowest is L5 */
        else
            base = SM_VERSE_T12; /* ribs everywhere: assume the lowest is T12 */
        sm_strlist_add(anchors, "none (unanchored: levels are a field-of-view guess)");
        sm_strlist_add(notes, "no labelling anchor in view: level names are a guess");
    } else if (opt && opt->has_anchor && na > 0 && !strcmp(anc[0].what, "user anchor")) {
        base = anc[0].base;
        conf0 = 0.95;
        sm_strlist_add(anchors, "user anchor: %s at z = %.1f mm", opt->anchor_level,
                       opt->anchor_z_mm);
    } else {
        /* sacrum first, then ribs; disagreement by one = transitional anatomy */
        int s_base = 0, t12_base = 0, t1_base = 0, c2_base = 0;
        for (int q = 0; q < na; q++) {
            if (!strncmp(anc[q].what, "sacrum", 6)) s_base = anc[q].base;
            else if (!strncmp(anc[q].what, "last rib", 8)) t12_base = anc[q].base;
            else if (!strncmp(anc[q].what, "first rib", 9)) t1_base = anc[q].base;
            else if (!strncmp(anc[q].what, "C2", 2)) c2_base = anc[q].base;
        }
        if (s_base)
            base = s_base;
        else if (t12_base)
            base = t12_base;
        else if (t1_base)
            base = t1_base;
        else
            base = c2_base;
        /* the count from the first rib holds only when every vertebra between the
         * first and the last rib shows one rib crossing per side (none, or more than
         * two, means a disc plane missed or misplaced there: thin thoracic discs on
         * thick slices) */
        bool t1_count_ok = t1_base != 0 && t12_base != 0;
        for (long a = t12 + 1; t1_count_ok && a < t1; a++)
            if (verts[vi[a]].rib_runs == 0 || verts[vi[a]].rib_runs > 2)
                t1_count_ok = false;
        if (t1_base && t12_base && t1_base != t12_base && !t1_count_ok)
            sm_strlist_add(notes, "a disc plane may be missed between the first and the "
                       "last rib: the count from the first rib is not used");
        if (t12_base && s_base && t12_base != s_base) {
            int lumbar = (int)(t12 - s1 - 1);
            /* the count between the anchors is only anatomy when every segment there
             * is one vertebra: one as tall as two (> 1.7 x the median rib-free one; a
             * disc plane missed, e.g. in a lytic body) or half as tall (< 0.55 x; an
             * extra plane) makes the count, not the spine, off by one: the sacrum
             * decides */
            bool miscount = false;
            {
                double hts[64];
                size_t nh = 0;
                for (long a = s1 + 1; a < t12 && nh < 64; a++)
                    hts[nh++] = verts[vi[a]].s_hi - verts[vi[a]].s_lo;
                if (nh >= 3) {
                    qsort(hts, nh, sizeof hts[0], sm_cmp_double);
                    double ref = hts[nh / 2];
                    for (long a = s1 + 1; a <= t12; a++) {
                        double h = verts[vi[a]].s_hi - verts[vi[a]].s_lo;
                        if (h > 1.7 * ref || (h < 0.55 * ref && !verts[vi[a]].partial)) {
                            miscount = true;
                            sm_strlist_add(notes, "vertebra %ld between the sacrum and the "
                                           "last rib is %.0f mm tall (median %.0f mm): a "
                                           "disc plane is missed or extra there; the "
                                           "sacrum decides", a, h, ref);
                            sm_strlist_add(&verts[vi[a]].reasons, "%.0f mm tall against a "
                                           "median of %.0f mm: disc plane missed or extra "
                                           "(level count between the anchors doubtful)",
                                           h, ref);
                        }
                    }
                }
            }
            if (t1_base && t1_base == s_base && !miscount && t1_count_ok) {
                /* the first rib and the sacrum agree: the count from T1 holds, the last
                 * rib is what varies (11 or 13 rib pairs) */
                snprintf(trbuf, sizeof trbuf,
                         "%d rib-bearing vertebrae (%s): the last rib-bearing vertebra is not "
                         "T12; first rib and sacrum agree", (int)(t1 - t12 + 1),
                         t1 - t12 + 1 < 12 ? "11 rib pairs, T12 without a rib of >= 4 cm"
                                           : "13 rib pairs, ribs on L1");
            } else {
                snprintf(trbuf, sizeof trbuf,
                         "transitional lumbosacral anatomy: %d rib-free vertebrae between the "
                         "last rib and the sacrum%s", lumbar,
                         (lumbar == 6 || lumbar == 4) && !miscount
                             ? (lumbar == 6 ? " (named by the last rib, VerSe rule: L6; or "
                                              "11 rib pairs)"
                                            : " (named by the last rib, VerSe rule: four "
                                              "lumbar; or a sacralised L5 / 13 rib pairs)")
                             : " (named from the sacrum)");
                if ((lumbar == 6 || lumbar == 4) && !miscount)
                    base = t12_base; /* VerSe: T12 by its rib, L6 / 4 lumbar below */
            }
            transitional = trbuf;
            sm_strlist_add(notes, "%s", trbuf);
        }
        if (t1_base && t1_base != base && t12_base && t1 - t12 == 12 && t1_count_ok) {
            sm_strlist_add(notes, "13 rib-bearing vertebrae: T13 present");
            transitional = "13 rib-bearing vertebrae: T13 present (counted from the first rib)";
            t13 = true;
        } else if (t1_base && t1_base != base && t12_base && t1 - t12 == 10 && !transitional &&
                   t1_count_ok) {
            sm_strlist_add(notes, "11 rib-bearing vertebrae");
            transitional = "11 rib-bearing vertebrae: the first rib and the last rib disagree "
                           "by one level";
        }
        /* anchors: which ones the names follow (T1 counts with T13 present) */
        for (int q = 0; q < na; q++) {
            bool is_t1 = !strncmp(anc[q].what, "first rib", 9);
            used[q] = anc[q].base == base || (t13 && is_t1);
            const char *list = !strncmp(anc[q].what, "sacrum", 6)     ? "sacrum"
                               : !strncmp(anc[q].what, "last rib", 8)
                                   ? (t13 ? "last rib-bearing vertebra = T13 (13 rib pairs)"
                                          : "last rib-bearing vertebra = T12")
                               : is_t1                                ? "first rib-bearing vertebra = T1"
                                                                      : "C2 (dens with the C1 arch in front)";
            if (used[q])
                sm_strlist_add(anchors, "%s", list);
            else
                sm_strlist_add(anchors, "%s (disagrees by %d level%s: not used for the names)",
                               list, abs(anc[q].base - base),
                               abs(anc[q].base - base) == 1 ? "" : "s");
        }
        int n_agree = 0;
        for (int q = 0; q < na; q++)
            n_agree += used[q];
        sacrum_confirmed = s_base && n_agree >= 2 && s_base == base;
        conf0 = n_agree >= 2 ? 0.95 : 0.85;
        if (s_base && t12_base && t12_base != s_base)
            conf0 = 0.5;
        /* transitional anatomy moves a count by one; anchors further apart than that
         * cannot both be right, and the names rest on which one is */
        for (int q = 0; q < na; q++)
            if (abs(anc[q].base - base) > 1 && conf0 > 0.5) {
                conf0 = 0.5;
                sm_strlist_add(notes, "anchors %d levels apart: one of them is false; "
                               "confidence capped", abs(anc[q].base - base));
            }
    }
    for (size_t a = 0; a < nv; a++) {
        SegVert *vt = &verts[vi[a]];
        if (s1 >= 0 && (long)a < s1)
            continue; /* merged into the sacrum */
        int lab;
        if (s1 >= 0 && (long)a == s1) {
            lab = SM_VERSE_SACRUM;
        } else if (t13 && (long)a == t12) {
            lab = SM_VERSE_T13;
        } else if (t13 && (long)a > t12) {
            lab = label_of(base, a) + 1;
        } else {
            lab = label_of(base, a);
            if (lab >= SM_VERSE_SACRUM)
                lab = SM_VERSE_L6; /* below L5 but not the detected sacrum */
        }
        if (lab < 1) {
            vt->verse = -1; /* above C1: not a vertebra */
            continue;
        }
        vt->verse = lab;
        double c = conf0;
        if (na > 0) {
            size_t far = (size_t)-1;
            for (int q = 0; q < na; q++) {
                size_t d = anc[q].at > a ? anc[q].at - a : a - anc[q].at;
                if (d < far) far = d;
            }
            c -= 0.02 * (double)far;
            for (int q = 0; q < na; q++) {
                if (used[q] || na == 1 || (opt && opt->has_anchor))
                    sm_strlist_add(&vt->anchors, "%s", anc[q].what);
                else
                    sm_strlist_add(&vt->anchors, "%s: disagrees, not used for the names",
                                   anc[q].what);
            }
        } else {
            sm_strlist_add(&vt->reasons, "unanchored: no sacrum, rib or C2 anchor in view");
        }
        if (transitional && lab >= SM_VERSE_T12 - 1) {
            c = fmin(c, 0.5);
            sm_strlist_add(&vt->reasons, "%s", transitional);
        }
        if (sacralised >= 0 && (long)a == sacralised) {
            c = fmin(c, sacral_cap);
            sm_strlist_add(&vt->reasons, "%s", sacbuf);
        } else if (sacralised >= 0 && sacral_cap <= 0.5 && !sacrum_confirmed && lab >= SM_VERSE_L1 &&
                   lab <= SM_VERSE_L6) {
            /* a fused vertebra may be counted as lumbar or as sacral: with no other anchor
             * agreeing, the lumbar names rest on that choice */
            c = fmin(c, 0.7);
            sm_strlist_add(&vt->reasons, "named from the sacrum with a fused transitional "
                           "vertebra above it, no other anchor agrees");
        }
        /* Between the highest and lowest rib-bearing vertebrae every vertebra carries one
         * rib per side: none, or more than two crossings, means a disc plane is probably
         * misplaced (missed or extra) around it -- its extent, and the count, are doubtful */
        if (na > 0 && !(opt && opt->has_anchor)) {
            /* a name counted from the anchors across such a segment is doubtful too (it may
             * hold two vertebrae, or half of one), unless anchors on both sides of it agree */
            long cross = -1;
            bool direct = false;
            for (int q = 0; q < na && !direct; q++) {
                if (!used[q])
                    continue;
                long lo = (long)(anc[q].at < a ? anc[q].at : a), hi = (long)(anc[q].at < a ? a : anc[q].at);
                long d = -1;
                for (long m = lo + 1; m < hi; m++)
                    if (rib_doubtful(verts, vi, m, lowest_rib, highest_rib))
                        d = m;
                if (d < 0)
                    direct = true;
                else
                    cross = d;
            }
            if (!direct && cross >= 0) {
                bool below = false, above = false;
                for (int q = 0; q < na; q++) {
                    if (!used[q])
                        continue;
                    below |= (long)anc[q].at < cross;
                    above |= (long)anc[q].at > cross;
                }
                if (!(below && above)) {
                    c = fmin(c, 0.5);
                    sm_strlist_add(&vt->reasons, "counted from the anchor across segment %ld, "
                                   "whose rib crossings say a disc plane is missed or "
                                   "misplaced: the name may be a level off", cross);
                }
            }
        }
        if (rib_doubtful(verts, vi, (long)a, lowest_rib, highest_rib)) {
            c -= 0.1;
            vt->extent_doubtful = true;
            sm_strlist_add(&vt->reasons, "%d rib crossings at a rib-bearing level: a disc "
                           "plane may be missed or misplaced here", vt->rib_runs);
        }
        if (vt->partial) {
            c *= 0.9;
            sm_strlist_add(&vt->reasons, "partly outside the field of view");
        }
        if (c < 0.05) c = 0.05;
        if (c > 1) c = 1;
        vt->confidence = c;
    }
    /* segments merged into the sacrum (below S1) carry the sacrum's confidence, anchors and
     * reasons: the label's record takes them from the lowest segment holding it */
    for (long a = 0; s1 > 0 && a < s1; a++) {
        SegVert *vt = &verts[vi[a]];
        const SegVert *top = &verts[vi[s1]];
        vt->confidence = top->confidence;
        for (size_t m = 0; m < top->anchors.n; m++)
            sm_strlist_add(&vt->anchors, "%s", top->anchors.items[m]);
        for (size_t m = 0; m < top->reasons.n; m++)
            sm_strlist_add(&vt->reasons, "%s", top->reasons.items[m]);
    }
    free(vi);
    return true;
}
