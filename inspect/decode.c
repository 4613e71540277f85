/*
 * Decoders: Content-Encoding inflate (zlib, bounded output),
 * percent-decoding, application/x-www-form-urlencoded bodies and the query
 * string, cookies, the named headers, the media type and
 * multipart/form-data. The parsers add fields (or header nodes) to the
 * inspection and scan them.
 */
#include "inspect/inspect_int.h"
#include "inspect/sniff.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "common/base64.h"
#include "common/hex.h"
#include "common/utf8.h"
#include "common/util.h"

/* Inflate gzip/zlib (WINDOW 15+32) or raw deflate (-15) into *OUT. */
int bg_insp_inflate_body(const char *in, size_t len, int window, size_t max, char **out,
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

/* Percent-decode S (LEN) into a new string; PLUS decodes '+' as space.
 * NULL when an escape is malformed (or out of memory). */
static char *pct_decode(const char *s, size_t len, int plus, size_t *outlen)
{
    char *o = malloc(len + 1);
    if (o == NULL)
        return NULL;
    long n = bg_hex_pct_decode(s, len, o, len, BG_PCT_STRICT | (plus ? BG_PCT_PLUS : 0));
    if (n < 0) {
        free(o);
        return NULL;
    }
    o[n] = '\0';
    *outlen = (size_t)n;
    return o;
}

static int add_field(bg_inspection_t *x, field_set_t set, const char *name, size_t nl,
                     const char *value, size_t vl, int decode, int plus)
{
    field_t *nf = bg_insp_grow(x->fields, &x->capfields, x->nfields, sizeof *nf);
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
int bg_insp_parse_urlencoded(bg_inspection_t *x, field_set_t set, const char *s, size_t len)
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

/* Build "form.NAME" (NAME escaped for display: no control characters).
 * A name in which any detector finds a value at any confidence is written
 * "form.<category>" instead: paths go into records, opaque reasons and
 * logs, which never hold a value (a multipart part named after a mobile
 * number, "?13812345678=1"). */
static void field_path(const field_t *f, char *out, size_t cap)
{
    if (f->set == FS_PATH) {
        snprintf(out, cap, "path[%d]", f->seg);
        return;
    }
    bg_detect_finding_t df[1];
    if (f->name_len > 0 && bg_detect_scan(NULL, NULL, f->name, f->name_len, df, 1) > 0) {
        snprintf(out, cap, "%s<%s>", field_prefix(f->set), bg_detect_category_id(df[0].category));
        return;
    }
    size_t n = bg_util_cat(out, cap, field_prefix(f->set));
    for (size_t i = 0; i < f->name_len && n + 2 < cap; i++) {
        unsigned char c = (unsigned char)f->name[i];
        out[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[n] = '\0';
}

void bg_insp_scan_field(bg_inspection_t *x, int fi)
{
    field_t *f = &x->fields[fi];
    char path[PATH_MAX_LEN];
    if (f->is_file)
        return;
    node_spec_t n = bg_insp_spec_of(N_FIELD, fi);
    bg_loc_t loc = f->set == FS_QUERY    ? BG_LOC_QUERY
                   : f->set == FS_COOKIE ? BG_LOC_COOKIE
                   : f->set == FS_PATH   ? BG_LOC_PATH
                                         : BG_LOC_BODY;
    if (f->set == FS_PATH) {
        field_path(f, path, sizeof path);
        bg_insp_scan_text(x, &n, path, loc, NULL, 0, f->value, f->value_len);
        return;
    }
    bg_detect_finding_t nf;
    if (bg_insp_name_pi(x, f->name, f->name_len, &nf)) {
        snprintf(path, sizeof path, "%s<%s>", field_prefix(f->set),
                 bg_detect_category_id(nf.category));
        node_spec_t kn = bg_insp_spec_of(N_FIELD, fi);
        bg_insp_add_name_finding(x, &kn, path, loc, &nf, f->name_len);
    } else {
        field_path(f, path, sizeof path);
    }
    if (f->set == FS_FORM || f->set == FS_QUERY || f->set == FS_PART) /* a number over fields */
        bg_insp_split_value(x, path, f->value, f->value_len, -1, 0, f->name, f->name_len);
    const rule_t *ru = bg_insp_match_rule(x, NULL, 0, f->name, f->name_len);
    if (ru != NULL && ru->category != BG_CAT_NONE) {
        if (f->value_len > 0)
            bg_insp_add_finding(x, &n, path, loc, ru->category, BG_CONF_HIGH, ru->id, 1, 0,
                                f->value_len);
        return;
    }
    if ((f->set == FS_PART || f->set == FS_FORM || f->set == FS_QUERY) &&
        bg_insp_try_nested_field(x, fi, path))
        return;
    /* "recipient[name]", "recipient.name": the field's prefix is whose name
     * it is, as the key an object sits under is in JSON. */
    const char *saved_holder = x->holder_key;
    size_t saved_len = x->holder_len;
    if (f->set == FS_FORM || f->set == FS_PART) {
        size_t k = f->name_len;
        while (k > 0 && f->name[k - 1] != '[' && f->name[k - 1] != '.')
            k--;
        x->holder_key = k > 1 ? f->name : NULL;
        x->holder_len = k > 1 ? k - 1 : 0;
    }
    /* A field rule with category "none": the name says nothing (content
     * detectors still read the value). */
    int co = x->content_only;
    if (ru != NULL)
        x->content_only = 1;
    bg_insp_scan_text(x, &n, path, loc, ru != NULL ? NULL : f->name, ru != NULL ? 0 : f->name_len,
                      f->value, f->value_len);
    x->content_only = co;
    x->holder_key = saved_holder;
    x->holder_len = saved_len;
}

/* Text read for content only, not rewritable (the method, part headers,
 * multipart preamble and epilogue, decoded copies). */
void bg_insp_scan_fixed(bg_inspection_t *x, const char *path, bg_loc_t loc, const char *s,
                        size_t len)
{
    node_spec_t n = bg_insp_spec_of(N_FIXED, -1);
    n.n.text = s; /* outlives the inspection's findings: input or owned copies */
    n.n.text_len = len;
    int co = x->content_only;
    x->content_only = 1;
    bg_insp_scan_text(x, &n, path, loc, NULL, 0, s, len);
    x->content_only = co;
}

/* Keep a decoded copy alive as long as the inspection (findings' nodes may
 * point into it). Takes ownership of P; -1 (P freed) when out of memory. */
int bg_insp_keep_extra(bg_inspection_t *x, char *p)
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
void bg_insp_parse_path(bg_inspection_t *x)
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
        bg_insp_scan_field(x, fi);
        i = e;
    }
}

void bg_insp_set_opaque(bg_inspection_t *x, const char *why)
{
    if (x->opaque[0] == '\0')
        snprintf(x->opaque, sizeof x->opaque, "%s", why);
}

/* The text fields of a gzip member's header (RFC 1952: FNAME, FCOMMENT,
 * FEXTRA) travel with the compressed bytes but are not part of what
 * inflates: read them (fixed findings). */
void bg_insp_scan_gzip_header(bg_inspection_t *x, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    if (n < 10 || u[0] != 0x1f || u[1] != 0x8b)
        return;
    unsigned flg = u[3];
    size_t i = 10;
    if (flg & 4) { /* FEXTRA */
        if (i + 2 > n)
            return;
        size_t xlen = (size_t)u[i] | (size_t)u[i + 1] << 8;
        i += 2;
        if (i + xlen > n)
            return;
        bg_insp_scan_fixed(x, "body(gzip header extra)", BG_LOC_BODY, p + i, xlen);
        i += xlen;
    }
    static const struct {
        unsigned bit;
        const char *path;
    } strs[] = {{8, "body(gzip file name)"}, {16, "body(gzip comment)"}};
    for (size_t k = 0; k < 2; k++) {
        if (!(flg & strs[k].bit))
            continue;
        const char *z = memchr(p + i, 0, n - i);
        if (z == NULL)
            return;
        bg_insp_scan_fixed(x, strs[k].path, BG_LOC_BODY, p + i, (size_t)(z - (p + i)));
        i = (size_t)(z - p) + 1;
    }
}

/* A value split across path segments ("/1101011990/03078515"): the decoded
 * path read as one text; only what crosses a '/' is new (fixed). */
void bg_insp_scan_path_whole(bg_inspection_t *x)
{
    char buf[2048];
    const char *t = x->in.target;
    size_t pl = 0; /* the path: up to the query or the fragment */
    while (pl < x->in.target_len && t[pl] != '?' && t[pl] != '#')
        pl++;
    size_t n = (size_t)bg_hex_pct_decode(t, pl, buf, sizeof buf, 0); /* lenient */
    if (n == 0 || memchr(buf, '/', n) == NULL)
        return;
    bg_detect_finding_t f[16];
    size_t nf = bg_detect_scan(NULL, NULL, buf, n, f, 16);
    if (nf > 16) {
        x->overflow = 1;
        nf = 16;
    }
    for (size_t i = 0; i < nf; i++) {
        if (f[i].confidence < x->rules->min_conf ||
            memchr(buf + f[i].offset, '/', f[i].length) == NULL)
            continue;
        char *copy = malloc(n + 1);
        if (copy == NULL || bg_insp_keep_extra(x, copy) != 0) {
            x->overflow = 1;
            return;
        }
        memcpy(copy, buf, n);
        copy[n] = '\0';
        node_spec_t sp = bg_insp_spec_of(N_FIXED, -1);
        sp.n.text = copy;
        sp.n.text_len = n;
        bg_insp_add_finding(x, &sp, "path", BG_LOC_PATH, f[i].category, f[i].confidence,
                            bg_detect_detector_name(f[i].detector), 0, f[i].offset, f[i].length);
    }
}

int bg_insp_parse_cookies(bg_inspection_t *x)
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
                bg_insp_scan_field(x, fi);
                x->content_only = 0;
            } else if (e > i) {
                /* A crumb without '=': read, and not rewritable. */
                bg_insp_scan_fixed(x, "header.cookie", BG_LOC_COOKIE, s + i, e - i);
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

/* Two field names equal but for ASCII case. */
static int same_name(const char *a, size_t al, const char *b, size_t bl)
{
    return al == bl && strncasecmp(a, b, al) == 0;
}

/*
 * A field that the request repeats, from its first line FIRST: a recipient
 * may combine the lines into one value (RFC 9110 5.3: "a, b"; Cookie lines
 * "a; b"; a quoted element read inside its quotes), so a value split over
 * them is whole there. The combined value is
 * read for content, and what is found across a line boundary (a value no
 * one line holds, so none can be rewritten: fixed) is reported on the
 * field; what one line holds was found on that line. O(fields^2) name
 * compares at most (100 fields).
 */
static void scan_combined(bg_inspection_t *x, size_t first)
{
    const bg_http_header_t *hs = x->in.headers, *f = &hs[first];
    size_t n = x->in.nheaders, total = f->value_len, lines = 1;
    if (header_structural(f->name, f->name_len))
        return;
    for (size_t k = 0; k < first; k++)
        if (same_name(hs[k].name, hs[k].name_len, f->name, f->name_len))
            return; /* not its first line */
    for (size_t k = first + 1; k < n; k++)
        if (same_name(hs[k].name, hs[k].name_len, f->name, f->name_len)) {
            total += 2 + hs[k].value_len;
            lines++;
        }
    if (lines == 1)
        return;
    int cookie = bg_util_ieq(f->name, f->name_len, "cookie");
    /* Out of memory: unread is not clean (overflow fails the request). */
    char *c = malloc(total + 1);
    if (c == NULL || bg_insp_keep_extra(x, c) != 0) { /* it takes C (frees it on failure) */
        x->overflow = 1;
        return;
    }
    size_t *ends = malloc(lines * sizeof *ends); /* where each line's value ends */
    if (ends == NULL) {
        x->overflow = 1;
        return;
    }
    size_t len = 0, li = 0;
    for (size_t k = first; k < n && li < lines; k++) {
        if (!same_name(hs[k].name, hs[k].name_len, f->name, f->name_len))
            continue;
        if (len > 0) {
            c[len++] = cookie ? ';' : ',';
            c[len++] = ' ';
        }
        /* A quoted element ("etag", W/"etag") is the text inside its quotes. */
        const char *v = hs[k].value;
        size_t vl = hs[k].value_len;
        size_t q = vl >= 4 && v[0] == 'W' && v[1] == '/' ? 2 : 0;
        if (vl >= q + 2 && v[q] == '"' && v[vl - 1] == '"') {
            v += q + 1;
            vl -= q + 2;
        }
        memcpy(c + len, v, vl);
        len += vl;
        ends[li++] = len;
    }
    c[len] = '\0';

    char path[300];
    bg_detect_finding_t nf;
    if (bg_insp_name_pi(x, f->name, f->name_len, &nf))
        snprintf(path, sizeof path, "header.<%s>", bg_detect_category_id(nf.category));
    else {
        size_t nl = f->name_len < sizeof path - 8 ? f->name_len : sizeof path - 8;
        memcpy(path, "header.", 7);
        memcpy(path + 7, f->name, nl);
        path[7 + nl] = '\0';
    }
    for (char *p = path + 7; *p; p++)
        *p = (char)tolower((unsigned char)*p);

    bg_detect_key_t ki;
    memset(&ki, 0, sizeof ki);
    bg_detect_finding_t out[SCAN_CAP];
    size_t nfound = bg_detect_scan(NULL, &ki, c, len, out, SCAN_CAP);
    if (nfound > SCAN_CAP) {
        x->overflow = 1;
        nfound = SCAN_CAP;
    }
    node_spec_t node = bg_insp_spec_of(N_FIXED, -1);
    node.n.text = c; /* kept alive with the inspection (bg_insp_keep_extra) */
    node.n.text_len = len;
    for (size_t i = 0; i < nfound; i++) {
        size_t b = out[i].offset, e = b + out[i].length, k = 0;
        while (k < li && ends[k] <= b)
            k++;
        if (k == li || e <= ends[k] || out[i].confidence < x->rules->min_conf)
            continue; /* inside one line: that line reported it */
        bg_finding_t *r =
            bg_insp_add_finding(x, &node, path, BG_LOC_HEADER, out[i].category, out[i].confidence,
                                bg_detect_detector_name(out[i].detector), 0, b, out[i].length);
        if (r != NULL)
            r->fixed = 1;
    }
    free(ends);
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
void bg_insp_scan_headers(bg_inspection_t *x)
{
    const bg_inspect_rules_t *r = x->rules;
    bg_insp_split_reset(x); /* a number cut over header values (split.c) */
    for (size_t h = 0; h < x->in.nheaders; h++) {
        const bg_http_header_t *hd = &x->in.headers[h];
        if (header_structural(hd->name, hd->name_len))
            continue;
        /* obs-text (RFC 9110 5.5) is read as UTF-8: a value in another
         * charset (GBK, Latin-1) cannot be read, so it is opaque. */
        if (!bg_utf8_valid(hd->value, hd->value_len))
            bg_insp_set_opaque(x, "a header value is not UTF-8 text");
        int wanted = 0;
        for (size_t k = 0; !wanted && k < r->nheaders; k++)
            wanted = header_wanted(hd->name, hd->name_len, r->headers[k]);
        int is_cookie = bg_util_ieq(hd->name, hd->name_len, "cookie");
        if (is_cookie && (r->all_cookies || r->ncookies > 0))
            continue; /* parse_cookies reads every cookie */
        hdr_t *nh = bg_insp_grow(x->hdrs, &x->caphdrs, x->nhdrs, sizeof *nh);
        if (nh == NULL) {
            x->overflow = 1; /* fail closed: unread is not clean */
            return;
        }
        x->hdrs = nh;
        hdr_t *e = &x->hdrs[x->nhdrs];
        memset(e, 0, sizeof *e);
        e->header = h;
        /* The name is never rewritten: the inspection's arena holds it. */
        e->name = bg_insp_arena_alloc(x, hd->name_len + 1);
        if (e->name != NULL) {
            for (size_t k = 0; k < hd->name_len; k++)
                e->name[k] = (char)tolower((unsigned char)hd->name[k]);
            e->name[hd->name_len] = '\0';
        }
        e->value = strndup(hd->value, hd->value_len);
        e->value_len = hd->value_len;
        if (e->name == NULL || e->value == NULL) {
            free(e->value);
            e->name = e->value = NULL;
            x->overflow = 1;
            return;
        }
        int slot = (int)x->nhdrs++;
        node_spec_t n = bg_insp_spec_of(N_HEADER, slot);
        char path[300];
        bg_detect_finding_t nf;
        if (bg_insp_name_pi(x, e->name, strlen(e->name), &nf)) {
            snprintf(path, sizeof path, "header.<%s>", bg_detect_category_id(nf.category));
            node_spec_t kn = bg_insp_spec_of(N_HEADER, slot);
            bg_insp_add_name_finding(x, &kn, path, BG_LOC_HEADER, &nf, strlen(e->name));
        } else {
            snprintf(path, sizeof path, "header.%s", e->name);
        }
        bg_insp_split_value(x, path, e->value, e->value_len, -1, 0, e->name, strlen(e->name));
        const rule_t *ru = bg_insp_match_rule(x, NULL, 0, e->name, strlen(e->name));
        if (ru != NULL && ru->category == BG_CAT_NONE) {
            /* a field rule "none": content only, as for unlisted headers */
            x->content_only = 1;
            bg_insp_scan_text(x, &n, path, BG_LOC_HEADER, e->name, strlen(e->name), e->value,
                              e->value_len);
            x->content_only = 0;
        } else if (ru != NULL) {
            bg_insp_add_finding(x, &n, path, BG_LOC_HEADER, ru->category, BG_CONF_HIGH, ru->id, 1,
                                0, e->value_len);
        } else {
            x->content_only = !wanted;
            bg_insp_scan_text(x, &n, path, BG_LOC_HEADER, e->name, strlen(e->name), e->value,
                              e->value_len);
            x->content_only = 0;
        }
    }
    for (size_t h = 0; h < x->in.nheaders && !x->overflow; h++)
        scan_combined(x, h);
}

/* Media type of Content-Type, lowercased, without parameters. */
void bg_insp_media_type(const bg_inspect_input_t *in, char *out, size_t cap, const char **params)
{
    const bg_http_header_t *ct = bg_insp_find_hdr(in, "content-type");
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

/* The boundary parameter of multipart/form-data. */
int bg_insp_boundary_param(const bg_inspect_input_t *in, const char *params, char *out, size_t cap)
{
    const bg_http_header_t *ct = bg_insp_find_hdr(in, "content-type");
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
            if (bg_insp_imemmem(p, (size_t)(end - p), "boundary=") != NULL)
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

/* Case-insensitive search of NEEDLE in H[0..HL). */
const char *bg_insp_imemmem(const char *h, size_t hl, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= hl; i++)
        if (bg_util_iprefix(h + i, hl - i, needle))
            return h + i;
    return NULL;
}

/* Value of PARAM="..." in a Content-Disposition header block. */
static int disposition_param(const char *head, size_t hl, const char *param, const char **v,
                             size_t *vl)
{
    const char *cd = bg_insp_imemmem(head, hl, "content-disposition:");
    if (cd == NULL)
        return -1;
    const char *line_end = memchr(cd, '\r', (size_t)(head + hl - cd));
    if (line_end == NULL)
        line_end = head + hl;
    char pat[32];
    snprintf(pat, sizeof pat, "; %s=", param);
    const char *p = bg_insp_imemmem(cd, (size_t)(line_end - cd), pat);
    if (p == NULL) {
        snprintf(pat, sizeof pat, ";%s=", param);
        p = bg_insp_imemmem(cd, (size_t)(line_end - cd), pat);
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

/* MIME base64 (RFC 2045: whole 4-character groups, padded; line breaks
 * and spaces anywhere) through common/base64; -1 when invalid. *OUT is
 * malloc'd and NUL-ended. */
static int mime_base64(const char *s, size_t n, char **out, size_t *outlen)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n';
    if (chars % 4 != 0)
        return -1; /* a group cut short: not what a MIME encoder writes */
    size_t cap = n / 4 * 3 + 3;
    char *o = malloc(cap + 1);
    if (o == NULL)
        return -1;
    long l = bg_base64_decode(s, n, (unsigned char *)o, cap, BG_B64_SKIP_SPACE);
    if (l < 0) {
        free(o);
        return -1;
    }
    o[l] = '\0';
    *out = o;
    *outlen = (size_t)l;
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
        } else if (i + 2 < n && bg_hex_digit((unsigned char)s[i + 1]) >= 0 &&
                   bg_hex_digit((unsigned char)s[i + 2]) >= 0) {
            o[k++] = (char)(bg_hex_digit((unsigned char)s[i + 1]) << 4 |
                            bg_hex_digit((unsigned char)s[i + 2]));
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
    const char *h = bg_insp_imemmem(head, hl, name);
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
        bg_insp_set_opaque(x, why);
        return;
    }
    bg_insp_scan_fixed(x, path, BG_LOC_BODY, s, n);
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
int bg_insp_parse_multipart(bg_inspection_t *x)
{
    char delim[90];
    int dl = snprintf(delim, sizeof delim, "--%s", x->boundary);
    const char *b = x->body, *end = x->body + x->body_len;
    const char *p = memmem(b, x->body_len, delim, (size_t)dl);
    if (p == NULL)
        return -1;
    bg_insp_split_reset(x); /* the parts' values, in order */
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
        bg_insp_scan_fixed(x, hpath, BG_LOC_BODY, f->part_head, hl);
        (void)is_file;
        (void)fnl;
        int encoded = te != NULL &&
                      (bg_util_ieq(te, tel, "base64") || bg_util_ieq(te, tel, "quoted-printable"));
        if (ct != NULL && bg_util_iprefix(ct, ctl, "multipart/")) {
            bg_insp_set_opaque(x, "a multipart part is itself multipart");
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
            if (dec == NULL || bg_insp_keep_extra(x, dec) != 0) {
                bg_insp_set_opaque(x, "a multipart part's transfer encoding does not decode");
                f->is_file = 1;
            } else {
                char dpath[PATH_MAX_LEN + 10];
                snprintf(dpath, sizeof dpath, "%s(decoded)", path);
                bg_sniff_t sn = bg_sniff(dec, decl, NULL);
                if (sn == BG_SNIFF_UTF8 || sn == BG_SNIFF_EMPTY)
                    bg_insp_scan_fixed(x, dpath, BG_LOC_BODY, dec, decl);
                else {
                    char why[160];
                    snprintf(why, sizeof why, "%.120s is binary", dpath);
                    bg_insp_set_opaque(x, why);
                }
            }
        } else if (bg_sniff_binary_format(body, blen) != NULL || !bg_sniff_is_text(body, blen)) {
            const char *fmt = bg_sniff_binary_format(body, blen);
            char why[160];
            snprintf(why, sizeof why, "%.120s is binary (%s)", path,
                     fmt != NULL ? fmt : "not text");
            bg_insp_set_opaque(x, why);
            f->is_file = 1;
        }
        bg_insp_scan_field(x, fi);
        p = next + dl2n;
    }
}
