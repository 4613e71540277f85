/*
 * Rollups of the audit log (audit/rollup.h): tailing the raw log into
 * per-hour aggregates, one file per China-time day, and saving them.
 * Reading them back for reports is audit/rollup_query.c; the day file's
 * lines and the types both read are in audit/rollup_int.h.
 */
#include "audit/rollup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "audit/audit.h"
#include "audit/rollup_int.h"
#include "common/grow.h"
#include "common/hex.h"

#define HOUR_MS BG_ROLLUP_HOUR_MS
#define CHINA_OFFSET_S (8 * 3600)
#define DAY_NAME BG_ROLLUP_DAY_NAME
#define NO_DAY BG_ROLLUP_NO_DAY
#define DAY_FORMAT "# bordergate-rollup/1 through="
#define STATE_FORMAT "bordergate-rollup-state/1"

/* A writer saves every FLUSH_LINES lines, so a long backlog (the first page
 * load over an old log, a rebuild) does not hold it all in memory. */
#define FLUSH_LINES 200000

/* ------------------------------------------------------------------------
 * Times and names
 * ------------------------------------------------------------------------ */

static int64_t hour_of(int64_t t)
{
    return t - (((t % HOUR_MS) + HOUR_MS) % HOUR_MS);
}

/* The China-time date of T (ms) as "YYYY-MM-DD". */
void bg_rollup_day_name(int64_t t, char out[DAY_NAME])
{
    time_t s = (time_t)((t - (((t % 1000) + 1000) % 1000)) / 1000) + CHINA_OFFSET_S;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, DAY_NAME, "%Y-%m-%d", &tm);
}

int bg_rollup_is_day_file(const char *name)
{
    if (strcmp(name, NO_DAY) == 0)
        return 1;
    if (strlen(name) != 10 || name[4] != '-' || name[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (name[i] < '0' || name[i] > '9'))
            return 0;
    return 1;
}

char *bg_rollup_path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s != NULL ? s + 1 : p;
}

/* ------------------------------------------------------------------------
 * Reduced records
 * ------------------------------------------------------------------------ */

static void copy(json_t *dst, const json_t *src, const char *name)
{
    json_t *v = json_object_get(src, name);
    if (v != NULL)
        json_object_set(dst, name, v);
}

/*
 * A pseudonym as reports compare it (audit/report.c subject_key): its first
 * 16 bytes when it starts with 32 hex digits, else the first 16 bytes of
 * its SHA-256 - written as 32 lowercase hex digits, which reports read
 * back as the same 16 bytes. Not a string: left out.
 */
static void copy_pseudonym(json_t *dst, const json_t *src, const char *name)
{
    const char *s = json_string_value(json_object_get(src, name));
    char out[33];
    size_t i = 0;
    if (s == NULL)
        return;
    while (i < 32 && s[i] != '\0' && strchr("0123456789abcdefABCDEF", s[i]) != NULL)
        i++;
    if (i == 32) {
        for (i = 0; i < 32; i++)
            out[i] = (char)(s[i] | 0x20);
    } else {
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)s, strlen(s), d);
        bg_hex_encode(d, 16, out);
    }
    out[32] = '\0';
    json_object_set_new(dst, name, json_string(out));
}

json_t *bg_rollup_pick(const json_t *src, const char *const *names)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && names[i] != NULL; i++)
        copy(o, src, names[i]);
    return o;
}

/*
 * The members of decision REC that audit/report.c reads, with its time set
 * to HOUR (RFC 3339): two decisions of an hour with the same reduced record
 * count the same in every report. New reference, NULL when out of memory.
 */
static json_t *reduce(const json_t *rec, const char *hour)
{
    static const char *const top[] = {"type",      "mode",  "outcome", "would",
                                      "mechanism", "route", NULL};
    static const char *const dst[] = {"region", "country", NULL};
    static const char *const rcpt[] = {"id", NULL};
    static const char *const pol[] = {"sha256", NULL};
    static const char *const reason[] = {"code", NULL};
    static const char *const finding[] = {"sensitive", "action",   "anonymized", "rule",
                                          "clause",    "category", "basis",      NULL};
    json_t *o = bg_rollup_pick(rec, top);
    if (o == NULL)
        return NULL;
    if (hour != NULL)
        json_object_set_new(o, "time", json_string(hour));
    if (json_object_get(rec, "destination") != NULL)
        json_object_set_new(o, "destination",
                            bg_rollup_pick(json_object_get(rec, "destination"), dst));
    if (json_object_get(rec, "recipient") != NULL)
        json_object_set_new(o, "recipient",
                            bg_rollup_pick(json_object_get(rec, "recipient"), rcpt));
    if (json_object_get(rec, "policy") != NULL)
        json_object_set_new(o, "policy", bg_rollup_pick(json_object_get(rec, "policy"), pol));
    size_t i;
    const json_t *x;
    if (json_is_array(json_object_get(rec, "reasons"))) {
        json_t *a = json_array();
        json_array_foreach(json_object_get(rec, "reasons"), i, x)
        {
            json_array_append_new(a, bg_rollup_pick(x, reason));
        }
        json_object_set_new(o, "reasons", a);
    }
    if (json_is_array(json_object_get(rec, "findings"))) {
        json_t *a = json_array();
        json_array_foreach(json_object_get(rec, "findings"), i, x)
        {
            json_t *f = bg_rollup_pick(x, finding);
            if (f != NULL)
                copy_pseudonym(f, x, "subject");
            json_array_append_new(a, f);
        }
        json_object_set_new(o, "findings", a);
    }
    if (json_is_array(json_object_get(rec, "subjects"))) {
        json_t *a = json_array();
        json_array_foreach(json_object_get(rec, "subjects"), i, x)
        {
            json_t *s = json_object();
            if (s != NULL)
                copy_pseudonym(s, x, "pseudonym");
            json_array_append_new(a, s);
        }
        json_object_set_new(o, "subjects", a);
    }
    return o;
}

/* ------------------------------------------------------------------------
 * Day files
 * ------------------------------------------------------------------------ */

static int tab_init(tab_t *t)
{
    memset(t, 0, sizeof *t);
    t->ix = json_object();
    t->keys = json_array();
    t->people = json_object();
    return t->ix != NULL && t->keys != NULL && t->people != NULL ? 0 : -1;
}

static void tab_free(tab_t *t)
{
    json_decref(t->ix);
    json_decref(t->keys);
    json_decref(t->people);
    free(t->n);
    memset(t, 0, sizeof *t);
}

/* Shape KEY ("HOUR_MS JSON") gains N decisions; its index in *IDX. */
static int tab_shape(tab_t *t, const char *key, uint64_t n, size_t *idx)
{
    json_t *v = json_object_get(t->ix, key);
    if (v != NULL) {
        *idx = (size_t)json_integer_value(v);
        t->n[*idx] += n; // NOLINT(clang-analyzer-core.NullDereference): a key in ix has its n
        return 0;
    }
    size_t i = json_array_size(t->keys);
    uint64_t *nn = bg_grow(t->n, &t->cap, i + 1, sizeof *nn, 64);
    if (nn == NULL)
        return -1;
    t->n = nn;
    if (json_array_append_new(t->keys, json_string(key)) != 0 ||
        json_object_set_new(t->ix, key, json_integer((json_int_t)i)) != 0)
        return -1;
    t->n[i] = n;
    *idx = i;
    return 0;
}

/* Is REST a person as split() writes one: "PSEUDONYM FINDINGS X", the
 * pseudonym 32 hex digits, FINDINGS "-" or indexes joined by ',', X 0 or
 * 1? A day file's line that is not is damaged and skipped (`audit
 * rebuild`). */
int bg_rollup_person_ok(const char *rest)
{
    const char *p = rest + 33;
    if (strspn(rest, "0123456789abcdefABCDEF") != 32 || rest[32] != ' ')
        return 0;
    if (*p == '-')
        p++;
    else
        while ((*p >= '0' && *p <= '9') || (*p == ',' && p[1] >= '0' && p[1] <= '9'))
            p++;
    return p > rest + 33 && p[0] == ' ' && (p[1] == '0' || p[1] == '1') && p[2] == '\0';
}

/* A person ("PSEUDONYM FINDINGS X") of shape IDX. */
static int tab_person(tab_t *t, size_t idx, const char *rest)
{
    size_t kl = strlen(rest) + 24;
    char *k = malloc(kl);
    if (k == NULL)
        return -1;
    snprintf(k, kl, "%zu %s", idx, rest);
    int rc = json_object_set_new(t->people, k, json_true());
    free(k);
    return rc;
}

static void day_free(day_t *d)
{
    tab_free(&d->tab);
    for (size_t i = 0; i < d->nblk; i++)
        free(d->blk[i].text);
    free(d->blk);
}

int bg_rollup_blk_add(day_t *d, uint64_t seq, int64_t h, const char *text, size_t len)
{
    if (d->nblk == d->capblk) {
        size_t nc = d->capblk ? d->capblk * 2 : 16;
        blk_t *nb = realloc(d->blk, nc * sizeof *nb);
        if (nb == NULL)
            return -1;
        d->blk = nb;
        d->capblk = nc;
    }
    char *t = malloc(len + 1);
    if (t == NULL)
        return -1;
    memcpy(t, text, len);
    t[len] = '\0';
    blk_t *b = &d->blk[d->nblk++];
    b->seq = seq;
    b->h = h;
    b->text = t; /* owned by D */
    return 0;
}

/* "X N H REST" (A or B lines): 'X', or 0 when malformed. */
static int parse_line_a(char *line, uint64_t *n, int64_t *h, char **key, char **json)
{
    char *end;
    errno = 0;
    *n = strtoull(line + 2, &end, 10);
    if (errno != 0 || end == line + 2 || *end != ' ')
        return 0;
    *key = end + 1;
    *h = strtoll(end + 1, &end, 10);
    if (errno != 0 || end == *key || *end != ' ')
        return 0;
    *json = end + 1;
    return line[0];
}

/*
 * One line of a day file: 'A' (a shape: *N weight, *KEY "H JSON", *H,
 * *JSON), 'S' (a person: *N the shape's index, *KEY the rest) or 'B' (a
 * blocked decision: *N seq, *H, *JSON); 'a' for a damaged A line (it still
 * takes its place in the numbering the S lines refer to: skipping it would
 * give the people that follow to the wrong shape); 0 for the header or
 * another malformed line. LINE is not modified.
 */
int bg_rollup_parse_line(char *line, uint64_t *n, int64_t *h, char **key, char **json)
{
    char *end;
    if (line[0] == 'A' && line[1] == ' ') {
        int k = parse_line_a(line, n, h, key, json);
        return k != 0 ? k : 'a';
    }
    if ((line[0] != 'B' && line[0] != 'S' && line[0] != 'T') || line[1] != ' ')
        return 0;
    if (line[0] == 'T') {
        *json = line + 2;
        return 'T';
    }
    if (line[0] == 'S') {
        errno = 0;
        *n = strtoull(line + 2, &end, 10);
        *key = end + 1;
        return errno == 0 && *end == ' ' ? 'S' : 0;
    }
    return parse_line_a(line, n, h, key, json);
}

/* The "through" of saved day file PATH; 0 when there is none. */
static uint64_t day_through(const char *path)
{
    FILE *fp = fopen(path, "r");
    char head[128];
    uint64_t t = 0;
    if (fp == NULL)
        return 0;
    if (fgets(head, sizeof head, fp) != NULL && strncmp(head, DAY_FORMAT, strlen(DAY_FORMAT)) == 0)
        t = strtoull(head + strlen(DAY_FORMAT), NULL, 10);
    fclose(fp);
    return t;
}

static day_t *day_get(bg_rollup_t *u, const char *name)
{
    for (size_t i = 0; i < u->ndays; i++)
        if (strcmp(u->days[i].name, name) == 0)
            return &u->days[i];
    if (u->ndays == u->capdays) {
        size_t nc = u->capdays ? u->capdays * 2 : 8;
        day_t *nd = realloc(u->days, nc * sizeof *nd);
        if (nd == NULL)
            return NULL;
        u->days = nd;
        u->capdays = nc;
    }
    day_t *d = &u->days[u->ndays];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    if (tab_init(&d->tab) != 0) {
        tab_free(&d->tab);
        return NULL;
    }
    if (!u->reset && u->lockfd >= 0) {
        char *p = bg_rollup_path_join(u->dir, name);
        if (p == NULL) {
            tab_free(&d->tab);
            return NULL;
        }
        d->through = day_through(p);
        free(p);
    }
    u->ndays++;
    return d;
}

int bg_rollup_blk_order(const void *a, const void *b)
{
    const blk_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Add saved day file PATH to M (its shapes and people) and to D (its
 * blocked decisions, after this update's). The file holds each shape once
 * ("T JSON", numbered from 0), each (hour, shape) with its weight ("A N H
 * SHAPE_INDEX", numbered from 0), the people of each A line ("S A_INDEX
 * REST") and the blocked decisions ("B SEQ H WHERE"). A damaged A line
 * keeps its number, mapped to nothing (`audit rebuild` recovers it): its
 * people are dropped, not given to the next shape. No file adds nothing.
 * 0, or -1 when out of memory.
 */
static int day_merge_saved(const char *path, day_t *d, tab_t *m)
{
    FILE *in = fopen(path, "r");
    json_t *tl = NULL; /* the T lines' shapes, by number; null: damaged */
    char *line = NULL, *kbuf = NULL;
    size_t cap = 0, *map = NULL, nmap = 0, capmap = 0; /* A line -> M's index */
    ssize_t len;
    int rc = -1;
    if (in == NULL)
        return 0;
    if ((tl = json_array()) == NULL)
        goto out;
    while ((len = getline(&line, &cap, in)) > 0) {
        uint64_t n;
        int64_t h;
        char *key, *json;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        int kind = bg_rollup_parse_line(line, &n, &h, &key, &json);
        json_t *tv = kind == 'T' ? json_string(json) : NULL;
        /* not UTF-8: a damaged line, a placeholder keeps the numbering */
        if (kind == 'T' && json_array_append_new(tl, tv != NULL ? tv : json_null()) != 0)
            goto out;
        if (kind == 'A' || kind == 'a') {
            /* "A N H SHAPE_INDEX" -> the key "H SHAPE_JSON" */
            const char *shape =
                kind == 'A' ? json_string_value(json_array_get(tl, strtoull(json, NULL, 10)))
                            : NULL;
            size_t kl = shape != NULL ? strlen(shape) + 32 : 0;
            if (shape != NULL) {
                char *nk = realloc(kbuf, kl);
                if (nk == NULL)
                    goto out;
                kbuf = nk; /* at once: the realloc may have moved it */
            }
            size_t *nm = bg_grow(map, &capmap, nmap + 1, sizeof *map, 64);
            if (nm == NULL)
                goto out;
            map = nm;
            if (shape == NULL) {
                map[nmap++] = SIZE_MAX;
                continue;
            }
            snprintf(kbuf, kl, "%lld %s", (long long)h, shape);
            if (tab_shape(m, kbuf, n, &map[nmap++]) != 0)
                goto out;
        } else if (kind == 'S' && n < nmap && map[n] != SIZE_MAX && bg_rollup_person_ok(key) &&
                   tab_person(m, map[n], key) != 0) {
            goto out;
        } else if (kind == 'B' && bg_rollup_blk_add(d, n, h, json, strlen(json)) != 0) {
            goto out;
        }
    }
    rc = 0;
out:
    fclose(in);
    json_decref(tl);
    free(kbuf);
    free(map);
    free(line);
    return rc;
}

/* Add this update's shapes and people (D's table) to M: each shape gets
 * its index in M, and its people follow it there. 0, or -1 when out of
 * memory. */
static int day_merge_update(const day_t *d, tab_t *m)
{
    size_t nk = json_array_size(d->tab.keys), *map = calloc(nk + 1, sizeof *map);
    const char *k;
    json_t *v;
    int rc = -1;
    if (map == NULL)
        return -1;
    for (size_t i = 0; i < nk; i++)
        if (tab_shape(m, json_string_value(json_array_get(d->tab.keys, i)), d->tab.n[i], &map[i]) !=
            0)
            goto out;
    json_object_foreach(d->tab.people, k, v)
    {
        char *end;
        unsigned long long idx = strtoull(k, &end, 10);
        if (*end == ' ' && idx < nk && tab_person(m, map[idx], end + 1) != 0)
            goto out;
    }
    rc = 0;
out:
    free(map);
    return rc;
}

/*
 * Write day file TMP: the header (every record up to THROUGH), then each
 * shape of M once ("T JSON", numbered from 0), each (hour, shape) of M with
 * its weight ("A N H SHAPE_INDEX"), M's people ("S A_INDEX PSEUDONYM
 * FINDINGS X") and D's blocked decisions in their order ("B SEQ H WHERE").
 * 0, or -1 with ERR; TMP is removed when a write fails before its close.
 */
static int day_write(const char *tmp, uint64_t through, const tab_t *m, const day_t *d, char *err,
                     size_t errcap)
{
    size_t nk = json_array_size(m->keys), nt = 0;
    size_t *sidx = calloc(nk + 1, sizeof *sidx); /* A line -> its T line */
    json_t *tix = json_object();                 /* {SHAPE_JSON: its T line} */
    const char *k;
    json_t *v;
    FILE *out = NULL;
    int rc = -1;
    if (sidx == NULL || tix == NULL) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    if ((out = fopen(tmp, "w")) == NULL) {
        snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fprintf(out, DAY_FORMAT "%llu\n", (unsigned long long)through);
    for (size_t i = 0; i < nk; i++) {
        const char *sp = strchr(json_string_value(json_array_get(m->keys, i)), ' ');
        json_t *ix = json_object_get(tix, sp + 1);
        if (ix == NULL) {
            ix = json_integer((json_int_t)nt++);
            if (json_object_set_new(tix, sp + 1, ix) != 0) {
                snprintf(err, errcap, "out of memory");
                goto out;
            }
            fprintf(out, "T %s\n", sp + 1);
        }
        sidx[i] = (size_t)json_integer_value(ix);
    }
    for (size_t i = 0; i < nk; i++)
        // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): each of m.keys has its m.n
        fprintf(out, "A %llu %lld %zu\n", (unsigned long long)m->n[i],
                strtoll(json_string_value(json_array_get(m->keys, i)), NULL, 10), sidx[i]);
    json_object_foreach(m->people, k, v)
    {
        fprintf(out, "S %s\n", k);
    }
    for (size_t i = 0; i < d->nblk; i++)
        fprintf(out, "B %llu %lld %s\n", (unsigned long long)d->blk[i].seq, (long long)d->blk[i].h,
                d->blk[i].text);
    rc = fclose(out) == 0 ? 0 : -1;
    out = NULL;
    if (rc != 0)
        snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
out:
    if (out != NULL) {
        fclose(out);
        unlink(tmp);
    }
    json_decref(tix);
    free(sidx);
    return rc;
}

/*
 * Save day D: its saved file (unless U is being reset) and this update
 * merged, written whole to a temporary file, then renamed over the saved
 * one. Every blocked decision is kept, ordered by seq (a query takes the
 * latest). 0, or -1 with ERR.
 */
static int day_save(bg_rollup_t *u, day_t *d, char *err, size_t errcap)
{
    char *path = bg_rollup_path_join(u->dir, d->name), *tmp = NULL;
    tab_t m; /* the saved file's lines, then this update's */
    int rc = -1;
    if (tab_init(&m) != 0 || path == NULL || (tmp = malloc(strlen(path) + 5)) == NULL)
        goto oom;
    snprintf(tmp, strlen(path) + 5, "%s.tmp", path);
    if ((!u->reset && day_merge_saved(path, d, &m) != 0) || day_merge_update(d, &m) != 0)
        goto oom;
    if (d->nblk > 1)
        qsort(d->blk, d->nblk, sizeof *d->blk, bg_rollup_blk_order);
    if (day_write(tmp, u->seq, &m, d, err, errcap) != 0) {
        unlink(tmp); /* a half-written file is no rollup: not left beside the days */
        goto out;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errcap, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errcap, "out of memory");
out:
    tab_free(&m);
    free(tmp);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------------
 * The state
 * ------------------------------------------------------------------------ */

/* Read the state into U->files when it matches the raw files (same names
 * in the same order, none shorter than consumed); else set U->reset. */
static void state_load(bg_rollup_t *u)
{
    char *p = bg_rollup_path_join(u->dir, "state");
    json_t *st = p != NULL && u->lockfd >= 0 ? json_load_file(p, 0, NULL) : NULL;
    free(p);
    const char *fmt = json_string_value(json_object_get(st, "format"));
    const json_t *fs = json_object_get(st, "files");
    if (fmt == NULL || strcmp(fmt, STATE_FORMAT) != 0 || json_array_size(fs) > u->npaths) {
        u->reset = 1;
        json_decref(st);
        return;
    }
    uint64_t seq = 0;
    for (size_t i = 0; i < json_array_size(fs); i++) {
        const json_t *f = json_array_get(fs, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        json_int_t bytes = json_integer_value(json_object_get(f, "bytes"));
        json_int_t lines = json_integer_value(json_object_get(f, "lines"));
        json_int_t unp = json_integer_value(json_object_get(f, "unparsable"));
        json_int_t torn = json_integer_value(json_object_get(f, "torn"));
        struct stat sb;
        if (name == NULL || strcmp(name, u->files[i].name) != 0 || bytes < 0 || lines < 0 ||
            stat(u->paths[i], &sb) != 0 || (uint64_t)sb.st_size < (uint64_t)bytes) {
            u->reset = 1;
            break;
        }
        u->files[i].bytes = (uint64_t)bytes;
        u->files[i].lines = (uint64_t)lines;
        u->files[i].unparsable = (uint64_t)unp;
        u->files[i].torn = (uint64_t)torn;
        seq += (uint64_t)lines;
    }
    if (u->reset) {
        for (size_t i = 0; i < u->npaths; i++)
            u->files[i].bytes = u->files[i].lines = u->files[i].unparsable = u->files[i].torn = 0;
    } else {
        u->seq = seq;
        u->unparsable = (uint64_t)json_integer_value(json_object_get(st, "unparsable"));
    }
    json_decref(st);
}

static int state_save(bg_rollup_t *u, char *err, size_t errcap)
{
    json_t *st = json_object(), *fs = json_array();
    char *p = bg_rollup_path_join(u->dir, "state"), *tmp = bg_rollup_path_join(u->dir, "state.tmp");
    int rc = -1;
    if (st == NULL || fs == NULL || p == NULL || tmp == NULL) {
        snprintf(err, errcap, "out of memory");
        json_decref(fs);
        goto out;
    }
    json_object_set_new(st, "format", json_string(STATE_FORMAT));
    json_object_set_new(st, "seq", json_integer((json_int_t)u->seq));
    json_object_set_new(st, "unparsable", json_integer((json_int_t)u->unparsable));
    for (size_t i = 0; i < u->npaths; i++)
        json_array_append_new(fs, json_pack("{s:s, s:I, s:I, s:I, s:I}", "name", u->files[i].name,
                                            "bytes", (json_int_t)u->files[i].bytes, "lines",
                                            (json_int_t)u->files[i].lines, "unparsable",
                                            (json_int_t)u->files[i].unparsable, "torn",
                                            (json_int_t)u->files[i].torn));
    json_object_set_new(st, "files", fs);
    if (json_dump_file(st, tmp, JSON_COMPACT) != 0 || rename(tmp, p) != 0) {
        snprintf(err, errcap, "cannot write %s: %s", p, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    json_decref(st);
    free(p);
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------------------
 * Opening and tailing
 * ------------------------------------------------------------------------ */

void bg_rollup_free(bg_rollup_t *u)
{
    if (u == NULL)
        return;
    if (u->fp != NULL)
        fclose(u->fp);
    if (u->lockfd >= 0)
        close(u->lockfd); /* releases the lock */
    for (size_t i = 0; i < u->ndays; i++)
        day_free(&u->days[i]);
    free(u->days);
    for (size_t i = 0; u->files != NULL && i < u->npaths; i++)
        free(u->files[i].name);
    free(u->files);
    if (u->paths != NULL)
        bg_audit_free_list(u->paths, u->npaths);
    free(u->line);
    free(u->dir);
    free(u->adir);
    free(u->prefix);
    free(u);
}

bg_rollup_t *bg_rollup_open(const char *dir, const char *prefix, int mode, char *err, size_t errcap)
{
    bg_rollup_t *u = calloc(1, sizeof *u);
    char *lock = NULL;
    if (u == NULL)
        goto oom;
    u->lockfd = -1;
    u->mode = mode;
    prefix = prefix != NULL ? prefix : "audit";
    size_t n = strlen(dir) + strlen(prefix) + 10;
    if ((u->dir = malloc(n)) == NULL)
        goto oom;
    snprintf(u->dir, n, "%s/%s.rollup", dir, prefix);
    if ((u->adir = strdup(dir)) == NULL || (u->prefix = strdup(prefix)) == NULL)
        goto oom;
    if (mode != BG_ROLLUP_READ && mkdir(u->dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errcap, "cannot create %s: %s", u->dir, strerror(errno));
        goto fail;
    }
    if ((lock = bg_rollup_path_join(u->dir, "lock")) == NULL)
        goto oom;
    u->lockfd = mode == BG_ROLLUP_READ ? open(lock, O_RDONLY | O_CLOEXEC)
                                       : open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (u->lockfd < 0 && (mode != BG_ROLLUP_READ || errno != ENOENT)) {
        snprintf(err, errcap, "cannot open %s: %s", lock, strerror(errno));
        goto fail;
    }
    if (u->lockfd >= 0) {
        int op = mode == BG_ROLLUP_REBUILD ? LOCK_EX
                 : mode == BG_ROLLUP_WRITE ? LOCK_SH | LOCK_NB
                                           : LOCK_SH;
        if (flock(u->lockfd, op) != 0) {
            snprintf(err, errcap, "%s: busy (%s)", u->dir, strerror(errno));
            goto fail;
        }
    }
    if (bg_audit_list_files(dir, prefix, &u->paths, &u->npaths, err, errcap) != 0)
        goto fail;
    if ((u->files = calloc(u->npaths + 1, sizeof *u->files)) == NULL)
        goto oom;
    for (size_t i = 0; i < u->npaths; i++)
        if ((u->files[i].name = strdup(base_name(u->paths[i]))) == NULL)
            goto oom;
    if (mode == BG_ROLLUP_REBUILD || u->lockfd < 0)
        u->reset = 1;
    else
        state_load(u);
    free(lock);
    return u;
oom:
    snprintf(err, errcap, "out of memory");
fail:
    free(lock);
    bg_rollup_free(u);
    return NULL;
}

static int want_decision(const char *line, size_t len)
{
    return memmem(line, len, "\"type\":\"decision\"", 17) != NULL;
}

/*
 * The reduced record R of hour H into D as (1) its shape: R without any
 * person, counting 1 decision, and (2) for each person it names, which of
 * the shape's findings name them and whether its subjects list does. The
 * same shape of an hour is one line, the same person in it one line, so
 * counts cost the distinct shapes of decisions and the distinct-people
 * sets the distinct (person, shape) pairs, not the traffic.
 */
static int split(day_t *d, const json_t *r, int64_t h)
{
    json_t *c = json_deep_copy(r), *names = json_object(), *x;
    char *s = NULL, *key = NULL, *rest = NULL;
    size_t i, idx, nf = json_array_size(json_object_get(r, "findings"));
    int rc = -1;
    if (c == NULL || names == NULL)
        goto out;
    json_array_foreach(json_object_get(c, "findings"), i, x)
    {
        const char *p = json_string_value(json_object_get(x, "subject"));
        json_t *e;
        if (p != NULL && (e = json_object_get(names, p)) == NULL) {
            e = json_pack("{s:[], s:b}", "f", "x", 0);
            if (e == NULL || json_object_set_new(names, p, e) != 0)
                goto out;
        }
        if (p != NULL &&
            json_array_append_new(json_object_get(e, "f"), json_integer((json_int_t)i)))
            goto out;
        json_object_del(x, "subject");
    }
    json_t *ss = json_object_get(c, "subjects");
    json_array_foreach(ss, i, x)
    {
        const char *p = json_string_value(json_object_get(x, "pseudonym"));
        json_t *e;
        if (p != NULL && (e = json_object_get(names, p)) == NULL) {
            e = json_pack("{s:[], s:b}", "f", "x", 0);
            if (e == NULL || json_object_set_new(names, p, e) != 0)
                goto out;
        }
        if (p != NULL)
            json_object_set_new(e, "x", json_true());
    }
    if (ss != NULL)
        json_array_clear(ss);
    if ((s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        goto out;
    size_t kl = strlen(s) + 32, rl = 21 * nf + 64;
    if ((key = malloc(kl)) == NULL || (rest = malloc(rl)) == NULL)
        goto out;
    snprintf(key, kl, "%lld %s", (long long)h, s);
    if (tab_shape(&d->tab, key, 1, &idx) != 0)
        goto out;
    const char *p;
    json_object_foreach(names, p, x)
    {
        size_t o = (size_t)snprintf(rest, rl, "%s ", p), k;
        json_t *f;
        json_array_foreach(json_object_get(x, "f"), k, f)
        {
            o += (size_t)snprintf(rest + o, rl - o, "%s%lld", k ? "," : "",
                                  (long long)json_integer_value(f));
        }
        snprintf(rest + o, rl - o, "%s %d", k ? "" : "-", json_is_true(json_object_get(x, "x")));
        if (tab_person(&d->tab, idx, rest) != 0)
            goto out;
    }
    rc = 0;
out:
    free(rest);
    free(key);
    free(s);
    json_decref(names);
    json_decref(c);
    return rc;
}

/* Count decision record REC (line SEQ, at byte OFFSET of the file being
 * read) into this update. */
static int take(bg_rollup_t *u, const json_t *rec, uint64_t seq, uint64_t offset)
{
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (type == NULL || strcmp(type, "decision") != 0)
        return 0;
    int64_t t = bg_report_record_time(rec), h = BG_REPORT_NO_TIME;
    char name[DAY_NAME];
    snprintf(name, sizeof name, "%s", NO_DAY);
    if (t != BG_REPORT_NO_TIME) {
        h = hour_of(t);
        bg_rollup_day_name(h, name);
    }
    day_t *d = day_get(u, name);
    if (d == NULL)
        return -1;
    if (seq <= d->through) /* saved by an update that crashed before its state */
        return 0;
    json_t *r = reduce(rec, NULL); /* the hour is beside it: shapes repeat over the day */
    int rc = r != NULL ? split(d, r, h) : -1;
    json_decref(r);
    const char *outcome = json_string_value(json_object_get(rec, "outcome"));
    if (rc == 0 && outcome != NULL && strcmp(outcome, "block") == 0) {
        char where[300];
        int wl = snprintf(where, sizeof where, "%llu %s", (unsigned long long)offset,
                          u->files[u->fi].name);
        rc = wl > 0 && (size_t)wl < sizeof where ? bg_rollup_blk_add(d, seq, h, where, (size_t)wl)
                                                 : -1;
    }
    return rc;
}

int bg_rollup_step(bg_rollup_t *u, size_t max_lines, char *err, size_t errcap)
{
    size_t taken = 0;
    while (!u->done && taken < max_lines) {
        if (u->fi == u->npaths) {
            u->done = 1;
            break;
        }
        rawfile_t *f = &u->files[u->fi];
        if (u->fp == NULL) {
            if ((u->fp = fopen(u->paths[u->fi], "r")) == NULL ||
                fseeko(u->fp, (off_t)f->bytes, SEEK_SET) != 0) {
                snprintf(err, errcap, "cannot read %s: %s", u->paths[u->fi], strerror(errno));
                return -1;
            }
        }
        ssize_t len = getline(&u->line, &u->linecap, u->fp);
        if (len <= 0 || u->line[len - 1] != '\n') {
            int bad = ferror(u->fp), last = u->fi + 1 == u->npaths;
            fclose(u->fp);
            u->fp = NULL;
            if (bad) {
                snprintf(err, errcap, "read error in %s", u->paths[u->fi]);
                return -1;
            }
            if (len > 0 && !last) { /* torn by a crash, never completed: not a record */
                f->bytes += (uint64_t)len;
                f->torn++;
            }
            u->torn += len > 0 && last; /* being written: read it next time */
            u->fi++;
            continue;
        }
        taken++;
        u->unsaved++;
        uint64_t offset = f->bytes;
        f->bytes += (uint64_t)len;
        f->lines++;
        u->seq++;
        if (len == 1 || !want_decision(u->line, (size_t)len - 1))
            continue;
        json_t *rec = json_loadb(u->line, (size_t)len - 1, 0, NULL);
        if (!json_is_object(rec)) {
            u->unparsable++;
            f->unparsable++;
        } else if (take(u, rec, u->seq, offset) != 0) {
            json_decref(rec);
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        json_decref(rec);
    }
    if (!u->done && u->mode != BG_ROLLUP_READ && u->unsaved >= FLUSH_LINES &&
        bg_rollup_save(u, err, errcap) < 0)
        return -1;
    return u->done ? 0 : 1;
}

/* Remove the saved day files and state (before a rebuild is written). */
static void remove_saved(const bg_rollup_t *u)
{
    DIR *d = opendir(u->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (!bg_rollup_is_day_file(e->d_name) && strcmp(e->d_name, "state") != 0)
            continue;
        char *p = bg_rollup_path_join(u->dir, e->d_name);
        if (p != NULL)
            unlink(p);
        free(p);
    }
    if (d != NULL)
        closedir(d);
}

int bg_rollup_save(bg_rollup_t *u, char *err, size_t errcap)
{
    if (u->mode == BG_ROLLUP_READ || u->lockfd < 0) {
        snprintf(err, errcap, "rollups opened for reading");
        return -1;
    }
    if (u->mode == BG_ROLLUP_WRITE && flock(u->lockfd, LOCK_EX | LOCK_NB) != 0) {
        /* A reader or a rebuild holds it; the conversion may have dropped
         * our shared lock: take it back for the query that follows. */
        if (flock(u->lockfd, LOCK_SH | LOCK_NB) != 0) {
            snprintf(err, errcap, "%s: busy", u->dir);
            return -1;
        }
        return 1;
    }
    if (u->reset)
        remove_saved(u);
    for (size_t i = 0; i < u->ndays; i++)
        if (day_save(u, &u->days[i], err, errcap) != 0)
            return -1;
    if (state_save(u, err, errcap) != 0)
        return -1;
    for (size_t i = 0; i < u->ndays; i++)
        day_free(&u->days[i]);
    u->ndays = 0;
    u->reset = 0;
    u->unsaved = 0;
    return 0;
}

/* ------------------------------------------------------------------------
 * Hours as text, for the fleet (audit/rollup_fleet.c)
 * ------------------------------------------------------------------------ */

const char *bg_rollup_dir(const bg_rollup_t *u)
{
    return u->dir;
}

/* ------------------------------------------------------------------------
 * Rebuilding (`audit rebuild`)
 * ------------------------------------------------------------------------ */

int bg_rollup_rebuild(const char *dir, const char *prefix, size_t *nfiles, uint64_t *nlines,
                      char *err, size_t errcap)
{
    bg_rollup_t *u = bg_rollup_open(dir, prefix, BG_ROLLUP_REBUILD, err, errcap);
    int s = u != NULL ? 1 : -1;
    while (s > 0)
        s = bg_rollup_step(u, SIZE_MAX, err, errcap);
    if (s == 0 && bg_rollup_save(u, err, errcap) == 0) {
        *nfiles = u->npaths;
        *nlines = u->seq;
    } else {
        s = -1;
    }
    bg_rollup_free(u);
    return s;
}
