/* idle.c - activity timeout (§8) and the authorized-connections deadline,
 * for all of an io thread's sessions with one periodic tick.
 *
 * DESIGN
 * ------
 * Each io thread keeps its sessions in a list ordered by the time they
 * last received anything: receiving moves a session to the tail (O(1)).
 * A tick every HD_IDLE_TICK_MS walks from the head and stops at the first
 * session that has not been idle for activity_timeout, so a tick costs
 * O(sessions that are idle), not O(sessions). (An lws timer per session
 * was the first design: lws keeps its timers in one sorted list, so with
 * 19 000 connections every arm walked thousands of entries and most of
 * the io thread's time went there.)
 *
 * An idle session first gets {"event":"pusher:ping"}; if nothing arrives
 * within pong_timeout more it is closed with 4201. Outbound traffic never
 * counts. lws answers WebSocket ping frames itself without telling us, so
 * before acting on an idle session the kernel is asked (TCP_INFO) when
 * data last arrived on the socket.
 *
 * Sessions with a deadline sit on a short list: those of apps with
 * enable_user_authentication until they sign in or join a private/presence
 * channel (closed 4009 past it), and every session herald has closed
 * until lws has torn it down (dropped past limits.close_timeout_ms).
 *
 * THREADING: the owning io thread only.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "adapter/adapter_internal.h"

static void lru_unlink(hd_io_thread *io, hd_session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (io->sessions == s)
        io->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else if (io->sessions_tail == s)
        io->sessions_tail = s->prev;
    s->prev = s->next = NULL;
}

static void lru_append(hd_io_thread *io, hd_session *s)
{
    s->prev = io->sessions_tail;
    s->next = NULL;
    if (io->sessions_tail)
        io->sessions_tail->next = s;
    else
        io->sessions = s;
    io->sessions_tail = s;
}

void hd_idle_link(hd_session *s)
{
    s->last_rx_ms = hd_mono_ms();
    lru_append(s->io, s);
}

void hd_session_touch(hd_session *s)
{
    s->last_rx_ms = hd_mono_ms();
    s->ping_sent = false;
    if (s->io->sessions_tail != s && (s->prev || s->io->sessions == s)) {
        lru_unlink(s->io, s);
        lru_append(s->io, s);
    }
}

void hd_idle_auth_deadline(hd_session *s, uint64_t deadline_ms)
{
    hd_io_thread *io = s->io;
    s->auth_deadline_ms = deadline_ms;
    s->auth_next = io->auth_pending;
    s->auth_prev = NULL;
    if (io->auth_pending)
        io->auth_pending->auth_prev = s;
    io->auth_pending = s;
}

static void auth_unlink(hd_session *s)
{
    if (!s->auth_deadline_ms)
        return;
    if (s->auth_prev)
        s->auth_prev->auth_next = s->auth_next;
    else
        s->io->auth_pending = s->auth_next;
    if (s->auth_next)
        s->auth_next->auth_prev = s->auth_prev;
    s->auth_prev = s->auth_next = NULL;
    s->auth_deadline_ms = 0;
}

void hd_idle_unlink(hd_session *s)
{
    if (!s->io)
        return;
    lru_unlink(s->io, s);
    auth_unlink(s);
}

static bool authorized(hd_session *s)
{
    if (s->user_id)
        return true;
    for (uint32_t i = 0; i < s->n_subs; i++)
        if (hd_channel_needs_auth(hd_channel_get_type(s->subs[i]->ch).kind))
            return true;
    return false;
}

/* A session herald closed is torn down by its deadline even if the client
 * never reads: its close frame may sit behind a full socket buffer for
 * ever, and meanwhile it holds a descriptor, a slot in the app's quota and
 * its queued frames. lws kills it on its next turn without flushing. */
static void close_expired(hd_session *s)
{
    auth_unlink(s);
    HD_STAT_ADD(s->io, close_timeouts, 1);
    hd_session_log_refusal(s, "close timeout", NULL, "close %u not completed in time, dropping the connection",
                           s->close_code);
    /* Reset rather than close: a graceful close would leave the socket
     * orphaned in FIN-WAIT-1 with up to a send buffer (megabytes) of data
     * the client is not reading, held by the kernel long after we let go. */
    int fd = lws_get_socket_fd(s->wsi);
    struct linger hard = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    /* lws will not close a socket it still holds unsent output for: it
     * waits 5 s more for a flush the client will never allow. Shut down,
     * the socket polls writable and its next send() fails, which lws takes
     * as a dead socket and closes at once. */
    shutdown(fd, SHUT_RDWR);
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

void hd_idle_close_deadline(hd_session *s)
{
    auth_unlink(s);
    hd_idle_auth_deadline(s, hd_mono_ms() + s->io->srv->cfg->limits.close_timeout_ms);
}

static void auth_tick(hd_io_thread *io, uint64_t now)
{
    hd_session *s = io->auth_pending;
    while (s) {
        hd_session *next = s->auth_next;
        if (s->closing) {
            if (now >= s->auth_deadline_ms)
                close_expired(s);
        } else if (authorized(s)) {
            auth_unlink(s);
        } else if (now >= s->auth_deadline_ms) {
            auth_unlink(s);
            hd_session_fail(s, HD_CLOSE_UNAUTHORIZED, "Connection not authorized within timeout");
        }
        s = next;
    }
}

/* True when the kernel saw data we did not see as a message (a control frame). */
static bool data_arrived_unseen(hd_session *s, uint64_t now)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(lws_get_socket_fd(s->wsi), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return false;
    uint64_t last = now > ti.tcpi_last_data_recv ? now - ti.tcpi_last_data_recv : 0;
    return last > s->last_rx_ms + 50;
}

static void idle_check(hd_session *s, uint64_t now, uint64_t timeout_ms, uint64_t pong_ms)
{
    if (s->closing)
        return;
    if (data_arrived_unseen(s, now)) {
        hd_session_touch(s);
        return;
    }
    if (!s->ping_sent) {
        hd_buf ping;
        hd_buf_init(&ping);
        hd_frame_ping(&ping);
        hd_session_send_text(s, ping.data, ping.len);
        hd_buf_deinit(&ping);
        s->ping_sent = true;
    } else if (now - s->last_rx_ms >= timeout_ms + pong_ms) {
        hd_session_close(s, HD_CLOSE_PONG_TIMEOUT, "Pong reply not received");
    }
}

void hd_idle_tick(hd_io_thread *io)
{
    const hd_config *cfg = io->srv->cfg;
    uint64_t now = hd_mono_ms();
    uint64_t timeout_ms = (uint64_t)cfg->activity_timeout * 1000u, pong_ms = (uint64_t)cfg->pong_timeout * 1000u;
    hd_log_refusal_flush(false); /* "N more ..." lines of ended windows; an atomic load when none is due */
    if (io->auth_pending)
        auth_tick(io, now);
    if (io->front)
        hd_front_tick(io, now);
    hd_session *s = io->sessions;
    while (s && now - s->last_rx_ms >= timeout_ms) {
        hd_session *next = s->next; /* s may move to the tail */
        idle_check(s, now, timeout_ms, pong_ms);
        s = next;
    }
}
