#include "proxy/evaluate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "common/util.h"

int bg_target_unsafe_path(const char *p, size_t n)
{
    size_t end = n;
    const char *q = memchr(p, '?', n);
    if (q != NULL)
        end = (size_t)(q - p);
    if (memchr(p, '#', n) != NULL)
        return 1;
    size_t i = 0;
    while (i < end) {
        if (p[i] != '/') {
            i++;
            continue;
        }
        size_t j = i + 1, dots = 0, other = 0;
        while (j < end && p[j] != '/') {
            if (p[j] == '.') {
                dots++;
                j++;
            } else if (p[j] == '%' && j + 2 < end && p[j + 1] == '2' &&
                       (p[j + 2] == 'e' || p[j + 2] == 'E')) {
                dots++;
                j += 3;
            } else {
                other = 1;
                j++;
            }
        }
        if (!other && (dots == 1 || dots == 2))
            return 1;
        i = j;
    }
    return 0;
}

int bg_target_parse(const char *t, size_t tl, const char *host, size_t host_len, bg_target_t *out,
                    const char **why)
{
    memset(out, 0, sizeof *out);
    /* absolute-form (clients using bordergate as HTTP_PROXY): its authority
     * is the destination (RFC 9112 3.2.2). */
    if (bg_util_iprefix(t, tl, "http://") || bg_util_iprefix(t, tl, "https://")) {
        size_t skip = t[4] == ':' ? 7 : 8;
        const char *a = t + skip;
        const char *end = memchr(a, '/', tl - skip);
        size_t alen = end != NULL ? (size_t)(end - a) : tl - skip;
        host = a;
        host_len = alen;
        out->path = end != NULL ? end : "/";
        out->path_len = end != NULL ? tl - skip - alen : 1;
    } else if (tl > 0 && t[0] == '/') {
        out->path = t;
        out->path_len = tl;
    } else if (tl == 1 && t[0] == '*') {
        *why = "request target * is not forwarded";
        return 400;
    } else {
        *why = "request target must be a path or an absolute http URL";
        return 400;
    }
    if (bg_target_unsafe_path(out->path, out->path_len)) {
        *why = "request path with dot segments or a fragment: routes match literal paths only";
        return 400;
    }
    /* Host without port, lowercased; the port must be digits. */
    size_t hn = 0;
    if (host != NULL) {
        size_t end = host_len;
        if (host_len > 0 && host[0] == '[') {
            const char *rb = memchr(host, ']', host_len);
            end = rb != NULL ? (size_t)(rb - host) + 1 : host_len;
        } else {
            const char *colon = memchr(host, ':', host_len);
            if (colon != NULL)
                end = (size_t)(colon - host);
        }
        if (end < host_len) {
            size_t p = end;
            if (host[p] == ']')
                p++;
            int ok = p < host_len && host[p] == ':' && p + 1 < host_len && p + 6 >= host_len;
            for (size_t k = p + 1; ok && k < host_len; k++)
                ok = host[k] >= '0' && host[k] <= '9';
            if (!ok) {
                *why = "invalid port in Host";
                return 400;
            }
        }
        if (end >= sizeof out->host) {
            *why = "Host header too long";
            return 400;
        }
        for (size_t i = 0; i < end; i++) {
            char c = host[i];
            out->host[hn++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
    }
    out->host[hn] = '\0';
    out->host_len = hn;
    return 0;
}

int bg_evaluate(const bg_eval_input_t *in, bg_eval_t *out, const char **why)
{
    const bg_config_t *cfg = in->cfg;
    const bg_policy_t *p = cfg->policy;
    const bg_route_policy_t *rp = &p->routes[in->route - cfg->routes];

    memset(out, 0, sizeof *out);
    /* INSPECT: only what goes abroad, unless the policy says otherwise. */
    if (bg_decide_needs_inspection(p, in->geo) && rp->inspect != NULL) {
        bg_inspect_input_t ii;
        memset(&ii, 0, sizeof ii);
        ii.method = in->method;
        ii.method_len = in->method_len;
        ii.target = in->path;
        ii.target_len = in->path_len;
        ii.headers = in->headers;
        ii.nheaders = in->nheaders;
        ii.body = in->body != NULL ? in->body : "";
        ii.body_len = in->body_len;
        out->insp = bg_inspect(rp->inspect, &ii);
        if (out->insp == NULL) {
            *why = "out of memory while inspecting";
            return -1;
        }
    }
    /* DECIDE: allow, de-identify or block. */
    bg_decide_input_t d;
    memset(&d, 0, sizeof d);
    d.policy = p;
    d.route_index = (int)(in->route - cfg->routes);
    d.route = in->route;
    d.geo = in->geo;
    d.insp = out->insp;
    d.headers = in->headers;
    d.nheaders = in->nheaders;
    d.consent = in->consent;
    d.now_ms = in->now_ms;
    if (bg_decide(&d, &out->decision) != 0) {
        *why = "out of memory while deciding";
        return -1;
    }
    out->decided = 1;
    if (out->decision.would == BG_OUTCOME_DEIDENTIFY && !out->decision.monitor) {
        if (bg_decision_apply(&out->decision, out->insp, p) == 0 &&
            bg_inspection_modified(out->insp)) {
            if (bg_inspection_render(out->insp, &out->rw) != 0) {
                *why = "out of memory while de-identifying";
                return -1;
            }
            out->rewritten = 1;
        }
    }
    return 0;
}

void bg_eval_free(bg_eval_t *ev)
{
    bg_inspection_free(ev->insp);
    ev->insp = NULL;
    if (ev->decided)
        bg_decision_free(&ev->decision);
    ev->decided = 0;
    bg_rewrite_free(&ev->rw);
    ev->rewritten = 0;
}

int bg_addr_is_private(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
        return (a >> 24) == 10 || (a >> 24) == 127 || (a >> 24) == 0 ||
               (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
               (a >> 16) == (169u << 8 | 254) || (a >> 22) == (100u << 2 | 1) || (a >> 28) == 14 ||
               (a >> 28) == 15;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
        struct sockaddr_storage v4;
        memset(&v4, 0, sizeof v4);
        v4.ss_family = AF_INET;
        memcpy(&((struct sockaddr_in *)&v4)->sin_addr, &a6->s6_addr[12], 4);
        return bg_addr_is_private(&v4);
    }
    return IN6_IS_ADDR_LOOPBACK(a6) || IN6_IS_ADDR_UNSPECIFIED(a6) || IN6_IS_ADDR_LINKLOCAL(a6) ||
           IN6_IS_ADDR_SITELOCAL(a6) || IN6_IS_ADDR_MULTICAST(a6) ||
           (a6->s6_addr[0] & 0xfe) == 0xfc; /* fc00::/7 unique local */
}
