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
#include "inspect/sniff.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
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

/* Member names in rules match keys in any ASCII case ("$.user.idNo" matches
 * "IDNO"): a key's case is the cheapest way around a rule. */
static int key_ieq(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return 0;
    for (size_t i = 0; i < al; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int seg_match(const seg_t *s, const frame_t *f)
{
    switch (s->kind) {
    case SEG_KEY: return f->key != NULL && key_ieq(f->key, f->key_len, s->key, s->key_len);
    case SEG_INDEX: return f->key == NULL && f->index == s->index;
    case SEG_ANY_INDEX: return f->key == NULL;
    case SEG_ANY_KEY: return f->key != NULL;
    case SEG_RECURSIVE: return 0;
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
                if (fr[k].key != NULL && key_ieq(fr[k].key, fr[k].key_len, s->key, s->key_len) &&
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
    uint8_t sensitive[BG_CAT_MAX];
    size_t max_decoded;
};

/* Sensitive PI by default (PIPL Art. 28; GB/T 35273-2020 Annex B; where
 * GB/T 45574-2025 is laxer, e.g. an ID number alone, the stricter reading). */
static const bg_detect_cat_t default_sensitive[] = {
    BG_CAT_CN_RESIDENT_ID,
    BG_CAT_HMT_RESIDENCE_PERMIT,
    BG_CAT_BANK_CARD,
    BG_CAT_GPS_LOCATION,
    BG_CAT_PASSPORT,
    BG_CAT_HK_ID,
    BG_CAT_TW_ID,
    BG_CAT_MO_ID,
    BG_CAT_MAINLAND_TRAVEL_PERMIT,
    BG_CAT_IDENTITY_DOCUMENT,
    BG_CAT_PRECISE_LOCATION,
    BG_CAT_WHEREABOUTS,
    BG_CAT_BIOMETRICS,
    BG_CAT_HEALTH,
    BG_CAT_RELIGION,
    BG_CAT_SPECIFIC_IDENTITY,
    BG_CAT_SEXUAL_ORIENTATION,
    BG_CAT_CRIMINAL_RECORD,
    BG_CAT_MINOR_UNDER_14,
    BG_CAT_FINANCIAL_ACCOUNT,
    BG_CAT_TRANSACTION_RECORD,
    BG_CAT_CREDENTIALS,
    BG_CAT_COMMUNICATION_RECORD,
    BG_CAT_BROWSING_HISTORY,
    BG_CAT_CONTACTS,
};

int bg_inspect_default_sensitive(bg_detect_cat_t cat)
{
    for (size_t i = 0; i < sizeof default_sensitive / sizeof default_sensitive[0]; i++)
        if (default_sensitive[i] == cat)
            return 1;
    return 0;
}

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
            snprintf(err, errcap,
                     "records path must be a JSON path ending in [*] (like $.events[*])");
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

/* N_FIXED: text that is read but cannot be rewritten (finding.fixed). */
typedef enum { N_JSON, N_FIELD, N_HEADER, N_TEXT, N_FIXED } node_kind_t;
typedef enum { FS_FORM, FS_QUERY, FS_COOKIE, FS_PART, FS_PATH } field_set_t;

/*
 * A JSON node is a byte span of its document's text: rewriting splices new
 * text over spans, so the document is never rebuilt or re-serialized.
 */
typedef struct {
    node_kind_t kind;
    int doc;         /* N_JSON */
    uint32_t vstart; /* N_JSON: value token [vstart, vend) in the doc text */
    uint32_t vend;
    int member;       /* N_JSON: index into members[], -1 for a document root */
    char vtype;       /* N_JSON: 's' string, 'n' number, 'o' object, 'a' array, 'l' literal */
    int is_integer;   /* N_JSON number without fraction or exponent */
    const char *text; /* N_JSON: unescaped string or number token */
    size_t text_len;
    int slot; /* N_FIELD: fields[] index; N_HEADER: hdrs[] index */
    int record;
    int is_key; /* the name (member, field, header) is the PI: any operator
                   removes the member, field or header */
} node_t;

typedef struct {
    const char *text; /* the document: the body, or a string's unescaped text */
    size_t len;
    int container_node;  /* string node holding this document, or -1 */
    int container_field; /* form field / multipart part holding it, or -1 */
    int depth;
} doc_t;

/* Every member of every object and element of every array: what a removal
 * needs to cut the right commas. */
typedef struct {
    int container;  /* containers[] index */
    uint32_t start; /* key's opening quote (members) or value start (elements) */
    uint32_t end;   /* end of the value */
    uint8_t removed;
} member_t;

typedef struct {
    int doc;
    uint8_t has_removal;
} container_t;

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
    int seg;                 /* FS_PATH: segment index ("path[SEG]") */
    size_t raw_off, raw_len; /* FS_PATH: the segment as written in the target */
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

/* What bg_detect_key_info() said about a key, remembered per inspection:
 * a batch repeats the same few dozen keys thousands of times. */
#define KEYCACHE_SLOTS 64
#define KEYCACHE_KEY 46
typedef struct {
    uint32_t hash;
    uint16_t len1; /* key length + 1; 0: empty slot */
    char key[KEYCACHE_KEY];
    bg_detect_key_t info;
} keycache_t;

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
} arena_chunk_t;

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
    member_t *members;
    size_t nmembers, capmembers;
    container_t *containers;
    size_t ncontainers, capcontainers;
    field_t *fields;
    size_t nfields, capfields;
    hdr_t *hdrs;
    size_t nhdrs, caphdrs;
    bg_finding_t *findings;
    pending_t *pending;
    size_t nfind, capfind;
    arena_chunk_t *arena;
    keycache_t *keycache; /* allocated once a document has many keys */
    unsigned key_lookups;

    char *text; /* BG_BODY_TEXT value (owned copy) */
    size_t text_len;
    int text_modified;

    const char *holder_key;    /* the key the innermost JSON object being walked sits */
    size_t holder_len;         /* under (an array's for its elements), or NULL */
    bg_detect_cat_t cover_cat; /* category of the innermost object/array the walk is
                                  inside that is a finding as a whole, or NONE */
    int records_container;     /* containers[] index of the records array, -1 */
    int nrecords;
    int *record_members; /* members[] index of each record (built on first removal) */
    int nrecord_members;
    size_t *record_findings; /* [2r, 2r+1]: findings[] range of record r (ditto) */
    int modified;
    int overflow;
    int fixed_scan;   /* findings added now are fixed (bg_finding_t.fixed) */
    int content_only; /* the key names no category (headers the policy did not
                         list: "Authorization" is the caller's credential, not
                         a person's) */
    char opaque[160]; /* why part of the request is opaque, or "" */
    char *transcoded; /* the body transcoded to UTF-8 (owned) */
    char *decoded2;   /* a second inflation (gzip inside gzip) (owned) */
    char **extra;     /* decoded copies that findings' nodes point into (owned) */
    size_t nextra;
};

/* Strings decoded during the scan live until the inspection is freed. */
static char *arena_alloc(bg_inspection_t *x, size_t n)
{
    arena_chunk_t *c = x->arena;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > 60000 ? n : 60000;
        arena_chunk_t *nc = malloc(sizeof *nc + cap);
        if (nc == NULL)
            return NULL;
        nc->next = x->arena;
        nc->used = 0;
        nc->cap = cap;
        x->arena = nc;
        c = nc;
    }
    char *p = c->data + c->used;
    c->used += n;
    return p;
}

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
    node_t n;
    int node; /* -1 until created */
} node_spec_t;

static int ensure_node(bg_inspection_t *x, node_spec_t *sp)
{
    if (sp->node >= 0)
        return sp->node;
    node_t *nn = grow(x->nodes, &x->capnodes, x->nnodes, sizeof *nn);
    if (nn == NULL)
        return -1;
    x->nodes = nn;
    x->nodes[x->nnodes] = sp->n;
    sp->node = (int)x->nnodes++;
    return sp->node;
}

static node_spec_t spec_of(node_kind_t kind, int slot)
{
    node_spec_t sp;
    memset(&sp, 0, sizeof sp);
    sp.n.kind = kind;
    sp.n.doc = -1;
    sp.n.member = -1;
    sp.n.slot = slot;
    sp.n.record = -1;
    sp.node = -1;
    return sp;
}

static bg_finding_t *add_finding(bg_inspection_t *x, node_spec_t *sp, const char *path,
                                 bg_loc_t loc, bg_detect_cat_t cat, bg_detect_conf_t conf,
                                 const char *source, int whole, size_t off, size_t len)
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
    f->sensitive = cat > BG_CAT_NONE && cat < BG_CAT_MAX ? x->rules->sensitive[cat] : 0;
    f->confidence = conf;
    f->source = source;
    f->record = x->nodes[node].record;
    f->whole = whole;
    f->span_off = off;
    f->span_len = len;
    f->internal = (unsigned)node;
    f->fixed = x->fixed_scan || x->nodes[node].kind == N_FIXED;
    return f;
}

/* bg_detect_key_info() through the inspection's cache (the result depends
 * on the key's bytes only). Small documents, with few keys and fewer
 * repeats, do not pay for the cache: it starts after 64 look-ups. */
static void key_info(bg_inspection_t *x, const char *k, size_t kl, bg_detect_key_t *out)
{
    if (x->keycache == NULL && ++x->key_lookups > 64)
        x->keycache = calloc(KEYCACHE_SLOTS, sizeof *x->keycache);
    if (kl >= KEYCACHE_KEY || x->keycache == NULL) {
        bg_detect_key_info(k, kl, out);
        return;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < kl; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    keycache_t *e = &x->keycache[h % KEYCACHE_SLOTS];
    if (e->len1 == kl + 1 && e->hash == h && memcmp(e->key, k, kl) == 0) {
        *out = e->info;
        return;
    }
    bg_detect_key_info(k, kl, out);
    e->hash = h;
    e->len1 = (uint16_t)(kl + 1);
    memcpy(e->key, k, kl);
    e->info = *out;
}

/* bg_detect_key_category() through the cache: the same rule (detect.c). */
static bg_detect_cat_t key_category(bg_inspection_t *x, const char *k, size_t kl)
{
    bg_detect_key_t ki;
    key_info(x, k, kl, &ki);
    return ki.confidence >= BG_CONF_MEDIUM ? ki.category : BG_CAT_NONE;
}

/*
 * Whether an object under key K (or the elements of an array under K)
 * stands for a person, so that its "name" is a person's name: K's last word,
 * without an "info"/"profile"/"details" tail or a plural "s", is one of a
 * fixed list ("customer", "billing_contact", "passengers", "userInfo"), or K
 * holds one of the Chinese terms for such a person. Words that also name
 * things ("client", "driver", "parent") are left out on purpose.
 */
static int person_holder(const char *k, size_t kl)
{
    static const char *const words[] = {
        "user",        "customer",   "consignee",    "recipient",   "receiver",  "sender",
        "shipper",     "contact",    "buyer",        "member",      "employee",  "staff",
        "patient",     "student",    "guardian",     "passenger",   "guest",     "applicant",
        "holder",      "cardholder", "payer",        "payee",       "person",    "owner",
        "requester",   "requestor",  "assignee",     "reporter",    "traveler",  "traveller",
        "beneficiary", "author",     "attendee",     "participant", "candidate", "subscriber",
        "addressee",   "insured",    "policyholder", "claimant",    "visitor",   NULL};
    static const char *const cjk[] = {"用户",   "客户",   "收件人", "收货人", "寄件人", "发件人",
                                      "联系人", "会员",   "员工",   "乘客",   "患者",   "学生",
                                      "监护人", "持卡人", "申请人", "买家",   "旅客",   NULL};
    if (k == NULL || kl == 0 || kl > 64)
        return 0;
    char a[65];
    size_t n = 0;
    int high = 0;
    for (size_t i = 0; i < kl; i++) {
        unsigned char ch = (unsigned char)k[i];
        if (ch >= 0x80)
            high = 1;
        else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
            a[n++] = (char)(ch | 0x20);
    }
    a[n] = 0;
    if (high) {
        for (const char *const *t = cjk; *t; t++)
            if (memmem(k, kl, *t, strlen(*t)) != NULL)
                return 1;
    }
    static const char *const tails[] = {"info", "profile", "details", "detail", "data", NULL};
    for (const char *const *t = tails; *t; t++) {
        size_t tl = strlen(*t);
        if (n > tl + 2 && memcmp(a + n - tl, *t, tl) == 0) {
            n -= tl;
            break;
        }
    }
    if (n > 3 && a[n - 1] == 's')
        n--;
    for (const char *const *w = words; *w; w++) {
        size_t wl = strlen(*w);
        if (n >= wl && memcmp(a + n - wl, *w, wl) == 0)
            return 1;
    }
    return 0;
}

/* Key-only categories: a value under such a key is PI whatever it holds
 * (policy-defined categories, found by field rules only, are too). */
static int key_only_category(bg_detect_cat_t c)
{
    return c >= BG_CAT_PERSON_NAME && c < BG_CAT_MAX;
}

/*
 * Scan one text value at NODE: detectors with the key's hints; when they
 * find nothing, the key's own category (names, addresses, birth dates...).
 */
static void scan_text(bg_inspection_t *x, node_spec_t *node, const char *path, bg_loc_t loc,
                      const char *key, size_t key_len, const char *s, size_t len)
{
    bg_detect_finding_t out[SCAN_CAP];
    bg_detect_key_t ki;
    memset(&ki, 0, sizeof ki);
    if (key != NULL)
        key_info(x, key, key_len, &ki);
    /* "name" alone is a product, file or app name as often as a person's:
     * it counts as a person's name inside an object that stands for one. */
    if (x->content_only) {
        ki.category = BG_CAT_NONE;
        ki.confidence = 0;
    }
    if (ki.category == BG_CAT_PERSON_NAME && ki.confidence < BG_CONF_MEDIUM && loc == BG_LOC_BODY &&
        person_holder(x->holder_key, x->holder_len))
        ki.confidence = BG_CONF_HIGH;
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
    if (reported == 0 && ki.category != BG_CAT_NONE && ki.category != x->cover_cat && len > 0 &&
        ki.confidence >= x->rules->min_conf)
        add_finding(x, node, path, loc, ki.category, ki.confidence, "key", 1, 0, len);
}

/*
 * Whether NAME (a member, field, header or cookie name) is itself personal
 * information ({"13812345678": {...}}, "?a.b@example.com=1"); the first
 * finding at the rules' confidence into *F. Such a name never goes into a
 * path (paths are recorded and shown; "$.friends.<cn_mobile>" instead).
 */
static int name_pi(const bg_inspection_t *x, const char *s, size_t n, bg_detect_finding_t *f)
{
    /* Most names are ASCII words: without a digit, '@', ':' or a non-ASCII
     * byte (full-width forms) no detector can match (detect.h's pre-filter),
     * so skip the call. */
    size_t i = 0;
    while (i < n) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= '0' && ch <= '9') || ch == '@' || ch == ':' || ch >= 0x80)
            break;
        i++;
    }
    if (i == n)
        return 0;
    bg_detect_finding_t out[8];
    size_t k = bg_detect_scan(NULL, NULL, s, n, out, 8);
    for (size_t j = 0; j < k && j < 8; j++) {
        if (out[j].confidence >= x->rules->min_conf) {
            *f = out[j];
            return 1;
        }
    }
    if (k > 8) { /* more than were looked at: count it as personal */
        *f = out[0];
        return 1;
    }
    return 0;
}

/* The whole-name finding for NAME's node SP (is_key set here). */
static void add_name_finding(bg_inspection_t *x, node_spec_t *sp, const char *path, bg_loc_t loc,
                             const bg_detect_finding_t *f, size_t name_len)
{
    sp->n.is_key = 1;
    add_finding(x, sp, path, loc, f->category, f->confidence, bg_detect_detector_name(f->detector),
                1, 0, name_len);
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

static int hexval(int c);

static int add_doc(bg_inspection_t *x, const char *text, size_t len, int container_node,
                   int container_field, int depth)
{
    doc_t *nd = grow(x->docs, &x->capdocs, x->ndocs, sizeof *nd);
    if (nd == NULL)
        return -1;
    x->docs = nd;
    doc_t *d = &x->docs[x->ndocs];
    d->text = text;
    d->len = len;
    d->container_node = container_node;
    d->container_field = container_field;
    d->depth = depth;
    return (int)x->ndocs++;
}

typedef struct {
    frame_t frames[MAX_DEPTH + 1];
    size_t nframes;
    char path[PATH_MAX_LEN];
    size_t path_len;
} walk_t;

/*
 * The JSON scanner: strict RFC 8259 (UTF-8 validated, no NUL, no lone
 * surrogates, duplicate keys refused), recursive descent over the raw text.
 * With DRY set it only validates (used before walking JSON nested in a
 * string, so a string that merely looks like JSON leaves no findings).
 */
typedef struct {
    bg_inspection_t *x;
    walk_t *w;
    int doc;
    const unsigned char *s;
    size_t n, i;
    int dry;
    int depth;
    const char *err;
} jctx_t;

#define JFAIL(c, msg)                                                                              \
    do {                                                                                           \
        if ((c)->err == NULL)                                                                      \
            (c)->err = (msg);                                                                      \
        return -1;                                                                                 \
    } while (0)

static inline void jws(jctx_t *c)
{
    while (c->i < c->n) {
        unsigned char ch = c->s[c->i];
        if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t')
            break;
        c->i++;
    }
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Length of a valid UTF-8 sequence at P (at most AVAIL bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char b = p[0];
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (b >= 0xE0 && b <= 0xEF) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((b == 0xE0 && p[1] < 0xA0) || (b == 0xED && p[1] >= 0xA0))
            return 0; /* overlong, or a UTF-16 surrogate */
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((b == 0xF0 && p[1] < 0x90) || (b == 0xF4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * A string token at c->i ('"'). *OUT gets its decoded text: a pointer into
 * the source when it has no escapes (unless COPY, which always gives a
 * NUL-terminated arena copy), else into the arena.
 */
static int jstring(jctx_t *c, int copy, const char **out, size_t *outlen)
{
    size_t start = ++c->i;
    int escapes = 0;
    while (c->i < c->n) {
        unsigned char ch = c->s[c->i];
        if (ch == '"')
            break;
        if (ch == '\\') {
            escapes = 1;
            c->i += 2;
            continue;
        }
        if (ch < 0x20)
            JFAIL(c, "control character in a string");
        if (ch >= 0x80) {
            size_t l = utf8_len(c->s + c->i, c->n - c->i);
            if (l == 0)
                JFAIL(c, "invalid UTF-8 in a string");
            c->i += l;
            continue;
        }
        c->i++;
    }
    if (c->i >= c->n)
        JFAIL(c, "unterminated string");
    size_t end = c->i++; /* past the closing quote */
    if (!escapes && !copy) {
        *out = (const char *)c->s + start;
        *outlen = end - start;
        return 0;
    }
    if (c->dry && !copy) {
        /* Validate the escapes without keeping the text. */
        for (size_t k = start; k < end; k++) {
            if (c->s[k] != '\\')
                continue;
            unsigned char e = c->s[++k];
            if (e == 'u') {
                if (k + 4 >= end)
                    JFAIL(c, "bad \\u escape");
                int cp = hex4(c->s + k + 1);
                if (cp <= 0)
                    JFAIL(c, cp == 0 ? "\\u0000 in a string" : "bad \\u escape");
                k += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (k + 6 >= end || c->s[k + 1] != '\\' || c->s[k + 2] != 'u')
                        JFAIL(c, "lone surrogate");
                    int lo = hex4(c->s + k + 3);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        JFAIL(c, "lone surrogate");
                    k += 6;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    JFAIL(c, "lone surrogate");
                }
            } else if (!strchr("\"\\/bfnrt", e) || e == 0) {
                JFAIL(c, "bad escape");
            }
        }
        *out = NULL;
        *outlen = 0;
        return 0;
    }
    char *o = arena_alloc(c->x, end - start + 1);
    if (o == NULL)
        JFAIL(c, "out of memory");
    size_t n = 0;
    for (size_t k = start; k < end; k++) {
        unsigned char ch = c->s[k];
        if (ch != '\\') {
            o[n++] = (char)ch;
            continue;
        }
        unsigned char e = c->s[++k];
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            if (k + 4 >= end)
                JFAIL(c, "bad \\u escape");
            int cp = hex4(c->s + k + 1);
            if (cp < 0)
                JFAIL(c, "bad \\u escape");
            if (cp == 0)
                JFAIL(c, "\\u0000 in a string");
            k += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (k + 6 >= end || c->s[k + 1] != '\\' || c->s[k + 2] != 'u')
                    JFAIL(c, "lone surrogate");
                int lo = hex4(c->s + k + 3);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    JFAIL(c, "lone surrogate");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                k += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                JFAIL(c, "lone surrogate");
            }
            n += put_utf8(o + n, (unsigned)cp);
            break;
        }
        default: JFAIL(c, "bad escape");
        }
    }
    o[n] = '\0';
    *out = o;
    *outlen = n;
    return 0;
}

static int jnumber(jctx_t *c, int *is_integer)
{
    const unsigned char *s = c->s;
    size_t i = c->i;
    *is_integer = 1;
    if (i < c->n && s[i] == '-')
        i++;
    if (i >= c->n)
        JFAIL(c, "bad number");
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < c->n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        JFAIL(c, "bad number");
    }
    if (i < c->n && s[i] == '.') {
        *is_integer = 0;
        i++;
        if (i >= c->n || s[i] < '0' || s[i] > '9')
            JFAIL(c, "bad number");
        while (i < c->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < c->n && (s[i] == 'e' || s[i] == 'E')) {
        *is_integer = 0;
        i++;
        if (i < c->n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= c->n || s[i] < '0' || s[i] > '9')
            JFAIL(c, "bad number");
        while (i < c->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    c->i = i;
    return 0;
}

static int add_member(bg_inspection_t *x, int container, uint32_t start, uint32_t end)
{
    member_t *nm = grow(x->members, &x->capmembers, x->nmembers, sizeof *nm);
    if (nm == NULL)
        return -1;
    x->members = nm;
    member_t *m = &x->members[x->nmembers];
    m->container = container;
    m->start = start;
    m->end = end;
    m->removed = 0;
    return (int)x->nmembers++;
}

static int add_container(bg_inspection_t *x, int doc)
{
    container_t *nc = grow(x->containers, &x->capcontainers, x->ncontainers, sizeof *nc);
    if (nc == NULL)
        return -1;
    x->containers = nc;
    x->containers[x->ncontainers].doc = doc;
    x->containers[x->ncontainers].has_removal = 0;
    return (int)x->ncontainers++;
}

static int jvalue(jctx_t *c, int container, uint32_t mstart, const char *key, size_t key_len,
                  const char *hint_key, size_t hint_len, int record);

/* Push member K; a name that is itself PI goes into the path as the
 * placeholder ".<CATEGORY>" (a real key "<...>" is always quoted). */
static void path_push_key(walk_t *w, const char *k, size_t kl, const char *placeholder,
                          size_t *saved)
{
    *saved = w->path_len;
    if (placeholder != NULL) {
        int n = snprintf(w->path + w->path_len, sizeof w->path - w->path_len, ".<%s>", placeholder);
        w->path_len = n < 0 ? w->path_len : w->path_len + (size_t)n;
    } else {
        w->path_len = bg_jsonpos_path_append_key(w->path, sizeof w->path, w->path_len, k);
    }
    if (w->path_len >= sizeof w->path)
        w->path_len = sizeof w->path - 1;
    w->frames[w->nframes].key = k;
    w->frames[w->nframes].key_len = kl;
    w->nframes++;
}

static void path_push_index(walk_t *w, size_t i, size_t *saved)
{
    *saved = w->path_len;
    w->path_len = bg_jsonpos_path_append_index(w->path, sizeof w->path, w->path_len, i);
    if (w->path_len >= sizeof w->path)
        w->path_len = sizeof w->path - 1;
    w->frames[w->nframes].key = NULL;
    w->frames[w->nframes].key_len = 0;
    w->frames[w->nframes].index = i;
    w->nframes++;
}

static void path_pop(walk_t *w, size_t saved)
{
    w->nframes--;
    w->path_len = saved;
    w->path[saved] = '\0';
}

typedef struct {
    const char *k;
    size_t l;
} keyref_t;

static int cmp_keyref(const void *a, const void *b)
{
    const keyref_t *x = a, *y = b;
    size_t m = x->l < y->l ? x->l : y->l;
    int r = memcmp(x->k, y->k, m);
    return r != 0 ? r : (x->l > y->l) - (x->l < y->l);
}

static node_spec_t jspec(jctx_t *c, int member, uint32_t vstart, char vtype, int record);

/*
 * A member whose name is PI: a finding on the whole member [MSTART, end of
 * its value), the member jvalue() has just added. Any operator removes it:
 * rewriting the value alone would send the name as it was.
 */
static void member_name_finding(jctx_t *c, int container, uint32_t mstart, const char *k, size_t kl,
                                const bg_detect_finding_t *kf, int record)
{
    bg_inspection_t *x = c->x;
    int m = (int)x->nmembers - 1;
    if (m < 0 || x->members[m].container != container || x->members[m].start != mstart) {
        set_undecodable(x, "%s",
                        "internal error: no member for a name holding personal information");
        return;
    }
    node_spec_t sp = jspec(c, m, mstart, 'k', record);
    sp.n.text = k;
    sp.n.text_len = kl;
    add_name_finding(x, &sp, c->w->path, BG_LOC_BODY, kf, kl);
}

static int jobject(jctx_t *c, int record)
{
    int self = c->dry ? -1 : add_container(c->x, c->doc);
    keyref_t small[32];
    keyref_t *keys = small;
    size_t nkeys = 0, capkeys = 32;
    int rc = -1;
    c->i++; /* '{' */
    jws(c);
    if (c->i < c->n && c->s[c->i] == '}') {
        c->i++;
        return 0;
    }
    for (;;) {
        jws(c);
        if (c->i >= c->n || c->s[c->i] != '"') {
            c->err = c->err ? c->err : "expected a member name";
            goto out;
        }
        uint32_t mstart = (uint32_t)c->i;
        const char *k;
        size_t kl;
        if (jstring(c, !c->dry, &k, &kl) != 0)
            goto out;
        if (!c->dry) {
            /* Duplicates: a later one could hide what the upstream reads. */
            if (nkeys <= 32) {
                for (size_t j = 0; j < nkeys; j++) {
                    if (keys[j].l == kl && memcmp(keys[j].k, k, kl) == 0) {
                        c->err = "duplicate object key";
                        goto out;
                    }
                }
            }
            if (nkeys == capkeys) {
                keyref_t *nk = malloc(2 * capkeys * sizeof *nk);
                if (nk == NULL) {
                    c->err = "out of memory";
                    goto out;
                }
                memcpy(nk, keys, nkeys * sizeof *nk);
                if (keys != small)
                    free(keys);
                keys = nk;
                capkeys *= 2;
            }
            keys[nkeys].k = k;
            keys[nkeys].l = kl;
            nkeys++;
        }
        jws(c);
        if (c->i >= c->n || c->s[c->i] != ':') {
            c->err = c->err ? c->err : "expected ':'";
            goto out;
        }
        c->i++;
        size_t saved = 0;
        bg_detect_finding_t kf;
        int kpi = !c->dry && name_pi(c->x, k, kl, &kf);
        if (!c->dry)
            path_push_key(c->w, k, kl, kpi ? bg_detect_category_id(kf.category) : NULL, &saved);
        int r = jvalue(c, self, mstart, k, kl, k, kl, record);
        if (r == 0 && kpi)
            member_name_finding(c, self, mstart, k, kl, &kf, record);
        if (!c->dry)
            path_pop(c->w, saved);
        if (r != 0)
            goto out;
        jws(c);
        if (c->i < c->n && c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        if (c->i < c->n && c->s[c->i] == '}') {
            c->i++;
            break;
        }
        c->err = c->err ? c->err : "expected ',' or '}'";
        goto out;
    }
    if (nkeys > 32) {
        qsort(keys, nkeys, sizeof *keys, cmp_keyref);
        for (size_t j = 1; j < nkeys; j++) {
            if (cmp_keyref(&keys[j - 1], &keys[j]) == 0) {
                c->err = "duplicate object key";
                goto out;
            }
        }
    }
    rc = 0;
out:
    if (keys != small)
        free(keys);
    return rc;
}

static int jarray(jctx_t *c, const char *hint_key, size_t hint_len, int record)
{
    bg_inspection_t *x = c->x;
    int self = c->dry ? -1 : add_container(x, c->doc);
    /* The records array: each element is one data subject. */
    int is_records = !c->dry && c->doc == 0 && x->records_container < 0 &&
                     x->rules->records.n > 0 &&
                     jpath_match_from(&(jpath_t){x->rules->records.segs, x->rules->records.n - 1},
                                      0, c->w->frames, c->w->nframes, 0);
    if (is_records)
        x->records_container = self;
    c->i++; /* '[' */
    jws(c);
    if (c->i < c->n && c->s[c->i] == ']') {
        c->i++;
        return 0;
    }
    for (size_t idx = 0;; idx++) {
        jws(c);
        size_t saved = 0;
        if (!c->dry)
            path_push_index(c->w, idx, &saved);
        /* Counted before the walk: a record whose text turns out invalid
         * still has findings, and callers size arrays by the count. */
        if (is_records)
            x->nrecords = (int)idx + 1;
        /* Elements inherit the array's key for hints ("phones": [...]). */
        int r = jvalue(c, self, (uint32_t)c->i, NULL, 0, hint_key, hint_len,
                       is_records ? (int)idx : record);
        if (!c->dry)
            path_pop(c->w, saved);
        if (r != 0)
            return -1;
        jws(c);
        if (c->i < c->n && c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        if (c->i < c->n && c->s[c->i] == ']') {
            c->i++;
            return 0;
        }
        JFAIL(c, "expected ',' or ']'");
    }
}

/* Walk a document of its own (the body, or JSON nested in a string); its
 * values belong to RECORD (the record holding the string, or -1). */
static int jdocument(bg_inspection_t *x, walk_t *w, int doc, int record)
{
    jctx_t c;
    memset(&c, 0, sizeof c);
    c.x = x;
    c.w = w;
    c.doc = doc;
    c.s = (const unsigned char *)x->docs[doc].text;
    c.n = x->docs[doc].len;
    jws(&c);
    if (jvalue(&c, -1, (uint32_t)c.i, NULL, 0, NULL, 0, record) != 0)
        goto bad;
    jws(&c);
    if (c.i != c.n) {
        c.err = "data after the JSON value";
        goto bad;
    }
    return 0;
bad:
    set_undecodable(x, "invalid JSON: %s at byte %zu%s%s", c.err ? c.err : "syntax error", c.i,
                    doc > 0 ? " of JSON nested in a string at " : "", doc > 0 ? w->path : "");
    return -1;
}

/*
 * JSON nested in a string at W's path: document D, walked with a walk of
 * its own. Rule paths inside match from its root, and the outer walk's
 * frames stay intact for the members after the string (sharing them made
 * rules miss every later sibling). Not inlined: the walk is 2.6 KB of
 * stack, paid once per nesting level rather than in every jvalue frame.
 */
static __attribute__((noinline)) void jnested(bg_inspection_t *x, const walk_t *w, int d,
                                              int record)
{
    walk_t nw;
    nw.nframes = 0;
    nw.path_len = w->path_len;
    memcpy(nw.path, w->path, w->path_len + 1);
    if (nw.path_len + 6 < sizeof nw.path) {
        memcpy(nw.path + nw.path_len, "(json)", 7);
        nw.path_len += 6;
    }
    jdocument(x, &nw, d, record);
}

static int jvalid(bg_inspection_t *x, const char *s, size_t len)
{
    jctx_t c;
    memset(&c, 0, sizeof c);
    c.x = x;
    c.dry = 1;
    c.s = (const unsigned char *)s;
    c.n = len;
    jws(&c);
    if (jvalue(&c, -1, 0, NULL, 0, NULL, 0, -1) != 0)
        return 0;
    jws(&c);
    return c.i == c.n;
}

/* A JSON node at [vstart, c->i) for the finding machinery. */
static node_spec_t jspec(jctx_t *c, int member, uint32_t vstart, char vtype, int record)
{
    node_spec_t sp = spec_of(N_JSON, -1);
    sp.n.doc = c->doc;
    sp.n.vstart = vstart;
    sp.n.vend = (uint32_t)c->i;
    sp.n.member = member;
    sp.n.vtype = vtype;
    sp.n.record = record;
    return sp;
}

static int jvalue(jctx_t *c, int container, uint32_t mstart, const char *key, size_t key_len,
                  const char *hint_key, size_t hint_len, int record)
{
    bg_inspection_t *x = c->x;
    walk_t *w = c->w;
    if (c->depth >= MAX_DEPTH)
        JFAIL(c, "nested deeper than 64 levels");
    jws(c);
    if (c->i >= c->n)
        JFAIL(c, "unexpected end");
    uint32_t vstart = (uint32_t)c->i;
    unsigned char ch = c->s[c->i];
    const rule_t *ru = NULL;
    if (!c->dry && w->nframes > 0)
        ru = match_rule(x, w->frames, w->nframes, key, key_len);
    bg_detect_cat_t kc = BG_CAT_NONE;
    if (!c->dry && ru == NULL && key != NULL && (ch == '{' || ch == '['))
        kc = key_category(x, key, key_len);
    /* A rule or a key that names a category for a whole object or array
     * ("consignee": {...}, "installed_apps": [...]): the container is one
     * finding AND the walk goes on inside it, so what it holds (an ID
     * number in a consignee) is found and decided on its own. The
     * container's operator covers everything inside (render: the larger
     * splice wins); inner key-only findings of the container's own
     * category add nothing to it and are not repeated (cover_cat). */
    int whole_only = ru != NULL || (key_only_category(kc) && kc != x->cover_cat);
    bg_detect_cat_t saved_cover = x->cover_cat;
    size_t first_inner = x->nfind;
    int r = 0;

    c->depth++;
    if (ch == '{' || ch == '[') {
        if (whole_only && !c->dry)
            x->cover_cat = ru != NULL ? ru->category : kc;
        /* Whose object this is, judged only when a bare "name" asks
         * (scan_text): the key stays valid while its value is walked. */
        const char *saved_holder = x->holder_key;
        size_t saved_holder_len = x->holder_len;
        if (ch == '{' && !c->dry) {
            x->holder_key = key != NULL ? key : hint_key;
            x->holder_len = key != NULL ? key_len : hint_len;
        }
        r = ch == '{' ? jobject(c, record) : jarray(c, hint_key, hint_len, record);
        x->holder_key = saved_holder;
        x->holder_len = saved_holder_len;
        x->cover_cat = saved_cover;
    } else if (ch == '"') {
        const char *txt;
        size_t tl;
        r = jstring(c, 0, &txt, &tl);
        if (r == 0 && !c->dry) {
            int m = container >= 0 ? add_member(x, container, mstart, (uint32_t)c->i) : -1;
            node_spec_t sp = jspec(c, m, vstart, 's', record);
            sp.n.text = txt;
            sp.n.text_len = tl;
            if (ru != NULL) {
                add_finding(x, &sp, w->path, BG_LOC_BODY, ru->category, BG_CONF_HIGH, ru->id, 1, 0,
                            tl);
            } else {
                size_t k = 0;
                while (k < tl &&
                       (txt[k] == ' ' || txt[k] == '\t' || txt[k] == '\r' || txt[k] == '\n'))
                    k++;
                int nested = 0;
                if (k < tl && (txt[k] == '{' || txt[k] == '[') && jvalid(x, txt, tl)) {
                    if (x->docs[c->doc].depth >= MAX_NEST) {
                        /* Not walked, and not passed as text either: keys
                         * (names, addresses) would go unseen. */
                        set_undecodable(x, "JSON nested in strings deeper than %d levels at %s",
                                        MAX_NEST, w->path);
                        nested = 1;
                    } else {
                        int n = ensure_node(x, &sp);
                        int d = n >= 0 ? add_doc(x, txt, tl, n, -1, x->docs[c->doc].depth + 1) : -1;
                        if (d >= 0) {
                            jnested(x, w, d, record);
                            nested = 1;
                        }
                    }
                }
                if (!nested)
                    scan_text(x, &sp, w->path, BG_LOC_BODY, hint_key, hint_len, txt, tl);
            }
        }
        c->depth--;
        return r;
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
        int is_int = 0;
        r = jnumber(c, &is_int);
        if (r == 0 && !c->dry) {
            int m = container >= 0 ? add_member(x, container, mstart, (uint32_t)c->i) : -1;
            node_spec_t sp = jspec(c, m, vstart, 'n', record);
            sp.n.text = (const char *)c->s + vstart;
            sp.n.text_len = c->i - vstart;
            sp.n.is_integer = is_int;
            if (ru != NULL) {
                add_finding(x, &sp, w->path, BG_LOC_BODY, ru->category, BG_CONF_HIGH, ru->id, 1, 0,
                            sp.n.text_len);
            } else if (is_int) {
                scan_text(x, &sp, w->path, BG_LOC_BODY, hint_key, hint_len, sp.n.text,
                          sp.n.text_len);
            } else if (hint_key != NULL) {
                bg_detect_cat_t hc = key_category(x, hint_key, hint_len);
                if (hc != BG_CAT_NONE && hc != x->cover_cat)
                    add_finding(x, &sp, w->path, BG_LOC_BODY, hc, BG_CONF_HIGH, "key", 1, 0,
                                sp.n.text_len);
            }
        }
        c->depth--;
        return r;
    } else if (ch == 't' || ch == 'f' || ch == 'n') {
        const char *lit = ch == 't' ? "true" : ch == 'f' ? "false" : "null";
        size_t ll = strlen(lit);
        if (c->n - c->i < ll || memcmp(c->s + c->i, lit, ll) != 0) {
            c->depth--;
            JFAIL(c, "bad literal");
        }
        c->i += ll;
        if (!c->dry && container >= 0)
            add_member(x, container, mstart, (uint32_t)c->i);
        c->depth--;
        return 0;
    } else {
        c->depth--;
        JFAIL(c, "unexpected character");
    }
    c->depth--;
    if (r != 0 || c->dry)
        return r;
    /* Objects and arrays: their own member entry once their end is known. */
    int m = container >= 0 ? add_member(x, container, mstart, (uint32_t)c->i) : -1;
    if (whole_only && c->i > vstart + 2) {
        node_spec_t sp = jspec(c, m, vstart, ch == '{' ? 'o' : 'a', record);
        bg_finding_t *f;
        if (ru != NULL)
            f = add_finding(x, &sp, w->path, BG_LOC_BODY, ru->category, BG_CONF_HIGH, ru->id, 1, 0,
                            0);
        else
            f = add_finding(x, &sp, w->path, BG_LOC_BODY, kc, BG_CONF_HIGH, "key", 1, 0, 0);
        if (f != NULL && first_inner < x->nfind - 1) {
            /* Document order: the container before what it holds (a 451
             * names "$.consignee" before "$.consignee.name"). Nothing is
             * applied yet, so pending[] is all zero and stays aligned. */
            bg_finding_t cf = *f;
            memmove(&x->findings[first_inner + 1], &x->findings[first_inner],
                    (x->nfind - 1 - first_inner) * sizeof *x->findings);
            x->findings[first_inner] = cf;
        }
    }
    return 0;
}

/* JSON held in a form field or multipart part: a document of its own. */
static int try_nested_field(bg_inspection_t *x, int fi, const char *path)
{
    field_t *f = &x->fields[fi];
    size_t k = 0;
    while (k < f->value_len && (f->value[k] == ' ' || f->value[k] == '\n' || f->value[k] == '\r' ||
                                f->value[k] == '\t'))
        k++;
    if (k >= f->value_len || (f->value[k] != '{' && f->value[k] != '[') ||
        !jvalid(x, f->value, f->value_len))
        return 0;
    int d = add_doc(x, f->value, f->value_len, -1, fi, 1);
    if (d < 0)
        return 0;
    walk_t w;
    memset(&w, 0, sizeof w);
    w.path_len = strlen(path);
    memcpy(w.path, path, w.path_len + 1);
    jdocument(x, &w, d, -1);
    return 1;
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
    case FS_PATH: return "path";
    }
    return "";
}

/* Build "form.NAME" (NAME escaped for display: no control characters). */
static void field_path(const field_t *f, char *out, size_t cap)
{
    if (f->set == FS_PATH) {
        snprintf(out, cap, "path[%d]", f->seg);
        return;
    }
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
    node_spec_t n = spec_of(N_FIELD, fi);
    bg_loc_t loc = f->set == FS_QUERY    ? BG_LOC_QUERY
                   : f->set == FS_COOKIE ? BG_LOC_COOKIE
                   : f->set == FS_PATH   ? BG_LOC_PATH
                                         : BG_LOC_BODY;
    if (f->set == FS_PATH) {
        field_path(f, path, sizeof path);
        scan_text(x, &n, path, loc, NULL, 0, f->value, f->value_len);
        return;
    }
    bg_detect_finding_t nf;
    if (name_pi(x, f->name, f->name_len, &nf)) {
        snprintf(path, sizeof path, "%s<%s>", field_prefix(f->set),
                 bg_detect_category_id(nf.category));
        node_spec_t kn = spec_of(N_FIELD, fi);
        add_name_finding(x, &kn, path, loc, &nf, f->name_len);
    } else {
        field_path(f, path, sizeof path);
    }
    const rule_t *ru = match_rule(x, NULL, 0, f->name, f->name_len);
    if (ru != NULL) {
        if (f->value_len > 0)
            add_finding(x, &n, path, loc, ru->category, BG_CONF_HIGH, ru->id, 1, 0, f->value_len);
        return;
    }
    if ((f->set == FS_PART || f->set == FS_FORM || f->set == FS_QUERY) &&
        try_nested_field(x, fi, path))
        return;
    scan_text(x, &n, path, loc, f->name, f->name_len, f->value, f->value_len);
}

/* Text read for content only, not rewritable (the method, part headers,
 * multipart preamble and epilogue, decoded copies). */
static void scan_fixed(bg_inspection_t *x, const char *path, bg_loc_t loc, const char *s,
                       size_t len)
{
    node_spec_t n = spec_of(N_FIXED, -1);
    n.n.text = s; /* outlives the inspection's findings: input or owned copies */
    n.n.text_len = len;
    int co = x->content_only;
    x->content_only = 1;
    scan_text(x, &n, path, loc, NULL, 0, s, len);
    x->content_only = co;
}

/* Keep a decoded copy alive as long as the inspection (findings' nodes may
 * point into it). Takes ownership of P; -1 (P freed) when out of memory. */
static int keep_extra(bg_inspection_t *x, char *p)
{
    char **ne = realloc(x->extra, (x->nextra + 1) * sizeof *ne);
    if (ne == NULL) {
        free(p);
        return -1;
    }
    x->extra = ne;
    x->extra[x->nextra++] = p;
    return 0;
}

/* Every segment of the path ("/a/b;c=d/e": "a", "b;c=d", "e"),
 * percent-decoded, as field path[i] (rewritten in place when PI is
 * de-identified). A segment that does not percent-decode is read as written. */
static void parse_path(bg_inspection_t *x)
{
    const char *t = x->in.target;
    size_t n = x->in.target_len;
    const char *q = memchr(t, '?', n);
    if (q != NULL)
        n = (size_t)(q - t);
    const char *hash = memchr(t, '#', n);
    if (hash != NULL)
        n = (size_t)(hash - t);
    size_t i = 0;
    int seg = 0;
    while (i < n) {
        if (t[i] == '/') {
            i++;
            continue;
        }
        size_t e = i;
        while (e < n && t[e] != '/')
            e++;
        int fi = add_field(x, FS_PATH, "", 0, t + i, e - i, 1, 0);
        if (fi == -2)
            fi = add_field(x, FS_PATH, "", 0, t + i, e - i, 0, 0);
        if (fi < 0) {
            x->overflow = 1;
            return;
        }
        x->fields[fi].seg = seg++;
        x->fields[fi].raw_off = i;
        x->fields[fi].raw_len = e - i;
        scan_field(x, fi);
        i = e;
    }
}

/* JSON-style \uXXXX escapes in text that is not walked as JSON: read the
 * unescaped text too (findings there are fixed). */
static void scan_unescaped(bg_inspection_t *x, const char *path, const char *s, size_t len)
{
    if (memmem(s, len, "\\u", 2) == NULL)
        return;
    char *o = malloc(len + 1);
    if (o == NULL) {
        x->overflow = 1;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int a, b, c, d;
        if (s[i] == '\\' && i + 5 < len && (s[i + 1] == 'u' || s[i + 1] == 'U') &&
            (a = hexval((unsigned char)s[i + 2])) >= 0 &&
            (b = hexval((unsigned char)s[i + 3])) >= 0 &&
            (c = hexval((unsigned char)s[i + 4])) >= 0 &&
            (d = hexval((unsigned char)s[i + 5])) >= 0) {
            unsigned cp = (unsigned)(a << 12 | b << 8 | c << 4 | d);
            /* UTF-8 of CP (surrogates as they are: the detectors skip them) */
            if (cp < 0x80) {
                o[n++] = (char)cp;
            } else if (cp < 0x800) {
                o[n++] = (char)(0xc0 | cp >> 6);
                o[n++] = (char)(0x80 | (cp & 0x3f));
            } else {
                o[n++] = (char)(0xe0 | cp >> 12);
                o[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                o[n++] = (char)(0x80 | (cp & 0x3f));
            }
            i += 5;
        } else {
            o[n++] = s[i];
        }
    }
    o[n] = '\0';
    if (keep_extra(x, o) != 0) {
        x->overflow = 1;
        return;
    }
    scan_fixed(x, path, BG_LOC_BODY, o, n);
}

static void set_opaque(bg_inspection_t *x, const char *why)
{
    if (x->opaque[0] == '\0')
        snprintf(x->opaque, sizeof x->opaque, "%s", why);
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
                /* Every cookie is read; only the named ones by their name. */
                x->content_only = !wanted;
                scan_field(x, fi);
                x->content_only = 0;
            } else if (e > i) {
                /* A crumb without '=': read, and not rewritable. */
                scan_fixed(x, "header.cookie", BG_LOC_COOKIE, s + i, e - i);
            }
            i = e + 1;
        }
    }
    return 0;
}

/* NAME (any case) against a rule's header name, lowercase; a trailing '*'
 * matches any rest ("x-*": every X- header, the policy's default). */
static int header_wanted(const char *name, size_t nl, const char *pat)
{
    size_t pl = strlen(pat);
    if (pl > 0 && pat[pl - 1] == '*') {
        if (nl < pl - 1)
            return 0;
        for (size_t i = 0; i + 1 < pl; i++)
            if (tolower((unsigned char)name[i]) != pat[i])
                return 0;
        return 1;
    }
    return bg_util_ieq(name, nl, pat);
}

/* Headers whose value is framing that proxy/http.c has already validated
 * to a fixed syntax (digits, tokens), or that bordergate replaces: read by
 * nothing else, never forwarded as written. Every other header is read. */
static int header_structural(const char *name, size_t nl)
{
    static const char *const names[] = {
        "host",    "content-length", "transfer-encoding", "connection",       "te", "trailer",
        "upgrade", "expect",         "keep-alive",        "proxy-connection", NULL};
    for (const char *const *n = names; *n; n++)
        if (bg_util_ieq(name, nl, *n))
            return 1;
    return 0;
}

/*
 * Every header: its name (a name that is itself PI is removed with the
 * header), and its value. Headers the policy lists (inspect.headers,
 * default "x-*") are read like fields: the name's category counts
 * ("X-User-Phone"), field rules apply. The others are read for content only:
 * a value a detector validates is PI wherever it travels (Authorization,
 * Referer, User-Agent, a custom "Phone:"), but the name says nothing
 * ("Authorization" is the caller's own credential, not a person's).
 * Cookies the policy names are read field by field (parse_cookies); the
 * rest of a Cookie header is read for content as one value.
 */
static void scan_headers(bg_inspection_t *x)
{
    const bg_inspect_rules_t *r = x->rules;
    for (size_t h = 0; h < x->in.nheaders; h++) {
        const bg_http_header_t *hd = &x->in.headers[h];
        if (header_structural(hd->name, hd->name_len))
            continue;
        int wanted = 0;
        for (size_t k = 0; !wanted && k < r->nheaders; k++)
            wanted = header_wanted(hd->name, hd->name_len, r->headers[k]);
        int is_cookie = bg_util_ieq(hd->name, hd->name_len, "cookie");
        if (is_cookie && (r->all_cookies || r->ncookies > 0))
            continue; /* parse_cookies reads every cookie */
        hdr_t *nh = grow(x->hdrs, &x->caphdrs, x->nhdrs, sizeof *nh);
        if (nh == NULL) {
            x->overflow = 1; /* fail closed: unread is not clean */
            return;
        }
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
            x->overflow = 1;
            return;
        }
        int slot = (int)x->nhdrs++;
        node_spec_t n = spec_of(N_HEADER, slot);
        char path[300];
        bg_detect_finding_t nf;
        if (name_pi(x, e->name, strlen(e->name), &nf)) {
            snprintf(path, sizeof path, "header.<%s>", bg_detect_category_id(nf.category));
            node_spec_t kn = spec_of(N_HEADER, slot);
            add_name_finding(x, &kn, path, BG_LOC_HEADER, &nf, strlen(e->name));
        } else {
            snprintf(path, sizeof path, "header.%s", e->name);
        }
        const rule_t *ru = match_rule(x, NULL, 0, e->name, strlen(e->name));
        if (ru != NULL) {
            add_finding(x, &n, path, BG_LOC_HEADER, ru->category, BG_CONF_HIGH, ru->id, 1, 0,
                        e->value_len);
        } else {
            x->content_only = !wanted;
            scan_text(x, &n, path, BG_LOC_HEADER, e->name, strlen(e->name), e->value, e->value_len);
            x->content_only = 0;
        }
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

/* Case-insensitive search of NEEDLE in H[0..HL). */
static const char *imemmem(const char *h, size_t hl, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= hl; i++)
        if (bg_util_iprefix(h + i, hl - i, needle))
            return h + i;
    return NULL;
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
            /* A second boundary= parameter: readers disagree on which
             * counts, so the body is not read as either. */
            if (imemmem(p, (size_t)(end - p), "boundary=") != NULL)
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

/* MIME base64 (line breaks allowed) through OpenSSL's decoder; -1 when
 * invalid. *OUT is malloc'd and NUL-ended. */
static int mime_base64(const char *s, size_t n, char **out, size_t *outlen)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    char *o = malloc(n / 4 * 3 + 4);
    int l1 = 0, l2 = 0;
    if (ctx == NULL || o == NULL || n > INT_MAX) {
        EVP_ENCODE_CTX_free(ctx);
        free(o);
        return -1;
    }
    EVP_DecodeInit(ctx);
    int rc = EVP_DecodeUpdate(ctx, (unsigned char *)o, &l1, (const unsigned char *)s, (int)n);
    if (rc < 0 || EVP_DecodeFinal(ctx, (unsigned char *)o + l1, &l2) < 0) {
        EVP_ENCODE_CTX_free(ctx);
        free(o);
        return -1;
    }
    EVP_ENCODE_CTX_free(ctx);
    o[l1 + l2] = '\0';
    *out = o;
    *outlen = (size_t)(l1 + l2);
    return 0;
}

/* Quoted-printable (RFC 2045): "=XX" and soft line breaks "=\r\n". */
static char *quoted_printable(const char *s, size_t n, size_t *outlen)
{
    char *o = malloc(n + 1);
    size_t k = 0;
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '=') {
            o[k++] = s[i];
            continue;
        }
        if (i + 1 < n && s[i + 1] == '\n') {
            i += 1;
        } else if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
        } else if (i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
                   hexval((unsigned char)s[i + 2]) >= 0) {
            o[k++] = (char)(hexval((unsigned char)s[i + 1]) << 4 | hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    *outlen = k;
    return o;
}

/* The value of header NAME ("content-transfer-encoding:") in a part's
 * header block, trimmed, or NULL. */
static const char *part_header(const char *head, size_t hl, const char *name, size_t *vl)
{
    const char *h = imemmem(head, hl, name);
    if (h == NULL || (h != head && h[-1] != '\n'))
        return NULL;
    h += strlen(name);
    const char *end = head + hl;
    while (h < end && (*h == ' ' || *h == '\t'))
        h++;
    const char *e = h;
    while (e < end && *e != '\r' && *e != '\n')
        e++;
    while (e > h && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *vl = (size_t)(e - h);
    return h;
}

/* Read a preamble, an epilogue or a decoded part as text (fixed findings);
 * bytes that are not text make the request opaque. */
static void scan_loose(bg_inspection_t *x, const char *path, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    if (i == n)
        return;
    if (!bg_sniff_is_text(s, n)) {
        char why[160];
        snprintf(why, sizeof why, "%.120s is binary", path);
        set_opaque(x, why);
        return;
    }
    scan_fixed(x, path, BG_LOC_BODY, s, n);
}

/*
 * multipart/form-data, read whole: the preamble and the epilogue (after
 * the close delimiter, where a decoy "--boundary--" would hide parts from
 * a reader that stops early), each part's headers (names, filenames), and
 * each part's content whatever its declared type: text is read as a field
 * (rewritten in place), JSON as a document, base64 and quoted-printable
 * content transfer encodings decoded and read (fixed findings); a part
 * whose bytes are binary or compressed, or a nested multipart, is opaque.
 */
static int parse_multipart(bg_inspection_t *x)
{
    char delim[90];
    int dl = snprintf(delim, sizeof delim, "--%s", x->boundary);
    const char *b = x->body, *end = x->body + x->body_len;
    const char *p = memmem(b, x->body_len, delim, (size_t)dl);
    if (p == NULL)
        return -1;
    scan_loose(x, "multipart.preamble", b, (size_t)(p - b));
    p += dl;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            p += 2;
            scan_loose(x, "multipart.epilogue", p, (size_t)(end - p));
            return 0; /* closing delimiter */
        }
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
        size_t hl = (size_t)(hend - p);
        const char *name = NULL, *fname = NULL;
        size_t nl = 0, fnl = 0;
        if (disposition_param(p, hl, "name", &name, &nl) != 0)
            name = "", nl = 0;
        int is_file = disposition_param(p, hl, "filename", &fname, &fnl) == 0;
        size_t ctl = 0, tel = 0;
        const char *ct = part_header(p, hl, "content-type:", &ctl);
        const char *te = part_header(p, hl, "content-transfer-encoding:", &tel);
        size_t blen = (size_t)(next - body);
        int fi = add_field(x, FS_PART, name, nl, body, blen, 0, 0);
        if (fi < 0)
            return -1;
        field_t *f = &x->fields[fi];
        f->part_head = strndup(p, hl);
        f->part_head_len = hl;
        if (f->part_head == NULL)
            return -1;
        char path[PATH_MAX_LEN];
        field_path(f, path, sizeof path);
        char hpath[PATH_MAX_LEN + 10];
        snprintf(hpath, sizeof hpath, "%s.headers", path);
        scan_fixed(x, hpath, BG_LOC_BODY, f->part_head, hl);
        (void)is_file;
        (void)fnl;
        int encoded = te != NULL &&
                      (bg_util_ieq(te, tel, "base64") || bg_util_ieq(te, tel, "quoted-printable"));
        if (ct != NULL && bg_util_iprefix(ct, ctl, "multipart/")) {
            set_opaque(x, "a multipart part is itself multipart");
            f->is_file = 1;
        } else if (encoded) {
            char *dec = NULL;
            size_t decl = 0;
            if (bg_util_ieq(te, tel, "base64")) {
                if (mime_base64(body, blen, &dec, &decl) != 0)
                    dec = NULL;
            } else {
                dec = quoted_printable(body, blen, &decl);
            }
            if (dec == NULL || keep_extra(x, dec) != 0) {
                set_opaque(x, "a multipart part's transfer encoding does not decode");
                f->is_file = 1;
            } else {
                char dpath[PATH_MAX_LEN + 10];
                snprintf(dpath, sizeof dpath, "%s(decoded)", path);
                bg_sniff_t sn = bg_sniff(dec, decl, NULL);
                if (sn == BG_SNIFF_UTF8 || sn == BG_SNIFF_EMPTY)
                    scan_fixed(x, dpath, BG_LOC_BODY, dec, decl);
                else {
                    char why[160];
                    snprintf(why, sizeof why, "%.120s is binary", dpath);
                    set_opaque(x, why);
                }
            }
        } else if (bg_sniff_binary_format(body, blen) != NULL || !bg_sniff_is_text(body, blen)) {
            const char *fmt = bg_sniff_binary_format(body, blen);
            char why[160];
            snprintf(why, sizeof why, "%.120s is binary (%s)", path,
                     fmt != NULL ? fmt : "not text");
            set_opaque(x, why);
            f->is_file = 1;
        }
        scan_field(x, fi);
        p = next + dl2n;
    }
}

bg_inspection_t *bg_inspect(const bg_inspect_rules_t *rules, const bg_inspect_input_t *in)
{
    bg_inspection_t *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    x->rules = rules;
    x->in = *in;
    x->records_container = -1;
    x->body = in->body;
    x->body_len = in->body_len;

    /* The method token, every path segment, the query string. */
    scan_fixed(x, "method", BG_LOC_METHOD, in->method, in->method_len);
    parse_path(x);
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
    if (x->kind == BG_BODY_UNDECODABLE)
        goto done; /* the body's kind would hide it; the request fails closed anyway */

    if (in->body_len == 0) {
        if (x->kind != BG_BODY_UNDECODABLE)
            x->kind = BG_BODY_NONE;
        goto done;
    }
    const bg_http_header_t *ce = find_hdr(in, "content-encoding");
    if (ce != NULL && !bg_util_ieq(ce->value, ce->value_len, "identity")) {
        int window;
        if (bg_util_ieq(ce->value, ce->value_len, "gzip") ||
            bg_util_ieq(ce->value, ce->value_len, "x-gzip"))
            window = 15 + 16;
        else if (bg_util_ieq(ce->value, ce->value_len, "deflate"))
            window = 15; /* zlib wrapper per RFC 9110; raw deflate tried below */
        else {
            set_undecodable(x, "unsupported Content-Encoding (%s)",
                            "only gzip and deflate are decoded");
            goto done;
        }
        const char *why = NULL;
        size_t dl = 0;
        if (inflate_body(in->body, in->body_len, window, rules->max_decoded, &x->decoded, &dl,
                         &why) != 0) {
            if (window == 15 && inflate_body(in->body, in->body_len, -15, rules->max_decoded,
                                             &x->decoded, &dl, &why) == 0)
                goto inflated;
            set_undecodable(x, "Content-Encoding: %s", why);
            goto done;
        }
    inflated:
        x->body = x->decoded;
        x->body_len = dl;
    }
    /* Sniff: compression the label did not name (gzip inside gzip, a gzip
     * stream labelled text/plain) is undone once more; a stream that
     * starts like gzip but does not inflate is undecodable. A rewrite is
     * sent as identity either way. */
    {
        bg_sniff_t sn = bg_sniff(x->body, x->body_len, NULL);
        if (sn == BG_SNIFF_GZIP || sn == BG_SNIFF_ZLIB) {
            const char *why = NULL;
            size_t dl = 0;
            char *out = NULL;
            if (inflate_body(x->body, x->body_len, sn == BG_SNIFF_GZIP ? 15 + 16 : 15,
                             rules->max_decoded, &out, &dl, &why) == 0) {
                if (bg_sniff(out, dl, NULL) == BG_SNIFF_GZIP) {
                    free(out);
                    set_undecodable(x, "%s", "compressed more than twice");
                    goto done;
                }
                x->decoded2 = out;
                x->body = out;
                x->body_len = dl;
            } else if (sn == BG_SNIFF_GZIP) {
                set_undecodable(x, "the body starts as gzip but does not inflate (%s)", why);
                goto done;
            }
        }
    }

    char mt[128];
    const char *params;
    media_type(in, mt, sizeof mt, &params);
    /* Charset: a byte-order mark or the zero-byte pattern of UTF-16/32
     * wins over any label; else the label's charset. Transcoded text is read
     * as UTF-8 and cannot be rewritten in place (its findings are fixed). */
    {
        size_t bom = 0;
        bg_sniff_t sn = bg_sniff(x->body, x->body_len, &bom);
        const char *from = NULL;
        int unknown = 0;
        if (sn == BG_SNIFF_UTF16LE)
            from = "UTF-16LE";
        else if (sn == BG_SNIFF_UTF16BE)
            from = "UTF-16BE";
        else if (sn == BG_SNIFF_UTF32LE)
            from = "UTF-32LE";
        else if (sn == BG_SNIFF_UTF32BE)
            from = "UTF-32BE";
        else if (params != NULL && strncmp(mt, "multipart/", 10) != 0) {
            const bg_http_header_t *ct = find_hdr(in, "content-type");
            const char *cs =
                imemmem(params, (size_t)(ct->value + ct->value_len - params), "charset=");
            if (cs != NULL) {
                cs += 8;
                const char *ce2 = ct->value + ct->value_len;
                if (cs < ce2 && *cs == '"')
                    cs++;
                size_t cl = 0;
                while (cs + cl < ce2 && cs[cl] != ';' && cs[cl] != '"' && cs[cl] != ' ')
                    cl++;
                from = bg_sniff_charset(cs, cl, &unknown);
            }
        }
        if (unknown) {
            set_opaque(x, "the body's charset is not one bordergate reads");
            x->kind = BG_BODY_OTHER;
            goto done;
        }
        if (from != NULL) {
            char *out = NULL;
            size_t ol = 0;
            if (bg_sniff_transcode(x->body + bom, x->body_len - bom, from, rules->max_decoded, &out,
                                   &ol) != 0) {
                set_opaque(x, "the body is not valid text in its charset");
                x->kind = BG_BODY_OTHER;
                goto done;
            }
            x->transcoded = out;
            x->body = out;
            x->body_len = ol;
            x->fixed_scan = 1;
        } else if (bom == 3) {
            x->body += 3; /* UTF-8 BOM: read after it (the rewrite drops it) */
            x->body_len -= 3;
        }
    }

    size_t mtl = strlen(mt);
    int json_type = strcmp(mt, "application/json") == 0 || strcmp(mt, "text/json") == 0 ||
                    (mtl > 5 && strcmp(mt + mtl - 5, "+json") == 0);
    if (!json_type && strcmp(mt, "multipart/form-data") != 0) {
        /* JSON under any other label (text/plain from sendBeacon, XML, a
         * form type, octet-stream, none): walked as JSON when it is JSON,
         * whatever the label says. A top-level JSON string counts. */
        size_t i = 0;
        while (i < x->body_len && isspace((unsigned char)x->body[i]))
            i++;
        json_type = i < x->body_len &&
                    (x->body[i] == '{' || x->body[i] == '[' || x->body[i] == '"') &&
                    jvalid(x, x->body, x->body_len);
    }
    if (mt[0] == '\0' && !json_type)
        snprintf(mt, sizeof mt, "%s",
                 memchr(x->body, '=', x->body_len) != NULL &&
                         memchr(x->body, ' ', x->body_len) == NULL &&
                         bg_sniff_is_text(x->body, x->body_len)
                     ? "application/x-www-form-urlencoded"
                     : "text/plain");
    if (json_type) {
        x->kind = BG_BODY_JSON;
        int d = add_doc(x, x->body, x->body_len, -1, -1, 0);
        if (d < 0) {
            set_undecodable(x, "%s", "out of memory");
            goto done;
        }
        walk_t w;
        memset(&w, 0, sizeof w);
        w.path[0] = '$';
        w.path_len = 1;
        jdocument(x, &w, d, -1);
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
    } else if (bg_sniff_binary_format(x->body, x->body_len) == NULL &&
               bg_sniff_is_text(x->body, x->body_len)) {
        /* Text under any label (text/..., XML, CSV as octet-stream): read. */
        x->kind = BG_BODY_TEXT;
        x->text = malloc(x->body_len + 1);
        if (x->text == NULL) {
            set_undecodable(x, "%s", "out of memory");
            goto done;
        }
        memcpy(x->text, x->body, x->body_len);
        x->text[x->body_len] = '\0';
        x->text_len = x->body_len;
        node_spec_t n = spec_of(x->fixed_scan ? N_FIXED : N_TEXT, -1);
        n.n.text = x->text;
        n.n.text_len = x->text_len;
        scan_text(x, &n, "body", BG_LOC_BODY, NULL, 0, x->text, x->text_len);
        scan_unescaped(x, "body", x->text, x->text_len);
    } else {
        const char *fmt = bg_sniff_binary_format(x->body, x->body_len);
        char why[96];
        snprintf(why, sizeof why, "the body is binary (%s)", fmt != NULL ? fmt : "not text");
        set_opaque(x, why);
        x->kind = BG_BODY_OTHER;
    }
done:
    if (x->overflow)
        set_undecodable(x, "%s", "too many findings to inspect reliably");
    return x;
}

bg_body_kind_t bg_inspection_body_kind(const bg_inspection_t *x)
{
    return x->kind;
}
const char *bg_inspection_opaque(const bg_inspection_t *x)
{
    return x->opaque[0] != '\0' ? x->opaque : NULL;
}
const char *bg_inspection_undecodable(const bg_inspection_t *x)
{
    return x->kind == BG_BODY_UNDECODABLE ? x->undecodable : NULL;
}
size_t bg_inspection_count(const bg_inspection_t *x)
{
    return x->nfind;
}
bg_finding_t *bg_inspection_finding(bg_inspection_t *x, size_t i)
{
    return i < x->nfind ? &x->findings[i] : NULL;
}
int bg_inspection_records(const bg_inspection_t *x)
{
    return x->nrecords;
}
int bg_inspection_modified(const bg_inspection_t *x)
{
    return x->modified;
}

const char *bg_body_kind_name(bg_body_kind_t k)
{
    static const char *const names[] = {"none", "json",  "form",       "multipart",
                                        "text", "other", "undecodable"};
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
    free(x->nodes);
    free(x->docs);
    free(x->members);
    free(x->containers);
    free(x->record_members);
    free(x->record_findings);
    free(x->keycache);
    while (x->arena != NULL) {
        arena_chunk_t *next = x->arena->next;
        free(x->arena);
        x->arena = next;
    }
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
    free(x->decoded2);
    free(x->transcoded);
    for (size_t i = 0; i < x->nextra; i++)
        free(x->extra[i]);
    free(x->extra);
    free(x);
}

/* ------------------------------------------------------------------------ */
/* Values (subject ids, references, birth dates)                            */

/* S[0..LEN) into OUT, truncated to CAP; the length written (callers index
 * OUT with it, so never the untruncated length snprintf would give), or -1
 * when CAP is 0. */
static int value_out(char *out, size_t cap, const char *s, size_t len)
{
    if (cap == 0)
        return -1;
    if (len > cap - 1)
        len = cap - 1;
    if (len > INT_MAX)
        len = INT_MAX;
    memcpy(out, s, len);
    out[len] = '\0';
    return (int)len;
}

/*
 * The scalar at path P in the body, found by walking the raw text and
 * skipping what is not on the path (no tree is built). Text into OUT.
 */
static int jseek(bg_inspection_t *x, const jpath_t *p, char *out, size_t cap)
{
    jctx_t c;
    memset(&c, 0, sizeof c);
    c.x = x;
    c.s = (const unsigned char *)x->docs[0].text;
    c.n = x->docs[0].len;
    for (size_t si = 0; si < p->n; si++) {
        const seg_t *sg = &p->segs[si];
        jws(&c);
        if (c.i >= c.n)
            return -1;
        if (sg->kind == SEG_KEY) {
            if (c.s[c.i] != '{')
                return -1;
            c.i++;
            int found = 0;
            for (;;) {
                jws(&c);
                if (c.i >= c.n || c.s[c.i] != '"')
                    return -1;
                const char *k;
                size_t kl;
                if (jstring(&c, 0, &k, &kl) != 0)
                    return -1;
                jws(&c);
                if (c.i >= c.n || c.s[c.i] != ':')
                    return -1;
                c.i++;
                if (kl == sg->key_len && memcmp(k, sg->key, kl) == 0) {
                    found = 1;
                    break;
                }
                c.dry = 1;
                if (jvalue(&c, -1, 0, NULL, 0, NULL, 0, -1) != 0)
                    return -1;
                c.dry = 0;
                jws(&c);
                if (c.i < c.n && c.s[c.i] == ',') {
                    c.i++;
                    continue;
                }
                return -1;
            }
            if (!found)
                return -1;
        } else if (sg->kind == SEG_INDEX) {
            if (c.s[c.i] != '[')
                return -1;
            c.i++;
            for (size_t k = 0; k < sg->index; k++) {
                c.dry = 1;
                if (jvalue(&c, -1, 0, NULL, 0, NULL, 0, -1) != 0)
                    return -1;
                c.dry = 0;
                jws(&c);
                if (c.i >= c.n || c.s[c.i] != ',')
                    return -1;
                c.i++;
            }
        } else {
            return -1; /* wildcards select no single value */
        }
    }
    jws(&c);
    if (c.i >= c.n)
        return -1;
    if (c.s[c.i] == '"') {
        const char *t;
        size_t tl;
        if (jstring(&c, 0, &t, &tl) != 0)
            return -1;
        return value_out(out, cap, t, tl);
    }
    if (c.s[c.i] == '-' || (c.s[c.i] >= '0' && c.s[c.i] <= '9')) {
        size_t st = c.i;
        int is_int;
        if (jnumber(&c, &is_int) != 0)
            return -1;
        return value_out(out, cap, (const char *)c.s + st, c.i - st);
    }
    return -1;
}

int bg_inspection_value(const bg_inspection_t *x, const char *path, int record, char *out,
                        size_t cap)
{
    static const struct {
        const char *prefix;
        field_set_t set;
    } sets[] = {
        {"query.", FS_QUERY}, {"form.", FS_FORM}, {"cookie.", FS_COOKIE}, {"multipart.", FS_PART}};
    if (path[0] == '$') {
        if (x->kind != BG_BODY_JSON || x->ndocs == 0)
            return -1;
        jpath_t jp, full;
        char err[100];
        if (jpath_parse(path, &jp, err, sizeof err) != 0)
            return -1;
        /* Relative to a record: the records path, the record's index, then PATH. */
        memset(&full, 0, sizeof full);
        const jpath_t *use = &jp;
        if (record >= 0) {
            const jpath_t *rp = &x->rules->records;
            if (rp->n == 0) {
                jpath_free(&jp);
                return -1;
            }
            full.segs = malloc((rp->n + jp.n) * sizeof *full.segs);
            if (full.segs == NULL) {
                jpath_free(&jp);
                return -1;
            }
            memcpy(full.segs, rp->segs, (rp->n - 1) * sizeof *full.segs);
            full.segs[rp->n - 1].kind = SEG_INDEX;
            full.segs[rp->n - 1].key = NULL;
            full.segs[rp->n - 1].index = (size_t)record;
            if (jp.n > 0) /* "$" alone has no segments (and a NULL array) */
                memcpy(full.segs + rp->n, jp.segs, jp.n * sizeof *full.segs);
            full.n = rp->n + jp.n;
            use = &full;
        }
        int rc = jseek((bg_inspection_t *)x, use, out, cap);
        free(full.segs); /* shares the segments' keys with the paths it copied */
        jpath_free(&jp);
        return rc;
    }
    if (strncmp(path, "header.", 7) == 0) {
        const bg_http_header_t *h = find_hdr(&x->in, path + 7);
        if (h == NULL)
            return -1;
        return value_out(out, cap, h->value, h->value_len);
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
                return value_out(out, cap, f->value, f->value_len);
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
                    return value_out(out, cap, p + nl + 1, (size_t)(end - p - nl - 1));
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
    if (n->is_key && n->kind == N_FIELD) {
        *len = x->fields[n->slot].name_len;
        return x->fields[n->slot].name;
    }
    if (n->is_key && n->kind == N_HEADER) {
        *len = strlen(x->hdrs[n->slot].name);
        return x->hdrs[n->slot].name;
    }
    switch (n->kind) {
    case N_JSON:
        if (n->vtype == 's' || n->vtype == 'n' || n->vtype == 'k') {
            *len = n->text_len;
            return n->text;
        }
        return NULL;
    case N_FIELD: *len = x->fields[n->slot].value_len; return x->fields[n->slot].value;
    case N_HEADER: *len = x->hdrs[n->slot].value_len; return x->hdrs[n->slot].value;
    case N_TEXT: *len = x->text_len; return x->text;
    case N_FIXED: *len = n->text_len; return n->text;
    }
    return NULL;
}

int bg_inspection_finding_value(const bg_inspection_t *x, const bg_finding_t *f, char *out,
                                size_t cap)
{
    const node_t *n = &x->nodes[f->internal];
    size_t len;
    const char *s = node_text(x, n, &len);
    if (s == NULL)
        return -1;
    if (!f->whole && f->span_off + f->span_len <= len) {
        s += f->span_off;
        len = f->span_len;
    }
    return value_out(out, cap, s, len);
}

/* ------------------------------------------------------------------------ */
/* Operators                                                                 */

static const char *const op_names[] = {"redact",   "mask",       "hash",
                                       "tokenize", "generalize", "replace"};

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
    if (f->fixed) {
        snprintf(err, errcap,
                 "%.60s cannot be rewritten where it was found (method, header name, part "
                 "headers, or encoded or transcoded text)",
                 f->path);
        return -1;
    }
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
    if (x->records_container < 0 || record < 0 || record >= x->nrecords)
        return -1;
    /* The record is the RECORD-th member of the records array, and its
     * findings one run of findings[] (the walk finishes a record before the
     * next). Both are indexed once: a batch may remove many records, and a
     * pass over every member and finding per record was quadratic. */
    if (x->record_members == NULL) {
        size_t nr = (size_t)x->nrecords;
        x->record_members = malloc(nr * sizeof *x->record_members);
        x->record_findings = malloc(2 * nr * sizeof *x->record_findings);
        if (x->record_members == NULL || x->record_findings == NULL) {
            free(x->record_members);
            free(x->record_findings);
            x->record_members = NULL;
            x->record_findings = NULL;
            return -1;
        }
        for (size_t m = 0; m < x->nmembers && x->nrecord_members < x->nrecords; m++)
            if (x->members[m].container == x->records_container)
                x->record_members[x->nrecord_members++] = (int)m;
        for (size_t r = 0; r < nr; r++)
            x->record_findings[2 * r] = x->record_findings[2 * r + 1] = 0;
        for (size_t i = x->nfind; i-- > 0;) {
            int r = x->findings[i].record;
            if (r < 0 || r >= x->nrecords)
                continue;
            if (x->record_findings[2 * r + 1] == 0)
                x->record_findings[2 * r + 1] = i + 1;
            x->record_findings[2 * r] = i;
        }
    }
    /* A record cut short by invalid text has no member: nothing is marked. */
    if (record >= x->nrecord_members)
        return -1;
    x->members[x->record_members[record]].removed = 1;
    x->containers[x->records_container].has_removal = 1;
    x->modified = 1;
    size_t from = x->record_findings[2 * record], to = x->record_findings[2 * record + 1];
    for (size_t i = from; i < to; i++) {
        if (x->findings[i].record == record) {
            x->findings[i].removed = 1;
            x->findings[i].anonymized = 1;
            x->findings[i].op = "remove_record";
        }
    }
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
        if (c >= 'A' && c <= 'Z')
            d = c - 'A';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            d = c - '0' + 52;
        else if (c == '-')
            d = 62;
        else if (c == '_')
            d = 63;
        else
            return -1;
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
        /* Not finite (1e400, "nan") or too long to print: no coordinate to
         * keep, so the caller removes the value. */
        if (sscanf(buf, "%lf %1[,;] %lf", &a, sep, &b) == 3) {
            char *o = isfinite(a) && isfinite(b) ? malloc(64) : NULL;
            if (o != NULL && snprintf(o, 64, "%.*f%c%.*f", dec, a, sep[0], dec, b) >= 64) {
                free(o);
                o = NULL;
            }
            return o;
        }
        char *end;
        double v = strtod(buf, &end);
        if (end != buf && *end == '\0' && isfinite(v)) {
            char *o = malloc(40);
            if (o != NULL && snprintf(o, 40, "%.*f", dec, v) >= 40) {
                free(o);
                o = NULL;
            }
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
    case BG_OP_REDACT: *drop = 1; return NULL;
    case BG_OP_REPLACE: return strdup(op->replacement != NULL ? op->replacement : "[removed]");
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
        if (HMAC(EVP_sha256(), p->keys.hash_key, (int)p->keys.hash_key_len,
                 (const unsigned char *)s, len, mac, &ml) == NULL)
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

typedef struct strbuf_s {
    char *p;
    size_t n, cap;
    int oom; /* an append failed: the text is incomplete */
} strbuf_t;

static void sb_add(strbuf_t *sb, const char *s, size_t n)
{
    if (n > SIZE_MAX / 4 || sb->n > SIZE_MAX / 4) { /* no such buffer: never wraps */
        sb->oom = 1;
        return;
    }
    if (sb->n + n + 1 > sb->cap) {
        size_t nc = (sb->cap ? sb->cap * 2 : 256);
        while (nc < sb->n + n + 1)
            nc *= 2;
        char *np = realloc(sb->p, nc);
        if (np == NULL) {
            sb->oom = 1;
            return;
        }
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

/* S as a JSON string literal (quotes included) onto SB. */
static void json_quote(strbuf_t *sb, const char *s, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    sb_add(sb, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_add(sb, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]};
        if (c == '"' || c == '\\') {
            e[1] = (char)c;
            sb_add(sb, e, 2);
        } else if (c == '\n') {
            sb_add(sb, "\\n", 2);
        } else if (c == '\t') {
            sb_add(sb, "\\t", 2);
        } else if (c == '\r') {
            sb_add(sb, "\\r", 2);
        } else {
            sb_add(sb, e, 6);
        }
    }
    sb_add(sb, s + run, n - run);
    sb_add(sb, "\"", 1);
}

typedef struct {
    int doc;
    uint32_t start, end;
    char *repl; /* owned; NULL for a cut */
    size_t len;
} splice_t;

typedef struct {
    splice_t *v;
    size_t n, cap;
    int oom; /* a splice was lost: the render must fail, not leave the value */
} splices_t;

static void add_splice(splices_t *sp, int doc, uint32_t start, uint32_t end, char *repl, size_t len)
{
    splice_t *nv = grow(sp->v, &sp->cap, sp->n, sizeof *nv);
    if (nv == NULL) {
        sp->oom = 1;
        free(repl);
        return;
    }
    sp->v = nv;
    sp->v[sp->n].doc = doc;
    sp->v[sp->n].start = start;
    sp->v[sp->n].end = end;
    sp->v[sp->n].repl = repl;
    sp->v[sp->n].len = len;
    sp->n++;
}

/* A replacement built in B (taken): a failed allocation must not turn into
 * a cut, which would leave "key": with no value. */
static void add_repl(splices_t *sp, int doc, uint32_t start, uint32_t end, strbuf_t *b)
{
    if (b->p == NULL || b->oom) {
        sp->oom = 1;
        free(b->p);
        return;
    }
    add_splice(sp, doc, start, end, b->p, b->n);
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

static int cmp_span_desc(const void *a, const void *b, void *ctx)
{
    const bg_finding_t *fs = ctx;
    const bg_finding_t *x = &fs[*(const size_t *)a], *y = &fs[*(const size_t *)b];
    return x->span_off < y->span_off ? 1 : x->span_off > y->span_off ? -1 : 0;
}

/* Whether S is one JSON number (what may be spliced in unquoted). */
static int json_number_text(const char *s)
{
    jctx_t c;
    int is_int;
    memset(&c, 0, sizeof c);
    c.s = (const unsigned char *)s;
    c.n = strlen(s);
    return c.n > 0 && jnumber(&c, &is_int) == 0 && c.i == c.n;
}

static void mark_removed(bg_inspection_t *x, const node_t *nd, splices_t *sp)
{
    if (nd->member >= 0) {
        member_t *m = &x->members[nd->member];
        m->removed = 1;
        x->containers[m->container].has_removal = 1;
    } else {
        strbuf_t b = {0};
        sb_add(&b, "null", 4);
        add_repl(sp, nd->doc, nd->vstart, nd->vend, &b);
    }
}

/* Perform the operators recorded on node NI (findings IDX[0..N)). */
static void render_node(bg_inspection_t *x, size_t ni, size_t *idx, size_t n, splices_t *sp)
{
    node_t *nd = &x->nodes[ni];
    size_t len = 0;
    const char *text = node_text(x, nd, &len);
    if (text == NULL && nd->kind == N_JSON) {
        /* An object or array: operators see its JSON text. */
        text = x->docs[nd->doc].text + nd->vstart;
        len = nd->vend - nd->vstart;
    }
    if (text == NULL)
        return;
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
        pending_t pb = x->pending[best];
        if (nd->kind == N_JSON && (nd->vtype == 'o' || nd->vtype == 'a'))
            pb.op.keep_start = pb.op.keep_end = 0; /* the ends of a container's text are
                                                      its first and last values */
        out = op_text(&pb, x->findings[best].category, text, len, &drop);
        if (out == NULL && !drop)
            drop = 1; /* an operator that failed must not leave the value as it was */
        if (nd->is_key) {
            free(out); /* the name is the PI: the member, field or header goes */
            out = NULL;
            drop = 1;
        }
        if (drop)
            for (size_t k = 0; k < n; k++)
                x->findings[idx[k]].anonymized = 1;
    } else {
        qsort_r(idx, n, sizeof *idx, cmp_span_desc, x->findings);
        size_t cur = len;
        out = malloc(len + 1);
        if (out == NULL) {
            sp->oom = 1; /* the value would go out as it was */
            return;
        }
        memcpy(out, text, len);
        out[len] = '\0';
        size_t last_off = (size_t)-1;
        for (size_t k = 0; k < n; k++) {
            bg_finding_t *f = &x->findings[idx[k]];
            if (f->span_off + f->span_len > len || f->span_off + f->span_len > last_off)
                continue; /* overlapping spans: the later one was applied */
            int d = 0;
            char *rep =
                op_text(&x->pending[idx[k]], f->category, text + f->span_off, f->span_len, &d);
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
            } else {
                sp->oom = 1;
            }
            free(rep);
            last_off = f->span_off;
        }
    }
    switch (nd->kind) {
    case N_FIXED: break; /* bg_inspection_apply refuses fixed findings */
    case N_JSON:
        if (drop) {
            mark_removed(x, nd, sp);
        } else {
            strbuf_t sb = {0};
            if (nd->vtype == 'n' && best != (size_t)-1 &&
                x->pending[best].op.kind == BG_OP_GENERALIZE && json_number_text(out)) {
                sb_add(&sb, out, strlen(out)); /* a generalized number stays a number */
            } else {
                json_quote(&sb, out, strlen(out));
            }
            add_repl(sp, nd->doc, nd->vstart, nd->vend, &sb);
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
}

/* Cuts for removed members: a run of removed members takes the commas
 * after it (or, at the end of the container, the one before it).
 * Cost: O(members + containers): the members of the containers that have a
 * removal are grouped with one counting sort (members[] is in document
 * order within each container), not one pass over all members per
 * container, which was quadratic on batches (2,000 records with a redacted
 * field: 2,000 passes over ~60,000 members). */
static int removal_splices(bg_inspection_t *x, splices_t *sp)
{
    size_t nc = x->ncontainers;
    size_t *first = calloc(nc + 1, sizeof *first);
    size_t *fill = calloc(nc + 1, sizeof *fill);
    int *list = malloc((x->nmembers + 1) * sizeof *list);
    int rc = -1;
    if (first == NULL || fill == NULL || list == NULL)
        goto out;
    for (size_t m = 0; m < x->nmembers; m++)
        if (x->containers[x->members[m].container].has_removal)
            first[x->members[m].container + 1]++;
    for (size_t c = 0; c < nc; c++)
        first[c + 1] += first[c];
    for (size_t m = 0; m < x->nmembers; m++) {
        int c = x->members[m].container;
        if (x->containers[c].has_removal)
            list[first[c] + fill[c]++] = (int)m;
    }
    for (size_t c = 0; c < nc; c++) {
        if (!x->containers[c].has_removal)
            continue;
        int *mine = list + first[c];
        size_t n = first[c + 1] - first[c];
        for (size_t i = 0; i < n;) {
            if (!x->members[mine[i]].removed) {
                i++;
                continue;
            }
            size_t j = i;
            while (j + 1 < n && x->members[mine[j + 1]].removed)
                j++;
            const member_t *mi = &x->members[mine[i]], *mj = &x->members[mine[j]];
            uint32_t start, end;
            if (j + 1 < n) {
                start = mi->start;
                end = x->members[mine[j + 1]].start;
            } else if (i > 0) {
                start = x->members[mine[i - 1]].end;
                end = mj->end;
            } else {
                start = mi->start;
                end = mj->end;
            }
            add_splice(sp, x->containers[c].doc, start, end, NULL, 0);
            i = j + 1;
        }
    }
    rc = 0;
out:
    free(first);
    free(fill);
    free(list);
    return rc;
}

static int cmp_splice(const void *a, const void *b)
{
    const splice_t *x = a, *y = b;
    if (x->doc != y->doc)
        return x->doc < y->doc ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end > y->end ? -1 : x->end < y->end; /* the larger first */
}

/* Document D's text with its splices MINE[0..COUNT) applied; they are
 * sorted by cmp_splice. NULL when out of memory. */
static char *apply_splices(const bg_inspection_t *x, const splice_t *mine, size_t count, int d,
                           size_t *outlen)
{
    const doc_t *doc = &x->docs[d];
    strbuf_t sb = {0};
    size_t need = doc->len + 1;
    for (size_t i = 0; i < count; i++)
        need += mine[i].len;
    sb.p = malloc(need); /* one allocation: no doubling copies of a 1 MB body */
    if (sb.p == NULL)
        return NULL;
    sb.cap = need;
    size_t cur = 0;
    for (size_t i = 0; i < count; i++) {
        if (mine[i].start < cur)
            continue; /* inside a larger splice already made */
        sb_add(&sb, doc->text + cur, mine[i].start - cur);
        if (mine[i].repl != NULL)
            sb_add(&sb, mine[i].repl, mine[i].len);
        cur = mine[i].end;
    }
    sb_add(&sb, doc->text + cur, doc->len - cur);
    *outlen = sb.n;
    return sb.p;
}

int bg_inspection_render(bg_inspection_t *x, bg_rewrite_t *out)
{
    memset(out, 0, sizeof *out);
    /* Group pending findings by node. */
    size_t *idx = malloc((x->nfind + 1) * sizeof *idx);
    size_t *start = calloc(x->nnodes + 1, sizeof *start);
    size_t *fill = calloc(x->nnodes + 1, sizeof *fill);
    splices_t sp = {0};
    if (idx == NULL || start == NULL || fill == NULL) {
        free(idx);
        free(start);
        free(fill);
        return -1;
    }
    for (size_t i = 0; i < x->nfind; i++)
        if (x->findings[i].applied && !x->findings[i].removed)
            start[x->findings[i].internal + 1]++;
    for (size_t n = 0; n < x->nnodes; n++)
        start[n + 1] += start[n];
    for (size_t i = 0; i < x->nfind; i++) {
        const bg_finding_t *f = &x->findings[i];
        if (f->applied && !f->removed)
            idx[start[f->internal] + fill[f->internal]++] = i;
    }
    for (size_t n = 0; n < x->nnodes; n++)
        if (start[n + 1] > start[n])
            render_node(x, n, idx + start[n], start[n + 1] - start[n], &sp);
    free(idx);
    free(start);
    free(fill);
    if (removal_splices(x, &sp) != 0) {
        for (size_t i = 0; i < sp.n; i++)
            free(sp.v[i].repl);
        free(sp.v);
        return -1;
    }

    /* Innermost documents first; each goes back into its container. */
    int maxdepth = 0;
    for (size_t d = 0; d < x->ndocs; d++)
        if (x->docs[d].depth > maxdepth)
            maxdepth = x->docs[d].depth;
    char *top = NULL;
    size_t top_len = 0;
    int failed = 0;
    for (int depth = maxdepth; depth >= 0; depth--) {
        /* Every splice of this depth's documents is known by now (their
         * own, and their nested documents' from the pass before): sorted by
         * document, each document's run is contiguous. Container splices
         * added below go after NSP, for the next pass. */
        if (sp.n > 1)
            qsort(sp.v, sp.n, sizeof *sp.v, cmp_splice);
        size_t nsp = sp.n;
        for (size_t i = 0, j; i < nsp; i = j) {
            int d = sp.v[i].doc;
            for (j = i; j < nsp && sp.v[j].doc == d; j++)
                ;
            doc_t *doc = &x->docs[d];
            if (doc->depth != depth)
                continue;
            size_t nl = 0;
            char *txt = apply_splices(x, sp.v + i, j - i, d, &nl);
            if (txt == NULL) {
                failed = 1; /* never send the document as it was */
                continue;
            }
            if (doc->container_node >= 0) {
                const node_t *cn = &x->nodes[doc->container_node];
                strbuf_t q = {0};
                json_quote(&q, txt, nl);
                free(txt);
                add_repl(&sp, cn->doc, cn->vstart, cn->vend, &q);
            } else if (doc->container_field >= 0) {
                field_t *f = &x->fields[doc->container_field];
                free(f->value);
                f->value = txt;
                f->value_len = nl;
                f->modified = 1;
            } else {
                free(top);
                top = txt;
                top_len = nl;
            }
        }
    }
    for (size_t i = 0; i < sp.n; i++)
        free(sp.v[i].repl);
    free(sp.v);
    if (failed || sp.oom) {
        free(top);
        return -1;
    }

    /* Body. */
    strbuf_t sb = {0};
    int form_mod = 0, query_mod = 0, part_mod = 0, path_mod = 0;
    for (size_t i = 0; i < x->nfields; i++) {
        field_t *f = &x->fields[i];
        if (!f->modified && !f->removed)
            continue;
        form_mod |= f->set == FS_FORM;
        query_mod |= f->set == FS_QUERY;
        part_mod |= f->set == FS_PART;
        path_mod |= f->set == FS_PATH;
    }
    if (x->kind == BG_BODY_JSON && top != NULL) {
        out->body = top;
        out->body_len = top_len;
        out->body_changed = 1;
        top = NULL;
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
    free(top);
    if (out->body_changed) {
        if (out->body == NULL)
            return -1;
        if (x->kind != BG_BODY_JSON)
            out->body_len = strlen(out->body);
    }
    /* Target: de-identified path segments re-encoded, the others as
     * written; the query re-encoded when a parameter changed. */
    if (query_mod || path_mod) {
        const char *q = memchr(x->in.target, '?', x->in.target_len);
        size_t pl = q != NULL ? (size_t)(q - x->in.target) : x->in.target_len;
        strbuf_t tb = {0};
        if (path_mod) {
            size_t cur = 0;
            for (size_t i = 0; i < x->nfields; i++) {
                field_t *f = &x->fields[i];
                if (f->set != FS_PATH)
                    continue;
                sb_add(&tb, x->in.target + cur, f->raw_off - cur);
                if (f->removed)
                    sb_add(&tb, "-", 1); /* the segment stays, its value goes */
                else if (f->modified)
                    pct_encode(&tb, f->value, f->value_len);
                else
                    sb_add(&tb, x->in.target + f->raw_off, f->raw_len);
                cur = f->raw_off + f->raw_len;
            }
            sb_add(&tb, x->in.target + cur, pl - cur);
        } else {
            sb_add(&tb, x->in.target, pl);
        }
        if (query_mod) {
            strbuf_t qb = {0};
            encode_fields(x, FS_QUERY, &qb);
            if (qb.n > 0) {
                sb_add(&tb, "?", 1);
                sb_add(&tb, qb.p, qb.n);
            }
            free(qb.p);
        } else if (q != NULL) {
            sb_add(&tb, q, x->in.target_len - pl);
        }
        out->target = tb.p;
        out->target_len = tb.n;
        out->target_changed = 1;
    }
    /* Headers and cookies. More rewrites than bg_rewrite_t holds fail the
     * render: silently dropping one would send its PI as it was. */
    const size_t maxh = sizeof out->header_index / sizeof out->header_index[0];
    for (size_t i = 0; i < x->nhdrs; i++) {
        hdr_t *h = &x->hdrs[i];
        if (!h->modified && !h->removed)
            continue;
        if (out->nheaders == maxh)
            goto too_many;
        out->header_index[out->nheaders] = h->header;
        out->header_values[out->nheaders++] = h->removed ? NULL : strdup(h->value);
    }
    for (size_t hi = 0; hi < x->in.nheaders; hi++) {
        int touched = 0;
        for (size_t i = 0; i < x->nfields; i++)
            touched |= x->fields[i].set == FS_COOKIE && x->fields[i].cookie_header == (int)hi &&
                       (x->fields[i].modified || x->fields[i].removed);
        if (!touched)
            continue;
        if (out->nheaders == maxh)
            goto too_many;
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
too_many:
    free(sb.p);
    bg_rewrite_free(out);
    return -1;
}

void bg_rewrite_free(bg_rewrite_t *rw)
{
    free(rw->body);
    free(rw->target);
    for (size_t i = 0; i < rw->nheaders; i++)
        free(rw->header_values[i]);
    memset(rw, 0, sizeof *rw);
}
