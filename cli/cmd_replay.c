/*
 * `bordergate replay`: evaluate recorded traffic (HAR 1.2, GoReplay .gor)
 * offline with the daemon's decision path (replay/replay.h), and
 *   --expect FILE        compare with expected decisions (exit 1 on any difference)
 *   --write-expect FILE  write the current decisions as expectations
 *   --diff-config OTHER  print only the entries another policy decides differently
 *   --live URL           send each request through a running bordergate and
 *                        check its answer (and, with --sink-log, what arrived
 *                        upstream) against the offline decision
 * docs/replay.md is the reference. Output never contains payload values.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "config/config.h"
#include "policy/consent.h"
#include "policy/policy.h"
#include "proxy/http.h"
#include "replay/har.h"
#include "replay/replay.h"
#include "replay/upstream.h"
#include "inspect/redact.h"

#define MAX_SINK_LOGS 32

static void replay_usage(FILE *fp)
{
    fprintf(fp, "usage: bordergate replay --config POLICY (--har FILE | --gor FILE) [options]\n"
                "\n"
                "Evaluates every recorded request offline, exactly as the daemon would decide\n"
                "it, and prints one JSON line per entry (summary on stderr).\n"
                "\n"
                "  --format json|table     output format (default json)\n"
                "  --now TIME              decide at this RFC 3339 time (consent expiry...)\n"
                "  --consents FILE         consent registry to read (default: the policy's)\n"
                "  --expect FILE           compare with expected decisions; print differences,\n"
                "                          exit 1 on any\n"
                "  --write-expect FILE     write the current decisions as an expectation file\n"
                "  --diff-config OTHER     print only entries OTHER decides differently\n"
                "  --live URL              send each request through the bordergate at URL and\n"
                "                          check its decision against the offline one\n"
                "  --sink-log FILE|DIR     (with --live) a `bordergate sink --record` file, or a\n"
                "                          directory of them (*.jsonl): also check what arrived\n"
                "                          upstream (repeatable)\n"
                "  --max-entry-mb N        largest HAR entry accepted (default 64)\n"
                "  --proxy HOST:PORT       a URL naming this address was recorded in front of\n"
                "                          bordergate: its Host header is the destination\n"
                "                          (repeatable; the policy's listen addresses always)\n"
                "  --compare-recorded      compare each decision with the response's recorded\n"
                "                          X-Bordergate-Decision; exit 1 on any difference\n"
                "\n"
                "Exit status: 0 ok, 1 differences (expect, diff-config, live), 2 usage or\n"
                "input errors (each reported as FILE: entry N (line L, byte B): problem).\n");
}

typedef struct {
    const char *config, *har, *gor, *expect, *write_expect, *diff_config, *live, *now, *consents;
    const char *sink_logs[MAX_SINK_LOGS];
    int nsink;
    const char *proxies[MAX_SINK_LOGS + BG_MAX_LISTEN + 1]; /* NULL-terminated */
    int nproxy;
    int compare_recorded;
    int table;
    size_t max_entry;
} opts_t;

typedef struct {
    bg_config_t *cfg;
    bg_consent_reg_t *consent;
    bg_replay_ctx_t ctx;
} policy_env_t;

typedef struct {
    size_t entries, allow, deidentify, block, refused, monitor, errors, differences, changed,
        skipped, live_ok, live_diffs, recorded_diffs;
} counts_t;

/* ------------------------------------------------------------------------ */

static int load_policy(const char *path, const char *consents, int64_t now, policy_env_t *pe)
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

static void free_policy(policy_env_t *pe)
{
    bg_consent_close(pe->consent);
    bg_config_unref(pe->cfg);
    memset(pe, 0, sizeof *pe);
}

/* ------------------------------------------------------------------------ */
/* sources                                                                   */

typedef struct {
    bg_har_reader_t *har;
    bg_gor_reader_t *gor;
    int fatal;
} source_t;

static int source_next(source_t *s, bg_replay_req_t *req, char *err, size_t cap)
{
    int rc =
        s->har != NULL ? bg_har_next(s->har, req, err, cap) : bg_gor_next(s->gor, req, err, cap);
    /* syntax and I/O errors end the file; a bad entry's content does not */
    if (rc < 0 && (s->har != NULL ? bg_har_failed(s->har) : bg_gor_failed(s->gor)))
        s->fatal = 1;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* comparison                                                                */

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

/* "POST api.example.com/v1/x" (scheme and query values dropped) */
static void entry_label(json_t *line, char *out, size_t cap)
{
    const char *url = jstr(line, "url");
    const char *p = strstr(url, "://");
    snprintf(out, cap, "entry %lld %s %s",
             (long long)json_integer_value(json_object_get(line, "entry")), jstr(line, "method"),
             p != NULL ? p + 3 : url);
}

typedef void (*diff_fn)(void *arg, const char *msg);

/* The finding of ACT matching XF (same path and category, not yet used). */
static json_t *match_finding(json_t *act, json_t *xf, char *used)
{
    size_t i;
    json_t *f = NULL;
    json_array_foreach(act, i, f)
    {
        if (used[i])
            continue;
        if (strcmp(jstr(f, "path"), jstr(xf, "path")) == 0 &&
            (json_object_get(xf, "category") == NULL ||
             strcmp(jstr(f, "category"), jstr(xf, "category")) == 0)) {
            used[i] = 1;
            return f;
        }
    }
    return NULL;
}

/*
 * Compare findings: every expected one must be there with the basis,
 * action and operator it names; no other finding may be there. Returns
 * the number of differences, each reported through FN.
 */
static int compare_findings(json_t *act, json_t *exp, diff_fn fn, void *arg, const char *exp_word)
{
    int n = 0;
    char msg[512];
    size_t na = json_array_size(act);
    char *used = calloc(na + 1, 1);
    if (used == NULL)
        return 1;
    size_t i;
    json_t *xf = NULL;
    json_array_foreach(exp, i, xf)
    {
        json_t *f = match_finding(act, xf, used);
        if (f == NULL) {
            snprintf(msg, sizeof msg, "finding %s (%s) %s, not found", jstr(xf, "path"),
                     jstr(xf, "category"), exp_word);
            fn(arg, msg);
            n++;
            continue;
        }
        static const char *const keys[] = {"basis", "action", "operator"};
        for (int k = 0; k < 3; k++) {
            json_t *xv = json_object_get(xf, keys[k]);
            if (xv == NULL)
                continue;
            if (k == 2 && strcmp(jstr(f, "action"), "deidentify") != 0 &&
                strcmp(jstr(f, "action"), "remove") != 0)
                continue;
            if (strcmp(jstr(f, keys[k]), json_string_value(xv) ? json_string_value(xv) : "") != 0) {
                snprintf(msg, sizeof msg, "%s (%s): %s %s, %s %s", jstr(f, "path"),
                         jstr(f, "category"), keys[k],
                         jstr(f, keys[k])[0] ? jstr(f, keys[k]) : "(none)", exp_word,
                         json_string_value(xv));
                fn(arg, msg);
                n++;
            }
        }
    }
    json_t *f = NULL;
    json_array_foreach(act, i, f)
    {
        if (used[i])
            continue;
        snprintf(msg, sizeof msg, "finding %s (%s) with action %s, not %s", jstr(f, "path"),
                 jstr(f, "category"), jstr(f, "action"), exp_word);
        fn(arg, msg);
        n++;
    }
    free(used);
    return n;
}

typedef struct {
    const char *label;
    counts_t *counts;
} print_ctx_t;

static void print_diff(void *arg, const char *msg)
{
    print_ctx_t *pc = arg;
    printf("%s: %s\n", pc->label, msg);
    pc->counts->differences++;
}

/* Compare one output line with its expectation (this tool's format, or the
 * policy-pack format: "index"/"outcome"/"destination"). */
static void compare_expect(json_t *line, json_t *xp, counts_t *c)
{
    char label[600];
    entry_label(line, label, sizeof label);
    print_ctx_t pc = {label, c};
    char msg[512];
    if (json_object_get(xp, "known_gap") != NULL) {
        printf("%s: skipped (known gap: %s)\n", label, jstr(xp, "known_gap"));
        c->skipped++;
        return;
    }
    const char *want = json_object_get(xp, "decision") ? jstr(xp, "decision") : jstr(xp, "outcome");
    const char *got = jstr(line, "decision");
    if (strcmp(got, want) != 0) {
        snprintf(msg, sizeof msg, "decision %s, expected %s", got, want);
        if (strcmp(got, "refused") == 0)
            snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " (refused %lld: %s)",
                     (long long)json_integer_value(json_object_get(line, "status")),
                     jstr(line, "reason"));
        print_diff(&pc, msg);
        return; /* the rest follows from the decision */
    }
    if (json_object_get(xp, "would") != NULL &&
        strcmp(jstr(line, "would"), jstr(xp, "would")) != 0) {
        snprintf(msg, sizeof msg, "would %s, expected %s",
                 jstr(line, "would")[0] ? jstr(line, "would") : "(not monitored)",
                 jstr(xp, "would"));
        print_diff(&pc, msg);
    }
    if (json_object_get(xp, "status") != NULL &&
        json_integer_value(json_object_get(xp, "status")) !=
            json_integer_value(json_object_get(line, "status"))) {
        snprintf(msg, sizeof msg, "status %lld, expected %lld",
                 (long long)json_integer_value(json_object_get(line, "status")),
                 (long long)json_integer_value(json_object_get(xp, "status")));
        print_diff(&pc, msg);
    }
    if (json_object_get(xp, "route") != NULL &&
        strcmp(jstr(line, "route"), jstr(xp, "route")) != 0) {
        snprintf(msg, sizeof msg, "route %s, expected %s",
                 jstr(line, "route")[0] ? jstr(line, "route") : "(none)", jstr(xp, "route"));
        print_diff(&pc, msg);
    }
    if (json_object_get(xp, "destination") != NULL &&
        strcmp(jstr(line, "country"), jstr(xp, "destination")) != 0) {
        snprintf(msg, sizeof msg, "destination %s, expected %s",
                 jstr(line, "country")[0] ? jstr(line, "country") : "(unknown)",
                 jstr(xp, "destination"));
        print_diff(&pc, msg);
    }
    json_t *xf = json_object_get(xp, "findings");
    if (json_is_array(xf))
        compare_findings(json_object_get(line, "findings"), xf, print_diff, &pc, "expected");
}

/* The expectation written for one output line: stable member order. */
static json_t *expectation(json_t *line)
{
    json_t *x = json_object();
    char req[600];
    const char *url = jstr(line, "url");
    snprintf(req, sizeof req, "%s %s", jstr(line, "method"), url);
    json_object_set(x, "entry", json_object_get(line, "entry"));
    json_object_set_new(x, "request", json_string(req));
    if (json_is_string(json_object_get(line, "route")))
        json_object_set(x, "route", json_object_get(line, "route"));
    if (json_is_string(json_object_get(line, "country")))
        json_object_set(x, "destination", json_object_get(line, "country"));
    json_object_set(x, "decision", json_object_get(line, "decision"));
    if (json_object_get(line, "monitor") != NULL)
        json_object_set(x, "would", json_object_get(line, "would"));
    if (strcmp(jstr(line, "decision"), "refused") == 0) {
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

/* ------------------------------------------------------------------------ */
/* --diff-config                                                             */

typedef struct {
    json_t *changes;
} diff_ctx_t;

static void collect_change(void *arg, const char *msg)
{
    diff_ctx_t *dc = arg;
    json_array_append_new(dc->changes, json_string(msg));
}

/* The changes from A (this policy) to B (the other): decision (and
 * monitor's would), and per finding basis, action and operator (a finding
 * only one side inspected counts). Route and destination are shown in
 * before/after but alone are no change: the issue asks what the transfers
 * become. */
static json_t *diff_lines(json_t *a, json_t *b)
{
    diff_ctx_t dc = {json_array()};
    char msg[512];
    if (strcmp(jstr(a, "decision"), jstr(b, "decision")) != 0) {
        snprintf(msg, sizeof msg, "decision %s -> %s", jstr(a, "decision"), jstr(b, "decision"));
        collect_change(&dc, msg);
    }
    int ma = json_object_get(a, "monitor") != NULL, mb = json_object_get(b, "monitor") != NULL;
    if ((ma || mb) && (ma != mb || strcmp(jstr(a, "would"), jstr(b, "would")) != 0)) {
        snprintf(msg, sizeof msg, "monitor would %s -> %s", ma ? jstr(a, "would") : "(enforced)",
                 mb ? jstr(b, "would") : "(enforced)");
        collect_change(&dc, msg);
    }
    /* findings: A's as the "expectation" of B, in both directions */
    json_t *fa = json_object_get(a, "findings"), *fb = json_object_get(b, "findings");
    size_t nb = json_array_size(fb);
    char *used = calloc(nb + 1, 1);
    size_t i;
    json_t *f = NULL;
    json_array_foreach(fa, i, f)
    {
        json_t *g = used != NULL ? match_finding(fb, f, used) : NULL;
        if (g == NULL) {
            snprintf(msg, sizeof msg, "%s (%s): found -> not found", jstr(f, "path"),
                     jstr(f, "category"));
            collect_change(&dc, msg);
            continue;
        }
        static const char *const keys[] = {"basis", "action", "operator"};
        char part[400] = "";
        for (int k = 0; k < 3; k++) {
            const char *x = jstr(f, keys[k]), *y = jstr(g, keys[k]);
            if (strcmp(x, y) != 0)
                snprintf(part + strlen(part), sizeof part - strlen(part), "%s%s %s -> %s",
                         part[0] ? ", " : "", keys[k], x[0] ? x : "(none)", y[0] ? y : "(none)");
        }
        if (part[0]) {
            snprintf(msg, sizeof msg, "%s (%s): %s", jstr(f, "path"), jstr(f, "category"), part);
            collect_change(&dc, msg);
        }
    }
    json_array_foreach(fb, i, f)
    {
        if (used != NULL && used[i])
            continue;
        snprintf(msg, sizeof msg, "%s (%s): not found -> %s", jstr(f, "path"), jstr(f, "category"),
                 jstr(f, "action"));
        collect_change(&dc, msg);
    }
    free(used);
    return dc.changes;
}

/* ------------------------------------------------------------------------ */
/* --live                                                                    */

typedef struct {
    char host[128];
    char port[8];
    FILE *logs[MAX_SINK_LOGS];
    int nlogs;
    const bg_config_t *cfg; /* the offline policy */
    char peer[64];          /* our address as the daemon sees it (last send) */
    int peer_v6;
} live_t;

static int live_add_log(live_t *lv, const char *path)
{
    if (lv->nlogs >= MAX_SINK_LOGS) {
        fprintf(stderr, "bordergate replay: more than %d sink logs\n", MAX_SINK_LOGS);
        return -1;
    }
    FILE *fp = fopen(path, "a+");
    if (fp == NULL) {
        fprintf(stderr, "bordergate replay: --sink-log %s: %s\n", path, strerror(errno));
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    lv->logs[lv->nlogs++] = fp;
    return 0;
}

static int live_open(live_t *lv, const char *url, const opts_t *o, const bg_config_t *cfg)
{
    memset(lv, 0, sizeof *lv);
    lv->cfg = cfg;
    const char *a = url;
    if (strncmp(a, "http://", 7) == 0)
        a += 7;
    else if (strstr(a, "://") != NULL) {
        fprintf(stderr, "bordergate replay: --live needs a plain http:// URL\n");
        return -1;
    }
    size_t al = strcspn(a, "/");
    const char *colon = NULL;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', al);
        if (rb == NULL)
            return -1;
        snprintf(lv->host, sizeof lv->host, "%.*s", (int)(rb - a - 1), a + 1);
        colon = rb + 1 < a + al && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(a, ':', al);
        snprintf(lv->host, sizeof lv->host, "%.*s", (int)(colon != NULL ? (size_t)(colon - a) : al),
                 a);
    }
    snprintf(lv->port, sizeof lv->port, "%.*s", colon != NULL ? (int)(a + al - colon - 1) : 2,
             colon != NULL ? colon + 1 : "80");
    for (int i = 0; i < o->nsink; i++) {
        /* a directory: every sink recording (*.jsonl) in it */
        DIR *d = opendir(o->sink_logs[i]);
        if (d != NULL) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                size_t n = strlen(de->d_name);
                if (n < 6 || strcmp(de->d_name + n - 6, ".jsonl") != 0)
                    continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", o->sink_logs[i], de->d_name);
                if (live_add_log(lv, p) != 0) {
                    closedir(d);
                    return -1;
                }
            }
            closedir(d);
        } else if (live_add_log(lv, o->sink_logs[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

static void live_close(live_t *lv)
{
    for (int i = 0; i < lv->nlogs; i++)
        fclose(lv->logs[i]);
}

/* Send REQ, read the whole response (Connection: close). Returns the
 * status, or -1 with ERR. DECISION gets X-Bordergate-Decision. */
static int live_send(live_t *lv, const bg_replay_req_t *req, char *decision, size_t dcap, char *err,
                     size_t errcap)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(lv->host, lv->port, &hints, &ai) != 0 || ai == NULL) {
        snprintf(err, errcap, "cannot resolve %s", lv->host);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    struct timeval tv = {30, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errcap, "connect %s:%s: %s", lv->host, lv->port, strerror(errno));
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(ai);
    /* The caller address the daemon will put into X-Forwarded-For. */
    struct sockaddr_storage me;
    socklen_t mel = sizeof me;
    lv->peer[0] = '\0';
    if (getsockname(fd, (struct sockaddr *)&me, &mel) == 0) {
        bg_util_addr_string((struct sockaddr *)&me, lv->peer, sizeof lv->peer);
        lv->peer_v6 = me.ss_family == AF_INET6;
    }
    size_t cap = 4096 + req->body_len + strlen(req->target) + strlen(req->authority);
    for (size_t i = 0; i < req->nheaders; i++)
        cap += strlen(req->names[i]) + strlen(req->values[i]) + 4;
    char *buf = malloc(cap);
    int status = -1;
    if (buf == NULL)
        goto out;
    int n = snprintf(buf, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n", req->method, req->target,
                     req->authority);
    size_t len = (size_t)n;
    for (size_t i = 0; i < req->nheaders; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s: %s\r\n", req->names[i], req->values[i]);
    if (req->body != NULL)
        len += (size_t)snprintf(buf + len, cap - len, "Content-Length: %zu\r\n", req->body_len);
    len += (size_t)snprintf(buf + len, cap - len, "Connection: close\r\n\r\n");
    if (req->body != NULL) {
        memcpy(buf + len, req->body, req->body_len);
        len += req->body_len;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            /* a refusal (413, 421...) may come before the body is read and
             * close the connection: its answer is still there to read */
            snprintf(err, errcap, "send: %s", strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    /* read the response head (the body is not needed) */
    size_t got = 0;
    for (;;) {
        if (got + 1 >= cap)
            break;
        ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        bg_http_header_t fields[BG_HTTP_MAX_HEADERS];
        bg_http_response_t resp = {.headers = fields, .max_headers = BG_HTTP_MAX_HEADERS};
        const char *why = NULL;
        bg_http_result_t pr = bg_http_parse_response(buf, got, cap, &resp, &why);
        if (pr == BG_HTTP_ERROR) {
            snprintf(err, errcap, "malformed response: %s", why ? why : "?");
            goto out;
        }
        if (pr == BG_HTTP_OK) {
            status = resp.status;
            const bg_http_header_t *h =
                bg_http_find_header(resp.headers, resp.nheaders, "X-Bordergate-Decision");
            snprintf(decision, dcap, "%.*s", h != NULL ? (int)h->value_len : 0,
                     h != NULL ? h->value : "");
            break;
        }
    }
    if (status >= 0)
        err[0] = '\0';
    else if (err[0] == '\0')
        snprintf(err, errcap, "no response from %s:%s", lv->host, lv->port);
out:
    free(buf);
    close(fd);
    return status;
}

/* New sink records since the last call: how many, and the last one. */
static int live_arrivals(live_t *lv, json_t **last)
{
    int n = 0;
    *last = NULL;
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; i < lv->nlogs; i++) {
        clearerr(lv->logs[i]);
        ssize_t r;
        while ((r = getline(&line, &cap, lv->logs[i])) > 0) {
            if (line[r - 1] != '\n') { /* a partial line: read it again next time */
                fseek(lv->logs[i], -r, SEEK_CUR);
                break;
            }
            json_t *o = json_loads(line, 0, NULL);
            if (o == NULL)
                continue;
            n++;
            json_decref(*last);
            *last = o;
        }
    }
    free(line);
    return n;
}

static int record_body_equals(json_t *rec, const char *b, size_t n)
{
    json_t *body = json_object_get(rec, "body");
    if (body != NULL)
        return json_string_length(body) == n && memcmp(json_string_value(body), b, n) == 0;
    const char *hex = json_string_value(json_object_get(rec, "body_hex"));
    if (hex == NULL || strlen(hex) != 2 * n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || (unsigned char)b[i] != v)
            return 0;
    }
    return 1;
}

/* A header name for a message: as it is, or "*" when a detector finds
 * personal information in it (inspect/redact.h: never a value). */
static void safe_header_name(const char *name, char *out, size_t cap)
{
    char t[300], r[300];
    snprintf(t, sizeof t, "/%.250s", name);
    bg_redact_target(t, strlen(t), r, sizeof r);
    snprintf(out, cap, "%s", r[0] == '/' ? r + 1 : r);
}

/* Was header NAME one the offline decision rewrote or removed? */
static int offline_changed_header(const bg_replay_result_t *res, const char *name)
{
    for (size_t k = 0; k < res->ev.rw.nheaders; k++) {
        size_t i = res->ev.rw.header_index[k];
        if (i < res->nheaders && bg_util_ieq(res->headers[i].name, res->headers[i].name_len, name))
            return 1;
    }
    return 0;
}

/* Was NAME: VALUE a field the caller sent (so it left in clear)? */
static int caller_sent(const bg_replay_result_t *res, const char *name, const char *value)
{
    for (size_t i = 0; i < res->nheaders; i++)
        if (bg_util_ieq(res->headers[i].name, res->headers[i].name_len, name) &&
            res->headers[i].value_len == strlen(value) &&
            memcmp(res->headers[i].value, value, res->headers[i].value_len) == 0)
            return 1;
    return 0;
}

/*
 * What one upstream received (sink record REC) against what the offline
 * evaluation says leaves (replay/upstream.h): the method, the path, the
 * query, every header field (as a multiset: names without case, values
 * byte for byte) and the body. Each difference names the part and, for a
 * header, its name (or "*"), never a value.
 */
static void live_compare_arrival(live_t *lv, print_ctx_t *pc, const bg_replay_req_t *req,
                                 const bg_replay_result_t *res, json_t *rec)
{
    char msg[512], hn[300];
    const bg_decision_t *dd = &res->ev.decision;
    bg_replay_upstream_t up;
    if (bg_replay_upstream(lv->cfg, req, res, lv->peer, lv->peer_v6, "close", &up) != 0) {
        print_diff(pc, "live: cannot derive the offline upstream request (out of memory)");
        return;
    }
    const char *what = res->ev.rewritten && !dd->monitor ? "de-identified" : "original";
    if (strcmp(jstr(rec, "method"), req->method) != 0)
        print_diff(pc, "live: the method that arrived upstream differs from the offline one");
    const char *rt = jstr(rec, "target");
    size_t p1 = strcspn(up.target, "?"), p2 = strcspn(rt, "?");
    if (p1 != p2 || memcmp(up.target, rt, p1) != 0) {
        snprintf(msg, sizeof msg,
                 "live: the path that arrived upstream differs from the offline %s path", what);
        print_diff(pc, msg);
    }
    if (strcmp(up.target + p1, rt + p2) != 0) {
        snprintf(msg, sizeof msg,
                 "live: the query that arrived upstream differs from the offline %s query", what);
        print_diff(pc, msg);
    }
    /* Header fields: pair equal ones first, then name what is left. */
    json_t *hs = json_object_get(rec, "headers");
    size_t nh = json_array_size(hs);
    char *used = calloc(nh + 1, 1);
    int matched[BG_REPLAY_UP_MAX_HEADERS] = {0};
    if (used == NULL) {
        print_diff(pc, "live: out of memory comparing headers");
        bg_replay_upstream_free(&up);
        return;
    }
    for (size_t e = 0; e < up.nheaders; e++) {
        for (size_t i = 0; i < nh && !matched[e]; i++) {
            json_t *pair = json_array_get(hs, i);
            const char *n = json_string_value(json_array_get(pair, 0));
            const char *v = json_string_value(json_array_get(pair, 1));
            if (!used[i] && n != NULL && v != NULL && strcasecmp(n, up.names[e]) == 0 &&
                strcmp(v, up.values[e]) == 0)
                used[i] = 1, matched[e] = 1;
        }
    }
    for (size_t e = 0; e < up.nheaders; e++) {
        if (matched[e])
            continue;
        /* the same name arrived with another value? */
        const char *other = NULL;
        for (size_t i = 0; i < nh && other == NULL; i++) {
            json_t *pair = json_array_get(hs, i);
            const char *n = json_string_value(json_array_get(pair, 0));
            if (!used[i] && n != NULL && strcasecmp(n, up.names[e]) == 0) {
                used[i] = 1;
                other = json_string_value(json_array_get(pair, 1));
                other = other != NULL ? other : "";
            }
        }
        safe_header_name(up.names[e], hn, sizeof hn);
        if (other == NULL)
            snprintf(msg, sizeof msg, "live: header %s did not arrive upstream, offline it leaves",
                     hn);
        else if (offline_changed_header(res, up.names[e]) && caller_sent(res, up.names[e], other))
            snprintf(msg, sizeof msg,
                     "live: header %s arrived upstream as the caller sent it, offline it was "
                     "de-identified",
                     hn);
        else
            snprintf(msg, sizeof msg,
                     "live: header %s arrived upstream with another value than the offline %s one",
                     hn, what);
        print_diff(pc, msg);
    }
    for (size_t i = 0; i < nh; i++) {
        if (used[i])
            continue;
        json_t *pair = json_array_get(hs, i);
        const char *n = json_string_value(json_array_get(pair, 0));
        safe_header_name(n != NULL ? n : "?", hn, sizeof hn);
        if (n != NULL && offline_changed_header(res, n))
            snprintf(msg, sizeof msg, "live: header %s arrived upstream, offline it was removed",
                     hn);
        else
            snprintf(msg, sizeof msg, "live: header %s arrived upstream, offline it does not leave",
                     hn);
        print_diff(pc, msg);
    }
    free(used);
    if (!record_body_equals(rec, up.body, up.body_len)) {
        snprintf(msg, sizeof msg,
                 "live: the body that arrived upstream differs from the offline %s body", what);
        print_diff(pc, msg);
    }
    bg_replay_upstream_free(&up);
}

/*
 * --live: the running daemon must agree with the offline decision.
 *   refused     same status, nothing upstream
 *   block       451 and X-Bordergate-Decision: block, nothing upstream
 *   allow       X-Bordergate-Decision: allow; with sink logs: exactly one
 *               request arrived, as replay/upstream.h derives it: method,
 *               path, query, every header field and the body
 *   deidentify  X-Bordergate-Decision: deidentify; with sink logs: the same
 *               against the offline de-identified rendering
 *   monitor     "allow; monitor; would=X", arrived unchanged
 */
static void live_check(live_t *lv, const bg_replay_req_t *req, const bg_replay_result_t *res,
                       json_t *line, counts_t *c)
{
    char label[600], msg[512], decision[128] = "", err[400] = "";
    entry_label(line, label, sizeof label);
    print_ctx_t pc = {label, c};
    size_t before = c->differences;
    json_t *rec = NULL;
    live_arrivals(lv, &rec); /* drain anything older */
    json_decref(rec);
    rec = NULL;
    int status = live_send(lv, req, decision, sizeof decision, err, sizeof err);
    if (status < 0) {
        snprintf(msg, sizeof msg, "live: %s", err);
        print_diff(&pc, msg);
        return;
    }
    int arrived = live_arrivals(lv, &rec);
    const char *d = bg_replay_decision(res);
    const bg_decision_t *dd = res->evaluated ? &res->ev.decision : NULL;
    if (strcmp(d, "refused") == 0) {
        if (status != res->status) {
            snprintf(msg, sizeof msg, "live: status %d, offline refused with %d", status,
                     res->status);
            print_diff(&pc, msg);
        }
    } else if (dd != NULL && dd->monitor) {
        char want[96];
        snprintf(want, sizeof want, "allow; monitor; would=%s", bg_outcome_name(dd->would));
        if (strcmp(decision, want) != 0) {
            snprintf(msg, sizeof msg, "live: decision \"%s\", offline \"%s\"", decision, want);
            print_diff(&pc, msg);
        }
    } else if (strcmp(decision, d) != 0 || (strcmp(d, "block") == 0 && status != 451)) {
        snprintf(msg, sizeof msg, "live: status %d decision %s, offline %s", status,
                 decision[0] ? decision : "(none)", d);
        print_diff(&pc, msg);
    }
    if (lv->nlogs > 0) {
        int should_arrive = strcmp(d, "allow") == 0 || strcmp(d, "deidentify") == 0;
        if (!should_arrive && arrived > 0) {
            snprintf(msg, sizeof msg, "live: %s offline, but %d request(s) arrived upstream", d,
                     arrived);
            print_diff(&pc, msg);
        } else if (should_arrive && arrived != 1) {
            snprintf(msg, sizeof msg,
                     "live: %s offline, but %d request(s) arrived upstream (expected 1)", d,
                     arrived);
            print_diff(&pc, msg);
        } else if (should_arrive) {
            live_compare_arrival(lv, &pc, req, res, rec);
        }
    }
    json_decref(rec);
    if (c->differences == before)
        c->live_ok++;
    c->live_diffs += c->differences - before;
}

/* ------------------------------------------------------------------------ */
/* output                                                                    */

static void print_table_header(void)
{
    printf("%-6s %-10s %-4s %-22s %-24s %s\n", "ENTRY", "DECISION", "DEST", "ROUTE", "FINDINGS",
           "REQUEST");
}

static void print_table_row(json_t *line)
{
    char fsum[128] = "";
    const char *actions[] = {"allow", "deidentify", "remove", "remove_record", "block"};
    json_t *fs = json_object_get(line, "findings");
    for (int a = 0; a < 5; a++) {
        size_t i, k = 0;
        json_t *f = NULL;
        json_array_foreach(fs, i, f)
        {
            if (strcmp(jstr(f, "action"), actions[a]) == 0)
                k++;
        }
        if (k > 0)
            snprintf(fsum + strlen(fsum), sizeof fsum - strlen(fsum), "%s%zu %s",
                     fsum[0] ? ", " : "", k, actions[a]);
    }
    char dec[40];
    if (json_object_get(line, "monitor") != NULL)
        snprintf(dec, sizeof dec, "%s(%s)", "monitor", jstr(line, "would"));
    else if (json_object_get(line, "status") != NULL)
        snprintf(dec, sizeof dec, "refused %lld",
                 (long long)json_integer_value(json_object_get(line, "status")));
    else
        snprintf(dec, sizeof dec, "%s", jstr(line, "decision"));
    char label[600];
    entry_label(line, label, sizeof label);
    const char *req = strchr(label + 6, ' ');
    printf("%-6lld %-10s %-4s %-22s %-24s %s\n",
           (long long)json_integer_value(json_object_get(line, "entry")), dec,
           jstr(line, "country")[0] ? jstr(line, "country") : "-",
           jstr(line, "route")[0] ? jstr(line, "route") : "-", fsum[0] ? fsum : "-",
           req != NULL ? req + 1 : "");
}

static void print_line(json_t *line)
{
    char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
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

/* ------------------------------------------------------------------------ */

/* --max-entry-mb V: a whole decimal number of MiB in 1..4096 (nothing after
 * the digits) into *BYTES. 0, or -1 leaving *BYTES alone. */
static int parse_mb(const char *v, size_t *bytes)
{
    char *end = NULL;
    errno = 0;
    long mb = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || mb < 1 || mb > 4096)
        return -1;
    *bytes = (size_t)mb << 20;
    return 0;
}

static int parse_opts(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, field)                                                                           \
    if (strcmp(a, name) == 0) {                                                                    \
        if (v == NULL) {                                                                           \
            fprintf(stderr, "bordergate replay: %s needs a value\n", name);                        \
            return 2;                                                                              \
        }                                                                                          \
        o->field = v;                                                                              \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            replay_usage(stdout);
            return 1;
        }
        OPT("--config", config)
        OPT("--har", har)
        OPT("--gor", gor)
        OPT("--expect", expect)
        OPT("--write-expect", write_expect)
        OPT("--diff-config", diff_config)
        OPT("--live", live)
        OPT("--now", now)
        OPT("--consents", consents)
#undef OPT
        if (strcmp(a, "--sink-log") == 0 && v != NULL && o->nsink < MAX_SINK_LOGS) {
            o->sink_logs[o->nsink++] = v;
            i++;
        } else if (strcmp(a, "--proxy") == 0 && v != NULL && strchr(v, ':') != NULL &&
                   o->nproxy < MAX_SINK_LOGS) {
            o->proxies[o->nproxy++] = v;
            i++;
        } else if (strcmp(a, "--compare-recorded") == 0) {
            o->compare_recorded = 1;
        } else if (strcmp(a, "--format") == 0 && v != NULL &&
                   (strcmp(v, "json") == 0 || strcmp(v, "table") == 0)) {
            o->table = strcmp(v, "table") == 0;
            i++;
        } else if (strcmp(a, "--max-entry-mb") == 0 && v != NULL &&
                   parse_mb(v, &o->max_entry) == 0) {
            i++;
        } else {
            fprintf(stderr, "bordergate replay: unknown or incomplete option '%s'\n", a);
            replay_usage(stderr);
            return 2;
        }
    }
    if (o->config == NULL || (o->har == NULL) == (o->gor == NULL)) {
        fprintf(stderr, "bordergate replay: --config POLICY and one of --har FILE or --gor FILE "
                        "are required\n");
        return 2;
    }
    if (o->nsink > 0 && o->live == NULL) {
        fprintf(stderr, "bordergate replay: --sink-log needs --live\n");
        return 2;
    }
    if (o->diff_config != NULL && (o->expect != NULL || o->live != NULL)) {
        fprintf(stderr,
                "bordergate replay: --diff-config cannot be combined with --expect or --live\n");
        return 2;
    }
    return 0;
}

int bg_cli_replay(int argc, char **argv)
{
    opts_t o;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;

    int64_t now = (int64_t)bg_util_wall_ms();
    if (o.now != NULL && bg_consent_time_parse(o.now, &now) != 0) {
        fprintf(stderr,
                "bordergate replay: --now: '%s' is not an RFC 3339 time (2026-05-01T12:00:00Z)\n",
                o.now);
        return 2;
    }
    policy_env_t pa, pb;
    memset(&pb, 0, sizeof pb);
    json_t *expect = NULL;
    FILE *wx = NULL;
    live_t lv;
    int live_ready = 0;
    source_t src;
    memset(&src, 0, sizeof src);
    counts_t c;
    memset(&c, 0, sizeof c);
    rc = 2;
    if (load_policy(o.config, o.consents, now, &pa) != 0)
        return 2;
    if (o.diff_config != NULL && load_policy(o.diff_config, o.consents, now, &pb) != 0)
        goto out;
    if (o.expect != NULL) {
        json_error_t je;
        expect = json_load_file(o.expect, 0, &je);
        if (expect == NULL) {
            fprintf(stderr, "bordergate replay: %s:%d:%d: %s\n", o.expect, je.line, je.column,
                    je.text);
            goto out;
        }
        if (!json_is_array(json_object_get(expect, "entries"))) {
            fprintf(stderr, "bordergate replay: %s: no \"entries\" array\n", o.expect);
            goto out;
        }
    }
    if (o.live != NULL) {
        if (live_open(&lv, o.live, &o, pa.cfg) != 0)
            goto out;
        live_ready = 1;
    }
    /* The proxy's own addresses: recordings made in front of it. */
    for (int i = 0; i < pa.cfg->nlisten; i++)
        o.proxies[o.nproxy++] = pa.cfg->listen[i].text;
    o.proxies[o.nproxy] = NULL;
    char err[1024];
    if (o.har != NULL)
        src.har = bg_har_open(o.har, 0, o.max_entry, err, sizeof err);
    else
        src.gor = bg_gor_open(o.gor, o.max_entry, err, sizeof err);
    if (src.har == NULL && src.gor == NULL) {
        fprintf(stderr, "bordergate replay: %s\n", err);
        goto out;
    }
    if (o.write_expect != NULL) {
        wx = fopen(o.write_expect, "w");
        if (wx == NULL) {
            fprintf(stderr, "bordergate replay: %s: %s\n", o.write_expect, strerror(errno));
            goto out;
        }
        json_t *hd = json_object();
        json_object_set_new(hd, "format", json_string("bordergate-replay-expect/1"));
        json_object_set_new(hd, "config", json_string(o.config));
        json_object_set_new(hd, "traffic", json_string(o.har != NULL ? o.har : o.gor));
        if (o.now != NULL)
            json_object_set_new(hd, "now", json_string(o.now));
        char *s = json_dumps(hd, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        json_decref(hd);
        if (s != NULL)
            fprintf(wx, "%.*s,\n \"entries\": [\n", (int)(strlen(s) - 2), s);
        free(s);
    }
    int print_each =
        o.expect == NULL && o.write_expect == NULL && o.diff_config == NULL && o.live == NULL;
    if (o.table && print_each)
        print_table_header();
    bg_replay_req_t req;
    memset(&req, 0, sizeof req);
    bg_sbuf_t ob = {0};
    for (;;) {
        int r = source_next(&src, &req, err, sizeof err);
        if (r == 0)
            break;
        if (r < 0) {
            fprintf(stderr, "bordergate replay: %s\n", err);
            c.errors++;
            if (src.fatal)
                break;
            continue;
        }
        c.entries++;
        if (bg_replay_req_behind_proxy(&req, o.proxies) < 0) {
            fprintf(stderr, "bordergate replay: entry %zu: out of memory\n", req.index);
            c.errors++;
            continue;
        }
        bg_replay_result_t res;
        char eerr[200];
        if (bg_replay_eval(&pa.ctx, &req, &res, eerr, sizeof eerr) != 0) {
            fprintf(stderr, "bordergate replay: entry %zu: %s\n", req.index, eerr);
            c.errors++;
            bg_replay_result_free(&res);
            continue;
        }
        /* the line is written as text; a tree only when something compares it */
        ob.n = 0;
        bg_replay_result_write(&req, &res, &ob);
        json_t *line = NULL;
        if (!print_each || o.table) {
            line = ob.failed ? NULL : json_loadb(ob.p, ob.n, 0, NULL);
            if (line == NULL) {
                fprintf(stderr, "bordergate replay: entry %zu: out of memory\n", req.index);
                c.errors++;
                bg_replay_result_free(&res);
                continue;
            }
        }
        const char *d = bg_replay_decision(&res);
        if (strcmp(d, "allow") == 0)
            c.allow++;
        else if (strcmp(d, "deidentify") == 0)
            c.deidentify++;
        else if (strcmp(d, "block") == 0)
            c.block++;
        else
            c.refused++;
        if (res.evaluated && res.ev.decided && res.ev.decision.monitor)
            c.monitor++;
        if (o.compare_recorded && req.recorded_decision != NULL) {
            /* "block", or "allow; monitor; would=block": the outcome first */
            size_t rl = strcspn(req.recorded_decision, "; ");
            if (strlen(d) != rl || strncmp(d, req.recorded_decision, rl) != 0) {
                printf("entry %zu: recorded X-Bordergate-Decision %.*s, decided offline %s\n",
                       req.index, (int)rl, req.recorded_decision, d);
                c.recorded_diffs++;
            }
        }
        if (o.diff_config != NULL) {
            bg_replay_result_t rb;
            if (bg_replay_eval(&pb.ctx, &req, &rb, eerr, sizeof eerr) != 0) {
                fprintf(stderr, "bordergate replay: entry %zu: %s\n", req.index, eerr);
                c.errors++;
            } else {
                json_t *lb = bg_replay_result_json(&req, &rb);
                json_t *ch = diff_lines(line, lb);
                if (json_array_size(ch) > 0) {
                    c.changed++;
                    if (o.table) {
                        char label[600];
                        entry_label(line, label, sizeof label);
                        size_t i;
                        json_t *m = NULL;
                        json_array_foreach(ch, i, m)
                        {
                            printf("%s: %s\n", label, json_string_value(m));
                        }
                    } else {
                        json_t *out = json_object();
                        json_object_set(out, "entry", json_object_get(line, "entry"));
                        json_object_set(out, "method", json_object_get(line, "method"));
                        json_object_set(out, "url", json_object_get(line, "url"));
                        json_object_set(out, "changes", ch);
                        json_object_set(out, "before", line);
                        json_object_set(out, "after", lb);
                        print_line(out);
                        json_decref(out);
                    }
                }
                json_decref(ch);
                json_decref(lb);
            }
            bg_replay_result_free(&rb);
        } else if (expect != NULL) {
            json_t *xs = json_object_get(expect, "entries");
            json_t *xp = NULL;
            size_t i;
            json_t *x = NULL;
            /* by position first, else by the entry number it names */
            x = json_array_get(xs, req.index);
            if (x != NULL &&
                (json_integer_value(json_object_get(x, "entry")) == (json_int_t)req.index ||
                 json_integer_value(json_object_get(x, "index")) == (json_int_t)req.index))
                xp = x;
            json_array_foreach(xs, i, x)
            {
                if (xp != NULL)
                    break;
                json_t *k = json_object_get(x, "entry") ? json_object_get(x, "entry")
                                                        : json_object_get(x, "index");
                if (json_integer_value(k) == (json_int_t)req.index)
                    xp = x;
            }
            if (xp == NULL) {
                char label[600];
                entry_label(line, label, sizeof label);
                printf("%s: no expectation for this entry (decision %s)\n", label, d);
                c.differences++;
            } else {
                compare_expect(line, xp, &c);
            }
        } else if (print_each) {
            if (o.table) {
                print_table_row(line);
            } else {
                fwrite(ob.p, 1, ob.n, stdout);
                fputc('\n', stdout);
            }
        }
        if (wx != NULL) {
            json_t *x = expectation(line);
            write_expectation(wx, x, c.entries == 1);
            json_decref(x);
        }
        if (live_ready)
            live_check(&lv, &req, &res, line, &c);
        json_decref(line);
        bg_replay_result_free(&res);
    }
    bg_replay_req_clear(&req);
    bg_sbuf_free(&ob);
    if (expect != NULL) {
        size_t i;
        json_t *x = NULL;
        json_array_foreach(json_object_get(expect, "entries"), i, x)
        {
            json_t *k = json_object_get(x, "entry") ? json_object_get(x, "entry")
                                                    : json_object_get(x, "index");
            if ((size_t)json_integer_value(k) >= c.entries + c.errors) {
                printf("entry %lld: expected (%s), but the recording has only %zu entries\n",
                       (long long)json_integer_value(k),
                       json_object_get(x, "decision") ? jstr(x, "decision") : jstr(x, "outcome"),
                       c.entries + c.errors);
                c.differences++;
            }
        }
    }
    if (wx != NULL) {
        fputs("\n ]\n}\n", wx);
        if (fclose(wx) != 0) {
            fprintf(stderr, "bordergate replay: %s: %s\n", o.write_expect, strerror(errno));
            c.errors++;
        }
        wx = NULL;
    }
    /* summary */
    char sum[512];
    snprintf(sum, sizeof sum,
             "{\"summary\":{\"entries\":%zu,\"allow\":%zu,\"deidentify\":%zu,\"block\":%zu,"
             "\"refused\":%zu,"
             "\"monitor\":%zu,\"errors\":%zu",
             c.entries, c.allow, c.deidentify, c.block, c.refused, c.monitor, c.errors);
    if (expect != NULL)
        snprintf(sum + strlen(sum), sizeof sum - strlen(sum),
                 ",\"differences\":%zu,\"skipped\":%zu", c.differences, c.skipped);
    if (o.diff_config != NULL)
        snprintf(sum + strlen(sum), sizeof sum - strlen(sum), ",\"changed\":%zu", c.changed);
    if (o.compare_recorded)
        snprintf(sum + strlen(sum), sizeof sum - strlen(sum), ",\"recorded_differences\":%zu",
                 c.recorded_diffs);
    if (live_ready)
        snprintf(sum + strlen(sum), sizeof sum - strlen(sum), ",\"live_agree\":%zu", c.live_ok);
    if (o.table) {
        printf("\n%zu entries: %zu allow, %zu deidentify, %zu block, %zu refused", c.entries,
               c.allow, c.deidentify, c.block, c.refused);
        if (c.monitor)
            printf(" (%zu in monitor mode)", c.monitor);
        if (c.errors)
            printf("; %zu unreadable", c.errors);
        printf("\n");
    } else {
        fprintf(stderr, "%s}}\n", sum);
    }
    if (expect != NULL) {
        size_t xd = c.differences - c.live_diffs;
        if (xd == 0 && c.skipped == 0)
            printf("all %zu entries match %s\n", c.entries, o.expect);
        else if (xd == 0)
            printf("all %zu entries match %s (%zu skipped as known gaps)\n", c.entries - c.skipped,
                   o.expect, c.skipped);
        else
            printf("%zu difference(s) from %s\n", xd, o.expect);
    }
    if (o.diff_config != NULL)
        fprintf(o.table ? stdout : stderr, "%zu of %zu entries change under %s\n", c.changed,
                c.entries, o.diff_config);
    if (live_ready && c.live_diffs == 0)
        printf("live: all %zu entries agree with the offline decisions\n", c.live_ok);
    else if (live_ready)
        printf("live: %zu of %zu entries disagree with the offline decisions\n",
               c.entries - c.live_ok, c.entries);
    rc = c.errors > 0 ? 2 : (c.differences > 0 || c.changed > 0 || c.recorded_diffs > 0) ? 1 : 0;
out:
    if (wx != NULL)
        fclose(wx);
    if (live_ready)
        live_close(&lv);
    bg_har_close(src.har);
    bg_gor_close(src.gor);
    json_decref(expect);
    free_policy(&pa);
    free_policy(&pb);
    return rc;
}
