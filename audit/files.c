/*
 * Audit file names and directory listing: PREFIX-YYYYMMDD-HHMMSS-NNNNNN.jsonl.
 */
#include "audit/chain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int bg_audit_files_prefix_ok(const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 0 || n > 64 || strcmp(prefix, ".") == 0 || strcmp(prefix, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = prefix[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

void bg_audit_files_name(const char *prefix, uint64_t wall_ms, uint64_t index, char *out,
                         size_t cap)
{
    time_t sec = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(out, cap, "%s-%04d%02d%02d-%02d%02d%02d-%06" PRIu64 ".jsonl", prefix,
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, index);
}

uint32_t bg_audit_files_day(uint64_t wall_ms)
{
    time_t sec = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    return (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int bg_audit_files_parse_name(const char *prefix, const char *name, uint64_t *index, uint32_t *day)
{
    size_t pl = strlen(prefix), nl = strlen(name);
    /* prefix - 8 - 6 - >=6 .jsonl */
    if (nl < pl + 1 + 8 + 1 + 6 + 1 + 6 + 6 || strncmp(name, prefix, pl) != 0)
        return 0;
    const char *p = name + pl;
    if (p[0] != '-' || !digits(p + 1, 8) || p[9] != '-' || !digits(p + 10, 6) || p[16] != '-')
        return 0;
    const char *idx = p + 17;
    const char *ext = name + nl - 6;
    if (strcmp(ext, ".jsonl") != 0 || ext - idx < 6 || ext - idx > 19 ||
        !digits(idx, (size_t)(ext - idx)))
        return 0;
    uint64_t v = 0;
    for (const char *q = idx; q < ext; q++)
        v = v * 10 + (uint64_t)(*q - '0');
    if (index != NULL)
        *index = v;
    if (day != NULL) {
        uint32_t d = 0;
        for (int i = 1; i <= 8; i++)
            d = d * 10 + (uint32_t)(p[i] - '0');
        *day = d;
    }
    return 1;
}

typedef struct {
    char *name;
    uint64_t index;
} file_ent_t;

static int ent_cmp(const void *a, const void *b)
{
    const file_ent_t *x = a, *y = b;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    return strcmp(x->name, y->name);
}

void bg_audit_files_free(char **names, size_t n)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int bg_audit_files_scan(int dirfd, const char *prefix, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    file_ent_t *ents = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    int err = 0;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t idx;
        if (!bg_audit_files_parse_name(prefix, de->d_name, &idx, NULL))
            continue;
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            file_ent_t *ne = realloc(ents, nc * sizeof *ne);
            if (ne == NULL) {
                err = ENOMEM;
                break;
            }
            ents = ne;
            cap = nc;
        }
        ents[count].name = strdup(de->d_name);
        if (ents[count].name == NULL) {
            err = ENOMEM;
            break;
        }
        ents[count].index = idx;
        count++;
    }
    if (err == 0 && errno != 0)
        err = errno;
    closedir(d);
    char **names = NULL;
    if (err == 0) {
        names = calloc(count + 1, sizeof *names);
        if (names == NULL)
            err = ENOMEM;
    }
    if (err != 0) {
        for (size_t i = 0; i < count; i++)
            free(ents[i].name);
        free(ents);
        errno = err;
        return -1;
    }
    if (count > 1)
        qsort(ents, count, sizeof *ents, ent_cmp);
    for (size_t i = 0; i < count; i++)
        names[i] = ents[i].name;
    free(ents);
    *out = names;
    *n = count;
    return 0;
}

int bg_audit_parse_time(const char *s, uint64_t *ms)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    const char *p = s + n;
    unsigned frac = 0;
    if (*p == '.') {
        p++;
        unsigned scale = 100;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                frac += (unsigned)(*p - '0') * scale;
            scale /= 10;
            nd++;
            p++;
        }
        if (nd == 0)
            return -1;
    }
    if (p[0] != 'Z' || p[1] != '\0')
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *ms = (uint64_t)t * 1000u + frac;
    return 0;
}
