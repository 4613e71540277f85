/*
 * One worker = one thread with its own event loop, DNS resolver, DNS cache,
 * upstream connection pool and listening sockets (SO_REUSEPORT). Nothing in
 * a worker is touched by another thread, except the counters (atomics) and
 * the shared runtime snapshot.
 */
#ifndef BG_WORKER_H
#define BG_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "audit/audit.h"
#include "audit/counters.h"
#include "config/config.h"

typedef struct bg_server bg_server_t;
typedef struct bg_session bg_session_t;
typedef struct bg_resolver bg_resolver_t;
typedef struct bg_pool bg_pool_t;

typedef struct {
    uint64_t connections_accepted;
    uint64_t connections_refused; /* over max_connections */
    uint64_t requests;
    uint64_t responses_by_class[6]; /* index status/100 */
    uint64_t refused_parse;         /* 4xx from the parser */
    uint64_t refused_route;         /* no route */
    uint64_t upstream_errors;
    uint64_t upstream_reused;
    uint64_t upstream_connects;
    uint64_t by_region[3];        /* indexed by bg_geo_region_t */
    uint64_t blocked;             /* 451 */
    uint64_t audit_refused;       /* 503: the record could not be made durable */
    uint64_t accept_errors;       /* accept() failures (EMFILE...): accepting paused */
    uint64_t client_aborts;       /* clients that left while their request was in flight */
    uint64_t refused_concurrency; /* 503: route over max_upstream_concurrency */
} bg_worker_stats_t;

typedef struct bg_worker {
    int index;
    bg_server_t *server;
    struct event_base *base;
    struct evdns_base *dns;
    bg_resolver_t *resolver;
    bg_pool_t *pool;
    struct evconnlistener *listeners[BG_MAX_LISTEN];
    int nlisteners;
    int listeners_paused;
    int accept_blocked;         /* accept() fails (out of descriptors); atomic: /readyz reads it */
    struct event *accept_retry; /* while accept_blocked: probe and resume every ACCEPT_RETRY_MS */
    uint64_t accept_warned_us;  /* rate limit of the accept-error warning */
    unsigned accept_suppressed; /* accept errors not logged since that warning */
    uint64_t trim_peak;         /* connections open at the peak since the last malloc_trim */
    int nconns;
    int max_connections;
    int draining;
    bg_session_t *sessions; /* every live client connection */
    pthread_t thread;
    struct bg_geo_cache_entry *geo_cache; /* see session.c: classify_cached */
    bg_audit_client_t *audit;             /* this worker's handle on the audit writer */
    bg_counters_t *counters;              /* yearly counters (shared, thread-safe); NULL: none */
    bg_worker_stats_t stats;
    struct bg_metrics *metrics;     /* this worker's /metrics series (proxy/metrics.h) */
    struct bg_accesslog *accesslog; /* shared access log (proxy/accesslog.h); NULL: none */
    struct bg_runtime *rt_cache;    /* bg_runtime_acquire_cached: snapshot last seen */
    struct event *hold_timer;       /* session.c: decision records kept for their completion */
    int held_records;               /* how many are kept now */
} bg_worker_t;

/* Called by sessions when a client connection ends. */
void bg_worker_connection_closed(bg_worker_t *w);

/* Called when the worker closed any descriptor (an upstream connection):
 * a listener paused for lack of descriptors may accept again. Cheap when
 * nothing is paused. Worker thread only. */
void bg_worker_descriptor_released(bg_worker_t *w);

#endif
