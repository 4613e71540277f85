#include "config/cfgutil.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bg_cfg_err(bg_cfg_ctx_t *ctx, const char *path, int at_key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bg_cfgerr_addf(ctx->errs, ctx->pos, BG_CFGERR_ERROR, path, at_key, "%s", msg);
}

void bg_cfg_path_key(char *out, size_t cap, const char *parent, const char *key)
{
    size_t len = strlen(parent);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, parent, len);
    out[len] = '\0';
    bg_jsonpos_path_append_key(out, cap, len, key);
}

void bg_cfg_path_index(char *out, size_t cap, const char *parent, size_t index)
{
    size_t len = strlen(parent);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, parent, len);
    out[len] = '\0';
    bg_jsonpos_path_append_index(out, cap, len, index);
}

/* Report keys of OBJ not in ALLOWED (NULL-terminated). */
void bg_cfg_check_keys(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (int i = 0; allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            char p[512];
            char list[512] = "";
            size_t n = 0;
            for (int i = 0; allowed[i] != NULL && n < sizeof list - 40; i++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", allowed[i]);
            bg_cfg_path_key(p, sizeof p, path, key);
            bg_cfg_err(ctx, p, 1, "unknown key \"%s\" (allowed here: %s)", key, list);
        }
    }
}

/* Allocation failures of this thread's loads (bg_cfg_oom_count). */
static _Thread_local unsigned long t_oom;

char *bg_cfg_dup(const char *s)
{
    char *d = s != NULL ? strdup(s) : NULL;
    if (s != NULL && d == NULL)
        t_oom++;
    return d;
}

char *bg_cfg_ndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (d == NULL)
        t_oom++;
    return d;
}

void *bg_cfg_alloc(size_t n, size_t size)
{
    if (size > 0 && n > SIZE_MAX / size) {
        t_oom++;
        return NULL;
    }
    void *p = calloc(n > 0 ? n : 1, size > 0 ? size : 1);
    if (p == NULL)
        t_oom++;
    return p;
}

void bg_cfg_oom(void)
{
    t_oom++;
}

unsigned long bg_cfg_oom_count(void)
{
    return t_oom;
}

json_t *bg_cfg_get_typed(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *key,
                         json_type type, const char *type_name)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return NULL;
    if (json_typeof(v) != type && !(type == JSON_TRUE && json_is_boolean(v))) {
        char p[512];
        bg_cfg_path_key(p, sizeof p, path, key);
        bg_cfg_err(ctx, p, 0, "must be %s", type_name);
        return NULL;
    }
    return v;
}

const char *bg_cfg_get_string(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *key)
{
    json_t *v = bg_cfg_get_typed(ctx, obj, path, key, JSON_STRING, "a string");
    return v != NULL ? json_string_value(v) : NULL;
}

int bg_cfg_get_bool(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *key, int dflt)
{
    json_t *v = bg_cfg_get_typed(ctx, obj, path, key, JSON_TRUE, "true or false");
    return v != NULL ? json_is_true(v) : dflt;
}

/* Integer in [MIN, MAX]; DFLT when absent or invalid (error reported). */
long long bg_cfg_get_int(bg_cfg_ctx_t *ctx, json_t *obj, const char *path, const char *key,
                         long long dflt, long long min, long long max)
{
    json_t *v = json_object_get(obj, key);
    char p[512];
    if (v == NULL)
        return dflt;
    bg_cfg_path_key(p, sizeof p, path, key);
    if (!json_is_integer(v)) {
        bg_cfg_err(ctx, p, 0, "must be a whole number");
        return dflt;
    }
    long long x = json_integer_value(v);
    if (x < min || x > max) {
        bg_cfg_err(ctx, p, 0, "must be between %lld and %lld", min, max);
        return dflt;
    }
    return x;
}

void bg_cfg_warn(bg_cfg_ctx_t *ctx, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bg_cfgerr_addf(ctx->errs, ctx->pos, BG_CFGERR_WARNING, path, 0, "%s", msg);
}
