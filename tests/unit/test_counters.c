/*
 * Yearly counters: real files in a temporary directory, real threads, a
 * real write failure (RLIMIT_FSIZE), and the `audit volumes` command over a
 * real audit file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/counters.h"
#include "audit/report.h"
#include "common/log.h"
#include "common/util.h"

static char g_root[512];
static int g_case;

static void case_path(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "%s/%02d-%s", g_root, ++g_case, what);
}

static int64_t t_of(const char *s)
{
    int64_t ms;
    assert_int_equal(bg_report_parse_date(s, 0, &ms), 0);
    return ms;
}

/* A distinct, valid 64-hex pseudonym for person N. */
static void pseudo(int n, char out[65])
{
    unsigned x = (unsigned)n * 2654435761u + 12345u;
    for (int i = 0; i < 64; i++) {
        x = x * 1103515245u + 12345u;
        out[i] = "0123456789abcdef"[(x >> 16) & 15];
    }
    snprintf(out, 9, "%08x", (unsigned)n); /* keep them distinct */
    out[8] = 'a';
    out[64] = '\0';
}

static size_t count_lines(const char *path)
{
    size_t len = 0, n = 0;
    char *s = bg_util_read_file(path, &len);
    assert_non_null(s);
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    free(s);
    return n;
}

static bg_counters_t *open_year(const char *path, int year)
{
    bg_counters_options_t o;
    char err[256];
    bg_counters_options_init(&o);
    o.path = path;
    o.year = year;
    o.quiet = 1;
    bg_counters_t *c = bg_counters_open_ex(&o, err, sizeof err);
    if (c == NULL)
        fail_msg("open %s: %s", path, err);
    return c;
}

static const bg_counters_recipient_t *find_rcpt(const bg_counters_snapshot_t *s, const char *name)
{
    for (size_t i = 0; i < s->nrecipients; i++)
        if (strcmp(s->recipients[i].recipient, name) == 0)
            return &s->recipients[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */

static void test_year_is_china_time(void **state)
{
    (void)state;
    assert_int_equal(bg_counters_year_of(t_of("2025-12-31T15:59:59.999Z")), 2025);
    assert_int_equal(bg_counters_year_of(t_of("2025-12-31T16:00:00Z")), 2026);
    assert_int_equal(bg_counters_year_of(t_of("2026-01-01")), 2026); /* China midnight */
    assert_int_equal(bg_counters_year_of(t_of("2026-12-31T23:59:59+08:00")), 2026);
    assert_int_equal(bg_counters_year_of(t_of("2028-02-29T12:00:00Z")), 2028);
}

static void test_levels_follow_the_cac_thresholds(void **state)
{
    (void)state;
    bg_counters_thresholds_t t;
    bg_counters_thresholds_default(&t);
    assert_int_equal(bg_counters_level(&t, 0, 0), BG_VOLUME_NONE);
    assert_int_equal(bg_counters_level(&t, 99999, 0), BG_VOLUME_NONE);
    assert_int_equal(bg_counters_level(&t, 100000, 0), BG_VOLUME_CONTRACT);
    assert_int_equal(bg_counters_level(&t, 999999, 0), BG_VOLUME_CONTRACT);
    assert_int_equal(bg_counters_level(&t, 1000000, 0), BG_VOLUME_ASSESSMENT);
    assert_int_equal(bg_counters_level(&t, 0, 1), BG_VOLUME_CONTRACT);
    assert_int_equal(bg_counters_level(&t, 10, 9999), BG_VOLUME_CONTRACT);
    assert_int_equal(bg_counters_level(&t, 0, 10000), BG_VOLUME_ASSESSMENT);
    assert_string_equal(bg_volume_level_name(BG_VOLUME_NONE), "none");
    assert_string_equal(bg_volume_level_name(BG_VOLUME_CONTRACT),
                        "standard_contract_or_certification");
    assert_string_equal(bg_volume_level_name(BG_VOLUME_ASSESSMENT), "security_assessment");
}

static void test_counting_rule(void **state)
{
    (void)state;
    /* cross, blocked, monitor, allow, deidentify, anonymized */
    assert_true(bg_counters_finding_counts(1, 0, 0, 1, 0, 0));  /* allowed on a basis */
    assert_true(bg_counters_finding_counts(1, 0, 0, 0, 1, 0));  /* pseudonymized */
    assert_false(bg_counters_finding_counts(1, 0, 0, 0, 1, 1)); /* anonymized */
    assert_false(bg_counters_finding_counts(1, 0, 0, 0, 0, 1)); /* removed */
    assert_false(bg_counters_finding_counts(1, 1, 0, 1, 0, 0)); /* request blocked */
    assert_false(bg_counters_finding_counts(0, 0, 0, 1, 0, 0)); /* domestic */
    assert_true(bg_counters_finding_counts(1, 0, 1, 0, 0, 1));  /* monitor: forwarded unchanged */

    json_t *d = json_loads("{\"type\":\"decision\",\"destination\":{\"region\":\"unknown\"},"
                           "\"outcome\":\"deidentify\",\"mode\":\"enforce\"}",
                           0, NULL);
    json_t *f1 = json_loads("{\"action\":\"deidentify\",\"anonymized\":false}", 0, NULL);
    json_t *f2 = json_loads("{\"action\":\"remove\",\"anonymized\":true}", 0, NULL);
    json_t *f3 = json_loads("{\"action\":\"allow\"}", 0, NULL);
    assert_true(bg_counters_json_finding_counts(d, f1)); /* unknown region counts as abroad */
    assert_false(bg_counters_json_finding_counts(d, f2));
    assert_true(bg_counters_json_finding_counts(d, f3));
    json_object_set_new(json_object_get(d, "destination"), "region", json_string("domestic"));
    assert_false(bg_counters_json_finding_counts(d, f3));
    json_decref(d);
    json_decref(f1);
    json_decref(f2);
    json_decref(f3);
}

static void test_distinct_per_year_kind_recipient_and_persisted(void **state)
{
    (void)state;
    char path[600], a[65], b[65], err[256];
    case_path(path, sizeof path, "counters.jsonl");
    int64_t t = t_of("2026-05-01T10:00:00+08:00");
    pseudo(1, a);
    pseudo(2, b);
    bg_counters_t *c = open_year(path, 2026);
    assert_int_equal(bg_counters_add(c, "r1", a, 0, t), 1);
    assert_int_equal(bg_counters_add(c, "r1", a, 0, t + 1000), 0); /* seen this year */
    assert_int_equal(bg_counters_add(c, "r1", a, 1, t), 1);        /* sensitive separately */
    assert_int_equal(bg_counters_add(c, "r2", a, 0, t), 1);        /* another recipient */
    assert_int_equal(bg_counters_add(c, "r1", b, 0, t), 1);
    assert_int_equal(bg_counters_add(c, NULL, b, 0, t), 1); /* no recipient declared */
    assert_int_equal(bg_counters_add(c, "r1", a, 0, t_of("2027-01-02")),
                     0); /* not this tool's year */
    errno = 0;
    assert_int_equal(bg_counters_add(c, "r1", "not-hex", 0, t), -1);
    assert_int_equal(errno, EINVAL);

    bg_counters_snapshot_t s;
    bg_counters_snapshot(c, 0, &s);
    assert_int_equal(s.year, 2026);
    assert_int_equal(s.non_sensitive, 2); /* a and b, once each */
    assert_int_equal(s.sensitive, 1);     /* a, also counted as non-sensitive */
    assert_int_equal(s.people, 2);
    assert_int_equal(s.level, BG_VOLUME_CONTRACT); /* any sensitive PI */
    const bg_counters_recipient_t *r1 = find_rcpt(&s, "r1");
    assert_non_null(r1);
    assert_int_equal(r1->non_sensitive, 2);
    assert_int_equal(r1->sensitive, 1);
    assert_int_equal(r1->people, 2);
    assert_int_equal(r1->own_level, BG_VOLUME_CONTRACT);
    const bg_counters_recipient_t *r2 = find_rcpt(&s, "r2");
    assert_non_null(r2);
    assert_int_equal(r2->people, 1);
    assert_int_equal(r2->own_level, BG_VOLUME_NONE);
    assert_int_equal(r2->level, BG_VOLUME_CONTRACT); /* the handler's total governs */
    assert_non_null(find_rcpt(&s, ""));
    json_t *j = bg_counters_snapshot_json(&s, 1);
    assert_int_equal(json_integer_value(json_object_get(j, "people")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "status")),
                        "standard_contract_or_certification");
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(j, "thresholds"), "assessment_sensitive")),
                     10000);
    assert_int_equal(json_array_size(json_object_get(j, "recipients")), 3);
    json_decref(j);
    bg_counters_snapshot_free(&s);

    /* A second writer is refused while the first holds the file. */
    bg_counters_t *c2 = bg_counters_open(path, err, sizeof err);
    assert_null(c2);
    assert_non_null(strstr(err, "in use"));
    bg_counters_close(c);
    assert_int_equal(count_lines(path), 5); /* one per new (recipient, kind, person) */

    /* The file never holds anything but pseudonyms and recipient ids. */
    size_t len;
    char *text = bg_util_read_file(path, &len);
    assert_non_null(strstr(text, "\"kind\":\"sensitive\""));
    assert_non_null(strstr(text, "\"recipient\":null"));
    free(text);

    c = open_year(path, 2026);
    bg_counters_snapshot(c, 0, &s);
    assert_int_equal(s.non_sensitive, 2);
    assert_int_equal(s.sensitive, 1);
    assert_int_equal(s.people, 2);
    assert_int_equal(s.lines_loaded, 5);
    bg_counters_snapshot_free(&s);
    assert_int_equal(bg_counters_add(c, "r1", a, 1, t), 0); /* still seen after the restart */
    assert_int_equal(bg_counters_add(c, "r2", a, 1, t), 1);
    bg_counters_close(c);
    assert_int_equal(count_lines(path), 6);

    /* Another year's view of the same file is empty. */
    c = open_year(path, 2025);
    bg_counters_snapshot(c, 0, &s);
    assert_int_equal(s.people, 0);
    assert_int_equal(s.level, BG_VOLUME_NONE);
    bg_counters_snapshot_free(&s);
    bg_counters_close(c);
}

static void test_torn_last_line_and_bad_lines(void **state)
{
    (void)state;
    char path[600], a[65], b[65];
    case_path(path, sizeof path, "torn.jsonl");
    int64_t t = t_of("2026-02-01");
    pseudo(10, a);
    pseudo(11, b);
    bg_counters_t *c = open_year(path, 2026);
    assert_int_equal(bg_counters_add(c, "r", a, 0, t), 1);
    bg_counters_close(c);
    /* A garbage line in the middle, another year's line, then a torn write. */
    FILE *fp = fopen(path, "a");
    fprintf(fp, "this is not json\n");
    fprintf(fp,
            "{\"year\":2025,\"kind\":\"sensitive\",\"recipient\":\"r\",\"subject\":\"%s\",\"time\":"
            "\"x\"}\n",
            b);
    fprintf(fp, "{\"year\":2026,\"kind\":\"sensitive\",\"recipient\":\"r\",\"subj");
    fclose(fp);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    off_t before = st.st_size;

    /* Readonly (the volumes tool) ignores the torn line and leaves the file. */
    bg_counters_options_t o;
    char err[256];
    bg_counters_options_init(&o);
    o.path = path;
    o.year = 2026;
    o.readonly = 1;
    o.quiet = 1;
    bg_counters_t *ro = bg_counters_open_ex(&o, err, sizeof err);
    assert_non_null(ro);
    bg_counters_snapshot_t s;
    bg_counters_snapshot(ro, 0, &s);
    assert_int_equal(s.people, 1);
    assert_int_equal(s.lines_skipped, 1);
    bg_counters_snapshot_free(&s);
    bg_counters_close(ro);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, before);

    c = open_year(path, 2026);
    bg_counters_snapshot(c, 0, &s);
    assert_int_equal(s.people, 1);
    assert_int_equal(s.non_sensitive, 1);
    assert_int_equal(s.sensitive, 0);
    assert_int_equal(s.lines_skipped, 1);
    assert_true(s.torn_bytes_cut > 0);
    bg_counters_snapshot_free(&s);
    assert_int_equal(bg_counters_add(c, "r", b, 1, t), 1);
    bg_counters_close(c);
    assert_int_equal(count_lines(path), 4);
    c = open_year(path, 2026);
    bg_counters_snapshot(c, 0, &s);
    assert_int_equal(s.people, 2);
    assert_int_equal(s.sensitive, 1);
    assert_int_equal(s.torn_bytes_cut, 0);
    bg_counters_snapshot_free(&s);
    bg_counters_close(c);
}

static void test_threshold_crossing_logs_one_warning_without_subjects(void **state)
{
    (void)state;
    char path[600], logp[600], p[65];
    case_path(path, sizeof path, "thr.jsonl");
    case_path(logp, sizeof logp, "thr.log");
    bg_counters_options_t o;
    char err[256];
    bg_counters_options_init(&o);
    o.path = path;
    o.year = 2026;
    o.thresholds.contract_non_sensitive = 3;
    o.thresholds.assessment_non_sensitive = 5;
    bg_counters_t *c = bg_counters_open_ex(&o, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(bg_log_set_file(logp), 0);
    int64_t t = t_of("2026-07-01");
    for (int i = 0; i < 6; i++) {
        pseudo(100 + i, p);
        assert_int_equal(bg_counters_add(c, "r", p, 0, t), 1);
        assert_int_equal(bg_counters_add(c, "r", p, 0, t), 0);
    }
    bg_log_set_file(NULL);
    size_t len;
    char *log = bg_util_read_file(logp, &len);
    assert_non_null(log);
    const char *w1 = strstr(log, "reaching the threshold of 3");
    const char *w2 = strstr(log, "reaching the threshold of 5");
    assert_non_null(w1);
    assert_non_null(w2);
    assert_null(strstr(w1 + 1, "reaching the threshold of 3")); /* once */
    assert_non_null(strstr(log, "standard contract"));
    assert_non_null(strstr(log, "security assessment"));
    for (int i = 0; i < 6; i++) {
        pseudo(100 + i, p);
        assert_null(strstr(log, p));
    }
    free(log);
    bg_counters_snapshot_t s;
    bg_counters_snapshot(c, 0, &s);
    assert_int_equal(s.level, BG_VOLUME_ASSESSMENT);
    bg_counters_snapshot_free(&s);
    bg_counters_close(c);
}

static void test_year_rollover_in_the_daemon(void **state)
{
    (void)state;
    char path[600], a[65], b[65];
    case_path(path, sizeof path, "roll.jsonl");
    pseudo(7, a);
    pseudo(8, b);
    bg_counters_options_t o;
    char err[256];
    bg_counters_options_init(&o);
    o.path = path;
    o.quiet = 1;
    bg_counters_t *c = bg_counters_open_ex(&o, err, sizeof err); /* follows the clock */
    assert_non_null(c);
    int64_t y1 = t_of("2030-12-31T23:59:00+08:00"), y2 = t_of("2031-01-01T00:00:00+08:00");
    assert_int_equal(bg_counters_add(c, "r", a, 0, y1), 1);
    assert_int_equal(bg_counters_add(c, "r", b, 0, y1), 1);
    bg_counters_snapshot_t s;
    bg_counters_snapshot(c, y1, &s);
    assert_int_equal(s.year, 2030);
    assert_int_equal(s.people, 2);
    bg_counters_snapshot_free(&s);
    /* New Year in Beijing: everyone counts afresh. */
    assert_int_equal(bg_counters_add(c, "r", a, 0, y2), 1);
    bg_counters_snapshot(c, y2, &s);
    assert_int_equal(s.year, 2031);
    assert_int_equal(s.people, 1);
    bg_counters_snapshot_free(&s);
    /* A late add of the old year is not held any more. */
    assert_int_equal(bg_counters_add(c, "r", b, 1, y1), 0);
    bg_counters_close(c);
    /* The file keeps both years; each year's view sees its own. */
    c = open_year(path, 2030);
    bg_counters_snapshot(c, 0, &s);
    assert_int_equal(s.people, 2);
    bg_counters_snapshot_free(&s);
    bg_counters_close(c);
}

typedef struct {
    bg_counters_t *c;
    int seed;
    int errors;
} thr_arg_t;

#define NPEOPLE 3000
#define NTHREADS 8
#define NADDS 30000

static void *adder(void *p)
{
    thr_arg_t *a = p;
    unsigned x = (unsigned)a->seed;
    char ps[65];
    int64_t t = t_of("2026-03-03");
    for (int i = 0; i < NADDS; i++) {
        x = x * 1103515245u + 12345u;
        int person = (int)((x >> 8) % NPEOPLE);
        pseudo(person, ps);
        /* The person's kind and recipient are functions of the person, so
         * the expected distinct counts are known. */
        int sens = person % 5 == 0;
        const char *r = person % 3 == 0 ? "ra" : "rb";
        if (bg_counters_add(a->c, r, ps, sens, t) < 0)
            a->errors++;
        if (person % 7 == 0 && bg_counters_add(a->c, "rc", ps, 0, t) < 0)
            a->errors++;
    }
    return NULL;
}

static void test_threads_count_each_person_once(void **state)
{
    (void)state;
    char path[600];
    case_path(path, sizeof path, "threads.jsonl");
    bg_counters_t *c = open_year(path, 2026);
    pthread_t th[NTHREADS];
    thr_arg_t args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (thr_arg_t){c, 1000 + i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, adder, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].errors, 0);
    }
    /* Which people were drawn at all: replay the generators. */
    static unsigned char drawn[NPEOPLE];
    memset(drawn, 0, sizeof drawn);
    for (int i = 0; i < NTHREADS; i++) {
        unsigned x = (unsigned)(1000 + i);
        for (int k = 0; k < NADDS; k++) {
            x = x * 1103515245u + 12345u;
            drawn[(x >> 8) % NPEOPLE] = 1;
        }
    }
    uint64_t ns = 0, s = 0, people = 0, lines = 0, ra = 0, rb = 0, rc = 0;
    for (int p = 0; p < NPEOPLE; p++) {
        if (!drawn[p])
            continue;
        people++;
        int sens = p % 5 == 0;
        if (sens)
            s++;
        if (!sens || p % 7 == 0)
            ns++;
        lines += 1 + (p % 7 == 0);
        ra += p % 3 == 0;
        rb += p % 3 != 0;
        rc += p % 7 == 0;
    }
    bg_counters_snapshot_t snap;
    bg_counters_snapshot(c, 0, &snap);
    assert_int_equal(snap.people, people);
    assert_int_equal(snap.sensitive, s);
    assert_int_equal(snap.non_sensitive, ns);
    assert_int_equal(find_rcpt(&snap, "ra")->people, ra);
    assert_int_equal(find_rcpt(&snap, "rb")->people, rb);
    assert_int_equal(find_rcpt(&snap, "rc")->people, rc);
    bg_counters_snapshot_free(&snap);
    bg_counters_close(c);
    assert_int_equal(count_lines(path), lines);
    c = open_year(path, 2026);
    bg_counters_snapshot(c, 0, &snap);
    assert_int_equal(snap.people, people);
    assert_int_equal(snap.non_sensitive, ns);
    bg_counters_snapshot_free(&snap);
    bg_counters_close(c);
}

static void test_write_failure_does_not_count_and_leaves_no_partial_line(void **state)
{
    (void)state;
    char path[600], a[65], b[65];
    case_path(path, sizeof path, "fsize.jsonl");
    pseudo(21, a);
    pseudo(22, b);
    int64_t t = t_of("2026-08-08");
    bg_counters_t *c = open_year(path, 2026);
    assert_int_equal(bg_counters_add(c, "r", a, 0, t), 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    off_t good = st.st_size;
    /* The next line would pass this limit: the write is cut short (a
     * partial line) or refused (EFBIG). */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)good + 40;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(bg_counters_add(c, "r", b, 0, t), -1);
    assert_int_equal(bg_counters_add(c, "r", b, 1, t), -1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, good); /* nothing partial stays */
    bg_counters_snapshot_t s;
    bg_counters_snapshot(c, 0, &s);
    assert_int_equal(s.people, 1);
    assert_int_equal(s.write_errors, 2);
    assert_non_null(strstr(s.last_error, "cannot append"));
    bg_counters_snapshot_free(&s);
    /* Space again: the person is counted when next seen. */
    assert_int_equal(bg_counters_add(c, "r", b, 0, t), 1);
    bg_counters_close(c);
    assert_int_equal(count_lines(path), 2);
}

/* `bordergate audit volumes` (ARGV[0] "volumes") with the CAC defaults (no
 * --config): the real binary (cli/audit_volumes.c), its stdout the
 * caller's. Its exit status. */
static int volumes_cli(int argc, char **argv)
{
    char bin[700];
    const char *b = getenv("BG_BUILD_DIR");
    snprintf(bin, sizeof bin, "%s/bordergate", b != NULL && b[0] ? b : ".");
    char *av[16] = {bin, "audit"};
    assert_true(argc + 3 <= 16);
    for (int i = 0; i < argc; i++)
        av[2 + i] = argv[i];
    av[2 + argc] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(bin, av);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 127);
    return WEXITSTATUS(status);
}

/* Run FN(argc, argv) with stdout captured into a malloc'd string. */
static char *capture(int (*fn)(int, char **), int argc, char **argv, int *rc)
{
    char out[600];
    case_path(out, sizeof out, "stdout.txt");
    fflush(stdout);
    int saved = dup(1);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 1);
    close(fd);
    *rc = fn(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    size_t len;
    char *s = bg_util_read_file(out, &len);
    assert_non_null(s);
    return s;
}

static void test_volumes_from_the_audit_log_and_the_counters_file_agree(void **state)
{
    (void)state;
    char audit[600], cpath[600], a[65], b[65], m[65];
    case_path(audit, sizeof audit, "audit-20260301-000000-000001.jsonl");
    case_path(cpath, sizeof cpath, "vol-counters.jsonl");
    pseudo(31, a);
    pseudo(32, b);
    pseudo(33, m);
    FILE *fp = fopen(audit, "w");
    /* a: phone allowed to p1 (counts non-sensitive); id hashed (sensitive) */
    fprintf(
        fp,
        "{\"seq\":1,\"prev\":\"0\",\"time\":\"2026-03-01T01:00:00.000Z\",\"type\":\"decision\","
        "\"recipient\":{\"id\":\"p1\"},\"destination\":{\"country\":\"US\",\"region\":\"cross-"
        "border\"},"
        "\"mode\":\"enforce\",\"outcome\":\"deidentify\",\"findings\":["
        "{\"category\":\"cn_mobile\",\"sensitive\":false,\"action\":\"allow\",\"subject\":\"%s\"},"
        "{\"category\":\"cn_resident_id\",\"sensitive\":true,\"action\":\"deidentify\","
        "\"anonymized\":false,\"subject\":\"%s\"},"
        "{\"category\":\"email\",\"sensitive\":false,\"action\":\"remove\",\"anonymized\":true,"
        "\"subject\":\"%s\"}],"
        "\"hash\":\"x\"}\n",
        a, a, m);
    /* b: blocked (does not count); m only had an anonymized finding */
    fprintf(fp,
            "{\"seq\":2,\"time\":\"2026-03-01T02:00:00.000Z\",\"type\":\"decision\","
            "\"recipient\":{\"id\":\"p2\"},\"destination\":{\"country\":\"US\",\"region\":\"cross-"
            "border\"},"
            "\"mode\":\"enforce\",\"outcome\":\"block\",\"findings\":["
            "{\"category\":\"cn_mobile\",\"sensitive\":false,\"action\":\"block\",\"subject\":\"%"
            "s\"}]}\n",
            b);
    /* b again, monitor mode to p2: forwarded unchanged, counts */
    fprintf(fp,
            "{\"seq\":3,\"time\":\"2026-03-02T02:00:00.000Z\",\"type\":\"decision\","
            "\"recipient\":{\"id\":\"p2\"},\"destination\":{\"country\":\"SG\",\"region\":\"cross-"
            "border\"},"
            "\"mode\":\"monitor\",\"outcome\":\"allow\",\"would\":\"block\",\"findings\":["
            "{\"category\":\"bank_card\",\"sensitive\":true,\"action\":\"block\",\"subject\":\"%"
            "s\"}]}\n",
            b);
    /* last year's and a domestic decision: neither counts for 2026 */
    fprintf(
        fp,
        "{\"seq\":4,\"time\":\"2025-12-31T15:00:00.000Z\",\"type\":\"decision\",\"recipient\":{"
        "\"id\":\"p1\"},"
        "\"destination\":{\"region\":\"cross-border\"},\"mode\":\"enforce\",\"outcome\":\"allow\","
        "\"findings\":[{\"category\":\"cn_mobile\",\"action\":\"allow\",\"subject\":\"%s\"}]}\n",
        m);
    fprintf(
        fp,
        "{\"seq\":5,\"time\":\"2026-04-01T00:00:00.000Z\",\"type\":\"decision\",\"recipient\":{"
        "\"id\":\"p1\"},"
        "\"destination\":{\"country\":\"CN\",\"region\":\"domestic\"},\"mode\":\"enforce\","
        "\"outcome\":\"allow\","
        "\"findings\":[{\"category\":\"cn_mobile\",\"action\":\"allow\",\"subject\":\"%s\"}]}\n",
        m);
    fprintf(fp, "{\"seq\":6,\"time\":\"2026-04-01T00:00:00.000Z\",\"type\":\"completion\","
                "\"decision_id\":\"x\"}\n");
    fclose(fp);

    char *argv1[] = {"volumes", audit, "--year", "2026", "--json", NULL};
    int rc;
    char *out = capture(volumes_cli, 5, argv1, &rc);
    assert_int_equal(rc, 0);
    json_t *doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "year")), 2026);
    assert_int_equal(json_integer_value(json_object_get(doc, "non_sensitive")), 1); /* a */
    assert_int_equal(json_integer_value(json_object_get(doc, "sensitive")), 2);     /* a, b */
    assert_int_equal(json_integer_value(json_object_get(doc, "people")), 2);
    assert_string_equal(json_string_value(json_object_get(doc, "status")),
                        "standard_contract_or_certification");
    assert_string_equal(json_string_value(json_object_get(doc, "source")), "audit");
    json_t *rs = json_object_get(doc, "recipients");
    assert_int_equal(json_array_size(rs), 2);
    json_decref(doc);
    free(out);

    /* The daemon's way: the same decisions counted live into a file. */
    bg_counters_t *c = open_year(cpath, 2026);
    assert_int_equal(bg_counters_add(c, "p1", a, 0, t_of("2026-03-01T09:00")), 1);
    assert_int_equal(bg_counters_add(c, "p1", a, 1, t_of("2026-03-01T09:00")), 1);
    assert_int_equal(bg_counters_add(c, "p2", b, 1, t_of("2026-03-02T10:00")), 1);
    bg_counters_close(c);
    char *argv2[] = {"volumes", "--counters", cpath, "--year", "2026", "--json", NULL};
    out = capture(volumes_cli, 6, argv2, &rc);
    assert_int_equal(rc, 0);
    doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "non_sensitive")), 1);
    assert_int_equal(json_integer_value(json_object_get(doc, "sensitive")), 2);
    assert_int_equal(json_integer_value(json_object_get(doc, "people")), 2);
    assert_string_equal(json_string_value(json_object_get(doc, "source")), "counters");
    json_decref(doc);
    free(out);

    /* The table for people names the mechanism. */
    char *argv3[] = {"volumes", audit, "--year", "2026", NULL};
    out = capture(volumes_cli, 4, argv3, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "standard contract or certification (Art. 8)"));
    assert_non_null(strstr(out, "p1"));
    assert_null(strstr(out, a));
    free(out);

    char *argv4[] = {"volumes", NULL};
    out = capture(volumes_cli, 1, argv4, &rc);
    assert_int_equal(rc, 2);
    free(out);
}

/*
 * Transfers on an Art. 5(1)-(3) basis (contract with the individual, HR
 * management, emergency) are counted apart and never reach a threshold; a
 * person who also left on another basis counts in both; the audit log's
 * recount and the counters file (written with bg_counters_add_ex) agree.
 */
static void test_exempt_transfers_are_counted_apart(void **state)
{
    (void)state;
    char audit[600], cpath[600], a[65], b[65], h[65];
    case_path(audit, sizeof audit, "audit-20260301-000000-000001.jsonl");
    case_path(cpath, sizeof cpath, "exempt-counters.jsonl");
    pseudo(41, a);
    pseudo(42, b);
    pseudo(43, h);
    assert_true(bg_counters_basis_exempt("contract"));
    assert_true(bg_counters_basis_exempt("hr_management"));
    assert_true(bg_counters_basis_exempt("emergency"));
    assert_false(bg_counters_basis_exempt("consent"));
    assert_false(bg_counters_basis_exempt("legal_obligation"));
    assert_false(bg_counters_basis_exempt("none"));
    assert_false(bg_counters_basis_exempt(NULL));
    FILE *fp = fopen(audit, "w");
#define fmt                                                                                        \
    "{\"seq\":%d,\"time\":\"2026-03-0%dT01:00:00.000Z\",\"type\":\"decision\","                    \
    "\"recipient\":{\"id\":\"%s\"},\"destination\":{\"country\":\"US\","                           \
    "\"region\":\"cross-border\"},\"mode\":\"enforce\",\"outcome\":\"allow\",\"findings\":["       \
    "{\"category\":\"%s\",\"sensitive\":%s,\"basis\":\"%s\",\"action\":\"allow\","                 \
    "\"subject\":\"%s\"}]}\n"
    /* a: a parcel's consignee, contract necessity (exempt), sensitive too */
    fprintf(fp, fmt, 1, 1, "ship", "cn_mobile", "false", "contract", a);
    fprintf(fp, fmt, 2, 1, "ship", "cn_resident_id", "true", "contract", a);
    /* h: an employee's record to the group's HR system (exempt) */
    fprintf(fp, fmt, 3, 2, "hr", "cn_mobile", "false", "hr_management", h);
    /* b: exempt to ship and on consent to crm: counts */
    fprintf(fp, fmt, 4, 2, "ship", "cn_mobile", "false", "emergency", b);
    fprintf(fp, fmt, 5, 3, "crm", "email", "false", "consent", b);
#undef fmt
    fclose(fp);

    char *argv1[] = {"volumes", audit, "--year", "2026", "--json", NULL};
    int rc;
    char *out = capture(volumes_cli, 5, argv1, &rc);
    assert_int_equal(rc, 0);
    json_t *doc = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(doc);
    /* Only b counts towards the thresholds: one non-sensitive person, no
     * sensitive PI outside the exemptions, so no mechanism by volume. */
    assert_int_equal(json_integer_value(json_object_get(doc, "non_sensitive")), 1);
    assert_int_equal(json_integer_value(json_object_get(doc, "sensitive")), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "people")), 1);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "none");
    const json_t *x = json_object_get(doc, "exempt");
    assert_int_equal(json_integer_value(json_object_get(x, "non_sensitive")), 3); /* a, h, b */
    assert_int_equal(json_integer_value(json_object_get(x, "sensitive")), 1);     /* a */
    assert_int_equal(json_integer_value(json_object_get(x, "people")), 3);
    const json_t *rs = json_object_get(doc, "recipients");
    assert_int_equal(json_array_size(rs), 3);
    size_t i;
    const json_t *r;
    json_array_foreach(rs, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "recipient"));
        json_int_t people = json_integer_value(json_object_get(r, "people"));
        json_int_t xp = json_integer_value(json_object_get(json_object_get(r, "exempt"), "people"));
        if (strcmp(id, "crm") == 0) {
            assert_int_equal(people, 1);
            assert_int_equal(xp, 0);
        } else if (strcmp(id, "ship") == 0) {
            assert_int_equal(people, 0);
            assert_int_equal(xp, 2); /* a, b */
            assert_string_equal(json_string_value(json_object_get(r, "status")), "none");
        } else {
            assert_string_equal(id, "hr");
            assert_int_equal(xp, 1);
        }
    }
    json_t *from_log = doc;

    /* The daemon's way, with the basis: the counters file agrees. */
    bg_counters_t *c = open_year(cpath, 2026);
    assert_int_equal(bg_counters_add_ex(c, "ship", a, 0, 1, t_of("2026-03-01T09:00")), 1);
    assert_int_equal(bg_counters_add_ex(c, "ship", a, 1, 1, t_of("2026-03-01T09:00")), 1);
    assert_int_equal(bg_counters_add_ex(c, "hr", h, 0, 1, t_of("2026-03-02T09:00")), 1);
    assert_int_equal(bg_counters_add_ex(c, "ship", b, 0, 1, t_of("2026-03-02T09:00")), 1);
    assert_int_equal(bg_counters_add_ex(c, "crm", b, 0, 0, t_of("2026-03-03T09:00")), 1);
    assert_int_equal(bg_counters_add_ex(c, "crm", b, 0, 0, t_of("2026-03-03T09:00")), 0);
    bg_counters_close(c);
    char *argv2[] = {"volumes", "--counters", cpath, "--year", "2026", "--json", NULL};
    out = capture(volumes_cli, 6, argv2, &rc);
    assert_int_equal(rc, 0);
    doc = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(doc);
    static const char *const same[] = {"non_sensitive", "sensitive", "people", "status", "exempt"};
    for (i = 0; i < sizeof same / sizeof same[0]; i++)
        assert_true(json_equal(json_object_get(doc, same[i]), json_object_get(from_log, same[i])));
    json_decref(doc);
    json_decref(from_log);

    /* The table says what is exempt and why. */
    char *argv3[] = {"volumes", audit, "--year", "2026", NULL};
    out = capture(volumes_cli, 4, argv3, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "exempt (Art. 5(1)-(3))"));
    assert_non_null(strstr(out, "not counted towards the thresholds"));
    assert_non_null(strstr(out, "EXEMPT PEOPLE"));
    free(out);
}

/*
 * People identified by a device (subjects.device_id): one device is one
 * person, counted like anyone in PEOPLE and also in people_by_device; the
 * audit log's "by":"device", the counters file and a reopened file agree.
 */
static void test_people_counted_by_device(void **state)
{
    (void)state;
    char audit[600], cpath[600], u[65], d1[65], d2[65];
    case_path(audit, sizeof audit, "audit-20260401-000000-000001.jsonl");
    case_path(cpath, sizeof cpath, "device-counters.jsonl");
    pseudo(51, u);  /* an account id */
    pseudo(52, d1); /* a phone's OAID, no account id */
    pseudo(53, d2); /* another device */
    FILE *fp = fopen(audit, "w");
    assert_non_null(fp);
#define fmt                                                                                        \
    "{\"seq\":%d,\"time\":\"2026-04-0%dT01:00:00.000Z\",\"type\":\"decision\","                    \
    "\"recipient\":{\"id\":\"sdk\"},\"destination\":{\"country\":\"US\","                          \
    "\"region\":\"cross-border\"},\"mode\":\"enforce\",\"outcome\":\"deidentify\",\"findings\":["  \
    "{\"category\":\"oaid\",\"sensitive\":false,\"basis\":\"%s\",\"action\":\"%s\","               \
    "\"operator\":\"hash\",\"anonymized\":false,\"subject\":\"%s\"}],"                             \
    "\"subjects\":[{\"pseudonym\":\"%s\"%s}]}\n"
    fprintf(fp, fmt, 1, 1, "none", "deidentify", u, u, "");
    fprintf(fp, fmt, 2, 1, "none", "deidentify", d1, d1, ",\"by\":\"device\"");
    fprintf(fp, fmt, 3, 2, "none", "deidentify", d1, d1, ",\"by\":\"device\""); /* again */
    fprintf(fp, fmt, 4, 3, "contract", "allow", d2, d2, ",\"by\":\"device\"");  /* exempt */
#undef fmt
    fclose(fp);

    char *argv1[] = {"volumes", audit, "--year", "2026", "--json", NULL};
    int rc;
    char *out = capture(volumes_cli, 5, argv1, &rc);
    assert_int_equal(rc, 0);
    json_t *from_log = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(from_log);
    assert_int_equal(json_integer_value(json_object_get(from_log, "people")), 2); /* u, d1 */
    assert_int_equal(json_integer_value(json_object_get(from_log, "people_by_device")), 1);
    const json_t *x = json_object_get(from_log, "exempt");
    assert_int_equal(json_integer_value(json_object_get(x, "people")), 1);
    assert_int_equal(json_integer_value(json_object_get(x, "people_by_device")), 1);
    const json_t *r = json_array_get(json_object_get(from_log, "recipients"), 0);
    assert_string_equal(json_string_value(json_object_get(r, "recipient")), "sdk");
    assert_int_equal(json_integer_value(json_object_get(r, "people_by_device")), 1);

    /* The daemon's way: the counters file says "by":"device" on the
     * device's lines only, and reopened it gives the same numbers. */
    bg_counters_t *c = open_year(cpath, 2026);
    assert_int_equal(bg_counters_add_subject(c, "sdk", u, 0, 0, 0, t_of("2026-04-01T09:00")), 1);
    assert_int_equal(bg_counters_add_subject(c, "sdk", d1, 0, 0, 1, t_of("2026-04-01T09:00")), 1);
    assert_int_equal(bg_counters_add_subject(c, "sdk", d1, 0, 0, 1, t_of("2026-04-02T09:00")), 0);
    assert_int_equal(bg_counters_add_subject(c, "sdk", d2, 0, 1, 1, t_of("2026-04-03T09:00")), 1);
    bg_counters_snapshot_t snap;
    bg_counters_snapshot(c, 0, &snap);
    assert_int_equal(snap.people, 2);
    assert_int_equal(snap.people_by_device, 1);
    assert_int_equal(snap.exempt_people_by_device, 1);
    bg_counters_snapshot_free(&snap);
    bg_counters_close(c);
    size_t len = 0;
    char *file = bg_util_read_file(cpath, &len);
    assert_non_null(file);
    assert_int_equal(count_lines(cpath), 3);
    char *line_u = strstr(file, u), *line_d1 = strstr(file, d1);
    assert_non_null(line_u);
    assert_non_null(line_d1);
    assert_null(memmem(line_u, (size_t)(strchr(line_u, '\n') - line_u), "\"by\"", 4));
    assert_non_null(
        memmem(line_d1, (size_t)(strchr(line_d1, '\n') - line_d1), "\"by\":\"device\"", 13));
    free(file);
    char *argv2[] = {"volumes", "--counters", cpath, "--year", "2026", "--json", NULL};
    out = capture(volumes_cli, 6, argv2, &rc);
    assert_int_equal(rc, 0);
    json_t *doc = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(doc);
    static const char *const same[] = {"people", "people_by_device", "exempt", "recipients"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        assert_true(json_equal(json_object_get(doc, same[i]), json_object_get(from_log, same[i])));
    json_decref(doc);
    json_decref(from_log);

    /* The table has the column and says what it means. */
    char *argv3[] = {"volumes", "--counters", cpath, "--year", "2026", NULL};
    out = capture(volumes_cli, 5, argv3, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "BY DEVICE"));
    assert_non_null(strstr(out, "upper bound"));
    free(out);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/bg-test-counters-XXXXXX");
    assert_non_null(mkdtemp(g_root));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    if (getenv("BG_KEEP") == NULL) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_year_is_china_time),
        cmocka_unit_test(test_levels_follow_the_cac_thresholds),
        cmocka_unit_test(test_counting_rule),
        cmocka_unit_test(test_distinct_per_year_kind_recipient_and_persisted),
        cmocka_unit_test(test_torn_last_line_and_bad_lines),
        cmocka_unit_test(test_threshold_crossing_logs_one_warning_without_subjects),
        cmocka_unit_test(test_year_rollover_in_the_daemon),
        cmocka_unit_test(test_threads_count_each_person_once),
        cmocka_unit_test(test_write_failure_does_not_count_and_leaves_no_partial_line),
        cmocka_unit_test(test_volumes_from_the_audit_log_and_the_counters_file_agree),
        cmocka_unit_test(test_exempt_transfers_are_counted_apart),
        cmocka_unit_test(test_people_counted_by_device),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
