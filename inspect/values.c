/*
 * Values: the raw value at a path (bg_inspection_value: subject ids,
 * references, birth dates, the subject's region) and at a finding
 * (bg_inspection_finding_value). What these return is PI: never log it.
 */
#include "inspect/inspect_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* S[0..LEN) into OUT, truncated to CAP; the length written (callers index
 * OUT with it, so never the untruncated length snprintf would give), or -1
 * when CAP is 0. */
int bg_insp_value_out(char *out, size_t cap, const char *s, size_t len)
{
    if (cap == 0)
        return -1;
    if (len > cap - 1)
        len = cap - 1;
    if (len > INT_MAX)
        len = INT_MAX;
    memcpy(out, s, len);
    out[len] = '\0';
    return (int)len;
}

int bg_inspection_value(const bg_inspection_t *x, const char *path, int record, char *out,
                        size_t cap)
{
    static const struct {
        const char *prefix;
        field_set_t set;
    } sets[] = {
        {"query.", FS_QUERY}, {"form.", FS_FORM}, {"cookie.", FS_COOKIE}, {"multipart.", FS_PART}};
    if (path[0] == '$') {
        if (x->kind != BG_BODY_JSON || x->ndocs == 0)
            return -1;
        jpath_t jp, full;
        char err[100];
        if (bg_insp_jpath_parse(path, &jp, err, sizeof err) != 0)
            return -1;
        /* Relative to a record: the records path, the record's index, then PATH. */
        memset(&full, 0, sizeof full);
        const jpath_t *use = &jp;
        if (record >= 0) {
            const jpath_t *rp = &x->rules->records;
            if (rp->n == 0) {
                bg_insp_jpath_free(&jp);
                return -1;
            }
            full.segs = malloc((rp->n + jp.n) * sizeof *full.segs);
            if (full.segs == NULL) {
                bg_insp_jpath_free(&jp);
                return -1;
            }
            memcpy(full.segs, rp->segs, (rp->n - 1) * sizeof *full.segs);
            full.segs[rp->n - 1].kind = SEG_INDEX;
            full.segs[rp->n - 1].key = NULL;
            full.segs[rp->n - 1].index = (size_t)record;
            if (jp.n > 0) /* "$" alone has no segments (and a NULL array) */
                memcpy(full.segs + rp->n, jp.segs, jp.n * sizeof *full.segs);
            full.n = rp->n + jp.n;
            use = &full;
        }
        int rc = bg_insp_jseek((bg_inspection_t *)x, use, out, cap);
        free(full.segs); /* shares the segments' keys with the paths it copied */
        bg_insp_jpath_free(&jp);
        return rc;
    }
    if (strncmp(path, "header.", 7) == 0) {
        const bg_http_header_t *h = bg_insp_find_hdr(&x->in, path + 7);
        if (h == NULL)
            return -1;
        return bg_insp_value_out(out, cap, h->value, h->value_len);
    }
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        size_t pl = strlen(sets[k].prefix);
        if (strncmp(path, sets[k].prefix, pl) != 0)
            continue;
        const char *name = path + pl;
        for (size_t i = 0; i < x->nfields; i++) {
            const field_t *f = &x->fields[i];
            if (f->set == sets[k].set && f->name_len == strlen(name) &&
                memcmp(f->name, name, f->name_len) == 0)
                return bg_insp_value_out(out, cap, f->value, f->value_len);
        }
        /* Cookies are only split when inspected; look in the raw header too. */
        if (sets[k].set == FS_COOKIE) {
            const bg_http_header_t *h = bg_insp_find_hdr(&x->in, "cookie");
            size_t nl = strlen(name);
            for (const char *p = h ? h->value : NULL; p != NULL && p < h->value + h->value_len;) {
                const char *end = memchr(p, ';', (size_t)(h->value + h->value_len - p));
                if (end == NULL)
                    end = h->value + h->value_len;
                while (p < end && *p == ' ')
                    p++;
                if ((size_t)(end - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
                    return bg_insp_value_out(out, cap, p + nl + 1, (size_t)(end - p - nl - 1));
                p = end + 1;
            }
        }
        return -1;
    }
    return -1;
}

/* Current text of a node's value, or NULL (non-text JSON values). */
const char *bg_insp_node_text(const bg_inspection_t *x, const node_t *n, size_t *len)
{
    if (n->is_key && n->kind == N_FIELD) {
        *len = x->fields[n->slot].name_len;
        return x->fields[n->slot].name;
    }
    if (n->is_key && n->kind == N_HEADER) {
        *len = strlen(x->hdrs[n->slot].name);
        return x->hdrs[n->slot].name;
    }
    switch (n->kind) {
    case N_JSON:
        if (n->vtype == 's' || n->vtype == 'n' || n->vtype == 'k') {
            *len = n->text_len;
            return n->text;
        }
        return NULL;
    case N_FIELD: *len = x->fields[n->slot].value_len; return x->fields[n->slot].value;
    case N_HEADER: *len = x->hdrs[n->slot].value_len; return x->hdrs[n->slot].value;
    case N_TEXT: *len = x->text_len; return x->text;
    case N_FIXED: *len = n->text_len; return n->text;
    }
    return NULL;
}

int bg_inspection_finding_value(const bg_inspection_t *x, const bg_finding_t *f, char *out,
                                size_t cap)
{
    const node_t *n = &x->nodes[f->internal];
    size_t len;
    const char *s = bg_insp_node_text(x, n, &len);
    if (s == NULL)
        return -1;
    if (!f->whole && f->span_off + f->span_len <= len) {
        s += f->span_off;
        len = f->span_len;
    }
    return bg_insp_value_out(out, cap, s, len);
}
