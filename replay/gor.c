/*
 * GoReplay (.gor) request files: each payload is a header line
 * "<type> <id> <timestamp> <latency>\n", the raw HTTP/1.x message, then the
 * separator "\n🐵🙈🙉\n". Only type 1 (requests) is replayed; responses
 * (2, 3) are skipped. The raw request goes through the daemon's own strict
 * parser (bg_http_parse_request), so a request the daemon would refuse as
 * malformed is reported, not guessed at.
 *
 * Memory: the buffer holds at most one payload (bounded by max_entry) plus
 * one read chunk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/http.h"
#include "replay/har.h"

static const char SEP[] = "\n\xf0\x9f\x90\xb5\xf0\x9f\x99\x88\xf0\x9f\x99\x89\n";
#define SEP_LEN (sizeof SEP - 1)
#define CHUNK 65536

struct bg_gor_reader {
    FILE *fp;
    int own_fp;
    char path[256];
    char *buf;
    size_t len, cap, start; /* unread bytes are buf[start..len) */
    uint64_t off;           /* file offset of buf[start] */
    uint64_t line;
    size_t max_entry, index;
    int eof, fatal;
    int mem;
};

bg_gor_reader_t *bg_gor_open(const char *path, size_t max_entry, char *err, size_t errcap)
{
    bg_gor_reader_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errcap, "%s: out of memory", path);
        return NULL;
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    r->max_entry = max_entry ? max_entry : BG_HAR_MAX_ENTRY;
    r->line = 1;
    if (strcmp(path, "-") == 0) {
        r->fp = stdin;
    } else if ((r->fp = fopen(path, "rb")) == NULL) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        free(r);
        return NULL;
    } else {
        r->own_fp = 1;
    }
    r->cap = 4 * CHUNK;
    r->buf = malloc(r->cap);
    if (r->buf == NULL) {
        snprintf(err, errcap, "%s: out of memory", path);
        bg_gor_close(r);
        return NULL;
    }
    return r;
}

bg_gor_reader_t *bg_gor_open_mem(const char *buf, size_t len, size_t max_entry)
{
    bg_gor_reader_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    snprintf(r->path, sizeof r->path, "(memory)");
    r->max_entry = max_entry ? max_entry : BG_HAR_MAX_ENTRY;
    r->line = 1;
    r->buf = malloc(len + 1);
    if (r->buf == NULL) {
        free(r);
        return NULL;
    }
    memcpy(r->buf, buf, len);
    r->len = r->cap = len;
    r->eof = 1;
    r->mem = 1;
    return r;
}

void bg_gor_close(bg_gor_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->own_fp)
        fclose(r->fp);
    free(r->buf);
    free(r);
}

/* Read more bytes, compacting first. 1 read, 0 end, -1 error. */
static int gor_fill(bg_gor_reader_t *r, char *err, size_t errcap)
{
    if (r->eof)
        return 0;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (r->len + CHUNK > r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 4 * CHUNK;
        char *p = realloc(r->buf, nc);
        if (p == NULL) {
            snprintf(err, errcap, "%s: out of memory", r->path);
            return -1;
        }
        r->buf = p;
        r->cap = nc;
    }
    size_t n = fread(r->buf + r->len, 1, r->cap - r->len, r->fp);
    if (n == 0) {
        if (ferror(r->fp)) {
            snprintf(err, errcap, "%s: read error: %s", r->path, strerror(errno));
            return -1;
        }
        r->eof = 1;
        return 0;
    }
    r->len += n;
    return 1;
}

static uint64_t count_lines(const char *p, size_t n)
{
    uint64_t k = 0;
    for (const char *q = p; (q = memchr(q, '\n', n - (size_t)(q - p))) != NULL; q++)
        k++;
    return k;
}

/* One request payload (after the meta line) into OUT. */
static int gor_request(const char *p, size_t n, bg_replay_req_t *out, char *err, size_t errcap)
{
    bg_http_header_t fields[BG_HTTP_MAX_HEADERS];
    bg_http_request_t req = {.headers = fields, .max_headers = BG_HTTP_MAX_HEADERS};
    int status = 0;
    const char *why = "malformed request";
    bg_http_result_t rc = bg_http_parse_request(p, n, n + 1, &req, &status, &why);
    if (rc != BG_HTTP_OK) {
        snprintf(err, errcap, "%s", rc == BG_HTTP_INCOMPLETE ? "request head is incomplete" : why);
        return -1;
    }
    out->method = strndup(req.method, req.method_len);
    const char *body = p + req.head_len;
    size_t blen = n - req.head_len;
    if (req.chunked) {
        bg_http_chunked_t c;
        bg_http_chunked_init(&c);
        out->body = malloc(blen + 1);
        if (out->body == NULL)
            goto oom;
        size_t o = 0, k = 0;
        while (!c.done && k < blen) {
            size_t dl = 0;
            ssize_t used = bg_http_chunked_step(&c, body + k, blen - k, &dl, &why);
            if (used < 0) {
                snprintf(err, errcap, "%s", why);
                return -1;
            }
            if (used == 0)
                break;
            if (dl > 0) {
                memcpy(out->body + o, body + k, dl);
                o += dl;
            }
            k += (size_t)used;
        }
        if (!c.done) {
            snprintf(err, errcap, "chunked body is truncated");
            return -1;
        }
        out->body[o] = '\0';
        out->body_len = o;
    } else if (blen > 0 || req.content_length > 0) {
        if (req.content_length >= 0 && (uint64_t)req.content_length != blen) {
            snprintf(err, errcap, "body has %zu bytes, Content-Length says %lld", blen,
                     (long long)req.content_length);
            return -1;
        }
        /* not strndup: a binary body may hold NUL bytes */
        out->body = malloc(blen + 1);
        if (out->body == NULL)
            goto oom;
        memcpy(out->body, body, blen);
        out->body[blen] = '\0';
        out->body_len = blen;
    }
    /* target: origin-form, or absolute-form whose authority wins */
    const char *t = req.target;
    size_t tl = req.target_len;
    const char *host = req.host;
    size_t hl = req.host_len;
    if (tl > 7 && (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0)) {
        const char *a = t + (t[4] == ':' ? 7 : 8);
        const char *slash = memchr(a, '/', tl - (size_t)(a - t));
        host = a;
        hl = slash != NULL ? (size_t)(slash - a) : tl - (size_t)(a - t);
        t = slash != NULL ? slash : "/";
        tl = slash != NULL ? req.target_len - (size_t)(slash - req.target) : 1;
    }
    if (host == NULL || hl == 0) {
        snprintf(err, errcap, "request has no Host header");
        return -1;
    }
    out->authority = strndup(host, hl);
    out->target = strndup(t, tl);
    if (out->method == NULL || out->authority == NULL || out->target == NULL)
        goto oom;
    size_t ul = hl + tl + 8;
    out->url = malloc(ul);
    if (out->url == NULL)
        goto oom;
    snprintf(out->url, ul, "http://%.*s%.*s", (int)hl, host, (int)tl, t);
    for (size_t i = 0; i < req.nheaders; i++) {
        const bg_http_header_t *h = &req.headers[i];
#define IS(z) (h->name_len == sizeof(z) - 1 && strncasecmp(h->name, (z), sizeof(z) - 1) == 0)
        if (IS("host") || IS("content-length") || IS("transfer-encoding") || IS("connection") ||
            IS("keep-alive") || IS("proxy-connection") || IS("te") || IS("trailer"))
            continue;
#undef IS
        if (out->nheaders >= BG_REPLAY_MAX_HEADERS)
            break;
        out->names[out->nheaders] = strndup(h->name, h->name_len);
        out->values[out->nheaders] = strndup(h->value, h->value_len);
        out->nheaders++;
        if (out->names[out->nheaders - 1] == NULL || out->values[out->nheaders - 1] == NULL)
            goto oom;
    }
    return 0;
oom:
    snprintf(err, errcap, "out of memory");
    return -1;
}

int bg_gor_next(bg_gor_reader_t *r, bg_replay_req_t *out, char *err, size_t errcap)
{
    bg_replay_req_clear(out);
    if (r->fatal) {
        snprintf(err, errcap, "%s: cannot continue after the previous error", r->path);
        return -1;
    }
    for (;;) {
        /* find the separator of the next payload */
        char *p = r->buf + r->start;
        size_t avail = r->len - r->start;
        char *sep = avail >= SEP_LEN ? memmem(p, avail, SEP, SEP_LEN) : NULL;
        size_t plen;
        if (sep == NULL) {
            if (avail > r->max_entry) {
                snprintf(err, errcap, "%s: payload at byte %llu (line %llu) larger than %zu bytes",
                         r->path, (unsigned long long)r->off, (unsigned long long)r->line,
                         r->max_entry);
                r->fatal = 1;
                return -1;
            }
            int rc = r->mem ? 0 : gor_fill(r, err, errcap);
            if (rc < 0) {
                r->fatal = 1;
                return -1;
            }
            if (rc > 0)
                continue;
            /* gor_fill may have moved the data to the start of the buffer
             * (or to a new buffer) before it found the end of the file */
            p = r->buf + r->start;
            avail = r->len - r->start;
            /* end of file: a last payload without separator still counts */
            while (avail > 0 && (p[0] == '\n' || p[0] == '\r')) {
                p++;
                avail--;
                r->start++;
                r->off++;
                r->line++;
            }
            if (avail == 0)
                return 0;
            plen = avail;
        } else {
            plen = (size_t)(sep - p);
        }
        uint64_t off = r->off, line = r->line;
        size_t consumed = plen + (sep != NULL ? SEP_LEN : 0);
        r->start += consumed;
        r->off += consumed;
        r->line += count_lines(p, consumed);
        /* meta line */
        char *nl = memchr(p, '\n', plen);
        if (nl == NULL || p[0] < '1' || p[0] > '3' || (plen > 1 && p[1] != ' ')) {
            snprintf(
                err, errcap,
                "%s: payload at line %llu, byte %llu: expected a \"1 <id> <time> <latency>\" line",
                r->path, (unsigned long long)line, (unsigned long long)off);
            return -1;
        }
        if (p[0] != '1')
            continue; /* responses */
        size_t index = r->index++;
        size_t meta = (size_t)(nl - p) + 1;
        char why[200];
        if (gor_request(p + meta, plen - meta, out, why, sizeof why) != 0) {
            bg_replay_req_clear(out);
            out->index = index;
            snprintf(err, errcap, "%s: request %zu (line %llu, byte %llu): %s", r->path, index,
                     (unsigned long long)line, (unsigned long long)off, why);
            return -1;
        }
        out->index = index;
        out->offset = off;
        out->line = line;
        return 1;
    }
}

int bg_gor_failed(const bg_gor_reader_t *r)
{
    return r->fatal;
}
