/*
 * Consent registry, file backend: an append-only journal of JSON lines,
 * held in memory as two hash tables (by subject pseudonym, by consent id).
 *
 *   {"op":"journal","format":"bordergate-consent","version":1,"key_check":..,"created_at":..}
 *   {"op":"grant","id":"c-..","subject":"<64 hex>","recipient":..,...}
 *   {"op":"withdraw","id":"c-..","at":"2026-..Z","by":".."}
 *
 * Locks, in the order they are taken:
 *   io      (mutex) the one thread that reads or writes the file: the fd,
 *           the consumed offset, what was last seen of the file. Look-ups
 *           only try-lock it, at most once per check interval.
 *   flock   (on the journal, LOCK_EX) writers in every process: the CLI
 *           and the daemon never interleave lines or compact under each
 *           other. Readers never take it; they ignore an unterminated last
 *           line, which is either a write in progress or a tear.
 *   lock    (big-reader lock, below) the in-memory state. Look-ups hold
 *           their shard for one hash probe; a change holds every shard for
 *           one insert or one field update, after the line is durable.
 *
 * Only the io holder mutates the state, so it may read the state without
 * the rwlock.
 */
#include "policy/consent.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"

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
} brlock_t;

static _Thread_local int t_shard = -1;
static atomic_int g_next_shard;

static void br_init(brlock_t *b)
{
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writers must not starve behind a steady stream of look-ups. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (int i = 0; i < BR_SHARDS; i++)
        pthread_rwlock_init(&b->shard[i].l, &ra);
    pthread_rwlockattr_destroy(&ra);
}

static void br_destroy(brlock_t *b)
{
    for (int i = 0; i < BR_SHARDS; i++)
        pthread_rwlock_destroy(&b->shard[i].l);
}

/* Returns the shard to pass to br_rdunlock. */
static int br_rdlock(brlock_t *b)
{
    if (t_shard < 0)
        t_shard = atomic_fetch_add(&g_next_shard, 1) % BR_SHARDS;
    pthread_rwlock_rdlock(&b->shard[t_shard].l);
    return t_shard;
}

static void br_rdunlock(brlock_t *b, int shard)
{
    pthread_rwlock_unlock(&b->shard[shard].l);
}

static void br_wrlock(brlock_t *b)
{
    for (int i = 0; i < BR_SHARDS; i++) /* always in this order */
        pthread_rwlock_wrlock(&b->shard[i].l);
}

static void br_wrunlock(brlock_t *b)
{
    for (int i = BR_SHARDS - 1; i >= 0; i--)
        pthread_rwlock_unlock(&b->shard[i].l);
}

#define JOURNAL_FORMAT "bordergate-consent"
#define JOURNAL_VERSION 1
#define LINE_MAX_BYTES 16384
#define DEFAULT_INTERVAL_MS 1000
#define DEFAULT_RATIO 1.5
#define DEFAULT_MIN_LINES 1000
#define DEFAULT_RETAIN_MS (1095LL * 24 * 3600 * 1000)

/* ------------------------------------------------------------------------
 * In-memory state
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

static uint64_t subject_hash(const uint8_t *s)
{
    uint64_t h; /* an HMAC output: any eight bytes are uniform */
    memcpy(&h, s, sizeof h);
    return h;
}

static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h;
}

static fstate_t *state_new(void)
{
    return calloc(1, sizeof(fstate_t));
}

static void entry_free(fentry_t *e)
{
    if (e == NULL)
        return;
    free(e->withdrawn_by);
    free(e);
}

static void state_free(fstate_t *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++)
        entry_free(st->v[i]);
    free(st->v);
    free(st->sb);
    free(st->ib);
    free(st);
}

static fentry_t *state_find_id(const fstate_t *st, const char *id)
{
    if (st->nb == 0)
        return NULL;
    for (fentry_t *e = st->ib[id_hash(id) & (st->nb - 1)]; e != NULL; e = e->inext) {
        if (strcmp(e->id, id) == 0)
            return e;
    }
    return NULL;
}

/* Make room for one more entry (vector and tables). 0/-1 (ENOMEM). Call
 * under the write lock when the state is shared. */
static int state_reserve(fstate_t *st)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        fentry_t **v = realloc(st->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        st->v = v;
        st->cap = cap;
    }
    if (st->n + 1 > st->nb) {
        size_t nb = st->nb ? st->nb * 2 : 64;
        fentry_t **sb = calloc(nb, sizeof *sb), **ib = calloc(nb, sizeof *ib);
        if (sb == NULL || ib == NULL) {
            free(sb);
            free(ib);
            return -1;
        }
        for (size_t i = 0; i < st->n; i++) {
            fentry_t *e = st->v[i];
            size_t s = subject_hash(e->subject) & (nb - 1), k = id_hash(e->id) & (nb - 1);
            e->snext = sb[s];
            sb[s] = e;
            e->inext = ib[k];
            ib[k] = e;
        }
        free(st->sb);
        free(st->ib);
        st->sb = sb;
        st->ib = ib;
        st->nb = nb;
    }
    return 0;
}

/* Insert E (takes ownership). state_reserve must have succeeded. */
static void state_insert(fstate_t *st, fentry_t *e)
{
    size_t s = subject_hash(e->subject) & (st->nb - 1), k = id_hash(e->id) & (st->nb - 1);
    e->seq = st->n;
    st->v[st->n++] = e;
    e->snext = st->sb[s];
    st->sb[s] = e;
    e->inext = st->ib[k];
    st->ib[k] = e;
}

static int unhex(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Entry from a validated consent. NULL on ENOMEM. */
static fentry_t *entry_new(const bg_consent_t *c)
{
    size_t lr = strlen(c->recipient) + 1, lp = strlen(c->purpose) + 1, le = strlen(c->evidence) + 1,
           lb = strlen(c->recorded_by) + 1;
    fentry_t *e = calloc(1, sizeof *e + lr + lp + le + lb);
    if (e == NULL)
        return NULL;
    if (c->withdrawn_by[0] != '\0' && (e->withdrawn_by = strdup(c->withdrawn_by)) == NULL) {
        free(e);
        return NULL;
    }
    for (int i = 0; i < BG_CONSENT_PSEUDONYM_LEN; i++)
        e->subject[i] = (uint8_t)((unhex(c->subject[2 * i]) & 15) << 4 |
                                  (unhex(c->subject[2 * i + 1]) & 15)); /* validated hex */
    memcpy(e->id, c->id, sizeof e->id);
    memcpy(e->region, c->region, sizeof e->region);
    char *p = e->text;
    memcpy(p, c->recipient, lr);
    e->scope.recipient = p;
    p += lr;
    memcpy(p, c->purpose, lp);
    e->scope.purpose = p;
    p += lp;
    memcpy(p, c->evidence, le);
    e->evidence = p;
    p += le;
    memcpy(p, c->recorded_by, lb);
    e->recorded_by = p;
    e->scope.region = e->region;
    e->scope.sensitive = c->sensitive;
    e->scope.guardian = c->guardian;
    e->scope.granted_at = c->granted_at;
    e->scope.expires_at = c->expires_at;
    e->scope.withdrawn_at = c->withdrawn_at;
    return e;
}

/* Bounded copy; entries were length-checked when made, so no truncation. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* On every look-up that finds a consent: no memset, no printf. */
static void entry_export(const fentry_t *e, bg_consent_t *c)
{
    static const char hex[] = "0123456789abcdef";
    memcpy(c->id, e->id, sizeof c->id);
    for (int i = 0; i < BG_CONSENT_PSEUDONYM_LEN; i++) {
        c->subject[2 * i] = hex[e->subject[i] >> 4];
        c->subject[2 * i + 1] = hex[e->subject[i] & 15];
    }
    c->subject[2 * BG_CONSENT_PSEUDONYM_LEN] = '\0';
    copy_str(c->recipient, sizeof c->recipient, e->scope.recipient);
    copy_str(c->purpose, sizeof c->purpose, e->scope.purpose);
    memcpy(c->region, e->region, sizeof c->region);
    c->sensitive = e->scope.sensitive;
    c->guardian = e->scope.guardian;
    c->granted_at = e->scope.granted_at;
    c->expires_at = e->scope.expires_at;
    c->withdrawn_at = e->scope.withdrawn_at;
    copy_str(c->evidence, sizeof c->evidence, e->evidence);
    copy_str(c->recorded_by, sizeof c->recorded_by, e->recorded_by);
    copy_str(c->withdrawn_by, sizeof c->withdrawn_by,
             e->withdrawn_by != NULL ? e->withdrawn_by : "");
}

/* ------------------------------------------------------------------------
 * Journal lines
 * ------------------------------------------------------------------------ */

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

static void op_clear(fop_t *op)
{
    entry_free(op->grant);
    free(op->by);
    op->grant = NULL;
    op->by = NULL;
}

/* A field name fit to repeat in a message: short lowercase identifier. */
static const char *safe_key(const char *k)
{
    size_t n = 0;
    for (; k[n] != '\0'; n++) {
        if (n >= 24 || !((k[n] >= 'a' && k[n] <= 'z') || k[n] == '_'))
            return "(unprintable)";
    }
    return n > 0 ? k : "(empty)";
}

static int only_keys(json_t *o, const char *const *allowed, char *why, size_t cap)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL && !ok; a++)
            ok = strcmp(k, *a) == 0;
        if (!ok) {
            snprintf(why, cap, "unknown field \"%s\"", safe_key(k));
            return -1;
        }
    }
    return 0;
}

/* String field KEY into DST (CAP bytes). Absent: "" unless REQUIRED. */
static int get_str(json_t *o, const char *key, int required, char *dst, size_t cap, char *why,
                   size_t whycap)
{
    json_t *v = json_object_get(o, key);
    dst[0] = '\0';
    if (v == NULL && !required)
        return 0;
    if (!json_is_string(v)) {
        snprintf(why, whycap, "\"%s\" must be a string%s", key, required ? " and is required" : "");
        return -1;
    }
    if (json_string_length(v) >= cap) {
        snprintf(why, whycap, "\"%s\" is longer than %zu bytes", key, cap - 1);
        return -1;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_time(json_t *o, const char *key, int required, int64_t *out, char *why,
                    size_t whycap)
{
    char buf[48];
    *out = 0;
    if (json_object_get(o, key) == NULL && !required)
        return 0;
    if (get_str(o, key, 1, buf, sizeof buf, why, whycap) != 0)
        return -1;
    if (bg_consent_time_parse(buf, out) != 0) {
        snprintf(why, whycap, "\"%s\" is not an RFC 3339 time", key);
        return -1;
    }
    return 0;
}

static int get_bool(json_t *o, const char *key, int *out, char *why, size_t whycap)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_boolean(v)) {
        snprintf(why, whycap, "\"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* Parse one line (without its newline) into OP. 0, or -1 with WHY (never
 * quoting the line's values). */
static int op_parse(const char *line, size_t len, fop_t *op, char *why, size_t cap)
{
    static const char *const header_keys[] = {"op",        "format",     "version",
                                              "key_check", "created_at", NULL};
    static const char *const grant_keys[] = {
        "op",       "id",          "subject",      "recipient",    "purpose",
        "region",   "sensitive",   "guardian",     "granted_at",   "expires_at",
        "evidence", "recorded_by", "withdrawn_at", "withdrawn_by", NULL};
    static const char *const withdraw_keys[] = {"op", "id", "at", "by", NULL};
    json_error_t je;
    char name[16];
    int rc = -1;
    memset(op, 0, sizeof *op);
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        /* jansson's text may quote the input: give the column only. */
        snprintf(why, cap, "not valid JSON (column %d)", je.column);
        return -1;
    }
    if (!json_is_object(o)) {
        snprintf(why, cap, "not a JSON object");
        goto done;
    }
    if (get_str(o, "op", 1, name, sizeof name, why, cap) != 0)
        goto done;
    if (strcmp(name, "journal") == 0) {
        char fmt[32];
        json_t *ver = json_object_get(o, "version");
        int64_t created;
        op->kind = OP_HEADER;
        if (only_keys(o, header_keys, why, cap) != 0 ||
            get_str(o, "format", 1, fmt, sizeof fmt, why, cap) != 0)
            goto done;
        if (strcmp(fmt, JOURNAL_FORMAT) != 0) {
            snprintf(why, cap, "not a %s journal", JOURNAL_FORMAT);
            goto done;
        }
        if (!json_is_integer(ver) || json_integer_value(ver) != JOURNAL_VERSION) {
            snprintf(why, cap, "journal version is not %d (written by a newer bordergate?)",
                     JOURNAL_VERSION);
            goto done;
        }
        if (get_str(o, "key_check", 1, op->key_check, sizeof op->key_check, why, cap) != 0 ||
            get_str(o, "created_at", 1, op->created_at, sizeof op->created_at, why, cap) != 0)
            goto done;
        if (strlen(op->key_check) != 16 || strspn(op->key_check, "0123456789abcdef") != 16) {
            snprintf(why, cap, "\"key_check\" must be 16 lowercase hex digits");
            goto done;
        }
        if (bg_consent_time_parse(op->created_at, &created) != 0) {
            snprintf(why, cap, "\"created_at\" is not an RFC 3339 time");
            goto done;
        }
        rc = 0;
    } else if (strcmp(name, "grant") == 0) {
        bg_consent_t c;
        memset(&c, 0, sizeof c);
        op->kind = OP_GRANT;
        if (only_keys(o, grant_keys, why, cap) != 0 ||
            get_str(o, "id", 1, c.id, sizeof c.id, why, cap) != 0 ||
            get_str(o, "subject", 1, c.subject, sizeof c.subject, why, cap) != 0 ||
            get_str(o, "recipient", 1, c.recipient, sizeof c.recipient, why, cap) != 0 ||
            get_str(o, "purpose", 1, c.purpose, sizeof c.purpose, why, cap) != 0 ||
            get_str(o, "region", 1, c.region, sizeof c.region, why, cap) != 0 ||
            get_bool(o, "sensitive", &c.sensitive, why, cap) != 0 ||
            get_bool(o, "guardian", &c.guardian, why, cap) != 0 ||
            get_time(o, "granted_at", 1, &c.granted_at, why, cap) != 0 ||
            get_time(o, "expires_at", 0, &c.expires_at, why, cap) != 0 ||
            get_str(o, "evidence", 0, c.evidence, sizeof c.evidence, why, cap) != 0 ||
            get_str(o, "recorded_by", 1, c.recorded_by, sizeof c.recorded_by, why, cap) != 0 ||
            get_time(o, "withdrawn_at", 0, &c.withdrawn_at, why, cap) != 0 ||
            get_str(o, "withdrawn_by", c.withdrawn_at != 0, c.withdrawn_by, sizeof c.withdrawn_by,
                    why, cap) != 0)
            goto done;
        if (bg_consent_validate(&c, why, cap) != BG_CONSENT_OK)
            goto done;
        if ((op->grant = entry_new(&c)) == NULL) {
            snprintf(why, cap, "out of memory");
            goto done;
        }
        rc = 0;
    } else if (strcmp(name, "withdraw") == 0) {
        char by[BG_CONSENT_BY_MAX + 1];
        op->kind = OP_WITHDRAW;
        if (only_keys(o, withdraw_keys, why, cap) != 0 ||
            get_str(o, "id", 1, op->id, sizeof op->id, why, cap) != 0 ||
            get_time(o, "at", 1, &op->at, why, cap) != 0 ||
            get_str(o, "by", 1, by, sizeof by, why, cap) != 0)
            goto done;
        if (strlen(op->id) != BG_CONSENT_ID_SIZE - 1 || strncmp(op->id, "c-", 2) != 0 ||
            strspn(op->id + 2, "0123456789abcdef") != 16) {
            snprintf(why, cap, "\"id\" is not a consent id");
            goto done;
        }
        if (!bg_consent_text_ok(by, BG_CONSENT_BY_MAX, 0)) {
            snprintf(why, cap, "\"by\" must be 1-128 bytes of text");
            goto done;
        }
        if ((op->by = strdup(by)) == NULL) {
            snprintf(why, cap, "out of memory");
            goto done;
        }
        rc = 0;
    } else {
        snprintf(why, cap, "unknown \"op\" (expected journal, grant or withdraw)");
    }
done:
    json_decref(o);
    if (rc != 0)
        op_clear(op);
    return rc;
}

/*
 * Can OP follow the journal read so far into ST? WANT_CHECK (may be NULL)
 * is the key check the caller holds. 0, or an rc with WHY.
 */
static int op_check(const fstate_t *st, const fop_t *op, const char *want_check, char *why,
                    size_t cap)
{
    switch (op->kind) {
    case OP_HEADER:
        if (st->has_header || st->ops > 0) {
            snprintf(why, cap, "journal header in the middle of the journal");
            return BG_CONSENT_ECORRUPT;
        }
        if (want_check != NULL && strcmp(want_check, op->key_check) != 0) {
            snprintf(why, cap,
                     "journal was written with another subject key (key check %s, this key %s)",
                     op->key_check, want_check);
            return BG_CONSENT_EKEY;
        }
        return 0;
    case OP_GRANT:
        if (!st->has_header)
            break;
        if (state_find_id(st, op->grant->id) != NULL) {
            snprintf(why, cap, "consent %s is granted twice", op->grant->id);
            return BG_CONSENT_ECORRUPT;
        }
        return 0;
    case OP_WITHDRAW: {
        if (!st->has_header)
            break;
        const fentry_t *e = state_find_id(st, op->id);
        if (e == NULL) {
            snprintf(why, cap, "withdrawal of consent %s, which was never granted", op->id);
            return BG_CONSENT_ECORRUPT;
        }
        if (e->scope.withdrawn_at != 0) {
            snprintf(why, cap, "consent %s is withdrawn twice", op->id);
            return BG_CONSENT_ECORRUPT;
        }
        if (op->at < e->scope.granted_at) {
            snprintf(why, cap, "consent %s is withdrawn before it was granted", op->id);
            return BG_CONSENT_ECORRUPT;
        }
        return 0;
    }
    }
    snprintf(why, cap, "no journal header: not a bordergate consent journal");
    return BG_CONSENT_ECORRUPT;
}

/* Apply a checked OP (ownership of its allocations passes to ST).
 * state_reserve must have succeeded for a grant. */
static void op_apply(fstate_t *st, fop_t *op)
{
    switch (op->kind) {
    case OP_HEADER:
        st->has_header = 1;
        memcpy(st->key_check, op->key_check, sizeof st->key_check);
        memcpy(st->created_at, op->created_at, sizeof st->created_at);
        break;
    case OP_GRANT:
        state_insert(st, op->grant);
        op->grant = NULL;
        st->ops++;
        break;
    case OP_WITHDRAW: {
        fentry_t *e = state_find_id(st, op->id);
        e->scope.withdrawn_at = op->at;
        free(e->withdrawn_by);
        e->withdrawn_by = op->by;
        op->by = NULL;
        st->ops++;
        break;
    }
    }
}

/*
 * Read the complete lines of BUF (LEN bytes) into ST, which is private to
 * the caller or write-locked via LOCK (may be NULL). *LINE_NO is the number
 * of lines before BUF and advances; *CONSUMED receives the bytes of the
 * lines applied. Stops at the first bad line: 0, or an rc with ERR naming
 * NAME:LINE.
 */
static int state_load(fstate_t *st, brlock_t *lock, const char *buf, size_t len, const char *name,
                      const char *want_check, size_t *line_no, size_t *consumed, char *err,
                      size_t errcap)
{
    size_t pos = 0;
    int rc = 0;
    char why[300];
    *consumed = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (nl == NULL)
            break; /* unterminated: a write in progress or a tear */
        size_t n = (size_t)(nl - (buf + pos));
        size_t line = *line_no + 1;
        fop_t op;
        if (n == 0) {
            /* an empty line carries nothing */
        } else if (n > LINE_MAX_BYTES) {
            snprintf(err, errcap, "%s:%zu: line longer than %d bytes", name, line, LINE_MAX_BYTES);
            return BG_CONSENT_ECORRUPT;
        } else if (op_parse(buf + pos, n, &op, why, sizeof why) != 0) {
            snprintf(err, errcap, "%s:%zu: %s", name, line, why);
            return BG_CONSENT_ECORRUPT;
        } else {
            if (lock != NULL)
                br_wrlock(lock);
            rc = op_check(st, &op, want_check, why, sizeof why);
            if (rc == 0 && op.kind == OP_GRANT && state_reserve(st) != 0) {
                snprintf(why, sizeof why, "out of memory");
                rc = BG_CONSENT_ERR;
            }
            if (rc == 0)
                op_apply(st, &op);
            if (lock != NULL)
                br_wrunlock(lock);
            op_clear(&op);
            if (rc != 0) {
                snprintf(err, errcap, "%s:%zu: %s", name, line, why);
                return rc;
            }
        }
        pos += n + 1;
        *line_no = line;
        *consumed = pos;
    }
    return 0;
}

/* Growable text buffer. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf_t;

static void sbuf_add(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* Append O as one JSON line; consumes O. */
static void sbuf_json_line(sbuf_t *b, json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) {
        b->oom = 1;
        return;
    }
    sbuf_add(b, s, strlen(s));
    sbuf_add(b, "\n", 1);
    free(s);
}

static json_t *time_json(int64_t ms)
{
    char buf[40];
    bg_consent_time_format(ms, buf, sizeof buf);
    return json_string(buf);
}

static json_t *header_json(const char *key_check, const char *created_at)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:s}", "op", "journal", "format", JOURNAL_FORMAT,
                     "version", JOURNAL_VERSION, "key_check", key_check, "created_at", created_at);
}

/* The grant line of C, withdrawal folded in when present. */
static json_t *grant_json(const bg_consent_t *c)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:o}", "op", "grant", "id",
                          c->id, "subject", c->subject, "recipient", c->recipient, "purpose",
                          c->purpose, "region", c->region, "sensitive", c->sensitive, "guardian",
                          c->guardian, "granted_at", time_json(c->granted_at));
    if (o == NULL)
        return NULL;
    if (c->expires_at != 0)
        json_object_set_new(o, "expires_at", time_json(c->expires_at));
    if (c->evidence[0] != '\0')
        json_object_set_new(o, "evidence", json_string(c->evidence));
    json_object_set_new(o, "recorded_by", json_string(c->recorded_by));
    if (c->withdrawn_at != 0) {
        json_object_set_new(o, "withdrawn_at", time_json(c->withdrawn_at));
        json_object_set_new(o, "withdrawn_by", json_string(c->withdrawn_by));
    }
    return o;
}

/* Is E gone for good: ended (withdrawn or expired) more than RETAIN ago? */
static int entry_expired_for_good(const fentry_t *e, int64_t now, int64_t retain)
{
    if (retain < 0)
        return 0;
    int64_t end = e->scope.withdrawn_at;
    if (e->scope.expires_at != 0 && (end == 0 || e->scope.expires_at < end))
        end = e->scope.expires_at;
    return end != 0 && end <= now - retain;
}

/* The compacted journal of ST: header, then one grant line per kept
 * consent. KEY_CHECK is used when ST has no header. NULL on ENOMEM or when
 * there is no key check to write. *KEPT receives the consents written. */
static char *state_serialize(const fstate_t *st, const char *key_check, int64_t now, int64_t retain,
                             size_t *len, size_t *kept)
{
    sbuf_t b = {0};
    char created[40];
    const char *check = st->has_header ? st->key_check : key_check;
    if (check == NULL)
        return NULL;
    if (st->has_header) {
        snprintf(created, sizeof created, "%s", st->created_at);
    } else {
        bg_consent_time_format(now, created, sizeof created);
    }
    sbuf_json_line(&b, header_json(check, created));
    *kept = 0;
    for (size_t i = 0; i < st->n && !b.oom; i++) {
        bg_consent_t c;
        if (entry_expired_for_good(st->v[i], now, retain))
            continue;
        entry_export(st->v[i], &c);
        sbuf_json_line(&b, grant_json(&c));
        (*kept)++;
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.n;
    return b.p;
}

long bg_consent_journal_check(const char *buf, size_t len, const char *name, size_t *torn,
                              char **roundtrip, char *err, size_t errcap)
{
    size_t line_no = 0, consumed = 0;
    long n = -1;
    fstate_t *st = state_new();
    if (roundtrip != NULL)
        *roundtrip = NULL;
    if (st == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (state_load(st, NULL, buf, len, name, NULL, &line_no, &consumed, err, errcap) == 0) {
        n = (long)st->n;
        if (torn != NULL)
            *torn = len - consumed;
        if (roundtrip != NULL && st->has_header) {
            size_t rlen, kept;
            *roundtrip = state_serialize(st, NULL, 0, -1, &rlen, &kept);
            if (*roundtrip == NULL) {
                snprintf(err, errcap, "out of memory");
                n = -1;
            }
        }
    }
    state_free(st);
    return n;
}

/* ------------------------------------------------------------------------
 * The backend
 * ------------------------------------------------------------------------ */

typedef struct {
    bg_consent_backend_t base; /* first: the vtable's SELF is this */
    char *path;
    char *dir;
    bg_consent_options_t opts;
    char want_check[BG_CONSENT_KEY_CHECK_SIZE];
    int has_want;

    brlock_t lock; /* guards st */
    fstate_t *st;

    pthread_mutex_t io; /* guards the rest */
    int fd;
    size_t offset;  /* end of the last complete line applied */
    size_t line_no; /* lines up to OFFSET */
    dev_t seen_dev; /* the journal as last seen: inode, bytes observed, mtime */
    ino_t seen_ino;
    size_t seen_size;
    struct timespec seen_mtime;
    char fail[512]; /* "" while healthy */
    atomic_int failed;
    atomic_llong next_check_us;
    atomic_ullong seen_sig; /* stat_sig of the journal as last seen (read without the io lock) */
} fbe_t;

/* A digest of what stat() says about the journal: inode, size, mtime. Any
 * change (an appended line, a compaction's rename, a rewrite) changes it. */
static unsigned long long stat_sig(dev_t dev, ino_t ino, size_t size, const struct timespec *m)
{
    unsigned long long h = 1469598103934665603ULL;
    unsigned long long v[5] = {(unsigned long long)dev, (unsigned long long)ino,
                               (unsigned long long)size, (unsigned long long)m->tv_sec,
                               (unsigned long long)m->tv_nsec};
    for (int i = 0; i < 5; i++)
        h = (h ^ v[i]) * 1099511628211ULL;
    return h;
}

static void publish_seen(fbe_t *b)
{
    atomic_store(&b->seen_sig, stat_sig(b->seen_dev, b->seen_ino, b->seen_size, &b->seen_mtime));
}

static void set_fail(fbe_t *b, const char *msg)
{
    if (strcmp(b->fail, msg) != 0)
        bg_error("consent registry: %s; look-ups answer \"no consent\" until this is fixed", msg);
    snprintf(b->fail, sizeof b->fail, "%s", msg);
    atomic_store(&b->failed, 1);
}

static void clear_fail(fbe_t *b)
{
    if (b->fail[0] != '\0')
        bg_info("consent registry: %s is readable again", b->path);
    b->fail[0] = '\0';
    atomic_store(&b->failed, 0);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Bytes of FD from OFF to its end, malloc'd (NUL-terminated). */
static char *read_from(int fd, size_t off, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *p = realloc(buf, cap * 2);
            if (p == NULL) {
                free(buf);
                return NULL;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t r = pread(fd, buf + n, cap - n - 1, (off_t)(off + n));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void note_seen(fbe_t *b, int fd, size_t observed)
{
    struct stat st;
    if (fstat(fd, &st) == 0) {
        b->seen_dev = st.st_dev;
        b->seen_ino = st.st_ino;
        b->seen_mtime = st.st_mtim;
    }
    b->seen_size = observed;
    publish_seen(b);
}

/*
 * Read the whole journal from the path again into a new state and swap it
 * in. On success the new fd replaces b->fd (its flock, if any, is lost).
 */
static int full_reload(fbe_t *b, char *err, size_t errcap)
{
    int flags = b->opts.readonly ? O_RDONLY : O_RDWR | O_APPEND;
    int fd = open(b->path, flags | O_CLOEXEC);
    size_t len = 0, line_no = 0, consumed = 0;
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", b->path, strerror(errno));
        return BG_CONSENT_ERR;
    }
    char *buf = read_from(fd, 0, &len);
    if (buf == NULL) {
        snprintf(err, errcap, "%s: cannot read: %s", b->path, strerror(errno));
        close(fd);
        return BG_CONSENT_ERR;
    }
    fstate_t *st = state_new();
    int rc = st == NULL
                 ? BG_CONSENT_ERR
                 : state_load(st, NULL, buf, len, b->path, b->has_want ? b->want_check : NULL,
                              &line_no, &consumed, err, errcap);
    free(buf);
    if (st == NULL)
        snprintf(err, errcap, "out of memory");
    if (rc != 0) {
        state_free(st);
        close(fd);
        return rc;
    }
    br_wrlock(&b->lock);
    fstate_t *old = b->st;
    b->st = st;
    br_wrunlock(&b->lock);
    state_free(old);
    if (b->fd >= 0)
        close(b->fd);
    b->fd = fd;
    b->offset = consumed;
    b->line_no = line_no;
    note_seen(b, fd, len);
    return 0;
}

/* Apply the complete lines appended to b->fd since b->offset. *RELOAD is
 * set when they do not continue what was read (the file was rewritten). */
static int read_appended(fbe_t *b, int *reload, char *err, size_t errcap)
{
    size_t len = 0, consumed = 0;
    *reload = 0;
    char *buf = read_from(b->fd, b->offset > 0 ? b->offset - 1 : 0, &len);
    if (buf == NULL) {
        snprintf(err, errcap, "%s: cannot read: %s", b->path, strerror(errno));
        return BG_CONSENT_ERR;
    }
    const char *p = buf;
    if (b->offset > 0) {
        if (len == 0 || buf[0] != '\n') {
            *reload = 1; /* the byte before our offset is no longer a newline */
            free(buf);
            return 0;
        }
        p++;
        len--;
    }
    int rc = state_load(b->st, &b->lock, p, len, b->path, b->has_want ? b->want_check : NULL,
                        &b->line_no, &consumed, err, errcap);
    b->offset += consumed;
    note_seen(b, b->fd, b->offset + (len - consumed));
    free(buf);
    return rc;
}

/*
 * Bring the state up to date with the file (io lock held). Cheap when
 * nothing changed: one stat(). FORCE retries a failed registry even if the
 * file looks unchanged. Failures put the registry in the failed state.
 */
static int refresh_locked(fbe_t *b, int force, char *err, size_t errcap)
{
    struct stat st, fst;
    int rc = 0, reload = 0, read = 0;
    int failed = atomic_load(&b->failed);
    if (stat(b->path, &st) != 0) {
        snprintf(err, errcap, "%s: %s", b->path, strerror(errno));
        set_fail(b, err);
        return BG_CONSENT_ERR;
    }
    int same = st.st_dev == b->seen_dev && st.st_ino == b->seen_ino &&
               (size_t)st.st_size == b->seen_size && st.st_mtim.tv_sec == b->seen_mtime.tv_sec &&
               st.st_mtim.tv_nsec == b->seen_mtime.tv_nsec;
    if (same && !(force && failed)) {
        if (!failed)
            return 0;
        snprintf(err, errcap, "%s", b->fail);
        return BG_CONSENT_ECORRUPT;
    }
    if (failed || fstat(b->fd, &fst) != 0) {
        reload = 1;
    } else {
        /* First the lines appended to the file we hold: when another
         * process withdrew and then compacted, the withdrawal is here and
         * takes effect before the full re-read below. */
        if ((size_t)fst.st_size > b->offset) {
            rc = read_appended(b, &reload, err, errcap);
            read = 1;
        } else if ((size_t)fst.st_size < b->offset) {
            reload = 1; /* cut below what we read: rewritten */
        }
        if (st.st_dev != fst.st_dev || st.st_ino != fst.st_ino)
            reload = 1; /* replaced: compacted by another process */
        else if (!read && (size_t)st.st_size == b->seen_size)
            reload = 1; /* same size, new mtime: rewritten in place */
    }
    if (reload)
        rc = full_reload(b, err, errcap);
    else if (rc == 0 && !read) {
        b->seen_dev = st.st_dev;
        b->seen_ino = st.st_ino;
        b->seen_size = (size_t)st.st_size;
        b->seen_mtime = st.st_mtim;
        publish_seen(b);
    }
    if (rc != 0) {
        set_fail(b, err);
        return rc;
    }
    clear_fail(b);
    return 0;
}

/*
 * Look-ups call this first. One stat() of the journal, compared with what
 * was last read: unchanged (the common case) returns at once; changed (the
 * CLI or another process wrote it) reads the change under the io lock before
 * this look-up answers, so a withdrawal made by any process is honoured by
 * every look-up that starts after that process's write returned. A failed
 * registry is retried at most once per interval, by one thread.
 */
static void maybe_check(fbe_t *b)
{
    if (b->opts.check_interval_ms < 0)
        return;
    struct stat st;
    int failed = atomic_load(&b->failed);
    if (!failed && stat(b->path, &st) == 0 &&
        stat_sig(st.st_dev, st.st_ino, (size_t)st.st_size, &st.st_mtim) ==
            atomic_load_explicit(&b->seen_sig, memory_order_acquire))
        return;
    char err[512];
    if (!failed) {
        pthread_mutex_lock(&b->io);            /* wait: this look-up must see the change */
        refresh_locked(b, 0, err, sizeof err); /* logs its own failures */
        pthread_mutex_unlock(&b->io);
        return;
    }
    long long now = (long long)bg_util_mono_us();
    if (now < atomic_load_explicit(&b->next_check_us, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&b->io) != 0)
        return; /* another thread is checking */
    if (now >= atomic_load(&b->next_check_us)) {
        refresh_locked(b, 0, err, sizeof err);
        atomic_store(&b->next_check_us, now + (long long)b->opts.check_interval_ms * 1000);
    }
    pthread_mutex_unlock(&b->io);
}

/* ------------------------------------------------------------------------
 * Writing (io lock held)
 * ------------------------------------------------------------------------ */

/*
 * Take the journal's flock and catch up with it, so a change is checked
 * against every line any process wrote; remove a torn last line. On success
 * the flock on b->fd is held: release with end_write.
 */
static int begin_write(fbe_t *b, char *err, size_t errcap)
{
    if (b->opts.readonly) {
        snprintf(err, errcap, "%s is open read-only", b->path);
        return BG_CONSENT_EREADONLY;
    }
    for (int tries = 0;; tries++) {
        int fd = b->fd;
        if (tries == 16) {
            snprintf(err, errcap, "%s keeps being replaced; giving up", b->path);
            return BG_CONSENT_ERR;
        }
        while (flock(fd, LOCK_EX) != 0) {
            if (errno != EINTR) {
                snprintf(err, errcap, "%s: cannot lock: %s", b->path, strerror(errno));
                return BG_CONSENT_ERR;
            }
        }
        int rc = refresh_locked(b, 1, err, errcap);
        if (b->fd != fd)
            continue; /* re-read another file; its lock is not ours yet.
                         (The old fd was closed, which dropped its lock.) */
        if (rc != 0) {
            flock(fd, LOCK_UN);
            return rc;
        }
        break;
    }
    struct stat fst;
    if (fstat(b->fd, &fst) == 0 && (size_t)fst.st_size > b->offset) {
        /* We hold the lock, so no writer is mid-line: this is a tear. */
        if (ftruncate(b->fd, (off_t)b->offset) != 0 || fsync(b->fd) != 0) {
            snprintf(err, errcap, "%s: cannot remove the torn last line: %s", b->path,
                     strerror(errno));
            flock(b->fd, LOCK_UN);
            return BG_CONSENT_ERR;
        }
        bg_warn("consent registry: removed a torn last line (%lld bytes, line %zu) from %s",
                (long long)fst.st_size - (long long)b->offset, b->line_no + 1, b->path);
        note_seen(b, b->fd, b->offset);
    }
    return 0;
}

static int compact_locked(fbe_t *b, char *err, size_t errcap);

static void end_write(fbe_t *b, int changed)
{
    const fstate_t *st = b->st;
    size_t live = st->n > 0 ? st->n : 1;
    if (changed && st->ops > b->opts.compact_ratio * (double)live &&
        st->ops - st->n >= b->opts.compact_min_lines) {
        char err[512];
        if (compact_locked(b, err, sizeof err) != 0)
            bg_warn("consent registry: compaction failed, journal kept as is: %s", err);
    }
    flock(b->fd, LOCK_UN);
}

/*
 * Append TEXT (whole lines) durably; a header first when the file is
 * empty. On failure the file is cut back to where it was.
 */
static int append_durably(fbe_t *b, const char *text, size_t len, size_t lines, char *err,
                          size_t errcap)
{
    sbuf_t s = {0};
    size_t nlines = lines;
    if (!b->st->has_header) {
        char created[40];
        bg_consent_time_format((int64_t)bg_util_wall_ms(), created, sizeof created);
        const char *check = b->has_want ? b->want_check : b->st->key_check;
        if (check[0] == '\0') {
            snprintf(err, errcap, "%s has no header and no subject key was given", b->path);
            return BG_CONSENT_EKEY;
        }
        sbuf_json_line(&s, header_json(check, created));
        nlines++;
    }
    sbuf_add(&s, text, len);
    if (s.oom) {
        free(s.p);
        snprintf(err, errcap, "out of memory");
        return BG_CONSENT_ERR;
    }
    if (write_all(b->fd, s.p, s.n) != 0 || fdatasync(b->fd) != 0) {
        int e = errno;
        if (ftruncate(b->fd, (off_t)b->offset) == 0)
            (void)fsync(b->fd);
        free(s.p);
        snprintf(err, errcap, "%s: cannot write durably: %s", b->path, strerror(e));
        return BG_CONSENT_ERR;
    }
    /* The header, if any, went out with this write: apply it too. */
    if (!b->st->has_header && s.n > len) {
        fop_t op;
        char why[300];
        if (op_parse(s.p, s.n - len - 1, &op, why, sizeof why) == 0) {
            br_wrlock(&b->lock);
            op_apply(b->st, &op);
            br_wrunlock(&b->lock);
            op_clear(&op);
        }
    }
    b->offset += s.n;
    b->line_no += nlines;
    note_seen(b, b->fd, b->offset);
    free(s.p);
    return 0;
}

static int fbe_grant(bg_consent_backend_t *self, const bg_consent_t *c, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    sbuf_t line = {0};
    int rc;
    if (!b->has_want) {
        snprintf(err, errcap, "granting needs the subject key");
        return BG_CONSENT_EKEY;
    }
    fentry_t *e = entry_new(c);
    if (e == NULL) {
        snprintf(err, errcap, "out of memory");
        return BG_CONSENT_ERR;
    }
    sbuf_json_line(&line, grant_json(c));
    pthread_mutex_lock(&b->io);
    if ((rc = begin_write(b, err, errcap)) != 0)
        goto out;
    if (state_find_id(b->st, c->id) != NULL) {
        rc = BG_CONSENT_EEXIST;
        snprintf(err, errcap, "consent id %s is taken", c->id);
    } else if (line.oom) {
        rc = BG_CONSENT_ERR;
        snprintf(err, errcap, "out of memory");
    } else {
        br_wrlock(&b->lock);
        rc = state_reserve(b->st) == 0 ? 0 : BG_CONSENT_ERR;
        br_wrunlock(&b->lock);
        if (rc != 0)
            snprintf(err, errcap, "out of memory");
        else
            rc = append_durably(b, line.p, line.n, 1, err, errcap);
        if (rc == 0) {
            fop_t op = {.kind = OP_GRANT, .grant = e};
            br_wrlock(&b->lock);
            op_apply(b->st, &op); /* takes E */
            br_wrunlock(&b->lock);
            e = NULL;
        }
    }
    end_write(b, rc == 0);
out:
    pthread_mutex_unlock(&b->io);
    entry_free(e);
    free(line.p);
    return rc;
}

static int fbe_withdraw(bg_consent_backend_t *self, const char *id, int64_t at, const char *by,
                        bg_consent_t *out, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    int rc;
    char *bycopy = strdup(by);
    char atbuf[40];
    bg_consent_time_format(at, atbuf, sizeof atbuf);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "op", "withdraw", "id", id, "at", atbuf, "by", by);
    sbuf_t line = {0};
    sbuf_json_line(&line, o);
    if (bycopy == NULL || line.oom) {
        free(bycopy);
        free(line.p);
        snprintf(err, errcap, "out of memory");
        return BG_CONSENT_ERR;
    }
    pthread_mutex_lock(&b->io);
    if ((rc = begin_write(b, err, errcap)) != 0)
        goto out;
    fentry_t *e = state_find_id(b->st, id);
    if (e == NULL) {
        rc = BG_CONSENT_ENOENT;
        snprintf(err, errcap, "no consent %s in %s", id, b->path);
    } else if (e->scope.withdrawn_at != 0) {
        char when[40];
        bg_consent_time_format(e->scope.withdrawn_at, when, sizeof when);
        rc = BG_CONSENT_EALREADY;
        snprintf(err, errcap, "consent %s was already withdrawn at %s", id, when);
    } else if (at < e->scope.granted_at) {
        rc = BG_CONSENT_EINVAL;
        snprintf(err, errcap, "withdrawal time is before consent %s was granted", id);
    } else if ((rc = append_durably(b, line.p, line.n, 1, err, errcap)) == 0) {
        fop_t op = {.kind = OP_WITHDRAW, .at = at, .by = bycopy};
        memcpy(op.id, id, sizeof op.id);
        br_wrlock(&b->lock);
        op_apply(b->st, &op); /* takes BYCOPY */
        br_wrunlock(&b->lock);
        bycopy = NULL;
        if (out != NULL)
            entry_export(e, out);
    }
    end_write(b, rc == 0);
out:
    pthread_mutex_unlock(&b->io);
    free(bycopy);
    free(line.p);
    return rc;
}

/*
 * Rewrite the journal to the live state (io lock and flock held): a new
 * file beside it, fsync'ed, renamed over it, directory fsync'ed. Writers of
 * other processes waiting for the old file's lock notice the rename and
 * lock the new file. A crash at any point leaves either the old or the new
 * journal, both complete.
 */
static int compact_locked(fbe_t *b, char *err, size_t errcap)
{
    size_t len = 0, kept = 0, line_no = 0, consumed = 0;
    int64_t now = (int64_t)bg_util_wall_ms();
    char tmp[4096];
    int fd = -1, rc = BG_CONSENT_ERR;
    fstate_t *ns = NULL;
    char *text = state_serialize(b->st, b->has_want ? b->want_check : NULL, now,
                                 b->opts.retain_ended_ms, &len, &kept);
    if (text == NULL) {
        snprintf(err, errcap, "out of memory, or no key check to write");
        return BG_CONSENT_ERR;
    }
    /* Parse what we are about to install: the new state comes from the new
     * file's very bytes. */
    if ((ns = state_new()) == NULL ||
        state_load(ns, NULL, text, len, "compacted journal", NULL, &line_no, &consumed, err,
                   errcap) != 0 ||
        consumed != len)
        goto fail;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.compact", b->path) >= sizeof tmp) {
        snprintf(err, errcap, "journal path too long");
        goto fail;
    }
    fd = open(tmp, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0 ||
        rename(tmp, b->path) != 0) {
        snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
        goto fail;
    }
    if (fsync_dir(b->dir) != 0) {
        /* The rename happened; only its durability is in doubt. */
        bg_warn("consent registry: fsync of %s failed: %s", b->dir, strerror(errno));
    }
    size_t before = b->offset;
    br_wrlock(&b->lock);
    fstate_t *old = b->st;
    b->st = ns;
    br_wrunlock(&b->lock);
    state_free(old);
    close(b->fd); /* drops the old file's lock: waiting writers retry */
    b->fd = fd;   /* its lock is held; end_write releases it */
    b->offset = len;
    b->line_no = line_no;
    note_seen(b, fd, len);
    bg_info("consent registry: compacted %s from %zu to %zu bytes (%zu consents kept)", b->path,
            before, len, kept);
    free(text);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    state_free(ns);
    free(text);
    return rc;
}

static int fbe_compact(bg_consent_backend_t *self, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    pthread_mutex_lock(&b->io);
    int rc = begin_write(b, err, errcap);
    if (rc == 0) {
        rc = compact_locked(b, err, errcap);
        flock(b->fd, LOCK_UN);
    }
    pthread_mutex_unlock(&b->io);
    return rc;
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

/* Is A a better consent to cite than B? Most specific, latest, smallest id. */
static int better(const fentry_t *a, const fentry_t *b)
{
    int ra = bg_consent_scope_rank(&a->scope), rb = bg_consent_scope_rank(&b->scope);
    if (ra != rb)
        return ra > rb;
    if (a->scope.granted_at != b->scope.granted_at)
        return a->scope.granted_at > b->scope.granted_at;
    return strcmp(a->id, b->id) < 0;
}

static int fbe_find(bg_consent_backend_t *self, const bg_consent_query_t *q,
                    bg_consent_match_t *out)
{
    fbe_t *b = (fbe_t *)self;
    maybe_check(b);
    if (atomic_load(&b->failed)) {
        out->miss = BG_CONSENT_MISS_UNAVAILABLE;
        return -1;
    }
    const fentry_t *best = NULL, *closest = NULL;
    bg_consent_miss_t deepest = BG_CONSENT_MISS_NO_CONSENT;
    int shard = br_rdlock(&b->lock);
    const fstate_t *st = b->st;
    if (st->nb > 0) {
        for (const fentry_t *e = st->sb[subject_hash(q->pseudonym) & (st->nb - 1)]; e != NULL;
             e = e->snext) {
            if (memcmp(e->subject, q->pseudonym, BG_CONSENT_PSEUDONYM_LEN) != 0)
                continue;
            bg_consent_miss_t m = bg_consent_scope_eval(&e->scope, q);
            if (m == BG_CONSENT_MISS_NONE) {
                if (best == NULL || better(e, best))
                    best = e;
            } else if (m > deepest) {
                deepest = m; /* NO_CONSENT < every real miss */
                closest = e;
            }
        }
    }
    if (best != NULL) {
        entry_export(best, &out->consent);
        out->miss = BG_CONSENT_MISS_NONE;
    } else {
        out->miss = deepest;
        if (closest != NULL && deepest != BG_CONSENT_MISS_SCOPE)
            memcpy(out->miss_id, closest->id, sizeof out->miss_id);
    }
    br_rdunlock(&b->lock, shard);
    return best != NULL;
}

static int fbe_get(bg_consent_backend_t *self, const char *id, bg_consent_t *out)
{
    fbe_t *b = (fbe_t *)self;
    maybe_check(b);
    int shard = br_rdlock(&b->lock);
    const fentry_t *e = state_find_id(b->st, id);
    if (e != NULL)
        entry_export(e, out);
    br_rdunlock(&b->lock, shard);
    return e != NULL ? BG_CONSENT_OK : BG_CONSENT_ENOENT;
}

static int cmp_seq(const void *a, const void *b)
{
    const fentry_t *x = *(const fentry_t *const *)a, *y = *(const fentry_t *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int fbe_list(bg_consent_backend_t *self, const uint8_t *pseudonym, bg_consent_each_fn fn,
                    void *arg, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    bg_consent_t c;
    int rc = 0;
    maybe_check(b);
    int shard = br_rdlock(&b->lock);
    const fstate_t *st = b->st;
    if (pseudonym == NULL) {
        for (size_t i = 0; i < st->n; i++) {
            entry_export(st->v[i], &c);
            if (fn(arg, &c) != 0)
                break;
        }
    } else if (st->nb > 0) {
        /* The subject's chain, put back in grant order. */
        size_t n = 0, cap = 16;
        const fentry_t **v = malloc(cap * sizeof *v);
        const fentry_t *e = st->sb[subject_hash(pseudonym) & (st->nb - 1)];
        if (v == NULL) {
            snprintf(err, errcap, "out of memory");
            rc = BG_CONSENT_ERR;
            e = NULL;
        }
        for (; e != NULL; e = e->snext) {
            if (memcmp(e->subject, pseudonym, BG_CONSENT_PSEUDONYM_LEN) != 0)
                continue;
            if (n == cap) {
                const fentry_t **nv = realloc(v, cap * 2 * sizeof *v);
                if (nv == NULL) {
                    snprintf(err, errcap, "out of memory");
                    rc = BG_CONSENT_ERR;
                    break;
                }
                v = nv;
                cap *= 2;
            }
            v[n++] = e;
        }
        if (rc == 0) {
            qsort(v, n, sizeof *v, cmp_seq);
            for (size_t i = 0; i < n; i++) {
                entry_export(v[i], &c);
                if (fn(arg, &c) != 0)
                    break;
            }
        }
        free(v);
    }
    br_rdunlock(&b->lock, shard);
    return rc;
}

static int fbe_refresh(bg_consent_backend_t *self, char *err, size_t errcap)
{
    fbe_t *b = (fbe_t *)self;
    pthread_mutex_lock(&b->io);
    int rc = refresh_locked(b, 1, err, errcap);
    if (rc != 0 && b->fail[0] != '\0')
        snprintf(err, errcap, "%s", b->fail);
    pthread_mutex_unlock(&b->io);
    return rc;
}

static int fbe_health(bg_consent_backend_t *self, char *buf, size_t cap)
{
    fbe_t *b = (fbe_t *)self;
    pthread_mutex_lock(&b->io);
    int rc = b->fail[0] != '\0' ? -1 : 0;
    snprintf(buf, cap, "%s", rc != 0 ? b->fail : "ok");
    pthread_mutex_unlock(&b->io);
    return rc;
}

static size_t fbe_count(bg_consent_backend_t *self)
{
    fbe_t *b = (fbe_t *)self;
    int shard = br_rdlock(&b->lock);
    size_t n = b->st->n;
    br_rdunlock(&b->lock, shard);
    return n;
}

static void fbe_close(bg_consent_backend_t *self)
{
    fbe_t *b = (fbe_t *)self;
    if (b == NULL)
        return;
    if (b->fd >= 0)
        close(b->fd);
    state_free(b->st);
    br_destroy(&b->lock);
    pthread_mutex_destroy(&b->io);
    free(b->path);
    free(b->dir);
    free(b);
}

bg_consent_backend_t *bg_consent_file_open(const char *path, const char *key_check,
                                           const bg_consent_options_t *opts, char **warning,
                                           char *err, size_t errcap)
{
    size_t len = 0, consumed = 0, line_no = 0;
    char *buf = NULL;
    if (warning != NULL)
        *warning = NULL;
    /* aligned: the lock shards are cache-line aligned */
    size_t size = (sizeof(fbe_t) + 63) / 64 * 64;
    fbe_t *b = aligned_alloc(64, size);
    if (b != NULL)
        memset(b, 0, size);
    if (b == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    b->fd = -1;
    b->base = (bg_consent_backend_t){
        .name = "file",
        .find = fbe_find,
        .grant = fbe_grant,
        .withdraw = fbe_withdraw,
        .get = fbe_get,
        .list = fbe_list,
        .refresh = fbe_refresh,
        .compact = fbe_compact,
        .health = fbe_health,
        .count = fbe_count,
        .close = fbe_close,
    };
    br_init(&b->lock);
    pthread_mutex_init(&b->io, NULL);
    if (opts != NULL)
        b->opts = *opts;
    if (b->opts.check_interval_ms == 0)
        b->opts.check_interval_ms = DEFAULT_INTERVAL_MS;
    if (!(b->opts.compact_ratio > 0))
        b->opts.compact_ratio = DEFAULT_RATIO;
    if (b->opts.compact_min_lines == 0)
        b->opts.compact_min_lines = DEFAULT_MIN_LINES;
    if (b->opts.retain_ended_ms == 0)
        b->opts.retain_ended_ms = DEFAULT_RETAIN_MS;
    if (key_check != NULL) {
        snprintf(b->want_check, sizeof b->want_check, "%s", key_check);
        b->has_want = 1;
    }
    b->path = strdup(path);
    char *tmp = strdup(path);
    b->dir = tmp != NULL ? strdup(dirname(tmp)) : NULL;
    free(tmp);
    if (b->path == NULL || b->dir == NULL || (b->st = state_new()) == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }

    int flags = b->opts.readonly ? O_RDONLY : O_RDWR | O_APPEND;
    b->fd = open(path, flags | O_CLOEXEC);
    if (b->fd < 0 && errno == ENOENT && b->opts.create && !b->opts.readonly) {
        b->fd = open(path, flags | O_CREAT | O_CLOEXEC, 0600);
        if (b->fd >= 0 && fsync_dir(b->dir) != 0) {
            snprintf(err, errcap, "%s: cannot fsync its directory: %s", path, strerror(errno));
            goto fail;
        }
    }
    struct stat st;
    if (b->fd < 0 || fstat(b->fd, &st) != 0) {
        snprintf(err, errcap, "%s: %s%s", path, strerror(errno),
                 errno == ENOENT && !b->opts.create ? " (no consent registry there)" : "");
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "%s: not a regular file", path);
        goto fail;
    }
    if ((buf = read_from(b->fd, 0, &len)) == NULL) {
        snprintf(err, errcap, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    if (state_load(b->st, NULL, buf, len, path, key_check, &line_no, &consumed, err, errcap) != 0)
        goto fail;
    b->offset = consumed;
    b->line_no = line_no;
    note_seen(b, b->fd, len);
    if (len > consumed) {
        char msg[768];
        snprintf(msg, sizeof msg,
                 "%s:%zu: the last line is incomplete (%zu bytes, an interrupted write); "
                 "the %zu consents before it are loaded%s",
                 path, line_no + 1, len - consumed, b->st->n,
                 b->opts.readonly ? "" : "; the next change removes it");
        if (warning != NULL)
            *warning = strdup(msg);
    }
    free(buf);
    buf = NULL;

    /* A new journal gets its header (and so its key check) at once. */
    if (!b->opts.readonly && !b->st->has_header && b->has_want && b->st->n == 0 &&
        len == consumed) {
        pthread_mutex_lock(&b->io);
        int rc = begin_write(b, err, errcap);
        if (rc == 0) {
            if (!b->st->has_header)
                rc = append_durably(b, "", 0, 0, err, errcap);
            flock(b->fd, LOCK_UN);
        }
        pthread_mutex_unlock(&b->io);
        if (rc != 0)
            goto fail;
    }
    atomic_store(&b->next_check_us,
                 (long long)bg_util_mono_us() + (long long)b->opts.check_interval_ms * 1000);
    return &b->base;
fail:
    free(buf);
    if (warning != NULL) {
        free(*warning);
        *warning = NULL;
    }
    fbe_close(&b->base);
    return NULL;
}
