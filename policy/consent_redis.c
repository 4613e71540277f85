/*
 * The Redis consent backend: the registry shared by a fleet of daemons and
 * the CLI (docs/consent.md "Redis backend"). Every hiredis call goes through
 * store/redis.h.
 *
 * Keys (pseudonyms only, never a raw subject id):
 *   bg:consent:c:{id}        hash: the consent's fields (see put_fields)
 *   bg:consent:s:{pseudonym} sorted set of the subject's consent ids, score
 *                            granted_at (grant order)
 *   bg:consent:all           sorted set of every consent id
 *   bg:consent:key_check     the subject key's check value (like the journal
 *                            header): a daemon with another key refuses to start
 * Channels:
 *   bg:consent:changed       "{pseudonym} {nonce}" after every grant/withdrawal
 *   bg:consent:ack:{nonce}   each subscribed instance answers once it has
 *                            dropped its cached entry
 *
 * Grants and withdrawals are single Lua scripts (atomic; a withdrawal of an
 * already withdrawn consent answers EALREADY, so it applies once) that also
 * PUBLISH the change and return how many instances received it. The writer
 * subscribed to its ack channel before the script ran and waits (at most
 * ACK_WAIT_MS) for that many acks, so when a grant or withdrawal returns,
 * every instance that was subscribed has dropped its cached copy: a request
 * that starts afterwards on any instance reads the new state from Redis.
 *
 * Look-ups: a per-instance cache of subjects (their consents, or "none"),
 * filled on a miss by one Lua script (one round trip) and emptied per
 * subject by the invalidation messages. The cache is only trusted while the
 * subscriber is up: on a disconnect the cache is dropped and every look-up
 * answers registry-unavailable (fail closed) until the subscription is back;
 * a miss that cannot reach Redis answers registry-unavailable too. A fill
 * that raced with an invalidation (epoch changed meanwhile) is not kept.
 *
 * Cost: a cached look-up is one hash probe under a read lock; a miss is one
 * round trip on the shared command connection (serialised by its mutex).
 * At most CACHE_MAX subjects are cached; past that the cache starts again.
 * Not for Redis Cluster (the scripts read keys they are not given).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/consent.h"
#include "store/redis.h"

#define CACHE_BUCKETS 16384
#define CACHE_MAX 20000
#define ACK_WAIT_MS 1000
#define CHANNEL "bg:consent:changed"
#define K_CONSENT "bg:consent:c:"
#define K_SUBJECT "bg:consent:s:"
#define K_ALL "bg:consent:all"
#define K_KEYCHECK "bg:consent:key_check"

static const char FETCH_LUA[] =
    "local ids = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "local out = {}\n"
    "for i, id in ipairs(ids) do out[i] = redis.call('HGETALL', ARGV[1] .. id) end\n"
    "return out\n";

static const char GRANT_LUA[] = "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
                                "redis.call('HSET', KEYS[1], unpack(ARGV, 5))\n"
                                "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])\n"
                                "redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])\n"
                                "return redis.call('PUBLISH', ARGV[3], ARGV[4])\n";

static const char WITHDRAW_LUA[] =
    "local g = redis.call('HMGET', KEYS[1], 'granted_at', 'withdrawn_at', 'subject')\n"
    "if not g[1] then return -1 end\n"
    "if g[2] ~= '0' then return -2 end\n"
    "if tonumber(ARGV[1]) < tonumber(g[1]) then return -3 end\n"
    "redis.call('HSET', KEYS[1], 'withdrawn_at', ARGV[1], 'withdrawn_by', ARGV[2])\n"
    "return redis.call('PUBLISH', ARGV[3], g[3] .. ' ' .. ARGV[4])\n";

typedef struct centry {
    struct centry *next;
    uint8_t subject[BG_CONSENT_PSEUDONYM_LEN];
    size_t n;
    bg_consent_t *v; /* N consents; NULL when the subject has none */
} centry_t;

typedef struct {
    bg_consent_backend_t be; /* first: the vtable */
    bg_redis_cfg_t cfg;
    bg_redis_t *r;
    bg_redis_sub_t *sub;
    pthread_rwlock_t lock; /* guards the cache */
    centry_t *buckets[CACHE_BUCKETS];
    size_t ncached;
    atomic_uint epoch;  /* bumped by every invalidation */
    atomic_int sub_up;  /* subscriber confirmed: the cache may be trusted */
    atomic_ullong hits; /* look-ups answered from the cache */
    atomic_ullong misses;
    char key_check[BG_CONSENT_KEY_CHECK_SIZE]; /* "" when the handle has no key */
    atomic_int key_ok;                         /* the store's key check was compared and matched */
} rbe_t;

static int check_key(rbe_t *b, const char *key_check, char *err, size_t errcap);

/* Before the first read or write that depends on the key: compare it with
 * the store's (a daemon that started while Redis was down could not). 0, or
 * -1 with ERR (unreachable, or another key: then nothing is answered). */
static int key_verified(rbe_t *b, char *err, size_t errcap)
{
    if (b->key_check[0] == '\0' || atomic_load(&b->key_ok))
        return 0;
    if (check_key(b, b->key_check, err, errcap) != 0)
        return -1;
    atomic_store(&b->key_ok, 1);
    return 0;
}

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static unsigned bucket_of(const uint8_t *subject)
{
    unsigned h;
    memcpy(&h, subject, sizeof h); /* a keyed HMAC: already uniform */
    return h % CACHE_BUCKETS;
}

static int64_t num_of(const char *s)
{
    return s != NULL ? (int64_t)strtoll(s, NULL, 10) : 0;
}

/* Copy a hash field's value into a fixed field; -1 when too long. */
static int set_text(char *dst, size_t cap, const redisReply *v)
{
    if (v->type != REDIS_REPLY_STRING || v->len >= cap)
        return -1;
    memcpy(dst, v->str, v->len);
    dst[v->len] = '\0';
    return 0;
}

/* A consent from an HGETALL reply (field, value, ...), validated as the
 * front end validates a grant. 0, or -1 when anything is off. */
static int consent_of_hash(const redisReply *h, bg_consent_t *c)
{
    memset(c, 0, sizeof *c);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements == 0 || h->elements % 2 != 0)
        return -1;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return -1;
        const char *f = k->str;
        int rc = 0;
        if (strcmp(f, "id") == 0)
            rc = set_text(c->id, sizeof c->id, v);
        else if (strcmp(f, "subject") == 0)
            rc = set_text(c->subject, sizeof c->subject, v);
        else if (strcmp(f, "recipient") == 0)
            rc = set_text(c->recipient, sizeof c->recipient, v);
        else if (strcmp(f, "purpose") == 0)
            rc = set_text(c->purpose, sizeof c->purpose, v);
        else if (strcmp(f, "region") == 0)
            rc = set_text(c->region, sizeof c->region, v);
        else if (strcmp(f, "evidence") == 0)
            rc = set_text(c->evidence, sizeof c->evidence, v);
        else if (strcmp(f, "recorded_by") == 0)
            rc = set_text(c->recorded_by, sizeof c->recorded_by, v);
        else if (strcmp(f, "withdrawn_by") == 0)
            rc = set_text(c->withdrawn_by, sizeof c->withdrawn_by, v);
        else if (strcmp(f, "sensitive") == 0)
            c->sensitive = v->str[0] == '1';
        else if (strcmp(f, "guardian") == 0)
            c->guardian = v->str[0] == '1';
        else if (strcmp(f, "granted_at") == 0)
            c->granted_at = num_of(v->str);
        else if (strcmp(f, "expires_at") == 0)
            c->expires_at = num_of(v->str);
        else if (strcmp(f, "withdrawn_at") == 0)
            c->withdrawn_at = num_of(v->str);
        if (rc != 0)
            return -1;
    }
    char err[128];
    return bg_consent_validate(c, err, sizeof err) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * Cache (lock held by the caller as noted)
 * ------------------------------------------------------------------------ */

static void entry_free(centry_t *e)
{
    free(e->v);
    free(e);
}

/* Write lock held. */
static void cache_clear_locked(rbe_t *b)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        centry_t *e = b->buckets[i];
        while (e != NULL) {
            centry_t *next = e->next;
            entry_free(e);
            e = next;
        }
        b->buckets[i] = NULL;
    }
    b->ncached = 0;
}

/* Write lock held. */
static void cache_drop_locked(rbe_t *b, const uint8_t *subject)
{
    centry_t **pp = &b->buckets[bucket_of(subject)];
    while (*pp != NULL) {
        centry_t *e = *pp;
        if (memcmp(e->subject, subject, BG_CONSENT_PSEUDONYM_LEN) == 0) {
            *pp = e->next;
            entry_free(e);
            b->ncached--;
            return;
        }
        pp = &e->next;
    }
}

/* Read lock held. */
static const centry_t *cache_get_locked(const rbe_t *b, const uint8_t *subject)
{
    for (const centry_t *e = b->buckets[bucket_of(subject)]; e != NULL; e = e->next)
        if (memcmp(e->subject, subject, BG_CONSENT_PSEUDONYM_LEN) == 0)
            return e;
    return NULL;
}

/* ------------------------------------------------------------------------
 * Invalidation (subscriber thread)
 * ------------------------------------------------------------------------ */

/* "{pseudonym} {nonce}": drop that subject, then acknowledge NONCE ("-":
 * nobody waits). An unparsable message drops the whole cache. */
static void on_message(void *arg, const char *channel, const char *msg, size_t len)
{
    rbe_t *b = arg;
    uint8_t subject[BG_CONSENT_PSEUDONYM_LEN];
    int whole = len < 2 * BG_CONSENT_PSEUDONYM_LEN ||
                bg_hex_decode(msg, 2 * BG_CONSENT_PSEUDONYM_LEN, subject, sizeof subject, 0) !=
                    BG_CONSENT_PSEUDONYM_LEN;
    pthread_rwlock_wrlock(&b->lock);
    atomic_fetch_add(&b->epoch, 1);
    if (whole)
        cache_clear_locked(b);
    else
        cache_drop_locked(b, subject);
    pthread_rwlock_unlock(&b->lock);
    size_t at = 2 * BG_CONSENT_PSEUDONYM_LEN + 1;
    if (whole || len <= at || (len - at == 1 && msg[at] == '-') || len - at > 64)
        return;
    char ch[96];
    snprintf(ch, sizeof ch, "bg:consent:ack:%.*s", (int)(len - at), msg + at);
    const char *av[3] = {"PUBLISH", ch, "1"};
    char err[256];
    redisReply *rep = bg_redis_cmd(b->r, 3, av, NULL, err, sizeof err);
    if (rep != NULL)
        freeReplyObject(rep);
}

static void on_state(void *arg, int up)
{
    rbe_t *b = arg;
    pthread_rwlock_wrlock(&b->lock);
    atomic_fetch_add(&b->epoch, 1);
    cache_clear_locked(b); /* changes may have been missed while down */
    atomic_store(&b->sub_up, up);
    pthread_rwlock_unlock(&b->lock);
    if (up)
        bg_info("consent registry: subscribed to %s on %s; look-ups answered", CHANNEL,
                b->cfg.display);
    else
        bg_warn("consent registry: lost the subscription to %s; look-ups answer "
                "registry-unavailable until it is back",
                b->cfg.display);
}

/* ------------------------------------------------------------------------
 * Look-up
 * ------------------------------------------------------------------------ */

static int better(const bg_consent_t *a, const bg_consent_t *b)
{
    bg_consent_scope_t sa, sb;
    bg_consent_scope_of(a, &sa);
    bg_consent_scope_of(b, &sb);
    int ra = bg_consent_scope_rank(&sa), rb = bg_consent_scope_rank(&sb);
    if (ra != rb)
        return ra > rb;
    if (a->granted_at != b->granted_at)
        return a->granted_at > b->granted_at;
    return strcmp(a->id, b->id) < 0;
}

/* The same choice as the file backend: the most specific covering consent,
 * else the closest miss. */
static int match(const bg_consent_t *v, size_t n, const bg_consent_query_t *q,
                 bg_consent_match_t *out)
{
    const bg_consent_t *best = NULL, *closest = NULL;
    bg_consent_miss_t deepest = BG_CONSENT_MISS_NO_CONSENT;
    for (size_t i = 0; i < n; i++) {
        bg_consent_scope_t s;
        bg_consent_scope_of(&v[i], &s);
        bg_consent_miss_t m = bg_consent_scope_eval(&s, q);
        if (m == BG_CONSENT_MISS_NONE) {
            if (best == NULL || better(&v[i], best))
                best = &v[i];
        } else if (m > deepest) {
            deepest = m;
            closest = &v[i];
        }
    }
    if (best != NULL) {
        out->consent = *best;
        out->miss = BG_CONSENT_MISS_NONE;
        return 1;
    }
    out->miss = deepest;
    if (closest != NULL && deepest != BG_CONSENT_MISS_SCOPE)
        memcpy(out->miss_id, closest->id, sizeof out->miss_id);
    return 0;
}

/* Every consent of SUBJECT from Redis (one round trip): 0 with *V (malloc'd,
 * NULL when none) and *N, or -1 with ERR. */
static int fetch_subject(rbe_t *b, const uint8_t *subject, bg_consent_t **v, size_t *n, char *err,
                         size_t errcap)
{
    char hex[BG_CONSENT_PSEUDONYM_SIZE], key[96];
    bg_hex_encode(subject, BG_CONSENT_PSEUDONYM_LEN, hex);
    snprintf(key, sizeof key, K_SUBJECT "%s", hex);
    const char *av[5] = {"EVAL", FETCH_LUA, "1", key, K_CONSENT};
    *v = NULL;
    *n = 0;
    redisReply *rep = bg_redis_cmd(b->r, 5, av, NULL, err, errcap);
    if (rep == NULL)
        return -1;
    int rc = 0;
    if (rep->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errcap, "unexpected answer from the store: %s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "not a list");
        rc = -1;
    } else if (rep->elements > 0) {
        *v = calloc(rep->elements, sizeof **v);
        if (*v == NULL) {
            snprintf(err, errcap, "out of memory");
            rc = -1;
        }
        for (size_t i = 0; rc == 0 && i < rep->elements; i++) {
            if (consent_of_hash(rep->element[i], &(*v)[*n]) == 0)
                (*n)++;
            else
                bg_warn("consent registry: skipped a malformed consent of one subject in %s",
                        b->cfg.display);
        }
    }
    freeReplyObject(rep);
    if (rc != 0) {
        free(*v);
        *v = NULL;
        *n = 0;
    }
    return rc;
}

static int rbe_find(bg_consent_backend_t *self, const bg_consent_query_t *q,
                    bg_consent_match_t *out)
{
    rbe_t *b = (rbe_t *)self;
    if (!atomic_load(&b->sub_up)) {
        out->miss = BG_CONSENT_MISS_UNAVAILABLE;
        return -1;
    }
    pthread_rwlock_rdlock(&b->lock);
    const centry_t *e = atomic_load(&b->sub_up) ? cache_get_locked(b, q->pseudonym) : NULL;
    if (e != NULL) {
        int rc = match(e->v, e->n, q, out);
        pthread_rwlock_unlock(&b->lock);
        atomic_fetch_add_explicit(&b->hits, 1, memory_order_relaxed);
        return rc;
    }
    pthread_rwlock_unlock(&b->lock);
    atomic_fetch_add_explicit(&b->misses, 1, memory_order_relaxed);

    unsigned e0 = atomic_load(&b->epoch);
    bg_consent_t *v;
    size_t n;
    char err[512];
    if (key_verified(b, err, sizeof err) != 0 ||
        fetch_subject(b, q->pseudonym, &v, &n, err, sizeof err) != 0) {
        out->miss = BG_CONSENT_MISS_UNAVAILABLE;
        return -1;
    }
    int rc = match(v, n, q, out);
    centry_t *ne = calloc(1, sizeof *ne);
    if (ne == NULL) {
        free(v);
        return rc;
    }
    memcpy(ne->subject, q->pseudonym, BG_CONSENT_PSEUDONYM_LEN);
    ne->v = v; /* ownership passes to the entry */
    ne->n = n;
    pthread_rwlock_wrlock(&b->lock);
    if (b->sub != NULL && atomic_load(&b->epoch) == e0 && atomic_load(&b->sub_up) &&
        cache_get_locked(b, q->pseudonym) == NULL) {
        if (b->ncached >= CACHE_MAX)
            cache_clear_locked(b);
        centry_t **head = &b->buckets[bucket_of(q->pseudonym)];
        ne->next = *head;
        *head = ne;
        b->ncached++;
        ne = NULL;
    }
    pthread_rwlock_unlock(&b->lock);
    if (ne != NULL)
        entry_free(ne); /* raced with a change: not kept */
    return rc;
}

/* ------------------------------------------------------------------------
 * Changes: script + wait for every subscribed instance's ack
 * ------------------------------------------------------------------------ */

typedef struct {
    redisContext *c; /* subscribed to the ack channel; NULL: not waiting */
    char nonce[33];  /* bg_util_random_id: 32 hex + NUL */
} ackwait_t;

/* Subscribe to a fresh ack channel before the change is published. Failing
 * that, the change still goes ahead and is picked up by instances through
 * the invalidation itself (only the wait is lost). */
static void ack_begin(rbe_t *b, ackwait_t *w)
{
    memset(w, 0, sizeof *w);
    bg_util_random_id(w->nonce);
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    redisContext *c = redisConnectWithTimeout(b->cfg.host, b->cfg.port, tv);
    if (c == NULL || c->err) {
        if (c != NULL)
            redisFree(c);
        return;
    }
    redisSetTimeout(c, tv);
    if (b->cfg.password != NULL) {
        redisReply *r = redisCommand(c, "AUTH %s", b->cfg.password);
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r != NULL)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return;
        }
    }
    redisReply *r = redisCommand(c, "SUBSCRIBE bg:consent:ack:%s", w->nonce);
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY;
    if (r != NULL)
        freeReplyObject(r);
    if (!ok) {
        redisFree(c);
        return;
    }
    w->c = c;
}

/* Wait for N acks (the PUBLISH count) for at most ACK_WAIT_MS. Returns how
 * many did not arrive. */
static int ack_wait(ackwait_t *w, long long n)
{
    if (w->c == NULL)
        return n > 0 ? (int)n : 0;
    long long deadline = (long long)bg_util_mono_us() + ACK_WAIT_MS * 1000LL;
    while (n > 0) {
        void *rep = NULL;
        if (redisGetReplyFromReader(w->c, &rep) == REDIS_OK && rep != NULL) {
            redisReply *r = rep;
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                r->element[0]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[0]->str, "message") == 0)
                n--;
            freeReplyObject(r);
            continue;
        }
        long long left = deadline - (long long)bg_util_mono_us();
        if (left <= 0 || w->c->err)
            break;
        struct pollfd pfd = {.fd = w->c->fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(left / 1000) + 1) > 0 && redisBufferRead(w->c) != REDIS_OK)
            break;
    }
    return (int)n;
}

static void ack_end(ackwait_t *w)
{
    if (w->c != NULL)
        redisFree(w->c);
    w->c = NULL;
}

static void ack_report(long long missing)
{
    if (missing > 0)
        bg_warn("consent registry: %lld instance(s) did not confirm the change within %d ms; "
                "they drop their cache when they see it",
                missing, ACK_WAIT_MS);
}

static int rbe_get(bg_consent_backend_t *self, const char *id, bg_consent_t *out)
{
    rbe_t *b = (rbe_t *)self;
    char key[64], err[256];
    snprintf(key, sizeof key, K_CONSENT "%s", id);
    const char *av[2] = {"HGETALL", key};
    redisReply *rep = bg_redis_cmd(b->r, 2, av, NULL, err, sizeof err);
    if (rep == NULL)
        return BG_CONSENT_ERR;
    int rc = consent_of_hash(rep, out) == 0 ? BG_CONSENT_OK : BG_CONSENT_ENOENT;
    freeReplyObject(rep);
    return rc;
}

static int rbe_grant(bg_consent_backend_t *self, const bg_consent_t *c, char *err, size_t errcap)
{
    rbe_t *b = (rbe_t *)self;
    char key[64], skey[96], score[24], msg[128], ga[24], ea[24], sens[2], guard[2];
    ackwait_t w;
    snprintf(key, sizeof key, K_CONSENT "%s", c->id);
    snprintf(skey, sizeof skey, K_SUBJECT "%s", c->subject);
    snprintf(score, sizeof score, "%lld", (long long)c->granted_at);
    snprintf(ga, sizeof ga, "%lld", (long long)c->granted_at);
    snprintf(ea, sizeof ea, "%lld", (long long)c->expires_at);
    snprintf(sens, sizeof sens, "%d", c->sensitive ? 1 : 0);
    snprintf(guard, sizeof guard, "%d", c->guardian ? 1 : 0);
    if (key_verified(b, err, errcap) != 0)
        return BG_CONSENT_EKEY;
    ack_begin(b, &w);
    snprintf(msg, sizeof msg, "%s %s", c->subject, w.c != NULL ? w.nonce : "-");
    const char *av[] = {"EVAL",
                        GRANT_LUA,
                        "3",
                        key,
                        skey,
                        K_ALL,
                        c->id,
                        score,
                        CHANNEL,
                        msg,
                        "id",
                        c->id,
                        "subject",
                        c->subject,
                        "recipient",
                        c->recipient,
                        "purpose",
                        c->purpose,
                        "region",
                        c->region,
                        "sensitive",
                        sens,
                        "guardian",
                        guard,
                        "granted_at",
                        ga,
                        "expires_at",
                        ea,
                        "withdrawn_at",
                        "0",
                        "evidence",
                        c->evidence,
                        "recorded_by",
                        c->recorded_by};
    redisReply *rep = bg_redis_cmd(b->r, (int)(sizeof av / sizeof av[0]), av, NULL, err, errcap);
    int rc = BG_CONSENT_OK;
    if (rep == NULL) {
        rc = BG_CONSENT_ERR; /* ERR names the store */
    } else if (rep->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errcap, "the store refused the grant: %s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected answer");
        rc = BG_CONSENT_ERR;
    } else if (rep->integer < 0) {
        rc = BG_CONSENT_EEXIST;
    } else {
        ack_report(ack_wait(&w, rep->integer));
    }
    if (rep != NULL)
        freeReplyObject(rep);
    ack_end(&w);
    return rc;
}

static int rbe_withdraw(bg_consent_backend_t *self, const char *id, int64_t at, const char *by,
                        bg_consent_t *out, char *err, size_t errcap)
{
    rbe_t *b = (rbe_t *)self;
    char key[64], ats[24];
    ackwait_t w;
    snprintf(key, sizeof key, K_CONSENT "%s", id);
    snprintf(ats, sizeof ats, "%lld", (long long)at);
    ack_begin(b, &w);
    const char *av[] = {"EVAL", WITHDRAW_LUA, "1",     key,
                        ats,    by,           CHANNEL, w.c != NULL ? w.nonce : "-"};
    redisReply *rep = bg_redis_cmd(b->r, (int)(sizeof av / sizeof av[0]), av, NULL, err, errcap);
    int rc = BG_CONSENT_OK;
    if (rep == NULL) {
        rc = BG_CONSENT_ERR;
    } else if (rep->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errcap, "the store refused the withdrawal: %s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected answer");
        rc = BG_CONSENT_ERR;
    } else if (rep->integer == -1) {
        snprintf(err, errcap, "no consent %s", id);
        rc = BG_CONSENT_ENOENT;
    } else if (rep->integer == -2) {
        snprintf(err, errcap, "consent %s is already withdrawn", id);
        rc = BG_CONSENT_EALREADY;
    } else if (rep->integer == -3) {
        snprintf(err, errcap, "withdrawal time is before the grant");
        rc = BG_CONSENT_EINVAL;
    } else {
        ack_report(ack_wait(&w, rep->integer));
    }
    if (rep != NULL)
        freeReplyObject(rep);
    ack_end(&w);
    if (rc == BG_CONSENT_OK && out != NULL && rbe_get(self, id, out) != BG_CONSENT_OK) {
        snprintf(err, errcap, "withdrawn, but the store did not answer the read-back");
        rc = BG_CONSENT_ERR;
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * Listing, maintenance
 * ------------------------------------------------------------------------ */

static int rbe_list(bg_consent_backend_t *self, const uint8_t *pseudonym, bg_consent_each_fn fn,
                    void *arg, char *err, size_t errcap)
{
    rbe_t *b = (rbe_t *)self;
    if (pseudonym != NULL) {
        bg_consent_t *v;
        size_t n;
        if (fetch_subject(b, pseudonym, &v, &n, err, errcap) != 0)
            return BG_CONSENT_ERR;
        for (size_t i = 0; i < n; i++)
            if (fn(arg, &v[i]) != 0)
                break;
        free(v);
        return BG_CONSENT_OK;
    }
    const char *av[4] = {"ZRANGE", K_ALL, "0", "-1"};
    redisReply *ids = bg_redis_cmd(b->r, 4, av, NULL, err, errcap);
    if (ids == NULL)
        return BG_CONSENT_ERR;
    /* The consents in pipelines of LIST_BATCH HGETALLs: one round trip per
     * batch, not per consent (a registry of 100,000 consents is 200 round
     * trips). */
    enum { LIST_BATCH = 512 };
    int rc = BG_CONSENT_OK, stop = 0;
    int argc[LIST_BATCH];
    char(*keys)[64] = calloc(LIST_BATCH, sizeof *keys);
    const char *(*argv)[2] = calloc(LIST_BATCH, sizeof *argv);
    const char *const *argp[LIST_BATCH];
    redisReply *reps[LIST_BATCH];
    if (keys == NULL || argv == NULL) {
        snprintf(err, errcap, "out of memory");
        rc = BG_CONSENT_ERR;
    }
    size_t total = ids->type == REDIS_REPLY_ARRAY ? ids->elements : 0;
    for (size_t i = 0; rc == BG_CONSENT_OK && !stop && i < total;) {
        int n = 0;
        for (; i < total && n < LIST_BATCH; i++) {
            const redisReply *id = ids->element[i];
            if (id->type != REDIS_REPLY_STRING ||
                (size_t)snprintf(keys[n], sizeof keys[n], K_CONSENT "%s", id->str) >=
                    sizeof keys[n])
                continue;
            argv[n][0] = "HGETALL";
            argv[n][1] = keys[n];
            argp[n] = argv[n];
            argc[n] = 2;
            n++;
        }
        if (n > 0 && bg_redis_pipeline(b->r, n, argc, argp, NULL, reps, err, errcap) != 0) {
            snprintf(err, errcap, "%s: lost the connection while listing", b->cfg.display);
            rc = BG_CONSENT_ERR;
            break;
        }
        for (int k = 0; k < n; k++) {
            bg_consent_t c;
            if (!stop && consent_of_hash(reps[k], &c) == 0 && fn(arg, &c) != 0)
                stop = 1;
            freeReplyObject(reps[k]);
        }
    }
    free(keys);
    free(argv);
    freeReplyObject(ids);
    return rc;
}

static int rbe_refresh(bg_consent_backend_t *self, char *err, size_t errcap)
{
    rbe_t *b = (rbe_t *)self;
    pthread_rwlock_wrlock(&b->lock);
    atomic_fetch_add(&b->epoch, 1);
    cache_clear_locked(b);
    pthread_rwlock_unlock(&b->lock);
    return BG_CONSENT_OK;
}

static int rbe_compact(bg_consent_backend_t *self, char *err, size_t errcap)
{
    return BG_CONSENT_OK; /* nothing to rewrite: Redis persists the live state */
}

static int rbe_health(bg_consent_backend_t *self, char *buf, size_t cap)
{
    rbe_t *b = (rbe_t *)self;
    if (b->sub == NULL) { /* a CLI handle: only the command connection */
        snprintf(buf, cap, "%s", bg_redis_up(b->r) ? "ok" : "shared store unreachable");
        return bg_redis_up(b->r) ? 0 : -1;
    }
    if (atomic_load(&b->sub_up) && !bg_redis_up(b->r)) {
        /* Probe (within the backoff) so readiness recovers without traffic. */
        char err[256];
        const char *av[1] = {"PING"};
        redisReply *rep = bg_redis_cmd(b->r, 1, av, NULL, err, sizeof err);
        if (rep != NULL)
            freeReplyObject(rep);
    }
    char kerr[512];
    if (atomic_load(&b->sub_up) && key_verified(b, kerr, sizeof kerr) != 0 && bg_redis_up(b->r)) {
        snprintf(buf, cap, "%s: consent look-ups answer registry-unavailable", kerr);
        return -1;
    }
    if (!atomic_load(&b->sub_up) || !bg_redis_up(b->r)) {
        snprintf(buf, cap,
                 "shared store %s unreachable: consent look-ups answer registry-unavailable",
                 b->cfg.display);
        return -1;
    }
    snprintf(buf, cap, "ok");
    return 0;
}

static size_t rbe_count(bg_consent_backend_t *self)
{
    rbe_t *b = (rbe_t *)self;
    char err[256];
    const char *av[2] = {"ZCARD", K_ALL};
    redisReply *rep = bg_redis_cmd(b->r, 2, av, NULL, err, sizeof err);
    size_t n = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? (size_t)rep->integer : 0;
    if (rep != NULL)
        freeReplyObject(rep);
    return n;
}

static void rbe_close(bg_consent_backend_t *self)
{
    rbe_t *b = (rbe_t *)self;
    if (b == NULL)
        return;
    bg_redis_sub_stop(b->sub); /* first: its callbacks use the rest */
    bg_redis_free(b->r);
    cache_clear_locked(b);
    pthread_rwlock_destroy(&b->lock);
    bg_redis_cfg_clear(&b->cfg);
    free(b);
}

/* Compare (or record, on a new store) the subject key's check value. */
static int check_key(rbe_t *b, const char *key_check, char *err, size_t errcap)
{
    const char *av[4] = {"SET", K_KEYCHECK, key_check, "NX"};
    redisReply *rep = bg_redis_cmd(b->r, 4, av, NULL, err, errcap);
    if (rep == NULL)
        return -1;
    freeReplyObject(rep);
    const char *gv[2] = {"GET", K_KEYCHECK};
    rep = bg_redis_cmd(b->r, 2, gv, NULL, err, errcap);
    if (rep == NULL)
        return -1;
    int ok = rep->type == REDIS_REPLY_STRING && strcmp(rep->str, key_check) == 0;
    freeReplyObject(rep);
    if (!ok)
        snprintf(err, errcap,
                 "the subject key does not match the registry in %s (key check differs)",
                 b->cfg.display);
    return ok ? 0 : -1;
}

bg_consent_backend_t *bg_consent_redis_open(const struct bg_redis_cfg *cfg, const char *key_check,
                                            int subscribe, char *err, size_t errcap)
{
    rbe_t *b = calloc(1, sizeof *b);
    if (b == NULL || bg_redis_cfg_copy(&b->cfg, cfg) != 0) {
        snprintf(err, errcap, "out of memory");
        free(b);
        return NULL;
    }
    b->be = (bg_consent_backend_t){
        .name = "redis",
        .find = rbe_find,
        .grant = rbe_grant,
        .withdraw = rbe_withdraw,
        .get = rbe_get,
        .list = rbe_list,
        .refresh = rbe_refresh,
        .compact = rbe_compact,
        .health = rbe_health,
        .count = rbe_count,
        .close = rbe_close,
    };
    pthread_rwlock_init(&b->lock, NULL);
    b->r = bg_redis_new(cfg);
    if (b->r == NULL) {
        snprintf(err, errcap, "out of memory");
        rbe_close(&b->be);
        return NULL;
    }
    /* Check the key when the store is reachable now; a daemon that starts
     * while Redis is down still starts (look-ups fail closed until it is up
     * and the key matched: key_verified), a CLI fails. */
    if (key_check != NULL) {
        char kerr[512];
        snprintf(b->key_check, sizeof b->key_check, "%s", key_check);
        int rc = key_verified(b, kerr, sizeof kerr);
        if (rc != 0 && (!subscribe || bg_redis_up(b->r))) {
            snprintf(err, errcap, "%s", kerr);
            rbe_close(&b->be);
            return NULL;
        }
    }
    if (subscribe) {
        const char *ch[1] = {CHANNEL};
        b->sub = bg_redis_sub_start(cfg, ch, 1, on_message, on_state, b, err, errcap);
        if (b->sub == NULL) {
            rbe_close(&b->be);
            return NULL;
        }
        /* A reload publishes this registry as soon as it returns: wait (a
         * few ms) for the subscription so requests after a reload are not
         * answered registry-unavailable meanwhile. Not when Redis is down. */
        int tmo = cfg->timeout_ms > 0 ? cfg->timeout_ms : 500;
        for (int i = 0; i < tmo && bg_redis_up(b->r) && !atomic_load(&b->sub_up); i++)
            poll(NULL, 0, 1);
    } else {
        atomic_store(&b->sub_up, 1); /* a CLI: no cache kept between calls */
    }
    return &b->be;
}
