/*
 * The consent registry's file backend, inside (policy/consent_file.c is the
 * backend itself; see its header comment for the journal format and the
 * lock order). Three parts, one file each:
 *   consent_index.c    the in-memory index: entries in grant order and two
 *                      hash tables (by subject pseudonym, by consent id),
 *                      and the big-reader lock that guards it
 *   consent_journal.c  journal lines: parse, check and apply one, load a run
 *                      of them, write them, serialize a compacted journal
 *   consent_file.c     the file: reading and appending, reloads, compaction,
 *                      the backend's vtable
 * Not a public interface: only those three files include it.
 */
#ifndef BG_CONSENT_FILE_INT_H
#define BG_CONSENT_FILE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/sbuf.h"
#include "policy/consent.h"

/* ------------------------------------------------------------------------
 * Big-reader lock: one writer-preferring rwlock per cache line; a thread
 * read-locks its own shard, a writer locks them all. Look-ups on different
 * cores then never write to a shared cache line (a single rwlock's reader
 * count made two threads slower than one). Writers are rare: a grant, a
 * withdrawal, a reload.
 * ------------------------------------------------------------------------ */

#define BR_SHARDS 32

typedef struct {
    _Alignas(64) pthread_rwlock_t l;
} br_shard_t;

typedef struct {
    br_shard_t shard[BR_SHARDS];
} bg_brlock_t;

void bg_brlock_init(bg_brlock_t *b);
void bg_brlock_destroy(bg_brlock_t *b);
/* Read-lock the calling thread's shard; returns the shard to pass to
 * bg_brlock_rdunlock. */
int bg_brlock_rdlock(bg_brlock_t *b);
void bg_brlock_rdunlock(bg_brlock_t *b, int shard);
/* Lock / unlock every shard, always in the same order. */
void bg_brlock_wrlock(bg_brlock_t *b);
void bg_brlock_wrunlock(bg_brlock_t *b);

/* ------------------------------------------------------------------------
 * The in-memory index (consent_index.c)
 * ------------------------------------------------------------------------ */

typedef struct fentry {
    struct fentry *snext; /* chain in the subject table */
    struct fentry *inext; /* chain in the id table */
    size_t seq;           /* position in grant order */
    uint8_t subject[BG_CONSENT_PSEUDONYM_LEN];
    char id[BG_CONSENT_ID_SIZE];
    char region[3];
    bg_consent_scope_t scope; /* recipient/purpose/region point into this entry */
    const char *evidence;
    const char *recorded_by;
    char *withdrawn_by; /* own allocation; NULL unless withdrawn */
    char text[];        /* recipient, purpose, evidence, recorded_by; NUL-separated */
} fentry_t;

typedef struct {
    fentry_t **v; /* grant order; owns the entries */
    size_t n, cap;
    fentry_t **sb; /* subject table */
    fentry_t **ib; /* id table */
    size_t nb;     /* buckets in each, a power of two */
    size_t ops;    /* grant and withdraw lines read or written */
    int has_header;
    char key_check[BG_CONSENT_KEY_CHECK_SIZE];
    char created_at[40];
} fstate_t;

/* The bucket hash of a subject pseudonym (its first eight bytes). */
uint64_t bg_cindex_subject_hash(const uint8_t *s);
/* An empty index; NULL on ENOMEM. */
fstate_t *bg_cindex_new(void);
/* Free ST and every entry in it (NULL is fine). */
void bg_cindex_free(fstate_t *st);
/* The entry with consent id ID, or NULL. */
fentry_t *bg_cindex_find_id(const fstate_t *st, const char *id);
/* Make room for one more entry (vector and tables). 0/-1 (ENOMEM: ST is
 * unchanged). Call under the write lock when the state is shared. */
int bg_cindex_reserve(fstate_t *st);
/* Insert E (takes ownership). bg_cindex_reserve must have succeeded. */
void bg_cindex_insert(fstate_t *st, fentry_t *e);
/* Entry from a validated consent. NULL on ENOMEM. */
fentry_t *bg_cindex_entry_new(const bg_consent_t *c);
/* Free E (NULL is fine). */
void bg_cindex_entry_free(fentry_t *e);
/* E as a consent record. On every look-up that finds a consent: no
 * memset, no printf. */
void bg_cindex_entry_export(const fentry_t *e, bg_consent_t *c);

/* ------------------------------------------------------------------------
 * Journal lines (consent_journal.c)
 * ------------------------------------------------------------------------ */

#define JOURNAL_FORMAT "bordergate-consent"
#define JOURNAL_VERSION 1
#define LINE_MAX_BYTES 16384

enum { OP_HEADER, OP_GRANT, OP_WITHDRAW };

typedef struct {
    int kind;
    fentry_t *grant; /* OP_GRANT; owned until applied */
    char id[BG_CONSENT_ID_SIZE];
    int64_t at;
    char *by; /* OP_WITHDRAW; owned until applied */
    char key_check[BG_CONSENT_KEY_CHECK_SIZE];
    char created_at[40];
} fop_t;

/* Free what OP still owns. */
void bg_cjournal_op_clear(fop_t *op);
/* Parse one line (without its newline) into OP. 0, or -1 with WHY (never
 * quoting the line's values). */
int bg_cjournal_op_parse(const char *line, size_t len, fop_t *op, char *why, size_t cap);
/* Apply a checked OP (ownership of its allocations passes to ST).
 * bg_cindex_reserve must have succeeded for a grant. */
void bg_cjournal_op_apply(fstate_t *st, fop_t *op);
/*
 * Read the complete lines of BUF (LEN bytes) into ST, which is private to
 * the caller or write-locked via LOCK (may be NULL). *LINE_NO is the number
 * of lines before BUF and advances; *CONSUMED receives the bytes of the
 * lines applied. Stops at the first bad line: 0, or an rc with ERR naming
 * NAME:LINE.
 */
int bg_cjournal_load(fstate_t *st, bg_brlock_t *lock, const char *buf, size_t len, const char *name,
                     const char *want_check, size_t *line_no, size_t *consumed, char *err,
                     size_t errcap);
/* Append O as one JSON line to B; consumes O (NULL, out of memory, marks B
 * failed like a failed append). */
void bg_cjournal_add_json(bg_sbuf_t *b, json_t *o);
/* The header line's object. NULL on ENOMEM. */
json_t *bg_cjournal_header(const char *key_check, const char *created_at);
/* The grant line's object of C, withdrawal folded in when present. NULL on
 * ENOMEM, never an object with a field missing. */
json_t *bg_cjournal_grant(const bg_consent_t *c);
/* The compacted journal of ST: header, then one grant line per kept
 * consent (those that ended RETAIN ms or more before NOW are dropped;
 * RETAIN < 0 keeps all). KEY_CHECK is used when ST has no header. NULL on
 * ENOMEM or when there is no key check to write. *KEPT receives the
 * consents written. */
char *bg_cjournal_serialize(const fstate_t *st, const char *key_check, int64_t now, int64_t retain,
                            size_t *len, size_t *kept);

#endif
