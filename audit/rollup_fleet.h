/*
 * The fleet's rollups in the shared store (docs/operations.md "Running a
 * fleet", docs/audit.md "Rollups"; the hours' text: audit/rollup_hours.c,
 * read back by audit/rollup_query.c): every instance publishes the per-hour
 * rollups of its own audit log (audit/rollup.h) to Redis, and the dashboard
 * of any instance reads every instance's hours from there, so it shows the
 * fleet's traffic although each pod's audit directory is on its own volume.
 *
 * Keys (ID: the instance, kept in DIR/PREFIX.rollup/instance, so a
 * restarted instance with the same audit directory writes the same keys):
 *   bg:roll:instances      set: every ID that published
 *   bg:roll:ID:days        set: the days ("YYYY-MM-DD", China time) ID holds
 *   bg:roll:ID:DAY         hash: HOUR_MS -> that hour's rollup as text
 *                          (rollup.h "For the fleet")
 *   bg:roll:ID:info        hash: the raw log's counts (files, lines,
 *                          unparsable, torn), host, updated_ms
 *
 * Exact, no double counting: an hour is written whole (HSET overwrites
 * it), so publishing it again after a crash or a restart changes nothing;
 * each instance's hours hold its own decisions only, and the query merges
 * the instances' hours through the same report code as `audit report DIR1
 * DIR2`: the distinct-people figures are sets of pseudonyms, a person seen
 * by two instances counts once.
 *
 * Cost: publishing re-reads the day files that changed since the last
 * round and sends only the hours whose text changed (normally the current
 * hour). A query costs one round trip per (instance, day) in the window
 * and reads the hours' text: the distinct decision shapes and (person,
 * shape) pairs of each hour, as the local rollups do, not the raw records.
 */
#ifndef BG_ROLLUP_FLEET_H
#define BG_ROLLUP_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "audit/report.h"
#include "audit/rollup.h"

struct bg_redis_cfg; /* store/redis.h */

typedef struct bg_rollup_fleet bg_rollup_fleet_t;

/*
 * Start publishing the rollups of audit directory DIR (files PREFIX-*.jsonl;
 * PREFIX NULL: "audit") to the store CFG (copied): a thread brings the
 * rollups up to date every INTERVAL_MS (0: 1000; or 9 times the last
 * round's duration when that is longer: at most a tenth of a core) and
 * publishes what changed.
 * Redis unreachable: the rollups stay on disk and the next round that
 * reaches it publishes every day whole again. NULL with ERR filled (memory,
 * thread, the rollup directory or its instance file cannot be made).
 */
bg_rollup_fleet_t *bg_rollup_fleet_start(const char *dir, const char *prefix,
                                         const struct bg_redis_cfg *cfg, int interval_ms, char *err,
                                         size_t errcap);
/* Stop the thread (a round in progress is abandoned: what it had not
 * published is published at the next start), free. NULL is ignored. */
void bg_rollup_fleet_stop(bg_rollup_fleet_t *f);
/* The instance's name in the store (borrowed). */
const char *bg_rollup_fleet_id(const bg_rollup_fleet_t *f);
/* Store reachable at the last round (1) or not (0); rounds done; hours sent. */
void bg_rollup_fleet_stats(bg_rollup_fleet_t *f, int *up, unsigned long long *rounds,
                           unsigned long long *hours);

/*
 * A query over every instance's published hours in [FROM_MS, TO_MS)
 * (bg_rollup_window_ok must hold), read in steps (one round trip each) on
 * the caller's thread: CB gets the entries as from bg_rollup_query (the
 * blocked decisions, ordered by their time, after the last step). Input
 * counts: the sum of the instances' whole raw logs.
 */
typedef struct bg_rollup_fleet_query bg_rollup_fleet_query_t;
bg_rollup_fleet_query_t *bg_rollup_fleet_query_new(const struct bg_redis_cfg *cfg, int64_t from_ms,
                                                   int64_t to_ms, int blocked_limit,
                                                   bg_rollup_entry_cb cb, void *arg, char *err,
                                                   size_t errcap);
/* People of each entry to PCB (bg_rollup_query_set_people). */
void bg_rollup_fleet_query_set_people(bg_rollup_fleet_query_t *q, bg_rollup_people_cb pcb);
/* Entries summed per shape and day (bg_rollup_query_set_daily). */
void bg_rollup_fleet_query_set_daily(bg_rollup_fleet_query_t *q);
/* 1 more, 0 done, -1 with ERR filled (Redis unreachable, a damaged hour). */
int bg_rollup_fleet_query_step(bg_rollup_fleet_query_t *q, char *err, size_t errcap);
const bg_report_scan_stats_t *bg_rollup_fleet_query_stats(const bg_rollup_fleet_query_t *q);
/* How many instances the query read. */
size_t bg_rollup_fleet_query_instances(const bg_rollup_fleet_query_t *q);
void bg_rollup_fleet_query_free(bg_rollup_fleet_query_t *q);

#endif
