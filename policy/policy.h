/*
 * The residency policy: the compliance team's rules in their vocabulary,
 * compiled from the configuration file into immutable tables.
 *
 *   recipients   who receives (legal entity, relationship, declared
 *                country, purposes, transfer mechanism and its expiry,
 *                CAC 2024 exemption, PIPL Art. 42 denylist)
 *   route terms  per route: recipient, purpose, the bases the route itself
 *                declares (legal obligation, HR, emergency, contract
 *                necessity), where the data subject is (subject selectors),
 *                mode, what else to inspect
 *   rules        which categories may go to which recipients on which
 *                bases, and the fallback when none holds
 *   operators    how each category is de-identified
 *
 * See docs/policy.md for the reference written for compliance readers and
 * config/bordergate.schema.json for the schema.
 */
#ifndef BG_POLICY_H
#define BG_POLICY_H

#include <stdint.h>

#include <jansson.h>

#include "config/cfgutil.h"
#include "inspect/inspect.h"

typedef enum {
    BG_BASIS_NONE = 0,
    BG_BASIS_LEGAL_OBLIGATION, /* PIPL Art. 13(3) */
    BG_BASIS_HR_MANAGEMENT,    /* PIPL Art. 13(2), HR under lawful rules/contracts */
    BG_BASIS_EMERGENCY,        /* PIPL Art. 13(4), life, health, property */
    BG_BASIS_CONTRACT,       /* PIPL Art. 13(2), necessary for a contract the subject is party to */
    BG_BASIS_CONSENT,        /* PIPL Arts. 14, 39: separate consent */
    BG_BASIS_SUBJECT_ABROAD, /* the subject is outside mainland China (policy allows) */
    BG_BASIS__COUNT
} bg_basis_t;

typedef enum { BG_REL_AFFILIATE = 0, BG_REL_PROCESSOR, BG_REL_THIRD_PARTY } bg_relationship_t;
typedef enum {
    BG_MECH_NONE = 0,
    BG_MECH_STANDARD_CONTRACT,
    BG_MECH_CERTIFICATION,
    BG_MECH_SECURITY_ASSESSMENT
} bg_mechanism_t;
typedef enum {
    BG_EXEMPT_NONE = 0,
    BG_EXEMPT_CONTRACT,  /* CAC 2024 Provisions Art. 5(1) */
    BG_EXEMPT_HR,        /* Art. 5(2) */
    BG_EXEMPT_EMERGENCY, /* Art. 5(3) */
    BG_EXEMPT_VOLUME,    /* Art. 5(4): fewer than 100,000 people a year, no sensitive PI */
} bg_exemption_t;

typedef enum { BG_FALLBACK_BLOCK = 0, BG_FALLBACK_DEIDENTIFY, BG_FALLBACK_REMOVE } bg_fallback_t;

typedef struct {
    char *id;
    char *legal_entity;
    char *country; /* declared; the geo check decides the route's real destination */
    bg_relationship_t relationship;
    char **purposes;
    int npurposes;
    bg_mechanism_t mechanism;
    char *mechanism_ref;
    int64_t mechanism_expires_ms; /* 0: no expiry stated */
    bg_exemption_t exemption;
    int denylisted;
    char *denylist_ref;
} bg_recipient_t;

typedef struct {
    char *id;
    char *clause;        /* the privacy-policy clause it enforces */
    uint64_t categories; /* bit per bg_detect_cat_t */
    int all_categories, sensitive_only;
    char **recipients; /* NULL: any */
    int nrecipients;
    char **purposes; /* NULL: any */
    int npurposes;
    unsigned bases; /* bit per bg_basis_t */
    bg_fallback_t fallback;
    int has_op; /* fallback operator given on the rule */
    bg_op_t op;
    int accept_pseudonymized; /* "accept_pseudonymized": a pseudonymizing fallback (mask, hash,
                                 tokenize) may leave without a basis (PIPL Art. 73: still PI) */
} bg_rule_t;

typedef struct {
    int present;
    char *reference; /* legal obligation / HR / emergency reference */
} bg_declared_basis_t;

typedef struct {
    int present;
    char *purpose;          /* cross_border_shopping, delivery, payment, booking, ... */
    uint64_t necessary;     /* categories necessary for the contract */
    char **necessary_paths; /* or fields (JSON paths, matched by prefix) */
    int nnecessary_paths;
    char *reference_path; /* where the contract/order reference is */
    int reference_required;
} bg_contract_t;

/* The policy terms of one route (same index as bg_config_t.routes). */
typedef struct {
    const bg_recipient_t *recipient; /* NULL: none declared */
    char *purpose;
    int monitor; /* route mode monitor (or the global one) */
    bg_declared_basis_t legal_obligation, hr, emergency;
    bg_contract_t contract;
    char *subject_id;     /* JSON path / header.X / query.X; relative to a record when records */
    char *subject_device; /* subjects.device_id: the same forms; a device identifier that
                             stands for its person when subject_id selects nothing */
    char *records;        /* "$.events[*]" */
    char *subject_region; /* where the subject's country/region is */
    char *birth_date;     /* where a birth date is */
    char *region_header;  /* subjects.region_header: the subject's region as set by the
                             calling service's gateway (trusted; NULL: none) */
    int opaque_allow;     /* forward bodies of types we do not decode */
    bg_inspect_rules_t *inspect;  /* compiled: field rules + this route's extras */
    int16_t rule_for[BG_CAT_MAX]; /* first matching rule index, -1: default fallback */
} bg_route_policy_t;

typedef struct bg_policy {
    char *version;  /* the policy's own version string */
    char *help_url; /* policy.help_url: the 451 body's "help" (http/https), or NULL */
    char hash[65];  /* SHA-256 of the configuration file: the record's policy version */
    int monitor;    /* global mode */
    int inspect_domestic;
    bg_detect_conf_t min_confidence;
    int undecodable_allow;
    uint64_t never_export;
    int never_export_block; /* else redact */
    char **dnt_purposes;
    int ndnt_purposes;
    int subject_abroad_allowed;
    int minor_age;           /* younger: a minor, all of whose data is sensitive (PIPL Art. 28) */
    int guardian_age;        /* younger: only a guardian's consent counts (guardian_consent_age;
                                default 14, PIPL Art. 31; never below minor_age) */
    int region_gateway_only; /* subject_region_from "gateway_header": a region the
                                caller wrote in the request never gives subject_abroad */
    uint8_t sensitive[BG_CAT_MAX];
    bg_op_t operators[BG_CAT_MAX];
    uint8_t has_operator[BG_CAT_MAX];
    /* Categories the policy defines (policy.categories; docs/policy.md):
     * their values (bg_detect_category_intern) and the built-in category
     * each is a kind of (BG_CAT_NONE: none). */
    int next;
    struct {
        char *id;
        bg_detect_cat_t cat;
        bg_detect_cat_t parent;
    } ext[BG_CAT_MAX - BG_CAT__COUNT];
    bg_op_t default_op;
    bg_fallback_t default_fallback;
    bg_op_t default_fallback_op; /* operator given with default_fallback */
    int has_default_fallback_op;

    bg_recipient_t *recipients;
    int nrecipients;
    bg_rule_t *rules;
    int nrules;
    bg_route_policy_t *routes;
    int nroutes;

    /* keys (wiped on free) */
    unsigned char pseudonym_key[64];
    size_t pseudonym_key_len;
    char pseudonym_key_id[17];
    unsigned char token_key[32];
    int has_token_key;
    char token_key_id[17];
    unsigned char subject_key[64];
    size_t subject_key_len;
    char subject_key_id[17];
    char *consent_registry; /* path; NULL: no registry (consent never found) */
} bg_policy_t;

struct bg_config;

/* Compile the policy parts of ROOT (the whole configuration document) for
 * CFG's routes. Errors and warnings go to CTX. NULL when out of memory;
 * check the error count in CTX. */
bg_policy_t *bg_policy_load(bg_cfg_ctx_t *ctx, json_t *root, const struct bg_config *cfg,
                            const char *file_text, size_t file_len);
void bg_policy_free(bg_policy_t *p);

const char *bg_basis_name(bg_basis_t b);
const char *bg_relationship_name(bg_relationship_t r);
const char *bg_mechanism_name(bg_mechanism_t m);
const char *bg_exemption_name(bg_exemption_t e);
const bg_recipient_t *bg_policy_recipient(const bg_policy_t *p, const char *id);
/* The operator for CAT (policy table, else the default). */
const bg_op_t *bg_policy_operator(const bg_policy_t *p, bg_detect_cat_t cat);
bg_op_keys_t bg_policy_keys(const bg_policy_t *p);

/* Documented categories that no detector reports (docs/categories.md:
 * accommodation, credit_record, ...): the I-th id (NULL past the end).
 * Every policy knows them: rules, operators, field rules and
 * $.policy.sensitive may name them like a built-in category. */
const char *bg_policy_documented_at(size_t i);

#endif
