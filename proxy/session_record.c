/*
 * The session's audit records (proxy/session.c's RECORD stage and its end):
 * the decision record, written as text into the caller's buffer; keeping a
 * record nothing waits for until its completion (one record per request);
 * the completion, inside the kept record or as a record of its own; the
 * yearly counters of the people whose PI left; the access log line.
 * docs/audit.md says what each field of the records means.
 */
#include "proxy/session_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event_struct.h>
#include <openssl/err.h>

#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "geo/geo.h"
#include "inspect/inspect.h"
#include "inspect/redact.h"
#include "policy/decide.h"
#include "policy/policy.h"
#include "proxy/accesslog.h"
#include "proxy/changed.h"
#include "proxy/evaluate.h"
#include "proxy/http.h"
#include "proxy/metrics.h"
#include "proxy/resolve.h"
#include "proxy/runtime.h"
#include "proxy/serve.h"
#include "proxy/upstream.h"
#include "audit/audit.h"
#include "audit/refusal.h"
#include "audit/counters.h"

/* The path for the record: no value (inspect/redact.h). A client calls the
 * same few paths again and again, so each worker remembers the last path
 * found to hold nothing to take out (never one that held a value) and
 * writes it again as it is. */
static void write_path_without_values(bg_sbuf_t *b, const char *p, size_t n)
{
    static _Thread_local char clean[256];
    static _Thread_local size_t clean_len;
    if (n > 0 && n == clean_len && memcmp(p, clean, n) == 0) {
        bg_sbuf_json_str(b, p, n);
        return;
    }
    char buf[2048];
    size_t o = bg_redact_target(p, n, buf, sizeof buf);
    if (o == n && n <= sizeof clean && memcmp(buf, p, n) == 0) {
        memcpy(clean, p, n);
        clean_len = n;
    }
    bg_sbuf_json_str(b, buf, o);
}

/* The geo database's build date ("YYYY-MM-DD") for EPOCH (seconds), from a
 * per-thread cache: it changes only when the database is reloaded. */
static const char *geo_db_date(uint64_t epoch)
{
    static _Thread_local uint64_t cached_epoch;
    static _Thread_local char cached[40];
    if (cached[0] == '\0' || cached_epoch != epoch) {
        bg_util_format_time(epoch * 1000, cached, sizeof cached);
        cached[10] = '\0';
        cached_epoch = epoch;
    }
    return cached;
}

/*
 * The decision record (docs/audit.md): who called, where it went and why it
 * was allowed, changed or blocked. Paths, categories, pseudonyms and
 * evidence ids only; never a value. Written as text (no tree) into B
 * (the caller's, usually on its stack): this runs once per request. 0, or
 * -1 when out of memory or the snapshot has no policy (B is still the
 * caller's to free). The members the snapshot fixes come rendered
 * (bg_route_record_t, proxy/runtime.h).
 */
int bg_sess_decision_record(bg_session_t *s, bg_sbuf_t *bp)
{
    exchange_t *x = s->x;
    const bg_config_t *cfg = x->rt->cfg;
    const bg_route_record_t *rr =
        x->rt->route_record != NULL ? &x->rt->route_record[x->route - cfg->routes] : NULL;
    if (rr == NULL || x->rt->policy_record == NULL)
        return -1; /* no policy: nothing is decided without one */
    bg_sbuf_t b = *bp;
    char ts[40];
    bg_util_format_time(bg_util_wall_ms(), ts, sizeof ts);
    bg_sbuf_adds(&b, "{\"time\":\"");
    bg_sbuf_adds(&b, ts);
    bg_sbuf_adds(&b, "\",\"type\":\"decision\",\"decision_id\":\"");
    bg_sbuf_adds(&b, x->id);
    bg_sbuf_adds(&b, "\",\"caller\":{");
    bg_sbuf_json_kv(&b, 1, "address", s->peer_text);
    bg_sbuf_adds(&b, "}");
    bg_sbuf_add(&b, rr->head, rr->head_len); /* route, recipient, purpose */
    bg_sbuf_adds(&b, ",\"method\":");
    size_t mlen;
    const char *method = bg_redact_method(x->req.method, x->req.method_len, &mlen);
    bg_sbuf_json_str(&b, method, mlen); /* no value: inspect/redact.h */
    bg_sbuf_add(&b, rr->host, rr->host_len);
    bg_sbuf_adds(&b, ",\"path\":");
    write_path_without_values(&b, x->path, x->path_len);
    bg_sbuf_adds(&b, ",\"destination\":{");
    bg_sbuf_json_kv(&b, 1, "address", x->dest_addr);
    bg_sbuf_adds(&b, ",\"port\":");
    bg_sbuf_addi(&b, bg_util_addr_port((struct sockaddr *)&x->dest));
    bg_sbuf_adds(&b, ",\"country\":");
    bg_sbuf_json_cstr(&b, x->geo.country[0] ? x->geo.country : NULL);
    bg_sbuf_json_kv(&b, 0, "region", bg_geo_region_name(x->geo.region));
    bg_sbuf_json_kv(&b, 0, "geo_source", x->geo.source);
    bg_sbuf_adds(&b, "}");
    bg_sbuf_json_kv(&b, 0, "geo_db", geo_db_date(bg_geo_db_build_epoch(cfg->geo_db)));
    bg_sbuf_json_kv(&b, 0, "mode", x->ev.decision.monitor ? "monitor" : "enforce");
    bg_sbuf_adds(&b, x->ev.insp != NULL ? ",\"inspected\":true" : ",\"inspected\":false");
    if (x->ev.insp != NULL)
        bg_sbuf_json_kv(&b, 0, "body", bg_body_kind_name(bg_inspection_body_kind(x->ev.insp)));
    bg_decision_write(&x->ev.decision, x->ev.insp, &b);
    bg_sbuf_add(&b, x->rt->policy_record, x->rt->policy_record_len);
    bg_sbuf_adds(&b, ",\"bytes\":{\"request\":");
    bg_sbuf_addu(&b, evbuffer_get_length(x->body));
    bg_sbuf_adds(&b, ",\"forwarded\":");
    /* What leaves: nothing when blocked (monitor mode forwards unchanged). */
    if (x->ev.decision.outcome == BG_OUTCOME_BLOCK)
        bg_sbuf_addu(&b, 0);
    else
        bg_sbuf_addu(&b, x->ev.rw.body_changed ? x->ev.rw.body_len : evbuffer_get_length(x->body));
    bg_sbuf_adds(&b, "}}");
    *bp = b;
    return b.failed ? -1 : 0;
}

/* Does this exchange move personal information abroad (so it must not
 * happen without a durable record)? */
int bg_sess_transfers_pi_abroad(const exchange_t *x)
{
    if (!x->ev.decision.cross_border || x->ev.insp == NULL)
        return 0;
    /* Monitor mode forwards everything unchanged: any finding leaves. */
    if (x->ev.decision.monitor && x->ev.decision.nfd > 0)
        return 1;
    for (size_t i = 0; i < x->ev.decision.nfd; i++)
        if (x->ev.decision.fd[i].action == BG_ACT_ALLOW || !x->ev.decision.fd[i].anonymized)
            return 1;
    /* Undecodable or opaque bodies going abroad under an "allow" policy. */
    bg_body_kind_t k = bg_inspection_body_kind(x->ev.insp);
    return k == BG_BODY_UNDECODABLE || k == BG_BODY_OTHER ||
           bg_inspection_opaque(x->ev.insp) != NULL;
}

/* Yearly counters (audit/counters.h): once the decision record is durable,
 * count each data subject whose PI leaves as PI (each subject and kind once
 * per request). Cheap when the person was already counted this year: two
 * striped hash look-ups, no I/O. */
void bg_sess_count_subjects(bg_session_t *s)
{
    exchange_t *x = s->x;
    const bg_decision_t *d = &x->ev.decision;
    if (s->w->counters == NULL || x->ev.insp == NULL || d->nsubjects <= 0)
        return;
    const bg_config_t *cfg = x->rt->cfg;
    const bg_route_policy_t *rp = &cfg->policy->routes[x->route - cfg->routes];
    uint8_t seen_small[64], *seen = seen_small; /* bits 1/2: non-sensitive/sensitive,
                                                  4/8: the same, exempt */
    if (d->nsubjects > (int)sizeof seen_small && (seen = calloc((size_t)d->nsubjects, 1)) == NULL)
        return;
    if (seen == seen_small)
        memset(seen_small, 0, sizeof seen_small);
    int64_t now = (int64_t)bg_util_wall_ms();
    for (size_t i = 0; i < d->nfd; i++) {
        const bg_finding_decision_t *f = &d->fd[i];
        /* Exempt transfers (contract, HR management, emergency: CAC 2024
         * Art. 5) are counted apart from those the thresholds apply to. */
        int exempt = bg_counters_basis_exempt(bg_basis_name(f->basis));
        uint8_t bit = (uint8_t)((f->sensitive ? 2 : 1) << (exempt ? 2 : 0));
        if (f->subject < 0 || f->subject >= d->nsubjects || d->subjects[f->subject][0] == '\0' ||
            (seen[f->subject] & bit) ||
            !bg_counters_finding_counts(d->cross_border, d->outcome == BG_OUTCOME_BLOCK, d->monitor,
                                        f->action == BG_ACT_ALLOW, f->action == BG_ACT_DEIDENTIFY,
                                        f->anonymized))
            continue;
        seen[f->subject] |= bit;
        bg_counters_add_subject(s->w->counters, rp->recipient != NULL ? rp->recipient->id : NULL,
                                d->subjects[f->subject], f->sensitive, exempt,
                                d->subject_by_device[f->subject], now);
    }
    if (seen != seen_small)
        free(seen);
}

/*
 * Decision records nothing waits for (no personal information leaves the
 * country) are kept by the exchange for a moment and written with their
 * completion inside them ("completion": {...}, docs/audit.md): one record,
 * one hash and one hand-off per request instead of two. A record kept
 * HOLD_MS or more (a slow upstream, a long upload) is written alone by the
 * worker's hold timer and its completion follows as a record of its own, so
 * no decision waits on the network to reach the log.
 */
#define HOLD_MS 100
#define HOLD_ROOM 256 /* ',"completion":{...}}': a result and four numbers */

static void flush_held_timer(evutil_socket_t fd, short what, void *arg);

/* Write the exchange's kept decision record alone, if it has one. */
void bg_sess_release_held(bg_session_t *s)
{
    exchange_t *x = s->x;
    if (x->held == NULL)
        return;
    static bg_log_limit_t not_queued = BG_LOG_LIMIT(BG_LOG_WARN, "decision records not queued");
    if (bg_audit_submit_held(s->w->audit, x->held_ticket, x->held_len, 1, NULL, NULL) == NULL)
        bg_log_limited(&not_queued, BG_LOG_WARN, "request %s: decision record not queued", x->id);
    x->held = NULL; /* ownership passed, in every case */
    x->held_ticket = NULL;
    s->w->held_records--;
}

/* Keep REC (LEN bytes, "{...}") in the exchange until its completion. 0, or
 * -1 (out of memory): the caller submits it now. */
int bg_sess_hold_record(bg_session_t *s, const char *rec, size_t len)
{
    exchange_t *x = s->x;
    bg_worker_t *w = s->w;
    if (w->hold_timer == NULL &&
        (w->hold_timer = evtimer_new(w->base, flush_held_timer, w)) == NULL)
        return -1;
    if ((x->held_ticket = bg_audit_held_new(len + HOLD_ROOM, &x->held)) == NULL)
        return -1;
    memcpy(x->held, rec, len);
    x->held_len = len;
    x->held_us = bg_util_mono_us();
    if (w->held_records++ == 0) {
        struct timeval tv = {0, HOLD_MS * 1000};
        evtimer_add(w->hold_timer, &tv);
    }
    return 0;
}

/* Every HOLD_MS while records are kept: write those kept HOLD_MS or more. */
static void flush_held_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bg_worker_t *w = arg;
    uint64_t now = bg_util_mono_us();
    for (bg_session_t *s = w->sessions; s != NULL && w->held_records > 0; s = s->next)
        if (s->x != NULL && s->x->held != NULL && now - s->x->held_us >= HOLD_MS * 1000)
            bg_sess_release_held(s);
    if (w->held_records > 0) {
        struct timeval tv = {0, HOLD_MS * 1000};
        evtimer_add(w->hold_timer, &tv);
    }
}

/* The completion record: what came back, linked by decision id. */
/* What a completion record says happened (docs/audit.md, "result"). */
const char *bg_sess_completion_result(const exchange_t *x)
{
    if (x->result != NULL)
        return x->result;
    if (x->response_started)
        return x->response_done ? "ok" : "interrupted";
    if (x->ev.decided && x->ev.decision.outcome == BG_OUTCOME_BLOCK)
        return "blocked";
    return "refused";
}

void bg_sess_record_completion(bg_session_t *s, const char *result)
{
    exchange_t *x = s->x;
    if (x == NULL || !x->ev.decided || s->w->audit == NULL || x->completed)
        return;
    x->completed = 1;
    /* What came back: the same members alone or inside the decision. */
    char fbuf[256];
    bg_sbuf_t f;
    bg_sbuf_init_buf(&f, fbuf, sizeof fbuf);
    uint64_t now = bg_util_mono_us();
    bg_sbuf_adds(&f, "\"result\":\"");
    bg_sbuf_adds(&f, result);
    bg_sbuf_adds(&f, "\"");
    if (x->response_started) {
        bg_sbuf_adds(&f, ",\"upstream_status\":");
        bg_sbuf_addi(&f, x->resp.status);
    }
    if (x->t_forward_us > 0) {
        bg_sbuf_adds(&f, ",\"upstream_ms\":");
        bg_sbuf_addms(&f, now - x->t_forward_us);
    }
    bg_sbuf_adds(&f, ",\"total_ms\":");
    bg_sbuf_addms(&f, now - x->t_start_us);
    bg_sbuf_adds(&f, ",\"response_bytes\":");
    bg_sbuf_addu(&f, x->response_bytes);
    static const char inside[] = ",\"completion\":{";
    if (x->held != NULL && !f.failed && sizeof inside - 1 + f.n + 2 <= HOLD_ROOM) {
        /* Inside the kept decision record, over its closing brace. */
        char *e = x->held + x->held_len - 1;
        memcpy(e, inside, sizeof inside - 1);
        e += sizeof inside - 1;
        memcpy(e, f.p, f.n);
        e += f.n;
        *e++ = '}';
        *e++ = '}';
        x->held_len = (size_t)(e - x->held);
        bg_sess_release_held(s);
        bg_sbuf_free(&f);
        return;
    }
    bg_sess_release_held(s);
    char recbuf[512];
    bg_sbuf_t b;
    bg_sbuf_init_buf(&b, recbuf, sizeof recbuf);
    char ts[40];
    bg_util_format_time(bg_util_wall_ms(), ts, sizeof ts);
    bg_sbuf_adds(&b, "{\"time\":\"");
    bg_sbuf_adds(&b, ts);
    bg_sbuf_adds(&b, "\",\"type\":\"completion\",\"decision_id\":\"");
    bg_sbuf_adds(&b, x->id);
    bg_sbuf_adds(&b, "\",");
    bg_sbuf_add(&b, f.p, f.n);
    bg_sbuf_adds(&b, "}");
    if (!b.failed && !f.failed)
        bg_audit_submit_copy(s->w->audit, b.p, b.n, 1, NULL, NULL);
    bg_sbuf_free(&b);
    bg_sbuf_free(&f);
}

/* The access log line of the exchange ending (proxy/accesslog.h) and its
 * bytes per route (metrics): once per exchange, from exchange_free. No
 * value: the path is redacted there. */
void bg_sess_log_access(bg_session_t *s)
{
    exchange_t *x = s->x;
    uint64_t end_us = bg_util_mono_us();
    bg_access_t a = {
        .id = x->id,
        .client = s->peer_text,
        .method = x->head != NULL ? x->req.method : NULL,
        .method_len = x->head != NULL ? x->req.method_len : 0,
        .route = x->route != NULL ? x->route->id : NULL,
        .path = x->path,
        .path_len = x->path_len,
        .status = x->status,
        .outcome = x->ev.decided    ? bg_outcome_name(x->ev.decision.outcome)
                   : x->status != 0 ? "refused"
                                    : NULL,
        .result = x->status == 0 ? "client_aborted" : bg_sess_completion_result(x),
        .bytes_in = x->body != NULL ? evbuffer_get_length(x->body) : 0,
        .bytes_out = x->response_bytes + x->own_bytes,
        .upstream_us = x->t_forward_us > 0 ? end_us - x->t_forward_us : 0,
        .total_us = end_us - x->t_start_us,
    };
    bg_accesslog_write(s->w->accesslog, &a);
    if (a.route != NULL)
        bg_metrics_route_bytes(s->w->metrics, a.route, a.bytes_in, a.bytes_out);
}
