#include "policy/decide.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "common/http_header.h"
#include "policy/attribute.h"
#include "common/chinatime.h"
#include "common/pseudonym.h"

int bg_decide_needs_inspection(const bg_policy_t *p, const bg_geo_answer_t *geo)
{
    return bg_geo_is_cross_border(geo) || (p != NULL && p->inspect_domestic);
}

static void add_reason(bg_decision_t *d, const char *code, const char *rule, const char *category,
                       const char *path, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void add_reason(bg_decision_t *d, const char *code, const char *rule, const char *category,
                       const char *path, const char *fmt, ...)
{
    /* One reason per (code, rule, category): a batch of 1,000 records does
     * not need 1,000 identical lines. */
    for (int i = 0; i < d->nreasons; i++) {
        bg_reason_t *r = &d->reasons[i];
        if (strcmp(r->code, code) == 0 && strcmp(r->rule, rule ? rule : "") == 0 &&
            strcmp(r->category, category ? category : "") == 0)
            return;
    }
    if (d->nreasons >= BG_MAX_REASONS)
        return;
    bg_reason_t *r = &d->reasons[d->nreasons++];
    bg_util_cat(r->code, sizeof r->code, code);
    bg_util_cat(r->rule, sizeof r->rule, rule ? rule : "");
    bg_util_cat(r->category, sizeof r->category, category ? category : "");
    bg_util_cat(r->path, sizeof r->path, path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

/* "DNT: 1" or "Sec-GPC: 1". */
static int opted_out(const bg_decide_input_t *in)
{
    const bg_http_header_t *h = bg_http_find_header(in->headers, in->nheaders, "dnt");
    if (h != NULL && h->value_len == 1 && h->value[0] == '1')
        return 1;
    h = bg_http_find_header(in->headers, in->nheaders, "sec-gpc");
    return h != NULL && h->value_len == 1 && h->value[0] == '1';
}

/* Pattern "$.items[*].phone" against a finding path: "[*]" matches any
 * index; a pattern also matches everything below it. */
static int path_covers(const char *pat, const char *path)
{
    while (*pat != '\0') {
        if (pat[0] == '[' && pat[1] == '*' && pat[2] == ']') {
            if (*path != '[')
                return 0;
            path++;
            if (!isdigit((unsigned char)*path))
                return 0;
            while (isdigit((unsigned char)*path))
                path++;
            if (*path != ']')
                return 0;
            path++;
            pat += 3;
            continue;
        }
        if (*pat != *path)
            return 0;
        pat++;
        path++;
    }
    return *path == '\0' || *path == '.' || *path == '[' || *path == '(';
}

/* Age in whole years at NOW from "YYYY-MM-DD", "YYYYMMDD" or "YYYY/MM/DD"; -1. */
static int age_from(const char *s, int64_t now_ms)
{
    int y, m, d;
    char digits[9];
    size_t n = 0;
    for (const char *p = s; *p && n < 8; p++)
        if (isdigit((unsigned char)*p))
            digits[n++] = *p;
        else if (*p != '-' && *p != '/' && *p != '.')
            return -1;
    if (n != 8)
        return -1;
    digits[8] = '\0';
    if (sscanf(digits, "%4d%2d%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    struct tm tm;
    if (bg_china_tm(now_ms, &tm) != 0)
        return -1;
    int age = tm.tm_year + 1900 - y;
    if (tm.tm_mon + 1 < m || (tm.tm_mon + 1 == m && tm.tm_mday < d))
        age--;
    return age;
}

/* The pseudonym of ID under the policy's subject key (the pseudonym key
 * when it has none); "" without a key. */
static void pseudonym(const bg_policy_t *p, const char *id, size_t len, char out[65])
{
    const unsigned char *key = p->subject_key_len > 0 ? p->subject_key : p->pseudonym_key;
    size_t kl = p->subject_key_len > 0 ? p->subject_key_len : p->pseudonym_key_len;
    bg_pseudonym(key, kl, id, len, out);
}

/*
 * The canonical form of an identifier, as `audit subject --id` writes the
 * identifiers it is given (audit/report.c bg_report_identifier_forms): a
 * mobile number as its 11 digits, an e-mail in lower case, an ID number with
 * an upper-case X, anything else as found, trimmed. Returns the length
 * written into OUT, 0 when the category is not one a person is looked up by.
 */
static size_t canonical_identifier(bg_detect_cat_t cat, const char *v, size_t n, char *out,
                                   size_t cap)
{
    size_t o = 0;
    switch (cat) {
    case BG_CAT_CN_MOBILE:
    case BG_CAT_PHONE_NUMBER:
        for (size_t i = 0; i < n && o + 1 < cap; i++)
            if (v[i] >= '0' && v[i] <= '9')
                out[o++] = v[i];
        if (cat == BG_CAT_CN_MOBILE && o > 11) { /* 86 / 0086 prefix */
            memmove(out, out + o - 11, 11);
            o = 11;
        }
        return o;
    case BG_CAT_EMAIL:
    case BG_CAT_CN_RESIDENT_ID:
    case BG_CAT_HMT_RESIDENCE_PERMIT:
    case BG_CAT_PASSPORT:
    case BG_CAT_HK_ID:
    case BG_CAT_TW_ID:
    case BG_CAT_MO_ID:
    case BG_CAT_MAINLAND_TRAVEL_PERMIT:
    case BG_CAT_BANK_CARD:
    case BG_CAT_ACCOUNT_ID:
    case BG_CAT_IDENTITY_DOCUMENT:
        while (n > 0 && (*v == ' ' || *v == '\t'))
            v++, n--;
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        for (size_t i = 0; i < n && o + 1 < cap; i++) {
            char c = v[i];
            if (cat == BG_CAT_EMAIL && c >= 'A' && c <= 'Z')
                c = (char)(c + 32);
            else if (cat != BG_CAT_EMAIL && cat != BG_CAT_ACCOUNT_ID && c == 'x')
                c = 'X';
            out[o++] = c;
        }
        return o;
    default: return 0;
    }
}

typedef struct {
    char raw[256]; /* the subject id: PI, kept only for the consent look-up */
    size_t raw_len;
    int by_device;     /* RAW is the device identifier (subjects.device_id) */
    int minor;         /* younger than policy.minor_age */
    int guardian;      /* younger than policy.guardian_consent_age */
    char region[8];    /* ISO 3166 alpha-2, "" when unknown */
    int region_caller; /* the region was written by the caller (subjects.region),
                          not set by the gateway (subjects.region_header) */
} subject_info_t;

/* Subject of record R (-1: the whole request). ATTR[i] is the subject
 * finding i is attributed to (attribute_findings): only the subject's own
 * resident ID number tells its age, never a guardian's or a spouse's. */
static void subject_of(const bg_decide_input_t *in, const bg_route_policy_t *rp, int r,
                       const int *attr, subject_info_t *s)
{
    char buf[64];
    s->raw_len = 0;
    s->by_device = 0;
    s->minor = 0;
    s->guardian = 0;
    s->region[0] = '\0';
    s->region_caller = 0;
    if (in->insp == NULL)
        return;
    if (rp->subject_id != NULL) {
        int n = bg_inspection_value(in->insp, rp->subject_id, r, s->raw, sizeof s->raw);
        if (n < 0 && r >= 0)
            n = bg_inspection_value(in->insp, rp->subject_id, -1, s->raw, sizeof s->raw);
        s->raw_len = n > 0 ? (size_t)n : 0;
    }
    /* No account id: the device stands for its person (one person per
     * device, an upper bound on the people counted). The user id wins
     * whenever there is one. */
    if (s->raw_len == 0 && rp->subject_device != NULL) {
        int n = bg_inspection_value(in->insp, rp->subject_device, r, s->raw, sizeof s->raw);
        if (n < 0 && r >= 0)
            n = bg_inspection_value(in->insp, rp->subject_device, -1, s->raw, sizeof s->raw);
        s->raw_len = n > 0 ? (size_t)n : 0;
        s->by_device = s->raw_len > 0;
    }
    /* The gateway's header speaks for the request's one subject; in a
     * batch each record's own region is read (and is the caller's word). */
    const bg_http_header_t *gh =
        rp->region_header != NULL && r < 0
            ? bg_http_find_header(in->headers, in->nheaders, rp->region_header)
            : NULL;
    if (gh != NULL && gh->value_len == 2 && isalpha((unsigned char)gh->value[0]) &&
        isalpha((unsigned char)gh->value[1])) {
        s->region[0] = (char)toupper((unsigned char)gh->value[0]);
        s->region[1] = (char)toupper((unsigned char)gh->value[1]);
        s->region[2] = '\0';
    } else if (rp->subject_region != NULL) {
        int n = bg_inspection_value(in->insp, rp->subject_region, r, buf, sizeof buf);
        if (n < 0 && r >= 0)
            n = bg_inspection_value(in->insp, rp->subject_region, -1, buf, sizeof buf);
        if (n == 2) {
            s->region[0] = (char)toupper((unsigned char)buf[0]);
            s->region[1] = (char)toupper((unsigned char)buf[1]);
            s->region[2] = '\0';
            s->region_caller = 1;
        }
    }
    int age = -1;
    if (rp->birth_date != NULL) {
        int n = bg_inspection_value(in->insp, rp->birth_date, r, buf, sizeof buf);
        if (n < 0 && r >= 0)
            n = bg_inspection_value(in->insp, rp->birth_date, -1, buf, sizeof buf);
        if (n > 0)
            age = age_from(buf, in->now_ms);
    }
    if (age < 0) {
        /* The resident ID number carries the birth date (GB 11643 digits 7-14). */
        size_t nf = bg_inspection_count(in->insp);
        for (size_t i = 0; i < nf && age < 0; i++) {
            bg_finding_t *f = bg_inspection_finding(in->insp, i);
            if ((f->category != BG_CAT_CN_RESIDENT_ID &&
                 f->category != BG_CAT_HMT_RESIDENCE_PERMIT) ||
                attr[i] != (r >= 0 ? r : 0))
                continue;
            char id[64];
            int n = bg_inspection_finding_value(in->insp, f, id, sizeof id);
            char digits[20];
            size_t k = 0;
            for (int j = 0; j < n && k < 18; j++)
                if (isdigit((unsigned char)id[j]) || id[j] == 'X' || id[j] == 'x')
                    digits[k++] = id[j];
            if (k == 18) {
                char bd[9];
                memcpy(bd, digits + 6, 8);
                bd[8] = '\0';
                age = age_from(bd, in->now_ms);
            }
            bg_util_wipe(id, sizeof id);
        }
    }
    s->minor = age >= 0 && age < in->policy->minor_age;
    s->guardian = age >= 0 && (age < in->policy->guardian_age || s->minor);
}

/* The selector that anchors the route's subject: where its id is, else its
 * device id, else its region, else its birth date (NULL: the request or
 * record itself). */
static const char *subject_selector(const bg_route_policy_t *rp)
{
    return rp->subject_id != NULL       ? rp->subject_id
           : rp->subject_device != NULL ? rp->subject_device
           : rp->subject_region != NULL ? rp->subject_region
                                        : rp->birth_date;
}

/*
 * Attribute every finding to a subject (policy/attribute.h): ATTR[i] is the
 * subject index (the record in a batch, 0 for the request) when finding i
 * sits in the subject's own person object or around it, -1 when it sits in
 * another person's object or outside every record. OWNER[i] is the length of
 * the prefix of its path naming its person object (for the record). O(n).
 */
static void attribute_findings(const bg_decide_input_t *in, const bg_route_policy_t *rp,
                               int records, int *attr, size_t *owner)
{
    size_t nf = bg_inspection_count(in->insp);
    const char *sel = subject_selector(rp);
    /* The subject's person object inside its record (or the request):
     * "$.requester" for "$.requester.external_id", "" for "$.uid". */
    size_t sel_owner = sel != NULL ? bg_attribute_owner(sel, NULL, 0) : 0;
    for (size_t i = 0; i < nf; i++) {
        bg_finding_t *f = bg_inspection_finding(in->insp, i);
        /* Findings inside a whole-object finding follow it directly. */
        int container = 0;
        if (i + 1 < nf) {
            const char *next = bg_inspection_finding(in->insp, i + 1)->path;
            size_t pl = strlen(f->path);
            container = strncmp(next, f->path, pl) == 0 &&
                        (next[pl] == '.' || next[pl] == '[' || next[pl] == '(');
        }
        owner[i] = bg_attribute_owner(f->path, records > 0 ? rp->records : NULL, container);
        if (records > 0 && (f->record < 0 || f->record >= records)) {
            attr[i] = -1;
            continue;
        }
        char anchor[512];
        size_t alen = 0;
        if (records > 0) {
            alen = bg_attribute_record_prefix(f->path, rp->records);
            if (alen == 0 || alen >= sizeof anchor) {
                attr[i] = -1;
                continue;
            }
            memcpy(anchor, f->path, alen);
        }
        if (sel_owner > 1 && alen + sel_owner < sizeof anchor) {
            /* In a record, the selector's part after its "$". */
            size_t skip = records > 0 ? 1 : 0;
            memcpy(anchor + alen, sel + skip, sel_owner - skip);
            alen += sel_owner - skip;
        }
        anchor[alen] = '\0';
        int mine = bg_attribute_covers(f->path, owner[i], anchor, alen);
        attr[i] = mine ? (records > 0 ? f->record : 0) : -1;
    }
}

/* Add a reason a basis did not hold; the earlier ones stay (the 451 should
 * say every basis that was tried and why it failed). */
static void why_add(bg_finding_decision_t *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void why_add(bg_finding_decision_t *x, const char *fmt, ...)
{
    size_t n = strlen(x->why);
    if (n > 0 && n + 2 < sizeof x->why) {
        memcpy(x->why + n, "; ", 3);
        n += 2;
    }
    if (n + 1 >= sizeof x->why)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why + n, sizeof x->why - n, fmt, ap);
    va_end(ap);
}

static int contract_necessary(const bg_route_policy_t *rp, const bg_finding_t *f)
{
    if (rp->contract.necessary >> f->category & 1)
        return 1;
    for (int i = 0; i < rp->contract.nnecessary_paths; i++)
        if (path_covers(rp->contract.necessary_paths[i], f->path))
            return 1;
    return 0;
}

static int reference_present(const bg_decide_input_t *in, const bg_route_policy_t *rp, int r)
{
    char buf[128];
    int n = bg_inspection_value(in->insp, rp->contract.reference_path, r, buf, sizeof buf);
    if (n <= 0 && r >= 0)
        n = bg_inspection_value(in->insp, rp->contract.reference_path, -1, buf, sizeof buf);
    return n > 0;
}

/* What bg_decide's steps share: the inputs, the decision being built, and
 * the per-subject and per-record state of a cross-border request. */
typedef struct {
    const bg_decide_input_t *in;
    bg_decision_t *d;
    const bg_policy_t *p;
    const bg_route_policy_t *rp;
    const bg_recipient_t *rcp;
    const char *recip_id;
    subject_info_t *subs;    /* nsubjects entries; raw ids wiped before free */
    int *attr;               /* per finding: its subject (attribute_findings) */
    size_t *owner;           /* per finding: the other person's path length, 0 */
    uint8_t *record_removed; /* per record */
    uint8_t *record_changed; /* per record */
    bg_outcome_t out;        /* the outcome so far */
} decide_ctx_t;

/* One finding being decided: its decision, the finding, its subject (-1:
 * none), the record it is in (-1: not a batch) and the rule's bases. */
typedef struct {
    bg_finding_decision_t *x;
    const bg_finding_t *f;
    size_t index;
    int si;
    int rec;
    const bg_rule_t *rule;
} finding_ctx_t;

/*
 * The legal bases, each one function, tried in the documented order
 * (docs/policy.md, "How a decision is made", step 4): the first that holds
 * sets x->basis and x->evidence; one that does not hold may say why
 * (why_add), so the 451 lists every basis tried.
 */
/* A basis the route declares with a reference (legal obligation, HR
 * management, emergency): it holds when declared. */
static void declared(finding_ctx_t *fc, const bg_declared_basis_t *b, bg_basis_t basis)
{
    if (!b->present)
        return;
    fc->x->basis = basis;
    bg_util_cat(fc->x->evidence, sizeof fc->x->evidence, b->reference);
}

static void legal_obligation(decide_ctx_t *c, finding_ctx_t *fc)
{
    declared(fc, &c->rp->legal_obligation, BG_BASIS_LEGAL_OBLIGATION);
}

static void hr(decide_ctx_t *c, finding_ctx_t *fc)
{
    declared(fc, &c->rp->hr, BG_BASIS_HR_MANAGEMENT);
}

static void emergency(decide_ctx_t *c, finding_ctx_t *fc)
{
    declared(fc, &c->rp->emergency, BG_BASIS_EMERGENCY);
}

/* Contract necessity: the route declares a contract, the finding is
 * necessary for it, and the contract's reference is in the request. */
static void contract(decide_ctx_t *c, finding_ctx_t *fc)
{
    const bg_route_policy_t *rp = c->rp;
    bg_finding_decision_t *x = fc->x;
    if (!rp->contract.present)
        return;
    if (!contract_necessary(rp, fc->f)) {
        why_add(x, "not necessary for the %s contract", rp->contract.purpose);
    } else if (rp->contract.reference_required && !reference_present(c->in, rp, fc->rec)) {
        /* A "$." reference cannot be found in a form, nor "form."
         * in a JSON body: say so, the policy is wrong, not the
         * request (bordergate check warns where it can tell). */
        const char *ref = rp->contract.reference_path;
        bg_body_kind_t bk = bg_inspection_body_kind(c->in->insp);
        int wrong_kind = (ref[0] == '$' && bk == BG_BODY_FORM) ||
                         (strncmp(ref, "form.", 5) == 0 && bk == BG_BODY_JSON);
        why_add(x, "contract reference missing at %s%s", ref,
                !wrong_kind          ? ""
                : bk == BG_BODY_FORM ? " (the body is a form: the reference is form.NAME)"
                                     : " (the body is JSON: the reference is a $. path)");
    } else {
        x->basis = BG_BASIS_CONTRACT;
        bg_util_cat(x->evidence, sizeof x->evidence, "contract:", rp->contract.purpose,
                    rp->contract.reference_path ? "; reference at " : "",
                    rp->contract.reference_path ? rp->contract.reference_path : "");
    }
}

/* Separate consent in the registry for the finding's own subject. */
static void consent(decide_ctx_t *c, finding_ctx_t *fc)
{
    const bg_decide_input_t *in = c->in;
    const bg_route_policy_t *rp = c->rp;
    bg_finding_decision_t *x = fc->x;
    int si = fc->si;
    if (c->d->dnt) {
        why_add(x, "DNT/Sec-GPC opt-out for purpose %s", rp->purpose);
    } else if (in->consent == NULL) {
        why_add(x, "no consent registry configured");
    } else if (si < 0 && c->owner[fc->index] > 0) {
        size_t own = c->owner[fc->index];
        why_add(x, "belongs to another person (%.*s) than the route's subject",
                (int)(own < 100 ? own : 100), fc->f->path);
    } else if (si < 0 || c->subs[si].raw_len == 0) {
        why_add(x, "no subject id (route subjects.id or subjects.device_id) to look consent up");
    } else {
        bg_consent_query_t q;
        bg_consent_match_t m;
        memset(&q, 0, sizeof q);
        q.subject = c->subs[si].raw;
        q.subject_len = c->subs[si].raw_len;
        q.recipient = c->recip_id;
        q.purpose = rp->purpose != NULL ? rp->purpose : "";
        q.country = in->geo->country[0] ? in->geo->country : "ZZ";
        q.need_sensitive = x->sensitive;
        q.need_guardian = c->subs[si].guardian;
        q.at = in->now_ms;
        memset(&m, 0, sizeof m);
        if (bg_consent_find(in->consent, &q, &m) == 1) {
            x->basis = BG_BASIS_CONSENT;
            snprintf(x->evidence, sizeof x->evidence, "consent:%s%s%.100s", m.consent.id,
                     m.consent.evidence[0] ? "; evidence " : "", m.consent.evidence);
        } else {
            why_add(x, "no consent (%s)%s%s", bg_consent_miss_name(m.miss),
                    m.miss_id[0] ? ", closest " : "", m.miss_id);
        }
    }
}

/* The subject is outside mainland China, where the policy allows it. */
static void subject_abroad(decide_ctx_t *c, finding_ctx_t *fc)
{
    const subject_info_t *s = fc->si >= 0 ? &c->subs[fc->si] : NULL;
    bg_finding_decision_t *x = fc->x;
    if (!c->p->subject_abroad_allowed || s == NULL || s->region[0] == '\0' ||
        strcmp(s->region, "CN") == 0)
        return;
    if (s->guardian) {
        /* a child abroad still needs a guardian's consent */
        why_add(x, "subject abroad does not apply: the subject needs a guardian's "
                   "consent (policy guardian_consent_age)");
    } else if (s->region_caller && c->p->region_gateway_only) {
        why_add(x,
                "subject region asserted by the caller (%s); the policy takes it only "
                "from the gateway header%s%s",
                c->rp->subject_region, c->rp->region_header ? " " : "",
                c->rp->region_header ? c->rp->region_header : "");
    } else {
        x->basis = BG_BASIS_SUBJECT_ABROAD;
        x->asserted_by = s->region_caller ? "caller" : "gateway";
        snprintf(x->evidence, sizeof x->evidence, "subject region %s", s->region);
    }
}

/* The documented order; a rule's bases (a bit per bg_basis_t) say which are
 * tried at all. */
static const struct {
    bg_basis_t basis;
    void (*holds)(decide_ctx_t *c, finding_ctx_t *fc);
} legal_bases[] = {
    {BG_BASIS_LEGAL_OBLIGATION, legal_obligation},
    {BG_BASIS_HR_MANAGEMENT, hr},
    {BG_BASIS_EMERGENCY, emergency},
    {BG_BASIS_CONTRACT, contract},
    {BG_BASIS_CONSENT, consent},
    {BG_BASIS_SUBJECT_ABROAD, subject_abroad},
};

/* Step 0: a domestic destination is not a cross-border transfer. Findings
 * (if inspected) are recorded, nothing is changed. Returns -1 out of memory. */
static int decide_domestic(const bg_decide_input_t *in, bg_decision_t *d)
{
    size_t nf = in->insp != NULL ? bg_inspection_count(in->insp) : 0;
    d->would = d->outcome = BG_OUTCOME_ALLOW;
    if (nf == 0)
        return 0; /* nothing to list (fd stays NULL, nfd 0) */
    d->fd = calloc(nf, sizeof *d->fd);
    if (d->fd == NULL)
        return -1;
    for (size_t i = 0; i < nf; i++) {
        bg_finding_decision_t *x = &d->fd[d->nfd++];
        x->finding = i;
        x->action = BG_ACT_ALLOW;
        x->rule = "domestic";
        x->subject = -1;
        x->sensitive = bg_inspection_finding(in->insp, i)->sensitive;
    }
    return 0;
}

/* Steps 1-2: what is refused (or allowed) before any finding is looked at:
 * a denylisted recipient, a request not inspected, a body bordergate cannot
 * read. Returns 1 when the outcome is settled (in c->out), 0 to go on. */
static int refuse_unreadable(decide_ctx_t *c)
{
    const bg_decide_input_t *in = c->in;
    bg_decision_t *d = c->d;
    if (c->rcp != NULL && c->rcp->denylisted) {
        add_reason(d, "recipient_denylisted", NULL, NULL, NULL,
                   "recipient %s is on a list under PIPL Art. 42%s%s", c->recip_id,
                   c->rcp->denylist_ref ? ": " : "",
                   c->rcp->denylist_ref ? c->rcp->denylist_ref : "");
        c->out = BG_OUTCOME_BLOCK;
        return 1;
    }
    if (in->insp == NULL) {
        add_reason(d, "not_inspected", NULL, NULL, NULL, "cross-border request was not inspected");
        c->out = BG_OUTCOME_BLOCK;
        return 1;
    }
    bg_body_kind_t kind = bg_inspection_body_kind(in->insp);
    if (kind == BG_BODY_UNDECODABLE && !c->p->undecodable_allow) {
        add_reason(d, "undecodable", NULL, NULL, NULL, "%s", bg_inspection_undecodable(in->insp));
        c->out = BG_OUTCOME_BLOCK;
        return 1;
    }
    if (kind == BG_BODY_UNDECODABLE) {
        /* Allowed by policy: the body goes uninspected. Findings made before
         * decoding failed are not acted on (nothing would be rewritten). */
        add_reason(d, "undecodable_allowed", NULL, NULL, NULL, "%s (policy.undecodable is allow)",
                   bg_inspection_undecodable(in->insp));
        c->out = BG_OUTCOME_ALLOW;
        return 1;
    }
    const char *opaque = bg_inspection_opaque(in->insp);
    if ((kind == BG_BODY_OTHER || opaque != NULL) && !c->rp->opaque_allow) {
        add_reason(d, "opaque_body", NULL, NULL, NULL,
                   "%s; the route does not allow opaque data abroad",
                   opaque != NULL ? opaque : "the body's content type is not inspected");
        c->out = BG_OUTCOME_BLOCK;
        return 1;
    }
    return 0;
}

/* DNT / Sec-GPC withdraws consent for the purposes the policy names. */
static void honour_opt_out(decide_ctx_t *c)
{
    const char *purpose = c->rp->purpose;
    int honoured = 0;
    if (!opted_out(c->in) || purpose == NULL)
        return;
    for (int i = 0; i < c->p->ndnt_purposes; i++)
        honoured |= strcmp(c->p->dnt_purposes[i], purpose) == 0;
    c->d->dnt = honoured;
}

/* The subjects (one per record, or one for the request), their pseudonyms,
 * and whose each finding is. Allocates what c and d own; -1 out of memory
 * (the caller frees). */
static int find_subjects(decide_ctx_t *c)
{
    bg_decision_t *d = c->d;
    d->records = bg_inspection_records(c->in->insp);
    int nsub = d->records > 0 ? d->records : 1;
    size_t nf = bg_inspection_count(c->in->insp);
    size_t ns = (size_t)nsub;
    /* The decision's four per-subject arrays in one block (freed through
     * subject_minor, its start), the context's five in another (through
     * subs): two allocations instead of nine. Largest alignment first. */
    char *db = calloc(1, ns * (3 * sizeof(int) + sizeof *d->subjects));
    char *cb =
        calloc(1, ns * sizeof *c->subs + (nf + 1) * (sizeof *c->owner + sizeof *c->attr) + 2 * ns);
    d->fd = calloc(nf + 1, sizeof *d->fd);
    if (db == NULL || cb == NULL || d->fd == NULL) {
        free(db);
        free(cb);
        return -1;
    }
    d->subject_minor = (int *)(void *)db;
    d->subject_guardian = d->subject_minor + ns;
    d->subject_by_device = d->subject_guardian + ns;
    d->subjects = (char(*)[65])(void *)(d->subject_by_device + ns);
    c->subs = (subject_info_t *)(void *)cb;
    c->owner = (size_t *)(void *)(c->subs + ns);
    c->attr = (int *)(void *)(c->owner + nf + 1);
    c->record_removed = (uint8_t *)(void *)(c->attr + nf + 1);
    c->record_changed = c->record_removed + ns;
    d->nsubjects = nsub;
    attribute_findings(c->in, c->rp, d->records, c->attr, c->owner);
    for (int s = 0; s < nsub; s++) {
        subject_info_t *si = &c->subs[s];
        subject_of(c->in, c->rp, d->records > 0 ? s : -1, c->attr, si);
        if (si->raw_len > 0)
            pseudonym(c->p, si->raw, si->raw_len, d->subjects[s]);
        d->subject_by_device[s] = si->by_device;
        d->subject_minor[s] = si->minor;
        d->subject_guardian[s] = si->guardian;
    }
    return 0;
}

/* The finding's value as its pseudonym (the raw value lives on this stack
 * frame only and is wiped). */
static void pseudonymize_value(decide_ctx_t *c, const bg_finding_t *f, bg_finding_decision_t *x)
{
    char v[256], canon[256];
    int vl = bg_inspection_finding_value(c->in->insp, f, v, sizeof v);
    size_t cl = vl > 0 ? canonical_identifier(f->category, v, (size_t)vl, canon, sizeof canon) : 0;
    if (cl > 0)
        pseudonym(c->p, canon, cl, x->value_pseudonym);
    bg_util_wipe(v, sizeof v);
    bg_util_wipe(canon, sizeof canon);
}

/* Step 3: never-export categories are removed, or block the request. */
static void never_export(decide_ctx_t *c, finding_ctx_t *fc)
{
    bg_finding_decision_t *x = fc->x;
    const char *cat = bg_detect_category_id(fc->f->category);
    x->rule = "never_export";
    if (c->p->never_export_block) {
        x->action = BG_ACT_BLOCK;
        add_reason(c->d, "never_export", "never_export", cat, fc->f->path, "%s may never leave",
                   cat);
        c->out = BG_OUTCOME_BLOCK;
    } else {
        x->action = BG_ACT_REMOVE;
        x->op = BG_OP_REDACT;
        x->anonymized = 1;
    }
}

/* Step 8: no basis held; the rule's fallback (or the policy's default)
 * de-identifies, removes the field or the record, or blocks. */
static void apply_fallback(decide_ctx_t *c, finding_ctx_t *fc)
{
    const bg_policy_t *p = c->p;
    const bg_rule_t *rule = fc->rule;
    bg_finding_decision_t *x = fc->x;
    int rec = fc->rec;
    if (x->why[0] == '\0')
        snprintf(x->why, sizeof x->why,
                 rule != NULL ? "no legal basis held" : "no rule covers this category");
    bg_fallback_t fb = rule != NULL ? rule->fallback : p->default_fallback;
    const bg_op_t *fop = rule != NULL && rule->has_op ? &rule->op
                         : rule == NULL && p->has_default_fallback_op
                             ? &p->default_fallback_op
                             : bg_policy_operator(p, fc->f->category);
    if (fb == BG_FALLBACK_DEIDENTIFY && !bg_op_anonymizes(fop->kind)) {
        /* Pseudonymized output is still PI (PIPL Art. 73): without a
         * basis it may leave only where the rule says so explicitly. */
        if (rule != NULL && rule->accept_pseudonymized) {
            x->pseudonymized_accepted = 1;
        } else {
            why_add(x,
                    "%s output is still personal information (PIPL Art. 73) and %s does not "
                    "accept pseudonymized transfers without a basis",
                    bg_op_name(fop->kind), rule != NULL ? "the rule" : "the default fallback");
            fb = BG_FALLBACK_BLOCK;
        }
    }
    if (fb == BG_FALLBACK_BLOCK) {
        if (rec >= 0) {
            x->action = BG_ACT_REMOVE_RECORD;
            x->anonymized = 1;
            c->record_removed[rec] = 1;
        } else {
            const char *cat = bg_detect_category_id(fc->f->category);
            x->action = BG_ACT_BLOCK;
            add_reason(c->d, "no_basis", x->rule, cat, fc->f->path, "%s to %s: %s", cat,
                       c->recip_id, x->why);
            c->out = BG_OUTCOME_BLOCK;
        }
    } else if (fb == BG_FALLBACK_REMOVE) {
        x->action = BG_ACT_REMOVE;
        x->op = BG_OP_REDACT;
        x->anonymized = 1;
        if (rec >= 0)
            c->record_changed[rec] = 1;
    } else {
        x->action = fop->kind == BG_OP_REDACT ? BG_ACT_REMOVE : BG_ACT_DEIDENTIFY;
        x->op = fop->kind;
        x->anonymized = bg_op_anonymizes(fop->kind);
        if (rec >= 0)
            c->record_changed[rec] = 1;
    }
}

/* Steps 3-8 for finding I: never-export, then the legal bases in order,
 * then the fallback. */
static void decide_finding(decide_ctx_t *c, size_t i)
{
    bg_decision_t *d = c->d;
    finding_ctx_t fc;
    memset(&fc, 0, sizeof fc);
    fc.index = i;
    fc.f = bg_inspection_finding(c->in->insp, i);
    fc.x = &d->fd[d->nfd++];
    fc.si = c->attr[i];
    fc.rec = d->records > 0 ? fc.f->record : -1;
    bg_finding_decision_t *x = fc.x;
    x->finding = i;
    x->subject = fc.si;
    x->sensitive = fc.f->sensitive || (fc.si >= 0 && c->subs[fc.si].minor);
    x->basis = BG_BASIS_NONE;
    pseudonymize_value(c, fc.f, x);

    if (c->p->never_export >> fc.f->category & 1) {
        never_export(c, &fc);
        return;
    }
    int ri = c->rp->rule_for[fc.f->category];
    fc.rule = ri >= 0 ? &c->p->rules[ri] : NULL;
    x->rule = fc.rule != NULL ? fc.rule->id : "default";
    x->clause = fc.rule != NULL ? fc.rule->clause : NULL;
    unsigned bases = fc.rule != NULL ? fc.rule->bases : 0;
    for (size_t b = 0; b < sizeof legal_bases / sizeof legal_bases[0]; b++) {
        if (x->basis != BG_BASIS_NONE)
            break;
        if (bases & 1u << legal_bases[b].basis)
            legal_bases[b].holds(c, &fc);
    }
    if (x->basis != BG_BASIS_NONE) {
        x->action = BG_ACT_ALLOW;
        return;
    }
    apply_fallback(c, &fc);
}

/* Findings in removed records are gone with them; count the records by
 * what happened to them. */
static void settle_records(decide_ctx_t *c)
{
    bg_decision_t *d = c->d;
    for (size_t i = 0; i < d->nfd; i++) {
        bg_finding_t *f = bg_inspection_finding(c->in->insp, d->fd[i].finding);
        if (d->records > 0 && f->record >= 0 && c->record_removed[f->record] &&
            d->fd[i].action != BG_ACT_REMOVE_RECORD) {
            d->fd[i].action = BG_ACT_REMOVE_RECORD;
            d->fd[i].anonymized = 1;
        }
    }
    for (int r = 0; r < d->records; r++) {
        if (c->record_removed[r])
            d->records_removed++;
        else if (c->record_changed[r])
            d->records_deidentified++;
        else
            d->records_allowed++;
    }
    if (d->records > 0 && d->records_removed == d->records) {
        /* Every record removed: an empty batch would still go; say so. */
        add_reason(d, "all_records_removed", NULL, NULL, c->rp->records,
                   "no record had a legal basis");
    }
}

/* The transfer mechanism for PI that still leaves, now that removed records
 * are gone (pseudonymized output is still PI, PIPL Art. 73). */
static void require_mechanism(decide_ctx_t *c)
{
    bg_decision_t *d = c->d;
    const bg_recipient_t *rcp = c->rcp;
    int pi_leaving = 0, leaving_sensitive = 0, leaving_needs_mechanism = 0;
    for (size_t i = 0; i < d->nfd; i++) {
        const bg_finding_decision_t *x = &d->fd[i];
        int leaves =
            x->action == BG_ACT_ALLOW || (x->action == BG_ACT_DEIDENTIFY && !x->anonymized);
        if (!leaves)
            continue;
        pi_leaving = 1;
        leaving_sensitive |= x->sensitive;
        if (x->action != BG_ACT_ALLOW || x->basis == BG_BASIS_CONSENT ||
            x->basis == BG_BASIS_SUBJECT_ABROAD || x->basis == BG_BASIS_LEGAL_OBLIGATION)
            leaving_needs_mechanism = 1;
    }
    if (!pi_leaving || c->out == BG_OUTCOME_BLOCK)
        return;
    if (rcp == NULL) {
        add_reason(d, "no_recipient", NULL, NULL, NULL,
                   "personal information would leave on route %s, which declares no recipient",
                   c->in->route->id);
        c->out = BG_OUTCOME_BLOCK;
    } else if (rcp->mechanism != BG_MECH_NONE &&
               (rcp->mechanism_expires_ms == 0 || rcp->mechanism_expires_ms > c->in->now_ms)) {
        bg_util_cat(d->mechanism, sizeof d->mechanism, bg_mechanism_name(rcp->mechanism), ":",
                    rcp->mechanism_ref ? rcp->mechanism_ref : "");
    } else if (rcp->exemption != BG_EXEMPT_NONE &&
               !(rcp->exemption == BG_EXEMPT_VOLUME && leaving_sensitive)) {
        bg_util_cat(d->mechanism, sizeof d->mechanism,
                    "exempt:", bg_exemption_name(rcp->exemption));
    } else if (!leaving_needs_mechanism) {
        /* Contract, HR and emergency transfers are exempt (CAC 2024 Art. 5). */
        bg_util_cat(d->mechanism, sizeof d->mechanism, "exempt:basis");
    } else if (rcp->mechanism != BG_MECH_NONE) {
        bg_util_cat(d->mechanism, sizeof d->mechanism, "expired");
        add_reason(d, "transfer_mechanism_expired", NULL, NULL, NULL,
                   "the %s with %s (%s) has expired", bg_mechanism_name(rcp->mechanism),
                   c->recip_id, rcp->mechanism_ref ? rcp->mechanism_ref : "");
        c->out = BG_OUTCOME_BLOCK;
    } else {
        bg_util_cat(d->mechanism, sizeof d->mechanism, "missing");
        add_reason(d, "no_transfer_mechanism", NULL, NULL, NULL,
                   "no standard contract, certification or security assessment is in place with %s",
                   c->recip_id);
        c->out = BG_OUTCOME_BLOCK;
    }
}

/* Frees what find_subjects allocated in C (not what the decision owns),
 * wiping the raw subject ids first. */
static void decide_ctx_free(decide_ctx_t *c)
{
    for (int s = 0; c->subs != NULL && s < c->d->nsubjects; s++)
        bg_util_wipe(c->subs[s].raw, sizeof c->subs[s].raw);
    free(c->subs); /* the block of all five (find_subjects) */
}

int bg_decide(const bg_decide_input_t *in, bg_decision_t *d)
{
    decide_ctx_t c;
    memset(&c, 0, sizeof c);
    c.in = in;
    c.d = d;
    c.p = in->policy;
    c.rp = &c.p->routes[in->route_index];
    c.rcp = c.rp->recipient;
    c.recip_id = c.rcp != NULL ? c.rcp->id : "(none)";
    c.out = BG_OUTCOME_ALLOW;

    memset(d, 0, BG_DECISION_RESET_BYTES);
    d->monitor = c.rp->monitor;
    d->cross_border = bg_geo_is_cross_border(in->geo);
    d->inspected = in->insp != NULL;
    bg_util_cat(d->mechanism, sizeof d->mechanism, "not_needed");

    if (!d->cross_border)
        return decide_domestic(in, d);
    if (!refuse_unreadable(&c)) {
        honour_opt_out(&c);
        if (find_subjects(&c) != 0) {
            decide_ctx_free(&c);
            return -1;
        }
        size_t nf = bg_inspection_count(in->insp);
        for (size_t i = 0; i < nf; i++)
            decide_finding(&c, i);
        settle_records(&c);
        require_mechanism(&c);
        if (c.out != BG_OUTCOME_BLOCK) {
            for (size_t i = 0; i < d->nfd; i++)
                if (d->fd[i].action != BG_ACT_ALLOW)
                    c.out = BG_OUTCOME_DEIDENTIFY;
        }
        decide_ctx_free(&c);
    }
    d->would = c.out;
    d->outcome = d->monitor ? BG_OUTCOME_ALLOW : c.out;
    return 0;
}

void bg_decision_free(bg_decision_t *d)
{
    free(d->fd);
    free(d->subject_minor); /* the block of the four per-subject arrays */
    memset(d, 0, BG_DECISION_RESET_BYTES);
}

int bg_decision_apply(bg_decision_t *d, bg_inspection_t *insp, const bg_policy_t *p)
{
    if (d->would != BG_OUTCOME_DEIDENTIFY || insp == NULL)
        return 0;
    bg_op_keys_t keys = bg_policy_keys(p);
    char err[160];
    for (size_t i = 0; i < d->nfd; i++) {
        bg_finding_decision_t *x = &d->fd[i];
        bg_finding_t *f = bg_inspection_finding(insp, x->finding);
        if (x->action == BG_ACT_REMOVE_RECORD) {
            if (!f->removed && bg_inspection_remove_record(insp, f->record) != 0)
                goto fail;
        }
    }
    for (size_t i = 0; i < d->nfd; i++) {
        bg_finding_decision_t *x = &d->fd[i];
        bg_finding_t *f = bg_inspection_finding(insp, x->finding);
        if ((x->action != BG_ACT_DEIDENTIFY && x->action != BG_ACT_REMOVE) || f->removed)
            continue;
        const bg_op_t *op = NULL;
        bg_op_t redact = {.kind = BG_OP_REDACT};
        if (x->action == BG_ACT_REMOVE) {
            op = &redact;
        } else {
            int ri = -1;
            for (int k = 0; k < p->nrules; k++)
                if (x->rule != NULL && strcmp(p->rules[k].id, x->rule) == 0)
                    ri = k;
            op = ri >= 0 && p->rules[ri].has_op         ? &p->rules[ri].op
                 : ri < 0 && p->has_default_fallback_op ? &p->default_fallback_op
                                                        : bg_policy_operator(p, f->category);
        }
        if (bg_inspection_apply(insp, x->finding, op, &keys, err, sizeof err) != 0) {
            snprintf(x->why, sizeof x->why, "%.90s", err);
            goto fail;
        }
    }
    return 0;
fail:
    add_reason(d, "operator_failed", NULL, NULL, NULL, "de-identification failed: %s", err);
    d->would = BG_OUTCOME_BLOCK;
    if (!d->monitor)
        d->outcome = BG_OUTCOME_BLOCK;
    return -1;
}
