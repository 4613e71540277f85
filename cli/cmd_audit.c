/*
 * `bordergate audit ...`: the dispatch, the one option parser every audit
 * subcommand uses (a table of options per subcommand, handlers for options
 * and operands), and the subcommands report, blocked, verify and rebuild
 * (subject: cli/audit_subject.c, volumes: cli/audit_volumes.c). The
 * counting, reading and verifying are audit/'s; this file parses, prints
 * and picks the exit status (0 done, 1 an error, 2 a usage error).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/report.h"
#include "audit/rollup.h"
#include "cli/audit_cli.h"
#include "cli/cli.h"

/* ------------------------------------------------------------------------
 * The option parser
 * ------------------------------------------------------------------------ */

static const bg_cli_audit_opt_t *find_opt(const bg_cli_audit_opt_t *opts, const char *a)
{
    for (; opts->name != NULL; opts++)
        if (strcmp(opts->name, a) == 0)
            return opts;
    return NULL;
}

int bg_cli_audit_parse(const bg_cli_audit_cmd_t *c, int argc, char **argv, void *ctx)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const bg_cli_audit_opt_t *o = find_opt(c->opts, a);
        int r;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->usage(stdout);
            return 0;
        }
        if (o != NULL && o->need == NULL) {
            r = c->option(ctx, o->id, NULL);
        } else if (o != NULL && i + 1 < argc) {
            r = c->option(ctx, o->id, argv[++i]);
        } else if (o != NULL && o->strict) {
            fprintf(stderr, "bordergate audit %s: %s needs %s\n", c->cmd, a, o->need);
            return 2;
        } else if (a[0] == '-' && (a[1] != '\0' || c->dash_is_option)) {
            if (c->unknown != NULL)
                return c->unknown(ctx, a);
            fprintf(stderr, "bordergate audit %s: unknown option '%s'\n", c->cmd, a);
            c->usage(stderr);
            return 2;
        } else {
            r = c->operand(ctx, a);
        }
        if (r != BG_CLI_AUDIT_GO)
            return r;
    }
    return BG_CLI_AUDIT_GO;
}

int bg_cli_audit_date(const char *cmd, const char *opt, const char *value, int64_t *from,
                      int64_t *to)
{
    int end = strcmp(opt, "--to") == 0;
    if (bg_report_parse_date(value, end, end ? to : from) != 0) {
        fprintf(
            stderr,
            "bordergate audit %s: %s '%s' is not YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]\n",
            cmd, opt, value);
        return 2;
    }
    return BG_CLI_AUDIT_GO;
}

int bg_cli_audit_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    if (text == NULL) {
        fprintf(stderr, "bordergate audit: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/*
 * `--config POLICY` of report, blocked and volumes, taken out of ARGV
 * before anything else is parsed (and read before: a policy that cannot
 * be read fails first) into *PATH (NULL without one); the other arguments
 * into *AV (a new array of ARGC + EXTRA slots, free it). 0, 1 when out of
 * memory, 2 when --config has no value.
 */
static int take_config(int argc, char **argv, int extra, const char **path, char ***av, int *ac)
{
    *path = NULL;
    *ac = 0;
    if ((*av = calloc((size_t)argc + (size_t)extra, sizeof **av)) == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bordergate audit %s: --config needs a file\n", argv[0]);
                free(*av);
                *av = NULL;
                return 2;
            }
            *path = argv[++i];
            continue;
        }
        (*av)[(*ac)++] = argv[i];
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * `audit report` and `audit blocked`
 * ------------------------------------------------------------------------ */

enum { O_FROM, O_TO, O_BY, O_PREFIX, O_JSON, O_RAW, O_LIMIT, O_KEY, O_KEY_ENV };

typedef struct {
    const char *cmd;
    int64_t from, to;
    bg_report_dims_t dims;
    const char *prefix;
    int json, raw, limit;
    char **ops;
    size_t nops;
} list_ctx_t;

static int list_option(void *arg, int id, const char *v)
{
    list_ctx_t *x = arg;
    char err[512], *end;
    long n;
    switch (id) {
    case O_FROM: return bg_cli_audit_date(x->cmd, "--from", v, &x->from, &x->to);
    case O_TO: return bg_cli_audit_date(x->cmd, "--to", v, &x->from, &x->to);
    case O_BY:
        if (bg_report_dims_parse(v, &x->dims, err, sizeof err) != 0) {
            fprintf(stderr, "bordergate audit %s: --by: %s\n", x->cmd, err);
            return 2;
        }
        break;
    case O_LIMIT:
        n = strtol(v, &end, 10);
        if (*end != '\0' || n < 1 || n > BG_REPORT_BLOCKED_MAX) {
            fprintf(stderr, "bordergate audit %s: --limit must be 1..%d\n", x->cmd,
                    BG_REPORT_BLOCKED_MAX);
            return 2;
        }
        x->limit = (int)n;
        break;
    case O_PREFIX: x->prefix = v; break;
    case O_JSON: x->json = 1; break;
    case O_RAW: x->raw = 1; break;
    default: break;
    }
    return BG_CLI_AUDIT_GO;
}

static int list_operand(void *arg, const char *a)
{
    list_ctx_t *x = arg;
    x->ops[x->nops++] = (char *)a;
    return BG_CLI_AUDIT_GO;
}

/* Parse report's or blocked's ARGV with C into X (OPS allocated, free it)
 * and check the operands and the window. BG_CLI_AUDIT_GO or an exit status. */
static int list_parse(const bg_cli_audit_cmd_t *c, int argc, char **argv, list_ctx_t *x)
{
    x->cmd = c->cmd;
    x->from = x->to = BG_REPORT_NO_TIME;
    x->prefix = "audit";
    if ((x->ops = calloc((size_t)argc + 1, sizeof *x->ops)) == NULL)
        return 1;
    int rc = bg_cli_audit_parse(c, argc, argv, x);
    if (rc != BG_CLI_AUDIT_GO)
        return rc;
    if (x->nops == 0) {
        fprintf(stderr, "bordergate audit %s: give the audit directory or files\n", c->cmd);
        c->usage(stderr);
        return 2;
    }
    if (x->from != BG_REPORT_NO_TIME && x->to != BG_REPORT_NO_TIME && x->to <= x->from) {
        fprintf(stderr, "bordergate audit %s: --to must be after --from\n", c->cmd);
        return 2;
    }
    return BG_CLI_AUDIT_GO;
}

static void report_usage(FILE *fp)
{
    fprintf(fp, "usage: bordergate audit report [--from DATE] [--to DATE]\n"
                "           [--by KEY[,KEY...]] [--config POLICY] [--json]\n"
                "           [--prefix P] [--raw] DIR|FILE...\n"
                "\n"
                "Counts the decision records of the window: transfers, outcomes, findings,\n"
                "sensitive findings, distinct data subjects (pseudonyms), grouped by KEY or by\n"
                "every combination of several KEYs (\"--by recipient,category,basis\"):\n"
                "recipient, country, category, basis, rule, outcome, route, reason, day, hour.\n"
                "Rows grouped by recipient show the transfer mechanisms; rows grouped by\n"
                "category, basis or rule show the rules applied and their clauses (from the\n"
                "record, else from --config POLICY).\n"
                "DATE: YYYY-MM-DD (China time; --to includes that day) or\n"
                "YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM] (China time without a zone); --to is exclusive.\n"
                "A directory stands for its PREFIX-*.jsonl files (prefix \"audit\").\n"
                "Directories are read through their rollups (DIR/PREFIX.rollup/, kept by the\n"
                "daemon) when the window's bounds are whole hours; several directories (one\n"
                "per instance) are merged. --raw reads every raw record instead.\n");
}

static const bg_cli_audit_opt_t report_opts[] = {{"--from", O_FROM, "a DATE", 1},
                                                 {"--to", O_TO, "a DATE", 1},
                                                 {"--by", O_BY, "KEYS", 0},
                                                 {"--prefix", O_PREFIX, "P", 0},
                                                 {"--json", O_JSON, NULL, 0},
                                                 {"--raw", O_RAW, NULL, 0},
                                                 {NULL, 0, NULL, 0}};

static const bg_cli_audit_cmd_t report_cmd = {
    "report", report_opts, report_usage, list_option, list_operand, NULL, 0};

/* `audit report`: the counts of the window, as a table or --json. POL: the
 * clauses of --config POLICY, or NULL. */
static int cmd_report(int argc, char **argv, const bg_report_policy_t *pol)
{
    list_ctx_t x = {0};
    bg_report_scan_stats_t st;
    char err[512];
    bg_report_t *r = NULL;
    int rc = list_parse(&report_cmd, argc, argv, &x);
    if (rc != BG_CLI_AUDIT_GO)
        goto out;
    r = bg_report_collect(&x.dims, x.from, x.to, pol, x.ops, x.nops, x.prefix, x.raw, &st, err,
                          sizeof err);
    if (r == NULL) {
        fprintf(stderr, "bordergate audit report: %s\n", err);
        rc = 1;
        goto out;
    }
    if (x.json) {
        rc = bg_cli_audit_json(bg_report_json(r, &st));
    } else {
        bg_report_print(r, &st, stdout);
        rc = 0;
    }
    if (bg_report_oom(r))
        rc = 1;
out:
    bg_report_free(r);
    free(x.ops);
    return rc;
}

static void blocked_usage(FILE *fp)
{
    fprintf(fp,
            "usage: bordergate audit blocked [--limit N] [--from DATE] [--to DATE] [--json]\n"
            "           [--config POLICY] [--prefix P] DIR|FILE...\n"
            "\n"
            "The latest N (default 20, at most %d) blocked decisions of the window, newest\n"
            "first: decision id, time, route, recipient, destination and the reasons\n"
            "(codes, rules, clauses, categories, paths, details). Never a value. A clause\n"
            "the record does not carry is read from --config POLICY.\n",
            BG_REPORT_BLOCKED_MAX);
}

static const bg_cli_audit_opt_t blocked_opts[] = {
    {"--from", O_FROM, "a DATE", 1}, {"--to", O_TO, "a DATE", 1}, {"--limit", O_LIMIT, "N", 0},
    {"--prefix", O_PREFIX, "P", 0},  {"--json", O_JSON, NULL, 0}, {NULL, 0, NULL, 0}};

static const bg_cli_audit_cmd_t blocked_cmd = {
    "blocked", blocked_opts, blocked_usage, list_option, list_operand, NULL, 0};

/* The `audit blocked` document DOC for people. */
static void blocked_print(const json_t *doc, FILE *out)
{
    size_t i, k;
    const json_t *e, *x;
    fprintf(out, "%" JSON_INTEGER_FORMAT " blocked decision(s) in the window; the latest %zu:\n",
            json_integer_value(json_object_get(doc, "blocked")),
            json_array_size(json_object_get(doc, "decisions")));
    json_array_foreach(json_object_get(doc, "decisions"), i, e)
    {
        const json_t *d = json_object_get(e, "destination");
        const char *rc = json_string_value(json_object_get(e, "recipient"));
        const char *cc = json_string_value(json_object_get(d, "country"));
        fprintf(out, "\n%s  %s\n  route %s, recipient %s, destination %s, %s %s%s\n",
                json_string_value(json_object_get(e, "time")),
                json_string_value(json_object_get(e, "decision_id")),
                json_string_value(json_object_get(e, "route")), rc ? rc : "(none)",
                cc ? cc : "unknown", json_string_value(json_object_get(e, "method")),
                json_string_value(json_object_get(e, "host")),
                json_string_value(json_object_get(e, "path")));
        json_array_foreach(json_object_get(e, "reasons"), k, x)
        {
            const char *rule = json_string_value(json_object_get(x, "rule"));
            const char *cat = json_string_value(json_object_get(x, "category"));
            const char *path = json_string_value(json_object_get(x, "path"));
            const char *clause = json_string_value(json_object_get(x, "clause"));
            const char *cfrom = json_string_value(json_object_get(x, "clause_from"));
            const char *detail = json_string_value(json_object_get(x, "detail"));
            fprintf(out, "  reason %s%s%s%s%s%s%s\n", json_string_value(json_object_get(x, "code")),
                    rule ? ", rule " : "", rule ? rule : "", cat ? ", category " : "",
                    cat ? cat : "", path ? " at " : "", path ? path : "");
            if (clause != NULL)
                fprintf(out, "    clause  %s%s\n", clause,
                        cfrom != NULL && strcmp(cfrom, "other_policy") == 0
                            ? " (from the policy given, not the one the decision was taken under)"
                            : "");
            if (detail != NULL)
                fprintf(out, "    detail  %s\n", detail);
        }
    }
}

/* `audit blocked`: the latest blocked decisions of the window. Each
 * directory's files are pruned on their own (bg_report_expand_pruned): one
 * instance's file names say nothing about when another's were written. */
static int cmd_blocked(int argc, char **argv, const bg_report_policy_t *pol)
{
    list_ctx_t x = {.limit = 20};
    char **files = NULL, err[512];
    size_t nfiles = 0;
    json_t *doc = NULL;
    int rc = list_parse(&blocked_cmd, argc, argv, &x);
    if (rc != BG_CLI_AUDIT_GO)
        goto out;
    rc = 1;
    if (bg_report_expand_pruned(x.ops, x.nops, x.prefix, x.from, &files, &nfiles, err,
                                sizeof err) != 0) {
        fprintf(stderr, "bordergate audit blocked: %s\n", err);
        goto out;
    }
    doc = bg_report_blocked((const char *const *)files, nfiles, x.from, x.to, x.limit, pol, NULL,
                            err, sizeof err);
    if (doc == NULL) {
        fprintf(stderr, "bordergate audit blocked: %s\n", err);
        goto out;
    }
    if (x.json) {
        rc = bg_cli_audit_json(doc);
        doc = NULL;
    } else {
        blocked_print(doc, stdout);
        rc = 0;
    }
out:
    json_decref(doc);
    if (files != NULL)
        bg_audit_free_list(files, nfiles);
    free(x.ops);
    return rc;
}

/*
 * `audit report` and `audit blocked` with --config POLICY: the clauses of
 * the policy's rules, for records that do not carry their own, read from
 * the file without loading it (an auditor need not hold the keys it
 * names). The rest of ARGV goes to FN.
 */
static int with_policy(int argc, char **argv, int (*fn)(int, char **, const bg_report_policy_t *))
{
    const char *path;
    char **av;
    int ac, rc = take_config(argc, argv, 1, &path, &av, &ac);
    if (rc != 0)
        return rc;
    if (path == NULL) {
        rc = fn(ac, av, NULL);
        free(av);
        return rc;
    }
    json_t *clauses = NULL;
    char sha[65], err[512];
    if (bg_report_policy_read(path, &clauses, sha, err, sizeof err) != 0) {
        fprintf(stderr, "bordergate audit %s: --config: %s\n", argv[0], err);
        free(av);
        return 1;
    }
    bg_report_policy_t pol = {clauses, sha};
    rc = fn(ac, av, &pol);
    json_decref(clauses);
    free(av);
    return rc;
}

/* ------------------------------------------------------------------------
 * `audit verify`
 * ------------------------------------------------------------------------ */

#define VERIFY_MAXKEYS 8

typedef struct {
    bg_audit_key_t keys[VERIFY_MAXKEYS];
    size_t nkeys;
    const char *prefix;
    char **paths;
    size_t npaths, cap;
    int ndirs, noperands;
} verify_ctx_t;

static void verify_usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: bordergate audit verify [--key FILE] [--key-env NAME] [--prefix P] FILE|DIR...\n"
        "\n"
        "Checks the hash chain, the links between files and the signed checkpoints of\n"
        "audit log files, in the order given (a directory: all its log files, in order,\n"
        "and the log must be complete from its first record or its recorded retention).\n"
        "\n"
        "  --key FILE       checkpoint key (hex or raw bytes); repeat for older keys\n"
        "  --key-env NAME   checkpoint key from environment variable NAME\n"
        "  --prefix P       log file prefix in directories (default audit)\n"
        "\n"
        "Exit status: 0 intact, 1 a problem (the first is printed), 2 usage error.\n");
}

static int verify_option(void *arg, int id, const char *v)
{
    verify_ctx_t *x = arg;
    char err[512];
    if (id == O_PREFIX) {
        x->prefix = v;
        return BG_CLI_AUDIT_GO;
    }
    if (x->nkeys == VERIFY_MAXKEYS) {
        fprintf(stderr, "bordergate audit verify: at most %d keys\n", VERIFY_MAXKEYS);
        return 2;
    }
    int r = id == O_KEY ? bg_audit_key_from_file(v, &x->keys[x->nkeys], err, sizeof err)
                        : bg_audit_key_from_env(v, &x->keys[x->nkeys], err, sizeof err);
    if (r != 0) {
        fprintf(stderr, "bordergate audit verify: %s\n", err);
        return 2;
    }
    x->nkeys++;
    return BG_CLI_AUDIT_GO;
}

/* An operand in order: a directory stands for its log files (listed now:
 * a directory that cannot be read is the first problem), a file for
 * itself. */
static int verify_operand(void *arg, const char *a)
{
    verify_ctx_t *x = arg;
    struct stat st;
    char **add = NULL, err[512];
    size_t nadd = 0;
    x->noperands++;
    if (stat(a, &st) == 0 && S_ISDIR(st.st_mode)) {
        x->ndirs++;
        if (bg_audit_list_files(a, x->prefix, &add, &nadd, err, sizeof err) != 0) {
            printf("FAIL: %s\n", err);
            return 1;
        }
        if (nadd == 0)
            printf("note: %s holds no %s-*.jsonl files\n", a, x->prefix);
    } else {
        add = calloc(2, sizeof *add);
        if (add == NULL || (add[0] = strdup(a)) == NULL) {
            free(add);
            fprintf(stderr, "bordergate audit verify: out of memory\n");
            return 2;
        }
        nadd = 1;
    }
    if (x->npaths + nadd > x->cap) {
        size_t nc = (x->npaths + nadd) * 2 + 8;
        char **np = realloc(x->paths, nc * sizeof *np);
        if (np == NULL) {
            bg_audit_free_list(add, nadd);
            fprintf(stderr, "bordergate audit verify: out of memory\n");
            return 2;
        }
        x->paths = np;
        x->cap = nc;
    }
    for (size_t k = 0; k < nadd; k++)
        x->paths[x->npaths++] = add[k];
    free(add);
    return BG_CLI_AUDIT_GO;
}

static const bg_cli_audit_opt_t verify_opts[] = {{"--key", O_KEY, "FILE", 0},
                                                 {"--key-env", O_KEY_ENV, "NAME", 0},
                                                 {"--prefix", O_PREFIX, "P", 0},
                                                 {NULL, 0, NULL, 0}};

static const bg_cli_audit_cmd_t verify_cmd = {
    "verify", verify_opts, verify_usage, verify_option, verify_operand, NULL, 0};

/*
 * `audit verify`: prints "OK: N records in M files, chain intact, K
 * checkpoints verified" and exits 0, or prints the first problem and exits
 * 1; 2 for usage errors. One directory alone makes the check "complete".
 */
static int cmd_verify(int argc, char **argv)
{
    verify_ctx_t x = {.prefix = "audit"};
    int rc = bg_cli_audit_parse(&verify_cmd, argc, argv, &x);
    if (rc != BG_CLI_AUDIT_GO)
        goto out;
    if (x.noperands == 0) {
        fprintf(stderr, "bordergate audit verify: no FILE or DIR given\n");
        verify_usage(stderr);
        rc = 2;
        goto out;
    }
    bg_audit_verify_options_t opt = {.keys = x.keys,
                                     .nkeys = x.nkeys,
                                     .complete = x.ndirs == 1 && x.noperands == 1,
                                     .report = stdout};
    bg_audit_verify_result_t res;
    rc = bg_audit_verify_files((const char *const *)x.paths, x.npaths, &opt, &res) == 0 ? 0 : 1;
out:
    for (size_t i = 0; i < x.npaths; i++)
        free(x.paths[i]);
    free(x.paths);
    for (size_t i = 0; i < x.nkeys; i++)
        bg_audit_key_wipe(&x.keys[i]);
    fflush(stdout);
    return rc;
}

/* ------------------------------------------------------------------------
 * `audit rebuild`
 * ------------------------------------------------------------------------ */

typedef struct {
    const char *prefix;
    char **dirs;
    size_t ndirs;
} rebuild_ctx_t;

static const char rebuild_text[] =
    "usage: bordergate audit rebuild [--prefix P] DIR...\n"
    "\n"
    "Recomputes the dashboard's rollups (DIR/P.rollup/) from the raw audit log.\n"
    "Run it as the daemon's user; the daemon keeps them up to date itself.\n";

static void rebuild_usage(FILE *fp)
{
    fputs(rebuild_text, fp);
}

static int rebuild_option(void *arg, int id, const char *v)
{
    (void)id;
    ((rebuild_ctx_t *)arg)->prefix = v;
    return BG_CLI_AUDIT_GO;
}

static int rebuild_operand(void *arg, const char *a)
{
    rebuild_ctx_t *x = arg;
    x->dirs[x->ndirs++] = (char *)a;
    return BG_CLI_AUDIT_GO;
}

/* Any other dash argument (even "-"): the usage, on standard output when it
 * looks like a request for help ("--h..."). */
static int rebuild_unknown(void *arg, const char *a)
{
    (void)arg;
    rebuild_usage(a[1] == 'h' || (a[1] != '\0' && a[2] == 'h') ? stdout : stderr);
    return 2;
}

static const bg_cli_audit_opt_t rebuild_opts[] = {{"--prefix", O_PREFIX, "P", 0},
                                                  {NULL, 0, NULL, 0}};

static const bg_cli_audit_cmd_t rebuild_cmd = {
    "rebuild", rebuild_opts, rebuild_usage, rebuild_option, rebuild_operand, rebuild_unknown, 1};

/* `audit rebuild`: every directory's rollups recomputed; 1 when one failed. */
static int cmd_rebuild(int argc, char **argv)
{
    rebuild_ctx_t x = {.prefix = "audit"};
    char err[512];
    if ((x.dirs = calloc((size_t)argc + 1, sizeof *x.dirs)) == NULL)
        return 1;
    int rc = bg_cli_audit_parse(&rebuild_cmd, argc, argv, &x);
    if (rc != BG_CLI_AUDIT_GO)
        goto out;
    if (x.ndirs == 0) {
        fprintf(stderr, "bordergate audit rebuild: give the audit directory\n");
        rc = 2;
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < x.ndirs; i++) {
        size_t nfiles = 0;
        uint64_t nlines = 0;
        if (bg_rollup_rebuild(x.dirs[i], x.prefix, &nfiles, &nlines, err, sizeof err) == 0) {
            printf("%s: rollups rebuilt from %zu files, %llu lines\n", x.dirs[i], nfiles,
                   (unsigned long long)nlines);
        } else {
            fprintf(stderr, "bordergate audit rebuild: %s\n", err);
            rc = 1;
        }
    }
out:
    free(x.dirs);
    return rc;
}

/* ------------------------------------------------------------------------
 * The dispatch
 * ------------------------------------------------------------------------ */

int bg_cli_audit(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";
    if (strcmp(sub, "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(sub, "report") == 0)
        return with_policy(argc - 1, argv + 1, cmd_report);
    if (strcmp(sub, "subject") == 0)
        return bg_cli_audit_subject(argc - 1, argv + 1);
    if (strcmp(sub, "volumes") == 0)
        return bg_cli_audit_volumes(argc - 1, argv + 1);
    if (strcmp(sub, "blocked") == 0)
        return with_policy(argc - 1, argv + 1, cmd_blocked);
    if (strcmp(sub, "rebuild") == 0)
        return cmd_rebuild(argc - 1, argv + 1);
    int help = argc == 2 && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0);
    fprintf(help ? stdout : stderr,
            "usage: bordergate audit verify [--key FILE] FILE|DIR...\n"
            "       bordergate audit report [--from DATE] [--to DATE] [--by KEY[,KEY...]] [--json] "
            "DIR|FILE...\n"
            "       bordergate audit subject (ID|- --key FILE | --pseudonym HEX) [--json] "
            "DIR|FILE...\n"
            "       bordergate audit volumes [--counters FILE | DIR|FILE...] [--year Y] [--json]\n"
            "       bordergate audit blocked [--limit N] [--from DATE] [--to DATE] [--json] "
            "DIR|FILE...\n"
            "       bordergate audit rebuild [--prefix P] DIR...\n"
            "Run 'bordergate audit <command> --help' for a command's options.\n");
    return help ? 0 : 2;
}
