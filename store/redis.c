#include "store/redis.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define DEFAULT_TIMEOUT_MS 500

/* ------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------ */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int bg_redis_parse_url(const char *url, bg_redis_cfg_t *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (url == NULL || strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errcap, "must start with redis:// (rediss:// needs hiredis >= 1.0)");
        return -1;
    }
    const char *h = url + 8;
    if (strchr(h, '@') != NULL) {
        snprintf(err, errcap,
                 "no user or password in the URL: give \"password\" as "
                 "{\"env\": NAME} or {\"file\": PATH}");
        return -1;
    }
    size_t hl = strcspn(h, ":/");
    if (hl == 0 || hl >= sizeof out->host) {
        snprintf(err, errcap, "the URL names no host");
        return -1;
    }
    for (size_t i = 0; i < hl; i++) {
        if (h[i] <= 0x20 || h[i] >= 0x7f) { /* it goes into log lines */
            snprintf(err, errcap, "the host in the URL has a space or a non-ASCII byte");
            return -1;
        }
    }
    memcpy(out->host, h, hl);
    out->host[hl] = '\0';
    const char *p = h + hl;
    if (*p == ':') {
        char *end;
        errno = 0;
        /* digits only: strtol would also take " 7000" and "+7000" */
        long port = is_digit(p[1]) ? strtol(p + 1, &end, 10) : 0;
        if (!is_digit(p[1]) || errno != 0 || port < 1 || port > 65535 ||
            (*end != '\0' && *end != '/')) {
            snprintf(err, errcap, "bad port in the URL");
            return -1;
        }
        out->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        char *end;
        errno = 0;
        long db = is_digit(p[1]) ? strtol(p + 1, &end, 10) : -1;
        if (db < 0 || errno != 0 || *end != '\0' || db > 1000000) {
            snprintf(err, errcap, "bad database number in the URL");
            return -1;
        }
        out->db = (int)db;
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        snprintf(err, errcap, "unexpected text after the host");
        return -1;
    }
    snprintf(out->display, sizeof out->display, "redis://%s:%d/%d", out->host, out->port, out->db);
    return 0;
}

int bg_redis_cfg_copy(bg_redis_cfg_t *out, const bg_redis_cfg_t *in)
{
    *out = *in;
    out->password = NULL;
    if (in->password != NULL && (out->password = strdup(in->password)) == NULL)
        return -1;
    return 0;
}

void bg_redis_cfg_clear(bg_redis_cfg_t *c)
{
    if (c->password != NULL) {
        bg_util_wipe(c->password, strlen(c->password));
        free(c->password);
        c->password = NULL;
    }
}

static struct timeval tv_of(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/*
 * Connect to CFG, AUTH and SELECT. The context, or NULL with ERR filled.
 * Blocks for at most about three timeouts.
 */
static redisContext *connect_to(const bg_redis_cfg_t *cfg, char *err, size_t errcap)
{
    int tmo = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    redisContext *c = redisConnectWithTimeout(cfg->host, cfg->port, tv_of(tmo));
    if (c == NULL) {
        snprintf(err, errcap, "%s: out of memory", cfg->display);
        return NULL;
    }
    if (c->err) {
        snprintf(err, errcap, "%s: %s", cfg->display, c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv_of(tmo));
    redisEnableKeepAlive(c);
    if (cfg->password != NULL) {
        const char *av[2] = {"AUTH", cfg->password};
        redisReply *r = redisCommandArgv(c, 2, av, NULL);
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (!ok)
            snprintf(err, errcap, "%s: AUTH failed: %s", cfg->display,
                     r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        if (r != NULL)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    if (cfg->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", cfg->db);
        const char *av[2] = {"SELECT", db};
        redisReply *r = redisCommandArgv(c, 2, av, NULL);
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (!ok)
            snprintf(err, errcap, "%s: SELECT failed: %s", cfg->display,
                     r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        if (r != NULL)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* ------------------------------------------------------------------------
 * Command connection
 * ------------------------------------------------------------------------ */

struct bg_redis {
    bg_redis_cfg_t cfg;
    pthread_mutex_t lock; /* guards everything below */
    redisContext *c;      /* NULL: not connected */
    long long retry_at_us;
    int backoff_ms;
    char last_err[640];
    atomic_int up;
};

bg_redis_t *bg_redis_new(const bg_redis_cfg_t *cfg)
{
    bg_redis_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    if (bg_redis_cfg_copy(&r->cfg, cfg) != 0) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    atomic_store(&r->up, 1);
    return r;
}

void bg_redis_free(bg_redis_t *r)
{
    if (r == NULL)
        return;
    if (r->c != NULL)
        redisFree(r->c);
    pthread_mutex_destroy(&r->lock);
    bg_redis_cfg_clear(&r->cfg);
    free(r);
}

int bg_redis_up(bg_redis_t *r)
{
    return atomic_load(&r->up);
}

/* The connection broke or could not be made (lock held): drop it, log the
 * first failure of a run, and wait the backoff before the next try. */
static void mark_down(bg_redis_t *r, const char *why)
{
    if (r->c != NULL) {
        redisFree(r->c);
        r->c = NULL;
    }
    if (atomic_load(&r->up) || strcmp(r->last_err, why) != 0)
        bg_warn("store: %s unreachable: %s (retrying with backoff)", r->cfg.display, why);
    snprintf(r->last_err, sizeof r->last_err, "%s", why);
    atomic_store(&r->up, 0);
    r->backoff_ms = r->backoff_ms == 0 ? BACKOFF_MIN_MS : r->backoff_ms * 2;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    r->retry_at_us = (long long)bg_util_mono_us() + (long long)r->backoff_ms * 1000;
}

int bg_redis_pipeline(bg_redis_t *r, int n, const int *argc, const char *const *const *argv,
                      const size_t *const *lens, redisReply **replies, char *err, size_t errcap)
{
    int i, got = 0;
    pthread_mutex_lock(&r->lock);
    if (r->c != NULL) {
        /* An idle command connection never has anything to read: readable
         * (or hung up) means the server closed it (a restart). Reconnect now
         * rather than fail one command, and never resend a command. */
        struct pollfd pfd = {.fd = r->c->fd, .events = POLLIN | POLLRDHUP};
        if (poll(&pfd, 1, 0) != 0) {
            redisFree(r->c);
            r->c = NULL;
            r->retry_at_us = 0;
        }
    }
    if (r->c == NULL) {
        if ((long long)bg_util_mono_us() < r->retry_at_us) {
            snprintf(err, errcap, "%s unreachable: %s", r->cfg.display, r->last_err);
            pthread_mutex_unlock(&r->lock);
            return -1;
        }
        char why[640];
        r->c = connect_to(&r->cfg, why, sizeof why);
        if (r->c == NULL) {
            mark_down(r, why);
            snprintf(err, errcap, "%s", why);
            pthread_mutex_unlock(&r->lock);
            return -1;
        }
    }
    for (i = 0; i < n; i++)
        redisAppendCommandArgv(r->c, argc[i], (const char **)argv[i],
                               lens != NULL ? lens[i] : NULL);
    for (got = 0; got < n; got++) {
        void *rep = NULL;
        if (redisGetReply(r->c, &rep) != REDIS_OK || rep == NULL)
            break;
        replies[got] = rep;
    }
    if (got < n) {
        char why[640];
        snprintf(why, sizeof why, "%s", r->c->errstr[0] != '\0' ? r->c->errstr : "connection lost");
        for (i = 0; i < got; i++)
            freeReplyObject(replies[i]);
        mark_down(r, why);
        snprintf(err, errcap, "%s: %s", r->cfg.display, why);
        pthread_mutex_unlock(&r->lock);
        return -1;
    }
    if (!atomic_load(&r->up))
        bg_info("store: %s reachable again", r->cfg.display);
    atomic_store(&r->up, 1);
    r->backoff_ms = 0;
    r->last_err[0] = '\0';
    pthread_mutex_unlock(&r->lock);
    return 0;
}

redisReply *bg_redis_cmd(bg_redis_t *r, int argc, const char *const *argv, const size_t *lens,
                         char *err, size_t errcap)
{
    redisReply *rep = NULL;
    const char *const *av[1] = {argv};
    const size_t *lv[1] = {lens};
    if (bg_redis_pipeline(r, 1, &argc, av, lens != NULL ? lv : NULL, &rep, err, errcap) != 0)
        return NULL;
    return rep;
}

/* ------------------------------------------------------------------------
 * Subscriber
 * ------------------------------------------------------------------------ */

struct bg_redis_sub {
    bg_redis_cfg_t cfg;
    char **channels;
    int nchannels;
    bg_redis_msg_fn on_msg;
    bg_redis_state_fn on_state;
    void *arg;
    pthread_t thread;
    atomic_int stop;
};

/* Sleep MS in short steps, returning early when asked to stop. */
static void sub_sleep(bg_redis_sub_t *s, int ms)
{
    while (ms > 0 && !atomic_load(&s->stop)) {
        int step = ms < 50 ? ms : 50;
        poll(NULL, 0, step);
        ms -= step;
    }
}

/* One reply on the subscribed connection: a message (ON_MSG), a
 * subscription confirmation (ON_STATE up once all are confirmed) or a pong. */
static void sub_handle(bg_redis_sub_t *s, redisReply *r, int *confirmed, long long *last_rx)
{
    *last_rx = (long long)bg_util_mono_us();
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "message") == 0 && r->elements == 3 &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        s->on_msg(s->arg, r->element[1]->str, r->element[2]->str, r->element[2]->len);
    } else if (strcmp(kind, "subscribe") == 0) {
        if (++*confirmed == s->nchannels)
            s->on_state(s->arg, 1);
    }
}

static void *sub_main(void *arg)
{
    bg_redis_sub_t *s = arg;
    int backoff = 0, logged = 0;
    while (!atomic_load(&s->stop)) {
        char why[640];
        redisContext *c = connect_to(&s->cfg, why, sizeof why);
        if (c == NULL) {
            if (!logged)
                bg_warn("store: subscriber: %s (retrying with backoff)", why);
            logged = 1;
            backoff = backoff == 0 ? BACKOFF_MIN_MS : backoff * 2;
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
            sub_sleep(s, backoff);
            continue;
        }
        const char **av = calloc((size_t)s->nchannels + 1, sizeof *av);
        if (av == NULL) {
            redisFree(c);
            sub_sleep(s, BACKOFF_MAX_MS);
            continue;
        }
        av[0] = "SUBSCRIBE";
        for (int i = 0; i < s->nchannels; i++)
            av[i + 1] = s->channels[i];
        redisAppendCommandArgv(c, s->nchannels + 1, av, NULL);
        free(av);
        int confirmed = 0, done = 0;
        long long last_rx = (long long)bg_util_mono_us(), last_ping = last_rx;
        while (!done && !atomic_load(&s->stop)) {
            int wdone = 0;
            if (redisBufferWrite(c, &wdone) != REDIS_OK)
                break;
            void *rep = NULL;
            while (redisGetReplyFromReader(c, &rep) == REDIS_OK && rep != NULL) {
                int was = confirmed;
                sub_handle(s, rep, &confirmed, &last_rx);
                freeReplyObject(rep);
                rep = NULL;
                if (was < s->nchannels && confirmed == s->nchannels) {
                    if (logged)
                        bg_info("store: subscriber: %s reachable again", s->cfg.display);
                    logged = 0;
                    backoff = 0;
                }
            }
            if (c->err)
                break;
            long long now = (long long)bg_util_mono_us();
            if (now - last_ping > 1000000) {
                const char *ping[1] = {"PING"};
                redisAppendCommandArgv(c, 1, ping, NULL);
                last_ping = now;
            }
            if (now - last_rx > 3000000) {
                snprintf(why, sizeof why, "no answer to PING for 3 s");
                done = 1;
                break;
            }
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            int pr = poll(&pfd, 1, 100);
            if (pr > 0 && redisBufferRead(c) != REDIS_OK)
                break;
        }
        if (!atomic_load(&s->stop)) {
            if (!done)
                snprintf(why, sizeof why, "%s",
                         c->errstr[0] != '\0' ? c->errstr : "connection lost");
            bg_warn("store: subscriber: %s: %s (cache dropped, retrying)", s->cfg.display, why);
            logged = 1;
        }
        redisFree(c);
        s->on_state(s->arg, 0);
        backoff = backoff == 0 ? BACKOFF_MIN_MS : backoff * 2;
        if (backoff > BACKOFF_MAX_MS)
            backoff = BACKOFF_MAX_MS;
        sub_sleep(s, backoff);
    }
    return NULL;
}

bg_redis_sub_t *bg_redis_sub_start(const bg_redis_cfg_t *cfg, const char *const *channels,
                                   int nchannels, bg_redis_msg_fn on_msg,
                                   bg_redis_state_fn on_state, void *arg, char *err, size_t errcap)
{
    bg_redis_sub_t *s = calloc(1, sizeof *s);
    if (s == NULL || bg_redis_cfg_copy(&s->cfg, cfg) != 0 ||
        (s->channels = calloc((size_t)nchannels, sizeof *s->channels)) == NULL) {
        snprintf(err, errcap, "out of memory");
        if (s != NULL)
            bg_redis_cfg_clear(&s->cfg);
        free(s);
        return NULL;
    }
    s->nchannels = nchannels;
    for (int i = 0; i < nchannels; i++) {
        if ((s->channels[i] = strdup(channels[i])) == NULL) {
            snprintf(err, errcap, "out of memory");
            goto fail;
        }
    }
    s->on_msg = on_msg;
    s->on_state = on_state;
    s->arg = arg;
    int rc = pthread_create(&s->thread, NULL, sub_main, s);
    if (rc != 0) {
        snprintf(err, errcap, "cannot start the subscriber thread: %s", strerror(rc));
        goto fail;
    }
    return s;
fail:
    for (int i = 0; i < nchannels; i++)
        free(s->channels[i]);
    free(s->channels);
    bg_redis_cfg_clear(&s->cfg);
    free(s);
    return NULL;
}

void bg_redis_sub_stop(bg_redis_sub_t *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < s->nchannels; i++)
        free(s->channels[i]);
    free(s->channels);
    bg_redis_cfg_clear(&s->cfg);
    free(s);
}
