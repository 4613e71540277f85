/*
 * The systemd service notification protocol (sd_notify(3)), written
 * directly: one datagram of "KEY=VALUE" lines to the AF_UNIX socket named
 * by $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). No
 * libsystemd: the protocol is a stable, documented interface and the
 * container image then needs no systemd library.
 *
 * Every function is a no-op returning 0 when NOTIFY_SOCKET is not set (not
 * started by systemd with Type=notify). Thread-safe (one sendmsg each).
 */
#ifndef BG_NOTIFY_H
#define BG_NOTIFY_H

#include <stdint.h>

/* Send STATE ("READY=1", "STOPPING=1", "RELOADING=1\nMONOTONIC_USEC=...").
 * 0 when sent or when there is no socket; -1 (errno set) on error. */
int bg_notify(const char *state);

/* RELOADING=1 with MONOTONIC_USEC (the CLOCK_MONOTONIC time, which
 * Type=notify-reload requires). 0/-1 as bg_notify. */
int bg_notify_reloading(void);

/* The watchdog interval systemd expects WATCHDOG=1 within ($WATCHDOG_USEC
 * when $WATCHDOG_PID is unset or this process), in microseconds; 0 when
 * no watchdog is enabled. */
uint64_t bg_notify_watchdog_usec(void);

#endif
