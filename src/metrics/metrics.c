/* metrics.c - the metrics port: a small non-blocking HTTP/1.0 server for
 * Prometheus scrapes and readiness probes.
 *
 * DESIGN
 * ------
 * One thread polls the listening socket, a wake pipe and every open
 * connection (non-blocking, at most MAX_CONNS), so no client can hold up
 * another. A connection must deliver its whole request head (at most
 * HD_METRICS_HEAD_MAX bytes, else 431) within HEAD_DEADLINE_MS of its
 * accept. Arriving bytes do not move that deadline: a client trickling a
 * byte at a time, or sending nothing, costs one slot for 2 s and then gets
 * 408. The answer (HTTP/1.0, Connection: close) is written as the socket
 * takes it, within WRITE_DEADLINE_MS; then our side is shut and whatever
 * the client still sends is read and dropped until it closes (at most
 * LINGER_MS), because closing with unread input sends a reset that can
 * destroy the answer before the client reads it.
 * When every slot is taken, the oldest connection is answered 503 and
 * closed to make room: a scraper sends its request right after connecting,
 * so a crowd of idle connections cannot lock it out, it only evicts itself.
 * The listener is the only socket on its port (no SO_REUSEPORT): a second
 * herald configured with the same metrics port fails to start.
 * Scrapes are rare and small; poll() over at most 66 descriptors is plenty.
 *
 * THREADING: the metrics thread owns every socket and connection and runs
 * the render/ready callbacks. create/destroy run on the main thread;
 * destroy wakes the thread through the pipe and joins it.
 */
#include "metrics.h"
#include "metrics_internal.h"

#include "common/net.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define HEAD_DEADLINE_MS 2000
#define WRITE_DEADLINE_MS 10000
#define LINGER_MS 1000
#define ACCEPT_PAUSE_MS 100 /* out of descriptors: poll the listener again after this */
#define DRAIN_READS 16      /* per wake-up, so a client pouring data in cannot pin the thread */

typedef enum conn_state { CONN_FREE, CONN_HEAD, CONN_WRITE, CONN_LINGER } conn_state;

typedef struct conn {
    int fd;
    conn_state state;
    uint64_t seq;         /* accept order: the lowest is evicted when full */
    uint64_t deadline_ms; /* end of the current state, set on entering it */
    size_t in_len;
    size_t out_off;
    hd_buf out;
    char in[HD_METRICS_HEAD_MAX];
} conn;

struct hd_metrics {
    int listen_fd;
    int wake[2];
    pthread_t thread;
    hd_metrics_render_fn render;
    hd_metrics_ready_fn ready;
    void *ctx;
    uint64_t seq;
    uint64_t accept_paused_until; /* mono ms; 0 = the listener is polled */
    bool accept_error_logged;     /* once per run of failures */
    conn conns[MAX_CONNS];
};

static void conn_close(conn *c)
{
    close(c->fd);
    hd_buf_deinit(&c->out);
    c->fd = -1;
    c->state = CONN_FREE;
    c->in_len = 0;
    c->out_off = 0;
}

/* Write what the socket takes now; once everything is out, shut our side
 * and linger until the client closes. */
static void conn_flush(conn *c, uint64_t now)
{
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0) {
            conn_close(c);
            return;
        }
        c->out_off += (size_t)w;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_LINGER;
    c->deadline_ms = now + LINGER_MS;
}

/* c->out holds the whole answer. */
static void conn_send(conn *c, uint64_t now)
{
    c->state = CONN_WRITE;
    c->deadline_ms = now + WRITE_DEADLINE_MS;
    c->out_off = 0;
    conn_flush(c, now);
}

static void conn_error(conn *c, int status, const char *message, uint64_t now)
{
    hd_metrics_error_response(&c->out, status, message);
    conn_send(c, now);
}

static void ready_response(hd_metrics *m, hd_metrics_route route, hd_buf *out)
{
    hd_buf body, why;
    hd_buf_init(&body);
    hd_buf_init(&why);
    bool ok = route == HD_METRICS_ROUTE_UP || m->ready(m->ctx, &why);
    if (ok) {
        hd_buf_puts(&body, "{\"ok\":true}");
    } else {
        hd_buf_puts(&body, "{\"ok\":false,\"reason\":");
        hd_buf_json_string(&body, why.data ? why.data : "", why.len);
        hd_buf_puts(&body, "}");
    }
    hd_metrics_response(out, ok ? 200 : 503, "application/json", body.data, body.len);
    hd_buf_deinit(&why);
    hd_buf_deinit(&body);
}

static void conn_serve(hd_metrics *m, conn *c, uint64_t now)
{
    hd_metrics_route route = hd_metrics_route_of(c->in, c->in_len);
    if (route == HD_METRICS_ROUTE_METRICS) {
        hd_buf body;
        hd_buf_init(&body);
        m->render(m->ctx, &body);
        hd_metrics_response(&c->out, 200, "text/plain; version=0.0.4", body.data, body.len);
        hd_buf_deinit(&body);
    } else if (route == HD_METRICS_ROUTE_READY || route == HD_METRICS_ROUTE_UP) {
        ready_response(m, route, &c->out);
    } else if (route == HD_METRICS_ROUTE_BAD) {
        hd_metrics_error_response(&c->out, 400, "Bad request: malformed request line");
    } else {
        hd_metrics_error_response(&c->out, 404, "Not found: try /metrics");
    }
    conn_send(c, now);
}

/* Take what has arrived of the head; answer once it is complete. */
static void conn_read_head(hd_metrics *m, conn *c, uint64_t now)
{
    for (;;) {
        size_t before = c->in_len;
        ssize_t r = recv(c->fd, c->in + before, sizeof c->in - before, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) { /* gone (or broken) before asking anything */
            conn_close(c);
            return;
        }
        c->in_len += (size_t)r;
        hd_metrics_head st = hd_metrics_head_state(c->in, c->in_len, before, sizeof c->in);
        if (st == HD_METRICS_HEAD_DONE) {
            conn_serve(m, c, now);
            return;
        }
        if (st == HD_METRICS_HEAD_TOO_LARGE) {
            conn_error(c, 431, "Request head too large", now);
            return;
        }
    }
}

/* After the answer: drop what the client still sends; close at its EOF. */
static void conn_drain(conn *c)
{
    char sink[1024];
    for (int i = 0; i < DRAIN_READS; i++) {
        ssize_t r = recv(c->fd, sink, sizeof sink, 0);
        if (r > 0 || (r < 0 && errno == EINTR))
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_close(c);
        return;
    }
}

static void conn_event(hd_metrics *m, conn *c, short revents, uint64_t now)
{
    if (c->state == CONN_HEAD)
        conn_read_head(m, c, now); /* errors and hang-ups surface as recv() results */
    else if (c->state == CONN_WRITE && (revents & (POLLERR | POLLHUP)))
        conn_close(c);
    else if (c->state == CONN_WRITE)
        conn_flush(c, now);
    else if (c->state == CONN_LINGER)
        conn_drain(c);
}

static void expire_due(hd_metrics *m, uint64_t now)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        conn *c = &m->conns[i];
        if (c->state == CONN_FREE || now < c->deadline_ms)
            continue;
        if (c->state == CONN_HEAD)
            conn_error(c, 408, "Request head not received in time", now);
        else
            conn_close(c);
    }
}

/* A free slot; when there is none, the oldest connection is refused with a
 * best-effort 503 (one non-blocking send) and its slot reused. */
static conn *take_slot(hd_metrics *m)
{
    conn *oldest = NULL;
    for (int i = 0; i < MAX_CONNS; i++) {
        conn *c = &m->conns[i];
        if (c->state == CONN_FREE)
            return c;
        if (!oldest || c->seq < oldest->seq)
            oldest = c;
    }
    if (oldest->state == CONN_HEAD) {
        hd_buf busy;
        hd_buf_init(&busy);
        hd_metrics_error_response(&busy, 503, "Too many connections to the metrics port");
        if (send(oldest->fd, busy.data, busy.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* it goes anyway */
        }
        hd_buf_deinit(&busy);
    }
    conn_close(oldest);
    return oldest;
}

/* Out of descriptors or memory: the listener stays readable, so it is left
 * out of the poll set for a while instead of spinning on it. */
static void accept_failed(hd_metrics *m, int err, uint64_t now)
{
    if (err == EAGAIN || err == EWOULDBLOCK)
        return;
    m->accept_paused_until = now + ACCEPT_PAUSE_MS;
    if (!m->accept_error_logged)
        hd_log(HD_LOG_WARN, "metrics", "accept failed: %s (retrying every %d ms)", strerror(err), ACCEPT_PAUSE_MS);
    m->accept_error_logged = true;
}

static void accept_ready(hd_metrics *m, uint64_t now)
{
    /* At most a table's worth per turn, so the open connections get their
     * turn even while connections pour in. */
    for (int i = 0; i < MAX_CONNS; i++) {
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0) {
            accept_failed(m, errno, now);
            return;
        }
        m->accept_error_logged = false;
        conn *c = take_slot(m);
        c->fd = fd;
        c->state = CONN_HEAD;
        c->seq = ++m->seq;
        c->deadline_ms = now + HEAD_DEADLINE_MS;
        /* A scraper's request often arrives with its connection: answering
         * it now means a flood of newer connections cannot evict it unread. */
        conn_read_head(m, c, now);
    }
}

/* Milliseconds until the next deadline (or the end of an accept pause);
 * -1 when there is none. */
static int poll_timeout(const hd_metrics *m, uint64_t now)
{
    uint64_t next = m->accept_paused_until ? m->accept_paused_until : UINT64_MAX;
    for (int i = 0; i < MAX_CONNS; i++)
        if (m->conns[i].state != CONN_FREE && m->conns[i].deadline_ms < next)
            next = m->conns[i].deadline_ms;
    if (next == UINT64_MAX)
        return -1;
    return next <= now ? 0 : next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

/* p[0] the wake pipe, p[1] the listener (fd -1 while paused: poll skips
 * it), then one entry per open connection, whose slot goes in owner. */
static nfds_t poll_set(hd_metrics *m, struct pollfd *p, conn **owner, uint64_t now)
{
    if (m->accept_paused_until && now >= m->accept_paused_until)
        m->accept_paused_until = 0;
    p[0] = (struct pollfd){m->wake[0], POLLIN, 0};
    p[1] = (struct pollfd){m->accept_paused_until ? -1 : m->listen_fd, POLLIN, 0};
    nfds_t n = 2;
    for (int i = 0; i < MAX_CONNS; i++) {
        conn *c = &m->conns[i];
        if (c->state == CONN_FREE)
            continue;
        owner[n - 2] = c;
        p[n++] = (struct pollfd){c->fd, c->state == CONN_WRITE ? POLLOUT : POLLIN, 0};
    }
    return n;
}

static void *metrics_main(void *arg)
{
    hd_metrics *m = arg;
    struct pollfd p[2 + MAX_CONNS];
    conn *owner[MAX_CONNS];
    for (;;) {
        uint64_t now = hd_mono_ms();
        nfds_t n = poll_set(m, p, owner, now);
        if (poll(p, n, poll_timeout(m, now)) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        now = hd_mono_ms();
        for (nfds_t i = 2; i < n; i++)
            if (p[i].revents)
                conn_event(m, owner[i - 2], p[i].revents, now);
        expire_due(m, now);
        if (p[1].revents & POLLIN)
            accept_ready(m, now);
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (m->conns[i].state != CONN_FREE)
            conn_close(&m->conns[i]);
    return NULL;
}

int hd_metrics_create(hd_metrics **out, const char *host, uint16_t port, hd_metrics_render_fn render,
                      hd_metrics_ready_fn ready, void *ctx)
{
    *out = NULL;
    hd_metrics *m = hd_calloc(1, sizeof *m);
    m->render = render;
    m->ready = ready;
    m->ctx = ctx;
    for (int i = 0; i < MAX_CONNS; i++)
        m->conns[i].fd = -1;
    m->listen_fd = hd_net_listen_exclusive(host, port);
    if (m->listen_fd < 0) {
        hd_net_log_listen_error("metrics", host, port, errno, NULL);
        hd_free(m);
        return HD_EIO;
    }
    if (pipe2(m->wake, O_CLOEXEC) != 0) {
        close(m->listen_fd);
        hd_free(m);
        return HD_ETHREAD;
    }
    if (pthread_create(&m->thread, NULL, metrics_main, m) != 0) {
        close(m->wake[0]);
        close(m->wake[1]);
        close(m->listen_fd);
        hd_free(m);
        return HD_ETHREAD;
    }
    hd_log(HD_LOG_NOTICE, "metrics", "Prometheus metrics on http://%s:%u/metrics", host, port);
    *out = m;
    return 0;
}

void hd_metrics_destroy(hd_metrics *m)
{
    if (!m)
        return;
    if (write(m->wake[1], "x", 1) < 0) { /* the thread polls the pipe; nothing else to do */
    }
    pthread_join(m->thread, NULL);
    close(m->wake[0]);
    close(m->wake[1]);
    close(m->listen_fd);
    hd_free(m);
}
