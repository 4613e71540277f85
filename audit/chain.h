/*
 * Audit chain building blocks shared by the writer (audit.c), the verifier
 * (verify.c), the unit tests and the fuzz target. Not for other modules:
 * they use audit/audit.h.
 *
 * One record is one line:
 *
 *   {"seq":N,"prev":"<64 hex>",<members>,"hash":"<64 hex>"}\n
 *
 * "seq" and "prev" are always the first two members, "hash" always the last.
 * The hash is SHA-256 over the bytes
 *
 *   prev_hex "\n" {"seq":N,"prev":"<64 hex>",<members>}
 *
 * i.e. the line as it would read without its hash member. Because it is
 * computed over the exact bytes (not a re-serialization), any change of any
 * byte of a line, including whitespace or key order, breaks the hash.
 */
#ifndef BG_AUDIT_CHAIN_H
#define BG_AUDIT_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#define BG_AUDIT_HEX_LEN 64
/* ,"hash":"<64 hex>"}  — the fixed tail of every line (newline excluded). */
#define BG_AUDIT_HASH_TAIL_LEN (9 + BG_AUDIT_HEX_LEN + 2)
/* The prev of the very first record of a log. */
extern const char bg_audit_chain_genesis[BG_AUDIT_HEX_LEN + 1];

/* Growable byte buffer. Zero-initialise; free with bg_audit_buf_free. */
typedef struct {
    char *data;
    size_t len, cap;
} bg_audit_buf_t;

int bg_audit_buf_add(bg_audit_buf_t *b, const void *p, size_t n);
void bg_audit_buf_free(bg_audit_buf_t *b);

/* Chain position plus a reusable digest context. Not thread-safe: one per
 * thread. */
typedef struct bg_audit_chain bg_audit_chain_t;

bg_audit_chain_t *bg_audit_chain_new(uint64_t next_seq, const char *prev_hex);
void bg_audit_chain_free(bg_audit_chain_t *c);
uint64_t bg_audit_chain_next_seq(const bg_audit_chain_t *c);
/* Hash of the last record appended (or the prev given at creation). */
const char *bg_audit_chain_prev(const bg_audit_chain_t *c);
/* Move the chain to NEXT_SEQ / PREV_HEX (e.g. to roll back a batch). */
void bg_audit_chain_set(bg_audit_chain_t *c, uint64_t next_seq, const char *prev_hex);

/*
 * Append one line to OUT: seq and prev from the chain, then the NPARTS
 * members PARTS[i] (LENS[i] bytes each, each "key":value[,"key":value...],
 * no braces; empty parts are skipped), then the hash and "\n". Advances the
 * chain. HASH_OUT (65 bytes) receives the new hash when not NULL. 0, or -1
 * (ENOMEM) with OUT and the chain unchanged.
 */
int bg_audit_chain_append(bg_audit_chain_t *c, bg_audit_buf_t *out, const char *const *parts,
                          const size_t *lens, size_t nparts, char *hash_out);

/* The fixed parts of a line, found without a JSON parser. */
typedef struct {
    uint64_t seq;
    char prev[BG_AUDIT_HEX_LEN + 1];
    char hash[BG_AUDIT_HEX_LEN + 1]; /* as stored in the line */
    size_t covered_len;              /* bytes before the hash member */
} bg_audit_line_t;

/*
 * Check the shape of LINE (LEN bytes, no newline): the {"seq":N,"prev":"..."
 * head, the ,"hash":"..."} tail, lowercase hex. Fills OUT. 0, or -1 when the
 * line does not have the shape (the caller then reports it unparsable).
 */
int bg_audit_chain_parse_line(const char *line, size_t len, bg_audit_line_t *out);

/* Recompute the hash of a parsed line into HEX_OUT (65 bytes) and return 1
 * when it equals the stored one, 0 when not. */
int bg_audit_chain_rehash(bg_audit_chain_t *c, const char *line, const bg_audit_line_t *pl,
                          char *hex_out);

/* Checkpoint signature: lowercase hex HMAC-SHA-256(KEY, DOMAIN || CHAIN_HEX)
 * where DOMAIN is "bordergate-audit-checkpoint-v1\n". 0/-1. */
int bg_audit_chain_hmac(const unsigned char *key, size_t keylen, const char *chain_hex,
                        char *hex_out);

/* Constant-time equality of two N-byte strings. */
int bg_audit_ct_equal(const char *a, const char *b, size_t n);

/* Key id: first 8 hex digits of SHA-256(KEY), into OUT (9 bytes). */
void bg_audit_chain_key_id(const unsigned char *key, size_t keylen, char *out);

/* ------------------------------------------------------------------------
 * File names: PREFIX-YYYYMMDD-HHMMSS-NNNNNN.jsonl (UTC creation time, file
 * index; at least six digits). Files sort by index, not by name, so a clock
 * that stepped back cannot reorder the log.
 * ------------------------------------------------------------------------ */

/* 1 when PREFIX is usable in a file name: [A-Za-z0-9_.-]{1,64}, not "."/"..". */
int bg_audit_files_prefix_ok(const char *prefix);
/* Format a file name into OUT. */
void bg_audit_files_name(const char *prefix, uint64_t wall_ms, uint64_t index, char *out,
                         size_t cap);
/* 1 when NAME (no directory) is a log file of PREFIX; *INDEX and *DAY
 * (YYYYMMDD as a number) are filled when not NULL. */
int bg_audit_files_parse_name(const char *prefix, const char *name, uint64_t *index, uint32_t *day);
/* UTC day of WALL_MS as YYYYMMDD. */
uint32_t bg_audit_files_day(uint64_t wall_ms);

/* Names (not paths) of PREFIX's log files in directory DIRFD, sorted by file
 * index. *OUT is a NULL-terminated array; free with bg_audit_files_free. 0,
 * or -1 with errno set. */
int bg_audit_files_scan(int dirfd, const char *prefix, char ***out, size_t *n);
void bg_audit_files_free(char **names, size_t n);

/* Parse an RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SS[.fff]Z" into ms since the
 * epoch. 0/-1. */
int bg_audit_parse_time(const char *s, uint64_t *ms);

#endif
