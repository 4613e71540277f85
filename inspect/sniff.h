/*
 * Content sniffing: what the bytes of a body or a multipart part really
 * are, whatever their labels say (issue 13: "sniff the bytes, do not trust
 * the label").
 *
 * A sender chooses Content-Type, Content-Encoding and charset; an upstream
 * may well ignore them and read the bytes. So inspection looks at the bytes
 * first: compression magic (gzip, zlib), byte-order marks and the zero-byte
 * pattern of UTF-16/UTF-32 text, well-known binary formats (PNG, JPEG, GIF,
 * PDF, ZIP, ...), and whether what is left is readable text. Labels only
 * add readings (a charset parameter names a transcoding to try); they never
 * take one away.
 *
 * Transcoding to UTF-8 uses the C library's iconv (glibc: UTF-16/32, GBK,
 * GB18030, Big5, UTF-7, the ISO-8859 family...); a body that claims a
 * charset iconv cannot read, or whose bytes are invalid in it, is reported
 * as not decodable so the caller can treat it as opaque.
 *
 * Everything here is bounded by the input length and allocation-free except
 * bg_sniff_transcode(). Thread-safe.
 */
#ifndef BG_SNIFF_H
#define BG_SNIFF_H

#include <stddef.h>

typedef enum {
    BG_SNIFF_EMPTY = 0,
    BG_SNIFF_GZIP,    /* 1f 8b */
    BG_SNIFF_ZLIB,    /* a zlib header (CMF/FLG with a valid check) */
    BG_SNIFF_UTF8,    /* valid UTF-8 text (an optional BOM is skipped by the caller) */
    BG_SNIFF_UTF16LE, /* BOM FF FE, or ASCII text with every odd byte zero */
    BG_SNIFF_UTF16BE, /* BOM FE FF, or every even byte zero */
    BG_SNIFF_UTF32LE, /* BOM FF FE 00 00 */
    BG_SNIFF_UTF32BE, /* BOM 00 00 FE FF */
    BG_SNIFF_BINARY,  /* a known binary format, or bytes that are not text */
} bg_sniff_t;

/*
 * What the N bytes at P are. *BOM (may be NULL) gets the length of a byte
 * order mark to skip (UTF-8 EF BB BF, UTF-16, UTF-32), 0 when none.
 * Text with a few control characters (tabs, CR, LF, FF) is text; a NUL or
 * more than 1 in 64 other control bytes makes it binary.
 */
bg_sniff_t bg_sniff(const char *p, size_t n, size_t *bom);

/*
 * What the first bytes say, without reading the rest: compression magic,
 * a byte-order mark, or the zero-byte pattern of unmarked UTF-16/UTF-32
 * (looked for only when a zero byte occurs in the first 1 KiB). Anything
 * else is BG_SNIFF_EMPTY ("nothing to undo"): whether the bytes are text or
 * binary is bg_sniff_is_text()'s question. O(1) for ordinary text, at most
 * 1 KiB examined.
 */
bg_sniff_t bg_sniff_prefix(const char *p, size_t n, size_t *bom);

/* The name of a well-known binary format at P ("png", "pdf", "zip", ...),
 * or NULL. */
const char *bg_sniff_binary_format(const char *p, size_t n);

/* Whether the N bytes at P are valid UTF-8 without NULs and with few
 * control characters: text a person or a program reads. */
int bg_sniff_is_text(const char *p, size_t n);

/*
 * Transcode P[0..N) from the charset FROM (an iconv name: "UTF-16LE",
 * "GBK", "UTF-7"...) to UTF-8 in a new buffer (*OUT, NUL-ended, *OUTLEN
 * bytes; caller frees). At most MAXOUT bytes of output. 0, or -1 when the
 * charset is unknown, the bytes are invalid in it, or the output would
 * exceed MAXOUT.
 */
int bg_sniff_transcode(const char *p, size_t n, const char *from, size_t maxout, char **out,
                       size_t *outlen);

/*
 * The iconv name of a Content-Type charset parameter value (CS, LEN bytes,
 * quotes already removed), or NULL when it is UTF-8/ASCII (nothing to do)
 * or not one we accept. "utf-16" -> "UTF-16", "gb2312" -> "GB18030" (a
 * superset), "x-gbk"/"cp936" -> "GB18030", "utf-7" -> "UTF-7", ...
 * *UNKNOWN is set when CS names a charset we do not accept.
 */
const char *bg_sniff_charset(const char *cs, size_t len, int *unknown);

#endif
