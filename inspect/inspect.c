/*
 * Inspection core: the findings, nodes and documents of one inspection
 * (bg_inspection_t), the key-name cache and the per-value scan shared by
 * every decoder, the bg_inspect() driver that picks the decoders for a
 * request, the accessors and bg_inspection_free.
 *
 * Every place a value can be rewritten is a "node" (a JSON member or array
 * element, a form or query field, a header, a cookie, a multipart part, a
 * text body). Findings point at nodes. Operators are only recorded by
 * bg_inspection_apply() (ops.c); bg_inspection_render() (render.c) performs
 * them all at once, innermost nested documents first, span edits right to
 * left, so offsets never shift under an edit that has not been made yet.
 */
#include "inspect/inspect_int.h"
#include "inspect/sniff.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/asan.h"
#include "common/hex.h"
#include "common/utf8.h"
#include "common/util.h"

void bg_insp_set_undecodable(bg_inspection_t *x, const char *fmt, ...)
{
    va_list ap;
    if (x->kind == BG_BODY_UNDECODABLE)
        return;
    x->kind = BG_BODY_UNDECODABLE;
    va_start(ap, fmt);
    vsnprintf(x->undecodable, sizeof x->undecodable, fmt, ap);
    va_end(ap);
}

void *bg_insp_grow_zeroed(void *p, size_t *cap, size_t n, size_t size)
{
    size_t old = *cap;
    void *q = bg_grow(p, cap, n + 1, size, 16);
    if (q != NULL && *cap > old)
        memset((char *)q + old * size, 0, (*cap - old) * size);
    return q;
}

bg_finding_t *bg_insp_add_finding(bg_inspection_t *x, node_spec_t *sp, const char *path,
                                  bg_loc_t loc, bg_detect_cat_t cat, bg_detect_conf_t conf,
                                  const char *source, int whole, size_t off, size_t len)
{
    int node = bg_insp_ensure_node(x, sp);
    if (node < 0)
        return NULL;
    if (x->nfind >= MAX_FINDINGS) {
        x->overflow = 1;
        return NULL;
    }
    size_t cap = x->capfind;
    bg_finding_t *nf = bg_insp_grow_raw(x->findings, &cap, x->nfind, sizeof *nf);
    if (nf == NULL)
        return NULL;
    x->findings = nf;
    size_t cap2 = x->capfind;
    pending_t *np = bg_insp_grow_raw(x->pending, &cap2, x->nfind, sizeof *np);
    if (np == NULL)
        return NULL;
    x->pending = np;
    x->capfind = cap;
    memset(&x->pending[x->nfind], 0, sizeof *x->pending); /* no operation yet */
    bg_finding_t *f = &x->findings[x->nfind++];
    memset(f, 0, sizeof *f);
    /* The path lives as long as the inspection: in its arena, not a
     * malloc of its own per finding. */
    size_t pl = strlen(path) + 1;
    if ((f->path = bg_insp_arena_alloc(x, pl)) != NULL)
        memcpy(f->path, path, pl);
    f->loc = loc;
    f->category = cat;
    f->sensitive = cat > BG_CAT_NONE && cat < BG_CAT_MAX ? x->rules->sensitive[cat] : 0;
    f->confidence = conf;
    f->source = source;
    f->record = x->nodes[node].record;
    f->whole = whole;
    f->span_off = off;
    f->span_len = len;
    f->internal = (unsigned)node;
    f->fixed = x->fixed_scan || x->nodes[node].kind == N_FIXED;
    return f;
}

static int person_key(const char *k, size_t kl);

/* Whether S holds "<!ENTITY" (in any case, as parsers that are lenient
 * read it). */
static int entity_decl(const char *s, size_t n)
{
    for (const char *p = s; (p = memchr(p, '<', n - (size_t)(p - s))) != NULL; p++) {
        if (n - (size_t)(p - s) >= 8 && p[1] == '!' && strncasecmp(p + 2, "ENTITY", 6) == 0)
            return 1;
    }
    return 0;
}

/* bg_detect_key_info() and person_key() of a key, remembered per thread
 * across inspections: the result depends on the key's bytes only (built-in
 * tables), and a worker meets the same few hundred keys all day, so after
 * its first requests a key costs a hash and a compare instead of the key
 * classifier (a quarter of a small request's inspection). 256 slots of
 * thread-local storage, two candidates per key. */
static _Thread_local keycache_t key_cache[KEYCACHE_SLOTS];

static void key_info(bg_inspection_t *x, const char *k, size_t kl, bg_detect_key_t *out,
                     int *person)
{
    (void)x;
    if (kl >= KEYCACHE_KEY) {
        bg_detect_key_info(k, kl, out);
        if (person != NULL)
            *person = person_key(k, kl);
        return;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < kl; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    /* Two candidate slots: a key whose first slot is taken by another
     * key of the document goes to its second, so the two do not evict each
     * other on every record. */
    keycache_t *e = &key_cache[h % KEYCACHE_SLOTS];
    keycache_t *e2 = &key_cache[(h >> 16) % KEYCACHE_SLOTS];
    for (int probe = 0; probe < 2; probe++) {
        keycache_t *p = probe ? e2 : e;
        if (p->len1 == kl + 1 && p->hash == h && memcmp(p->key, k, kl) == 0) {
            *out = p->info;
            if (person != NULL)
                *person = p->person;
            return;
        }
    }
    if (e->len1 != 0 && e2->len1 == 0)
        e = e2;
    bg_detect_key_info(k, kl, out);
    e->hash = h;
    e->len1 = (uint16_t)(kl + 1);
    memcpy(e->key, k, kl);
    e->info = *out;
    e->person = (uint8_t)person_key(k, kl);
    if (person != NULL)
        *person = e->person;
}

/* bg_detect_key_category() through the cache: the same rule (detect_keys.c). */
bg_detect_cat_t bg_insp_key_category(bg_inspection_t *x, const char *k, size_t kl)
{
    bg_detect_key_t ki;
    key_info(x, k, kl, &ki, NULL);
    return ki.confidence >= BG_CONF_MEDIUM ? ki.category : BG_CAT_NONE;
}

/*
 * Whether an object under key K (or the elements of an array under K)
 * stands for a person (inspect.h, bg_inspect_person_key): K's last word,
 * without an "info"/"profile"/"details" tail or a plural "s", is one of a
 * fixed list ("customer", "billing_contact", "passengers", "userInfo"), or K
 * holds one of the Chinese terms for such a person. Words that also name
 * things ("client", "driver", "parent") are left out for names; RELATIONS
 * adds the words that name another person without being a role ("spouse",
 * "parent", "child", "agent"), for deciding whose data a finding is.
 */
/* A word and its length, for the lists below (no strlen per look-up: a
 * key is looked up several times a request). */
typedef struct {
    const char *w;
    size_t n;
} word_t;
#define WORD(s)                                                                                    \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

/* Does A[0..N) end with one of the words of LIST (ended by {NULL, 0})? */
static int ends_with_word(const char *a, size_t n, const word_t *list)
{
    if (n == 0)
        return 0;
    for (const word_t *w = list; w->w != NULL; w++) {
        if (n >= w->n && a[n - 1] == w->w[w->n - 1] && memcmp(a + n - w->n, w->w, w->n) == 0)
            return 1;
    }
    return 0;
}

int bg_inspect_person_key(const char *k, size_t kl, int relations)
{
    static const word_t words[] = {WORD("user"),        WORD("customer"),   WORD("consignee"),
                                   WORD("recipient"),   WORD("receiver"),   WORD("sender"),
                                   WORD("shipper"),     WORD("contact"),    WORD("buyer"),
                                   WORD("member"),      WORD("employee"),   WORD("staff"),
                                   WORD("patient"),     WORD("student"),    WORD("guardian"),
                                   WORD("passenger"),   WORD("guest"),      WORD("applicant"),
                                   WORD("holder"),      WORD("cardholder"), WORD("payer"),
                                   WORD("payee"),       WORD("person"),     WORD("owner"),
                                   WORD("requester"),   WORD("requestor"),  WORD("assignee"),
                                   WORD("reporter"),    WORD("traveler"),   WORD("traveller"),
                                   WORD("beneficiary"), WORD("author"),     WORD("attendee"),
                                   WORD("participant"), WORD("candidate"),  WORD("subscriber"),
                                   WORD("addressee"),   WORD("insured"),    WORD("policyholder"),
                                   WORD("claimant"),    WORD("visitor"),    {NULL, 0}};
    static const word_t relation_words[] = {
        WORD("spouse"),   WORD("parent"),   WORD("father"),   WORD("mother"),    WORD("child"),
        WORD("children"), WORD("relative"), WORD("kin"),      WORD("dependent"), WORD("dependant"),
        WORD("friend"),   WORD("referee"),  WORD("referrer"), WORD("witness"),   WORD("agent"),
        WORD("driver"),   WORD("speaker"),  WORD("caller"),   WORD("callee"),    WORD("teacher"),
        WORD("doctor"),   WORD("nominee"),  WORD("heir"),     {NULL, 0}};
    static const word_t cjk[] = {WORD("用户"),   WORD("客户"),   WORD("收件人"), WORD("收货人"),
                                 WORD("寄件人"), WORD("发件人"), WORD("联系人"), WORD("会员"),
                                 WORD("员工"),   WORD("乘客"),   WORD("患者"),   WORD("学生"),
                                 WORD("监护人"), WORD("持卡人"), WORD("申请人"), WORD("买家"),
                                 WORD("旅客"),   {NULL, 0}};
    static const word_t relation_cjk[] = {WORD("配偶"), WORD("父亲"), WORD("母亲"), WORD("子女"),
                                          WORD("亲属"), WORD("家属"), WORD("紧急"), {NULL, 0}};
    if (k == NULL || kl == 0 || kl > 96)
        return 0;
    char a[97];
    size_t n = 0;
    int high = 0;
    for (size_t i = 0; i < kl; i++) {
        unsigned char ch = (unsigned char)k[i];
        if (ch >= 0x80)
            high = 1;
        else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
            a[n++] = (char)(ch | 0x20);
    }
    a[n] = 0;
    if (high) {
        for (int pass = 0; pass < 1 + (relations != 0); pass++)
            for (const word_t *t = pass ? relation_cjk : cjk; t->w != NULL; t++)
                if (memmem(k, kl, t->w, t->n) != NULL)
                    return 1;
    }
    static const word_t tails[] = {WORD("info"),   WORD("profile"), WORD("details"),
                                   WORD("detail"), WORD("data"),    {NULL, 0}};
    for (const word_t *t = tails; t->w != NULL; t++) {
        if (n > t->n + 2 && memcmp(a + n - t->n, t->w, t->n) == 0) {
            n -= t->n;
            break;
        }
    }
    if (n > 3 && a[n - 1] == 's')
        n--;
    return ends_with_word(a, n, words) || (relations && ends_with_word(a, n, relation_words));
}

static int person_holder(const char *k, size_t kl)
{
    return kl <= 64 && bg_inspect_person_key(k, kl, 0);
}

/*
 * Whether key K (the whole key) names a person so plainly that a scalar
 * under it is the person's name ("recipient": "张三", form field
 * recipient=...): the addressee words of person_holder, not the ones that
 * also name accounts or organisations (user, member, payee, owner).
 */
static int person_key(const char *k, size_t kl)
{
    static const char *const words[] = {"recipient", "receiver", "consignee", "addressee", NULL};
    static const char *const cjk[] = {"收件人", "收货人", "寄件人", "发件人", NULL};
    if (k == NULL || kl == 0 || kl > 32)
        return 0;
    for (const char *const *w = words; *w; w++)
        if (bg_util_ieq(k, kl, *w))
            return 1;
    for (const char *const *t = cjk; *t; t++)
        if (kl == strlen(*t) && memcmp(k, *t, kl) == 0)
            return 1;
    return 0;
}

/* Whether S (LEN bytes) can be a person's name: 1-64 bytes, some letter
 * (or non-ASCII), no ASCII digit, '@', ':' or '/' (ids, e-mails, URLs). */
static int name_like(const char *s, size_t len)
{
    int letter = 0;
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= '0' && c <= '9') || c == '@' || c == ':' || c == '/')
            return 0;
        letter |= c >= 0x80 || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    }
    return letter;
}

/* Whether S (LEN bytes) is an integer of fewer than 7 digits ("qty": 2,
 * "shop_id": 40213, "-15"). Every number detector needs 7 or more digits
 * unless a key hints at a shape (detect.h; test_detect checks each such
 * string finds nothing), so without a hint the detectors are not asked. */
static int short_integer(const char *s, size_t len)
{
    size_t i = len > 0 && s[0] == '-';
    if (len - i == 0 || len - i >= 7)
        return 0;
    for (; i < len; i++)
        if ((unsigned)((unsigned char)s[i] - '0') >= 10u)
            return 0;
    return 1;
}

/*
 * The bytes of S[0..LEN) that are not UTF-8 as a detector would read them:
 * S itself when its raw bytes are not (a percent-decoded path segment,
 * query or form value, cookie; KNOWN_UTF8 says they are, as for a JSON
 * string), else S once percent-decoded when an escape of a byte above 0x7F
 * ("%A3%B1") makes it not UTF-8 (a header, a JSON string). A malloc'd copy
 * in *OWNED when decoded. 0 when S is UTF-8 both ways (the common case: one
 * memchr, one pass over the bytes), 1 with P and N set, -1 when out of
 * memory.
 */
static int not_utf8_reading(const char *s, size_t len, int known_utf8, const char **p, size_t *n,
                            char **owned)
{
    *owned = NULL;
    if (!known_utf8 && !bg_utf8_valid(s, len)) {
        *p = s;
        *n = len;
        return 1;
    }
    const char *pc = memchr(s, '%', len);
    int high = 0;
    for (; pc != NULL && !high; pc = memchr(pc + 1, '%', len - (size_t)(pc + 1 - s)))
        high = (size_t)(pc - s) + 2 < len && bg_hex_digit((unsigned char)pc[1]) >= 8 &&
               bg_hex_digit((unsigned char)pc[2]) >= 0;
    if (!high)
        return 0;
    char *d = malloc(len + 1);
    if (d == NULL)
        return -1;
    long dl = bg_hex_pct_decode(s, len, d, len, 0);
    if (dl < 0 || bg_utf8_valid(d, (size_t)dl)) {
        free(d);
        return 0;
    }
    *owned = d;
    *p = d;
    *n = (size_t)dl;
    return 1;
}

/* Scan the UTF-8 reading of P[0..N) in the charset FROM as fixed text
 * (kept alive with the inspection: findings point into it). */
static void scan_reading(bg_inspection_t *x, const char *path, bg_loc_t loc, const char *p,
                         size_t n, const char *from)
{
    char *out = NULL;
    size_t ol = 0;
    if (bg_sniff_transcode(p, n, from, x->rules->max_decoded, &out, &ol) != 0)
        return; /* not text in FROM */
    if (bg_insp_keep_extra(x, out) != 0) {
        x->overflow = 1; /* out of memory: unread is not clean */
        return;
    }
    x->gb_pass = 1;
    bg_insp_scan_fixed(x, path, loc, out, ol);
    x->gb_pass = 0;
}

/*
 * Text that is not UTF-8 where it stands (see not_utf8_reading) is read in
 * the legacy charsets a client may have written it in, each reading
 * scanned as fixed text (a value found there cannot be rewritten in place,
 * so a transfer that needs it masked is blocked): GB18030, the national
 * charset legacy Chinese clients send (GBK "%A3%B1" is a full-width 1,
 * "%D2%BB" is 一), when the bytes are valid in it; and Latin-1 when they
 * hold one of its digits (superscripts B9 B2 B3: "%B93812345678" is
 * 13812345678 to a reader). Bytes can be both: each reading is scanned. One
 * level: a reading is not read again.
 */
static void scan_gb18030(bg_inspection_t *x, const char *path, bg_loc_t loc, const char *s,
                         size_t len, int known_utf8)
{
    const char *p;
    size_t n;
    char *owned;
    int r = not_utf8_reading(s, len, known_utf8, &p, &n, &owned);
    if (r < 0)
        x->overflow = 1; /* out of memory: unread is not clean */
    if (r <= 0)
        return;
    scan_reading(x, path, loc, p, n, "GB18030");
    if (memchr(p, 0xB9, n) != NULL || memchr(p, 0xB2, n) != NULL || memchr(p, 0xB3, n) != NULL)
        scan_reading(x, path, loc, p, n, "ISO-8859-1");
    free(owned);
}

/*
 * Scan one text value at NODE: detectors with the key's hints; when they
 * find nothing, the key's own category (names, addresses, birth dates...).
 * An address-book key (contacts, 通讯录) names no category for a scalar:
 * the contacts category needs evidence (jscan.c, address_book()).
 */
void bg_insp_scan_text(bg_inspection_t *x, node_spec_t *node, const char *path, bg_loc_t loc,
                       const char *key, size_t key_len, const char *s, size_t len)
{
    bg_detect_finding_t out[SCAN_CAP];
    bg_detect_key_t ki;
    int person = 0;
    memset(&ki, 0, sizeof ki);
    if (key != NULL)
        key_info(x, key, key_len, &ki, &person);
    /* "name" alone is a product, file or app name as often as a person's:
     * it counts as a person's name inside an object that stands for one. */
    if (x->content_only) {
        ki.category = BG_CAT_NONE;
        ki.confidence = 0;
    }
    if (ki.category == BG_CAT_PERSON_NAME && ki.confidence < BG_CONF_MEDIUM && loc == BG_LOC_BODY &&
        person_holder(x->holder_key, x->holder_len))
        ki.confidence = BG_CONF_HIGH;
    if (ki.category == BG_CAT_CONTACTS) {
        ki.category = BG_CAT_NONE;
        ki.confidence = 0;
    }
    /* "recipient": "张三" (JSON, form field or multipart part alike) */
    if (ki.category == BG_CAT_NONE && loc == BG_LOC_BODY && !x->content_only && person &&
        name_like(s, len)) {
        ki.category = BG_CAT_PERSON_NAME;
        ki.confidence = BG_CONF_MEDIUM;
    }
    size_t n = len > 0 && !(ki.hints == 0 && short_integer(s, len))
                   ? bg_detect_scan(NULL, &ki, s, len, out, SCAN_CAP)
                   : 0;
    if (n > SCAN_CAP) {
        x->overflow = 1;
        n = SCAN_CAP;
    }
    int reported = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i].confidence < x->rules->min_conf)
            continue;
        int whole = out[i].offset == 0 && out[i].length == len;
        bg_finding_t *nf = bg_insp_add_finding(
            x, node, path, loc, out[i].category, out[i].confidence,
            bg_detect_detector_name(out[i].detector), whole, out[i].offset, out[i].length);
        /* Inside base64 or hex: the value cannot be rewritten in place. */
        if (nf != NULL && (out[i].flags & BG_DETECT_F_NOT_REWRITABLE))
            nf->fixed = 1;
        reported++;
    }
    if (reported == 0 && ki.category != BG_CAT_NONE && ki.category != x->cover_cat && len > 0 &&
        ki.confidence >= x->rules->min_conf)
        bg_insp_add_finding(x, node, path, loc, ki.category, ki.confidence, "key", 1, 0, len);
    if (!x->gb_pass) /* a JSON string is UTF-8 already (jscan.c checked) */
        scan_gb18030(x, path, loc, s, len, node->n.kind == N_JSON);
}

/* KEYC_* bits of each byte (inspect_int.h, bg_insp_key_classes). */
const uint8_t bg_insp_keyclass[256] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 2, 2, 2, 2, 2,
    3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 0,
    2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
};

/*
 * Whether NAME (a member, field, header or cookie name) is itself personal
 * information ({"13812345678": {...}}, "?a.b@example.com=1"); the first
 * finding at the rules' confidence into *F. Such a name never goes into a
 * path (paths are recorded and shown; "$.friends.<cn_mobile>" instead).
 */
int bg_insp_name_pi(const bg_inspection_t *x, const char *s, size_t n, bg_detect_finding_t *f)
{
    /* Most names are ASCII words: without a digit, '@', ':' or a non-ASCII
     * byte (full-width forms) no detector can match (detect.h's pre-filter),
     * so skip the call. */
    if (!(bg_insp_key_classes(s, n) & KEYC_TRIG))
        return 0;
    return bg_insp_name_pi_scan(x, s, n, f);
}

/* bg_insp_name_pi() without the pre-filter: for a caller that has the
 * name's bg_insp_key_classes() already and saw KEYC_TRIG. */
int bg_insp_name_pi_scan(const bg_inspection_t *x, const char *s, size_t n, bg_detect_finding_t *f)
{
    bg_detect_finding_t out[8];
    size_t k = bg_detect_scan(NULL, NULL, s, n, out, 8);
    for (size_t j = 0; j < k && j < 8; j++) {
        if (out[j].confidence >= x->rules->min_conf) {
            *f = out[j];
            return 1;
        }
    }
    if (k > 8) { /* more than were looked at: count it as personal */
        *f = out[0];
        return 1;
    }
    return 0;
}

/* The whole-name finding for NAME's node SP (is_key set here). */
void bg_insp_add_name_finding(bg_inspection_t *x, node_spec_t *sp, const char *path, bg_loc_t loc,
                              const bg_detect_finding_t *f, size_t name_len)
{
    sp->n.is_key = 1;
    bg_insp_add_finding(x, sp, path, loc, f->category, f->confidence,
                        bg_detect_detector_name(f->detector), 1, 0, name_len);
}

const rule_t *bg_insp_match_rule(const bg_inspection_t *x, const frame_t *fr, size_t nf,
                                 const char *key, size_t key_len)
{
    const bg_inspect_rules_t *r = x->rules;
    for (size_t i = 0; i < r->nrules; i++) {
        const rule_t *ru = &r->rules[i];
        if (ru->path.n > 0 && fr != NULL && bg_insp_jpath_match_from(&ru->path, 0, fr, nf, 0))
            return ru;
        if (ru->key != NULL && key != NULL && ru->key_len == key_len &&
            bg_util_ieq(key, key_len, ru->key))
            return ru;
    }
    return NULL;
}

int bg_insp_add_doc(bg_inspection_t *x, const char *text, size_t len, int container_node,
                    int container_field, int depth)
{
    doc_t *nd = bg_insp_grow(x->docs, &x->capdocs, x->ndocs, sizeof *nd);
    if (nd == NULL)
        return -1;
    x->docs = nd;
    doc_t *d = &x->docs[x->ndocs];
    d->text = text;
    d->len = len;
    d->container_node = container_node;
    d->container_field = container_field;
    d->depth = depth;
    return (int)x->ndocs++;
}

/* Undo compression: the Content-Encoding the request names, then once more
 * what the bytes show (gzip inside gzip, a gzip stream labelled text/plain;
 * zlib only when it inflates). A stream that starts like gzip but does not
 * inflate is undecodable. The text fields of each gzip header are read. A
 * rewrite is sent as identity either way. -1 when the body is undecodable. */
static int undo_compression(bg_inspection_t *x)
{
    const bg_inspect_rules_t *rules = x->rules;
    const bg_inspect_input_t *in = &x->in;
    const bg_http_header_t *ce = bg_insp_find_hdr(in, "content-encoding");
    if (ce != NULL && !bg_util_ieq(ce->value, ce->value_len, "identity")) {
        int window;
        if (bg_util_ieq(ce->value, ce->value_len, "gzip") ||
            bg_util_ieq(ce->value, ce->value_len, "x-gzip"))
            window = 15 + 16;
        else if (bg_util_ieq(ce->value, ce->value_len, "deflate"))
            window = 15; /* zlib wrapper per RFC 9110; raw deflate tried below */
        else {
            bg_insp_set_undecodable(x, "unsupported Content-Encoding (%s)",
                                    "only gzip and deflate are decoded");
            return -1;
        }
        const char *why = NULL;
        size_t dl = 0;
        bg_insp_scan_gzip_header(x, in->body, in->body_len);
        if (bg_insp_inflate_body(in->body, in->body_len, window, rules->max_decoded, &x->decoded,
                                 &dl, &why) != 0) {
            if (window == 15 &&
                bg_insp_inflate_body(in->body, in->body_len, -15, rules->max_decoded, &x->decoded,
                                     &dl, &why) == 0)
                goto inflated;
            bg_insp_set_undecodable(x, "Content-Encoding: %s", why);
            return -1;
        }
    inflated:
        x->body = x->decoded;
        x->body_len = dl;
    }
    {
        bg_sniff_t sn = bg_sniff_prefix(x->body, x->body_len, NULL);
        if (sn == BG_SNIFF_GZIP || sn == BG_SNIFF_ZLIB) {
            bg_insp_scan_gzip_header(x, x->body, x->body_len);
            const char *why = NULL;
            size_t dl = 0;
            char *out = NULL;
            if (bg_insp_inflate_body(x->body, x->body_len, sn == BG_SNIFF_GZIP ? 15 + 16 : 15,
                                     rules->max_decoded, &out, &dl, &why) == 0) {
                if (bg_sniff_prefix(out, dl, NULL) == BG_SNIFF_GZIP) {
                    free(out);
                    bg_insp_set_undecodable(x, "%s", "compressed more than twice");
                    return -1;
                }
                x->decoded2 = out;
                x->body = out;
                x->body_len = dl;
            } else if (sn == BG_SNIFF_GZIP) {
                bg_insp_set_undecodable(x, "the body starts as gzip but does not inflate (%s)",
                                        why);
                return -1;
            }
        }
    }

    return 0;
}

/* Charset: a byte-order mark or the zero-byte pattern of UTF-16/32 wins
 * over any label; else the label's charset (MT, PARAMS: the media type and
 * its parameters). Transcoded text is read as UTF-8 and cannot be rewritten
 * in place (its findings are fixed). -1 when the body is opaque (a charset
 * bordergate does not read, or bytes invalid in it). */
static int to_utf8(bg_inspection_t *x, const char *mt, const char *params)
{
    const bg_inspect_rules_t *rules = x->rules;
    const bg_inspect_input_t *in = &x->in;
    {
        size_t bom = 0;
        bg_sniff_t sn = bg_sniff_prefix(x->body, x->body_len, &bom);
        const char *from = NULL;
        int unknown = 0;
        if (sn == BG_SNIFF_UTF16LE)
            from = "UTF-16LE";
        else if (sn == BG_SNIFF_UTF16BE)
            from = "UTF-16BE";
        else if (sn == BG_SNIFF_UTF32LE)
            from = "UTF-32LE";
        else if (sn == BG_SNIFF_UTF32BE)
            from = "UTF-32BE";
        else if (params != NULL && strncmp(mt, "multipart/", 10) != 0) {
            const bg_http_header_t *ct = bg_insp_find_hdr(in, "content-type");
            const char *cs =
                bg_insp_imemmem(params, (size_t)(ct->value + ct->value_len - params), "charset=");
            if (cs != NULL) {
                cs += 8;
                const char *ce2 = ct->value + ct->value_len;
                if (cs < ce2 && *cs == '"')
                    cs++;
                size_t cl = 0;
                while (cs + cl < ce2 && cs[cl] != ';' && cs[cl] != '"' && cs[cl] != ' ')
                    cl++;
                from = bg_sniff_charset(cs, cl, &unknown);
            }
        }
        if (unknown) {
            bg_insp_set_opaque(x, "the body's charset is not one bordergate reads");
            x->kind = BG_BODY_OTHER;
            return -1;
        }
        if (from != NULL) {
            char *out = NULL;
            size_t ol = 0;
            if (bg_sniff_transcode(x->body + bom, x->body_len - bom, from, rules->max_decoded, &out,
                                   &ol) != 0) {
                bg_insp_set_opaque(x, "the body is not valid text in its charset");
                x->kind = BG_BODY_OTHER;
                return -1;
            }
            x->transcoded = out;
            x->body = out;
            x->body_len = ol;
            x->fixed_scan = 1;
        } else if (bom == 3) {
            x->body += 3; /* UTF-8 BOM: read after it (the rewrite drops it) */
            x->body_len -= 3;
        }
    }

    return 0;
}

/* Read the body as what it is: JSON under any label, a form, multipart,
 * text under any label, or opaque binary. MT (CAP bytes, may be rewritten
 * when empty) and PARAMS come from Content-Type. */
static void read_body(bg_inspection_t *x, char *mt, size_t cap, const char *params)
{
    const bg_inspect_input_t *in = &x->in;
    size_t mtl = strlen(mt);
    int json_type = strcmp(mt, "application/json") == 0 || strcmp(mt, "text/json") == 0 ||
                    (mtl > 5 && strcmp(mt + mtl - 5, "+json") == 0);
    if (!json_type && strcmp(mt, "multipart/form-data") != 0) {
        /* JSON under any other label (text/plain from sendBeacon, XML, a
         * form type, octet-stream, none): walked as JSON when it is JSON,
         * whatever the label says. A top-level JSON string counts. */
        size_t i = 0;
        while (i < x->body_len && isspace((unsigned char)x->body[i]))
            i++;
        json_type = i < x->body_len &&
                    (x->body[i] == '{' || x->body[i] == '[' || x->body[i] == '"') &&
                    bg_insp_jvalid(x, x->body, x->body_len);
    }
    if (mt[0] == '\0' && !json_type)
        snprintf(mt, cap, "%s",
                 memchr(x->body, '=', x->body_len) != NULL &&
                         memchr(x->body, ' ', x->body_len) == NULL &&
                         bg_sniff_is_text(x->body, x->body_len)
                     ? "application/x-www-form-urlencoded"
                     : "text/plain");
    if (json_type) {
        x->kind = BG_BODY_JSON;
        int d = bg_insp_add_doc(x, x->body, x->body_len, -1, -1, 0);
        if (d < 0) {
            bg_insp_set_undecodable(x, "%s", "out of memory");
            return;
        }
        walk_t w;
        memset(&w, 0, sizeof w);
        w.path[0] = '$';
        w.path_len = 1;
        bg_insp_jdocument(x, &w, d, -1);
    } else if (strcmp(mt, "application/x-www-form-urlencoded") == 0) {
        x->kind = BG_BODY_FORM;
        size_t first = x->nfields;
        if (bg_insp_parse_urlencoded(x, FS_FORM, x->body, x->body_len) != 0) {
            bg_insp_set_undecodable(x, "malformed percent-encoding in the %s", "form body");
            return;
        }
        bg_insp_split_reset(x);
        for (size_t i = first; i < x->nfields; i++)
            bg_insp_scan_field(x, (int)i);
    } else if (strcmp(mt, "multipart/form-data") == 0) {
        x->kind = BG_BODY_MULTIPART;
        if (bg_insp_boundary_param(in, params, x->boundary, sizeof x->boundary) != 0 ||
            bg_insp_parse_multipart(x) != 0)
            bg_insp_set_undecodable(x, "malformed %s body", "multipart/form-data");
    } else if (bg_sniff_binary_format(x->body, x->body_len) == NULL &&
               bg_sniff_is_text(x->body, x->body_len)) {
        /* Text under any label (text/..., XML, CSV as octet-stream): read. */
        x->kind = BG_BODY_TEXT;
        /* An XML entity declaration makes "&a;" in the text stand for what
         * the DTD says ("1381234"): the receiver reads text that is not
         * written here. Not read, so opaque. */
        if (entity_decl(x->body, x->body_len)) {
            bg_insp_set_undecodable(x, "%s",
                                    "an XML entity declaration (<!ENTITY): the text "
                                    "the receiver reads is not the text sent");
            return;
        }
        x->text = malloc(x->body_len + 1);
        if (x->text == NULL) {
            bg_insp_set_undecodable(x, "%s", "out of memory");
            return;
        }
        memcpy(x->text, x->body, x->body_len);
        x->text[x->body_len] = '\0';
        x->text_len = x->body_len;
        node_spec_t n = bg_insp_spec_of(x->fixed_scan ? N_FIXED : N_TEXT, -1);
        n.n.text = x->text;
        n.n.text_len = x->text_len;
        bg_insp_scan_text(x, &n, "body", BG_LOC_BODY, NULL, 0, x->text, x->text_len);
    } else {
        const char *fmt = bg_sniff_binary_format(x->body, x->body_len);
        char why[96];
        snprintf(why, sizeof why, "the body is binary (%s)", fmt != NULL ? fmt : "not text");
        bg_insp_set_opaque(x, why);
        x->kind = BG_BODY_OTHER;
    }
}

/*
 * Finished inspections kept per thread for the next ones: their arrays
 * keep their capacity and their first arena chunk stays, so a request's
 * inspection allocates nothing for them once the thread has seen one like
 * it (an 800-byte body's inspection made a dozen malloc/realloc/free
 * round trips for them). An inspection lives as long as its exchange
 * (the response head names what was changed), so a worker has several
 * alive at once: up to SPARES are kept. Only inspections whose arrays are
 * small (SPARE_MAX_BYTES each: a 1 MB body's do not stay pinned), and
 * SPARES_MAX_BYTES in all. None under ASan, so it still sees any use of an
 * inspection after its end. Threads that end call bg_inspect_thread_done.
 */
#define SPARES 16
#define SPARE_MAX_BYTES (256 * 1024)
#define SPARES_MAX_BYTES (1024 * 1024)
#define INSPECT_KEEP (!BG_ASAN)
static _Thread_local bg_inspection_t *spares[SPARES];
static _Thread_local size_t spare_bytes[SPARES];
static _Thread_local int nspares;
static _Thread_local size_t spares_bytes;

/* A zeroed inspection (split's leaf[] and pending[] aside: see the
 * struct), with a kept one's arrays (zeroed as bg_insp_grow hands them
 * out) and arena chunk when there is one. */
/* Zero the elements of array P that an inspection used: its N, and the
 * one at N, which an add that failed half-way may have written. The rest
 * are still zero from bg_insp_grow. */
static void zero_used(void *p, size_t n, size_t cap, size_t size)
{
    if (p != NULL)
        memset(p, 0, (n < cap ? n + 1 : cap) * size);
}

/* Zero X but split's tables (see the struct). */
static void clear_head(bg_inspection_t *x)
{
    memset(x, 0, offsetof(bg_inspection_t, split));
    x->split.n = x->split.npending = 0;
    x->split.gap = 0;
}

static bg_inspection_t *inspection_new(void)
{
    if (nspares == 0) {
        bg_inspection_t *x = malloc(sizeof *x);
        if (x != NULL)
            clear_head(x);
        return x;
    }
    bg_inspection_t *x = spares[--nspares];
    spares_bytes -= spare_bytes[nspares];
    /* bg_insp_grow hands out zeroed elements: zero again what the last
     * inspection used, not the whole capacity (a mid-size body's arrays
     * would otherwise cost every later request a large memset). */
    zero_used(x->docs, x->ndocs, x->capdocs, sizeof *x->docs);
    zero_used(x->nodes, x->nnodes, x->capnodes, sizeof *x->nodes);
    zero_used(x->members, x->nmembers, x->capmembers, sizeof *x->members);
    zero_used(x->containers, x->ncontainers, x->capcontainers, sizeof *x->containers);
    zero_used(x->fields, x->nfields, x->capfields, sizeof *x->fields);
    zero_used(x->hdrs, x->nhdrs, x->caphdrs, sizeof *x->hdrs);
    doc_t *docs = x->docs;
    node_t *nodes = x->nodes;
    member_t *members = x->members;
    container_t *containers = x->containers;
    field_t *fields = x->fields;
    hdr_t *hdrs = x->hdrs;
    bg_finding_t *findings = x->findings;
    pending_t *pending = x->pending;
    size_t capdocs = x->capdocs, capnodes = x->capnodes, capmembers = x->capmembers,
           capcontainers = x->capcontainers, capfields = x->capfields, caphdrs = x->caphdrs,
           capfind = x->capfind;
    arena_chunk_t *arena = x->arena;
    clear_head(x);
    x->docs = docs;
    x->capdocs = capdocs;
    x->nodes = nodes;
    x->capnodes = capnodes;
    x->members = members;
    x->capmembers = capmembers;
    x->containers = containers;
    x->capcontainers = capcontainers;
    x->fields = fields;
    x->capfields = capfields;
    x->hdrs = hdrs;
    x->caphdrs = caphdrs;
    x->findings = findings; /* written whole as each is added */
    x->pending = pending;
    x->capfind = capfind;
    if (arena != NULL)
        arena->used = 0;
    x->arena = arena;
    return x;
}

/* Free X with the arrays and arena chunk a kept inspection holds (what
 * else it owned was freed by bg_inspection_free). */
static void free_kept(bg_inspection_t *x)
{
    free(x->findings); /* their paths are in the arena */
    free(x->pending);
    free(x->nodes);
    free(x->docs);
    free(x->members);
    free(x->containers);
    free(x->fields);
    free(x->hdrs);
    free(x->arena);
    free(x);
}

void bg_inspect_thread_done(void)
{
    while (nspares > 0)
        free_kept(spares[--nspares]);
    spares_bytes = 0;
}

bg_inspection_t *bg_inspect(const bg_inspect_rules_t *rules, const bg_inspect_input_t *in)
{
    bg_inspection_t *x = inspection_new();
    if (x == NULL)
        return NULL;
    x->rules = rules;
    x->in = *in;
    x->records_container = -1;
    x->body = in->body;
    x->body_len = in->body_len;

    /* The method token, every path segment, the query string. */
    bg_insp_scan_fixed(x, "method", BG_LOC_METHOD, in->method, in->method_len);
    /* Methods are words (GET, PROPFIND, VERSION-CONTROL); digits in one are
     * data riding in a place nothing reads as data: opaque. */
    for (size_t i = 0; i < in->method_len; i++)
        if (in->method[i] >= '0' && in->method[i] <= '9') {
            bg_insp_set_opaque(x, "the request method carries digits");
            break;
        }
    /* Bytes outside ASCII in the target (RFC 3986 wants them percent-encoded)
     * are read as UTF-8; in another charset (GBK, Latin-1) they cannot be. */
    if (!bg_utf8_valid(in->target, in->target_len))
        bg_insp_set_opaque(x, "the request target has bytes that are not UTF-8");
    bg_insp_parse_path(x);
    bg_insp_scan_path_whole(x);
    const char *q = memchr(in->target, '?', in->target_len);
    if (q != NULL && !rules->skip_query) {
        size_t ql = in->target_len - (size_t)(q + 1 - in->target);
        const char *hash = memchr(q + 1, '#', ql);
        if (hash != NULL)
            ql = (size_t)(hash - q - 1);
        size_t first = x->nfields;
        if (bg_insp_parse_urlencoded(x, FS_QUERY, q + 1, ql) != 0) {
            bg_insp_set_undecodable(x, "malformed percent-encoding in the %s", "query string");
        } else {
            bg_insp_split_reset(x);
            for (size_t i = first; i < x->nfields; i++)
                bg_insp_scan_field(x, (int)i);
        }
    }
    bg_insp_scan_headers(x);
    if (bg_insp_parse_cookies(x) != 0)
        bg_insp_set_undecodable(x, "malformed %s header", "Cookie");
    if (x->kind == BG_BODY_UNDECODABLE)
        goto done; /* the body's kind would hide it; the request fails closed anyway */

    if (in->body_len == 0) {
        if (x->kind != BG_BODY_UNDECODABLE)
            x->kind = BG_BODY_NONE;
        goto done;
    }
    if (undo_compression(x) != 0)
        goto done;
    char mt[128];
    const char *params;
    bg_insp_media_type(in, mt, sizeof mt, &params);
    if (to_utf8(x, mt, params) != 0)
        goto done;
    read_body(x, mt, sizeof mt, params);
done:
    if (x->overflow)
        bg_insp_set_undecodable(x, "%s", "too many findings to inspect reliably");
    return x;
}

bg_body_kind_t bg_inspection_body_kind(const bg_inspection_t *x)
{
    return x->kind;
}
const char *bg_inspection_opaque(const bg_inspection_t *x)
{
    return x->opaque[0] != '\0' ? x->opaque : NULL;
}
const char *bg_inspection_undecodable(const bg_inspection_t *x)
{
    return x->kind == BG_BODY_UNDECODABLE ? x->undecodable : NULL;
}
size_t bg_inspection_count(const bg_inspection_t *x)
{
    return x->nfind;
}
bg_finding_t *bg_inspection_finding(bg_inspection_t *x, size_t i)
{
    return i < x->nfind ? &x->findings[i] : NULL;
}
int bg_inspection_records(const bg_inspection_t *x)
{
    return x->nrecords;
}
int bg_inspection_modified(const bg_inspection_t *x)
{
    return x->modified;
}

const char *bg_body_kind_name(bg_body_kind_t k)
{
    static const char *const names[] = {"none", "json",  "form",       "multipart",
                                        "text", "other", "undecodable"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

void bg_inspection_free(bg_inspection_t *x)
{
    if (x == NULL)
        return;
    free(x->record_members);
    free(x->record_findings);
    for (size_t i = 0; i < x->nfields; i++) {
        free(x->fields[i].name);
        free(x->fields[i].value);
        free(x->fields[i].part_head);
    }
    for (size_t i = 0; i < x->nhdrs; i++)
        free(x->hdrs[i].value); /* names are in the arena */
    free(x->text);
    free(x->decoded);
    free(x->decoded2);
    free(x->transcoded);
    for (size_t i = 0; i < x->nextra; i++)
        free(x->extra[i]);
    free(x->extra);
    /* Every arena chunk but the newest (a kept inspection keeps that one
     * when it is the usual size). */
    arena_chunk_t *keep = x->arena;
    while (x->arena != NULL && x->arena->next != NULL) {
        arena_chunk_t *next = x->arena->next;
        x->arena->next = next->next;
        free(next);
    }
    size_t bytes = x->capdocs * sizeof *x->docs + x->capnodes * sizeof *x->nodes +
                   x->capmembers * sizeof *x->members + x->capcontainers * sizeof *x->containers +
                   x->capfields * sizeof *x->fields + x->caphdrs * sizeof *x->hdrs +
                   x->capfind * (sizeof *x->findings + sizeof *x->pending);
    if (INSPECT_KEEP && nspares < SPARES && bytes <= SPARE_MAX_BYTES &&
        spares_bytes + bytes <= SPARES_MAX_BYTES && (keep == NULL || keep->cap <= ARENA_CHUNK)) {
        /* its findings' paths were in the arena: gone with the reset */
        spare_bytes[nspares] = bytes;
        spares[nspares++] = x;
        spares_bytes += bytes;
        return;
    }
    free_kept(x);
}
