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

/* Status line reason for CODE ("OK", "Not Found", ...). */
const char *bg_serve_reason(int code);

#endif
