/*
 * Inspection: decode what is about to leave and find personal information
 * in it; then, on the policy's instructions, rewrite it.
 *
 *   bg_inspect_rules_t   compiled from the policy: field rules (JSON paths,
 *                        key names -> category), which headers and cookies
 *                        to look at, confidence threshold. Immutable, shared.
 *   bg_inspection_t      one request: the decoded body (JSON document, form
 *                        fields, multipart parts), the query string, the
 *                        named headers and cookies, and the findings. Owned
 *                        by the request; freed with bg_inspection_free.
 *
 * What is decoded: Content-Encoding gzip/deflate (zlib, bounded output);
 * application/json and +json (the strict scanner in jscan.c, duplicate keys
 * refused: a later duplicate could hide the value the upstream reads); JSON
 * nested in JSON strings up to 3 levels; application/x-www-form-urlencoded;
 * multipart/form-data (text and JSON parts inspected, file parts listed by
 * type); the query string; named headers and cookies. A body that cannot be
 * decoded is reported (bg_inspection_undecodable) so the policy can fail
 * closed; it is never silently passed as "no findings".
 *
 * Paths in findings (what records and 451 bodies show; never values):
 *   $.user.phone  $.events[3].imei  $.payload(json).idfa   JSON body
 *   form.phone    multipart.profile   multipart.meta$.email  form / parts
 *   query.mobile  header.x-user-phone  cookie.uid
 *
 * A field rule or key that names a category for a whole object or array
 * ("consignee": {...}) gives one finding for the container, listed before
 * the findings inside it, which are still found and decided on their own;
 * an operator applied to the container covers everything in it.
 */
#ifndef BG_INSPECT_H
#define BG_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "inspect/detect.h"
#include "common/http_header.h"

typedef struct bg_inspect_rules bg_inspect_rules_t;
typedef struct bg_inspection bg_inspection_t;

typedef enum {
    BG_BODY_NONE = 0,
    BG_BODY_JSON,
    BG_BODY_FORM,
    BG_BODY_MULTIPART,
    BG_BODY_TEXT,  /* text/plain and other text types: scanned as one value */
    BG_BODY_OTHER, /* a content type we do not decode (images, octet-stream...) */
    BG_BODY_UNDECODABLE,
} bg_body_kind_t;

typedef enum {
    BG_LOC_BODY = 0,
    BG_LOC_QUERY,
    BG_LOC_HEADER,
    BG_LOC_COOKIE,
    BG_LOC_PATH,   /* a path segment ("path[2]") */
    BG_LOC_METHOD, /* the request method token */
} bg_loc_t;

typedef struct {
    char *path; /* see above; owned by the inspection */
    bg_loc_t loc;
    bg_detect_cat_t category;
    int sensitive; /* from the taxonomy / policy */
    bg_detect_conf_t confidence;
    const char *source;        /* detector name, "key" or the field rule id */
    int record;                /* batch record index, -1 outside records */
    int whole;                 /* covers the whole field value (key / rule) */
    size_t span_off, span_len; /* within the string value when !whole */
    int applied;               /* an operator has been applied (set by apply) */
    const char *op;            /* operator applied, or NULL */
    int anonymized;            /* output is no longer PI (PIPL Art. 73(4)) */
    int removed;               /* the field (or its record) was removed */
    int fixed;                 /* cannot be rewritten where it was found (the method,
                                  a header name, multipart part headers, text that
                                  was transcoded, or decoded from base64, hex or
                                  quoted-printable): applying an operator
                                  fails, so de-identifying it blocks the request */
    unsigned internal;         /* private: index of the node it refers to */
} bg_finding_t;

/* ---- Rules -------------------------------------------------------------- */

typedef struct {
    const char *id; /* shown as the finding's source */
    const char *path; /* "$.user.phone", "$.users[*].id_no", "$..phone", "$['身份证号']" or NULL */
    const char *key;          /* a key name matched at any depth (case-insensitive) or NULL */
    bg_detect_cat_t category; /* BG_CAT_NONE: the key names no category here (no key
                                 finding, no container finding, no hints); content
                                 detectors still read the value */
} bg_field_rule_spec_t;

typedef struct {
    const bg_field_rule_spec_t *rules;
    size_t nrules;
    const char *const *headers; /* header names to inspect (any case) */
    size_t nheaders;
    const char *const *cookies; /* cookie names, or "*" */
    size_t ncookies;
    int skip_query;                  /* do not inspect the query string */
    bg_detect_conf_t min_confidence; /* findings below are dropped (default MEDIUM) */
    const char *records_path;        /* "$.events[*]": one record per subject, or NULL */
    const uint8_t *sensitive;        /* [BG_CAT_MAX] 1 = sensitive; NULL = built-in */
    size_t max_decoded_bytes;        /* gzip output bound (default 64 MiB) */
    /* The route carries users' address books: an array under an address-
     * book key (contacts, address_book, 通讯录...) whose every entry holds a
     * name and a phone or e-mail is the contacts category. Without it (and
     * without a field rule) no key alone makes anything contacts. */
    int address_books;
} bg_inspect_rules_spec_t;

/* Compile SPEC (copied). NULL with ERR ("field rule 'r3': path: ...") on a
 * bad path. */
bg_inspect_rules_t *bg_inspect_rules_new(const bg_inspect_rules_spec_t *spec, char *err,
                                         size_t errcap);
void bg_inspect_rules_free(bg_inspect_rules_t *rules);

/* The built-in sensitivity of CAT (PIPL Art. 28, GB/T 35273-2020 Annex B;
 * the stricter reading where GB/T 45574-2025 differs). Kept equal to
 * config/categories.json by tests/unit/test_sensitivity.c. */
int bg_inspect_default_sensitive(bg_detect_cat_t cat);

/* Whether key K (KL bytes) names an object that stands for a person
 * ("customer", "billing_contact", "passengers", "用户信息"); with RELATIONS
 * also the words for another person who is not a role ("spouse", "parent",
 * "emergency_contact", "配偶"). One list for inspection (whose "name" is a
 * person's) and policy/attribute.c (whose data a finding is). */
int bg_inspect_person_key(const char *k, size_t kl, int relations);

/* Parse a JSON path as used in rules and subject selectors; 0 or -1 with ERR. */
int bg_inspect_path_valid(const char *path, char *err, size_t errcap);

/* ---- Inspecting ----------------------------------------------------------- */

typedef struct {
    const char *method;
    size_t method_len;
    const char *target; /* origin-form path?query */
    size_t target_len;
    const bg_http_header_t *headers;
    size_t nheaders;
    const char *body; /* as received (possibly gzip) */
    size_t body_len;
} bg_inspect_input_t;

/*
 * Decode and scan IN under RULES. Always returns an inspection (NULL only
 * when out of memory); check bg_inspection_body_kind(). The input buffers
 * must outlive the inspection (headers and target are referenced).
 * Cost: O(size of the decoded payload); see bench/inspect_bench.
 */
bg_inspection_t *bg_inspect(const bg_inspect_rules_t *rules, const bg_inspect_input_t *in);
void bg_inspection_free(bg_inspection_t *insp);
/* Free what this thread kept for its next inspection (bg_inspection_free
 * keeps one finished inspection's arrays per thread): for a thread that
 * ends, so nothing it held is lost. */
void bg_inspect_thread_done(void);

bg_body_kind_t bg_inspection_body_kind(const bg_inspection_t *insp);
/* Why part of the request is opaque (read neither as text nor as a format
 * bordergate decodes: a binary file part, an unknown charset, nesting
 * deeper than the bound), or NULL. A body of kind BG_BODY_OTHER is opaque
 * as a whole. Never quotes the body. Opaque data abroad is blocked unless
 * the route allows opaque bodies (policy: opaque_bodies). */
const char *bg_inspection_opaque(const bg_inspection_t *insp);
/* Why the body could not be decoded ("invalid JSON at line 1 column 9",
 * "unsupported Content-Encoding br", ...), or NULL. Never quotes the body. */
const char *bg_inspection_undecodable(const bg_inspection_t *insp);
const char *bg_body_kind_name(bg_body_kind_t kind);

size_t bg_inspection_count(const bg_inspection_t *insp);
bg_finding_t *bg_inspection_finding(bg_inspection_t *insp, size_t i);

/* Batch records (rules' records_path): count (0 when none matched). */
int bg_inspection_records(const bg_inspection_t *insp);

/*
 * The scalar at PATH (a JSON path into the body, or "query.NAME",
 * "header.NAME", "cookie.NAME", "form.NAME") as text, into OUT (NUL-ended,
 * truncated to CAP). With RECORD >= 0 a JSON PATH is relative to that
 * record ("$.uid" inside events[RECORD]). Returns the length, or -1 when
 * absent or not a scalar. Used for subject ids, contract references,
 * birth dates, the subject's region. The value is PI: never log it.
 */
int bg_inspection_value(const bg_inspection_t *insp, const char *path, int record, char *out,
                        size_t cap);
/* The finding's own value as text (span or whole scalar); -1 if not text. */
int bg_inspection_finding_value(const bg_inspection_t *insp, const bg_finding_t *f, char *out,
                                size_t cap);

/* ---- De-identification ---------------------------------------------------- */

typedef enum {
    BG_OP_REDACT = 0, /* remove the field (span: cut it out)  -> anonymized */
    BG_OP_MASK,       /* keep first/last N characters         -> de-identified, still PI */
    BG_OP_HASH,       /* HMAC-SHA-256 keyed pseudonym          -> pseudonymized, still PI */
    BG_OP_TOKENIZE,   /* AES-256-GCM reversible token          -> pseudonymized, still PI */
    BG_OP_GENERALIZE, /* coordinates/IP prefix/date->year/age  -> anonymized */
    BG_OP_REPLACE,    /* a constant                            -> anonymized */
} bg_op_kind_t;

typedef struct {
    bg_op_kind_t kind;
    int keep_start, keep_end;     /* mask */
    char mask_char;               /* mask: default '*' */
    int decimals;                 /* generalize coordinates (default 2) */
    int ipv4_prefix, ipv6_prefix; /* generalize IPs (default 24 / 48) */
    const char *replacement;      /* replace (default "[removed]") */
} bg_op_t;

typedef struct {
    const unsigned char *hash_key; /* pseudonym key (HMAC) */
    size_t hash_key_len;
    const char *hash_key_id;
    const unsigned char *token_key; /* 32 bytes, AES-256-GCM; kept domestic */
    const char *token_key_id;
} bg_op_keys_t;

const char *bg_op_name(bg_op_kind_t kind);
int bg_op_parse(const char *name, bg_op_kind_t *out);
/* 1 when KIND's output is no longer personal information. */
int bg_op_anonymizes(bg_op_kind_t kind);

/* Apply OP to finding I. 0, or -1 with ERR (missing key...). Idempotent per
 * finding; a field with several findings is rewritten once per finding. */
int bg_inspection_apply(bg_inspection_t *insp, size_t i, const bg_op_t *op,
                        const bg_op_keys_t *keys, char *err, size_t errcap);
/* Remove batch record R (its findings are marked removed). 0/-1. */
int bg_inspection_remove_record(bg_inspection_t *insp, int record);
/* Whether anything was rewritten. */
int bg_inspection_modified(const bg_inspection_t *insp);

/*
 * The rewritten request: new body (identity encoding; the caller drops
 * Content-Encoding and sets Content-Length) and target (query rewritten),
 * and the header values to replace. Buffers are allocated (caller frees).
 * Only call when bg_inspection_modified().
 */
typedef struct {
    char *body;
    size_t body_len;
    char *target;
    size_t target_len;
    int body_changed, target_changed;
    size_t nheaders;         /* headers rewritten */
    size_t header_index[32]; /* which of the input's headers */
    char *header_values[32]; /* new value; NULL: remove the header */
} bg_rewrite_t;

int bg_inspection_render(bg_inspection_t *insp, bg_rewrite_t *out);
void bg_rewrite_free(bg_rewrite_t *rw);

/* ---- Tokens ------------------------------------------------------------------ */

/* Reverse a token made by BG_OP_TOKENIZE with KEY (for authorised domestic
 * use: `bordergate detokenize`). Writes the original value into OUT. Returns
 * its length or -1 (wrong key, tampered token). */
int bg_token_open(const char *token, const unsigned char *key, char *out, size_t cap);

#endif
