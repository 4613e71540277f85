/*
 * Compiled JSON paths: the "$.user.phone", "$.events[*].imei",
 * "$..idNo" syntax of field rules and record paths, parsed once
 * (bg_insp_jpath_parse) and matched against the walker's frames
 * (bg_insp_jpath_match_from). Member names match in any ASCII case.
 */
#include "inspect/inspect_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bg_insp_jpath_free(jpath_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->segs[i].key);
    free(p->segs);
    p->segs = NULL;
    p->n = 0;
}

static int jpath_push(jpath_t *p, seg_kind_t kind, const char *key, size_t key_len, size_t index)
{
    seg_t *ns = realloc(p->segs, (p->n + 1) * sizeof *ns);
    if (ns == NULL)
        return -1;
    p->segs = ns;
    seg_t *s = &p->segs[p->n++];
    s->kind = kind;
    s->key = key != NULL ? strndup(key, key_len) : NULL;
    s->key_len = key_len;
    s->index = index;
    return 0;
}

/*
 * Grammar: "$" then any of
 *   .name      name: any bytes except . [ ] ' " and space (UTF-8 allowed)
 *   .*         any member
 *   ..name     name at any depth below
 *   [N] [*]    array element / any element
 *   ['name'] ["name"]  quoted member name (no escapes inside)
 */
int bg_insp_jpath_parse(const char *path, jpath_t *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (path == NULL || path[0] != '$') {
        snprintf(err, errcap, "a JSON path starts with '$' (like $.user.phone)");
        return -1;
    }
    const char *p = path + 1;
    while (*p != '\0') {
        if (p[0] == '.' && p[1] == '.') {
            p += 2;
            const char *s = p;
            while (*p != '\0' && *p != '.' && *p != '[' && *p != ']' && *p != '\'' && *p != '"' &&
                   *p != ' ')
                p++;
            if (p == s) {
                snprintf(err, errcap, "'..' must be followed by a member name");
                goto fail;
            }
            if (jpath_push(out, SEG_RECURSIVE, s, (size_t)(p - s), 0) != 0)
                goto oom;
        } else if (p[0] == '.') {
            p++;
            if (*p == '*') {
                p++;
                if (jpath_push(out, SEG_ANY_KEY, NULL, 0, 0) != 0)
                    goto oom;
                continue;
            }
            const char *s = p;
            while (*p != '\0' && *p != '.' && *p != '[' && *p != ']' && *p != '\'' && *p != '"' &&
                   *p != ' ')
                p++;
            if (p == s) {
                snprintf(err, errcap, "empty member name after '.'");
                goto fail;
            }
            if (jpath_push(out, SEG_KEY, s, (size_t)(p - s), 0) != 0)
                goto oom;
        } else if (p[0] == '[') {
            p++;
            if (*p == '*' && p[1] == ']') {
                p += 2;
                if (jpath_push(out, SEG_ANY_INDEX, NULL, 0, 0) != 0)
                    goto oom;
            } else if (*p == '\'' || *p == '"') {
                char q = *p++;
                const char *s = p;
                while (*p != '\0' && *p != q)
                    p++;
                if (*p != q || p[1] != ']') {
                    snprintf(err, errcap, "unterminated quoted member name");
                    goto fail;
                }
                if (jpath_push(out, SEG_KEY, s, (size_t)(p - s), 0) != 0)
                    goto oom;
                p += 2;
            } else if (*p >= '0' && *p <= '9') {
                size_t v = 0;
                while (*p >= '0' && *p <= '9') {
                    if (v > 100000000) {
                        snprintf(err, errcap, "array index too large");
                        goto fail;
                    }
                    v = v * 10 + (size_t)(*p++ - '0');
                }
                if (*p != ']') {
                    snprintf(err, errcap, "expected ']' after the array index");
                    goto fail;
                }
                p++;
                if (jpath_push(out, SEG_INDEX, NULL, 0, v) != 0)
                    goto oom;
            } else {
                snprintf(err, errcap, "expected [N], [*] or ['name']");
                goto fail;
            }
        } else {
            snprintf(err, errcap, "unexpected character at offset %zu", (size_t)(p - path));
            goto fail;
        }
    }
    return 0;
oom:
    snprintf(err, errcap, "out of memory");
fail:
    bg_insp_jpath_free(out);
    return -1;
}

/* Member names in rules match keys in any ASCII case ("$.user.idNo" matches
 * "IDNO"): a key's case is the cheapest way around a rule. */
static int key_ieq(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return 0;
    for (size_t i = 0; i < al; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int seg_match(const seg_t *s, const frame_t *f)
{
    switch (s->kind) {
    case SEG_KEY: return f->key != NULL && key_ieq(f->key, f->key_len, s->key, s->key_len);
    case SEG_INDEX: return f->key == NULL && f->index == s->index;
    case SEG_ANY_INDEX: return f->key == NULL;
    case SEG_ANY_KEY: return f->key != NULL;
    case SEG_RECURSIVE: return 0;
    }
    return 0;
}

/* Does pattern segs[si..] match frames[fi..] exactly? */
int bg_insp_jpath_match_from(const jpath_t *p, size_t si, const frame_t *fr, size_t nf, size_t fi)
{
    while (si < p->n) {
        const seg_t *s = &p->segs[si];
        if (s->kind == SEG_RECURSIVE) {
            /* the named key at this level or any deeper one */
            for (size_t k = fi; k < nf; k++) {
                if (fr[k].key != NULL && key_ieq(fr[k].key, fr[k].key_len, s->key, s->key_len) &&
                    bg_insp_jpath_match_from(p, si + 1, fr, nf, k + 1))
                    return 1;
            }
            return 0;
        }
        if (fi >= nf || !seg_match(s, &fr[fi]))
            return 0;
        si++;
        fi++;
    }
    return fi == nf;
}
