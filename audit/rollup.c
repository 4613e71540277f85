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

#include "audit/audit.h"

#define HOUR_MS 3600000LL
#define CHINA_OFFSET_S (8 * 3600)
#define DAY_NAME 16
#define NO_DAY "none"
#define DAY_FORMAT "# bordergate-rollup/1 through="
#define STATE_FORMAT "bordergate-rollup-state/1"

typedef struct {
    uint64_t seq; /* the record's line number over the whole log */
    int64_t h;
    char *text; /* the record, compact JSON */
} blk_t;

/* What this update read for one day, not saved yet. */
typedef struct {
    char name[DAY_NAME];
    uint64_t through; /* the saved file holds every record up to this seq */
    json_t *agg;      /* {"HOUR_MS REDUCED_JSON": weight} */
    blk_t *blk;
    size_t nblk, capblk;
} day_t;

typedef struct {
    char *name; /* base name */
    uint64_t bytes, lines;
} rawfile_t;

struct bg_rollup {
    char *dir;  /* DIR/PREFIX.rollup */
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
    int done;
};

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

/* A pseudonym as reports compare it: the first 32 hex digits (16 bytes). */
static void copy_pseudonym(json_t *dst, const json_t *src, const char *name)
{
    json_t *v = json_object_get(src, name);
    const char *s = json_string_value(v);
    size_t i = 0;
    while (s != NULL && i < 32 && strchr("0123456789abcdefABCDEF", s[i]) != NULL && s[i] != '\0')
        i++;
    if (s != NULL && i == 32)
        json_object_set_new(dst, name, json_stringn(s, 32));
    else if (v != NULL)
        json_object_set(dst, name, v);
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

static void day_free(day_t *d)
{
    json_decref(d->agg);
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
    d->blk[d->nblk++] = (blk_t){seq, h, t};
    return 0;
}

static int agg_add(json_t *agg, const char *key, uint64_t n)
{
    json_t *v = json_object_get(agg, key);
    return json_object_set_new(agg, key, json_integer(json_integer_value(v) + (json_int_t)n));
}

/* One line of a day file: 'A' or 'S' (aggregate: *N weight, KEY "H JSON") or 'B'
 * (blocked: *N seq, *H, *JSON); 0 for the header or a malformed line. LINE
 * is modified. */
static int parse_line(char *line, uint64_t *n, int64_t *h, char **key, char **json)
{
    char *end;
    if ((line[0] != 'A' && line[0] != 'B' && line[0] != 'S') || line[1] != ' ')
        return 0;
    errno = 0;
    *n = strtoull(line + 2, &end, 10);
    if (errno != 0 || *end != ' ')
        return 0;
    *key = end + 1;
    *h = strtoll(end + 1, &end, 10);
    if (*end != ' ')
        return 0;
    *json = end + 1;
    return line[0];
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
    if ((d->agg = json_object()) == NULL)
        return NULL;
    if (!u->reset && u->lockfd >= 0) {
        char *p = path_join(u->dir, name);
        if (p == NULL) {
            json_decref(d->agg);
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
    size_t cap = 0;
    FILE *in = NULL, *out = NULL;
    int rc = -1;
    if (path == NULL || (tmp = malloc(strlen(path) + 5)) == NULL)
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
            if (((kind == 'A' || kind == 'S') && agg_add(d->agg, key, n) != 0) ||
                (kind == 'B' && blk_add(d, n, h, json, strlen(json)) != 0))
                goto oom;
        }
        fclose(in);
        in = NULL;
    }
    qsort(d->blk, d->nblk, sizeof *d->blk, blk_order);
    if ((out = fopen(tmp, "w")) == NULL) {
        snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fprintf(out, DAY_FORMAT "%llu\n", (unsigned long long)u->seq);
    const char *k;
    json_t *v;
    json_object_foreach(d->agg, k, v)
    {
        json_int_t n = json_integer_value(v);
        fprintf(out, "%c %lld %s\n", n > 0 ? 'A' : 'S', (long long)n, k);
    }
    for (size_t i = 0; i < d->nblk; i++) {
        /* Newer records of the same hour beyond the cap: skip this one. */
        size_t newer = 0;
        for (size_t j = i + 1; j < d->nblk && newer < BG_REPORT_BLOCKED_MAX; j++)
            newer += d->blk[j].h == d->blk[i].h;
        if (newer < BG_REPORT_BLOCKED_MAX)
            fprintf(out, "B %llu %lld %s\n", (unsigned long long)d->blk[i].seq,
                    (long long)d->blk[i].h, d->blk[i].text);
    }
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
        struct stat sb;
        if (name == NULL || strcmp(name, u->files[i].name) != 0 || bytes < 0 || lines < 0 ||
            stat(u->paths[i], &sb) != 0 || (uint64_t)sb.st_size < (uint64_t)bytes) {
            u->reset = 1;
            break;
        }
        u->files[i].bytes = (uint64_t)bytes;
        u->files[i].lines = (uint64_t)lines;
        seq += (uint64_t)lines;
    }
    if (u->reset) {
        for (size_t i = 0; i < u->npaths; i++)
            u->files[i].bytes = u->files[i].lines = 0;
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
        json_array_append_new(fs, json_pack("{s:s, s:I, s:I}", "name", u->files[i].name, "bytes",
                                            (json_int_t)u->files[i].bytes, "lines",
                                            (json_int_t)u->files[i].lines));
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

/* Add R (a reduced record, or a part of it) of hour H to D with weight N
 * (0: a subject line). */
static int put(day_t *d, const json_t *r, int64_t h, uint64_t n)
{
    char *s = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
    if (s == NULL)
        return -1;
    size_t kl = strlen(s) + 32;
    char *key = malloc(kl);
    int rc = -1;
    if (key != NULL) {
        snprintf(key, kl, "%lld %s", (long long)h, s);
        rc = agg_add(d->agg, key, n);
    }
    free(key);
    free(s);
    return rc;
}

/* Keep in R's findings only the subject SUBJ (NULL: none) and in its
 * subjects only SUBJ. */
static void keep_subject(json_t *r, const char *subj)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(r, "findings"), i, x)
    {
        const char *s = json_string_value(json_object_get(x, "subject"));
        if (subj == NULL || (s != NULL && strcmp(s, subj) != 0) ||
            (s == NULL && json_object_get(x, "subject") != NULL))
            json_object_del(x, "subject");
    }
    json_t *ss = json_object_get(r, "subjects");
    for (i = json_array_size(ss); i-- > 0;) {
        const char *s = json_string_value(json_object_get(json_array_get(ss, i), "pseudonym"));
        if (subj == NULL || s == NULL || strcmp(s, subj) != 0)
            json_array_remove(ss, i);
    }
}

/*
 * The reduced record R of hour H into D as (1) its counts: R without any
 * subject, weight 1, and (2) one line per person it names: R keeping only
 * that person, weight 0 - they add the person to the sets of the groups
 * the decision reaches and count nothing. Identical lines of an hour
 * collapse, so counts cost the distinct shapes of decisions, sets the
 * distinct (person, shape) pairs, not the traffic.
 */
static int split(day_t *d, const json_t *r, int64_t h)
{
    json_t *names = json_object(), *c = json_deep_copy(r);
    size_t i;
    json_t *x;
    int rc = names != NULL && c != NULL ? 0 : -1;
    json_array_foreach(json_object_get(r, "findings"), i, x)
    {
        const char *s = json_string_value(json_object_get(x, "subject"));
        if (s != NULL && names != NULL)
            json_object_set_new(names, s, json_true());
    }
    json_array_foreach(json_object_get(r, "subjects"), i, x)
    {
        const char *s = json_string_value(json_object_get(x, "pseudonym"));
        if (s != NULL && names != NULL)
            json_object_set_new(names, s, json_true());
    }
    if (rc == 0) {
        keep_subject(c, NULL);
        rc = put(d, c, h, 1);
    }
    const char *s;
    json_object_foreach(names, s, x)
    {
        json_t *one = json_deep_copy(r);
        if (one == NULL) {
            rc = -1;
            break;
        }
        keep_subject(one, s);
        rc |= put(d, one, h, 0);
        json_decref(one);
    }
    json_decref(c);
    json_decref(names);
    return rc;
}

/* Count decision record REC (line SEQ, raw text LINE) into this update. */
static int take(bg_rollup_t *u, const json_t *rec, uint64_t seq, const char *line, size_t len)
{
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (type == NULL || strcmp(type, "decision") != 0)
        return 0;
    int64_t t = bg_report_record_time(rec), h = BG_REPORT_NO_TIME;
    char name[DAY_NAME], hour[40];
    snprintf(name, sizeof name, "%s", NO_DAY);
    if (t != BG_REPORT_NO_TIME) {
        h = hour_of(t);
        time_t s = (time_t)(h / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(hour, sizeof hour, "%Y-%m-%dT%H:00:00Z", &tm);
        day_name(h, name);
    }
    day_t *d = day_get(u, name);
    if (d == NULL)
        return -1;
    if (seq <= d->through) /* saved by an update that crashed before its state */
        return 0;
    json_t *r = reduce(rec, t != BG_REPORT_NO_TIME ? hour : NULL);
    int rc = r != NULL ? split(d, r, h) : -1;
    json_decref(r);
    const char *outcome = json_string_value(json_object_get(rec, "outcome"));
    if (rc == 0 && outcome != NULL && strcmp(outcome, "block") == 0)
        rc = blk_add(d, seq, h, line, len);
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
            if (len > 0 && !last) /* torn by a crash, never completed: not a record */
                f->bytes += (uint64_t)len;
            u->torn += len > 0 && last; /* being written: read it next time */
            u->fi++;
            continue;
        }
        taken++;
        f->bytes += (uint64_t)len;
        f->lines++;
        u->seq++;
        if (len == 1 || !want_decision(u->line, (size_t)len - 1))
            continue;
        json_t *rec = json_loadb(u->line, (size_t)len - 1, 0, NULL);
        if (!json_is_object(rec)) {
            u->unparsable++;
        } else if (take(u, rec, u->seq, u->line, (size_t)len - 1) != 0) {
            json_decref(rec);
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        json_decref(rec);
    }
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
    int with_blocked;
    bg_rollup_entry_cb cb;
    void *arg;
    blk_t *blk; /* seq: the order over all directories */
    size_t nblk, capblk;
    int stop;
} query_t;

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

/* One aggregate KEY ("H JSON") of weight N. */
static int q_agg(query_t *q, const char *json, int64_t h, uint64_t n)
{
    if (!in_window(q, h) || q->stop)
        return 0;
    json_t *rec = json_loads(json, 0, NULL);
    if (rec == NULL)
        return 0; /* a damaged line: `audit rebuild` recomputes it */
    q->stop = q->cb(q->arg, rec, n, 0, 0) != 0;
    json_decref(rec);
    return 0;
}

static int q_blk(query_t *q, uint64_t order, int64_t h, const char *json)
{
    if (!q->with_blocked || !in_window(q, h))
        return 0;
    day_t tmp = {.blk = q->blk, .nblk = q->nblk, .capblk = q->capblk};
    int rc = blk_add(&tmp, order, h, json, strlen(json));
    q->blk = tmp.blk;
    q->nblk = tmp.nblk;
    q->capblk = tmp.capblk;
    return rc;
}

static int q_file(query_t *q, const char *path, uint64_t base)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    if (fp == NULL)
        return errno == ENOENT ? 0 : -1;
    while (rc == 0 && !q->stop && (len = getline(&line, &cap, fp)) > 0) {
        uint64_t n;
        int64_t h;
        char *key, *json;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        switch (parse_line(line, &n, &h, &key, &json)) {
        case 'A':
        case 'S': rc = q_agg(q, json, h, n); break;
        case 'B': rc = q_blk(q, base | n, h, json); break;
        default: break;
        }
    }
    free(line);
    fclose(fp);
    return rc;
}

static int q_rollup(query_t *q, const bg_rollup_t *u, uint64_t base)
{
    if (!u->reset && u->lockfd >= 0) {
        DIR *d = opendir(u->dir);
        struct dirent *e;
        while (d != NULL && !q->stop && (e = readdir(d)) != NULL) {
            if (!is_day_file(e->d_name) || !day_in_window(q, e->d_name))
                continue;
            char *p = path_join(u->dir, e->d_name);
            int rc = p != NULL ? q_file(q, p, base) : -1;
            free(p);
            if (rc != 0) {
                closedir(d);
                return -1;
            }
        }
        if (d != NULL)
            closedir(d);
    }
    for (size_t i = 0; i < u->ndays && !q->stop; i++) {
        const day_t *d = &u->days[i];
        const char *k;
        json_t *v;
        json_object_foreach(d->agg, k, v)
        {
            char *end;
            int64_t h = strtoll(k, &end, 10);
            if (*end == ' ' && q_agg(q, end + 1, h, (uint64_t)json_integer_value(v)) != 0)
                return -1;
        }
        for (size_t j = 0; j < d->nblk; j++)
            if (q_blk(q, base | d->blk[j].seq, d->blk[j].h, d->blk[j].text) != 0)
                return -1;
    }
    return 0;
}

int bg_rollup_query(bg_rollup_t *const *us, size_t n, int64_t from_ms, int64_t to_ms,
                    int with_blocked, bg_rollup_entry_cb cb, void *arg, bg_report_scan_stats_t *st,
                    char *err, size_t errcap)
{
    query_t q = {.from = from_ms, .to = to_ms, .with_blocked = with_blocked, .cb = cb, .arg = arg};
    int rc = 0;
    if (!bg_rollup_window_ok(from_ms, to_ms)) {
        snprintf(err, errcap, "the window's bounds are not whole hours");
        return -1;
    }
    if (from_ms != BG_REPORT_NO_TIME)
        day_name(from_ms, q.first);
    if (to_ms != BG_REPORT_NO_TIME)
        day_name(to_ms - 1, q.last);
    if (st != NULL)
        memset(st, 0, sizeof *st);
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* Blocked records order by directory, then by line: 16 bits, 48 bits. */
        rc = q_rollup(&q, us[i], (uint64_t)i << 48);
        if (st != NULL) {
            st->files += us[i]->npaths;
            st->lines += us[i]->seq;
            st->unparsable += us[i]->unparsable;
            st->torn += us[i]->torn;
        }
    }
    if (rc != 0)
        snprintf(err, errcap, "cannot read the rollups: %s", strerror(errno));
    qsort(q.blk, q.nblk, sizeof *q.blk, blk_order);
    for (size_t i = 0; rc == 0 && !q.stop && i < q.nblk; i++) {
        json_t *rec = json_loads(q.blk[i].text, 0, NULL);
        if (rec != NULL)
            q.stop = cb(arg, rec, 1, q.blk[i].seq, 1) != 0;
        json_decref(rec);
    }
    for (size_t i = 0; i < q.nblk; i++)
        free(q.blk[i].text);
    free(q.blk);
    return rc;
}

/* ------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------ */

int bg_rollup_cli_rebuild(int argc, char **argv)
{
    const char *prefix = "audit";
    int ndirs = 0, rc = 0;
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
                   argv[i][0] == '-') {
            fprintf(argv[i][1] == 'h' || argv[i][2] == 'h' ? stdout : stderr,
                    "usage: bordergate audit rebuild [--prefix P] DIR...\n"
                    "\n"
                    "Recomputes the dashboard's rollups (DIR/P.rollup/) from the raw audit log.\n"
                    "Run it as the daemon's user; the daemon keeps them up to date itself.\n");
            return strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ? 0 : 2;
        } else {
            ndirs++;
        }
    }
    if (ndirs == 0) {
        fprintf(stderr, "bordergate audit rebuild: give the audit directory\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--prefix") == 0) {
            i++;
            continue;
        }
        bg_rollup_t *u = bg_rollup_open(argv[i], prefix, BG_ROLLUP_REBUILD, err, sizeof err);
        int s = u != NULL ? 1 : -1;
        while (s > 0)
            s = bg_rollup_step(u, SIZE_MAX, err, sizeof err);
        size_t days = u != NULL ? u->ndays : 0;
        if (s == 0 && bg_rollup_save(u, err, sizeof err) == 0) {
            printf("%s: rollups rebuilt from %zu files, %llu lines (%zu days)\n", argv[i],
                   u->npaths, (unsigned long long)u->seq, days);
        } else {
            fprintf(stderr, "bordergate audit rebuild: %s\n", err);
            rc = 1;
        }
        bg_rollup_free(u);
    }
    return rc;
}
