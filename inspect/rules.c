/*
 * Inspection rules: bg_inspect_rules_t compiled from the policy's field
 * rules, header and cookie lists and thresholds (immutable once built),
 * the default sensitive categories, and bg_inspect_path_valid for the
 * policy checker.
 */
#include "inspect/inspect_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sensitive PI by default (PIPL Art. 28; GB/T 35273-2020 Annex B; where
 * GB/T 45574-2025 is laxer, e.g. an ID number alone, the stricter reading). */
static const bg_detect_cat_t default_sensitive[] = {
    BG_CAT_CN_RESIDENT_ID,
    BG_CAT_HMT_RESIDENCE_PERMIT,
    BG_CAT_BANK_CARD,
    BG_CAT_GPS_LOCATION,
    BG_CAT_PASSPORT,
    BG_CAT_HK_ID,
    BG_CAT_TW_ID,
    BG_CAT_MO_ID,
    BG_CAT_MAINLAND_TRAVEL_PERMIT,
    BG_CAT_IDENTITY_DOCUMENT,
    BG_CAT_PRECISE_LOCATION,
    BG_CAT_WHEREABOUTS,
    BG_CAT_BIOMETRICS,
    BG_CAT_HEALTH,
    BG_CAT_RELIGION,
    BG_CAT_SPECIFIC_IDENTITY,
    BG_CAT_SEXUAL_ORIENTATION,
    BG_CAT_CRIMINAL_RECORD,
    BG_CAT_MINOR_UNDER_14,
    BG_CAT_FINANCIAL_ACCOUNT,
    BG_CAT_TRANSACTION_RECORD,
    BG_CAT_CREDENTIALS,
    BG_CAT_COMMUNICATION_RECORD,
    BG_CAT_BROWSING_HISTORY,
    BG_CAT_CONTACTS,
};

int bg_inspect_default_sensitive(bg_detect_cat_t cat)
{
    for (size_t i = 0; i < sizeof default_sensitive / sizeof default_sensitive[0]; i++)
        if (default_sensitive[i] == cat)
            return 1;
    return 0;
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    if (d != NULL)
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return d;
}

bg_inspect_rules_t *bg_inspect_rules_new(const bg_inspect_rules_spec_t *spec, char *err,
                                         size_t errcap)
{
    bg_inspect_rules_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        goto oom;
    r->rules = calloc(spec->nrules + 1, sizeof *r->rules);
    r->headers = calloc(spec->nheaders + 1, sizeof *r->headers);
    r->cookies = calloc(spec->ncookies + 1, sizeof *r->cookies);
    if (r->rules == NULL || r->headers == NULL || r->cookies == NULL)
        goto oom;
    for (size_t i = 0; i < spec->nrules; i++) {
        const bg_field_rule_spec_t *s = &spec->rules[i];
        rule_t *d = &r->rules[r->nrules++];
        d->id = strdup(s->id != NULL ? s->id : "field-rule");
        d->category = s->category;
        if (s->path != NULL) {
            char e[200];
            if (bg_insp_jpath_parse(s->path, &d->path, e, sizeof e) != 0) {
                snprintf(err, errcap, "field rule '%s': path: %s", d->id, e);
                bg_inspect_rules_free(r);
                return NULL;
            }
        }
        if (s->key != NULL) {
            d->key = strdup(s->key);
            d->key_len = strlen(s->key);
        }
    }
    for (size_t i = 0; i < spec->nheaders; i++)
        r->headers[r->nheaders++] = lower_dup(spec->headers[i]);
    for (size_t i = 0; i < spec->ncookies; i++) {
        if (strcmp(spec->cookies[i], "*") == 0)
            r->all_cookies = 1;
        else
            r->cookies[r->ncookies++] = strdup(spec->cookies[i]);
    }
    r->skip_query = spec->skip_query;
    r->address_books = spec->address_books;
    r->min_conf = spec->min_confidence != 0 ? spec->min_confidence : BG_CONF_MEDIUM;
    r->max_decoded = spec->max_decoded_bytes != 0 ? spec->max_decoded_bytes : (64u << 20);
    if (spec->records_path != NULL) {
        char e[200];
        if (bg_insp_jpath_parse(spec->records_path, &r->records, e, sizeof e) != 0 ||
            r->records.n == 0 || r->records.segs[r->records.n - 1].kind != SEG_ANY_INDEX) {
            snprintf(err, errcap,
                     "records path must be a JSON path ending in [*] (like $.events[*])");
            bg_inspect_rules_free(r);
            return NULL;
        }
        for (size_t i = 0; i + 1 < r->records.n; i++) {
            if (r->records.segs[i].kind != SEG_KEY && r->records.segs[i].kind != SEG_INDEX) {
                snprintf(err, errcap, "records path: only names and indexes before the final [*]");
                bg_inspect_rules_free(r);
                return NULL;
            }
        }
    }
    if (spec->sensitive != NULL) {
        memcpy(r->sensitive, spec->sensitive, sizeof r->sensitive);
    } else {
        for (size_t i = 0; i < sizeof default_sensitive / sizeof default_sensitive[0]; i++)
            r->sensitive[default_sensitive[i]] = 1;
    }
    return r;
oom:
    snprintf(err, errcap, "out of memory");
    bg_inspect_rules_free(r);
    return NULL;
}

void bg_inspect_rules_free(bg_inspect_rules_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; r->rules != NULL && i < r->nrules; i++) {
        free(r->rules[i].id);
        free(r->rules[i].key);
        bg_insp_jpath_free(&r->rules[i].path);
    }
    free(r->rules);
    for (size_t i = 0; r->headers != NULL && i < r->nheaders; i++)
        free(r->headers[i]);
    free(r->headers);
    for (size_t i = 0; r->cookies != NULL && i < r->ncookies; i++)
        free(r->cookies[i]);
    free(r->cookies);
    bg_insp_jpath_free(&r->records);
    free(r);
}

int bg_inspect_path_valid(const char *path, char *err, size_t errcap)
{
    jpath_t p;
    if (bg_insp_jpath_parse(path, &p, err, errcap) != 0)
        return -1;
    bg_insp_jpath_free(&p);
    return 0;
}
