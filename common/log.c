#include "common/log.h"

#include "common/util.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static bg_log_level_t log_level = BG_LOG_INFO;
static FILE *log_fp;
static char *log_path; /* of log_fp, for bg_log_reopen */
static bg_log_format_t log_format = BG_LOG_JSON;
static const char *log_component = "bordergate";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int journal_state = -1; /* stderr is the systemd journal: 1/0; -1 not looked at yet */

/* syslog priorities of the levels, for journald's "<N>" line prefix */
static const int level_priority[] = {7, 6, 4, 3};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void bg_log_set_level(bg_log_level_t level)
{
    log_level = level;
}

int bg_log_parse_level(const char *s, bg_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (bg_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void bg_log_set_format(bg_log_format_t format)
{
    log_format = format;
}

int bg_log_parse_format(const char *s, bg_log_format_t *out)
{
    if (strcmp(s, "json") == 0)
        *out = BG_LOG_JSON;
    else if (strcmp(s, "text") == 0)
        *out = BG_LOG_TEXT;
    else
        return -1;
    return 0;
}

int bg_log_set_file(const char *path)
{
    FILE *fp = NULL;
    char *copy = NULL;
    if (path != NULL) {
        copy = strdup(path);
        fp = copy != NULL ? fopen(path, "a") : NULL;
        if (fp == NULL) {
            free(copy);
            return -1;
        }
        setvbuf(fp, NULL, _IOLBF, 0);
    }
    pthread_mutex_lock(&log_lock);
    if (log_fp != NULL)
        fclose(log_fp);
    log_fp = fp;
    free(log_path);
    log_path = copy;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

int bg_log_reopen(void)
{
    pthread_mutex_lock(&log_lock);
    int rc = 0;
    if (log_path != NULL) {
        FILE *fp = fopen(log_path, "a");
        if (fp == NULL) {
            rc = -1;
        } else {
            setvbuf(fp, NULL, _IOLBF, 0);
            fclose(log_fp);
            log_fp = fp;
        }
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
}

void bg_log_set_component(const char *component)
{
    log_component = component;
}

/*
 * Is stderr connected to the systemd journal? systemd sets JOURNAL_STREAM
 * to "DEVICE:INODE" of the stream it gave the service; it is inherited by
 * children whose stderr may be something else, so the numbers must match
 * stderr's own. Looked at once (the answer does not change).
 */
static int stderr_is_journal(void)
{
    if (journal_state >= 0)
        return journal_state;
    journal_state = 0;
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        journal_state = 1;
    return journal_state;
}

/* Append S to OUT as the inside of a JSON string; stops at CAP-1 bytes. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s != '\0' && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

static void logv(bg_log_level_t level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void logv(bg_log_level_t level, const char *fmt, va_list ap)
{
    char msg[2048];
    char esc[4200];
    char ts[40];
    struct timeval tv;
    struct tm tm;

    if (level < log_level)
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (log_format == BG_LOG_TEXT) {
        /* One event, one line: no control character may start another. */
        for (char *c = msg; *c != '\0'; c++)
            if ((unsigned char)*c < 0x20)
                *c = ' ';
    } else {
        json_escape(esc, sizeof esc, msg);
    }
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&log_lock);
    FILE *fp = log_fp != NULL ? log_fp : stderr;
    if (fp == stderr && stderr_is_journal())
        fprintf(fp, "<%d>", level_priority[level]); /* journald takes it as the priority */
    if (log_format == BG_LOG_TEXT)
        fprintf(fp, "%s.%03ldZ %s %s: %s\n", ts, (long)(tv.tv_usec / 1000), level_names[level],
                log_component, msg);
    else
        fprintf(fp,
                "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"}\n",
                ts, (long)(tv.tv_usec / 1000), level_names[level], log_component, esc);
    fflush(fp);
    pthread_mutex_unlock(&log_lock);
}

void bg_log(bg_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    logv(level, fmt, ap);
    va_end(ap);
}

void bg_log_openssl(bg_log_level_t level, const char *context)
{
    unsigned long e;
    char buf[256];
    int any = 0;
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        bg_log(level, "%s: %s", context, buf);
        any = 1;
    }
    if (!any)
        bg_log(level, "%s", context);
}

/* Every limiter used so far, for bg_log_limits_flush (under log_lock). */
static bg_log_limit_t *limits;

void bg_log_limited(bg_log_limit_t *l, bg_log_level_t level, const char *fmt, ...)
{
    uint64_t now = bg_util_mono_us();
    uint64_t suppressed = 0;
    int emit = 0;
    pthread_mutex_lock(&log_lock);
    if (!l->registered) {
        l->registered = 1;
        l->next = limits;
        limits = l;
    }
    if (l->last_us == 0 || now - l->last_us >= (uint64_t)BG_LOG_LIMIT_EVERY_S * 1000000u) {
        emit = 1;
        suppressed = l->suppressed;
        l->suppressed = 0;
        l->last_us = now;
    } else {
        l->suppressed++;
    }
    pthread_mutex_unlock(&log_lock);
    if (!emit)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (suppressed > 0)
        bg_log(level, "%s (and %llu more like it in the last %d s)", msg,
               (unsigned long long)suppressed, BG_LOG_LIMIT_EVERY_S);
    else
        bg_log(level, "%s (further ones are counted, reported at most every %d s)", msg,
               BG_LOG_LIMIT_EVERY_S);
}

/* The limiters of bg_log_limited_cause, made on first use (under
 * log_lock); the last one is shared by causes beyond the table. */
static bg_log_limit_t cause_limits[BG_LOG_LIMIT_CAUSES];
static char cause_texts[BG_LOG_LIMIT_CAUSES][96];

static bg_log_limit_t *cause_limit(const char *cause, bg_log_level_t level)
{
    pthread_mutex_lock(&log_lock);
    bg_log_limit_t *l = &cause_limits[BG_LOG_LIMIT_CAUSES - 1];
    for (int i = 0; i < BG_LOG_LIMIT_CAUSES; i++) {
        if (cause_limits[i].what == NULL) {
            snprintf(cause_texts[i], sizeof cause_texts[i], "%s",
                     i == BG_LOG_LIMIT_CAUSES - 1 ? "other causes" : cause);
            cause_limits[i].what = cause_texts[i];
            cause_limits[i].level = level;
        }
        if (strncmp(cause_texts[i], cause, sizeof cause_texts[i] - 1) == 0) {
            l = &cause_limits[i];
            break;
        }
    }
    pthread_mutex_unlock(&log_lock);
    return l;
}

void bg_log_limited_cause(const char *cause, bg_log_level_t level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bg_log_limited(cause_limit(cause, level), level, "%s", msg);
}

void bg_log_limits_flush(void)
{
    uint64_t now = bg_util_mono_us();
    for (;;) {
        const char *what = NULL;
        bg_log_level_t level = BG_LOG_INFO;
        uint64_t n = 0;
        pthread_mutex_lock(&log_lock);
        for (bg_log_limit_t *l = limits; l != NULL; l = l->next) {
            if (l->suppressed > 0 &&
                now - l->last_us >= (uint64_t)BG_LOG_LIMIT_EVERY_S * 1000000u) {
                what = l->what;
                level = l->level;
                n = l->suppressed;
                l->suppressed = 0;
                l->last_us = now;
                break;
            }
        }
        pthread_mutex_unlock(&log_lock);
        if (what == NULL)
            return;
        bg_log(level, "%s: %llu more in the last %d s", what, (unsigned long long)n,
               BG_LOG_LIMIT_EVERY_S);
    }
}
