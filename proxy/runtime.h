/*
 * bg_runtime_t: everything a request needs that a reload can replace
 * (configuration with its geo database and policy, upstream TLS context, consent registry),
 * bundled in one reference-counted snapshot. A request takes one reference
 * when it starts and drops it when it ends; SIGHUP builds a new snapshot,
 * validates it whole and publishes it with one atomic pointer swap.
 */
#ifndef BG_RUNTIME_H
#define BG_RUNTIME_H

#include <stdio.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "policy/consent.h"

/* Members of a decision record (docs/audit.md) that the snapshot fixes,
 * rendered once when it is built instead of once a request: a route's
 * ',"route":...' up to its purpose and its ',"host":...'; the policy's
 * ',"policy":{...}'. Each NUL-terminated, its length beside it. */
typedef struct {
    char *head;
    size_t head_len;
    char *host;
    size_t host_len;
} bg_route_record_t;

typedef struct bg_runtime {
    int refs;
    unsigned generation;
    bg_config_t *cfg;                /* owned reference */
    SSL_CTX *client_tls;             /* for https:// upstreams */
    bg_consent_reg_t *consent;       /* NULL when the policy names no registry */
    bg_route_record_t *route_record; /* one per cfg->routes; NULL without a policy */
    char *policy_record;
    size_t policy_record_len;
} bg_runtime_t;

/* Build a runtime from a loaded config (takes ownership of CFG's reference).
 * NULL with one line per problem written to ERRS. */
bg_runtime_t *bg_runtime_new(bg_config_t *cfg, FILE *errs);
void bg_runtime_unref(bg_runtime_t *rt);

/* The published snapshot: acquire returns a new reference. */
bg_runtime_t *bg_runtime_acquire(void);
/* The same through a per-thread cache: *CACHE holds a reference to the
 * snapshot last seen, taken again (under the lock) only when a newer one has
 * been published; otherwise one atomic load and one reference increment, no
 * lock, so workers do not contend on every request. Release *CACHE with
 * bg_runtime_unref when the thread ends. */
bg_runtime_t *bg_runtime_acquire_cached(bg_runtime_t **cache);
/* Publish RT (takes its reference); the previous one is released. */
void bg_runtime_publish(bg_runtime_t *rt);
/* Drop the published snapshot at exit. */
void bg_runtime_publish_final(void);

#endif
