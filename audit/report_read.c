/*
 * Reading the audit log for reports (audit/report.h "Reading audit files"):
 * report dates in China time, operands expanded to files in log order,
 * files pruned by the time in their names, and the line scanner that hands
 * decision records to a callback one at a time (one line, one parsed record
 * in memory). Lines are pre-filtered on their raw bytes (the writer writes
 * records compactly, so a decision record contains "type":"decision"
 * verbatim) before jansson parses them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/audit.h"
#include "audit/counters.h"
#include "audit/report_int.h"
#include "audit/rollup.h"
#include "common/chinatime.h"
#include "common/grow.h"
#include "common/hex.h"
#include "common/pseudonym.h"
#include "common/util.h"
#include "policy/policy.h"

/* ------------------------------------------------------------------------
 * Dates
 * ------------------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return -1;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/*
 * YYYY-MM-DD[(T| )HH:MM[:SS[.f...]]][Z|(+|-)HH[:]MM]. No zone: DEF_OFF_S
 * seconds east of UTC. *DATE_ONLY set when only the date was given.
 */
static int parse_ts(const char *s, int def_off_s, int *date_only, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = def_off_s;
    if (s == NULL || digits(&p, 4, &y) != 0 || *p++ != '-' || digits(&p, 2, &mo) != 0 ||
        *p++ != '-' || digits(&p, 2, &d) != 0)
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return -1;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -1;
    *date_only = *p == '\0';
    if (!*date_only) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -1;
        p++;
        if (digits(&p, 2, &h) != 0 || *p++ != ':' || digits(&p, 2, &mi) != 0)
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec) != 0)
                return -1;
            if (*p == '.') {
                p++;
                int nd = 0;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 3)
                        ms = ms * 10 + (*p - '0');
                    nd++;
                    p++;
                }
                if (nd == 0)
                    return -1;
                for (; nd < 3; nd++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (sec == 60)
            sec = 59; /* a leap second: close enough for a report window */
        if (*p == 'Z' || *p == 'z') {
            off = 0;
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh) != 0)
                return -1;
            if (*p == ':')
                p++;
            if (digits(&p, 2, &om) != 0 || oh > 23 || om > 59)
                return -1;
            off = sign * (oh * 3600 + om * 60);
        }
        if (*p != '\0')
            return -1;
    }
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - off;
    *out = secs * 1000 + ms;
    return 0;
}

int bg_report_parse_date(const char *s, int end, int64_t *out_ms)
{
    int date_only = 0;
    if (parse_ts(s, BG_CHINA_OFFSET_S, &date_only, out_ms) != 0)
        return -1;
    if (date_only && end)
        *out_ms += 86400000; /* the whole day is included */
    return 0;
}

int64_t bg_report_record_time(const json_t *record)
{
    int date_only = 0;
    int64_t ms;
    const char *t = json_string_value(json_object_get(record, "time"));
    if (t == NULL || parse_ts(t, 0, &date_only, &ms) != 0 || date_only)
        return BG_REPORT_NO_TIME;
    return ms;
}

/* "2026-03-01T08:00:00+08:00" for people (China time). */
void bg_report_china_time(int64_t ms, char *out, size_t cap)
{
    int64_t s = ms / 1000 + BG_CHINA_OFFSET_S;
    int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int64_t rem = s - days * 86400;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d+08:00", y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60));
}

json_t *bg_report_utc_or_null(int64_t ms)
{
    char buf[40];
    if (ms == BG_REPORT_NO_TIME)
        return json_null();
    bg_util_format_time((uint64_t)ms, buf, sizeof buf);
    return json_string(buf);
}

/* ------------------------------------------------------------------------
 * Reading files
 * ------------------------------------------------------------------------ */

int bg_report_expand(char *const *operands, size_t n, const char *prefix, char ***out, size_t *nout,
                     char *err, size_t errcap)
{
    char **paths = NULL;
    size_t np = 0, cap = 0;
    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        char **add = NULL;
        size_t nadd = 0;
        if (stat(operands[i], &st) != 0) {
            snprintf(err, errcap, "%s: %s", operands[i], strerror(errno));
            goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
            if (bg_audit_list_files(operands[i], prefix, &add, &nadd, err, errcap) != 0)
                goto fail;
        } else {
            add = calloc(2, sizeof *add);
            if (add == NULL || (add[0] = strdup(operands[i])) == NULL) {
                free(add);
                snprintf(err, errcap, "out of memory");
                goto fail;
            }
            nadd = 1;
        }
        char **pp = bg_grow(paths, &cap, np + nadd + 1, sizeof *pp, 16);
        if (pp == NULL) {
            bg_audit_free_list(add, nadd);
            snprintf(err, errcap, "out of memory");
            goto fail;
        }
        paths = pp;
        for (size_t k = 0; k < nadd; k++)
            paths[np++] = add[k];
        paths[np] = NULL;
        free(add);
    }
    if (paths == NULL && (paths = calloc(1, sizeof *paths)) == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    *out = paths;
    *nout = np;
    return 0;
fail:
    if (paths != NULL)
        bg_audit_free_list(paths, np);
    return -1;
}

/* The creation time (ms, UTC) in an audit file's name, or BG_REPORT_NO_TIME. */
static int64_t file_name_time(const char *path, const char *prefix)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t pl = strlen(prefix);
    int y, mo, d, h, mi, sec;
    if (strncmp(base, prefix, pl) != 0 || base[pl] != '-')
        return BG_REPORT_NO_TIME;
    const char *p = base + pl + 1;
    if (digits(&p, 4, &y) != 0 || digits(&p, 2, &mo) != 0 || digits(&p, 2, &d) != 0 ||
        *p++ != '-' || digits(&p, 2, &h) != 0 || digits(&p, 2, &mi) != 0 ||
        digits(&p, 2, &sec) != 0 || *p != '-' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60)
        return BG_REPORT_NO_TIME;
    return (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec) *
           1000;
}

size_t bg_report_prune(char **paths, size_t *n, const char *prefix, int64_t from_ms)
{
    size_t drop = 0;
    if (from_ms == BG_REPORT_NO_TIME)
        return 0;
    while (drop + 1 < *n) {
        int64_t next = file_name_time(paths[drop + 1], prefix);
        if (file_name_time(paths[drop], prefix) == BG_REPORT_NO_TIME || next == BG_REPORT_NO_TIME ||
            next + 86400000 > from_ms)
            break;
        drop++;
    }
    for (size_t i = 0; i < drop; i++)
        free(paths[i]);
    memmove(paths, paths + drop, (*n - drop + 1) * sizeof *paths); /* with the NULL */
    *n -= drop;
    return drop;
}

int bg_report_expand_pruned(char *const *ops, size_t n, const char *prefix, int64_t from,
                            char ***files, size_t *nfiles, char *err, size_t errcap)
{
    char **all = NULL;
    size_t nall = 0;
    *files = NULL;
    *nfiles = 0;
    for (size_t i = 0; i < n; i++) {
        char **one;
        size_t none;
        if (bg_report_expand(&ops[i], 1, prefix, &one, &none, err, errcap) != 0)
            goto fail;
        bg_report_prune(one, &none, prefix, from);
        char **na = realloc(all, (nall + none + 1) * sizeof *na);
        if (na == NULL) {
            bg_audit_free_list(one, none);
            snprintf(err, errcap, "out of memory");
            goto fail;
        }
        all = na;
        memcpy(all + nall, one, none * sizeof *one);
        nall += none;
        all[nall] = NULL;
        free(one);
    }
    if (all == NULL && (all = calloc(1, sizeof *all)) == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    *files = all;
    *nfiles = nall;
    return 0;
fail:
    if (all != NULL)
        bg_audit_free_list(all, nall);
    return -1;
}

struct bg_report_scanner {
    const char *const *paths;
    size_t n, i;
    FILE *fp;
    bg_report_want_cb want;
    bg_report_record_cb cb;
    void *arg;
    char *line;
    size_t cap;
    bg_report_scan_stats_t st;
    int done;
};

bg_report_scanner_t *bg_report_scanner_new(const char *const *paths, size_t n,
                                           bg_report_want_cb want, bg_report_record_cb cb,
                                           void *arg)
{
    bg_report_scanner_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->paths = paths;
    s->n = n;
    s->want = want;
    s->cb = cb;
    s->arg = arg;
    return s;
}

int bg_report_scanner_step(bg_report_scanner_t *s, size_t max_lines, char *err, size_t errcap)
{
    size_t taken = 0;
    while (!s->done && taken < max_lines) {
        if (s->fp == NULL) {
            if (s->i == s->n) {
                s->done = 1;
                break;
            }
            s->fp = fopen(s->paths[s->i], "r");
            if (s->fp == NULL) {
                snprintf(err, errcap, "cannot open %s: %s", s->paths[s->i], strerror(errno));
                s->done = 1;
                return -1;
            }
            s->st.files++;
        }
        ssize_t len = getline(&s->line, &s->cap, s->fp);
        if (len <= 0) {
            int bad = ferror(s->fp);
            fclose(s->fp);
            s->fp = NULL;
            if (bad) {
                snprintf(err, errcap, "read error in %s", s->paths[s->i]);
                s->done = 1;
                return -1;
            }
            s->i++;
            continue;
        }
        taken++;
        s->st.lines++;
        if (s->line[len - 1] != '\n') {
            s->st.torn++; /* being written now, or cut by a crash: not a record */
            continue;
        }
        len--;
        if (len == 0 || (s->want != NULL && !s->want(s->arg, s->line, (size_t)len)))
            continue;
        json_error_t je;
        json_t *rec = json_loadb(s->line, (size_t)len, 0, &je);
        if (!json_is_object(rec)) {
            s->st.unparsable++;
            json_decref(rec);
            continue;
        }
        s->st.records++;
        if (s->cb(s->arg, rec) != 0)
            s->done = 1;
        json_decref(rec);
    }
    return s->done ? 0 : 1;
}

const bg_report_scan_stats_t *bg_report_scanner_stats(const bg_report_scanner_t *s)
{
    return &s->st;
}

void bg_report_scanner_free(bg_report_scanner_t *s)
{
    if (s == NULL)
        return;
    if (s->fp != NULL)
        fclose(s->fp);
    free(s->line);
    free(s);
}

int bg_report_scan(const char *const *paths, size_t n, bg_report_want_cb want,
                   bg_report_record_cb cb, void *arg, bg_report_scan_stats_t *st, char *err,
                   size_t errcap)
{
    bg_report_scanner_t *s = bg_report_scanner_new(paths, n, want, cb, arg);
    if (s == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    int rc;
    while ((rc = bg_report_scanner_step(s, SIZE_MAX, err, errcap)) > 0)
        ;
    if (st != NULL) {
        st->files += s->st.files;
        st->lines += s->st.lines;
        st->records += s->st.records;
        st->unparsable += s->st.unparsable;
        st->torn += s->st.torn;
    }
    bg_report_scanner_free(s);
    return rc < 0 ? -1 : 0;
}

int bg_report_want_decision(void *arg, const char *line, size_t len)
{
    (void)arg;
    return memmem(line, len, "\"type\":\"decision\"", 17) != NULL;
}
