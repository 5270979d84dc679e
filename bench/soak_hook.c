/* soak_hook.c - the soak's webhook receiver: an HTTP/1.1 server on
 * 127.0.0.1:--webhook-port that answers every request 200 at once, so
 * herald's webhook queues, batching and delayed events take part in the
 * soak without a slow endpoint of their own making.
 *
 * DESIGN
 * ------
 * One listener and up to HOOK_CONNS keep-alive connections on the role's
 * loop. A request is complete when its head and Content-Length bytes of
 * body are in; "Expect: 100-continue" gets its interim answer so the sender
 * does not wait. Requests, body bytes and events (each "name" member of the
 * body is one webhook event) are counted. A connection whose request grows
 * past HOOK_MAX_REQUEST or that does not parse is closed and counted bad.
 *
 * THREADING
 * ---------
 * Single-threaded worker process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "soak.h"

#define HOOK_CONNS 64
#define HOOK_MAX_REQUEST (4u << 20)

typedef struct soak_hook soak_hook;
typedef struct hook_conn {
    bench_io io;        /* first */
    soak_hook *h;
    hd_buf in, out;
    bool continued;     /* 100 Continue sent for the request in progress */
} hook_conn;

struct soak_hook {
    bench_loop *loop;
    bench_child *c;
    bench_result res;
    uint64_t *x;
    bench_io listener;
    hook_conn conns[HOOK_CONNS];
};

static void conn_close(hook_conn *k)
{
    bench_loop_close(k->h->loop, &k->io);
    k->in.len = k->out.len = 0;
    k->continued = false;
}

static long header_value(const char *head, size_t len, const char *name, char *val, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = head; p && p < head + len;) {
        const char *eol = memmem(p, (size_t)(head + len - p), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(eol - v) < cap - 1 ? (size_t)(eol - v) : cap - 1;
            memcpy(val, v, vl);
            val[vl] = '\0';
            return (long)vl;
        }
        p = eol + 2;
    }
    return -1;
}

static uint64_t count_events(const char *body, size_t len)
{
    uint64_t n = 0;
    for (const char *p = body; (p = memmem(p, (size_t)(body + len - p), "\"name\"", 6)); p += 6)
        n++;
    return n;
}

static void conn_send(hook_conn *k, const char *s)
{
    hd_buf_puts(&k->out, s);
    if (bench_flush_out(k->io.fd, &k->out) < 0) {
        conn_close(k);
        return;
    }
    bench_loop_mod(k->h->loop, &k->io, EPOLLIN | (k->out.len ? EPOLLOUT : 0));
}

/* One request at the front of k->in: 1 handled, 0 incomplete, -1 bad. */
static int conn_request(hook_conn *k)
{
    const char *end = memmem(k->in.data, k->in.len, "\r\n\r\n", 4);
    if (!end)
        return k->in.len > HOOK_MAX_REQUEST ? -1 : 0;
    size_t head = (size_t)(end - k->in.data) + 4;
    char val[64];
    long cl = header_value(k->in.data, head, "content-length", val, sizeof val) > 0 ? strtol(val, NULL, 10) : 0;
    if (cl < 0 || (size_t)cl > HOOK_MAX_REQUEST)
        return -1;
    if (k->in.len < head + (size_t)cl) {
        if (!k->continued && header_value(k->in.data, head, "expect", val, sizeof val) > 0 &&
            strcasecmp(val, "100-continue") == 0) {
            k->continued = true;
            conn_send(k, "HTTP/1.1 100 Continue\r\n\r\n");
        }
        return 0;
    }
    soak_hook *h = k->h;
    h->x[SX_HOOK_REQUESTS]++;
    h->x[SX_HOOK_BYTES] += (uint64_t)cl;
    h->x[SX_HOOK_EVENTS] += count_events(k->in.data + head, (size_t)cl);
    size_t used = head + (size_t)cl;
    memmove(k->in.data, k->in.data + used, k->in.len - used);
    k->in.len -= used;
    k->continued = false;
    conn_send(k, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    return 1;
}

static void conn_on_io(bench_io *io, uint32_t events)
{
    hook_conn *k = (hook_conn *)io;
    if (events & EPOLLOUT) {
        conn_send(k, "");
        if (k->io.fd < 0)
            return;
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    char buf[16384];
    ssize_t r = read(k->io.fd, buf, sizeof buf);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        conn_close(k);
        return;
    }
    hd_buf_append(&k->in, buf, (size_t)r);
    int rc;
    while (k->io.fd >= 0 && k->in.len > 0 && (rc = conn_request(k)) != 0) {
        if (rc < 0) {
            k->h->x[SX_HOOK_BAD]++;
            conn_close(k);
        }
    }
}

static void hook_accept(bench_io *io, uint32_t events)
{
    soak_hook *h = (soak_hook *)((char *)io - offsetof(soak_hook, listener));
    (void)events;
    for (int n = 0; n < HOOK_CONNS; n++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        hook_conn *k = NULL;
        for (int i = 0; i < HOOK_CONNS && !k; i++)
            if (h->conns[i].io.fd < 0)
                k = &h->conns[i];
        if (!k) {
            h->x[SX_HOOK_BAD]++;
            close(fd);
            continue;
        }
        k->io.fd = fd;
        if (bench_loop_add(h->loop, &k->io, EPOLLIN) < 0)
            conn_close(k);
    }
}

static int hook_listen(soak_hook *h, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(0x7f000001u); /* loopback only */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 256) < 0) {
        fprintf(stderr, "soak: webhook receiver on 127.0.0.1:%d: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    h->listener.fd = fd;
    h->listener.cb = hook_accept;
    return bench_loop_add(h->loop, &h->listener, EPOLLIN);
}

static void hook_on_cmd(void *arg, char cmd)
{
    soak_hook *h = arg;
    if (cmd == 'q') {
        soak_post(h->c, &h->res, h->x);
        bench_loop_stop(h->loop);
    }
}

int soak_hook_main(bench_child *c)
{
    static soak_hook h;
    h.loop = bench_loop_create();
    h.c = c;
    h.x = hd_calloc(soak_extra_len(c->o), sizeof *h.x);
    h.listener.fd = -1;
    for (int i = 0; i < HOOK_CONNS; i++) {
        h.conns[i].io.fd = -1;
        h.conns[i].io.cb = conn_on_io;
        h.conns[i].h = &h;
        hd_buf_init(&h.conns[i].in);
        hd_buf_init(&h.conns[i].out);
    }
    hook_listen(&h, c->o->soak.webhook_port);
    bench_child_post(c, BM_READY, NULL, 0);
    bench_child_watch(c, h.loop, hook_on_cmd, &h);
    bench_loop_run(h.loop, NULL, NULL);
    for (int i = 0; i < HOOK_CONNS; i++) {
        conn_close(&h.conns[i]);
        hd_buf_deinit(&h.conns[i].in);
        hd_buf_deinit(&h.conns[i].out);
    }
    bench_loop_close(h.loop, &h.listener);
    hd_free(h.x);
    bench_loop_destroy(h.loop);
    return 0;
}
