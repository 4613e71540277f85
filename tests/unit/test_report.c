/*
 * Audit reports: dates, the report's counts and groups over real files
 * (with other record types, an unparsable line and a torn last line mixed
 * in), the subject look-up (pseudonym computed exactly as the proxy does,
 * completions joined), and the commands' output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "audit/report.h"
#include "common/pseudonym.h"
#include "common/util.h"

static char g_root[512];
static int g_case;

static void case_path(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "%s/%02d-%s", g_root, ++g_case, what);
}

/* HMAC-SHA-256(key = 0x6b x 32, "u-1001"), as the proxy recorded it (and
 * as Python's hmac module computes it). */
#define KEY_HEX "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b"
#define U1001 "f70698ce0beb6b62b0c848ea701bc09924b134d575b2cbc97f6b5649c4425b5f"
#define S2 "2222222222222222222222222222222222222222222222222222222222222222"
#define S3 "3333333333333333333333333333333333333333333333333333333333333333"

static void test_dates(void **state)
{
    (void)state;
    int64_t v, w;
    assert_int_equal(bg_report_parse_date("2026-03-01T00:00:00Z", 0, &v), 0);
    assert_int_equal(v, 1772323200000LL);
    /* A bare date is China midnight; as an end, the day is included. */
    assert_int_equal(bg_report_parse_date("2026-03-01", 0, &w), 0);
    assert_int_equal(w, v - 8 * 3600 * 1000LL);
    assert_int_equal(bg_report_parse_date("2026-03-01", 1, &w), 0);
    assert_int_equal(w, v + 16 * 3600 * 1000LL);
    assert_int_equal(bg_report_parse_date("2026-03-01T08:00", 0, &w), 0);
    assert_int_equal(w, v);
    assert_int_equal(bg_report_parse_date("2026-03-01T05:30:00.250+05:30", 0, &w), 0);
    assert_int_equal(w, v + 250);
    assert_int_equal(bg_report_parse_date("2026-02-28T23:00:00-01:00", 0, &w), 0);
    assert_int_equal(w, v);
    assert_int_equal(bg_report_parse_date("2024-02-29", 0, &w), 0);
    static const char *const bad[] = {"2026-02-29",         "2026-13-01",  "2026-00-10",
                                      "2026-03-01T24:00",   "2026-3-1",    "yesterday",
                                      "2026-03-01T10:00+8", "2026-03-01Z", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bg_report_parse_date(bad[i], 0, &w), -1);
    json_t *r = json_pack("{s:s}", "time", "2026-03-01T00:00:00.012Z");
    assert_int_equal(bg_report_record_time(r), v + 12);
    json_object_set_new(r, "time", json_string("garbage"));
    assert_true(bg_report_record_time(r) == BG_REPORT_NO_TIME);
    json_decref(r);
}

static void test_pseudonym_matches_the_proxy(void **state)
{
    (void)state;
    unsigned char key[32];
    char out[65];
    memset(key, 0x6b, sizeof key);
    assert_int_equal(bg_pseudonym(key, sizeof key, "u-1001", 6, out), 0);
    assert_string_equal(out, U1001);
    assert_int_equal(bg_pseudonym(key, 0, "u-1001", 6, out), -1);
}

/*
 * The log used by the report tests: two files as the writer names them,
 * with writer records, completions, an unparsable line and a torn tail.
 */
static void write_log(char *dir, size_t cap)
{
    case_path(dir, cap, "log");
    assert_int_equal(mkdir(dir, 0700), 0);
    char p1[700], p2[700];
    snprintf(p1, sizeof p1, "%s/audit-20260301-000000-000001.jsonl", dir);
    snprintf(p2, sizeof p2, "%s/audit-20260302-000000-000002.jsonl", dir);
    FILE *f = fopen(p1, "w");
    fprintf(f, "{\"seq\":1,\"prev\":\"00\",\"type\":\"file_start\",\"time\":\"2026-03-01T00:00:00."
               "000Z\",\"hash\":\"x\"}\n");
    /* D1: u-1001 to partner-us (US): phone allowed on a legal obligation,
     * id pseudonymized (sensitive), e-mail removed. */
    fprintf(
        f,
        "{\"seq\":2,\"prev\":\"x\",\"time\":\"2026-03-01T01:00:00.000Z\",\"type\":\"decision\","
        "\"decision_id\":\"d1000000000000000000000000000001\",\"route\":\"us\","
        "\"recipient\":{\"id\":\"partner-us\",\"legal_entity\":\"Partner US "
        "Inc.\",\"relationship\":\"third_party\"},"
        "\"purpose\":\"support\",\"method\":\"POST\",\"host\":\"api.partner.example\",\"path\":\"/"
        "v1/x?q=\","
        "\"destination\":{\"address\":\"1.2.3.4\",\"port\":443,\"country\":\"US\",\"region\":"
        "\"cross-border\",\"geo_source\":\"db\"},"
        "\"mode\":\"enforce\",\"outcome\":\"deidentify\",\"would\":\"deidentify\",\"findings\":["
        "{\"path\":\"$.user.phone\",\"category\":\"cn_mobile\",\"sensitive\":false,\"basis\":"
        "\"legal_obligation\",\"evidence\":\"Reg Art. 7\",\"action\":\"allow\",\"subject\":\"" U1001
        "\"},"
        "{\"path\":\"$.user.id_no\",\"category\":\"cn_resident_id\",\"sensitive\":true,\"basis\":"
        "\"none\",\"action\":\"deidentify\",\"operator\":\"hash\",\"anonymized\":false,\"subject\":"
        "\"" U1001 "\"},"
        "{\"path\":\"$.user.email\",\"category\":\"email\",\"sensitive\":false,\"basis\":\"none\","
        "\"action\":\"remove\",\"operator\":\"redact\",\"anonymized\":true,\"subject\":\"" U1001
        "\"}],"
        "\"subjects\":[{\"pseudonym\":\"" U1001
        "\"}],\"mechanism\":\"standard_contract:SC-1\",\"policy\":{\"version\":\"p1\",\"sha256\":"
        "\"00\"},\"hash\":\"y\"}\n");
    fprintf(
        f,
        "{\"seq\":3,\"prev\":\"y\",\"time\":\"2026-03-01T01:00:00.050Z\",\"type\":\"completion\","
        "\"decision_id\":\"d1000000000000000000000000000001\",\"result\":\"ok\",\"upstream_"
        "status\":200,\"hash\":\"z\"}\n");
    /* D2: a batch to partner-us, subjects S2 (phone allowed) and u-1001 (blocked record). */
    fprintf(f,
            "{\"seq\":4,\"time\":\"2026-03-01T02:00:00.000Z\",\"type\":\"decision\","
            "\"decision_id\":\"d2000000000000000000000000000002\",\"route\":\"us-batch\","
            "\"recipient\":{\"id\":\"partner-us\",\"legal_entity\":\"Partner US "
            "Inc.\",\"relationship\":\"third_party\"},"
            "\"destination\":{\"country\":\"US\",\"region\":\"cross-border\"},\"mode\":\"enforce\","
            "\"outcome\":\"deidentify\",\"would\":\"deidentify\",\"findings\":["
            "{\"path\":\"$.r[0].phone\",\"category\":\"cn_mobile\",\"sensitive\":false,\"basis\":"
            "\"consent\",\"evidence\":\"c-1\",\"action\":\"allow\",\"record\":0,\"subject\":\"" S2
            "\"},"
            "{\"path\":\"$.r[1].phone\",\"category\":\"cn_mobile\",\"sensitive\":false,\"basis\":"
            "\"none\",\"action\":\"remove_record\",\"anonymized\":true,\"record\":1,\"subject\":"
            "\"" U1001 "\"}],"
            "\"subjects\":[{\"pseudonym\":\"" S2 "\"},{\"pseudonym\":\"" U1001
            "\",\"minor\":true}],\"mechanism\":\"standard_contract:SC-1\"}\n");
    fprintf(f, "this line is not JSON\n");
    fclose(f);
    f = fopen(p2, "w");
    /* D3: blocked to partner-hk (HK). */
    fprintf(f,
            "{\"seq\":6,\"time\":\"2026-03-02T03:00:00.000Z\",\"type\":\"decision\","
            "\"decision_id\":\"d3000000000000000000000000000003\",\"route\":\"hk\",\"recipient\":{"
            "\"id\":\"partner-hk\"},"
            "\"destination\":{\"country\":\"HK\",\"region\":\"cross-border\"},\"mode\":\"enforce\","
            "\"outcome\":\"block\",\"would\":\"block\",\"findings\":["
            "{\"path\":\"$.card\",\"category\":\"bank_card\",\"sensitive\":true,\"basis\":\"none\","
            "\"action\":\"block\",\"subject\":\"" S3 "\"}],"
            "\"subjects\":[{\"pseudonym\":\"" S3 "\"}],\"mechanism\":\"not_needed\"}\n");
    /* D4: monitor mode, unknown country, no recipient: forwarded unchanged. */
    fprintf(f, "{\"seq\":7,\"time\":\"2026-03-02T04:00:00.000Z\",\"type\":\"decision\","
               "\"decision_id\":\"d4000000000000000000000000000004\",\"route\":\"mon\","
               "\"destination\":{\"country\":null,\"region\":\"unknown\"},\"mode\":\"monitor\","
               "\"outcome\":\"allow\",\"would\":\"block\",\"findings\":["
               "{\"path\":\"$.gps\",\"category\":\"gps_location\",\"sensitive\":true,\"basis\":"
               "\"none\",\"action\":\"block\",\"subject\":\"" S3 "\"}],"
               "\"subjects\":[{\"pseudonym\":\"" S3 "\"}],\"mechanism\":\"missing\"}\n");
    /* D5: domestic, nothing found. */
    fprintf(f, "{\"seq\":8,\"time\":\"2026-03-03T05:00:00.000Z\",\"type\":\"decision\","
               "\"decision_id\":\"d5000000000000000000000000000005\",\"route\":\"cn\","
               "\"recipient\":{\"id\":\"haihe\"},"
               "\"destination\":{\"country\":\"CN\",\"region\":\"domestic\"},\"mode\":\"enforce\","
               "\"outcome\":\"allow\",\"would\":\"allow\",\"findings\":[],\"subjects\":[]}\n");
    fprintf(f, "{\"seq\":9,\"time\":\"2026-03-03T05:00:01.000Z\",\"type\":\"decision\",\"decision_"
               "id\":\"torn");
    fclose(f);
}

static int add_cb(void *arg, const json_t *rec)
{
    bg_report_add(arg, rec);
    return 0;
}

static json_t *run_report(const char *dir, bg_report_by_t by, const char *from, const char *to,
                          bg_report_scan_stats_t *st)
{
    char **files;
    size_t n;
    char err[256];
    char *ops[] = {(char *)dir};
    int64_t f = BG_REPORT_NO_TIME, t = BG_REPORT_NO_TIME;
    if (from != NULL)
        assert_int_equal(bg_report_parse_date(from, 0, &f), 0);
    if (to != NULL)
        assert_int_equal(bg_report_parse_date(to, 1, &t), 0);
    assert_int_equal(bg_report_expand(ops, 1, "audit", &files, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    bg_report_t *r = bg_report_new(by, f, t);
    memset(st, 0, sizeof *st);
    assert_int_equal(
        bg_report_scan((const char *const *)files, n, NULL, add_cb, r, st, err, sizeof err), 0);
    json_t *doc = bg_report_json(r, st);
    bg_report_free(r);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return doc;
}

static json_int_t iget(const json_t *o, const char *path)
{
    /* "a.b" */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok != NULL; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    if (!json_is_integer(cur))
        fail_msg("%s is not an integer", path);
    return json_integer_value(cur);
}

static const json_t *group(const json_t *doc, const char *key)
{
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(doc, "groups"), i, g)
    {
        const json_t *k = json_object_get(g, "key");
        if ((key == NULL && json_is_null(k)) ||
            (key != NULL && json_is_string(k) && strcmp(json_string_value(k), key) == 0))
            return g;
    }
    fail_msg("no group %s", key ? key : "null");
    return NULL;
}

static void test_report_totals_and_input(void **state)
{
    (void)state;
    char dir[600];
    bg_report_scan_stats_t st;
    write_log(dir, sizeof dir);
    json_t *doc = run_report(dir, BG_REPORT_BY_NONE, NULL, NULL, &st);
    assert_string_equal(json_string_value(json_object_get(doc, "format")),
                        "bordergate-audit-report/1");
    assert_true(json_is_null(json_object_get(doc, "from")));
    assert_true(json_is_null(json_object_get(doc, "by")));
    assert_null(json_object_get(doc, "groups"));
    assert_int_equal(iget(doc, "input.files"), 2);
    assert_int_equal(iget(doc, "input.unparsable_lines"), 1);
    assert_int_equal(iget(doc, "input.incomplete_lines"), 1);
    const json_t *t = json_object_get(doc, "totals");
    assert_int_equal(iget(t, "decisions"), 5);
    assert_int_equal(iget(t, "cross_border"), 4);
    assert_int_equal(iget(t, "monitor"), 1);
    assert_int_equal(iget(t, "outcomes.allow"), 2);
    assert_int_equal(iget(t, "outcomes.deidentify"), 2);
    assert_int_equal(iget(t, "outcomes.block"), 1);
    assert_int_equal(iget(t, "would.block"), 2);
    assert_int_equal(iget(t, "findings"), 7);
    assert_int_equal(iget(t, "sensitive_findings"), 3);
    assert_int_equal(iget(t, "findings_by_action.allow"), 2);
    assert_int_equal(iget(t, "findings_by_action.remove_record"), 1);
    assert_int_equal(iget(t, "findings_by_action.block"), 2);
    /* phone (D1), id hashed (D1), phone (D2 S2), gps (D4, monitor) */
    assert_int_equal(iget(t, "findings_left_as_pi"), 4);
    assert_int_equal(iget(t, "subjects"), 3);
    assert_int_equal(iget(t, "subjects_left_as_pi"), 3); /* u-1001, S2, S3 (monitor) */
    json_decref(doc);
}

static void test_report_groups(void **state)
{
    (void)state;
    char dir[600];
    bg_report_scan_stats_t st;
    write_log(dir, sizeof dir);

    json_t *doc = run_report(dir, BG_REPORT_BY_RECIPIENT, NULL, NULL, &st);
    assert_string_equal(json_string_value(json_object_get(doc, "by")), "recipient");
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 4);
    const json_t *g = group(doc, "partner-us");
    /* sorted by decisions: partner-us first; the no-recipient group last */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "groups"), 0), "key")),
                        "partner-us");
    assert_true(
        json_is_null(json_object_get(json_array_get(json_object_get(doc, "groups"), 3), "key")));
    assert_int_equal(iget(g, "decisions"), 2);
    assert_int_equal(iget(g, "findings"), 5);
    assert_int_equal(iget(g, "subjects"), 2);
    assert_int_equal(iget(g, "subjects_left_as_pi"), 2);
    g = group(doc, "partner-hk");
    assert_int_equal(iget(g, "outcomes.block"), 1);
    assert_int_equal(iget(g, "subjects_left_as_pi"), 0);
    g = group(doc, NULL);
    assert_int_equal(iget(g, "monitor"), 1);
    assert_int_equal(iget(g, "findings_left_as_pi"), 1);
    json_decref(doc);

    doc = run_report(dir, BG_REPORT_BY_COUNTRY, NULL, NULL, &st);
    assert_int_equal(iget(group(doc, "US"), "decisions"), 2);
    assert_int_equal(iget(group(doc, "CN"), "cross_border"), 0);
    assert_int_equal(iget(group(doc, NULL), "cross_border"), 1); /* unknown counts as abroad */
    json_decref(doc);

    doc = run_report(dir, BG_REPORT_BY_CATEGORY, NULL, NULL, &st);
    g = group(doc, "cn_mobile");
    assert_int_equal(iget(g, "decisions"), 2); /* D1 and D2, once each */
    assert_int_equal(iget(g, "findings"), 3);
    assert_int_equal(iget(g, "findings_left_as_pi"), 2);
    assert_int_equal(iget(g, "subjects"), 2);
    assert_int_equal(iget(g, "subjects_left_as_pi"), 2);
    assert_int_equal(iget(group(doc, "cn_resident_id"), "sensitive_findings"), 1);
    assert_int_equal(iget(group(doc, "email"), "findings_left_as_pi"), 0);
    assert_int_equal(iget(group(doc, NULL), "decisions"), 1); /* D5 has no findings */
    json_decref(doc);

    doc = run_report(dir, BG_REPORT_BY_BASIS, NULL, NULL, &st);
    assert_int_equal(iget(group(doc, "legal_obligation"), "findings"), 1);
    assert_int_equal(iget(group(doc, "consent"), "findings"), 1);
    assert_int_equal(iget(group(doc, "none"), "findings"), 5);
    assert_int_equal(iget(group(doc, "none"), "decisions"), 4);
    json_decref(doc);

    doc = run_report(dir, BG_REPORT_BY_OUTCOME, NULL, NULL, &st);
    assert_int_equal(iget(group(doc, "allow"), "decisions"), 2);
    assert_int_equal(iget(group(doc, "block"), "decisions"), 1);
    json_decref(doc);

    doc = run_report(dir, BG_REPORT_BY_ROUTE, NULL, NULL, &st);
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 5);
    assert_int_equal(iget(group(doc, "us-batch"), "subjects"), 2);
    json_decref(doc);
}

static void test_report_window(void **state)
{
    (void)state;
    char dir[600];
    bg_report_scan_stats_t st;
    write_log(dir, sizeof dir);
    /* China-time dates: 2026-03-02 runs from 2026-03-01T16:00Z to 2026-03-02T16:00Z. */
    json_t *doc = run_report(dir, BG_REPORT_BY_NONE, "2026-03-02", "2026-03-02", &st);
    assert_int_equal(iget(doc, "totals.decisions"), 2); /* D3, D4 */
    assert_string_equal(json_string_value(json_object_get(doc, "from")),
                        "2026-03-01T16:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(doc, "to")), "2026-03-02T16:00:00.000Z");
    json_decref(doc);
    doc = run_report(dir, BG_REPORT_BY_NONE, "2026-03-01T09:00:00+08:00", NULL, &st);
    assert_int_equal(iget(doc, "totals.decisions"), 5); /* the start is included */
    json_decref(doc);
    doc = run_report(dir, BG_REPORT_BY_NONE, "2026-03-01T09:00:00.001+08:00", NULL, &st);
    assert_int_equal(iget(doc, "totals.decisions"), 4);
    json_decref(doc);
    doc = run_report(dir, BG_REPORT_BY_NONE, NULL, "2026-02-28", &st);
    assert_int_equal(iget(doc, "totals.decisions"), 0);
    assert_int_equal(iget(doc, "totals.subjects"), 0);
    json_decref(doc);
}

static void test_subject_lookup(void **state)
{
    (void)state;
    char dir[600], err[256];
    char **files;
    size_t n;
    write_log(dir, sizeof dir);
    char *ops[] = {dir};
    assert_int_equal(bg_report_expand(ops, 1, "audit", &files, &n, err, sizeof err), 0);
    bg_report_scan_stats_t st;
    memset(&st, 0, sizeof st);
    const char *u1001 = U1001;
    json_t *doc = bg_report_subject((const char *const *)files, n, &u1001, 1, BG_REPORT_NO_TIME,
                                    BG_REPORT_NO_TIME, &st, err, sizeof err);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "format")),
                        "bordergate-audit-subject/1");
    const json_t *ds = json_object_get(doc, "decisions");
    assert_int_equal(json_array_size(ds), 2);
    const json_t *d1 = json_array_get(ds, 0), *d2 = json_array_get(ds, 1);
    assert_string_equal(json_string_value(json_object_get(d1, "decision_id")),
                        "d1000000000000000000000000000001");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d1, "recipient"), "legal_entity")),
        "Partner US Inc.");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d1, "destination"), "country")), "US");
    assert_int_equal(json_array_size(json_object_get(d1, "findings")), 3);
    assert_true(json_is_true(json_object_get(d1, "pi_left")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d1, "completion"), "result")), "ok");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(d1, "completion"), "upstream_status")),
        200);
    const json_t *f0 = json_array_get(json_object_get(d1, "findings"), 0);
    assert_string_equal(json_string_value(json_object_get(f0, "evidence")), "Reg Art. 7");
    assert_true(json_is_true(json_object_get(f0, "left_as_pi")));
    assert_false(json_is_true(
        json_object_get(json_array_get(json_object_get(d1, "findings"), 2), "left_as_pi")));
    /* In the batch only this subject's finding is listed; the record was removed. */
    assert_int_equal(json_array_size(json_object_get(d2, "findings")), 1);
    assert_false(json_is_true(json_object_get(d2, "pi_left")));
    assert_true(json_is_true(json_object_get(d2, "minor")));
    assert_true(json_is_null(json_object_get(d2, "completion")));
    const json_t *sum = json_object_get(doc, "summary");
    assert_int_equal(iget(sum, "decisions"), 2);
    assert_int_equal(iget(sum, "transfers"), 1);
    char *cats = json_dumps(json_object_get(sum, "categories"), JSON_COMPACT);
    assert_string_equal(cats, "[\"cn_mobile\",\"cn_resident_id\"]");
    free(cats);
    char *bases = json_dumps(json_object_get(sum, "bases"), JSON_COMPACT);
    assert_string_equal(bases, "[\"legal_obligation\",\"none\"]");
    free(bases);
    json_decref(doc);

    /* Upper-case hex is the same subject; a window excludes D1. */
    char upper[65];
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(U1001[i] >= 'a' ? U1001[i] - 32 : U1001[i]);
    upper[64] = '\0';
    int64_t from;
    assert_int_equal(bg_report_parse_date("2026-03-01T01:30:00Z", 0, &from), 0);
    const char *up = upper;
    doc = bg_report_subject((const char *const *)files, n, &up, 1, from, BG_REPORT_NO_TIME, &st,
                            err, sizeof err);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "decisions")), 1);
    json_decref(doc);

    /* The monitor-mode transfer of S3 left; the blocked one did not. */
    const char *s3 = S3, *abc = "abc";
    doc = bg_report_subject((const char *const *)files, n, &s3, 1, BG_REPORT_NO_TIME,
                            BG_REPORT_NO_TIME, &st, err, sizeof err);
    assert_int_equal(iget(json_object_get(doc, "summary"), "transfers"), 1);
    assert_int_equal(iget(json_object_get(doc, "summary"), "blocked"), 1);
    json_decref(doc);

    assert_null(bg_report_subject((const char *const *)files, n, &abc, 1, BG_REPORT_NO_TIME,
                                  BG_REPORT_NO_TIME, &st, err, sizeof err));
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

/* The policy file given to report and blocked with --config, or NULL. */
static const char *g_conf;

/* `bordergate audit ARGV...` (ARGV[0] the subcommand; the command line lives
 * in cli/cmd_audit.c): the real binary with this process's stdin and
 * stdout (capture redirects them), --config g_conf appended when set. Its
 * exit status. */
static int audit_bin(int argc, char **argv)
{
    char bin[700];
    const char *b = getenv("BG_BUILD_DIR");
    snprintf(bin, sizeof bin, "%s/bordergate", b != NULL && b[0] ? b : ".");
    char *av[24] = {bin, "audit"};
    int ac = 2;
    assert_true(argc + 5 <= 24);
    for (int i = 0; i < argc; i++)
        av[ac++] = argv[i];
    if (g_conf != NULL) {
        av[ac++] = "--config";
        av[ac++] = (char *)g_conf;
    }
    av[ac] = NULL;
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

#define report_cli audit_bin
#define blocked_cli audit_bin
#define subject_cli audit_bin

/* Write a policy file holding only RULES_JSON ("[{"id":..., "clause":...}]")
 * to PATH and replace every "sha256":"OLD" in the log FILE by its SHA-256,
 * so the records name the policy given with --config. */
static void policy_for_log(const char *path, const char *rules_json, const char *file,
                           const char *old)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"rules\":%s}\n", rules_json);
    fclose(f);
    json_t *cl = NULL;
    char sha[65], err[256], from[80], to[100];
    assert_int_equal(bg_report_policy_read(path, &cl, sha, err, sizeof err), 0);
    json_decref(cl);
    size_t len;
    char *text = bg_util_read_file(file, &len);
    assert_non_null(text);
    snprintf(from, sizeof from, "\"sha256\":\"%s\"", old);
    snprintf(to, sizeof to, "\"sha256\":\"%s\"", sha);
    f = fopen(file, "w");
    assert_non_null(f);
    for (const char *p = text, *q; *p != '\0'; p = q + strlen(from)) {
        q = strstr(p, from);
        if (q == NULL) {
            fputs(p, f);
            break;
        }
        fwrite(p, 1, (size_t)(q - p), f);
        fputs(to, f);
    }
    fclose(f);
    free(text);
}

static char *capture(int (*fn)(int, char **), int argc, char **argv, const char *in, int *rc)
{
    char out[600], inp[600];
    case_path(out, sizeof out, "stdout.txt");
    case_path(inp, sizeof inp, "stdin.txt");
    FILE *f = fopen(inp, "w");
    fputs(in != NULL ? in : "", f);
    fclose(f);
    fflush(stdout);
    int saved = dup(1), saved_in = dup(0);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int ifd = open(inp, O_RDONLY);
    dup2(fd, 1);
    dup2(ifd, 0);
    close(fd);
    close(ifd);
    clearerr(stdin);
    *rc = fn(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    dup2(saved_in, 0);
    close(saved);
    close(saved_in);
    clearerr(stdin);
    size_t len;
    char *s = bg_util_read_file(out, &len);
    assert_non_null(s);
    return s;
}

static void test_commands(void **state)
{
    (void)state;
    char dir[600], key[600];
    int rc;
    write_log(dir, sizeof dir);
    case_path(key, sizeof key, "subject.key");
    FILE *f = fopen(key, "w");
    fprintf(f, "%s\n", KEY_HEX);
    fclose(f);
    chmod(key, 0600);

    char *a1[] = {"report", "--by",       "recipient", "--from", "2026-03-01",
                  "--to",   "2026-03-31", dir,         NULL};
    char *out = capture(report_cli, 8, a1, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "RECIPIENT"));
    assert_non_null(strstr(out, "partner-us"));
    assert_non_null(strstr(out, "(no recipient)"));
    assert_non_null(strstr(out, "TOTAL"));
    assert_non_null(strstr(out, "monitor mode"));
    free(out);

    char *a2[] = {"report", "--by", "category", "--json", dir, NULL};
    out = capture(report_cli, 5, a2, NULL, &rc);
    assert_int_equal(rc, 0);
    json_t *doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(iget(doc, "totals.decisions"), 5);
    json_decref(doc);
    free(out);

    char *a3[] = {"report", "--by", "colour", dir, NULL};
    out = capture(report_cli, 4, a3, NULL, &rc);
    assert_int_equal(rc, 2);
    free(out);
    char *a4[] = {"report", "--from", "2026-13-01", dir, NULL};
    out = capture(report_cli, 4, a4, NULL, &rc);
    assert_int_equal(rc, 2);
    free(out);

    /* The raw id from standard input; it never appears in the output. */
    char *a5[] = {"subject", "-", "--key", key, dir, "--json", NULL};
    out = capture(subject_cli, 6, a5, "u-1001\n", &rc);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "u-1001"));
    doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "subject"), "pseudonym")), U1001);
    assert_int_equal(
        strlen(json_string_value(json_object_get(json_object_get(doc, "subject"), "key_id"))), 16);
    assert_int_equal(json_array_size(json_object_get(doc, "decisions")), 2);
    json_decref(doc);
    free(out);

    char *a6[] = {"subject", "--pseudonym", U1001, dir, NULL};
    out = capture(subject_cli, 4, a6, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "2 decision(s) name this subject"));
    assert_non_null(strstr(out, "Partner US Inc."));
    assert_non_null(strstr(out, "legal_obligation: Reg Art. 7"));
    assert_non_null(strstr(out, "left as PI (pseudonymized)"));
    free(out);

    /* An unknown subject: no decisions, still a clean answer. */
    char *a7[] = {"subject", "nobody", "--key", key, dir, NULL};
    out = capture(subject_cli, 5, a7, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "0 decision(s)"));
    assert_null(strstr(out, "nobody"));
    free(out);

    char *a8[] = {"subject", "u-1001", dir, NULL}; /* no key */
    out = capture(subject_cli, 3, a8, NULL, &rc);
    assert_int_equal(rc, 2);
    free(out);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/bg-test-report-XXXXXX");
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

/* A log with reasons, rules and times around China midnight, for the
 * dashboard's groupings (day, hour, reason, rule) and `audit blocked`. */
static void write_reasons_log(char *dir, size_t cap)
{
    case_path(dir, cap, "reasons");
    assert_int_equal(mkdir(dir, 0700), 0);
    char p1[700], p2[700];
    snprintf(p1, sizeof p1, "%s/audit-20260301-000000-000001.jsonl", dir);
    snprintf(p2, sizeof p2, "%s/audit-20260302-000000-000002.jsonl", dir);
    FILE *f = fopen(p1, "w");
    /* B1: 2026-03-01 23:30 China time, blocked: two no_basis reasons and a never_export. */
    fprintf(
        f,
        "{\"seq\":1,\"time\":\"2026-03-01T15:30:00.000Z\",\"type\":\"decision\","
        "\"decision_id\":\"b1000000000000000000000000000001\",\"route\":\"pay\","
        "\"recipient\":{\"id\":\"payco\"},\"destination\":{\"country\":\"SG\","
        "\"region\":\"cross-border\"},\"mode\":\"enforce\",\"outcome\":\"block\","
        "\"would\":\"block\",\"findings\":["
        "{\"path\":\"$.card\",\"category\":\"bank_card\",\"rule\":\"r1\",\"action\":\"block\"},"
        "{\"path\":\"$.phone\",\"category\":\"cn_mobile\",\"rule\":\"r1\",\"action\":\"block\","
        "\"evidence\":\"EVIDENCE-NOT-SHOWN\"},"
        "{\"path\":\"$.pw\",\"category\":\"credentials\",\"rule\":\"never_export\","
        "\"action\":\"block\"}],\"reasons\":["
        "{\"code\":\"no_basis\",\"rule\":\"r1\",\"category\":\"bank_card\",\"path\":\"$.card\"},"
        "{\"code\":\"no_basis\",\"rule\":\"r1\",\"category\":\"cn_mobile\",\"path\":\"$.phone\"},"
        "{\"code\":\"never_export\",\"rule\":\"never_export\",\"category\":\"credentials\","
        "\"path\":\"$.pw\"}],\"policy\":{\"version\":\"v7\"}}\n");
    /* A1: 2026-03-02 00:30 China time, de-identified by rule r2, no reason. */
    fprintf(f, "{\"seq\":2,\"time\":\"2026-03-01T16:30:00.000Z\",\"type\":\"decision\","
               "\"decision_id\":\"a1000000000000000000000000000001\",\"route\":\"crm\","
               "\"destination\":{\"country\":\"US\",\"region\":\"cross-border\"},"
               "\"mode\":\"enforce\",\"outcome\":\"deidentify\",\"would\":\"deidentify\","
               "\"findings\":[{\"path\":\"$.email\",\"category\":\"email\",\"rule\":\"r2\","
               "\"action\":\"deidentify\",\"operator\":\"hash\",\"anonymized\":false}]}\n");
    fclose(f);
    f = fopen(p2, "w");
    /* B2: 09:00 China time, blocked: undecodable body. */
    fprintf(f, "{\"seq\":3,\"time\":\"2026-03-02T01:00:00.000Z\",\"type\":\"decision\","
               "\"decision_id\":\"b2000000000000000000000000000002\",\"route\":\"up\","
               "\"destination\":{\"country\":\"US\",\"region\":\"cross-border\"},"
               "\"mode\":\"enforce\",\"outcome\":\"block\",\"would\":\"block\",\"findings\":[],"
               "\"reasons\":[{\"code\":\"undecodable\",\"detail\":\"invalid JSON\"}]}\n");
    /* M1: 10:00 China time, monitor mode: would block, forwarded. */
    fprintf(f, "{\"seq\":4,\"time\":\"2026-03-02T02:00:00.000Z\",\"type\":\"decision\","
               "\"decision_id\":\"m1000000000000000000000000000001\",\"route\":\"mon\","
               "\"destination\":{\"country\":\"US\",\"region\":\"cross-border\"},"
               "\"mode\":\"monitor\",\"outcome\":\"allow\",\"would\":\"block\",\"findings\":[],"
               "\"reasons\":[{\"code\":\"no_basis\"}]}\n");
    fclose(f);
}

static const char *key_at(const json_t *doc, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "groups"), i), "key"));
}

static void test_report_time_reason_rule_and_blocked(void **state)
{
    (void)state;
    char dir[600], err[256];
    bg_report_scan_stats_t st;
    write_reasons_log(dir, sizeof dir);

    json_t *doc = run_report(dir, BG_REPORT_BY_DAY, NULL, NULL, &st);
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 2);
    assert_string_equal(key_at(doc, 0), "2026-03-01"); /* China days, oldest first */
    assert_string_equal(key_at(doc, 1), "2026-03-02");
    assert_int_equal(iget(group(doc, "2026-03-01"), "decisions"), 1);
    assert_int_equal(iget(group(doc, "2026-03-02"), "decisions"), 3);
    assert_int_equal(iget(group(doc, "2026-03-02"), "outcomes.block"), 1);
    json_decref(doc);

    doc = run_report(dir, BG_REPORT_BY_HOUR, NULL, NULL, &st);
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 4);
    assert_string_equal(key_at(doc, 0), "2026-03-01T23");
    assert_string_equal(key_at(doc, 1), "2026-03-02T00");
    assert_string_equal(key_at(doc, 3), "2026-03-02T10");
    json_decref(doc);

    doc = run_report(dir, BG_REPORT_BY_REASON, NULL, NULL, &st);
    assert_string_equal(json_string_value(json_object_get(doc, "by")), "reason");
    assert_int_equal(iget(group(doc, "no_basis"), "decisions"), 2); /* B1 once, M1 */
    assert_int_equal(iget(group(doc, "no_basis"), "outcomes.block"), 1);
    assert_int_equal(iget(group(doc, "no_basis"), "would.block"), 2);
    assert_int_equal(iget(group(doc, "never_export"), "decisions"), 1);
    assert_int_equal(iget(group(doc, "undecodable"), "outcomes.block"), 1);
    assert_int_equal(iget(group(doc, NULL), "outcomes.deidentify"), 1); /* A1: no reason */
    json_decref(doc);

    doc = run_report(dir, BG_REPORT_BY_RULE, NULL, NULL, &st);
    assert_int_equal(iget(group(doc, "r1"), "decisions"), 1);
    assert_int_equal(iget(group(doc, "r1"), "findings"), 2);
    assert_int_equal(iget(group(doc, "never_export"), "findings_by_action.block"), 1);
    assert_int_equal(iget(group(doc, "r2"), "findings_by_action.deidentify"), 1);
    assert_int_equal(iget(group(doc, "r2"), "findings_left_as_pi"), 1);
    assert_int_equal(iget(group(doc, NULL), "decisions"), 2); /* B2, M1: no findings */
    json_decref(doc);

    char **files;
    size_t n;
    char *ops[] = {dir};
    assert_int_equal(bg_report_expand(ops, 1, "audit", &files, &n, err, sizeof err), 0);
    doc = bg_report_blocked((const char *const *)files, n, BG_REPORT_NO_TIME, BG_REPORT_NO_TIME, 10,
                            NULL, &st, err, sizeof err);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "format")),
                        "bordergate-audit-blocked/1");
    assert_int_equal(iget(doc, "blocked"), 2); /* M1 was forwarded: not blocked */
    const json_t *ds = json_object_get(doc, "decisions");
    assert_int_equal(json_array_size(ds), 2);
    const json_t *b2 = json_array_get(ds, 0), *b1 = json_array_get(ds, 1); /* newest first */
    assert_string_equal(json_string_value(json_object_get(b2, "decision_id")),
                        "b2000000000000000000000000000002");
    assert_string_equal(json_string_value(json_object_get(b1, "recipient")), "payco");
    assert_string_equal(json_string_value(json_object_get(b1, "policy_version")), "v7");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(b1, "destination"), "country")), "SG");
    assert_int_equal(json_array_size(json_object_get(b1, "reasons")), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(b1, "reasons"), 2), "code")),
                        "never_export");
    char *text = json_dumps(doc, 0);
    assert_null(strstr(text, "EVIDENCE-NOT-SHOWN")); /* only the listed members are copied */
    free(text);
    json_decref(doc);

    /* LIMIT keeps the newest; the window counts in China days. */
    doc = bg_report_blocked((const char *const *)files, n, BG_REPORT_NO_TIME, BG_REPORT_NO_TIME, 1,
                            NULL, &st, err, sizeof err);
    assert_int_equal(iget(doc, "blocked"), 2);
    assert_int_equal(json_array_size(json_object_get(doc, "decisions")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "decisions"), 0), "decision_id")),
                        "b2000000000000000000000000000002");
    json_decref(doc);
    int64_t from;
    assert_int_equal(bg_report_parse_date("2026-03-02", 0, &from), 0);
    doc = bg_report_blocked((const char *const *)files, n, from, BG_REPORT_NO_TIME, 10, NULL, &st,
                            err, sizeof err);
    assert_int_equal(iget(doc, "blocked"), 1); /* B1 was on 1 March, China time */
    json_decref(doc);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);

    int rc;
    char *a1[] = {"blocked", "--limit", "0", dir, NULL};
    free(capture(blocked_cli, 4, a1, NULL, &rc));
    assert_int_equal(rc, 2);
    char *a2[] = {"blocked", "--limit", "5", dir, NULL};
    char *out = capture(blocked_cli, 4, a2, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "2 blocked decision(s)"));
    assert_non_null(strstr(out, "reason no_basis, rule r1, category bank_card at $.card"));
    free(out);
    char *a3[] = {"report", "--by", "hour", dir, NULL};
    out = capture(report_cli, 4, a3, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "2026-03-01T23"));
    assert_non_null(strstr(out, "Hours in China time"));
    free(out);
}

/* Files that ended more than a day before --from are not read. */
static void test_prune_files_before_the_window(void **state)
{
    (void)state;
    const char *names[] = {
        "d/audit-20260101-000000-000001.jsonl", "d/audit-20260105-000000-000002.jsonl",
        "d/audit-20260110-120000-000003.jsonl", "d/audit-20260120-000000-000004.jsonl"};
    int64_t from;
    for (int round = 0; round < 4; round++) {
        char *paths[5];
        size_t n = 4;
        for (int i = 0; i < 4; i++)
            paths[i] = strdup(names[i]);
        paths[4] = NULL;
        size_t drop = 0, want = 0;
        switch (round) {
        case 0: /* no window: everything */
            drop = bg_report_prune(paths, &n, "audit", BG_REPORT_NO_TIME);
            want = 0;
            break;
        case 1: /* the 2nd file starts exactly a day before: the 1st goes */
            assert_int_equal(bg_report_parse_date("2026-01-06T00:00Z", 0, &from), 0);
            drop = bg_report_prune(paths, &n, "audit", from);
            want = 1;
            break;
        case 2: /* the 3rd starts less than a day before: the 2nd stays */
            assert_int_equal(bg_report_parse_date("2026-01-11T11:59:59Z", 0, &from), 0);
            drop = bg_report_prune(paths, &n, "audit", from);
            want = 1;
            break;
        case 3: /* long after the last file started: the last one always stays */
            assert_int_equal(bg_report_parse_date("2027-01-01", 0, &from), 0);
            drop = bg_report_prune(paths, &n, "audit", from);
            want = 3;
            break;
        }
        assert_int_equal(drop, want);
        assert_int_equal(n, 4 - want);
        assert_string_equal(paths[0], names[want]);
        assert_null(paths[n]);
        for (size_t i = 0; i < n; i++)
            free(paths[i]);
    }
    /* A file with another name stops the pruning. */
    char *paths[] = {strdup("d/audit-20260101-000000-000001.jsonl"), strdup("d/extra.jsonl"),
                     strdup("d/audit-20260105-000000-000002.jsonl"), NULL};
    size_t n = 3;
    assert_int_equal(bg_report_parse_date("2027-01-01", 0, &from), 0);
    assert_int_equal(bg_report_prune(paths, &n, "audit", from), 0);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
}

/*
 * A log for --by with several dimensions: two recipients, several
 * mechanisms, rules under two policy files, a clause carried by one record.
 */
static void write_dims_log(char *dir, size_t cap)
{
    case_path(dir, cap, "dims");
    assert_int_equal(mkdir(dir, 0700), 0);
    char p1[700];
    snprintf(p1, sizeof p1, "%s/audit-20260301-000000-000001.jsonl", dir);
    FILE *f = fopen(p1, "w");
    /* E1: cs under policy file aa: mobile on consent (S2), mobile hashed
     * without basis (S3), e-mail on consent with the clause recorded. */
    fprintf(f, "{\"seq\":1,\"time\":\"2026-03-01T01:00:00.000Z\",\"type\":\"decision\","
               "\"decision_id\":\"e1000000000000000000000000000001\",\"route\":\"crm\","
               "\"recipient\":{\"id\":\"cs\"},\"destination\":{\"country\":\"US\","
               "\"region\":\"cross-border\"},\"mode\":\"enforce\",\"outcome\":\"deidentify\","
               "\"would\":\"deidentify\",\"findings\":["
               "{\"path\":\"$.a.phone\",\"category\":\"cn_mobile\",\"rule\":\"r-contact\","
               "\"basis\":\"consent\",\"action\":\"allow\",\"subject\":\"" S2 "\"},"
               "{\"path\":\"$.b.phone\",\"category\":\"cn_mobile\",\"rule\":\"r-contact\","
               "\"basis\":\"none\",\"action\":\"deidentify\",\"operator\":\"hash\","
               "\"anonymized\":false,\"subject\":\"" S3 "\"},"
               "{\"path\":\"$.a.email\",\"category\":\"email\",\"rule\":\"r-contact\","
               "\"clause\":\"Privacy 3.1 (recorded)\",\"basis\":\"consent\",\"action\":\"allow\","
               "\"subject\":\"" S2 "\"}],\"subjects\":[],\"mechanism\":\"standard_contract:SC-9\","
               "\"policy\":{\"version\":\"v1\",\"sha256\":\"aa\"}}\n");
    /* E2: cs under policy file bb: mobile on contract necessity. */
    fprintf(f, "{\"seq\":2,\"time\":\"2026-03-01T02:00:00.000Z\",\"type\":\"decision\","
               "\"decision_id\":\"e2000000000000000000000000000002\",\"route\":\"ship\","
               "\"recipient\":{\"id\":\"cs\"},\"destination\":{\"country\":\"US\","
               "\"region\":\"cross-border\"},\"mode\":\"enforce\",\"outcome\":\"allow\","
               "\"would\":\"allow\",\"findings\":["
               "{\"path\":\"$.phone\",\"category\":\"cn_mobile\",\"rule\":\"r-ship\","
               "\"basis\":\"contract\",\"action\":\"allow\",\"subject\":\"" S3 "\"}],"
               "\"subjects\":[],\"mechanism\":\"exempt:basis\","
               "\"policy\":{\"version\":\"v0\",\"sha256\":\"bb\"}}\n");
    /* E3: gp: mobile on consent. */
    fprintf(f, "{\"seq\":3,\"time\":\"2026-03-01T03:00:00.000Z\",\"type\":\"decision\","
               "\"decision_id\":\"e3000000000000000000000000000003\",\"route\":\"pay\","
               "\"recipient\":{\"id\":\"gp\"},\"destination\":{\"country\":\"SG\","
               "\"region\":\"cross-border\"},\"mode\":\"enforce\",\"outcome\":\"allow\","
               "\"would\":\"allow\",\"findings\":["
               "{\"path\":\"$.phone\",\"category\":\"cn_mobile\",\"rule\":\"r-contact\","
               "\"basis\":\"consent\",\"action\":\"allow\",\"subject\":\"" S2 "\"}],"
               "\"subjects\":[],\"mechanism\":\"standard_contract:SC-2\","
               "\"policy\":{\"version\":\"v1\",\"sha256\":\"aa\"}}\n");
    /* E4: cs, nothing found. */
    fprintf(f, "{\"seq\":4,\"time\":\"2026-03-01T04:00:00.000Z\",\"type\":\"decision\","
               "\"decision_id\":\"e4000000000000000000000000000004\",\"route\":\"crm\","
               "\"recipient\":{\"id\":\"cs\"},\"destination\":{\"country\":\"US\","
               "\"region\":\"cross-border\"},\"mode\":\"enforce\",\"outcome\":\"allow\","
               "\"would\":\"allow\",\"findings\":[],\"subjects\":[],\"mechanism\":\"not_needed\","
               "\"policy\":{\"version\":\"v1\",\"sha256\":\"aa\"}}\n");
    fclose(f);
}

/* The group whose key array is K0, K1, K2 (NULL: a null key). */
static const json_t *group3(const json_t *doc, const char *k0, const char *k1, const char *k2)
{
    const char *want[3] = {k0, k1, k2};
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(doc, "groups"), i, g)
    {
        const json_t *key = json_object_get(g, "key");
        size_t k = 0;
        for (; k < 3; k++) {
            const json_t *v = json_array_get(key, k);
            if (want[k] == NULL ? !json_is_null(v)
                                : !json_is_string(v) || strcmp(json_string_value(v), want[k]))
                break;
        }
        if (k == 3 && json_array_size(key) == 3)
            return g;
    }
    fail_msg("no group %s,%s,%s", k0 ? k0 : "null", k1 ? k1 : "null", k2 ? k2 : "null");
    return NULL;
}

static const char *sget(const json_t *o, const char *member)
{
    return json_string_value(json_object_get(o, member));
}

static json_t *run_dims(const char *dir, const char *by, const bg_report_policy_t *pol)
{
    char **files;
    size_t n;
    char err[256];
    char *ops[] = {(char *)dir};
    bg_report_dims_t d;
    assert_int_equal(bg_report_dims_parse(by, &d, err, sizeof err), 0);
    assert_int_equal(bg_report_expand(ops, 1, "audit", &files, &n, err, sizeof err), 0);
    json_t *doc = bg_report_run_dims((const char *const *)files, n, &d, BG_REPORT_NO_TIME,
                                     BG_REPORT_NO_TIME, pol, err, sizeof err);
    assert_non_null(doc);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return doc;
}

/* `--by recipient,category,basis`: one row per combination, each finding
 * in the row of its own values, the mechanism and the rule's clause per
 * row, from the record or from the policy given (marked when the decision
 * was taken under another policy file). */
static void test_report_several_dimensions(void **state)
{
    (void)state;
    char dir[600], err[256];
    write_dims_log(dir, sizeof dir);
    json_t *clauses = json_pack("{s:s, s:s}", "r-contact", "Privacy 2.4", "r-ship", "Privacy 5.1");
    bg_report_policy_t pol = {clauses, "aa"};

    json_t *doc = run_dims(dir, "recipient,category,basis", &pol);
    const json_t *by = json_object_get(doc, "by");
    assert_int_equal(json_array_size(by), 3);
    assert_string_equal(json_string_value(json_array_get(by, 2)), "basis");
    assert_int_equal(iget(doc, "totals.decisions"), 4);
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 6);
    /* Rows in key order, a missing value last. */
    const json_t *first = json_array_get(json_object_get(doc, "groups"), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(first, "key"), 2)),
                        "consent");
    const json_t *g = group3(doc, "cs", "cn_mobile", "consent");
    assert_ptr_equal(g, first);
    assert_int_equal(iget(g, "decisions"), 1);
    assert_int_equal(iget(g, "findings"), 1);
    assert_int_equal(iget(g, "subjects"), 1);
    const json_t *m = json_object_get(g, "mechanisms");
    assert_int_equal(json_array_size(m), 1);
    assert_string_equal(sget(json_array_get(m, 0), "mechanism"), "standard_contract:SC-9");
    const json_t *r = json_array_get(json_object_get(g, "rules"), 0);
    assert_string_equal(sget(r, "rule"), "r-contact");
    assert_string_equal(sget(r, "clause"), "Privacy 2.4");
    assert_string_equal(sget(r, "clause_from"), "policy");
    assert_int_equal(iget(r, "findings"), 1);

    g = group3(doc, "cs", "cn_mobile", "none");
    assert_int_equal(iget(g, "findings_left_as_pi"), 1); /* hashed: still PI */
    assert_int_equal(iget(g, "findings_by_action.deidentify"), 1);

    g = group3(doc, "cs", "cn_mobile", "contract");
    assert_string_equal(sget(json_array_get(json_object_get(g, "mechanisms"), 0), "mechanism"),
                        "exempt:basis");
    r = json_array_get(json_object_get(g, "rules"), 0);
    assert_string_equal(sget(r, "clause"), "Privacy 5.1");
    assert_string_equal(sget(r, "clause_from"), "other_policy"); /* decided under bb */

    g = group3(doc, "cs", "email", "consent");
    r = json_array_get(json_object_get(g, "rules"), 0);
    assert_string_equal(sget(r, "clause"), "Privacy 3.1 (recorded)");
    assert_string_equal(sget(r, "clause_from"), "record");

    g = group3(doc, "cs", NULL, NULL); /* E4: no findings */
    assert_int_equal(iget(g, "decisions"), 1);
    assert_int_equal(json_array_size(json_object_get(g, "rules")), 0);
    assert_string_equal(sget(json_array_get(json_object_get(g, "mechanisms"), 0), "mechanism"),
                        "not_needed");
    assert_int_equal(iget(group3(doc, "gp", "cn_mobile", "consent"), "decisions"), 1);

    /* Every finding is in exactly one row. */
    json_int_t sum = 0;
    size_t i;
    json_array_foreach(json_object_get(doc, "groups"), i, g)
    {
        sum += iget(g, "findings");
    }
    assert_int_equal(sum, iget(doc, "totals.findings"));
    json_decref(doc);

    /* Without a policy only the recorded clause is known. */
    doc = run_dims(dir, "recipient,category,basis", NULL);
    r = json_array_get(json_object_get(group3(doc, "cs", "cn_mobile", "consent"), "rules"), 0);
    assert_true(json_is_null(json_object_get(r, "clause")));
    r = json_array_get(json_object_get(group3(doc, "cs", "email", "consent"), "rules"), 0);
    assert_string_equal(sget(r, "clause"), "Privacy 3.1 (recorded)");
    json_decref(doc);

    /* Two decision-level dimensions: a decision in one row; no rules. */
    doc = run_dims(dir, "recipient,country", &pol);
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 2);
    assert_null(json_object_get(json_array_get(json_object_get(doc, "groups"), 0), "rules"));
    json_decref(doc);

    /* A single dimension keeps its document: "by" and "key" are strings. */
    doc = run_dims(dir, "rule", &pol);
    assert_string_equal(sget(doc, "by"), "rule");
    g = group(doc, "r-contact");
    assert_int_equal(iget(g, "findings"), 4);
    assert_null(json_object_get(g, "mechanisms"));
    json_decref(doc);

    bg_report_dims_t d;
    static const char *const bad[] = {"reason,category", "recipient,recipient", "recipient,",
                                      ",recipient",      "recipient,colour",    "",
                                      "a,b,c,d,e"};
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bg_report_dims_parse(bad[i], &d, err, sizeof err), -1);
    assert_int_equal(bg_report_dims_parse("reason,recipient,day", &d, err, sizeof err), 0);
    char name[64];
    bg_report_dims_name(&d, name, sizeof name);
    assert_string_equal(name, "reason,recipient,day");

    /* The table: one column per dimension, the mechanism and the clause. */
    int rc;
    char conf[700], log[700];
    case_path(conf, sizeof conf, "dims-policy.json");
    snprintf(log, sizeof log, "%s/audit-20260301-000000-000001.jsonl", dir);
    policy_for_log(conf,
                   "[{\"id\":\"r-contact\",\"clause\":\"Privacy 2.4\"},"
                   "{\"id\":\"r-ship\",\"clause\":\"Privacy 5.1\"}]",
                   log, "aa");
    g_conf = conf;
    char *a1[] = {"report", "--by", "recipient,category,basis", dir, NULL};
    char *out = capture(report_cli, 4, a1, NULL, &rc);
    g_conf = NULL;
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "RECIPIENT"));
    assert_non_null(strstr(out, "CATEGORY"));
    assert_non_null(strstr(out, "BASIS"));
    assert_non_null(strstr(out, "MECHANISM"));
    assert_non_null(strstr(out, "exempt:basis"));
    assert_non_null(strstr(out, "r-contact: Privacy 2.4"));
    assert_non_null(strstr(out, "r-ship: Privacy 5.1 [from another policy]"));
    free(out);
    char *a2[] = {"report", "--by", "reason,basis", dir, NULL};
    free(capture(report_cli, 4, a2, NULL, &rc));
    assert_int_equal(rc, 2);
    json_decref(clauses);
}

/* `audit blocked`: each reason's clause (from the policy given, marked
 * when the decision was taken under another file) and its detail. */
static void test_blocked_clause_and_detail(void **state)
{
    (void)state;
    char dir[600], err[256];
    write_reasons_log(dir, sizeof dir);
    json_t *clauses = json_pack("{s:s}", "r1", "Terms 7.2");
    bg_report_policy_t pol = {clauses, "cc"};
    char **files;
    size_t n;
    char *ops[] = {dir};
    assert_int_equal(bg_report_expand(ops, 1, "audit", &files, &n, err, sizeof err), 0);
    json_t *doc = bg_report_blocked((const char *const *)files, n, BG_REPORT_NO_TIME,
                                    BG_REPORT_NO_TIME, 10, &pol, NULL, err, sizeof err);
    assert_non_null(doc);
    const json_t *b1 = json_array_get(json_object_get(doc, "decisions"), 1);
    const json_t *r0 = json_array_get(json_object_get(b1, "reasons"), 0);
    assert_string_equal(sget(r0, "clause"), "Terms 7.2");
    assert_string_equal(sget(r0, "clause_from"), "other_policy"); /* B1 names no sha256 */
    const json_t *r2 = json_array_get(json_object_get(b1, "reasons"), 2);
    assert_true(json_is_null(json_object_get(r2, "clause"))); /* never_export: no clause */
    assert_string_equal(sget(json_array_get(json_object_get(b1, "findings"), 0), "clause"),
                        "Terms 7.2");
    const json_t *b2 = json_array_get(json_object_get(doc, "decisions"), 0);
    assert_string_equal(sget(json_array_get(json_object_get(b2, "reasons"), 0), "detail"),
                        "invalid JSON");
    json_decref(doc);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);

    int rc;
    char conf[700];
    case_path(conf, sizeof conf, "blocked-policy.json");
    FILE *pf = fopen(conf, "w");
    assert_non_null(pf);
    fputs("{\"rules\":[{\"id\":\"r1\",\"clause\":\"Terms 7.2\"}]}\n", pf);
    fclose(pf);
    g_conf = conf;
    char *a1[] = {"blocked", dir, NULL};
    char *out = capture(blocked_cli, 2, a1, NULL, &rc);
    g_conf = NULL;
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "clause  Terms 7.2 (from the policy given"));
    assert_non_null(strstr(out, "detail  invalid JSON"));
    free(out);
    json_decref(clauses);
}

/* The keyed pseudonym (key 0x6b x 32) of ID, as the proxy records it. */
static void pseudo_of(const char *id, char out[65])
{
    unsigned char key[32];
    memset(key, 0x6b, sizeof key);
    assert_int_equal(bg_pseudonym(key, sizeof key, id, strlen(id), out), 0);
}

static void test_identifier_forms(void **state)
{
    (void)state;
    char f[8][BG_REPORT_ID_MAX];
    size_t n = bg_report_identifier_forms("+86 138-0013-8000", f, 8);
    assert_int_equal(n, 4);
    assert_string_equal(f[0], "+86 138-0013-8000"); /* as given first */
    assert_string_equal(f[1], "8613800138000");
    assert_string_equal(f[2], "13800138000");
    assert_string_equal(f[3], "+8613800138000");
    n = bg_report_identifier_forms("13800138000", f, 8);
    assert_int_equal(n, 3); /* itself, +86..., 86... */
    n = bg_report_identifier_forms(" Li@Example.CN ", f, 8);
    assert_int_equal(n, 3);
    assert_string_equal(f[1], "Li@Example.CN");
    assert_string_equal(f[2], "li@example.cn");
    n = bg_report_identifier_forms("11010519491231002x", f, 8);
    assert_int_equal(n, 2);
    assert_string_equal(f[1], "11010519491231002X");
    n = bg_report_identifier_forms("u-1001", f, 8);
    assert_int_equal(n, 1);
    assert_int_equal(bg_report_identifier_forms("13800138000", f, 2), 2); /* MAX holds */
}

/*
 * `audit subject` by several identifiers: an account id, a phone number
 * as the person writes it and an e-mail address in another case find the
 * records that named the person under any of them (as a subjects.id, or as
 * a finding's value_pseudonym), and no raw identifier is printed.
 */
static void test_subject_by_any_identifier(void **state)
{
    (void)state;
    char dir[600], key[600], p1[700], phone[65], mail[65], other[65];
    int rc;
    pseudo_of("13800138000", phone);  /* a route whose subjects.id is the phone */
    pseudo_of("li@example.cn", mail); /* a route whose subjects.id is the e-mail */
    pseudo_of("someone-else", other);
    case_path(dir, sizeof dir, "anyid");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(p1, sizeof p1, "%s/audit-20260301-000000-000001.jsonl", dir);
    FILE *f = fopen(p1, "w");
#define fmt                                                                                        \
    "{\"seq\":%d,\"time\":\"2026-03-01T0%d:00:00.000Z\",\"type\":\"decision\","                    \
    "\"decision_id\":\"f%031d\",\"route\":\"r%d\",\"recipient\":{\"id\":\"cs\"},"                  \
    "\"destination\":{\"country\":\"US\",\"region\":\"cross-border\"},\"mode\":\"enforce\","       \
    "\"outcome\":\"allow\",\"would\":\"allow\",\"findings\":[{\"path\":\"$.x\","                   \
    "\"category\":\"cn_mobile\",\"basis\":\"consent\",\"action\":\"allow\","                       \
    "\"subject\":\"%s\"%s%s%s}],\"subjects\":[{\"pseudonym\":\"%s\"}],"                            \
    "\"mechanism\":\"standard_contract:SC-1\"}\n"
    fprintf(f, fmt, 1, 1, 1, 1, U1001, "", "", "", U1001);
    fprintf(f, fmt, 2, 2, 2, 2, phone, "", "", "", phone);
    fprintf(f, fmt, 3, 3, 3, 3, mail, "", "", "", mail);
    /* Someone else's request in which the person's phone appeared (a
     * record that carries the finding's own keyed pseudonym). */
    fprintf(f, fmt, 4, 4, 4, 4, other, ",\"value_pseudonym\":\"", phone, "\"", other);
    fprintf(f, fmt, 5, 5, 5, 5, other, "", "", "", other); /* not theirs */
#undef fmt
    fclose(f);
    case_path(key, sizeof key, "anyid.key");
    f = fopen(key, "w");
    fprintf(f, "%s\n", KEY_HEX);
    fclose(f);
    chmod(key, 0600);

    char *a1[] = {"subject", "u-1001",        "--id",  "+86 138-0013-8000",
                  "--id",    "Li@Example.CN", "--key", key,
                  dir,       "--json",        NULL};
    char *out = capture(subject_cli, 10, a1, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "138"));
    assert_null(strstr(out, "xample"));
    assert_null(strstr(out, "u-1001"));
    json_t *doc = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(doc);
    const json_t *subj = json_object_get(doc, "subject");
    assert_string_equal(sget(subj, "pseudonym"), U1001);
    assert_int_equal(iget(subj, "identifiers"), 3);
    assert_int_equal(json_array_size(json_object_get(subj, "pseudonyms")), 7);
    const json_t *ds = json_object_get(doc, "decisions");
    assert_int_equal(json_array_size(ds), 4); /* f1..f4, not f5 */
    assert_int_equal(iget(doc, "summary.transfers"), 4);
    const json_t *d4 = json_array_get(ds, 3);
    assert_string_equal(sget(d4, "route"), "r4");
    assert_int_equal(json_array_size(json_object_get(d4, "findings")), 1);
    json_decref(doc);

    /* One identifier a line on standard input; text output. */
    char *a2[] = {"subject", "-", "--key", key, dir, NULL};
    out = capture(subject_cli, 5, a2, "13800138000\r\n\nli@example.cn\n", &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "3 decision(s) name this subject"));
    assert_non_null(strstr(out, "other pseudonym(s) of the identifiers given"));
    assert_null(strstr(out, "13800138000"));
    free(out);

    /* Several pseudonyms, no key. */
    char *a3[] = {"subject", "--pseudonym", phone, "--pseudonym", mail, dir, "--json", NULL};
    out = capture(subject_cli, 7, a3, NULL, &rc);
    assert_int_equal(rc, 0);
    doc = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_array_size(json_object_get(doc, "decisions")), 3); /* f2, f3, f4 */
    json_decref(doc);
    char *a4[] = {"subject", "--pseudonym", phone, "--id", "x", dir, NULL};
    free(capture(subject_cli, 6, a4, NULL, &rc));
    assert_int_equal(rc, 2);
}

/* --config: the rules' clauses and the file's SHA-256 (what records name
 * as policy.sha256), read without loading the configuration. */
static void test_policy_read(void **state)
{
    (void)state;
    char path[600], err[256], sha[65];
    static const char text[] = "{\"keys\":{\"subject\":{\"env\":\"NOT_SET_ANYWHERE\"}},\"rules\":["
                               "{\"id\":\"r1\",\"clause\":\"Terms 7.2\"},{\"id\":\"r2\"}]}\n";
    case_path(path, sizeof path, "policy.json");
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    json_t *cl = NULL;
    assert_int_equal(bg_report_policy_read(path, &cl, sha, err, sizeof err), 0);
    assert_int_equal(json_object_size(cl), 1);
    assert_string_equal(json_string_value(json_object_get(cl, "r1")), "Terms 7.2");
    json_decref(cl);
    unsigned char d[SHA256_DIGEST_LENGTH];
    char want[65];
    SHA256((const unsigned char *)text, strlen(text), d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(want + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(sha, want);
    f = fopen(path, "w");
    fputs("{\"rules\": [", f);
    fclose(f);
    assert_int_equal(bg_report_policy_read(path, &cl, sha, err, sizeof err), -1);
    assert_null(cl);
    assert_non_null(strstr(err, path));
    assert_int_equal(bg_report_policy_read("/nonexistent/x.json", &cl, sha, err, sizeof err), -1);
}

/* The dashboard's one pass in slices of one line gives exactly the CLI's
 * documents. */
static void test_many_in_slices_equals_the_single_reports(void **state)
{
    (void)state;
    char dir[600], err[256];
    bg_report_scan_stats_t st;
    write_reasons_log(dir, sizeof dir);
    char **files;
    size_t n;
    char *ops[] = {dir};
    assert_int_equal(bg_report_expand(ops, 1, "audit", &files, &n, err, sizeof err), 0);
    const bg_report_by_t bys[] = {BG_REPORT_BY_COUNTRY, BG_REPORT_BY_DAY, BG_REPORT_BY_REASON,
                                  BG_REPORT_BY_RULE, BG_REPORT_BY_NONE};
    bg_report_dims_t dims[5];
    for (size_t i = 0; i < 5; i++) {
        dims[i].ndims = bys[i] != BG_REPORT_BY_NONE;
        dims[i].dims[0] = bys[i];
    }
    bg_report_many_t *m = bg_report_many_new((const char *const *)files, n, dims, 5,
                                             BG_REPORT_NO_TIME, BG_REPORT_NO_TIME, 3, NULL);
    assert_non_null(m);
    int rc, steps = 0;
    while ((rc = bg_report_many_step(m, 1, err, sizeof err)) > 0)
        steps++;
    assert_int_equal(rc, 0);
    assert_true(steps >= 4);
    json_t *doc = bg_report_many_json(m, err, sizeof err);
    bg_report_many_free(m);
    for (size_t i = 0; i < 5; i++) {
        json_t *one = run_report(dir, bys[i], NULL, NULL, &st);
        const char *name = bg_report_by_name(bys[i]);
        assert_true(json_equal(
            json_object_get(json_object_get(doc, "reports"), name != NULL ? name : "totals"), one));
        json_decref(one);
    }
    json_t *b = bg_report_blocked((const char *const *)files, n, BG_REPORT_NO_TIME,
                                  BG_REPORT_NO_TIME, 3, NULL, NULL, err, sizeof err);
    assert_true(json_equal(json_object_get(doc, "blocked"), b));
    json_decref(b);
    json_decref(doc);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_pseudonym_matches_the_proxy),
        cmocka_unit_test(test_report_totals_and_input),
        cmocka_unit_test(test_report_groups),
        cmocka_unit_test(test_report_window),
        cmocka_unit_test(test_subject_lookup),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_report_time_reason_rule_and_blocked),
        cmocka_unit_test(test_prune_files_before_the_window),
        cmocka_unit_test(test_many_in_slices_equals_the_single_reports),
        cmocka_unit_test(test_report_several_dimensions),
        cmocka_unit_test(test_blocked_clause_and_detail),
        cmocka_unit_test(test_identifier_forms),
        cmocka_unit_test(test_subject_by_any_identifier),
        cmocka_unit_test(test_policy_read),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
