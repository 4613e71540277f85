/*
 * Audit writer: one thread owns the files; worker threads queue serialized
 * records (audit/audit_client.c); the writer commits everything queued as
 * one write + one fdatasync (group commit) and posts completions back to
 * each worker's event_base through an eventfd. This file is the writer's
 * side: its files and rotation, the commit, retention, the thread, and
 * open / close / stats; recovery of the newest file at open is
 * audit/audit_recover.c. What they share: audit/audit_int.h.
 *
 * Lock order: audit->lock and client->lock are never held together;
 * audit->stats_lock is a leaf.
 *
 * Data layout of a record line and hashing: audit/chain.h. Durability,
 * rotation, retention and repair: docs/audit.md.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define DEFAULT_ROTATE_BYTES (256ull * 1024 * 1024)
#define DEFAULT_RETENTION_DAYS 1095u
#define DEFAULT_RELAXED_MS 200u
#define DEFAULT_CKPT_EVERY 1000u
#define DEFAULT_CKPT_SECONDS 60u
#define DEFAULT_MAX_QUEUE (64u * 1024 * 1024)
#define DEFAULT_MAX_RECORD (1024u * 1024)

#define BATCH_MAX_RECORDS 8192
#define BATCH_MAX_BYTES (16u * 1024 * 1024)
#define RETRY_MS 1000 /* internal records after a failed commit */
#define RETENTION_EVERY_MS (3600u * 1000)
#define ERROR_LOG_EVERY_MS 10000
/* Hysteresis of the "writable" state (/readyz): after a failed write it
 * turns back to writable only once HEALTHY_HOLD_MS have passed without
 * another failure, so a nearly full disk on which one small commit fits
 * and the next does not is "not writable", not flapping between the two
 * within milliseconds. */
#define HEALTHY_HOLD_MS 500
/* bg_audit_probe: free space that counts as writable again (a margin
 * above the odd record), the probe file's size */
#define PROBE_FREE_BYTES (256u * 1024)
#define PROBE_BYTES 4096

const uint64_t bg_audit_fsync_bounds_us[BG_AUDIT_FSYNC_BUCKETS] = {
    50,    100,   250,    500,    1000,   2000,    5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 5000000, UINT64_MAX};

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static uint64_t wall_ms(const bg_audit_t *a)
{
    return a->clock_ms != NULL ? a->clock_ms(a->clock_arg) : bg_util_wall_ms();
}

/* Contract: audit/audit_int.h. */
void bg_audit_now_string(const bg_audit_t *a, char *out, size_t cap)
{
    bg_util_format_time(wall_ms(a), out, cap);
}

/* Insert a formatted members string at position AT (p->n = append). */
int bg_audit_pending_add(pending_t *p, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 8;
        char **ni = realloc(p->items, nc * sizeof *ni);
        if (ni == NULL) {
            free(s);
            return -1;
        }
        p->items = ni;
        p->cap = nc;
    }
    if (at > p->n)
        at = p->n;
    memmove(p->items + at + 1, p->items + at, (p->n - at) * sizeof *p->items);
    p->items[at] = s;
    p->n++;
    return 0;
}

static void pending_truncate(pending_t *p, size_t n)
{
    while (p->n > n)
        free(p->items[--p->n]);
}

static void pending_free(pending_t *p)
{
    pending_truncate(p, 0);
    free(p->items);
    p->items = NULL;
    p->cap = 0;
}

static void set_error(bg_audit_t *a, const char *reason)
{
    uint64_t now = bg_util_mono_us();
    pthread_mutex_lock(&a->stats_lock);
    int was_healthy = a->st.healthy;
    a->st.healthy = 0;
    a->last_fail_mono = now;
    snprintf(a->st.last_error, sizeof a->st.last_error, "%s", reason);
    a->st.last_error_ms = wall_ms(a);
    pthread_mutex_unlock(&a->stats_lock);
    a->errors_since_log++;
    if (was_healthy || now - a->last_error_log_mono >= (uint64_t)ERROR_LOG_EVERY_MS * 1000) {
        bg_error("audit: %s (%" PRIu64 " failed commit%s since last report); records are refused "
                 "until writing works again",
                 reason, a->errors_since_log, a->errors_since_log == 1 ? "" : "s");
        a->last_error_log_mono = now;
        a->errors_since_log = 0;
    }
}

/* A commit succeeded: writable again, unless the last failure is less
 * than HEALTHY_HOLD_MS old (then bg_audit_probe or a later commit says
 * so). */
static void set_healthy(bg_audit_t *a)
{
    uint64_t now = bg_util_mono_us();
    pthread_mutex_lock(&a->stats_lock);
    int was = a->st.healthy;
    if (!was && now - a->last_fail_mono >= (uint64_t)HEALTHY_HOLD_MS * 1000)
        a->st.healthy = 1;
    int now_healthy = a->st.healthy;
    pthread_mutex_unlock(&a->stats_lock);
    if (!was && now_healthy && a->st.last_error[0] != '\0')
        bg_info("audit: writing works again (%s)", a->cur_name);
}

/* Can the audit directory take a write now? Free space above
 * PROBE_FREE_BYTES (statvfs, so that probing a full disk takes nothing
 * from it), then a PROBE_BYTES file written, synced and removed. */
static int directory_writable(bg_audit_t *a)
{
    struct statvfs vfs;
    if (fstatvfs(a->dirfd, &vfs) != 0 || (vfs.f_flag & ST_RDONLY) != 0 ||
        (uint64_t)vfs.f_bavail * vfs.f_frsize < PROBE_FREE_BYTES)
        return 0;
    char name[NAME_MAX_LEN + 16];
    snprintf(name, sizeof name, ".%s.probe", a->prefix);
    int fd = openat(a->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0;
    static const char zeros[PROBE_BYTES];
    int ok = write(fd, zeros, sizeof zeros) == (ssize_t)sizeof zeros && fsync(fd) == 0;
    close(fd);
    unlinkat(a->dirfd, name, 0);
    return ok;
}

int bg_audit_probe(bg_audit_t *a)
{
    uint64_t now = bg_util_mono_us();
    pthread_mutex_lock(&a->stats_lock);
    int healthy = a->st.healthy;
    uint64_t last_fail = a->last_fail_mono;
    pthread_mutex_unlock(&a->stats_lock);
    if (healthy)
        return 1;
    if (now - last_fail < (uint64_t)HEALTHY_HOLD_MS * 1000 || !directory_writable(a))
        return 0;
    pthread_mutex_lock(&a->stats_lock);
    /* A commit may have failed while we probed: its failure wins. */
    int set = a->last_fail_mono == last_fail;
    if (set)
        a->st.healthy = 1;
    pthread_mutex_unlock(&a->stats_lock);
    if (set)
        bg_info("audit: %s is writable again (probe)", a->dir);
    return set;
}

static void stat_fsync(bg_audit_t *a, uint64_t us)
{
    pthread_mutex_lock(&a->stats_lock);
    a->st.fsyncs++;
    a->st.fsync_us_sum += us;
    for (int i = 0; i < BG_AUDIT_FSYNC_BUCKETS; i++) {
        if (us <= bg_audit_fsync_bounds_us[i]) {
            a->st.fsync_hist[i]++;
            break;
        }
    }
    a->ring[a->ring_pos] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    a->ring_pos = (a->ring_pos + 1) % FSYNC_RING;
    if (a->ring_n < FSYNC_RING)
        a->ring_n++;
    pthread_mutex_unlock(&a->stats_lock);
}

/* fdatasync FD, timed into the stats. 0/-1 (errno). */
static int timed_sync(bg_audit_t *a, int fd)
{
    uint64_t t0 = bg_util_mono_us();
    int rc;
    do
        rc = fdatasync(fd);
    while (rc != 0 && errno == EINTR);
    int e = errno;
    stat_fsync(a, bg_util_mono_us() - t0);
    a->last_sync_mono = bg_util_mono_us();
    errno = e;
    return rc;
}

static int write_all_at(int fd, const char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static void fail_reason(char *out, size_t cap, const char *what, int e)
{
    snprintf(out, cap, "audit log not writable: %s%s%s", what, what[0] ? ": " : "", strerror(e));
}

/* ------------------------------------------------------------------------
 * Writer: files
 * ------------------------------------------------------------------------ */

/* Last complete line of NAME in the directory: its parsed fixed parts and,
 * when TIME_MS is not NULL, its "time". 0/-1 (ERR filled). */
int bg_audit_read_last_record(bg_audit_t *a, const char *name, bg_audit_line_t *pl,
                              uint64_t *time_ms, char *err, size_t errcap)
{
    int fd = openat(a->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "cannot open %s: %s", name, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errcap, "cannot stat %s: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    size_t fsize = (size_t)st.st_size;
    size_t want = 64 * 1024;
    char *buf = NULL;
    int rc = -1;
    snprintf(err, errcap, "%s has no complete record", name);
    for (;;) {
        size_t n = want < fsize ? want : fsize;
        char *nb = realloc(buf, n + 1);
        if (nb == NULL) {
            snprintf(err, errcap, "out of memory");
            break;
        }
        buf = nb;
        size_t got = 0;
        while (got < n) {
            ssize_t r = pread(fd, buf + got, n - got, (off_t)(fsize - n + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got != n) {
            snprintf(err, errcap, "cannot read %s", name);
            break;
        }
        /* The last line that ends in a newline. */
        size_t end = n;
        while (end > 0 && buf[end - 1] != '\n')
            end--;
        if (end == 0) {
            if (n == fsize || want >= 2 * a->max_record_bytes + 4096)
                break;
            want *= 4;
            continue;
        }
        size_t start = end - 1;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        if (start == 0 && n < fsize) {
            if (want >= 2 * a->max_record_bytes + 4096)
                break;
            want *= 4;
            continue;
        }
        size_t ll = end - 1 - start;
        if (bg_audit_chain_parse_line(buf + start, ll, pl) != 0) {
            snprintf(err, errcap, "the last record of %s is unparsable", name);
            break;
        }
        if (time_ms != NULL) {
            json_t *j = json_loadb(buf + start, ll, JSON_ALLOW_NUL, NULL);
            const char *ts = json_string_value(json_object_get(j, "time"));
            int ok = ts != NULL && bg_audit_parse_time(ts, time_ms) == 0;
            json_decref(j);
            if (!ok) {
                snprintf(err, errcap, "the last record of %s has no valid time", name);
                break;
            }
        }
        rc = 0;
        break;
    }
    free(buf);
    close(fd);
    return rc;
}

static int checkpoint_members(bg_audit_t *a, const char *reason, uint64_t records, char *out,
                              size_t cap)
{
    char ts[40], mac[BG_AUDIT_HEX_LEN + 1];
    const char *chain = bg_audit_chain_prev(a->chain);
    bg_audit_now_string(a, ts, sizeof ts);
    if (a->key_len > 0) {
        if (bg_audit_chain_hmac(a->key, a->key_len, chain, mac) != 0)
            return -1;
        return snprintf(
            out, cap,
            "\"type\":\"checkpoint\",\"time\":\"%s\",\"reason\":\"%s\",\"records\":%" PRIu64
            ",\"chain\":\"%s\",\"every\":%u,\"key_id\":\"%s\",\"hmac\":\"%s\"",
            ts, reason, records, chain, a->ckpt_every, a->key_id, mac);
    }
    return snprintf(out, cap,
                    "\"type\":\"checkpoint\",\"time\":\"%s\",\"reason\":\"%s\",\"records\":%" PRIu64
                    ",\"chain\":\"%s\",\"every\":%u,\"key_id\":null,\"hmac\":null",
                    ts, reason, records, chain, a->ckpt_every);
}

/* Append a checkpoint line to the write buffer. 0/-1. */
static int append_checkpoint(bg_audit_t *a, const char *reason)
{
    char m[512];
    int n = checkpoint_members(a, reason, a->since_ckpt, m, sizeof m);
    if (n < 0 || (size_t)n >= sizeof m)
        return -1;
    const char *parts[1] = {m};
    size_t lens[1] = {(size_t)n};
    if (bg_audit_chain_append(a->chain, &a->wbuf, parts, lens, 1, NULL) != 0)
        return -1;
    a->since_ckpt = 0;
    return 0;
}

/* Append one record (members in PARTS) and, when the count is reached, a
 * checkpoint. 0/-1. */
static int append_record(bg_audit_t *a, const char *const *parts, const size_t *lens, size_t n)
{
    if (bg_audit_chain_append(a->chain, &a->wbuf, parts, lens, n, NULL) != 0)
        return -1;
    if (a->since_ckpt++ == 0)
        a->uncovered_mono = bg_util_mono_us();
    if (a->ckpt_every > 0 && a->since_ckpt >= a->ckpt_every)
        return append_checkpoint(a, "count");
    return 0;
}

/* Write the buffer at the end of the current file and sync when SYNC. On
 * failure the file is cut back to its last good size. 0/-1 (REASON). */
static int write_buffer(bg_audit_t *a, int sync, char *reason, size_t cap)
{
    if (write_all_at(a->fd, a->wbuf.data, a->wbuf.len, a->size) != 0) {
        int e = errno;
        fail_reason(reason, cap, "", e);
        if (ftruncate(a->fd, (off_t)a->size) != 0)
            a->need_truncate = 1;
        return -1;
    }
    if (sync && timed_sync(a, a->fd) != 0) {
        int e = errno;
        fail_reason(reason, cap, "fdatasync", e);
        /* Nothing of the batch was acknowledged: take it back out. Linux
         * may have dropped the dirty pages; the earlier, synced bytes are
         * on disk. */
        if (ftruncate(a->fd, (off_t)a->size) != 0)
            a->need_truncate = 1;
        else if (fdatasync(a->fd) != 0)
            a->need_truncate = 1;
        return -1;
    }
    a->size += a->wbuf.len;
    if (sync) {
        a->dirty = 0;
    } else {
        a->dirty = 1;
    }
    pthread_mutex_lock(&a->stats_lock);
    a->st.bytes_written += a->wbuf.len;
    a->st.last_seq = bg_audit_chain_next_seq(a->chain) - 1;
    if (sync)
        a->st.durable_seq = a->st.last_seq;
    pthread_mutex_unlock(&a->stats_lock);
    a->written_seq = bg_audit_chain_next_seq(a->chain) - 1;
    return 0;
}

/* Queue NAME's file_start record first (PREV_FILE NULL or "": none).
 * Shared with recovery (a newest file that holds no record). 0/-1. */
int bg_audit_pending_file_start(bg_audit_t *a, const char *name, uint64_t index,
                                const char *prev_file)
{
    char ts[40];
    bg_audit_now_string(a, ts, sizeof ts);
    char prevf[NAME_MAX_LEN + 2];
    if (prev_file != NULL && prev_file[0] != '\0')
        snprintf(prevf, sizeof prevf, "\"%s\"", prev_file);
    else
        snprintf(prevf, sizeof prevf, "null");
    char kid[16];
    if (a->key_len > 0)
        snprintf(kid, sizeof kid, "\"%s\"", a->key_id);
    else
        snprintf(kid, sizeof kid, "null");
    return bg_audit_pending_add(
        &a->pending, 0,
        "\"type\":\"file_start\",\"time\":\"%s\",\"file\":\"%s\",\"file_index\":%" PRIu64
        ",\"prev_file\":%s,\"format\":\"bordergate-audit/1\",\"checkpoint_every\":%u,"
        "\"key_id\":%s",
        ts, name, index, prevf, a->ckpt_every, kid);
}

/* Create the next file (index + 1) and make it current; queue its
 * file_start first. 0/-1 (REASON). */
int bg_audit_new_file(bg_audit_t *a, char *reason, size_t cap)
{
    char name[NAME_MAX_LEN];
    uint64_t now = wall_ms(a);
    uint64_t index = a->cur_index + 1;
    bg_audit_files_name(a->prefix, now, index, name, sizeof name);
    int fd = openat(a->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        fail_reason(reason, cap, "cannot create file", errno);
        return -1;
    }
    if (fsync(a->dirfd) != 0) {
        int e = errno;
        close(fd);
        unlinkat(a->dirfd, name, 0);
        fail_reason(reason, cap, "directory sync", e);
        return -1;
    }
    if (bg_audit_pending_file_start(a, name, index, a->cur_name) != 0) {
        close(fd);
        unlinkat(a->dirfd, name, 0);
        fail_reason(reason, cap, "", ENOMEM);
        return -1;
    }
    if (a->fd >= 0)
        close(a->fd);
    snprintf(a->prev_file, sizeof a->prev_file, "%s", a->cur_name);
    snprintf(a->cur_name, sizeof a->cur_name, "%s", name);
    a->fd = fd;
    a->cur_index = index;
    a->cur_day = bg_audit_files_day(now);
    a->size = 0;
    a->cur_closed = 0;
    a->need_truncate = 0;
    pthread_mutex_lock(&a->stats_lock);
    snprintf(a->st.current_file, sizeof a->st.current_file, "%s", name);
    pthread_mutex_unlock(&a->stats_lock);
    return 0;
}

static int need_rotation(bg_audit_t *a)
{
    if (a->fd < 0 || a->cur_closed)
        return 1;
    if (a->size == 0)
        return 0;
    if (a->rotate_bytes > 0 && a->size >= a->rotate_bytes)
        return 1;
    if (a->rotate_daily && bg_audit_files_day(wall_ms(a)) != a->cur_day)
        return 1;
    return 0;
}

/* Before a commit: undo a failed write that could not be undone, rotate
 * when due (rotation checkpoint into the old file, synced; then a new
 * file). 0/-1 (REASON). */
static int prepare_file(bg_audit_t *a, char *reason, size_t cap)
{
    if (a->need_truncate) {
        if (ftruncate(a->fd, (off_t)a->size) != 0) {
            fail_reason(reason, cap, "cannot cut back a partial write", errno);
            return -1;
        }
        a->need_truncate = 0;
    }
    if (!need_rotation(a))
        return 0;
    if (a->fd >= 0 && !a->cur_closed) {
        uint64_t seq0 = bg_audit_chain_next_seq(a->chain);
        char prev0[BG_AUDIT_HEX_LEN + 1];
        memcpy(prev0, bg_audit_chain_prev(a->chain), sizeof prev0);
        uint64_t since0 = a->since_ckpt;
        a->wbuf.len = 0;
        if (append_checkpoint(a, "rotate") != 0 || write_buffer(a, 1, reason, cap) != 0) {
            if (reason[0] == '\0')
                fail_reason(reason, cap, "", ENOMEM);
            bg_audit_chain_set(a->chain, seq0, prev0);
            a->since_ckpt = since0;
            return -1;
        }
        a->cur_closed = 1;
        pthread_mutex_lock(&a->stats_lock);
        a->st.checkpoints++;
        a->st.last_checkpoint_ms = wall_ms(a);
        a->st.internal_records++;
        pthread_mutex_unlock(&a->stats_lock);
    }
    if (bg_audit_new_file(a, reason, cap) != 0)
        return -1;
    pthread_mutex_lock(&a->stats_lock);
    a->st.rotations++;
    pthread_mutex_unlock(&a->stats_lock);
    return 0;
}

/* ------------------------------------------------------------------------
 * Writer: commit
 * ------------------------------------------------------------------------ */

static int checkpoint_due(const bg_audit_t *a, uint64_t now)
{
    return a->since_ckpt > 0 && a->ckpt_seconds > 0 &&
           now - a->uncovered_mono >= (uint64_t)a->ckpt_seconds * 1000000u;
}

/*
 * One group commit: the pending writer records, then TICKETS (checkpoints
 * interleaved by count), then a checkpoint with CKPT_REASON when given (or
 * "interval" when one is due), written with one write and, in strict mode or
 * when SYNC, one fdatasync. Posts TICKETS' completions (ok or failed).
 * Returns 0, or -1 with nothing of the batch left in the file and the
 * pending records kept for the next try.
 */
static int commit(bg_audit_t *a, bg_audit_ticket_t *tickets, const char *ckpt_reason, int sync)
{
    char reason[200] = "";
    uint64_t seq0 = bg_audit_chain_next_seq(a->chain);
    char prev0[BG_AUDIT_HEX_LEN + 1] = "";
    uint64_t since0 = a->since_ckpt, uncovered0 = a->uncovered_mono;
    size_t nrec = 0, nint = 0, nckpt = 0;

    if (prepare_file(a, reason, sizeof reason) != 0)
        goto fail_early;
    seq0 = bg_audit_chain_next_seq(a->chain);
    memcpy(prev0, bg_audit_chain_prev(a->chain), sizeof prev0);
    since0 = a->since_ckpt;
    uncovered0 = a->uncovered_mono;
    a->wbuf.len = 0;

    uint64_t s0 = seq0;
    for (size_t i = 0; i < a->pending.n; i++) {
        const char *parts[1] = {a->pending.items[i]};
        size_t lens[1] = {strlen(a->pending.items[i])};
        if (append_record(a, parts, lens, 1) != 0)
            goto fail_build;
        nint++;
    }
    for (bg_audit_ticket_t *t = tickets; t != NULL; t = t->next) {
        const char *parts[2] = {t->time_member, t->body + 1};
        size_t lens[2] = {t->time_len, t->body_len - 2};
        t->seq = bg_audit_chain_next_seq(a->chain);
        if (append_record(a, parts, lens, 2) != 0)
            goto fail_build;
        nrec++;
    }
    if (ckpt_reason == NULL && checkpoint_due(a, bg_util_mono_us()))
        ckpt_reason = "interval";
    if (ckpt_reason != NULL && append_checkpoint(a, ckpt_reason) != 0)
        goto fail_build;
    if (a->wbuf.len == 0)
        return 0;
    /* Checkpoints are the lines beyond the records. */
    nckpt = (size_t)(bg_audit_chain_next_seq(a->chain) - s0) - nrec - nint;

    int do_sync = sync || a->durability == BG_AUDIT_STRICT;
    if (write_buffer(a, do_sync, reason, sizeof reason) != 0)
        goto fail_io;

    pending_truncate(&a->pending, 0);
    pthread_mutex_lock(&a->stats_lock);
    a->st.records_written += nrec;
    a->st.internal_records += nint + nckpt;
    a->st.checkpoints += nckpt;
    if (nckpt > 0)
        a->st.last_checkpoint_ms = wall_ms(a);
    if (nrec > 0)
        a->st.batches++;
    if (nrec > a->st.max_batch_records)
        a->st.max_batch_records = nrec;
    pthread_mutex_unlock(&a->stats_lock);
    set_healthy(a);
    bg_audit_post_list(tickets, 0, NULL);
    return 0;

fail_build:
    fail_reason(reason, sizeof reason, "", ENOMEM);
fail_io:
    bg_audit_chain_set(a->chain, seq0, prev0);
    a->since_ckpt = since0;
    a->uncovered_mono = uncovered0;
fail_early:
    a->wbuf.len = 0;
    a->retry_mono = bg_util_mono_us() + (uint64_t)RETRY_MS * 1000;
    set_error(a, reason);
    pthread_mutex_lock(&a->stats_lock);
    for (bg_audit_ticket_t *t = tickets; t != NULL; t = t->next)
        a->st.failed_records++;
    a->st.failed_batches++;
    pthread_mutex_unlock(&a->stats_lock);
    bg_audit_post_list(tickets, -1, reason);
    return -1;
}

/* Relaxed mode: sync what was written once the interval has passed. */
static void relaxed_sync(bg_audit_t *a, int force)
{
    if (!a->dirty || a->fd < 0)
        return;
    if (!force && bg_util_mono_us() - a->last_sync_mono < (uint64_t)a->relaxed_ms * 1000)
        return;
    if (timed_sync(a, a->fd) != 0) {
        char reason[200];
        fail_reason(reason, sizeof reason, "fdatasync", errno);
        /* The records were acknowledged already (relaxed): keep them, try
         * again at the next interval. */
        set_error(a, reason);
        return;
    }
    a->dirty = 0;
    pthread_mutex_lock(&a->stats_lock);
    a->st.durable_seq = a->written_seq;
    pthread_mutex_unlock(&a->stats_lock);
}

/* ------------------------------------------------------------------------
 * Writer: retention
 * ------------------------------------------------------------------------ */

/* Delete the oldest files whose last record is older than retention_days,
 * each only after a durable retention_delete record names it. Stops at the
 * first file that is not past retention (or cannot be dated), so the log
 * never gets a hole. */
static void retention_run(bg_audit_t *a)
{
    a->next_retention_mono = bg_util_mono_us() + (uint64_t)RETENTION_EVERY_MS * 1000;
    if (a->retention_days == 0)
        return;
    char **names = NULL;
    size_t n = 0;
    if (bg_audit_files_scan(a->dirfd, a->prefix, &names, &n) != 0) {
        bg_warn("audit: retention: cannot list %s: %s", a->dir, strerror(errno));
        return;
    }
    uint64_t now = wall_ms(a);
    uint64_t keep_ms = (uint64_t)a->retention_days * 86400000u;
    uint64_t cutoff = now > keep_ms ? now - keep_ms : 0;
    size_t npend = a->pending.n;
    size_t ndel = 0;
    char ts[40], last_ts[40], err[256];
    bg_audit_now_string(a, ts, sizeof ts);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], a->cur_name) == 0)
            break;
        bg_audit_line_t pl;
        uint64_t t;
        if (bg_audit_read_last_record(a, names[i], &pl, &t, err, sizeof err) != 0) {
            bg_warn("audit: retention stops at %s: %s", names[i], err);
            break;
        }
        if (t >= cutoff)
            break;
        uint64_t idx = 0;
        bg_audit_files_parse_name(a->prefix, names[i], &idx, NULL);
        bg_util_format_time(t, last_ts, sizeof last_ts);
        if (bg_audit_pending_add(&a->pending, a->pending.n,
                                 "\"type\":\"retention_delete\",\"time\":\"%s\",\"file\":\"%s\","
                                 "\"file_index\":%" PRIu64 ",\"last_seq\":%" PRIu64
                                 ",\"last_hash\":\"%s\",\"last_time\":\"%s\",\"retention_days\":%u",
                                 ts, names[i], idx, pl.seq, pl.hash, last_ts,
                                 a->retention_days) != 0)
            break;
        ndel++;
    }
    if (ndel > 0) {
        if (commit(a, NULL, NULL, 1) != 0) {
            /* Not recorded, so not deleted; the next run tries again. */
            if (a->pending.n >= npend + ndel)
                pending_truncate(&a->pending, a->pending.n - ndel);
            ndel = 0;
        }
    }
    for (size_t i = 0; i < ndel; i++) {
        if (unlinkat(a->dirfd, names[i], 0) != 0) {
            bg_warn("audit: retention: cannot delete %s: %s", names[i], strerror(errno));
            continue;
        }
        bg_info("audit: retention: deleted %s (older than %u days)", names[i], a->retention_days);
        pthread_mutex_lock(&a->stats_lock);
        a->st.retention_deletes++;
        pthread_mutex_unlock(&a->stats_lock);
    }
    if (ndel > 0)
        fsync(a->dirfd);
    bg_audit_files_free(names, n);
}

/* ------------------------------------------------------------------------
 * Writer thread
 * ------------------------------------------------------------------------ */

/* When the writer must wake without submissions (monotonic us). Writer
 * records (pending, time checkpoints) wait for retry_mono after a failed
 * commit, so a full disk does not make the writer spin. */
static uint64_t next_deadline(bg_audit_t *a)
{
    uint64_t d = a->next_retention_mono;
    uint64_t internal = UINT64_MAX;
    if (a->pending.n > 0)
        internal = 0;
    if (a->since_ckpt > 0 && a->ckpt_seconds > 0) {
        uint64_t c = a->uncovered_mono + (uint64_t)a->ckpt_seconds * 1000000u;
        if (c < internal)
            internal = c;
    }
    if (internal != UINT64_MAX) {
        if (internal < a->retry_mono)
            internal = a->retry_mono;
        if (internal < d)
            d = internal;
    }
    if (a->dirty) {
        uint64_t s = a->last_sync_mono + (uint64_t)a->relaxed_ms * 1000;
        if (s < d)
            d = s;
    }
    return d;
}

static void *writer_main(void *arg)
{
    bg_audit_t *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (a->q_head == NULL && !a->stopping) {
            uint64_t d = next_deadline(a), now = bg_util_mono_us();
            if (d <= now)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t wait = d - now;
            ts.tv_sec += (time_t)(wait / 1000000u);
            ts.tv_nsec += (long)(wait % 1000000u) * 1000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            a->writer_waiting = 1;
            pthread_cond_timedwait(&a->cond, &a->lock, &ts);
            a->writer_waiting = 0;
        }
        /* Take what is queued, up to one batch. */
        bg_audit_ticket_t *batch = a->q_head, *last = NULL;
        size_t n = 0, bytes = 0;
        for (bg_audit_ticket_t *t = a->q_head; t != NULL && n < BATCH_MAX_RECORDS &&
                                               (n == 0 || bytes + t->body_len <= BATCH_MAX_BYTES);
             t = t->next) {
            last = t;
            n++;
            bytes += t->body_len;
        }
        if (last != NULL) {
            a->q_head = last->next;
            if (a->q_head == NULL)
                a->q_tail = NULL;
            last->next = NULL;
        } else {
            batch = NULL;
        }
        a->q_records -= n;
        a->q_bytes -= bytes;
        int stopping = a->stopping;
        pthread_mutex_unlock(&a->lock);

        uint64_t now = bg_util_mono_us();
        if (batch != NULL)
            commit(a, batch, NULL, 0);
        else if ((a->pending.n > 0 || checkpoint_due(a, now)) && now >= a->retry_mono)
            commit(a, NULL, NULL, 0);
        relaxed_sync(a, 0);
        if (now >= a->next_retention_mono)
            retention_run(a);

        pthread_mutex_lock(&a->lock);
        if (stopping && a->q_head == NULL)
            break;
    }
    pthread_mutex_unlock(&a->lock);

    /* Final checkpoint, synced in either mode. */
    if (commit(a, NULL, "close", 1) != 0)
        bg_error("audit: the closing checkpoint could not be written: %s", a->st.last_error);
    relaxed_sync(a, 1);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Open / close / stats
 * ------------------------------------------------------------------------ */

void bg_audit_options_init(bg_audit_options_t *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->prefix = "audit";
    opt->rotate_bytes = DEFAULT_ROTATE_BYTES;
    opt->rotate_daily = 1;
    opt->retention_days = DEFAULT_RETENTION_DAYS;
    opt->durability = BG_AUDIT_STRICT;
    opt->relaxed_interval_ms = DEFAULT_RELAXED_MS;
    opt->checkpoint_every = DEFAULT_CKPT_EVERY;
    opt->checkpoint_seconds = DEFAULT_CKPT_SECONDS;
    opt->max_queue_bytes = DEFAULT_MAX_QUEUE;
    opt->max_record_bytes = DEFAULT_MAX_RECORD;
}

/* Make a new directory's entry durable: fsync its parent. Best effort. */
static void sync_parent(const char *dir)
{
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        snprintf(parent, sizeof parent, ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void audit_destroy(bg_audit_t *a)
{
    if (a->fd >= 0)
        close(a->fd);
    if (a->lockfd >= 0)
        close(a->lockfd);
    if (a->dirfd >= 0)
        close(a->dirfd);
    bg_audit_chain_free(a->chain);
    pending_free(&a->pending);
    bg_audit_buf_free(&a->wbuf);
    /* Tickets still queued (open failed, or a submit raced close). */
    bg_audit_ticket_t *t = a->q_head;
    a->q_head = NULL;
    bg_audit_post_list(t, -1, "audit log closed");
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->stats_lock);
    explicit_bzero(a->key, sizeof a->key);
    free(a->dir);
    free(a->prefix);
    free(a);
}

bg_audit_t *bg_audit_open(const bg_audit_options_t *opt, char *err, size_t errcap)
{
    const char *prefix = opt->prefix != NULL ? opt->prefix : "audit";
    if (opt->directory == NULL || opt->directory[0] == '\0') {
        snprintf(err, errcap, "audit directory is not set");
        return NULL;
    }
    if (!bg_audit_files_prefix_ok(prefix)) {
        snprintf(err, errcap,
                 "audit file prefix '%s' is not usable (letters, digits, '_', '.', '-')", prefix);
        return NULL;
    }
    if (opt->key != NULL && (opt->key_len < BG_AUDIT_KEY_MIN || opt->key_len > BG_AUDIT_KEY_MAX)) {
        snprintf(err, errcap, "audit checkpoint key must be %d to %d bytes", BG_AUDIT_KEY_MIN,
                 BG_AUDIT_KEY_MAX);
        return NULL;
    }
    bg_audit_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    a->fd = a->lockfd = a->dirfd = -1;
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->stats_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);
    a->dir = strdup(opt->directory);
    a->prefix = strdup(prefix);
    a->chain = bg_audit_chain_new(1, bg_audit_chain_genesis);
    if (a->dir == NULL || a->prefix == NULL || a->chain == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    a->rotate_bytes = opt->rotate_bytes;
    a->rotate_daily = opt->rotate_daily;
    a->retention_days = opt->retention_days;
    a->durability = opt->durability;
    a->relaxed_ms = opt->relaxed_interval_ms != 0 ? opt->relaxed_interval_ms : DEFAULT_RELAXED_MS;
    a->ckpt_every = opt->checkpoint_every;
    a->ckpt_seconds = opt->checkpoint_seconds;
    a->max_queue_bytes = opt->max_queue_bytes != 0 ? opt->max_queue_bytes : DEFAULT_MAX_QUEUE;
    a->max_record_bytes = opt->max_record_bytes != 0 ? opt->max_record_bytes : DEFAULT_MAX_RECORD;
    a->clock_ms = opt->clock_ms;
    a->clock_arg = opt->clock_arg;
    if (opt->key != NULL) {
        memcpy(a->key, opt->key, opt->key_len);
        a->key_len = opt->key_len;
        bg_audit_chain_key_id(a->key, a->key_len, a->key_id);
    }
    a->st.healthy = 1;
    a->last_sync_mono = bg_util_mono_us();

    if (mkdir(a->dir, 0700) == 0) {
        sync_parent(a->dir);
    } else if (errno != EEXIST) {
        snprintf(err, errcap, "cannot create audit directory %s: %s", a->dir, strerror(errno));
        goto fail;
    }
    a->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->dirfd < 0) {
        snprintf(err, errcap, "cannot open audit directory %s: %s", a->dir, strerror(errno));
        goto fail;
    }
    char lockname[NAME_MAX_LEN];
    snprintf(lockname, sizeof lockname, ".%s.lock", a->prefix);
    a->lockfd = openat(a->dirfd, lockname, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (a->lockfd < 0) {
        snprintf(err, errcap, "cannot create %s/%s: %s", a->dir, lockname, strerror(errno));
        goto fail;
    }
    if (flock(a->lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            snprintf(err, errcap, "audit directory %s is in use by another writer (%s is locked)",
                     a->dir, lockname);
        else
            snprintf(err, errcap, "cannot lock %s/%s: %s", a->dir, lockname, strerror(errno));
        goto fail;
    }

    const char *shutdown = "none";
    if (bg_audit_recover(a, &shutdown, err, errcap) != 0)
        goto fail;
    char ts[40], kid[16];
    bg_audit_now_string(a, ts, sizeof ts);
    if (a->key_len > 0)
        snprintf(kid, sizeof kid, "\"%s\"", a->key_id);
    else
        snprintf(kid, sizeof kid, "null");
    if (bg_audit_pending_add(
            &a->pending, a->pending.n,
            "\"type\":\"writer_start\",\"time\":\"%s\",\"version\":\"%s\",\"pid\":%ld,"
            "\"durability\":\"%s\",\"checkpoint_every\":%u,\"key_id\":%s,"
            "\"previous_shutdown\":\"%s\"",
            ts, BG_VERSION, (long)getpid(), a->durability == BG_AUDIT_STRICT ? "strict" : "relaxed",
            a->ckpt_every, kid, shutdown) != 0) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    /* Write what recovery queued now, so a problem shows at once; a write
     * failure is not fatal (the writer retries, records fail meanwhile). */
    commit(a, NULL, NULL, 1);
    retention_run(a);

    /* The writer takes no process signals (SIGHUP, SIGTERM, ... belong to
     * the threads that handle them): it starts with them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&a->thread, NULL, writer_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        snprintf(err, errcap, "cannot start the audit writer thread");
        goto fail;
    }
    a->thread_started = 1;
    return a;
fail:
    audit_destroy(a);
    return NULL;
}

void bg_audit_close(bg_audit_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->thread_started)
        pthread_join(a->thread, NULL);
    if (a->fd >= 0 && fdatasync(a->fd) != 0)
        bg_warn("audit: final sync of %s failed: %s", a->cur_name, strerror(errno));
    if (a->dirfd >= 0)
        fsync(a->dirfd);
    audit_destroy(a);
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

void bg_audit_stats(bg_audit_t *a, bg_audit_stats_t *out)
{
    uint32_t ring[FSYNC_RING];
    size_t n;
    pthread_mutex_lock(&a->stats_lock);
    *out = a->st;
    n = a->ring_n;
    memcpy(ring, a->ring, n * sizeof ring[0]);
    pthread_mutex_unlock(&a->stats_lock);
    pthread_mutex_lock(&a->lock);
    out->queued_records = a->q_records;
    out->queued_bytes = a->q_bytes;
    pthread_mutex_unlock(&a->lock);
    out->fsync_us_p50 = out->fsync_us_p99 = out->fsync_us_max = 0;
    if (n > 0) {
        qsort(ring, n, sizeof ring[0], cmp_u32);
        out->fsync_us_p50 = ring[(n - 1) / 2];
        out->fsync_us_p99 = ring[(n * 99 + 99) / 100 - 1];
        out->fsync_us_max = ring[n - 1];
    }
}
