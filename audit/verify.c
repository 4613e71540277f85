/*
 * Audit verification: `bordergate audit verify`.
 *
 * Walks the files in log order, one record at a time, and stops at the first
 * problem, which it names as FILE:LINE: seq N: what (classification). To
 * tell a deleted record from a reordered or inserted one it looks around the
 * bad line (the next line, later lines of the same file, the earlier line
 * that had the same seq); each file is mapped whole, and a line index
 * (8 bytes a line) is its only per-file memory.
 *
 * What it can and cannot prove is in docs/audit.md ("What verify proves").
 */
#include "audit/audit.h"
#include "audit/chain.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RETENTION_LINKS 4096

typedef struct {
    uint64_t last_seq;
    char last_hash[BG_AUDIT_HEX_LEN + 1];
    uint64_t at_seq; /* seq of the retention_delete record */
} retention_link_t;

typedef struct {
    const bg_audit_verify_options_t *opt;
    bg_audit_verify_result_t *res;
    bg_audit_chain_t *chain;
    FILE *report;

    /* Chain position. */
    int have_prev;
    uint64_t expected; /* next seq */
    char prev_hash[BG_AUDIT_HEX_LEN + 1];
    const char *last_type; /* "checkpoint:close", "checkpoint:rotate", ... (static strings) */

    /* Previous file. */
    int have_prev_file;
    char prev_name[512];
    uint64_t prev_index;
    uint64_t prev_lines;
    int prev_ended_rotate;

    /* Start of what is verified. */
    int started;
    uint64_t start_seq;
    char start_prev[BG_AUDIT_HEX_LEN + 1];
    char start_file[512];

    /* Checkpoints. */
    uint64_t since_ckpt; /* records since the last checkpoint */
    int since_known;
    uint64_t every_max; /* largest declared checkpoint interval */
    uint64_t unsigned_ckpts, unknown_key_ckpts;
    char tail_file[512]; /* where the records after the last checkpoint begin */
    size_t tail_line;

    retention_link_t *links;
    size_t nlinks;
    int failed;
} verifier_t;

/* One line of the file being verified. */
typedef struct {
    const char *p;
    size_t len; /* without the newline */
    int has_nl;
} line_ref_t;

typedef struct {
    const char *name;
    const char *data;
    size_t size;
    line_ref_t *lines;
    size_t nlines;
} file_view_t;

/* Facts about one line, without judging its place in the chain. */
typedef struct {
    int shaped;  /* fixed head/tail present */
    int json_ok; /* parses, members agree with the fixed parts */
    int hash_ok; /* stored hash recomputes */
    bg_audit_line_t pl;
    json_t *j; /* owned when json_ok */
} line_info_t;

static void note(verifier_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(verifier_t *v, const char *fmt, ...)
{
    if (v->report == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("note: ", v->report);
    vfprintf(v->report, fmt, ap);
    fputc('\n', v->report);
    va_end(ap);
}

static int problem(verifier_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int problem(verifier_t *v, const char *fmt, ...)
{
    if (v->failed)
        return 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->res->problem, sizeof v->res->problem, fmt, ap);
    va_end(ap);
    v->failed = 1;
    v->res->ok = 0;
    return 1;
}

static void info_clear(line_info_t *li)
{
    json_decref(li->j);
    memset(li, 0, sizeof *li);
}

static void line_read(verifier_t *v, const line_ref_t *l, line_info_t *li)
{
    memset(li, 0, sizeof *li);
    if (bg_audit_chain_parse_line(l->p, l->len, &li->pl) != 0)
        return;
    li->shaped = 1;
    char hx[BG_AUDIT_HEX_LEN + 1];
    li->hash_ok = bg_audit_chain_rehash(v->chain, l->p, &li->pl, hx);
    json_t *j = json_loadb(l->p, l->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    json_t *seq = json_object_get(j, "seq");
    const char *prev = json_string_value(json_object_get(j, "prev"));
    const char *hash = json_string_value(json_object_get(j, "hash"));
    json_t *type = json_object_get(j, "type");
    if (!json_is_integer(seq) || json_integer_value(seq) < 0 ||
        (uint64_t)json_integer_value(seq) != li->pl.seq || prev == NULL ||
        strcmp(prev, li->pl.prev) != 0 || hash == NULL || strcmp(hash, li->pl.hash) != 0 ||
        (type != NULL && !json_is_string(type))) {
        json_decref(j);
        return;
    }
    li->json_ok = 1;
    li->j = j;
}

static const char *rec_type(const line_info_t *li)
{
    const char *t = json_string_value(json_object_get(li->j, "type"));
    return t != NULL ? t : "";
}

/* Does line I of F link straight to the record before the anomaly? */
static int links_to_prev(verifier_t *v, const file_view_t *f, size_t i)
{
    if (!v->have_prev || i >= f->nlines || !f->lines[i].has_nl)
        return 0;
    bg_audit_line_t pl;
    if (bg_audit_chain_parse_line(f->lines[i].p, f->lines[i].len, &pl) != 0)
        return 0;
    return pl.seq == v->expected && strcmp(pl.prev, v->prev_hash) == 0;
}

/* Line index (0-based) of the first line after I in F whose seq is in
 * [LO, HI), or (size_t)-1. */
static size_t find_seq_after(const file_view_t *f, size_t i, uint64_t lo, uint64_t hi)
{
    for (size_t k = i + 1; k < f->nlines; k++) {
        bg_audit_line_t pl;
        if (bg_audit_chain_parse_line(f->lines[k].p, f->lines[k].len, &pl) == 0 && pl.seq >= lo &&
            pl.seq < hi)
            return k;
    }
    return (size_t)-1;
}

/* Line index (0-based) before I in F that holds SEQ, or (size_t)-1. */
static size_t find_seq_before(const file_view_t *f, size_t i, uint64_t seq)
{
    for (size_t k = 0; k < i; k++) {
        bg_audit_line_t pl;
        if (bg_audit_chain_parse_line(f->lines[k].p, f->lines[k].len, &pl) == 0 && pl.seq == seq)
            return k;
    }
    return (size_t)-1;
}

static const bg_audit_key_t *find_key(verifier_t *v, const char *id)
{
    for (size_t i = 0; i < v->opt->nkeys; i++)
        if (strcmp(v->opt->keys[i].id, id) == 0)
            return &v->opt->keys[i];
    return NULL;
}

/* Checks of a checkpoint record whose place in the chain is right. */
static int check_checkpoint(verifier_t *v, const file_view_t *f, size_t i, const line_info_t *li)
{
    const char *name = f->name;
    size_t ln = i + 1;
    uint64_t seq = li->pl.seq;
    const char *chain = json_string_value(json_object_get(li->j, "chain"));
    json_t *records = json_object_get(li->j, "records");
    json_t *every = json_object_get(li->j, "every");
    json_t *kid = json_object_get(li->j, "key_id");
    json_t *mac = json_object_get(li->j, "hmac");
    if (chain == NULL || strcmp(chain, li->pl.prev) != 0)
        return problem(v,
                       "%s:%zu: seq %" PRIu64 ": checkpoint names a chain hash that is not the "
                       "previous record's (checkpoint forged or moved)",
                       name, ln, seq);
    if (!json_is_integer(records) || json_integer_value(records) < 0)
        return problem(v, "%s:%zu: seq %" PRIu64 ": checkpoint has no record count", name, ln, seq);
    if (v->since_known && (uint64_t)json_integer_value(records) != v->since_ckpt)
        return problem(v,
                       "%s:%zu: seq %" PRIu64 ": checkpoint counts %" PRId64
                       " records since the previous checkpoint, the log has %" PRIu64
                       " (checkpoint forged or records removed with it)",
                       name, ln, seq, (int64_t)json_integer_value(records), v->since_ckpt);
    if (json_is_integer(every) && json_integer_value(every) > 0 &&
        (uint64_t)json_integer_value(every) > v->every_max)
        v->every_max = (uint64_t)json_integer_value(every);
    v->res->checkpoints++;
    if (json_is_null(mac) || mac == NULL) {
        if (v->opt->nkeys > 0)
            return problem(v,
                           "%s:%zu: seq %" PRIu64 ": checkpoint is not signed although a key was "
                           "given (forged, or written without a key)",
                           name, ln, seq);
        v->unsigned_ckpts++;
        return 0;
    }
    const char *id = json_string_value(kid);
    const char *hm = json_string_value(mac);
    if (id == NULL || hm == NULL || strlen(hm) != BG_AUDIT_HEX_LEN)
        return problem(v, "%s:%zu: seq %" PRIu64 ": checkpoint signature is malformed", name, ln,
                       seq);
    if (v->opt->nkeys == 0) {
        v->unknown_key_ckpts++;
        return 0;
    }
    const bg_audit_key_t *k = find_key(v, id);
    if (k == NULL)
        return problem(v,
                       "%s:%zu: seq %" PRIu64 ": checkpoint is signed with key id %.16s, not one "
                       "of the keys given (wrong key, or checkpoint forged)",
                       name, ln, seq, id);
    char want[BG_AUDIT_HEX_LEN + 1];
    if (bg_audit_chain_hmac(k->bytes, k->len, chain, want) != 0 ||
        !bg_audit_ct_equal(want, hm, BG_AUDIT_HEX_LEN))
        return problem(v,
                       "%s:%zu: seq %" PRIu64 ": checkpoint signature does not verify (checkpoint "
                       "forged, or the records before it rewritten with recomputed hashes)",
                       name, ln, seq);
    v->res->checkpoints_verified++;
    return 0;
}

/* The first line of a file against the previous file and the chain. LI is
 * shaped, parsed and its hash recomputes. 0 ok, 1 problem. */
static int check_file_start(verifier_t *v, const file_view_t *f, const line_info_t *li)
{
    const char *name = f->name;
    uint64_t seq = li->pl.seq;
    json_t *jidx = json_object_get(li->j, "file_index");
    if (strcmp(rec_type(li), "file_start") != 0) {
        if (v->have_prev && seq > v->expected)
            return problem(v,
                           "%s:1: seq %" PRIu64 ": the file does not start with its file_start "
                           "record: seq %" PRIu64 "..%" PRIu64
                           " cut from its head (file truncated at its start)",
                           name, seq, v->expected, seq - 1);
        return problem(v,
                       "%s:1: seq %" PRIu64 ": the file does not start with its file_start record "
                       "(file truncated at its start, or not an audit file)",
                       name, seq);
    }
    if (!json_is_integer(jidx) || json_integer_value(jidx) < 0)
        return problem(v, "%s:1: seq %" PRIu64 ": file_start has no file_index", name, seq);
    uint64_t idx = (uint64_t)json_integer_value(jidx);
    json_t *every = json_object_get(li->j, "checkpoint_every");
    if (json_is_integer(every) && json_integer_value(every) > 0 &&
        (uint64_t)json_integer_value(every) > v->every_max)
        v->every_max = (uint64_t)json_integer_value(every);

    if (!v->have_prev) {
        /* First file verified. */
        if (seq == 1 && strcmp(li->pl.prev, bg_audit_chain_genesis) == 0) {
            v->since_known = 1;
            v->since_ckpt = 0;
        }
        return 0;
    }
    if (idx <= v->prev_index)
        return problem(v,
                       "%s:1: seq %" PRIu64 ": file index %" PRIu64 " follows file index %" PRIu64
                       " of %s (files out of order, or a file copied in)",
                       name, seq, idx, v->prev_index, v->prev_name);
    if (idx > v->prev_index + 1) {
        if (idx == v->prev_index + 2)
            return problem(v,
                           "%s:1: seq %" PRIu64 ": file index %" PRIu64 " follows %" PRIu64
                           " (%s): the file with index %" PRIu64 " is missing, seq %" PRIu64
                           "..%" PRIu64 " (file deleted)",
                           name, seq, idx, v->prev_index, v->prev_name, v->prev_index + 1,
                           v->expected, seq > v->expected ? seq - 1 : v->expected);
        return problem(v,
                       "%s:1: seq %" PRIu64 ": file index %" PRIu64 " follows %" PRIu64
                       " (%s): files %" PRIu64 "..%" PRIu64 " are missing (files deleted)",
                       name, seq, idx, v->prev_index, v->prev_name, v->prev_index + 1, idx - 1);
    }
    if (seq > v->expected) {
        if (!v->prev_ended_rotate)
            return problem(v,
                           "%s:%" PRIu64 ": after seq %" PRIu64
                           ": the file ends without its rotation checkpoint and the next file "
                           "starts at seq %" PRIu64 ": %" PRIu64
                           " record(s) cut from its end (file truncated)",
                           v->prev_name, v->prev_lines + 1, v->expected - 1, seq,
                           seq - v->expected);
        return problem(v,
                       "%s:1: seq %" PRIu64 ": seq gap between files: expected %" PRIu64
                       ", %" PRIu64 " record(s) missing (records deleted)",
                       name, seq, v->expected, seq - v->expected);
    }
    if (seq < v->expected)
        return problem(v,
                       "%s:1: seq %" PRIu64 ": the file starts at seq %" PRIu64
                       " but the previous file already reached seq %" PRIu64
                       " (file copied in, or files overlap)",
                       name, seq, seq, v->expected - 1);
    if (strcmp(li->pl.prev, v->prev_hash) != 0)
        return problem(v,
                       "%s:1: seq %" PRIu64 ": file_start does not link to the last record of %s "
                       "(file replaced, or the end of the previous file rewritten)",
                       name, seq, v->prev_name);
    if (!v->prev_ended_rotate)
        return problem(v,
                       "%s:%" PRIu64 ": after seq %" PRIu64
                       ": the file ends without its rotation checkpoint (checkpoint removed and "
                       "the chain rewritten)",
                       v->prev_name, v->prev_lines + 1, v->expected - 1);
    const char *pf = json_string_value(json_object_get(li->j, "prev_file"));
    const char *base = strrchr(v->prev_name, '/');
    base = base != NULL ? base + 1 : v->prev_name;
    if (pf != NULL && strcmp(pf, base) != 0)
        note(v, "%s: file_start names the previous file %s, verified as %s (renamed?)", name, pf,
             base);
    return 0;
}

/* Explain why line I (which does not continue the chain) is bad. */
static int classify(verifier_t *v, const file_view_t *f, size_t i, const line_info_t *li)
{
    const char *name = f->name;
    size_t ln = i + 1;
    const line_ref_t *l = &f->lines[i];

    if (!l->has_nl) {
        if (v->have_prev)
            return problem(v,
                           "%s:%zu: after seq %" PRIu64 ": the last line is incomplete (%zu bytes, "
                           "no newline): file truncated (torn write)",
                           name, ln, v->expected - 1, l->len);
        return problem(v,
                       "%s:%zu: the last line is incomplete (%zu bytes, no newline): file "
                       "truncated (torn write)",
                       name, ln, l->len);
    }
    if (!li->shaped || !li->json_ok) {
        if (links_to_prev(v, f, i + 1))
            return problem(v,
                           "%s:%zu: after seq %" PRIu64 ": a line that is not a record; the next "
                           "line links to the record before it (line inserted)",
                           name, ln, v->expected - 1);
        if (li->shaped)
            return problem(v,
                           "%s:%zu: seq %" PRIu64 ": the record does not parse as the writer "
                           "wrote it (record modified)",
                           name, ln, li->pl.seq);
        if (v->have_prev)
            return problem(v,
                           "%s:%zu: after seq %" PRIu64 ": not a record (unparsable line: record "
                           "modified or garbage)",
                           name, ln, v->expected - 1);
        return problem(v, "%s:%zu: not a record (unparsable line)", name, ln);
    }
    uint64_t seq = li->pl.seq;
    if (!li->hash_ok) {
        if (links_to_prev(v, f, i + 1))
            return problem(v,
                           "%s:%zu: seq %" PRIu64 ": record inserted (its hash does not "
                           "recompute and the next record links to the one before it)",
                           name, ln, seq);
        return problem(v, "%s:%zu: seq %" PRIu64 ": hash mismatch (record modified)", name, ln,
                       seq);
    }
    /* The record itself is intact; its place in the chain is not. */
    if (seq == v->expected) {
        if (links_to_prev(v, f, i + 1))
            return problem(v,
                           "%s:%zu: seq %" PRIu64 ": record inserted (the next record links to "
                           "the one before it)",
                           name, ln, seq);
        return problem(v,
                       "%s:%zu: seq %" PRIu64 ": prev does not match the hash of the record "
                       "before it (record replaced, or the record before it modified and "
                       "re-hashed)",
                       name, ln, seq);
    }
    if (seq > v->expected) {
        size_t k = find_seq_after(f, i, v->expected, seq);
        if (k != (size_t)-1)
            return problem(v,
                           "%s:%zu: seq %" PRIu64 ": out of order: expected seq %" PRIu64
                           ", which is at line %zu (records reordered)",
                           name, ln, seq, v->expected, k + 1);
        if (seq - v->expected == 1)
            return problem(
                v, "%s:%zu: seq %" PRIu64 ": seq gap: seq %" PRIu64 " is missing (record deleted)",
                name, ln, seq, v->expected);
        return problem(v,
                       "%s:%zu: seq %" PRIu64 ": seq gap: seq %" PRIu64 "..%" PRIu64
                       " are missing (%" PRIu64 " records deleted)",
                       name, ln, seq, v->expected, seq - 1, seq - v->expected);
    }
    /* seq < expected: this seq was seen already. */
    size_t k = find_seq_before(f, i, seq);
    if (k != (size_t)-1) {
        bg_audit_line_t pl;
        if (bg_audit_chain_parse_line(f->lines[k].p, f->lines[k].len, &pl) == 0 &&
            strcmp(pl.hash, li->pl.hash) == 0)
            return problem(v,
                           "%s:%zu: seq %" PRIu64 ": duplicate of line %zu (record copied in: "
                           "inserted)",
                           name, ln, seq, k + 1);
        return problem(v,
                       "%s:%zu: seq %" PRIu64 ": seq %" PRIu64
                       " already appeared at line %zu (record inserted)",
                       name, ln, seq, seq, k + 1);
    }
    return problem(v,
                   "%s:%zu: seq %" PRIu64 ": seq goes back from %" PRIu64
                   " (record inserted or records reordered)",
                   name, ln, seq, v->expected - 1);
}

/* Accept line I of F as the next record (everything already checked). */
static int accept(verifier_t *v, const file_view_t *f, size_t i, const line_info_t *li)
{
    const char *type = rec_type(li);
    if (i > 0 && strcmp(type, "file_start") == 0)
        return problem(v,
                       "%s:%zu: seq %" PRIu64 ": a file_start record inside a file (files "
                       "concatenated, or record inserted)",
                       f->name, i + 1, li->pl.seq);
    if (strcmp(type, "checkpoint") == 0) {
        if (check_checkpoint(v, f, i, li) != 0)
            return 1;
        v->since_ckpt = 0;
        v->since_known = 1;
        const char *r = json_string_value(json_object_get(li->j, "reason"));
        v->last_type = r != NULL && strcmp(r, "rotate") == 0  ? "checkpoint:rotate"
                       : r != NULL && strcmp(r, "close") == 0 ? "checkpoint:close"
                                                              : "checkpoint";
    } else {
        if (v->since_ckpt++ == 0) {
            snprintf(v->tail_file, sizeof v->tail_file, "%s", f->name);
            v->tail_line = i + 1;
        }
        v->last_type = "record";
        if (strcmp(type, "retention_delete") == 0 && v->nlinks < MAX_RETENTION_LINKS) {
            json_t *ls = json_object_get(li->j, "last_seq");
            const char *lh = json_string_value(json_object_get(li->j, "last_hash"));
            if (json_is_integer(ls) && lh != NULL && strlen(lh) == BG_AUDIT_HEX_LEN) {
                if (v->links == NULL)
                    v->links = calloc(MAX_RETENTION_LINKS, sizeof *v->links);
                if (v->links != NULL) {
                    retention_link_t *rl = &v->links[v->nlinks++];
                    rl->last_seq = (uint64_t)json_integer_value(ls);
                    memcpy(rl->last_hash, lh, sizeof rl->last_hash);
                    rl->at_seq = li->pl.seq;
                }
            }
        }
    }
    if (!v->started) {
        v->started = 1;
        v->start_seq = li->pl.seq;
        memcpy(v->start_prev, li->pl.prev, sizeof v->start_prev);
        snprintf(v->start_file, sizeof v->start_file, "%s", f->name);
        v->res->first_seq = li->pl.seq;
    }
    v->have_prev = 1;
    v->expected = li->pl.seq + 1;
    memcpy(v->prev_hash, li->pl.hash, sizeof v->prev_hash);
    v->res->records++;
    v->res->last_seq = li->pl.seq;
    return 0;
}

/* Build the line index of F. 0/-1 (ENOMEM). */
static int index_lines(file_view_t *f)
{
    size_t n = 0;
    for (const char *p = f->data, *end = f->data + f->size; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        n++;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    f->lines = n > 0 ? calloc(n, sizeof *f->lines) : NULL;
    if (n > 0 && f->lines == NULL)
        return -1;
    size_t k = 0;
    for (const char *p = f->data, *end = f->data + f->size; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        f->lines[k].p = p;
        f->lines[k].len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        f->lines[k].has_nl = nl != NULL;
        k++;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    f->nlines = n;
    return 0;
}

/* Verify one file. 0 = go on, 1 = problem found. */
static int verify_file(verifier_t *v, const char *name, const char *data, size_t size, int last)
{
    file_view_t f = {.name = name, .data = data, .size = size};
    v->res->files++;
    if (size == 0) {
        if (last) {
            note(v,
                 "%s is empty (created just before the writer stopped; it is reused at the "
                 "next start)",
                 name);
            return 0;
        }
        return problem(v, "%s: empty file in the middle of the log (its records deleted)", name);
    }
    if (index_lines(&f) != 0)
        return problem(v, "%s: out of memory", name);
    int rc = 0;
    for (size_t i = 0; i < f.nlines && rc == 0; i++) {
        line_info_t li;
        line_read(v, &f.lines[i], &li);
        int intact = f.lines[i].has_nl && li.shaped && li.json_ok && li.hash_ok;
        if (!intact) {
            rc = classify(v, &f, i, &li);
        } else if (i == 0) {
            rc = check_file_start(v, &f, &li);
            if (rc == 0)
                rc = accept(v, &f, i, &li);
        } else if (li.pl.seq != v->expected || strcmp(li.pl.prev, v->prev_hash) != 0) {
            rc = classify(v, &f, i, &li);
        } else {
            rc = accept(v, &f, i, &li);
        }
        info_clear(&li);
    }
    if (rc == 0) {
        snprintf(v->prev_name, sizeof v->prev_name, "%s", name);
        v->prev_lines = f.nlines;
        v->prev_ended_rotate =
            v->last_type != NULL && strcmp(v->last_type, "checkpoint:rotate") == 0;
        v->have_prev_file = 1;
    }
    if (rc == 0 && f.nlines > 0) {
        /* The file_start was the first line (SIZE > 0: there is one): its
         * index is the file's. */
        bg_audit_line_t pl;
        json_t *j = json_loadb(f.lines[0].p, f.lines[0].len, JSON_ALLOW_NUL, NULL);
        json_t *idx = json_object_get(j, "file_index");
        if (json_is_integer(idx) &&
            bg_audit_chain_parse_line(f.lines[0].p, f.lines[0].len, &pl) == 0)
            v->prev_index = (uint64_t)json_integer_value(idx);
        json_decref(j);
    }
    free(f.lines);
    return rc;
}

static int verify_finish(verifier_t *v)
{
    bg_audit_verify_result_t *res = v->res;
    if (v->failed)
        return 1;
    if (!v->started) {
        if (v->opt->complete || res->files > 0)
            note(v, "no records");
        return 0;
    }
    int genesis = v->start_seq == 1 && strcmp(v->start_prev, bg_audit_chain_genesis) == 0;
    if (!genesis) {
        const retention_link_t *hit = NULL;
        for (size_t i = 0; i < v->nlinks; i++)
            if (v->links[i].last_seq + 1 == v->start_seq &&
                strcmp(v->links[i].last_hash, v->start_prev) == 0)
                hit = &v->links[i];
        if (hit != NULL)
            note(v,
                 "the log starts at seq %" PRIu64 ": earlier files were deleted by retention "
                 "(recorded at seq %" PRIu64 ")",
                 v->start_seq, hit->at_seq);
        else if (v->opt->complete)
            return problem(v,
                           "%s:1: seq %" PRIu64 ": the log starts at seq %" PRIu64
                           " but no retention_delete record accounts for the records before it "
                           "(oldest files deleted)",
                           v->start_file, v->start_seq, v->start_seq);
        else
            note(v, "verification starts at seq %" PRIu64 " (earlier files not given)",
                 v->start_seq);
    }
    if (v->opt->nkeys > 0 && v->every_max > 0 && v->since_ckpt >= v->every_max)
        return problem(
            v,
            "%s:%zu: seq %" PRIu64 ": this and the next %" PRIu64
            " records follow the last checkpoint, but the writer signs at least every %" PRIu64
            " records (checkpoints removed and the chain rewritten)",
            v->tail_file, v->tail_line, res->last_seq - v->since_ckpt + 1, v->since_ckpt - 1,
            v->every_max);
    if (v->since_ckpt > 0)
        note(v,
             "the last %" PRIu64 " record(s) (seq %" PRIu64 "..%" PRIu64
             ") follow the last checkpoint: chained but not yet signed",
             v->since_ckpt, res->last_seq - v->since_ckpt + 1, res->last_seq);
    if (v->last_type != NULL && strcmp(v->last_type, "checkpoint:close") == 0)
        note(v, "the log ends with a closing checkpoint (writer closed cleanly)");
    else
        note(v,
             "the log ends at seq %" PRIu64 " without a closing checkpoint (in use, or the "
             "writer stopped without closing)",
             res->last_seq);
    if (v->opt->nkeys == 0 && res->checkpoints > 0)
        note(v, "%" PRIu64 " checkpoint signature(s) not checked: no key given", res->checkpoints);
    return 0;
}

static int verifier_init(verifier_t *v, const bg_audit_verify_options_t *opt,
                         bg_audit_verify_result_t *res)
{
    memset(v, 0, sizeof *v);
    memset(res, 0, sizeof *res);
    res->ok = 1;
    v->opt = opt;
    v->res = res;
    v->report = opt->report;
    v->chain = bg_audit_chain_new(1, NULL);
    if (v->chain == NULL) {
        snprintf(res->problem, sizeof res->problem, "out of memory");
        res->ok = 0;
        return -1;
    }
    return 0;
}

static int verifier_done(verifier_t *v, int rc)
{
    bg_audit_verify_result_t *res = v->res;
    bg_audit_chain_free(v->chain);
    free(v->links);
    if (v->report != NULL) {
        if (rc == 0 && res->ok) {
            fprintf(v->report,
                    "OK: %" PRIu64 " records in %" PRIu64 " file%s, chain intact, %" PRIu64
                    " checkpoint%s verified%s\n",
                    res->records, res->files, res->files == 1 ? "" : "s", res->checkpoints_verified,
                    res->checkpoints_verified == 1 ? "" : "s",
                    v->opt->nkeys == 0 ? " (no key given: signatures not checked)" : "");
        } else {
            fprintf(v->report, "FAIL: %s\n", res->problem);
        }
    }
    if (rc < 0)
        return -1;
    return res->ok ? 0 : 1;
}

int bg_audit_verify_mem(const char *const *names, const char *const *data, const size_t *lens,
                        size_t n, const bg_audit_verify_options_t *opt,
                        bg_audit_verify_result_t *res)
{
    verifier_t v;
    if (verifier_init(&v, opt, res) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (verify_file(&v, names[i], data[i], lens[i], i + 1 == n) != 0)
            break;
    verify_finish(&v);
    return verifier_done(&v, 0);
}

int bg_audit_verify_files(const char *const *files, size_t n, const bg_audit_verify_options_t *opt,
                          bg_audit_verify_result_t *res)
{
    verifier_t v;
    if (verifier_init(&v, opt, res) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int fd = open(files[i], O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            problem(&v, "%s: cannot read: %s", files[i], strerror(errno));
            if (fd >= 0)
                close(fd);
            rc = -1;
            break;
        }
        if (!S_ISREG(st.st_mode)) {
            problem(&v, "%s: not a regular file", files[i]);
            close(fd);
            rc = -1;
            break;
        }
        size_t size = (size_t)st.st_size;
        void *map = NULL;
        if (size > 0) {
            map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (map == MAP_FAILED) {
                problem(&v, "%s: cannot read: %s", files[i], strerror(errno));
                close(fd);
                rc = -1;
                break;
            }
            madvise(map, size, MADV_SEQUENTIAL);
        }
        close(fd);
        if (verify_file(&v, files[i], map != NULL ? map : "", size, i + 1 == n) != 0)
            rc = 1;
        if (map != NULL)
            munmap(map, size);
    }
    if (rc == 0)
        verify_finish(&v);
    return verifier_done(&v, rc < 0 ? -1 : 0);
}

/* ------------------------------------------------------------------------
 * Listing and the CLI
 * ------------------------------------------------------------------------ */

void bg_audit_free_list(char **paths, size_t n)
{
    bg_audit_files_free(paths, n);
}

int bg_audit_list_files(const char *dir, const char *prefix, char ***out, size_t *n, char *err,
                        size_t errcap)
{
    if (prefix == NULL)
        prefix = "audit";
    *out = NULL;
    *n = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errcap, "cannot open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char **names;
    size_t count;
    int rc = bg_audit_files_scan(dfd, prefix, &names, &count);
    int e = errno;
    close(dfd);
    if (rc != 0) {
        snprintf(err, errcap, "cannot list %s: %s", dir, strerror(e));
        return -1;
    }
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    for (size_t i = 0; i < count; i++) {
        char *p = NULL;
        if (asprintf(&p, "%.*s/%s", (int)dl, dir, names[i]) < 0) {
            bg_audit_files_free(names, count);
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        free(names[i]);
        names[i] = p;
    }
    *out = names;
    *n = count;
    return 0;
}
