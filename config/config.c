#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/keys.h"
#include "common/util.h"
#include "config/cfgerr.h"
#include "config/cfgutil.h"
#include "config/config_parse.h"
#include "config/jsonpos.h"
#include "store/redis.h"

static void parse_listen_addr(bg_cfg_ctx_t *ctx, const char *text, const char *path,
                              bg_listen_addr_t *out)
{
    char err[256];
    snprintf(out->text, sizeof out->text, "%s", text);
    if (bg_util_parse_sockaddr(text, &out->addr, &out->len, err, sizeof err) != 0)
        bg_cfg_err(ctx, path, 0, "%s", err);
}

static void str_lower(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Parse "http[s]://host[:port][/path]" into the route. */
static void parse_upstream(bg_cfg_ctx_t *ctx, bg_route_t *r, const char *url, const char *path)
{
    const char *p;
    if (strncmp(url, "https://", 8) == 0) {
        r->upstream_tls = 1;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        bg_cfg_err(ctx, path, 0, "upstream must start with http:// or https://");
        return;
    }
    const char *host_end;
    const char *port_start = NULL;
    const char *host_start = p;
    if (*p == '[') {
        host_start = p + 1;
        host_end = strchr(p, ']');
        if (host_end == NULL) {
            bg_cfg_err(ctx, path, 0, "unterminated IPv6 address in upstream");
            return;
        }
        p = host_end + 1;
    } else {
        while (*p != '\0' && *p != ':' && *p != '/' && *p != '?' && *p != '#')
            p++;
        host_end = p;
    }
    if (host_end == host_start) {
        bg_cfg_err(ctx, path, 0, "upstream has no host");
        return;
    }
    if (*p == ':')
        port_start = ++p;
    while (*p != '\0' && *p != '/' && *p != '?' && *p != '#')
        p++;
    if (*p == '?' || *p == '#') {
        bg_cfg_err(ctx, path, 0, "upstream must not carry a query or fragment");
        return;
    }
    r->upstream_host = bg_cfg_ndup(host_start, (size_t)(host_end - host_start));
    if (r->upstream_host == NULL)
        return; /* counted: the load fails */
    str_lower(r->upstream_host);
    for (const char *h = r->upstream_host; *h != '\0'; h++) {
        if (!(isalnum((unsigned char)*h) || *h == '-' || *h == '.' || *h == ':' || *h == '_')) {
            bg_cfg_err(ctx, path, 0, "upstream host has an invalid character");
            return;
        }
    }
    r->upstream_port = r->upstream_tls ? 443 : 80;
    if (port_start != NULL) {
        char *end;
        long port = strtol(port_start, &end, 10);
        if (end == port_start || (*end != '\0' && *end != '/') || port < 1 || port > 65535) {
            bg_cfg_err(ctx, path, 0, "upstream port must be 1-65535");
            return;
        }
        r->upstream_port = (int)port;
    }
    if (*p == '/' && p[1] != '\0')
        r->upstream_path = bg_cfg_dup(p);
    int dflt = r->upstream_port == (r->upstream_tls ? 443 : 80);
    int v6 = strchr(r->upstream_host, ':') != NULL;
    char hh[300];
    snprintf(hh, sizeof hh, "%s%s%s%s%.0d", v6 ? "[" : "", r->upstream_host, v6 ? "]" : "",
             dflt ? "" : ":", dflt ? 0 : r->upstream_port);
    if (!dflt)
        snprintf(hh, sizeof hh, "%s%s%s:%d", v6 ? "[" : "", r->upstream_host, v6 ? "]" : "",
                 r->upstream_port);
    r->host_header = bg_cfg_dup(hh);
}

static void parse_routes(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *routes)
{
    static const char *const route_keys[] = {"id",
                                             "match",
                                             "upstream",
                                             "recipient",
                                             "allow_private_addresses",
                                             "description",
                                             "purpose",
                                             "mode",
                                             "bases",
                                             "subjects",
                                             "inspect",
                                             "opaque_bodies",
                                             "field_rules",
                                             "max_upstream_concurrency",
                                             NULL};
    static const char *const match_keys[] = {"host", "path_prefix", NULL};
    size_t i;
    json_t *rv;

    if (!json_is_array(routes)) {
        bg_cfg_err(ctx, "$.routes", 0, "must be a list of routes");
        return;
    }
    cfg->routes = bg_cfg_alloc(json_array_size(routes) + 1, sizeof *cfg->routes);
    cfg->route_inflight = bg_cfg_alloc(json_array_size(routes) + 1, sizeof *cfg->route_inflight);
    if (cfg->routes == NULL || cfg->route_inflight == NULL) {
        bg_cfg_err(ctx, "$.routes", 0, "out of memory");
        return;
    }
    json_array_foreach(routes, i, rv)
    {
        char p[512], pp[512];
        bg_route_t *r = &cfg->routes[cfg->nroutes++];
        bg_cfg_path_index(p, sizeof p, "$.routes", i);
        if (!json_is_object(rv)) {
            bg_cfg_err(ctx, p, 0, "a route must be an object");
            continue;
        }
        bg_cfg_check_keys(ctx, rv, p, route_keys);
        const char *id = bg_cfg_get_string(ctx, rv, p, "id");
        if (id == NULL || *id == '\0') {
            bg_cfg_err(ctx, p, 0, "route needs an \"id\"");
        } else {
            r->id = bg_cfg_dup(id);
            for (int j = 0; j < cfg->nroutes - 1; j++) {
                if (cfg->routes[j].id != NULL && strcmp(cfg->routes[j].id, id) == 0) {
                    bg_cfg_path_key(pp, sizeof pp, p, "id");
                    bg_cfg_err(ctx, pp, 0, "duplicate route id \"%s\"", id);
                }
            }
        }
        json_t *m = bg_cfg_get_typed(ctx, rv, p, "match", JSON_OBJECT, "an object");
        bg_cfg_path_key(pp, sizeof pp, p, "match");
        if (m == NULL) {
            if (json_object_get(rv, "match") == NULL)
                bg_cfg_err(ctx, p, 0, "route needs \"match\" (host and/or path_prefix)");
        } else {
            bg_cfg_check_keys(ctx, m, pp, match_keys);
            const char *host = bg_cfg_get_string(ctx, m, pp, "host");
            const char *prefix = bg_cfg_get_string(ctx, m, pp, "path_prefix");
            if (host == NULL && prefix == NULL)
                bg_cfg_err(ctx, pp, 0, "match needs \"host\" or \"path_prefix\"");
            if (host != NULL) {
                r->match_host = bg_cfg_dup(host);
                char *colon = r->match_host != NULL ? strrchr(r->match_host, ':') : NULL;
                if (r->match_host != NULL)
                    str_lower(r->match_host);
                if (colon != NULL && strchr(r->match_host, ']') == NULL &&
                    colon == strchr(r->match_host, ':'))
                    *colon = '\0'; /* Host is matched without its port */
            }
            if (prefix != NULL && prefix[0] != '/') {
                char kp[512];
                bg_cfg_path_key(kp, sizeof kp, pp, "path_prefix");
                bg_cfg_err(ctx, kp, 0, "path_prefix must start with '/'");
            }
            r->path_prefix = bg_cfg_dup(prefix != NULL ? prefix : "/");
        }
        const char *up = bg_cfg_get_string(ctx, rv, p, "upstream");
        bg_cfg_path_key(pp, sizeof pp, p, "upstream");
        if (up == NULL) {
            if (json_object_get(rv, "upstream") == NULL)
                bg_cfg_err(ctx, p, 0, "route needs an \"upstream\" URL");
        } else {
            r->upstream_url = bg_cfg_dup(up);
            parse_upstream(ctx, r, up, pp);
        }
        r->recipient = bg_cfg_dup(bg_cfg_get_string(ctx, rv, p, "recipient"));
        bg_cfg_get_string(ctx, rv, p, "description");
        r->allow_private = bg_cfg_get_bool(ctx, rv, p, "allow_private_addresses", 0);
        r->max_upstream_concurrency =
            (int)bg_cfg_get_int(ctx, rv, p, "max_upstream_concurrency", -1, 0, 1000000);
    }
}

static void parse_resolve(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *res)
{
    const char *host;
    json_t *v;
    if (!json_is_object(res)) {
        bg_cfg_err(ctx, "$.resolve", 0, "must be an object mapping host names to addresses");
        return;
    }
    cfg->resolve = bg_cfg_alloc(json_object_size(res) + 1, sizeof *cfg->resolve);
    if (cfg->resolve == NULL)
        return; /* counted: the load fails */
    json_object_foreach(res, host, v)
    {
        char p[512];
        bg_resolve_entry_t *e = &cfg->resolve[cfg->nresolve++];
        bg_cfg_path_key(p, sizeof p, "$.resolve", host);
        if ((e->host = bg_cfg_dup(host)) == NULL)
            continue; /* counted: the load fails */
        str_lower(e->host);
        json_t *list = v;
        json_t *tmp = NULL;
        if (json_is_string(v)) {
            tmp = json_array();
            if (tmp == NULL || json_array_append(tmp, v) != 0)
                bg_cfg_oom(); /* the load fails */
            list = tmp;
        }
        if (!json_is_array(list) || json_array_size(list) == 0) {
            bg_cfg_err(ctx, p, 0, "must be an address or a list of addresses");
        } else {
            size_t i;
            json_t *a;
            json_array_foreach(list, i, a)
            {
                char ap[512];
                bg_cfg_path_index(ap, sizeof ap, p, i);
                if (tmp != NULL)
                    snprintf(ap, sizeof ap, "%s", p);
                if (e->naddrs >= BG_MAX_RESOLVE_ADDRS) {
                    bg_cfg_err(ctx, ap, 0, "at most %d addresses per host", BG_MAX_RESOLVE_ADDRS);
                    break;
                }
                const char *s = json_string_value(a);
                struct sockaddr_storage *ss = &e->addrs[e->naddrs];
                memset(ss, 0, sizeof *ss);
                if (s != NULL &&
                    inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
                    ss->ss_family = AF_INET;
                    e->naddrs++;
                } else if (s != NULL &&
                           inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
                    ss->ss_family = AF_INET6;
                    e->naddrs++;
                } else {
                    bg_cfg_err(ctx, ap, 0, "must be a numeric IPv4 or IPv6 address");
                }
            }
        }
        if (tmp != NULL)
            json_decref(tmp);
    }
}

/* BINDIR/../share/bordergate/bordergate-country.mmdb, BINDIR being where the
 * running executable is: the database installed beside the binary, so that an
 * installed tree works from any prefix (a staging directory, DESTDIR, a
 * container's /usr), not only from the one it was configured for. Computed
 * once; empty when /proc is not mounted or the file does not exist. */
static char g_beside_exe_db[PATH_MAX];
static pthread_once_t g_beside_exe_once = PTHREAD_ONCE_INIT;

static void find_beside_exe_db(void)
{
    char exe[PATH_MAX], cand[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash;

    if (n <= 0)
        return;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    snprintf(cand, sizeof cand, "%s/../share/bordergate/bordergate-country.mmdb", exe);
    if (realpath(cand, g_beside_exe_db) == NULL)
        g_beside_exe_db[0] = '\0';
}

const char *bg_config_default_geo_db(void)
{
    pthread_once(&g_beside_exe_once, find_beside_exe_db);
    if (g_beside_exe_db[0] != '\0' && access(g_beside_exe_db, R_OK) == 0)
        return g_beside_exe_db;
    if (access(BG_GEO_DB_INSTALLED, R_OK) == 0)
        return BG_GEO_DB_INSTALLED;
    if (access(BG_GEO_DB_BUILD, R_OK) == 0)
        return BG_GEO_DB_BUILD;
    return NULL;
}

/* "geo": database, freshness and the compliance team's overrides. The
 * database is opened here so that `check` reports a missing or corrupt one. */
static void parse_geo(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *geo)
{
    static const char *const geo_keys[] = {"database", "max_age_days", "overrides", NULL};
    static const char *const ov_keys[] = {"hosts", "cidrs", NULL};
    char err[512];
    const char *db = NULL;

    cfg->geo_overrides = bg_geo_overrides_new();
    cfg->geo_max_age_days = 180;
    if (geo != NULL && !json_is_object(geo)) {
        bg_cfg_err(ctx, "$.geo", 0, "must be an object");
        geo = NULL;
    }
    if (geo != NULL) {
        bg_cfg_check_keys(ctx, geo, "$.geo", geo_keys);
        db = bg_cfg_get_string(ctx, geo, "$.geo", "database");
        cfg->geo_max_age_days =
            (int)bg_cfg_get_int(ctx, geo, "$.geo", "max_age_days", 180, 1, 36500);
        json_t *ov = bg_cfg_get_typed(ctx, geo, "$.geo", "overrides", JSON_OBJECT, "an object");
        if (ov != NULL) {
            bg_cfg_check_keys(ctx, ov, "$.geo.overrides", ov_keys);
            for (int kind = 0; kind < 2; kind++) {
                const char *name = kind == 0 ? "hosts" : "cidrs";
                json_t *m = bg_cfg_get_typed(ctx, ov, "$.geo.overrides", name, JSON_OBJECT,
                                             "an object mapping to two-letter country codes");
                const char *k;
                json_t *v;
                if (m == NULL)
                    continue;
                json_object_foreach(m, k, v)
                {
                    char p[512], base[64];
                    snprintf(base, sizeof base, "$.geo.overrides.%s", name);
                    bg_cfg_path_key(p, sizeof p, base, k);
                    if (!json_is_string(v)) {
                        bg_cfg_err(ctx, p, 0,
                                   "must be a two-letter country code such as \"CN\" or \"US\"");
                        continue;
                    }
                    int rc = kind == 0
                                 ? bg_geo_overrides_add_host(cfg->geo_overrides, k,
                                                             json_string_value(v), err, sizeof err)
                                 : bg_geo_overrides_add_cidr(cfg->geo_overrides, k,
                                                             json_string_value(v), err, sizeof err);
                    if (rc != 0)
                        bg_cfg_err(ctx, p, 0, "%s", err);
                }
            }
        }
    }
    if (db == NULL) {
        db = bg_config_default_geo_db();
        if (db == NULL) {
            bg_cfg_err(ctx, "$", 0,
                       "no country database: set geo.database, or build the embedded one "
                       "(apt-get install tor-geoipdb libmaxmind-db-writer-perl, then rebuild)");
            return;
        }
    }
    cfg->geo_db_path = bg_cfg_dup(db);
    cfg->geo_db = bg_geo_db_open(db, err, sizeof err);
    if (cfg->geo_db == NULL)
        bg_cfg_err(ctx,
                   json_object_get(geo ? geo : json_null(), "database") ? "$.geo.database" : "$", 0,
                   "%s", err);
}

/* "audit": where and how decision records are kept. The default directory
 * is "NAME-audit" beside NAME.json, so every deployment records. */
static void parse_audit(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    static const char *const keys[] = {"enabled",
                                       "directory",
                                       "prefix",
                                       "rotate_bytes",
                                       "rotate_daily",
                                       "retention_days",
                                       "durability",
                                       "relaxed_interval_ms",
                                       "thresholds",
                                       "wait",
                                       "checkpoint_every",
                                       "counters_file",
                                       NULL};
    json_t *a = bg_cfg_get_typed(ctx, root, "$", "audit", JSON_OBJECT, "an object");
    json_t *empty = json_object();
    if (empty == NULL)
        bg_cfg_oom(); /* the sections then read as absent; the load fails */
    if (a == NULL)
        a = empty;
    bg_cfg_check_keys(ctx, a, "$.audit", keys);
    cfg->audit_enabled = bg_cfg_get_bool(ctx, a, "$.audit", "enabled", 1);
    if (!cfg->audit_enabled)
        bg_cfg_warn(ctx, "$.audit.enabled",
                    "the audit log is DISABLED: no decision is recorded (for benchmarks only, "
                    "never in production)");
    const char *dir = bg_cfg_get_string(ctx, a, "$.audit", "directory");
    if (dir != NULL) {
        cfg->audit_dir = bg_cfg_dup(dir);
    } else {
        /* "NAME-audit" beside NAME.json: one log per configuration, so two
         * daemons never share (and fight over) a directory. */
        const char *base = strrchr(cfg->path, '/');
        base = base != NULL ? base + 1 : cfg->path;
        size_t stem = strlen(base);
        if (stem > 5 && strcmp(base + stem - 5, ".json") == 0)
            stem -= 5;
        size_t dl = (size_t)(base - cfg->path);
        static const char suffix[] = "-audit";
        cfg->audit_dir = bg_cfg_alloc(1, dl + stem + sizeof suffix);
        if (cfg->audit_dir != NULL) {
            memcpy(cfg->audit_dir, cfg->path, dl);
            memcpy(cfg->audit_dir + dl, base, stem);
            memcpy(cfg->audit_dir + dl + stem, suffix, sizeof suffix); /* with its NUL */
        }
    }
    cfg->audit_prefix = bg_cfg_dup(bg_cfg_get_string(ctx, a, "$.audit", "prefix"));
    cfg->audit_rotate_bytes =
        bg_cfg_get_int(ctx, a, "$.audit", "rotate_bytes", 256LL << 20, 0, 1LL << 40);
    cfg->audit_rotate_daily = bg_cfg_get_bool(ctx, a, "$.audit", "rotate_daily", 1);
    cfg->audit_retention_days =
        (int)bg_cfg_get_int(ctx, a, "$.audit", "retention_days", 1095, 0, 36500);
    if (cfg->audit_retention_days > 0 && cfg->audit_retention_days < 183)
        bg_cfg_err(
            ctx, "$.audit.retention_days", 0,
            "must be at least 183 days: the Cybersecurity Law requires network logs for six months "
            "(the default 1095 also covers the E-commerce Law's and PIPL Art. 56's three years)");
    const char *dur = bg_cfg_get_string(ctx, a, "$.audit", "durability");
    if (dur != NULL && strcmp(dur, "strict") != 0 && strcmp(dur, "relaxed") != 0)
        bg_cfg_err(ctx, "$.audit.durability", 0,
                   "must be \"strict\" (fsync before forwarding) or \"relaxed\"");
    cfg->audit_relaxed = dur != NULL && strcmp(dur, "relaxed") == 0;
    const char *wait = bg_cfg_get_string(ctx, a, "$.audit", "wait");
    if (wait != NULL && strcmp(wait, "transfers") != 0 && strcmp(wait, "all") != 0)
        bg_cfg_err(ctx, "$.audit.wait", 0,
                   "must be \"transfers\" (transfers of PI abroad and blocks wait for their "
                   "record) or \"all\"");
    cfg->audit_wait_all = wait != NULL && strcmp(wait, "all") == 0;
    cfg->audit_relaxed_interval_ms =
        (int)bg_cfg_get_int(ctx, a, "$.audit", "relaxed_interval_ms", 200, 1, 60000);
    cfg->audit_checkpoint_every =
        (int)bg_cfg_get_int(ctx, a, "$.audit", "checkpoint_every", 1000, 1, 10000000);
    json_t *th = bg_cfg_get_typed(ctx, a, "$.audit", "thresholds", JSON_OBJECT, "an object");
    if (th != NULL) {
        static const char *const tk[] = {"contract_non_sensitive", "assessment_non_sensitive",
                                         "assessment_sensitive", NULL};
        bg_cfg_check_keys(ctx, th, "$.audit.thresholds", tk);
        cfg->thr_contract_non_sensitive = bg_cfg_get_int(ctx, th, "$.audit.thresholds",
                                                         "contract_non_sensitive", 0, 1, 1LL << 40);
        cfg->thr_assessment_non_sensitive = bg_cfg_get_int(
            ctx, th, "$.audit.thresholds", "assessment_non_sensitive", 0, 1, 1LL << 40);
        cfg->thr_assessment_sensitive =
            bg_cfg_get_int(ctx, th, "$.audit.thresholds", "assessment_sensitive", 0, 1, 1LL << 40);
    }
    const char *cf = bg_cfg_get_string(ctx, a, "$.audit", "counters_file");
    if (cf != NULL) {
        cfg->audit_counters_file = bg_cfg_dup(cf);
    } else if (cfg->audit_dir != NULL) {
        size_t dl = strlen(cfg->audit_dir);
        cfg->audit_counters_file = bg_cfg_alloc(1, dl + sizeof "/counters.jsonl");
        if (cfg->audit_counters_file != NULL)
            snprintf(cfg->audit_counters_file, dl + sizeof "/counters.jsonl", "%s/counters.jsonl",
                     cfg->audit_dir);
    }
    json_t *keys_obj = json_object_get(root, "keys");
    json_t *ak = json_is_object(keys_obj) ? json_object_get(keys_obj, "audit") : NULL;
    if (json_is_object(ak)) {
        cfg->audit_key_file = bg_cfg_dup(json_string_value(json_object_get(ak, "file")));
        cfg->audit_key_env = bg_cfg_dup(json_string_value(json_object_get(ak, "env")));
    }
    json_decref(empty);
}

/*
 * store: {"redis": {"url": "redis://host:port/db", "password": {"env"|"file"},
 * "timeout_ms": N, "tls": ...}}. The shared store for consent and fleet
 * counters (store/redis.h); absent: everything stays on local files.
 */
static void parse_store(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    static const char *const store_keys[] = {"redis", NULL};
    static const char *const redis_keys[] = {"url", "password", "timeout_ms", "tls", NULL};
    json_t *store = bg_cfg_get_typed(ctx, root, "$", "store", JSON_OBJECT, "an object");
    if (store == NULL)
        return;
    bg_cfg_check_keys(ctx, store, "$.store", store_keys);
    json_t *rd = bg_cfg_get_typed(ctx, store, "$.store", "redis", JSON_OBJECT, "an object");
    if (rd == NULL)
        return;
    bg_cfg_check_keys(ctx, rd, "$.store.redis", redis_keys);
    const char *url = bg_cfg_get_string(ctx, rd, "$.store.redis", "url");
    if (url == NULL) {
        if (json_object_get(rd, "url") == NULL)
            bg_cfg_err(ctx, "$.store.redis", 0, "needs \"url\": \"redis://host:port/db\"");
        return;
    }
    bg_redis_cfg_t *rc = bg_cfg_alloc(1, sizeof *rc);
    char err[256];
    if (rc == NULL) {
        bg_cfg_err(ctx, "$.store.redis", 0, "out of memory");
        return;
    }
    if (bg_redis_parse_url(url, rc, err, sizeof err) != 0) {
        bg_cfg_err(ctx, "$.store.redis.url", 0, "%s", err);
        free(rc);
        return;
    }
    rc->timeout_ms = (int)bg_cfg_get_int(ctx, rd, "$.store.redis", "timeout_ms", 500, 10, 60000);
    if (json_object_get(rd, "tls") != NULL)
        bg_cfg_err(ctx, "$.store.redis.tls", 1,
                   "TLS to Redis needs hiredis >= 1.0 (this build has hiredis %d.%d): reach "
                   "Redis over a private network or a local TLS tunnel (stunnel) instead",
                   HIREDIS_MAJOR, HIREDIS_MINOR);
    json_t *pw = bg_cfg_get_typed(ctx, rd, "$.store.redis", "password", JSON_OBJECT,
                                  "{\"file\": PATH} or {\"env\": VARIABLE}");
    if (pw != NULL) {
        const char *pf = json_string_value(json_object_get(pw, "file"));
        const char *pe = json_string_value(json_object_get(pw, "env"));
        char *text = NULL;
        if (pf != NULL) {
            text = bg_util_read_file(pf, NULL);
            if (text == NULL)
                bg_cfg_err(ctx, "$.store.redis.password.file", 0, "cannot read %s: %s", pf,
                           strerror(errno));
        } else if (pe != NULL && getenv(pe) != NULL) {
            text = bg_cfg_dup(getenv(pe));
        } else {
            bg_cfg_err(ctx, "$.store.redis.password", 0, "give \"file\" or a set \"env\" variable");
        }
        if (text != NULL) {
            size_t n = strlen(text);
            while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
                text[--n] = '\0';
            rc->password = text;
        }
    }
    cfg->store_redis = rc;
}

/* $.listen: one "address:port" or a list of them (default 127.0.0.1:8080). */
static void parse_listen(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    json_t *v;
    v = json_object_get(root, "listen");
    if (v == NULL) {
        cfg->nlisten = 1;
        parse_listen_addr(ctx, "127.0.0.1:8080", "$", &cfg->listen[0]);
    } else if (json_is_string(v)) {
        cfg->nlisten = 1;
        parse_listen_addr(ctx, json_string_value(v), "$.listen", &cfg->listen[0]);
    } else if (json_is_array(v) && json_array_size(v) > 0 && json_array_size(v) <= BG_MAX_LISTEN) {
        size_t i;
        json_t *a;
        json_array_foreach(v, i, a)
        {
            char p[512];
            bg_cfg_path_index(p, sizeof p, "$.listen", i);
            if (!json_is_string(a)) {
                bg_cfg_err(ctx, p, 0, "must be \"address:port\"");
                continue;
            }
            parse_listen_addr(ctx, json_string_value(a), p, &cfg->listen[cfg->nlisten++]);
        }
    } else {
        bg_cfg_err(ctx, "$.listen", 0, "must be \"address:port\" or a list of 1-%d of them",
                   BG_MAX_LISTEN);
    }
}

/* $.admin: the admin listener and its bearer token (from a file or the
 * environment, at least 16 characters). */
static void parse_admin(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    static const char *const admin_keys[] = {"listen", "token", NULL};
    json_t *admin = bg_cfg_get_typed(ctx, root, "$", "admin", JSON_OBJECT, "an object");
    if (admin != NULL) {
        bg_cfg_check_keys(ctx, admin, "$.admin", admin_keys);
        const char *a = bg_cfg_get_string(ctx, admin, "$.admin", "listen");
        if (a != NULL) {
            cfg->has_admin = 1;
            parse_listen_addr(ctx, a, "$.admin.listen", &cfg->admin);
        }
        json_t *tok = bg_cfg_get_typed(ctx, admin, "$.admin", "token", JSON_OBJECT,
                                       "{\"file\": PATH} or {\"env\": VARIABLE}");
        if (tok != NULL) {
            const char *tf = json_string_value(json_object_get(tok, "file"));
            const char *te = json_string_value(json_object_get(tok, "env"));
            char *text = NULL;
            char resolved[4096];
            if (tf != NULL) {
                const char *rp = bg_key_file_path(tf, resolved, sizeof resolved);
                text = rp != NULL ? bg_util_read_file(rp, NULL) : NULL;
                if (text == NULL)
                    bg_cfg_err(ctx, "$.admin.token.file", 0, "cannot read %s: %s", tf,
                               strerror(errno));
            } else if (te != NULL && getenv(te) != NULL) {
                text = bg_cfg_dup(getenv(te));
            } else {
                bg_cfg_err(ctx, "$.admin.token", 0, "give \"file\" or a set \"env\" variable");
            }
            if (text != NULL) {
                size_t n = strlen(text);
                while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
                    text[--n] = '\0';
                if (n < 16)
                    bg_cfg_err(ctx, "$.admin.token", 0,
                               "the admin token must be at least 16 characters");
                cfg->admin_token = text;
            }
        }
    }
}

/* $.workers: 1-64, or "auto" (one per online core). */
static void parse_workers(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    json_t *wk = json_object_get(root, "workers");
    if (json_is_string(wk) && strcmp(json_string_value(wk), "auto") == 0) {
        /* One worker per online core (each its own event loop and listener). */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n < 1 ? 1 : n > 64 ? 64 : (int)n;
    } else if (json_is_string(wk)) {
        bg_cfg_err(ctx, "$.workers", 0,
                   "must be an integer from 1 to 64, or \"auto\" (one per core)");
        cfg->workers = 1;
    } else {
        cfg->workers = (int)bg_cfg_get_int(ctx, root, "$", "workers", 1, 1, 64);
    }
}

/* $.limits and $.timeouts, each with its defaults when absent. */
static void parse_limits(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    static const char *const limit_keys[] = {"max_header_bytes", "max_body_bytes",
                                             "max_connections", "max_idle_upstream", NULL};
    static const char *const timeout_keys[] = {
        "header_ms", "body_ms",          "connect_ms", "response_ms",    "idle_ms",
        "send_ms",   "upstream_idle_ms", "drain_ms",   "drain_delay_ms", NULL};
    json_t *lim = bg_cfg_get_typed(ctx, root, "$", "limits", JSON_OBJECT, "an object");
    json_t *empty = json_object();
    if (empty == NULL)
        bg_cfg_oom(); /* the sections then read as absent; the load fails */
    if (lim == NULL)
        lim = empty;
    bg_cfg_check_keys(ctx, lim, "$.limits", limit_keys);
    cfg->max_header_bytes =
        (size_t)bg_cfg_get_int(ctx, lim, "$.limits", "max_header_bytes", 16384, 1024, 1 << 20);
    cfg->max_body_bytes =
        (size_t)bg_cfg_get_int(ctx, lim, "$.limits", "max_body_bytes", 10 << 20, 0, 1LL << 32);
    cfg->max_connections =
        (int)bg_cfg_get_int(ctx, lim, "$.limits", "max_connections", 10000, 1, 1000000);
    cfg->max_idle_upstream =
        (int)bg_cfg_get_int(ctx, lim, "$.limits", "max_idle_upstream", 64, 0, 10000);

    json_t *to = bg_cfg_get_typed(ctx, root, "$", "timeouts", JSON_OBJECT, "an object");
    if (to == NULL)
        to = empty;
    bg_cfg_check_keys(ctx, to, "$.timeouts", timeout_keys);
    const long long day = 86400000;
    cfg->header_timeout_ms = (int)bg_cfg_get_int(ctx, to, "$.timeouts", "header_ms", 10000, 1, day);
    cfg->body_timeout_ms = (int)bg_cfg_get_int(ctx, to, "$.timeouts", "body_ms", 30000, 1, day);
    cfg->connect_timeout_ms =
        (int)bg_cfg_get_int(ctx, to, "$.timeouts", "connect_ms", 5000, 1, day);
    cfg->response_timeout_ms =
        (int)bg_cfg_get_int(ctx, to, "$.timeouts", "response_ms", 60000, 1, day);
    cfg->idle_timeout_ms = (int)bg_cfg_get_int(ctx, to, "$.timeouts", "idle_ms", 60000, 1, day);
    cfg->send_timeout_ms = (int)bg_cfg_get_int(ctx, to, "$.timeouts", "send_ms", 60000, 1, day);
    cfg->upstream_idle_ms =
        (int)bg_cfg_get_int(ctx, to, "$.timeouts", "upstream_idle_ms", 30000, 1, day);
    /* SIGTERM: keep accepting for drain_delay_ms (answering Connection:
     * close), then close the listeners and give requests in flight
     * drain_ms before their connections are closed. */
    cfg->drain_delay_ms =
        (int)bg_cfg_get_int(ctx, to, "$.timeouts", "drain_delay_ms", 0, 0, 3600000);
    cfg->drain_timeout_ms = (int)bg_cfg_get_int(ctx, to, "$.timeouts", "drain_ms", 10000, 0, day);
    json_decref(empty);
}

/* $.upstream_tls: the CA file and verification (on unless disabled). */
static void parse_upstream_tls(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    static const char *const tls_keys[] = {"ca_file", "verify", NULL};
    json_t *tls = bg_cfg_get_typed(ctx, root, "$", "upstream_tls", JSON_OBJECT, "an object");
    cfg->tls_verify = 1;
    if (tls != NULL) {
        bg_cfg_check_keys(ctx, tls, "$.upstream_tls", tls_keys);
        cfg->ca_file = bg_cfg_dup(bg_cfg_get_string(ctx, tls, "$.upstream_tls", "ca_file"));
        cfg->tls_verify = bg_cfg_get_bool(ctx, tls, "$.upstream_tls", "verify", 1);
        if (cfg->ca_file != NULL && access(cfg->ca_file, R_OK) != 0)
            bg_cfg_err(ctx, "$.upstream_tls.ca_file", 0, "cannot read %s: %s", cfg->ca_file,
                       strerror(errno));
    }
}

/* $.log: level, file and format of the operational log. */
static void parse_log(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    static const char *const log_keys[] = {"level", "file", "format", NULL};
    json_t *log = bg_cfg_get_typed(ctx, root, "$", "log", JSON_OBJECT, "an object");
    if (log != NULL) {
        bg_cfg_check_keys(ctx, log, "$.log", log_keys);
        const char *lvl = bg_cfg_get_string(ctx, log, "$.log", "level");
        if (lvl != NULL && strcmp(lvl, "debug") != 0 && strcmp(lvl, "info") != 0 &&
            strcmp(lvl, "warn") != 0 && strcmp(lvl, "error") != 0)
            bg_cfg_err(ctx, "$.log.level", 0, "must be debug, info, warn or error");
        cfg->log_level = bg_cfg_dup(lvl);
        cfg->log_file = bg_cfg_dup(bg_cfg_get_string(ctx, log, "$.log", "file"));
        const char *fmt = bg_cfg_get_string(ctx, log, "$.log", "format");
        if (fmt != NULL && strcmp(fmt, "json") != 0 && strcmp(fmt, "text") != 0)
            bg_cfg_err(ctx, "$.log.format", 0, "must be json or text");
        cfg->log_format = bg_cfg_dup(fmt);
    }
}

/* $.access_log and $.metrics. */
static void parse_outputs(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    /* access_log (proxy/accesslog.h) and metrics: restart to change. */
    static const char *const access_keys[] = {"path", NULL};
    json_t *al = bg_cfg_get_typed(ctx, root, "$", "access_log", JSON_OBJECT, "an object");
    if (al != NULL) {
        bg_cfg_check_keys(ctx, al, "$.access_log", access_keys);
        cfg->access_log_path = bg_cfg_dup(bg_cfg_get_string(ctx, al, "$.access_log", "path"));
    }
    static const char *const metrics_keys[] = {"max_series", NULL};
    json_t *mo = bg_cfg_get_typed(ctx, root, "$", "metrics", JSON_OBJECT, "an object");
    cfg->metrics_max_series = 2048;
    if (mo != NULL) {
        bg_cfg_check_keys(ctx, mo, "$.metrics", metrics_keys);
        cfg->metrics_max_series =
            (int)bg_cfg_get_int(ctx, mo, "$.metrics", "max_series", 2048, 64, 1 << 20);
    }
}

/* $.dns.nameservers: at most 8 numeric "address[:port]" (port 53 when
 * none); none: /etc/resolv.conf. */
static void parse_dns(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    static const char *const dns_keys[] = {"nameservers", NULL};
    json_t *dns = bg_cfg_get_typed(ctx, root, "$", "dns", JSON_OBJECT, "an object");
    if (dns != NULL) {
        bg_cfg_check_keys(ctx, dns, "$.dns", dns_keys);
        json_t *ns = json_object_get(dns, "nameservers");
        if (ns != NULL && (!json_is_array(ns) || json_array_size(ns) > 8)) {
            bg_cfg_err(ctx, "$.dns.nameservers", 0,
                       "must be a list of at most 8 \"address[:port]\"");
        } else if (ns != NULL) {
            size_t i;
            json_t *a;
            cfg->nameservers = bg_cfg_alloc(json_array_size(ns) + 1, sizeof(char *));
            json_array_foreach(ns, i, a)
            {
                char p[512], e[256];
                struct sockaddr_storage ss;
                socklen_t sl;
                bg_cfg_path_index(p, sizeof p, "$.dns.nameservers", i);
                const char *nsv = json_string_value(a);
                char with_port[300];
                if (nsv != NULL) {
                    const char *c1 = strchr(nsv, ':');
                    if (nsv[0] == '[')
                        snprintf(with_port, sizeof with_port, strstr(nsv, "]:") ? "%s" : "%s:53",
                                 nsv);
                    else if (c1 == NULL)
                        snprintf(with_port, sizeof with_port, "%s:53", nsv);
                    else if (strchr(c1 + 1, ':') != NULL) /* bare IPv6 */
                        snprintf(with_port, sizeof with_port, "[%s]:53", nsv);
                    else
                        snprintf(with_port, sizeof with_port, "%s", nsv);
                }
                if (cfg->nameservers == NULL)
                    break; /* counted: the load fails */
                if (nsv == NULL || bg_util_parse_sockaddr(with_port, &ss, &sl, e, sizeof e) != 0) {
                    bg_cfg_err(ctx, p, 0, "must be a numeric address, optionally with :port");
                    continue;
                }
                cfg->nameservers[cfg->nnameservers++] = bg_cfg_dup(with_port);
            }
        }
    }
}

static void parse_root(bg_cfg_ctx_t *ctx, bg_config_t *cfg, json_t *root)
{
    static const char *const root_keys[] = {
        "$schema",       "version",   "description", "listen",       "admin",
        "workers",       "limits",    "timeouts",    "upstream_tls", "forwarded_headers",
        "debug_headers", "resolve",   "routes",      "log",          "geo",
        "dns",           "policy",    "keys",        "consent",      "recipients",
        "field_rules",   "operators", "rules",       "audit",        "store",
        "access_log",    "metrics",   NULL};

    if (!json_is_object(root)) {
        bg_cfg_err(ctx, "$", 0, "the configuration must be a JSON object");
        return;
    }
    bg_cfg_check_keys(ctx, root, "$", root_keys);
    long long version = bg_cfg_get_int(ctx, root, "$", "version", 1, 1, 1);
    (void)version;
    bg_cfg_get_string(ctx, root, "$", "description");
    bg_cfg_get_string(ctx, root, "$", "$schema");

    parse_listen(ctx, cfg, root);
    parse_admin(ctx, cfg, root);
    parse_workers(ctx, cfg, root);
    parse_limits(ctx, cfg, root);
    parse_upstream_tls(ctx, cfg, root);
    const char *fw = bg_cfg_get_string(ctx, root, "$", "forwarded_headers");
    if (fw != NULL && strcmp(fw, "append") != 0 && strcmp(fw, "replace") != 0 &&
        strcmp(fw, "off") != 0)
        bg_cfg_err(ctx, "$.forwarded_headers", 0, "must be \"append\", \"replace\" or \"off\"");
    cfg->forwarded = bg_cfg_dup(fw != NULL ? fw : "append");
    cfg->debug_headers = bg_cfg_get_bool(ctx, root, "$", "debug_headers", 0);

    json_t *res = json_object_get(root, "resolve");
    if (res != NULL)
        parse_resolve(ctx, cfg, res);
    json_t *routes = json_object_get(root, "routes");
    if (routes == NULL)
        bg_cfg_err(ctx, "$", 0, "no \"routes\": bordergate forwards only to configured routes");
    else
        parse_routes(ctx, cfg, routes);

    parse_log(ctx, cfg, root);
    parse_geo(ctx, cfg, json_object_get(root, "geo"));
    parse_audit(ctx, cfg, root);
    parse_store(ctx, cfg, root);
    parse_outputs(ctx, cfg, root);
    parse_dns(ctx, cfg, root);
}

static void config_free(bg_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (int i = 0; i < cfg->nroutes; i++) {
        bg_route_t *r = &cfg->routes[i];
        free(r->id);
        free(r->match_host);
        free(r->path_prefix);
        free(r->upstream_url);
        free(r->upstream_host);
        free(r->upstream_path);
        free(r->host_header);
        free(r->recipient);
    }
    free(cfg->routes);
    free(cfg->route_inflight);
    for (int i = 0; i < cfg->nresolve; i++)
        free(cfg->resolve[i].host);
    free(cfg->resolve);
    if (cfg->admin_token != NULL)
        bg_util_wipe(cfg->admin_token, strlen(cfg->admin_token));
    free(cfg->admin_token);
    free(cfg->ca_file);
    free(cfg->forwarded);
    free(cfg->log_level);
    free(cfg->log_file);
    free(cfg->access_log_path);
    free(cfg->log_format);
    for (int i = 0; i < cfg->nnameservers; i++)
        free(cfg->nameservers[i]);
    free(cfg->nameservers);
    if (cfg->policy_free != NULL)
        cfg->policy_free(cfg->policy);
    free(cfg->audit_dir);
    free(cfg->audit_prefix);
    free(cfg->audit_key_file);
    free(cfg->audit_key_env);
    free(cfg->audit_counters_file);
    if (cfg->store_redis != NULL) {
        bg_redis_cfg_clear(cfg->store_redis);
        free(cfg->store_redis);
    }
    free(cfg->geo_db_path);
    bg_geo_db_unref(cfg->geo_db);
    bg_geo_overrides_free(cfg->geo_overrides);
    free(cfg->path);
    if (cfg->root != NULL)
        json_decref(cfg->root);
    free(cfg);
}

bg_config_t *bg_config_parse(bg_cfg_ctx_t *ctx, const char *path, json_t *root)
{
    bg_config_t *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return NULL;
    if ((cfg->path = strdup(path)) == NULL) {
        free(cfg);
        return NULL;
    }
    cfg->refs = 1;
    cfg->root = root; /* owned from here on */
    parse_root(ctx, cfg, root);
    return cfg;
}

void bg_config_unref(bg_config_t *cfg)
{
    if (cfg != NULL && __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
        config_free(cfg);
}

const bg_route_t *bg_config_match_route(const bg_config_t *cfg, const char *host, size_t host_len,
                                        const char *path, size_t path_len)
{
    const bg_route_t *best = NULL;
    size_t best_len = 0;
    int best_host = 0;
    for (int i = 0; i < cfg->nroutes; i++) {
        const bg_route_t *r = &cfg->routes[i];
        if (r->match_host != NULL &&
            (strlen(r->match_host) != host_len || memcmp(r->match_host, host, host_len) != 0))
            continue;
        size_t pl = strlen(r->path_prefix);
        if (pl > path_len || memcmp(path, r->path_prefix, pl) != 0)
            continue;
        /* "/api" matches "/api", "/api/x" and "/api?q", not "/apix". */
        if (pl > 0 && r->path_prefix[pl - 1] != '/' && pl < path_len && path[pl] != '/' &&
            path[pl] != '?')
            continue;
        int has_host = r->match_host != NULL;
        /* A host match beats a host-less one; then the longest prefix wins. */
        if (best == NULL || has_host > best_host || (has_host == best_host && pl > best_len)) {
            best = r;
            best_len = pl;
            best_host = has_host;
        }
    }
    return best;
}

const bg_resolve_entry_t *bg_config_find_resolve(const bg_config_t *cfg, const char *host)
{
    for (int i = 0; i < cfg->nresolve; i++) {
        if (strcmp(cfg->resolve[i].host, host) == 0)
            return &cfg->resolve[i];
    }
    return NULL;
}
