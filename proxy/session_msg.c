/*
 * The messages a session writes: the request head sent upstream (hop-by-hop
 * fields dropped, X-Forwarded-For and Forwarded written, the rewritten
 * target, headers and body of a de-identified request) and the response head
 * sent to the client, each put together in one buffer without printf; and
 * the immediate write of a pooled connection's output.
 */
#include "proxy/session_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event_struct.h>
#include <openssl/err.h>

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

/* Inlined, NAME a literal: its length is known, and most fields are told
 * apart by their lengths alone. */
static inline int header_named(const bg_http_header_t *h, const char *name)
{
    return h->name_len == strlen(name) && bg_util_ieq(h->name, h->name_len, name);
}

/* Append the C string Z to OUT (the request head is built without printf:
 * it runs once per forwarded request). */
/* A message head (request upstream, response to the client) collected in
 * one buffer, flushed to OUT when full and at the end (head_end): one
 * evbuffer_add instead of one per piece. */
typedef struct {
    struct evbuffer *out;
    size_t n;
    char buf[2048];
} head_t;

static inline void head_put(head_t *h, const char *p, size_t len)
{
    if (h->n + len > sizeof h->buf) {
        evbuffer_add(h->out, h->buf, h->n);
        h->n = 0;
        if (len > sizeof h->buf) {
            evbuffer_add(h->out, p, len);
            return;
        }
    }
    memcpy(h->buf + h->n, p, len);
    h->n += len;
}

static inline void head_puts(head_t *h, const char *z)
{
    head_put(h, z, strlen(z));
}

static void head_end(head_t *h)
{
    if (h->n > 0)
        evbuffer_add(h->out, h->buf, h->n);
    h->n = 0;
}

/* Put "Content-Length: N\r\n" into H. */
static void head_content_length(head_t *h, size_t n)
{
    char tmp[48] = "Content-Length: ";
    char digits[24];
    size_t i = sizeof digits, k = 16;
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    while (i < sizeof digits)
        tmp[k++] = digits[i++];
    tmp[k++] = '\r';
    tmp[k++] = '\n';
    head_put(h, tmp, k);
}

/* Write the upstream request head and body into OUT. */
void bg_sess_build_upstream_request(bg_session_t *s, struct evbuffer *out)
{
    exchange_t *x = s->x;
    const bg_config_t *cfg = x->rt->cfg;
    const bg_route_t *r = x->route;
    const bg_http_request_t *q = &x->req;
    const bg_http_header_t *conn = bg_http_find_header(q->headers, q->nheaders, "connection");
    int fw_off = strcmp(cfg->forwarded, "off") == 0;
    int fw_replace = strcmp(cfg->forwarded, "replace") == 0;
    /* The caller's X-Forwarded-For / Forwarded values as they will leave:
     * after de-identification, which may have rewritten or removed them
     * (the record says what left, so this must be what left). */
    const char *xff = NULL, *fwd = NULL;
    size_t xff_len = 0, fwd_len = 0;

    head_t hb, *hd = &hb; /* not an initializer: that would zero 2 kB */
    hb.out = out;
    hb.n = 0;
    const char *path = x->ev.rw.target_changed ? x->ev.rw.target : x->path;
    size_t path_len = x->ev.rw.target_changed ? x->ev.rw.target_len : x->path_len;
    head_put(hd, q->method, q->method_len);
    head_put(hd, " ", 1);
    if (r->upstream_path != NULL) {
        size_t pl = strlen(r->path_prefix);
        size_t up = strlen(r->upstream_path);
        const char *rest = path + pl;
        size_t rest_len = path_len - pl;
        if (up > 0 && r->upstream_path[up - 1] == '/' && rest_len > 0 && rest[0] == '/') {
            rest++;
            rest_len--;
        }
        head_put(hd, r->upstream_path, up);
        head_put(hd, rest, rest_len);
    } else {
        head_put(hd, path, path_len);
    }
    head_put(hd, " HTTP/1.1\r\nHost: ", 17);
    head_puts(hd, r->host_header);
    head_put(hd, "\r\n", 2);

    for (size_t i = 0; i < q->nheaders; i++) {
        const bg_http_header_t *h = &q->headers[i];
        if (bg_http_is_hop_by_hop(h->name, h->name_len, conn ? conn->value : NULL,
                                  conn ? conn->value_len : 0))
            continue;
        if (header_named(h, "host") || header_named(h, "content-length") ||
            header_named(h, "expect"))
            continue;
        if (x->ev.rw.body_changed && header_named(h, "content-encoding"))
            continue; /* the rewritten body is sent as identity */
        const char *hv = h->value;
        size_t hvl = h->value_len;
        int replaced = 0;
        for (size_t k = 0; k < x->ev.rw.nheaders; k++) {
            if (x->ev.rw.header_index[k] == i) {
                replaced = 1;
                hv = x->ev.rw.header_values[k];
                hvl = hv != NULL ? strlen(hv) : 0;
            }
        }
        if (replaced && hv == NULL)
            continue;
        if (!fw_off) {
            if (header_named(h, "x-forwarded-for")) {
                if (xff == NULL)
                    xff = hv, xff_len = hvl;
                continue;
            }
            if (header_named(h, "forwarded")) {
                if (fwd == NULL)
                    fwd = hv, fwd_len = hvl;
                continue;
            }
            if (header_named(h, "x-forwarded-proto") || header_named(h, "x-forwarded-host"))
                continue;
        }
        head_put(hd, h->name, h->name_len);
        head_put(hd, ": ", 2);
        head_put(hd, hv, hvl);
        head_put(hd, "\r\n", 2);
    }
    if (!fw_off) {
        int v6 = s->peer.ss_family == AF_INET6;
        /* The caller's Host is echoed only when the route was matched by it:
         * on a route matched by path alone it is whatever the caller wrote,
         * uninspected text that must not leave. */
        int echo_host = x->host[0] != '\0' && r->match_host != NULL;
        head_put(hd, "X-Forwarded-For: ", 17);
        if (xff != NULL && !fw_replace) {
            head_put(hd, xff, xff_len);
            head_put(hd, ", ", 2);
        }
        head_puts(hd, s->peer_text);
        head_put(hd, "\r\nForwarded: ", 13);
        if (fwd != NULL && !fw_replace) {
            head_put(hd, fwd, fwd_len);
            head_put(hd, ", ", 2);
        }
        head_puts(hd, v6 ? "for=\"[" : "for=");
        head_puts(hd, s->peer_text);
        head_puts(hd, v6 ? "]\";proto=http" : ";proto=http");
        if (echo_host) {
            head_put(hd, ";host=\"", 7);
            head_puts(hd, x->host);
            head_put(hd, "\"", 1);
        }
        head_put(hd, "\r\n", 2);
        head_put(hd, "X-Forwarded-Proto: http\r\n", 25);
        if (echo_host) {
            head_put(hd, "X-Forwarded-Host: ", 18);
            head_puts(hd, x->host);
            head_put(hd, "\r\n", 2);
        }
    }
    if (x->ev.rw.body_changed) {
        head_content_length(hd, x->ev.rw.body_len);
        head_put(hd, "\r\n", 2);
        head_end(hd);
        evbuffer_add(out, x->ev.rw.body, x->ev.rw.body_len);
        return;
    }
    size_t blen = evbuffer_get_length(x->body);
    if (x->has_body || blen > 0 || q->content_length == 0)
        head_content_length(hd, blen);
    head_put(hd, "\r\n", 2);
    head_end(hd);
    /* A reference, not a move: the body stays ours for a retry. */
    if (blen > 0)
        evbuffer_add_buffer_reference(out, x->body);
}

/*
 * Write BEV's pending output to its socket now, in this pass of the event
 * loop, rather than the libevent way (an epoll_ctl to arm EPOLLOUT, a pass
 * through epoll_wait, the writev, an epoll_ctl to disarm). Plain sockets
 * only, and never one still connecting: the caller checks. What the socket
 * does not take stays in the output for libevent to write as before; an
 * error (or EAGAIN) is left for libevent's write callback to meet. When the
 * output is empty the write event is removed, as libevent's own write
 * callback does; with the worker's epoll changelist the arm and the disarm
 * then cancel out and cost no system call. No write callback runs for the
 * bytes written here: callers use it where none is awaited.
 */
void bg_sess_flush_now(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0 || evbuffer_get_length(out) == 0 || !(bufferevent_get_enabled(bev) & EV_WRITE))
        return;
    /* libevent keeps the front of a socket bufferevent's output frozen
     * outside its own write callback; thaw it for this write as that does. */
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, fd);
    evbuffer_freeze(out, 1);
    if (n < 0)
        return;
    if (evbuffer_get_length(out) == 0)
        event_del(&bev->ev_write);
}

void bg_sess_write_response_head(bg_session_t *s)
{
    exchange_t *x = s->x;
    const bg_http_response_t *r = &x->resp;
    struct evbuffer *out = bufferevent_get_output(s->cbev);
    const bg_http_header_t *conn = bg_http_find_header(r->headers, r->nheaders, "connection");
    int client10 = x->req.version_minor == 0;

    if (x->resp_mode == BODY_EOF || (x->resp_mode == BODY_CHUNKED && client10))
        s->keep_alive = 0;
    x->resp_dechunk = x->resp_mode == BODY_CHUNKED && client10;

    /* The head is put together in one buffer and added once (no printf:
     * every response passes here). Not an initializer: that would zero
     * its 2 kB. */
    head_t h;
    h.out = out;
    h.n = 0;
    char st[5] = {' ', ' ', ' ', ' ', 0};
    st[0] = (char)('0' + r->status / 100 % 10);
    st[1] = (char)('0' + r->status / 10 % 10);
    st[2] = (char)('0' + r->status % 10);
    head_put(&h, "HTTP/1.1 ", 9);
    head_put(&h, st, 4);
    head_put(&h, r->reason, r->reason_len);
    head_put(&h, "\r\n", 2);
    for (size_t i = 0; i < r->nheaders; i++) {
        const bg_http_header_t *hd = &r->headers[i];
        if (bg_http_is_hop_by_hop(hd->name, hd->name_len, conn ? conn->value : NULL,
                                  conn ? conn->value_len : 0))
            continue;
        if (header_named(hd, "x-bordergate-id") || header_named(hd, "x-bordergate-changed") ||
            header_named(hd, "x-bordergate-decision"))
            continue;
        head_put(&h, hd->name, hd->name_len);
        head_put(&h, ": ", 2);
        head_put(&h, hd->value, hd->value_len);
        head_put(&h, "\r\n", 2);
    }
    if (x->resp_mode == BODY_CHUNKED && !client10)
        head_puts(&h, "Transfer-Encoding: chunked\r\n");
    head_puts(&h, "X-Bordergate-Id: ");
    head_puts(&h, x->id);
    head_puts(&h, "\r\n");
    if (x->ev.decided) {
        head_puts(&h, "X-Bordergate-Decision: ");
        head_puts(&h, bg_outcome_name(x->ev.decision.outcome));
        if (x->ev.decision.monitor) {
            head_puts(&h, "; monitor; would=");
            head_puts(&h, bg_outcome_name(x->ev.decision.would));
        }
        head_puts(&h, "\r\n");
    }
    /* A de-identified request: which paths changed and how (proxy/changed.h;
     * paths and operators, never values). */
    char changed[BG_CHANGED_MAX];
    if (x->ev.decided && bg_changed_header(&x->ev.decision, x->ev.insp, changed, sizeof changed)) {
        head_puts(&h, "X-Bordergate-Changed: ");
        head_puts(&h, changed);
        head_puts(&h, "\r\n");
    }
    if (x->rt->cfg->debug_headers) {
        head_puts(&h, "X-Bordergate-Route: ");
        head_puts(&h, x->route->id);
        head_puts(&h, "\r\nX-Bordergate-Destination: ");
        head_puts(&h, x->dest_text);
        head_puts(&h, "\r\nX-Bordergate-Geo: country=");
        head_puts(&h, x->geo.country[0] ? x->geo.country : "unknown");
        head_puts(&h, "; region=");
        head_puts(&h, bg_geo_region_name(x->geo.region));
        head_puts(&h, "; source=");
        head_puts(&h, x->geo.source);
        head_puts(&h, "\r\n");
    }
    if (!s->keep_alive)
        head_puts(&h, "Connection: close\r\n");
    else if (client10)
        head_puts(&h, "Connection: keep-alive\r\n");
    head_put(&h, "\r\n", 2);
    evbuffer_add(out, h.buf, h.n);
    x->response_started = 1;
    x->status = r->status;
    bg_metrics_upstream_response(s->w->metrics, x->route->id, r->status,
                                 bg_util_mono_us() - x->t_forward_us);
    s->w->stats.responses_by_class[r->status / 100 % 6]++;
}
