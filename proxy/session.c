#include "proxy/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event_struct.h>
#include <openssl/err.h>

#include "common/asan.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "geo/geo.h"
#include "inspect/inspect.h"
#include "inspect/redact.h"
#include "policy/decide.h"
#include "policy/policy.h"
#include "proxy/accesslog.h"
#include "proxy/changed.h"
#include "proxy/evaluate.h"
#include "proxy/http.h"
#include "proxy/metrics.h"
#include "proxy/resolve.h"
#include "proxy/runtime.h"
#include "proxy/serve.h"
#include "proxy/upstream.h"
#include "audit/audit.h"
#include "audit/refusal.h"
#include "audit/counters.h"

#include "proxy/session_int.h"

static void session_free(bg_session_t *s);
static void client_read(bg_session_t *s, int want);
static void client_read_high(bg_session_t *s, size_t high);
static void process_head(bg_session_t *s);
static void process_body(bg_session_t *s);
static void stage_route(bg_session_t *s);
static void stage_resolve(bg_session_t *s);
static void stage_inspect(bg_session_t *s);
static void stage_record(bg_session_t *s);
static void stage_forward(bg_session_t *s);
static void relay_body(bg_session_t *s);
static void complete(bg_session_t *s, int upstream_reusable);

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

/* Count an upstream failure of the current exchange (total and by route). */
static void upstream_error(bg_session_t *s, const char *kind)
{
    s->w->stats.upstream_errors++;
    bg_metrics_upstream_error(s->w->metrics, s->x->route->id, kind);
}

/* (Re)arm the session's timer for MS from now. Adding a pending timer
 * moves it: no delete first. */
static void arm_timer(bg_session_t *s, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(&s->timer, &tv);
}

static const bg_config_t *cfg_of(bg_session_t *s)
{
    return s->x != NULL ? s->x->rt->cfg : NULL;
}

/*
 * A few exchanges kept per worker thread for the next request: an exchange
 * is ~10 KB (the evaluation's fixed arrays), past malloc's per-thread cache,
 * so a fresh one per request costs a trip through the shared heap. At most
 * EXCHANGE_SPARES per thread (the requests a worker has in flight at once
 * under a busy load; 640 KB; idle connections hold none); emptied by
 * bg_session_close_all on the worker's own thread. None under ASan, so it
 * still sees any use of an exchange after its end.
 */
#define EXCHANGE_SPARES 64
#if BG_ASAN
#define EXCHANGE_KEEP 0
#else
#define EXCHANGE_KEEP EXCHANGE_SPARES
#endif
static _Thread_local exchange_t *exchange_spares[EXCHANGE_SPARES];
static _Thread_local int exchange_nspares;

/* A zeroed exchange (EXCHANGE_RESET_BYTES), or NULL when out of memory. */
static exchange_t *exchange_alloc(void)
{
#if EXCHANGE_KEEP > 0
    if (exchange_nspares > 0) {
        exchange_t *x = exchange_spares[--exchange_nspares];
        memset(x, 0, EXCHANGE_RESET_BYTES);
        return x;
    }
#endif
    /* The bytes past EXCHANGE_RESET_BYTES (the decision's reasons[]) are
     * written before they are read, as for a reused exchange: zeroing the
     * whole ~10 KB would be most of the cost of a new one. */
    exchange_t *x = malloc(sizeof(exchange_t));
    if (x != NULL)
        memset(x, 0, EXCHANGE_RESET_BYTES);
    return x;
}

static void exchange_release(exchange_t *x)
{
#if EXCHANGE_KEEP > 0
    if (exchange_nspares < EXCHANGE_KEEP) {
        exchange_spares[exchange_nspares++] = x;
        return;
    }
#endif
    free(x);
}

static void exchange_free(bg_session_t *s)
{
    exchange_t *x = s->x;
    if (x == NULL)
        return;
    /* Every decided exchange gets its completion record, however it ends:
     * a refusal that closes the connection, a response cut mid-body, a
     * session freed with the exchange in flight. */
    if (x->ev.decided && !x->completed)
        bg_sess_record_completion(s, bg_sess_completion_result(x));
    bg_sess_release_held(s); /* none left after a completion: for safety */
    bg_sess_log_access(s);
    if (x->query != NULL)
        bg_resolve_cancel(x->query);
    if (x->ticket != NULL)
        bg_audit_forget(x->ticket); /* still written; nobody waits for it */
    /* Every exchange ends here exactly once: the latency histograms. */
    uint64_t end_us = bg_util_mono_us();
    bg_metrics_request_done(s->w->metrics, end_us - x->t_start_us,
                            x->t_forward_us > 0 ? end_us - x->t_forward_us : 0);
    if (x->up != NULL)
        bg_upconn_close(x->up);
    if (x->holds_slot)
        __atomic_sub_fetch(&x->rt->cfg->route_inflight[x->route - x->rt->cfg->routes], 1,
                           __ATOMIC_RELAXED);
    bg_eval_free(&x->ev);
    if (x->body != NULL)
        evbuffer_free(x->body);
    free(x->head);
    bg_runtime_unref(x->rt);
    exchange_release(x);
    s->x = NULL;
}

static void session_free(bg_session_t *s)
{
    bg_worker_t *w = s->w;
    exchange_free(s);
    evtimer_del(&s->timer);
    event_del(&s->next_request);
    event_del(&s->rd);
    if (s->rd_cb != NULL)
        evbuffer_remove_cb_entry(bufferevent_get_input(s->cbev), s->rd_cb);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    bufferevent_free(s->cbev);
    free(s);
    bg_worker_connection_closed(w);
}

/* Move to CLOSING: the connection closes once the output is flushed. */
static void start_closing(bg_session_t *s)
{
    s->state = ST_CLOSING;
    client_read(s, 0);
    arm_timer(s, 5000); /* a client that never reads is dropped */
    if (evbuffer_get_length(bufferevent_get_output(s->cbev)) == 0)
        session_free(s);
}

/*
 * The refusal record of a request answered before any decision (421, 400,
 * 405, 408, 413, 501, 503): audit/refusal.h. Nothing waits for it; it
 * names no request value (query values are "*"). Queued lazily (no
 * callback): it rides with the next waited-for record (audit.h).
 */
static void record_refusal(bg_session_t *s, const char *id, int status, const char *error)
{
    exchange_t *x = s->x;
    if (s->w->audit == NULL)
        return;
    const bg_policy_t *p = x != NULL && x->rt != NULL ? x->rt->cfg->policy : NULL;
    bg_refusal_t r = {
        .id = id,
        .caller = s->peer_text,
        .status = status,
        .error = error,
        .method = x != NULL && x->head != NULL ? x->req.method : NULL,
        .method_len = x != NULL && x->head != NULL ? x->req.method_len : 0,
        .host = x != NULL && x->path != NULL ? x->host : NULL,
        .path = x != NULL ? x->path : NULL,
        .path_len = x != NULL ? x->path_len : 0,
        .route = x != NULL && x->route != NULL ? x->route->id : NULL,
        .policy_version = p != NULL ? p->version : NULL,
        .policy_sha256 = p != NULL ? p->hash : NULL,
    };
    char ts[40];
    size_t len = 0;
    bg_util_format_time(bg_util_wall_ms(), ts, sizeof ts);
    char *rec = bg_refusal_record(&r, ts, &len);
    static bg_log_limit_t not_queued = BG_LOG_LIMIT(BG_LOG_WARN, "refusal records not queued");
    if (rec == NULL || bg_audit_submit_text(s->w->audit, rec, len, 1, NULL, NULL) == NULL)
        bg_log_limited(&not_queued, BG_LOG_WARN, "request %s: refusal record not queued", id);
}

/*
 * Answer the current request with STATUS and a short JSON body naming the
 * problem and the request id; never echoes request data. CLOSE forces the
 * connection closed (framing may be unknown). Returns after the session may
 * have been freed: the caller must not touch S afterwards.
 */
static void refuse(bg_session_t *s, int status, const char *error, int close)
{
    exchange_t *x = s->x;
    struct evbuffer *out = bufferevent_get_output(s->cbev);
    char id[BG_ID_LEN + 1];
    char body[512];

    if (x != NULL && x->response_started) {
        /* Mid-body: the only honest signal left is to cut the connection. */
        session_free(s);
        return;
    }
    if (x != NULL)
        memcpy(id, x->id, sizeof id);
    else
        bg_util_random_id(id);
    /* Unread request bytes would be taken for the next request: close. */
    if (x == NULL || x->head == NULL || (x->has_body && !x->body_consumed))
        close = 1;
    if (!s->keep_alive)
        close = 1;
    if (x == NULL || !x->ev.decided)
        record_refusal(s, id, status, error);
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"request_id\":\"%s\"}\n", error, id);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nX-Bordergate-Id: %s\r\n%s\r\n",
                        status, bg_serve_reason(status), n, id,
                        close ? "Connection: close\r\n" : "");
    int has_body =
        x == NULL || x->head == NULL || !bg_util_ieq(x->req.method, x->req.method_len, "HEAD");
    if (has_body)
        evbuffer_add(out, body, (size_t)n);
    if (x != NULL) {
        x->status = status;
        x->own_bytes = has_body ? (uint64_t)n : 0;
    } else {
        bg_access_t a = {.id = id,
                         .client = s->peer_text,
                         .status = status,
                         .outcome = "refused",
                         .result = "refused",
                         .bytes_out = (uint64_t)n};
        bg_accesslog_write(s->w->accesslog, &a);
    }
    s->w->stats.responses_by_class[status / 100 % 6]++;
    bg_metrics_refusal(s->w->metrics, status);
    if (status >= 500) /* once per cause, then counts: a full disk refuses every request */
        bg_log_limited_cause(error, BG_LOG_INFO, "request %s refused: %d %s", id, status, error);
    else
        bg_debug("request %s refused: %d %s", id, status, error);
    if (close) {
        exchange_free(s);
        start_closing(s);
    } else {
        complete(s, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* Client side: read the request                                            */

/*
 * A fresh request id in OUT (BG_ID_LEN + 1 bytes), as bg_util_random_id
 * makes, but from a per-thread pool of random bytes refilled with one
 * getrandom per 32 ids instead of one per request. The ids are public (a
 * response header, the records), so pooled bytes in memory reveal nothing.
 */
static void exchange_id(char *out)
{
    static __thread unsigned char pool[BG_ID_LEN / 2 * 32];
    static __thread size_t used = sizeof pool;
    if (used + BG_ID_LEN / 2 > sizeof pool) {
        if (bg_util_random_bytes(pool, sizeof pool) != 0) {
            bg_util_random_id(out);
            return;
        }
        used = 0;
    }
    bg_hex_encode(pool + used, BG_ID_LEN / 2, out); /* NUL-terminated */
    used += BG_ID_LEN / 2;
}

static void begin_exchange(bg_session_t *s)
{
    exchange_t *x = exchange_alloc();
    if (x == NULL) {
        refuse(s, 503, "out of memory", 1);
        return;
    }
    s->x = x;
    x->rt = bg_runtime_acquire_cached(&s->w->rt_cache);
    exchange_id(x->id);
    x->t_start_us = bg_util_mono_us();
    s->w->stats.requests++;
}

/*
 * Move the request head (HL bytes) from IN into one allocation owned by X:
 * the bytes, NUL-terminated, then room for exactly NFIELDS header fields,
 * which x->req is pointed at. 0, or -1 when out of memory (IN untouched).
 */
static int head_copy(exchange_t *x, struct evbuffer *in, size_t hl, size_t nfields)
{
    const size_t align = _Alignof(bg_http_header_t);
    size_t off = (hl + 1 + align - 1) / align * align;
    x->head = malloc(off + nfields * sizeof(bg_http_header_t));
    if (x->head == NULL)
        return -1;
    evbuffer_remove(in, x->head, hl);
    x->head[hl] = '\0';
    x->req.headers = (bg_http_header_t *)(void *)(x->head + off);
    x->req.max_headers = nfields;
    return 0;
}

static void process_head(bg_session_t *s)
{
    struct evbuffer *in = bufferevent_get_input(s->cbev);
    size_t avail = evbuffer_get_length(in);
    if (avail == 0)
        return;
    if (s->x == NULL) {
        begin_exchange(s);
        if (s->x == NULL)
            return;
    }
    const bg_config_t *cfg = cfg_of(s);
    if (s->state == ST_IDLE) {
        s->state = ST_HEAD;
        arm_timer(s, cfg->header_timeout_ms);
    }
    size_t max = cfg->max_header_bytes;
    size_t take = avail < max ? avail : max;
    exchange_t *x = s->x;
    if (x->head_scanned > 0 && take < max && take > x->head_scanned) {
        /* A head trickling in byte by byte must not cost a re-parse per
         * byte: only look again once a new line has arrived. */
        struct evbuffer_ptr pos;
        evbuffer_ptr_set(in, &pos, x->head_scanned, EVBUFFER_PTR_SET);
        struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, &pos);
        if (nl.pos < 0)
            return;
    }
    const char *p = (const char *)evbuffer_pullup(in, (ssize_t)take);
    int status = 400;
    const char *why = "malformed request";
    x->head_scanned = take;
    /* Parsed into scratch room for the most fields allowed; the exchange
     * keeps only what this head needs (below). */
    bg_http_header_t scratch[BG_HTTP_MAX_HEADERS];
    bg_http_request_t req = {.headers = scratch, .max_headers = BG_HTTP_MAX_HEADERS};
    bg_http_result_t r = bg_http_parse_request(p, take, max, &req, &status, &why);
    if (r == BG_HTTP_INCOMPLETE)
        return;
    if (r == BG_HTTP_ERROR) {
        s->w->stats.refused_parse++;
        refuse(s, status, why, 1);
        return;
    }
    size_t hl = req.head_len;
    if (head_copy(x, in, hl, req.nheaders) != 0) {
        refuse(s, 503, "out of memory", 1);
        return;
    }
    /* Re-point every field into our copy (same bytes, same result). */
    bg_http_parse_request(x->head, hl, hl + 1, &x->req, &status, &why);
    s->keep_alive = x->req.keep_alive && !s->w->draining;
    stage_route(s);
}

/*
 * ROUTE: match Host and path to a configured route. Unknown destinations are
 * refused before any body is read: bordergate is never an open proxy.
 */
static void stage_route(bg_session_t *s)
{
    exchange_t *x = s->x;
    const bg_config_t *cfg = x->rt->cfg;
    const char *t = x->req.target;
    size_t tl = x->req.target_len;

    x->has_body = x->req.chunked || x->req.content_length > 0;
    if (bg_util_ieq(x->req.method, x->req.method_len, "CONNECT")) {
        refuse(s, 405, "CONNECT tunnels are not supported: bordergate inspects every request", 1);
        return;
    }
    if (x->req.upgrade) {
        refuse(s, 501, "protocol upgrades are not supported", 1);
        return;
    }
    bg_target_t tg;
    const char *why = NULL;
    int status = bg_target_route(cfg, t, tl, x->req.host, x->req.host_len, x->req.headers,
                                 x->req.nheaders, &tg, &why);
    if (status == 421) {
        s->w->stats.refused_route++;
        x->path = tg.path; /* parsed: the refusal record names host and path */
        x->path_len = tg.path_len;
        memcpy(x->host, tg.host, tg.host_len + 1);
        refuse(s, 421, why, x->has_body);
        return;
    }
    if (status != 0) {
        if (status == 400)
            s->w->stats.refused_parse++;
        refuse(s, status, why, 1);
        return;
    }
    x->path = tg.path;
    x->path_len = tg.path_len;
    memcpy(x->host, tg.host, tg.host_len + 1);
    x->route = tg.route;
    if (x->req.content_length > 0 && (uint64_t)x->req.content_length > cfg->max_body_bytes) {
        refuse(s, 413, "request body larger than limits.max_body_bytes", 1);
        return;
    }
    if (x->has_body && x->req.expect_continue && x->req.version_minor == 1)
        evbuffer_add(bufferevent_get_output(s->cbev), "HTTP/1.1 100 Continue\r\n\r\n", 25);

    x->body = evbuffer_new();
    if (x->body == NULL) {
        refuse(s, 503, "out of memory", 1);
        return;
    }
    if (x->req.chunked)
        bg_http_chunked_init(&x->chunked);
    else
        x->body_left = x->req.content_length > 0 ? (uint64_t)x->req.content_length : 0;
    s->state = ST_BODY;
    arm_timer(s, cfg->body_timeout_ms);
    process_body(s);
}

static void process_body(bg_session_t *s)
{
    exchange_t *x = s->x;
    const bg_config_t *cfg = x->rt->cfg;
    struct evbuffer *in = bufferevent_get_input(s->cbev);

    if (!x->req.chunked) {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < x->body_left ? avail : (size_t)x->body_left;
        if (n > 0) {
            evbuffer_remove_buffer(in, x->body, n);
            x->body_left -= n;
        }
        if (x->body_left > 0)
            return;
    } else {
        while (!x->chunked.done) {
            size_t avail = evbuffer_get_length(in);
            if (avail == 0)
                return;
            size_t take = avail < 8192 ? avail : 8192;
            const char *p = (const char *)evbuffer_pullup(in, (ssize_t)take);
            size_t data_len = 0;
            const char *why = "malformed chunked body";
            ssize_t used = bg_http_chunked_step(&x->chunked, p, take, &data_len, &why);
            if (used < 0) {
                s->w->stats.refused_parse++;
                refuse(s, 400, why, 1);
                return;
            }
            if (used == 0 && !x->chunked.done)
                return;
            if (data_len > 0) {
                if (evbuffer_get_length(x->body) + data_len > cfg->max_body_bytes) {
                    refuse(s, 413, "request body larger than limits.max_body_bytes", 1);
                    return;
                }
                evbuffer_remove_buffer(in, x->body, data_len);
            } else {
                evbuffer_drain(in, (size_t)used);
            }
        }
    }
    /* Whole request read. Keep reading, so that a client that leaves while
     * the request is in flight is noticed at once (on_client_event cancels
     * the upstream exchange); pipelined bytes wait in the buffer, reading
     * pauses once PIPELINE_MAX of them are there. */
    x->body_consumed = 1;
    client_read_high(s, PIPELINE_MAX);
    evtimer_del(&s->timer);
    stage_resolve(s);
}

/* ------------------------------------------------------------------------ */
/* RESOLVE: find the address to connect to                                   */

/*
 * Per-worker cache of geo answers keyed by (runtime generation, upstream
 * host, address): a direct-mapped table, so a hit costs one hash and one
 * compare instead of override matching and a database walk. A new runtime
 * (reload) has a new generation, so stale answers are never returned.
 */
#define GEO_CACHE_SLOTS 512

struct bg_geo_cache_entry {
    unsigned generation; /* 0: empty */
    const char *host;    /* the route's upstream_host (lives with the runtime) */
    struct sockaddr_storage addr;
    bg_geo_answer_t answer;
};

static int addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static void classify_cached(bg_session_t *s, const struct sockaddr_storage *addr,
                            bg_geo_answer_t *out)
{
    exchange_t *x = s->x;
    const bg_config_t *cfg = x->rt->cfg;
    const char *host = x->route->upstream_host;
    bg_worker_t *w = s->w;
    uint64_t h = (uintptr_t)host * 0x9E3779B97F4A7C15ull ^ x->rt->generation;
    if (addr->ss_family == AF_INET) {
        h ^= ((const struct sockaddr_in *)addr)->sin_addr.s_addr * 0xff51afd7ed558ccdull;
    } else {
        const unsigned char *b = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
        for (int i = 0; i < 16; i++)
            h = (h ^ b[i]) * 0x100000001b3ull;
    }
    h ^= h >> 29;
    if (w->geo_cache == NULL)
        w->geo_cache = calloc(GEO_CACHE_SLOTS, sizeof *w->geo_cache);
    struct bg_geo_cache_entry *e = w->geo_cache != NULL ? &w->geo_cache[h % GEO_CACHE_SLOTS] : NULL;
    if (e != NULL && e->generation == x->rt->generation && e->host == host &&
        addr_equal(&e->addr, addr)) {
        *out = e->answer;
        return;
    }
    bg_geo_classify(cfg->geo_overrides, cfg->geo_db, host, (const struct sockaddr *)addr, out);
    if (e != NULL) {
        e->generation = x->rt->generation;
        e->host = host;
        e->addr = *addr;
        e->answer = *out;
    }
}

/*
 * Classify every usable candidate address and pick the one to connect to:
 * domestic first (bg_geo_choose), so a host with addresses in several
 * regions is never sent abroad when a domestic address exists. The answer
 * kept is the one for the address connected to; nothing else is checked.
 */
static void resolve_done(bg_session_t *s, const bg_resolve_result_t *res)
{
    exchange_t *x = s->x;
    bg_geo_answer_t answers[BG_RESOLVE_MAX];
    int index[BG_RESOLVE_MAX];
    int n = 0, any_private = 0;

    for (int i = 0; i < res->n; i++) {
        if (!x->route->allow_private && bg_addr_is_private(&res->addrs[i])) {
            any_private = 1;
            continue;
        }
        /* The route's upstream host, never the caller's Host: a caller must
         * not be able to borrow a host override. */
        classify_cached(s, &res->addrs[i], &answers[n]);
        index[n++] = i;
    }
    if (n == 0) {
        if (any_private)
            refuse(s, 403,
                   "upstream resolves to a private or loopback address and the route does not "
                   "allow it",
                   0);
        else
            refuse(s, 502, "cannot resolve upstream host", 0);
        return;
    }
    int chosen = bg_geo_choose(answers, (size_t)n);
    x->geo = answers[chosen];
    x->resolve_source = res->source;
    x->dest = res->addrs[index[chosen]];
    x->dest_len =
        x->dest.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    bg_util_addr_string((struct sockaddr *)&x->dest, x->dest_addr, sizeof x->dest_addr);
    /* "addr:port", "[addr6]:port" (once per request: no printf). */
    bg_sbuf_t t;
    bg_sbuf_init_buf(&t, x->dest_text, sizeof x->dest_text);
    int v6 = x->dest.ss_family == AF_INET6;
    bg_sbuf_add(&t, "[", (size_t)v6);
    bg_sbuf_adds(&t, x->dest_addr);
    bg_sbuf_adds(&t, v6 ? "]:" : ":");
    bg_sbuf_addu(&t, (uint64_t)bg_util_addr_port((struct sockaddr *)&x->dest));
    bg_sbuf_free(&t); /* cannot outgrow: 1 + 46 + 2 + 5 < 64 bytes */
    s->w->stats.by_region[x->geo.region]++;
    stage_inspect(s);
}

static void on_resolved(void *arg, const bg_resolve_result_t *res)
{
    bg_session_t *s = arg;
    s->x->query = NULL;
    evtimer_del(&s->timer);
    resolve_done(s, res);
}

static void stage_resolve(bg_session_t *s)
{
    exchange_t *x = s->x;
    bg_resolve_result_t res;
    const bg_route_t *r = x->route;
    int rc = bg_resolve(s->w->resolver, x->rt->cfg, r->upstream_host, r->upstream_port, &res,
                        on_resolved, s, &x->query);
    if (rc < 0) {
        upstream_error(s, "resolve");
        refuse(s, 502, "cannot resolve upstream host", 0);
        return;
    }
    if (rc == 1) {
        s->state = ST_RESOLVING;
        arm_timer(s, x->rt->cfg->connect_timeout_ms);
        return;
    }
    resolve_done(s, &res);
}

/* ------------------------------------------------------------------------ */
/* INSPECT and DECIDE                                                        */

/*
 * INSPECT the payload (requests going abroad, or all when the policy
 * inspects domestic traffic) and DECIDE: allow, de-identify or block. Both
 * are synchronous and live in bg_evaluate, which `bordergate replay` calls
 * too, so offline answers are the daemon's answers.
 */
static void stage_inspect(bg_session_t *s)
{
    exchange_t *x = s->x;
    const bg_config_t *cfg = x->rt->cfg;
    bg_eval_input_t in;
    memset(&in, 0, sizeof in);
    in.cfg = cfg;
    in.route = x->route;
    in.geo = &x->geo;
    in.method = x->req.method;
    in.method_len = x->req.method_len;
    in.path = x->path;
    in.path_len = x->path_len;
    in.headers = x->req.headers;
    in.nheaders = x->req.nheaders;
    in.body_len = evbuffer_get_length(x->body);
    in.body = in.body_len > 0 ? (const char *)evbuffer_pullup(x->body, -1) : "";
    in.consent = x->rt->consent;
    in.now_ms = (int64_t)bg_util_wall_ms();
    const char *why = NULL;
    if (bg_evaluate(&in, &x->ev, &why) != 0) {
        refuse(s, 503, why, 0);
        return;
    }
    stage_record(s);
}

/* Send the 451 with the decision's reasons (never values). */
static void refuse_blocked(bg_session_t *s)
{
    exchange_t *x = s->x;
    json_t *o = bg_decision_block_body(&x->ev.decision, x->id, x->rt->cfg->policy);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    struct evbuffer *out = bufferevent_get_output(s->cbev);
    size_t n = body != NULL ? strlen(body) : 0;
    evbuffer_add_printf(
        out,
        "HTTP/1.1 451 Unavailable For Legal Reasons\r\nContent-Type: application/json\r\n"
        "Content-Length: %zu\r\nX-Bordergate-Id: %s\r\nX-Bordergate-Decision: block\r\n%s\r\n",
        n + 1, x->id, s->keep_alive ? "" : "Connection: close\r\n");
    x->status = 451;
    if (!bg_util_ieq(x->req.method, x->req.method_len, "HEAD")) {
        evbuffer_add(out, body != NULL ? body : "", n);
        evbuffer_add(out, "\n", 1);
        x->own_bytes = n + 1;
    }
    free(body);
    s->w->stats.responses_by_class[4]++;
    s->w->stats.blocked++;
    complete(s, 0);
}

static void after_record(bg_session_t *s)
{
    exchange_t *x = s->x;
    if (x->ev.decision.outcome == BG_OUTCOME_BLOCK) {
        refuse_blocked(s);
        return;
    }
    stage_forward(s);
}

static void on_recorded(void *arg, int status, uint64_t seq, const char *reason)
{
    bg_session_t *s = arg;
    exchange_t *x = s->x;
    x->ticket = NULL;
    evtimer_del(&s->timer);
    if (status == 0) {
        x->audit_seq = seq;
        bg_sess_count_subjects(s);
        after_record(s);
        return;
    }
    if (x->ev.decision.outcome != BG_OUTCOME_BLOCK && bg_sess_transfers_pi_abroad(x)) {
        /* No durable record, no transfer (fail closed). */
        /* One line per cause, then counts (a full disk refuses every
         * request: no log flood onto the same disk). */
        static bg_log_limit_t refused =
            BG_LOG_LIMIT(BG_LOG_ERROR, "transfers refused: decision record not durable");
        s->w->stats.audit_refused++;
        bg_log_limited(&refused, BG_LOG_ERROR,
                       "request %s: decision record not durable (%s): transfer refused", x->id,
                       reason != NULL ? reason : "unknown");
        refuse(s, 503, "the audit log cannot record this transfer; it was not forwarded", 0);
        return;
    }
    static bg_log_limit_t not_durable = BG_LOG_LIMIT(BG_LOG_WARN, "decision records not durable");
    bg_log_limited(&not_durable, BG_LOG_WARN, "request %s: decision record not durable (%s)", x->id,
                   reason != NULL ? reason : "unknown");
    after_record(s);
}

/* RECORD: make the decision record durable before anything leaves. */
static void stage_record(bg_session_t *s)
{
    exchange_t *x = s->x;
    bg_metrics_decision(s->w->metrics, x->rt->cfg, x->route, &x->geo, &x->ev.decision, x->ev.insp);
    if (s->w->audit == NULL) { /* audit disabled (benchmarks only) */
        after_record(s);
        return;
    }
    /* Built on the stack and copied into the ticket: one allocation per
     * record (a record with many findings moves to the heap as it grows). */
    char recbuf[4096];
    bg_sbuf_t b;
    bg_sbuf_init_buf(&b, recbuf, sizeof recbuf);
    const char *rec = bg_sess_decision_record(s, &b) == 0 ? b.p : NULL;
    size_t len = b.n;
    if (rec != NULL && !x->rt->cfg->audit_wait_all && !bg_sess_transfers_pi_abroad(x) &&
        x->ev.decision.outcome != BG_OUTCOME_BLOCK) {
        /* No personal information leaves the country: the record goes into
         * the same group commit, but the request does not wait for the
         * fsync (docs/audit.md, "Write before forward"). */
        if (bg_sess_hold_record(s, rec, len) != 0) {
            bg_audit_ticket_t *t = bg_audit_submit_copy(s->w->audit, rec, len, 1, NULL, NULL);
            static bg_log_limit_t not_queued =
                BG_LOG_LIMIT(BG_LOG_WARN, "decision records not queued");
            if (t == NULL)
                bg_log_limited(&not_queued, BG_LOG_WARN, "request %s: decision record not queued",
                               x->id);
        }
        bg_sbuf_free(&b);
        after_record(s);
        return;
    }
    x->ticket = rec != NULL ? bg_audit_submit_copy(s->w->audit, rec, len, 1, on_recorded, s) : NULL;
    int e = errno;
    bg_sbuf_free(&b);
    errno = e;
    if (x->ticket == NULL) {
        on_recorded(s, -1, 0, errno == EAGAIN ? "audit queue full" : "cannot queue the record");
        return;
    }
    s->state = ST_RECORDING;
    arm_timer(s, x->rt->cfg->response_timeout_ms);
}

/* ------------------------------------------------------------------------ */
/* FORWARD                                                                  */

static void on_up_read(struct bufferevent *bev, void *arg);
static void on_up_write(struct bufferevent *bev, void *arg);
static void on_up_event(struct bufferevent *bev, short what, void *arg);

/*
 * Take one of the route's upstream slots (routes[].max_upstream_concurrency;
 * unset: half of limits.max_connections when there are other routes, so one
 * dead partner cannot hold every connection; unlimited for a lone route). Counted across workers
 * with one atomic per route; released in exchange_free. Returns 0, or -1 when the route is full.
 */
static int take_route_slot(bg_session_t *s)
{
    exchange_t *x = s->x;
    const bg_config_t *cfg = x->rt->cfg;
    if (x->holds_slot || cfg->route_inflight == NULL)
        return 0;
    int limit = x->route->max_upstream_concurrency;
    if (limit < 0) /* one route: nobody to protect; else half the connections */
        limit = cfg->nroutes > 1 ? (cfg->max_connections > 1 ? cfg->max_connections / 2 : 1) : 0;
    int *n = &cfg->route_inflight[x->route - cfg->routes];
    if (__atomic_add_fetch(n, 1, __ATOMIC_RELAXED) > limit && limit > 0) {
        __atomic_sub_fetch(n, 1, __ATOMIC_RELAXED);
        return -1;
    }
    x->holds_slot = 1;
    return 0;
}

static void stage_forward(bg_session_t *s)
{
    exchange_t *x = s->x;
    const bg_config_t *cfg = x->rt->cfg;
    char err[160];
    SSL_CTX *tls = x->route->upstream_tls ? x->rt->client_tls : NULL;

    if (take_route_slot(s) != 0) {
        s->w->stats.refused_concurrency++;
        bg_metrics_upstream_error(s->w->metrics, x->route->id, "concurrency");
        refuse(s, 503,
               "too many requests in flight to this route's upstream "
               "(routes[].max_upstream_concurrency); try again later",
               0);
        return;
    }

    x->up = bg_pool_get(s->w->pool, tls, x->route->upstream_host, (struct sockaddr *)&x->dest,
                        x->dest_len, x->retried, &x->up_reused, err, sizeof err);
    if (x->up == NULL) {
        upstream_error(s, "connect");
        bg_warn("request %s: route %s: upstream %s: %s", x->id, x->route->id, x->dest_text, err);
        refuse(s, 502, "cannot connect to upstream", 0);
        return;
    }
    if (x->up_reused)
        s->w->stats.upstream_reused++;
    else
        s->w->stats.upstream_connects++;
    x->up->uses++;
    if (x->t_forward_us == 0)
        x->t_forward_us = bg_util_mono_us();
    x->upstream_connecting = !x->up_reused;
    x->t_connect_us = x->up_reused ? 0 : bg_util_mono_us();
    bufferevent_setcb(x->up->bev, on_up_read, on_up_write, on_up_event, s);
    bg_sess_build_upstream_request(s, bufferevent_get_output(x->up->bev));
    x->up_request_len = evbuffer_get_length(bufferevent_get_output(x->up->bev));
    bufferevent_enable(x->up->bev, EV_WRITE);
    bg_upconn_read(x->up, 1);
    if (x->up_reused && !x->up->tls)
        bg_sess_flush_now(x->up->bev); /* one writev now: head and body */
    s->state = ST_UPSTREAM;
    arm_timer(s, x->upstream_connecting ? cfg->connect_timeout_ms : cfg->response_timeout_ms);
}

/* ------------------------------------------------------------------------ */
/* Response                                                                 */

/* Header fields of the response head being read: needed only until that
 * head has been written to the client, so one array per worker thread
 * serves every exchange instead of one per exchange. */
static _Thread_local bg_http_header_t resp_fields[BG_HTTP_MAX_HEADERS];

static void on_up_read(struct bufferevent *bev, void *arg)
{
    bg_session_t *s = arg;
    exchange_t *x = s->x;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (s->state == ST_UPSTREAM) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        size_t take = avail < RESP_MAX_HEAD ? avail : RESP_MAX_HEAD;
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)take);
        const char *why = "invalid response";
        x->resp.headers = resp_fields;
        x->resp.max_headers = BG_HTTP_MAX_HEADERS;
        bg_http_result_t r = bg_http_parse_response(p, take, RESP_MAX_HEAD, &x->resp, &why);
        if (r == BG_HTTP_INCOMPLETE)
            return;
        if (r == BG_HTTP_ERROR) {
            upstream_error(s, "invalid_response");
            bg_warn("request %s: route %s: invalid response from upstream: %s", x->id, x->route->id,
                    why);
            refuse(s, 502, "invalid response from upstream", 0);
            return;
        }
        if (x->resp.status < 200) {
            if (x->resp.status == 101) {
                refuse(s, 502, "upstream attempted a protocol switch", 0);
                return;
            }
            evbuffer_drain(in, x->resp.head_len); /* interim response: skip */
            continue;
        }
        const bg_http_header_t *te =
            bg_http_find_header(x->resp.headers, x->resp.nheaders, "transfer-encoding");
        if (te != NULL && !bg_util_ieq(te->value, te->value_len, "chunked")) {
            /* gzip, chunked etc.: relaying it as plain chunked would corrupt it. */
            refuse(s, 502, "upstream used a transfer coding other than chunked", 0);
            return;
        }
        int head_req = bg_util_ieq(x->req.method, x->req.method_len, "HEAD");
        if (head_req || x->resp.status == 204 || x->resp.status == 304)
            x->resp_mode = BODY_NONE;
        else if (x->resp.chunked)
            x->resp_mode = BODY_CHUNKED;
        else if (x->resp.content_length >= 0)
            x->resp_mode = BODY_LENGTH;
        else
            x->resp_mode = BODY_EOF;
        x->resp_left = x->resp.content_length > 0 ? (uint64_t)x->resp.content_length : 0;
        if (x->resp_mode == BODY_CHUNKED)
            bg_http_chunked_init(&x->resp_chunked);
        bg_sess_write_response_head(s);
        evbuffer_drain(in, x->resp.head_len);
        s->state = ST_RELAY;
        evtimer_del(&s->timer);
        int ms = x->rt->cfg->response_timeout_ms;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        bg_upconn_read_timeout(x->up, &tv);
    }
    if (s->state == ST_RELAY)
        relay_body(s);
}

/* Move response body bytes to the client, honouring back-pressure. */
static void relay_body(bg_session_t *s)
{
    exchange_t *x = s->x;
    struct evbuffer *in = bufferevent_get_input(x->up->bev);
    struct evbuffer *out = bufferevent_get_output(s->cbev);

    switch (x->resp_mode) {
    case BODY_NONE: complete(s, x->resp.keep_alive && evbuffer_get_length(in) == 0); return;
    case BODY_LENGTH: {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < x->resp_left ? avail : (size_t)x->resp_left;
        if (n > 0) {
            evbuffer_remove_buffer(in, out, n);
            x->resp_left -= n;
            x->response_bytes += n;
        }
        if (x->resp_left == 0) {
            complete(s, x->resp.keep_alive && evbuffer_get_length(in) == 0);
            return;
        }
        break;
    }
    case BODY_CHUNKED:
        while (!x->resp_chunked.done) {
            size_t avail = evbuffer_get_length(in);
            if (avail == 0)
                break;
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t data_len = 0;
            const char *why = "bad chunked framing";
            ssize_t used =
                bg_http_chunked_step(&x->resp_chunked, v.iov_base, v.iov_len, &data_len, &why);
            if (used == 0 && !x->resp_chunked.done && avail > v.iov_len) {
                /* A framing line spans buffer segments: make it contiguous. */
                size_t want = v.iov_len + BG_HTTP_CHUNK_LINE_MAX + BG_HTTP_TRAILER_MAX;
                size_t take = avail < want ? avail : want;
                const char *p = (const char *)evbuffer_pullup(in, (ssize_t)take);
                used = bg_http_chunked_step(&x->resp_chunked, p, take, &data_len, &why);
            }
            if (used < 0) {
                bg_warn("request %s: route %s: upstream chunked body: %s", x->id, x->route->id,
                        why);
                upstream_error(s, "invalid_response");
                session_free(s);
                return;
            }
            if (used == 0)
                break;
            if (x->resp_dechunk && data_len == 0)
                evbuffer_drain(in, (size_t)used);
            else
                evbuffer_remove_buffer(in, out, (size_t)used);
        }
        if (x->resp_chunked.done) {
            complete(s, x->resp.keep_alive && evbuffer_get_length(in) == 0);
            return;
        }
        break;
    case BODY_EOF: evbuffer_add_buffer(out, in); break;
    }
    if (evbuffer_get_length(out) > CLIENT_HIGH_WATER && !x->paused_upstream) {
        x->paused_upstream = 1;
        bg_upconn_read(x->up, 0);
        bufferevent_setwatermark(s->cbev, EV_WRITE, CLIENT_LOW_WATER, 0);
    }
}

static void on_up_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    (void)arg;
}

/*
 * Has any byte of the request left for the upstream (been accepted by the
 * socket or TLS layer)? Until then the exchange can be retried whatever
 * the method: the upstream cannot have seen it.
 */
static int request_left(const exchange_t *x)
{
    return x->up != NULL &&
           evbuffer_get_length(bufferevent_get_output(x->up->bev)) < x->up_request_len;
}

/*
 * May this request be sent again after it (maybe) reached the upstream?
 * Only idempotent methods (RFC 9110 9.2.2: GET, HEAD, OPTIONS, TRACE, PUT,
 * DELETE) whose body can be resent: ours always can, since the whole body
 * (or its rewrite) is kept in the exchange until it ends.
 */
static int retry_safe(const exchange_t *x)
{
    static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof idempotent / sizeof idempotent[0]; i++)
        if (bg_util_ieq(x->req.method, x->req.method_len, idempotent[i]))
            return 1;
    return 0;
}

static void on_up_event(struct bufferevent *bev, short what, void *arg)
{
    bg_session_t *s = arg;
    exchange_t *x = s->x;

    if (what & BEV_EVENT_CONNECTED) {
        x->upstream_connecting = 0;
        bg_metrics_upstream_connect(s->w->metrics, x->route->id,
                                    bg_util_mono_us() - x->t_connect_us);
        arm_timer(s, x->rt->cfg->response_timeout_ms);
        return;
    }
    if (s->state == ST_RELAY && x->resp_mode == BODY_EOF && (what & BEV_EVENT_EOF)) {
        /* Close-delimited body: EOF is its end. */
        evbuffer_add_buffer(bufferevent_get_output(s->cbev), bufferevent_get_input(bev));
        complete(s, 0);
        return;
    }
    if (s->state == ST_RELAY) {
        bg_warn("request %s: route %s: upstream connection lost mid-response", x->id, x->route->id);
        upstream_error(s, "lost");
        session_free(s);
        return;
    }
    /* ST_UPSTREAM: nothing of the response has arrived yet. */
    int got_bytes = evbuffer_get_length(bufferevent_get_input(bev)) > 0;
    int left = request_left(x);
    if (!x->upstream_connecting && !x->retried && !got_bytes &&
        (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && (!left || (x->up_reused && retry_safe(x)))) {
        /* The request provably never left, or the keep-alive race on a
         * pooled connection hit a request that may be sent twice: retry
         * once, on a fresh connection. */
        x->retried = 1;
        bg_upconn_close(x->up);
        x->up = NULL;
        stage_forward(s);
        return;
    }
    unsigned long ssl_err = bufferevent_get_openssl_error(bev);
    char ebuf[200] = "";
    if (ssl_err != 0) {
        ERR_error_string_n(ssl_err, ebuf, sizeof ebuf);
        while (bufferevent_get_openssl_error(bev) != 0)
            ;
    }
    if (left && !(what & BEV_EVENT_TIMEOUT)) {
        /* It left and no answer came: the upstream may have acted on it.
         * Not retried (RFC 9110 9.2.2); the caller decides. */
        upstream_error(s, "outcome_unknown");
        bg_warn("request %s: route %s: upstream %s: connection %s after the request was sent, "
                "before an answer: upstream outcome unknown (not retried)%s%s",
                x->id, x->route->id, x->dest_text, ssl_err != 0 ? "failed" : "closed",
                ssl_err != 0 ? ": TLS: " : "", ebuf);
        x->result = "upstream_outcome_unknown";
        refuse(s, 502,
               "upstream closed the connection after receiving the request; whether it acted on "
               "it is unknown, and it was not sent again",
               0);
        return;
    }
    int sock_err = EVUTIL_SOCKET_ERROR();
    upstream_error(s, (what & BEV_EVENT_TIMEOUT) ? "timeout"
                      : ssl_err != 0             ? "tls"
                      : x->upstream_connecting   ? "connect"
                                                 : "closed");
    if (what & BEV_EVENT_TIMEOUT) {
        refuse(s, 504, "upstream did not answer in time", 0);
    } else if (ssl_err != 0) {
        bg_warn("request %s: route %s: upstream %s: TLS: %s", x->id, x->route->id, x->dest_text,
                ebuf);
        refuse(s, 502, "upstream TLS handshake or certificate verification failed", 0);
    } else if (x->upstream_connecting) {
        bg_warn("request %s: route %s: upstream %s: connect: %s", x->id, x->route->id, x->dest_text,
                evutil_socket_error_to_string(sock_err));
        refuse(s, 502, "cannot connect to upstream", 0);
    } else {
        bg_warn("request %s: route %s: upstream %s closed before answering", x->id, x->route->id,
                x->dest_text);
        refuse(s, 502, "upstream closed the connection before answering", 0);
    }
}

/* ------------------------------------------------------------------------ */
/* COMPLETE                                                                 */

/*
 * End the exchange: give the upstream connection back to the pool when
 * UPSTREAM_REUSABLE, then either wait for the next request on this
 * connection (serving any pipelined one at once) or close.
 */
static void complete(bg_session_t *s, int upstream_reusable)
{
    exchange_t *x = s->x;
    int idle_ms = 60000;
    bg_sess_flush_now(s->cbev); /* the response (head and body) in one writev, now */
    if (x != NULL) {
        const bg_config_t *cfg = x->rt->cfg;
        idle_ms = cfg->idle_timeout_ms;
        if (x->up != NULL) {
            bufferevent_setwatermark(s->cbev, EV_WRITE, 0, 0);
            if (upstream_reusable)
                bg_pool_release(x->up, cfg->upstream_idle_ms, cfg->max_idle_upstream);
            else
                bg_upconn_close(x->up);
            x->up = NULL;
        }
        bg_debug("request %s route %s done in %llu us", x->id, x->route ? x->route->id : "-",
                 (unsigned long long)(bg_util_mono_us() - x->t_start_us));
        x->response_done = 1; /* complete(): the exchange ended normally */
        bg_sess_record_completion(s, bg_sess_completion_result(x));
    }
    exchange_free(s);
    client_read_high(s, 0);
    if (!s->keep_alive || s->w->draining) {
        start_closing(s);
        return;
    }
    s->state = ST_IDLE;
    arm_timer(s, idle_ms);
    if (evbuffer_get_length(bufferevent_get_output(s->cbev)) > CLIENT_HIGH_WATER) {
        /* A client that pipelines but does not read gets no more work until
         * it drains what it was sent (bounded memory). */
        s->waiting_drain = 1;
        client_read(s, 0);
        bufferevent_setwatermark(s->cbev, EV_WRITE, CLIENT_LOW_WATER, 0);
        return;
    }
    client_read(s, 1);
    /* A pipelined request already read is taken in the next pass of the
     * loop, not from here: an exchange that completes at once (a refusal)
     * would otherwise call back into process_head, one stack frame deeper
     * per request of the pipeline. event_active costs no system call. */
    if (evbuffer_get_length(bufferevent_get_input(s->cbev)) > 0)
        event_active(&s->next_request, EV_TIMEOUT, 1);
}

/* The next pipelined request (complete()). */
static void on_next_request(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bg_session_t *s = arg;
    if (s->state == ST_IDLE && !s->waiting_drain &&
        evbuffer_get_length(bufferevent_get_input(s->cbev)) > 0)
        process_head(s);
}

/* ------------------------------------------------------------------------ */
/* Client callbacks                                                         */

static void on_client_read(struct bufferevent *bev, void *arg)
{
    bg_session_t *s = arg;
    if (s->state == ST_IDLE || s->state == ST_HEAD)
        process_head(s);
    else if (s->state == ST_BODY)
        process_body(s);
}

/*
 * Client reads. The client's bufferevent only writes; its input buffer is
 * filled here, by a persistent read event of the session's own: libevent's
 * socket bufferevent asks the kernel how much is readable (an
 * ioctl(FIONREAD)) before every read, one system call per request that a
 * read of at most CLIENT_READ bytes does not need. client_read() says
 * whether reading is wanted, client_read_high() caps what may wait in the
 * input (a pipeline behind a request in flight), as the bufferevent's
 * EV_READ and read watermark did; taking bytes out of the input resumes
 * reading under the cap (on_client_input).
 */
#define CLIENT_READ 4096

static void on_client_event(struct bufferevent *bev, short what, void *arg);

static void client_read_update(bg_session_t *s)
{
    int on = s->rd_want &&
             (s->rd_high == 0 || evbuffer_get_length(bufferevent_get_input(s->cbev)) < s->rd_high);
    if (on == s->rd_on)
        return;
    s->rd_on = on;
    if (on)
        event_add(&s->rd, NULL);
    else
        event_del(&s->rd);
}

static void client_read(bg_session_t *s, int want)
{
    s->rd_want = want;
    client_read_update(s);
}

static void client_read_high(bg_session_t *s, size_t high)
{
    s->rd_high = high;
    client_read_update(s);
}

/* Bytes were taken from the input: below the cap, read again. */
static void on_client_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    (void)in;
    bg_session_t *s = arg;
    if (info->n_deleted > 0 && s->rd_want && !s->rd_on)
        client_read_update(s);
}

static void on_client_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    bg_session_t *s = arg;
    struct evbuffer *in = bufferevent_get_input(s->cbev);
    size_t have = evbuffer_get_length(in), want = CLIENT_READ;
    if (s->rd_high > 0) {
        if (have >= s->rd_high) {
            client_read_update(s);
            return;
        }
        if (s->rd_high - have < want)
            want = s->rd_high - have;
    }
    ssize_t n = bg_read_into(fd, in, want);
    int e = errno;
    if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK || e == EINTR))
        return;
    if (n <= 0) {
        errno = e;
        on_client_event(s->cbev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), s);
        return;
    }
    if (s->rd_high > 0)
        client_read_update(s); /* at the cap: stop until bytes are taken */
    on_client_read(s->cbev, s);
}

static void on_client_write(struct bufferevent *bev, void *arg)
{
    bg_session_t *s = arg;
    if (s->state == ST_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            session_free(s);
        return;
    }
    exchange_t *x = s->x;
    if (s->state == ST_IDLE && s->waiting_drain) {
        s->waiting_drain = 0;
        bufferevent_setwatermark(s->cbev, EV_WRITE, 0, 0);
        client_read(s, 1);
        if (evbuffer_get_length(bufferevent_get_input(s->cbev)) > 0)
            process_head(s);
        return;
    }
    if (s->state == ST_RELAY && x != NULL && x->paused_upstream) {
        x->paused_upstream = 0;
        bufferevent_setwatermark(s->cbev, EV_WRITE, 0, 0);
        bg_upconn_read(x->up, 1);
        relay_body(s);
    }
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    bg_session_t *s = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        /* send_ms passed with bytes still unsent: the client stopped reading */
        bg_debug("client %s stopped reading; closing", s->peer_text);
    } else if (s->x != NULL && s->x->body_consumed && s->state != ST_CLOSING) {
        /* The client left (EOF or reset) while its request was in flight:
         * cancel the upstream exchange and free everything now, not at
         * the response timeout. */
        s->w->stats.client_aborts++;
        bg_debug("request %s: client %s left; upstream exchange cancelled", s->x->id, s->peer_text);
        bg_sess_record_completion(s, "client_aborted");
    }
    session_free(s);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    bg_session_t *s = arg;
    exchange_t *x = s->x;
    switch (s->state) {
    case ST_IDLE:
    case ST_CLOSING: session_free(s); break;
    case ST_HEAD: refuse(s, 408, "request header timeout", 1); break;
    case ST_BODY: refuse(s, 408, "request body timeout", 1); break;
    case ST_RESOLVING:
        upstream_error(s, "resolve");
        refuse(s, 504, "upstream name resolution timed out", 0);
        break;
    case ST_RECORDING:
        s->w->stats.audit_refused++;
        refuse(s, 503, "the audit log did not record this transfer in time; it was not forwarded",
               0);
        break;
    case ST_UPSTREAM:
        upstream_error(s, "timeout");
        if (!x->upstream_connecting && request_left(x))
            x->result = "upstream_outcome_unknown"; /* sent, never answered */
        bg_warn("request %s: route %s: upstream %s: %s timeout", x->id, x->route->id, x->dest_text,
                x->upstream_connecting ? "connect" : "response");
        refuse(s, 504,
               x->upstream_connecting ? "upstream connect timed out"
                                      : "upstream did not answer in time",
               0);
        break;
    case ST_RELAY: break;
    }
}

void bg_session_start(bg_worker_t *w, evutil_socket_t fd, const struct sockaddr *peer,
                      socklen_t peer_len)
{
    bg_session_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        evutil_closesocket(fd);
        bg_worker_connection_closed(w);
        return;
    }
    s->w = w;
    if ((size_t)peer_len <= sizeof s->peer)
        memcpy(&s->peer, peer, (size_t)peer_len);
    bg_util_addr_string(peer, s->peer_text, sizeof s->peer_text);
    s->cbev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->cbev == NULL) {
        evutil_closesocket(fd);
        free(s);
        bg_worker_connection_closed(w);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evtimer_assign(&s->timer, w->base, on_timer, s);
    event_assign(&s->next_request, w->base, -1, 0, on_next_request, s);
    s->next = w->sessions;
    if (w->sessions != NULL)
        w->sessions->prev = s;
    w->sessions = s;
    s->state = ST_IDLE;
    s->keep_alive = 1;

    bg_runtime_t *rt = bg_runtime_acquire_cached(&w->rt_cache);
    int send_ms = rt->cfg->send_timeout_ms;
    int header_ms = rt->cfg->header_timeout_ms;
    bg_runtime_unref(rt);
    struct timeval send_tv = {send_ms / 1000, (send_ms % 1000) * 1000};
    bufferevent_set_timeouts(s->cbev, NULL, &send_tv);
    bufferevent_setcb(s->cbev, NULL, on_client_write, on_client_event, s);
    bufferevent_enable(s->cbev, EV_WRITE);
    event_assign(&s->rd, w->base, fd, EV_READ | EV_PERSIST, on_client_readable, s);
    s->rd_cb = evbuffer_add_cb(bufferevent_get_input(s->cbev), on_client_input, s);
    client_read(s, 1);
    /* The first request must start within the header timeout. */
    arm_timer(s, header_ms);
}

void bg_session_drain_all(bg_worker_t *w)
{
    bg_session_t *s = w->sessions;
    while (s != NULL) {
        bg_session_t *next = s->next;
        if (s->state == ST_IDLE)
            session_free(s);
        else
            s->keep_alive = 0;
        s = next;
    }
}

void bg_session_close_all(bg_worker_t *w)
{
    for (bg_session_t *s = w->sessions, *next; s != NULL; s = next) {
        next = s->next; /* session_free unlinks S, and only S */
        session_free(s);
    }
    if (w->hold_timer != NULL) { /* every kept record was written with its exchange */
        event_free(w->hold_timer);
        w->hold_timer = NULL;
    }
    while (exchange_nspares > 0)
        free(exchange_spares[--exchange_nspares]);
    bg_inspect_thread_done(); /* the worker's kept inspection, likewise */
}
