/*
 * Destination region: which country an upstream address is in, and whether
 * sending to it is a cross-border transfer out of mainland China.
 *
 * Decision order for one (host, address) pair, first match wins:
 *   1. host override, exact name          "api.partner.example"  -> CC
 *   2. host override, longest suffix      ".partner.example"     -> CC
 *   3. CIDR override, longest prefix      "203.0.113.0/24"       -> CC
 *   4. the MaxMind-format database: country.iso_code
 *   5. unknown
 * CN is domestic; every other country, Hong Kong (HK), Macao (MO) and
 * Taiwan (TW) included, is cross-border; unknown is treated as
 * cross-border. Use bg_geo_is_cross_border(), which fails closed, rather
 * than comparing regions by hand. docs/geo.md explains the choices.
 *
 * Threads: an opened database and a finished override set are read-only
 * and may be shared by any number of threads. Adding overrides is not
 * thread-safe: build the set, then publish it (the policy swap).
 */
#ifndef BG_GEO_H
#define BG_GEO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef enum {
    BG_GEO_UNKNOWN = 0,      /* no usable answer: treated as cross-border */
    BG_GEO_DOMESTIC = 1,     /* mainland China, CN */
    BG_GEO_CROSS_BORDER = 2, /* any other country, HK, MO and TW included */
} bg_geo_region_t;

/* Longest source string, with its NUL. */
#define BG_GEO_SOURCE_MAX 96

/*
 * One answer, a plain value: copy it into the decision record as is.
 *
 * source says who answered, and for unknown answers why:
 *   "db:bordergate-Country@2026-06-25"        database type @ build date
 *   "db:GeoLite2-City@2026-06-24:not-found"   the database has no entry
 *   "...:no-country"       the entry has no country.iso_code (anycast,
 *                          satellite, ... records only a registered_country)
 *   "...:bad-country"      country.iso_code is not two uppercase letters
 *   "...:no-ipv6"          IPv6 address, IPv4-only database
 *   "...:teredo"           Teredo address (2001::/32): its real endpoint is
 *                          hidden, so no database answer is trusted
 *   "...:error"            libmaxminddb failed (corrupt data)
 *   "override:host:api.partner.example"       exact host override
 *   "override:host:.partner.example"          suffix override
 *   "override:cidr:127.0.0.2/32"              CIDR override
 *   "no-database" / "no-address" / "unsupported-address"
 * A source longer than the buffer is cut and ends in "...".
 */
typedef struct {
    char country[3];    /* ISO 3166-1 alpha-2 decided on, "" when unknown */
    char registered[3]; /* the database's registered_country.iso_code, for
                         * the record only: never used to decide (the
                         * country of registration says where the paperwork
                         * is, not where the packets go), "" when absent */
    bg_geo_region_t region;
    char source[BG_GEO_SOURCE_MAX];
} bg_geo_answer_t;

/* "domestic", "cross-border" or "unknown". */
const char *bg_geo_region_name(bg_geo_region_t region);

/* 1 unless the answer is domestic: unknown counts as cross-border. */
int bg_geo_is_cross_border(const bg_geo_answer_t *answer);

/* 1 when CC is exactly two uppercase ASCII letters, else 0. */
int bg_geo_country_valid(const char *cc);

/* ------------------------------------------------------------------------
 * Databases
 * ------------------------------------------------------------------------ */

/* Opened, reference-counted MaxMind DB. */
typedef struct bg_geo_db bg_geo_db_t;

/*
 * Open PATH (any MaxMind-format country or city database: GeoIP2/GeoLite2
 * Country or City, DB-IP Lite Country or City, bordergate's embedded one)
 * with one reference held by the caller. The file is memory-mapped, so a
 * new version must be installed by rename(2), never written in place.
 *
 * Besides libmaxminddb's own checks this walks the start of the search tree
 * and refuses a database whose first data records carry no
 * country.iso_code (an ASN or ISP database, say), and one whose tree or
 * data is visibly corrupt there. A cheap probe (well under a millisecond),
 * not a full verification: later look-ups still fail closed on corruption.
 *
 * Returns NULL with ERR filled with one line naming the file, e.g.
 *   geo database '/etc/bordergate/GeoLite2-Country.mmdb': No such file or directory
 *   geo database '/tmp/x.mmdb': not a MaxMind DB file (no valid metadata
 *   section; truncated, or another format)
 */
bg_geo_db_t *bg_geo_db_open(const char *path, char *err, size_t errcap);

/* Take one more reference (atomic); returns DB. A reload holder (the
 * runtime snapshot) owns one reference; requests in flight hold theirs
 * through the snapshot, so they keep the database they started with. */
bg_geo_db_t *bg_geo_db_ref(bg_geo_db_t *db);
/* Drop one reference (atomic); the last one closes the file. NULL is fine. */
void bg_geo_db_unref(bg_geo_db_t *db);

/* Metadata, valid while the caller holds a reference. */
const char *bg_geo_db_path(const bg_geo_db_t *db);
const char *bg_geo_db_type(const bg_geo_db_t *db);        /* database_type */
const char *bg_geo_db_description(const bg_geo_db_t *db); /* "en", else the
                                                             first; "" if none */
uint64_t bg_geo_db_build_epoch(const bg_geo_db_t *db);    /* seconds, UTC */
int bg_geo_db_ip_version(const bg_geo_db_t *db);          /* 4 or 6 */
/* "bordergate-Country@2026-06-25": the prefix of every source from DB. */
const char *bg_geo_db_label(const bg_geo_db_t *db);
/* Seconds from the build date to NOW (seconds since 1970); 0 when the
 * build date is in the future. For "database older than N days" warnings. */
uint64_t bg_geo_db_age(const bg_geo_db_t *db, uint64_t now);

/*
 * Country of SA (AF_INET or AF_INET6; port ignored) from DB alone.
 * IPv4-mapped (::ffff:a.b.c.d) and NAT64 well-known-prefix (64:ff9b::/96)
 * addresses are looked up as the IPv4 address they carry, on every
 * database. OUT is always filled; on any failure it is unknown.
 * Returns 0 when the database answered (found or not), -1 when it could
 * not (DB NULL, unsupported family, libmaxminddb error). Cost: one tree
 * walk and two map look-ups, ~0.1-0.3 us (see docs/geo.md).
 */
int bg_geo_lookup(const bg_geo_db_t *db, const struct sockaddr *sa, bg_geo_answer_t *out);

/* ------------------------------------------------------------------------
 * Overrides written by compliance in the policy
 * ------------------------------------------------------------------------ */

typedef struct bg_geo_overrides bg_geo_overrides_t;

/* Empty set; NULL when out of memory. */
bg_geo_overrides_t *bg_geo_overrides_new(void);
void bg_geo_overrides_free(bg_geo_overrides_t *ov);

/*
 * Pin host names to COUNTRY. PATTERN is an exact name ("api.example.com")
 * or a suffix written ".example.com" or "*.example.com" (the same thing:
 * any name below example.com, at any depth, but not example.com itself;
 * add the exact name too to cover it). Case-insensitive; a trailing dot is
 * ignored. A pattern given twice is an error, even with the same country,
 * so that a policy never says one thing twice. Returns 0, or -1 with ERR
 * filled (one line quoting the pattern, for the policy loader to prefix
 * with file:line). Cost of a match: O(labels x log N).
 */
int bg_geo_overrides_add_host(bg_geo_overrides_t *ov, const char *pattern, const char *country,
                              char *err, size_t errcap);

/*
 * Pin a network to COUNTRY: "a.b.c.d/len", "v6/len", or a bare address
 * (/32, /128). Bits set past the prefix are an error (a typo, not a
 * request to round). Write IPv4 networks as IPv4: IPv4-mapped IPv6 forms
 * are refused because addresses are matched after mapping to IPv4.
 * Duplicates are errors. Returns 0 or -1 with ERR filled. Cost of a match:
 * O(N) over the CIDR entries, fine for the hundreds a policy holds.
 */
int bg_geo_overrides_add_cidr(bg_geo_overrides_t *ov, const char *cidr, const char *country,
                              char *err, size_t errcap);

/* Number of host and CIDR entries. */
size_t bg_geo_overrides_count(const bg_geo_overrides_t *ov);

/*
 * Decide the country and region of connecting to SA for HOST, in the order
 * at the top of this file. OV, DB, HOST and SA may each be NULL (no
 * overrides, no database, no host name, no address yet). OUT is always
 * filled. Returns what bg_geo_lookup returned when the database was asked,
 * else 0 when an override answered, -1 when nothing could answer (no
 * database, or no address and no host override).
 */
int bg_geo_classify(const bg_geo_overrides_t *ov, const bg_geo_db_t *db, const char *host,
                    const struct sockaddr *sa, bg_geo_answer_t *out);

/*
 * Mixed-region hosts: given the answers for a host's candidate addresses
 * in resolver order, return the index of the address to connect to:
 * the first domestic one, else the first cross-border one with a known
 * country, else the first (unknown) one; -1 when N is 0. The caller must
 * connect to exactly that address and record it with its answer, so what
 * was checked is what was used. N must not exceed INT_MAX. O(N).
 */
int bg_geo_choose(const bg_geo_answer_t *answers, size_t n);

#endif
