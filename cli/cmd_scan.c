/*
 * `bordergate scan`: inspect a payload offline and print one JSON line per
 * finding (path, category, sensitivity, detector, confidence; never the
 * value unless --show-values is given, for local debugging only), or with
 * --apply print the payload de-identified with the policy's operators.
 *
 * `bordergate detokenize`: reverse tokens made by the tokenize operator,
 * with the token key (for authorised domestic use only).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/keys.h"
#include "common/util.h"
#include "config/config.h"
#include "inspect/inspect.h"
#include "policy/policy.h"

static void scan_usage(FILE *fp)
{
    fprintf(fp,
            "usage: bordergate scan [--config FILE [--route ID]] [--content-type TYPE]\n"
            "                       [--content-encoding gzip|deflate] [--header 'Name: value']...\n"
            "                       [--target /path?query] [--apply] [--show-values] [FILE|-]\n"
            "\n"
            "Inspects FILE (default: standard input) as a request body and prints one JSON\n"
            "line per finding: path, category, sensitive, detector, confidence. Values are\n"
            "never printed unless --show-values is given (local debugging only).\n"
            "--apply prints the payload de-identified with the configuration's operators\n"
            "(or the built-in defaults) instead. The content type defaults to JSON when the\n"
            "payload looks like JSON. Exit status: 0 nothing found, 1 findings, 2 error.\n");
}

/* Built-in operators for --apply without a configuration. */
static void default_op(bg_detect_cat_t c, bg_op_t *op)
{
    memset(op, 0, sizeof *op);
    switch (c) {
    case BG_CAT_CN_MOBILE:
    case BG_CAT_PHONE_NUMBER:
        op->kind = BG_OP_MASK;
        op->keep_start = 3;
        op->keep_end = 4;
        break;
    case BG_CAT_EMAIL:
        op->kind = BG_OP_MASK;
        op->keep_start = 1;
        op->keep_end = 0;
        break;
    case BG_CAT_GPS_LOCATION:
    case BG_CAT_PRECISE_LOCATION:
    case BG_CAT_IP_ADDRESS:
    case BG_CAT_BIRTH_DATE:
    case BG_CAT_AGE:
        op->kind = BG_OP_GENERALIZE;
        op->decimals = 2;
        break;
    case BG_CAT_PERSON_NAME:
        op->kind = BG_OP_MASK;
        op->keep_start = 1;
        break;
    default: op->kind = BG_OP_REDACT;
    }
}

/* The command line of `bordergate scan`. */
typedef struct {
    const char *config, *route_id, *ctype, *cenc, *file, *target;
    const char *hdr_args[32];
    int nhdr, apply, show;
} scan_opts_t;

/* ARGV into O. -1 to go on, else the exit status (0 after --help, 2 on
 * an unknown option). More than 30 --header options: the rest are read
 * as files. */
static int scan_args(int argc, char **argv, scan_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->target = "/";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            scan_usage(stdout);
            return 0;
        } else if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            o->config = argv[++i];
        } else if (strcmp(a, "--route") == 0 && i + 1 < argc) {
            o->route_id = argv[++i];
        } else if (strcmp(a, "--content-type") == 0 && i + 1 < argc) {
            o->ctype = argv[++i];
        } else if (strcmp(a, "--content-encoding") == 0 && i + 1 < argc) {
            o->cenc = argv[++i];
        } else if (strcmp(a, "--header") == 0 && i + 1 < argc && o->nhdr < 30) {
            o->hdr_args[o->nhdr++] = argv[++i];
        } else if (strcmp(a, "--target") == 0 && i + 1 < argc) {
            o->target = argv[++i];
        } else if (strcmp(a, "--apply") == 0) {
            o->apply = 1;
        } else if (strcmp(a, "--show-values") == 0) {
            o->show = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bordergate scan: unknown option '%s'\n", a);
            scan_usage(stderr);
            return 2;
        } else {
            o->file = a;
        }
    }
    return -1;
}

/* The inspection rules: --route's (default the first route's) from the
 * configuration, else built-in ones (x-* headers, every cookie), which are
 * returned in *OWN for the caller to free. *CFG (the caller unrefs it) and
 * *POL are set when a configuration is given. NULL after printing why. */
static const bg_inspect_rules_t *scan_rules(const scan_opts_t *o, bg_config_t **cfg,
                                            const bg_policy_t **pol, bg_inspect_rules_t **own)
{
    const bg_inspect_rules_t *rules = NULL;
    if (o->config != NULL) {
        int nerr;
        *cfg = bg_config_load(o->config, stderr, &nerr);
        if (*cfg == NULL)
            return NULL;
        *pol = (*cfg)->policy;
        int ri = 0;
        if (o->route_id != NULL) {
            ri = -1;
            for (int i = 0; i < (*cfg)->nroutes; i++)
                if (strcmp((*cfg)->routes[i].id, o->route_id) == 0)
                    ri = i;
            if (ri < 0) {
                fprintf(stderr, "bordergate scan: no route '%s' in %s\n", o->route_id, o->config);
                return NULL;
            }
        }
        if ((*cfg)->nroutes > 0)
            rules = (*pol)->routes[ri].inspect;
    }
    if (rules == NULL) {
        static const char *const hdrs[] = {"x-*"};
        static const char *const cookies[] = {"*"};
        bg_inspect_rules_spec_t spec;
        char err[256];
        memset(&spec, 0, sizeof spec);
        spec.headers = hdrs;
        spec.nheaders = 1;
        spec.cookies = cookies;
        spec.ncookies = 1;
        *own = bg_inspect_rules_new(&spec, err, sizeof err);
        if (*own == NULL)
            fprintf(stderr, "bordergate scan: %s\n", err);
        rules = *own;
    }
    return rules;
}

/* FILE ("-" or NULL: standard input) whole, in a malloc'd buffer, its
 * length in *LEN. NULL after printing why (a directory or a read error is
 * an error, not an empty payload). */
static char *scan_read(const char *file, size_t *len)
{
    FILE *fp = stdin;
    if (file != NULL && strcmp(file, "-") != 0) {
        fp = fopen(file, "rb");
        if (fp == NULL) {
            fprintf(stderr, "bordergate scan: %s: %s\n", file, strerror(errno));
            return NULL;
        }
    }
    char *body = bg_util_read_stream(fp, 0, len);
    int e = errno;
    if (fp != stdin)
        fclose(fp);
    if (body == NULL && e == ENOMEM)
        fprintf(stderr, "bordergate scan: out of memory\n");
    else if (body == NULL)
        fprintf(stderr, "bordergate scan: %s: %s\n", file != NULL ? file : "-", strerror(e));
    return body;
}

/* The request headers: each --header (copied into COPY, which the caller
 * frees up to o->nhdr, NULLs included), then Content-Type (given, else
 * JSON when BODY looks like JSON, else text) and Content-Encoding. HEADERS
 * holds o->nhdr + 2. Returns the count, or -1 after printing why. */
static int scan_headers(const scan_opts_t *o, const char *body, size_t blen,
                        bg_http_header_t *headers, char **copy)
{
    size_t nh = 0;
    for (int i = 0; i < o->nhdr; i++) {
        copy[i] = strdup(o->hdr_args[i]);
        if (copy[i] == NULL) {
            fprintf(stderr, "bordergate scan: out of memory\n");
            return -1;
        }
        char *colon = strchr(copy[i], ':');
        if (colon == NULL) {
            fprintf(stderr, "bordergate scan: --header needs 'Name: value'\n");
            return -1;
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        headers[nh].name = copy[i];
        headers[nh].name_len = strlen(copy[i]);
        headers[nh].value = v;
        headers[nh].value_len = strlen(v);
        nh++;
    }
    const char *ctype = o->ctype;
    if (ctype == NULL) {
        size_t k = 0;
        while (k < blen &&
               (body[k] == ' ' || body[k] == '\n' || body[k] == '\r' || body[k] == '\t'))
            k++;
        ctype = k < blen && (body[k] == '{' || body[k] == '[') ? "application/json" : "text/plain";
    }
    headers[nh].name = "Content-Type";
    headers[nh].name_len = 12;
    headers[nh].value = ctype;
    headers[nh].value_len = strlen(ctype);
    nh++;
    if (o->cenc != NULL) {
        headers[nh].name = "Content-Encoding";
        headers[nh].name_len = 16;
        headers[nh].value = o->cenc;
        headers[nh].value_len = strlen(o->cenc);
        nh++;
    }
    return (int)nh;
}

/* One JSON line per finding on standard output (the value only with
 * SHOW). Returns the exit status: 1 findings, 0 none, 2 out of memory. */
static int scan_print(bg_inspection_t *insp, int show)
{
    size_t n = bg_inspection_count(insp);
    for (size_t i = 0; i < n; i++) {
        bg_finding_t *f = bg_inspection_finding(insp, i);
        json_t *o = json_object();
        if (o == NULL) {
            fprintf(stderr, "bordergate scan: out of memory\n");
            return 2;
        }
        json_object_set_new(o, "path", json_string(f->path));
        json_object_set_new(o, "category", json_string(bg_detect_category_id(f->category)));
        json_object_set_new(o, "sensitive", json_boolean(f->sensitive));
        json_object_set_new(o, "source", json_string(f->source ? f->source : ""));
        json_object_set_new(o, "confidence", json_string(bg_detect_confidence_name(f->confidence)));
        if (!f->whole) {
            json_object_set_new(o, "offset", json_integer((json_int_t)f->span_off));
            json_object_set_new(o, "length", json_integer((json_int_t)f->span_len));
        }
        if (f->record >= 0)
            json_object_set_new(o, "record", json_integer(f->record));
        if (show) {
            char v[1024];
            if (bg_inspection_finding_value(insp, f, v, sizeof v) >= 0)
                json_object_set_new(o, "value", json_string(v));
        }
        char *line = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (line == NULL) {
            fprintf(stderr, "bordergate scan: out of memory\n");
            return 2;
        }
        printf("%s\n", line);
        free(line);
    }
    return n > 0 ? 1 : 0;
}

/* --apply: every finding de-identified with POL's operator for its
 * category (built-in ones without a policy); the payload printed on
 * standard output, a changed target and headers on standard error.
 * Returns the exit status: 0, or 2 when an operator or the rendering
 * failed. */
static int scan_apply(bg_inspection_t *insp, const bg_policy_t *pol,
                      const bg_http_header_t *headers, const char *body, size_t blen)
{
    bg_op_keys_t keys;
    memset(&keys, 0, sizeof keys);
    if (pol != NULL)
        keys = bg_policy_keys(pol);
    size_t n = bg_inspection_count(insp);
    char err[200];
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        bg_finding_t *f = bg_inspection_finding(insp, i);
        bg_op_t op;
        if (pol != NULL)
            op = *bg_policy_operator(pol, f->category);
        else
            default_op(f->category, &op);
        if (bg_inspection_apply(insp, i, &op, &keys, err, sizeof err) != 0) {
            fprintf(stderr, "bordergate scan: %s: %s\n", f->path, err);
            rc = 2;
        }
    }
    if (rc != 0)
        return rc;
    bg_rewrite_t rw;
    if (n == 0) {
        fwrite(body, 1, blen, stdout);
    } else if (bg_inspection_render(insp, &rw) == 0) {
        if (rw.target_changed)
            fprintf(stderr, "target: %s\n", rw.target);
        for (size_t k = 0; k < rw.nheaders; k++)
            fprintf(stderr, "header %s: %s\n", headers[rw.header_index[k]].name,
                    rw.header_values[k] ? rw.header_values[k] : "(removed)");
        if (rw.body_changed)
            fwrite(rw.body, 1, rw.body_len, stdout);
        else
            fwrite(body, 1, blen, stdout);
        bg_rewrite_free(&rw);
    } else {
        rc = 2;
    }
    printf("\n");
    return rc;
}

/* `bordergate scan`: parse the options, load the rules, read the payload,
 * inspect it as a POST to --target, then print the findings or (--apply)
 * the payload de-identified. Exit status: 0 nothing found, 1 findings,
 * 2 error. */
int bg_cli_scan(int argc, char **argv)
{
    scan_opts_t o;
    int rc = scan_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    rc = 2;
    bg_config_t *cfg = NULL;
    const bg_policy_t *pol = NULL;
    bg_inspect_rules_t *own_rules = NULL;
    char *hdr_copy[32] = {NULL};
    bg_http_header_t headers[34];
    size_t blen = 0;
    char *body = NULL;
    const bg_inspect_rules_t *rules = scan_rules(&o, &cfg, &pol, &own_rules);
    if (rules == NULL)
        goto out;
    body = scan_read(o.file, &blen);
    if (body == NULL)
        goto out;
    int nh = scan_headers(&o, body, blen, headers, hdr_copy);
    if (nh < 0)
        goto out;
    bg_inspect_input_t in;
    memset(&in, 0, sizeof in);
    in.method = "POST";
    in.method_len = 4;
    in.target = o.target;
    in.target_len = strlen(o.target);
    in.headers = headers;
    in.nheaders = (size_t)nh;
    in.body = body;
    in.body_len = blen;
    bg_inspection_t *insp = bg_inspect(rules, &in);
    if (insp == NULL)
        fprintf(stderr, "bordergate scan: out of memory\n");
    else if (bg_inspection_undecodable(insp) != NULL)
        fprintf(stderr, "bordergate scan: cannot decode the payload: %s\n",
                bg_inspection_undecodable(insp));
    else if (!o.apply)
        rc = scan_print(insp, o.show);
    else
        rc = scan_apply(insp, pol, headers, body, blen);
    bg_inspection_free(insp);
out:
    for (int k = 0; k < o.nhdr; k++)
        free(hdr_copy[k]);
    free(body);
    bg_inspect_rules_free(own_rules);
    bg_config_unref(cfg);
    return rc;
}

int bg_cli_detokenize(int argc, char **argv)
{
    const char *keyfile = NULL;
    int first = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            keyfile = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            printf("usage: bordergate detokenize --key TOKEN_KEY_FILE TOKEN...\n"
                   "Reverses tokens made by the tokenize operator. For authorised domestic use:\n"
                   "the token key must never leave mainland China.\n");
            return 0;
        } else if (first == 0) {
            first = i;
        }
    }
    if (keyfile == NULL || first == 0) {
        fprintf(stderr, "usage: bordergate detokenize --key TOKEN_KEY_FILE TOKEN...\n");
        return 2;
    }
    unsigned char key[64];
    size_t kl = 0;
    char id[17], err[256];
    if (bg_key_load(keyfile, NULL, key, sizeof key, &kl, id, err, sizeof err) != 0) {
        fprintf(stderr, "bordergate detokenize: %s\n", err);
        return 2;
    }
    unsigned char k32[32];
    memcpy(k32, key, 32);
    bg_key_id(k32, 32, id);
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0) {
            i++;
            continue;
        }
        char out[4096];
        if (bg_token_open(argv[i], k32, out, sizeof out) < 0) {
            fprintf(stderr,
                    "bordergate detokenize: token %d: not a token of this key (key id %s), or "
                    "tampered\n",
                    i - first + 1, id);
            rc = 1;
            continue;
        }
        printf("%s\n", out);
    }
    bg_util_wipe(key, sizeof key);
    bg_util_wipe(k32, sizeof k32);
    return rc;
}
