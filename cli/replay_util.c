/*
 * What the modes of `bordergate replay` share (cli/replay.h): loading a
 * policy with its consent registry, reading record members, labels,
 * matching findings, reporting a difference.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/replay.h"

int bg_cli_replay_load_policy(const char *path, const char *consents, int64_t now,
                              bg_cli_replay_policy_t *pe)
{
    int nerr = 0;
    memset(pe, 0, sizeof *pe);
    pe->cfg = bg_config_load(path, stderr, &nerr);
    if (pe->cfg == NULL) {
        fprintf(stderr, "bordergate replay: %s: %d error%s\n", path, nerr, nerr == 1 ? "" : "s");
        return -1;
    }
    const bg_policy_t *p = pe->cfg->policy;
    const char *reg = consents != NULL ? consents : (p != NULL ? p->consent_registry : NULL);
    if (reg != NULL) {
        if (access(reg, R_OK) != 0) {
            /* as strict as possible: no consent holds */
            fprintf(stderr,
                    "bordergate replay: warning: consent registry %s: %s: no consent holds\n", reg,
                    strerror(errno));
        } else {
            bg_consent_options_t o;
            memset(&o, 0, sizeof o);
            o.readonly = 1;
            o.check_interval_ms = -1;
            char err[512];
            char *warning = NULL;
            pe->consent = bg_consent_open(reg, p->subject_key, p->subject_key_len, &o, &warning,
                                          err, sizeof err);
            free(warning);
            if (pe->consent == NULL) {
                fprintf(stderr, "bordergate replay: consent registry: %s\n", err);
                bg_config_unref(pe->cfg);
                pe->cfg = NULL;
                return -1;
            }
        }
    }
    pe->ctx.cfg = pe->cfg;
    pe->ctx.consent = pe->consent;
    pe->ctx.now_ms = now;
    return 0;
}

void bg_cli_replay_free_policy(bg_cli_replay_policy_t *pe)
{
    bg_consent_close(pe->consent);
    bg_config_unref(pe->cfg);
    memset(pe, 0, sizeof *pe);
}

const char *bg_cli_replay_jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

void bg_cli_replay_label(json_t *line, char *out, size_t cap)
{
    const char *url = bg_cli_replay_jstr(line, "url");
    const char *p = strstr(url, "://");
    snprintf(out, cap, "entry %lld %s %s",
             (long long)json_integer_value(json_object_get(line, "entry")),
             bg_cli_replay_jstr(line, "method"), p != NULL ? p + 3 : url);
}

json_t *bg_cli_replay_match_finding(json_t *act, json_t *xf, char *used)
{
    size_t i;
    json_t *f = NULL;
    json_array_foreach(act, i, f)
    {
        if (used[i])
            continue;
        if (strcmp(bg_cli_replay_jstr(f, "path"), bg_cli_replay_jstr(xf, "path")) == 0 &&
            (json_object_get(xf, "category") == NULL ||
             strcmp(bg_cli_replay_jstr(f, "category"), bg_cli_replay_jstr(xf, "category")) == 0)) {
            used[i] = 1;
            return f;
        }
    }
    return NULL;
}

void bg_cli_replay_diff(void *arg, const char *msg)
{
    bg_cli_replay_diffs_t *pc = arg;
    printf("%s: %s\n", pc->label, msg);
    pc->counts->differences++;
}

void bg_cli_replay_print_json(json_t *line)
{
    char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}
int bg_cli_replay_always(const bg_cli_replay_opts_t *o)
{
    (void)o;
    return 1;
}
