/*
 * A request target as the audit log and the operational log may keep it:
 * never a value (docs/audit.md, "path").
 *
 *   path segments    kept, except a segment in which a content detector
 *                    finds personal information (after percent-decoding,
 *                    twice) at medium confidence or above, or that is not
 *                    UTF-8 in one of those forms (GBK "%A3%B1"): "*"; also each
 *                    segment a value split over several segments touches
 *                    ("/u/110101199/003078515": both, the segments joined
 *                    without separators are scanned too; first 64)
 *   query            parameter names kept (a name that is itself PI: "*"),
 *                    values dropped ("?a=&b=": the value is everything
 *                    after the first '=')
 *   fragment         dropped
 *
 * One function for the daemon's records and offline replay, so both say
 * the same. Cost: one detector pass over each segment. Thread-safe.
 */
#ifndef BG_REDACT_H
#define BG_REDACT_H

#include <stddef.h>

/* A request method as records may keep it: a registered method (RFC 9110,
 * PATCH) as is, any other token "*" (a method is a client-chosen token and
 * may carry a value: "13812345678 /x HTTP/1.1" parses). Returns M or a
 * static "*"; its length in *OUT_LEN. */
const char *bg_redact_method(const char *m, size_t n, size_t *out_len);

/* A host name asked for (421 refusal records): each dot-separated label
 * in which a detector finds PI, alone or split over labels, "*"
 * ("13812345678.api.example" -> "*.api.example"). NUL-ended into OUT
 * (truncated to CAP > 0); returns the length written. */
size_t bg_redact_host(const char *h, size_t n, char *out, size_t cap);

/* Write T[0..N) redacted into OUT (NUL-ended, truncated to CAP > 0);
 * returns the length written. */
size_t bg_redact_target(const char *t, size_t n, char *out, size_t cap);

#endif
