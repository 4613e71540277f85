/*
 * Audit client side: the worker threads' half of the writer (the writer
 * thread is audit/audit.c). A worker submits serialized records on its own
 * thread; they are batched per pass of its event loop and handed to the
 * writer's queue with one lock and one wake-up (client_flush). The writer
 * posts each completion back to the ticket's client (post_done) and wakes
 * its event_base through an eventfd; the callbacks run there
 * (client_on_done).
 *
 * Lock order (audit/audit_int.h): audit->lock and client->lock are never
 * held together.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

/* Free T and the body it owns (malloc'd, or allocated with it). */
static void ticket_free(bg_audit_ticket_t *t)
{
    if (t->body != t->inline_body)
        free(t->body);
    free(t);
}

/* ------------------------------------------------------------------------
 * Completions
 * ------------------------------------------------------------------------ */

static void client_destroy(bg_audit_client_t *c)
{
    if (c->efd >= 0)
        close(c->efd);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Writer side: hand T back to its client; a lazy ticket (no callback) is
 * freed here, without waking the client. */
static void post_done(bg_audit_ticket_t *t)
{
    bg_audit_client_t *c = t->client;
    int wake = 0, destroy = 0;
    t->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->closing || t->cb == NULL) {
        c->outstanding--;
        destroy = c->closing && c->outstanding == 0;
    } else {
        if (c->done_tail != NULL)
            c->done_tail->next = t;
        else
            c->done_head = t;
        c->done_tail = t;
        if (!c->signalled) {
            c->signalled = 1;
            wake = 1;
        }
        t = NULL;
    }
    /* Written under the lock: once it is released the owner may free the
     * client (and close the eventfd). */
    if (wake) {
        uint64_t one = 1;
        ssize_t w;
        do
            w = write(c->efd, &one, sizeof one);
        while (w < 0 && errno == EINTR);
        /* EAGAIN: the counter is saturated, the reader is woken anyway. */
    }
    pthread_mutex_unlock(&c->lock);
    if (t != NULL)
        ticket_free(t);
    if (destroy)
        client_destroy(c);
}

void bg_audit_post_list(bg_audit_ticket_t *list, int status, const char *reason)
{
    while (list != NULL) {
        bg_audit_ticket_t *next = list->next;
        list->status = status;
        if (status != 0) {
            list->seq = 0;
            snprintf(list->reason, sizeof list->reason, "%s", reason);
        }
        post_done(list);
        list = next;
    }
}

static void client_flush(bg_audit_client_t *c);

static void client_release(bg_audit_client_t *c)
{
    client_flush(c); /* what was submitted is still written */
    if (c->flush_ev != NULL) {
        event_free(c->flush_ev);
        c->flush_ev = NULL;
    }
    if (c->lazy_ev != NULL) {
        event_free(c->lazy_ev);
        c->lazy_ev = NULL;
    }
    if (c->ev != NULL) {
        event_free(c->ev);
        c->ev = NULL;
    }
    pthread_mutex_lock(&c->lock);
    c->closing = 1;
    bg_audit_ticket_t *list = c->done_head;
    c->done_head = c->done_tail = NULL;
    size_t n = 0;
    for (bg_audit_ticket_t *t = list; t != NULL; t = t->next)
        n++;
    c->outstanding -= n;
    int destroy = c->outstanding == 0;
    pthread_mutex_unlock(&c->lock);
    while (list != NULL) {
        bg_audit_ticket_t *next = list->next;
        ticket_free(list);
        list = next;
    }
    if (destroy)
        client_destroy(c);
}

/* Client side: the eventfd became readable. */
static void client_on_done(evutil_socket_t fd, short what, void *arg)
{
    bg_audit_client_t *c = arg;
    uint64_t v;
    ssize_t r;
    do
        r = read(fd, &v, sizeof v);
    while (r < 0 && errno == EINTR);

    pthread_mutex_lock(&c->lock);
    bg_audit_ticket_t *list = c->done_head;
    c->done_head = c->done_tail = NULL;
    c->signalled = 0;
    size_t n = 0;
    for (bg_audit_ticket_t *t = list; t != NULL; t = t->next)
        n++;
    c->outstanding -= n;
    pthread_mutex_unlock(&c->lock);

    c->in_drain = 1;
    while (list != NULL) {
        bg_audit_ticket_t *next = list->next;
        /* A callback may forget later tickets of this list or free the
         * client; both are checked per ticket. */
        if (!list->forgotten && !c->free_requested && list->cb != NULL)
            list->cb(list->arg, list->status, list->seq, list->status == 0 ? NULL : list->reason);
        ticket_free(list);
        list = next;
    }
    c->in_drain = 0;
    if (c->free_requested)
        client_release(c);
}

/* Hand the records submitted during this loop pass (and the lazy ones
 * before them) to the writer: one lock, one wake-up. */
static void client_flush(bg_audit_client_t *c)
{
    bg_audit_t *a = c->audit;
    bg_audit_ticket_t *list = c->local_head;
    c->flush_pending = 0;
    if (c->lazy_ev != NULL)
        event_del(c->lazy_ev); /* a timer: no system call */
    if (list == NULL)
        return;
    size_t n = 0, bytes = c->local_bytes;
    for (bg_audit_ticket_t *t = list; t != NULL; t = t->next)
        n++;
    bg_audit_ticket_t *tail = c->local_tail;
    c->local_head = c->local_tail = NULL;
    c->local_bytes = 0;
    const char *refuse = NULL;
    pthread_mutex_lock(&a->lock);
    if (a->stopping) {
        refuse = "audit log closing";
    } else if (a->q_bytes + bytes > a->max_queue_bytes && a->q_records > 0) {
        refuse = "audit queue full";
    } else {
        if (a->q_tail != NULL)
            a->q_tail->next = list;
        else
            a->q_head = list;
        a->q_tail = tail;
        a->q_records += n;
        a->q_bytes += bytes;
        if (a->writer_waiting)
            pthread_cond_signal(&a->cond);
    }
    pthread_mutex_unlock(&a->lock);
    if (refuse != NULL)
        bg_audit_post_list(list, -1, refuse); /* failed completions, on this thread's next pass */
}

static void client_on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_flush(arg);
}

bg_audit_client_t *bg_audit_client_new(bg_audit_t *a, struct event_base *base)
{
    bg_audit_client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->audit = a;
    c->base = base;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd < 0) {
        int e = errno;
        free(c);
        errno = e;
        return NULL;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        close(c->efd);
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->ev = event_new(base, c->efd, EV_READ | EV_PERSIST, client_on_done, c);
    c->flush_ev = event_new(base, -1, 0, client_on_flush, c);
    c->lazy_ev = evtimer_new(base, client_on_flush, c);
    if (c->ev == NULL || c->flush_ev == NULL || c->lazy_ev == NULL || event_add(c->ev, NULL) != 0) {
        if (c->ev != NULL)
            event_free(c->ev);
        if (c->flush_ev != NULL)
            event_free(c->flush_ev);
        if (c->lazy_ev != NULL)
            event_free(c->lazy_ev);
        client_destroy(c);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

void bg_audit_client_free(bg_audit_client_t *c)
{
    if (c == NULL)
        return;
    if (c->in_drain) {
        c->free_requested = 1; /* finished by client_on_done */
        return;
    }
    client_release(c);
}

void bg_audit_forget(bg_audit_ticket_t *t)
{
    if (t != NULL)
        t->forgotten = 1;
}

/* ------------------------------------------------------------------------
 * Submission
 * ------------------------------------------------------------------------ */

static const char *const reserved_types[] = {"file_start", "checkpoint", "repair", "writer_start",
                                             "retention_delete"};

static bg_audit_ticket_t *submit_body(bg_audit_client_t *c, char *body, size_t len, int has_time,
                                      bg_audit_done_cb cb, void *arg);
static bg_audit_ticket_t *submit_ticket(bg_audit_client_t *c, bg_audit_ticket_t *t, char *body,
                                        size_t len, int has_time, bg_audit_done_cb cb, void *arg);

bg_audit_ticket_t *bg_audit_submit(bg_audit_client_t *c, json_t *record, bg_audit_done_cb cb,
                                   void *arg)
{
    if (!json_is_object(record) || json_object_get(record, "seq") != NULL ||
        json_object_get(record, "prev") != NULL || json_object_get(record, "hash") != NULL) {
        json_decref(record);
        errno = EINVAL;
        return NULL;
    }
    const char *type = json_string_value(json_object_get(record, "type"));
    if (type != NULL) {
        for (size_t i = 0; i < sizeof reserved_types / sizeof reserved_types[0]; i++) {
            if (strcmp(type, reserved_types[i]) == 0) {
                json_decref(record);
                errno = EINVAL;
                return NULL;
            }
        }
    }
    int has_time = json_object_get(record, "time") != NULL;
    char *body = json_dumps(record, JSON_COMPACT);
    json_decref(record);
    if (body == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    return submit_body(c, body, strlen(body), has_time, cb, arg);
}

bg_audit_ticket_t *bg_audit_submit_text(bg_audit_client_t *c, char *body, size_t len, int has_time,
                                        bg_audit_done_cb cb, void *arg)
{
    if (body == NULL || len < 2 || body[0] != '{' || body[len - 1] != '}') {
        free(body);
        errno = EINVAL;
        return NULL;
    }
    return submit_body(c, body, len, has_time, cb, arg);
}

bg_audit_ticket_t *bg_audit_submit_copy(bg_audit_client_t *c, const char *body, size_t len,
                                        int has_time, bg_audit_done_cb cb, void *arg)
{
    if (body == NULL || len < 2) {
        errno = EINVAL;
        return NULL;
    }
    char *buf;
    bg_audit_ticket_t *t = bg_audit_held_new(len, &buf);
    if (t == NULL)
        return NULL;
    memcpy(buf, body, len);
    return bg_audit_submit_held(c, t, len, has_time, cb, arg); /* checks the rest */
}

bg_audit_ticket_t *bg_audit_held_new(size_t cap, char **buf)
{
    *buf = NULL;
    if (cap > SIZE_MAX - sizeof(bg_audit_ticket_t) - 1) {
        errno = ENOMEM;
        return NULL;
    }
    bg_audit_ticket_t *t = malloc(sizeof *t + cap + 1);
    if (t == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    memset(t, 0, sizeof *t);
    *buf = t->inline_body;
    return t;
}

bg_audit_ticket_t *bg_audit_submit_held(bg_audit_client_t *c, bg_audit_ticket_t *t, size_t len,
                                        int has_time, bg_audit_done_cb cb, void *arg)
{
    if (t == NULL) {
        errno = EINVAL;
        return NULL;
    }
    const char *b = t->inline_body;
    if (len < 2 || b[0] != '{' || b[len - 1] != '}') {
        free(t);
        errno = EINVAL;
        return NULL;
    }
    if (len > c->audit->max_record_bytes) {
        free(t);
        errno = EMSGSIZE;
        return NULL;
    }
    t->inline_body[len] = '\0';
    return submit_ticket(c, t, t->inline_body, len, has_time, cb, arg);
}

/* Queue BODY (a compact JSON object, owned from here on). */
static bg_audit_ticket_t *submit_body(bg_audit_client_t *c, char *body, size_t len, int has_time,
                                      bg_audit_done_cb cb, void *arg)
{
    bg_audit_t *a = c->audit;
    if (len > a->max_record_bytes) {
        free(body);
        errno = EMSGSIZE;
        return NULL;
    }
    bg_audit_ticket_t *t = calloc(1, sizeof *t);
    if (t == NULL) {
        free(body);
        errno = ENOMEM;
        return NULL;
    }
    return submit_ticket(c, t, body, len, has_time, cb, arg);
}

/* Queue T (zeroed, owned from here on) for BODY, which T owns: allocated
 * with it or malloc'd. */
static bg_audit_ticket_t *submit_ticket(bg_audit_client_t *c, bg_audit_ticket_t *t, char *body,
                                        size_t len, int has_time, bg_audit_done_cb cb, void *arg)
{
    bg_audit_t *a = c->audit;
    t->client = c;
    t->cb = cb;
    t->arg = arg;
    t->body = body;
    t->body_len = len;
    if (!has_time) {
        char ts[40];
        bg_audit_now_string(a, ts, sizeof ts);
        t->time_len =
            (size_t)snprintf(t->time_member, sizeof t->time_member, "\"time\":\"%s\"", ts);
    }

    pthread_mutex_lock(&c->lock);
    c->outstanding++;
    pthread_mutex_unlock(&c->lock);

    if (__atomic_load_n(&a->stopping, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&c->lock);
        c->outstanding--;
        pthread_mutex_unlock(&c->lock);
        ticket_free(t);
        errno = ESHUTDOWN;
        return NULL;
    }
    /* Batched per loop pass (client_flush); a full queue is reported as a
     * failed completion then. A lazy record waits for the next flush, or
     * at most BG_AUDIT_LAZY_MS. */
    t->next = NULL;
    if (c->local_tail != NULL)
        c->local_tail->next = t;
    else
        c->local_head = t;
    c->local_tail = t;
    c->local_bytes += len;
    if (cb != NULL) {
        if (!c->flush_pending) {
            c->flush_pending = 1;
            event_active(c->flush_ev, EV_TIMEOUT, 1);
        }
    } else if (!c->flush_pending && !evtimer_pending(c->lazy_ev, NULL)) {
        struct timeval tv = {0, BG_AUDIT_LAZY_MS * 1000};
        evtimer_add(c->lazy_ev, &tv);
    }
    return t;
}
