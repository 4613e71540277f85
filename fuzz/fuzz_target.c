/*
 * libFuzzer target for the ROUTE stage's target checks in proxy/evaluate.c:
 * bg_target_parse, bg_target_unsafe_path and bg_target_route.
 *
 * The input is split at its first newline into a Host value and a request
 * target. Beyond the sanitizers it checks, with its own small decoder
 * rather than the one under test:
 *   - a target the parser accepts has no dot segment, NUL or encoded '/',
 *     '\' or NUL in its path decoded zero, one or two times (segments split
 *     at '/' and '\', a segment's name ending at ';');
 *   - the host is lowercase, without a port, and any port was 1-65535;
 *   - the path points into the target (or is "/" for an authority alone);
 *   - bg_target_unsafe_path agrees with the parser on the path;
 *   - a routed path decoded once or twice does not match the prefix of a
 *     more specific route than the one chosen (an upstream that decodes
 *     the path before routing sees the route bordergate judged).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/evaluate.h"
#include "fuzz/fuzz.h"

/* Route prefixes of the fuzz configuration, all on host a.example. */
static const char *const PREFIXES[] = {"/admin", "/api/v1/", "/api", "/a", "/~u", "/x-y_z.1"};
#define NPREFIXES (sizeof PREFIXES / sizeof PREFIXES[0])

static bg_config_t *g_cfg;

static void load_config(void)
{
    char dir[] = "/tmp/bg-fuzz-target-XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/c.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "{\"audit\": {\"directory\": \"%s/audit\"}, \"routes\": [", dir);
    for (size_t i = 0; i < NPREFIXES; i++)
        fprintf(f,
                "{\"id\": \"r%zu\", \"match\": {\"host\": \"a.example\", \"path_prefix\": \"%s\"}, "
                "\"upstream\": \"http://127.0.0.1:9\"},",
                i, PREFIXES[i]);
    fprintf(f, "{\"id\": \"all\", \"match\": {\"host\": \"a.example\"}, "
               "\"upstream\": \"http://127.0.0.1:9\"}]}\n");
    CHECK(fclose(f) == 0);
    int nerr = -1;
    g_cfg = bg_config_load(path, stderr, &nerr);
    CHECK(g_cfg != NULL && nerr == 0);
    unlink(path);
    rmdir(dir);
}

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One decoding pass, reference version: 2 bytes per escape checked. */
static size_t ref_decode(const unsigned char *p, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n && hex(p[i + 1]) >= 0 && hex(p[i + 2]) >= 0) {
            out[o++] = (unsigned char)(hex(p[i + 1]) << 4 | hex(p[i + 2]));
            i += 2;
        } else {
            out[o++] = p[i];
        }
    }
    return o;
}

/* Dot segments, NUL and encoded separators in one form of a path. */
static int ref_bad(const unsigned char *p, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] == '\0')
            return 1;
        if (i + 2 < n && p[i] == '%') {
            int v =
                hex(p[i + 1]) >= 0 && hex(p[i + 2]) >= 0 ? hex(p[i + 1]) << 4 | hex(p[i + 2]) : -1;
            if (v == '/' || v == '\\' || v == 0)
                return 1;
        }
        if (i == n || p[i] == '/' || p[i] == '\\') {
            size_t end = start;
            while (end < i && p[end] != ';')
                end++;
            size_t k = start;
            while (k < end && p[k] == '.')
                k++;
            if (end > start && k == end)
                return 1;
            start = i + 1;
        }
    }
    return 0;
}

/* Does decoded path part D[0..N) match PREFIX on a '/' boundary or end? */
static int ref_prefix(const unsigned char *d, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (pl > n || memcmp(d, prefix, pl) != 0)
        return 0;
    return prefix[pl - 1] == '/' || pl == n || d[pl] == '/';
}

static void check_accepted(const char *t, size_t tl, const bg_target_t *tg)
{
    CHECK(tg->host_len == strlen(tg->host) && tg->host_len < sizeof tg->host);
    for (size_t i = 0; i < tg->host_len; i++)
        CHECK(tg->host[i] < 'A' || tg->host[i] > 'Z');
    CHECK((tg->path >= t && tg->path + tg->path_len <= t + tl) || tg->path_len == 1);
    CHECK(tg->path_len > 0 && tg->path[0] == '/');
    CHECK(memchr(tg->path, '#', tg->path_len) == NULL);
    CHECK(bg_target_unsafe_path(tg->path, tg->path_len) == 0);

    const char *q = memchr(tg->path, '?', tg->path_len);
    size_t part = q != NULL ? (size_t)(q - tg->path) : tg->path_len;
    unsigned char *d1 = malloc(part + 1), *d2 = malloc(part + 1);
    CHECK(d1 != NULL && d2 != NULL);
    size_t n1 = ref_decode((const unsigned char *)tg->path, part, d1);
    size_t n2 = ref_decode(d1, n1, d2);
    CHECK(!ref_bad((const unsigned char *)tg->path, part));
    CHECK(!ref_bad(d1, n1));
    CHECK(!ref_bad(d2, n2));
    free(d1);
    free(d2);
}

/* An accepted Host's port, if any, is 1-5 digits worth 1-65535. */
static void check_port(const char *h, size_t n)
{
    const char *c = memchr(h, ':', n);
    if (c == NULL)
        return;
    size_t k = (size_t)(c - h) + 1, digits = n - k;
    CHECK(digits >= 1 && digits <= 5);
    unsigned v = 0;
    for (; k < n; k++) {
        CHECK(h[k] >= '0' && h[k] <= '9');
        v = v * 10 + (unsigned)(h[k] - '0');
    }
    CHECK(v >= 1 && v <= 65535);
}

/* The route chosen, if any, is the most specific one the path decoded
 * once or twice falls under. */
static void check_route(const bg_target_t *tg)
{
    if (strcmp(tg->host, "a.example") != 0)
        return;
    size_t chosen = strlen(tg->route->path_prefix);
    if (strcmp(tg->route->id, "all") == 0)
        chosen = 0;
    const char *q = memchr(tg->path, '?', tg->path_len);
    size_t part = q != NULL ? (size_t)(q - tg->path) : tg->path_len;
    unsigned char *d1 = malloc(part + 1), *d2 = malloc(part + 1);
    CHECK(d1 != NULL && d2 != NULL);
    size_t n1 = ref_decode((const unsigned char *)tg->path, part, d1);
    size_t n2 = ref_decode(d1, n1, d2);
    for (size_t i = 0; i < NPREFIXES; i++) {
        if (strlen(PREFIXES[i]) <= chosen)
            continue;
        CHECK(!ref_prefix(d1, n1, PREFIXES[i]));
        CHECK(!ref_prefix(d2, n2, PREFIXES[i]));
    }
    free(d1);
    free(d2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_cfg == NULL)
        load_config();
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    const char *host = in, *t = in;
    size_t hl = 0, tl = size;
    if (nl != NULL) {
        hl = (size_t)(nl - in);
        t = nl + 1;
        tl = size - hl - 1;
    }
    /* Copies of exactly the right size, so reads past either show. */
    char *hc = malloc(hl + 1), *tc = malloc(tl + 1);
    CHECK(hc != NULL && tc != NULL);
    memcpy(hc, host, hl);
    memcpy(tc, t, tl);

    bg_target_t tg;
    const char *why = NULL;
    int st = bg_target_parse(tc, tl, hl > 0 ? hc : NULL, hl, &tg, &why);
    CHECK(st == 0 || (st == 400 && why != NULL));
    if (st == 0) {
        check_accepted(tc, tl, &tg);
        CHECK(tg.route == NULL);
        if (tl > 0 && tc[0] == '/' && hl > 0 && hc[0] != '[')
            check_port(hc, hl);
    }

    bg_http_header_t h = {"Host", 4, hc, hl};
    bg_target_t tr;
    why = NULL;
    int rs = bg_target_route(g_cfg, tc, tl, hl > 0 ? hc : NULL, hl, &h, 1, &tr, &why);
    CHECK(rs == 0 || ((rs == 400 || rs == 421) && why != NULL));
    CHECK(st == 0 || rs == st); /* a refused target stays refused */
    if (rs == 0) {
        CHECK(st == 0 && tr.route != NULL);
        CHECK(tr.path == tg.path && tr.path_len == tg.path_len && strcmp(tr.host, tg.host) == 0);
        check_route(&tr);
    }
    free(hc);
    free(tc);
    return 0;
}
