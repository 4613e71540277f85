#include "proxy/changed.h"
#include "common/hex.h"

#include <stdio.h>
#include <string.h>

/* The operator as the header names it (the decision record's "operator",
 * or remove_record for a removed batch record); NULL when the finding
 * left unchanged. */
static const char *changed_op(const bg_finding_decision_t *x)
{
    switch (x->action) {
    case BG_ACT_DEIDENTIFY: return bg_op_name(x->op);
    case BG_ACT_REMOVE: return bg_op_name(BG_OP_REDACT);
    case BG_ACT_REMOVE_RECORD: return "remove_record";
    default: return NULL;
    }
}

/* "PATH=OP" with unsafe path bytes as %XX into OUT (CAP bytes); its
 * length, or 0 when it does not fit. */
static size_t changed_entry(const char *path, const char *op, char *out, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        int plain = *p > 0x20 && *p < 0x7f && *p != '%' && *p != ',';
        if (n + (plain ? 1 : 3) >= cap)
            return 0;
        if (plain)
            out[n++] = (char)*p;
        else
            n += bg_hex_pct(*p, out + n);
    }
    size_t ol = strlen(op);
    if (n + 1 + ol >= cap)
        return 0;
    out[n++] = '=';
    memcpy(out + n, op, ol + 1);
    return n + ol;
}

size_t bg_changed_header(const bg_decision_t *d, bg_inspection_t *insp, char *out, size_t cap)
{
    if (cap < 64)
        return 0;
    out[0] = '\0';
    if (insp == NULL || d->monitor || d->outcome != BG_OUTCOME_DEIDENTIFY)
        return 0;
    /* Room kept for the truncation marker ", ...(+NNNNNNNNNN more)". */
    const size_t reserve = 32;
    size_t n = 0, left_out = 0;
    char prev[512] = "", entry[512];
    for (size_t i = 0; i < d->nfd; i++) {
        const char *op = changed_op(&d->fd[i]);
        if (op == NULL)
            continue;
        const bg_finding_t *f = bg_inspection_finding(insp, d->fd[i].finding);
        size_t el = changed_entry(f->path != NULL ? f->path : "", op, entry, sizeof entry);
        if (el > 0 && strcmp(entry, prev) == 0)
            continue;
        if (el > 0)
            memcpy(prev, entry, el + 1);
        if (left_out > 0 || el == 0 || n + (n ? 2 : 0) + el + reserve >= cap) {
            left_out++;
            continue;
        }
        if (n > 0) {
            memcpy(out + n, ", ", 2);
            n += 2;
        }
        memcpy(out + n, entry, el);
        n += el;
        out[n] = '\0';
    }
    if (left_out > 0) {
        int w = snprintf(out + n, cap - n, "%s...(+%zu more)", n ? ", " : "", left_out);
        if (w > 0 && (size_t)w < cap - n)
            n += (size_t)w;
    }
    return n;
}
