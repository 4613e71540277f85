/*
 * `bordergate replay` inside (cli/cmd_replay.c is the driver): what its
 * modes share and the one interface each mode implements.
 *
 * The driver reads the recording entry by entry, decides each offline
 * (replay/replay.h) and hands the entry to every mode the options ask for,
 * in a fixed order: one of print (cli/replay_print.c, json or table),
 * --expect (replay_expect.c) or --diff-config (replay_diff.c) first, then
 * --write-expect (replay_write.c), then --live (replay_live.c). A mode sees
 * the entry's record (as text, and as a tree when it asks for one) and
 * counts what it finds in the shared counts; the driver prints the summary
 * (with each mode's members) and each mode's closing line. Output never
 * holds a payload value: records carry paths, categories and pseudonyms.
 */
#ifndef BG_CLI_REPLAY_H
#define BG_CLI_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/sbuf.h"
#include "config/config.h"
#include "policy/consent.h"
#include "replay/replay.h"

#define BG_CLI_REPLAY_MAX_SINK_LOGS 32

/* The command line, as parsed (pointers into argv). */
typedef struct {
    const char *config, *har, *gor, *expect, *write_expect, *diff_config, *live, *now, *consents;
    const char *sink_logs[BG_CLI_REPLAY_MAX_SINK_LOGS];
    int nsink;
    int table;
    size_t max_entry;
    /* --proxy and the policy's listen addresses: a URL naming one of them was
     * recorded in front of bordergate (bg_replay_req_behind_proxy); NULL-ended */
    const char *proxies[BG_CLI_REPLAY_MAX_SINK_LOGS + BG_MAX_LISTEN + 1];
    int nproxy;
    int compare_recorded; /* --compare-recorded */
} bg_cli_replay_opts_t;

/* What the run counted; modes add to their members. */
typedef struct {
    size_t entries, allow, deidentify, block, refused, monitor, errors, differences, changed,
        skipped, live_ok, live_diffs, recorded_diffs;
} bg_cli_replay_counts_t;

/* One policy to decide with: its configuration, consent registry and the
 * replay context that holds both. */
typedef struct {
    bg_config_t *cfg;
    bg_consent_reg_t *consent;
    bg_replay_ctx_t ctx;
} bg_cli_replay_policy_t;

/* Loads the configuration at PATH and its consent registry (CONSENTS, else
 * the policy's; read-only; a missing file means no consent holds) to decide
 * at NOW. 0, or -1 after printing why. */
int bg_cli_replay_load_policy(const char *path, const char *consents, int64_t now,
                              bg_cli_replay_policy_t *pe);
void bg_cli_replay_free_policy(bg_cli_replay_policy_t *pe);

/* O.K as a string, "" when absent or not a string. */
const char *bg_cli_replay_jstr(json_t *o, const char *k);
/* "entry N POST api.example.com/v1/x" for record LINE (scheme and query
 * values dropped). */
void bg_cli_replay_label(json_t *line, char *out, size_t cap);
/* The finding of ACT matching XF (same path, and category when XF names
 * one) not yet marked in USED (one byte per finding of ACT), then marked. */
json_t *bg_cli_replay_match_finding(json_t *act, json_t *xf, char *used);

/* A difference reporter: prints "LABEL: MSG" on stdout and counts it. */
typedef void (*bg_cli_replay_diff_fn)(void *arg, const char *msg);
typedef struct {
    const char *label;
    bg_cli_replay_counts_t *counts;
} bg_cli_replay_diffs_t;
void bg_cli_replay_diff(void *arg, const char *msg); /* ARG: bg_cli_replay_diffs_t */

/* 1 whatever the options: a mode's needs_tree when it always reads the
 * record's members. */
int bg_cli_replay_always(const bg_cli_replay_opts_t *o);

/* LINE as one compact JSON line on stdout (member order kept). */
void bg_cli_replay_print_json(json_t *line);

/* What every mode is given at the start. */
typedef struct {
    const bg_cli_replay_opts_t *o;
    const bg_cli_replay_policy_t *policy; /* the offline policy (--config) */
    int64_t now;
} bg_cli_replay_run_t;

/* One entry, decided offline. */
typedef struct {
    const bg_replay_req_t *req;
    const bg_replay_result_t *res;
    json_t *line;          /* the record as a tree; NULL unless a mode's needs_tree */
    const bg_sbuf_t *text; /* the record as text (one JSON object) */
    const char *decision;  /* allow, deidentify, block, refused */
} bg_cli_replay_entry_t;

/*
 * A mode. WANTED says whether the options ask for it; the others are
 * called only then, in this order: OPEN once (0, or -1 after printing why:
 * the run stops with status 2; *STATE is the mode's, may stay NULL), ENTRY
 * for every entry decided, END after the last entry, SUMMARY to append its
 * members (",\"name\":N") to the summary line, REPORT for its closing
 * lines, CLOSE always (also after a failed OPEN of a later mode). Any but
 * WANTED, OPEN and ENTRY may be NULL.
 */
typedef struct {
    int (*wanted)(const bg_cli_replay_opts_t *o);
    int (*needs_tree)(const bg_cli_replay_opts_t *o);
    int (*open)(const bg_cli_replay_run_t *run, void **state);
    void (*entry)(void *state, const bg_cli_replay_entry_t *e, bg_cli_replay_counts_t *c);
    void (*end)(void *state, bg_cli_replay_counts_t *c);
    void (*summary)(void *state, const bg_cli_replay_counts_t *c, bg_sbuf_t *sum);
    void (*report)(void *state, const bg_cli_replay_counts_t *c);
    void (*close)(void *state);
} bg_cli_replay_mode_t;

extern const bg_cli_replay_mode_t bg_cli_replay_recorded_mode; /* --compare-recorded */
extern const bg_cli_replay_mode_t bg_cli_replay_print_mode;    /* no other mode: every record */
extern const bg_cli_replay_mode_t bg_cli_replay_expect_mode;   /* --expect FILE */
extern const bg_cli_replay_mode_t bg_cli_replay_diff_mode;     /* --diff-config OTHER */
extern const bg_cli_replay_mode_t bg_cli_replay_write_mode;    /* --write-expect FILE */
extern const bg_cli_replay_mode_t bg_cli_replay_live_mode;     /* --live URL [--sink-log ...] */

#endif
