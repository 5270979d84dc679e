/* net.c - herald_bench's socket helpers: loopback-only target resolution,
 * non-blocking connects, RST closes, the open-file limit.
 *
 * DESIGN
 * ------
 * The tool must never load anything but this machine: bench_target_resolve
 * takes numeric addresses (and "localhost") only, accepts only 127.0.0.0/8
 * and ::1, and every connect goes through a resolved bench_target.
 *
 * THREADING
 * ---------
 * Reentrant; no state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

static bool addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

int bench_target_resolve(bench_target *t, const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char portstr[16];
    if (port <= 0 || port > 65535 || strlen(host) >= sizeof t->host) {
        fprintf(stderr, "herald_bench: bad target %s:%d\n", host, port);
        return -1;
    }
    snprintf(portstr, sizeof portstr, "%d", port);
    /* numeric addresses only (no DNS): "localhost" is taken as 127.0.0.1 */
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, portstr, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "herald_bench: %s: %s (give a numeric loopback address)\n", host, gai_strerror(rc));
        return -1;
    }
    if (!addr_is_loopback(res->ai_addr)) {
        fprintf(stderr, "herald_bench: refusing %s: only loopback targets (127.0.0.0/8, ::1)\n", host);
        freeaddrinfo(res);
        return -1;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(t->host, sizeof t->host, "%s", host);
    t->port = port;
    return 0;
}

static unsigned source_ips = 1, source_next;

void bench_set_source_ips(unsigned n)
{
    source_ips = n ? n : 1;
}

/* With several source addresses (IPv4), bind to 127.0.0.(1 + k) round
 * robin, leaving the port to connect(): each source address has its own
 * ephemeral port range towards the target, so more than ~28 000
 * connections fit. */
static int bind_source(int fd, const bench_target *t)
{
    if (source_ips <= 1 || t->addr.ss_family != AF_INET)
        return 0;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + source_next++ % source_ips);
    return bind(fd, (struct sockaddr *)&src, sizeof src);
}

int bench_tcp_connect(const bench_target *t)
{
    return bench_tcp_connect_rcvbuf(t, 0);
}

int bench_tcp_connect_rcvbuf(const bench_target *t, int rcvbuf)
{
    if (!addr_is_loopback((const struct sockaddr *)&t->addr))
        return -EPERM; /* unreachable: resolve refuses, kept as a guard */
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* before connect(), so the window offered in the handshake already
     * fits: shrinking it later makes the peer send into a closed window */
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind_source(fd, t) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

void bench_set_rst(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

long bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

int bench_flush_out(int fd, hd_buf *out)
{
    size_t off = 0;
    int rc = 0;
    while (off < out->len) {
        ssize_t w = write(fd, out->data + off, out->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = errno == EAGAIN ? 0 : -errno;
            break;
        }
        off += (size_t)w;
    }
    memmove(out->data, out->data + off, out->len - off);
    out->len -= off;
    return rc;
}

int bench_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}
