/*
 * base64.c — standard base64 both ways.  See base64.h.
 *
 * The decoder reads one character at a time into a 24-bit group, so the
 * same loop serves the strict form and the one with whitespace skipped,
 * and reports the exact offset of the first character it refuses.  Its
 * buffer is sized by max_out as well as by the input, so an oversized
 * value never costs more than the cap.
 */
#include "base64.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define B64_GROUP_CHARS 4
#define B64_GROUP_BYTES 3
#define B64_SEXTET_BITS 6

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_encoded_len(size_t n)
{
    /* Not (n + 2) / 3 * 4: that overflows for n near SIZE_MAX. */
    return n / B64_GROUP_BYTES * B64_GROUP_CHARS +
           (n % B64_GROUP_BYTES ? B64_GROUP_CHARS : 0);
}

void b64_encode_to(char *dst, const unsigned char *src, size_t n)
{
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 |
                     src[i + 2];
        *dst++ = b64_alphabet[v >> 18 & 63];
        *dst++ = b64_alphabet[v >> 12 & 63];
        *dst++ = b64_alphabet[v >> 6 & 63];
        *dst++ = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)src[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)src[i + 1] << 8;
        *dst++ = b64_alphabet[v >> 18 & 63];
        *dst++ = b64_alphabet[v >> 12 & 63];
        *dst++ = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
        *dst++ = '=';
    }
    *dst = '\0';
}

char *b64_encode(const unsigned char *src, size_t n)
{
    if (n > B64_ENCODE_MAX)
        return NULL;
    char *out = malloc(b64_encoded_len(n) + 1);
    if (out == NULL)
        return NULL;
    b64_encode_to(out, src, n);
    return out;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static bool b64_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int b64_decode(const char *in, size_t len, size_t max_out, unsigned flags,
               unsigned char **out, size_t *outlen, size_t *bad_at)
{
    *out = NULL;
    *outlen = 0;
    if (bad_at)
        *bad_at = 0;
    /* Every group takes 4 characters and gives at most 3 bytes. */
    size_t cap = len / B64_GROUP_CHARS * B64_GROUP_BYTES;
    if (cap > max_out)
        cap = max_out;
    unsigned char *buf = malloc(cap + 1);
    if (buf == NULL)
        return B64_ERR_NO_MEMORY;

    uint32_t acc = 0;
    unsigned chars = 0;   /* in the current group, '=' included */
    unsigned pad = 0;
    bool ended = false;   /* a padded group closed the data */
    size_t o = 0, at = 0;
    int rc = 0;
    for (at = 0; at < len; at++) {
        unsigned char c = (unsigned char)in[at];
        if ((flags & B64_SKIP_SPACE) && b64_space(c))
            continue;
        int v = 0;
        if (ended) {
            rc = B64_ERR_MALFORMED;
            break;
        }
        if (c == '=') {
            /* A group holds at least one whole byte: "x===" is not one. */
            if (chars < 2) {
                rc = B64_ERR_MALFORMED;
                break;
            }
            pad++;
        } else if ((v = b64_value(c)) < 0 || pad > 0) {
            rc = B64_ERR_MALFORMED;
            break;
        }
        acc = acc << B64_SEXTET_BITS | (uint32_t)v;
        if (++chars < B64_GROUP_CHARS)
            continue;
        size_t n = B64_GROUP_BYTES - pad;
        if (n > max_out - o) {
            rc = B64_ERR_TOO_LARGE;
            break;
        }
        buf[o++] = (unsigned char)(acc >> 16);
        if (n > 1)
            buf[o++] = (unsigned char)(acc >> 8);
        if (n > 2)
            buf[o++] = (unsigned char)acc;
        ended = pad > 0;
        acc = 0;
        chars = 0;
    }
    if (rc == 0 && chars != 0)
        rc = B64_ERR_MALFORMED;   /* at == len: it ends inside a group */
    if (rc != 0) {
        explicit_bzero(buf, o);   /* it may be part of a key */
        free(buf);
        if (rc == B64_ERR_MALFORMED && bad_at)
            *bad_at = at;
        return rc;
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return 0;
}
