/*
 * http_deadline.h — an absolute deadline per connection of the HTTPS
 * server, enforced by a reaper thread.
 *
 * libmicrohttpd only times out a connection that is silent: a client that
 * sends its TLS handshake, its headers or its body one byte every few
 * seconds (slowloris, slow POST) resets that timer forever and holds one
 * of the --max-connections slots for as long as it likes.  Here every
 * connection also has an absolute deadline (CLOCK_MONOTONIC) that
 * activity does not push back:
 *
 *   accepted             now + header timeout   (TLS + first headers)
 *   headers in           now + request timeout  (body + answer)
 *   answer sent          now + idle + header timeout (keep-alive, then the
 *                        next request's headers)
 *
 * Past it the reaper shuts the socket down (shutdown(2), never close: the
 * descriptor stays libmicrohttpd's), which libmicrohttpd sees as the peer
 * going away and closes the connection the normal way.  A connection is
 * only ever shut down while registered, and libmicrohttpd unregisters it
 * (NOTIFY_CLOSED) before closing its descriptor, under the same lock, so
 * a reused descriptor number is never touched.
 */
#ifndef SRV_HTTP_DEADLINE_H
#define SRV_HTTP_DEADLINE_H

#include <stddef.h>
#include <stdint.h>

/* How often the reaper looks: the deadline's granularity. */
#define SRV_DEADLINE_TICK_MS 250
/* Connections at once that count as a burst, after which freed memory is
 * returned to the kernel once three quarters of them are gone. */
#define SRV_TRIM_BURST_MIN 64

struct srv_deadlines;
struct srv_conn_deadline;

/* Start the reaper.  Returns 0, or -1 with err. */
int srv_deadlines_start(struct srv_deadlines **out, char *err, size_t errlen);

/* Stop the reaper and free everything; call after the daemon stopped
 * (every connection unregistered). */
void srv_deadlines_stop(struct srv_deadlines *d);

/* Register a freshly accepted connection's socket with a deadline of
 * timeout_ms from now.  NULL when out of memory (the connection then has
 * only libmicrohttpd's inactivity timeout). */
struct srv_conn_deadline *srv_deadlines_add(struct srv_deadlines *d, int fd,
                                            uint64_t timeout_ms);

/* Move a registered connection's deadline to timeout_ms from now. */
void srv_deadline_extend(struct srv_conn_deadline *cd, uint64_t timeout_ms);

/* Unregister (before libmicrohttpd closes the socket) and free. */
void srv_deadlines_remove(struct srv_deadlines *d, struct srv_conn_deadline *cd);

/* Connections shut down for passing their deadline, since start. */
uint64_t srv_deadlines_expired(const struct srv_deadlines *d);

#endif
