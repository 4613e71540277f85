/*
 * The shared store (Redis) behind one small module: every hiredis call of
 * bordergate goes through here. Used by the consent backend
 * (policy/consent_redis.c) and the fleet-wide yearly counters
 * (audit/counters_redis.c). docs/configuration.md "store.redis" is the
 * user-facing reference.
 *
 * Two kinds of connection:
 *   bg_redis_t      one command connection, shared by any number of threads
 *                   (a mutex serialises them; a command is one loopback or LAN
 *                   round trip). It connects lazily and reconnects by itself:
 *                   after a failure, commands fail at once (no waiting) until
 *                   the backoff (100 ms doubling to 2 s) has passed, so a
 *                   caller on a request path never queues behind a dead
 *                   server for longer than one timeout.
 *   bg_redis_sub_t  one subscriber thread: SUBSCRIBEs to channels, calls back
 *                   on every message and on every change of state (up after
 *                   the subscription is confirmed, down on any error), pings
 *                   every second to notice a silent peer, reconnects with the
 *                   same backoff.
 *
 * hiredis 0.14 has no TLS: "tls" in the configuration is refused at load
 * (config.c) rather than silently ignored. Nothing here logs a value sent or
 * received: log lines carry the address (never the password) and errors.
 */
#ifndef BG_STORE_REDIS_H
#define BG_STORE_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

/* Where the store is. */
typedef struct bg_redis_cfg {
    char host[256];
    int port;          /* 6379 when the URL names none */
    int db;            /* SELECT'ed after connecting; 0 when the URL names none */
    char *password;    /* AUTH after connecting; NULL: none. Wiped by bg_redis_cfg_clear */
    int timeout_ms;    /* connect and command timeout; 0: 500 */
    char display[300]; /* "redis://host:port/db" without the password, for logs */
} bg_redis_cfg_t;

/* Parse "redis://host[:port][/db]" (no user:password@ part: the password
 * comes from a file or the environment; host printable ASCII, port and db
 * decimal digits). 0, or -1 with ERR filled (never with the URL in it). */
int bg_redis_parse_url(const char *url, bg_redis_cfg_t *out, char *err, size_t errcap);
/* Deep copy (password included) into OUT. 0, or -1 on ENOMEM. */
int bg_redis_cfg_copy(bg_redis_cfg_t *out, const bg_redis_cfg_t *in);
/* Wipe and free the password. */
void bg_redis_cfg_clear(bg_redis_cfg_t *c);

typedef struct bg_redis bg_redis_t;

/* A command connection to CFG (copied). Does not connect yet. NULL on ENOMEM. */
bg_redis_t *bg_redis_new(const bg_redis_cfg_t *cfg);
void bg_redis_free(bg_redis_t *r);

/*
 * Send N commands (ARGC[i], ARGV[i], LENS[i]: binary-safe arguments) in one
 * pipeline and read their N replies into REPLIES (caller frees each with
 * freeReplyObject). 0 when every reply arrived (a reply may still be a Redis
 * error: check type REDIS_REPLY_ERROR); -1 with ERR filled when the server
 * could not be reached or the connection broke (no reply kept; the
 * connection is dropped and retried after the backoff). Thread-safe.
 */
int bg_redis_pipeline(bg_redis_t *r, int n, const int *argc, const char *const *const *argv,
                      const size_t *const *lens, redisReply **replies, char *err, size_t errcap);
/* One command: its reply (caller frees), or NULL with ERR filled. */
redisReply *bg_redis_cmd(bg_redis_t *r, int argc, const char *const *argv, const size_t *lens,
                         char *err, size_t errcap);
/* 1 while the last command succeeded (or none was tried yet), else 0. */
int bg_redis_up(bg_redis_t *r);

typedef struct bg_redis_sub bg_redis_sub_t;

/* MESSAGE (LEN bytes, not NUL-terminated) arrived on CHANNEL. */
typedef void (*bg_redis_msg_fn)(void *arg, const char *channel, const char *message, size_t len);
/* UP is 1 once subscribed to every channel, 0 when the connection is lost. */
typedef void (*bg_redis_state_fn)(void *arg, int up);

/* Start the subscriber thread for the NCHANNELS CHANNELS (copied). NULL
 * with ERR on failure (thread or memory; an unreachable server is not a
 * failure: the thread keeps trying). Callbacks run on that thread. */
bg_redis_sub_t *bg_redis_sub_start(const bg_redis_cfg_t *cfg, const char *const *channels,
                                   int nchannels, bg_redis_msg_fn on_msg,
                                   bg_redis_state_fn on_state, void *arg, char *err, size_t errcap);
/* Stop the thread (within about 200 ms) and free. NULL is ignored. */
void bg_redis_sub_stop(bg_redis_sub_t *s);

#endif
