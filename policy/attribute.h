/*
 * Attribution: whose personal information a finding is.
 *
 * A consent, a "subject abroad" region or a minor's birth date belongs to
 * one person; a request can carry several (a ticket's requester and its
 * assignee, a user and an emergency contact, a batch of records). A finding
 * belongs to the nearest *person object* that encloses it:
 *
 *   - a batch record (the route's subjects.records, "$.events[*]");
 *   - an object under a key that stands for a person ("consignee",
 *     "emergency_contact", "guardian", "passengers[2]", "收件人", ...: the
 *     word list of inspect's person-holder judgement, plus family and other
 *     relations: "spouse", "parent", "child", "relative", "agent", ...);
 *   - else the request itself (the root, "").
 *
 * The route's subject is anchored the same way at the path of subjects.id
 * (else subjects.device_id, else subjects.region, else subjects.birth_date;
 * relative to its record in a batch): a finding is the subject's when its person object is the
 * subject's anchor or encloses it (data at the top level of a request about
 * one user is that user's). A finding inside ANOTHER person object is
 * nobody's the route can name: no consent, region or age of the subject
 * applies to it. Query, header, cookie and form findings sit at the root.
 *
 * Everything works on finding paths (inspect/inspect.h: "$.a.b[2].c",
 * "$[\"收件人\"].phone", "$.payload(json).idfa", "multipart.meta$.email"),
 * never on values. Pure functions; O(path length).
 */
#ifndef BG_ATTRIBUTE_H
#define BG_ATTRIBUTE_H

#include <stddef.h>

/*
 * Length of the prefix of PATH that names the nearest person object
 * enclosing it (0: the request itself). RECORDS is the route's records
 * pattern ("$.events[*]") or NULL. CONTAINER says PATH itself is an object
 * (a whole-object finding such as "$.consignee"), so that PATH may be its
 * own person object; otherwise only strict prefixes count.
 */
size_t bg_attribute_owner(const char *path, const char *records, int container);

/*
 * Length of the prefix of PATH that the records pattern RECORDS ("$.a[*]")
 * matches, ending at a segment boundary; 0 when it does not match.
 */
size_t bg_attribute_record_prefix(const char *path, const char *records);

/*
 * Whether the person object OWNER (OLEN bytes of a path; 0 is the request)
 * is ANCHOR (ALEN bytes) or encloses it.
 */
int bg_attribute_covers(const char *owner, size_t olen, const char *anchor, size_t alen);

/*
 * Whether the key K (KL bytes, as written in a path: raw or JSON-escaped)
 * stands for a person, so that an object under it (or the elements of an
 * array under it) is that person's.
 */
int bg_attribute_person_key(const char *k, size_t kl);

#endif
