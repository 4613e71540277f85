/*
 * proxy/evmem.c: libevent's allocator with a per-thread cache of freed
 * buffer chains.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/asan.h"
#include "proxy/evmem.h"

/* Blocks hold what is written into them, at every size, through realloc
 * too; none is kept by a thread that did not ask to keep them. */
static void test_blocks_are_memory(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 15, 16, 136, 1023, 1024, 1025, 4096, 65536, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = bg_evmem_malloc(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, (int)(i + 1), n);
        unsigned char *q = bg_evmem_realloc(p, n + 3000);
        assert_non_null(q);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(q[k], (unsigned char)(i + 1));
        memset(q, 0xee, n + 3000);
        bg_evmem_free(q);
    }
    bg_evmem_free(NULL);
    unsigned char *r = bg_evmem_realloc(NULL, 2048);
    assert_non_null(r);
    bg_evmem_free(r);
    assert_int_equal(bg_evmem_thread_kept(), 0);
}

/* A worker keeps freed chains of the sizes libevent asks for (powers of two
 * from 1 kB to 64 kB) and hands the same block out again; at most 32 of a
 * size and 512 kB in all; other sizes are not kept; thread_done gives them
 * all back. */
static void test_a_worker_keeps_chains(void **state)
{
    (void)state;
    bg_evmem_thread_cache();
    void *a = bg_evmem_malloc(8192);
    assert_non_null(a);
    bg_evmem_free(a);
    void *b = bg_evmem_malloc(8192);
    if (!BG_ASAN) {
        assert_ptr_equal(a, b); /* the same block, again */
    }
    bg_evmem_free(b);
    void *odd = bg_evmem_malloc(3000);
    bg_evmem_free(odd);
    void *big = bg_evmem_malloc(131072);
    bg_evmem_free(big);
    assert_int_equal(bg_evmem_thread_kept(), BG_ASAN ? 0 : 1);

    void *many[40];
    for (int i = 0; i < 40; i++) {
        many[i] = bg_evmem_malloc(1024);
        assert_non_null(many[i]);
    }
    for (int i = 0; i < 40; i++)
        bg_evmem_free(many[i]);
    assert_int_equal(bg_evmem_thread_kept(), BG_ASAN ? 0 : 1 + 32);
    /* 512 kB at most in all: eight of 64 kB fill it (with the 40 kB kept,
     * seven fit), the rest is freed. */
    void *large[10];
    for (int i = 0; i < 10; i++)
        large[i] = bg_evmem_malloc(65536);
    for (int i = 0; i < 10; i++)
        bg_evmem_free(large[i]);
    assert_int_equal(bg_evmem_thread_kept(), BG_ASAN ? 0 : 1 + 32 + 7);
    bg_evmem_thread_done();
    assert_int_equal(bg_evmem_thread_kept(), 0);
    /* After done, nothing is kept any more. */
    void *c = bg_evmem_malloc(4096);
    bg_evmem_free(c);
    assert_int_equal(bg_evmem_thread_kept(), 0);
}

/* A block kept by one thread may have been allocated by another. */
static void *alloc_one(void *arg)
{
    (void)arg;
    return bg_evmem_malloc(16384);
}

static void test_freed_on_another_thread(void **state)
{
    (void)state;
    pthread_t t;
    void *p = NULL;
    assert_int_equal(pthread_create(&t, NULL, alloc_one, NULL), 0);
    assert_int_equal(pthread_join(t, &p), 0);
    assert_non_null(p);
    bg_evmem_thread_cache();
    bg_evmem_free(p);
    assert_int_equal(bg_evmem_thread_kept(), BG_ASAN ? 0 : 1);
    bg_evmem_thread_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_are_memory),
        cmocka_unit_test(test_a_worker_keeps_chains),
        cmocka_unit_test(test_freed_on_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
