/*
 * Reports over the audit log (audit/report.h, docs/audit.md "Reports"): the
 * counting of decision records by dimensions, the report's JSON, and the
 * `audit report` count through the rollups or the raw log. Reading files is
 * report_read.c, the table for people report_text.c, the subject look-up
 * report_subject.c, the latest blocked decisions and the dashboard's
 * one-pass documents report_blocked.c.
 *
 * Everything streams: what grows with the log is only the sets of distinct
 * subjects (16 bytes per pseudonym and group).
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

#include <openssl/sha.h>

/* ------------------------------------------------------------------------
 * Sets of distinct subjects
 * ------------------------------------------------------------------------ */

/* The 16-byte key of a pseudonym: its first 16 bytes when it is hex (it
 * always is in records the writer wrote), else a SHA-256 of the text. */
static void subject_key(const char *s, uint8_t out[16])
{
    size_t len = strlen(s);
    if (len >= 32 && bg_hex_decode(s, 32, out, 16, 0) == 16)
        return;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, len, d);
    memcpy(out, d, 16);
}

/* A 16-byte key as two words (a pair of loads, not a memcmp call: sets
 * take millions of keys on a long window). */
typedef struct {
    uint64_t a, b;
} key2_t;

static key2_t key2(const uint8_t k[16])
{
    key2_t x;
    memcpy(&x.a, k, 8);
    memcpy(&x.b, k + 8, 8);
    return x;
}

/* Put K (not zero) into the table KEYS of CAP slots (a power of two) that
 * has room. 1 added, 0 already there. */
static int idset_put(uint8_t (*keys)[16], size_t cap, key2_t k)
{
    for (size_t j = (size_t)k.a & (cap - 1);; j = (j + 1) & (cap - 1)) {
        key2_t x = key2(keys[j]);
        if (x.a == k.a && x.b == k.b)
            return 0;
        if ((x.a | x.b) == 0) {
            memcpy(keys[j], &k.a, 8);
            memcpy(keys[j] + 8, &k.b, 8);
            return 1;
        }
    }
}

static int idset_add(idset_t *s, const uint8_t k[16])
{
    key2_t x = key2(k);
    if ((x.a | x.b) == 0) {
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
            key2_t y = key2(s->keys[i]);
            if ((y.a | y.b) != 0)
                idset_put(nk, nc, y);
        }
        free(s->keys);
        s->keys = nk;
        s->cap = nc;
    }
    s->n += (size_t)idset_put(s->keys, s->cap, x);
    return 0;
}

/* ------------------------------------------------------------------------
 * The report
 * ------------------------------------------------------------------------ */

static const char *const OUTCOMES[] = {"allow", "deidentify", "block"};
static const char *const ACTIONS[] = {"allow", "deidentify", "remove", "remove_record", "block"};
static const char *const BY_NAMES[] = {NULL,    "recipient", "country", "category",
                                       "basis", "outcome",   "route",   "reason",
                                       "day",   "hour",      "rule"};

/* "recipient", ... -> BY; -1 when unknown. */
static int by_parse(const char *s, bg_report_by_t *by)
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

int bg_report_finding_dim(bg_report_by_t b)
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
        if (by_parse(name, &b) != 0) {
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
        fd |= bg_report_finding_dim(b);
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
    size_t len = 0;
    *clauses = NULL;
    char *text = bg_util_read_file(path, &len);
    if (text == NULL) {
        snprintf(err, errcap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, len, d);
    bg_hex_encode(d, SHA256_DIGEST_LENGTH, sha256);
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
        r->finding_dims |= bg_report_finding_dim(r->dims.dims[i]);
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
const char *bg_report_clause_of(const bg_report_policy_t *pol, const json_t *rec,
                                const json_t *item, const char **from)
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
    int left = bg_counters_json_finding_part(r->part, f);
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
            (cl = bg_report_clause_of(&r->pol, rec, f, &from)) != NULL) {
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
        bg_report_china_time(t, key, cap);
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
                if (bg_report_finding_dim(r->dims.dims[k]))
                    keys[k] = NULL;
            group_t *g = group_of_keys(r, keys);
            return g == NULL ? -1 : count_all(r, &g->c, rec);
        }
        json_array_foreach(fs, i, x)
        {
            for (k = 0; k < nd; k++)
                if (bg_report_finding_dim(r->dims.dims[k]))
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

/* Non-zero when REC is a decision inside R's window; *T its time. */
static int counted(const bg_report_t *r, const json_t *rec, int64_t *t)
{
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (type == NULL || strcmp(type, "decision") != 0)
        return 0;
    *t = bg_report_record_time(rec);
    if ((r->from != BG_REPORT_NO_TIME || r->to != BG_REPORT_NO_TIME) && *t == BG_REPORT_NO_TIME)
        return 0;
    return !((r->from != BG_REPORT_NO_TIME && *t < r->from) ||
             (r->to != BG_REPORT_NO_TIME && *t >= r->to));
}

int bg_report_add_weighted(bg_report_t *r, const json_t *rec, uint64_t weight)
{
    int64_t t;
    if (!counted(r, rec, &t))
        return 0;
    r->serial++;
    r->part = bg_counters_json_decision_part(rec);
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

/* ------------------------------------------------------------------------
 * People of rollup entries (bg_report_add_people): what count_finding and
 * count_subjects add for the copies of findings naming each person, done
 * on the 16-byte keys directly.
 * ------------------------------------------------------------------------ */

/* Per finding of the entry: FIND_SKIP (not an object: no copy is made),
 * else whether a finding of that kind counts as PI that left. */
#define FIND_SKIP 2

typedef struct {
    const bg_report_person_t *ps;
    size_t n;
    const uint8_t *left; /* per finding: 0, 1 or FIND_SKIP */
    size_t nf;
    int listed_ok; /* the entry has a subjects list */
} people_t;

/* The people of P into C: those named by finding ONLY (SIZE_MAX: by any,
 * and those its subjects list names, as count_all does). */
static int people_into(counts_t *c, const people_t *p, size_t only)
{
    for (size_t i = 0; i < p->n; i++) {
        const bg_report_person_t *x = &p->ps[i];
        for (size_t k = 0; k < x->nfindings; k++) {
            uint32_t f = x->findings[k];
            if (f >= p->nf || p->left[f] == FIND_SKIP || (only != SIZE_MAX && f != only))
                continue;
            if (idset_add(&c->subjects, x->key) != 0 ||
                (p->left[f] && idset_add(&c->subjects_left, x->key) != 0))
                return -1;
        }
        if (only == SIZE_MAX && p->listed_ok && x->listed && idset_add(&c->subjects, x->key) != 0)
            return -1;
    }
    return 0;
}

/* The groups of the entry's findings (per-finding dimensions), as
 * add_to_groups reaches them with a copy of each finding. */
static int people_by_finding(bg_report_t *r, const json_t *rec, const char **keys,
                             const people_t *p)
{
    size_t nd = r->dims.ndims;
    const json_t *fs = json_object_get(rec, "findings");
    if (p->nf == 0) {
        for (size_t k = 0; k < nd; k++)
            if (bg_report_finding_dim(r->dims.dims[k]))
                keys[k] = NULL;
        group_t *g = group_of_keys(r, keys);
        return g == NULL ? -1 : people_into(&g->c, p, SIZE_MAX);
    }
    for (size_t i = 0; i < p->nf; i++) {
        const json_t *x = json_array_get(fs, i);
        if (p->left[i] == FIND_SKIP)
            continue;
        for (size_t k = 0; k < nd; k++)
            if (bg_report_finding_dim(r->dims.dims[k]))
                keys[k] = str_or_null(json_object_get(x, finding_member(r->dims.dims[k])));
        group_t *g = group_of_keys(r, keys);
        if (g == NULL || people_into(&g->c, p, i) != 0)
            return -1;
    }
    return 0;
}

/* The groups add_to_groups would count REC's people in. */
static int people_to_groups(bg_report_t *r, const json_t *rec, const char **keys, const people_t *p)
{
    if (r->finding_dims)
        return people_by_finding(r, rec, keys, p);
    if (r->reason_dim) {
        const json_t *rs = json_object_get(rec, "reasons"), *x;
        size_t pos = 0, i;
        while (r->dims.dims[pos] != BG_REPORT_BY_REASON)
            pos++;
        if (json_array_size(rs) == 0) {
            keys[pos] = NULL;
            group_t *g = group_of_keys(r, keys);
            return g == NULL ? -1 : people_into(&g->c, p, SIZE_MAX);
        }
        json_array_foreach(rs, i, x)
        {
            keys[pos] = str_or_null(json_object_get(x, "code"));
            group_t *g = group_of_keys(r, keys);
            if (g == NULL || people_into(&g->c, p, SIZE_MAX) != 0)
                return -1;
        }
        return 0;
    }
    group_t *g = group_of_keys(r, keys);
    return g == NULL ? -1 : people_into(&g->c, p, SIZE_MAX);
}

int bg_report_add_people(bg_report_t *r, const json_t *rec, const bg_report_person_t *ps, size_t n)
{
    int64_t t;
    if (n == 0 || !counted(r, rec, &t))
        return 0;
    const json_t *fs = json_object_get(rec, "findings");
    uint8_t small[64], *left = small;
    people_t p = {ps, n, NULL, json_array_size(fs),
                  json_is_array(json_object_get(rec, "subjects"))};
    int part = bg_counters_json_decision_part(rec);
    if (p.nf > sizeof small && (left = malloc(p.nf)) == NULL) {
        r->oom = 1;
        return -1;
    }
    for (size_t i = 0; i < p.nf; i++) {
        const json_t *f = json_array_get(fs, i);
        left[i] = !json_is_object(f) ? FIND_SKIP : bg_counters_json_finding_part(part, f) != 0;
    }
    p.left = left;
    r->serial++;
    r->part = part;
    int rc = people_into(&r->total, &p, SIZE_MAX);
    if (rc == 0 && r->dims.ndims > 0) {
        const char *keys[BG_REPORT_MAX_DIMS] = {NULL};
        char tkey[BG_REPORT_MAX_DIMS][40];
        for (size_t k = 0; k < r->dims.ndims; k++)
            keys[k] = decision_value(r->dims.dims[k], rec, t, tkey[k], sizeof tkey[k]);
        rc = people_to_groups(r, rec, keys, &p);
    }
    if (left != small)
        free(left);
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
json_t *bg_report_mech_json(const json_t *m)
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
json_t *bg_report_rules_json(const json_t *m)
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
        json_object_set_new(o, "mechanisms", bg_report_mech_json(c->mech));
    if (c->rules != NULL)
        json_object_set_new(o, "rules", bg_report_rules_json(c->rules));
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

void bg_report_sort_groups(const bg_report_t *r)
{
    int by_keys = r->dims.ndims > 1 || r->by == BG_REPORT_BY_DAY || r->by == BG_REPORT_BY_HOUR;
    if (r->ngroups > 1)
        qsort(r->groups, r->ngroups, sizeof *r->groups, by_keys ? group_order_keys : group_order);
}

json_t *bg_report_str_json(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

json_t *bg_report_json(const bg_report_t *r, const bg_report_scan_stats_t *scan)
{
    json_t *o = json_object();
    size_t nd = r->dims.ndims;
    json_object_set_new(o, "format", json_string("bordergate-audit-report/1"));
    json_object_set_new(o, "from", bg_report_utc_or_null(r->from));
    json_object_set_new(o, "to", bg_report_utc_or_null(r->to));
    if (nd > 1) {
        json_t *by = json_array();
        for (size_t k = 0; k < nd; k++)
            json_array_append_new(by, json_string(bg_report_by_name(r->dims.dims[k])));
        json_object_set_new(o, "by", by);
    } else {
        json_object_set_new(o, "by", bg_report_str_json(bg_report_by_name(r->by)));
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
        bg_report_sort_groups(r);
        json_t *gs = json_array();
        for (size_t i = 0; i < r->ngroups; i++) {
            json_t *g = json_object();
            if (nd > 1) {
                json_t *key = json_array();
                for (size_t k = 0; k < nd; k++)
                    json_array_append_new(key, bg_report_str_json(r->groups[i].key[k]));
                json_object_set_new(g, "key", key);
            } else {
                json_object_set_new(g, "key", bg_report_str_json(r->groups[i].key[0]));
            }
            counts_json(g, &r->groups[i].c);
            json_array_append_new(gs, g);
        }
        json_object_set_new(o, "groups", gs);
    }
    return o;
}

static int report_record(void *arg, const json_t *rec)
{
    bg_report_add(arg, rec);
    return 0;
}

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
    if (bg_report_scan(paths, n, bg_report_want_decision, report_record, r, &st, err, errcap) != 0)
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

int bg_report_oom(const bg_report_t *r)
{
    return r->oom;
}

static int rollup_record(void *arg, const json_t *rec, uint64_t weight, uint64_t order, int blocked)
{
    (void)order;
    if (!blocked && bg_report_add_weighted(arg, rec, weight) < 0)
        return 1;
    return 0;
}

int bg_report_dims_hourly(const bg_report_dims_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d[i].ndims; k++)
            if (d[i].dims[k] == BG_REPORT_BY_HOUR)
                return 1;
    return 0;
}

static int rollup_people(void *arg, const json_t *rec, const bg_report_person_t *ps, size_t n)
{
    return bg_report_add_people(arg, rec, ps, n) < 0;
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
    bg_rollup_t **us = calloc(n + 1, sizeof(bg_rollup_t *));
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
    bg_rollup_query_t *x =
        bg_rollup_query_new(us, n, r->from, r->to, 0, rollup_record, r, err, errcap);
    int s = -1;
    if (x != NULL) {
        bg_rollup_query_set_people(x, rollup_people);
        if (!bg_report_dims_hourly(&r->dims, 1))
            bg_rollup_query_set_daily(x);
        while ((s = bg_rollup_query_step(x, err, errcap)) > 0)
            ;
        if (s == 0)
            *st = *bg_rollup_query_stats(x);
        bg_rollup_query_free(x);
    }
    rc = s == 0 ? 1 : -1;
out:
    for (size_t i = 0; us != NULL && i < n; i++)
        bg_rollup_free(us[i]);
    free(us);
    return rc;
}

bg_report_t *bg_report_collect(const bg_report_dims_t *d, int64_t from_ms, int64_t to_ms,
                               const bg_report_policy_t *pol, char *const *operands, size_t n,
                               const char *prefix, int raw, bg_report_scan_stats_t *st, char *err,
                               size_t errcap)
{
    char **files = NULL;
    size_t nfiles = 0;
    memset(st, 0, sizeof *st);
    bg_report_t *r = bg_report_new_dims(d, from_ms, to_ms, pol);
    if (r == NULL)
        goto oom;
    int ru = raw ? 0 : report_from_rollups(r, operands, n, prefix, st, err, errcap);
    if (ru < 0)
        goto fail;
    if (ru > 0)
        return r;
    if (r->serial > 0) { /* partly counted from rollups: start again */
        bg_report_free(r);
        if ((r = bg_report_new_dims(d, from_ms, to_ms, pol)) == NULL)
            goto oom;
    }
    if (bg_report_expand_pruned(operands, n, prefix, from_ms, &files, &nfiles, err, errcap) != 0 ||
        bg_report_scan((const char *const *)files, nfiles, bg_report_want_decision, report_record,
                       r, st, err, errcap) != 0)
        goto fail;
    bg_audit_free_list(files, nfiles);
    return r;
oom:
    snprintf(err, errcap, "out of memory");
fail:
    if (files != NULL)
        bg_audit_free_list(files, nfiles);
    bg_report_free(r);
    return NULL;
}
