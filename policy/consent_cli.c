/*
 * `bordergate consent ...`: change and inspect the consent registry from a
 * shell. Changes go through the same journal, locks and fsyncs as the
 * daemon's admin API (or the same Redis scripts, with --redis). A running
 * daemon honours a change on every look-up that starts after the command
 * returned: the file backend stats the journal before each look-up, and the
 * Redis backend waits for every subscribed daemon's acknowledgement
 * (docs/consent.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "policy/consent.h"
#include "store/redis.h"

typedef struct {
    const char *registry;
    const char *redis; /* store URL: the registry is in Redis, not a journal */
    const char *key;
    const char *subject;
    const char *recipient;
    const char *purpose;
    const char *region;
    const char *expires;
    const char *granted;
    const char *evidence;
    const char *by;
    const char *id;
    const char *at;
    int sensitive;
    int guardian;
    int json;
    const char *positional;
} cli_args_t;

static void usage(FILE *fp)
{
    fprintf(fp, "usage: bordergate consent <command> [options]\n"
                "\n"
                "  grant    --subject ID|- --recipient R|* --purpose P|* --region CC|*\n"
                "           [--sensitive] [--guardian] [--expires RFC3339] [--granted RFC3339]\n"
                "           [--evidence REF] [--by NAME] [--json]      prints the new consent id\n"
                "  withdraw --id C [--at RFC3339] [--by NAME] [--json]\n"
                "  show     --subject ID|- [--json]       every consent of one subject\n"
                "  list     [--json]                      every consent (--json: JSON lines)\n"
                "  verify                                 check the journal, report a torn line\n"
                "  compact                                rewrite the journal to its live state\n"
                "  keygen   FILE                          write a new random subject key (0600)\n"
                "\n"
                "common options:\n"
                "  --registry FILE   the consent journal ($BG_CONSENT_REGISTRY)\n"
                "  --redis URL       the shared registry in Redis instead (redis://host:port/db,\n"
                "                    $BG_CONSENT_REDIS; password from $BG_REDIS_PASSWORD): every\n"
                "                    daemon has dropped its cached copy when a change returns\n"
                "  --key FILE        the subject key ($BG_CONSENT_KEY); needed by grant and show,\n"
                "                    checked against the journal when given to the others\n"
                "\n"
                "--subject - reads the subject id from the first line of standard input, so it\n"
                "stays out of shell history and the process list. Times are RFC 3339, e.g.\n"
                "2027-01-01T00:00:00+08:00.\n");
}

/* The option's value: "--name value" or "--name=value". */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    if (strcmp(argv[*i], name) == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "bordergate consent: %s needs a value\n", name);
            return -1;
        }
        *out = argv[++*i];
        return 1;
    }
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=') {
        *out = argv[*i] + n + 1;
        return 1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, cli_args_t *a)
{
    struct {
        const char *name;
        const char **dst;
    } vals[] = {
        {"--registry", &a->registry},
        {"--redis", &a->redis},
        {"--key", &a->key},
        {"--subject", &a->subject},
        {"--recipient", &a->recipient},
        {"--purpose", &a->purpose},
        {"--region", &a->region},
        {"--expires", &a->expires},
        {"--granted", &a->granted},
        {"--evidence", &a->evidence},
        {"--by", &a->by},
        {"--id", &a->id},
        {"--at", &a->at},
    };
    memset(a, 0, sizeof *a);
    a->registry = getenv("BG_CONSENT_REGISTRY");
    a->redis = getenv("BG_CONSENT_REDIS");
    a->key = getenv("BG_CONSENT_KEY");
    for (int i = 2; i < argc; i++) {
        int matched = 0;
        for (size_t k = 0; k < sizeof vals / sizeof vals[0] && !matched; k++) {
            int r = opt_value(argc, argv, &i, vals[k].name, vals[k].dst);
            if (r < 0)
                return -1;
            matched = r;
        }
        if (matched)
            continue;
        if (strcmp(argv[i], "--sensitive") == 0) {
            a->sensitive = 1;
        } else if (strcmp(argv[i], "--guardian") == 0) {
            a->guardian = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
        } else if (argv[i][0] != '-' && a->positional == NULL) {
            a->positional = argv[i];
        } else {
            fprintf(stderr, "bordergate consent: unexpected argument '%s'\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

/* "cli:<login name>" of the effective user. */
static void default_by(char *out, size_t cap)
{
    struct passwd *pw = getpwuid(geteuid());
    if (pw != NULL && pw->pw_name != NULL)
        snprintf(out, cap, "cli:%s", pw->pw_name);
    else
        snprintf(out, cap, "cli:uid-%ld", (long)geteuid());
}

/* The raw subject id: the argument, or "-": one line of stdin. */
static int subject_arg(const char *arg, char *buf, size_t cap, const char **out, size_t *len)
{
    if (arg == NULL) {
        fprintf(stderr, "bordergate consent: --subject ID is required\n");
        return -1;
    }
    if (strcmp(arg, "-") != 0) {
        *out = arg;
        *len = strlen(arg);
        return 0;
    }
    if (fgets(buf, (int)cap, stdin) == NULL) {
        fprintf(stderr, "bordergate consent: no subject id on standard input\n");
        return -1;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* The registry in Redis at A->redis (password: $BG_REDIS_PASSWORD). Wipes KEY. */
static bg_consent_reg_t *open_redis(const cli_args_t *a, uint8_t *key, size_t keylen)
{
    bg_redis_cfg_t rc;
    char err[1024];
    bg_consent_reg_t *reg = NULL;
    if (bg_redis_parse_url(a->redis, &rc, err, sizeof err) != 0) {
        fprintf(stderr, "bordergate consent: --redis: %s\n", err);
    } else {
        const char *pw = getenv("BG_REDIS_PASSWORD");
        rc.password = pw != NULL ? strdup(pw) : NULL;
        if (pw != NULL && rc.password == NULL)
            fprintf(stderr, "bordergate consent: out of memory\n");
        else if ((reg = bg_consent_open_redis(&rc, key, keylen, 0, err, sizeof err)) == NULL)
            fprintf(stderr, "bordergate consent: %s\n", err);
        bg_redis_cfg_clear(&rc);
    }
    if (key != NULL)
        bg_util_wipe(key, keylen);
    return reg;
}

static bg_consent_reg_t *open_registry(const cli_args_t *a, int need_key, int readonly, int create)
{
    uint8_t key[BG_CONSENT_KEY_MAX];
    char err[1024], warn[512];
    int keylen = 0;
    if (a->registry == NULL && a->redis == NULL) {
        fprintf(stderr,
                "bordergate consent: --registry FILE (or $BG_CONSENT_REGISTRY) is required\n");
        return NULL;
    }
    if (a->key == NULL && need_key) {
        fprintf(stderr, "bordergate consent: --key FILE (or $BG_CONSENT_KEY) is required\n");
        return NULL;
    }
    if (a->key != NULL) {
        keylen = bg_consent_key_load(a->key, key, sizeof key, warn, sizeof warn, err, sizeof err);
        if (keylen < 0) {
            fprintf(stderr, "bordergate consent: %s\n", err);
            return NULL;
        }
        if (warn[0] != '\0')
            fprintf(stderr, "bordergate consent: warning: %s\n", warn);
    }
    if (a->redis != NULL)
        return open_redis(a, a->key != NULL ? key : NULL, (size_t)keylen);
    bg_consent_options_t opts = {.readonly = readonly, .create = create, .check_interval_ms = -1};
    int existed = access(a->registry, F_OK) == 0;
    char *warning = NULL;
    bg_consent_reg_t *reg = bg_consent_open(a->registry, a->key != NULL ? key : NULL,
                                            (size_t)keylen, &opts, &warning, err, sizeof err);
    bg_util_wipe(key, sizeof key);
    if (reg == NULL) {
        fprintf(stderr, "bordergate consent: %s\n", err);
        return NULL;
    }
    if (warning != NULL) {
        fprintf(stderr, "bordergate consent: warning: %s\n", warning);
        free(warning);
    }
    if (!existed)
        fprintf(stderr, "bordergate consent: created a new consent registry %s\n", a->registry);
    return reg;
}

static int parse_time_opt(const char *name, const char *s, int64_t *out)
{
    *out = 0;
    if (s == NULL)
        return 0;
    if (bg_consent_time_parse(s, out) != 0) {
        fprintf(stderr,
                "bordergate consent: %s must be an RFC 3339 time such as "
                "2027-01-01T00:00:00+08:00\n",
                name);
        return -1;
    }
    return 0;
}

static void print_json(json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* ------------------------------------------------------------------------
 * Listing
 * ------------------------------------------------------------------------ */

typedef struct {
    int json;
    int with_subject;
    int64_t now;
    size_t n;
    json_t *array; /* show --json collects here */
} print_ctx_t;

static void fmt_time(int64_t ms, char *out, size_t cap)
{
    if (ms == 0)
        snprintf(out, cap, "-");
    else
        bg_consent_time_format(ms, out, cap);
}

static int print_one(void *arg, const bg_consent_t *c)
{
    print_ctx_t *p = arg;
    p->n++;
    if (p->array != NULL) {
        json_array_append_new(p->array, bg_consent_to_json(c, p->now));
        return 0;
    }
    if (p->json) {
        print_json(bg_consent_to_json(c, p->now));
        return 0;
    }
    char g[40], e[40], w[40];
    fmt_time(c->granted_at, g, sizeof g);
    fmt_time(c->expires_at, e, sizeof e);
    fmt_time(c->withdrawn_at, w, sizeof w);
    const char *flags = c->sensitive && c->guardian ? "sens,guard"
                        : c->sensitive              ? "sensitive"
                        : c->guardian               ? "guardian"
                                                    : "-";
    if (p->n == 1) {
        printf("%-18s %s%-9s %-6s %-10s %-24s %-24s %-24s %s\n", "ID",
               p->with_subject ? "SUBJECT           " : "", "STATUS", "REGION", "COVERS", "GRANTED",
               "EXPIRES", "WITHDRAWN", "RECIPIENT / PURPOSE / EVIDENCE");
    }
    printf("%-18s ", c->id);
    if (p->with_subject)
        printf("%.16s  ", c->subject);
    printf("%-9s %-6s %-10s %-24s %-24s %-24s %s / %s / %s\n", bg_consent_status(c, p->now),
           c->region, flags, g, e, w, c->recipient, c->purpose, c->evidence[0] ? c->evidence : "-");
    return 0;
}

/* ------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------ */

static int cmd_grant(const cli_args_t *a)
{
    char line[BG_CONSENT_SUBJECT_MAX + 2], by[BG_CONSENT_BY_MAX + 1], err[512];
    bg_consent_grant_t g;
    memset(&g, 0, sizeof g);
    if (a->recipient == NULL || a->purpose == NULL || a->region == NULL) {
        fprintf(stderr, "bordergate consent grant: --recipient, --purpose and --region are "
                        "required (\"*\" for any)\n");
        return 2;
    }
    if (subject_arg(a->subject, line, sizeof line, &g.subject, &g.subject_len) != 0 ||
        parse_time_opt("--expires", a->expires, &g.expires_at) != 0 ||
        parse_time_opt("--granted", a->granted, &g.granted_at) != 0)
        return 2;
    default_by(by, sizeof by);
    g.recipient = a->recipient;
    g.purpose = a->purpose;
    g.region = a->region;
    g.sensitive = a->sensitive;
    g.guardian = a->guardian;
    g.evidence = a->evidence;
    g.recorded_by = a->by != NULL ? a->by : by;
    bg_consent_reg_t *reg = open_registry(a, 1, 0, 1);
    if (reg == NULL) {
        bg_util_wipe(line, sizeof line);
        return 1;
    }
    bg_consent_t c;
    int rc = bg_consent_grant(reg, &g, &c, err, sizeof err);
    bg_util_wipe(line, sizeof line);
    bg_consent_close(reg);
    if (rc != 0) {
        fprintf(stderr, "bordergate consent grant: %s\n", err);
        return rc == BG_CONSENT_EINVAL ? 2 : 1;
    }
    if (a->json)
        print_json(bg_consent_to_json(&c, (int64_t)bg_util_wall_ms()));
    else
        printf("%s\n", c.id);
    return 0;
}

static int cmd_withdraw(const cli_args_t *a)
{
    char by[BG_CONSENT_BY_MAX + 1], err[512], when[40];
    int64_t at = 0;
    if (a->id == NULL) {
        fprintf(stderr, "bordergate consent withdraw: --id C is required\n");
        return 2;
    }
    if (parse_time_opt("--at", a->at, &at) != 0)
        return 2;
    default_by(by, sizeof by);
    bg_consent_reg_t *reg = open_registry(a, 0, 0, 0);
    if (reg == NULL)
        return 1;
    bg_consent_t c;
    int rc = bg_consent_withdraw(reg, a->id, at, a->by != NULL ? a->by : by, &c, err, sizeof err);
    bg_consent_close(reg);
    if (rc != 0) {
        fprintf(stderr, "bordergate consent withdraw: %s\n", err);
        return rc == BG_CONSENT_EINVAL ? 2 : 1;
    }
    if (a->json) {
        print_json(bg_consent_to_json(&c, (int64_t)bg_util_wall_ms()));
    } else {
        bg_consent_time_format(c.withdrawn_at, when, sizeof when);
        printf("%s withdrawn, effective %s\n", c.id, when);
    }
    return 0;
}

static int cmd_show(const cli_args_t *a)
{
    char line[BG_CONSENT_SUBJECT_MAX + 2], err[512], hex[BG_CONSENT_PSEUDONYM_SIZE];
    const char *subject;
    size_t len;
    uint8_t p[BG_CONSENT_PSEUDONYM_LEN];
    if (subject_arg(a->subject, line, sizeof line, &subject, &len) != 0)
        return 2;
    bg_consent_reg_t *reg = open_registry(a, 1, 1, 0);
    if (reg == NULL) {
        bg_util_wipe(line, sizeof line);
        return 1;
    }
    int rc = bg_consent_pseudonymize(reg, subject, len, p);
    bg_util_wipe(line, sizeof line);
    if (rc != 0) {
        bg_consent_close(reg);
        fprintf(stderr, "bordergate consent show: cannot pseudonymize the subject\n");
        return 1;
    }
    for (int i = 0; i < BG_CONSENT_PSEUDONYM_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", p[i]);
    print_ctx_t ctx = {.json = a->json, .now = (int64_t)bg_util_wall_ms()};
    if (a->json)
        ctx.array = json_array();
    else
        printf("subject %s\n", hex);
    rc = bg_consent_list(reg, p, print_one, &ctx, err, sizeof err);
    bg_consent_close(reg);
    if (rc != 0) {
        json_decref(ctx.array);
        fprintf(stderr, "bordergate consent show: %s\n", err);
        return 1;
    }
    if (a->json)
        print_json(json_pack("{s:s, s:o}", "subject", hex, "consents", ctx.array));
    else if (ctx.n == 0)
        printf("no consents\n");
    return 0;
}

static int cmd_list(const cli_args_t *a)
{
    char err[512];
    bg_consent_reg_t *reg = open_registry(a, 0, 1, 0);
    if (reg == NULL)
        return 1;
    print_ctx_t ctx = {.json = a->json, .with_subject = 1, .now = (int64_t)bg_util_wall_ms()};
    int rc = bg_consent_list(reg, NULL, print_one, &ctx, err, sizeof err);
    bg_consent_close(reg);
    if (rc != 0) {
        fprintf(stderr, "bordergate consent list: %s\n", err);
        return 1;
    }
    if (!a->json && ctx.n == 0)
        printf("no consents\n");
    return 0;
}

static int cmd_verify(const cli_args_t *a)
{
    bg_consent_reg_t *reg = open_registry(a, 0, 1, 0); /* prints errors and tears */
    if (reg == NULL)
        return 1;
    printf("%s: consent %s OK (%zu consent%s)\n", a->redis != NULL ? a->redis : a->registry,
           a->redis != NULL ? "registry" : "journal", bg_consent_count(reg),
           bg_consent_count(reg) == 1 ? "" : "s");
    bg_consent_close(reg);
    return 0;
}

static int cmd_compact(const cli_args_t *a)
{
    char err[512];
    bg_consent_reg_t *reg = open_registry(a, 0, 0, 0);
    if (reg == NULL)
        return 1;
    int rc = bg_consent_compact(reg, err, sizeof err);
    size_t n = bg_consent_count(reg);
    bg_consent_close(reg);
    if (rc != 0) {
        fprintf(stderr, "bordergate consent compact: %s\n", err);
        return 1;
    }
    printf("%s: compacted (%zu consent%s kept)\n", a->redis != NULL ? a->redis : a->registry, n,
           n == 1 ? "" : "s");
    return 0;
}

static int cmd_keygen(const cli_args_t *a)
{
    uint8_t raw[32];
    char hex[2 * sizeof raw + 2];
    if (a->positional == NULL) {
        fprintf(stderr, "usage: bordergate consent keygen FILE\n");
        return 2;
    }
    if (bg_util_random_bytes(raw, sizeof raw) != 0) {
        fprintf(stderr, "bordergate consent keygen: no randomness\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[2 * sizeof raw] = '\n';
    hex[2 * sizeof raw + 1] = '\0';
    int fd = open(a->positional, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex) && fsync(fd) == 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    bg_util_wipe(raw, sizeof raw);
    bg_util_wipe(hex, sizeof hex);
    if (!ok) {
        fprintf(stderr, "bordergate consent keygen: %s: %s\n", a->positional, strerror(e));
        return 1;
    }
    printf("%s: new 256-bit subject key (keep it secret; losing it makes every stored "
           "pseudonym unmatchable)\n",
           a->positional);
    return 0;
}

int bg_consent_cli(int argc, char **argv)
{
    cli_args_t a;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    const char *cmd = argv[1];
    if (strcmp(cmd, "grant") == 0)
        return cmd_grant(&a);
    if (strcmp(cmd, "withdraw") == 0)
        return cmd_withdraw(&a);
    if (strcmp(cmd, "show") == 0)
        return cmd_show(&a);
    if (strcmp(cmd, "list") == 0)
        return cmd_list(&a);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(&a);
    if (strcmp(cmd, "compact") == 0)
        return cmd_compact(&a);
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(&a);
    fprintf(stderr, "bordergate consent: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
