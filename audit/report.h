/*
 * Reports over the audit log, for the PI protection impact assessment, the
 * regulator and data subjects' access requests (docs/audit.md "Reports"):
 *
 *   bordergate audit report  [--from DATE] [--to DATE] [--by KEY] [--json] DIR|FILE...
 *   bordergate audit subject (ID|-) (--key FILE|--key-env NAME) DIR|FILE... [--json]
 *   bordergate audit subject --pseudonym HEX DIR|FILE... [--json]
 *
 * Files are read line by line (one record in memory at a time); only the
 * sets of distinct subject pseudonyms grow with the log (16 bytes each).
 * Reports do not verify the chain: run `bordergate audit verify` for that.
 * Output never holds a raw subject id or a PI value: the records hold none.
 */
#ifndef BG_REPORT_H
#define BG_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* ------------------------------------------------------------------------
 * Reading audit files
 * ------------------------------------------------------------------------ */

#define BG_REPORT_NO_TIME INT64_MIN

/*
 * Parse a report DATE into milliseconds since the epoch:
 *   YYYY-MM-DD                       China Standard Time (UTC+8) midnight; with
 *                                    END set, the midnight after (so "--to
 *                                    2026-03-31" includes that whole day)
 *   YYYY-MM-DDTHH:MM[:SS[.fff]]      China time unless followed by Z or +HH:MM/-HH:MM
 * 0, or -1 when S is not such a date.
 */
int bg_report_parse_date(const char *s, int end, int64_t *out_ms);

/* A record's "time" (RFC 3339, as the writer writes it) in ms, or
 * BG_REPORT_NO_TIME. */
int64_t bg_report_record_time(const json_t *record);

/*
 * Expand OPERANDS (directories stand for their PREFIX-*.jsonl files in log
 * order, other operands are files) into *OUT (free with bg_audit_free_list).
 * 0, or -1 with ERR filled.
 */
int bg_report_expand(char *const *operands, size_t n, const char *prefix, char ***out, size_t *nout,
                     char *err, size_t errcap);

/*
 * Drop from the front of PATHS (log order, *N entries; the dropped strings
 * are freed) the files that cannot hold a record at or after FROM_MS: a
 * file is dropped when the NEXT file's name (PREFIX-YYYYMMDD-HHMMSS-N.jsonl,
 * its creation time in UTC) is more than a day before FROM_MS - every
 * record of a file was written before the next file was created; the day
 * of margin covers the name's one-second resolution and a wall clock
 * stepped back. Files with other names stop the pruning. Returns how many
 * were dropped. FROM_MS BG_REPORT_NO_TIME: none.
 */
size_t bg_report_prune(char **paths, size_t *n, const char *prefix, int64_t from_ms);

/*
 * bg_report_expand + bg_report_prune, each operand on its own: several
 * directories are several instances' logs, and one instance's files say
 * nothing about when another's were written (pruning them together could
 * drop an instance's last file). *OUT as bg_report_expand. 0, or -1 with
 * ERR filled.
 */
int bg_report_expand_pruned(char *const *operands, size_t n, const char *prefix, int64_t from_ms,
                            char ***out, size_t *nout, char *err, size_t errcap);

typedef struct {
    uint64_t files, lines, records; /* records: lines handed to the callback */
    uint64_t unparsable;            /* complete lines that are not a JSON object */
    uint64_t torn;                  /* last lines without a newline (being written, or torn) */
} bg_report_scan_stats_t;

/* Cheap pre-filter on the raw line (not NUL-terminated); non-zero = parse it. */
typedef int (*bg_report_want_cb)(void *arg, const char *line, size_t len);
/* A parsed record (borrowed: valid during the call). Non-zero stops the scan. */
typedef int (*bg_report_record_cb)(void *arg, const json_t *record);

/* The pre-filter of decision records: the writer writes records compactly,
 * so a decision's line holds "type":"decision" verbatim. ARG unused. */
int bg_report_want_decision(void *arg, const char *line, size_t len);

/*
 * Read PATHS in order, line by line; lines for which WANT (may be NULL)
 * returns non-zero are parsed and handed to CB. Counts in ST (may be NULL).
 * 0, or -1 with ERR filled when a file cannot be read.
 */
int bg_report_scan(const char *const *paths, size_t n, bg_report_want_cb want,
                   bg_report_record_cb cb, void *arg, bg_report_scan_stats_t *st, char *err,
                   size_t errcap);

/* ------------------------------------------------------------------------
 * The report
 * ------------------------------------------------------------------------ */

typedef enum {
    BG_REPORT_BY_NONE = 0,
    BG_REPORT_BY_RECIPIENT,
    BG_REPORT_BY_COUNTRY,
    BG_REPORT_BY_CATEGORY, /* per finding: a decision counts in each of its categories */
    BG_REPORT_BY_BASIS,    /* per finding */
    BG_REPORT_BY_OUTCOME,
    BG_REPORT_BY_ROUTE,
    BG_REPORT_BY_REASON, /* per reason code: a decision counts once in each of its codes */
    BG_REPORT_BY_DAY,    /* the decision's day in China time ("2026-03-01"), oldest first */
    BG_REPORT_BY_HOUR,   /* its hour in China time ("2026-03-01T08"), oldest first */
    BG_REPORT_BY_RULE,   /* per finding: the policy rule applied (rule id, default, never_export) */
} bg_report_by_t;

const char *bg_report_by_name(bg_report_by_t by);

/*
 * A set of dimensions, `--by recipient,category,basis`: one group per
 * combination of their values. Decision-level dimensions (recipient,
 * country, outcome, route, day, hour) combine with at most one family of
 * per-item dimensions: the per-finding ones (category, basis, rule - a
 * finding counts in the combination of its own values, a decision once in
 * each combination its findings reach) or reason (a decision once per
 * distinct code). reason together with a per-finding dimension is refused:
 * reasons and findings are different lists, their product would count
 * things twice. ndims 0 = no grouping.
 */
#define BG_REPORT_MAX_DIMS 4
typedef struct {
    bg_report_by_t dims[BG_REPORT_MAX_DIMS];
    size_t ndims;
} bg_report_dims_t;

/* "recipient,category,basis" (comma-separated, no repeats) -> D. 0, or -1
 * with ERR filled. */
int bg_report_dims_parse(const char *s, bg_report_dims_t *d, char *err, size_t errcap);
/* "recipient,category,basis"; "" for no grouping. */
void bg_report_dims_name(const bg_report_dims_t *d, char *out, size_t cap);
/* Non-zero when one of D[0..N) groups by hour. */
int bg_report_dims_hourly(const bg_report_dims_t *d, size_t n);

/*
 * The clauses of a policy's rules, for records that do not carry their own
 * (docs/audit.md "Clauses"): RULES {"rule id": "clause", ...} (borrowed),
 * SHA256 the policy file's SHA-256 (what decision records name in
 * policy.sha256; borrowed). A record decided under another file gets the
 * clause marked "clause_from": "other_policy".
 */
typedef struct {
    const json_t *rules;
    const char *sha256;
} bg_report_policy_t;

/* RULES for POLICY's rules that have a clause (new reference); the daemon's
 * and the CLI's --config path build it the same way. */
struct bg_policy;
json_t *bg_report_policy_clauses(const struct bg_policy *policy);

/*
 * The same from the configuration file PATH without loading it (no key is
 * needed, nothing is validated: `bordergate check` does that): its rules'
 * ids and clauses (rules[].id/clause) into *CLAUSES (new reference)
 * and the file's SHA-256 - what the daemon records as policy.sha256 - into
 * SHA256. 0, or -1 with ERR filled.
 */
int bg_report_policy_read(const char *path, json_t **clauses, char sha256[65], char *err,
                          size_t errcap);

typedef struct bg_report bg_report_t;

/* A report over the window [FROM_MS, TO_MS) (BG_REPORT_NO_TIME: open). */
bg_report_t *bg_report_new(bg_report_by_t by, int64_t from_ms, int64_t to_ms);
/* The same by a set of dimensions; POL (may be NULL, borrowed for the
 * report's life) supplies clauses the records do not carry. */
bg_report_t *bg_report_new_dims(const bg_report_dims_t *d, int64_t from_ms, int64_t to_ms,
                                const bg_report_policy_t *pol);
/* Count one record: decision records inside the window; others are ignored.
 * Returns 1 when counted, 0 when not, -1 when out of memory. */
int bg_report_add(bg_report_t *r, const json_t *record);
/* The same for a record standing for WEIGHT decisions (a rollup entry,
 * audit/rollup.h): every count grows by WEIGHT, sets of subjects once. */
int bg_report_add_weighted(bg_report_t *r, const json_t *record, uint64_t weight);
/*
 * One person of a rollup entry (audit/rollup.h "S" lines): the 16 bytes
 * reports compare, which of the entry's findings name them (indexes into
 * its "findings"), and whether its subjects list does (LISTED).
 */
typedef struct {
    uint8_t key[16];
    const uint32_t *findings;
    size_t nfindings;
    int listed;
} bg_report_person_t;
/*
 * The people PS[0..N) of one reduced decision REC (a rollup entry): the
 * same as bg_report_add_weighted with weight 0 on REC carrying them (a copy
 * of each finding naming a person, the person in its subjects list) - it
 * counts nothing and adds the people to the distinct-subject sets - without
 * building that record. 1 counted, 0 not (outside the window, not a
 * decision), -1 out of memory.
 */
int bg_report_add_people(bg_report_t *r, const json_t *rec, const bg_report_person_t *ps, size_t n);
/*
 * The report as JSON (docs/audit.md "Reports", format
 * "bordergate-audit-report/1"): window, input counts, "totals" and, with a
 * grouping, "groups" (each the same counts plus "key"). SCAN may be NULL.
 */
json_t *bg_report_json(const bg_report_t *r, const bg_report_scan_stats_t *scan);
/*
 * The whole `audit report --json --raw` document over PATHS (read in
 * order): bg_report_new_dims + bg_report_scan + bg_report_json (POL may be
 * NULL). NULL with ERR filled on a read error or when out of memory.
 */
json_t *bg_report_run_dims(const char *const *paths, size_t n, const bg_report_dims_t *d,
                           int64_t from_ms, int64_t to_ms, const bg_report_policy_t *pol, char *err,
                           size_t errcap);
/* The table for people (`audit report` without --json). */
void bg_report_print(const bg_report_t *r, const bg_report_scan_stats_t *scan, FILE *out);
/* Non-zero when R ran out of memory counting (some subjects not counted). */
int bg_report_oom(const bg_report_t *r);
/*
 * The `audit report` count over OPERANDS[0..N) (directories or files, as
 * bg_report_expand) in [FROM_MS, TO_MS) by D with POL (may be NULL): from
 * the directories' rollups (audit/rollup.h, brought up to date in memory)
 * when every operand is a directory, the window's bounds are whole hours,
 * no rebuild holds the lock and RAW is 0; else from the raw records of the
 * files bg_report_expand_pruned keeps. ST is filled. The report (free with
 * bg_report_free), or NULL with ERR filled.
 */
bg_report_t *bg_report_collect(const bg_report_dims_t *d, int64_t from_ms, int64_t to_ms,
                               const bg_report_policy_t *pol, char *const *operands, size_t n,
                               const char *prefix, int raw, bg_report_scan_stats_t *st, char *err,
                               size_t errcap);
void bg_report_free(bg_report_t *r);

/* ------------------------------------------------------------------------
 * Subject look-up
 * ------------------------------------------------------------------------ */

/*
 * Every decision record naming ANY of PSEUDONYMS[0..NP) (64 hex digits,
 * either case; a person known by several identifiers) (in "subjects", in a finding's
 * "subject", or in a finding's "value_pseudonym" when records carry it).
 * The document's "subject" holds "pseudonym" (the first) and "pseudonyms"
 * (all, duplicates dropped); each decision's findings are the person's
 * under any of them.
 */
json_t *bg_report_subject(const char *const *paths, size_t n, const char *const *pseudonyms,
                          size_t np, int64_t from_ms, int64_t to_ms, bg_report_scan_stats_t *st,
                          char *err, size_t errcap);

/*
 * The forms under which identifier ID may have been pseudonymized, ID
 * itself first: trimmed; an e-mail address in lower case; a phone number
 * as digits only, a mainland mobile also as 11 digits, "+86..." and
 * "86..."; a resident ID number with its check character X in both cases.
 * (A subjects.id field is pseudonymized exactly as the request carried it,
 * so the same person can appear under any of these.) Returns how many were
 * written to FORMS (at most MAX).
 */
#define BG_REPORT_ID_MAX 256
size_t bg_report_identifier_forms(const char *id, char forms[][BG_REPORT_ID_MAX], size_t max);

/* ------------------------------------------------------------------------
 * The latest blocked decisions
 * ------------------------------------------------------------------------ */

#define BG_REPORT_BLOCKED_MAX 1000

/*
 * The LIMIT (1..BG_REPORT_BLOCKED_MAX) most recent decision records with
 * outcome "block" in [FROM_MS, TO_MS), newest first, as a JSON document
 * (docs/audit.md "audit blocked", format "bordergate-audit-blocked/1"):
 * decision id, time, route, recipient, destination, mode, reasons (code,
 * rule, clause, category, path, detail) and findings (path, category,
 * action, rule, clause) - never a value (records hold none). A clause comes
 * from the record when it carries one, else from POL (may be NULL).
 * Memory: LIMIT summaries. NULL with ERR filled on a read error.
 */
json_t *bg_report_blocked(const char *const *paths, size_t n, int64_t from_ms, int64_t to_ms,
                          int limit, const bg_report_policy_t *pol, bg_report_scan_stats_t *st,
                          char *err, size_t errcap);

/*
 * Several documents over PATHS in ONE pass (the dashboard), read in slices
 * (bg_report_many_step reads at most MAX_LINES lines and returns 1 more to
 * read, 0 done, -1 ERR filled): for each of DIMS[0..NDIMS) the `audit report
 * --json --by D` document, and with BLOCKED_LIMIT > 0 the `audit blocked
 * --json --limit N` document, each exactly as those commands print it for
 * the same window (and the same policy POL, may be NULL, given to them with
 * --config):
 *   {"reports": {"country": {...}, "recipient,category": {...}, ...}, "blocked": {...}}
 * (keyed by bg_report_dims_name; no grouping is keyed "totals"). PATHS and
 * POL borrowed until bg_report_many_free. NULL when out of memory.
 */
typedef struct bg_report_many bg_report_many_t;
bg_report_many_t *bg_report_many_new(const char *const *paths, size_t n,
                                     const bg_report_dims_t *dims, size_t ndims, int64_t from_ms,
                                     int64_t to_ms, int blocked_limit,
                                     const bg_report_policy_t *pol);
int bg_report_many_step(bg_report_many_t *m, size_t max_lines, char *err, size_t errcap);
/* After the last step: the document. NULL with ERR filled. */
json_t *bg_report_many_json(const bg_report_many_t *m, char *err, size_t errcap);
void bg_report_many_free(bg_report_many_t *m);
/*
 * Feeding a bg_report_many_t made over no paths from rollups instead of the
 * raw log: a reduced decision standing for WEIGHT decisions, or with BLOCKED
 * one whole blocked decision for the latest-blocked list (oldest first;
 * the blocked total comes from the reduced decisions). 0, or -1 when out of
 * memory. bg_report_many_feed_done gives the "input" counts to report.
 */
int bg_report_many_feed(bg_report_many_t *m, const json_t *rec, uint64_t weight, int blocked);
/* The people of a reduced decision, for every document (bg_report_add_people). */
int bg_report_many_feed_people(bg_report_many_t *m, const json_t *rec, const bg_report_person_t *ps,
                               size_t n);
void bg_report_many_feed_done(bg_report_many_t *m, const bg_report_scan_stats_t *input);

#endif
