/*
 * `bordergate check` for the residency policy (policy/policy.c through
 * bg_config_load): every case is a small configuration file and the exact
 * diagnostics it must produce, one line each, in the order they are printed:
 *
 *   FILE:LINE:COL: error: $.json.path: message
 *
 * The line and column are computed from the case's own text (the position
 * of an anchor string: the offending key's or value's first character) so
 * a case states *where* the problem is, not a number that happens to come
 * out; a few cases also hard-code them. The path must match exactly, the
 * message must contain the expected substring. A case with no expected
 * lines must load with nothing printed ("configuration OK").
 *
 * Placeholders in a case's text: @DB@ is the country database built by the
 * default target ($BG_BUILD_DIR/bordergate-country.mmdb), @DIR@ the test's
 * temporary directory (key files are written there in setup).
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

#include "config/config.h"
#include "policy/policy.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static char g_dir[512];
static char g_db[512];
static int g_seq;
static int g_quiet; /* the harness's own test expects mismatches */

/* ---------------------------------------------------------------------- */
/* Cases                                                                   */

typedef struct {
    const char *sev;    /* "error" / "warning"; NULL ends the list */
    const char *anchor; /* position = first character of this text ... */
    int nth;            /* ... its NTH occurrence (0 and 1: the first) */
    int skip;           /* ... plus SKIP characters */
    int line, col;      /* or hard-coded (anchor NULL); line 0 = no position */
    const char *path;   /* exact JSON path; NULL: the line has none */
    const char *msg;    /* substring of the message; with anchor2 a format
                           taking that position's line and column */
    const char *anchor2;
    int nth2;
} exp_t;

typedef struct {
    const char *name;
    const char *text;
    exp_t exp[8];
} case_t;

/* The parts most cases share. Line numbers: HEAD is lines 1-3. */
#define HEAD                                                                                       \
    "{\n"                                                                                          \
    "  \"geo\": {\"database\": \"@DB@\"},\n"                                                       \
    "  \"audit\": {\"directory\": \"@DIR@/audit\"},\n"

#define RECIP_BODY(extra, mech)                                                                    \
    "    \"acme-hk\": {\n"                                                                         \
    "      \"legal_entity\": \"Acme Logistics Ltd (Hong Kong)\",\n"                                \
    "      \"relationship\": \"third_party\",\n"                                                   \
    "      \"country\": \"HK\",\n"                                                                 \
    "      \"purposes\": [\"delivery\", \"analytics\"]" extra mech "\n"                            \
    "    }\n"

#define MECH_OK                                                                                    \
    ",\n      \"mechanism\": {\"type\": \"standard_contract\", \"reference\": "                    \
    "\"CAC-SC-2025-0012\", "                                                                       \
    "\"expires\": \"2099-12-31\"}"

#define RECIPS(extra) "  \"recipients\": {\n" RECIP_BODY(extra, MECH_OK) "  },\n"
#define RECIP_OK RECIPS("")

#define RULE_DELIVERY                                                                              \
    "    {\"id\": \"delivery\", \"clause\": \"Privacy policy 4.2\", \"categories\": "              \
    "[\"cn_mobile\", "                                                                             \
    "\"person_name\"],\n"                                                                          \
    "     \"recipients\": [\"acme-hk\"], \"purposes\": [\"delivery\"], \"bases\": [\"contract\", " \
    "\"consent\"],\n"                                                                              \
    "     \"fallback\": \"block\"}"

#define RULES(...) "  \"rules\": [\n" __VA_ARGS__ "\n  ],\n"
#define RULES_OK RULES(RULE_DELIVERY)

#define ROUTE(extra)                                                                               \
    "  \"routes\": [\n"                                                                            \
    "    {\"id\": \"ship\", \"match\": {\"host\": \"api.acme.example\"}, \"upstream\": "           \
    "\"https://api.acme.example\",\n"                                                              \
    "     \"recipient\": \"acme-hk\", \"purpose\": \"delivery\"" extra "}\n"                       \
    "  ]\n"                                                                                        \
    "}\n"
#define ROUTE_OK ROUTE("")

#define KEY_PN "  \"keys\": {\"pseudonym\": {\"file\": \"@DIR@/pn.key\"}},\n"

static const case_t cases[] = {
    /* ---- well-formed ---- */
    {"ok_minimal", HEAD RECIP_OK RULES_OK ROUTE_OK, {{NULL}}},
    {"ok_everything",
     HEAD
     "  \"policy\": {\"version\": \"t-1\", \"mode\": \"enforce\", \"min_confidence\": \"high\",\n"
     "             \"never_export\": {\"categories\": [\"credentials\", \"biometrics\"], "
     "\"action\": \"block\"},\n"
     "             \"honour_dnt_for\": [\"analytics\"], \"subject_abroad\": \"allow\", "
     "\"minor_age\": 14,\n"
     "             \"sensitive\": {\"cn_resident_id\": false}, \"default_fallback\": \"remove\",\n"
     "             \"default_operator\": \"redact\"},\n"
     "  \"keys\": {\"pseudonym\": {\"file\": \"@DIR@/pn.key\"}, \"token\": {\"file\": "
     "\"@DIR@/tok.key\"},\n"
     "           \"subject\": {\"file\": \"@DIR@/subject.key\"}},\n"
     "  \"consent\": {\"registry\": \"@DIR@/consent.jsonl\"},\n"
     "  \"operators\": {\"cn_mobile\": {\"op\": \"mask\", \"keep_start\": 3, \"keep_end\": 4},\n"
     "                \"device_id\": \"hash\", \"bank_card\": \"tokenize\", \"birth_date\": "
     "\"generalize\",\n"
     "                \"person_name\": {\"op\": \"replace\", \"replacement\": \"[name]\"}},\n"
     "  \"field_rules\": [{\"id\": \"wx\", \"key\": \"wechat_openid\", \"category\": "
     "\"financial_account\"}],\n" RECIP_OK RULES(
         RULE_DELIVERY ",\n"
                       "    {\"id\": \"devices\", \"categories\": [\"device_id\", \"bank_card\"], "
                       "\"bases\": [\"consent\"],\n"
                       "     \"fallback\": {\"action\": \"deidentify\", \"operator\": \"redact\"}}")
         ROUTE(",\n     \"mode\": \"monitor\", \"opaque_bodies\": \"allow\",\n"
               "     \"bases\": {\"legal_obligation\": {\"reference\": \"AML Law Art. 16\"},\n"
               "               \"contract\": {\"purpose\": \"delivery\", \"necessary\": "
               "[\"cn_mobile\", \"address\"],\n"
               "                            \"necessary_fields\": [\"$.items[*].phone\"], "
               "\"reference\": \"$.order_id\"}},\n"
               "     \"subjects\": {\"id\": \"$.user.id\", \"region\": \"$.user.cc\", "
               "\"birth_date\": \"$.user.dob\"},\n"
               "     \"inspect\": {\"headers\": [\"x-user-phone\"], \"cookies\": [\"uid\"], "
               "\"query\": true}"),
     {{NULL}}},

    /* ---- unknown keys, every level ---- */
    {"unknown_key_root",
     HEAD "  \"bogus\": true,\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", NULL, 0, 0, 4, 3, "$.bogus",
       "unknown key \"bogus\" (allowed here: $schema, version"}}},
    {"unknown_key_recipient",
     HEAD RECIPS(",\n      \"colour\": \"red\"") RULES_OK ROUTE_OK,
     {{"error", "\"colour\"", 1, 0, 0, 0, "$.recipients.acme-hk.colour",
       "unknown key \"colour\" (allowed here: legal_entity, relationship"}}},
    {"unknown_key_mechanism",
     HEAD "  \"recipients\": {\n" RECIP_BODY(
         "", ",\n      \"mechanism\": {\"type\": \"certification\", \"reference\": \"CERT-1\", "
             "\"filed\": true}") "  },\n" RULES_OK ROUTE_OK,
     {{"error", "\"filed\"", 1, 0, 0, 0, "$.recipients.acme-hk.mechanism.filed",
       "unknown key \"filed\" (allowed here: type, reference, expires)"}}},
    {"unknown_key_rule",
     HEAD RECIP_OK RULES("    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"], \"when\": "
                         "\"always\", \"fallback\": \"block\"}") ROUTE_OK,
     {{"error", "\"when\"", 1, 0, 0, 0, "$.rules[0].when",
       "unknown key \"when\" (allowed here: id, clause"}}},
    {"unknown_key_fallback",
     HEAD RECIP_OK RULES("    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"],\n"
                         "     \"fallback\": {\"action\": \"deidentify\", \"operator\": "
                         "\"redact\", \"then\": \"block\"}}") ROUTE_OK,
     {{"error", "\"then\"", 1, 0, 0, 0, "$.rules[0].fallback.then",
       "unknown key \"then\" (allowed here: action, operator)"}}},
    {"unknown_key_route",
     HEAD RECIP_OK RULES_OK ROUTE(", \"priority\": 1"),
     {{"error", "\"priority\"", 1, 0, 0, 0, "$.routes[0].priority", "unknown key \"priority\""}}},
    {"unknown_key_route_bases",
     HEAD RECIP_OK RULES_OK ROUTE(
         ",\n     \"bases\": {\"legitimate_interest\": {\"reference\": \"GDPR 6(1)(f)\"}}"),
     {{"error", "\"legitimate_interest\"", 1, 0, 0, 0, "$.routes[0].bases.legitimate_interest",
       "unknown key \"legitimate_interest\" (allowed here: legal_obligation, hr_management, "
       "emergency, contract)"}}},
    {"unknown_key_declared_basis",
     HEAD RECIP_OK RULES_OK ROUTE(",\n     \"bases\": {\"legal_obligation\": {\"reference\": \"AML "
                                  "Law Art. 16\", \"law\": \"AML\"}}"),
     {{"error", "\"law\"", 1, 0, 0, 0, "$.routes[0].bases.legal_obligation.law",
       "unknown key \"law\" (allowed here: reference)"}}},
    {"unknown_key_contract",
     HEAD RECIP_OK RULES_OK ROUTE(",\n     \"bases\": {\"contract\": {\"purpose\": \"delivery\", "
                                  "\"necessary\": [\"cn_mobile\"],\n"
                                  "                            \"optional\": [\"email\"]}}"),
     {{"error", "\"optional\"", 1, 0, 0, 0, "$.routes[0].bases.contract.optional",
       "unknown key \"optional\" (allowed here: purpose, necessary, necessary_fields, reference, "
       "reference_required)"}}},
    {"unknown_key_subjects",
     HEAD RECIP_OK RULES_OK ROUTE(
         ",\n     \"subjects\": {\"id\": \"$.user.id\", \"nationality\": \"$.user.cc\"}"),
     {{"error", "\"nationality\"", 1, 0, 0, 0, "$.routes[0].subjects.nationality",
       "unknown key \"nationality\" (allowed here: id, device_id, records, region, birth_date, "
       "region_header)"}}},
    {"unknown_key_inspect",
     HEAD RECIP_OK RULES_OK ROUTE(
         ",\n     \"inspect\": {\"headers\": [\"x-user\"], \"body\": false}"),
     {{"error", "\"body\"", 1, 0, 0, 0, "$.routes[0].inspect.body",
       "unknown key \"body\" (allowed here: headers, cookies, query, address_books)"}}},
    {"unknown_key_operator",
     HEAD "  \"operators\": {\"cn_mobile\": {\"op\": \"mask\", \"keep_start\": 3, \"keep_middle\": "
          "2}},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", NULL, 0, 0, 4, 62, "$.operators.cn_mobile.keep_middle",
       "unknown key \"keep_middle\" (allowed here: op, keep_start"}}},
    {"unknown_key_policy",
     HEAD "  \"policy\": {\"mode\": \"enforce\", \"strict\": true,\n"
          "             \"never_export\": {\"categories\": [\"credentials\"], \"notify\": "
          "true}},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"strict\"", 1, 0, 0, 0, "$.policy.strict",
       "unknown key \"strict\" (allowed here: version, mode"},
      {"error", "\"notify\"", 1, 0, 0, 0, "$.policy.never_export.notify",
       "unknown key \"notify\" (allowed here: categories, action)"}}},
    {"unknown_key_keys_consent_field_rules",
     HEAD "  \"keys\": {\"subject\": {\"file\": \"@DIR@/subject.key\", \"rotate\": true}, "
          "\"master\": {\"env\": \"X\"}},\n"
          "  \"consent\": {\"registry\": \"@DIR@/c.jsonl\", \"backend\": \"redis\"},\n"
          "  \"field_rules\": [{\"id\": \"wx\", \"key\": \"wechat_openid\", \"category\": "
          "\"account_id\", \"depth\": 2}],\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"rotate\"", 1, 0, 0, 0, "$.keys.subject.rotate",
       "unknown key \"rotate\" (allowed here: file, env)"},
      {"error", "\"master\"", 1, 0, 0, 0, "$.keys.master",
       "unknown key \"master\" (allowed here: pseudonym, token, subject, audit)"},
      {"error", "\"backend\"", 1, 0, 0, 0, "$.consent.backend",
       "unknown key \"backend\" (allowed here: registry)"},
      {"error", "\"depth\"", 1, 0, 0, 0, "$.field_rules[0].depth", "unknown key \"depth\""}}},

    /* ---- categories of the policy's own (policy.categories) ---- */
    {"ok_policy_categories",
     HEAD
     "  \"policy\": {\"categories\": {\n"
     "    \"loyalty_no\": {\"label\": {\"en\": \"Loyalty member number\", \"zh\": \"会员号\"},\n"
     "                   \"group\": \"account\", \"parent\": \"account_id\", \"sensitive\": "
     "false,\n"
     "                   \"citations\": [\"PIPL Art. 4 (identifies a member)\"]},\n"
     "    \"salary\": {\"label\": {\"en\": \"Salary\", \"zh\": \"薪资\"}, \"group\": "
     "\"financial\",\n"
     "               \"sensitive\": true, \"citations\": [\"GB/T 35273-2020 Appendix B "
     "(个人财产信息)\"],\n"
     "               \"note\": \"Payroll data\"}},\n"
     "    \"sensitive\": {\"loyalty_no\": true}},\n"
     "  \"field_rules\": [{\"id\": \"member\", \"key\": \"member_no\", \"category\": "
     "\"loyalty_no\"},\n"
     "                  {\"id\": \"pay\", \"path\": \"$.employee.salary\", \"category\": "
     "\"salary\"}],\n"
     "  \"operators\": {\"account_id\": {\"op\": \"mask\", \"keep_start\": 2}, \"salary\": "
     "\"redact\"},\n" RECIP_OK RULES(RULE_DELIVERY
                                     ",\n"
                                     "    {\"id\": \"accounts\", \"categories\": [\"account_id\"], "
                                     "\"bases\": [\"consent\"], \"fallback\": \"block\"},\n"
                                     "    {\"id\": \"pay\", \"categories\": [\"salary\"], "
                                     "\"bases\": [\"consent\"], \"fallback\": \"block\"}")
         ROUTE(",\n     \"bases\": {\"contract\": {\"purpose\": \"delivery\", \"necessary\": "
               "[\"salary\"]}}"),
     {{NULL}}},
    {"policy_category_builtin_duplicate",
     HEAD
     "  \"policy\": {\"categories\": {\"email\": {\"label\": {\"en\": \"E-mail\", \"zh\": "
     "\"邮箱\"},\n"
     "    \"sensitive\": false, \"citations\": [\"PIPL Art. 4\"]}}},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"email\"", 1, 0, 0, 0, "$.policy.categories.email",
       "\"email\" is a built-in category (docs/categories.md): to change whether it is sensitive, "
       "use $.policy.sensitive"}}},
    {"policy_category_bad_sensitivity",
     HEAD
     "  \"policy\": {\"categories\": {\"salary\": {\"label\": {\"en\": \"Salary\", \"zh\": "
     "\"薪资\"},\n"
     "    \"sensitive\": \"yes\", \"citations\": [\"GB/T 35273-2020 Appendix B\"]}}},\n" RECIP_OK
         RULES_OK ROUTE_OK,
     {{"error", "\"yes\"", 1, 0, 0, 0, "$.policy.categories.salary.sensitive",
       "must be true or false"}}},
    {"policy_category_no_citation",
     HEAD "  \"policy\": {\"categories\": {\"salary\": {\"label\": {\"en\": \"Salary\", \"zh\": "
          "\"薪资\"},\n"
          "    \"parent\": \"payroll\", \"sensitive\": true}}},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "{\"label\"", 1, 0, 0, 0, "$.policy.categories.salary",
       "missing \"citations\": name the provision that makes it PI"}}},
    {"policy_category_unknown_parent",
     HEAD "  \"policy\": {\"categories\": {\"salary\": {\"label\": {\"en\": \"Salary\", \"zh\": "
          "\"薪资\"},\n"
          "    \"parent\": \"payroll\", \"sensitive\": true, \"citations\": [\"GB/T 35273-2020 "
          "Appendix B\"]}}},\n"
          "  \"field_rules\": [{\"id\": \"pay\", \"key\": \"salary\", \"category\": "
          "\"salary\"}],\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"payroll\"", 1, 0, 0, 0, "$.policy.categories.salary.parent",
       "unknown category \"payroll\": a parent must be a built-in category"},
      {"error", "\"salary\"}", 1, 0, 0, 0, "$.field_rules[0].category",
       "unknown data category \"salary\""}}},

    /* ---- unknown categories ---- */
    {"unknown_category_rule",
     HEAD RECIP_OK RULES("    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\", "
                         "\"mobile_phone\"], \"fallback\": \"block\"}") ROUTE_OK,
     {{"error", NULL, 0, 0, 14, 52, "$.rules[0].categories[1]",
       "unknown data category \"mobile_phone\" (built-in ones: docs/categories.md; a category of "
       "the policy's own is defined in $.policy.categories)"}}},
    {"unknown_category_field_rule",
     HEAD "  \"field_rules\": [{\"id\": \"wx\", \"key\": \"wechat_openid\", \"category\": "
          "\"wechat_id\"}],\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"wechat_id\"", 1, 0, 0, 0, "$.field_rules[0].category",
       "unknown data category \"wechat_id\""}}},
    {"unknown_category_operators",
     HEAD
     "  \"operators\": {\"cn_mobile\": \"mask\", \"mobile_phone\": \"mask\"},\n" RECIP_OK RULES_OK
         ROUTE_OK,
     {{"error", "\"mask\"", 2, 0, 0, 0, "$.operators.mobile_phone",
       "unknown data category \"mobile_phone\""}}},
    {"unknown_category_never_export",
     HEAD "  \"policy\": {\"never_export\": {\"categories\": [\"credentials\", "
          "\"passwords\"]}},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"passwords\"", 1, 0, 0, 0, "$.policy.never_export.categories[1]",
       "unknown data category \"passwords\""}}},
    {"unknown_category_sensitive_override",
     HEAD "  \"policy\": {\"sensitive\": {\"cn_resident_id\": false, \"salary\": true}},\n" RECIP_OK
         RULES_OK ROUTE_OK,
     {{"error", "true}", 1, 0, 0, 0, "$.policy.sensitive.salary",
       "unknown data category \"salary\""}}},
    {"unknown_category_contract_necessary",
     HEAD RECIP_OK RULES_OK ROUTE(",\n     \"bases\": {\"contract\": {\"purpose\": \"delivery\", "
                                  "\"necessary\": [\"address\", \"shipping_address\"]}}"),
     {{"error", "\"shipping_address\"", 1, 0, 0, 0, "$.routes[0].bases.contract.necessary[1]",
       "unknown data category \"shipping_address\""}}},

    /* ---- recipients and purposes ---- */
    {"unknown_recipient_in_rule",
     HEAD RECIP_OK RULES("    {\"id\": \"us-only\", \"categories\": [\"cn_mobile\"], "
                         "\"recipients\": [\"acme-hk\", \"acme-us\"],\n"
                         "     \"fallback\": \"block\"}") ROUTE_OK,
     {{"error", "\"acme-us\"", 1, 0, 0, 0, "$.rules[0].recipients[1]",
       "unknown recipient \"acme-us\" (not in $.recipients)"}}},
    {"unknown_recipient_on_route",
     HEAD RECIP_OK RULES_OK "  \"routes\": [\n"
                            "    {\"id\": \"ship\", \"match\": {\"host\": \"api.acme.example\"}, "
                            "\"upstream\": \"https://api.acme.example\",\n"
                            "     \"recipient\": \"acme-us\", \"purpose\": \"delivery\"}\n"
                            "  ]\n"
                            "}\n",
     {{"warning", "{\"id\": \"delivery\"", 1, 0, 0, 0, "$.rules[0]",
       "rule \"delivery\" applies to no configured route"},
      {"error", "\"acme-us\"", 1, 0, 0, 0, "$.routes[0].recipient",
       "unknown recipient \"acme-us\" (declare it in $.recipients)"}}},
    {"route_purpose_not_declared",
     HEAD RECIP_OK RULES_OK "  \"routes\": [\n"
                            "    {\"id\": \"ship\", \"match\": {\"host\": \"api.acme.example\"}, "
                            "\"upstream\": \"https://api.acme.example\",\n"
                            "     \"recipient\": \"acme-hk\", \"purpose\": \"marketing\"}\n"
                            "  ]\n"
                            "}\n",
     {{"warning", "{\"id\": \"delivery\"", 1, 0, 0, 0, "$.rules[0]",
       "rule \"delivery\" applies to no configured route"},
      {"error", "\"marketing\"", 1, 0, 0, 0, "$.routes[0].purpose",
       "recipient \"acme-hk\" does not declare the purpose \"marketing\""}}},

    /* ---- bases, fallbacks, operators ---- */
    {"unknown_basis",
     HEAD RECIP_OK RULES("    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"], \"bases\": "
                         "[\"consent\", \"legitimate_interest\", \"none\"],\n"
                         "     \"fallback\": \"block\"}") ROUTE_OK,
     {{"error", "\"legitimate_interest\"", 1, 0, 0, 0, "$.rules[0].bases[1]",
       "unknown legal basis \"legitimate_interest\" (one of legal_obligation, hr_management, "
       "emergency, contract, consent, subject_abroad)"},
      {"error", "\"none\"", 1, 0, 0, 0, "$.rules[0].bases[2]", "unknown legal basis \"none\""}}},
    {"bad_fallback_action",
     HEAD RECIP_OK RULES(
         "    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"], \"fallback\": \"ignore\"}")
         ROUTE_OK,
     {{"error", "\"ignore\"", 1, 0, 0, 0, "$.rules[0].fallback",
       "action must be \"block\", \"deidentify\" or \"remove\""}}},
    {"bad_fallback_type",
     HEAD RECIP_OK RULES(
         "    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"], \"fallback\": 42}") ROUTE_OK,
     {{"error", "42}", 1, 0, 0, 0, "$.rules[0].fallback",
       "must be \"block\", \"deidentify\", \"remove\" or {\"action\": ..., \"operator\": ...}"}}},
    {"missing_fallback_and_categories",
     HEAD RECIP_OK RULES("    {\"id\": \"delivery\", \"recipients\": [\"acme-hk\"]}") ROUTE_OK,
     {{"error", "{\"id\": \"delivery\"", 1, 0, 0, 0, "$.rules[0]",
       "needs \"categories\" (ids, \"sensitive\" or \"*\")"},
      {"error", "{\"id\": \"delivery\"", 1, 0, 0, 0, "$.rules[0]",
       "needs \"fallback\": what happens when no basis holds"},
      {"warning", "{\"id\": \"delivery\"", 1, 0, 0, 0, "$.rules[0]",
       "rule \"delivery\" applies to no configured route"}}},
    {"bad_operator_name",
     HEAD "  \"operators\": {\"cn_mobile\": \"scramble\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"scramble\"", 1, 0, 0, 0, "$.operators.cn_mobile",
       "unknown operator \"scramble\" (redact, mask, hash, tokenize, generalize, replace)"}}},
    {"bad_operator_object",
     HEAD
     "  \"operators\": {\"cn_mobile\": {\"op\": \"blur\"}, \"email\": {\"op\": \"mask\", "
     "\"mask_char\": \"**\"},\n"
     "                \"gps_location\": {\"op\": \"generalize\", \"decimals\": 12}},\n" RECIP_OK
         RULES_OK ROUTE_OK,
     {{"error", "{\"op\": \"blur\"", 1, 0, 0, 0, "$.operators.cn_mobile",
       "needs \"op\": one of redact, mask"},
      {"error", "\"**\"", 1, 0, 0, 0, "$.operators.email.mask_char", "must be one ASCII character"},
      {"error", "12}", 1, 0, 0, 0, "$.operators.gps_location.decimals",
       "must be between 0 and 8"}}},
    {"bad_rule_operator",
     HEAD RECIP_OK RULES(
         "    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"],\n"
         "     \"fallback\": {\"action\": \"deidentify\", \"operator\": \"scramble\"}}") ROUTE_OK,
     {{"error", "\"scramble\"", 1, 0, 0, 0, "$.rules[0].fallback.operator",
       "unknown operator \"scramble\""}}},
    {"duplicate_rule_id",
     HEAD RECIP_OK RULES(
         "    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"], \"fallback\": \"block\"},\n"
         "    {\"id\": \"delivery\", \"categories\": [\"email\"], \"fallback\": \"block\"}")
         ROUTE_OK,
     {{"error", "\"delivery\"", 3, 0, 0, 0, "$.rules[1].id", "duplicate rule id \"delivery\""}}},

    /* ---- transfer mechanism ---- */
    {"missing_mechanism",
     HEAD "  \"recipients\": {\n" RECIP_BODY("", "") "  },\n" RULES_OK ROUTE_OK,
     {{"error", "{\n      \"legal_entity\"", 1, 0, 0, 0, "$.recipients.acme-hk",
       "needs \"mechanism\": the transfer mechanism in place"}}},
    {"standard_contract_without_reference",
     HEAD "  \"recipients\": {\n" RECIP_BODY(
         "", ",\n      \"mechanism\": {\"type\": \"standard_contract\", \"expires\": "
             "\"2099-12-31\"}") "  },\n" RULES_OK ROUTE_OK,
     {{"error", "{\"type\"", 1, 0, 0, 0, "$.recipients.acme-hk.mechanism",
       "a standard_contract needs its \"reference\" (filing or certificate number)"}}},
    {"mechanism_bad_type",
     HEAD "  \"recipients\": {\n" RECIP_BODY(
         "", ",\n      \"mechanism\": {\"type\": \"binding_corporate_rules\", \"reference\": "
             "\"BCR-1\"}") "  },\n" RULES_OK ROUTE_OK,
     {{"error", "{\"type\"", 1, 0, 0, 0, "$.recipients.acme-hk.mechanism",
       "\"type\" must be one of none, standard_contract, certification, security_assessment"}}},
    {"mechanism_bad_expiry",
     HEAD "  \"recipients\": {\n" RECIP_BODY(
         "", ",\n      \"mechanism\": {\"type\": \"standard_contract\", \"reference\": \"SC-1\", "
             "\"expires\": \"31/12/2027\"}") "  },\n" RULES_OK ROUTE_OK,
     {{"error", "\"31/12/2027\"", 1, 0, 0, 0, "$.recipients.acme-hk.mechanism.expires",
       "must be a real date like \"2027-12-31\""}}},
    {"mechanism_expired_warns",
     HEAD "  \"recipients\": {\n" RECIP_BODY(
         "", ",\n      \"mechanism\": {\"type\": \"standard_contract\", \"reference\": \"SC-1\", "
             "\"expires\": \"2020-06-30\"}") "  },\n" RULES_OK ROUTE_OK,
     {{"warning", "\"2020-06-30\"", 1, 0, 0, 0, "$.recipients.acme-hk.mechanism.expires",
       "the standard_contract has expired: transfers of personal information to acme-hk are "
       "blocked until it is renewed"}}},
    {"recipient_bad_fields",
     HEAD RECIPS(",\n      \"exemption\": \"small_business\", \"denylisted\": 3") RULES_OK ROUTE_OK,
     {{"error", "\"small_business\"", 1, 0, 0, 0, "$.recipients.acme-hk.exemption",
       "must be one of none, contract_necessity, hr_management, emergency, below_volume_threshold "
       "(CAC 2024 Provisions Art. 5)"},
      {"error", "3,\n", 1, 0, 0, 0, "$.recipients.acme-hk.denylisted",
       "must be true/false or the list reference (PIPL Art. 42)"}}},

    /* ---- rule reachability ---- */
    {"unreachable_rule",
     HEAD RECIP_OK RULES(
         "    {\"id\": \"all-to-hk\", \"categories\": [\"*\"], \"recipients\": [\"acme-hk\"], "
         "\"bases\": [\"consent\"],\n"
         "     \"fallback\": \"block\"},\n"
         "    {\"id\": \"hk-delivery-mobile\", \"categories\": [\"cn_mobile\"], \"recipients\": "
         "[\"acme-hk\"],\n"
         "     \"purposes\": [\"delivery\"], \"bases\": [\"contract\"], \"fallback\": \"remove\"}")
         ROUTE_OK,
     {{"error", "{\"id\": \"hk-delivery-mobile\"", 1, 0, 0, 0, "$.rules[1]",
       "rule \"hk-delivery-mobile\" can never apply: rule \"all-to-hk\" before it covers all its "
       "categories, recipients and purposes"},
      {"warning", "{\"id\": \"hk-delivery-mobile\"", 1, 0, 0, 0, "$.rules[1]",
       "rule \"hk-delivery-mobile\" applies to no configured route"}}},
    {"unreachable_rule_sensitive",
     HEAD RECIP_OK RULES(
         "    {\"id\": \"sensitive\", \"categories\": [\"sensitive\"], \"fallback\": \"block\"},\n"
         "    {\"id\": \"ids\", \"categories\": [\"cn_resident_id\", \"bank_card\"], \"fallback\": "
         "\"remove\"},\n"
         "    {\"id\": \"rest\", \"categories\": [\"*\"], \"fallback\": \"remove\"}") ROUTE_OK,
     {{"error", "{\"id\": \"ids\"", 1, 0, 0, 0, "$.rules[1]",
       "rule \"ids\" can never apply: rule \"sensitive\" before it covers"},
      {"warning", "{\"id\": \"ids\"", 1, 0, 0, 0, "$.rules[1]",
       "rule \"ids\" applies to no configured route"}}},
    /* Not covered: the earlier rule is narrower in category, purpose or
     * sensitivity (the policy says cn_resident_id is not sensitive). */
    {"reachable_rules",
     HEAD "  \"policy\": {\"sensitive\": {\"cn_resident_id\": false}},\n" RECIP_OK RULES(
         "    {\"id\": \"sensitive\", \"categories\": [\"sensitive\"], \"fallback\": \"block\"},\n"
         "    {\"id\": \"ids\", \"categories\": [\"cn_resident_id\"], \"fallback\": \"remove\"},\n"
         "    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"], \"purposes\": "
         "[\"delivery\"], \"fallback\": \"remove\"},\n"
         "    {\"id\": \"mobile-any-purpose\", \"categories\": [\"cn_mobile\", \"email\"], "
         "\"fallback\": \"block\"}") ROUTE_OK,
     {{NULL}}},
    {"rule_applies_to_no_route",
     HEAD RECIP_OK RULES(
         RULE_DELIVERY
         ",\n"
         "    {\"id\": \"analytics\", \"categories\": [\"device_id\"], \"recipients\": "
         "[\"acme-hk\"],\n"
         "     \"purposes\": [\"analytics\"], \"bases\": [\"consent\"], \"fallback\": \"remove\"}")
         ROUTE_OK,
     {{"warning", "{\"id\": \"analytics\"", 1, 0, 0, 0, "$.rules[1]",
       "rule \"analytics\" applies to no configured route"}}},

    /* ---- keys ---- */
    {"hash_without_pseudonym_key",
     HEAD "  \"operators\": {\"device_id\": \"hash\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", NULL, 0, 0, 1, 1, "$",
       "the hash operator is used but $.keys.pseudonym is not set"}}},
    {"tokenize_without_token_key",
     HEAD "  \"operators\": {\"bank_card\": \"tokenize\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", NULL, 0, 0, 1, 1, "$",
       "the tokenize operator is used but $.keys.token is not set"}}},
    {"rule_hash_without_pseudonym_key",
     HEAD RECIP_OK RULES(
         "    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"],\n"
         "     \"fallback\": {\"action\": \"deidentify\", \"operator\": {\"op\": \"hash\"}}}")
         ROUTE_OK,
     {{"error", NULL, 0, 0, 1, 1, "$", "the hash operator is used but $.keys.pseudonym is not set"},
      {"warning", "{\"id\": \"delivery\"", 1, 0, 0, 0, "$.rules[0]",
       "rule \"delivery\" falls back to hash for category cn_mobile"}}},
    {"default_operator_tokenize_without_key",
     HEAD "  \"policy\": {\"default_operator\": \"tokenize\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", NULL, 0, 0, 1, 1, "$",
       "the tokenize operator is used but $.keys.token is not set"}}},
    {"hash_with_pseudonym_key",
     HEAD KEY_PN "  \"operators\": {\"device_id\": \"hash\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{NULL}}},
    {"key_file_too_short_hex",
     HEAD "  \"keys\": {\"pseudonym\": {\"file\": \"@DIR@/short-hex.key\"}},\n" RECIP_OK RULES_OK
         ROUTE_OK,
     {{"error", "{\"file\"", 1, 0, 0, 0, "$.keys.pseudonym",
       "short-hex.key: key shorter than 32 bytes"}}},
    {"key_file_too_short_raw",
     HEAD "  \"keys\": {\"token\": {\"file\": \"@DIR@/short-raw.key\"}},\n"
          "  \"operators\": {\"bank_card\": \"tokenize\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     /* One error: the key that failed, not also "not set". */
     {{"error", "{\"file\"", 1, 0, 0, 0, "$.keys.token",
       "short-raw.key: key shorter than 32 bytes"}}},
    {"key_missing_file_and_env",
     HEAD "  \"keys\": {\"subject\": {\"file\": \"@DIR@/no-such.key\"}, \"pseudonym\": {\"env\": "
          "\"BG_TEST_UNSET_KEY_VAR\"},\n"
          "           \"token\": {}},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "{\"file\"", 1, 0, 0, 0, "$.keys.subject", "no-such.key: cannot read key file"},
      {"error", "{\"env\"", 1, 0, 0, 0, "$.keys.pseudonym",
       "environment variable BG_TEST_UNSET_KEY_VAR (key) is not set"},
      {"error", "{}", 1, 0, 0, 0, "$.keys.token", "give exactly one of \"file\" or \"env\""}}},
    {"consent_registry_without_subject_key",
     HEAD "  \"consent\": {\"registry\": \"@DIR@/consent.jsonl\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"@DIR@/consent.jsonl\"", 1, 0, 0, 0, "$.consent.registry",
       "a consent registry needs $.keys.subject (subject ids are stored as keyed pseudonyms)"}}},
    {"consent_registry_with_subject_key",
     HEAD "  \"keys\": {\"subject\": {\"file\": \"@DIR@/subject.key\"}},\n"
          "  \"consent\": {\"registry\": \"@DIR@/consent.jsonl\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{NULL}}},

    /* ---- PIPL Art. 73: pseudonymized is still PI ---- */
    {"art73_category_operator_hash",
     HEAD KEY_PN "  \"operators\": {\"cn_resident_id\": \"hash\"},\n" RECIP_OK RULES(
         "    {\"id\": \"ids\", \"clause\": \"4.2.1\", \"categories\": [\"cn_mobile\", "
         "\"cn_resident_id\"],\n"
         "     \"bases\": [\"consent\"], \"fallback\": \"deidentify\"}") ROUTE_OK,
     {{"warning", "{\"id\": \"ids\"", 1, 0, 0, 0, "$.rules[0]",
       "rule \"ids\" falls back to hash for sensitive category cn_resident_id when no basis holds: "
       "pseudonymized data is still personal information (PIPL Art. 73)"}}},
    {"art73_rule_operator_mask",
     HEAD RECIP_OK RULES(
         "    {\"id\": \"cards\", \"categories\": [\"sensitive\"], \"bases\": [\"consent\"],\n"
         "     \"fallback\": {\"action\": \"deidentify\", \"operator\": {\"op\": \"mask\", "
         "\"keep_end\": 4}}}") ROUTE_OK,
     {{"warning", "{\"id\": \"cards\"", 1, 0, 0, 0, "$.rules[0]",
       "rule \"cards\" falls back to mask for sensitive category cn_resident_id"}}},
    /* Pseudonymizing non-sensitive PI is still PI: warned too (issue 14). */
    {"art73_non_sensitive_warns",
     HEAD KEY_PN
     "  \"operators\": {\"cn_mobile\": \"hash\", \"gps_location\": \"generalize\"},\n" RECIP_OK
         RULES("    {\"id\": \"mixed\", \"categories\": [\"cn_mobile\", \"gps_location\", "
               "\"cn_resident_id\"],\n"
               "     \"bases\": [\"consent\"], \"fallback\": \"deidentify\"}") ROUTE_OK,
     {{"warning", "{\"id\": \"mixed\"", 1, 0, 0, 0, "$.rules[0]",
       "rule \"mixed\" falls back to hash for category cn_mobile when no basis holds"}}},
    /* Anonymizing operators, or a rule that accepts pseudonymized transfers
     * without a basis explicitly: no warning. */
    {"art73_accepted_or_anonymizing_no_warning",
     HEAD KEY_PN
     "  \"operators\": {\"cn_mobile\": \"hash\", \"gps_location\": \"generalize\"},\n" RECIP_OK
         RULES("    {\"id\": \"mixed\", \"categories\": [\"cn_mobile\", \"gps_location\", "
               "\"cn_resident_id\"],\n"
               "     \"bases\": [\"consent\"], \"fallback\": \"deidentify\", "
               "\"accept_pseudonymized\": true}") ROUTE_OK,
     {{NULL}}},

    /* ---- audit retention ---- */
    {"retention_days_too_short",
     "{\n"
     "  \"geo\": {\"database\": \"@DB@\"},\n"
     "  \"audit\": {\"directory\": \"@DIR@/audit\", \"retention_days\": 182},\n" RECIP_OK RULES_OK
         ROUTE_OK,
     {{"error", "182}", 1, 0, 0, 0, "$.audit.retention_days",
       "must be at least 183 days: the Cybersecurity Law requires network logs for six months"}}},
    {"retention_days_six_months",
     "{\n"
     "  \"geo\": {\"database\": \"@DB@\"},\n"
     "  \"audit\": {\"directory\": \"@DIR@/audit\", \"retention_days\": 183},\n" RECIP_OK RULES_OK
         ROUTE_OK,
     {{NULL}}},

    /* ---- silent traps (issue 14): each would disable consent, contract
     * necessity or DNT at run time without a word ---- */
    {"subjects_id_without_dollar",
     HEAD RECIP_OK RULES_OK ROUTE(", \"subjects\": {\"id\": \"user.id\"}"),
     {{"error", "\"user.id\"", 1, 0, 0, 0, "$.routes[0].subjects.id",
       "\"user.id\" names nothing: give a JSON path"}}},
    {"subjects_region_without_dollar",
     HEAD RECIP_OK RULES_OK ROUTE(
         ", \"subjects\": {\"id\": \"header.X-User-Id\", \"region\": \"user.region\"}"),
     {{"error", "\"user.region\"", 1, 0, 0, 0, "$.routes[0].subjects.region", "names nothing"}}},
    {"subjects_device_id_without_dollar",
     HEAD RECIP_OK RULES_OK ROUTE(
         ", \"subjects\": {\"id\": \"$.uid\", \"device_id\": \"device.oaid\"}"),
     {{"error", "\"device.oaid\"", 1, 0, 0, 0, "$.routes[0].subjects.device_id",
       "\"device.oaid\" names nothing: give a JSON path"}}},
    {"subjects_device_id_bad_path",
     HEAD RECIP_OK RULES_OK ROUTE(", \"subjects\": {\"device_id\": \"$.device[\"}"),
     {{"error", "\"$.device[\"", 1, 0, 0, 0, "$.routes[0].subjects.device_id", ""}}},
    {"ok_subjects_device_id",
     HEAD RECIP_OK RULES_OK ROUTE(
         ", \"subjects\": {\"records\": \"$.events[*]\", \"id\": \"$.uid\", "
         "\"device_id\": \"$.device.oaid\"}"),
     {{NULL}}},
    {"subjects_device_id_json_next_to_a_form_reference",
     HEAD RECIP_OK RULES_OK ROUTE(
         ", \"bases\": {\"contract\": {\"purpose\": \"delivery\", \"necessary\": "
         "[\"cn_mobile\"], \"reference\": \"form.order_id\"}},\n"
         "     \"subjects\": {\"device_id\": \"$.oaid\"}"),
     {{"warning", "\"form.order_id\"", 1, 0, 0, 0, "$.routes[0].bases.contract.reference",
       "subjects.device_id \"$.oaid\""}}},
    {"contract_reference_json_on_a_form_route",
     HEAD RECIP_OK RULES_OK ROUTE(
         ", \"bases\": {\"contract\": {\"purpose\": \"delivery\", \"necessary\": "
         "[\"cn_mobile\"], \"reference\": \"$.order_id\"}},\n"
         "     \"subjects\": {\"id\": \"form.uid\"}"),
     {{"warning", "\"$.order_id\"", 1, 0, 0, 0, "$.routes[0].bases.contract.reference",
       "\"$.order_id\" looks in a JSON body but subjects.id \"form.uid\" in a form"}}},
    {"dnt_purpose_misspelt",
     HEAD "  \"policy\": {\"honour_dnt_for\": [\"delivry\"]},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"delivry\"", 1, 0, 0, 0, "$.policy.honour_dnt_for[0]",
       "no route or recipient has the purpose \"delivry\": did you mean \"delivery\"?"}}},
    {"dnt_purpose_not_routed",
     HEAD "  \"policy\": {\"honour_dnt_for\": [\"delivery\", \"marketing\"]},\n" RECIP_OK RULES_OK
         ROUTE_OK,
     {{"warning", "\"marketing\"", 1, 0, 0, 0, "$.policy.honour_dnt_for[1]",
       "no route or recipient has the purpose \"marketing\": DNT/Sec-GPC is honoured for "
       "nothing"}}},
    {"help_url_is_a_repository_path",
     HEAD "  \"policy\": {\"help_url\": \"docs/policy.md#why\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"docs/policy.md#why\"", 1, 0, 0, 0, "$.policy.help_url",
       "must be an absolute http:// or https:// URL"}}},
    {"selectors_that_work",
     HEAD "  \"policy\": {\"honour_dnt_for\": [\"analytics\"]},\n" RECIP_OK RULES_OK ROUTE(
         ", \"bases\": {\"contract\": {\"purpose\": \"delivery\", \"necessary\": "
         "[\"cn_mobile\"], \"reference\": \"form.order_id\"}},\n"
         "     \"subjects\": {\"id\": \"form.uid\", \"region\": \"header.X-Region\"}"),
     {{NULL}}},

    /* ---- route field rules, address books, caller-asserted regions, guardians ---- */
    {"ok_route_field_rules_none",
     HEAD RECIP_OK RULES_OK ROUTE(
         ",\n     \"field_rules\": [{\"key\": \"contacts\", \"category\": \"none\"},\n"
         "                     {\"path\": \"$.recipient\", \"category\": \"person_name\"}],\n"
         "     \"inspect\": {\"address_books\": true},\n"
         "     \"subjects\": {\"region\": \"$.region\", \"region_header\": \"X-Subject-Region\"}"),
     {{NULL}}},
    {"route_field_rule_bad_category",
     HEAD RECIP_OK RULES_OK ROUTE(
         ",\n     \"field_rules\": [{\"key\": \"contacts\", \"category\": \"nothing\"}]"),
     {{"error", "\"nothing\"", 1, 0, 0, 0, "$.routes[0].field_rules[0].category",
       "unknown data category \"nothing\""}}},
    {"route_field_rule_no_key",
     HEAD RECIP_OK RULES_OK ROUTE(",\n     \"field_rules\": [{\"category\": \"none\"}]"),
     {{"error", "{\"category\"", 1, 0, 0, 0, "$.routes[0].field_rules[0]",
       "give exactly one of \"path\""}}},
    {"region_header_not_a_name",
     HEAD RECIP_OK RULES_OK ROUTE(
         ",\n     \"subjects\": {\"region\": \"$.region\", \"region_header\": \"X Region\"}"),
     {{"error", "\"X Region\"", 1, 0, 0, 0, "$.routes[0].subjects.region_header",
       "must be a header name"}}},
    {"subject_region_from_bad",
     HEAD "  \"policy\": {\"subject_region_from\": \"body\"},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "\"body\"", 1, 0, 0, 0, "$.policy.subject_region_from", "must be \"request\""}}},
    {"caller_region_under_gateway_only",
     HEAD "  \"policy\": {\"subject_abroad\": \"allow\", \"subject_region_from\": "
          "\"gateway_header\"},\n" RECIP_OK RULES_OK ROUTE(
              ",\n     \"subjects\": {\"region\": \"$.region\"}"),
     {{"warning", "\"$.region\"", 1, 0, 0, 0, "$.routes[0].subjects.region",
       "subject_abroad never holds on this route"}}},
    {"guardian_age_below_minor_age",
     HEAD "  \"policy\": {\"minor_age\": 16, \"guardian_consent_age\": 14},\n" RECIP_OK RULES_OK
         ROUTE_OK,
     {{"error", "14}", 1, 0, 0, 0, "$.policy.guardian_consent_age",
       "must be at least minor_age (16)"}}},
    {"guardian_age_above_18",
     HEAD "  \"policy\": {\"guardian_consent_age\": 21},\n" RECIP_OK RULES_OK ROUTE_OK,
     {{"error", "21}", 1, 0, 0, 0, "$.policy.guardian_consent_age", "18"}}},
    /* ---- duplicate keys and syntax ---- */
    {"duplicate_key_in_rule",
     HEAD RECIP_OK RULES("    {\"id\": \"delivery\", \"categories\": [\"cn_mobile\"], "
                         "\"fallback\": \"deidentify\",\n"
                         "     \"bases\": [\"consent\"], \"fallback\": \"block\"}") ROUTE_OK,
     {{"error", "\"fallback\"", 2, 0, 0, 0, "$.rules[0].fallback",
       "duplicate key: it silently replaces the definition at line %d, column %d", "\"fallback\"",
       1}}},
    {"duplicate_recipient",
     HEAD "  \"recipients\": {\n" RECIP_BODY("", MECH_OK) ",\n" RECIP_BODY(
         "", MECH_OK) "  },\n" RULES_OK ROUTE_OK,
     {{"error", NULL, 0, 0, 13, 5, "$.recipients.acme-hk",
       "duplicate key: it silently replaces the definition at line 5, column 5"}}},
    {"syntax_error",
     HEAD RECIP_OK RULES_OK "  \"routes\": [\n"
                            "    {\"id\": \"ship\", \"match\": {\"host\": \"api.acme.example\"}, "
                            "\"upstream\": \"https://api.acme.example\",},\n"
                            "  ]\n"
                            "}\n",
     /* jansson's own position: the '}' after the trailing comma. */
     {{"error", "\",}", 1, 2, 0, 0, NULL, "string or '}' expected near '}'"}}},
};

/* Cases that once failed because of a checker bug, kept as regressions. */
static const case_t bug_cases[] = {
    /* parse_date took "2027-02-30" as 2027-03-02 (strptime + timegm). */
    {"mechanism_nonexistent_expiry",
     HEAD "  \"recipients\": {\n" RECIP_BODY(
         "", ",\n      \"mechanism\": {\"type\": \"standard_contract\", \"reference\": \"SC-1\", "
             "\"expires\": \"2027-02-30\"}") "  },\n" RULES_OK ROUTE_OK,
     {{"error", "\"2027-02-30\"", 1, 0, 0, 0, "$.recipients.acme-hk.mechanism.expires",
       "must be a real date like \"2027-12-31\""}}},
};

/* ---------------------------------------------------------------------- */
/* Running a case                                                          */

/* TEXT with @DB@ and @DIR@ replaced (malloc'd). */
static char *expand(const char *text)
{
    size_t cap = strlen(text) * 2 + 4096, o = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (const char *p = text; *p != '\0';) {
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "@DB@", 4) == 0) {
            rep = g_db;
            skip = 4;
        } else if (strncmp(p, "@DIR@", 5) == 0) {
            rep = g_dir;
            skip = 5;
        }
        if (rep != NULL) {
            size_t n = strlen(rep);
            assert_true(o + n < cap);
            memcpy(out + o, rep, n);
            o += n;
            p += skip;
        } else {
            assert_true(o + 1 < cap);
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

/* 1-based line and column (in code points) of the NTH occurrence of ANCHOR
 * in TEXT, plus SKIP characters. Fails the test when it is not there. */
static void position(const char *text, const char *anchor, int nth, int skip, int *line, int *col)
{
    char *a = expand(anchor);
    const char *hit = NULL, *from = text;
    for (int i = 0; i < (nth > 0 ? nth : 1); i++) {
        hit = strstr(from, a);
        if (hit == NULL) {
            fprintf(stderr, "anchor '%s' (occurrence %d) not in the case text\n", a, i + 1);
            fail();
        }
        from = hit + 1;
    }
    free(a);
    hit += skip;
    *line = 1;
    *col = 1;
    for (const char *p = text; p < hit; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)*p & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static char *slurp(FILE *f)
{
    long n = ftell(f);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    return s;
}

/* Load TEXT as a configuration file; returns what was printed. */
static char *check_text(const char *name, const char *raw, bg_config_t **cfg_out, int *nerrors,
                        char *path, size_t pathcap, char **text_out)
{
    char *text = expand(raw);
    snprintf(path, pathcap, "%s/%02d-%s.json", g_dir, ++g_seq, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    FILE *errs = tmpfile();
    assert_non_null(errs);
    *cfg_out = bg_config_load(path, errs, nerrors);
    char *out = slurp(errs);
    fclose(errs);
    *text_out = text;
    return out;
}

static int run_case(const case_t *c)
{
    char path[700];
    char *text = NULL;
    bg_config_t *cfg = NULL;
    int nerrors = -1, bad = 0, nexp = 0, nerr_exp = 0;
    char *out = check_text(c->name, c->text, &cfg, &nerrors, path, sizeof path, &text);

    char want[8][2048];
    for (; nexp < 8 && c->exp[nexp].sev != NULL; nexp++) {
        const exp_t *e = &c->exp[nexp];
        int line = e->line, col = e->col;
        if (e->anchor != NULL)
            position(text, e->anchor, e->nth, e->skip, &line, &col);
        char msg[512];
        if (e->anchor2 != NULL) {
            int l2, c2;
            position(text, e->anchor2, e->nth2, 0, &l2, &c2);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(msg, sizeof msg, e->msg, l2, c2);
#pragma GCC diagnostic pop
        } else {
            char *m = expand(e->msg);
            snprintf(msg, sizeof msg, "%s", m);
            free(m);
        }
        char pos[64] = "";
        if (line > 0)
            snprintf(pos, sizeof pos, ":%d:%d", line, col);
        /* The prefix must match exactly, the message contain MSG: kept
         * apart by a tab so the comparison below can split them. */
        snprintf(want[nexp], sizeof want[nexp], "%s%s: %s: %s%s\t%s", path, pos, e->sev,
                 e->path ? e->path : "", e->path ? ": " : "", msg);
        if (strcmp(e->sev, "error") == 0)
            nerr_exp++;
    }

    /* Compare line by line. */
    char *lines[32];
    int nl = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l != NULL && nl < 32;
         l = strtok_r(NULL, "\n", &save))
        lines[nl++] = l;
    if (nl != nexp)
        bad = 1;
    for (int i = 0; i < nexp && i < nl && !bad; i++) {
        char *tab = strchr(want[i], '\t');
        size_t plen = (size_t)(tab - want[i]);
        if (strncmp(lines[i], want[i], plen) != 0 || strstr(lines[i] + plen, tab + 1) == NULL)
            bad = 1;
    }
    if (nerrors != nerr_exp || (nerr_exp > 0) != (cfg == NULL))
        bad = 1;
    if (bad && !g_quiet) {
        fprintf(stderr, "case %s: %d error(s), config %s; printed:\n", c->name, nerrors,
                cfg ? "loaded" : "refused");
        for (int i = 0; i < nl; i++)
            fprintf(stderr, "  | %s\n", lines[i]);
        if (nexp == 0)
            fprintf(stderr, "expected: configuration OK (nothing printed)\n");
        else
            fprintf(stderr, "expected:\n");
        for (int i = 0; i < nexp; i++)
            fprintf(stderr, "  > %s\n", want[i]);
    }
    bg_config_unref(cfg);
    free(out);
    free(text);
    return bad;
}

static void test_cases(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        failed += run_case(&cases[i]);
    if (failed > 0)
        fprintf(stderr, "%d of %zu cases failed\n", failed, sizeof cases / sizeof cases[0]);
    assert_int_equal(failed, 0);
}

static void test_known_bugs(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof bug_cases / sizeof bug_cases[0]; i++)
        failed += run_case(&bug_cases[i]);
    assert_int_equal(failed, 0);
}

/* The harness itself: a case whose expectation is wrong must fail. */
static void test_harness_detects_mismatch(void **state)
{
    (void)state;
    g_quiet = 1;
    case_t wrong_col = cases[2]; /* unknown_key_root: 4:3 */
    assert_string_equal(wrong_col.name, "unknown_key_root");
    wrong_col.exp[0].col = 4;
    assert_int_equal(run_case(&wrong_col), 1);
    case_t wrong_path = cases[2];
    wrong_path.exp[0].path = "$.bogus2";
    assert_int_equal(run_case(&wrong_path), 1);
    case_t missing = cases[0]; /* ok_minimal, expecting an error that is not there */
    missing.exp[0] = (exp_t){"error", NULL, 0, 0, 1, 1, "$", "x"};
    assert_int_equal(run_case(&missing), 1);
    case_t extra = cases[2]; /* an error, expected OK */
    extra.exp[0].sev = NULL;
    assert_int_equal(run_case(&extra), 1);
    case_t wrong_msg = cases[2];
    wrong_msg.exp[0].msg = "unknown key \"bogus\" (allowed here: nothing";
    assert_int_equal(run_case(&wrong_msg), 1);
    case_t wrong_sev = cases[2];
    wrong_sev.exp[0].sev = "warning";
    assert_int_equal(run_case(&wrong_sev), 1);
    g_quiet = 0;
}

/* What the loaded policy holds for the well-formed case: the check above
 * must not be satisfied by a loader that accepts everything and keeps
 * nothing. */
static void test_loaded_policy(void **state)
{
    (void)state;
    char path[700];
    char *text = NULL;
    bg_config_t *cfg = NULL;
    int nerrors = -1;
    char *out = check_text("loaded", cases[1].text, &cfg, &nerrors, path, sizeof path, &text);
    assert_string_equal(out, "");
    assert_int_equal(nerrors, 0);
    assert_non_null(cfg);
    const bg_policy_t *p = cfg->policy;
    assert_string_equal(p->version, "t-1");
    assert_int_equal(p->min_confidence, BG_CONF_HIGH);
    assert_true(p->never_export >> BG_CAT_CREDENTIALS & 1);
    assert_true(p->never_export >> BG_CAT_BIOMETRICS & 1);
    assert_int_equal(p->never_export_block, 1);
    assert_int_equal(p->ndnt_purposes, 1);
    assert_string_equal(p->dnt_purposes[0], "analytics");
    assert_int_equal(p->subject_abroad_allowed, 1);
    assert_int_equal(p->sensitive[BG_CAT_CN_RESIDENT_ID], 0);
    assert_int_equal(p->sensitive[BG_CAT_BANK_CARD], 1);
    assert_int_equal(p->default_fallback, BG_FALLBACK_REMOVE);
    assert_int_equal(p->pseudonym_key_len, 32);
    assert_int_equal(p->has_token_key, 1);
    assert_int_equal(p->subject_key_len, 32);
    assert_non_null(p->consent_registry);
    assert_int_equal(bg_policy_operator(p, BG_CAT_CN_MOBILE)->kind, BG_OP_MASK);
    assert_int_equal(bg_policy_operator(p, BG_CAT_CN_MOBILE)->keep_start, 3);
    assert_int_equal(bg_policy_operator(p, BG_CAT_BANK_CARD)->kind, BG_OP_TOKENIZE);
    assert_int_equal(bg_policy_operator(p, BG_CAT_EMAIL)->kind, BG_OP_REDACT);
    assert_int_equal(p->nrecipients, 1);
    const bg_recipient_t *r = bg_policy_recipient(p, "acme-hk");
    assert_non_null(r);
    assert_int_equal(r->mechanism, BG_MECH_STANDARD_CONTRACT);
    assert_string_equal(r->mechanism_ref, "CAC-SC-2025-0012");
    /* 2099-12-31 is valid through the end of that day in China (UTC+8). */
    assert_int_equal(r->mechanism_expires_ms, 4102444799000LL - 8 * 3600 * 1000LL);
    assert_int_equal(p->nrules, 2);
    assert_string_equal(p->rules[0].clause, "Privacy policy 4.2");
    assert_int_equal(p->rules[0].bases, 1u << BG_BASIS_CONTRACT | 1u << BG_BASIS_CONSENT);
    assert_int_equal(p->rules[1].fallback, BG_FALLBACK_DEIDENTIFY);
    assert_int_equal(p->rules[1].has_op, 1);
    assert_int_equal(p->nroutes, 1);
    const bg_route_policy_t *rp = &p->routes[0];
    assert_ptr_equal(rp->recipient, r);
    assert_string_equal(rp->purpose, "delivery");
    assert_int_equal(rp->monitor, 1);
    assert_int_equal(rp->opaque_allow, 1);
    assert_int_equal(rp->legal_obligation.present, 1);
    assert_string_equal(rp->legal_obligation.reference, "AML Law Art. 16");
    assert_int_equal(rp->contract.present, 1);
    assert_int_equal(rp->contract.reference_required, 1);
    assert_string_equal(rp->contract.reference_path, "$.order_id");
    assert_int_equal(rp->contract.nnecessary_paths, 1);
    assert_string_equal(rp->subject_id, "$.user.id");
    assert_string_equal(rp->birth_date, "$.user.dob");
    /* First matching rule per category on this route. */
    assert_int_equal(rp->rule_for[BG_CAT_CN_MOBILE], 0);
    assert_int_equal(rp->rule_for[BG_CAT_PERSON_NAME], 0);
    assert_int_equal(rp->rule_for[BG_CAT_DEVICE_ID], 1);
    assert_int_equal(rp->rule_for[BG_CAT_EMAIL], -1);
    bg_config_unref(cfg);
    free(out);
    free(text);
}

/* Categories of the policy's own: defined once, then usable wherever a
 * built-in one is (field rules, rules, operators, sensitivity, contract
 * necessity), with what the policy says of the parent applied to them. */
static void test_policy_categories(void **state)
{
    (void)state;
    const case_t *c = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(cases[i].name, "ok_policy_categories") == 0)
            c = &cases[i];
    assert_non_null(c);
    char path[700];
    char *text = NULL;
    bg_config_t *cfg = NULL;
    int nerrors = -1;
    char *out = check_text("categories", c->text, &cfg, &nerrors, path, sizeof path, &text);
    assert_string_equal(out, "");
    assert_int_equal(nerrors, 0);
    const bg_policy_t *p = cfg->policy;
    /* Two of its own, after the documented categories every policy has. */
    size_t ndoc = 0;
    while (bg_policy_documented_at(ndoc) != NULL)
        ndoc++;
    assert_int_equal(p->next, 2 + (int)ndoc);
    bg_detect_cat_t loyalty = BG_CAT_NONE, salary = BG_CAT_NONE;
    for (int k = 0; k < p->next; k++) {
        if (strcmp(p->ext[k].id, "loyalty_no") == 0)
            loyalty = p->ext[k].cat;
        if (strcmp(p->ext[k].id, "salary") == 0)
            salary = p->ext[k].cat;
    }
    assert_true(loyalty >= BG_CAT__COUNT && loyalty < BG_CAT_MAX);
    assert_true(salary >= BG_CAT__COUNT && salary < BG_CAT_MAX);
    assert_string_equal(bg_detect_category_id(loyalty), "loyalty_no");
    assert_string_equal(bg_detect_category_id(salary), "salary");
    /* Not a built-in id: a later policy cannot name it without defining it. */
    assert_int_equal(bg_detect_category_from_id("salary", 6), BG_CAT_NONE);
    /* The same id keeps its value (a reload). */
    assert_int_equal(bg_detect_category_intern("salary", 6), salary);
    assert_int_equal(bg_detect_category_intern("email", 5), BG_CAT_NONE);
    /* Sensitivity: the file's, then the policy's override. */
    assert_int_equal(p->sensitive[salary], 1);
    assert_int_equal(p->sensitive[loyalty], 1);
    /* Operators: its own, or the parent's. */
    assert_int_equal(bg_policy_operator(p, salary)->kind, BG_OP_REDACT);
    assert_int_equal(bg_policy_operator(p, loyalty)->kind, BG_OP_MASK);
    assert_int_equal(bg_policy_operator(p, loyalty)->keep_start, 2);
    /* Rules: "accounts" names the parent and so covers the child. */
    const bg_route_policy_t *rp = &p->routes[0];
    assert_int_equal(rp->rule_for[BG_CAT_ACCOUNT_ID], 1);
    assert_int_equal(rp->rule_for[loyalty], 1);
    assert_int_equal(rp->rule_for[salary], 2);
    assert_true(rp->contract.necessary >> salary & 1);

    /* Field rules find them; findings carry the id and the sensitivity. */
    static const char body[] = "{\"member_no\":\"M-0042\",\"employee\":{\"salary\":18500}}";
    bg_inspect_input_t in = {"POST", 4, "/", 1, NULL, 0, body, sizeof body - 1};
    bg_http_header_t ct = {"Content-Type", 12, "application/json", 16};
    in.headers = &ct;
    in.nheaders = 1;
    bg_inspection_t *x = bg_inspect(rp->inspect, &in);
    assert_non_null(x);
    assert_null(bg_inspection_undecodable(x));
    assert_int_equal(bg_inspection_count(x), 2);
    const bg_finding_t *f0 = bg_inspection_finding(x, 0), *f1 = bg_inspection_finding(x, 1);
    assert_string_equal(f0->path, "$.member_no");
    assert_string_equal(bg_detect_category_id(f0->category), "loyalty_no");
    assert_string_equal(f0->source, "member");
    assert_int_equal(f0->sensitive, 1);
    assert_string_equal(f1->path, "$.employee.salary");
    assert_string_equal(bg_detect_category_id(f1->category), "salary");
    assert_int_equal(f1->sensitive, 1);
    bg_inspection_free(x);
    bg_config_unref(cfg);
    free(out);
    free(text);
}

/* ---------------------------------------------------------------------- */

static void write_file(const char *name, const void *data, size_t len)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
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
    snprintf(g_dir, sizeof g_dir, "/tmp/bg-policy-check-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    static const char hex32[] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
    write_file("pn.key", hex32, strlen(hex32));
    write_file("subject.key", "4219a7035e77c18d102f334a95b6e0017c889daa213e546f708192a3b4c5d6e7\n",
               65);
    write_file("tok.key", "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", 64);
    /* 32 hex digits: 16 bytes of key, though the file has 32 characters. */
    write_file("short-hex.key", "00112233445566778899aabbccddeeff", 32);
    /* 31 raw bytes (not hex). */
    write_file("short-raw.key", "this is not hex and 31 bytes!!!", 31);
    unsetenv("BG_TEST_UNSET_KEY_VAR");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* Documentation and code agree on the categories (issue 14)               */

#define MAX_IDS 96

/* The category ids of docs/categories.md's "## The categories" tables. */
static size_t documented_ids(char ids[MAX_IDS][64])
{
    const char *src = getenv("BG_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/categories.md", src != NULL ? src : ".");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    int in = 0;
    size_t n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "## ", 3) == 0)
            in = strcmp(line, "## The categories\n") == 0;
        if (!in || strncmp(line, "| `", 3) != 0)
            continue;
        const char *end = strchr(line + 3, '`');
        assert_non_null(end);
        assert_true(n < MAX_IDS);
        snprintf(ids[n++], 64, "%.*s", (int)(end - line - 3), line + 3);
    }
    fclose(f);
    return n;
}

static int has_id(char ids[][64], size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return 1;
    return 0;
}

/* Every category the docs list is accepted by `check` (in a rule, an
 * operator and a sensitivity override) with the sensitivity
 * config/categories.json gives it; every category the code knows (the
 * detectors' and the documented key-only ones) is in the docs and in
 * categories.json. */
static void test_documented_categories_are_real(void **state)
{
    (void)state;
    static char docs[MAX_IDS][64];
    size_t nd = documented_ids(docs);
    assert_true(nd >= 50);
    const char *src = getenv("BG_SOURCE_DIR");
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/config/categories.json", src != NULL ? src : ".");
    json_error_t jerr;
    json_t *tax = json_load_file(jpath, 0, &jerr);
    assert_non_null(tax);
    json_t *cats = json_object_get(tax, "categories");
    assert_int_equal(json_object_size(cats), nd);

    /* What the code knows is documented. */
    for (int c = 1; c < BG_CAT__COUNT; c++) {
        const char *id = bg_detect_category_id((bg_detect_cat_t)c);
        if (!has_id(docs, nd, id))
            fail_msg("category %s (detectors) is not in docs/categories.md", id);
    }
    for (size_t i = 0; bg_policy_documented_at(i) != NULL; i++)
        if (!has_id(docs, nd, bg_policy_documented_at(i)))
            fail_msg("category %s is not in docs/categories.md", bg_policy_documented_at(i));

    /* What the docs list is accepted, with its documented sensitivity. */
    for (size_t i = 0; i < nd; i++) {
        const char *id = docs[i];
        json_t *jc = json_object_get(cats, id);
        if (jc == NULL)
            fail_msg("%s: in docs/categories.md, not in config/categories.json", id);
        int sens = json_is_true(json_object_get(jc, "sensitive"));
        int never = json_is_true(json_object_get(jc, "never_export"));
        char text[4096];
        snprintf(text, sizeof text,
                 HEAD "  \"policy\": {\"sensitive\": {\"%s\": %s}},\n"
                      "  \"operators\": {\"%s\": \"redact\"},\n" RECIP_OK "  \"rules\": [\n"
                      "    {\"id\": \"r\", \"clause\": \"PP 1\", \"categories\": [\"%s\"], "
                      "\"bases\": [\"contract\"], \"fallback\": \"block\"}\n  ],\n" ROUTE_OK,
                 id, sens ? "true" : "false", id, id);
        char path[700];
        char *t = NULL;
        bg_config_t *cfg = NULL;
        int nerrors = -1;
        char *out = check_text("doc-category", text, &cfg, &nerrors, path, sizeof path, &t);
        if (nerrors != 0 || cfg == NULL)
            fail_msg("docs/categories.md lists %s but check refuses it:\n%s", id, out);
        /* Without the override, the policy's default is the file's. */
        bg_config_unref(cfg);
        free(out);
        free(t);
        snprintf(text, sizeof text,
                 HEAD RECIP_OK
                 "  \"rules\": [\n"
                 "    {\"id\": \"r\", \"clause\": \"PP 1\", \"categories\": [\"%s\"], "
                 "\"bases\": [\"contract\"], \"fallback\": \"block\"}\n  ],\n" ROUTE_OK,
                 id);
        out = check_text("doc-category", text, &cfg, &nerrors, path, sizeof path, &t);
        assert_non_null(cfg);
        const bg_policy_t *p = cfg->policy;
        bg_detect_cat_t c = bg_detect_category_from_id(id, strlen(id));
        for (int k = 0; c == BG_CAT_NONE && k < p->next; k++)
            if (strcmp(p->ext[k].id, id) == 0)
                c = p->ext[k].cat;
        assert_int_not_equal(c, BG_CAT_NONE);
        if (p->sensitive[c] != sens)
            fail_msg("%s: categories.json says sensitive=%d, the policy's default is %d", id, sens,
                     p->sensitive[c]);
        if (never)
            assert_true(p->never_export >> c & 1);
        bg_config_unref(cfg);
        free(out);
        free(t);
    }
    json_decref(tax);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_harness_detects_mismatch),
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_loaded_policy),
        cmocka_unit_test(test_policy_categories),
        cmocka_unit_test(test_known_bugs),
        cmocka_unit_test(test_documented_categories_are_real),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
