/*
 * libFuzzer target for the consent journal reader (policy/consent_journal.c),
 * through bg_consent_journal_check: the code that loads a journal at open,
 * re-reads it after another process changed it, and checks compaction.
 *
 * Beyond "never crash, never read out of bounds" it checks what the
 * registry relies on:
 *   - an error names the journal and a line that exists ("fuzz:N: ...");
 *   - the torn tail reported is a suffix without a newline;
 *   - compaction is a fixed point: the compacted text of a valid journal
 *     loads to the same number of consents with no tear, and compacting it
 *     again gives the very same bytes;
 *   - loading the complete lines alone gives the same answer as loading
 *     them with the torn tail (a tear never changes what is loaded).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/consent.h"
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    char err[1024];
    size_t torn = 0;
    char *rt = NULL;
    long n = bg_consent_journal_check(buf, size, "fuzz", &torn, &rt, err, sizeof err);
    if (n < 0) {
        CHECK(rt == NULL);
        if (strcmp(err, "out of memory") == 0)
            return 0;
        size_t line = 0, lines = 1;
        CHECK(sscanf(err, "fuzz:%zu:", &line) == 1);
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        CHECK(line >= 1 && line <= lines);
        return 0;
    }
    CHECK(torn <= size);
    CHECK(torn == 0 || memchr(buf + size - torn, '\n', torn) == NULL);
    CHECK(torn == 0 || size - torn == 0 || buf[size - torn - 1] == '\n');

    /* The complete lines alone load the same consents. */
    if (torn > 0) {
        size_t t2 = 1;
        CHECK(bg_consent_journal_check(buf, size - torn, "fuzz", &t2, NULL, err, sizeof err) == n);
        CHECK(t2 == 0);
    }

    /* Compaction is a fixed point. */
    if (rt != NULL) {
        size_t t2 = 1;
        char *rt2 = NULL;
        long n2 = bg_consent_journal_check(rt, strlen(rt), "compacted", &t2, &rt2, err, sizeof err);
        CHECK(n2 == n);
        CHECK(t2 == 0);
        CHECK(rt2 != NULL && strcmp(rt, rt2) == 0);
        free(rt2);
        free(rt);
    } else {
        CHECK(n == 0); /* no header: nothing can have loaded */
    }
    return 0;
}
