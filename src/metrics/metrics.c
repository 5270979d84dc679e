/* metrics.c - a tiny blocking HTTP/1.0 server for Prometheus scrapes.
 *
 * DESIGN
 * ------
 * Scrapes are rare and small, so one thread polls the listening socket
 * and a wake pipe, answers one request per connection (Connection: close)
 * with a 2 s read deadline, and closes. Nothing here is on a hot path.
 *
 * THREADING: the metrics thread owns the sockets; destroy() wakes it
 * through the pipe and joins it.
 */
#include "metrics.h"

#include "common/net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


struct hd_metrics {
    int listen_fd;
    int wake[2];
    pthread_t thread;
    hd_metrics_render_fn render;
    hd_metrics_ready_fn ready;
    void *ctx;
};

void hd_metrics_family(hd_buf *out, const char *name, const char *type, const char *help)
{
    hd_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void hd_metrics_sample(hd_buf *out, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        hd_buf_printf(out, "%s{%s} %.17g\n", name, labels, value);
    else
        hd_buf_printf(out, "%s %.17g\n", name, value);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *type, const hd_buf *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Not Found", type,
                     body->len);
    write_all(fd, head, (size_t)n);
    write_all(fd, body->data ? body->data : "", body->len);
}

/* Read until the end of the request head (or 2 s, or 4 KiB). */
static bool read_head(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len < cap - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0)
            return false;
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            return false;
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return true;
    }
    return false;
}

static void serve_one(hd_metrics *m, int fd)
{
    char req[4096];
    if (!read_head(fd, req, sizeof req))
        return;
    hd_buf body;
    hd_buf_init(&body);
    if (!strncmp(req, "GET /metrics", 12)) {
        m->render(m->ctx, &body);
        respond(fd, 200, "text/plain; version=0.0.4", &body);
    } else if (!strncmp(req, "GET /ready", 10) || !strncmp(req, "GET /up", 7)) {
        hd_buf why;
        hd_buf_init(&why);
        bool ok = !strncmp(req, "GET /up", 7) || m->ready(m->ctx, &why);
        hd_buf_puts(&body, ok ? "{\"ok\":true}" : "{\"ok\":false,\"reason\":");
        if (!ok) {
            hd_buf_json_string(&body, why.data ? why.data : "", why.len);
            hd_buf_puts(&body, "}");
        }
        respond(fd, ok ? 200 : 503, "application/json", &body);
        hd_buf_deinit(&why);
    } else {
        hd_buf_puts(&body, "{\"error\":\"Not found: try /metrics\"}");
        respond(fd, 404, "application/json", &body);
    }
    hd_buf_deinit(&body);
}

static void *metrics_main(void *arg)
{
    hd_metrics *m = arg;
    for (;;) {
        struct pollfd p[2] = {{m->listen_fd, POLLIN, 0}, {m->wake[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve_one(m, fd);
        close(fd);
    }
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
    m->listen_fd = hd_net_listen(host, port);
    if (m->listen_fd < 0) {
        hd_log(HD_LOG_ERR, "metrics", "cannot listen on %s:%u: %s", host, port, strerror(errno));
        hd_free(m);
        return HD_EIO;
    }
    if (pipe2(m->wake, O_CLOEXEC) != 0 || pthread_create(&m->thread, NULL, metrics_main, m) != 0) {
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
