/*
 * floor.c — the cheapest admission webhook the stack allows: the same
 * libmicrohttpd daemon flags, thread pool, TLS priorities and key pair as
 * the operator, but a handler that only drains the body and answers one
 * constant AdmissionReview.  Whatever it costs is the stack's price; the
 * operator's figures are reported as a ratio to it.
 *
 *   floor CERT_DIR [PORT]     PORT 0 (default) picks a free port
 *
 * Logs {"msg":"serving","port":N} on stderr once listening, like the
 * operator, and stops on SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The operator's default TLS priorities (server/http.h). */
#define PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static const char answer[] =
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
    "\"response\":{\"uid\":\"705ab4f5-6393-11e8-b7cc-42010a800002\","
    "\"allowed\":true}}";

/* Marks a request whose headers were seen, so later calls drain the body. */
static char started;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct MHD_Response *resp = cls;
    (void)url, (void)method, (void)version, (void)upload;
    if (*con_cls == NULL) {
        *con_cls = &started;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0;     /* read and dropped: the floor parses nothing */
        return MHD_YES;
    }
    return MHD_queue_response(c, MHD_HTTP_OK, resp);
}

/* Reads a whole small PEM file into a NUL-terminated heap string. */
static char *slurp(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    char *buf = calloc(1, 65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (buf && n == 0) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: floor CERT_DIR [PORT]\n");
        return 2;
    }
    unsigned port = argc == 3 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
    char *cert = slurp(argv[1], "tls.crt");
    char *key = slurp(argv[1], "tls.key");
    if (cert == NULL || key == NULL)
        return 1;

    /* Signals are taken by sigwait() below; block them before MHD's
     * threads start so they inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* One response shared by every request: MHD reference-counts it. */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof(answer) - 1, (void *)answer, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return 1;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    /* The same flags as server/http.c, so only the handler differs. */
    unsigned flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, resp,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(ncpu > 0 ? ncpu : 1),
        MHD_OPTION_HTTPS_MEM_CERT, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_HTTPS_PRIORITIES, PRIORITIES,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u,
        MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "floor: MHD_start_daemon failed\n");
        return 1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "{\"msg\":\"serving\",\"port\":%u,\"threads\":%ld}\n",
            info ? info->port : 0, ncpu);
    fflush(stderr);

    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    free(cert);
    free(key);
    return 0;
}
