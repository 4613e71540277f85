/*
 * `bordergate audit volumes`: distinct people whose personal information
 * went abroad this year, from the counters file, the audit log or the
 * fleet's shared store, with the transfer mechanism the volume calls for.
 * The counting is audit/counters.c's (bg_counters_volumes) and
 * audit/counters_redis.c's; this file parses, reads --config and prints.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/counters.h"
#include "cli/audit_cli.h"
#include "config/config.h"
#include "store/redis.h"
#include "common/util.h"

static void volumes_usage(FILE *fp)
{
    fprintf(fp, "usage: bordergate audit volumes [--counters FILE | --redis URL | DIR|FILE...]\n"
                "                                [--year Y]\n"
                "                                [--prefix P] [--json] [--config POLICY]\n"
                "\n"
                "Distinct people whose personal information went abroad in year Y (default:\n"
                "this year; years start on 1 January, China time), non-sensitive and sensitive,\n"
                "in total and per recipient, and the transfer mechanism the volume calls for\n"
                "(CAC 2024 Provisions on Cross-Border Data Flows, Arts. 5, 7, 8).\n"
                "  DIR|FILE...      recount from the audit log's decision records (auditable)\n"
                "  --counters FILE  read the daemon's counters file (fast)\n"
                "  --redis URL      the fleet figure from the shared store (redis://host:port/db;\n"
                "                   password from $BG_REDIS_PASSWORD): every instance's people\n"
                "  --config POLICY  the policy's audit.thresholds, and its counters file (or\n"
                "                   audit directory) when neither is given\n");
}

/* 1234567 -> "1,234,567" */
static const char *grouped(uint64_t v, char *buf, size_t cap)
{
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%" PRIu64, v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

static const char *level_text(bg_volume_level_t l)
{
    switch (l) {
    case BG_VOLUME_CONTRACT: return "standard contract or certification (Art. 8)";
    case BG_VOLUME_ASSESSMENT: return "security assessment (Art. 7)";
    case BG_VOLUME_NONE: break;
    }
    return "none by volume (Art. 5(4))";
}

static void volumes_print(const bg_counters_snapshot_t *s, const char *source, FILE *out)
{
    char a[32], b[32], d[32], v[32];
    fprintf(out,
            "Yearly volumes %d: people whose personal information went abroad since 1 January %d "
            "(China time)\n",
            s->year, s->year);
    fprintf(out, "source: %s\n\n", source);
    fprintf(out, "%-28s %14s %12s %12s %10s  %s\n", "", "NON-SENSITIVE", "SENSITIVE", "PEOPLE",
            "BY DEVICE", "CALLS FOR");
    fprintf(out, "%-28s %14s %12s %12s %10s  %s\n", "all recipients",
            grouped(s->non_sensitive, a, sizeof a), grouped(s->sensitive, b, sizeof b),
            grouped(s->people, d, sizeof d), grouped(s->people_by_device, v, sizeof v),
            level_text(s->level));
    fprintf(out, "%-28s %14s %12s %12s %10s  %s\n", "exempt (Art. 5(1)-(3))",
            grouped(s->exempt_non_sensitive, a, sizeof a),
            grouped(s->exempt_sensitive, b, sizeof b), grouped(s->exempt_people, d, sizeof d),
            grouped(s->exempt_people_by_device, v, sizeof v), "not counted towards the thresholds");
    if (s->nrecipients > 0) {
        fprintf(out, "\n%-28s %14s %12s %12s %10s  %-46s %-46s %s\n", "RECIPIENT", "NON-SENSITIVE",
                "SENSITIVE", "PEOPLE", "BY DEVICE", "CALLS FOR", "ITS OWN VOLUME ALONE",
                "EXEMPT PEOPLE");
        for (size_t i = 0; i < s->nrecipients; i++) {
            const bg_counters_recipient_t *r = &s->recipients[i];
            char x[32];
            fprintf(out, "%-28s %14s %12s %12s %10s  %-46s %-46s %s\n",
                    r->recipient[0] ? r->recipient : "(none)",
                    grouped(r->non_sensitive, a, sizeof a), grouped(r->sensitive, b, sizeof b),
                    grouped(r->people, d, sizeof d), grouped(r->people_by_device, v, sizeof v),
                    r->people == 0 ? "none: exempt transfers only (Art. 5(1)-(3))"
                                   : level_text(r->level),
                    level_text(r->own_level), grouped(r->exempt_people, x, sizeof x));
        }
    }
    fprintf(out,
            "\nthresholds (people since 1 January): non-sensitive %s -> standard contract or "
            "certification, %s -> security assessment;\n",
            grouped(s->thresholds.contract_non_sensitive, a, sizeof a),
            grouped(s->thresholds.assessment_non_sensitive, b, sizeof b));
    fprintf(out,
            "  sensitive %s -> standard contract or certification, %s -> security assessment.\n",
            grouped(s->thresholds.contract_sensitive, a, sizeof a),
            grouped(s->thresholds.assessment_sensitive, b, sizeof b));
    fprintf(out,
            "The thresholds apply to the data handler's total: every recipient that received PI\n"
            "needs the mechanism the total calls for. A person whose non-sensitive and sensitive\n"
            "PI both went abroad counts in both columns (once in PEOPLE). Critical information\n"
            "infrastructure operators need a security assessment for any PI (Art. 7(1)).\n"
            "Exempt: PI that left on a contract with the individual, cross-border HR management\n"
            "or an emergency basis (Art. 5(1)-(3)) needs no mechanism and is counted apart; a\n"
            "person who also left on another basis is counted above as well.\n"
            "BY DEVICE: of PEOPLE, those identified by a device identifier (the route's\n"
            "subjects.device_id, no account id in the request): one device counts as one person,\n"
            "so a person with two devices counts twice (an upper bound: the conservative\n"
            "direction for the thresholds).\n");
}

/* `audit volumes --redis URL`: the fleet figure. 0, or 1 with a message. */
static int volumes_redis(const char *url, int year, const bg_counters_thresholds_t *thresholds,
                         int json)
{
    bg_redis_cfg_t rc;
    char err[700];
    if (bg_redis_parse_url(url, &rc, err, sizeof err) != 0) {
        fprintf(stderr, "bordergate audit volumes: --redis: %s\n", err);
        return 1;
    }
    const char *pw = getenv("BG_REDIS_PASSWORD");
    if (pw != NULL && (rc.password = strdup(pw)) == NULL) {
        fprintf(stderr, "bordergate audit volumes: out of memory\n");
        return 1;
    }
    if (year == 0)
        year = bg_counters_year_of((int64_t)bg_util_wall_ms());
    bg_counters_snapshot_t s;
    int r = bg_counters_fleet_snapshot(&rc, year, thresholds, &s, err, sizeof err);
    if (r != 0) {
        fprintf(stderr, "bordergate audit volumes: %s\n", err);
        bg_redis_cfg_clear(&rc);
        return 1;
    }
    if (json) {
        json_t *doc = bg_counters_snapshot_json(&s, 1);
        json_object_set_new(doc, "source", json_string("redis"));
        json_object_set_new(doc, "store", json_string(rc.display));
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(doc);
        if (text != NULL)
            printf("%s\n", text);
        free(text);
    } else {
        char source[400];
        snprintf(source, sizeof source, "shared store %s (every instance)", rc.display);
        volumes_print(&s, source, stdout);
    }
    bg_counters_snapshot_free(&s);
    bg_redis_cfg_clear(&rc);
    return 0;
}

enum { V_COUNTERS, V_REDIS, V_YEAR, V_PREFIX, V_JSON };

typedef struct {
    const char *counters, *prefix, *redis;
    int year, json;
    char **ops;
    size_t nops;
} volumes_ctx_t;

static int volumes_option(void *arg, int id, const char *v)
{
    volumes_ctx_t *x = arg;
    char *end;
    long y;
    switch (id) {
    case V_COUNTERS: x->counters = v; break;
    case V_REDIS: x->redis = v; break;
    case V_YEAR:
        y = strtol(v, &end, 10);
        if (*end != '\0' || y < 1970 || y > 9999) {
            fprintf(stderr, "bordergate audit volumes: --year must be a year such as 2026\n");
            return 2;
        }
        x->year = (int)y;
        break;
    case V_PREFIX: x->prefix = v; break;
    case V_JSON: x->json = 1; break;
    default: break;
    }
    return BG_CLI_AUDIT_GO;
}

static int volumes_operand(void *arg, const char *a)
{
    volumes_ctx_t *x = arg;
    x->ops[x->nops++] = (char *)a;
    return BG_CLI_AUDIT_GO;
}

static const bg_cli_audit_opt_t volumes_opts[] = {{"--counters", V_COUNTERS, "FILE", 0},
                                                  {"--redis", V_REDIS, "URL", 0},
                                                  {"--year", V_YEAR, "Y", 0},
                                                  {"--prefix", V_PREFIX, "P", 0},
                                                  {"--json", V_JSON, NULL, 0},
                                                  {NULL, 0, NULL, 0}};

static const bg_cli_audit_cmd_t volumes_cmd = {
    "volumes", volumes_opts, volumes_usage, volumes_option, volumes_operand, NULL, 0};

/* The counts from the counters file or the audit operands, printed. 0, or
 * 1 with the message printed. */
static int volumes_local(const volumes_ctx_t *x, const bg_counters_thresholds_t *thresholds)
{
    bg_counters_volumes_t v;
    char err[512], source[700];
    if (bg_counters_volumes(x->counters, x->ops, x->nops, x->prefix, x->year, thresholds, &v, err,
                            sizeof err) != 0) {
        fprintf(stderr, "bordergate audit volumes: %s\n", err);
        return 1;
    }
    if (x->counters == NULL)
        snprintf(source, sizeof source,
                 "audit log: %" PRIu64 " file(s), %" PRIu64 " decision record(s)", v.files,
                 v.decisions);
    else
        snprintf(source, sizeof source, "counters file %s (%" PRIu64 " line(s) of %d)", x->counters,
                 v.lines_loaded, v.year);
    if (x->json) {
        json_t *doc = bg_counters_volumes_doc(&v);
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(doc);
        if (text != NULL)
            printf("%s\n", text);
        free(text);
    } else {
        volumes_print(&v.snap, source, stdout);
        if (v.lines_skipped > 0)
            printf("note: %" PRIu64 " unreadable line(s) in the counters file were skipped\n",
                   v.lines_skipped);
    }
    if (x->counters == NULL && (v.unparsable > 0 || v.torn > 0))
        fprintf(stderr,
                "note: %" PRIu64 " unparsable and %" PRIu64 " incomplete line(s) skipped; "
                "run `bordergate audit verify`\n",
                v.unparsable, v.torn);
    bg_counters_volumes_free(&v);
    return 0;
}

/* Parse ARGV (with the policy's defaults appended) and count. THRESHOLDS:
 * the policy's, or NULL for the CAC defaults. */
static int volumes_run(int argc, char **argv, const bg_counters_thresholds_t *thresholds)
{
    volumes_ctx_t x = {.prefix = "audit"};
    if ((x.ops = calloc((size_t)argc + 1, sizeof *x.ops)) == NULL)
        return 1;
    int rc = bg_cli_audit_parse(&volumes_cmd, argc, argv, &x);
    if (rc != BG_CLI_AUDIT_GO)
        goto out;
    rc = 2;
    if (x.redis != NULL) {
        if (x.counters != NULL || x.nops > 0) {
            fprintf(stderr, "bordergate audit volumes: --redis takes no other source\n");
            goto out;
        }
        rc = volumes_redis(x.redis, x.year, thresholds, x.json);
        goto out;
    }
    if ((x.counters == NULL) == (x.nops == 0)) {
        fprintf(stderr,
                "bordergate audit volumes: give either --counters FILE or audit DIR|FILE...\n");
        volumes_usage(stderr);
        goto out;
    }
    rc = volumes_local(&x, thresholds);
out:
    free(x.ops);
    return rc;
}

/*
 * `audit volumes`; with --config POLICY: the thresholds the daemon applies
 * (audit.thresholds) and, when no source is named, the policy's counters
 * file or audit directory. Without --config: the CAC defaults. --config is
 * taken out first (not as the value of --counters, --year, --prefix or
 * --redis) and the policy loaded before the rest is parsed.
 */
int bg_cli_audit_volumes(int argc, char **argv)
{
    const char *path = NULL;
    char **av = calloc((size_t)argc + 5, sizeof *av);
    int ac = 0, sources = 0, rc = 2;
    if (av == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bordergate audit volumes: --config needs a file\n");
                free(av);
                return 2;
            }
            path = argv[++i];
            continue;
        }
        int valued = strcmp(argv[i], "--counters") == 0 || strcmp(argv[i], "--year") == 0 ||
                     strcmp(argv[i], "--prefix") == 0 || strcmp(argv[i], "--redis") == 0;
        if (i > 0 && (strcmp(argv[i], "--counters") == 0 || strcmp(argv[i], "--redis") == 0 ||
                      argv[i][0] != '-'))
            sources++;
        av[ac++] = argv[i];
        if (valued && i + 1 < argc)
            av[ac++] = argv[++i];
    }
    if (path == NULL) {
        rc = volumes_run(ac, av, NULL);
        free(av);
        return rc;
    }
    int nerr = 0;
    bg_config_t *cfg = bg_config_load(path, stderr, &nerr);
    if (cfg == NULL) {
        free(av);
        return 1;
    }
    bg_counters_thresholds_t t;
    bg_config_thresholds(cfg, &t);
    if (sources == 0) {
        if (cfg->audit_counters_file != NULL) {
            av[ac++] = (char *)"--counters";
            av[ac++] = cfg->audit_counters_file;
        } else if (cfg->audit_dir != NULL) {
            av[ac++] = (char *)"--prefix";
            av[ac++] = cfg->audit_prefix;
            av[ac++] = cfg->audit_dir;
        }
    }
    rc = volumes_run(ac, av, &t);
    bg_config_unref(cfg);
    free(av);
    return rc;
}
