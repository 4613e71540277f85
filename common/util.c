#include "common/util.h"
#include "common/hex.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int bg_util_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

void bg_util_random_id(char *out)
{
    unsigned char raw[BG_ID_LEN / 2];
    if (bg_util_random_bytes(raw, sizeof raw) != 0) {
        /* getrandom cannot fail once the pool is initialised; fall back to
         * clock mixing rather than emit a constant id. */
        uint64_t t = bg_util_mono_us() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)(i * 131);
    }
    bg_hex_encode(raw, sizeof raw, out);
}

uint64_t bg_util_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t bg_util_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void bg_util_format_time(uint64_t wall_ms, char *out, size_t cap)
{
    /* Every record carries a time: the calendar part is worked out once a
     * second per thread, the milliseconds are three digits. */
    static _Thread_local uint64_t cached_sec = UINT64_MAX;
    static _Thread_local char base[24];
    uint64_t sec = wall_ms / 1000;
    if (sec != cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = sec;
    }
    char tail[6];
    unsigned ms = (unsigned)(wall_ms % 1000);
    tail[0] = '.';
    tail[1] = (char)('0' + ms / 100);
    tail[2] = (char)('0' + ms / 10 % 10);
    tail[3] = (char)('0' + ms % 10);
    tail[4] = 'Z';
    tail[5] = '\0';
    size_t bl = strlen(base);
    if (cap == 0)
        return;
    size_t n = bl < cap - 1 ? bl : cap - 1;
    memcpy(out, base, n);
    for (size_t i = 0; n < cap - 1 && i < 5; i++)
        out[n++] = tail[i];
    out[n] = '\0';
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

int bg_util_ieq(const char *s, size_t n, const char *z)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)z[i];
        if (b == '\0' || (a != b && lower(a) != lower(b)))
            return 0;
    }
    return z[i] == '\0';
}

int bg_util_iprefix(const char *s, size_t n, const char *prefix)
{
    size_t i;
    for (i = 0; prefix[i] != '\0'; i++) {
        if (i >= n || lower((unsigned char)s[i]) != lower((unsigned char)prefix[i]))
            return 0;
    }
    return 1;
}

int bg_util_parse_sockaddr(const char *s, struct sockaddr_storage *out, socklen_t *len, char *err,
                           size_t errcap)
{
    char host[128];
    const char *port;
    memset(out, 0, sizeof *out);

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host) {
            snprintf(err, errcap, "'%s' is not [ipv6]:port", s);
            return -1;
        }
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL) {
            snprintf(host, sizeof host, "127.0.0.1");
            port = s;
        } else {
            if ((size_t)(colon - s) >= sizeof host) {
                snprintf(err, errcap, "host in '%s' is too long", s);
                return -1;
            }
            memcpy(host, s, (size_t)(colon - s));
            host[colon - s] = '\0';
            port = colon + 1;
        }
    }
    char *endp;
    errno = 0;
    long p = strtol(port, &endp, 10);
    if (*port == '\0' || *endp != '\0' || errno != 0 || p < 0 || p > 65535) {
        snprintf(err, errcap, "'%s' has no valid port (0-65535)", s);
        return -1;
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        *len = sizeof *v6;
        return 0;
    }
    snprintf(err, errcap, "'%s' is not a numeric IPv4/IPv6 address", host);
    return -1;
}

/* Dotted quad of the four bytes at A into OUT (at least 16 bytes): what
 * inet_ntop writes, without the sprintf it calls (once per request). */
static void ipv4_string(const unsigned char *a, char *out)
{
    char *o = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (i > 0)
            *o++ = '.';
        if (v >= 100)
            *o++ = (char)('0' + v / 100);
        if (v >= 10)
            *o++ = (char)('0' + v / 10 % 10);
        *o++ = (char)('0' + v % 10);
    }
    *o = '\0';
}

void bg_util_addr_string(const struct sockaddr *sa, char *out, size_t cap)
{
    if (sa->sa_family == AF_INET && cap >= 16)
        ipv4_string((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr, out);
    else if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
    else
        snprintf(out, cap, "?");
}

size_t bg_util_concat(char *out, size_t cap, const char *const *parts)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    for (; *parts != NULL; parts++) {
        size_t l = strlen(*parts);
        if (l > cap - 1 - n)
            l = cap - 1 - n;
        memcpy(out + n, *parts, l);
        n += l;
    }
    out[n] = '\0';
    return n;
}

int bg_util_addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

/* Free BUF after wiping its first N bytes (key files pass through here). */
static void wipe_free(char *buf, size_t n)
{
    bg_util_wipe(buf, n);
    free(buf);
}

char *bg_util_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = EISDIR;
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    for (;;) {
        char more;
        ssize_t r;
        if (n + 1 >= cap) {
            /* Full at the size fstat gave: normally the end. Grow only when
             * there is more, by copy and wipe rather than realloc, so that no
             * copy of a key file's bytes is left behind in freed memory. */
            r = read(fd, &more, 1);
            if (r == 1) {
                char *nb = cap <= SIZE_MAX / 2 ? malloc(cap * 2) : NULL;
                if (nb == NULL) {
                    wipe_free(buf, n);
                    close(fd);
                    errno = ENOMEM;
                    return NULL;
                }
                memcpy(nb, buf, n);
                wipe_free(buf, n);
                buf = nb;
                cap *= 2;
                buf[n++] = more;
                continue;
            }
        } else {
            r = read(fd, buf + n, cap - n - 1);
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            wipe_free(buf, n);
            close(fd);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

char *bg_util_read_stream(FILE *fp, size_t max, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    for (;;) {
        errno = 0;
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (max > 0 && n > max) {
            free(buf);
            errno = EFBIG;
            return NULL;
        }
        if (r == 0) {
            if (ferror(fp)) {
                int e = errno != 0 ? errno : EIO;
                free(buf);
                errno = e;
                return NULL;
            }
            break;
        }
        if (n == cap) {
            char *nb = cap <= (SIZE_MAX - 1) / 2 ? realloc(buf, cap * 2 + 1) : NULL;
            if (nb == NULL) {
                free(buf);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

void bg_util_wipe(void *p, size_t n)
{
    if (p != NULL)
        explicit_bzero(p, n);
}
