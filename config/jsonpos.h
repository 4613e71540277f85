/*
 * Source positions for a JSON document, addressed by path.
 *
 * jansson reports line and column only for syntax errors. `bordergate check`
 * reports every semantic error as "FILE:LINE:COLUMN: $.routes[2].upstream:
 * message", so the validator needs to know where each value (and each object
 * key) of an already-parsed document sits in the text. bg_jsonpos_build()
 * makes that map with one linear scan of the text; the validator walks the
 * jansson tree, builds the same paths with bg_jsonpos_path_append_key() /
 * _index(), and looks them up.
 *
 * Positions: line and column are 1-based; a line ends at '\n' only, and the
 * column counts characters (UTF-8 code points, a lone continuation byte does
 * not count), the way jansson counts them in its own syntax errors.
 *
 * Paths (what a person reads in an error message):
 *   $                  the root value
 *   .name              member whose key is a "word": one or more of ASCII
 *                      letters, digits, '_' and '-', and visible non-ASCII
 *                      characters (so $.用户.手机号 stays readable)
 *   ["na.me"]          any other key, JSON-escaped; invisible characters
 *                      (U+00A0, U+200B, U+3000, ...) are written as \uXXXX
 *   [3]                array element (0-based)
 * e.g. $.routes[2].headers["x.custom"]. A path is canonical: a key always
 * has exactly one spelling, so build paths only with the helpers below.
 *
 * Duplicate keys: jansson keeps the last value of a repeated key without a
 * word. The map does the same (paths resolve to the last occurrence, and
 * children of an overridden value are unreachable) and records every
 * repetition so `check` can reject it: in a compliance document, a key that
 * silently overrides an earlier one is an error.
 *
 * The scanner is tolerant (it does not check number syntax, string escapes
 * of values or UTF-8 validity; jansson does) but never reads outside
 * [text, text+len) and rejects anything it cannot follow structurally.
 */
#ifndef BG_JSONPOS_H
#define BG_JSONPOS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bg_jsonpos bg_jsonpos_t;

/* Largest text bg_jsonpos_build() accepts (keeps every offset in 32 bits). */
#define BG_JSONPOS_MAX_TEXT ((size_t)512 * 1024 * 1024)

/* Root path; start a path buffer with it. */
#define BG_JSONPOS_ROOT "$"

/* Return values of the lookups. */
#define BG_JSONPOS_EXACT 0    /* the path itself was found */
#define BG_JSONPOS_FALLBACK 1 /* not in the text; nearest existing ancestor */
#define BG_JSONPOS_NONE (-1)  /* no map, or the path does not start with "$" */

/*
 * Scan TEXT (LEN bytes, need not be NUL-terminated; a UTF-8 byte order mark
 * is not skipped) and record the position of every value and every key.
 * Returns NULL with errno set: EINVAL when the text is not structurally
 * JSON (unbalanced brackets, missing ':' or ',', unterminated string, bad
 * escape in a key, trailing garbage, empty text), EFBIG above
 * BG_JSONPOS_MAX_TEXT, ENOMEM.
 * Cost: O(LEN) time (about 20 ms for a 5 MB pretty-printed policy, 35 ms
 * for 5 MB of compact, key-dense JSON on a 2020s x86 core); memory about
 * 50 bytes per value plus the key bytes, i.e. 2-6x the text for typical
 * policies (25x at worst for "[1,1,1,...]", about what jansson itself
 * spends per value). Caller frees the map with bg_jsonpos_free(); the map
 * does not refer to TEXT afterwards.
 */
bg_jsonpos_t *bg_jsonpos_build(const char *text, size_t len);
void bg_jsonpos_free(bg_jsonpos_t *map);

/* Number of values recorded (root included; overridden duplicates too). */
size_t bg_jsonpos_count(const bg_jsonpos_t *map);

/*
 * Position of the value at PATH (its first character: '{', '[', '"', digit,
 * 't', ...). When PATH is not in the text (a required member that is
 * missing, a path of an overridden duplicate), LINE/COL are those of the
 * nearest ancestor that is, and BG_JSONPOS_FALLBACK is returned. Returns
 * BG_JSONPOS_NONE with LINE = COL = 0 when MAP is NULL or PATH does not
 * start with "$". LINE or COL may be NULL. O(length of PATH); read-only,
 * so concurrent lookups on one map are safe.
 */
int bg_jsonpos_lookup(const bg_jsonpos_t *map, const char *path, int *line, int *col);

/*
 * Same, for the position of the member's key (its opening quote): the place
 * to point at for "unknown key". Array elements and the root have no key;
 * their value position is returned. A fallback returns the ancestor's key
 * position by the same rule.
 */
int bg_jsonpos_lookup_key(const bg_jsonpos_t *map, const char *path, int *line, int *col);

/*
 * Path builders, with snprintf's contract: append the segment for KEY (a
 * NUL-terminated UTF-8 key, as jansson hands it out) or INDEX to the path
 * of length LEN held in BUF, write at most CAP bytes including the NUL, and
 * return the length the whole path has (LEN + segment), even when it did
 * not fit. So appends can be chained and the result checked once:
 * "n >= cap" means truncated. With LEN >= CAP nothing is written.
 *
 *   char p[256]; size_t n = bg_jsonpos_path_append_index(p, sizeof p,
 *       bg_jsonpos_path_append_key(p, sizeof p, 1, "routes"), 2);
 *   // with p starting as "$": "$.routes[2]"
 */
size_t bg_jsonpos_path_append_key(char *buf, size_t cap, size_t len, const char *key);
size_t bg_jsonpos_path_append_index(char *buf, size_t cap, size_t len, size_t index);

/* Where one recorded value sits; see bg_jsonpos_entry(). */
typedef struct {
    int line, col;         /* the value */
    int key_line, key_col; /* its key; 0 for array elements and the root */
} bg_jsonpos_pos_t;

/* Entry I (0 <= I < bg_jsonpos_count(), in text order) into OUT: 0, or -1
 * when I is out of range. */
int bg_jsonpos_entry(const bg_jsonpos_t *map, size_t i, bg_jsonpos_pos_t *out);
/* Path of entry I into BUF, with the snprintf contract of the builders
 * above; returns 0 (and writes "") when I is out of range. O(depth). */
size_t bg_jsonpos_entry_path(const bg_jsonpos_t *map, size_t i, char *buf, size_t cap);

/* A key repeated in one object. */
typedef struct {
    size_t entry;              /* the later value: bg_jsonpos_entry_path() */
    int line, col;             /* its key: the definition jansson keeps */
    int first_line, first_col; /* key of the definition it overrides */
} bg_jsonpos_dup_t;

/*
 * Every repeated key, in text order; *COUNT receives how many (0 and NULL
 * when there are none). A key given three times yields two records, each
 * pointing back at the definition just before it. The array belongs to MAP.
 */
const bg_jsonpos_dup_t *bg_jsonpos_duplicates(const bg_jsonpos_t *map, size_t *count);

#endif
