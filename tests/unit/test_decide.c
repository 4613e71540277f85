/*
 * The decision (policy/decide.c) against docs/policy.md, "How a decision is
 * made": one focused case per step, on real configurations loaded with
 * bg_config_load, real JSON payloads inspected with bg_inspect, and a real
 * consent registry in a temporary directory. Each case checks the outcome,
 * and per finding the action, basis, evidence, rule and the reason code or
 * the "why" text. Times are fixed (T0), so nothing depends on the clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config/config.h"
#include "inspect/inspect.h"
#include "policy/attribute.h"
#include "policy/consent.h"
#include "policy/decide.h"
#include "policy/policy.h"
#include "common/sbuf.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* 2026-05-01T00:00:00Z (08:00 in China) */
#define T0 1777593600000LL
#define SEC 1000LL
#define HOUR 3600000LL
#define DAY (24 * HOUR)

static char g_dir[512];
static char g_db[512];
static int g_seq;

/* The subject key (keys.subject and the registry's key: the same bytes). */
static const uint8_t SUBJECT_KEY[32] = {
    0x42, 0x19, 0xa7, 0x03, 0x5e, 0x77, 0xc1, 0x8d, 0x10, 0x2f, 0x33, 0x4a, 0x95, 0xb6, 0xe0, 0x01,
    0x7c, 0x88, 0x9d, 0xaa, 0x21, 0x3e, 0x54, 0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7};
#define SUBJECT_KEY_HEX "4219a7035e77c18d102f334a95b6e0017c889daa213e546f708192a3b4c5d6e7"

/* PI values used in payloads: none may ever appear in a record or a 451. */
#define MOBILE "13812345678"
#define MOBILE2 "13987654321"
#define EMAIL "zhang.wei@example.cn"
#define ID_ADULT "11010519491231002X" /* born 1949-12-31 */
#define SUBJ "subj-7781-zhangwei"     /* a raw subject id */

/* ---------------------------------------------------------------------- */
/* Configurations                                                          */

#define RECIPIENTS                                                                                 \
    "  \"recipients\": {\n"                                                                        \
    "    \"acme-us\": {\"legal_entity\": \"Acme Inc.\", \"relationship\": \"third_party\", "       \
    "\"country\": \"US\",\n"                                                                       \
    "      \"purposes\": [\"delivery\", \"analytics\", \"support\", \"payroll\"],\n"               \
    "      \"mechanism\": {\"type\": \"standard_contract\", \"reference\": \"CAC-SC-2026-0042\", " \
    "\"expires\": \"2099-12-31\"}},\n"                                                             \
    "    \"blocked-corp\": {\"legal_entity\": \"Blocked Corp\", \"relationship\": "                \
    "\"third_party\",\n"                                                                           \
    "      \"mechanism\": {\"type\": \"none\"}, \"denylisted\": \"CAC Art. 42 list 2026-3\"},\n"   \
    "    \"no-mech\": {\"legal_entity\": \"No Mechanism Ltd\", \"relationship\": "                 \
    "\"entrusted_processor\",\n"                                                                   \
    "      \"mechanism\": {\"type\": \"none\"}},\n"                                                \
    "    \"old-mech\": {\"legal_entity\": \"Old Mechanism Ltd\", \"relationship\": "               \
    "\"affiliate\",\n"                                                                             \
    "      \"mechanism\": {\"type\": \"standard_contract\", \"reference\": \"CAC-SC-2020-0001\", " \
    "\"expires\": \"2026-01-31\"}},\n"                                                             \
    "    \"exempt-contract\": {\"legal_entity\": \"Shop Abroad Ltd\", \"relationship\": "          \
    "\"third_party\",\n"                                                                           \
    "      \"mechanism\": {\"type\": \"none\"}, \"exemption\": \"contract_necessity\"},\n"         \
    "    \"exempt-volume\": {\"legal_entity\": \"Small Volume Ltd\", \"relationship\": "           \
    "\"third_party\",\n"                                                                           \
    "      \"mechanism\": {\"type\": \"none\"}, \"exemption\": \"below_volume_threshold\"}\n"      \
    "  },\n"

/* A route: id (also its host), recipient, purpose, more terms. */
#define RT(id, rcp, purpose, extra)                                                                \
    "{\"id\": \"" id "\", \"match\": {\"host\": \"" id ".example\"}, \"upstream\": \"https://" id  \
    ".example\", \"recipient\": \"" rcp "\", \"purpose\": \"" purpose "\"" extra "}"
#define SUBJECTS ", \"subjects\": {\"id\": \"$.user.id\"}"

static bg_config_t *load(const char *policy, const char *extra, const char *rules,
                         const char *routes)
{
    size_t cap = 16384;
    char *text = malloc(cap);
    assert_non_null(text);
    int n = snprintf(text, cap,
                     "{\n"
                     "  \"geo\": {\"database\": \"%s\"},\n"
                     "  \"audit\": {\"directory\": \"%s/audit\"},\n"
                     "  \"keys\": {\"subject\": {\"file\": \"%s/subject.key\"}, \"pseudonym\": "
                     "{\"file\": \"%s/pn.key\"}},\n"
                     "  \"consent\": {\"registry\": \"%s/consent.jsonl\"},\n"
                     "  \"policy\": {%s},\n"
                     "%s%s"
                     "  \"rules\": [\n%s\n  ],\n"
                     "  \"routes\": [\n%s\n  ]\n"
                     "}\n",
                     g_db, g_dir, g_dir, g_dir, g_dir, policy, extra != NULL ? extra : "",
                     RECIPIENTS, rules, routes);
    assert_true(n > 0 && (size_t)n < cap);
    char path[700];
    snprintf(path, sizeof path, "%s/cfg-%02d.json", g_dir, ++g_seq);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, (size_t)n, f), (size_t)n);
    assert_int_equal(fclose(f), 0);
    FILE *errs = tmpfile();
    assert_non_null(errs);
    int nerr = -1;
    bg_config_t *cfg = bg_config_load(path, errs, &nerr);
    if (cfg == NULL) {
        char line[1024];
        rewind(errs);
        fprintf(stderr, "configuration refused:\n%s\n", text);
        while (fgets(line, sizeof line, errs) != NULL)
            fprintf(stderr, "  | %s", line);
    }
    fclose(errs);
    free(text);
    assert_non_null(cfg);
    assert_int_equal(nerr, 0);
    return cfg;
}

/* ---------------------------------------------------------------------- */
/* Consent registry                                                        */

static bg_consent_reg_t *open_reg(void)
{
    char path[700], err[512];
    char *warning = NULL;
    snprintf(path, sizeof path, "%s/consent-%02d.jsonl", g_dir, ++g_seq);
    bg_consent_options_t o = {.create = 1, .check_interval_ms = -1};
    bg_consent_reg_t *reg =
        bg_consent_open(path, SUBJECT_KEY, sizeof SUBJECT_KEY, &o, &warning, err, sizeof err);
    if (reg == NULL)
        fprintf(stderr, "consent registry %s: %s\n", path, err);
    assert_non_null(reg);
    assert_null(warning);
    return reg;
}

typedef struct {
    const char *recipient, *purpose, *region;
    int sensitive, guardian;
    int64_t granted, expires;
    const char *evidence;
} grant_t;

/* Grant consent G to SUBJECT; the new consent's id goes to ID. */
static void grant(bg_consent_reg_t *reg, const char *subject, grant_t g,
                  char id[BG_CONSENT_ID_SIZE])
{
    char err[512];
    bg_consent_t out;
    bg_consent_grant_t q = {
        .subject = subject,
        .subject_len = strlen(subject),
        .recipient = g.recipient != NULL ? g.recipient : "acme-us",
        .purpose = g.purpose != NULL ? g.purpose : "*",
        .region = g.region != NULL ? g.region : "*",
        .sensitive = g.sensitive,
        .guardian = g.guardian,
        .granted_at = g.granted != 0 ? g.granted : T0 - 30 * DAY,
        .expires_at = g.expires,
        .evidence = g.evidence,
        .recorded_by = "test",
    };
    int rc = bg_consent_grant(reg, &q, &out, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "grant: %s\n", err);
    assert_int_equal(rc, 0);
    if (id != NULL)
        snprintf(id, BG_CONSENT_ID_SIZE, "%s", out.id);
}

/* ---------------------------------------------------------------------- */
/* Requests                                                                */

typedef struct {
    bg_config_t *cfg;
    bg_http_header_t h[12];
    char *copies[12];
    size_t nh;
    char *body;
    bg_inspect_input_t in;
    bg_geo_answer_t geo;
    bg_inspection_t *insp;
    bg_decision_t d;
    int route;
} req_t;

static void add_hdr(req_t *r, const char *line)
{
    char *c = strdup(line);
    assert_non_null(c);
    char *colon = strchr(c, ':');
    assert_non_null(colon);
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ')
        v++;
    r->copies[r->nh] = c;
    r->h[r->nh] = (bg_http_header_t){c, strlen(c), v, strlen(v)};
    r->nh++;
}

static int route_index(const bg_config_t *cfg, const char *id)
{
    for (int i = 0; i < cfg->nroutes; i++)
        if (strcmp(cfg->routes[i].id, id) == 0)
            return i;
    fail_msg("no route %s", id);
    return -1;
}

typedef struct {
    const char *country; /* destination: "US" (default), "CN", "" unknown */
    const char *ctype;   /* NULL: application/json */
    const char *hdrs[4];
    bg_consent_reg_t *reg;
    int64_t now; /* 0: T0 */
} opts_t;

/* Inspect BODY (when the decision needs it) and decide, for ROUTE. */
static void run(req_t *r, bg_config_t *cfg, const char *route, const char *body, opts_t o)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->route = route_index(cfg, route);
    for (int i = 0; i < 4 && o.hdrs[i] != NULL; i++)
        add_hdr(r, o.hdrs[i]);
    char ct[160];
    snprintf(ct, sizeof ct, "Content-Type: %s", o.ctype != NULL ? o.ctype : "application/json");
    add_hdr(r, ct);
    r->body = strdup(body != NULL ? body : "");
    r->in.method = "POST";
    r->in.method_len = 4;
    r->in.target = "/v1/upload";
    r->in.target_len = strlen(r->in.target);
    r->in.headers = r->h;
    r->in.nheaders = r->nh;
    r->in.body = r->body;
    r->in.body_len = strlen(r->body);
    const char *cc = o.country != NULL ? o.country : "US";
    snprintf(r->geo.country, sizeof r->geo.country, "%s", cc);
    r->geo.region = cc[0] == '\0'           ? BG_GEO_UNKNOWN
                    : strcmp(cc, "CN") == 0 ? BG_GEO_DOMESTIC
                                            : BG_GEO_CROSS_BORDER;
    snprintf(r->geo.source, sizeof r->geo.source, "test");
    const bg_policy_t *p = cfg->policy;
    if (bg_decide_needs_inspection(p, &r->geo)) {
        r->insp = bg_inspect(p->routes[r->route].inspect, &r->in);
        assert_non_null(r->insp);
    }
    bg_decide_input_t in = {
        .policy = p,
        .route_index = r->route,
        .route = &cfg->routes[r->route],
        .geo = &r->geo,
        .insp = r->insp,
        .headers = r->h,
        .nheaders = r->nh,
        .consent = o.reg,
        .now_ms = o.now != 0 ? o.now : T0,
    };
    assert_int_equal(bg_decide(&in, &r->d), 0);
}

static void done(req_t *r)
{
    bg_decision_free(&r->d);
    bg_inspection_free(r->insp);
    for (size_t i = 0; i < r->nh; i++)
        free(r->copies[i]);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void dump(const req_t *r)
{
    const bg_decision_t *d = &r->d;
    fprintf(stderr,
            "decision: outcome %s, would %s, mechanism %s, records %d (%d allowed, %d "
            "deidentified, %d removed)\n",
            bg_outcome_name(d->outcome), bg_outcome_name(d->would), d->mechanism, d->records,
            d->records_allowed, d->records_deidentified, d->records_removed);
    for (size_t i = 0; i < d->nfd; i++) {
        const bg_finding_decision_t *x = &d->fd[i];
        const bg_finding_t *f = r->insp != NULL ? bg_inspection_finding(r->insp, x->finding) : NULL;
        fprintf(
            stderr,
            "  %s %s: %s basis=%s op=%s rule=%s evidence='%s' why='%s' sensitive=%d subject=%d\n",
            f ? f->path : "?", f ? bg_detect_category_id(f->category) : "?",
            bg_action_name(x->action), bg_basis_name(x->basis), bg_op_name(x->op),
            x->rule ? x->rule : "(null)", x->evidence, x->why, x->sensitive, x->subject);
    }
    for (int i = 0; i < d->nreasons; i++)
        fprintf(stderr, "  reason %s rule=%s category=%s path=%s: %s\n", d->reasons[i].code,
                d->reasons[i].rule, d->reasons[i].category, d->reasons[i].path,
                d->reasons[i].detail);
}

/* The decision about the finding at PATH. */
static const bg_finding_decision_t *fd_at(const req_t *r, const char *path)
{
    for (size_t i = 0; i < r->d.nfd; i++) {
        const bg_finding_t *f = bg_inspection_finding(r->insp, r->d.fd[i].finding);
        if (strcmp(f->path, path) == 0)
            return &r->d.fd[i];
    }
    dump(r);
    fail_msg("no finding at %s", path);
    return NULL;
}

typedef struct {
    bg_action_t action;
    bg_basis_t basis;
    const char *rule;     /* exact */
    const char *evidence; /* substring ("" must be empty) or NULL: not checked */
    const char *why;      /* substring or NULL */
    int op;               /* -1: not checked */
} want_t;

static void expect_fd(const req_t *r, const char *path, want_t w)
{
    const bg_finding_decision_t *x = fd_at(r, path);
    int ok = x->action == w.action && x->basis == w.basis && x->rule != NULL &&
             strcmp(x->rule, w.rule) == 0;
    if (w.evidence != NULL)
        ok &= w.evidence[0] == '\0' ? x->evidence[0] == '\0'
                                    : strstr(x->evidence, w.evidence) != NULL;
    if (w.why != NULL)
        ok &= strstr(x->why, w.why) != NULL;
    if (w.op >= 0)
        ok &= (int)x->op == w.op;
    if (!ok) {
        dump(r);
        fail_msg("%s: want %s basis=%s rule=%s evidence~'%s' why~'%s' op=%d", path,
                 bg_action_name(w.action), bg_basis_name(w.basis), w.rule,
                 w.evidence ? w.evidence : "*", w.why ? w.why : "*", w.op);
    }
}

static void expect_outcome(const req_t *r, bg_outcome_t outcome, bg_outcome_t would)
{
    if (r->d.outcome != outcome || r->d.would != would) {
        dump(r);
        fail_msg("want outcome %s (would %s)", bg_outcome_name(outcome), bg_outcome_name(would));
    }
}

/* The reason with CODE, or fail. */
static const bg_reason_t *reason(const req_t *r, const char *code)
{
    for (int i = 0; i < r->d.nreasons; i++)
        if (strcmp(r->d.reasons[i].code, code) == 0)
            return &r->d.reasons[i];
    dump(r);
    fail_msg("no reason %s", code);
    return NULL;
}

/* Apply and render; the new body as JSON (NULL when nothing was rewritten). */
static json_t *apply_render(req_t *r)
{
    assert_int_equal(bg_decision_apply(&r->d, r->insp, r->cfg->policy), 0);
    if (!bg_inspection_modified(r->insp))
        return NULL;
    bg_rewrite_t rw;
    assert_int_equal(bg_inspection_render(r->insp, &rw), 0);
    assert_true(rw.body_changed);
    json_error_t jerr;
    json_t *j = json_loadb(rw.body, rw.body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        fprintf(stderr, "rendered body is not JSON: %.*s\n", (int)rw.body_len, rw.body);
    assert_non_null(j);
    bg_rewrite_free(&rw);
    return j;
}

/* A resident ID number (GB 11643) born on BIRTH ("YYYYMMDD"). */
static void make_id(char out[19], const char *birth, const char *seq)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[] = "10X98765432";
    snprintf(out, 19, "110105%s%s", birth, seq);
    int s = 0;
    for (int i = 0; i < 17; i++)
        s += (out[i] - '0') * w[i];
    out[17] = check[s % 11];
    out[18] = '\0';
}

/* The decision's members of the audit record, parsed: written by
 * bg_decision_write, the writer the daemon and replay use. */
static json_t *decision_json(const bg_decision_t *d, bg_inspection_t *insp)
{
    bg_sbuf_t b;
    memset(&b, 0, sizeof b);
    bg_sbuf_adds(&b, "{\"record\":true");
    bg_decision_write(d, insp, &b);
    bg_sbuf_adds(&b, "}");
    assert_false(b.failed);
    json_error_t err;
    json_t *o = json_loadb(b.p, b.n, 0, &err);
    bg_sbuf_free(&b);
    assert_non_null(o);
    return o;
}

static void hmac_hex(const char *id, char out[65])
{
    unsigned char mac[32];
    unsigned int ml = 0;
    assert_non_null(HMAC(EVP_sha256(), SUBJECT_KEY, sizeof SUBJECT_KEY, (const unsigned char *)id,
                         strlen(id), mac, &ml));
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", mac[i]);
}

/* Rules most cases use. */
#define RULE_MOBILE_CONSENT                                                                        \
    "    {\"id\": \"mobile-consent\", \"clause\": \"PP 4.1\", \"categories\": [\"cn_mobile\"], "   \
    "\"bases\": [\"consent\"], \"fallback\": \"block\"}"

#define BODY_USER "{\"user\": {\"id\": \"" SUBJ "\", \"phone\": \"" MOBILE "\"}}"

/* ---------------------------------------------------------------------- */
/* 0. Domestic destinations                                                */

static void test_domestic_allowed_without_inspection(void **state)
{
    (void)state;
    bg_config_t *cfg =
        load("", NULL, RULE_MOBILE_CONSENT, RT("ship", "acme-us", "delivery", SUBJECTS));
    const char *body =
        "{\"user\": {\"id\": \"" SUBJ "\", \"phone\": \"" MOBILE "\"}, \"password\": \"hunter2\"}";
    req_t r;

    /* The same request abroad is blocked: no consent (no registry). */
    run(&r, cfg, "ship", body, (opts_t){.country = "US"});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_int_equal(r.d.cross_border, 1);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "",
                       "no consent registry configured", -1});
    done(&r);

    /* An unknown country is abroad too. */
    run(&r, cfg, "ship", body, (opts_t){.country = ""});
    assert_int_equal(r.d.cross_border, 1);
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    done(&r);

    /* Mainland China: allowed, not inspected. */
    run(&r, cfg, "ship", body, (opts_t){.country = "CN"});
    assert_null(r.insp);
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    assert_int_equal(r.d.cross_border, 0);
    assert_int_equal(r.d.inspected, 0);
    assert_int_equal(r.d.nfd, 0);
    assert_int_equal(r.d.nreasons, 0);
    assert_string_equal(r.d.mechanism, "not_needed");
    done(&r);
    bg_config_unref(cfg);

    /* inspect_domestic: findings recorded, nothing changed. */
    cfg = load("\"inspect_domestic\": true", NULL, RULE_MOBILE_CONSENT,
               RT("ship", "acme-us", "delivery", SUBJECTS));
    run(&r, cfg, "ship", body, (opts_t){.country = "CN"});
    assert_non_null(r.insp);
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    assert_int_equal(r.d.inspected, 1);
    assert_int_equal(r.d.nfd, 2);
    expect_fd(&r, "$.user.phone", (want_t){BG_ACT_ALLOW, BG_BASIS_NONE, "domestic", "", NULL, -1});
    expect_fd(&r, "$.password", (want_t){BG_ACT_ALLOW, BG_BASIS_NONE, "domestic", "", NULL, -1});
    done(&r);
    bg_config_unref(cfg);
}

/* ---------------------------------------------------------------------- */
/* 1-2. Denylist, undecodable and opaque bodies                            */

static void test_recipient_denylisted(void **state)
{
    (void)state;
    bg_config_t *cfg =
        load("", NULL, "    {\"id\": \"all\", \"categories\": [\"*\"], \"fallback\": \"remove\"}",
             RT("bad", "blocked-corp", "delivery", ""));
    req_t r;
    /* Even a body without any PI. */
    run(&r, cfg, "bad", "{\"sku\": \"A-1\", \"qty\": 2}", (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_int_equal(r.d.nreasons, 1);
    assert_string_equal(r.d.reasons[0].code, "recipient_denylisted");
    assert_non_null(strstr(r.d.reasons[0].detail, "blocked-corp"));
    assert_non_null(strstr(r.d.reasons[0].detail, "CAC Art. 42 list 2026-3"));
    assert_int_equal(r.d.nfd, 0);
    done(&r);
    /* Domestic transfers are not cross-border transfers: not refused. */
    run(&r, cfg, "bad", "{\"sku\": \"A-1\"}", (opts_t){.country = "CN"});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    done(&r);
    bg_config_unref(cfg);
}

static void test_undecodable_body(void **state)
{
    (void)state;
    bg_config_t *cfg =
        load("", NULL, RULE_MOBILE_CONSENT, RT("ship", "acme-us", "delivery", SUBJECTS));
    req_t r;
    run(&r, cfg, "ship", "{\"user\": {\"phone\": \"" MOBILE "\"", (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_int_equal(r.d.nreasons, 1);
    assert_string_equal(r.d.reasons[0].code, "undecodable");
    assert_null(strstr(r.d.reasons[0].detail, MOBILE));
    done(&r);
    /* Duplicate keys: the upstream might read the one not inspected. */
    run(&r, cfg, "ship", "{\"note\": \"x\", \"note\": \"" MOBILE "\"}", (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_string_equal(reason(&r, "undecodable")->code, "undecodable");
    done(&r);
    bg_config_unref(cfg);

    /* policy.undecodable = allow: such bodies "go abroad uninspected". */
    cfg = load("\"undecodable\": \"allow\"",
               "  \"operators\": {\"cn_mobile\": {\"op\": \"mask\"}},\n",
               "    {\"id\": \"mobile\", \"categories\": [\"cn_mobile\"], \"bases\": "
               "[\"consent\"], \"fallback\": \"deidentify\"}",
               RT("ship", "acme-us", "delivery", SUBJECTS));
    run(&r, cfg, "ship", "{\"user\": {\"id\": \"x\" \"phone\": \"" MOBILE "\"}}", (opts_t){0});
    assert_int_equal(bg_inspection_body_kind(r.insp), BG_BODY_UNDECODABLE);
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    assert_int_equal(r.d.nreasons, 1);
    assert_string_equal(r.d.reasons[0].code, "undecodable_allowed");
    assert_int_equal(bg_decision_apply(&r.d, r.insp, cfg->policy), 0);
    assert_int_equal(bg_inspection_modified(r.insp), 0);
    done(&r);
    /* PI before the point where decoding failed (here a duplicate key). */
    run(&r, cfg, "ship", "{\"user\": {\"phone\": \"" MOBILE "\"}, \"a\": 1, \"a\": 2}",
        (opts_t){0});
    assert_int_equal(bg_inspection_body_kind(r.insp), BG_BODY_UNDECODABLE);
    /* Findings made before the decoder gave up are not acted on: the body
     * goes uninspected, nothing is rewritten and nothing is claimed. */
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    assert_int_equal((int)r.d.nfd, 0);
    assert_int_equal(bg_decision_apply(&r.d, r.insp, cfg->policy), 0);
    assert_int_equal(bg_inspection_modified(r.insp), 0);
    done(&r);
    bg_config_unref(cfg);
}

static void test_opaque_body(void **state)
{
    (void)state;
    bg_config_t *cfg = load("", NULL, RULE_MOBILE_CONSENT,
                            RT("img", "acme-us", "support", "") ",\n" RT(
                                "img-ok", "acme-us", "support", ", \"opaque_bodies\": \"allow\""));
    req_t r;
    run(&r, cfg, "img", "\x89PNG\r\n\x1a\nIHDR", (opts_t){.ctype = "image/png"});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_int_equal(r.d.nreasons, 1);
    assert_string_equal(r.d.reasons[0].code, "opaque_body");
    done(&r);
    /* The bytes decide, not the label: binary under octet-stream is opaque,
     * text under it is read (and has nothing here). */
    run(&r, cfg, "img", "\x01\x02\x03binary\x00", (opts_t){.ctype = "application/octet-stream"});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_string_equal(r.d.reasons[0].code, "opaque_body");
    done(&r);
    run(&r, cfg, "img", "plain words", (opts_t){.ctype = "application/octet-stream"});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    done(&r);
    run(&r, cfg, "img-ok", "\x89PNG\r\n\x1a\nIHDR", (opts_t){.ctype = "image/png"});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    assert_int_equal(r.d.nreasons, 0);
    done(&r);
    bg_config_unref(cfg);
}

/* ---------------------------------------------------------------------- */
/* 4.1 Never-export categories                                             */

static void test_never_export(void **state)
{
    (void)state;
    /* Even a route declaring a legal obligation and a rule taking every
     * category on it cannot send credentials. */
    const char *rules = "    {\"id\": \"all\", \"categories\": [\"*\"], \"bases\": "
                        "[\"legal_obligation\"], \"fallback\": \"block\"}";
    const char *routes =
        RT("aml", "acme-us", "support",
           SUBJECTS ", \"bases\": {\"legal_obligation\": {\"reference\": \"AML Law Art. 16\"}}");
    const char *body =
        "{\"user\": {\"id\": \"" SUBJ "\", \"phone\": \"" MOBILE "\"}, \"password\": \"hunter2\"}";
    bg_config_t *cfg = load("", NULL, rules, routes);
    req_t r;
    run(&r, cfg, "aml", body, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    expect_fd(&r, "$.password",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "never_export", "", NULL, BG_OP_REDACT});
    assert_int_equal(fd_at(&r, "$.password")->anonymized, 1);
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_ALLOW, BG_BASIS_LEGAL_OBLIGATION, "all", "AML Law Art. 16", NULL, -1});
    json_t *j = apply_render(&r);
    assert_non_null(j);
    assert_null(json_object_get(j, "password"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "user"), "phone")),
                        MOBILE);
    json_decref(j);
    done(&r);
    bg_config_unref(cfg);

    cfg = load("\"never_export\": {\"categories\": [\"credentials\"], \"action\": \"block\"}", NULL,
               rules, routes);
    run(&r, cfg, "aml", body, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.password",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "never_export", "", NULL, -1});
    const bg_reason_t *why = reason(&r, "never_export");
    assert_string_equal(why->rule, "never_export");
    assert_string_equal(why->category, "credentials");
    assert_string_equal(why->path, "$.password");
    assert_null(strstr(why->detail, "hunter2"));
    done(&r);
    bg_config_unref(cfg);
}

/* ---------------------------------------------------------------------- */
/* 4.3 Declared bases                                                      */

static void test_legal_obligation_beats_consent(void **state)
{
    (void)state;
    const char *routes =
        RT("aml", "acme-us", "support",
           SUBJECTS ", \"bases\": {\"legal_obligation\": {\"reference\": \"AML Law Art. 16\"}}");
    bg_consent_reg_t *reg = open_reg();
    char cid[BG_CONSENT_ID_SIZE];
    grant(reg, SUBJ, (grant_t){.purpose = "support"}, cid);

    bg_config_t *cfg =
        load("", NULL,
             "    {\"id\": \"aml\", \"clause\": \"PP 6\", \"categories\": [\"cn_mobile\"], "
             "\"bases\": [\"consent\", \"legal_obligation\"], \"fallback\": \"block\"}",
             routes);
    req_t r;
    run(&r, cfg, "aml", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_ALLOW, BG_BASIS_LEGAL_OBLIGATION, "aml", "AML Law Art. 16", NULL, -1});
    assert_string_equal(fd_at(&r, "$.user.phone")->clause, "PP 6");
    /* A legal obligation is not a CAC 2024 exemption: the contract is cited. */
    assert_string_equal(r.d.mechanism, "standard_contract:CAC-SC-2026-0042");
    done(&r);
    bg_config_unref(cfg);

    /* Only the bases the rule lists count: the route's obligation is not one. */
    cfg = load("", NULL,
               "    {\"id\": \"consent-only\", \"categories\": [\"cn_mobile\"], \"bases\": "
               "[\"consent\"], \"fallback\": \"block\"}",
               routes);
    run(&r, cfg, "aml", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "consent-only", cid, NULL, -1});
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

static void test_hr_management_is_exempt(void **state)
{
    (void)state;
    bg_config_t *cfg =
        load("", NULL,
             "    {\"id\": \"hr\", \"categories\": [\"cn_resident_id\", \"bank_card\"], "
             "\"bases\": [\"hr_management\"], \"fallback\": \"block\"}",
             RT("payroll", "no-mech", "payroll",
                ", \"bases\": {\"hr_management\": {\"reference\": \"Employment contract 7.1\"}}"));
    req_t r;
    run(&r, cfg, "payroll", "{\"employee\": {\"id_no\": \"" ID_ADULT "\"}}", (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(
        &r, "$.employee.id_no",
        (want_t){BG_ACT_ALLOW, BG_BASIS_HR_MANAGEMENT, "hr", "Employment contract 7.1", NULL, -1});
    /* CAC 2024 Art. 5(2): no mechanism needed for HR transfers. */
    assert_string_equal(r.d.mechanism, "exempt:basis");
    done(&r);
    bg_config_unref(cfg);
}

/* ---------------------------------------------------------------------- */
/* 4.4 Contract necessity                                                  */

#define CONTRACT_TERMS                                                                             \
    SUBJECTS                                                                                       \
    ", \"bases\": {\"contract\": {\"purpose\": \"delivery\", \"necessary\": [\"cn_mobile\", "      \
    "\"address\"], \"necessary_fields\": [\"$.items[*].contact\"], \"reference\": "                \
    "\"$.order_id\"}}"

static void test_contract_necessity(void **state)
{
    (void)state;
    const char *routes = RT("ship", "acme-us", "delivery", CONTRACT_TERMS) ",\n" RT(
        "ship-nomech", "no-mech", "delivery", CONTRACT_TERMS);
    bg_consent_reg_t *reg = open_reg();
    char cid[BG_CONSENT_ID_SIZE];
    grant(reg, SUBJ, (grant_t){.purpose = "delivery"}, cid);

    /* Rule A: contract, then consent. */
    bg_config_t *cfg = load("", NULL,
                            "    {\"id\": \"delivery\", \"clause\": \"PP 4.2.1(3)\", "
                            "\"categories\": [\"cn_mobile\", \"email\"], "
                            "\"bases\": [\"contract\", \"consent\"], \"fallback\": \"block\"}",
                            routes);
    req_t r;
    const char *with_ref = "{\"order_id\": \"ORD-2026-1\", \"user\": {\"id\": \"" SUBJ
                           "\", \"phone\": \"" MOBILE "\"}}";
    run(&r, cfg, "ship", with_ref, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONTRACT, "delivery",
                       "contract:delivery; reference at $.order_id", NULL, -1});
    assert_null(strstr(fd_at(&r, "$.user.phone")->evidence, "ORD-2026-1"));
    assert_string_equal(r.d.mechanism, "standard_contract:CAC-SC-2026-0042");
    done(&r);
    /* Contract transfers need no mechanism (CAC 2024 Art. 5(1)). */
    run(&r, cfg, "ship-nomech", with_ref, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONTRACT, "delivery", "contract:delivery", NULL, -1});
    assert_string_equal(r.d.mechanism, "exempt:basis");
    done(&r);
    /* A necessary field (by path, any index). */
    run(&r, cfg, "ship",
        "{\"order_id\": \"ORD-2026-1\", \"items\": [{\"sku\": \"A\", \"contact\": \"" EMAIL "\"}]}",
        (opts_t){.reg = reg});
    expect_fd(&r, "$.items[0].contact",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONTRACT, "delivery", "contract:delivery", NULL, -1});
    done(&r);
    /* No order reference: falls through to consent. */
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "delivery", cid, NULL, -1});
    done(&r);
    bg_config_unref(cfg);

    /* Rule B: contract only; the fallback says why. */
    cfg = load("", NULL,
               "    {\"id\": \"delivery-contract\", \"categories\": [\"cn_mobile\", \"email\"], "
               "\"bases\": [\"contract\"], \"fallback\": \"block\"}",
               routes);
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "delivery-contract", "",
                       "contract reference missing at $.order_id", -1});
    const bg_reason_t *why = reason(&r, "no_basis");
    assert_string_equal(why->rule, "delivery-contract");
    assert_string_equal(why->category, "cn_mobile");
    assert_string_equal(why->path, "$.user.phone");
    assert_non_null(strstr(why->detail, "contract reference missing at $.order_id"));
    done(&r);
    /* The same reference on a form: the record says the policy looks in
     * the wrong kind of body (bordergate check warns where it can tell). */
    run(&r, cfg, "ship", "order_id=ORD-2026-1&phone=" MOBILE,
        (opts_t){.reg = reg, .ctype = "application/x-www-form-urlencoded"});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "form.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "delivery-contract", "",
                       "contract reference missing at $.order_id (the body is a form: the "
                       "reference is form.NAME)",
                       -1});
    done(&r);
    /* A category the contract does not need. */
    run(&r, cfg, "ship",
        "{\"order_id\": \"ORD-2026-1\", \"user\": {\"id\": \"" SUBJ "\", \"email\": \"" EMAIL
        "\"}}",
        (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.email",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "delivery-contract", "",
                       "not necessary for the delivery contract", -1});
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* ---------------------------------------------------------------------- */
/* 4.5 Consent                                                             */

static void test_consent_basis(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    char cid[BG_CONSENT_ID_SIZE], other[BG_CONSENT_ID_SIZE];
    grant(reg, SUBJ, (grant_t){.purpose = "delivery", .region = "US", .evidence = "app-form-v3"},
          cid);
    grant(reg, "subj-other", (grant_t){.recipient = "no-mech", .purpose = "delivery"}, other);
    bg_config_t *cfg =
        load("", NULL, RULE_MOBILE_CONSENT, RT("ship", "acme-us", "delivery", SUBJECTS));
    req_t r;
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    char ev[160];
    snprintf(ev, sizeof ev, "consent:%s; evidence app-form-v3", cid);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "mobile-consent", ev, NULL, -1});
    assert_string_equal(r.d.mechanism, "standard_contract:CAC-SC-2026-0042");
    /* The subject is recorded as its keyed pseudonym. */
    char pn[65];
    hmac_hex(SUBJ, pn);
    assert_int_equal(r.d.nsubjects, 1);
    assert_string_equal(r.d.subjects[0], pn);
    assert_int_equal(fd_at(&r, "$.user.phone")->subject, 0);
    done(&r);

    /* Another destination country than the consent names. */
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg, .country = "SG"});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "",
                       "no consent (out-of-scope)", -1});
    done(&r);
    /* A subject whose consent names another recipient. */
    run(&r, cfg, "ship", "{\"user\": {\"id\": \"subj-other\", \"phone\": \"" MOBILE "\"}}",
        (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "",
                       "no consent (out-of-scope)", -1});
    done(&r);
    /* A subject without any consent; a request without a subject id. */
    run(&r, cfg, "ship", "{\"user\": {\"id\": \"subj-none\", \"phone\": \"" MOBILE "\"}}",
        (opts_t){.reg = reg});
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "", "no consent (no-consent)", -1});
    done(&r);
    run(&r, cfg, "ship", "{\"user\": {\"phone\": \"" MOBILE "\"}}", (opts_t){.reg = reg});
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "", "no subject id", -1});
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/*
 * subjects.device_id: a request with no account id but a device id is the
 * device's person. The subject pseudonym is the device id's (the same
 * function as ids), so the device's own consent applies and the record says
 * "by": "device"; with an account id present the account wins; in a batch
 * each record's own device id is read.
 */
#define OAID1 "b081ef84-4457-4d2d-8830-e32819b8d202"
#define OAID2 "9079ecdf-bb77-4b57-81af-2dd1425288cb"
#define RULE_DEVICE_CONSENT                                                                        \
    "    {\"id\": \"device-consent\", \"categories\": [\"device_id\", \"account_id\"], "           \
    "\"bases\": [\"consent\"], \"fallback\": \"deidentify\", \"accept_pseudonymized\": true}"

static void test_device_subject(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    char cid[BG_CONSENT_ID_SIZE];
    grant(reg, OAID1, (grant_t){.purpose = "analytics"}, cid);
    bg_config_t *cfg = load("", NULL, RULE_DEVICE_CONSENT,
                            RT("sdk", "acme-us", "analytics",
                               ", \"subjects\": {\"id\": \"$.uid\", \"device_id\": "
                               "\"$.device.oaid\"}") ",\n" RT("batch", "acme-us", "analytics",
                                                              ", \"subjects\": {\"records\": "
                                                              "\"$.events[*]\", \"id\": \"$.uid\", "
                                                              "\"device_id\": "
                                                              "\"$.device.oaid\"}") ",\n" RT("noid",
                                                                                             "acme-"
                                                                                             "us",
                                                                                             "analy"
                                                                                             "tics",
                                                                                             ", "
                                                                                             "\"sub"
                                                                                             "jects"
                                                                                             "\": "
                                                                                             "{\"id"
                                                                                             "\": "
                                                                                             "\"$."
                                                                                             "uid\""
                                                                                             "}"));
    char pn1[65], pn2[65], pu[65];
    hmac_hex(OAID1, pn1);
    hmac_hex(OAID2, pn2);
    hmac_hex("u-7781", pu);
    req_t r;

    /* Device only: the device's person, on the device's own consent. */
    run(&r, cfg, "sdk", "{\"event\": \"open\", \"device\": {\"oaid\": \"" OAID1 "\"}}",
        (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.device.oaid",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "device-consent", cid, NULL, -1});
    assert_int_equal(r.d.nsubjects, 1);
    assert_string_equal(r.d.subjects[0], pn1);
    assert_int_equal(r.d.subject_by_device[0], 1);
    assert_int_equal(fd_at(&r, "$.device.oaid")->subject, 0);
    json_t *rec = decision_json(&r.d, r.insp);
    json_t *sj = json_array_get(json_object_get(rec, "subjects"), 0);
    assert_string_equal(json_string_value(json_object_get(sj, "pseudonym")), pn1);
    assert_string_equal(json_string_value(json_object_get(sj, "by")), "device");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(rec, "findings"), 0), "subject")),
                        pn1);
    char *text = json_dumps(rec, JSON_COMPACT);
    assert_non_null(text);
    assert_null(strstr(text, OAID1)); /* the pseudonym, never the device id */
    free(text);
    json_decref(rec);
    done(&r);

    /* Another device, without consent: removed (the default operator for
     * device ids), still its person. */
    run(&r, cfg, "sdk", "{\"device\": {\"oaid\": \"" OAID2 "\"}}", (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    expect_fd(&r, "$.device.oaid",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "device-consent", "",
                       "no consent (no-consent)", -1});
    assert_string_equal(r.d.subjects[0], pn2);
    assert_int_equal(r.d.subject_by_device[0], 1);
    done(&r);

    /* The user id wins: the account is the person, and the device's
     * consent is not the account's. */
    run(&r, cfg, "sdk", "{\"uid\": \"u-7781\", \"device\": {\"oaid\": \"" OAID1 "\"}}",
        (opts_t){.reg = reg});
    assert_string_equal(r.d.subjects[0], pu);
    assert_int_equal(r.d.subject_by_device[0], 0);
    expect_fd(&r, "$.device.oaid",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "device-consent", "",
                       "no consent (no-consent)", -1});
    rec = decision_json(&r.d, r.insp);
    assert_null(json_object_get(json_array_get(json_object_get(rec, "subjects"), 0), "by"));
    json_decref(rec);
    done(&r);

    /* A batch: each record's own subject, by account or by device. */
    run(&r, cfg, "batch",
        "{\"events\": [{\"uid\": \"u-7781\", \"device\": {\"oaid\": \"" OAID2 "\"}},"
        " {\"device\": {\"oaid\": \"" OAID1 "\"}}]}",
        (opts_t){.reg = reg});
    assert_int_equal(r.d.nsubjects, 2);
    assert_string_equal(r.d.subjects[0], pu);
    assert_int_equal(r.d.subject_by_device[0], 0);
    assert_string_equal(r.d.subjects[1], pn1);
    assert_int_equal(r.d.subject_by_device[1], 1);
    expect_fd(&r, "$.events[1].device.oaid",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "device-consent", cid, NULL, -1});
    expect_fd(&r, "$.events[0].device.oaid",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "device-consent", "", NULL, -1});
    done(&r);

    /* Without subjects.device_id the device's person is nobody. */
    run(&r, cfg, "noid", "{\"device\": {\"oaid\": \"" OAID1 "\"}}", (opts_t){.reg = reg});
    assert_string_equal(r.d.subjects[0], "");
    expect_fd(&r, "$.device.oaid",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "device-consent", "", "no subject id", -1});
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

static void test_consent_withdrawn(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    char cid[BG_CONSENT_ID_SIZE], err[256];
    grant(reg, SUBJ, (grant_t){.purpose = "delivery"}, cid);
    const int64_t T = T0 + 2 * HOUR;
    assert_int_equal(bg_consent_withdraw(reg, cid, T, "test", NULL, err, sizeof err), 0);
    bg_config_t *cfg =
        load("", NULL, RULE_MOBILE_CONSENT, RT("ship", "acme-us", "delivery", SUBJECTS));
    req_t r;
    /* Before the withdrawal: still counts (past decisions stay explained). */
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg, .now = T - SEC});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "mobile-consent", cid, NULL, -1});
    done(&r);
    /* From the moment of withdrawal on: not any more. */
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg, .now = T});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    done(&r);
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg, .now = T + SEC});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "", "no consent (withdrawn)", -1});
    assert_non_null(strstr(fd_at(&r, "$.user.phone")->why, cid));
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

static void test_consent_expired(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    char cid[BG_CONSENT_ID_SIZE];
    grant(reg, SUBJ,
          (grant_t){.purpose = "delivery", .granted = T0 - 400 * DAY, .expires = T0 - HOUR}, cid);
    grant(reg, "subj-later", (grant_t){.purpose = "delivery", .granted = T0 + HOUR}, NULL);
    bg_config_t *cfg =
        load("", NULL, RULE_MOBILE_CONSENT, RT("ship", "acme-us", "delivery", SUBJECTS));
    req_t r;
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "", "no consent (expired)", -1});
    done(&r);
    /* Still valid before it expired. */
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg, .now = T0 - 2 * HOUR});
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "mobile-consent", cid, NULL, -1});
    done(&r);
    /* Granted after the request. */
    run(&r, cfg, "ship", "{\"user\": {\"id\": \"subj-later\", \"phone\": \"" MOBILE "\"}}",
        (opts_t){.reg = reg});
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "",
                       "no consent (not-yet-granted)", -1});
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

static void test_sensitive_needs_sensitive_consent(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    char plain[BG_CONSENT_ID_SIZE], sens[BG_CONSENT_ID_SIZE];
    grant(reg, SUBJ, (grant_t){.purpose = "delivery"}, plain);
    bg_config_t *cfg = load("", NULL,
                            "    {\"id\": \"ids\", \"categories\": [\"cn_resident_id\", "
                            "\"cn_mobile\"], \"bases\": [\"consent\"], \"fallback\": \"block\"}",
                            RT("ship", "acme-us", "delivery", SUBJECTS));
    const char *body = "{\"user\": {\"id\": \"" SUBJ "\", \"id_no\": \"" ID_ADULT
                       "\", \"phone\": \"" MOBILE "\"}}";
    req_t r;
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.id_no",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "ids", "", "no consent (not-sensitive)", -1});
    assert_int_equal(fd_at(&r, "$.user.id_no")->sensitive, 1);
    /* The same consent covers the non-sensitive phone. */
    expect_fd(&r, "$.user.phone", (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "ids", plain, NULL, -1});
    done(&r);
    grant(reg, SUBJ, (grant_t){.purpose = "delivery", .sensitive = 1}, sens);
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.user.id_no", (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "ids", sens, NULL, -1});
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* ---------------------------------------------------------------------- */
/* Whose data: a consent covers its own subject only                       */

/* The attribution rule itself, on paths (policy/attribute.h). */
static void test_attribution_paths(void **state)
{
    (void)state;
    /* The nearest person object enclosing a value. */
    assert_int_equal(bg_attribute_owner("$.phone", NULL, 0), 0);
    assert_int_equal(bg_attribute_owner("$.user.phone", NULL, 0), strlen("$.user"));
    assert_int_equal(bg_attribute_owner("$.user.emergency_contact.phone", NULL, 0),
                     strlen("$.user.emergency_contact"));
    assert_int_equal(bg_attribute_owner("$.order.spouseInfo.id_no", NULL, 0),
                     strlen("$.order.spouseInfo"));
    assert_int_equal(bg_attribute_owner("$.passengers[2].id_no", NULL, 0),
                     strlen("$.passengers[2]"));
    assert_int_equal(bg_attribute_owner("$[\"收件人\"].phone", NULL, 0), strlen("$[\"收件人\"]"));
    assert_int_equal(bg_attribute_owner("$.payload(json).customer.email", NULL, 0),
                     strlen("$.payload(json).customer"));
    /* A scalar under a person key is not an object of its own. */
    assert_int_equal(bg_attribute_owner("$.customer", NULL, 0), 0);
    assert_int_equal(bg_attribute_owner("$.customer", NULL, 1), strlen("$.customer"));
    /* Things are not persons: a device, an order, the card's number. */
    assert_int_equal(bg_attribute_owner("$.device.imei", NULL, 0), 0);
    assert_int_equal(bg_attribute_owner("$.card.number", NULL, 0), 0);
    assert_int_equal(bg_attribute_owner("$.customs.buyer_id_no", NULL, 0), 0);
    /* Records are persons, and persons nest inside them. */
    assert_int_equal(bg_attribute_owner("$.events[3].device.imei", "$.events[*]", 0),
                     strlen("$.events[3]"));
    assert_int_equal(bg_attribute_owner("$.tickets[1].assignee.email", "$.tickets[*]", 0),
                     strlen("$.tickets[1].assignee"));
    assert_int_equal(bg_attribute_record_prefix("$.tickets[12].x", "$.tickets[*]"),
                     strlen("$.tickets[12]"));
    assert_int_equal(bg_attribute_record_prefix("$.ticketsx[1]", "$.tickets[*]"), 0);
    /* Query, header, cookie and form values belong to the request. */
    assert_int_equal(bg_attribute_owner("query.user", NULL, 0), 0);
    assert_int_equal(bg_attribute_owner("form.contact_phone", NULL, 0), 0);
    assert_int_equal(bg_attribute_owner("multipart.meta$.user.phone", NULL, 0),
                     strlen("multipart.meta$.user"));
    /* Enclosing: the object itself or one around it; never a sibling. */
    assert_true(bg_attribute_covers("", 0, "$.user", 6));
    assert_true(bg_attribute_covers("$.user", 6, "$.user", 6));
    assert_false(bg_attribute_covers("$.user.spouse", 13, "$.user", 6));
    assert_false(bg_attribute_covers("$.users", 7, "$.user", 6));
    assert_false(bg_attribute_covers("$.user", 6, "$.users", 7));
    assert_true(bg_attribute_person_key("emergency_contact", 17));
    assert_true(bg_attribute_person_key("guardianInfo", 12));
    assert_false(bg_attribute_person_key("device", 6));
    assert_false(bg_attribute_person_key("metadata", 8));
}

#define RULE_IDS_CONSENT                                                                           \
    "    {\"id\": \"ids\", \"clause\": \"PP 4.2\", \"categories\": [\"cn_resident_id\", "          \
    "\"cn_mobile\"], \"bases\": [\"consent\"], \"fallback\": \"block\"}"

/* The defect of issue 14: one subject's consent let another person's ID
 * number and mobile, nested in the same request, leave in clear. */
static void test_consent_covers_only_its_subject(void **state)
{
    (void)state;
    char other_id[19];
    make_id(other_id, "19800102", "051");
    bg_consent_reg_t *reg = open_reg();
    char cid[BG_CONSENT_ID_SIZE];
    grant(reg, SUBJ, (grant_t){.purpose = "delivery", .sensitive = 1}, cid);
    bg_config_t *cfg =
        load("", NULL, RULE_IDS_CONSENT, RT("ship", "acme-us", "delivery", SUBJECTS));
    char body[512];
    snprintf(body, sizeof body,
             "{\"user\": {\"id\": \"" SUBJ "\", \"id_no\": \"" ID_ADULT "\", \"phone\": \"" MOBILE
             "\", \"emergency_contact\": {\"id_no\": \"%s\", \"phone\": \"" MOBILE2 "\"}}}",
             other_id);
    req_t r;
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone", (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "ids", cid, NULL, -1});
    expect_fd(&r, "$.user.id_no", (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "ids", cid, NULL, -1});
    expect_fd(&r, "$.user.emergency_contact.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "ids", "",
                       "belongs to another person ($.user.emergency_contact)", -1});
    expect_fd(&r, "$.user.emergency_contact.id_no",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "ids", "", "belongs to another person", -1});
    assert_int_equal(fd_at(&r, "$.user.phone")->subject, 0);
    assert_int_equal(fd_at(&r, "$.user.emergency_contact.phone")->subject, -1);
    /* The record says whose each finding is: the other person's carry no
     * subject pseudonym (nobody's the route can name). */
    json_t *j = decision_json(&r.d, r.insp);
    json_t *fs = json_object_get(j, "findings");
    int with_subject = 0, without = 0;
    for (size_t i = 0; i < json_array_size(fs); i++) {
        json_t *e = json_array_get(fs, i);
        const char *path = json_string_value(json_object_get(e, "path"));
        int has = json_object_get(e, "subject") != NULL;
        if (strstr(path, "emergency_contact") != NULL)
            without += !has;
        else
            with_subject += has;
    }
    assert_int_equal(with_subject, 2);
    assert_int_equal(without, 2);
    json_decref(j);
    done(&r);

    /* Under a de-identifying fallback the other person's values are
     * changed while the subject's leave on the consent. */
    bg_config_t *cfg2 =
        load("", NULL,
             "    {\"id\": \"ids\", \"categories\": [\"cn_resident_id\", \"cn_mobile\", "
             "\"account_id\"], \"bases\": [\"consent\"], \"fallback\": \"remove\"}",
             RT("ship", "acme-us", "delivery", ", \"subjects\": {\"id\": \"$.user_id\"}"));
    snprintf(body, sizeof body,
             "{\"user_id\": \"" SUBJ "\", \"phone\": \"" MOBILE
             "\", \"spouse\": {\"id_no\": \"%s\", \"mobile\": \"" MOBILE2 "\"}}",
             other_id);
    run(&r, cfg2, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    expect_fd(&r, "$.phone", (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "ids", cid, NULL, -1});
    expect_fd(&r, "$.spouse.mobile",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "ids", "", "belongs to another person", -1});
    expect_fd(&r, "$.spouse.id_no",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "ids", "", "belongs to another person", -1});
    j = apply_render(&r);
    assert_non_null(j);
    char *text = json_dumps(j, 0);
    assert_non_null(text);
    assert_non_null(strstr(text, MOBILE));
    assert_null(strstr(text, MOBILE2));
    assert_null(strstr(text, other_id));
    free(text);
    json_decref(j);
    done(&r);
    bg_config_unref(cfg2);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* In a batch, a record's requester is its subject; the assignee and the
 * witness nested in the same record are other people. */
static void test_consent_in_a_record_covers_only_its_subject(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    grant(reg, "req-1", (grant_t){.purpose = "support"}, NULL);
    bg_config_t *cfg = load("", NULL,
                            "    {\"id\": \"tickets\", \"categories\": [\"cn_mobile\", \"email\"], "
                            "\"bases\": [\"consent\"], \"fallback\": \"remove\"}",
                            RT("desk", "acme-us", "support",
                               ", \"subjects\": {\"records\": \"$.tickets[*]\", \"id\": "
                               "\"$.requester.external_id\"}"));
    const char *body = "{\"tickets\": [{\"requester\": {\"external_id\": \"req-1\", \"email\": "
                       "\"a@example.cn\"}, \"callback\": \"13800000001\", \"assignee\": "
                       "{\"email\": \"b@example.cn\", \"phone\": \"13800000002\"}}]}";
    req_t r;
    run(&r, cfg, "desk", body, (opts_t){.reg = reg});
    expect_fd(&r, "$.tickets[0].requester.email",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "tickets", "consent:", NULL, -1});
    /* Around the subject's object, in its own record: the subject's. */
    expect_fd(&r, "$.tickets[0].callback",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "tickets", "consent:", NULL, -1});
    expect_fd(&r, "$.tickets[0].assignee.email",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "tickets", "",
                       "belongs to another person ($.tickets[0].assignee)", -1});
    expect_fd(&r, "$.tickets[0].assignee.phone",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "tickets", "", "another person", -1});
    assert_int_equal(fd_at(&r, "$.tickets[0].requester.email")->subject, 0);
    assert_int_equal(fd_at(&r, "$.tickets[0].assignee.email")->subject, -1);
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* Another person's resident ID number does not decide the subject's age:
 * an adult's consent is not refused because their child's ID is nested in
 * the request, and the child's data does not ride on it. */
static void test_age_from_the_subjects_own_id_number(void **state)
{
    (void)state;
    char kid_id[19];
    make_id(kid_id, "20160315", "123");
    bg_consent_reg_t *reg = open_reg();
    grant(reg, SUBJ, (grant_t){.purpose = "delivery", .sensitive = 1}, NULL);
    bg_config_t *cfg =
        load("", NULL, RULE_IDS_CONSENT, RT("ship", "acme-us", "delivery", SUBJECTS));
    char body[512];
    snprintf(body, sizeof body,
             "{\"user\": {\"id\": \"" SUBJ "\", \"phone\": \"" MOBILE
             "\", \"child\": {\"id_no\": \"%s\"}}}",
             kid_id);
    req_t r;
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    assert_int_equal(r.d.subject_minor[0], 0);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "ids", "consent:", NULL, -1});
    expect_fd(&r, "$.user.child.id_no",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "ids", "", "another person", -1});
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* ---------------------------------------------------------------------- */
/* Minors                                                                  */

static void test_minor_from_birth_date(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    char sens[BG_CONSENT_ID_SIZE], guardian[BG_CONSENT_ID_SIZE];
    grant(reg, "kid-1", (grant_t){.purpose = "delivery", .sensitive = 1}, sens);
    bg_config_t *cfg =
        load("", NULL, RULE_MOBILE_CONSENT,
             RT("ship", "acme-us", "delivery",
                ", \"subjects\": {\"id\": \"$.user.id\", \"birth_date\": \"$.user.born\"}"));
    char body[256];
    req_t r;
    /* Ten years old: even a consent covering sensitive PI is not enough. */
    snprintf(body, sizeof body,
             "{\"user\": {\"id\": \"kid-1\", \"born\": \"2016-03-15\", \"phone\": \"" MOBILE
             "\"}}");
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_int_equal(r.d.subject_minor[0], 1);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "",
                       "no consent (not-guardian)", -1});
    /* All of a minor's data counts as sensitive. */
    assert_int_equal(fd_at(&r, "$.user.phone")->sensitive, 1);
    done(&r);
    grant(reg, "kid-1", (grant_t){.purpose = "delivery", .sensitive = 1, .guardian = 1}, guardian);
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "mobile-consent", guardian, NULL, -1});
    done(&r);

    /* The 14th birthday, in China Standard Time: T0 is 2026-05-01 08:00 CST. */
    grant(reg, "teen", (grant_t){.purpose = "delivery", .sensitive = 1}, NULL);
    snprintf(body, sizeof body,
             "{\"user\": {\"id\": \"teen\", \"born\": \"2012-05-01\", \"phone\": \"" MOBILE "\"}}");
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    assert_int_equal(r.d.subject_minor[0], 0);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "mobile-consent", NULL, NULL, -1});
    done(&r);
    /* 2026-04-30T23:00Z is already the birthday in China (07:00 CST). */
    run(&r, cfg, "ship", body, (opts_t){.reg = reg, .now = T0 - HOUR});
    assert_int_equal(r.d.subject_minor[0], 0);
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    done(&r);
    /* 2026-04-30T15:00Z is 23:00 CST the day before the birthday. */
    run(&r, cfg, "ship", body, (opts_t){.reg = reg, .now = T0 - 9 * HOUR});
    assert_int_equal(r.d.subject_minor[0], 1);
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    done(&r);
    snprintf(body, sizeof body,
             "{\"user\": {\"id\": \"teen\", \"born\": \"2012-05-02\", \"phone\": \"" MOBILE "\"}}");
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    assert_int_equal(r.d.subject_minor[0], 1);
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* Issue 14: a policy may promise guardian consent beyond PIPL Art. 31's
 * under-14 rule (the Weidijia seed: a minor who has reached 14 also needs
 * a guardian's consent). guardian_consent_age 18 makes a 16-year-old's own
 * consent insufficient, without making all their data sensitive. */
static void test_guardian_consent_age_band(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    char guardian[BG_CONSENT_ID_SIZE];
    grant(reg, "teen-16", (grant_t){.purpose = "delivery"}, NULL);
    const char *route =
        RT("ship", "acme-us", "delivery",
           ", \"subjects\": {\"id\": \"$.user.id\", \"birth_date\": \"$.user.born\", "
           "\"region\": \"$.user.cc\"}");
    const char *rules = "    {\"id\": \"abroad\", \"categories\": [\"cn_mobile\"], \"bases\": "
                        "[\"consent\", \"subject_abroad\"], \"fallback\": \"block\"}";
    const char *body = "{\"user\": {\"id\": \"teen-16\", \"born\": \"2010-03-15\", \"cc\": \"US\", "
                       "\"phone\": \"" MOBILE "\"}}";
    /* PIPL's default (14): the 16-year-old's own consent holds. */
    bg_config_t *cfg = load("\"subject_abroad\": \"allow\"", NULL, rules, route);
    req_t r;
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "abroad", "consent:", NULL, -1});
    assert_int_equal(r.d.subject_guardian[0], 0);
    done(&r);
    bg_config_unref(cfg);

    /* guardian_consent_age 18: neither their own consent nor living
     * abroad is enough; the data is not made sensitive (not under 14). */
    cfg = load("\"subject_abroad\": \"allow\", \"guardian_consent_age\": 18", NULL, rules, route);
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "abroad", "", "no consent (not-guardian)", -1});
    assert_int_equal(r.d.subject_minor[0], 0);
    assert_int_equal(r.d.subject_guardian[0], 1);
    assert_int_equal(fd_at(&r, "$.user.phone")->sensitive, 0);
    json_t *j = decision_json(&r.d, r.insp);
    json_t *sj = json_array_get(json_object_get(j, "subjects"), 0);
    assert_true(json_is_true(json_object_get(sj, "guardian_consent_required")));
    assert_null(json_object_get(sj, "minor"));
    json_decref(j);
    done(&r);
    /* A guardian's consent does. */
    grant(reg, "teen-16", (grant_t){.purpose = "delivery", .guardian = 1}, guardian);
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "abroad", guardian, NULL, -1});
    done(&r);
    /* Eighteen: an adult again. */
    run(&r, cfg, "ship",
        "{\"user\": {\"id\": \"adult-18\", \"born\": \"2008-03-15\", \"cc\": \"US\", \"phone\": "
        "\"" MOBILE "\"}}",
        (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_ALLOW, BG_BASIS_SUBJECT_ABROAD, "abroad", "subject region US", NULL, -1});
    assert_int_equal(r.d.subject_guardian[0], 0);
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* The record's "basis_asserted_by" of the finding at PATH, or NULL. */
static const char *asserted_by(const req_t *r, const char *path, char *out, size_t cap)
{
    json_t *j = decision_json(&r->d, r->insp);
    json_t *fs = json_object_get(j, "findings");
    size_t i;
    json_t *e;
    const char *res = NULL;
    json_array_foreach(fs, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "path")), path) != 0)
            continue;
        const char *v = json_string_value(json_object_get(e, "basis_asserted_by"));
        if (v != NULL) {
            snprintf(out, cap, "%s", v);
            res = out;
        }
    }
    json_decref(j);
    return res;
}

/* Issue 14: "subject abroad" rests on a region the caller writes. The
 * record says who asserted it; the calling service's gateway header wins
 * over the body; a policy may refuse regions the caller wrote. */
static void test_region_asserted_by_caller(void **state)
{
    (void)state;
    const char *route = RT("ship", "acme-us", "delivery",
                           ", \"subjects\": {\"id\": \"$.user.id\", \"region\": \"$.user.cc\", "
                           "\"region_header\": \"X-Subject-Region\"}");
    const char *rules = "    {\"id\": \"abroad\", \"categories\": [\"cn_mobile\"], \"bases\": "
                        "[\"subject_abroad\"], \"fallback\": \"block\"}";
    const char *in_us = "{\"user\": {\"id\": \"u1\", \"cc\": \"US\", \"phone\": \"" MOBILE "\"}}";
    const char *in_cn = "{\"user\": {\"id\": \"u1\", \"cc\": \"CN\", \"phone\": \"" MOBILE "\"}}";
    char buf[32];
    bg_config_t *cfg = load("\"subject_abroad\": \"allow\"", NULL, rules, route);
    req_t r;
    /* The caller's word: allowed, and recorded as the caller's. */
    run(&r, cfg, "ship", in_us, (opts_t){0});
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_ALLOW, BG_BASIS_SUBJECT_ABROAD, "abroad", "subject region US", NULL, -1});
    assert_string_equal(fd_at(&r, "$.user.phone")->asserted_by, "caller");
    assert_string_equal(asserted_by(&r, "$.user.phone", buf, sizeof buf), "caller");
    done(&r);
    /* The gateway says CN: the body's US does not count. */
    run(&r, cfg, "ship", in_us, (opts_t){.hdrs = {"X-Subject-Region: CN"}});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    done(&r);
    /* The gateway says US although the body says CN: allowed, the gateway's. */
    run(&r, cfg, "ship", in_cn, (opts_t){.hdrs = {"x-subject-region: us"}});
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_ALLOW, BG_BASIS_SUBJECT_ABROAD, "abroad", "subject region US", NULL, -1});
    assert_string_equal(asserted_by(&r, "$.user.phone", buf, sizeof buf), "gateway");
    done(&r);
    bg_config_unref(cfg);

    /* subject_region_from gateway_header: the caller's word is refused. */
    cfg = load("\"subject_abroad\": \"allow\", \"subject_region_from\": \"gateway_header\"", NULL,
               rules, route);
    run(&r, cfg, "ship", in_us, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "abroad", "",
                       "subject region asserted by the caller ($.user.cc)", -1});
    assert_null(asserted_by(&r, "$.user.phone", buf, sizeof buf));
    done(&r);
    run(&r, cfg, "ship", in_us, (opts_t){.hdrs = {"X-Subject-Region: DE"}});
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_ALLOW, BG_BASIS_SUBJECT_ABROAD, "abroad", "subject region DE", NULL, -1});
    assert_string_equal(asserted_by(&r, "$.user.phone", buf, sizeof buf), "gateway");
    done(&r);
    /* Not a region code: ignored, and the caller's word is still refused. */
    run(&r, cfg, "ship", in_us, (opts_t){.hdrs = {"X-Subject-Region: USA"}});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    done(&r);
    bg_config_unref(cfg);
}

static void test_minor_from_resident_id_and_subject_abroad(void **state)
{
    (void)state;
    char kid_id[19], check[19];
    make_id(check, "19491231", "002");
    assert_string_equal(check, ID_ADULT); /* the generator agrees with a known number */
    make_id(kid_id, "20160315", "123");
    bg_consent_reg_t *reg = open_reg();
    grant(reg, "kid-2", (grant_t){.purpose = "delivery", .sensitive = 1}, NULL);
    bg_config_t *cfg =
        load("\"subject_abroad\": \"allow\"", NULL,
             "    {\"id\": \"abroad\", \"categories\": [\"cn_mobile\", \"cn_resident_id\"], "
             "\"bases\": [\"consent\", \"subject_abroad\"], \"fallback\": \"block\"}",
             RT("ship", "acme-us", "delivery",
                ", \"subjects\": {\"id\": \"$.user.id\", \"region\": \"$.user.cc\"}"));
    char body[256];
    req_t r;
    /* A child living in the US: neither consent (not a guardian's) nor
     * subject_abroad (a minor needs a guardian's consent) holds. */
    snprintf(
        body, sizeof body,
        "{\"user\": {\"id\": \"kid-2\", \"cc\": \"US\", \"id_no\": \"%s\", \"phone\": \"" MOBILE
        "\"}}",
        kid_id);
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    assert_int_equal(r.d.subject_minor[0], 1);
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "abroad", "", "no consent (not-guardian)", -1});
    expect_fd(&r, "$.user.id_no",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "abroad", "", "no consent (not-guardian)", -1});
    assert_int_equal(fd_at(&r, "$.user.phone")->sensitive, 1);
    done(&r);
    /* An adult living in the US, no consent at all: subject_abroad. */
    snprintf(
        body, sizeof body,
        "{\"user\": {\"id\": \"adult-1\", \"cc\": \"us\", \"id_no\": \"%s\", \"phone\": \"" MOBILE
        "\"}}",
        ID_ADULT);
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    assert_int_equal(r.d.subject_minor[0], 0);
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_ALLOW, BG_BASIS_SUBJECT_ABROAD, "abroad", "subject region US", NULL, -1});
    expect_fd(
        &r, "$.user.id_no",
        (want_t){BG_ACT_ALLOW, BG_BASIS_SUBJECT_ABROAD, "abroad", "subject region US", NULL, -1});
    assert_string_equal(r.d.mechanism, "standard_contract:CAC-SC-2026-0042");
    done(&r);
    /* ... living in China: no. */
    snprintf(body, sizeof body,
             "{\"user\": {\"id\": \"adult-1\", \"cc\": \"CN\", \"phone\": \"" MOBILE "\"}}");
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "abroad", "", "no consent (no-consent)", -1});
    done(&r);
    bg_config_unref(cfg);

    /* The policy must enable the basis. */
    cfg = load("", NULL,
               "    {\"id\": \"abroad\", \"categories\": [\"cn_mobile\"], \"bases\": "
               "[\"subject_abroad\"], \"fallback\": \"block\"}",
               RT("ship", "acme-us", "delivery",
                  ", \"subjects\": {\"id\": \"$.user.id\", \"region\": \"$.user.cc\"}"));
    snprintf(body, sizeof body,
             "{\"user\": {\"id\": \"adult-1\", \"cc\": \"US\", \"phone\": \"" MOBILE "\"}}");
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "abroad", "", "no legal basis held", -1});
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* ---------------------------------------------------------------------- */
/* DNT / Sec-GPC                                                           */

static void test_dnt_and_gpc(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    char cid[BG_CONSENT_ID_SIZE];
    grant(reg, SUBJ, (grant_t){.purpose = "*"}, cid);
    bg_config_t *cfg = load("\"honour_dnt_for\": [\"analytics\"]", NULL, RULE_MOBILE_CONSENT,
                            RT("track", "acme-us", "analytics",
                               SUBJECTS) ",\n" RT("ship", "acme-us", "delivery", SUBJECTS));
    req_t r;
    run(&r, cfg, "track", BODY_USER, (opts_t){.reg = reg});
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "mobile-consent", cid, NULL, -1});
    assert_int_equal(r.d.dnt, 0);
    done(&r);
    run(&r, cfg, "track", BODY_USER, (opts_t){.reg = reg, .hdrs = {"DNT: 1"}});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_int_equal(r.d.dnt, 1);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "",
                       "DNT/Sec-GPC opt-out for purpose analytics", -1});
    done(&r);
    run(&r, cfg, "track", BODY_USER, (opts_t){.reg = reg, .hdrs = {"Sec-GPC: 1"}});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_int_equal(r.d.dnt, 1);
    expect_fd(
        &r, "$.user.phone",
        (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "", "DNT/Sec-GPC opt-out", -1});
    done(&r);
    run(&r, cfg, "track", BODY_USER, (opts_t){.reg = reg, .hdrs = {"DNT: 0"}});
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "mobile-consent", cid, NULL, -1});
    done(&r);
    /* A purpose the policy does not name: the consent counts. */
    run(&r, cfg, "ship", BODY_USER, (opts_t){.reg = reg, .hdrs = {"DNT: 1", "Sec-GPC: 1"}});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    assert_int_equal(r.d.dnt, 0);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "mobile-consent", cid, NULL, -1});
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* ---------------------------------------------------------------------- */
/* 4.7 Fallbacks                                                           */

static void test_fallbacks(void **state)
{
    (void)state;
    bg_config_t *cfg = load(
        "",
        "  \"operators\": {\"cn_mobile\": {\"op\": \"mask\", \"keep_start\": 3, \"keep_end\": 4},\n"
        "                \"email\": {\"op\": \"replace\", \"replacement\": \"[email]\"}},\n",
        "    {\"id\": \"mobile\", \"categories\": [\"cn_mobile\"], \"bases\": [\"consent\"], "
        "\"fallback\": \"deidentify\", \"accept_pseudonymized\": true},\n"
        "    {\"id\": \"email\", \"categories\": [\"email\"], \"bases\": [\"consent\"],\n"
        "     \"fallback\": {\"action\": \"deidentify\", \"operator\": {\"op\": \"mask\", "
        "\"keep_start\": 1, \"keep_end\": 0}}, \"accept_pseudonymized\": true},\n"
        "    {\"id\": \"ip\", \"categories\": [\"ip_address\"], \"bases\": [\"consent\"], "
        "\"fallback\": \"remove\"},\n"
        "    {\"id\": \"gps\", \"categories\": [\"gps_location\"], \"fallback\": \"deidentify\"}",
        RT("ship", "acme-us", "delivery", SUBJECTS));
    req_t r;
    run(&r, cfg, "ship",
        "{\"user\": {\"id\": \"" SUBJ "\", \"phone\": \"" MOBILE "\", \"email\": \"" EMAIL
        "\", \"ip\": \"203.0.113.7\"},"
        " \"gps\": \"31.2304,121.4737\"}",
        (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    /* The category's operator. */
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_DEIDENTIFY, BG_BASIS_NONE, "mobile", "",
                       "no consent registry configured", BG_OP_MASK});
    assert_int_equal(fd_at(&r, "$.user.phone")->anonymized, 0);
    assert_int_equal(fd_at(&r, "$.user.phone")->pseudonymized_accepted, 1);
    /* The rule's operator beats the category's. */
    expect_fd(&r, "$.user.email",
              (want_t){BG_ACT_DEIDENTIFY, BG_BASIS_NONE, "email", "", NULL, BG_OP_MASK});
    expect_fd(&r, "$.user.ip",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "ip", "", NULL, BG_OP_REDACT});
    assert_int_equal(fd_at(&r, "$.user.ip")->anonymized, 1);
    /* No operator for the category: the default (redact) removes it. */
    expect_fd(
        &r, "$.gps",
        (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "gps", "", "no legal basis held", BG_OP_REDACT});
    /* Masked PI is still PI: the mechanism is needed and cited. */
    assert_string_equal(r.d.mechanism, "standard_contract:CAC-SC-2026-0042");
    json_t *j = apply_render(&r);
    assert_non_null(j);
    json_t *u = json_object_get(j, "user");
    assert_string_equal(json_string_value(json_object_get(u, "phone")), "138****5678");
    assert_string_equal(json_string_value(json_object_get(u, "email")), "z*******************");
    assert_null(json_object_get(u, "ip"));
    assert_null(json_object_get(j, "gps"));
    assert_string_equal(json_string_value(json_object_get(u, "id")), SUBJ);
    json_decref(j);
    done(&r);
    bg_config_unref(cfg);
}

/* policy.default_fallback accepts {"action": "deidentify", "operator": ...}
 * (it is parsed by the same code as a rule's fallback); categories no rule
 * covers must then get that operator. */
static void test_default_fallback_operator(void **state)
{
    (void)state;
    bg_config_t *cfg = load("\"default_fallback\": {\"action\": \"deidentify\", \"operator\": "
                            "{\"op\": \"replace\", \"replacement\": \"[pi]\"}}",
                            NULL, RULE_MOBILE_CONSENT, RT("ship", "acme-us", "delivery", SUBJECTS));
    req_t r;
    run(&r, cfg, "ship", "{\"user\": {\"id\": \"" SUBJ "\", \"email\": \"" EMAIL "\"}}",
        (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    const bg_finding_decision_t *x = fd_at(&r, "$.user.email");
    assert_string_equal(x->rule, "default");
    assert_int_equal(x->basis, BG_BASIS_NONE);
    /* The object form's operator applies (it was once dropped). */
    assert_int_equal(x->op, BG_OP_REPLACE);
    assert_int_equal(x->action, BG_ACT_DEIDENTIFY);
    done(&r);
    bg_config_unref(cfg);
}

/* ---------------------------------------------------------------------- */
/* Batches                                                                 */

static void test_batch_records(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    grant(reg, "u-1", (grant_t){.purpose = "analytics"}, NULL);
    grant(reg, "u-3", (grant_t){.purpose = "analytics"}, NULL);
    grant(reg, "u-5", (grant_t){.purpose = "analytics"}, NULL);
    grant(reg, "u-4", (grant_t){.purpose = "delivery"}, NULL); /* another purpose */
    bg_config_t *cfg =
        load("", NULL,
             "    {\"id\": \"events\", \"clause\": \"PP 5\", \"categories\": [\"cn_mobile\", "
             "\"account_id\"], "
             "\"bases\": [\"consent\"], \"fallback\": \"block\"}",
             RT("events", "acme-us", "analytics",
                ", \"subjects\": {\"records\": \"$.events[*]\", \"id\": \"$.uid\"}"));
    const char *body = "{\"batch\": \"b-77\", \"events\": ["
                       "{\"uid\": \"u-1\", \"phone\": \"13800000001\", \"n\": 1},"
                       "{\"uid\": \"u-2\", \"phone\": \"13800000002\", \"n\": 2},"
                       "{\"uid\": \"u-3\", \"phone\": \"13800000003\", \"n\": 3},"
                       "{\"uid\": \"u-4\", \"phone\": \"13800000004\", \"n\": 4},"
                       "{\"uid\": \"u-5\", \"phone\": \"13800000005\", \"n\": 5}]}";
    req_t r;
    run(&r, cfg, "events", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    assert_int_equal(r.d.records, 5);
    assert_int_equal(r.d.records_allowed, 3);
    assert_int_equal(r.d.records_removed, 2);
    assert_int_equal(r.d.records_deidentified, 0);
    assert_int_equal(r.d.nreasons, 0); /* a removed record does not block */
    expect_fd(&r, "$.events[0].phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "events", "consent:", NULL, -1});
    expect_fd(
        &r, "$.events[1].phone",
        (want_t){BG_ACT_REMOVE_RECORD, BG_BASIS_NONE, "events", "", "no consent (no-consent)", -1});
    expect_fd(&r, "$.events[3].phone",
              (want_t){BG_ACT_REMOVE_RECORD, BG_BASIS_NONE, "events", "",
                       "no consent (out-of-scope)", -1});
    expect_fd(&r, "$.events[4].phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "events", "consent:", NULL, -1});
    /* Each record is its own subject. */
    assert_int_equal(r.d.nsubjects, 5);
    assert_int_equal(fd_at(&r, "$.events[2].phone")->subject, 2);
    char pn[65];
    hmac_hex("u-3", pn);
    assert_string_equal(r.d.subjects[2], pn);

    json_t *j = apply_render(&r);
    assert_non_null(j);
    json_t *ev = json_object_get(j, "events");
    assert_int_equal(json_array_size(ev), 3);
    const char *uids[] = {"u-1", "u-3", "u-5"};
    const char *phones[] = {"13800000001", "13800000003", "13800000005"};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(ev, i);
        assert_string_equal(json_string_value(json_object_get(e, "uid")), uids[i]);
        assert_string_equal(json_string_value(json_object_get(e, "phone")), phones[i]);
    }
    assert_string_equal(json_string_value(json_object_get(j, "batch")), "b-77");
    json_decref(j);
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* A batch whose only PI with a basis is in a record that is removed (the
 * same subject's other field has none): nothing personal leaves, so no
 * transfer mechanism is needed. */
static void test_batch_removed_record_needs_no_mechanism(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    grant(reg, "u-1", (grant_t){.recipient = "no-mech", .purpose = "analytics"}, NULL);
    bg_config_t *cfg =
        load("", NULL,
             "    {\"id\": \"events\", \"categories\": [\"cn_mobile\", \"cn_resident_id\", "
             "\"account_id\"], "
             "\"bases\": [\"consent\"], \"fallback\": \"block\"}",
             RT("events", "no-mech", "analytics",
                ", \"subjects\": {\"records\": \"$.events[*]\", \"id\": \"$.uid\"}"));
    const char *body = "{\"events\": [{\"uid\": \"u-1\", \"phone\": \"" MOBILE
                       "\", \"id_no\": \"" ID_ADULT "\"}, {\"n\": 2}]}";
    req_t r;
    run(&r, cfg, "events", body, (opts_t){.reg = reg});
    assert_int_equal(r.d.records_removed, 1);
    assert_int_equal(r.d.records_allowed, 1);
    expect_fd(&r, "$.events[0].phone",
              (want_t){BG_ACT_REMOVE_RECORD, BG_BASIS_CONSENT, "events", NULL, NULL, -1});
    expect_fd(&r, "$.events[0].id_no",
              (want_t){BG_ACT_REMOVE_RECORD, BG_BASIS_NONE, "events", "", "not-sensitive", -1});
    /* No PI leaves once the record is removed: no mechanism needed (this
     * once blocked for want of one). */
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    assert_string_equal(r.d.mechanism, "not_needed");
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* ---------------------------------------------------------------------- */
/* 5. Transfer mechanism                                                   */

static void test_transfer_mechanism(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    grant(reg, SUBJ, (grant_t){.recipient = "no-mech", .purpose = "delivery"}, NULL);
    grant(reg, SUBJ,
          (grant_t){.recipient = "old-mech", .purpose = "delivery", .granted = T0 - 365 * DAY},
          NULL);
    grant(reg, SUBJ, (grant_t){.recipient = "exempt-contract", .purpose = "delivery"}, NULL);
    grant(reg, SUBJ, (grant_t){.recipient = "exempt-volume", .purpose = "delivery", .sensitive = 1},
          NULL);
    bg_config_t *cfg = load(
        "", NULL,
        "    {\"id\": \"c\", \"categories\": [\"cn_mobile\", \"cn_resident_id\"], \"bases\": "
        "[\"consent\"], \"fallback\": \"block\"}",
        RT("nomech", "no-mech", "delivery", SUBJECTS) ",\n" RT(
            "oldmech", "old-mech", "delivery",
            SUBJECTS) ",\n" RT("exc", "exempt-contract", "delivery",
                               SUBJECTS) ",\n" RT("exv", "exempt-volume", "delivery", SUBJECTS));
    req_t r;
    run(&r, cfg, "nomech", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "c", "consent:", NULL, -1});
    assert_string_equal(r.d.mechanism, "missing");
    assert_non_null(strstr(reason(&r, "no_transfer_mechanism")->detail, "no-mech"));
    done(&r);

    run(&r, cfg, "oldmech", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_string_equal(r.d.mechanism, "expired");
    assert_non_null(strstr(reason(&r, "transfer_mechanism_expired")->detail, "CAC-SC-2020-0001"));
    done(&r);
    /* ... which was fine while it ran (2026-01-15). */
    run(&r, cfg, "oldmech", BODY_USER, (opts_t){.reg = reg, .now = T0 - 106 * DAY});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    assert_string_equal(r.d.mechanism, "standard_contract:CAC-SC-2020-0001");
    done(&r);

    run(&r, cfg, "exc", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    assert_string_equal(r.d.mechanism, "exempt:contract_necessity");
    done(&r);

    run(&r, cfg, "exv", BODY_USER, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_ALLOW);
    assert_string_equal(r.d.mechanism, "exempt:below_volume_threshold");
    done(&r);
    /* The volume exemption never covers sensitive PI. */
    run(&r, cfg, "exv", "{\"user\": {\"id\": \"" SUBJ "\", \"id_no\": \"" ID_ADULT "\"}}",
        (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.id_no",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "c", "consent:", NULL, -1});
    assert_string_equal(r.d.mechanism, "missing");
    reason(&r, "no_transfer_mechanism");
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

static void test_pseudonymized_needs_mechanism(void **state)
{
    (void)state;
    bg_config_t *cfg =
        load("",
             "  \"operators\": {\"cn_mobile\": \"hash\", \"email\": \"replace\", \"gps_location\": "
             "\"generalize\",\n"
             "                \"ip_address\": \"redact\"},\n",
             "    {\"id\": \"deid\", \"categories\": [\"cn_mobile\", \"email\", \"gps_location\", "
             "\"ip_address\"], \"bases\": [\"consent\"], \"fallback\": \"deidentify\"}",
             RT("nomech", "no-mech", "delivery", SUBJECTS));
    req_t r;
    /* A keyed hash is a pseudonym: still PI (PIPL Art. 73). Without a
     * basis it may not leave unless the rule accepts that explicitly. */
    run(&r, cfg, "nomech", BODY_USER, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "deid", "",
                       "hash output is still personal information (PIPL Art. 73) and the rule "
                       "does not accept pseudonymized transfers without a basis",
                       -1});
    assert_non_null(strstr(reason(&r, "no_basis")->detail, "PIPL Art. 73"));
    done(&r);
    bg_config_unref(cfg);
    /* Accepted by the rule: it leaves hashed, still needs a mechanism, and
     * the record says the rule accepted it. */
    cfg = load("",
               "  \"operators\": {\"cn_mobile\": \"hash\", \"email\": \"replace\", "
               "\"gps_location\": \"generalize\",\n"
               "                \"ip_address\": \"redact\"},\n",
               "    {\"id\": \"deid\", \"categories\": [\"cn_mobile\", \"email\", "
               "\"gps_location\", \"ip_address\"], \"bases\": [\"consent\"], \"fallback\": "
               "\"deidentify\", \"accept_pseudonymized\": true}",
               RT("nomech", "no-mech", "delivery", SUBJECTS) ",\n" RT("ship", "acme-us", "delivery",
                                                                      SUBJECTS));
    run(&r, cfg, "nomech", BODY_USER, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_DEIDENTIFY, BG_BASIS_NONE, "deid", "", NULL, BG_OP_HASH});
    assert_int_equal(fd_at(&r, "$.user.phone")->anonymized, 0);
    assert_string_equal(r.d.mechanism, "missing");
    reason(&r, "no_transfer_mechanism");
    done(&r);
    run(&r, cfg, "ship", BODY_USER, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    json_t *rec = decision_json(&r.d, r.insp);
    json_t *f0 = json_array_get(json_object_get(rec, "findings"), 0);
    assert_string_equal(json_string_value(json_object_get(f0, "path")), "$.user.phone");
    assert_string_equal(json_string_value(json_object_get(f0, "pseudonymized_without_basis")),
                        "accepted_by_rule");
    json_decref(rec);
    done(&r);
    /* Anonymized output (redact, replace, generalize) is no longer PI: no mechanism. */
    run(&r, cfg, "nomech",
        "{\"user\": {\"id\": \"" SUBJ "\", \"email\": \"" EMAIL
        "\", \"ip\": \"203.0.113.7\"}, \"gps\": \"31.2304,121.4737\"}",
        (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    expect_fd(&r, "$.user.ip",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "deid", "", NULL, BG_OP_REDACT});
    assert_int_equal(fd_at(&r, "$.user.ip")->anonymized, 1);
    expect_fd(&r, "$.user.email",
              (want_t){BG_ACT_DEIDENTIFY, BG_BASIS_NONE, "deid", "", NULL, BG_OP_REPLACE});
    expect_fd(&r, "$.gps",
              (want_t){BG_ACT_DEIDENTIFY, BG_BASIS_NONE, "deid", "", NULL, BG_OP_GENERALIZE});
    assert_int_equal(fd_at(&r, "$.gps")->anonymized, 1);
    assert_string_equal(r.d.mechanism, "not_needed");
    assert_int_equal(r.d.nreasons, 0);
    json_t *j = apply_render(&r);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "gps")), "31.23,121.47");
    assert_null(json_object_get(json_object_get(j, "user"), "ip"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "user"), "email")),
                        "[removed]");
    json_decref(j);
    done(&r);
    bg_config_unref(cfg);
}

static void test_no_recipient(void **state)
{
    (void)state;
    bg_config_t *cfg =
        load("", NULL,
             "    {\"id\": \"lo\", \"categories\": [\"cn_mobile\"], \"bases\": "
             "[\"legal_obligation\"], \"fallback\": \"block\"}",
             "{\"id\": \"anon\", \"match\": {\"host\": \"anon.example\"}, \"upstream\": "
             "\"https://anon.example\","
             " \"bases\": {\"legal_obligation\": {\"reference\": \"Tax Law Art. 9\"}}}");
    req_t r;
    run(&r, cfg, "anon", BODY_USER, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_LEGAL_OBLIGATION, "lo", "Tax Law Art. 9", NULL, -1});
    assert_non_null(strstr(reason(&r, "no_recipient")->detail, "anon"));
    done(&r);
    bg_config_unref(cfg);
}

/* ---------------------------------------------------------------------- */
/* Monitor mode                                                            */

static void test_monitor_mode(void **state)
{
    (void)state;
    const char *body =
        "{\"user\": {\"id\": \"" SUBJ "\", \"phone\": \"" MOBILE "\"}, \"password\": \"hunter2\"}";
    bg_config_t *cfg =
        load("\"mode\": \"monitor\"", NULL, RULE_MOBILE_CONSENT,
             RT("ship", "acme-us", "delivery", SUBJECTS) ",\n" RT(
                 "ship-enforced", "acme-us", "delivery", SUBJECTS ", \"mode\": \"enforce\""));
    req_t r;
    run(&r, cfg, "ship", body, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_BLOCK);
    assert_int_equal(r.d.monitor, 1);
    assert_string_equal(reason(&r, "no_basis")->path, "$.user.phone");
    expect_fd(&r, "$.user.phone",
              (want_t){BG_ACT_BLOCK, BG_BASIS_NONE, "mobile-consent", "", NULL, -1});
    done(&r);
    /* A route may enforce in a monitoring policy, and the reverse. */
    run(&r, cfg, "ship-enforced", body, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    assert_int_equal(r.d.monitor, 0);
    done(&r);
    bg_config_unref(cfg);

    cfg = load("", NULL, RULE_MOBILE_CONSENT,
               RT("ship", "acme-us", "delivery", SUBJECTS ", \"mode\": \"monitor\""));
    run(&r, cfg, "ship", body, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_BLOCK);
    done(&r);
    /* Would de-identify (the password): still forwarded unchanged. */
    const char *pw = "{\"user\": {\"id\": \"" SUBJ "\"}, \"password\": \"hunter2\"}";
    run(&r, cfg, "ship", pw, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_ALLOW, BG_OUTCOME_DEIDENTIFY);
    done(&r);
    bg_config_unref(cfg);
}

/* ---------------------------------------------------------------------- */
/* What leaves bordergate about a decision                                 */

static void assert_no_values(const char *s)
{
    static const char *const values[] = {MOBILE,    MOBILE2,       EMAIL,  ID_ADULT,    SUBJ,
                                         "hunter2", "13800000002", "张伟", "ORD-2026-9"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        if (strstr(s, values[i]) != NULL) {
            fprintf(stderr, "value '%s' leaked into: %s\n", values[i], s);
            fail();
        }
    }
}

static void test_block_body(void **state)
{
    (void)state;
    bg_config_t *cfg =
        load("\"version\": \"wadesk-2026-11\", \"help_url\": "
             "\"https://privacy.example.cn/transfers#blocked\"",
             NULL,
             "    {\"id\": \"wadesk-sensitive\", \"clause\": \"WADesk 4.2.1 / 1.3\", "
             "\"categories\": [\"cn_resident_id\"], "
             "\"bases\": [\"consent\"], \"fallback\": \"block\"},\n"
             "    {\"id\": \"wadesk-contact\", \"categories\": [\"cn_mobile\"], \"bases\": "
             "[\"consent\"], \"fallback\": \"block\"}",
             RT("logistics", "acme-us", "delivery", ", \"subjects\": {\"id\": \"$.customer.id\"}"));
    req_t r;
    const char *body = "{\"order\": \"ORD-2026-9\", \"customer\": {\"id\": \"" SUBJ
                       "\", \"id_no\": \"" ID_ADULT "\","
                       " \"phone\": \"" MOBILE "\", \"name\": \"张伟\", \"alt\": \"" MOBILE2 "\"}}";
    run(&r, cfg, "logistics", body, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    const char *id = "6f1c0e9a2b7d4c3e8f5a1b2c3d4e5f60";
    json_t *o = bg_decision_block_body(&r.d, id, cfg->policy);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "decision_id")), id);
    assert_string_equal(json_string_value(json_object_get(o, "outcome")), "block");
    assert_string_equal(json_string_value(json_object_get(o, "policy_version")), "wadesk-2026-11");
    /* The page the policy names, not a path into bordergate's sources. */
    assert_string_equal(json_string_value(json_object_get(o, "help")),
                        "https://privacy.example.cn/transfers#blocked");
    json_t *rs = json_object_get(o, "reasons");
    /* One reason per (code, rule, category): the two phone numbers give one;
     * the customer's name, which no rule covers, falls to the default. */
    assert_int_equal(json_array_size(rs), 3);
    json_t *c3 = json_array_get(rs, 2);
    assert_string_equal(json_string_value(json_object_get(c3, "category")), "person_name");
    assert_string_equal(json_string_value(json_object_get(c3, "path")), "$.customer.name");
    assert_string_equal(json_string_value(json_object_get(c3, "code")), "no_basis");
    assert_string_equal(json_string_value(json_object_get(c3, "rule")), "default");
    json_t *a = json_array_get(rs, 0);
    assert_string_equal(json_string_value(json_object_get(a, "code")), "no_basis");
    assert_string_equal(json_string_value(json_object_get(a, "rule")), "wadesk-sensitive");
    assert_string_equal(json_string_value(json_object_get(a, "clause")), "WADesk 4.2.1 / 1.3");
    assert_string_equal(json_string_value(json_object_get(a, "category")), "cn_resident_id");
    assert_string_equal(json_string_value(json_object_get(a, "path")), "$.customer.id_no");
    assert_string_equal(json_string_value(json_object_get(a, "detail")),
                        "cn_resident_id to acme-us: no consent registry configured");
    json_t *b = json_array_get(rs, 1);
    assert_string_equal(json_string_value(json_object_get(b, "rule")), "wadesk-contact");
    assert_null(json_object_get(b, "clause"));
    assert_string_equal(json_string_value(json_object_get(b, "category")), "cn_mobile");
    assert_string_equal(json_string_value(json_object_get(b, "path")), "$.customer.phone");
    char *s = json_dumps(o, JSON_COMPACT);
    assert_non_null(s);
    assert_no_values(s);
    free(s);
    json_decref(o);
    done(&r);
    bg_config_unref(cfg);
    /* Without policy.help_url there is no "help" at all. */
    cfg = load("", NULL, RULE_MOBILE_CONSENT, RT("ship", "acme-us", "delivery", SUBJECTS));
    run(&r, cfg, "ship", BODY_USER, (opts_t){0});
    expect_outcome(&r, BG_OUTCOME_BLOCK, BG_OUTCOME_BLOCK);
    o = bg_decision_block_body(&r.d, id, cfg->policy);
    assert_null(json_object_get(o, "help"));
    json_decref(o);
    done(&r);
    bg_config_unref(cfg);
}

static void test_decision_json_has_no_values(void **state)
{
    (void)state;
    bg_consent_reg_t *reg = open_reg();
    grant(reg, SUBJ, (grant_t){.purpose = "delivery", .evidence = "form-v3"}, NULL);
    bg_config_t *cfg = load(
        "", "  \"operators\": {\"email\": \"hash\"},\n",
        "    {\"id\": \"contact\", \"categories\": [\"cn_mobile\", \"email\"], \"bases\": "
        "[\"consent\"], \"fallback\": \"deidentify\"},\n"
        "    {\"id\": \"ids\", \"categories\": [\"cn_resident_id\"], \"bases\": [\"consent\"], "
        "\"fallback\": \"remove\"},\n"
        "    {\"id\": \"ev\", \"categories\": [\"account_id\"], \"fallback\": \"remove\"}",
        RT("ship", "acme-us", "delivery", ", \"subjects\": {\"id\": \"$.customer.uid\"}") ",\n" RT(
            "batch", "acme-us", "delivery",
            ", \"subjects\": {\"records\": \"$.rows[*]\", \"id\": \"$.who\"}"));
    req_t r;
    const char *body =
        "{\"order\": \"ORD-2026-9\", \"customer\": {\"uid\": \"" SUBJ "\", \"id_no\": \"" ID_ADULT
        "\","
        " \"phone\": \"" MOBILE "\", \"mail\": \"" EMAIL "\", \"password\": \"hunter2\"}}";
    run(&r, cfg, "ship", body, (opts_t){.reg = reg});
    expect_outcome(&r, BG_OUTCOME_DEIDENTIFY, BG_OUTCOME_DEIDENTIFY);
    expect_fd(&r, "$.customer.phone",
              (want_t){BG_ACT_ALLOW, BG_BASIS_CONSENT, "contact", "; evidence form-v3", NULL, -1});
    expect_fd(&r, "$.customer.id_no",
              (want_t){BG_ACT_REMOVE, BG_BASIS_NONE, "ids", "", "no consent (not-sensitive)", -1});
    json_t *j = apply_render(&r);
    assert_non_null(j);
    json_decref(j);
    json_t *o = decision_json(&r.d, r.insp);
    char *s = json_dumps(o, JSON_COMPACT);
    assert_non_null(s);
    assert_no_values(s);
    char pn[65];
    hmac_hex(SUBJ, pn);
    assert_non_null(strstr(s, pn)); /* the subject, as its pseudonym */
    assert_non_null(strstr(s, "\"path\":\"$.customer.id_no\""));
    free(s);
    json_decref(o);
    done(&r);

    /* A batch, with a removed record. */
    run(&r, cfg, "batch",
        "{\"rows\": [{\"who\": \"" SUBJ "\", \"phone\": \"" MOBILE
        "\"}, {\"who\": \"13800000002\", \"phone\": \"" MOBILE2 "\","
        " \"id_no\": \"" ID_ADULT "\"}]}",
        (opts_t){.reg = reg});
    o = decision_json(&r.d, r.insp);
    s = json_dumps(o, JSON_COMPACT);
    assert_non_null(s);
    assert_no_values(s);
    assert_non_null(strstr(s, "\"records\":{\"total\":2"));
    free(s);
    json_decref(o);
    done(&r);
    bg_config_unref(cfg);
    bg_consent_close(reg);
}

/* ---------------------------------------------------------------------- */

static void write_file(const char *name, const char *data)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(p, 0600), 0);
}

static int setup(void **state)
{
    (void)state;
    const char *bd = getenv("BG_BUILD_DIR");
    snprintf(g_db, sizeof g_db, "%s/bordergate-country.mmdb", bd != NULL ? bd : "build");
    if (access(g_db, R_OK) != 0) {
        fprintf(stderr, "no country database at %s (set BG_BUILD_DIR)\n", g_db);
        return -1;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/bg-decide-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    write_file("subject.key", SUBJECT_KEY_HEX "\n");
    write_file("pn.key", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domestic_allowed_without_inspection),
        cmocka_unit_test(test_recipient_denylisted),
        cmocka_unit_test(test_undecodable_body),
        cmocka_unit_test(test_opaque_body),
        cmocka_unit_test(test_never_export),
        cmocka_unit_test(test_legal_obligation_beats_consent),
        cmocka_unit_test(test_hr_management_is_exempt),
        cmocka_unit_test(test_contract_necessity),
        cmocka_unit_test(test_consent_basis),
        cmocka_unit_test(test_consent_withdrawn),
        cmocka_unit_test(test_consent_expired),
        cmocka_unit_test(test_sensitive_needs_sensitive_consent),
        cmocka_unit_test(test_attribution_paths),
        cmocka_unit_test(test_consent_covers_only_its_subject),
        cmocka_unit_test(test_consent_in_a_record_covers_only_its_subject),
        cmocka_unit_test(test_age_from_the_subjects_own_id_number),
        cmocka_unit_test(test_minor_from_birth_date),
        cmocka_unit_test(test_minor_from_resident_id_and_subject_abroad),
        cmocka_unit_test(test_guardian_consent_age_band),
        cmocka_unit_test(test_region_asserted_by_caller),
        cmocka_unit_test(test_dnt_and_gpc),
        cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_default_fallback_operator),
        cmocka_unit_test(test_batch_records),
        cmocka_unit_test(test_batch_removed_record_needs_no_mechanism),
        cmocka_unit_test(test_transfer_mechanism),
        cmocka_unit_test(test_pseudonymized_needs_mechanism),
        cmocka_unit_test(test_no_recipient),
        cmocka_unit_test(test_monitor_mode),
        cmocka_unit_test(test_block_body),
        cmocka_unit_test(test_decision_json_has_no_values),
        cmocka_unit_test(test_device_subject),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
