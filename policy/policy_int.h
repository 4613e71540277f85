/*
 * Inside the policy loader (policy/policy.c loads section by section,
 * policy/policy_check.c checks the loaded whole). Not a public interface.
 */
#ifndef BG_POLICY_INT_H
#define BG_POLICY_INT_H

#include <jansson.h>

#include "config/cfgutil.h"
#include "policy/policy.h"

/* Is S one of the N strings of L? */
int bg_policy_in_list(char **l, int n, const char *s);

/* After the rules, operators and keys are loaded: rules an earlier rule
 * covers (errors), operators whose key $.keys in ROOT does not set
 * (errors), pseudonymizing fallbacks without accept_pseudonymized
 * (warnings). */
void bg_policy_check_rules(bg_cfg_ctx_t *ctx, const bg_policy_t *p, json_t *root);

/* After the route terms: honour_dnt_for purposes no route or recipient
 * has (an error when one is within two edits, else a warning) and rules
 * that apply to no configured route (warnings). */
void bg_policy_check_usage(bg_cfg_ctx_t *ctx, const bg_policy_t *p);

#endif
