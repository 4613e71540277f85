/*
 * libFuzzer target for the consent admin API (policy/consent_admin.c):
 * bg_consent_admin's request-body JSON, query strings and paths, against a
 * real file-backed registry in a temporary directory.
 *
 * The first input byte picks the endpoint (grant, look-up, list by query,
 * withdraw the last grant, get by path, or a free "METHOD PATH" line); the
 * rest is the body, query or path. Every "SUBJ" in it is replaced by a
 * fixed raw subject id. Beyond the sanitizers it checks:
 *   - a path under /consents is always answered (0), with a status the API
 *     documents and a JSON object body; errors carry "error" and "code";
 *   - the raw subject id never appears in any answer (ids are pseudonymised,
 *     error texts name fields, not values);
 *   - a grant that succeeded (201) can be read back by its id with the
 *     same subject pseudonym, and is listed under its subject.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "policy/consent.h"
#include "fuzz/fuzz.h"

#define RAW_SUBJECT "Zq9SecretSubject7781"

static const uint8_t KEY[32] = {0x42, 0x19, 0xa7, 0x03, 0x5e, 0x77, 0xc1, 0x8d, 0x10, 0x2f, 0x33,
                                0x4a, 0x95, 0xb6, 0xe0, 0x01, 0x7c, 0x88, 0x9d, 0xaa, 0x21, 0x3e,
                                0x54, 0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7};

static bg_consent_reg_t *g_reg;
static char g_dir[64];
static char g_last_id[BG_CONSENT_ID_SIZE];

static void cleanup(void)
{
    char cmd[128];
    bg_consent_close(g_reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
}

static void open_registry(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/bg-fuzz-consent-XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/consent.jsonl", g_dir);
    char *warning = NULL;
    bg_consent_options_t o = {.create = 1, .check_interval_ms = -1};
    g_reg = bg_consent_open(path, KEY, sizeof KEY, &o, &warning, err, sizeof err);
    free(warning);
    CHECK(g_reg != NULL);
    atexit(cleanup);
}

/* IN[0..N) with every "SUBJ" that is a subject's value ("subject":"SUBJ
 * in a body, subject=SUBJ in a query) replaced by RAW_SUBJECT,
 * NUL-terminated. Other fields (purpose, evidence) are echoed by design,
 * so the raw subject id is only ever put where a subject goes. */
static char *expand(const char *in, size_t n, size_t *len)
{
    static const char json_key[] = "\"subject\":\"", query_key[] = "subject=";
    size_t cap = n * (sizeof RAW_SUBJECT) / 4 + n + 1, o = 0;
    char *out = malloc(cap);
    CHECK(out != NULL);
    for (size_t i = 0; i < n;) {
        int after_key = (o >= sizeof json_key - 1 && memcmp(out + o - (sizeof json_key - 1),
                                                            json_key, sizeof json_key - 1) == 0) ||
                        (o >= sizeof query_key - 1 && memcmp(out + o - (sizeof query_key - 1),
                                                             query_key, sizeof query_key - 1) == 0);
        if (after_key && n - i >= 4 && memcmp(in + i, "SUBJ", 4) == 0) {
            memcpy(out + o, RAW_SUBJECT, sizeof RAW_SUBJECT - 1);
            o += sizeof RAW_SUBJECT - 1;
            i += 4;
        } else {
            out[o++] = in[i++];
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

/* Call the API and check what every answer must be. Returns the answer
 * (caller frees) and its status, or NULL when PATH is not the API's. */
static json_t *call(const char *method, const char *path, const char *body, size_t len, int *status)
{
    char *out = NULL;
    *status = 0;
    int rc = bg_consent_admin(g_reg, method, path, body, len, status, &out);
    int ours =
        strncmp(path, "/consents", 9) == 0 && (path[9] == '\0' || path[9] == '/' || path[9] == '?');
    CHECK(rc == (ours ? 0 : -1));
    if (rc != 0) {
        CHECK(out == NULL);
        return NULL;
    }
    CHECK(out != NULL);
    CHECK(strstr(out, RAW_SUBJECT) == NULL);
    int s = *status;
    CHECK(s == 200 || s == 201 || s == 400 || s == 404 || s == 405 || s == 409 || s == 503);
    json_error_t je;
    json_t *doc = json_loads(out, 0, &je);
    CHECK(json_is_object(doc));
    if (s >= 400) {
        CHECK(json_is_string(json_object_get(doc, "error")));
        CHECK(json_is_string(json_object_get(doc, "code")));
    }
    free(out);
    return doc;
}

/* A consent just granted reads back by id and is listed under its subject. */
static void check_granted(json_t *c)
{
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *subj = json_string_value(json_object_get(c, "subject"));
    CHECK(id != NULL && subj != NULL && strlen(id) == BG_CONSENT_ID_SIZE - 1);
    snprintf(g_last_id, sizeof g_last_id, "%s", id);
    char path[256];
    int status;
    snprintf(path, sizeof path, "/consents/%s", id);
    json_t *got = call("GET", path, NULL, 0, &status);
    CHECK(status == 200);
    CHECK(strcmp(json_string_value(json_object_get(got, "subject")), subj) == 0);
    json_decref(got);
    snprintf(path, sizeof path, "/consents?subject_pseudonym=%s", subj);
    json_t *list = call("GET", path, NULL, 0, &status);
    CHECK(status == 200);
    json_t *arr = json_object_get(list, "consents"), *v;
    size_t i;
    int found = 0;
    json_array_foreach(arr, i, v)
    {
        const char *vid = json_string_value(json_object_get(v, "id"));
        found |= vid != NULL && strcmp(vid, id) == 0;
    }
    CHECK(found);
    json_decref(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_reg == NULL)
        open_registry();
    if (size == 0 || memmem(data, size, "Zq9Secret", 9) != NULL)
        return 0; /* the raw subject only ever comes from expand */
    size_t len = 0;
    char *rest = expand((const char *)data + 1, size - 1, &len);
    char path[2048];
    const char *method = "POST", *body = rest;
    size_t blen = len;
    int status = 0;
    json_t *doc = NULL;
    switch (data[0] % 6) {
    case 0: /* grant */
        doc = call("POST", "/consents", body, blen, &status);
        if (status == 201)
            check_granted(doc);
        break;
    case 1: doc = call("POST", "/consents/lookup", body, blen, &status); break;
    case 2: /* list by query */
        snprintf(path, sizeof path, "/consents?%s", rest);
        doc = call("GET", path, NULL, 0, &status);
        break;
    case 3: /* withdraw the last grant (or a made-up id) */
        snprintf(path, sizeof path, "/consents/%s/withdraw",
                 g_last_id[0] != '\0' ? g_last_id : "c-0123456789abcdef");
        doc = call("POST", path, body, blen, &status);
        break;
    case 4: /* anything under /consents/ */
        snprintf(path, sizeof path, "/consents/%s", rest);
        doc = call(data[0] & 0x80 ? "POST" : "GET", path, NULL, 0, &status);
        break;
    default: { /* "METHOD PATH\nbody" */
        char *nl = strchr(rest, '\n'), *sp = strchr(rest, ' ');
        if (nl == NULL || sp == NULL || sp > nl)
            break;
        *sp = '\0';
        *nl = '\0';
        method = rest;
        snprintf(path, sizeof path, "%s", sp + 1);
        body = nl + 1;
        blen = len - (size_t)(body - rest);
        doc = call(method, path, body, blen, &status);
        if (doc != NULL && status == 201 && strcmp(method, "POST") == 0)
            check_granted(doc);
        break;
    }
    }
    json_decref(doc);
    free(rest);
    return 0;
}
