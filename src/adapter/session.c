/* session.c - one WebSocket connection: handshake checks, inbound message
 * assembly, server-side close, activity timer.
 *
 * DESIGN
 * ------
 * A server-side close first flushes what is queued (the pusher:error
 * explaining it) and then sends the close frame from the writable
 * callback (outq.c). Activity (§8) is tracked in idle.c.
 *
 * THREADING
 * ---------
 * Only the io thread that owns the session calls these functions.
 */
#include <stdio.h>
#include <string.h>

#include "adapter_internal.h"

void hd_session_send_text(hd_session *s, const char *frame, size_t len)
{
    hd_msg *m = hd_msg_new(frame, len);
    hd_session_send(s, m);
    hd_msg_unref(m);
}

void hd_session_send_error(hd_session *s, int code, const char *message)
{
    hd_buf b;
    hd_buf_init(&b);
    if (code)
        hd_buf_printf(&b, "{\"event\":\"pusher:error\",\"data\":{\"code\":%d,\"message\":", code);
    else
        hd_buf_puts(&b, "{\"event\":\"pusher:error\",\"data\":{\"code\":null,\"message\":");
    hd_buf_json_string(&b, message, strlen(message));
    hd_buf_puts(&b, "}}");
    hd_session_send_text(s, b.data, b.len);
    hd_buf_deinit(&b);
}

void hd_session_fail(hd_session *s, uint16_t code, const char *why)
{
    if (s->closing || !s->wsi)
        return;
    hd_session_send_error(s, code, why);
    hd_session_close(s, code, why);
}

void hd_session_close(hd_session *s, uint16_t code, const char *reason)
{
    if (s->closing || !s->wsi)
        return;
    s->closing = true;
    s->close_code = code;
    s->close_reason = reason;
    hd_idle_close_deadline(s);
    lws_callback_on_writable(s->wsi);
}

hd_sub *hd_session_find_sub(hd_session *s, const char *channel, size_t len)
{
    for (uint32_t i = 0; i < s->n_subs; i++) {
        hd_channel *ch = s->subs[i]->ch;
        if (hd_channel_name_len(ch) == len && memcmp(hd_channel_name(ch), channel, len) == 0)
            return s->subs[i];
    }
    return NULL;
}

/* ---- handshake (§1) ---- */

static int protocol_version(struct lws *wsi)
{
    char buf[64];
    const char *v = lws_get_urlarg_by_name(wsi, "protocol=", buf, sizeof buf);
    if (!v)
        return 7; /* missing: treated as the current version */
    size_t n = strlen(v);
    if (n == 0 || n > 3)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return -1;
    return atoi(v);
}

static bool origin_allowed(struct lws *wsi, const hd_app_config *app)
{
    if (!app->n_allowed_origins)
        return true;
    char origin[256];
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0)
        origin[0] = '\0';
    for (size_t i = 0; i < app->n_allowed_origins; i++)
        if (!strcmp(app->allowed_origins[i], "*") || !strcmp(app->allowed_origins[i], origin))
            return true;
    return false;
}

/* Returns 0 with s->app set, or a 4xxx close code with *why set. */
static int handshake_check(hd_session *s, const char **why)
{
    char path[256];
    int n = lws_hdr_copy(s->wsi, path, sizeof path, WSI_TOKEN_GET_URI);
    const char *key = path + 5;
    if (n <= 5 || strncmp(path, "/app/", 5) != 0 || !*key || strchr(key, '/')) {
        *why = "Path not found";
        return HD_CLOSE_PATH_NOT_FOUND;
    }
    int version = protocol_version(s->wsi);
    s->app = hd_server_app_by_key(s->io->srv, key);
    if (!s->app) {
        *why = "Application does not exist";
        return HD_CLOSE_APP_NOT_FOUND;
    }
    if (version < 5 || version > 7) {
        *why = "Unsupported protocol version";
        return HD_CLOSE_BAD_PROTOCOL;
    }
    const hd_app_config *cfg = hd_app_cfg(s->app);
    if (!cfg->enabled) {
        *why = "Application disabled";
        return HD_CLOSE_APP_DISABLED;
    }
    if (!origin_allowed(s->wsi, cfg)) {
        *why = "Origin not allowed";
        return HD_CLOSE_UNAUTHORIZED;
    }
    return 0;
}

/* A slot in the node's and the app's connection quota, or a close code. */
static int quota_take(hd_server *srv, hd_app *app)
{
    uint32_t node_max = srv->cfg->limits.max_connections;
    unsigned node = atomic_fetch_add(&srv->connections, 1) + 1;
    if (node_max && node > node_max) {
        atomic_fetch_sub(&srv->connections, 1);
        return HD_CLOSE_OVER_CAPACITY;
    }
    unsigned now = atomic_fetch_add(&app->connections, 1) + 1;
    uint32_t app_max = hd_app_cfg(app)->max_connections;
    if (app_max && now > app_max) {
        atomic_fetch_sub(&app->connections, 1);
        atomic_fetch_sub(&srv->connections, 1);
        return HD_CLOSE_APP_OVER_QUOTA;
    }
    return 0;
}

static void send_established(hd_session *s)
{
    char frame[200];
    int n = snprintf(frame, sizeof frame,
                     "{\"event\":\"pusher:connection_established\",\"data\":\"{\\\"socket_id\\\":\\\"%s\\\","
                     "\\\"activity_timeout\\\":%u}\"}",
                     s->socket_id, s->io->srv->cfg->activity_timeout);
    hd_session_send_text(s, frame, (size_t)n);
    /* Written now rather than on the next writable turn: in a disconnect
     * storm that turn comes after every socket already ready (listener.c).
     * A fresh socket's send buffer is empty, and lws keeps whatever a
     * short write leaves. */
    if (hd_session_writable(s) < 0)
        hd_session_close(s, HD_CLOSE_INTERNAL_ERROR, "Write failed");
}

/* LWS_CALLBACK_ESTABLISHED */
void hd_session_established(hd_session *s, struct lws *wsi, hd_io_thread *io)
{
    s->kind = HD_CONN_WS;
    s->wsi = wsi;
    s->io = io;
    hd_server *srv = io->srv;
    uint64_t seq = atomic_fetch_add(&srv->next_socket, 1);
    snprintf(s->socket_id, sizeof s->socket_id, "%u.%llu", srv->node_id, (unsigned long long)seq);
    hd_idle_link(s);
    const char *why = NULL;
    int code = handshake_check(s, &why);
    if (!code && (code = quota_take(srv, s->app)) != 0) {
        why = code == HD_CLOSE_APP_OVER_QUOTA ? "Application is over connection quota" : "Over capacity: server connection limit reached";
        if (code == HD_CLOSE_OVER_CAPACITY)
            HD_STAT_ADD(io, connections_over_limit, 1);
    }
    if (code) {
        hd_session_fail(s, (uint16_t)code, why);
        return;
    }
    s->established = true;
    HD_STAT_ADD(io, connections_opened, 1);
    const hd_app_config *cfg = hd_app_cfg(s->app);
    if (cfg->enable_user_authentication)
        hd_idle_auth_deadline(s, s->last_rx_ms + (uint64_t)cfg->user_authentication_timeout * 1000u);
    send_established(s);
}

/* ---- inbound (§2) ---- */

static void rx_reject_too_big(hd_session *s)
{
    hd_buf_deinit(&s->rx);
    hd_session_close(s, HD_CLOSE_MESSAGE_TOO_BIG, "Message too big");
}

/* LWS_CALLBACK_RECEIVE: assemble fragments, then dispatch one message. */
void hd_session_receive(hd_session *s, const char *in, size_t len)
{
    hd_session_touch(s);
    if (s->closing || !s->established)
        return;
    struct lws *wsi = s->wsi;
    size_t limit = (size_t)s->io->srv->cfg->max_message_size_kb * 1024u;
    bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    /* A frame header announcing more than the limit is refused at once,
     * not after the limit's worth of payload has been read. */
    if (s->rx.len + len + lws_remaining_packet_payload(wsi) > limit)
        return rx_reject_too_big(s);
    if (final)
        HD_STAT_ADD(s->io, messages_received, 1);
    if (first && final && !s->rx.len) {
        if (len > limit)
            return rx_reject_too_big(s);
        if (lws_frame_is_binary(wsi))
            return hd_session_send_error(s, 0, "Binary frames are not supported");
        return hd_session_on_message(s, in, len);
    }
    if (s->rx.len + len > limit)
        return rx_reject_too_big(s);
    hd_buf_append(&s->rx, in, len);
    if (!final)
        return;
    if (lws_frame_is_binary(wsi))
        hd_session_send_error(s, 0, "Binary frames are not supported");
    else
        hd_session_on_message(s, s->rx.data, s->rx.len);
    hd_buf_deinit(&s->rx);
}

/* LWS_CALLBACK_CLOSED: runs once per session. */
void hd_session_closed(hd_session *s)
{
    hd_idle_unlink(s);
    hd_session_disconnect(s);
    if (s->established) {
        atomic_fetch_sub(&s->app->connections, 1);
        atomic_fetch_sub(&s->io->srv->connections, 1);
    }
    s->established = false;
    hd_session_outq_clear(s);
    hd_buf_deinit(&s->rx);
    hd_free(s->user_id);
    hd_free(s->user_info_json);
    hd_free(s->subs);
    s->user_id = s->user_info_json = NULL;
    s->subs = NULL;
    s->wsi = NULL;
}
