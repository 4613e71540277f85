/*
 * Consent registry: the separate consents (PIPL Arts. 14, 23, 25, 29, 39)
 * that the decide stage looks up for a data subject, a recipient or purpose,
 * and a destination region. docs/consent.md is the user-facing reference.
 *
 * Layers:
 *   bg_consent_reg_t     front end: validates input, turns raw subject ids
 *                        into keyed pseudonyms (HMAC-SHA-256 with the
 *                        caller's subject key), generates consent ids.
 *   bg_consent_backend_t storage behind a small vtable. The embedded default
 *                        is the file backend (policy/consent_file.c): an
 *                        append-only JSON-lines journal, loaded in memory,
 *                        fsync'ed on every change, compacted, reloaded when
 *                        another process (the CLI) changes it. A shared
 *                        store (Redis) can implement the same vtable.
 *
 * Raw subject ids never reach a backend, the journal or a log line: only the
 * 64-hex-digit pseudonym does. Evidence references are free text copied to
 * decision records; they must not contain personal information.
 *
 * Threads: bg_consent_find/get/list may be called from any number of threads
 * at once; grant/withdraw/refresh/compact from any thread too (writers are
 * serialised inside). A change made through one handle is visible to the
 * next bg_consent_find on every thread; a change made by another process is
 * visible to every look-up that starts after that process's change returned
 * (the file backend stat()s the journal before each look-up; the Redis
 * backend's writers wait until every instance dropped its cached copy).
 *
 * Times are milliseconds since the Unix epoch (UTC); 0 means "none".
 */
#ifndef BG_CONSENT_H
#define BG_CONSENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define BG_CONSENT_ID_SIZE 19        /* "c-" + 16 hex + NUL */
#define BG_CONSENT_PSEUDONYM_LEN 32  /* HMAC-SHA-256 output, bytes */
#define BG_CONSENT_PSEUDONYM_SIZE 65 /* 64 hex + NUL */
#define BG_CONSENT_NAME_MAX 128      /* recipient, purpose (bytes) */
#define BG_CONSENT_EVIDENCE_MAX 256  /* evidence reference (bytes) */
#define BG_CONSENT_BY_MAX 128        /* recorded_by, withdrawn_by (bytes) */
#define BG_CONSENT_SUBJECT_MAX 1024  /* raw subject id (bytes) */
#define BG_CONSENT_KEY_MIN 32        /* subject key (bytes) */
#define BG_CONSENT_KEY_MAX 1024
#define BG_CONSENT_KEY_CHECK_SIZE 17 /* 16 hex + NUL */

/* Return codes of the functions below (also in docs/consent.md). */
typedef enum {
    BG_CONSENT_OK = 0,
    BG_CONSENT_ERR = -1,       /* I/O or internal error; ERR says which */
    BG_CONSENT_EINVAL = -2,    /* bad argument (field named in ERR) */
    BG_CONSENT_ENOENT = -3,    /* no consent with that id */
    BG_CONSENT_EALREADY = -4,  /* already withdrawn */
    BG_CONSENT_ECORRUPT = -5,  /* journal unreadable; ERR names FILE:LINE */
    BG_CONSENT_EKEY = -6,      /* wrong or missing subject key */
    BG_CONSENT_EREADONLY = -7, /* handle opened read-only */
    BG_CONSENT_EEXIST = -8,    /* (backends) consent id already used */
} bg_consent_rc_t;

/* One consent as stored. Subject is the pseudonym, never the raw id. */
typedef struct {
    char id[BG_CONSENT_ID_SIZE];
    char subject[BG_CONSENT_PSEUDONYM_SIZE]; /* lowercase hex */
    char recipient[BG_CONSENT_NAME_MAX + 1]; /* recipient id or "*" */
    char purpose[BG_CONSENT_NAME_MAX + 1];   /* purpose or "*" */
    char region[3];                          /* "US", "HK", ... or "*" */
    int sensitive;                           /* names sensitive PI */
    int guardian;                            /* given by a minor's guardian */
    int64_t granted_at;
    int64_t expires_at;                         /* 0: no expiry */
    int64_t withdrawn_at;                       /* 0: not withdrawn */
    char evidence[BG_CONSENT_EVIDENCE_MAX + 1]; /* "" when none */
    char recorded_by[BG_CONSENT_BY_MAX + 1];
    char withdrawn_by[BG_CONSENT_BY_MAX + 1]; /* "" unless withdrawn */
} bg_consent_t;

/*
 * What a look-up asks. Exactly one of SUBJECT (raw id, SUBJECT_LEN bytes,
 * the same text the policy selects from the payload) or PSEUDONYM (from
 * bg_consent_pseudonymize, to hash once and ask several times) is set.
 *
 * A consent covers the request when, at AT:
 *   recipient is "*" or RECIPIENT, purpose is "*" or PURPOSE, region is "*"
 *   or COUNTRY (NULL or "" recipient/purpose/country match only "*"; an
 *   unknown destination country therefore needs a "*" region consent);
 *   NEED_SENSITIVE -> the consent covers sensitive PI;
 *   NEED_GUARDIAN  -> the consent was given by a guardian;
 *   granted_at <= AT < expires_at (if any) and AT < withdrawn_at (if any).
 */
typedef struct {
    const char *subject;
    size_t subject_len;
    const uint8_t *pseudonym; /* BG_CONSENT_PSEUDONYM_LEN bytes, or NULL */
    const char *recipient;
    const char *purpose;
    const char *country;
    int need_sensitive;
    int need_guardian;
    int64_t at;
} bg_consent_query_t;

/* Why no consent counted, from the candidate that came closest. */
typedef enum {
    BG_CONSENT_MISS_NONE = 0,        /* found (no miss) */
    BG_CONSENT_MISS_NO_CONSENT = 1,  /* the subject has no consent at all */
    BG_CONSENT_MISS_SCOPE = 2,       /* none names this recipient/purpose/region */
    BG_CONSENT_MISS_SENSITIVE = 3,   /* in scope, none covers sensitive PI */
    BG_CONSENT_MISS_GUARDIAN = 4,    /* in scope, none is a guardian's consent */
    BG_CONSENT_MISS_NOT_YET = 5,     /* granted after the request time */
    BG_CONSENT_MISS_EXPIRED = 6,     /* expired before the request time */
    BG_CONSENT_MISS_WITHDRAWN = 7,   /* withdrawn before the request time */
    BG_CONSENT_MISS_UNAVAILABLE = 8, /* registry failed: fail closed */
} bg_consent_miss_t;

typedef struct {
    bg_consent_t consent;             /* found: the consent that counts (cite its id
                                         and evidence in the decision record) */
    bg_consent_miss_t miss;           /* not found: why */
    char miss_id[BG_CONSENT_ID_SIZE]; /* not found: the closest candidate's
                                         id ("" if none), for the record */
} bg_consent_match_t;

/* What bg_consent_grant records. Strings are copied. */
typedef struct {
    const char *subject; /* raw id (SUBJECT_LEN bytes), or */
    size_t subject_len;
    const char *subject_pseudonym; /* 64 hex, when SUBJECT is NULL */
    const char *recipient;         /* id or "*" */
    const char *purpose;           /* purpose or "*" */
    const char *region;            /* ISO 3166 alpha-2 or "*" */
    int sensitive;
    int guardian;
    int64_t granted_at;      /* 0: now */
    int64_t expires_at;      /* 0: none; else > granted_at */
    const char *evidence;    /* NULL or "": none. Never personal information */
    const char *recorded_by; /* who records it ("cli:alice", "api"); required */
} bg_consent_grant_t;

typedef struct {
    int readonly;             /* never write: no create, no tear repair */
    int create;               /* create the journal (mode 0600) if missing */
    int check_interval_ms;    /* a failed registry is retried at most this
                                 often; 0: 1000. Look-ups stat() the file for
                                 outside changes every time; < 0: never
                                 (call bg_consent_refresh yourself) */
    double compact_ratio;     /* compact when journal lines exceed this many
                                 times the consents kept; 0: 1.5 */
    size_t compact_min_lines; /* ... and at least this many lines would go;
                                 0: 1000 */
    int64_t retain_ended_ms;  /* compaction drops consents withdrawn or
                                 expired longer ago than this; 0: 3 years
                                 (1095 days); < 0: keep forever */
} bg_consent_options_t;

typedef struct bg_consent_reg bg_consent_reg_t;

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */

/*
 * Open the file-backed registry at PATH with subject key KEY (KEYLEN bytes,
 * >= BG_CONSENT_KEY_MIN; copied into HMAC state, the caller wipes its copy).
 * KEY may be NULL for handles that only list and withdraw; such a handle
 * cannot grant or find. OPTS may be NULL (defaults).
 *
 * The journal's first line records a check value of the key: opening with a
 * different key fails with BG_CONSENT_EKEY semantics (message in ERR), so a
 * CLI and a daemon can never silently disagree.
 *
 * A torn last line (crash in mid-write) is not an error: every complete line
 * before it is loaded, and *WARNING (if WARNING is not NULL) is set to a
 * malloc'd message for the caller to log and free; the tear is removed by
 * the next write. A corrupt complete line fails the open with ERR naming
 * FILE:LINE. Returns NULL with ERR (>= 256 bytes advised) filled on failure.
 */
bg_consent_reg_t *bg_consent_open(const char *path, const void *key, size_t keylen,
                                  const bg_consent_options_t *opts, char **warning, char *err,
                                  size_t errcap);
/* Close and free. NULL is ignored. No look-up may be running. */
void bg_consent_close(bg_consent_reg_t *reg);

/*
 * Load a subject key from PATH: >= 64 hex digits (surrounding whitespace
 * ignored) or >= 32 raw bytes. Refuses group- or world-writable files; sets
 * WARN (may be NULL) when the file is readable by others. Returns the key
 * length, or -1 with ERR filled. The caller wipes KEY after use.
 */
int bg_consent_key_load(const char *path, uint8_t *key, size_t cap, char *warn, size_t warncap,
                        char *err, size_t errcap);

/* ------------------------------------------------------------------------
 * Look-up (hot path: hash + one stat() + one hash-table probe under a read
 * lock; Redis backend: hash + cache probe, or one round trip on a miss)
 * ------------------------------------------------------------------------ */

/*
 * Find the consent that covers Q (see bg_consent_query_t). When several do,
 * the most specific (fewest "*") wins, then the latest granted, then the
 * smallest id. Returns 1 and fills OUT->consent when found; 0 with OUT->miss
 * when none counts; -1 with OUT->miss = BG_CONSENT_MISS_UNAVAILABLE when the
 * registry cannot answer (no key, journal corrupted by an outside change):
 * the caller must treat that as "no consent" (fail closed).
 */
int bg_consent_find(bg_consent_reg_t *reg, const bg_consent_query_t *q, bg_consent_match_t *out);

/* HMAC-SHA-256(subject key, SUBJECT) into OUT. 0, or -1 without a key. */
int bg_consent_pseudonymize(const bg_consent_reg_t *reg, const char *subject, size_t len,
                            uint8_t out[BG_CONSENT_PSEUDONYM_LEN]);

/* ------------------------------------------------------------------------
 * Changes (durable before they return; visible to the next look-up)
 * ------------------------------------------------------------------------ */

/* Record a new consent; OUT (may be NULL) receives it with its new id. */
int bg_consent_grant(bg_consent_reg_t *reg, const bg_consent_grant_t *g, bg_consent_t *out,
                     char *err, size_t errcap);
/*
 * Withdraw consent ID effective at AT (0: now; not before its grant). Look-ups
 * for times >= AT no longer count it; earlier times still do, so past
 * decisions stay explained. OUT (may be NULL) receives the updated consent.
 * BG_CONSENT_ENOENT / BG_CONSENT_EALREADY as named.
 */
int bg_consent_withdraw(bg_consent_reg_t *reg, const char *id, int64_t at, const char *by,
                        bg_consent_t *out, char *err, size_t errcap);

/* ------------------------------------------------------------------------
 * Reading, maintenance
 * ------------------------------------------------------------------------ */

/* Called once per consent; return non-zero to stop. Runs under the
 * registry's read lock: it must not grant, withdraw or compact. */
typedef int (*bg_consent_each_fn)(void *arg, const bg_consent_t *c);

/* One consent by id: 0, or BG_CONSENT_ENOENT. */
int bg_consent_get(bg_consent_reg_t *reg, const char *id, bg_consent_t *out);
/* Every consent of the subject PSEUDONYM (NULL: all), in grant order. */
int bg_consent_list(bg_consent_reg_t *reg, const uint8_t *pseudonym, bg_consent_each_fn fn,
                    void *arg, char *err, size_t errcap);
/* Pick up changes made by other processes now. 0, or an rc with ERR. */
int bg_consent_refresh(bg_consent_reg_t *reg, char *err, size_t errcap);
/* Rewrite the journal to its live state now (see compact_* options). */
int bg_consent_compact(bg_consent_reg_t *reg, char *err, size_t errcap);
/* 0 when look-ups are answered; -1 with the reason in BUF otherwise. */
int bg_consent_health(bg_consent_reg_t *reg, char *buf, size_t cap);
/* Number of consents held (withdrawn and expired included). */
size_t bg_consent_count(bg_consent_reg_t *reg);
/* Name of the backend ("file"). */
const char *bg_consent_backend_name(const bg_consent_reg_t *reg);

/* "valid", "withdrawn", "expired" or "pending" (granted_at in the future). */
const char *bg_consent_status(const bg_consent_t *c, int64_t now);
/* "no-consent", "out-of-scope", ... (docs/consent.md); "" for NONE. */
const char *bg_consent_miss_name(bg_consent_miss_t miss);
/* Message for an rc ("no such consent", ...). */
const char *bg_consent_strerror(int rc);

/* RFC 3339 date-time ("2026-05-01T12:00:00Z", fractions, "+08:00" offsets)
 * to milliseconds. 0, or -1 when malformed or before 1970. */
int bg_consent_time_parse(const char *s, int64_t *out);
/* Milliseconds to "2026-05-01T12:00:00.000Z" (OUT >= 32 bytes). */
void bg_consent_time_format(int64_t ms, char *out, size_t cap);

/* The consent as a JSON object with its status at NOW (new reference;
 * NULL on ENOMEM). Times are RFC 3339 strings, absent ones null. */
json_t *bg_consent_to_json(const bg_consent_t *c, int64_t now);

/*
 * Validate a journal image (BUF, LEN bytes) named NAME in messages, without
 * opening a file: what `bordergate consent verify` and the fuzz target use.
 * Returns the number of consents, or -1 with ERR naming NAME:LINE. *TORN
 * (may be NULL) is set to the size of an unterminated last line (0 if none).
 * When ROUNDTRIP is not NULL it receives the compacted journal text
 * (malloc'd, caller frees), which must validate to the same consents.
 */
long bg_consent_journal_check(const char *buf, size_t len, const char *name, size_t *torn,
                              char **roundtrip, char *err, size_t errcap);

/* ------------------------------------------------------------------------
 * Integration: CLI and admin API
 * ------------------------------------------------------------------------ */

/*
 * `bordergate consent <grant|withdraw|show|list|verify|compact|keygen> ...`
 * ARGV[0] is "consent". Exit status: 0 ok, 1 failure, 2 usage.
 */
int bg_consent_cli(int argc, char **argv);

/*
 * Admin endpoints (JSON in and out; the caller does authentication):
 *   POST /consents                 grant (201)
 *   POST /consents/lookup          {"subject": ID} -> that subject's consents
 *   POST /consents/{id}/withdraw   withdraw (200; 404, 409)
 *   GET  /consents?subject=ID      that subject's consents
 *   GET  /consents/{id}            one consent
 * Returns 0 with *STATUS and *OUT_JSON (malloc'd; caller frees) set when
 * PATH is a consent endpoint, -1 (nothing set) when it is not. PATH may carry
 * a query string. Never echoes subject ids or evidence into error texts.
 */
int bg_consent_admin(bg_consent_reg_t *reg, const char *method, const char *path, const char *body,
                     size_t len, int *status, char **out_json);

/* ------------------------------------------------------------------------
 * Backend interface (for implementers of other stores)
 * ------------------------------------------------------------------------ */

/* The scope and validity fields of a consent, as the matcher reads them. */
typedef struct {
    const char *recipient;
    const char *purpose;
    const char *region;
    int sensitive;
    int guardian;
    int64_t granted_at;
    int64_t expires_at;
    int64_t withdrawn_at;
} bg_consent_scope_t;

/*
 * How far S gets with Q: BG_CONSENT_MISS_NONE when it covers Q, otherwise
 * the first check it fails (SCOPE, SENSITIVE, GUARDIAN, then the time
 * checks). Every backend must use this so they all agree.
 */
bg_consent_miss_t bg_consent_scope_eval(const bg_consent_scope_t *s, const bg_consent_query_t *q);
/* Specificity of S: the number of fields that are not "*". */
int bg_consent_scope_rank(const bg_consent_scope_t *s);
/* The scope fields of C (pointers into C). */
void bg_consent_scope_of(const bg_consent_t *c, bg_consent_scope_t *s);
/*
 * Check every field of C as a backend must before storing or after reading
 * it (formats, lengths, UTF-8, time order, not both recipient and purpose
 * "*"). 0, or BG_CONSENT_EINVAL with ERR naming the field (never its value).
 */
int bg_consent_validate(const bg_consent_t *c, char *err, size_t errcap);
/* Text fields (recipient, purpose, evidence, by): valid UTF-8 without
 * control characters, at most MAX bytes, and at least 1 unless EMPTY_OK. */
int bg_consent_text_ok(const char *s, size_t max, int empty_ok);

typedef struct bg_consent_backend bg_consent_backend_t;
struct bg_consent_backend {
    const char *name;
    /* As bg_consent_find, with the pseudonym already computed (Q->pseudonym
     * is set). Thread-safe, no blocking I/O beyond a stat(). */
    int (*find)(bg_consent_backend_t *self, const bg_consent_query_t *q, bg_consent_match_t *out);
    /* Store C (validated, id and subject filled). BG_CONSENT_EEXIST when
     * C->id is taken (the front end retries with a fresh id). */
    int (*grant)(bg_consent_backend_t *self, const bg_consent_t *c, char *err, size_t errcap);
    /* Withdraw ID at AT (> 0, already defaulted) by BY. */
    int (*withdraw)(bg_consent_backend_t *self, const char *id, int64_t at, const char *by,
                    bg_consent_t *out, char *err, size_t errcap);
    int (*get)(bg_consent_backend_t *self, const char *id, bg_consent_t *out);
    int (*list)(bg_consent_backend_t *self, const uint8_t *pseudonym, bg_consent_each_fn fn,
                void *arg, char *err, size_t errcap);
    int (*refresh)(bg_consent_backend_t *self, char *err, size_t errcap);
    int (*compact)(bg_consent_backend_t *self, char *err, size_t errcap);
    int (*health)(bg_consent_backend_t *self, char *buf, size_t cap);
    size_t (*count)(bg_consent_backend_t *self);
    void (*close)(bg_consent_backend_t *self);
};

/*
 * Wrap BACKEND (ownership passes to the registry, closed by
 * bg_consent_close) with subject key KEY. NULL with ERR on failure (BACKEND
 * is then closed too).
 */
bg_consent_reg_t *bg_consent_open_backend(bg_consent_backend_t *backend, const void *key,
                                          size_t keylen, char *err, size_t errcap);
/* The key's check value (16 hex) as the journal header records it. */
int bg_consent_key_check(const void *key, size_t keylen, char out[BG_CONSENT_KEY_CHECK_SIZE]);

/*
 * The file backend. KEY_CHECK (NULL: not verified; grants then refused by
 * the front end anyway) is compared with the journal's. See bg_consent_open
 * for WARNING and errors.
 */
bg_consent_backend_t *bg_consent_file_open(const char *path, const char *key_check,
                                           const bg_consent_options_t *opts, char **warning,
                                           char *err, size_t errcap);

/*
 * The Redis backend (policy/consent_redis.c, docs/consent.md "Redis
 * backend") on the store CFG (store/redis.h; copied). SUBSCRIBE: keep a
 * look-up cache invalidated by pub/sub (the daemon); 0 for a one-shot
 * handle without cache (the CLI). KEY_CHECK as for the file backend: a
 * different key recorded in the store fails the open (a daemon that cannot
 * reach the store yet starts anyway and answers registry-unavailable).
 */
struct bg_redis_cfg;
bg_consent_backend_t *bg_consent_redis_open(const struct bg_redis_cfg *cfg, const char *key_check,
                                            int subscribe, char *err, size_t errcap);
/* bg_consent_open for the Redis backend: KEY as there. */
bg_consent_reg_t *bg_consent_open_redis(const struct bg_redis_cfg *cfg, const void *key,
                                        size_t keylen, int subscribe, char *err, size_t errcap);

#endif
