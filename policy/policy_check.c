/*
 * The checks that look at the loaded policy as a whole (policy.c loads it
 * section by section): rules an earlier rule shadows, keys an operator
 * needs, pseudonymizing fallbacks (PIPL Art. 73), honour_dnt_for purposes
 * nobody has, rules no route uses. Each is an error or a warning with its
 * JSON path, in the order the loader always gave them.
 */
#include "policy/policy_int.h"

#include <stdio.h>
#include <string.h>

#include "inspect/taxonomy.h"

/* Rule J takes every case of rule I (J earlier): then I is unreachable. */
static int rule_covers(const bg_policy_t *p, const bg_rule_t *j, const bg_rule_t *i)
{
    if (!j->all_categories) {
        if (i->all_categories)
            return 0;
        uint64_t jc = j->categories;
        if (j->sensitive_only)
            for (int c = 0; c < BG_CAT_MAX; c++)
                if (p->sensitive[c])
                    jc |= 1ull << c;
        uint64_t ic = i->categories;
        if (i->sensitive_only)
            for (int c = 0; c < BG_CAT_MAX; c++)
                if (p->sensitive[c])
                    ic |= 1ull << c;
        if ((ic & ~jc) != 0)
            return 0;
    }
    if (j->recipients != NULL) {
        if (i->recipients == NULL)
            return 0;
        for (int k = 0; k < i->nrecipients; k++)
            if (!bg_policy_in_list(j->recipients, j->nrecipients, i->recipients[k]))
                return 0;
    }
    if (j->purposes != NULL) {
        if (i->purposes == NULL)
            return 0;
        for (int k = 0; k < i->npurposes; k++)
            if (!bg_policy_in_list(j->purposes, j->npurposes, i->purposes[k]))
                return 0;
    }
    return 1;
}

static int op_needs_key(const bg_op_t *op, int token)
{
    return op->kind == (token ? BG_OP_TOKENIZE : BG_OP_HASH);
}

void bg_policy_check_rules(bg_cfg_ctx_t *ctx, const bg_policy_t *p, json_t *root)
{
    /* Unreachable rules: an earlier rule takes all their cases. */
    for (int i = 0; i < p->nrules; i++) {
        for (int j = 0; j < i; j++) {
            if (rule_covers(p, &p->rules[j], &p->rules[i])) {
                char rp[512];
                bg_cfg_path_index(rp, sizeof rp, "$.rules", (size_t)i);
                bg_cfg_err(ctx, rp, 0,
                           "rule \"%s\" can never apply: rule \"%s\" before it covers all its "
                           "categories, recipients and purposes",
                           p->rules[i].id, p->rules[j].id);
                break;
            }
        }
    }
    /* Operators that need keys. */
    int need_hash = op_needs_key(&p->default_op, 0), need_tok = op_needs_key(&p->default_op, 1);
    if (p->has_default_fallback_op) {
        need_hash |= op_needs_key(&p->default_fallback_op, 0);
        need_tok |= op_needs_key(&p->default_fallback_op, 1);
    }
    for (int c = 0; c < BG_CAT_MAX; c++) {
        if (p->has_operator[c]) {
            need_hash |= op_needs_key(&p->operators[c], 0);
            need_tok |= op_needs_key(&p->operators[c], 1);
        }
    }
    for (int i = 0; i < p->nrules; i++) {
        if (p->rules[i].has_op) {
            need_hash |= op_needs_key(&p->rules[i].op, 0);
            need_tok |= op_needs_key(&p->rules[i].op, 1);
        }
    }
    json_t *kobj = json_object_get(root, "keys");
    int hash_configured = json_is_object(kobj) && json_object_get(kobj, "pseudonym") != NULL;
    int token_configured = json_is_object(kobj) && json_object_get(kobj, "token") != NULL;
    /* A configured key that failed to load was reported already. */
    if (need_hash && p->pseudonym_key_len == 0 && !hash_configured)
        bg_cfg_err(ctx, "$", 0, "the hash operator is used but $.keys.pseudonym is not set");
    if (need_tok && !p->has_token_key && !token_configured)
        bg_cfg_err(ctx, "$", 0, "the tokenize operator is used but $.keys.token is not set");
    /* PIPL Art. 73: pseudonymized data is still personal information. A
     * pseudonymizing fallback without the rule's explicit acceptance
     * blocks at run time (docs/policy.md); say so for every category,
     * sensitive or not, and for the default fallback. */
    for (int i = 0; i < p->nrules; i++) {
        bg_rule_t *r = &p->rules[i];
        if (r->fallback != BG_FALLBACK_DEIDENTIFY || r->accept_pseudonymized)
            continue;
        for (int c = 1; c < BG_CAT_MAX; c++) {
            int covered = r->all_categories || (r->categories >> c & 1) ||
                          (r->sensitive_only && p->sensitive[c]);
            if (!covered || (p->never_export >> c & 1))
                continue;
            const bg_op_t *op = r->has_op ? &r->op : bg_policy_operator(p, (bg_detect_cat_t)c);
            if (!bg_op_anonymizes(op->kind)) {
                char rp[512];
                bg_cfg_path_index(rp, sizeof rp, "$.rules", (size_t)i);
                bg_cfg_warn(ctx, rp,
                            "rule \"%s\" falls back to %s for %s%s when no basis holds: "
                            "pseudonymized data is still personal information (PIPL Art. 73), "
                            "so without a basis the request is blocked; use an anonymizing "
                            "operator (redact, replace, generalize) or set "
                            "\"accept_pseudonymized\": true",
                            r->id, bg_op_name(op->kind),
                            p->sensitive[c] ? "sensitive category " : "category ",
                            bg_detect_category_id((bg_detect_cat_t)c));
                break;
            }
        }
    }
    for (int c = 1; c < BG_CAT_MAX && p->default_fallback == BG_FALLBACK_DEIDENTIFY; c++) {
        const bg_op_t *op = p->has_default_fallback_op ? &p->default_fallback_op
                                                       : bg_policy_operator(p, (bg_detect_cat_t)c);
        if (!bg_op_anonymizes(op->kind) && !(p->never_export >> c & 1)) {
            bg_cfg_warn(ctx, "$.policy.default_fallback",
                        "the default fallback pseudonymizes (%s, for %s) when no rule applies: "
                        "pseudonymized data is still personal information (PIPL Art. 73) and no "
                        "rule accepts it without a basis, so such requests are blocked",
                        bg_op_name(op->kind), bg_detect_category_id((bg_detect_cat_t)c));
            break;
        }
    }
}

/* Levenshtein distance of A and B, capped at 9 (ids are short). */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 9;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > 9 ? 9 : row[lb];
}

/* The purpose of P (a route's or a recipient's) closest to WANT within two
 * edits, or NULL. */
static const char *near_purpose(const bg_policy_t *p, const char *want)
{
    const char *best = NULL;
    int bd = 3;
    for (int r = 0; r < p->nroutes; r++)
        if (p->routes[r].purpose != NULL && edit_distance(p->routes[r].purpose, want) < bd) {
            best = p->routes[r].purpose;
            bd = edit_distance(best, want);
        }
    for (int r = 0; r < p->nrecipients; r++)
        for (int k = 0; k < p->recipients[r].npurposes; k++)
            if (edit_distance(p->recipients[r].purposes[k], want) < bd) {
                best = p->recipients[r].purposes[k];
                bd = edit_distance(best, want);
            }
    return best;
}

/*
 * Each purpose in policy.honour_dnt_for should be a purpose some route or
 * recipient has: a misspelt one ("analytic") would silently leave DNT and
 * Sec-GPC unhonoured for the real purpose. Within two edits of a real
 * purpose it is an error naming it; otherwise a warning (a purpose the
 * policy may route later honours nothing yet).
 */
static void check_dnt_purposes(bg_cfg_ctx_t *ctx, const bg_policy_t *p)
{
    for (int i = 0; i < p->ndnt_purposes; i++) {
        const char *want = p->dnt_purposes[i];
        int known = 0;
        for (int r = 0; r < p->nroutes && !known; r++)
            known = p->routes[r].purpose != NULL && strcmp(p->routes[r].purpose, want) == 0;
        for (int r = 0; r < p->nrecipients && !known; r++)
            known = bg_policy_in_list(p->recipients[r].purposes, p->recipients[r].npurposes, want);
        if (known)
            continue;
        char hp[512];
        bg_cfg_path_index(hp, sizeof hp, "$.policy.honour_dnt_for", (size_t)i);
        char list[400] = "";
        size_t o = 0;
        for (int r = 0; r < p->nrecipients; r++)
            for (int k = 0; k < p->recipients[r].npurposes && o + 2 < sizeof list; k++) {
                const char *pu = p->recipients[r].purposes[k];
                if (strstr(list, pu) != NULL)
                    continue;
                int w = snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", pu);
                if (w > 0)
                    o += (size_t)w < sizeof list - o ? (size_t)w : sizeof list - o - 1;
            }
        const char *near = near_purpose(p, want);
        if (near != NULL)
            bg_cfg_err(ctx, hp, 0,
                       "no route or recipient has the purpose \"%s\": did you mean \"%s\"? "
                       "DNT/Sec-GPC would never be honoured for it (purposes: %s)",
                       want, near, list);
        else
            bg_cfg_warn(ctx, hp,
                        "no route or recipient has the purpose \"%s\": DNT/Sec-GPC is honoured "
                        "for nothing under it (purposes: %s)",
                        want, o > 0 ? list : "none declared");
    }
}

void bg_policy_check_usage(bg_cfg_ctx_t *ctx, const bg_policy_t *p)
{
    check_dnt_purposes(ctx, p);
    for (int i = 0; i < p->nrules; i++) {
        int used = 0;
        for (int r = 0; r < p->nroutes && !used; r++)
            for (int c = 0; c < BG_CAT_MAX && !used; c++)
                used = p->routes[r].rule_for[c] == i;
        if (!used && p->nroutes > 0) {
            char rp[512];
            bg_cfg_path_index(rp, sizeof rp, "$.rules", (size_t)i);
            bg_cfg_warn(ctx, rp, "rule \"%s\" applies to no configured route", p->rules[i].id);
        }
    }
}
