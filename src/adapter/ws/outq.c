/* outq.c - a session's bounded outbound ring and the writable callback.
 *
 * DESIGN
 * ------
 * Outbound frames are references (hd_msg) on a per-session ring bounded in
 * bytes by max_outbound_buffer_kb; a consumer that falls that far behind,
 * its socket full, is closed with 4100 instead of growing memory (a burst
 * queued within one turn may reach HD_OUTQ_BURST_FACTOR times the limit
 * before the turn's flush writes it).
 *
 * Writing: one frame queued -> lws_write() straight from the shared
 * message (no copy). Several queued (a burst of fan-out) -> their
 * WebSocket headers and payloads are gathered into the io thread's scratch
 * buffer and written with a single LWS_WRITE_RAW call, one send() for many
 * frames. lws has no writev(), and the kernel's per-send cost (about 5 us on
 * loopback) dwarfs a memcpy of a few hundred bytes, so the gather copy is
 * the cheap side of that trade. lws keeps whatever the socket did not take
 * and writes nothing else (pongs, close) until it is flushed, so frames are
 * never interleaved.
 *
 * When: a session whose queue goes from empty to non-empty is put on its
 * io thread's dirty list, and the list is written at the end of the loop
 * turn (hd_io_flush_dirty, from a prepare watcher), so every frame the turn
 * queued for a socket goes out in one send(). A turn writes at most
 * HD_FLUSH_PER_TURN sessions, oldest first, and the loop keeps turning
 * until the list is empty: in a disconnect storm every departure queues a
 * member_removed for the remaining members, and writing them all in the
 * turn that queued them kept new connections waiting (probe p99 during the
 * 19 000-socket storm went from 20-33 ms to 61-125 ms). Left for a later
 * turn, a session gathers more frames into its send(), and one that is
 * itself about to close is never written to. lws_callback_on_writable() is
 * kept for what must wait for the socket: output lws still holds from a
 * short write, a socket that chokes, and closing. (With epoll each writable
 * request costs two epoll_ctl() calls, arm and disarm; asking for one per
 * idle recipient doubled the CPU per delivery of a full-speed fan-out.)
 *
 * THREADING: the session's io thread only.
 */
#include <stdio.h>
#include <string.h>

#include "adapter/adapter_internal.h"
#include "protocol/protocol.h"

#define GATHER_MAX_FRAMES 256

/* Drop the flushed head of the dirty list; slots of the moved sessions follow. */
static void dirty_compact(hd_io_thread *io)
{
    uint32_t live = io->n_dirty - io->dirty_head;
    memmove(io->dirty, io->dirty + io->dirty_head, live * sizeof *io->dirty);
    io->dirty_head = 0;
    io->n_dirty = live;
    for (uint32_t i = 0; i < live; i++)
        if (io->dirty[i])
            io->dirty[i]->dirty_slot = i + 1;
}

static void mark_dirty(hd_session *s)
{
    hd_io_thread *io = s->io;
    if (s->dirty_slot)
        return;
    if (io->n_dirty == io->cap_dirty && io->dirty_head)
        dirty_compact(io);
    if (io->n_dirty == io->cap_dirty) {
        io->cap_dirty = io->cap_dirty ? io->cap_dirty * 2 : 64;
        io->dirty = hd_realloc(io->dirty, io->cap_dirty * sizeof *io->dirty);
    }
    io->dirty[io->n_dirty++] = s;
    s->dirty_slot = io->n_dirty;
}

/* Out of the per-recipient path (cold): its stack buffer and formatting
 * cost every hd_session_send a few instructions when inlined there. */
static __attribute__((noinline, cold)) void close_slow_consumer(hd_session *s, size_t limit)
{
    char detail[64];
    snprintf(detail, sizeof detail, "outbound buffer over %zu bytes", limit);
    HD_STAT_ADD(s->io, slow_consumer_closes, 1);
    hd_session_close_why(s, HD_CLOSE_OVER_CAPACITY, "Over capacity: client too slow", detail);
    hd_session_outq_clear(s); /* it will not read them: free them now, not at teardown */
}

/* Over max_outbound_buffer_kb: is the client too slow, or did one loop
 * turn queue a burst (many publishes completing together) that the end of
 * the turn writes into a socket with room for it? Too slow when the socket
 * is full too (a poll(), only on this cold path), or past
 * HD_OUTQ_BURST_FACTOR times the limit whatever the socket says. Closing
 * on the queue alone closed subscribers that were reading at full speed
 * when 32 publishers' 100 KB batches landed in the same turn. */
static __attribute__((noinline, cold)) bool too_slow(hd_session *s, size_t limit, size_t more)
{
    if (s->oq_bytes + more > limit * HD_OUTQ_BURST_FACTOR)
        return true;
    return lws_send_pipe_choked(s->wsi);
}

void hd_session_send(hd_session *s, hd_msg *m)
{
    if (s->closing || !s->wsi)
        return;
    size_t limit = (size_t)s->io->srv->cfg->max_outbound_buffer_kb * 1024u;
    if (__builtin_expect(s->oq_bytes + m->len > limit && s->oq_count, 0) && too_slow(s, limit, m->len)) {
        close_slow_consumer(s, limit);
        return;
    }
    if (s->oq_count == s->oq_cap) {
        uint32_t cap = s->oq_cap ? s->oq_cap * 2 : 4;
        hd_msg **q = hd_malloc(cap * sizeof *q);
        for (uint32_t i = 0; i < s->oq_count; i++)
            q[i] = s->outq[(s->oq_head + i) % s->oq_cap];
        hd_free(s->outq);
        s->outq = q;
        s->oq_cap = cap;
        s->oq_head = 0;
    }
    hd_msg_ref(m);
    s->outq[(s->oq_head + s->oq_count) % s->oq_cap] = m;
    s->oq_count++;
    s->oq_bytes += m->len;
    if (s->oq_count == 1)
        mark_dirty(s);
}

static void outq_pop(hd_session *s)
{
    hd_msg *m = s->outq[s->oq_head];
    s->oq_head = (s->oq_head + 1) % s->oq_cap;
    s->oq_count--;
    s->oq_bytes -= m->len;
    hd_msg_unref(m);
}

void hd_session_outq_clear(hd_session *s)
{
    if (s->dirty_slot) /* the session is going: the flush must not find it */
        s->io->dirty[s->dirty_slot - 1] = NULL;
    s->dirty_slot = 0;
    while (s->oq_count)
        outq_pop(s);
    hd_free(s->outq);
    s->outq = NULL;
    s->oq_cap = s->oq_head = 0;
}

/* Gather up to GATHER_MAX_FRAMES queued frames that fit the scratch
 * buffer; returns how many were gathered (0 or 1: use the plain path). */
static uint32_t gather(hd_session *s, size_t *out_len)
{
    unsigned char *base = s->io->scratch + LWS_PRE, *p = base;
    uint32_t n = 0;
    hd_msg *first = s->outq[s->oq_head], *second = s->outq[(s->oq_head + 1) % s->oq_cap];
    if ((size_t)first->len + second->len + 20 > HD_SCRATCH_SIZE)
        return 0; /* not two frames' worth: the plain path, no copy */
    while (n < s->oq_count && n < GATHER_MAX_FRAMES) {
        hd_msg *m = s->outq[(s->oq_head + n) % s->oq_cap];
        if ((size_t)(p - base) + m->len + 10 > HD_SCRATCH_SIZE)
            break;
        p += hd_ws_frame_header(p, 0x1, m->len); /* text */
        memcpy(p, hd_msg_payload(m), m->len);
        p += m->len;
        n++;
    }
    *out_len = (size_t)(p - base);
    return n;
}

static int write_some(hd_session *s)
{
    size_t len = 0;
    uint32_t n = s->oq_count >= 2 ? gather(s, &len) : 0; /* one frame: no copy */
    if (n >= 2) {
        if (lws_write(s->wsi, s->io->scratch + LWS_PRE, len, LWS_WRITE_RAW) < 0)
            return -1;
        HD_STAT_ADD(s->io, frames_sent, n);
        HD_STAT_ADD(s->io, bytes_sent, len);
        HD_STAT_ADD(s->io, coalesced_writes, 1);
        while (n--)
            outq_pop(s);
        return 0;
    }
    hd_msg *m = s->outq[s->oq_head];
    int w = lws_write(s->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
    HD_STAT_ADD(s->io, frames_sent, 1);
    HD_STAT_ADD(s->io, bytes_sent, m->len);
    outq_pop(s);
    return w < 0 ? -1 : 0;
}

/* Write until the queue is empty (0) or the socket chokes (1: the rest
 * waits for a writable callback); -1 when a write failed. */
static int drain(hd_session *s)
{
    while (s->oq_count) {
        if (write_some(s) < 0)
            return -1;
        if (s->oq_count && lws_send_pipe_choked(s->wsi)) {
            lws_callback_on_writable(s->wsi);
            return 1;
        }
    }
    return 0;
}

/* LWS_CALLBACK_SERVER_WRITEABLE (and the first frame, from ESTABLISHED). */
int hd_session_writable(hd_session *s)
{
    int rc = drain(s);
    if (rc)
        return rc < 0 ? -1 : 0;
    if (s->closing) {
        const char *r = s->close_reason ? s->close_reason : "";
        lws_close_reason(s->wsi, (enum lws_close_status)s->close_code, (unsigned char *)(uintptr_t)r, strlen(r));
        return -1;
    }
    return 0;
}

/* Write a dirty session's queue now, unless the socket must be waited for. */
static void flush_session(hd_session *s)
{
    struct lws *wsi = s->wsi;
    if (!wsi || !s->oq_count)
        return;
    if (s->closing || lws_partial_buffered(wsi)) {
        lws_callback_on_writable(wsi);
        return;
    }
    if (drain(s) < 0)
        hd_session_close(s, HD_CLOSE_INTERNAL_ERROR, "Write failed");
}

void hd_session_flush_now(hd_session *s)
{
    if (!s->dirty_slot)
        return;
    s->io->dirty[s->dirty_slot - 1] = NULL;
    s->dirty_slot = 0;
    flush_session(s);
}

bool hd_io_flush_dirty(hd_io_thread *io)
{
    uint32_t written = 0;
    while (io->dirty_head < io->n_dirty && written < HD_FLUSH_PER_TURN) {
        hd_session *s = io->dirty[io->dirty_head++];
        if (!s)
            continue;
        s->dirty_slot = 0;
        flush_session(s);
        written++;
    }
    if (io->dirty_head == io->n_dirty)
        io->dirty_head = io->n_dirty = 0;
    return io->n_dirty != 0;
}
