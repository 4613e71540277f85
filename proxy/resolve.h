/*
 * Name resolution for upstream hosts, per worker:
 *   1. the config's static "resolve" map (like curl --resolve),
 *   2. IP literals and "localhost",
 *   3. libevent's evdns (A and AAAA in parallel), cached for the answer's
 *      TTL and never longer (negative answers for 5 s).
 * The caller connects to exactly one of the returned addresses; the geo
 * check is taken on that same address.
 */
#ifndef BG_RESOLVE_H
#define BG_RESOLVE_H

#include <sys/socket.h>

#include "config/config.h"
#include "proxy/worker.h"

#define BG_RESOLVE_MAX 16

typedef struct {
    int n;
    struct sockaddr_storage addrs[BG_RESOLVE_MAX]; /* port set by the resolver */
    const char *source;                            /* "static", "literal", "dns", "dns-cache" */
    char error[128];                               /* when n == 0 */
} bg_resolve_result_t;

typedef void (*bg_resolve_cb)(void *arg, const bg_resolve_result_t *res);
typedef struct bg_resolve_query bg_resolve_query_t;

bg_resolver_t *bg_resolver_new(bg_worker_t *w);
void bg_resolver_free(bg_resolver_t *r);

/*
 * Resolve HOST for PORT. When the answer is known at once (static map,
 * literal, cache) fills OUT and returns 0 without calling CB. Otherwise
 * returns 1 and *Q is a pending query; CB runs later exactly once unless the
 * query is cancelled first. -1 on immediate failure (OUT->error set).
 */
int bg_resolve(bg_resolver_t *r, const bg_config_t *cfg, const char *host, int port,
               bg_resolve_result_t *out, bg_resolve_cb cb, void *arg, bg_resolve_query_t **q);
void bg_resolve_cancel(bg_resolve_query_t *q);

#endif
