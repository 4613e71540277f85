/*
 * The daemon's internals shared by its two files (not an API: that is
 * proxy/server.h; include this only from them):
 *   proxy/server.c  workers, listeners, signals, reload, the stores, and
 *                   bg_server_run
 *   proxy/admin.c   the admin listener's endpoints (/healthz, /readyz,
 *                   /metrics, /stats, /consents, /reload; the dashboard
 *                   through proxy/dashboard.c)
 * Everything here belongs to the control thread (the main thread), which
 * runs both; the workers' counters are read with relaxed atomic loads.
 */
#ifndef BG_SERVER_INT_H
#define BG_SERVER_INT_H

#include <stdint.h>

#include <event2/event.h>

#include "audit/audit.h"
#include "audit/counters.h"
#include "audit/rollup_fleet.h"
#include "config/config.h"
#include "proxy/accesslog.h"
#include "proxy/serve.h"
#include "proxy/worker.h"

/* Accepting paused for lack of descriptors is retried this often. */
#define ACCEPT_RETRY_MS 200

struct bg_server {
    const char *config_path;
    unsigned flags;     /* BG_SERVER_* */
    int drain_delay_ms; /* of the configuration started with (restart to change) */
    int drain_timeout_ms;
    int (*listen_fds)[BG_MAX_LISTEN]; /* per worker, bound before the workers exist */
    char *state_path;                 /* the run-state file in the audit directory; NULL: none */
    struct event *tick;
    struct event *signals[4]; /* SIGHUP, SIGUSR1, SIGTERM, SIGINT (server_signals) */
    uint64_t watchdog_us;     /* WATCHDOG=1 this often; 0: no watchdog */
    uint64_t watchdog_last_us;
    uint64_t tick_us; /* the tick's period */
    bg_audit_t *audit;
    bg_counters_t *counters;    /* yearly counters of people whose PI went abroad */
    bg_counters_fleet_t *fleet; /* their copy in the shared store (store.redis); NULL: none */
    /* the rollups published to the shared store (store.redis); NULL: none */
    bg_rollup_fleet_t *rollfleet;
    struct event_base *base; /* control thread */
    bg_worker_t *workers;
    int nworkers;
    bg_serve_t *admin;
    uint64_t started_ms;
    int stopping;
    unsigned reloads_ok, reloads_failed;
    int last_reload_failed;     /* the last reload failed (metrics) */
    uint64_t last_reload_ok_ms; /* the configuration in force was loaded then */
    bg_accesslog_t *accesslog;  /* NULL: no access log */
};

/* proxy/server.c: reload the configuration (SIGHUP, POST /reload), telling
 * systemd. 0, or -1 when it was refused (the running one stays, the
 * reasons are logged). */
int bg_server_reload(bg_server_t *srv);

/* proxy/server.c: the policy version records carry (the policy's own, else
 * the SHA-256 of the configuration file); "" without a policy. */
const char *bg_server_policy_version(const bg_config_t *cfg);

/* proxy/admin.c: the admin listener's handler (a bg_serve_handler_fn; ARG
 * is the bg_server_t). Control thread. */
void bg_admin_handle(void *arg, const bg_serve_req_t *req, bg_serve_reply_t *reply);

#endif
