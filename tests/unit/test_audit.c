/*
 * Audit log: real files in a temporary directory, the real writer thread,
 * completions received on real event_bases (one per submitting thread), a
 * real child process killed with SIGKILL, and a real 1 MiB tmpfs that fills
 * up. Tampering is done the way an attacker would: editing lines, deleting
 * files, and re-hashing the chain after an edit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/sbuf.h"
#include <jansson.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/chain.h"
#include "common/util.h"
#include "common/hex.h"

static char g_root[600]; /* per-run temporary directory */
static int g_case;       /* counter for per-test subdirectories */

static const unsigned char KEY[32] = "0123456789abcdef0123456789abcdef";

/* ------------------------------------------------------------------------
 * Helpers: directories, files, lines
 * ------------------------------------------------------------------------ */

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        rm_rf(p);
    }
    closedir(d);
    rmdir(path);
}

/* A fresh directory path (not created) under the run's root. */
static void case_dir(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "%s/%02d-%s", g_root, ++g_case, what);
}

static char *slurp(const char *path, size_t *len)
{
    char *s = bg_util_read_file(path, len);
    assert_non_null(s);
    return s;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    chmod(path, 0600);
}

typedef struct {
    char **l; /* without newlines */
    size_t n;
} lines_t;

static lines_t read_lines(const char *path)
{
    size_t len;
    char *s = slurp(path, &len);
    lines_t ls = {0};
    ls.l = calloc(len + 1, sizeof *ls.l);
    assert_non_null(ls.l);
    char *p = s;
    while (p < s + len) {
        char *nl = memchr(p, '\n', (size_t)(s + len - p));
        size_t ll = nl != NULL ? (size_t)(nl - p) : (size_t)(s + len - p);
        ls.l[ls.n++] = strndup(p, ll);
        p += ll + 1;
    }
    free(s);
    return ls;
}

static void write_lines(const char *path, const lines_t *ls)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (size_t i = 0; i < ls->n; i++)
        if (ls->l[i] != NULL)
            fprintf(fp, "%s\n", ls->l[i]);
    assert_int_equal(fclose(fp), 0);
}

static void free_lines(lines_t *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        free(ls->l[i]);
    free(ls->l);
    memset(ls, 0, sizeof *ls);
}

static void list_dir(const char *dir, char ***paths, size_t *n)
{
    char err[256];
    assert_int_equal(bg_audit_list_files(dir, NULL, paths, n, err, sizeof err), 0);
}

/* Verify every log file of DIR as a complete log. Returns the result. */
static bg_audit_verify_result_t verify_dir_keyed(const char *dir, int with_key)
{
    char **paths;
    size_t n;
    list_dir(dir, &paths, &n);
    bg_audit_key_t k;
    char err[128];
    assert_int_equal(bg_audit_key_from_bytes(KEY, sizeof KEY, &k, err, sizeof err), 0);
    bg_audit_verify_options_t opt = {
        .keys = &k, .nkeys = with_key ? 1 : 0, .complete = 1, .report = NULL};
    bg_audit_verify_result_t res;
    bg_audit_verify_files((const char *const *)paths, n, &opt, &res);
    if (!res.ok)
        fprintf(stderr, "  verify %s: %s\n", dir, res.problem);
    bg_audit_free_list(paths, n);
    bg_audit_key_wipe(&k);
    return res;
}

static bg_audit_verify_result_t verify_dir(const char *dir)
{
    return verify_dir_keyed(dir, 1);
}

static void expect_problem(const char *dir, int with_key, const char *where, const char *what)
{
    bg_audit_verify_result_t r = verify_dir_keyed(dir, with_key);
    assert_false(r.ok);
    if (strstr(r.problem, where) == NULL || strstr(r.problem, what) == NULL) {
        fprintf(stderr, "  expected '%s' ... '%s'\n  got      '%s'\n", where, what, r.problem);
        fail();
    }
}

/* ------------------------------------------------------------------------
 * Helpers: writing through the real API
 * ------------------------------------------------------------------------ */

typedef struct {
    struct event_base *base;
    bg_audit_t *a;
    int done, ok, failed, target;
    int check_durable, not_durable;
    uint64_t last_seq;
    int out_of_order;
    char reason[256];
} waiter_t;

static void on_done(void *arg, int status, uint64_t seq, const char *reason)
{
    waiter_t *w = arg;
    w->done++;
    if (status == 0) {
        w->ok++;
        if (seq <= w->last_seq)
            w->out_of_order++;
        w->last_seq = seq;
        assert_null(reason);
    } else {
        w->failed++;
        assert_non_null(reason);
        snprintf(w->reason, sizeof w->reason, "%s", reason);
    }
    if (w->check_durable) {
        bg_audit_stats_t st;
        bg_audit_stats(w->a, &st);
        if (status == 0 && st.durable_seq < seq)
            w->not_durable++;
    }
    if (w->done >= w->target)
        event_base_loopbreak(w->base);
}

static void wait_done(waiter_t *w, int target)
{
    uint64_t t0 = bg_util_mono_us();
    w->target = target;
    while (w->done < target) {
        struct timeval tv = {1, 0};
        event_base_loopexit(w->base, &tv);
        event_base_dispatch(w->base);
        if (bg_util_mono_us() - t0 > 60u * 1000000u) {
            fprintf(stderr, "  timed out: %d of %d completions\n", w->done, target);
            fail();
        }
    }
}

static json_t *rec(int n)
{
    return json_pack("{s:s, s:i, s:s, s:s, s:s}", "type", "decision", "n", n, "route", "r1",
                     "outcome", "allow", "country", "US");
}

static void base_opts(bg_audit_options_t *o, const char *dir)
{
    bg_audit_options_init(o);
    o->directory = dir;
    o->key = KEY;
    o->key_len = sizeof KEY;
}

/* Submit N records (numbered from FIRST) through one client and wait. */
static void submit_n(bg_audit_t *a, waiter_t *w, bg_audit_client_t *c, int first, int n)
{
    int base_done = w->done;
    for (int i = 0; i < n; i++)
        assert_non_null(bg_audit_submit(c, rec(first + i), on_done, w));
    wait_done(w, base_done + n);
}

/* Open DIR with O, write N records, close. */
static void write_log_opts(const bg_audit_options_t *o, int first, int n)
{
    char err[512];
    bg_audit_t *a = bg_audit_open(o, err, sizeof err);
    if (a == NULL)
        fprintf(stderr, "  open: %s\n", err);
    assert_non_null(a);
    waiter_t w = {.base = event_base_new(), .a = a};
    bg_audit_client_t *c = bg_audit_client_new(a, w.base);
    assert_non_null(c);
    /* In rounds of 20, so there are several commits (rotation by size
     * happens between commits). */
    for (int i = 0; i < n; i += 20)
        submit_n(a, &w, c, first + i, n - i < 20 ? n - i : 20);
    assert_int_equal(w.ok, n);
    bg_audit_client_free(c);
    bg_audit_close(a);
    event_base_free(w.base);
}

static void write_log(const char *dir, int n, unsigned every)
{
    bg_audit_options_t o;
    base_opts(&o, dir);
    o.checkpoint_every = every;
    write_log_opts(&o, 1, n);
}

/* The one log file of DIR (asserts there is exactly one). */
static void only_file(const char *dir, char *out, size_t cap)
{
    char **paths;
    size_t n;
    list_dir(dir, &paths, &n);
    assert_int_equal(n, 1);
    snprintf(out, cap, "%s", paths[0]);
    bg_audit_free_list(paths, n);
}

/*
 * The attacker's tool: re-hash the chain of the files from line FROM (0-based)
 * of file FI on, so every hash and prev is consistent again after an edit.
 * Only the signatures (which need the key) can then reveal the edit.
 */
static void rechain(char **paths, size_t nfiles, size_t fi, size_t from)
{
    bg_audit_chain_t *ch = bg_audit_chain_new(1, NULL);
    char prev[BG_AUDIT_HEX_LEN + 1];
    int have = 0;
    for (size_t f = fi; f < nfiles; f++) {
        lines_t ls = read_lines(paths[f]);
        for (size_t i = (f == fi ? from : 0); i < ls.n; i++) {
            if (!have) {
                bg_audit_line_t pp;
                assert_true(i > 0);
                assert_int_equal(bg_audit_chain_parse_line(ls.l[i - 1], strlen(ls.l[i - 1]), &pp),
                                 0);
                memcpy(prev, pp.hash, sizeof prev);
                have = 1;
            }
            bg_audit_line_t pl;
            assert_int_equal(bg_audit_chain_parse_line(ls.l[i], strlen(ls.l[i]), &pl), 0);
            const char *after = strstr(ls.l[i], ",\"prev\":\"") + 9 + BG_AUDIT_HEX_LEN + 1;
            size_t rest = pl.covered_len - (size_t)(after - ls.l[i]);
            const char *parts[1] = {after + 1};
            size_t lens[1] = {rest > 0 ? rest - 1 : 0};
            /* A checkpoint names the hash before it: keep that consistent. */
            char *cf = strstr(ls.l[i], "\"chain\":\"");
            if (cf != NULL)
                memcpy(cf + 9, prev, BG_AUDIT_HEX_LEN);
            bg_audit_chain_set(ch, pl.seq, prev);
            bg_audit_buf_t b = {0};
            assert_int_equal(bg_audit_chain_append(ch, &b, parts, lens, rest > 0 ? 1 : 0, prev), 0);
            free(ls.l[i]);
            ls.l[i] = strndup(b.data, b.len - 1);
            bg_audit_buf_free(&b);
        }
        write_lines(paths[f], &ls);
        free_lines(&ls);
    }
    bg_audit_chain_free(ch);
}

/* Replace the first occurrence of FROM in S (malloc'd) by TO. */
static char *replace(char *s, const char *from, const char *to)
{
    char *p = strstr(s, from);
    assert_non_null(p);
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    assert_non_null(out);
    size_t pre = (size_t)(p - s);
    memcpy(out, s, pre);
    strcpy(out + pre, to);
    strcat(out, p + strlen(from));
    free(s);
    return out;
}

/* ------------------------------------------------------------------------
 * Chain written and verified
 * ------------------------------------------------------------------------ */

static void test_chain_written_and_verified(void **state)
{
    char dir[700], file[800];
    case_dir(dir, sizeof dir, "chain");
    write_log(dir, 200, 50);
    only_file(dir, file, sizeof file);

    lines_t ls = read_lines(file);
    /* file_start, writer_start, 200 records, 4 count checkpoints, close. */
    assert_int_equal(ls.n, 2 + 200 + 4 + 1);
    char prev[65];
    snprintf(prev, sizeof prev, "%s", bg_audit_chain_genesis);
    int ckpts = 0;
    for (size_t i = 0; i < ls.n; i++) {
        json_error_t je;
        json_t *j = json_loads(ls.l[i], JSON_REJECT_DUPLICATES, &je);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "seq")), (json_int_t)(i + 1));
        assert_string_equal(json_string_value(json_object_get(j, "prev")), prev);
        /* "seq" and "prev" first, "hash" last. */
        assert_true(strncmp(ls.l[i], "{\"seq\":", 7) == 0);
        const char *h = strstr(ls.l[i], ",\"hash\":\"");
        assert_non_null(h);
        assert_int_equal(strlen(h), BG_AUDIT_HASH_TAIL_LEN);
        const char *type = json_string_value(json_object_get(j, "type"));
        assert_non_null(type);
        assert_non_null(json_object_get(j, "time"));
        if (i == 0)
            assert_string_equal(type, "file_start");
        if (strcmp(type, "checkpoint") == 0) {
            ckpts++;
            assert_string_equal(json_string_value(json_object_get(j, "chain")), prev);
            assert_non_null(json_string_value(json_object_get(j, "hmac")));
        }
        if (strcmp(type, "decision") == 0)
            assert_null(strstr(ls.l[i], "\"time\":null"));
        snprintf(prev, sizeof prev, "%s", json_string_value(json_object_get(j, "hash")));
        json_decref(j);
    }
    assert_int_equal(ckpts, 5);
    free_lines(&ls);

    bg_audit_verify_result_t r = verify_dir(dir);
    assert_true(r.ok);
    assert_int_equal(r.records, 207);
    assert_int_equal(r.checkpoints_verified, 5);
    assert_int_equal(r.first_seq, 1);

    r = verify_dir_keyed(dir, 0);
    assert_true(r.ok);
    assert_int_equal(r.checkpoints_verified, 0);

    /* A wrong key fails on the first checkpoint. */
    bg_audit_key_t wrong;
    char err[128];
    unsigned char wk[32];
    memset(wk, 7, sizeof wk);
    assert_int_equal(bg_audit_key_from_bytes(wk, sizeof wk, &wrong, err, sizeof err), 0);
    const char *files[1] = {file};
    bg_audit_verify_options_t opt = {.keys = &wrong, .nkeys = 1};
    assert_int_equal(bg_audit_verify_files(files, 1, &opt, &r), 1);
    assert_non_null(strstr(r.problem, "not one of the keys given"));
}

/* Content the writer must carry byte for byte: an embedded NUL (jansson
 * writes \u0000), non-ASCII keys, escapes, nesting, a caller-set time. */
static void test_unusual_content_verifies(void **state)
{
    char dir[700], err[512];
    case_dir(dir, sizeof dir, "content");
    bg_audit_options_t o;
    base_opts(&o, dir);
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    waiter_t w = {.base = event_base_new(), .a = a};
    bg_audit_client_t *c = bg_audit_client_new(a, w.base);
    json_t *r1 = json_object();
    json_object_set_new(r1, "type", json_string("decision"));
    json_object_set_new(r1, "nul", json_stringn("a\0b", 3));
    json_t *r2 = json_pack("{s:s, s:{s:[s, s]}, s:s, s:f}", "type", "decision", "findings",
                           "\xe8\xba\xab\xe4\xbb\xbd\xe8\xaf\x81\xe5\x8f\xb7", "id_card",
                           "sensitive", "esc", "\"\\/\n\t", "ratio", 0.1);
    json_t *r3 = json_pack("{s:s, s:s}", "time", "2026-01-01T00:00:00.000Z", "type", "decision");
    assert_non_null(bg_audit_submit(c, r1, on_done, &w));
    assert_non_null(bg_audit_submit(c, r2, on_done, &w));
    assert_non_null(bg_audit_submit(c, r3, on_done, &w));
    wait_done(&w, 3);
    assert_int_equal(w.ok, 3);
    bg_audit_client_free(c);
    bg_audit_close(a);
    event_base_free(w.base);
    bg_audit_verify_result_t r = verify_dir(dir);
    assert_true(r.ok);
    char file[800];
    only_file(dir, file, sizeof file);
    lines_t ls = read_lines(file);
    assert_non_null(strstr(ls.l[2], "\"nul\":\"a\\u0000b\""));
    /* The caller's time is kept, not a second one added. */
    assert_non_null(strstr(ls.l[4], "\"time\":\"2026-01-01T00:00:00.000Z\""));
    assert_null(strstr(strstr(ls.l[4], "\"time\"") + 1, "\"time\""));
    free_lines(&ls);
}

/* A record written into its ticket's own storage (the proxy's kept
 * decision records): written as given, only its first LEN bytes; a
 * malformed one refused and freed. */
static void test_held_record(void **state)
{
    (void)state;
    char dir[700], err[512];
    case_dir(dir, sizeof dir, "held");
    bg_audit_options_t o;
    base_opts(&o, dir);
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    waiter_t w = {.base = event_base_new(), .a = a};
    bg_audit_client_t *c = bg_audit_client_new(a, w.base);
    static const char body[] = "{\"time\":\"2026-01-01T00:00:00.000Z\",\"type\":\"decision\"}";
    char *buf = NULL;
    bg_audit_ticket_t *t = bg_audit_held_new(sizeof body + 64, &buf);
    assert_non_null(t);
    assert_non_null(buf);
    memcpy(buf, body, sizeof body - 1);
    memcpy(buf + sizeof body - 1, "TRAILING", 8); /* beyond LEN: not written */
    assert_non_null(bg_audit_submit_held(c, t, sizeof body - 1, 1, on_done, &w));
    char *bad = NULL;
    bg_audit_ticket_t *tb = bg_audit_held_new(16, &bad);
    assert_non_null(tb);
    memcpy(bad, "{\"open\":", 8);
    errno = 0;
    assert_null(bg_audit_submit_held(c, tb, 8, 1, on_done, &w));
    assert_int_equal(errno, EINVAL);
    wait_done(&w, 1);
    assert_int_equal(w.ok, 1);
    bg_audit_client_free(c);
    bg_audit_close(a);
    event_base_free(w.base);
    assert_true(verify_dir(dir).ok);
    char file[800];
    only_file(dir, file, sizeof file);
    lines_t ls = read_lines(file);
    assert_non_null(strstr(ls.l[2], "\"time\":\"2026-01-01T00:00:00.000Z\",\"type\":\"decision\""));
    assert_null(strstr(ls.l[2], "TRAILING"));
    free_lines(&ls);
}

/* Every single-byte change anywhere in a log is detected. */
static void test_every_byte_is_covered(void **state)
{
    char dir[700], file[800];
    case_dir(dir, sizeof dir, "bytes");
    write_log(dir, 6, 3);
    only_file(dir, file, sizeof file);
    size_t len;
    char *data = slurp(file, &len);
    char *copy = malloc(len);
    assert_non_null(copy);
    const char *names[1] = {"log"};
    bg_audit_verify_options_t opt = {0};
    bg_audit_verify_result_t r;
    const char *datas[1] = {data};
    assert_int_equal(bg_audit_verify_mem(names, datas, &len, 1, &opt, &r), 0);
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, data, len);
        copy[i] = copy[i] == 'a' ? 'b' : (copy[i] == '\n' ? ' ' : 'a');
        const char *cd[1] = {copy};
        if (bg_audit_verify_mem(names, cd, &len, 1, &opt, &r) == 0) {
            fprintf(stderr, "  change at byte %zu not detected\n", i);
            fail();
        }
    }
    free(copy);
    free(data);
}

/* ------------------------------------------------------------------------
 * Tampering: each kind named at the first bad record
 * ------------------------------------------------------------------------ */

/* Lines are seq == line number in the first file: 1 file_start, 2
 * writer_start, 3.. records. */
static void tamper_case(const char *what, char *dir, size_t cap, char *file, size_t fcap)
{
    case_dir(dir, cap, what);
    write_log(dir, 40, 1000);
    only_file(dir, file, fcap);
}

static void test_detect_modified(void **state)
{
    char dir[700], file[800];
    tamper_case("modified", dir, sizeof dir, file, sizeof file);
    lines_t ls = read_lines(file);
    ls.l[9] = replace(ls.l[9], "\"outcome\":\"allow\"", "\"outcome\":\"block\"");
    write_lines(file, &ls);
    free_lines(&ls);
    expect_problem(dir, 1, "jsonl:10: seq 10:", "hash mismatch (record modified)");
}

static void test_detect_deleted(void **state)
{
    char dir[700], file[800];
    tamper_case("deleted", dir, sizeof dir, file, sizeof file);
    lines_t ls = read_lines(file);
    free(ls.l[9]);
    ls.l[9] = NULL;
    write_lines(file, &ls);
    free_lines(&ls);
    expect_problem(dir, 1, "jsonl:10: seq 11:", "seq 10 is missing (record deleted)");

    /* Several in a row. */
    ls = read_lines(file);
    for (int i = 9; i < 12; i++) {
        free(ls.l[i]);
        ls.l[i] = NULL;
    }
    write_lines(file, &ls);
    free_lines(&ls);
    /* Lines 10..12 now hold seq 11..13: seq 10..13 are gone. */
    expect_problem(dir, 1, "jsonl:10: seq 14:", "seq 10..13 are missing (4 records deleted)");
}

static void test_detect_inserted(void **state)
{
    char dir[700], file[800];
    tamper_case("inserted", dir, sizeof dir, file, sizeof file);
    /* A copy of an existing record. */
    lines_t ls = read_lines(file);
    char **nl = calloc(ls.n + 1, sizeof *nl);
    for (size_t i = 0, k = 0; i < ls.n; i++) {
        nl[k++] = ls.l[i];
        if (i == 9)
            nl[k++] = strdup(ls.l[i]);
    }
    free(ls.l);
    ls.l = nl;
    ls.n++;
    write_lines(file, &ls);
    free_lines(&ls);
    expect_problem(dir, 1, "jsonl:11: seq 10:", "duplicate of line 10");

    /* A fabricated record between 10 and 11. */
    case_dir(dir, sizeof dir, "inserted2");
    write_log(dir, 40, 1000);
    only_file(dir, file, sizeof file);
    ls = read_lines(file);
    nl = calloc(ls.n + 1, sizeof *nl);
    for (size_t i = 0, k = 0; i < ls.n; i++) {
        nl[k++] = ls.l[i];
        if (i == 9)
            nl[k++] = replace(strdup(ls.l[10]), "\"outcome\":\"allow\"", "\"outcome\":\"waived\"");
    }
    free(ls.l);
    ls.l = nl;
    ls.n++;
    write_lines(file, &ls);
    free_lines(&ls);
    expect_problem(dir, 1, "jsonl:11: seq 11:", "record inserted");

    /* A well-formed record with a correct hash and link, then the real one. */
    case_dir(dir, sizeof dir, "inserted3");
    write_log(dir, 40, 1000);
    only_file(dir, file, sizeof file);
    ls = read_lines(file);
    nl = calloc(ls.n + 1, sizeof *nl);
    size_t k = 0;
    for (size_t i = 0; i < ls.n; i++) {
        nl[k++] = ls.l[i];
        if (i == 9)
            nl[k++] = replace(strdup(ls.l[10]), "\"outcome\":\"allow\"", "\"outcome\":\"forged\"");
    }
    free(ls.l);
    ls.l = nl;
    ls.n = k;
    write_lines(file, &ls);
    free_lines(&ls);
    char **paths;
    size_t n;
    list_dir(dir, &paths, &n);
    /* Re-hash just the forged line (line 11) so it links to line 10. */
    {
        lines_t l2 = read_lines(paths[0]);
        char *keep = strdup(l2.l[11]);
        free_lines(&l2);
        rechain(paths, n, 0, 10);
        l2 = read_lines(paths[0]);
        free(l2.l[11]);
        l2.l[11] = keep; /* the genuine seq 11, linking to genuine seq 10 */
        for (size_t i = 12; i < l2.n; i++) {
            free(l2.l[i]);
            l2.l[i] = NULL;
        }
        write_lines(paths[0], &l2);
        free_lines(&l2);
    }
    bg_audit_free_list(paths, n);
    expect_problem(dir, 1,
                   "jsonl:12: seq 11:", "seq 11 already appeared at line 11 (record inserted)");
}

static void test_detect_reordered(void **state)
{
    char dir[700], file[800];
    tamper_case("reordered", dir, sizeof dir, file, sizeof file);
    lines_t ls = read_lines(file);
    char *t = ls.l[9];
    ls.l[9] = ls.l[10];
    ls.l[10] = t;
    write_lines(file, &ls);
    free_lines(&ls);
    expect_problem(dir, 1,
                   "jsonl:10: seq 11:", "expected seq 10, which is at line 11 (records reordered)");
}

static void test_detect_truncated(void **state)
{
    char dir[700], file[800];
    tamper_case("torn", dir, sizeof dir, file, sizeof file);
    size_t len;
    char *data = slurp(file, &len);
    spit(file, data, len - 40);
    free(data);
    expect_problem(dir, 1, "jsonl:43: after seq 42:", "incomplete");
    expect_problem(dir, 1, "", "file truncated (torn write)");
}

/* Several files (rotation by size), returned in PATHS. */
static void multi_file_log(char *dir, size_t cap, const char *what, char ***paths, size_t *n)
{
    case_dir(dir, cap, what);
    bg_audit_options_t o;
    base_opts(&o, dir);
    o.rotate_bytes = 4096;
    o.checkpoint_every = 10;
    write_log_opts(&o, 1, 120);
    list_dir(dir, paths, n);
    assert_true(*n >= 4);
}

static void test_rotation_by_size(void **state)
{
    char dir[700];
    char **paths;
    size_t n;
    multi_file_log(dir, sizeof dir, "rotate", &paths, &n);
    char last_hash[65] = "";
    for (size_t f = 0; f < n; f++) {
        lines_t ls = read_lines(paths[f]);
        json_t *first = json_loads(ls.l[0], 0, NULL);
        assert_string_equal(json_string_value(json_object_get(first, "type")), "file_start");
        assert_int_equal(json_integer_value(json_object_get(first, "file_index")),
                         (json_int_t)(f + 1));
        if (f > 0) {
            assert_string_equal(json_string_value(json_object_get(first, "prev")), last_hash);
            const char *base = strrchr(paths[f - 1], '/') + 1;
            assert_string_equal(json_string_value(json_object_get(first, "prev_file")), base);
        } else {
            assert_true(json_is_null(json_object_get(first, "prev_file")));
        }
        json_decref(first);
        json_t *last = json_loads(ls.l[ls.n - 1], 0, NULL);
        assert_string_equal(json_string_value(json_object_get(last, "type")), "checkpoint");
        assert_string_equal(json_string_value(json_object_get(last, "reason")),
                            f + 1 < n ? "rotate" : "close");
        snprintf(last_hash, sizeof last_hash, "%s",
                 json_string_value(json_object_get(last, "hash")));
        json_decref(last);
        struct stat st;
        assert_int_equal(stat(paths[f], &st), 0);
        /* Rotation happens between commits: one commit past the limit at
         * most (a round is 20 records of ~200 bytes). */
        assert_true(st.st_size < 4096 + 20 * 260);
        free_lines(&ls);
    }
    bg_audit_free_list(paths, n);
    bg_audit_verify_result_t r = verify_dir(dir);
    assert_true(r.ok);
    assert_int_equal(r.files, n);
}

static void test_detect_deleted_middle_file(void **state)
{
    char dir[700];
    char **paths;
    size_t n;
    multi_file_log(dir, sizeof dir, "delfile", &paths, &n);
    assert_int_equal(unlink(paths[1]), 0);
    bg_audit_free_list(paths, n);
    expect_problem(dir, 1, "000003.jsonl:1: seq", "the file with index 2 is missing");
    expect_problem(dir, 1, "", "(file deleted)");
}

static void test_detect_truncated_middle_file(void **state)
{
    char dir[700];
    char **paths;
    size_t n;
    multi_file_log(dir, sizeof dir, "cutfile", &paths, &n);
    lines_t ls = read_lines(paths[1]);
    size_t keep = ls.n - 3;
    for (size_t i = keep; i < ls.n; i++) {
        free(ls.l[i]);
        ls.l[i] = NULL;
    }
    write_lines(paths[1], &ls);
    free_lines(&ls);
    char where[64];
    snprintf(where, sizeof where, "000002.jsonl:%zu: after seq", keep + 1);
    bg_audit_free_list(paths, n);
    expect_problem(dir, 1, where, "3 record(s) cut from its end (file truncated)");
}

static void test_detect_head_cut(void **state)
{
    char dir[700];
    char **paths;
    size_t n;
    multi_file_log(dir, sizeof dir, "headcut", &paths, &n);
    lines_t ls = read_lines(paths[1]);
    bg_audit_line_t pl;
    assert_int_equal(bg_audit_chain_parse_line(ls.l[3], strlen(ls.l[3]), &pl), 0);
    for (size_t i = 0; i < 3; i++) {
        free(ls.l[i]);
        ls.l[i] = NULL;
    }
    write_lines(paths[1], &ls);
    free_lines(&ls);
    bg_audit_free_list(paths, n);
    char where[64], what[128];
    snprintf(where, sizeof where, "000002.jsonl:1: seq %" PRIu64 ":", pl.seq);
    snprintf(what, sizeof what, "seq %" PRIu64 "..%" PRIu64 " cut from its head", pl.seq - 3,
             pl.seq - 1);
    expect_problem(dir, 1, where, what);
}

static void test_unsigned_checkpoint_with_key(void **state)
{
    char dir[700];
    case_dir(dir, sizeof dir, "nokey");
    bg_audit_options_t o;
    base_opts(&o, dir);
    o.key = NULL;
    o.key_len = 0;
    o.checkpoint_every = 10;
    write_log_opts(&o, 1, 25);
    /* Fine without a key, refused with one. */
    bg_audit_verify_result_t r = verify_dir_keyed(dir, 0);
    assert_true(r.ok);
    assert_int_equal(r.checkpoints, 3);
    expect_problem(dir, 1,
                   "jsonl:11: seq 11:", "checkpoint is not signed although a key was given");
}

static void test_detect_oldest_file_deleted(void **state)
{
    char dir[700];
    char **paths;
    size_t n;
    multi_file_log(dir, sizeof dir, "deloldest", &paths, &n);
    assert_int_equal(unlink(paths[0]), 0);
    /* As a complete log (a directory): not accounted for by retention. */
    expect_problem(dir, 1, "000002.jsonl:1: seq", "no retention_delete record accounts");
    /* Files given one by one: a note, not a failure. */
    bg_audit_verify_options_t opt = {0};
    bg_audit_verify_result_t r;
    assert_int_equal(bg_audit_verify_files((const char *const *)paths + 1, n - 1, &opt, &r), 0);
    bg_audit_free_list(paths, n);
}

static void test_detect_files_out_of_order(void **state)
{
    char dir[700];
    char **paths;
    size_t n;
    multi_file_log(dir, sizeof dir, "fileorder", &paths, &n);
    char *t = paths[1];
    paths[1] = paths[2];
    paths[2] = t;
    bg_audit_verify_options_t opt = {0};
    bg_audit_verify_result_t r;
    assert_int_equal(bg_audit_verify_files((const char *const *)paths, n, &opt, &r), 1);
    assert_non_null(strstr(r.problem, "000003.jsonl:1: seq"));
    assert_non_null(strstr(r.problem, "the file with index 2 is missing"));
    bg_audit_free_list(paths, n);
}

static void test_detect_tampered_checkpoint(void **state)
{
    char dir[700], file[800];
    case_dir(dir, sizeof dir, "ckpt");
    write_log(dir, 40, 10);
    only_file(dir, file, sizeof file);
    /* Line 13 is the first checkpoint (file_start, writer_start, 8 records
     * fill the first 10, then... ): find it. */
    lines_t ls = read_lines(file);
    size_t ck = 0;
    for (size_t i = 0; i < ls.n && ck == 0; i++)
        if (strstr(ls.l[i], "\"type\":\"checkpoint\"") != NULL)
            ck = i;
    assert_true(ck > 0);
    char *h = strstr(ls.l[ck], "\"hmac\":\"") + 8;
    h[0] = h[0] == '0' ? '1' : '0';
    write_lines(file, &ls);
    free_lines(&ls);
    char where[64];
    snprintf(where, sizeof where, "jsonl:%zu: seq %zu:", ck + 1, ck + 1);
    /* Edited in place: the hash says so. */
    expect_problem(dir, 1, where, "hash mismatch (record modified)");
    /* Edited and the chain re-hashed: only the signature can tell. */
    char **paths;
    size_t n;
    list_dir(dir, &paths, &n);
    rechain(paths, n, 0, ck);
    bg_audit_free_list(paths, n);
    expect_problem(dir, 1, where, "checkpoint signature does not verify");
    /* Without the key the forgery is not visible: the report says so. */
    bg_audit_verify_result_t r = verify_dir_keyed(dir, 0);
    assert_true(r.ok);
}

static void test_detect_rewritten_history(void **state)
{
    char dir[700], file[800];
    case_dir(dir, sizeof dir, "rewrite");
    write_log(dir, 40, 10);
    only_file(dir, file, sizeof file);
    lines_t ls = read_lines(file);
    ls.l[4] = replace(ls.l[4], "\"outcome\":\"allow\"", "\"outcome\":\"block\"");
    write_lines(file, &ls);
    free_lines(&ls);
    char **paths;
    size_t n;
    list_dir(dir, &paths, &n);
    rechain(paths, n, 0, 4);
    bg_audit_free_list(paths, n);
    /* The first checkpoint after the edit no longer verifies. */
    expect_problem(dir, 1, "jsonl:11: seq 11:", "checkpoint signature does not verify");

    /* Removing the checkpoints as well leaves too long an unsigned tail. */
    ls = read_lines(file);
    for (size_t i = 0; i < ls.n; i++) {
        if (strstr(ls.l[i], "\"type\":\"checkpoint\"") != NULL) {
            free(ls.l[i]);
            ls.l[i] = NULL;
        }
    }
    /* Compact and renumber the seqs the way an attacker would. */
    lines_t out = {calloc(ls.n, sizeof(char *)), 0};
    uint64_t seq = 1;
    for (size_t i = 0; i < ls.n; i++) {
        if (ls.l[i] == NULL)
            continue;
        bg_audit_line_t pl;
        assert_int_equal(bg_audit_chain_parse_line(ls.l[i], strlen(ls.l[i]), &pl), 0);
        char from[40], to[40];
        snprintf(from, sizeof from, "{\"seq\":%" PRIu64 ",", pl.seq);
        snprintf(to, sizeof to, "{\"seq\":%" PRIu64 ",", seq++);
        out.l[out.n++] = replace(ls.l[i], from, to);
        ls.l[i] = NULL;
    }
    free_lines(&ls);
    write_lines(file, &out);
    free_lines(&out);
    list_dir(dir, &paths, &n);
    rechain(paths, n, 0, 1);
    bg_audit_free_list(paths, n);
    expect_problem(dir, 1, "", "records follow the last checkpoint");
}

/* ------------------------------------------------------------------------
 * Crash repair
 * ------------------------------------------------------------------------ */

static void test_torn_line_repaired(void **state)
{
    char dir[700], file[800];
    case_dir(dir, sizeof dir, "repair");
    write_log(dir, 20, 1000);
    only_file(dir, file, sizeof file);
    /* A marker no hash, signature or key can hold (not hex). */
    const char torn[] = "{\"seq\":25,\"prev\":\"tornmarker\",\"type\":\"dec";
    FILE *fp = fopen(file, "ab");
    fwrite(torn, 1, sizeof torn - 1, fp);
    fclose(fp);
    expect_problem(dir, 1, "", "file truncated (torn write)");

    /* Reopen: the tail is cut and the cut recorded. */
    bg_audit_options_t o;
    base_opts(&o, dir);
    write_log_opts(&o, 100, 5);
    bg_audit_verify_result_t r = verify_dir(dir);
    assert_true(r.ok);
    lines_t ls = read_lines(file);
    int found = 0;
    for (size_t i = 0; i < ls.n; i++) {
        if (strstr(ls.l[i], "\"type\":\"repair\"") == NULL)
            continue;
        json_t *j = json_loads(ls.l[i], 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(j, "cut_bytes")), sizeof torn - 1);
        assert_string_equal(json_string_value(json_object_get(j, "cut_reason")), "torn last line");
        /* The bytes themselves are not in the log. */
        assert_null(strstr(ls.l[i], "tornmarker"));
        json_decref(j);
        found++;
    }
    assert_int_equal(found, 1);
    /* writer_start says the previous shutdown was clean (the close checkpoint
     * was before the torn bytes). */
    free_lines(&ls);

    /* Garbage (a zero-filled block after a power loss) is cut as well. */
    char zeros[300];
    memset(zeros, 0, sizeof zeros);
    zeros[100] = '\n';
    fp = fopen(file, "ab");
    fwrite(zeros, 1, sizeof zeros, fp);
    fclose(fp);
    write_log_opts(&o, 200, 2);
    r = verify_dir(dir);
    assert_true(r.ok);
}

static void test_damage_in_the_middle_refused(void **state)
{
    char dir[700], file[800];
    case_dir(dir, sizeof dir, "middle");
    write_log(dir, 20, 1000);
    only_file(dir, file, sizeof file);
    lines_t ls = read_lines(file);
    ls.l[5] = replace(ls.l[5], "\"outcome\":\"allow\"", "\"outcome\":\"block\"");
    write_lines(file, &ls);
    free_lines(&ls);
    bg_audit_options_t o;
    base_opts(&o, dir);
    char err[512];
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_null(a);
    assert_non_null(strstr(err, "damaged other than at its tail"));
    assert_non_null(strstr(err, ":6: hash mismatch"));
}

/* Child: write records as fast as completions come, report each acked
 * (seq, n) on FD. Never returns. */
static void crash_child(const char *dir, int fd)
{
    bg_audit_options_t o;
    base_opts(&o, dir);
    o.checkpoint_every = 100;
    char err[512];
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    if (a == NULL)
        _exit(3);
    struct event_base *base = event_base_new();
    bg_audit_client_t *c = bg_audit_client_new(a, base);
    waiter_t w = {.base = base, .a = a};
    /* Rounds of 32: submit, wait for all, report the round's last record
     * (completions are in submission order). */
    for (int first = 0;; first += 32) {
        for (int i = 0; i < 32; i++)
            if (bg_audit_submit(c, rec(first + i), on_done, &w) == NULL)
                _exit(4);
        wait_done(&w, w.done + 32);
        if (w.failed != 0)
            _exit(5);
        char line[64];
        int len = snprintf(line, sizeof line, "%d %" PRIu64 "\n", first + 31, w.last_seq);
        if (write(fd, line, (size_t)len) != len)
            _exit(6);
    }
}

static void test_kill9_loses_nothing_acknowledged(void **state)
{
    char dir[700];
    case_dir(dir, sizeof dir, "kill9");
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        crash_child(dir, p[1]);
    }
    close(p[1]);
    FILE *fp = fdopen(p[0], "r");
    int last_n = -1;
    uint64_t last_seq = 0;
    char line[128];
    int rounds = 0;
    while (rounds < 40 && fgets(line, sizeof line, fp) != NULL) {
        assert_int_equal(sscanf(line, "%d %" SCNu64, &last_n, &last_seq), 2);
        rounds++;
    }
    kill(pid, SIGKILL);
    /* Acks that were in the pipe when it died count too. */
    while (fgets(line, sizeof line, fp) != NULL)
        if (sscanf(line, "%d %" SCNu64, &last_n, &last_seq) != 2)
            break;
    fclose(fp);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_true(last_n > 0);

    /* Before repair: intact, or only a torn last line. */
    bg_audit_verify_result_t r = verify_dir(dir);
    if (!r.ok)
        assert_non_null(strstr(r.problem, "file truncated (torn write)"));
    /* Restart repairs; then everything verifies. */
    bg_audit_options_t o;
    base_opts(&o, dir);
    write_log_opts(&o, 1000000, 3);
    r = verify_dir(dir);
    assert_true(r.ok);
    /* Every acknowledged record is there, at its seq. */
    char **paths;
    size_t n;
    list_dir(dir, &paths, &n);
    int max_n = -1;
    uint64_t seq_of_last = 0;
    for (size_t f = 0; f < n; f++) {
        lines_t ls = read_lines(paths[f]);
        for (size_t i = 0; i < ls.n; i++) {
            json_t *j = json_loads(ls.l[i], 0, NULL);
            json_t *jn = json_object_get(j, "n");
            if (json_is_integer(jn) && json_integer_value(jn) < 1000000 &&
                json_integer_value(jn) > max_n) {
                max_n = (int)json_integer_value(jn);
                if (max_n == last_n)
                    seq_of_last = (uint64_t)json_integer_value(json_object_get(j, "seq"));
            }
            json_decref(j);
        }
        free_lines(&ls);
    }
    bg_audit_free_list(paths, n);
    fprintf(stderr,
            "  kill -9 after %d acknowledged records (seq %" PRIu64 "); log has up to "
            "record %d\n",
            last_n + 1, last_seq, max_n);
    assert_true(max_n >= last_n);
    assert_int_equal(seq_of_last, last_seq);
}

/* ------------------------------------------------------------------------
 * Day rotation and retention, with a test clock
 * ------------------------------------------------------------------------ */

static uint64_t g_clock;
static uint64_t test_clock(void *arg)
{
    return g_clock;
}

static uint64_t utc_ms(int y, int mo, int d, int h)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h};
    return (uint64_t)timegm(&tm) * 1000u;
}

static void test_rotation_by_day(void **state)
{
    char dir[700];
    case_dir(dir, sizeof dir, "day");
    bg_audit_options_t o;
    base_opts(&o, dir);
    o.clock_ms = test_clock;
    char err[512];
    g_clock = utc_ms(2025, 3, 1, 23) + 59 * 60000u;
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    waiter_t w = {.base = event_base_new(), .a = a};
    bg_audit_client_t *c = bg_audit_client_new(a, w.base);
    submit_n(a, &w, c, 1, 5);
    g_clock = utc_ms(2025, 3, 2, 0) + 30000u;
    submit_n(a, &w, c, 6, 5);
    bg_audit_client_free(c);
    bg_audit_close(a);
    event_base_free(w.base);
    char **paths;
    size_t n;
    list_dir(dir, &paths, &n);
    assert_int_equal(n, 2);
    assert_non_null(strstr(paths[0], "audit-20250301-235900-000001.jsonl"));
    assert_non_null(strstr(paths[1], "audit-20250302-000030-000002.jsonl"));
    lines_t ls = read_lines(paths[1]);
    assert_non_null(strstr(ls.l[1], "\"time\":\"2025-03-02T00:00:30.000Z\""));
    free_lines(&ls);
    bg_audit_free_list(paths, n);
    assert_true(verify_dir(dir).ok);
}

static void test_retention(void **state)
{
    char dir[700];
    case_dir(dir, sizeof dir, "retention");
    bg_audit_options_t o;
    base_opts(&o, dir);
    o.clock_ms = test_clock;
    /* Three files, one a day (each is closed by the next day's rotation). */
    g_clock = utc_ms(2020, 1, 1, 12);
    write_log_opts(&o, 1, 3);
    g_clock = utc_ms(2020, 1, 2, 12);
    write_log_opts(&o, 10, 3);
    g_clock = utc_ms(2020, 1, 3, 12);
    write_log_opts(&o, 20, 3);
    char **paths;
    size_t n;
    list_dir(dir, &paths, &n);
    assert_int_equal(n, 3);
    lines_t first = read_lines(paths[0]);
    bg_audit_line_t last1;
    assert_int_equal(
        bg_audit_chain_parse_line(first.l[first.n - 1], strlen(first.l[first.n - 1]), &last1), 0);
    free_lines(&first);
    char name1[200], name2[200];
    snprintf(name1, sizeof name1, "%s", strrchr(paths[0], '/') + 1);
    snprintf(name2, sizeof name2, "%s", strrchr(paths[1], '/') + 1);
    bg_audit_free_list(paths, n);

    /* 1095 days after noon 2020-01-02, plus an hour: file 1 (last record
     * 2020-01-02 12:00, its rotation checkpoint) is past retention, file 2
     * (last record 2020-01-03 12:00) is not. */
    g_clock = utc_ms(2020, 1, 2, 13) + 1095ull * 86400000u;
    write_log_opts(&o, 30, 2);
    list_dir(dir, &paths, &n);
    assert_int_equal(n, 3); /* 2, 3 and the new 4 */
    assert_non_null(strstr(paths[0], name2));
    lines_t ls = read_lines(paths[2]);
    int found = 0;
    for (size_t i = 0; i < ls.n; i++) {
        if (strstr(ls.l[i], "\"type\":\"retention_delete\"") == NULL)
            continue;
        json_t *j = json_loads(ls.l[i], 0, NULL);
        assert_string_equal(json_string_value(json_object_get(j, "file")), name1);
        assert_int_equal(json_integer_value(json_object_get(j, "last_seq")), (json_int_t)last1.seq);
        assert_string_equal(json_string_value(json_object_get(j, "last_hash")), last1.hash);
        assert_int_equal(json_integer_value(json_object_get(j, "retention_days")), 1095);
        json_decref(j);
        found++;
    }
    free_lines(&ls);
    bg_audit_free_list(paths, n);
    assert_int_equal(found, 1);
    /* The directory still verifies as a complete log: its start is
     * accounted for by the retention record. */
    assert_true(verify_dir(dir).ok);

    /* Retention 0 keeps everything. */
    o.retention_days = 0;
    g_clock += 5000ull * 86400000u;
    write_log_opts(&o, 40, 1);
    list_dir(dir, &paths, &n);
    assert_int_equal(n, 4);
    bg_audit_free_list(paths, n);
}

/* ------------------------------------------------------------------------
 * Durability and group commit
 * ------------------------------------------------------------------------ */

static void test_strict_acks_after_fsync(void **state)
{
    char dir[700];
    case_dir(dir, sizeof dir, "strict");
    bg_audit_options_t o;
    base_opts(&o, dir);
    char err[512];
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    waiter_t w = {.base = event_base_new(), .a = a, .check_durable = 1};
    bg_audit_client_t *c = bg_audit_client_new(a, w.base);
    submit_n(a, &w, c, 1, 300);
    assert_int_equal(w.ok, 300);
    assert_int_equal(w.not_durable, 0);
    assert_int_equal(w.out_of_order, 0);
    bg_audit_stats_t st;
    bg_audit_stats(a, &st);
    assert_true(st.fsyncs >= 1);
    assert_int_equal(st.records_written, 300);
    bg_audit_client_free(c);
    bg_audit_close(a);
    event_base_free(w.base);

    /* Relaxed: acknowledged before the sync, which the same check sees. */
    case_dir(dir, sizeof dir, "relaxed");
    base_opts(&o, dir);
    o.durability = BG_AUDIT_RELAXED;
    o.relaxed_interval_ms = 10000;
    a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    waiter_t w2 = {.base = event_base_new(), .a = a, .check_durable = 1};
    c = bg_audit_client_new(a, w2.base);
    submit_n(a, &w2, c, 1, 50);
    assert_int_equal(w2.ok, 50);
    assert_true(w2.not_durable > 0);
    bg_audit_client_free(c);
    bg_audit_close(a);
    event_base_free(w2.base);
    assert_true(verify_dir(dir).ok);
}

/*
 * Records without a callback (the proxy's completion records) are lazy: they
 * wake nobody, ride with the next waited-for record, in order, or leave on
 * their own after BG_AUDIT_LAZY_MS, and freeing the client still writes them.
 */
static void test_lazy_records(void **state)
{
    char dir[700];
    case_dir(dir, sizeof dir, "lazy");
    bg_audit_options_t o;
    base_opts(&o, dir);
    char err[512];
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    waiter_t w = {.base = event_base_new(), .a = a};
    bg_audit_client_t *c = bg_audit_client_new(a, w.base);
    bg_audit_stats_t st;

    /* Queued, not handed over: nothing reaches the writer in this pass. */
    assert_non_null(bg_audit_submit(c, rec(1), NULL, NULL));
    assert_non_null(bg_audit_submit(c, rec(2), NULL, NULL));
    event_base_loop(w.base, EVLOOP_NONBLOCK);
    bg_audit_stats(a, &st);
    assert_int_equal(st.records_written + st.queued_records, 0);

    /* A waited-for record takes them along, after them in the chain. */
    submit_n(a, &w, c, 3, 1);
    assert_int_equal(w.ok, 1);
    bg_audit_stats(a, &st);
    assert_int_equal(st.records_written, 3);
    uint64_t seq3 = w.last_seq;

    /* Alone, a lazy record leaves by itself within BG_AUDIT_LAZY_MS. */
    assert_non_null(bg_audit_submit(c, rec(4), NULL, NULL));
    uint64_t t0 = bg_util_mono_us();
    do {
        struct timeval tv = {0, 20000};
        event_base_loopexit(w.base, &tv);
        event_base_dispatch(w.base);
        bg_audit_stats(a, &st);
    } while (st.records_written < 4 && bg_util_mono_us() - t0 < 5000000u);
    assert_int_equal(st.records_written, 4);

    /* Freeing the client hands over what it still holds. */
    assert_non_null(bg_audit_submit(c, rec(5), NULL, NULL));
    bg_audit_client_free(c);
    bg_audit_close(a);
    event_base_free(w.base);

    char file[1024];
    only_file(dir, file, sizeof file);
    size_t len = 0;
    char *text = slurp(file, &len);
    const char *p1 = strstr(text, "\"n\":1,"), *p2 = strstr(text, "\"n\":2,");
    const char *p3 = strstr(text, "\"n\":3,"), *p5 = strstr(text, "\"n\":5,");
    assert_true(p1 != NULL && p2 != NULL && p3 != NULL && p5 != NULL);
    assert_true(p1 < p2 && p2 < p3 && p3 < p5);
    char want[64];
    snprintf(want, sizeof want, "{\"seq\":%llu,", (unsigned long long)seq3);
    const char *line3 = strstr(text, want);
    assert_non_null(line3);
    assert_true(p2 < line3 && line3 < p3); /* the callback's seq is record 3's */
    free(text);
    assert_true(verify_dir(dir).ok);
}

typedef struct gc_thread gc_thread_t;
static void gc_done(void *arg, int status, uint64_t seq, const char *reason);
typedef struct {
    gc_thread_t *t;
    uint64_t submitted_us;
} gc_item_t;

struct gc_thread {
    bg_audit_t *a;
    struct event_base *base;
    bg_audit_client_t *c;
    int total, window, submitted, done, ok;
    gc_item_t *items;
    uint32_t *lat_us;
};

static void gc_submit(gc_thread_t *t)
{
    gc_item_t *it = &t->items[t->submitted];
    it->t = t;
    it->submitted_us = bg_util_mono_us();
    json_t *r = rec(t->submitted);
    t->submitted++;
    if (bg_audit_submit(t->c, r, gc_done, it) == NULL)
        abort();
}

static void gc_done(void *arg, int status, uint64_t seq, const char *reason)
{
    gc_item_t *it = arg;
    gc_thread_t *t = it->t;
    t->lat_us[t->done] = (uint32_t)(bg_util_mono_us() - it->submitted_us);
    t->done++;
    t->ok += status == 0;
    if (t->submitted < t->total)
        gc_submit(t);
    if (t->done == t->total)
        event_base_loopbreak(t->base);
}

static void *gc_main(void *arg)
{
    gc_thread_t *t = arg;
    t->base = event_base_new();
    t->c = bg_audit_client_new(t->a, t->base);
    for (int i = 0; i < t->window && t->submitted < t->total; i++)
        gc_submit(t);
    while (t->done < t->total)
        event_base_dispatch(t->base);
    bg_audit_client_free(t->c);
    event_base_free(t->base);
    return NULL;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

/* Run NT threads x PER records with WINDOW in flight each; print figures. */
static void run_load(const char *dir, const char *label, int nt, int per, int window,
                     bg_audit_stats_t *out)
{
    bg_audit_options_t o;
    base_opts(&o, dir);
    char err[512];
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    bg_audit_stats_t before;
    bg_audit_stats(a, &before);
    gc_thread_t th[8];
    pthread_t tid[8];
    uint32_t *lat = calloc((size_t)(nt * per), sizeof *lat);
    uint64_t t0 = bg_util_mono_us();
    for (int i = 0; i < nt; i++) {
        th[i] = (gc_thread_t){.a = a, .total = per, .window = window};
        th[i].items = calloc((size_t)per, sizeof *th[i].items);
        th[i].lat_us = lat + (size_t)i * (size_t)per;
        assert_int_equal(pthread_create(&tid[i], NULL, gc_main, &th[i]), 0);
    }
    for (int i = 0; i < nt; i++) {
        pthread_join(tid[i], NULL);
        assert_int_equal(th[i].ok, per);
        free(th[i].items);
    }
    uint64_t el = bg_util_mono_us() - t0;
    bg_audit_stats_t st;
    bg_audit_stats(a, &st);
    qsort(lat, (size_t)(nt * per), sizeof *lat, cmp_u32);
    size_t total = (size_t)nt * (size_t)per;
    uint64_t fs = st.fsyncs - before.fsyncs;
    fprintf(stderr,
            "  %s: %zu records from %d thread(s), %d in flight each: %.0f records/s, %" PRIu64
            " fsyncs (%.1f records per fsync, largest batch %" PRIu64 ")\n"
            "    fsync latency p50 %" PRIu64 " us, p99 %" PRIu64 " us, max %" PRIu64
            " us; record ack latency p50 %u us, p99 %u us\n",
            label, total, nt, window, (double)total * 1e6 / (double)el, fs,
            fs ? (double)total / (double)fs : 0.0, st.max_batch_records, st.fsync_us_p50,
            st.fsync_us_p99, st.fsync_us_max, lat[total / 2], lat[(total * 99) / 100]);
    free(lat);
    if (out != NULL) {
        *out = st;
        out->fsyncs = fs;
    }
    bg_audit_close(a);
}

static void test_group_commit(void **state)
{
    char dir[700];
    /* On the build directory's disk (real fsync), not tmpfs. */
    case_dir(dir, sizeof dir, "groupcommit");
    bg_audit_stats_t st;
    run_load(dir, "group commit", 2, 4000, 256, &st);
    assert_int_equal(st.records_written, 8000);
    assert_true(st.fsyncs * 4 < 8000); /* far fewer fsyncs than records */
    assert_true(verify_dir(dir).ok);

    case_dir(dir, sizeof dir, "onebyone");
    run_load(dir, "one at a time (fsync per record)", 1, 300, 1, &st);
    assert_true(st.fsyncs >= 300);
}

/* ------------------------------------------------------------------------
 * Disk full (a real 1 MiB tmpfs)
 * ------------------------------------------------------------------------ */

static json_t *big_rec(int n)
{
    /* Larger than any free slack in a tmpfs page, so no record can slip
     * into the last partly filled page of the file. */
    char pad[6000];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    return json_pack("{s:s, s:i, s:s}", "type", "decision", "n", n, "pad", pad);
}

static void test_disk_full(void **state)
{
    char mnt[700], dir[800], filler[800];
    case_dir(mnt, sizeof mnt, "tmpfs");
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        fprintf(stderr, "  SKIPPED disk-full test: cannot mount a tmpfs (%s); run as root\n",
                strerror(errno));
        rmdir(mnt);
        skip();
    }
    snprintf(dir, sizeof dir, "%s/audit", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    bg_audit_options_t o;
    base_opts(&o, dir);
    char err[512];
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    waiter_t w = {.base = event_base_new(), .a = a};
    bg_audit_client_t *c = bg_audit_client_new(a, w.base);
    for (int i = 0; i < 5; i++)
        assert_non_null(bg_audit_submit(c, big_rec(i), on_done, &w));
    wait_done(&w, 5);
    assert_int_equal(w.ok, 5);

    /* Fill the filesystem. */
    int ff = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(ff >= 0);
    static char chunk[65536];
    memset(chunk, 'F', sizeof chunk);
    for (size_t sz = sizeof chunk; sz > 0; sz /= 2)
        while (write(ff, chunk, sz) == (ssize_t)sz)
            ;
    close(ff);

    char cur[1100];
    bg_audit_stats_t st;
    bg_audit_stats(a, &st);
    snprintf(cur, sizeof cur, "%s/%s", dir, st.current_file);
    struct stat before;
    assert_int_equal(stat(cur, &before), 0);

    for (int i = 100; i < 120; i++)
        assert_non_null(bg_audit_submit(c, big_rec(i), on_done, &w));
    wait_done(&w, 25);
    assert_int_equal(w.ok, 5);
    assert_int_equal(w.failed, 20);
    fprintf(stderr, "  disk full: reason \"%s\"\n", w.reason);
    assert_string_equal(w.reason, "audit log not writable: No space left on device");
    bg_audit_stats(a, &st);
    assert_int_equal(st.failed_records, 20);
    assert_int_equal(st.healthy, 0);
    assert_non_null(strstr(st.last_error, "No space left on device"));

    /* No half line: the file is as it was, and still verifies. */
    struct stat after;
    assert_int_equal(stat(cur, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    size_t len;
    char *data = slurp(cur, &len);
    assert_true(len > 0 && data[len - 1] == '\n');
    assert_null(strstr(data, "\"n\":100,"));
    free(data);
    assert_true(verify_dir(dir).ok);

    /* Space comes back: the probe (the daemon's control loop calls it)
     * sees it without any record written, once the state has held for
     * the hysteresis interval; the next records succeed by themselves. */
    assert_int_equal(unlink(filler), 0);
    usleep(600 * 1000);
    assert_int_equal(bg_audit_probe(a), 1);
    bg_audit_stats(a, &st);
    assert_int_equal(st.healthy, 1);
    for (int i = 200; i < 210; i++)
        assert_non_null(bg_audit_submit(c, big_rec(i), on_done, &w));
    wait_done(&w, 35);
    assert_int_equal(w.ok, 15);
    bg_audit_stats(a, &st);
    assert_int_equal(st.healthy, 1);
    bg_audit_client_free(c);
    bg_audit_close(a);
    event_base_free(w.base);
    bg_audit_verify_result_t r = verify_dir(dir);
    assert_true(r.ok);

    /* The rotation path fails closed too: a full disk when a new file
     * must start. */
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
}

/* ------------------------------------------------------------------------
 * Clients: forget, free with records in flight, free from a callback
 * ------------------------------------------------------------------------ */

static int g_forgotten_calls;
static void forgotten_cb(void *arg, int status, uint64_t seq, const char *reason)
{
    g_forgotten_calls++;
}

typedef struct {
    bg_audit_client_t *c;
    struct event_base *base;
    int calls;
} freer_t;

static void free_in_cb(void *arg, int status, uint64_t seq, const char *reason)
{
    freer_t *f = arg;
    f->calls++;
    bg_audit_client_free(f->c);
    event_base_loopbreak(f->base);
}

static void test_forget_and_client_free(void **state)
{
    char dir[700];
    case_dir(dir, sizeof dir, "forget");
    bg_audit_options_t o;
    base_opts(&o, dir);
    char err[512];
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    waiter_t w = {.base = event_base_new(), .a = a};
    bg_audit_client_t *c = bg_audit_client_new(a, w.base);
    g_forgotten_calls = 0;
    for (int i = 0; i < 10; i++) {
        bg_audit_ticket_t *t = bg_audit_submit(c, rec(i), forgotten_cb, NULL);
        assert_non_null(t);
        bg_audit_forget(t);
    }
    submit_n(a, &w, c, 10, 5); /* FIFO: these complete after the forgotten */
    assert_int_equal(g_forgotten_calls, 0);

    /* Free with records in flight: no callback, no leak. */
    for (int i = 0; i < 10; i++)
        assert_non_null(bg_audit_submit(c, rec(100 + i), forgotten_cb, NULL));
    bg_audit_client_free(c);

    /* Free from inside a callback, with more completions queued behind. */
    freer_t f = {.base = w.base};
    f.c = bg_audit_client_new(a, w.base);
    for (int i = 0; i < 10; i++)
        assert_non_null(bg_audit_submit(f.c, rec(200 + i), free_in_cb, &f));
    struct timeval tv = {10, 0};
    event_base_loopexit(w.base, &tv);
    event_base_dispatch(w.base);
    assert_int_equal(f.calls, 1);

    bg_audit_close(a);
    /* Run the base once more: nothing may fire. */
    event_base_loop(w.base, EVLOOP_NONBLOCK);
    assert_int_equal(g_forgotten_calls, 0);
    event_base_free(w.base);

    /* All 35 records were written even though nobody waited for most. */
    bg_audit_verify_result_t r = verify_dir(dir);
    assert_true(r.ok);
    assert_int_equal(r.records, 2 + 35 + 1);
}

/* ------------------------------------------------------------------------
 * API contracts
 * ------------------------------------------------------------------------ */

static void test_submit_refusals_and_lock(void **state)
{
    char dir[700];
    case_dir(dir, sizeof dir, "refuse");
    bg_audit_options_t o;
    base_opts(&o, dir);
    o.max_record_bytes = 1000;
    char err[512];
    bg_audit_t *a = bg_audit_open(&o, err, sizeof err);
    assert_non_null(a);
    struct event_base *base = event_base_new();
    bg_audit_client_t *c = bg_audit_client_new(a, base);
    errno = 0;
    assert_null(bg_audit_submit(c, json_array(), on_done, NULL));
    assert_int_equal(errno, EINVAL);
    assert_null(bg_audit_submit(c, json_pack("{s:i}", "seq", 5), on_done, NULL));
    assert_int_equal(errno, EINVAL);
    assert_null(bg_audit_submit(c, json_pack("{s:s}", "hash", "x"), on_done, NULL));
    assert_int_equal(errno, EINVAL);
    assert_null(bg_audit_submit(c, json_pack("{s:s}", "type", "checkpoint"), on_done, NULL));
    assert_int_equal(errno, EINVAL);
    char big[2000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_null(bg_audit_submit(c, json_pack("{s:s}", "pad", big), on_done, NULL));
    assert_int_equal(errno, EMSGSIZE);

    /* A second writer on the same directory is refused. */
    bg_audit_t *b = bg_audit_open(&o, err, sizeof err);
    assert_null(b);
    assert_non_null(strstr(err, "in use by another writer"));

    /* Bad options. */
    bg_audit_options_t bad;
    base_opts(&bad, dir);
    bad.prefix = "../x";
    assert_null(bg_audit_open(&bad, err, sizeof err));
    assert_non_null(strstr(err, "prefix"));
    base_opts(&bad, dir);
    bad.key_len = 16;
    assert_null(bg_audit_open(&bad, err, sizeof err));

    bg_audit_client_free(c);
    bg_audit_close(a);
    event_base_free(base);
}

static void test_keys(void **state)
{
    char dir[700], path[800], err[256];
    case_dir(dir, sizeof dir, "keys");
    assert_int_equal(mkdir(dir, 0700), 0);
    bg_audit_key_t k;

    /* Hex with a newline. */
    snprintf(path, sizeof path, "%s/hex", dir);
    char hex[80];
    bg_hex_encode(KEY, sizeof KEY, hex);
    strcat(hex, "\n");
    spit(path, hex, strlen(hex));
    assert_int_equal(bg_audit_key_from_file(path, &k, err, sizeof err), 0);
    assert_int_equal(k.len, 32);
    assert_memory_equal(k.bytes, KEY, 32);
    /* Key id: the first 8 hex digits of SHA-256(key). */
    unsigned char md[32];
    unsigned int mdlen;
    EVP_Digest(KEY, sizeof KEY, md, &mdlen, EVP_sha256(), NULL);
    char mdhex[65];
    bg_hex_encode(md, 4, mdhex);
    assert_string_equal(k.id, mdhex);
    bg_audit_key_wipe(&k);
    static const unsigned char zero[sizeof k] = {0};
    assert_memory_equal(&k, zero, sizeof k);

    /* Raw bytes (including a NUL). */
    unsigned char raw[40];
    for (int i = 0; i < 40; i++)
        raw[i] = (unsigned char)(i * 7);
    snprintf(path, sizeof path, "%s/raw", dir);
    spit(path, (const char *)raw, sizeof raw);
    assert_int_equal(bg_audit_key_from_file(path, &k, err, sizeof err), 0);
    assert_int_equal(k.len, 40);
    assert_memory_equal(k.bytes, raw, 40);

    /* Too short; missing. */
    snprintf(path, sizeof path, "%s/short", dir);
    spit(path, "tooshort", 8);
    assert_int_equal(bg_audit_key_from_file(path, &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "too short"));
    assert_null(strstr(err, "tooshort")); /* no key material in errors */
    assert_int_equal(bg_audit_key_from_file("/nonexistent/key", &k, err, sizeof err), -1);

    /* Environment. */
    setenv("BG_TEST_AUDIT_KEY", hex, 1);
    assert_int_equal(bg_audit_key_from_env("BG_TEST_AUDIT_KEY", &k, err, sizeof err), 0);
    assert_memory_equal(k.bytes, KEY, 32);
    unsetenv("BG_TEST_AUDIT_KEY");
    assert_int_equal(bg_audit_key_from_env("BG_TEST_AUDIT_KEY", &k, err, sizeof err), -1);
    bg_audit_key_wipe(&k);
}

/* Run the installed-layout binary `bordergate audit ARGV...` (ARGV[0] is
 * "verify"; the command line lives in cli/cmd_audit.c) with stdout
 * captured into OUT; its exit status. */
static int run_cli(int argc, char **argv, char *out, size_t cap)
{
    char path[800], bin[800];
    const char *b = getenv("BG_BUILD_DIR");
    snprintf(bin, sizeof bin, "%s/bordergate", b != NULL && b[0] ? b : ".");
    snprintf(path, sizeof path, "%s/cli-out", g_root);
    char *av[16] = {bin, "audit"};
    assert_true(argc + 3 <= 16);
    for (int i = 0; i < argc; i++)
        av[2 + i] = argv[i];
    av[2 + argc] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(127);
        close(fd);
        execv(bin, av);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 127);
    size_t len;
    char *s = slurp(path, &len);
    snprintf(out, cap, "%s", s);
    free(s);
    return WEXITSTATUS(status);
}

static void test_cli_verify(void **state)
{
    char dir[700], keyfile[800], out[4096], file[800];
    case_dir(dir, sizeof dir, "cli");
    write_log(dir, 30, 10);
    snprintf(keyfile, sizeof keyfile, "%s.key", dir);
    char hex[80];
    bg_hex_encode(KEY, sizeof KEY, hex);
    spit(keyfile, hex, strlen(hex));
    char *argv[] = {"verify", "--key", keyfile, dir, NULL};
    assert_int_equal(run_cli(4, argv, out, sizeof out), 0);
    assert_non_null(strstr(out, "OK: 36 records in 1 file, chain intact, 4 checkpoints verified"));

    char *argv2[] = {"verify", dir, NULL};
    assert_int_equal(run_cli(2, argv2, out, sizeof out), 0);
    assert_non_null(strstr(out, "signatures not checked"));

    only_file(dir, file, sizeof file);
    lines_t ls = read_lines(file);
    ls.l[7] = replace(ls.l[7], "\"route\":\"r1\"", "\"route\":\"r2\"");
    write_lines(file, &ls);
    free_lines(&ls);
    assert_int_equal(run_cli(4, argv, out, sizeof out), 1);
    assert_non_null(strstr(out, "FAIL: "));
    assert_non_null(strstr(out, ".jsonl:8: seq 8: hash mismatch (record modified)"));

    char *argv3[] = {"verify", "--bogus", NULL};
    assert_int_equal(run_cli(2, argv3, out, sizeof out), 2);
}

/* ------------------------------------------------------------------------ */

static int setup(void **state)
{
    const char *b = getenv("BG_BUILD_DIR");
    snprintf(g_root, sizeof g_root, "%s/test-audit-XXXXXX", b != NULL && b[0] ? b : "/tmp");
    if (mkdtemp(g_root) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    if (getenv("BG_KEEP_TEST_FILES") == NULL)
        rm_rf(g_root);
    else
        fprintf(stderr, "test files kept in %s\n", g_root);
    return 0;
}

/* The record writers' printf-free number and time formatting gives what
 * printf and strftime give. */
static void test_record_number_and_time_formatting(void **state)
{
    (void)state;
    static const uint64_t us[] = {
        0, 1, 9, 999, 1000, 1001, 12345, 999999, 1000000, 86400000123ull, UINT64_MAX};
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        bg_sbuf_t b = {0};
        char want[64];
        bg_sbuf_addu(&b, us[i]);
        bg_sbuf_add(&b, " ", 1);
        bg_sbuf_addms(&b, us[i]);
        bg_sbuf_add(&b, " ", 1);
        bg_sbuf_addi(&b, -(long long)(us[i] % 100000));
        bg_sbuf_add(&b, "", 1);
        snprintf(want, sizeof want, "%" PRIu64 " %" PRIu64 ".%03u %lld", us[i], us[i] / 1000,
                 (unsigned)(us[i] % 1000), -(long long)(us[i] % 100000));
        assert_false(b.failed);
        assert_string_equal(b.p, want);
        bg_sbuf_free(&b);
    }
    static const uint64_t ms[] = {0,
                                  999,
                                  1718000000000ull,
                                  1718000000001ull,
                                  1718000000999ull,
                                  1718000001000ull,
                                  1767225599999ull,
                                  1767225600000ull};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char got[40], base[32], want[40];
        time_t t = (time_t)(ms[i] / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want, sizeof want, "%s.%03uZ", base, (unsigned)(ms[i] % 1000));
        bg_util_format_time(ms[i], got, sizeof got);
        assert_string_equal(got, want);
    }
    char small[11];
    bg_util_format_time(1718000000123ull, small, sizeof small);
    assert_string_equal(small, "2024-06-10");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_number_and_time_formatting),
        cmocka_unit_test(test_chain_written_and_verified),
        cmocka_unit_test(test_every_byte_is_covered),
        cmocka_unit_test(test_unusual_content_verifies),
        cmocka_unit_test(test_held_record),
        cmocka_unit_test(test_detect_modified),
        cmocka_unit_test(test_detect_deleted),
        cmocka_unit_test(test_detect_inserted),
        cmocka_unit_test(test_detect_reordered),
        cmocka_unit_test(test_detect_truncated),
        cmocka_unit_test(test_rotation_by_size),
        cmocka_unit_test(test_detect_deleted_middle_file),
        cmocka_unit_test(test_detect_truncated_middle_file),
        cmocka_unit_test(test_detect_head_cut),
        cmocka_unit_test(test_detect_oldest_file_deleted),
        cmocka_unit_test(test_unsigned_checkpoint_with_key),
        cmocka_unit_test(test_detect_files_out_of_order),
        cmocka_unit_test(test_detect_tampered_checkpoint),
        cmocka_unit_test(test_detect_rewritten_history),
        cmocka_unit_test(test_torn_line_repaired),
        cmocka_unit_test(test_damage_in_the_middle_refused),
        cmocka_unit_test(test_kill9_loses_nothing_acknowledged),
        cmocka_unit_test(test_rotation_by_day),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_strict_acks_after_fsync),
        cmocka_unit_test(test_lazy_records),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_forget_and_client_free),
        cmocka_unit_test(test_submit_refusals_and_lock),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_cli_verify),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
