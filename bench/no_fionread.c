/*
 * no_fionread.so: an LD_PRELOAD experiment, not a fix. Answers
 * ioctl(fd, FIONREAD) with EINVAL without entering the kernel, so
 * libevent's evbuffer_read (which asks FIONREAD before every read) falls
 * back to reading up to its max_read (4096 bytes) in one readv. Measures
 * what dropping the two ioctl calls per request would save before anyone
 * rewrites the session's reads around bufferevents:
 *   printf '#!/bin/sh\nLD_PRELOAD=/tmp/no_fionread.so exec BIN "$@"\n' > B
 *   bench/ab.sh BIN B
 * Every other ioctl goes to the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (req == FIONREAD) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_ioctl, fd, req, arg);
}
