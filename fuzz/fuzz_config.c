/*
 * libFuzzer target: the configuration and policy loader. Arbitrary bytes as
 * a configuration file: bg_config_load must never crash, must report at
 * least one error or return a configuration, and a returned configuration
 * must have a policy compiled for each of its routes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/config.h"
#include "policy/policy.h"

#include "fuzz/fuzz.h"

static char path[64];

/* At exit: the temporary file goes. */
static void cleanup(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (path[0] == '\0') {
        snprintf(path, sizeof path, "/tmp/bg-fuzz-config-%d.json", (int)getpid());
        atexit(cleanup);
    }
    FILE *fp = fopen(path, "wb");
    if (fp == NULL)
        return 0;
    fwrite(data, 1, size, fp);
    fclose(fp);
    FILE *errs = fopen("/dev/null", "w");
    int nerr = 0;
    bg_config_t *cfg = bg_config_load(path, errs != NULL ? errs : stderr, &nerr);
    if (errs != NULL)
        fclose(errs);
    if (cfg == NULL && nerr == 0)
        abort(); /* a refused configuration must say why */
    if (cfg != NULL) {
        if (cfg->policy == NULL || cfg->policy->nroutes != cfg->nroutes)
            abort();
        bg_config_unref(cfg);
    }
    return 0;
}
