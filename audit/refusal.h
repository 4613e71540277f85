/*
 * The refusal record (docs/audit.md, "Refusal record"): a request answered
 * before any decision was made (unknown destination 421, malformed request
 * or target 400, CONNECT 405, upgrade 501, body too large 413, header/body
 * timeout 408, private upstream 403, upstream name not resolved 502, out of
 * memory 503). "Every decision recorded" includes the
 * ones bordergate takes without a policy decision.
 *
 * Like every record it holds no personal-information value: the caller's
 * address, method, the destination host asked for (a label holding PI
 * "*"), and the path as
 * decision records write it (inspect/redact.h: query values dropped,
 * "/v1/u?uid=&t=", a segment holding PI "*"); the raw target, query
 * values, headers and body are never written.
 */
#ifndef BG_AUDIT_REFUSAL_H
#define BG_AUDIT_REFUSAL_H

#include <stddef.h>

typedef struct {
    const char *id;     /* request id (also X-Bordergate-Id of the answer) */
    const char *caller; /* caller address text, or NULL */
    int status;         /* HTTP status answered */
    const char *error;  /* the fixed message answered (never request data) */
    const char *method; /* NULL: the request head was not parsed */
    size_t method_len;
    const char *host; /* destination host asked for (parsed), or NULL */
    const char *path; /* origin-form path?query (parsed target), or NULL */
    size_t path_len;
    const char *route;          /* the matched route, or NULL */
    const char *policy_version; /* may be NULL */
    const char *policy_sha256;  /* may be NULL */
} bg_refusal_t;

/* The record as one JSON line without storage fields (the audit writer adds
 * seq, prev and hash); allocated, its length in *LEN. NULL when out of
 * memory. TIME_TEXT is the UTC time of the refusal. */
char *bg_refusal_record(const bg_refusal_t *r, const char *time_text, size_t *len);

#endif
