/*
 * `bordergate audit subject`: every decision naming one data subject, from
 * their identifiers (pseudonymized here with the subject key exactly as
 * the proxy does, in their usual written forms; none is printed) or from
 * pseudonyms. The look-up is audit/report_subject.c's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/report.h"
#include "cli/audit_cli.h"
#include "common/hex.h"
#include "common/keys.h"
#include "common/pseudonym.h"
#include "common/util.h"

#define SUBJECT_MAX_IDS 32
#define SUBJECT_MAX_FORMS 8

enum { S_FROM, S_TO, S_KEY, S_KEY_ENV, S_ID, S_PSEUDONYM, S_PREFIX, S_JSON };

typedef struct {
    int64_t from, to;
    const char *prefix, *keyfile, *keyenv;
    int json, stdin_ids;
    char **ops;
    size_t nops, nids, npseudo, nhex;
    const char *ids[SUBJECT_MAX_IDS], *pseudo[SUBJECT_MAX_IDS];
    const char *hexp[SUBJECT_MAX_IDS * SUBJECT_MAX_FORMS];
    char kid[17];
} subject_ctx_t;

/* Identifiers and their forms: static (large), wiped after every run. */
static char idbuf[SUBJECT_MAX_IDS * (BG_REPORT_ID_MAX + 1)];
static char forms[SUBJECT_MAX_FORMS][BG_REPORT_ID_MAX];
static char hex[SUBJECT_MAX_IDS * SUBJECT_MAX_FORMS][65];

static void subject_usage(FILE *fp)
{
    fprintf(fp,
            "usage: bordergate audit subject (ID|-) [--id ID]... (--key FILE | --key-env NAME)\n"
            "           DIR|FILE...\n"
            "       bordergate audit subject --pseudonym HEX [--pseudonym HEX]... DIR|FILE...\n"
            "           [--from DATE] [--to DATE] [--prefix P] [--json]\n"
            "\n"
            "Every decision record naming one data subject under ANY of their identifiers\n"
            "(account id, phone, e-mail, ID number...): when, to which recipient and\n"
            "country, which categories, on which basis and evidence, what was done. Each\n"
            "identifier is pseudonymized with the policy's subject key (keys.subject)\n"
            "exactly as the proxy does, in its usual written forms (a phone with and\n"
            "without +86 and separators, an e-mail in lower case); none is printed.\n"
            "\"-\" reads the identifiers from standard input, one a line, which keeps\n"
            "them out of the shell history and process list.\n");
}

static int subject_option(void *arg, int id, const char *v)
{
    subject_ctx_t *x = arg;
    switch (id) {
    case S_FROM: return bg_cli_audit_date("subject", "--from", v, &x->from, &x->to);
    case S_TO: return bg_cli_audit_date("subject", "--to", v, &x->from, &x->to);
    case S_KEY: x->keyfile = v; break;
    case S_KEY_ENV: x->keyenv = v; break;
    case S_ID:
        if (x->nids == SUBJECT_MAX_IDS) {
            fprintf(stderr, "bordergate audit subject: at most %d identifiers\n", SUBJECT_MAX_IDS);
            return 2;
        }
        x->ids[x->nids++] = v;
        break;
    case S_PSEUDONYM:
        if (x->npseudo == SUBJECT_MAX_IDS) {
            fprintf(stderr, "bordergate audit subject: at most %d pseudonyms\n", SUBJECT_MAX_IDS);
            return 2;
        }
        x->pseudo[x->npseudo++] = v;
        break;
    case S_PREFIX: x->prefix = v; break;
    case S_JSON: x->json = 1; break;
    default: break;
    }
    return BG_CLI_AUDIT_GO;
}

static int subject_operand(void *arg, const char *a)
{
    subject_ctx_t *x = arg;
    x->ops[x->nops++] = (char *)a;
    return BG_CLI_AUDIT_GO;
}

static const bg_cli_audit_opt_t subject_opts[] = {{"--from", S_FROM, "a DATE", 1},
                                                  {"--to", S_TO, "a DATE", 1},
                                                  {"--key", S_KEY, "FILE", 0},
                                                  {"--key-env", S_KEY_ENV, "NAME", 0},
                                                  {"--id", S_ID, "ID", 0},
                                                  {"--pseudonym", S_PSEUDONYM, "HEX", 0},
                                                  {"--prefix", S_PREFIX, "P", 0},
                                                  {"--json", S_JSON, NULL, 0},
                                                  {NULL, 0, NULL, 0}};

static const bg_cli_audit_cmd_t subject_cmd = {
    "subject", subject_opts, subject_usage, subject_option, subject_operand, NULL, 0};

/*
 * After parsing: without --pseudonym the first operand is an identifier
 * (or "-"; --id adds more) and a key is needed; with it, neither.
 * BG_CLI_AUDIT_GO (*FIRST_PATH the first audit operand), or 2.
 */
static int subject_check(subject_ctx_t *x, size_t *first_path)
{
    *first_path = x->npseudo == 0 ? 1 : 0;
    if (x->nops <= *first_path) {
        fprintf(stderr, "bordergate audit subject: give %sthe audit directory or files\n",
                *first_path ? "the subject's identifier (or - for standard input) and " : "");
        subject_usage(stderr);
        return 2;
    }
    if (*first_path) {
        if (strcmp(x->ops[0], "-") == 0) {
            x->stdin_ids = 1;
        } else if (x->nids == SUBJECT_MAX_IDS) {
            fprintf(stderr, "bordergate audit subject: at most %d identifiers\n", SUBJECT_MAX_IDS);
            return 2;
        } else { /* the operand first: it names the document's "pseudonym" */
            memmove(x->ids + 1, x->ids, x->nids * sizeof *x->ids);
            x->ids[0] = x->ops[0];
            x->nids++;
        }
    }
    if (x->npseudo > 0 &&
        (x->nids > 0 || x->stdin_ids || x->keyfile != NULL || x->keyenv != NULL)) {
        fprintf(stderr, "bordergate audit subject: --pseudonym takes no identifier and no key\n");
        return 2;
    }
    if (x->npseudo == 0 && (x->keyfile == NULL) == (x->keyenv == NULL)) {
        fprintf(stderr,
                "bordergate audit subject: give the subject key: --key FILE or --key-env NAME "
                "(the policy's keys.subject)\n");
        return 2;
    }
    return BG_CLI_AUDIT_GO;
}

/*
 * Read the identifiers of "-": every non-empty line of standard input (CR
 * LF or LF), at most SUBJECT_MAX_IDS, into IDS (pointers into BUF).
 * Returns 0, or -1 when there are too many or a line is too long.
 */
static int read_ids(char *buf, size_t cap, const char **ids, size_t *nids)
{
    size_t used = 0;
    char line[BG_REPORT_ID_MAX + 2];
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t l = strlen(line);
        if (l == sizeof line - 1 && line[l - 1] != '\n')
            return -1;
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = '\0';
        if (l == 0)
            continue;
        if (*nids == SUBJECT_MAX_IDS || used + l + 1 > cap)
            return -1;
        memcpy(buf + used, line, l + 1);
        ids[(*nids)++] = buf + used;
        used += l + 1;
    }
    bg_util_wipe(line, sizeof line);
    return 0;
}

/* The identifiers' pseudonyms in every written form under the subject key
 * (loaded here, wiped after use) into X->hexp. 0, or 1 (2 for a malformed
 * --pseudonym) with the message printed. */
static int subject_pseudonyms(subject_ctx_t *x)
{
    unsigned char key[64];
    size_t keylen = 0;
    char err[512];
    int rc = 1;
    for (size_t i = 0; i < x->npseudo; i++) {
        if (bg_hex_lower(x->pseudo[i], 32, hex[x->nhex]) != 0) {
            fprintf(stderr, "bordergate audit subject: --pseudonym must be 64 hex digits\n");
            return 2;
        }
        x->hexp[x->nhex] = hex[x->nhex];
        x->nhex++;
    }
    if (x->npseudo > 0)
        return 0;
    if (x->stdin_ids && read_ids(idbuf, sizeof idbuf, x->ids, &x->nids) != 0) {
        fprintf(stderr,
                "bordergate audit subject: at most %d identifiers of at most %d bytes, one a "
                "line\n",
                SUBJECT_MAX_IDS, BG_REPORT_ID_MAX - 1);
        return 1;
    }
    if (x->nids == 0) {
        fprintf(stderr, "bordergate audit subject: the subject id is empty\n");
        return 1;
    }
    if (bg_key_load(x->keyfile, x->keyenv, key, sizeof key, &keylen, x->kid, err, sizeof err) !=
        0) {
        fprintf(stderr, "bordergate audit subject: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < x->nids; i++) {
        size_t nf = bg_report_identifier_forms(x->ids[i], forms, SUBJECT_MAX_FORMS);
        if (x->ids[i][0] == '\0' || nf == 0) {
            fprintf(stderr,
                    "bordergate audit subject: an identifier is empty or longer than %d bytes\n",
                    BG_REPORT_ID_MAX - 1);
            goto out;
        }
        for (size_t k = 0; k < nf; k++) {
            if (bg_pseudonym(key, keylen, forms[k], strlen(forms[k]), hex[x->nhex]) != 0) {
                fprintf(stderr, "bordergate audit subject: cannot compute the pseudonym\n");
                goto out;
            }
            x->hexp[x->nhex] = hex[x->nhex];
            x->nhex++;
        }
    }
    rc = 0;
out:
    bg_util_wipe(key, sizeof key);
    return rc;
}

/* The `audit subject` document DOC for people. */
static void print_subject(const json_t *doc, FILE *out)
{
    const json_t *subj = json_object_get(doc, "subject");
    const json_t *sum = json_object_get(doc, "summary");
    const char *kid = json_string_value(json_object_get(subj, "key_id"));
    const json_t *all = json_object_get(subj, "pseudonyms");
    fprintf(out, "Data subject %s", json_string_value(json_object_get(subj, "pseudonym")));
    if (json_array_size(all) > 1)
        fprintf(out, " and %zu other pseudonym(s) of the identifiers given",
                json_array_size(all) - 1);
    if (kid != NULL)
        fprintf(out, " (subject key id %s)", kid);
    fprintf(out,
            "\n%" JSON_INTEGER_FORMAT " decision(s) name this subject; in %" JSON_INTEGER_FORMAT
            " of them their personal information left mainland China as personal information; "
            "%" JSON_INTEGER_FORMAT " were blocked.\n",
            json_integer_value(json_object_get(sum, "decisions")),
            json_integer_value(json_object_get(sum, "transfers")),
            json_integer_value(json_object_get(sum, "blocked")));
    size_t i, k;
    const json_t *e, *f;
    json_array_foreach(json_object_get(doc, "decisions"), i, e)
    {
        const json_t *rc = json_object_get(e, "recipient");
        const json_t *dst = json_object_get(e, "destination");
        const json_t *comp = json_object_get(e, "completion");
        const char *cc = json_string_value(json_object_get(dst, "country"));
        fprintf(out, "\n%s  decision %s\n", json_string_value(json_object_get(e, "time")),
                json_string_value(json_object_get(e, "decision_id")));
        if (json_is_object(rc))
            fprintf(out, "  recipient    %s - %s (%s)",
                    json_string_value(json_object_get(rc, "id")),
                    json_string_value(json_object_get(rc, "legal_entity")),
                    json_string_value(json_object_get(rc, "relationship")));
        else
            fprintf(out, "  recipient    (none declared)");
        const char *purpose = json_string_value(json_object_get(e, "purpose"));
        fprintf(out, "%s%s\n", purpose ? "; purpose " : "", purpose ? purpose : "");
        fprintf(out, "  destination  %s (%s), host %s, route %s\n", cc ? cc : "unknown country",
                json_string_value(json_object_get(dst, "region")),
                json_string_value(json_object_get(e, "host")),
                json_string_value(json_object_get(e, "route")));
        fprintf(out, "  outcome      %s (%s)", json_string_value(json_object_get(e, "outcome")),
                json_string_value(json_object_get(e, "mode")));
        const char *would = json_string_value(json_object_get(e, "would"));
        const char *outcome = json_string_value(json_object_get(e, "outcome"));
        if (would != NULL && outcome != NULL && strcmp(would, outcome) != 0)
            fprintf(out, ", enforcement would %s", would);
        fprintf(out, "; mechanism %s\n", json_string_value(json_object_get(e, "mechanism")));
        if (json_is_object(comp)) {
            fprintf(out, "  result       %s", json_string_value(json_object_get(comp, "result")));
            if (json_is_integer(json_object_get(comp, "upstream_status")))
                fprintf(out, ", upstream status %" JSON_INTEGER_FORMAT,
                        json_integer_value(json_object_get(comp, "upstream_status")));
            fprintf(out, "\n");
        }
        if (json_is_true(json_object_get(e, "minor")))
            fprintf(out, "  the subject is a minor: all their data counts as sensitive\n");
        if (json_array_size(json_object_get(e, "findings")) == 0)
            fprintf(out, "  (the request named this subject; none of their personal information "
                         "was found)\n");
        json_array_foreach(json_object_get(e, "findings"), k, f)
        {
            const char *ev = json_string_value(json_object_get(f, "evidence"));
            const char *op = json_string_value(json_object_get(f, "operator"));
            const char *left = "did not leave as PI";
            if (json_is_true(json_object_get(f, "left_as_pi"))) {
                const char *mode = json_string_value(json_object_get(e, "mode"));
                const char *act = json_string_value(json_object_get(f, "action"));
                left = mode != NULL && strcmp(mode, "monitor") == 0
                           ? "left as PI (monitor mode: forwarded unchanged)"
                       : act != NULL && strcmp(act, "deidentify") == 0
                           ? "left as PI (pseudonymized)"
                           : "left as PI";
            }
            char cat[96], basis[256], act[96];
            snprintf(cat, sizeof cat, "%s%s", json_string_value(json_object_get(f, "category")),
                     json_is_true(json_object_get(f, "sensitive")) ? " (sensitive)" : "");
            snprintf(basis, sizeof basis, "%s%s%s", json_string_value(json_object_get(f, "basis")),
                     ev ? ": " : "", ev ? ev : "");
            snprintf(act, sizeof act, "%s%s%s%s", json_string_value(json_object_get(f, "action")),
                     op ? " (" : "", op ? op : "", op ? ")" : "");
            fprintf(out, "    %-26s %-24s basis %-34s %-20s %s\n", cat,
                    json_string_value(json_object_get(f, "path")), basis, act, left);
        }
    }
    static const char *const lists[] = {"recipients", "countries", "categories", "bases"};
    fprintf(out, "\nWhat left mainland China as personal information:\n");
    for (size_t j = 0; j < 4; j++) {
        const json_t *a = json_object_get(sum, lists[j]);
        fprintf(out, "  %-11s", lists[j]);
        if (json_array_size(a) == 0)
            fprintf(out, " (none)");
        json_array_foreach(a, k, f)
        {
            fprintf(out, "%s%s", k == 0 ? " " : ", ", json_string_value(f));
        }
        fprintf(out, "\n");
    }
}

/* The look-up over the audit operands OPS[0..N) with X's pseudonyms, printed
 * (table or --json). 0, or 1 with the message printed. */
static int subject_run(subject_ctx_t *x, char *const *ops, size_t n)
{
    char **files = NULL, err[512];
    size_t nfiles = 0;
    int rc = 1;
    json_t *doc = NULL;
    bg_report_scan_stats_t st;
    memset(&st, 0, sizeof st);
    if (bg_report_expand(ops, n, x->prefix, &files, &nfiles, err, sizeof err) != 0) {
        fprintf(stderr, "bordergate audit subject: %s\n", err);
        goto out;
    }
    doc = bg_report_subject((const char *const *)files, nfiles, x->hexp, x->nhex, x->from, x->to,
                            &st, err, sizeof err);
    if (doc == NULL) {
        fprintf(stderr, "bordergate audit subject: %s\n", err);
        goto out;
    }
    json_t *subj = json_object_get(doc, "subject");
    json_object_set_new(subj, "key_id", x->kid[0] ? json_string(x->kid) : json_null());
    json_object_set_new(subj, "identifiers",
                        json_integer((json_int_t)(x->npseudo ? x->npseudo : x->nids)));
    json_t *in = json_object();
    json_object_set_new(in, "files", json_integer((json_int_t)st.files));
    json_object_set_new(in, "lines", json_integer((json_int_t)st.lines));
    json_object_set_new(in, "unparsable_lines", json_integer((json_int_t)st.unparsable));
    json_object_set_new(in, "incomplete_lines", json_integer((json_int_t)st.torn));
    json_object_set_new(doc, "input", in);
    if (x->json) {
        rc = bg_cli_audit_json(doc);
        doc = NULL;
    } else {
        print_subject(doc, stdout);
        if (st.unparsable > 0 || st.torn > 0)
            printf("note: %" PRIu64 " unparsable and %" PRIu64
                   " incomplete line(s) were skipped; run "
                   "`bordergate audit verify`.\n",
                   st.unparsable, st.torn);
        rc = 0;
    }
out:
    json_decref(doc);
    if (files != NULL)
        bg_audit_free_list(files, nfiles);
    return rc;
}

/* `audit subject`: 0 (also when no record names the subject), 1 on
 * errors, 2 usage. */
int bg_cli_audit_subject(int argc, char **argv)
{
    subject_ctx_t x;
    size_t first_path = 0;
    memset(&x, 0, sizeof x);
    x.from = x.to = BG_REPORT_NO_TIME;
    x.prefix = "audit";
    if ((x.ops = calloc((size_t)argc + 1, sizeof *x.ops)) == NULL)
        return 1;
    int rc = bg_cli_audit_parse(&subject_cmd, argc, argv, &x);
    if (rc == BG_CLI_AUDIT_GO)
        rc = subject_check(&x, &first_path);
    if (rc == BG_CLI_AUDIT_GO && (rc = subject_pseudonyms(&x)) == 0)
        rc = subject_run(&x, x.ops + first_path, x.nops - first_path);
    bg_util_wipe(idbuf, sizeof idbuf);
    bg_util_wipe(forms, sizeof forms);
    free(x.ops);
    return rc;
}
