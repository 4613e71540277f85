/*
 * The access log (docs/operations.md, "Access log"): one JSON line per
 * request that reached bordergate, refusals included, for the operator
 * (nginx's access_log): time, request id (the audit record's decision_id),
 * client address, method, route, path, status, outcome, result, bytes in and out,
 * upstream and total time.
 *
 * No personal information: the path is written as audit records write it
 * (inspect/redact.h: every query value dropped, a path segment that holds
 * PI replaced by "*"); a method other than the registered ones is "*";
 * no header, body or Host value is written.
 *
 * Threads: bg_accesslog_write may be called from any worker at once. It
 * formats the line on the caller's thread and appends it to a shared
 * pending buffer under a mutex (a memcpy); a writer thread of its own
 * writes the buffer to the file, so a slow disk never blocks a worker.
 * Lines are written within ACCESSLOG_FLUSH_MS of the request, at once above
 * 64 KiB pending, and all of them on bg_accesslog_close. Above 16 MiB
 * pending (the disk stalls) lines are dropped and counted
 * (bg_accesslog_dropped) rather than growing without bound.
 */
#ifndef BG_ACCESSLOG_H
#define BG_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct bg_accesslog bg_accesslog_t;

/* One request as the access log writes it. Strings may be NULL (written as
 * null); PATH is the raw origin-form target (redacted here). */
typedef struct {
    const char *id;     /* request id: X-Bordergate-Id, the audit decision_id */
    const char *client; /* client address text */
    const char *method; /* NULL: the request head was not parsed */
    size_t method_len;
    const char *route; /* matched route id, or NULL */
    const char *path;  /* raw path?query, or NULL; never written as is */
    size_t path_len;
    int status;           /* status answered; 0: none (client left, connection cut) */
    const char *outcome;  /* allow / deidentify / block / refused / ...; NULL: none */
    const char *result;   /* how it ended, the completion record's words (ok, blocked,
                             refused, interrupted, client_aborted, ...) */
    uint64_t bytes_in;    /* request body bytes read from the client */
    uint64_t bytes_out;   /* response body bytes sent to the client */
    uint64_t upstream_us; /* request sent upstream to end; 0: never forwarded */
    uint64_t total_us;    /* first byte of the request to end */
} bg_access_t;

/* Open PATH for appending (created 0640) and start the writer thread.
 * NULL with ERR filled when the file cannot be opened or out of memory. */
bg_accesslog_t *bg_accesslog_open(const char *path, char *err, size_t errlen);

/* Append one line (see above). L may be NULL: nothing. Any thread. */
void bg_accesslog_write(bg_accesslog_t *l, const bg_access_t *a);

/* Ask the writer to reopen the file by its path (after logrotate moved it;
 * SIGUSR1). Asynchronous: the writer reports the outcome in the
 * operational log and keeps the old file when the new one cannot be
 * opened. L may be NULL. */
void bg_accesslog_reopen(bg_accesslog_t *l);

/* Lines dropped so far because the writer fell behind or failed. */
uint64_t bg_accesslog_dropped(bg_accesslog_t *l);

/* Write what is pending, stop the writer and close the file. NULL: nothing.
 * No bg_accesslog_write may run concurrently. */
void bg_accesslog_close(bg_accesslog_t *l);

#endif
