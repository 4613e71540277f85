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

#include "common/util.h"
#include "policy/decide.h"
#include "policy/policy.h"

/* The same test as proxy/session.c is_private: loopback, RFC 1918, link
 * local, CGNAT, multicast/reserved, IPv6 ULA/link/site local. */
static int is_private(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
        return (a >> 24) == 10 || (a >> 24) == 127 || (a >> 24) == 0 ||
               (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
               (a >> 16) == (169u << 8 | 254) || (a >> 22) == (100u << 2 | 1) ||
               (a >> 28) == 14 || (a >> 28) == 15;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
        struct sockaddr_storage v4;
        memset(&v4, 0, sizeof v4);
        v4.ss_family = AF_INET;
        memcpy(&((struct sockaddr_in *)&v4)->sin_addr, &a6->s6_addr[12], 4);
        return is_private(&v4);
    }
    return IN6_IS_ADDR_LOOPBACK(a6) || IN6_IS_ADDR_UNSPECIFIED(a6) || IN6_IS_ADDR_LINKLOCAL(a6) ||
           IN6_IS_ADDR_SITELOCAL(a6) || IN6_IS_ADDR_MULTICAST(a6) ||
           (a6->s6_addr[0] & 0xfe) == 0xfc;
}

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
        if (!r->allow_private && is_private(&addrs[i])) {
            any_private = 1;
            continue;
        }
        bg_geo_classify(cfg->geo_overrides, cfg->geo_db, r->upstream_host,
                        (const struct sockaddr *)&addrs[i], &answers[k]);
        index[k++] = i;
    }
    if (k == 0 && any_private) {
        refuse(out, 403, "upstream resolves to a private or loopback address and the route does not allow it");
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
    int status = bg_target_parse(req->target, strlen(req->target), req->authority,
                                 strlen(req->authority), &tg, &why);
    if (status != 0) {
        refuse(out, status, why);
        return 0;
    }
    out->route = bg_config_match_route(cfg, tg.host, tg.host_len, tg.path, tg.path_len);
    if (out->route == NULL) {
        refuse(out, 421, "no route for this host and path: bordergate only forwards to configured destinations");
        return 0;
    }
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
    size_t o = 0;
    int in_query = 0, in_value = 0;
    if (cap == 0)
        return;
    for (const char *p = url; *p != '\0' && o + 1 < cap; p++) {
        char c = *p;
        if (c == '#')
            break;
        if (!in_query) {
            if (c == '?')
                in_query = 1;
            out[o++] = c;
        } else if (c == '&') {
            in_value = 0;
            out[o++] = c;
        } else if (c == '=') {
            if (!in_value)
                out[o++] = c;
            in_value = 1;
        } else if (!in_value) {
            out[o++] = c;
        }
    }
    out[o] = '\0';
}

/* Append RULE to RULES unless empty or already there. */
static void add_rule(json_t *rules, const char *rule)
{
    if (rule == NULL || rule[0] == '\0')
        return;
    size_t k;
    json_t *r = NULL;
    json_array_foreach(rules, k, r)
    {
        if (strcmp(json_string_value(r), rule) == 0)
            return;
    }
    json_array_append_new(rules, json_string(rule));
}

json_t *bg_replay_result_json(const bg_replay_req_t *req, const bg_replay_result_t *res)
{
    char url[2048];
    bg_replay_url_without_values(req->url, url, sizeof url);
    json_t *o = json_object();
    json_object_set_new(o, "entry", json_integer((json_int_t)req->index));
    json_object_set_new(o, "method", json_string(req->method));
    json_object_set_new(o, "url", json_string(url));
    json_object_set_new(o, "route", res->route ? json_string(res->route->id) : json_null());
    json_object_set_new(o, "recipient",
                        res->route && res->route->recipient ? json_string(res->route->recipient) : json_null());
    if (res->route != NULL && !(res->refused && res->status != 403)) {
        json_object_set_new(o, "country", res->geo.country[0] ? json_string(res->geo.country) : json_null());
        json_object_set_new(o, "region", json_string(bg_geo_region_name(res->geo.region)));
        json_object_set_new(o, "geo_source", json_string(res->geo.source));
        json_object_set_new(o, "address", res->address[0] ? json_string(res->address) : json_null());
        json_object_set_new(o, "address_source", json_string(res->addr_source));
    }
    json_object_set_new(o, "decision", json_string(bg_replay_decision(res)));
    if (res->refused || !res->evaluated) {
        json_object_set_new(o, "status", json_integer(res->status));
        json_object_set_new(o, "reason", json_string(res->reason ? res->reason : ""));
        return o;
    }
    const bg_decision_t *d = &res->ev.decision;
    if (d->monitor) {
        json_object_set_new(o, "monitor", json_true());
        json_object_set_new(o, "would", json_string(bg_outcome_name(d->would)));
    }
    json_object_set_new(o, "inspected", json_boolean(res->ev.insp != NULL));
    json_t *dj = bg_decision_json(d, res->ev.insp);
    json_t *findings = json_object_get(dj, "findings");
    json_object_set(o, "findings", findings);
    json_t *rules = json_array();
    size_t i;
    json_t *f = NULL;
    json_array_foreach(findings, i, f)
    {
        json_object_del(f, "source"); /* detector names are noise here */
        add_rule(rules, json_string_value(json_object_get(f, "rule")));
    }
    json_t *reasons = json_object_get(dj, "reasons");
    json_array_foreach(reasons, i, f)
    {
        add_rule(rules, json_string_value(json_object_get(f, "rule")));
    }
    json_object_set_new(o, "rules", rules);
    json_object_set(o, "reasons", reasons);
    json_object_set(o, "mechanism", json_object_get(dj, "mechanism"));
    if (json_object_get(dj, "records") != NULL)
        json_object_set(o, "records", json_object_get(dj, "records"));
    if (res->ev.rewritten) {
        json_t *ch = json_object();
        json_object_set_new(ch, "body", json_boolean(res->ev.rw.body_changed));
        json_object_set_new(ch, "target", json_boolean(res->ev.rw.target_changed));
        json_object_set_new(ch, "headers", json_integer((json_int_t)res->ev.rw.nheaders));
        json_object_set_new(o, "rewritten", ch);
    }
    json_decref(dj);
    return o;
}
