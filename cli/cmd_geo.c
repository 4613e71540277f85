/*
 * `bordergate geo lookup`: where would bordergate say an address or host is?
 * Uses the same classification as the proxy (overrides from --config, then
 * the database), and shows which address the proxy would connect to.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/util.h"
#include "config/config.h"
#include "geo/geo.h"

#define MAX_ADDRS 16

static void geo_usage(FILE *fp)
{
    fprintf(fp,
            "usage: bordergate geo lookup <ip-or-host>... [--config FILE] [--db FILE] [--json]\n"
            "\n"
            "Prints each address of the host, its country, region (domestic, cross-border\n"
            "or unknown) and where the answer came from (database or override), and marks\n"
            "the address the proxy would connect to. With --config, the configuration's\n"
            "overrides, static resolve map and database are used; --db picks a database.\n");
}

/* Candidate addresses of NAME: config's resolve map, a literal, or the
 * system resolver. Returns the count (0 with ERR filled on failure). */
static int candidates(const bg_config_t *cfg, const char *name, struct sockaddr_storage *out,
                      char *err, size_t errcap)
{
    int n = 0;
    if (cfg != NULL) {
        const bg_resolve_entry_t *e = bg_config_find_resolve(cfg, name);
        if (e != NULL) {
            for (int i = 0; i < e->naddrs && n < MAX_ADDRS; i++)
                out[n++] = e->addrs[i];
            return n;
        }
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errcap, "%s", gai_strerror(rc));
        return 0;
    }
    for (struct addrinfo *ai = res; ai != NULL && n < MAX_ADDRS; ai = ai->ai_next) {
        memset(&out[n], 0, sizeof out[n]);
        memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
        n++;
    }
    freeaddrinfo(res);
    return n;
}

int bg_cli_geo(int argc, char **argv)
{
    const char *config = NULL, *dbpath = NULL;
    int json = 0, rc = 0;
    const char *names[64];
    int nnames = 0;

    if (argc < 2 || strcmp(argv[1], "lookup") != 0) {
        geo_usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            dbpath = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0) {
            geo_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "bordergate geo lookup: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (nnames < 64)
            names[nnames++] = argv[i];
    }
    if (nnames == 0) {
        geo_usage(stderr);
        return 2;
    }

    bg_config_t *cfg = NULL;
    bg_geo_db_t *db = NULL;
    bg_geo_overrides_t *empty = NULL;
    char err[512];
    if (config != NULL) {
        int nerr;
        cfg = bg_config_load(config, stderr, &nerr);
        if (cfg == NULL)
            return 1;
    }
    if (dbpath != NULL) {
        db = bg_geo_db_open(dbpath, err, sizeof err);
        if (db == NULL) {
            fprintf(stderr, "bordergate geo lookup: %s\n", err);
            bg_config_unref(cfg);
            return 1;
        }
    } else if (cfg != NULL) {
        db = bg_geo_db_ref(cfg->geo_db);
    } else {
        const char *d = bg_config_default_geo_db();
        if (d == NULL) {
            fprintf(stderr, "bordergate geo lookup: no country database (use --db FILE)\n");
            return 1;
        }
        db = bg_geo_db_open(d, err, sizeof err);
        if (db == NULL) {
            fprintf(stderr, "bordergate geo lookup: %s\n", err);
            return 1;
        }
    }
    const bg_geo_overrides_t *ov =
        cfg != NULL ? cfg->geo_overrides : (empty = bg_geo_overrides_new());

    json_t *all = json_array();
    for (int k = 0; k < nnames; k++) {
        struct sockaddr_storage addrs[MAX_ADDRS];
        bg_geo_answer_t ans[MAX_ADDRS];
        int n = candidates(cfg, names[k], addrs, err, sizeof err);
        if (n == 0) {
            fprintf(stderr, "bordergate geo lookup: %s: %s\n", names[k], err);
            rc = 1;
            continue;
        }
        for (int i = 0; i < n; i++)
            bg_geo_classify(ov, db, names[k], (struct sockaddr *)&addrs[i], &ans[i]);
        int chosen = bg_geo_choose(ans, (size_t)n);
        json_t *item = json_object();
        json_t *list = json_array();
        json_object_set_new(item, "query", json_string(names[k]));
        if (!json)
            printf("%s\n", names[k]);
        for (int i = 0; i < n; i++) {
            char a[INET6_ADDRSTRLEN];
            bg_util_addr_string((struct sockaddr *)&addrs[i], a, sizeof a);
            const char *cc = ans[i].country[0] ? ans[i].country : "unknown";
            if (json) {
                json_t *e = json_object();
                json_object_set_new(e, "address", json_string(a));
                json_object_set_new(e, "country",
                                    ans[i].country[0] ? json_string(ans[i].country) : json_null());
                json_object_set_new(e, "region", json_string(bg_geo_region_name(ans[i].region)));
                json_object_set_new(e, "cross_border",
                                    json_boolean(bg_geo_is_cross_border(&ans[i])));
                json_object_set_new(e, "source", json_string(ans[i].source));
                json_object_set_new(e, "chosen", json_boolean(i == chosen));
                json_array_append_new(list, e);
            } else {
                printf("  %c %-39s %-7s %-12s %s\n", i == chosen ? '*' : ' ', a, cc,
                       bg_geo_region_name(ans[i].region), ans[i].source);
            }
        }
        json_object_set_new(item, "addresses", list);
        json_array_append_new(all, item);
    }
    if (json) {
        char *s =
            json_dumps(nnames == 1 && json_array_size(all) == 1 ? json_array_get(all, 0) : all,
                       JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
    } else {
        printf("(* = the address bordergate would connect to; database %s)\n", bg_geo_db_label(db));
    }
    json_decref(all);
    bg_geo_overrides_free(empty);
    bg_geo_db_unref(db);
    bg_config_unref(cfg);
    return rc;
}
