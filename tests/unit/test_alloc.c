/*
 * Allocation in the configuration loader and the consent store.
 *
 * bg_grow (common/grow.c): every growing array there doubles through it.
 * What a user relies on: a list of any length loads (the elements survive
 * every move), and a size that would wrap around size_t fails cleanly
 * instead of handing back a small buffer the caller then overruns.
 *
 * bg_cfg_alloc / bg_cfg_dup (config/cfgutil.c): a failed allocation during
 * a load is counted, and bg_config_load fails the whole load when the count
 * grew, so a reload (SIGHUP) that runs out of memory keeps the running
 * configuration rather than applying one with a route or a key missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "common/grow.h"
#include "config/cfgutil.h"

static void test_grow_keeps_elements(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0;
    for (int i = 0; i < 1000; i++) {
        if ((size_t)i == cap) {
            int *b = bg_grow(a, &cap, (size_t)i + 1, sizeof *a, 16);
            assert_non_null(b);
            a = b;
        }
        assert_true(cap > (size_t)i);
        a[i] = i * 7;
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(a[i], i * 7);
    /* Doubling from the minimum: 16, 32, ... 1024. */
    assert_int_equal(cap, 1024);
    /* Enough room already: the same array, no allocation. */
    assert_ptr_equal(bg_grow(a, &cap, 10, sizeof *a, 16), a);
    assert_int_equal(cap, 1024);
    /* A jump past double goes straight to a doubling that holds it. */
    int *b = bg_grow(a, &cap, 5000, sizeof *a, 16);
    assert_non_null(b);
    assert_int_equal(cap, 8192);
    assert_int_equal(b[999], 999 * 7);
    free(b);
}

static void test_grow_overflow(void **state)
{
    (void)state;
    size_t cap = 4;
    char *p = malloc(4 * 16);
    assert_non_null(p);
    p[0] = 'x';
    /* NEED * SIZE wraps: refused, the old array and capacity untouched. */
    errno = 0;
    assert_null(bg_grow(p, &cap, SIZE_MAX / 8, 16, 16));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(cap, 4);
    assert_int_equal(p[0], 'x');
    free(p);
}

static void test_cfg_alloc_counted(void **state)
{
    (void)state;
    unsigned long before = bg_cfg_oom_count();
    /* Success is not counted; NULL in is NULL out, not a failure. */
    char *d = bg_cfg_dup("route-1");
    assert_string_equal(d, "route-1");
    free(d);
    assert_null(bg_cfg_dup(NULL));
    void *z = bg_cfg_alloc(0, 8); /* calloc(0) may be NULL: never for a config */
    assert_non_null(z);
    free(z);
    assert_int_equal(bg_cfg_oom_count(), before);
    /* A size that wraps is refused before calloc, and counted. */
    assert_null(bg_cfg_alloc(SIZE_MAX / 4, 8));
    assert_int_equal(bg_cfg_oom_count(), before + 1);
    /* A jansson value the loader could not make is counted too. */
    bg_cfg_oom();
    assert_int_equal(bg_cfg_oom_count(), before + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_keeps_elements),
        cmocka_unit_test(test_grow_overflow),
        cmocka_unit_test(test_cfg_alloc_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
