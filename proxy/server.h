/*
 * The daemon: a control thread (signals, reload, admin listener) and N
 * worker threads, each with its own event loop and SO_REUSEPORT listeners.
 */
#ifndef BG_SERVER_H
#define BG_SERVER_H

/* Run until SIGTERM/SIGINT. Returns the process exit code. */
int bg_server_run(const char *config_path);

#endif
