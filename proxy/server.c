#include "proxy/server.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "geo/geo.h"
#include "proxy/dashboard.h"
#include "proxy/resolve.h"
#include "proxy/runtime.h"
#include "proxy/serve.h"
#include "proxy/session.h"
#include "proxy/upstream.h"
#include "proxy/metrics.h"
#include "proxy/worker.h"
#include "policy/consent.h"

#define DRAIN_DEADLINE_S 10

struct bg_server {
    const char *config_path;
    bg_audit_t *audit;
    bg_counters_t *counters; /* yearly counters of people whose PI went abroad */
    struct event_base *base; /* control thread */
    bg_worker_t *workers;
    int nworkers;
    bg_serve_t *admin;
    uint64_t started_ms;
    int stopping;
    unsigned reloads_ok, reloads_failed;
};

typedef struct {
    int fd[2]; /* control -> worker notifications */
} worker_pipe_t;

static worker_pipe_t *pipes;

/* ------------------------------------------------------------------------ */
/* Workers                                                                  */

/* Accepting paused for lack of descriptors is retried this often. */
#define ACCEPT_RETRY_MS 200
/* At most one accept-error warning per worker this often (the rest are
 * counted and reported with the next one). */
#define ACCEPT_WARN_US (10 * 1000000ull)

static void worker_pause_listeners(bg_worker_t *w)
{
    if (w->listeners_paused)
        return;
    for (int i = 0; i < w->nlisteners; i++)
        evconnlistener_disable(w->listeners[i]);
    w->listeners_paused = 1;
}

/* Accept again unless something still stands in the way: draining, the
 * connection limit, or no descriptor to accept into. */
static void worker_resume_listeners(bg_worker_t *w)
{
    if (!w->listeners_paused || w->draining || w->nconns >= w->max_connections ||
        __atomic_load_n(&w->accept_blocked, __ATOMIC_RELAXED))
        return;
    for (int i = 0; i < w->nlisteners; i++)
        evconnlistener_enable(w->listeners[i]);
    w->listeners_paused = 0;
}

/*
 * Is a descriptor free now? Duplicating one (and closing the copy) is the
 * cheapest honest probe: it fails with EMFILE/ENFILE exactly when accept()
 * would.
 */
static int descriptor_available(const bg_worker_t *w)
{
    int fd = fcntl(evconnlistener_get_fd(w->listeners[0]), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* While accept_blocked: resume as soon as a descriptor is free. */
static void worker_try_unblock(bg_worker_t *w)
{
    if (!__atomic_load_n(&w->accept_blocked, __ATOMIC_RELAXED) || !descriptor_available(w))
        return;
    __atomic_store_n(&w->accept_blocked, 0, __ATOMIC_RELAXED);
    evtimer_del(w->accept_retry);
    bg_info("worker %d: descriptors available again; accepting", w->index);
    worker_resume_listeners(w);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    bg_worker_t *w = arg;
    worker_try_unblock(w);
    if (__atomic_load_n(&w->accept_blocked, __ATOMIC_RELAXED)) {
        struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
        evtimer_add(w->accept_retry, &tv);
    }
}

void bg_worker_descriptor_released(bg_worker_t *w)
{
    if (w != NULL && __atomic_load_n(&w->accept_blocked, __ATOMIC_RELAXED))
        worker_try_unblock(w);
}

/* A burst: at least TRIM_BURST more connections open at once than remain
 * now; it has drained once at most a quarter of its peak is left. */
#define TRIM_BURST 256

#define TRIM_DELAY_MS 500

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    (void)arg;
    malloc_trim(0);
}

/*
 * Give memory freed after a burst back to the system. glibc keeps freed
 * heap memory (in every thread's arena) for reuse, so after a burst of
 * thousands of connections resident memory would stay near the peak.
 * A burst counts as drained relative to its peak, not when the worker is
 * nearly empty: with a few hundred long-lived keep-alive clients a worker
 * never empties, and its memory would never be returned (issue 19:
 * bench/burst_rss.py --hold 400). A large burst is trimmed in steps (at a
 * quarter of the peak, then a quarter of that, while each step frees
 * TRIM_BURST connections or more). malloc_trim walks every arena: a few
 * milliseconds per step, run TRIM_DELAY_MS later so that the audit writer
 * has written (and freed) the burst's records too.
 */
static void trim_after_burst(bg_worker_t *w)
{
    uint64_t n = (uint64_t)w->nconns;
    if (w->trim_peak < n + TRIM_BURST || n > w->trim_peak / 4)
        return;
    w->trim_peak = n;
    struct timeval tv = {0, TRIM_DELAY_MS * 1000};
    event_base_once(w->base, -1, EV_TIMEOUT, on_trim, NULL, &tv);
}

void bg_worker_connection_closed(bg_worker_t *w)
{
    w->nconns--;
    trim_after_burst(w);
    bg_worker_descriptor_released(w);
    if (w->listeners_paused)
        worker_resume_listeners(w);
    if (w->draining && w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    bg_worker_t *w = arg;
    w->stats.connections_accepted++;
    w->nconns++;
    if ((uint64_t)w->nconns > w->trim_peak)
        w->trim_peak = (uint64_t)w->nconns;
    if (w->nconns >= w->max_connections && !w->listeners_paused) {
        /* Further clients wait in the kernel backlog until one closes. */
        worker_pause_listeners(w);
        w->stats.connections_refused++;
        bg_warn("worker %d: limits.max_connections reached (%d); pausing accept", w->index,
                w->max_connections);
    }
    bg_session_start(w, fd, sa, (socklen_t)salen);
}

/*
 * accept() failed with an error libevent does not retry by itself (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM...): the pending connection stays in the
 * backlog, so a listener left enabled would spin. Pause, and resume when a
 * descriptor is released or, at the latest, on the next ACCEPT_RETRY_MS
 * probe that finds one free. /readyz reports the worker meanwhile; the
 * warning is rate-limited.
 */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    bg_worker_t *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    uint64_t now = bg_util_mono_us();
    w->stats.accept_errors++;
    if (w->accept_warned_us == 0 || now - w->accept_warned_us >= ACCEPT_WARN_US) {
        bg_error("worker %d: accept: %s; pausing accept, retrying every %d ms (%u more accept "
                 "errors since the last warning)",
                 w->index, evutil_socket_error_to_string(err), ACCEPT_RETRY_MS,
                 w->accept_suppressed);
        w->accept_warned_us = now;
        w->accept_suppressed = 0;
    } else {
        w->accept_suppressed++;
    }
    __atomic_store_n(&w->accept_blocked, 1, __ATOMIC_RELAXED);
    worker_pause_listeners(w);
    struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
    evtimer_add(w->accept_retry, &tv);
}

static void on_control(evutil_socket_t fd, short what, void *arg)
{
    bg_worker_t *w = arg;
    char cmd;
    if (read(fd, &cmd, 1) != 1)
        return;
    if (cmd == 'd' && !w->draining) {
        w->draining = 1;
        worker_pause_listeners(w);
        bg_session_drain_all(w);
        if (w->nconns == 0)
            event_base_loopexit(w->base, NULL);
    } else if (cmd == 'q') {
        bg_session_close_all(w);
        event_base_loopexit(w->base, NULL);
    }
}

static void *worker_main(void *arg)
{
    bg_worker_t *w = arg;
    struct event *ctl =
        event_new(w->base, pipes[w->index].fd[0], EV_READ | EV_PERSIST, on_control, w);
    event_add(ctl, NULL);
    event_base_dispatch(w->base);
    bg_session_close_all(w);
    event_free(ctl);
    return NULL;
}

static rlim_t fds_needed(const bg_config_t *cfg);

static void fd_slot_noop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void fd_slot_quiet(int severity, const char *msg)
{
    (void)severity;
    (void)msg;
}

/*
 * Give W's event loop its per-descriptor slots for every descriptor number
 * the process may use (what the configuration needs, at most the open-file
 * limit), now, on the main thread, before any traffic.
 *
 * Why: libevent allocates a small record per descriptor number the first
 * time an event is added for it and keeps it for the life of the loop.
 * Left to traffic, the first burst allocates thousands of them in the
 * worker's malloc arena between the burst's large, short-lived session
 * buffers; each one then pins a page that malloc_trim cannot return, and
 * resident memory stays near the burst's peak (issue 19: 9 MB idle, 35 MB
 * after three bursts of 8,000 connections). Made here, they sit together
 * in the main arena: about 40 bytes per descriptor per worker (0.8 to
 * 1.2 MB a worker for the default 10,000 connections), which a full load
 * would allocate anyway.
 *
 * How: an event is added and deleted for each number. For a number that
 * is not open the add fails (EBADF) after the slot was made; for an open
 * socket or pipe it is registered and removed at once (no loop runs yet).
 * libevent's warnings for the failed adds are silenced meanwhile (no
 * other thread runs libevent yet: the workers start after this, and the
 * audit writer only writes to eventfds); the process installs no libevent
 * log callback of its own, so the default is restored after. A reload
 * that raises limits.max_connections gets its new slots lazily. Cost: one or two system calls per
 * descriptor, a few milliseconds at start-up.
 */
static void worker_reserve_fd_slots(bg_worker_t *w, const bg_config_t *cfg)
{
    rlim_t n = fds_needed(cfg);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n)
        n = rl.rlim_cur;
    struct event ev;
    event_set_log_callback(fd_slot_quiet);
    for (rlim_t fd = 0; fd < n; fd++) {
        if (event_assign(&ev, w->base, (evutil_socket_t)fd, EV_READ, fd_slot_noop, NULL) != 0)
            break;
        if (event_add(&ev, NULL) == 0)
            event_del(&ev);
    }
    event_set_log_callback(NULL);
}

static int worker_init(bg_server_t *srv, bg_worker_t *w, int index, const bg_config_t *cfg)
{
    w->index = index;
    w->server = srv;
    /* The epoll changelist folds the changes of one loop pass into one
     * epoll_ctl per descriptor, or none when they cancel out (session.c
     * flush_now: EPOLLOUT armed and disarmed in the same pass). */
    struct event_config *ecfg = event_config_new();
    if (ecfg == NULL)
        return -1;
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (w->base == NULL)
        return -1;
    if (cfg->nnameservers > 0) {
        w->dns = evdns_base_new(w->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        for (int i = 0; w->dns != NULL && i < cfg->nnameservers; i++) {
            if (evdns_base_nameserver_ip_add(w->dns, cfg->nameservers[i]) != 0)
                bg_warn("worker %d: cannot use DNS server %s", index, cfg->nameservers[i]);
        }
    } else {
        w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    }
    if (w->dns == NULL)
        bg_warn("worker %d: no DNS resolver configured; only static and literal upstream addresses "
                "work",
                index);
    w->resolver = bg_resolver_new(w);
    w->pool = bg_pool_new(w);
    w->metrics = bg_metrics_new();
    w->audit = srv->audit != NULL ? bg_audit_client_new(srv->audit, w->base) : NULL;
    w->counters = srv->counters;
    if (srv->audit != NULL && w->audit == NULL) {
        fprintf(stderr, "bordergate: cannot attach worker %d to the audit writer\n", index);
        return -1;
    }
    w->max_connections = cfg->max_connections / srv->nworkers;
    if (w->max_connections < 1)
        w->max_connections = 1;
    worker_reserve_fd_slots(w, cfg);
    w->accept_retry = evtimer_new(w->base, on_accept_retry, w);
    if (w->resolver == NULL || w->pool == NULL || w->accept_retry == NULL)
        return -1;
    for (int i = 0; i < cfg->nlisten; i++) {
        const bg_listen_addr_t *a = &cfg->listen[i];
        w->listeners[i] =
            evconnlistener_new_bind(w->base, on_accept, w,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                        LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
                                    4096, (const struct sockaddr *)&a->addr, (int)a->len);
        if (w->listeners[i] == NULL) {
            fprintf(stderr, "bordergate: cannot listen on %s: %s\n", a->text, strerror(errno));
            return -1;
        }
        evconnlistener_set_error_cb(w->listeners[i], on_accept_error);
        w->nlisteners++;
    }
    return 0;
}

static void worker_destroy(bg_worker_t *w)
{
    /* The client belongs to the worker's thread, which has exited. */
    w->accept_blocked = 0; /* no more probes: the listeners go first */
    if (w->audit != NULL)
        bg_audit_client_free(w->audit);
    for (int i = 0; i < w->nlisteners; i++)
        evconnlistener_free(w->listeners[i]);
    if (w->accept_retry != NULL)
        event_free(w->accept_retry);
    bg_pool_free(w->pool);
    bg_metrics_free(w->metrics);
    bg_runtime_unref(w->rt_cache);
    if (w->dns != NULL) {
        /* Pending queries get their failure callbacks (which free them) on
         * the next loop pass: run it before the resolver and base go. */
        evdns_base_free(w->dns, 1);
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    }
    bg_resolver_free(w->resolver);
    free(w->geo_cache);
    if (w->base != NULL)
        event_base_free(w->base);
}

static void notify_workers(bg_server_t *srv, char cmd)
{
    for (int i = 0; i < srv->nworkers; i++) {
        if (write(pipes[i].fd[1], &cmd, 1) != 1)
            bg_error("cannot notify worker %d", i);
    }
}

/* ------------------------------------------------------------------------ */
/* Control: reload, stop, admin                                             */

static void log_geo(const bg_config_t *cfg);

/* The operational log's level, format and destination from CFG. The file is
 * (re)opened by path, so a reload also picks up a rotated file. -1 when the
 * file cannot be opened (the previous destination stays). */
static int apply_log(const bg_config_t *cfg)
{
    bg_log_level_t lvl = BG_LOG_INFO;
    bg_log_format_t fmt = BG_LOG_JSON;
    if (cfg->log_level != NULL && bg_log_parse_level(cfg->log_level, &lvl) != 0)
        lvl = BG_LOG_INFO;
    if (cfg->log_format != NULL && bg_log_parse_format(cfg->log_format, &fmt) != 0)
        fmt = BG_LOG_JSON;
    bg_log_set_level(lvl);
    bg_log_set_format(fmt);
    return bg_log_set_file(cfg->log_file);
}

static int reload(bg_server_t *srv)
{
    int nerr = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&buf, &len);
    if (errs == NULL) {
        /* Out of memory on SIGHUP: keep the running configuration. */
        srv->reloads_failed++;
        bg_error("reload of %s failed: out of memory; the running configuration stays in force",
                 srv->config_path);
        return -1;
    }
    bg_config_t *cfg = bg_config_load(srv->config_path, errs, &nerr);
    bg_runtime_t *rt = cfg != NULL ? bg_runtime_new(cfg, errs) : NULL;
    fclose(errs);
    if (rt == NULL) {
        srv->reloads_failed++;
        bg_error("reload of %s failed; the running configuration stays in force", srv->config_path);
        char *save = NULL;
        for (char *line = buf != NULL ? strtok_r(buf, "\n", &save) : NULL; line != NULL;
             line = strtok_r(NULL, "\n", &save))
            bg_error("%s", line);
        free(buf);
        return -1;
    }
    free(buf);
    bg_runtime_t *old = bg_runtime_acquire();
    if (old != NULL && (old->cfg->nlisten != cfg->nlisten || old->cfg->workers != cfg->workers))
        bg_warn("reload: changes to listen addresses or workers take effect after a restart");
    bg_runtime_unref(old);
    bg_runtime_publish(rt);
    if (apply_log(cfg) != 0)
        bg_error("reload: cannot open log file %s: %s; logging stays where it was", cfg->log_file,
                 strerror(errno));
    log_geo(cfg);
    srv->reloads_ok++;
    bg_info("configuration reloaded from %s (generation %u, %d routes)", srv->config_path,
            rt->generation, cfg->nroutes);
    return 0;
}

/* Freshness of the country database, for /healthz and the log. */
static json_t *geo_json(const bg_config_t *cfg)
{
    json_t *g = json_object();
    const bg_geo_db_t *db = cfg->geo_db;
    uint64_t now = bg_util_wall_ms() / 1000;
    uint64_t age_days = bg_geo_db_age(db, now) / 86400;
    char built[40];
    bg_util_format_time(bg_geo_db_build_epoch(db) * 1000, built, sizeof built);
    built[10] = '\0';
    json_object_set_new(g, "database", json_string(cfg->geo_db_path));
    json_object_set_new(g, "type", json_string(bg_geo_db_type(db)));
    json_object_set_new(g, "build_date", json_string(built));
    json_object_set_new(g, "age_days", json_integer((json_int_t)age_days));
    json_object_set_new(g, "max_age_days", json_integer(cfg->geo_max_age_days));
    json_object_set_new(g, "stale", json_boolean(age_days > (uint64_t)cfg->geo_max_age_days));
    json_object_set_new(g, "overrides",
                        json_integer((json_int_t)bg_geo_overrides_count(cfg->geo_overrides)));
    return g;
}

static void log_geo(const bg_config_t *cfg)
{
    const bg_geo_db_t *db = cfg->geo_db;
    uint64_t age_days = bg_geo_db_age(db, bg_util_wall_ms() / 1000) / 86400;
    bg_info("country database %s: %s (%s), built %llu days ago, %zu overrides", cfg->geo_db_path,
            bg_geo_db_label(db), bg_geo_db_description(db), (unsigned long long)age_days,
            bg_geo_overrides_count(cfg->geo_overrides));
    if (age_days > (uint64_t)cfg->geo_max_age_days)
        bg_warn("country database %s is %llu days old (geo.max_age_days is %d): update it",
                cfg->geo_db_path, (unsigned long long)age_days, cfg->geo_max_age_days);
    if (bg_geo_db_ip_version(db) == 4)
        bg_warn("country database %s has no IPv6 data: every IPv6 destination is unknown "
                "(cross-border)",
                cfg->geo_db_path);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    reload(arg);
}

/* SIGUSR1: reopen the log file only (after logrotate moved it). */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
    if (bg_log_reopen() != 0)
        bg_error("cannot reopen the log file: %s; still writing to the old one", strerror(errno));
    else
        bg_info("log file reopened");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    bg_server_t *srv = arg;
    bg_warn("drain deadline (%d s) passed; closing remaining connections", DRAIN_DEADLINE_S);
    notify_workers(srv, 'q');
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    bg_server_t *srv = arg;
    if (srv->stopping) {
        notify_workers(srv, 'q');
        return;
    }
    srv->stopping = 1;
    bg_info("stopping: finishing requests in flight (at most %d s)", DRAIN_DEADLINE_S);
    notify_workers(srv, 'd');
    struct timeval tv = {DRAIN_DEADLINE_S, 0};
    event_base_once(srv->base, -1, EV_TIMEOUT, on_deadline, srv, &tv);
    /* The control loop ends when the workers have been joined (see below). */
    event_base_loopexit(srv->base, NULL);
}

static json_t *stats_json(bg_server_t *srv)
{
    bg_worker_stats_t t;
    memset(&t, 0, sizeof t);
    int conns = 0, idle = 0;
    for (int i = 0; i < srv->nworkers; i++) {
        const bg_worker_t *w = &srv->workers[i];
        const bg_worker_stats_t *s = &w->stats;
        t.connections_accepted += __atomic_load_n(&s->connections_accepted, __ATOMIC_RELAXED);
        t.connections_refused += __atomic_load_n(&s->connections_refused, __ATOMIC_RELAXED);
        t.requests += __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
        for (int k = 0; k < 6; k++)
            t.responses_by_class[k] += __atomic_load_n(&s->responses_by_class[k], __ATOMIC_RELAXED);
        t.refused_parse += __atomic_load_n(&s->refused_parse, __ATOMIC_RELAXED);
        t.refused_route += __atomic_load_n(&s->refused_route, __ATOMIC_RELAXED);
        t.upstream_errors += __atomic_load_n(&s->upstream_errors, __ATOMIC_RELAXED);
        t.upstream_reused += __atomic_load_n(&s->upstream_reused, __ATOMIC_RELAXED);
        t.upstream_connects += __atomic_load_n(&s->upstream_connects, __ATOMIC_RELAXED);
        t.blocked += __atomic_load_n(&s->blocked, __ATOMIC_RELAXED);
        t.audit_refused += __atomic_load_n(&s->audit_refused, __ATOMIC_RELAXED);
        t.accept_errors += __atomic_load_n(&s->accept_errors, __ATOMIC_RELAXED);
        t.client_aborts += __atomic_load_n(&s->client_aborts, __ATOMIC_RELAXED);
        t.refused_concurrency += __atomic_load_n(&s->refused_concurrency, __ATOMIC_RELAXED);
        for (int k = 0; k < 3; k++)
            t.by_region[k] += __atomic_load_n(&s->by_region[k], __ATOMIC_RELAXED);
        conns += __atomic_load_n(&w->nconns, __ATOMIC_RELAXED);
        idle += w->pool != NULL ? bg_pool_idle_count(w->pool) : 0;
    }
    json_t *o = json_object();
    json_object_set_new(o, "connections_open", json_integer(conns));
    json_object_set_new(o, "connections_accepted",
                        json_integer((json_int_t)t.connections_accepted));
    json_object_set_new(o, "connection_limit_hits",
                        json_integer((json_int_t)t.connections_refused));
    json_object_set_new(o, "requests", json_integer((json_int_t)t.requests));
    json_t *cls = json_object();
    for (int k = 1; k < 6; k++) {
        char name[8];
        snprintf(name, sizeof name, "%dxx", k);
        json_object_set_new(cls, name, json_integer((json_int_t)t.responses_by_class[k]));
    }
    json_object_set_new(o, "responses", cls);
    json_object_set_new(o, "refused_malformed", json_integer((json_int_t)t.refused_parse));
    json_object_set_new(o, "refused_no_route", json_integer((json_int_t)t.refused_route));
    json_object_set_new(o, "upstream_errors", json_integer((json_int_t)t.upstream_errors));
    json_object_set_new(o, "upstream_connects", json_integer((json_int_t)t.upstream_connects));
    json_object_set_new(o, "upstream_reused", json_integer((json_int_t)t.upstream_reused));
    json_object_set_new(o, "upstream_idle", json_integer(idle));
    json_object_set_new(o, "blocked", json_integer((json_int_t)t.blocked));
    json_object_set_new(o, "audit_refused", json_integer((json_int_t)t.audit_refused));
    json_object_set_new(o, "accept_errors", json_integer((json_int_t)t.accept_errors));
    json_object_set_new(o, "client_aborts", json_integer((json_int_t)t.client_aborts));
    json_object_set_new(o, "refused_concurrency", json_integer((json_int_t)t.refused_concurrency));
    if (srv->audit != NULL) {
        bg_audit_stats_t as;
        bg_audit_stats(srv->audit, &as);
        json_t *a = json_object();
        json_object_set_new(a, "healthy", json_boolean(as.healthy));
        json_object_set_new(a, "records_written", json_integer((json_int_t)as.records_written));
        json_object_set_new(a, "failed_records", json_integer((json_int_t)as.failed_records));
        json_object_set_new(a, "batches", json_integer((json_int_t)as.batches));
        json_object_set_new(a, "fsyncs", json_integer((json_int_t)as.fsyncs));
        json_object_set_new(a, "max_batch_records", json_integer((json_int_t)as.max_batch_records));
        json_object_set_new(a, "fsync_us_p50", json_integer((json_int_t)as.fsync_us_p50));
        json_object_set_new(a, "fsync_us_p99", json_integer((json_int_t)as.fsync_us_p99));
        json_object_set_new(a, "last_seq", json_integer((json_int_t)as.last_seq));
        json_object_set_new(a, "last_error", json_string(as.last_error));
        json_object_set_new(a, "current_file", json_string(as.current_file));
        json_object_set_new(o, "audit", a);
    }
    json_t *reg = json_object();
    for (int k = 0; k < 3; k++)
        json_object_set_new(reg, bg_geo_region_name((bg_geo_region_t)k),
                            json_integer((json_int_t)t.by_region[k]));
    json_object_set_new(o, "destinations_by_region", reg);
    bg_runtime_t *rt = bg_runtime_acquire();
    if (rt != NULL && rt->cfg->route_inflight != NULL) {
        /* Requests in flight upstream per route of the running
         * configuration (routes[].max_upstream_concurrency). */
        json_t *inflight = json_object();
        for (int i = 0; i < rt->cfg->nroutes; i++)
            json_object_set_new(
                inflight, rt->cfg->routes[i].id,
                json_integer(__atomic_load_n(&rt->cfg->route_inflight[i], __ATOMIC_RELAXED)));
        json_object_set_new(o, "upstream_in_flight", inflight);
    }
    bg_runtime_unref(rt);
    if (srv->counters != NULL) {
        bg_counters_snapshot_t cs;
        bg_counters_snapshot(srv->counters, (int64_t)bg_util_wall_ms(), &cs);
        json_object_set_new(o, "yearly_subjects", bg_counters_snapshot_json(&cs, 0));
        bg_counters_snapshot_free(&cs);
    }
    return o;
}

/*
 * Readiness (/readyz): the policy is loaded, the country database is open
 * and its file still there (a restart or reload would need it), the audit
 * log is writable (its last write and fsync succeeded), every worker can
 * accept (none is paused for lack of descriptors), and we are not
 * stopping. Returns 1 when ready; else 0 with one line per problem appended
 * to NOT_READY (a JSON array).
 */
static int readiness(bg_server_t *srv, const bg_runtime_t *rt, json_t *not_ready)
{
    if (srv->stopping)
        json_array_append_new(not_ready, json_string("stopping: draining connections"));
    if (rt == NULL || rt->cfg->policy == NULL)
        json_array_append_new(not_ready, json_string("policy: not loaded"));
    for (int i = 0; i < srv->nworkers; i++) {
        if (__atomic_load_n(&srv->workers[i].accept_blocked, __ATOMIC_RELAXED)) {
            char line[160];
            snprintf(line, sizeof line,
                     "worker %d: cannot accept connections: out of file descriptors (retrying "
                     "every %d ms)",
                     i, ACCEPT_RETRY_MS);
            json_array_append_new(not_ready, json_string(line));
        }
    }
    if (rt != NULL && (rt->cfg->geo_db == NULL || access(rt->cfg->geo_db_path, R_OK) != 0))
        json_array_append_new(
            not_ready, json_string("geo: the country database file is missing or unreadable"));
    if (srv->audit != NULL) {
        bg_audit_stats_t as;
        bg_audit_stats(srv->audit, &as);
        if (!as.healthy) {
            char line[300];
            snprintf(line, sizeof line, "audit: the log is not writable (%s)",
                     as.last_error[0] ? as.last_error : "last write failed");
            json_array_append_new(not_ready, json_string(line));
        }
    }
    return json_array_size(not_ready) == 0;
}

/* "Authorization: Bearer TOKEN" equal to the configured token (constant
 * time). No token configured: every change is refused. */
static int admin_authorized(const bg_serve_req_t *req, const bg_config_t *cfg)
{
    const bg_http_header_t *h =
        bg_http_find_header(req->head->headers, req->head->nheaders, "authorization");
    if (cfg->admin_token == NULL || h == NULL || h->value_len < 7 ||
        !bg_util_iprefix(h->value, h->value_len, "bearer "))
        return 0;
    size_t tl = strlen(cfg->admin_token), gl = h->value_len - 7;
    unsigned char diff = gl != tl;
    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)(cfg->admin_token[i] ^ (i < gl ? h->value[7 + i] : 0));
    return diff == 0;
}

static void admin_handle(void *arg, const bg_serve_req_t *req, bg_serve_reply_t *reply)
{
    bg_server_t *srv = arg;
    const char *t = req->head->target;
    size_t tl = req->head->target_len;
    const char *q = memchr(t, '?', tl);
    if (q != NULL)
        tl = (size_t)(q - t);
    int get = bg_util_ieq(req->head->method, req->head->method_len, "GET") ||
              bg_util_ieq(req->head->method, req->head->method_len, "HEAD");
    int post = bg_util_ieq(req->head->method, req->head->method_len, "POST");
    json_t *o = NULL;

    if (bg_dashboard_handle(req, reply, admin_authorized)) /* /dashboard/, /api/ */
        return;
    if (tl == 8 && memcmp(t, "/healthz", 8) == 0 && get) {
        bg_runtime_t *rt = bg_runtime_acquire();
        o = json_object();
        json_object_set_new(o, "status", json_string(srv->stopping ? "stopping" : "ok"));
        json_object_set_new(o, "version", json_string(BG_VERSION));
        json_object_set_new(
            o, "uptime_s",
            json_integer((json_int_t)((bg_util_wall_ms() - srv->started_ms) / 1000)));
        json_object_set_new(o, "config", json_string(srv->config_path));
        json_object_set_new(o, "config_generation", json_integer(rt ? rt->generation : 0));
        json_object_set_new(o, "routes", json_integer(rt ? rt->cfg->nroutes : 0));
        json_object_set_new(o, "workers", json_integer(srv->nworkers));
        json_object_set_new(o, "reloads_ok", json_integer(srv->reloads_ok));
        json_object_set_new(o, "reloads_failed", json_integer(srv->reloads_failed));
        if (rt != NULL)
            json_object_set_new(o, "geo", geo_json(rt->cfg));
        if (srv->audit != NULL) {
            bg_audit_stats_t as;
            bg_audit_stats(srv->audit, &as);
            json_object_set_new(o, "audit_writable", json_boolean(as.healthy));
        } else {
            json_object_set_new(o, "audit", json_string("disabled"));
        }
        bg_runtime_unref(rt);
        if (srv->stopping)
            reply->status = 503;
    } else if (tl == 7 && memcmp(t, "/readyz", 7) == 0 && get) {
        bg_runtime_t *rt = bg_runtime_acquire();
        json_t *problems = json_array();
        int ready = readiness(srv, rt, problems);
        bg_runtime_unref(rt);
        o = json_object();
        json_object_set_new(o, "status", json_string(ready ? "ready" : "not ready"));
        json_object_set_new(o, "not_ready", problems);
        if (!ready)
            reply->status = 503;
    } else if (tl == 8 && memcmp(t, "/metrics", 8) == 0 && get) {
        bg_runtime_t *rt = bg_runtime_acquire();
        json_t *problems = json_array();
        bg_metrics_scrape_t sc;
        memset(&sc, 0, sizeof sc);
        sc.workers = srv->workers;
        sc.nworkers = srv->nworkers;
        sc.audit = srv->audit;
        sc.counters = srv->counters;
        sc.rt = rt;
        sc.uptime_s = (bg_util_wall_ms() - srv->started_ms) / 1000;
        sc.reloads_ok = srv->reloads_ok;
        sc.reloads_failed = srv->reloads_failed;
        sc.ready = readiness(srv, rt, problems);
        json_decref(problems);
        reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
        bg_metrics_render(&sc, reply->body);
        bg_runtime_unref(rt);
        return;
    } else if (tl == 6 && memcmp(t, "/stats", 6) == 0 && get) {
        o = stats_json(srv);
    } else if (tl >= 9 && memcmp(t, "/consents", 9) == 0) {
        bg_runtime_t *rt = bg_runtime_acquire();
        if (!admin_authorized(req, rt->cfg)) {
            reply->status = 401;
            o = json_pack("{s:s}", "error",
                          rt->cfg->admin_token == NULL
                              ? "consent changes need admin.token in the configuration"
                              : "missing or wrong bearer token");
        } else if (rt->consent == NULL) {
            reply->status = 404;
            o = json_pack("{s:s}", "error", "no consent registry configured ($.consent.registry)");
        } else {
            char path[2048];
            size_t bl = evbuffer_get_length(req->body);
            const char *body = bl > 0 ? (const char *)evbuffer_pullup(req->body, -1) : "";
            snprintf(path, sizeof path, "%.*s", (int)req->head->target_len, req->head->target);
            char method[16];
            snprintf(method, sizeof method, "%.*s", (int)req->head->method_len, req->head->method);
            int status = 500;
            char *out = NULL;
            if (bg_consent_admin(rt->consent, method, path, body, bl, &status, &out) == 0) {
                reply->status = status;
                evbuffer_add_printf(reply->body, "%s\n", out != NULL ? out : "{}");
                free(out);
                bg_runtime_unref(rt);
                return;
            }
            reply->status = 404;
            o = json_pack("{s:s}", "error", "unknown consent endpoint");
        }
        bg_runtime_unref(rt);
    } else if (tl == 7 && memcmp(t, "/reload", 7) == 0 && post) {
        bg_runtime_t *rt = bg_runtime_acquire();
        int authorized = rt->cfg->admin_token == NULL || admin_authorized(req, rt->cfg);
        bg_runtime_unref(rt);
        if (!authorized) {
            reply->status = 401;
            o = json_pack("{s:s}", "error", "missing or wrong bearer token");
            goto send;
        }
        int rc = reload(srv);
        o = json_object();
        json_object_set_new(o, "reloaded", json_boolean(rc == 0));
        if (rc != 0) {
            reply->status = 422;
            json_object_set_new(o, "error",
                                json_string("the new configuration is invalid; see the log. The "
                                            "running one stays in force"));
        }
    } else {
        reply->status = 404;
        o = json_pack("{s:s}", "error",
                      "unknown admin endpoint (try /healthz, /readyz, /metrics, /stats, POST "
                      "/reload, /consents)");
    }
send:;
    char *s = json_dumps(o, JSON_COMPACT);
    evbuffer_add_printf(reply->body, "%s\n", s != NULL ? s : "{}");
    free(s);
    json_decref(o);
}

/* The one audit writer of this process (restart to change its settings). */
static int open_audit(bg_server_t *srv, const bg_config_t *cfg)
{
    bg_audit_options_t opt;
    bg_audit_key_t key;
    char err[512];
    int have_key = 0;
    if (!cfg->audit_enabled) {
        bg_error(
            "the audit log is DISABLED ($.audit.enabled is false): decisions are not recorded");
        return 0;
    }
    bg_audit_options_init(&opt);
    opt.directory = cfg->audit_dir;
    if (cfg->audit_prefix != NULL)
        opt.prefix = cfg->audit_prefix;
    opt.rotate_bytes = (uint64_t)cfg->audit_rotate_bytes;
    opt.rotate_daily = cfg->audit_rotate_daily;
    opt.retention_days = (unsigned)cfg->audit_retention_days;
    opt.durability = cfg->audit_relaxed ? BG_AUDIT_RELAXED : BG_AUDIT_STRICT;
    opt.relaxed_interval_ms = (unsigned)cfg->audit_relaxed_interval_ms;
    opt.checkpoint_every = (unsigned)cfg->audit_checkpoint_every;
    memset(&key, 0, sizeof key);
    if (cfg->audit_key_file != NULL || cfg->audit_key_env != NULL) {
        int rc = cfg->audit_key_file != NULL
                     ? bg_audit_key_from_file(cfg->audit_key_file, &key, err, sizeof err)
                     : bg_audit_key_from_env(cfg->audit_key_env, &key, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "bordergate: audit key: %s\n", err);
            return -1;
        }
        opt.key = key.bytes;
        opt.key_len = key.len;
        have_key = 1;
    } else {
        bg_warn("no keys.audit: audit checkpoints are not signed (set keys.audit to detect a "
                "rewritten log)");
    }
    srv->audit = bg_audit_open(&opt, err, sizeof err);
    bg_audit_key_wipe(&key);
    if (srv->audit == NULL) {
        fprintf(stderr, "bordergate: audit log %s: %s\n", cfg->audit_dir, err);
        return -1;
    }
    bg_info("audit log in %s (%s durability%s, retention %d days)", cfg->audit_dir,
            cfg->audit_relaxed ? "relaxed" : "strict", have_key ? ", signed checkpoints" : "",
            cfg->audit_retention_days);
    return 0;
}

/* The yearly counters (audit/counters.h), beside the audit log; restart to
 * change. None when the audit log is disabled. */
static int open_counters(bg_server_t *srv, const bg_config_t *cfg)
{
    char err[512];
    if (srv->audit == NULL || cfg->audit_counters_file == NULL)
        return 0;
    srv->counters = bg_counters_open(cfg->audit_counters_file, err, sizeof err);
    if (srv->counters == NULL) {
        fprintf(stderr, "bordergate: yearly counters: %s\n", err);
        return -1;
    }
    bg_counters_thresholds_t t;
    bg_config_thresholds(cfg, &t);
    bg_counters_set_thresholds(srv->counters, &t);
    return 0;
}

/*
 * Descriptors the configuration needs: each client connection may hold an
 * upstream one (2 x limits.max_connections), idle pooled upstream
 * connections (at most max_idle_upstream per route and worker, and never
 * more than max_connections of them in practice), per worker its listeners
 * plus about 8 for the event loop, control pipe and DNS, and 64 for the
 * rest of the process (admin connections, audit and log files, the
 * country database).
 */
static rlim_t fds_needed(const bg_config_t *cfg)
{
    rlim_t idle = (rlim_t)cfg->max_idle_upstream * (rlim_t)cfg->nroutes * (rlim_t)cfg->workers;
    if (idle > (rlim_t)cfg->max_connections)
        idle = (rlim_t)cfg->max_connections;
    return (rlim_t)cfg->max_connections * 2 + idle + (rlim_t)cfg->workers * (cfg->nlisten + 8) + 64;
}

/* Raise the soft open-file limit to what the configuration needs (up to
 * the hard limit); one warning when that is not enough. */
static void raise_fd_limit(const bg_config_t *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = fds_needed(cfg);
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = 0;
    if (rl.rlim_cur < want)
        bg_warn("open-file limit %llu is below the %llu descriptors this configuration needs "
                "(2 x limits.max_connections %d, idle upstream connections, listeners, files): "
                "raise LimitNOFILE or lower limits.max_connections",
                (unsigned long long)rl.rlim_cur, (unsigned long long)want, cfg->max_connections);
}

int bg_server_run(const char *config_path)
{
    bg_server_t srv;
    int nerr = 0, rc = 1;
    struct event *sighup = NULL, *sigterm = NULL, *sigint = NULL, *sigusr1 = NULL;

    memset(&srv, 0, sizeof srv);
    srv.config_path = config_path;
    srv.started_ms = bg_util_wall_ms();
    bg_log_set_component("proxy");

    bg_config_t *cfg = bg_config_load(config_path, stderr, &nerr);
    if (cfg == NULL)
        return 1;
    if (apply_log(cfg) != 0) {
        fprintf(stderr, "bordergate: %s: cannot open log file: %s\n", cfg->log_file,
                strerror(errno));
        bg_config_unref(cfg);
        return 1;
    }
    bg_runtime_t *rt = bg_runtime_new(cfg, stderr);
    if (rt == NULL)
        return 1;
    bg_runtime_publish(rt);
    cfg = rt->cfg;

    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cfg);
    if (open_audit(&srv, cfg) != 0 || open_counters(&srv, cfg) != 0)
        goto done;
    srv.nworkers = cfg->workers;
    srv.workers = calloc((size_t)srv.nworkers, sizeof *srv.workers);
    pipes = calloc((size_t)srv.nworkers, sizeof *pipes);
    srv.base = event_base_new();
    if (srv.workers == NULL || pipes == NULL || srv.base == NULL)
        goto done;
    for (int i = 0; i < srv.nworkers; i++) {
        if (pipe(pipes[i].fd) != 0)
            goto done;
        if (worker_init(&srv, &srv.workers[i], i, cfg) != 0)
            goto done;
    }
    if (cfg->has_admin) {
        char err[256];
        srv.admin = bg_serve_new(srv.base, (struct sockaddr *)&cfg->admin.addr, cfg->admin.len,
                                 NULL, 1 << 20, admin_handle, &srv, err, sizeof err);
        if (srv.admin == NULL) {
            fprintf(stderr, "bordergate: admin listener: %s\n", err);
            goto done;
        }
    }
    sighup = evsignal_new(srv.base, SIGHUP, on_sighup, &srv);
    sigusr1 = evsignal_new(srv.base, SIGUSR1, on_sigusr1, &srv);
    evsignal_add(sigusr1, NULL);
    sigterm = evsignal_new(srv.base, SIGTERM, on_stop, &srv);
    sigint = evsignal_new(srv.base, SIGINT, on_stop, &srv);
    evsignal_add(sighup, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);

    for (int i = 0; i < srv.nworkers; i++) {
        if (pthread_create(&srv.workers[i].thread, NULL, worker_main, &srv.workers[i]) != 0) {
            bg_error("cannot start worker %d", i);
            goto done;
        }
    }
    for (int i = 0; i < cfg->nlisten; i++)
        bg_info("bordergate %s listening on %s (%d worker%s, %d routes)", BG_VERSION,
                cfg->listen[i].text, srv.nworkers, srv.nworkers > 1 ? "s" : "", cfg->nroutes);
    if (cfg->has_admin)
        bg_info("admin listener on %s (/healthz, /readyz, /metrics, /stats, /dashboard/)",
                cfg->admin.text);
    log_geo(cfg);

    event_base_dispatch(srv.base); /* until SIGTERM/SIGINT */

    /* Keep serving signals (second SIGTERM, drain deadline) while joining. */
    for (int i = 0; i < srv.nworkers; i++) {
        while (pthread_tryjoin_np(srv.workers[i].thread, NULL) == EBUSY)
            event_base_loop(srv.base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(10000);
        srv.workers[i].thread = 0;
    }
    bg_info("stopped");
    rc = 0;
done:
    if (rc != 0) {
        for (int i = 0; i < srv.nworkers; i++) {
            if (srv.workers != NULL && srv.workers[i].thread != 0) {
                notify_workers(&srv, 'q');
                pthread_join(srv.workers[i].thread, NULL);
            }
        }
    }
    if (sighup != NULL)
        event_free(sighup);
    if (sigusr1 != NULL)
        event_free(sigusr1);
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    bg_serve_free(srv.admin);
    for (int i = 0; srv.workers != NULL && i < srv.nworkers; i++) {
        worker_destroy(&srv.workers[i]);
        if (pipes[i].fd[0] > 0) {
            close(pipes[i].fd[0]);
            close(pipes[i].fd[1]);
        }
    }
    free(srv.workers);
    free(pipes);
    if (srv.audit != NULL)
        bg_audit_close(srv.audit);
    bg_counters_close(srv.counters); /* after the workers: they count */
    if (srv.base != NULL)
        event_base_free(srv.base);
    bg_runtime_publish_final();
    return rc;
}
