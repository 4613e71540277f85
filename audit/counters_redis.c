/*
 * Fleet-wide yearly counters in Redis (audit/counters.h "Fleet"): every
 * instance copies the lines of its own counters journal into Redis sets of
 * pseudonyms, and the fleet figure is the sets' cardinalities. Exact: a set
 * holds each pseudonym once however many instances added it (a person sent
 * through three daemons counts once), and SADD is idempotent, so replaying a
 * line twice changes nothing.
 *
 * Keys, for year Y, kind K (non_sensitive, sensitive, exempt_non_sensitive,
 * exempt_sensitive), recipient R ("" when the route declares none):
 *   bg:vol:Y:K             bg:vol:Y:K:r:R         the kind's people
 *   bg:vol:Y:people        bg:vol:Y:people:r:R    union of the two counted kinds
 *   bg:vol:Y:xpeople       bg:vol:Y:xpeople:r:R   union of the two exempt kinds
 *   bg:vol:Y:people_by_device   bg:vol:Y:people_by_device:r:R    of people, those
 *   bg:vol:Y:xpeople_by_device  bg:vol:Y:xpeople_by_device:r:R   whose line says
 *                          "by":"device" (identified by a device identifier)
 *   bg:vol:Y:recipients    the recipients seen
 *
 * The journal is the write-ahead log: a line is pushed after it was
 * written locally, and the pushed offset advances only after Redis
 * answered every command of the batch. Redis unreachable: lines wait in the
 * journal and are pushed when it returns (no count lost); a restart pushes
 * the journal again from the start (idempotent). A thread tails the file
 * every PUSH_INTERVAL_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/counters.h"
#include "common/log.h"
#include "common/util.h"
#include "store/redis.h"

#define PUSH_INTERVAL_MS 100
#define BATCH_LINES 256
#define CMDS_PER_LINE 7 /* at most: 5, and 2 more for a line "by":"device" */
#define READ_CHUNK 65536

struct bg_counters_fleet {
    char *path;
    bg_redis_t *r;
    char display[300];
    pthread_t thread;
    atomic_int stop;
    atomic_llong pushed; /* bytes of the journal pushed */
    atomic_llong size;   /* bytes of complete lines seen in the journal */
    atomic_ullong lines; /* lines pushed since start */
    char *buf;           /* unpushed bytes read from the file */
    size_t len, cap;
};

/* The SADDs of one journal line (the strings live in the struct). */
typedef struct {
    int n; /* commands used */
    char k[CMDS_PER_LINE][400];
    const char *argv[CMDS_PER_LINE][3];
    char subject[65];
    char recipient[256];
} line_cmds_t;

/* Parse one journal line into LC (LC->n commands). 0, or -1 when it is
 * not a counters line. */
static int line_to_cmds(const char *line, size_t len, line_cmds_t *lc)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    if (o == NULL)
        return -1;
    json_t *jy = json_object_get(o, "year");
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *rcpt = json_string_value(json_object_get(o, "recipient"));
    const char *subj = json_string_value(json_object_get(o, "subject"));
    int rc = -1;
    if (json_is_integer(jy) && kind != NULL && subj != NULL && strlen(subj) == 64 &&
        (rcpt == NULL || strlen(rcpt) < 256)) {
        long long y = json_integer_value(jy);
        int exempt = strncmp(kind, "exempt_", 7) == 0;
        const char *union_set = exempt ? "xpeople" : "people";
        if (rcpt == NULL)
            rcpt = "";
        snprintf(lc->subject, sizeof lc->subject, "%s", subj);
        snprintf(lc->recipient, sizeof lc->recipient, "%s", rcpt);
        snprintf(lc->k[0], sizeof lc->k[0], "bg:vol:%lld:%s", y, kind);
        snprintf(lc->k[1], sizeof lc->k[1], "bg:vol:%lld:%s:r:%s", y, kind, rcpt);
        snprintf(lc->k[2], sizeof lc->k[2], "bg:vol:%lld:%s", y, union_set);
        snprintf(lc->k[3], sizeof lc->k[3], "bg:vol:%lld:%s:r:%s", y, union_set, rcpt);
        snprintf(lc->k[4], sizeof lc->k[4], "bg:vol:%lld:recipients", y);
        lc->n = 5;
        const char *by = json_string_value(json_object_get(o, "by"));
        if (by != NULL && strcmp(by, "device") == 0) {
            snprintf(lc->k[5], sizeof lc->k[5], "bg:vol:%lld:%s_by_device", y, union_set);
            snprintf(lc->k[6], sizeof lc->k[6], "bg:vol:%lld:%s_by_device:r:%s", y, union_set,
                     rcpt);
            lc->n = 7;
        }
        for (int i = 0; i < lc->n; i++) {
            lc->argv[i][0] = "SADD";
            lc->argv[i][1] = lc->k[i];
            lc->argv[i][2] = i == 4 ? lc->recipient : lc->subject;
        }
        rc = 0;
    }
    json_decref(o);
    return rc;
}

/*
 * Push the complete lines in F->buf (up to BATCH_LINES at a time). Returns
 * the bytes pushed, or -1 when Redis failed (nothing of the failed batch
 * counts as pushed).
 */
static long push_batch(bg_counters_fleet_t *f)
{
    static line_cmds_t lc[BATCH_LINES]; /* ~1 MB: static, only the push thread runs this */
    int argc[BATCH_LINES * CMDS_PER_LINE];
    const char *const *argv[BATCH_LINES * CMDS_PER_LINE];
    redisReply *rep[BATCH_LINES * CMDS_PER_LINE];
    size_t used = 0;
    int nl = 0, nc = 0;
    while (nl < BATCH_LINES) {
        char *nlp = memchr(f->buf + used, '\n', f->len - used);
        if (nlp == NULL)
            break;
        size_t ll = (size_t)(nlp - (f->buf + used));
        if (ll > 0 && line_to_cmds(f->buf + used, ll, &lc[nl]) == 0) {
            for (int i = 0; i < lc[nl].n; i++) {
                argc[nc] = 3;
                argv[nc] = lc[nl].argv[i];
                nc++;
            }
            nl++;
        }
        used += ll + 1;
    }
    if (nc > 0) {
        char err[512];
        if (bg_redis_pipeline(f->r, nc, argc, argv, NULL, rep, err, sizeof err) != 0)
            return -1;
        int bad = 0;
        for (int i = 0; i < nc; i++) {
            bad |= rep[i]->type == REDIS_REPLY_ERROR;
            freeReplyObject(rep[i]);
        }
        if (bad) {
            bg_warn("counters: %s refused an addition; retrying", f->display);
            return -1;
        }
    }
    memmove(f->buf, f->buf + used, f->len - used);
    f->len -= used;
    atomic_fetch_add(&f->lines, (unsigned long long)nl);
    return (long)used;
}

/* Only this thread touches the fd, buf and the offsets' writes. */
static void *push_main(void *arg)
{
    bg_counters_fleet_t *f = arg;
    int fd = -1;
    long long read_off = 0;
    int final = 0;
    for (;;) {
        if (atomic_load(&f->stop))
            final = 1;
        if (fd < 0)
            fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            while (f->len <= 64u * 1024 * 1024) { /* push what we hold before reading more */
                if (f->cap - f->len < READ_CHUNK) {
                    size_t nc = f->cap == 0 ? 2 * READ_CHUNK : f->cap * 2;
                    char *nb = realloc(f->buf, nc);
                    if (nb == NULL)
                        break;
                    f->buf = nb;
                    f->cap = nc;
                }
                ssize_t n = pread(fd, f->buf + f->len, READ_CHUNK, (off_t)read_off);
                if (n <= 0)
                    break;
                f->len += (size_t)n;
                read_off += n;
            }
            char *last = f->len > 0 ? memrchr(f->buf, '\n', f->len) : NULL;
            long long complete = last != NULL ? (long long)(last - f->buf) + 1 : 0;
            atomic_store(&f->size, atomic_load(&f->pushed) + complete);
            long pushed;
            while (f->len > 0 && memchr(f->buf, '\n', f->len) != NULL &&
                   (pushed = push_batch(f)) > 0)
                atomic_fetch_add(&f->pushed, pushed);
        }
        if (final)
            break;
        for (int i = 0; i < PUSH_INTERVAL_MS / 20 && !atomic_load(&f->stop); i++)
            poll(NULL, 0, 20);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

bg_counters_fleet_t *bg_counters_fleet_start(const char *counters_file,
                                             const struct bg_redis_cfg *cfg, char *err,
                                             size_t errcap)
{
    bg_counters_fleet_t *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = strdup(counters_file)) == NULL ||
        (f->r = bg_redis_new(cfg)) == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    snprintf(f->display, sizeof f->display, "%s", cfg->display);
    int rc = pthread_create(&f->thread, NULL, push_main, f);
    if (rc != 0) {
        snprintf(err, errcap, "cannot start the counters push thread: %s", strerror(rc));
        goto fail;
    }
    return f;
fail:
    if (f != NULL) {
        bg_redis_free(f->r);
        free(f->path);
    }
    free(f);
    return NULL;
}

void bg_counters_fleet_stop(bg_counters_fleet_t *f)
{
    if (f == NULL)
        return;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    long long left = atomic_load(&f->size) - atomic_load(&f->pushed);
    if (left > 0)
        bg_warn("counters: %lld byte(s) of the counters journal not yet in %s; they are pushed "
                "at the next start",
                left, f->display);
    bg_redis_free(f->r);
    free(f->path);
    free(f->buf);
    free(f);
}

void bg_counters_fleet_stats(bg_counters_fleet_t *f, int *up, long long *pending_bytes,
                             unsigned long long *lines)
{
    *up = bg_redis_up(f->r);
    *pending_bytes = atomic_load(&f->size) - atomic_load(&f->pushed);
    *lines = atomic_load(&f->lines);
}

/* The NKEYS set sizes in fill_keys' order into the totals or a recipient
 * (both have the same members). */
#define SET_COUNTS(dst, v)                                                                         \
    do {                                                                                           \
        (dst)->non_sensitive = (v)[0];                                                             \
        (dst)->sensitive = (v)[1];                                                                 \
        (dst)->people = (v)[2];                                                                    \
        (dst)->exempt_non_sensitive = (v)[3];                                                      \
        (dst)->exempt_sensitive = (v)[4];                                                          \
        (dst)->exempt_people = (v)[5];                                                             \
        (dst)->people_by_device = (v)[6];                                                          \
        (dst)->exempt_people_by_device = (v)[7];                                                   \
    } while (0)

/* ------------------------------------------------------------------------
 * Reading the fleet figure
 * ------------------------------------------------------------------------ */

static int scard_all(bg_redis_t *r, char keys[][400], int n, uint64_t *out, char *err,
                     size_t errcap)
{
    int argc[64];
    const char *av[64][2];
    const char *const *argv[64];
    redisReply *rep[64];
    for (int i = 0; i < n; i++) {
        argc[i] = 2;
        av[i][0] = "SCARD";
        av[i][1] = keys[i];
        argv[i] = av[i];
    }
    if (bg_redis_pipeline(r, n, argc, argv, NULL, rep, err, errcap) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rep[i]->type == REDIS_REPLY_INTEGER)
            out[i] = (uint64_t)rep[i]->integer;
        else
            rc = -1;
        freeReplyObject(rep[i]);
    }
    if (rc != 0)
        snprintf(err, errcap, "unexpected answer from the store");
    return rc;
}

#define NKEYS 8

static void fill_keys(char keys[][400], int year, const char *r)
{
    static const char *const names[NKEYS] = {"non_sensitive",        "sensitive",        "people",
                                             "exempt_non_sensitive", "exempt_sensitive", "xpeople",
                                             "people_by_device",     "xpeople_by_device"};
    for (int i = 0; i < NKEYS; i++) {
        if (r == NULL)
            snprintf(keys[i], 400, "bg:vol:%d:%s", year, names[i]);
        else
            snprintf(keys[i], 400, "bg:vol:%d:%s:r:%s", year, names[i], r);
    }
}

static int by_people_desc(const void *a, const void *b)
{
    const bg_counters_recipient_t *x = a, *y = b;
    if (x->people != y->people)
        return x->people < y->people ? 1 : -1;
    return strcmp(x->recipient, y->recipient);
}

int bg_counters_fleet_snapshot(const struct bg_redis_cfg *cfg, int year,
                               const bg_counters_thresholds_t *thresholds,
                               bg_counters_snapshot_t *out, char *err, size_t errcap)
{
    /* The defaults filled in a local: a call given a pointer into *OUT
     * leaves clang's analyzer unsure of every member (recipients). */
    bg_counters_thresholds_t th;
    if (thresholds != NULL)
        th = *thresholds;
    else
        bg_counters_thresholds_default(&th);
    memset(out, 0, sizeof *out);
    out->year = year;
    out->thresholds = th;
    bg_redis_t *r = bg_redis_new(cfg);
    if (r == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    char keys[NKEYS][400];
    uint64_t v[NKEYS];
    int rc = -1;
    fill_keys(keys, year, NULL);
    if (scard_all(r, keys, NKEYS, v, err, errcap) != 0)
        goto out;
    SET_COUNTS(out, v);
    char rk[64];
    snprintf(rk, sizeof rk, "bg:vol:%d:recipients", year);
    const char *sm[2] = {"SMEMBERS", rk};
    redisReply *mem = bg_redis_cmd(r, 2, sm, NULL, err, errcap);
    if (mem == NULL)
        goto out;
    if (mem->type == REDIS_REPLY_ARRAY && mem->elements > 0) {
        out->recipients = calloc(mem->elements, sizeof *out->recipients);
        if (out->recipients == NULL) {
            snprintf(err, errcap, "out of memory");
            freeReplyObject(mem);
            goto out;
        }
    }
    for (size_t i = 0; out->recipients != NULL && i < mem->elements; i++) {
        const redisReply *e = mem->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len >= 256)
            continue;
        fill_keys(keys, year, e->str);
        if (scard_all(r, keys, NKEYS, v, err, errcap) != 0) {
            freeReplyObject(mem);
            goto out;
        }
        bg_counters_recipient_t *rc_ = &out->recipients[out->nrecipients];
        if ((rc_->recipient = strdup(e->str)) == NULL) { /* never a short fleet figure */
            snprintf(err, errcap, "out of memory");
            freeReplyObject(mem);
            goto out;
        }
        SET_COUNTS(rc_, v);
        out->nrecipients++;
    }
    freeReplyObject(mem);
    /* The same levels as bg_counters_snapshot. */
    out->level = bg_counters_level(&out->thresholds, out->non_sensitive, out->sensitive);
    for (size_t i = 0; i < out->nrecipients; i++) {
        bg_counters_recipient_t *x = &out->recipients[i];
        x->own_level = bg_counters_level(&out->thresholds, x->non_sensitive, x->sensitive);
        x->level = x->people == 0              ? BG_VOLUME_NONE
                   : out->level > x->own_level ? out->level
                                               : x->own_level;
    }
    if (out->nrecipients > 1)
        qsort(out->recipients, out->nrecipients, sizeof *out->recipients, by_people_desc);
    rc = 0;
out:
    if (rc != 0)
        bg_counters_snapshot_free(out);
    bg_redis_free(r);
    return rc;
}

json_t *bg_counters_fleet_volumes_json(const struct bg_redis_cfg *cfg, int year,
                                       const bg_counters_thresholds_t *thresholds, char *err,
                                       size_t errcap)
{
    bg_counters_snapshot_t s;
    if (year == 0)
        year = bg_counters_year_of((int64_t)bg_util_wall_ms());
    if (bg_counters_fleet_snapshot(cfg, year, thresholds, &s, err, errcap) != 0)
        return NULL;
    json_t *doc = bg_counters_snapshot_json(&s, 1);
    if (doc != NULL) {
        json_object_set_new(doc, "source", json_string("redis"));
        json_object_set_new(doc, "store", json_string(cfg->display));
    }
    bg_counters_snapshot_free(&s);
    return doc;
}
