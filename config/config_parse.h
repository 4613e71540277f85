/*
 * The configuration sections outside the policy, for the one loader that
 * joins them with the policy (bg_config_load, policy/config_load.c). Kept
 * out of config.h: only the loader parses.
 */
#ifndef BG_CONFIG_PARSE_H
#define BG_CONFIG_PARSE_H

#include <jansson.h>

#include "config/cfgutil.h"
#include "config/config.h"

/* A config with one reference for PATH with every section but the policy
 * parsed from ROOT; every problem is added to CTX. Takes ownership of ROOT
 * on success. NULL on ENOMEM (ROOT still the caller's). The caller adds
 * the policy (cfg->policy and cfg->policy_free) and, when CTX holds errors,
 * drops it with bg_config_unref. */
bg_config_t *bg_config_parse(bg_cfg_ctx_t *ctx, const char *path, json_t *root);

#endif
