/*
 * Offline evaluation of one recorded request: the daemon's stages ROUTE,
 * RESOLVE (without network), INSPECT and DECIDE, in that order, with the
 * same functions (see replay.h and proxy/session.c).
 */
#include "replay/replay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/sbuf.h"
#include "common/util.h"
#include "inspect/redact.h"
#include "policy/decide.h"
#include "policy/policy.h"

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return 0;
    }
    return -1;
}

static void refuse(bg_replay_result_t *out, int status, const char *why)
{
    out->refused = 1;
    out->status = status;
    out->reason = why;
}

/*
 * RESOLVE without network, then the daemon's resolve_done: candidates from
 * the static map (or the literal / localhost), else the recording's
 * serverIPAddress; private ones dropped unless the route allows them; each
 * classified for the route's upstream host; bg_geo_choose picks. No
 * candidate at all: host overrides may still answer, else unknown
 * (cross-border).
 */
static void replay_resolve(const bg_replay_ctx_t *ctx, const bg_replay_req_t *req,
                           bg_replay_result_t *out)
{
    const bg_config_t *cfg = ctx->cfg;
    const bg_route_t *r = out->route;
    struct sockaddr_storage addrs[BG_MAX_RESOLVE_ADDRS + 1];
    int n = 0;
    const bg_resolve_entry_t *st = bg_config_find_resolve(cfg, r->upstream_host);
    if (st != NULL) {
        for (int i = 0; i < st->naddrs && n < BG_MAX_RESOLVE_ADDRS; i++)
            addrs[n++] = st->addrs[i];
        out->addr_source = "static";
    } else if (parse_addr(r->upstream_host, &addrs[0]) == 0) {
        n = 1;
        out->addr_source = "literal";
    } else if (strcmp(r->upstream_host, "localhost") == 0) {
        parse_addr("127.0.0.1", &addrs[0]);
        parse_addr("::1", &addrs[1]);
        n = 2;
        out->addr_source = "literal";
    } else if (req->server_ip[0] != '\0' && parse_addr(req->server_ip, &addrs[0]) == 0) {
        n = 1;
        out->addr_source = "har";
    } else {
        out->addr_source = "none";
    }
    if (n == 0) {
        bg_geo_classify(cfg->geo_overrides, cfg->geo_db, r->upstream_host, NULL, &out->geo);
        return;
    }
    bg_geo_answer_t answers[BG_MAX_RESOLVE_ADDRS + 1];
    int index[BG_MAX_RESOLVE_ADDRS + 1];
    int k = 0, any_private = 0;
    for (int i = 0; i < n; i++) {
        if (!r->allow_private && bg_addr_is_private(&addrs[i])) {
            any_private = 1;
            continue;
        }
        bg_geo_classify(cfg->geo_overrides, cfg->geo_db, r->upstream_host,
                        (const struct sockaddr *)&addrs[i], &answers[k]);
        index[k++] = i;
    }
    if (k == 0 && any_private) {
        refuse(
            out, 403,
            "upstream resolves to a private or loopback address and the route does not allow it");
        return;
    }
    int chosen = bg_geo_choose(answers, (size_t)k);
    out->geo = answers[chosen];
    bg_util_addr_string((const struct sockaddr *)&addrs[index[chosen]], out->address,
                        sizeof out->address);
}

static int header_present(const bg_replay_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->names[i], name) == 0)
            return 1;
    return 0;
}

int bg_replay_eval(const bg_replay_ctx_t *ctx, const bg_replay_req_t *req, bg_replay_result_t *out,
                   char *err, size_t errcap)
{
    const bg_config_t *cfg = ctx->cfg;
    memset(out, 0, sizeof *out);
    out->addr_source = "none";
    /* The request as the daemon receives it: Host first, the recorded
     * headers, Content-Length when there is a body. */
    out->headers[0].name = "Host";
    out->headers[0].name_len = 4;
    out->headers[0].value = req->authority;
    out->headers[0].value_len = strlen(req->authority);
    out->nheaders = 1;
    for (size_t i = 0; i < req->nheaders; i++) {
        bg_http_header_t *h = &out->headers[out->nheaders++];
        h->name = req->names[i];
        h->name_len = strlen(req->names[i]);
        h->value = req->values[i];
        h->value_len = strlen(req->values[i]);
    }
    if (req->body != NULL) {
        snprintf(out->clen, sizeof out->clen, "%zu", req->body_len);
        bg_http_header_t *h = &out->headers[out->nheaders++];
        h->name = "Content-Length";
        h->name_len = 14;
        h->value = out->clen;
        h->value_len = strlen(out->clen);
    }

    /* ROUTE */
    size_t ml = strlen(req->method);
    if (bg_util_ieq(req->method, ml, "CONNECT")) {
        refuse(out, 405, "CONNECT tunnels are not supported: bordergate inspects every request");
        return 0;
    }
    if (header_present(req, "upgrade")) {
        refuse(out, 501, "protocol upgrades are not supported");
        return 0;
    }
    bg_target_t tg;
    const char *why = NULL;
    int status = bg_target_route(cfg, req->target, strlen(req->target), req->authority,
                                 strlen(req->authority), out->headers, out->nheaders, &tg, &why);
    if (status != 0) {
        refuse(out, status, why);
        return 0;
    }
    out->route = tg.route;
    if (req->body_len > cfg->max_body_bytes) {
        refuse(out, 413, "request body larger than limits.max_body_bytes");
        return 0;
    }
    /* RESOLVE */
    replay_resolve(ctx, req, out);
    if (out->refused)
        return 0;
    /* INSPECT and DECIDE */
    bg_eval_input_t in;
    memset(&in, 0, sizeof in);
    in.cfg = cfg;
    in.route = out->route;
    in.geo = &out->geo;
    in.method = req->method;
    in.method_len = ml;
    in.path = tg.path;
    in.path_len = tg.path_len;
    in.headers = out->headers;
    in.nheaders = out->nheaders;
    in.body = req->body != NULL ? req->body : "";
    in.body_len = req->body_len;
    in.consent = ctx->consent;
    in.now_ms = ctx->now_ms;
    out->evaluated = 1;
    if (bg_evaluate(&in, &out->ev, &why) != 0) {
        snprintf(err, errcap, "%s", why);
        return -1;
    }
    return 0;
}

void bg_replay_result_free(bg_replay_result_t *res)
{
    if (res->evaluated)
        bg_eval_free(&res->ev);
    res->evaluated = 0;
}

const char *bg_replay_decision(const bg_replay_result_t *res)
{
    if (res->refused || !res->evaluated || !res->ev.decided)
        return "refused";
    return bg_outcome_name(res->ev.decision.outcome);
}

void bg_replay_url_without_values(const char *url, char *out, size_t cap)
{
    bg_redact_target(url, strlen(url), out, cap);
}

/* ,"rules":[...]: every rule id named by a finding or a reason, once. */
static void write_rules(const bg_decision_t *d, bg_sbuf_t *b)
{
    const char *seen[64];
    int n = 0;
    bg_sbuf_adds(b, ",\"rules\":[");
    for (size_t i = 0; i < d->nfd + (size_t)d->nreasons; i++) {
        const char *r = i < d->nfd ? d->fd[i].rule : d->reasons[i - d->nfd].rule;
        if (r == NULL || r[0] == '\0')
            continue;
        int dup = 0;
        for (int k = 0; k < n && !dup; k++)
            dup = strcmp(seen[k], r) == 0;
        if (dup)
            continue;
        if (n < 64)
            seen[n++] = r;
        if (n > 1)
            bg_sbuf_adds(b, ",");
        bg_sbuf_json_cstr(b, r);
    }
    bg_sbuf_adds(b, "]");
}

void bg_replay_result_write(const bg_replay_req_t *req, const bg_replay_result_t *res, bg_sbuf_t *b)
{
    char url[2048];
    bg_replay_url_without_values(req->url, url, sizeof url);
    bg_sbuf_addf(b, "{\"entry\":%zu", req->index);
    bg_sbuf_json_kv(b, 0, "method", req->method);
    bg_sbuf_json_kv(b, 0, "url", url);
    bg_sbuf_adds(b, ",\"route\":");
    bg_sbuf_json_cstr(b, res->route ? res->route->id : NULL);
    bg_sbuf_adds(b, ",\"recipient\":");
    bg_sbuf_json_cstr(b, res->route ? res->route->recipient : NULL);
    if (res->route != NULL && (!res->refused || res->status == 403)) {
        bg_sbuf_adds(b, ",\"country\":");
        bg_sbuf_json_cstr(b, res->geo.country[0] ? res->geo.country : NULL);
        bg_sbuf_json_kv(b, 0, "region", bg_geo_region_name(res->geo.region));
        bg_sbuf_json_kv(b, 0, "geo_source", res->geo.source);
        bg_sbuf_adds(b, ",\"address\":");
        bg_sbuf_json_cstr(b, res->address[0] ? res->address : NULL);
        bg_sbuf_json_kv(b, 0, "address_source", res->addr_source);
    }
    bg_sbuf_json_kv(b, 0, "decision", bg_replay_decision(res));
    if (res->refused || !res->evaluated || !res->ev.decided) {
        bg_sbuf_addf(b, ",\"status\":%d", res->status);
        bg_sbuf_json_kv(b, 0, "reason", res->reason ? res->reason : "");
        bg_sbuf_adds(b, "}");
        return;
    }
    const bg_decision_t *d = &res->ev.decision;
    if (d->monitor)
        bg_sbuf_adds(b, ",\"monitor\":true");
    bg_sbuf_addf(b, ",\"inspected\":%s", res->ev.insp != NULL ? "true" : "false");
    bg_decision_write(d, res->ev.insp, b);
    write_rules(d, b);
    if (res->ev.rewritten)
        bg_sbuf_addf(b, ",\"rewritten\":{\"body\":%s,\"target\":%s,\"headers\":%zu}",
                     res->ev.rw.body_changed ? "true" : "false",
                     res->ev.rw.target_changed ? "true" : "false", res->ev.rw.nheaders);
    bg_sbuf_adds(b, "}");
}

json_t *bg_replay_result_json(const bg_replay_req_t *req, const bg_replay_result_t *res)
{
    bg_sbuf_t b = {0};
    bg_replay_result_write(req, res, &b);
    json_t *o = b.failed ? NULL : json_loadb(b.p, b.n, 0, NULL);
    bg_sbuf_free(&b);
    return o;
}
