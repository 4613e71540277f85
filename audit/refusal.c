/*
 * Refusal records (see refusal.h): built as text on the session's thread,
 * like decision records, and written through the same chained writer.
 */
#include "audit/refusal.h"

#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "inspect/redact.h"

/* The refusal's code (docs/audit.md, "Refusal record"): "no_route" (421),
 * "bad_request" (400), "private_upstream" (403), "connect" (405),
 * "timeout" (408), "body_too_large" (413), "expectation" (417),
 * "header_too_large" (431), "not_implemented" (501, upgrades and transfer
 * codings), "upstream_unavailable" (502), "unavailable" (503),
 * "upstream_timeout" (504), "http_version" (505), else "refused". */
static const char *refusal_code(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 403: return "private_upstream";
    case 405: return "connect";
    case 408: return "timeout";
    case 413: return "body_too_large";
    case 417: return "expectation";
    case 421: return "no_route";
    case 431: return "header_too_large";
    case 501: return "not_implemented";
    case 502: return "upstream_unavailable";
    case 503: return "unavailable";
    case 504: return "upstream_timeout";
    case 505: return "http_version";
    default: return "refused";
    }
}

/* P (N bytes, path?query#fragment) as a JSON string, as decision records
 * write it (inspect/redact.h): path segments that hold PI and every query
 * value dropped, no fragment. Bounded: a longer path is cut. */
static void path_without_values(bg_sbuf_t *b, const char *p, size_t n)
{
    char buf[2048];
    size_t o = bg_redact_target(p, n, buf, sizeof buf);
    bg_sbuf_json_str(b, buf, o);
}

char *bg_refusal_record(const bg_refusal_t *r, const char *time_text, size_t *len)
{
    bg_sbuf_t b = {0};
    bg_sbuf_adds(&b, "{\"time\":");
    bg_sbuf_json_cstr(&b, time_text);
    bg_sbuf_json_kv(&b, 0, "type", "refusal");
    bg_sbuf_json_kv(&b, 0, "decision_id", r->id != NULL ? r->id : "");
    bg_sbuf_adds(&b, ",\"caller\":{");
    bg_sbuf_json_kv(&b, 1, "address", r->caller != NULL ? r->caller : "");
    bg_sbuf_adds(&b, "},\"status\":");
    bg_sbuf_addi(&b, r->status);
    bg_sbuf_json_kv(&b, 0, "code", refusal_code(r->status));
    bg_sbuf_json_kv(&b, 0, "error", r->error != NULL ? r->error : "");
    if (r->method != NULL) {
        size_t mlen;
        const char *m = bg_redact_method(r->method, r->method_len, &mlen);
        bg_sbuf_adds(&b, ",\"method\":");
        bg_sbuf_json_str(&b, m, mlen); /* no value: inspect/redact.h */
    }
    if (r->host != NULL && r->host[0] != '\0') {
        char host[512];
        size_t hn = bg_redact_host(r->host, strlen(r->host), host, sizeof host);
        bg_sbuf_adds(&b, ",\"host\":");
        bg_sbuf_json_str(&b, host, hn); /* a label holding PI: "*" */
    }
    if (r->path != NULL) {
        bg_sbuf_adds(&b, ",\"path\":");
        path_without_values(&b, r->path, r->path_len);
    }
    if (r->route != NULL)
        bg_sbuf_json_kv(&b, 0, "route", r->route);
    if (r->policy_sha256 != NULL) {
        bg_sbuf_adds(&b, ",\"policy\":{\"version\":");
        bg_sbuf_json_cstr(&b, r->policy_version);
        bg_sbuf_json_kv(&b, 0, "sha256", r->policy_sha256);
        bg_sbuf_adds(&b, "}");
    }
    bg_sbuf_adds(&b, "}");
    if (b.failed) {
        bg_sbuf_free(&b);
        return NULL;
    }
    *len = b.n;
    return b.p;
}
