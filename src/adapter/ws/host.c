/* host.c - the node side of the adapter seam: what an adapter may ask of
 * this node (hd_adapter_host: deliver, terminate, complete a request,
 * send a decided webhook), and the waits of each io thread for replies.
 *
 * DESIGN
 * ------
 * An io thread that asks a cluster adapter something (a join's snapshot,
 * who is online, a connection slot, an HTTP read) registers a wait and
 * passes its token; the adapter answers on any thread with
 * host->complete(), which pushes the reply onto the asking thread's inbox.
 * There the token is looked up: whoever waited may have gone (the socket
 * closed, the subscription was dropped), and then the reply is dropped.
 * Replies and the channel frames that came through the cluster share the
 * inbox, so they keep the order the adapter read them in.
 *
 * THREADING
 * ---------
 * The host functions: any thread. Waits (hd_wait_*) and hd_host_reply: the
 * owning io thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/adapter_internal.h"
#include "webhooks/webhooks.h"

/* ---- waits ---- */

static int token_key(uint64_t token, char key[24])
{
    return snprintf(key, 24, "%llu", (unsigned long long)token);
}

uint64_t hd_wait_add(hd_io_thread *io, uint8_t kind, void *owner, char *arg)
{
    hd_wait *w = hd_malloc(sizeof *w);
    *w = (hd_wait){.kind = kind, .owner = owner, .arg = arg};
    uint64_t token = ++io->next_wait;
    char key[24];
    hd_map_insert(&io->waits, key, (size_t)token_key(token, key), w);
    return token;
}

static hd_wait *wait_take(hd_io_thread *io, uint64_t token)
{
    char key[24];
    return hd_map_remove(&io->waits, key, (size_t)token_key(token, key));
}

static void wait_free(hd_wait *w)
{
    hd_free(w->arg);
    hd_free(w);
}

void hd_wait_cancel(hd_io_thread *io, uint64_t token)
{
    if (!token)
        return;
    hd_wait *w = wait_take(io, token);
    if (w)
        wait_free(w);
}

void hd_waits_clear(hd_io_thread *io)
{
    hd_map_iter it = {0};
    hd_map_entry *e;
    while ((e = hd_map_next(&io->waits, &it)))
        wait_free(e->value);
    hd_map_deinit(&io->waits);
}

void hd_host_reply(hd_io_thread *io, hd_ad_reply *r)
{
    hd_wait *w = wait_take(io, r->to.token);
    if (w) {
        switch (w->kind) {
        case HD_WAIT_JOIN:
            hd_subscribe_on_reply(w->owner, r);
            break;
        case HD_WAIT_ONLINE:
            hd_signin_on_online(w->owner, w->arg, r);
            break;
        case HD_WAIT_QUOTA:
            hd_session_on_quota(w->owner, r);
            break;
        case HD_WAIT_HTTP:
            hd_front_on_reply(w->owner, r);
            break;
        case HD_WAIT_SIGNIN:
            hd_signin_on_joined(w->owner, w->arg, r);
            break;
        }
        wait_free(w);
    }
    hd_ad_reply_free(r);
}

/* ---- the host interface ---- */

static void host_deliver(hd_server *srv, hd_app *app, const char *channel, size_t channel_len, const char *frame,
                         size_t len, const char *except)
{
    hd_fanout_from_cluster(srv, app, channel, channel_len, frame, len, except);
}

static void host_publish_local(hd_server *srv, hd_app *app, const char *channel, size_t channel_len,
                               const char *frame, size_t len, const char *except)
{
    hd_fanout_local(srv, app, channel, channel_len, frame, len, except);
}

static void host_terminate(hd_server *srv, hd_app *app, const char *user_id)
{
    hd_buf name;
    hd_buf_init(&name);
    hd_buf_printf(&name, HD_USER_CHANNEL_PREFIX "%s", user_id);
    hd_terminate_local(srv, app, name.data, name.len);
    hd_buf_deinit(&name);
}

static void host_complete(hd_server *srv, hd_ad_reply *r)
{
    if (r->to.thread >= srv->n_threads || !r->to.token) {
        hd_ad_reply_free(r);
        return;
    }
    hd_inbox_item *it = hd_calloc(1, sizeof *it);
    it->kind = HD_INBOX_REPLY;
    it->reply = r;
    hd_io_inbox_push(&srv->threads[r->to.thread], it);
}

static void host_webhook(hd_server *srv, hd_app *app, const char *event, const char *channel, const char *user_id)
{
    if (strcmp(event, "subscription_count") == 0) {
        unsigned long n = user_id ? strtoul(user_id, NULL, 10) : 0;
        hd_webhooks_subscription_count(srv->webhooks, app->index, channel, (uint32_t)n);
        return;
    }
    hd_webhooks_decided(srv->webhooks, app->index, event, channel, user_id);
}

static hd_app *host_app_by_id(hd_server *srv, const char *id)
{
    return hd_server_app_by_id(srv, id);
}

static void host_for_each_app(hd_server *srv, void (*fn)(void *arg, hd_app *app), void *arg)
{
    size_t n = hd_server_n_apps(srv);
    for (size_t i = 0; i < n; i++)
        if (!atomic_load_explicit(&srv->apps[i].removed, memory_order_acquire))
            fn(arg, &srv->apps[i]);
}

static uint32_t host_local_connections(hd_server *srv, hd_app *app)
{
    (void)srv;
    return atomic_load_explicit(&app->connections, memory_order_relaxed);
}

void hd_host_init(hd_server *srv)
{
    srv->host = (hd_adapter_host){
        .deliver = host_deliver,
        .publish_local = host_publish_local,
        .terminate = host_terminate,
        .complete = host_complete,
        .webhook = host_webhook,
        .app_by_id = host_app_by_id,
        .for_each_app = host_for_each_app,
        .local_connections = host_local_connections,
    };
}
