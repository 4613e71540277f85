/*
 * libFuzzer target for the position map (config/jsonpos) and the
 * diagnostics it feeds (config/cfgerr).
 *
 * Beyond "never crash, never read out of bounds" it checks what `check`
 * relies on: every recorded position (values, keys, duplicates) lies inside
 * the text (line within the line count, column at most one past the line's
 * last character), every entry's path resolves, and exactly to that entry's
 * position when the document has no duplicate keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfgerr.h"
#include "config/jsonpos.h"
#include "fuzz/fuzz.h"

/* Characters (UTF-8 lead or ASCII bytes) on each line of the text. */
static size_t *line_widths(const uint8_t *data, size_t size, size_t *nlines)
{
    size_t n = 1;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    size_t *w = calloc(n, sizeof *w);
    if (w == NULL)
        return NULL;
    size_t l = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\n')
            l++;
        else if ((data[i] & 0xC0) != 0x80)
            w[l]++;
    }
    *nlines = n;
    return w;
}

static void check_pos(const size_t *w, size_t nlines, int line, int col)
{
    CHECK(line >= 1 && (size_t)line <= nlines);
    CHECK(col >= 1 && (size_t)col <= w[line - 1] + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bg_jsonpos_t *m = bg_jsonpos_build((const char *)data, size);
    if (m == NULL)
        return 0;
    size_t nlines = 0;
    size_t *w = line_widths(data, size, &nlines);
    if (w == NULL) {
        bg_jsonpos_free(m);
        return 0;
    }
    size_t ndups;
    const bg_jsonpos_dup_t *d = bg_jsonpos_duplicates(m, &ndups);
    for (size_t i = 0; i < ndups; i++) {
        check_pos(w, nlines, d[i].line, d[i].col);
        check_pos(w, nlines, d[i].first_line, d[i].first_col);
        CHECK(d[i].first_line < d[i].line ||
              (d[i].first_line == d[i].line && d[i].first_col < d[i].col));
    }

    size_t count = bg_jsonpos_count(m);
    CHECK(count >= 1);
    for (size_t i = 0; i < count; i++) {
        bg_jsonpos_pos_t pos;
        CHECK(bg_jsonpos_entry(m, i, &pos) == 0);
        check_pos(w, nlines, pos.line, pos.col);
        if (pos.key_line != 0) {
            check_pos(w, nlines, pos.key_line, pos.key_col);
            CHECK(pos.key_line < pos.line || (pos.key_line == pos.line && pos.key_col < pos.col));
        }
        size_t len = bg_jsonpos_entry_path(m, i, NULL, 0);
        char *path = malloc(len + 1);
        if (path == NULL)
            break;
        CHECK(bg_jsonpos_entry_path(m, i, path, len + 1) == len && strlen(path) == len);
        int line, col;
        int rc = bg_jsonpos_lookup(m, path, &line, &col);
        CHECK(rc != BG_JSONPOS_NONE);
        check_pos(w, nlines, line, col);
        if (ndups == 0) {
            CHECK(rc == BG_JSONPOS_EXACT && line == pos.line && col == pos.col);
            rc = bg_jsonpos_lookup_key(m, path, &line, &col);
            CHECK(rc == BG_JSONPOS_EXACT);
            CHECK(pos.key_line == 0 ? line == pos.line && col == pos.col
                                    : line == pos.key_line && col == pos.key_col);
        }
        free(path);
    }

    /* The diagnostics built from it must render and serialise. */
    bg_cfgerr_t *e = bg_cfgerr_new("fuzz.json");
    if (e != NULL) {
        bg_cfgerr_set_limit(e, 16);
        bg_cfgerr_add_duplicates(e, m);
        bg_cfgerr_addf(e, m, BG_CFGERR_ERROR, "$[0].x", 1, "probe %zu", size);
        char line[256];
        for (size_t i = 0; i < bg_cfgerr_count(e); i++)
            bg_cfgerr_format(bg_cfgerr_item(e, i), line, sizeof line);
        json_t *j = bg_cfgerr_to_json(e);
        CHECK(j != NULL);
        char *dump = json_dumps(j, JSON_COMPACT);
        CHECK(dump != NULL);
        free(dump);
        json_decref(j);
        bg_cfgerr_free(e);
    }
    free(w);
    bg_jsonpos_free(m);
    return 0;
}
