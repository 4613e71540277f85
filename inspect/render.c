/*
 * Rendering: bg_inspection_render builds the rewritten request from the
 * recorded operators (JSON span splices, innermost documents first and
 * right to left; re-encoded form, query, cookie and multipart fields;
 * rewritten headers); bg_rewrite_free.
 */
#include "inspect/inspect_int.h"

#include "common/hex.h"
#include "common/sbuf.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* S as form encoding onto SB: unreserved characters as they are, ' ' as
 * '+', every other byte as "%XX". */
static void pct_encode(bg_sbuf_t *sb, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            bg_sbuf_add(sb, (const char *)&c, 1);
        } else if (c == ' ') {
            bg_sbuf_add(sb, "+", 1);
        } else {
            char e[3];
            bg_sbuf_add(sb, e, bg_hex_pct(c, e));
        }
    }
}

static void encode_fields(const bg_inspection_t *x, field_set_t set, bg_sbuf_t *sb)
{
    int first = 1;
    for (size_t i = 0; i < x->nfields; i++) {
        const field_t *f = &x->fields[i];
        if (f->set != set || f->removed)
            continue;
        if (!first)
            bg_sbuf_add(sb, "&", 1);
        first = 0;
        pct_encode(sb, f->name, f->name_len);
        bg_sbuf_add(sb, "=", 1);
        pct_encode(sb, f->value, f->value_len);
    }
}

typedef struct {
    int doc;
    uint32_t start, end;
    char *repl; /* owned; NULL for a cut */
    size_t len;
} splice_t;

typedef struct {
    splice_t *v;
    size_t n, cap;
    int oom; /* a splice was lost: the render must fail, not leave the value */
} splices_t;

static void add_splice(splices_t *sp, int doc, uint32_t start, uint32_t end, char *repl, size_t len)
{
    splice_t *nv = bg_insp_grow(sp->v, &sp->cap, sp->n, sizeof *nv);
    if (nv == NULL) {
        sp->oom = 1;
        free(repl);
        return;
    }
    sp->v = nv;
    sp->v[sp->n].doc = doc;
    sp->v[sp->n].start = start;
    sp->v[sp->n].end = end;
    sp->v[sp->n].repl = repl;
    sp->v[sp->n].len = len;
    sp->n++;
}

/* A replacement built in B (taken): a failed allocation must not turn into
 * a cut, which would leave "key": with no value. */
static void add_repl(splices_t *sp, int doc, uint32_t start, uint32_t end, bg_sbuf_t *b)
{
    if (b->p == NULL || b->failed) {
        sp->oom = 1;
        free(b->p);
        return;
    }
    add_splice(sp, doc, start, end, b->p, b->n);
}

/* Strength order when several whole-value operators hit one field. */
static int op_rank(bg_op_kind_t k)
{
    switch (k) {
    case BG_OP_REDACT: return 6;
    case BG_OP_REPLACE: return 5;
    case BG_OP_GENERALIZE: return 4;
    case BG_OP_TOKENIZE: return 3;
    case BG_OP_HASH: return 2;
    case BG_OP_MASK: return 1;
    }
    return 0;
}

static int cmp_span_desc(const void *a, const void *b, void *ctx)
{
    const bg_finding_t *fs = ctx;
    const bg_finding_t *x = &fs[*(const size_t *)a], *y = &fs[*(const size_t *)b];
    return x->span_off < y->span_off ? 1 : x->span_off > y->span_off ? -1 : 0;
}

static void mark_removed(bg_inspection_t *x, const node_t *nd, splices_t *sp)
{
    if (nd->member >= 0) {
        member_t *m = &x->members[nd->member];
        m->removed = 1;
        x->containers[m->container].has_removal = 1;
    } else {
        bg_sbuf_t b = {0};
        bg_sbuf_add(&b, "null", 4);
        add_repl(sp, nd->doc, nd->vstart, nd->vend, &b);
    }
}

/* Perform the operators recorded on node NI (findings IDX[0..N)). */
static void render_node(bg_inspection_t *x, size_t ni, size_t *idx, size_t n, splices_t *sp)
{
    node_t *nd = &x->nodes[ni];
    size_t len = 0;
    const char *text = bg_insp_node_text(x, nd, &len);
    if (text == NULL && nd->kind == N_JSON) {
        /* An object or array: operators see its JSON text. */
        text = x->docs[nd->doc].text + nd->vstart;
        len = nd->vend - nd->vstart;
    }
    if (text == NULL)
        return;
    size_t best = (size_t)-1;
    for (size_t k = 0; k < n; k++) {
        bg_finding_t *f = &x->findings[idx[k]];
        if (f->whole && (best == (size_t)-1 ||
                         op_rank(x->pending[idx[k]].op.kind) > op_rank(x->pending[best].op.kind)))
            best = idx[k];
    }
    char *out = NULL;
    int drop = 0;
    if (best != (size_t)-1) {
        pending_t pb = x->pending[best];
        if (nd->kind == N_JSON && (nd->vtype == 'o' || nd->vtype == 'a'))
            pb.op.keep_start = pb.op.keep_end = 0; /* the ends of a container's text are
                                                      its first and last values */
        out = bg_insp_op_text(&pb, x->findings[best].category, text, len, &drop);
        if (out == NULL && !drop)
            drop = 1; /* an operator that failed must not leave the value as it was */
        if (nd->is_key) {
            free(out); /* the name is the PI: the member, field or header goes */
            out = NULL;
            drop = 1;
        }
        if (drop)
            for (size_t k = 0; k < n; k++)
                x->findings[idx[k]].anonymized = 1;
    } else {
        qsort_r(idx, n, sizeof *idx, cmp_span_desc, x->findings);
        size_t cur = len;
        out = malloc(len + 1);
        if (out == NULL) {
            sp->oom = 1; /* the value would go out as it was */
            return;
        }
        memcpy(out, text, len);
        out[len] = '\0';
        size_t last_off = (size_t)-1;
        for (size_t k = 0; k < n; k++) {
            bg_finding_t *f = &x->findings[idx[k]];
            if (f->span_off + f->span_len > len || f->span_off + f->span_len > last_off)
                continue; /* overlapping spans: the later one was applied */
            int d = 0;
            char *rep = bg_insp_op_text(&x->pending[idx[k]], f->category, text + f->span_off,
                                        f->span_len, &d);
            const char *r = rep != NULL ? rep : "";
            size_t rl = strlen(r);
            char *nb = malloc(cur - f->span_len + rl + 1);
            if (nb != NULL) {
                memcpy(nb, out, f->span_off);
                memcpy(nb + f->span_off, r, rl);
                memcpy(nb + f->span_off + rl, out + f->span_off + f->span_len,
                       cur - f->span_off - f->span_len);
                cur = cur - f->span_len + rl;
                nb[cur] = '\0';
                free(out);
                out = nb;
            } else {
                sp->oom = 1;
            }
            free(rep);
            last_off = f->span_off;
        }
    }
    switch (nd->kind) {
    case N_JSON:
        if (drop) {
            mark_removed(x, nd, sp);
        } else {
            bg_sbuf_t sb = {0};
            if (nd->vtype == 'n' && best != (size_t)-1 &&
                x->pending[best].op.kind == BG_OP_GENERALIZE && bg_insp_json_number_text(out)) {
                bg_sbuf_add(&sb, out, strlen(out)); /* a generalized number stays a number */
            } else {
                bg_sbuf_json_str(&sb, out, strlen(out));
            }
            add_repl(sp, nd->doc, nd->vstart, nd->vend, &sb);
        }
        break;
    case N_FIELD: {
        field_t *f = &x->fields[nd->slot];
        if (drop) {
            f->removed = 1;
        } else {
            free(f->value);
            f->value = out;
            f->value_len = strlen(out);
            out = NULL;
        }
        f->modified = 1;
        break;
    }
    case N_HEADER: {
        hdr_t *h = &x->hdrs[nd->slot];
        if (drop) {
            h->removed = 1;
        } else {
            free(h->value);
            h->value = out;
            h->value_len = strlen(out);
            out = NULL;
        }
        h->modified = 1;
        break;
    }
    case N_FIXED: break; /* bg_inspection_apply refuses fixed findings */
    case N_TEXT:
        free(x->text);
        x->text = drop ? strdup("") : out;
        x->text_len = x->text != NULL ? strlen(x->text) : 0;
        if (!drop)
            out = NULL;
        x->text_modified = 1;
        break;
    }
    free(out);
}

/* Cuts for removed members: a run of removed members takes the commas
 * after it (or, at the end of the container, the one before it).
 * Cost: O(members + containers): the members of the containers that have a
 * removal are grouped with one counting sort (members[] is in document
 * order within each container), not one pass over all members per
 * container, which was quadratic on batches (2,000 records with a redacted
 * field: 2,000 passes over ~60,000 members). */
static int removal_splices(bg_inspection_t *x, splices_t *sp)
{
    size_t nc = x->ncontainers;
    size_t *first = calloc(nc + 1, sizeof *first);
    size_t *fill = calloc(nc + 1, sizeof *fill);
    int *list = malloc((x->nmembers + 1) * sizeof *list);
    int rc = -1;
    if (first == NULL || fill == NULL || list == NULL)
        goto out;
    for (size_t m = 0; m < x->nmembers; m++)
        if (x->containers[x->members[m].container].has_removal)
            first[x->members[m].container + 1]++;
    for (size_t c = 0; c < nc; c++)
        first[c + 1] += first[c];
    for (size_t m = 0; m < x->nmembers; m++) {
        int c = x->members[m].container;
        if (x->containers[c].has_removal)
            list[first[c] + fill[c]++] = (int)m;
    }
    for (size_t c = 0; c < nc; c++) {
        if (!x->containers[c].has_removal)
            continue;
        int *mine = list + first[c];
        size_t n = first[c + 1] - first[c];
        for (size_t i = 0; i < n;) {
            if (!x->members[mine[i]].removed) {
                i++;
                continue;
            }
            size_t j = i;
            while (j + 1 < n && x->members[mine[j + 1]].removed)
                j++;
            const member_t *mi = &x->members[mine[i]], *mj = &x->members[mine[j]];
            uint32_t start, end;
            if (j + 1 < n) {
                start = mi->start;
                end = x->members[mine[j + 1]].start;
            } else if (i > 0) {
                start = x->members[mine[i - 1]].end;
                end = mj->end;
            } else {
                start = mi->start;
                end = mj->end;
            }
            add_splice(sp, x->containers[c].doc, start, end, NULL, 0);
            i = j + 1;
        }
    }
    rc = 0;
out:
    free(first);
    free(fill);
    free(list);
    return rc;
}

static int cmp_splice(const void *a, const void *b)
{
    const splice_t *x = a, *y = b;
    if (x->doc != y->doc)
        return x->doc < y->doc ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end > y->end ? -1 : x->end < y->end; /* the larger first */
}

/* Document D's text with its splices MINE[0..COUNT) applied; they are
 * sorted by cmp_splice. NULL when out of memory. */
static char *apply_splices(const bg_inspection_t *x, const splice_t *mine, size_t count, int d,
                           size_t *outlen)
{
    const doc_t *doc = &x->docs[d];
    bg_sbuf_t sb = {0};
    size_t need = doc->len + 1;
    for (size_t i = 0; i < count; i++)
        need += mine[i].len;
    sb.p = malloc(need); /* one allocation: no doubling copies of a 1 MB body */
    if (sb.p == NULL)
        return NULL;
    sb.cap = need;
    size_t cur = 0;
    for (size_t i = 0; i < count; i++) {
        if (mine[i].start < cur)
            continue; /* inside a larger splice already made */
        bg_sbuf_add(&sb, doc->text + cur, mine[i].start - cur);
        if (mine[i].repl != NULL)
            bg_sbuf_add(&sb, mine[i].repl, mine[i].len);
        cur = mine[i].end;
    }
    bg_sbuf_add(&sb, doc->text + cur, doc->len - cur);
    *outlen = sb.n;
    return sb.p;
}

/* Step 1 of a render: the operators of every node that has applied
 * findings, into SP (JSON splices) or into the fields, headers and text
 * they rewrite. The findings are grouped by node with one counting sort.
 * -1 when out of memory (SP then holds what was made so far). */
static int render_nodes(bg_inspection_t *x, splices_t *sp)
{
    size_t *idx = malloc((x->nfind + 1) * sizeof *idx);
    size_t *start = calloc(x->nnodes + 1, sizeof *start);
    size_t *fill = calloc(x->nnodes + 1, sizeof *fill);
    if (idx == NULL || start == NULL || fill == NULL) {
        free(idx);
        free(start);
        free(fill);
        return -1;
    }
    for (size_t i = 0; i < x->nfind; i++)
        if (x->findings[i].applied && !x->findings[i].removed)
            start[x->findings[i].internal + 1]++;
    for (size_t n = 0; n < x->nnodes; n++)
        start[n + 1] += start[n];
    for (size_t i = 0; i < x->nfind; i++) {
        const bg_finding_t *f = &x->findings[i];
        if (f->applied && !f->removed)
            idx[start[f->internal] + fill[f->internal]++] = i;
    }
    for (size_t n = 0; n < x->nnodes; n++)
        if (start[n + 1] > start[n])
            render_node(x, n, idx + start[n], start[n + 1] - start[n], sp);
    free(idx);
    free(start);
    free(fill);
    return 0;
}

/* Step 2: the JSON documents with their splices applied, innermost first;
 * each goes back into its container (a JSON string of the document
 * around it, a form or multipart field) or, at the top, into *TOP (taken
 * by the caller). Frees SP. -1 when a document could not be rebuilt: it
 * must never go out as it was. */
static int splice_documents(bg_inspection_t *x, splices_t *sp, char **top, size_t *top_len)
{
    int maxdepth = 0;
    for (size_t d = 0; d < x->ndocs; d++)
        if (x->docs[d].depth > maxdepth)
            maxdepth = x->docs[d].depth;
    int failed = 0;
    for (int depth = maxdepth; depth >= 0; depth--) {
        /* Every splice of this depth's documents is known by now (their
         * own, and their nested documents' from the pass before): sorted by
         * document, each document's run is contiguous. Container splices
         * added below go after NSP, for the next pass. */
        if (sp->n > 1)
            qsort(sp->v, sp->n, sizeof *sp->v, cmp_splice);
        size_t nsp = sp->n;
        for (size_t i = 0, j; i < nsp; i = j) {
            int d = sp->v[i].doc;
            for (j = i; j < nsp && sp->v[j].doc == d; j++)
                ;
            doc_t *doc = &x->docs[d];
            if (doc->depth != depth)
                continue;
            size_t nl = 0;
            char *txt = apply_splices(x, sp->v + i, j - i, d, &nl);
            if (txt == NULL) {
                failed = 1; /* never send the document as it was */
                continue;
            }
            if (doc->container_node >= 0) {
                const node_t *cn = &x->nodes[doc->container_node];
                bg_sbuf_t q = {0};
                bg_sbuf_json_str(&q, txt, nl);
                free(txt);
                add_repl(sp, cn->doc, cn->vstart, cn->vend, &q);
            } else if (doc->container_field >= 0) {
                field_t *f = &x->fields[doc->container_field];
                free(f->value);
                f->value = txt;
                f->value_len = nl;
                f->modified = 1;
            } else {
                free(*top);
                *top = txt;
                *top_len = nl;
            }
        }
    }
    for (size_t i = 0; i < sp->n; i++)
        free(sp->v[i].repl);
    free(sp->v);
    if (failed || sp->oom) {
        free(*top);
        *top = NULL;
        return -1;
    }
    return 0;
}

/* The field sets (bit 1 << field_set_t) with a field modified or removed. */
static unsigned modified_sets(const bg_inspection_t *x)
{
    unsigned sets = 0;
    for (size_t i = 0; i < x->nfields; i++) {
        const field_t *f = &x->fields[i];
        if (f->modified || f->removed)
            sets |= 1u << f->set;
    }
    return sets;
}

/* The multipart body again: every part that was not removed, with its
 * headers as they came and its (maybe rewritten) content. */
static void multipart_body(const bg_inspection_t *x, bg_sbuf_t *mb)
{
    for (size_t i = 0; i < x->nfields; i++) {
        const field_t *f = &x->fields[i];
        if (f->set != FS_PART || f->removed)
            continue;
        bg_sbuf_add(mb, "--", 2);
        bg_sbuf_add(mb, x->boundary, strlen(x->boundary));
        bg_sbuf_add(mb, "\r\n", 2);
        bg_sbuf_add(mb, f->part_head, f->part_head_len);
        bg_sbuf_add(mb, "\r\n\r\n", 4);
        bg_sbuf_add(mb, f->value, f->value_len);
        bg_sbuf_add(mb, "\r\n", 2);
    }
    bg_sbuf_add(mb, "--", 2);
    bg_sbuf_add(mb, x->boundary, strlen(x->boundary));
    bg_sbuf_add(mb, "--\r\n", 4);
}

/* Step 3: the body, when its kind's content changed: the rebuilt JSON
 * document TOP (taken), the form or multipart fields encoded again, or the
 * rewritten text. -1 when out of memory. */
static int render_body(const bg_inspection_t *x, unsigned sets, char *top, size_t top_len,
                       bg_rewrite_t *out)
{
    if (x->kind == BG_BODY_JSON && top != NULL) {
        out->body = top;
        out->body_len = top_len;
        out->body_changed = 1;
        return 0;
    }
    free(top);
    bg_sbuf_t sb = {0};
    if (x->kind == BG_BODY_FORM && (sets & 1u << FS_FORM)) {
        encode_fields(x, FS_FORM, &sb);
        if (sb.failed) {
            bg_sbuf_free(&sb);
            return -1;
        }
        out->body = sb.p != NULL ? sb.p : strdup("");
    } else if (x->kind == BG_BODY_MULTIPART && (sets & 1u << FS_PART)) {
        multipart_body(x, &sb);
        if (sb.failed) {
            bg_sbuf_free(&sb);
            return -1;
        }
        out->body = sb.p;
    } else if (x->kind == BG_BODY_TEXT && x->text_modified) {
        out->body = strdup(x->text);
    } else {
        return 0;
    }
    out->body_changed = 1;
    if (out->body == NULL)
        return -1;
    out->body_len = strlen(out->body);
    return 0;
}

/* Step 4: the target, when a path segment or a query parameter changed:
 * de-identified path segments re-encoded, the others as written; the
 * query re-encoded when a parameter changed. -1 when out of memory. */
static int render_target(const bg_inspection_t *x, unsigned sets, bg_rewrite_t *out)
{
    int query_mod = (sets & 1u << FS_QUERY) != 0, path_mod = (sets & 1u << FS_PATH) != 0;
    if (!query_mod && !path_mod)
        return 0;
    const char *q = memchr(x->in.target, '?', x->in.target_len);
    size_t pl = q != NULL ? (size_t)(q - x->in.target) : x->in.target_len;
    bg_sbuf_t tb = {0};
    if (path_mod) {
        size_t cur = 0;
        for (size_t i = 0; i < x->nfields; i++) {
            const field_t *f = &x->fields[i];
            if (f->set != FS_PATH)
                continue;
            bg_sbuf_add(&tb, x->in.target + cur, f->raw_off - cur);
            if (f->removed)
                bg_sbuf_add(&tb, "-", 1); /* the segment stays, its value goes */
            else if (f->modified)
                pct_encode(&tb, f->value, f->value_len);
            else
                bg_sbuf_add(&tb, x->in.target + f->raw_off, f->raw_len);
            cur = f->raw_off + f->raw_len;
        }
        bg_sbuf_add(&tb, x->in.target + cur, pl - cur);
    } else {
        bg_sbuf_add(&tb, x->in.target, pl);
    }
    if (query_mod) {
        bg_sbuf_t qb = {0};
        encode_fields(x, FS_QUERY, &qb);
        if (qb.n > 0) {
            bg_sbuf_add(&tb, "?", 1);
            bg_sbuf_add(&tb, qb.p, qb.n);
        }
        tb.failed |= qb.failed;
        bg_sbuf_free(&qb);
    } else if (q != NULL) {
        bg_sbuf_add(&tb, q, x->in.target_len - pl);
    }
    if (tb.failed) {
        bg_sbuf_free(&tb);
        return -1;
    }
    out->target = tb.p;
    out->target_len = tb.n;
    out->target_changed = 1;
    return 0;
}

/* Header HI's Cookie value again without the removed cookies and with the
 * rewritten ones, into *VALUE (NULL when every cookie went). 0 when none
 * of its cookies changed, 1 when rewritten, -1 when out of memory. */
static int cookie_header(const bg_inspection_t *x, size_t hi, char **value)
{
    int touched = 0;
    for (size_t i = 0; i < x->nfields; i++)
        touched |= x->fields[i].set == FS_COOKIE && x->fields[i].cookie_header == (int)hi &&
                   (x->fields[i].modified || x->fields[i].removed);
    if (!touched)
        return 0;
    bg_sbuf_t cb = {0};
    for (size_t i = 0; i < x->nfields; i++) {
        const field_t *f = &x->fields[i];
        if (f->set != FS_COOKIE || f->cookie_header != (int)hi || f->removed)
            continue;
        if (cb.n > 0)
            bg_sbuf_add(&cb, "; ", 2);
        bg_sbuf_add(&cb, f->name, f->name_len);
        bg_sbuf_add(&cb, "=", 1);
        bg_sbuf_add(&cb, f->value, f->value_len);
    }
    if (cb.failed) {
        bg_sbuf_free(&cb);
        return -1;
    }
    *value = cb.p;
    return 1;
}

/* Step 5: the headers and cookies rewritten. More rewrites than
 * bg_rewrite_t holds fail the render: silently dropping one would send its
 * PI as it was; so does a value that could not be copied. */
static int render_headers(const bg_inspection_t *x, bg_rewrite_t *out)
{
    const size_t maxh = sizeof out->header_index / sizeof out->header_index[0];
    for (size_t i = 0; i < x->nhdrs; i++) {
        const hdr_t *h = &x->hdrs[i];
        if (!h->modified && !h->removed)
            continue;
        if (out->nheaders == maxh)
            return -1;
        char *v = h->removed ? NULL : strdup(h->value);
        if (!h->removed && v == NULL)
            return -1;
        out->header_index[out->nheaders] = h->header;
        out->header_values[out->nheaders++] = v;
    }
    for (size_t hi = 0; hi < x->in.nheaders; hi++) {
        char *v = NULL;
        int rc = cookie_header(x, hi, &v);
        if (rc == 0)
            continue;
        if (rc < 0)
            return -1;
        if (out->nheaders == maxh) {
            free(v);
            return -1;
        }
        out->header_index[out->nheaders] = hi;
        out->header_values[out->nheaders++] = v; /* NULL when every cookie went */
    }
    return 0;
}

/*
 * The rewritten request, in named steps: the operators per node, the cuts
 * for removed members, the JSON documents rebuilt innermost first, then the
 * body, the target and the headers. On failure OUT is freed and empty.
 */
int bg_inspection_render(bg_inspection_t *x, bg_rewrite_t *out)
{
    memset(out, 0, sizeof *out);
    splices_t sp = {0};
    if (render_nodes(x, &sp) != 0 || removal_splices(x, &sp) != 0) {
        for (size_t i = 0; i < sp.n; i++)
            free(sp.v[i].repl);
        free(sp.v);
        return -1;
    }
    char *top = NULL;
    size_t top_len = 0;
    if (splice_documents(x, &sp, &top, &top_len) != 0)
        return -1;
    unsigned sets = modified_sets(x);
    if (render_body(x, sets, top, top_len, out) != 0 || render_target(x, sets, out) != 0 ||
        render_headers(x, out) != 0) {
        bg_rewrite_free(out);
        return -1;
    }
    return 0;
}

void bg_rewrite_free(bg_rewrite_t *rw)
{
    free(rw->body);
    free(rw->target);
    for (size_t i = 0; i < rw->nheaders; i++)
        free(rw->header_values[i]);
    memset(rw, 0, sizeof *rw);
}
