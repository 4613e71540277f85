/*
 * Operational log: one JSON object per line ({"time","level","component",
 * "msg"}), or plain text lines when log.format is "text", to stderr or a
 * file (reopened by bg_log_reopen, for log rotation).
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
typedef enum { BG_LOG_JSON = 0, BG_LOG_TEXT = 1 } bg_log_format_t;

/* JSON lines (default) or "TIME LEVEL component: message" text lines. */
void bg_log_set_format(bg_log_format_t format);
/* "json" or "text"; returns -1 when unknown. */
int bg_log_parse_format(const char *s, bg_log_format_t *out);
/* Close and reopen the log file by its path (after a rotation moved it);
 * nothing to do for stderr. 0, or -1 (errno set) with the old file kept. */
int bg_log_reopen(void);

/* Component name added to every line (e.g. "proxy", "sink"). Not copied. */
void bg_log_set_component(const char *component);

void bg_log(bg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drain OpenSSL's error queue into the log with CONTEXT. */
void bg_log_openssl(bg_log_level_t level, const char *context);

#define bg_debug(...) bg_log(BG_LOG_DEBUG, __VA_ARGS__)
#define bg_info(...) bg_log(BG_LOG_INFO, __VA_ARGS__)
#define bg_warn(...) bg_log(BG_LOG_WARN, __VA_ARGS__)
#define bg_error(...) bg_log(BG_LOG_ERROR, __VA_ARGS__)

#endif
