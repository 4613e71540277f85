/*
 * upstream.h — what the daemon sends upstream for a request replayed
 * offline: the request line's target, every header field and the body,
 * derived from the offline evaluation (replay.h) the way proxy/session.c's
 * FORWARD stage writes them: the route's Host and path rewriting, the
 * de-identified target, header values and body; hop-by-hop fields, Host,
 * Content-Length and Expect of the caller dropped; Content-Encoding
 * dropped when the body was rewritten; X-Forwarded-For / Forwarded /
 * X-Forwarded-Proto / X-Forwarded-Host per `forwarded` (append, replace,
 * off) with the caller's address; Content-Length last.
 *
 * `bordergate replay --live` compares this with what a `bordergate sink`
 * received, field by field, so a daemon that forwards something the
 * decision changed (a header in clear that was hashed offline, an added or
 * dropped field, another path) is a difference. It is written separately
 * from session.c on purpose: two derivations that must agree.
 */
#ifndef BG_REPLAY_UPSTREAM_H
#define BG_REPLAY_UPSTREAM_H

#include <stddef.h>

#include "config/config.h"
#include "replay/har.h"
#include "replay/replay.h"

#define BG_REPLAY_UP_MAX_HEADERS (BG_REPLAY_MAX_HEADERS + 8)

typedef struct {
    char *target; /* as on the upstream request line */
    char *names[BG_REPLAY_UP_MAX_HEADERS];
    char *values[BG_REPLAY_UP_MAX_HEADERS];
    size_t nheaders;
    const char *body; /* references REQ or RES */
    size_t body_len;
} bg_replay_upstream_t;

/*
 * The upstream request of REQ, evaluated as RES (allowed or de-identified,
 * not refused), under CFG, sent by a caller at address PEER (text, as
 * bg_util_addr_string writes it; PEER_V6 when IPv6) with CONNECTION the
 * value of its Connection field ("close" for --live; NULL when none). The
 * request's headers are RES->headers (Host, the recorded ones,
 * Content-Length), the fields the daemon saw. 0, or -1 when out of memory
 * or RES was not decided. OUT is always safe to pass to
 * bg_replay_upstream_free.
 */
int bg_replay_upstream(const bg_config_t *cfg, const bg_replay_req_t *req,
                       const bg_replay_result_t *res, const char *peer, int peer_v6,
                       const char *connection, bg_replay_upstream_t *out);
void bg_replay_upstream_free(bg_replay_upstream_t *u);

#endif
