/*
 * What the report files share (audit/report.c the counting, report_read.c
 * dates and reading, report_text.c the table, report_subject.c,
 * report_blocked.c): the report's types and a few helpers. Not an API:
 * include it only from audit/report*.c.
 */
#ifndef BG_REPORT_INT_H
#define BG_REPORT_INT_H

#include <stdint.h>

#include <jansson.h>

#include "audit/report.h"

/* A set of distinct subjects: 16-byte keys in an open-addressing table. */
typedef struct {
    uint8_t (*keys)[16]; /* all-zero = empty slot; a zero key is kept in has_zero */
    size_t cap, n;
    int has_zero;
} idset_t;

#define NOUT 3
#define NACT 5

typedef struct {
    uint64_t decisions, cross_border, monitor;
    uint64_t outcome[NOUT], would[NOUT];
    uint64_t findings, sensitive, left;
    uint64_t action[NACT];
    idset_t subjects, subjects_left;
    uint64_t serial; /* the last decision counted (finding-level groups) */
    json_t *mech;    /* groups with a recipient dimension: {mechanism: decisions} */
    json_t *rules;   /* groups with a per-finding dimension: {rule: {findings, clause...}} */
} counts_t;

typedef struct {
    char *key[BG_REPORT_MAX_DIMS]; /* NULL: no value (no recipient, unknown country, ...) */
    counts_t c;
} group_t;

struct bg_report {
    bg_report_by_t by; /* the first dimension (BY_NONE: no grouping) */
    bg_report_dims_t dims;
    int finding_dims, reason_dim; /* the set holds per-finding dimensions / reason */
    int want_mech, want_rules;    /* rows carry "mechanisms" / "rules" */
    bg_report_policy_t pol;       /* pol.rules NULL: no policy given */
    int64_t from, to;
    counts_t total;
    group_t *groups;
    size_t ngroups, cap;
    uint64_t serial;
    uint64_t weight; /* how many decisions the record being added stands for */
    int part;        /* bg_counters_json_decision_part of that record */
    int oom;
};

/* "2026-03-01T08:00:00+08:00" for people (China time) into OUT. */
void bg_report_china_time(int64_t ms, char *out, size_t cap);
/* MS as RFC 3339 UTC, or JSON null for BG_REPORT_NO_TIME (new reference). */
json_t *bg_report_utc_or_null(int64_t ms);

/*
 * Reading in slices, for callers that must not block their event loop (the
 * dashboard through bg_report_many_t): bg_report_scanner_step reads at most
 * MAX_LINES lines and returns 1 (more to read), 0 (done) or -1 (ERR
 * filled). PATHS is borrowed until bg_report_scanner_free.
 */
typedef struct bg_report_scanner bg_report_scanner_t;
bg_report_scanner_t *bg_report_scanner_new(const char *const *paths, size_t n,
                                           bg_report_want_cb want, bg_report_record_cb cb,
                                           void *arg);
int bg_report_scanner_step(bg_report_scanner_t *s, size_t max_lines, char *err, size_t errcap);
const bg_report_scan_stats_t *bg_report_scanner_stats(const bg_report_scanner_t *s);
void bg_report_scanner_free(bg_report_scanner_t *s);

/* A group row's transfer mechanisms / rules and clauses as JSON arrays (new
 * references; M may be NULL). */
json_t *bg_report_mech_json(const json_t *m);
json_t *bg_report_rules_json(const json_t *m);
/* The clause of a finding or reason ITEM of decision REC: the item's own,
 * else POL's for its rule (*FROM "record", "policy" or "other_policy"), or
 * NULL. */
const char *bg_report_clause_of(const bg_report_policy_t *pol, const json_t *rec,
                                const json_t *item, const char **from);
/* S as a JSON string, NULL as JSON null (new reference). */
json_t *bg_report_str_json(const char *s);
/* Sort R's groups in the order the report lists them. */
void bg_report_sort_groups(const bg_report_t *r);
/* Non-zero for a per-finding dimension (category, basis, rule). */
int bg_report_finding_dim(bg_report_by_t b);

#endif
