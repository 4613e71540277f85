/*
 * libFuzzer target for the yearly counters journal (audit/counters.c): the
 * file of one JSON line per newly counted (year, recipient, kind, subject),
 * with "by":"device" for a subject identified by a device, that the daemon
 * loads at start and `audit volumes --counters` reads.
 *
 * The input is the file. Checks, beyond "never crash":
 *   - a read-only load always succeeds, counts every complete non-empty line
 *     as loaded or skipped, and reports the bytes after the last newline as
 *     a torn tail;
 *   - the counts are consistent: people is the union of the non-sensitive
 *     and sensitive sets (max <= people <= sum), people_by_device <= people,
 *     the same for the exempt numbers and for each recipient; the total of
 *     a kind is at most the sum over recipients and at least each one; the
 *     level is what the thresholds make of the totals;
 *   - loading is idempotent: the journal twice over counts the same people
 *     (a line already counted never counts again);
 *   - read-write: the torn tail is cut from the file; a subject added then
 *     is in the file, and a read-only load of the file afterwards gives the
 *     very counts the writer had.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/counters.h"
#include "fuzz/fuzz.h"

#define YEAR 2026
#define IN_YEAR_MS 1780000000000LL /* 2026-05-28 */

static char g_path[64];

static void cleanup(void)
{
    unlink(g_path);
}

static void put(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    FILE *fp = fopen(g_path, "wb");
    CHECK(fp != NULL);
    CHECK(fwrite(a, 1, na, fp) == na && fwrite(b, 1, nb, fp) == nb);
    CHECK(fclose(fp) == 0);
}

static bg_counters_t *load(int readonly, bg_counters_snapshot_t *s)
{
    bg_counters_options_t o;
    char err[256];
    bg_counters_options_init(&o);
    o.path = g_path;
    o.readonly = readonly;
    o.year = YEAR;
    o.quiet = 1;
    bg_counters_t *c = bg_counters_open_ex(&o, err, sizeof err);
    CHECK(c != NULL);
    bg_counters_snapshot(c, 0, s);
    CHECK(s->year == YEAR);
    return c;
}

static void check_union(uint64_t ns, uint64_t s, uint64_t people, uint64_t dev)
{
    CHECK(people >= ns && people >= s && people <= ns + s && dev <= people);
}

static void check_consistent(const bg_counters_snapshot_t *s)
{
    check_union(s->non_sensitive, s->sensitive, s->people, s->people_by_device);
    check_union(s->exempt_non_sensitive, s->exempt_sensitive, s->exempt_people,
                s->exempt_people_by_device);
    CHECK(s->level == bg_counters_level(&s->thresholds, s->non_sensitive, s->sensitive));
    uint64_t sum[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < s->nrecipients; i++) {
        const bg_counters_recipient_t *r = &s->recipients[i];
        CHECK(r->recipient != NULL);
        check_union(r->non_sensitive, r->sensitive, r->people, r->people_by_device);
        check_union(r->exempt_non_sensitive, r->exempt_sensitive, r->exempt_people,
                    r->exempt_people_by_device);
        CHECK(r->people > 0 || r->exempt_people > 0);
        CHECK(r->non_sensitive <= s->non_sensitive && r->sensitive <= s->sensitive &&
              r->exempt_non_sensitive <= s->exempt_non_sensitive &&
              r->exempt_sensitive <= s->exempt_sensitive);
        CHECK(i == 0 || r->people <= s->recipients[i - 1].people);
        sum[0] += r->non_sensitive;
        sum[1] += r->sensitive;
        sum[2] += r->exempt_non_sensitive;
        sum[3] += r->exempt_sensitive;
    }
    CHECK(s->non_sensitive <= sum[0] && s->sensitive <= sum[1] &&
          s->exempt_non_sensitive <= sum[2] && s->exempt_sensitive <= sum[3]);
}

/* The counts of A and B are the same (not the line statistics). */
static int same_counts(const bg_counters_snapshot_t *a, const bg_counters_snapshot_t *b)
{
    if (a->non_sensitive != b->non_sensitive || a->sensitive != b->sensitive ||
        a->people != b->people || a->people_by_device != b->people_by_device ||
        a->exempt_non_sensitive != b->exempt_non_sensitive ||
        a->exempt_sensitive != b->exempt_sensitive || a->exempt_people != b->exempt_people ||
        a->exempt_people_by_device != b->exempt_people_by_device ||
        a->nrecipients != b->nrecipients)
        return 0;
    for (size_t i = 0; i < a->nrecipients; i++) {
        const bg_counters_recipient_t *x = &a->recipients[i];
        size_t j = 0;
        while (j < b->nrecipients && strcmp(b->recipients[j].recipient, x->recipient) != 0)
            j++;
        if (j == b->nrecipients)
            return 0;
        const bg_counters_recipient_t *y = &b->recipients[j];
        if (x->non_sensitive != y->non_sensitive || x->sensitive != y->sensitive ||
            x->people != y->people || x->people_by_device != y->people_by_device ||
            x->exempt_people != y->exempt_people)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_path[0] == '\0') {
        snprintf(g_path, sizeof g_path, "/tmp/bg-fuzz-counters-%d.jsonl", (int)getpid());
        atexit(cleanup);
    }

    /* Read-only: every line accounted for. */
    size_t lines = 0, good = 0;
    for (size_t i = 0, start = 0; i < size; i++) {
        if (data[i] != '\n')
            continue;
        lines += i > start;
        start = i + 1;
        good = i + 1;
    }
    put(data, size, NULL, 0);
    bg_counters_snapshot_t s1, s2, s3;
    bg_counters_close(load(1, &s1));
    CHECK(s1.lines_loaded + s1.lines_skipped == lines);
    CHECK(s1.torn_bytes_cut == size - good);
    check_consistent(&s1);

    /* Twice over: the same people. */
    if (size == good) {
        put(data, size, data, size);
        bg_counters_close(load(1, &s2));
        CHECK(s2.lines_loaded + s2.lines_skipped == 2 * lines);
        CHECK(same_counts(&s1, &s2));
        bg_counters_snapshot_free(&s2);
    }

    /* Read-write: the tail cut, an added subject persisted. */
    put(data, size, NULL, 0);
    bg_counters_t *c = load(0, &s2);
    struct stat sb;
    CHECK(stat(g_path, &sb) == 0 && (size_t)sb.st_size == good);
    CHECK(same_counts(&s1, &s2));
    bg_counters_snapshot_free(&s2);
    static const char subj[] = "f00df00df00df00df00df00df00df00df00df00df00df00df00df00df00df00d";
    int by_device = size > 0 && (data[0] & 1);
    int added = bg_counters_add_subject(c, size > 1 && (data[1] & 1) ? "fuzz-recipient" : NULL,
                                        subj, size > 0 && (data[0] & 2), size > 0 && (data[0] & 4),
                                        by_device, IN_YEAR_MS);
    CHECK(added == 0 || added == 1);
    bg_counters_snapshot(c, 0, &s2);
    check_consistent(&s2);
    bg_counters_close(c);
    CHECK(stat(g_path, &sb) == 0 && ((size_t)sb.st_size == good) == (added == 0));
    bg_counters_close(load(1, &s3));
    CHECK(s3.torn_bytes_cut == 0);
    CHECK(same_counts(&s2, &s3));
    bg_counters_snapshot_free(&s1);
    bg_counters_snapshot_free(&s2);
    bg_counters_snapshot_free(&s3);
    return 0;
}
