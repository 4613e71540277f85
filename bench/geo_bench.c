/*
 * Micro-benchmark of geo look-ups (built by CMake as build/geo_bench):
 *
 *   build/geo_bench build/bordergate-country.mmdb [N]
 *
 * Times N (default 1,000,000) bg_geo_lookup calls on pseudo-random public
 * IPv4 and IPv6 addresses, then N bg_geo_classify calls with a policy-sized
 * override set (100 host entries, 100 CIDRs) that the addresses miss, which
 * is the common case: every step is paid before the database answers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "geo/geo.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#define NADDR 4096

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.mmdb [N]\n", argv[0]);
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    char err[512];
    bg_geo_db_t *db = bg_geo_db_open(argv[1], err, sizeof err);
    if (db == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    /* A table of addresses small enough to stay in cache, so the numbers
     * measure the look-up rather than the generator. */
    static struct sockaddr_storage addrs[NADDR];
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < NADDR; i++) {
        memset(&addrs[i], 0, sizeof addrs[i]);
        if (i % 4 != 3) {
            struct sockaddr_in *v4 = (struct sockaddr_in *)&addrs[i];
            v4->sin_family = AF_INET;
            v4->sin_addr.s_addr = htonl((uint32_t)(xorshift(&seed) % 0xdf000000u) + 0x01000000u);
        } else {
            struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addrs[i];
            uint64_t r = xorshift(&seed);
            v6->sin6_family = AF_INET6;
            v6->sin6_addr.s6_addr[0] = 0x20 | (uint8_t)(r & 0x0f); /* 2000::/4 */
            for (int k = 1; k < 8; k++)
                v6->sin6_addr.s6_addr[k] = (uint8_t)(r >> (8 * k));
        }
    }

    long found = 0, domestic = 0;
    bg_geo_answer_t a;
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        bg_geo_lookup(db, (const struct sockaddr *)&addrs[i % NADDR], &a);
        found += a.country[0] != '\0';
        domestic += a.region == BG_GEO_DOMESTIC;
    }
    uint64_t t1 = now_ns();
    printf("bg_geo_lookup:   %ld look-ups in %.3f s = %.0f ns each (%ld with a country, %ld CN)\n",
           n, (double)(t1 - t0) / 1e9, (double)(t1 - t0) / (double)n, found, domestic);

    bg_geo_overrides_t *ov = bg_geo_overrides_new();
    for (int i = 0; i < 100; i++) {
        char host[64], cidr[64];
        snprintf(host, sizeof host, "%sapi%d.partner%d.example", i % 2 ? "." : "", i, i);
        snprintf(cidr, sizeof cidr, "100.64.%d.0/24", i);
        if (bg_geo_overrides_add_host(ov, host, "SG", err, sizeof err) != 0 ||
            bg_geo_overrides_add_cidr(ov, cidr, "CN", err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        bg_geo_classify(ov, db, "upstream.service.example.com",
                        (const struct sockaddr *)&addrs[i % NADDR], &a);
    t1 = now_ns();
    printf("bg_geo_classify: %ld calls in %.3f s = %.0f ns each (200 overrides, none matching)\n",
           n, (double)(t1 - t0) / 1e9, (double)(t1 - t0) / (double)n);

    bg_geo_overrides_free(ov);
    bg_geo_db_unref(db);
    return 0;
}
