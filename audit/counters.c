/*
 * Yearly counters of distinct people whose PI went abroad (audit/counters.h).
 *
 * Layout. One hash table split into STRIPES stripes, each with its own
 * mutex and open-addressing array. An entry is (first 16 bytes of the
 * pseudonym, year, recipient index) -> kinds seen (bit NS, bit S, the
 * exempt kinds) and whether the person was counted by a device identifier
 * (subjects.device_id: the device stands for the person).
 * Recipient index 0 is "all recipients" (the yearly totals); 1.. are the
 * interned recipient ids. Each add looks up the recipient's entry and the
 * totals entry: two uncontended stripe locks and no I/O once a person is
 * known. 16 bytes of an HMAC-SHA-256 output are uniformly random: the
 * chance of two of 10^8 people colliding is about 10^-23.
 *
 * Only the current year is held in memory: a stripe drops its entries the
 * first time it sees a later year, so memory is bounded by one year's
 * people (about 2 x 32 bytes per person and recipient).
 *
 * Lock order: stripe -> file_mu; stripe -> meta_mu. Never two stripes.
 */
#include "audit/counters.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/report.h"
#include "common/log.h"
#include "common/util.h"

#define STRIPES 64
#define MAX_RCPT 1024 /* recipient ids beyond this are counted under "(other)" */
#define KIND_NS 1
#define KIND_S 2
#define KIND_XNS 4 /* exempt (Art. 5(1)-(3)): not counted towards the thresholds */
#define KIND_XS 8
#define KINDS_COUNTED (KIND_NS | KIND_S)
#define KINDS_EXEMPT (KIND_XNS | KIND_XS)
#define DEV_COUNTED 16 /* counted (towards the thresholds) by a device identifier */
#define DEV_EXEMPT 32  /* the same in the exempt numbers */
#define CHINA_OFFSET_MS (8LL * 3600 * 1000)

/* ------------------------------------------------------------------------
 * Thresholds and the counting rule
 * ------------------------------------------------------------------------ */

void bg_counters_thresholds_default(bg_counters_thresholds_t *t)
{
    t->contract_non_sensitive = 100000;
    t->assessment_non_sensitive = 1000000;
    t->contract_sensitive = 1;
    t->assessment_sensitive = 10000;
}

bg_volume_level_t bg_counters_level(const bg_counters_thresholds_t *t, uint64_t non_sensitive,
                                    uint64_t sensitive)
{
    if (non_sensitive >= t->assessment_non_sensitive || sensitive >= t->assessment_sensitive)
        return BG_VOLUME_ASSESSMENT;
    if (non_sensitive >= t->contract_non_sensitive || sensitive >= t->contract_sensitive)
        return BG_VOLUME_CONTRACT;
    return BG_VOLUME_NONE;
}

const char *bg_volume_level_name(bg_volume_level_t l)
{
    switch (l) {
    case BG_VOLUME_CONTRACT: return "standard_contract_or_certification";
    case BG_VOLUME_ASSESSMENT: return "security_assessment";
    case BG_VOLUME_NONE: break;
    }
    return "none";
}

/* The year of day Z (days since 1970-01-01, proleptic Gregorian). */
static int year_of_days(int64_t z)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return (int)((int64_t)yoe + era * 400 + (m <= 2));
}

int bg_counters_year_of(int64_t wall_ms)
{
    int64_t ms = wall_ms + CHINA_OFFSET_MS;
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    return year_of_days(days);
}

int bg_counters_finding_counts(int cross_border, int blocked, int monitor, int action_allow,
                               int action_deidentify, int anonymized)
{
    if (!cross_border || blocked)
        return 0;
    if (monitor)
        return 1; /* forwarded unchanged, whatever enforcement would have done */
    return action_allow || (action_deidentify && !anonymized);
}

int bg_counters_basis_exempt(const char *basis)
{
    return basis != NULL &&
           (strcmp(basis, "contract") == 0 || strcmp(basis, "hr_management") == 0 ||
            strcmp(basis, "emergency") == 0);
}

static int str_is(const json_t *v, const char *s)
{
    const char *t = json_string_value(v);
    return t != NULL && strcmp(t, s) == 0;
}

#define PART_CROSS 1
#define PART_BLOCKED 2
#define PART_MONITOR 4

int bg_counters_json_decision_part(const json_t *decision)
{
    const json_t *dst = json_object_get(decision, "destination");
    /* Unknown region counts as cross-border; so does a record without one. */
    return (!str_is(json_object_get(dst, "region"), "domestic") ? PART_CROSS : 0) |
           (str_is(json_object_get(decision, "outcome"), "block") ? PART_BLOCKED : 0) |
           (str_is(json_object_get(decision, "mode"), "monitor") ? PART_MONITOR : 0);
}

int bg_counters_json_finding_part(int part, const json_t *finding)
{
    if (!(part & PART_CROSS) || (part & PART_BLOCKED))
        return 0; /* the finding's members cannot change the answer */
    const json_t *act = json_object_get(finding, "action");
    return bg_counters_finding_counts(1, 0, (part & PART_MONITOR) != 0, str_is(act, "allow"),
                                      str_is(act, "deidentify"),
                                      json_is_true(json_object_get(finding, "anonymized")));
}

int bg_counters_json_finding_counts(const json_t *decision, const json_t *finding)
{
    return bg_counters_json_finding_part(bg_counters_json_decision_part(decision), finding);
}

/* ------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------ */

typedef struct {
    uint8_t id[16];
    uint16_t year;
    uint16_t rcpt;
    uint8_t flags; /* KIND_* | DEV_*; 0 = empty slot */
} entry_t;

typedef struct {
    pthread_mutex_t mu;
    entry_t *tab;
    size_t cap, n;
    int year; /* entries are of this year; a later year clears the stripe */
} __attribute__((aligned(64))) stripe_t;

typedef struct {
    uint64_t ns, s, people;    /* counted towards the thresholds */
    uint64_t xns, xs, xpeople; /* exempt (Art. 5(1)-(3)) */
    uint64_t dev, xdev;        /* of PEOPLE / XPEOPLE: counted by a device identifier */
} tally_t;

struct bg_counters {
    bg_counters_options_t opt;
    char *path;
    int fd; /* -1: memory only or readonly */

    stripe_t stripes[STRIPES];

    /* Recipient names: append-only, published with a release store of
     * nrcpt so the hot path reads them without a lock. */
    char *rname[MAX_RCPT]; /* [1..nrcpt] */
    int nrcpt;

    pthread_mutex_t meta_mu; /* year, tallies, thresholds, errors, rname appends */
    int year;                /* the year counted now (atomic reads) */
    tally_t total;
    tally_t rtally[MAX_RCPT];
    bg_counters_thresholds_t thr;
    uint64_t lines_loaded, lines_skipped, torn_cut, write_errors;
    char last_error[192];
    uint64_t last_error_log_ms;

    pthread_mutex_t file_mu; /* appends */
    off_t file_size;         /* end of the last complete line */
    int need_cut;            /* a partial append could not be cut off yet */

    pthread_t syncer;
    int has_syncer;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cond;
    int stop;
    int dirty; /* atomic: lines written since the last fdatasync */
};

static uint64_t now_ms(const bg_counters_t *c)
{
    return c->opt.clock_ms != NULL ? c->opt.clock_ms(c->opt.clock_arg) : bg_util_wall_ms();
}

static uint64_t key_hash(const uint8_t id[16], int year, int rcpt)
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    h ^= (uint64_t)(unsigned)year * 0x9E3779B97F4A7C15ULL ^
         (uint64_t)(unsigned)rcpt * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 31;
    return h;
}

static size_t slot_of(const stripe_t *st, const uint8_t id[16], int year, int rcpt, uint64_t h)
{
    size_t mask = st->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const entry_t *e = &st->tab[i];
        if (e->flags == 0 ||
            (e->year == year && e->rcpt == rcpt && memcmp(e->id, id, sizeof e->id) == 0))
            return i;
    }
}

/* Room for one more entry (load factor below 0.7). 0, or -1 (ENOMEM). */
static int stripe_reserve(stripe_t *st)
{
    if (st->tab != NULL && (st->n + 1) * 10 < st->cap * 7)
        return 0;
    size_t ncap = st->cap == 0 ? 64 : st->cap * 2;
    entry_t *nt = calloc(ncap, sizeof *nt);
    if (nt == NULL)
        return -1;
    stripe_t tmp = {.tab = nt, .cap = ncap};
    for (size_t i = 0; st->tab != NULL && i < st->cap; i++) {
        const entry_t *e = &st->tab[i];
        if (e->flags == 0)
            continue;
        nt[slot_of(&tmp, e->id, e->year, e->rcpt, key_hash(e->id, e->year, e->rcpt))] = *e;
    }
    free(st->tab);
    st->tab = nt;
    st->cap = ncap;
    return 0;
}

/* Lowercase 64-hex pseudonym into HEX and its first 16 bytes into ID. */
static int parse_pseudonym(const char *s, char hex[65], uint8_t id[16])
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < 64; i++) {
        int ch = (unsigned char)s[i];
        if (ch >= 'A' && ch <= 'F')
            ch += 'a' - 'A';
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return -1;
        hex[i] = (char)ch;
    }
    if (s[64] != '\0')
        return -1;
    hex[64] = '\0';
    for (int i = 0; i < 16; i++) {
        int hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
        int lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* The index of recipient NAME, interning it. -1 when out of memory. */
static int intern(bg_counters_t *c, const char *name)
{
    int n = __atomic_load_n(&c->nrcpt, __ATOMIC_ACQUIRE);
    for (int i = 1; i <= n; i++)
        if (strcmp(c->rname[i], name) == 0)
            return i;
    pthread_mutex_lock(&c->meta_mu);
    n = c->nrcpt;
    if (n >= MAX_RCPT - 2 && strcmp(name, "(other)") != 0)
        name = "(other)"; /* the last slot */
    int idx = -1;
    for (int i = 1; i <= n; i++)
        if (strcmp(c->rname[i], name) == 0)
            idx = i;
    if (idx < 0 && n < MAX_RCPT - 1 && (c->rname[n + 1] = strdup(name)) != NULL) {
        idx = n + 1;
        __atomic_store_n(&c->nrcpt, idx, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&c->meta_mu);
    return idx;
}

/* Move the counted year forward to YEAR. -1 when YEAR is older. */
static int advance_year(bg_counters_t *c, int year)
{
    int cur = __atomic_load_n(&c->year, __ATOMIC_ACQUIRE);
    if (year == cur)
        return 0;
    if (year < cur)
        return -1; /* a late add across New Year: its year is no longer held */
    pthread_mutex_lock(&c->meta_mu);
    if (year > c->year) {
        memset(&c->total, 0, sizeof c->total);
        memset(c->rtally, 0, sizeof c->rtally);
        __atomic_store_n(&c->year, year, __ATOMIC_RELEASE);
    }
    int rc = year < c->year ? -1 : 0;
    pthread_mutex_unlock(&c->meta_mu);
    return rc;
}

static void note_error(bg_counters_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_error(bg_counters_t *c, const char *fmt, ...)
{
    va_list ap;
    char msg[192];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint64_t t = now_ms(c);
    pthread_mutex_lock(&c->meta_mu);
    c->write_errors++;
    snprintf(c->last_error, sizeof c->last_error, "%s", msg);
    int log = !c->opt.quiet && (c->last_error_log_ms == 0 || t - c->last_error_log_ms >= 10000);
    if (log)
        c->last_error_log_ms = t;
    pthread_mutex_unlock(&c->meta_mu);
    if (log)
        bg_error("yearly counters %s: %s (the person is counted when next seen; "
                 "`bordergate audit volumes DIR` recounts from the audit log)",
                 c->path, msg);
}

/* The file's name of KIND. */
static const char *kind_name(int kind)
{
    switch (kind) {
    case KIND_S: return "sensitive";
    case KIND_XNS: return "exempt_non_sensitive";
    case KIND_XS: return "exempt_sensitive";
    default: return "non_sensitive";
    }
}

/* Append one line for a newly seen (year, recipient, kind, subject);
 * BY_DEVICE adds "by": "device". 0, or -1 (nothing of it stays in the file). */
static int append_line(bg_counters_t *c, int year, int kind, const char *rname, const char *hex,
                       int by_device, int64_t t_ms)
{
    char ts[40];
    bg_util_format_time((uint64_t)t_ms, ts, sizeof ts);
    json_t *o = json_pack("{s:i, s:s, s:s?, s:s, s:s}", "year", year, "kind", kind_name(kind),
                          "recipient", rname[0] != '\0' ? rname : NULL, "subject", hex, "time", ts);
    if (o != NULL && by_device && json_object_set_new(o, "by", json_string("device")) != 0) {
        json_decref(o);
        o = NULL;
    }
    char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (line == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t len = strlen(line);
    line[len++] = '\n'; /* json_dumps's NUL becomes the newline; LEN excludes any NUL */
    int rc = 0, e = 0;
    pthread_mutex_lock(&c->file_mu);
    if (c->need_cut) {
        if (ftruncate(c->fd, c->file_size) != 0) {
            e = errno;
            rc = -1;
            goto out;
        }
        c->need_cut = 0;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(c->fd, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            rc = -1;
            if (off > 0 && ftruncate(c->fd, c->file_size) != 0)
                c->need_cut = 1; /* cut before the next append */
            goto out;
        }
        off += (size_t)w;
    }
    c->file_size += (off_t)len;
    __atomic_store_n(&c->dirty, 1, __ATOMIC_RELEASE);
out:
    pthread_mutex_unlock(&c->file_mu);
    free(line);
    if (rc != 0) {
        note_error(c, "cannot append: %s", strerror(e));
        errno = e;
    }
    return rc;
}

typedef struct {
    int crossed;
    char msg[4][256];
} crossings_t;

static void check_crossing(bg_counters_t *c, crossings_t *x, int kind, uint64_t before,
                           uint64_t after)
{
    static const char *const what[] = {
        "a standard contract or PI protection certification (CAC 2024 Provisions Art. 8)",
        "a CAC security assessment (CAC 2024 Provisions Art. 7)"};
    uint64_t t1 = kind == KIND_S ? c->thr.contract_sensitive : c->thr.contract_non_sensitive;
    uint64_t t2 = kind == KIND_S ? c->thr.assessment_sensitive : c->thr.assessment_non_sensitive;
    const uint64_t th[2] = {t1, t2};
    for (int i = 0; i < 2; i++) {
        if (before < th[i] && after >= th[i] && x->crossed < 4)
            snprintf(x->msg[x->crossed++], sizeof x->msg[0],
                     "yearly volume %d: the %s personal information of %" PRIu64
                     " people has gone abroad since 1 January (China time), reaching the threshold "
                     "of %" PRIu64 ": %s is needed",
                     c->year, kind == KIND_S ? "sensitive" : "non-sensitive", after, th[i],
                     what[i]);
    }
}

/*
 * Count (ID, YEAR, recipient R) for KIND; when PERSIST, write the line
 * first (the entry is marked only when the line is in the file). Then the
 * totals entry. BY_DEVICE: the pseudonym is of a device identifier; a
 * person is "by device" in a group (counted or exempt) when a kind of that
 * group was newly counted by device. Returns 1 when newly counted for R, 0
 * when already, -1 on errors.
 */
static int count(bg_counters_t *c, const uint8_t id[16], const char *hex, int year, int r, int kind,
                 int by_device, int persist, int64_t t_ms)
{
    crossings_t x = {0};
    int newly = 0;
    for (int pass = 0; pass < 2; pass++) {
        int rcpt = pass == 0 ? r : 0;
        uint64_t h = key_hash(id, year, rcpt);
        stripe_t *st = &c->stripes[h >> 58];
        pthread_mutex_lock(&st->mu);
        if (st->year > year) {
            pthread_mutex_unlock(&st->mu);
            return 0;
        }
        if (st->year < year) {
            if (st->tab != NULL)
                memset(st->tab, 0, st->cap * sizeof *st->tab);
            st->n = 0;
            st->year = year;
        }
        if (stripe_reserve(st) != 0) {
            pthread_mutex_unlock(&st->mu);
            errno = ENOMEM;
            return -1;
        }
        entry_t *e = &st->tab[slot_of(st, id, year, rcpt, h)];
        if (e->flags & kind) {
            pthread_mutex_unlock(&st->mu);
            return newly;
        }
        if (pass == 0 && persist && c->fd >= 0 &&
            append_line(c, year, kind, c->rname[r], hex, by_device, t_ms) != 0) {
            pthread_mutex_unlock(&st->mu);
            return -1;
        }
        int group = kind & KINDS_EXEMPT ? KINDS_EXEMPT : KINDS_COUNTED;
        int new_person = (e->flags & group) == 0; /* new in the counted (or exempt) people */
        int devbit = group == KINDS_EXEMPT ? DEV_EXEMPT : DEV_COUNTED;
        int new_dev = by_device && (e->flags & devbit) == 0;
        if (e->flags == 0) {
            memcpy(e->id, id, sizeof e->id);
            e->year = (uint16_t)year;
            e->rcpt = (uint16_t)rcpt;
            st->n++;
        }
        e->flags |= (uint8_t)(kind | (by_device ? devbit : 0));
        pthread_mutex_unlock(&st->mu);

        pthread_mutex_lock(&c->meta_mu);
        if (c->year == year) {
            tally_t *t = rcpt == 0 ? &c->total : &c->rtally[rcpt];
            uint64_t *k = kind == KIND_S     ? &t->s
                          : kind == KIND_XNS ? &t->xns
                          : kind == KIND_XS  ? &t->xs
                                             : &t->ns;
            uint64_t before = (*k)++;
            if (group == KINDS_EXEMPT) {
                t->xpeople += (uint64_t)new_person;
                t->xdev += (uint64_t)new_dev;
            } else {
                t->people += (uint64_t)new_person;
                t->dev += (uint64_t)new_dev;
            }
            if (rcpt == 0 && persist && group == KINDS_COUNTED)
                check_crossing(c, &x, kind, before, *k);
        }
        pthread_mutex_unlock(&c->meta_mu);
        newly = 1;
    }
    for (int i = 0; i < x.crossed && !c->opt.quiet; i++)
        bg_warn("%s", x.msg[i]);
    return newly;
}

int bg_counters_add(bg_counters_t *c, const char *recipient, const char *pseudonym_hex,
                    int sensitive, int64_t t_ms)
{
    return bg_counters_add_subject(c, recipient, pseudonym_hex, sensitive, 0, 0, t_ms);
}

int bg_counters_add_ex(bg_counters_t *c, const char *recipient, const char *pseudonym_hex,
                       int sensitive, int exempt, int64_t t_ms)
{
    return bg_counters_add_subject(c, recipient, pseudonym_hex, sensitive, exempt, 0, t_ms);
}

int bg_counters_add_subject(bg_counters_t *c, const char *recipient, const char *pseudonym_hex,
                            int sensitive, int exempt, int by_device, int64_t t_ms)
{
    char hex[65];
    uint8_t id[16];
    if (c == NULL || parse_pseudonym(pseudonym_hex, hex, id) != 0) {
        errno = EINVAL;
        return -1;
    }
    int year = c->opt.year != 0 ? c->opt.year : bg_counters_year_of(t_ms);
    if (year != bg_counters_year_of(t_ms) || year < 1 || year > 65535)
        return 0; /* a tool counting another year */
    if (advance_year(c, year) != 0)
        return 0;
    int r = intern(c, recipient != NULL ? recipient : "");
    if (r < 0) {
        errno = ENOMEM;
        return -1;
    }
    int kind = exempt ? (sensitive ? KIND_XS : KIND_XNS) : (sensitive ? KIND_S : KIND_NS);
    return count(c, id, hex, year, r, kind, by_device != 0, 1, t_ms);
}

/* Whether SUBJECTS (a decision record's "subjects") names PSEUDONYM as
 * identified by its device ("by": "device"). O(subjects). */
static int subject_by_device(const json_t *subjects, const char *pseudonym)
{
    size_t i;
    const json_t *s;
    json_array_foreach(subjects, i, s)
    {
        if (str_is(json_object_get(s, "pseudonym"), pseudonym))
            return str_is(json_object_get(s, "by"), "device");
    }
    return 0;
}

/*
 * Count every subject of an audit decision RECORD whose PI left as PI
 * (bg_counters_json_finding_counts), at the record's "time". Returns the
 * number newly counted, or -1 when the record is not a decision.
 */
static int add_decision(bg_counters_t *c, const json_t *record)
{
    if (!str_is(json_object_get(record, "type"), "decision"))
        return -1;
    int64_t t = bg_report_record_time(record);
    if (t == BG_REPORT_NO_TIME)
        return 0;
    const char *rid =
        json_string_value(json_object_get(json_object_get(record, "recipient"), "id"));
    const json_t *fs = json_object_get(record, "findings");
    const json_t *subjects = json_object_get(record, "subjects");
    size_t i;
    const json_t *f;
    int n = 0;
    json_array_foreach(fs, i, f)
    {
        const char *subj = json_string_value(json_object_get(f, "subject"));
        if (subj == NULL || !bg_counters_json_finding_counts(record, f))
            continue;
        int exempt = bg_counters_basis_exempt(json_string_value(json_object_get(f, "basis")));
        if (bg_counters_add_subject(c, rid, subj, json_is_true(json_object_get(f, "sensitive")),
                                    exempt, subject_by_device(subjects, subj), t) == 1)
            n++;
    }
    return n;
}

/* ------------------------------------------------------------------------
 * The file
 * ------------------------------------------------------------------------ */

/* One line of the file; 0 counted or skipped as another year, -1 malformed. */
static int load_line(bg_counters_t *c, const char *line, size_t len, int year)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    const json_t *y = json_object_get(o, "year");
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const json_t *rv = json_object_get(o, "recipient");
    const char *subj = json_string_value(json_object_get(o, "subject"));
    int k = kind == NULL                                ? 0
            : strcmp(kind, "sensitive") == 0            ? KIND_S
            : strcmp(kind, "non_sensitive") == 0        ? KIND_NS
            : strcmp(kind, "exempt_sensitive") == 0     ? KIND_XS
            : strcmp(kind, "exempt_non_sensitive") == 0 ? KIND_XNS
                                                        : 0;
    char hex[65];
    uint8_t id[16];
    int rc = -1;
    if (!json_is_integer(y) || k == 0 || (!json_is_null(rv) && !json_is_string(rv)) ||
        parse_pseudonym(subj, hex, id) != 0)
        goto out;
    rc = 0;
    if (json_integer_value(y) != year)
        goto out;
    int r = intern(c, json_is_string(rv) ? json_string_value(rv) : "");
    int by_device = str_is(json_object_get(o, "by"), "device");
    if (r < 0 || count(c, id, hex, year, r, k, by_device, 0, 0) < 0)
        rc = -1;
out:
    json_decref(o);
    return rc;
}

/* Read the file, count YEAR's lines; cut a torn last line when writable. */
static int load_file(bg_counters_t *c, int fd, int year, char *err, size_t cap)
{
    FILE *fp = fdopen(dup(fd), "r");
    if (fp == NULL) {
        snprintf(err, cap, "%s: %s", c->path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    off_t good = 0;
    uint64_t lineno = 0, first_bad = 0;
    while ((n = getline(&line, &lcap, fp)) > 0) {
        lineno++;
        if (line[n - 1] != '\n')
            break; /* torn: handled below */
        good += n;
        if (n == 1)
            continue;
        if (load_line(c, line, (size_t)n - 1, year) != 0) {
            c->lines_skipped++;
            if (first_bad == 0)
                first_bad = lineno;
        } else {
            c->lines_loaded++;
        }
    }
    free(line);
    int rerr = ferror(fp);
    fclose(fp);
    if (rerr) {
        snprintf(err, cap, "%s: read error", c->path);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, cap, "%s: %s", c->path, strerror(errno));
        return -1;
    }
    if (st.st_size > good) {
        c->torn_cut = (uint64_t)(st.st_size - good);
        if (!c->opt.readonly) {
            if (ftruncate(fd, good) != 0 || fdatasync(fd) != 0) {
                snprintf(err, cap, "%s: cannot cut a torn last line: %s", c->path, strerror(errno));
                return -1;
            }
            if (!c->opt.quiet)
                bg_warn("yearly counters %s: cut %" PRIu64
                        " bytes of a torn last line (a crash while appending)",
                        c->path, c->torn_cut);
        }
    }
    c->file_size = good;
    if (c->lines_skipped > 0 && !c->opt.quiet)
        bg_warn("yearly counters %s: skipped %" PRIu64
                " unreadable line(s), the first at line %" PRIu64,
                c->path, c->lines_skipped, first_bad);
    return 0;
}

static void *sync_main(void *arg)
{
    bg_counters_t *c = arg;
    pthread_mutex_lock(&c->sync_mu);
    while (!c->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&c->sync_cond, &c->sync_mu, &ts);
        if (__atomic_exchange_n(&c->dirty, 0, __ATOMIC_ACQ_REL)) {
            pthread_mutex_unlock(&c->sync_mu);
            if (fdatasync(c->fd) != 0)
                note_error(c, "fdatasync: %s", strerror(errno));
            pthread_mutex_lock(&c->sync_mu);
        }
    }
    pthread_mutex_unlock(&c->sync_mu);
    return NULL;
}

void bg_counters_options_init(bg_counters_options_t *o)
{
    memset(o, 0, sizeof *o);
    bg_counters_thresholds_default(&o->thresholds);
}

bg_counters_t *bg_counters_open_ex(const bg_counters_options_t *opt, char *err, size_t cap)
{
    bg_counters_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    c->opt = *opt;
    c->fd = -1;
    c->thr = opt->thresholds;
    pthread_mutex_init(&c->meta_mu, NULL);
    pthread_mutex_init(&c->file_mu, NULL);
    pthread_mutex_init(&c->sync_mu, NULL);
    pthread_cond_init(&c->sync_cond, NULL);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&c->stripes[i].mu, NULL);
    int year = opt->year != 0 ? opt->year : bg_counters_year_of((int64_t)now_ms(c));
    c->year = year;
    c->opt.path = NULL;
    if (opt->path == NULL)
        return c;
    c->path = strdup(opt->path);
    if (c->path == NULL) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    int fd = opt->readonly ? open(opt->path, O_RDONLY | O_CLOEXEC)
                           : open(opt->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, cap, "cannot open %s: %s", opt->path, strerror(errno));
        goto fail;
    }
    if (!opt->readonly && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, cap, "%s is in use by another bordergate (locked)", opt->path);
        close(fd);
        goto fail;
    }
    if (load_file(c, fd, year, err, cap) != 0) {
        close(fd);
        goto fail;
    }
    if (opt->readonly) {
        close(fd);
        return c;
    }
    c->fd = fd;
    if (pthread_create(&c->syncer, NULL, sync_main, c) != 0) {
        snprintf(err, cap, "cannot start the sync thread");
        goto fail;
    }
    c->has_syncer = 1;
    bg_counters_snapshot_t s;
    bg_counters_snapshot(c, 0, &s);
    if (!opt->quiet && s.level != BG_VOLUME_NONE)
        bg_warn("yearly volume %d so far: non-sensitive PI of %" PRIu64
                " people, sensitive PI of %" PRIu64
                " people went abroad: %s is needed (CAC 2024 Provisions Arts. 7-8)",
                s.year, s.non_sensitive, s.sensitive,
                s.level == BG_VOLUME_ASSESSMENT
                    ? "a CAC security assessment"
                    : "a standard contract or PI protection certification");
    bg_counters_snapshot_free(&s);
    return c;
fail:
    bg_counters_close(c);
    return NULL;
}

bg_counters_t *bg_counters_open(const char *path, char *err, size_t cap)
{
    bg_counters_options_t o;
    bg_counters_options_init(&o);
    o.path = path;
    return bg_counters_open_ex(&o, err, cap);
}

void bg_counters_set_thresholds(bg_counters_t *c, const bg_counters_thresholds_t *t)
{
    pthread_mutex_lock(&c->meta_mu);
    c->thr = *t;
    pthread_mutex_unlock(&c->meta_mu);
}

void bg_counters_close(bg_counters_t *c)
{
    if (c == NULL)
        return;
    if (c->has_syncer) {
        pthread_mutex_lock(&c->sync_mu);
        c->stop = 1;
        pthread_cond_signal(&c->sync_cond);
        pthread_mutex_unlock(&c->sync_mu);
        pthread_join(c->syncer, NULL);
    }
    if (c->fd >= 0) {
        if (c->need_cut && ftruncate(c->fd, c->file_size) != 0 && !c->opt.quiet)
            bg_error("yearly counters %s: cannot cut a partial line: %s", c->path, strerror(errno));
        if (fdatasync(c->fd) != 0 && !c->opt.quiet)
            bg_error("yearly counters %s: fdatasync: %s", c->path, strerror(errno));
        close(c->fd); /* releases the flock */
    }
    for (int i = 0; i < STRIPES; i++) {
        free(c->stripes[i].tab);
        pthread_mutex_destroy(&c->stripes[i].mu);
    }
    for (int i = 1; i <= c->nrcpt; i++)
        free(c->rname[i]);
    pthread_mutex_destroy(&c->meta_mu);
    pthread_mutex_destroy(&c->file_mu);
    pthread_mutex_destroy(&c->sync_mu);
    pthread_cond_destroy(&c->sync_cond);
    free(c->path);
    free(c);
}

/* ------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------ */

static int by_people(const void *a, const void *b)
{
    const bg_counters_recipient_t *x = a, *y = b;
    if (x->people != y->people)
        return x->people < y->people ? 1 : -1;
    return strcmp(x->recipient, y->recipient);
}

void bg_counters_snapshot(bg_counters_t *c, int64_t t_ms, bg_counters_snapshot_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->meta_mu);
    int year = c->opt.year != 0 ? c->opt.year : t_ms > 0 ? bg_counters_year_of(t_ms) : c->year;
    out->year = year;
    out->thresholds = c->thr;
    out->lines_loaded = c->lines_loaded;
    out->lines_skipped = c->lines_skipped;
    out->torn_bytes_cut = c->torn_cut;
    out->write_errors = c->write_errors;
    snprintf(out->last_error, sizeof out->last_error, "%s", c->last_error);
    /* Still none (the memset): said again because clang's analyzer takes
     * the snprintf into a member to overwrite all of *OUT. */
    out->recipients = NULL;
    out->nrecipients = 0;
    if (year == c->year) {
        out->non_sensitive = c->total.ns;
        out->sensitive = c->total.s;
        out->people = c->total.people;
        out->exempt_non_sensitive = c->total.xns;
        out->exempt_sensitive = c->total.xs;
        out->exempt_people = c->total.xpeople;
        out->people_by_device = c->total.dev;
        out->exempt_people_by_device = c->total.xdev;
        size_t n = 0;
        for (int i = 1; i <= c->nrcpt; i++)
            n += c->rtally[i].people > 0 || c->rtally[i].xpeople > 0;
        out->recipients = n > 0 ? calloc(n, sizeof *out->recipients) : NULL;
        for (int i = 1; out->recipients != NULL && i <= c->nrcpt; i++) {
            const tally_t *t = &c->rtally[i];
            if (t->people == 0 && t->xpeople == 0)
                continue;
            bg_counters_recipient_t *r = &out->recipients[out->nrecipients];
            r->recipient = strdup(c->rname[i]);
            if (r->recipient == NULL)
                break;
            r->non_sensitive = t->ns;
            r->sensitive = t->s;
            r->people = t->people;
            r->exempt_non_sensitive = t->xns;
            r->exempt_sensitive = t->xs;
            r->exempt_people = t->xpeople;
            r->people_by_device = t->dev;
            r->exempt_people_by_device = t->xdev;
            out->nrecipients++;
        }
    }
    pthread_mutex_unlock(&c->meta_mu);
    out->level = bg_counters_level(&out->thresholds, out->non_sensitive, out->sensitive);
    for (size_t i = 0; i < out->nrecipients; i++) {
        bg_counters_recipient_t *r = &out->recipients[i];
        r->own_level = bg_counters_level(&out->thresholds, r->non_sensitive, r->sensitive);
        /* Any PI that left (outside the exemptions) needs the mechanism the
         * handler's total calls for (at least this recipient's own); a
         * recipient that received only exempt transfers needs none. */
        r->level = r->people == 0              ? BG_VOLUME_NONE
                   : out->level > r->own_level ? out->level
                                               : r->own_level;
    }
    if (out->nrecipients > 1)
        qsort(out->recipients, out->nrecipients, sizeof *out->recipients, by_people);
}

void bg_counters_snapshot_free(bg_counters_snapshot_t *s)
{
    for (size_t i = 0; i < s->nrecipients; i++)
        free(s->recipients[i].recipient);
    free(s->recipients);
    s->recipients = NULL;
    s->nrecipients = 0;
}

/* {"non_sensitive", "sensitive", "people", "people_by_device"} of the
 * exempt transfers. */
static json_t *exempt_json(uint64_t ns, uint64_t se, uint64_t people, uint64_t by_device)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "non_sensitive", (json_int_t)ns, "sensitive",
                     (json_int_t)se, "people", (json_int_t)people, "people_by_device",
                     (json_int_t)by_device);
}

json_t *bg_counters_snapshot_json(const bg_counters_snapshot_t *s, int with_recipients)
{
    json_t *o = json_object();
    json_object_set_new(o, "year", json_integer(s->year));
    json_object_set_new(o, "non_sensitive", json_integer((json_int_t)s->non_sensitive));
    json_object_set_new(o, "sensitive", json_integer((json_int_t)s->sensitive));
    json_object_set_new(o, "people", json_integer((json_int_t)s->people));
    json_object_set_new(o, "people_by_device", json_integer((json_int_t)s->people_by_device));
    json_object_set_new(o, "status", json_string(bg_volume_level_name(s->level)));
    if (with_recipients) /* the volumes document; /stats keeps its members */
        json_object_set_new(o, "exempt",
                            exempt_json(s->exempt_non_sensitive, s->exempt_sensitive,
                                        s->exempt_people, s->exempt_people_by_device));
    json_t *t = json_object();
    json_object_set_new(t, "contract_non_sensitive",
                        json_integer((json_int_t)s->thresholds.contract_non_sensitive));
    json_object_set_new(t, "assessment_non_sensitive",
                        json_integer((json_int_t)s->thresholds.assessment_non_sensitive));
    json_object_set_new(t, "contract_sensitive",
                        json_integer((json_int_t)s->thresholds.contract_sensitive));
    json_object_set_new(t, "assessment_sensitive",
                        json_integer((json_int_t)s->thresholds.assessment_sensitive));
    json_object_set_new(o, "thresholds", t);
    if (with_recipients) {
        json_t *a = json_array();
        for (size_t i = 0; i < s->nrecipients; i++) {
            const bg_counters_recipient_t *r = &s->recipients[i];
            json_t *e = json_object();
            json_object_set_new(e, "recipient",
                                r->recipient[0] ? json_string(r->recipient) : json_null());
            json_object_set_new(e, "non_sensitive", json_integer((json_int_t)r->non_sensitive));
            json_object_set_new(e, "sensitive", json_integer((json_int_t)r->sensitive));
            json_object_set_new(e, "people", json_integer((json_int_t)r->people));
            json_object_set_new(e, "people_by_device",
                                json_integer((json_int_t)r->people_by_device));
            json_object_set_new(e, "status", json_string(bg_volume_level_name(r->level)));
            json_object_set_new(e, "own_volume_status",
                                json_string(bg_volume_level_name(r->own_level)));
            json_object_set_new(e, "exempt",
                                exempt_json(r->exempt_non_sensitive, r->exempt_sensitive,
                                            r->exempt_people, r->exempt_people_by_device));
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "recipients", a);
    }
    return o;
}

/* ------------------------------------------------------------------------
 * Yearly volumes (`audit volumes`, the dashboard's /api/volumes)
 * ------------------------------------------------------------------------ */

static int vol_record(void *arg, const json_t *rec)
{
    add_decision(arg, rec);
    return 0;
}

int bg_counters_volumes(const char *counters, char *const *ops, size_t nops, const char *prefix,
                        int year, const bg_counters_thresholds_t *thresholds,
                        bg_counters_volumes_t *v, char *err, size_t errcap)
{
    char **files = NULL;
    size_t nfiles = 0;
    bg_report_scan_stats_t st;
    memset(v, 0, sizeof *v);
    memset(&st, 0, sizeof st);
    if (year == 0)
        year = bg_counters_year_of((int64_t)bg_util_wall_ms());
    bg_counters_options_t o;
    bg_counters_options_init(&o);
    o.year = year;
    o.quiet = 1;
    o.readonly = 1;
    o.path = counters;
    if (thresholds != NULL)
        o.thresholds = *thresholds;
    bg_counters_t *c = bg_counters_open_ex(&o, err, errcap);
    if (c == NULL)
        return -1;
    if (counters == NULL) {
        if (bg_report_expand(ops, nops, prefix, &files, &nfiles, err, errcap) != 0 ||
            bg_report_scan((const char *const *)files, nfiles, bg_report_want_decision, vol_record,
                           c, &st, err, errcap) != 0) {
            if (files != NULL)
                bg_audit_free_list(files, nfiles);
            bg_counters_close(c);
            return -1;
        }
        bg_audit_free_list(files, nfiles);
    }
    v->from_counters = counters != NULL;
    v->year = c->opt.year;
    v->lines_loaded = c->lines_loaded;
    v->lines_skipped = c->lines_skipped;
    v->files = st.files;
    v->decisions = st.records;
    v->unparsable = st.unparsable;
    v->torn = st.torn;
    bg_counters_snapshot(c, 0, &v->snap);
    bg_counters_close(c);
    return 0;
}

json_t *bg_counters_volumes_doc(const bg_counters_volumes_t *v)
{
    json_t *doc = bg_counters_snapshot_json(&v->snap, 1);
    json_object_set_new(doc, "source", json_string(v->from_counters ? "counters" : "audit"));
    if (!v->from_counters) {
        json_object_set_new(doc, "files", json_integer((json_int_t)v->files));
        json_object_set_new(doc, "decisions", json_integer((json_int_t)v->decisions));
    } else {
        json_object_set_new(doc, "lines", json_integer((json_int_t)v->lines_loaded));
        json_object_set_new(doc, "lines_skipped", json_integer((json_int_t)v->lines_skipped));
    }
    return doc;
}

void bg_counters_volumes_free(bg_counters_volumes_t *v)
{
    bg_counters_snapshot_free(&v->snap);
}

json_t *bg_counters_volumes_json(const char *counters, const char *audit_dir, const char *prefix,
                                 int year, const bg_counters_thresholds_t *thresholds, char *err,
                                 size_t errcap)
{
    bg_counters_volumes_t v;
    char *ops[2] = {(char *)audit_dir, NULL};
    if (bg_counters_volumes(counters, ops, audit_dir != NULL ? 1 : 0,
                            prefix != NULL ? prefix : "audit", year, thresholds, &v, err,
                            errcap) != 0)
        return NULL;
    json_t *doc = bg_counters_volumes_doc(&v);
    bg_counters_volumes_free(&v);
    return doc;
}
