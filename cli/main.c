/*
 * bordergate: one binary, subcommands. Each subcommand lives with its
 * module (proxy/server.c for run, proxy/sink.c for sink, ...); this file
 * only dispatches and prints help.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/cfgerr.h"
#include "config/config.h"
#include "policy/consent.h"
#include "proxy/evmem.h"
#include "proxy/server.h"
#include "proxy/sink.h"

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "bordergate %s - cross-border data transfer gatekeeper\n"
        "\n"
        "usage: bordergate <command> [options]\n"
        "\n"
        "commands:\n"
        "  run --config FILE      run the egress proxy (SIGHUP reloads FILE; --takeover:\n"
        "                         binary upgrade, replaces the running one)\n"
        "  check --config FILE    validate a configuration; prints \"configuration OK\"\n"
        "                         or one FILE:LINE:COLUMN: error line per problem on\n"
        "                         stderr (--format json, --strict, --no-keys)\n"
        "  geo lookup <ip|host>   country, region and source of each address\n"
        "  scan [FILE|-]          find personal information in a payload (--apply: de-identify)\n"
        "  replay --config P --har F   decide recorded traffic offline (--expect,\n"
        "                         --write-expect, --diff-config OTHER, --live URL)\n"
        "  detokenize --key F T   reverse tokens (authorised domestic use)\n"
        "  consent grant|withdraw|show|list   manage the consent registry\n"
        "  audit verify FILE|DIR  check the audit log's hash chain and signed checkpoints\n"
        "  audit report DIR       transfers, outcomes, findings, subjects by recipient,\n"
        "                         country, category, basis, outcome or route (--json)\n"
        "  audit subject ID|- DIR every decision naming one data subject (--key FILE)\n"
        "  audit volumes DIR      people whose PI went abroad this year, per recipient,\n"
        "                         and the transfer mechanism the volume calls for\n"
        "  audit blocked DIR      the latest blocked decisions: ids, reasons (--json)\n"
        "  sink [options]         a demo/test upstream that records what it receives\n"
        "  probe URL              GET an http:// URL; exit 0 on 2xx (container health check)\n"
        "  help                   this text\n"
        "  --version              print the version\n"
        "\n"
        "Run 'bordergate <command> --help' for a command's options.\n",
        BG_VERSION);
}

static int config_arg(int argc, char **argv, const char *cmd, const char **path)
{
    *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: bordergate %s --config FILE\n", cmd);
            return 1;
        }
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            *path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            *path = argv[i] + 9;
        } else {
            fprintf(stderr, "bordergate %s: unexpected argument '%s'\n", cmd, argv[i]);
            return 2;
        }
    }
    if (*path == NULL) {
        fprintf(stderr, "bordergate %s: --config FILE is required\n", cmd);
        return 2;
    }
    return 0;
}

static const char check_usage[] =
    "usage: bordergate check --config FILE [--format text|json] [--strict] [--no-keys]\n"
    "  --format json  one JSON document on stdout: {\"file\", \"ok\", \"errors\",\n"
    "                 \"warnings\", \"routes\", \"diagnostics\": [...]}\n"
    "  --strict       warnings fail the check too (exit 1)\n"
    "  --no-keys      check the keys' configuration without reading key files\n"
    "                 or variables (CI does not hold production keys)\n"
    "Exit status: 0 valid, 1 invalid, 2 usage error. In text form the\n"
    "diagnostics go to stderr, \"configuration OK\" to stdout.\n";

/* `check` as JSON (--format json) on stdout. */
static void check_json(const char *path, const bg_cfgerr_t *diag, const bg_config_t *cfg, int ok)
{
    json_t *o = json_object();
    json_t *items = diag != NULL ? bg_cfgerr_to_json(diag) : json_array();
    json_object_set_new(o, "file", json_string(path));
    json_object_set_new(o, "ok", json_boolean(ok));
    json_object_set_new(o, "errors",
                        json_integer(diag != NULL ? (json_int_t)bg_cfgerr_errors(diag) : 1));
    json_object_set_new(o, "warnings",
                        json_integer(diag != NULL ? (json_int_t)bg_cfgerr_warnings(diag) : 0));
    json_object_set_new(o, "routes", cfg != NULL ? json_integer(cfg->nroutes) : json_null());
    json_object_set_new(o, "diagnostics", items != NULL ? items : json_array());
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (text != NULL)
        printf("%s\n", text);
    free(text);
    json_decref(o);
}

/*
 * `bordergate check`: validate a configuration for people (diagnostics on
 * stderr, "configuration OK" on stdout) or CI (--format json). Exit 0
 * valid, 1 errors (or warnings with --strict), 2 usage.
 */
static int cmd_check(int argc, char **argv)
{
    const char *path = NULL, *format = "text";
    int strict = 0;
    bg_config_opts_t opts = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(check_usage, stdout);
            return 0;
        } else if ((strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        } else if (strcmp(a, "--format") == 0 && i + 1 < argc) {
            format = argv[++i];
        } else if (strncmp(a, "--format=", 9) == 0) {
            format = a + 9;
        } else if (strcmp(a, "--strict") == 0) {
            strict = 1;
        } else if (strcmp(a, "--no-keys") == 0) {
            opts.no_keys = 1;
        } else {
            fprintf(stderr, "bordergate check: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "bordergate check: --config FILE is required\n");
        return 2;
    }
    int json = strcmp(format, "json") == 0;
    if (!json && strcmp(format, "text") != 0) {
        fprintf(stderr, "bordergate check: --format must be text or json\n");
        return 2;
    }
    int nerr = 0;
    bg_cfgerr_t *diag = NULL;
    bg_config_t *cfg = bg_config_check(path, &opts, &diag, &nerr);
    size_t nwarn = diag != NULL ? bg_cfgerr_warnings(diag) : 0;
    int ok = cfg != NULL && !(strict && nwarn > 0);
    if (json) {
        check_json(path, diag, cfg, ok);
    } else {
        if (diag != NULL)
            bg_cfgerr_print(diag, stderr);
        else
            fprintf(stderr, "%s: error: out of memory\n", path);
        if (cfg == NULL)
            fprintf(stderr, "%s: %d error%s\n", path, nerr, nerr == 1 ? "" : "s");
        else if (!ok)
            fprintf(stderr, "%s: %zu warning%s (--strict)\n", path, nwarn, nwarn == 1 ? "" : "s");
        else
            printf("%s: configuration OK (%d route%s)%s\n", path, cfg->nroutes,
                   cfg->nroutes == 1 ? "" : "s", opts.no_keys ? ", keys not read" : "");
    }
    if (cfg != NULL)
        bg_config_unref(cfg);
    bg_cfgerr_free(diag);
    return ok ? 0 : 1;
}

static int cmd_run(int argc, char **argv)
{
    const char *path;
    unsigned flags = 0;
    char **av = calloc((size_t)argc + 1, sizeof *av);
    int ac = 0;
    if (av == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--takeover") == 0)
            flags |= BG_SERVER_TAKEOVER;
        else
            av[ac++] = argv[i];
    }
    int rc = config_arg(ac, av, "run", &path);
    free(av);
    if (rc == 1)
        printf("       --takeover   hand over from a running bordergate on the same address\n"
               "                    (binary upgrade; same policy version required)\n");
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    return bg_server_run(path, flags);
}

int main(int argc, char **argv)
{
    bg_evmem_install(); /* before any libevent call */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("bordergate %s\n", BG_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    /* -h is --help for every command (each one parses --help). */
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0)
            argv[i] = (char *)"--help";
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return bg_cli_audit(argc - 1, argv + 1);
    if (strcmp(cmd, "scan") == 0)
        return bg_cli_scan(argc - 1, argv + 1);
    if (strcmp(cmd, "replay") == 0)
        return bg_cli_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "detokenize") == 0)
        return bg_cli_detokenize(argc - 1, argv + 1);
    if (strcmp(cmd, "consent") == 0)
        return bg_consent_cli(argc - 1, argv + 1);
    if (strcmp(cmd, "geo") == 0)
        return bg_cli_geo(argc - 1, argv + 1);
    if (strcmp(cmd, "sink") == 0)
        return bg_sink_main(argc - 1, argv + 1);
    if (strcmp(cmd, "probe") == 0)
        return bg_cli_probe(argc - 1, argv + 1);
    fprintf(stderr, "bordergate: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
