/*
 * bg_config_load (config/config.h): the one loader that joins the
 * configuration's sections (config/) and the policy (policy/). It lives
 * here, above both, so that config/ never calls into the policy that reads
 * it: config/ parses its sections (bg_config_parse), the policy loader adds
 * the policy, and every problem from either goes to one list, sorted by
 * position and printed once.
 */
#include "config/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "config/cfgerr.h"
#include "config/cfgutil.h"
#include "config/config_parse.h"
#include "config/jsonpos.h"
#include "policy/policy.h"

bg_config_t *bg_config_load(const char *path, FILE *errs, int *nerrors)
{
    size_t len = 0;
    json_error_t jerr;
    bg_cfg_ctx_t ctx = {.file = path};
    *nerrors = 0;

    char *text = bg_util_read_file(path, &len);
    if (text == NULL) {
        fprintf(errs, "%s: error: cannot read: %s\n", path, strerror(errno));
        *nerrors = 1;
        return NULL;
    }
    ctx.errs = bg_cfgerr_new(path);
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (root == NULL || ctx.errs == NULL) {
        if (ctx.errs != NULL) {
            bg_cfgerr_add_json_error(ctx.errs, &jerr);
            bg_cfgerr_print(ctx.errs, errs);
            bg_cfgerr_free(ctx.errs);
        } else {
            fprintf(errs, "%s: error: out of memory\n", path);
        }
        json_decref(root);
        *nerrors = 1;
        free(text);
        return NULL;
    }
    /* Every allocation of the load is counted: a failed one fails the load
     * even where the parser carried on without the value. */
    unsigned long oom = bg_cfg_oom_count();
    ctx.pos = bg_jsonpos_build(text, len); /* NULL (ENOMEM): errors lose their line:col */
    /* A repeated key silently overrides the first one: always an error in a
     * document people review. */
    bg_cfgerr_add_duplicates(ctx.errs, ctx.pos);
    bg_config_t *cfg = bg_config_parse(&ctx, path, root);
    if (cfg == NULL) {
        json_decref(root);
        bg_cfg_oom();
    } else {
        cfg->policy = bg_policy_load(&ctx, root, cfg, text, len);
        cfg->policy_free = bg_policy_free;
        if (cfg->policy == NULL)
            bg_cfg_oom();
    }
    if (bg_cfg_oom_count() != oom)
        bg_cfg_err(&ctx, "$", 0, "out of memory loading the configuration");

    *nerrors = (int)bg_cfgerr_errors(ctx.errs);
    bg_cfgerr_sort(ctx.errs);
    bg_cfgerr_print(ctx.errs, errs);
    bg_cfgerr_free(ctx.errs);
    bg_jsonpos_free(ctx.pos);
    free(text);
    if (*nerrors > 0) {
        bg_config_unref(cfg);
        return NULL;
    }
    return cfg;
}
