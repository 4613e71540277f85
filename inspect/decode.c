/*
 * Decoders: Content-Encoding inflate (zlib, bounded output),
 * percent-decoding, application/x-www-form-urlencoded bodies and the query
 * string, cookies, the named headers, the media type and
 * multipart/form-data. The parsers add fields (or header nodes) to the
 * inspection and scan them.
 */
#include "inspect/inspect_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

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

/* Percent-decode S (LEN) into a new string; PLUS decodes '+' as space. */
static char *pct_decode(const char *s, size_t len, int plus, size_t *outlen)
{
    char *o = malloc(len + 1);
    size_t n = 0;
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < len ? bg_insp_hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? bg_insp_hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(o);
                return NULL;
            }
            o[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '+' && plus) {
            o[n++] = ' ';
        } else {
            o[n++] = s[i];
        }
    }
    o[n] = '\0';
    *outlen = n;
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
    }
    return "";
}

/* Build "form.NAME" (NAME escaped for display: no control characters). */
static void field_path(const field_t *f, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "%s", field_prefix(f->set));
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
                                         : BG_LOC_BODY;
    bg_detect_finding_t nf;
    if (bg_insp_name_pi(x, f->name, f->name_len, &nf)) {
        snprintf(path, sizeof path, "%s<%s>", field_prefix(f->set),
                 bg_detect_category_id(nf.category));
        node_spec_t kn = bg_insp_spec_of(N_FIELD, fi);
        bg_insp_add_name_finding(x, &kn, path, loc, &nf, f->name_len);
    } else {
        field_path(f, path, sizeof path);
    }
    const rule_t *ru = bg_insp_match_rule(x, NULL, 0, f->name, f->name_len);
    if (ru != NULL) {
        if (f->value_len > 0)
            bg_insp_add_finding(x, &n, path, loc, ru->category, BG_CONF_HIGH, ru->id, 1, 0,
                                f->value_len);
        return;
    }
    if ((f->set == FS_PART || f->set == FS_FORM || f->set == FS_QUERY) &&
        bg_insp_try_nested_field(x, fi, path))
        return;
    bg_insp_scan_text(x, &n, path, loc, f->name, f->name_len, f->value, f->value_len);
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
                if (wanted)
                    bg_insp_scan_field(x, fi);
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

void bg_insp_scan_headers(bg_inspection_t *x)
{
    const bg_inspect_rules_t *r = x->rules;
    for (size_t h = 0; h < x->in.nheaders; h++) {
        const bg_http_header_t *hd = &x->in.headers[h];
        int wanted = 0;
        for (size_t k = 0; !wanted && k < r->nheaders; k++)
            wanted = header_wanted(hd->name, hd->name_len, r->headers[k]);
        if (!wanted)
            continue;
        hdr_t *nh = bg_insp_grow(x->hdrs, &x->caphdrs, x->nhdrs, sizeof *nh);
        if (nh == NULL)
            return;
        x->hdrs = nh;
        hdr_t *e = &x->hdrs[x->nhdrs];
        memset(e, 0, sizeof *e);
        e->header = h;
        e->name = strndup(hd->name, hd->name_len);
        for (char *p = e->name; p != NULL && *p; p++)
            *p = (char)tolower((unsigned char)*p);
        e->value = strndup(hd->value, hd->value_len);
        e->value_len = hd->value_len;
        if (e->name == NULL || e->value == NULL) {
            free(e->name);
            free(e->value);
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
        const rule_t *ru = bg_insp_match_rule(x, NULL, 0, e->name, strlen(e->name));
        if (ru != NULL)
            bg_insp_add_finding(x, &n, path, BG_LOC_HEADER, ru->category, BG_CONF_HIGH, ru->id, 1,
                                0, e->value_len);
        else
            bg_insp_scan_text(x, &n, path, BG_LOC_HEADER, e->name, strlen(e->name), e->value,
                              e->value_len);
    }
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
static const char *imemmem(const char *h, size_t hl, const char *needle)
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
    const char *cd = imemmem(head, hl, "content-disposition:");
    if (cd == NULL)
        return -1;
    const char *line_end = memchr(cd, '\r', (size_t)(head + hl - cd));
    if (line_end == NULL)
        line_end = head + hl;
    char pat[32];
    snprintf(pat, sizeof pat, "; %s=", param);
    const char *p = imemmem(cd, (size_t)(line_end - cd), pat);
    if (p == NULL) {
        snprintf(pat, sizeof pat, ";%s=", param);
        p = imemmem(cd, (size_t)(line_end - cd), pat);
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

int bg_insp_parse_multipart(bg_inspection_t *x)
{
    char delim[90];
    int dl = snprintf(delim, sizeof delim, "--%s", x->boundary);
    const char *b = x->body, *end = x->body + x->body_len;
    const char *p = memmem(b, x->body_len, delim, (size_t)dl);
    if (p == NULL)
        return -1;
    p += dl;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return 0; /* closing delimiter */
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
        const char *name = NULL, *fname = NULL;
        size_t nl = 0, fnl = 0;
        if (disposition_param(p, (size_t)(hend - p), "name", &name, &nl) != 0)
            name = "", nl = 0;
        int is_file = disposition_param(p, (size_t)(hend - p), "filename", &fname, &fnl) == 0;
        const char *ct = imemmem(p, (size_t)(hend - p), "content-type:");
        int textual = 1;
        if (ct != NULL) {
            ct += 13;
            while (*ct == ' ')
                ct++;
            textual = bg_util_iprefix(ct, (size_t)(hend - ct), "text/") ||
                      bg_util_iprefix(ct, (size_t)(hend - ct), "application/json") ||
                      bg_util_iprefix(ct, (size_t)(hend - ct), "application/x-www-form-urlencoded");
        }
        int fi = add_field(x, FS_PART, name, nl, body, (size_t)(next - body), 0, 0);
        if (fi < 0)
            return -1;
        field_t *f = &x->fields[fi];
        f->part_head = strndup(p, (size_t)(hend - p));
        f->part_head_len = (size_t)(hend - p);
        f->is_file = is_file && !textual;
        bg_insp_scan_field(x, fi);
        p = next + dl2n;
    }
}
