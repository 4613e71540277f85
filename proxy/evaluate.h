/*
 * evaluate.h — the request-side decision, shared by the daemon and replay.
 *
 * The daemon's ROUTE stage derives host and path from the request line and
 * Host header with bg_target_parse; its INSPECT and DECIDE stages are one
 * call to bg_evaluate. `bordergate replay` calls the very same two
 * functions with requests read from a HAR file, so an offline answer is the
 * answer the daemon would give for the same request, route and geo answer.
 */
#ifndef BG_EVALUATE_H
#define BG_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "geo/geo.h"
#include "inspect/inspect.h"
#include "policy/consent.h"
#include "policy/decide.h"
#include "proxy/http.h"

typedef struct {
    char host[256]; /* lowercase, without port; "" when the request had none */
    size_t host_len;
    const char *path; /* origin-form path and query, pointing into the target */
    size_t path_len;
    const bg_route_t *route; /* set by bg_target_route, NULL otherwise */
} bg_target_t;

/*
 * Host and path of a request as the ROUTE stage sees them: origin-form or
 * absolute-form target (its authority wins over HOST_HDR), port checked
 * (1-65535) and dropped, host lowercased, unsafe paths refused (see
 * bg_target_unsafe_path). 0, or the HTTP status (400) to refuse with and
 * *WHY (a static string that never quotes the request).
 */
int bg_target_parse(const char *target, size_t target_len, const char *host_hdr, size_t host_len,
                    bg_target_t *out, const char **why);

/*
 * 1 when the path part of P[0..N) (up to the first '?') could mean another
 * path to an upstream than its bytes say, in its raw, once- or
 * twice-percent-decoded form: a dot segment ('.', '..' or only dots, also
 * as %2e, between '/' or '\' separators, the name before a ';' counting:
 * "..;x"), an encoded '/', '\' or NUL (%2F, %5C, %00, hence %252F too),
 * an IIS %uXXXX escape, a NUL byte, or an overlong UTF-8 spelling of '.',
 * '/', '\', ';', '%' or NUL (%c0%ae). Also 1 for a '#' anywhere, and when
 * out of memory (fail closed). Legitimate names ("/a.b", "/...txt", %20,
 * UTF-8 such as %E4%B8%AD) pass. Linear in N; paths over 2 kB allocate.
 */
int bg_target_unsafe_path(const char *p, size_t n);

/*
 * 400 with *WHY when the request repeats a field only the first of which
 * would be inspected while every copy is forwarded (Content-Type,
 * Content-Encoding); else 0. Content-Length and Transfer-Encoding are
 * proxy/http.c's: differing or listed Content-Lengths are 400, identical
 * ones are forwarded as one, more than one Transfer-Encoding is 501.
 */
int bg_target_repeated_field(const bg_http_header_t *headers, size_t n, const char **why);

/*
 * Everything the ROUTE stage refuses, in order, for the daemon and replay
 * alike: bg_target_parse (400), bg_target_repeated_field (400), no
 * matching route (421), and a path whose canonical form decoded once or
 * twice (every escape decoded, then every byte other than unreserved
 * characters, sub-delims, ':', '@' and '/' written as %XX in upper case)
 * would match another route than its raw bytes (400: "/%61dmin" or
 * "/%2561dmin" must not slip past the "/admin" route into a catch-all).
 * Route prefixes are compared as written, so write them in that canonical
 * form ("/files/%E4%B8%AD", not "/files/%e4%b8%ad" or "/%61pi"). 0 with
 * OUT->route set, or the status and *WHY; 503 when out of memory. Cost:
 * linear in the path; two more route look-ups when the path is not
 * already canonical.
 */
int bg_target_route(const bg_config_t *cfg, const char *target, size_t target_len,
                    const char *host_hdr, size_t host_len, const bg_http_header_t *headers,
                    size_t nheaders, bg_target_t *out, const char **why);

struct sockaddr_storage;
/* Whether SS is an address a route must not reach unless it allows private
 * upstreams: loopback, RFC 1918, link local, CGNAT, 0/8, multicast and
 * reserved, IPv6 loopback/unspecified/link/site local/multicast/ULA, and
 * IPv4-mapped forms of those. Shared by the daemon and replay. */
int bg_addr_is_private(const struct sockaddr_storage *ss);

typedef struct {
    const bg_config_t *cfg;
    const bg_route_t *route;    /* matched by bg_config_match_route */
    const bg_geo_answer_t *geo; /* of the address connected to */
    const char *method;
    size_t method_len;
    const char *path; /* as in bg_target_t */
    size_t path_len;
    const bg_http_header_t *headers;
    size_t nheaders;
    const char *body; /* decoded transfer framing, as received */
    size_t body_len;
    bg_consent_reg_t *consent; /* NULL: separate consent never holds */
    int64_t now_ms;
} bg_eval_input_t;

typedef struct {
    bg_inspection_t *insp; /* NULL when not inspected; references the input */
    int decided;
    bg_rewrite_t rw; /* de-identified body / target / headers */
    int rewritten;
    bg_decision_t decision; /* valid when decided; last (BG_EVAL_RESET_BYTES) */
} bg_eval_t;

/* The bytes of a bg_eval_t that a reset zeroes: all but the decision's
 * reasons[] (BG_DECISION_RESET_BYTES). */
#define BG_EVAL_RESET_BYTES (offsetof(bg_eval_t, decision) + BG_DECISION_RESET_BYTES)
_Static_assert(offsetof(bg_eval_t, decision) + sizeof(bg_decision_t) == sizeof(bg_eval_t),
               "decision must be the last member of bg_eval_t");

/*
 * INSPECT (when the request goes abroad, or the policy inspects domestic
 * traffic too) and DECIDE; when the decision de-identifies and is enforced,
 * apply the operators and render the rewritten request. 0, or -1 with *WHY
 * when out of memory (the caller fails closed). OUT is always safe to pass
 * to bg_eval_free. Cost: one inspection of the body (linear in its size).
 */
int bg_evaluate(const bg_eval_input_t *in, bg_eval_t *out, const char **why);
void bg_eval_free(bg_eval_t *ev);

#endif
