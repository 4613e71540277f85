/*
 * bg_grow (common/grow.c): every growing array in the configuration loader
 * and the consent store doubles through it. What a user relies on: a list
 * of any length loads (the elements survive every move), and a size that
 * would wrap around size_t fails cleanly instead of handing back a small
 * buffer the caller then overruns (a SIGHUP reload keeps the old
 * configuration).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "common/grow.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_keeps_elements),
        cmocka_unit_test(test_grow_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
