/*
 * Attribution of findings to persons (see attribute.h): path segments are
 * walked once; a prefix is a person object when the records pattern names
 * it exactly, or when its key (or, for an array element, its array's key)
 * stands for a person.
 */
#include "policy/attribute.h"

#include <ctype.h>
#include <string.h>

#include "inspect/inspect.h"

/*
 * Inspect's person-holder list (bg_inspect_person_key(), which also decides
 * when a bare "name" is a person's) with the relations that name another
 * person without being a role ("spouse", "parent", "child", "agent").
 * Inspect leaves "parent" and "driver" out for names because a product's
 * "parent" has a "name"; here a false person object only withholds consent
 * from data that may be someone else's, the safe side.
 */
int bg_attribute_person_key(const char *k, size_t kl)
{
    return bg_inspect_person_key(k, kl, 1);
}

typedef enum { SEG_END = 0, SEG_KEY, SEG_INDEX, SEG_OTHER } seg_kind_t;

typedef struct {
    seg_kind_t kind;
    const char *key; /* SEG_KEY: the key as written (escapes kept) */
    size_t key_len;
    size_t end; /* offset just past the segment */
} seg_t;

/* The segment of PATH at offset I. */
static seg_t next_seg(const char *path, size_t i)
{
    seg_t s = {SEG_END, NULL, 0, i};
    char c = path[i];
    if (c == '\0')
        return s;
    if (c == '.') {
        size_t j = i + 1;
        while (path[j] != '\0' && path[j] != '.' && path[j] != '[' && path[j] != '(')
            j++;
        s.kind = SEG_KEY;
        s.key = path + i + 1;
        s.key_len = j - i - 1;
        s.end = j;
        return s;
    }
    if (c == '[' && path[i + 1] == '"') {
        size_t j = i + 2;
        while (path[j] != '\0' && path[j] != '"') {
            if (path[j] == '\\' && path[j + 1] != '\0')
                j++;
            j++;
        }
        s.kind = SEG_KEY;
        s.key = path + i + 2;
        s.key_len = j - i - 2;
        s.end = path[j] == '"' && path[j + 1] == ']' ? j + 2 : j + (path[j] != '\0');
        return s;
    }
    if (c == '[') {
        size_t j = i + 1;
        while (isdigit((unsigned char)path[j]))
            j++;
        s.kind = j > i + 1 && path[j] == ']' ? SEG_INDEX : SEG_OTHER;
        while (path[j] != '\0' && path[j] != ']')
            j++;
        s.end = j + (path[j] == ']');
        return s;
    }
    if (c == '(') { /* "(json)": the string's nested document, not a member */
        size_t j = i;
        while (path[j] != '\0' && path[j] != ')')
            j++;
        s.kind = SEG_OTHER;
        s.end = j + (path[j] == ')');
        return s;
    }
    /* "$" of a nested part, anything unexpected: one byte */
    s.kind = SEG_OTHER;
    s.end = i + 1;
    return s;
}

/* Where the JSON part of PATH starts ("$" of the body or of a multipart
 * part), or -1 when PATH is a query, header, cookie or form path. */
static long json_start(const char *path)
{
    if (path[0] == '$')
        return 0;
    if (strncmp(path, "multipart.", 10) == 0) {
        const char *d = strchr(path, '$');
        return d != NULL ? d - path : -1;
    }
    return -1;
}

size_t bg_attribute_record_prefix(const char *path, const char *records)
{
    if (records == NULL || path == NULL)
        return 0;
    const char *pat = records, *p = path;
    while (*pat != '\0') {
        if (pat[0] == '[' && pat[1] == '*' && pat[2] == ']') {
            if (*p != '[' || !isdigit((unsigned char)p[1]))
                return 0;
            p++;
            while (isdigit((unsigned char)*p))
                p++;
            if (*p != ']')
                return 0;
            p++;
            pat += 3;
            continue;
        }
        if (*pat != *p)
            return 0;
        pat++;
        p++;
    }
    return *p == '\0' || *p == '.' || *p == '[' || *p == '(' ? (size_t)(p - path) : 0;
}

size_t bg_attribute_owner(const char *path, const char *records, int container)
{
    if (path == NULL)
        return 0;
    long start = json_start(path);
    if (start < 0)
        return 0;
    size_t len = strlen(path);
    size_t rec = bg_attribute_record_prefix(path, records);
    size_t owner = 0;
    int prev_person_key = 0; /* the previous segment is a key that stands for a person */
    size_t i = (size_t)start + 1;
    for (;;) {
        seg_t s = next_seg(path, i);
        if (s.kind == SEG_END)
            break;
        /* Only containers can be person objects: a strict prefix, or PATH
         * itself when the finding is a whole object. */
        int is_container = s.end < len || container;
        int array_next = path[s.end] == '[' && path[s.end + 1] != '"';
        if (s.kind == SEG_KEY) {
            int person = bg_attribute_person_key(s.key, s.key_len);
            if (person && is_container && !array_next)
                owner = s.end;
            prev_person_key = person;
        } else if (s.kind == SEG_INDEX) {
            if (prev_person_key && is_container && !array_next)
                owner = s.end;
            prev_person_key = 0;
        } else {
            prev_person_key = 0;
        }
        if (rec > 0 && s.end == rec)
            owner = s.end;
        if (s.end <= i)
            break;
        i = s.end;
    }
    return owner;
}

int bg_attribute_covers(const char *owner, size_t olen, const char *anchor, size_t alen)
{
    if (olen == 0)
        return 1;
    if (alen < olen || memcmp(owner, anchor, olen) != 0)
        return 0;
    return alen == olen || anchor[olen] == '.' || anchor[olen] == '[' || anchor[olen] == '(';
}
