/*
 * proxy/metrics.c: per-worker series summed at scrape, label escaping, the
 * bounded series table (overflow is counted, never grows), histogram
 * buckets, and the exposition syntax of the whole rendering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config/config.h"
#include "geo/geo.h"
#include "policy/decide.h"
#include "proxy/metrics.h"
#include "proxy/runtime.h"
#include "proxy/worker.h"

typedef struct {
    bg_config_t cfg;
    bg_runtime_t rt;
    bg_worker_t workers[2];
    bg_geo_answer_t geo;
    bg_decision_t d;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    char err[256];
    f->cfg.geo_db = bg_geo_db_open(bg_config_default_geo_db(), err, sizeof err);
    if (f->cfg.geo_db == NULL) {
        fprintf(stderr, "country database %s: %s\n", bg_config_default_geo_db(), err);
        return -1;
    }
    f->cfg.geo_max_age_days = 180;
    f->rt.cfg = &f->cfg;
    f->rt.generation = 1;
    for (int i = 0; i < 2; i++)
        f->workers[i].metrics = bg_metrics_new(BG_METRICS_DEFAULT_SERIES);
    memcpy(f->geo.country, "US", 3);
    f->geo.region = BG_GEO_CROSS_BORDER;
    f->d.outcome = BG_OUTCOME_ALLOW;
    f->d.would = BG_OUTCOME_ALLOW;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 2; i++)
        bg_metrics_free(f->workers[i].metrics);
    bg_geo_db_unref(f->cfg.geo_db);
    free(f);
    return 0;
}

/* The whole exposition as a string (caller frees). */
static char *render(fixture_t *f)
{
    bg_metrics_scrape_t sc;
    memset(&sc, 0, sizeof sc);
    sc.workers = f->workers;
    sc.nworkers = 2;
    sc.rt = &f->rt;
    sc.ready = 1;
    struct evbuffer *b = evbuffer_new();
    bg_metrics_render(&sc, b);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static void count(fixture_t *f, int worker, const char *route_id, int times)
{
    bg_route_t r;
    memset(&r, 0, sizeof r);
    r.id = (char *)route_id;
    for (int i = 0; i < times; i++)
        bg_metrics_decision(f->workers[worker].metrics, &f->cfg, &r, &f->geo, &f->d, NULL);
}

static void test_workers_are_summed_into_one_series(void **state)
{
    fixture_t *f = *state;
    count(f, 0, "orders", 2);
    count(f, 1, "orders", 3);
    f->d.outcome = BG_OUTCOME_BLOCK;
    count(f, 1, "orders", 1);
    char *s = render(f);
    assert_non_null(
        strstr(s, "bordergate_decisions_total{route=\"orders\",recipient=\"\",country=\"US\","
                  "region=\"cross-border\",decision=\"allow\",mode=\"enforce\"} 5\n"));
    assert_non_null(strstr(s, "decision=\"block\",mode=\"enforce\"} 1\n"));
    /* blocked with no reason recorded still counts, under "unspecified" */
    assert_non_null(strstr(s, "bordergate_blocked_total{reason=\"unspecified\"} 1\n"));
    assert_non_null(strstr(s, "bordergate_metrics_dropped_total 0\n"));
    free(s);
}

static void test_label_values_are_escaped_and_bad_countries_are_unknown(void **state)
{
    fixture_t *f = *state;
    memcpy(f->geo.country, "u1", 3);
    count(f, 0, "we\"ird\\id\nx", 1);
    char *s = render(f);
    assert_non_null(strstr(s, "route=\"we\\\"ird\\\\id\\nx\""));
    assert_non_null(strstr(s, "country=\"unknown\""));
    free(s);
}

static void test_a_full_table_counts_drops_instead_of_growing(void **state)
{
    fixture_t *f = *state;
    char id[32];
    for (int i = 0; i < BG_METRICS_DEFAULT_SERIES + 10; i++) {
        snprintf(id, sizeof id, "r%d", i);
        count(f, 0, id, 1);
    }
    count(f, 0, "r0", 1); /* an existing series still counts */
    char *s = render(f);
    assert_non_null(strstr(s, "bordergate_metrics_dropped_total 10\n"));
    assert_non_null(strstr(s, "route=\"r0\","));
    assert_non_null(strstr(s, "mode=\"enforce\"} 2\n"));
    free(s);
}

static void test_histograms_are_cumulative_and_added_excludes_upstream(void **state)
{
    fixture_t *f = *state;
    bg_metrics_request_done(f->workers[0].metrics, 50, 0);            /* 50 us, all ours */
    bg_metrics_request_done(f->workers[1].metrics, 2000000, 1999000); /* 2 s, 1 ms ours */
    bg_metrics_request_done(f->workers[1].metrics, 20000000,
                            20000000); /* 20 s, above every bound */
    char *s = render(f);
    assert_non_null(strstr(s, "bordergate_request_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(s, "bordergate_request_duration_seconds_bucket{le=\"2.5\"} 2\n"));
    assert_non_null(strstr(s, "bordergate_request_duration_seconds_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(s, "bordergate_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(s, "bordergate_request_duration_seconds_count 3\n"));
    assert_non_null(strstr(s, "bordergate_request_duration_seconds_sum 22.000050\n"));
    /* added: 50 us, 1 ms and 0 */
    assert_non_null(strstr(s, "bordergate_added_latency_seconds_bucket{le=\"0.0001\"} 2\n"));
    assert_non_null(strstr(s, "bordergate_added_latency_seconds_bucket{le=\"0.001\"} 3\n"));
    assert_non_null(strstr(s, "bordergate_added_latency_seconds_sum 0.001050\n"));
    free(s);
}

/* Every line is a comment (HELP/TYPE) or "name{labels} value"; every name
 * has a TYPE before its first sample. */
static void test_route_histograms_sum_workers_per_route(void **state)
{
    fixture_t *f = *state;
    bg_metrics_upstream_response(f->workers[0].metrics, "orders", 200, 3000);   /* 0.003 s */
    bg_metrics_upstream_response(f->workers[1].metrics, "orders", 503, 40000);  /* 0.04 s */
    bg_metrics_upstream_response(f->workers[1].metrics, "orders", 204, 900000); /* 0.9 s */
    bg_metrics_upstream_response(f->workers[0].metrics, "ord", 200, 60000000);  /* above 30 s */
    bg_metrics_upstream_connect(f->workers[0].metrics, "orders", 700);
    bg_metrics_route_bytes(f->workers[0].metrics, "orders", 10, 20);
    bg_metrics_route_bytes(f->workers[1].metrics, "orders", 5, 0);
    char *s = render(f);
    const char *want[] = {
        "bordergate_upstream_response_seconds_bucket{route=\"orders\",le=\"0.005\"} 1\n",
        "bordergate_upstream_response_seconds_bucket{route=\"orders\",le=\"0.025\"} 1\n",
        "bordergate_upstream_response_seconds_bucket{route=\"orders\",le=\"0.05\"} 2\n",
        "bordergate_upstream_response_seconds_bucket{route=\"orders\",le=\"1\"} 3\n",
        "bordergate_upstream_response_seconds_bucket{route=\"orders\",le=\"+Inf\"} 3\n",
        "bordergate_upstream_response_seconds_sum{route=\"orders\"} 0.943000\n",
        "bordergate_upstream_response_seconds_count{route=\"orders\"} 3\n",
        "bordergate_upstream_response_seconds_bucket{route=\"ord\",le=\"30\"} 0\n",
        "bordergate_upstream_response_seconds_bucket{route=\"ord\",le=\"+Inf\"} 1\n",
        "bordergate_upstream_responses_total{route=\"orders\",class=\"2xx\"} 2\n",
        "bordergate_upstream_responses_total{route=\"orders\",class=\"5xx\"} 1\n",
        "bordergate_upstream_connect_seconds_bucket{route=\"orders\",le=\"0.0005\"} 0\n",
        "bordergate_upstream_connect_seconds_bucket{route=\"orders\",le=\"0.001\"} 1\n",
        "bordergate_upstream_connect_seconds_count{route=\"orders\"} 1\n",
        "bordergate_request_bytes_total{route=\"orders\"} 15\n",
        "bordergate_response_bytes_total{route=\"orders\"} 20\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(s, want[i]) == NULL)
            fail_msg("missing: %s", want[i]);
    }
    free(s);
}

/* One worker counting series that take turns, more of them than it keeps
 * at hand, whose keys are prefixes of one another ("ord", "orders",
 * "orders2"): each counted on its own, none for another. */
static void test_series_taking_turns_count_apart(void **state)
{
    fixture_t *f = *state;
    static const char *const routes[] = {"ord", "orders", "orders2"};
    for (int i = 0; i < 30; i++)
        for (int r = 0; r <= i % 3; r++)
            bg_metrics_route_bytes(f->workers[0].metrics, routes[r], 1, (uint64_t)(r + 1));
    char *s = render(f);
    const char *want[] = {
        "bordergate_request_bytes_total{route=\"ord\"} 30\n",
        "bordergate_request_bytes_total{route=\"orders\"} 20\n",
        "bordergate_request_bytes_total{route=\"orders2\"} 10\n",
        "bordergate_response_bytes_total{route=\"ord\"} 30\n",
        "bordergate_response_bytes_total{route=\"orders\"} 40\n",
        "bordergate_response_bytes_total{route=\"orders2\"} 30\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(s, want[i]) == NULL)
            fail_msg("missing: %s", want[i]);
    }
    free(s);
}

static void test_every_line_is_valid_exposition(void **state)
{
    fixture_t *f = *state;
    count(f, 0, "a", 1);
    bg_metrics_refusal(f->workers[0].metrics, 421);
    bg_metrics_request_done(f->workers[0].metrics, 10, 0);
    char *s = render(f);
    char typed[64][80];
    int ntyped = 0;
    for (char *line = strtok(s, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        char name[80], kind[20];
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line, "# TYPE %79s %19s", name, kind), 2);
            assert_true(strcmp(kind, "counter") == 0 || strcmp(kind, "gauge") == 0 ||
                        strcmp(kind, "histogram") == 0);
            assert_true(ntyped < 64);
            strcpy(typed[ntyped++], name);
            continue;
        }
        size_t n = strcspn(line, "{ ");
        assert_true(n > 0 && n < sizeof name);
        memcpy(name, line, n);
        name[n] = '\0';
        int found = 0;
        for (int i = 0; i < ntyped && !found; i++) {
            size_t tl = strlen(typed[i]);
            found = strncmp(name, typed[i], tl) == 0 &&
                    (name[tl] == '\0' || strcmp(name + tl, "_bucket") == 0 ||
                     strcmp(name + tl, "_sum") == 0 || strcmp(name + tl, "_count") == 0);
        }
        if (!found)
            fail_msg("sample without a TYPE line: %s", line);
        const char *v = strrchr(line, ' ');
        assert_non_null(v);
        char *end;
        strtod(v + 1, &end);
        assert_true(*end == '\0');
    }
    assert_true(ntyped > 20);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_workers_are_summed_into_one_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_values_are_escaped_and_bad_countries_are_unknown,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_table_counts_drops_instead_of_growing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_histograms_are_cumulative_and_added_excludes_upstream,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_histograms_sum_workers_per_route, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_series_taking_turns_count_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_line_is_valid_exposition, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
