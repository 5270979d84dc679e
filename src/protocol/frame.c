/* frame.c - the Pusher frames herald sends, built in one place so that
 * every path (local fan-out, the Redis adapter, the HTTP API) produces the
 * same bytes for the same event.
 *
 * THREADING: reentrant, any thread.
 */
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "protocol/protocol.h"

void hd_frame_event(hd_buf *out, const char *event, const char *channel, const char *data, size_t data_len)
{
    hd_buf_puts(out, "{\"event\":");
    hd_buf_json_string(out, event, strlen(event));
    if (channel) {
        hd_buf_puts(out, ",\"channel\":");
        hd_buf_json_string(out, channel, strlen(channel));
    }
    if (data) {
        hd_buf_puts(out, ",\"data\":");
        hd_buf_json_string(out, data, data_len);
    }
    hd_buf_append(out, "}", 1);
}

void hd_frame_member(hd_buf *out, bool added, const char *channel, const char *user_id_json,
                     const char *user_info_json)
{
    hd_buf data;
    hd_buf_init(&data);
    hd_buf_printf(&data, "{\"user_id\":%s", user_id_json);
    if (added && user_info_json)
        hd_buf_printf(&data, ",\"user_info\":%s", user_info_json);
    hd_buf_append(&data, "}", 1);
    hd_frame_event(out, added ? "pusher_internal:member_added" : "pusher_internal:member_removed", channel,
                   data.data, data.len);
    hd_buf_deinit(&data);
}

void hd_frame_watchlist_ids(hd_buf *out, bool online, const char *user_ids_json)
{
    hd_buf data;
    hd_buf_init(&data);
    hd_buf_printf(&data, "{\"events\":[{\"name\":\"%s\",\"user_ids\":[%s]}]}", online ? "online" : "offline",
                  user_ids_json);
    hd_frame_event(out, "pusher_internal:watchlist_events", NULL, data.data, data.len);
    hd_buf_deinit(&data);
}

void hd_frame_watchlist(hd_buf *out, bool online, const char *user_id)
{
    hd_buf id;
    hd_buf_init(&id);
    hd_buf_json_string(&id, user_id, strlen(user_id));
    hd_frame_watchlist_ids(out, online, id.data);
    hd_buf_deinit(&id);
}

void hd_frame_subscription_count(hd_buf *out, const char *channel, uint32_t count)
{
    char data[48];
    int n = snprintf(data, sizeof data, "{\"subscription_count\":%u}", count);
    hd_frame_event(out, "pusher_internal:subscription_count", channel, data, (size_t)n);
}

void hd_frame_error(hd_buf *out, int code, const char *message)
{
    if (code)
        hd_buf_printf(out, "{\"event\":\"pusher:error\",\"data\":{\"code\":%d,\"message\":", code);
    else
        hd_buf_puts(out, "{\"event\":\"pusher:error\",\"data\":{\"code\":null,\"message\":");
    hd_buf_json_string(out, message, strlen(message));
    hd_buf_puts(out, "}}");
}

void hd_frame_subscription_error(hd_buf *out, const char *channel, const char *type, const char *error, int status)
{
    hd_buf_puts(out, "{\"event\":\"pusher:subscription_error\",\"channel\":");
    hd_buf_json_string(out, channel, strlen(channel));
    hd_buf_puts(out, ",\"data\":{\"type\":");
    hd_buf_json_string(out, type, strlen(type));
    hd_buf_puts(out, ",\"error\":");
    hd_buf_json_string(out, error, strlen(error));
    hd_buf_printf(out, ",\"status\":%d}}", status);
}

void hd_frame_cache_miss(hd_buf *out, const char *channel)
{
    hd_buf_puts(out, "{\"event\":\"pusher:cache_miss\",\"channel\":");
    hd_buf_json_string(out, channel, strlen(channel));
    hd_buf_append(out, "}", 1);
}

void hd_frame_connection_established(hd_buf *out, const char *socket_id, uint32_t activity_timeout)
{
    hd_buf data;
    hd_buf_init(&data);
    hd_buf_puts(&data, "{\"socket_id\":");
    hd_buf_json_string(&data, socket_id, strlen(socket_id));
    hd_buf_printf(&data, ",\"activity_timeout\":%u}", activity_timeout);
    hd_frame_event(out, "pusher:connection_established", NULL, data.data, data.len);
    hd_buf_deinit(&data);
}

void hd_frame_ping(hd_buf *out)
{
    hd_frame_event(out, "pusher:ping", NULL, "{}", 2);
}

void hd_frame_pong(hd_buf *out)
{
    hd_frame_event(out, "pusher:pong", NULL, "{}", 2);
}

void hd_frame_signin_success(hd_buf *out, const char *user_data)
{
    hd_buf_puts(out, "{\"event\":\"pusher:signin_success\",\"data\":{\"user_data\":");
    hd_buf_json_string(out, user_data, strlen(user_data));
    hd_buf_puts(out, "}}");
}

void hd_frame_client_event(hd_buf *out, const char *event, const char *channel, const char *data_json,
                           const char *user_id)
{
    hd_buf_puts(out, "{\"event\":");
    hd_buf_json_string(out, event, strlen(event));
    hd_buf_puts(out, ",\"channel\":");
    hd_buf_json_string(out, channel, strlen(channel));
    hd_buf_puts(out, ",\"data\":");
    hd_buf_puts(out, data_json);
    if (user_id) {
        hd_buf_puts(out, ",\"user_id\":");
        hd_buf_json_string(out, user_id, strlen(user_id));
    }
    hd_buf_append(out, "}", 1);
}

void hd_frame_subscription_succeeded(hd_buf *out, const char *channel, const char *presence_json, size_t len)
{
    if (!presence_json || !len) /* no presence: the data is an empty object */
        presence_json = "{}", len = 2;
    hd_frame_event(out, "pusher_internal:subscription_succeeded", channel, presence_json, len);
}
