/*
 * libFuzzer target for the rollup day files (audit/rollup.c, read back by audit/rollup_query.c)
 * from disk: a corrupt or hostile DIR/audit.rollup/YYYY-MM-DD must never crash a report or the
 * dashboard, what the rollups hand out of the raw log must come from the raw log, and the
 * people callback (bg_rollup_query_set_people) and the daily sums (bg_rollup_query_set_daily)
 * must count what the records they replace count.
 *
 * Once per process: a temporary audit directory with one raw log of
 * decision records (some blocked, one without a time) and a file beside it
 * that is not an audit file, rollups brought up to date over the first
 * half of the log, their state kept. Per input (first byte: which day file
 * and how; the rest: its bytes):
 *   - every saved day file removed, the input written as day file
 *     2026-03-01 (or "none"), the state put back (so the rollups are
 *     trusted, not reset);
 *   - read: bg_rollup_open (READ), step to the end, bg_rollup_query over an
 *     open window and over one day, asking for the latest blocked
 *     decisions; every report (by several dimension sets) read both ways;
 *   - write (every other input): bg_rollup_open (WRITE), step over the
 *     second half, bg_rollup_save - which merges the input with the update
 *     - then read the result as above.
 * Checks:
 *   - open and step succeed; a query and a save succeed whatever the day
 *     file holds (a damaged line is skipped: `audit rebuild` recomputes
 *     it from the raw log) - they fail only on memory or I/O errors;
 *   - every aggregate handed to the callback is a JSON object with a
 *     weight, never blocked;
 *   - every blocked decision handed out is a decision record, whole, equal
 *     to a line of the raw log (a day file cannot make the dashboard show
 *     a file that is not an audit file), with an order naming a directory
 *     of the query;
 *   - what a save wrote over the input reads back without an error;
 *   - the day file split into hours as the fleet publishes them
 *     (bg_rollup_day_hours) reads back as text without an error, its
 *     blocked decisions parts of raw records that were blocked.
 */
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/report.h"
#include "audit/rollup.h"
#include "fuzz/fuzz.h"

#define HOUR 3600000LL
#define T0 1772323200000LL /* 2026-03-01T00:00:00Z */
#define NREC 24
#define RAW "audit-20260301-000000-000001.jsonl"

static char g_dir[64], g_rdir[96], g_raw[160];
static char *g_state; /* the state after the first half */
static size_t g_state_len;
static json_t *g_recs; /* the raw log's records */

static void put(const char *path, const char *text, size_t len)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    CHECK(fwrite(text, 1, len, fp) == len);
    CHECK(fclose(fp) == 0);
}

/* Records FROM..TO-1 of the raw log, appended. */
static void append_records(int from, int to)
{
    FILE *fp = fopen(g_raw, "ab");
    CHECK(fp != NULL);
    for (int i = from; i < to; i++) {
        int64_t t = T0 + (int64_t)i * 20 * 60 * 1000; /* every 20 minutes */
        char when[64] = "";
        if (i != 5) {
            time_t s = (time_t)(t / 1000);
            struct tm tm;
            gmtime_r(&s, &tm);
            strftime(when, sizeof when, "\"time\":\"%Y-%m-%dT%H:%M:%S.000Z\",", &tm);
        }
        const char *outcome = i % 3 == 2 ? "block" : i % 3 == 1 ? "deidentify" : "allow";
        char line[1024];
        snprintf(line, sizeof line,
                 "{\"type\":\"decision\",%s\"route\":\"r%d\",\"recipient\":{\"id\":\"p%d\"},"
                 "\"destination\":{\"country\":\"US\",\"region\":\"cross-border\"},"
                 "\"mode\":\"enforce\",\"outcome\":\"%s\",\"findings\":[{\"category\":\"email\","
                 "\"basis\":\"consent\",\"rule\":\"r-e\",\"action\":\"allow\",\"sensitive\":"
                 "false,\"subject\":\"ab%062d\"}],\"subjects\":[{\"pseudonym\":\"cd%062d\"}],"
                 "\"reasons\":[{\"code\":\"no_basis\"}]}\n",
                 when, i % 3, i % 2, outcome, i % 7, i % 5);
        fputs(line, fp);
        json_t *r = json_loads(line, 0, NULL);
        CHECK(r != NULL);
        json_array_append_new(g_recs, r);
    }
    CHECK(fclose(fp) == 0);
}

/* Remove every file of the rollup directory but the lock. */
static void clear_rollups(void)
{
    DIR *d = opendir(g_rdir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "lock") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", g_rdir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
}

/* At exit: the temporary directory goes (a crash keeps it to look at). */
static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    char err[256];
    snprintf(g_dir, sizeof g_dir, "/tmp/bg-fuzz-rollup-XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
    atexit(cleanup);
    snprintf(g_rdir, sizeof g_rdir, "%s/audit.rollup", g_dir);
    snprintf(g_raw, sizeof g_raw, "%s/" RAW, g_dir);
    g_recs = json_array();
    /* Not an audit file: a B line naming it must not be read. */
    char other[160];
    snprintf(other, sizeof other, "%s/other.jsonl", g_dir);
    static const char fake[] = "{\"type\":\"decision\",\"outcome\":\"block\",\"not\":\"audit\"}\n";
    put(other, fake, sizeof fake - 1);
    append_records(0, NREC / 2);
    bg_rollup_t *u = bg_rollup_open(g_dir, "audit", BG_ROLLUP_WRITE, err, sizeof err);
    CHECK(u != NULL);
    while (bg_rollup_step(u, 5, err, sizeof err) > 0)
        ;
    CHECK(bg_rollup_save(u, err, sizeof err) == 0);
    bg_rollup_free(u);
    char sp[160];
    snprintf(sp, sizeof sp, "%s/state", g_rdir);
    FILE *fp = fopen(sp, "rb");
    CHECK(fp != NULL);
    g_state = malloc(65536);
    CHECK(g_state != NULL);
    g_state_len = fread(g_state, 1, 65536, fp);
    fclose(fp);
    append_records(NREC / 2, NREC);
}

static int g_failed;      /* the callback saw something wrong */
static int g_failed_text; /* ... reading hours as text */

static int feed(void *arg, const json_t *rec, uint64_t weight, uint64_t order, int blocked)
{
    (void)arg;
    if (!json_is_object(rec))
        g_failed = 1;
    if (!blocked)
        return 0;
    /* A blocked decision: read whole from the raw log. */
    int found = 0;
    size_t i;
    const json_t *r;
    json_array_foreach(g_recs, i, r)
    {
        found |= json_equal(r, rec);
    }
    if (!found || weight != 1 || (order >> 48) != 0)
        g_failed = 1;
    return 0;
}

/* The same for a query over hours as text: a blocked decision there is the
 * part of a raw record the latest-blocked list reads. */
static int feed_text(void *arg, const json_t *rec, uint64_t weight, uint64_t order, int blocked)
{
    (void)arg;
    (void)order;
    if (!json_is_object(rec))
        g_failed_text = 1;
    if (!blocked)
        return 0;
    int found = 0;
    size_t i;
    const json_t *r;
    json_array_foreach(g_recs, i, r)
    {
        found |= json_equal(json_object_get(r, "time"), json_object_get(rec, "time")) &&
                 json_equal(json_object_get(r, "route"), json_object_get(rec, "route")) &&
                 json_equal(json_object_get(r, "reasons"), json_object_get(rec, "reasons"));
    }
    const char *outcome = json_string_value(json_object_get(rec, "outcome"));
    if (!found || weight != 1 || outcome == NULL || strcmp(outcome, "block") != 0)
        g_failed_text = 1;
    return 0;
}

/* An hour's text (bg_rollup_day_hours) read back as the fleet reads it. */
static int feed_hour(void *arg, int64_t hour_ms, const char *text, size_t len)
{
    char err[256];
    (void)hour_ms;
    CHECK(bg_rollup_query_text(arg, text, len, err, sizeof err) == 0);
    return 0;
}

/* The day file as the fleet publishes it: split into hours, each read back
 * through a query over no rollups - whatever the day file holds. */
static void hours_of_day(const bg_rollup_t *u)
{
    char err[256];
    bg_rollup_query_t *x = bg_rollup_query_new(NULL, 0, BG_REPORT_NO_TIME, BG_REPORT_NO_TIME, 4,
                                               feed_text, NULL, err, sizeof err);
    CHECK(x != NULL);
    CHECK(bg_rollup_day_hours(u, "2026-03-01", feed_hour, x, err, sizeof err) == 0);
    int rc;
    while ((rc = bg_rollup_query_step(x, err, sizeof err)) > 0)
        ;
    CHECK(rc == 0);
    CHECK(!g_failed_text);
    bg_rollup_query_free(x);
}

static int report_feed(void *arg, const json_t *rec, uint64_t weight, uint64_t order, int blocked)
{
    (void)order;
    if (!blocked)
        CHECK(bg_report_add_weighted(arg, rec, weight) >= 0);
    return 0;
}

static int report_people(void *arg, const json_t *rec, const bg_report_person_t *ps, size_t n)
{
    CHECK(bg_report_add_people(arg, rec, ps, n) >= 0);
    return 0;
}

/* The report by D over [FROM, TO) of U, the people handed out as records
 * or (HOW & 1) to the people callback, the entries one by one or (HOW & 2)
 * summed per shape and day. */
static json_t *report_of(bg_rollup_t *u, const char *d, int64_t from, int64_t to, int how)
{
    char err[256];
    bg_report_dims_t dims;
    CHECK(bg_report_dims_parse(d, &dims, err, sizeof err) == 0);
    bg_report_t *r = bg_report_new_dims(&dims, from, to, NULL);
    CHECK(r != NULL);
    bg_rollup_query_t *x = bg_rollup_query_new(&u, 1, from, to, 0, report_feed, r, err, sizeof err);
    CHECK(x != NULL);
    if (how & 1)
        bg_rollup_query_set_people(x, report_people);
    if (how & 2)
        bg_rollup_query_set_daily(x);
    int rc;
    while ((rc = bg_rollup_query_step(x, err, sizeof err)) > 0)
        ;
    CHECK(rc == 0);
    json_t *doc = bg_report_json(r, bg_rollup_query_stats(x));
    bg_rollup_query_free(x);
    bg_report_free(r);
    return doc;
}

/* The people callback counts what the records carrying the people count,
 * and the daily sums what the entries one by one count (without the hour
 * dimension), whatever the day file holds: every report is equal. */
static void same_people(bg_rollup_t *u, int64_t from, int64_t to)
{
    static const char *const by[] = {"country", "category", "reason,route", "recipient,basis",
                                     "day",     "outcome",  "rule,route",   "country,reason",
                                     "hour"};
    for (size_t i = 0; i < sizeof by / sizeof by[0]; i++) {
        json_t *a = report_of(u, by[i], from, to, 0), *b = report_of(u, by[i], from, to, 1);
        CHECK(a != NULL && b != NULL && json_equal(a, b));
        json_decref(b);
        if (strcmp(by[i], "hour") != 0) {
            b = report_of(u, by[i], from, to, 3);
            CHECK(b != NULL && json_equal(a, b));
            json_decref(b);
        }
        json_decref(a);
    }
}

/* Query the rollups of the audit directory over an open window and one
 * day. Returns the number of queries that succeeded. */
static int query_all(void)
{
    char err[256];
    bg_rollup_t *u = bg_rollup_open(g_dir, "audit", BG_ROLLUP_READ, err, sizeof err);
    CHECK(u != NULL);
    int s;
    while ((s = bg_rollup_step(u, 1000, err, sizeof err)) > 0)
        ;
    CHECK(s == 0);
    static const int64_t win[][2] = {{BG_REPORT_NO_TIME, BG_REPORT_NO_TIME},
                                     {T0 - 8 * HOUR, T0 + 16 * HOUR}};
    int ok = 0;
    for (size_t w = 0; w < 2; w++) {
        bg_report_scan_stats_t st;
        memset(&st, 0, sizeof st);
        err[0] = '\0';
        int rc = bg_rollup_query(&u, 1, win[w][0], win[w][1], 4, feed, NULL, &st, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "query: %s\n", err);
        CHECK(rc == 0); /* damaged lines are skipped, not a failure */
        CHECK(!g_failed);
        CHECK(st.files == 1 && st.lines == NREC);
        same_people(u, win[w][0], win[w][1]);
        ok++;
    }
    hours_of_day(u);
    bg_rollup_free(u);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_state == NULL)
        setup();
    if (size == 0)
        return 0;
    int how = data[0];
    char day[160], sp[160];
    snprintf(day, sizeof day, "%s/%s", g_rdir, how & 1 ? "none" : "2026-03-01");
    snprintf(sp, sizeof sp, "%s/state", g_rdir);
    clear_rollups();
    put(sp, g_state, g_state_len);
    put(day, (const char *)data + 1, size - 1);

    query_all();

    if (how & 2) {
        /* An update of the second half merged with the input and saved:
         * what it wrote reads back. */
        char err[256];
        put(sp, g_state, g_state_len);
        put(day, (const char *)data + 1, size - 1);
        bg_rollup_t *u = bg_rollup_open(g_dir, "audit", BG_ROLLUP_WRITE, err, sizeof err);
        CHECK(u != NULL);
        int s;
        while ((s = bg_rollup_step(u, 1000, err, sizeof err)) > 0)
            ;
        CHECK(s == 0);
        int rc = bg_rollup_save(u, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "save: %s\n", err);
        CHECK(rc == 0); /* a damaged saved file does not stop the next save */
        bg_rollup_free(u);
        CHECK(query_all() == 2);
    }
    return 0;
}
