/*
 * Data-subject look-ups (audit/report.h "Subject look-up"): every decision
 * naming one person under any of their pseudonyms, and the written forms of
 * an identifier the proxy may have pseudonymized.
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
#include "common/hex.h"
#include "common/pseudonym.h"
#include "common/util.h"
#include "policy/policy.h"

/* ------------------------------------------------------------------------
 * Subject look-up
 * ------------------------------------------------------------------------ */

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
        if (is_theirs(x, json_string_value(json_object_get(s, "pseudonym"))))
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
    /* A request nothing waited for carries its completion inside its
     * decision record (docs/audit.md); the others get it from the
     * completion record that follows (subject_record). */
    const json_t *in = json_object_get(rec, "completion");
    if (json_is_object(in)) {
        json_t *c = json_object();
        copy_member(c, in, "result");
        copy_member(c, in, "upstream_status");
        json_object_set_new(e, "completion", c);
    } else {
        json_object_set_new(e, "completion", json_null());
    }
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
        if (json_string_value(json_object_get(e, "outcome")) != NULL &&
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

json_t *bg_report_subject(const char *const *paths, size_t n, const char *const *pseudonyms,
                          size_t np, int64_t from_ms, int64_t to_ms, bg_report_scan_stats_t *st,
                          char *err, size_t errcap)
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
        if (bg_hex_lower(pseudonyms[i], 32, h) != 0) {
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
    json_object_set_new(doc, "from", bg_report_utc_or_null(from_ms));
    json_object_set_new(doc, "to", bg_report_utc_or_null(to_ms));
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
