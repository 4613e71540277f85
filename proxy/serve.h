/*
 * A small HTTP/1.1 origin server on libevent, shared by the admin listener
 * and `bordergate sink`. Requests are parsed with the same strict parser as
 * the proxy; bodies are read whole (bounded); the handler fills a reply.
 * Keep-alive and pipelining are supported. Optional TLS (server side).
 */
#ifndef BG_SERVE_H
#define BG_SERVE_H

#include <stdint.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "proxy/http.h"

typedef struct bg_serve bg_serve_t;

typedef struct {
    const bg_http_request_t *head;
    struct evbuffer *body; /* decoded body (chunked framing removed) */
    const struct sockaddr *peer;
    int tls;
    void *conn; /* opaque: for bg_serve_defer */
} bg_serve_req_t;

typedef struct {
    int status;               /* default 200 */
    const char *content_type; /* default application/json */
    struct evbuffer *body;    /* handler appends the body here */
    uint64_t stream_len;      /* > 0: send this many filler bytes instead */
    int chunked;              /* send the body with chunked framing */
    int close;                /* close the connection after this reply */
    int drop;                 /* close at once without any reply */
    int delay_ms;             /* wait before replying */
    char extra_headers[512];  /* complete "Name: value\r\n" lines */
} bg_serve_reply_t;

typedef void (*bg_serve_handler_fn)(void *arg, const bg_serve_req_t *req, bg_serve_reply_t *reply);

/*
 * Listen on ADDR. SSL_CTX (may be NULL) is referenced, not owned. Returns
 * NULL with ERR filled when the socket cannot be bound.
 */
bg_serve_t *bg_serve_new(struct event_base *base, const struct sockaddr *addr, socklen_t len,
                         SSL_CTX *ssl_ctx, size_t max_body, bg_serve_handler_fn fn, void *arg,
                         char *err, size_t errcap);
/* Bound port (useful with port 0). */
int bg_serve_port(const bg_serve_t *srv);
/* Stop listening and close every connection. */
void bg_serve_free(bg_serve_t *srv);

/*
 * Deferred replies, for work done in slices on the event loop (the
 * dashboard's reports). Called in a handler, bg_serve_defer means "no reply
 * now": the connection waits (reading paused) until bg_serve_finish, which
 * sends the reply filled through bg_serve_pending_reply. When the
 * connection closes first (the client went away, bg_serve_free), CANCEL(ARG)
 * is called once and the pending reply is gone: do not use it after that.
 * Everything on the event base's thread.
 */
typedef struct bg_serve_pending bg_serve_pending_t;
typedef void (*bg_serve_cancel_fn)(void *arg);
bg_serve_pending_t *bg_serve_defer(const bg_serve_req_t *req, bg_serve_cancel_fn cancel, void *arg);
/* The reply to fill (status 200, empty body, as the handler left it). */
bg_serve_reply_t *bg_serve_pending_reply(bg_serve_pending_t *p);
/* The event base REQ is served on (to schedule the deferred work). */
struct event_base *bg_serve_req_base(const bg_serve_req_t *req);
/* Send the reply; frees P. */
void bg_serve_finish(bg_serve_pending_t *p);

/* Status line reason for CODE ("OK", "Not Found", ...). */
const char *bg_serve_reason(int code);

#endif
