/*
 * The `audit report` table for people (bg_report_print): the same counts as
 * bg_report_json, in columns, with the notes a reader needs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/audit.h"
#include "audit/counters.h"
#include "audit/report_int.h"
#include "audit/rollup.h"
#include "common/chinatime.h"
#include "common/hex.h"
#include "common/pseudonym.h"
#include "common/util.h"
#include "policy/policy.h"

static const char *no_key_label(bg_report_by_t by)
{
    switch (by) {
    case BG_REPORT_BY_RECIPIENT: return "(no recipient)";
    case BG_REPORT_BY_COUNTRY: return "(unknown)";
    case BG_REPORT_BY_CATEGORY:
    case BG_REPORT_BY_BASIS:
    case BG_REPORT_BY_RULE: return "(no findings)";
    case BG_REPORT_BY_REASON: return "(no reason)";
    case BG_REPORT_BY_DAY:
    case BG_REPORT_BY_HOUR: return "(no time)";
    default: return "(none)";
    }
}

static void print_counts(FILE *out, const counts_t *c)
{
    fprintf(out,
            " %9" PRIu64 " %7" PRIu64 " %7" PRIu64 " %10" PRIu64 " %6" PRIu64 " %9" PRIu64
            " %9" PRIu64 " %10" PRIu64 " %9" PRIu64 " %13" PRIu64,
            c->decisions, c->cross_border, c->outcome[0], c->outcome[1], c->outcome[2], c->findings,
            c->sensitive, c->left, (uint64_t)c->subjects.n, (uint64_t)c->subjects_left.n);
}

/* Append to BUF (CAP bytes, at *O) as snprintf would, never past the end. */
static void bufcat(char *buf, size_t cap, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bufcat(char *buf, size_t cap, size_t *o, const char *fmt, ...)
{
    if (*o >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *o, cap - *o, fmt, ap);
    va_end(ap);
    if (n > 0)
        *o = *o + (size_t)n < cap ? *o + (size_t)n : cap - 1;
}

/* The row's mechanisms, "standard_contract:SC-1 (3), exempt:basis (1)"
 * (counts only when several), into BUF. */
static void mech_text(const counts_t *c, char *buf, size_t cap)
{
    size_t i, o = 0;
    const json_t *e;
    buf[0] = '\0';
    json_t *a = bg_report_mech_json(c->mech);
    json_array_foreach(a, i, e)
    {
        bufcat(buf, cap, &o, "%s%s", i ? ", " : "",
               json_string_value(json_object_get(e, "mechanism")));
        if (json_array_size(a) > 1)
            bufcat(buf, cap, &o, " (%" JSON_INTEGER_FORMAT ")",
                   json_integer_value(json_object_get(e, "decisions")));
    }
    json_decref(a);
}

/* The row's rules and clauses, "r1: WADesk 4.2.1; r2: (no clause)", into BUF. */
static void rules_text(const counts_t *c, char *buf, size_t cap)
{
    size_t i, o = 0;
    const json_t *e;
    buf[0] = '\0';
    json_t *a = bg_report_rules_json(c->rules);
    json_array_foreach(a, i, e)
    {
        const char *cl = json_string_value(json_object_get(e, "clause"));
        const char *cf = json_string_value(json_object_get(e, "clause_from"));
        bufcat(buf, cap, &o, "%s%s: %s%s", i ? "; " : "",
               json_string_value(json_object_get(e, "rule")), cl != NULL ? cl : "(no clause)",
               cf != NULL && strcmp(cf, "other_policy") == 0 ? " [from another policy]" : "");
    }
    json_decref(a);
}

void bg_report_print(const bg_report_t *r, const bg_report_scan_stats_t *scan, FILE *out)
{
    char a[40], b[40];
    size_t nd = r->dims.ndims;
    if (r->from != BG_REPORT_NO_TIME)
        bg_report_china_time(r->from, a, sizeof a);
    if (r->to != BG_REPORT_NO_TIME)
        bg_report_china_time(r->to, b, sizeof b);
    fprintf(out, "Audit report: decisions from %s to %s (China time; the end excluded)\n",
            r->from != BG_REPORT_NO_TIME ? a : "the start of the log",
            r->to != BG_REPORT_NO_TIME ? b : "its end");
    if (scan != NULL)
        fprintf(out,
                "read %" PRIu64 " file(s), %" PRIu64 " line(s); %" PRIu64
                " decision(s) in the window\n",
                scan->files, scan->lines, r->total.decisions);
    fprintf(out, "\n");
    int w[BG_REPORT_MAX_DIMS] = {14};
    for (size_t k = 0; k < nd; k++) {
        const char *name = bg_report_by_name(r->dims.dims[k]);
        w[k] = nd > 1 ? (int)strlen(name) : 14;
        if (k == 0 && w[0] < 5)
            w[0] = 5; /* "TOTAL" */
        for (size_t i = 0; i < r->ngroups; i++) {
            const char *key = r->groups[i].key[k];
            int l = (int)strlen(key ? key : no_key_label(r->dims.dims[k]));
            if (l > w[k])
                w[k] = l < 48 ? l : 48;
        }
    }
    if (nd == 0)
        w[0] = 14;
    int mw = 9; /* "MECHANISM" */
    char text[512];
    for (size_t i = 0; r->want_mech && i < r->ngroups; i++) {
        mech_text(&r->groups[i].c, text, sizeof text);
        if ((int)strlen(text) > mw)
            mw = strlen(text) < 60 ? (int)strlen(text) : 60;
    }
    size_t ncol = nd > 0 ? nd : 1;
    for (size_t k = 0; k < ncol; k++) {
        char head[64];
        const char *by = nd > 0 ? bg_report_by_name(r->dims.dims[k]) : "";
        snprintf(head, sizeof head, "%s", by);
        for (char *p = head; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        fprintf(out, "%s%-*s", k ? " " : "", w[k], head);
    }
    fprintf(out, " %9s %7s %7s %10s %6s %9s %9s %10s %9s %13s", "DECISIONS", "ABROAD", "ALLOW",
            "DEIDENTIFY", "BLOCK", "FINDINGS", "SENSITIVE", "LEFT AS PI", "SUBJECTS",
            "THEIR PI LEFT");
    if (r->want_mech)
        fprintf(out, "  %-*s", mw, "MECHANISM");
    if (r->want_rules)
        fprintf(out, "  RULE: CLAUSE");
    fprintf(out, "\n");
    if (nd > 0) {
        bg_report_sort_groups(r);
        for (size_t i = 0; i < r->ngroups; i++) {
            for (size_t k = 0; k < nd; k++) {
                const char *key = r->groups[i].key[k];
                fprintf(out, "%s%-*s", k ? " " : "", w[k],
                        key ? key : no_key_label(r->dims.dims[k]));
            }
            print_counts(out, &r->groups[i].c);
            if (r->want_mech) {
                mech_text(&r->groups[i].c, text, sizeof text);
                fprintf(out, "  %-*s", mw, text);
            }
            if (r->want_rules) {
                rules_text(&r->groups[i].c, text, sizeof text);
                fprintf(out, "  %s", text);
            }
            fprintf(out, "\n");
        }
    }
    fprintf(out, "%-*s", w[0], "TOTAL");
    for (size_t k = 1; k < ncol; k++)
        fprintf(out, " %-*s", w[k], "");
    print_counts(out, &r->total);
    fprintf(out, "\n");
    fprintf(out,
            "\nABROAD: destination outside mainland China (an unknown country counts as abroad).\n"
            "ALLOW / DEIDENTIFY / BLOCK: what happened to the request. LEFT AS PI: findings that\n"
            "left as personal information (allowed, pseudonymized, or forwarded in monitor mode).\n"
            "SUBJECTS: distinct data subjects (pseudonyms); THEIR PI LEFT: those whose PI left as\n"
            "PI (what the yearly counters count). TOTAL counts each subject once.\n");
    if (r->want_mech)
        fprintf(out, "MECHANISM: the transfer mechanism the row's decisions relied on (decisions "
                     "per mechanism when several).\n");
    if (r->want_rules)
        fprintf(out,
                "RULE: CLAUSE: the policy rules applied to the row's findings and the clause each\n"
                "enforces (from the record, else from the policy given with --config).\n");
    if (nd == 1 && bg_report_finding_dim(r->by))
        fprintf(out, "A decision with findings in several %s counts once in each.\n",
                r->by == BG_REPORT_BY_CATEGORY ? "categories"
                : r->by == BG_REPORT_BY_BASIS  ? "bases"
                                               : "rules");
    if (nd > 1 && r->finding_dims)
        fprintf(out, "Each finding counts in the row of its own values; a decision counts once in "
                     "each row its findings reach.\n");
    if (r->reason_dim)
        fprintf(out,
                "REASON: the reason codes of blocks and fallbacks (docs/policy.md); a decision\n"
                "with several codes counts once in each.\n");
    for (size_t k = 0; k < nd; k++)
        if (r->dims.dims[k] == BG_REPORT_BY_DAY || r->dims.dims[k] == BG_REPORT_BY_HOUR)
            fprintf(out, "%s in China time (UTC+8).\n",
                    r->dims.dims[k] == BG_REPORT_BY_DAY ? "Days" : "Hours");
    if (r->total.monitor > 0)
        fprintf(out,
                "%" PRIu64
                " decision(s) in monitor mode were forwarded unchanged; enforcement would "
                "have de-identified %" PRIu64 " and blocked %" PRIu64 " of all decisions.\n",
                r->total.monitor, r->total.would[1], r->total.would[2]);
    if (scan != NULL && (scan->unparsable > 0 || scan->torn > 0))
        fprintf(out,
                "note: %" PRIu64 " unparsable and %" PRIu64 " incomplete line(s) were skipped; "
                "run `bordergate audit verify`.\n",
                scan->unparsable, scan->torn);
    if (r->oom)
        fprintf(out, "warning: out of memory: some subjects were not counted.\n");
}
