/* net.c - listening TCP sockets with SO_REUSEPORT, shared by the io
 * threads (one listener each on the same port) and the metrics endpoint.
 *
 * THREADING: reentrant.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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

int hd_net_listen(const char *host, uint16_t port)
{
    int fd = socket(family_of(host), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    if (bind_any(fd, host, port) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

