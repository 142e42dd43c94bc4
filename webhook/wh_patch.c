/*
 * wh_patch.c — JSON Patch building and base64.  See wh_patch.h.
 */
#include "wh_patch.h"

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

/* Write `{"op":op,"path":path` (after a ',' or the opening '['); the
 * caller finishes the member list and closes the object. */
static int begin_op(struct wh_patch *p, const char *op, const char *path)
{
    if (p->count >= WH_PATCH_OPS_MAX)
        return -1;
    struct wh_json *t = &p->text;
    wh_json_lit(t, p->count == 0 ? "[{\"op\":" : ",{\"op\":");
    wh_json_string(t, op);
    wh_json_lit(t, ",\"path\":");
    return wh_json_string(t, path);
}

/* Close the op begun by begin_op; counts it only if all of it fit. */
static int end_op(struct wh_patch *p)
{
    if (wh_json_lit(&p->text, "}") != 0)
        return -1;
    p->count++;
    return 0;
}

int wh_patch_add_json(struct wh_patch *p, const char *op, const char *path,
                      const char *value_json, size_t len)
{
    if (begin_op(p, op, path) != 0)
        return -1;
    wh_json_lit(&p->text, ",\"value\":");
    wh_json_raw(&p->text, value_json, len);
    return end_op(p);
}

int wh_patch_add_int(struct wh_patch *p, const char *op, const char *path,
                     long long value)
{
    if (begin_op(p, op, path) != 0)
        return -1;
    wh_json_lit(&p->text, ",\"value\":");
    wh_json_int(&p->text, value);
    return end_op(p);
}

int wh_patch_add_string(struct wh_patch *p, const char *op, const char *path,
                        const char *value)
{
    if (begin_op(p, op, path) != 0)
        return -1;
    wh_json_lit(&p->text, ",\"value\":");
    wh_json_string(&p->text, value);
    return end_op(p);
}

int wh_patch_add(struct wh_patch *p, const char *op, const char *path,
                 cJSON *value)
{
    int rc = -1;
    if (value == NULL) {
        if (begin_op(p, op, path) == 0)
            rc = end_op(p);
        return rc;
    }
    char *json = cJSON_PrintUnformatted(value);
    if (json != NULL)
        rc = wh_patch_add_json(p, op, path, json, strlen(json));
    cJSON_free(json);
    cJSON_Delete(value);
    return rc;
}

size_t wh_patch_count(const struct wh_patch *p)
{
    return p->count;
}

int wh_patch_write_base64(struct wh_patch *p, struct wh_json *out)
{
    if (p->count == 0 || p->text.failed)
        return -1;
    /* Close the array for the encoding, then reopen it for later ops. */
    if (wh_json_lit(&p->text, "]") != 0)
        return -1;
    int rc = wh_json_base64(out, (const unsigned char *)p->text.data,
                            p->text.len);
    p->text.data[--p->text.len] = '\0';
    return rc;
}

char *wh_patch_base64(struct wh_patch *p)
{
    struct wh_json out = { 0 };
    size_t len;
    if (wh_patch_write_base64(p, &out) != 0) {
        wh_json_free(&out);
        return NULL;
    }
    return wh_json_take(&out, &len);
}

void wh_patch_free(struct wh_patch *p)
{
    wh_json_free(&p->text);
    p->count = 0;
}
