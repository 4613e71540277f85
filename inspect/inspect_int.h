/*
 * Private to inspect/: the types an inspection is made of and the helpers
 * the inspection's files share. Nothing outside inspect/ includes this;
 * the public API is inspect/inspect.h.
 *
 *   jsonpath.c  compiled JSON paths and matching (bg_insp_jpath_*)
 *   rules.c     bg_inspect_rules_t: compile, free, default sensitivity
 *   inspect.c   findings, nodes, documents; bg_inspect(); accessors; free
 *   jscan.c     the strict JSON scanner and walker
 *   decode.c    inflate, percent-decoding, form/query, cookies, headers,
 *               media type, multipart
 *   values.c    values at a path or a finding
 *   ops.c       operators and tokens
 *   render.c    the rewritten request
 *
 * The small helpers on the scan's hot path are static inline here, so the
 * split into files costs no call where there was none.
 */
#ifndef BG_INSPECT_INT_H
#define BG_INSPECT_INT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "inspect/inspect.h"

#define MAX_NEST 3          /* JSON inside JSON strings */
#define MAX_DEPTH 64        /* JSON nesting walked */
#define MAX_FINDINGS 100000 /* beyond: undecodable (fail closed) */
#define SCAN_CAP 64         /* findings per value */
#define PATH_MAX_LEN 1024

/* ------------------------------------------------------------------------ */
/* Compiled JSON paths (jsonpath.c)                                          */

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

/* The walker's position: one frame per level. */
typedef struct {
    const char *key; /* NULL for array elements */
    size_t key_len;
    size_t index;
} frame_t;

/* ------------------------------------------------------------------------ */
/* Rules (rules.c)                                                           */

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
    int address_books; /* address-book keys may name the contacts category */
};

/* ------------------------------------------------------------------------ */
/* The inspection (inspect.c)                                                */

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
    const char *text; /* N_JSON: unescaped string or number token; N_FIXED: the text */
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

/* What bg_detect_key_info() said about a key, and whether it names a
 * person plainly (inspect.c, person_key), remembered per thread (key_info): a
 * batch repeats the same few dozen keys thousands of times. 256 slots, two
 * candidates per key (inspect.c, key_info), keep a document's few dozen
 * distinct keys from evicting each other (64 direct-mapped slots missed
 * one look-up in 18 on a typical API batch). */
#define KEYCACHE_SLOTS 256
#define KEYCACHE_KEY 46
typedef struct {
    uint32_t hash;
    uint16_t len1; /* key length + 1; 0: empty slot */
    char key[KEYCACHE_KEY];
    uint8_t person; /* person_key() of the key */
    bg_detect_key_t info;
} keycache_t;

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
} arena_chunk_t;

/* ------------------------------------------------------------------------ */
/* Values split over several JSON values (split.c)                          */

#define SPLIT_MAX 18 /* an ID number as single digits */
#define SPLIT_PENDING 8

/* A digit-only value read: its digits (an ID's check character X may end
 * it), the container it is a member of, whether it is an array element,
 * whether its key names a phone, and whether another value (not digits)
 * came between it and the one before. */
typedef struct {
    char d[18];
    uint8_t len, in_array, gap;
    int8_t phone; /* -1 not known yet (judged only when a window needs it) */
    int container;
    const char *key; /* its member name (lives as long as the inspection), or NULL */
    size_t key_len;
} split_leaf_t;

/* A number found spelt over several values, kept until its containers end
 * (a short array of digits is int_array_pi's, rewritable, finding). */
typedef struct {
    bg_detect_cat_t cat;
    bg_detect_conf_t conf;
    bg_detect_id_t det;
    int container; /* every value is an element of this array, else -1 */
    uint8_t nvals;
    char path[192]; /* the last value's path, cut at a character */
} split_hit_t;

typedef struct {
    /* the latest, oldest first; twice the window so that the leaves are
     * moved down once every SPLIT_MAX values, not at every value */
    split_leaf_t leaf[2 * SPLIT_MAX];
    size_t n;
    int gap; /* a value that is not digits was read since the last leaf */
    split_hit_t pending[SPLIT_PENDING];
    size_t npending;
} split_t;

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
    int gb_pass; /* scanning a GB18030 reading (bg_insp_scan_text): no deeper */
    /* Last: a new inspection zeroes the bytes before it and only split's
     * counters (its leaf[] and pending[] are read below n / npending
     * only), 3.4 kB it need not clear. */
    split_t split; /* split.c */
};

/* What a node would be; it is only created when a finding needs it. */
typedef struct {
    node_t n;
    int node; /* -1 until created */
} node_spec_t;

/* One walk over a document: its frames (for rule paths) and its path
 * text (for findings). */
typedef struct {
    frame_t frames[MAX_DEPTH + 1];
    size_t nframes;
    char path[PATH_MAX_LEN];
    size_t path_len;
} walk_t;

/* ------------------------------------------------------------------------ */
/* Small helpers on the hot path                                             */

/* Strings decoded during the scan live until the inspection is freed. */
#define ARENA_CHUNK 60000
static inline char *bg_insp_arena_alloc(bg_inspection_t *x, size_t n)
{
    arena_chunk_t *c = x->arena;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
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

/* Room for element N of array P (*CAP elements of SIZE bytes), without
 * zeroing what is added: P, or P grown by common/grow.h's bg_grow (doubling
 * from 16) with *CAP updated; NULL when the allocation fails (P is still
 * valid and owned by the caller). For arrays whose elements are each
 * written whole when they are added (findings[], pending[]: a 1 MB
 * document's 20,000 findings would otherwise zero ~5 MB of capacity). */
static inline void *bg_insp_grow_raw(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) /* the hot path, without a call */
        return p;
    return bg_grow(p, cap, n + 1, size, 16);
}

/* bg_insp_grow_raw with the new tail zeroed; the growing is out of line
 * (inspect.c), so callers on the hot path stay small enough to inline. */
void *bg_insp_grow_zeroed(void *p, size_t *cap, size_t n, size_t size);
static inline void *bg_insp_grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    return bg_insp_grow_zeroed(p, cap, n, size);
}

/* The node SP stands for, created on first use: its nodes[] index, or -1
 * when the allocation fails. */
static inline int bg_insp_ensure_node(bg_inspection_t *x, node_spec_t *sp)
{
    if (sp->node >= 0)
        return sp->node;
    node_t *nn = bg_insp_grow(x->nodes, &x->capnodes, x->nnodes, sizeof *nn);
    if (nn == NULL)
        return -1;
    x->nodes = nn;
    x->nodes[x->nnodes] = sp->n;
    sp->node = (int)x->nnodes++;
    return sp->node;
}

/* A node of KIND at SLOT (fields[] or hdrs[] index, -1 for none), not yet
 * created. */
static inline node_spec_t bg_insp_spec_of(node_kind_t kind, int slot)
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

/* Key-only categories: a value under such a key is PI whatever it holds
 * (policy-defined categories, found by field rules only, are too). */
static inline int bg_insp_key_only_category(bg_detect_cat_t c)
{
    return c >= BG_CAT_PERSON_NAME && c < BG_CAT_MAX;
}

/* The request's first header named NAME (case-insensitive), or NULL. */
static inline const bg_http_header_t *bg_insp_find_hdr(const bg_inspect_input_t *in,
                                                       const char *name)
{
    return bg_http_find_header(in->headers, in->nheaders, name);
}

/* ------------------------------------------------------------------------ */
/* Shared between the files (contracts above each definition)                */

/* jsonpath.c: compiled JSON paths */
void bg_insp_jpath_free(jpath_t *p);
int bg_insp_jpath_parse(const char *path, jpath_t *out, char *err, size_t errcap);
int bg_insp_jpath_match_from(const jpath_t *p, size_t si, const frame_t *fr, size_t nf, size_t fi);

/* inspect.c: findings, nodes and documents */
void bg_insp_set_undecodable(bg_inspection_t *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bg_finding_t *bg_insp_add_finding(bg_inspection_t *x, node_spec_t *sp, const char *path,
                                  bg_loc_t loc, bg_detect_cat_t cat, bg_detect_conf_t conf,
                                  const char *source, int whole, size_t off, size_t len);
bg_detect_cat_t bg_insp_key_category(bg_inspection_t *x, const char *k, size_t kl);
void bg_insp_scan_text(bg_inspection_t *x, node_spec_t *node, const char *path, bg_loc_t loc,
                       const char *key, size_t key_len, const char *s, size_t len);
int bg_insp_name_pi(const bg_inspection_t *x, const char *s, size_t n, bg_detect_finding_t *f);
int bg_insp_name_pi_scan(const bg_inspection_t *x, const char *s, size_t n, bg_detect_finding_t *f);

/* What a name's bytes hold, one table look-up a byte: KEYC_TRIG an ASCII
 * digit, '@', ':' or a non-ASCII byte (without one no detector can match
 * the name: detect.h's pre-filter); KEYC_NOTWORD a byte other than an
 * ASCII letter, digit, '_' or '-' (config/jsonpos.c writes a name without
 * one as ".name" in a path). */
#define KEYC_TRIG 1u
#define KEYC_NOTWORD 2u
extern const uint8_t bg_insp_keyclass[256];
static inline unsigned bg_insp_key_classes(const char *k, size_t kl)
{
    unsigned c = 0;
    for (size_t i = 0; i < kl; i++)
        c |= bg_insp_keyclass[(unsigned char)k[i]];
    return c;
}
void bg_insp_add_name_finding(bg_inspection_t *x, node_spec_t *sp, const char *path, bg_loc_t loc,
                              const bg_detect_finding_t *f, size_t name_len);
const rule_t *bg_insp_match_rule(const bg_inspection_t *x, const frame_t *fr, size_t nf,
                                 const char *key, size_t key_len);
int bg_insp_add_doc(bg_inspection_t *x, const char *text, size_t len, int container_node,
                    int container_field, int depth);

/* split.c: a mobile or ID number spelt over several values. Start a new
 * sequence (a new document). */
void bg_insp_split_reset(bg_inspection_t *x);
/* The value at PATH (its text TXT, TL bytes: a JSON string's content or
 * integer, or NULL for any other value) of CONTAINER (IN_ARRAY: an array
 * element), under KEY. */
void bg_insp_split_value(bg_inspection_t *x, const char *path, const char *txt, size_t tl,
                         int container, int in_array, const char *key, size_t kl);
/* CONTAINER ended; ARRAY_FINDING: int_array_pi made its finding on it.
 * Hands out the hits kept. */
void bg_insp_split_end(bg_inspection_t *x, int container, int array_finding);

/* jscan.c: the JSON scanner */
int bg_insp_jdocument(bg_inspection_t *x, walk_t *w, int doc, int record);
int bg_insp_jvalid(bg_inspection_t *x, const char *s, size_t len);
int bg_insp_try_nested_field(bg_inspection_t *x, int fi, const char *path);
int bg_insp_jseek(bg_inspection_t *x, const jpath_t *p, char *out, size_t cap);
int bg_insp_json_number_text(const char *s);

/* decode.c: decoders */
int bg_insp_inflate_body(const char *in, size_t len, int window, size_t max, char **out,
                         size_t *outlen, const char **why);
int bg_insp_parse_urlencoded(bg_inspection_t *x, field_set_t set, const char *s, size_t len);
void bg_insp_scan_field(bg_inspection_t *x, int fi);
int bg_insp_parse_cookies(bg_inspection_t *x);
void bg_insp_scan_headers(bg_inspection_t *x);
void bg_insp_media_type(const bg_inspect_input_t *in, char *out, size_t cap, const char **params);
int bg_insp_boundary_param(const bg_inspect_input_t *in, const char *params, char *out, size_t cap);
int bg_insp_parse_multipart(bg_inspection_t *x);
void bg_insp_parse_path(bg_inspection_t *x);
void bg_insp_scan_path_whole(bg_inspection_t *x);
void bg_insp_scan_gzip_header(bg_inspection_t *x, const char *p, size_t n);
void bg_insp_scan_fixed(bg_inspection_t *x, const char *path, bg_loc_t loc, const char *s,
                        size_t len);
void bg_insp_set_opaque(bg_inspection_t *x, const char *why);
int bg_insp_keep_extra(bg_inspection_t *x, char *p);
const char *bg_insp_imemmem(const char *h, size_t hl, const char *needle);

/* values.c: values */
int bg_insp_value_out(char *out, size_t cap, const char *s, size_t len);
const char *bg_insp_node_text(const bg_inspection_t *x, const node_t *n, size_t *len);

/* ops.c: operators */
char *bg_insp_op_text(const pending_t *p, bg_detect_cat_t cat, const char *s, size_t len,
                      int *drop);

#endif
