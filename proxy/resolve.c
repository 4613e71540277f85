#include "proxy/resolve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>

#include "common/log.h"
#include "common/util.h"

#define CACHE_BUCKETS 256
#define NEGATIVE_TTL_S 5
#define MAX_TTL_S 3600

typedef struct cache_entry {
    struct cache_entry *next;
    char *host;
    uint64_t expires_us;
    int n;
    struct sockaddr_storage addrs[BG_RESOLVE_MAX]; /* port 0 */
} cache_entry_t;

struct bg_resolver {
    bg_worker_t *w;
    cache_entry_t *buckets[CACHE_BUCKETS];
};

struct bg_resolve_query {
    bg_resolver_t *r;
    char *host;
    int port;
    bg_resolve_cb cb;
    void *arg;
    int pending;
    int cancelled;
    int min_ttl;
    bg_resolve_result_t res;
    int err4, err6;
};

static unsigned hash_host(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % CACHE_BUCKETS;
}

bg_resolver_t *bg_resolver_new(bg_worker_t *w)
{
    bg_resolver_t *r = calloc(1, sizeof *r);
    if (r != NULL)
        r->w = w;
    return r;
}

void bg_resolver_free(bg_resolver_t *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        cache_entry_t *e = r->buckets[i];
        while (e != NULL) {
            cache_entry_t *next = e->next;
            free(e->host);
            free(e);
            e = next;
        }
    }
    free(r);
}

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static void copy_addrs(bg_resolve_result_t *out, const struct sockaddr_storage *addrs, int n,
                       int port)
{
    out->n = 0;
    for (int i = 0; i < n && out->n < BG_RESOLVE_MAX; i++) {
        out->addrs[out->n] = addrs[i];
        set_port(&out->addrs[out->n], port);
        out->n++;
    }
}

static cache_entry_t *cache_find(bg_resolver_t *r, const char *host)
{
    for (cache_entry_t *e = r->buckets[hash_host(host)]; e != NULL; e = e->next) {
        if (strcmp(e->host, host) == 0)
            return e;
    }
    return NULL;
}

static void cache_store(bg_resolver_t *r, const char *host, const bg_resolve_result_t *res,
                        int ttl_s)
{
    cache_entry_t *e = cache_find(r, host);
    if (e == NULL) {
        e = calloc(1, sizeof *e);
        if (e == NULL)
            return;
        e->host = strdup(host);
        if (e->host == NULL) {
            free(e);
            return;
        }
        unsigned b = hash_host(host);
        e->next = r->buckets[b];
        r->buckets[b] = e;
    }
    e->n = res->n;
    memcpy(e->addrs, res->addrs, sizeof(struct sockaddr_storage) * (size_t)res->n);
    for (int i = 0; i < e->n; i++)
        set_port(&e->addrs[i], 0);
    if (ttl_s > MAX_TTL_S)
        ttl_s = MAX_TTL_S;
    e->expires_us = bg_util_mono_us() + (uint64_t)ttl_s * 1000000u;
}

static void query_finish(bg_resolve_query_t *q)
{
    if (!q->cancelled) {
        if (q->res.n > 0) {
            cache_store(q->r, q->host, &q->res, q->min_ttl);
        } else {
            snprintf(q->res.error, sizeof q->res.error, "no address for upstream host (%s)",
                     evdns_err_to_string(q->err4 ? q->err4 : q->err6));
            bg_resolve_result_t empty = q->res;
            cache_store(q->r, q->host, &empty, NEGATIVE_TTL_S);
        }
        q->res.source = "dns";
        q->cb(q->arg, &q->res);
    }
    free(q->host);
    free(q);
}

static void on_dns(bg_resolve_query_t *q, int family, int result, int count, int ttl,
                   void *addresses)
{
    if (result == DNS_ERR_NONE) {
        for (int i = 0; i < count && q->res.n < BG_RESOLVE_MAX; i++) {
            struct sockaddr_storage *ss = &q->res.addrs[q->res.n];
            memset(ss, 0, sizeof *ss);
            if (family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *)ss;
                sin->sin_family = AF_INET;
                memcpy(&sin->sin_addr, (char *)addresses + 4 * i, 4);
            } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
                sin6->sin6_family = AF_INET6;
                memcpy(&sin6->sin6_addr, (char *)addresses + 16 * i, 16);
            }
            set_port(ss, q->port);
            q->res.n++;
        }
        if (count > 0 && (q->min_ttl < 0 || ttl < q->min_ttl))
            q->min_ttl = ttl;
    } else if (family == AF_INET) {
        q->err4 = result;
    } else {
        q->err6 = result;
    }
    if (--q->pending == 0) {
        if (q->min_ttl < 0)
            q->min_ttl = NEGATIVE_TTL_S;
        query_finish(q);
    }
}

static void on_dns4(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    on_dns(arg, AF_INET, result, type == DNS_IPv4_A ? count : 0, ttl, addresses);
}

static void on_dns6(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    on_dns(arg, AF_INET6, result, type == DNS_IPv6_AAAA ? count : 0, ttl, addresses);
}

int bg_resolve(bg_resolver_t *r, const bg_config_t *cfg, const char *host, int port,
               bg_resolve_result_t *out, bg_resolve_cb cb, void *arg, bg_resolve_query_t **qp)
{
    memset(out, 0, sizeof *out);
    *qp = NULL;

    const bg_resolve_entry_t *st = bg_config_find_resolve(cfg, host);
    if (st != NULL) {
        copy_addrs(out, st->addrs, st->naddrs, port);
        out->source = "static";
        return 0;
    }
    struct sockaddr_storage lit;
    memset(&lit, 0, sizeof lit);
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&lit)->sin_addr) == 1) {
        lit.ss_family = AF_INET;
        copy_addrs(out, &lit, 1, port);
        out->source = "literal";
        return 0;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&lit)->sin6_addr) == 1) {
        lit.ss_family = AF_INET6;
        copy_addrs(out, &lit, 1, port);
        out->source = "literal";
        return 0;
    }
    if (strcmp(host, "localhost") == 0) {
        struct sockaddr_storage lo[2];
        memset(lo, 0, sizeof lo);
        lo[0].ss_family = AF_INET;
        ((struct sockaddr_in *)&lo[0])->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        lo[1].ss_family = AF_INET6;
        ((struct sockaddr_in6 *)&lo[1])->sin6_addr = in6addr_loopback;
        copy_addrs(out, lo, 2, port);
        out->source = "literal";
        return 0;
    }
    cache_entry_t *e = cache_find(r, host);
    if (e != NULL && e->expires_us > bg_util_mono_us()) {
        copy_addrs(out, e->addrs, e->n, port);
        out->source = "dns-cache";
        if (out->n == 0) {
            snprintf(out->error, sizeof out->error, "no address for upstream host (cached)");
            return -1;
        }
        return 0;
    }
    if (r->w->dns == NULL) {
        snprintf(out->error, sizeof out->error, "no DNS resolver available");
        return -1;
    }
    bg_resolve_query_t *q = calloc(1, sizeof *q);
    if (q == NULL || (q->host = strdup(host)) == NULL) {
        free(q);
        snprintf(out->error, sizeof out->error, "out of memory");
        return -1;
    }
    q->r = r;
    q->port = port;
    q->cb = cb;
    q->arg = arg;
    q->min_ttl = -1;
    /* evdns delivers answers from the event loop (deferred callbacks), never
     * from inside these calls; PENDING counts the requests really started. */
    q->pending = 2;
    int started = 0;
    if (evdns_base_resolve_ipv4(r->w->dns, host, 0, on_dns4, q) != NULL)
        started++;
    else
        q->err4 = DNS_ERR_UNKNOWN;
    if (evdns_base_resolve_ipv6(r->w->dns, host, 0, on_dns6, q) != NULL)
        started++;
    else
        q->err6 = DNS_ERR_UNKNOWN;
    q->pending = started;
    if (started == 0) {
        free(q->host);
        free(q);
        snprintf(out->error, sizeof out->error, "cannot start DNS query");
        return -1;
    }
    *qp = q;
    return 1;
}

void bg_resolve_cancel(bg_resolve_query_t *q)
{
    /* The evdns requests run to completion (bounded by evdns's timeout);
     * only the caller's callback is suppressed. */
    if (q != NULL)
        q->cancelled = 1;
}
