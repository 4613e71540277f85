/*
 * Consent look-up cost: the file backend against the Redis backend, cached
 * (the subject's consents already in the instance's cache) and uncached
 * (every look-up a cache miss: one round trip to Redis).
 *
 *   build/consent_bench [REDIS_URL] [N]
 *
 * REDIS_URL (default redis://127.0.0.1:6379/15) must name a scratch
 * database: the bench grants N consents into it (bench/consent_bench.sh
 * starts a throw-away redis-server). Prints the median and p99 microseconds
 * per look-up (bg_consent_find, the pseudonym included) for each backend.
 * Uncached Redis look-ups use a fresh subject each time, so each is a miss.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy/consent.h"
#include "store/redis.h"

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

static void report(const char *name, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    printf("%-28s median %7.2f us   p99 %7.2f us   (%d look-ups)\n", name, v[n / 2],
           v[(int)(n * 0.99)], n);
}

/* Grant one consent per subject "bench-<i>" for i < N. 0, or -1. */
static int fill(bg_consent_reg_t *reg, int n)
{
    char err[512], subj[32];
    for (int i = 0; i < n; i++) {
        snprintf(subj, sizeof subj, "bench-%d", i);
        bg_consent_grant_t g = {.subject = subj,
                                .subject_len = strlen(subj),
                                .recipient = "acme",
                                .purpose = "support",
                                .region = "*",
                                .recorded_by = "bench"};
        if (bg_consent_grant(reg, &g, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "grant: %s\n", err);
            return -1;
        }
    }
    return 0;
}

/* Look up subjects FIRST.. (wrapping at WRAP) N times; times into V. */
static int run(bg_consent_reg_t *reg, int first, int wrap, int n, double *v)
{
    char subj[32];
    int found = 0;
    for (int i = 0; i < n; i++) {
        snprintf(subj, sizeof subj, "bench-%d", first + i % wrap);
        /* AT a minute ahead: consents granted during this second count too */
        bg_consent_query_t q = {.subject = subj,
                                .subject_len = strlen(subj),
                                .recipient = "acme",
                                .purpose = "support",
                                .country = "US",
                                .at = (int64_t)time(NULL) * 1000 + 60000};
        bg_consent_match_t m;
        double t0 = now_us();
        found += bg_consent_find(reg, &q, &m) == 1;
        v[i] = now_us() - t0;
    }
    return found;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379/15";
    int n = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 20000;
    uint8_t key[32];
    char err[512] = "";
    int rc = 1;
    bg_consent_reg_t *file = NULL, *redis = NULL;
    bg_redis_cfg_t cfg = {0};
    memset(key, 0x6b, sizeof key);
    if (n < 100)
        return 2;
    double *v = calloc((size_t)n, sizeof *v);
    if (v == NULL)
        return 1;

    /* File backend: N consents in a journal, every look-up in memory (+ one stat). */
    char path[] = "/tmp/consent_bench_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        goto out;
    close(fd);
    unlink(path);
    bg_consent_options_t o = {.create = 1};
    file = bg_consent_open(path, key, sizeof key, &o, NULL, err, sizeof err);
    if (file == NULL || fill(file, n) != 0) {
        fprintf(stderr, "file backend: %s\n", err);
        goto out;
    }
    int found = run(file, 0, n, n, v);
    report("file", v, n);
    if (found != n)
        fprintf(stderr, "file: only %d of %d found\n", found, n);

    if (bg_redis_parse_url(url, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", url, err);
        goto out;
    }
    redis = bg_consent_open_redis(&cfg, key, sizeof key, 1, err, sizeof err);
    if (redis == NULL || fill(redis, n) != 0) {
        fprintf(stderr, "redis backend: %s\n", err);
        goto out;
    }
    for (int i = 0; i < 200 && bg_consent_health(redis, err, sizeof err) != 0; i++)
        usleep(10000); /* wait for the subscription */
    /* Uncached: every subject once (each a miss, one round trip). */
    found = run(redis, 0, n, n, v);
    report("redis, uncached (miss)", v, n);
    if (found != n)
        fprintf(stderr, "redis: only %d of %d found\n", found, n);
    /* Cached: the same subjects again, now in the cache. */
    run(redis, 0, n, n, v);
    report("redis, cached (hit)", v, n);
    rc = 0;
out:
    bg_consent_close(redis);
    bg_consent_close(file);
    unlink(path);
    bg_redis_cfg_clear(&cfg);
    free(v);
    return rc;
}
