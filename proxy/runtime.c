#include "proxy/runtime.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "policy/policy.h"
#include "proxy/tls.h"

static bg_runtime_t *current;
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned generations;
static unsigned published_generation; /* of current; 0: none (atomic) */

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
