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
#include <stdint.h>

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

/*
 * One kind of event that may repeat thousands of times a second (every
 * request refused while the audit disk is full): the first occurrence is
 * logged, the next ones within BG_LOG_LIMIT_EVERY_S are only counted, and
 * the count is reported with the next occurrence after the interval or by
 * bg_log_limits_flush (called once a second by the daemon's control loop),
 * so a burst costs at most one line every BG_LOG_LIMIT_EVERY_S. Declare
 * one static limiter per call site with BG_LOG_LIMIT(level, "what"); any
 * thread may use it (the log's lock guards it).
 */
#define BG_LOG_LIMIT_EVERY_S 10
typedef struct bg_log_limit {
    const char *what;     /* the count's line: "WHAT: N more in the last 10 s" */
    bg_log_level_t level; /* of that line */
    uint64_t last_us;     /* monotonic time of the last line; 0: none yet */
    uint64_t suppressed;  /* occurrences not logged since */
    int registered;       /* on the flush list */
    struct bg_log_limit *next;
} bg_log_limit_t;
#define BG_LOG_LIMIT(level, what)                                                                  \
    {                                                                                              \
        (what), (level), 0, 0, 0, NULL                                                             \
    }

/* Log FMT now if LIMIT's interval has passed (with the count of the ones
 * left out), else only count it. */
void bg_log_limited(bg_log_limit_t *limit, bg_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with a limiter per CAUSE (a constant text, compared by value,
 * e.g. a refusal's reason): the first BG_LOG_LIMIT_CAUSES causes get their
 * own limiter, later ones share one. */
#define BG_LOG_LIMIT_CAUSES 32
void bg_log_limited_cause(const char *cause, bg_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Report the counts of every limiter whose interval has passed. */
void bg_log_limits_flush(void);

#define bg_debug(...) bg_log(BG_LOG_DEBUG, __VA_ARGS__)
#define bg_info(...) bg_log(BG_LOG_INFO, __VA_ARGS__)
#define bg_warn(...) bg_log(BG_LOG_WARN, __VA_ARGS__)
#define bg_error(...) bg_log(BG_LOG_ERROR, __VA_ARGS__)

#endif
