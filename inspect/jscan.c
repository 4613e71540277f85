/*
 * The strict JSON scanner and walker: RFC 8259 over the raw text, no tree
 * built. Walks the body and JSON nested in strings, form fields and
 * multipart parts (bg_insp_jdocument), validates without findings
 * (bg_insp_jvalid), seeks one scalar by path (bg_insp_jseek).
 */
#include "inspect/inspect_int.h"
#include "inspect/normalize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/utf8.h"
#include "config/jsonpos.h"

/*
 * The JSON scanner: strict RFC 8259 (UTF-8 validated, no NUL, no lone
 * surrogates, duplicate keys refused), recursive descent over the raw text.
 * With DRY set it only validates (used before walking JSON nested in a
 * string, so a string that merely looks like JSON leaves no findings).
 */
typedef struct {
    bg_inspection_t *x;
    walk_t *w;
    int doc;
    const unsigned char *s;
    size_t n, i;
    int dry;
    int depth;
    const char *err;
} jctx_t;

#define JFAIL(c, msg)                                                                              \
    do {                                                                                           \
        if ((c)->err == NULL)                                                                      \
            (c)->err = (msg);                                                                      \
        return -1;                                                                                 \
    } while (0)

static inline void jws(jctx_t *c)
{
    while (c->i < c->n) {
        unsigned char ch = c->s[c->i];
        if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t')
            break;
        c->i++;
    }
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int h = bg_hex_digit(p[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Word-at-a-time (Bit Twiddling Hacks, as in detect.c's pre-filter): per
 * byte of X the high bit when the byte is '"', '\\', below 0x20 or
 * non-ASCII, i.e. anything a string's plain run stops at. A flag may also
 * be set above a true one (borrows), never below: the lowest is exact. */
#define JONES UINT64_C(0x0101010101010101)
#define JHIGHS UINT64_C(0x8080808080808080)
static inline uint64_t jstop_bytes(uint64_t x)
{
    uint64_t q = x ^ (JONES * '"'), b = x ^ (JONES * '\\');
    return ((q - JONES) & ~q) | ((b - JONES) & ~b) | ((x - JONES * 0x20) & ~x) | x;
}

/* Bytes of plain string text (no quote, backslash, control or non-ASCII
 * byte) from S[I] on, at most up to N: eight at a time. */
static inline size_t jplain(const unsigned char *s, size_t i, size_t n)
{
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t m = jstop_bytes(w) & JHIGHS;
        if (m != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            i += (size_t)__builtin_ctzll(m) / 8;
#endif
            return i;
        }
        i += 8;
    }
    return i;
}

/* The \uXXXX escape whose 'u' is at c->s[K] (the string's closing quote
 * at END): its code point, a surrogate pair read as one, and in *USED the
 * characters it takes after the 'u' (4 or 10). -1 (c->err set) when
 * malformed, U+0000 or a lone surrogate. Always inlined: as a call it
 * costs the dry validation loop of jstring() 0.4 % of a PI-free 8 MB
 * document's instructions (callgrind), escapes or not. */
static inline __attribute__((always_inline)) long jescape_u(jctx_t *c, size_t k, size_t end,
                                                            size_t *used)
{
    if (k + 4 >= end)
        JFAIL(c, "bad \\u escape");
    int cp = hex4(c->s + k + 1);
    if (cp < 0)
        JFAIL(c, "bad \\u escape");
    if (cp == 0)
        JFAIL(c, "\\u0000 in a string");
    *used = 4;
    k += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (k + 6 >= end || c->s[k + 1] != '\\' || c->s[k + 2] != 'u')
            JFAIL(c, "lone surrogate");
        int lo = hex4(c->s + k + 3);
        if (lo < 0xDC00 || lo > 0xDFFF)
            JFAIL(c, "lone surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        *used = 10;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        JFAIL(c, "lone surrogate");
    }
    return cp;
}

/*
 * A string token at c->i ('"'). *OUT gets its decoded text: a pointer into
 * the source when it has no escapes (unless COPY, which always gives a
 * NUL-terminated arena copy), else into the arena. Plain ASCII runs are
 * stepped over eight bytes at a time.
 */
static int jstring(jctx_t *c, int copy, const char **out, size_t *outlen)
{
    size_t start = ++c->i;
    int escapes = 0;
    while (c->i < c->n) {
        c->i = jplain(c->s, c->i, c->n);
        if (c->i >= c->n)
            break;
        unsigned char ch = c->s[c->i];
        if (ch == '"')
            break;
        if (ch == '\\') {
            escapes = 1;
            c->i += 2;
            continue;
        }
        if (ch < 0x20)
            JFAIL(c, "control character in a string");
        if (ch >= 0x80) {
            uint32_t cp;
            size_t l = bg_utf8_decode_inline(c->s + c->i, c->n - c->i, &cp);
            if (l == 0)
                JFAIL(c, "invalid UTF-8 in a string");
            c->i += l;
            continue;
        }
        c->i++;
    }
    if (c->i >= c->n)
        JFAIL(c, "unterminated string");
    size_t end = c->i++; /* past the closing quote */
    if (!escapes && !copy) {
        *out = (const char *)c->s + start;
        *outlen = end - start;
        return 0;
    }
    if (c->dry && !copy) {
        /* Validate the escapes without keeping the text. */
        for (size_t k = start; k < end; k++) {
            if (c->s[k] != '\\')
                continue;
            unsigned char e = c->s[++k];
            if (e == 'u') {
                size_t used;
                if (jescape_u(c, k, end, &used) < 0)
                    return -1;
                k += used;
            } else if (!strchr("\"\\/bfnrt", e) || e == 0) {
                JFAIL(c, "bad escape");
            }
        }
        *out = NULL;
        *outlen = 0;
        return 0;
    }
    char *o = bg_insp_arena_alloc(c->x, end - start + 1);
    if (o == NULL)
        JFAIL(c, "out of memory");
    if (!escapes) { /* a member name: copied for its NUL */
        memcpy(o, c->s + start, end - start);
        o[end - start] = '\0';
        *out = o;
        *outlen = end - start;
        return 0;
    }
    size_t n = 0;
    for (size_t k = start; k < end; k++) {
        unsigned char ch = c->s[k];
        if (ch != '\\') {
            o[n++] = (char)ch;
            continue;
        }
        unsigned char e = c->s[++k];
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            size_t used;
            long cp = jescape_u(c, k, end, &used);
            if (cp < 0)
                return -1;
            k += used;
            n += bg_utf8_encode((uint32_t)cp, o + n); /* never a surrogate here */
            break;
        }
        default: JFAIL(c, "bad escape");
        }
    }
    o[n] = '\0';
    *out = o;
    *outlen = n;
    return 0;
}

static int jnumber(jctx_t *c, int *is_integer)
{
    const unsigned char *s = c->s;
    size_t i = c->i;
    *is_integer = 1;
    if (i < c->n && s[i] == '-')
        i++;
    if (i >= c->n)
        JFAIL(c, "bad number");
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < c->n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        JFAIL(c, "bad number");
    }
    if (i < c->n && s[i] == '.') {
        *is_integer = 0;
        i++;
        if (i >= c->n || s[i] < '0' || s[i] > '9')
            JFAIL(c, "bad number");
        while (i < c->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < c->n && (s[i] == 'e' || s[i] == 'E')) {
        *is_integer = 0;
        i++;
        if (i < c->n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= c->n || s[i] < '0' || s[i] > '9')
            JFAIL(c, "bad number");
        while (i < c->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    c->i = i;
    return 0;
}

static int add_member(bg_inspection_t *x, int container, uint32_t start, uint32_t end)
{
    member_t *nm = bg_insp_grow(x->members, &x->capmembers, x->nmembers, sizeof *nm);
    if (nm == NULL)
        return -1;
    x->members = nm;
    member_t *m = &x->members[x->nmembers];
    m->container = container;
    m->start = start;
    m->end = end;
    m->removed = 0;
    return (int)x->nmembers++;
}

static int add_container(bg_inspection_t *x, int doc)
{
    container_t *nc = bg_insp_grow(x->containers, &x->capcontainers, x->ncontainers, sizeof *nc);
    if (nc == NULL)
        return -1;
    x->containers = nc;
    x->containers[x->ncontainers].doc = doc;
    x->containers[x->ncontainers].has_removal = 0;
    return (int)x->ncontainers++;
}

static int jvalue(jctx_t *c, int container, uint32_t mstart, const char *key, size_t key_len,
                  const char *hint_key, size_t hint_len, int record);

/* Push member K; a name that is itself PI goes into the path as the
 * placeholder ".<CATEGORY>" (a real key "<...>" is always quoted). */
static void path_push_key(walk_t *w, const char *k, size_t kl, unsigned kcls,
                          const char *placeholder, size_t *saved)
{
    *saved = w->path_len;
    if (placeholder != NULL) {
        int n = snprintf(w->path + w->path_len, sizeof w->path - w->path_len, ".<%s>", placeholder);
        w->path_len = n < 0 ? w->path_len : w->path_len + (size_t)n;
    } else if (kl > 0 && !(kcls & KEYC_NOTWORD) && w->path_len + kl + 2 <= sizeof w->path) {
        /* ".key": what bg_jsonpos_path_append_key writes for an ASCII word */
        w->path[w->path_len] = '.';
        memcpy(w->path + w->path_len + 1, k, kl);
        w->path_len += kl + 1;
        w->path[w->path_len] = '\0';
    } else {
        w->path_len = bg_jsonpos_path_append_key(w->path, sizeof w->path, w->path_len, k);
    }
    if (w->path_len >= sizeof w->path)
        w->path_len = sizeof w->path - 1;
    w->frames[w->nframes].key = k;
    w->frames[w->nframes].key_len = kl;
    w->nframes++;
}

static void path_push_index(walk_t *w, size_t i, size_t *saved)
{
    *saved = w->path_len;
    w->path_len = bg_jsonpos_path_append_index(w->path, sizeof w->path, w->path_len, i);
    if (w->path_len >= sizeof w->path)
        w->path_len = sizeof w->path - 1;
    w->frames[w->nframes].key = NULL;
    w->frames[w->nframes].key_len = 0;
    w->frames[w->nframes].index = i;
    w->nframes++;
}

static void path_pop(walk_t *w, size_t saved)
{
    w->nframes--;
    w->path_len = saved;
    w->path[saved] = '\0';
}

typedef struct {
    const char *k;
    size_t l;
} keyref_t;

static int cmp_keyref(const void *a, const void *b)
{
    const keyref_t *x = a, *y = b;
    size_t m = x->l < y->l ? x->l : y->l;
    int r = memcmp(x->k, y->k, m);
    return r != 0 ? r : (x->l > y->l) - (x->l < y->l);
}

static node_spec_t jspec(jctx_t *c, int member, uint32_t vstart, char vtype, int record);

/*
 * A member whose name is PI: a finding on the whole member [MSTART, end of
 * its value), the member jvalue() has just added. Any operator removes it:
 * rewriting the value alone would send the name as it was.
 */
static void member_name_finding(jctx_t *c, int container, uint32_t mstart, const char *k, size_t kl,
                                const bg_detect_finding_t *kf, int record)
{
    bg_inspection_t *x = c->x;
    int m = (int)x->nmembers - 1;
    if (m < 0 || x->members[m].container != container || x->members[m].start != mstart) {
        bg_insp_set_undecodable(
            x, "%s", "internal error: no member for a name holding personal information");
        return;
    }
    node_spec_t sp = jspec(c, m, mstart, 'k', record);
    sp.n.text = k;
    sp.n.text_len = kl;
    bg_insp_add_name_finding(x, &sp, c->w->path, BG_LOC_BODY, kf, kl);
}

static int jobject(jctx_t *c, int record)
{
    int self = c->dry ? -1 : add_container(c->x, c->doc);
    keyref_t small[32];
    keyref_t *keys = small;
    size_t nkeys = 0, capkeys = 32;
    int rc = -1;
    c->i++; /* '{' */
    jws(c);
    if (c->i < c->n && c->s[c->i] == '}') {
        c->i++;
        return 0;
    }
    for (;;) {
        jws(c);
        if (c->i >= c->n || c->s[c->i] != '"') {
            c->err = c->err ? c->err : "expected a member name";
            goto out;
        }
        uint32_t mstart = (uint32_t)c->i;
        const char *k;
        size_t kl;
        if (jstring(c, !c->dry, &k, &kl) != 0)
            goto out;
        if (!c->dry) {
            /* Duplicates: a later one could hide what the upstream reads. */
            if (nkeys <= 32) {
                for (size_t j = 0; j < nkeys; j++) {
                    /* k[0]: both are NUL-terminated copies, so even "" */
                    if (keys[j].l == kl && keys[j].k[0] == k[0] && memcmp(keys[j].k, k, kl) == 0) {
                        c->err = "duplicate object key";
                        goto out;
                    }
                }
            }
            if (nkeys == capkeys) {
                keyref_t *nk = malloc(2 * capkeys * sizeof *nk);
                if (nk == NULL) {
                    c->err = "out of memory";
                    goto out;
                }
                memcpy(nk, keys, nkeys * sizeof *nk);
                if (keys != small)
                    free(keys);
                keys = nk;
                capkeys *= 2;
            }
            keys[nkeys].k = k;
            keys[nkeys].l = kl;
            nkeys++;
        }
        jws(c);
        if (c->i >= c->n || c->s[c->i] != ':') {
            c->err = c->err ? c->err : "expected ':'";
            goto out;
        }
        c->i++;
        size_t saved = 0;
        bg_detect_finding_t kf;
        unsigned kcls = c->dry ? 0 : bg_insp_key_classes(k, kl);
        int kpi = (kcls & KEYC_TRIG) && bg_insp_name_pi_scan(c->x, k, kl, &kf);
        if (!c->dry)
            path_push_key(c->w, k, kl, kcls, kpi ? bg_detect_category_id(kf.category) : NULL,
                          &saved);
        int r = jvalue(c, self, mstart, k, kl, k, kl, record);
        if (r == 0 && kpi)
            member_name_finding(c, self, mstart, k, kl, &kf, record);
        if (!c->dry)
            path_pop(c->w, saved);
        if (r != 0)
            goto out;
        jws(c);
        if (c->i < c->n && c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        if (c->i < c->n && c->s[c->i] == '}') {
            c->i++;
            break;
        }
        c->err = c->err ? c->err : "expected ',' or '}'";
        goto out;
    }
    if (nkeys > 32) {
        qsort(keys, nkeys, sizeof *keys, cmp_keyref);
        for (size_t j = 1; j < nkeys; j++) {
            if (cmp_keyref(&keys[j - 1], &keys[j]) == 0) {
                c->err = "duplicate object key";
                goto out;
            }
        }
    }
    rc = 0;
out:
    if (keys != small)
        free(keys);
    return rc;
}

static int jarray(jctx_t *c, const char *hint_key, size_t hint_len, int record)
{
    bg_inspection_t *x = c->x;
    int self = c->dry ? -1 : add_container(x, c->doc);
    /* The records array: each element is one data subject. */
    int is_records =
        !c->dry && c->doc == 0 && x->records_container < 0 && x->rules->records.n > 0 &&
        bg_insp_jpath_match_from(&(jpath_t){x->rules->records.segs, x->rules->records.n - 1}, 0,
                                 c->w->frames, c->w->nframes, 0);
    if (is_records)
        x->records_container = self;
    c->i++; /* '[' */
    jws(c);
    if (c->i < c->n && c->s[c->i] == ']') {
        c->i++;
        return 0;
    }
    for (size_t idx = 0;; idx++) {
        jws(c);
        size_t saved = 0;
        if (!c->dry)
            path_push_index(c->w, idx, &saved);
        /* Counted before the walk: a record whose text turns out invalid
         * still has findings, and callers size arrays by the count. */
        if (is_records)
            x->nrecords = (int)idx + 1;
        /* Elements inherit the array's key for hints ("phones": [...]). */
        int r = jvalue(c, self, (uint32_t)c->i, NULL, 0, hint_key, hint_len,
                       is_records ? (int)idx : record);
        if (!c->dry)
            path_pop(c->w, saved);
        if (r != 0)
            return -1;
        jws(c);
        if (c->i < c->n && c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        if (c->i < c->n && c->s[c->i] == ']') {
            c->i++;
            return 0;
        }
        JFAIL(c, "expected ',' or ']'");
    }
}

/* Walk a document of its own (the body, or JSON nested in a string); its
 * values belong to RECORD (the record holding the string, or -1). */
int bg_insp_jdocument(bg_inspection_t *x, walk_t *w, int doc, int record)
{
    jctx_t c;
    memset(&c, 0, sizeof c);
    c.x = x;
    c.w = w;
    c.doc = doc;
    c.s = (const unsigned char *)x->docs[doc].text;
    c.n = x->docs[doc].len;
    if (x->docs[doc].container_node < 0)
        bg_insp_split_reset(x); /* the body, a form field, a part: values of their own */
    jws(&c);
    if (jvalue(&c, -1, (uint32_t)c.i, NULL, 0, NULL, 0, record) != 0)
        goto bad;
    jws(&c);
    if (c.i != c.n) {
        c.err = "data after the JSON value";
        goto bad;
    }
    return 0;
bad:
    bg_insp_set_undecodable(x, "invalid JSON: %s at byte %zu%s%s", c.err ? c.err : "syntax error",
                            c.i, doc > 0 ? " of JSON nested in a string at " : "",
                            doc > 0 ? w->path : "");
    return -1;
}

/*
 * JSON nested in a string at W's path: document D, walked with a walk of
 * its own. Rule paths inside match from its root, and the outer walk's
 * frames stay intact for the members after the string (sharing them made
 * rules miss every later sibling). Not inlined: the walk is 2.6 KB of
 * stack, paid once per nesting level rather than in every jvalue frame.
 */
static __attribute__((noinline)) void jnested(bg_inspection_t *x, const walk_t *w, int d,
                                              int record)
{
    walk_t nw;
    nw.nframes = 0;
    nw.path_len = w->path_len;
    memcpy(nw.path, w->path, w->path_len + 1);
    if (nw.path_len + 6 < sizeof nw.path) {
        memcpy(nw.path + nw.path_len, "(json)", 7);
        nw.path_len += 6;
    }
    bg_insp_jdocument(x, &nw, d, record);
}

int bg_insp_jvalid(bg_inspection_t *x, const char *s, size_t len)
{
    jctx_t c;
    memset(&c, 0, sizeof c);
    c.x = x;
    c.dry = 1;
    c.s = (const unsigned char *)s;
    c.n = len;
    jws(&c);
    if (jvalue(&c, -1, 0, NULL, 0, NULL, 0, -1) != 0)
        return 0;
    jws(&c);
    return c.i == c.n;
}

/* A JSON node at [vstart, c->i) for the finding machinery. */
static node_spec_t jspec(jctx_t *c, int member, uint32_t vstart, char vtype, int record)
{
    node_spec_t sp = bg_insp_spec_of(N_JSON, -1);
    sp.n.doc = c->doc;
    sp.n.vstart = vstart;
    sp.n.vend = (uint32_t)c->i;
    sp.n.member = member;
    sp.n.vtype = vtype;
    sp.n.record = record;
    return sp;
}

/* A JSON number with a fraction or exponent that is an integer in disguise
 * ("13812345678.0", "1.3812345678e10": what a JavaScript client sends for a
 * phone kept as a number): its digits are scanned, and what they hold is a
 * finding on the whole number (rewritten as a string). 1 when found. */
static int json_number_pi(bg_inspection_t *x, node_spec_t *sp, const char *path)
{
    char digits[48];
    int dn = bg_normalize_json_number(sp->n.text, sp->n.text_len, digits, sizeof digits);
    if (dn <= 0)
        return 0;
    bg_detect_finding_t f[4];
    size_t k = bg_detect_scan(NULL, NULL, digits, (size_t)dn, f, 4);
    int found = 0;
    for (size_t i = 0; i < k && i < 4; i++) {
        if (f[i].confidence < x->rules->min_conf)
            continue;
        bg_insp_add_finding(x, sp, path, BG_LOC_BODY, f[i].category, f[i].confidence,
                            bg_detect_detector_name(f[i].detector), 1, 0, sp->n.text_len);
        found = 1;
    }
    return found;
}

/*
 * Whether the array just walked at PATH (containers[ARR], its elements the
 * members from FIRST_MEMBER on, its findings from FIRST_FINDING on) has the
 * shape of an address book: at least one element, and every element holds
 * a person's name and a phone number or e-mail address. Only asked for an
 * address-book key (contacts, address_book, 通讯录) on a route whose policy
 * says it carries address books (inspect.address_books): a batch of
 * customer records has the same shape. Cost: O(elements + findings).
 */
static int address_book(const bg_inspection_t *x, const char *path, size_t arr, size_t first_member,
                        size_t first_finding)
{
    size_t n = 0;
    for (size_t i = first_member; i < x->nmembers; i++)
        n += x->members[i].container == (int)arr;
    if (n == 0 || arr >= x->ncontainers)
        return 0;
    uint8_t *has = calloc(n, 1); /* bit 1: a name, bit 2: a phone or e-mail */
    if (has == NULL)
        return 0;
    size_t pl = strlen(path);
    for (size_t i = first_finding; i < x->nfind; i++) {
        const bg_finding_t *f = &x->findings[i];
        if (strncmp(f->path, path, pl) != 0 || f->path[pl] != '[')
            continue;
        char *end = NULL;
        unsigned long idx = strtoul(f->path + pl + 1, &end, 10);
        if (end == NULL || *end != ']' || idx >= n)
            continue;
        if (f->category == BG_CAT_PERSON_NAME)
            has[idx] |= 1;
        else if (f->category == BG_CAT_CN_MOBILE || f->category == BG_CAT_PHONE_NUMBER ||
                 f->category == BG_CAT_EMAIL)
            has[idx] |= 2;
    }
    int all = 1;
    for (size_t i = 0; i < n && all; i++)
        all = has[i] == 3;
    free(has);
    return all;
}

/* A short array of small integers or digit strings whose digits, read in
 * order, are a number ([138, 1234, 5678], [440305, 20000229, 1638],
 * ["1101011990", "0307851X"], [1,3,8,1,2,3,4,5,6,7,8]): a mobile or ID
 * number split into JSON values. The array as a whole is the finding (an
 * operator covers it). At most 6 elements of 1-12 digits, 11-19 digits in
 * all; or an ID number (region, date and checksum valid) as up to 18
 * elements of one digit each - not a mobile: the answers of an 11-item
 * 1-5 survey read as one about one time in eight. An ID number's check
 * character X may end the last string. */
static void int_array_pi(bg_inspection_t *x, jctx_t *c, int m, uint32_t vstart, int record,
                         const char *path)
{
    char d[24];
    size_t nd = 0, nel = 0, maxw = 0, i = vstart + 1;
    const unsigned char *s = c->s;
    for (;;) {
        while (i < c->i && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        int q = i < c->i && s[i] == '"';
        i += (size_t)q;
        size_t b = i;
        while (i < c->i && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == b || i - b > 12 || nd + (i - b) > 19 || ++nel > 19)
            return;
        memcpy(d + nd, s + b, i - b);
        nd += i - b;
        maxw = i - b > maxw ? i - b : maxw;
        if (q && i < c->i && (s[i] | 0x20) == 'x' && nd == 17)
            d[nd++] = 'X', i++;
        if (q && (i >= c->i || s[i++] != '"'))
            return;
        while (i < c->i && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i < c->i && s[i] == ',' && d[nd - 1] != 'X') {
            i++;
            continue;
        }
        if (i < c->i && s[i] == ']')
            break;
        return;
    }
    if (nel < 2 || nd < 11 || (nel > 6 && maxw > 1))
        return;
    bg_detect_finding_t f[2];
    size_t k = bg_detect_scan(NULL, NULL, d, nd, f, 2);
    for (size_t j = 0; j < k && j < 2; j++) {
        if (f[j].confidence < x->rules->min_conf || f[j].length != nd ||
            (nel > 6 && f[j].detector != BG_DET_RESIDENT_ID))
            continue;
        node_spec_t sp = jspec(c, m, vstart, 'a', record);
        bg_insp_add_finding(x, &sp, path, BG_LOC_BODY, f[j].category, f[j].confidence,
                            bg_detect_detector_name(f[j].detector), 1, 0, 0);
        return;
    }
}

/* A value as jvalue() found it: where it stands, the key it is under and
 * the field rule that names it; what its steps below share. */
typedef struct {
    int container;   /* the container holding it, or -1 at the top */
    uint32_t mstart; /* where its member starts */
    uint32_t vstart; /* where the value starts */
    const char *key; /* its member name (KEY_LEN bytes), or NULL */
    size_t key_len;
    const char *hint_key; /* the key its content is read under, or NULL */
    size_t hint_len;
    int record;       /* the record it belongs to, or -1 */
    const rule_t *ru; /* the field rule that names it, or NULL */
    int none_rule;    /* a field rule with category "none" matched */
} jval_t;

/* A string value at c->i: a rule's finding, a JSON document nested in it
 * (walked as one), or text the detectors read. */
static int jvalue_string(jctx_t *c, const jval_t *v)
{
    bg_inspection_t *x = c->x;
    walk_t *w = c->w;
    const char *txt;
    size_t tl;
    int r = jstring(c, 0, &txt, &tl);
    if (r != 0 || c->dry || w == NULL) /* a walk has one unless dry */
        return r;
    int m = v->container >= 0 ? add_member(x, v->container, v->mstart, (uint32_t)c->i) : -1;
    bg_insp_split_value(x, w->path, txt, tl, v->container, v->key == NULL, v->key, v->key_len);
    node_spec_t sp = jspec(c, m, v->vstart, 's', v->record);
    sp.n.text = txt;
    sp.n.text_len = tl;
    if (v->ru != NULL) {
        bg_insp_add_finding(x, &sp, w->path, BG_LOC_BODY, v->ru->category, BG_CONF_HIGH, v->ru->id,
                            1, 0, tl);
        return 0;
    }
    size_t k = 0;
    while (k < tl && (txt[k] == ' ' || txt[k] == '\t' || txt[k] == '\r' || txt[k] == '\n'))
        k++;
    int nested = 0;
    if (k < tl && (txt[k] == '{' || txt[k] == '[') && bg_insp_jvalid(x, txt, tl)) {
        if (x->docs[c->doc].depth >= MAX_NEST) {
            /* Not walked, and not passed as text either: keys
             * (names, addresses) would go unseen. */
            bg_insp_set_undecodable(x, "JSON nested in strings deeper than %d levels at %s",
                                    MAX_NEST, w->path);
            nested = 1;
        } else {
            int n = bg_insp_ensure_node(x, &sp);
            int d = n >= 0 ? bg_insp_add_doc(x, txt, tl, n, -1, x->docs[c->doc].depth + 1) : -1;
            if (d >= 0) {
                jnested(x, w, d, v->record);
                nested = 1;
            }
        }
    }
    if (!nested) {
        int co = x->content_only;
        x->content_only |= v->none_rule;
        bg_insp_scan_text(x, &sp, w->path, BG_LOC_BODY, v->hint_key, v->hint_len, txt, tl);
        x->content_only = co;
    }
    return 0;
}

/* A number value at c->i: a rule's finding, an integer the detectors
 * read, an integer in disguise, or a finding its key names. */
static int jvalue_number(jctx_t *c, const jval_t *v)
{
    bg_inspection_t *x = c->x;
    walk_t *w = c->w;
    int is_int = 0;
    int r = jnumber(c, &is_int);
    if (r != 0 || c->dry)
        return r;
    int m = v->container >= 0 ? add_member(x, v->container, v->mstart, (uint32_t)c->i) : -1;
    node_spec_t sp = jspec(c, m, v->vstart, 'n', v->record);
    sp.n.text = (const char *)c->s + v->vstart;
    sp.n.text_len = c->i - v->vstart;
    sp.n.is_integer = is_int;
    bg_insp_split_value(x, w->path, is_int ? sp.n.text : NULL, sp.n.text_len, v->container,
                        v->key == NULL, v->key, v->key_len);
    if (v->ru != NULL) {
        bg_insp_add_finding(x, &sp, w->path, BG_LOC_BODY, v->ru->category, BG_CONF_HIGH, v->ru->id,
                            1, 0, sp.n.text_len);
    } else if (is_int) {
        bg_insp_scan_text(x, &sp, w->path, BG_LOC_BODY, v->hint_key, v->hint_len, sp.n.text,
                          sp.n.text_len);
    } else if (json_number_pi(x, &sp, w->path)) {
        /* an integer in disguise (13812345678.0, 1.3812345678e10) */
    } else if (v->hint_key != NULL) {
        bg_detect_cat_t hc = bg_insp_key_category(x, v->hint_key, v->hint_len);
        if (hc != BG_CAT_NONE && hc != BG_CAT_CONTACTS && hc != x->cover_cat)
            bg_insp_add_finding(x, &sp, w->path, BG_LOC_BODY, hc, BG_CONF_HIGH, "key", 1, 0,
                                sp.n.text_len);
    }
    return 0;
}

/* true, false or null at c->i: a member of its container, nothing else. */
static int jvalue_literal(jctx_t *c, const jval_t *v)
{
    unsigned char ch = c->s[c->i];
    const char *lit = ch == 't' ? "true" : ch == 'f' ? "false" : "null";
    size_t ll = strlen(lit);
    if (c->n - c->i < ll || memcmp(c->s + c->i, lit, ll) != 0)
        JFAIL(c, "bad literal");
    c->i += ll;
    if (!c->dry)
        bg_insp_split_value(c->x, c->w->path, NULL, 0, v->container, 0, NULL, 0);
    if (!c->dry && v->container >= 0)
        add_member(c->x, v->container, v->mstart, (uint32_t)c->i);
    return 0;
}

/* An object or array at c->i: walked inside; then its member entry, and
 * when a rule or its key names a category for it (or it is an address
 * book, or a short array of digits that spells a number), a finding on the
 * whole container. */
static int jvalue_container(jctx_t *c, const jval_t *v)
{
    bg_inspection_t *x = c->x;
    walk_t *w = c->w;
    unsigned char ch = c->s[c->i];
    const rule_t *ru = v->ru;
    bg_detect_cat_t kc = BG_CAT_NONE;
    if (!c->dry && ru == NULL && !v->none_rule && v->key != NULL)
        kc = bg_insp_key_category(x, v->key, v->key_len);
    /* An address-book key (contacts, 通讯录) alone is no evidence: a batch of
     * customer records is sent under "contacts" too. See address_book(). */
    int book = kc == BG_CAT_CONTACTS && ch == '[' && x->rules->address_books;
    if (kc == BG_CAT_CONTACTS)
        kc = BG_CAT_NONE;
    size_t book_container = x->ncontainers, book_members = x->nmembers;
    /* A rule or a key that names a category for a whole object or array
     * ("consignee": {...}, "installed_apps": [...]): the container is one
     * finding AND the walk goes on inside it, so what it holds (an ID
     * number in a consignee) is found and decided on its own. The
     * container's operator covers everything inside (render: the larger
     * splice wins); inner key-only findings of the container's own
     * category add nothing to it and are not repeated (cover_cat). */
    int whole_only = ru != NULL || (bg_insp_key_only_category(kc) && kc != x->cover_cat);
    bg_detect_cat_t saved_cover = x->cover_cat;
    size_t first_inner = x->nfind;

    c->depth++;
    if (whole_only && !c->dry)
        x->cover_cat = ru != NULL ? ru->category : kc;
    /* Whose object this is, judged only when a bare "name" asks
     * (bg_insp_scan_text): the key stays valid while its value is walked. */
    const char *saved_holder = x->holder_key;
    size_t saved_holder_len = x->holder_len;
    if (ch == '{' && !c->dry) {
        x->holder_key = v->key != NULL ? v->key : v->hint_key;
        x->holder_len = v->key != NULL ? v->key_len : v->hint_len;
    }
    int r = ch == '{' ? jobject(c, v->record) : jarray(c, v->hint_key, v->hint_len, v->record);
    x->holder_key = saved_holder;
    x->holder_len = saved_holder_len;
    x->cover_cat = saved_cover;
    c->depth--;
    if (r != 0 || c->dry)
        return r;
    /* Objects and arrays: their own member entry once their end is known. */
    int m = v->container >= 0 ? add_member(x, v->container, v->mstart, (uint32_t)c->i) : -1;
    if (book && address_book(x, w->path, book_container, book_members, first_inner)) {
        whole_only = 1;
        kc = BG_CAT_CONTACTS;
    }
    size_t nfind_before = x->nfind;
    if (!whole_only && ch == '[' && c->i - v->vstart <= 96)
        int_array_pi(x, c, m, v->vstart, v->record, w->path);
    bg_insp_split_end(x, (int)book_container, x->nfind > nfind_before);
    if (whole_only && c->i > v->vstart + 2) {
        node_spec_t sp = jspec(c, m, v->vstart, ch == '{' ? 'o' : 'a', v->record);
        bg_finding_t *f;
        if (ru != NULL)
            f = bg_insp_add_finding(x, &sp, w->path, BG_LOC_BODY, ru->category, BG_CONF_HIGH,
                                    ru->id, 1, 0, 0);
        else
            f = bg_insp_add_finding(x, &sp, w->path, BG_LOC_BODY, kc, BG_CONF_HIGH, "key", 1, 0, 0);
        if (f != NULL && first_inner < x->nfind - 1) {
            /* Document order: the container before what it holds (a 451
             * names "$.consignee" before "$.consignee.name"). Nothing is
             * applied yet, so pending[] is all zero and stays aligned. */
            bg_finding_t cf = *f;
            memmove(&x->findings[first_inner + 1], &x->findings[first_inner],
                    (x->nfind - 1 - first_inner) * sizeof *x->findings);
            x->findings[first_inner] = cf;
        }
    }
    return 0;
}

/*
 * The value at c->i, member of CONTAINER (-1: none) starting at MSTART,
 * under KEY (its member name) and HINT_KEY (the key its content is read
 * under: an array's elements take the array's). The field rule that
 * matches its path decides first; then each kind of value has its step.
 */
static int jvalue(jctx_t *c, int container, uint32_t mstart, const char *key, size_t key_len,
                  const char *hint_key, size_t hint_len, int record)
{
    if (c->depth >= MAX_DEPTH)
        JFAIL(c, "nested deeper than 64 levels");
    jws(c);
    if (c->i >= c->n)
        JFAIL(c, "unexpected end");
    jval_t v = {container, mstart,   (uint32_t)c->i, key,  key_len,
                hint_key,  hint_len, record,         NULL, 0};
    unsigned char ch = c->s[c->i];
    if (!c->dry && c->w->nframes > 0)
        v.ru = bg_insp_match_rule(c->x, c->w->frames, c->w->nframes, key, key_len);
    /* A field rule with category "none": the key says nothing here (no
     * category, no hints); content detectors still read what is inside. */
    v.none_rule = v.ru != NULL && v.ru->category == BG_CAT_NONE;
    if (v.none_rule) {
        v.ru = NULL;
        v.hint_key = NULL;
        v.hint_len = 0;
    }
    if (ch == '{' || ch == '[')
        return jvalue_container(c, &v);
    c->depth++;
    int r = -1;
    if (ch == '"') {
        r = jvalue_string(c, &v);
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
        r = jvalue_number(c, &v);
    } else if (ch == 't' || ch == 'f' || ch == 'n') {
        r = jvalue_literal(c, &v);
    } else {
        c->depth--;
        JFAIL(c, "unexpected character");
    }
    c->depth--;
    return r;
}

/* JSON held in a form field or multipart part: a document of its own. */
int bg_insp_try_nested_field(bg_inspection_t *x, int fi, const char *path)
{
    field_t *f = &x->fields[fi];
    size_t k = 0;
    while (k < f->value_len && (f->value[k] == ' ' || f->value[k] == '\n' || f->value[k] == '\r' ||
                                f->value[k] == '\t'))
        k++;
    if (k >= f->value_len || (f->value[k] != '{' && f->value[k] != '[') ||
        !bg_insp_jvalid(x, f->value, f->value_len))
        return 0;
    int d = bg_insp_add_doc(x, f->value, f->value_len, -1, fi, 1);
    if (d < 0)
        return 0;
    walk_t w;
    memset(&w, 0, sizeof w);
    w.path_len = strlen(path);
    memcpy(w.path, path, w.path_len + 1);
    bg_insp_jdocument(x, &w, d, -1);
    return 1;
}

/*
 * The scalar at path P in the body, found by walking the raw text and
 * skipping what is not on the path (no tree is built). Text into OUT.
 */
int bg_insp_jseek(bg_inspection_t *x, const jpath_t *p, char *out, size_t cap)
{
    jctx_t c;
    memset(&c, 0, sizeof c);
    c.x = x;
    c.s = (const unsigned char *)x->docs[0].text;
    c.n = x->docs[0].len;
    for (size_t si = 0; si < p->n; si++) {
        const seg_t *sg = &p->segs[si];
        jws(&c);
        if (c.i >= c.n)
            return -1;
        if (sg->kind == SEG_KEY) {
            if (c.s[c.i] != '{')
                return -1;
            c.i++;
            int found = 0;
            for (;;) {
                jws(&c);
                if (c.i >= c.n || c.s[c.i] != '"')
                    return -1;
                const char *k;
                size_t kl;
                if (jstring(&c, 0, &k, &kl) != 0)
                    return -1;
                jws(&c);
                if (c.i >= c.n || c.s[c.i] != ':')
                    return -1;
                c.i++;
                if (kl == sg->key_len && memcmp(k, sg->key, kl) == 0) {
                    found = 1;
                    break;
                }
                c.dry = 1;
                if (jvalue(&c, -1, 0, NULL, 0, NULL, 0, -1) != 0)
                    return -1;
                c.dry = 0;
                jws(&c);
                if (c.i < c.n && c.s[c.i] == ',') {
                    c.i++;
                    continue;
                }
                return -1;
            }
            if (!found)
                return -1;
        } else if (sg->kind == SEG_INDEX) {
            if (c.s[c.i] != '[')
                return -1;
            c.i++;
            for (size_t k = 0; k < sg->index; k++) {
                c.dry = 1;
                if (jvalue(&c, -1, 0, NULL, 0, NULL, 0, -1) != 0)
                    return -1;
                c.dry = 0;
                jws(&c);
                if (c.i >= c.n || c.s[c.i] != ',')
                    return -1;
                c.i++;
            }
        } else {
            return -1; /* wildcards select no single value */
        }
    }
    jws(&c);
    if (c.i >= c.n)
        return -1;
    if (c.s[c.i] == '"') {
        const char *t;
        size_t tl;
        if (jstring(&c, 0, &t, &tl) != 0)
            return -1;
        return bg_insp_value_out(out, cap, t, tl);
    }
    if (c.s[c.i] == '-' || (c.s[c.i] >= '0' && c.s[c.i] <= '9')) {
        size_t st = c.i;
        int is_int;
        if (jnumber(&c, &is_int) != 0)
            return -1;
        return bg_insp_value_out(out, cap, (const char *)c.s + st, c.i - st);
    }
    return -1;
}

/* Whether S is one JSON number (what may be spliced in unquoted). */
int bg_insp_json_number_text(const char *s)
{
    jctx_t c;
    int is_int;
    memset(&c, 0, sizeof c);
    c.s = (const unsigned char *)s;
    c.n = strlen(s);
    return c.n > 0 && jnumber(&c, &is_int) == 0 && c.i == c.n;
}
