/*
 * replay.h — offline evaluation of recorded requests with the daemon's own
 * code path: bg_target_parse and bg_config_match_route (ROUTE), the
 * policy's static resolve map / IP literal / the recording's
 * serverIPAddress and bg_geo_classify + bg_geo_choose (RESOLVE, without
 * network), then bg_evaluate (INSPECT, DECIDE, de-identify and render).
 * Requests the daemon refuses before deciding (405, 400, 421, 413, 501,
 * 403 private upstream) come back as refused with that status and reason.
 */
#ifndef BG_REPLAY_H
#define BG_REPLAY_H

#include <jansson.h>

#include "common/sbuf.h"
#include "config/config.h"
#include "policy/consent.h"
#include "proxy/evaluate.h"
#include "replay/har.h"

typedef struct {
    const bg_config_t *cfg;
    bg_consent_reg_t *consent; /* NULL: separate consent never holds */
    int64_t now_ms;
} bg_replay_ctx_t;

typedef struct {
    int refused; /* refused before deciding: status and reason */
    int status;
    const char *reason;      /* static text */
    const bg_route_t *route; /* NULL when no route matched */
    bg_geo_answer_t geo;
    char address[64];        /* the address the daemon would connect to, "" if none */
    const char *addr_source; /* "static", "literal", "har", "none" */
    bg_eval_t ev;            /* when !refused; references the request and headers */
    int evaluated;
    bg_http_header_t headers[BG_REPLAY_MAX_HEADERS + 2];
    size_t nheaders;
    char clen[24];
} bg_replay_result_t;

/*
 * Evaluate REQ under CTX into OUT (always safe to pass to
 * bg_replay_result_free; REQ must outlive OUT). 0, or -1 with ERR when out
 * of memory. Cost: one inspection of the body plus the decision.
 */
int bg_replay_eval(const bg_replay_ctx_t *ctx, const bg_replay_req_t *req, bg_replay_result_t *out,
                   char *err, size_t errcap);
void bg_replay_result_free(bg_replay_result_t *res);

/* "allow", "deidentify", "block" or "refused": what happens. */
const char *bg_replay_decision(const bg_replay_result_t *res);

/* The URL with query values dropped (names kept): "https://h/p?a=&b=". */
void bg_replay_url_without_values(const char *url, char *out, size_t cap);

/*
 * The output line of one entry (docs/replay.md), as JSON text onto B (no
 * newline): entry, method, url, route, recipient, country, region,
 * geo_source, address, decision; status and reason when refused; else
 * monitor, inspected, then the decision record's members (outcome, would,
 * findings with path, category, basis, action, operator, rule; subjects as
 * keyed pseudonyms; records; mechanism; reasons), rules, rewritten. Never
 * a payload value. Cost: linear in the findings, no JSON tree.
 */
void bg_replay_result_write(const bg_replay_req_t *req, const bg_replay_result_t *res,
                            bg_sbuf_t *b);
/* The same line parsed into a tree (NULL when out of memory). */
json_t *bg_replay_result_json(const bg_replay_req_t *req, const bg_replay_result_t *res);

#endif
