/*
 * Queries over the rollups (audit/rollup.h): the saved day files and the
 * days of an update not saved yet, read in slices for a time window and
 * handed to a callback as report entries; the latest blocked decisions read
 * back from the raw log; an hour's text as the fleet publishes it. The day
 * files are written by audit/rollup.c (their lines: audit/rollup_int.h).
 */
#include "audit/rollup.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/report.h"
#include "audit/rollup_int.h"
#include "common/grow.h"
#include "common/hex.h"

#define HOUR_MS BG_ROLLUP_HOUR_MS
#define DAY_NAME BG_ROLLUP_DAY_NAME
#define NO_DAY BG_ROLLUP_NO_DAY
#define HOUR_FORMAT BG_ROLLUP_HOUR_FORMAT

int bg_rollup_window_ok(int64_t from_ms, int64_t to_ms)
{
    return (from_ms == BG_REPORT_NO_TIME || from_ms % HOUR_MS == 0) &&
           (to_ms == BG_REPORT_NO_TIME || to_ms % HOUR_MS == 0);
}

typedef struct {
    int64_t from, to;
    char first[DAY_NAME], last[DAY_NAME]; /* day names in the window ("" open) */
    int blocked_limit;
    bg_rollup_entry_cb cb;
    void *arg;
    blk_t *blk; /* seq: the order over all directories */
    size_t nblk, capblk;
    int stop;
    /* Shapes parsed so far, by their text: the same shape recurs in every
     * day file and every hour of a fleet's text, and parsing it again each
     * time was most of a long window's cost. Shared is safe: every use sets
     * the entry's time first and puts back what it changes (q_person). */
    json_t *shapes;
    /* Person lines read but not handed out yet (q_person, q_flush). */
    struct qperson *pbuf;
    size_t npbuf, cappbuf;
    /* With a people callback: the same, parsed (q_person_fast). */
    bg_rollup_people_cb pcb;
    struct qfast *fbuf;
    size_t nfbuf, capfbuf;
    uint32_t *fidx; /* the findings' indexes of every person in fbuf */
    size_t nfidx, capfidx;
    bg_report_person_t *group; /* the people of one entry, for the callback */
    size_t capgroup;
    /* Daily (bg_rollup_query_set_daily): the entries inside the window,
     * summed per (shape, China day) until the end of the query. */
    int daily;
    struct agg *agg;
    size_t nagg, capagg;
    size_t *aix; /* open addressing over agg: index + 1, 0 empty */
    size_t capaix;
} query_t;

typedef struct agg {
    json_t *rec; /* the shape (a reference) */
    int64_t day; /* its China day (hour / day), or the hour itself without a time */
    int64_t h;   /* the first hour of the window it was seen in */
    uint64_t n;  /* decisions */
} agg_t;

/* Aggregates kept before they are handed out anyway: a bound on the
 * memory of a window with more distinct shapes than the shape cache. */
#define AGG_MAX (1u << 20)

typedef struct qfast {
    size_t idx;    /* the entry */
    size_t off, n; /* the person's findings: fidx[off..off+n) */
    uint8_t key[16];
    int listed;
} qfast_t;

typedef struct qperson {
    size_t idx;
    char *rest; /* "PSEUDONYM FINDINGS X", owned */
} qperson_t;

#define SHAPE_CACHE_MAX 65536

/* The shape of T line JSON (a reference, NULL when not an object) */
static json_t *q_shape(query_t *q, const char *json)
{
    json_t *r = q->shapes != NULL ? json_object_get(q->shapes, json) : NULL;
    if (r != NULL)
        return json_incref(r);
    r = json_loads(json, 0, NULL);
    if (!json_is_object(r)) {
        json_decref(r);
        return NULL;
    }
    if (q->shapes == NULL)
        q->shapes = json_object();
    if (q->shapes != NULL && json_object_size(q->shapes) < SHAPE_CACHE_MAX)
        json_object_set(q->shapes, json, r); /* a failure only loses the cache */
    return r;
}

static int in_window(const query_t *q, int64_t h)
{
    if (h == BG_REPORT_NO_TIME)
        return q->from == BG_REPORT_NO_TIME && q->to == BG_REPORT_NO_TIME;
    return (q->from == BG_REPORT_NO_TIME || h >= q->from) &&
           (q->to == BG_REPORT_NO_TIME || h < q->to);
}

static int day_in_window(const query_t *q, const char *name)
{
    if (strcmp(name, NO_DAY) == 0)
        return q->from == BG_REPORT_NO_TIME && q->to == BG_REPORT_NO_TIME;
    return (q->first[0] == '\0' || strcmp(name, q->first) >= 0) &&
           (q->last[0] == '\0' || strcmp(name, q->last) <= 0);
}

/* The (hour, shape) entries of one day file or update being read, by
 * index: the shape parsed (a reference; NULL when damaged or outside the
 * window) and its hour. */
typedef struct {
    json_t **rec;
    int64_t *h;
    size_t n, cap;
} shapes_t;

static void shapes_free(shapes_t *sh)
{
    for (size_t i = 0; i < sh->n; i++)
        json_decref(sh->rec[i]);
    free(sh->rec);
    free(sh->h);
    memset(sh, 0, sizeof *sh);
}

/* REC's "time": hour H (RFC 3339), or none. */
static void set_time(json_t *rec, int64_t h)
{
    if (h == BG_REPORT_NO_TIME) {
        json_object_del(rec, "time");
        return;
    }
    char hour[40];
    time_t s = (time_t)(h / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(hour, sizeof hour, "%Y-%m-%dT%H:00:00Z", &tm);
    json_object_set_new(rec, "time", json_string(hour));
}

/* Hand out the daily aggregates (each shape once per day, at the first
 * hour it was seen in) and forget them. */
static void agg_flush(query_t *q)
{
    for (size_t i = 0; i < q->nagg; i++) {
        if (!q->stop) {
            set_time(q->agg[i].rec, q->agg[i].h);
            q->stop = q->cb(q->arg, q->agg[i].rec, q->agg[i].n, 0, 0) != 0;
        }
        json_decref(q->agg[i].rec);
    }
    q->nagg = 0;
    if (q->aix != NULL)
        memset(q->aix, 0, q->capaix * sizeof *q->aix);
}

static size_t agg_hash(const json_t *rec, int64_t day, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)rec ^ ((uint64_t)day * 0x9e3779b97f4a7c15ull);
    x ^= x >> 29;
    return (size_t)(x * 0xbf58476d1ce4e5b9ull >> 20) & (cap - 1);
}

/* Entry (hour H, shape REC - borrowed, in the window) of weight N into the
 * daily aggregates. 0, or -1 when out of memory. */
static int agg_add(query_t *q, json_t *rec, int64_t h, uint64_t n)
{
    const int64_t day_ms = 86400000, china = 8 * 3600000;
    int64_t day = h == BG_REPORT_NO_TIME
                      ? h
                      : (h + china - ((h + china) % day_ms + day_ms) % day_ms) / day_ms;
    if (q->nagg >= AGG_MAX)
        agg_flush(q);
    if ((q->nagg + 1) * 2 > q->capaix) {
        size_t nc = q->capaix ? q->capaix * 2 : 1024;
        size_t *ni = calloc(nc, sizeof *ni);
        if (ni == NULL)
            return -1;
        for (size_t i = 0; i < q->nagg; i++) {
            size_t j = agg_hash(q->agg[i].rec, q->agg[i].day, nc);
            while (ni[j] != 0)
                j = (j + 1) & (nc - 1);
            ni[j] = i + 1;
        }
        free(q->aix);
        q->aix = ni;
        q->capaix = nc;
    }
    size_t j = agg_hash(rec, day, q->capaix);
    for (; q->aix[j] != 0; j = (j + 1) & (q->capaix - 1)) {
        agg_t *a = &q->agg[q->aix[j] - 1];
        if (a->rec == rec && a->day == day) {
            a->n += n;
            return 0;
        }
    }
    agg_t *na = bg_grow(q->agg, &q->capagg, q->nagg + 1, sizeof *na, 256);
    if (na == NULL)
        return -1;
    q->agg = na;
    q->agg[q->nagg] = (agg_t){json_incref(rec), day, h, n};
    q->aix[j] = ++q->nagg;
    return 0;
}

/* Entry (hour H, shape REC - borrowed) of weight N: handed to the callback
 * when in the window, and kept as the next index of SH for the people. */
static int q_entry(query_t *q, shapes_t *sh, int64_t h, json_t *rec, uint64_t n)
{
    if (sh->n == sh->cap) {
        size_t nc = sh->cap ? sh->cap * 2 : 64;
        json_t **nr = realloc(sh->rec, nc * sizeof(json_t *));
        if (nr == NULL)
            return -1;
        sh->rec = nr;
        int64_t *nh = realloc(sh->h, nc * sizeof *nh);
        if (nh == NULL)
            return -1;
        sh->h = nh;
        sh->cap = nc;
    }
    if (rec != NULL && !in_window(q, h))
        rec = NULL;
    if (rec != NULL && !q->stop && q->daily) {
        if (agg_add(q, rec, h, n) != 0)
            return -1;
    } else if (rec != NULL && !q->stop) {
        set_time(rec, h);
        q->stop = q->cb(q->arg, rec, n, 0, 0) != 0;
    }
    sh->rec[sh->n] = json_incref(rec); /* NULL: damaged or outside: `audit rebuild` */
    sh->h[sh->n++] = h;
    return 0;
}

/* Person REST ("PSEUDONYM FINDINGS X", bg_rollup_person_ok) of entry IDX,
 * parsed for the people callback. */
static int q_person_fast(query_t *q, size_t idx, const char *rest)
{
    qfast_t *fb = bg_grow(q->fbuf, &q->capfbuf, q->nfbuf + 1, sizeof *fb, 256);
    if (fb == NULL)
        return -1;
    q->fbuf = fb;
    qfast_t *x = &q->fbuf[q->nfbuf];
    x->idx = idx;
    x->off = q->nfidx;
    x->n = 0;
    if (bg_hex_decode(rest, 32, x->key, 16, 0) != 16)
        return 0;
    const char *p = rest + 33;
    while (*p >= '0' && *p <= '9') {
        char *end;
        unsigned long k = strtoul(p, &end, 10);
        uint32_t *fi = bg_grow(q->fidx, &q->capfidx, q->nfidx + 1, sizeof *fi, 256);
        if (fi == NULL)
            return -1;
        q->fidx = fi;
        q->fidx[q->nfidx++] = k > UINT32_MAX ? UINT32_MAX : (uint32_t)k;
        x->n++;
        p = *end == ',' ? end + 1 : end;
    }
    x->listed = p[0] == ' ' ? p[1] == '1' : p[0] == '-' && p[2] == '1';
    q->nfbuf++;
    return 0;
}

/* A person line ("IDX PSEUDONYM FINDINGS X") of the entries SH: kept until
 * q_flush hands out the people of each entry together. */
static int q_person(query_t *q, const shapes_t *sh, uint64_t idx, const char *rest)
{
    if (idx >= sh->n || sh->rec[idx] == NULL || q->stop || !bg_rollup_person_ok(rest))
        return 0;
    if (q->pcb != NULL)
        return q_person_fast(q, (size_t)idx, rest);
    qperson_t *np = bg_grow(q->pbuf, &q->cappbuf, q->npbuf + 1, sizeof *np, 256);
    if (np == NULL)
        return -1;
    q->pbuf = np;
    char *r = strdup(rest);
    if (r == NULL)
        return -1;
    q->pbuf[q->npbuf].idx = (size_t)idx;
    q->pbuf[q->npbuf++].rest = r;
    return 0;
}

static int qperson_order(const void *a, const void *b)
{
    const qperson_t *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Add person REST ("PSEUDONYM FINDINGS X") to entry REC: for each finding
 * of the shape naming them (among its first NF) a copy naming them, and
 * them to the subjects list when X is 1. 0, or -1 when out of memory. */
static int add_person(json_t *rec, size_t nf, const char *rest)
{
    const char *sp1 = strchr(rest, ' '), *sp2 = strchr(sp1 + 1, ' ');
    json_t *fs = json_object_get(rec, "findings"), *ss = json_object_get(rec, "subjects");
    json_t *name = json_stringn(rest, (size_t)(sp1 - rest));
    if (name == NULL)
        return -1;
    for (const char *p = sp1 + 1; p < sp2 && *p != '-';) {
        char *end;
        unsigned long k = strtoul(p, &end, 10);
        json_t *f = k < nf ? json_array_get(fs, k) : NULL, *c;
        if (json_is_object(f) && (c = json_copy(f)) != NULL) {
            json_object_set(c, "subject", name);
            json_array_append_new(fs, c);
        }
        if (end == p)
            break;
        p = *end == ',' ? end + 1 : end;
    }
    if (sp2[1] == '1' && json_is_array(ss))
        json_array_append_new(ss, json_pack("{s:O}", "pseudonym", name));
    json_decref(name);
    return 0;
}

/*
 * Hand out the people kept by q_person: for each entry, ONE record of
 * weight 0 (it adds people, counts nothing) - the shape, plus a copy of
 * each finding per person it names, plus the people its subjects list
 * names - instead of one record per person. The report unions sets, so
 * any split of an entry's people gives the same figures; one record per
 * entry saves the per-record work (time, group keys) for every person but
 * one. The shared shape is changed for the call and put back.
 */
static int qfast_order(const void *a, const void *b)
{
    const qfast_t *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* q_flush with the people callback: each entry's people in one call. */
static int q_flush_fast(query_t *q, const shapes_t *sh)
{
    int rc = 0;
    if (q->nfbuf > 1)
        qsort(q->fbuf, q->nfbuf, sizeof *q->fbuf, qfast_order);
    for (size_t i = 0, j; rc == 0 && i < q->nfbuf; i = j) {
        size_t idx = q->fbuf[i].idx;
        for (j = i; j < q->nfbuf && q->fbuf[j].idx == idx; j++)
            ;
        json_t *r = idx < sh->n ? sh->rec[idx] : NULL;
        if (r == NULL || q->stop)
            continue;
        bg_report_person_t *g = bg_grow(q->group, &q->capgroup, j - i, sizeof *g, 256);
        if (g == NULL) {
            rc = -1;
            break;
        }
        q->group = g;
        for (size_t k = i; k < j; k++) {
            bg_report_person_t *p = &q->group[k - i];
            memcpy(p->key, q->fbuf[k].key, 16);
            p->findings = q->fbuf[k].n > 0 ? q->fidx + q->fbuf[k].off : NULL;
            p->nfindings = q->fbuf[k].n;
            p->listed = q->fbuf[k].listed;
        }
        set_time(r, sh->h[idx]);
        q->stop = q->pcb(q->arg, r, q->group, j - i) != 0;
    }
    q->nfbuf = q->nfidx = 0;
    return rc;
}

static int q_flush(query_t *q, const shapes_t *sh)
{
    int rc = 0;
    if (q->pcb != NULL)
        return q_flush_fast(q, sh);
    if (q->npbuf > 1)
        qsort(q->pbuf, q->npbuf, sizeof *q->pbuf, qperson_order);
    for (size_t i = 0; i < q->npbuf;) {
        size_t idx = q->pbuf[i].idx, j = i;
        json_t *r = idx < sh->n ? sh->rec[idx] : NULL;
        json_t *fs = json_object_get(r, "findings"), *ss = json_object_get(r, "subjects");
        size_t nf = json_array_size(fs), ns = json_array_size(ss);
        for (; j < q->npbuf && q->pbuf[j].idx == idx; j++)
            if (r != NULL && rc == 0 && !q->stop)
                rc = add_person(r, nf, q->pbuf[j].rest);
        if (r != NULL && rc == 0 && !q->stop) {
            set_time(r, sh->h[idx]);
            q->stop = q->cb(q->arg, r, 0, 0, 0) != 0;
        }
        while (json_array_size(fs) > nf)
            json_array_remove(fs, json_array_size(fs) - 1);
        while (json_array_size(ss) > ns)
            json_array_remove(ss, json_array_size(ss) - 1);
        i = j;
    }
    for (size_t i = 0; i < q->npbuf; i++)
        free(q->pbuf[i].rest);
    q->npbuf = 0;
    return rc;
}

static int q_blk(query_t *q, uint64_t order, int64_t h, const char *json)
{
    if (q->blocked_limit <= 0 || !in_window(q, h))
        return 0;
    day_t tmp = {.blk = q->blk, .nblk = q->nblk, .capblk = q->capblk};
    int rc = bg_rollup_blk_add(&tmp, order, h, json, strlen(json));
    q->blk = tmp.blk;
    q->nblk = tmp.nblk;
    q->capblk = tmp.capblk;
    return rc;
}

/* A day file being read, in steps. */
typedef struct {
    FILE *fp;
    char *line;
    size_t cap;
    shapes_t sh;
    json_t *shapes; /* the T lines, parsed */
} qfile_t;

static void qfile_close(qfile_t *f)
{
    if (f->fp != NULL)
        fclose(f->fp);
    shapes_free(&f->sh);
    json_decref(f->shapes);
    free(f->line);
    memset(f, 0, sizeof *f);
}

/* Read at most MAX_LINES lines of day file PATH (opened on the first call)
 * into Q. 1 more to read, 0 done (F closed), -1 error. */
static int q_file(query_t *q, qfile_t *f, const char *path, uint64_t base, size_t max_lines)
{
    ssize_t len = 0;
    int rc = 0;
    if (f->fp == NULL) {
        if ((f->fp = fopen(path, "r")) == NULL)
            return errno == ENOENT ? 0 : -1;
        if ((f->shapes = json_array()) == NULL) {
            qfile_close(f);
            return -1;
        }
    }
    for (size_t k = 0; rc == 0 && !q->stop && k < max_lines; k++) {
        if ((len = getline(&f->line, &f->cap, f->fp)) <= 0)
            break;
        uint64_t n;
        int64_t h;
        char *key, *json, *line = f->line;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        switch (bg_rollup_parse_line(line, &n, &h, &key, &json)) {
        case 'T': {
            json_t *r = q_shape(q, json);
            rc = json_array_append_new(f->shapes, r != NULL ? r : json_null());
            break;
        }
        case 'A': {
            json_t *r = json_array_get(f->shapes, strtoull(json, NULL, 10));
            rc = q_entry(q, &f->sh, h, json_is_object(r) ? r : NULL, n);
            break;
        }
        case 'a': /* damaged: holds its index, so the people that follow stay with theirs */
            rc = q_entry(q, &f->sh, BG_REPORT_NO_TIME, NULL, 0);
            break;
        case 'S': rc = q_person(q, &f->sh, n, key); break;
        case 'B': /* a line number this module wrote is below 2^48 (the order's
                   * top 16 bits name the directory: q_blocked) */
            rc = n >> 48 == 0 ? q_blk(q, base | n, h, json) : 0;
            break;
        default: break;
        }
    }
    if (rc == 0)
        rc = q_flush(q, &f->sh);
    if (rc == 0 && len > 0 && !q->stop)
        return 1;
    qfile_close(f);
    return rc;
}

/* The entries of day D of this update (not saved yet) inside the window. */
static int q_pending(query_t *q, const day_t *d, uint64_t base)
{
    shapes_t sh = {NULL, NULL, 0, 0};
    int rc = 0;
    if (!day_in_window(q, d->name))
        return 0;
    for (size_t k = 0; rc == 0 && k < json_array_size(d->tab.keys); k++) {
        char *end;
        const char *key = json_string_value(json_array_get(d->tab.keys, k));
        int64_t h = strtoll(key, &end, 10);
        json_t *r = json_loads(end + 1, 0, NULL);
        rc = q_entry(q, &sh, h, r, d->tab.n[k]);
        json_decref(r);
    }
    const char *key;
    json_t *v;
    json_object_foreach(d->tab.people, key, v)
    {
        char *end;
        uint64_t idx = strtoull(key, &end, 10);
        if (rc == 0 && *end == ' ')
            rc = q_person(q, &sh, idx, end + 1);
    }
    if (rc == 0)
        rc = q_flush(q, &sh);
    shapes_free(&sh);
    for (size_t j = 0; rc == 0 && j < d->nblk; j++)
        rc = q_blk(q, base | d->blk[j].seq, d->blk[j].h, d->blk[j].text);
    return rc;
}

static int name_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The saved day files of U inside the window, by name (oldest first). */
static int q_list(const query_t *q, const bg_rollup_t *u, char ***names, size_t *n)
{
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    if (u->reset || u->lockfd < 0)
        return 0;
    DIR *d = opendir(u->dir);
    struct dirent *e;
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)) != NULL) {
        if (!bg_rollup_is_day_file(e->d_name) || !day_in_window(q, e->d_name))
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = realloc(*names, nc * sizeof *nn);
            if (nn == NULL)
                break;
            *names = nn;
            cap = nc;
        }
        if (((*names)[*n] = bg_rollup_path_join(u->dir, e->d_name)) == NULL)
            break;
        ++*n;
    }
    int rc = e == NULL ? 0 : -1;
    closedir(d);
    if (*n > 1)
        qsort(*names, *n, sizeof **names, name_order);
    return rc;
}

/* Add to ST what the raw scan of U's files from FROM_MS on (after
 * bg_report_prune) would count. */
static int input_counts(const bg_rollup_t *u, int64_t from_ms, bg_report_scan_stats_t *st)
{
    char **dup = calloc(u->npaths + 1, sizeof *dup);
    size_t n = u->npaths, k;
    if (dup == NULL)
        return -1;
    for (k = 0; k < u->npaths; k++) {
        if ((dup[k] = strdup(u->paths[k])) == NULL) {
            bg_audit_free_list(dup, k);
            return -1;
        }
    }
    size_t dropped = bg_report_prune(dup, &n, u->prefix, from_ms);
    bg_audit_free_list(dup, n);
    for (k = dropped; k < u->npaths; k++) {
        st->files++;
        st->lines += u->files[k].lines + u->files[k].torn;
        st->unparsable += u->files[k].unparsable;
        st->torn += u->files[k].torn;
    }
    st->lines += u->torn;
    st->torn += u->torn;
    return 0;
}

/* The record at WHERE ("OFFSET NAME") in U's raw log; NULL when it cannot
 * be read (the raw file is gone: `audit rebuild`) or WHERE names no raw
 * file of U (a damaged day file: nothing else in the directory is read). */
json_t *bg_rollup_raw_record(const bg_rollup_t *u, const char *where)
{
    char *end, *line = NULL;
    size_t cap = 0, i;
    unsigned long long off = strtoull(where, &end, 10);
    if (*end != ' ')
        return NULL;
    for (i = 0; i < u->npaths && strcmp(u->files[i].name, end + 1) != 0; i++)
        ;
    if (i == u->npaths)
        return NULL;
    char *path = bg_rollup_path_join(u->adir, end + 1);
    FILE *fp = path != NULL ? fopen(path, "r") : NULL;
    json_t *rec = NULL;
    if (fp != NULL && fseeko(fp, (off_t)off, SEEK_SET) == 0) {
        ssize_t len = getline(&line, &cap, fp);
        if (len > 1 && line[len - 1] == '\n')
            rec = json_loadb(line, (size_t)len - 1, 0, NULL);
    }
    if (fp != NULL)
        fclose(fp);
    free(line);
    free(path);
    return rec;
}

/* Lines of a day file read per query step: about a millisecond's worth. */
#define QUERY_SLICE_LINES 200

struct bg_rollup_query {
    query_t q;
    bg_rollup_t *const *us;
    size_t n, ui;      /* the rollup being read */
    char **files;      /* its saved day files in the window */
    size_t nfiles, fi; /* ... and the next one */
    size_t di;         /* its next day not saved yet */
    qfile_t file;      /* the day file being read */
    int listed, done;
    bg_report_scan_stats_t st;
};

bg_rollup_query_t *bg_rollup_query_new(bg_rollup_t *const *us, size_t n, int64_t from_ms,
                                       int64_t to_ms, int blocked_limit, bg_rollup_entry_cb cb,
                                       void *arg, char *err, size_t errcap)
{
    if (!bg_rollup_window_ok(from_ms, to_ms)) {
        snprintf(err, errcap, "the window's bounds are not whole hours");
        return NULL;
    }
    bg_rollup_query_t *x = calloc(1, sizeof *x);
    if (x == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    x->q = (query_t){
        .from = from_ms, .to = to_ms, .blocked_limit = blocked_limit, .cb = cb, .arg = arg};
    if (from_ms != BG_REPORT_NO_TIME)
        bg_rollup_day_name(from_ms, x->q.first);
    if (to_ms != BG_REPORT_NO_TIME)
        bg_rollup_day_name(to_ms - 1, x->q.last);
    x->us = us;
    x->n = n;
    return x;
}

static void free_files(bg_rollup_query_t *x)
{
    for (size_t i = 0; i < x->nfiles; i++)
        free(x->files[i]);
    free(x->files);
    x->files = NULL;
    x->nfiles = x->fi = 0;
}

/* The latest blocked decisions, read from the raw log, oldest first. */
static void q_blocked(bg_rollup_query_t *x)
{
    query_t *q = &x->q;
    if (q->nblk > 1)
        qsort(q->blk, q->nblk, sizeof *q->blk, bg_rollup_blk_order);
    size_t first = q->nblk > (size_t)q->blocked_limit ? q->nblk - (size_t)q->blocked_limit : 0;
    for (size_t i = first; !q->stop && i < q->nblk; i++) {
        /* rollups of the fleet (no directories) carry the records whole */
        json_t *rec = x->n > 0 ? bg_rollup_raw_record(x->us[q->blk[i].seq >> 48], q->blk[i].text)
                               : json_loads(q->blk[i].text, 0, NULL);
        if (rec != NULL)
            q->stop = q->cb(q->arg, rec, 1, q->blk[i].seq, 1) != 0;
        json_decref(rec);
    }
}

int bg_rollup_query_step(bg_rollup_query_t *x, char *err, size_t errcap)
{
    if (x->done)
        return 0;
    if (x->ui == x->n || x->q.stop) {
        agg_flush(&x->q);
        q_blocked(x);
        x->done = 1;
        return 0;
    }
    const bg_rollup_t *u = x->us[x->ui];
    /* Blocked records order by directory, then by line: 16 bits, 48 bits. */
    uint64_t base = (uint64_t)x->ui << 48;
    int rc = 0;
    errno = 0;
    if (!x->listed) {
        rc = q_list(&x->q, u, &x->files, &x->nfiles);
        x->listed = 1;
    } else if (x->fi < x->nfiles) {
        rc = q_file(&x->q, &x->file, x->files[x->fi], base, QUERY_SLICE_LINES);
        if (rc == 0)
            x->fi++;
        rc = rc < 0 ? -1 : 0;
    } else if (x->di < u->ndays) {
        rc = q_pending(&x->q, &u->days[x->di++], base);
    } else {
        rc = input_counts(u, x->q.from, &x->st);
        free_files(x);
        x->listed = 0;
        x->di = 0;
        x->ui++;
    }
    if (rc != 0) {
        /* errno names the failure of a file operation; the others (memory)
         * leave it 0, and "Success" is no reason */
        snprintf(err, errcap, "cannot read the rollups of %s: %s", u->dir,
                 errno != 0 ? strerror(errno) : "out of memory");
        return -1;
    }
    return 1;
}

const bg_report_scan_stats_t *bg_rollup_query_stats(const bg_rollup_query_t *x)
{
    return &x->st;
}

void bg_rollup_query_set_people(bg_rollup_query_t *x, bg_rollup_people_cb pcb)
{
    x->q.pcb = pcb;
}

void bg_rollup_query_set_daily(bg_rollup_query_t *x)
{
    x->q.daily = 1;
}

void bg_rollup_query_free(bg_rollup_query_t *x)
{
    if (x == NULL)
        return;
    x->q.stop = 1;
    agg_flush(&x->q); /* only the references */
    free(x->q.agg);
    free(x->q.aix);
    free(x->q.fbuf);
    free(x->q.fidx);
    free(x->q.group);
    json_decref(x->q.shapes);
    for (size_t i = 0; i < x->q.npbuf; i++)
        free(x->q.pbuf[i].rest);
    free(x->q.pbuf);
    free_files(x);
    qfile_close(&x->file);
    for (size_t i = 0; i < x->q.nblk; i++)
        free(x->q.blk[i].text);
    free(x->q.blk);
    free(x);
}

int bg_rollup_query(bg_rollup_t *const *us, size_t n, int64_t from_ms, int64_t to_ms,
                    int blocked_limit, bg_rollup_entry_cb cb, void *arg, bg_report_scan_stats_t *st,
                    char *err, size_t errcap)
{
    bg_rollup_query_t *x =
        bg_rollup_query_new(us, n, from_ms, to_ms, blocked_limit, cb, arg, err, errcap);
    int rc;
    if (x == NULL)
        return -1;
    while ((rc = bg_rollup_query_step(x, err, errcap)) > 0)
        ;
    if (rc == 0 && st != NULL)
        *st = x->st;
    bg_rollup_query_free(x);
    return rc;
}

/* ------------------------------------------------------------------------
 * Hours as text, for the fleet (audit/rollup_fleet.c)
 * ------------------------------------------------------------------------ */

int bg_rollup_input(const bg_rollup_t *u, bg_report_scan_stats_t *st)
{
    return input_counts(u, BG_REPORT_NO_TIME, st);
}

int bg_rollup_query_text(bg_rollup_query_t *x, const char *text, size_t len, char *err,
                         size_t errcap)
{
    qfile_t f;
    memset(&f, 0, sizeof f);
    if (len == 0)
        return 0;
    if (strncmp(text, HOUR_FORMAT "\n", strlen(HOUR_FORMAT) + 1) != 0) {
        snprintf(err, errcap, "not a rollup hour (%s)", HOUR_FORMAT);
        return -1;
    }
    /* q_file reads it as it reads a day file: the same lines */
    if ((f.fp = fmemopen((void *)(uintptr_t)text, len, "r")) == NULL ||
        (f.shapes = json_array()) == NULL) {
        qfile_close(&f);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    int rc;
    while ((rc = q_file(&x->q, &f, NULL, 0, SIZE_MAX)) > 0)
        ;
    if (rc < 0)
        snprintf(err, errcap, "out of memory");
    return rc;
}

int bg_rollup_query_day_wanted(const bg_rollup_query_t *x, const char *day)
{
    return strcmp(day, NO_DAY) != 0 && bg_rollup_is_day_file(day) && day_in_window(&x->q, day);
}

void bg_rollup_query_add_input(bg_rollup_query_t *x, const bg_report_scan_stats_t *st)
{
    x->st.files += st->files;
    x->st.lines += st->lines;
    x->st.records += st->records;
    x->st.unparsable += st->unparsable;
    x->st.torn += st->torn;
}
