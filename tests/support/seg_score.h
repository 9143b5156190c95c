/* Scoring a spine segmentation against phantom truth, per truth level: level naming (the
 * predicted label covering most of the truth vertebra), and the geometry of that predicted
 * vertebra whatever its name: body centroid error and body Dice (truth sub-region 1 of the
 * level vs predicted sub-region 1 of that label). When the level is named right these are
 * the scores of the right name. One pass over the volume for all levels. */
#ifndef SM_TEST_SEG_SCORE_H
#define SM_TEST_SEG_SCORE_H

#include "phantom.h"
#include "sm_segment.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct SmTestLevelScore {
    int verse_id;             /* truth level (VerSe id; 26 = sacrum, scored on the S1 body) */
    char name[4];
    bool has_body;            /* false for C1 */
    bool whole;               /* the truth body touches no face of the grid */
    int best_label;           /* predicted label holding most of the truth vertebra (0: none) */
    bool named;               /* best_label == verse_id and a record of that label exists */
    double centroid_mm;       /* |best_label record body centroid - truth body centroid|
                                 (NAN: no record) */
    double body_dice;         /* truth body vs predicted body of best_label */
    double confidence;        /* of the record (NAN: none) */
} SmTestLevelScore;

/* Scores every truth vertebra of ph (cranial first) into out[0 .. ph->n_vertebrae-1].
 * Returns false when out of memory. */
bool sm_test_seg_score(const SmPhantom *ph, const SmSpineSeg *seg, SmTestLevelScore *out);

/* Generates the phantom of spec and runs the built-in segmentation on its CT at 2 threads
 * with no anchor override; *ph and *seg belong to the caller. */
bool sm_test_phantom_segment(SmError **error, const SmPhantomSpec *spec, SmPhantom **ph,
                             SmSpineSeg **seg);

#endif
