/*
 * The daemon: a control thread (signals, reload, admin listener) and N
 * worker threads, each with its own event loop and SO_REUSEPORT listeners.
 */
#ifndef BG_SERVER_H
#define BG_SERVER_H

/* bg_server_run flags */
#define BG_SERVER_TAKEOVER                                                                         \
    1u /* hand-over: bind beside a running bordergate of the same policy                           \
          version (its run-state file in the audit directory), then stop it */

/*
 * Run until SIGTERM/SIGINT. Returns the process exit code: 1 when the
 * configuration is invalid or a listen address is in use (unless
 * BG_SERVER_TAKEOVER and the running process qualifies, see
 * docs/operations.md "Binary upgrade").
 */
int bg_server_run(const char *config_path, unsigned flags);

#endif
