/* local_adapter.c - the single-node adapter: the node's registry is the
 * whole cluster. A join or leave announces what the registry says it
 * crossed (member_added / member_removed, watchlist online / offline,
 * subscription_count, the webhooks with their local hold); publishing is
 * the local fan-out through io-thread inboxes; reads answer at once from
 * the registry.
 *
 * The registry returns, from under the channel's lock, whether a join or
 * leave crossed a boundary (0 <-> 1 subscribers, a user's first or last
 * socket), and joined/left run under the channel's order lock: only the
 * caller that crossed reports it, in order, however many threads race.
 *
 * THREADING: any thread (io threads on subscribe and unsubscribe, cleanup
 * workers on disconnect, the HTTP API on io threads).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/adapter_internal.h"
#include "webhooks/webhooks.h"

static bool is_user_channel(const char *name)
{
    return strncmp(name, HD_USER_CHANNEL_PREFIX, sizeof HD_USER_CHANNEL_PREFIX - 1) == 0;
}

/* ---- announcements ---- */

static void send_subscription_count(hd_server *srv, hd_app *app, hd_channel *ch, uint32_t count)
{
    hd_channel_type t = hd_channel_get_type(ch);
    const char *name = hd_channel_name(ch);
    if (t.kind == HD_CHANNEL_PRESENCE || name[0] == '#')
        return;
    if (!hd_channel_count_update_due(ch, count, hd_mono_ms()))
        return;
    hd_webhooks_subscription_count(srv->webhooks, app->index, name, count);
    if (!hd_app_cfg(app)->enable_subscription_count || !count)
        return;
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_subscription_count(&b, name, count);
    srv->host.publish_local(srv, app, name, strlen(name), b.data, b.len, NULL);
    hd_buf_deinit(&b);
}

/* A signed-in user's first or last connection: tell whoever watches them. */
static void watchlist_changed(hd_server *srv, hd_app *app, const char *user_id, bool online)
{
    hd_buf frame, channel;
    hd_buf_init(&frame);
    hd_buf_init(&channel);
    hd_frame_watchlist(&frame, online, user_id);
    hd_buf_printf(&channel, HD_WATCH_CHANNEL_PREFIX "%s", user_id);
    srv->host.publish_local(srv, app, channel.data, channel.len, frame.data, frame.len, NULL);
    hd_buf_deinit(&frame);
    hd_buf_deinit(&channel);
}

static void local_joined(hd_adapter *a, hd_app *app, hd_channel *ch, const hd_join_result *jr,
                         const hd_member *member, const char *socket_id, hd_ad_caller reply_to)
{
    (void)reply_to; /* the registry answered the subscribe already */
    hd_server *srv = a->srv;
    const char *name = hd_channel_name(ch);
    if (name[0] == '#') {
        if (jr->occupied && is_user_channel(name))
            watchlist_changed(srv, app, name + sizeof HD_USER_CHANNEL_PREFIX - 1, true);
        return;
    }
    if (jr->occupied)
        hd_webhooks_channel_occupied(srv->webhooks, app->index, name);
    if (jr->member_added) {
        hd_buf b;
        hd_buf_init(&b);
        hd_frame_member(&b, true, name, member->user_id_json, member->user_info_json);
        srv->host.publish_local(srv, app, name, strlen(name), b.data, b.len, socket_id);
        hd_buf_deinit(&b);
        hd_webhooks_member_added(srv->webhooks, app->index, name, member->user_key);
    }
    send_subscription_count(srv, app, ch, jr->subscribers);
}

/* What one leave that emptied the channel or removed a member announces. */
static void announce_leave(hd_server *srv, hd_app *app, const char *name, const hd_leave_result *lr,
                           const char *user_key, const char *user_id_json)
{
    if (name[0] == '#') {
        if (lr->vacated && is_user_channel(name))
            watchlist_changed(srv, app, name + sizeof HD_USER_CHANNEL_PREFIX - 1, false);
        return;
    }
    if (lr->member_removed) {
        hd_buf b;
        hd_buf_init(&b);
        hd_frame_member(&b, false, name, user_id_json, NULL);
        srv->host.publish_local(srv, app, name, strlen(name), b.data, b.len, NULL);
        hd_buf_deinit(&b);
        hd_webhooks_member_removed(srv->webhooks, app->index, name, user_key);
    }
    if (lr->vacated)
        hd_webhooks_channel_vacated(srv->webhooks, app->index, name);
}

/* subscription_count goes out once, with the count after the last leave. */
static void local_left(hd_adapter *a, hd_app *app, hd_channel *ch, const hd_leave_result *res,
                       const char *const *user_keys, const char *const *user_id_jsons, size_t n)
{
    const char *name = hd_channel_name(ch);
    for (size_t i = 0; i < n; i++)
        announce_leave(a->srv, app, name, &res[i], user_keys[i], user_id_jsons[i]);
    if (n && name[0] != '#' && !res[n - 1].vacated)
        send_subscription_count(a->srv, app, ch, res[n - 1].subscribers);
}

/* ---- fan-out ---- */

static void cache_store(hd_server *srv, hd_app *app, const char *channel, const char *frame, size_t len)
{
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), true);
    uint64_t ttl_ms = (uint64_t)srv->cfg->channel_limits.cache_ttl * 1000u;
    hd_channel_cache_store(ch, frame, len, hd_mono_ms() + ttl_ms);
    hd_registry_release(app->registry, ch);
}

static void local_publish(hd_adapter *a, hd_app *app, const char *channel, const char *frame, size_t len,
                          const char *except, bool cache)
{
    if (cache)
        cache_store(a->srv, app, channel, frame, len);
    a->srv->host.publish_local(a->srv, app, channel, strlen(channel), frame, len, except);
}

static void local_terminate(hd_adapter *a, hd_app *app, const char *user_id)
{
    a->srv->host.terminate(a->srv, app, user_id);
}

/* ---- reads ---- */

typedef struct list_entry {
    char *name;
    uint32_t subscribers, users;
} list_entry;

typedef struct list_ctx {
    list_entry *v;
    size_t n, cap;
} list_ctx;

static void list_visit(hd_channel *ch, void *arg)
{
    list_ctx *l = arg;
    if (hd_channel_name(ch)[0] == '#') /* internal and per-user channels are not listed */
        return;
    uint32_t subs, users;
    hd_channel_counts(ch, &subs, &users);
    if (!subs)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = hd_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (list_entry){hd_strdup(hd_channel_name(ch)), subs, users};
}

static int by_name(const void *x, const void *y)
{
    return strcmp(((const list_entry *)x)->name, ((const list_entry *)y)->name);
}

static void read_channels(hd_app *app, const char *prefix, hd_buf *body)
{
    list_ctx l = {0};
    hd_registry_foreach_occupied(app->registry, prefix && *prefix ? prefix : NULL, list_visit, &l);
    if (l.n) /* qsort wants a non-NULL array even for 0 elements */
        qsort(l.v, l.n, sizeof *l.v, by_name); /* the same order as the cluster's lex index */
    for (size_t i = 0; i < l.n; i++) {
        hd_buf_printf(body, "%s\t%u\t%u\n", l.v[i].name, l.v[i].subscribers, l.v[i].users);
        hd_free(l.v[i].name);
    }
    hd_free(l.v);
}

static void read_channel(hd_server *srv, hd_app *app, const char *channel, hd_ad_reply *r)
{
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), false);
    if (ch) {
        hd_channel_counts(ch, &r->subscribers, &r->users);
        uint64_t ttl_ms = 0;
        if (hd_channel_cache_load(ch, hd_mono_ms(), &r->cache, &ttl_ms))
            r->cache_ttl_s = (uint32_t)((ttl_ms + 999) / 1000);
    }
    hd_registry_release(app->registry, ch);
    (void)srv;
}

static void read_users(hd_app *app, const char *channel, hd_buf *body)
{
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), false);
    if (ch)
        hd_channel_users_json(ch, body);
    else
        hd_buf_puts(body, "{\"users\":[]}");
    hd_registry_release(app->registry, ch);
}

static bool user_online(hd_app *app, const char *id, size_t len)
{
    hd_buf name;
    hd_buf_init(&name);
    hd_buf_printf(&name, HD_USER_CHANNEL_PREFIX "%.*s", (int)len, id);
    uint32_t n = 0;
    hd_channel *ch = hd_registry_acquire(app->registry, name.data, name.len, false);
    if (ch)
        hd_channel_counts(ch, &n, NULL);
    hd_registry_release(app->registry, ch);
    hd_buf_deinit(&name);
    return n > 0;
}

static void read_online(hd_app *app, const char *ids, hd_buf *body)
{
    for (const char *p = ids; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        hd_buf_append(body, user_online(app, p, len) ? "1" : "0", 1);
        p += len + (end ? 1 : 0);
    }
}

static hd_ad_reply *local_read_now(hd_adapter *a, hd_app *app, enum hd_ad_read what, const char *arg)
{
    hd_ad_reply *r = hd_ad_reply_new((hd_ad_caller){0, 0});
    switch (what) {
    case HD_AD_READ_CHANNELS:
        read_channels(app, arg, &r->body);
        break;
    case HD_AD_READ_CHANNEL:
        read_channel(a->srv, app, arg, r);
        break;
    case HD_AD_READ_USERS:
        read_users(app, arg, &r->body);
        break;
    case HD_AD_READ_ONLINE:
        read_online(app, arg, &r->body);
        break;
    }
    return r;
}

static void local_read(hd_adapter *a, hd_app *app, enum hd_ad_read what, const char *arg, hd_ad_caller reply_to)
{
    hd_ad_reply *r = local_read_now(a, app, what, arg);
    r->to = reply_to;
    a->srv->host.complete(a->srv, r);
}

static bool local_ready(hd_adapter *a, hd_buf *why)
{
    (void)a;
    (void)why;
    return true;
}

static void local_destroy(hd_adapter *a)
{
    hd_free(a);
}

static const hd_adapter_ops local_ops = {
    .abi = HD_ADAPTER_ABI,
    .name = "local",
    .cluster = false,
    .joined = local_joined,
    .left = local_left,
    .publish = local_publish,
    .terminate_user = local_terminate,
    .read = local_read,
    .read_now = local_read_now,
    .ready = local_ready,
    .destroy = local_destroy,
};

hd_adapter *hd_adapter_local_create(hd_server *srv)
{
    hd_adapter *a = hd_calloc(1, sizeof *a);
    a->ops = &local_ops;
    a->srv = srv;
    return a;
}
