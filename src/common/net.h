/* net.h - socket helpers. THREADING: reentrant. */
#ifndef HD_NET_H
#define HD_NET_H

#include <stdint.h>

/* A non-blocking listening socket on host:port ("0.0.0.0" or "" = every
 * address, dual stack) with SO_REUSEADDR and SO_REUSEPORT, so several
 * sockets (one per io thread) can share the port. Returns the fd, or -1
 * with errno set. */
int hd_net_listen(const char *host, uint16_t port);

#endif /* HD_NET_H */
