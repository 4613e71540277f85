/*
 * The consent file backend's in-memory index and its big-reader lock: see
 * consent_file_int.h.
 */
#include "policy/consent_file_int.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/hex.h"

static _Thread_local int t_shard = -1;
static atomic_int g_next_shard;

void bg_brlock_init(bg_brlock_t *b)
{
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writers must not starve behind a steady stream of look-ups. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (int i = 0; i < BR_SHARDS; i++)
        pthread_rwlock_init(&b->shard[i].l, &ra);
    pthread_rwlockattr_destroy(&ra);
}

void bg_brlock_destroy(bg_brlock_t *b)
{
    for (int i = 0; i < BR_SHARDS; i++)
        pthread_rwlock_destroy(&b->shard[i].l);
}

/* Returns the shard to pass to bg_brlock_rdunlock. */
int bg_brlock_rdlock(bg_brlock_t *b)
{
    if (t_shard < 0)
        t_shard = atomic_fetch_add(&g_next_shard, 1) % BR_SHARDS;
    pthread_rwlock_rdlock(&b->shard[t_shard].l);
    return t_shard;
}

void bg_brlock_rdunlock(bg_brlock_t *b, int shard)
{
    pthread_rwlock_unlock(&b->shard[shard].l);
}

void bg_brlock_wrlock(bg_brlock_t *b)
{
    for (int i = 0; i < BR_SHARDS; i++) /* always in this order */
        pthread_rwlock_wrlock(&b->shard[i].l);
}

void bg_brlock_wrunlock(bg_brlock_t *b)
{
    for (int i = BR_SHARDS - 1; i >= 0; i--)
        pthread_rwlock_unlock(&b->shard[i].l);
}

/* ------------------------------------------------------------------------
 * In-memory state
 * ------------------------------------------------------------------------ */

uint64_t bg_cindex_subject_hash(const uint8_t *s)
{
    uint64_t h; /* an HMAC output: any eight bytes are uniform */
    memcpy(&h, s, sizeof h);
    return h;
}

static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h;
}

fstate_t *bg_cindex_new(void)
{
    return calloc(1, sizeof(fstate_t));
}

void bg_cindex_entry_free(fentry_t *e)
{
    if (e == NULL)
        return;
    free(e->withdrawn_by);
    free(e);
}

void bg_cindex_free(fstate_t *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++)
        bg_cindex_entry_free(st->v[i]);
    free(st->v);
    free(st->sb);
    free(st->ib);
    free(st);
}

fentry_t *bg_cindex_find_id(const fstate_t *st, const char *id)
{
    if (st->nb == 0)
        return NULL;
    for (fentry_t *e = st->ib[id_hash(id) & (st->nb - 1)]; e != NULL; e = e->inext) {
        if (strcmp(e->id, id) == 0)
            return e;
    }
    return NULL;
}

/* Make room for one more entry (vector and tables). 0/-1 (ENOMEM). Call
 * under the write lock when the state is shared. */
int bg_cindex_reserve(fstate_t *st)
{
    fentry_t **v = bg_grow(st->v, &st->cap, st->n + 1, sizeof(fentry_t *), 64);
    if (v == NULL)
        return -1;
    st->v = v;
    if (st->n + 1 > st->nb) {
        if (st->nb > SIZE_MAX / 2 / sizeof(fentry_t *))
            return -1;
        size_t nb = st->nb ? st->nb * 2 : 64;
        fentry_t **sb = calloc(nb, sizeof(fentry_t *)), **ib = calloc(nb, sizeof(fentry_t *));
        if (sb == NULL || ib == NULL) {
            free(sb);
            free(ib);
            return -1;
        }
        for (size_t i = 0; i < st->n; i++) {
            fentry_t *e = st->v[i];
            size_t s = bg_cindex_subject_hash(e->subject) & (nb - 1), k = id_hash(e->id) & (nb - 1);
            e->snext = sb[s];
            sb[s] = e;
            e->inext = ib[k];
            ib[k] = e;
        }
        free(st->sb);
        free(st->ib);
        st->sb = sb;
        st->ib = ib;
        st->nb = nb;
    }
    return 0;
}

/* Insert E (takes ownership). bg_cindex_reserve must have succeeded. */
void bg_cindex_insert(fstate_t *st, fentry_t *e)
{
    size_t s = bg_cindex_subject_hash(e->subject) & (st->nb - 1), k = id_hash(e->id) & (st->nb - 1);
    e->seq = st->n;
    st->v[st->n++] = e;
    e->snext = st->sb[s];
    st->sb[s] = e;
    e->inext = st->ib[k];
    st->ib[k] = e;
}

/* Entry from a validated consent. NULL on ENOMEM. */
fentry_t *bg_cindex_entry_new(const bg_consent_t *c)
{
    size_t lr = strlen(c->recipient) + 1, lp = strlen(c->purpose) + 1, le = strlen(c->evidence) + 1,
           lb = strlen(c->recorded_by) + 1;
    fentry_t *e = calloc(1, sizeof *e + lr + lp + le + lb);
    if (e == NULL)
        return NULL;
    if (c->withdrawn_by[0] != '\0' && (e->withdrawn_by = strdup(c->withdrawn_by)) == NULL) {
        free(e);
        return NULL;
    }
    /* Validated: 64 lowercase hex digits, so the decode cannot fail. */
    (void)bg_hex_decode(c->subject, 2 * BG_CONSENT_PSEUDONYM_LEN, e->subject, sizeof e->subject, 0);
    memcpy(e->id, c->id, sizeof e->id);
    memcpy(e->region, c->region, sizeof e->region);
    char *p = e->text;
    memcpy(p, c->recipient, lr);
    e->scope.recipient = p;
    p += lr;
    memcpy(p, c->purpose, lp);
    e->scope.purpose = p;
    p += lp;
    memcpy(p, c->evidence, le);
    e->evidence = p;
    p += le;
    memcpy(p, c->recorded_by, lb);
    e->recorded_by = p;
    e->scope.region = e->region;
    e->scope.sensitive = c->sensitive;
    e->scope.guardian = c->guardian;
    e->scope.granted_at = c->granted_at;
    e->scope.expires_at = c->expires_at;
    e->scope.withdrawn_at = c->withdrawn_at;
    return e;
}

/* Bounded copy; entries were length-checked when made, so no truncation. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* On every look-up that finds a consent: no memset, no printf. */
void bg_cindex_entry_export(const fentry_t *e, bg_consent_t *c)
{
    memcpy(c->id, e->id, sizeof c->id);
    bg_hex_encode(e->subject, BG_CONSENT_PSEUDONYM_LEN, c->subject);
    copy_str(c->recipient, sizeof c->recipient, e->scope.recipient);
    copy_str(c->purpose, sizeof c->purpose, e->scope.purpose);
    memcpy(c->region, e->region, sizeof c->region);
    c->sensitive = e->scope.sensitive;
    c->guardian = e->scope.guardian;
    c->granted_at = e->scope.granted_at;
    c->expires_at = e->scope.expires_at;
    c->withdrawn_at = e->scope.withdrawn_at;
    copy_str(c->evidence, sizeof c->evidence, e->evidence);
    copy_str(c->recorded_by, sizeof c->recorded_by, e->recorded_by);
    copy_str(c->withdrawn_by, sizeof c->withdrawn_by,
             e->withdrawn_by != NULL ? e->withdrawn_by : "");
}
