/*
 * The fleet's rollups in the shared store (audit/rollup_fleet.h):
 * publishing this instance's hours, and reading every instance's.
 */
#include "audit/rollup_fleet.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "common/hex.h"
#include "common/log.h"
#include "common/util.h"
#include "store/redis.h"

#define ID_MAX 96
#define KEY_MAX 160

/* ------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------ */

/* "YYYY-MM-DD" */
static int is_day(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    return 1;
}

/* An instance name as this module writes one: [A-Za-z0-9._-], 1..ID_MAX-1. */
static int id_ok(const char *s, size_t len)
{
    if (len == 0 || len >= ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/*
 * This instance's name, from RDIR/instance; made once ("HOST-RANDOM": the
 * host name for people reading the keys, the random part because two
 * instances may share a host name) and kept with the rollups, so it lives
 * as long as the audit directory whose figures it names. 0, or -1 with ERR.
 */
static int instance_id(const char *rdir, char id[ID_MAX], char *err, size_t errcap)
{
    char path[4200], host[64] = "bordergate", tmp[ID_MAX + 8];
    snprintf(path, sizeof path, "%s/instance", rdir);
    for (int attempt = 0; attempt < 2; attempt++) {
        FILE *fp = fopen(path, "r");
        if (fp != NULL) {
            size_t n = fread(tmp, 1, sizeof tmp - 1, fp);
            fclose(fp);
            while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == ' '))
                n--;
            tmp[n] = '\0';
            if (!id_ok(tmp, n)) {
                snprintf(err, errcap, "%s: not an instance name ([A-Za-z0-9._-], up to %d)", path,
                         ID_MAX - 1);
                return -1;
            }
            memcpy(id, tmp, n + 1);
            return 0;
        }
        if (errno != ENOENT)
            break;
        unsigned char rnd[4];
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "bordergate");
        host[sizeof host - 1] = '\0';
        for (char *p = host; *p != '\0'; p++)
            if (!id_ok(p, 1))
                *p = '_';
        if (bg_util_random_bytes(rnd, sizeof rnd) != 0)
            break;
        int n = snprintf(tmp, sizeof tmp, "%s-%02x%02x%02x%02x\n", host, rnd[0], rnd[1], rnd[2],
                         rnd[3]);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0 && errno == EEXIST)
            continue; /* made meanwhile: read it */
        if (fd < 0)
            break;
        int ok = write(fd, tmp, (size_t)n) == n && fsync(fd) == 0;
        close(fd);
        if (!ok) {
            unlink(path);
            break;
        }
    }
    snprintf(err, errcap, "cannot make %s: %s", path, strerror(errno));
    return -1;
}

/* ------------------------------------------------------------------------
 * Publishing
 * ------------------------------------------------------------------------ */

struct bg_rollup_fleet {
    char *dir, *prefix;
    char id[ID_MAX];
    int interval_ms;
    bg_redis_t *r;
    pthread_t thread;
    atomic_int stop;
    atomic_int up;
    atomic_ullong rounds, hours;
    /* The thread's own: what the store holds of each day, as published:
     * {"DAY": {"sig": "MTIME SIZE", "hours": {"HOUR_MS": "SHA-256 hex"}}} */
    json_t *seen;
    int reconciled; /* the store's day set compared with the disk */
};

/* One HSET/HDEL being built: argv with their lengths (strings owned). */
typedef struct {
    char **argv;
    size_t *lens;
    int argc, cap;
} cmd_t;

static void cmd_free(cmd_t *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->lens);
    c->argv = NULL;
    c->lens = NULL;
    c->argc = c->cap = 0;
}

static int cmd_add(cmd_t *c, const char *s, size_t len)
{
    if (c->argc == c->cap) {
        int nc = c->cap ? c->cap * 2 : 8;
        char **na = realloc(c->argv, (size_t)nc * sizeof *na);
        if (na == NULL)
            return -1;
        c->argv = na;
        size_t *nl = realloc(c->lens, (size_t)nc * sizeof *nl);
        if (nl == NULL)
            return -1;
        c->lens = nl;
        c->cap = nc;
    }
    char *d = malloc(len + 1);
    if (d == NULL)
        return -1;
    memcpy(d, s, len);
    d[len] = '\0';
    c->argv[c->argc] = d;
    c->lens[c->argc++] = len;
    return 0;
}

static int cmd_adds(cmd_t *c, const char *s)
{
    return cmd_add(c, s, strlen(s));
}

/* Send the commands C[0..N) (those with arguments) in one pipeline. 0 when
 * every reply arrived and none is an error, else -1 with ERR. */
static int send_cmds(bg_redis_t *r, cmd_t *c, int n, char *err, size_t errcap)
{
    int argc[8], k = 0, exec[8];
    const char *const *argv[8];
    const size_t *lens[8];
    redisReply *rep[8];
    for (int i = 0; i < n && k < 8; i++) {
        if (c[i].argc == 0)
            continue;
        exec[k] = strcmp(c[i].argv[0], "EXEC") == 0;
        argc[k] = c[i].argc;
        argv[k] = (const char *const *)c[i].argv;
        lens[k++] = c[i].lens;
    }
    if (k == 0)
        return 0;
    if (bg_redis_pipeline(r, k, argc, argv, lens, rep, err, errcap) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < k; i++) {
        if (rep[i] == NULL || rep[i]->type == REDIS_REPLY_ERROR ||
            (rep[i]->type == REDIS_REPLY_NIL && exec[i])) {
            if (rc == 0)
                snprintf(err, errcap, "the store refused a command: %s",
                         rep[i] != NULL && rep[i]->str != NULL ? rep[i]->str : "no reply");
            rc = -1;
        }
        /* EXEC: each queued command's reply */
        for (size_t j = 0;
             rep[i] != NULL && rep[i]->type == REDIS_REPLY_ARRAY && j < rep[i]->elements; j++)
            if (rep[i]->element[j]->type == REDIS_REPLY_ERROR && rc == 0) {
                snprintf(err, errcap, "the store refused a command: %s", rep[i]->element[j]->str);
                rc = -1;
            }
        if (rep[i] != NULL)
            freeReplyObject(rep[i]);
    }
    return rc;
}

typedef struct {
    bg_rollup_fleet_t *f;
    json_t *old; /* {"HOUR_MS": sha} published before; NULL: replace the day */
    json_t *now; /* the same for what we send now */
    cmd_t *hset; /* HSET key H TEXT ... */
    int fail;
} pub_t;

static int pub_hour(void *arg, int64_t hour_ms, const char *text, size_t len)
{
    pub_t *p = arg;
    unsigned char d[SHA256_DIGEST_LENGTH];
    char sha[2 * SHA256_DIGEST_LENGTH + 1], h[24];
    SHA256((const unsigned char *)text, len, d);
    bg_hex_encode(d, sizeof d, sha);
    snprintf(h, sizeof h, "%lld", (long long)hour_ms);
    if (json_object_set_new(p->now, h, json_string(sha)) != 0) {
        p->fail = 1;
        return 1;
    }
    const char *was = json_string_value(json_object_get(p->old, h));
    if (was != NULL && strcmp(was, sha) == 0)
        return 0; /* the store holds this text already */
    if (cmd_adds(p->hset, h) != 0 || cmd_add(p->hset, text, len) != 0) {
        p->fail = 1;
        return 1;
    }
    atomic_fetch_add(&p->f->hours, 1);
    return 0;
}

/*
 * Publish day DAY of U: the hours whose text changed since SEEN[DAY] (all
 * of them, replacing the hash, when the store's copy is unknown). 0, or -1
 * with ERR (SEEN[DAY] is then forgotten: the next round replaces it).
 */
static int pub_day(bg_rollup_fleet_t *f, const bg_rollup_t *u, const char *day, const char *sig,
                   char *err, size_t errcap)
{
    char key[KEY_MAX], days[KEY_MAX];
    json_t *seen = json_object_get(f->seen, day);
    cmd_t c[5];
    memset(c, 0, sizeof c);
    pub_t p = {.f = f, .old = json_object_get(seen, "hours"), .now = json_object(), .hset = &c[2]};
    int rc = -1;
    snprintf(key, sizeof key, "bg:roll:%s:%s", f->id, day);
    snprintf(days, sizeof days, "bg:roll:%s:days", f->id);
    if (p.now == NULL || cmd_adds(&c[2], "HSET") != 0 || cmd_adds(&c[2], key) != 0)
        goto oom;
    if (bg_rollup_day_hours(u, day, pub_hour, &p, err, errcap) != 0)
        goto out;
    if (p.fail)
        goto oom;
    if (p.old == NULL) {
        /* Unknown copy: replace the whole hash at once (a reader never sees
         * it empty), so hours gone from the disk (a rebuild) go too. */
        if (cmd_adds(&c[0], "MULTI") != 0 || cmd_adds(&c[1], "DEL") != 0 ||
            cmd_adds(&c[1], key) != 0 || cmd_adds(&c[4], "EXEC") != 0)
            goto oom;
    } else {
        const char *h;
        json_t *v;
        json_object_foreach(p.old, h, v)
        {
            if (json_object_get(p.now, h) != NULL)
                continue;
            if ((c[1].argc == 0 && (cmd_adds(&c[1], "HDEL") != 0 || cmd_adds(&c[1], key) != 0)) ||
                cmd_adds(&c[1], h) != 0)
                goto oom;
        }
    }
    if (c[2].argc == 2)
        cmd_free(&c[2]); /* nothing changed */
    if (cmd_adds(&c[3], "SADD") != 0 || cmd_adds(&c[3], days) != 0 || cmd_adds(&c[3], day) != 0)
        goto oom;
    if (send_cmds(f->r, c, 5, err, errcap) != 0)
        goto out;
    json_t *e = json_pack("{s:s, s:O}", "sig", sig, "hours", p.now);
    if (e == NULL || json_object_set_new(f->seen, day, e) != 0)
        goto oom;
    rc = 0;
    goto out;
oom:
    snprintf(err, errcap, "out of memory");
out:
    if (rc != 0)
        json_object_del(f->seen, day);
    json_decref(p.now);
    for (int i = 0; i < 5; i++)
        cmd_free(&c[i]);
    return rc;
}

/* Remove day DAY from the store (gone from the disk: retention, a rebuild). */
static int unpub_day(bg_rollup_fleet_t *f, const char *day, char *err, size_t errcap)
{
    char key[KEY_MAX], days[KEY_MAX];
    cmd_t c[2];
    memset(c, 0, sizeof c);
    snprintf(key, sizeof key, "bg:roll:%s:%s", f->id, day);
    snprintf(days, sizeof days, "bg:roll:%s:days", f->id);
    int rc = -1;
    if (cmd_adds(&c[0], "DEL") == 0 && cmd_adds(&c[0], key) == 0 && cmd_adds(&c[1], "SREM") == 0 &&
        cmd_adds(&c[1], days) == 0 && cmd_adds(&c[1], day) == 0)
        rc = send_cmds(f->r, c, 2, err, errcap);
    else
        snprintf(err, errcap, "out of memory");
    cmd_free(&c[0]);
    cmd_free(&c[1]);
    return rc;
}

/* Each day file in RDIR with its signature ("MTIME_NS SIZE"): {"DAY": "SIG"}. */
static json_t *disk_days(const char *rdir)
{
    json_t *o = json_object();
    DIR *d = opendir(rdir);
    struct dirent *e;
    if (o == NULL || d == NULL) {
        if (d != NULL)
            closedir(d);
        return o;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4200], sig[64];
        struct stat sb;
        if (!is_day(e->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", rdir, e->d_name);
        if (stat(path, &sb) != 0)
            continue;
        snprintf(sig, sizeof sig, "%lld.%09ld %lld", (long long)sb.st_mtim.tv_sec,
                 (long)sb.st_mtim.tv_nsec, (long long)sb.st_size);
        json_object_set_new(o, e->d_name, json_string(sig));
    }
    closedir(d);
    return o;
}

/* The days the store holds for this instance that the disk does not:
 * removed (a restart after retention dropped files while it was down). */
static int reconcile(bg_rollup_fleet_t *f, const json_t *disk, char *err, size_t errcap)
{
    char days[KEY_MAX];
    snprintf(days, sizeof days, "bg:roll:%s:days", f->id);
    const char *argv[] = {"SMEMBERS", days};
    redisReply *rep = bg_redis_cmd(f->r, 2, argv, NULL, err, errcap);
    if (rep == NULL)
        return -1;
    int rc = 0;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && rc == 0; i++) {
        const redisReply *m = rep->element[i];
        if (m->type == REDIS_REPLY_STRING && json_object_get(disk, m->str) == NULL)
            rc = unpub_day(f, m->str, err, errcap);
    }
    freeReplyObject(rep);
    return rc;
}

/* The raw log's counts and this instance in the registry. */
static int pub_info(bg_rollup_fleet_t *f, const bg_rollup_t *u, char *err, size_t errcap)
{
    bg_report_scan_stats_t st;
    memset(&st, 0, sizeof st);
    char key[KEY_MAX], v[5][32], host[64] = "";
    if (bg_rollup_input(u, &st) != 0) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(key, sizeof key, "bg:roll:%s:info", f->id);
    snprintf(v[0], sizeof v[0], "%llu", (unsigned long long)st.files);
    snprintf(v[1], sizeof v[1], "%llu", (unsigned long long)st.lines);
    snprintf(v[2], sizeof v[2], "%llu", (unsigned long long)st.unparsable);
    snprintf(v[3], sizeof v[3], "%llu", (unsigned long long)st.torn);
    snprintf(v[4], sizeof v[4], "%llu", (unsigned long long)bg_util_wall_ms());
    const char *hset[] = {"HSET", key,    "files", v[0],         "lines", v[1],   "unparsable",
                          v[2],   "torn", v[3],    "updated_ms", v[4],    "host", host};
    const char *sadd[] = {"SADD", "bg:roll:instances", f->id};
    int argc[2] = {14, 3};
    const char *const *argv[2] = {hset, sadd};
    redisReply *rep[2];
    if (bg_redis_pipeline(f->r, 2, argc, argv, NULL, rep, err, errcap) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        if (rep[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errcap, "the store refused a command: %s", rep[i]->str);
            rc = -1;
        }
        freeReplyObject(rep[i]);
    }
    return rc;
}

/* Bring the rollups up to date, save them, publish what changed. 0, 1 when
 * the rollups are busy (a rebuild), -1 with ERR. */
static int round_once(bg_rollup_fleet_t *f, char *err, size_t errcap)
{
    bg_rollup_t *u = bg_rollup_open(f->dir, f->prefix, BG_ROLLUP_WRITE, err, errcap);
    json_t *disk = NULL;
    int rc = -1, s;
    if (u == NULL)
        return 1;
    /* A stop abandons the round (nothing saved): a long backlog must not
     * hold up the daemon's exit; the next start does it. */
    while ((s = bg_rollup_step(u, 4096, err, errcap)) > 0 && !atomic_load(&f->stop))
        ;
    if (s > 0) {
        rc = 1;
        goto out;
    }
    if (s < 0)
        goto out;
    if ((s = bg_rollup_save(u, err, errcap)) != 0) {
        rc = s;
        goto out;
    }
    if ((disk = disk_days(bg_rollup_dir(u))) == NULL) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    if (!f->reconciled && reconcile(f, disk, err, errcap) != 0)
        goto out;
    f->reconciled = 1;
    const char *day;
    json_t *sig, *tmp;
    json_object_foreach(disk, day, sig)
    {
        const char *was = json_string_value(json_object_get(json_object_get(f->seen, day), "sig"));
        if (was != NULL && strcmp(was, json_string_value(sig)) == 0)
            continue;
        if (pub_day(f, u, day, json_string_value(sig), err, errcap) != 0)
            goto out;
    }
    json_object_foreach_safe(f->seen, tmp, day, sig)
    {
        if (json_object_get(disk, day) != NULL)
            continue;
        if (unpub_day(f, day, err, errcap) != 0)
            goto out;
        json_object_del(f->seen, day);
    }
    rc = pub_info(f, u, err, errcap);
out:
    json_decref(disk);
    bg_rollup_free(u);
    return rc;
}

static void *pub_main(void *arg)
{
    bg_rollup_fleet_t *f = arg;
    int was_up = 1;
    for (;;) {
        int final = atomic_load(&f->stop);
        char err[512];
        uint64_t t0 = bg_util_mono_us();
        int rc = round_once(f, err, sizeof err);
        /* A round re-reads the day files that changed: when that takes
         * long (a busy day of new people), wait 9 times as long, so the
         * publishing costs at most a tenth of a core. */
        long long wait_ms = (long long)(bg_util_mono_us() - t0) * 9 / 1000;
        if (wait_ms < f->interval_ms)
            wait_ms = f->interval_ms;
        if (rc < 0 && was_up)
            bg_warn("fleet rollups: %s (retrying every %d ms)", err, f->interval_ms);
        if (rc == 0 && !was_up)
            bg_info("fleet rollups: published again as instance %s", f->id);
        if (rc != 1) {
            was_up = rc == 0;
            atomic_store(&f->up, was_up);
        }
        atomic_fetch_add(&f->rounds, 1);
        if (final)
            break;
        for (long long i = 0; i < wait_ms / 20 && !atomic_load(&f->stop); i++)
            poll(NULL, 0, 20);
    }
    return NULL;
}

bg_rollup_fleet_t *bg_rollup_fleet_start(const char *dir, const char *prefix,
                                         const struct bg_redis_cfg *cfg, int interval_ms, char *err,
                                         size_t errcap)
{
    bg_rollup_fleet_t *f = calloc(1, sizeof *f);
    char rdir[4096];
    prefix = prefix != NULL ? prefix : "audit";
    if (f == NULL || (f->dir = strdup(dir)) == NULL || (f->prefix = strdup(prefix)) == NULL ||
        (f->seen = json_object()) == NULL || (f->r = bg_redis_new(cfg)) == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    f->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    atomic_store(&f->up, 1);
    if ((size_t)snprintf(rdir, sizeof rdir, "%s/%s.rollup", dir, prefix) >= sizeof rdir) {
        snprintf(err, errcap, "the audit directory's name is too long");
        goto fail;
    }
    if (mkdir(rdir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errcap, "cannot create %s: %s", rdir, strerror(errno));
        goto fail;
    }
    if (instance_id(rdir, f->id, err, errcap) != 0)
        goto fail;
    int rc = pthread_create(&f->thread, NULL, pub_main, f);
    if (rc != 0) {
        snprintf(err, errcap, "cannot start the rollup publishing thread: %s", strerror(rc));
        goto fail;
    }
    bg_info("fleet rollups: publishing %s as instance %s to %s", rdir, f->id, cfg->display);
    return f;
fail:
    if (f != NULL) {
        bg_redis_free(f->r);
        json_decref(f->seen);
        free(f->dir);
        free(f->prefix);
    }
    free(f);
    return NULL;
}

void bg_rollup_fleet_stop(bg_rollup_fleet_t *f)
{
    if (f == NULL)
        return;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    bg_redis_free(f->r);
    json_decref(f->seen);
    free(f->dir);
    free(f->prefix);
    free(f);
}

const char *bg_rollup_fleet_id(const bg_rollup_fleet_t *f)
{
    return f->id;
}

void bg_rollup_fleet_stats(bg_rollup_fleet_t *f, int *up, unsigned long long *rounds,
                           unsigned long long *hours)
{
    *up = atomic_load(&f->up);
    *rounds = atomic_load(&f->rounds);
    *hours = atomic_load(&f->hours);
}

/* ------------------------------------------------------------------------
 * Reading every instance's hours
 * ------------------------------------------------------------------------ */

struct bg_rollup_fleet_query {
    bg_redis_t *r;
    bg_rollup_query_t *x;
    char **ids; /* NULL until listed */
    size_t nids, ii;
    char **days; /* of ids[ii] in the window, oldest first; NULL until listed */
    size_t ndays, di;
    int done;
};

static void strs_free(char **s, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        free(s[i]);
    free(s);
}

static int str_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The string members of REP (an array) for which KEEP(ARG, s) holds,
 * sorted. 0, or -1 when out of memory. */
static int members(const redisReply *rep, int (*keep)(const void *, const char *), const void *arg,
                   char ***out, size_t *n)
{
    *n = 0;
    if ((*out = calloc(rep->type == REDIS_REPLY_ARRAY ? rep->elements + 1 : 1, sizeof **out)) ==
        NULL)
        return -1;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *m = rep->element[i];
        if (m->type != REDIS_REPLY_STRING || !keep(arg, m->str))
            continue;
        if (((*out)[*n] = strdup(m->str)) == NULL)
            return -1;
        ++*n;
    }
    if (*n > 1)
        qsort(*out, *n, sizeof **out, str_order);
    return 0;
}

static int keep_id(const void *arg, const char *s)
{
    (void)arg;
    return id_ok(s, strlen(s));
}

static int keep_day(const void *arg, const char *s)
{
    return bg_rollup_query_day_wanted(arg, s);
}

static uint64_t field_u64(const redisReply *h, const char *name)
{
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0 &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return strtoull(h->element[i + 1]->str, NULL, 10);
    return 0;
}

bg_rollup_fleet_query_t *bg_rollup_fleet_query_new(const struct bg_redis_cfg *cfg, int64_t from_ms,
                                                   int64_t to_ms, int blocked_limit,
                                                   bg_rollup_entry_cb cb, void *arg, char *err,
                                                   size_t errcap)
{
    bg_rollup_fleet_query_t *q = calloc(1, sizeof *q);
    if (q == NULL || (q->r = bg_redis_new(cfg)) == NULL) {
        free(q);
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    q->x = bg_rollup_query_new(NULL, 0, from_ms, to_ms, blocked_limit, cb, arg, err, errcap);
    if (q->x == NULL) {
        bg_rollup_fleet_query_free(q);
        return NULL;
    }
    return q;
}

void bg_rollup_fleet_query_set_people(bg_rollup_fleet_query_t *q, bg_rollup_people_cb pcb)
{
    bg_rollup_query_set_people(q->x, pcb);
}

void bg_rollup_fleet_query_set_daily(bg_rollup_fleet_query_t *q)
{
    bg_rollup_query_set_daily(q->x);
}

/* The instance ids[ii]'s days in the window and its input counts. */
static int list_days(bg_rollup_fleet_query_t *q, char *err, size_t errcap)
{
    char days[KEY_MAX], info[KEY_MAX];
    snprintf(days, sizeof days, "bg:roll:%s:days", q->ids[q->ii]);
    snprintf(info, sizeof info, "bg:roll:%s:info", q->ids[q->ii]);
    const char *a0[] = {"SMEMBERS", days}, *a1[] = {"HGETALL", info};
    int argc[2] = {2, 2};
    const char *const *argv[2] = {a0, a1};
    redisReply *rep[2];
    if (bg_redis_pipeline(q->r, 2, argc, argv, NULL, rep, err, errcap) != 0)
        return -1;
    int rc = members(rep[0], keep_day, q->x, &q->days, &q->ndays);
    if (rc != 0)
        snprintf(err, errcap, "out of memory");
    bg_report_scan_stats_t st = {.files = field_u64(rep[1], "files"),
                                 .lines = field_u64(rep[1], "lines"),
                                 .unparsable = field_u64(rep[1], "unparsable"),
                                 .torn = field_u64(rep[1], "torn")};
    bg_rollup_query_add_input(q->x, &st);
    freeReplyObject(rep[0]);
    freeReplyObject(rep[1]);
    return rc;
}

/* Feed one (instance, day) hash of hours to the query. */
static int read_day(bg_rollup_fleet_query_t *q, char *err, size_t errcap)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "bg:roll:%s:%s", q->ids[q->ii], q->days[q->di]);
    const char *argv[] = {"HGETALL", key};
    redisReply *rep = bg_redis_cmd(q->r, 2, argv, NULL, err, errcap);
    if (rep == NULL)
        return -1;
    int rc = 0;
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errcap, "the store refused HGETALL: %s", rep->str);
        rc = -1;
    }
    for (size_t i = 1; rc == 0 && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i += 2) {
        const redisReply *v = rep->element[i];
        if (v->type == REDIS_REPLY_STRING &&
            bg_rollup_query_text(q->x, v->str, v->len, err, errcap) != 0)
            rc = -1;
    }
    freeReplyObject(rep);
    return rc;
}

int bg_rollup_fleet_query_step(bg_rollup_fleet_query_t *q, char *err, size_t errcap)
{
    if (q->done)
        return 0;
    if (q->ids == NULL) {
        const char *argv[] = {"SMEMBERS", "bg:roll:instances"};
        redisReply *rep = bg_redis_cmd(q->r, 2, argv, NULL, err, errcap);
        if (rep == NULL)
            return -1;
        int rc = members(rep, keep_id, NULL, &q->ids, &q->nids);
        freeReplyObject(rep);
        if (rc != 0) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        return 1;
    }
    if (q->ii < q->nids) {
        if (q->days == NULL)
            return list_days(q, err, errcap) == 0 ? 1 : -1;
        if (q->di < q->ndays) {
            int rc = read_day(q, err, errcap);
            q->di++;
            return rc == 0 ? 1 : -1;
        }
        strs_free(q->days, q->ndays);
        q->days = NULL;
        q->ndays = q->di = 0;
        q->ii++;
        return 1;
    }
    int rc = bg_rollup_query_step(q->x, err, errcap);
    if (rc == 0)
        q->done = 1;
    return rc;
}

const bg_report_scan_stats_t *bg_rollup_fleet_query_stats(const bg_rollup_fleet_query_t *q)
{
    return bg_rollup_query_stats(q->x);
}

size_t bg_rollup_fleet_query_instances(const bg_rollup_fleet_query_t *q)
{
    return q->nids;
}

void bg_rollup_fleet_query_free(bg_rollup_fleet_query_t *q)
{
    if (q == NULL)
        return;
    bg_rollup_query_free(q->x);
    strs_free(q->ids, q->nids);
    strs_free(q->days, q->ndays);
    bg_redis_free(q->r);
    free(q);
}
