/* ws_client.c - herald_bench's minimal WebSocket client (RFC 6455) over a
 * non-blocking TCP socket on a bench_loop.
 *
 * DESIGN
 * ------
 * States: CONNECTING (waiting for connect to finish) -> UPGRADING (HTTP
 * upgrade with a random Sec-WebSocket-Key sent, 101 and the matching
 * Sec-WebSocket-Accept expected) -> OPEN -> CLOSING (close frame sent or
 * received; waiting for the server to close TCP, so TIME_WAIT stays on the
 * server side) -> IDLE. Client frames are masked with a fresh random key.
 * Server text messages (reassembled when fragmented) go to ops->on_text;
 * pings are answered with pongs; a server close frame is echoed.
 *
 * Reads land in the loop's scratch buffer and are parsed in place; only an
 * incomplete tail is copied into ws->in. Writes go out at once; what the
 * socket does not take waits in ws->out under EPOLLOUT. Buffers are kept
 * across reconnects (the object is reused) and freed by deinit, so a
 * callback may close or abort its own ws: parsing stops when the fd is -1.
 *
 * THREADING
 * ---------
 * Loop thread only.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_HEAD 8192

enum { OP_CONT = 0, OP_TEXT = 1, OP_BIN = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

static void ws_on_io(bench_io *io, uint32_t events);

static void ws_reset(bench_ws *ws)
{
    ws->state = BWS_IDLE;
    ws->pollout = 0;
    ws->paused = 0;
    ws->close_code = 0;
    ws->in.len = 0;
    ws->out.len = 0;
    ws->frag.len = 0;
}

void bench_ws_init(bench_ws *ws, bench_loop *l, const bench_ws_ops *ops)
{
    memset(ws, 0, sizeof *ws);
    ws->io.cb = ws_on_io;
    ws->io.fd = -1;
    ws->loop = l;
    ws->ops = ops;
    hd_buf_init(&ws->in);
    hd_buf_init(&ws->out);
    hd_buf_init(&ws->frag);
}

void bench_ws_deinit(bench_ws *ws)
{
    bench_ws_abort(ws);
    hd_buf_deinit(&ws->in);
    hd_buf_deinit(&ws->out);
    hd_buf_deinit(&ws->frag);
}

void bench_ws_abort(bench_ws *ws)
{
    bench_loop_close(ws->loop, &ws->io);
    ws_reset(ws);
}

static void ws_fail(bench_ws *ws, int err)
{
    bench_ws_abort(ws);
    ws->ops->on_close(ws, err);
}

static void ws_want_out(bench_ws *ws, bool want)
{
    if (ws->pollout == want || ws->io.fd < 0)
        return;
    ws->pollout = want;
    bench_loop_mod(ws->loop, &ws->io, (ws->paused ? 0 : EPOLLIN) | (want ? EPOLLOUT : 0));
}

void bench_ws_pause(bench_ws *ws, bool paused)
{
    if (ws->io.fd < 0 || ws->paused == paused)
        return;
    ws->paused = paused;
    /* an unread socket still reports EPOLLHUP / EPOLLERR: a reset is seen */
    bench_loop_mod(ws->loop, &ws->io, (paused ? 0 : EPOLLIN) | (ws->pollout ? EPOLLOUT : 0));
}

static void ws_flush(bench_ws *ws)
{
    int rc = bench_flush_out(ws->io.fd, &ws->out);
    if (rc < 0) {
        ws_fail(ws, rc);
        return;
    }
    ws_want_out(ws, ws->out.len > 0);
}

static void ws_key_pair(char key[25], char accept[32])
{
    unsigned char raw[16], digest[SHA_DIGEST_LENGTH];
    char concat[64];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = bench_rand();
        memcpy(raw + i, &r, 8);
    }
    EVP_EncodeBlock((unsigned char *)key, raw, 16);
    snprintf(concat, sizeof concat, "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)concat, strlen(concat), digest);
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
}

int bench_ws_open(bench_ws *ws, const bench_target *t)
{
    char key[25];
    ws_reset(ws);
    int fd = bench_tcp_connect_rcvbuf(t, ws->rcvbuf);
    if (fd < 0)
        return fd;
    ws->io.fd = fd;
    ws->t_open_us = bench_now_us();
    ws_key_pair(key, ws->accept);
    hd_buf_printf(&ws->out,
                  "GET /app/%s?protocol=7&client=herald-bench&version=0.1.0&flash=false HTTP/1.1\r\n"
                  "Host: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                  t->app_key, t->host, t->port, key);
    ws->state = BWS_CONNECTING;
    ws->pollout = 1;
    if (bench_loop_add(ws->loop, &ws->io, EPOLLIN | EPOLLOUT) < 0) {
        int err = -errno;
        bench_ws_abort(ws);
        return err;
    }
    return 0;
}

/* Append one masked frame to ws->out. */
static void ws_frame(bench_ws *ws, int opcode, const char *p, size_t len)
{
    unsigned char head[14];
    size_t h = 0;
    head[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        head[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        head[h++] = 0x80 | 126;
        head[h++] = (unsigned char)(len >> 8);
        head[h++] = (unsigned char)len;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            head[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    uint32_t mask32 = (uint32_t)bench_rand();
    unsigned char *mask = head + h;
    memcpy(mask, &mask32, 4);
    h += 4;
    hd_buf_reserve(&ws->out, h + len);
    hd_buf_append(&ws->out, head, h);
    unsigned char *dst = (unsigned char *)ws->out.data + ws->out.len;
    for (size_t i = 0; i < len; i++)
        dst[i] = (unsigned char)p[i] ^ mask[i & 3];
    ws->out.len += len;
    ws->out.data[ws->out.len] = '\0';
}

static void ws_send(bench_ws *ws, int opcode, const char *p, size_t len)
{
    ws_frame(ws, opcode, p, len);
    if (!ws->pollout)
        ws_flush(ws);
}

int bench_ws_send_text(bench_ws *ws, const char *msg, size_t len)
{
    if (ws->state != BWS_OPEN || ws->io.fd < 0)
        return -1;
    ws_send(ws, OP_TEXT, msg, len);
    return 0;
}

int bench_ws_send_raw(bench_ws *ws, const void *p, size_t len)
{
    if (ws->state != BWS_OPEN || ws->io.fd < 0)
        return -1;
    hd_buf_append(&ws->out, p, len);
    if (!ws->pollout)
        ws_flush(ws);
    return 0;
}

void bench_ws_close(bench_ws *ws, bool rst)
{
    if (ws->io.fd < 0)
        return;
    if (rst || ws->state != BWS_OPEN) {
        if (rst)
            bench_set_rst(ws->io.fd);
        bench_ws_abort(ws);
        return;
    }
    static const char code[2] = {(char)(1000 >> 8), (char)(1000 & 0xff)};
    ws->state = BWS_CLOSING;
    ws_send(ws, OP_CLOSE, code, 2);
}

/* The 101 response: returns bytes consumed, 0 if incomplete, -1 if refused. */
static long ws_parse_upgrade(bench_ws *ws, const char *p, size_t len)
{
    const char *end = memmem(p, len, "\r\n\r\n", 4);
    if (!end)
        return len > WS_MAX_HEAD ? -1 : 0;
    size_t hlen = (size_t)(end - p) + 4;
    char head[WS_MAX_HEAD + 1];
    if (hlen > WS_MAX_HEAD)
        return -1;
    memcpy(head, p, hlen);
    head[hlen] = '\0';
    if (strncmp(head, "HTTP/1.1 101", 12) != 0)
        return -1;
    const char *acc = strcasestr(head, "\r\nsec-websocket-accept:");
    if (!acc)
        return -1;
    acc += 23;
    while (*acc == ' ')
        acc++;
    if (strncmp(acc, ws->accept, strlen(ws->accept)) != 0)
        return -1;
    ws->state = BWS_OPEN;
    ws_want_out(ws, ws->out.len > 0);
    return (long)hlen;
}

static void ws_on_control(bench_ws *ws, int opcode, const char *p, size_t len)
{
    if (opcode == OP_PING) {
        ws_send(ws, OP_PONG, p, len);
    } else if (opcode == OP_CLOSE) {
        int code = len >= 2 ? ((unsigned char)p[0] << 8) | (unsigned char)p[1] : 1005;
        if (ws->state == BWS_OPEN) {
            ws->state = BWS_CLOSING;
            ws->close_code = code;
            ws_send(ws, OP_CLOSE, p, len >= 2 ? 2 : 0);
        }
        /* now wait for the server to close TCP (EOF) */
    }
}

static void ws_on_data(bench_ws *ws, int opcode, bool fin, char *p, size_t len, uint64_t now)
{
    if (opcode >= OP_CLOSE) {
        ws_on_control(ws, opcode, p, len);
        return;
    }
    if (opcode != OP_CONT)
        ws->frag.len = 0;
    if (fin && ws->frag.len == 0) {
        if (opcode == OP_TEXT && ws->state == BWS_OPEN)
            ws->ops->on_text(ws, p, len, now);
        return;
    }
    hd_buf_append(&ws->frag, p, len);
    if (fin && ws->state == BWS_OPEN) {
        ws->ops->on_text(ws, ws->frag.data, ws->frag.len, now);
        if (ws->io.fd >= 0)
            ws->frag.len = 0;
    }
}

size_t bench_ws_frame_head(const char *p, size_t len, bench_ws_head *out)
{
    const unsigned char *u = (const unsigned char *)p;
    if (len < 2)
        return 0;
    out->fin = u[0] & 0x80;
    out->masked = u[1] & 0x80;
    out->opcode = u[0] & 0x0f;
    uint64_t plen = u[1] & 0x7f;
    size_t h = 2;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = ((uint64_t)u[2] << 8) | u[3];
        h = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = (plen << 8) | u[2 + i];
        h = 10;
    }
    out->payload_len = plen;
    return h;
}

/* One frame at p: returns bytes consumed, 0 if incomplete. */
static size_t ws_parse_frame(bench_ws *ws, char *p, size_t len, uint64_t now)
{
    bench_ws_head fh;
    size_t h = bench_ws_frame_head(p, len, &fh);
    if (!h)
        return 0;
    const unsigned char *u = (const unsigned char *)p;
    uint64_t plen = fh.payload_len;
    size_t mh = fh.masked ? 4 : 0;
    if (len < h + mh || len - h - mh < plen)
        return 0;
    char *payload = p + h + mh;
    for (uint64_t i = 0; fh.masked && i < plen; i++)
        payload[i] ^= (char)u[h + (i & 3)];
    ws_on_data(ws, fh.opcode, fh.fin, payload, (size_t)plen, now);
    return h + mh + (size_t)plen;
}

/* Parse p[0..len): returns bytes consumed, or -1 when the ws failed. */
static long ws_process(bench_ws *ws, char *p, size_t len, uint64_t now)
{
    size_t off = 0;
    if (ws->state == BWS_UPGRADING) {
        long n = ws_parse_upgrade(ws, p, len);
        if (n < 0) {
            ws_fail(ws, -EPROTO);
            return -1;
        }
        if (n == 0)
            return 0;
        off = (size_t)n;
    }
    while (off < len && ws->io.fd >= 0) {
        size_t n = ws_parse_frame(ws, p + off, len - off, now);
        if (n == 0)
            break;
        off += n;
    }
    return ws->io.fd >= 0 ? (long)off : -1;
}

static void ws_on_eof(bench_ws *ws, int err)
{
    if (ws->state == BWS_CLOSING && err == 0) {
        int code = ws->close_code;
        bench_ws_abort(ws);
        ws->ops->on_close(ws, code);
        return;
    }
    ws_fail(ws, err ? err : BENCH_WS_EOF);
}

/* Feed freshly read bytes through ws->in when a tail is pending. */
static void ws_feed(bench_ws *ws, char *p, size_t n, uint64_t now)
{
    if (ws->in.len == 0) {
        long used = ws_process(ws, p, n, now);
        if (used >= 0 && (size_t)used < n)
            hd_buf_append(&ws->in, p + used, n - (size_t)used);
        return;
    }
    hd_buf_append(&ws->in, p, n);
    long used = ws_process(ws, ws->in.data, ws->in.len, now);
    if (used <= 0)
        return;
    memmove(ws->in.data, ws->in.data + used, ws->in.len - (size_t)used);
    ws->in.len -= (size_t)used;
}

static void ws_read(bench_ws *ws)
{
    size_t cap;
    char *buf = bench_loop_scratch(ws->loop, &cap);
    for (int round = 0; round < 4 && ws->io.fd >= 0; round++) {
        ssize_t r = read(ws->io.fd, buf, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            ws_on_eof(ws, r == 0 ? 0 : -errno);
            return;
        }
        ws_feed(ws, buf, (size_t)r, bench_now_us());
        if ((size_t)r < cap)
            return;
    }
}

static void ws_on_connected(bench_ws *ws)
{
    int err = 0;
    socklen_t sl = sizeof err;
    getsockopt(ws->io.fd, SOL_SOCKET, SO_ERROR, &err, &sl);
    if (err) {
        ws_fail(ws, -err);
        return;
    }
    ws->state = BWS_UPGRADING;
    ws_flush(ws);
}

static void ws_on_io(bench_io *io, uint32_t events)
{
    bench_ws *ws = (bench_ws *)io;
    if (ws->state == BWS_CONNECTING) {
        ws_on_connected(ws);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        ws_read(ws);
    if (ws->io.fd >= 0 && (events & EPOLLOUT))
        ws_flush(ws);
}
