/*
 * Audit log: durable, hash-chained, group-committed storage of decision
 * records, with signed checkpoints, rotation, retention, crash repair and
 * verification. docs/audit.md describes the format and the guarantees.
 *
 * Threads. bg_audit_open starts ONE writer thread that owns the files. Each
 * proxy worker thread makes its own client with bg_audit_client_new(base);
 * records are submitted from that thread and their completions are
 * delivered on that thread's event_base (an eventfd event; libevent needs no
 * evthread locking for this). The writer drains everything queued, writes it
 * with one write and makes it durable with one fdatasync (group commit),
 * then posts the completions.
 *
 * Fail closed. A record whose write or sync fails gets a failed completion
 * ("audit log not writable: No space left on device"); nothing of it stays
 * in the file; the next batch tries again by itself.
 *
 * Nothing here logs or returns record contents: errors name files, seqs and
 * errno texts only.
 */
#ifndef BG_AUDIT_H
#define BG_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct event_base;

typedef struct bg_audit bg_audit_t;
typedef struct bg_audit_client bg_audit_client_t;
typedef struct bg_audit_ticket bg_audit_ticket_t;

typedef enum {
    /* A record is acknowledged only after fdatasync returned (default). */
    BG_AUDIT_STRICT = 0,
    /* Acknowledged after write(); fdatasync at most every relaxed_interval_ms.
     * A power loss can lose that interval's records. */
    BG_AUDIT_RELAXED = 1,
} bg_audit_durability_t;

#define BG_AUDIT_KEY_MIN 32  /* bytes */
#define BG_AUDIT_KEY_MAX 256 /* bytes */

/* An HMAC key for checkpoints. ID is the first 8 hex digits of SHA-256(key).
 * Wipe with bg_audit_key_wipe. */
typedef struct {
    unsigned char bytes[BG_AUDIT_KEY_MAX];
    size_t len;
    char id[9];
} bg_audit_key_t;

/*
 * Load a key from PATH: the file holds either hex (at least 64 hex digits,
 * an even count, optionally followed by one newline) or raw bytes (the whole
 * file, at least BG_AUDIT_KEY_MIN bytes). 0, or -1 with ERR filled (no key
 * material in it).
 */
int bg_audit_key_from_file(const char *path, bg_audit_key_t *key, char *err, size_t errcap);
/* The same from environment variable NAME (hex, or raw text of at least
 * BG_AUDIT_KEY_MIN bytes). */
int bg_audit_key_from_env(const char *name, bg_audit_key_t *key, char *err, size_t errcap);
/* The same from bytes in memory (hex or raw, as for files). */
int bg_audit_key_from_bytes(const void *data, size_t len, bg_audit_key_t *key, char *err,
                            size_t errcap);
/* explicit_bzero the key. */
void bg_audit_key_wipe(bg_audit_key_t *key);

typedef struct {
    const char *directory;   /* created (0700) when missing */
    const char *prefix;      /* file prefix, [A-Za-z0-9_.-]; default "audit" */
    uint64_t rotate_bytes;   /* rotate when a file reaches this; 0 = never; default 256 MiB */
    int rotate_daily;        /* rotate at UTC day change; default 1 */
    unsigned retention_days; /* delete files whose last record is older; 0 = keep
                              * forever; default 1095. The config check refuses < 183. */
    bg_audit_durability_t durability; /* default BG_AUDIT_STRICT */
    unsigned relaxed_interval_ms;     /* default 200 */
    /* Checkpoint key (copied; NULL = checkpoints are written unsigned). */
    const unsigned char *key;
    size_t key_len;
    unsigned checkpoint_every;   /* records between checkpoints; default 1000 */
    unsigned checkpoint_seconds; /* and at most this long after a record; default 60 */
    size_t max_queue_bytes;  /* records beyond this get a failed completion ("audit queue full");
                                default 64 MiB */
    size_t max_record_bytes; /* larger records are refused (EMSGSIZE); default 1 MiB */
    /* Wall clock in ms since the epoch (tests); NULL = the system clock. */
    uint64_t (*clock_ms)(void *arg);
    void *clock_arg;
} bg_audit_options_t;

/* Fill OPT with the defaults above (directory NULL). */
void bg_audit_options_init(bg_audit_options_t *opt);

/*
 * Open the log in OPT->directory: lock the directory against a second
 * writer, find the newest file, check its tail and repair a torn last line
 * (truncated; a "repair" record saying how many bytes were cut follows),
 * continue the chain from the last good record, apply retention, and start
 * the writer thread. Cost: one read of the newest file (up to rotate_bytes).
 * Returns NULL with ERR filled when the directory cannot be used, another
 * process holds it, or the newest file is damaged other than at its tail.
 * Write errors (disk full) do not fail the open: they fail the records.
 */
bg_audit_t *bg_audit_open(const bg_audit_options_t *opt, char *err, size_t errcap);

/*
 * Flush everything queued, write a final checkpoint, sync, stop the writer
 * thread, wipe the key and free. Completions of the last records are posted
 * to their clients (they run when those bases next run). Call from any
 * thread once no thread submits any more. Clients may be freed before or
 * after this.
 */
void bg_audit_close(bg_audit_t *a);

/*
 * A client for one thread and its event_base: completions of records
 * submitted through it run on BASE. NULL with errno set on failure.
 */
bg_audit_client_t *bg_audit_client_new(bg_audit_t *a, struct event_base *base);
/*
 * Free a client, from its own thread, before its base is freed. Callbacks of
 * records still in flight never run; the records are still written. May be
 * called from inside a completion callback.
 */
void bg_audit_client_free(bg_audit_client_t *c);

/*
 * Completion: STATUS 0 = durable (SEQ is the record's sequence number,
 * REASON NULL); -1 = not written (SEQ 0, REASON a short text such as
 * "audit log not writable: No space left on device", valid during the call).
 */
typedef void (*bg_audit_done_cb)(void *arg, int status, uint64_t seq, const char *reason);

/* The longest a record without a completion callback waits in its client
 * before it is handed to the writer (milliseconds). */
#define BG_AUDIT_LAZY_MS 10

/*
 * Queue RECORD (a JSON object; takes ownership in every case) for writing.
 * It is serialized here, on the caller's thread, compactly with keys in
 * insertion order; the writer prepends "seq" and "prev" and appends "hash".
 * A "time" member (RFC 3339 UTC, ms) is added when the record has none.
 * "seq", "prev" and "hash" are reserved, and so are the "type" values the
 * writer itself uses (file_start, checkpoint, repair, writer_start,
 * retention_delete).
 *
 * Returns a ticket, or NULL with errno set and CB never called: EINVAL (not
 * an object, a reserved member or type), EMSGSIZE (over max_record_bytes),
 * ESHUTDOWN (log closing), ENOMEM. Records submitted during one pass of the
 * client's event loop are handed to the writer together at the end of the
 * pass (one lock, one wake-up); a queue over max_queue_bytes then fails them
 * with the reason "audit queue full" through CB.
 * CB runs exactly once on the client's base unless the ticket is forgotten.
 *
 * CB NULL: a lazy record that nobody waits for (a completion record): it
 * causes no wake-up of its own. It is handed to the writer together with
 * the next record that has a callback, or after BG_AUDIT_LAZY_MS, and the
 * writer frees its ticket; the returned pointer then only says "queued"
 * and must not be used (not even forgotten).
 */
bg_audit_ticket_t *bg_audit_submit(bg_audit_client_t *c, json_t *record, bg_audit_done_cb cb,
                                   void *arg);

/*
 * The same for a record the caller has already serialized: BODY is a
 * malloc'd compact JSON object ("{...}", LEN bytes; ownership passes in every
 * case) without the reserved members; HAS_TIME says whether it carries its
 * own "time". For trusted callers on the hot path (the proxy writes its
 * decision records this way): only the braces are checked.
 */
bg_audit_ticket_t *bg_audit_submit_text(bg_audit_client_t *c, char *body, size_t len, int has_time,
                                        bg_audit_done_cb cb, void *arg);

/*
 * bg_audit_submit_text for a record the caller keeps: BODY (LEN bytes) is
 * copied into the ticket's own allocation (one malloc per record), so the
 * caller may build it in a stack or reused buffer.
 */
bg_audit_ticket_t *bg_audit_submit_copy(bg_audit_client_t *c, const char *body, size_t len,
                                        int has_time, bg_audit_done_cb cb, void *arg);

/*
 * A record written in place and submitted later, stored in its ticket (one
 * allocation, freed by the writer): bg_audit_held_new gives the ticket and
 * in *BUF room for CAP bytes (NULL when out of memory); bg_audit_submit_held
 * queues BUF's first LEN bytes (LEN <= CAP, "{...}" as for
 * bg_audit_submit_text) and takes the ticket back in every case. A held
 * ticket must be submitted to be freed.
 */
bg_audit_ticket_t *bg_audit_held_new(size_t cap, char **buf);
bg_audit_ticket_t *bg_audit_submit_held(bg_audit_client_t *c, bg_audit_ticket_t *t, size_t len,
                                        int has_time, bg_audit_done_cb cb, void *arg);

/*
 * The submitter went away: CB will never run for this ticket; the record is
 * still written. Call from the client's thread, only before CB has run.
 * The ticket is freed by the library.
 */
void bg_audit_forget(bg_audit_ticket_t *t);

/* Upper bounds (microseconds) of the fsync latency histogram buckets; the
 * last bucket counts everything above the previous bound. */
#define BG_AUDIT_FSYNC_BUCKETS 16
extern const uint64_t bg_audit_fsync_bounds_us[BG_AUDIT_FSYNC_BUCKETS];

typedef struct {
    uint64_t records_written;  /* acknowledged client records */
    uint64_t internal_records; /* file_start, checkpoint, repair, ... */
    uint64_t bytes_written;
    uint64_t batches;           /* successful group commits */
    uint64_t max_batch_records; /* largest batch so far */
    uint64_t fsyncs;
    uint64_t failed_records; /* client records that got a failed completion */
    uint64_t failed_batches;
    uint64_t rotations, repairs, checkpoints, retention_deletes;
    uint64_t last_seq;                     /* last seq written */
    uint64_t durable_seq;                  /* last seq known synced to disk */
    uint64_t queued_records, queued_bytes; /* waiting for the writer now */
    /* fsync latency: histogram since open, and p50/p99/max over the last
     * 1024 syncs (microseconds). */
    uint64_t fsync_hist[BG_AUDIT_FSYNC_BUCKETS];
    uint64_t fsync_us_sum;
    uint64_t fsync_us_p50, fsync_us_p99, fsync_us_max;
    int healthy;          /* 1 when the last write/sync succeeded */
    char last_error[192]; /* "" when none yet */
    uint64_t last_error_ms;
    uint64_t last_checkpoint_ms; /* wall clock of the last checkpoint written; 0: none */
    char current_file[160];
} bg_audit_stats_t;

/* Snapshot of the counters. Thread-safe, cheap (one mutex, a 1024-sample
 * sort for the percentiles). */
void bg_audit_stats(bg_audit_t *a, bg_audit_stats_t *out);

/*
 * While the log is not writable (stats.healthy 0): check whether the
 * directory takes writes again, without waiting for traffic (a periodic
 * caller, the daemon's control loop, makes /readyz recover within a
 * second of space returning). Writable means free space with a margin
 * and a small file written and synced; the state returns to healthy only
 * after HEALTHY_HOLD_MS (500 ms) without a failed commit (no flapping).
 * Returns stats.healthy after the probe. Any thread; cheap while healthy.
 */
int bg_audit_probe(bg_audit_t *a);

/* ------------------------------------------------------------------------
 * Verification
 * ------------------------------------------------------------------------ */

typedef struct {
    const bg_audit_key_t *keys; /* checkpoint keys (any may match by key id) */
    size_t nkeys;
    /* The files are the whole log (a directory was given): its first record
     * must be the genesis or be accounted for by a retention_delete record. */
    int complete;
    FILE *report; /* notes and the verdict line; may be NULL */
} bg_audit_verify_options_t;

typedef struct {
    int ok;
    uint64_t records, files, checkpoints, checkpoints_verified;
    uint64_t first_seq, last_seq;
    /* First problem: "FILE:LINE: seq N: what (classification)". */
    char problem[640];
} bg_audit_verify_result_t;

/*
 * Verify FILES in the given order (use bg_audit_list_files to get a
 * directory's files in log order): every line parses, each hash recomputes,
 * prev links, seqs are contiguous across files, each file_start links to the
 * previous file's last hash and index, every file but the last ends with its
 * rotation checkpoint, checkpoints' HMACs verify (when keys are given;
 * otherwise the report says signatures were not checked), no torn last line.
 * Stops at the first problem and classifies it: modified, deleted (seq gap),
 * inserted, reordered, duplicated, truncated file, missing file, forged or
 * unsigned checkpoint. Returns 0 when intact, 1 when a problem was found, -1
 * on an I/O error (also described in RES->problem).
 */
int bg_audit_verify_files(const char *const *files, size_t n, const bg_audit_verify_options_t *opt,
                          bg_audit_verify_result_t *res);

/* The same over in-memory file contents (NAMES are used in messages). */
int bg_audit_verify_mem(const char *const *names, const char *const *data, const size_t *lens,
                        size_t n, const bg_audit_verify_options_t *opt,
                        bg_audit_verify_result_t *res);

/*
 * Paths ("DIR/name") of the log files of PREFIX (NULL = "audit") in DIR, in
 * log order (by file index). *OUT is NULL-terminated; free with
 * bg_audit_free_list. 0, or -1 with ERR filled.
 */
int bg_audit_list_files(const char *dir, const char *prefix, char ***out, size_t *n, char *err,
                        size_t errcap);
void bg_audit_free_list(char **paths, size_t n);

#endif
