/*
 * Taxonomy loader (see taxonomy.h; the file format is in docs/categories.md).
 *
 * Validation is strict, like the daemon configuration: unknown keys,
 * duplicate keys, missing or mistyped fields and unknown detector names are
 * errors, each reported at its line and column, and any error means no
 * taxonomy. A category file that silently dropped "sensitive" would let
 * sensitive PI leave as ordinary PI.
 */
#include "inspect/taxonomy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct bg_taxonomy {
    json_t **docs; /* references: every string points into one of these */
    size_t ndocs;
    bg_taxonomy_cat_t **cats; /* sorted by id; each allocated on its own so
                                 pointers survive extensions */
    size_t ncats;
    const bg_taxonomy_cat_t *builtin[BG_CAT__COUNT];
    const char *version;
};

/* The values "standards" may give a standard's reading of a category. */
static const char *const standard_values[] = {
    "sensitive",           /* listed as sensitive PI */
    "personal",            /* personal information, not sensitive */
    "not_sensitive_alone", /* sensitive only with other data or in context */
    "context",             /* sensitive in some contexts (a note says which) */
    "not_listed",          /* the standard does not address it */
    NULL,
};

typedef struct {
    bg_cfgerr_t *errs;
    const bg_jsonpos_t *pos;
    size_t nerr;
} vctx_t;

static void verr(vctx_t *c, const char *path, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void verr(vctx_t *c, const char *path, int at_key, const char *fmt, ...)
{
    c->nerr++;
    if (c->errs == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    bg_cfgerr_vaddf(c->errs, c->pos, BG_CFGERR_ERROR, path, at_key, fmt, ap);
    va_end(ap);
}

/* PATH + "." + KEY into OUT (always terminated; a path too long for the
 * buffer is cut, which only shortens an error message). */
static const char *path_key(char *out, size_t cap, const char *path, const char *key)
{
    size_t n = strlen(path);
    if (n >= cap)
        n = cap - 1;
    memmove(out, path, n);
    out[n] = 0;
    bg_jsonpos_path_append_key(out, cap, n, key);
    return out;
}

static const char *path_index(char *out, size_t cap, const char *path, size_t i)
{
    size_t n = strlen(path);
    if (n >= cap)
        n = cap - 1;
    memmove(out, path, n);
    out[n] = 0;
    bg_jsonpos_path_append_index(out, cap, n, i);
    return out;
}

/* Report members of OBJ not in ALLOWED (NULL-terminated). */
static void check_keys(vctx_t *c, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (ok)
            continue;
        char list[512] = "", p[512];
        size_t n = 0;
        for (const char *const *a = allowed; *a; a++) {
            int w = snprintf(list + n, sizeof list - n, "%s%s", a == allowed ? "" : ", ", *a);
            if (w < 0 || (size_t)w >= sizeof list - n)
                break;
            n += (size_t)w;
        }
        verr(c, path_key(p, sizeof p, path, key), 1, "unknown key \"%s\" (allowed here: %s)", key,
             list);
    }
}

/* A non-empty string member; NULL (with an error when REQUIRED) otherwise. */
static const char *get_string(vctx_t *c, json_t *obj, const char *path, const char *key,
                              int required)
{
    char p[512];
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required)
            verr(c, path, 0, "missing \"%s\"", key);
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        verr(c, path_key(p, sizeof p, path, key), 0, "must be a non-empty string");
        return NULL;
    }
    return json_string_value(v);
}

/* A boolean member: 0/1, DFLT when absent (an error when DFLT < 0). */
static int get_bool(vctx_t *c, json_t *obj, const char *path, const char *key, int dflt)
{
    char p[512];
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (dflt < 0)
            verr(c, path, 0, "missing \"%s\" (true or false)", key);
        return dflt < 0 ? 0 : dflt;
    }
    if (!json_is_boolean(v)) {
        verr(c, path_key(p, sizeof p, path, key), 0, "must be true or false");
        return 0;
    }
    return json_is_true(v);
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64 || id[0] < 'a' || id[0] > 'z')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '_'))
            return 0;
    return 1;
}

static int known_detector(const char *name)
{
    for (int d = 0; d < BG_DET__COUNT; d++)
        if (strcmp(bg_detect_detector_name((bg_detect_id_t)d), name) == 0)
            return 1;
    return 0;
}

/* One category; NULL when it has errors (reported). */
static bg_taxonomy_cat_t *parse_category(vctx_t *c, const char *id, json_t *obj, const char *path)
{
    static const char *const keys[] = {"label",        "group",     "parent",    "sensitive",
                                       "never_export", "citations", "standards", "note",
                                       "detectors",    NULL};
    static const char *const label_keys[] = {"en", "zh", NULL};
    char p[512], q[512];
    size_t before = c->nerr;

    if (!valid_id(id))
        verr(c, path, 1,
             "category id must be 1-64 lower-case letters, digits and '_', starting with a "
             "letter");
    if (!json_is_object(obj)) {
        verr(c, path, 0, "a category must be an object");
        return NULL;
    }
    check_keys(c, obj, path, keys);

    bg_taxonomy_cat_t *cat = calloc(1, sizeof *cat);
    if (cat == NULL) {
        verr(c, path, 0, "out of memory");
        return NULL;
    }
    cat->id = id;
    cat->group = "";
    cat->note = "";

    json_t *label = json_object_get(obj, "label");
    path_key(p, sizeof p, path, "label");
    if (label == NULL) {
        verr(c, path, 0, "missing \"label\" ({\"en\": ..., \"zh\": ...})");
    } else if (!json_is_object(label)) {
        verr(c, p, 0, "must be an object with \"en\" and \"zh\" labels");
    } else {
        check_keys(c, label, p, label_keys);
        cat->label_en = get_string(c, label, p, "en", 1);
        cat->label_zh = get_string(c, label, p, "zh", 1);
    }
    const char *g = get_string(c, obj, path, "group", 0);
    if (g != NULL)
        cat->group = g;
    const char *parent = get_string(c, obj, path, "parent", 0);
    cat->parent = parent != NULL ? parent : "";
    if (parent != NULL && !valid_id(parent))
        verr(c, path_key(p, sizeof p, path, "parent"), 0, "must be a category id");
    cat->sensitive_default = cat->sensitive = get_bool(c, obj, path, "sensitive", -1);
    cat->never_export = get_bool(c, obj, path, "never_export", 0);
    const char *note = get_string(c, obj, path, "note", 0);
    if (note != NULL)
        cat->note = note;

    json_t *cit = json_object_get(obj, "citations");
    path_key(p, sizeof p, path, "citations");
    if (cit == NULL) {
        verr(c, path, 0, "missing \"citations\": name the provision that makes it PI");
    } else if (!json_is_array(cit) || json_array_size(cit) == 0) {
        verr(c, p, 0, "must be a non-empty list of citations");
    } else if (json_array_size(cit) > BG_TAXONOMY_MAX_CITATIONS) {
        verr(c, p, 0, "at most %d citations", BG_TAXONOMY_MAX_CITATIONS);
    } else {
        size_t i;
        json_t *v = NULL;
        json_array_foreach(cit, i, v)
        {
            if (!json_is_string(v) || json_string_length(v) == 0)
                verr(c, path_index(q, sizeof q, p, i), 0, "must be a non-empty string");
            else
                cat->citations[cat->ncitations++] = json_string_value(v);
        }
    }

    json_t *std = json_object_get(obj, "standards");
    if (std != NULL) {
        path_key(p, sizeof p, path, "standards");
        if (!json_is_object(std)) {
            verr(c, p, 0, "must be an object mapping a standard to its reading");
        } else {
            const char *k;
            json_t *v;
            json_object_foreach(std, k, v)
            {
                int ok = 0;
                for (const char *const *s = standard_values; *s && !ok; s++)
                    ok = json_is_string(v) && strcmp(*s, json_string_value(v)) == 0;
                if (!ok)
                    verr(c, path_key(q, sizeof q, p, k), 0,
                         "must be one of sensitive, personal, not_sensitive_alone, context, "
                         "not_listed");
            }
        }
    }

    json_t *det = json_object_get(obj, "detectors");
    if (det != NULL) {
        path_key(p, sizeof p, path, "detectors");
        if (!json_is_array(det)) {
            verr(c, p, 0, "must be a list of detector names");
        } else {
            size_t i;
            json_t *v;
            json_array_foreach(det, i, v)
            {
                if (!json_is_string(v) || !known_detector(json_string_value(v)))
                    verr(c, path_index(q, sizeof q, p, i), 0,
                         "not a detector name (see docs/categories.md, \"Detectors\")");
            }
        }
    }
    cat->builtin = bg_detect_category_from_id(id, strlen(id));

    if (c->nerr != before) {
        free(cat);
        return NULL;
    }
    return cat;
}

static int cmp_cat(const void *a, const void *b)
{
    const bg_taxonomy_cat_t *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

/* Validate every category of CATEGORIES; on success append them to TAX
 * (sorted, indexed) and keep a reference to DOC. 0 / -1. */
static int add_categories(bg_taxonomy_t *tax, vctx_t *c, json_t *categories, const char *base,
                          json_t *doc, int from_policy)
{
    char p[512];
    size_t before = c->nerr;
    size_t n = json_object_size(categories);
    bg_taxonomy_cat_t **fresh = calloc(n ? n : 1, sizeof(bg_taxonomy_cat_t *));
    json_t **docs = realloc(tax->docs, (tax->ndocs + 1) * sizeof(json_t *));
    bg_taxonomy_cat_t **all = NULL;
    if (docs != NULL)
        tax->docs = docs;
    if (fresh == NULL || docs == NULL) {
        verr(c, base, 0, "out of memory");
        free(fresh);
        return -1;
    }
    size_t k = 0;
    const char *id;
    json_t *v;
    json_object_foreach(categories, id, v)
    {
        path_key(p, sizeof p, base, id);
        if (bg_taxonomy_find(tax, id, strlen(id)) != NULL) {
            verr(c, p, 1,
                 "category \"%s\" is already defined; to change whether it is sensitive, "
                 "override it in the policy instead",
                 id);
            continue;
        }
        bg_taxonomy_cat_t *cat = parse_category(c, id, v, p);
        if (cat != NULL) {
            cat->from_policy = from_policy;
            fresh[k++] = cat;
        }
    }
    if (c->nerr == before) {
        all = realloc(tax->cats, (tax->ncats + k) * sizeof(bg_taxonomy_cat_t *) + 1);
        if (all == NULL)
            verr(c, base, 0, "out of memory");
    }
    if (c->nerr != before || all == NULL) {
        for (size_t i = 0; i < k; i++)
            free(fresh[i]);
        free(fresh);
        return -1;
    }
    tax->cats = all;
    memcpy(tax->cats + tax->ncats, fresh, k * sizeof(bg_taxonomy_cat_t *));
    tax->ncats += k;
    free(fresh);
    qsort(tax->cats, tax->ncats, sizeof(bg_taxonomy_cat_t *), cmp_cat);
    for (size_t i = 0; i < tax->ncats; i++)
        if (tax->cats[i]->builtin != BG_CAT_NONE)
            tax->builtin[tax->cats[i]->builtin] = tax->cats[i];
    tax->docs[tax->ndocs++] = json_incref(doc);
    return 0;
}

bg_taxonomy_t *bg_taxonomy_parse(const char *text, size_t len, bg_cfgerr_t *errs)
{
    static const char *const top_keys[] = {"taxonomy_version", "description", "sources",
                                           "categories", NULL};
    vctx_t c = {errs, NULL, 0};
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (root == NULL) {
        c.nerr++;
        if (errs != NULL)
            bg_cfgerr_add_json_error(errs, &jerr);
        return NULL;
    }
    bg_jsonpos_t *pos = bg_jsonpos_build(text, len);
    c.pos = pos;
    if (pos != NULL) {
        size_t ndup = 0;
        bg_jsonpos_duplicates(pos, &ndup);
        c.nerr += ndup;
        if (errs != NULL)
            bg_cfgerr_add_duplicates(errs, pos);
    }
    bg_taxonomy_t *tax = calloc(1, sizeof *tax);
    if (tax == NULL) {
        verr(&c, "$", 0, "out of memory");
        goto fail;
    }
    if (!json_is_object(root)) {
        verr(&c, "$", 0, "must be an object with \"taxonomy_version\" and \"categories\"");
        goto fail;
    }
    check_keys(&c, root, "$", top_keys);
    tax->version = get_string(&c, root, "$", "taxonomy_version", 1);
    get_string(&c, root, "$", "description", 0);
    json_t *sources = json_object_get(root, "sources");
    if (sources != NULL) {
        char p[512];
        const char *k = NULL;
        json_t *v = NULL;
        if (!json_is_object(sources))
            verr(&c, "$.sources", 0, "must be an object mapping a short name to a full title");
        else
            json_object_foreach(sources, k, v)
            {
                if (!json_is_string(v) || json_string_length(v) == 0)
                    verr(&c, path_key(p, sizeof p, "$.sources", k), 0,
                         "must be a non-empty string");
            }
    }
    json_t *cats = json_object_get(root, "categories");
    if (cats == NULL || !json_is_object(cats)) {
        verr(&c, cats ? "$.categories" : "$", 0,
             cats ? "must be an object mapping category ids to categories"
                  : "missing \"categories\"");
        goto fail;
    }
    if (add_categories(tax, &c, cats, "$.categories", root, 0) != 0)
        goto fail;
    /* Every category a detector reports must be described: a finding whose
     * sensitivity is unknown cannot be decided. */
    for (int i = BG_CAT_NONE + 1; i < BG_CAT__COUNT; i++)
        if (tax->builtin[i] == NULL)
            verr(&c, "$.categories", 0, "missing category \"%s\": the detectors report it",
                 bg_detect_category_id((bg_detect_cat_t)i));
    if (c.nerr != 0)
        goto fail;
    bg_jsonpos_free(pos);
    json_decref(root); /* the taxonomy holds its own reference */
    return tax;
fail:
    bg_taxonomy_free(tax);
    bg_jsonpos_free(pos);
    json_decref(root);
    return NULL;
}

bg_taxonomy_t *bg_taxonomy_load(const char *path, bg_cfgerr_t *errs)
{
    if (errs != NULL)
        bg_cfgerr_set_file(errs, path);
    size_t len = 0;
    char *text = bg_util_read_file(path, &len);
    if (text == NULL) {
        if (errs != NULL) {
            char msg[256];
            snprintf(msg, sizeof msg, "cannot be read: %s", strerror(errno));
            bg_cfgerr_add(errs, BG_CFGERR_ERROR, 0, 0, NULL, msg);
        }
        return NULL;
    }
    bg_taxonomy_t *tax = bg_taxonomy_parse(text, len, errs);
    free(text);
    return tax;
}

void bg_taxonomy_free(bg_taxonomy_t *tax)
{
    if (tax == NULL)
        return;
    for (size_t i = 0; i < tax->ncats; i++)
        free(tax->cats[i]);
    free(tax->cats);
    for (size_t i = 0; i < tax->ndocs; i++)
        json_decref(tax->docs[i]);
    free(tax->docs);
    free(tax);
}

bg_taxonomy_t *bg_taxonomy_new(void)
{
    return calloc(1, sizeof(bg_taxonomy_t));
}

int bg_taxonomy_extend(bg_taxonomy_t *tax, json_t *categories, const bg_jsonpos_t *pos,
                       const char *base_path, bg_cfgerr_t *errs)
{
    vctx_t c = {errs, pos, 0};
    const char *base = base_path ? base_path : "$";
    if (tax == NULL || categories == NULL || !json_is_object(categories)) {
        verr(&c, base, 0, "must be an object mapping category ids to categories");
        return -1;
    }
    return add_categories(tax, &c, categories, base, categories, 1);
}

int bg_taxonomy_set_sensitive(bg_taxonomy_t *tax, const char *id, int sensitive)
{
    bg_taxonomy_cat_t *cat = (bg_taxonomy_cat_t *)bg_taxonomy_find(tax, id, id ? strlen(id) : 0);
    if (cat == NULL)
        return -1;
    cat->sensitive = sensitive != 0;
    return 0;
}

const bg_taxonomy_cat_t *bg_taxonomy_find(const bg_taxonomy_t *tax, const char *id, size_t len)
{
    if (tax == NULL || id == NULL)
        return NULL;
    size_t lo = 0, hi = tax->ncats;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = tax->cats[mid]->id;
        size_t ml = strlen(m);
        int r = memcmp(m, id, ml < len ? ml : len);
        if (r == 0)
            r = ml < len ? -1 : ml > len ? 1 : 0;
        if (r == 0)
            return tax->cats[mid];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const bg_taxonomy_cat_t *bg_taxonomy_builtin(const bg_taxonomy_t *tax, bg_detect_cat_t cat)
{
    if (tax == NULL || (int)cat <= BG_CAT_NONE || cat >= BG_CAT__COUNT)
        return NULL;
    return tax->builtin[cat];
}

size_t bg_taxonomy_count(const bg_taxonomy_t *tax)
{
    return tax ? tax->ncats : 0;
}

const bg_taxonomy_cat_t *bg_taxonomy_at(const bg_taxonomy_t *tax, size_t i)
{
    return tax && i < tax->ncats ? tax->cats[i] : NULL;
}

const char *bg_taxonomy_version(const bg_taxonomy_t *tax)
{
    return tax ? tax->version : NULL;
}
