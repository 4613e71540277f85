/*
 * Reports over the audit log (audit/report.h, docs/audit.md "Reports").
 *
 * Everything here streams: one line, one parsed record in memory at a time.
 * What grows with the log is only the sets of distinct subjects (16 bytes
 * per pseudonym and group) and, for `audit subject`, that one person's
 * decisions. Lines are pre-filtered on their raw bytes (the writer writes
 * records compactly, so a decision record contains "type":"decision"
 * verbatim) before jansson parses them.
 */
#include "audit/report.h"
#include "audit/rollup.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "audit/audit.h"
#include "audit/counters.h"
#include "common/keys.h"
#include "common/util.h"
#include "policy/policy.h"

#define CHINA_OFFSET_S (8 * 3600)

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
    if (parse_ts(s, CHINA_OFFSET_S, &date_only, out_ms) != 0)
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
static void china_time(int64_t ms, char *out, size_t cap)
{
    int64_t s = ms / 1000 + CHINA_OFFSET_S;
    int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int64_t rem = s - days * 86400;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d+08:00", y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60));
}

static json_t *utc_or_null(int64_t ms)
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
        if (np + nadd + 1 > cap) {
            size_t nc = (np + nadd + 1) * 2;
            char **pp = realloc(paths, nc * sizeof *pp);
            if (pp == NULL) {
                bg_audit_free_list(add, nadd);
                snprintf(err, errcap, "out of memory");
                goto fail;
            }
            paths = pp;
            cap = nc;
        }
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

static int want_decision(void *arg, const char *line, size_t len)
{
    (void)arg;
    return memmem(line, len, "\"type\":\"decision\"", 17) != NULL;
}

/* ------------------------------------------------------------------------
 * Sets of distinct subjects
 * ------------------------------------------------------------------------ */

typedef struct {
    uint8_t (*keys)[16]; /* all-zero = empty slot; a zero key is kept in has_zero */
    size_t cap, n;
    int has_zero;
} idset_t;

/* The 16-byte key of a pseudonym: its first 16 bytes when it is hex (it
 * always is in records the writer wrote), else a SHA-256 of the text. */
static void subject_key(const char *s, uint8_t out[16])
{
    size_t len = strlen(s);
    int hex = len >= 32;
    for (size_t i = 0; hex && i < 32; i++) {
        char ch = s[i];
        hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
    }
    if (!hex) {
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)s, len, d);
        memcpy(out, d, 16);
        return;
    }
    for (int i = 0; i < 16; i++) {
        int v[2];
        for (int k = 0; k < 2; k++) {
            char ch = s[2 * i + k] | 0x20;
            v[k] = ch <= '9' ? ch - '0' : ch - 'a' + 10;
        }
        out[i] = (uint8_t)(v[0] << 4 | v[1]);
    }
}

static int idset_add(idset_t *s, const uint8_t k[16])
{
    static const uint8_t zero[16];
    if (memcmp(k, zero, 16) == 0) {
        s->n += !s->has_zero;
        s->has_zero = 1;
        return 0;
    }
    if ((s->n + 1) * 10 >= s->cap * 7) {
        size_t nc = s->cap == 0 ? 64 : s->cap * 2;
        uint8_t(*nk)[16] = calloc(nc, 16);
        if (nk == NULL)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (memcmp(s->keys[i], zero, 16) == 0)
                continue;
            uint64_t h;
            memcpy(&h, s->keys[i], 8);
            size_t j = (size_t)h & (nc - 1);
            while (memcmp(nk[j], zero, 16) != 0)
                j = (j + 1) & (nc - 1);
            memcpy(nk[j], s->keys[i], 16);
        }
        free(s->keys);
        s->keys = nk;
        s->cap = nc;
    }
    uint64_t h;
    memcpy(&h, k, 8);
    for (size_t j = (size_t)h & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
        if (memcmp(s->keys[j], k, 16) == 0)
            return 0;
        if (memcmp(s->keys[j], zero, 16) == 0) {
            memcpy(s->keys[j], k, 16);
            s->n++;
            return 0;
        }
    }
}

/* ------------------------------------------------------------------------
 * The report
 * ------------------------------------------------------------------------ */

static const char *const OUTCOMES[] = {"allow", "deidentify", "block"};
static const char *const ACTIONS[] = {"allow", "deidentify", "remove", "remove_record", "block"};
#define NOUT 3
#define NACT 5

typedef struct {
    uint64_t decisions, cross_border, monitor;
    uint64_t outcome[NOUT], would[NOUT];
    uint64_t findings, sensitive, left;
    uint64_t action[NACT];
    idset_t subjects, subjects_left;
    uint64_t serial; /* the last decision counted (finding-level groups) */
    json_t *mech;    /* groups with a recipient dimension: {mechanism: decisions} */
    json_t *rules;   /* groups with a per-finding dimension: {rule: {findings, clause...}} */
} counts_t;

typedef struct {
    char *key[BG_REPORT_MAX_DIMS]; /* NULL: no value (no recipient, unknown country, ...) */
    counts_t c;
} group_t;

struct bg_report {
    bg_report_by_t by; /* the first dimension (BY_NONE: no grouping) */
    bg_report_dims_t dims;
    int finding_dims, reason_dim; /* the set holds per-finding dimensions / reason */
    int want_mech, want_rules;    /* rows carry "mechanisms" / "rules" */
    bg_report_policy_t pol;       /* pol.rules NULL: no policy given */
    int64_t from, to;
    counts_t total;
    group_t *groups;
    size_t ngroups, cap;
    uint64_t serial;
    uint64_t weight; /* how many decisions the record being added stands for */
    int oom;
};

static const char *const BY_NAMES[] = {NULL,    "recipient", "country", "category",
                                       "basis", "outcome",   "route",   "reason",
                                       "day",   "hour",      "rule"};

int bg_report_by_parse(const char *s, bg_report_by_t *by)
{
    for (int i = 1; i < (int)(sizeof BY_NAMES / sizeof BY_NAMES[0]); i++) {
        if (strcmp(s, BY_NAMES[i]) == 0) {
            *by = (bg_report_by_t)i;
            return 0;
        }
    }
    return -1;
}

const char *bg_report_by_name(bg_report_by_t by)
{
    return (int)by > 0 && (size_t)by < sizeof BY_NAMES / sizeof BY_NAMES[0] ? BY_NAMES[by] : NULL;
}

static int finding_dim(bg_report_by_t b)
{
    return b == BG_REPORT_BY_CATEGORY || b == BG_REPORT_BY_BASIS || b == BG_REPORT_BY_RULE;
}

int bg_report_dims_parse(const char *s, bg_report_dims_t *d, char *err, size_t errcap)
{
    memset(d, 0, sizeof *d);
    const char *p = s;
    int fd = 0, rd = 0;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char name[32];
        bg_report_by_t b;
        if (len == 0 || len >= sizeof name) {
            snprintf(err, errcap, "an empty or unknown dimension in '%s'", s);
            return -1;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if (bg_report_by_parse(name, &b) != 0) {
            snprintf(err, errcap,
                     "'%s' is not a dimension (recipient, country, category, basis, rule, "
                     "outcome, route, reason, day, hour)",
                     name);
            return -1;
        }
        for (size_t i = 0; i < d->ndims; i++) {
            if (d->dims[i] == b) {
                snprintf(err, errcap, "'%s' is given twice", name);
                return -1;
            }
        }
        if (d->ndims == BG_REPORT_MAX_DIMS) {
            snprintf(err, errcap, "at most %d dimensions at once", BG_REPORT_MAX_DIMS);
            return -1;
        }
        fd |= finding_dim(b);
        rd |= b == BG_REPORT_BY_REASON;
        d->dims[d->ndims++] = b;
        p += len;
        if (*p == ',' && *++p == '\0') {
            snprintf(err, errcap, "'%s' ends with a comma", s);
            return -1;
        }
    }
    if (d->ndims == 0) {
        snprintf(err, errcap, "no dimension given");
        return -1;
    }
    if (fd && rd) {
        snprintf(err, errcap,
                 "reason cannot be combined with category, basis or rule (reasons and findings "
                 "are different lists)");
        return -1;
    }
    return 0;
}

void bg_report_dims_name(const bg_report_dims_t *d, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < d->ndims && o < cap; i++) {
        int n = snprintf(out + o, cap - o, "%s%s", i ? "," : "", bg_report_by_name(d->dims[i]));
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

json_t *bg_report_policy_clauses(const struct bg_policy *policy)
{
    json_t *o = json_object();
    for (int i = 0; o != NULL && policy != NULL && i < policy->nrules; i++) {
        const bg_rule_t *r = &policy->rules[i];
        if (r->id != NULL && r->clause != NULL)
            json_object_set_new(o, r->id, json_string(r->clause));
    }
    return o;
}

int bg_report_policy_read(const char *path, json_t **clauses, char sha256[65], char *err,
                          size_t errcap)
{
    static const char hx[] = "0123456789abcdef";
    size_t len = 0;
    *clauses = NULL;
    char *text = bg_util_read_file(path, &len);
    if (text == NULL) {
        snprintf(err, errcap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, len, d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        sha256[2 * i] = hx[d[i] >> 4];
        sha256[2 * i + 1] = hx[d[i] & 15];
    }
    sha256[64] = '\0';
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!json_is_object(root)) {
        snprintf(err, errcap, "%s:%d:%d: %s", path, je.line, je.column,
                 root == NULL ? je.text : "not a JSON object");
        json_decref(root);
        return -1;
    }
    json_t *o = json_object();
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(root, "rules"), i, r)
    {
        const char *id = json_string_value(json_object_get(r, "id"));
        const char *cl = json_string_value(json_object_get(r, "clause"));
        if (o != NULL && id != NULL && cl != NULL)
            json_object_set_new(o, id, json_string(cl));
    }
    json_decref(root);
    if (o == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    *clauses = o;
    return 0;
}

bg_report_t *bg_report_new_dims(const bg_report_dims_t *d, int64_t from_ms, int64_t to_ms,
                                const bg_report_policy_t *pol)
{
    bg_report_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    if (d != NULL && d->ndims <= BG_REPORT_MAX_DIMS)
        r->dims = *d;
    for (size_t i = 0; i < r->dims.ndims; i++) {
        r->finding_dims |= finding_dim(r->dims.dims[i]);
        r->reason_dim |= r->dims.dims[i] == BG_REPORT_BY_REASON;
        r->want_mech |= r->dims.dims[i] == BG_REPORT_BY_RECIPIENT;
    }
    r->want_rules = r->finding_dims;
    r->by = r->dims.ndims > 0 ? r->dims.dims[0] : BG_REPORT_BY_NONE;
    if (pol != NULL)
        r->pol = *pol;
    r->from = from_ms;
    r->to = to_ms;
    return r;
}

bg_report_t *bg_report_new(bg_report_by_t by, int64_t from_ms, int64_t to_ms)
{
    bg_report_dims_t d = {.ndims = by != BG_REPORT_BY_NONE};
    d.dims[0] = by;
    return bg_report_new_dims(&d, from_ms, to_ms, NULL);
}

static void counts_free(counts_t *c)
{
    free(c->subjects.keys);
    free(c->subjects_left.keys);
    json_decref(c->mech);
    json_decref(c->rules);
}

void bg_report_free(bg_report_t *r)
{
    if (r == NULL)
        return;
    counts_free(&r->total);
    for (size_t i = 0; i < r->ngroups; i++) {
        for (size_t k = 0; k < BG_REPORT_MAX_DIMS; k++)
            free(r->groups[i].key[k]);
        counts_free(&r->groups[i].c);
    }
    free(r->groups);
    free(r);
}

static int name_index(const char *const *names, int n, const json_t *v)
{
    const char *s = json_string_value(v);
    for (int i = 0; s != NULL && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int key_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The group of the combination KEYS[0..r->dims.ndims) (NULLs allowed).
 * O(groups): fine for the few thousand combinations of recipients,
 * categories and bases a log names. */
static group_t *group_of_keys(bg_report_t *r, const char *const *keys)
{
    size_t nd = r->dims.ndims;
    for (size_t i = 0; i < r->ngroups; i++) {
        size_t k = 0;
        while (k < nd && key_eq(r->groups[i].key[k], keys[k]))
            k++;
        if (k == nd)
            return &r->groups[i];
    }
    if (r->ngroups == r->cap) {
        size_t nc = r->cap == 0 ? 16 : r->cap * 2;
        group_t *ng = realloc(r->groups, nc * sizeof *ng);
        if (ng == NULL)
            return NULL;
        r->groups = ng;
        r->cap = nc;
    }
    group_t *g = &r->groups[r->ngroups];
    memset(g, 0, sizeof *g);
    for (size_t k = 0; k < nd; k++) {
        if (keys[k] != NULL && (g->key[k] = strdup(keys[k])) == NULL) {
            for (size_t j = 0; j < k; j++)
                free(g->key[j]);
            return NULL;
        }
    }
    if ((r->want_mech && (g->c.mech = json_object()) == NULL) ||
        (r->want_rules && (g->c.rules = json_object()) == NULL)) {
        for (size_t k = 0; k < nd; k++)
            free(g->key[k]);
        json_decref(g->c.mech);
        return NULL;
    }
    r->ngroups++;
    return g;
}

/*
 * The clause of ITEM (a finding or a reason of decision REC): the item's own
 * "clause" when the record carries one, else the clause POL gives its rule.
 * *FROM: "record", "policy" (POL is the file the decision was taken under:
 * same SHA-256) or "other_policy" (the same rule id in another file: the
 * clause may have changed since). NULL when none is known.
 */
static const char *clause_of(const bg_report_policy_t *pol, const json_t *rec, const json_t *item,
                             const char **from)
{
    const char *c = json_string_value(json_object_get(item, "clause"));
    if (c != NULL) {
        *from = "record";
        return c;
    }
    const char *rule = json_string_value(json_object_get(item, "rule"));
    if (pol == NULL || pol->rules == NULL || rule == NULL ||
        (c = json_string_value(json_object_get(pol->rules, rule))) == NULL)
        return NULL;
    const char *sha = json_string_value(json_object_get(json_object_get(rec, "policy"), "sha256"));
    *from = sha != NULL && pol->sha256 != NULL && strcmp(sha, pol->sha256) == 0 ? "policy"
                                                                                : "other_policy";
    return c;
}

static void count_decision(counts_t *c, const json_t *rec, uint64_t w)
{
    c->decisions += w;
    const json_t *dst = json_object_get(rec, "destination");
    const char *region = json_string_value(json_object_get(dst, "region"));
    c->cross_border += w * (region == NULL || strcmp(region, "domestic") != 0);
    const char *mode = json_string_value(json_object_get(rec, "mode"));
    c->monitor += w * (mode != NULL && strcmp(mode, "monitor") == 0);
    int o = name_index(OUTCOMES, NOUT, json_object_get(rec, "outcome"));
    int wd = name_index(OUTCOMES, NOUT, json_object_get(rec, "would"));
    if (o >= 0)
        c->outcome[o] += w;
    if (wd >= 0)
        c->would[wd] += w;
    if (c->mech != NULL) {
        const char *m = json_string_value(json_object_get(rec, "mechanism"));
        m = m != NULL ? m : "(none recorded)";
        json_t *v = json_object_get(c->mech, m);
        json_object_set_new(c->mech, m, json_integer(json_integer_value(v) + (json_int_t)w));
    }
}

static int count_finding(const bg_report_t *r, counts_t *c, const json_t *rec, const json_t *f)
{
    uint8_t k[16];
    uint64_t w = r->weight;
    c->findings += w;
    c->sensitive += w * json_is_true(json_object_get(f, "sensitive"));
    int a = name_index(ACTIONS, NACT, json_object_get(f, "action"));
    if (a >= 0)
        c->action[a] += w;
    int left = bg_counters_json_finding_counts(rec, f);
    c->left += w * (uint64_t)left;
    if (c->rules != NULL) {
        const char *rule = json_string_value(json_object_get(f, "rule"));
        rule = rule != NULL && rule[0] ? rule : "(none recorded)";
        json_t *e = json_object_get(c->rules, rule);
        if (e == NULL) {
            if ((e = json_object()) == NULL || json_object_set_new(c->rules, rule, e) != 0)
                return -1;
            json_object_set_new(e, "findings", json_integer(0));
        }
        json_object_set_new(
            e, "findings",
            json_integer(json_integer_value(json_object_get(e, "findings")) + (json_int_t)w));
        const char *from = NULL, *cl = NULL;
        if (!json_is_string(json_object_get(e, "clause")) &&
            (cl = clause_of(&r->pol, rec, f, &from)) != NULL) {
            json_object_set_new(e, "clause", json_string(cl));
            json_object_set_new(e, "clause_from", json_string(from));
        }
    }
    const char *subj = json_string_value(json_object_get(f, "subject"));
    if (subj == NULL)
        return 0;
    subject_key(subj, k);
    if (idset_add(&c->subjects, k) != 0 || (left && idset_add(&c->subjects_left, k) != 0))
        return -1;
    return 0;
}

static int count_subjects(counts_t *c, const json_t *rec)
{
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(rec, "subjects"), i, s)
    {
        const char *p = json_string_value(json_object_get(s, "pseudonym"));
        uint8_t k[16];
        if (p == NULL)
            continue;
        subject_key(p, k);
        if (idset_add(&c->subjects, k) != 0)
            return -1;
    }
    return 0;
}

/* Everything of REC into C (totals, or a decision-level group). */
static int count_all(const bg_report_t *r, counts_t *c, const json_t *rec)
{
    size_t i;
    const json_t *f;
    int rc = 0;
    count_decision(c, rec, r->weight);
    json_array_foreach(json_object_get(rec, "findings"), i, f)
    {
        rc |= count_finding(r, c, rec, f);
    }
    return rc | count_subjects(c, rec);
}

static const char *str_or_null(const json_t *v)
{
    return json_string_value(v);
}

/* The value of decision-level dimension B for REC; T its time. KEY is the
 * buffer for time keys. NULL: no value. */
static const char *decision_value(bg_report_by_t b, const json_t *rec, int64_t t, char *key,
                                  size_t cap)
{
    switch (b) {
    case BG_REPORT_BY_RECIPIENT:
        return str_or_null(json_object_get(json_object_get(rec, "recipient"), "id"));
    case BG_REPORT_BY_COUNTRY:
        return str_or_null(json_object_get(json_object_get(rec, "destination"), "country"));
    case BG_REPORT_BY_OUTCOME: return str_or_null(json_object_get(rec, "outcome"));
    case BG_REPORT_BY_ROUTE: return str_or_null(json_object_get(rec, "route"));
    case BG_REPORT_BY_DAY:
    case BG_REPORT_BY_HOUR:
        if (t == BG_REPORT_NO_TIME)
            return NULL;
        china_time(t, key, cap);
        key[b == BG_REPORT_BY_DAY ? 10 : 13] = '\0';
        return key;
    default: return NULL;
    }
}

static const char *finding_member(bg_report_by_t b)
{
    return b == BG_REPORT_BY_CATEGORY ? "category" : b == BG_REPORT_BY_BASIS ? "basis" : "rule";
}

/*
 * Count REC in the groups of the dimension set. KEYS holds the
 * decision-level values already; the per-finding (or reason) positions are
 * filled here. A decision counts once per group it reaches (serial).
 */
static int add_to_groups(bg_report_t *r, const json_t *rec, const char **keys)
{
    size_t nd = r->dims.ndims, i, k;
    const json_t *x;
    int rc = 0;
    if (r->finding_dims) {
        const json_t *fs = json_object_get(rec, "findings");
        if (json_array_size(fs) == 0) { /* decisions without findings */
            for (k = 0; k < nd; k++)
                if (finding_dim(r->dims.dims[k]))
                    keys[k] = NULL;
            group_t *g = group_of_keys(r, keys);
            return g == NULL ? -1 : count_all(r, &g->c, rec);
        }
        json_array_foreach(fs, i, x)
        {
            for (k = 0; k < nd; k++)
                if (finding_dim(r->dims.dims[k]))
                    keys[k] = str_or_null(json_object_get(x, finding_member(r->dims.dims[k])));
            group_t *g = group_of_keys(r, keys);
            if (g == NULL)
                return -1;
            if (g->c.serial != r->serial) {
                g->c.serial = r->serial;
                count_decision(&g->c, rec, r->weight);
            }
            rc |= count_finding(r, &g->c, rec, x);
        }
        return rc;
    }
    if (r->reason_dim) {
        const json_t *rs = json_object_get(rec, "reasons");
        size_t pos = 0;
        while (r->dims.dims[pos] != BG_REPORT_BY_REASON)
            pos++;
        if (json_array_size(rs) == 0) { /* decisions without a reason */
            keys[pos] = NULL;
            group_t *g = group_of_keys(r, keys);
            return g == NULL ? -1 : count_all(r, &g->c, rec);
        }
        json_array_foreach(rs, i, x)
        {
            keys[pos] = str_or_null(json_object_get(x, "code"));
            group_t *g = group_of_keys(r, keys);
            if (g == NULL)
                return -1;
            if (g->c.serial != r->serial) { /* once per code and decision */
                g->c.serial = r->serial;
                rc |= count_all(r, &g->c, rec);
            }
        }
        return rc;
    }
    group_t *g = group_of_keys(r, keys);
    return g == NULL ? -1 : count_all(r, &g->c, rec);
}

int bg_report_add(bg_report_t *r, const json_t *rec)
{
    return bg_report_add_weighted(r, rec, 1);
}

int bg_report_add_weighted(bg_report_t *r, const json_t *rec, uint64_t weight)
{
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (type == NULL || strcmp(type, "decision") != 0)
        return 0;
    int64_t t = bg_report_record_time(rec);
    if ((r->from != BG_REPORT_NO_TIME || r->to != BG_REPORT_NO_TIME) && t == BG_REPORT_NO_TIME)
        return 0;
    if ((r->from != BG_REPORT_NO_TIME && t < r->from) || (r->to != BG_REPORT_NO_TIME && t >= r->to))
        return 0;
    r->serial++;
    r->weight = weight;
    int rc = count_all(r, &r->total, rec);
    if (r->dims.ndims > 0) {
        const char *keys[BG_REPORT_MAX_DIMS] = {NULL};
        char tkey[BG_REPORT_MAX_DIMS][40];
        for (size_t k = 0; k < r->dims.ndims; k++)
            keys[k] = decision_value(r->dims.dims[k], rec, t, tkey[k], sizeof tkey[k]);
        rc |= add_to_groups(r, rec, keys);
    }
    if (rc != 0)
        r->oom = 1;
    return rc != 0 ? -1 : 1;
}

static json_t *names_json(const char *const *names, int n, const uint64_t *v)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(o, names[i], json_integer((json_int_t)v[i]));
    return o;
}

/* {"mechanism": n, ...} -> [{"mechanism", "decisions"}], most decisions first,
 * then by name (the order never depends on the order records were read:
 * rollups and merged instances read them in another). */
static json_t *mech_json(const json_t *m)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        size_t i, n = json_array_size(a);
        for (i = 0; i < n; i++) {
            const json_t *e = json_array_get(a, i);
            json_int_t c = json_integer_value(json_object_get(e, "decisions"));
            if (c < json_integer_value(v) ||
                (c == json_integer_value(v) &&
                 strcmp(json_string_value(json_object_get(e, "mechanism")), k) > 0))
                break;
        }
        json_array_insert_new(a, i,
                              json_pack("{s:s, s:I}", "mechanism", k, "decisions",
                                        (json_int_t)json_integer_value(v)));
    }
    return a;
}

/* {"rule": {findings, clause, clause_from}} -> [{"rule", "clause", "clause_from",
 * "findings"}], most findings first, then by rule; clause null when unknown. */
static json_t *rules_json(const json_t *m)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        json_int_t c = json_integer_value(json_object_get(v, "findings"));
        size_t i, n = json_array_size(a);
        for (i = 0; i < n; i++) {
            const json_t *e = json_array_get(a, i);
            json_int_t ci = json_integer_value(json_object_get(e, "findings"));
            if (ci < c || (ci == c && strcmp(json_string_value(json_object_get(e, "rule")), k) > 0))
                break;
        }
        json_t *e = json_object();
        json_object_set_new(e, "rule", json_string(k));
        json_t *cl = json_object_get(v, "clause");
        json_object_set(e, "clause", cl != NULL ? cl : json_null());
        json_t *cf = json_object_get(v, "clause_from");
        json_object_set(e, "clause_from", cf != NULL ? cf : json_null());
        json_object_set_new(e, "findings", json_integer(c));
        json_array_insert_new(a, i, e);
    }
    return a;
}

/* The counts object (docs/audit.md "Reports"), into O. */
static void counts_json(json_t *o, const counts_t *c)
{
    json_object_set_new(o, "decisions", json_integer((json_int_t)c->decisions));
    json_object_set_new(o, "cross_border", json_integer((json_int_t)c->cross_border));
    json_object_set_new(o, "monitor", json_integer((json_int_t)c->monitor));
    json_object_set_new(o, "outcomes", names_json(OUTCOMES, NOUT, c->outcome));
    json_object_set_new(o, "would", names_json(OUTCOMES, NOUT, c->would));
    json_object_set_new(o, "findings", json_integer((json_int_t)c->findings));
    json_object_set_new(o, "sensitive_findings", json_integer((json_int_t)c->sensitive));
    json_object_set_new(o, "findings_by_action", names_json(ACTIONS, NACT, c->action));
    json_object_set_new(o, "findings_left_as_pi", json_integer((json_int_t)c->left));
    json_object_set_new(o, "subjects", json_integer((json_int_t)c->subjects.n));
    json_object_set_new(o, "subjects_left_as_pi", json_integer((json_int_t)c->subjects_left.n));
    if (c->mech != NULL)
        json_object_set_new(o, "mechanisms", mech_json(c->mech));
    if (c->rules != NULL)
        json_object_set_new(o, "rules", rules_json(c->rules));
}

/* Single dimension: groups by decisions (descending), then key; the
 * no-value group last. */
static int group_order(const void *a, const void *b)
{
    const group_t *x = a, *y = b;
    if ((x->key[0] == NULL) != (y->key[0] == NULL))
        return x->key[0] == NULL ? 1 : -1;
    if (x->c.decisions != y->c.decisions)
        return x->c.decisions < y->c.decisions ? 1 : -1;
    if (x->c.findings != y->c.findings)
        return x->c.findings < y->c.findings ? 1 : -1;
    return x->key[0] != NULL ? strcmp(x->key[0], y->key[0]) : 0;
}

/* Time groups, and combinations of dimensions: by their keys, position by
 * position (times sort as times), a missing value after every value. */
static int group_order_keys(const void *a, const void *b)
{
    const group_t *x = a, *y = b;
    for (size_t k = 0; k < BG_REPORT_MAX_DIMS; k++) {
        if ((x->key[k] == NULL) != (y->key[k] == NULL))
            return x->key[k] == NULL ? 1 : -1;
        int c = x->key[k] != NULL ? strcmp(x->key[k], y->key[k]) : 0;
        if (c != 0)
            return c;
    }
    return 0;
}

static void sort_groups(const bg_report_t *r)
{
    int by_keys = r->dims.ndims > 1 || r->by == BG_REPORT_BY_DAY || r->by == BG_REPORT_BY_HOUR;
    if (r->ngroups > 1)
        qsort(r->groups, r->ngroups, sizeof *r->groups, by_keys ? group_order_keys : group_order);
}

static json_t *str_json(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

json_t *bg_report_json(const bg_report_t *r, const bg_report_scan_stats_t *scan)
{
    json_t *o = json_object();
    size_t nd = r->dims.ndims;
    json_object_set_new(o, "format", json_string("bordergate-audit-report/1"));
    json_object_set_new(o, "from", utc_or_null(r->from));
    json_object_set_new(o, "to", utc_or_null(r->to));
    if (nd > 1) {
        json_t *by = json_array();
        for (size_t k = 0; k < nd; k++)
            json_array_append_new(by, json_string(bg_report_by_name(r->dims.dims[k])));
        json_object_set_new(o, "by", by);
    } else {
        json_object_set_new(o, "by", str_json(bg_report_by_name(r->by)));
    }
    json_t *in = json_object();
    json_object_set_new(in, "files", json_integer(scan ? (json_int_t)scan->files : 0));
    json_object_set_new(in, "lines", json_integer(scan ? (json_int_t)scan->lines : 0));
    json_object_set_new(in, "unparsable_lines",
                        json_integer(scan ? (json_int_t)scan->unparsable : 0));
    json_object_set_new(in, "incomplete_lines", json_integer(scan ? (json_int_t)scan->torn : 0));
    json_object_set_new(o, "input", in);
    json_t *tot = json_object();
    counts_json(tot, &r->total);
    json_object_set_new(o, "totals", tot);
    if (nd > 0) {
        sort_groups(r);
        json_t *gs = json_array();
        for (size_t i = 0; i < r->ngroups; i++) {
            json_t *g = json_object();
            if (nd > 1) {
                json_t *key = json_array();
                for (size_t k = 0; k < nd; k++)
                    json_array_append_new(key, str_json(r->groups[i].key[k]));
                json_object_set_new(g, "key", key);
            } else {
                json_object_set_new(g, "key", str_json(r->groups[i].key[0]));
            }
            counts_json(g, &r->groups[i].c);
            json_array_append_new(gs, g);
        }
        json_object_set_new(o, "groups", gs);
    }
    return o;
}

static int report_record(void *arg, const json_t *rec);

json_t *bg_report_run_dims(const char *const *paths, size_t n, const bg_report_dims_t *d,
                           int64_t from_ms, int64_t to_ms, const bg_report_policy_t *pol, char *err,
                           size_t errcap)
{
    bg_report_scan_stats_t st;
    memset(&st, 0, sizeof st);
    bg_report_t *r = bg_report_new_dims(d, from_ms, to_ms, pol);
    json_t *doc = NULL;
    if (r == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (bg_report_scan(paths, n, want_decision, report_record, r, &st, err, errcap) != 0)
        goto out;
    if (r->oom) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    doc = bg_report_json(r, &st);
out:
    bg_report_free(r);
    return doc;
}

json_t *bg_report_run(const char *const *paths, size_t n, bg_report_by_t by, int64_t from_ms,
                      int64_t to_ms, char *err, size_t errcap)
{
    bg_report_dims_t d = {.ndims = by != BG_REPORT_BY_NONE};
    d.dims[0] = by;
    return bg_report_run_dims(paths, n, &d, from_ms, to_ms, NULL, err, errcap);
}

static const char *no_key_label(bg_report_by_t by)
{
    switch (by) {
    case BG_REPORT_BY_RECIPIENT: return "(no recipient)";
    case BG_REPORT_BY_COUNTRY: return "(unknown)";
    case BG_REPORT_BY_CATEGORY:
    case BG_REPORT_BY_BASIS:
    case BG_REPORT_BY_RULE: return "(no findings)";
    case BG_REPORT_BY_REASON: return "(no reason)";
    case BG_REPORT_BY_DAY:
    case BG_REPORT_BY_HOUR: return "(no time)";
    default: return "(none)";
    }
}

static void print_counts(FILE *out, const counts_t *c)
{
    fprintf(out,
            " %9" PRIu64 " %7" PRIu64 " %7" PRIu64 " %10" PRIu64 " %6" PRIu64 " %9" PRIu64
            " %9" PRIu64 " %10" PRIu64 " %9" PRIu64 " %13" PRIu64,
            c->decisions, c->cross_border, c->outcome[0], c->outcome[1], c->outcome[2], c->findings,
            c->sensitive, c->left, (uint64_t)c->subjects.n, (uint64_t)c->subjects_left.n);
}

/* Append to BUF (CAP bytes, at *O) as snprintf would, never past the end. */
static void bufcat(char *buf, size_t cap, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bufcat(char *buf, size_t cap, size_t *o, const char *fmt, ...)
{
    if (*o >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *o, cap - *o, fmt, ap);
    va_end(ap);
    if (n > 0)
        *o = *o + (size_t)n < cap ? *o + (size_t)n : cap - 1;
}

/* The row's mechanisms, "standard_contract:SC-1 (3), exempt:basis (1)"
 * (counts only when several), into BUF. */
static void mech_text(const counts_t *c, char *buf, size_t cap)
{
    size_t i, o = 0;
    const json_t *e;
    buf[0] = '\0';
    json_t *a = mech_json(c->mech);
    json_array_foreach(a, i, e)
    {
        bufcat(buf, cap, &o, "%s%s", i ? ", " : "",
               json_string_value(json_object_get(e, "mechanism")));
        if (json_array_size(a) > 1)
            bufcat(buf, cap, &o, " (%" JSON_INTEGER_FORMAT ")",
                   json_integer_value(json_object_get(e, "decisions")));
    }
    json_decref(a);
}

/* The row's rules and clauses, "r1: WADesk 4.2.1; r2: (no clause)", into BUF. */
static void rules_text(const counts_t *c, char *buf, size_t cap)
{
    size_t i, o = 0;
    const json_t *e;
    buf[0] = '\0';
    json_t *a = rules_json(c->rules);
    json_array_foreach(a, i, e)
    {
        const char *cl = json_string_value(json_object_get(e, "clause"));
        const char *cf = json_string_value(json_object_get(e, "clause_from"));
        bufcat(buf, cap, &o, "%s%s: %s%s", i ? "; " : "",
               json_string_value(json_object_get(e, "rule")), cl != NULL ? cl : "(no clause)",
               cf != NULL && strcmp(cf, "other_policy") == 0 ? " [from another policy]" : "");
    }
    json_decref(a);
}

void bg_report_print(const bg_report_t *r, const bg_report_scan_stats_t *scan, FILE *out)
{
    char a[40], b[40];
    size_t nd = r->dims.ndims;
    if (r->from != BG_REPORT_NO_TIME)
        china_time(r->from, a, sizeof a);
    if (r->to != BG_REPORT_NO_TIME)
        china_time(r->to, b, sizeof b);
    fprintf(out, "Audit report: decisions from %s to %s (China time; the end excluded)\n",
            r->from != BG_REPORT_NO_TIME ? a : "the start of the log",
            r->to != BG_REPORT_NO_TIME ? b : "its end");
    if (scan != NULL)
        fprintf(out,
                "read %" PRIu64 " file(s), %" PRIu64 " line(s); %" PRIu64
                " decision(s) in the window\n",
                scan->files, scan->lines, r->total.decisions);
    fprintf(out, "\n");
    int w[BG_REPORT_MAX_DIMS] = {14};
    for (size_t k = 0; k < nd; k++) {
        const char *name = bg_report_by_name(r->dims.dims[k]);
        w[k] = nd > 1 ? (int)strlen(name) : 14;
        if (k == 0 && w[0] < 5)
            w[0] = 5; /* "TOTAL" */
        for (size_t i = 0; i < r->ngroups; i++) {
            const char *key = r->groups[i].key[k];
            int l = (int)strlen(key ? key : no_key_label(r->dims.dims[k]));
            if (l > w[k])
                w[k] = l < 48 ? l : 48;
        }
    }
    if (nd == 0)
        w[0] = 14;
    int mw = 9; /* "MECHANISM" */
    char text[512];
    for (size_t i = 0; r->want_mech && i < r->ngroups; i++) {
        mech_text(&r->groups[i].c, text, sizeof text);
        if ((int)strlen(text) > mw)
            mw = strlen(text) < 60 ? (int)strlen(text) : 60;
    }
    size_t ncol = nd > 0 ? nd : 1;
    for (size_t k = 0; k < ncol; k++) {
        char head[64];
        const char *by = nd > 0 ? bg_report_by_name(r->dims.dims[k]) : "";
        snprintf(head, sizeof head, "%s", by);
        for (char *p = head; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        fprintf(out, "%s%-*s", k ? " " : "", w[k], head);
    }
    fprintf(out, " %9s %7s %7s %10s %6s %9s %9s %10s %9s %13s", "DECISIONS", "ABROAD", "ALLOW",
            "DEIDENTIFY", "BLOCK", "FINDINGS", "SENSITIVE", "LEFT AS PI", "SUBJECTS",
            "THEIR PI LEFT");
    if (r->want_mech)
        fprintf(out, "  %-*s", mw, "MECHANISM");
    if (r->want_rules)
        fprintf(out, "  RULE: CLAUSE");
    fprintf(out, "\n");
    if (nd > 0) {
        sort_groups(r);
        for (size_t i = 0; i < r->ngroups; i++) {
            for (size_t k = 0; k < nd; k++) {
                const char *key = r->groups[i].key[k];
                fprintf(out, "%s%-*s", k ? " " : "", w[k],
                        key ? key : no_key_label(r->dims.dims[k]));
            }
            print_counts(out, &r->groups[i].c);
            if (r->want_mech) {
                mech_text(&r->groups[i].c, text, sizeof text);
                fprintf(out, "  %-*s", mw, text);
            }
            if (r->want_rules) {
                rules_text(&r->groups[i].c, text, sizeof text);
                fprintf(out, "  %s", text);
            }
            fprintf(out, "\n");
        }
    }
    fprintf(out, "%-*s", w[0], "TOTAL");
    for (size_t k = 1; k < ncol; k++)
        fprintf(out, " %-*s", w[k], "");
    print_counts(out, &r->total);
    fprintf(out, "\n");
    fprintf(out,
            "\nABROAD: destination outside mainland China (an unknown country counts as abroad).\n"
            "ALLOW / DEIDENTIFY / BLOCK: what happened to the request. LEFT AS PI: findings that\n"
            "left as personal information (allowed, pseudonymized, or forwarded in monitor mode).\n"
            "SUBJECTS: distinct data subjects (pseudonyms); THEIR PI LEFT: those whose PI left as\n"
            "PI (what the yearly counters count). TOTAL counts each subject once.\n");
    if (r->want_mech)
        fprintf(out, "MECHANISM: the transfer mechanism the row's decisions relied on (decisions "
                     "per mechanism when several).\n");
    if (r->want_rules)
        fprintf(out,
                "RULE: CLAUSE: the policy rules applied to the row's findings and the clause each\n"
                "enforces (from the record, else from the policy given with --config).\n");
    if (nd == 1 && finding_dim(r->by))
        fprintf(out, "A decision with findings in several %s counts once in each.\n",
                r->by == BG_REPORT_BY_CATEGORY ? "categories"
                : r->by == BG_REPORT_BY_BASIS  ? "bases"
                                               : "rules");
    if (nd > 1 && r->finding_dims)
        fprintf(out, "Each finding counts in the row of its own values; a decision counts once in "
                     "each row its findings reach.\n");
    if (r->reason_dim)
        fprintf(out,
                "REASON: the reason codes of blocks and fallbacks (docs/policy.md); a decision\n"
                "with several codes counts once in each.\n");
    for (size_t k = 0; k < nd; k++)
        if (r->dims.dims[k] == BG_REPORT_BY_DAY || r->dims.dims[k] == BG_REPORT_BY_HOUR)
            fprintf(out, "%s in China time (UTC+8).\n",
                    r->dims.dims[k] == BG_REPORT_BY_DAY ? "Days" : "Hours");
    if (r->total.monitor > 0)
        fprintf(out,
                "%" PRIu64
                " decision(s) in monitor mode were forwarded unchanged; enforcement would "
                "have de-identified %" PRIu64 " and blocked %" PRIu64 " of all decisions.\n",
                r->total.monitor, r->total.would[1], r->total.would[2]);
    if (scan != NULL && (scan->unparsable > 0 || scan->torn > 0))
        fprintf(out,
                "note: %" PRIu64 " unparsable and %" PRIu64 " incomplete line(s) were skipped; "
                "run `bordergate audit verify`.\n",
                scan->unparsable, scan->torn);
    if (r->oom)
        fprintf(out, "warning: out of memory: some subjects were not counted.\n");
}

/* ------------------------------------------------------------------------
 * Subject look-up
 * ------------------------------------------------------------------------ */

int bg_report_pseudonym(const unsigned char *key, size_t keylen, const char *id, size_t len,
                        char out[65])
{
    static const char hx[] = "0123456789abcdef";
    unsigned char mac[32];
    unsigned int ml = 0;
    out[0] = '\0';
    if (keylen == 0 ||
        HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)id, len, mac, &ml) == NULL ||
        ml != 32)
        return -1;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[mac[i] >> 4];
        out[2 * i + 1] = hx[mac[i] & 15];
    }
    out[64] = '\0';
    bg_util_wipe(mac, sizeof mac);
    return 0;
}

typedef struct {
    char (*ps)[65]; /* the person's pseudonyms (one per identifier form) */
    size_t nps;
    int64_t from, to;
    json_t *decisions; /* the entries, in log order */
    json_t *by_id;     /* decision_id -> entry (borrowed) */
    int oom;
} subject_ctx_t;

static int subject_want(void *arg, const char *line, size_t len)
{
    subject_ctx_t *x = arg;
    for (size_t i = 0; i < x->nps; i++)
        if (memmem(line, len, x->ps[i], 64) != NULL)
            return 1;
    if (json_object_size(x->by_id) == 0 || memmem(line, len, "\"type\":\"completion\"", 19) == NULL)
        return 0;
    const char *p = memmem(line, len, "\"decision_id\":\"", 15);
    if (p == NULL || (size_t)(line + len - p) < 15 + 33)
        return 0;
    char id[33];
    memcpy(id, p + 15, 32);
    id[32] = '\0';
    return json_object_get(x->by_id, id) != NULL;
}

static void copy_member(json_t *dst, const json_t *src, const char *name)
{
    json_t *v = json_object_get(src, name);
    if (v != NULL)
        json_object_set(dst, name, v);
}

/* Is S one of the person's pseudonyms (a finding's "subject" or
 * "value_pseudonym", a subjects[] entry)? */
static int is_theirs(const subject_ctx_t *x, const char *s)
{
    for (size_t i = 0; s != NULL && i < x->nps; i++)
        if (strcmp(s, x->ps[i]) == 0)
            return 1;
    return 0;
}

/* A finding of the person: attributed to them ("subject"), or - when the
 * record carries it - its own value's keyed pseudonym is one of theirs. */
static int finding_is_theirs(const subject_ctx_t *x, const json_t *f)
{
    return is_theirs(x, json_string_value(json_object_get(f, "subject"))) ||
           is_theirs(x, json_string_value(json_object_get(f, "value_pseudonym")));
}

static json_t *subject_entry(const json_t *rec, const subject_ctx_t *x)
{
    json_t *e = json_object();
    copy_member(e, rec, "time");
    copy_member(e, rec, "decision_id");
    copy_member(e, rec, "route");
    json_t *rc = json_object_get(rec, "recipient");
    json_object_set(e, "recipient", rc != NULL ? rc : json_null());
    copy_member(e, rec, "purpose");
    copy_member(e, rec, "method");
    copy_member(e, rec, "host");
    copy_member(e, rec, "path");
    const json_t *dst = json_object_get(rec, "destination");
    json_t *d = json_object();
    json_object_set(d, "country",
                    json_object_get(dst, "country") ? json_object_get(dst, "country")
                                                    : json_null());
    copy_member(d, dst, "region");
    json_object_set_new(e, "destination", d);
    copy_member(e, rec, "mode");
    copy_member(e, rec, "outcome");
    copy_member(e, rec, "would");
    copy_member(e, rec, "mechanism");
    const json_t *pol = json_object_get(rec, "policy");
    if (pol != NULL)
        json_object_set(e, "policy_version",
                        json_object_get(pol, "version") ? json_object_get(pol, "version")
                                                        : json_null());
    int minor = 0;
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(rec, "subjects"), i, s)
    {
        if (is_theirs(x, str_or_null(json_object_get(s, "pseudonym"))))
            minor |= json_is_true(json_object_get(s, "minor"));
    }
    if (minor)
        json_object_set_new(e, "minor", json_true());
    json_t *fs = json_array();
    int left = 0;
    const json_t *f;
    json_array_foreach(json_object_get(rec, "findings"), i, f)
    {
        if (!finding_is_theirs(x, f))
            continue;
        json_t *o = json_object();
        static const char *const keep[] = {"path",       "category", "sensitive", "basis",
                                           "evidence",   "rule",     "action",    "operator",
                                           "anonymized", "why"};
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++)
            copy_member(o, f, keep[k]);
        int l = bg_counters_json_finding_counts(rec, f);
        left |= l;
        json_object_set_new(o, "left_as_pi", json_boolean(l));
        json_array_append_new(fs, o);
    }
    json_object_set_new(e, "findings", fs);
    json_object_set_new(e, "pi_left", json_boolean(left));
    json_object_set_new(e, "completion", json_null());
    return e;
}

/* The pseudonym (of X's) a decision record names: in subjects[], or in a finding. */
static const char *names_subject(const json_t *rec, const subject_ctx_t *x)
{
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(rec, "subjects"), i, v)
    {
        const char *s = json_string_value(json_object_get(v, "pseudonym"));
        if (is_theirs(x, s))
            return s;
    }
    json_array_foreach(json_object_get(rec, "findings"), i, v)
    {
        if (finding_is_theirs(x, v))
            return "finding";
    }
    return NULL;
}

static int subject_record(void *arg, const json_t *rec)
{
    subject_ctx_t *x = arg;
    const char *type = json_string_value(json_object_get(rec, "type"));
    const char *id = json_string_value(json_object_get(rec, "decision_id"));
    if (type == NULL || id == NULL)
        return 0;
    if (strcmp(type, "completion") == 0) {
        json_t *e = json_object_get(x->by_id, id);
        if (e != NULL) {
            json_t *c = json_object();
            copy_member(c, rec, "result");
            copy_member(c, rec, "upstream_status");
            copy_member(c, rec, "time");
            json_object_set_new(e, "completion", c);
        }
        return 0;
    }
    if (strcmp(type, "decision") != 0 || names_subject(rec, x) == NULL)
        return 0;
    int64_t t = bg_report_record_time(rec);
    if ((x->from != BG_REPORT_NO_TIME && (t == BG_REPORT_NO_TIME || t < x->from)) ||
        (x->to != BG_REPORT_NO_TIME && (t == BG_REPORT_NO_TIME || t >= x->to)))
        return 0;
    json_t *e = subject_entry(rec, x);
    if (e == NULL || json_array_append_new(x->decisions, e) != 0 ||
        json_object_set(x->by_id, id, e) != 0)
        x->oom = 1;
    return 0;
}

/* Add S to the sorted, duplicate-free string array A. */
static void add_sorted(json_t *a, const char *s)
{
    size_t i, n = json_array_size(a);
    for (i = 0; i < n; i++) {
        int c = strcmp(json_string_value(json_array_get(a, i)), s);
        if (c == 0)
            return;
        if (c > 0)
            break;
    }
    json_array_insert_new(a, i, json_string(s));
}

static json_t *subject_summary(const json_t *decisions)
{
    json_t *recips = json_array(), *countries = json_array(), *cats = json_array(),
           *bases = json_array();
    size_t i, k, transfers = 0, blocked = 0;
    const json_t *e, *f;
    json_array_foreach(decisions, i, e)
    {
        if (str_or_null(json_object_get(e, "outcome")) != NULL &&
            strcmp(json_string_value(json_object_get(e, "outcome")), "block") == 0)
            blocked++;
        if (!json_is_true(json_object_get(e, "pi_left")))
            continue;
        transfers++;
        const char *rid = json_string_value(json_object_get(json_object_get(e, "recipient"), "id"));
        add_sorted(recips, rid != NULL ? rid : "(no recipient)");
        const char *cc =
            json_string_value(json_object_get(json_object_get(e, "destination"), "country"));
        add_sorted(countries, cc != NULL ? cc : "(unknown)");
        json_array_foreach(json_object_get(e, "findings"), k, f)
        {
            if (!json_is_true(json_object_get(f, "left_as_pi")))
                continue;
            const char *c = json_string_value(json_object_get(f, "category"));
            const char *b = json_string_value(json_object_get(f, "basis"));
            if (c != NULL)
                add_sorted(cats, c);
            if (b != NULL)
                add_sorted(bases, b);
        }
    }
    json_t *s = json_object();
    json_object_set_new(s, "decisions", json_integer((json_int_t)json_array_size(decisions)));
    json_object_set_new(s, "transfers", json_integer((json_int_t)transfers));
    json_object_set_new(s, "blocked", json_integer((json_int_t)blocked));
    json_object_set_new(s, "recipients", recips);
    json_object_set_new(s, "countries", countries);
    json_object_set_new(s, "categories", cats);
    json_object_set_new(s, "bases", bases);
    return s;
}

/* Lowercase 64-hex copy of S into OUT; -1 when S is not 64 hex digits. */
static int hex64(const char *s, char out[65])
{
    if (strlen(s) != 64)
        return -1;
    for (size_t i = 0; i < 64; i++) {
        char ch = s[i];
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch + 32);
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return -1;
        out[i] = ch;
    }
    out[64] = '\0';
    return 0;
}

json_t *bg_report_subject_many(const char *const *paths, size_t n, const char *const *pseudonyms,
                               size_t np, int64_t from_ms, int64_t to_ms,
                               bg_report_scan_stats_t *st, char *err, size_t errcap)
{
    subject_ctx_t x;
    memset(&x, 0, sizeof x);
    if (np == 0) {
        snprintf(err, errcap, "no subject pseudonym given");
        return NULL;
    }
    if ((x.ps = calloc(np, sizeof *x.ps)) == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < np; i++) {
        char h[65];
        if (hex64(pseudonyms[i], h) != 0) {
            snprintf(err, errcap, "a subject pseudonym is 64 hex digits");
            free(x.ps);
            return NULL;
        }
        if (!is_theirs(&x, h))
            memcpy(x.ps[x.nps++], h, 65);
    }
    x.from = from_ms;
    x.to = to_ms;
    x.decisions = json_array();
    x.by_id = json_object();
    if (x.decisions == NULL || x.by_id == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    if (bg_report_scan(paths, n, subject_want, subject_record, &x, st, err, errcap) != 0)
        goto fail;
    if (x.oom) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "format", json_string("bordergate-audit-subject/1"));
    json_t *subj = json_object();
    json_object_set_new(subj, "pseudonym", json_string(x.ps[0]));
    json_t *all = json_array();
    for (size_t i = 0; i < x.nps; i++)
        json_array_append_new(all, json_string(x.ps[i]));
    json_object_set_new(subj, "pseudonyms", all);
    json_object_set_new(doc, "subject", subj);
    json_object_set_new(doc, "from", utc_or_null(from_ms));
    json_object_set_new(doc, "to", utc_or_null(to_ms));
    json_object_set_new(doc, "summary", subject_summary(x.decisions));
    json_object_set_new(doc, "decisions", x.decisions);
    json_decref(x.by_id);
    free(x.ps);
    return doc;
fail:
    json_decref(x.decisions);
    json_decref(x.by_id);
    free(x.ps);
    return NULL;
}

json_t *bg_report_subject(const char *const *paths, size_t n, const char *pseudonym,
                          int64_t from_ms, int64_t to_ms, bg_report_scan_stats_t *st, char *err,
                          size_t errcap)
{
    return bg_report_subject_many(paths, n, &pseudonym, 1, from_ms, to_ms, st, err, errcap);
}

/* Add OUT (a candidate form of an identifier, LEN bytes) to FORMS unless
 * it is there already. */
static void add_form(char forms[][BG_REPORT_ID_MAX], size_t *n, size_t max, const char *s,
                     size_t len)
{
    if (len == 0 || len >= BG_REPORT_ID_MAX || *n >= max)
        return;
    for (size_t i = 0; i < *n; i++)
        if (strlen(forms[i]) == len && memcmp(forms[i], s, len) == 0)
            return;
    memcpy(forms[*n], s, len);
    forms[*n][len] = '\0';
    (*n)++;
}

size_t bg_report_identifier_forms(const char *id, char forms[][BG_REPORT_ID_MAX], size_t max)
{
    size_t n = 0, len = strlen(id);
    char buf[BG_REPORT_ID_MAX];
    add_form(forms, &n, max, id, len); /* as given: what a subjects.id field usually holds */
    if (len >= BG_REPORT_ID_MAX)
        return n;
    /* Surrounding white space. */
    size_t b = 0, e = len;
    while (b < e && (id[b] == ' ' || id[b] == '\t'))
        b++;
    while (e > b && (id[e - 1] == ' ' || id[e - 1] == '\t'))
        e--;
    add_form(forms, &n, max, id + b, e - b);
    /* An e-mail address: the domain is case-insensitive, and in practice
     * the whole address is compared without case. */
    if (memchr(id + b, '@', e - b) != NULL) {
        for (size_t i = b; i < e; i++)
            buf[i - b] = (char)(id[i] >= 'A' && id[i] <= 'Z' ? id[i] + 32 : id[i]);
        add_form(forms, &n, max, buf, e - b);
        return n;
    }
    /* A phone number: digits without separators; a mainland mobile also
     * with and without its country code (+86 / 0086 / 86). */
    size_t d = 0;
    int plus = id[b] == '+', other = 0;
    for (size_t i = b + (size_t)plus; i < e; i++) {
        if (id[i] >= '0' && id[i] <= '9')
            buf[d++] = id[i];
        else if (id[i] != ' ' && id[i] != '-' && id[i] != '(' && id[i] != ')' && id[i] != '.')
            other = 1;
    }
    if (!other && d >= 5) {
        add_form(forms, &n, max, buf, d);
        const char *nat = NULL;
        if (d == 11 && buf[0] == '1')
            nat = buf;
        else if (d == 13 && memcmp(buf, "86", 2) == 0 && buf[2] == '1')
            nat = buf + 2;
        else if (d == 15 && memcmp(buf, "0086", 4) == 0 && buf[4] == '1')
            nat = buf + 4;
        if (nat != NULL) {
            char f[32];
            add_form(forms, &n, max, nat, 11);
            snprintf(f, sizeof f, "+86%.11s", nat);
            add_form(forms, &n, max, f, strlen(f));
            snprintf(f, sizeof f, "86%.11s", nat);
            add_form(forms, &n, max, f, strlen(f));
        }
        return n;
    }
    /* A resident ID number: its check character X in either case. */
    if (e - b == 18) {
        memcpy(buf, id + b, 18);
        if (buf[17] == 'x' || buf[17] == 'X') {
            buf[17] = 'X';
            add_form(forms, &n, max, buf, 18);
            buf[17] = 'x';
            add_form(forms, &n, max, buf, 18);
        }
    }
    return n;
}

static void print_subject(const json_t *doc, FILE *out)
{
    const json_t *subj = json_object_get(doc, "subject");
    const json_t *sum = json_object_get(doc, "summary");
    const char *kid = json_string_value(json_object_get(subj, "key_id"));
    const json_t *all = json_object_get(subj, "pseudonyms");
    fprintf(out, "Data subject %s", json_string_value(json_object_get(subj, "pseudonym")));
    if (json_array_size(all) > 1)
        fprintf(out, " and %zu other pseudonym(s) of the identifiers given",
                json_array_size(all) - 1);
    if (kid != NULL)
        fprintf(out, " (subject key id %s)", kid);
    fprintf(out,
            "\n%" JSON_INTEGER_FORMAT " decision(s) name this subject; in %" JSON_INTEGER_FORMAT
            " of them their personal information left mainland China as personal information; "
            "%" JSON_INTEGER_FORMAT " were blocked.\n",
            json_integer_value(json_object_get(sum, "decisions")),
            json_integer_value(json_object_get(sum, "transfers")),
            json_integer_value(json_object_get(sum, "blocked")));
    size_t i, k;
    const json_t *e, *f;
    json_array_foreach(json_object_get(doc, "decisions"), i, e)
    {
        const json_t *rc = json_object_get(e, "recipient");
        const json_t *dst = json_object_get(e, "destination");
        const json_t *comp = json_object_get(e, "completion");
        const char *cc = json_string_value(json_object_get(dst, "country"));
        fprintf(out, "\n%s  decision %s\n", json_string_value(json_object_get(e, "time")),
                json_string_value(json_object_get(e, "decision_id")));
        if (json_is_object(rc))
            fprintf(out, "  recipient    %s - %s (%s)",
                    json_string_value(json_object_get(rc, "id")),
                    json_string_value(json_object_get(rc, "legal_entity")),
                    json_string_value(json_object_get(rc, "relationship")));
        else
            fprintf(out, "  recipient    (none declared)");
        const char *purpose = json_string_value(json_object_get(e, "purpose"));
        fprintf(out, "%s%s\n", purpose ? "; purpose " : "", purpose ? purpose : "");
        fprintf(out, "  destination  %s (%s), host %s, route %s\n", cc ? cc : "unknown country",
                json_string_value(json_object_get(dst, "region")),
                json_string_value(json_object_get(e, "host")),
                json_string_value(json_object_get(e, "route")));
        fprintf(out, "  outcome      %s (%s)", json_string_value(json_object_get(e, "outcome")),
                json_string_value(json_object_get(e, "mode")));
        const char *would = json_string_value(json_object_get(e, "would"));
        const char *outcome = json_string_value(json_object_get(e, "outcome"));
        if (would != NULL && outcome != NULL && strcmp(would, outcome) != 0)
            fprintf(out, ", enforcement would %s", would);
        fprintf(out, "; mechanism %s\n", json_string_value(json_object_get(e, "mechanism")));
        if (json_is_object(comp)) {
            fprintf(out, "  result       %s", json_string_value(json_object_get(comp, "result")));
            if (json_is_integer(json_object_get(comp, "upstream_status")))
                fprintf(out, ", upstream status %" JSON_INTEGER_FORMAT,
                        json_integer_value(json_object_get(comp, "upstream_status")));
            fprintf(out, "\n");
        }
        if (json_is_true(json_object_get(e, "minor")))
            fprintf(out, "  the subject is a minor: all their data counts as sensitive\n");
        if (json_array_size(json_object_get(e, "findings")) == 0)
            fprintf(out, "  (the request named this subject; none of their personal information "
                         "was found)\n");
        json_array_foreach(json_object_get(e, "findings"), k, f)
        {
            const char *ev = json_string_value(json_object_get(f, "evidence"));
            const char *op = json_string_value(json_object_get(f, "operator"));
            const char *left = "did not leave as PI";
            if (json_is_true(json_object_get(f, "left_as_pi"))) {
                const char *mode = json_string_value(json_object_get(e, "mode"));
                const char *act = json_string_value(json_object_get(f, "action"));
                left = mode != NULL && strcmp(mode, "monitor") == 0
                           ? "left as PI (monitor mode: forwarded unchanged)"
                       : act != NULL && strcmp(act, "deidentify") == 0
                           ? "left as PI (pseudonymized)"
                           : "left as PI";
            }
            char cat[96], basis[256], act[96];
            snprintf(cat, sizeof cat, "%s%s", json_string_value(json_object_get(f, "category")),
                     json_is_true(json_object_get(f, "sensitive")) ? " (sensitive)" : "");
            snprintf(basis, sizeof basis, "%s%s%s", json_string_value(json_object_get(f, "basis")),
                     ev ? ": " : "", ev ? ev : "");
            snprintf(act, sizeof act, "%s%s%s%s", json_string_value(json_object_get(f, "action")),
                     op ? " (" : "", op ? op : "", op ? ")" : "");
            fprintf(out, "    %-26s %-24s basis %-34s %-20s %s\n", cat,
                    json_string_value(json_object_get(f, "path")), basis, act, left);
        }
    }
    static const char *const lists[] = {"recipients", "countries", "categories", "bases"};
    fprintf(out, "\nWhat left mainland China as personal information:\n");
    for (size_t j = 0; j < 4; j++) {
        const json_t *a = json_object_get(sum, lists[j]);
        fprintf(out, "  %-11s", lists[j]);
        if (json_array_size(a) == 0)
            fprintf(out, " (none)");
        json_array_foreach(a, k, f)
        {
            fprintf(out, "%s%s", k == 0 ? " " : ", ", json_string_value(f));
        }
        fprintf(out, "\n");
    }
}

/* ------------------------------------------------------------------------
 * The latest blocked decisions
 * ------------------------------------------------------------------------ */

typedef struct {
    int64_t from, to;
    int limit;
    const bg_report_policy_t *pol; /* clauses the records do not carry; may be NULL */
    json_t **ring; /* the LIMIT latest summaries; ring[(next - 1) % limit] is the newest */
    uint64_t next, total;
    int oom;
} blocked_ctx_t;

/* Copy the named string members of SRC (absent or not strings: null). */
static json_t *pick_strings(const json_t *src, const char *const *names, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(src, names[i]);
        json_object_set_new(o, names[i],
                            json_is_string(v) ? json_string(json_string_value(v)) : json_null());
    }
    return o;
}

/* ITEM's clause (clause_of) into O as "clause" and "clause_from" (both
 * null when unknown). */
static void set_clause(json_t *o, const bg_report_policy_t *pol, const json_t *rec,
                       const json_t *item)
{
    const char *from = NULL;
    const char *c = clause_of(pol, rec, item, &from);
    json_object_set_new(o, "clause", str_json(c));
    json_object_set_new(o, "clause_from", str_json(c != NULL ? from : NULL));
}

/* What a person needs to see of one blocked decision: never a value. */
static json_t *blocked_entry(const json_t *rec, const bg_report_policy_t *pol)
{
    static const char *const top[] = {"decision_id", "time", "route",   "method", "host",
                                      "path",        "mode", "outcome", "would",  "mechanism"};
    static const char *const rsn[] = {"code", "rule", "category", "path", "detail"};
    static const char *const fnd[] = {"path", "category", "basis", "action", "rule"};
    json_t *e = pick_strings(rec, top, sizeof top / sizeof top[0]);
    const json_t *rc = json_object_get(rec, "recipient");
    json_object_set_new(e, "recipient",
                        json_is_string(json_object_get(rc, "id"))
                            ? json_string(json_string_value(json_object_get(rc, "id")))
                            : json_null());
    const json_t *dst = json_object_get(rec, "destination");
    static const char *const dn[] = {"country", "region"};
    json_object_set_new(e, "destination", pick_strings(dst, dn, 2));
    const json_t *rp = json_object_get(rec, "policy");
    json_object_set_new(e, "policy_version",
                        json_is_string(json_object_get(rp, "version"))
                            ? json_string(json_string_value(json_object_get(rp, "version")))
                            : json_null());
    json_t *rs = json_array(), *fs = json_array();
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(rec, "reasons"), i, x)
    {
        json_t *r = pick_strings(x, rsn, sizeof rsn / sizeof rsn[0]);
        set_clause(r, pol, rec, x);
        json_array_append_new(rs, r);
    }
    json_array_foreach(json_object_get(rec, "findings"), i, x)
    {
        json_t *f = pick_strings(x, fnd, sizeof fnd / sizeof fnd[0]);
        json_object_set_new(f, "sensitive",
                            json_boolean(json_is_true(json_object_get(x, "sensitive"))));
        set_clause(f, pol, rec, x);
        json_array_append_new(fs, f);
    }
    json_object_set_new(e, "reasons", rs);
    json_object_set_new(e, "findings", fs);
    return e;
}

/* REC into the ring when it is a blocked decision of the window; COUNT: it
 * counts in the total too (1 when it did, else 0). */
static int blocked_keep(blocked_ctx_t *b, const json_t *rec, int count)
{
    const char *type = json_string_value(json_object_get(rec, "type"));
    const char *outcome = json_string_value(json_object_get(rec, "outcome"));
    if (type == NULL || strcmp(type, "decision") != 0 || outcome == NULL ||
        strcmp(outcome, "block") != 0)
        return 0;
    int64_t t = bg_report_record_time(rec);
    if ((b->from != BG_REPORT_NO_TIME || b->to != BG_REPORT_NO_TIME) && t == BG_REPORT_NO_TIME)
        return 0;
    if ((b->from != BG_REPORT_NO_TIME && t < b->from) || (b->to != BG_REPORT_NO_TIME && t >= b->to))
        return 0;
    json_t *e = blocked_entry(rec, b->pol);
    if (e == NULL) {
        b->oom = 1;
        return 0;
    }
    size_t slot = (size_t)(b->next % (uint64_t)b->limit);
    json_decref(b->ring[slot]);
    b->ring[slot] = e;
    b->next++;
    b->total += (uint64_t)count;
    return count;
}

static int blocked_record(void *arg, const json_t *rec)
{
    blocked_keep(arg, rec, 1);
    return 0;
}

static json_t *blocked_json(const blocked_ctx_t *b, int64_t from_ms, int64_t to_ms,
                            const bg_report_scan_stats_t *st);

json_t *bg_report_blocked(const char *const *paths, size_t n, int64_t from_ms, int64_t to_ms,
                          int limit, const bg_report_policy_t *pol, bg_report_scan_stats_t *st,
                          char *err, size_t errcap)
{
    blocked_ctx_t b;
    memset(&b, 0, sizeof b);
    b.pol = pol;
    b.from = from_ms;
    b.to = to_ms;
    b.limit = limit < 1 ? 1 : limit > BG_REPORT_BLOCKED_MAX ? BG_REPORT_BLOCKED_MAX : limit;
    b.ring = calloc((size_t)b.limit, sizeof *b.ring);
    json_t *doc = NULL;
    if (b.ring == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    bg_report_scan_stats_t dummy;
    if (st == NULL)
        st = &dummy;
    memset(st, 0, sizeof *st);
    if (bg_report_scan(paths, n, want_decision, blocked_record, &b, st, err, errcap) != 0)
        goto out;
    doc = blocked_json(&b, from_ms, to_ms, st);
out:
    for (int i = 0; i < b.limit; i++)
        json_decref(b.ring[i]);
    free(b.ring);
    return doc;
}

static json_t *blocked_json(const blocked_ctx_t *bp, int64_t from_ms, int64_t to_ms,
                            const bg_report_scan_stats_t *st)
{
    const blocked_ctx_t b = *bp;
    json_t *doc = json_object();
    json_object_set_new(doc, "format", json_string("bordergate-audit-blocked/1"));
    json_object_set_new(doc, "from", utc_or_null(from_ms));
    json_object_set_new(doc, "to", utc_or_null(to_ms));
    json_object_set_new(doc, "limit", json_integer(b.limit));
    json_t *in = json_object();
    json_object_set_new(in, "files", json_integer((json_int_t)st->files));
    json_object_set_new(in, "lines", json_integer((json_int_t)st->lines));
    json_object_set_new(in, "unparsable_lines", json_integer((json_int_t)st->unparsable));
    json_object_set_new(in, "incomplete_lines", json_integer((json_int_t)st->torn));
    json_object_set_new(doc, "input", in);
    json_object_set_new(doc, "blocked", json_integer((json_int_t)b.total));
    json_t *list = json_array();
    uint64_t kept = b.next < (uint64_t)b.limit ? b.next : (uint64_t)b.limit;
    for (uint64_t k = 0; k < kept; k++) { /* newest first */
        size_t slot = (size_t)((b.next - 1 - k) % (uint64_t)b.limit);
        json_array_append(list, b.ring[slot]);
    }
    json_object_set_new(doc, "decisions", list);
    return doc;
}

/* ------------------------------------------------------------------------
 * Several documents in one pass (the dashboard)
 * ------------------------------------------------------------------------ */

struct bg_report_many {
    bg_report_t **reports;
    bg_report_dims_t *dims;
    size_t n;
    blocked_ctx_t b;
    int with_blocked;
    int64_t from, to;
    bg_report_scanner_t *scan;
    bg_report_scan_stats_t input; /* fed from rollups: the counts bg_report_many_feed_done gave */
    int fed;
};

static int many_record(void *arg, const json_t *rec)
{
    bg_report_many_t *m = arg;
    for (size_t i = 0; i < m->n; i++)
        bg_report_add(m->reports[i], rec);
    if (m->with_blocked)
        blocked_record(&m->b, rec);
    return 0;
}

void bg_report_many_free(bg_report_many_t *m)
{
    if (m == NULL)
        return;
    bg_report_scanner_free(m->scan);
    for (size_t i = 0; m->reports != NULL && i < m->n; i++)
        bg_report_free(m->reports[i]);
    free(m->reports);
    free(m->dims);
    for (int i = 0; m->b.ring != NULL && i < m->b.limit; i++)
        json_decref(m->b.ring[i]);
    free(m->b.ring);
    free(m);
}

bg_report_many_t *bg_report_many_new(const char *const *paths, size_t n,
                                     const bg_report_dims_t *dims, size_t ndims, int64_t from_ms,
                                     int64_t to_ms, int blocked_limit,
                                     const bg_report_policy_t *pol)
{
    bg_report_many_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->from = from_ms;
    m->to = to_ms;
    m->reports = calloc(ndims + 1, sizeof *m->reports);
    m->dims = calloc(ndims + 1, sizeof *m->dims);
    if (m->reports == NULL || m->dims == NULL)
        goto fail;
    for (; m->n < ndims; m->n++) {
        m->dims[m->n] = dims[m->n];
        if ((m->reports[m->n] = bg_report_new_dims(&dims[m->n], from_ms, to_ms, pol)) == NULL)
            goto fail;
    }
    if (blocked_limit > 0) {
        m->with_blocked = 1;
        m->b.pol = pol;
        m->b.from = from_ms;
        m->b.to = to_ms;
        m->b.limit = blocked_limit > BG_REPORT_BLOCKED_MAX ? BG_REPORT_BLOCKED_MAX : blocked_limit;
        if ((m->b.ring = calloc((size_t)m->b.limit, sizeof *m->b.ring)) == NULL)
            goto fail;
    }
    if ((m->scan = bg_report_scanner_new(paths, n, want_decision, many_record, m)) == NULL)
        goto fail;
    return m;
fail:
    bg_report_many_free(m);
    return NULL;
}

int bg_report_many_step(bg_report_many_t *m, size_t max_lines, char *err, size_t errcap)
{
    return bg_report_scanner_step(m->scan, max_lines, err, errcap);
}

json_t *bg_report_many_json(const bg_report_many_t *m, char *err, size_t errcap)
{
    const bg_report_scan_stats_t *st = m->fed ? &m->input : bg_report_scanner_stats(m->scan);
    json_t *doc = json_object();
    json_t *reports = json_object();
    json_object_set_new(doc, "reports", reports);
    for (size_t i = 0; i < m->n; i++) {
        if (m->reports[i]->oom) {
            json_decref(doc);
            snprintf(err, errcap, "out of memory");
            return NULL;
        }
        char name[128];
        bg_report_dims_name(&m->dims[i], name, sizeof name);
        json_object_set_new(reports, name[0] ? name : "totals", bg_report_json(m->reports[i], st));
    }
    if (m->with_blocked)
        json_object_set_new(doc, "blocked", blocked_json(&m->b, m->from, m->to, st));
    return doc;
}

int bg_report_many_feed(bg_report_many_t *m, const json_t *rec, uint64_t weight, int blocked)
{
    int rc = 0;
    m->fed = 1;
    if (blocked)
        return m->with_blocked && blocked_keep(&m->b, rec, 0) < 0 ? -1 : 0;
    for (size_t i = 0; i < m->n; i++)
        rc |= bg_report_add_weighted(m->reports[i], rec, weight) < 0;
    /* The blocked total counts every blocked decision, kept whole or not. */
    const char *outcome = json_string_value(json_object_get(rec, "outcome"));
    if (m->with_blocked && outcome != NULL && strcmp(outcome, "block") == 0) {
        int64_t t = bg_report_record_time(rec);
        int open = m->from == BG_REPORT_NO_TIME && m->to == BG_REPORT_NO_TIME;
        if (open || (t != BG_REPORT_NO_TIME && (m->from == BG_REPORT_NO_TIME || t >= m->from) &&
                     (m->to == BG_REPORT_NO_TIME || t < m->to)))
            m->b.total += weight;
    }
    return rc ? -1 : 0;
}

void bg_report_many_feed_done(bg_report_many_t *m, const bg_report_scan_stats_t *input)
{
    m->fed = 1;
    if (input != NULL)
        m->input = *input;
}

json_t *bg_report_run_many(const char *const *paths, size_t n, const bg_report_dims_t *dims,
                           size_t ndims, int64_t from_ms, int64_t to_ms, int blocked_limit,
                           const bg_report_policy_t *pol, char *err, size_t errcap)
{
    bg_report_many_t *m =
        bg_report_many_new(paths, n, dims, ndims, from_ms, to_ms, blocked_limit, pol);
    json_t *doc = NULL;
    int rc;
    if (m == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    while ((rc = bg_report_many_step(m, SIZE_MAX, err, errcap)) > 0)
        ;
    if (rc == 0)
        doc = bg_report_many_json(m, err, errcap);
    bg_report_many_free(m);
    return doc;
}

static void blocked_print(const json_t *doc, FILE *out)
{
    size_t i, k;
    const json_t *e, *x;
    fprintf(out, "%" JSON_INTEGER_FORMAT " blocked decision(s) in the window; the latest %zu:\n",
            json_integer_value(json_object_get(doc, "blocked")),
            json_array_size(json_object_get(doc, "decisions")));
    json_array_foreach(json_object_get(doc, "decisions"), i, e)
    {
        const json_t *d = json_object_get(e, "destination");
        const char *rc = json_string_value(json_object_get(e, "recipient"));
        const char *cc = json_string_value(json_object_get(d, "country"));
        fprintf(out, "\n%s  %s\n  route %s, recipient %s, destination %s, %s %s%s\n",
                json_string_value(json_object_get(e, "time")),
                json_string_value(json_object_get(e, "decision_id")),
                json_string_value(json_object_get(e, "route")), rc ? rc : "(none)",
                cc ? cc : "unknown", json_string_value(json_object_get(e, "method")),
                json_string_value(json_object_get(e, "host")),
                json_string_value(json_object_get(e, "path")));
        json_array_foreach(json_object_get(e, "reasons"), k, x)
        {
            const char *rule = json_string_value(json_object_get(x, "rule"));
            const char *cat = json_string_value(json_object_get(x, "category"));
            const char *path = json_string_value(json_object_get(x, "path"));
            const char *clause = json_string_value(json_object_get(x, "clause"));
            const char *cfrom = json_string_value(json_object_get(x, "clause_from"));
            const char *detail = json_string_value(json_object_get(x, "detail"));
            fprintf(out, "  reason %s%s%s%s%s%s%s\n", json_string_value(json_object_get(x, "code")),
                    rule ? ", rule " : "", rule ? rule : "", cat ? ", category " : "",
                    cat ? cat : "", path ? " at " : "", path ? path : "");
            if (clause != NULL)
                fprintf(out, "    clause  %s%s\n", clause,
                        cfrom != NULL && strcmp(cfrom, "other_policy") == 0
                            ? " (from the policy given, not the one the decision was taken under)"
                            : "");
            if (detail != NULL)
                fprintf(out, "    detail  %s\n", detail);
        }
    }
}

/* ------------------------------------------------------------------------
 * The commands
 * ------------------------------------------------------------------------ */

static int report_record(void *arg, const json_t *rec)
{
    bg_report_add(arg, rec);
    return 0;
}

/*
 * bg_report_expand + bg_report_prune, each operand on its own: several
 * directories are several instances' logs, and one instance's files say
 * nothing about when another's were written. 0, or -1 with ERR filled.
 */
static int expand_pruned(char *const *ops, size_t n, const char *prefix, int64_t from,
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

static int rollup_record(void *arg, const json_t *rec, uint64_t weight, uint64_t order, int blocked)
{
    (void)order;
    if (!blocked && bg_report_add_weighted(arg, rec, weight) < 0)
        return 1;
    return 0;
}

/*
 * Count R from the rollups of the directories OPS[0..N) (audit/rollup.h),
 * brought up to date in memory (the daemon saves them). 1 when answered
 * (ST filled), 0 when the rollups cannot answer (an operand is a file, the
 * window's bounds are not whole hours, a rebuild holds the lock): read the
 * raw log. -1 with ERR filled.
 */
static int report_from_rollups(bg_report_t *r, char *const *ops, size_t n, const char *prefix,
                               bg_report_scan_stats_t *st, char *err, size_t errcap)
{
    bg_rollup_t **us = calloc(n + 1, sizeof *us);
    int rc = 0;
    if (us == NULL || !bg_rollup_window_ok(r->from, r->to))
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(ops[i], &sb) != 0 || !S_ISDIR(sb.st_mode) ||
            (us[i] = bg_rollup_open(ops[i], prefix, BG_ROLLUP_READ, err, errcap)) == NULL)
            goto out;
        int s;
        while ((s = bg_rollup_step(us[i], SIZE_MAX, err, errcap)) > 0)
            ;
        if (s < 0) {
            rc = -1;
            goto out;
        }
    }
    rc = bg_rollup_query(us, n, r->from, r->to, 0, rollup_record, r, st, err, errcap) == 0 ? 1 : -1;
out:
    for (size_t i = 0; us != NULL && i < n; i++)
        bg_rollup_free(us[i]);
    free(us);
    return rc;
}

static void report_usage(FILE *fp)
{
    fprintf(fp, "usage: bordergate audit report [--from DATE] [--to DATE]\n"
                "           [--by KEY[,KEY...]] [--config POLICY] [--json]\n"
                "           [--prefix P] [--raw] DIR|FILE...\n"
                "\n"
                "Counts the decision records of the window: transfers, outcomes, findings,\n"
                "sensitive findings, distinct data subjects (pseudonyms), grouped by KEY or by\n"
                "every combination of several KEYs (\"--by recipient,category,basis\"):\n"
                "recipient, country, category, basis, rule, outcome, route, reason, day, hour.\n"
                "Rows grouped by recipient show the transfer mechanisms; rows grouped by\n"
                "category, basis or rule show the rules applied and their clauses (from the\n"
                "record, else from --config POLICY).\n"
                "DATE: YYYY-MM-DD (China time; --to includes that day) or\n"
                "YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM] (China time without a zone); --to is exclusive.\n"
                "A directory stands for its PREFIX-*.jsonl files (prefix \"audit\").\n"
                "Directories are read through their rollups (DIR/PREFIX.rollup/, kept by the\n"
                "daemon) when the window's bounds are whole hours; several directories (one\n"
                "per instance) are merged. --raw reads every raw record instead.\n");
}

static void subject_usage(FILE *fp)
{
    fprintf(fp,
            "usage: bordergate audit subject (ID|-) [--id ID]... (--key FILE | --key-env NAME)\n"
            "           DIR|FILE...\n"
            "       bordergate audit subject --pseudonym HEX [--pseudonym HEX]... DIR|FILE...\n"
            "           [--from DATE] [--to DATE] [--prefix P] [--json]\n"
            "\n"
            "Every decision record naming one data subject under ANY of their identifiers\n"
            "(account id, phone, e-mail, ID number...): when, to which recipient and\n"
            "country, which categories, on which basis and evidence, what was done. Each\n"
            "identifier is pseudonymized with the policy's subject key (keys.subject)\n"
            "exactly as the proxy does, in its usual written forms (a phone with and\n"
            "without +86 and separators, an e-mail in lower case); none is printed.\n"
            "\"-\" reads the identifiers from standard input, one a line, which keeps\n"
            "them out of the shell history and process list.\n");
}

static int emit_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    if (text == NULL) {
        fprintf(stderr, "bordergate audit: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* Common options of report and subject. 0 consumed (advance *I), 1 not
 * ours, -1 usage error. */
static int window_opt(const char *cmd, int argc, char **argv, int *i, int64_t *from, int64_t *to)
{
    const char *a = argv[*i];
    int end = strcmp(a, "--to") == 0;
    if (strcmp(a, "--from") != 0 && !end)
        return 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "bordergate audit %s: %s needs a DATE\n", cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    if (bg_report_parse_date(v, end, end ? to : from) != 0) {
        fprintf(
            stderr,
            "bordergate audit %s: %s '%s' is not YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]\n",
            cmd, a, v);
        return -1;
    }
    return 0;
}

int bg_report_cli(int argc, char **argv, const bg_report_policy_t *pol)
{
    int64_t from = BG_REPORT_NO_TIME, to = BG_REPORT_NO_TIME;
    bg_report_dims_t dims = {.ndims = 0};
    const char *prefix = "audit";
    int json = 0, raw = 0, rc = 2;
    char **ops = calloc((size_t)argc + 1, sizeof *ops), **files = NULL;
    size_t nops = 0, nfiles = 0;
    char err[512];
    bg_report_t *r = NULL;
    if (ops == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int w = window_opt("report", argc, argv, &i, &from, &to);
        if (w < 0)
            goto out;
        if (w == 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            report_usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--by") == 0 && i + 1 < argc) {
            if (bg_report_dims_parse(argv[++i], &dims, err, sizeof err) != 0) {
                fprintf(stderr, "bordergate audit report: --by: %s\n", err);
                goto out;
            }
        } else if (strcmp(a, "--prefix") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--raw") == 0) {
            raw = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bordergate audit report: unknown option '%s'\n", a);
            report_usage(stderr);
            goto out;
        } else {
            ops[nops++] = argv[i];
        }
    }
    if (nops == 0) {
        fprintf(stderr, "bordergate audit report: give the audit directory or files\n");
        report_usage(stderr);
        goto out;
    }
    if (from != BG_REPORT_NO_TIME && to != BG_REPORT_NO_TIME && to <= from) {
        fprintf(stderr, "bordergate audit report: --to must be after --from\n");
        goto out;
    }
    rc = 1;
    r = bg_report_new_dims(&dims, from, to, pol);
    if (r == NULL) {
        fprintf(stderr, "bordergate audit report: out of memory\n");
        goto out;
    }
    bg_report_scan_stats_t st;
    memset(&st, 0, sizeof st);
    int ru = raw ? 0 : report_from_rollups(r, ops, nops, prefix, &st, err, sizeof err);
    if (ru < 0) {
        fprintf(stderr, "bordergate audit report: %s\n", err);
        goto out;
    }
    if (ru == 0 && r->serial > 0) { /* partly counted from rollups: start again */
        bg_report_free(r);
        if ((r = bg_report_new_dims(&dims, from, to, pol)) == NULL) {
            fprintf(stderr, "bordergate audit report: out of memory\n");
            goto out;
        }
    }
    if (ru == 0 && expand_pruned(ops, nops, prefix, from, &files, &nfiles, err, sizeof err) != 0) {
        fprintf(stderr, "bordergate audit report: %s\n", err);
        goto out;
    }
    if (ru == 0 && bg_report_scan((const char *const *)files, nfiles, want_decision, report_record,
                                  r, &st, err, sizeof err) != 0) {
        fprintf(stderr, "bordergate audit report: %s\n", err);
        goto out;
    }
    if (json)
        rc = emit_json(bg_report_json(r, &st));
    else {
        bg_report_print(r, &st, stdout);
        rc = 0;
    }
    if (r->oom)
        rc = 1;
out:
    bg_report_free(r);
    if (files != NULL)
        bg_audit_free_list(files, nfiles);
    free(ops);
    return rc;
}

#define SUBJECT_MAX_IDS 32
#define SUBJECT_MAX_FORMS 8

/*
 * Read the identifiers of "-": every non-empty line of standard input (CR
 * LF or LF), at most SUBJECT_MAX_IDS, into IDS (pointers into BUF).
 * Returns how many, or -1 when there are too many or a line is too long.
 */
static int read_ids(char *buf, size_t cap, const char **ids, size_t *nids)
{
    size_t used = 0;
    char line[BG_REPORT_ID_MAX + 2];
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t l = strlen(line);
        if (l == sizeof line - 1 && line[l - 1] != '\n')
            return -1;
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = '\0';
        if (l == 0)
            continue;
        if (*nids == SUBJECT_MAX_IDS || used + l + 1 > cap)
            return -1;
        memcpy(buf + used, line, l + 1);
        ids[(*nids)++] = buf + used;
        used += l + 1;
    }
    bg_util_wipe(line, sizeof line);
    return 0;
}

int bg_report_cli_subject(int argc, char **argv)
{
    int64_t from = BG_REPORT_NO_TIME, to = BG_REPORT_NO_TIME;
    const char *prefix = "audit", *keyfile = NULL, *keyenv = NULL;
    int json = 0, rc = 2, stdin_ids = 0;
    char **ops = calloc((size_t)argc + 1, sizeof *ops), **files = NULL;
    size_t nops = 0, nfiles = 0, nids = 0, npseudo = 0, nhex = 0;
    const char *ids[SUBJECT_MAX_IDS], *pseudo[SUBJECT_MAX_IDS];
    char err[512], kid[17] = "";
    static char idbuf[SUBJECT_MAX_IDS * (BG_REPORT_ID_MAX + 1)];
    static char forms[SUBJECT_MAX_FORMS][BG_REPORT_ID_MAX];
    static char hex[SUBJECT_MAX_IDS * SUBJECT_MAX_FORMS][65];
    const char *hexp[SUBJECT_MAX_IDS * SUBJECT_MAX_FORMS];
    unsigned char key[64];
    size_t keylen = 0;
    json_t *doc = NULL;
    if (ops == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int w = window_opt("subject", argc, argv, &i, &from, &to);
        if (w < 0)
            goto out;
        if (w == 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            subject_usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--key") == 0 && i + 1 < argc) {
            keyfile = argv[++i];
        } else if (strcmp(a, "--key-env") == 0 && i + 1 < argc) {
            keyenv = argv[++i];
        } else if (strcmp(a, "--id") == 0 && i + 1 < argc) {
            if (nids == SUBJECT_MAX_IDS) {
                fprintf(stderr, "bordergate audit subject: at most %d identifiers\n",
                        SUBJECT_MAX_IDS);
                goto out;
            }
            ids[nids++] = argv[++i];
        } else if (strcmp(a, "--pseudonym") == 0 && i + 1 < argc) {
            if (npseudo == SUBJECT_MAX_IDS) {
                fprintf(stderr, "bordergate audit subject: at most %d pseudonyms\n",
                        SUBJECT_MAX_IDS);
                goto out;
            }
            pseudo[npseudo++] = argv[++i];
        } else if (strcmp(a, "--prefix") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bordergate audit subject: unknown option '%s'\n", a);
            subject_usage(stderr);
            goto out;
        } else {
            ops[nops++] = argv[i];
        }
    }
    /* Without --pseudonym the first operand is an identifier (or "-");
     * --id adds more. */
    size_t first_path = npseudo == 0 ? 1 : 0;
    if (nops <= first_path) {
        fprintf(stderr, "bordergate audit subject: give %sthe audit directory or files\n",
                first_path ? "the subject's identifier (or - for standard input) and " : "");
        subject_usage(stderr);
        goto out;
    }
    if (first_path) {
        if (strcmp(ops[0], "-") == 0) {
            stdin_ids = 1;
        } else if (nids == SUBJECT_MAX_IDS) {
            fprintf(stderr, "bordergate audit subject: at most %d identifiers\n", SUBJECT_MAX_IDS);
            goto out;
        } else { /* the operand first: it names the document's "pseudonym" */
            memmove(ids + 1, ids, nids * sizeof *ids);
            ids[0] = ops[0];
            nids++;
        }
    }
    if (npseudo > 0 && (nids > 0 || stdin_ids || keyfile != NULL || keyenv != NULL)) {
        fprintf(stderr, "bordergate audit subject: --pseudonym takes no identifier and no key\n");
        goto out;
    }
    if (npseudo == 0 && (keyfile == NULL) == (keyenv == NULL)) {
        fprintf(stderr,
                "bordergate audit subject: give the subject key: --key FILE or --key-env NAME "
                "(the policy's keys.subject)\n");
        goto out;
    }
    rc = 1;
    for (size_t i = 0; i < npseudo; i++) {
        if (hex64(pseudo[i], hex[nhex]) != 0) {
            fprintf(stderr, "bordergate audit subject: --pseudonym must be 64 hex digits\n");
            rc = 2;
            goto out;
        }
        hexp[nhex] = hex[nhex];
        nhex++;
    }
    if (npseudo == 0) {
        if (stdin_ids && read_ids(idbuf, sizeof idbuf, ids, &nids) != 0) {
            fprintf(stderr,
                    "bordergate audit subject: at most %d identifiers of at most %d bytes, one a "
                    "line\n",
                    SUBJECT_MAX_IDS, BG_REPORT_ID_MAX - 1);
            goto out;
        }
        if (nids == 0) {
            fprintf(stderr, "bordergate audit subject: the subject id is empty\n");
            goto out;
        }
        if (bg_key_load(keyfile, keyenv, key, sizeof key, &keylen, kid, err, sizeof err) != 0) {
            fprintf(stderr, "bordergate audit subject: %s\n", err);
            goto out;
        }
        for (size_t i = 0; i < nids; i++) {
            size_t nf = bg_report_identifier_forms(ids[i], forms, SUBJECT_MAX_FORMS);
            if (ids[i][0] == '\0' || nf == 0) {
                fprintf(stderr,
                        "bordergate audit subject: an identifier is empty or longer than "
                        "%d bytes\n",
                        BG_REPORT_ID_MAX - 1);
                goto out;
            }
            for (size_t k = 0; k < nf; k++) {
                if (bg_report_pseudonym(key, keylen, forms[k], strlen(forms[k]), hex[nhex]) != 0) {
                    fprintf(stderr, "bordergate audit subject: cannot compute the pseudonym\n");
                    goto out;
                }
                hexp[nhex] = hex[nhex];
                nhex++;
            }
        }
    }
    if (bg_report_expand(ops + first_path, nops - first_path, prefix, &files, &nfiles, err,
                         sizeof err) != 0) {
        fprintf(stderr, "bordergate audit subject: %s\n", err);
        goto out;
    }
    bg_report_scan_stats_t st;
    memset(&st, 0, sizeof st);
    doc = bg_report_subject_many((const char *const *)files, nfiles, hexp, nhex, from, to, &st, err,
                                 sizeof err);
    if (doc == NULL) {
        fprintf(stderr, "bordergate audit subject: %s\n", err);
        goto out;
    }
    json_t *subj = json_object_get(doc, "subject");
    json_object_set_new(subj, "key_id", kid[0] ? json_string(kid) : json_null());
    json_object_set_new(subj, "identifiers", json_integer((json_int_t)(npseudo ? npseudo : nids)));
    json_t *in = json_object();
    json_object_set_new(in, "files", json_integer((json_int_t)st.files));
    json_object_set_new(in, "lines", json_integer((json_int_t)st.lines));
    json_object_set_new(in, "unparsable_lines", json_integer((json_int_t)st.unparsable));
    json_object_set_new(in, "incomplete_lines", json_integer((json_int_t)st.torn));
    json_object_set_new(doc, "input", in);
    if (json) {
        rc = emit_json(doc);
        doc = NULL;
    } else {
        print_subject(doc, stdout);
        if (st.unparsable > 0 || st.torn > 0)
            printf("note: %" PRIu64 " unparsable and %" PRIu64
                   " incomplete line(s) were skipped; run "
                   "`bordergate audit verify`.\n",
                   st.unparsable, st.torn);
        rc = 0;
    }
out:
    bg_util_wipe(key, sizeof key);
    bg_util_wipe(idbuf, sizeof idbuf);
    bg_util_wipe(forms, sizeof forms);
    json_decref(doc);
    if (files != NULL)
        bg_audit_free_list(files, nfiles);
    free(ops);
    return rc;
}

static void blocked_usage(FILE *fp)
{
    fprintf(fp,
            "usage: bordergate audit blocked [--limit N] [--from DATE] [--to DATE] [--json]\n"
            "           [--config POLICY] [--prefix P] DIR|FILE...\n"
            "\n"
            "The latest N (default 20, at most %d) blocked decisions of the window, newest\n"
            "first: decision id, time, route, recipient, destination and the reasons\n"
            "(codes, rules, clauses, categories, paths, details). Never a value. A clause\n"
            "the record does not carry is read from --config POLICY.\n",
            BG_REPORT_BLOCKED_MAX);
}

int bg_report_cli_blocked(int argc, char **argv, const bg_report_policy_t *pol)
{
    int64_t from = BG_REPORT_NO_TIME, to = BG_REPORT_NO_TIME;
    const char *prefix = "audit";
    int json = 0, rc = 2, limit = 20;
    char **ops = calloc((size_t)argc + 1, sizeof *ops), **files = NULL;
    size_t nops = 0, nfiles = 0;
    char err[512];
    json_t *doc = NULL;
    if (ops == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int w = window_opt("blocked", argc, argv, &i, &from, &to);
        if (w < 0)
            goto out;
        if (w == 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            blocked_usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--limit") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < 1 || v > BG_REPORT_BLOCKED_MAX) {
                fprintf(stderr, "bordergate audit blocked: --limit must be 1..%d\n",
                        BG_REPORT_BLOCKED_MAX);
                goto out;
            }
            limit = (int)v;
        } else if (strcmp(a, "--prefix") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bordergate audit blocked: unknown option '%s'\n", a);
            blocked_usage(stderr);
            goto out;
        } else {
            ops[nops++] = argv[i];
        }
    }
    if (nops == 0) {
        fprintf(stderr, "bordergate audit blocked: give the audit directory or files\n");
        blocked_usage(stderr);
        goto out;
    }
    if (from != BG_REPORT_NO_TIME && to != BG_REPORT_NO_TIME && to <= from) {
        fprintf(stderr, "bordergate audit blocked: --to must be after --from\n");
        goto out;
    }
    rc = 1;
    if (bg_report_expand(ops, nops, prefix, &files, &nfiles, err, sizeof err) != 0) {
        fprintf(stderr, "bordergate audit blocked: %s\n", err);
        goto out;
    }
    bg_report_prune(files, &nfiles, prefix, from);
    doc = bg_report_blocked((const char *const *)files, nfiles, from, to, limit, pol, NULL, err,
                            sizeof err);
    if (doc == NULL) {
        fprintf(stderr, "bordergate audit blocked: %s\n", err);
        goto out;
    }
    if (json) {
        rc = emit_json(doc);
        doc = NULL;
    } else {
        blocked_print(doc, stdout);
        rc = 0;
    }
out:
    json_decref(doc);
    if (files != NULL)
        bg_audit_free_list(files, nfiles);
    free(ops);
    return rc;
}
