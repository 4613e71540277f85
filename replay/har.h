/*
 * har.h — recorded requests, read from HAR 1.2 files (replay/har.c) and
 * GoReplay .gor files (replay/gor.c), one at a time and memory-bounded.
 *
 * HAR: the file is scanned in chunks by a small string-aware tokenizer that
 * finds the "log" -> "entries" array and hands each entry object's bytes
 * to jansson: only its "request", "serverIPAddress", "startedDateTime" and
 * "response.headers" members (every other member's value, the response's
 * content above all, becomes null while it is read, so big responses and
 * initiator stacks cost nothing), at most BG_HAR_MAX_ENTRY bytes. Recorded
 * text may hold "\u0000" (a body keeps it; a header value or URL ends
 * there). Memory is one read chunk plus
 * one entry's request, whatever the file size. Accepted shapes: Chromium and Firefox
 * devtools, Playwright recordHar, mitmproxy, Charles and Fiddler exports
 * (UTF-8 BOM, HTTP/2 pseudo-headers, missing optional members, base64
 * bodies, postData.params without text).
 */
#ifndef BG_HAR_H
#define BG_HAR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BG_HAR_MAX_ENTRY ((size_t)64 << 20)
#define BG_REPLAY_MAX_HEADERS 100

/* One recorded request, owned by the reader until the next call. */
typedef struct {
    size_t index;    /* 0-based position in the file */
    uint64_t offset; /* byte offset of the entry in the file */
    uint64_t line;   /* 1-based line of the entry's first byte */
    char *method;
    char *url;       /* absolute http(s) URL as recorded */
    char *authority; /* host[:port] of the URL (or :authority / Host) */
    char *target;    /* origin-form path and query */
    char *names[BG_REPLAY_MAX_HEADERS];
    char *values[BG_REPLAY_MAX_HEADERS];
    size_t nheaders; /* without pseudo-headers, Host and framing headers */
    char *body;      /* decoded postData (NULL: none) */
    size_t body_len;
    char *host_header;       /* recorded Host (or :authority), NULL if none */
    char *recorded_decision; /* the response's X-Bordergate-Decision as
                                recorded (recorded through bordergate), or NULL */
    char server_ip[64];      /* serverIPAddress without brackets, "" if absent */
    char started[40];        /* startedDateTime as recorded, "" if absent */
} bg_replay_req_t;

void bg_replay_req_clear(bg_replay_req_t *r);

typedef struct bg_har_reader bg_har_reader_t;

/*
 * Open PATH ("-": standard input) for reading entries, CHUNK bytes per
 * read (0: 1 MiB), entries up to MAX_ENTRY bytes (0: BG_HAR_MAX_ENTRY).
 * NULL with ERR ("FILE: problem") on failure.
 */
bg_har_reader_t *bg_har_open(const char *path, size_t chunk, size_t max_entry, char *err,
                             size_t errcap);
/* The same over a caller's buffer (kept by the caller), for tests and the
 * fuzz target; CHUNK simulates read boundaries. */
bg_har_reader_t *bg_har_open_mem(const char *buf, size_t len, size_t chunk, size_t max_entry);
void bg_har_close(bg_har_reader_t *r);

/*
 * Next entry into OUT (cleared first). 1: an entry; 0: no more entries;
 * -1: ERR holds one line "FILE: entry N (line L, byte B): problem" (or
 * without the entry part for problems outside entries). After an error in
 * one entry's content (not its JSON syntax) the next call continues with
 * the following entry; after a syntax or I/O error it returns -1 again.
 */
int bg_har_next(bg_har_reader_t *r, bg_replay_req_t *out, char *err, size_t errcap);

/* 1 after an error that ends the file (syntax, I/O, size): stop reading. */
int bg_har_failed(const bg_har_reader_t *r);

/*
 * Recordings made in front of bordergate (mitmproxy in reverse mode, a
 * capture at the proxy): the URL names the proxy, the recorded Host header
 * the destination. When the URL's host:port (default port by scheme) is one
 * of PROXIES (NULL-terminated "host:port" texts; host "0.0.0.0", "*" or
 * "[::]" matches any host on that port) and a Host header was recorded,
 * the request's authority becomes that Host. 1: retargeted, 0: not, -1:
 * out of memory.
 */
int bg_replay_req_behind_proxy(bg_replay_req_t *r, const char *const *proxies);

/* Convert one HAR entry's JSON text (already isolated) into OUT. 0 or -1
 * with ERR (the problem only). Exposed for tests. */
int bg_har_entry_parse(const char *json, size_t len, bg_replay_req_t *out, char *err,
                       size_t errcap);

/* ---------------------------------------------------------------- GoReplay */

typedef struct bg_gor_reader bg_gor_reader_t;

/* GoReplay files: "1 <id> <ts> <latency>\n", a raw HTTP/1.x request, then
 * the line "\xf0\x9f\x90\xb5\xf0\x9f\x99\x88\xf0\x9f\x99\x89\n" (three
 * monkeys). Only payloads of type 1 (requests) are returned. */
bg_gor_reader_t *bg_gor_open(const char *path, size_t max_entry, char *err, size_t errcap);
bg_gor_reader_t *bg_gor_open_mem(const char *buf, size_t len, size_t max_entry);
void bg_gor_close(bg_gor_reader_t *r);
/* As bg_har_next. The URL is built as http://HOST/target. */
int bg_gor_next(bg_gor_reader_t *r, bg_replay_req_t *out, char *err, size_t errcap);
int bg_gor_failed(const bg_gor_reader_t *r);

#endif
