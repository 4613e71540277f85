/*
 * `bordergate replay --write-expect FILE`: write every entry's decision as
 * an expectation (route, destination, decision, and per finding its path,
 * category, basis, action and operator) that a later --expect run compares
 * with. The file is written as the entries go, and closed at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/replay.h"

typedef struct {
    const char *path;
    FILE *fp;
} write_t;

/* The expectation written for one output line: stable member order. */
static json_t *expectation(json_t *line)
{
    json_t *x = json_object();
    char req[600];
    const char *url = bg_cli_replay_jstr(line, "url");
    snprintf(req, sizeof req, "%s %s", bg_cli_replay_jstr(line, "method"), url);
    json_object_set(x, "entry", json_object_get(line, "entry"));
    json_object_set_new(x, "request", json_string(req));
    if (json_is_string(json_object_get(line, "route")))
        json_object_set(x, "route", json_object_get(line, "route"));
    if (json_is_string(json_object_get(line, "country")))
        json_object_set(x, "destination", json_object_get(line, "country"));
    json_object_set(x, "decision", json_object_get(line, "decision"));
    if (json_object_get(line, "monitor") != NULL)
        json_object_set(x, "would", json_object_get(line, "would"));
    if (strcmp(bg_cli_replay_jstr(line, "decision"), "refused") == 0) {
        json_object_set(x, "status", json_object_get(line, "status"));
        return x;
    }
    json_t *fs = json_array();
    size_t i;
    json_t *f = NULL;
    json_array_foreach(json_object_get(line, "findings"), i, f)
    {
        json_t *e = json_object();
        json_object_set(e, "path", json_object_get(f, "path"));
        json_object_set(e, "category", json_object_get(f, "category"));
        json_object_set(e, "basis", json_object_get(f, "basis"));
        json_object_set(e, "action", json_object_get(f, "action"));
        if (json_object_get(f, "operator") != NULL)
            json_object_set(e, "operator", json_object_get(f, "operator"));
        json_array_append_new(fs, e);
    }
    json_object_set_new(x, "findings", fs);
    return x;
}

/* One expectation, indented inside the "entries" array. */
static void write_expectation(FILE *fp, json_t *x, int first)
{
    char *s = json_dumps(x, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (s == NULL)
        return;
    fputs(first ? "  " : ",\n  ", fp);
    for (char *p = s; *p; p++) {
        fputc(*p, fp);
        if (*p == '\n')
            fputs("  ", fp);
    }
    free(s);
}
static int write_wanted(const bg_cli_replay_opts_t *o)
{
    return o->write_expect != NULL;
}

/* Creates the file and writes its header (format, config, traffic, now). */
static int write_open(const bg_cli_replay_run_t *run, void **state)
{
    const bg_cli_replay_opts_t *o = run->o;
    write_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        fprintf(stderr, "bordergate replay: out of memory\n");
        return -1;
    }
    w->path = o->write_expect;
    w->fp = fopen(w->path, "w");
    if (w->fp == NULL) {
        fprintf(stderr, "bordergate replay: %s: %s\n", w->path, strerror(errno));
        free(w);
        return -1;
    }
    *state = w;
    json_t *hd = json_object();
    json_object_set_new(hd, "format", json_string("bordergate-replay-expect/1"));
    json_object_set_new(hd, "config", json_string(o->config));
    json_object_set_new(hd, "traffic", json_string(o->har != NULL ? o->har : o->gor));
    if (o->now != NULL)
        json_object_set_new(hd, "now", json_string(o->now));
    char *s = json_dumps(hd, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(hd);
    if (s != NULL)
        fprintf(w->fp, "%.*s,\n \"entries\": [\n", (int)(strlen(s) - 2), s);
    free(s);
    return 0;
}

static void write_entry(void *state, const bg_cli_replay_entry_t *e, bg_cli_replay_counts_t *c)
{
    write_t *w = state;
    json_t *x = expectation(e->line);
    write_expectation(w->fp, x, c->entries == 1);
    json_decref(x);
}

/* Closes the entries array and the file; a failed close is an error. */
static void write_end(void *state, bg_cli_replay_counts_t *c)
{
    write_t *w = state;
    fputs("\n ]\n}\n", w->fp);
    if (fclose(w->fp) != 0) {
        fprintf(stderr, "bordergate replay: %s: %s\n", w->path, strerror(errno));
        c->errors++;
    }
    w->fp = NULL;
}

static void write_close(void *state)
{
    write_t *w = state;
    if (w == NULL)
        return;
    if (w->fp != NULL)
        fclose(w->fp);
    free(w);
}

const bg_cli_replay_mode_t bg_cli_replay_write_mode = {
    .wanted = write_wanted,
    .needs_tree = bg_cli_replay_always,
    .open = write_open,
    .entry = write_entry,
    .end = write_end,
    .close = write_close,
};
