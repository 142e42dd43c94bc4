/*
 * base64.h — standard base64 (RFC 4648 section 4: '+', '/', '=' padding),
 * the one codec behind Secret data, the webhook's patch, kubeconfig
 * *-data and the fuzzers' oracles.
 *
 * The decoder is strict, so a value that is not what its writer meant is
 * refused instead of decoding to something else: whole 4-character groups,
 * '=' only in the last group's last one or two places, nothing after that
 * group, nothing outside the alphabet.  B64_SKIP_SPACE relaxes exactly one
 * thing: ASCII space, tab, CR and LF are ignored wherever they are (PEM
 * bodies and folded YAML scalars in a kubeconfig).  Unused bits of the
 * last character are not checked, as before this module existed.
 */
#ifndef SRV_BASE64_H
#define SRV_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* The longest input b64_encode takes: its text and a NUL fit a size_t. */
#define B64_ENCODE_MAX ((SIZE_MAX - 1) / 4 * 3)

/* b64_decode's max_out when only memory bounds the result. */
#define B64_NO_LIMIT SIZE_MAX

/* b64_decode flags. */
#define B64_SKIP_SPACE 1u   /* ignore ' ', '\t', '\r' and '\n' anywhere */

/* b64_decode's failures (it returns 0 on success). */
#define B64_ERR_MALFORMED (-1)  /* *bad_at says where */
#define B64_ERR_NO_MEMORY (-2)
#define B64_ERR_TOO_LARGE (-3)  /* decodes to more than max_out bytes */

/* Characters the base64 of n bytes has, not counting a NUL.  n must be at
 * most B64_ENCODE_MAX. */
size_t b64_encoded_len(size_t n);

/* Writes the base64 of src[0..n) and a NUL into dst, which has room for
 * b64_encoded_len(n) + 1 characters.  Cannot fail. */
void b64_encode_to(char *dst, const unsigned char *src, size_t n);

/* The base64 of src[0..n) ("" for n == 0) in a malloc'd string the caller
 * frees.  Returns NULL when out of memory or n > B64_ENCODE_MAX. */
char *b64_encode(const unsigned char *src, size_t n);

/*
 * Decodes in[0..len) (no NUL needed) into *out, malloc'd with a NUL after
 * the *outlen bytes (not counted); the caller frees it, and wipes it first
 * if it held a secret.  flags: 0 or B64_SKIP_SPACE.  Returns 0, or one of
 * B64_ERR_* with *out NULL and *outlen 0 (a partial result is wiped).  On
 * B64_ERR_MALFORMED, *bad_at (if bad_at is not NULL) is the offset of the
 * character that cannot be where it is, or len when the input ends inside
 * a group.  When the input is both malformed and too large, whichever
 * shows first while reading from the start is reported.
 */
int b64_decode(const char *in, size_t len, size_t max_out, unsigned flags,
               unsigned char **out, size_t *outlen, size_t *bad_at);

#endif
