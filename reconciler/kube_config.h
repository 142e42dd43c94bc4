/*
 * kube_config.h — where the API server is and how to authenticate to it.
 *
 * Two sources, as client-go has them:
 *   - a kubeconfig file (--kubeconfig, else $KUBECONFIG's first file, else
 *     ~/.kube/config): the current context's cluster and user.  Supported:
 *     server, certificate-authority(-data), insecure-skip-tls-verify,
 *     client-certificate(-data) + client-key(-data), token, tokenFile.
 *     exec plugins and auth-providers fail at load time with a message that
 *     names them.  Inline *-data is decoded and written to private 0600
 *     files in a 0700 temp dir, because libcurl's GnuTLS backend only takes
 *     paths; kube_config_free removes them.
 *   - in-cluster: KUBERNETES_SERVICE_HOST/PORT and the service-account
 *     directory (token, ca.crt, namespace).  The token is a *file*: bound
 *     tokens rotate, so the client re-reads it (kube_client.h).
 */
#ifndef KUBE_CONFIG_H
#define KUBE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define KUBE_SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"
/* A kubeconfig or credential file larger than this is refused. */
#define KUBE_CONFIG_FILE_MAX (4 * 1024 * 1024)
#define KUBE_SERVER_MAX 512
#define KUBE_TOKEN_MAX 16384
#define KUBE_NAMESPACE_MAX 64

struct kube_config {
    char server[KUBE_SERVER_MAX];     /* "https://host:port", no trailing '/' */
    char ca_file[PATH_MAX];           /* "" = the system trust store          */
    char cert_file[PATH_MAX];         /* client certificate, or ""            */
    char key_file[PATH_MAX];          /* its key, or ""                       */
    char token_file[PATH_MAX];        /* bearer token re-read from here, or "" */
    char token[KUBE_TOKEN_MAX];       /* static bearer token, or ""           */
    bool insecure_skip_verify;
    char namespace_[KUBE_NAMESPACE_MAX]; /* context / pod namespace, or ""   */
    char source[PATH_MAX + 32];       /* "kubeconfig /path" or "in-cluster"   */
    char tmp_dir[PATH_MAX];           /* private dir for *-data files, or ""  */
};

/*
 * Load from a kubeconfig file.  path NULL: $KUBECONFIG (first entry of a
 * ':'-separated list), else in-cluster when KUBERNETES_SERVICE_HOST is set,
 * else ~/.kube/config.  Returns 0, or -1 with a message naming the file and
 * what is wrong or unsupported.
 */
int kube_config_load(const char *path, struct kube_config *out, char *err,
                     size_t errlen);

/* Load one kubeconfig file (no fallbacks).  context NULL = current-context. */
int kube_config_from_file(const char *path, const char *context,
                          struct kube_config *out, char *err, size_t errlen);

/*
 * In-cluster config from KUBERNETES_SERVICE_HOST/PORT and sa_dir (NULL =
 * KUBE_SA_DIR_DEFAULT): ca.crt, token (as token_file), namespace.
 */
int kube_config_in_cluster(const char *sa_dir, struct kube_config *out,
                           char *err, size_t errlen);

/* Remove the private temp files, wipe the token.  Safe on a zeroed struct. */
void kube_config_free(struct kube_config *cfg);

#endif
