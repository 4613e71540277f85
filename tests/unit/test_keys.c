/*
 * Unit tests for common/keys.c (and the file reading it uses): raw key files
 * may hold NUL bytes and load whole; hex keys with whitespace; refused keys
 * leave nothing in the caller's buffer; and the file's text is wiped by its
 * length, not strlen, before it is freed (checked in the freed block itself,
 * where the allocator hands it straight back: not under AddressSanitizer,
 * whose quarantine never does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/asan.h"
#include "common/keys.h"
#include "common/util.h"

/* Write N bytes of DATA to a new temporary file; its path into PATH. */
static void write_tmp(char path[64], const void *data, size_t n)
{
    snprintf(path, 64, "/tmp/bg-test-key-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* A raw (not hex) key of N bytes with NULs early on: byte 1 is 0. */
static void raw_key(unsigned char *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        k[i] = (unsigned char)(0x80 + (i * 37) % 127);
    k[1] = 0;
    k[5] = 0;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void test_raw_key_with_nul_bytes_loads_whole(void **state)
{
    unsigned char want[48], key[64], id[17], want_id[17];
    char path[64], err[256] = "";
    size_t len = 0;
    raw_key(want, sizeof want);
    write_tmp(path, want, sizeof want);
    assert_int_equal(bg_key_load(path, NULL, key, sizeof key, &len, (char *)id, err, sizeof err),
                     0);
    unlink(path);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(key, want, sizeof want);
    bg_key_id(want, sizeof want, (char *)want_id);
    assert_string_equal((char *)id, (char *)want_id);
}

static void test_hex_key_with_whitespace(void **state)
{
    static const char text[] = "00112233 44556677 8899aabb ccddeeff\n"
                               "00112233 44556677 8899AABB CCDDEEFF\n";
    unsigned char key[64];
    char path[64], id[17], err[256] = "";
    size_t len = 0;
    write_tmp(path, text, strlen(text));
    assert_int_equal(bg_key_load(path, NULL, key, sizeof key, &len, id, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(len, 32);
    assert_int_equal(key[0], 0x00);
    assert_int_equal(key[1], 0x11);
    assert_int_equal(key[15], 0xff);
    assert_int_equal(key[31], 0xff);
}

static void test_env_key_not_hex_leaves_nothing(void **state)
{
    unsigned char key[64];
    char id[17], err[256] = "";
    size_t len = 0;
    memset(key, 0xaa, sizeof key);
    /* from_hex decodes 0x00..0x55 before the 'z': none of it may stay */
    setenv("BG_TEST_KEY_NOT_HEX", "00112233445566778899aabbccddeeff0011223344556677zz", 1);
    assert_int_equal(
        bg_key_load(NULL, "BG_TEST_KEY_NOT_HEX", key, sizeof key, &len, id, err, sizeof err), -1);
    unsetenv("BG_TEST_KEY_NOT_HEX");
    assert_string_equal(err, "BG_TEST_KEY_NOT_HEX: key must be hex");
    assert_true(all_zero(key, sizeof key));
}

static void test_short_key_refused_and_wiped(void **state)
{
    unsigned char raw[20], key[64];
    char path[64], id[17], err[256] = "";
    size_t len = 0;
    raw_key(raw, sizeof raw);
    write_tmp(path, raw, sizeof raw);
    memset(key, 0xaa, sizeof key);
    assert_int_equal(bg_key_load(path, NULL, key, sizeof key, &len, id, err, sizeof err), -1);
    unlink(path);
    assert_non_null(strstr(err, ": key shorter than 32 bytes"));
    assert_true(all_zero(key, sizeof key));
}

/*
 * The file's text is wiped by its length before free: a raw key with a NUL
 * at byte 1 used to be wiped by strlen (1 byte), leaving the rest in the
 * freed block. glibc hands a just-freed small block back to the next
 * request of its size, so that block is read here; only its first 16 bytes
 * belong to the allocator's free list.
 */
static void test_freed_key_text_is_wiped_by_length(void **state)
{
#if BG_ASAN
    skip(); /* ASan quarantines freed blocks: nothing would be reused */
#else
    enum { N = 200 };
    unsigned char raw[N], key[N];
    char path[64], id[17], err[256] = "";
    size_t len = 0;
    raw_key(raw, sizeof raw);
    write_tmp(path, raw, sizeof raw);
    assert_int_equal(bg_key_load(path, NULL, key, sizeof key, &len, id, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(len, N);
    /* the size bg_util_read_file allocates for it (N + 1 for the NUL), and
     * twice that (what growing by doubling would have held it in) */
    volatile unsigned char *a = malloc(N + 1), *b = malloc(2 * (N + 1));
    assert_non_null((void *)a);
    assert_non_null((void *)b);
    size_t left = 0;
    for (size_t i = 16; i < N; i++)
        left += (a[i] == raw[i] && raw[i] != 0) + (b[i] == raw[i] && raw[i] != 0);
    free((void *)a);
    free((void *)b);
    assert_int_equal(left, 0);
    bg_util_wipe(key, sizeof key);
#endif
}

/* A file that grew after fstat is still read whole (the copy-and-wipe
 * growth path); /proc files report size 0 and take the same path. */
static void test_read_file_grows_past_its_fstat_size(void **state)
{
    size_t n = 0;
    char *s = bg_util_read_file("/proc/self/status", &n);
    assert_non_null(s);
    assert_true(n > 0);
    assert_int_equal(strlen(s), n);
    assert_non_null(strstr(s, "Name:"));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_key_with_nul_bytes_loads_whole),
        cmocka_unit_test(test_hex_key_with_whitespace),
        cmocka_unit_test(test_env_key_not_hex_leaves_nothing),
        cmocka_unit_test(test_short_key_refused_and_wiped),
        cmocka_unit_test(test_freed_key_text_is_wiped_by_length),
        cmocka_unit_test(test_read_file_grows_past_its_fstat_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
