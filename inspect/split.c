/*
 * A mobile or ID number spelt over several JSON values (issue 13): the
 * digit-only values of a document are read in document order, across
 * objects and arrays, and the last few are tried together -
 *
 *   {"id_region": "110105", "id_birth": "19491231", "id_seq": "002X"}
 *   [{"v": "110105"}, {"v": "19491231"}, {"v": "002X"}]
 *   {"phone_prefix": "138", "phone_mid": "1234", "phone_suffix": "5678"}
 *   {"cc": "86", "area": "138", "num": "12345678"}
 *
 * What counts, so that ordinary numbers side by side (a year, a count, a
 * price) do not:
 *   - an ID number (18 characters, region, date and check character valid;
 *     or 15 digits cut as region | birth date | sequence) from 2 to 18
 *     values in order, other values between them allowed: the validation
 *     is what makes it precise;
 *   - a mobile (an allocated prefix) from 2 or 3 values, when a key of
 *     those values names a phone; or when they are consecutive, start with
 *     the country code 86 as a value of its own and are cut where people
 *     cut one (138 | 1234 | 5678, 138 | 12345678, 1381234 | 5678). Without that
 *     context three short numbers in a row are too often a code, a year
 *     and a count (tests/bypass/KNOWN_OPEN says which spellings stay
 *     open).
 * A hit is a finding that cannot be rewritten in place (the value is in
 * pieces): the request is blocked abroad with that reason. A short array
 * of digits that is the whole number is int_array_pi's (jscan.c) finding,
 * rewritable: a hit whose values are all elements of such an array is
 * dropped when the array ends.
 */
#include "inspect/inspect_int.h"
#include "inspect/normalize.h"

#include <stdio.h>
#include <string.h>

static void emit(bg_inspection_t *x, const split_hit_t *h);

void bg_insp_split_reset(bg_inspection_t *x)
{
    /* Hits still kept belong to a document whose walk stopped early (its
     * JSON is invalid): handed out, not dropped. */
    for (size_t i = 0; i < x->split.npending; i++)
        emit(x, &x->split.pending[i]);
    x->split.npending = 0;
    x->split.n = 0;
    x->split.gap = 0;
}

/* Whether key K names a phone in any of its words ("phone_prefix",
 * "telHead", "mobile-part-2", "手机前三位"): the key words of a phone cut in
 * pieces are the phone's, their last word ("prefix", "part") is not. */
static int phone_word(const char *k, size_t kl)
{
    static const char *const words[] = {"phone", "mobile", "tel", "cell", "msisdn", NULL};
    if (memmem(k, kl, "\xe6\x89\x8b\xe6\x9c\xba", 6) != NULL || /* 手机 */
        memmem(k, kl, "\xe7\x94\xb5\xe8\xaf\x9d", 6) != NULL)   /* 电话 */
        return 1;
    size_t i = 0;
    while (i < kl) {
        /* a word: letters, starting at a non-letter or an upper-case letter */
        size_t b = i++;
        while (i < kl && ((k[i] >= 'a' && k[i] <= 'z') ||
                          (k[i] >= 'A' && k[i] <= 'Z' && k[i - 1] >= 'A' && k[i - 1] <= 'Z')))
            i++;
        if (!((k[b] >= 'a' && k[b] <= 'z') || (k[b] >= 'A' && k[b] <= 'Z')))
            continue;
        for (const char *const *w = words; *w != NULL; w++) {
            size_t wl = strlen(*w);
            if (i - b != wl)
                continue;
            size_t j = 0;
            while (j < wl && (k[b + j] | 0x20) == (*w)[j])
                j++;
            if (j == wl)
                return 1;
        }
    }
    return 0;
}

/* TXT as a piece: its digits as a reader reads them (other scripts'
 * digits, escapes and invisible characters folded: inspect/normalize.h),
 * the separators people write inside a number skipped ("1949-12-31",
 * "138 1234"), a leading "+" dropped and "0086" read as "86"; an ID
 * number's check character X may end it. 1 with the digits in OUT (at most
 * 17, and the X), 0 when TXT holds anything else. */
static int read_piece(const char *txt, size_t tl, char *out, size_t *olen)
{
    const unsigned char *v = (const unsigned char *)txt;
    size_t n = 0, o = 0;
    if (tl == 0 || tl > 256 ||
        !((v[0] >= '0' && v[0] <= '9') || v[0] >= 0x80 || v[0] == '+' || v[0] == '%' ||
          v[0] == '&' || v[0] == '\\'))
        return 0; /* most values: the first byte says it is no number */
    while (o < tl && n < 17 && v[o] >= '0' && v[o] <= '9')
        out[n++] = (char)v[o++]; /* the usual piece: ASCII digits only */
    while (o < tl) {
        unsigned c, how = 0;
        if (v[o] < 0x80 && v[o] != '%' && v[o] != '&' && v[o] != '\\' && v[o] != '=')
            c = v[o++]; /* plain ASCII reads as itself */
        else
            o += bg_norm_next(v, tl, o, &c, &how);
        if (c >= '0' && c <= '9' && n < 17)
            out[n++] = (char)c;
        else if (c == 0 || (n > 0 && (c == '-' || c == ' ' || c == '.' || c == '/')) ||
                 (n == 0 && c == '+'))
            continue;
        else if ((c | 0x20) == 'x' && n > 0 && o == tl)
            out[n++] = 'X';
        else
            return 0;
    }
    if (n == 4 && memcmp(out, "0086", 4) == 0) {
        out[0] = '8';
        out[1] = '6';
        n = 2;
    }
    *olen = n;
    return n > 0;
}

/* Whether the window W[0..N) (oldest first) may spell a mobile: 2-3
 * consecutive values, cut at 3 and/or 7 digits of the number, with a phone
 * key or a leading "86" value. */
/* Whether leaf L's key names a phone (judged once). */
static int leaf_phone(bg_inspection_t *x, split_leaf_t *l)
{
    if (l->phone < 0) {
        bg_detect_cat_t kc =
            l->key != NULL ? bg_insp_key_category(x, l->key, l->key_len) : BG_CAT_NONE;
        l->phone = (int8_t)(kc == BG_CAT_CN_MOBILE || kc == BG_CAT_PHONE_NUMBER ||
                            (l->key != NULL && phone_word(l->key, l->key_len)));
    }
    return l->phone;
}

static int mobile_cut(bg_inspection_t *x, split_leaf_t *w, size_t n)
{
    size_t i = 0, pos = 0;
    int context = 0;
    if (n >= 2 && w[0].len == 2 && memcmp(w[0].d, "86", 2) == 0) {
        context = 1;
        i = 1;
    }
    if (n - i < 2 || n - i > 3)
        return 0;
    int gaps = 0, usual = 1;
    for (size_t k = 1; k < n; k++)
        gaps |= w[k].gap;
    for (size_t k = i; k + 1 < n; k++) {
        pos += w[k].len;
        usual &= pos == 3 || pos == 7;
    }
    if (pos + w[n - 1].len != 11)
        return 0;
    if (gaps || !usual)
        context = 0; /* only the pieces' keys say phone */
    for (size_t k = 0; k < n && !context; k++)
        context = leaf_phone(x, &w[k]);
    return context;
}

/* Whether an ID number's digits from W[0..N) are cut where a 15-digit one
 * reads: region | birth date | sequence. */
static int legacy_cut(const split_leaf_t *w, size_t n)
{
    size_t pos = 0;
    for (size_t k = 0; k + 1 < n; k++) {
        pos += w[k].len;
        if (pos != 6 && pos != 12)
            return 0;
    }
    return 1;
}

/* A cheap look at D[0..ND) (15 or 18 characters) before the detector: a
 * province (11-83: 81-83 the residence permits) and a month and day where an ID number has its
 * birth date. Most runs of numbers side by side fail here. */
static int id_shape(const char *d, size_t nd)
{
    int prov = (d[0] - '0') * 10 + (d[1] - '0');
    if (prov < 11 || prov > 83)
        return 0;
    const char *md = d + (nd == 18 ? 10 : 8);
    int month = (md[0] - '0') * 10 + (md[1] - '0'), day = (md[2] - '0') * 10 + (md[3] - '0');
    if (month < 1 || month > 12 || day < 1 || day > 31)
        return 0;
    return nd == 15 ||
           ((d[6] == '1' && (d[7] == '8' || d[7] == '9')) || (d[6] == '2' && d[7] == '0'));
}

/* PATH cut to fit OUT at a character boundary. */
static void copy_path(char *out, size_t cap, const char *path)
{
    size_t n = strlen(path);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)path[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(out, path, n);
    out[n] = '\0';
}

/* Hand out hit H: a finding that cannot be rewritten in place. */
static void emit(bg_inspection_t *x, const split_hit_t *h)
{
    char path[sizeof h->path + 40];
    snprintf(path, sizeof path, "%s(split over %u values)", h->path, (unsigned)h->nvals);
    node_spec_t n = bg_insp_spec_of(N_FIXED, -1);
    n.n.text = "";
    n.n.text_len = 0;
    bg_loc_t loc = strncmp(h->path, "query.", 6) == 0    ? BG_LOC_QUERY
                   : strncmp(h->path, "header.", 7) == 0 ? BG_LOC_HEADER
                                                         : BG_LOC_BODY;
    bg_insp_add_finding(x, &n, path, loc, h->cat, h->conf, bg_detect_detector_name(h->det), 1, 0,
                        0);
}

/* Try the windows ending at the newest leaf; keep the first hit and start
 * again after it. */
static void try_windows(bg_inspection_t *x, const char *path)
{
    split_t *sp = &x->split;
    char d[24];
    for (size_t n = 2; n <= sp->n && n <= SPLIT_MAX; n++) {
        split_leaf_t *w = &sp->leaf[sp->n - n];
        size_t nd = 0;
        for (size_t k = 0; k < n; k++)
            nd += w[k].len;
        if (nd > 19)
            break; /* longer windows only add digits */
        int mob = nd >= 11 && nd <= 13 && mobile_cut(x, w, n);
        if (!mob && nd != 15 && nd != 18)
            continue; /* neither a mobile's cut nor an ID number's length */
        nd = 0;
        for (size_t k = 0; k < n; k++) {
            memcpy(d + nd, w[k].d, w[k].len);
            nd += w[k].len;
        }
        if (!mob && !id_shape(d, nd))
            continue;
        size_t skip = mob && w[0].len == 2 && memcmp(w[0].d, "86", 2) == 0 ? 2 : 0;
        bg_detect_finding_t f[2];
        size_t nf = bg_detect_scan(NULL, NULL, d + skip, nd - skip, f, 2);
        for (size_t j = 0; j < nf && j < 2; j++) {
            if (f[j].confidence < x->rules->min_conf || f[j].length != nd - skip)
                continue;
            if (f[j].detector == BG_DET_RESIDENT_ID) {
                if (nd == 15 && !legacy_cut(w, n))
                    continue;
            } else if (f[j].detector != BG_DET_CN_MOBILE || !mob) {
                continue;
            }
            int arr = w[0].in_array ? w[0].container : -1;
            for (size_t k = 1; k < n && arr >= 0; k++)
                if (!w[k].in_array || w[k].container != arr)
                    arr = -1;
            split_hit_t h = {f[j].category, f[j].confidence, f[j].detector, arr, (uint8_t)n, ""};
            copy_path(h.path, sizeof h.path, path);
            if (arr < 0 || sp->npending == SPLIT_PENDING)
                emit(x, &h);
            else
                sp->pending[sp->npending++] = h;
            sp->n = 0;
            return;
        }
    }
}

void bg_insp_split_value(bg_inspection_t *x, const char *path, const char *txt, size_t tl,
                         int container, int in_array, const char *key, size_t kl)
{
    split_t *sp = &x->split;
    char d[18];
    size_t dl = 0;
    if (txt == NULL || !read_piece(txt, tl, d, &dl)) {
        sp->gap = 1;
        return;
    }
    if (sp->n == 2 * SPLIT_MAX) {
        memmove(sp->leaf, sp->leaf + SPLIT_MAX + 1, (SPLIT_MAX - 1) * sizeof sp->leaf[0]);
        sp->n = SPLIT_MAX - 1;
    }
    split_leaf_t *l = &sp->leaf[sp->n++];
    memcpy(l->d, d, dl);
    l->len = (uint8_t)dl;
    l->in_array = (uint8_t)(in_array != 0);
    l->container = container;
    l->gap = (uint8_t)sp->gap;
    sp->gap = 0;
    l->phone = -1;
    l->key = key;
    l->key_len = kl;
    size_t nd = 0;
    for (size_t k = sp->n; k-- > 0 && nd < 11;)
        nd += sp->leaf[k].len;
    if (nd >= 11)
        try_windows(x, path);
}

void bg_insp_split_end(bg_inspection_t *x, int container, int array_finding)
{
    split_t *sp = &x->split;
    for (size_t i = 0; i < sp->npending; i++)
        if (!(array_finding && sp->pending[i].container == container))
            emit(x, &sp->pending[i]);
    sp->npending = 0;
}
