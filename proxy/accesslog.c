/*
 * The access log (see accesslog.h): lines formatted on the workers, one
 * pending buffer under a mutex, one writer thread that owns the file.
 */
#include "proxy/accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "inspect/redact.h"

#define ACCESSLOG_FLUSH_MS 200
#define ACCESSLOG_WAKE_BYTES (64 * 1024)  /* wake the writer at once above this */
#define ACCESSLOG_MAX_PENDING (16u << 20) /* drop lines above this (disk stalled) */

struct bg_accesslog {
    char *path;
    int fd; /* writer thread only (and open/close) */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bg_sbuf_t pending; /* under mu */
    int reopen;        /* under mu: reopen requested */
    int stop;          /* under mu */
    uint64_t dropped;  /* atomic */
};

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Write N bytes of P to FD, retrying short writes; lines that cannot be
 * written are counted as dropped (one warning per failure run). */
static void write_all(bg_accesslog_t *l, const char *p, size_t n)
{
    static int warned;
    while (n > 0) {
        ssize_t w = write(l->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!warned)
                bg_error("access log %s: write failed: %s; lines dropped", l->path,
                         strerror(errno));
            warned = 1;
            /* Count the lines lost (whole lines only reach here). */
            uint64_t lines = 0;
            for (size_t i = 0; i < n; i++)
                lines += p[i] == '\n';
            __atomic_add_fetch(&l->dropped, lines, __ATOMIC_RELAXED);
            return;
        }
        p += w;
        n -= (size_t)w;
    }
    warned = 0;
}

static void do_reopen(bg_accesslog_t *l)
{
    int fd = open_file(l->path);
    if (fd < 0) {
        bg_error("cannot reopen the access log %s: %s; still writing to the old one", l->path,
                 strerror(errno));
        return;
    }
    close(l->fd);
    l->fd = fd;
    bg_info("access log reopened");
}

/* The writer: every ACCESSLOG_FLUSH_MS (sooner above
 * ACCESSLOG_WAKE_BYTES), swap the pending buffer out under the lock and
 * write it without. Exits once stopped and nothing is pending. */
static void *writer_main(void *arg)
{
    bg_accesslog_t *l = arg;
    bg_sbuf_t mine = {0};
    pthread_mutex_lock(&l->mu);
    for (;;) {
        /* Batch: one write per period, or at once when a lot is pending,
         * a reopen is asked for or the log is closing. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += ACCESSLOG_FLUSH_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (l->pending.n < ACCESSLOG_WAKE_BYTES && !l->reopen && !l->stop)
            if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT)
                break;
        bg_sbuf_t t = l->pending;
        l->pending = mine;
        l->pending.n = 0;
        mine = t;
        int reopen = l->reopen, stop = l->stop;
        l->reopen = 0;
        pthread_mutex_unlock(&l->mu);
        if (mine.n > 0)
            write_all(l, mine.p, mine.n);
        mine.n = 0;
        if (reopen)
            do_reopen(l);
        pthread_mutex_lock(&l->mu);
        if (stop && l->pending.n == 0)
            break;
    }
    pthread_mutex_unlock(&l->mu);
    bg_sbuf_free(&mine);
    return NULL;
}

bg_accesslog_t *bg_accesslog_open(const char *path, char *err, size_t errlen)
{
    bg_accesslog_t *l = calloc(1, sizeof *l);
    if (l == NULL || (l->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    l->fd = open_file(path);
    if (l->fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->thread, NULL, writer_main, l) != 0) {
        snprintf(err, errlen, "cannot start the access log writer");
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        close(l->fd);
        goto fail;
    }
    return l;
fail:
    if (l != NULL)
        free(l->path);
    free(l);
    return NULL;
}

/* The method as records write it (inspect/redact.h). */
static void put_method(bg_sbuf_t *b, const char *m, size_t n)
{
    if (m == NULL) {
        bg_sbuf_adds(b, "null");
        return;
    }
    size_t rn;
    const char *r = bg_redact_method(m, n, &rn);
    bg_sbuf_json_str(b, r, rn);
}

/* The line for A (with its newline) into B. */
static void format_line(bg_sbuf_t *b, const bg_access_t *a)
{
    char ts[40], path[2048];
    bg_util_format_time(bg_util_wall_ms(), ts, sizeof ts);
    bg_sbuf_adds(b, "{\"time\":\"");
    bg_sbuf_adds(b, ts);
    bg_sbuf_adds(b, "\"");
    bg_sbuf_json_kv(b, 0, "id", a->id != NULL ? a->id : "");
    bg_sbuf_adds(b, ",\"client\":");
    bg_sbuf_json_cstr(b, a->client);
    bg_sbuf_adds(b, ",\"method\":");
    put_method(b, a->method, a->method_len);
    bg_sbuf_adds(b, ",\"route\":");
    bg_sbuf_json_cstr(b, a->route);
    bg_sbuf_adds(b, ",\"path\":");
    if (a->path != NULL) {
        /* Values out, as in the audit record (inspect/redact.h). */
        size_t o = bg_redact_target(a->path, a->path_len, path, sizeof path);
        bg_sbuf_json_str(b, path, o);
    } else {
        bg_sbuf_adds(b, "null");
    }
    bg_sbuf_adds(b, ",\"status\":");
    bg_sbuf_addi(b, a->status);
    bg_sbuf_adds(b, ",\"outcome\":");
    bg_sbuf_json_cstr(b, a->outcome);
    bg_sbuf_adds(b, ",\"result\":");
    bg_sbuf_json_cstr(b, a->result);
    bg_sbuf_adds(b, ",\"bytes_in\":");
    bg_sbuf_addu(b, a->bytes_in);
    bg_sbuf_adds(b, ",\"bytes_out\":");
    bg_sbuf_addu(b, a->bytes_out);
    bg_sbuf_adds(b, ",\"upstream_ms\":");
    if (a->upstream_us > 0)
        bg_sbuf_addms(b, a->upstream_us);
    else
        bg_sbuf_adds(b, "null");
    bg_sbuf_adds(b, ",\"total_ms\":");
    bg_sbuf_addms(b, a->total_us);
    bg_sbuf_adds(b, "}\n");
}

void bg_accesslog_write(bg_accesslog_t *l, const bg_access_t *a)
{
    if (l == NULL)
        return;
    bg_sbuf_t line = {0};
    format_line(&line, a);
    if (line.failed) {
        __atomic_add_fetch(&l->dropped, 1, __ATOMIC_RELAXED);
        bg_sbuf_free(&line);
        return;
    }
    pthread_mutex_lock(&l->mu);
    if (l->pending.n + line.n > ACCESSLOG_MAX_PENDING) {
        __atomic_add_fetch(&l->dropped, 1, __ATOMIC_RELAXED);
    } else {
        size_t before = l->pending.n;
        bg_sbuf_add(&l->pending, line.p, line.n);
        if (l->pending.failed) { /* out of memory: keep what was there */
            l->pending.failed = 0;
            l->pending.n = before;
            __atomic_add_fetch(&l->dropped, 1, __ATOMIC_RELAXED);
        } else if (before < ACCESSLOG_WAKE_BYTES && l->pending.n >= ACCESSLOG_WAKE_BYTES) {
            pthread_cond_signal(&l->cv);
        }
    }
    pthread_mutex_unlock(&l->mu);
    bg_sbuf_free(&line);
}

void bg_accesslog_reopen(bg_accesslog_t *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->reopen = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

uint64_t bg_accesslog_dropped(bg_accesslog_t *l)
{
    return l != NULL ? __atomic_load_n(&l->dropped, __ATOMIC_RELAXED) : 0;
}

void bg_accesslog_close(bg_accesslog_t *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    close(l->fd);
    bg_sbuf_free(&l->pending);
    free(l->path);
    free(l);
}
