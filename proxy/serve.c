#include "proxy/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "common/log.h"
#include "common/util.h"

#define SERVE_MAX_HEAD 16384
#define SERVE_STREAM_SLICE 65536
#define SERVE_ACCEPT_RETRY_MS 200              /* paused accept: probe this often */
#define SERVE_ACCEPT_WARN_US (10 * 1000000ull) /* at most one accept warning per 10 s */

typedef enum {
    CONN_HEAD,
    CONN_BODY_LENGTH,
    CONN_BODY_CHUNKED,
    CONN_REPLY_WAIT, /* delayed reply pending */
    CONN_STREAMING,  /* writing filler bytes */
    CONN_CLOSING,    /* flush, then free */
} conn_state_t;

typedef struct serve_conn {
    bg_serve_t *srv;
    struct bufferevent *bev;
    struct serve_conn *prev, *next;
    conn_state_t state;
    struct sockaddr_storage peer;

    char *head; /* copy of the request head; req points into it */
    bg_http_request_t req;
    bg_http_header_t fields[BG_HTTP_MAX_HEADERS]; /* req's header fields */
    struct evbuffer *body;
    uint64_t body_left;
    bg_http_chunked_t chunked;

    bg_serve_reply_t reply;
    struct event *timer;
    uint64_t stream_left;
    int stream_chunked;
    int keep_alive;
    struct bg_serve_pending *pending; /* a deferred reply (bg_serve_defer) */
} serve_conn_t;

struct bg_serve_pending {
    serve_conn_t *conn;
    bg_serve_cancel_fn cancel;
    void *arg;
};

struct bg_serve {
    struct event_base *base;
    struct evconnlistener *listener;
    SSL_CTX *ssl_ctx;
    size_t max_body;
    bg_serve_handler_fn fn;
    void *arg;
    serve_conn_t *conns;
    int accept_paused;          /* accept() failed (EMFILE...): listener disabled */
    struct event *accept_retry; /* probes for a free descriptor while paused */
    uint64_t accept_warned_us;
    unsigned accept_suppressed;
};

static void accept_try_resume(bg_serve_t *srv);

const char *bg_serve_reason(int code)
{
    switch (code) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}

static void conn_free(serve_conn_t *c)
{
    bg_serve_t *srv = c->srv;
    if (c->pending != NULL) { /* the deferred work loses its reply */
        bg_serve_pending_t *p = c->pending;
        c->pending = NULL;
        p->cancel(p->arg);
        free(p);
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    if (c->body != NULL)
        evbuffer_free(c->body);
    if (c->reply.body != NULL)
        evbuffer_free(c->reply.body);
    free(c->head);
    free(c);
    accept_try_resume(srv); /* a descriptor was released */
}

static void conn_process(serve_conn_t *c);

/* Queue a complete reply for an error detected while parsing. */
static void conn_error(serve_conn_t *c, int status, const char *why)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", why);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                        status, bg_serve_reason(status), n, body);
    c->state = CONN_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
}

static void fill_stream(serve_conn_t *c)
{
    static const char filler[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (c->stream_left > 0 && evbuffer_get_length(out) < SERVE_STREAM_SLICE) {
        size_t n = c->stream_left < 4096 ? (size_t)c->stream_left : 4096;
        char buf[4096];
        for (size_t i = 0; i < n; i++)
            buf[i] = filler[i % (sizeof filler - 1)];
        if (c->stream_chunked)
            evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add(out, buf, n);
        if (c->stream_chunked)
            evbuffer_add(out, "\r\n", 2);
        c->stream_left -= n;
    }
    if (c->stream_left == 0) {
        if (c->stream_chunked)
            evbuffer_add(out, "0\r\n\r\n", 5);
        c->state = c->keep_alive ? CONN_HEAD : CONN_CLOSING;
    }
}

/* Returns -1 when the connection was freed (reply.drop). */
static int send_reply(serve_conn_t *c)
{
    bg_serve_reply_t *r = &c->reply;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int head_only = bg_util_ieq(c->req.method, c->req.method_len, "HEAD");
    int no_body = head_only || r->status == 204 || r->status == 304;
    uint64_t len = r->stream_len > 0 ? r->stream_len : evbuffer_get_length(r->body);

    if (r->drop) {
        conn_free(c);
        return -1;
    }
    c->keep_alive = c->req.keep_alive && !r->close;
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", r->status, bg_serve_reason(r->status));
    if (r->status != 204 && r->status != 304)
        evbuffer_add_printf(out, "Content-Type: %s\r\n",
                            r->content_type != NULL ? r->content_type : "application/json");
    if (r->chunked && c->req.version_minor == 1)
        evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
    else if (r->status != 204 && r->status != 304)
        evbuffer_add_printf(out, "Content-Length: %llu\r\n", (unsigned long long)len);
    if (r->chunked && c->req.version_minor == 0)
        c->keep_alive = 0;
    if (!c->keep_alive)
        evbuffer_add_printf(out, "Connection: close\r\n");
    else if (c->req.version_minor == 0)
        evbuffer_add_printf(out, "Connection: keep-alive\r\n");
    evbuffer_add_printf(out, "%s\r\n", r->extra_headers);

    if (no_body) {
        c->state = c->keep_alive ? CONN_HEAD : CONN_CLOSING;
    } else if (r->stream_len > 0) {
        c->stream_left = r->stream_len;
        c->stream_chunked = r->chunked && c->req.version_minor == 1;
        c->state = CONN_STREAMING;
        fill_stream(c);
    } else {
        if (r->chunked && c->req.version_minor == 1) {
            if (len > 0) {
                evbuffer_add_printf(out, "%llx\r\n", (unsigned long long)len);
                evbuffer_add_buffer(out, r->body);
                evbuffer_add(out, "\r\n", 2);
            }
            evbuffer_add(out, "0\r\n\r\n", 5);
        } else {
            evbuffer_add_buffer(out, r->body);
        }
        c->state = c->keep_alive ? CONN_HEAD : CONN_CLOSING;
    }
    if (c->state == CONN_CLOSING)
        bufferevent_disable(c->bev, EV_READ);
    else if (c->state == CONN_HEAD)
        bufferevent_enable(c->bev, EV_READ);
    return 0;
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    serve_conn_t *c = arg;
    if (send_reply(c) == 0 && c->state == CONN_HEAD)
        conn_process(c);
}

/* Returns -1 when the connection was freed. */
static int dispatch(serve_conn_t *c)
{
    bg_serve_req_t sreq;
    sreq.head = &c->req;
    sreq.body = c->body;
    sreq.peer = (const struct sockaddr *)&c->peer;
    sreq.tls = c->srv->ssl_ctx != NULL;
    sreq.conn = c;

    if (c->reply.body == NULL)
        c->reply.body = evbuffer_new();
    else
        evbuffer_drain(c->reply.body, evbuffer_get_length(c->reply.body));
    struct evbuffer *keep = c->reply.body;
    memset(&c->reply, 0, sizeof c->reply);
    c->reply.body = keep;
    c->reply.status = 200;

    c->srv->fn(c->srv->arg, &sreq, &c->reply);
    evbuffer_drain(c->body, evbuffer_get_length(c->body));
    if (c->pending != NULL) { /* bg_serve_finish sends it */
        c->state = CONN_REPLY_WAIT;
        bufferevent_disable(c->bev, EV_READ);
        return 0;
    }

    if (c->reply.delay_ms > 0 && !c->reply.drop) {
        struct timeval tv = {c->reply.delay_ms / 1000, (c->reply.delay_ms % 1000) * 1000};
        if (c->timer == NULL)
            c->timer = evtimer_new(c->srv->base, on_delay, c);
        c->state = CONN_REPLY_WAIT;
        bufferevent_disable(c->bev, EV_READ);
        evtimer_add(c->timer, &tv);
        return 0;
    }
    return send_reply(c);
}

bg_serve_pending_t *bg_serve_defer(const bg_serve_req_t *req, bg_serve_cancel_fn cancel, void *arg)
{
    serve_conn_t *c = req->conn;
    bg_serve_pending_t *p = calloc(1, sizeof *p);
    if (p == NULL || c == NULL || c->pending != NULL) {
        free(p);
        return NULL;
    }
    p->conn = c;
    p->cancel = cancel;
    p->arg = arg;
    c->pending = p;
    return p;
}

bg_serve_reply_t *bg_serve_pending_reply(bg_serve_pending_t *p)
{
    return &p->conn->reply;
}

struct event_base *bg_serve_req_base(const bg_serve_req_t *req)
{
    const serve_conn_t *c = req->conn;
    return c->srv->base;
}

void bg_serve_finish(bg_serve_pending_t *p)
{
    serve_conn_t *c = p->conn;
    c->pending = NULL;
    free(p);
    if (send_reply(c) == 0 && c->state == CONN_HEAD)
        conn_process(c); /* a pipelined request may be waiting */
}

/* Run the state machine over whatever input is buffered. */
static void conn_process(serve_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    for (;;) {
        if (c->state == CONN_HEAD) {
            size_t avail = evbuffer_get_length(in);
            if (avail == 0)
                return;
            size_t take = avail < SERVE_MAX_HEAD ? avail : SERVE_MAX_HEAD;
            const char *p = (const char *)evbuffer_pullup(in, (ssize_t)take);
            int status = 400;
            const char *why = "bad request";
            c->req.headers = c->fields;
            c->req.max_headers = BG_HTTP_MAX_HEADERS;
            bg_http_result_t r =
                bg_http_parse_request(p, take, SERVE_MAX_HEAD, &c->req, &status, &why);
            if (r == BG_HTTP_INCOMPLETE)
                return;
            if (r == BG_HTTP_ERROR) {
                conn_error(c, status, why);
                return;
            }
            size_t hl = c->req.head_len;
            char *copy = realloc(c->head, hl + 1);
            if (copy == NULL) {
                conn_error(c, 500, "out of memory");
                return;
            }
            c->head = copy;
            evbuffer_remove(in, c->head, hl);
            c->head[hl] = '\0';
            /* Re-point the parse into our copy. */
            bg_http_parse_request(c->head, hl, hl + 1, &c->req, &status, &why);
            if (c->req.expect_continue)
                evbuffer_add_printf(bufferevent_get_output(c->bev),
                                    "HTTP/1.1 100 Continue\r\n\r\n");
            if (c->req.chunked) {
                bg_http_chunked_init(&c->chunked);
                c->state = CONN_BODY_CHUNKED;
            } else {
                c->body_left = c->req.content_length > 0 ? (uint64_t)c->req.content_length : 0;
                if (c->body_left > c->srv->max_body) {
                    conn_error(c, 413, "body too large");
                    return;
                }
                c->state = CONN_BODY_LENGTH;
            }
        }
        if (c->state == CONN_BODY_LENGTH) {
            if (c->body_left > 0) {
                size_t avail = evbuffer_get_length(in);
                size_t n = avail < c->body_left ? avail : (size_t)c->body_left;
                evbuffer_remove_buffer(in, c->body, n);
                c->body_left -= n;
                if (c->body_left > 0)
                    return;
            }
            if (dispatch(c) < 0 || c->state != CONN_HEAD)
                return;
            continue;
        }
        if (c->state == CONN_BODY_CHUNKED) {
            while (!c->chunked.done) {
                size_t avail = evbuffer_get_length(in);
                if (avail == 0)
                    return;
                size_t take = avail < 8192 ? avail : 8192;
                const char *p = (const char *)evbuffer_pullup(in, (ssize_t)take);
                size_t data_len = 0;
                const char *why = NULL;
                ssize_t used = bg_http_chunked_step(&c->chunked, p, take, &data_len, &why);
                if (used < 0) {
                    conn_error(c, 400, why != NULL ? why : "bad chunked body");
                    return;
                }
                if (used == 0 && !c->chunked.done)
                    return;
                if (data_len > 0) {
                    if (evbuffer_get_length(c->body) + data_len > c->srv->max_body) {
                        conn_error(c, 413, "body too large");
                        return;
                    }
                    evbuffer_remove_buffer(in, c->body, data_len);
                } else {
                    evbuffer_drain(in, (size_t)used);
                }
            }
            if (dispatch(c) < 0 || c->state != CONN_HEAD)
                return;
            continue;
        }
        return;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    serve_conn_t *c = arg;
    if (c->state == CONN_HEAD || c->state == CONN_BODY_LENGTH || c->state == CONN_BODY_CHUNKED)
        conn_process(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    serve_conn_t *c = arg;
    if (c->state == CONN_STREAMING) {
        fill_stream(c);
        if (c->state == CONN_HEAD) {
            bufferevent_enable(c->bev, EV_READ);
            conn_process(c);
        }
        return;
    }
    if (c->state == CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    serve_conn_t *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (what & BEV_EVENT_ERROR) {
            unsigned long e;
            while ((e = bufferevent_get_openssl_error(bev)) != 0) {
                char buf[200];
                ERR_error_string_n(e, buf, sizeof buf);
                bg_debug("serve: TLS error: %s", buf);
            }
        }
        conn_free(c);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    bg_serve_t *srv = arg;
    serve_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = srv;
    if ((size_t)salen <= sizeof c->peer)
        memcpy(&c->peer, sa, (size_t)salen);
    if (srv->ssl_ctx != NULL) {
        SSL *ssl = SSL_new(srv->ssl_ctx);
        if (ssl == NULL) {
            evutil_closesocket(fd);
            free(c);
            return;
        }
        /* takes ownership of ssl and fd */
        c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
    } else {
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    c->body = evbuffer_new();
    if (c->bev == NULL || c->body == NULL) {
        if (c->bev == NULL)
            evutil_closesocket(fd);
        if (c->body != NULL)
            evbuffer_free(c->body);
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        free(c);
        return;
    }
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    struct timeval idle = {120, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* While paused: accept again as soon as a descriptor is free (probed by
 * duplicating the listening socket, which fails exactly when accept would
 * for lack of descriptors). */
static void accept_try_resume(bg_serve_t *srv)
{
    if (!srv->accept_paused)
        return;
    int fd = fcntl(evconnlistener_get_fd(srv->listener), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return;
    close(fd);
    srv->accept_paused = 0;
    evtimer_del(srv->accept_retry);
    evconnlistener_enable(srv->listener);
    bg_info("serve: descriptors available again; accepting");
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    bg_serve_t *srv = arg;
    accept_try_resume(srv);
    if (srv->accept_paused) {
        struct timeval tv = {0, SERVE_ACCEPT_RETRY_MS * 1000};
        evtimer_add(srv->accept_retry, &tv);
    }
}

/*
 * accept() failed in a way libevent does not retry (EMFILE, ENFILE,
 * ENOBUFS...): the connection stays in the backlog, so an enabled listener
 * would spin on it. Pause; resume when a connection of ours closes or a
 * probe every SERVE_ACCEPT_RETRY_MS finds a descriptor. Warnings are
 * rate-limited (one per 10 s, with the count of those not logged).
 */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    bg_serve_t *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    uint64_t now = bg_util_mono_us();
    if (srv->accept_warned_us == 0 || now - srv->accept_warned_us >= SERVE_ACCEPT_WARN_US) {
        bg_error("serve: accept: %s; pausing accept, retrying every %d ms (%u more accept errors "
                 "since the last warning)",
                 evutil_socket_error_to_string(err), SERVE_ACCEPT_RETRY_MS, srv->accept_suppressed);
        srv->accept_warned_us = now;
        srv->accept_suppressed = 0;
    } else {
        srv->accept_suppressed++;
    }
    evconnlistener_disable(l);
    srv->accept_paused = 1;
    struct timeval tv = {0, SERVE_ACCEPT_RETRY_MS * 1000};
    evtimer_add(srv->accept_retry, &tv);
}

bg_serve_t *bg_serve_new(struct event_base *base, const struct sockaddr *addr, socklen_t len,
                         SSL_CTX *ssl_ctx, size_t max_body, bg_serve_handler_fn fn, void *arg,
                         char *err, size_t errcap)
{
    bg_serve_t *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    srv->base = base;
    srv->ssl_ctx = ssl_ctx;
    srv->max_body = max_body;
    srv->fn = fn;
    srv->arg = arg;
    srv->accept_retry = evtimer_new(base, on_accept_retry, srv);
    if (srv->accept_retry == NULL) {
        snprintf(err, errcap, "out of memory");
        free(srv);
        return NULL;
    }
    srv->listener = evconnlistener_new_bind(
        base, on_accept, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, addr, (int)len);
    if (srv->listener == NULL) {
        char a[64];
        bg_util_addr_string(addr, a, sizeof a);
        snprintf(err, errcap, "cannot listen on %s:%d: %s", a, bg_util_addr_port(addr),
                 strerror(errno));
        event_free(srv->accept_retry);
        free(srv);
        return NULL;
    }
    evconnlistener_set_error_cb(srv->listener, on_accept_error);
    return srv;
}

int bg_serve_port(const bg_serve_t *srv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(evconnlistener_get_fd(srv->listener), (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return bg_util_addr_port((struct sockaddr *)&ss);
}

void bg_serve_free(bg_serve_t *srv)
{
    if (srv == NULL)
        return;
    srv->accept_paused = 0; /* no probes while tearing down */
    for (serve_conn_t *c = srv->conns, *next; c != NULL; c = next) {
        next = c->next; /* conn_free unlinks C, and only C */
        conn_free(c);
    }
    evconnlistener_free(srv->listener);
    event_free(srv->accept_retry);
    free(srv);
}
