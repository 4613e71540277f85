#include "policy/decide.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/hmac.h>

#include "common/util.h"
#include "policy/attribute.h"

static const char *const outcome_names[] = {"allow", "deidentify", "block"};
static const char *const action_names[] = {"allow", "deidentify", "remove", "remove_record",
                                           "block"};

const char *bg_outcome_name(bg_outcome_t o)
{
    return (unsigned)o < 3 ? outcome_names[o] : "?";
}
const char *bg_action_name(bg_action_t a)
{
    return (unsigned)a < 5 ? action_names[a] : "?";
}

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
    snprintf(r->code, sizeof r->code, "%s", code);
    snprintf(r->rule, sizeof r->rule, "%s", rule ? rule : "");
    snprintf(r->category, sizeof r->category, "%s", category ? category : "");
    snprintf(r->path, sizeof r->path, "%s", path ? path : "");
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
    time_t t = (time_t)(now_ms / 1000) + 8 * 3600; /* China Standard Time */
    struct tm tm;
    gmtime_r(&t, &tm);
    int age = tm.tm_year + 1900 - y;
    if (tm.tm_mon + 1 < m || (tm.tm_mon + 1 == m && tm.tm_mday < d))
        age--;
    return age;
}

static void pseudonym(const bg_policy_t *p, const char *id, size_t len, char out[65])
{
    unsigned char mac[32];
    unsigned int ml = 0;
    const unsigned char *key = p->subject_key_len > 0 ? p->subject_key : p->pseudonym_key;
    size_t kl = p->subject_key_len > 0 ? p->subject_key_len : p->pseudonym_key_len;
    out[0] = '\0';
    if (kl == 0 ||
        HMAC(EVP_sha256(), key, (int)kl, (const unsigned char *)id, len, mac, &ml) == NULL)
        return; /* no key: the record says the subject is unknown rather than hold a raw id */
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
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
 * region, else its birth date (NULL: the request or record itself). */
static const char *subject_selector(const bg_route_policy_t *rp)
{
    return rp->subject_id != NULL       ? rp->subject_id
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

int bg_decide(const bg_decide_input_t *in, bg_decision_t *d)
{
    const bg_policy_t *p = in->policy;
    const bg_route_policy_t *rp = &p->routes[in->route_index];
    const bg_recipient_t *rcp = rp->recipient;
    const char *recip_id = rcp != NULL ? rcp->id : "(none)";

    memset(d, 0, sizeof *d);
    d->monitor = rp->monitor;
    d->cross_border = bg_geo_is_cross_border(in->geo);
    d->inspected = in->insp != NULL;
    snprintf(d->mechanism, sizeof d->mechanism, "not_needed");
    bg_outcome_t out = BG_OUTCOME_ALLOW;

    if (!d->cross_border) {
        /* Domestic: not a cross-border transfer. Findings (if inspected)
         * are recorded, nothing is changed. */
        size_t nf = in->insp != NULL ? bg_inspection_count(in->insp) : 0;
        d->fd = calloc(nf + 1, sizeof *d->fd);
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
        d->would = d->outcome = BG_OUTCOME_ALLOW;
        return 0;
    }
    if (rcp != NULL && rcp->denylisted) {
        add_reason(d, "recipient_denylisted", NULL, NULL, NULL,
                   "recipient %s is on a list under PIPL Art. 42%s%s", recip_id,
                   rcp->denylist_ref ? ": " : "", rcp->denylist_ref ? rcp->denylist_ref : "");
        out = BG_OUTCOME_BLOCK;
        goto done;
    }
    if (in->insp == NULL) {
        add_reason(d, "not_inspected", NULL, NULL, NULL, "cross-border request was not inspected");
        out = BG_OUTCOME_BLOCK;
        goto done;
    }
    bg_body_kind_t kind = bg_inspection_body_kind(in->insp);
    if (kind == BG_BODY_UNDECODABLE && !p->undecodable_allow) {
        add_reason(d, "undecodable", NULL, NULL, NULL, "%s", bg_inspection_undecodable(in->insp));
        out = BG_OUTCOME_BLOCK;
        goto done;
    }
    if (kind == BG_BODY_UNDECODABLE) {
        /* Allowed by policy: the body goes uninspected. Findings made before
         * decoding failed are not acted on (nothing would be rewritten). */
        add_reason(d, "undecodable_allowed", NULL, NULL, NULL, "%s (policy.undecodable is allow)",
                   bg_inspection_undecodable(in->insp));
        out = BG_OUTCOME_ALLOW;
        goto done;
    }
    const char *opaque = bg_inspection_opaque(in->insp);
    if ((kind == BG_BODY_OTHER || opaque != NULL) && !rp->opaque_allow) {
        add_reason(d, "opaque_body", NULL, NULL, NULL,
                   "%s; the route does not allow opaque data abroad",
                   opaque != NULL ? opaque : "the body's content type is not inspected");
        out = BG_OUTCOME_BLOCK;
        goto done;
    }

    d->dnt = opted_out(in) && rp->purpose != NULL;
    if (d->dnt) {
        int honoured = 0;
        for (int i = 0; i < p->ndnt_purposes; i++)
            honoured |= strcmp(p->dnt_purposes[i], rp->purpose) == 0;
        d->dnt = honoured;
    }

    /* Subjects: one per record, or one for the request. */
    d->records = bg_inspection_records(in->insp);
    int nsub = d->records > 0 ? d->records : 1;
    subject_info_t *subs = calloc((size_t)nsub, sizeof *subs);
    d->subjects = calloc((size_t)nsub, sizeof *d->subjects);
    d->subject_minor = calloc((size_t)nsub, sizeof *d->subject_minor);
    d->subject_guardian = calloc((size_t)nsub, sizeof *d->subject_guardian);
    size_t nf = bg_inspection_count(in->insp);
    d->fd = calloc(nf + 1, sizeof *d->fd);
    if (subs == NULL || d->subjects == NULL || d->subject_minor == NULL ||
        d->subject_guardian == NULL || d->fd == NULL) {
        free(subs);
        return -1;
    }
    d->nsubjects = nsub;
    int *attr = malloc((nf + 1) * sizeof *attr);
    size_t *owner = malloc((nf + 1) * sizeof *owner);
    if (attr == NULL || owner == NULL) {
        free(attr);
        free(owner);
        free(subs);
        return -1;
    }
    attribute_findings(in, rp, d->records, attr, owner);
    for (int s = 0; s < nsub; s++) {
        subject_of(in, rp, d->records > 0 ? s : -1, attr, &subs[s]);
        if (subs[s].raw_len > 0)
            pseudonym(p, subs[s].raw, subs[s].raw_len, d->subjects[s]);
        d->subject_minor[s] = subs[s].minor;
        d->subject_guardian[s] = subs[s].guardian;
    }
    uint8_t *record_removed = calloc((size_t)nsub, 1);
    uint8_t *record_changed = calloc((size_t)nsub, 1);
    if (record_removed == NULL || record_changed == NULL) {
        free(subs);
        free(attr);
        free(owner);
        free(record_removed);
        free(record_changed);
        return -1;
    }
    int pi_leaving = 0, leaving_sensitive = 0, leaving_needs_mechanism = 0;

    for (size_t i = 0; i < nf; i++) {
        bg_finding_t *f = bg_inspection_finding(in->insp, i);
        bg_finding_decision_t *x = &d->fd[d->nfd++];
        int si = attr[i];
        const char *cat = bg_detect_category_id(f->category);
        x->finding = i;
        x->subject = si;
        x->sensitive = f->sensitive || (si >= 0 && subs[si].minor);
        x->basis = BG_BASIS_NONE;
        {
            /* The value is PI: it lives on this stack frame only. */
            char v[256], canon[256];
            int vl = bg_inspection_finding_value(in->insp, f, v, sizeof v);
            size_t cl =
                vl > 0 ? canonical_identifier(f->category, v, (size_t)vl, canon, sizeof canon) : 0;
            if (cl > 0)
                pseudonym(p, canon, cl, x->value_pseudonym);
            bg_util_wipe(v, sizeof v);
            bg_util_wipe(canon, sizeof canon);
        }

        if (p->never_export >> f->category & 1) {
            x->rule = "never_export";
            if (p->never_export_block) {
                x->action = BG_ACT_BLOCK;
                add_reason(d, "never_export", "never_export", cat, f->path, "%s may never leave",
                           cat);
                out = BG_OUTCOME_BLOCK;
            } else {
                x->action = BG_ACT_REMOVE;
                x->op = BG_OP_REDACT;
                x->anonymized = 1;
            }
            continue;
        }
        int ri = rp->rule_for[f->category];
        const bg_rule_t *rule = ri >= 0 ? &p->rules[ri] : NULL;
        x->rule = rule != NULL ? rule->id : "default";
        x->clause = rule != NULL ? rule->clause : NULL;
        unsigned bases = rule != NULL ? rule->bases : 0;
        int rec = d->records > 0 ? f->record : -1;

        if ((bases & 1u << BG_BASIS_LEGAL_OBLIGATION) && rp->legal_obligation.present) {
            x->basis = BG_BASIS_LEGAL_OBLIGATION;
            snprintf(x->evidence, sizeof x->evidence, "%s", rp->legal_obligation.reference);
        } else if ((bases & 1u << BG_BASIS_HR_MANAGEMENT) && rp->hr.present) {
            x->basis = BG_BASIS_HR_MANAGEMENT;
            snprintf(x->evidence, sizeof x->evidence, "%s", rp->hr.reference);
        } else if ((bases & 1u << BG_BASIS_EMERGENCY) && rp->emergency.present) {
            x->basis = BG_BASIS_EMERGENCY;
            snprintf(x->evidence, sizeof x->evidence, "%s", rp->emergency.reference);
        }
        if (x->basis == BG_BASIS_NONE && (bases & 1u << BG_BASIS_CONTRACT) &&
            rp->contract.present) {
            if (!contract_necessary(rp, f)) {
                why_add(x, "not necessary for the %s contract", rp->contract.purpose);
            } else if (rp->contract.reference_required && !reference_present(in, rp, rec)) {
                /* A "$." reference cannot be found in a form, nor "form."
                 * in a JSON body: say so, the policy is wrong, not the
                 * request (bordergate check warns where it can tell). */
                const char *ref = rp->contract.reference_path;
                bg_body_kind_t bk = bg_inspection_body_kind(in->insp);
                int wrong_kind = (ref[0] == '$' && bk == BG_BODY_FORM) ||
                                 (strncmp(ref, "form.", 5) == 0 && bk == BG_BODY_JSON);
                why_add(x, "contract reference missing at %s%s", ref,
                        !wrong_kind          ? ""
                        : bk == BG_BODY_FORM ? " (the body is a form: the reference is form.NAME)"
                                             : " (the body is JSON: the reference is a $. path)");
            } else {
                x->basis = BG_BASIS_CONTRACT;
                snprintf(x->evidence, sizeof x->evidence, "contract:%s%s%s", rp->contract.purpose,
                         rp->contract.reference_path ? "; reference at " : "",
                         rp->contract.reference_path ? rp->contract.reference_path : "");
            }
        }
        if (x->basis == BG_BASIS_NONE && (bases & 1u << BG_BASIS_CONSENT)) {
            if (d->dnt) {
                why_add(x, "DNT/Sec-GPC opt-out for purpose %s", rp->purpose);
            } else if (in->consent == NULL) {
                why_add(x, "no consent registry configured");
            } else if (si < 0 && owner[i] > 0) {
                why_add(x, "belongs to another person (%.*s) than the route's subject",
                        (int)(owner[i] < 100 ? owner[i] : 100), f->path);
            } else if (si < 0 || subs[si].raw_len == 0) {
                why_add(x, "no subject id (route subjects.id) to look consent up");
            } else {
                bg_consent_query_t q;
                bg_consent_match_t m;
                memset(&q, 0, sizeof q);
                q.subject = subs[si].raw;
                q.subject_len = subs[si].raw_len;
                q.recipient = recip_id;
                q.purpose = rp->purpose != NULL ? rp->purpose : "";
                q.country = in->geo->country[0] ? in->geo->country : "ZZ";
                q.need_sensitive = x->sensitive;
                q.need_guardian = subs[si].guardian;
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
        if (x->basis == BG_BASIS_NONE && (bases & 1u << BG_BASIS_SUBJECT_ABROAD) &&
            p->subject_abroad_allowed && si >= 0 && subs[si].region[0] != '\0' &&
            strcmp(subs[si].region, "CN") != 0) {
            if (subs[si].guardian) {
                /* a child abroad still needs a guardian's consent */
                why_add(x, "subject abroad does not apply: the subject needs a guardian's "
                           "consent (policy guardian_consent_age)");
            } else if (subs[si].region_caller && p->region_gateway_only) {
                why_add(x,
                        "subject region asserted by the caller (%s); the policy takes it only "
                        "from the gateway header%s%s",
                        rp->subject_region, rp->region_header ? " " : "",
                        rp->region_header ? rp->region_header : "");
            } else {
                x->basis = BG_BASIS_SUBJECT_ABROAD;
                x->asserted_by = subs[si].region_caller ? "caller" : "gateway";
                snprintf(x->evidence, sizeof x->evidence, "subject region %s", subs[si].region);
            }
        }
        if (x->basis != BG_BASIS_NONE) {
            x->action = BG_ACT_ALLOW;
            pi_leaving = 1;
            leaving_sensitive |= x->sensitive;
            if (x->basis == BG_BASIS_CONSENT || x->basis == BG_BASIS_SUBJECT_ABROAD ||
                x->basis == BG_BASIS_LEGAL_OBLIGATION)
                leaving_needs_mechanism = 1;
            continue;
        }
        if (x->why[0] == '\0')
            snprintf(x->why, sizeof x->why,
                     rule != NULL ? "no legal basis held" : "no rule covers this category");
        bg_fallback_t fb = rule != NULL ? rule->fallback : p->default_fallback;
        const bg_op_t *fop = rule != NULL && rule->has_op ? &rule->op
                             : rule == NULL && p->has_default_fallback_op
                                 ? &p->default_fallback_op
                                 : bg_policy_operator(p, f->category);
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
                record_removed[rec] = 1;
            } else {
                x->action = BG_ACT_BLOCK;
                add_reason(d, "no_basis", x->rule, cat, f->path, "%s to %s: %s", cat, recip_id,
                           x->why);
                out = BG_OUTCOME_BLOCK;
            }
        } else if (fb == BG_FALLBACK_REMOVE) {
            x->action = BG_ACT_REMOVE;
            x->op = BG_OP_REDACT;
            x->anonymized = 1;
            if (rec >= 0)
                record_changed[rec] = 1;
        } else {
            const bg_op_t *op = fop;
            x->action = op->kind == BG_OP_REDACT ? BG_ACT_REMOVE : BG_ACT_DEIDENTIFY;
            x->op = op->kind;
            x->anonymized = bg_op_anonymizes(op->kind);
            if (!x->anonymized) {
                /* Pseudonymized output is still PI (PIPL Art. 73). */
                pi_leaving = 1;
                leaving_sensitive |= x->sensitive;
                leaving_needs_mechanism = 1;
            }
            if (rec >= 0)
                record_changed[rec] = 1;
        }
    }
    /* Findings in removed records are gone with them. */
    for (size_t i = 0; i < d->nfd; i++) {
        bg_finding_t *f = bg_inspection_finding(in->insp, d->fd[i].finding);
        if (d->records > 0 && f->record >= 0 && record_removed[f->record] &&
            d->fd[i].action != BG_ACT_REMOVE_RECORD) {
            d->fd[i].action = BG_ACT_REMOVE_RECORD;
            d->fd[i].anonymized = 1;
        }
    }
    for (int r = 0; r < d->records; r++) {
        if (record_removed[r])
            d->records_removed++;
        else if (record_changed[r])
            d->records_deidentified++;
        else
            d->records_allowed++;
    }
    if (d->records > 0 && d->records_removed == d->records) {
        /* Every record removed: an empty batch would still go; say so. */
        add_reason(d, "all_records_removed", NULL, NULL, rp->records,
                   "no record had a legal basis");
    }
    /* What still leaves as PI, now that removed records are gone. */
    pi_leaving = leaving_sensitive = leaving_needs_mechanism = 0;
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
    /* Transfer mechanism for PI that still leaves. */
    if (pi_leaving && out != BG_OUTCOME_BLOCK) {
        if (rcp == NULL) {
            add_reason(d, "no_recipient", NULL, NULL, NULL,
                       "personal information would leave on route %s, which declares no recipient",
                       in->route->id);
            out = BG_OUTCOME_BLOCK;
        } else if (rcp->mechanism != BG_MECH_NONE &&
                   (rcp->mechanism_expires_ms == 0 || rcp->mechanism_expires_ms > in->now_ms)) {
            snprintf(d->mechanism, sizeof d->mechanism, "%s:%s", bg_mechanism_name(rcp->mechanism),
                     rcp->mechanism_ref ? rcp->mechanism_ref : "");
        } else if (rcp->exemption != BG_EXEMPT_NONE &&
                   !(rcp->exemption == BG_EXEMPT_VOLUME && leaving_sensitive)) {
            snprintf(d->mechanism, sizeof d->mechanism, "exempt:%s",
                     bg_exemption_name(rcp->exemption));
        } else if (!leaving_needs_mechanism) {
            /* Contract, HR and emergency transfers are exempt (CAC 2024 Art. 5). */
            snprintf(d->mechanism, sizeof d->mechanism, "exempt:basis");
        } else if (rcp->mechanism != BG_MECH_NONE) {
            snprintf(d->mechanism, sizeof d->mechanism, "expired");
            add_reason(d, "transfer_mechanism_expired", NULL, NULL, NULL,
                       "the %s with %s (%s) has expired", bg_mechanism_name(rcp->mechanism),
                       recip_id, rcp->mechanism_ref ? rcp->mechanism_ref : "");
            out = BG_OUTCOME_BLOCK;
        } else {
            snprintf(d->mechanism, sizeof d->mechanism, "missing");
            add_reason(
                d, "no_transfer_mechanism", NULL, NULL, NULL,
                "no standard contract, certification or security assessment is in place with %s",
                recip_id);
            out = BG_OUTCOME_BLOCK;
        }
    }
    if (out != BG_OUTCOME_BLOCK) {
        for (size_t i = 0; i < d->nfd; i++)
            if (d->fd[i].action != BG_ACT_ALLOW)
                out = BG_OUTCOME_DEIDENTIFY;
    }
    for (int s = 0; s < nsub; s++)
        bg_util_wipe(subs[s].raw, sizeof subs[s].raw);
    free(subs);
    free(attr);
    free(owner);
    free(record_removed);
    free(record_changed);
done:
    d->would = out;
    d->outcome = d->monitor ? BG_OUTCOME_ALLOW : out;
    return 0;
}

void bg_decision_free(bg_decision_t *d)
{
    free(d->fd);
    free(d->subjects);
    free(d->subject_minor);
    free(d->subject_guardian);
    memset(d, 0, sizeof *d);
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

json_t *bg_decision_block_body(const bg_decision_t *d, const char *decision_id,
                               const bg_policy_t *p)
{
    json_t *o = json_object();
    json_t *rs = json_array();
    json_object_set_new(o, "error", json_string("transfer blocked by the data-residency policy"));
    json_object_set_new(o, "decision_id", json_string(decision_id));
    json_object_set_new(o, "request_id", json_string(decision_id));
    json_object_set_new(o, "outcome", json_string("block"));
    for (int i = 0; i < d->nreasons; i++) {
        const bg_reason_t *r = &d->reasons[i];
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(r->code));
        if (r->rule[0])
            json_object_set_new(e, "rule", json_string(r->rule));
        for (int k = 0; k < p->nrules && r->rule[0]; k++)
            if (strcmp(p->rules[k].id, r->rule) == 0 && p->rules[k].clause != NULL)
                json_object_set_new(e, "clause", json_string(p->rules[k].clause));
        if (r->category[0])
            json_object_set_new(e, "category", json_string(r->category));
        if (r->path[0])
            json_object_set_new(e, "path", json_string(r->path));
        json_object_set_new(e, "detail", json_string(r->detail));
        json_array_append_new(rs, e);
    }
    json_object_set_new(o, "reasons", rs);
    json_object_set_new(o, "policy_version", json_string(p->version ? p->version : p->hash));
    if (p->help_url != NULL) /* the policy's page; no repository path */
        json_object_set_new(o, "help", json_string(p->help_url));
    return o;
}

json_t *bg_decision_json(const bg_decision_t *d, bg_inspection_t *insp)
{
    json_t *o = json_object();
    json_object_set_new(o, "outcome", json_string(bg_outcome_name(d->outcome)));
    json_object_set_new(o, "would", json_string(bg_outcome_name(d->would)));
    json_t *fs = json_array();
    for (size_t i = 0; insp != NULL && i < d->nfd; i++) {
        const bg_finding_decision_t *x = &d->fd[i];
        bg_finding_t *f = bg_inspection_finding(insp, x->finding);
        json_t *e = json_object();
        json_object_set_new(e, "path", json_string(f->path));
        json_object_set_new(e, "category", json_string(bg_detect_category_id(f->category)));
        json_object_set_new(e, "sensitive", json_boolean(x->sensitive));
        json_object_set_new(e, "source", json_string(f->source ? f->source : ""));
        json_object_set_new(e, "confidence", json_string(bg_detect_confidence_name(f->confidence)));
        if (f->record >= 0)
            json_object_set_new(e, "record", json_integer(f->record));
        json_object_set_new(e, "rule", json_string(x->rule ? x->rule : ""));
        json_object_set_new(e, "basis", json_string(bg_basis_name(x->basis)));
        if (x->evidence[0])
            json_object_set_new(e, "evidence", json_string(x->evidence));
        if (x->asserted_by != NULL && x->basis != BG_BASIS_NONE)
            json_object_set_new(e, "basis_asserted_by", json_string(x->asserted_by));
        json_object_set_new(e, "action", json_string(bg_action_name(x->action)));
        if (x->action == BG_ACT_DEIDENTIFY || x->action == BG_ACT_REMOVE)
            json_object_set_new(e, "operator", json_string(bg_op_name(x->op)));
        if (x->action != BG_ACT_ALLOW)
            json_object_set_new(e, "anonymized", json_boolean(x->anonymized));
        if (x->pseudonymized_accepted && x->action == BG_ACT_DEIDENTIFY)
            json_object_set_new(e, "pseudonymized_without_basis", json_string("accepted_by_rule"));
        if (x->why[0] && x->basis == BG_BASIS_NONE)
            json_object_set_new(e, "why", json_string(x->why));
        if (x->subject >= 0 && x->subject < d->nsubjects && d->subjects[x->subject][0])
            json_object_set_new(e, "subject", json_string(d->subjects[x->subject]));
        json_array_append_new(fs, e);
    }
    json_object_set_new(o, "findings", fs);
    json_t *subs = json_array();
    for (int s = 0; s < d->nsubjects; s++) {
        if (d->subjects[s][0] == '\0')
            continue;
        json_t *e = json_object();
        json_object_set_new(e, "pseudonym", json_string(d->subjects[s]));
        if (d->subject_minor[s])
            json_object_set_new(e, "minor", json_true());
        if (d->subject_guardian[s])
            json_object_set_new(e, "guardian_consent_required", json_true());
        json_array_append_new(subs, e);
    }
    json_object_set_new(o, "subjects", subs);
    if (d->records > 0) {
        json_t *r = json_object();
        json_object_set_new(r, "total", json_integer(d->records));
        json_object_set_new(r, "allowed", json_integer(d->records_allowed));
        json_object_set_new(r, "deidentified", json_integer(d->records_deidentified));
        json_object_set_new(r, "removed", json_integer(d->records_removed));
        json_object_set_new(o, "records", r);
    }
    json_object_set_new(o, "mechanism", json_string(d->mechanism));
    if (d->dnt)
        json_object_set_new(o, "dnt", json_true());
    json_t *rs = json_array();
    for (int i = 0; i < d->nreasons; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(d->reasons[i].code));
        if (d->reasons[i].rule[0])
            json_object_set_new(e, "rule", json_string(d->reasons[i].rule));
        if (d->reasons[i].category[0])
            json_object_set_new(e, "category", json_string(d->reasons[i].category));
        if (d->reasons[i].path[0])
            json_object_set_new(e, "path", json_string(d->reasons[i].path));
        json_object_set_new(e, "detail", json_string(d->reasons[i].detail));
        json_array_append_new(rs, e);
    }
    json_object_set_new(o, "reasons", rs);
    return o;
}

void bg_decision_write(const bg_decision_t *d, bg_inspection_t *insp, bg_sbuf_t *b)
{
    bg_sbuf_json_kv(b, 0, "outcome", bg_outcome_name(d->outcome));
    bg_sbuf_json_kv(b, 0, "would", bg_outcome_name(d->would));
    bg_sbuf_adds(b, ",\"findings\":[");
    for (size_t i = 0; insp != NULL && i < d->nfd; i++) {
        const bg_finding_decision_t *x = &d->fd[i];
        bg_finding_t *f = bg_inspection_finding(insp, x->finding);
        bg_sbuf_adds(b, i ? ",{" : "{");
        bg_sbuf_json_kv(b, 1, "path", f->path);
        bg_sbuf_json_kv(b, 0, "category", bg_detect_category_id(f->category));
        bg_sbuf_adds(b, x->sensitive ? ",\"sensitive\":true" : ",\"sensitive\":false");
        bg_sbuf_json_kv(b, 0, "source", f->source ? f->source : "");
        bg_sbuf_json_kv(b, 0, "confidence", bg_detect_confidence_name(f->confidence));
        if (f->record >= 0) {
            bg_sbuf_adds(b, ",\"record\":");
            bg_sbuf_addi(b, f->record);
        }
        bg_sbuf_json_kv(b, 0, "rule", x->rule ? x->rule : "");
        if (x->clause != NULL)
            bg_sbuf_json_kv(b, 0, "clause", x->clause);
        if (x->value_pseudonym[0])
            bg_sbuf_json_kv(b, 0, "value_pseudonym", x->value_pseudonym);
        bg_sbuf_json_kv(b, 0, "basis", bg_basis_name(x->basis));
        if (x->evidence[0])
            bg_sbuf_json_kv(b, 0, "evidence", x->evidence);
        if (x->asserted_by != NULL && x->basis != BG_BASIS_NONE)
            bg_sbuf_json_kv(b, 0, "basis_asserted_by", x->asserted_by);
        bg_sbuf_json_kv(b, 0, "action", bg_action_name(x->action));
        if (x->action == BG_ACT_DEIDENTIFY || x->action == BG_ACT_REMOVE)
            bg_sbuf_json_kv(b, 0, "operator", bg_op_name(x->op));
        if (x->action != BG_ACT_ALLOW)
            bg_sbuf_adds(b, x->anonymized ? ",\"anonymized\":true" : ",\"anonymized\":false");
        if (x->pseudonymized_accepted && x->action == BG_ACT_DEIDENTIFY)
            bg_sbuf_json_kv(b, 0, "pseudonymized_without_basis", "accepted_by_rule");
        if (x->why[0] && x->basis == BG_BASIS_NONE)
            bg_sbuf_json_kv(b, 0, "why", x->why);
        if (x->subject >= 0 && x->subject < d->nsubjects && d->subjects[x->subject][0])
            bg_sbuf_json_kv(b, 0, "subject", d->subjects[x->subject]);
        bg_sbuf_adds(b, "}");
    }
    bg_sbuf_adds(b, "],\"subjects\":[");
    int first = 1;
    for (int s = 0; s < d->nsubjects; s++) {
        if (d->subjects[s][0] == '\0')
            continue;
        bg_sbuf_adds(b, first ? "{" : ",{");
        first = 0;
        bg_sbuf_json_kv(b, 1, "pseudonym", d->subjects[s]);
        if (d->subject_minor[s])
            bg_sbuf_adds(b, ",\"minor\":true");
        if (d->subject_guardian[s])
            bg_sbuf_adds(b, ",\"guardian_consent_required\":true");
        bg_sbuf_adds(b, "}");
    }
    bg_sbuf_adds(b, "]");
    if (d->records > 0)
        bg_sbuf_addf(
            b, ",\"records\":{\"total\":%d,\"allowed\":%d,\"deidentified\":%d,\"removed\":%d}",
            d->records, d->records_allowed, d->records_deidentified, d->records_removed);
    bg_sbuf_json_kv(b, 0, "mechanism", d->mechanism);
    if (d->dnt)
        bg_sbuf_adds(b, ",\"dnt\":true");
    bg_sbuf_adds(b, ",\"reasons\":[");
    for (int i = 0; i < d->nreasons; i++) {
        const bg_reason_t *r = &d->reasons[i];
        bg_sbuf_adds(b, i ? ",{" : "{");
        bg_sbuf_json_kv(b, 1, "code", r->code);
        if (r->rule[0])
            bg_sbuf_json_kv(b, 0, "rule", r->rule);
        /* The rule's clause, as its findings carry it. */
        for (size_t k = 0; r->rule[0] && k < d->nfd; k++) {
            if (d->fd[k].clause != NULL && d->fd[k].rule != NULL &&
                strcmp(d->fd[k].rule, r->rule) == 0) {
                bg_sbuf_json_kv(b, 0, "clause", d->fd[k].clause);
                break;
            }
        }
        if (r->category[0])
            bg_sbuf_json_kv(b, 0, "category", r->category);
        if (r->path[0])
            bg_sbuf_json_kv(b, 0, "path", r->path);
        bg_sbuf_json_kv(b, 0, "detail", r->detail);
        bg_sbuf_adds(b, "}");
    }
    bg_sbuf_adds(b, "]");
}
