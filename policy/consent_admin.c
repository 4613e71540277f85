/*
 * Admin API endpoints for the consent registry. Transport-free: the admin
 * listener (proxy/server.c) authenticates the caller and hands over method,
 * path, body; this file answers with a status and a JSON body.
 *
 * Error texts name fields, never their values: a subject id or an evidence
 * reference is not echoed back or logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/util.h"
#include "policy/consent.h"

#define PREFIX "/consents"

/* Reply with O (consumed). */
static int reply(int *status, char **out, int code, json_t *o)
{
    *status = code;
    *out = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (*out == NULL) {
        *status = 500;
        *out = strdup("{\"error\":\"out of memory\",\"code\":\"internal\"}");
    }
    return 0;
}

static int reply_error(int *status, char **out, int code, const char *kind, const char *msg)
{
    return reply(status, out, code, json_pack("{s:s, s:s}", "error", msg, "code", kind));
}

/* Map a registry rc to an HTTP reply. */
static int reply_rc(int *status, char **out, int rc, const char *err)
{
    switch (rc) {
    case BG_CONSENT_EINVAL: return reply_error(status, out, 400, "invalid", err);
    case BG_CONSENT_ENOENT: return reply_error(status, out, 404, "not-found", err);
    case BG_CONSENT_EALREADY: return reply_error(status, out, 409, "already-withdrawn", err);
    case BG_CONSENT_ECORRUPT:
    case BG_CONSENT_EKEY:
    case BG_CONSENT_EREADONLY: return reply_error(status, out, 503, "unavailable", err);
    default: return reply_error(status, out, 500, "internal", err);
    }
}

/*
 * The value of parameter NAME in query string Q (form encoding: %XX, '+' is
 * a space) into OUT. 1 found, 0 absent, -1 malformed or too long.
 */
static int query_param(const char *q, const char *name, char *out, size_t cap, size_t *len)
{
    size_t nl = strlen(name);
    while (q != NULL && *q != '\0') {
        const char *end = strchr(q, '&');
        size_t seg = end != NULL ? (size_t)(end - q) : strlen(q);
        if (seg > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
            long n = bg_hex_pct_decode_all(q + nl + 1, seg - nl - 1, out, cap,
                                           BG_PCT_STRICT | BG_PCT_PLUS);
            if (n < 0)
                return -1;
            *len = (size_t)n;
            return 1;
        }
        q = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

/* Is S "c-" + 16 lowercase hex (a consent id)? */
static int is_id(const char *s, size_t n)
{
    if (n != BG_CONSENT_ID_SIZE - 1 || s[0] != 'c' || s[1] != '-')
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

static int parse_hex32(const char *s, uint8_t out[BG_CONSENT_PSEUDONYM_LEN])
{
    if (s == NULL || strlen(s) != 2 * BG_CONSENT_PSEUDONYM_LEN)
        return -1;
    return bg_hex_decode(s, 2 * BG_CONSENT_PSEUDONYM_LEN, out, BG_CONSENT_PSEUDONYM_LEN, 0) ==
                   BG_CONSENT_PSEUDONYM_LEN
               ? 0
               : -1;
}

/* Parse BODY as a JSON object whose keys are all in ALLOWED; empty body is
 * {} when EMPTY_OK. NULL with a 400 reply made. */
static json_t *body_object(const char *body, size_t len, int empty_ok, const char *const *allowed,
                           int *status, char **out)
{
    json_error_t je;
    json_t *o;
    if (len == 0 && empty_ok)
        return json_object();
    o = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        /* jansson's message may quote the body: position only. */
        char msg[96] = "body must be a JSON object";
        if (o == NULL)
            snprintf(msg, sizeof msg, "body is not valid JSON (line %d, column %d)", je.line,
                     je.column);
        json_decref(o);
        reply_error(status, out, 400, "invalid", msg);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL && !ok; a++)
            ok = strcmp(*a, k) == 0;
        if (!ok) {
            char msg[160];
            size_t kl = strlen(k);
            int printable = kl <= 32 && strspn(k, "abcdefghijklmnopqrstuvwxyz_") == kl;
            snprintf(msg, sizeof msg, "unknown field \"%s\"", printable ? k : "(not shown)");
            json_decref(o);
            reply_error(status, out, 400, "invalid", msg);
            return NULL;
        }
    }
    return o;
}

/* Optional string field: 1 present, 0 absent/null, -1 wrong type (reply made). */
static int opt_string(json_t *o, const char *key, const char **out, int *status, char **reply_out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"%s\" must be a string", key);
        reply_error(status, reply_out, 400, "invalid", msg);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

static int opt_bool(json_t *o, const char *key, int *out, int *status, char **reply_out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"%s\" must be true or false", key);
        reply_error(status, reply_out, 400, "invalid", msg);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

static int opt_time(json_t *o, const char *key, int64_t *out, int *status, char **reply_out)
{
    const char *s;
    *out = 0;
    int r = opt_string(o, key, &s, status, reply_out);
    if (r <= 0)
        return r;
    if (bg_consent_time_parse(s, out) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"%s\" must be an RFC 3339 time", key);
        reply_error(status, reply_out, 400, "invalid", msg);
        return -1;
    }
    return 1;
}

/* "api" or "api:<recorded_by>". */
static int who(json_t *o, char *by, size_t cap, int *status, char **out)
{
    const char *s;
    if (opt_string(o, "recorded_by", &s, status, out) < 0)
        return -1;
    if (s == NULL)
        snprintf(by, cap, "api");
    else if ((size_t)snprintf(by, cap, "api:%s", s) >= cap || !bg_consent_text_ok(s, cap - 5, 0)) {
        reply_error(status, out, 400, "invalid", "\"recorded_by\" must be 1-120 bytes of text");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Endpoints
 * ------------------------------------------------------------------------ */

static int do_grant(bg_consent_reg_t *reg, const char *body, size_t len, int *status, char **out)
{
    static const char *const keys[] = {
        "subject",  "subject_pseudonym", "recipient",  "purpose",  "region",      "sensitive",
        "guardian", "expires_at",        "granted_at", "evidence", "recorded_by", NULL};
    char by[BG_CONSENT_BY_MAX + 1], err[512];
    bg_consent_grant_t g;
    bg_consent_t c;
    memset(&g, 0, sizeof g);
    json_t *o = body_object(body, len, 0, keys, status, out);
    if (o == NULL)
        return 0;
    json_t *subj = json_object_get(o, "subject");
    int rc = -1;
    if (subj != NULL && !json_is_string(subj)) {
        reply_error(status, out, 400, "invalid", "\"subject\" must be a string");
        goto done;
    }
    if (subj != NULL) {
        g.subject = json_string_value(subj);
        g.subject_len = json_string_length(subj);
    } else if (opt_string(o, "subject_pseudonym", &g.subject_pseudonym, status, out) < 0) {
        goto done;
    }
    if (opt_string(o, "recipient", &g.recipient, status, out) < 0 ||
        opt_string(o, "purpose", &g.purpose, status, out) < 0 ||
        opt_string(o, "region", &g.region, status, out) < 0 ||
        opt_bool(o, "sensitive", &g.sensitive, status, out) < 0 ||
        opt_bool(o, "guardian", &g.guardian, status, out) < 0 ||
        opt_time(o, "expires_at", &g.expires_at, status, out) < 0 ||
        opt_time(o, "granted_at", &g.granted_at, status, out) < 0 ||
        opt_string(o, "evidence", &g.evidence, status, out) < 0 ||
        who(o, by, sizeof by, status, out) < 0)
        goto done;
    g.recorded_by = by;
    rc = bg_consent_grant(reg, &g, &c, err, sizeof err);
    if (rc != 0)
        reply_rc(status, out, rc, err);
    else
        reply(status, out, 201, bg_consent_to_json(&c, (int64_t)bg_util_wall_ms()));
done:
    json_decref(o);
    return 0;
}

static int do_withdraw(bg_consent_reg_t *reg, const char *id, const char *body, size_t len,
                       int *status, char **out)
{
    static const char *const keys[] = {"at", "recorded_by", NULL};
    char by[BG_CONSENT_BY_MAX + 1], err[512];
    int64_t at;
    bg_consent_t c;
    json_t *o = body_object(body, len, 1, keys, status, out);
    if (o == NULL)
        return 0;
    if (opt_time(o, "at", &at, status, out) >= 0 && who(o, by, sizeof by, status, out) == 0) {
        int rc = bg_consent_withdraw(reg, id, at, by, &c, err, sizeof err);
        if (rc != 0)
            reply_rc(status, out, rc, err);
        else
            reply(status, out, 200, bg_consent_to_json(&c, (int64_t)bg_util_wall_ms()));
    }
    json_decref(o);
    return 0;
}

typedef struct {
    json_t *array;
    int64_t now;
    int failed; /* out of memory: the list is incomplete */
} collect_t;

/* Append C to the list; stops the listing when out of memory. */
static int collect(void *arg, const bg_consent_t *c)
{
    collect_t *k = arg;
    if (json_array_append_new(k->array, bg_consent_to_json(c, k->now)) != 0) {
        k->failed = 1;
        return -1;
    }
    return 0;
}

static int do_subject(bg_consent_reg_t *reg, const uint8_t *p, int *status, char **out)
{
    char hex[BG_CONSENT_PSEUDONYM_SIZE], err[256];
    collect_t k = {json_array(), (int64_t)bg_util_wall_ms(), 0};
    if (k.array == NULL)
        return reply(status, out, 500, NULL); /* out of memory */
    bg_hex_encode(p, BG_CONSENT_PSEUDONYM_LEN, hex);
    int rc = bg_consent_list(reg, p, collect, &k, err, sizeof err);
    if (rc != 0 || k.failed) {
        json_decref(k.array);
        return k.failed ? reply(status, out, 500, NULL) : reply_rc(status, out, rc, err);
    }
    return reply(status, out, 200, json_pack("{s:s, s:o}", "subject", hex, "consents", k.array));
}

/* Pseudonym from a raw id or a given pseudonym; a reply is made on error. */
static int subject_of(bg_consent_reg_t *reg, const char *raw, size_t rawlen, const char *pseudo,
                      uint8_t p[BG_CONSENT_PSEUDONYM_LEN], int *status, char **out)
{
    if (raw != NULL) {
        if (rawlen == 0 || rawlen > BG_CONSENT_SUBJECT_MAX) {
            reply_error(status, out, 400, "invalid", "subject must be 1-1024 bytes");
            return -1;
        }
        if (bg_consent_pseudonymize(reg, raw, rawlen, p) != 0) {
            reply_error(status, out, 503, "unavailable", "the registry has no subject key");
            return -1;
        }
        return 0;
    }
    if (pseudo != NULL && parse_hex32(pseudo, p) == 0)
        return 0;
    reply_error(status, out, 400, "invalid",
                "give \"subject\" (the raw id) or \"subject_pseudonym\" (64 hex digits)");
    return -1;
}

static int do_lookup(bg_consent_reg_t *reg, const char *body, size_t len, int *status, char **out)
{
    static const char *const keys[] = {"subject", "subject_pseudonym", NULL};
    uint8_t p[BG_CONSENT_PSEUDONYM_LEN];
    json_t *o = body_object(body, len, 0, keys, status, out);
    if (o == NULL)
        return 0;
    json_t *s = json_object_get(o, "subject");
    const char *pseudo = json_string_value(json_object_get(o, "subject_pseudonym"));
    if (s != NULL && !json_is_string(s))
        reply_error(status, out, 400, "invalid", "\"subject\" must be a string");
    else if (subject_of(reg, json_string_value(s), json_string_length(s), pseudo, p, status, out) ==
             0)
        do_subject(reg, p, status, out);
    json_decref(o);
    return 0;
}

int bg_consent_admin(bg_consent_reg_t *reg, const char *method, const char *path, const char *body,
                     size_t len, int *status, char **out_json)
{
    size_t plen = strcspn(path, "?");
    const char *query = path[plen] == '?' ? path + plen + 1 : NULL;
    size_t pl = strlen(PREFIX);
    if (plen < pl || strncmp(path, PREFIX, pl) != 0 || (plen > pl && path[pl] != '/'))
        return -1;
    const char *rest = path + pl; /* "", "/lookup", "/{id}", "/{id}/withdraw" */
    size_t rl = plen - pl;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int post = strcmp(method, "POST") == 0;
    *out_json = NULL;

    if (rl == 0 || (rl == 1 && rest[0] == '/')) {
        if (post)
            return do_grant(reg, body, len, status, out_json);
        if (!get)
            return reply_error(status, out_json, 405, "method", "use GET or POST on /consents");
        char raw[BG_CONSENT_SUBJECT_MAX + 1], pseudo[80];
        size_t rawlen = 0, pslen = 0;
        int r1 = query_param(query, "subject", raw, sizeof raw, &rawlen);
        int r2 = query_param(query, "subject_pseudonym", pseudo, sizeof pseudo, &pslen);
        uint8_t p[BG_CONSENT_PSEUDONYM_LEN];
        int rc = 0;
        if (r1 < 0 || r2 < 0)
            reply_error(status, out_json, 400, "invalid", "malformed or too long query parameter");
        else if (r1 == 0 && r2 == 0)
            reply_error(status, out_json, 400, "invalid",
                        "give ?subject=ID or ?subject_pseudonym=HEX (listing every consent is "
                        "`bordergate consent list`)");
        else if (subject_of(reg, r1 ? raw : NULL, rawlen, r2 ? pseudo : NULL, p, status,
                            out_json) == 0)
            rc = do_subject(reg, p, status, out_json);
        bg_util_wipe(raw, sizeof raw);
        return rc;
    }
    if (rl == strlen("/lookup") && strncmp(rest, "/lookup", rl) == 0) {
        if (!post)
            return reply_error(status, out_json, 405, "method", "use POST on /consents/lookup");
        return do_lookup(reg, body, len, status, out_json);
    }
    /* /{id} or /{id}/withdraw */
    const char *id = rest + 1;
    size_t idlen = strcspn(id, "/?");
    if (!is_id(id, idlen))
        return reply_error(status, out_json, 404, "not-found", "unknown consent endpoint or id");
    char idbuf[BG_CONSENT_ID_SIZE];
    memcpy(idbuf, id, idlen);
    idbuf[idlen] = '\0';
    const char *tail = id + idlen;
    size_t tl = plen - (size_t)(tail - path);
    if (tl == 0) {
        if (!get)
            return reply_error(status, out_json, 405, "method", "use GET on /consents/{id}");
        bg_consent_t c;
        if (bg_consent_get(reg, idbuf, &c) != 0)
            return reply_error(status, out_json, 404, "not-found", "no such consent");
        return reply(status, out_json, 200, bg_consent_to_json(&c, (int64_t)bg_util_wall_ms()));
    }
    if (tl == strlen("/withdraw") && strncmp(tail, "/withdraw", tl) == 0) {
        if (!post)
            return reply_error(status, out_json, 405, "method",
                               "use POST on /consents/{id}/withdraw");
        return do_withdraw(reg, idbuf, body, len, status, out_json);
    }
    return reply_error(status, out_json, 404, "not-found", "unknown consent endpoint");
}
