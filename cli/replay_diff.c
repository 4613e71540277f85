/*
 * `bordergate replay --diff-config OTHER`: decide every entry under a
 * second policy too and print only the entries it decides differently
 * (decision, monitor's would, per finding basis, action and operator), as
 * JSON lines with before and after, or with --format table as one line per
 * change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/replay.h"

typedef struct {
    const bg_cli_replay_opts_t *o;
    bg_cli_replay_policy_t other;
} diffcfg_t;

typedef struct {
    json_t *changes;
} diff_ctx_t;

static void collect_change(void *arg, const char *msg)
{
    diff_ctx_t *dc = arg;
    json_array_append_new(dc->changes, json_string(msg));
}

/* The changes from A (this policy) to B (the other): decision (and
 * monitor's would), and per finding basis, action and operator (a finding
 * only one side inspected counts). Route and destination are shown in
 * before/after but alone are no change: the issue asks what the transfers
 * become. */
static json_t *diff_lines(json_t *a, json_t *b)
{
    diff_ctx_t dc = {json_array()};
    char msg[512];
    if (strcmp(bg_cli_replay_jstr(a, "decision"), bg_cli_replay_jstr(b, "decision")) != 0) {
        snprintf(msg, sizeof msg, "decision %s -> %s", bg_cli_replay_jstr(a, "decision"),
                 bg_cli_replay_jstr(b, "decision"));
        collect_change(&dc, msg);
    }
    int ma = json_object_get(a, "monitor") != NULL, mb = json_object_get(b, "monitor") != NULL;
    if ((ma || mb) &&
        (ma != mb || strcmp(bg_cli_replay_jstr(a, "would"), bg_cli_replay_jstr(b, "would")) != 0)) {
        snprintf(msg, sizeof msg, "monitor would %s -> %s",
                 ma ? bg_cli_replay_jstr(a, "would") : "(enforced)",
                 mb ? bg_cli_replay_jstr(b, "would") : "(enforced)");
        collect_change(&dc, msg);
    }
    /* findings: A's as the "expectation" of B, in both directions */
    json_t *fa = json_object_get(a, "findings"), *fb = json_object_get(b, "findings");
    size_t nb = json_array_size(fb);
    char *used = calloc(nb + 1, 1);
    size_t i;
    json_t *f = NULL;
    json_array_foreach(fa, i, f)
    {
        json_t *g = used != NULL ? bg_cli_replay_match_finding(fb, f, used) : NULL;
        if (g == NULL) {
            snprintf(msg, sizeof msg, "%s (%s): found -> not found", bg_cli_replay_jstr(f, "path"),
                     bg_cli_replay_jstr(f, "category"));
            collect_change(&dc, msg);
            continue;
        }
        static const char *const keys[] = {"basis", "action", "operator"};
        char part[400] = "";
        for (int k = 0; k < 3; k++) {
            const char *x = bg_cli_replay_jstr(f, keys[k]), *y = bg_cli_replay_jstr(g, keys[k]);
            if (strcmp(x, y) != 0)
                snprintf(part + strlen(part), sizeof part - strlen(part), "%s%s %s -> %s",
                         part[0] ? ", " : "", keys[k], x[0] ? x : "(none)", y[0] ? y : "(none)");
        }
        if (part[0]) {
            snprintf(msg, sizeof msg, "%s (%s): %s", bg_cli_replay_jstr(f, "path"),
                     bg_cli_replay_jstr(f, "category"), part);
            collect_change(&dc, msg);
        }
    }
    json_array_foreach(fb, i, f)
    {
        if (used != NULL && used[i])
            continue;
        snprintf(msg, sizeof msg, "%s (%s): not found -> %s", bg_cli_replay_jstr(f, "path"),
                 bg_cli_replay_jstr(f, "category"), bg_cli_replay_jstr(f, "action"));
        collect_change(&dc, msg);
    }
    free(used);
    return dc.changes;
}
static int diff_wanted(const bg_cli_replay_opts_t *o)
{
    return o->diff_config != NULL;
}

static int diff_open(const bg_cli_replay_run_t *run, void **state)
{
    diffcfg_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        fprintf(stderr, "bordergate replay: out of memory\n");
        return -1;
    }
    d->o = run->o;
    if (bg_cli_replay_load_policy(run->o->diff_config, run->o->consents, run->now, &d->other) !=
        0) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

/* The entry's changes under the other policy, printed. */
static void print_changes(const diffcfg_t *d, json_t *line, json_t *lb, json_t *ch)
{
    if (d->o->table) {
        char label[600];
        bg_cli_replay_label(line, label, sizeof label);
        size_t i;
        json_t *m = NULL;
        json_array_foreach(ch, i, m)
        {
            printf("%s: %s\n", label, json_string_value(m));
        }
        return;
    }
    json_t *out = json_object();
    json_object_set(out, "entry", json_object_get(line, "entry"));
    json_object_set(out, "method", json_object_get(line, "method"));
    json_object_set(out, "url", json_object_get(line, "url"));
    json_object_set(out, "changes", ch);
    json_object_set(out, "before", line);
    json_object_set(out, "after", lb);
    bg_cli_replay_print_json(out);
    json_decref(out);
}

static void diff_entry(void *state, const bg_cli_replay_entry_t *e, bg_cli_replay_counts_t *c)
{
    diffcfg_t *d = state;
    bg_replay_result_t rb;
    char eerr[200];
    if (bg_replay_eval(&d->other.ctx, e->req, &rb, eerr, sizeof eerr) != 0) {
        fprintf(stderr, "bordergate replay: entry %zu: %s\n", e->req->index, eerr);
        c->errors++;
    } else {
        json_t *lb = bg_replay_result_json(e->req, &rb);
        json_t *ch = diff_lines(e->line, lb);
        if (json_array_size(ch) > 0) {
            c->changed++;
            print_changes(d, e->line, lb, ch);
        }
        json_decref(ch);
        json_decref(lb);
    }
    bg_replay_result_free(&rb);
}

static void diff_summary(void *state, const bg_cli_replay_counts_t *c, bg_sbuf_t *sum)
{
    (void)state;
    bg_sbuf_addf(sum, ",\"changed\":%zu", c->changed);
}

static void diff_report(void *state, const bg_cli_replay_counts_t *c)
{
    diffcfg_t *d = state;
    fprintf(d->o->table ? stdout : stderr, "%zu of %zu entries change under %s\n", c->changed,
            c->entries, d->o->diff_config);
}

static void diff_close(void *state)
{
    diffcfg_t *d = state;
    if (d == NULL)
        return;
    bg_cli_replay_free_policy(&d->other);
    free(d);
}

const bg_cli_replay_mode_t bg_cli_replay_diff_mode = {
    .wanted = diff_wanted,
    .needs_tree = bg_cli_replay_always,
    .open = diff_open,
    .entry = diff_entry,
    .summary = diff_summary,
    .report = diff_report,
    .close = diff_close,
};
