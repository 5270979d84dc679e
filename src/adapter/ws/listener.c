/* listener.c - one listening socket per io thread, all bound to the same
 * port with SO_REUSEPORT so the kernel spreads new connections over the
 * threads, and accepted ahead of everything else the thread has to do.
 *
 * DESIGN
 * ------
 * libwebsockets 4.1 sets SO_REUSEPORT only on Windows, so each context is
 * created without a listener and we open our own, watched by the thread's
 * libev loop rather than by lws:
 *
 * - Accept first. epoll reports ready sockets in the order they became
 *   ready, so in a mass disconnect a listener that becomes readable waits
 *   behind every dropped socket already reported ready (19 000 of them took
 *   ~0.5 s to close). Besides its EV_MAXPRI io watcher, which serves an
 *   idle loop, the listener is therefore polled once per loop turn by a
 *   prepare watcher: a non-blocking accept4() that usually says EAGAIN.
 * - Handshake in the same step. A new socket registered with epoll would
 *   queue behind the same backlog for its upgrade request, so whatever has
 *   already arrived is read right after accept(). A complete WebSocket
 *   handshake is handed to lws with the socket at once
 *   (lws_adopt_socket_vhost_readbuf), which runs the handshake in the same
 *   turn; connection_established is written from ESTABLISHED (session.c).
 *   Anything else (a head still on its way, an HTTP API request) goes to
 *   herald's own HTTP front end (http_front.c), which owns the socket from
 *   then on, with deadlines, until it answers or hands a handshake to lws.
 *   The bytes are consumed, never peeked: a socket with unread bytes stays
 *   readable, and a stalled half-sent head used to make the loop spin.
 *
 * THREADING: each listener belongs to one io thread.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapter/adapter_internal.h"
#include "http/http_api.h"

/* The first read of a new connection: an HTTP request line and headers. */
#define FIRST_READ_SIZE 4096
#define ACCEPT_PAUSE_S 0.1

static const hd_http_head_limits first_read_limits = {FIRST_READ_SIZE, FIRST_READ_SIZE, 100};

/* A complete WebSocket handshake that may go straight to lws? */
static bool is_ready_handshake(hd_io_thread *io, const char *buf, size_t n)
{
    hd_http_head head;
    if (hd_http_parse_head(buf, n, &first_read_limits, &head) <= 0)
        return false;
    if (!head.upgrade_websocket || strcmp(head.method, "GET") != 0)
        return false;
    /* With connection rate limits on, the front end takes the token (and
     * answers 429): one place, one token per handshake. */
    const hd_config *cfg = io->srv->cfg;
    return !cfg->limits.new_connections_per_second && !cfg->limits.new_connections_per_ip_per_second;
}

static void adopt(hd_io_thread *io, int fd, uint32_t peer)
{
    if (io->srv->tls) { /* the TLS handshake comes first: the front end does it */
        hd_front_accept(io, fd, peer, NULL, 0);
        return;
    }
    char buf[FIRST_READ_SIZE];
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        close(fd);
        return;
    }
    size_t n = got > 0 ? (size_t)got : 0;
    if (n && is_ready_handshake(io, buf, n)) {
        /* On failure lws 4.1 closes fd itself (every failure path of
         * socket adoption does), so a NULL needs nothing from us. */
        lws_adopt_socket_vhost_readbuf(io->vhost, fd, buf, n);
        return;
    }
    hd_front_accept(io, fd, peer, buf, n);
}

/* Out of descriptors: the pending connection keeps the listener readable,
 * so accepting stops for ACCEPT_PAUSE_S instead of spinning (and logging)
 * on every turn; closes meanwhile free descriptors. */
static void accept_pause(hd_io_thread *io)
{
    uint64_t now = hd_mono_ms();
    if (now - io->accept_pause_logged_ms >= 10000u) { /* once per 10 s while it lasts */
        io->accept_pause_logged_ms = now;
        hd_log(HD_LOG_WARN, "listener", "io thread %u: out of file descriptors; accepting in pauses of %.0f ms",
               io->index, ACCEPT_PAUSE_S * 1000);
    }
    ev_io_stop(io->loop, &io->listen_watcher);
    ev_prepare_stop(io->loop, &io->accept_turn);
    ev_timer_set(&io->accept_resume, ACCEPT_PAUSE_S, 0);
    ev_timer_start(io->loop, &io->accept_resume);
}

static void on_accept_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    hd_io_thread *io = w->data;
    ev_io_start(loop, &io->listen_watcher);
    ev_prepare_start(loop, &io->accept_turn);
}

static void accept_all(hd_io_thread *io)
{
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(io->listen_fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                accept_pause(io);
            return; /* EAGAIN, or retried on the next turn */
        }
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        adopt(io, fd, hd_admission_peer_hash(&peer));
    }
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    accept_all(w->data);
}

static void on_turn(struct ev_loop *loop, ev_prepare *w, int revents)
{
    accept_all(w->data);
    hd_young_serve(w->data); /* and the first messages of those accepted lately (young.c) */
}

void hd_listener_start(hd_io_thread *io, int fd)
{
    io->listen_fd = fd;
    io->vhost = lws_get_vhost_by_name(io->ctx, "default");
    ev_io_init(&io->listen_watcher, on_readable, fd, EV_READ);
    ev_set_priority(&io->listen_watcher, EV_MAXPRI);
    io->listen_watcher.data = io;
    ev_io_start(io->loop, &io->listen_watcher);
    ev_prepare_init(&io->accept_turn, on_turn);
    io->accept_turn.data = io;
    ev_prepare_start(io->loop, &io->accept_turn);
    ev_timer_init(&io->accept_resume, on_accept_resume, ACCEPT_PAUSE_S, 0);
    io->accept_resume.data = io;
}

void hd_listener_stop(hd_io_thread *io)
{
    if (io->listen_fd < 0)
        return;
    ev_io_stop(io->loop, &io->listen_watcher);
    ev_prepare_stop(io->loop, &io->accept_turn);
    ev_timer_stop(io->loop, &io->accept_resume);
    close(io->listen_fd);
    io->listen_fd = -1;
}
