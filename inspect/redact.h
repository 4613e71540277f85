/*
 * A request target as the audit log and the operational log may keep it:
 * never a value (docs/audit.md, "path").
 *
 *   path segments    kept, except a segment in which a content detector
 *                    finds personal information (after percent-decoding,
 *                    twice) at medium confidence or above: "*"; also each
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

/* Write T[0..N) redacted into OUT (NUL-ended, truncated to CAP > 0);
 * returns the length written. */
size_t bg_redact_target(const char *t, size_t n, char *out, size_t cap);

#endif
