/*
 * `bordergate replay --live URL [--sink-log FILE|DIR ...]`: send every
 * request through a running bordergate and check that its answer agrees
 * with the offline decision, and, with the sink's recordings, that exactly
 * what the offline evaluation says leaves arrived upstream (method, path,
 * query, every header field, body). Differences name parts and header
 * names, never values.
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

#include "cli/replay.h"
#include "common/util.h"
#include "inspect/redact.h"
#include "policy/decide.h"
#include "proxy/http.h"
#include "replay/upstream.h"

typedef struct {
    char host[128];
    char port[8];
    FILE *logs[BG_CLI_REPLAY_MAX_SINK_LOGS];
    int nlogs;
    const bg_config_t *cfg; /* the offline policy */
    char peer[64];          /* our address as the daemon sees it (last send) */
    int peer_v6;
} live_t;

static int live_add_log(live_t *lv, const char *path)
{
    if (lv->nlogs >= BG_CLI_REPLAY_MAX_SINK_LOGS) {
        fprintf(stderr, "bordergate replay: more than %d sink logs\n", BG_CLI_REPLAY_MAX_SINK_LOGS);
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

static int live_open(live_t *lv, const char *url, const bg_cli_replay_opts_t *o,
                     const bg_config_t *cfg)
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
static void live_compare_arrival(live_t *lv, bg_cli_replay_diffs_t *pc, const bg_replay_req_t *req,
                                 const bg_replay_result_t *res, json_t *rec)
{
    char msg[512], hn[300];
    const bg_decision_t *dd = &res->ev.decision;
    bg_replay_upstream_t up;
    if (bg_replay_upstream(lv->cfg, req, res, lv->peer, lv->peer_v6, "close", &up) != 0) {
        bg_cli_replay_diff(pc, "live: cannot derive the offline upstream request (out of memory)");
        return;
    }
    const char *what = res->ev.rewritten && !dd->monitor ? "de-identified" : "original";
    if (strcmp(bg_cli_replay_jstr(rec, "method"), req->method) != 0)
        bg_cli_replay_diff(pc,
                           "live: the method that arrived upstream differs from the offline one");
    const char *rt = bg_cli_replay_jstr(rec, "target");
    size_t p1 = strcspn(up.target, "?"), p2 = strcspn(rt, "?");
    if (p1 != p2 || memcmp(up.target, rt, p1) != 0) {
        snprintf(msg, sizeof msg,
                 "live: the path that arrived upstream differs from the offline %s path", what);
        bg_cli_replay_diff(pc, msg);
    }
    if (strcmp(up.target + p1, rt + p2) != 0) {
        snprintf(msg, sizeof msg,
                 "live: the query that arrived upstream differs from the offline %s query", what);
        bg_cli_replay_diff(pc, msg);
    }
    /* Header fields: pair equal ones first, then name what is left. */
    json_t *hs = json_object_get(rec, "headers");
    size_t nh = json_array_size(hs);
    char *used = calloc(nh + 1, 1);
    int matched[BG_REPLAY_UP_MAX_HEADERS] = {0};
    if (used == NULL) {
        bg_cli_replay_diff(pc, "live: out of memory comparing headers");
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
        bg_cli_replay_diff(pc, msg);
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
        bg_cli_replay_diff(pc, msg);
    }
    free(used);
    if (!record_body_equals(rec, up.body, up.body_len)) {
        snprintf(msg, sizeof msg,
                 "live: the body that arrived upstream differs from the offline %s body", what);
        bg_cli_replay_diff(pc, msg);
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
                       json_t *line, bg_cli_replay_counts_t *c)
{
    char label[600], msg[512], decision[128] = "", err[400] = "";
    bg_cli_replay_label(line, label, sizeof label);
    bg_cli_replay_diffs_t pc = {label, c};
    size_t before = c->differences;
    json_t *rec = NULL;
    live_arrivals(lv, &rec); /* drain anything older */
    json_decref(rec);
    rec = NULL;
    int status = live_send(lv, req, decision, sizeof decision, err, sizeof err);
    if (status < 0) {
        snprintf(msg, sizeof msg, "live: %s", err);
        bg_cli_replay_diff(&pc, msg);
        return;
    }
    int arrived = live_arrivals(lv, &rec);
    const char *d = bg_replay_decision(res);
    const bg_decision_t *dd = res->evaluated ? &res->ev.decision : NULL;
    if (strcmp(d, "refused") == 0) {
        if (status != res->status) {
            snprintf(msg, sizeof msg, "live: status %d, offline refused with %d", status,
                     res->status);
            bg_cli_replay_diff(&pc, msg);
        }
    } else if (dd != NULL && dd->monitor) {
        char want[96];
        snprintf(want, sizeof want, "allow; monitor; would=%s", bg_outcome_name(dd->would));
        if (strcmp(decision, want) != 0) {
            snprintf(msg, sizeof msg, "live: decision \"%s\", offline \"%s\"", decision, want);
            bg_cli_replay_diff(&pc, msg);
        }
    } else if (strcmp(decision, d) != 0 || (strcmp(d, "block") == 0 && status != 451)) {
        snprintf(msg, sizeof msg, "live: status %d decision %s, offline %s", status,
                 decision[0] ? decision : "(none)", d);
        bg_cli_replay_diff(&pc, msg);
    }
    if (lv->nlogs > 0) {
        int should_arrive = strcmp(d, "allow") == 0 || strcmp(d, "deidentify") == 0;
        if (!should_arrive && arrived > 0) {
            snprintf(msg, sizeof msg, "live: %s offline, but %d request(s) arrived upstream", d,
                     arrived);
            bg_cli_replay_diff(&pc, msg);
        } else if (should_arrive && arrived != 1) {
            snprintf(msg, sizeof msg,
                     "live: %s offline, but %d request(s) arrived upstream (expected 1)", d,
                     arrived);
            bg_cli_replay_diff(&pc, msg);
        } else if (should_arrive) {
            live_compare_arrival(lv, &pc, req, res, rec);
        }
    }
    json_decref(rec);
    if (c->differences == before)
        c->live_ok++;
    c->live_diffs += c->differences - before;
}
static int live_wanted(const bg_cli_replay_opts_t *o)
{
    return o->live != NULL;
}

static int live_mode_open(const bg_cli_replay_run_t *run, void **state)
{
    live_t *lv = malloc(sizeof *lv);
    if (lv == NULL) {
        fprintf(stderr, "bordergate replay: out of memory\n");
        return -1;
    }
    *state = lv; /* closed by live_mode_close, also when live_open fails */
    return live_open(lv, run->o->live, run->o, run->policy->cfg);
}

static void live_entry(void *state, const bg_cli_replay_entry_t *e, bg_cli_replay_counts_t *c)
{
    live_check(state, e->req, e->res, e->line, c);
}

static void live_summary(void *state, const bg_cli_replay_counts_t *c, bg_sbuf_t *sum)
{
    (void)state;
    bg_sbuf_addf(sum, ",\"live_agree\":%zu", c->live_ok);
}

static void live_report(void *state, const bg_cli_replay_counts_t *c)
{
    (void)state;
    if (c->live_diffs == 0)
        printf("live: all %zu entries agree with the offline decisions\n", c->live_ok);
    else
        printf("live: %zu of %zu entries disagree with the offline decisions\n",
               c->entries - c->live_ok, c->entries);
}

static void live_mode_close(void *state)
{
    if (state == NULL)
        return;
    live_close(state);
    free(state);
}

const bg_cli_replay_mode_t bg_cli_replay_live_mode = {
    .wanted = live_wanted,
    .needs_tree = bg_cli_replay_always,
    .open = live_mode_open,
    .entry = live_entry,
    .summary = live_summary,
    .report = live_report,
    .close = live_mode_close,
};
