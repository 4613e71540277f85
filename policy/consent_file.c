/*
 * Consent registry, file backend: an append-only journal of JSON lines,
 * held in memory as two hash tables (by subject pseudonym, by consent id).
 *
 *   {"op":"journal","format":"bordergate-consent","version":1,"key_check":..,"created_at":..}
 *   {"op":"grant","id":"c-..","subject":"<64 hex>","recipient":..,...}
 *   {"op":"withdraw","id":"c-..","at":"2026-..Z","by":".."}
 *
 * Locks, in the order they are taken:
 *   io      (mutex) the one thread that reads or writes the file: the fd,
 *           the consumed offset, what was last seen of the file. Look-ups
 *           only try-lock it, at most once per check interval.
 *   flock   (on the journal, LOCK_EX) writers in every process: the CLI
 *           and the daemon never interleave lines or compact under each
 *           other. Readers never take it; they ignore an unterminated last
 *           line, which is either a write in progress or a tear.
 *   lock    (big-reader lock, below) the in-memory state. Look-ups hold
 *           their shard for one hash probe; a change holds every shard for
 *           one insert or one field update, after the line is durable.
 *
 * Only the io holder mutates the state, so it may read the state without
 * the rwlock.
 */
#include "policy/consent_file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/grow.h"
#include "common/log.h"
#include "common/util.h"

#define DEFAULT_INTERVAL_MS 1000
#define DEFAULT_RATIO 1.5
#define DEFAULT_MIN_LINES 1000
#define DEFAULT_RETAIN_MS (1095LL * 24 * 3600 * 1000)

/* ------------------------------------------------------------------------
 * The backend
 * ------------------------------------------------------------------------ */

typedef struct {
    bg_consent_backend_t base; /* first: the vtable's SELF is this */
    char *path;
    char *dir;
    bg_consent_options_t opts;
    char want_check[BG_CONSENT_KEY_CHECK_SIZE];
    int has_want;

    bg_brlock_t lock; /* guards st */
    fstate_t *st;

    pthread_mutex_t io; /* guards the rest */
    int fd;
    size_t offset;  /* end of the last complete line applied */
    size_t line_no; /* lines up to OFFSET */
    dev_t seen_dev; /* the journal as last seen: inode, bytes observed, mtime */
    ino_t seen_ino;
    size_t seen_size;
    struct timespec seen_mtime;
    char fail[512]; /* "" while healthy */
    atomic_int failed;
    atomic_llong next_check_us;
    atomic_ullong seen_sig; /* stat_sig of the journal as last seen (read without the io lock) */
} fbe_t;

/* A digest of what stat() says about the journal: inode, size, mtime. Any
 * change (an appended line, a compaction's rename, a rewrite) changes it. */
static unsigned long long stat_sig(dev_t dev, ino_t ino, size_t size, const struct timespec *m)
{
    unsigned long long h = 1469598103934665603ULL;
    unsigned long long v[5] = {(unsigned long long)dev, (unsigned long long)ino,
                               (unsigned long long)size, (unsigned long long)m->tv_sec,
                               (unsigned long long)m->tv_nsec};
    for (int i = 0; i < 5; i++)
        h = (h ^ v[i]) * 1099511628211ULL;
    return h;
}

static void publish_seen(fbe_t *b)
{
    atomic_store(&b->seen_sig, stat_sig(b->seen_dev, b->seen_ino, b->seen_size, &b->seen_mtime));
}

static void set_fail(fbe_t *b, const char *msg)
{
    if (strcmp(b->fail, msg) != 0)
        bg_error("consent registry: %s; look-ups answer \"no consent\" until this is fixed", msg);
    snprintf(b->fail, sizeof b->fail, "%s", msg);
    atomic_store(&b->failed, 1);
}

static void clear_fail(fbe_t *b)
{
    if (b->fail[0] != '\0')
        bg_info("consent registry: %s is readable again", b->path);
    b->fail[0] = '\0';
    atomic_store(&b->failed, 0);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Bytes of FD from OFF to its end, malloc'd (NUL-terminated). */
static char *read_from(int fd, size_t off, size_t *len)
{
    size_t cap = 0, n = 0;
    char *buf = NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *p = bg_grow(buf, &cap, n + 2, 1, 65536);
            if (p == NULL) {
                free(buf);
                return NULL;
            }
            buf = p;
        }
        ssize_t r = pread(fd, buf + n, cap - n - 1, (off_t)(off + n));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void note_seen(fbe_t *b, int fd, size_t observed)
{
    struct stat st;
    if (fstat(fd, &st) == 0) {
        b->seen_dev = st.st_dev;
        b->seen_ino = st.st_ino;
        b->seen_mtime = st.st_mtim;
    }
    b->seen_size = observed;
    publish_seen(b);
}

/*
 * Read the whole journal from the path again into a new state and swap it
 * in. On success the new fd replaces b->fd (its flock, if any, is lost).
 */
static int full_reload(fbe_t *b, char *err, size_t errcap)
{
    int flags = b->opts.readonly ? O_RDONLY : O_RDWR | O_APPEND;
    int fd = open(b->path, flags | O_CLOEXEC);
    size_t len = 0, line_no = 0, consumed = 0;
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", b->path, strerror(errno));
        return BG_CONSENT_ERR;
    }
    char *buf = read_from(fd, 0, &len);
    if (buf == NULL) {
        snprintf(err, errcap, "%s: cannot read: %s", b->path, strerror(errno));
        close(fd);
        return BG_CONSENT_ERR;
    }
    fstate_t *st = bg_cindex_new();
    int rc = st == NULL
                 ? BG_CONSENT_ERR
                 : bg_cjournal_load(st, NULL, buf, len, b->path, b->has_want ? b->want_check : NULL,
                                    &line_no, &consumed, err, errcap);
    free(buf);
    if (st == NULL)
        snprintf(err, errcap, "out of memory");
    if (rc != 0) {
        bg_cindex_free(st);
        close(fd);
        return rc;
    }
    bg_brlock_wrlock(&b->lock);
    fstate_t *old = b->st;
    b->st = st;
    bg_brlock_wrunlock(&b->lock);
    bg_cindex_free(old);
    if (b->fd >= 0)
        close(b->fd);
    b->fd = fd;
    b->offset = consumed;
    b->line_no = line_no;
    note_seen(b, fd, len);
    return 0;
}

/* Apply the complete lines appended to b->fd since b->offset. *RELOAD is
 * set when they do not continue what was read (the file was rewritten). */
static int read_appended(fbe_t *b, int *reload, char *err, size_t errcap)
{
    size_t len = 0, consumed = 0;
    *reload = 0;
    char *buf = read_from(b->fd, b->offset > 0 ? b->offset - 1 : 0, &len);
    if (buf == NULL) {
        snprintf(err, errcap, "%s: cannot read: %s", b->path, strerror(errno));
        return BG_CONSENT_ERR;
    }
    const char *p = buf;
    if (b->offset > 0) {
        if (len == 0 || buf[0] != '\n') {
            *reload = 1; /* the byte before our offset is no longer a newline */
            free(buf);
            return 0;
        }
        p++;
        len--;
    }
    int rc = bg_cjournal_load(b->st, &b->lock, p, len, b->path, b->has_want ? b->want_check : NULL,
                              &b->line_no, &consumed, err, errcap);
    b->offset += consumed;
    note_seen(b, b->fd, b->offset + (len - consumed));
    free(buf);
    return rc;
}

/*
 * Bring the state up to date with the file (io lock held). Cheap when
 * nothing changed: one stat(). FORCE retries a failed registry even if the
 * file looks unchanged. Failures put the registry in the failed state.
 */
static int refresh_locked(fbe_t *b, int force, char *err, size_t errcap)
{
    struct stat st, fst;
    int rc = 0, reload = 0, read = 0;
    int failed = atomic_load(&b->failed);
    if (stat(b->path, &st) != 0) {
        snprintf(err, errcap, "%s: %s", b->path, strerror(errno));
        set_fail(b, err);
        return BG_CONSENT_ERR;
    }
    int same = st.st_dev == b->seen_dev && st.st_ino == b->seen_ino &&
               (size_t)st.st_size == b->seen_size && st.st_mtim.tv_sec == b->seen_mtime.tv_sec &&
               st.st_mtim.tv_nsec == b->seen_mtime.tv_nsec;
    if (same && !(force && failed)) {
        if (!failed)
            return 0;
        snprintf(err, errcap, "%s", b->fail);
        return BG_CONSENT_ECORRUPT;
    }
    if (failed || fstat(b->fd, &fst) != 0) {
        reload = 1;
    } else {
        /* First the lines appended to the file we hold: when another
         * process withdrew and then compacted, the withdrawal is here and
         * takes effect before the full re-read below. */
        if ((size_t)fst.st_size > b->offset) {
            rc = read_appended(b, &reload, err, errcap);
            read = 1;
        } else if ((size_t)fst.st_size < b->offset) {
            reload = 1; /* cut below what we read: rewritten */
        }
        if (st.st_dev != fst.st_dev || st.st_ino != fst.st_ino)
            reload = 1; /* replaced: compacted by another process */
        else if (!read && (size_t)st.st_size == b->seen_size)
            reload = 1; /* same size, new mtime: rewritten in place */
    }
    if (reload)
        rc = full_reload(b, err, errcap);
    else if (rc == 0 && !read) {
        b->seen_dev = st.st_dev;
        b->seen_ino = st.st_ino;
        b->seen_size = (size_t)st.st_size;
        b->seen_mtime = st.st_mtim;
        publish_seen(b);
    }
    if (rc != 0) {
        set_fail(b, err);
        return rc;
    }
    clear_fail(b);
    return 0;
}

/*
 * Look-ups call this first. One stat() of the journal, compared with what
 * was last read: unchanged (the common case) returns at once; changed (the
 * CLI or another process wrote it) reads the change under the io lock before
 * this look-up answers, so a withdrawal made by any process is honoured by
 * every look-up that starts after that process's write returned. A failed
 * registry is retried at most once per interval, by one thread.
 */
static void maybe_check(fbe_t *b)
{
    if (b->opts.check_interval_ms < 0)
        return;
    struct stat st;
    int failed = atomic_load(&b->failed);
    if (!failed && stat(b->path, &st) == 0 &&
        stat_sig(st.st_dev, st.st_ino, (size_t)st.st_size, &st.st_mtim) ==
            atomic_load_explicit(&b->seen_sig, memory_order_acquire))
        return;
    char err[512];
    if (!failed) {
        pthread_mutex_lock(&b->io);            /* wait: this look-up must see the change */
        refresh_locked(b, 0, err, sizeof err); /* logs its own failures */
        pthread_mutex_unlock(&b->io);
        return;
    }
    long long now = (long long)bg_util_mono_us();
    if (now < atomic_load_explicit(&b->next_check_us, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&b->io) != 0)
        return; /* another thread is checking */
    if (now >= atomic_load(&b->next_check_us)) {
        refresh_locked(b, 0, err, sizeof err);
        atomic_store(&b->next_check_us, now + (long long)b->opts.check_interval_ms * 1000);
    }
    pthread_mutex_unlock(&b->io);
}

/* ------------------------------------------------------------------------
 * Writing (io lock held)
 * ------------------------------------------------------------------------ */

/*
 * Take the journal's flock and catch up with it, so a change is checked
 * against every line any process wrote; remove a torn last line. On success
 * the flock on b->fd is held: release with end_write.
 */
static int begin_write(fbe_t *b, char *err, size_t errcap)
{
    if (b->opts.readonly) {
        snprintf(err, errcap, "%s is open read-only", b->path);
        return BG_CONSENT_EREADONLY;
    }
    for (int tries = 0;; tries++) {
        int fd = b->fd;
        if (tries == 16) {
            snprintf(err, errcap, "%s keeps being replaced; giving up", b->path);
            return BG_CONSENT_ERR;
        }
        while (flock(fd, LOCK_EX) != 0) {
            if (errno != EINTR) {
                snprintf(err, errcap, "%s: cannot lock: %s", b->path, strerror(errno));
                return BG_CONSENT_ERR;
            }
        }
        int rc = refresh_locked(b, 1, err, errcap);
        if (b->fd != fd)
            continue; /* re-read another file; its lock is not ours yet.
                         (The old fd was closed, which dropped its lock.) */
        if (rc != 0) {
            flock(fd, LOCK_UN);
            return rc;
        }
        break;
    }
    struct stat fst;
    if (fstat(b->fd, &fst) == 0 && (size_t)fst.st_size > b->offset) {
        /* We hold the lock, so no writer is mid-line: this is a tear. */
        if (ftruncate(b->fd, (off_t)b->offset) != 0 || fsync(b->fd) != 0) {
            snprintf(err, errcap, "%s: cannot remove the torn last line: %s", b->path,
                     strerror(errno));
            flock(b->fd, LOCK_UN);
            return BG_CONSENT_ERR;
        }
        bg_warn("consent registry: removed a torn last line (%lld bytes, line %zu) from %s",
                (long long)fst.st_size - (long long)b->offset, b->line_no + 1, b->path);
        note_seen(b, b->fd, b->offset);
    }
    return 0;
}

static int compact_locked(fbe_t *b, char *err, size_t errcap);

static void end_write(fbe_t *b, int changed)
{
    const fstate_t *st = b->st;
    size_t live = st->n > 0 ? st->n : 1;
    if (changed && st->ops > b->opts.compact_ratio * (double)live &&
        st->ops - st->n >= b->opts.compact_min_lines) {
        char err[512];
        if (compact_locked(b, err, sizeof err) != 0)
            bg_warn("consent registry: compaction failed, journal kept as is: %s", err);
    }
    flock(b->fd, LOCK_UN);
}

/*
 * Append TEXT (whole lines) durably; a header first when the file is
 * empty. On failure the file is cut back to where it was.
 */
static int append_durably(fbe_t *b, const char *text, size_t len, size_t lines, char *err,
                          size_t errcap)
{
    bg_sbuf_t s = {0};
    size_t nlines = lines;
    if (!b->st->has_header) {
        char created[40];
        bg_consent_time_format((int64_t)bg_util_wall_ms(), created, sizeof created);
        const char *check = b->has_want ? b->want_check : b->st->key_check;
        if (check[0] == '\0') {
            snprintf(err, errcap, "%s has no header and no subject key was given", b->path);
            return BG_CONSENT_EKEY;
        }
        bg_cjournal_add_json(&s, bg_cjournal_header(check, created));
        nlines++;
    }
    bg_sbuf_add(&s, text, len);
    if (s.failed) {
        free(s.p);
        snprintf(err, errcap, "out of memory");
        return BG_CONSENT_ERR;
    }
    if (write_all(b->fd, s.p, s.n) != 0 || fdatasync(b->fd) != 0) {
        int e = errno;
        if (ftruncate(b->fd, (off_t)b->offset) == 0)
            (void)fsync(b->fd);
        free(s.p);
        snprintf(err, errcap, "%s: cannot write durably: %s", b->path, strerror(e));
        return BG_CONSENT_ERR;
    }
    /* The header, if any, went out with this write: apply it too. */
    if (!b->st->has_header && s.n > len) {
        fop_t op;
        char why[300];
        if (bg_cjournal_op_parse(s.p, s.n - len - 1, &op, why, sizeof why) == 0) {
            bg_brlock_wrlock(&b->lock);
            bg_cjournal_op_apply(b->st, &op);
            bg_brlock_wrunlock(&b->lock);
            bg_cjournal_op_clear(&op);
        }
    }
    b->offset += s.n;
    b->line_no += nlines;
    note_seen(b, b->fd, b->offset);
    free(s.p);
    return 0;
}

static int fbe_grant(bg_consent_backend_t *self, const bg_consent_t *c, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    bg_sbuf_t line = {0};
    int rc;
    if (!b->has_want) {
        snprintf(err, errcap, "granting needs the subject key");
        return BG_CONSENT_EKEY;
    }
    fentry_t *e = bg_cindex_entry_new(c);
    if (e == NULL) {
        snprintf(err, errcap, "out of memory");
        return BG_CONSENT_ERR;
    }
    bg_cjournal_add_json(&line, bg_cjournal_grant(c));
    pthread_mutex_lock(&b->io);
    if ((rc = begin_write(b, err, errcap)) != 0)
        goto out;
    if (bg_cindex_find_id(b->st, c->id) != NULL) {
        rc = BG_CONSENT_EEXIST;
        snprintf(err, errcap, "consent id %s is taken", c->id);
    } else if (line.failed) {
        rc = BG_CONSENT_ERR;
        snprintf(err, errcap, "out of memory");
    } else {
        bg_brlock_wrlock(&b->lock);
        rc = bg_cindex_reserve(b->st) == 0 ? 0 : BG_CONSENT_ERR;
        bg_brlock_wrunlock(&b->lock);
        if (rc != 0)
            snprintf(err, errcap, "out of memory");
        else
            rc = append_durably(b, line.p, line.n, 1, err, errcap);
        if (rc == 0) {
            fop_t op = {.kind = OP_GRANT, .grant = e};
            bg_brlock_wrlock(&b->lock);
            bg_cjournal_op_apply(b->st, &op); /* takes E */
            bg_brlock_wrunlock(&b->lock);
            e = NULL;
        }
    }
    end_write(b, rc == 0);
out:
    pthread_mutex_unlock(&b->io);
    bg_cindex_entry_free(e);
    free(line.p);
    return rc;
}

static int fbe_withdraw(bg_consent_backend_t *self, const char *id, int64_t at, const char *by,
                        bg_consent_t *out, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    int rc;
    char *bycopy = strdup(by);
    char atbuf[40];
    bg_consent_time_format(at, atbuf, sizeof atbuf);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "op", "withdraw", "id", id, "at", atbuf, "by", by);
    bg_sbuf_t line = {0};
    bg_cjournal_add_json(&line, o);
    if (bycopy == NULL || line.failed) {
        free(bycopy);
        free(line.p);
        snprintf(err, errcap, "out of memory");
        return BG_CONSENT_ERR;
    }
    pthread_mutex_lock(&b->io);
    if ((rc = begin_write(b, err, errcap)) != 0)
        goto out;
    fentry_t *e = bg_cindex_find_id(b->st, id);
    if (e == NULL) {
        rc = BG_CONSENT_ENOENT;
        snprintf(err, errcap, "no consent %s in %s", id, b->path);
    } else if (e->scope.withdrawn_at != 0) {
        char when[40];
        bg_consent_time_format(e->scope.withdrawn_at, when, sizeof when);
        rc = BG_CONSENT_EALREADY;
        snprintf(err, errcap, "consent %s was already withdrawn at %s", id, when);
    } else if (at < e->scope.granted_at) {
        rc = BG_CONSENT_EINVAL;
        snprintf(err, errcap, "withdrawal time is before consent %s was granted", id);
    } else if ((rc = append_durably(b, line.p, line.n, 1, err, errcap)) == 0) {
        fop_t op = {.kind = OP_WITHDRAW, .at = at, .by = bycopy};
        memcpy(op.id, id, sizeof op.id);
        bg_brlock_wrlock(&b->lock);
        bg_cjournal_op_apply(b->st, &op); /* takes BYCOPY */
        bg_brlock_wrunlock(&b->lock);
        bycopy = NULL;
        if (out != NULL)
            bg_cindex_entry_export(e, out);
    }
    end_write(b, rc == 0);
out:
    pthread_mutex_unlock(&b->io);
    free(bycopy);
    free(line.p);
    return rc;
}

/*
 * Rewrite the journal to the live state (io lock and flock held): a new
 * file beside it, fsync'ed, renamed over it, directory fsync'ed. Writers of
 * other processes waiting for the old file's lock notice the rename and
 * lock the new file. A crash at any point leaves either the old or the new
 * journal, both complete.
 */
static int compact_locked(fbe_t *b, char *err, size_t errcap)
{
    size_t len = 0, kept = 0, line_no = 0, consumed = 0;
    int64_t now = (int64_t)bg_util_wall_ms();
    char tmp[4096];
    int fd = -1, rc = BG_CONSENT_ERR;
    fstate_t *ns = NULL;
    char *text = bg_cjournal_serialize(b->st, b->has_want ? b->want_check : NULL, now,
                                       b->opts.retain_ended_ms, &len, &kept);
    if (text == NULL) {
        snprintf(err, errcap, "out of memory, or no key check to write");
        return BG_CONSENT_ERR;
    }
    /* Parse what we are about to install: the new state comes from the new
     * file's very bytes. */
    if ((ns = bg_cindex_new()) == NULL ||
        bg_cjournal_load(ns, NULL, text, len, "compacted journal", NULL, &line_no, &consumed, err,
                         errcap) != 0 ||
        consumed != len)
        goto fail;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.compact", b->path) >= sizeof tmp) {
        snprintf(err, errcap, "journal path too long");
        goto fail;
    }
    fd = open(tmp, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0 ||
        rename(tmp, b->path) != 0) {
        snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
        goto fail;
    }
    if (fsync_dir(b->dir) != 0) {
        /* The rename happened; only its durability is in doubt. */
        bg_warn("consent registry: fsync of %s failed: %s", b->dir, strerror(errno));
    }
    size_t before = b->offset;
    bg_brlock_wrlock(&b->lock);
    fstate_t *old = b->st;
    b->st = ns;
    bg_brlock_wrunlock(&b->lock);
    bg_cindex_free(old);
    close(b->fd); /* drops the old file's lock: waiting writers retry */
    b->fd = fd;   /* its lock is held; end_write releases it */
    b->offset = len;
    b->line_no = line_no;
    note_seen(b, fd, len);
    bg_info("consent registry: compacted %s from %zu to %zu bytes (%zu consents kept)", b->path,
            before, len, kept);
    free(text);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    bg_cindex_free(ns);
    free(text);
    return rc;
}

static int fbe_compact(bg_consent_backend_t *self, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    pthread_mutex_lock(&b->io);
    int rc = begin_write(b, err, errcap);
    if (rc == 0) {
        rc = compact_locked(b, err, errcap);
        flock(b->fd, LOCK_UN);
    }
    pthread_mutex_unlock(&b->io);
    return rc;
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

/* Is A a better consent to cite than B? Most specific, latest, smallest id. */
static int better(const fentry_t *a, const fentry_t *b)
{
    int ra = bg_consent_scope_rank(&a->scope), rb = bg_consent_scope_rank(&b->scope);
    if (ra != rb)
        return ra > rb;
    if (a->scope.granted_at != b->scope.granted_at)
        return a->scope.granted_at > b->scope.granted_at;
    return strcmp(a->id, b->id) < 0;
}

static int fbe_find(bg_consent_backend_t *self, const bg_consent_query_t *q,
                    bg_consent_match_t *out)
{
    fbe_t *b = (fbe_t *)self;
    maybe_check(b);
    if (atomic_load(&b->failed)) {
        out->miss = BG_CONSENT_MISS_UNAVAILABLE;
        return -1;
    }
    const fentry_t *best = NULL, *closest = NULL;
    bg_consent_miss_t deepest = BG_CONSENT_MISS_NO_CONSENT;
    int shard = bg_brlock_rdlock(&b->lock);
    const fstate_t *st = b->st;
    if (st->nb > 0) {
        for (const fentry_t *e = st->sb[bg_cindex_subject_hash(q->pseudonym) & (st->nb - 1)];
             e != NULL; e = e->snext) {
            if (memcmp(e->subject, q->pseudonym, BG_CONSENT_PSEUDONYM_LEN) != 0)
                continue;
            bg_consent_miss_t m = bg_consent_scope_eval(&e->scope, q);
            if (m == BG_CONSENT_MISS_NONE) {
                if (best == NULL || better(e, best))
                    best = e;
            } else if (m > deepest) {
                deepest = m; /* NO_CONSENT < every real miss */
                closest = e;
            }
        }
    }
    if (best != NULL) {
        bg_cindex_entry_export(best, &out->consent);
        out->miss = BG_CONSENT_MISS_NONE;
    } else {
        out->miss = deepest;
        if (closest != NULL && deepest != BG_CONSENT_MISS_SCOPE)
            memcpy(out->miss_id, closest->id, sizeof out->miss_id);
    }
    bg_brlock_rdunlock(&b->lock, shard);
    return best != NULL;
}

static int fbe_get(bg_consent_backend_t *self, const char *id, bg_consent_t *out)
{
    fbe_t *b = (fbe_t *)self;
    maybe_check(b);
    int shard = bg_brlock_rdlock(&b->lock);
    const fentry_t *e = bg_cindex_find_id(b->st, id);
    if (e != NULL)
        bg_cindex_entry_export(e, out);
    bg_brlock_rdunlock(&b->lock, shard);
    return e != NULL ? BG_CONSENT_OK : BG_CONSENT_ENOENT;
}

static int cmp_seq(const void *a, const void *b)
{
    const fentry_t *x = *(const fentry_t *const *)a, *y = *(const fentry_t *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int fbe_list(bg_consent_backend_t *self, const uint8_t *pseudonym, bg_consent_each_fn fn,
                    void *arg, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    bg_consent_t c;
    int rc = 0;
    maybe_check(b);
    int shard = bg_brlock_rdlock(&b->lock);
    const fstate_t *st = b->st;
    if (pseudonym == NULL) {
        for (size_t i = 0; i < st->n; i++) {
            bg_cindex_entry_export(st->v[i], &c);
            if (fn(arg, &c) != 0)
                break;
        }
    } else if (st->nb > 0) {
        /* The subject's chain, put back in grant order. */
        size_t n = 0, cap = 0;
        const fentry_t **v = NULL;
        const fentry_t *e = st->sb[bg_cindex_subject_hash(pseudonym) & (st->nb - 1)];
        for (; e != NULL; e = e->snext) {
            if (memcmp(e->subject, pseudonym, BG_CONSENT_PSEUDONYM_LEN) != 0)
                continue;
            const fentry_t **nv = bg_grow(v, &cap, n + 1, sizeof(const fentry_t *), 16);
            if (nv == NULL) {
                snprintf(err, errcap, "out of memory");
                rc = BG_CONSENT_ERR;
                break;
            }
            v = nv;
            v[n++] = e;
        }
        if (rc == 0 && n > 0) {
            qsort(v, n, sizeof(const fentry_t *), cmp_seq);
            for (size_t i = 0; i < n; i++) {
                bg_cindex_entry_export(v[i], &c);
                if (fn(arg, &c) != 0)
                    break;
            }
        }
        free(v);
    }
    bg_brlock_rdunlock(&b->lock, shard);
    return rc;
}

static int fbe_refresh(bg_consent_backend_t *self, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    pthread_mutex_lock(&b->io);
    int rc = refresh_locked(b, 1, err, errcap);
    if (rc != 0 && b->fail[0] != '\0')
        snprintf(err, errcap, "%s", b->fail);
    pthread_mutex_unlock(&b->io);
    return rc;
}

static int fbe_health(bg_consent_backend_t *self, char *buf, size_t cap)
{
    fbe_t *b = (fbe_t *)self;
    pthread_mutex_lock(&b->io);
    int rc = b->fail[0] != '\0' ? -1 : 0;
    snprintf(buf, cap, "%s", rc != 0 ? b->fail : "ok");
    pthread_mutex_unlock(&b->io);
    return rc;
}

static size_t fbe_count(bg_consent_backend_t *self)
{
    fbe_t *b = (fbe_t *)self;
    int shard = bg_brlock_rdlock(&b->lock);
    size_t n = b->st->n;
    bg_brlock_rdunlock(&b->lock, shard);
    return n;
}

static void fbe_close(bg_consent_backend_t *self)
{
    fbe_t *b = (fbe_t *)self;
    if (b == NULL)
        return;
    if (b->fd >= 0)
        close(b->fd);
    bg_cindex_free(b->st);
    bg_brlock_destroy(&b->lock);
    pthread_mutex_destroy(&b->io);
    free(b->path);
    free(b->dir);
    free(b);
}

bg_consent_backend_t *bg_consent_file_open(const char *path, const char *key_check,
                                           const bg_consent_options_t *opts, char **warning,
                                           char *err, size_t errcap)
{
    size_t len = 0, consumed = 0, line_no = 0;
    char *buf = NULL;
    if (warning != NULL)
        *warning = NULL;
    /* aligned: the lock shards are cache-line aligned */
    size_t size = (sizeof(fbe_t) + 63) / 64 * 64;
    fbe_t *b = aligned_alloc(64, size);
    if (b != NULL)
        memset(b, 0, size);
    if (b == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    b->fd = -1;
    b->base = (bg_consent_backend_t){
        .name = "file",
        .find = fbe_find,
        .grant = fbe_grant,
        .withdraw = fbe_withdraw,
        .get = fbe_get,
        .list = fbe_list,
        .refresh = fbe_refresh,
        .compact = fbe_compact,
        .health = fbe_health,
        .count = fbe_count,
        .close = fbe_close,
    };
    bg_brlock_init(&b->lock);
    pthread_mutex_init(&b->io, NULL);
    if (opts != NULL)
        b->opts = *opts;
    if (b->opts.check_interval_ms == 0)
        b->opts.check_interval_ms = DEFAULT_INTERVAL_MS;
    if (!(b->opts.compact_ratio > 0))
        b->opts.compact_ratio = DEFAULT_RATIO;
    if (b->opts.compact_min_lines == 0)
        b->opts.compact_min_lines = DEFAULT_MIN_LINES;
    if (b->opts.retain_ended_ms == 0)
        b->opts.retain_ended_ms = DEFAULT_RETAIN_MS;
    if (key_check != NULL) {
        snprintf(b->want_check, sizeof b->want_check, "%s", key_check);
        b->has_want = 1;
    }
    b->path = strdup(path);
    char *tmp = strdup(path);
    b->dir = tmp != NULL ? strdup(dirname(tmp)) : NULL;
    free(tmp);
    if (b->path == NULL || b->dir == NULL || (b->st = bg_cindex_new()) == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }

    int flags = b->opts.readonly ? O_RDONLY : O_RDWR | O_APPEND;
    b->fd = open(path, flags | O_CLOEXEC);
    if (b->fd < 0 && errno == ENOENT && b->opts.create && !b->opts.readonly) {
        b->fd = open(path, flags | O_CREAT | O_CLOEXEC, 0600);
        if (b->fd >= 0 && fsync_dir(b->dir) != 0) {
            snprintf(err, errcap, "%s: cannot fsync its directory: %s", path, strerror(errno));
            goto fail;
        }
    }
    struct stat st;
    if (b->fd < 0 || fstat(b->fd, &st) != 0) {
        snprintf(err, errcap, "%s: %s%s", path, strerror(errno),
                 errno == ENOENT && !b->opts.create ? " (no consent registry there)" : "");
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "%s: not a regular file", path);
        goto fail;
    }
    if ((buf = read_from(b->fd, 0, &len)) == NULL) {
        snprintf(err, errcap, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    if (bg_cjournal_load(b->st, NULL, buf, len, path, key_check, &line_no, &consumed, err,
                         errcap) != 0)
        goto fail;
    b->offset = consumed;
    b->line_no = line_no;
    note_seen(b, b->fd, len);
    if (len > consumed) {
        char msg[768];
        snprintf(msg, sizeof msg,
                 "%s:%zu: the last line is incomplete (%zu bytes, an interrupted write); "
                 "the %zu consents before it are loaded%s",
                 path, line_no + 1, len - consumed, b->st->n,
                 b->opts.readonly ? "" : "; the next change removes it");
        if (warning != NULL)
            *warning = strdup(msg);
    }
    free(buf);
    buf = NULL;

    /* A new journal gets its header (and so its key check) at once. */
    if (!b->opts.readonly && !b->st->has_header && b->has_want && b->st->n == 0 &&
        len == consumed) {
        pthread_mutex_lock(&b->io);
        int rc = begin_write(b, err, errcap);
        if (rc == 0) {
            if (!b->st->has_header)
                rc = append_durably(b, "", 0, 0, err, errcap);
            flock(b->fd, LOCK_UN);
        }
        pthread_mutex_unlock(&b->io);
        if (rc != 0)
            goto fail;
    }
    atomic_store(&b->next_check_us,
                 (long long)bg_util_mono_us() + (long long)b->opts.check_interval_ms * 1000);
    return &b->base;
fail:
    free(buf);
    if (warning != NULL) {
        free(*warning);
        *warning = NULL;
    }
    fbe_close(&b->base);
    return NULL;
}
