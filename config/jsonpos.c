/*
 * Position map of a JSON text: see jsonpos.h for the contract.
 *
 * Storage. Every value becomes one entry_t, appended in text order. An entry
 * does not hold its full path, only its parent entry and its own segment
 * (".name" bytes kept in one arena, or an array index), so memory stays
 * linear in the text however deep the nesting and however long the keys:
 * storing full path strings would cost depth x key length per value, i.e.
 * quadratic on a hostile (or generated) document.
 *
 * Index. Array elements need no hashing: when an array closes, the entry
 * numbers of its elements are copied, in order, into one shared vector, so
 * "[N]" under an array is a bounds check and a load. Object members go in
 * an open-addressing table (linear probing, load <= 1/2) keyed by the
 * 64-bit FNV-1a hash of the full path. FNV-1a is a streaming hash, so a
 * child's hash is its parent's hash continued over the child's segment:
 * O(segment) per value, never O(path). A candidate matches a lookup when
 * hash, parent entry and segment bytes are equal, which makes the
 * comparison exact without walking the path. The table is sized once from
 * a count of ':' (an upper bound on the members), so it never rehashes.
 * The cost is memory-bound: one likely cache miss per member (overlapped,
 * see queue_member), none per element.
 *   We do not use a jansson object keyed by path: that needs the full path
 *   string of every value (the quadratic case above), plus a malloc'd copy
 *   of it and a json_t per value, where an entry here is 48 bytes.
 *
 * Duplicates. A key repeated in the same object instance (same parent entry,
 * same segment) takes over the slot, so lookups see the last definition as
 * jansson does; the values below the overridden one keep their entries but
 * no slot can reach them any more, because a lookup only descends from
 * reachable parents. Keys repeated in *different* objects have different
 * parent entries and never collide, even when their paths are equal (as in
 * {"a":{"x":1},"a":{"x":2}}, where only "a" is a duplicate).
 *
 * Lookup walks the query path from "$" segment by segment, so the deepest
 * ancestor that exists is known for free when a segment is missing.
 */
#include "config/jsonpos.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/hex.h"
#include "common/utf8.h"

#define NO_ENTRY UINT32_MAX
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define INDEX_SEG_MAX 24 /* "[" + 20 digits + "]" */

enum { SEG_ROOT, SEG_KEY, SEG_INDEX };

typedef struct {
    uint64_t hash;    /* FNV-1a of the full path; 0 for scalar elements */
    uint32_t parent;  /* containing object/array; NO_ENTRY for the root */
    uint32_t seg;     /* SEG_KEY: offset in keys[]; SEG_INDEX: the index */
    uint32_t seg_len; /* SEG_KEY: bytes of the segment */
    uint32_t elems;   /* arrays: first element's place in elems[] */
    uint32_t nelems;  /* arrays: element count; 0 for everything else */
    uint8_t kind;
    int32_t line, col, key_line, key_col;
} entry_t;

typedef struct {
    uint32_t entry1; /* entry index + 1; 0 = empty */
    uint32_t mixed;  /* mixed hash: the home slot, and a cheap first filter */
} slot_t;

struct bg_jsonpos {
    entry_t *entries;
    size_t n, cap;
    char *keys; /* key segments as they appear in paths (".a", "[\"a b\"]") */
    size_t keys_len, keys_cap;
    uint32_t *elems; /* entry numbers of array elements, array by array */
    size_t elems_len, elems_cap;
    slot_t *slots; /* object members only */
    size_t slot_mask, slots_used;
    bg_jsonpos_dup_t *dups;
    size_t ndups, dups_cap;
};

/* ---------------------------------------------------------------------- */
/* Hashing                                                                 */

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* FNV-1a's low bits are weak on short inputs; mix before masking. Slots
 * keep these 32 bits, so growing the table never touches the entries. */
static uint32_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* ---------------------------------------------------------------------- */
/* Path segments: one writer shared by the map and the public builders, so
 * the validator's paths are byte-identical to the stored ones.            */

typedef struct {
    char *buf;
    size_t cap; /* bytes writable including the terminating NUL */
    size_t len; /* length the output would have; may exceed cap */
} sink_t;

static void put(sink_t *s, char c)
{
    if (s->len + 1 < s->cap)
        s->buf[s->len] = c;
    s->len++;
}

static void puts_n(sink_t *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(s, p[i]);
}

/* NUL-terminate what fits (snprintf's contract). */
static void sink_end(sink_t *s)
{
    if (s->cap > 0)
        s->buf[s->len < s->cap ? s->len : s->cap - 1] = '\0';
}

/* Characters a reader cannot see or tell apart from a space: written as
 * \uXXXX inside brackets, so "a\u3000b" does not look like "a b". */
static int invisible(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0xA0) || cp == 0xAD || cp == 0x34F || cp == 0x61C || cp == 0x115F ||
           cp == 0x1160 || cp == 0x1680 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 ||
           cp == 0x3164 || cp == 0xFEFF || cp == 0xFFA0 || (cp >= 0xFFF9 && cp <= 0xFFFB);
}

/* Visible look-alikes of the path syntax (。．［］＂ and small dots). */
static int confusable(uint32_t cp)
{
    return cp == 0x2024 || cp == 0x3002 || cp == 0xFE52 || cp == 0xFF02 || cp == 0xFF0E ||
           cp == 0xFF3B || cp == 0xFF3D;
}

static int is_word(const unsigned char *k, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = k[i];
        if (c < 0x80) {
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-'))
                return 0;
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = bg_utf8_decode(k + i, n - i, &cp);
        if (l == 0 || invisible(cp) || confusable(cp))
            return 0;
        i += l;
    }
    return 1;
}

static void put_u4(sink_t *s, uint32_t cp)
{
    const unsigned char be[2] = {(unsigned char)(cp >> 8), (unsigned char)cp};
    char u[7] = {'\\', 'u'};
    bg_hex_encode(be, 2, u + 2);
    puts_n(s, u, 6);
}

static void write_key_segment(sink_t *s, const unsigned char *k, size_t n)
{
    if (is_word(k, n)) {
        put(s, '.');
        puts_n(s, (const char *)k, n);
        return;
    }
    put(s, '[');
    put(s, '"');
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = bg_utf8_decode(k + i, n - i, &cp);
        if (l == 0) {
            /* Only reachable from text jansson rejects; keep paths UTF-8. */
            put_u4(s, 0xFFFD);
            i++;
            continue;
        }
        switch (cp) {
        case '"': puts_n(s, "\\\"", 2); break;
        case '\\': puts_n(s, "\\\\", 2); break;
        case '\b': puts_n(s, "\\b", 2); break;
        case '\f': puts_n(s, "\\f", 2); break;
        case '\n': puts_n(s, "\\n", 2); break;
        case '\r': puts_n(s, "\\r", 2); break;
        case '\t': puts_n(s, "\\t", 2); break;
        default:
            if (cp < 0x20 || cp == 0x7F || invisible(cp))
                put_u4(s, cp);
            else
                puts_n(s, (const char *)k + i, l);
        }
        i += l;
    }
    put(s, '"');
    put(s, ']');
}

static size_t index_segment(size_t index, char out[INDEX_SEG_MAX])
{
    char digits[21];
    size_t nd = 0, n = 0;
    do {
        digits[nd++] = (char)('0' + index % 10);
        index /= 10;
    } while (index > 0);
    out[n++] = '[';
    while (nd > 0)
        out[n++] = digits[--nd];
    out[n++] = ']';
    return n;
}

size_t bg_jsonpos_path_append_key(char *buf, size_t cap, size_t len, const char *key)
{
    sink_t s = {buf, cap, len};
    if (key == NULL)
        key = "";
    write_key_segment(&s, (const unsigned char *)key, strlen(key));
    sink_end(&s);
    return s.len;
}

size_t bg_jsonpos_path_append_index(char *buf, size_t cap, size_t len, size_t index)
{
    sink_t s = {buf, cap, len};
    char seg[INDEX_SEG_MAX];
    puts_n(&s, seg, index_segment(index, seg));
    sink_end(&s);
    return s.len;
}

/* Bytes of entry E's segment: into TMP for indexes, else in place. */
static const char *entry_segment(const bg_jsonpos_t *m, const entry_t *e, char tmp[INDEX_SEG_MAX],
                                 size_t *n)
{
    switch (e->kind) {
    case SEG_KEY: *n = e->seg_len; return m->keys + e->seg;
    case SEG_INDEX: *n = index_segment(e->seg, tmp); return tmp;
    default: *n = 1; return BG_JSONPOS_ROOT;
    }
}

/* ---------------------------------------------------------------------- */
/* Table                                                                   */

static int table_grow(bg_jsonpos_t *m)
{
    size_t cap = (m->slot_mask + 1) * 2;
    slot_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i <= m->slot_mask; i++) {
        if (m->slots[i].entry1 == 0)
            continue;
        size_t j = m->slots[i].mixed & (cap - 1);
        while (slots[j].entry1 != 0)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->slot_mask = cap - 1;
    return 0;
}

static int same_segment(const bg_jsonpos_t *m, const entry_t *e, const char *seg, size_t n)
{
    char tmp[INDEX_SEG_MAX];
    size_t en;
    const char *es = entry_segment(m, e, tmp, &en);
    return en == n && memcmp(es, seg, n) == 0;
}

/* The member of object PARENT whose segment is SEG (H: hash of the full
 * path), or NO_ENTRY. */
static uint32_t find_member(const bg_jsonpos_t *m, uint32_t parent, uint64_t h, const char *seg,
                            size_t n)
{
    uint32_t mixed = mix(h);
    for (size_t i = mixed & m->slot_mask; m->slots[i].entry1 != 0; i = (i + 1) & m->slot_mask) {
        if (m->slots[i].mixed != mixed)
            continue;
        const entry_t *e = &m->entries[m->slots[i].entry1 - 1];
        if (e->hash == h && e->parent == parent && same_segment(m, e, seg, n))
            return m->slots[i].entry1 - 1;
    }
    return NO_ENTRY;
}

static int record_dup(bg_jsonpos_t *m, const entry_t *old, size_t now)
{
    bg_jsonpos_dup_t *d = bg_grow(m->dups, &m->dups_cap, m->ndups + 1, sizeof *d, 8);
    if (d == NULL)
        return -1;
    m->dups = d;
    d = &m->dups[m->ndups++];
    d->entry = now;
    d->line = m->entries[now].key_line;
    d->col = m->entries[now].key_col;
    d->first_line = old->key_line;
    d->first_col = old->key_col;
    return 0;
}

/* Append entry E. Its hash is computed when something can hang below it
 * or it is a member (NEED_HASH): scalars in arrays never need one. */
static int add_entry(bg_jsonpos_t *m, entry_t *e, int need_hash)
{
    entry_t *ne = bg_grow(m->entries, &m->cap, m->n + 1, sizeof *ne, 64);
    if (ne == NULL)
        return -1;
    m->entries = ne;
    e->hash = 0;
    if (need_hash || e->kind != SEG_INDEX) {
        char tmp[INDEX_SEG_MAX];
        size_t n;
        const char *seg = entry_segment(m, e, tmp, &n);
        e->hash = e->parent == NO_ENTRY ? fnv(FNV_OFFSET, seg, n)
                                        : fnv(m->entries[e->parent].hash, seg, n);
    }
    m->entries[m->n++] = *e;
    return 0;
}

/* Put member entry NOW into the table; a key already there for the same
 * object is a duplicate, which NOW replaces (jansson keeps the last). */
static int index_member(bg_jsonpos_t *m, uint32_t now)
{
    if ((m->slots_used + 1) * 2 > m->slot_mask + 1 && table_grow(m) != 0)
        return -1;
    const entry_t *e = &m->entries[now];
    char tmp[INDEX_SEG_MAX];
    size_t n;
    const char *seg = entry_segment(m, e, tmp, &n);
    uint32_t mixed = mix(e->hash);
    size_t i = mixed & m->slot_mask;
    for (; m->slots[i].entry1 != 0; i = (i + 1) & m->slot_mask) {
        if (m->slots[i].mixed != mixed)
            continue;
        const entry_t *old = &m->entries[m->slots[i].entry1 - 1];
        if (old->hash != e->hash || old->parent != e->parent || !same_segment(m, old, seg, n))
            continue;
        if (record_dup(m, old, now) != 0)
            return -1;
        m->slots[i].entry1 = now + 1;
        return 0;
    }
    m->slots[i].entry1 = now + 1;
    m->slots[i].mixed = mixed;
    m->slots_used++;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Scanner                                                                 */

typedef struct {
    uint32_t entry;      /* the object or array */
    uint32_t next_index; /* arrays: index of the next element */
    int is_object;
} frame_t;

#define QUEUE_LEN 16 /* members whose slots are being fetched */

typedef struct {
    const unsigned char *p, *end;
    int32_t line, col;
    bg_jsonpos_t *m;
    frame_t *stack;
    size_t depth, stack_cap;
    uint32_t *pend; /* elements of the open arrays, innermost last */
    size_t npend, pend_cap;
    unsigned char *key; /* decoded key being read */
    size_t key_cap;
    uint32_t queue[QUEUE_LEN]; /* members not yet in the table, oldest first */
    size_t qhead, qlen;
} scan_t;

#define SCAN_SYNTAX (-1)
#define SCAN_NOMEM (-2)

/* Consume one byte, keeping line and column (code points) current. */
static void step(scan_t *s)
{
    unsigned char c = *s->p++;
    if (c == '\n') {
        s->line++;
        s->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        s->col++;
    }
}

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        step(s);
}

/* A string value: only its end matters (jansson checks the contents). */
static int skip_string(scan_t *s)
{
    step(s); /* opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p;
        step(s);
        if (c == '"')
            return 0;
        if (c == '\\') {
            if (s->p == s->end)
                break;
            step(s);
        }
    }
    return SCAN_SYNTAX;
}

/* Numbers, true, false, null and whatever else jansson will judge. */
static int skip_scalar(scan_t *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ':' || c == '[' ||
            c == ']' || c == '{' || c == '}' || c == '"')
            break;
        step(s);
    }
    return s->p > start ? 0 : SCAN_SYNTAX;
}

/* The 4 hex digits after "\u" at P, or -1. */
static long read_u4(scan_t *s)
{
    if (s->end - s->p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = bg_hex_digit(s->p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    for (int i = 0; i < 4; i++)
        step(s);
    return v;
}

/* Decode the key string at P into s->key; *LEN receives its length.
 * Escapes are checked the way jansson checks them (no lone surrogates, no
 * NUL: jansson refuses those keys), raw bytes are copied unchecked. */
static int read_key(scan_t *s, size_t *len)
{
    size_t n = 0;
    step(s); /* opening quote */
    for (;;) {
        if (s->p == s->end)
            return SCAN_SYNTAX;
        /* A key never decodes longer than its text: 4 bytes of UTF-8 at
         * most for the 12 of "\uD83D\uDE00", 3 for the 6 of "\u4E2D". */
        if (n + 4 > s->key_cap) {
            unsigned char *k = bg_grow(s->key, &s->key_cap, n + 4, 1, 64);
            if (k == NULL)
                return SCAN_NOMEM;
            s->key = k;
        }
        unsigned char c = *s->p;
        step(s);
        if (c == '"')
            break;
        if (c != '\\') {
            s->key[n++] = c;
            continue;
        }
        if (s->p == s->end)
            return SCAN_SYNTAX;
        c = *s->p;
        step(s);
        switch (c) {
        case '"':
        case '\\':
        case '/': s->key[n++] = c; continue;
        case 'b': s->key[n++] = '\b'; continue;
        case 'f': s->key[n++] = '\f'; continue;
        case 'n': s->key[n++] = '\n'; continue;
        case 'r': s->key[n++] = '\r'; continue;
        case 't': s->key[n++] = '\t'; continue;
        case 'u': break;
        default: return SCAN_SYNTAX;
        }
        long cp = read_u4(s);
        if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
            return SCAN_SYNTAX;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
                return SCAN_SYNTAX;
            step(s);
            step(s);
            long lo = read_u4(s);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return SCAN_SYNTAX;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        n += bg_utf8_encode((uint32_t)cp, (char *)s->key + n); /* valid: checked above */
    }
    *len = n;
    return 0;
}

/* Append the path segment of the key just decoded to keys[]. */
static int store_key_segment(bg_jsonpos_t *m, const unsigned char *k, size_t n, entry_t *e)
{
    /* Worst case: "[\"" + 6 bytes per input byte ("\u00XX") + "\"]". */
    if (n > (SIZE_MAX - 4 - m->keys_len) / 6)
        return SCAN_NOMEM;
    size_t need = m->keys_len + 6 * n + 4;
    if (need > m->keys_cap) {
        char *keys = bg_grow(m->keys, &m->keys_cap, need, 1, 256);
        if (keys == NULL)
            return SCAN_NOMEM;
        m->keys = keys;
    }
    sink_t s = {m->keys + m->keys_len, m->keys_cap - m->keys_len + 1, 0};
    write_key_segment(&s, k, n);
    e->seg = (uint32_t)m->keys_len;
    e->seg_len = (uint32_t)s.len;
    m->keys_len += s.len;
    return 0;
}

static int push(scan_t *s, uint32_t entry, int is_object)
{
    frame_t *st = bg_grow(s->stack, &s->stack_cap, s->depth + 1, sizeof *st, 16);
    if (st == NULL)
        return SCAN_NOMEM;
    s->stack = st;
    s->stack[s->depth].entry = entry;
    s->stack[s->depth].next_index = 0;
    s->stack[s->depth].is_object = is_object;
    s->depth++;
    return 0;
}

/* Note element ENTRY of the innermost open array. */
static int push_element(scan_t *s, uint32_t entry)
{
    uint32_t *p = bg_grow(s->pend, &s->pend_cap, s->npend + 1, sizeof *p, 64);
    if (p == NULL)
        return SCAN_NOMEM;
    s->pend = p;
    s->pend[s->npend++] = entry;
    return 0;
}

/* Leave the innermost container at its closing bracket. An array hands its
 * elements (the newest ones noted: inner arrays took theirs already) over
 * to elems[], where lookups find them by index. */
static int close_container(scan_t *s)
{
    const frame_t *top = &s->stack[--s->depth];
    bg_jsonpos_t *m = s->m;
    size_t n = top->next_index;
    step(s);
    if (top->is_object || n == 0)
        return 0;
    uint32_t *el = bg_grow(m->elems, &m->elems_cap, m->elems_len + n, sizeof *el, 64);
    if (el == NULL)
        return SCAN_NOMEM;
    m->elems = el;
    memcpy(m->elems + m->elems_len, s->pend + s->npend - n, n * sizeof *m->elems);
    m->entries[top->entry].elems = (uint32_t)m->elems_len;
    m->entries[top->entry].nelems = (uint32_t)n;
    m->elems_len += n;
    s->npend -= n;
    return 0;
}

#if defined(__GNUC__)
#define PREFETCH(addr) __builtin_prefetch(addr)
#else
#define PREFETCH(addr) ((void)(addr))
#endif

/* Members go into the table QUEUE_LEN keys late, their home slots being
 * prefetched meanwhile: on a document larger than the cache, that overlaps
 * the cache misses instead of taking them one at a time (about 3x faster
 * on key-dense text). FIFO, so duplicates are still found in text order. */
static int queue_member(scan_t *s, uint32_t entry)
{
    bg_jsonpos_t *m = s->m;
    if (s->qlen == QUEUE_LEN) {
        if (index_member(m, s->queue[s->qhead]) != 0)
            return SCAN_NOMEM;
        s->qhead = (s->qhead + 1) % QUEUE_LEN;
        s->qlen--;
    }
    s->queue[(s->qhead + s->qlen++) % QUEUE_LEN] = entry;
    PREFETCH(&m->slots[mix(m->entries[entry].hash) & m->slot_mask]);
    return 0;
}

static int flush_members(scan_t *s)
{
    for (; s->qlen > 0; s->qlen--) {
        if (index_member(s->m, s->queue[s->qhead]) != 0)
            return SCAN_NOMEM;
        s->qhead = (s->qhead + 1) % QUEUE_LEN;
    }
    return 0;
}

enum { ST_VALUE, ST_MEMBER, ST_MEMBER_OR_END, ST_ELEMENT_OR_END, ST_AFTER_VALUE, ST_DONE };

/* After a complete value: more to come inside a container, or the end. */
static int after_value(const scan_t *s)
{
    return s->depth > 0 ? ST_AFTER_VALUE : ST_DONE;
}

static void pending_element(scan_t *s, entry_t *e)
{
    frame_t *top = &s->stack[s->depth - 1];
    memset(e, 0, sizeof *e);
    e->kind = SEG_INDEX;
    e->parent = top->entry;
    e->seg = top->next_index++;
}

static int scan(scan_t *s)
{
    bg_jsonpos_t *m = s->m;
    entry_t e = {.kind = SEG_ROOT, .parent = NO_ENTRY};
    int state = ST_VALUE, rc;

    for (;;) {
        skip_ws(s);
        if (state == ST_DONE) /* anything left is trailing garbage */
            return s->p == s->end ? flush_members(s) : SCAN_SYNTAX;
        if (s->p == s->end)
            return SCAN_SYNTAX;
        unsigned char c = *s->p;

        switch (state) {
        case ST_VALUE:
            if (c == ',' || c == ':' || c == ']' || c == '}')
                return SCAN_SYNTAX;
            e.line = s->line;
            e.col = s->col;
            if (add_entry(m, &e, c == '{' || c == '[') != 0)
                return SCAN_NOMEM;
            if (e.kind == SEG_INDEX && (rc = push_element(s, (uint32_t)(m->n - 1))) != 0)
                return rc;
            if (e.kind == SEG_KEY && (rc = queue_member(s, (uint32_t)(m->n - 1))) != 0)
                return rc;
            if (c == '{' || c == '[') {
                if ((rc = push(s, (uint32_t)(m->n - 1), c == '{')) != 0)
                    return rc;
                step(s);
                state = c == '{' ? ST_MEMBER_OR_END : ST_ELEMENT_OR_END;
                break;
            }
            if ((rc = c == '"' ? skip_string(s) : skip_scalar(s)) != 0)
                return rc;
            state = after_value(s);
            break;

        case ST_MEMBER_OR_END:
            if (c == '}') {
                close_container(s);
                state = after_value(s);
                break;
            }
            /* fall through */
        case ST_MEMBER: {
            size_t klen;
            if (c != '"')
                return SCAN_SYNTAX;
            memset(&e, 0, sizeof e);
            e.kind = SEG_KEY;
            e.parent = s->stack[s->depth - 1].entry;
            e.key_line = s->line;
            e.key_col = s->col;
            if ((rc = read_key(s, &klen)) != 0 ||
                (rc = store_key_segment(m, s->key, klen, &e)) != 0)
                return rc;
            skip_ws(s);
            if (s->p == s->end || *s->p != ':')
                return SCAN_SYNTAX;
            step(s);
            state = ST_VALUE;
            break;
        }

        case ST_ELEMENT_OR_END:
            if (c == ']') {
                close_container(s); /* empty: nothing to hand over */
                state = after_value(s);
                break;
            }
            pending_element(s, &e);
            state = ST_VALUE;
            break;

        case ST_AFTER_VALUE: {
            const frame_t *top = &s->stack[s->depth - 1];
            if (c == ',') {
                step(s);
                if (top->is_object) {
                    state = ST_MEMBER;
                } else {
                    pending_element(s, &e);
                    state = ST_VALUE;
                }
            } else if (c == (top->is_object ? '}' : ']')) {
                if ((rc = close_container(s)) != 0)
                    return rc;
                state = after_value(s);
            } else {
                return SCAN_SYNTAX;
            }
            break;
        }
        }
    }
}

bg_jsonpos_t *bg_jsonpos_build(const char *text, size_t len)
{
    if (text == NULL && len > 0) {
        errno = EINVAL;
        return NULL;
    }
    if (len > BG_JSONPOS_MAX_TEXT) {
        errno = EFBIG;
        return NULL;
    }
    bg_jsonpos_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    /* Every member has a ':', so counting them (a few ms for 100 MB) sizes
     * the table for good: no rehash, whose random reads would cost more
     * than this pass. Entries start at a value per 16 bytes, keys at 1/8
     * of the text, and grow by doubling when that was short. */
    size_t colons = 0, slots = 64;
    for (size_t i = 0; i < len; i++)
        colons += text[i] == ':';
    while (slots < colons * 2 + 2)
        slots *= 2;
    m->cap = len / 16 + 16;
    m->entries = malloc(m->cap * sizeof *m->entries);
    m->keys_cap = len / 8 + 64;
    m->keys = malloc(m->keys_cap);
    m->slots = calloc(slots, sizeof *m->slots);
    m->slot_mask = slots - 1;

    scan_t s = {.p = (const unsigned char *)text, .line = 1, .col = 1, .m = m};
    s.end = s.p + len;
    int rc = SCAN_NOMEM;
    if (m->entries != NULL && m->keys != NULL && m->slots != NULL)
        rc = len > 0 ? scan(&s) : SCAN_SYNTAX;
    free(s.stack);
    free(s.pend);
    free(s.key);
    if (rc != 0) {
        bg_jsonpos_free(m);
        errno = rc == SCAN_NOMEM ? ENOMEM : EINVAL;
        return NULL;
    }
    return m;
}

void bg_jsonpos_free(bg_jsonpos_t *m)
{
    if (m == NULL)
        return;
    free(m->entries);
    free(m->keys);
    free(m->elems);
    free(m->slots);
    free(m->dups);
    free(m);
}

size_t bg_jsonpos_count(const bg_jsonpos_t *m)
{
    return m ? m->n : 0;
}

/* ---------------------------------------------------------------------- */
/* Lookups                                                                 */

/* Length of the path segment starting at P, or 0 when P does not start
 * one. Accepts exactly the shapes write_key_segment and index_segment
 * produce (without re-validating escapes: the bytes are compared anyway). */
static size_t segment_length(const char *p)
{
    const char *q = p + 1;
    if (p[0] == '.') {
        while (*q != '\0' && *q != '.' && *q != '[')
            q++;
        return q > p + 1 ? (size_t)(q - p) : 0;
    }
    if (p[0] != '[')
        return 0;
    if (*q == '"') {
        for (q++; *q != '"'; q++) {
            if (*q == '\0' || (*q == '\\' && *++q == '\0'))
                return 0;
        }
        q++;
    } else {
        while (*q >= '0' && *q <= '9')
            q++;
        if (q == p + 1)
            return 0;
    }
    return *q == ']' ? (size_t)(q + 1 - p) : 0;
}

/* The index in segment "[digits]" of length N, or UINT64_MAX when it is
 * not written the way index_segment() writes it ("[007]", overflow). */
static uint64_t element_index(const char *p, size_t n)
{
    uint64_t v = 0;
    if (n > 12 || (p[1] == '0' && n > 3)) /* 10 digits cover every uint32 */
        return UINT64_MAX;
    for (size_t i = 1; i + 1 < n; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    return v;
}

/* Deepest entry on PATH that the text has, into *OUT. */
static int resolve(const bg_jsonpos_t *m, const char *path, uint32_t *out)
{
    if (m == NULL || m->n == 0 || path == NULL || path[0] != '$')
        return BG_JSONPOS_NONE;
    uint32_t cur = 0; /* the root is always the first entry */
    const char *p = path + 1;
    while (*p != '\0') {
        size_t n = segment_length(p);
        if (n == 0)
            break;
        uint32_t child;
        if (p[0] == '[' && p[1] != '"') {
            uint64_t index = element_index(p, n);
            const entry_t *a = &m->entries[cur];
            if (index >= a->nelems)
                break;
            child = m->elems[a->elems + index];
        } else {
            uint64_t h = fnv(m->entries[cur].hash, p, n);
            if ((child = find_member(m, cur, h, p, n)) == NO_ENTRY)
                break;
        }
        cur = child;
        p += n;
    }
    *out = cur;
    return *p == '\0' ? BG_JSONPOS_EXACT : BG_JSONPOS_FALLBACK;
}

static int lookup(const bg_jsonpos_t *m, const char *path, int want_key, int *line, int *col)
{
    uint32_t i = 0;
    int rc = resolve(m, path, &i);
    int l = 0, c = 0;
    if (rc != BG_JSONPOS_NONE) {
        const entry_t *e = &m->entries[i];
        int key = want_key && e->kind == SEG_KEY;
        l = key ? e->key_line : e->line;
        c = key ? e->key_col : e->col;
    }
    if (line != NULL)
        *line = l;
    if (col != NULL)
        *col = c;
    return rc;
}

int bg_jsonpos_lookup(const bg_jsonpos_t *m, const char *path, int *line, int *col)
{
    return lookup(m, path, 0, line, col);
}

int bg_jsonpos_lookup_key(const bg_jsonpos_t *m, const char *path, int *line, int *col)
{
    return lookup(m, path, 1, line, col);
}

int bg_jsonpos_entry(const bg_jsonpos_t *m, size_t i, bg_jsonpos_pos_t *out)
{
    if (m == NULL || i >= m->n)
        return -1;
    const entry_t *e = &m->entries[i];
    out->line = e->line;
    out->col = e->col;
    out->key_line = e->key_line;
    out->key_col = e->key_col;
    return 0;
}

size_t bg_jsonpos_entry_path(const bg_jsonpos_t *m, size_t i, char *buf, size_t cap)
{
    if (m == NULL || i >= m->n) {
        if (cap > 0)
            buf[0] = '\0';
        return 0;
    }
    char tmp[INDEX_SEG_MAX];
    size_t total = 0, n;
    for (uint32_t e = (uint32_t)i; e != NO_ENTRY; e = m->entries[e].parent) {
        entry_segment(m, &m->entries[e], tmp, &n);
        total += n;
    }
    /* Segments come leaf first: write each one where it ends up, keeping
     * only the bytes that fit before the NUL. */
    size_t end = total;
    for (uint32_t e = (uint32_t)i; e != NO_ENTRY; e = m->entries[e].parent) {
        const char *seg = entry_segment(m, &m->entries[e], tmp, &n);
        size_t start = end - n;
        for (size_t j = 0; j < n && start + j + 1 < cap; j++)
            buf[start + j] = seg[j];
        end = start;
    }
    if (cap > 0)
        buf[total < cap ? total : cap - 1] = '\0';
    return total;
}

const bg_jsonpos_dup_t *bg_jsonpos_duplicates(const bg_jsonpos_t *m, size_t *count)
{
    size_t n = m ? m->ndups : 0;
    if (count != NULL)
        *count = n;
    return n > 0 ? m->dups : NULL;
}
