/*
 * wh_patch.c — JSON Patch building and base64.  See wh_patch.h.
 */
#include "wh_patch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int wh_pointer_escape(const char *token, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *c = token; *c; c++) {
        const char *rep = NULL;
        if (*c == '~')
            rep = "~0";
        else if (*c == '/')
            rep = "~1";
        size_t need = rep ? 2 : 1;
        if (o + need + 1 > cap)
            return -1;
        if (rep) {
            out[o++] = rep[0];
            out[o++] = rep[1];
        } else {
            out[o++] = *c;
        }
    }
    if (o + 1 > cap)
        return -1;
    out[o] = '\0';
    return 0;
}

int wh_patch_add(struct wh_patch *p, const char *op, const char *path,
                 cJSON *value)
{
    if (p->ops == NULL && (p->ops = cJSON_CreateArray()) == NULL)
        goto fail;
    if (cJSON_GetArraySize(p->ops) >= WH_PATCH_OPS_MAX)
        goto fail;
    cJSON *item = cJSON_CreateObject();
    if (item == NULL)
        goto fail;
    if (!cJSON_AddStringToObject(item, "op", op) ||
        !cJSON_AddStringToObject(item, "path", path)) {
        cJSON_Delete(item);
        goto fail;
    }
    if (value)
        cJSON_AddItemToObject(item, "value", value);
    cJSON_AddItemToArray(p->ops, item);
    return 0;
fail:
    cJSON_Delete(value);
    return -1;
}

size_t wh_patch_count(const struct wh_patch *p)
{
    return p->ops ? (size_t)cJSON_GetArraySize(p->ops) : 0;
}

char *wh_patch_base64(const struct wh_patch *p)
{
    if (p->ops == NULL)
        return NULL;
    char *json = cJSON_PrintUnformatted(p->ops);
    if (json == NULL)
        return NULL;
    char *b64 = wh_base64_encode((const unsigned char *)json, strlen(json));
    cJSON_free(json);
    return b64;
}

void wh_patch_free(struct wh_patch *p)
{
    cJSON_Delete(p->ops);
    p->ops = NULL;
}

char *wh_base64_encode(const unsigned char *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t out_len = (len + 2) / 3 * 4;
    char *out = malloc(out_len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 |
                     data[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}
