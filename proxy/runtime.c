#include "proxy/runtime.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/sbuf.h"
#include "policy/policy.h"
#include "proxy/tls.h"

static bg_runtime_t *current;
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned generations;
static unsigned published_generation; /* of current; 0: none (atomic) */

/* B's text (on the heap: B started zeroed) into *OUT, its length *LEN. 0,
 * or -1 when out of memory (B freed). */
static int sbuf_take(bg_sbuf_t *b, char **out, size_t *len)
{
    if (b->failed || b->p == NULL) {
        bg_sbuf_free(b);
        return -1;
    }
    *out = b->p;
    *len = b->n;
    return 0;
}

/* The decision records' members this snapshot fixes (bg_route_record_t).
 * 0, or -1 when out of memory. */
static int render_record_parts(bg_runtime_t *rt)
{
    const bg_config_t *cfg = rt->cfg;
    const bg_policy_t *p = cfg->policy;
    if (p == NULL)
        return 0;
    bg_sbuf_t b = {0};
    bg_sbuf_adds(&b, ",\"policy\":{\"version\":");
    bg_sbuf_json_cstr(&b, p->version);
    bg_sbuf_json_kv(&b, 0, "sha256", p->hash);
    bg_sbuf_adds(&b, "}");
    if (sbuf_take(&b, &rt->policy_record, &rt->policy_record_len) != 0)
        return -1;
    rt->route_record =
        calloc(cfg->nroutes > 0 ? (size_t)cfg->nroutes : 1, sizeof *rt->route_record);
    if (rt->route_record == NULL)
        return -1;
    for (int i = 0; i < cfg->nroutes; i++) {
        const bg_route_policy_t *rp = &p->routes[i];
        bg_route_record_t *r = &rt->route_record[i];
        b = (bg_sbuf_t){0};
        bg_sbuf_json_kv(&b, 0, "route", cfg->routes[i].id);
        if (rp->recipient != NULL) {
            bg_sbuf_adds(&b, ",\"recipient\":{");
            bg_sbuf_json_kv(&b, 1, "id", rp->recipient->id);
            bg_sbuf_json_kv(&b, 0, "legal_entity",
                            rp->recipient->legal_entity ? rp->recipient->legal_entity : "");
            bg_sbuf_json_kv(&b, 0, "relationship",
                            bg_relationship_name(rp->recipient->relationship));
            bg_sbuf_adds(&b, "}");
        }
        if (rp->purpose != NULL)
            bg_sbuf_json_kv(&b, 0, "purpose", rp->purpose);
        if (sbuf_take(&b, &r->head, &r->head_len) != 0)
            return -1;
        b = (bg_sbuf_t){0};
        bg_sbuf_json_kv(&b, 0, "host", cfg->routes[i].upstream_host);
        if (sbuf_take(&b, &r->host, &r->host_len) != 0)
            return -1;
    }
    return 0;
}

static void free_record_parts(bg_runtime_t *rt)
{
    for (int i = 0; rt->route_record != NULL && i < rt->cfg->nroutes; i++) {
        free(rt->route_record[i].head);
        free(rt->route_record[i].host);
    }
    free(rt->route_record);
    free(rt->policy_record);
}

bg_runtime_t *bg_runtime_new(bg_config_t *cfg, FILE *errs)
{
    char err[512];
    bg_runtime_t *rt = calloc(1, sizeof *rt);
    if (rt == NULL) {
        bg_config_unref(cfg);
        return NULL;
    }
    rt->refs = 1;
    rt->cfg = cfg;
    if (render_record_parts(rt) != 0) {
        fprintf(errs, "%s: error: out of memory\n", cfg->path);
        bg_runtime_unref(rt);
        return NULL;
    }
    rt->client_tls = bg_tls_client_ctx_new(cfg->ca_file, cfg->tls_verify, err, sizeof err);
    if (rt->client_tls == NULL) {
        fprintf(errs, "%s: error: upstream TLS: %s\n", cfg->path, err);
        bg_runtime_unref(rt);
        return NULL;
    }
    const bg_policy_t *p = cfg->policy;
    if (p != NULL && p->consent_registry != NULL) {
        char *warning = NULL;
        bg_consent_options_t opts;
        memset(&opts, 0, sizeof opts);
        opts.create = 1;              /* a new deployment starts with an empty registry */
        if (cfg->store_redis != NULL) /* store.redis: the fleet's shared registry */
            rt->consent = bg_consent_open_redis(cfg->store_redis, p->subject_key,
                                                p->subject_key_len, 1, err, sizeof err);
        else
            rt->consent = bg_consent_open(p->consent_registry, p->subject_key, p->subject_key_len,
                                          &opts, &warning, err, sizeof err);
        if (rt->consent == NULL) {
            fprintf(errs, "%s: error: $.consent.registry: %s\n", cfg->path, err);
            bg_runtime_unref(rt);
            return NULL;
        }
        if (warning != NULL) {
            bg_warn("consent registry %s: %s", p->consent_registry, warning);
            free(warning);
        }
    }
    return rt;
}

/* One more reference to RT (relaxed: the caller already holds one, or the
 * lock that publishes it). */
static bg_runtime_t *runtime_ref(bg_runtime_t *rt)
{
    __atomic_add_fetch(&rt->refs, 1, __ATOMIC_RELAXED);
    return rt;
}

void bg_runtime_unref(bg_runtime_t *rt)
{
    if (rt == NULL || __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (rt->client_tls != NULL)
        SSL_CTX_free(rt->client_tls);
    bg_consent_close(rt->consent);
    free_record_parts(rt);
    bg_config_unref(rt->cfg);
    free(rt);
}

/* A mutex rather than a lock-free swap: taken once per request for a few
 * nanoseconds, and it makes acquire-vs-publish trivially correct. */
bg_runtime_t *bg_runtime_acquire(void)
{
    pthread_mutex_lock(&current_lock);
    bg_runtime_t *rt = current != NULL ? runtime_ref(current) : NULL;
    pthread_mutex_unlock(&current_lock);
    return rt;
}

bg_runtime_t *bg_runtime_acquire_cached(bg_runtime_t **cache)
{
    bg_runtime_t *c = *cache;
    if (c == NULL || c->generation != __atomic_load_n(&published_generation, __ATOMIC_ACQUIRE)) {
        bg_runtime_t *fresh = bg_runtime_acquire();
        bg_runtime_unref(c);
        *cache = c = fresh;
        if (c == NULL)
            return NULL;
    }
    return runtime_ref(c);
}

void bg_runtime_publish(bg_runtime_t *rt)
{
    pthread_mutex_lock(&current_lock);
    bg_runtime_t *old = current;
    rt->generation = ++generations;
    current = rt;
    __atomic_store_n(&published_generation, rt->generation, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&current_lock);
    bg_runtime_unref(old);
}

void bg_runtime_publish_final(void)
{
    pthread_mutex_lock(&current_lock);
    bg_runtime_t *old = current;
    current = NULL;
    __atomic_store_n(&published_generation, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&current_lock);
    bg_runtime_unref(old);
}
