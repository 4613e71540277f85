/*
 * Yearly counters: how many distinct people's personal information went
 * abroad since 1 January (China Standard Time, UTC+8), non-sensitive and
 * sensitive separately, in total and per recipient, and which transfer
 * mechanism that volume calls for under the CAC Provisions on Promoting and
 * Regulating Cross-Border Data Flows (2024), Arts. 5, 7 and 8.
 * docs/audit.md "Yearly counters" describes what is counted and why.
 *
 * What counts. A data subject (an HMAC pseudonym) counts once per year and
 * kind when a finding of theirs left as PI (bg_counters_finding_counts): the
 * request went abroad, was not blocked, and the finding was allowed, or
 * de-identified with an operator that leaves PI (mask, hash, tokenize), or
 * the route was in monitor mode (forwarded unchanged). Anonymized findings
 * (redact, generalize, replace, removal) do not count. A person whose
 * non-sensitive AND sensitive PI left counts in BOTH numbers: the two
 * thresholds are about two different sets of people (Art. 7: "PI, not
 * including sensitive PI, of 1,000,000 people or more" / "sensitive PI of
 * 10,000 people or more"). `people` is the union.
 *
 * Persistence. An append-only file, one JSON line per newly seen
 * (year, recipient, kind, pseudonym):
 *   {"year":2026,"kind":"sensitive","recipient":"cloudscribe","subject":"<64 hex>","time":"..."}
 * plus "by":"device" when the subject was identified by a device
 * identifier (bg_counters_add_subject).
 * loaded at open (the current year's lines only), a torn last line cut. The
 * audit log stays the source of truth: `bordergate audit volumes DIR`
 * recomputes the same numbers from the decision records.
 *
 * Threads. bg_counters_add may be called from any thread. The common case
 * (this person already counted this year for this recipient and kind) is
 * two look-ups in a hash table split into 64 independently locked stripes
 * (uncontended in practice) and no I/O; only a newly seen person costs a
 * write() of one line (under a file mutex) and a short global mutex for the
 * totals. A background thread fdatasyncs the file at most once a second
 * when lines were added.
 *
 * Nothing here logs a subject: log lines carry counts and file names only.
 */
#ifndef BG_COUNTERS_H
#define BG_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct bg_counters bg_counters_t;

/* What a year's volume calls for (CAC 2024 Provisions). */
typedef enum {
    BG_VOLUME_NONE = 0,       /* below every threshold: no mechanism needed because of the
                               * volume (Art. 5(4): non-sensitive PI of < 100,000 people) */
    BG_VOLUME_CONTRACT = 1,   /* standard contract or PI protection certification (Art. 8) */
    BG_VOLUME_ASSESSMENT = 2, /* CAC security assessment (Art. 7) */
} bg_volume_level_t;

/* The thresholds, people counted since 1 January; a number at or above a
 * threshold calls for its mechanism ("以上" in the Provisions includes the
 * number itself). */
typedef struct {
    uint64_t contract_non_sensitive;   /* 100,000 (Art. 8; Art. 5(4) below it) */
    uint64_t assessment_non_sensitive; /* 1,000,000 (Art. 7(2)) */
    uint64_t contract_sensitive;       /* 1: any sensitive PI (Art. 8: "fewer than 10,000") */
    uint64_t assessment_sensitive;     /* 10,000 (Art. 7(2)) */
} bg_counters_thresholds_t;

void bg_counters_thresholds_default(bg_counters_thresholds_t *t);
/* The thresholds CFG applies: audit.thresholds over the defaults (the
 * daemon, the dashboard and `audit volumes --config`). In
 * audit/counters_config.c, so that config/ does not depend on audit/. */
struct bg_config;
void bg_config_thresholds(const struct bg_config *cfg, bg_counters_thresholds_t *t);
bg_volume_level_t bg_counters_level(const bg_counters_thresholds_t *t, uint64_t non_sensitive,
                                    uint64_t sensitive);
/* "none", "standard_contract_or_certification", "security_assessment". */
const char *bg_volume_level_name(bg_volume_level_t l);

/* The calendar year of WALL_MS in China Standard Time (UTC+8). */
int bg_counters_year_of(int64_t wall_ms);

/*
 * The one rule for "this finding's subject counts" (used by the proxy on
 * bg_decision_t and by the tools on decision records, so both agree):
 * the request went abroad (CROSS_BORDER), was not blocked (BLOCKED is the
 * outcome), and the finding left as PI: MONITOR (forwarded unchanged), or
 * ACTION_ALLOW, or ACTION_DEIDENTIFY with ANONYMIZED false.
 */
int bg_counters_finding_counts(int cross_border, int blocked, int monitor, int action_allow,
                               int action_deidentify, int anonymized);

/* The same rule applied to FINDING, one member of DECISION's "findings"
 * (both audit decision records). */
int bg_counters_json_finding_counts(const json_t *decision, const json_t *finding);
/* The same in two steps, for callers that test every finding of one
 * decision: what the rule needs of DECISION (a value for the second step),
 * then FINDING with it. */
int bg_counters_json_decision_part(const json_t *decision);
int bg_counters_json_finding_part(int decision_part, const json_t *finding);

/*
 * Is a transfer on BASIS (a decision record's basis name) exempt from the
 * volume thresholds? contract (necessary for a contract with the
 * individual, Art. 5(1)), hr_management (Art. 5(2)) and emergency (Art.
 * 5(3)) are: those transfers need no mechanism, and people whose PI left
 * only on them are counted apart ("exempt"), not towards Arts. 5(4), 7, 8.
 */
int bg_counters_basis_exempt(const char *basis);

typedef struct {
    const char *path; /* the counters file; NULL: in memory only */
    int readonly;     /* load PATH, never write it (tools) */
    int year;         /* 0: follow the clock (daemon); else count only this year (tools) */
    int quiet;        /* no log lines (tools print their own output) */
    bg_counters_thresholds_t thresholds;
    /* Wall clock for the year at open and for the sync thread; NULL = system. */
    uint64_t (*clock_ms)(void *arg);
    void *clock_arg;
} bg_counters_options_t;

/* Defaults: no path, read-write, follow the clock, CAC thresholds. */
void bg_counters_options_init(bg_counters_options_t *o);

/*
 * Open (creating it, mode 0640) and load the counters file: the lines of
 * the current year (or OPT->year) are counted, other years' lines skipped,
 * a torn last line cut (read-write) or ignored (readonly), unparsable lines
 * skipped and counted. The file is flock()ed against a second writer.
 * NULL with ERR filled on failure (no subject in it).
 */
bg_counters_t *bg_counters_open_ex(const bg_counters_options_t *opt, char *err, size_t cap);
/* bg_counters_open_ex with the defaults and PATH. */
bg_counters_t *bg_counters_open(const char *path, char *err, size_t cap);

/* Replace the thresholds (they apply to crossings detected from now on). */
void bg_counters_set_thresholds(bg_counters_t *c, const bg_counters_thresholds_t *t);

/*
 * Count PSEUDONYM_HEX (64 hex digits, the record's subject pseudonym) for
 * RECIPIENT (a recipient id; NULL or "" when the route declares none) and
 * kind SENSITIVE in the year of NOW_MS (China time). Thread-safe.
 * Returns 1 when newly counted (a line was written), 0 when already counted
 * this year for this recipient and kind (or NOW_MS is in a year this object
 * does not count), -1 with errno set when the pseudonym is malformed (EINVAL)
 * or the line could not be written (the person is then not counted, so a
 * later call tries again). When a total crosses a threshold, one warning
 * line is logged.
 */
int bg_counters_add(bg_counters_t *c, const char *recipient, const char *pseudonym_hex,
                    int sensitive, int64_t now_ms);
/* The same for a transfer that is EXEMPT (bg_counters_basis_exempt) or not:
 * exempt ones are counted in the exempt numbers only (file kinds
 * "exempt_non_sensitive" / "exempt_sensitive") and never cross a
 * threshold. bg_counters_add is EXEMPT 0. */
int bg_counters_add_ex(bg_counters_t *c, const char *recipient, const char *pseudonym_hex,
                       int sensitive, int exempt, int64_t now_ms);
/* The same for a subject identified BY_DEVICE (the decision's
 * subject_by_device: the pseudonym is of a device identifier, the route's
 * subjects.device_id, because the request had no subjects.id value). The
 * device stands for one person: counted like any person, and also in
 * "people_by_device" (the file's line says "by": "device"). A person with
 * two devices counts twice: an upper bound, the conservative direction for
 * the thresholds. bg_counters_add_ex is BY_DEVICE 0. */
int bg_counters_add_subject(bg_counters_t *c, const char *recipient, const char *pseudonym_hex,
                            int sensitive, int exempt, int by_device, int64_t now_ms);

typedef struct {
    char *recipient;                           /* "" when the route declares no recipient */
    uint64_t non_sensitive, sensitive, people; /* counted towards the thresholds */
    uint64_t exempt_non_sensitive, exempt_sensitive, exempt_people; /* Art. 5(1)-(3) */
    uint64_t people_by_device, exempt_people_by_device; /* of people / exempt_people: counted
                                                           by a device identifier */
    bg_volume_level_t level;     /* what the year's TOTAL calls for, for a recipient that
                                  * received PI this year (the thresholds are per data
                                  * handler, Arts. 7-8); NONE when it received none */
    bg_volume_level_t own_level; /* what this recipient's volume alone would call for */
} bg_counters_recipient_t;

typedef struct {
    int year;
    uint64_t non_sensitive, sensitive, people; /* counted towards the thresholds */
    uint64_t exempt_non_sensitive, exempt_sensitive, exempt_people; /* Art. 5(1)-(3) */
    uint64_t people_by_device, exempt_people_by_device; /* of people / exempt_people: counted
                                                           by a device identifier */
    bg_counters_thresholds_t thresholds;
    bg_volume_level_t level;
    bg_counters_recipient_t *recipients; /* by people, descending */
    size_t nrecipients;
    uint64_t lines_loaded, lines_skipped, torn_bytes_cut, write_errors;
    char last_error[192]; /* "" when none */
} bg_counters_snapshot_t;

/* The counts of the year of NOW_MS (or of OPT->year): zeros when nothing was
 * counted in that year yet. Free with bg_counters_snapshot_free. */
void bg_counters_snapshot(bg_counters_t *c, int64_t now_ms, bg_counters_snapshot_t *out);
void bg_counters_snapshot_free(bg_counters_snapshot_t *s);

/*
 * The snapshot as JSON (docs/audit.md "Yearly counters"):
 *   {"year", "non_sensitive", "sensitive", "people", "people_by_device", "status",
 *    "exempt": {"non_sensitive", "sensitive", "people", "people_by_device"},
 *                                                          (WITH_RECIPIENTS)
 *    "thresholds": {"contract_non_sensitive", "assessment_non_sensitive",
 *                   "contract_sensitive", "assessment_sensitive"},
 *    "recipients": [{"recipient", "non_sensitive", "sensitive", "people",
 *                    "people_by_device", "status", "own_volume_status",
 *                    "exempt": {...}}]}   (WITH_RECIPIENTS)
 */
json_t *bg_counters_snapshot_json(const bg_counters_snapshot_t *s, int with_recipients);

/* Stop the sync thread, sync, unlock and close the file, free. */
void bg_counters_close(bg_counters_t *c);

/*
 * The document `bordergate audit volumes --json` prints, for YEAR (0: this
 * year): from the counters file COUNTERS (read-only, no lock: a running
 * daemon may hold it) when non-NULL, else recomputed from AUDIT_DIR's
 * PREFIX-*.jsonl decision records. THRESHOLDS NULL: the CAC defaults (what
 * the CLI uses). The dashboard's /api/volumes (bg_counters_volumes of one
 * directory). NULL with ERR filled.
 */
json_t *bg_counters_volumes_json(const char *counters, const char *audit_dir, const char *prefix,
                                 int year, const bg_counters_thresholds_t *thresholds, char *err,
                                 size_t errcap);

/*
 * What `audit volumes` shows for YEAR (0: this year): the snapshot of the
 * counters read-only from the counters file COUNTERS (no lock: a running
 * daemon may hold it) when non-NULL, else recounted from the decision
 * records of the audit OPERANDS[0..N) (directories stand for their
 * PREFIX-*.jsonl files). THRESHOLDS NULL: the CAC defaults. 0 (free with
 * bg_counters_volumes_free), or -1 with ERR filled.
 */
typedef struct {
    bg_counters_snapshot_t snap;
    int from_counters;                    /* read from a counters file, else from the audit log */
    int year;                             /* the counters' year */
    uint64_t lines_loaded, lines_skipped; /* counters file lines read / unreadable */
    uint64_t files, decisions;            /* audit log: files and decision records read */
    uint64_t unparsable, torn;            /* audit log: lines skipped (bg_report_scan_stats_t) */
} bg_counters_volumes_t;

int bg_counters_volumes(const char *counters, char *const *operands, size_t n, const char *prefix,
                        int year, const bg_counters_thresholds_t *thresholds,
                        bg_counters_volumes_t *v, char *err, size_t errcap);
/* The `audit volumes --json` document of V (new reference). */
json_t *bg_counters_volumes_doc(const bg_counters_volumes_t *v);
void bg_counters_volumes_free(bg_counters_volumes_t *v);

/* ------------------------------------------------------------------------
 * Fleet (audit/counters_redis.c): the same counts across every instance,
 * in Redis sets of pseudonyms (exact: a person counted by several
 * instances is one member). The local counters file stays the journal.
 * ------------------------------------------------------------------------ */

struct bg_redis_cfg; /* store/redis.h */
typedef struct bg_counters_fleet bg_counters_fleet_t;

/*
 * Start copying the lines of COUNTERS_FILE (the daemon's counters journal)
 * into the store CFG: a thread tails the file every 100 ms and pushes new
 * lines; while the store is unreachable they wait in the file (nothing is
 * lost), and a start pushes the whole file again (SADD is idempotent).
 * NULL with ERR on failure (memory, thread).
 */
bg_counters_fleet_t *bg_counters_fleet_start(const char *counters_file,
                                             const struct bg_redis_cfg *cfg, char *err,
                                             size_t errcap);
/* One last push attempt, stop the thread, free. NULL is ignored. */
void bg_counters_fleet_stop(bg_counters_fleet_t *f);
/* Store reachable, bytes of complete lines not pushed yet, lines pushed. */
void bg_counters_fleet_stats(bg_counters_fleet_t *f, int *up, long long *pending_bytes,
                             unsigned long long *lines);
/* The fleet's counts for YEAR (> 0) from the store CFG, levels computed
 * with THRESHOLDS (NULL: CAC defaults). 0, or -1 with ERR. Free OUT with
 * bg_counters_snapshot_free. */
int bg_counters_fleet_snapshot(const struct bg_redis_cfg *cfg, int year,
                               const bg_counters_thresholds_t *thresholds,
                               bg_counters_snapshot_t *out, char *err, size_t errcap);
/* The `audit volumes --json` document of the fleet figure for YEAR (0:
 * this year), "source": "redis". NULL with ERR. */
json_t *bg_counters_fleet_volumes_json(const struct bg_redis_cfg *cfg, int year,
                                       const bg_counters_thresholds_t *thresholds, char *err,
                                       size_t errcap);

#endif
