/*
 * libFuzzer target for a rollup hour as text (audit/rollup.h "For the
 * fleet"), what the fleet's dashboard reads from Redis: another instance's
 * hour, or whatever a hostile or damaged store holds under its key. It
 * must never crash the dashboard, and what it hands to the report must be
 * what a report can take.
 *
 * Per input (first byte: the window and the blocked limit; the rest: the
 * text, given the hour header when the first byte is even so most inputs
 * get past the header check): a query over no rollups is fed the text
 * (bg_rollup_query_text) twice - the same hour from two instances - then
 * stepped to the end.
 * Checks:
 *   - a text without the header is refused (-1), never read;
 *   - with it, reading succeeds (damaged lines are skipped) and the query
 *     ends (0);
 *   - every aggregate and every blocked decision is a JSON object; the
 *     blocked ones weight 1, at most LIMIT of them, oldest first (their order:
 *     the time from the text, non-decreasing);
 *   - the callback's records feed a real report (bg_report_many_feed) and
 *     its document is made without an error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/report.h"
#include "audit/rollup.h"
#include "fuzz/fuzz.h"

#define HOUR 3600000LL
#define T0 1772323200000LL /* 2026-03-01T00:00:00Z */
#define HEADER "# bordergate-rollup-hour/1\n"

typedef struct {
    bg_report_many_t *m;
    int blocked;
    uint64_t last_order;
    int limit;
} ctx_t;

static int feed(void *arg, const json_t *rec, uint64_t weight, uint64_t order, int blocked)
{
    ctx_t *c = arg;
    CHECK(json_is_object(rec));
    if (blocked) {
        CHECK(weight == 1);
        CHECK(c->blocked == 0 || order >= c->last_order);
        c->last_order = order;
        c->blocked++;
        CHECK(c->blocked <= c->limit);
    }
    CHECK(bg_report_many_feed(c->m, rec, weight, blocked) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int how = data[0];
    const char *body = (const char *)data + 1;
    size_t blen = size - 1, hl = strlen(HEADER);
    char *text = malloc(blen + hl + 1);
    CHECK(text != NULL);
    size_t len = 0;
    if ((how & 1) == 0) {
        memcpy(text, HEADER, hl);
        len = hl;
    }
    memcpy(text + len, body, blen);
    len += blen;
    int64_t from = how & 2 ? T0 : BG_REPORT_NO_TIME,
            to = how & 2 ? T0 + 24 * HOUR : BG_REPORT_NO_TIME;
    static const bg_report_dims_t dims[] = {{{BG_REPORT_BY_COUNTRY}, 1},
                                            {{BG_REPORT_BY_HOUR}, 1},
                                            {{BG_REPORT_BY_CATEGORY}, 1},
                                            {{BG_REPORT_BY_REASON}, 1},
                                            {{BG_REPORT_BY_RULE}, 1}};
    ctx_t c = {.limit = 1 + (how >> 2) % 8};
    c.m = bg_report_many_new(NULL, 0, dims, 5, from, to, c.limit, NULL);
    CHECK(c.m != NULL);
    char err[256];
    bg_rollup_query_t *x =
        bg_rollup_query_new(NULL, 0, from, to, c.limit, feed, &c, err, sizeof err);
    CHECK(x != NULL);
    int headed = len >= hl && memcmp(text, HEADER, hl) == 0;
    for (int k = 0; k < 2; k++) {
        int rc = bg_rollup_query_text(x, text, len, err, sizeof err);
        CHECK(headed || len == 0 ? rc == 0 : rc == -1); /* nothing to read is not an error */
    }
    int rc;
    while ((rc = bg_rollup_query_step(x, err, sizeof err)) > 0)
        ;
    CHECK(rc == 0);
    bg_report_many_feed_done(c.m, bg_rollup_query_stats(x));
    json_t *doc = bg_report_many_json(c.m, err, sizeof err);
    CHECK(doc != NULL);
    json_decref(doc);
    bg_rollup_query_free(x);
    bg_report_many_free(c.m);
    free(text);
    return 0;
}
