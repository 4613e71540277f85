#include "proxy/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/counters.h"
#include "common/util.h"
#include "inspect/detect.h"
#include "policy/consent.h"
#include "policy/policy.h"
#include "proxy/accesslog.h"
#include "proxy/runtime.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

/* Labelled counter families (one table per worker holds them all). */
enum {
    FAM_REQUESTS = 0,
    FAM_FINDINGS,
    FAM_DEIDENTIFIED,
    FAM_BLOCKED,
    FAM_REFUSALS,
    FAM_WOULD,
    FAM_UPSTREAM,
    FAM_UPSTREAM_RESPONSES,
    FAM_REQUEST_BYTES,
    FAM_RESPONSE_BYTES,
    FAM_COUNTERS, /* the families above are counters, the ones below histograms */
    FAM_H_UPSTREAM_RESPONSE = FAM_COUNTERS,
    FAM_H_UPSTREAM_CONNECT,
    FAM_COUNT
};

typedef struct {
    const char *name;
    const char *help;
    int nlabels;
    const char *labels[6];
} family_t;

static const family_t families[FAM_COUNT] = {
    {"bordergate_decisions_total",
     "Decided requests (one per decision record handed to the audit writer) by route, recipient, "
     "destination country and region, outcome and mode",
     6,
     {"route", "recipient", "country", "region", "decision", "mode"}},
    {"bordergate_findings_total", "Personal-information findings by category", 1, {"category"}},
    {"bordergate_deidentified_fields_total",
     "Fields de-identified or removed before forwarding, by operator",
     1,
     {"operator"}},
    {"bordergate_blocked_total",
     "Blocked transfers (451) by reason code; a request with several reasons counts under each",
     1,
     {"reason"}},
    {"bordergate_refusals_total",
     "Requests answered by bordergate itself with an error status (not 451), by status",
     1,
     {"status"}},
    {"bordergate_monitor_would_total",
     "Requests forwarded unchanged in monitor mode, by route and what enforcement would have done",
     2,
     {"route", "would"}},
    {"bordergate_upstream_errors_by_route_total",
     "Upstream failures by route and kind (resolve, connect, tls, timeout, invalid_response, "
     "closed, lost)",
     2,
     {"route", "kind"}},
    {"bordergate_upstream_responses_total",
     "Responses from upstreams, by route and status class",
     2,
     {"route", "class"}},
    {"bordergate_request_bytes_total",
     "Request body bytes read from clients, by route (decoded, before de-identification)",
     1,
     {"route"}},
    {"bordergate_response_bytes_total",
     "Response body bytes sent to clients, by route (bordergate's own answers included)",
     1,
     {"route"}},
    {"bordergate_upstream_response_seconds",
     "Time from forwarding a request (connecting included) to the upstream's response head, by "
     "route",
     1,
     {"route"}},
    {"bordergate_upstream_connect_seconds",
     "Time to establish a new upstream connection (TCP, and the TLS handshake when used), by route",
     1,
     {"route"}},
};

/* Upstream histograms' bucket bounds (seconds); +Inf is implicit. Each
 * bucket a route uses costs one series per worker (created on first use),
 * plus one for the sum. */
static const double up_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double connect_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define UP_N (sizeof up_bounds / sizeof up_bounds[0])
#define CONNECT_N (sizeof connect_bounds / sizeof connect_bounds[0])
#define HIST_SUM_CODE 's' /* key suffix of a histogram's sum (bucket B: 'a' + B) */

#define KEY_MAX 150 /* label values joined by \x1f */
#define SEP '\x1f'

typedef struct {
    uint64_t value;
    uint32_t hash;
    uint8_t family;
    uint8_t ready; /* published with a release store after key is written */
    char key[KEY_MAX];
} slot_t;

/* Request duration buckets (seconds); the +Inf bucket is implicit. */
static const double lat_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define LAT_N (sizeof lat_bounds / sizeof lat_bounds[0])

typedef struct {
    uint64_t bucket[LAT_N + 1]; /* non-cumulative; last: above every bound */
    uint64_t sum_us;
    uint64_t count;
} hist_t;

/* Series each family counted last (a request counts the same few again
 * and again): found by comparing the key, without hashing it or probing. */
#define RECENT 2

struct bg_metrics {
    slot_t *slots;
    size_t nslots; /* a power of two, fixed for the table's life */
    uint64_t dropped;
    hist_t total, added;
    slot_t *recent[FAM_COUNT][RECENT]; /* the owning worker's only */
    unsigned char recent_next[FAM_COUNT];
};

bg_metrics_t *bg_metrics_new(int max_series)
{
    bg_metrics_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    size_t want = max_series > 0 ? (size_t)max_series : BG_METRICS_DEFAULT_SERIES;
    m->nslots = 64;
    while (m->nslots < want)
        m->nslots *= 2;
    m->slots = calloc(m->nslots, sizeof *m->slots);
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void bg_metrics_free(bg_metrics_t *m)
{
    if (m != NULL)
        free(m->slots);
    free(m);
}

/* Single writer: a relaxed load and store (no locked instruction). */
static inline void bump(uint64_t *v, uint64_t n)
{
    __atomic_store_n(v, __atomic_load_n(v, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static slot_t *find_slot(bg_metrics_t *m, int family, const char *key, size_t len);

/* Add N to the series FAMILY{KEY}; KEY is N label values joined by SEP. */
static void count_key(bg_metrics_t *m, int family, const char *key, size_t len, uint64_t n)
{
    if (len >= KEY_MAX) {
        bump(&m->dropped, n);
        return;
    }
    for (int r = 0; r < RECENT; r++) {
        slot_t *s = m->recent[family][r];
        if (s != NULL && memcmp(s->key, key, len) == 0 && s->key[len] == '\0') {
            bump(&s->value, n);
            return;
        }
    }
    slot_t *s = find_slot(m, family, key, len);
    if (s == NULL) {
        bump(&m->dropped, n);
        return;
    }
    bump(&s->value, n);
    m->recent[family][m->recent_next[family]] = s;
    m->recent_next[family] = (unsigned char)((m->recent_next[family] + 1) % RECENT);
}

/* The series FAMILY{KEY} (LEN < KEY_MAX), made at 0 if it is new; NULL
 * when the table is full. */
static slot_t *find_slot(bg_metrics_t *m, int family, const char *key, size_t len)
{
    uint32_t h = fnv1a(key, len) ^ (uint32_t)family * 0x9E3779B1u;
    for (size_t probe = 0; probe < m->nslots; probe++) {
        slot_t *s = &m->slots[(h + probe) & (m->nslots - 1)];
        if (!s->ready) {
            /* Only this worker writes: fill, then publish. */
            s->hash = h;
            s->family = (uint8_t)family;
            memcpy(s->key, key, len);
            s->key[len] = '\0';
            s->value = 0;
            __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
            return s;
        }
        if (s->hash == h && s->family == family && memcmp(s->key, key, len) == 0 &&
            s->key[len] == '\0')
            return s;
    }
    return NULL;
}

/* Append one label value to B (at *N), cut to keep within KEY_MAX. */
static void key_add(char *b, size_t *n, const char *v, int first)
{
    if (!first && *n < KEY_MAX)
        b[(*n)++] = SEP;
    for (; v != NULL && *v != '\0' && *n < KEY_MAX; v++)
        b[(*n)++] = *v == SEP ? '_' : *v;
}

static void count1(bg_metrics_t *m, int family, const char *label)
{
    char key[KEY_MAX + 1];
    size_t n = 0;
    key_add(key, &n, label, 1);
    count_key(m, family, key, n, 1);
}

void bg_metrics_decision(bg_metrics_t *m, const bg_config_t *cfg, const bg_route_t *route,
                         const bg_geo_answer_t *geo, const bg_decision_t *d, bg_inspection_t *insp)
{
    if (m == NULL)
        return;
    const bg_policy_t *p = cfg->policy;
    const bg_route_policy_t *rp = p != NULL ? &p->routes[route - cfg->routes] : NULL;
    const char *recipient = rp != NULL && rp->recipient != NULL ? rp->recipient->id : "";
    char key[KEY_MAX + 1];
    size_t n = 0;
    key_add(key, &n, route->id, 1);
    key_add(key, &n, recipient, 0);
    key_add(key, &n, bg_geo_country_valid(geo->country) ? geo->country : "unknown", 0);
    key_add(key, &n, bg_geo_region_name(geo->region), 0);
    key_add(key, &n, bg_outcome_name(d->outcome), 0);
    key_add(key, &n, d->monitor ? "monitor" : "enforce", 0);
    count_key(m, FAM_REQUESTS, key, n, 1);
    if (d->monitor) {
        n = 0;
        key_add(key, &n, route->id, 1);
        key_add(key, &n, bg_outcome_name(d->would), 0);
        count_key(m, FAM_WOULD, key, n, 1);
    }

    for (size_t i = 0; insp != NULL && i < d->nfd; i++) {
        const bg_finding_decision_t *fd = &d->fd[i];
        const bg_finding_t *f = bg_inspection_finding(insp, fd->finding);
        if (f != NULL)
            count1(m, FAM_FINDINGS, bg_detect_category_id(f->category));
        if (fd->action == BG_ACT_DEIDENTIFY || fd->action == BG_ACT_REMOVE)
            count1(m, FAM_DEIDENTIFIED, bg_op_name(fd->op));
    }
    if (d->outcome == BG_OUTCOME_BLOCK) {
        for (int i = 0; i < d->nreasons; i++) {
            int seen = 0;
            for (int k = 0; k < i && !seen; k++)
                seen = strcmp(d->reasons[k].code, d->reasons[i].code) == 0;
            if (!seen)
                count1(m, FAM_BLOCKED, d->reasons[i].code);
        }
        if (d->nreasons == 0)
            count1(m, FAM_BLOCKED, "unspecified");
    }
}

void bg_metrics_upstream_error(bg_metrics_t *m, const char *route, const char *kind)
{
    if (m == NULL)
        return;
    char key[KEY_MAX + 1];
    size_t n = 0;
    key_add(key, &n, route, 1);
    key_add(key, &n, kind, 0);
    count_key(m, FAM_UPSTREAM, key, n, 1);
}

void bg_metrics_refusal(bg_metrics_t *m, int status)
{
    if (m == NULL)
        return;
    char s[8];
    snprintf(s, sizeof s, "%d", status >= 100 && status <= 599 ? status : 0);
    count1(m, FAM_REFUSALS, s);
}

/* Observe US in the labelled histogram FAMILY{route=ROUTE}: the bucket's
 * series and the sum's (microseconds), keys "ROUTE<SEP><code>". */
static void count_hist(bg_metrics_t *m, int family, const char *route, const double *bounds,
                       size_t nb, uint64_t us)
{
    char key[KEY_MAX + 3];
    size_t n = 0;
    key_add(key, &n, route, 1);
    double sec = (double)us / 1e6;
    size_t b = 0;
    while (b < nb && sec > bounds[b])
        b++;
    key[n] = SEP;
    key[n + 1] = (char)('a' + b);
    count_key(m, family, key, n + 2, 1);
    key[n + 1] = HIST_SUM_CODE;
    count_key(m, family, key, n + 2, us);
}

void bg_metrics_upstream_response(bg_metrics_t *m, const char *route, int status, uint64_t us)
{
    if (m == NULL)
        return;
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    char key[KEY_MAX + 1];
    size_t n = 0;
    key_add(key, &n, route, 1);
    key_add(key, &n, classes[status >= 100 && status <= 599 ? status / 100 : 0], 0);
    count_key(m, FAM_UPSTREAM_RESPONSES, key, n, 1);
    count_hist(m, FAM_H_UPSTREAM_RESPONSE, route, up_bounds, UP_N, us);
}

void bg_metrics_upstream_connect(bg_metrics_t *m, const char *route, uint64_t us)
{
    if (m == NULL)
        return;
    count_hist(m, FAM_H_UPSTREAM_CONNECT, route, connect_bounds, CONNECT_N, us);
}

void bg_metrics_route_bytes(bg_metrics_t *m, const char *route, uint64_t in, uint64_t out)
{
    if (m == NULL)
        return;
    char key[KEY_MAX + 1];
    size_t n = 0;
    key_add(key, &n, route, 1);
    if (in > 0)
        count_key(m, FAM_REQUEST_BYTES, key, n, in);
    if (out > 0)
        count_key(m, FAM_RESPONSE_BYTES, key, n, out);
}

static void hist_observe(hist_t *h, uint64_t us)
{
    double s = (double)us / 1e6;
    size_t b = 0;
    while (b < LAT_N && s > lat_bounds[b])
        b++;
    bump(&h->bucket[b], 1);
    bump(&h->sum_us, us);
    bump(&h->count, 1);
}

void bg_metrics_request_done(bg_metrics_t *m, uint64_t total_us, uint64_t upstream_us)
{
    if (m == NULL)
        return;
    hist_observe(&m->total, total_us);
    hist_observe(&m->added, upstream_us < total_us ? total_us - upstream_us : 0);
}

/* ------------------------------------------------------------------------ */
/* Scrape (control thread)                                                  */

typedef struct {
    int family;
    const char *key; /* points into a worker's slot (never rewritten once ready) */
    uint64_t value;
} row_t;

static int row_cmp(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    if (x->family != y->family)
        return x->family - y->family;
    return strcmp(x->key, y->key);
}

/* A label value in exposition syntax: backslash, quote and newline escaped. */
static void put_label_value(struct evbuffer *out, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\\' || c == '"')
            evbuffer_add_printf(out, "\\%c", c);
        else if (c == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, &c, 1);
    }
}

static void put_labels(struct evbuffer *out, const family_t *f, const char *key)
{
    const char *p = key;
    evbuffer_add(out, "{", 1);
    for (int i = 0; i < f->nlabels; i++) {
        const char *e = strchr(p, SEP);
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        evbuffer_add_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
        put_label_value(out, p, n);
        evbuffer_add(out, "\"", 1);
        p = e != NULL ? e + 1 : p + n;
    }
    evbuffer_add(out, "}", 1);
}

static void head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_counter(struct evbuffer *out, const char *name, const char *help, uint64_t v)
{
    head(out, name, "counter", help);
    evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void put_gauge(struct evbuffer *out, const char *name, const char *help, double v)
{
    head(out, name, "gauge", help);
    evbuffer_add_printf(out, "%s %.17g\n", name, v);
}

/* The labelled histogram FAMILY from ROWS[*I..] (sorted; every worker's
 * series, so equal keys are summed): per route its buckets (cumulative),
 * +Inf, _sum and _count. Advances *I past the family. */
static void render_route_hist(struct evbuffer *out, int family, const double *bounds, size_t nb,
                              const row_t *rows, size_t n, size_t *i)
{
    const family_t *f = &families[family];
    head(out, f->name, "histogram", f->help);
    while (*i < n && rows[*i].family == family) {
        const char *k = rows[*i].key;
        size_t pl = strlen(k) - 1; /* the route and SEP; then one code byte */
        uint64_t bucket[16] = {0}, sum = 0, count = 0;
        while (*i < n && rows[*i].family == family && strlen(rows[*i].key) == pl + 1 &&
               memcmp(rows[*i].key, k, pl) == 0) {
            char c = rows[*i].key[pl];
            if (c == HIST_SUM_CODE)
                sum += rows[*i].value;
            else if (c >= 'a' && (size_t)(c - 'a') <= nb)
                bucket[c - 'a'] += rows[*i].value;
            (*i)++;
        }
        char route[KEY_MAX + 1];
        size_t rl = pl > 0 ? pl - 1 : 0;
        memcpy(route, k, rl);
        route[rl] = '\0';
        for (size_t b = 0; b <= nb; b++)
            count += bucket[b];
        uint64_t cum = 0;
        for (size_t b = 0; b <= nb; b++) {
            cum += bucket[b];
            evbuffer_add_printf(out, "%s_bucket{route=\"", f->name);
            put_label_value(out, route, rl);
            if (b < nb)
                evbuffer_add_printf(out, "\",le=\"%g\"} %llu\n", bounds[b],
                                    (unsigned long long)cum);
            else
                evbuffer_add_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        evbuffer_add_printf(out, "%s_sum{route=\"", f->name);
        put_label_value(out, route, rl);
        evbuffer_add_printf(out, "\"} %.6f\n%s_count{route=\"", (double)sum / 1e6, f->name);
        put_label_value(out, route, rl);
        evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)count);
    }
}

static void render_families(const bg_metrics_scrape_t *src, struct evbuffer *out, uint64_t *dropped)
{
    size_t cap = 0, n = 0;
    row_t *rows = NULL;
    for (int w = 0; w < src->nworkers; w++) {
        bg_metrics_t *m = src->workers[w].metrics;
        if (m == NULL)
            continue;
        *dropped += __atomic_load_n(&m->dropped, __ATOMIC_RELAXED);
        for (size_t i = 0; i < m->nslots; i++) {
            slot_t *s = &m->slots[i];
            if (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE))
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 256;
                row_t *r = realloc(rows, nc * sizeof *r);
                if (r == NULL)
                    goto emit;
                rows = r;
                cap = nc;
            }
            rows[n].family = s->family;
            rows[n].key = s->key;
            rows[n].value = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
            n++;
        }
    }
emit:
    if (n > 0)
        qsort(rows, n, sizeof *rows, row_cmp);
    size_t i = 0;
    for (int f = 0; f < FAM_COUNTERS; f++) {
        head(out, families[f].name, "counter", families[f].help);
        while (i < n && rows[i].family == f) {
            uint64_t v = rows[i].value;
            size_t j = i + 1;
            while (j < n && rows[j].family == f && strcmp(rows[j].key, rows[i].key) == 0)
                v += rows[j++].value;
            evbuffer_add(out, families[f].name, strlen(families[f].name));
            put_labels(out, &families[f], rows[i].key);
            evbuffer_add_printf(out, " %llu\n", (unsigned long long)v);
            i = j;
        }
    }
    render_route_hist(out, FAM_H_UPSTREAM_RESPONSE, up_bounds, UP_N, rows, n, &i);
    render_route_hist(out, FAM_H_UPSTREAM_CONNECT, connect_bounds, CONNECT_N, rows, n, &i);
    free(rows);
}

static void put_hist_us(struct evbuffer *out, const char *name, const char *help,
                        const uint64_t *bucket, const double *bounds_s, size_t nb, uint64_t sum_us,
                        uint64_t count)
{
    head(out, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t b = 0; b < nb; b++) {
        cum += bucket[b];
        evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds_s[b],
                            (unsigned long long)cum);
    }
    /* The last bucket counts everything above the last bound: +Inf holds all. */
    evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)count);
    evbuffer_add_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, (double)sum_us / 1e6, name,
                        (unsigned long long)count);
}

static void render_latency(const bg_metrics_scrape_t *src, struct evbuffer *out)
{
    hist_t t, a;
    memset(&t, 0, sizeof t);
    memset(&a, 0, sizeof a);
    for (int w = 0; w < src->nworkers; w++) {
        bg_metrics_t *m = src->workers[w].metrics;
        if (m == NULL)
            continue;
        for (size_t b = 0; b <= LAT_N; b++) {
            t.bucket[b] += __atomic_load_n(&m->total.bucket[b], __ATOMIC_RELAXED);
            a.bucket[b] += __atomic_load_n(&m->added.bucket[b], __ATOMIC_RELAXED);
        }
        t.sum_us += __atomic_load_n(&m->total.sum_us, __ATOMIC_RELAXED);
        a.sum_us += __atomic_load_n(&m->added.sum_us, __ATOMIC_RELAXED);
    }
    /* count = sum of buckets, so _count and +Inf agree within one scrape. */
    for (size_t b = 0; b <= LAT_N; b++) {
        t.count += t.bucket[b];
        a.count += a.bucket[b];
    }
    put_hist_us(out, "bordergate_request_duration_seconds",
                "Time from the first byte of a request to the end of its exchange", t.bucket,
                lat_bounds, LAT_N, t.sum_us, t.count);
    put_hist_us(out, "bordergate_added_latency_seconds",
                "Time added by bordergate: request duration minus time waiting on the upstream",
                a.bucket, lat_bounds, LAT_N, a.sum_us, a.count);
}

static void render_workers(const bg_metrics_scrape_t *src, struct evbuffer *out)
{
    bg_worker_stats_t t;
    memset(&t, 0, sizeof t);
    long open = 0;
    for (int i = 0; i < src->nworkers; i++) {
        const bg_worker_stats_t *s = &src->workers[i].stats;
        t.connections_accepted += __atomic_load_n(&s->connections_accepted, __ATOMIC_RELAXED);
        t.connections_refused += __atomic_load_n(&s->connections_refused, __ATOMIC_RELAXED);
        t.requests += __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
        for (int k = 0; k < 6; k++)
            t.responses_by_class[k] += __atomic_load_n(&s->responses_by_class[k], __ATOMIC_RELAXED);
        t.upstream_errors += __atomic_load_n(&s->upstream_errors, __ATOMIC_RELAXED);
        t.upstream_reused += __atomic_load_n(&s->upstream_reused, __ATOMIC_RELAXED);
        t.upstream_connects += __atomic_load_n(&s->upstream_connects, __ATOMIC_RELAXED);
        t.audit_refused += __atomic_load_n(&s->audit_refused, __ATOMIC_RELAXED);
        for (int k = 0; k < 3; k++)
            t.by_region[k] += __atomic_load_n(&s->by_region[k], __ATOMIC_RELAXED);
        open += __atomic_load_n(&src->workers[i].nconns, __ATOMIC_RELAXED);
    }
    put_counter(out, "bordergate_requests_total",
                "Requests received (every exchange, decided or refused); decisions are in "
                "bordergate_decisions_total",
                t.requests);
    head(out, "bordergate_responses_total", "counter", "Responses sent, by status class");
    for (int k = 1; k < 6; k++)
        evbuffer_add_printf(out, "bordergate_responses_total{class=\"%dxx\"} %llu\n", k,
                            (unsigned long long)t.responses_by_class[k]);
    head(out, "bordergate_destinations_total", "counter",
         "Upstream addresses chosen, by region of the address connected to");
    for (int k = 0; k < 3; k++)
        evbuffer_add_printf(out, "bordergate_destinations_total{region=\"%s\"} %llu\n",
                            bg_geo_region_name((bg_geo_region_t)k),
                            (unsigned long long)t.by_region[k]);
    put_counter(out, "bordergate_upstream_errors_total",
                "Upstream failures: resolution, connect, TLS, timeouts, invalid or lost responses",
                t.upstream_errors);
    head(out, "bordergate_upstream_connections_total", "counter",
         "Upstream connections used, new or reused from the pool");
    evbuffer_add_printf(out,
                        "bordergate_upstream_connections_total{kind=\"new\"} %llu\n"
                        "bordergate_upstream_connections_total{kind=\"reused\"} %llu\n",
                        (unsigned long long)t.upstream_connects,
                        (unsigned long long)t.upstream_reused);
    put_counter(out, "bordergate_audit_refused_total",
                "Transfers refused (503) because their decision record could not be made durable",
                t.audit_refused);
    put_counter(out, "bordergate_connections_accepted_total", "Client connections accepted",
                t.connections_accepted);
    put_counter(out, "bordergate_connection_limit_hits_total",
                "Times a worker paused accepting at limits.max_connections", t.connections_refused);
    put_gauge(out, "bordergate_connections_open", "Client connections open now", (double)open);
    long live = 0, idle = 0;
    for (int i = 0; i < src->nworkers; i++) {
        const bg_pool_t *p = src->workers[i].pool;
        if (p != NULL) {
            live += bg_pool_live_count(p);
            idle += bg_pool_idle_count(p);
        }
    }
    head(out, "bordergate_upstream_connections_open", "gauge",
         "Upstream connections open now: active (serving a request) or idle (pooled)");
    evbuffer_add_printf(out,
                        "bordergate_upstream_connections_open{state=\"active\"} %ld\n"
                        "bordergate_upstream_connections_open{state=\"idle\"} %ld\n",
                        live > idle ? live - idle : 0, idle);
}

static void render_audit(const bg_metrics_scrape_t *src, struct evbuffer *out)
{
    put_gauge(out, "bordergate_audit_enabled", "1 when decisions are recorded in the audit log",
              src->audit != NULL);
    if (src->audit == NULL)
        return;
    bg_audit_stats_t as;
    bg_audit_stats(src->audit, &as);
    put_gauge(out, "bordergate_audit_healthy", "1 when the last audit write and fsync succeeded",
              as.healthy != 0);
    put_counter(out, "bordergate_audit_records_total", "Audit records written and acknowledged",
                as.records_written);
    put_counter(out, "bordergate_audit_failed_records_total",
                "Audit records that could not be made durable", as.failed_records);
    put_counter(out, "bordergate_audit_failed_batches_total", "Group commits that failed",
                as.failed_batches);
    put_counter(out, "bordergate_audit_batches_total", "Successful group commits", as.batches);
    put_counter(out, "bordergate_audit_bytes_total", "Bytes written to the audit log",
                as.bytes_written);
    put_gauge(out, "bordergate_audit_queued_records", "Records waiting for the audit writer",
              (double)as.queued_records);
    double bounds[BG_AUDIT_FSYNC_BUCKETS];
    uint64_t count = 0;
    for (int b = 0; b < BG_AUDIT_FSYNC_BUCKETS; b++) {
        bounds[b] = (double)bg_audit_fsync_bounds_us[b] / 1e6;
        count += as.fsync_hist[b];
    }
    /* The audit histogram's last bucket is open-ended: print the bounds
     * before it, and fold it into +Inf. */
    put_hist_us(out, "bordergate_audit_fsync_seconds",
                "Audit log fsync latency (one per group commit)", as.fsync_hist, bounds,
                BG_AUDIT_FSYNC_BUCKETS - 1, as.fsync_us_sum, count);
    head(out, "bordergate_audit_records_per_commit", "summary",
         "Records per successful group commit (sum: records, count: commits)");
    evbuffer_add_printf(out,
                        "bordergate_audit_records_per_commit_sum %llu\n"
                        "bordergate_audit_records_per_commit_count %llu\n",
                        (unsigned long long)as.records_written, (unsigned long long)as.batches);
    put_gauge(out, "bordergate_audit_records_per_commit_max", "Largest group commit so far",
              (double)as.max_batch_records);
    if (as.last_checkpoint_ms > 0) {
        uint64_t now = bg_util_wall_ms();
        put_gauge(out, "bordergate_audit_last_checkpoint_timestamp_seconds",
                  "When the audit writer last wrote a checkpoint (Unix time)",
                  (double)as.last_checkpoint_ms / 1000.0);
        put_gauge(out, "bordergate_audit_last_checkpoint_age_seconds",
                  "Seconds since the audit writer last wrote a checkpoint",
                  now > as.last_checkpoint_ms ? (double)(now - as.last_checkpoint_ms) / 1000.0 : 0);
    }
}

static void render_state(const bg_metrics_scrape_t *src, struct evbuffer *out)
{
    const bg_runtime_t *rt = src->rt;
    const bg_config_t *cfg = rt->cfg;
    head(out, "bordergate_info", "gauge", "Version and policy version (value is always 1)");
    evbuffer_add_printf(out, "bordergate_info{version=\"%s\",policy_version=\"", BG_VERSION);
    const char *pv =
        cfg->policy != NULL && cfg->policy->version != NULL ? cfg->policy->version : "";
    put_label_value(out, pv, strlen(pv));
    evbuffer_add(out, "\"} 1\n", 5);
    put_gauge(out, "bordergate_ready", "1 when /readyz answers 200", src->ready);
    put_gauge(out, "bordergate_uptime_seconds", "Seconds since start", (double)src->uptime_s);
    put_gauge(out, "bordergate_workers", "Worker threads (one event loop each)", src->nworkers);
    put_gauge(out, "bordergate_config_generation", "Configuration generation (1 at start)",
              rt->generation);
    head(out, "bordergate_reloads_total", "counter", "Configuration reloads, by result");
    evbuffer_add_printf(out,
                        "bordergate_reloads_total{result=\"ok\"} %u\n"
                        "bordergate_reloads_total{result=\"failed\"} %u\n",
                        src->reloads_ok, src->reloads_failed);
    put_gauge(out, "bordergate_config_last_reload_successful",
              "1 when the last reload (or the start) succeeded, 0 when it failed",
              src->last_reload_ok);
    put_gauge(out, "bordergate_config_last_reload_success_timestamp_seconds",
              "When the configuration in force was loaded (Unix time)",
              (double)src->last_reload_ok_ms / 1000.0);
    put_gauge(out, "bordergate_routes", "Configured routes", cfg->nroutes);
    uint64_t now = bg_util_wall_ms() / 1000;
    put_gauge(out, "bordergate_geo_database_age_seconds",
              "Age of the country database (now minus its build time)",
              (double)bg_geo_db_age(cfg->geo_db, now));
    put_gauge(out, "bordergate_geo_database_max_age_seconds", "geo.max_age_days in seconds",
              (double)cfg->geo_max_age_days * 86400.0);
    if (rt->consent != NULL)
        put_gauge(out, "bordergate_consent_registry_records",
                  "Consent records in the registry (granted and withdrawn)",
                  (double)bg_consent_count(rt->consent));
}

static void render_yearly(const bg_metrics_scrape_t *src, struct evbuffer *out)
{
    if (src->counters == NULL)
        return;
    bg_counters_snapshot_t cs;
    bg_counters_snapshot(src->counters, (int64_t)bg_util_wall_ms(), &cs);
    head(out, "bordergate_yearly_subjects", "gauge",
         "Distinct people whose PI went abroad since 1 January (CAC 2024 Provisions), by kind");
    evbuffer_add_printf(out,
                        "bordergate_yearly_subjects{year=\"%d\",kind=\"non_sensitive\"} %llu\n"
                        "bordergate_yearly_subjects{year=\"%d\",kind=\"sensitive\"} %llu\n"
                        "bordergate_yearly_subjects{year=\"%d\",kind=\"people\"} %llu\n"
                        "bordergate_yearly_subjects{year=\"%d\",kind=\"people_by_device\"} %llu\n",
                        cs.year, (unsigned long long)cs.non_sensitive, cs.year,
                        (unsigned long long)cs.sensitive, cs.year, (unsigned long long)cs.people,
                        cs.year, (unsigned long long)cs.people_by_device);
    head(out, "bordergate_yearly_subjects_threshold", "gauge",
         "Thresholds the yearly counts are held against (audit.thresholds), by kind and mechanism");
    const bg_counters_thresholds_t *t = &cs.thresholds;
    evbuffer_add_printf(out,
                        "bordergate_yearly_subjects_threshold{kind=\"non_sensitive\",mechanism="
                        "\"standard_contract_or_certification\"} %llu\n"
                        "bordergate_yearly_subjects_threshold{kind=\"non_sensitive\",mechanism="
                        "\"security_assessment\"} %llu\n"
                        "bordergate_yearly_subjects_threshold{kind=\"sensitive\",mechanism="
                        "\"standard_contract_or_certification\"} %llu\n"
                        "bordergate_yearly_subjects_threshold{kind=\"sensitive\",mechanism="
                        "\"security_assessment\"} %llu\n",
                        (unsigned long long)t->contract_non_sensitive,
                        (unsigned long long)t->assessment_non_sensitive,
                        (unsigned long long)t->contract_sensitive,
                        (unsigned long long)t->assessment_sensitive);
    head(out, "bordergate_yearly_mechanism_level", "gauge",
         "What the year's volume calls for: 0 none, 1 standard contract or certification, 2 "
         "security assessment");
    evbuffer_add_printf(out, "bordergate_yearly_mechanism_level %d\n", (int)cs.level);
    head(out, "bordergate_yearly_subjects_by_recipient", "gauge",
         "Distinct people whose PI went to a recipient this year, by kind");
    for (size_t i = 0; i < cs.nrecipients; i++) {
        const bg_counters_recipient_t *r = &cs.recipients[i];
        const char *kinds[2] = {"non_sensitive", "sensitive"};
        uint64_t v[2] = {r->non_sensitive, r->sensitive};
        for (int k = 0; k < 2; k++) {
            evbuffer_add_printf(out, "bordergate_yearly_subjects_by_recipient{recipient=\"");
            put_label_value(out, r->recipient, strlen(r->recipient));
            evbuffer_add_printf(out, "\",kind=\"%s\"} %llu\n", kinds[k], (unsigned long long)v[k]);
        }
    }
    bg_counters_snapshot_free(&cs);
}

/* The process_* series every Prometheus exporter has (Linux /proc). */
static void render_process(const bg_metrics_scrape_t *src, struct evbuffer *out)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        head(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent");
        evbuffer_add_printf(out, "process_cpu_seconds_total %.6f\n", cpu);
    }
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
            double page = (double)sysconf(_SC_PAGESIZE);
            put_gauge(out, "process_resident_memory_bytes", "Resident memory size",
                      (double)resident * page);
            put_gauge(out, "process_virtual_memory_bytes", "Virtual memory size",
                      (double)size * page);
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        long n = 0;
        for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
            n += e->d_name[0] != '.';
        closedir(d);
        put_gauge(out, "process_open_fds", "Open file descriptors", (double)(n - 1)); /* not d's */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        put_gauge(out, "process_max_fds", "Open file descriptor limit (soft)",
                  rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
    put_gauge(out, "process_start_time_seconds", "Start time of the process (Unix time)",
              (double)src->started_ms / 1000.0);
}

void bg_metrics_render(const bg_metrics_scrape_t *src, struct evbuffer *out)
{
    uint64_t dropped = 0;
    render_families(src, out, &dropped);
    render_latency(src, out);
    render_workers(src, out);
    render_audit(src, out);
    render_state(src, out);
    render_yearly(src, out);
    render_process(src, out);
    if (src->accesslog != NULL)
        put_counter(out, "bordergate_access_log_dropped_total",
                    "Access log lines dropped because the writer fell behind or failed",
                    bg_accesslog_dropped(src->accesslog));
    put_counter(
        out, "bordergate_metrics_dropped_total",
        "Increments lost because a worker's series table was full (raise metrics.max_series)",
        dropped);
}
