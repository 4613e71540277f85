/*
 * `bordergate replay` without --expect, --write-expect, --diff-config or
 * --live: every entry's record, as a JSON line (the record's text as
 * written) or, with --format table, as a row of a table.
 */
#include <stdio.h>
#include <string.h>

#include "cli/replay.h"

static void print_table_header(void)
{
    printf("%-6s %-10s %-4s %-22s %-24s %s\n", "ENTRY", "DECISION", "DEST", "ROUTE", "FINDINGS",
           "REQUEST");
}

static void print_table_row(json_t *line)
{
    char fsum[128] = "";
    const char *actions[] = {"allow", "deidentify", "remove", "remove_record", "block"};
    json_t *fs = json_object_get(line, "findings");
    for (int a = 0; a < 5; a++) {
        size_t i, k = 0;
        json_t *f = NULL;
        json_array_foreach(fs, i, f)
        {
            if (strcmp(bg_cli_replay_jstr(f, "action"), actions[a]) == 0)
                k++;
        }
        if (k > 0)
            snprintf(fsum + strlen(fsum), sizeof fsum - strlen(fsum), "%s%zu %s",
                     fsum[0] ? ", " : "", k, actions[a]);
    }
    char dec[40];
    if (json_object_get(line, "monitor") != NULL)
        snprintf(dec, sizeof dec, "%s(%s)", "monitor", bg_cli_replay_jstr(line, "would"));
    else if (json_object_get(line, "status") != NULL)
        snprintf(dec, sizeof dec, "refused %lld",
                 (long long)json_integer_value(json_object_get(line, "status")));
    else
        snprintf(dec, sizeof dec, "%s", bg_cli_replay_jstr(line, "decision"));
    char label[600];
    bg_cli_replay_label(line, label, sizeof label);
    const char *req = strchr(label + 6, ' ');
    printf("%-6lld %-10s %-4s %-22s %-24s %s\n",
           (long long)json_integer_value(json_object_get(line, "entry")), dec,
           bg_cli_replay_jstr(line, "country")[0] ? bg_cli_replay_jstr(line, "country") : "-",
           bg_cli_replay_jstr(line, "route")[0] ? bg_cli_replay_jstr(line, "route") : "-",
           fsum[0] ? fsum : "-", req != NULL ? req + 1 : "");
}
static int print_wanted(const bg_cli_replay_opts_t *o)
{
    return o->expect == NULL && o->write_expect == NULL && o->diff_config == NULL &&
           o->live == NULL;
}

/* A table row reads the record's members; a JSON line is its text. */
static int print_needs_tree(const bg_cli_replay_opts_t *o)
{
    return o->table;
}

static int print_open(const bg_cli_replay_run_t *run, void **state)
{
    *state = (void *)run->o;
    if (run->o->table)
        print_table_header();
    return 0;
}

static void print_entry(void *state, const bg_cli_replay_entry_t *e, bg_cli_replay_counts_t *c)
{
    const bg_cli_replay_opts_t *o = state;
    (void)c;
    if (o->table) {
        print_table_row(e->line);
    } else {
        fwrite(e->text->p, 1, e->text->n, stdout);
        fputc('\n', stdout);
    }
}

const bg_cli_replay_mode_t bg_cli_replay_print_mode = {
    .wanted = print_wanted,
    .needs_tree = print_needs_tree,
    .open = print_open,
    .entry = print_entry,
};
