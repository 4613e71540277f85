/*
 * Taxonomy: the data categories bordergate knows, with their labels,
 * sensitivity and legal citations, loaded from config/categories.json
 * (documented in docs/categories.md).
 *
 * The detectors (inspect/detect.h) report built-in category ids; field rules
 * written by compliance may name any category of the taxonomy, including the
 * ones no detector can find (health, religion, biometrics...). Policy may
 * extend the taxonomy with its own categories (bg_taxonomy_extend()) and
 * change a category's sensitivity (bg_taxonomy_set_sensitive()): where the
 * standards differ, the shipped file takes the stricter reading.
 *
 * Errors go to a bg_cfgerr_t sink, positioned in the file:
 *   categories.json:14:7: error: $.categories.imei.sensitive: must be true or false
 * They name keys and expected shapes only.
 *
 * Ownership: a taxonomy owns its strings (it keeps a reference to the
 * parsed documents). Category pointers stay valid until bg_taxonomy_free(),
 * across extensions. Lookups are read-only and thread-safe; loading,
 * extending and overriding are not (do them before the taxonomy is shared,
 * as with every configuration object: build, validate, then swap).
 */
#ifndef BG_TAXONOMY_H
#define BG_TAXONOMY_H

#include <stddef.h>

#include <jansson.h>

#include "config/cfgerr.h"
#include "config/jsonpos.h"
#include "inspect/detect.h"

typedef struct bg_taxonomy bg_taxonomy_t;

/* Largest number of citations kept per category. */
#define BG_TAXONOMY_MAX_CITATIONS 8

typedef struct {
    const char *id;        /* "cn_resident_id": [a-z][a-z0-9_]{0,63} */
    const char *label_en;  /* "Resident identity card number" */
    const char *label_zh;  /* "居民身份证号码" */
    const char *group;     /* "identity", "contact", "device", ...; "" when absent */
    const char *parent;    /* a broader category it is a kind of ("" when absent):
                              the policy applies what it says of the parent to it */
    int sensitive;         /* sensitive PI (PIPL Art. 28) as configured: the file's
                              default, or the policy's override */
    int sensitive_default; /* what the categories file says */
    int never_export;      /* credentials and secrets: no legal basis allows export */
    const char *note;      /* where the standards differ, limits; "" when absent */
    const char *citations[BG_TAXONOMY_MAX_CITATIONS];
    size_t ncitations;       /* at least 1 */
    bg_detect_cat_t builtin; /* the detectors' id for it, or BG_CAT_NONE */
    int from_policy;         /* added by bg_taxonomy_extend() */
} bg_taxonomy_cat_t;

/*
 * Load the categories file PATH. Every problem is added to ERRS (which names
 * PATH); returns NULL when there was any error (unreadable file, JSON syntax,
 * a missing or mistyped field, an unknown key, a duplicate key, a built-in
 * category missing), so a half-valid taxonomy is never used.
 */
bg_taxonomy_t *bg_taxonomy_load(const char *path, bg_cfgerr_t *errs);

/* Same, from TEXT (LEN bytes); errors name the file ERRS was created with. */
bg_taxonomy_t *bg_taxonomy_parse(const char *text, size_t len, bg_cfgerr_t *errs);

void bg_taxonomy_free(bg_taxonomy_t *tax);

/* An empty taxonomy (no file, no built-in categories), for validating a
 * policy's own categories with bg_taxonomy_extend(). NULL when out of memory. */
bg_taxonomy_t *bg_taxonomy_new(void);

/*
 * Add the categories of CATEGORIES (an object in the schema of the file's
 * "categories" member, e.g. from a policy file), validated the same way.
 * POS (may be NULL) positions errors; BASE_PATH is CATEGORIES' path in its
 * document ("$.categories"). An id that already exists is an error: to change
 * a shipped category, use bg_taxonomy_set_sensitive(). Takes a reference to
 * CATEGORIES. 0, or -1 with errors added (and nothing added to TAX).
 */
int bg_taxonomy_extend(bg_taxonomy_t *tax, json_t *categories, const bg_jsonpos_t *pos,
                       const char *base_path, bg_cfgerr_t *errs);

/* Policy override of a category's sensitivity. 0, or -1 when ID is unknown. */
int bg_taxonomy_set_sensitive(bg_taxonomy_t *tax, const char *id, int sensitive);

/* The category ID (LEN bytes), or NULL. O(log N). */
const bg_taxonomy_cat_t *bg_taxonomy_find(const bg_taxonomy_t *tax, const char *id, size_t len);

/* The category of a detector finding. O(1); never NULL for a taxonomy that
 * loaded (every built-in category is required) and CAT in range. */
const bg_taxonomy_cat_t *bg_taxonomy_builtin(const bg_taxonomy_t *tax, bg_detect_cat_t cat);

/* Categories in id order: count, and the I-th (NULL when out of range). */
size_t bg_taxonomy_count(const bg_taxonomy_t *tax);
const bg_taxonomy_cat_t *bg_taxonomy_at(const bg_taxonomy_t *tax, size_t i);

/* The "taxonomy_version" of the file (recorded with decisions). */
const char *bg_taxonomy_version(const bg_taxonomy_t *tax);

#endif
