/* net.h - listening sockets and the port-ownership check.
 *
 * THREADING: reentrant.
 */
#ifndef HD_NET_H
#define HD_NET_H

#include <stdint.h>

/* A non-blocking listening socket on host:port ("0.0.0.0" or "" = every
 * address, dual stack) with SO_REUSEADDR and SO_REUSEPORT, so several
 * sockets (one per io thread) can share the port. Returns the fd, or -1
 * with errno set. */
int hd_net_listen(const char *host, uint16_t port);

/* The same without SO_REUSEPORT: the only socket on host:port. Fails with
 * EADDRINUSE when any socket already listens there (a SO_REUSEPORT one
 * too), and keeps any later SO_REUSEPORT socket out. */
int hd_net_listen_exclusive(const char *host, uint16_t port);

/* 0 when no socket listens on host:port, else -1 with errno (EADDRINUSE:
 * another socket listens there). Probes with a socket bound without
 * SO_REUSEPORT and closes it at once, so call it before opening our own
 * SO_REUSEPORT listeners: those would let a second process join the port
 * silently. Port 0 (the kernel picks one) is always free. */
int hd_net_claim_port(const char *host, uint16_t port);

/* Log why host:port cannot be listened on (err: an errno). EADDRINUSE reads
 * "port P is in use: another process is listening on it"; hint, when not
 * NULL, is appended to that case. */
void hd_net_log_listen_error(const char *module, const char *host, uint16_t port, int err, const char *hint);

#endif /* HD_NET_H */
