#include "geo/geo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Answers
 * ------------------------------------------------------------------------ */

const char *bg_geo_region_name(bg_geo_region_t region)
{
    switch (region) {
    case BG_GEO_DOMESTIC: return "domestic";
    case BG_GEO_CROSS_BORDER: return "cross-border";
    case BG_GEO_UNKNOWN: break;
    }
    return "unknown";
}

int bg_geo_is_cross_border(const bg_geo_answer_t *answer)
{
    return answer == NULL || answer->region != BG_GEO_DOMESTIC;
}

int bg_geo_country_valid(const char *cc)
{
    return cc != NULL && cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z' &&
           cc[2] == '\0';
}

static void answer_reset(bg_geo_answer_t *out)
{
    memset(out, 0, sizeof *out);
    out->region = BG_GEO_UNKNOWN;
}

/* CC must be valid. Only CN is domestic: HK, MO and TW are separate customs
 * and data-protection territories for PIPL transfer rules. */
static void answer_set_country(bg_geo_answer_t *out, const char *cc)
{
    memcpy(out->country, cc, 2);
    out->country[2] = '\0';
    out->region = (cc[0] == 'C' && cc[1] == 'N') ? BG_GEO_DOMESTIC : BG_GEO_CROSS_BORDER;
}

/* Cut sources that do not fit visibly rather than silently. */
__attribute__((format(printf, 2, 3))) static void answer_set_source(bg_geo_answer_t *out,
                                                                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out->source, sizeof out->source, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof out->source)
        memcpy(out->source + sizeof out->source - 4, "...", 4);
}

/* ------------------------------------------------------------------------
 * Addresses
 * ------------------------------------------------------------------------ */

typedef enum {
    ADDR_UNSUPPORTED = 0,
    ADDR_V4,
    ADDR_V6,
    ADDR_TEREDO, /* an IPv6 address, but no database answer is trusted */
} addr_kind_t;

/* The address the packets really go to, as family + bytes + sockaddr. */
typedef struct {
    addr_kind_t kind;
    int family;
    uint8_t bytes[16];
    struct sockaddr_storage ss;
} addr_t;

static const uint8_t V4MAPPED_PREFIX[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t NAT64_PREFIX[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

static void addr_set_v4(addr_t *a, const uint8_t *b)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    a->kind = ADDR_V4;
    a->family = AF_INET;
    memcpy(a->bytes, b, 4);
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, b, 4);
}

/*
 * IPv4-mapped and NAT64 (RFC 6052 well-known prefix) addresses carry the
 * IPv4 address the connection really reaches, so they are classified as
 * that address whatever the database does with them. Teredo (2001::/32)
 * hides its endpoint behind a relay, and databases that alias it to IPv4
 * answer with the Teredo server's country: never trusted.
 */
static void addr_normalize(const struct sockaddr *sa, addr_t *a)
{
    memset(a, 0, sizeof *a);
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        addr_set_v4(a, (const uint8_t *)&sin->sin_addr);
        return;
    }
    if (sa->sa_family != AF_INET6)
        return;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    const uint8_t *b = sin6->sin6_addr.s6_addr;
    if (memcmp(b, V4MAPPED_PREFIX, 12) == 0 || memcmp(b, NAT64_PREFIX, 12) == 0) {
        addr_set_v4(a, b + 12);
        return;
    }
    struct sockaddr_in6 *out = (struct sockaddr_in6 *)&a->ss;
    a->kind = (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) ? ADDR_TEREDO : ADDR_V6;
    a->family = AF_INET6;
    memcpy(a->bytes, b, 16);
    out->sin6_family = AF_INET6;
    memcpy(&out->sin6_addr, b, 16);
}

/* First PREFIX bits of A and B equal? */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return ((a[full] ^ b[full]) & mask) == 0;
}

/* ------------------------------------------------------------------------
 * Databases
 * ------------------------------------------------------------------------ */

struct bg_geo_db {
    atomic_uint refs;
    MMDB_s mmdb;
    char *path;
    char label[64]; /* sanitized database_type "@" YYYY-MM-DD */
};

/* How much of the tree bg_geo_db_open may look at: a few ms at worst; a
 * country database answers within its first few records. */
#define PROBE_MAX_NODES 100000u
#define PROBE_MAX_DATA 1024u

typedef enum { COUNTRY_OK, COUNTRY_ABSENT, COUNTRY_BAD, COUNTRY_ERROR } country_status_t;

/* Read KEY.iso_code of ENTRY into CC (3 bytes) when it is a valid code. */
static country_status_t entry_country(MMDB_entry_s entry, const char *key, char *cc)
{
    MMDB_entry_data_s d;
    int rc = MMDB_get_value(&entry, &d, key, "iso_code", NULL);
    /* libmaxminddb answers a missing map key with "path does not match"
     * (the same code as for a "country" that is not a map): no country. */
    if (rc == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR || (rc == MMDB_SUCCESS && !d.has_data))
        return COUNTRY_ABSENT;
    if (rc != MMDB_SUCCESS)
        return COUNTRY_ERROR;
    if (d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
        return COUNTRY_BAD;
    char tmp[3] = {d.utf8_string[0], d.utf8_string[1], '\0'};
    if (!bg_geo_country_valid(tmp))
        return COUNTRY_BAD;
    memcpy(cc, tmp, 3);
    return COUNTRY_OK;
}

/*
 * Walk the search tree depth-first from the root until a data record with a
 * country.iso_code turns up. Fills WHY and returns -1 when the tree or data
 * is broken where we looked, or when no such record is found in the budget.
 */
static int db_probe(const MMDB_s *mmdb, char *why, size_t whycap)
{
    uint32_t stack[512];
    size_t sp = 0;
    unsigned nodes = 0, data = 0;

    stack[sp++] = 0;
    while (sp > 0 && nodes < PROBE_MAX_NODES && data < PROBE_MAX_DATA) {
        MMDB_search_node_s node;
        uint32_t n = stack[--sp];
        nodes++;
        if (MMDB_read_node(mmdb, n, &node) != MMDB_SUCCESS) {
            snprintf(why, whycap, "corrupt search tree (node %u unreadable)", (unsigned)n);
            return -1;
        }
        /* Right pushed first so the lowest addresses are looked at first. */
        const uint8_t types[2] = {node.right_record_type, node.left_record_type};
        const uint64_t recs[2] = {node.right_record, node.left_record};
        const MMDB_entry_s entries[2] = {node.right_record_entry, node.left_record_entry};
        for (int i = 0; i < 2; i++) {
            char cc[3];
            switch (types[i]) {
            case MMDB_RECORD_TYPE_SEARCH_NODE:
                if (sp == sizeof stack / sizeof stack[0]) {
                    snprintf(why, whycap, "corrupt search tree (deeper than 128 bits)");
                    return -1;
                }
                stack[sp++] = (uint32_t)recs[i];
                break;
            case MMDB_RECORD_TYPE_EMPTY: break;
            case MMDB_RECORD_TYPE_DATA:
                data++;
                switch (entry_country(entries[i], "country", cc)) {
                case COUNTRY_OK: return 0;
                case COUNTRY_ERROR:
                    snprintf(why, whycap, "corrupt data section (record at offset %u unreadable)",
                             (unsigned)entries[i].offset);
                    return -1;
                case COUNTRY_ABSENT:
                case COUNTRY_BAD: break;
                }
                break;
            default:
                snprintf(why, whycap, "corrupt search tree (node %u points outside the file)",
                         (unsigned)n);
                return -1;
            }
        }
    }
    if (data == 0)
        snprintf(why, whycap, "the database holds no networks");
    else
        snprintf(why, whycap,
                 "no country.iso_code in the first %u records looked at: not a country or city "
                 "database (database_type '%s')",
                 data, mmdb->metadata.database_type ? mmdb->metadata.database_type : "");
    return -1;
}

static void db_make_label(bg_geo_db_t *db)
{
    const char *type = db->mmdb.metadata.database_type ? db->mmdb.metadata.database_type : "";
    char clean[48];
    size_t n = 0;
    /* The type comes from the file and lands in logs and audit records:
     * keep it to a safe alphabet. */
    for (; n < sizeof clean - 1 && type[n] != '\0'; n++) {
        char c = type[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == '+';
        clean[n] = ok ? c : '_';
    }
    clean[n] = '\0';
    if (n == 0)
        snprintf(clean, sizeof clean, "unnamed");

    char date[16] = "unknown-date";
    uint64_t epoch = db->mmdb.metadata.build_epoch;
    if (epoch <= (uint64_t)INT64_MAX / 2) {
        time_t t = (time_t)epoch;
        struct tm tm;
        if (gmtime_r(&t, &tm) != NULL)
            strftime(date, sizeof date, "%Y-%m-%d", &tm);
    }
    snprintf(db->label, sizeof db->label, "%s@%s", clean, date);
}

bg_geo_db_t *bg_geo_db_open(const char *path, char *err, size_t errcap)
{
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errcap, "geo database: no file name given");
        return NULL;
    }

    /* libmaxminddb reports a missing file and a file that is not a database
     * with codes that lose errno and the difference between them; ask the
     * file system first so the operator reads the real reason. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "geo database '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    int st_rc = fstat(fd, &st);
    int st_errno = errno;
    close(fd);
    if (st_rc != 0) {
        snprintf(err, errcap, "geo database '%s': %s", path, strerror(st_errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "geo database '%s': not a regular file", path);
        return NULL;
    }
    if (st.st_size == 0) {
        snprintf(err, errcap, "geo database '%s': empty file, not a MaxMind DB", path);
        return NULL;
    }

    bg_geo_db_t *db = calloc(1, sizeof *db);
    if (db == NULL || (db->path = strdup(path)) == NULL) {
        snprintf(err, errcap, "geo database '%s': out of memory", path);
        free(db);
        return NULL;
    }

    /* MMDB_open frees what it allocated when it fails. */
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);
    if (rc != MMDB_SUCCESS) {
        int saved = errno;
        switch (rc) {
        case MMDB_INVALID_METADATA_ERROR:
            snprintf(err, errcap,
                     "geo database '%s': not a MaxMind DB file (no valid metadata section; "
                     "truncated, or another format)",
                     path);
            break;
        case MMDB_UNKNOWN_DATABASE_FORMAT_ERROR:
            snprintf(err, errcap, "geo database '%s': unsupported MaxMind DB format version", path);
            break;
        case MMDB_CORRUPT_SEARCH_TREE_ERROR:
        case MMDB_INVALID_DATA_ERROR:
            snprintf(err, errcap, "geo database '%s': corrupt MaxMind DB (%s)", path,
                     MMDB_strerror(rc));
            break;
        case MMDB_FILE_OPEN_ERROR:
        case MMDB_IO_ERROR:
            snprintf(err, errcap, "geo database '%s': %s (%s)", path, MMDB_strerror(rc),
                     strerror(saved));
            break;
        default: snprintf(err, errcap, "geo database '%s': %s", path, MMDB_strerror(rc)); break;
        }
        free(db->path);
        free(db);
        return NULL;
    }

    char why[256];
    if (db_probe(&db->mmdb, why, sizeof why) != 0) {
        snprintf(err, errcap, "geo database '%s': %s", path, why);
        MMDB_close(&db->mmdb);
        free(db->path);
        free(db);
        return NULL;
    }

    db_make_label(db);
    atomic_init(&db->refs, 1);
    return db;
}

bg_geo_db_t *bg_geo_db_ref(bg_geo_db_t *db)
{
    /* Taking a reference needs no ordering: the caller already holds one. */
    if (db != NULL)
        atomic_fetch_add_explicit(&db->refs, 1, memory_order_relaxed);
    return db;
}

void bg_geo_db_unref(bg_geo_db_t *db)
{
    if (db == NULL)
        return;
    /* acq_rel: every reader's last look-up happens before the close. */
    if (atomic_fetch_sub_explicit(&db->refs, 1, memory_order_acq_rel) != 1)
        return;
    MMDB_close(&db->mmdb);
    free(db->path);
    free(db);
}

const char *bg_geo_db_path(const bg_geo_db_t *db)
{
    return db->path;
}

const char *bg_geo_db_type(const bg_geo_db_t *db)
{
    return db->mmdb.metadata.database_type ? db->mmdb.metadata.database_type : "";
}

const char *bg_geo_db_description(const bg_geo_db_t *db)
{
    MMDB_description_s **d = db->mmdb.metadata.description.descriptions;
    size_t count = db->mmdb.metadata.description.count;
    for (size_t i = 0; i < count; i++) {
        if (d[i]->language != NULL && strcmp(d[i]->language, "en") == 0 &&
            d[i]->description != NULL)
            return d[i]->description;
    }
    if (count > 0 && d[0]->description != NULL)
        return d[0]->description;
    return "";
}

uint64_t bg_geo_db_build_epoch(const bg_geo_db_t *db)
{
    return db->mmdb.metadata.build_epoch;
}

int bg_geo_db_ip_version(const bg_geo_db_t *db)
{
    return db->mmdb.metadata.ip_version;
}

const char *bg_geo_db_label(const bg_geo_db_t *db)
{
    return db->label;
}

uint64_t bg_geo_db_age(const bg_geo_db_t *db, uint64_t now)
{
    uint64_t built = db->mmdb.metadata.build_epoch;
    return now > built ? now - built : 0;
}

/* The database step for an already normalized address. */
static int db_lookup(const bg_geo_db_t *db, const addr_t *a, bg_geo_answer_t *out)
{
    if (db == NULL) {
        answer_set_source(out, "no-database");
        return -1;
    }
    if (a->kind == ADDR_UNSUPPORTED) {
        answer_set_source(out, "unsupported-address");
        return -1;
    }
    if (a->kind == ADDR_TEREDO) {
        answer_set_source(out, "db:%s:teredo", db->label);
        return 0;
    }

    int mmdb_error = MMDB_SUCCESS;
    MMDB_lookup_result_s r =
        MMDB_lookup_sockaddr(&db->mmdb, (const struct sockaddr *)&a->ss, &mmdb_error);
    if (mmdb_error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR) {
        answer_set_source(out, "db:%s:no-ipv6", db->label);
        return 0;
    }
    if (mmdb_error != MMDB_SUCCESS) {
        answer_set_source(out, "db:%s:error", db->label);
        return -1;
    }
    if (!r.found_entry) {
        answer_set_source(out, "db:%s:not-found", db->label);
        return 0;
    }

    char cc[3];
    /* registered_country is informative only; its failures change nothing. */
    if (entry_country(r.entry, "registered_country", cc) == COUNTRY_OK)
        memcpy(out->registered, cc, 3);

    /* No fallback to registered_country: GeoIP2 leaves country out exactly
     * where the location is uncertain (anycast, satellite, ...), and a
     * block registered in CN may well be served abroad. Falling back could
     * only turn "unknown" into "domestic" or into a guess. */
    switch (entry_country(r.entry, "country", cc)) {
    case COUNTRY_OK:
        answer_set_country(out, cc);
        answer_set_source(out, "db:%s", db->label);
        return 0;
    case COUNTRY_ABSENT: answer_set_source(out, "db:%s:no-country", db->label); return 0;
    case COUNTRY_BAD: answer_set_source(out, "db:%s:bad-country", db->label); return 0;
    case COUNTRY_ERROR: break;
    }
    answer_set_source(out, "db:%s:error", db->label);
    return -1;
}

int bg_geo_lookup(const bg_geo_db_t *db, const struct sockaddr *sa, bg_geo_answer_t *out)
{
    addr_t a;
    answer_reset(out);
    addr_normalize(sa, &a);
    return db_lookup(db, &a, out);
}

/* ------------------------------------------------------------------------
 * Overrides
 * ------------------------------------------------------------------------ */

#define HOST_MAX 253 /* longest DNS name in text form, without the final dot */

typedef struct {
    char *key; /* "api.example.com" (exact) or ".example.com" (suffix) */
    char cc[3];
} host_entry_t;

typedef struct {
    int family;
    unsigned prefix;
    uint8_t bytes[16];
    char cc[3];
    char text[INET6_ADDRSTRLEN + 5]; /* normalized "addr/prefix" */
} cidr_entry_t;

struct bg_geo_overrides {
    host_entry_t *hosts; /* sorted by key, for bsearch */
    size_t nhosts, caphosts;
    cidr_entry_t *cidrs; /* longest prefix first: the first match wins */
    size_t ncidrs, capcidrs;
};

bg_geo_overrides_t *bg_geo_overrides_new(void)
{
    return calloc(1, sizeof(bg_geo_overrides_t));
}

void bg_geo_overrides_free(bg_geo_overrides_t *ov)
{
    if (ov == NULL)
        return;
    for (size_t i = 0; i < ov->nhosts; i++)
        free(ov->hosts[i].key);
    free(ov->hosts);
    free(ov->cidrs);
    free(ov);
}

size_t bg_geo_overrides_count(const bg_geo_overrides_t *ov)
{
    return ov == NULL ? 0 : ov->nhosts + ov->ncidrs;
}

static int check_country(const char *what, const char *subject, const char *country, char *err,
                         size_t errcap)
{
    if (bg_geo_country_valid(country))
        return 0;
    snprintf(err, errcap,
             "%s override '%s': country '%s' is not a two-letter uppercase ISO 3166 code "
             "(e.g. CN, HK, US)",
             what, subject, country ? country : "");
    return -1;
}

/* Index of KEY in the sorted host table, or where it would go (*found 0). */
static size_t host_find(const bg_geo_overrides_t *ov, const char *key, bool *found)
{
    size_t lo = 0, hi = ov->nhosts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ov->hosts[mid].key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/*
 * Validate PATTERN and write its table key into KEY (HOST_MAX + 2 bytes):
 * lowercase, no trailing dot, "." prepended for suffixes.
 */
static int host_pattern_key(const char *pattern, char *key, char *err, size_t errcap)
{
    const char *name = pattern;
    bool suffix = false;
    if (name[0] == '*' && name[1] == '.') {
        suffix = true;
        name += 2;
    } else if (name[0] == '.') {
        suffix = true;
        name += 1;
    }
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0) {
        snprintf(err, errcap, "host override '%s': no host name", pattern);
        return -1;
    }
    if (len > HOST_MAX) {
        snprintf(err, errcap, "host override '%.40s...': longer than %d characters", pattern,
                 HOST_MAX);
        return -1;
    }

    size_t k = 0, label = 0;
    bool all_numeric = true;
    if (suffix)
        key[k++] = '.';
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0) {
                snprintf(err, errcap, "host override '%s': empty label", pattern);
                return -1;
            }
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_') {
            all_numeric = false;
            label++;
        } else if (c >= '0' && c <= '9') {
            label++;
        } else if (c == '*') {
            snprintf(err, errcap,
                     "host override '%s': '*' is only allowed as a leading '*.' (suffix)", pattern);
            return -1;
        } else if (c == ':') {
            snprintf(err, errcap, "host override '%s': an IP address; use a CIDR override",
                     pattern);
            return -1;
        } else {
            snprintf(err, errcap,
                     "host override '%s': character '%c' is not allowed in a host name", pattern,
                     (c > 32 && c < 127) ? c : '?');
            return -1;
        }
        if (label > 63) {
            snprintf(err, errcap, "host override '%s': a label is longer than 63 characters",
                     pattern);
            return -1;
        }
        key[k++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    if (label == 0) {
        snprintf(err, errcap, "host override '%s': empty label", pattern);
        return -1;
    }
    if (all_numeric) {
        snprintf(err, errcap, "host override '%s': an IP address; use a CIDR override", pattern);
        return -1;
    }
    key[k] = '\0';
    return 0;
}

int bg_geo_overrides_add_host(bg_geo_overrides_t *ov, const char *pattern, const char *country,
                              char *err, size_t errcap)
{
    char key[HOST_MAX + 2];
    if (pattern == NULL)
        pattern = "";
    if (host_pattern_key(pattern, key, err, errcap) != 0)
        return -1;
    if (check_country("host", pattern, country, err, errcap) != 0)
        return -1;

    bool found;
    size_t at = host_find(ov, key, &found);
    if (found) {
        snprintf(err, errcap, "host override '%s': '%s' is already pinned to %s", pattern, key,
                 ov->hosts[at].cc);
        return -1;
    }
    if (ov->nhosts == ov->caphosts) {
        size_t cap = ov->caphosts ? ov->caphosts * 2 : 16;
        host_entry_t *h = realloc(ov->hosts, cap * sizeof *h);
        if (h == NULL) {
            snprintf(err, errcap, "host override '%s': out of memory", pattern);
            return -1;
        }
        ov->hosts = h;
        ov->caphosts = cap;
    }
    char *dup = strdup(key);
    if (dup == NULL) {
        snprintf(err, errcap, "host override '%s': out of memory", pattern);
        return -1;
    }
    /* Insertion keeps the table sorted: O(N) per add, done once per policy. */
    memmove(&ov->hosts[at + 1], &ov->hosts[at], (ov->nhosts - at) * sizeof *ov->hosts);
    ov->hosts[at].key = dup;
    memcpy(ov->hosts[at].cc, country, 3);
    ov->nhosts++;
    return 0;
}

int bg_geo_overrides_add_cidr(bg_geo_overrides_t *ov, const char *cidr, const char *country,
                              char *err, size_t errcap)
{
    char addr[INET6_ADDRSTRLEN + 1];
    if (cidr == NULL)
        cidr = "";
    const char *slash = strchr(cidr, '/');
    size_t alen = slash ? (size_t)(slash - cidr) : strlen(cidr);
    if (alen == 0 || alen >= sizeof addr) {
        snprintf(err, errcap, "CIDR override '%s': expected address/prefix-length", cidr);
        return -1;
    }
    memcpy(addr, cidr, alen);
    addr[alen] = '\0';

    cidr_entry_t e;
    memset(&e, 0, sizeof e);
    unsigned max;
    if (inet_pton(AF_INET, addr, e.bytes) == 1) {
        e.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, e.bytes) == 1) {
        e.family = AF_INET6;
        max = 128;
    } else {
        snprintf(err, errcap, "CIDR override '%s': '%s' is not an IPv4 or IPv6 address", cidr,
                 addr);
        return -1;
    }

    e.prefix = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        unsigned v = 0;
        size_t digits = 0;
        for (; p[digits] >= '0' && p[digits] <= '9' && digits < 4; digits++)
            v = v * 10 + (unsigned)(p[digits] - '0');
        if (digits == 0 || p[digits] != '\0' || v > max) {
            snprintf(err, errcap, "CIDR override '%s': prefix length must be 0-%u", cidr, max);
            return -1;
        }
        e.prefix = v;
    }

    /* Host bits set: refuse, and say what was probably meant. */
    uint8_t masked[16];
    memset(masked, 0, sizeof masked);
    memcpy(masked, e.bytes, e.prefix / 8);
    if (e.prefix % 8)
        masked[e.prefix / 8] = (uint8_t)(e.bytes[e.prefix / 8] & (0xff << (8 - e.prefix % 8)));
    if (memcmp(masked, e.bytes, max / 8) != 0) {
        char want[INET6_ADDRSTRLEN];
        inet_ntop(e.family, masked, want, sizeof want);
        snprintf(err, errcap, "CIDR override '%s': bits set after the prefix; did you mean %s/%u?",
                 cidr, want, e.prefix);
        return -1;
    }
    if (e.family == AF_INET6 && e.prefix >= 96 &&
        (memcmp(e.bytes, V4MAPPED_PREFIX, 12) == 0 || memcmp(e.bytes, NAT64_PREFIX, 12) == 0)) {
        snprintf(err, errcap,
                 "CIDR override '%s': such addresses are matched as the IPv4 address they "
                 "carry; write the network as IPv4",
                 cidr);
        return -1;
    }
    if (check_country("CIDR", cidr, country, err, errcap) != 0)
        return -1;

    char shown[INET6_ADDRSTRLEN];
    inet_ntop(e.family, e.bytes, shown, sizeof shown);
    snprintf(e.text, sizeof e.text, "%s/%u", shown, e.prefix);
    memcpy(e.cc, country, 3);

    size_t at = ov->ncidrs;
    for (size_t i = 0; i < ov->ncidrs; i++) {
        const cidr_entry_t *o = &ov->cidrs[i];
        if (o->family == e.family && o->prefix == e.prefix &&
            memcmp(o->bytes, e.bytes, sizeof e.bytes) == 0) {
            snprintf(err, errcap, "CIDR override '%s': %s is already pinned to %s", cidr, o->text,
                     o->cc);
            return -1;
        }
        if (at == ov->ncidrs && o->prefix < e.prefix)
            at = i;
    }
    if (ov->ncidrs == ov->capcidrs) {
        size_t cap = ov->capcidrs ? ov->capcidrs * 2 : 16;
        cidr_entry_t *c = realloc(ov->cidrs, cap * sizeof *c);
        if (c == NULL) {
            snprintf(err, errcap, "CIDR override '%s': out of memory", cidr);
            return -1;
        }
        ov->cidrs = c;
        ov->capcidrs = cap;
    }
    memmove(&ov->cidrs[at + 1], &ov->cidrs[at], (ov->ncidrs - at) * sizeof *ov->cidrs);
    ov->cidrs[at] = e;
    ov->ncidrs++;
    return 0;
}

/* Exact name first, then suffixes from the longest (first dot) down. */
static const host_entry_t *host_match(const bg_geo_overrides_t *ov, const char *host)
{
    char name[HOST_MAX + 2];
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len > HOST_MAX || ov->nhosts == 0)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = host[i];
        name[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    name[len] = '\0';

    bool found;
    size_t at = host_find(ov, name, &found);
    if (found && name[0] != '.')
        return &ov->hosts[at];
    for (size_t i = 1; i < len; i++) {
        if (name[i] != '.')
            continue;
        at = host_find(ov, name + i, &found);
        if (found)
            return &ov->hosts[at];
    }
    return NULL;
}

static const cidr_entry_t *cidr_match(const bg_geo_overrides_t *ov, const addr_t *a)
{
    if (a->kind == ADDR_UNSUPPORTED)
        return NULL;
    for (size_t i = 0; i < ov->ncidrs; i++) {
        const cidr_entry_t *e = &ov->cidrs[i];
        if (e->family == a->family && prefix_equal(e->bytes, a->bytes, e->prefix))
            return e;
    }
    return NULL;
}

int bg_geo_classify(const bg_geo_overrides_t *ov, const bg_geo_db_t *db, const char *host,
                    const struct sockaddr *sa, bg_geo_answer_t *out)
{
    addr_t a;
    answer_reset(out);
    addr_normalize(sa, &a);

    if (ov != NULL && host != NULL) {
        const host_entry_t *h = host_match(ov, host);
        if (h != NULL) {
            answer_set_country(out, h->cc);
            answer_set_source(out, "override:host:%s", h->key);
            return 0;
        }
    }
    if (sa == NULL) {
        answer_set_source(out, "no-address");
        return -1;
    }
    if (ov != NULL) {
        const cidr_entry_t *c = cidr_match(ov, &a);
        if (c != NULL) {
            answer_set_country(out, c->cc);
            answer_set_source(out, "override:cidr:%s", c->text);
            return 0;
        }
    }
    return db_lookup(db, &a, out);
}

/* ------------------------------------------------------------------------
 * Mixed-region hosts
 * ------------------------------------------------------------------------ */

/* Lower is better: domestic, then a known foreign country (a policy can
 * name it), then unknown. */
static int choose_rank(const bg_geo_answer_t *a)
{
    switch (a->region) {
    case BG_GEO_DOMESTIC: return 0;
    case BG_GEO_CROSS_BORDER: return 1;
    case BG_GEO_UNKNOWN: break;
    }
    return 2;
}

int bg_geo_choose(const bg_geo_answer_t *answers, size_t n)
{
    if (answers == NULL || n == 0 || n > INT_MAX)
        return -1;
    size_t best = 0;
    int best_rank = choose_rank(&answers[0]);
    for (size_t i = 1; i < n && best_rank > 0; i++) {
        int r = choose_rank(&answers[i]);
        if (r < best_rank) {
            best = i;
            best_rank = r;
        }
    }
    return (int)best;
}
