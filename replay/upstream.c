#include "replay/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/sbuf.h"
#include "common/util.h"
#include "proxy/http.h"

/* Append NAME: VALUE (VALUE VN bytes) to U; -1 when out of memory or full. */
static int up_add(bg_replay_upstream_t *u, const char *name, const char *value, size_t vn)
{
    if (u->nheaders >= BG_REPLAY_UP_MAX_HEADERS)
        return -1;
    char *n = strdup(name), *v = malloc(vn + 1);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return -1;
    }
    memcpy(v, value, vn);
    v[vn] = '\0';
    u->names[u->nheaders] = n;
    u->values[u->nheaders++] = v;
    return 0;
}

static int up_addf(bg_replay_upstream_t *u, const char *name, bg_sbuf_t *b)
{
    int rc = b->failed ? -1 : up_add(u, name, b->p != NULL ? b->p : "", b->n);
    bg_sbuf_free(b);
    return rc;
}

/* The upstream target: the de-identified (or original) path and query,
 * with the route's path prefix replaced by its upstream path. */
static char *up_target(const bg_route_t *r, const bg_replay_req_t *req,
                       const bg_replay_result_t *res)
{
    const char *path = res->ev.rw.target_changed ? res->ev.rw.target : req->target;
    size_t path_len = res->ev.rw.target_changed ? res->ev.rw.target_len : strlen(req->target);
    bg_sbuf_t b = {0};
    if (r->upstream_path != NULL) {
        size_t pl = strlen(r->path_prefix), up = strlen(r->upstream_path);
        const char *rest = path + (pl <= path_len ? pl : path_len);
        size_t rest_len = pl <= path_len ? path_len - pl : 0;
        if (up > 0 && r->upstream_path[up - 1] == '/' && rest_len > 0 && rest[0] == '/') {
            rest++;
            rest_len--;
        }
        bg_sbuf_add(&b, r->upstream_path, up);
        bg_sbuf_add(&b, rest, rest_len);
    } else {
        bg_sbuf_add(&b, path, path_len);
    }
    bg_sbuf_add(&b, "", 1);
    if (b.failed) {
        bg_sbuf_free(&b);
        return NULL;
    }
    return b.p;
}

int bg_replay_upstream(const bg_config_t *cfg, const bg_replay_req_t *req,
                       const bg_replay_result_t *res, const char *peer, int peer_v6,
                       const char *connection, bg_replay_upstream_t *out)
{
    memset(out, 0, sizeof *out);
    if (res->refused || !res->evaluated || !res->ev.decided || res->route == NULL)
        return -1;
    const bg_route_t *r = res->route;
    const bg_rewrite_t *rw = &res->ev.rw;
    int fw_off = strcmp(cfg->forwarded, "off") == 0;
    int fw_replace = strcmp(cfg->forwarded, "replace") == 0;
    const char *xff = NULL, *fwd = NULL;
    size_t xff_len = 0, fwd_len = 0, cl = connection != NULL ? strlen(connection) : 0;

    if ((out->target = up_target(r, req, res)) == NULL)
        goto fail;
    if (up_add(out, "Host", r->host_header, strlen(r->host_header)) != 0)
        goto fail;
    for (size_t i = 0; i < res->nheaders; i++) {
        const bg_http_header_t *h = &res->headers[i];
        if (bg_http_is_hop_by_hop(h->name, h->name_len, connection, cl) ||
            bg_util_ieq(h->name, h->name_len, "host") ||
            bg_util_ieq(h->name, h->name_len, "content-length") ||
            bg_util_ieq(h->name, h->name_len, "expect") ||
            (rw->body_changed && bg_util_ieq(h->name, h->name_len, "content-encoding")))
            continue;
        const char *hv = h->value;
        size_t hvl = h->value_len;
        int replaced = 0;
        for (size_t k = 0; k < rw->nheaders; k++) {
            if (rw->header_index[k] == i) {
                replaced = 1;
                hv = rw->header_values[k];
                hvl = hv != NULL ? strlen(hv) : 0;
            }
        }
        if (replaced && hv == NULL)
            continue; /* removed */
        if (!fw_off) {
            if (bg_util_ieq(h->name, h->name_len, "x-forwarded-for")) {
                if (xff == NULL)
                    xff = hv, xff_len = hvl;
                continue;
            }
            if (bg_util_ieq(h->name, h->name_len, "forwarded")) {
                if (fwd == NULL)
                    fwd = hv, fwd_len = hvl;
                continue;
            }
            if (bg_util_ieq(h->name, h->name_len, "x-forwarded-proto") ||
                bg_util_ieq(h->name, h->name_len, "x-forwarded-host"))
                continue;
        }
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)h->name_len, h->name);
        if (up_add(out, name, hv, hvl) != 0)
            goto fail;
    }
    if (!fw_off) {
        /* The caller's Host is echoed only on a route matched by host. */
        char host[256] = "";
        const char *a = req->authority;
        size_t al =
            a[0] == '[' ? (size_t)(strchr(a, ']') ? strchr(a, ']') - a + 1 : 0) : strcspn(a, ":");
        for (size_t i = 0; i < al && i + 1 < sizeof host; i++)
            host[i] = (char)(a[i] >= 'A' && a[i] <= 'Z' ? a[i] + 32 : a[i]);
        int echo_host = host[0] != '\0' && r->match_host != NULL;
        bg_sbuf_t b = {0};
        if (xff != NULL && !fw_replace) {
            bg_sbuf_add(&b, xff, xff_len);
            bg_sbuf_adds(&b, ", ");
        }
        bg_sbuf_adds(&b, peer);
        if (up_addf(out, "X-Forwarded-For", &b) != 0)
            goto fail;
        if (fwd != NULL && !fw_replace) {
            bg_sbuf_add(&b, fwd, fwd_len);
            bg_sbuf_adds(&b, ", ");
        }
        bg_sbuf_addf(&b, "for=%s%s%s;proto=http", peer_v6 ? "\"[" : "", peer, peer_v6 ? "]\"" : "");
        if (echo_host)
            bg_sbuf_addf(&b, ";host=\"%s\"", host);
        if (up_addf(out, "Forwarded", &b) != 0 || up_add(out, "X-Forwarded-Proto", "http", 4) != 0)
            goto fail;
        if (echo_host && up_add(out, "X-Forwarded-Host", host, strlen(host)) != 0)
            goto fail;
    }
    out->body = req->body != NULL ? req->body : "";
    out->body_len = req->body_len;
    if (rw->body_changed) {
        out->body = rw->body;
        out->body_len = rw->body_len;
    }
    if (rw->body_changed || req->body != NULL) {
        char n[24];
        snprintf(n, sizeof n, "%zu", out->body_len);
        if (up_add(out, "Content-Length", n, strlen(n)) != 0)
            goto fail;
    }
    return 0;
fail:
    bg_replay_upstream_free(out);
    return -1;
}

void bg_replay_upstream_free(bg_replay_upstream_t *u)
{
    free(u->target);
    for (size_t i = 0; i < u->nheaders; i++) {
        free(u->names[i]);
        free(u->values[i]);
    }
    memset(u, 0, sizeof *u);
}
