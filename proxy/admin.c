/*
 * The admin API: the endpoints of the admin listener (admin.listen) on the
 * control thread. /healthz (liveness and what runs), /readyz (whether to
 * send traffic here), /metrics (Prometheus), /stats (JSON counters),
 * /consents (the consent registry, bearer token), POST /reload; the
 * dashboard's /dashboard/ and /api/ are proxy/dashboard.c's. The server's
 * state it reads: proxy/server_int.h. Reference: docs/operations.md.
 */
#include "proxy/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "common/util.h"
#include "geo/geo.h"
#include "policy/consent.h"
#include "proxy/dashboard.h"
#include "proxy/metrics.h"
#include "proxy/runtime.h"
#include "proxy/upstream.h"

/* Freshness of the country database, for /healthz. */
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

/* GET /stats: the workers' counters summed (relaxed atomic loads), the
 * audit writer's, requests in flight per route, the yearly counters and
 * their fleet copy. Caller owns the object. */
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
    if (srv->fleet != NULL) {
        int up;
        long long pending;
        unsigned long long lines;
        bg_counters_fleet_stats(srv->fleet, &up, &pending, &lines);
        json_object_set_new(o, "fleet_counters",
                            json_pack("{s:b, s:I, s:I}", "store_reachable", up, "pending_bytes",
                                      (json_int_t)pending, "lines_pushed", (json_int_t)lines));
    }
    return o;
}

/*
 * Readiness (/readyz): the policy is loaded, the country database is open
 * and its file still there (a restart or reload would need it), the audit
 * log is writable (its last write and fsync succeeded), the consent
 * registry answers look-ups (a shared store is reachable), every worker can
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
    char why[400];
    if (rt != NULL && rt->consent != NULL && bg_consent_health(rt->consent, why, sizeof why) != 0) {
        char line[480];
        snprintf(line, sizeof line, "consent: %s", why);
        json_array_append_new(not_ready, json_string(line));
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

/* Send O (taken) as REPLY's body: one line of compact JSON. */
static void reply_json(bg_serve_reply_t *reply, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    evbuffer_add_printf(reply->body, "%s\n", s != NULL ? s : "{}");
    free(s);
    json_decref(o);
}

/* GET /healthz: liveness and what runs (version, uptime, configuration,
 * reloads, the country database, whether the audit log is writable); 503
 * while stopping. */
static void admin_healthz(bg_server_t *srv, const bg_serve_req_t *req, bg_serve_reply_t *reply)
{
    (void)req;
    bg_runtime_t *rt = bg_runtime_acquire();
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(srv->stopping ? "stopping" : "ok"));
    json_object_set_new(o, "version", json_string(BG_VERSION));
    json_object_set_new(o, "uptime_s",
                        json_integer((json_int_t)((bg_util_wall_ms() - srv->started_ms) / 1000)));
    json_object_set_new(o, "config", json_string(srv->config_path));
    json_object_set_new(o, "config_generation", json_integer(rt ? rt->generation : 0));
    json_object_set_new(o, "routes", json_integer(rt ? rt->cfg->nroutes : 0));
    json_object_set_new(o, "policy_version",
                        json_string(rt ? bg_server_policy_version(rt->cfg) : ""));
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
    reply_json(reply, o);
}

/* GET /readyz: 200 when ready, else 503 with the reasons (readiness). */
static void admin_readyz(bg_server_t *srv, const bg_serve_req_t *req, bg_serve_reply_t *reply)
{
    (void)req;
    bg_runtime_t *rt = bg_runtime_acquire();
    json_t *problems = json_array();
    int ready = readiness(srv, rt, problems);
    bg_runtime_unref(rt);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(ready ? "ready" : "not ready"));
    json_object_set_new(o, "not_ready", problems);
    if (!ready)
        reply->status = 503;
    reply_json(reply, o);
}

/* GET /metrics: the Prometheus text format (proxy/metrics.c). */
static void admin_metrics(bg_server_t *srv, const bg_serve_req_t *req, bg_serve_reply_t *reply)
{
    (void)req;
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
    sc.started_ms = srv->started_ms;
    sc.last_reload_ok = !srv->last_reload_failed;
    sc.last_reload_ok_ms = srv->last_reload_ok_ms;
    sc.accesslog = srv->accesslog;
    sc.ready = readiness(srv, rt, problems);
    json_decref(problems);
    reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
    bg_metrics_render(&sc, reply->body);
    bg_runtime_unref(rt);
}

/* GET /stats: stats_json. */
static void admin_stats(bg_server_t *srv, const bg_serve_req_t *req, bg_serve_reply_t *reply)
{
    (void)req;
    reply_json(reply, stats_json(srv));
}

/* /consents...: the consent registry's admin API (policy/consent_admin.c),
 * bearer token required; 404 without a registry or for an endpoint it does
 * not know. */
static void admin_consents(bg_server_t *srv, const bg_serve_req_t *req, bg_serve_reply_t *reply)
{
    (void)srv;
    bg_runtime_t *rt = bg_runtime_acquire();
    json_t *o;
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
    reply_json(reply, o);
}

/* POST /reload: bg_server_reload; the bearer token when one is set. 422
 * when the new configuration is refused. */
static void admin_reload(bg_server_t *srv, const bg_serve_req_t *req, bg_serve_reply_t *reply)
{
    bg_runtime_t *rt = bg_runtime_acquire();
    int authorized = rt->cfg->admin_token == NULL || admin_authorized(req, rt->cfg);
    bg_runtime_unref(rt);
    if (!authorized) {
        reply->status = 401;
        reply_json(reply, json_pack("{s:s}", "error", "missing or wrong bearer token"));
        return;
    }
    int rc = bg_server_reload(srv);
    json_t *o = json_object();
    json_object_set_new(o, "reloaded", json_boolean(rc == 0));
    if (rc != 0) {
        reply->status = 422;
        json_object_set_new(o, "error",
                            json_string("the new configuration is invalid; see the "
                                        "log. The running one stays in force"));
    }
    reply_json(reply, o);
}

enum { ADMIN_GET, ADMIN_POST, ADMIN_ANY }; /* ADMIN_GET: GET or HEAD */

/* The endpoints, matched on the target's path (the query left out): the
 * whole path, or its start for PREFIX. O(N), N = 6. */
static const struct {
    const char *path;
    int prefix;
    int method;
    void (*fn)(bg_server_t *srv, const bg_serve_req_t *req, bg_serve_reply_t *reply);
} admin_endpoints[] = {
    {"/healthz", 0, ADMIN_GET, admin_healthz},   /* liveness */
    {"/readyz", 0, ADMIN_GET, admin_readyz},     /* readiness */
    {"/metrics", 0, ADMIN_GET, admin_metrics},   /* Prometheus */
    {"/stats", 0, ADMIN_GET, admin_stats},       /* JSON counters */
    {"/consents", 1, ADMIN_ANY, admin_consents}, /* /consents/...: the registry */
    {"/reload", 0, ADMIN_POST, admin_reload},    /* the configuration */
};

/*
 * The admin listener (admin.listen; bg_serve_t calls it once a request is
 * complete): the dashboard's paths first (proxy/dashboard.c), then
 * admin_endpoints; anything else is a 404 that lists them. Read-only
 * endpoints answer anyone who reaches the listener; /consents needs the
 * bearer token, /reload needs it when one is set.
 */
void bg_admin_handle(void *arg, const bg_serve_req_t *req, bg_serve_reply_t *reply)
{
    bg_server_t *srv = arg;
    const char *t = req->head->target;
    size_t tl = req->head->target_len;
    const char *q = memchr(t, '?', tl);
    if (q != NULL)
        tl = (size_t)(q - t);
    const char *m = req->head->method;
    size_t ml = req->head->method_len;
    int get = bg_util_ieq(m, ml, "GET") || bg_util_ieq(m, ml, "HEAD");
    int post = bg_util_ieq(m, ml, "POST");

    if (bg_dashboard_handle(req, reply, admin_authorized)) /* /dashboard/, /api/ */
        return;
    for (size_t i = 0; i < sizeof admin_endpoints / sizeof admin_endpoints[0]; i++) {
        size_t pl = strlen(admin_endpoints[i].path);
        int method = admin_endpoints[i].method;
        if ((admin_endpoints[i].prefix ? tl >= pl : tl == pl) &&
            memcmp(t, admin_endpoints[i].path, pl) == 0 &&
            (method == ADMIN_ANY || (method == ADMIN_GET && get) ||
             (method == ADMIN_POST && post))) {
            admin_endpoints[i].fn(srv, req, reply);
            return;
        }
    }
    reply->status = 404;
    reply_json(reply, json_pack("{s:s}", "error",
                                "unknown admin endpoint (try /healthz, /readyz, /metrics, "
                                "/stats, POST /reload, /consents)"));
}
