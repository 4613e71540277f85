/*
 * Audit recovery at open: the newest file is scanned record by record
 * (shape, hash, chain); a torn or unparsable tail left by a crash is cut
 * and a repair record queued, damage before the tail refuses to open, and
 * the chain continues from the last good record. The opening thread only,
 * before the writer starts. What is repaired and why: docs/audit.md.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* ------------------------------------------------------------------------
 * Open: recovery of the newest file
 * ------------------------------------------------------------------------ */

typedef struct {
    size_t good_len; /* bytes of valid records from the start */
    uint64_t nrec, last_seq, since_ckpt;
    char last_hash[BG_AUDIT_HEX_LEN + 1];
    int last_close, last_rotate; /* the last record is such a checkpoint */
    size_t cut;                  /* bytes after good_len to cut */
    const char *cut_why;
    int damaged;
    char damage[300];
} scan_t;

/* Does [P, END) hold a line shaped like a record? */
static int has_record_line(const char *p, const char *end)
{
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        bg_audit_line_t pl;
        if (bg_audit_chain_parse_line(p, ll, &pl) == 0)
            return 1;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return 0;
}

/* Is the record on this line a writer checkpoint (type right after prev)? */
static int line_is_checkpoint(const char *line, size_t len, const char *reason)
{
    static const char tag[] = "\"type\":\"checkpoint\"";
    /* {"seq":N,"prev":"<64>", then the first member. */
    const char *p = memmem(line, len, ",\"prev\":\"", 9);
    if (p == NULL)
        return 0;
    p += 9 + BG_AUDIT_HEX_LEN + 1;
    size_t rest = len - (size_t)(p - line);
    if (rest < sizeof tag || p[0] != ',' || memcmp(p + 1, tag, sizeof tag - 1) != 0)
        return 0;
    if (reason == NULL)
        return 1;
    char want[48];
    int n = snprintf(want, sizeof want, "\"reason\":\"%s\"", reason);
    return memmem(line, len, want, (size_t)n) != NULL;
}

static void scan_file(bg_audit_chain_t *ch, const char *name, const char *data, size_t len,
                      scan_t *s)
{
    memset(s, 0, sizeof *s);
    size_t off = 0;
    uint64_t lineno = 0;
    while (off < len) {
        lineno++;
        const char *line = data + off;
        const char *nl = memchr(line, '\n', len - off);
        if (nl == NULL) {
            s->cut = len - off;
            s->cut_why = "torn last line";
            return;
        }
        size_t ll = (size_t)(nl - line);
        bg_audit_line_t pl;
        char hx[BG_AUDIT_HEX_LEN + 1];
        const char *why = NULL;
        int shaped = bg_audit_chain_parse_line(line, ll, &pl) == 0;
        if (!shaped)
            why = "unparsable line";
        else if (!bg_audit_chain_rehash(ch, line, &pl, hx))
            why = "hash mismatch";
        else if (s->nrec > 0 && (pl.seq != s->last_seq + 1 || strcmp(pl.prev, s->last_hash) != 0))
            why = "chain broken";
        if (why != NULL) {
            if (!shaped && !has_record_line(nl + 1, data + len)) {
                s->cut = len - off;
                s->cut_why = "unparsable tail";
                return;
            }
            s->damaged = 1;
            snprintf(s->damage, sizeof s->damage, "%s:%" PRIu64 ": %s", name, lineno, why);
            return;
        }
        s->nrec++;
        s->last_seq = pl.seq;
        memcpy(s->last_hash, pl.hash, sizeof s->last_hash);
        s->last_close = s->last_rotate = 0;
        if (line_is_checkpoint(line, ll, NULL)) {
            s->since_ckpt = 0;
            s->last_close = line_is_checkpoint(line, ll, "close");
            s->last_rotate = line_is_checkpoint(line, ll, "rotate");
        } else {
            s->since_ckpt++;
        }
        off += ll + 1;
        s->good_len = off;
    }
}

int bg_audit_recover(bg_audit_t *a, const char **shutdown, char *err, size_t errcap)
{
    char **names = NULL;
    size_t n = 0;
    int rc = -1;
    char reason[200];
    *shutdown = "none";
    if (bg_audit_files_scan(a->dirfd, a->prefix, &names, &n) != 0) {
        snprintf(err, errcap, "cannot list audit directory %s: %s", a->dir, strerror(errno));
        return -1;
    }
    if (n == 0) {
        if (bg_audit_new_file(a, reason, sizeof reason) != 0) {
            snprintf(err, errcap, "%s: %s", a->dir, reason);
            goto out;
        }
        rc = 0;
        goto out;
    }

    const char *newest = names[n - 1];
    uint64_t index = 0;
    uint32_t day = 0;
    bg_audit_files_parse_name(a->prefix, newest, &index, &day);
    int fd = openat(a->dirfd, newest, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "cannot open %s/%s: %s", a->dir, newest, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errcap, "cannot stat %s/%s: %s", a->dir, newest, strerror(errno));
        close(fd);
        goto out;
    }
    scan_t s;
    memset(&s, 0, sizeof s);
    if (st.st_size > 0) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            snprintf(err, errcap, "cannot read %s/%s: %s", a->dir, newest, strerror(errno));
            close(fd);
            goto out;
        }
        scan_file(a->chain, newest, map, (size_t)st.st_size, &s);
        munmap(map, (size_t)st.st_size);
    }
    if (s.damaged) {
        snprintf(err, errcap,
                 "audit file damaged other than at its tail: %s/%s (run 'bordergate audit verify "
                 "%s'; to continue, move the file aside: a new file then continues the chain)",
                 a->dir, s.damage, a->dir);
        close(fd);
        goto out;
    }
    if (s.cut > 0) {
        if (ftruncate(fd, (off_t)s.good_len) != 0 || fdatasync(fd) != 0) {
            snprintf(err, errcap, "cannot repair %s/%s: %s", a->dir, newest, strerror(errno));
            close(fd);
            goto out;
        }
        bg_warn("audit: %s: cut %zu bytes (%s) left by a crash", newest, s.cut, s.cut_why);
        pthread_mutex_lock(&a->stats_lock);
        a->st.repairs++;
        pthread_mutex_unlock(&a->stats_lock);
    }
    a->fd = fd;
    snprintf(a->cur_name, sizeof a->cur_name, "%s", newest);
    a->cur_index = index;
    a->cur_day = day;
    a->size = s.good_len;
    if (n >= 2)
        snprintf(a->prev_file, sizeof a->prev_file, "%s", names[n - 2]);
    pthread_mutex_lock(&a->stats_lock);
    snprintf(a->st.current_file, sizeof a->st.current_file, "%s", newest);
    pthread_mutex_unlock(&a->stats_lock);

    if (s.nrec > 0) {
        bg_audit_chain_set(a->chain, s.last_seq + 1, s.last_hash);
        a->since_ckpt = s.since_ckpt;
        a->cur_closed = s.last_rotate;
        *shutdown = s.last_close ? "clean" : "unclean";
    } else {
        /* Nothing valid in the newest file (created, then a crash): it
         * continues from the previous file's last record. */
        *shutdown = "unclean";
        if (n >= 2) {
            bg_audit_line_t pl;
            char sub[256];
            if (bg_audit_read_last_record(a, names[n - 2], &pl, NULL, sub, sizeof sub) != 0) {
                snprintf(err, errcap, "%s: %s", a->dir, sub);
                goto out;
            }
            bg_audit_chain_set(a->chain, pl.seq + 1, pl.hash);
        }
        if (bg_audit_pending_file_start(a, newest, index, n >= 2 ? names[n - 2] : NULL) != 0) {
            snprintf(err, errcap, "out of memory");
            goto out;
        }
    }
    if (s.since_ckpt > 0)
        a->uncovered_mono = bg_util_mono_us();
    if (s.cut > 0) {
        char ts[40];
        bg_audit_now_string(a, ts, sizeof ts);
        if (bg_audit_pending_add(
                &a->pending, a->pending.n,
                "\"type\":\"repair\",\"time\":\"%s\",\"file\":\"%s\",\"cut_bytes\":%zu,"
                "\"cut_reason\":\"%s\",\"after_seq\":%" PRIu64,
                ts, newest, s.cut, s.cut_why, bg_audit_chain_next_seq(a->chain) - 1) != 0) {
            snprintf(err, errcap, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    bg_audit_files_free(names, n);
    return rc;
}
