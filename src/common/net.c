/* net.c - listening TCP sockets: SO_REUSEPORT ones shared by the io
 * threads (one listener each on the same port), an exclusive one for the
 * metrics endpoint, and the probe that keeps a second herald off a port
 * that is already served (SO_REUSEPORT alone would let it in silently and
 * the kernel would split new clients between the two processes).
 *
 * THREADING: reentrant.
 */
#include "net.h"

#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bind_any(int fd, const char *host, uint16_t port)
{
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any};
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (!*host || !strcmp(host, "::") || !strcmp(host, "0.0.0.0")) {
        int off = 0; /* dual stack: IPv4 clients arrive as v4-mapped */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        return bind(fd, (struct sockaddr *)&a6, sizeof a6);
    }
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1)
        return bind(fd, (struct sockaddr *)&a4, sizeof a4);
    if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1)
        return bind(fd, (struct sockaddr *)&a6, sizeof a6);
    errno = EINVAL;
    return -1;
}

static int family_of(const char *host)
{
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1 && strcmp(host, "0.0.0.0") ? AF_INET : AF_INET6;
}

static int open_bound(const char *host, uint16_t port, bool reuse_port)
{
    int fd = socket(family_of(host), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    /* SO_REUSEADDR: sockets of a previous run in TIME_WAIT do not block the
     * port; on Linux it never lets two sockets listen on one port. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (reuse_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    if (bind_any(fd, host, port) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int listen_on(const char *host, uint16_t port, bool reuse_port)
{
    int fd = open_bound(host, port, reuse_port);
    if (fd < 0 || listen(fd, 4096) == 0)
        return fd;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int hd_net_listen(const char *host, uint16_t port)
{
    return listen_on(host, port, true);
}

int hd_net_listen_exclusive(const char *host, uint16_t port)
{
    return listen_on(host, port, false);
}

int hd_net_claim_port(const char *host, uint16_t port)
{
    if (port == 0)
        return 0;
    /* Bound without SO_REUSEPORT, the probe conflicts with every listening
     * socket on the port (or on the wildcard address), SO_REUSEPORT or not;
     * it never listens itself, so it takes nothing from anyone. */
    int fd = open_bound(host, port, false);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

void hd_net_log_listen_error(const char *module, const char *host, uint16_t port, int err, const char *hint)
{
    if (err == EADDRINUSE)
        hd_log(HD_LOG_ERR, module, "cannot listen on %s:%u: port %u is in use: another process is listening on it%s%s",
               host, port, port, hint ? " " : "", hint ? hint : "");
    else
        hd_log(HD_LOG_ERR, module, "cannot listen on %s:%u: %s", host, port, strerror(err));
}
