/*
 * HAR 1.2 reader: a chunked, string-aware tokenizer isolates each entry of
 * log.entries; jansson parses one entry at a time. See har.h for the
 * memory model and the shapes accepted.
 */
#include "replay/har.h"

#include "common/base64.h"
#include "common/grow.h"
#include "common/hex.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define MAX_DEPTH 2048
#define DEFAULT_CHUNK ((size_t)1 << 20)

enum {
    KEY_OTHER = 0,
    KEY_LOG,
    KEY_ENTRIES,
    KEY_REQUEST,
    KEY_SERVER_IP,
    KEY_STARTED,
    KEY_RESPONSE,
    KEY_HEADERS
};

struct bg_har_reader {
    FILE *fp;
    int own_fp;
    const char *mem; /* in-memory source */
    size_t mem_len, mem_pos;
    char path[256];
    char dir[4096]; /* the HAR's directory, "" for memory and stdin */
    size_t chunk, max_entry;
    char *buf;
    size_t buf_len, buf_pos;
    uint64_t off;  /* file offset of buf[buf_pos] */
    uint64_t line; /* line of buf[buf_pos] */
    int eof, fatal, done, started, saw_entries;

    /* tokenizer */
    int depth;
    unsigned char type[MAX_DEPTH];       /* '{' or '[' */
    unsigned char expect_key[MAX_DEPTH]; /* object: the next string is a key */
    unsigned char key[MAX_DEPTH];        /* object: KEY_* of the current member */
    int in_str, esc, str_is_key;
    char keybuf[16];
    size_t keylen;

    /* the entry being captured */
    int capturing, skipping;
    int skip_depth; /* the skipped member's object is at this depth */
    char *cap;
    size_t cap_len, cap_cap;
    uint64_t cap_off, cap_line;
    size_t index;
};

void bg_replay_req_clear(bg_replay_req_t *r)
{
    free(r->method);
    free(r->url);
    free(r->authority);
    free(r->target);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->body);
    free(r->host_header);
    free(r->recorded_decision);
    memset(r, 0, sizeof *r);
}

static bg_har_reader_t *reader_new(size_t chunk, size_t max_entry)
{
    bg_har_reader_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->chunk = chunk ? chunk : DEFAULT_CHUNK;
    r->max_entry = max_entry ? max_entry : BG_HAR_MAX_ENTRY;
    r->line = 1;
    return r;
}

bg_har_reader_t *bg_har_open(const char *path, size_t chunk, size_t max_entry, char *err,
                             size_t errcap)
{
    bg_har_reader_t *r = reader_new(chunk, max_entry);
    if (r == NULL) {
        snprintf(err, errcap, "%s: out of memory", path);
        return NULL;
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    if (strcmp(path, "-") == 0) {
        r->fp = stdin;
    } else {
        const char *slash = strrchr(path, '/');
        if (slash == NULL)
            snprintf(r->dir, sizeof r->dir, ".");
        else
            snprintf(r->dir, sizeof r->dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
        r->fp = fopen(path, "rb");
        if (r->fp == NULL) {
            snprintf(err, errcap, "%s: %s", path, strerror(errno));
            free(r);
            return NULL;
        }
        r->own_fp = 1;
    }
    r->buf = malloc(r->chunk);
    if (r->buf == NULL) {
        snprintf(err, errcap, "%s: out of memory", path);
        bg_har_close(r);
        return NULL;
    }
    return r;
}

bg_har_reader_t *bg_har_open_mem(const char *buf, size_t len, size_t chunk, size_t max_entry)
{
    bg_har_reader_t *r = reader_new(chunk, max_entry);
    if (r == NULL)
        return NULL;
    snprintf(r->path, sizeof r->path, "(memory)");
    r->mem = buf;
    r->mem_len = len;
    return r;
}

void bg_har_close(bg_har_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->own_fp)
        fclose(r->fp);
    if (r->mem == NULL)
        free(r->buf);
    free(r->cap);
    free(r);
}

/* Refill the chunk. 1 when bytes are available, 0 at end, -1 on error. */
static int refill(bg_har_reader_t *r, char *err, size_t errcap)
{
    if (r->eof)
        return 0;
    if (r->mem != NULL) {
        size_t n = r->mem_len - r->mem_pos;
        if (n > r->chunk)
            n = r->chunk;
        r->buf = (char *)(uintptr_t)(r->mem + r->mem_pos); /* read only */
        r->mem_pos += n;
        r->buf_len = n;
        r->buf_pos = 0;
        if (n == 0)
            r->eof = 1;
        return n > 0;
    }
    size_t n = fread(r->buf, 1, r->chunk, r->fp);
    if (n == 0) {
        if (ferror(r->fp)) {
            snprintf(err, errcap, "%s: read error at byte %llu: %s", r->path,
                     (unsigned long long)r->off, strerror(errno));
            return -1;
        }
        r->eof = 1;
        return 0;
    }
    r->buf_len = n;
    r->buf_pos = 0;
    return 1;
}

static int cap_add(bg_har_reader_t *r, const char *s, size_t n)
{
    if (r->cap_len + n > r->max_entry)
        return -1;
    if (r->cap_len + n > r->cap_cap) {
        size_t nc = r->cap_cap ? r->cap_cap : 4096;
        while (nc < r->cap_len + n)
            nc *= 2;
        if (nc > r->max_entry)
            nc = r->max_entry;
        char *p = realloc(r->cap, nc);
        if (p == NULL)
            return -1;
        r->cap = p;
        r->cap_cap = nc;
    }
    memcpy(r->cap + r->cap_len, s, n);
    r->cap_len += n;
    return 0;
}

/* One byte: the common case without a call. */
static inline int cap_put(bg_har_reader_t *r, char c)
{
    if (r->cap_len < r->cap_cap && r->cap_len < r->max_entry) {
        r->cap[r->cap_len++] = c;
        return 0;
    }
    return cap_add(r, &c, 1);
}

static int keyid(const char *k, size_t n)
{
    if (n == 3 && memcmp(k, "log", 3) == 0)
        return KEY_LOG;
    if (n == 7 && memcmp(k, "entries", 7) == 0)
        return KEY_ENTRIES;
    if (n == 7 && memcmp(k, "request", 7) == 0)
        return KEY_REQUEST;
    if (n == 15 && memcmp(k, "serverIPAddress", 15) == 0)
        return KEY_SERVER_IP;
    if (n == 15 && memcmp(k, "startedDateTime", 15) == 0)
        return KEY_STARTED;
    if (n == 8 && memcmp(k, "response", 8) == 0)
        return KEY_RESPONSE;
    if (n == 7 && memcmp(k, "headers", 7) == 0)
        return KEY_HEADERS;
    return KEY_OTHER;
}

/* Depth 3 is log.entries: root object, "log" object, "entries" array. */
static int in_entries(const bg_har_reader_t *r)
{
    return r->depth == 3 && r->type[0] == '{' && r->type[1] == '{' && r->key[0] == KEY_LOG &&
           r->type[2] == '[' && r->key[1] == KEY_ENTRIES;
}

static int fail(bg_har_reader_t *r, char *err, size_t errcap, const char *msg)
{
    if (r->capturing)
        snprintf(err, errcap, "%s: entry %zu (line %llu, byte %llu): %s", r->path, r->index,
                 (unsigned long long)r->cap_line, (unsigned long long)r->cap_off, msg);
    else
        snprintf(err, errcap, "%s: line %llu, byte %llu: %s", r->path, (unsigned long long)r->line,
                 (unsigned long long)r->off, msg);
    r->fatal = 1;
    return -1;
}

/*
 * The tokenizer is a byte-at-a-time state machine over the whole HAR: the
 * state is the reader's (depth, the open containers and their keys, inside
 * a string or not, capturing or skipping). scan_entry drives it; each kind
 * of byte has one function below, which says what to do with the byte.
 */
enum {
    TOK_KEEP,     /* copy the byte to the entry being captured, if any */
    TOK_CONSUMED, /* the byte is fully handled (dropped, or copied its own way) */
    TOK_START,    /* '{' opens an entry: capture from this byte on */
    TOK_END,      /* '}' closes the entry: copy it, the entry is complete */
    TOK_DONE,     /* ']' closes log.entries */
    TOK_FAIL,     /* fail() has set the error */
    TOK_TOO_BIG   /* the entry is over the per-entry limit */
};

/* The end of the input before an entry was complete: the error says how
 * far the document got. Always -1. */
static int scan_eof(bg_har_reader_t *r, char *err, size_t errcap)
{
    if (r->capturing)
        return fail(r, err, errcap, "end of file inside the entry (truncated HAR)");
    if (!r->started)
        return fail(r, err, errcap, "empty file: not a HAR document");
    if (!r->saw_entries)
        return fail(r, err, errcap, "no log.entries array: not a HAR 1.2 document");
    return fail(r, err, errcap, "end of file inside log.entries (truncated HAR)");
}

/* The entry grew over the per-entry limit at buffer position I. -1. */
static int too_big(bg_har_reader_t *r, size_t i, char *err, size_t errcap)
{
    r->buf_pos = i;
    char what[96];
    snprintf(what, sizeof what, "entry larger than %zu bytes (the per-entry limit)", r->max_entry);
    return fail(r, err, errcap, what);
}

/* Inside a string: a span of plain bytes at once (a value's text), else
 * one byte (an escape, the closing quote, a newline, a key's byte) from
 * B[*I]. Advances *I. 0, or -1 when the entry grows over its limit. */
static int scan_string(bg_har_reader_t *r, const char *b, size_t *ip, size_t n)
{
    size_t i = *ip;
    if (!r->esc && !r->str_is_key) {
        size_t j = i;
        while (j < n && b[j] != '"' && b[j] != '\\' && b[j] != '\n')
            j++;
        if (j > i) {
            if (r->capturing && !r->skipping && cap_add(r, b + i, j - i) != 0)
                return -1;
            r->off += j - i;
            *ip = j;
            return 0;
        }
    }
    char c = b[i];
    if (r->esc) {
        r->esc = 0;
    } else if (c == '\\') {
        r->esc = 1;
    } else if (c == '"') {
        r->in_str = 0;
        if (r->str_is_key) {
            r->key[r->depth - 1] =
                (unsigned char)(r->keylen <= sizeof r->keybuf ? keyid(r->keybuf, r->keylen)
                                                              : KEY_OTHER);
            r->expect_key[r->depth - 1] = 0;
        }
    } else if (r->str_is_key && r->keylen < sizeof r->keybuf) {
        r->keybuf[r->keylen++] = c;
    } else if (r->str_is_key) {
        r->keylen = sizeof r->keybuf + 1;
    }
    if (c == '\n')
        r->line++;
    if (r->capturing && (!r->skipping || c == '\n') && cap_put(r, c) != 0)
        return -1;
    r->off++;
    *ip = i + 1;
    return 0;
}

/* Before the document's first '{': a UTF-8 byte order mark (Fiddler, some
 * Windows tools) is dropped, white space passes, anything else fails. */
static int tok_prolog(bg_har_reader_t *r, char c, char *err, size_t errcap)
{
    if (((unsigned char)c == 0xEF || (unsigned char)c == 0xBB || (unsigned char)c == 0xBF) &&
        r->off < 3)
        return TOK_CONSUMED;
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
        if (c != '{') {
            fail(r, err, errcap, "not a HAR document: expected a JSON object");
            return TOK_FAIL;
        }
        r->started = 1;
    }
    return TOK_KEEP;
}

/* '{' or '[': one level deeper. An object directly in log.entries starts
 * an entry; anything else there is not an entry. */
static int tok_open(bg_har_reader_t *r, char c, char *err, size_t errcap)
{
    int step = TOK_KEEP;
    if (r->depth >= MAX_DEPTH) {
        fail(r, err, errcap, "JSON nested deeper than 2048 levels");
        return TOK_FAIL;
    }
    if (c == '{' && !r->capturing && in_entries(r)) {
        step = TOK_START;
    } else if (c == '[' && !r->capturing && in_entries(r)) {
        r->capturing = 1;
        r->cap_off = r->off;
        r->cap_line = r->line;
        fail(r, err, errcap, "entry is not a JSON object");
        return TOK_FAIL;
    }
    r->type[r->depth] = (unsigned char)c;
    r->expect_key[r->depth] = c == '{';
    r->key[r->depth] = KEY_OTHER;
    r->depth++;
    if (r->depth == 3 && in_entries(r))
        r->saw_entries = 1;
    return step;
}

/* '}' or ']': one level up, matching what was opened. It may end a
 * skipped member, the entry, or log.entries. */
static int tok_close(bg_har_reader_t *r, char c, char *err, size_t errcap)
{
    if (r->depth == 0 || r->type[r->depth - 1] != (c == '}' ? '{' : '[')) {
        char what[96];
        snprintf(what, sizeof what, "unbalanced '%c' at line %llu, byte %llu: not valid JSON", c,
                 (unsigned long long)r->line, (unsigned long long)r->off);
        fail(r, err, errcap, what);
        return TOK_FAIL;
    }
    if (r->skipping && r->depth == r->skip_depth)
        r->skipping = 0;
    if (c == ']' && !r->capturing && in_entries(r))
        return TOK_DONE;
    r->depth--;
    return r->capturing && r->depth == 3 ? TOK_END : TOK_KEEP;
}

/* ':' of an entry member the replay does not need: the timings, initiator
 * stacks, the response's content... (of the response only its headers are
 * read: X-Bordergate-Decision). Its value is captured as null and skipped,
 * keeping only its newlines so that error lines stay exact. */
static int tok_colon(bg_har_reader_t *r)
{
    if (r->capturing && !r->skipping &&
        ((r->depth == 4 && r->key[3] != KEY_REQUEST && r->key[3] != KEY_SERVER_IP &&
          r->key[3] != KEY_STARTED && r->key[3] != KEY_RESPONSE) ||
         (r->depth == 5 && r->key[3] == KEY_RESPONSE && r->key[4] != KEY_HEADERS))) {
        if (cap_add(r, ":null", 5) != 0)
            return TOK_TOO_BIG;
        r->skipping = 1;
        r->skip_depth = r->depth;
        return TOK_CONSUMED;
    }
    return TOK_KEEP;
}

/* Space, tab, CR: indentation costs jansson time and says nothing; one
 * space stays after a scalar so that "1 2" is not "12". */
static int tok_space(bg_har_reader_t *r)
{
    if (r->capturing && !r->skipping && r->cap_len > 0) {
        char last = r->cap[r->cap_len - 1];
        if ((((last | 32) >= 'a' && (last | 32) <= 'z') || (last >= '0' && last <= '9') ||
             last == '.' || last == '+' || last == '-') &&
            cap_put(r, ' ') != 0)
            return TOK_TOO_BIG;
    }
    return TOK_CONSUMED;
}

/* One byte outside a string. */
static int tok_byte(bg_har_reader_t *r, char c, char *err, size_t errcap)
{
    switch (c) {
    case '"':
        r->in_str = 1;
        r->str_is_key = r->depth > 0 && r->type[r->depth - 1] == '{' && r->expect_key[r->depth - 1];
        r->keylen = 0;
        return TOK_KEEP;
    case '{':
    case '[': return tok_open(r, c, err, errcap);
    case '}':
    case ']': return tok_close(r, c, err, errcap);
    case ',':
        if (r->skipping && r->depth == r->skip_depth)
            r->skipping = 0;
        if (r->depth > 0 && r->type[r->depth - 1] == '{')
            r->expect_key[r->depth - 1] = 1;
        return TOK_KEEP;
    case ':': return tok_colon(r);
    case '\n': r->line++; return TOK_KEEP;
    case ' ':
    case '\t':
    case '\r': return tok_space(r);
    default:
        if (!r->capturing && in_entries(r)) { /* a scalar in log.entries */
            r->capturing = 1;
            r->cap_off = r->off;
            r->cap_line = r->line;
            fail(r, err, errcap, "entry is not a JSON object");
            return TOK_FAIL;
        }
        return TOK_KEEP;
    }
}

/*
 * Run the tokenizer until one entry is captured (1), the entries array
 * ends (0), or an error (-1). Cost: linear in the bytes scanned; strings
 * are skipped a span at a time.
 */
static int scan_entry(bg_har_reader_t *r, char *err, size_t errcap)
{
    for (;;) {
        if (r->buf_pos >= r->buf_len) {
            int rc = refill(r, err, errcap);
            if (rc < 0) {
                r->fatal = 1;
                return -1;
            }
            if (rc == 0)
                return scan_eof(r, err, errcap);
        }
        const char *b = r->buf;
        size_t i = r->buf_pos, n = r->buf_len;
        while (i < n) {
            if (r->in_str) {
                if (scan_string(r, b, &i, n) != 0)
                    return too_big(r, i, err, errcap);
                continue;
            }
            char c = b[i];
            int step = r->started ? TOK_KEEP : tok_prolog(r, c, err, errcap);
            if (step == TOK_KEEP)
                step = tok_byte(r, c, err, errcap);
            switch (step) {
            case TOK_FAIL: r->buf_pos = i; return -1;
            case TOK_TOO_BIG: return too_big(r, i, err, errcap);
            case TOK_CONSUMED:
                r->off++;
                i++;
                continue;
            case TOK_DONE:
                r->done = 1;
                r->off++;
                r->buf_pos = i + 1;
                return 0;
            case TOK_START:
                r->capturing = 1;
                r->skipping = 0;
                r->cap_len = 0;
                r->cap_off = r->off;
                r->cap_line = r->line;
                break;
            default: break;
            }
            if (r->capturing && (!r->skipping || c == '\n') && cap_put(r, c) != 0)
                return too_big(r, i, err, errcap);
            r->off++;
            i++;
            if (step == TOK_END) {
                r->capturing = 0;
                r->buf_pos = i;
                return 1;
            }
        }
        r->buf_pos = i;
    }
}

/* ------------------------------------------------------------------------ */
/* One entry's JSON to a request                                             */

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Append S percent-encoded (form style: space as %20) to a growing buffer. */
static int append_enc(char **buf, size_t *len, size_t *cap, const char *s, int encode)
{
    size_t n = strlen(s);
    if (n > (SIZE_MAX - *len - 2) / 3)
        return -1;
    char *p = bg_grow(*buf, cap, *len + n * 3 + 2, 1, 64);
    if (p == NULL)
        return -1;
    *buf = p;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!encode || unreserved(c))
            (*buf)[(*len)++] = (char)c;
        else
            *len += bg_hex_pct(c, *buf + *len);
    }
    (*buf)[*len] = '\0';
    return 0;
}

/* "a=1&b=2" from an array of {name, value}; NULL with *LEN 0 when empty. */
static char *encode_pairs(json_t *arr, size_t *outlen)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    size_t i;
    json_t *p = NULL;
    json_array_foreach(arr, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *value = json_string_value(json_object_get(p, "value"));
        if (name == NULL)
            continue;
        if ((len > 0 && append_enc(&buf, &len, &cap, "&", 0) != 0) ||
            append_enc(&buf, &len, &cap, name, 1) != 0 ||
            append_enc(&buf, &len, &cap, "=", 0) != 0 ||
            append_enc(&buf, &len, &cap, value != NULL ? value : "", 1) != 0) {
            free(buf);
            *outlen = 0;
            return NULL;
        }
    }
    *outlen = len;
    return buf;
}

static int ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static int add_header(bg_replay_req_t *out, const char *name, const char *value, char *err,
                      size_t errcap)
{
    if (out->nheaders >= BG_REPLAY_MAX_HEADERS) {
        snprintf(err, errcap, "more than %d request headers", BG_REPLAY_MAX_HEADERS);
        return -1;
    }
    out->names[out->nheaders] = strdup(name);
    out->values[out->nheaders] = strdup(value);
    if (out->names[out->nheaders] == NULL || out->values[out->nheaders] == NULL) {
        free(out->names[out->nheaders]);
        free(out->values[out->nheaders]);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    out->nheaders++;
    return 0;
}

/* Split an absolute http(s) URL into authority and origin-form target. */
static int split_url(const char *url, char **authority, char **target)
{
    const char *a;
    if (strncasecmp(url, "http://", 7) == 0)
        a = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        a = url + 8;
    else
        return -1;
    size_t alen = strcspn(a, "/?#");
    const char *at = memchr(a, '@', alen); /* userinfo is never sent */
    const char *h = at != NULL ? at + 1 : a;
    size_t hlen = alen - (size_t)(h - a);
    if (hlen == 0)
        return -1;
    const char *rest = a + alen;
    size_t rlen = strcspn(rest, "#");
    *authority = strndup(h, hlen);
    /* The target as a client sends it: some tools record URLs decoded
     * (spaces, non-ASCII); bytes a request line cannot carry are
     * percent-encoded, everything else is kept as recorded. */
    char *t = malloc(rlen * 3 + 2);
    size_t o = 0;
    if (t != NULL) {
        if (rlen == 0 || rest[0] == '?')
            t[o++] = '/';
        for (size_t i = 0; i < rlen; i++) {
            unsigned char c = (unsigned char)rest[i];
            if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c) != NULL)
                o += bg_hex_pct(c, t + o);
            else
                t[o++] = (char)c;
        }
        t[o] = '\0';
    }
    *target = t;
    return *authority != NULL && *target != NULL ? 0 : -1;
}

/* Read attachment NAME from DIR (the HAR's directory) as the body. */
static int read_attachment(const char *dir, const char *name, size_t max, bg_replay_req_t *out,
                           char *err, size_t errcap)
{
    if (dir == NULL) {
        snprintf(err, errcap,
                 "request.postData._file needs the HAR's directory (not standard input)");
        return -1;
    }
    if (strchr(name, '/') != NULL || strcmp(name, "..") == 0 || strcmp(name, ".") == 0) {
        snprintf(err, errcap, "request.postData._file must name a file next to the HAR");
        return -1;
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        snprintf(err, errcap, "request.postData._file: path too long");
        return -1;
    }
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errcap, "request.postData._file %.200s: %s", name, strerror(errno));
        return -1;
    }
    size_t n = 0;
    char *b = bg_util_read_stream(fp, max, &n);
    int e = errno;
    fclose(fp);
    if (b == NULL) {
        if (e == EFBIG)
            snprintf(err, errcap, "request.postData._file %.200s: larger than %zu bytes", name,
                     max);
        else if (e == ENOMEM)
            snprintf(err, errcap, "out of memory");
        else
            snprintf(err, errcap, "request.postData._file %.200s: %s", name, strerror(e));
        return -1;
    }
    out->body = b;
    out->body_len = n;
    return 0;
}

/*
 * One entry's JSON to a request, one function per HAR object level: the
 * request line (request.method, url, queryString), the entry's recorded
 * context (serverIPAddress, startedDateTime), request.postData, the
 * request headers and the response headers. Each fills its part of OUT
 * and returns 0, or -1 with ERR set (OUT is cleared by the caller).
 */

/* request.method and request.url (split into authority and target); a
 * query listed only in queryString (some exporters leave it out of the
 * URL) is appended to the target. */
static int entry_request_line(json_t *req, bg_replay_req_t *out, char *err, size_t errcap)
{
    const char *method = json_string_value(json_object_get(req, "method"));
    const char *url = json_string_value(json_object_get(req, "url"));
    if (method == NULL || method[0] == '\0') {
        snprintf(err, errcap, "request.method missing or not a string");
        return -1;
    }
    if (url == NULL) {
        snprintf(err, errcap, "request.url missing or not a string");
        return -1;
    }
    out->method = strdup(method);
    out->url = strdup(url);
    if (out->method == NULL || out->url == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (split_url(url, &out->authority, &out->target) != 0) {
        snprintf(err, errcap, "request.url is not an absolute http(s) URL");
        return -1;
    }
    json_t *qs = json_object_get(req, "queryString");
    if (strchr(out->target, '?') == NULL && json_is_array(qs) && json_array_size(qs) > 0) {
        size_t ql = 0;
        char *q = encode_pairs(qs, &ql);
        if (q != NULL) {
            size_t tl = strlen(out->target);
            char *t = realloc(out->target, tl + ql + 2);
            if (t == NULL) {
                free(q);
                snprintf(err, errcap, "out of memory");
                return -1;
            }
            t[tl] = '?';
            memcpy(t + tl + 1, q, ql + 1);
            out->target = t;
            free(q);
        }
    }
    return 0;
}

/* The entry's serverIPAddress ("[::1]" unbracketed; dropped when too long)
 * and startedDateTime, both optional. */
static void entry_context(json_t *e, bg_replay_req_t *out)
{
    const char *ip = json_string_value(json_object_get(e, "serverIPAddress"));
    if (ip != NULL) {
        size_t n = strlen(ip);
        if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']') {
            ip++;
            n -= 2;
        }
        if (n < sizeof out->server_ip) {
            memcpy(out->server_ip, ip, n);
            out->server_ip[n] = '\0';
        }
    }
    const char *started = json_string_value(json_object_get(e, "startedDateTime"));
    if (started != NULL)
        snprintf(out->started, sizeof out->started, "%s", started);
}

/* Base64 text S[0..N) (either alphabet, white space skipped, padding
 * optional) as a malloc'd NUL-terminated buffer, its length in *OUTLEN;
 * NULL when malformed or out of memory. */
static char *b64_body(const char *s, size_t n, size_t *outlen)
{
    size_t cap = n / 4 * 3 + 3;
    char *out = malloc(cap + 1);
    if (out == NULL)
        return NULL;
    long k = bg_base64_decode(s, n, (unsigned char *)out, cap, BG_B64_ANY | BG_B64_SKIP_SPACE);
    if (k < 0) {
        free(out);
        return NULL;
    }
    out[k] = '\0';
    *outlen = (size_t)k;
    return out;
}

/* request.postData as the body, in the first form the entry has: text
 * (base64 when "encoding" or "_encoding" says so), a Playwright attachment
 * (_file), form params; a body the recording left out (bodySize > 0) is an
 * error, not an empty body. *WIRE is set when the body is the bytes on the
 * wire (base64, attachment): then a Content-Encoding header still applies. */
static int entry_post_data(json_t *req, json_t *post, const char *dir, size_t max_entry,
                           bg_replay_req_t *out, int *wire, char *err, size_t errcap)
{
    const char *text = json_string_value(json_object_get(post, "text"));
    size_t tl = text != NULL ? json_string_length(json_object_get(post, "text")) : 0;
    const char *enc = json_string_value(json_object_get(post, "encoding"));
    const char *file = json_string_value(json_object_get(post, "_file"));
    json_t *params = json_object_get(post, "params");
    json_t *bsz = json_object_get(req, "bodySize");
    if (enc == NULL)
        enc = json_string_value(json_object_get(post, "_encoding"));
    if (tl > 0 && enc != NULL && ieq(enc, "base64")) {
        out->body = b64_body(text, tl, &out->body_len);
        if (out->body == NULL) {
            snprintf(err, errcap, "request.postData.text is not valid base64");
            return -1;
        }
        *wire = 1;
    } else if (tl > 0) {
        out->body = malloc(tl + 1);
        if (out->body == NULL) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        memcpy(out->body, text, tl);
        out->body[tl] = '\0';
        out->body_len = tl;
    } else if (file != NULL && file[0] != '\0') {
        /* Playwright recordHar content "attach": the body is a file
         * next to the HAR, named by its SHA-1 */
        if (read_attachment(dir, file, max_entry, out, err, errcap) != 0)
            return -1;
        *wire = 1;
    } else if (json_is_array(params) && json_array_size(params) > 0) {
        out->body = encode_pairs(params, &out->body_len);
    } else if (json_is_integer(bsz) && json_integer_value(bsz) > 0) {
        /* Playwright "omit", binary bodies under "embed": deciding on
         * an empty body would not be the daemon's decision */
        snprintf(err, errcap,
                 "request body not recorded (bodySize %lld, postData without text): record it "
                 "with the content embedded or attached",
                 (long long)json_integer_value(bsz));
        return -1;
    } else if (text != NULL) {
        out->body = strdup("");
        if (out->body == NULL) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* request.headers: Host (or HTTP/2's :authority) kept apart as
 * out->host_header, framing headers dropped, Content-Encoding dropped
 * unless WIRE. *HAVE_CTYPE says whether a Content-Type was kept; a
 * recorded positive Content-Length with no body recorded is an error. */
static int entry_headers(json_t *hdrs, int wire, bg_replay_req_t *out, int *have_ctype, char *err,
                         size_t errcap)
{
    if (hdrs != NULL && !json_is_array(hdrs)) {
        snprintf(err, errcap, "request.headers is not an array");
        return -1;
    }
    size_t i;
    json_t *h = NULL;
    char *host = NULL;
    long long clen = -1; /* recorded Content-Length */
    json_array_foreach(hdrs, i, h)
    {
        const char *name = json_string_value(json_object_get(h, "name"));
        const char *value = json_string_value(json_object_get(h, "value"));
        if (name == NULL || value == NULL) {
            snprintf(err, errcap, "request.headers[%zu] needs string name and value", i);
            free(host);
            return -1;
        }
        if (name[0] == ':') { /* HTTP/2 and HTTP/3 pseudo-headers */
            if (ieq(name, ":authority") && host == NULL)
                host = strdup(value);
            continue;
        }
        if (ieq(name, "host")) {
            if (host == NULL)
                host = strdup(value);
            continue;
        }
        if (ieq(name, "content-length")) {
            char *end;
            long long v = strtoll(value, &end, 10);
            if (end != value && *end == '\0' && v >= 0)
                clen = v;
        }
        /* framing belongs to the recording, not to the request replayed */
        if (ieq(name, "content-length") || ieq(name, "transfer-encoding") ||
            ieq(name, "connection") || ieq(name, "keep-alive") || ieq(name, "proxy-connection") ||
            ieq(name, "te") || ieq(name, "trailer"))
            continue;
        /* a text body is recorded decoded: its Content-Encoding no longer applies */
        if (ieq(name, "content-encoding") && !wire)
            continue;
        if (ieq(name, "content-type"))
            *have_ctype = 1;
        if (add_header(out, name, value, err, errcap) != 0) {
            free(host);
            return -1;
        }
    }
    /* The URL's authority is where the request was going; the Host header
     * is kept for recordings made in front of the proxy
     * (bg_replay_req_behind_proxy). */
    out->host_header = host;
    if (clen > 0 && out->body_len == 0) {
        /* Chromium's sendBeacon and Blob uploads: the request had a body
         * the recording left out; deciding on an empty one would not be
         * the daemon's decision. */
        snprintf(err, errcap,
                 "request body not recorded (Content-Length %lld, no postData text): record it "
                 "with the content embedded, or leave the entry out",
                 clen);
        return -1;
    }
    return 0;
}

/* response.headers: only X-Bordergate-Decision, the decision a recording
 * made through bordergate carries (--compare-recorded). */
static int entry_response(json_t *e, bg_replay_req_t *out, char *err, size_t errcap)
{
    size_t i;
    json_t *h = NULL;
    json_t *rh = json_object_get(json_object_get(e, "response"), "headers");
    json_array_foreach(rh, i, h)
    {
        const char *name = json_string_value(json_object_get(h, "name"));
        const char *value = json_string_value(json_object_get(h, "value"));
        if (name != NULL && value != NULL && ieq(name, "x-bordergate-decision")) {
            out->recorded_decision = strdup(value);
            if (out->recorded_decision == NULL) {
                snprintf(err, errcap, "out of memory");
                return -1;
            }
            break;
        }
    }
    return 0;
}

/* Entry E (a JSON object) to OUT. DIR is the HAR's directory for
 * attachments (NULL when there is none), MAX_ENTRY an attachment's limit.
 * 0, or -1 with ERR set. */
static int entry_from_json(json_t *e, const char *dir, size_t max_entry, bg_replay_req_t *out,
                           char *err, size_t errcap)
{
    json_t *req = json_object_get(e, "request");
    if (!json_is_object(req)) {
        snprintf(err, errcap, "no request object");
        return -1;
    }
    if (entry_request_line(req, out, err, errcap) != 0)
        return -1;
    entry_context(e, out);
    json_t *post = json_object_get(req, "postData");
    int wire = 0, have_ctype = 0;
    if (json_is_object(post) &&
        entry_post_data(req, post, dir, max_entry, out, &wire, err, errcap) != 0)
        return -1;
    if (entry_headers(json_object_get(req, "headers"), wire, out, &have_ctype, err, errcap) != 0 ||
        entry_response(e, out, err, errcap) != 0)
        return -1;
    const char *mime =
        json_is_object(post) ? json_string_value(json_object_get(post, "mimeType")) : NULL;
    if (!have_ctype && mime != NULL && mime[0] != '\0' && out->body != NULL)
        return add_header(out, "Content-Type", mime, err, errcap);
    return 0;
}

/* Does AUTH (host[:port], default port DPORT) name the proxy P ("host:port")? */
static int authority_is(const char *auth, const char *dport, const char *p)
{
    const char *pc = strrchr(p, ':');
    if (pc == NULL)
        return 0;
    const char *ac = strrchr(auth, ':');
    if (ac != NULL && strchr(auth, ']') != NULL && ac < strchr(auth, ']'))
        ac = NULL; /* "[::1]" without a port */
    size_t ahl = ac != NULL ? (size_t)(ac - auth) : strlen(auth);
    const char *aport = ac != NULL ? ac + 1 : dport;
    if (strcmp(aport, pc + 1) != 0)
        return 0;
    size_t phl = (size_t)(pc - p);
    if ((phl == 7 && memcmp(p, "0.0.0.0", 7) == 0) || (phl == 1 && p[0] == '*') ||
        (phl == 4 && memcmp(p, "[::]", 4) == 0))
        return 1;
    return phl == ahl && strncasecmp(p, auth, ahl) == 0;
}

int bg_replay_req_behind_proxy(bg_replay_req_t *r, const char *const *proxies)
{
    if (r->host_header == NULL || r->host_header[0] == '\0' || r->authority == NULL ||
        proxies == NULL)
        return 0;
    const char *dport = r->url != NULL && strncasecmp(r->url, "https:", 6) == 0 ? "443" : "80";
    for (size_t i = 0; proxies[i] != NULL; i++) {
        if (!authority_is(r->authority, dport, proxies[i]))
            continue;
        char *a = strdup(r->host_header);
        if (a == NULL)
            return -1;
        free(r->authority);
        r->authority = a;
        return 1;
    }
    return 0;
}

int bg_har_entry_parse(const char *json, size_t len, bg_replay_req_t *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *e = json_loadb(json, len, JSON_ALLOW_NUL, &je);
    if (e == NULL) {
        snprintf(err, errcap, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(e))
        snprintf(err, errcap, "entry is not a JSON object");
    else
        rc = entry_from_json(e, NULL, BG_HAR_MAX_ENTRY, out, err, errcap);
    json_decref(e);
    if (rc != 0)
        bg_replay_req_clear(out);
    return rc;
}

/*
 * jansson's allocations for one entry come from a bump arena that is reset
 * after the entry: an entry's tree is freed before the next one is parsed,
 * so no per-node malloc/free (about a tenth of the replay's time). Blocks
 * that do not fit go to malloc; free() tells them apart by address. Only
 * installed around one entry's parse and conversion (single thread).
 */
#define ARENA_SIZE ((size_t)1 << 20)

static struct {
    char *base;
    size_t used;
} arena;

static void *arena_malloc(size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (arena.base != NULL && need <= ARENA_SIZE - arena.used) {
        void *p = arena.base + arena.used;
        arena.used += need;
        return p;
    }
    return malloc(n);
}

static void arena_free(void *p)
{
    if (p != NULL && arena.base != NULL && (char *)p >= arena.base &&
        (char *)p < arena.base + ARENA_SIZE)
        return;
    free(p);
}

static json_t *load_entry(const char *buf, size_t len, json_error_t *je)
{
    if (arena.base == NULL)
        arena.base = malloc(ARENA_SIZE);
    arena.used = 0;
    json_set_alloc_funcs(arena_malloc, arena_free);
    return json_loadb(buf, len, JSON_ALLOW_NUL, je); /* "\u0000" in recorded text */
}

static void unload_entry(json_t *e)
{
    json_decref(e);
    json_set_alloc_funcs(malloc, free);
    arena.used = 0;
}

int bg_har_next(bg_har_reader_t *r, bg_replay_req_t *out, char *err, size_t errcap)
{
    bg_replay_req_clear(out);
    if (r->fatal) {
        snprintf(err, errcap, "%s: cannot continue after the previous error", r->path);
        return -1;
    }
    if (r->done)
        return 0;
    int rc = scan_entry(r, err, errcap);
    if (rc <= 0)
        return rc;
    size_t index = r->index++;
    char why[200];
    json_error_t je;
    json_t *e = load_entry(r->cap, r->cap_len, &je);
    if (e == NULL) {
        unload_entry(NULL);
        out->index = index;
        snprintf(err, errcap, "%s: entry %zu (line %llu): invalid JSON: %s", r->path, index,
                 (unsigned long long)(r->cap_line + (uint64_t)(je.line > 0 ? je.line - 1 : 0)),
                 je.text);
        return -1;
    }
    rc = entry_from_json(e, r->dir[0] ? r->dir : NULL, r->max_entry, out, why, sizeof why);
    unload_entry(e);
    if (rc != 0) {
        bg_replay_req_clear(out);
        out->index = index;
        snprintf(err, errcap, "%s: entry %zu (line %llu, byte %llu): %s", r->path, index,
                 (unsigned long long)r->cap_line, (unsigned long long)r->cap_off, why);
        return -1;
    }
    out->index = index;
    out->offset = r->cap_off;
    out->line = r->cap_line;
    if (r->cap_cap > ((size_t)4 << 20)) { /* give a huge entry's memory back */
        free(r->cap);
        r->cap = NULL;
        r->cap_cap = 0;
    }
    return 1;
}

int bg_har_failed(const bg_har_reader_t *r)
{
    return r->fatal;
}
