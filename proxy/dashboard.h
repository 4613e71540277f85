/*
 * The compliance dashboard on the admin listener (docs/operations.md
 * "Dashboard"):
 *
 *   GET /dashboard/            the page (static files from dashboard/, embedded
 *   GET /dashboard/NAME        into the binary at build time: no files to
 *                              install, nothing fetched from elsewhere)
 *   GET /api/info              versions, policy version, whether a token is needed
 *   GET /api/report?from=&to=&by=      = bordergate audit report --json
 *   GET /api/blocked?from=&to=&limit=  = bordergate audit blocked --json
 *   GET /api/dashboard?from=&to=&time=day|hour&limit=
 *                                      the page's documents in ONE pass over
 *                                      the log: {"reports": {"country", "day"
 *                                      (or "hour"), "category", "reason",
 *                                      "rule"}, "blocked"}, each = the CLI's
 *   GET /api/volumes?year=             = bordergate audit volumes --json
 *                                        (--counters FILE when the daemon keeps
 *                                        counters, else the audit directory)
 *
 * With store.redis, /api/dashboard, /api/report and /api/blocked are the
 * fleet's: every instance's published rollups read from Redis
 * (audit/rollup_fleet.h), "scope" in /api/dashboard saying so; when Redis
 * cannot be read (or the window is not whole hours) this instance's own.
 *
 * The /api/ endpoints reply with exactly the documents the CLI prints, made
 * by the same functions (audit/report.c, audit/counters.c). When admin.token
 * is configured they need "Authorization: Bearer TOKEN"; the static files
 * never do (they hold no data).
 *
 * Cost: each report call reads the audit files of the configured directory
 * line by line (report.c pre-filters lines before parsing; about 10,000
 * decision records a second on the 2-core test machine, see
 * bench/dashboard_bench.py) on the admin listener's thread (the control
 * thread: signals, reloads, admin), in slices of at most 2 ms driven by a
 * zero timer, the reply deferred (bg_serve_defer) until the last slice:
 * other admin requests and signals are served in between, proxy workers
 * and the audit writer run on their own threads, and a client that goes
 * away cancels its report.
 */
#ifndef BG_DASHBOARD_H
#define BG_DASHBOARD_H

#include <stddef.h>

#include "config/config.h"
#include "proxy/serve.h"

/* One embedded file (generated: BUILD/dashboard_assets.c from dashboard/). */
typedef struct {
    const char *name;
    const unsigned char *data;
    size_t len;
} bg_dashboard_asset_t;

extern const bg_dashboard_asset_t bg_dashboard_assets[];
extern const size_t bg_dashboard_nassets;

/* Non-zero when REQ carries the admin bearer token of CFG. */
typedef int (*bg_dashboard_auth_fn)(const bg_serve_req_t *req, const bg_config_t *cfg);

/*
 * Serve REQ when its path is /dashboard[/...] or /api/...: fills REPLY and
 * returns 1. Returns 0 (REPLY untouched) for any other path. Errors are an
 * HTTP status with a one-line JSON body {"error": "..."}: 400 for a bad
 * parameter, 401 without the token, 404, 405, 500 when the log cannot be
 * read.
 */
int bg_dashboard_handle(const bg_serve_req_t *req, bg_serve_reply_t *reply,
                        bg_dashboard_auth_fn authorized);

#endif
