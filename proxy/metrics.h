/*
 * Prometheus metrics (text exposition format 0.0.4) for the admin
 * listener's GET /metrics.
 *
 * Counting is per worker and lock-free: each worker owns one bg_metrics_t
 * and is its only writer; the scrape (control thread) reads every worker's
 * table with relaxed atomics and sums them. Labelled series live in a
 * fixed-size open-addressing table per worker (no resizing, so a reader
 * never sees a moving table); an entry is published with a release store
 * once its key is written. Label values come only from the policy (route,
 * recipient, category, operator and reason ids), ISO country codes or
 * "unknown", and fixed enums: never a request value, never a subject id.
 * The table bounds cardinality: metrics.max_series series per worker
 * (rounded up to a power of two, fixed at start: restart to change); a
 * series that does not fit is counted in bordergate_metrics_dropped_total.
 * After a reload, new label values simply become new series; the old ones
 * keep their totals (counters never go backwards).
 *
 * Cost on the hot path: one short string build, one FNV-1a hash and one
 * probe per labelled increment (~50 ns), two histogram bucket searches per
 * request.
 */
#ifndef BG_METRICS_H
#define BG_METRICS_H

#include <stdint.h>

#include <event2/buffer.h>

#include "geo/geo.h"
#include "inspect/inspect.h"
#include "policy/decide.h"

/* metrics.max_series when the configuration sets none. */
#define BG_METRICS_DEFAULT_SERIES 2048

typedef struct bg_metrics bg_metrics_t;
typedef struct bg_worker bg_worker_t;
typedef struct bg_audit bg_audit_t;

/* A worker's counters with room for MAX_SERIES labelled series (<= 0:
 * BG_METRICS_DEFAULT_SERIES; rounded up to a power of two); NULL when out
 * of memory (the worker then counts nothing: every bg_metrics_* call
 * accepts NULL). */
bg_metrics_t *bg_metrics_new(int max_series);
void bg_metrics_free(bg_metrics_t *m);

/*
 * One decision record's worth of counts: the request by route, recipient,
 * destination country and region, outcome and mode; each finding by
 * category; each de-identified or removed field by operator; and, when
 * blocked, each distinct reason code. Call once per decision record.
 */
void bg_metrics_decision(bg_metrics_t *m, const bg_config_t *cfg, const bg_route_t *route,
                         const bg_geo_answer_t *geo, const bg_decision_t *d, bg_inspection_t *insp);

/* An upstream failure on ROUTE (id from the policy); KIND: resolve,
 * connect, tls, timeout, invalid_response, closed, lost. */
void bg_metrics_upstream_error(bg_metrics_t *m, const char *route, const char *kind);

/* A request answered by bordergate itself with STATUS (4xx/5xx, not 451). */
void bg_metrics_refusal(bg_metrics_t *m, int status);

/* The upstream answered ROUTE with STATUS, its response head US
 * microseconds after the request was forwarded (connecting included):
 * bordergate_upstream_responses_total{route,class} and the
 * bordergate_upstream_response_seconds{route} histogram. */
void bg_metrics_upstream_response(bg_metrics_t *m, const char *route, int status, uint64_t us);

/* A new upstream connection for ROUTE was established (TCP, and TLS when
 * used) in US microseconds. */
void bg_metrics_upstream_connect(bg_metrics_t *m, const char *route, uint64_t us);

/* One exchange's body bytes on ROUTE: IN read from the client, OUT sent to
 * it. */
void bg_metrics_route_bytes(bg_metrics_t *m, const char *route, uint64_t in, uint64_t out);

/* A finished exchange: total time and time spent waiting on the upstream
 * (0 when never forwarded), microseconds. */
void bg_metrics_request_done(bg_metrics_t *m, uint64_t total_us, uint64_t upstream_us);

/* What the scrape reads besides the workers' tables. */
typedef struct {
    bg_worker_t *workers;
    int nworkers;
    bg_audit_t *audit;            /* NULL: audit disabled */
    struct bg_counters *counters; /* NULL: none */
    const struct bg_runtime *rt;  /* current snapshot (not NULL) */
    uint64_t uptime_s;
    uint64_t started_ms; /* wall clock at start */
    unsigned reloads_ok, reloads_failed;
    int last_reload_ok;             /* 1: the last reload (or the start) succeeded */
    uint64_t last_reload_ok_ms;     /* wall clock of the configuration in force */
    struct bg_accesslog *accesslog; /* NULL: no access log */
    int ready;
} bg_metrics_scrape_t;

/* Append the whole exposition to OUT. */
void bg_metrics_render(const bg_metrics_scrape_t *src, struct evbuffer *out);

#endif
