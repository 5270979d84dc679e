/* soak_raw.c - a raw TCP client for the soak's misbehaving clients: it
 * sends whatever bytes it is given (half a request head, a stalled body,
 * random bytes) and reports how the server reacted: an answer (its HTTP
 * status), a close or reset, or nothing.
 *
 * DESIGN
 * ------
 * The first bytes go out once connect() completes; later ones (trickles)
 * are written at once and kept under EPOLLOUT if the socket is full. The
 * first bytes the server sends end the connection: they are an answer
 * whatever follows. A write error (EPIPE, ECONNRESET) is the server having
 * closed. Every end reports through cb once and leaves the socket closed
 * with an RST, so client-side TIME_WAIT does not pile up over an hour.
 *
 * THREADING
 * ---------
 * Loop thread of the bad worker.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "soak.h"

static void raw_on_io(bench_io *io, uint32_t events);

void soak_raw_init(soak_raw *r, bench_loop *l, soak_raw_cb cb, void *user)
{
    memset(r, 0, sizeof *r);
    r->io.cb = raw_on_io;
    r->io.fd = -1;
    r->loop = l;
    r->cb = cb;
    r->user = user;
    hd_buf_init(&r->out);
}

void soak_raw_deinit(soak_raw *r)
{
    soak_raw_close(r);
    hd_buf_deinit(&r->out);
}

void soak_raw_close(soak_raw *r)
{
    if (r->io.fd >= 0)
        bench_set_rst(r->io.fd);
    bench_loop_close(r->loop, &r->io);
    r->active = r->connected = false;
    r->out.len = 0;
}

static void raw_end(soak_raw *r, int outcome)
{
    soak_raw_close(r);
    r->cb(r, outcome, bench_now_us());
}

int soak_raw_open(soak_raw *r, const bench_target *t, const void *first, size_t len)
{
    soak_raw_close(r);
    int fd = bench_tcp_connect(t);
    if (fd < 0)
        return fd;
    r->io.fd = fd;
    r->active = true;
    r->t_open_us = bench_now_us();
    hd_buf_append(&r->out, first, len);
    if (bench_loop_add(r->loop, &r->io, EPOLLIN | EPOLLOUT) < 0) {
        int err = -errno;
        soak_raw_close(r);
        return err;
    }
    return 0;
}

static void raw_flush(soak_raw *r)
{
    if (bench_flush_out(r->io.fd, &r->out) < 0) {
        raw_end(r, 0);
        return;
    }
    bench_loop_mod(r->loop, &r->io, EPOLLIN | (r->out.len ? EPOLLOUT : 0));
}

void soak_raw_write(soak_raw *r, const void *p, size_t len)
{
    if (!r->active)
        return;
    hd_buf_append(&r->out, p, len);
    if (r->connected && r->out.len == len)
        raw_flush(r);
}

/* The server's first bytes: an HTTP status if they start like one. */
static int raw_status(const char *p, size_t n)
{
    int minor, status;
    char line[64];
    size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, p, k);
    line[k] = '\0';
    if (sscanf(line, "HTTP/1.%d %d", &minor, &status) == 2 && status > 0)
        return status;
    return 1;
}

static void raw_read(soak_raw *r)
{
    char buf[512];
    ssize_t n = read(r->io.fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    raw_end(r, n > 0 ? raw_status(buf, (size_t)n) : 0);
}

static void raw_on_io(bench_io *io, uint32_t events)
{
    soak_raw *r = (soak_raw *)io;
    if (!r->connected) {
        int err = 0;
        socklen_t sl = sizeof err;
        getsockopt(r->io.fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        if (err) {
            raw_end(r, -1);
            return;
        }
        r->connected = true;
        raw_flush(r);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        raw_read(r);
    if (r->io.fd >= 0 && (events & EPOLLOUT))
        raw_flush(r);
}
