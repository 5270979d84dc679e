/* membership.c - what follows a join or a leave of the registry: presence
 * member_added / member_removed, subscription_count, watchlist online /
 * offline for signed-in users, and the webhook reports.
 *
 * DESIGN
 * ------
 * The registry returns, from under the channel's lock, whether this join
 * or leave crossed a boundary (0 <-> 1 subscribers, a user's first or last
 * socket). Only the caller that crossed it reports it, so each transition
 * is reported exactly once however many threads race.
 *
 * THREADING: any thread (io threads on subscribe and unsubscribe, cleanup
 * workers on disconnect).
 */
#include <string.h>

#include "adapter/adapter_internal.h"
#include "cleanup/cleanup.h"
#include "webhooks/webhooks.h"

#define WATCH_PREFIX "#watch-"
#define USER_PREFIX "#server-to-user-"

static void presence_frame(hd_buf *b, const char *event, const char *channel, const char *user_id_json,
                           const char *user_info_json)
{
    hd_buf data;
    hd_buf_init(&data);
    hd_buf_printf(&data, "{\"user_id\":%s", user_id_json);
    if (user_info_json)
        hd_buf_printf(&data, ",\"user_info\":%s", user_info_json);
    hd_buf_append(&data, "}", 1);
    hd_frame_event(b, event, channel, data.data, data.len);
    hd_buf_deinit(&data);
}

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
    char data[64];
    int n = snprintf(data, sizeof data, "{\"subscription_count\":%u}", count);
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_event(&b, "pusher_internal:subscription_count", name, data, (size_t)n);
    hd_server_publish_frame(srv, app, name, b.data, b.len, NULL);
    hd_buf_deinit(&b);
}

/* A signed-in user's first or last connection: tell whoever watches them. */
static void watchlist_changed(hd_server *srv, hd_app *app, const char *user_id, bool online)
{
    hd_buf data, frame, channel;
    hd_buf_init(&data);
    hd_buf_init(&frame);
    hd_buf_init(&channel);
    hd_buf_printf(&data, "{\"events\":[{\"name\":\"%s\",\"user_ids\":[", online ? "online" : "offline");
    hd_buf_json_string(&data, user_id, strlen(user_id));
    hd_buf_puts(&data, "]}]}");
    hd_frame_event(&frame, "pusher_internal:watchlist_events", NULL, data.data, data.len);
    hd_buf_printf(&channel, WATCH_PREFIX "%s", user_id);
    hd_server_publish_frame(srv, app, channel.data, frame.data, frame.len, NULL);
    hd_buf_deinit(&data);
    hd_buf_deinit(&frame);
    hd_buf_deinit(&channel);
}

static bool is_user_channel(const char *name)
{
    return strncmp(name, USER_PREFIX, sizeof USER_PREFIX - 1) == 0;
}

void hd_membership_after_join(hd_server *srv, hd_app *app, hd_channel *ch, const hd_join_result *jr,
                              const hd_member *member, const char *socket_id)
{
    const char *name = hd_channel_name(ch);
    if (name[0] == '#') {
        if (jr->occupied && is_user_channel(name))
            watchlist_changed(srv, app, name + sizeof USER_PREFIX - 1, true);
        return;
    }
    if (jr->occupied)
        hd_webhooks_channel_occupied(srv->webhooks, app->index, name);
    if (jr->member_added) {
        hd_buf b;
        hd_buf_init(&b);
        presence_frame(&b, "pusher_internal:member_added", name, member->user_id_json, member->user_info_json);
        hd_server_publish_frame(srv, app, name, b.data, b.len, socket_id);
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
            watchlist_changed(srv, app, name + sizeof USER_PREFIX - 1, false);
        return;
    }
    if (lr->member_removed) {
        hd_buf b;
        hd_buf_init(&b);
        presence_frame(&b, "pusher_internal:member_removed", name, user_id_json, NULL);
        hd_server_publish_frame(srv, app, name, b.data, b.len, NULL);
        hd_buf_deinit(&b);
        hd_webhooks_member_removed(srv->webhooks, app->index, name, user_key);
    }
    if (lr->vacated)
        hd_webhooks_channel_vacated(srv->webhooks, app->index, name);
}

/* The channel lock is held once for all n leaves (hd_channel_leave_many);
 * the order lock around it keeps this group's announcements in order with
 * joins and other leaves of the channel. subscription_count goes out once,
 * with the count after the last leave. */
void hd_membership_leave_many(hd_server *srv, hd_app *app, hd_channel *ch, const hd_cleanup_leave *leaves,
                              size_t n)
{
    hd_leave_req reqs_small[8], *reqs = n <= 8 ? reqs_small : hd_malloc(n * sizeof *reqs);
    hd_leave_result res_small[8], *res = n <= 8 ? res_small : hd_malloc(n * sizeof *res);
    for (size_t i = 0; i < n; i++)
        reqs[i] = (hd_leave_req){leaves[i].thread, leaves[i].user_key,
                                 leaves[i].user_key ? strlen(leaves[i].user_key) : 0};
    hd_channel_order_lock(ch);
    hd_channel_leave_many(ch, reqs, n, res);
    const char *name = hd_channel_name(ch);
    for (size_t i = 0; i < n; i++)
        announce_leave(srv, app, name, &res[i], leaves[i].user_key, leaves[i].user_id_json);
    if (name[0] != '#' && !res[n - 1].vacated)
        send_subscription_count(srv, app, ch, res[n - 1].subscribers);
    hd_channel_order_unlock(ch);
    if (reqs != reqs_small)
        hd_free(reqs);
    if (res != res_small)
        hd_free(res);
    for (size_t i = 0; i < n; i++)
        hd_registry_release(app->registry, ch); /* after unlocking: the last may free ch */
}

void hd_membership_leave(hd_server *srv, hd_app *app, unsigned thread, hd_channel *ch, const char *user_key,
                         const char *user_id_json)
{
    hd_cleanup_leave leave = {thread, NULL, user_key, user_id_json};
    hd_membership_leave_many(srv, app, ch, &leave, 1);
}
