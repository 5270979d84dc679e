/* server_ops.c - the hd_server_* operations of adapter.h: every publish
 * and termination goes through the adapter (so it reaches every node);
 * the count probes read this node's registry.
 *
 * THREADING: any thread.
 */
#include <string.h>

#include "adapter/adapter_internal.h"

void hd_server_publish_frame(hd_server *srv, hd_app *app, const char *channel, const char *frame, size_t len,
                             const char *except_socket_id)
{
    srv->adapter->ops->publish(srv->adapter, app, channel, frame, len, except_socket_id, false);
}

void hd_server_publish(hd_server *srv, hd_app *app, const char *channel, const char *name, const char *data,
                       size_t data_len, const char *except_socket_id)
{
    hd_buf frame;
    hd_buf_init(&frame);
    hd_frame_event(&frame, name, channel, data, data_len);
    hd_channel_type t;
    bool cache = hd_channel_classify(channel, strlen(channel), strlen(channel), &t) == 0 && t.cache;
    srv->adapter->ops->publish(srv->adapter, app, channel, frame.data, frame.len, except_socket_id, cache);
    hd_buf_deinit(&frame);
}

void hd_server_terminate_user(hd_server *srv, hd_app *app, const char *user_id)
{
    srv->adapter->ops->terminate_user(srv->adapter, app, user_id);
}

void hd_server_channel_counts(hd_server *srv, hd_app *app, const char *channel, uint32_t *subscribers,
                              uint32_t *users)
{
    (void)srv;
    uint32_t s = 0, u = 0;
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), false);
    if (ch)
        hd_channel_counts(ch, &s, &u);
    hd_registry_release(app->registry, ch);
    if (subscribers)
        *subscribers = s;
    if (users)
        *users = u;
}

bool hd_server_member_present(hd_server *srv, hd_app *app, const char *channel, const char *user_id)
{
    (void)srv;
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), false);
    bool present = ch && hd_channel_has_member(ch, user_id, strlen(user_id));
    hd_registry_release(app->registry, ch);
    return present;
}
