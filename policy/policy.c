/*
 * Loading and checking the residency policy. Everything a compliance
 * reviewer could get wrong is an error with its position and JSON path:
 * unknown keys, categories, recipients, purposes, bases and operators;
 * routes whose purpose their recipient does not declare; rules that can
 * never apply because an earlier rule takes all their cases; keys a
 * configured operator needs but cannot load.
 */
#include "policy/policy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "common/keys.h"
#include "common/util.h"
#include "config/config.h"
#include "policy/policy_int.h"
#include "inspect/taxonomy.h"
#include "common/chinatime.h"
#include "common/hex.h"

static const char *const basis_names[] = {"none",          "legal_obligation", "hr_management",
                                          "emergency",     "contract",         "consent",
                                          "subject_abroad"};
static const char *const rel_names[] = {"affiliate", "entrusted_processor", "third_party"};
static const char *const mech_names[] = {"none", "standard_contract", "certification",
                                         "security_assessment"};
static const char *const exempt_names[] = {"none", "contract_necessity", "hr_management",
                                           "emergency", "below_volume_threshold"};

const char *bg_basis_name(bg_basis_t b)
{
    return (unsigned)b < BG_BASIS__COUNT ? basis_names[b] : "?";
}
const char *bg_relationship_name(bg_relationship_t r)
{
    return (unsigned)r < 3 ? rel_names[r] : "?";
}
const char *bg_mechanism_name(bg_mechanism_t m)
{
    return (unsigned)m < 4 ? mech_names[m] : "?";
}
const char *bg_exemption_name(bg_exemption_t e)
{
    return (unsigned)e < 5 ? exempt_names[e] : "?";
}

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s != NULL && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

static char *join_names(const char *const *names, int n, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o + 2 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", names[i]);
    return buf;
}

/*
 * "2027-12-31" (valid through the end of that day in China, UTC+8: CAC
 * filings and certificates carry Chinese dates) or "2027-12-31T12:00:00Z",
 * into ms since the epoch; -1 when malformed or not a real date.
 */
static int64_t parse_date(const char *s)
{
    int y, mo, d, h = 0, mi = 0, se = 0;
    size_t n = strlen(s);
    int bare = n == 10;
    if (!(bare || (n == 20 && s[10] == 'T' && s[19] == 'Z')))
        return -1;
    for (size_t i = 0; i < n; i++) {
        int digit = s[i] >= '0' && s[i] <= '9';
        int want_digit = !(i == 4 || i == 7 || i == 10 || i == 13 || i == 16 || i == 19);
        if (digit != want_digit)
            return -1;
    }
    if (s[4] != '-' || s[7] != '-' || (!bare && (s[13] != ':' || s[16] != ':')))
        return -1;
    if (sscanf(s, "%4d-%2d-%2d", &y, &mo, &d) != 3)
        return -1;
    if (!bare && sscanf(s + 11, "%2d:%2d:%2d", &h, &mi, &se) != 3)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = bare ? 23 : h;
    tm.tm_min = bare ? 59 : mi;
    tm.tm_sec = bare ? 59 : se;
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_year != y - 1900 || back.tm_mon != mo - 1 || back.tm_mday != d || h > 23 ||
        mi > 59 || se > 59)
        return -1; /* 2027-02-30 and the like */
    if (bare)
        t -= BG_CHINA_OFFSET_S; /* 23:59:59 China Standard Time */
    return (int64_t)t * 1000;
}

/* A list of strings at OBJ.KEY (or "*" alone meaning any: *ANY set). */
static char **string_list(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *key,
                          int *count, int *any)
{
    char p[512];
    json_t *v = json_object_get(obj, key);
    *count = 0;
    if (any != NULL)
        *any = 0;
    if (v == NULL)
        return NULL;
    bg_cfg_path_key(p, sizeof p, path, key);
    if (json_is_string(v))
        v = json_pack("[O]", v);
    else
        json_incref(v);
    if (!json_is_array(v)) {
        bg_cfg_err(ctx, p, 0, "must be a list of strings");
        json_decref(v);
        return NULL;
    }
    char **out = bg_cfg_alloc(json_array_size(v) + 1, sizeof *out);
    if (out == NULL) {
        json_decref(v);
        return NULL; /* counted: the load fails */
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        char ep[512];
        bg_cfg_path_index(ep, sizeof ep, p, i);
        if (!json_is_string(e) || json_string_length(e) == 0) {
            bg_cfg_err(ctx, ep, 0, "must be a non-empty string");
            continue;
        }
        if (any != NULL && strcmp(json_string_value(e), "*") == 0)
            *any = 1;
        char *d = bg_cfg_dup(json_string_value(e));
        if (d != NULL) /* else counted: the load fails */
            out[(*count)++] = d;
    }
    json_decref(v);
    return out;
}

static void free_list(char **l, int n)
{
    for (int i = 0; l != NULL && i < n; i++)
        free(l[i]);
    free(l);
}

int bg_policy_in_list(char **l, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(l[i], s) == 0)
            return 1;
    return 0;
}

/*
 * Categories docs/categories.md and config/categories.json list that no
 * detector reports (inspect/detect.h has no value for them): found by field
 * rules, named by rules, operators and sensitivity like any built-in one.
 * Each policy registers them first (register_documented), through the same
 * process-wide interning as the policy's own categories, so they take 7 of
 * the BG_CAT_MAX - BG_CAT__COUNT values. Sensitivity as categories.json
 * says (tests/unit/test_policy_check.c keeps the two equal).
 */
static const struct {
    const char *id;
    uint8_t sensitive;
} documented[] = {
    {"accommodation", 1},  /* GB/T 35273-2020 B.1 住宿信息 */
    {"credit_record", 1},  /* GB/T 35273-2020 B.1 信贷记录、征信信息 */
    {"education_work", 0}, /* GB/T 35273-2020 A.1 个人教育工作信息 */
    {"family_relationship", 0},
    {"id_document_image", 1}, /* GB/T 45574-2025 A: the ID card image stays sensitive */
    {"marital_status", 1},    /* GB/T 35273-2020 B.1 婚史 */
    {"property", 1},          /* GB/T 35273-2020 B.1 个人财产信息 */
};
#define NDOCUMENTED (sizeof documented / sizeof documented[0])

/* Whether ID is a documented category without a detector value. */
static int documented_category(const char *id)
{
    for (size_t i = 0; i < NDOCUMENTED; i++)
        if (strcmp(documented[i].id, id) == 0)
            return 1;
    return 0;
}

/* Give the documented categories their values in P (before anything may
 * name them). An error only when every value is taken by policy categories
 * of earlier reloads. */
static void register_documented(bg_cfg_ctx_t *ctx, bg_policy_t *p)
{
    for (size_t i = 0; i < NDOCUMENTED; i++) {
        bg_detect_cat_t c = bg_detect_category_intern(documented[i].id, strlen(documented[i].id));
        char *id = bg_cfg_dup(documented[i].id);
        if (c == BG_CAT_NONE || id == NULL || p->next >= BG_CAT_MAX - BG_CAT__COUNT) {
            free(id);
            bg_cfg_err(ctx, "$.policy.categories", 0,
                       "cannot register the documented category \"%s\": too many categories "
                       "for the life of the process",
                       documented[i].id);
            continue;
        }
        p->ext[p->next].id = id;
        p->ext[p->next].cat = c;
        p->ext[p->next].parent = BG_CAT_NONE;
        p->next++;
        p->sensitive[c] = documented[i].sensitive;
    }
}

const char *bg_policy_documented_at(size_t i)
{
    return i < NDOCUMENTED ? documented[i].id : NULL;
}

/* A policy category's value, or BG_CAT_NONE. */
static bg_detect_cat_t own_category(const bg_policy_t *p, const char *id)
{
    for (int k = 0; k < p->next; k++)
        if (strcmp(p->ext[k].id, id) == 0)
            return p->ext[k].cat;
    return BG_CAT_NONE;
}

/* A category id: built in (docs/categories.md) or defined in
 * policy.categories; errors name both places. */
static bg_detect_cat_t category(bg_cfg_ctx_t *ctx, const bg_policy_t *p, const char *path,
                                const char *id)
{
    bg_detect_cat_t c = bg_detect_category_from_id(id, strlen(id));
    if (c == BG_CAT_NONE)
        c = own_category(p, id);
    if (c == BG_CAT_NONE)
        bg_cfg_err(ctx, path, 0,
                   "unknown data category \"%s\" (built-in ones: docs/categories.md; a "
                   "category of the policy's own is defined in $.policy.categories)",
                   id);
    return c;
}

/* SET plus every policy category whose parent is in SET: what the policy
 * says of a category it says of the kinds of it. */
static uint64_t with_children(const bg_policy_t *p, uint64_t set)
{
    for (int k = 0; k < p->next; k++)
        if (p->ext[k].parent != BG_CAT_NONE && (set >> p->ext[k].parent & 1))
            set |= 1ull << p->ext[k].cat;
    return set;
}

static uint64_t category_set(bg_cfg_ctx_t *ctx, const bg_policy_t *pol, json_t *obj,
                             const char *path, const char *key, int *all, int *sensitive_only)
{
    int n = 0, any = 0;
    char p[512];
    char **l = string_list(ctx, obj, path, key, &n, &any);
    uint64_t set = 0;
    bg_cfg_path_key(p, sizeof p, path, key);
    if (all != NULL)
        *all = any;
    if (sensitive_only != NULL)
        *sensitive_only = 0;
    for (int i = 0; i < n; i++) {
        char ep[512];
        bg_cfg_path_index(ep, sizeof ep, p, (size_t)i);
        if (strcmp(l[i], "*") == 0)
            continue;
        if (strcmp(l[i], "sensitive") == 0 && sensitive_only != NULL) {
            *sensitive_only = 1;
            continue;
        }
        bg_detect_cat_t c = category(ctx, pol, ep, l[i]);
        if (c != BG_CAT_NONE)
            set |= 1ull << c;
    }
    free_list(l, n);
    return with_children(pol, set);
}

/* {"op": "mask", "keep_start": 3, ...} */
static int parse_op(bg_cfg_ctx_t *ctx, json_t *o, const char *path, bg_op_t *op)
{
    static const char *const keys[] = {"op",          "keep_start",  "keep_end",
                                       "mask_char",   "decimals",    "ipv4_prefix",
                                       "ipv6_prefix", "replacement", NULL};
    memset(op, 0, sizeof *op);
    if (json_is_string(o)) {
        if (bg_op_parse(json_string_value(o), &op->kind) != 0) {
            bg_cfg_err(
                ctx, path, 0,
                "unknown operator \"%s\" (redact, mask, hash, tokenize, generalize, replace)",
                json_string_value(o));
            return -1;
        }
        goto defaults;
    }
    if (!json_is_object(o)) {
        bg_cfg_err(ctx, path, 0, "must be an operator name or {\"op\": ...}");
        return -1;
    }
    bg_cfg_check_keys(ctx, o, path, keys);
    const char *name = bg_cfg_get_string(ctx, o, path, "op");
    if (name == NULL || bg_op_parse(name, &op->kind) != 0) {
        bg_cfg_err(ctx, path, 0,
                   "needs \"op\": one of redact, mask, hash, tokenize, generalize, replace");
        return -1;
    }
    op->keep_start = (int)bg_cfg_get_int(ctx, o, path, "keep_start", -1, 0, 64);
    op->keep_end = (int)bg_cfg_get_int(ctx, o, path, "keep_end", -1, 0, 64);
    const char *mc = bg_cfg_get_string(ctx, o, path, "mask_char");
    if (mc != NULL) {
        if (strlen(mc) != 1) {
            char p[512];
            bg_cfg_path_key(p, sizeof p, path, "mask_char");
            bg_cfg_err(ctx, p, 0, "must be one ASCII character");
        } else {
            op->mask_char = mc[0];
        }
    }
    op->decimals = (int)bg_cfg_get_int(ctx, o, path, "decimals", 2, 0, 8);
    op->ipv4_prefix = (int)bg_cfg_get_int(ctx, o, path, "ipv4_prefix", 24, 0, 32);
    op->ipv6_prefix = (int)bg_cfg_get_int(ctx, o, path, "ipv6_prefix", 48, 0, 128);
    const char *rep = bg_cfg_get_string(ctx, o, path, "replacement");
    /* Points into the document, which the config keeps for its lifetime. */
    op->replacement = rep;
defaults:
    if (op->kind == BG_OP_MASK) {
        if (op->keep_start < 0)
            op->keep_start = 3;
        if (op->keep_end < 0)
            op->keep_end = 4;
    }
    if (op->decimals == 0 && op->kind == BG_OP_GENERALIZE && !json_is_object(o))
        op->decimals = 2;
    return 0;
}

static void load_key(bg_cfg_ctx_t *ctx, json_t *keys, const char *name, unsigned char *key,
                     size_t cap, size_t *len, char *id)
{
    static const char *const kk[] = {"file", "env", NULL};
    char p[256], err[512];
    json_t *k = json_object_get(keys, name);
    *len = 0;
    if (k == NULL)
        return;
    snprintf(p, sizeof p, "$.keys.%s", name);
    if (!json_is_object(k)) {
        bg_cfg_err(ctx, p, 0, "must be {\"file\": PATH} or {\"env\": VARIABLE}");
        return;
    }
    bg_cfg_check_keys(ctx, k, p, kk);
    const char *file = bg_cfg_get_string(ctx, k, p, "file");
    const char *env = bg_cfg_get_string(ctx, k, p, "env");
    if ((file == NULL) == (env == NULL)) {
        bg_cfg_err(ctx, p, 0, "give exactly one of \"file\" or \"env\"");
        return;
    }
    if (ctx->no_keys) {
        /* `check --no-keys` (CI holds no production keys): a stand-in of
         * the right size, never used to protect anything. */
        *len = cap < 32 ? cap : 32;
        memset(key, 0, *len);
        bg_key_id(key, *len, id);
        return;
    }
    if (bg_key_load(file, env, key, cap, len, id, err, sizeof err) != 0)
        bg_cfg_err(ctx, p, 0, "%s", err);
}

static void parse_recipients(bg_cfg_ctx_t *ctx, bg_policy_t *p, json_t *rs)
{
    static const char *const keys[] = {"legal_entity", "relationship", "country",
                                       "purposes",     "mechanism",    "exemption",
                                       "denylisted",   "description",  NULL};
    static const char *const mkeys[] = {"type", "reference", "expires", NULL};
    const char *id;
    json_t *r;
    char buf[256];
    if (rs == NULL)
        return;
    if (!json_is_object(rs)) {
        bg_cfg_err(ctx, "$.recipients", 0, "must be an object: recipient id -> its description");
        return;
    }
    p->recipients = bg_cfg_alloc(json_object_size(rs) + 1, sizeof *p->recipients);
    if (p->recipients == NULL)
        return; /* counted: the load fails */
    json_object_foreach(rs, id, r)
    {
        char path[512];
        bg_cfg_path_key(path, sizeof path, "$.recipients", id);
        if (!json_is_object(r)) {
            bg_cfg_err(ctx, path, 0, "must be an object");
            continue;
        }
        bg_recipient_t *x = &p->recipients[p->nrecipients];
        if ((x->id = bg_cfg_dup(id)) == NULL)
            continue; /* counted: the load fails */
        p->nrecipients++;
        bg_cfg_check_keys(ctx, r, path, keys);
        x->legal_entity = bg_cfg_dup(bg_cfg_get_string(ctx, r, path, "legal_entity"));
        if (x->legal_entity == NULL)
            bg_cfg_err(ctx, path, 0, "needs \"legal_entity\" (the receiving party's legal name)");
        const char *rel = bg_cfg_get_string(ctx, r, path, "relationship");
        int ri = name_index(rel_names, 3, rel);
        if (ri < 0) {
            char kp[512];
            bg_cfg_path_key(kp, sizeof kp, path, "relationship");
            bg_cfg_err(ctx, rel != NULL ? kp : path, 0, "\"relationship\" must be one of %s",
                       join_names(rel_names, 3, buf, sizeof buf));
        }
        x->relationship = ri < 0 ? BG_REL_THIRD_PARTY : (bg_relationship_t)ri;
        const char *cc = bg_cfg_get_string(ctx, r, path, "country");
        if (cc != NULL) {
            char kp[512];
            bg_cfg_path_key(kp, sizeof kp, path, "country");
            if (!bg_geo_country_valid(cc))
                bg_cfg_err(ctx, kp, 0, "must be a two-letter ISO 3166 code such as \"US\"");
            x->country = bg_cfg_dup(cc);
        }
        x->purposes = string_list(ctx, r, path, "purposes", &x->npurposes, NULL);
        json_t *m = json_object_get(r, "mechanism");
        char mp[512];
        bg_cfg_path_key(mp, sizeof mp, path, "mechanism");
        if (m == NULL) {
            bg_cfg_err(ctx, path, 0,
                       "needs \"mechanism\": the transfer mechanism in place ({\"type\": "
                       "\"standard_contract\", \"reference\": ..., \"expires\": ...}, or "
                       "{\"type\": \"none\"})");
        } else if (!json_is_object(m)) {
            bg_cfg_err(ctx, mp, 0, "must be an object with \"type\"");
        } else {
            bg_cfg_check_keys(ctx, m, mp, mkeys);
            const char *t = bg_cfg_get_string(ctx, m, mp, "type");
            int mi = name_index(mech_names, 4, t);
            if (mi < 0)
                bg_cfg_err(ctx, mp, 0, "\"type\" must be one of %s",
                           join_names(mech_names, 4, buf, sizeof buf));
            x->mechanism = mi < 0 ? BG_MECH_NONE : (bg_mechanism_t)mi;
            x->mechanism_ref = bg_cfg_dup(bg_cfg_get_string(ctx, m, mp, "reference"));
            if (x->mechanism != BG_MECH_NONE && x->mechanism_ref == NULL)
                bg_cfg_err(ctx, mp, 0,
                           "a %s needs its \"reference\" (filing or certificate number)",
                           mech_names[x->mechanism]);
            const char *exp = bg_cfg_get_string(ctx, m, mp, "expires");
            if (exp != NULL) {
                char ep[512];
                bg_cfg_path_key(ep, sizeof ep, mp, "expires");
                x->mechanism_expires_ms = parse_date(exp);
                if (x->mechanism_expires_ms < 0) {
                    bg_cfg_err(ctx, ep, 0,
                               "must be a real date like \"2027-12-31\" (valid through that day, "
                               "China time) or \"2027-12-31T16:00:00Z\"");
                    x->mechanism_expires_ms = 0;
                } else if ((uint64_t)x->mechanism_expires_ms < bg_util_wall_ms()) {
                    bg_cfg_warn(ctx, ep,
                                "the %s has expired: transfers of personal information to %s are "
                                "blocked until it is renewed",
                                mech_names[x->mechanism], id);
                }
            }
        }
        const char *ex = bg_cfg_get_string(ctx, r, path, "exemption");
        if (ex != NULL) {
            int ei = name_index(exempt_names, 5, ex);
            char ep[512];
            bg_cfg_path_key(ep, sizeof ep, path, "exemption");
            if (ei < 0)
                bg_cfg_err(ctx, ep, 0, "must be one of %s (CAC 2024 Provisions Art. 5)",
                           join_names(exempt_names, 5, buf, sizeof buf));
            x->exemption = ei < 0 ? BG_EXEMPT_NONE : (bg_exemption_t)ei;
        }
        json_t *dl = json_object_get(r, "denylisted");
        if (dl != NULL) {
            char dp[512];
            bg_cfg_path_key(dp, sizeof dp, path, "denylisted");
            if (json_is_string(dl)) {
                x->denylisted = 1;
                x->denylist_ref = bg_cfg_dup(json_string_value(dl));
            } else if (json_is_boolean(dl)) {
                x->denylisted = json_is_true(dl);
            } else {
                bg_cfg_err(ctx, dp, 0, "must be true/false or the list reference (PIPL Art. 42)");
            }
        }
        bg_cfg_get_string(ctx, r, path, "description");
    }
}

const bg_recipient_t *bg_policy_recipient(const bg_policy_t *p, const char *id)
{
    for (int i = 0; id != NULL && i < p->nrecipients; i++)
        if (strcmp(p->recipients[i].id, id) == 0)
            return &p->recipients[i];
    return NULL;
}

static unsigned parse_bases(bg_cfg_ctx_t *ctx, json_t *obj, const char *path)
{
    int n = 0;
    char p[512], buf[256];
    char **l = string_list(ctx, obj, path, "bases", &n, NULL);
    unsigned set = 0;
    bg_cfg_path_key(p, sizeof p, path, "bases");
    for (int i = 0; i < n; i++) {
        int b = name_index(basis_names, BG_BASIS__COUNT, l[i]);
        if (b <= 0) {
            char ep[512];
            bg_cfg_path_index(ep, sizeof ep, p, (size_t)i);
            bg_cfg_err(ctx, ep, 0, "unknown legal basis \"%s\" (one of %s)", l[i],
                       join_names(basis_names + 1, BG_BASIS__COUNT - 1, buf, sizeof buf));
            continue;
        }
        set |= 1u << b;
    }
    free_list(l, n);
    return set;
}

static int parse_fallback(bg_cfg_ctx_t *ctx, json_t *v, const char *path, bg_fallback_t *fb,
                          bg_op_t *op, int *has_op)
{
    *has_op = 0;
    const char *a = json_is_string(v) ? json_string_value(v) : NULL;
    json_t *opv = NULL;
    if (json_is_object(v)) {
        static const char *const keys[] = {"action", "operator", NULL};
        bg_cfg_check_keys(ctx, v, path, keys);
        a = bg_cfg_get_string(ctx, v, path, "action");
        opv = json_object_get(v, "operator");
    }
    if (a == NULL) {
        bg_cfg_err(ctx, path, 0,
                   "must be \"block\", \"deidentify\", \"remove\" or {\"action\": ..., "
                   "\"operator\": ...}");
        return -1;
    }
    if (strcmp(a, "block") == 0)
        *fb = BG_FALLBACK_BLOCK;
    else if (strcmp(a, "deidentify") == 0)
        *fb = BG_FALLBACK_DEIDENTIFY;
    else if (strcmp(a, "remove") == 0)
        *fb = BG_FALLBACK_REMOVE;
    else {
        bg_cfg_err(ctx, path, 0, "action must be \"block\", \"deidentify\" or \"remove\"");
        return -1;
    }
    if (opv != NULL) {
        char op_path[512];
        bg_cfg_path_key(op_path, sizeof op_path, path, "operator");
        if (parse_op(ctx, opv, op_path, op) == 0)
            *has_op = 1;
    }
    return 0;
}

static void parse_rules(bg_cfg_ctx_t *ctx, bg_policy_t *p, json_t *rules)
{
    static const char *const keys[] = {
        "id",       "clause", "description", "categories",           "recipients",
        "purposes", "bases",  "fallback",    "accept_pseudonymized", NULL};
    if (rules == NULL)
        return;
    if (!json_is_array(rules)) {
        bg_cfg_err(ctx, "$.rules", 0, "must be a list of rules");
        return;
    }
    p->rules = bg_cfg_alloc(json_array_size(rules) + 1, sizeof *p->rules);
    if (p->rules == NULL)
        return; /* counted: the load fails */
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        char path[512];
        bg_cfg_path_index(path, sizeof path, "$.rules", i);
        if (!json_is_object(r)) {
            bg_cfg_err(ctx, path, 0, "a rule must be an object");
            continue;
        }
        bg_rule_t *x = &p->rules[p->nrules];
        bg_cfg_check_keys(ctx, r, path, keys);
        const char *id = bg_cfg_get_string(ctx, r, path, "id");
        char gen[32];
        snprintf(gen, sizeof gen, "rule-%zu", i + 1);
        if ((x->id = bg_cfg_dup(id != NULL ? id : gen)) == NULL)
            continue; /* counted: the load fails */
        p->nrules++;
        for (int k = 0; k < p->nrules - 1; k++) {
            if (strcmp(p->rules[k].id, x->id) == 0) {
                char ip[512];
                bg_cfg_path_key(ip, sizeof ip, path, "id");
                bg_cfg_err(ctx, ip, 0, "duplicate rule id \"%s\"", x->id);
            }
        }
        x->clause = bg_cfg_dup(bg_cfg_get_string(ctx, r, path, "clause"));
        bg_cfg_get_string(ctx, r, path, "description");
        if (json_object_get(r, "categories") == NULL)
            bg_cfg_err(ctx, path, 0, "needs \"categories\" (ids, \"sensitive\" or \"*\")");
        x->categories =
            category_set(ctx, p, r, path, "categories", &x->all_categories, &x->sensitive_only);
        int any = 0;
        x->recipients = string_list(ctx, r, path, "recipients", &x->nrecipients, &any);
        if (any || x->recipients == NULL) {
            free_list(x->recipients, x->nrecipients);
            x->recipients = NULL;
            x->nrecipients = 0;
        } else {
            char rp[512];
            bg_cfg_path_key(rp, sizeof rp, path, "recipients");
            for (int k = 0; k < x->nrecipients; k++) {
                if (bg_policy_recipient(p, x->recipients[k]) == NULL) {
                    char ep[512];
                    bg_cfg_path_index(ep, sizeof ep, rp, (size_t)k);
                    bg_cfg_err(ctx, ep, 0, "unknown recipient \"%s\" (not in $.recipients)",
                               x->recipients[k]);
                }
            }
        }
        x->purposes = string_list(ctx, r, path, "purposes", &x->npurposes, &any);
        if (any || x->purposes == NULL) {
            free_list(x->purposes, x->npurposes);
            x->purposes = NULL;
            x->npurposes = 0;
        }
        x->bases = parse_bases(ctx, r, path);
        json_t *fb = json_object_get(r, "fallback");
        char fp[512];
        bg_cfg_path_key(fp, sizeof fp, path, "fallback");
        if (fb == NULL)
            bg_cfg_err(
                ctx, path, 0,
                "needs \"fallback\": what happens when no basis holds (block, deidentify, remove)");
        else
            parse_fallback(ctx, fb, fp, &x->fallback, &x->op, &x->has_op);
        x->accept_pseudonymized = bg_cfg_get_bool(ctx, r, path, "accept_pseudonymized", 0);
    }
}

/* Does rule R cover category C for this recipient and purpose? */
static int rule_applies(const bg_policy_t *p, const bg_rule_t *r, bg_detect_cat_t c,
                        const char *recipient, const char *purpose)
{
    int cat_ok =
        r->all_categories || (r->categories >> c & 1) || (r->sensitive_only && p->sensitive[c]);
    if (!cat_ok)
        return 0;
    if (r->recipients != NULL &&
        (recipient == NULL || !bg_policy_in_list(r->recipients, r->nrecipients, recipient)))
        return 0;
    if (r->purposes != NULL &&
        (purpose == NULL || !bg_policy_in_list(r->purposes, r->npurposes, purpose)))
        return 0;
    return 1;
}

static void parse_declared(bg_cfg_ctx_t *ctx, json_t *bases, const char *path, const char *name,
                           bg_declared_basis_t *d)
{
    static const char *const keys[] = {"reference", NULL};
    json_t *v = json_object_get(bases, name);
    char p[512];
    if (v == NULL)
        return;
    bg_cfg_path_key(p, sizeof p, path, name);
    if (!json_is_object(v)) {
        bg_cfg_err(ctx, p, 0, "must be {\"reference\": \"...\"}");
        return;
    }
    bg_cfg_check_keys(ctx, v, p, keys);
    d->present = 1;
    d->reference = bg_cfg_dup(bg_cfg_get_string(ctx, v, p, "reference"));
    if (d->reference == NULL)
        bg_cfg_err(ctx, p, 0, "needs \"reference\": the law, contract or procedure relied on");
}

/*
 * Whether S can select a value at run time (bg_inspection_value): a JSON
 * path ("$..."), or, when OTHERS, "header.NAME", "query.NAME", "form.NAME",
 * "cookie.NAME" with a non-empty NAME.
 */
/* Whether S is an HTTP header name (RFC 9110 token, 1-64 characters). */
static int header_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && strchr("!#$%&'*+-.^_`|~", c) == NULL)
            return 0;
    }
    return 1;
}

static int selector_valid(const char *s, int others)
{
    static const char *const prefixes[] = {"header.", "query.", "form.", "cookie.", NULL};
    if (s[0] == '$')
        return 1;
    for (const char *const *pf = prefixes; others && *pf != NULL; pf++) {
        size_t n = strlen(*pf);
        if (strncmp(s, *pf, n) == 0 && s[n] != '\0')
            return 1;
    }
    return 0;
}

/*
 * A route's selectors address one body: a JSON body ("$.order_id") or a
 * form ("form.order_id"), never both. A contract reference of the one kind
 * next to subject or necessary-field selectors of the other is never found
 * in one of them: contract necessity would silently fail (or the subject be
 * unknown). Warned at the reference, naming the other selector.
 */
static void check_body_kinds(bg_cfg_ctx_t *ctx, const bg_route_policy_t *rp, const char *path)
{
    const char *ref = rp->contract.reference_path;
    if (ref == NULL || (ref[0] != '$' && strncmp(ref, "form.", 5) != 0))
        return;
    int ref_json = ref[0] == '$';
    const char *others[5 + 64];
    const char *names[5 + 64];
    int n = 0;
    others[n] = rp->subject_id, names[n++] = "subjects.id";
    others[n] = rp->subject_device, names[n++] = "subjects.device_id";
    others[n] = rp->subject_region, names[n++] = "subjects.region";
    others[n] = rp->birth_date, names[n++] = "subjects.birth_date";
    for (int i = 0; i < rp->contract.nnecessary_paths && n < 5 + 64; i++)
        others[n] = rp->contract.necessary_paths[i], names[n++] = "bases.contract.necessary_fields";
    for (int i = 0; i < n; i++) {
        const char *o = others[i];
        if (o == NULL || rp->records != NULL)
            continue;
        int o_json = o[0] == '$', o_form = strncmp(o, "form.", 5) == 0;
        if ((ref_json && o_form) || (!ref_json && o_json)) {
            char cp[512], bp[512], rpth[512];
            bg_cfg_path_key(bp, sizeof bp, path, "bases");
            bg_cfg_path_key(cp, sizeof cp, bp, "contract");
            bg_cfg_path_key(rpth, sizeof rpth, cp, "reference");
            bg_cfg_warn(ctx, rpth,
                        "\"%s\" looks in a %s body but %s \"%s\" in a %s: a request has one "
                        "body, so the contract reference (or the other selector) is never found "
                        "and contract necessity never holds on this route",
                        ref, ref_json ? "JSON" : "form", names[i], o,
                        o_json ? "JSON body" : "form");
            return;
        }
    }
}

/*
 * The field rules at BASE ("$.field_rules", or a route's
 * "$.routes[2].field_rules"): an array of N specs (strings borrowed from
 * FR), or NULL when there are none. Category "none" says the key or path is
 * not personal information (BG_CAT_NONE: no key finding, no hints; content
 * detectors still read the value).
 */
static bg_field_rule_spec_t *parse_field_rules(bg_cfg_ctx_t *ctx, const bg_policy_t *p, json_t *fr,
                                               const char *base, size_t *n)
{
    static const char *const keys[] = {"id", "path", "key", "category", "description", NULL};
    *n = 0;
    if (fr == NULL)
        return NULL;
    if (!json_is_array(fr)) {
        bg_cfg_err(ctx, base, 0, "must be a list");
        return NULL;
    }
    bg_field_rule_spec_t *out = calloc(json_array_size(fr) + 1, sizeof *out);
    if (out == NULL) {
        bg_cfg_err(ctx, base, 0, "out of memory");
        return NULL;
    }
    size_t i;
    json_t *r;
    json_array_foreach(fr, i, r)
    {
        char path[512], err[256];
        bg_cfg_path_index(path, sizeof path, base, i);
        if (!json_is_object(r)) {
            bg_cfg_err(ctx, path, 0, "must be an object");
            continue;
        }
        bg_cfg_check_keys(ctx, r, path, keys);
        bg_field_rule_spec_t *x = &out[(*n)++];
        x->id = bg_cfg_get_string(ctx, r, path, "id");
        x->path = bg_cfg_get_string(ctx, r, path, "path");
        x->key = bg_cfg_get_string(ctx, r, path, "key");
        if ((x->path == NULL) == (x->key == NULL))
            bg_cfg_err(
                ctx, path, 0,
                "give exactly one of \"path\" (a JSON path) or \"key\" (a key name at any depth)");
        if (x->path != NULL && bg_inspect_path_valid(x->path, err, sizeof err) != 0) {
            char pp[512];
            bg_cfg_path_key(pp, sizeof pp, path, "path");
            bg_cfg_err(ctx, pp, 0, "%s", err);
        }
        const char *cat = bg_cfg_get_string(ctx, r, path, "category");
        char cp[512];
        bg_cfg_path_key(cp, sizeof cp, path, "category");
        if (cat == NULL)
            bg_cfg_err(ctx, path, 0, "needs \"category\"");
        else if (strcmp(cat, "none") == 0)
            x->category = BG_CAT_NONE; /* "this key is not personal information" */
        else
            x->category = category(ctx, p, cp, cat);
        if (x->id == NULL)
            x->id = x->path != NULL ? x->path : x->key;
    }
    return out;
}

/* A route's recipient (declared in $.recipients), purpose (one the
 * recipient declares), mode and opaque_bodies. */
static void route_terms(bg_cfg_ctx_t *ctx, bg_policy_t *p, json_t *rv, const char *path,
                        const bg_route_t *route, bg_route_policy_t *rp)
{
    char kp[512];

    if (route->recipient != NULL) {
        rp->recipient = bg_policy_recipient(p, route->recipient);
        if (rp->recipient == NULL) {
            bg_cfg_path_key(kp, sizeof kp, path, "recipient");
            bg_cfg_err(ctx, kp, 0, "unknown recipient \"%s\" (declare it in $.recipients)",
                       route->recipient);
        }
    }
    rp->purpose = bg_cfg_dup(bg_cfg_get_string(ctx, rv, path, "purpose"));
    if (rp->purpose != NULL && rp->recipient != NULL && rp->recipient->npurposes > 0 &&
        !bg_policy_in_list(rp->recipient->purposes, rp->recipient->npurposes, rp->purpose)) {
        bg_cfg_path_key(kp, sizeof kp, path, "purpose");
        bg_cfg_err(ctx, kp, 0, "recipient \"%s\" does not declare the purpose \"%s\"",
                   rp->recipient->id, rp->purpose);
    }
    const char *mode = bg_cfg_get_string(ctx, rv, path, "mode");
    if (mode != NULL && strcmp(mode, "enforce") != 0 && strcmp(mode, "monitor") != 0) {
        bg_cfg_path_key(kp, sizeof kp, path, "mode");
        bg_cfg_err(ctx, kp, 0, "must be \"enforce\" or \"monitor\"");
    }
    rp->monitor = mode != NULL ? strcmp(mode, "monitor") == 0 : p->monitor;
    const char *opaque = bg_cfg_get_string(ctx, rv, path, "opaque_bodies");
    if (opaque != NULL && strcmp(opaque, "allow") != 0 && strcmp(opaque, "block") != 0) {
        bg_cfg_path_key(kp, sizeof kp, path, "opaque_bodies");
        bg_cfg_err(ctx, kp, 0, "must be \"allow\" or \"block\"");
    }
    rp->opaque_allow = opaque != NULL && strcmp(opaque, "allow") == 0;
}

/* bases.contract: the contract's purpose, what is necessary for it
 * (categories and/or field paths) and where its reference is. */
static void route_contract(bg_cfg_ctx_t *ctx, const bg_policy_t *p, json_t *bases, const char *bp,
                           bg_route_policy_t *rp)
{
    static const char *const contract_keys[] = {
        "purpose", "necessary", "necessary_fields", "reference", "reference_required", NULL};
    char err[256];
    json_t *c = bg_cfg_get_typed(ctx, bases, bp, "contract", JSON_OBJECT, "an object");
    if (c != NULL) {
        char cp[512];
        bg_cfg_path_key(cp, sizeof cp, bp, "contract");
        bg_cfg_check_keys(ctx, c, cp, contract_keys);
        rp->contract.present = 1;
        rp->contract.purpose = bg_cfg_dup(bg_cfg_get_string(ctx, c, cp, "purpose"));
        if (rp->contract.purpose == NULL)
            bg_cfg_err(ctx, cp, 0,
                       "needs \"purpose\": the contract the subject is party to "
                       "(cross_border_shopping, delivery, payment, booking, ...)");
        rp->contract.necessary = category_set(ctx, p, c, cp, "necessary", NULL, NULL);
        rp->contract.necessary_paths =
            string_list(ctx, c, cp, "necessary_fields", &rp->contract.nnecessary_paths, NULL);
        for (int i = 0; i < rp->contract.nnecessary_paths; i++) {
            if (bg_inspect_path_valid(rp->contract.necessary_paths[i], err, sizeof err) != 0) {
                char np[512], ep[512];
                bg_cfg_path_key(np, sizeof np, cp, "necessary_fields");
                bg_cfg_path_index(ep, sizeof ep, np, (size_t)i);
                bg_cfg_err(ctx, ep, 0, "%s", err);
            }
        }
        if (rp->contract.necessary == 0 && rp->contract.nnecessary_paths == 0)
            bg_cfg_err(ctx, cp, 0,
                       "name what is necessary for the contract: \"necessary\" (categories) "
                       "and/or \"necessary_fields\" (paths)");
        rp->contract.reference_path = bg_cfg_dup(bg_cfg_get_string(ctx, c, cp, "reference"));
        rp->contract.reference_required =
            bg_cfg_get_bool(ctx, c, cp, "reference_required", rp->contract.reference_path != NULL);
        if (rp->contract.reference_required && rp->contract.reference_path == NULL)
            bg_cfg_err(ctx, cp, 0,
                       "reference_required needs \"reference\": where the contract or order "
                       "reference is");
    }
}

/* A route's declared legal bases (legal_obligation, hr_management,
 * emergency, contract). */
static void route_bases(bg_cfg_ctx_t *ctx, const bg_policy_t *p, json_t *rv, const char *path,
                        bg_route_policy_t *rp)
{
    static const char *const bases_keys[] = {"legal_obligation", "hr_management", "emergency",
                                             "contract", NULL};
    json_t *bases = bg_cfg_get_typed(ctx, rv, path, "bases", JSON_OBJECT, "an object");
    if (bases != NULL) {
        char bp[512];
        bg_cfg_path_key(bp, sizeof bp, path, "bases");
        bg_cfg_check_keys(ctx, bases, bp, bases_keys);
        parse_declared(ctx, bases, bp, "legal_obligation", &rp->legal_obligation);
        parse_declared(ctx, bases, bp, "hr_management", &rp->hr);
        parse_declared(ctx, bases, bp, "emergency", &rp->emergency);
        route_contract(ctx, p, bases, bp, rp);
    }
}

/* A route's subjects: where the subject's id, device, records, region and
 * birth date are; each must name something at run time. */
static void route_subjects(bg_cfg_ctx_t *ctx, const bg_policy_t *p, json_t *rv, const char *path,
                           bg_route_policy_t *rp)
{
    static const char *const subj_keys[] = {"id",         "device_id",     "records", "region",
                                            "birth_date", "region_header", NULL};
    char kp[512], err[256];
    json_t *subj = bg_cfg_get_typed(ctx, rv, path, "subjects", JSON_OBJECT, "an object");
    if (subj != NULL) {
        char sp[512];
        bg_cfg_path_key(sp, sizeof sp, path, "subjects");
        bg_cfg_check_keys(ctx, subj, sp, subj_keys);
        rp->subject_id = bg_cfg_dup(bg_cfg_get_string(ctx, subj, sp, "id"));
        rp->subject_device = bg_cfg_dup(bg_cfg_get_string(ctx, subj, sp, "device_id"));
        rp->records = bg_cfg_dup(bg_cfg_get_string(ctx, subj, sp, "records"));
        rp->subject_region = bg_cfg_dup(bg_cfg_get_string(ctx, subj, sp, "region"));
        rp->birth_date = bg_cfg_dup(bg_cfg_get_string(ctx, subj, sp, "birth_date"));
        rp->region_header = bg_cfg_dup(bg_cfg_get_string(ctx, subj, sp, "region_header"));
        if (rp->region_header != NULL && !header_name_valid(rp->region_header)) {
            bg_cfg_path_key(kp, sizeof kp, sp, "region_header");
            bg_cfg_err(ctx, kp, 0, "must be a header name (\"X-Subject-Region\")");
        }
        if (p->region_gateway_only && p->subject_abroad_allowed && rp->subject_region != NULL &&
            rp->region_header == NULL) {
            bg_cfg_path_key(kp, sizeof kp, sp, "region");
            bg_cfg_warn(ctx, kp,
                        "the caller writes this region and policy.subject_region_from is "
                        "\"gateway_header\": subject_abroad never holds on this route; set "
                        "subjects.region_header to the header the calling service's gateway sets");
        }
        const char *paths[] = {rp->subject_id, rp->records, rp->subject_region, rp->birth_date,
                               rp->subject_device};
        const char *names[] = {"id", "records", "region", "birth_date", "device_id"};
        for (int i = 0; i < 5; i++) {
            if (paths[i] != NULL && !selector_valid(paths[i], i != 1)) {
                /* "user.id" names nothing at run time: consent, region or
                 * age would silently never be found. */
                bg_cfg_path_key(kp, sizeof kp, sp, names[i]);
                bg_cfg_err(ctx, kp, 0,
                           i == 1 ? "must be a JSON path to an array (\"$.events[*]\")"
                                  : "\"%s\" names nothing: give a JSON path (\"$.user.id\"; "
                                    "relative to the record with \"records\") or header.NAME, "
                                    "query.NAME, form.NAME, cookie.NAME",
                           paths[i]);
                continue;
            }
            if (paths[i] == NULL || paths[i][0] != '$')
                continue;
            if (bg_inspect_path_valid(paths[i], err, sizeof err) != 0) {
                bg_cfg_path_key(kp, sizeof kp, sp, names[i]);
                bg_cfg_err(ctx, kp, 0, "%s", err);
            }
        }
    }
}

/* A route's inspection rules (rp->inspect): its inspect section and its
 * own field rules ahead of the global FRULES[0..NFRULES). */
static void route_inspect(bg_cfg_ctx_t *ctx, const bg_policy_t *p, json_t *rv, const char *path,
                          bg_route_policy_t *rp, const bg_field_rule_spec_t *frules, size_t nfrules)
{
    static const char *const insp_keys[] = {"headers", "cookies", "query", "address_books", NULL};
    char kp[512], err[256];
    /* What this route inspects beyond the body: default every X- header,
     * every cookie and the query string. */
    const char *default_headers[] = {"x-*"};
    const char *default_cookies[] = {"*"};
    int nh = 0, nc = 0;
    char **hl = NULL, **cl = NULL;
    int query = 1, books = 0;
    json_t *insp = bg_cfg_get_typed(ctx, rv, path, "inspect", JSON_OBJECT, "an object");
    if (insp != NULL) {
        char ip[512];
        bg_cfg_path_key(ip, sizeof ip, path, "inspect");
        bg_cfg_check_keys(ctx, insp, ip, insp_keys);
        hl = string_list(ctx, insp, ip, "headers", &nh, NULL);
        cl = string_list(ctx, insp, ip, "cookies", &nc, NULL);
        query = bg_cfg_get_bool(ctx, insp, ip, "query", 1);
        books = bg_cfg_get_bool(ctx, insp, ip, "address_books", 0);
    }
    /* The route's own field rules come first: they override the global
     * ones (and the key table) for this route only. */
    char frp[512];
    bg_cfg_path_key(frp, sizeof frp, path, "field_rules");
    size_t nown = 0;
    bg_field_rule_spec_t *own =
        parse_field_rules(ctx, p, json_object_get(rv, "field_rules"), frp, &nown);
    bg_field_rule_spec_t *all = calloc(nown + nfrules + 1, sizeof *all);
    if (all == NULL) {
        bg_cfg_err(ctx, path, 0, "out of memory");
        free(own);
        free_list(hl, nh);
        free_list(cl, nc);
        return;
    }
    if (nown > 0)
        memcpy(all, own, nown * sizeof *all);
    if (nfrules > 0)
        memcpy(all + nown, frules, nfrules * sizeof *all);
    bg_inspect_rules_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.rules = all;
    spec.nrules = nown + nfrules;
    spec.address_books = books;
    spec.headers = hl != NULL ? (const char *const *)hl : default_headers;
    spec.nheaders = hl != NULL ? (size_t)nh : 1;
    spec.cookies = cl != NULL ? (const char *const *)cl : default_cookies;
    spec.ncookies = cl != NULL ? (size_t)nc : 1;
    spec.skip_query = !query;
    spec.min_confidence = p->min_confidence;
    spec.records_path = rp->records;
    spec.sensitive = p->sensitive;
    rp->inspect = bg_inspect_rules_new(&spec, err, sizeof err);
    if (rp->inspect == NULL) {
        bg_cfg_path_key(kp, sizeof kp, path, "subjects");
        bg_cfg_err(ctx, kp, 0, "%s", err);
    }
    free_list(hl, nh);
    free_list(cl, nc);
    free(all);
    free(own);
}

/* The route's terms from route object RV at PATH into RP: one step per
 * section, then the first policy rule that applies, per category. */
static void parse_route_terms(bg_cfg_ctx_t *ctx, bg_policy_t *p, json_t *rv, const char *path,
                              const bg_route_t *route, bg_route_policy_t *rp,
                              const bg_field_rule_spec_t *frules, size_t nfrules)
{
    route_terms(ctx, p, rv, path, route, rp);
    route_bases(ctx, p, rv, path, rp);
    route_subjects(ctx, p, rv, path, rp);
    route_inspect(ctx, p, rv, path, rp, frules, nfrules);

    /* The first rule that applies, per category, for this route. */
    const char *recip = rp->recipient != NULL ? rp->recipient->id : NULL;
    for (int c = 0; c < BG_CAT_MAX; c++) {
        rp->rule_for[c] = -1;
        for (int i = 0; i < p->nrules; i++) {
            if (rule_applies(p, &p->rules[i], (bg_detect_cat_t)c, recip, rp->purpose)) {
                rp->rule_for[c] = (int16_t)i;
                break;
            }
        }
    }
}

/*
 * policy.categories: categories of the policy's own, in the format of
 * config/categories.json ("label", "group", "sensitive", "citations", ...)
 * plus "parent", the built-in category it is a kind of. Validated by the
 * taxonomy loader (positions, unknown keys, types); here: an id that is
 * built in, a parent that is not, and the process-wide limit of
 * BG_CAT_MAX - BG_CAT__COUNT ids. Errors leave the category undefined, so
 * every use of it is an error too: nothing half-defined is compiled.
 */
static uint64_t parse_categories(bg_cfg_ctx_t *ctx, bg_policy_t *p, json_t *cats)
{
    const char *base = "$.policy.categories";
    uint64_t never = 0;
    if (cats == NULL)
        return 0;
    if (!json_is_object(cats)) {
        bg_cfg_err(ctx, base, 0, "must map category ids to categories (see docs/policy.md)");
        return 0;
    }
    int bad = 0;
    const char *id;
    json_t *v;
    json_object_foreach(cats, id, v)
    {
        char kp[512];
        bg_cfg_path_key(kp, sizeof kp, base, id);
        if (bg_detect_category_from_id(id, strlen(id)) != BG_CAT_NONE || documented_category(id)) {
            bg_cfg_err(ctx, kp, 1,
                       "\"%s\" is a built-in category (docs/categories.md): to change whether "
                       "it is sensitive, use $.policy.sensitive",
                       id);
            bad = 1;
        }
        if (json_is_object(v) && json_object_get(v, "detectors") != NULL) {
            char dp[512];
            bg_cfg_path_key(dp, sizeof dp, kp, "detectors");
            bg_cfg_err(ctx, dp, 1,
                       "detectors report built-in categories only: a category of the policy's "
                       "own is found by field rules");
            bad = 1;
        }
    }
    bg_taxonomy_t *tax = bg_taxonomy_new();
    if (tax == NULL) {
        bg_cfg_err(ctx, base, 0, "out of memory");
        return 0;
    }
    if (bg_taxonomy_extend(tax, cats, ctx->pos, base, ctx->errs) != 0 || bad)
        goto out;
    for (size_t i = 0; i < bg_taxonomy_count(tax); i++) {
        const bg_taxonomy_cat_t *tc = bg_taxonomy_at(tax, i);
        char kp[512], pp[512];
        bg_cfg_path_key(kp, sizeof kp, base, tc->id);
        bg_cfg_path_key(pp, sizeof pp, kp, "parent");
        bg_detect_cat_t parent = BG_CAT_NONE;
        if (tc->parent[0] != '\0') {
            parent = bg_detect_category_from_id(tc->parent, strlen(tc->parent));
            if (parent == BG_CAT_NONE && documented_category(tc->parent))
                parent = own_category(p, tc->parent);
            if (parent == BG_CAT_NONE) {
                bg_cfg_err(ctx, pp, 0,
                           "unknown category \"%s\": a parent must be a built-in category "
                           "(docs/categories.md)",
                           tc->parent);
                continue;
            }
        }
        bg_detect_cat_t c = p->next < BG_CAT_MAX - BG_CAT__COUNT
                                ? bg_detect_category_intern(tc->id, strlen(tc->id))
                                : BG_CAT_NONE;
        if (c == BG_CAT_NONE) {
            bg_cfg_err(ctx, kp, 1,
                       "too many categories of the policy's own: at most %d (for the life of "
                       "the process, reloads included)",
                       BG_CAT_MAX - BG_CAT__COUNT);
            continue;
        }
        if ((p->ext[p->next].id = bg_cfg_dup(tc->id)) == NULL)
            continue; /* counted: the load fails */
        p->ext[p->next].cat = c;
        p->ext[p->next].parent = parent;
        p->next++;
        p->sensitive[c] = (uint8_t)(tc->sensitive != 0);
        if (tc->never_export)
            never |= 1ull << c;
    }
out:
    bg_taxonomy_free(tax);
    return never; /* the categories the file itself marks never_export */
}

static void parse_global(bg_cfg_ctx_t *ctx, bg_policy_t *p, json_t *g)
{
    static const char *const keys[] = {"version",
                                       "mode",
                                       "inspect_domestic",
                                       "min_confidence",
                                       "undecodable",
                                       "never_export",
                                       "honour_dnt_for",
                                       "subject_abroad",
                                       "minor_age",
                                       "sensitive",
                                       "categories",
                                       "default_fallback",
                                       "default_operator",
                                       "help_url",
                                       "guardian_consent_age",
                                       "subject_region_from",
                                       NULL};
    static const char *const ne_keys[] = {"categories", "action", NULL};
    const char *path = "$.policy";

    p->min_confidence = BG_CONF_MEDIUM;
    p->minor_age = 14;
    p->guardian_age = 14;
    p->never_export = 1ull << BG_CAT_CREDENTIALS;
    p->never_export_block = 0;
    p->default_fallback = BG_FALLBACK_BLOCK;
    p->default_op.kind = BG_OP_REDACT;
    for (int c = 0; c < BG_CAT_MAX; c++)
        p->sensitive[c] = 0;
    register_documented(ctx, p);
    if (g == NULL)
        return;
    if (!json_is_object(g)) {
        bg_cfg_err(ctx, path, 0, "must be an object");
        return;
    }
    bg_cfg_check_keys(ctx, g, path, keys);
    /* First: everything below may name the policy's own categories. */
    uint64_t own_never = parse_categories(ctx, p, json_object_get(g, "categories"));
    p->version = bg_cfg_dup(bg_cfg_get_string(ctx, g, path, "version"));
    /* Where a blocked caller reads why (the compliance team's page): an
     * absolute URL, never a path into the source tree. */
    const char *help = bg_cfg_get_string(ctx, g, path, "help_url");
    if (help != NULL) {
        int ok = (strncmp(help, "https://", 8) == 0 && help[8] != '\0') ||
                 (strncmp(help, "http://", 7) == 0 && help[7] != '\0');
        for (const char *c = help; ok && *c != '\0'; c++)
            ok = (unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f && *c != '"';
        if (!ok)
            bg_cfg_err(ctx, "$.policy.help_url", 0,
                       "must be an absolute http:// or https:// URL without spaces (the page "
                       "a blocked caller is sent to)");
        else
            p->help_url = bg_cfg_dup(help);
    }
    const char *mode = bg_cfg_get_string(ctx, g, path, "mode");
    if (mode != NULL && strcmp(mode, "enforce") != 0 && strcmp(mode, "monitor") != 0)
        bg_cfg_err(ctx, "$.policy.mode", 0, "must be \"enforce\" or \"monitor\"");
    p->monitor = mode != NULL && strcmp(mode, "monitor") == 0;
    p->inspect_domestic = bg_cfg_get_bool(ctx, g, path, "inspect_domestic", 0);
    const char *mc = bg_cfg_get_string(ctx, g, path, "min_confidence");
    if (mc != NULL && bg_detect_confidence_parse(mc, strlen(mc), &p->min_confidence) != 0)
        bg_cfg_err(ctx, "$.policy.min_confidence", 0, "must be \"low\", \"medium\" or \"high\"");
    const char *und = bg_cfg_get_string(ctx, g, path, "undecodable");
    if (und != NULL && strcmp(und, "block") != 0 && strcmp(und, "allow") != 0)
        bg_cfg_err(ctx, "$.policy.undecodable", 0, "must be \"block\" or \"allow\"");
    p->undecodable_allow = und != NULL && strcmp(und, "allow") == 0;
    if (p->undecodable_allow)
        bg_cfg_warn(ctx, "$.policy.undecodable",
                    "bodies bordergate cannot decode will go abroad uninspected");
    json_t *ne = bg_cfg_get_typed(ctx, g, path, "never_export", JSON_OBJECT, "an object");
    if (ne != NULL) {
        bg_cfg_check_keys(ctx, ne, "$.policy.never_export", ne_keys);
        if (json_object_get(ne, "categories") != NULL)
            p->never_export =
                category_set(ctx, p, ne, "$.policy.never_export", "categories", NULL, NULL);
        const char *a = bg_cfg_get_string(ctx, ne, "$.policy.never_export", "action");
        if (a != NULL && strcmp(a, "block") != 0 && strcmp(a, "redact") != 0)
            bg_cfg_err(ctx, "$.policy.never_export.action", 0, "must be \"block\" or \"redact\"");
        p->never_export_block = a != NULL && strcmp(a, "block") == 0;
    }
    p->never_export = with_children(p, p->never_export) | own_never;
    p->dnt_purposes = string_list(ctx, g, path, "honour_dnt_for", &p->ndnt_purposes, NULL);
    const char *sa = bg_cfg_get_string(ctx, g, path, "subject_abroad");
    if (sa != NULL && strcmp(sa, "allow") != 0 && strcmp(sa, "ignore") != 0)
        bg_cfg_err(ctx, "$.policy.subject_abroad", 0, "must be \"allow\" or \"ignore\"");
    p->subject_abroad_allowed = sa != NULL && strcmp(sa, "allow") == 0;
    p->minor_age = (int)bg_cfg_get_int(ctx, g, path, "minor_age", 14, 1, 18);
    /* PIPL Art. 31: under 14, a guardian consents; a privacy policy may
     * promise more (the Weidijia seed: every minor, i.e. under 18). */
    p->guardian_age = (int)bg_cfg_get_int(ctx, g, path, "guardian_consent_age",
                                          p->minor_age > 14 ? p->minor_age : 14, 1, 18);
    if (p->guardian_age < p->minor_age)
        bg_cfg_err(ctx, "$.policy.guardian_consent_age", 0,
                   "must be at least minor_age (%d): a minor's data always needs a guardian's "
                   "consent (PIPL Art. 31)",
                   p->minor_age);
    const char *rf = bg_cfg_get_string(ctx, g, path, "subject_region_from");
    if (rf != NULL && strcmp(rf, "request") != 0 && strcmp(rf, "gateway_header") != 0)
        bg_cfg_err(ctx, "$.policy.subject_region_from", 0,
                   "must be \"request\" (any subjects.region selector, asserted by the caller) "
                   "or \"gateway_header\" (only subjects.region_header)");
    p->region_gateway_only = rf != NULL && strcmp(rf, "gateway_header") == 0;
    json_t *fb = json_object_get(g, "default_fallback");
    if (fb != NULL)
        parse_fallback(ctx, fb, "$.policy.default_fallback", &p->default_fallback,
                       &p->default_fallback_op, &p->has_default_fallback_op);
    json_t *dop = json_object_get(g, "default_operator");
    if (dop != NULL)
        parse_op(ctx, dop, "$.policy.default_operator", &p->default_op);
}

static void parse_sensitivity(bg_cfg_ctx_t *ctx, bg_policy_t *p, json_t *g)
{
    json_t *s = g != NULL && json_is_object(g) ? json_object_get(g, "sensitive") : NULL;
    if (s == NULL)
        return;
    if (!json_is_object(s)) {
        bg_cfg_err(ctx, "$.policy.sensitive", 0, "must map category ids to true/false");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
    {
        char kp[512];
        bg_cfg_path_key(kp, sizeof kp, "$.policy.sensitive", k);
        bg_detect_cat_t c = category(ctx, p, kp, k);
        if (!json_is_boolean(v)) {
            bg_cfg_err(ctx, kp, 0, "must be true or false");
            continue;
        }
        if (c != BG_CAT_NONE)
            p->sensitive[c] = json_is_true(v);
    }
}

static void parse_operators(bg_cfg_ctx_t *ctx, bg_policy_t *p, json_t *ops)
{
    if (ops == NULL)
        return;
    if (!json_is_object(ops)) {
        bg_cfg_err(ctx, "$.operators", 0, "must map category ids to operators");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(ops, k, v)
    {
        char kp[512];
        bg_cfg_path_key(kp, sizeof kp, "$.operators", k);
        bg_detect_cat_t c = category(ctx, p, kp, k);
        bg_op_t op;
        if (parse_op(ctx, v, kp, &op) == 0 && c != BG_CAT_NONE) {
            p->operators[c] = op;
            p->has_operator[c] = 1;
        }
    }
}

const bg_op_t *bg_policy_operator(const bg_policy_t *p, bg_detect_cat_t cat)
{
    if (cat > BG_CAT_NONE && cat < BG_CAT_MAX && p->has_operator[cat])
        return &p->operators[cat];
    return &p->default_op;
}

bg_op_keys_t bg_policy_keys(const bg_policy_t *p)
{
    bg_op_keys_t k;
    memset(&k, 0, sizeof k);
    if (p->pseudonym_key_len > 0) {
        k.hash_key = p->pseudonym_key;
        k.hash_key_len = p->pseudonym_key_len;
        k.hash_key_id = p->pseudonym_key_id;
    }
    if (p->has_token_key) {
        k.token_key = p->token_key;
        k.token_key_id = p->token_key_id;
    }
    return k;
}

bg_policy_t *bg_policy_load(bg_cfg_ctx_t *ctx, json_t *root, const bg_config_t *cfg,
                            const char *text, size_t len)
{
    bg_policy_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, len, d);
    bg_hex_encode(d, sizeof d, p->hash);

    json_t *g = json_object_get(root, "policy");
    parse_global(ctx, p, g);
    /* Built-in sensitivity first, then the policy's overrides. */
    for (int c = 1; c < BG_CAT__COUNT; c++)
        p->sensitive[c] = (uint8_t)bg_inspect_default_sensitive((bg_detect_cat_t)c);
    parse_sensitivity(ctx, p, g);

    json_t *keys = bg_cfg_get_typed(ctx, root, "$", "keys", JSON_OBJECT, "an object");
    if (keys != NULL) {
        static const char *const kk[] = {"pseudonym", "token", "subject", "audit", NULL};
        bg_cfg_check_keys(ctx, keys, "$.keys", kk);
        load_key(ctx, keys, "pseudonym", p->pseudonym_key, sizeof p->pseudonym_key,
                 &p->pseudonym_key_len, p->pseudonym_key_id);
        size_t tl = 0;
        unsigned char tk[64];
        load_key(ctx, keys, "token", tk, sizeof tk, &tl, p->token_key_id);
        if (tl > 0) {
            if (tl < 32) {
                bg_cfg_err(ctx, "$.keys.token", 0, "the token key must be 32 bytes (AES-256)");
            } else {
                memcpy(p->token_key, tk, 32);
                p->has_token_key = 1;
                bg_key_id(p->token_key, 32, p->token_key_id);
            }
        }
        bg_util_wipe(tk, sizeof tk);
        load_key(ctx, keys, "subject", p->subject_key, sizeof p->subject_key, &p->subject_key_len,
                 p->subject_key_id);
        /* The audit key is loaded by the audit writer; check it here. */
        unsigned char ak[256];
        size_t akl = 0;
        char akid[17];
        load_key(ctx, keys, "audit", ak, sizeof ak, &akl, akid);
        bg_util_wipe(ak, sizeof ak);
    }
    json_t *consent = bg_cfg_get_typed(ctx, root, "$", "consent", JSON_OBJECT, "an object");
    if (consent != NULL) {
        static const char *const ck[] = {"registry", NULL};
        bg_cfg_check_keys(ctx, consent, "$.consent", ck);
        p->consent_registry = bg_cfg_dup(bg_cfg_get_string(ctx, consent, "$.consent", "registry"));
        if (p->consent_registry != NULL && p->subject_key_len == 0 &&
            !(json_is_object(keys) && json_object_get(keys, "subject") != NULL))
            bg_cfg_err(ctx, "$.consent.registry", 0,
                       "a consent registry needs $.keys.subject (subject ids are stored as keyed "
                       "pseudonyms)");
    }
    parse_recipients(ctx, p, json_object_get(root, "recipients"));
    parse_operators(ctx, p, json_object_get(root, "operators"));
    /* A policy category without an operator of its own takes its parent's. */
    for (int k = 0; k < p->next; k++) {
        bg_detect_cat_t c = p->ext[k].cat, pc = p->ext[k].parent;
        if (!p->has_operator[c] && pc != BG_CAT_NONE && p->has_operator[pc]) {
            p->operators[c] = p->operators[pc];
            p->has_operator[c] = 1;
        }
    }
    parse_rules(ctx, p, json_object_get(root, "rules"));
    size_t nfr = 0;
    bg_field_rule_spec_t *frules =
        parse_field_rules(ctx, p, json_object_get(root, "field_rules"), "$.field_rules", &nfr);

    bg_policy_check_rules(ctx, p, root);
    /* Route terms. */
    json_t *routes = json_object_get(root, "routes");
    p->nroutes = cfg->nroutes;
    p->routes = bg_cfg_alloc((size_t)cfg->nroutes + 1, sizeof *p->routes);
    if (p->routes == NULL)
        p->nroutes = 0; /* counted: the load fails */
    for (int i = 0; i < p->nroutes && json_is_array(routes); i++) {
        char path[512];
        bg_cfg_path_index(path, sizeof path, "$.routes", (size_t)i);
        json_t *rv = json_array_get(routes, (size_t)i);
        if (json_is_object(rv))
            parse_route_terms(ctx, p, rv, path, &cfg->routes[i], &p->routes[i], frules, nfr);
        if (json_is_object(rv))
            check_body_kinds(ctx, &p->routes[i], path);
    }
    bg_policy_check_usage(ctx, p);
    free(frules);
    return p;
}

void bg_policy_free(bg_policy_t *p)
{
    if (p == NULL)
        return;
    free(p->version);
    free(p->help_url);
    for (int k = 0; k < p->next; k++)
        free(p->ext[k].id);
    free_list(p->dnt_purposes, p->ndnt_purposes);
    for (int i = 0; i < p->nrecipients; i++) {
        bg_recipient_t *r = &p->recipients[i];
        free(r->id);
        free(r->legal_entity);
        free(r->country);
        free_list(r->purposes, r->npurposes);
        free(r->mechanism_ref);
        free(r->denylist_ref);
    }
    free(p->recipients);
    for (int i = 0; i < p->nrules; i++) {
        bg_rule_t *r = &p->rules[i];
        free(r->id);
        free(r->clause);
        free_list(r->recipients, r->nrecipients);
        free_list(r->purposes, r->npurposes);
    }
    free(p->rules);
    for (int i = 0; i < p->nroutes; i++) {
        bg_route_policy_t *r = &p->routes[i];
        free(r->purpose);
        free(r->legal_obligation.reference);
        free(r->hr.reference);
        free(r->emergency.reference);
        free(r->contract.purpose);
        free_list(r->contract.necessary_paths, r->contract.nnecessary_paths);
        free(r->contract.reference_path);
        free(r->subject_id);
        free(r->subject_device);
        free(r->records);
        free(r->subject_region);
        free(r->region_header);
        free(r->birth_date);
        bg_inspect_rules_free(r->inspect);
    }
    free(p->routes);
    free(p->consent_registry);
    bg_util_wipe(p->pseudonym_key, sizeof p->pseudonym_key);
    bg_util_wipe(p->token_key, sizeof p->token_key);
    bg_util_wipe(p->subject_key, sizeof p->subject_key);
    free(p);
}
