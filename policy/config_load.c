/*
 * bg_config_load (config/config.h): the one loader that joins the
 * configuration's sections (config/) and the policy (policy/). It lives
 * here, above both, so that config/ never calls into the policy that reads
 * it: config/ parses its sections (bg_config_parse), the policy loader adds
 * the policy, and every problem from either goes to one list, sorted by
 * position (bg_config_check hands it over, bg_config_load prints it).
 */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "config/cfgerr.h"
#include "config/cfgutil.h"
#include "config/config_parse.h"
#include "config/jsonpos.h"
#include "policy/policy.h"

bg_config_t *bg_config_check(const char *path, const bg_config_opts_t *opts, bg_cfgerr_t **diag,
                             int *nerrors)
{
    size_t len = 0;
    json_error_t jerr;
    bg_cfg_ctx_t ctx = {.file = path, .no_keys = opts != NULL && opts->no_keys};
    *nerrors = 1;
    *diag = ctx.errs = bg_cfgerr_new(path);
    if (ctx.errs == NULL)
        return NULL;
    char *text = bg_util_read_file(path, &len);
    if (text == NULL) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot read: %s", strerror(errno));
        bg_cfgerr_add(ctx.errs, BG_CFGERR_ERROR, 0, 0, NULL, msg);
        return NULL;
    }
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (root == NULL) {
        bg_cfgerr_add_json_error(ctx.errs, &jerr);
        free(text);
        return NULL;
    }
    /* Every allocation of the load is counted: a failed one fails the load
     * even where the parser carried on without the value, so a reload that
     * runs out of memory keeps the running configuration. */
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
    bg_jsonpos_free(ctx.pos);
    free(text);
    if (*nerrors > 0) {
        bg_config_unref(cfg);
        return NULL;
    }
    return cfg;
}

bg_config_t *bg_config_load(const char *path, FILE *errs, int *nerrors)
{
    bg_cfgerr_t *diag = NULL;
    bg_config_t *cfg = bg_config_check(path, NULL, &diag, nerrors);
    if (diag == NULL) {
        fprintf(errs, "%s: error: out of memory\n", path);
        *nerrors = 1;
        return NULL; /* cfg is NULL too: no sink, nothing loaded */
    }
    bg_cfgerr_print(diag, errs);
    bg_cfgerr_free(diag);
    return cfg;
}
