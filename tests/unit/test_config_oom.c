/*
 * Out of memory while loading a configuration (issue 18). The daemon
 * reloads on SIGHUP: a load that runs out of memory must fail cleanly, so
 * the running configuration stays, and never crash the daemon or hand back
 * a configuration with a route, a rule or a key missing.
 *
 * No allocator is replaced: each case forks, caps the child's address
 * space (RLIMIT_AS) a little above what it already uses, and loads a real
 * seed pack with bg_config_check. Across the sweep the load runs out at
 * many different allocations; every child must either fail with errors or
 * return the whole configuration. Under AddressSanitizer (which reserves
 * terabytes of shadow address space) the cap cannot work: skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/cfgerr.h"
#include "config/config.h"

#if defined(__SANITIZE_ADDRESS__)
#define BG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BG_ASAN 1
#endif
#endif

/* The process's current address-space size in bytes, or 0. */
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu", &pages) != 1)
        pages = 0;
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static char g_path[1024];

/* Load the pack: 10 when it loaded whole (ROUTES routes, a policy), 11
 * when it failed with errors, 3 when a configuration came back incomplete,
 * 4 when it failed without saying why. */
static int load_once(int routes)
{
    bg_config_opts_t opts = {.no_keys = 1};
    bg_cfgerr_t *diag = NULL;
    int nerr = 0;
    bg_config_t *cfg = bg_config_check(g_path, &opts, &diag, &nerr);
    int rc = 11;
    if (cfg != NULL)
        rc = cfg->nroutes == routes && cfg->policy != NULL && nerr == 0 ? 10 : 3;
    else if (nerr <= 0)
        rc = 4;
    bg_config_unref(cfg);
    bg_cfgerr_free(diag);
    return rc;
}

/* Load in a child whose address space is capped EXTRA bytes above what it
 * uses. Asserts the child neither crashed nor returned a partial
 * configuration; returns 10 when the load came back whole, 11 when it
 * failed with errors. */
static int run_capped(size_t extra, int routes)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Grow the heap by what is asked, not 128 KiB at a time: the load
         * then runs out at the allocation the cap falls on. */
        mallopt(M_TOP_PAD, 0);
        size_t base = vm_size();
        struct rlimit rl = {base + extra, base + extra};
        if (base == 0 || setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(5);
        _exit(load_once(routes));
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || (WEXITSTATUS(st) != 10 && WEXITSTATUS(st) != 11))
        fprintf(stderr, "address space +%zu KiB: %s %d\n", extra >> 10,
                WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    assert_true(WIFEXITED(st));
    assert_in_range(WEXITSTATUS(st), 10, 11);
    return WEXITSTATUS(st);
}

static void test_load_out_of_memory(void **state)
{
    (void)state;
#ifdef BG_ASAN
    skip();
#endif
    const char *src = getenv("BG_SOURCE_DIR");
    snprintf(g_path, sizeof g_path, "%s/config/packs/wking.json", src != NULL ? src : ".");
    /* Whole when memory is plenty: in a child, so that this process's heap
     * keeps no free memory a capped child could load into without growing
     * it. Exit status: the number of routes. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bg_config_opts_t opts = {.no_keys = 1};
        bg_cfgerr_t *diag = NULL;
        int nerr = 0;
        bg_config_t *cfg = bg_config_check(g_path, &opts, &diag, &nerr);
        if (cfg == NULL)
            bg_cfgerr_print(diag, stderr);
        _exit(cfg != NULL && cfg->nroutes > 0 && cfg->nroutes < 200 ? cfg->nroutes : 255);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    int routes = WEXITSTATUS(st);
    assert_in_range(routes, 1, 199);

    /* Coarse: 16 KiB to 48 MiB more, in steps of a quarter. Then fine:
     * 4 KiB steps from the largest cap that failed to the smallest that
     * loaded whole, where the load runs out at one allocation after
     * another (the country database, mapped in the middle, is most of the
     * memory; the policy's allocations come after it). */
    int failed = 0, whole = 0;
    size_t smallest_whole = 0, last_failed = 0;
    for (size_t extra = 16 << 10; extra <= (size_t)48 << 20; extra += extra / 4) {
        int o = run_capped(extra, routes);
        whole += o == 10;
        failed += o == 11;
        if (o == 10 && smallest_whole == 0)
            smallest_whole = extra;
        if (o == 11 && smallest_whole == 0)
            last_failed = extra;
    }
    assert_true(smallest_whole > 0);
    for (size_t extra = last_failed; extra < smallest_whole; extra += 4096) {
        int o = run_capped(extra, routes);
        whole += o == 10;
        failed += o == 11;
    }
    /* The sweep reached both outcomes: it did test running out. */
    fprintf(stderr, "loads: %d whole, %d failed cleanly\n", whole, failed);
    assert_true(failed > 0);
    assert_true(whole > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
