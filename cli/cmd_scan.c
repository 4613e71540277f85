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

static char *read_all(FILE *fp, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
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

int bg_cli_scan(int argc, char **argv)
{
    const char *config = NULL, *route_id = NULL, *ctype = NULL, *cenc = NULL, *file = NULL;
    const char *target = "/";
    const char *hdr_args[32];
    int nhdr = 0, apply = 0, show = 0, rc = 2;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            scan_usage(stdout);
            return 0;
        } else if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(a, "--route") == 0 && i + 1 < argc) {
            route_id = argv[++i];
        } else if (strcmp(a, "--content-type") == 0 && i + 1 < argc) {
            ctype = argv[++i];
        } else if (strcmp(a, "--content-encoding") == 0 && i + 1 < argc) {
            cenc = argv[++i];
        } else if (strcmp(a, "--header") == 0 && i + 1 < argc && nhdr < 30) {
            hdr_args[nhdr++] = argv[++i];
        } else if (strcmp(a, "--target") == 0 && i + 1 < argc) {
            target = argv[++i];
        } else if (strcmp(a, "--apply") == 0) {
            apply = 1;
        } else if (strcmp(a, "--show-values") == 0) {
            show = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bordergate scan: unknown option '%s'\n", a);
            scan_usage(stderr);
            return 2;
        } else {
            file = a;
        }
    }
    bg_config_t *cfg = NULL;
    const bg_inspect_rules_t *rules = NULL;
    bg_inspect_rules_t *own_rules = NULL;
    const bg_policy_t *pol = NULL;
    if (config != NULL) {
        int nerr;
        cfg = bg_config_load(config, stderr, &nerr);
        if (cfg == NULL)
            return 2;
        pol = cfg->policy;
        int ri = 0;
        if (route_id != NULL) {
            ri = -1;
            for (int i = 0; i < cfg->nroutes; i++)
                if (strcmp(cfg->routes[i].id, route_id) == 0)
                    ri = i;
            if (ri < 0) {
                fprintf(stderr, "bordergate scan: no route '%s' in %s\n", route_id, config);
                bg_config_unref(cfg);
                return 2;
            }
        }
        if (cfg->nroutes > 0)
            rules = pol->routes[ri].inspect;
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
        own_rules = bg_inspect_rules_new(&spec, err, sizeof err);
        rules = own_rules;
    }

    FILE *fp = stdin;
    if (file != NULL && strcmp(file, "-") != 0) {
        fp = fopen(file, "rb");
        if (fp == NULL) {
            fprintf(stderr, "bordergate scan: %s: %s\n", file, strerror(errno));
            goto out;
        }
    }
    size_t blen = 0;
    char *body = read_all(fp, &blen);
    if (fp != stdin)
        fclose(fp);
    if (body == NULL) {
        fprintf(stderr, "bordergate scan: out of memory\n");
        goto out;
    }
    bg_http_header_t headers[34];
    char *hdr_copy[32];
    size_t nh = 0;
    for (int i = 0; i < nhdr; i++) {
        hdr_copy[i] = strdup(hdr_args[i]);
        char *colon = strchr(hdr_copy[i], ':');
        if (colon == NULL) {
            fprintf(stderr, "bordergate scan: --header needs 'Name: value'\n");
            for (int k = 0; k <= i; k++)
                free(hdr_copy[k]);
            free(body);
            goto out;
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        headers[nh].name = hdr_copy[i];
        headers[nh].name_len = strlen(hdr_copy[i]);
        headers[nh].value = v;
        headers[nh].value_len = strlen(v);
        nh++;
    }
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
    if (cenc != NULL) {
        headers[nh].name = "Content-Encoding";
        headers[nh].name_len = 16;
        headers[nh].value = cenc;
        headers[nh].value_len = strlen(cenc);
        nh++;
    }
    bg_inspect_input_t in;
    memset(&in, 0, sizeof in);
    in.method = "POST";
    in.method_len = 4;
    in.target = target;
    in.target_len = strlen(target);
    in.headers = headers;
    in.nheaders = nh;
    in.body = body;
    in.body_len = blen;
    bg_inspection_t *insp = bg_inspect(rules, &in);
    if (insp == NULL) {
        fprintf(stderr, "bordergate scan: out of memory\n");
    } else if (bg_inspection_undecodable(insp) != NULL) {
        fprintf(stderr, "bordergate scan: cannot decode the payload: %s\n",
                bg_inspection_undecodable(insp));
    } else if (!apply) {
        size_t n = bg_inspection_count(insp);
        for (size_t i = 0; i < n; i++) {
            bg_finding_t *f = bg_inspection_finding(insp, i);
            json_t *o = json_object();
            json_object_set_new(o, "path", json_string(f->path));
            json_object_set_new(o, "category", json_string(bg_detect_category_id(f->category)));
            json_object_set_new(o, "sensitive", json_boolean(f->sensitive));
            json_object_set_new(o, "source", json_string(f->source ? f->source : ""));
            json_object_set_new(o, "confidence",
                                json_string(bg_detect_confidence_name(f->confidence)));
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
            printf("%s\n", line);
            free(line);
            json_decref(o);
        }
        rc = n > 0 ? 1 : 0;
    } else {
        bg_op_keys_t keys;
        memset(&keys, 0, sizeof keys);
        if (pol != NULL)
            keys = bg_policy_keys(pol);
        size_t n = bg_inspection_count(insp);
        char err[200];
        rc = 0;
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
        if (rc == 0) {
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
        }
    }
    bg_inspection_free(insp);
    for (int k = 0; k < nhdr; k++)
        free(hdr_copy[k]);
    free(body);
out:
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
