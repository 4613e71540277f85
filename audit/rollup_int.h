/*
 * Internals of the rollups shared by audit/rollup.c (which owns the day
 * files and the tailing), audit/rollup_query.c (the queries) and
 * audit/rollup_hours.c (a day split into hours as text, for the fleet). Not
 * for other modules: audit/rollup.h is the interface.
 */
#ifndef BG_ROLLUP_INT_H
#define BG_ROLLUP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "audit/rollup.h"

/* The first line of an hour's text. */
#define BG_ROLLUP_HOUR_FORMAT "# bordergate-rollup-hour/1"
#define BG_ROLLUP_HOUR_MS 3600000LL
/* A day file's name: "YYYY-MM-DD" (China time), or BG_ROLLUP_NO_DAY for
 * the decisions without a time; the size of a buffer for one. */
#define BG_ROLLUP_DAY_NAME 16
#define BG_ROLLUP_NO_DAY "none"

/* A blocked decision of a day: where it is in the raw log ("OFFSET FILE")
 * or, in a query over the fleet, the record itself. */
typedef struct {
    uint64_t seq; /* the record's line number over the whole log */
    int64_t h;
    char *text; /* the record, compact JSON */
} blk_t;

/* The lines of one day: decision shapes ("HOUR_MS REDUCED_JSON") with
 * their weights, by index, and people ("INDEX PSEUDONYM FINDINGS X": the
 * shape's findings naming the person, "0,3" or "-", and X 1 when the
 * decision's subjects list names them). */
typedef struct {
    json_t *ix;   /* {"HOUR_MS JSON": index} */
    json_t *keys; /* ["HOUR_MS JSON", ...] */
    uint64_t *n;  /* weights by index */
    size_t cap;
    json_t *people; /* {"INDEX PSEUDONYM FINDINGS X": true} */
} tab_t;

/* What this update read for one day, not saved yet. */
typedef struct {
    char name[BG_ROLLUP_DAY_NAME];
    uint64_t through; /* the saved file holds every record up to this seq */
    tab_t tab;
    blk_t *blk;
    size_t nblk, capblk;
} day_t;

typedef struct {
    char *name; /* base name */
    uint64_t bytes, lines;
    uint64_t unparsable, torn; /* torn: a last line cut by a crash, never completed */
} rawfile_t;

struct bg_rollup {
    char *dir;  /* DIR/PREFIX.rollup */
    char *adir; /* DIR */
    char *prefix;
    int mode;   /* BG_ROLLUP_* */
    int lockfd; /* -1: no rollup directory (read mode) */
    int reset;  /* the saved rollups do not match the raw log: ignore, then replace them */
    char **paths;
    size_t npaths;
    rawfile_t *files; /* one per path, what has been consumed */
    uint64_t seq, unparsable, torn;
    size_t fi; /* the file being read */
    FILE *fp;
    char *line;
    size_t linecap;
    day_t *days;
    size_t ndays, capdays;
    uint64_t unsaved; /* lines read since the last save */
    int done;
};

/* The China-time date of T (ms) as "YYYY-MM-DD". */
void bg_rollup_day_name(int64_t t, char out[BG_ROLLUP_DAY_NAME]);
/* Is NAME a day file's name (a date, or BG_ROLLUP_NO_DAY)? */
int bg_rollup_is_day_file(const char *name);
/* "A/B", malloc'd, or NULL when out of memory. */
char *bg_rollup_path_join(const char *a, const char *b);
/* Append blocked decision SEQ of hour H, TEXT (LEN bytes, copied) to D.
 * 0, or -1 when out of memory. */
int bg_rollup_blk_add(day_t *d, uint64_t seq, int64_t h, const char *text, size_t len);
/* qsort order of blk_t by seq. */
int bg_rollup_blk_order(const void *a, const void *b);

/*
 * One line of a day file (or an hour's text), LINE not modified: 'T' (a
 * shape: *JSON), 'A' (an entry: *N weight, *H hour, *JSON the shape's
 * index), 'a' (a damaged A line: it keeps its place in the numbering), 'S'
 * (a person: *N the entry's index, *KEY "PSEUDONYM FINDINGS X"), 'B' (a
 * blocked decision: *N, *H, *JSON); 0 for the header or another malformed
 * line.
 */
int bg_rollup_parse_line(char *line, uint64_t *n, int64_t *h, char **key, char **json);
/* Is REST a person as the rollups write one ("PSEUDONYM FINDINGS X")? */
int bg_rollup_person_ok(const char *rest);
/* The raw record at WHERE ("OFFSET FILE") of U's log, or NULL (gone, or
 * not one of U's raw files). New reference. */
json_t *bg_rollup_raw_record(const bg_rollup_t *u, const char *where);
/* The members NAMES (NULL-terminated) of SRC present, as a new object. */
json_t *bg_rollup_pick(const json_t *src, const char *const *names);

#endif
