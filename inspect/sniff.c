#include "inspect/sniff.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "inspect/normalize.h"

/* Bytes looked at by the UTF-16/UTF-32 heuristics: enough for a verdict,
 * bounded whatever the body's size. */
#define SNIFF_WINDOW 1024

const char *bg_sniff_binary_format(const char *p, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
        const char *name;
    } fmts[] = {
        {"\x89PNG\r\n\x1a\n", 8, "png"},
        {"\xff\xd8\xff", 3, "jpeg"},
        {"GIF87a", 6, "gif"},
        {"GIF89a", 6, "gif"},
        {"%PDF-", 5, "pdf"},
        {"PK\x03\x04", 4, "zip"},
        {"PK\x05\x06", 4, "zip"},
        {"7z\xbc\xaf\x27\x1c", 6, "7z"},
        {"BZh", 3, "bzip2"},
        {"\xfd"
         "7zXZ\x00",
         6, "xz"},
        {"\x28\xb5\x2f\xfd", 4, "zstd"},
        {"\x7f"
         "ELF",
         4, "elf"},
        {"Rar!\x1a\x07", 6, "rar"},
        {"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8, "ole2"},
        {"II*\x00", 4, "tiff"},
        {"MM\x00*", 4, "tiff"},
        {"\x00\x00\x01\x00", 4, "ico"},
        {"wOFF", 4, "woff"},
        {"wOF2", 4, "woff2"},
        {"OggS", 4, "ogg"},
        {"fLaC", 4, "flac"},
        {"ID3", 3, "mp3"},
        {"SQLite format 3", 15, "sqlite"},
    };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
        if (n >= fmts[i].len && memcmp(p, fmts[i].magic, fmts[i].len) == 0)
            return fmts[i].name;
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0)
        return "riff"; /* WebP, WAV, AVI */
    if (n >= 12 && memcmp(p + 4, "ftyp", 4) == 0)
        return "isobmff"; /* MP4, HEIC, AVIF */
    return NULL;
}

int bg_sniff_is_text(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t ctl = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c < 0x80) {
            if (c == 0)
                return 0;
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f')
                ctl++;
            else if (c == 0x7f)
                ctl++;
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = bg_norm_utf8_decode(u + i, n - i, &cp);
        if (cp == UINT32_MAX)
            return 0;
        i += l;
    }
    return ctl * 64 <= n;
}

/* Zero bytes at even and odd offsets of the first SNIFF_WINDOW bytes. */
static void zero_pattern(const unsigned char *u, size_t n, size_t *even, size_t *odd, size_t *quad)
{
    size_t m = n < SNIFF_WINDOW ? n : SNIFF_WINDOW;
    *even = *odd = *quad = 0;
    for (size_t i = 0; i < m; i++) {
        if (u[i] != 0)
            continue;
        if (i & 1)
            (*odd)++;
        else
            (*even)++;
        if ((i & 3) != 0)
            (*quad)++;
    }
}

bg_sniff_t bg_sniff(const char *p, size_t n, size_t *bom)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t dummy;
    if (bom == NULL)
        bom = &dummy;
    *bom = 0;
    if (n == 0)
        return BG_SNIFF_EMPTY;
    if (n >= 2 && u[0] == 0x1f && u[1] == 0x8b)
        return BG_SNIFF_GZIP;
    /* zlib: CM 8, window <= 32K, no preset dictionary, (CMF*256 + FLG) % 31
     * == 0 (0x78 0x9c...). Text can match by chance ("8n"): callers treat
     * this as a reading to try, kept only when it inflates. */
    if (n >= 2 && (u[0] & 0x0f) == 8 && (u[0] >> 4) <= 7 && (u[1] & 0x20) == 0 &&
        ((unsigned)u[0] << 8 | u[1]) % 31 == 0)
        return BG_SNIFF_ZLIB;
    if (n >= 4 && u[0] == 0xff && u[1] == 0xfe && u[2] == 0 && u[3] == 0) {
        *bom = 4;
        return BG_SNIFF_UTF32LE;
    }
    if (n >= 4 && u[0] == 0 && u[1] == 0 && u[2] == 0xfe && u[3] == 0xff) {
        *bom = 4;
        return BG_SNIFF_UTF32BE;
    }
    if (n >= 2 && u[0] == 0xff && u[1] == 0xfe) {
        *bom = 2;
        return BG_SNIFF_UTF16LE;
    }
    if (n >= 2 && u[0] == 0xfe && u[1] == 0xff) {
        *bom = 2;
        return BG_SNIFF_UTF16BE;
    }
    if (n >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
        *bom = 3;
        return bg_sniff_is_text(p + 3, n - 3) ? BG_SNIFF_UTF8 : BG_SNIFF_BINARY;
    }
    if (bg_sniff_binary_format(p, n) != NULL)
        return BG_SNIFF_BINARY;
    if (bg_sniff_is_text(p, n))
        return BG_SNIFF_UTF8;
    /* Unmarked UTF-16/32: mostly-ASCII text leaves a regular pattern of
     * zero bytes. */
    if (n >= 4 && n % 2 == 0) {
        size_t even, odd, quad;
        size_t m = n < SNIFF_WINDOW ? n : SNIFF_WINDOW;
        zero_pattern(u, n, &even, &odd, &quad);
        if (n % 4 == 0 && quad * 4 >= m * 3 * 9 / 10 && u[0] != 0)
            return BG_SNIFF_UTF32LE;
        if (n % 4 == 0 && quad * 4 >= m * 3 * 9 / 10 && u[3] != 0)
            return BG_SNIFF_UTF32BE;
        if (odd * 10 >= m / 2 * 4 && even * 20 < m / 2)
            return BG_SNIFF_UTF16LE;
        if (even * 10 >= m / 2 * 4 && odd * 20 < m / 2)
            return BG_SNIFF_UTF16BE;
    }
    return BG_SNIFF_BINARY;
}

bg_sniff_t bg_sniff_prefix(const char *p, size_t n, size_t *bom)
{
    size_t m = n < SNIFF_WINDOW ? n : SNIFF_WINDOW;
    size_t dummy;
    if (bom == NULL)
        bom = &dummy;
    *bom = 0;
    if (n == 0)
        return BG_SNIFF_EMPTY;
    if (memchr(p, 0, m) == NULL) {
        /* no zero byte: only magic or a BOM can say anything */
        const unsigned char *u = (const unsigned char *)p;
        if (n >= 2 && ((u[0] == 0x1f && u[1] == 0x8b) || (u[0] & 0x0f) == 8 || u[0] >= 0xef)) {
            bg_sniff_t r = bg_sniff(p, n < 4 ? n : 4, bom);
            return r == BG_SNIFF_UTF8 || r == BG_SNIFF_BINARY ? BG_SNIFF_EMPTY : r;
        }
        return BG_SNIFF_EMPTY;
    }
    bg_sniff_t r = bg_sniff(p, m - m % 4, bom);
    return r == BG_SNIFF_UTF8 || r == BG_SNIFF_BINARY ? BG_SNIFF_EMPTY : r;
}

int bg_sniff_transcode(const char *p, size_t n, const char *from, size_t maxout, char **out,
                       size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return -1;
    size_t cap = n * 2 + 16;
    if (cap > maxout + 1)
        cap = maxout + 1;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        iconv_close(cd);
        return -1;
    }
    char *in = (char *)p; /* iconv's prototype; it does not write the input */
    size_t inleft = n, used = 0;
    int rc = 0;
    while (inleft > 0) {
        char *o = buf + used;
        size_t oleft = cap - used;
        size_t r = iconv(cd, &in, &inleft, &o, &oleft);
        used = (size_t)(o - buf);
        if (r != (size_t)-1)
            break;
        if (errno != E2BIG || cap > maxout) {
            rc = -1; /* invalid or incomplete input, or over the bound */
            break;
        }
        size_t ncap = cap * 2 > maxout + 1 ? maxout + 1 : cap * 2;
        if (ncap <= cap) {
            rc = -1;
            break;
        }
        char *nb = realloc(buf, ncap + 1);
        if (nb == NULL) {
            rc = -1;
            break;
        }
        buf = nb;
        cap = ncap;
    }
    if (rc == 0) {
        /* Flush a stateful encoding's shift state (UTF-7). */
        char *o = buf + used;
        size_t oleft = cap - used;
        if (iconv(cd, NULL, NULL, &o, &oleft) == (size_t)-1)
            rc = -1;
        used = (size_t)(o - buf);
    }
    iconv_close(cd);
    if (rc != 0 || used > maxout) {
        free(buf);
        return -1;
    }
    buf[used] = '\0';
    *out = buf;
    *outlen = used;
    return 0;
}

const char *bg_sniff_charset(const char *cs, size_t len, int *unknown)
{
    static const struct {
        const char *label;
        const char *iconv; /* NULL: UTF-8 already */
    } map[] = {
        {"utf-8", NULL},
        {"utf8", NULL},
        {"us-ascii", NULL},
        {"ascii", NULL},
        {"utf-16", "UTF-16"},
        {"utf-16le", "UTF-16LE"},
        {"utf-16be", "UTF-16BE"},
        {"ucs-2", "UTF-16"},
        {"utf-32", "UTF-32"},
        {"utf-32le", "UTF-32LE"},
        {"utf-32be", "UTF-32BE"},
        {"utf-7", "UTF-7"},
        {"gbk", "GB18030"},
        {"gb2312", "GB18030"},
        {"gb18030", "GB18030"},
        {"x-gbk", "GB18030"},
        {"cp936", "GB18030"},
        {"euc-cn", "GB18030"},
        {"hz-gb-2312", "HZ"},
        {"big5", "BIG5-HKSCS"},
        {"big5-hkscs", "BIG5-HKSCS"},
        {"iso-8859-1", "WINDOWS-1252"},
        {"latin1", "WINDOWS-1252"},
        {"windows-1252", "WINDOWS-1252"},
        {"shift_jis", "SHIFT_JIS"},
        {"euc-jp", "EUC-JP"},
        {"euc-kr", "EUC-KR"},
        {"iso-2022-jp", "ISO-2022-JP"},
    };
    *unknown = 0;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (bg_util_ieq(cs, len, map[i].label))
            return map[i].iconv;
    *unknown = 1;
    return NULL;
}
