/*
 * libFuzzer target for the store.redis URL (bg_redis_parse_url in
 * store/redis.c, what config/config.c, `bordergate consent --redis` and
 * `audit volumes --redis` parse).
 *
 * Checks, beyond "never crash, never read past the string":
 *   - the parser accepts exactly the grammar docs/configuration.md gives,
 *     redis://HOST[:PORT][/[DB]] with HOST 1-255 printable ASCII bytes
 *     other than ':', '/', '@'; PORT decimal digits 1-65535; DB decimal
 *     digits 0-1000000 (a reference parser written here decides);
 *   - an accepted URL round-trips: its host, port and db are those the
 *     reference read (6379 and 0 when absent), there is no password, and
 *     the display form "redis://host:port/db" parses back to the same
 *     configuration and the same display (a fixed point);
 *   - a refused URL leaves a message in ERR, NUL-terminated inside it, of
 *     printable ASCII without '@' (it never echoes a "user:password@"
 *     someone pasted, nor control bytes into a log line).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis.h"
#include "fuzz/fuzz.h"

/* Decimal digits S[0, N) as a number (saturating above 10^7); -1 when
 * not all digits or none. */
static long digits(const char *s, size_t n)
{
    long v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v > 10000000 ? v : v * 10 + (s[i] - '0');
    }
    return v;
}

/* The reference: 1 and HOST/PORT/DB when U is a URL the grammar accepts. */
static int ref_parse(const char *u, char host[256], int *port, int *db)
{
    if (strncmp(u, "redis://", 8) != 0)
        return 0;
    const char *h = u + 8, *p = h;
    while (*p > 0x20 && *p < 0x7f && *p != ':' && *p != '/' && *p != '@')
        p++;
    size_t hl = (size_t)(p - h);
    if (hl == 0 || hl > 255)
        return 0;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = 6379;
    *db = 0;
    if (*p == ':') {
        const char *e = p + 1 + strcspn(p + 1, "/");
        long v = digits(p + 1, (size_t)(e - p - 1));
        if (v < 1 || v > 65535)
            return 0;
        *port = (int)v;
        p = e;
    }
    if (*p == '/' && p[1] != '\0') {
        long v = digits(p + 1, strlen(p + 1));
        if (v < 0 || v > 1000000)
            return 0;
        *db = (int)v;
        return 1;
    }
    return *p == '\0' || strcmp(p, "/") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The URL is a C string (a JSON string or an argument): up to the
     * first NUL, in a buffer of exactly its size. */
    size_t n = strnlen((const char *)data, size);
    char *url = malloc(n + 1);
    if (url == NULL)
        return 0;
    memcpy(url, data, n);
    url[n] = '\0';

    bg_redis_cfg_t c;
    char err[128];
    memset(err, 0, sizeof err);
    int rc = bg_redis_parse_url(url, &c, err, sizeof err);
    char rhost[256];
    int rport = 0, rdb = 0;
    int ok = ref_parse(url, rhost, &rport, &rdb);
    CHECK(rc == 0 || rc == -1);
    CHECK((rc == 0) == (ok != 0));
    if (rc != 0) {
        CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
        for (size_t i = 0; err[i] != '\0'; i++)
            CHECK(err[i] >= 0x20 && err[i] < 0x7f && err[i] != '@');
        free(url);
        return 0;
    }
    CHECK(strcmp(c.host, rhost) == 0 && c.port == rport && c.db == rdb);
    CHECK(c.password == NULL);
    char want[300];
    snprintf(want, sizeof want, "redis://%s:%d/%d", c.host, c.port, c.db);
    CHECK(strcmp(c.display, want) == 0);

    bg_redis_cfg_t d;
    CHECK(bg_redis_parse_url(c.display, &d, err, sizeof err) == 0);
    CHECK(strcmp(d.host, c.host) == 0 && d.port == c.port && d.db == c.db);
    CHECK(strcmp(d.display, c.display) == 0);

    /* A copy is the same configuration and owns its own password. */
    bg_redis_cfg_t e;
    c.password = strdup("pw");
    if (c.password != NULL && bg_redis_cfg_copy(&e, &c) == 0) {
        CHECK(e.password != c.password && strcmp(e.password, "pw") == 0);
        CHECK(strcmp(e.host, c.host) == 0 && e.port == c.port && e.db == c.db);
        bg_redis_cfg_clear(&e);
        CHECK(e.password == NULL);
    }
    bg_redis_cfg_clear(&c);
    free(url);
    return 0;
}
