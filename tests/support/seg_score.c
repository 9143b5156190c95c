/* Per-level scoring of a segmentation against phantom truth (see seg_score.h). */
#include "seg_score.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NL 29 /* label ids 0..28 */

bool sm_test_seg_score(const SmPhantom *ph, const SmSpineSeg *seg, SmTestLevelScore *out)
{
    const size_t *d = ph->ct->dims;
    const uint8_t *tl = ph->labels->data, *ts = ph->subregions->data;
    const uint8_t *pl = seg->labels->data, *ps = seg->subregions->data;
    /* overlap[t][p]: truth vertebra t voxels with predicted label p */
    size_t(*overlap)[NL] = calloc(NL, sizeof *overlap);
    size_t(*both)[NL] = calloc(NL, sizeof *both); /* truth body t and predicted body p */
    size_t tb[NL] = {0}, pb[NL] = {0};
    bool edge[NL] = {false};
    if (!overlap || !both) {
        free(overlap);
        free(both);
        return false;
    }
    size_t v = 0;
    for (size_t k = 0; k < d[2]; k++)
        for (size_t j = 0; j < d[1]; j++)
            for (size_t i = 0; i < d[0]; i++, v++) {
                int t = tl[v] < NL ? tl[v] : 0, p = pl[v] < NL ? pl[v] : 0;
                if (t)
                    overlap[t][p]++;
                bool tbody = t && ts[v] == SM_PHANTOM_SUB_BODY;
                bool pbody = p && ps[v] == SM_SUB_BODY;
                if (tbody) {
                    tb[t]++;
                    if (i == 0 || j == 0 || k == 0 || i + 1 == d[0] || j + 1 == d[1] ||
                        k + 1 == d[2])
                        edge[t] = true;
                }
                if (pbody)
                    pb[p]++;
                if (tbody && pbody)
                    both[t][p]++;
            }
    for (size_t q = 0; q < ph->n_vertebrae; q++) {
        const SmPhantomVertebra *tv = &ph->vertebrae[q];
        SmTestLevelScore *s = &out[q];
        memset(s, 0, sizeof *s);
        int t = tv->verse_id;
        s->verse_id = t;
        snprintf(s->name, sizeof s->name, "%s", tv->name);
        s->has_body = tv->has_body;
        s->whole = tv->has_body && !edge[t];
        size_t best = 0;
        for (int p = 1; p < NL; p++)
            if (overlap[t][p] > best) {
                best = overlap[t][p];
                s->best_label = p;
            }
        const SmVertebra *pv = NULL;
        for (size_t r = 0; r < seg->n_vertebrae; r++)
            if (s->best_label && seg->vertebrae[r].verse_label == s->best_label)
                pv = &seg->vertebrae[r];
        s->named = pv && s->best_label == t;
        int b = s->best_label;
        s->centroid_mm = NAN;
        s->confidence = NAN;
        if (pv) {
            double e = 0;
            for (int c = 0; c < 3; c++)
                e += (pv->centroid_lps[c] - tv->body_centroid[c]) *
                     (pv->centroid_lps[c] - tv->body_centroid[c]);
            s->centroid_mm = sqrt(e);
            s->confidence = pv->confidence;
        }
        s->body_dice = b && tb[t] + pb[b] ? 2.0 * (double)both[t][b] / (double)(tb[t] + pb[b]) : 0;
    }
    free(overlap);
    free(both);
    return true;
}

bool sm_test_phantom_segment(SmError **error, const SmPhantomSpec *spec, SmPhantom **ph,
                             SmSpineSeg **seg)
{
    *ph = NULL;
    *seg = NULL;
    if (!sm_phantom_generate(error, spec, ph))
        return false;
    SmSegOptions o = {2, false, NULL, 0};
    return sm_seg_spine_run(error, (*ph)->ct, &o, seg);
}
