/*
 * Daemon configuration: one JSON file (jansson), parsed and validated whole
 * into an immutable bg_config_t, then swapped in atomically. Workers take a
 * reference for the lifetime of each request, so a reload never changes the
 * rules under a request in flight.
 */
#ifndef BG_CONFIG_H
#define BG_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <jansson.h>

#include "geo/geo.h"

struct bg_policy;
struct bg_redis_cfg; /* store/redis.h */

#define BG_MAX_LISTEN 8
#define BG_MAX_RESOLVE_ADDRS 8

typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;
    char text[80]; /* as written */
} bg_listen_addr_t;

typedef struct {
    char *id;           /* unique, used in logs, metrics and records */
    char *match_host;   /* lowercase, no port; NULL matches any Host */
    char *path_prefix;  /* "/" when absent; matched on segment boundary */
    char *upstream_url; /* as written */
    int upstream_tls;   /* https:// */
    char *upstream_host;
    int upstream_port;
    char *upstream_path;          /* replaces path_prefix when not NULL */
    char *host_header;            /* "host[:port]" sent upstream */
    char *recipient;              /* id of the receiving party (policy issue) */
    int allow_private;            /* may connect to private/loopback addresses */
    int max_upstream_concurrency; /* requests in flight upstream at once; 0: unlimited,
                                     -1: not set (half of limits.max_connections) */
} bg_route_t;

typedef struct {
    char *host; /* lowercase */
    int naddrs;
    struct sockaddr_storage addrs[BG_MAX_RESOLVE_ADDRS]; /* port 0 */
} bg_resolve_entry_t;

typedef struct bg_config {
    int refs; /* atomic; see bg_config_unref */
    char *path;
    json_t *root; /* the parsed document, kept for later stages */

    bg_listen_addr_t listen[BG_MAX_LISTEN];
    int nlisten;
    bg_listen_addr_t admin;
    int has_admin;
    char *admin_token; /* bearer token for changes (consents, reload); NULL: changes refused */
    int workers;

    size_t max_header_bytes;
    size_t max_body_bytes;
    int *route_inflight; /* per route (same index): requests in flight upstream now, all
                            workers (atomic); the only part of a loaded config that changes */
    int max_connections;
    int max_idle_upstream; /* idle pooled connections per destination */

    int header_timeout_ms;
    int body_timeout_ms;
    int connect_timeout_ms;
    int response_timeout_ms;
    int idle_timeout_ms;
    int send_timeout_ms;
    int upstream_idle_ms;

    int drain_delay_ms;   /* timeouts.drain_delay_ms: keep accepting after SIGTERM (0) */
    int drain_timeout_ms; /* timeouts.drain_ms: then finish requests in flight (10000) */

    char *ca_file;   /* NULL: system store */
    int tls_verify;  /* 1 unless explicitly disabled (refused outside tests) */
    char *forwarded; /* "append" (default), "replace", "off" */
    int debug_headers;

    bg_route_t *routes;
    int nroutes;
    bg_resolve_entry_t *resolve;
    int nresolve;

    char *log_level;
    char *log_file;
    char *log_format;       /* "json" (default) or "text" */
    char *access_log_path;  /* access_log.path (proxy/accesslog.h); NULL: no access log */
    int metrics_max_series; /* metrics.max_series: labelled series per worker (default 2048) */

    /* DNS servers ("addr" or "addr:port"); none: /etc/resolv.conf */
    char **nameservers;
    int nnameservers;

    char *geo_db_path;                 /* the database opened */
    bg_geo_db_t *geo_db;               /* owned reference */
    bg_geo_overrides_t *geo_overrides; /* owned; never NULL once loaded */
    int geo_max_age_days;

    struct bg_policy *policy;                      /* owned; see policy/policy.h */
    void (*policy_free)(struct bg_policy *policy); /* set with it by the loader: config/ does
                                                      not call into policy/, above it */

    /* audit: durable decision records (audit/audit.h); restart to change */
    int audit_enabled;  /* 0 only for benchmarks: nothing is recorded */
    int audit_wait_all; /* every request waits for its record's fsync, not only PI transfers */
    /* yearly volume thresholds (CAC 2024 Provisions); 0: the default */
    long long thr_contract_non_sensitive, thr_assessment_non_sensitive, thr_assessment_sensitive;
    char *audit_dir;
    char *audit_prefix;
    long long audit_rotate_bytes;
    int audit_rotate_daily;
    int audit_retention_days;
    int audit_relaxed; /* durability "relaxed" */
    int audit_relaxed_interval_ms;
    int audit_checkpoint_every;
    char *audit_key_file;
    char *audit_key_env;
    char *audit_counters_file; /* yearly counters (audit/counters.h); default DIR/counters.jsonl */

    /* store.redis: the shared store for consent and fleet counters; NULL: local files only */
    struct bg_redis_cfg *store_redis;
} bg_config_t;

/* The embedded database's path when the configuration names none: the copy
 * installed beside the running binary (BINDIR/../share/bordergate/), else the
 * one under the configured install prefix, else the one in the build tree;
 * NULL when none exists. */
const char *bg_config_default_geo_db(void);

/*
 * Load and validate PATH, the policy included. On success returns a config
 * with one reference. On failure returns NULL and writes one line per
 * problem to ERRS ("FILE:LINE:COL: error: $.json.path: message"); *NERRORS
 * gets the count. Out of memory anywhere in the load is such a failure (a
 * reload then keeps the running configuration). Defined in
 * policy/config_load.c: the loader joins config/ and policy/, so it lives
 * above both.
 */
bg_config_t *bg_config_load(const char *path, FILE *errs, int *nerrors);

struct bg_cfgerr;

/* How bg_config_check loads. */
typedef struct {
    int no_keys; /* keys: check their shape, read no key file or variable */
} bg_config_opts_t;

/*
 * Load and validate PATH like bg_config_load, with OPTS (NULL: defaults),
 * handing every diagnostic (errors and warnings, sorted by position) to the
 * caller in *DIAG (free with bg_cfgerr_free; NULL only when out of memory)
 * instead of printing them. A config loaded with no_keys holds stand-in
 * keys: for `check` only, never to serve traffic. In policy/config_load.c
 * with bg_config_load.
 */
bg_config_t *bg_config_check(const char *path, const bg_config_opts_t *opts,
                             struct bg_cfgerr **diag, int *nerrors);

/* Drop a reference; the last one frees CFG (NULL is fine). */
void bg_config_unref(bg_config_t *cfg);

/* First route matching HOST (lowercase, no port) and PATH, or NULL.
 * O(routes): fine for hundreds of routes. */
const bg_route_t *bg_config_match_route(const bg_config_t *cfg, const char *host, size_t host_len,
                                        const char *path, size_t path_len);

/* Static resolve entry for HOST, or NULL. */
const bg_resolve_entry_t *bg_config_find_resolve(const bg_config_t *cfg, const char *host);

#endif
