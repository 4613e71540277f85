/*
 * Position map (config/jsonpos) and diagnostics sink (config/cfgerr).
 *
 * The strongest checks are cross-checks against jansson: every value of a
 * parsed document is visited with paths built by the public helpers, and
 * each must resolve exactly to a position where the text really holds that
 * kind of value (and its key). Positions are turned back into byte offsets
 * by an independent, deliberately naive line/code-point walk.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "config/cfgerr.h"
#include "config/jsonpos.h"

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static bg_jsonpos_t *build(const char *s)
{
    return bg_jsonpos_build(s, strlen(s));
}

/* Lookup PATH and require RC, LINE and COL; names the path on failure. */
static void expect_at(const bg_jsonpos_t *m, int key, const char *path, int rc, int line, int col)
{
    int l = -7, c = -7;
    int got = key ? bg_jsonpos_lookup_key(m, path, &l, &c) : bg_jsonpos_lookup(m, path, &l, &c);
    if (got != rc || l != line || c != col) {
        print_error("%s %s: got rc %d at %d:%d, want rc %d at %d:%d\n", key ? "key" : "value", path,
                    got, l, c, rc, line, col);
        fail();
    }
}

/* 1-based line and code-point column of the N-th (0-based) occurrence of
 * NEEDLE in TEXT: the test's own oracle, independent of the scanner. */
static void find_pos(const char *text, const char *needle, int nth, int *line, int *col)
{
    const char *p = text;
    for (int i = 0; i <= nth; i++) {
        const char *q = strstr(p, needle);
        if (q == NULL) {
            print_error("'%s' #%d not in text\n", needle, nth);
            fail();
        }
        p = q + (i < nth ? 1 : 0);
    }
    *line = 1;
    *col = 1;
    for (const char *q = text; q < p; q++) {
        if (*q == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)*q & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

static void expect_found(const bg_jsonpos_t *m, int key, const char *path, const char *text,
                         const char *needle, int nth)
{
    int line, col;
    find_pos(text, needle, nth, &line, &col);
    expect_at(m, key, path, BG_JSONPOS_EXACT, line, col);
}

static char *path_of_key(const char *key)
{
    static char buf[256];
    strcpy(buf, BG_JSONPOS_ROOT);
    size_t n = bg_jsonpos_path_append_key(buf, sizeof buf, 1, key);
    assert_true(n < sizeof buf);
    return buf;
}

/* Cross-check state: text with its line starts, and the map under test. */
typedef struct {
    const char *text;
    size_t len;
    size_t *starts;
    size_t nlines;
    const bg_jsonpos_t *map;
    size_t values;
} xcheck_t;

static void xcheck_init(xcheck_t *x, const char *text, size_t len, const bg_jsonpos_t *map)
{
    memset(x, 0, sizeof *x);
    x->text = text;
    x->len = len;
    x->map = map;
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == '\n';
    x->starts = malloc(cap * sizeof *x->starts);
    assert_non_null(x->starts);
    x->starts[x->nlines++] = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n')
            x->starts[x->nlines++] = i + 1;
}

/* Byte at LINE:COL (code points), or NULL when there is none. */
static const char *xcheck_at(const xcheck_t *x, int line, int col)
{
    if (line < 1 || (size_t)line > x->nlines || col < 1)
        return NULL;
    size_t off = x->starts[line - 1];
    for (int c = 1; c < col; c++) {
        if (off >= x->len || x->text[off] == '\n')
            return NULL;
        off++;
        while (off < x->len && ((unsigned char)x->text[off] & 0xC0) == 0x80)
            off++;
    }
    return off < x->len ? x->text + off : NULL;
}

static void xfail(const char *path, const char *what)
{
    print_error("%s: %s\n", path, what);
    fail();
}

static void walk(xcheck_t *x, json_t *v, char *path, size_t cap, size_t len)
{
    int line, col;
    if (len >= cap)
        xfail(path, "path buffer too small");
    if (bg_jsonpos_lookup(x->map, path, &line, &col) != BG_JSONPOS_EXACT)
        xfail(path, "not found");
    const char *p = xcheck_at(x, line, col);
    if (p == NULL)
        xfail(path, "position outside the text");
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (*p != '{')
            xfail(path, "not at '{'");
        break;
    case JSON_ARRAY:
        if (*p != '[')
            xfail(path, "not at '['");
        break;
    case JSON_STRING:
        if (*p != '"')
            xfail(path, "not at '\"'");
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        if (*p != '-' && (*p < '0' || *p > '9'))
            xfail(path, "not at a number");
        break;
    case JSON_TRUE:
        if (strncmp(p, "true", 4) != 0)
            xfail(path, "not at true");
        break;
    case JSON_FALSE:
        if (strncmp(p, "false", 5) != 0)
            xfail(path, "not at false");
        break;
    case JSON_NULL:
        if (strncmp(p, "null", 4) != 0)
            xfail(path, "not at null");
        break;
    }
    x->values++;

    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child)
        {
            size_t n = bg_jsonpos_path_append_key(path, cap, len, key);
            if (bg_jsonpos_lookup_key(x->map, path, &line, &col) != BG_JSONPOS_EXACT)
                xfail(path, "key not found");
            const char *k = xcheck_at(x, line, col);
            if (k == NULL || *k != '"')
                xfail(path, "key position not at '\"'");
            /* A key written without escapes must read back verbatim. */
            const char *r = k + 1, *end = x->text + x->len;
            while (r < end && *r != '"' && *r != '\\')
                r++;
            if (r < end && *r == '"' &&
                ((size_t)(r - k - 1) != strlen(key) || memcmp(k + 1, key, strlen(key)) != 0))
                xfail(path, "key position shows another key");
            walk(x, child, path, cap, n);
            path[len] = '\0';
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t n = bg_jsonpos_path_append_index(path, cap, len, i);
            walk(x, json_array_get(v, i), path, cap, n);
            path[len] = '\0';
        }
    }
}

/* Parse TEXT with jansson and the map; every jansson value must resolve.
 * Returns the number of values checked. */
static size_t cross_check(const char *text, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (root == NULL) {
        print_error("jansson: %d:%d: %s\n", jerr.line, jerr.column, jerr.text);
        fail();
    }
    bg_jsonpos_t *m = bg_jsonpos_build(text, len);
    assert_non_null(m);
    xcheck_t x;
    xcheck_init(&x, text, len, m);
    char path[4096] = BG_JSONPOS_ROOT;
    walk(&x, root, path, sizeof path, 1);
    size_t n = x.values;
    free(x.starts);
    bg_jsonpos_free(m);
    json_decref(root);
    return n;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------------- */
/* Position map                                                            */

static const char *const POLICY =
    "{\n"                                                                      /* 1 */
    "  \"listen\": \"127.0.0.1:8080\",\n"                                      /* 2 */
    "  \"routes\": [\n"                                                        /* 3 */
    "    {\n"                                                                  /* 4 */
    "      \"host\": \"api.partner.com\",\n"                                   /* 5 */
    "      \"upstream\": \"https://api.partner.com\",\n"                       /* 6 */
    "      \"recipient\": \"partner\"\n"                                       /* 7 */
    "    },\n"                                                                 /* 8 */
    "    { \"host\": \"b\", \"tls\": { \"verify\": true } }\n"                 /* 9 */
    "  ],\n"                                                                   /* 10 */
    "  \"recipients\": {\"partner\": {\"country\": \"US\", \"n\": -1.5e3}},\n" /* 11 */
    "  \"empty\": [[], {}, null, false]\n"                                     /* 12 */
    "}\n";

static void test_nested_positions(void **state)
{
    (void)state;
    bg_jsonpos_t *m = build(POLICY);
    assert_non_null(m);
    expect_at(m, 0, "$", BG_JSONPOS_EXACT, 1, 1);
    expect_at(m, 0, "$.listen", BG_JSONPOS_EXACT, 2, 13);
    expect_at(m, 1, "$.listen", BG_JSONPOS_EXACT, 2, 3);
    expect_at(m, 0, "$.routes", BG_JSONPOS_EXACT, 3, 13);
    expect_at(m, 0, "$.routes[0]", BG_JSONPOS_EXACT, 4, 5);
    expect_at(m, 0, "$.routes[0].upstream", BG_JSONPOS_EXACT, 6, 19);
    expect_at(m, 1, "$.routes[0].upstream", BG_JSONPOS_EXACT, 6, 7);
    expect_at(m, 0, "$.routes[0].recipient", BG_JSONPOS_EXACT, 7, 20);
    expect_at(m, 0, "$.routes[1]", BG_JSONPOS_EXACT, 9, 5);
    expect_at(m, 1, "$.routes[1]", BG_JSONPOS_EXACT, 9, 5); /* no key: the value */
    expect_at(m, 0, "$.routes[1].tls", BG_JSONPOS_EXACT, 9, 27);
    expect_at(m, 1, "$.routes[1].tls.verify", BG_JSONPOS_EXACT, 9, 29);
    expect_at(m, 0, "$.routes[1].tls.verify", BG_JSONPOS_EXACT, 9, 39);
    expect_at(m, 0, "$.recipients.partner", BG_JSONPOS_EXACT, 11, 29);
    expect_at(m, 0, "$.recipients.partner.country", BG_JSONPOS_EXACT, 11, 41);
    expect_at(m, 0, "$.recipients.partner.n", BG_JSONPOS_EXACT, 11, 52);
    expect_at(m, 0, "$.empty[0]", BG_JSONPOS_EXACT, 12, 13);
    expect_at(m, 0, "$.empty[1]", BG_JSONPOS_EXACT, 12, 17);
    expect_at(m, 0, "$.empty[2]", BG_JSONPOS_EXACT, 12, 21);
    expect_at(m, 0, "$.empty[3]", BG_JSONPOS_EXACT, 12, 27);
    assert_int_equal(bg_jsonpos_count(m), 20);

    size_t n;
    assert_null(bg_jsonpos_duplicates(m, &n));
    assert_int_equal(n, 0);

    /* Entries come in text order and render their own paths. */
    bg_jsonpos_pos_t pos;
    char path[64];
    assert_int_equal(bg_jsonpos_entry(m, 3, &pos), 0);
    assert_int_equal(bg_jsonpos_entry_path(m, 3, path, sizeof path), strlen("$.routes[0]"));
    assert_string_equal(path, "$.routes[0]");
    assert_int_equal(pos.line, 4);
    assert_int_equal(pos.key_line, 0);
    assert_int_equal(bg_jsonpos_entry(m, 20, &pos), -1);
    assert_int_equal(bg_jsonpos_entry_path(m, 20, path, sizeof path), 0);
    assert_string_equal(path, "");
    /* Truncated rendering keeps snprintf's contract. */
    assert_int_equal(bg_jsonpos_entry_path(m, 5, path, 8), strlen("$.routes[0].upstream"));
    assert_string_equal(path, "$.route");

    bg_jsonpos_free(m);
    assert_true(cross_check(POLICY, strlen(POLICY)) == 20);
}

static void test_utf8_columns(void **state)
{
    (void)state;
    /* Columns count characters: 名字 is 2 columns, not 6 bytes; the emoji
     * (4 bytes each) 1 column each. */
    const char *doc = "{\"名字\": \"张三\", \"年龄\": 30, \"emoji\": \"😀😀\", \"n\": 1,\n"
                      "\"地址\": [\"北京\", {\"é\": \"ü\"}]}";
    bg_jsonpos_t *m = build(doc);
    assert_non_null(m);
    expect_at(m, 1, "$.名字", BG_JSONPOS_EXACT, 1, 2);
    expect_at(m, 0, "$.名字", BG_JSONPOS_EXACT, 1, 8);
    expect_at(m, 1, "$.年龄", BG_JSONPOS_EXACT, 1, 14);
    expect_at(m, 0, "$.年龄", BG_JSONPOS_EXACT, 1, 20);
    expect_at(m, 0, "$.emoji", BG_JSONPOS_EXACT, 1, 33);
    expect_at(m, 0, "$.n", BG_JSONPOS_EXACT, 1, 44);
    expect_at(m, 0, "$.地址[1]", BG_JSONPOS_EXACT, 2, 14);
    expect_at(m, 0, "$.地址[1].é", BG_JSONPOS_EXACT, 2, 20);
    bg_jsonpos_free(m);

    /* Same counting as jansson's own syntax errors: put a bad token where
     * "$.n" is and jansson must name the column the map gives for it. */
    char bad[256];
    snprintf(bad, sizeof bad, "%s", doc);
    char *one = strstr(bad, ": 1,") + 2;
    *one = 'x';
    json_error_t err;
    assert_null(json_loads(bad, 0, &err));
    assert_int_equal(err.line, 1);
    assert_int_equal(err.column, 44);

    cross_check(doc, strlen(doc));
}

static void test_escaped_keys(void **state)
{
    (void)state;
    const char *doc = "{\"a.b\": 1, \"a b\": 2, \"q\\\"uote\": 3, \"\\u540d\": 4, \"\": 5,\n"
                      " \"tab\\there\": 6, \"x-y_z9\": 7, \"\\ud83d\\ude00\": 8,\n"
                      " \"a\\u3000b\": 9, \"[0]\": 10, \"中．文\": 11, \"a\\\\b\": 12, \"$\": 13}";
    static const struct {
        const char *key;  /* as jansson hands it out */
        const char *path; /* what a person reads */
        const char *raw;  /* the key in the text */
    } cases[] = {
        {"a.b", "$[\"a.b\"]", "\"a.b\""},
        {"a b", "$[\"a b\"]", "\"a b\""},
        {"q\"uote", "$[\"q\\\"uote\"]", "\"q\\\"uote\""},
        {"名", "$.名", "\"\\u540d\""},
        {"", "$[\"\"]", "\"\":"},
        {"tab\there", "$[\"tab\\there\"]", "\"tab\\there\""},
        {"x-y_z9", "$.x-y_z9", "\"x-y_z9\""},
        {"😀", "$.😀", "\"\\ud83d"},
        {"a\xE3\x80\x80"
         "b",
         "$[\"a\\u3000b\"]", "\"a\\u3000b\""},
        {"[0]", "$[\"[0]\"]", "\"[0]\""},
        {"中．文", "$[\"中．文\"]", "\"中．文\""},
        {"a\\b", "$[\"a\\\\b\"]", "\"a\\\\b\""},
        {"$", "$[\"$\"]", "\"$\""},
    };
    bg_jsonpos_t *m = build(doc);
    assert_non_null(m);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = path_of_key(cases[i].key);
        if (strcmp(path, cases[i].path) != 0) {
            print_error("key #%zu: path %s, want %s\n", i, path, cases[i].path);
            fail();
        }
        expect_found(m, 1, path, doc, cases[i].raw, 0);
        int line, col, kline, kcol;
        assert_int_equal(bg_jsonpos_lookup(m, path, &line, &col), BG_JSONPOS_EXACT);
        assert_int_equal(bg_jsonpos_lookup_key(m, path, &kline, &kcol), BG_JSONPOS_EXACT);
        assert_int_equal(line, kline);
        assert_true(col > kcol);
    }
    /* The stored paths are the helpers' paths, byte for byte. */
    char path[64];
    bg_jsonpos_entry_path(m, 3, path, sizeof path);
    assert_string_equal(path, "$[\"q\\\"uote\"]");
    bg_jsonpos_free(m);
    cross_check(doc, strlen(doc));
}

static void test_path_helpers(void **state)
{
    (void)state;
    char p[16] = BG_JSONPOS_ROOT;
    size_t n = bg_jsonpos_path_append_key(p, sizeof p, 1, "routes");
    n = bg_jsonpos_path_append_index(p, sizeof p, n, 12);
    assert_string_equal(p, "$.routes[12]");
    assert_int_equal(n, 12);
    /* Too long: truncated, terminated, and the full length reported. */
    size_t full = bg_jsonpos_path_append_key(p, sizeof p, n, "upstream");
    assert_int_equal(full, strlen("$.routes[12].upstream"));
    assert_int_equal(strlen(p), sizeof p - 1);
    assert_string_equal(p, "$.routes[12].up");
    /* Chained past the end: still counts, never writes past CAP. */
    full = bg_jsonpos_path_append_index(p, sizeof p, full, 3);
    assert_int_equal(full, strlen("$.routes[12].upstream[3]"));
    assert_string_equal(p, "$.routes[12].up");
    assert_int_equal(bg_jsonpos_path_append_key(NULL, 0, 0, "a b"), strlen("[\"a b\"]"));
    /* Large indexes and keys that need care. */
    char q[64] = "$";
    bg_jsonpos_path_append_index(q, sizeof q, 1, (size_t)18446744073709551615ULL);
    assert_string_equal(q, "$[18446744073709551615]");
    bg_jsonpos_path_append_key(q, sizeof q, 1, "\x01\x7f\xC2\xA0");
    assert_string_equal(q, "$[\"\\u0001\\u007f\\u00a0\"]");
    bg_jsonpos_path_append_key(q, sizeof q, 1, "bad\xFFutf8");
    assert_string_equal(q, "$[\"bad\\ufffdutf8\"]");
}

static void test_arrays_of_objects(void **state)
{
    (void)state;
    const char *doc = "{\"routes\":[{\"host\":\"a\",\"to\":[1,2]},\n"
                      "{\"host\":\"b\",\"upstream\":\"x\",\"to\":[[3],[4,{\"deep\":[5]}]]}]}";
    bg_jsonpos_t *m = build(doc);
    assert_non_null(m);
    expect_found(m, 0, "$.routes[1].upstream", doc, "\"x\"", 0);
    expect_found(m, 1, "$.routes[1].upstream", doc, "\"upstream\"", 0);
    expect_found(m, 0, "$.routes[0].host", doc, "\"a\"", 0);
    expect_found(m, 0, "$.routes[1].host", doc, "\"b\"", 0);
    expect_found(m, 0, "$.routes[0].to[1]", doc, "2", 0);
    expect_found(m, 0, "$.routes[1].to[1][1].deep[0]", doc, "5", 0);
    expect_found(m, 0, "$.routes[1].to[1][1]", doc, "{\"deep", 0);
    bg_jsonpos_free(m);
    cross_check(doc, strlen(doc));
}

static void test_duplicates(void **state)
{
    (void)state;
    const char *doc = "{\"a\": 1, \"b\": {\"x\": 1, \"x\": 2}, \"a\": 3,\n"
                      " \"c\": {\"y\": [1]}, \"c\": {\"z\": 2},\n"
                      " \"d\": {\"k\": 1}, \"e\": {\"k\": 2}, \"a\": 4}";
    bg_jsonpos_t *m = build(doc);
    assert_non_null(m);
    size_t n;
    const bg_jsonpos_dup_t *d = bg_jsonpos_duplicates(m, &n);
    assert_int_equal(n, 4);
    static const struct {
        const char *path, *later, *earlier;
        int later_nth, earlier_nth;
    } want[] = {
        {"$.b.x", "\"x\"", "\"x\"", 1, 0},
        {"$.a", "\"a\"", "\"a\"", 1, 0},
        {"$.c", "\"c\"", "\"c\"", 1, 0},
        {"$.a", "\"a\"", "\"a\"", 2, 1},
    };
    for (size_t i = 0; i < n; i++) {
        char path[32];
        int line, col;
        bg_jsonpos_entry_path(m, d[i].entry, path, sizeof path);
        assert_string_equal(path, want[i].path);
        find_pos(doc, want[i].later, want[i].later_nth, &line, &col);
        assert_int_equal(d[i].line, line);
        assert_int_equal(d[i].col, col);
        find_pos(doc, want[i].earlier, want[i].earlier_nth, &line, &col);
        assert_int_equal(d[i].first_line, line);
        assert_int_equal(d[i].first_col, col);
    }
    /* Lookups see what jansson keeps: the last definition. */
    expect_found(m, 0, "$.a", doc, "4", 0);
    expect_found(m, 1, "$.a", doc, "\"a\"", 2);
    expect_found(m, 0, "$.b.x", doc, "2", 0);
    expect_found(m, 0, "$.c.z", doc, "2", 1);
    /* A member of the overridden "c" is not in jansson's tree: fallback to
     * the "c" that is. */
    int line, col;
    find_pos(doc, "{\"z\"", 0, &line, &col);
    expect_at(m, 0, "$.c.y[0]", BG_JSONPOS_FALLBACK, line, col);
    /* Equal keys in different objects are not duplicates. */
    expect_found(m, 0, "$.d.k", doc, "1", 3);
    expect_found(m, 0, "$.e.k", doc, "2", 2);
    bg_jsonpos_free(m);
    cross_check(doc, strlen(doc));

    /* The same path under two definitions of a key: only the key repeats. */
    const char *doc2 = "{\"a\":{\"x\":1},\"a\":{\"x\":2,\"x\":3}}";
    m = build(doc2);
    assert_non_null(m);
    d = bg_jsonpos_duplicates(m, &n);
    assert_int_equal(n, 2);
    char path[16];
    bg_jsonpos_entry_path(m, d[0].entry, path, sizeof path);
    assert_string_equal(path, "$.a");
    bg_jsonpos_entry_path(m, d[1].entry, path, sizeof path);
    assert_string_equal(path, "$.a.x");
    assert_int_equal(d[1].first_col, 19);
    expect_at(m, 0, "$.a.x", BG_JSONPOS_EXACT, 1, 29);
    bg_jsonpos_free(m);
}

static void test_fallback(void **state)
{
    (void)state;
    bg_jsonpos_t *m = build(POLICY);
    assert_non_null(m);
    /* A missing member: where its object is. */
    expect_at(m, 0, "$.routes[1].upstream", BG_JSONPOS_FALLBACK, 9, 5);
    expect_at(m, 0, "$.routes[5].host", BG_JSONPOS_FALLBACK, 3, 13);
    expect_at(m, 0, "$.routes[1].tls.nope.deeper", BG_JSONPOS_FALLBACK, 9, 27);
    expect_at(m, 1, "$.routes[1].tls.nope", BG_JSONPOS_FALLBACK, 9, 20);
    expect_at(m, 0, "$.nope", BG_JSONPOS_FALLBACK, 1, 1);
    expect_at(m, 0, "$[0]", BG_JSONPOS_FALLBACK, 1, 1);
    /* Paths that are not canonical or not paths. */
    expect_at(m, 0, "$.routes[01]", BG_JSONPOS_FALLBACK, 3, 13);
    expect_at(m, 0, "$.routes[00]", BG_JSONPOS_FALLBACK, 3, 13);
    expect_at(m, 0, "$.routes[4294967296]", BG_JSONPOS_FALLBACK, 3, 13);
    expect_at(m, 0, "$.routes[99999999999999999999999]", BG_JSONPOS_FALLBACK, 3, 13);
    expect_at(m, 0, "$.listen[0]", BG_JSONPOS_FALLBACK, 2, 13);
    expect_at(m, 0, "$.routes.host", BG_JSONPOS_FALLBACK, 3, 13);
    expect_at(m, 0, "$.empty[1][0]", BG_JSONPOS_FALLBACK, 12, 17);
    expect_at(m, 0, "$[\"routes\"]", BG_JSONPOS_FALLBACK, 1, 1);
    expect_at(m, 0, "$.routes[", BG_JSONPOS_FALLBACK, 3, 13);
    expect_at(m, 0, "$.routes[0].", BG_JSONPOS_FALLBACK, 4, 5);
    expect_at(m, 0, "$.routes[0][\"host", BG_JSONPOS_FALLBACK, 4, 5);
    expect_at(m, 0, "routes", BG_JSONPOS_NONE, 0, 0);
    expect_at(m, 0, "", BG_JSONPOS_NONE, 0, 0);
    expect_at(NULL, 0, "$.routes", BG_JSONPOS_NONE, 0, 0);
    assert_int_equal(bg_jsonpos_lookup(m, NULL, NULL, NULL), BG_JSONPOS_NONE);
    assert_int_equal(bg_jsonpos_lookup(m, "$.routes", NULL, NULL), BG_JSONPOS_EXACT);
    bg_jsonpos_free(m);
    bg_jsonpos_free(NULL);
}

/* Run the map on an exact-size heap copy, so ASan sees any over-read. */
static bg_jsonpos_t *build_exact(const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    bg_jsonpos_t *m = bg_jsonpos_build(copy, len);
    free(copy);
    return m;
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   \n",
        "{",
        "[",
        "]",
        "}",
        "[1,",
        "[1 2]",
        "[1,]",
        "[,1]",
        "{\"a\"",
        "{\"a\":}",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "{,}",
        "{1:2}",
        "{\"a\":1 \"b\":2}",
        "\"abc",
        "\"abc\\",
        "{\"a\\",
        "{\"a\\q\":1}",
        "{\"\\u12\":1}",
        "{\"\\u0000\":1}",
        "{\"\\ud800\":1}",
        "{\"\\udc00\":1}",
        "{\"\\ud800\\u0041\":1}",
        "[]]",
        "[] []",
        "1 2",
        "{\"a\":1}}",
        "[:]",
        "{\"a\"::1}",
        "[1]x",
        "[\"a\"\"b\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        bg_jsonpos_t *m = build_exact(bad[i], strlen(bad[i]));
        if (m != NULL) {
            print_error("accepted: %s\n", bad[i]);
            fail();
        }
        assert_int_equal(errno, EINVAL);
    }
    /* NUL inside the text is not whitespace. */
    assert_null(build_exact("[1,\0 2]", 7));
    assert_null(bg_jsonpos_build(NULL, 3));
    assert_null(bg_jsonpos_build("[]", BG_JSONPOS_MAX_TEXT + 1));
    assert_int_equal(errno, EFBIG);

    /* Every truncation of a valid document is incomplete. */
    size_t len = strlen(POLICY);
    for (size_t i = 0; i < len - 1; i++) {
        bg_jsonpos_t *m = build_exact(POLICY, i);
        if (m != NULL) {
            print_error("accepted prefix of %zu bytes\n", i);
            fail();
        }
    }
    /* Mutations: never crash; whatever jansson accepts, the map accepts,
     * and every value resolves. */
    uint32_t seed = 12345;
    char mut[512];
    size_t accepted = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(mut, POLICY, len);
        for (int k = 0; k < 1 + round % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            mut[at] = "{}[]\",:\\ \n0aé\x80\xff"[(seed >> 8) % 17];
        }
        bg_jsonpos_t *m = build_exact(mut, len);
        json_t *j = json_loadb(mut, len, 0, NULL);
        if (j != NULL) {
            assert_non_null(m);
            accepted++;
            json_decref(j);
            cross_check(mut, len);
        }
        bg_jsonpos_free(m);
    }
    assert_true(accepted > 100);

    /* Depth is not limited by the scanner (jansson stops at 2048). */
    size_t depth = 100000;
    char *deep = malloc(2 * depth);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    bg_jsonpos_t *m = bg_jsonpos_build(deep, 2 * depth);
    assert_non_null(m);
    assert_int_equal(bg_jsonpos_count(m), depth);
    char *path = malloc(3 * depth + 2);
    assert_non_null(path);
    size_t n = 1;
    strcpy(path, "$");
    for (size_t i = 0; i + 1 < depth; i++)
        n = bg_jsonpos_path_append_index(path, 3 * depth + 2, n, 0);
    expect_at(m, 0, path, BG_JSONPOS_EXACT, 1, (int)depth);
    assert_int_equal(bg_jsonpos_entry_path(m, depth - 1, NULL, 0), n);
    bg_jsonpos_free(m);
    assert_null(bg_jsonpos_build(deep, depth)); /* never closed */
    free(path);
    free(deep);
}

/* A policy-shaped document of at least 5 MB, pretty-printed by jansson. */
static char *make_large(size_t min, size_t *len, size_t *routes)
{
    json_t *doc = json_pack("{s:i, s:s, s:[], s:{}}", "version", 1, "name", "出境策略 2024",
                            "routes", "recipients");
    json_t *arr = json_object_get(doc, "routes"), *rcp = json_object_get(doc, "recipients");
    size_t i = 0;
    char *text = NULL;
    /* 1000 routes first to learn their size, then aim just above MIN. */
    for (size_t target = 1000;;) {
        for (; i < target; i++) {
            char id[32], host[64], up[96], prefix[48], who[32];
            snprintf(id, sizeof id, "r%06zu", i);
            snprintf(host, sizeof host, "api%zu.partner.example", i);
            snprintf(up, sizeof up, "https://api%zu.partner.example:8443", i);
            snprintf(prefix, sizeof prefix, "/v1/users/%zu", i);
            snprintf(who, sizeof who, "partner-%zu", i % 97);
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s,s], s:{s:s, s:s, s:s},"
                               " s:b, s:{s:i, s:f}, s:n}",
                               "id", id, "host", host, "path_prefix", prefix, "upstream", up,
                               "recipient", who, "purposes", "support", "billing", "fields",
                               "手机号", "mobile", "身份证号", "id_number", "user.email", "email",
                               "monitor", (int)(i % 2), "limits", "max_body", 1048576, "timeout_ms",
                               2500.5, "note"));
            if (i < 97)
                json_object_set_new(rcp, who,
                                    json_pack("{s:s, s:s, s:[s]}", "entity", "Partner GmbH",
                                              "relationship", "processor", "mechanism",
                                              "标准合同"));
        }
        text = json_dumps(doc, JSON_INDENT(2));
        size_t got = strlen(text);
        if (got >= min)
            break;
        free(text);
        target = i + (min - got) / (got / i) + 1 + i / 100;
    }
    *len = strlen(text);
    *routes = i;
    json_decref(doc);
    return text;
}

static void test_large_document(void **state)
{
    (void)state;
    size_t len, routes;
    char *text = make_large((size_t)5 * 1024 * 1024, &len, &routes);
    assert_true(len >= (size_t)5 * 1024 * 1024);

    double best = 1e9, jbest = 1e9;
    bg_jsonpos_t *m = NULL;
    for (int run = 0; run < 3; run++) {
        bg_jsonpos_free(m);
        double t0 = now_ms();
        m = bg_jsonpos_build(text, len);
        double t1 = now_ms();
        assert_non_null(m);
        json_t *j = json_loadb(text, len, 0, NULL);
        double t2 = now_ms();
        assert_non_null(j);
        json_decref(j);
        if (t1 - t0 < best)
            best = t1 - t0;
        if (t2 - t1 < jbest)
            jbest = t2 - t1;
    }
    printf("jsonpos: %.2f MB, %zu routes, %zu values: build %.1f ms (%.0f MB/s); "
           "jansson json_loadb %.1f ms (best of 3)\n",
           (double)len / 1048576.0, routes, bg_jsonpos_count(m), best,
           (double)len / 1048576.0 / (best / 1000.0), jbest);

    /* Correctness: spot checks, then every value against jansson. */
    char path[128] = "$";
    size_t n = bg_jsonpos_path_append_key(path, sizeof path, 1, "routes");
    n = bg_jsonpos_path_append_index(path, sizeof path, n, routes - 1);
    n = bg_jsonpos_path_append_key(path, sizeof path, n, "fields");
    bg_jsonpos_path_append_key(path, sizeof path, n, "user.email");
    char needle[64];
    snprintf(needle, sizeof needle, "\"r%06zu\"", routes - 1);
    int idline, idcol, line, col;
    find_pos(text, needle, 0, &idline, &idcol);
    assert_int_equal(bg_jsonpos_lookup_key(m, path, &line, &col), BG_JSONPOS_EXACT);
    /* Pretty-printed: "id" ... "purposes" (4 lines), "fields" 9 lines below
     * "id", its third member 3 more, indented by 8. */
    assert_int_equal(line, idline + 12);
    assert_int_equal(col, 9);
    assert_true(strstr(path, "[\"user.email\"]") != NULL);
    size_t dups;
    bg_jsonpos_duplicates(m, &dups);
    assert_int_equal(dups, 0);
    bg_jsonpos_free(m);

    size_t values = cross_check(text, len);
    printf("jsonpos: cross-checked %zu values against jansson\n", values);
    free(text);
}

/* ---------------------------------------------------------------------- */
/* Diagnostics sink                                                        */

static char *print_all(const bg_cfgerr_t *e)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    assert_non_null(f);
    assert_int_equal(bg_cfgerr_print(e, f), 0);
    fclose(f);
    return buf;
}

static void test_cfgerr_lines(void **state)
{
    (void)state;
    bg_jsonpos_t *m = build(POLICY);
    bg_cfgerr_t *e = bg_cfgerr_new("policy.json");
    assert_non_null(e);
    assert_int_equal(bg_cfgerr_addf(e, m, BG_CFGERR_ERROR, "$.routes[0].upstream", 0,
                                    "expected an https URL, got %s", "a string without scheme"),
                     0);
    assert_int_equal(bg_cfgerr_addf(e, m, BG_CFGERR_ERROR, "$.routes[1].tls.verify", 1,
                                    "unknown key \"%s\"", "verify"),
                     0);
    assert_int_equal(bg_cfgerr_addf(e, m, BG_CFGERR_ERROR, "$.routes[1].upstream", 0,
                                    "required key \"upstream\" is missing"),
                     0);
    assert_int_equal(
        bg_cfgerr_addf(e, m, BG_CFGERR_WARNING, "$.listen", 0, "listening on loopback only"), 0);
    bg_cfgerr_add(e, BG_CFGERR_ERROR, 0, 0, NULL, "no route for the health check");
    assert_int_equal(bg_cfgerr_errors(e), 4);
    assert_int_equal(bg_cfgerr_warnings(e), 1);
    assert_int_equal(bg_cfgerr_count(e), 5);
    assert_int_equal(bg_cfgerr_item(e, 2)->approximate, 1);
    assert_int_equal(bg_cfgerr_item(e, 0)->approximate, 0);
    assert_null(bg_cfgerr_item(e, 5));

    bg_cfgerr_sort(e);
    char *out = print_all(e);
    assert_string_equal(out,
                        "policy.json: error: no route for the health check\n"
                        "policy.json:2:13: warning: $.listen: listening on loopback only\n"
                        "policy.json:6:19: error: $.routes[0].upstream: expected an https URL, "
                        "got a string without scheme\n"
                        "policy.json:9:5: error: $.routes[1].upstream: required key "
                        "\"upstream\" is missing\n"
                        "policy.json:9:29: error: $.routes[1].tls.verify: unknown key "
                        "\"verify\"\n");
    free(out);

    /* snprintf contract of the one-line formatter. */
    char small[20];
    const bg_cfgerr_item_t *it = bg_cfgerr_item(e, 1);
    size_t full = bg_cfgerr_format(it, small, sizeof small);
    assert_int_equal(full,
                     strlen("policy.json:2:13: warning: $.listen: listening on loopback only"));
    assert_string_equal(small, "policy.json:2:13: w");

    /* Without a map the position is unknown, not invented. */
    bg_cfgerr_addf(e, NULL, BG_CFGERR_ERROR, "$.x", 1, "no map");
    assert_int_equal(bg_cfgerr_item(e, 5)->line, 0);
    bg_cfgerr_free(e);
    bg_jsonpos_free(m);
}

static void test_cfgerr_json_and_escaping(void **state)
{
    (void)state;
    bg_jsonpos_t *m = build(POLICY);
    bg_cfgerr_t *e = bg_cfgerr_new("dir/policy.json");
    bg_cfgerr_addf(e, m, BG_CFGERR_ERROR, "$[\"a\\nb\"]", 1, "unknown key \"%s\"", "a\nb\x1b");
    bg_cfgerr_addf(e, m, BG_CFGERR_WARNING, "$.routes[0].host", 0, "bad byte \xff here");
    char line[128];
    bg_cfgerr_format(bg_cfgerr_item(e, 0), line, sizeof line);
    assert_string_equal(line, "dir/policy.json:1:1: error: $[\"a\\nb\"]: "
                              "unknown key \"a\\nb\\x1b\"");
    assert_string_equal(bg_cfgerr_item(e, 1)->message, "bad byte \xEF\xBF\xBD here");

    json_t *arr = bg_cfgerr_to_json(e);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 2);
    const char *sev, *file, *path, *msg;
    json_t *jline, *jcol;
    int approx;
    assert_int_equal(json_unpack(json_array_get(arr, 1), "{s:s, s:s, s:o, s:o, s:s, s:s, s:b}",
                                 "severity", &sev, "file", &file, "line", &jline, "column", &jcol,
                                 "path", &path, "message", &msg, "approximate", &approx),
                     0);
    assert_string_equal(sev, "warning");
    assert_string_equal(file, "dir/policy.json");
    assert_int_equal(json_integer_value(jline), 5);
    assert_int_equal(json_integer_value(jcol), 15);
    assert_string_equal(path, "$.routes[0].host");
    assert_string_equal(msg, "bad byte \xEF\xBF\xBD here");
    assert_false(approx);
    assert_int_equal(
        json_unpack(json_array_get(arr, 0), "{s:s, s:b}", "message", &msg, "approximate", &approx),
        0);
    assert_string_equal(msg, "unknown key \"a\nb\x1b\"");
    assert_true(approx);
    /* It must serialise: every string is valid UTF-8. */
    char *dump = json_dumps(arr, JSON_COMPACT);
    assert_non_null(dump);
    free(dump);
    json_decref(arr);

    bg_cfgerr_add(e, BG_CFGERR_ERROR, 0, 0, "", "whole file");
    arr = bg_cfgerr_to_json(e);
    assert_true(json_is_null(json_object_get(json_array_get(arr, 2), "line")));
    assert_true(json_is_null(json_object_get(json_array_get(arr, 2), "column")));
    json_decref(arr);
    bg_cfgerr_free(e);
    bg_jsonpos_free(m);
}

static void test_cfgerr_syntax_duplicates_limit(void **state)
{
    (void)state;
    bg_cfgerr_t *e = bg_cfgerr_new("p.json");

    /* A syntax error straight from jansson. */
    const char *broken = "{\n  \"名\": 1,\n}";
    json_error_t jerr;
    assert_null(json_loads(broken, 0, &jerr));
    bg_cfgerr_add_json_error(e, &jerr);
    char line[400];
    bg_cfgerr_format(bg_cfgerr_item(e, 0), line, sizeof line);
    char want[400];
    snprintf(want, sizeof want, "p.json:%d:%d: error: %s", jerr.line, jerr.column, jerr.text);
    assert_string_equal(line, want);
    assert_int_equal(jerr.line, 3);

    /* Duplicates become errors at the later key. */
    bg_cfgerr_set_file(e, "q.json");
    bg_jsonpos_t *m = build("{\"a\": 1,\n \"a\": 2, \"b\": {\"k\": 0, \"k\": 0}}");
    assert_int_equal(bg_cfgerr_add_duplicates(e, m), 0);
    assert_int_equal(bg_cfgerr_errors(e), 3);
    bg_cfgerr_format(bg_cfgerr_item(e, 1), line, sizeof line);
    assert_string_equal(line, "q.json:2:2: error: $.a: duplicate key: it silently replaces the "
                              "definition at line 1, column 2; remove one of them");
    bg_cfgerr_format(bg_cfgerr_item(e, 2), line, sizeof line);
    assert_string_equal(line, "q.json:2:24: error: $.b.k: duplicate key: it silently replaces "
                              "the definition at line 2, column 16; remove one of them");
    bg_jsonpos_free(m);

    /* Sorting keeps files in the order they were named. */
    bg_cfgerr_set_file(e, "p.json");
    bg_cfgerr_add(e, BG_CFGERR_ERROR, 1, 1, "$", "first line of p");
    bg_cfgerr_sort(e);
    assert_string_equal(bg_cfgerr_item(e, 0)->message, "first line of p");
    assert_string_equal(bg_cfgerr_item(e, 1)->file, "p.json");
    assert_string_equal(bg_cfgerr_item(e, 2)->file, "q.json");

    /* Over the limit: counted, not stored, and said so. */
    bg_cfgerr_set_limit(e, 5);
    assert_int_equal(bg_cfgerr_add(e, BG_CFGERR_WARNING, 1, 1, "$", "kept"), 0);
    assert_int_equal(bg_cfgerr_add(e, BG_CFGERR_ERROR, 1, 1, "$", "dropped"), -1);
    assert_int_equal(bg_cfgerr_addf(e, NULL, BG_CFGERR_ERROR, "$", 0, "dropped %d", 2), -1);
    assert_int_equal(bg_cfgerr_count(e), 5);
    assert_int_equal(bg_cfgerr_errors(e), 6);
    assert_int_equal(bg_cfgerr_warnings(e), 1);
    char *out = print_all(e);
    assert_non_null(strstr(out, "p.json: note: 2 more diagnostics not shown\n"));
    assert_null(strstr(out, "dropped"));
    free(out);
    bg_cfgerr_free(e);
    bg_cfgerr_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_positions),
        cmocka_unit_test(test_utf8_columns),
        cmocka_unit_test(test_escaped_keys),
        cmocka_unit_test(test_path_helpers),
        cmocka_unit_test(test_arrays_of_objects),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_large_document),
        cmocka_unit_test(test_cfgerr_lines),
        cmocka_unit_test(test_cfgerr_json_and_escaping),
        cmocka_unit_test(test_cfgerr_syntax_duplicates_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
