/*
 * test_base64.c — server/base64: the RFC 4648 vectors, round trips of
 * every length 0..300 (strict and folded), what the strict decoder
 * refuses and where it says it stopped, whitespace only with
 * B64_SKIP_SPACE, and the output cap.
 */
#include <criterion/criterion.h>

#include "base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ROUND_TRIP_MAX 300
#define FOLD_WIDTH 76            /* a PEM-style line of base64 */
#define CANARY 0x5a
#define SEED 0x9e3779b97f4a7c15ull   /* fixed: a failure reproduces */

/* RFC 4648 section 10. */
static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba",
                                    "foobar"};
static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                    "Zm9vYmE=", "Zm9vYmFy"};
#define VECTORS (sizeof plain / sizeof plain[0])

static uint64_t next_random(uint64_t *s)
{
    /* xorshift64: deterministic, and no libc state shared between tests */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Decodes in (as a C string) and expects rc; on success the bytes want[n]. */
static void expect_decode(const char *in, size_t max_out, unsigned flags,
                          int want_rc, const void *want, size_t want_len)
{
    unsigned char *out = (unsigned char *)"untouched";
    size_t n = 99, bad = 99;
    int rc = b64_decode(in, strlen(in), max_out, flags, &out, &n, &bad);
    cr_assert_eq(rc, want_rc, "decode \"%s\" (flags %u): rc %d, want %d", in,
                 flags, rc, want_rc);
    if (rc != 0) {
        cr_assert_null(out, "\"%s\": *out not NULL on failure", in);
        cr_assert_eq(n, 0, "\"%s\": *outlen not 0 on failure", in);
        return;
    }
    cr_assert_eq(n, want_len, "decode \"%s\": %zu bytes, want %zu", in, n,
                 want_len);
    cr_assert_eq(memcmp(out, want, n), 0, "decode \"%s\": wrong bytes", in);
    cr_assert_eq(out[n], '\0', "decode \"%s\": no NUL after the data", in);
    free(out);
}

/* Expects B64_ERR_MALFORMED with *bad_at == at. */
static void expect_bad_at(const char *in, size_t len, unsigned flags,
                          size_t at)
{
    unsigned char *out;
    size_t n, bad = 99;
    int rc = b64_decode(in, len, B64_NO_LIMIT, flags, &out, &n, &bad);
    cr_assert_eq(rc, B64_ERR_MALFORMED, "\"%.*s\" (flags %u) gave %d",
                 (int)len, in, flags, rc);
    cr_assert_null(out);
    cr_assert_eq(bad, at, "\"%.*s\" (flags %u): bad_at %zu, want %zu",
                 (int)len, in, flags, bad, at);
}

Test(base64, rfc4648_vectors)
{
    for (size_t i = 0; i < VECTORS; i++) {
        size_t n = strlen(plain[i]);
        cr_assert_eq(b64_encoded_len(n), strlen(coded[i]));
        char *e = b64_encode((const unsigned char *)plain[i], n);
        cr_assert_not_null(e);
        cr_assert_str_eq(e, coded[i]);
        free(e);
        expect_decode(coded[i], B64_NO_LIMIT, 0, 0, plain[i], n);
        expect_decode(coded[i], B64_NO_LIMIT, B64_SKIP_SPACE, 0, plain[i], n);
    }
}

Test(base64, encode_empty_needs_no_data)
{
    char *e = b64_encode(NULL, 0);
    cr_assert_not_null(e, "\"\" still needs a buffer");
    cr_assert_str_eq(e, "");
    free(e);
    char dst[1] = {CANARY};
    b64_encode_to(dst, NULL, 0);
    cr_assert_eq(dst[0], '\0');
}

Test(base64, every_byte_value)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char *e = b64_encode(all, sizeof all);
    cr_assert_not_null(e);
    cr_assert_eq(strlen(e), 344);
    cr_assert_eq(strncmp(e, "AAECAwQFBgcICQoL", 16), 0, "%s", e);
    cr_assert_str_eq(e + 344 - 12, "+fr7/P3+/w==");
    unsigned char *d;
    size_t n;
    cr_assert_eq(b64_decode(e, strlen(e), sizeof all, 0, &d, &n, NULL), 0);
    cr_assert_eq(n, sizeof all);
    cr_assert_eq(memcmp(d, all, n), 0);
    free(d);
    free(e);
}

Test(base64, round_trip_every_length)
{
    uint64_t s = SEED;
    unsigned char src[ROUND_TRIP_MAX];
    for (size_t len = 0; len <= ROUND_TRIP_MAX; len++) {
        for (size_t i = 0; i < len; i++)
            src[i] = (unsigned char)next_random(&s);
        size_t chars = b64_encoded_len(len);
        cr_assert_eq(chars, (len + 2) / 3 * 4, "length %zu", len);

        /* b64_encode_to writes exactly chars + 1 bytes. */
        char *to = malloc(chars + 2);
        cr_assert_not_null(to);
        to[chars + 1] = (char)CANARY;
        b64_encode_to(to, src, len);
        cr_assert_eq(to[chars], '\0', "length %zu: no NUL", len);
        cr_assert_eq(to[chars + 1], (char)CANARY, "length %zu: overrun", len);
        char *e = b64_encode(src, len);
        cr_assert_not_null(e);
        cr_assert_str_eq(e, to, "length %zu: the two encoders differ", len);
        cr_assert_eq(strlen(e), chars);

        unsigned char *d;
        size_t n;
        cr_assert_eq(b64_decode(e, chars, len, 0, &d, &n, NULL), 0,
                     "length %zu", len);
        cr_assert_eq(n, len);
        cr_assert_eq(memcmp(d, src, len), 0, "length %zu: bytes differ", len);
        free(d);

        /* Folded as in a PEM body: CRLF every FOLD_WIDTH characters. */
        char *folded = malloc(chars + chars / FOLD_WIDTH * 2 + 3);
        cr_assert_not_null(folded);
        size_t f = 0;
        for (size_t i = 0; i < chars; i++) {
            if (i > 0 && i % FOLD_WIDTH == 0) {
                folded[f++] = '\r';
                folded[f++] = '\n';
            }
            folded[f++] = e[i];
        }
        folded[f++] = '\n';
        folded[f] = '\0';
        cr_assert_eq(b64_decode(folded, f, len, B64_SKIP_SPACE, &d, &n, NULL),
                     0, "length %zu folded", len);
        cr_assert_eq(n, len);
        cr_assert_eq(memcmp(d, src, len), 0, "length %zu folded", len);
        free(d);
        /* Strict, the first line break is where it stops: the first CR,
         * or the final LF when the text fits one line. */
        expect_bad_at(folded, f, 0, chars > FOLD_WIDTH ? FOLD_WIDTH : chars);

        /* Exactly the cap fits; one byte less does not. */
        if (len > 0)
            cr_assert_eq(b64_decode(e, chars, len - 1, 0, &d, &n, NULL),
                         B64_ERR_TOO_LARGE, "length %zu", len);
        free(folded);
        free(e);
        free(to);
    }
}

Test(base64, bad_padding)
{
    expect_bad_at("Zg", 2, 0, 2);           /* padding is required */
    expect_bad_at("Zg=", 3, 0, 3);
    expect_bad_at("Zm9", 3, 0, 3);
    expect_bad_at("Zm9vY", 5, 0, 5);
    expect_bad_at("=m9v", 4, 0, 0);         /* '=' first in a group */
    expect_bad_at("Z===", 4, 0, 1);         /* a group holds a whole byte */
    expect_bad_at("Zm=v", 4, 0, 3);         /* nothing after a '=' ... */
    expect_bad_at("Zg=A", 4, 0, 3);
    expect_bad_at("Zg==Zg==", 8, 0, 4);     /* ... nor after the last group */
    expect_bad_at("Zg==Zm9v", 8, 0, 4);
    expect_bad_at("Zm9v=", 5, 0, 4);
    expect_bad_at("Zm9v====", 8, 0, 4);
    expect_bad_at("Zm8==", 5, 0, 4);
    /* The same with whitespace allowed: it changes nothing else. */
    expect_bad_at("Zg", 2, B64_SKIP_SPACE, 2);
    expect_bad_at("Z = = =", 7, B64_SKIP_SPACE, 2);
    expect_bad_at("Zg== Zg==", 9, B64_SKIP_SPACE, 5);
    expect_bad_at("Zg==\n=", 6, B64_SKIP_SPACE, 5);
    expect_bad_at("Zm9\n", 4, B64_SKIP_SPACE, 4);
}

Test(base64, bad_characters)
{
    expect_bad_at("Zm9v!", 5, 0, 4);
    expect_bad_at("Zm9v$", 5, 0, 4);
    expect_bad_at("Zm9-", 4, 0, 3);         /* the URL alphabet is not base64 */
    expect_bad_at("Zm_v", 4, 0, 2);
    expect_bad_at("Zm9\x80", 4, 0, 3);
    expect_bad_at("Zm\0v", 4, 0, 2);        /* len, not the NUL, ends input */
    expect_bad_at("Zm9v\v", 5, B64_SKIP_SPACE, 4);   /* not PEM whitespace */
    expect_bad_at("Zm9v\f", 5, B64_SKIP_SPACE, 4);
    expect_bad_at("Zm9v!", 5, B64_SKIP_SPACE, 4);
    /* A NULL bad_at is allowed. */
    unsigned char *d;
    size_t n;
    cr_assert_eq(b64_decode("Zm9v!", 5, B64_NO_LIMIT, 0, &d, &n, NULL),
                 B64_ERR_MALFORMED);
    cr_assert_null(d);
}

Test(base64, whitespace_only_with_the_flag)
{
    const char *spaced[] = {" Zm9v\r\nYmE=\n", "Zm9v\n", "Zm9v Zm9v",
                            "\tZ m 9 v", "Zg==\r\n", "Zg = =", " "};
    const char *want[] = {"fooba", "foo", "foofoo", "foo", "f", "f", ""};
    const size_t strict_bad_at[] = {0, 4, 4, 0, 4, 2, 0};
    for (size_t i = 0; i < sizeof spaced / sizeof spaced[0]; i++) {
        expect_decode(spaced[i], B64_NO_LIMIT, B64_SKIP_SPACE, 0, want[i],
                      strlen(want[i]));
        expect_bad_at(spaced[i], strlen(spaced[i]), 0, strict_bad_at[i]);
    }
}

Test(base64, only_len_bytes_are_read)
{
    unsigned char *d;
    size_t n;
    cr_assert_eq(b64_decode("Zm9vYmFy", 4, B64_NO_LIMIT, 0, &d, &n, NULL), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq((char *)d, "foo");
    free(d);
    cr_assert_eq(b64_decode("Zm9vYmFy", 0, 0, 0, &d, &n, NULL), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(d[0], '\0');
    free(d);
}

Test(base64, output_cap)
{
    expect_decode("", 0, 0, 0, "", 0);
    expect_decode("Zg==", 0, 0, B64_ERR_TOO_LARGE, NULL, 0);
    expect_decode("Zg==", 1, 0, 0, "f", 1);
    expect_decode("Zm9vYmFy", 5, 0, B64_ERR_TOO_LARGE, NULL, 0);
    expect_decode("Zm9vYmFy", 6, 0, 0, "foobar", 6);
    expect_decode("Zm9vYmE=", 5, 0, 0, "fooba", 5);
    expect_decode("Zm9vYmE=", 4, 0, B64_ERR_TOO_LARGE, NULL, 0);
    /* Whitespace does not count towards the cap. */
    char spaced[1024];
    memset(spaced, ' ', sizeof spaced - 1);
    memcpy(spaced + 500, "Zm9v", 4);
    spaced[sizeof spaced - 1] = '\0';
    expect_decode(spaced, 3, B64_SKIP_SPACE, 0, "foo", 3);
    expect_decode(spaced, 2, B64_SKIP_SPACE, B64_ERR_TOO_LARGE, NULL, 0);
}

Test(base64, absurd_sizes_are_refused_not_wrapped)
{
    cr_assert_lt(b64_encoded_len(B64_ENCODE_MAX), SIZE_MAX,
                 "the text and its NUL must fit a size_t");
    cr_assert_eq(b64_encoded_len(B64_ENCODE_MAX) % 4, 0);
    /* Refused before src is read: one byte stands in for the rest. */
    unsigned char one = 0;
    cr_assert_null(b64_encode(&one, B64_ENCODE_MAX + 1));
    cr_assert_null(b64_encode(&one, SIZE_MAX));
}
