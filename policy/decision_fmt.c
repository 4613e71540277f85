/*
 * The decision's output formats: the names of outcomes and actions, the 451
 * body a blocked client receives (bg_decision_block_body) and the record's
 * decision members (bg_decision_write), which the daemon, offline replay and
 * the tests all use. Only paths, categories, rule ids and pseudonyms are
 * written, never a value.
 */
#include <string.h>

#include "policy/decide.h"

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
        if (d->subject_by_device != NULL && d->subject_by_device[s])
            bg_sbuf_adds(b, ",\"by\":\"device\"");
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
