/*
 * A day of rollups split into hours as text (audit/rollup.h "For the
 * fleet"): what each instance publishes to the shared store
 * (audit/rollup_fleet.c). The reading side is audit/rollup_query.c
 * (bg_rollup_query_text): the hours are in the day files' line format.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/rollup.h"
#include "audit/rollup_int.h"

/* DIR/PREFIX.rollup/DAY (malloc'd), NULL when out of memory. */
static char *join_day(const bg_rollup_t *u, const char *day)
{
    size_t n = strlen(bg_rollup_dir(u)) + strlen(day) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", bg_rollup_dir(u), day);
    return p;
}

typedef struct {
    uint64_t n;
    int64_t h;
    size_t t; /* SIZE_MAX: damaged */
} hent_t;

typedef struct {
    size_t a;
    const char *rest;
} hper_t;

typedef struct {
    int64_t h;
    const char *where;
} hblk_t;

typedef struct {
    char *buf; /* the day file, its lines split in place */
    const char **t;
    hent_t *a;
    hper_t *s;
    hblk_t *b;
    size_t nt, na, ns, nb, ct, ca, cs, cb;
} hday_t;

static void hday_free(hday_t *d)
{
    free(d->buf);
    free(d->t);
    free(d->a);
    free(d->s);
    free(d->b);
}

/* Grow array *P (element size SZ, *CAP elements) to hold N + 1. */
static int grow(void *p, size_t sz, size_t n, size_t *cap)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void *np = realloc(*(void **)p, nc * sz);
    if (np == NULL)
        return -1;
    *(void **)p = np;
    *cap = nc;
    return 0;
}

/* Read day file PATH whole into D. 0, 1 when it does not exist, -1. */
static int hday_load(hday_t *d, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return errno == ENOENT ? 1 : -1;
    size_t len = 0, cap = 0;
    char *tmp;
    size_t got;
    do {
        if (len + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 131072;
            if ((tmp = realloc(d->buf, cap)) == NULL) {
                fclose(fp);
                return -1;
            }
            d->buf = tmp;
        }
        got = fread(d->buf + len, 1, cap - len - 1, fp);
        len += got;
    } while (got > 0);
    int bad = ferror(fp);
    fclose(fp);
    if (bad)
        return -1;
    d->buf[len] = '\0';
    for (char *line = d->buf, *nl; *line != '\0'; line = nl + 1) {
        if ((nl = strchr(line, '\n')) == NULL)
            break; /* a last line without its newline: not written whole */
        *nl = '\0';
        uint64_t n;
        int64_t h;
        char *key, *json;
        int kind = bg_rollup_parse_line(line, &n, &h, &key, &json);
        switch (kind) {
        case 'T':
            if (grow(&d->t, sizeof *d->t, d->nt, &d->ct) != 0)
                return -1;
            d->t[d->nt++] = json;
            break;
        case 'A':
        case 'a':
            if (grow(&d->a, sizeof *d->a, d->na, &d->ca) != 0)
                return -1;
            d->a[d->na].n = n;
            d->a[d->na].h = h;
            d->a[d->na].t = SIZE_MAX;
            if (kind == 'A') {
                unsigned long long t = strtoull(json, NULL, 10);
                if (t < d->nt)
                    d->a[d->na].t = (size_t)t;
            }
            d->na++;
            break;
        case 'S':
            if (n < d->na && d->a[n].t != SIZE_MAX && bg_rollup_person_ok(key)) {
                if (grow(&d->s, sizeof *d->s, d->ns, &d->cs) != 0)
                    return -1;
                d->s[d->ns].a = (size_t)n;
                d->s[d->ns++].rest = key;
            }
            break;
        case 'B':
            if (grow(&d->b, sizeof *d->b, d->nb, &d->cb) != 0)
                return -1;
            d->b[d->nb].h = h;
            d->b[d->nb++].where = json;
            break;
        default: break;
        }
    }
    return 0;
}

static int i64_order(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Each object of array SRC[NAME] reduced to NAMES, into DST[NAME]. */
static void copy_items(json_t *dst, const json_t *src, const char *name, const char *const *names)
{
    const json_t *a = json_object_get(src, name), *x;
    json_t *out = json_is_array(a) ? json_array() : NULL;
    size_t i;
    json_array_foreach(a, i, x)
    {
        json_t *o = bg_rollup_pick(x, names);
        json_array_append_new(out, o != NULL ? o : json_null());
    }
    if (out != NULL)
        json_object_set_new(dst, name, out);
}

/*
 * What the latest-blocked list (audit/report_blocked.c blocked_entry, and
 * the clauses it looks up) reads of blocked decision REC: carried in the
 * fleet's hours instead of the whole record (the chain's hashes, the
 * caller, the findings' evidence... are a third of the bytes and nothing
 * the list shows). New reference, NULL when out of memory.
 */
static json_t *blocked_view(const json_t *rec)
{
    static const char *const top[] = {"type",    "decision_id", "time",      "route",
                                      "method",  "host",        "path",      "mode",
                                      "outcome", "would",       "mechanism", NULL};
    static const char *const rcpt[] = {"id", NULL};
    static const char *const dst[] = {"country", "region", NULL};
    static const char *const pol[] = {"version", "sha256", NULL};
    static const char *const rsn[] = {"code", "rule", "category", "path", "detail", "clause", NULL};
    static const char *const fnd[] = {"path", "category",  "basis",  "action",
                                      "rule", "sensitive", "clause", NULL};
    json_t *o = bg_rollup_pick(rec, top);
    if (o == NULL)
        return NULL;
    const json_t *r = json_object_get(rec, "recipient"), *d = json_object_get(rec, "destination"),
                 *p = json_object_get(rec, "policy");
    if (json_is_object(r))
        json_object_set_new(o, "recipient", bg_rollup_pick(r, rcpt));
    if (json_is_object(d))
        json_object_set_new(o, "destination", bg_rollup_pick(d, dst));
    if (json_is_object(p))
        json_object_set_new(o, "policy", bg_rollup_pick(p, pol));
    copy_items(o, rec, "reasons", rsn);
    copy_items(o, rec, "findings", fnd);
    return o;
}

/* Hour H of day D as text into OUT (see rollup.h). 0, or -1. */
static int hour_text(const bg_rollup_t *u, const hday_t *d, int64_t h, size_t *tloc, size_t *aloc,
                     FILE *out)
{
    size_t lt = 0, la = 0;
    for (size_t i = 0; i < d->nt; i++)
        tloc[i] = SIZE_MAX;
    fputs(BG_ROLLUP_HOUR_FORMAT "\n", out);
    for (size_t i = 0; i < d->na; i++) {
        aloc[i] = SIZE_MAX;
        if (d->a[i].t == SIZE_MAX || d->a[i].h != h || tloc[d->a[i].t] != SIZE_MAX)
            continue;
        tloc[d->a[i].t] = lt++;
        fprintf(out, "T %s\n", d->t[d->a[i].t]);
    }
    for (size_t i = 0; i < d->na; i++) {
        if (d->a[i].t == SIZE_MAX || d->a[i].h != h)
            continue;
        aloc[i] = la++;
        fprintf(out, "A %llu %lld %zu\n", (unsigned long long)d->a[i].n, (long long)h,
                tloc[d->a[i].t]);
    }
    for (size_t i = 0; i < d->ns; i++)
        if (aloc[d->s[i].a] != SIZE_MAX)
            fprintf(out, "S %zu %s\n", aloc[d->s[i].a], d->s[i].rest);
    for (size_t i = 0; i < d->nb; i++) {
        if (d->b[i].h != h)
            continue;
        json_t *rec = bg_rollup_raw_record(u, d->b[i].where);
        const char *outcome = json_string_value(json_object_get(rec, "outcome"));
        /* a damaged day file may point at another record: only blocked ones */
        json_t *view = outcome != NULL && strcmp(outcome, "block") == 0 ? blocked_view(rec) : NULL;
        char *js = view != NULL ? json_dumps(view, JSON_COMPACT) : NULL;
        json_decref(view);
        int64_t t = rec != NULL ? bg_report_record_time(rec) : BG_REPORT_NO_TIME;
        if (js != NULL && strchr(js, '\n') == NULL)
            fprintf(out, "B %lld %lld %s\n", (long long)(t != BG_REPORT_NO_TIME && t >= 0 ? t : h),
                    (long long)h, js);
        free(js);
        json_decref(rec);
    }
    return ferror(out) ? -1 : 0;
}

int bg_rollup_day_hours(const bg_rollup_t *u, const char *day, bg_rollup_hour_cb cb, void *arg,
                        char *err, size_t errcap)
{
    hday_t d;
    memset(&d, 0, sizeof d);
    int64_t *hours = NULL;
    size_t nh = 0, *tloc = NULL, *aloc = NULL;
    char *path = join_day(u, day), *text = NULL;
    int rc = -1;
    errno = 0;
    int lr = path != NULL ? hday_load(&d, path) : -1;
    if (lr != 0) {
        if (lr > 0)
            rc = 0;
        else
            snprintf(err, errcap, "cannot read %s: %s", path != NULL ? path : day,
                     errno != 0 ? strerror(errno) : "out of memory");
        goto out;
    }
    if ((hours = malloc((d.na + d.nb + 1) * sizeof *hours)) == NULL ||
        (tloc = malloc((d.nt + 1) * sizeof *tloc)) == NULL ||
        (aloc = malloc((d.na + 1) * sizeof *aloc)) == NULL)
        goto oom;
    for (size_t i = 0; i < d.na; i++)
        if (d.a[i].t != SIZE_MAX)
            hours[nh++] = d.a[i].h;
    for (size_t i = 0; i < d.nb; i++)
        hours[nh++] = d.b[i].h;
    qsort(hours, nh, sizeof *hours, i64_order);
    for (size_t i = 0; i < nh; i++) {
        if (i > 0 && hours[i] == hours[i - 1])
            continue;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        if (out == NULL)
            goto oom;
        int hr = hour_text(u, &d, hours[i], tloc, aloc, out);
        if (fclose(out) != 0 || hr != 0)
            goto oom;
        int stop = cb(arg, hours[i], text, len);
        free(text);
        text = NULL;
        if (stop != 0) {
            snprintf(err, errcap, "stopped");
            goto out;
        }
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errcap, "out of memory");
out:
    free(text);
    free(hours);
    free(tloc);
    free(aloc);
    free(path);
    hday_free(&d);
    return rc;
}
