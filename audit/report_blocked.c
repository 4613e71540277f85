/*
 * The latest blocked decisions (`audit blocked`), and several report
 * documents in one pass over the log or the rollups (the dashboard).
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
    const char *c = bg_report_clause_of(pol, rec, item, &from);
    json_object_set_new(o, "clause", bg_report_str_json(c));
    json_object_set_new(o, "clause_from", bg_report_str_json(c != NULL ? from : NULL));
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
    b.ring = calloc((size_t)b.limit, sizeof(json_t *));
    json_t *doc = NULL;
    if (b.ring == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    bg_report_scan_stats_t dummy;
    if (st == NULL)
        st = &dummy;
    memset(st, 0, sizeof *st);
    if (bg_report_scan(paths, n, bg_report_want_decision, blocked_record, &b, st, err, errcap) != 0)
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
    json_object_set_new(doc, "from", bg_report_utc_or_null(from_ms));
    json_object_set_new(doc, "to", bg_report_utc_or_null(to_ms));
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
    m->reports = calloc(ndims + 1, sizeof(bg_report_t *));
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
        if ((m->b.ring = calloc((size_t)m->b.limit, sizeof(json_t *))) == NULL)
            goto fail;
    }
    if ((m->scan = bg_report_scanner_new(paths, n, bg_report_want_decision, many_record, m)) ==
        NULL)
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

int bg_report_many_feed_people(bg_report_many_t *m, const json_t *rec, const bg_report_person_t *ps,
                               size_t n)
{
    int rc = 0;
    m->fed = 1;
    for (size_t i = 0; i < m->n; i++)
        rc |= bg_report_add_people(m->reports[i], rec, ps, n) < 0;
    return rc ? -1 : 0;
}

void bg_report_many_feed_done(bg_report_many_t *m, const bg_report_scan_stats_t *input)
{
    m->fed = 1;
    if (input != NULL)
        m->input = *input;
}
