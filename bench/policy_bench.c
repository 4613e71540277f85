/*
 * Policy benchmark: a generated policy with 200 routes and 1,000 rules, and
 * the per-request cost of inspect + decide (+ apply + render when the
 * decision de-identifies) on the 800-byte payload of bench/post800.lua.
 *
 *   build/policy_bench [GEO_DB] [N]
 *
 * Prints the load time of the policy, and for each scenario the median
 * microseconds per request over N runs (default 20,000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "inspect/inspect.h"
#include "policy/decide.h"
#include "policy/policy.h"

static const char payload[] =
    "{\"order_id\":\"ORD-2026-000123456\",\"currency\":\"CNY\",\"amount\":1288.50,"
    "\"items\":[{\"sku\":\"SKU-0001\",\"qty\":2,\"price\":199.00},{\"sku\":\"SKU-0002\",\"qty\":1,"
    "\"price\":890.50}],"
    "\"shipping\":{\"method\":\"express\",\"carrier\":\"partner-logistics\",\"service_level\":"
    "\"2day\"},"
    "\"customer\":{\"name\":\"Zhang "
    "Wei\",\"phone\":\"13812345678\",\"email\":\"zhang.wei@example.cn\","
    "\"address\":\"Room 1201, 88 Century Avenue, Pudong, Shanghai\"},"
    "\"device\":{\"os\":\"android\",\"app_version\":\"5.12.0\",\"locale\":\"zh-CN\"},"
    "\"meta\":{\"channel\":\"app\",\"campaign\":\"none\",\"trace\":"
    "\"7f3a9c1e2b4d4e0f9a8b7c6d5e4f3a2b\"}}";

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *const cats[] = {"cn_mobile",      "email",       "person_name", "address",
                                   "cn_resident_id", "bank_card",   "imei",        "device_id",
                                   "ip_address",     "gps_location"};

/* 200 routes (recipient r<i>), 1,000 rules: 5 per recipient, each naming two
 * categories, so a route's categories are found deep in the list. */
static char *make_policy(const char *db)
{
    size_t cap = 1 << 20, n = 0;
    char *s = malloc(cap);
#define OUT(...) n += (size_t)snprintf(s + n, cap - n, __VA_ARGS__)
    OUT("{\"listen\":\"127.0.0.1:0\",\"geo\":{\"database\":\"%s\"},\"recipients\":{", db);
    for (int i = 0; i < 200; i++)
        OUT("%s\"r%d\":{\"legal_entity\":\"R%d Ltd\",\"relationship\":\"third_party\","
            "\"purposes\":[\"delivery\"],\"mechanism\":{\"type\":\"standard_contract\","
            "\"reference\":\"SC-%d\"}}",
            i ? "," : "", i, i, i);
    OUT("},\"rules\":[");
    for (int i = 0; i < 1000; i++) {
        int r = i / 5, k = i % 5;
        OUT("%s{\"id\":\"rule-%d\",\"categories\":[\"%s\",\"%s\"],\"recipients\":[\"r%d\"],"
            "\"bases\":[\"contract\",\"consent\"],\"fallback\":\"deidentify\"}",
            i ? "," : "", i, cats[(2 * k) % 10], cats[(2 * k + 1) % 10], r);
    }
    OUT("],\"routes\":[");
    for (int i = 0; i < 200; i++)
        OUT("%s{\"id\":\"route-%d\",\"match\":{\"host\":\"api%d.example\"},\"upstream\":\"http://"
            "api%d.example\","
            "\"recipient\":\"r%d\",\"purpose\":\"delivery\",\"bases\":{\"contract\":{\"purpose\":"
            "\"delivery\","
            "\"necessary\":[\"person_name\",\"address\"],\"reference\":\"$.order_id\"}}}",
            i ? "," : "", i, i, i, i);
    OUT("]}");
#undef OUT
    return s;
}

int main(int argc, char **argv)
{
    const char *db = argc > 1 ? argv[1] : "build/bordergate-country.mmdb";
    int n = argc > 2 ? atoi(argv[2]) : 20000;
    char path[] = "/tmp/bg-policy-bench-XXXXXX";
    int fd = mkstemp(path);
    char *text = make_policy(db);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return 1;
    close(fd);
    double t0 = now_us();
    int nerr = 0;
    bg_config_t *cfg = bg_config_load(path, stderr, &nerr);
    double t1 = now_us();
    unlink(path);
    free(text);
    if (cfg == NULL)
        return 1;
    printf("policy: %d routes, %d rules, %d recipients: loaded and checked in %.1f ms\n",
           cfg->nroutes, cfg->policy->nrules, cfg->policy->nrecipients, (t1 - t0) / 1000);

    bg_geo_answer_t geo;
    memset(&geo, 0, sizeof geo);
    strcpy(geo.country, "US");
    geo.region = BG_GEO_CROSS_BORDER;
    bg_http_header_t hdr[1] = {{"Content-Type", 12, "application/json", 16}};
    bg_inspect_input_t in;
    memset(&in, 0, sizeof in);
    in.method = "POST";
    in.method_len = 4;
    in.target = "/orders";
    in.target_len = 7;
    in.headers = hdr;
    in.nheaders = 1;
    in.body = payload;
    in.body_len = sizeof payload - 1;

    double *t = malloc(sizeof(double) * (size_t)n);
    int route = 199; /* the last route: its rules are the last in the file */
    for (int phase = 0; phase < 2; phase++) {
        size_t findings = 0;
        int outcome = 0;
        for (int i = 0; i < n; i++) {
            double a = now_us();
            bg_inspection_t *insp = bg_inspect(cfg->policy->routes[route].inspect, &in);
            bg_decision_t d;
            bg_decide_input_t di;
            memset(&di, 0, sizeof di);
            di.policy = cfg->policy;
            di.route_index = route;
            di.route = &cfg->routes[route];
            di.geo = &geo;
            di.insp = insp;
            di.headers = hdr;
            di.nheaders = 1;
            di.now_ms = 1790000000000;
            double b = now_us();
            bg_decide(&di, &d);
            double c = now_us();
            if (phase == 1 && d.would == BG_OUTCOME_DEIDENTIFY) {
                bg_decision_apply(&d, insp, cfg->policy);
                bg_rewrite_t rw;
                if (bg_inspection_render(insp, &rw) == 0)
                    bg_rewrite_free(&rw);
            }
            double e = now_us();
            t[i] = phase == 0 ? c - b : e - a;
            findings = bg_inspection_count(insp);
            outcome = d.would;
            bg_decision_free(&d);
            bg_inspection_free(insp);
        }
        qsort(t, (size_t)n, sizeof *t, cmp_d);
        printf("%-46s median %6.2f us  p99 %6.2f us  (%zu findings, outcome %s)\n",
               phase == 0 ? "decide only (route 200 of 200, 1,000 rules):"
                          : "inspect + decide + de-identify + render:",
               t[n / 2], t[n * 99 / 100], findings, bg_outcome_name((bg_outcome_t)outcome));
    }
    free(t);
    bg_config_unref(cfg);
    return 0;
}
