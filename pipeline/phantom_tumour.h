/* Epidural tumour for the synthetic phantom: a post-process on a generated SmPhantom that
 * grows an epidural soft-tissue mass from a vertebra into the canal with the geometry of a
 * target Bilsky ESCC grade (docs/escc.md "Phantom"). */
#ifndef SM_PHANTOM_TUMOUR_H
#define SM_PHANTOM_TUMOUR_H

#include "phantom.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the mass sits around the canal (patient's left / right). Numbered as
 * SmEsccPosition (metrics/escc.h). */
enum {
    SM_PHANTOM_EPI_ANTERIOR = 1,
    SM_PHANTOM_EPI_POSTERIOR = 2,
    SM_PHANTOM_EPI_LEFT = 3,
    SM_PHANTOM_EPI_RIGHT = 4,
    SM_PHANTOM_EPI_CIRCUMFERENTIAL = 5
};
/* Target grades, numbered as SmEsccGrade: 1 = 1a, 2 = 1b, 3 = 1c, 4 = 2, 5 = 3. */
enum { SM_PHANTOM_ESCC_1A = 1, SM_PHANTOM_ESCC_1B, SM_PHANTOM_ESCC_1C, SM_PHANTOM_ESCC_2,
       SM_PHANTOM_ESCC_3 };

typedef struct SmPhantomTumourSpec {
    int level;        /* phantom level index 0..24 (sm_phantom_level_parse) */
    int position;     /* SM_PHANTOM_EPI_* */
    int grade;        /* SM_PHANTOM_ESCC_* */
    double hu;        /* NAN: muscle + 5 (+15 with contrast) */
    uint64_t seed;    /* noise of the repainted bone */
} SmPhantomTumourSpec;

/* Truth of one tumour, measured on the model in the plane perpendicular to the vertebra
 * axis through the canal centre (areas mm^2). */
typedef struct SmPhantomTumourTruth {
    int level;
    int verse_id;
    int position, grade;        /* as applied */
    bool below_conus;           /* cauda equina level: the sac compression is graded */
    double canal_area_mm2, sac_area_before_mm2, sac_area_mm2, cord_area_before_mm2,
        cord_area_mm2, csf_area_before_mm2, csf_area_mm2, tumour_area_mm2;
} SmPhantomTumourTruth;

/* Applies the tumours in order (at most one per level; not at the conus level, where the
 * cord tapers; not at C1 or S1). Repaints the canal contents inside a slab of about the
 * body height around the level (CT, subregions 7/10, the posterior-wall / posterior-element
 * bone the mass grows from, lesions map lytic there). Voxels keep their own noise; only the
 * repainted bone gets fresh noise of the phantom's sigma from spec.seed. truth (optional)
 * receives n records. Errors: SM_ERR_USAGE (level not in the phantom, conus level, bad
 * position / grade), SM_ERR_NOMEM. Deterministic; not thread-safe on the same phantom. */
bool sm_phantom_tumour_apply(SmError **error, SmPhantom *ph, const SmPhantomTumourSpec *specs,
                             size_t n, SmPhantomTumourTruth *truth);

/* Parses an "epidural_tumours" JSON array text:
 * [{"level": "T11", "position": "anterior", "grade": "2", "hu": 55, "seed": 3}, ...]
 * into at most max specs (*n). position: anterior|posterior|left|right|circumferential;
 * grade: 1a|1b|1c|2|3; hu and seed optional. SM_ERR_FORMAT naming the element and field. */
bool sm_phantom_tumour_parse(SmError **error, const char *json_text, SmPhantomTumourSpec *specs,
                             size_t max, size_t *n);

/* Draws up to max tumours over the phantom's levels (never adjacent, never at C1, S1, the
 * conus level; deterministic for a seed): grade and position uniform. Returns the count. */
size_t sm_phantom_tumour_randomize(const SmPhantom *ph, uint64_t seed, size_t max,
                                   SmPhantomTumourSpec *specs);

const char *sm_phantom_tumour_position_name(int position);
const char *sm_phantom_tumour_grade_name(int grade);

#ifdef __cplusplus
}
#endif
#endif
