/*
 * Shared helpers for validating JSON configuration: every problem is added
 * to a bg_cfgerr_t with its position (via the bg_jsonpos_t map) and JSON
 * path, and loading goes on to find the next one; the caller fails at the
 * end when any error was added. Used by config.c and the policy loader.
 */
#ifndef BG_CFGUTIL_H
#define BG_CFGUTIL_H

#include <stddef.h>

#include <jansson.h>

#include "config/cfgerr.h"
#include "config/jsonpos.h"

typedef struct {
    const char *file;
    bg_jsonpos_t *pos;
    bg_cfgerr_t *errs;
    int no_keys; /* check without key files: keys' shape only (bg_config_check) */
} bg_cfg_ctx_t;

/* An error about PATH (at its key when AT_KEY). */
void bg_cfg_err(bg_cfg_ctx_t *ctx, const char *path, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A warning about PATH. */
void bg_cfg_warn(bg_cfg_ctx_t *ctx, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* PARENT + .KEY / [INDEX] into OUT. */
void bg_cfg_path_key(char *out, size_t cap, const char *parent, const char *key);
void bg_cfg_path_index(char *out, size_t cap, const char *parent, size_t index);
/* Report keys of OBJ not in ALLOWED (NULL-terminated). */
void bg_cfg_check_keys(bg_cfg_ctx_t *ctx, json_t *obj, const char *path,
                       const char *const *allowed);
/*
 * Allocation for a loaded configuration or policy. Every failure is counted
 * per thread (bg_cfg_oom_count): the loader compares the count before and
 * after a load and fails the whole load when it grew, so out of memory
 * during a reload (SIGHUP) keeps the running configuration instead of
 * applying one with a field missing. Callers still check for NULL where
 * they would dereference it.
 */
/* A copy of S; NULL for NULL, or (counted) on ENOMEM. */
char *bg_cfg_dup(const char *s);
/* A copy of the N bytes at S, NUL-terminated; NULL (counted) on ENOMEM. */
char *bg_cfg_ndup(const char *s, size_t n);
/* N zeroed elements of SIZE bytes (calloc, at least one byte); NULL
 * (counted) on ENOMEM or overflow. */
void *bg_cfg_alloc(size_t n, size_t size);
/* Count a failure of an allocation made elsewhere (a jansson value). */
void bg_cfg_oom(void);
/* Allocation failures counted so far on this thread. */
unsigned long bg_cfg_oom_count(void);
/* OBJ.KEY if it has TYPE (JSON_TRUE means any boolean); NULL when absent or
 * of another type (then an error "must be TYPE_NAME" is added). */
json_t *bg_cfg_get_typed(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *key,
                         json_type type, const char *type_name);
const char *bg_cfg_get_string(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *key);
int bg_cfg_get_bool(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *key, int dflt);
long long bg_cfg_get_int(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *key,
                         long long dflt, long long min, long long max);

#endif
