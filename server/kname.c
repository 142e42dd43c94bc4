/*
 * kname.c — Kubernetes DNS-style object names.  See kname.h.
 */
#include "kname.h"

#include <string.h>

bool kname_valid(const char *s, size_t max, bool dots)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && !(dots && c == '.'))
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
    }
    return true;
}
