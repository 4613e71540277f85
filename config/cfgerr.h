/*
 * Diagnostics of a configuration check: collects errors and warnings, each
 * with the file, the line and column, the JSON path and a message, and
 * renders them for people:
 *
 *   policy.json:14:7: error: $.routes[2].upstream: expected a string, got 42
 *   policy.json: error: cannot be read: No such file or directory
 *
 * (position and path are left out when unknown), or as a JSON array for
 * machines (bg_cfgerr_to_json).
 *
 * The validator calls bg_cfgerr_addf() with the path it is looking at and
 * the position map of the file; the sink finds the line and column itself.
 * Messages must not quote personal-information values from the document:
 * name the key and the expected shape, not the value.
 *
 * Counting never fails: even when an item cannot be stored (out of memory,
 * or beyond the limit), bg_cfgerr_errors() counts it, so a check can never
 * report "configuration OK" after an error was added.
 */
#ifndef BG_CFGERR_H
#define BG_CFGERR_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "config/jsonpos.h"

typedef enum {
    BG_CFGERR_ERROR = 0,
    BG_CFGERR_WARNING = 1,
} bg_cfgerr_severity_t;

typedef struct {
    bg_cfgerr_severity_t severity;
    const char *file;    /* never NULL */
    int line, col;       /* 1-based; 0 when unknown */
    int approximate;     /* the path is not in the file (e.g. a missing
                            member); the position is its nearest ancestor's */
    const char *path;    /* "$.routes[2]", or "" when none */
    const char *message; /* valid UTF-8 (invalid bytes became U+FFFD) */
} bg_cfgerr_item_t;

typedef struct bg_cfgerr bg_cfgerr_t;

/* Items kept by default; later ones are only counted. */
#define BG_CFGERR_DEFAULT_LIMIT 1000

/* A sink whose items name FILE (copied; NULL means "-"). NULL on ENOMEM. */
bg_cfgerr_t *bg_cfgerr_new(const char *file);
void bg_cfgerr_free(bg_cfgerr_t *errs);
/* File named by the items added from now on (another policy fragment, the
 * consent registry...). 0/-1. */
int bg_cfgerr_set_file(bg_cfgerr_t *errs, const char *file);
/* Keep at most MAX items (0: no limit). */
void bg_cfgerr_set_limit(bg_cfgerr_t *errs, size_t max);

/*
 * Add one item at a known position (LINE/COL 0 when unknown). PATH may be
 * NULL. Strings are copied. 0, or -1 when the item was counted but could not
 * be stored (out of memory, over the limit).
 */
int bg_cfgerr_add(bg_cfgerr_t *errs, bg_cfgerr_severity_t severity, int line, int col,
                  const char *path, const char *message);

/*
 * Add one item about PATH, positioned by POS: at the value, or with KEY_POS
 * non-zero at its key (the place to point at for "unknown key"). When PATH
 * is not in the text, the nearest ancestor's position is used and the item
 * marked approximate; with POS NULL the position is unknown. Returns as
 * bg_cfgerr_add().
 */
int bg_cfgerr_addf(bg_cfgerr_t *errs, const bg_jsonpos_t *pos, bg_cfgerr_severity_t severity,
                   const char *path, int key_pos, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
int bg_cfgerr_vaddf(bg_cfgerr_t *errs, const bg_jsonpos_t *pos, bg_cfgerr_severity_t severity,
                    const char *path, int key_pos, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* A jansson syntax error (from json_loadb & co.) as an error item. */
int bg_cfgerr_add_json_error(bg_cfgerr_t *errs, const json_error_t *err);

/* One error per key repeated in an object (see bg_jsonpos_duplicates()),
 * at the later key, naming the earlier definition it overrides. 0/-1. */
int bg_cfgerr_add_duplicates(bg_cfgerr_t *errs, const bg_jsonpos_t *pos);

/* Errors / warnings added, stored or not. */
size_t bg_cfgerr_errors(const bg_cfgerr_t *errs);
size_t bg_cfgerr_warnings(const bg_cfgerr_t *errs);
/* Items stored, and item I of them (NULL when out of range). */
size_t bg_cfgerr_count(const bg_cfgerr_t *errs);
const bg_cfgerr_item_t *bg_cfgerr_item(const bg_cfgerr_t *errs, size_t i);

/* Order items by file (in the order files were first named), then line and
 * column; items without a position come first in their file; ties keep the
 * order they were added in. */
void bg_cfgerr_sort(bg_cfgerr_t *errs);

/* ITEM as one line, without the newline, into BUF with snprintf's contract
 * (returns the full length). Control characters in the file name, path and
 * message are escaped (\n, \t, \x1b), so one item is always one line. */
size_t bg_cfgerr_format(const bg_cfgerr_item_t *item, char *buf, size_t cap);

/* Every stored item, one line each, then a "note:" line when some were
 * not stored. 0, or -1 on a write error. */
int bg_cfgerr_print(const bg_cfgerr_t *errs, FILE *out);

/*
 * The stored items as a new JSON array (NULL on ENOMEM):
 *   [{"severity": "error", "file": "policy.json", "line": 14, "column": 7,
 *     "path": "$.routes[2].upstream", "message": "...", "approximate": false}]
 * "line" and "column" are null when unknown, "path" is "" when none.
 */
json_t *bg_cfgerr_to_json(const bg_cfgerr_t *errs);

#endif
