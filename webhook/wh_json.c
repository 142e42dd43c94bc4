/*
 * wh_json.c — direct JSON writing.  See wh_json.h.
 */
#include "wh_json.h"

#include "base64.h"

#include <stdlib.h>
#include <string.h>

/* Make room for n more bytes plus the NUL; -1 (sticky) past the bound. */
static int reserve(struct wh_json *j, size_t n)
{
    if (j->failed)
        return -1;
    if (n >= WH_JSON_MAX - j->len) {   /* len < WH_JSON_MAX always */
        j->failed = true;
        return -1;
    }
    size_t need = j->len + n + 1;
    if (need <= j->cap)
        return 0;
    size_t cap = j->cap ? j->cap : WH_JSON_INITIAL;
    while (cap < need)
        cap *= 2;
    if (cap > WH_JSON_MAX)
        cap = WH_JSON_MAX;
    char *p = realloc(j->data, cap);
    if (p == NULL) {
        j->failed = true;
        return -1;
    }
    j->data = p;
    j->cap = cap;
    return 0;
}

int wh_json_raw(struct wh_json *j, const char *s, size_t n)
{
    if (reserve(j, n) != 0)
        return -1;
    memcpy(j->data + j->len, s, n);
    j->len += n;
    j->data[j->len] = '\0';
    return 0;
}

int wh_json_lit(struct wh_json *j, const char *s)
{
    return wh_json_raw(j, s, strlen(s));
}

int wh_json_string(struct wh_json *j, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    /* Worst case every byte becomes \u00XX; reserve for it once. */
    if (n > (WH_JSON_MAX - 2) / 6 || reserve(j, n * 6 + 2) != 0) {
        j->failed = true;
        return -1;
    }
    char *o = j->data + j->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    *o = '\0';
    j->len = (size_t)(o - j->data);
    return 0;
}

int wh_json_int(struct wh_json *j, long long v)
{
    char digits[24];   /* 19 digits of LLONG_MIN's magnitude, sign, NUL */
    size_t d = sizeof(digits);
    /* Negate in unsigned so LLONG_MIN does not overflow. */
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v
                                 : (unsigned long long)v;
    do {
        digits[--d] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        digits[--d] = '-';
    return wh_json_raw(j, digits + d, sizeof(digits) - d);
}

int wh_json_base64(struct wh_json *j, const unsigned char *data, size_t n)
{
    if (n > WH_JSON_MAX / 4 * 3 || reserve(j, b64_encoded_len(n)) != 0) {
        j->failed = true;
        return -1;
    }
    b64_encode_to(j->data + j->len, data, n);
    j->len += b64_encoded_len(n);
    return 0;
}

char *wh_json_take(struct wh_json *j, size_t *len)
{
    if (j->failed || j->data == NULL) {
        wh_json_free(j);
        return NULL;
    }
    char *out = j->data;
    *len = j->len;
    j->data = NULL;
    j->len = j->cap = 0;
    return out;
}

void wh_json_free(struct wh_json *j)
{
    free(j->data);
    j->data = NULL;
    j->len = j->cap = 0;
    j->failed = false;
}
