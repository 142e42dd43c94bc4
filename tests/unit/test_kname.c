/*
 * test_kname.c — server/kname: the one check of DNS-style object names
 * that the certificate bootstrap, leader election and the kubeconfig's
 * namespaces share.
 */
#include <criterion/criterion.h>

#include "kname.h"

#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void expect_all(const char *const *names, size_t n, size_t max,
                       bool dots, bool want)
{
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(kname_valid(names[i], max, dots), want,
                     "\"%s\" (max %zu, dots %d): want %d", names[i], max,
                     dots, want);
}

Test(kname, labels)
{
    const char *good[] = {"a", "0", "webhook", "inference-operator", "a-b-c",
                          "1a", "a1", "a--b"};
    const char *bad[] = {"", "-a", "a-", "-", "A", "aB", "a.b", "a_b",
                         "a b", "a\n", "é"};
    expect_all(good, COUNT(good), KNAME_LABEL_MAX, false, true);
    expect_all(bad, COUNT(bad), KNAME_LABEL_MAX, false, false);
    cr_expect(!kname_valid(NULL, KNAME_LABEL_MAX, false));
}

Test(kname, subdomains)
{
    const char *good[] = {"a.b", "inference-operator.ai.example.com",
                          "x-1.y-2", "a..b"};
    const char *bad[] = {".a", "a.", "a.-", "A.b", "a/b"};
    expect_all(good, COUNT(good), KNAME_SUBDOMAIN_MAX, true, true);
    expect_all(bad, COUNT(bad), KNAME_SUBDOMAIN_MAX, true, false);
}

Test(kname, length_bound_is_inclusive)
{
    char s[KNAME_SUBDOMAIN_MAX + 2];
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    cr_expect(!kname_valid(s, KNAME_SUBDOMAIN_MAX, true), "254 characters");
    s[KNAME_SUBDOMAIN_MAX] = '\0';
    cr_expect(kname_valid(s, KNAME_SUBDOMAIN_MAX, true), "253 characters");
    s[KNAME_LABEL_MAX + 1] = '\0';
    cr_expect(!kname_valid(s, KNAME_LABEL_MAX, false), "64 characters");
    s[KNAME_LABEL_MAX] = '\0';
    cr_expect(kname_valid(s, KNAME_LABEL_MAX, false), "63 characters");
}
