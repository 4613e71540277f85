/*
 * Diagnostics sink of the configuration check: see cfgerr.h.
 */
#include "config/cfgerr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/hex.h"
#include "common/utf8.h"

typedef struct {
    bg_cfgerr_item_t pub; /* first: bg_cfgerr_item() hands out &pub */
    size_t file_id;       /* sort key: order in which files were named */
    size_t seq;           /* sort tie-break: order of addition */
} item_t;

struct bg_cfgerr {
    item_t *items;
    size_t n, cap;
    size_t limit;
    size_t errors, warnings;
    size_t unstored;
    char **files; /* every file named so far; items point into these */
    size_t nfiles, files_cap, cur_file;
};

/* ---------------------------------------------------------------------- */
/* Strings                                                                 */

/* Copy of S with every byte that is not valid UTF-8 replaced by U+FFFD, so
 * that jansson can put it in a JSON string. NULL on ENOMEM. */
static char *utf8_copy(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(3 * n + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = bg_utf8_decode(p + i, n - i, &cp);
        if (l == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(o, p + i, l);
            o += l;
            i += l;
        }
    }
    *o = '\0';
    return out;
}

/* ---------------------------------------------------------------------- */
/* Sink                                                                    */

bg_cfgerr_t *bg_cfgerr_new(const char *file)
{
    bg_cfgerr_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->limit = BG_CFGERR_DEFAULT_LIMIT;
    if (bg_cfgerr_set_file(e, file) != 0) {
        bg_cfgerr_free(e);
        return NULL;
    }
    return e;
}

void bg_cfgerr_free(bg_cfgerr_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++) {
        free((char *)e->items[i].pub.path);
        free((char *)e->items[i].pub.message);
    }
    free(e->items);
    for (size_t i = 0; i < e->nfiles; i++)
        free(e->files[i]);
    free(e->files);
    free(e);
}

int bg_cfgerr_set_file(bg_cfgerr_t *e, const char *file)
{
    if (file == NULL)
        file = "-";
    for (size_t i = 0; i < e->nfiles; i++) {
        if (strcmp(e->files[i], file) == 0) {
            e->cur_file = i;
            return 0;
        }
    }
    char *copy = utf8_copy(file);
    char **files = copy ? bg_grow(e->files, &e->files_cap, e->nfiles + 1, sizeof *files, 4) : NULL;
    if (files == NULL) {
        free(copy);
        return -1;
    }
    e->files = files;
    files[e->nfiles] = copy;
    e->cur_file = e->nfiles++;
    return 0;
}

void bg_cfgerr_set_limit(bg_cfgerr_t *e, size_t max)
{
    e->limit = max;
}

/* Count the item, then store it (LINE/COL/APPROX already resolved). */
static int add_item(bg_cfgerr_t *e, bg_cfgerr_severity_t sev, int line, int col, int approx,
                    const char *path, const char *message)
{
    if (sev == BG_CFGERR_WARNING)
        e->warnings++;
    else
        e->errors++;
    if (e->limit != 0 && e->n >= e->limit)
        goto unstored;
    item_t *items = bg_grow(e->items, &e->cap, e->n + 1, sizeof *items, 16);
    if (items == NULL)
        goto unstored;
    e->items = items;
    char *p = utf8_copy(path);
    char *m = utf8_copy(message);
    if (p == NULL || m == NULL) {
        free(p);
        free(m);
        goto unstored;
    }
    item_t *it = &e->items[e->n];
    it->pub.severity = sev == BG_CFGERR_WARNING ? BG_CFGERR_WARNING : BG_CFGERR_ERROR;
    it->pub.file = e->files[e->cur_file];
    it->pub.line = line > 0 && col > 0 ? line : 0;
    it->pub.col = line > 0 && col > 0 ? col : 0;
    it->pub.approximate = approx;
    it->pub.path = p; /* the item owns both copies */
    it->pub.message = m;
    it->file_id = e->cur_file;
    it->seq = e->n;
    e->n++;
    return 0;

unstored:
    e->unstored++;
    return -1;
}

int bg_cfgerr_add(bg_cfgerr_t *e, bg_cfgerr_severity_t sev, int line, int col, const char *path,
                  const char *message)
{
    return add_item(e, sev, line, col, 0, path, message);
}

int bg_cfgerr_vaddf(bg_cfgerr_t *e, const bg_jsonpos_t *pos, bg_cfgerr_severity_t sev,
                    const char *path, int key_pos, const char *fmt, va_list ap)
{
    int line = 0, col = 0, approx = 0;
    if (pos != NULL && path != NULL) {
        int rc = key_pos ? bg_jsonpos_lookup_key(pos, path, &line, &col)
                         : bg_jsonpos_lookup(pos, path, &line, &col);
        approx = rc == BG_JSONPOS_FALLBACK;
    }
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) {
        /* Out of memory for the text: still count the item, and say so. */
        add_item(e, sev, line, col, approx, path, "(message lost: out of memory)");
        return -1;
    }
    int rc = add_item(e, sev, line, col, approx, path, msg);
    free(msg);
    return rc;
}

int bg_cfgerr_addf(bg_cfgerr_t *e, const bg_jsonpos_t *pos, bg_cfgerr_severity_t sev,
                   const char *path, int key_pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = bg_cfgerr_vaddf(e, pos, sev, path, key_pos, fmt, ap);
    va_end(ap);
    return rc;
}

int bg_cfgerr_add_json_error(bg_cfgerr_t *e, const json_error_t *err)
{
    /* jansson uses -1 for errors that have no position (I/O, arguments). */
    return add_item(e, BG_CFGERR_ERROR, err->line, err->column, 0, "",
                    err->text[0] ? err->text : "invalid JSON");
}

int bg_cfgerr_add_duplicates(bg_cfgerr_t *e, const bg_jsonpos_t *pos)
{
    size_t n;
    const bg_jsonpos_dup_t *d = bg_jsonpos_duplicates(pos, &n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = bg_jsonpos_entry_path(pos, d[i].entry, NULL, 0);
        char *path = malloc(len + 1);
        char msg[160];
        if (path != NULL)
            bg_jsonpos_entry_path(pos, d[i].entry, path, len + 1);
        snprintf(msg, sizeof msg,
                 "duplicate key: it silently replaces the definition at line %d, column %d; "
                 "remove one of them",
                 d[i].first_line, d[i].first_col);
        if (add_item(e, BG_CFGERR_ERROR, d[i].line, d[i].col, 0, path ? path : "", msg) != 0 ||
            path == NULL)
            rc = -1;
        free(path);
    }
    return rc;
}

size_t bg_cfgerr_errors(const bg_cfgerr_t *e)
{
    return e->errors;
}
size_t bg_cfgerr_warnings(const bg_cfgerr_t *e)
{
    return e->warnings;
}
size_t bg_cfgerr_count(const bg_cfgerr_t *e)
{
    return e->n;
}

const bg_cfgerr_item_t *bg_cfgerr_item(const bg_cfgerr_t *e, size_t i)
{
    return i < e->n ? &e->items[i].pub : NULL;
}

static int cmp_items(const void *pa, const void *pb)
{
    const item_t *a = pa, *b = pb;
    if (a->file_id != b->file_id)
        return a->file_id < b->file_id ? -1 : 1;
    if (a->pub.line != b->pub.line)
        return a->pub.line < b->pub.line ? -1 : 1;
    if (a->pub.col != b->pub.col)
        return a->pub.col < b->pub.col ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void bg_cfgerr_sort(bg_cfgerr_t *e)
{
    if (e->n > 1)
        qsort(e->items, e->n, sizeof *e->items, cmp_items);
}

/* ---------------------------------------------------------------------- */
/* Output                                                                  */

typedef struct {
    char *buf;
    size_t cap, len;
} out_t;

static void out_c(out_t *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void out_s(out_t *o, const char *s)
{
    while (*s)
        out_c(o, *s++);
}

/* S with control characters escaped: one item stays one line. */
static void out_clean(out_t *o, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p != 0x7F) {
            out_c(o, (char)*p);
            continue;
        }
        out_c(o, '\\');
        switch (*p) {
        case '\n': out_c(o, 'n'); break;
        case '\r': out_c(o, 'r'); break;
        case '\t': out_c(o, 't'); break;
        default: {
            char x[3];
            bg_hex_encode(p, 1, x);
            out_c(o, 'x');
            out_c(o, x[0]);
            out_c(o, x[1]);
        }
        }
    }
}

size_t bg_cfgerr_format(const bg_cfgerr_item_t *it, char *buf, size_t cap)
{
    out_t o = {buf, cap, 0};
    out_clean(&o, it->file);
    if (it->line > 0) {
        char num[32];
        snprintf(num, sizeof num, ":%d:%d", it->line, it->col);
        out_s(&o, num);
    }
    out_s(&o, it->severity == BG_CFGERR_WARNING ? ": warning: " : ": error: ");
    if (it->path[0] != '\0') {
        out_clean(&o, it->path);
        out_s(&o, ": ");
    }
    out_clean(&o, it->message);
    if (cap > 0)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

int bg_cfgerr_print(const bg_cfgerr_t *e, FILE *out)
{
    char small[512];
    for (size_t i = 0; i < e->n; i++) {
        const bg_cfgerr_item_t *it = &e->items[i].pub;
        size_t len = bg_cfgerr_format(it, small, sizeof small);
        char *line = small;
        if (len >= sizeof small) {
            if ((line = malloc(len + 1)) == NULL)
                return -1;
            bg_cfgerr_format(it, line, len + 1);
        }
        int rc = fprintf(out, "%s\n", line);
        if (line != small)
            free(line);
        if (rc < 0)
            return -1;
    }
    if (e->unstored > 0 && fprintf(out, "%s: note: %zu more diagnostic%s not shown\n", e->files[0],
                                   e->unstored, e->unstored == 1 ? "" : "s") < 0)
        return -1;
    return fflush(out) == 0 ? 0 : -1;
}

json_t *bg_cfgerr_to_json(const bg_cfgerr_t *e)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < e->n; i++) {
        const bg_cfgerr_item_t *it = &e->items[i].pub;
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:b}", "severity",
                              it->severity == BG_CFGERR_WARNING ? "warning" : "error", "file",
                              it->file, "line", it->line > 0 ? json_integer(it->line) : json_null(),
                              "column", it->line > 0 ? json_integer(it->col) : json_null(), "path",
                              it->path, "message", it->message, "approximate", it->approximate);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}
