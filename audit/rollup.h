/*
 * Rollups of the audit log: per-hour aggregates of the decision records,
 * kept on disk next to the log, so a report or a dashboard page over a year
 * reads the aggregates instead of every raw record (docs/operations.md
 * "The dashboard and rollups").
 *
 * Design (why tailing, not a hook in the writer): the rollups are brought up
 * to date by reading the raw log from where the last update stopped (a byte
 * offset per file, in the state file). The raw log stays the only thing the
 * writer thread must get right; a crash, a full disk or a rollup bug never
 * touches the chain, and `bordergate audit rebuild DIR` recomputes
 * everything from the raw log.
 *
 * Layout, in DIR/PREFIX.rollup/:
 *   state        where the update stopped: per raw file its name, the bytes
 *                and lines consumed (complete lines only), and the line
 *                sequence number reached (seq: lines over all files)
 *   YYYY-MM-DD   one file per China-time day (UTC+8, the reports' days):
 *                "# bordergate-rollup/1 through=SEQ", then lines
 *                "T JSON": each decision shape of the day once (the
 *                reduced record: only the members reports read, no person,
 *                no time), numbered from 0;
 *                "A N HOUR_MS T": N decisions of that hour had shape T;
 *                "S A PSEUDONYM FINDINGS X": a person (pseudonym as the 32
 *                hex digits reports compare) named by the decisions of
 *                entry A (the A lines numbered from 0): FINDINGS the
 *                shape's findings naming them ("0,3" or "-"), X 1 when its
 *                subjects list does - for the distinct-people counts;
 *                "B SEQ HOUR_MS OFFSET FILE": where a blocked decision
 *                is in the raw log, for the dashboard's latest-blocked list
 *   none         the same for records without a time
 *   lock         flock: updates take it exclusively, readers shared
 *
 * Shapes repeat over a day and identical lines of an hour collapse, so the
 * size is that of the distinct decision shapes (recipient, country,
 * outcome, findings' categories, rules...) per day, their hours, and the
 * distinct (person, shape) pairs per hour - not of the traffic. Exact
 * counts of distinct people cannot cost less than the people counted: at a
 * few decisions an hour, each naming new people, the rollups are a third of
 * the log and save little; at a steady rate with returning people they are
 * about 1% of it (bench/dashboard_bench.py).
 *
 * A day file holds every record with a sequence number up to its
 * "through": an update that crashed between renaming day files and the
 * state re-reads those records and skips them for the days already
 * written, so nothing counts twice.
 *
 * Reports over rollups are exact (identical to the raw scan) for windows
 * whose bounds are whole hours (dates, HH:00) or open; other windows read
 * the raw log. Rollups are dropped and rebuilt when the raw files no longer
 * match the state (a file removed by retention, truncated, replaced).
 *
 * Threads: a bg_rollup_t belongs to one thread.
 */
#ifndef BG_ROLLUP_H
#define BG_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "audit/report.h"

typedef struct bg_rollup bg_rollup_t;

#define BG_ROLLUP_READ 0    /* read the rollups, bring them up to date in memory only */
#define BG_ROLLUP_WRITE 1   /* ... and save the update (the daemon) */
#define BG_ROLLUP_REBUILD 2 /* drop the rollups and recompute them (waits for the lock) */

/*
 * The rollups of audit directory DIR (files PREFIX-*.jsonl). MODE as above.
 * A reader holds a shared lock until bg_rollup_free (not waiting: when an
 * update or a rebuild holds it, NULL with ERR "busy"). NULL with ERR filled.
 */
bg_rollup_t *bg_rollup_open(const char *dir, const char *prefix, int mode, char *err,
                            size_t errcap);

/* Read at most MAX_LINES new lines of the raw log: 1 more to read, 0 up to
 * date, -1 with ERR filled. */
int bg_rollup_step(bg_rollup_t *u, size_t max_lines, char *err, size_t errcap);

/*
 * Write what the steps read into the day files and the state (modes WRITE
 * and REBUILD). 0 saved, 1 not saved because another process holds the lock
 * (the update stays in memory and the next one redoes it), -1 with ERR.
 */
int bg_rollup_save(bg_rollup_t *u, char *err, size_t errcap);

/* Non-zero when a window [FROM, TO) can be answered from rollups exactly:
 * each bound open (BG_REPORT_NO_TIME) or a whole hour. */
int bg_rollup_window_ok(int64_t from_ms, int64_t to_ms);

/*
 * One rollup entry: REC a reduced decision record (borrowed) standing for
 * WEIGHT decisions; or with BLOCKED set, one whole blocked decision record
 * (WEIGHT 1) whose position in the log is ORDER (directories in the order
 * given, then log order) - those come after every aggregate, oldest first.
 * Non-zero stops the query.
 */
typedef int (*bg_rollup_entry_cb)(void *arg, const json_t *rec, uint64_t weight, uint64_t order,
                                  int blocked);

/*
 * Hand CB every entry of rollups US[0..N) (each stepped to 0) inside
 * [FROM_MS, TO_MS) - bg_rollup_window_ok must hold - the saved ones and
 * those still in memory; then the BLOCKED_LIMIT (0: none) latest blocked
 * decisions of the window, read whole from the raw log. ST (may be
 * NULL) gets the raw log's counts (files, lines, unparsable, incomplete)
 * over all of it. 0, or -1 with ERR filled.
 */
int bg_rollup_query(bg_rollup_t *const *us, size_t n, int64_t from_ms, int64_t to_ms,
                    int blocked_limit, bg_rollup_entry_cb cb, void *arg, bg_report_scan_stats_t *st,
                    char *err, size_t errcap);

/* The same in steps, for an event loop (the dashboard): each step reads a
 * few hundred lines of a day file (or one day of the update in memory); 1 more, 0 done, -1 with
 * ERR filled. US (borrowed) must outlive the query. Stats after the last
 * step. */
typedef struct bg_rollup_query bg_rollup_query_t;
bg_rollup_query_t *bg_rollup_query_new(bg_rollup_t *const *us, size_t n, int64_t from_ms,
                                       int64_t to_ms, int blocked_limit, bg_rollup_entry_cb cb,
                                       void *arg, char *err, size_t errcap);
int bg_rollup_query_step(bg_rollup_query_t *x, char *err, size_t errcap);
const bg_report_scan_stats_t *bg_rollup_query_stats(const bg_rollup_query_t *x);
void bg_rollup_query_free(bg_rollup_query_t *x);
/*
 * Hand the people of each entry to PCB (with ARG, the query's) instead of
 * the entry callback's weight-0 record carrying them: the entry REC
 * (borrowed, its time set) and its people, each once per call. What
 * bg_report_add_people counts equals what that record counts, without
 * building it (a long window's cost is its people). Before the first step.
 */
typedef int (*bg_rollup_people_cb)(void *arg, const json_t *rec, const bg_report_person_t *ps,
                                   size_t n);
void bg_rollup_query_set_people(bg_rollup_query_t *x, bg_rollup_people_cb pcb);
/*
 * Sum the entries of each shape per China day before handing them out
 * (once per shape and day, at the first hour of the window it had, after
 * the last day read): for consumers that need no hour - a report without
 * the hour dimension counts the same, from fewer calls (a long window's
 * shapes repeat every hour). Before the first step.
 */
void bg_rollup_query_set_daily(bg_rollup_query_t *x);

void bg_rollup_free(bg_rollup_t *u);

/*
 * Recompute DIR's rollups (DIR/PREFIX.rollup/) from its raw audit log and
 * save them (`bordergate audit rebuild`; takes the rebuild lock). 0 with
 * the files and lines read in *NFILES / *NLINES, or -1 with ERR filled.
 */
int bg_rollup_rebuild(const char *dir, const char *prefix, size_t *nfiles, uint64_t *nlines,
                      char *err, size_t errcap);

/* ------------------------------------------------------------------------
 * For the fleet (audit/rollup_fleet.c): hours of rollups as text
 *
 * An hour's text is self-contained, in the day files' line format: the
 * header "# bordergate-rollup-hour/1", the shapes of that hour ("T",
 * numbered from 0), its entries ("A N HOUR_MS T"), their people ("S"), and
 * its blocked decisions ("B TIME_MS HOUR_MS RECORD": the members of the
 * record the latest-blocked list reads, as no other instance can read this
 * one's raw log).
 * ------------------------------------------------------------------------ */

/* DIR/PREFIX.rollup of U (borrowed). */
const char *bg_rollup_dir(const bg_rollup_t *u);
/* Add U's raw log counts (all of it) to ST. 0, or -1 when out of memory. */
int bg_rollup_input(const bg_rollup_t *u, bg_report_scan_stats_t *st);

/* TEXT (LEN bytes, valid during the call) is hour HOUR_MS. Non-zero stops. */
typedef int (*bg_rollup_hour_cb)(void *arg, int64_t hour_ms, const char *text, size_t len);
/*
 * Each hour of U's saved day file DAY ("YYYY-MM-DD") as text, oldest first
 * (a day that is not saved has none). Reads the day file whole, and each
 * blocked decision's record from the raw log. 0, or -1 with ERR filled.
 */
int bg_rollup_day_hours(const bg_rollup_t *u, const char *day, bg_rollup_hour_cb cb, void *arg,
                        char *err, size_t errcap);

/*
 * A query made by bg_rollup_query_new over no rollups (US NULL, N 0) is
 * fed hours as text: each entry of TEXT inside the window goes to the
 * callback at once; the blocked decisions (ordered by their time) after the
 * last bg_rollup_query_step. 0, or -1 with ERR filled (not an hour's text,
 * out of memory). Damaged lines inside are skipped as in a day file.
 */
int bg_rollup_query_text(bg_rollup_query_t *x, const char *text, size_t len, char *err,
                         size_t errcap);
/* Non-zero when day DAY ("YYYY-MM-DD") can hold hours of X's window. */
int bg_rollup_query_day_wanted(const bg_rollup_query_t *x, const char *day);
/* Add ST to the input counts X reports. */
void bg_rollup_query_add_input(bg_rollup_query_t *x, const bg_report_scan_stats_t *st);

#endif
