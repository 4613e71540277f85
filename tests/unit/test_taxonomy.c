/*
 * Taxonomy (inspect/taxonomy): the shipped config/categories.json loads and
 * describes every category the detectors report; broken files are refused
 * with errors that name the file, the line and column, the path and the
 * problem; policy extensions and overrides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfgerr.h"
#include "inspect/detect.h"
#include "inspect/taxonomy.h"

static char g_path[1024];

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("BG_SOURCE_DIR");
    snprintf(g_path, sizeof g_path, "%s/config/categories.json", src ? src : ".");
    return 0;
}

static void print_errs(const bg_cfgerr_t *e)
{
    char line[1024];
    for (size_t i = 0; i < bg_cfgerr_count(e); i++) {
        bg_cfgerr_format(bg_cfgerr_item(e, i), line, sizeof line);
        print_error("  %s\n", line);
    }
}

/* Some stored error's formatted line contains every one of the NULL-
 * terminated substrings. */
static int has_error(const bg_cfgerr_t *e, ...)
{
    char line[1024];
    for (size_t i = 0; i < bg_cfgerr_count(e); i++) {
        bg_cfgerr_format(bg_cfgerr_item(e, i), line, sizeof line);
        va_list ap;
        va_start(ap, e);
        int all = 1;
        for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *))
            all &= strstr(line, s) != NULL;
        va_end(ap);
        if (all)
            return 1;
    }
    return 0;
}

static bg_taxonomy_t *load_shipped(void)
{
    bg_cfgerr_t *e = bg_cfgerr_new(g_path);
    assert_non_null(e);
    bg_taxonomy_t *t = bg_taxonomy_load(g_path, e);
    if (t == NULL || bg_cfgerr_errors(e) != 0) {
        print_errs(e);
        fail();
    }
    bg_cfgerr_free(e);
    return t;
}

static void test_shipped_file(void **state)
{
    (void)state;
    bg_taxonomy_t *t = load_shipped();
    assert_non_null(bg_taxonomy_version(t));
    assert_true(bg_taxonomy_count(t) >= 50);

    /* every category a detector reports is described */
    for (int c = BG_CAT_NONE + 1; c < BG_CAT__COUNT; c++) {
        const bg_taxonomy_cat_t *cat = bg_taxonomy_builtin(t, (bg_detect_cat_t)c);
        assert_non_null(cat);
        assert_string_equal(cat->id, bg_detect_category_id((bg_detect_cat_t)c));
        assert_int_equal(cat->builtin, c);
    }
    assert_null(bg_taxonomy_builtin(t, BG_CAT_NONE));
    assert_null(bg_taxonomy_builtin(t, BG_CAT__COUNT));

    /* sorted, labelled, cited */
    for (size_t i = 0; i < bg_taxonomy_count(t); i++) {
        const bg_taxonomy_cat_t *c = bg_taxonomy_at(t, i);
        assert_non_null(c->label_en);
        assert_non_null(c->label_zh);
        assert_true(c->ncitations >= 1);
        if (i > 0)
            assert_true(strcmp(bg_taxonomy_at(t, i - 1)->id, c->id) < 0);
        assert_ptr_equal(bg_taxonomy_find(t, c->id, strlen(c->id)), c);
        assert_int_equal(c->from_policy, 0);
    }
    assert_null(bg_taxonomy_at(t, bg_taxonomy_count(t)));

    /* the decisions compliance relies on */
    static const struct {
        const char *id;
        int sensitive, never_export;
    } want[] = {
        {"cn_resident_id", 1, 0}, /* stricter reading: GB/T 35273-2020 */
        {"bank_card", 1, 0},      {"financial_account", 1, 0},
        {"gps_location", 1, 0},   {"whereabouts", 1, 0},
        {"biometrics", 1, 0},     {"health", 1, 0},
        {"religion", 1, 0},       {"specific_identity", 1, 0},
        {"minor_under_14", 1, 0}, {"credentials", 1, 1},
        {"passport", 1, 0},       {"hmt_residence_permit", 1, 0},
        {"email", 0, 0},          {"cn_mobile", 0, 0},
        {"person_name", 0, 0},    {"ip_address", 0, 0},
        {"imei", 0, 0},           {"device_id", 0, 0},
        {"birth_date", 0, 0},     {"installed_apps", 0, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const bg_taxonomy_cat_t *c = bg_taxonomy_find(t, want[i].id, strlen(want[i].id));
        if (c == NULL || c->sensitive != want[i].sensitive ||
            c->never_export != want[i].never_export) {
            print_error("category %s: sensitive/never_export wrong or missing\n", want[i].id);
            fail();
        }
    }
    const bg_taxonomy_cat_t *id = bg_taxonomy_find(t, "cn_resident_id", 14);
    assert_non_null(strstr(id->note, "GB/T 45574-2025"));
    assert_null(bg_taxonomy_find(t, "cn_resident", 11));
    assert_null(bg_taxonomy_find(t, "zzz", 3));
    assert_null(bg_taxonomy_find(t, NULL, 0));
    bg_taxonomy_free(t);
}

/* Every detector is documented under some category (docs come from it). */
static void test_every_detector_listed(void **state)
{
    (void)state;
    json_error_t err;
    json_t *root = json_load_file(g_path, 0, &err);
    assert_non_null(root);
    json_t *cats = json_object_get(root, "categories");
    for (int d = 0; d < BG_DET__COUNT; d++) {
        const char *name = bg_detect_detector_name((bg_detect_id_t)d);
        int found = 0;
        const char *k;
        json_t *v;
        json_object_foreach(cats, k, v)
        {
            size_t i;
            json_t *x;
            json_array_foreach(json_object_get(v, "detectors"), i, x)
            {
                found |= strcmp(json_string_value(x), name) == 0;
            }
        }
        if (!found) {
            print_error("detector %s is not listed under any category\n", name);
            fail();
        }
    }
    json_decref(root);
}

/* docs/categories.md describes every category of the file (its tables are
 * generated from it; this catches a file edited without the docs). */
static void test_docs_cover_file(void **state)
{
    (void)state;
    const char *src = getenv("BG_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/categories.md", src ? src : ".");
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof doc - 1, fp);
    fclose(fp);
    doc[n] = 0;
    bg_taxonomy_t *t = load_shipped();
    for (size_t i = 0; i < bg_taxonomy_count(t); i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "| `%s` |", bg_taxonomy_at(t, i)->id);
        if (strstr(doc, needle) == NULL) {
            print_error("docs/categories.md has no row for %s\n", bg_taxonomy_at(t, i)->id);
            fail();
        }
    }
    bg_taxonomy_free(t);
}

/* Parse TEXT; expect failure and return the sink for inspection. */
static bg_cfgerr_t *parse_bad(const char *text)
{
    bg_cfgerr_t *e = bg_cfgerr_new("bad.json");
    assert_non_null(e);
    bg_taxonomy_t *t = bg_taxonomy_parse(text, strlen(text), e);
    if (t != NULL || bg_cfgerr_errors(e) == 0) {
        print_error("accepted:\n%s\n", text);
        fail();
    }
    return e;
}

#define GOOD_CAT                                                                                   \
    "{\"label\": {\"en\": \"E-mail\", \"zh\": \"邮箱\"}, \"sensitive\": false, "                 \
    "\"citations\": [\"PIPL Art. 4\"]}"

static void test_errors(void **state)
{
    (void)state;
    bg_cfgerr_t *e;

    e = parse_bad("{\"taxonomy_version\": \"1\",\n \"categories\": {\n");
    assert_true(has_error(e, "bad.json:", NULL));
    bg_cfgerr_free(e);

    e = parse_bad("[]");
    assert_true(has_error(e, "bad.json", "$", "must be an object", NULL));
    bg_cfgerr_free(e);

    /* mistyped field, at its line */
    e = parse_bad("{\"taxonomy_version\": \"1\", \"categories\": {\n"
                  "  \"email\": {\"label\": {\"en\": \"E\", \"zh\": \"邮\"},\n"
                  "    \"sensitive\": \"yes\", \"citations\": [\"PIPL Art. 4\"]}}}");
    assert_true(
        has_error(e, "bad.json:3:", "$.categories.email.sensitive", "must be true or false", NULL));
    bg_cfgerr_free(e);

    /* missing fields */
    e = parse_bad("{\"taxonomy_version\": \"1\", \"categories\": {\n"
                  "  \"email\": {\"label\": {\"en\": \"E\"}}}}");
    assert_true(has_error(e, "$.categories.email", "missing \"sensitive\"", NULL));
    assert_true(has_error(e, "$.categories.email", "missing \"citations\"", NULL));
    assert_true(has_error(e, "$.categories.email.label", "missing \"zh\"", NULL));
    bg_cfgerr_free(e);

    /* unknown key, pointed at the key */
    e = parse_bad("{\"taxonomy_version\": \"1\", \"categories\": {\n"
                  "  \"email\": {\"label\": {\"en\": \"E\", \"zh\": \"邮\"}, \"sensitive\": true,\n"
                  "   \"citations\": [\"x\"], \"sensitiv\": false}}}");
    assert_true(has_error(e, "bad.json:3:", "$.categories.email.sensitiv",
                          "unknown key \"sensitiv\"", "allowed here", NULL));
    bg_cfgerr_free(e);

    /* duplicate key: the second silently wins in JSON parsers */
    e = parse_bad("{\"taxonomy_version\": \"1\", \"categories\": {\n"
                  "  \"email\": " GOOD_CAT ",\n  \"email\": " GOOD_CAT "}}");
    assert_true(has_error(e, "bad.json:3:", NULL));
    bg_cfgerr_free(e);

    /* bad values */
    e = parse_bad("{\"taxonomy_version\": \"1\", \"categories\": {\n"
                  "  \"Bad-Id\": " GOOD_CAT ",\n"
                  "  \"x\": {\"label\": {\"en\": \"\", \"zh\": \"x\"}, \"sensitive\": true,\n"
                  "    \"citations\": [], \"detectors\": [\"regex_magic\"],\n"
                  "    \"standards\": {\"GB/T 35273-2020\": \"maybe\"}}}}");
    assert_true(has_error(e, "category id must be", NULL));
    assert_true(has_error(e, "$.categories.x.label.en", "non-empty string", NULL));
    assert_true(has_error(e, "$.categories.x.citations", "non-empty list", NULL));
    assert_true(has_error(e, "$.categories.x.detectors[0]", "not a detector name", NULL));
    assert_true(
        has_error(e, "$.categories.x.standards[\"GB/T 35273-2020\"]", "must be one of", NULL));
    bg_cfgerr_free(e);

    /* a valid category but the built-in ones missing */
    e = parse_bad("{\"taxonomy_version\": \"1\", \"categories\": {\"email\": " GOOD_CAT "}}");
    assert_true(has_error(e, "missing category \"imei\"", "the detectors report it", NULL));
    assert_false(has_error(e, "missing category \"email\"", NULL));
    bg_cfgerr_free(e);

    /* no version, unknown top-level key */
    e = parse_bad("{\"categories\": {}, \"extra\": 1}");
    assert_true(has_error(e, "missing \"taxonomy_version\"", NULL));
    assert_true(has_error(e, "$.extra", "unknown key", NULL));
    bg_cfgerr_free(e);

    /* unreadable file */
    e = bg_cfgerr_new("x");
    assert_null(bg_taxonomy_load("/nonexistent/categories.json", e));
    assert_true(has_error(e, "/nonexistent/categories.json", "cannot be read", NULL));
    bg_cfgerr_free(e);

    /* no sink: still refused */
    assert_null(bg_taxonomy_parse("{}", 2, NULL));
}

static void test_extend_and_override(void **state)
{
    (void)state;
    bg_taxonomy_t *t = load_shipped();
    size_t before = bg_taxonomy_count(t);
    const bg_taxonomy_cat_t *email = bg_taxonomy_find(t, "email", 5);

    json_error_t jerr;
    json_t *ext = json_loads("{\"loyalty_member_no\": {\"label\": {\"en\": \"Loyalty number\", "
                             "\"zh\": \"会员号\"}, \"sensitive\": false, \"group\": \"online\", "
                             "\"citations\": [\"PIPL Art. 4\"]}}",
                             0, &jerr);
    assert_non_null(ext);
    bg_cfgerr_t *e = bg_cfgerr_new("policy.json");
    assert_int_equal(bg_taxonomy_extend(t, ext, NULL, "$.categories", e), 0);
    assert_int_equal(bg_cfgerr_errors(e), 0);
    json_decref(ext); /* the taxonomy keeps its own reference */
    assert_int_equal(bg_taxonomy_count(t), before + 1);
    const bg_taxonomy_cat_t *c = bg_taxonomy_find(t, "loyalty_member_no", 17);
    assert_non_null(c);
    assert_int_equal(c->from_policy, 1);
    assert_string_equal(c->label_zh, "会员号");
    assert_int_equal(c->builtin, BG_CAT_NONE);
    /* earlier pointers survive the extension */
    assert_ptr_equal(bg_taxonomy_find(t, "email", 5), email);

    /* redefining a shipped category is refused, and nothing is added */
    ext = json_loads("{\"aaa_new\": " GOOD_CAT ", \"email\": " GOOD_CAT "}", 0, &jerr);
    assert_int_equal(bg_taxonomy_extend(t, ext, NULL, "$.categories", e), -1);
    assert_true(has_error(e, "policy.json", "$.categories.email", "already defined", NULL));
    assert_null(bg_taxonomy_find(t, "aaa_new", 7));
    assert_int_equal(bg_taxonomy_count(t), before + 1);
    json_decref(ext);
    assert_int_equal(bg_taxonomy_extend(t, NULL, NULL, "$.categories", e), -1);

    /* override: GB/T 45574-2025's reading of the ID number */
    assert_int_equal(bg_taxonomy_set_sensitive(t, "cn_resident_id", 0), 0);
    c = bg_taxonomy_builtin(t, BG_CAT_CN_RESIDENT_ID);
    assert_int_equal(c->sensitive, 0);
    assert_int_equal(c->sensitive_default, 1);
    assert_int_equal(bg_taxonomy_set_sensitive(t, "no_such_category", 1), -1);
    bg_cfgerr_free(e);
    bg_taxonomy_free(t);
    bg_taxonomy_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_file),        cmocka_unit_test(test_every_detector_listed),
        cmocka_unit_test(test_docs_cover_file),     cmocka_unit_test(test_errors),
        cmocka_unit_test(test_extend_and_override),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
