/*
 * Out of memory while loading (issue 18).
 *
 * The configuration: the daemon reloads on SIGHUP, and a load that runs
 * out of memory must fail cleanly, so the running configuration stays,
 * never crash the daemon or hand back a configuration with a route, a rule
 * or a key missing.
 *
 * The consent journal: read at start and again whenever another process
 * (the CLI) wrote it; running out must fail the read, never crash or
 * answer from fewer consents than the journal holds.
 *
 * No allocator is replaced: each case forks, caps the child's address
 * space (RLIMIT_AS) a little above what it already uses, and loads a real
 * seed pack (or a real journal). Across the sweep the load runs out at
 * many different allocations; every child must either fail with errors or
 * return the whole result. Under AddressSanitizer (which reserves
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

#include "common/asan.h"
#include "config/cfgerr.h"
#include "config/config.h"
#include "policy/consent.h"

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
#if BG_ASAN
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

#define JOURNAL_GRANTS 300

/* A journal of JOURNAL_GRANTS grants (every fifth withdrawn), as the file
 * backend writes it; malloc'd. */
static char *make_journal(size_t *len)
{
    size_t cap = 512 + (size_t)JOURNAL_GRANTS * 600, n = 0;
    char *j = malloc(cap);
    assert_non_null(j);
    n += (size_t)snprintf(
        j + n, cap - n,
        "{\"op\":\"journal\",\"format\":\"bordergate-consent\",\"version\":1,"
        "\"key_check\":\"0123456789abcdef\",\"created_at\":\"2026-01-01T00:00:00Z\"}\n");
    for (int i = 0; i < JOURNAL_GRANTS; i++) {
        n += (size_t)snprintf(j + n, cap - n,
                              "{\"op\":\"grant\",\"id\":\"c-%016x\",\"subject\":\"%064x\","
                              "\"recipient\":\"crm-%d\",\"purpose\":\"support\",\"region\":\"US\","
                              "\"sensitive\":false,\"guardian\":false,"
                              "\"granted_at\":\"2026-02-01T00:00:00Z\",\"recorded_by\":\"test\"}\n",
                              i + 1, i / 3 + 1, i % 7);
        if (i % 5 == 0)
            n += (size_t)snprintf(j + n, cap - n,
                                  "{\"op\":\"withdraw\",\"id\":\"c-%016x\","
                                  "\"at\":\"2026-03-01T00:00:00Z\",\"by\":\"test\"}\n",
                                  i + 1);
    }
    assert_true(n < cap);
    *len = n;
    return j;
}

/* Check the journal in a child capped EXTRA bytes above what it uses: 10
 * when every consent was read and the compacted copy made (the same as
 * REF, when given), 11 when it failed with a message; anything else fails
 * the test. */
static int journal_capped(const char *j, size_t len, const char *ref, size_t extra)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        mallopt(M_TOP_PAD, 0);
        size_t base = vm_size();
        struct rlimit rl = {base + extra, base + extra};
        if (base == 0 || setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(5);
        char err[512] = "";
        char *rt = NULL;
        size_t torn = 0;
        long n = bg_consent_journal_check(j, len, "j", &torn, &rt, err, sizeof err);
        if (n == JOURNAL_GRANTS && rt != NULL && torn == 0)
            _exit(ref == NULL || strcmp(rt, ref) == 0 ? 10 : 3); /* never a line short */
        _exit(n == -1 && err[0] != '\0' ? 11 : 3);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || (WEXITSTATUS(st) != 10 && WEXITSTATUS(st) != 11))
        fprintf(stderr, "journal, address space +%zu KiB: %s %d\n", extra >> 10,
                WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    assert_true(WIFEXITED(st));
    assert_in_range(WEXITSTATUS(st), 10, 11);
    return WEXITSTATUS(st);
}

static void test_journal_out_of_memory(void **state)
{
    (void)state;
#if BG_ASAN
    skip();
#endif
    size_t len = 0;
    char *j = make_journal(&len);
    /* The compacted copy with memory to spare, made in a child and read
     * back through a pipe: this process's heap must not keep the free
     * memory of a whole check, or capped children would not run out. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[512], *rt = NULL;
        long n = bg_consent_journal_check(j, len, "j", NULL, &rt, err, sizeof err);
        size_t rl = rt != NULL ? strlen(rt) : 0, off = 0;
        while (n == JOURNAL_GRANTS && off < rl) {
            ssize_t w = write(fds[1], rt + off, rl - off);
            if (w <= 0)
                _exit(1);
            off += (size_t)w;
        }
        _exit(n == JOURNAL_GRANTS && rl > 0 ? 0 : 1);
    }
    close(fds[1]);
    size_t refcap = 2 * len + 1, reflen = 0; /* grant lines with their withdrawal folded in */
    char *ref = malloc(refcap);
    assert_non_null(ref);
    ssize_t r;
    while ((r = read(fds[0], ref + reflen, refcap - 1 - reflen)) > 0)
        reflen += (size_t)r;
    ref[reflen] = '\0';
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(reflen > 0 && reflen < refcap - 1);
    assert_int_equal(journal_capped(j, len, ref, (size_t)256 << 20), 10);
    int failed = 0, whole = 0;
    for (size_t extra = 4096; extra <= (size_t)1 << 20; extra += 4096) {
        int o = journal_capped(j, len, ref, extra);
        whole += o == 10;
        failed += o == 11;
    }
    fprintf(stderr, "journal reads: %d whole, %d failed cleanly\n", whole, failed);
    assert_true(failed > 0);
    assert_true(whole > 0);
    free(ref);
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_out_of_memory),
        cmocka_unit_test(test_journal_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
