/* young.c - a new client's first messages are served ahead of an epoll
 * backlog.
 *
 * WHY
 * ---
 * In a mass disconnect epoll reports thousands of dropped sockets at once
 * and hands them out first come, first served, at most 64 a turn
 * (loop_batch.c). The accept and the handshake of a new client are served
 * first (listener.c), but its next message, the subscribe, makes its
 * socket ready behind every dropped socket still queued: during a
 * 19 000-socket storm a new client waited 0.2-0.4 s (p99) for its
 * subscription_succeeded, until the storm was over.
 *
 * HOW
 * ---
 * The last HD_YOUNG_MAX sessions established on an io thread are kept on a
 * ring for their first HD_YOUNG_MS. While the thread's last epoll wait came
 * back full (a backlog), every loop turn polls the ring's sockets with one
 * poll() and has lws service those with input at once, through
 * lws_service_fd(), the entry lws' own libev watcher uses; what that
 * queues for the young session is written at once too. Without a backlog
 * epoll serves them in time and this costs a flag test per turn; with one,
 * a poll() of at most 64 sockets per turn of about a millisecond.
 *
 * A session leaves the ring when it closes, when it is older than
 * HD_YOUNG_MS, or when newer sessions take its slot.
 *
 * THREADING: the owning io thread only.
 */
#include <poll.h>

#include "adapter/adapter_internal.h"

_Thread_local bool hd_loop_backlog;

void hd_young_add(hd_session *s)
{
    hd_io_thread *io = s->io;
    uint32_t slot = io->young_next;
    io->young_next = (slot + 1) % HD_YOUNG_MAX;
    if (io->young[slot])
        io->young[slot]->young_slot = 0;
    io->young[slot] = s;
    io->young_since_ms[slot] = hd_mono_ms();
    s->young_slot = (uint8_t)(slot + 1);
}

void hd_young_remove(hd_session *s)
{
    if (!s->young_slot)
        return;
    s->io->young[s->young_slot - 1] = NULL;
    s->young_slot = 0;
}

/* The ring's live sessions that may still get input, into fds/slots. */
static nfds_t young_watch(hd_io_thread *io, uint64_t now, struct pollfd *fds, uint32_t *slots)
{
    nfds_t n = 0;
    for (uint32_t i = 0; i < HD_YOUNG_MAX; i++) {
        hd_session *s = io->young[i];
        if (!s)
            continue;
        if (now - io->young_since_ms[i] > HD_YOUNG_MS || !s->wsi || s->closing) {
            hd_young_remove(s);
            continue;
        }
        fds[n] = (struct pollfd){.fd = lws_get_socket_fd(s->wsi), .events = POLLIN};
        slots[n++] = i;
    }
    return n;
}

void hd_young_serve(hd_io_thread *io)
{
    if (!hd_loop_backlog)
        return;
    struct pollfd fds[HD_YOUNG_MAX];
    uint32_t slots[HD_YOUNG_MAX];
    nfds_t n = young_watch(io, hd_mono_ms(), fds, slots);
    if (!n || poll(fds, n, 0) <= 0)
        return;
    for (nfds_t k = 0; k < n; k++) {
        if (!fds[k].revents)
            continue;
        hd_session *s = io->young[slots[k]];
        /* servicing one socket may have closed another: only the same session on the same socket */
        if (!s || !s->wsi || lws_get_socket_fd(s->wsi) != fds[k].fd)
            continue;
        HD_STAT_ADD(io, young_reads, 1);
        struct lws_pollfd pfd = {.fd = fds[k].fd, .events = LWS_POLLIN, .revents = LWS_POLLIN};
        lws_service_fd(io->ctx, &pfd);
        s = io->young[slots[k]]; /* NULL if lws closed it */
        if (s && s->wsi)
            hd_session_flush_now(s);
    }
}
