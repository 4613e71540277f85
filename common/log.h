/*
 * Operational log: one JSON object per line, to stderr or a file.
 *
 * Never pass personal-information values to these functions: log paths,
 * categories, ids and counts only. Messages are escaped for JSON.
 */
#ifndef BG_LOG_H
#define BG_LOG_H

#include <stdarg.h>

typedef enum {
    BG_LOG_DEBUG = 0,
    BG_LOG_INFO = 1,
    BG_LOG_WARN = 2,
    BG_LOG_ERROR = 3,
} bg_log_level_t;

/* Set the minimum level written (default INFO). */
void bg_log_set_level(bg_log_level_t level);
/* "debug", "info", "warn", "error"; returns -1 when unknown. */
int bg_log_parse_level(const char *s, bg_log_level_t *out);
/* Write to FILE (appending) instead of stderr; NULL restores stderr. 0/-1. */
int bg_log_set_file(const char *path);
/* Component name added to every line (e.g. "proxy", "sink"). Not copied. */
void bg_log_set_component(const char *component);

void bg_log(bg_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void bg_logv(bg_log_level_t level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Drain OpenSSL's error queue into the log with CONTEXT. */
void bg_log_openssl(bg_log_level_t level, const char *context);

#define bg_debug(...) bg_log(BG_LOG_DEBUG, __VA_ARGS__)
#define bg_info(...) bg_log(BG_LOG_INFO, __VA_ARGS__)
#define bg_warn(...) bg_log(BG_LOG_WARN, __VA_ARGS__)
#define bg_error(...) bg_log(BG_LOG_ERROR, __VA_ARGS__)

#endif
