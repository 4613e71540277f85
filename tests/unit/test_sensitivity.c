/*
 * The compiled-in sensitivity of every built-in category (used when no
 * policy overrides it) must say what config/categories.json — the document
 * compliance reviews — says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/cfgerr.h"
#include "inspect/inspect.h"
#include "inspect/taxonomy.h"

static void test_builtin_sensitivity_matches_categories_file(void **state)
{
    (void)state;
    const char *src = getenv("BG_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/config/categories.json", src != NULL ? src : ".");
    bg_cfgerr_t *errs = bg_cfgerr_new(path);
    bg_taxonomy_t *tax = bg_taxonomy_load(path, errs);
    if (tax == NULL)
        bg_cfgerr_print(errs, stderr);
    assert_non_null(tax);
    int checked = 0;
    for (int c = 1; c < BG_CAT__COUNT; c++) {
        const bg_taxonomy_cat_t *t = bg_taxonomy_builtin(tax, (bg_detect_cat_t)c);
        assert_non_null(t);
        if (t->sensitive != bg_inspect_default_sensitive((bg_detect_cat_t)c))
            fail_msg("%s: categories.json says sensitive=%d, the compiled-in default says %d",
                     t->id, t->sensitive, bg_inspect_default_sensitive((bg_detect_cat_t)c));
        checked++;
    }
    assert_int_equal(checked, BG_CAT__COUNT - 1);
    bg_taxonomy_free(tax);
    bg_cfgerr_free(errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_sensitivity_matches_categories_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
