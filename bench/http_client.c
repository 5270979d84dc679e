/* http_client.c - herald_bench's minimal HTTP/1.1 client: a keep-alive
 * connection on a bench_loop (one request in flight), a blocking one-shot
 * fetch for the parent, and the response parser both share.
 *
 * DESIGN
 * ------
 * A bench_http keeps its TCP connection between requests. When a response
 * says "Connection: close" (soketi does this after every trigger) or the
 * server closes the idle connection, the socket is closed and the next
 * request reconnects; a request that meets a keep-alive connection closed
 * before any byte of its response is resent once on a fresh connection
 * (the server had closed it while idle, so the request cannot have been
 * processed). Responses with Content-Length, chunked bodies, or bodies
 * delimited by the close are understood.
 *
 * THREADING
 * ---------
 * bench_http: loop thread only. bench_http_fetch and bench_http_parse:
 * reentrant.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench.h"

#define HTTP_MAX_HEAD 65536

/* ---- parsing ---- */

typedef struct http_head {
    int status;
    long content_length; /* -1: none */
    bool chunked, close;
} http_head;

static void parse_header_line(const char *line, size_t n, http_head *h)
{
    char tmp[256];
    if (n >= sizeof tmp)
        return;
    memcpy(tmp, line, n);
    tmp[n] = '\0';
    if (strncasecmp(tmp, "content-length:", 15) == 0)
        h->content_length = strtol(tmp + 15, NULL, 10);
    else if (strncasecmp(tmp, "transfer-encoding:", 18) == 0 && strcasestr(tmp + 18, "chunked"))
        h->chunked = true;
    else if (strncasecmp(tmp, "connection:", 11) == 0)
        h->close = strcasestr(tmp + 11, "close") != NULL;
}

static int parse_head(const char *buf, size_t head_len, http_head *h)
{
    int minor = 1;
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    if (sscanf(buf, "HTTP/1.%d %d", &minor, &h->status) != 2)
        return -1;
    h->close = minor == 0;
    const char *p = memchr(buf, '\n', head_len), *end = buf + head_len;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        size_t n = (size_t)(eol - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        parse_header_line(p, n, h);
        p = eol;
    }
    return 0;
}

/* Decode a chunked body at p; returns bytes consumed when complete, else 0. */
static size_t dechunk(const char *p, size_t len, hd_buf *body)
{
    size_t off = 0;
    body->len = 0;
    for (;;) {
        const char *eol = memmem(p + off, len - off, "\r\n", 2);
        if (!eol)
            return 0;
        unsigned long size = strtoul(p + off, NULL, 16);
        size_t data = (size_t)(eol - p) + 2;
        if (len < data + size + 2)
            return 0;
        if (size == 0) {
            const char *trailer_end = memmem(p + data - 2, len - data + 2, "\r\n\r\n", 4);
            return trailer_end ? (size_t)(trailer_end - p) + 4 : 0;
        }
        hd_buf_append(body, p + data, size);
        off = data + size + 2;
    }
}

static int parse_body(const char *buf, size_t len, bool eof, const http_head *h, bench_http_resp *resp)
{
    const char *b = buf + resp->head_len;
    size_t avail = len - resp->head_len;
    resp->body.len = 0;
    if (h->chunked) {
        size_t used = dechunk(b, avail, &resp->body);
        if (used == 0)
            return eof ? -1 : 0;
        resp->total_len = resp->head_len + used;
    } else if (h->content_length >= 0 || h->status == 204 || h->status == 304) {
        size_t cl = h->content_length > 0 ? (size_t)h->content_length : 0;
        if (avail < cl)
            return eof ? -1 : 0;
        hd_buf_append(&resp->body, b, cl);
        resp->total_len = resp->head_len + cl;
    } else {
        if (!eof)
            return 0;
        hd_buf_append(&resp->body, b, avail);
        resp->total_len = len;
        resp->close = true;
    }
    return 1;
}

static int http_parse(const char *buf, size_t len, bool eof, bench_http_resp *resp)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return len > HTTP_MAX_HEAD || (eof && len > 0) ? -1 : 0;
    http_head h;
    resp->head_len = (size_t)(end - buf) + 4;
    if (parse_head(buf, resp->head_len, &h) < 0)
        return -1;
    resp->status = h.status;
    resp->close = h.close;
    return parse_body(buf, len, eof, &h, resp);
}

int bench_http_parse(const char *buf, size_t len, bench_http_resp *resp)
{
    return http_parse(buf, len, false, resp);
}

/* ---- keep-alive client on the loop ---- */

static void http_on_io(bench_io *io, uint32_t events);

void bench_http_init(bench_http *h, bench_loop *l, const bench_target *t, bench_http_cb cb, void *user)
{
    memset(h, 0, sizeof *h);
    h->io.cb = http_on_io;
    h->io.fd = -1;
    h->loop = l;
    h->t = t;
    h->cb = cb;
    h->user = user;
    hd_buf_init(&h->out);
    hd_buf_init(&h->in);
    hd_buf_init(&h->req);
    hd_buf_init(&h->resp.body);
}

void bench_http_deinit(bench_http *h)
{
    bench_loop_close(h->loop, &h->io);
    hd_buf_deinit(&h->out);
    hd_buf_deinit(&h->in);
    hd_buf_deinit(&h->req);
    hd_buf_deinit(&h->resp.body);
}

static void http_disconnect(bench_http *h)
{
    bench_loop_close(h->loop, &h->io);
    h->connected = h->connecting = false;
    h->served = 0;
    h->in.len = h->out.len = 0;
}

static void http_finish(bench_http *h, int status, const char *body, size_t len)
{
    h->busy = false;
    h->cb(h, status, body, len, bench_now_us());
}

static int http_connect(bench_http *h)
{
    int fd = bench_tcp_connect(h->t);
    if (fd < 0)
        return -1;
    h->io.fd = fd;
    h->connecting = true;
    h->connects++;
    if (bench_loop_add(h->loop, &h->io, EPOLLIN | EPOLLOUT) < 0) {
        http_disconnect(h);
        return -1;
    }
    return 0;
}

static void http_flush(bench_http *h)
{
    bench_flush_out(h->io.fd, &h->out); /* a write error shows up as EOF on read */
    bench_loop_mod(h->loop, &h->io, EPOLLIN | (h->out.len ? EPOLLOUT : 0));
}

int bench_http_send(bench_http *h, const char *req, size_t len)
{
    if (h->busy)
        return -1;
    h->req.len = 0;
    hd_buf_append(&h->req, req, len);
    h->retried = false;
    h->busy = true;
    h->out.len = 0;
    hd_buf_append(&h->out, req, len);
    if (h->io.fd < 0 && http_connect(h) < 0) {
        h->busy = false;
        return -1;
    }
    if (h->connected)
        http_flush(h);
    return 0;
}

void bench_http_abort(bench_http *h)
{
    http_disconnect(h);
    if (h->busy)
        http_finish(h, -1, NULL, 0);
}

/* The connection ended (EOF or error) while a request was in flight. */
static void http_lost(bench_http *h)
{
    bool resend = h->busy && h->served > 0 && h->in.len == 0 && !h->retried;
    http_disconnect(h);
    if (!h->busy)
        return;
    if (resend && http_connect(h) == 0) {
        h->retried = true;
        hd_buf_append(&h->out, h->req.data, h->req.len);
        return;
    }
    http_finish(h, -1, NULL, 0);
}

static void http_on_response(bench_http *h)
{
    bool close = h->resp.close;
    memmove(h->in.data, h->in.data + h->resp.total_len, h->in.len - h->resp.total_len);
    h->in.len -= h->resp.total_len;
    h->served++;
    if (close)
        http_disconnect(h);
    if (h->busy)
        http_finish(h, h->resp.status, h->resp.body.data, h->resp.body.len);
}

static void http_read(bench_http *h)
{
    char buf[16384];
    ssize_t r = read(h->io.fd, buf, sizeof buf);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        if (h->busy && h->in.len > 0 && http_parse(h->in.data, h->in.len, true, &h->resp) == 1) {
            h->resp.close = true;
            http_on_response(h);
            return;
        }
        http_lost(h);
        return;
    }
    hd_buf_append(&h->in, buf, (size_t)r);
    int rc = http_parse(h->in.data, h->in.len, false, &h->resp);
    if (rc < 0) {
        http_disconnect(h);
        if (h->busy)
            http_finish(h, -1, NULL, 0);
    } else if (rc == 1) {
        http_on_response(h);
    }
}

static void http_on_io(bench_io *io, uint32_t events)
{
    bench_http *h = (bench_http *)io;
    if (h->connecting) {
        int err = 0;
        socklen_t sl = sizeof err;
        getsockopt(h->io.fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        if (err) {
            http_lost(h);
            return;
        }
        h->connecting = false;
        h->connected = true;
        http_flush(h);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        http_read(h);
    if (h->io.fd >= 0 && h->connected && (events & EPOLLOUT))
        http_flush(h);
}

/* ---- blocking one-shot fetch ---- */

static int wait_fd(int fd, short what, uint64_t deadline)
{
    uint64_t now = bench_now_us();
    if (now >= deadline)
        return -1;
    struct pollfd p = {.fd = fd, .events = what};
    return poll(&p, 1, (int)((deadline - now) / 1000) + 1) > 0 ? 0 : -1;
}

static int fetch_send(int fd, const char *req, size_t len, uint64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        if (wait_fd(fd, POLLOUT, deadline) < 0)
            return -1;
        ssize_t w = write(fd, req + off, len - off);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

static int fetch_recv(int fd, bench_http_resp *resp, uint64_t deadline)
{
    hd_buf in;
    char buf[16384];
    int rc = 0;
    hd_buf_init(&in);
    while (rc == 0) {
        if (wait_fd(fd, POLLIN, deadline) < 0) {
            rc = -1;
            break;
        }
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r > 0)
            hd_buf_append(&in, buf, (size_t)r);
        rc = http_parse(in.data ? in.data : "", in.len, r <= 0, resp);
        if (r <= 0 && rc == 0)
            rc = -1;
    }
    hd_buf_deinit(&in);
    return rc == 1 ? 0 : -1;
}

int bench_http_fetch(const bench_target *t, const char *req, size_t len, bench_http_resp *resp, int timeout_ms)
{
    memset(resp, 0, sizeof *resp);
    hd_buf_init(&resp->body);
    uint64_t deadline = bench_now_us() + (uint64_t)timeout_ms * 1000u;
    int fd = bench_tcp_connect(t);
    if (fd < 0)
        return -1;
    int rc = fetch_send(fd, req, len, deadline);
    if (rc == 0)
        rc = fetch_recv(fd, resp, deadline);
    close(fd);
    return rc;
}
