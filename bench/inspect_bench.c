/*
 * Inspection benchmark (built by CMake as build/inspect_bench; run it with
 * bench/inspect_bench.sh, which builds a Release tree first):
 *
 *   build-rel/inspect_bench [RUNS]
 *   build-rel/inspect_bench --only dense8|clean8|dense1|clean1|small [N]
 *       (bg_inspect N times and nothing else, for a profiler:
 *        valgrind --tool=callgrind --toggle-collect=bg_inspect ...;
 *        with INSPECT_BENCH_DUMP set it prints the document instead)
 *
 * The bar (issue 13, tightened from issue 4's 1.5x): inspecting and
 * rewriting a 1 MB JSON document costs at most 1.0x what jansson takes to
 * parse and dump the same document, and an 800-byte document stays in
 * single-digit microseconds. The MB/s column is one core's inspection
 * throughput (bytes / median inspect time) on a PI-dense and a PI-free
 * document.
 *
 * Documents (generated, deterministic):
 *   1 MB     {"batch":..,"events":[2,000 records]}: each record an order
 *            event with a name, mobile, e-mail, resident ID, device id and
 *            IMEI, a stringified JSON "ext" (IP, coordinates), prices,
 *            timestamps, order and trace ids;
 *   800 B    one order with its customer (the proxy benchmark's payload);
 *   1 MB no-PI  the same shape with the personal fields replaced by
 *            catalogue and logistics data: inspected only (nothing to
 *            rewrite);
 *   8 MB     issue 15's detection speed: {"page":..,"data":[~10,000
 *            records]} of a typical API: ISO and epoch timestamps, order
 *            numbers, UUIDs, SKUs, prices, status enums, line-item titles
 *            and a support note in English with Chinese phrases; PI-dense:
 *            9 records in 10 carry a customer (Chinese name, mobile,
 *            e-mail, resident ID) and a shipping address; PI-free: a
 *            merchant block instead. MB/s = 10^6 bytes / median time of
 *            bg_inspect() alone (the engine `bordergate scan` and the
 *            daemon run), and of inspect + apply + render.
 *
 * Measured, each as the median of RUNS (default 30) timed runs after 3
 * warm-up runs, CLOCK_MONOTONIC, the same bytes for both sides, the sides
 * taking turns within each run:
 *   jansson     json_loadb(flags 0) + json_dumps(JSON_COMPACT) + free;
 *   bordergate  bg_inspect + bg_inspection_apply(the built-in default
 *               operator of `bordergate scan --apply`, for every finding) +
 *               bg_inspection_render + free.
 * Small documents are timed in batches (one run = 2,000 iterations) so the
 * clock's resolution does not matter.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "inspect/inspect.h"

#define WARMUP 3

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---------------------------------------------------------------------- */
/* Documents                                                               */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* A valid GB 11643 number: region, real date, sequence, check character. */
static void resident_id(char out[19])
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[] = "10X98765432";
    static const char *const regions[] = {"110105", "310104", "440305", "330106", "510107"};
    snprintf(out, 19, "%s%04u%02u%02u%03u", regions[rnd(5)], 1950 + rnd(60), 1 + rnd(12),
             1 + rnd(28), rnd(1000));
    int s = 0;
    for (int i = 0; i < 17; i++)
        s += (out[i] - '0') * w[i];
    out[17] = check[s % 11];
    out[18] = '\0';
}

/* 15 digits with a Luhn check digit (an IMEI). */
static void imei(char out[16])
{
    snprintf(out, 16, "35%06u%06u", rnd(1000000), rnd(1000000));
    int s = 0;
    for (int i = 0; i < 14; i++) {
        int d = out[13 - i] - '0';
        if (i % 2 == 0) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        s += d;
    }
    out[14] = (char)('0' + (10 - s % 10) % 10);
    out[15] = '\0';
}

static void uuid(char out[37], int upper)
{
    const char *hx = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (int i = 0; i < 36; i++)
        out[i] = i == 8 || i == 13 || i == 18 || i == 23 ? '-' : i == 14 ? '4' : hx[rnd(16)];
    out[36] = '\0';
}

static const char *const SURNAMES[] = {"张", "王", "李", "赵", "陈", "刘", "杨", "黄", "周", "吴"};
static const char *const GIVEN[] = {"伟", "芳", "娜", "秀英", "敏", "静", "磊", "洋", "艳", "勇"};

typedef struct {
    char *p;
    size_t n, cap;
} buf_t;

static void out(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = b->cap * 2 + (size_t)k + 1;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
}

static void record(buf_t *b, int i, int pi)
{
    char ev[37], dev[37], id[19], im[16];
    uuid(ev, 0);
    uuid(dev, 1);
    out(b, "%s{\"event_id\":\"%s\",\"ts\":%llu,\"order_id\":\"20250314%010u\",", i ? "," : "", ev,
        1741937003000ull + (unsigned long long)i * 3711u, rnd(2000000000));
    if (pi) {
        resident_id(id);
        imei(im);
        out(b,
            "\"user\":{\"user_id\":%u,\"name\":\"%s%s\",\"mobile\":\"1%u%09u\",\"email\":\"user%u@"
            "example.cn\","
            "\"id_no\":\"%s\",\"device_id\":\"%s\",\"imei\":\"%s\"},",
            100000 + rnd(900000), SURNAMES[rnd(10)], GIVEN[rnd(10)], 3 + rnd(7), rnd(1000000000),
            rnd(100000), id, dev, im);
        out(b,
            "\"ext\":\"{\\\"ip\\\":\\\"58.%u.%u.%u\\\",\\\"lat\\\":%u.%06u,\\\"lng\\\":%u.%06u,"
            "\\\"app\\\":\\\"5.12.3\\\"}\",",
            rnd(256), rnd(256), 1 + rnd(254), 22 + rnd(20), rnd(1000000), 100 + rnd(20),
            rnd(1000000));
    } else {
        out(b,
            "\"shop\":{\"shop_id\":%u,\"code\":\"SH-0571-%04u\",\"warehouse\":\"WH-HZ-%02u\","
            "\"bin\":\"A-%02u-%02u-%u\","
            "\"carrier\":\"SF\",\"tracking_no\":\"SF14%011u\",\"status\":\"IN_TRANSIT\"},",
            100000 + rnd(900000), rnd(10000), rnd(100), rnd(100), rnd(100), rnd(10),
            rnd(2000000000));
        out(b,
            "\"ext\":\"{\\\"app\\\":\\\"5.12.3\\\",\\\"net\\\":\\\"wifi\\\",\\\"dur_ms\\\":%u,"
            "\\\"build\\\":51203,\\\"ab\\\":\\\"grp-%u\\\"}\",",
            rnd(5000), rnd(8));
    }
    out(b,
        "\"items\":[{\"sku\":\"SKU-%010u\",\"qty\":%u,\"price\":%u.%02u},{\"sku\":\"SKU-%010u\","
        "\"qty\":%u,"
        "\"price\":%u.%02u}],\"amount\":%u.%02u,\"trace_id\":\"%08x%08x\"}",
        rnd(2000000000), 1 + rnd(5), rnd(2000), rnd(100), rnd(2000000000), 1 + rnd(5), rnd(2000),
        rnd(100), rnd(5000), rnd(100), rnd(0xffffffffu), rnd(0xffffffffu));
}

static char *batch(int records, int pi, size_t *len)
{
    buf_t b = {malloc(1 << 20), 0, 1 << 20};
    out(&b,
        "{\"batch\":\"B20250314%06u\",\"sent_at\":\"2025-03-14T15:23:41.318+08:00\",\"events\":[",
        rnd(1000000));
    for (int i = 0; i < records; i++)
        record(&b, i, pi);
    out(&b, "]}");
    *len = b.n;
    return b.p;
}

/* Free text of a product catalogue or a support ticket: plain words, no PI. */
static const char *const WORDS[] = {
    "the",      "order",    "was",       "shipped",  "from",   "our",         "warehouse",
    "and",      "will",     "arrive",    "within",   "two",    "business",    "days",
    "please",   "check",    "tracking",  "page",     "for",    "updates",     "package",
    "contains", "fragile",  "items",     "handle",   "with",   "care",        "stainless",
    "steel",    "bottle",   "insulated", "keeps",    "drinks", "cold",        "hours",
    "customer", "asked",    "about",     "delivery", "window", "replacement", "under",
    "warranty", "colour",   "black",     "size",     "large",  "discount",    "applied",
    "at",       "checkout", "return",    "policy",   "thirty", "refund",      "issued"};
static const char *const ZH[] = {"商品",           "已发货", "请注意", "查收", "保温杯", "不锈钢",
                                 "七天无理由退货", "客服",   "已处理", "物流", "配送中"};

/* N words of plain text, a Chinese phrase now and then. */
static void text(buf_t *b, int n)
{
    for (int i = 0; i < n; i++)
        out(b, "%s%s", i ? " " : "", rnd(6) == 0 ? ZH[rnd(11)] : WORDS[rnd(56)]);
}

/* One record of a typical API batch (an order with its line items, a
 * support note, timestamps as ISO strings and epoch milliseconds, prices,
 * status enums, ids). PI-dense: a customer with name, mobile, e-mail,
 * resident ID and a shipping address in 9 records of 10 (the rest are guest
 * orders); PI-free: a merchant/catalogue block instead. */
static void api_record(buf_t *b, int i, int pi)
{
    char ev[37], id[19];
    uuid(ev, 0);
    out(b,
        "%s{\"id\":\"%s\",\"type\":\"order.updated\",\"created_at\":\"2025-03-%02uT%02u:%02u:%02u."
        "%03uZ\",\"ts\":%llu,\"order_no\":\"SO%010u\",\"status\":\"%s\",\"currency\":\"CNY\",",
        i ? "," : "", ev, 1 + rnd(28), rnd(24), rnd(60), rnd(60), rnd(1000),
        1741937003000ull + (unsigned long long)i * 1711u, rnd(2000000000),
        rnd(2) ? "PAID" : "SHIPPED");
    if (pi && rnd(10) != 0) {
        resident_id(id);
        out(b,
            "\"customer\":{\"customer_id\":%u,\"name\":\"%s%s\",\"mobile\":\"1%u%09u\","
            "\"email\":\"c%u.%s@example.com\",\"id_card\":\"%s\",\"vip\":%s},"
            "\"shipping_address\":{\"province\":\"浙江省\",\"city\":\"杭州市\","
            "\"detail\":\"西湖区文三路%u号%u室\",\"postcode\":\"310012\"},",
            100000 + rnd(900000), SURNAMES[rnd(10)], GIVEN[rnd(10)], 3 + rnd(7), rnd(1000000000),
            rnd(100000), WORDS[rnd(56)], id, rnd(2) ? "true" : "false", 1 + rnd(500),
            100 + rnd(2000));
    } else {
        out(b,
            "\"merchant\":{\"merchant_id\":%u,\"store\":\"Store-%04u\",\"category\":\"home_"
            "kitchen\",\"rating\":%u.%u,\"verified\":%s},",
            100000 + rnd(900000), rnd(10000), 3 + rnd(2), rnd(10), rnd(2) ? "true" : "false");
    }
    out(b, "\"lines\":[");
    int nl = 1 + (int)rnd(3);
    for (int l = 0; l < nl; l++) {
        out(b, "%s{\"sku\":\"SKU-%08u\",\"title\":\"", l ? "," : "", rnd(100000000));
        text(b, 4 + (int)rnd(6));
        out(b, "\",\"qty\":%u,\"unit_price\":%u.%02u,\"tax_rate\":0.13}", 1 + rnd(4), rnd(3000),
            rnd(100));
    }
    out(b, "],\"note\":\"");
    text(b, 10 + (int)rnd(20));
    out(b,
        "\",\"total\":%u.%02u,\"updated_at\":\"2025-03-%02uT%02u:%02u:%02uZ\","
        "\"tags\":[\"%s\",\"%s\"],\"request_id\":\"%08x%08x\"}",
        rnd(9000), rnd(100), 1 + rnd(28), rnd(24), rnd(60), rnd(60), WORDS[rnd(56)], WORDS[rnd(56)],
        rnd(0xffffffffu), rnd(0xffffffffu));
}

/* An API batch of at least MIN bytes: {"page":..,"data":[records]}. */
static char *api_batch(size_t min, int pi, size_t *len, int *records)
{
    buf_t b = {malloc(min + (1 << 16)), 0, min + (1 << 16)};
    if (b.p == NULL)
        abort();
    out(&b, "{\"page\":1,\"page_size\":0,\"has_more\":false,\"data\":[");
    int i = 0;
    while (b.n < min - 2)
        api_record(&b, i++, pi);
    out(&b, "]}");
    *len = b.n;
    *records = i;
    return b.p;
}

static const char SMALL[] =
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
    "\"7f3a9c1e2b4d4e0f9a8b7c6d5e4f3a2b\"},"
    "\"ext\":\"{\\\"ip\\\":\\\"58.247.12.34\\\",\\\"lat\\\":31.230416,\\\"lng\\\":121.473701}\","
    "\"coupon\":\"SPRING-2026-10OFF\",\"warehouse\":\"WH-SH-03\",\"remark\":\"leave at the front "
    "desk\","
    "\"invoice\":{\"type\":\"electronic\",\"title\":\"company\",\"tax_no_required\":false},"
    "\"ts\":1741937003000,\"seq\":42}";

/* ---------------------------------------------------------------------- */
/* The two sides                                                           */

/* The built-in operators of `bordergate scan --apply` (cli/cmd_scan.c). */
static void default_op(bg_detect_cat_t c, bg_op_t *op)
{
    memset(op, 0, sizeof *op);
    switch (c) {
    case BG_CAT_CN_MOBILE:
    case BG_CAT_PHONE_NUMBER:
        op->kind = BG_OP_MASK;
        op->keep_start = 3;
        op->keep_end = 4;
        break;
    case BG_CAT_EMAIL:
        op->kind = BG_OP_MASK;
        op->keep_start = 1;
        break;
    case BG_CAT_GPS_LOCATION:
    case BG_CAT_PRECISE_LOCATION:
    case BG_CAT_IP_ADDRESS:
    case BG_CAT_BIRTH_DATE:
    case BG_CAT_AGE:
        op->kind = BG_OP_GENERALIZE;
        op->decimals = 2;
        break;
    case BG_CAT_PERSON_NAME:
        op->kind = BG_OP_MASK;
        op->keep_start = 1;
        break;
    default: op->kind = BG_OP_REDACT;
    }
}

static const bg_inspect_rules_t *RULES;
static const char TARGET[] = "/v1/events?app=shop&page=1";
static const bg_http_header_t HEADERS[] = {
    {"Content-Type", 12, "application/json", 16},
    {"X-Request-Id", 12, "3f2504e0-4f89-41d3-9a0c-0305e82c3301", 36}};

static size_t sink; /* keeps the work observable */

static void run_jansson(const char *doc, size_t len)
{
    json_error_t e;
    json_t *v = json_loadb(doc, len, 0, &e);
    if (v == NULL) {
        fprintf(stderr, "inspect_bench: jansson rejects the document: %s\n", e.text);
        exit(1);
    }
    char *s = json_dumps(v, JSON_COMPACT);
    sink += strlen(s);
    free(s);
    json_decref(v);
}

/* Inspect; with REWRITE apply the default operators and render. Returns the findings. */
static size_t run_bordergate(const char *doc, size_t len, int rewrite)
{
    bg_inspect_input_t in = {"POST", 4, TARGET, sizeof TARGET - 1, HEADERS, 2, doc, len};
    bg_inspection_t *x = bg_inspect(RULES, &in);
    if (x == NULL || bg_inspection_undecodable(x) != NULL) {
        fprintf(stderr, "inspect_bench: undecodable: %s\n",
                x ? bg_inspection_undecodable(x) : "oom");
        exit(1);
    }
    size_t n = bg_inspection_count(x);
    if (rewrite && n > 0) {
        char err[200];
        for (size_t i = 0; i < n; i++) {
            bg_op_t op;
            default_op(bg_inspection_finding(x, i)->category, &op);
            if (bg_inspection_apply(x, i, &op, NULL, err, sizeof err) != 0) {
                fprintf(stderr, "inspect_bench: apply: %s\n", err);
                exit(1);
            }
        }
        bg_rewrite_t rw;
        if (bg_inspection_render(x, &rw) != 0) {
            fprintf(stderr, "inspect_bench: render failed\n");
            exit(1);
        }
        sink += rw.body_len;
        bg_rewrite_free(&rw);
    }
    bg_inspection_free(x);
    return n;
}

typedef enum { SIDE_JANSSON, SIDE_INSPECT, SIDE_REWRITE, NSIDES } side_t;

/* Microseconds per document for one run of ITERS documents. */
static double time_run(side_t side, const char *doc, size_t len, int iters)
{
    double t0 = now_us();
    for (int k = 0; k < iters; k++) {
        if (side == SIDE_JANSSON)
            run_jansson(doc, len);
        else
            run_bordergate(doc, len, side == SIDE_REWRITE);
    }
    return (now_us() - t0) / iters;
}

/* Median microseconds per document of sides FIRST..NSIDES-1 over RUNS runs
 * (MED is indexed by side). The sides take turns within every run, so a
 * machine that gets busier or quieter during the measurement weighs on all
 * of them alike. */
static void time_sides(const char *doc, size_t len, int runs, int iters, side_t first, int nsides,
                       double *med)
{
    double *t = malloc((size_t)runs * NSIDES * sizeof *t);
    if (t == NULL)
        abort();
    for (int r = -WARMUP; r < runs; r++) {
        for (int sd = first; sd < nsides; sd++) {
            double dt = time_run((side_t)sd, doc, len, iters);
            if (r >= 0)
                t[sd * runs + r] = dt;
        }
    }
    for (int sd = first; sd < nsides; sd++)
        med[sd] = median(t + sd * runs, runs);
    free(t);
}

static void fmt_time(double us, char *out, size_t cap)
{
    if (us >= 1000)
        snprintf(out, cap, "%.2f ms", us / 1000);
    else
        snprintf(out, cap, "%.2f us", us);
}

static void report(const char *name, const char *doc, size_t len, int runs, int iters, int rewrite,
                   double bar)
{
    size_t findings = run_bordergate(doc, len, 0);
    double med[NSIDES];
    time_sides(doc, len, runs, iters, SIDE_JANSSON, rewrite ? 3 : 2, med);
    double tj = med[SIDE_JANSSON], ti = med[SIDE_INSPECT], tr = rewrite ? med[SIDE_REWRITE] : ti;
    char a[32], b[32], c[32];
    fmt_time(tj, a, sizeof a);
    fmt_time(ti, b, sizeof b);
    fmt_time(tr, c, sizeof c);
    /* MB/s of one core: inspection alone (bytes / median inspect time). */
    printf("%-22s %9zu %8zu %12s %12s %14s %7.2fx %8.0f", name, len, findings, a, b,
           rewrite ? c : "-", tr / tj, (double)len / ti);
    if (bar > 0)
        printf("  (bar %.1fx: %s)", bar, tr / tj <= bar ? "met" : "MISSED");
    printf("\n");
}

/* Issue 15's detection speed: one core's MB/s (10^6 bytes per second) of
 * bg_inspect alone, and of inspect + apply + render when the document holds
 * PI, from the median time of RUNS runs; the goal is printed beside it. */
static void report_speed(const char *name, const char *doc, size_t len, int records, int runs,
                         double goal)
{
    size_t findings = run_bordergate(doc, len, 0);
    double med[NSIDES];
    time_sides(doc, len, runs, 1, SIDE_INSPECT, findings ? 3 : 2, med);
    double ti = med[SIDE_INSPECT];
    char b[32], c[32] = "-";
    fmt_time(ti, b, sizeof b);
    if (findings)
        snprintf(c, sizeof c, "%.0f", (double)len / med[SIDE_REWRITE]);
    printf("%-22s %9zu %8d %8zu %12s %8.0f %14s   (goal >= %.0f MB/s: %s)\n", name, len, records,
           findings, b, (double)len / ti, c, goal, (double)len / ti >= goal ? "met" : "MISSED");
}

/* The documents, generated once (deterministic: the same bytes every run). */
typedef struct {
    char *big, *clean, *dense8, *clean8;
    size_t big_len, clean_len, dense8_len, clean8_len;
    int dense8_records, clean8_records;
} docs_t;

static void make_docs(docs_t *d)
{
    d->big = batch(2000, 1, &d->big_len);
    d->clean = batch(2000, 0, &d->clean_len);
    d->dense8 = api_batch((size_t)8 << 20, 1, &d->dense8_len, &d->dense8_records);
    d->clean8 = api_batch((size_t)8 << 20, 0, &d->clean8_len, &d->clean8_records);
}

/* --only DOC N: bg_inspect DOC N times and nothing else, for a profiler
 * (valgrind --tool=callgrind, perf record) to count the engine's work. */
static int only(const docs_t *d, const char *which, int n)
{
    const char *doc = NULL;
    size_t len = 0;
    if (strcmp(which, "dense8") == 0)
        doc = d->dense8, len = d->dense8_len;
    else if (strcmp(which, "clean8") == 0)
        doc = d->clean8, len = d->clean8_len;
    else if (strcmp(which, "dense1") == 0)
        doc = d->big, len = d->big_len;
    else if (strcmp(which, "clean1") == 0)
        doc = d->clean, len = d->clean_len;
    else if (strcmp(which, "small") == 0)
        doc = SMALL, len = sizeof SMALL - 1;
    if (doc == NULL || n < 1) {
        fprintf(stderr, "inspect_bench: --only dense8|clean8|dense1|clean1|small N\n");
        return 2;
    }
    if (getenv("INSPECT_BENCH_DUMP") != NULL) { /* the document itself, to compare scans */
        fwrite(doc, 1, len, stdout);
        return 0;
    }
    size_t findings = 0;
    for (int i = 0; i < n; i++)
        findings += run_bordergate(doc, len, 0);
    printf("%s: %zu bytes, %zu findings per document, %d documents\n", which, len,
           findings / (size_t)n, n);
    return 0;
}

static long arg_long(const char *s, long dflt)
{
    char *end;
    long v = strtol(s, &end, 10);
    return end == s || *end != '\0' ? dflt : v;
}

int main(int argc, char **argv)
{
    int runs = 30;
    const char *only_doc = NULL;
    if (argc > 2 && strcmp(argv[1], "--only") == 0) {
        only_doc = argv[2];
        runs = argc > 3 ? (int)arg_long(argv[3], -1) : 1;
    } else if (argc > 1) {
        runs = (int)arg_long(argv[1], -1);
        if (runs < 20) {
            fprintf(stderr, "inspect_bench: at least 20 runs for a meaningful median\n");
            return 2;
        }
    }
    /* What a route inspects by default: X- headers, cookies, the query
     * (the rules `bordergate scan` uses, cli/cmd_scan.c). */
    static const char *const hdrs[] = {"x-*"};
    static const char *const cookies[] = {"*"};
    bg_inspect_rules_spec_t spec;
    char err[200];
    memset(&spec, 0, sizeof spec);
    spec.headers = hdrs;
    spec.nheaders = 1;
    spec.cookies = cookies;
    spec.ncookies = 1;
    bg_inspect_rules_t *rules = bg_inspect_rules_new(&spec, err, sizeof err);
    if (rules == NULL) {
        fprintf(stderr, "inspect_bench: %s\n", err);
        return 1;
    }
    RULES = rules;

    docs_t d;
    make_docs(&d);
    int rc = 0;
    if (only_doc != NULL) {
        rc = only(&d, only_doc, runs);
    } else {
        printf("inspect_bench: median of %d runs after %d warm-up runs; jansson = json_loadb + "
               "json_dumps(COMPACT)\n",
               runs, WARMUP);
        printf("%-22s %9s %8s %12s %12s %14s %8s %8s\n", "document", "bytes", "findings", "jansson",
               "inspect", "inspect+rewrite", "ratio", "MB/s");
        report("1 MB, 2,000 records", d.big, d.big_len, runs, 1, 1, 1.0);
        report("800 B order", SMALL, sizeof SMALL - 1, runs, 2000, 1, 0);
        report("1 MB without PI", d.clean, d.clean_len, runs, 1, 0, 0);
        printf("\ndetection speed (issue 15): bg_inspect, the engine of `bordergate scan` and "
               "the daemon, one core, MB/s = 10^6 bytes / median second\n");
        printf("%-22s %9s %8s %8s %12s %8s %14s\n", "document", "bytes", "records", "findings",
               "inspect", "MB/s", "+rewrite MB/s");
        report_speed("8 MB API JSON, no PI", d.clean8, d.clean8_len, d.clean8_records, runs, 200);
        report_speed("8 MB API JSON, PI-dense", d.dense8, d.dense8_len, d.dense8_records, runs,
                     100);
    }
    free(d.big);
    free(d.clean);
    free(d.dense8);
    free(d.clean8);
    bg_inspect_rules_free(rules);
    return rc ? rc : sink == 0 && only_doc == NULL;
}
