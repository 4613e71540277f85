/*
 * `bordergate replay --expect FILE`: compare every entry's decision with
 * the expectation file (this tool's --write-expect format, or a policy
 * pack's: "index"/"outcome"/"destination") and print each difference;
 * entries the file expects but the recording lacks are differences too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/replay.h"

typedef struct {
    const char *path;
    json_t *expect; /* the parsed file: {"entries": [...]} */
} expect_t;

/*
 * Compare findings: every expected one must be there with the basis,
 * action and operator it names; no other finding may be there. Returns
 * the number of differences, each reported through FN.
 */
static int compare_findings(json_t *act, json_t *exp, bg_cli_replay_diff_fn fn, void *arg,
                            const char *exp_word)
{
    int n = 0;
    char msg[512];
    size_t na = json_array_size(act);
    char *used = calloc(na + 1, 1);
    if (used == NULL)
        return 1;
    size_t i;
    json_t *xf = NULL;
    json_array_foreach(exp, i, xf)
    {
        json_t *f = bg_cli_replay_match_finding(act, xf, used);
        if (f == NULL) {
            snprintf(msg, sizeof msg, "finding %s (%s) %s, not found",
                     bg_cli_replay_jstr(xf, "path"), bg_cli_replay_jstr(xf, "category"), exp_word);
            fn(arg, msg);
            n++;
            continue;
        }
        static const char *const keys[] = {"basis", "action", "operator"};
        for (int k = 0; k < 3; k++) {
            json_t *xv = json_object_get(xf, keys[k]);
            if (xv == NULL)
                continue;
            if (k == 2 && strcmp(bg_cli_replay_jstr(f, "action"), "deidentify") != 0 &&
                strcmp(bg_cli_replay_jstr(f, "action"), "remove") != 0)
                continue;
            if (strcmp(bg_cli_replay_jstr(f, keys[k]),
                       json_string_value(xv) ? json_string_value(xv) : "") != 0) {
                snprintf(msg, sizeof msg, "%s (%s): %s %s, %s %s", bg_cli_replay_jstr(f, "path"),
                         bg_cli_replay_jstr(f, "category"), keys[k],
                         bg_cli_replay_jstr(f, keys[k])[0] ? bg_cli_replay_jstr(f, keys[k])
                                                           : "(none)",
                         exp_word, json_string_value(xv));
                fn(arg, msg);
                n++;
            }
        }
    }
    json_t *f = NULL;
    json_array_foreach(act, i, f)
    {
        if (used[i])
            continue;
        snprintf(msg, sizeof msg, "finding %s (%s) with action %s, not %s",
                 bg_cli_replay_jstr(f, "path"), bg_cli_replay_jstr(f, "category"),
                 bg_cli_replay_jstr(f, "action"), exp_word);
        fn(arg, msg);
        n++;
    }
    free(used);
    return n;
}

/* Compare one output line with its expectation (this tool's format, or the
 * policy-pack format: "index"/"outcome"/"destination"). */
static void compare_expect(json_t *line, json_t *xp, bg_cli_replay_counts_t *c)
{
    char label[600];
    bg_cli_replay_label(line, label, sizeof label);
    bg_cli_replay_diffs_t pc = {label, c};
    char msg[512];
    if (json_object_get(xp, "known_gap") != NULL) {
        printf("%s: skipped (known gap: %s)\n", label, bg_cli_replay_jstr(xp, "known_gap"));
        c->skipped++;
        return;
    }
    const char *want = json_object_get(xp, "decision") ? bg_cli_replay_jstr(xp, "decision")
                                                       : bg_cli_replay_jstr(xp, "outcome");
    const char *got = bg_cli_replay_jstr(line, "decision");
    if (strcmp(got, want) != 0) {
        snprintf(msg, sizeof msg, "decision %s, expected %s", got, want);
        if (strcmp(got, "refused") == 0)
            snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " (refused %lld: %s)",
                     (long long)json_integer_value(json_object_get(line, "status")),
                     bg_cli_replay_jstr(line, "reason"));
        bg_cli_replay_diff(&pc, msg);
        return; /* the rest follows from the decision */
    }
    if (json_object_get(xp, "would") != NULL &&
        strcmp(bg_cli_replay_jstr(line, "would"), bg_cli_replay_jstr(xp, "would")) != 0) {
        snprintf(msg, sizeof msg, "would %s, expected %s",
                 bg_cli_replay_jstr(line, "would")[0] ? bg_cli_replay_jstr(line, "would")
                                                      : "(not monitored)",
                 bg_cli_replay_jstr(xp, "would"));
        bg_cli_replay_diff(&pc, msg);
    }
    if (json_object_get(xp, "status") != NULL &&
        json_integer_value(json_object_get(xp, "status")) !=
            json_integer_value(json_object_get(line, "status"))) {
        snprintf(msg, sizeof msg, "status %lld, expected %lld",
                 (long long)json_integer_value(json_object_get(line, "status")),
                 (long long)json_integer_value(json_object_get(xp, "status")));
        bg_cli_replay_diff(&pc, msg);
    }
    if (json_object_get(xp, "route") != NULL &&
        strcmp(bg_cli_replay_jstr(line, "route"), bg_cli_replay_jstr(xp, "route")) != 0) {
        snprintf(msg, sizeof msg, "route %s, expected %s",
                 bg_cli_replay_jstr(line, "route")[0] ? bg_cli_replay_jstr(line, "route")
                                                      : "(none)",
                 bg_cli_replay_jstr(xp, "route"));
        bg_cli_replay_diff(&pc, msg);
    }
    if (json_object_get(xp, "destination") != NULL &&
        strcmp(bg_cli_replay_jstr(line, "country"), bg_cli_replay_jstr(xp, "destination")) != 0) {
        snprintf(msg, sizeof msg, "destination %s, expected %s",
                 bg_cli_replay_jstr(line, "country")[0] ? bg_cli_replay_jstr(line, "country")
                                                        : "(unknown)",
                 bg_cli_replay_jstr(xp, "destination"));
        bg_cli_replay_diff(&pc, msg);
    }
    json_t *xf = json_object_get(xp, "findings");
    if (json_is_array(xf))
        compare_findings(json_object_get(line, "findings"), xf, bg_cli_replay_diff, &pc,
                         "expected");
}
static int expect_wanted(const bg_cli_replay_opts_t *o)
{
    return o->expect != NULL;
}

static int expect_open(const bg_cli_replay_run_t *run, void **state)
{
    const char *path = run->o->expect;
    json_error_t je;
    json_t *expect = json_load_file(path, 0, &je);
    if (expect == NULL) {
        fprintf(stderr, "bordergate replay: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_array(json_object_get(expect, "entries"))) {
        fprintf(stderr, "bordergate replay: %s: no \"entries\" array\n", path);
        json_decref(expect);
        return -1;
    }
    expect_t *x = calloc(1, sizeof *x);
    if (x == NULL) {
        fprintf(stderr, "bordergate replay: out of memory\n");
        json_decref(expect);
        return -1;
    }
    x->path = path;
    x->expect = expect;
    *state = x;
    return 0;
}

/* The entry number expectation X names: "entry", or a pack's "index". */
static json_int_t entry_number(json_t *x)
{
    json_t *k =
        json_object_get(x, "entry") ? json_object_get(x, "entry") : json_object_get(x, "index");
    return json_integer_value(k);
}

/* The expectation for entry INDEX: by position first, else by the entry
 * number it names ("entry", or a pack's "index"); NULL when none. */
static json_t *expectation_for(json_t *xs, size_t index)
{
    json_t *x = json_array_get(xs, index);
    if (x != NULL && (json_integer_value(json_object_get(x, "entry")) == (json_int_t)index ||
                      json_integer_value(json_object_get(x, "index")) == (json_int_t)index))
        return x;
    size_t i;
    json_array_foreach(xs, i, x)
    {
        if (entry_number(x) == (json_int_t)index)
            return x;
    }
    return NULL;
}

static void expect_entry(void *state, const bg_cli_replay_entry_t *e, bg_cli_replay_counts_t *c)
{
    expect_t *x = state;
    json_t *xp = expectation_for(json_object_get(x->expect, "entries"), e->req->index);
    if (xp == NULL) {
        char label[600];
        bg_cli_replay_label(e->line, label, sizeof label);
        printf("%s: no expectation for this entry (decision %s)\n", label, e->decision);
        c->differences++;
    } else {
        compare_expect(e->line, xp, c);
    }
}

/* Entries expected beyond the end of the recording. */
static void expect_end(void *state, bg_cli_replay_counts_t *c)
{
    expect_t *ex = state;
    size_t i;
    json_t *x = NULL;
    json_array_foreach(json_object_get(ex->expect, "entries"), i, x)
    {
        json_int_t k = entry_number(x);
        if ((size_t)k >= c->entries + c->errors) {
            printf("entry %lld: expected (%s), but the recording has only %zu entries\n",
                   (long long)k,
                   json_object_get(x, "decision") ? bg_cli_replay_jstr(x, "decision")
                                                  : bg_cli_replay_jstr(x, "outcome"),
                   c->entries + c->errors);
            c->differences++;
        }
    }
}

static void expect_summary(void *state, const bg_cli_replay_counts_t *c, bg_sbuf_t *sum)
{
    (void)state;
    bg_sbuf_addf(sum, ",\"differences\":%zu,\"skipped\":%zu", c->differences, c->skipped);
}

/* Differences found by --live are its own to report. */
static void expect_report(void *state, const bg_cli_replay_counts_t *c)
{
    expect_t *x = state;
    size_t xd = c->differences - c->live_diffs;
    if (xd == 0 && c->skipped == 0)
        printf("all %zu entries match %s\n", c->entries, x->path);
    else if (xd == 0)
        printf("all %zu entries match %s (%zu skipped as known gaps)\n", c->entries - c->skipped,
               x->path, c->skipped);
    else
        printf("%zu difference(s) from %s\n", xd, x->path);
}

static void expect_close(void *state)
{
    expect_t *x = state;
    if (x == NULL)
        return;
    json_decref(x->expect);
    free(x);
}

const bg_cli_replay_mode_t bg_cli_replay_expect_mode = {
    .wanted = expect_wanted,
    .needs_tree = bg_cli_replay_always,
    .open = expect_open,
    .entry = expect_entry,
    .end = expect_end,
    .summary = expect_summary,
    .report = expect_report,
    .close = expect_close,
};
