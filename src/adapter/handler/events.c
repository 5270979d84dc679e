/* events.c - decode one inbound WebSocket message and dispatch it (§2, §3),
 * plus client events (§4.6).
 *
 * THREADING: the session's io thread only.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "adapter/adapter_internal.h"
#include "webhooks/webhooks.h"

/* pusher:error to the client, and the refusal logged with the session's
 * context (rate-limited per key, common/log.h): a misbehaving client must
 * not be able to flood the log. */
static void reject(hd_session *s, const char *key, int code, const char *message)
{
    hd_session_send_error(s, code, message);
    hd_session_log_refusal(s, key, NULL, "%s", message);
}

/* The same for a client event, with its channel and name. */
static void reject_client_event(hd_session *s, const char *event, const char *channel, int code, const char *message)
{
    char key[32]; /* "client event" or "client event <code>": a few keys, the log table stays small */
    if (code)
        snprintf(key, sizeof key, "client event %d", code);
    else
        snprintf(key, sizeof key, "client event");
    hd_session_send_error(s, code, message);
    hd_session_log_refusal(s, key, channel, "%s (event \"%.64s\")", message, event);
}

/* Clients send `data` as an object; some send it as a JSON string. */
static cJSON *data_object(cJSON *root, cJSON **owned)
{
    *owned = NULL;
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (cJSON_IsString(data)) {
        *owned = cJSON_Parse(data->valuestring);
        return cJSON_IsObject(*owned) ? *owned : NULL;
    }
    return cJSON_IsObject(data) ? data : NULL;
}

static void send_pong(hd_session *s)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_pong(&b);
    hd_session_send_text(s, b.data, b.len);
    hd_buf_deinit(&b);
}

static void dispatch_pusher_event(hd_session *s, const char *event, cJSON *root)
{
    if (!strcmp(event, "pusher:ping"))
        return send_pong(s);
    if (!strcmp(event, "pusher:pong"))
        return; /* activity already counted */
    void (*handler)(hd_session *, cJSON *) = NULL;
    if (!strcmp(event, "pusher:subscribe"))
        handler = hd_handle_subscribe;
    else if (!strcmp(event, "pusher:unsubscribe"))
        handler = hd_handle_unsubscribe;
    else if (!strcmp(event, "pusher:signin"))
        handler = hd_handle_signin;
    if (!handler) {
        hd_buf b;
        hd_buf_init(&b);
        hd_buf_printf(&b, "Unknown event: %.*s", (int)hd_utf8_prefix(event, strlen(event), 64), event);
        reject(s, "invalid message", 0, b.data);
        hd_buf_deinit(&b);
        return;
    }
    cJSON *owned;
    cJSON *data = data_object(root, &owned);
    if (!data)
        reject(s, "invalid message", 0, "Invalid message format: data must be an object");
    else
        handler(s, data);
    cJSON_Delete(owned);
}

void hd_session_on_message(hd_session *s, const char *text, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    cJSON *event = cJSON_GetObjectItemCaseSensitive(root, "event");
    bool valid = cJSON_IsObject(root) && cJSON_IsString(event);
    HD_STAT_ADD(s->io, messages_by_kind[hd_series_ws_kind(valid ? event->valuestring : NULL)], 1);
    if (!valid) {
        reject(s, "invalid message", 0, "Invalid message format: expected a JSON object with an event");
        cJSON_Delete(root);
        return;
    }
    const char *name = event->valuestring;
    if (!strncmp(name, "pusher:", 7) || !strncmp(name, "pusher_internal:", 16))
        dispatch_pusher_event(s, name, root);
    else if (!strncmp(name, "client-", 7))
        hd_handle_client_event(s, name, root);
    else
        reject(s, "invalid message", 0, "Unknown event: only pusher: and client- events may be sent");
    cJSON_Delete(root);
}

/* ---- client events (§4.6) ---- */

/* A token bucket of max_client_events_per_second tokens refilled
 * continuously: a client pacing itself at exactly the limit is never
 * refused (a fixed one-second window refuses 3-4 % of such events through
 * jitter alone), a burst beyond it is. Tokens are kept in thousandths. */
static bool rate_limited(hd_session *s)
{
    uint32_t max = hd_app_cfg(s->app)->max_client_events_per_second;
    if (!max)
        return false;
    uint64_t now = hd_mono_ms(), cap = (uint64_t)max * 1000u;
    if (!s->rate_started) {
        s->rate_started = true;
        s->rate_milli_tokens = (uint32_t)cap;
    } else {
        uint64_t tokens = s->rate_milli_tokens + (now - s->rate_refill_ms) * max;
        s->rate_milli_tokens = (uint32_t)(tokens < cap ? tokens : cap);
    }
    s->rate_refill_ms = now;
    if (s->rate_milli_tokens < 1000)
        return true;
    s->rate_milli_tokens -= 1000;
    return false;
}

/* Returns the subscription to relay on, or NULL after telling the client why not. */
static hd_sub *client_event_check(hd_session *s, const char *event, cJSON *channel)
{
    const hd_app_config *app = hd_app_cfg(s->app);
    if (!cJSON_IsString(channel)) {
        reject_client_event(s, event, NULL, 0, "Client event rejected - channel is required");
        return NULL;
    }
    const char *name = channel->valuestring;
    if (!app->enable_client_messages) {
        reject_client_event(s, event, name, 0,
                            "To send client events, you must enable this feature in the Settings page of your "
                            "dashboard.");
        return NULL;
    }
    hd_channel_type t;
    size_t nlen = strlen(name);
    if (hd_channel_classify(name, nlen, app->max_channel_name_length, &t) != 0 ||
        (t.kind != HD_CHANNEL_PRIVATE && t.kind != HD_CHANNEL_PRESENCE &&
         t.kind != HD_CHANNEL_PRIVATE_ENCRYPTED)) {
        reject_client_event(s, event, name, 0, "Client event rejected - only supported on private and presence channels");
        return NULL;
    }
    hd_sub *sub = hd_session_find_sub(s, name, nlen);
    if (!sub || !sub->by_client) {
        reject_client_event(s, event, name, 0, "Client event rejected - not subscribed to the channel");
        return NULL;
    }
    if (strlen(event) > app->max_event_name_length) {
        reject_client_event(s, event, name, 0, "Client event rejected - event name too long");
        return NULL;
    }
    return sub;
}

void hd_handle_client_event(hd_session *s, const char *event, cJSON *root)
{
    hd_sub *sub = client_event_check(s, event, cJSON_GetObjectItemCaseSensitive(root, "channel"));
    if (!sub)
        return;
    if (rate_limited(s))
        return reject_client_event(s, event, hd_channel_name(sub->ch), HD_ERROR_CLIENT_EVENT_RATE,
                                   "Client event rejected due to rate limit");
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    char *data_json = data ? cJSON_PrintUnformatted(data) : hd_strdup("null");
    if (strlen(data_json) > (size_t)hd_app_cfg(s->app)->max_event_payload_in_kb * 1024u) {
        reject_client_event(s, event, hd_channel_name(sub->ch), 0, "Client event rejected - payload too large");
        cJSON_free(data_json);
        return;
    }
    hd_buf b;
    hd_buf_init(&b);
    /* §4.4: a presence member's user_id goes out as a string (the dedup key) */
    hd_frame_client_event(&b, event, hd_channel_name(sub->ch), data_json, sub->user_id_json ? sub->user_key : NULL);
    hd_server_publish_frame(s->io->srv, s->app, hd_channel_name(sub->ch), b.data, b.len, s->socket_id);
    hd_webhooks_client_event(s->io->srv->webhooks, s->app->index, hd_channel_name(sub->ch), event, data_json,
                             s->socket_id, sub->user_key);
    hd_buf_deinit(&b);
    cJSON_free(data_json);
}
