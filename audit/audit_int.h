/*
 * The audit writer's internals, shared by its files; not an API (that is
 * audit/audit.h): include it only from these files.
 *
 *   audit/audit.c          the writer thread: files and rotation, commit,
 *                          retention; open, close, stats
 *   audit/audit_client.c   the client side: submission on a worker's
 *                          thread, completions posted back through its
 *                          eventfd
 *   audit/audit_recover.c  recovery of the newest file at open
 *
 * Lock order: audit->lock and client->lock are never held together;
 * audit->stats_lock is a leaf.
 */
#ifndef BG_AUDIT_INT_H
#define BG_AUDIT_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "audit/chain.h"

struct event;
struct event_base;

#define FSYNC_RING 1024
#define NAME_MAX_LEN 128

struct bg_audit_ticket {
    bg_audit_ticket_t *next;
    bg_audit_client_t *client;
    bg_audit_done_cb cb;
    void *arg;
    char *body; /* "{...}" from json_dumps; the members are body[1..len-1) */
    size_t body_len;
    char time_member[48]; /* "time":"..." when the record had none */
    size_t time_len;
    /* Set by the writer before posting. */
    int status;
    uint64_t seq;
    char reason[160];
    /* Set by the client's thread only. */
    int forgotten;
    char inline_body[]; /* BODY when copied in (bg_audit_submit_copy) */
};

struct bg_audit_client {
    bg_audit_t *audit;
    struct event_base *base;
    struct event *ev;
    int efd;
    pthread_mutex_t lock;
    bg_audit_ticket_t *done_head, *done_tail; /* under lock */
    size_t outstanding;                       /* under lock: submitted, not freed */
    int signalled;                            /* under lock: eventfd written */
    int closing;                              /* under lock: freed by its owner */
    int in_drain, free_requested;             /* client thread only */
    /* Submitted during this pass of the event loop, not yet handed to the
     * writer (client thread only): one lock and one wake-up per pass. */
    struct event *flush_ev;
    int flush_pending; /* flush_ev is active */
    /* Records without a completion callback (lazy) wait here for the next
     * flush, or at most BG_AUDIT_LAZY_MS (lazy_ev): no wake-up of their own. */
    struct event *lazy_ev;
    bg_audit_ticket_t *local_head, *local_tail;
    size_t local_bytes;
};

typedef struct {
    char **items; /* members strings (no braces), malloc'd */
    size_t n, cap;
} pending_t;

struct bg_audit {
    /* Immutable after open. */
    char *dir, *prefix;
    uint64_t rotate_bytes;
    int rotate_daily;
    unsigned retention_days;
    bg_audit_durability_t durability;
    unsigned relaxed_ms, ckpt_every, ckpt_seconds;
    size_t max_queue_bytes, max_record_bytes;
    unsigned char key[BG_AUDIT_KEY_MAX];
    size_t key_len;
    char key_id[9];
    uint64_t (*clock_ms)(void *);
    void *clock_arg;
    int dirfd, lockfd;
    pthread_t thread;
    int thread_started;

    /* Submission queue. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bg_audit_ticket_t *q_head, *q_tail;
    size_t q_records, q_bytes;
    int stopping;
    int writer_waiting; /* the writer sleeps on COND: only then signal it */

    /* Writer state: the writer thread only (the opening thread before it
     * starts, the closing thread after it ends). */
    int fd;
    char cur_name[NAME_MAX_LEN];
    char prev_file[NAME_MAX_LEN]; /* previous file, for file_start; "" = none */
    uint64_t cur_index;
    uint32_t cur_day;
    uint64_t size;     /* bytes of good records in the current file */
    int cur_closed;    /* its rotation checkpoint is written */
    int need_truncate; /* a failed write left bytes past size */
    bg_audit_chain_t *chain;
    uint64_t since_ckpt;     /* records since the last checkpoint */
    uint64_t uncovered_mono; /* when since_ckpt became non-zero (us) */
    pending_t pending;       /* writer records waiting to be written */
    uint64_t retry_mono;     /* no internal-only commit before this */
    uint64_t last_sync_mono;
    int dirty;            /* relaxed: written, not synced */
    uint64_t written_seq; /* last seq written */
    uint64_t next_retention_mono;
    uint64_t last_error_log_mono;
    uint64_t errors_since_log;
    bg_audit_buf_t wbuf;

    /* Counters. */
    pthread_mutex_t stats_lock;
    bg_audit_stats_t st;
    uint64_t last_fail_mono; /* of the last failed commit (us); under stats_lock */
    uint32_t ring[FSYNC_RING];
    size_t ring_n, ring_pos;
};

/* ------------------------------------------------------------------------
 * audit/audit.c
 * ------------------------------------------------------------------------ */

/* The current time (A's clock) as a record's "time" string. */
void bg_audit_now_string(const bg_audit_t *a, char *out, size_t cap);

/* Insert a formatted members string at position AT of P (P->n = append).
 * 0/-1 (out of memory). */
int bg_audit_pending_add(pending_t *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Queue at the front of the pending records the file_start record of
 * file NAME (its INDEX; PREV_FILE the file before it, NULL or "" for
 * none). 0/-1 (out of memory). */
int bg_audit_pending_file_start(bg_audit_t *a, const char *name, uint64_t index,
                                const char *prev_file);

/* Create the next file (index + 1) and make it current; queue its
 * file_start first. Writer (or opening) thread. 0/-1 (REASON). */
int bg_audit_new_file(bg_audit_t *a, char *reason, size_t cap);

/* Last complete line of NAME in the directory: its parsed fixed parts and,
 * when TIME_MS is not NULL, its "time". 0/-1 (ERR filled). */
int bg_audit_read_last_record(bg_audit_t *a, const char *name, bg_audit_line_t *pl,
                              uint64_t *time_ms, char *err, size_t errcap);

/* ------------------------------------------------------------------------
 * audit/audit_client.c
 * ------------------------------------------------------------------------ */

/* Complete every ticket of LIST (linked by next) with STATUS (0, or -1
 * and REASON), posting each back to its client, which owns it from here
 * on (a lazy ticket, without callback, is freed at once). Any thread. */
void bg_audit_post_list(bg_audit_ticket_t *list, int status, const char *reason);

/* ------------------------------------------------------------------------
 * audit/audit_recover.c
 * ------------------------------------------------------------------------ */

/*
 * At open, before the writer starts: make the newest file of the directory
 * current, cut a torn tail left by a crash (queueing a repair record),
 * continue the chain from its last record; with no file, create the first.
 * *SHUTDOWN says how the last writer ended: "none" (no file), "clean" (its
 * close checkpoint is the last record) or "unclean". 0, or -1 with ERR
 * filled (damage other than at the tail refuses to open).
 */
int bg_audit_recover(bg_audit_t *a, const char **shutdown, char *err, size_t errcap);

#endif
