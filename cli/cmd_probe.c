/*
 * bordergate probe URL: a health check for container HEALTHCHECK and
 * scripts, so that images need no curl. One plain-HTTP GET (the admin
 * listener speaks HTTP/1.1 without TLS); exit 0 when the status is 2xx,
 * 1 for any other status or a connection/timeout error (one line on
 * stderr), 2 for a usage error.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"

#define PROBE_DEFAULT_TIMEOUT_MS 3000

typedef struct {
    char host[256];
    char port[8];
    char path[1024];
} probe_url_t;

/* "http://HOST[:PORT][/PATH]" (HOST may be [v6]). 0, or -1 when malformed
 * or not http. */
static int parse_url(const char *url, probe_url_t *u)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    size_t alen = slash != NULL ? (size_t)(slash - h) : strlen(h);
    snprintf(u->path, sizeof u->path, "%s", slash != NULL ? slash : "/");
    const char *hend, *colon = NULL;
    if (alen > 0 && h[0] == '[') {
        const char *rb = memchr(h, ']', alen);
        if (rb == NULL)
            return -1;
        if ((size_t)(rb + 1 - h) < alen) {
            if (rb[1] != ':')
                return -1;
            colon = rb + 1;
        }
        h++;
        hend = rb;
    } else {
        colon = memchr(h, ':', alen);
        hend = colon != NULL ? colon : h + alen;
    }
    size_t hl = (size_t)(hend - h);
    if (hl == 0 || hl >= sizeof u->host)
        return -1;
    memcpy(u->host, h, hl);
    u->host[hl] = '\0';
    if (colon != NULL) {
        size_t pl = (size_t)(url + 7 + alen - colon - 1);
        if (pl == 0 || pl >= sizeof u->port)
            return -1;
        memcpy(u->port, colon + 1, pl);
        u->port[pl] = '\0';
        for (size_t i = 0; i < pl; i++)
            if (u->port[i] < '0' || u->port[i] > '9')
                return -1;
    } else {
        snprintf(u->port, sizeof u->port, "80");
    }
    return 0;
}

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms =
        (long)(deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? ms : 0;
}

/* Wait until FD is ready for EVENTS or the deadline passes. 0 / -1. */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
    struct pollfd p = {fd, events, 0};
    int r;
    do
        r = poll(&p, 1, (int)ms_left(deadline));
    while (r < 0 && errno == EINTR);
    if (r == 0)
        errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

/* Connect to one of U's addresses before DEADLINE. The socket, or -1. */
static int connect_any(const probe_url_t *u, const struct timespec *deadline, char *err,
                       size_t errcap)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errcap, "%s: %s", u->host, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if ((connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
             (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) != 0 ||
              getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0))) {
            snprintf(err, errcap, "connect %s:%s: %s", u->host, u->port,
                     strerror(soerr != 0 ? soerr : errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

int bg_cli_probe(int argc, char **argv)
{
    const char *url = NULL;
    long timeout_ms = PROBE_DEFAULT_TIMEOUT_MS;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: bordergate probe [--timeout MS] http://HOST:PORT/PATH\n"
                   "  exit 0 when the answer's status is 2xx, 1 otherwise (default timeout "
                   "%d ms)\n",
                   PROBE_DEFAULT_TIMEOUT_MS);
            return 0;
        }
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            char *end;
            timeout_ms = strtol(argv[++i], &end, 10);
            if (*end != '\0' || timeout_ms < 1 || timeout_ms > 600000) {
                fprintf(stderr, "bordergate probe: --timeout takes 1 to 600000 ms\n");
                return 2;
            }
        } else if (url == NULL && argv[i][0] != '-') {
            url = argv[i];
        } else {
            fprintf(stderr, "bordergate probe: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    probe_url_t u;
    if (url == NULL || parse_url(url, &u) != 0) {
        fprintf(stderr, "bordergate probe: give one http://HOST[:PORT]/PATH URL\n");
        return 2;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    char err[512];
    int fd = connect_any(&u, &deadline, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "bordergate probe: %s\n", err);
        return 1;
    }
    char req[1400];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: bordergate-probe\r\n"
                     "Connection: close\r\n\r\n",
                     u.path, u.host, u.port);
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, &deadline) == 0)
            continue;
        if (w <= 0) {
            fprintf(stderr, "bordergate probe: send: %s\n", strerror(errno));
            close(fd);
            return 1;
        }
        off += (size_t)w;
    }
    /* The status line is all we need: "HTTP/1.x NNN ". */
    char buf[64];
    size_t got = 0;
    while (got < 12) {
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r < 0 && errno == EAGAIN && wait_fd(fd, POLLIN, &deadline) == 0)
            continue;
        if (r <= 0) {
            fprintf(stderr, "bordergate probe: %s: %s\n", url,
                    r == 0 ? "connection closed before a status line" : strerror(errno));
            close(fd);
            return 1;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' ||
        buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9') {
        fprintf(stderr, "bordergate probe: %s: not an HTTP response\n", url);
        return 1;
    }
    int status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (status / 100 != 2) {
        fprintf(stderr, "bordergate probe: %s: status %d\n", url, status);
        return 1;
    }
    return 0;
}
