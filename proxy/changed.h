/*
 * changed.h — the X-Bordergate-Changed response header: which parts of a
 * de-identified request were changed, and how, for the engineer who sent
 * it (docs/operations.md, "Response headers").
 *
 * Paths and operators only, never a value: the same finding paths the
 * decision record writes ("$.user.phone", "header.x-user-phone",
 * "query.mobile", "path[2]"), each followed by '=' and the operator that
 * was applied (mask, hash, tokenize, generalize, replace; redact for a
 * removed field; remove_record for a field whose batch record was
 * removed), joined by ", ".
 */
#ifndef BG_CHANGED_H
#define BG_CHANGED_H

#include <stddef.h>

#include "inspect/inspect.h"
#include "policy/decide.h"

/* The header value's bound, NUL included: a head stays well below common
 * 8 kB header limits whatever the batch size. */
#define BG_CHANGED_MAX 1024

/*
 * Write the X-Bordergate-Changed value of decision D over INSP into OUT
 * (CAP bytes, NUL-terminated, CAP >= 64). Returns its length, 0 when the
 * request was not de-identified (outcome other than deidentify, monitor
 * mode, not inspected), nothing was changed, or CAP is too small. Bytes of
 * a path outside printable ASCII, '%' and ',' are written as %XX so the
 * list splits on ", " and the value is a valid header field. When the
 * list does not fit, it ends with ", ...(+N more)" (N entries left out).
 * Adjacent duplicate entries (several spans of one field) are written
 * once. Cost: linear in the findings.
 */
size_t bg_changed_header(const bg_decision_t *d, bg_inspection_t *insp, char *out, size_t cap);

#endif
