/*
 * `replay --compare-recorded`: traffic recorded through bordergate carries
 * the daemon's answer in each response's X-Bordergate-Decision header
 * (replay/har.h keeps it); each entry's offline decision is compared with
 * it, and a difference printed and counted. Entries recorded without the
 * header (refusals, traffic not through bordergate) are not compared.
 */
#include <stdio.h>
#include <string.h>

#include "cli/replay.h"

static int recorded_wanted(const bg_cli_replay_opts_t *o)
{
    return o->compare_recorded;
}

static int recorded_open(const bg_cli_replay_run_t *run, void **state)
{
    (void)run;
    *state = NULL;
    return 0;
}

static void recorded_entry(void *state, const bg_cli_replay_entry_t *e, bg_cli_replay_counts_t *c)
{
    (void)state;
    const char *rec = e->req->recorded_decision;
    if (rec == NULL)
        return;
    /* "block", or "allow; monitor; would=block": the outcome first */
    size_t rl = strcspn(rec, "; ");
    if (strlen(e->decision) != rl || strncmp(e->decision, rec, rl) != 0) {
        printf("entry %zu: recorded X-Bordergate-Decision %.*s, decided offline %s\n",
               e->req->index, (int)rl, rec, e->decision);
        c->recorded_diffs++;
    }
}

static void recorded_summary(void *state, const bg_cli_replay_counts_t *c, bg_sbuf_t *sum)
{
    (void)state;
    bg_sbuf_addf(sum, ",\"recorded_differences\":%zu", c->recorded_diffs);
}

const bg_cli_replay_mode_t bg_cli_replay_recorded_mode = {
    .wanted = recorded_wanted,
    .open = recorded_open,
    .entry = recorded_entry,
    .summary = recorded_summary,
};
