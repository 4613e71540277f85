/*
 * The compliance dashboard (proxy/dashboard.h): embedded static files and
 * the JSON endpoints the page reads, which are the CLI's report documents.
 */
#include "proxy/dashboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "audit/audit.h"
#include "audit/counters.h"
#include "audit/report.h"
#include "audit/rollup.h"
#include "audit/rollup_fleet.h"
#include "common/util.h"
#include "policy/policy.h"
#include "proxy/runtime.h"
#include "common/hex.h"

#define QUERY_MAX_PARAMS 8
#define QUERY_MAX_VALUE 64
/* A report reads the log in slices of at most SLICE_US of the loop's time,
 * SLICE_LINES lines at a time, so the admin listener keeps answering
 * (/healthz, /readyz, /metrics) and signals are served between slices. */
#define SLICE_US 2000
#define SLICE_LINES 128

typedef struct {
    char name[16];
    char value[QUERY_MAX_VALUE];
} param_t;

/* Headers of every dashboard reply: the page loads nothing from elsewhere
 * and runs no inline script; data is never cached by the browser. */
static void security_headers(bg_serve_reply_t *reply, const char *cache)
{
    snprintf(reply->extra_headers, sizeof reply->extra_headers,
             "Cache-Control: %s\r\n"
             "X-Content-Type-Options: nosniff\r\n"
             "X-Frame-Options: DENY\r\n"
             "Referrer-Policy: no-referrer\r\n"
             "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
             "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'\r\n",
             cache);
}

static void reply_json(bg_serve_reply_t *reply, int status, json_t *doc)
{
    char *s = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    reply->status = status;
    evbuffer_add_printf(reply->body, "%s\n", s != NULL ? s : "{\"error\":\"out of memory\"}");
    free(s);
    json_decref(doc);
}

static void reply_error(bg_serve_reply_t *reply, int status, const char *msg)
{
    reply_json(reply, status, json_pack("{s:s}", "error", msg));
}

/* Percent-decode [S, S+LEN) into OUT (CAP bytes, NUL-terminated). '+' stays
 * '+' (dates carry "+08:00"). -1 when malformed, too long or holding NUL. */
static int decode(const char *s, size_t len, char *out, size_t cap)
{
    long n = bg_hex_pct_decode_all(s, len, out, cap, BG_PCT_STRICT);
    return n < 0 || memchr(out, '\0', (size_t)n) != NULL ? -1 : 0;
}

/*
 * Split the query string Q (LEN bytes, without '?') into P (at most
 * QUERY_MAX_PARAMS). Every name must be in ALLOWED (NULL-terminated) and
 * appear once; empty values count as absent. 0, or -1 with ERR filled.
 */
static int parse_query(const char *q, size_t len, const char *const *allowed, param_t *p, int *np,
                       char *err, size_t errcap)
{
    *np = 0;
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : len;
        const char *eq = memchr(q + i, '=', end - i);
        size_t nend = eq != NULL ? (size_t)(eq - q) : end;
        if (end > i) {
            param_t cur;
            if (decode(q + i, nend - i, cur.name, sizeof cur.name) != 0) {
                snprintf(err, errcap, "unknown query parameter");
                return -1;
            }
            if (decode(eq != NULL ? eq + 1 : q + end, eq != NULL ? end - nend - 1 : 0, cur.value,
                       sizeof cur.value) != 0) {
                snprintf(err, errcap, "query parameter '%s': malformed or longer than %d bytes",
                         cur.name, QUERY_MAX_VALUE - 1);
                return -1;
            }
            int ok = 0;
            for (int k = 0; allowed[k] != NULL; k++)
                ok |= strcmp(allowed[k], cur.name) == 0;
            if (!ok) {
                snprintf(err, errcap, "unknown query parameter '%s'", cur.name);
                return -1;
            }
            for (int k = 0; k < *np; k++) {
                if (strcmp(p[k].name, cur.name) == 0) {
                    snprintf(err, errcap, "query parameter '%s' given twice", cur.name);
                    return -1;
                }
            }
            if (*np == QUERY_MAX_PARAMS) {
                snprintf(err, errcap, "too many query parameters");
                return -1;
            }
            p[(*np)++] = cur;
        }
        i = end + 1;
    }
    return 0;
}

static const char *param(const param_t *p, int np, const char *name)
{
    for (int k = 0; k < np; k++)
        if (strcmp(p[k].name, name) == 0)
            return p[k].value[0] != '\0' ? p[k].value : NULL;
    return NULL;
}

/* from/to as the CLI reads --from/--to. 0, or -1 with ERR filled. */
static int window(const param_t *p, int np, int64_t *from, int64_t *to, char *err, size_t errcap)
{
    const char *f = param(p, np, "from"), *t = param(p, np, "to");
    *from = *to = BG_REPORT_NO_TIME;
    if (f != NULL && bg_report_parse_date(f, 0, from) != 0) {
        snprintf(err, errcap, "from: not YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]");
        return -1;
    }
    if (t != NULL && bg_report_parse_date(t, 1, to) != 0) {
        snprintf(err, errcap, "to: not YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]");
        return -1;
    }
    if (*from != BG_REPORT_NO_TIME && *to != BG_REPORT_NO_TIME && *to <= *from) {
        snprintf(err, errcap, "to must be after from");
        return -1;
    }
    return 0;
}

static void api_info(const bg_config_t *cfg, bg_serve_reply_t *reply)
{
    const struct bg_policy *pol = cfg->policy;
    char now[40];
    bg_util_format_time(bg_util_wall_ms(), now, sizeof now);
    json_t *o = json_object();
    json_object_set_new(o, "format", json_string("bordergate-dashboard-info/1"));
    json_object_set_new(o, "version", json_string(BG_VERSION));
    json_object_set_new(o, "now", json_string(now));
    json_object_set_new(o, "policy_version",
                        pol != NULL && pol->version != NULL ? json_string(pol->version)
                                                            : json_null());
    json_object_set_new(o, "policy_sha256", pol != NULL ? json_string(pol->hash) : json_null());
    json_object_set_new(o, "policy_mode",
                        json_string(pol != NULL && pol->monitor ? "monitor" : "enforce"));
    json_object_set_new(o, "audit", json_boolean(cfg->audit_enabled));
    json_object_set_new(o, "counters",
                        json_boolean(cfg->audit_enabled && cfg->audit_counters_file != NULL));
    json_object_set_new(o, "token_required", json_boolean(cfg->admin_token != NULL));
    reply_json(reply, 200, o);
}

/* The configured audit files that can hold records from FROM on, in log
 * order, as the CLI picks them (free with bg_audit_free_list). */
static int audit_files(const bg_config_t *cfg, int64_t from, char ***files, size_t *n, char *err,
                       size_t errcap)
{
    char *ops[2] = {cfg->audit_dir, NULL};
    const char *prefix = cfg->audit_prefix != NULL ? cfg->audit_prefix : "audit";
    if (bg_report_expand(ops, 1, prefix, files, n, err, errcap) != 0)
        return -1;
    bg_report_prune(*files, n, prefix, from);
    return 0;
}

typedef enum { JOB_REPORT, JOB_BLOCKED, JOB_DASHBOARD } job_kind_t;
#define JOB_MAX_REPORTS 8

/* One report being computed in slices; its reply waits in the serve layer.
 * With RU, the slices bring the rollups up to date (reading only the log
 * written since the last page load), then the report is read from them;
 * without, the slices read the raw log (a window that is not whole hours,
 * or rollups that cannot be used). */
typedef struct {
    job_kind_t kind;
    char **files;
    size_t nfiles;
    bg_rollup_t *ru;
    bg_rollup_query_t *rq; /* reading the rollups, once they are up to date */
    /* With store.redis: every instance's rollups from the store (the fleet's
     * figures); when the store cannot be read, this instance's, and the
     * reason in FLEET_ERR. */
    bg_rollup_fleet_query_t *fq;
    int fleet;
    size_t instances;
    char fleet_err[512];
    bg_report_dims_t dims[JOB_MAX_REPORTS];
    size_t ndims;
    int64_t from, to;
    int limit;
    bg_report_many_t *m;
    bg_serve_pending_t *pending;
    struct event *ev;
    /* The clauses of the policy in force when the job started (the runtime
     * may be swapped by a reload while the job runs): owned. */
    json_t *clauses;
    char sha256[65];
    bg_report_policy_t pol;
} job_t;

static void job_free(job_t *j)
{
    if (j->ev != NULL)
        event_free(j->ev);
    bg_report_many_free(j->m);
    bg_rollup_query_free(j->rq);
    bg_rollup_fleet_query_free(j->fq);
    bg_rollup_free(j->ru);
    json_decref(j->clauses);
    if (j->files != NULL)
        bg_audit_free_list(j->files, j->nfiles);
    free(j);
}

/* The client went away (or the listener closed): drop the work. */
static void job_cancel(void *arg)
{
    job_free(arg);
}

static int job_feed(void *arg, const json_t *rec, uint64_t weight, uint64_t order, int blocked)
{
    (void)order;
    return bg_report_many_feed(arg, rec, weight, blocked) != 0;
}

static int job_people(void *arg, const json_t *rec, const bg_report_person_t *ps, size_t n)
{
    return bg_report_many_feed_people(arg, rec, ps, n) != 0;
}

/* Read the raw log instead of the rollups (they could not be saved). 0, or
 * -1 with ERR filled. */
static int job_raw(job_t *j, const bg_config_t *cfg, char *err, size_t errcap)
{
    bg_rollup_free(j->ru);
    j->ru = NULL;
    bg_report_many_free(j->m);
    j->m = NULL;
    if (audit_files(cfg, j->from, &j->files, &j->nfiles, err, errcap) != 0)
        return -1;
    j->m = bg_report_many_new((const char *const *)j->files, j->nfiles, j->dims, j->ndims, j->from,
                              j->to, j->limit, &j->pol);
    if (j->m == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    return 0;
}

/* One slice of the rollups' update; when it is done, save it, then read
 * the rollups a few hundred lines at a time. As bg_report_many_step. */
static int job_rollup_step(job_t *j, char *err, size_t errcap)
{
    if (j->rq != NULL) {
        int rc = bg_rollup_query_step(j->rq, err, errcap);
        if (rc == 0)
            bg_report_many_feed_done(j->m, bg_rollup_query_stats(j->rq));
        return rc;
    }
    int rc = bg_rollup_step(j->ru, SLICE_LINES, err, errcap);
    if (rc > 0)
        return rc;
    /* Rollups that cannot be read or saved (a full disk...): the raw log
     * answers. Save 1: another process holds the lock; the update stays in
     * memory. */
    if (rc < 0 || bg_rollup_save(j->ru, err, errcap) < 0) {
        bg_runtime_t *rt = bg_runtime_acquire();
        rc = job_raw(j, rt->cfg, err, errcap);
        bg_runtime_unref(rt);
        return rc < 0 ? -1 : 1;
    }
    j->rq = bg_rollup_query_new(&j->ru, 1, j->from, j->to, j->limit, job_feed, j->m, err, errcap);
    if (j->rq != NULL) {
        bg_rollup_query_set_people(j->rq, job_people);
        if (!bg_report_dims_hourly(j->dims, j->ndims))
            bg_rollup_query_set_daily(j->rq);
    }
    return j->rq != NULL ? 1 : -1;
}

/* Open this instance's rollups for J (a window of whole hours), or set up
 * the raw log's scan when they cannot be opened. 0, or -1 with ERR. */
static int job_local(job_t *j, const bg_config_t *cfg, char *err, size_t errcap)
{
    bg_report_many_free(j->m);
    j->m = NULL;
    j->ru = bg_rollup_open(cfg->audit_dir, cfg->audit_prefix, BG_ROLLUP_WRITE, err, errcap);
    if (j->ru == NULL)
        return job_raw(j, cfg, err, errcap);
    j->m = bg_report_many_new(NULL, 0, j->dims, j->ndims, j->from, j->to, j->limit, &j->pol);
    if (j->m == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    return 0;
}

/* One step of the fleet's query; when the store cannot be read, this
 * instance's figures answer instead (the page says so). As
 * bg_report_many_step. */
static int job_fleet_step(job_t *j, char *err, size_t errcap)
{
    int rc = bg_rollup_fleet_query_step(j->fq, err, errcap);
    if (rc > 0)
        return rc;
    if (rc == 0) {
        j->fleet = 1;
        j->instances = bg_rollup_fleet_query_instances(j->fq);
        bg_report_many_feed_done(j->m, bg_rollup_fleet_query_stats(j->fq));
        return 0;
    }
    snprintf(j->fleet_err, sizeof j->fleet_err, "%s", err);
    bg_rollup_fleet_query_free(j->fq);
    j->fq = NULL;
    bg_runtime_t *rt = bg_runtime_acquire();
    rc = job_local(j, rt->cfg, err, errcap);
    bg_runtime_unref(rt);
    return rc < 0 ? -1 : 1;
}

static void job_run(evutil_socket_t fd, short what, void *arg)
{
    job_t *j = arg;
    char err[512];
    uint64_t start = bg_util_mono_us();
    int rc;
    do
        rc = j->fq != NULL   ? job_fleet_step(j, err, sizeof err)
             : j->ru != NULL ? job_rollup_step(j, err, sizeof err)
                             : bg_report_many_step(j->m, SLICE_LINES, err, sizeof err);
    while (rc > 0 && bg_util_mono_us() - start < SLICE_US);
    if (rc > 0) {
        /* A zero timer runs after the loop has polled for I/O again. */
        static const struct timeval now = {0, 0};
        evtimer_add(j->ev, &now);
        return;
    }
    bg_serve_reply_t *reply = bg_serve_pending_reply(j->pending);
    json_t *doc = rc == 0 ? bg_report_many_json(j->m, err, sizeof err) : NULL;
    if (doc == NULL) {
        reply_error(reply, 500, err);
    } else if (j->kind == JOB_DASHBOARD) {
        json_object_set_new(doc, "format", json_string("bordergate-dashboard/1"));
        /* Whose traffic the figures are: the fleet's (store.redis) or this
         * instance's. */
        json_object_set_new(doc, "scope",
                            json_pack("{s:s, s:I, s:s?}", "source", j->fleet ? "fleet" : "instance",
                                      "instances", (json_int_t)(j->fleet ? j->instances : 1),
                                      "fleet_error", j->fleet_err[0] ? j->fleet_err : NULL));
        reply_json(reply, 200, doc);
    } else {
        json_t *one =
            j->kind == JOB_BLOCKED
                ? json_object_get(doc, "blocked")
                : json_object_iter_value(json_object_iter(json_object_get(doc, "reports")));
        reply_json(reply, 200, json_incref(one));
        json_decref(doc);
    }
    bg_serve_pending_t *p = j->pending;
    j->pending = NULL;
    job_free(j);
    bg_serve_finish(p);
}

/* Start the scan of the configured audit log for REQ; the reply follows. */
static void job_start(const bg_config_t *cfg, const bg_serve_req_t *req, bg_serve_reply_t *reply,
                      job_kind_t kind, const bg_report_dims_t *dims, size_t ndims, int64_t from,
                      int64_t to, int limit)
{
    char err[512];
    job_t *j = calloc(1, sizeof *j);
    if (j == NULL) {
        reply_error(reply, 500, "out of memory");
        return;
    }
    j->kind = kind;
    /* The same clauses `audit report|blocked --config` reads from the file. */
    if ((j->clauses = bg_report_policy_clauses(cfg->policy)) == NULL) {
        free(j);
        reply_error(reply, 500, "out of memory");
        return;
    }
    if (cfg->policy != NULL)
        snprintf(j->sha256, sizeof j->sha256, "%s", cfg->policy->hash);
    j->pol.rules = j->clauses;
    j->pol.sha256 = cfg->policy != NULL ? j->sha256 : NULL;
    j->ndims = ndims < JOB_MAX_REPORTS ? ndims : JOB_MAX_REPORTS;
    memcpy(j->dims, dims, j->ndims * sizeof *dims);
    j->from = from;
    j->to = to;
    j->limit = limit;
    /* With a shared store, the fleet's rollups (the window in whole
     * hours); else this instance's rollups when they can answer exactly;
     * when they cannot be opened (busy with a rebuild, an unwritable
     * directory), the raw log. */
    int rc;
    if (!bg_rollup_window_ok(from, to)) {
        if (cfg->store_redis != NULL)
            snprintf(j->fleet_err, sizeof j->fleet_err,
                     "the fleet's figures need a window of whole hours");
        rc = job_raw(j, cfg, err, sizeof err);
    } else if (cfg->store_redis != NULL) {
        j->m = bg_report_many_new(NULL, 0, dims, ndims, from, to, limit, &j->pol);
        j->fq = j->m != NULL ? bg_rollup_fleet_query_new(cfg->store_redis, from, to, limit,
                                                         job_feed, j->m, err, sizeof err)
                             : NULL;
        if (j->fq != NULL) {
            bg_rollup_fleet_query_set_people(j->fq, job_people);
            if (!bg_report_dims_hourly(dims, ndims))
                bg_rollup_fleet_query_set_daily(j->fq);
        }
        if (j->m == NULL)
            snprintf(err, sizeof err, "out of memory");
        rc = j->fq != NULL ? 0 : -1;
    } else {
        rc = job_local(j, cfg, err, sizeof err);
    }
    if (rc != 0) {
        job_free(j);
        reply_error(reply, 500, err);
        return;
    }
    j->ev = evtimer_new(bg_serve_req_base(req), job_run, j);
    if (j->m == NULL || j->ev == NULL ||
        (j->pending = bg_serve_defer(req, job_cancel, j)) == NULL) {
        job_free(j);
        reply_error(reply, 500, "out of memory");
        return;
    }
    static const struct timeval now = {0, 0};
    evtimer_add(j->ev, &now);
}

static void api_report(const bg_config_t *cfg, const bg_serve_req_t *req, const char *q, size_t ql,
                       bg_serve_reply_t *reply, int blocked)
{
    static const char *const report_params[] = {"from", "to", "by", NULL};
    static const char *const blocked_params[] = {"from", "to", "limit", NULL};
    param_t p[QUERY_MAX_PARAMS];
    int np = 0;
    char err[512];
    int64_t from, to;
    bg_report_dims_t dims = {.ndims = 0};
    long limit = 20;
    if (parse_query(q, ql, blocked ? blocked_params : report_params, p, &np, err, sizeof err) !=
            0 ||
        window(p, np, &from, &to, err, sizeof err) != 0) {
        reply_error(reply, 400, err);
        return;
    }
    const char *b = param(p, np, "by");
    if (b != NULL && bg_report_dims_parse(b, &dims, err, sizeof err) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "by: %s", err);
        reply_error(reply, 400, msg);
        return;
    }
    const char *l = param(p, np, "limit");
    if (l != NULL) {
        char *end;
        limit = strtol(l, &end, 10);
        if (*end != '\0' || limit < 1 || limit > BG_REPORT_BLOCKED_MAX) {
            snprintf(err, sizeof err, "limit: must be 1..%d", BG_REPORT_BLOCKED_MAX);
            reply_error(reply, 400, err);
            return;
        }
    }
    job_start(cfg, req, reply, blocked ? JOB_BLOCKED : JOB_REPORT, &dims, blocked ? 0 : 1, from, to,
              blocked ? (int)limit : 0);
}

/* Everything the page shows of the audit log, in one pass over it:
 * {"format", "reports": {country, TIME, category, reason, rule}, "blocked"},
 * each member the CLI's document for the same window. */
static void api_dashboard(const bg_config_t *cfg, const bg_serve_req_t *req, const char *q,
                          size_t ql, bg_serve_reply_t *reply)
{
    static const char *const allowed[] = {"from", "to", "limit", "time", NULL};
    param_t p[QUERY_MAX_PARAMS];
    int np = 0;
    char err[512];
    int64_t from, to;
    long limit = 20;
    if (parse_query(q, ql, allowed, p, &np, err, sizeof err) != 0 ||
        window(p, np, &from, &to, err, sizeof err) != 0) {
        reply_error(reply, 400, err);
        return;
    }
    const char *l = param(p, np, "limit"), *tm = param(p, np, "time");
    if (l != NULL) {
        char *end;
        limit = strtol(l, &end, 10);
        if (*end != '\0' || limit < 1 || limit > BG_REPORT_BLOCKED_MAX) {
            snprintf(err, sizeof err, "limit: must be 1..%d", BG_REPORT_BLOCKED_MAX);
            reply_error(reply, 400, err);
            return;
        }
    }
    bg_report_dims_t bys[] = {{{BG_REPORT_BY_COUNTRY}, 1},
                              {{BG_REPORT_BY_DAY}, 1},
                              {{BG_REPORT_BY_CATEGORY}, 1},
                              {{BG_REPORT_BY_REASON}, 1},
                              {{BG_REPORT_BY_RULE}, 1}};
    if (tm != NULL && strcmp(tm, "hour") == 0)
        bys[1].dims[0] = BG_REPORT_BY_HOUR;
    else if (tm != NULL && strcmp(tm, "day") != 0) {
        reply_error(reply, 400, "time: must be day or hour");
        return;
    }
    job_start(cfg, req, reply, JOB_DASHBOARD, bys, sizeof bys / sizeof bys[0], from, to,
              (int)limit);
}

static void api_volumes(const bg_config_t *cfg, const char *q, size_t ql, bg_serve_reply_t *reply)
{
    static const char *const allowed[] = {"year", NULL};
    param_t p[QUERY_MAX_PARAMS];
    int np = 0;
    char err[512];
    long year = 0;
    if (parse_query(q, ql, allowed, p, &np, err, sizeof err) != 0) {
        reply_error(reply, 400, err);
        return;
    }
    const char *y = param(p, np, "year");
    if (y != NULL) {
        char *end;
        year = strtol(y, &end, 10);
        if (*end != '\0' || year < 1970 || year > 9999) {
            reply_error(reply, 400, "year: must be a year such as 2026");
            return;
        }
    }
    /* The daemon's thresholds, as it applies them (`audit volumes --config`
     * applies the same). */
    bg_counters_thresholds_t t;
    bg_config_thresholds(cfg, &t);
    /* With a shared store: the fleet figure (every instance's people once). */
    json_t *doc =
        cfg->store_redis != NULL
            ? bg_counters_fleet_volumes_json(cfg->store_redis, (int)year, &t, err, sizeof err)
            : bg_counters_volumes_json(cfg->audit_counters_file,
                                       cfg->audit_counters_file == NULL ? cfg->audit_dir : NULL,
                                       cfg->audit_prefix, (int)year, &t, err, sizeof err);
    if (doc == NULL) {
        reply_error(reply, 500, err);
        return;
    }
    reply_json(reply, 200, doc);
}

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    return "application/octet-stream";
}

static void serve_asset(const char *name, size_t len, bg_serve_reply_t *reply)
{
    if (len == 0) {
        name = "index.html";
        len = strlen(name);
    }
    for (size_t i = 0; i < bg_dashboard_nassets; i++) {
        const bg_dashboard_asset_t *a = &bg_dashboard_assets[i];
        if (strlen(a->name) == len && memcmp(a->name, name, len) == 0) {
            reply->content_type = content_type(a->name);
            security_headers(reply, "no-cache");
            evbuffer_add(reply->body, a->data, a->len);
            return;
        }
    }
    reply_error(reply, 404, "no such dashboard file");
}

int bg_dashboard_handle(const bg_serve_req_t *req, bg_serve_reply_t *reply,
                        bg_dashboard_auth_fn authorized)
{
    const char *t = req->head->target;
    size_t tl = req->head->target_len, ql = 0;
    const char *q = memchr(t, '?', tl);
    if (q != NULL) {
        ql = tl - (size_t)(q - t) - 1;
        tl = (size_t)(q - t);
        q++;
    } else {
        q = "";
    }
    int is_api = tl >= 5 && memcmp(t, "/api/", 5) == 0;
    int is_page = (tl == 10 && memcmp(t, "/dashboard", 10) == 0) ||
                  (tl >= 11 && memcmp(t, "/dashboard/", 11) == 0);
    if (!is_api && !is_page)
        return 0;
    int get = bg_util_ieq(req->head->method, req->head->method_len, "GET") ||
              bg_util_ieq(req->head->method, req->head->method_len, "HEAD");
    if (!get) {
        snprintf(reply->extra_headers, sizeof reply->extra_headers, "Allow: GET, HEAD\r\n");
        reply_error(reply, 405, "the dashboard is read-only: use GET");
        return 1;
    }
    if (is_page) {
        if (tl == 10) {
            reply->status = 301;
            snprintf(reply->extra_headers, sizeof reply->extra_headers,
                     "Location: /dashboard/\r\n");
            reply_json(reply, 301, json_pack("{s:s}", "location", "/dashboard/"));
            return 1;
        }
        serve_asset(t + 11, tl - 11, reply);
        return 1;
    }

    security_headers(reply, "no-store");
    bg_runtime_t *rt = bg_runtime_acquire();
    const bg_config_t *cfg = rt->cfg;
    const char *ep = t + 5;
    size_t el = tl - 5;
    if (el == 4 && memcmp(ep, "info", 4) == 0) {
        api_info(cfg, reply); /* no data: tells the page whether to ask for a token */
    } else if (cfg->admin_token != NULL && !authorized(req, cfg)) {
        size_t hl = strlen(reply->extra_headers);
        snprintf(reply->extra_headers + hl, sizeof reply->extra_headers - hl,
                 "WWW-Authenticate: Bearer realm=\"bordergate admin\"\r\n");
        reply_error(reply, 401, "missing or wrong bearer token (admin.token)");
    } else if (!cfg->audit_enabled || cfg->audit_dir == NULL) {
        reply_error(reply, 404, "the audit log is disabled ($.audit.enabled): nothing to report");
    } else if (el == 6 && memcmp(ep, "report", 6) == 0) {
        api_report(cfg, req, q, ql, reply, 0);
    } else if (el == 7 && memcmp(ep, "blocked", 7) == 0) {
        api_report(cfg, req, q, ql, reply, 1);
    } else if (el == 9 && memcmp(ep, "dashboard", 9) == 0) {
        api_dashboard(cfg, req, q, ql, reply);
    } else if (el == 7 && memcmp(ep, "volumes", 7) == 0) {
        api_volumes(cfg, q, ql, reply);
    } else {
        reply_error(reply, 404,
                    "unknown endpoint (try /api/info, /api/dashboard, /api/report, "
                    "/api/blocked, /api/volumes)");
    }
    bg_runtime_unref(rt);
    return 1;
}
