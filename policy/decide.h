/*
 * The decision: for every finding (and its data subject), the legal basis
 * that lets it leave, in a fixed, documented order, or the rule's fallback;
 * then the request's outcome. Pure: the same inputs give the same decision
 * (the consent registry and the clock are inputs), so the daemon and
 * `bordergate replay` share it.
 *
 * Order (docs/policy.md, "How a decision is made"):
 *   0. destination domestic: allow (recorded; inspected when the policy says)
 *   1. recipient on a denylist (PIPL Art. 42): block
 *   2. body undecodable / of an undecoded type going abroad: block (policy may allow)
 *   per finding:
 *   3. never-export categories (credentials...): remove, or block
 *   4. legal obligation, HR management, emergency declared by the route
 *   5. contract necessity: route's contract, field necessary, reference present
 *   6. separate consent in the registry for subject, recipient, purpose,
 *      country (sensitive PI and minors need consent that covers them;
 *      DNT / Sec-GPC withdraws it for the purposes the policy names)
 *   7. the subject is outside mainland China (if the policy allows it)
 *   8. otherwise the rule's fallback: de-identify, remove, or block (in a
 *      batch, block removes that subject's record); a pseudonymizing
 *      de-identification (mask, hash, tokenize: still PI, PIPL Art. 73)
 *      counts as a block unless the rule sets accept_pseudonymized
 *   then: PI still leaving needs the recipient's transfer mechanism (standard
 *   contract, certification, security assessment, unexpired) unless an
 *   exemption applies (CAC 2024 Provisions Art. 5).
 */
#ifndef BG_DECIDE_H
#define BG_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "geo/geo.h"
#include "inspect/inspect.h"
#include "policy/consent.h"
#include "policy/policy.h"
#include "common/sbuf.h"

typedef enum { BG_OUTCOME_ALLOW = 0, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_BLOCK } bg_outcome_t;

typedef enum {
    BG_ACT_ALLOW = 0,     /* leaves as is, on a basis */
    BG_ACT_DEIDENTIFY,    /* operator applied */
    BG_ACT_REMOVE,        /* field removed */
    BG_ACT_REMOVE_RECORD, /* the subject's whole record removed (batch) */
    BG_ACT_BLOCK,         /* the request is blocked */
} bg_action_t;

typedef struct {
    size_t finding; /* index in the inspection */
    bg_basis_t basis;
    char evidence[160]; /* consent id, contract purpose, obligation reference */
    bg_action_t action;
    bg_op_kind_t op;            /* for DEIDENTIFY / REMOVE */
    int anonymized;             /* the output is no longer PI */
    const char *rule;           /* rule id, "default", "never_export" */
    const char *clause;         /* the rule's clause, or NULL */
    char why[160];              /* when no basis held, each basis tried and why it failed */
    int subject;                /* index into subjects, -1 */
    int sensitive;              /* as decided (minors make everything sensitive) */
    int pseudonymized_accepted; /* left pseudonymized without a basis: the rule accepts it */
    char value_pseudonym[65];   /* keyed pseudonym (subject key) of the finding's value in
                                   its canonical form, for identifiers a person can be
                                   looked up by (audit subject --id); "" otherwise */
    const char *asserted_by;    /* the basis rests on a fact about the subject that the
                                   "caller" wrote in the request (subjects.region) or the
                                   calling service's "gateway" set (subjects.region_header);
                                   NULL: no such fact. Recorded as "basis_asserted_by". */
} bg_finding_decision_t;

typedef struct {
    char code[48]; /* recipient_denylisted, undecodable, no_basis, never_export,
                      no_transfer_mechanism, transfer_mechanism_expired, opaque_body,
                      no_recipient, operator_failed */
    char rule[64];
    char category[40];
    char path[160];
    char detail[200];
} bg_reason_t;

#define BG_MAX_REASONS 16

typedef struct {
    bg_outcome_t outcome; /* what happens (ALLOW in monitor mode) */
    bg_outcome_t would;   /* what enforcement decides */
    int monitor;
    int cross_border;
    int inspected;
    int nreasons; /* entries of reasons[] in use */
    bg_finding_decision_t *fd;
    size_t nfd;
    int records, records_allowed, records_deidentified, records_removed;
    char (*subjects)[65]; /* pseudonyms (HMAC-SHA-256 hex), "" when unknown */
    int *subject_minor;
    int *subject_guardian;  /* needs a guardian's consent (policy guardian_consent_age) */
    int *subject_by_device; /* the pseudonym is of the device identifier (subjects.device_id):
                               no subjects.id value; recorded as "by": "device" */
    int nsubjects;
    char mechanism[160]; /* "standard_contract:REF", "exempt:contract_necessity", "not_needed",
                            "missing", "expired" */
    int dnt;
    /* Last, and not zeroed on reset (8 kB: zeroing it per request cost more
     * than the rest of a pass-through decision): only entries below
     * nreasons are read, and add_reason writes every field of a new one. */
    bg_reason_t reasons[BG_MAX_REASONS];
} bg_decision_t;

/* The bytes of a bg_decision_t that a reset zeroes: all but reasons[]. */
#define BG_DECISION_RESET_BYTES offsetof(bg_decision_t, reasons)
_Static_assert(offsetof(bg_decision_t, reasons) + sizeof(((bg_decision_t *)0)->reasons) ==
                   sizeof(bg_decision_t),
               "reasons[] must be the last member of bg_decision_t");

typedef struct {
    const bg_policy_t *policy;
    int route_index;
    const bg_route_t *route;
    const bg_geo_answer_t *geo;
    bg_inspection_t *insp; /* NULL when not inspected (domestic) */
    const bg_http_header_t *headers;
    size_t nheaders;
    bg_consent_reg_t *consent; /* NULL: consent never holds */
    int64_t now_ms;
} bg_decide_input_t;

/* Whether the request must be inspected at all (cross-border, or the
 * policy inspects domestic traffic too). */
int bg_decide_needs_inspection(const bg_policy_t *p, const bg_geo_answer_t *geo);

/* Decide. 0, or -1 when out of memory (the caller fails closed). */
int bg_decide(const bg_decide_input_t *in, bg_decision_t *out);
void bg_decision_free(bg_decision_t *d);

/* Apply the decision's operators and record removals to the inspection.
 * A failure (missing key...) turns the decision into a block. */
int bg_decision_apply(bg_decision_t *d, bg_inspection_t *insp, const bg_policy_t *p);

const char *bg_outcome_name(bg_outcome_t o);
const char *bg_action_name(bg_action_t a);

/* The 451 body: decision id, outcome, reasons (rules, categories, paths;
 * never values). */
json_t *bg_decision_block_body(const bg_decision_t *d, const char *decision_id,
                               const bg_policy_t *p);
/* The decision's part of an audit record (policy/decision_fmt.c), written
 * as JSON members (no braces, leading comma) onto B: findings with basis,
 * evidence and action; subjects as pseudonyms; record counts; mechanism;
 * reasons. The daemon's and replay's records both come from here. */
void bg_decision_write(const bg_decision_t *d, bg_inspection_t *insp, bg_sbuf_t *b);

#endif
