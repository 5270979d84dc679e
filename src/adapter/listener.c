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
 *   queue behind the same backlog for its upgrade request, so a complete
 *   GET request already waiting is read right after accept() and handed to
 *   lws with the socket (lws_adopt_socket_vhost_readbuf), which runs the
 *   handshake at once; connection_established is written from ESTABLISHED
 *   (session.c). A socket whose request is still on its way waits on a
 *   short list (HD_MAX_PENDING_ACCEPTS, at most HD_PENDING_ACCEPT_MS),
 *   looked at on every turn and by its own EV_MAXPRI watcher. Anything
 *   else (an HTTP API POST, a request that does not fit the first read)
 *   is adopted without data and read by lws as usual.
 *
 * THREADING: each listener belongs to one io thread.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapter_internal.h"

/* The first read of a new connection: an HTTP request line and headers. */
#define FIRST_READ_SIZE 4096
#define ACCEPT_PAUSE_S 0.1

/* What to do with a new socket, judging by what has arrived on it. Only a
 * complete GET head with nothing after it is handed to lws as read data
 * (FR_HEAD): lws 4.1 mishandles a request body that arrives in the same
 * buffer (HTTP API POSTs then fail their body_md5 check), so anything else
 * stays in the socket for lws to read (FR_OTHER). A GET whose head is
 * still arriving, while it fits the buffer, waits (FR_WAIT). */
enum first_read { FR_WAIT, FR_HEAD, FR_OTHER, FR_GONE };

static enum first_read first_read(int fd, char *buf, size_t *head)
{
    ssize_t got = recv(fd, buf, FIRST_READ_SIZE, MSG_PEEK);
    if (got < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? FR_WAIT : FR_GONE;
    if (got == 0)
        return FR_GONE;
    size_t n = (size_t)got;
    if (memcmp(buf, "GET ", n < 4 ? n : 4) != 0)
        return FR_OTHER;
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (!end)
        return n < FIRST_READ_SIZE ? FR_WAIT : FR_OTHER;
    *head = (size_t)(end + 4 - buf);
    return *head == n ? FR_HEAD : FR_OTHER;
}

/* On failure lws 4.1 closes fd itself (every failure path of socket
 * adoption does), so a NULL from lws_adopt_* needs nothing from us. */
static void adopt_plain(hd_io_thread *io, int fd)
{
    lws_adopt_socket_vhost(io->vhost, fd);
}

/* Adopt fd if its first read says how; false while it should wait. */
static bool try_adopt(hd_io_thread *io, int fd)
{
    char buf[FIRST_READ_SIZE];
    size_t head = 0;
    switch (first_read(fd, buf, &head)) {
    case FR_WAIT:
        return false;
    case FR_GONE:
        close(fd);
        return true;
    case FR_HEAD:
        if (recv(fd, buf, head, 0) == (ssize_t)head) {
            lws_adopt_socket_vhost_readbuf(io->vhost, fd, buf, head);
            return true;
        }
        break;
    case FR_OTHER:
        break;
    }
    adopt_plain(io, fd);
    return true;
}

/* ---- sockets accepted before their request arrived ---- */

static void on_pending_readable(struct ev_loop *loop, ev_io *w, int revents);

static void pending_arm(hd_io_thread *io, hd_pending_accept *p, int fd, uint64_t since_ms)
{
    p->fd = fd;
    p->since_ms = since_ms;
    ev_io_init(&p->watcher, on_pending_readable, fd, EV_READ);
    ev_set_priority(&p->watcher, EV_MAXPRI);
    p->watcher.data = io;
    ev_io_start(io->loop, &p->watcher);
}

/* libev holds each watcher by address: the last entry moves into the hole
 * stopped and is started again there. */
static void pending_remove(hd_io_thread *io, unsigned i)
{
    ev_io_stop(io->loop, &io->pending[i].watcher);
    unsigned last = --io->n_pending;
    if (i == last)
        return;
    hd_pending_accept *moved = &io->pending[last];
    ev_io_stop(io->loop, &moved->watcher);
    pending_arm(io, &io->pending[i], moved->fd, moved->since_ms);
}

static void pending_check(hd_io_thread *io)
{
    uint64_t now = hd_mono_ms();
    for (unsigned i = 0; i < io->n_pending;) {
        hd_pending_accept *p = &io->pending[i];
        int fd = p->fd;
        if (now - p->since_ms >= HD_PENDING_ACCEPT_MS) {
            pending_remove(io, i);
            if (!try_adopt(io, fd))
                adopt_plain(io, fd); /* lws' own handshake timeout takes over */
        } else if (try_adopt(io, fd)) {
            pending_remove(io, i);
        } else {
            i++;
        }
    }
}

static void on_pending_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    pending_check(w->data);
}

static void adopt(hd_io_thread *io, int fd)
{
    if (try_adopt(io, fd))
        return;
    if (io->n_pending == HD_MAX_PENDING_ACCEPTS) {
        adopt_plain(io, fd);
        return;
    }
    pending_arm(io, &io->pending[io->n_pending++], fd, hd_mono_ms());
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
        int fd = accept4(io->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                accept_pause(io);
            return; /* EAGAIN, or retried on the next turn */
        }
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        adopt(io, fd);
    }
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    accept_all(w->data);
}

static void on_turn(struct ev_loop *loop, ev_prepare *w, int revents)
{
    hd_io_thread *io = w->data;
    accept_all(io);
    if (io->n_pending)
        pending_check(io);
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
    while (io->n_pending) {
        int fd = io->pending[io->n_pending - 1].fd;
        pending_remove(io, io->n_pending - 1);
        close(fd);
    }
}
