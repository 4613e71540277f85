/*
 * Upstream connections and the per-worker keep-alive pool.
 *
 * A pooled connection is keyed by (scheme, TLS peer name, address:port): a
 * connection is only ever reused for the very address the geo check was
 * made on. Idle connections are watched for EOF and closed after
 * upstream_idle_ms; at most max_idle_upstream are kept per key.
 */
#ifndef BG_UPSTREAM_H
#define BG_UPSTREAM_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "proxy/worker.h"

typedef struct bg_upconn {
    struct bufferevent *bev;
    bg_pool_t *pool;
    struct bg_upconn *next, *prev; /* idle list links */
    struct pool_key *key;          /* its destination (upstream.c) */
    int tls;
    unsigned uses; /* requests sent on this connection */
    int idle;
    /* Plain connections, once back in the pool after their first exchange,
     * are read by RD (see bg_upconn_read) instead of the bufferevent. */
    int own_read;
    int rd_on;            /* RD is added */
    struct timeval rd_tv; /* its timeout while in use (0: none) */
    struct event rd;
} bg_upconn_t;

bg_pool_t *bg_pool_new(bg_worker_t *w);
/* Close every idle connection and free the pool. */
void bg_pool_free(bg_pool_t *pool);

/*
 * An idle pooled connection for this destination, or a new one (connect in
 * progress, TLS handshake started when TLS_CTX is not NULL). FRESH: never
 * an idle one (a retry after a pooled connection failed). A pooled
 * connection is only handed out after a non-blocking peek found it still
 * open (no EOF, no reset, no stray bytes), so "found closed before any
 * byte was written" is decided here and not after the request went out.
 * The caller owns the result until release/close, and must install its
 * callbacks. *REUSED tells which. NULL on failure (ERR filled).
 */
bg_upconn_t *bg_pool_get(bg_pool_t *pool, SSL_CTX *tls_ctx, const char *peer_name,
                         const struct sockaddr *addr, socklen_t addr_len, int fresh, int *reused,
                         char *err, size_t errcap);
/* Return a healthy connection whose last response was fully read. */
void bg_pool_release(bg_upconn_t *c, int idle_timeout_ms, int max_idle);
/* Close and free. */
void bg_upconn_close(bg_upconn_t *c);

/*
 * Reading the response. The caller installs its callbacks with
 * bufferevent_setcb and reads the bufferevent's input as usual; these turn
 * reading on and off (ON) and set the read timeout (TV NULL: none; the
 * event callback gets BEV_EVENT_READING|BEV_EVENT_TIMEOUT), in place of
 * bufferevent_enable/disable(EV_READ) and bufferevent_set_timeouts. A
 * plain connection that has been in the pool is read by a persistent
 * event of its own, kept for its whole life: libevent's socket bufferevent
 * asks the kernel how much is readable (an ioctl(FIONREAD)) before every
 * read, and switching between its read event and another on the same
 * descriptor would cost epoll_ctl calls instead.
 */
void bg_upconn_read(bg_upconn_t *c, int on);
/* Read up to WANT bytes from FD onto the end of IN, the input of a socket
 * bufferevent read by an event of the caller's own (its end is frozen
 * outside the bufferevent's reads; unfrozen here for the read): one recv
 * when the space is one segment, no ioctl(FIONREAD). Returns what recv
 * returns, errno kept. Shared by the client side (proxy/session.c). */
ssize_t bg_read_into(evutil_socket_t fd, struct evbuffer *in, size_t want);
void bg_upconn_read_timeout(bg_upconn_t *c, const struct timeval *tv);

/* Number of idle pooled connections (for metrics). */
int bg_pool_idle_count(const bg_pool_t *pool);
/* Upstream connections open now, idle or in use (for metrics; any thread). */
int bg_pool_live_count(const bg_pool_t *pool);

#endif
