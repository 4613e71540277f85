/*
 * Internals of the rollups shared by audit/rollup.c (which owns the day
 * files, the tailing and the queries) and audit/rollup_hours.c (a day split
 * into hours as text, for the fleet). Not for other modules: audit/rollup.h
 * is the interface.
 */
#ifndef BG_ROLLUP_INT_H
#define BG_ROLLUP_INT_H

#include <stdint.h>

#include <jansson.h>

#include "audit/rollup.h"

/* The first line of an hour's text. */
#define BG_ROLLUP_HOUR_FORMAT "# bordergate-rollup-hour/1"

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
