#include "proxy/upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "common/log.h"
#include "common/util.h"
#include "proxy/tls.h"

#define POOL_BUCKETS 64

/*
 * One destination (scheme, TLS peer name, address:port) and its idle
 * connections, most recently released first. Shared by every connection to
 * it (REFS), so taking and returning a connection is a look-up of the key
 * and a push or pop, not a walk comparing names along the idle list.
 */
typedef struct pool_key {
    struct pool_key *next; /* bucket chain */
    int tls;
    char *peer_name;
    struct sockaddr_storage addr;
    bg_upconn_t *idle; /* doubly linked through the connections' next/prev */
    int nidle;
    int refs; /* connections (idle or in use) to this destination */
} pool_key_t;

struct bg_pool {
    bg_worker_t *w;
    pool_key_t *keys[POOL_BUCKETS]; /* by key hash */
    int nidle;
    int nlive; /* connections open, idle or in use (atomic: the scrape reads it) */
};

static unsigned key_hash(int tls, const char *name, const struct sockaddr_storage *a)
{
    unsigned h = 2166136261u ^ (unsigned)tls;
    for (const char *p = name; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    const unsigned char *b = (const unsigned char *)a;
    size_t n = a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h % POOL_BUCKETS;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* The key for (TLS, PEER_NAME, KEY_ADDR), created when CREATE; NULL when
 * absent (or out of memory). */
static pool_key_t *key_find(bg_pool_t *pool, int tls, const char *peer_name,
                            const struct sockaddr_storage *key_addr, int create)
{
    unsigned b = key_hash(tls, peer_name, key_addr);
    for (pool_key_t *k = pool->keys[b]; k != NULL; k = k->next) {
        if (k->tls == tls && same_addr(&k->addr, (const struct sockaddr *)key_addr) &&
            strcmp(k->peer_name, peer_name) == 0)
            return k;
    }
    if (!create)
        return NULL;
    pool_key_t *k = calloc(1, sizeof *k);
    if (k == NULL || (k->peer_name = strdup(peer_name)) == NULL) {
        free(k);
        return NULL;
    }
    k->tls = tls;
    k->addr = *key_addr;
    k->next = pool->keys[b];
    pool->keys[b] = k;
    return k;
}

/* Drop C's hold on its key; the last connection to a destination frees it. */
static void key_put(bg_pool_t *pool, pool_key_t *k)
{
    if (k == NULL || --k->refs > 0)
        return;
    unsigned b = key_hash(k->tls, k->peer_name, &k->addr);
    for (pool_key_t **pp = &pool->keys[b]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    free(k->peer_name);
    free(k);
}

bg_pool_t *bg_pool_new(bg_worker_t *w)
{
    bg_pool_t *p = calloc(1, sizeof *p);
    if (p != NULL)
        p->w = w;
    return p;
}

static void idle_unlink(bg_upconn_t *c)
{
    bg_pool_t *p = c->pool;
    pool_key_t *k = c->key;
    if (!c->idle)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        k->idle = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->idle = 0;
    k->nidle--;
    p->nidle--;
}

void bg_upconn_close(bg_upconn_t *c)
{
    if (c == NULL)
        return;
    idle_unlink(c);
    if (c->own_read)
        event_del(&c->rd);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    if (c->pool != NULL)
        key_put(c->pool, c->key);
    bg_worker_descriptor_released(c->pool != NULL ? c->pool->w : NULL);
    if (c->pool != NULL)
        __atomic_sub_fetch(&c->pool->nlive, 1, __ATOMIC_RELAXED);
    free(c);
}

void bg_pool_free(bg_pool_t *pool)
{
    if (pool == NULL)
        return;
    for (int i = 0; i < POOL_BUCKETS; i++) {
        pool_key_t *k = pool->keys[i];
        while (k != NULL) {
            if (k->idle == NULL) {
                k = k->next;
                continue;
            }
            /* Closing a key's last connection frees the key: start the
             * bucket over after each close (shutdown only). */
            bg_upconn_close(k->idle);
            k = pool->keys[i];
        }
    }
    free(pool);
}

int bg_pool_idle_count(const bg_pool_t *pool)
{
    return __atomic_load_n(&pool->nidle, __ATOMIC_RELAXED);
}

int bg_pool_live_count(const bg_pool_t *pool)
{
    return __atomic_load_n(&pool->nlive, __ATOMIC_RELAXED);
}

/* Any event or byte on an idle connection means it is no longer usable. */
static void idle_read(struct bufferevent *bev, void *arg)
{
    bg_upconn_close(arg);
}
static void idle_event(struct bufferevent *bev, short what, void *arg)
{
    bg_upconn_close(arg);
}

/*
 * Is idle connection C still usable? A peek at the socket, without
 * reading: EOF or an error (reset) means the upstream closed it, possibly
 * a moment ago with the event not yet delivered. Bytes on a plain
 * connection that nobody asked for mean it is out of step. TLS records
 * (a session ticket, a close_notify) cannot be told apart here: only EOF
 * and errors count for TLS. One system call per reuse.
 */
static int still_open(const bg_upconn_t *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    char b;
    if (fd < 0)
        return 0;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return 0;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    return c->tls;
}

bg_upconn_t *bg_pool_get(bg_pool_t *pool, SSL_CTX *tls_ctx, const char *peer_name,
                         const struct sockaddr *addr, socklen_t addr_len, int fresh, int *reused,
                         char *err, size_t errcap)
{
    int tls = tls_ctx != NULL;
    struct sockaddr_storage key_addr;
    memset(&key_addr, 0, sizeof key_addr);
    memcpy(&key_addr, addr, addr_len);
    pool_key_t *k = key_find(pool, tls, peer_name, &key_addr, 0);

    while (!fresh && k != NULL && k->idle != NULL) {
        bg_upconn_t *c = k->idle;
        if (!still_open(c)) {
            /* Closed while idle: never written to. Closing the last
             * connection to this destination frees its key: look it up
             * again (the rare path). */
            bg_upconn_close(c);
            k = key_find(pool, tls, peer_name, &key_addr, 0);
            continue;
        }
        idle_unlink(c);
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
        if (c->own_read) {
            /* RD stays added (no system call): only its idle timeout
             * goes. Reading is on, as bg_upconn_read(c, 1) would leave it. */
            event_remove_timer(&c->rd);
            c->rd_on = 1;
            c->rd_tv.tv_sec = c->rd_tv.tv_usec = 0;
        } else {
            bufferevent_set_timeouts(c->bev, NULL, NULL);
        }
        *reused = 1;
        return c;
    }

    *reused = 0;
    if (k == NULL && (k = key_find(pool, tls, peer_name, &key_addr, 1)) == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    bg_upconn_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        if (k->refs == 0) { /* made for this connection: drop it again */
            k->refs = 1;
            key_put(pool, k);
        }
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    c->pool = pool; /* counted live from here: bg_upconn_close uncounts it */
    c->key = k;
    k->refs++;
    __atomic_add_fetch(&pool->nlive, 1, __ATOMIC_RELAXED);
    c->tls = tls;
    if (tls) {
        SSL *ssl = bg_tls_client_ssl_new(tls_ctx, peer_name);
        if (ssl == NULL) {
            snprintf(err, errcap, "cannot set up TLS");
            goto fail;
        }
        /* takes ownership of ssl */
        c->bev = bufferevent_openssl_socket_new(pool->w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev != NULL)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(pool->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        snprintf(err, errcap, "cannot create connection");
        goto fail;
    }
    if (bufferevent_socket_connect(c->bev, addr, (int)addr_len) != 0) {
        snprintf(err, errcap, "connect failed: %s", strerror(errno));
        goto fail;
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return c;
fail:
    bg_upconn_close(c);
    return NULL;
}

ssize_t bg_read_into(evutil_socket_t fd, struct evbuffer *in, size_t want)
{
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    evbuffer_unfreeze(in, 0);
    int nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
    ssize_t n = -1;
    int e = ENOMEM;
    if (nv > 0) {
        for (int i = 0; i < nv; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        /* One segment (the usual case): recv, which goes straight to the
         * socket, without readv's file-position lock and iovec import. */
        n = nv == 1 ? recv(fd, iov[0].iov_base, iov[0].iov_len, 0) : readv(fd, iov, nv);
        e = errno;
    }
    if (n > 0) {
        size_t left = (size_t)n;
        int used = 0;
        for (; used < nv && left > 0; used++) {
            if (v[used].iov_len > left)
                v[used].iov_len = left;
            left -= v[used].iov_len;
        }
        evbuffer_commit_space(in, v, used);
    }
    evbuffer_freeze(in, 0);
    errno = e;
    return n;
}

#define UP_READ 16384

/* RD fired. Idle: any byte, EOF or the idle timeout ends the connection.
 * In use: the bytes go to the bufferevent's input and its read callback,
 * EOF and errors to its event callback, as the bufferevent would. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    bg_upconn_t *c = arg;
    if (c->idle) {
        bg_upconn_close(c);
        return;
    }
    bufferevent_data_cb readcb = NULL;
    bufferevent_event_cb eventcb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(c->bev, &readcb, NULL, &eventcb, &cbarg);
    if (what & EV_TIMEOUT) {
        bg_upconn_read(c, 0);
        if (eventcb != NULL)
            eventcb(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, cbarg);
        return;
    }
    ssize_t n = bg_read_into(fd, bufferevent_get_input(c->bev), UP_READ);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        int e = errno;
        bg_upconn_read(c, 0); /* as the bufferevent does: no more reading */
        errno = e;
        if (eventcb != NULL)
            eventcb(c->bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), cbarg);
        return;
    }
    if (readcb != NULL)
        readcb(c->bev, cbarg); /* may free C */
}

void bg_upconn_read(bg_upconn_t *c, int on)
{
    if (!c->own_read) {
        if (on)
            bufferevent_enable(c->bev, EV_READ);
        else
            bufferevent_disable(c->bev, EV_READ);
        return;
    }
    if (on == c->rd_on)
        return;
    c->rd_on = on;
    if (!on)
        event_del(&c->rd);
    else if (c->rd_tv.tv_sec != 0 || c->rd_tv.tv_usec != 0)
        event_add(&c->rd, &c->rd_tv);
    else
        event_add(&c->rd, NULL);
}

void bg_upconn_read_timeout(bg_upconn_t *c, const struct timeval *tv)
{
    if (!c->own_read) {
        bufferevent_set_timeouts(c->bev, tv, NULL);
        return;
    }
    if (tv != NULL)
        c->rd_tv = *tv;
    else
        c->rd_tv.tv_sec = c->rd_tv.tv_usec = 0;
    if (!c->rd_on)
        return;
    if (tv != NULL)
        event_add(&c->rd, tv);
    else
        event_remove_timer(&c->rd);
}

void bg_pool_release(bg_upconn_t *c, int idle_timeout_ms, int max_idle)
{
    bg_pool_t *p = c->pool;
    pool_key_t *k = c->key;
    if (max_idle <= 0 || k->nidle >= max_idle ||
        evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        bg_upconn_close(c);
        return;
    }
    struct timeval tv = {idle_timeout_ms / 1000, (idle_timeout_ms % 1000) * 1000};
    if (!c->tls && !c->own_read) {
        /* From now on read by RD (bg_upconn_read): once per connection. */
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        if (fd >= 0 &&
            event_assign(&c->rd, p->w->base, fd, EV_READ | EV_PERSIST, on_readable, c) == 0) {
            c->own_read = 1;
            c->rd_on = 0;
        }
    }
    c->idle = 1;
    c->prev = NULL;
    c->next = k->idle;
    if (c->next != NULL)
        c->next->prev = c;
    k->idle = c;
    k->nidle++;
    p->nidle++;
    if (c->own_read) {
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
        c->rd_on = 1;
        event_add(&c->rd, &tv); /* already added: only the timeout changes */
        return;
    }
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_setcb(c->bev, idle_read, NULL, idle_event, c);
    bufferevent_enable(c->bev, EV_READ);
}
