/*
 * `bordergate replay`: evaluate recorded traffic (HAR 1.2, GoReplay .gor)
 * offline with the daemon's decision path (replay/replay.h), and
 *   --expect FILE        compare with expected decisions (exit 1 on any difference)
 *   --write-expect FILE  write the current decisions as expectations
 *   --diff-config OTHER  print only the entries another policy decides differently
 *   --live URL           send each request through a running bordergate and
 *                        check its answer (and, with --sink-log, what arrived
 *                        upstream) against the offline decision
 * This file is the driver: options, the source, the loop and the summary;
 * each mode is a bg_cli_replay_mode_t in cli/replay_*.c (cli/replay.h).
 * docs/replay.md is the reference. Output never contains payload values.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/replay.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "replay/har.h"

static void replay_usage(FILE *fp)
{
    fprintf(fp, "usage: bordergate replay --config POLICY (--har FILE | --gor FILE) [options]\n"
                "\n"
                "Evaluates every recorded request offline, exactly as the daemon would decide\n"
                "it, and prints one JSON line per entry (summary on stderr).\n"
                "\n"
                "  --format json|table     output format (default json)\n"
                "  --now TIME              decide at this RFC 3339 time (consent expiry...)\n"
                "  --consents FILE         consent registry to read (default: the policy's)\n"
                "  --expect FILE           compare with expected decisions; print differences,\n"
                "                          exit 1 on any\n"
                "  --write-expect FILE     write the current decisions as an expectation file\n"
                "  --diff-config OTHER     print only entries OTHER decides differently\n"
                "  --live URL              send each request through the bordergate at URL and\n"
                "                          check its decision against the offline one\n"
                "  --sink-log FILE|DIR     (with --live) a `bordergate sink --record` file, or a\n"
                "                          directory of them (*.jsonl): also check what arrived\n"
                "                          upstream (repeatable)\n"
                "  --max-entry-mb N        largest HAR entry accepted (default 64)\n"
                "  --proxy HOST:PORT       a URL naming this address was recorded in front of\n"
                "                          bordergate: its Host header is the destination\n"
                "                          (repeatable; the policy's listen addresses always)\n"
                "  --compare-recorded      compare each decision with the response's recorded\n"
                "                          X-Bordergate-Decision; exit 1 on any difference\n"
                "\n"
                "Exit status: 0 ok, 1 differences (expect, diff-config, live), 2 usage or\n"
                "input errors (each reported as FILE: entry N (line L, byte B): problem).\n");
}

/* The modes, in the order each entry visits them (cli/replay.h). */
static const bg_cli_replay_mode_t *const modes[] = {
    &bg_cli_replay_diff_mode,  &bg_cli_replay_expect_mode, &bg_cli_replay_print_mode,
    &bg_cli_replay_write_mode, &bg_cli_replay_live_mode,   &bg_cli_replay_recorded_mode,
};
#define NMODES (sizeof modes / sizeof modes[0])

/* sources                                                                   */

typedef struct {
    bg_har_reader_t *har;
    bg_gor_reader_t *gor;
    int fatal;
} source_t;

static int source_next(source_t *s, bg_replay_req_t *req, char *err, size_t cap)
{
    int rc =
        s->har != NULL ? bg_har_next(s->har, req, err, cap) : bg_gor_next(s->gor, req, err, cap);
    /* syntax and I/O errors end the file; a bad entry's content does not */
    if (rc < 0 && (s->har != NULL ? bg_har_failed(s->har) : bg_gor_failed(s->gor)))
        s->fatal = 1;
    return rc;
}

/* --max-entry-mb V: a whole decimal number of MiB in 1..4096 (nothing after
 * the digits) into *BYTES. 0, or -1 leaving *BYTES alone. */
static int parse_mb(const char *v, size_t *bytes)
{
    char *end = NULL;
    errno = 0;
    long mb = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || mb < 1 || mb > 4096)
        return -1;
    *bytes = (size_t)mb << 20;
    return 0;
}

static int parse_opts(int argc, char **argv, bg_cli_replay_opts_t *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc && argv[i] != NULL; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, field)                                                                           \
    if (strcmp(a, name) == 0) {                                                                    \
        if (v == NULL) {                                                                           \
            fprintf(stderr, "bordergate replay: %s needs a value\n", name);                        \
            return 2;                                                                              \
        }                                                                                          \
        o->field = v;                                                                              \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            replay_usage(stdout);
            return 1;
        }
        OPT("--config", config)
        OPT("--har", har)
        OPT("--gor", gor)
        OPT("--expect", expect)
        OPT("--write-expect", write_expect)
        OPT("--diff-config", diff_config)
        OPT("--live", live)
        OPT("--now", now)
        OPT("--consents", consents)
#undef OPT
        if (strcmp(a, "--sink-log") == 0 && v != NULL && o->nsink < BG_CLI_REPLAY_MAX_SINK_LOGS) {
            o->sink_logs[o->nsink++] = v;
            i++;
        } else if (strcmp(a, "--proxy") == 0 && v != NULL && strchr(v, ':') != NULL &&
                   o->nproxy < BG_CLI_REPLAY_MAX_SINK_LOGS) {
            o->proxies[o->nproxy++] = v;
            i++;
        } else if (strcmp(a, "--compare-recorded") == 0) {
            o->compare_recorded = 1;
        } else if (strcmp(a, "--format") == 0 && v != NULL &&
                   (strcmp(v, "json") == 0 || strcmp(v, "table") == 0)) {
            o->table = strcmp(v, "table") == 0;
            i++;
        } else if (strcmp(a, "--max-entry-mb") == 0 && v != NULL &&
                   parse_mb(v, &o->max_entry) == 0) {
            i++;
        } else {
            fprintf(stderr, "bordergate replay: unknown or incomplete option '%s'\n", a);
            replay_usage(stderr);
            return 2;
        }
    }
    if (o->config == NULL || (o->har == NULL) == (o->gor == NULL)) {
        fprintf(stderr, "bordergate replay: --config POLICY and one of --har FILE or --gor FILE "
                        "are required\n");
        return 2;
    }
    if (o->nsink > 0 && o->live == NULL) {
        fprintf(stderr, "bordergate replay: --sink-log needs --live\n");
        return 2;
    }
    if (o->diff_config != NULL && (o->expect != NULL || o->live != NULL)) {
        fprintf(stderr,
                "bordergate replay: --diff-config cannot be combined with --expect or --live\n");
        return 2;
    }
    return 0;
}
/* One entry through every active mode; counts its decision. */
static void replay_entry(const bg_cli_replay_policy_t *pa, const bg_replay_req_t *req,
                         void *const *state, const int *active, int need_tree, bg_sbuf_t *ob,
                         bg_cli_replay_counts_t *c)
{
    c->entries++;
    bg_replay_result_t res;
    char eerr[200];
    if (bg_replay_eval(&pa->ctx, req, &res, eerr, sizeof eerr) != 0) {
        fprintf(stderr, "bordergate replay: entry %zu: %s\n", req->index, eerr);
        c->errors++;
        bg_replay_result_free(&res);
        return;
    }
    /* the line is written as text; a tree only when a mode reads one */
    ob->n = 0;
    bg_replay_result_write(req, &res, ob);
    json_t *line = NULL;
    if (need_tree) {
        line = ob->failed ? NULL : json_loadb(ob->p, ob->n, 0, NULL);
        if (line == NULL) {
            fprintf(stderr, "bordergate replay: entry %zu: out of memory\n", req->index);
            c->errors++;
            bg_replay_result_free(&res);
            return;
        }
    }
    const char *d = bg_replay_decision(&res);
    if (strcmp(d, "allow") == 0)
        c->allow++;
    else if (strcmp(d, "deidentify") == 0)
        c->deidentify++;
    else if (strcmp(d, "block") == 0)
        c->block++;
    else
        c->refused++;
    if (res.evaluated && res.ev.decided && res.ev.decision.monitor)
        c->monitor++;
    bg_cli_replay_entry_t e = {req, &res, line, ob, d};
    for (size_t m = 0; m < NMODES; m++)
        if (active[m])
            modes[m]->entry(state[m], &e, c);
    json_decref(line);
    bg_replay_result_free(&res);
}

/* The summary: a JSON line on stderr with each mode's members, or with
 * --format table a sentence on stdout; then each mode's closing lines. */
static void replay_summary(const bg_cli_replay_opts_t *o, void *const *state, const int *active,
                           const bg_cli_replay_counts_t *c)
{
    bg_sbuf_t sum = {0};
    bg_sbuf_addf(&sum,
                 "{\"summary\":{\"entries\":%zu,\"allow\":%zu,\"deidentify\":%zu,\"block\":%zu,"
                 "\"refused\":%zu,\"monitor\":%zu,\"errors\":%zu",
                 c->entries, c->allow, c->deidentify, c->block, c->refused, c->monitor, c->errors);
    for (size_t m = 0; m < NMODES; m++)
        if (active[m] && modes[m]->summary != NULL)
            modes[m]->summary(state[m], c, &sum);
    if (o->table) {
        printf("\n%zu entries: %zu allow, %zu deidentify, %zu block, %zu refused", c->entries,
               c->allow, c->deidentify, c->block, c->refused);
        if (c->monitor)
            printf(" (%zu in monitor mode)", c->monitor);
        if (c->errors)
            printf("; %zu unreadable", c->errors);
        printf("\n");
    } else if (!sum.failed) {
        fprintf(stderr, "%.*s}}\n", (int)sum.n, sum.p);
    }
    bg_sbuf_free(&sum);
    for (size_t m = 0; m < NMODES; m++)
        if (active[m] && modes[m]->report != NULL)
            modes[m]->report(state[m], c);
}

int bg_cli_replay(int argc, char **argv)
{
    bg_cli_replay_opts_t o;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;

    int64_t now = (int64_t)bg_util_wall_ms();
    if (o.now != NULL && bg_consent_time_parse(o.now, &now) != 0) {
        fprintf(stderr,
                "bordergate replay: --now: '%s' is not an RFC 3339 time (2026-05-01T12:00:00Z)\n",
                o.now);
        return 2;
    }
    bg_cli_replay_policy_t pa;
    if (bg_cli_replay_load_policy(o.config, o.consents, now, &pa) != 0)
        return 2;
    /* The proxy's own addresses: recordings made in front of it. */
    for (int i = 0; i < pa.cfg->nlisten; i++)
        o.proxies[o.nproxy++] = pa.cfg->listen[i].text;
    o.proxies[o.nproxy] = NULL;
    void *state[NMODES] = {0};
    int active[NMODES] = {0}, need_tree = 0;
    bg_cli_replay_counts_t c;
    memset(&c, 0, sizeof c);
    source_t src;
    memset(&src, 0, sizeof src);
    char err[1024];
    rc = 2;
    /* The source first: a file --write-expect would overwrite is created
     * only once there is something to write into it. */
    if (o.har != NULL)
        src.har = bg_har_open(o.har, 0, o.max_entry, err, sizeof err);
    else
        src.gor = bg_gor_open(o.gor, o.max_entry, err, sizeof err);
    if (src.har == NULL && src.gor == NULL) {
        fprintf(stderr, "bordergate replay: %s\n", err);
        goto out;
    }
    bg_cli_replay_run_t run = {&o, &pa, now};
    for (size_t m = 0; m < NMODES; m++) {
        if (!modes[m]->wanted(&o))
            continue;
        active[m] = 1;
        need_tree |= modes[m]->needs_tree != NULL && modes[m]->needs_tree(&o);
        if (modes[m]->open(&run, &state[m]) != 0)
            goto out;
    }
    bg_replay_req_t req;
    memset(&req, 0, sizeof req);
    bg_sbuf_t ob = {0};
    for (;;) {
        int r = source_next(&src, &req, err, sizeof err);
        if (r == 0)
            break;
        if (r < 0) {
            fprintf(stderr, "bordergate replay: %s\n", err);
            c.errors++;
            if (src.fatal)
                break;
            continue;
        }
        if (bg_replay_req_behind_proxy(&req, o.proxies) < 0) {
            fprintf(stderr, "bordergate replay: entry %zu: out of memory\n", req.index);
            c.errors++;
            continue;
        }
        replay_entry(&pa, &req, state, active, need_tree, &ob, &c);
    }
    bg_replay_req_clear(&req);
    bg_sbuf_free(&ob);
    for (size_t m = 0; m < NMODES; m++)
        if (active[m] && modes[m]->end != NULL)
            modes[m]->end(state[m], &c);
    replay_summary(&o, state, active, &c);
    rc = c.errors > 0 ? 2 : (c.differences > 0 || c.changed > 0 || c.recorded_diffs > 0) ? 1 : 0;
out:
    for (size_t m = 0; m < NMODES; m++)
        if (active[m] && modes[m]->close != NULL)
            modes[m]->close(state[m]);
    bg_har_close(src.har);
    bg_gor_close(src.gor);
    bg_cli_replay_free_policy(&pa);
    return rc;
}
