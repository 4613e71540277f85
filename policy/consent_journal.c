/*
 * The consent file backend's journal lines: see consent_file_int.h, and
 * consent_file.c's header comment for the format.
 */
#include "policy/consent_file_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Journal lines
 * ------------------------------------------------------------------------ */

void bg_cjournal_op_clear(fop_t *op)
{
    bg_cindex_entry_free(op->grant);
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
int bg_cjournal_op_parse(const char *line, size_t len, fop_t *op, char *why, size_t cap)
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
        if ((op->grant = bg_cindex_entry_new(&c)) == NULL) {
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
        bg_cjournal_op_clear(op);
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
        if (bg_cindex_find_id(st, op->grant->id) != NULL) {
            snprintf(why, cap, "consent %s is granted twice", op->grant->id);
            return BG_CONSENT_ECORRUPT;
        }
        return 0;
    case OP_WITHDRAW: {
        if (!st->has_header)
            break;
        const fentry_t *e = bg_cindex_find_id(st, op->id);
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
 * bg_cindex_reserve must have succeeded for a grant. */
void bg_cjournal_op_apply(fstate_t *st, fop_t *op)
{
    switch (op->kind) {
    case OP_HEADER:
        st->has_header = 1;
        memcpy(st->key_check, op->key_check, sizeof st->key_check);
        memcpy(st->created_at, op->created_at, sizeof st->created_at);
        break;
    case OP_GRANT:
        bg_cindex_insert(st, op->grant);
        op->grant = NULL;
        st->ops++;
        break;
    case OP_WITHDRAW: {
        fentry_t *e = bg_cindex_find_id(st, op->id);
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
int bg_cjournal_load(fstate_t *st, bg_brlock_t *lock, const char *buf, size_t len, const char *name,
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
        } else if (bg_cjournal_op_parse(buf + pos, n, &op, why, sizeof why) != 0) {
            snprintf(err, errcap, "%s:%zu: %s", name, line, why);
            return BG_CONSENT_ECORRUPT;
        } else {
            if (lock != NULL)
                bg_brlock_wrlock(lock);
            rc = op_check(st, &op, want_check, why, sizeof why);
            if (rc == 0 && op.kind == OP_GRANT && bg_cindex_reserve(st) != 0) {
                snprintf(why, sizeof why, "out of memory");
                rc = BG_CONSENT_ERR;
            }
            if (rc == 0)
                bg_cjournal_op_apply(st, &op);
            if (lock != NULL)
                bg_brlock_wrunlock(lock);
            bg_cjournal_op_clear(&op);
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

/* Append O as one JSON line; consumes O. */
void bg_cjournal_add_json(bg_sbuf_t *b, json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) {
        b->failed = 1;
        return;
    }
    bg_sbuf_add(b, s, strlen(s));
    bg_sbuf_add(b, "\n", 1);
    free(s);
}

static json_t *time_json(int64_t ms)
{
    char buf[40];
    bg_consent_time_format(ms, buf, sizeof buf);
    return json_string(buf);
}

json_t *bg_cjournal_header(const char *key_check, const char *created_at)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:s}", "op", "journal", "format", JOURNAL_FORMAT,
                     "version", JOURNAL_VERSION, "key_check", key_check, "created_at", created_at);
}

/* The grant line of C, withdrawal folded in when present. */
json_t *bg_cjournal_grant(const bg_consent_t *c)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:o}", "op", "grant", "id",
                          c->id, "subject", c->subject, "recipient", c->recipient, "purpose",
                          c->purpose, "region", c->region, "sensitive", c->sensitive, "guardian",
                          c->guardian, "granted_at", time_json(c->granted_at));
    if (o == NULL)
        return NULL;
    /* Out of memory in any field drops the line, not the field: a line
     * without recorded_by would make the journal unreadable. */
    int bad = 0;
    if (c->expires_at != 0)
        bad |= json_object_set_new(o, "expires_at", time_json(c->expires_at));
    if (c->evidence[0] != '\0')
        bad |= json_object_set_new(o, "evidence", json_string(c->evidence));
    bad |= json_object_set_new(o, "recorded_by", json_string(c->recorded_by));
    if (c->withdrawn_at != 0) {
        bad |= json_object_set_new(o, "withdrawn_at", time_json(c->withdrawn_at));
        bad |= json_object_set_new(o, "withdrawn_by", json_string(c->withdrawn_by));
    }
    if (bad) {
        json_decref(o);
        return NULL;
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
char *bg_cjournal_serialize(const fstate_t *st, const char *key_check, int64_t now, int64_t retain,
                            size_t *len, size_t *kept)
{
    bg_sbuf_t b = {0};
    char created[40];
    const char *check = st->has_header ? st->key_check : key_check;
    if (check == NULL)
        return NULL;
    if (st->has_header) {
        snprintf(created, sizeof created, "%s", st->created_at);
    } else {
        bg_consent_time_format(now, created, sizeof created);
    }
    bg_cjournal_add_json(&b, bg_cjournal_header(check, created));
    *kept = 0;
    for (size_t i = 0; i < st->n && !b.failed; i++) {
        bg_consent_t c;
        if (entry_expired_for_good(st->v[i], now, retain))
            continue;
        bg_cindex_entry_export(st->v[i], &c);
        bg_cjournal_add_json(&b, bg_cjournal_grant(&c));
        (*kept)++;
    }
    if (b.failed) {
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
    fstate_t *st = bg_cindex_new();
    if (roundtrip != NULL)
        *roundtrip = NULL;
    if (st == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (bg_cjournal_load(st, NULL, buf, len, name, NULL, &line_no, &consumed, err, errcap) == 0) {
        n = (long)st->n;
        if (torn != NULL)
            *torn = len - consumed;
        if (roundtrip != NULL && st->has_header) {
            size_t rlen, kept;
            *roundtrip = bg_cjournal_serialize(st, NULL, 0, -1, &rlen, &kept);
            if (*roundtrip == NULL) {
                snprintf(err, errcap, "out of memory");
                n = -1;
            }
        }
    }
    bg_cindex_free(st);
    return n;
}
