/*
 * The daemon (proxy/server.h): the control thread's loop (signals, reload,
 * stop and drain, the housekeeping tick), the workers and their listeners,
 * the audit writer and counters it opens, and bg_server_run. The admin
 * listener's endpoints are proxy/admin.c; what the two share is
 * proxy/server_int.h.
 */
#include "proxy/server.h"
#include "proxy/server_int.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "common/log.h"
#include "common/notify.h"
#include "common/util.h"
#include "geo/geo.h"
#include "proxy/resolve.h"
#include "proxy/evmem.h"
#include "proxy/runtime.h"
#include "proxy/serve.h"
#include "proxy/session.h"
#include "proxy/upstream.h"
#include "proxy/accesslog.h"
#include "proxy/metrics.h"
#include "proxy/worker.h"
#include "policy/policy.h"

/* The control loop's housekeeping tick: rate-limited log counts, the audit
 * writability probe, the systemd watchdog (at most half its interval). */
#define TICK_MS 250

typedef struct {
    int fd[2]; /* control -> worker notifications */
} worker_pipe_t;

static worker_pipe_t *pipes;

/* ------------------------------------------------------------------------ */
/* Workers                                                                  */

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

/* Accept again unless something still stands in the way: the connection
 * limit, or no descriptor to accept into. (Draining closes the listeners,
 * after timeouts.drain_delay_ms; until then they accept.) */
static void worker_resume_listeners(bg_worker_t *w)
{
    if (!w->listeners_paused || w->nconns >= w->max_connections ||
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
    if (w->nlisteners == 0)
        return 1;
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

/* A draining worker whose listeners are closed ends its loop with its last
 * connection. */
static void worker_exit_if_drained(bg_worker_t *w)
{
    if (w->draining && w->nlisteners == 0 && w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

/*
 * Close the listening sockets now, so that the kernel refuses new clients
 * (ECONNREFUSED: they retry another instance) instead of queueing them in
 * a backlog no one will accept from. Connections already in this socket's
 * backlog are reset by the kernel. Worker thread only.
 */
static void worker_close_listeners(bg_worker_t *w)
{
    __atomic_store_n(&w->accept_blocked, 0, __ATOMIC_RELAXED);
    evtimer_del(w->accept_retry);
    for (int i = 0; i < w->nlisteners; i++)
        evconnlistener_free(w->listeners[i]);
    w->nlisteners = 0;
    w->listeners_paused = 0;
}

void bg_worker_connection_closed(bg_worker_t *w)
{
    w->nconns--;
    trim_after_burst(w);
    bg_worker_descriptor_released(w);
    if (w->listeners_paused)
        worker_resume_listeners(w);
    worker_exit_if_drained(w);
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

/*
 * Commands from the control thread, one byte each: 'd' drain (idle
 * connections close, every response from now on says Connection: close),
 * 'c' close the listeners (after 'd'; at once, or after
 * timeouts.drain_delay_ms), 'q' close everything now (the drain deadline).
 */
static void on_control(evutil_socket_t fd, short what, void *arg)
{
    bg_worker_t *w = arg;
    char cmd;
    if (read(fd, &cmd, 1) != 1)
        return;
    if (cmd == 'd' && !w->draining) {
        w->draining = 1;
        bg_session_drain_all(w);
    } else if (cmd == 'c') {
        worker_close_listeners(w);
        worker_exit_if_drained(w);
    } else if (cmd == 'q') {
        bg_session_close_all(w);
        event_base_loopexit(w->base, NULL);
    }
}

static void *worker_main(void *arg)
{
    bg_worker_t *w = arg;
    bg_evmem_thread_cache();
    struct event *ctl =
        event_new(w->base, pipes[w->index].fd[0], EV_READ | EV_PERSIST, on_control, w);
    event_add(ctl, NULL);
    event_base_dispatch(w->base);
    bg_session_close_all(w);
    event_free(ctl);
    bg_evmem_thread_done(); /* the chains this worker kept */
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
    w->metrics = bg_metrics_new(cfg->metrics_max_series);
    w->accesslog = srv->accesslog;
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
        /* The socket is bound and listening already (listen_bind_all);
         * from here the listener owns it. */
        int lfd = srv->listen_fds[index][i];
        w->listeners[i] = evconnlistener_new(w->base, on_accept, w,
                                             LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, lfd);
        if (w->listeners[i] == NULL) {
            fprintf(stderr, "bordergate: cannot listen on %s: %s\n", cfg->listen[i].text,
                    strerror(errno));
            return -1;
        }
        srv->listen_fds[index][i] = -1;
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
/* Control: reload, stop                                                    */

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

static int reload_config(bg_server_t *srv);

/* Reload the configuration, telling systemd (RELOADING=1 with the time,
 * then READY=1 whatever the outcome: the old configuration stays in force
 * when the new one is refused). 0, or -1 when it was refused. */
int bg_server_reload(bg_server_t *srv)
{
    bg_notify_reloading();
    int rc = reload_config(srv);
    bg_notify(rc == 0 ? "READY=1\nSTATUS=configuration reloaded"
                      : "READY=1\nSTATUS=reload refused; the running configuration stays");
    return rc;
}

static int reload_config(bg_server_t *srv)
{
    int nerr = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&buf, &len);
    if (errs == NULL) {
        /* Out of memory on SIGHUP: keep the running configuration. */
        srv->reloads_failed++;
        srv->last_reload_failed = 1;
        bg_error("reload of %s failed: out of memory; the running configuration stays in force",
                 srv->config_path);
        return -1;
    }
    bg_config_t *cfg = bg_config_load(srv->config_path, errs, &nerr);
    bg_runtime_t *rt = cfg != NULL ? bg_runtime_new(cfg, errs) : NULL;
    fclose(errs);
    if (rt == NULL) {
        srv->reloads_failed++;
        srv->last_reload_failed = 1;
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
    if (old != NULL && (old->cfg->metrics_max_series != cfg->metrics_max_series ||
                        (old->cfg->access_log_path == NULL) != (cfg->access_log_path == NULL) ||
                        (cfg->access_log_path != NULL &&
                         strcmp(old->cfg->access_log_path, cfg->access_log_path) != 0)))
        bg_warn("reload: changes to access_log or metrics take effect after a restart");
    bg_runtime_unref(old);
    bg_runtime_publish(rt);
    if (apply_log(cfg) != 0)
        bg_error("reload: cannot open log file %s: %s; logging stays where it was", cfg->log_file,
                 strerror(errno));
    log_geo(cfg);
    srv->reloads_ok++;
    srv->last_reload_failed = 0;
    srv->last_reload_ok_ms = bg_util_wall_ms();
    bg_info("configuration reloaded from %s (generation %u, %d routes)", srv->config_path,
            rt->generation, cfg->nroutes);
    return 0;
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
    bg_server_reload(arg);
}

/* SIGUSR1: reopen the log file only (after logrotate moved it). */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
    if (bg_log_reopen() != 0)
        bg_error("cannot reopen the log file: %s; still writing to the old one", strerror(errno));
    else
        bg_info("log file reopened");
    bg_accesslog_reopen(((bg_server_t *)arg)->accesslog); /* reports itself */
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    bg_server_t *srv = arg;
    bg_warn("drain deadline (timeouts.drain_ms %d) passed; closing remaining connections",
            srv->drain_timeout_ms);
    notify_workers(srv, 'q');
}

static void on_drain_delay(evutil_socket_t fd, short what, void *arg)
{
    bg_server_t *srv = arg;
    bg_info("drain delay (timeouts.drain_delay_ms %d) passed; closing the listeners",
            srv->drain_delay_ms);
    notify_workers(srv, 'c');
}

static struct timeval ms_tv(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/*
 * SIGTERM/SIGINT: stop without losing a request. Every response from now
 * on closes its connection and idle connections close at once; the
 * listeners close at once (new clients get ECONNREFUSED and go to another
 * instance) or, with timeouts.drain_delay_ms, after that delay (for load
 * balancers that keep sending for a while after /readyz turns 503, e.g.
 * a Kubernetes Service while its endpoints update); requests in flight
 * then have timeouts.drain_ms before their connections are closed. A
 * second signal closes everything at once.
 */
static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    bg_server_t *srv = arg;
    if (srv->stopping) {
        notify_workers(srv, 'q');
        return;
    }
    srv->stopping = 1;
    bg_notify("STOPPING=1\nSTATUS=draining");
    notify_workers(srv, 'd');
    if (srv->drain_delay_ms > 0) {
        bg_info("stopping: accepting for %d ms more (Connection: close), then finishing "
                "requests in flight (at most %d ms)",
                srv->drain_delay_ms, srv->drain_timeout_ms);
        struct timeval tv = ms_tv(srv->drain_delay_ms);
        event_base_once(srv->base, -1, EV_TIMEOUT, on_drain_delay, srv, &tv);
    } else {
        bg_info("stopping: listeners closed; finishing requests in flight (at most %d ms)",
                srv->drain_timeout_ms);
        notify_workers(srv, 'c');
    }
    struct timeval tv = ms_tv(srv->drain_delay_ms + srv->drain_timeout_ms);
    event_base_once(srv->base, -1, EV_TIMEOUT, on_deadline, srv, &tv);
    /* The control loop ends when the workers have been joined (see below). */
    event_base_loopexit(srv->base, NULL);
}

/*
 * The control loop's tick (every TICK_MS): report the counts of
 * rate-limited log lines that are due, let the audit writer probe a disk
 * it could not write to (so /readyz recovers without traffic), and feed
 * the systemd watchdog: a control loop that stops ticking (deadlocked,
 * stuck) stops the WATCHDOG=1 messages and systemd restarts the service.
 */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    bg_server_t *srv = arg;
    bg_log_limits_flush();
    if (srv->audit != NULL)
        bg_audit_probe(srv->audit);
    if (srv->watchdog_us > 0) {
        uint64_t now = bg_util_mono_us();
        /* Send on the last tick before half the interval has passed. */
        if (now - srv->watchdog_last_us + srv->tick_us >= srv->watchdog_us / 2) {
            bg_notify("WATCHDOG=1");
            srv->watchdog_last_us = now;
        }
    }
}

/* The one audit writer of this process (restart to change its settings).
 * QUIET: a failure to open the log is not printed (it will be retried). */
static int open_audit(bg_server_t *srv, const bg_config_t *cfg, int quiet)
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
        if (!quiet)
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
static int open_counters(bg_server_t *srv, const bg_config_t *cfg, int quiet)
{
    char err[512];
    if (srv->audit != NULL && cfg->store_redis != NULL && srv->rollfleet == NULL &&
        (srv->rollfleet = bg_rollup_fleet_start(cfg->audit_dir, cfg->audit_prefix, cfg->store_redis,
                                                0, err, sizeof err)) == NULL) {
        fprintf(stderr, "bordergate: fleet rollups: %s\n", err);
        return -1;
    }
    if (srv->audit == NULL || cfg->audit_counters_file == NULL)
        return 0;
    srv->counters = bg_counters_open(cfg->audit_counters_file, err, sizeof err);
    if (srv->counters == NULL) {
        if (!quiet)
            fprintf(stderr, "bordergate: yearly counters: %s\n", err);
        return -1;
    }
    bg_counters_thresholds_t t;
    bg_config_thresholds(cfg, &t);
    bg_counters_set_thresholds(srv->counters, &t);
    if (cfg->store_redis != NULL &&
        (srv->fleet = bg_counters_fleet_start(cfg->audit_counters_file, cfg->store_redis, err,
                                              sizeof err)) == NULL) {
        fprintf(stderr, "bordergate: fleet counters: %s\n", err);
        return -1;
    }
    return 0;
}

/*
 * Open the audit writer, then the yearly counters. In a take-over
 * (WAIT_MS > 0) the old process holds their locks until it has drained:
 * each is retried every 50 ms for up to WAIT_MS in all (new connections
 * wait in our listen backlog meanwhile), and only the last failure is
 * printed. 0, or -1 after printing why.
 */
static int open_stores(bg_server_t *srv, const bg_config_t *cfg, long long wait_ms)
{
    uint64_t until = bg_util_mono_us() + (uint64_t)wait_ms * 1000;
    for (;;) {
        int last = bg_util_mono_us() >= until;
        if (open_audit(srv, cfg, !last) == 0)
            break;
        if (last)
            return -1;
        usleep(50000);
    }
    for (;;) {
        int last = bg_util_mono_us() >= until;
        if (open_counters(srv, cfg, !last) == 0)
            return 0;
        if (last)
            return -1;
        usleep(50000);
    }
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

/* ------------------------------------------------------------------------ */
/* Listening sockets, co-binding and take-over                              */

/*
 * Is ADDR being listened on already, by any process? The workers' sockets
 * use SO_REUSEPORT (one per worker), which would let a second bordergate
 * of the same user bind beside a running one and silently take part of
 * its traffic under another policy. A probe socket with SO_REUSEADDR but
 * without SO_REUSEPORT cannot bind beside a listening socket: EADDRINUSE
 * means someone listens. 1 in use, 0 free, -1 (errno set) other errors.
 * (Two processes starting in the same millisecond could both find the
 * address free; the audit directory's lock still stops the second when
 * they share it.)
 */
static int address_in_use(const bg_listen_addr_t *a)
{
    int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(fd, (const struct sockaddr *)&a->addr, a->len) == 0 ? 0
             : errno == EADDRINUSE                                    ? 1
                                                                      : -1;
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

/* One listening socket for A that shares its port with the other workers'
 * (SO_REUSEPORT: the kernel spreads connections over them). -1 (errno). */
static int listen_socket(const bg_listen_addr_t *a)
{
    int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)&a->addr, a->len) != 0 || listen(fd, 4096) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* Bind every worker's listening sockets (before the workers exist, so that
 * a take-over holds the port before the old process lets it go). 0, or -1
 * with one line on stderr. */
static int listen_bind_all(bg_server_t *srv, const bg_config_t *cfg)
{
    srv->listen_fds = calloc((size_t)srv->nworkers, sizeof *srv->listen_fds);
    if (srv->listen_fds == NULL)
        return -1;
    for (int w = 0; w < srv->nworkers; w++)
        for (int i = 0; i < BG_MAX_LISTEN; i++)
            srv->listen_fds[w][i] = -1;
    for (int w = 0; w < srv->nworkers; w++) {
        for (int i = 0; i < cfg->nlisten; i++) {
            srv->listen_fds[w][i] = listen_socket(&cfg->listen[i]);
            if (srv->listen_fds[w][i] < 0) {
                fprintf(stderr, "bordergate: cannot listen on %s: %s\n", cfg->listen[i].text,
                        strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

/* Close the sockets no worker took (start-up failed half-way). */
static void listen_close_unused(bg_server_t *srv)
{
    for (int w = 0; srv->listen_fds != NULL && w < srv->nworkers; w++)
        for (int i = 0; i < BG_MAX_LISTEN; i++)
            if (srv->listen_fds[w][i] >= 0)
                close(srv->listen_fds[w][i]);
    free(srv->listen_fds);
    srv->listen_fds = NULL;
}

/* The policy version records carry: the policy's own, else the SHA-256
 * of the configuration file. */
const char *bg_server_policy_version(const bg_config_t *cfg)
{
    const bg_policy_t *p = cfg->policy;
    if (p == NULL)
        return "";
    return p->version != NULL ? p->version : p->hash;
}

/* AUDIT_DIR/.PREFIX.run.json: the run-state file of the process that holds
 * the audit directory's lock. Caller frees; NULL without an audit log. */
static char *state_file_path(const bg_config_t *cfg)
{
    if (!cfg->audit_enabled || cfg->audit_dir == NULL)
        return NULL;
    const char *prefix = cfg->audit_prefix != NULL ? cfg->audit_prefix : "audit";
    size_t n = strlen(cfg->audit_dir) + strlen(prefix) + 16;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/.%s.run.json", cfg->audit_dir, prefix);
    return p;
}

/*
 * Write the run-state file: this process's pid, policy version and drain
 * budget, and its listen addresses, for `run --takeover` of a binary
 * upgrade to check and signal. Written (atomically: temporary file and
 * rename) once the audit directory's lock is ours, removed before it is
 * released, so the file names the process that holds the lock.
 */
static void state_file_write(bg_server_t *srv, const bg_config_t *cfg)
{
    srv->state_path = state_file_path(cfg);
    if (srv->state_path == NULL)
        return;
    json_t *o = json_object();
    json_t *l = json_array();
    for (int i = 0; i < cfg->nlisten; i++)
        json_array_append_new(l, json_string(cfg->listen[i].text));
    json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(o, "version", json_string(BG_VERSION));
    json_object_set_new(o, "policy_version", json_string(bg_server_policy_version(cfg)));
    json_object_set_new(o, "config", json_string(srv->config_path));
    json_object_set_new(o, "listen", l);
    json_object_set_new(o, "drain_ms",
                        json_integer((json_int_t)cfg->drain_delay_ms + cfg->drain_timeout_ms));
    size_t n = strlen(srv->state_path) + 5;
    char *tmp = malloc(n);
    if (tmp != NULL) {
        snprintf(tmp, n, "%s.tmp", srv->state_path);
        if (json_dump_file(o, tmp, JSON_COMPACT) != 0 || rename(tmp, srv->state_path) != 0) {
            bg_warn("cannot write %s: %s (a later `run --takeover` cannot hand over)",
                    srv->state_path, strerror(errno));
            unlink(tmp);
        }
        free(tmp);
    }
    json_decref(o);
}

static void state_file_remove(bg_server_t *srv)
{
    if (srv->state_path != NULL)
        unlink(srv->state_path);
    free(srv->state_path);
    srv->state_path = NULL;
}

/*
 * Is the audit directory's lock (audit/audit.c: AUDIT_DIR/.PREFIX.lock,
 * flock) held by a live process? The run-state file is written only by
 * the lock's holder and removed before it lets go, so a held lock is what
 * makes the file's pid trustworthy (a stale file from a crash may name a
 * pid reused by an unrelated process, which must never get our SIGTERM).
 */
static int audit_lock_held(const bg_config_t *cfg)
{
    const char *prefix = cfg->audit_prefix != NULL ? cfg->audit_prefix : "audit";
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/.%s.lock", cfg->audit_dir, prefix) >= sizeof path)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* releases the lock if we took it */
    return held;
}

/*
 * Before binding: refuse to start beside a process that listens on one of
 * our addresses (exit 1, one line), unless BG_SERVER_TAKEOVER asks for a
 * binary upgrade's hand-over, which needs the running bordergate's
 * run-state file in the same audit directory and the same policy version.
 * Returns 0 to go on (*OLD_PID the process to stop once our sockets are
 * bound, 0 for none; *OLD_DRAIN_MS its drain budget), or -1 after printing
 * the reason.
 */
static int check_listen_free(bg_server_t *srv, const bg_config_t *cfg, pid_t *old_pid,
                             long long *old_drain_ms)
{
    const char *busy = NULL;
    *old_pid = 0;
    *old_drain_ms = 0;
    for (int i = 0; i < cfg->nlisten && busy == NULL; i++) {
        int r = address_in_use(&cfg->listen[i]);
        if (r == 1)
            busy = cfg->listen[i].text;
        else if (r < 0) {
            fprintf(stderr, "bordergate: cannot listen on %s: %s\n", cfg->listen[i].text,
                    strerror(errno));
            return -1;
        }
    }
    if (busy == NULL)
        return 0;
    if (!(srv->flags & BG_SERVER_TAKEOVER)) {
        fprintf(stderr,
                "bordergate: cannot listen on %s: the address is in use (another bordergate "
                "running? a binary upgrade hands over with `bordergate run --takeover`)\n",
                busy);
        return -1;
    }
    char *path = state_file_path(cfg);
    json_error_t jerr;
    json_t *st = path != NULL ? json_load_file(path, 0, &jerr) : NULL;
    json_int_t pid = json_integer_value(json_object_get(st, "pid"));
    const char *ver = json_string_value(json_object_get(st, "policy_version"));
    int rc = -1;
    if (path == NULL)
        fprintf(stderr,
                "bordergate: --takeover: %s is in use, and without an audit log there is no "
                "run-state file to learn the running policy version from\n",
                busy);
    else if (st == NULL || pid <= 1 || ver == NULL || !audit_lock_held(cfg) ||
             kill((pid_t)pid, 0) != 0)
        fprintf(stderr,
                "bordergate: --takeover: %s is in use, but not by a bordergate writing to %s "
                "(no valid run-state file %s)\n",
                busy, cfg->audit_dir, path);
    else if (strcmp(ver, bg_server_policy_version(cfg)) != 0)
        fprintf(stderr,
                "bordergate: --takeover refused: the running process (pid %lld) enforces policy "
                "version %s, this configuration %s; stop it first to change the policy\n",
                (long long)pid, ver, bg_server_policy_version(cfg));
    else {
        *old_pid = (pid_t)pid;
        *old_drain_ms = json_integer_value(json_object_get(st, "drain_ms"));
        rc = 0;
    }
    json_decref(st);
    free(path);
    return rc;
}

/* Load the configuration named on the command line and publish its
 * snapshot; the operational log goes where it says. Returns the
 * configuration in force (the snapshot's), or NULL after printing why. */
static const bg_config_t *server_load(bg_server_t *srv)
{
    int nerr = 0;
    bg_config_t *cfg = bg_config_load(srv->config_path, stderr, &nerr);
    if (cfg == NULL)
        return NULL;
    if (apply_log(cfg) != 0) {
        fprintf(stderr, "bordergate: %s: cannot open log file: %s\n", cfg->log_file,
                strerror(errno));
        bg_config_unref(cfg);
        return NULL;
    }
    bg_runtime_t *rt = bg_runtime_new(cfg, stderr);
    if (rt == NULL)
        return NULL;
    bg_runtime_publish(rt);
    return rt->cfg;
}

/*
 * Before any worker exists: refuse to start beside a process on our
 * addresses (or take over from it), raise the descriptor limit, bind every
 * listen address, stop the process taken over, open the audit writer and
 * the counters, the access log and the run-state file. 0, or -1 after
 * printing why.
 */
static int server_open(bg_server_t *srv, const bg_config_t *cfg)
{
    pid_t old_pid = 0;
    long long old_drain_ms = 0;
    if (check_listen_free(srv, cfg, &old_pid, &old_drain_ms) != 0)
        return -1;
    raise_fd_limit(cfg);
    if (listen_bind_all(srv, cfg) != 0)
        return -1;
    if (old_pid != 0) {
        /* Our sockets share the port now: new connections queue for us
         * while the old process stops accepting and drains. */
        bg_info("take-over: listening beside pid %d (same policy version %s); stopping it",
                (int)old_pid, bg_server_policy_version(cfg));
        if (kill(old_pid, SIGTERM) != 0)
            bg_warn("take-over: cannot signal pid %d: %s", (int)old_pid, strerror(errno));
    }
    if (open_stores(srv, cfg, old_pid != 0 ? old_drain_ms + 5000 : 0) != 0)
        return -1;
    if (cfg->access_log_path != NULL) {
        char err[512];
        srv->accesslog = bg_accesslog_open(cfg->access_log_path, err, sizeof err);
        if (srv->accesslog == NULL) {
            fprintf(stderr, "bordergate: access log: %s\n", err);
            return -1;
        }
    }
    state_file_write(srv, cfg);
    return 0;
}

/* The control thread's signals, in srv->signals' order. */
static const struct {
    int signo;
    event_callback_fn cb;
} server_signals[4] = {
    {SIGHUP, on_sighup},
    {SIGUSR1, on_sigusr1},
    {SIGTERM, on_stop},
    {SIGINT, on_stop},
};

/*
 * The control loop's parts, nothing running yet: the workers (each with
 * its event loop, listeners and control pipe), the admin listener, the
 * signal events and the housekeeping tick (every TICK_MS, or a quarter of
 * the systemd watchdog interval when that is shorter). 0, or -1 (what was
 * made is freed by server_close).
 */
static int server_prepare(bg_server_t *srv, const bg_config_t *cfg)
{
    srv->workers = calloc((size_t)srv->nworkers, sizeof *srv->workers);
    pipes = calloc((size_t)srv->nworkers, sizeof *pipes);
    srv->base = event_base_new();
    if (srv->workers == NULL || pipes == NULL || srv->base == NULL)
        return -1;
    for (int i = 0; i < srv->nworkers; i++) {
        if (pipe(pipes[i].fd) != 0)
            return -1;
        if (worker_init(srv, &srv->workers[i], i, cfg) != 0)
            return -1;
    }
    if (cfg->has_admin) {
        char err[256];
        srv->admin = bg_serve_new(srv->base, (struct sockaddr *)&cfg->admin.addr, cfg->admin.len,
                                  NULL, 1 << 20, bg_admin_handle, srv, err, sizeof err);
        if (srv->admin == NULL) {
            fprintf(stderr, "bordergate: admin listener: %s\n", err);
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof server_signals / sizeof server_signals[0]; i++) {
        srv->signals[i] =
            evsignal_new(srv->base, server_signals[i].signo, server_signals[i].cb, srv);
        if (srv->signals[i] == NULL || evsignal_add(srv->signals[i], NULL) != 0)
            return -1;
    }
    srv->watchdog_us = bg_notify_watchdog_usec();
    srv->tick = event_new(srv->base, -1, EV_PERSIST, on_tick, srv);
    if (srv->tick == NULL)
        return -1;
    int tick_ms = TICK_MS;
    if (srv->watchdog_us > 0 && srv->watchdog_us / 4000 < (uint64_t)tick_ms)
        tick_ms = srv->watchdog_us / 4000 > 0 ? (int)(srv->watchdog_us / 4000) : 1;
    srv->tick_us = (uint64_t)tick_ms * 1000;
    struct timeval tick_tv = ms_tv(tick_ms);
    event_add(srv->tick, &tick_tv);
    return 0;
}

/*
 * Start the worker threads, say where we listen, tell systemd we are
 * ready, and run the control loop until SIGTERM/SIGINT (on_stop); then
 * join the workers while still serving signals (a second SIGTERM, the
 * drain deadline). 0, or -1 when a worker cannot start (the ones started
 * are stopped by server_close).
 */
static int server_serve(bg_server_t *srv, const bg_config_t *cfg)
{
    for (int i = 0; i < srv->nworkers; i++) {
        if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0) {
            bg_error("cannot start worker %d", i);
            return -1;
        }
    }
    for (int i = 0; i < cfg->nlisten; i++)
        bg_info("bordergate %s listening on %s (%d worker%s, %d routes)", BG_VERSION,
                cfg->listen[i].text, srv->nworkers, srv->nworkers > 1 ? "s" : "", cfg->nroutes);
    if (cfg->has_admin)
        bg_info("admin listener on %s (/healthz, /readyz, /metrics, /stats, /dashboard/)",
                cfg->admin.text);
    log_geo(cfg);
    /* Listening, the audit log open, the workers running. */
    bg_notify("READY=1\nSTATUS=serving");

    event_base_dispatch(srv->base); /* until SIGTERM/SIGINT */

    /* Keep serving signals (second SIGTERM, drain deadline) while joining. */
    for (int i = 0; i < srv->nworkers; i++) {
        while (pthread_tryjoin_np(srv->workers[i].thread, NULL) == EBUSY)
            event_base_loop(srv->base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(10000);
        srv->workers[i].thread = 0;
    }
    bg_info("stopped");
    return 0;
}

/* Free whatever the steps above made, whichever step failed (the lines
 * say why their order). RC != 0: workers still running are told to quit
 * and joined first. */
static void server_close(bg_server_t *srv, int rc)
{
    if (rc != 0) {
        for (int i = 0; i < srv->nworkers; i++) {
            if (srv->workers != NULL && srv->workers[i].thread != 0) {
                notify_workers(srv, 'q');
                pthread_join(srv->workers[i].thread, NULL);
            }
        }
    }
    for (size_t i = 0; i < sizeof srv->signals / sizeof srv->signals[0]; i++) {
        if (srv->signals[i] != NULL)
            event_free(srv->signals[i]);
    }
    if (srv->tick != NULL)
        event_free(srv->tick);
    bg_serve_free(srv->admin);
    listen_close_unused(srv);
    for (int i = 0; srv->workers != NULL && i < srv->nworkers; i++) {
        worker_destroy(&srv->workers[i]);
        if (pipes[i].fd[0] > 0) {
            close(pipes[i].fd[0]);
            close(pipes[i].fd[1]);
        }
    }
    free(srv->workers);
    free(pipes);
    state_file_remove(srv); /* before the audit lock goes: a take-over writes its own */
    if (srv->audit != NULL)
        bg_audit_close(srv->audit);
    bg_counters_close(srv->counters);   /* after the workers: they count */
    bg_accesslog_close(srv->accesslog); /* after the workers: they write */
    bg_counters_fleet_stop(srv->fleet); /* after the counters: their last lines are pushed */
    /* after the audit log: its last records are published */
    bg_rollup_fleet_stop(srv->rollfleet);
    if (srv->base != NULL)
        event_base_free(srv->base);
    bg_runtime_publish_final();
}

/* Contract: proxy/server.h. The steps: load, open, prepare, serve, close. */
int bg_server_run(const char *config_path, unsigned flags)
{
    bg_server_t srv;
    memset(&srv, 0, sizeof srv);
    srv.config_path = config_path;
    srv.flags = flags;
    srv.started_ms = bg_util_wall_ms();
    srv.last_reload_ok_ms = srv.started_ms;
    bg_log_set_component("proxy");

    const bg_config_t *cfg = server_load(&srv);
    if (cfg == NULL)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    srv.nworkers = cfg->workers;
    srv.drain_delay_ms = cfg->drain_delay_ms;
    srv.drain_timeout_ms = cfg->drain_timeout_ms;
    int rc = 1;
    if (server_open(&srv, cfg) == 0 && server_prepare(&srv, cfg) == 0 &&
        server_serve(&srv, cfg) == 0)
        rc = 0;
    server_close(&srv, rc);
    return rc;
}
