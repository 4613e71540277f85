/*
 * One client connection and the exchanges on it. A request moves through
 * explicit stages, each one function with one contract:
 *
 *   read head -> ROUTE -> read body -> RESOLVE -> INSPECT -> DECIDE ->
 *   RECORD -> FORWARD -> relay response -> COMPLETE
 *
 * A stage either finishes and calls the next one, suspends (waiting for
 * DNS, the audit writer, the upstream) and is resumed from a callback, or
 * ends the exchange with a refusal (refuse() in session.c). The session owns the
 * client bufferevent, the request buffers and, while a request is in
 * flight, the upstream connection; everything is freed in session_free.
 */
#ifndef BG_SESSION_H
#define BG_SESSION_H

#include <sys/socket.h>

#include <event2/util.h>

#include "proxy/worker.h"

/* Start serving an accepted client connection (takes ownership of FD). */
void bg_session_start(bg_worker_t *w, evutil_socket_t fd, const struct sockaddr *peer,
                      socklen_t peer_len);

/* Graceful shutdown: idle connections close now, busy ones after their
 * current exchange. */
void bg_session_drain_all(bg_worker_t *w);

/* Close every connection at once (final shutdown), and free this worker
 * thread's spare exchanges: call it on the worker's thread. */
void bg_session_close_all(bg_worker_t *w);

#endif
