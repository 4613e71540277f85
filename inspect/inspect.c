/*
 * Inspection engine: decoders, field rules, detectors, rewriting.
 *
 * Every place a value can be rewritten is a "node" (a JSON member or array
 * element, a form or query field, a header, a cookie, a multipart part, a
 * text body). Findings point at nodes. Operators are only recorded by
 * bg_inspection_apply(); bg_inspection_render() performs them all at once,
 * innermost nested documents first, span edits right to left, so offsets
 * never shift under an edit that has not been made yet.
 */
#include "inspect/inspect.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <zlib.h>

#include "common/util.h"
#include "config/jsonpos.h"

#define MAX_NEST 3          /* JSON inside JSON strings */
#define MAX_DEPTH 64        /* JSON nesting walked */
#define MAX_FINDINGS 100000 /* beyond: undecodable (fail closed) */
#define SCAN_CAP 64         /* findings per value */
#define PATH_MAX_LEN 1024

/* ------------------------------------------------------------------------ */
/* Compiled JSON paths                                                       */

typedef enum { SEG_KEY, SEG_INDEX, SEG_ANY_INDEX, SEG_ANY_KEY, SEG_RECURSIVE } seg_kind_t;

typedef struct {
    seg_kind_t kind;
    char *key; /* SEG_KEY, SEG_RECURSIVE (the key after ..) */
    size_t key_len;
    size_t index;
} seg_t;

typedef struct {
    seg_t *segs;
    size_t n;
} jpath_t;

static void jpath_free(jpath_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->segs[i].key);
    free(p->segs);
    p->segs = NULL;
    p->n = 0;
}

static int jpath_push(jpath_t *p, seg_kind_t kind, const char *key, size_t key_len, size_t index)
{
    seg_t *ns = realloc(p->segs, (p->n + 1) * sizeof *ns);
    if (ns == NULL)
        return -1;
    p->segs = ns;
    seg_t *s = &p->segs[p->n++];
    s->kind = kind;
    s->key = key != NULL ? strndup(key, key_len) : NULL;
    s->key_len = key_len;
    s->index = index;
    return 0;
}

/*
 * Grammar: "$" then any of
 *   .name      name: any bytes except . [ ] ' " and space (UTF-8 allowed)
 *   .*         any member
 *   ..name     name at any depth below
 *   [N] [*]    array element / any element
 *   ['name'] ["name"]  quoted member name (no escapes inside)
 */
static int jpath_parse(const char *path, jpath_t *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (path == NULL || path[0] != '$') {
        snprintf(err, errcap, "a JSON path starts with '$' (like $.user.phone)");
        return -1;
    }
    const char *p = path + 1;
    while (*p != '\0') {
        if (p[0] == '.' && p[1] == '.') {
            p += 2;
            const char *s = p;
            while (*p != '\0' && *p != '.' && *p != '[' && *p != ']' && *p != '\'' && *p != '"' &&
                   *p != ' ')
                p++;
            if (p == s) {
                snprintf(err, errcap, "'..' must be followed by a member name");
                goto fail;
            }
            if (jpath_push(out, SEG_RECURSIVE, s, (size_t)(p - s), 0) != 0)
                goto oom;
        } else if (p[0] == '.') {
            p++;
            if (*p == '*') {
                p++;
                if (jpath_push(out, SEG_ANY_KEY, NULL, 0, 0) != 0)
                    goto oom;
                continue;
            }
            const char *s = p;
            while (*p != '\0' && *p != '.' && *p != '[' && *p != ']' && *p != '\'' && *p != '"' &&
                   *p != ' ')
                p++;
            if (p == s) {
                snprintf(err, errcap, "empty member name after '.'");
                goto fail;
            }
            if (jpath_push(out, SEG_KEY, s, (size_t)(p - s), 0) != 0)
                goto oom;
        } else if (p[0] == '[') {
            p++;
            if (*p == '*' && p[1] == ']') {
                p += 2;
                if (jpath_push(out, SEG_ANY_INDEX, NULL, 0, 0) != 0)
                    goto oom;
            } else if (*p == '\'' || *p == '"') {
                char q = *p++;
                const char *s = p;
                while (*p != '\0' && *p != q)
                    p++;
                if (*p != q || p[1] != ']') {
                    snprintf(err, errcap, "unterminated quoted member name");
                    goto fail;
                }
                if (jpath_push(out, SEG_KEY, s, (size_t)(p - s), 0) != 0)
                    goto oom;
                p += 2;
            } else if (*p >= '0' && *p <= '9') {
                size_t v = 0;
                while (*p >= '0' && *p <= '9') {
                    if (v > 100000000) {
                        snprintf(err, errcap, "array index too large");
                        goto fail;
                    }
                    v = v * 10 + (size_t)(*p++ - '0');
                }
                if (*p != ']') {
                    snprintf(err, errcap, "expected ']' after the array index");
                    goto fail;
                }
                p++;
                if (jpath_push(out, SEG_INDEX, NULL, 0, v) != 0)
                    goto oom;
            } else {
                snprintf(err, errcap, "expected [N], [*] or ['name']");
                goto fail;
            }
        } else {
            snprintf(err, errcap, "unexpected character at offset %zu", (size_t)(p - path));
            goto fail;
        }
    }
    return 0;
oom:
    snprintf(err, errcap, "out of memory");
fail:
    jpath_free(out);
    return -1;
}

int bg_inspect_path_valid(const char *path, char *err, size_t errcap)
{
    jpath_t p;
    if (jpath_parse(path, &p, err, errcap) != 0)
        return -1;
    jpath_free(&p);
    return 0;
}

/* The walker's position: one frame per level. */
typedef struct {
    const char *key; /* NULL for array elements */
    size_t key_len;
    size_t index;
} frame_t;

static int seg_match(const seg_t *s, const frame_t *f)
{
    switch (s->kind) {
    case SEG_KEY:
        return f->key != NULL && f->key_len == s->key_len && memcmp(f->key, s->key, s->key_len) == 0;
    case SEG_INDEX:
        return f->key == NULL && f->index == s->index;
    case SEG_ANY_INDEX:
        return f->key == NULL;
    case SEG_ANY_KEY:
        return f->key != NULL;
    case SEG_RECURSIVE:
        return 0;
    }
    return 0;
}

/* Does pattern segs[si..] match frames[fi..] exactly? */
static int jpath_match_from(const jpath_t *p, size_t si, const frame_t *fr, size_t nf, size_t fi)
{
    while (si < p->n) {
        const seg_t *s = &p->segs[si];
        if (s->kind == SEG_RECURSIVE) {
            /* the named key at this level or any deeper one */
            for (size_t k = fi; k < nf; k++) {
                if (fr[k].key != NULL && fr[k].key_len == s->key_len &&
                    memcmp(fr[k].key, s->key, s->key_len) == 0 &&
                    jpath_match_from(p, si + 1, fr, nf, k + 1))
                    return 1;
            }
            return 0;
        }
        if (fi >= nf || !seg_match(s, &fr[fi]))
            return 0;
        si++;
        fi++;
    }
    return fi == nf;
}

/* ------------------------------------------------------------------------ */
/* Rules                                                                     */

typedef struct {
    char *id;
    jpath_t path; /* n == 0 when key-only */
    char *key;
    size_t key_len;
    bg_detect_cat_t category;
} rule_t;

struct bg_inspect_rules {
    rule_t *rules;
    size_t nrules;
    char **headers;
    size_t nheaders;
    char **cookies;
    size_t ncookies;
    int all_cookies;
    int skip_query;
    bg_detect_conf_t min_conf;
    jpath_t records;
    uint8_t sensitive[BG_CAT__COUNT];
    size_t max_decoded;
};

/* Sensitive PI by default (PIPL Art. 28; GB/T 35273-2020 Annex B; where
 * GB/T 45574-2025 is laxer, e.g. an ID number alone, the stricter reading). */
static const bg_detect_cat_t default_sensitive[] = {
    BG_CAT_CN_RESIDENT_ID, BG_CAT_HMT_RESIDENCE_PERMIT, BG_CAT_BANK_CARD, BG_CAT_GPS_LOCATION,
    BG_CAT_PASSPORT, BG_CAT_HK_ID, BG_CAT_TW_ID, BG_CAT_MO_ID, BG_CAT_MAINLAND_TRAVEL_PERMIT,
    BG_CAT_IDENTITY_DOCUMENT, BG_CAT_PRECISE_LOCATION, BG_CAT_WHEREABOUTS, BG_CAT_BIOMETRICS,
    BG_CAT_HEALTH, BG_CAT_RELIGION, BG_CAT_SPECIFIC_IDENTITY, BG_CAT_SEXUAL_ORIENTATION,
    BG_CAT_CRIMINAL_RECORD, BG_CAT_MINOR_UNDER_14, BG_CAT_FINANCIAL_ACCOUNT,
    BG_CAT_TRANSACTION_RECORD, BG_CAT_CREDENTIALS, BG_CAT_COMMUNICATION_RECORD,
    BG_CAT_BROWSING_HISTORY,
};

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    if (d != NULL)
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return d;
}

bg_inspect_rules_t *bg_inspect_rules_new(const bg_inspect_rules_spec_t *spec, char *err,
                                         size_t errcap)
{
    bg_inspect_rules_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        goto oom;
    r->rules = calloc(spec->nrules + 1, sizeof *r->rules);
    r->headers = calloc(spec->nheaders + 1, sizeof *r->headers);
    r->cookies = calloc(spec->ncookies + 1, sizeof *r->cookies);
    if (r->rules == NULL || r->headers == NULL || r->cookies == NULL)
        goto oom;
    for (size_t i = 0; i < spec->nrules; i++) {
        const bg_field_rule_spec_t *s = &spec->rules[i];
        rule_t *d = &r->rules[r->nrules++];
        d->id = strdup(s->id != NULL ? s->id : "field-rule");
        d->category = s->category;
        if (s->path != NULL) {
            char e[200];
            if (jpath_parse(s->path, &d->path, e, sizeof e) != 0) {
                snprintf(err, errcap, "field rule '%s': path: %s", d->id, e);
                bg_inspect_rules_free(r);
                return NULL;
            }
        }
        if (s->key != NULL) {
            d->key = strdup(s->key);
            d->key_len = strlen(s->key);
        }
    }
    for (size_t i = 0; i < spec->nheaders; i++)
        r->headers[r->nheaders++] = lower_dup(spec->headers[i]);
    for (size_t i = 0; i < spec->ncookies; i++) {
        if (strcmp(spec->cookies[i], "*") == 0)
            r->all_cookies = 1;
        else
            r->cookies[r->ncookies++] = strdup(spec->cookies[i]);
    }
    r->skip_query = spec->skip_query;
    r->min_conf = spec->min_confidence != 0 ? spec->min_confidence : BG_CONF_MEDIUM;
    r->max_decoded = spec->max_decoded_bytes != 0 ? spec->max_decoded_bytes : (64u << 20);
    if (spec->records_path != NULL) {
        char e[200];
        if (jpath_parse(spec->records_path, &r->records, e, sizeof e) != 0 || r->records.n == 0 ||
            r->records.segs[r->records.n - 1].kind != SEG_ANY_INDEX) {
            snprintf(err, errcap, "records path must be a JSON path ending in [*] (like $.events[*])");
            bg_inspect_rules_free(r);
            return NULL;
        }
        for (size_t i = 0; i + 1 < r->records.n; i++) {
            if (r->records.segs[i].kind != SEG_KEY && r->records.segs[i].kind != SEG_INDEX) {
                snprintf(err, errcap, "records path: only names and indexes before the final [*]");
                bg_inspect_rules_free(r);
                return NULL;
            }
        }
    }
    if (spec->sensitive != NULL) {
        memcpy(r->sensitive, spec->sensitive, sizeof r->sensitive);
    } else {
        for (size_t i = 0; i < sizeof default_sensitive / sizeof default_sensitive[0]; i++)
            r->sensitive[default_sensitive[i]] = 1;
    }
    return r;
oom:
    snprintf(err, errcap, "out of memory");
    bg_inspect_rules_free(r);
    return NULL;
}

void bg_inspect_rules_free(bg_inspect_rules_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; r->rules != NULL && i < r->nrules; i++) {
        free(r->rules[i].id);
        free(r->rules[i].key);
        jpath_free(&r->rules[i].path);
    }
    free(r->rules);
    for (size_t i = 0; r->headers != NULL && i < r->nheaders; i++)
        free(r->headers[i]);
    free(r->headers);
    for (size_t i = 0; r->cookies != NULL && i < r->ncookies; i++)
        free(r->cookies[i]);
    free(r->cookies);
    jpath_free(&r->records);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* The inspection                                                            */

typedef enum { N_JSON, N_FIELD, N_HEADER, N_TEXT } node_kind_t;
typedef enum { FS_FORM, FS_QUERY, FS_COOKIE, FS_PART } field_set_t;

typedef struct {
    node_kind_t kind;
    int doc;        /* N_JSON */
    json_t *parent; /* N_JSON: object or array holding the value (borrowed) */
    char *key;      /* N_JSON member name (owned), NULL for elements */
    size_t index;   /* N_JSON element index */
    json_t *value;  /* N_JSON (borrowed from the document) */
    int slot;       /* N_FIELD: fields[] index; N_HEADER: hdrs[] index */
    int record;
} node_t;

typedef struct {
    json_t *root;
    int container_node;  /* string node holding this document, or -1 */
    int container_field; /* multipart part holding it, or -1 */
    int depth;
    int modified;
} doc_t;

typedef struct {
    field_set_t set;
    char *name;
    size_t name_len;
    char *value; /* decoded; rewritten in place at render */
    size_t value_len;
    int removed;
    int modified;
    int cookie_header; /* FS_COOKIE: index into in.headers */
    char *part_head;   /* FS_PART: raw part headers (owned) */
    size_t part_head_len;
    int is_file;
} field_t;

typedef struct {
    size_t header; /* index into in.headers */
    char *name;    /* lowercase */
    char *value;
    size_t value_len;
    int removed, modified;
} hdr_t;

typedef struct {
    bg_op_t op;
    bg_op_keys_t keys;
} pending_t;

struct bg_inspection {
    const bg_inspect_rules_t *rules;
    bg_inspect_input_t in;
    bg_body_kind_t kind;
    char undecodable[200];
    char *decoded; /* inflated body (owned) */
    const char *body;
    size_t body_len;
    char boundary[80];

    doc_t *docs;
    size_t ndocs, capdocs;
    node_t *nodes;
    size_t nnodes, capnodes;
    field_t *fields;
    size_t nfields, capfields;
    hdr_t *hdrs;
    size_t nhdrs, caphdrs;
    bg_finding_t *findings;
    pending_t *pending;
    size_t nfind, capfind;

    char *text; /* BG_BODY_TEXT value (owned copy) */
    size_t text_len;
    int text_modified;

    json_t *records;
    int nrecords;
    int modified;
    int overflow;
};

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : 16;
    void *q = realloc(p, nc * size);
    if (q == NULL)
        return NULL;
    memset((char *)q + *cap * size, 0, (nc - *cap) * size);
    *cap = nc;
    return q;
}

static void set_undecodable(bg_inspection_t *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_undecodable(bg_inspection_t *x, const char *fmt, ...)
{
    va_list ap;
    if (x->kind == BG_BODY_UNDECODABLE)
        return;
    x->kind = BG_BODY_UNDECODABLE;
    va_start(ap, fmt);
    vsnprintf(x->undecodable, sizeof x->undecodable, fmt, ap);
    va_end(ap);
}

/* What a node would be; it is only created when a finding needs it. */
typedef struct {
    node_kind_t kind;
    int doc;
    json_t *parent;
    const char *key;
    size_t key_len;
    size_t index;
    json_t *value;
    int slot;
    int record;
    int node; /* -1 until created */
} node_spec_t;

static int new_node(bg_inspection_t *x, node_kind_t kind)
{
    node_t *nn = grow(x->nodes, &x->capnodes, x->nnodes, sizeof *nn);
    if (nn == NULL)
        return -1;
    x->nodes = nn;
    node_t *n = &x->nodes[x->nnodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->record = -1;
    n->doc = -1;
    n->slot = -1;
    return (int)x->nnodes++;
}

static int ensure_node(bg_inspection_t *x, node_spec_t *sp)
{
    if (sp->node >= 0)
        return sp->node;
    int n = new_node(x, sp->kind);
    if (n < 0)
        return -1;
    node_t *nd = &x->nodes[n];
    nd->doc = sp->doc;
    /* References, not borrows: removing a record or a member must not free
     * a value another finding still points at. */
    nd->parent = sp->parent != NULL ? json_incref(sp->parent) : NULL;
    nd->value = sp->value != NULL ? json_incref(sp->value) : NULL;
    nd->key = sp->key != NULL ? strndup(sp->key, sp->key_len) : NULL;
    nd->index = sp->index;
    nd->slot = sp->slot;
    nd->record = sp->record;
    sp->node = n;
    return n;
}

static bg_finding_t *add_finding(bg_inspection_t *x, node_spec_t *sp, const char *path, bg_loc_t loc,
                                 bg_detect_cat_t cat, bg_detect_conf_t conf, const char *source,
                                 int whole, size_t off, size_t len)
{
    int node = ensure_node(x, sp);
    if (node < 0)
        return NULL;
    if (x->nfind >= MAX_FINDINGS) {
        x->overflow = 1;
        return NULL;
    }
    size_t cap = x->capfind;
    bg_finding_t *nf = grow(x->findings, &cap, x->nfind, sizeof *nf);
    if (nf == NULL)
        return NULL;
    x->findings = nf;
    size_t cap2 = x->capfind;
    pending_t *np = grow(x->pending, &cap2, x->nfind, sizeof *np);
    if (np == NULL)
        return NULL;
    x->pending = np;
    x->capfind = cap;
    bg_finding_t *f = &x->findings[x->nfind++];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    f->loc = loc;
    f->category = cat;
    f->sensitive = cat > BG_CAT_NONE && cat < BG_CAT__COUNT ? x->rules->sensitive[cat] : 0;
    f->confidence = conf;
    f->source = source;
    f->record = x->nodes[node].record;
    f->whole = whole;
    f->span_off = off;
    f->span_len = len;
    f->internal = (unsigned)node;
    return f;
}

/* Key-only categories: a value under such a key is PI whatever it holds. */
static int key_only_category(bg_detect_cat_t c)
{
    return c >= BG_CAT_PERSON_NAME && c < BG_CAT__COUNT;
}

/*
 * Scan one text value at NODE: detectors with the key's hints; when they
 * find nothing, the key's own category (names, addresses, birth dates...).
 */
static void scan_text(bg_inspection_t *x, node_spec_t *node, const char *path, bg_loc_t loc, const char *key,
                      size_t key_len, const char *s, size_t len)
{
    bg_detect_finding_t out[SCAN_CAP];
    bg_detect_key_t ki;
    memset(&ki, 0, sizeof ki);
    if (key != NULL)
        bg_detect_key_info(key, key_len, &ki);
    size_t n = len > 0 ? bg_detect_scan(NULL, &ki, s, len, out, SCAN_CAP) : 0;
    if (n > SCAN_CAP) {
        x->overflow = 1;
        n = SCAN_CAP;
    }
    int reported = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i].confidence < x->rules->min_conf)
            continue;
        int whole = out[i].offset == 0 && out[i].length == len;
        add_finding(x, node, path, loc, out[i].category, out[i].confidence,
                    bg_detect_detector_name(out[i].detector), whole, out[i].offset, out[i].length);
        reported++;
    }
    if (reported == 0 && ki.category != BG_CAT_NONE && len > 0 && ki.confidence >= x->rules->min_conf)
        add_finding(x, node, path, loc, ki.category, ki.confidence, "key", 1, 0, len);
}

static const rule_t *match_rule(const bg_inspection_t *x, const frame_t *fr, size_t nf,
                                const char *key, size_t key_len)
{
    const bg_inspect_rules_t *r = x->rules;
    for (size_t i = 0; i < r->nrules; i++) {
        const rule_t *ru = &r->rules[i];
        if (ru->path.n > 0 && fr != NULL && jpath_match_from(&ru->path, 0, fr, nf, 0))
            return ru;
        if (ru->key != NULL && key != NULL && ru->key_len == key_len &&
            bg_util_ieq(key, key_len, ru->key))
            return ru;
    }
    return NULL;
}

static int add_doc(bg_inspection_t *x, json_t *root, int container_node, int container_field,
                   int depth)
{
    doc_t *nd = grow(x->docs, &x->capdocs, x->ndocs, sizeof *nd);
    if (nd == NULL)
        return -1;
    x->docs = nd;
    doc_t *d = &x->docs[x->ndocs];
    d->root = root;
    d->container_node = container_node;
    d->container_field = container_field;
    d->depth = depth;
    d->modified = 0;
    return (int)x->ndocs++;
}

typedef struct {
    frame_t frames[MAX_DEPTH];
    size_t nframes;
    char path[PATH_MAX_LEN];
    size_t path_len;
} walk_t;

static void walk_value(bg_inspection_t *x, walk_t *w, int doc, json_t *v, json_t *parent,
                       const char *key, size_t key_len, size_t index, const char *hint_key,
                       size_t hint_len, int record);

/* Try STR as a nested JSON document; 1 when it was one (and was walked). */
static int try_nested(bg_inspection_t *x, walk_t *w, int container_node, int container_field,
                      int depth, const char *s, size_t len, int record)
{
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    if (i >= len || (s[i] != '{' && s[i] != '[') || depth >= MAX_NEST)
        return 0;
    json_error_t e;
    json_t *root = json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (root == NULL) {
        if (strstr(e.text, "duplicate") != NULL) {
            /* A duplicate key inside a nested document is as ambiguous as
             * one at the top: fail closed. */
            set_undecodable(x, "duplicate object key in JSON nested in a string at %s", w->path);
            return 1;
        }
        return 0;
    }
    int d = add_doc(x, root, container_node, container_field, depth + 1);
    if (d < 0) {
        json_decref(root);
        return 0;
    }
    size_t saved = w->path_len;
    size_t saved_frames = w->nframes;
    if (w->path_len + 6 < sizeof w->path) {
        memcpy(w->path + w->path_len, "(json)", 7);
        w->path_len += 6;
    }
    /* Paths inside a nested document are matched from its own root. */
    w->nframes = 0;
    walk_value(x, w, d, root, NULL, NULL, 0, 0, NULL, 0, record);
    w->nframes = saved_frames;
    w->path_len = saved;
    w->path[saved] = '\0';
    return 1;
}

static node_spec_t json_spec(int doc, json_t *v, json_t *parent, const char *key, size_t key_len,
                             size_t index, int record)
{
    node_spec_t sp = {N_JSON, doc, parent, key, key_len, index, v, -1, record, -1};
    return sp;
}

static void walk_value(bg_inspection_t *x, walk_t *w, int doc, json_t *v, json_t *parent,
                       const char *key, size_t key_len, size_t index, const char *hint_key,
                       size_t hint_len, int record)
{
    if (x->overflow || x->kind == BG_BODY_UNDECODABLE)
        return;
    if (w->nframes >= MAX_DEPTH) {
        set_undecodable(x, "JSON nested deeper than %s levels", "64");
        return;
    }
    const rule_t *ru = parent != NULL || w->nframes > 0
                           ? match_rule(x, w->frames, w->nframes, key, key_len)
                           : NULL;
    if (ru != NULL) {
        if (!json_is_null(v)) {
            node_spec_t sp = json_spec(doc, v, parent, key, key_len, index, record);
            add_finding(x, &sp, w->path, BG_LOC_BODY, ru->category, BG_CONF_HIGH, ru->id, 1, 0,
                        json_is_string(v) ? json_string_length(v) : 0);
        }
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (key != NULL) {
            bg_detect_cat_t kc = bg_detect_key_category(key, key_len);
            if (key_only_category(kc) && json_object_size(v) > 0) {
                node_spec_t sp = json_spec(doc, v, parent, key, key_len, index, record);
                add_finding(x, &sp, w->path, BG_LOC_BODY, kc, BG_CONF_HIGH, "key", 1, 0, 0);
                return;
            }
        }
        const char *k;
        json_t *child;
        void *iter;
        json_object_foreach_safe(v, iter, k, child) {
            size_t kl = strlen(k);
            size_t saved = w->path_len;
            w->path_len = bg_jsonpos_path_append_key(w->path, sizeof w->path, w->path_len, k);
            if (w->path_len >= sizeof w->path)
                w->path_len = sizeof w->path - 1;
            w->frames[w->nframes].key = k;
            w->frames[w->nframes].key_len = kl;
            w->nframes++;
            walk_value(x, w, doc, child, v, k, kl, 0, k, kl, record);
            w->nframes--;
            w->path_len = saved;
            w->path[saved] = '\0';
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;
        int is_records = v == x->records;
        json_array_foreach(v, i, child) {
            size_t saved = w->path_len;
            w->path_len = bg_jsonpos_path_append_index(w->path, sizeof w->path, w->path_len, i);
            if (w->path_len >= sizeof w->path)
                w->path_len = sizeof w->path - 1;
            w->frames[w->nframes].key = NULL;
            w->frames[w->nframes].key_len = 0;
            w->frames[w->nframes].index = i;
            w->nframes++;
            /* Elements inherit the array's key for hints ("phones": [...]). */
            walk_value(x, w, doc, child, v, NULL, 0, i, hint_key, hint_len,
                       is_records ? (int)i : record);
            w->nframes--;
            w->path_len = saved;
            w->path[saved] = '\0';
        }
        break;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        node_spec_t sp = json_spec(doc, v, parent, key, key_len, index, record);
        if (len > 1 && (s[0] == '{' || s[0] == '[' || s[0] == ' ' || s[0] == '\n')) {
            /* The container node must exist before the nested walk. */
            int n = ensure_node(x, &sp);
            if (n >= 0 && try_nested(x, w, n, -1, x->docs[doc].depth, s, len, record))
                return;
        }
        scan_text(x, &sp, w->path, BG_LOC_BODY, hint_key, hint_len, s, len);
        break;
    }
    case JSON_INTEGER: {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        node_spec_t sp = json_spec(doc, v, parent, key, key_len, index, record);
        scan_text(x, &sp, w->path, BG_LOC_BODY, hint_key, hint_len, buf, (size_t)len);
        break;
    }
    case JSON_REAL: {
        if (hint_key != NULL) {
            bg_detect_cat_t kc = bg_detect_key_category(hint_key, hint_len);
            if (kc != BG_CAT_NONE) {
                node_spec_t sp = json_spec(doc, v, parent, key, key_len, index, record);
                add_finding(x, &sp, w->path, BG_LOC_BODY, kc, BG_CONF_HIGH, "key", 1, 0, 0);
            }
        }
        break;
    }
    default:
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Decoders                                                                  */

static const bg_http_header_t *find_hdr(const bg_inspect_input_t *in, const char *name)
{
    return bg_http_find_header(in->headers, in->nheaders, name);
}

/* Inflate gzip/zlib (WINDOW 15+32) or raw deflate (-15) into *OUT. */
static int inflate_body(const char *in, size_t len, int window, size_t max, char **out,
                        size_t *outlen, const char **why)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, window) != Z_OK) {
        *why = "cannot initialise zlib";
        return -1;
    }
    size_t cap = len * 4 + 1024, n = 0;
    if (cap > max + 1)
        cap = max + 1;
    char *buf = malloc(cap);
    if (buf == NULL) {
        inflateEnd(&zs);
        *why = "out of memory";
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    int rc;
    do {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                inflateEnd(&zs);
                *why = "decoded body larger than the inspection limit";
                return -1;
            }
            size_t nc = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, nc);
            if (nb == NULL) {
                free(buf);
                inflateEnd(&zs);
                *why = "out of memory";
                return -1;
            }
            buf = nb;
            cap = nc;
        }
        zs.next_out = (Bytef *)buf + n;
        zs.avail_out = (uInt)(cap - n);
        rc = inflate(&zs, Z_NO_FLUSH);
        n = cap - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            free(buf);
            inflateEnd(&zs);
            *why = "corrupt compressed body";
            return -1;
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && zs.avail_out > 0) {
            free(buf);
            inflateEnd(&zs);
            *why = "truncated compressed body";
            return -1;
        }
    } while (rc != Z_STREAM_END);
    if (n > max || zs.avail_in != 0) {
        free(buf);
        inflateEnd(&zs);
        *why = n > max ? "decoded body larger than the inspection limit"
                       : "data after the end of the compressed body";
        return -1;
    }
    inflateEnd(&zs);
    *out = buf;
    *outlen = n;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode S (LEN) into a new string; PLUS decodes '+' as space. */
static char *pct_decode(const char *s, size_t len, int plus, size_t *outlen)
{
    char *o = malloc(len + 1);
    size_t n = 0;
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < len ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(o);
                return NULL;
            }
            o[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '+' && plus) {
            o[n++] = ' ';
        } else {
            o[n++] = s[i];
        }
    }
    o[n] = '\0';
    *outlen = n;
    return o;
}

static int add_field(bg_inspection_t *x, field_set_t set, const char *name, size_t nl,
                     const char *value, size_t vl, int decode, int plus)
{
    field_t *nf = grow(x->fields, &x->capfields, x->nfields, sizeof *nf);
    if (nf == NULL)
        return -1;
    x->fields = nf;
    field_t *f = &x->fields[x->nfields];
    memset(f, 0, sizeof *f);
    f->set = set;
    f->cookie_header = -1;
    if (decode) {
        f->name = pct_decode(name, nl, plus, &f->name_len);
        f->value = pct_decode(value, vl, plus, &f->value_len);
        if (f->name == NULL || f->value == NULL) {
            free(f->name);
            free(f->value);
            return -2;
        }
    } else {
        f->name = strndup(name, nl);
        f->name_len = nl;
        f->value = malloc(vl + 1);
        if (f->name == NULL || f->value == NULL) {
            free(f->name);
            free(f->value);
            return -1;
        }
        memcpy(f->value, value, vl);
        f->value[vl] = '\0';
        f->value_len = vl;
    }
    return (int)x->nfields++;
}

/* Split "a=1&b=2" into fields of SET. -1 on bad percent-encoding. */
static int parse_urlencoded(bg_inspection_t *x, field_set_t set, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && s[e] != '&')
            e++;
        if (e > i) {
            const char *eq = memchr(s + i, '=', e - i);
            size_t nl = eq != NULL ? (size_t)(eq - (s + i)) : e - i;
            const char *v = eq != NULL ? eq + 1 : s + e;
            size_t vl = eq != NULL ? (size_t)(s + e - v) : 0;
            if (add_field(x, set, s + i, nl, v, vl, 1, 1) < 0)
                return -1;
        }
        i = e + 1;
    }
    return 0;
}

static const char *field_prefix(field_set_t set)
{
    switch (set) {
    case FS_FORM: return "form.";
    case FS_QUERY: return "query.";
    case FS_COOKIE: return "cookie.";
    case FS_PART: return "multipart.";
    }
    return "";
}

/* Build "form.NAME" (NAME escaped for display: no control characters). */
static void field_path(const field_t *f, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "%s", field_prefix(f->set));
    for (size_t i = 0; i < f->name_len && n + 2 < cap; i++) {
        unsigned char c = (unsigned char)f->name[i];
        out[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[n] = '\0';
}

static void scan_field(bg_inspection_t *x, int fi)
{
    field_t *f = &x->fields[fi];
    char path[PATH_MAX_LEN];
    if (f->is_file)
        return;
    field_path(f, path, sizeof path);
    node_spec_t n = {N_FIELD, -1, NULL, NULL, 0, 0, NULL, fi, -1, -1};
    bg_loc_t loc = f->set == FS_QUERY ? BG_LOC_QUERY : f->set == FS_COOKIE ? BG_LOC_COOKIE : BG_LOC_BODY;
    const rule_t *ru = match_rule(x, NULL, 0, f->name, f->name_len);
    if (ru != NULL) {
        if (f->value_len > 0)
            add_finding(x, &n, path, loc, ru->category, BG_CONF_HIGH, ru->id, 1, 0, f->value_len);
        return;
    }
    if (f->set == FS_PART || f->set == FS_FORM) {
        /* A JSON value inside a form field or part is a document of its own. */
        walk_t w;
        memset(&w, 0, sizeof w);
        w.path_len = strlen(path);
        memcpy(w.path, path, w.path_len + 1);
        if (try_nested(x, &w, -1, fi, 0, f->value, f->value_len, -1))
            return;
    }
    scan_text(x, &n, path, loc, f->name, f->name_len, f->value, f->value_len);
}

static int parse_cookies(bg_inspection_t *x)
{
    const bg_inspect_rules_t *r = x->rules;
    if (!r->all_cookies && r->ncookies == 0)
        return 0;
    for (size_t h = 0; h < x->in.nheaders; h++) {
        const bg_http_header_t *hd = &x->in.headers[h];
        if (!bg_util_ieq(hd->name, hd->name_len, "cookie"))
            continue;
        const char *s = hd->value;
        size_t len = hd->value_len, i = 0;
        while (i < len) {
            while (i < len && (s[i] == ' ' || s[i] == ';'))
                i++;
            size_t e = i;
            while (e < len && s[e] != ';')
                e++;
            const char *eq = memchr(s + i, '=', e - i);
            if (eq != NULL) {
                size_t nl = (size_t)(eq - (s + i));
                int wanted = r->all_cookies;
                for (size_t k = 0; !wanted && k < r->ncookies; k++)
                    wanted = strlen(r->cookies[k]) == nl && memcmp(r->cookies[k], s + i, nl) == 0;
                int fi = add_field(x, FS_COOKIE, s + i, nl, eq + 1, (size_t)(s + e - eq - 1), 0, 0);
                if (fi < 0)
                    return -1;
                x->fields[fi].cookie_header = (int)h;
                if (wanted)
                    scan_field(x, fi);
            }
            i = e + 1;
        }
    }
    return 0;
}

static void scan_headers(bg_inspection_t *x)
{
    const bg_inspect_rules_t *r = x->rules;
    for (size_t h = 0; h < x->in.nheaders; h++) {
        const bg_http_header_t *hd = &x->in.headers[h];
        int wanted = 0;
        for (size_t k = 0; !wanted && k < r->nheaders; k++)
            wanted = bg_util_ieq(hd->name, hd->name_len, r->headers[k]);
        if (!wanted)
            continue;
        hdr_t *nh = grow(x->hdrs, &x->caphdrs, x->nhdrs, sizeof *nh);
        if (nh == NULL)
            return;
        x->hdrs = nh;
        hdr_t *e = &x->hdrs[x->nhdrs];
        memset(e, 0, sizeof *e);
        e->header = h;
        e->name = strndup(hd->name, hd->name_len);
        for (char *p = e->name; p != NULL && *p; p++)
            *p = (char)tolower((unsigned char)*p);
        e->value = strndup(hd->value, hd->value_len);
        e->value_len = hd->value_len;
        if (e->name == NULL || e->value == NULL) {
            free(e->name);
            free(e->value);
            return;
        }
        int slot = (int)x->nhdrs++;
        node_spec_t n = {N_HEADER, -1, NULL, NULL, 0, 0, NULL, slot, -1, -1};
        char path[300];
        snprintf(path, sizeof path, "header.%s", e->name);
        const rule_t *ru = match_rule(x, NULL, 0, e->name, strlen(e->name));
        if (ru != NULL)
            add_finding(x, &n, path, BG_LOC_HEADER, ru->category, BG_CONF_HIGH, ru->id, 1, 0,
                        e->value_len);
        else
            scan_text(x, &n, path, BG_LOC_HEADER, e->name, strlen(e->name), e->value, e->value_len);
    }
}

/* Media type of Content-Type, lowercased, without parameters. */
static void media_type(const bg_inspect_input_t *in, char *out, size_t cap, const char **params)
{
    const bg_http_header_t *ct = find_hdr(in, "content-type");
    size_t n = 0;
    *params = NULL;
    out[0] = '\0';
    if (ct == NULL)
        return;
    for (size_t i = 0; i < ct->value_len && n + 1 < cap; i++) {
        char c = ct->value[i];
        if (c == ';') {
            *params = ct->value + i + 1;
            break;
        }
        if (c != ' ' && c != '\t')
            out[n++] = (char)tolower((unsigned char)c);
    }
    out[n] = '\0';
}

/* The boundary parameter of multipart/form-data. */
static int boundary_param(const bg_inspect_input_t *in, const char *params, char *out, size_t cap)
{
    const bg_http_header_t *ct = find_hdr(in, "content-type");
    if (params == NULL || ct == NULL)
        return -1;
    const char *end = ct->value + ct->value_len;
    const char *p = params;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ';'))
            p++;
        if ((size_t)(end - p) > 9 && bg_util_iprefix(p, (size_t)(end - p), "boundary=")) {
            p += 9;
            const char *s = p;
            size_t n;
            if (*p == '"') {
                s = ++p;
                while (p < end && *p != '"')
                    p++;
            } else {
                while (p < end && *p != ';' && *p != ' ')
                    p++;
            }
            n = (size_t)(p - s);
            if (n == 0 || n + 1 > cap || n > 70)
                return -1;
            memcpy(out, s, n);
            out[n] = '\0';
            return 0;
        }
        while (p < end && *p != ';')
            p++;
    }
    return -1;
}

/* Case-insensitive search of NEEDLE in H[0..HL). */
static const char *imemmem(const char *h, size_t hl, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= hl; i++)
        if (bg_util_iprefix(h + i, hl - i, needle))
            return h + i;
    return NULL;
}

/* Value of PARAM="..." in a Content-Disposition header block. */
static int disposition_param(const char *head, size_t hl, const char *param, const char **v,
                             size_t *vl)
{
    const char *cd = imemmem(head, hl, "content-disposition:");
    if (cd == NULL)
        return -1;
    const char *line_end = memchr(cd, '\r', (size_t)(head + hl - cd));
    if (line_end == NULL)
        line_end = head + hl;
    char pat[32];
    snprintf(pat, sizeof pat, "; %s=", param);
    const char *p = imemmem(cd, (size_t)(line_end - cd), pat);
    if (p == NULL) {
        snprintf(pat, sizeof pat, ";%s=", param);
        p = imemmem(cd, (size_t)(line_end - cd), pat);
        if (p == NULL)
            return -1;
    }
    p += strlen(pat);
    if (p < line_end && *p == '"') {
        const char *s = ++p;
        while (p < line_end && *p != '"')
            p++;
        *v = s;
        *vl = (size_t)(p - s);
    } else {
        const char *s = p;
        while (p < line_end && *p != ';')
            p++;
        *v = s;
        *vl = (size_t)(p - s);
    }
    return 0;
}

static int parse_multipart(bg_inspection_t *x)
{
    char delim[90];
    int dl = snprintf(delim, sizeof delim, "--%s", x->boundary);
    const char *b = x->body, *end = x->body + x->body_len;
    const char *p = memmem(b, x->body_len, delim, (size_t)dl);
    if (p == NULL)
        return -1;
    p += dl;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return 0; /* closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return -1;
        p += 2;
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (hend == NULL)
            return -1;
        char dl2[94];
        int dl2n = snprintf(dl2, sizeof dl2, "\r\n--%s", x->boundary);
        const char *body = hend + 4;
        const char *next = memmem(body, (size_t)(end - body), dl2, (size_t)dl2n);
        if (next == NULL)
            return -1;
        const char *name = NULL, *fname = NULL;
        size_t nl = 0, fnl = 0;
        if (disposition_param(p, (size_t)(hend - p), "name", &name, &nl) != 0)
            name = "", nl = 0;
        int is_file = disposition_param(p, (size_t)(hend - p), "filename", &fname, &fnl) == 0;
        const char *ct = imemmem(p, (size_t)(hend - p), "content-type:");
        int textual = 1;
        if (ct != NULL) {
            ct += 13;
            while (*ct == ' ')
                ct++;
            textual = bg_util_iprefix(ct, (size_t)(hend - ct), "text/") ||
                      bg_util_iprefix(ct, (size_t)(hend - ct), "application/json") ||
                      bg_util_iprefix(ct, (size_t)(hend - ct), "application/x-www-form-urlencoded");
        }
        int fi = add_field(x, FS_PART, name, nl, body, (size_t)(next - body), 0, 0);
        if (fi < 0)
            return -1;
        field_t *f = &x->fields[fi];
        f->part_head = strndup(p, (size_t)(hend - p));
        f->part_head_len = (size_t)(hend - p);
        f->is_file = is_file && !textual;
        scan_field(x, fi);
        p = next + dl2n;
    }
}

/* Resolve the records array: names/indexes down to the final [*]. */
static void find_records(bg_inspection_t *x)
{
    const jpath_t *rp = &x->rules->records;
    if (rp->n == 0 || x->ndocs == 0)
        return;
    json_t *v = x->docs[0].root;
    for (size_t i = 0; i + 1 < rp->n && v != NULL; i++) {
        const seg_t *s = &rp->segs[i];
        if (s->kind == SEG_KEY) {
            char *k = s->key;
            v = json_is_object(v) ? json_object_get(v, k) : NULL;
        } else {
            v = json_is_array(v) ? json_array_get(v, s->index) : NULL;
        }
    }
    if (v != NULL && json_is_array(v)) {
        x->records = v;
        x->nrecords = (int)json_array_size(v);
    }
}

bg_inspection_t *bg_inspect(const bg_inspect_rules_t *rules, const bg_inspect_input_t *in)
{
    bg_inspection_t *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    x->rules = rules;
    x->in = *in;
    x->body = in->body;
    x->body_len = in->body_len;

    /* Query string. */
    const char *q = memchr(in->target, '?', in->target_len);
    if (q != NULL && !rules->skip_query) {
        size_t ql = in->target_len - (size_t)(q + 1 - in->target);
        const char *hash = memchr(q + 1, '#', ql);
        if (hash != NULL)
            ql = (size_t)(hash - q - 1);
        size_t first = x->nfields;
        if (parse_urlencoded(x, FS_QUERY, q + 1, ql) != 0) {
            set_undecodable(x, "malformed percent-encoding in the %s", "query string");
        } else {
            for (size_t i = first; i < x->nfields; i++)
                scan_field(x, (int)i);
        }
    }
    scan_headers(x);
    if (parse_cookies(x) != 0)
        set_undecodable(x, "malformed %s header", "Cookie");

    if (in->body_len == 0) {
        if (x->kind != BG_BODY_UNDECODABLE)
            x->kind = BG_BODY_NONE;
        goto done;
    }
    const bg_http_header_t *ce = find_hdr(in, "content-encoding");
    if (ce != NULL && !bg_util_ieq(ce->value, ce->value_len, "identity")) {
        int window;
        if (bg_util_ieq(ce->value, ce->value_len, "gzip") || bg_util_ieq(ce->value, ce->value_len, "x-gzip"))
            window = 15 + 16;
        else if (bg_util_ieq(ce->value, ce->value_len, "deflate"))
            window = 15; /* zlib wrapper per RFC 9110; raw deflate tried below */
        else {
            set_undecodable(x, "unsupported Content-Encoding (%s)", "only gzip and deflate are decoded");
            goto done;
        }
        const char *why = NULL;
        size_t dl = 0;
        if (inflate_body(in->body, in->body_len, window, rules->max_decoded, &x->decoded, &dl, &why) != 0) {
            if (window == 15 &&
                inflate_body(in->body, in->body_len, -15, rules->max_decoded, &x->decoded, &dl, &why) == 0)
                goto inflated;
            set_undecodable(x, "Content-Encoding: %s", why);
            goto done;
        }
    inflated:
        x->body = x->decoded;
        x->body_len = dl;
    }

    char mt[128];
    const char *params;
    media_type(in, mt, sizeof mt, &params);
    size_t mtl = strlen(mt);
    int json_type = strcmp(mt, "application/json") == 0 || strcmp(mt, "text/json") == 0 ||
                    (mtl > 5 && strcmp(mt + mtl - 5, "+json") == 0);
    if (mt[0] == '\0') {
        /* No Content-Type: sniff rather than skip (fail towards looking). */
        size_t i = 0;
        while (i < x->body_len && isspace((unsigned char)x->body[i]))
            i++;
        json_type = i < x->body_len && (x->body[i] == '{' || x->body[i] == '[');
        if (!json_type)
            strcpy(mt, memchr(x->body, '=', x->body_len) != NULL && memchr(x->body, ' ', x->body_len) == NULL
                           ? "application/x-www-form-urlencoded"
                           : "text/plain");
    }
    if (json_type) {
        json_error_t e;
        json_t *root = json_loadb(x->body, x->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
        if (root == NULL) {
            char why[160];
            snprintf(why, sizeof why, "invalid JSON at line %d column %d (%s)", e.line, e.column,
                     strstr(e.text, "duplicate") ? "duplicate object key" : "syntax");
            set_undecodable(x, "%s", why);
            goto done;
        }
        x->kind = BG_BODY_JSON;
        int d = add_doc(x, root, -1, -1, 0);
        if (d < 0) {
            json_decref(root);
            set_undecodable(x, "%s", "out of memory");
            goto done;
        }
        find_records(x);
        walk_t w;
        memset(&w, 0, sizeof w);
        w.path[0] = '$';
        w.path_len = 1;
        walk_value(x, &w, d, root, NULL, NULL, 0, 0, NULL, 0, -1);
    } else if (strcmp(mt, "application/x-www-form-urlencoded") == 0) {
        x->kind = BG_BODY_FORM;
        size_t first = x->nfields;
        if (parse_urlencoded(x, FS_FORM, x->body, x->body_len) != 0) {
            set_undecodable(x, "malformed percent-encoding in the %s", "form body");
            goto done;
        }
        for (size_t i = first; i < x->nfields; i++)
            scan_field(x, (int)i);
    } else if (strcmp(mt, "multipart/form-data") == 0) {
        x->kind = BG_BODY_MULTIPART;
        if (boundary_param(in, params, x->boundary, sizeof x->boundary) != 0 ||
            parse_multipart(x) != 0)
            set_undecodable(x, "malformed %s body", "multipart/form-data");
    } else if (strncmp(mt, "text/", 5) == 0 || strcmp(mt, "application/xml") == 0) {
        x->kind = BG_BODY_TEXT;
        x->text = malloc(x->body_len + 1);
        if (x->text == NULL) {
            set_undecodable(x, "%s", "out of memory");
            goto done;
        }
        memcpy(x->text, x->body, x->body_len);
        x->text[x->body_len] = '\0';
        x->text_len = x->body_len;
        node_spec_t n = {N_TEXT, -1, NULL, NULL, 0, 0, NULL, -1, -1, -1};
        scan_text(x, &n, "body", BG_LOC_BODY, NULL, 0, x->text, x->text_len);
    } else {
        x->kind = BG_BODY_OTHER;
    }
done:
    if (x->overflow)
        set_undecodable(x, "%s", "too many findings to inspect reliably");
    return x;
}

bg_body_kind_t bg_inspection_body_kind(const bg_inspection_t *x) { return x->kind; }
const char *bg_inspection_undecodable(const bg_inspection_t *x)
{
    return x->kind == BG_BODY_UNDECODABLE ? x->undecodable : NULL;
}
size_t bg_inspection_count(const bg_inspection_t *x) { return x->nfind; }
bg_finding_t *bg_inspection_finding(bg_inspection_t *x, size_t i)
{
    return i < x->nfind ? &x->findings[i] : NULL;
}
int bg_inspection_records(const bg_inspection_t *x) { return x->nrecords; }
int bg_inspection_modified(const bg_inspection_t *x) { return x->modified; }

const char *bg_body_kind_name(bg_body_kind_t k)
{
    static const char *const names[] = {"none", "json", "form", "multipart", "text", "other",
                                        "undecodable"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

void bg_inspection_free(bg_inspection_t *x)
{
    if (x == NULL)
        return;
    for (size_t i = 0; i < x->nfind; i++)
        free(x->findings[i].path);
    free(x->findings);
    free(x->pending);
    for (size_t i = 0; i < x->nnodes; i++) {
        free(x->nodes[i].key);
        json_decref(x->nodes[i].parent);
        json_decref(x->nodes[i].value);
    }
    free(x->nodes);
    for (size_t i = 0; i < x->ndocs; i++)
        json_decref(x->docs[i].root);
    free(x->docs);
    for (size_t i = 0; i < x->nfields; i++) {
        free(x->fields[i].name);
        free(x->fields[i].value);
        free(x->fields[i].part_head);
    }
    free(x->fields);
    for (size_t i = 0; i < x->nhdrs; i++) {
        free(x->hdrs[i].name);
        free(x->hdrs[i].value);
    }
    free(x->hdrs);
    free(x->text);
    free(x->decoded);
    free(x);
}

/* ------------------------------------------------------------------------ */
/* Values (subject ids, references, birth dates)                            */

static json_t *json_at(json_t *root, const char *path)
{
    jpath_t p;
    char err[100];
    if (jpath_parse(path, &p, err, sizeof err) != 0)
        return NULL;
    json_t *v = root;
    for (size_t i = 0; i < p.n && v != NULL; i++) {
        const seg_t *s = &p.segs[i];
        if (s->kind == SEG_KEY)
            v = json_is_object(v) ? json_object_get(v, s->key) : NULL;
        else if (s->kind == SEG_INDEX)
            v = json_is_array(v) ? json_array_get(v, s->index) : NULL;
        else
            v = NULL; /* wildcards select no single value */
    }
    jpath_free(&p);
    return v;
}

static int scalar_text(json_t *v, char *out, size_t cap)
{
    if (v == NULL || cap == 0)
        return -1;
    if (json_is_string(v))
        return snprintf(out, cap, "%s", json_string_value(v));
    if (json_is_integer(v))
        return snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return snprintf(out, cap, "%.17g", json_real_value(v));
    return -1;
}

int bg_inspection_value(const bg_inspection_t *x, const char *path, int record, char *out,
                        size_t cap)
{
    static const struct {
        const char *prefix;
        field_set_t set;
    } sets[] = {{"query.", FS_QUERY}, {"form.", FS_FORM}, {"cookie.", FS_COOKIE},
                {"multipart.", FS_PART}};
    if (path[0] == '$') {
        if (x->ndocs == 0 || x->docs[0].container_node >= 0)
            return -1;
        json_t *root = x->docs[0].root;
        if (record >= 0) {
            if (x->records == NULL || (size_t)record >= json_array_size(x->records))
                return -1;
            root = json_array_get(x->records, (size_t)record);
        }
        return scalar_text(json_at(root, path), out, cap);
    }
    if (strncmp(path, "header.", 7) == 0) {
        const bg_http_header_t *h = find_hdr(&x->in, path + 7);
        if (h == NULL)
            return -1;
        return snprintf(out, cap, "%.*s", (int)h->value_len, h->value);
    }
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        size_t pl = strlen(sets[k].prefix);
        if (strncmp(path, sets[k].prefix, pl) != 0)
            continue;
        const char *name = path + pl;
        for (size_t i = 0; i < x->nfields; i++) {
            const field_t *f = &x->fields[i];
            if (f->set == sets[k].set && f->name_len == strlen(name) &&
                memcmp(f->name, name, f->name_len) == 0)
                return snprintf(out, cap, "%.*s", (int)f->value_len, f->value);
        }
        /* Cookies are only split when inspected; look in the raw header too. */
        if (sets[k].set == FS_COOKIE) {
            const bg_http_header_t *h = find_hdr(&x->in, "cookie");
            size_t nl = strlen(name);
            for (const char *p = h ? h->value : NULL; p != NULL && p < h->value + h->value_len;) {
                const char *end = memchr(p, ';', (size_t)(h->value + h->value_len - p));
                if (end == NULL)
                    end = h->value + h->value_len;
                while (p < end && *p == ' ')
                    p++;
                if ((size_t)(end - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
                    return snprintf(out, cap, "%.*s", (int)(end - p - nl - 1), p + nl + 1);
                p = end + 1;
            }
        }
        return -1;
    }
    return -1;
}

/* Current text of a node's value, or NULL (non-text JSON values). */
static const char *node_text(const bg_inspection_t *x, const node_t *n, size_t *len)
{
    switch (n->kind) {
    case N_JSON:
        if (json_is_string(n->value)) {
            *len = json_string_length(n->value);
            return json_string_value(n->value);
        }
        return NULL;
    case N_FIELD:
        *len = x->fields[n->slot].value_len;
        return x->fields[n->slot].value;
    case N_HEADER:
        *len = x->hdrs[n->slot].value_len;
        return x->hdrs[n->slot].value;
    case N_TEXT:
        *len = x->text_len;
        return x->text;
    }
    return NULL;
}

int bg_inspection_finding_value(const bg_inspection_t *x, const bg_finding_t *f, char *out,
                                size_t cap)
{
    const node_t *n = &x->nodes[f->internal];
    size_t len;
    const char *s = node_text(x, n, &len);
    if (s == NULL) {
        if (n->kind == N_JSON && json_is_integer(n->value))
            return snprintf(out, cap, "%lld", (long long)json_integer_value(n->value));
        return -1;
    }
    if (!f->whole && f->span_off + f->span_len <= len) {
        s += f->span_off;
        len = f->span_len;
    }
    return snprintf(out, cap, "%.*s", (int)len, s);
}

/* ------------------------------------------------------------------------ */
/* Operators                                                                 */

static const char *const op_names[] = {"redact", "mask", "hash", "tokenize", "generalize", "replace"};

const char *bg_op_name(bg_op_kind_t k)
{
    return (unsigned)k < sizeof op_names / sizeof op_names[0] ? op_names[k] : "?";
}

int bg_op_parse(const char *name, bg_op_kind_t *out)
{
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++) {
        if (strcmp(name, op_names[i]) == 0) {
            *out = (bg_op_kind_t)i;
            return 0;
        }
    }
    return -1;
}

int bg_op_anonymizes(bg_op_kind_t k)
{
    return k == BG_OP_REDACT || k == BG_OP_GENERALIZE || k == BG_OP_REPLACE;
}

int bg_inspection_apply(bg_inspection_t *x, size_t i, const bg_op_t *op, const bg_op_keys_t *keys,
                        char *err, size_t errcap)
{
    if (i >= x->nfind) {
        snprintf(err, errcap, "no such finding");
        return -1;
    }
    if (op->kind == BG_OP_HASH && (keys == NULL || keys->hash_key == NULL)) {
        snprintf(err, errcap, "the hash operator needs a pseudonym key (keys.pseudonym)");
        return -1;
    }
    if (op->kind == BG_OP_TOKENIZE && (keys == NULL || keys->token_key == NULL)) {
        snprintf(err, errcap, "the tokenize operator needs a token key (keys.token)");
        return -1;
    }
    bg_finding_t *f = &x->findings[i];
    x->pending[i].op = *op;
    if (keys != NULL)
        x->pending[i].keys = *keys;
    f->applied = 1;
    f->op = bg_op_name(op->kind);
    f->anonymized = bg_op_anonymizes(op->kind);
    x->modified = 1;
    return 0;
}

int bg_inspection_remove_record(bg_inspection_t *x, int record)
{
    if (x->records == NULL || record < 0 || record >= x->nrecords)
        return -1;
    for (size_t i = 0; i < x->nfind; i++) {
        if (x->findings[i].record == record) {
            x->findings[i].removed = 1;
            x->findings[i].anonymized = 1;
            x->findings[i].op = "remove_record";
        }
    }
    x->modified = 1;
    x->docs[0].modified = 1;
    /* Marked now, swept at render (indexes of other records stay valid). */
    json_t *mark = json_object();
    json_object_set_new(mark, "\x01bordergate-removed", json_true());
    json_array_set_new(x->records, (size_t)record, mark);
    return 0;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

static int b64url_decode(const char *s, unsigned char *out, size_t cap)
{
    size_t n = 0;
    unsigned v = 0;
    int bits = 0;
    for (; *s; s++) {
        int c = *s, d;
        if (c >= 'A' && c <= 'Z') d = c - 'A';
        else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
        else if (c >= '0' && c <= '9') d = c - '0' + 52;
        else if (c == '-') d = 62;
        else if (c == '_') d = 63;
        else return -1;
        v = v << 6 | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (unsigned char)(v >> bits);
        }
    }
    return (int)n;
}

/* Generalize S as its category allows; NULL when it does not apply. */
static char *generalize(bg_detect_cat_t cat, const char *s, size_t len, const bg_op_t *op)
{
    char buf[128];
    if (len >= sizeof buf)
        return NULL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    int dec = op->decimals > 0 ? op->decimals : 2;
    if (cat == BG_CAT_GPS_LOCATION || cat == BG_CAT_PRECISE_LOCATION || cat == BG_CAT_WHEREABOUTS) {
        double a, b;
        char sep[2];
        if (sscanf(buf, "%lf %1[,;] %lf", &a, sep, &b) == 3) {
            char *o = malloc(64);
            if (o != NULL)
                snprintf(o, 64, "%.*f%c%.*f", dec, a, sep[0], dec, b);
            return o;
        }
        char *end;
        double v = strtod(buf, &end);
        if (end != buf && *end == '\0') {
            char *o = malloc(40);
            if (o != NULL)
                snprintf(o, 40, "%.*f", dec, v);
            return o;
        }
        return NULL;
    }
    if (cat == BG_CAT_IP_ADDRESS) {
        unsigned char a[16];
        char *o = malloc(64);
        if (o == NULL)
            return NULL;
        if (inet_pton(AF_INET, buf, a) == 1) {
            int bits = op->ipv4_prefix > 0 && op->ipv4_prefix <= 32 ? op->ipv4_prefix : 24;
            for (int i = 0; i < 4; i++) {
                int keep = bits - i * 8;
                a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
            }
            inet_ntop(AF_INET, a, o, 64);
            return o;
        }
        if (inet_pton(AF_INET6, buf, a) == 1) {
            int bits = op->ipv6_prefix > 0 && op->ipv6_prefix <= 128 ? op->ipv6_prefix : 48;
            for (int i = 0; i < 16; i++) {
                int keep = bits - i * 8;
                a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
            }
            inet_ntop(AF_INET6, a, o, 64);
            return o;
        }
        free(o);
        return NULL;
    }
    if (cat == BG_CAT_BIRTH_DATE) {
        if (len >= 4 && isdigit((unsigned char)buf[0]) && isdigit((unsigned char)buf[1]) &&
            isdigit((unsigned char)buf[2]) && isdigit((unsigned char)buf[3]))
            return strndup(buf, 4);
        return NULL;
    }
    if (cat == BG_CAT_AGE) {
        char *end;
        long age = strtol(buf, &end, 10);
        if (end != buf && *end == '\0' && age >= 0 && age < 200) {
            char *o = malloc(32);
            if (o != NULL)
                snprintf(o, 32, "%ld-%ld", age / 10 * 10, age / 10 * 10 + 9);
            return o;
        }
    }
    return NULL;
}

/* The replacement text of S[0..LEN) under P's operator; NULL for redact. */
static char *op_text(const pending_t *p, bg_detect_cat_t cat, const char *s, size_t len, int *drop)
{
    const bg_op_t *op = &p->op;
    *drop = 0;
    switch (op->kind) {
    case BG_OP_REDACT:
        *drop = 1;
        return NULL;
    case BG_OP_REPLACE:
        return strdup(op->replacement != NULL ? op->replacement : "[removed]");
    case BG_OP_MASK: {
        /* Code points, so a masked Chinese name stays valid UTF-8. */
        size_t cps = 0;
        for (size_t i = 0; i < len; i++)
            cps += ((unsigned char)s[i] & 0xC0) != 0x80;
        size_t ks = (size_t)(op->keep_start > 0 ? op->keep_start : 0);
        size_t ke = (size_t)(op->keep_end > 0 ? op->keep_end : 0);
        if (ks + ke >= cps)
            ks = ke = 0;
        char *o = malloc(len + cps + 1);
        if (o == NULL)
            return NULL;
        size_t n = 0, cp = 0;
        char mc = op->mask_char ? op->mask_char : '*';
        for (size_t i = 0; i < len;) {
            size_t l = 1;
            while (i + l < len && ((unsigned char)s[i + l] & 0xC0) == 0x80)
                l++;
            if (cp < ks || cp >= cps - ke) {
                memcpy(o + n, s + i, l);
                n += l;
            } else {
                o[n++] = mc;
            }
            cp++;
            i += l;
        }
        o[n] = '\0';
        return o;
    }
    case BG_OP_HASH: {
        unsigned char mac[32];
        unsigned int ml = 0;
        if (HMAC(EVP_sha256(), p->keys.hash_key, (int)p->keys.hash_key_len, (const unsigned char *)s,
                 len, mac, &ml) == NULL)
            return NULL;
        char hex[65];
        to_hex(mac, 16, hex);
        char *o = malloc(120);
        if (o != NULL)
            snprintf(o, 120, "pn:%s:%s", p->keys.hash_key_id ? p->keys.hash_key_id : "k", hex);
        return o;
    }
    case BG_OP_TOKENIZE: {
        unsigned char nonce[12], tag[16];
        unsigned char *buf = malloc(len + 28);
        char *o = NULL;
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int l1 = 0, l2 = 0;
        const char *kid = p->keys.token_key_id ? p->keys.token_key_id : "k";
        if (buf == NULL || c == NULL || RAND_bytes(nonce, sizeof nonce) != 1 ||
            EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, p->keys.token_key, nonce) != 1 ||
            EVP_EncryptUpdate(c, NULL, &l1, (const unsigned char *)kid, (int)strlen(kid)) != 1 ||
            EVP_EncryptUpdate(c, buf + 12, &l1, (const unsigned char *)s, (int)len) != 1 ||
            EVP_EncryptFinal_ex(c, buf + 12 + l1, &l2) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
            goto tok_done;
        memcpy(buf, nonce, 12);
        memcpy(buf + 12 + l1 + l2, tag, 16);
        size_t total = 12 + (size_t)l1 + (size_t)l2 + 16;
        o = malloc(strlen(kid) + total * 2 + 16);
        if (o != NULL) {
            int hl = sprintf(o, "tok:%s:", kid);
            b64url(buf, total, o + hl);
        }
    tok_done:
        EVP_CIPHER_CTX_free(c);
        free(buf);
        return o;
    }
    case BG_OP_GENERALIZE: {
        char *g = generalize(cat, s, len, op);
        if (g == NULL)
            *drop = 1; /* no generalization for this category: remove rather than leak */
        return g;
    }
    }
    return NULL;
}

int bg_token_open(const char *token, const unsigned char *key, char *out, size_t cap)
{
    if (strncmp(token, "tok:", 4) != 0)
        return -1;
    const char *kid = token + 4;
    const char *colon = strchr(kid, ':');
    if (colon == NULL || colon - kid > 64)
        return -1;
    char kids[65];
    memcpy(kids, kid, (size_t)(colon - kid));
    kids[colon - kid] = '\0';
    size_t tl = strlen(colon + 1);
    unsigned char *raw = malloc(tl + 1);
    if (raw == NULL)
        return -1;
    int n = b64url_decode(colon + 1, raw, tl + 1);
    int rc = -1, l1 = 0, l2 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (n < 28 || c == NULL || (size_t)(n - 28) >= cap)
        goto done;
    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
        EVP_DecryptUpdate(c, NULL, &l1, (const unsigned char *)kids, (int)strlen(kids)) != 1 ||
        EVP_DecryptUpdate(c, (unsigned char *)out, &l1, raw + 12, n - 28) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, raw + n - 16) != 1 ||
        EVP_DecryptFinal_ex(c, (unsigned char *)out + l1, &l2) != 1)
        goto done;
    out[l1 + l2] = '\0';
    rc = l1 + l2;
done:
    if (rc < 0 && cap > 0)
        out[0] = '\0';
    EVP_CIPHER_CTX_free(c);
    free(raw);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Rendering                                                                 */

#define REMOVED_MARK "\x01bordergate-removed"

static json_t *removed_mark(void)
{
    json_t *m = json_object();
    json_object_set_new(m, REMOVED_MARK, json_true());
    return m;
}

static int is_removed_mark(json_t *v)
{
    return json_is_object(v) && json_object_size(v) == 1 && json_object_get(v, REMOVED_MARK) != NULL;
}

/* Drop removal marks from arrays (after every edit, so indexes held by
 * other nodes stayed valid until now). */
static void sweep(json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = json_array_size(v); i-- > 0;) {
            json_t *e = json_array_get(v, i);
            if (is_removed_mark(e))
                json_array_remove(v, i);
            else
                sweep(e);
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) sweep(c);
    }
}

/* Strength order when several whole-value operators hit one field. */
static int op_rank(bg_op_kind_t k)
{
    switch (k) {
    case BG_OP_REDACT: return 6;
    case BG_OP_REPLACE: return 5;
    case BG_OP_GENERALIZE: return 4;
    case BG_OP_TOKENIZE: return 3;
    case BG_OP_HASH: return 2;
    case BG_OP_MASK: return 1;
    }
    return 0;
}

static void set_json_node(bg_inspection_t *x, node_t *n, json_t *nv /* stolen; NULL: remove */)
{
    doc_t *d = &x->docs[n->doc];
    if (n->parent == NULL) {
        json_decref(d->root);
        d->root = nv != NULL ? nv : json_null();
    } else if (json_is_object(n->parent)) {
        if (nv == NULL)
            json_object_del(n->parent, n->key);
        else
            json_object_set_new(n->parent, n->key, nv);
    } else {
        json_array_set_new(n->parent, n->index, nv != NULL ? nv : removed_mark());
    }
    d->modified = 1;
}

static int cmp_span_desc(const void *a, const void *b, void *ctx)
{
    const bg_finding_t *fs = ctx;
    const bg_finding_t *x = &fs[*(const size_t *)a], *y = &fs[*(const size_t *)b];
    return x->span_off < y->span_off ? 1 : x->span_off > y->span_off ? -1 : 0;
}

/* Perform the operators recorded on node NI (findings IDX[0..N)). */
static void render_node(bg_inspection_t *x, size_t ni, size_t *idx, size_t n)
{
    node_t *nd = &x->nodes[ni];
    if (nd->record >= 0 && x->records != NULL &&
        is_removed_mark(json_array_get(x->records, (size_t)nd->record)))
        return;
    size_t len = 0;
    const char *text = node_text(x, nd, &len);
    char numbuf[64];
    char *serialized = NULL;
    if (text == NULL && nd->kind == N_JSON) {
        if (json_is_integer(nd->value) || json_is_real(nd->value)) {
            int l = json_is_integer(nd->value)
                        ? snprintf(numbuf, sizeof numbuf, "%lld", (long long)json_integer_value(nd->value))
                        : snprintf(numbuf, sizeof numbuf, "%.10g", json_real_value(nd->value));
            text = numbuf;
            len = (size_t)l;
        } else {
            serialized = json_dumps(nd->value, JSON_COMPACT | JSON_ENCODE_ANY);
            text = serialized != NULL ? serialized : "";
            len = strlen(text);
        }
    }
    /* A whole-value operator wins over span edits on the same value. */
    size_t best = (size_t)-1;
    for (size_t k = 0; k < n; k++) {
        bg_finding_t *f = &x->findings[idx[k]];
        if (f->whole && (best == (size_t)-1 ||
                         op_rank(x->pending[idx[k]].op.kind) > op_rank(x->pending[best].op.kind)))
            best = idx[k];
    }
    char *out = NULL;
    int drop = 0;
    if (best != (size_t)-1) {
        out = op_text(&x->pending[best], x->findings[best].category, text, len, &drop);
        if (out == NULL && !drop)
            drop = 1; /* an operator that failed must not leave the value as it was */
        for (size_t k = 0; k < n; k++)
            if (x->findings[idx[k]].applied && drop)
                x->findings[idx[k]].anonymized = 1;
    } else {
        qsort_r(idx, n, sizeof *idx, cmp_span_desc, x->findings);
        size_t cap = len + 1, cur = len;
        out = malloc(cap);
        if (out == NULL)
            return;
        memcpy(out, text, len);
        out[len] = '\0';
        size_t last_off = (size_t)-1;
        for (size_t k = 0; k < n; k++) {
            bg_finding_t *f = &x->findings[idx[k]];
            if (f->span_off + f->span_len > len || f->span_off + f->span_len > last_off)
                continue; /* overlapping spans: the later one was applied */
            int d = 0;
            char *rep = op_text(&x->pending[idx[k]], f->category, text + f->span_off, f->span_len, &d);
            const char *r = rep != NULL ? rep : "";
            size_t rl = strlen(r);
            char *nb = malloc(cur - f->span_len + rl + 1);
            if (nb != NULL) {
                memcpy(nb, out, f->span_off);
                memcpy(nb + f->span_off, r, rl);
                memcpy(nb + f->span_off + rl, out + f->span_off + f->span_len,
                       cur - f->span_off - f->span_len);
                cur = cur - f->span_len + rl;
                nb[cur] = '\0';
                free(out);
                out = nb;
            }
            free(rep);
            last_off = f->span_off;
        }
    }
    switch (nd->kind) {
    case N_JSON:
        if (drop) {
            set_json_node(x, nd, NULL);
        } else if (json_is_real(nd->value) && best != (size_t)-1 &&
                   x->pending[best].op.kind == BG_OP_GENERALIZE) {
            set_json_node(x, nd, json_real(strtod(out, NULL)));
        } else {
            json_t *s = json_stringn(out, strlen(out));
            set_json_node(x, nd, s != NULL ? s : json_string("[invalid]"));
        }
        break;
    case N_FIELD: {
        field_t *f = &x->fields[nd->slot];
        if (drop) {
            f->removed = 1;
        } else {
            free(f->value);
            f->value = out;
            f->value_len = strlen(out);
            out = NULL;
        }
        f->modified = 1;
        break;
    }
    case N_HEADER: {
        hdr_t *h = &x->hdrs[nd->slot];
        if (drop) {
            h->removed = 1;
        } else {
            free(h->value);
            h->value = out;
            h->value_len = strlen(out);
            out = NULL;
        }
        h->modified = 1;
        break;
    }
    case N_TEXT:
        free(x->text);
        x->text = drop ? strdup("") : out;
        x->text_len = x->text != NULL ? strlen(x->text) : 0;
        if (!drop)
            out = NULL;
        x->text_modified = 1;
        break;
    }
    free(out);
    free(serialized);
}

typedef struct strbuf_s {
    char *p;
    size_t n, cap;
} strbuf_t;

static void sb_add(strbuf_t *sb, const char *s, size_t n)
{
    if (sb->n + n + 1 > sb->cap) {
        size_t nc = (sb->cap ? sb->cap * 2 : 256);
        while (nc < sb->n + n + 1)
            nc *= 2;
        char *np = realloc(sb->p, nc);
        if (np == NULL)
            return;
        sb->p = np;
        sb->cap = nc;
    }
    memcpy(sb->p + sb->n, s, n);
    sb->n += n;
    sb->p[sb->n] = '\0';
}

static void pct_encode(strbuf_t *sb, const char *s, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            sb_add(sb, (const char *)&c, 1);
        } else if (c == ' ') {
            sb_add(sb, "+", 1);
        } else {
            char e[3] = {'%', hx[c >> 4], hx[c & 15]};
            sb_add(sb, e, 3);
        }
    }
}

static void encode_fields(bg_inspection_t *x, field_set_t set, strbuf_t *sb)
{
    int first = 1;
    for (size_t i = 0; i < x->nfields; i++) {
        field_t *f = &x->fields[i];
        if (f->set != set || f->removed)
            continue;
        if (!first)
            sb_add(sb, "&", 1);
        first = 0;
        pct_encode(sb, f->name, f->name_len);
        sb_add(sb, "=", 1);
        pct_encode(sb, f->value, f->value_len);
    }
}

int bg_inspection_render(bg_inspection_t *x, bg_rewrite_t *out)
{
    memset(out, 0, sizeof *out);
    /* Group pending findings by node. */
    size_t *idx = malloc((x->nfind + 1) * sizeof *idx);
    size_t *start = calloc(x->nnodes + 1, sizeof *start);
    if (idx == NULL || start == NULL) {
        free(idx);
        free(start);
        return -1;
    }
    for (size_t i = 0; i < x->nfind; i++)
        if (x->findings[i].applied && !x->findings[i].removed)
            start[x->findings[i].internal + 1]++;
    for (size_t n = 0; n < x->nnodes; n++)
        start[n + 1] += start[n];
    size_t *fill = calloc(x->nnodes + 1, sizeof *fill);
    if (fill == NULL) {
        free(idx);
        free(start);
        return -1;
    }
    for (size_t i = 0; i < x->nfind; i++) {
        const bg_finding_t *f = &x->findings[i];
        if (f->applied && !f->removed)
            idx[start[f->internal] + fill[f->internal]++] = i;
    }
    int maxdepth = 0;
    for (size_t d = 0; d < x->ndocs; d++)
        if (x->docs[d].depth > maxdepth)
            maxdepth = x->docs[d].depth;
    /* Innermost documents first; each written back into its container. */
    for (int depth = maxdepth; depth >= 0; depth--) {
        for (size_t n = 0; n < x->nnodes; n++) {
            node_t *nd = &x->nodes[n];
            if (nd->kind == N_JSON && x->docs[nd->doc].depth == depth && start[n + 1] > start[n])
                render_node(x, n, idx + start[n], start[n + 1] - start[n]);
        }
        for (size_t d = 0; d < x->ndocs; d++) {
            doc_t *doc = &x->docs[d];
            if (doc->depth != depth || !doc->modified || (doc->container_node < 0 && doc->container_field < 0))
                continue;
            sweep(doc->root);
            char *txt = json_dumps(doc->root, JSON_COMPACT | JSON_ENCODE_ANY);
            if (txt == NULL)
                continue;
            if (doc->container_node >= 0) {
                node_t *cn = &x->nodes[doc->container_node];
                if (cn->record < 0 || x->records == NULL ||
                    !is_removed_mark(json_array_get(x->records, (size_t)cn->record)))
                    set_json_node(x, cn, json_string(txt));
            } else {
                field_t *f = &x->fields[doc->container_field];
                free(f->value);
                f->value = txt;
                f->value_len = strlen(txt);
                f->modified = 1;
                txt = NULL;
            }
            free(txt);
        }
    }
    for (size_t n = 0; n < x->nnodes; n++) {
        if (x->nodes[n].kind != N_JSON && start[n + 1] > start[n])
            render_node(x, n, idx + start[n], start[n + 1] - start[n]);
    }
    free(idx);
    free(start);
    free(fill);

    /* Body. */
    strbuf_t sb = {0};
    int form_mod = 0, query_mod = 0, part_mod = 0;
    for (size_t i = 0; i < x->nfields; i++) {
        field_t *f = &x->fields[i];
        if (!f->modified && !f->removed)
            continue;
        form_mod |= f->set == FS_FORM;
        query_mod |= f->set == FS_QUERY;
        part_mod |= f->set == FS_PART;
    }
    if (x->kind == BG_BODY_JSON && x->ndocs > 0 && x->docs[0].modified) {
        sweep(x->docs[0].root);
        out->body = json_dumps(x->docs[0].root, JSON_COMPACT | JSON_ENCODE_ANY);
        out->body_changed = 1;
    } else if (x->kind == BG_BODY_FORM && form_mod) {
        encode_fields(x, FS_FORM, &sb);
        out->body = sb.p != NULL ? sb.p : strdup("");
        out->body_changed = 1;
        sb.p = NULL;
    } else if (x->kind == BG_BODY_MULTIPART && part_mod) {
        strbuf_t mb = {0};
        for (size_t i = 0; i < x->nfields; i++) {
            field_t *f = &x->fields[i];
            if (f->set != FS_PART || f->removed)
                continue;
            sb_add(&mb, "--", 2);
            sb_add(&mb, x->boundary, strlen(x->boundary));
            sb_add(&mb, "\r\n", 2);
            sb_add(&mb, f->part_head, f->part_head_len);
            sb_add(&mb, "\r\n\r\n", 4);
            sb_add(&mb, f->value, f->value_len);
            sb_add(&mb, "\r\n", 2);
        }
        sb_add(&mb, "--", 2);
        sb_add(&mb, x->boundary, strlen(x->boundary));
        sb_add(&mb, "--\r\n", 4);
        out->body = mb.p;
        out->body_changed = 1;
    } else if (x->kind == BG_BODY_TEXT && x->text_modified) {
        out->body = strdup(x->text);
        out->body_changed = 1;
    }
    if (out->body_changed) {
        if (out->body == NULL)
            return -1;
        out->body_len = strlen(out->body);
    }
    /* Target. */
    if (query_mod) {
        const char *q = memchr(x->in.target, '?', x->in.target_len);
        size_t pl = q != NULL ? (size_t)(q - x->in.target) : x->in.target_len;
        strbuf_t tb = {0};
        sb_add(&tb, x->in.target, pl);
        strbuf_t qb = {0};
        encode_fields(x, FS_QUERY, &qb);
        if (qb.n > 0) {
            sb_add(&tb, "?", 1);
            sb_add(&tb, qb.p, qb.n);
        }
        free(qb.p);
        out->target = tb.p;
        out->target_len = tb.n;
        out->target_changed = 1;
    }
    /* Headers and cookies. */
    for (size_t i = 0; i < x->nhdrs && out->nheaders < 32; i++) {
        hdr_t *h = &x->hdrs[i];
        if (!h->modified && !h->removed)
            continue;
        out->header_index[out->nheaders] = h->header;
        out->header_values[out->nheaders++] = h->removed ? NULL : strdup(h->value);
    }
    for (size_t hi = 0; hi < x->in.nheaders && out->nheaders < 32; hi++) {
        int touched = 0;
        for (size_t i = 0; i < x->nfields; i++)
            touched |= x->fields[i].set == FS_COOKIE && x->fields[i].cookie_header == (int)hi &&
                       (x->fields[i].modified || x->fields[i].removed);
        if (!touched)
            continue;
        strbuf_t cb = {0};
        for (size_t i = 0; i < x->nfields; i++) {
            field_t *f = &x->fields[i];
            if (f->set != FS_COOKIE || f->cookie_header != (int)hi || f->removed)
                continue;
            if (cb.n > 0)
                sb_add(&cb, "; ", 2);
            sb_add(&cb, f->name, f->name_len);
            sb_add(&cb, "=", 1);
            sb_add(&cb, f->value, f->value_len);
        }
        out->header_index[out->nheaders] = hi;
        out->header_values[out->nheaders++] = cb.p; /* NULL when every cookie went */
    }
    free(sb.p);
    return 0;
}

void bg_rewrite_free(bg_rewrite_t *rw)
{
    free(rw->body);
    free(rw->target);
    for (size_t i = 0; i < rw->nheaders; i++)
        free(rw->header_values[i]);
    memset(rw, 0, sizeof *rw);
}
