/*
 * The configuration's yearly volume thresholds as audit/counters.h applies
 * them. Here rather than in config/: the configuration only holds the
 * numbers, and config/ does not depend on audit/ (scripts/check-layers.py).
 */
#include "audit/counters.h"

#include "config/config.h"

void bg_config_thresholds(const struct bg_config *cfg, bg_counters_thresholds_t *t)
{
    bg_counters_thresholds_default(t);
    if (cfg->thr_contract_non_sensitive > 0)
        t->contract_non_sensitive = (uint64_t)cfg->thr_contract_non_sensitive;
    if (cfg->thr_assessment_non_sensitive > 0)
        t->assessment_non_sensitive = (uint64_t)cfg->thr_assessment_non_sensitive;
    if (cfg->thr_assessment_sensitive > 0)
        t->assessment_sensitive = (uint64_t)cfg->thr_assessment_sensitive;
}
