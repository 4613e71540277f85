/*
 * Rollups of the audit log (audit/rollup.h): tailing the raw log into
 * per-hour aggregates, one file per China-time day, and reading them back
 * for reports.
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

#define HOUR_MS 3600000LL
#define CHINA_OFFSET_S (8 * 3600)
#define DAY_NAME 16
#define NO_DAY "none"
#define DAY_FORMAT "# bordergate-rollup/1 through="
#define STATE_FORMAT "bordergate-rollup-state/1"
#define HOUR_FORMAT BG_ROLLUP_HOUR_FORMAT

typedef struct {
    uint64_t seq; /* the record's line number over the whole log */
    int64_t h;
    char *text; /* the record, compact JSON */
} blk_t;

/* The lines of one day: decision shapes ("HOUR_MS REDUCED_JSON") with
 * their weights, by index, and people ("INDEX PSEUDONYM FINDINGS X": the
 * shape's findings naming the person, "0,3" or "-", and X 1 when the
 * decision's subjects list names them). */
typedef struct {
    json_t *ix;   /* {"HOUR_MS JSON": index} */
    json_t *keys; /* ["HOUR_MS JSON", ...] */
    uint64_t *n;  /* weights by index */
    size_t cap;
    json_t *people; /* {"INDEX PSEUDONYM FINDINGS X": true} */
} tab_t;

/* What this update read for one day, not saved yet. */
typedef struct {
    char name[DAY_NAME];
    uint64_t through; /* the saved file holds every record up to this seq */
    tab_t tab;
    blk_t *blk;
    size_t nblk, capblk;
} day_t;

typedef struct {
    char *name; /* base name */
    uint64_t bytes, lines;
    uint64_t unparsable, torn; /* torn: a last line cut by a crash, never completed */
} rawfile_t;

struct bg_rollup {
    char *dir;  /* DIR/PREFIX.rollup */
    char *adir; /* DIR */
    char *prefix;
    int mode;   /* BG_ROLLUP_* */
    int lockfd; /* -1: no rollup directory (read mode) */
    int reset;  /* the saved rollups do not match the raw log: ignore, then replace them */
    char **paths;
    size_t npaths;
    rawfile_t *files; /* one per path, what has been consumed */
    uint64_t seq, unparsable, torn;
    size_t fi; /* the file being read */
    FILE *fp;
    char *line;
    size_t linecap;
    day_t *days;
    size_t ndays, capdays;
    uint64_t unsaved; /* lines read since the last save */
    int done;
};

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
static void day_name(int64_t t, char out[DAY_NAME])
{
    time_t s = (time_t)((t - (((t % 1000) + 1000) % 1000)) / 1000) + CHINA_OFFSET_S;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, DAY_NAME, "%Y-%m-%d", &tm);
}

static int is_day_file(const char *name)
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

static char *path_join(const char *a, const char *b)
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

static json_t *pick(const json_t *src, const char *const *names)
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
    json_t *o = pick(rec, top);
    if (o == NULL)
        return NULL;
    if (hour != NULL)
        json_object_set_new(o, "time", json_string(hour));
    if (json_object_get(rec, "destination") != NULL)
        json_object_set_new(o, "destination", pick(json_object_get(rec, "destination"), dst));
    if (json_object_get(rec, "recipient") != NULL)
        json_object_set_new(o, "recipient", pick(json_object_get(rec, "recipient"), rcpt));
    if (json_object_get(rec, "policy") != NULL)
        json_object_set_new(o, "policy", pick(json_object_get(rec, "policy"), pol));
    size_t i;
    const json_t *x;
    if (json_is_array(json_object_get(rec, "reasons"))) {
        json_t *a = json_array();
        json_array_foreach(json_object_get(rec, "reasons"), i, x)
        {
            json_array_append_new(a, pick(x, reason));
        }
        json_object_set_new(o, "reasons", a);
    }
    if (json_is_array(json_object_get(rec, "findings"))) {
        json_t *a = json_array();
        json_array_foreach(json_object_get(rec, "findings"), i, x)
        {
            json_t *f = pick(x, finding);
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
static int person_ok(const char *rest)
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

static int blk_add(day_t *d, uint64_t seq, int64_t h, const char *text, size_t len)
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
static int parse_line(char *line, uint64_t *n, int64_t *h, char **key, char **json)
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
        char *p = path_join(u->dir, name);
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

static int blk_order(const void *a, const void *b)
{
    const blk_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Merge day D (this update) with its saved file and write it whole to a
 * temporary file, then rename it over the saved one. Each hour keeps its
 * newest BG_REPORT_BLOCKED_MAX blocked records. 0, or -1 with ERR.
 */
static int day_save(bg_rollup_t *u, day_t *d, char *err, size_t errcap)
{
    char *path = path_join(u->dir, d->name), *tmp = NULL, *line = NULL;
    size_t cap = 0, *map = NULL, nmap = 0, capmap = 0;
    FILE *in = NULL, *out = NULL;
    tab_t m; /* the saved file's lines, then this update's */
    json_t *tl = json_array(), *tix = json_object(); /* shapes: the T lines, their index */
    char *kbuf = NULL;
    int rc = -1;
    if (tab_init(&m) != 0 || tl == NULL || tix == NULL || path == NULL ||
        (tmp = malloc(strlen(path) + 5)) == NULL)
        goto oom;
    snprintf(tmp, strlen(path) + 5, "%s.tmp", path);
    if (!u->reset && (in = fopen(path, "r")) != NULL) {
        ssize_t len;
        while ((len = getline(&line, &cap, in)) > 0) {
            uint64_t n;
            int64_t h;
            char *key, *json;
            if (line[len - 1] == '\n')
                line[--len] = '\0';
            int kind = parse_line(line, &n, &h, &key, &json);
            json_t *tv = kind == 'T' ? json_string(json) : NULL;
            /* not UTF-8: a damaged line, a placeholder keeps the numbering */
            if (kind == 'T' && json_array_append_new(tl, tv != NULL ? tv : json_null()) != 0)
                goto oom;
            if (kind == 'A' || kind == 'a') {
                /* "A N H SHAPE_INDEX" -> the key "H SHAPE_JSON"; a damaged
                 * line keeps its index, mapped to nothing (`audit rebuild`
                 * recovers it): its people are dropped, not given to the
                 * next shape */
                const char *shape =
                    kind == 'A' ? json_string_value(json_array_get(tl, strtoull(json, NULL, 10)))
                                : NULL;
                size_t kl = shape != NULL ? strlen(shape) + 32 : 0;
                char *nk = shape != NULL ? realloc(kbuf, kl) : NULL;
                if (shape != NULL && nk == NULL)
                    goto oom;
                if (nmap == capmap) {
                    size_t nc = capmap ? capmap * 2 : 64, *nm = realloc(map, nc * sizeof *nm);
                    if (nm == NULL)
                        goto oom;
                    map = nm;
                    capmap = nc;
                }
                if (shape == NULL) {
                    map[nmap++] = SIZE_MAX;
                    continue;
                }
                kbuf = nk;
                snprintf(kbuf, kl, "%lld %s", (long long)h, shape);
                if (tab_shape(&m, kbuf, n, &map[nmap++]) != 0)
                    goto oom;
            } else if (kind == 'S' && n < nmap && map[n] != SIZE_MAX && person_ok(key) &&
                       tab_person(&m, map[n], key) != 0) {
                goto oom;
            } else if (kind == 'B' && blk_add(d, n, h, json, strlen(json)) != 0) {
                goto oom;
            }
        }
        fclose(in);
        in = NULL;
    }
    /* This update's shapes and people, renumbered into M. */
    nmap = 0;
    for (size_t i = 0; i < json_array_size(d->tab.keys); i++) {
        if (nmap == capmap) {
            size_t nc = capmap ? capmap * 2 : 64, *nm = realloc(map, nc * sizeof *nm);
            if (nm == NULL)
                goto oom;
            map = nm;
            capmap = nc;
        }
        if (tab_shape(&m, json_string_value(json_array_get(d->tab.keys, i)), d->tab.n[i],
                      &map[nmap++]) != 0)
            goto oom;
    }
    const char *k;
    json_t *v;
    json_object_foreach(d->tab.people, k, v)
    {
        char *end;
        unsigned long long idx = strtoull(k, &end, 10);
        if (*end == ' ' && idx < nmap && tab_person(&m, map[idx], end + 1) != 0)
            goto oom;
    }
    if (d->nblk > 1)
        qsort(d->blk, d->nblk, sizeof *d->blk, blk_order);
    if ((out = fopen(tmp, "w")) == NULL) {
        snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fprintf(out, DAY_FORMAT "%llu\n", (unsigned long long)u->seq);
    /* Each shape of the day once ("T JSON", numbered from 0), then each
     * (hour, shape) with its weight ("A N H SHAPE_INDEX"). */
    json_array_clear(tl);
    size_t *sidx = calloc(json_array_size(m.keys) + 1, sizeof *sidx);
    if (sidx == NULL)
        goto oom;
    for (size_t i = 0; i < json_array_size(m.keys); i++) {
        const char *sp = strchr(json_string_value(json_array_get(m.keys, i)), ' ');
        json_t *ix = json_object_get(tix, sp + 1);
        if (ix == NULL) {
            ix = json_integer((json_int_t)json_array_size(tl));
            if (json_object_set_new(tix, sp + 1, ix) != 0) {
                free(sidx);
                goto oom;
            }
            json_array_append_new(tl, json_string(sp + 1));
            fprintf(out, "T %s\n", sp + 1);
        }
        sidx[i] = (size_t)json_integer_value(ix);
    }
    for (size_t i = 0; i < json_array_size(m.keys); i++)
        // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): each of m.keys has its m.n
        fprintf(out, "A %llu %lld %zu\n", (unsigned long long)m.n[i],
                strtoll(json_string_value(json_array_get(m.keys, i)), NULL, 10), sidx[i]);
    free(sidx);
    json_object_foreach(m.people, k, v)
    {
        fprintf(out, "S %s\n", k);
    }
    for (size_t i = 0; i < d->nblk; i++)
        fprintf(out, "B %llu %lld %s\n", (unsigned long long)d->blk[i].seq, (long long)d->blk[i].h,
                d->blk[i].text);
    if (fclose(out) != 0) {
        out = NULL;
        snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    out = NULL;
    if (rename(tmp, path) != 0) {
        snprintf(err, errcap, "cannot rename %s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errcap, "out of memory");
out:
    if (in != NULL)
        fclose(in);
    if (out != NULL) {
        fclose(out);
        unlink(tmp);
    }
    tab_free(&m);
    json_decref(tl);
    json_decref(tix);
    free(kbuf);
    free(map);
    free(line);
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
    char *p = path_join(u->dir, "state");
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
    char *p = path_join(u->dir, "state"), *tmp = path_join(u->dir, "state.tmp");
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
    if ((lock = path_join(u->dir, "lock")) == NULL)
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
        day_name(h, name);
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
        rc = wl > 0 && (size_t)wl < sizeof where ? blk_add(d, seq, h, where, (size_t)wl) : -1;
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
        if (!is_day_file(e->d_name) && strcmp(e->d_name, "state") != 0)
            continue;
        char *p = path_join(u->dir, e->d_name);
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
 * Queries
 * ------------------------------------------------------------------------ */

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
} query_t;

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
    if (rec != NULL && !q->stop) {
        set_time(rec, h);
        q->stop = q->cb(q->arg, rec, n, 0, 0) != 0;
    }
    sh->rec[sh->n] = json_incref(rec); /* NULL: damaged or outside: `audit rebuild` */
    sh->h[sh->n++] = h;
    return 0;
}

/* A person line ("IDX PSEUDONYM FINDINGS X") of the entries SH: kept until
 * q_flush hands out the people of each entry together. */
static int q_person(query_t *q, const shapes_t *sh, uint64_t idx, const char *rest)
{
    if (idx >= sh->n || sh->rec[idx] == NULL || q->stop || !person_ok(rest))
        return 0;
    if (q->npbuf == q->cappbuf) {
        size_t nc = q->cappbuf ? q->cappbuf * 2 : 256;
        qperson_t *np = realloc(q->pbuf, nc * sizeof *np);
        if (np == NULL)
            return -1;
        q->pbuf = np;
        q->cappbuf = nc;
    }
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
static int q_flush(query_t *q, const shapes_t *sh)
{
    int rc = 0;
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
    int rc = blk_add(&tmp, order, h, json, strlen(json));
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
        switch (parse_line(line, &n, &h, &key, &json)) {
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
        if (!is_day_file(e->d_name) || !day_in_window(q, e->d_name))
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = realloc(*names, nc * sizeof *nn);
            if (nn == NULL)
                break;
            *names = nn;
            cap = nc;
        }
        if (((*names)[*n] = path_join(u->dir, e->d_name)) == NULL)
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
static json_t *raw_record(const bg_rollup_t *u, const char *where)
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
    char *path = path_join(u->adir, end + 1);
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
        day_name(from_ms, x->q.first);
    if (to_ms != BG_REPORT_NO_TIME)
        day_name(to_ms - 1, x->q.last);
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
        qsort(q->blk, q->nblk, sizeof *q->blk, blk_order);
    size_t first = q->nblk > (size_t)q->blocked_limit ? q->nblk - (size_t)q->blocked_limit : 0;
    for (size_t i = first; !q->stop && i < q->nblk; i++) {
        /* rollups of the fleet (no directories) carry the records whole */
        json_t *rec = x->n > 0 ? raw_record(x->us[q->blk[i].seq >> 48], q->blk[i].text)
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

void bg_rollup_query_free(bg_rollup_query_t *x)
{
    if (x == NULL)
        return;
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

const char *bg_rollup_dir(const bg_rollup_t *u)
{
    return u->dir;
}

int bg_rollup_input(const bg_rollup_t *u, bg_report_scan_stats_t *st)
{
    return input_counts(u, BG_REPORT_NO_TIME, st);
}

/* Internals for audit/rollup_hours.c (audit/rollup_int.h). */

int bg_rollup_parse_line(char *line, uint64_t *n, int64_t *h, char **key, char **json)
{
    return parse_line(line, n, h, key, json);
}

int bg_rollup_person_ok(const char *rest)
{
    return person_ok(rest);
}

json_t *bg_rollup_raw_record(const bg_rollup_t *u, const char *where)
{
    return raw_record(u, where);
}

json_t *bg_rollup_pick(const json_t *src, const char *const *names)
{
    return pick(src, names);
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
    return strcmp(day, NO_DAY) != 0 && is_day_file(day) && day_in_window(&x->q, day);
}

void bg_rollup_query_add_input(bg_rollup_query_t *x, const bg_report_scan_stats_t *st)
{
    x->st.files += st->files;
    x->st.lines += st->lines;
    x->st.records += st->records;
    x->st.unparsable += st->unparsable;
    x->st.torn += st->torn;
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
