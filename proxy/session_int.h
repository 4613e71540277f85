/*
 * Internal to the session (proxy/session.c and the files it is split into:
 * session_record.c, session_msg.c): the exchange and session structures and
 * the functions the parts call across files. Worker thread only, like the
 * session itself. Not for other modules: they use proxy/session.h.
 */
#ifndef BG_PROXY_SESSION_INT_H
#define BG_PROXY_SESSION_INT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event_struct.h>

#include "common/sbuf.h"
#include "common/util.h"
#include "proxy/evaluate.h"
#include "proxy/http.h"
#include "proxy/resolve.h"
#include "proxy/runtime.h"
#include "proxy/session.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"
#include "audit/audit.h"

#define RESP_MAX_HEAD 65536
#define CLIENT_HIGH_WATER (256 * 1024) /* pause the upstream above this */
#define CLIENT_LOW_WATER (64 * 1024)
#define PIPELINE_MAX (64 * 1024) /* request bytes buffered while one is in flight */

typedef enum {
    ST_IDLE,      /* between requests: idle timeout */
    ST_HEAD,      /* part of a request head received */
    ST_BODY,      /* reading the request body */
    ST_RESOLVING, /* waiting for DNS */
    ST_RECORDING, /* waiting for the decision record to be durable */
    ST_UPSTREAM,  /* request sent (or connecting), waiting for the response head */
    ST_RELAY,     /* streaming the response body to the client */
    ST_CLOSING,   /* flushing the last bytes, then free */
} session_state_t;

typedef enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_EOF } body_mode_t;

/* Everything that exists only while one request is in flight. */
typedef struct {
    bg_runtime_t *rt; /* reference held for the whole exchange */
    const bg_route_t *route;
    char id[BG_ID_LEN + 1];
    uint64_t t_start_us;

    char *head;            /* owned copy of the request head and, after it, the
                              room for its header fields (head_copy) */
    bg_http_request_t req; /* points into head */
    char host[256];        /* lowercase Host without port */
    const char *path;
    size_t path_len;
    int has_body;
    int body_consumed;     /* the whole request body has been read */
    struct evbuffer *body; /* decoded request body */
    uint64_t body_left;
    bg_http_chunked_t chunked;

    bg_resolve_query_t *query;
    struct sockaddr_storage dest;
    socklen_t dest_len;
    char dest_text[64];
    char dest_addr[INET6_ADDRSTRLEN]; /* the address alone (decision record) */
    const char *resolve_source;
    bg_geo_answer_t geo; /* of the very address connected to */

    bg_audit_ticket_t *ticket; /* RECORD in flight */
    uint64_t audit_seq;
    uint64_t t_forward_us;
    uint64_t t_connect_us; /* a new upstream connection was started (metrics) */
    uint64_t response_bytes;
    uint64_t own_bytes; /* body bytes of an answer bordergate made itself (access log) */
    int status;         /* status answered to the client; 0: none yet (access log) */

    bg_upconn_t *up;
    int up_reused;
    int retried;
    int upstream_connecting;
    size_t up_request_len;          /* bytes of the request queued on x->up */
    int holds_slot;                 /* counted in the route's in-flight requests */
    const char *result;             /* completion result when not derived (complete()) */
    int completed;                  /* the completion record was made (record_completion) */
    char *held;                     /* a decision record nothing waits for, kept to carry its
                                       completion (hold_record); HOLD_ROOM spare */
    bg_audit_ticket_t *held_ticket; /* held's storage: its audit ticket */
    size_t held_len;                /* bytes of held, its closing '}' included */
    uint64_t held_us;               /* when it was kept (flush_held_timer) */
    int response_done;              /* complete() was reached: nothing was cut short */

    bg_http_response_t resp; /* headers: the thread's resp_fields, valid until
                                the head has been written (on_up_read) */
    body_mode_t resp_mode;
    uint64_t resp_left;
    bg_http_chunked_t resp_chunked;
    int resp_dechunk; /* chunked upstream, HTTP/1.0 client */
    int response_started;
    int paused_upstream;
    size_t head_scanned; /* bytes of a partial head already parsed */
    bg_eval_t ev;        /* INSPECT + DECIDE: findings (referencing head and body),
                            decision, rewritten request. Last: see EXCHANGE_RESET_BYTES */
} exchange_t;

/* A reused exchange is zeroed except for its decision's reasons[] (8 kB
 * that are only read below nreasons): BG_EVAL_RESET_BYTES. */
#define EXCHANGE_RESET_BYTES (offsetof(exchange_t, ev) + BG_EVAL_RESET_BYTES)
_Static_assert(offsetof(exchange_t, ev) + sizeof(bg_eval_t) == sizeof(exchange_t),
               "ev must be the last member of exchange_t");

struct bg_session {
    bg_worker_t *w;
    struct bufferevent *cbev;
    struct bg_session *prev, *next;
    struct event timer;
    struct event next_request; /* a pipelined request waits its turn (complete()) */
    /* Reading the client's bytes (session.c, "Client reads"): cbev only
     * writes; its input buffer is filled by the session's own read event. */
    struct event rd;
    struct evbuffer_cb_entry *rd_cb; /* on the input: bytes taken, read again */
    size_t rd_high;                  /* stop reading at this many buffered bytes; 0: no limit */
    int rd_want;                     /* reading wanted (client_read) */
    int rd_on;                       /* rd is added */
    session_state_t state;
    struct sockaddr_storage peer;
    char peer_text[64];
    int keep_alive;
    int waiting_drain; /* idle, but the client must read before we go on */
    exchange_t *x;
};

/* session_record.c */

/* The decision record of S's exchange, appended to *BP (docs/audit.md). 0,
 * or -1 when out of memory (*BP is still the caller's to free). */
int bg_sess_decision_record(bg_session_t *s, bg_sbuf_t *bp);
/* Does X move personal information abroad (so it must not happen without a
 * durable record)? */
int bg_sess_transfers_pi_abroad(const exchange_t *x);
/* Count the people whose PI left in the yearly counters (once the decision
 * record is durable). */
void bg_sess_count_subjects(bg_session_t *s);
/* Keep the decision record REC (LEN bytes) until the exchange's completion:
 * 0, or -1 (out of memory) when the caller must submit it now. */
int bg_sess_hold_record(bg_session_t *s, const char *rec, size_t len);
/* Write a kept decision record alone, if the exchange has one. */
void bg_sess_release_held(bg_session_t *s);
/* What the completion says happened (docs/audit.md, "result"). */
const char *bg_sess_completion_result(const exchange_t *x);
/* The exchange's completion (once): inside its kept decision record, or as
 * a record of its own. */
void bg_sess_record_completion(bg_session_t *s, const char *result);
/* The access log line of the exchange ending and its bytes per route
 * (metrics): once per exchange, from exchange_free. */
void bg_sess_log_access(bg_session_t *s);

/* session_msg.c */

/* Write the upstream request head and body of S's exchange into OUT. */
void bg_sess_build_upstream_request(bg_session_t *s, struct evbuffer *out);
/* Write BEV's pending output to its plain, connected socket now. */
void bg_sess_flush_now(struct bufferevent *bev);
/* Write the response head of S's exchange to the client's output. */
void bg_sess_write_response_head(bg_session_t *s);

#endif
