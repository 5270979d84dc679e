/* fanout.c - frames, io-thread inboxes and the per-thread local index.
 *
 * DESIGN
 * ------
 * A publish serialises the frame once, asks the registry which io threads
 * have local subscribers, and pushes one refcounted copy per such thread
 * onto its inbox (one copy per thread, not per recipient: lws_write()
 * writes the frame header into the LWS_PRE room, so threads must not share
 * a buffer). The receiving thread walks its local list for the channel and
 * queues a reference on each subscriber's outbound ring.
 *
 * Inboxes also carry terminations and, from a reload (reload.c), "app
 * removed": the thread closes that app's sessions with 4001.
 *
 * THREADING
 * ---------
 * hd_fanout_local, hd_terminate_local, hd_io_inbox_push, hd_msg_*: any
 * thread. hd_io_inbox_drain and the local index: the owning io thread.
 * The inbox wakes its thread only when it goes from empty to non-empty.
 */
#include <string.h>

#include "adapter/adapter_internal.h"

hd_msg *hd_msg_new(const char *frame, size_t len)
{
    hd_msg *m = hd_malloc(sizeof *m + LWS_PRE + len + 1);
    atomic_init(&m->refs, 1);
    m->len = (uint32_t)len;
    memcpy(m->buf + LWS_PRE, frame, len);
    m->buf[LWS_PRE + len] = '\0';
    return m;
}

void hd_msg_ref(hd_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void hd_msg_unref(hd_msg *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        hd_free(m);
}

void hd_io_inbox_push(hd_io_thread *io, hd_inbox_item *item)
{
    item->next = NULL;
    pthread_mutex_lock(&io->inbox_lock);
    bool was_empty = io->inbox_head == NULL;
    if (io->inbox_tail)
        io->inbox_tail->next = item;
    else
        io->inbox_head = item;
    io->inbox_tail = item;
    /* plain load and store: every writer holds inbox_lock */
    uint_fast32_t depth = atomic_load_explicit(&io->inbox_depth, memory_order_relaxed) + 1;
    atomic_store_explicit(&io->inbox_depth, depth, memory_order_relaxed);
    if (depth > atomic_load_explicit(&io->inbox_high_water, memory_order_relaxed))
        atomic_store_explicit(&io->inbox_high_water, depth, memory_order_relaxed);
    /* wake under the lock: shutdown clears io->ctx under it before the
     * context is destroyed, so a context is never woken after that */
    if (was_empty && io->ctx)
        lws_cancel_service(io->ctx);
    pthread_mutex_unlock(&io->inbox_lock);
}

static void route(hd_server *srv, hd_app *app, const char *channel, size_t channel_len, uint8_t kind,
                  const char *frame, size_t len, const char *except, bool via_cluster)
{
    hd_channel *ch = hd_registry_acquire(app->registry, channel, channel_len, false);
    if (!ch)
        return;
    uint32_t counts[HD_MAX_IO_THREADS];
    hd_channel_thread_counts(ch, counts, srv->n_threads);
    for (unsigned t = 0; t < srv->n_threads; t++) {
        if (!counts[t])
            continue;
        hd_inbox_item *it = hd_calloc(1, sizeof *it);
        it->kind = kind;
        it->via_cluster = via_cluster;
        it->app = app;
        hd_channel_ref(app->registry, ch);
        it->ch = ch;
        if (frame)
            it->msg = hd_msg_new(frame, len);
        if (except)
            snprintf(it->except, sizeof it->except, "%s", except);
        hd_io_inbox_push(&srv->threads[t], it);
    }
    hd_registry_release(app->registry, ch);
}

void hd_fanout_local(hd_server *srv, hd_app *app, const char *channel, size_t channel_len, const char *frame,
                     size_t len, const char *except_socket_id)
{
    route(srv, app, channel, channel_len, HD_INBOX_PUBLISH, frame, len, except_socket_id, false);
}

void hd_fanout_from_cluster(hd_server *srv, hd_app *app, const char *channel, size_t channel_len, const char *frame,
                            size_t len, const char *except_socket_id)
{
    route(srv, app, channel, channel_len, HD_INBOX_PUBLISH, frame, len, except_socket_id, true);
}

void hd_terminate_local(hd_server *srv, hd_app *app, const char *channel, size_t channel_len)
{
    route(srv, app, channel, channel_len, HD_INBOX_TERMINATE, NULL, 0, NULL, false);
}

static hd_local_channel *local_lookup(hd_io_thread *io, hd_app *app, hd_channel *ch)
{
    return hd_map_get(&io->local[app->index], hd_channel_name(ch), hd_channel_name_len(ch));
}

static void deliver(hd_io_thread *io, hd_inbox_item *it)
{
    hd_local_channel *lc = local_lookup(io, it->app, it->ch);
    if (!lc)
        return;
    uint32_t skipped = 0;
    for (hd_sub *sub = lc->head; sub; sub = sub->next) {
        hd_session *s = sub->session;
        if ((it->except[0] && strcmp(s->socket_id, it->except) == 0) || (sub->wait_token && it->via_cluster)) {
            skipped++;
            continue;
        }
        hd_session_send(s, it->msg);
    }
    /* counted once per delivery from the list's length, not per recipient */
    uint32_t n = lc->count - skipped;
    HD_STAT_ADD(io, frames_queued[HD_FRAME_CHANNEL], n);
    HD_STAT_ADD(io, bytes_queued[HD_FRAME_CHANNEL], (uint64_t)n * it->msg->len);
}

static void terminate(hd_io_thread *io, hd_inbox_item *it)
{
    hd_local_channel *lc = local_lookup(io, it->app, it->ch);
    if (!lc)
        return;
    for (hd_sub *sub = lc->head; sub; sub = sub->next)
        hd_session_fail(sub->session, HD_CLOSE_UNAUTHORIZED, "You got disconnected by the app.");
}

/* A reload removed the app: its sessions here go with 4001, as a new
 * connection to it would. Skipped when a later reload has brought the app
 * back before this thread got here. */
static void close_removed(hd_io_thread *io, hd_app *app)
{
    if (!atomic_load_explicit(&app->removed, memory_order_acquire))
        return;
    for (hd_session *s = io->sessions; s; s = s->next)
        if (s->app == app && s->established)
            hd_session_fail(s, HD_CLOSE_APP_NOT_FOUND, "Application does not exist");
}

void hd_io_inbox_drain(hd_io_thread *io)
{
    pthread_mutex_lock(&io->inbox_lock);
    hd_inbox_item *it = io->inbox_head;
    io->inbox_head = io->inbox_tail = NULL;
    atomic_store_explicit(&io->inbox_depth, 0, memory_order_relaxed);
    pthread_mutex_unlock(&io->inbox_lock);
    while (it) {
        hd_inbox_item *next = it->next;
        if (it->kind == HD_INBOX_PUBLISH)
            deliver(io, it);
        else if (it->kind == HD_INBOX_TERMINATE)
            terminate(io, it);
        else if (it->kind == HD_INBOX_REPLY)
            hd_host_reply(io, it->reply);
        else
            close_removed(io, it->app);
        if (it->msg)
            hd_msg_unref(it->msg);
        if (it->ch)
            hd_registry_release(it->app->registry, it->ch);
        hd_free(it);
        it = next;
    }
}

hd_sub *hd_local_add(hd_session *s, hd_channel *ch)
{
    hd_io_thread *io = s->io;
    hd_map *map = &io->local[s->app->index];
    const char *name = hd_channel_name(ch);
    size_t len = hd_channel_name_len(ch);
    hd_local_channel *lc = hd_map_get(map, name, len);
    if (!lc) {
        lc = hd_calloc(1, sizeof *lc);
        lc->entry = hd_map_insert(map, name, len, lc);
    }
    hd_sub *sub = hd_calloc(1, sizeof *sub);
    sub->local = lc;
    sub->session = s;
    sub->ch = ch;
    sub->next = lc->head;
    if (lc->head)
        lc->head->prev = sub;
    lc->head = sub;
    lc->count++;
    if (s->n_subs == s->cap_subs) {
        s->cap_subs = s->cap_subs ? s->cap_subs * 2 : 4;
        s->subs = hd_realloc(s->subs, s->cap_subs * sizeof *s->subs);
    }
    s->subs[s->n_subs++] = sub;
    return sub;
}

void hd_local_remove(hd_sub *sub)
{
    hd_session *s = sub->session;
    hd_local_channel *lc = sub->local;
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        lc->head = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    if (--lc->count == 0) {
        hd_map_remove(&s->io->local[s->app->index], lc->entry->key, lc->entry->key_len);
        hd_free(lc);
    }
    for (uint32_t i = 0; i < s->n_subs; i++) {
        if (s->subs[i] == sub) {
            s->subs[i] = s->subs[--s->n_subs];
            break;
        }
    }
    hd_wait_cancel(s->io, sub->wait_token);
    hd_free(sub->user_key);
    hd_free(sub->user_id_json);
    hd_free(sub);
}
