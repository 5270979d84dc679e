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
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "adapter/adapter_internal.h"

void hd_session_send_text(hd_session *s, const char *frame, size_t len)
{
    /* every frame meant for this one connection comes through here; the
     * fan-out (fanout.c) counts its own, once per delivery */
    HD_STAT_ADD(s->io, frames_queued[HD_FRAME_DIRECT], 1);
    HD_STAT_ADD(s->io, bytes_queued[HD_FRAME_DIRECT], len);
    hd_msg *m = hd_msg_new(frame, len);
    hd_session_send(s, m);
    hd_msg_unref(m);
}

void hd_session_send_error(hd_session *s, int code, const char *message)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_error(&b, code, message);
    hd_session_send_text(s, b.data, b.len);
    hd_buf_deinit(&b);
}

/* ---- logging with the session's context ---- */

void hd_session_log_ctx(const hd_session *s, hd_log_ctx *ctx, const char *channel, int *fd)
{
    *fd = s->wsi ? lws_get_socket_fd(s->wsi) : -1;
    *ctx = (hd_log_ctx){.app = s->app ? hd_app_cfg(s->app)->id : NULL,
                        .socket_id = s->socket_id[0] ? s->socket_id : NULL,
                        .channel = channel,
                        .user = s->user_id,
                        .peer_fd = fd};
}

void hd_session_log_refusal(hd_session *s, const char *reason, const char *channel, const char *fmt, ...)
{
    if (HD_LOG_INFO > hd_log_level_current)
        return;
    int fd;
    hd_log_ctx ctx;
    hd_session_log_ctx(s, &ctx, channel, &fd);
    va_list ap;
    va_start(ap, fmt);
    hd_log_refusal_emitv("session", reason, &ctx, fmt, ap);
    va_end(ap);
}

/* A connection event at debug (connected, disconnected). */
static void log_event(hd_session *s, const char *what, uint16_t code)
{
    if (HD_LOG_DEBUG > hd_log_level_current)
        return;
    int fd;
    hd_log_ctx ctx;
    hd_session_log_ctx(s, &ctx, NULL, &fd);
    if (code)
        hd_logc(HD_LOG_DEBUG, "session", &ctx, "%s (code %u)", what, code);
    else
        hd_logc(HD_LOG_DEBUG, "session", &ctx, "%s", what);
}

/* Every close herald decides is a refusal of sorts: logged once, with its
 * code, why, and what the operator needs beyond what the client is told
 * (detail, may be NULL). Not 4200: a shutdown closes everyone at once and
 * server.c logs it as one line. */
static void log_close(hd_session *s, uint16_t code, const char *why, const char *detail)
{
    if (code == HD_CLOSE_SHUTTING_DOWN)
        return;
    char key[24];
    snprintf(key, sizeof key, "close %u", code);
    if (detail)
        hd_session_log_refusal(s, key, NULL, "%s (%s)", why, detail);
    else
        hd_session_log_refusal(s, key, NULL, "%s", why);
}

static void close_now(hd_session *s, uint16_t code, const char *reason)
{
    s->closing = true;
    s->close_code = code;
    s->close_reason = reason;
    hd_idle_close_deadline(s);
    lws_callback_on_writable(s->wsi);
}

void hd_session_fail_full(hd_session *s, uint16_t code, const char *message, const char *reason, const char *detail)
{
    if (s->closing || !s->wsi)
        return;
    hd_session_send_error(s, code, message);
    log_close(s, code, message, detail);
    close_now(s, code, reason);
}

void hd_session_fail(hd_session *s, uint16_t code, const char *why)
{
    hd_session_fail_full(s, code, why, why, NULL);
}

void hd_session_close_why(hd_session *s, uint16_t code, const char *reason, const char *detail)
{
    if (s->closing || !s->wsi)
        return;
    log_close(s, code, reason, detail);
    close_now(s, code, reason);
}

void hd_session_close(hd_session *s, uint16_t code, const char *reason)
{
    hd_session_close_why(s, code, reason, NULL);
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

/* origin: room for the Origin header (256 bytes), kept for the log line. */
static bool origin_allowed(struct lws *wsi, const hd_app_config *app, char *origin)
{
    origin[0] = '\0';
    if (!app->n_allowed_origins)
        return true;
    if (lws_hdr_copy(wsi, origin, 256, WSI_TOKEN_ORIGIN) <= 0)
        origin[0] = '\0';
    for (size_t i = 0; i < app->n_allowed_origins; i++)
        if (!strcmp(app->allowed_origins[i], "*") || !strcmp(app->allowed_origins[i], origin))
            return true;
    return false;
}

/* Returns 0 with s->app set, or a 4xxx close code with *why set and, in
 * detail (HANDSHAKE_DETAIL bytes), what the client sent that the log line
 * should show (the client is told only why). */
#define HANDSHAKE_DETAIL 320
static int handshake_check(hd_session *s, const char **why, char *detail)
{
    char path[256], origin[256];
    int n = lws_hdr_copy(s->wsi, path, sizeof path, WSI_TOKEN_GET_URI);
    const char *key = path + 5;
    if (n <= 5 || strncmp(path, "/app/", 5) != 0 || !*key || strchr(key, '/')) {
        snprintf(detail, HANDSHAKE_DETAIL, "path \"%.128s\"", n > 0 ? path : "");
        *why = "Path not found";
        return HD_CLOSE_PATH_NOT_FOUND;
    }
    int version = protocol_version(s->wsi);
    s->app = hd_server_app_by_key(s->io->srv, key);
    if (!s->app) {
        snprintf(detail, HANDSHAKE_DETAIL, "key \"%.128s\"", key);
        *why = "Application does not exist";
        return HD_CLOSE_APP_NOT_FOUND;
    }
    if (version < 5 || version > 7) {
        snprintf(detail, HANDSHAKE_DETAIL, "protocol %d", version);
        *why = "Unsupported protocol version";
        return HD_CLOSE_BAD_PROTOCOL;
    }
    const hd_app_config *cfg = hd_app_cfg(s->app);
    if (!cfg->enabled) {
        *why = "Application disabled";
        return HD_CLOSE_APP_DISABLED;
    }
    if (!origin_allowed(s->wsi, cfg, origin)) {
        snprintf(detail, HANDSHAKE_DETAIL, "origin \"%.200s\"", origin);
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
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_connection_established(&b, s->socket_id, s->io->srv->cfg->activity_timeout);
    hd_session_send_text(s, b.data, b.len);
    hd_buf_deinit(&b);
    /* Written now rather than on the next writable turn: in a disconnect
     * storm that turn comes after every socket already ready (listener.c).
     * A fresh socket's send buffer is empty, and lws keeps whatever a
     * short write leaves. */
    if (hd_session_writable(s) < 0)
        hd_session_close(s, HD_CLOSE_INTERNAL_ERROR, "Write failed");
}

static void session_admitted(hd_session *s);

/* LWS_CALLBACK_ESTABLISHED */
void hd_session_established(hd_session *s, struct lws *wsi, hd_io_thread *io)
{
    s->kind = HD_CONN_WS;
    s->wsi = wsi;
    s->io = io;
    hd_server *srv = io->srv;
    uint64_t seq = atomic_fetch_add(&srv->next_socket, 1);
    snprintf(s->socket_id, sizeof s->socket_id, "%llu.%llu", (unsigned long long)srv->node_num,
             (unsigned long long)seq);
    hd_idle_link(s);
    hd_young_add(s);
    const char *why = NULL;
    char detail[HANDSHAKE_DETAIL];
    detail[0] = '\0'; /* not the whole buffer: this runs once per connection */
    int code = handshake_check(s, &why, detail);
    if (!code && (code = quota_take(srv, s->app)) != 0) {
        why = code == HD_CLOSE_APP_OVER_QUOTA ? "Application is over connection quota" : "Over capacity: server connection limit reached";
        if (code == HD_CLOSE_OVER_CAPACITY)
            HD_STAT_ADD(io, connections_over_limit, 1);
        snprintf(detail, sizeof detail, "%s %u", code == HD_CLOSE_APP_OVER_QUOTA ? "max_connections" : "limits.max_connections",
                 code == HD_CLOSE_APP_OVER_QUOTA ? hd_app_cfg(s->app)->max_connections : srv->cfg->limits.max_connections);
    }
    if (code) {
        hd_session_fail_full(s, (uint16_t)code, why, why, detail[0] ? detail : NULL);
        return;
    }
    hd_adapter *a = srv->adapter;
    if (a->ops->quota && hd_app_cfg(s->app)->max_connections) {
        /* the app's limit is the cluster's: connection_established waits for its answer */
        s->quota_wait = hd_wait_add(io, HD_WAIT_QUOTA, s, NULL);
        a->ops->quota(a, s->app, +1, (hd_ad_caller){io->index, s->quota_wait});
        return;
    }
    session_admitted(s);
}

static void quota_give_back(hd_session *s)
{
    atomic_fetch_sub(&s->app->connections, 1);
    atomic_fetch_sub(&s->io->srv->connections, 1);
}

void hd_session_on_quota(hd_session *s, const hd_ad_reply *r)
{
    s->quota_wait = 0;
    if (r->status == HD_AD_QUOTA) {
        quota_give_back(s);
        char detail[64];
        snprintf(detail, sizeof detail, "max_connections %u (cluster)", hd_app_cfg(s->app)->max_connections);
        hd_session_fail_full(s, HD_CLOSE_APP_OVER_QUOTA, "Application is over connection quota",
                             "Application is over connection quota", detail);
        return;
    }
    s->quota_cluster = r->status == HD_AD_OK; /* unavailable: admitted on this node's count alone */
    session_admitted(s);
}

/* Past every check: counted, greeted. */
static void session_admitted(hd_session *s)
{
    hd_io_thread *io = s->io;
    s->established = true;
    HD_STAT_ADD(io, connections_opened, 1);
    const hd_app_config *cfg = hd_app_cfg(s->app);
    if (cfg->enable_user_authentication)
        hd_idle_auth_deadline(s, s->last_rx_ms + (uint64_t)cfg->user_authentication_timeout * 1000u);
    log_event(s, "connected", 0);
    send_established(s);
}

/* ---- inbound (§2) ---- */

static void reject_binary(hd_session *s)
{
    hd_session_send_error(s, 0, "Binary frames are not supported");
    hd_session_log_refusal(s, "invalid message", NULL, "Binary frames are not supported");
}

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
    HD_STAT_ADD(s->io, bytes_received, len);
    if (final)
        HD_STAT_ADD(s->io, messages_received, 1);
    if (final && lws_frame_is_binary(wsi)) /* text messages are counted by kind in events.c */
        HD_STAT_ADD(s->io, messages_by_kind[HD_WS_KIND_OTHER], 1);
    if (first && final && !s->rx.len) {
        if (len > limit)
            return rx_reject_too_big(s);
        if (lws_frame_is_binary(wsi))
            return reject_binary(s);
        return hd_session_on_message(s, in, len);
    }
    if (s->rx.len + len > limit)
        return rx_reject_too_big(s);
    hd_buf_append(&s->rx, in, len);
    if (!final)
        return;
    if (lws_frame_is_binary(wsi))
        reject_binary(s);
    else
        hd_session_on_message(s, s->rx.data, s->rx.len);
    hd_buf_deinit(&s->rx);
}

/* A close frame herald did not choose: the client's (payload from
 * LWS_CALLBACK_WS_PEER_INITIATED_CLOSE; lws has already replaced a code a
 * client may not send by 1002), or the one lws sent on a protocol error
 * it caught itself. The first one seen counts; len < 2: no code (1005). */
void hd_session_wire_close(hd_session *s, const unsigned char *payload, size_t len)
{
    if (!s->wire_close_code)
        s->wire_close_code = len >= 2 ? (uint16_t)(payload[0] << 8 | payload[1]) : HD_CLOSE_NO_STATUS;
}

/* The code a connection ended with (herald_connections_closed_total):
 * herald's own when herald closed it, else the one on the wire, else
 * 1006: the connection dropped without a close frame. */
static uint16_t close_code_of(const hd_session *s)
{
    if (s->closing && s->close_code)
        return s->close_code;
    return s->wire_close_code ? s->wire_close_code : HD_CLOSE_ABNORMAL;
}

/* LWS_CALLBACK_CLOSED: runs once per session. */
void hd_session_closed(hd_session *s)
{
    log_event(s, "disconnected", close_code_of(s));
    HD_STAT_ADD(s->io, closed_by_code[hd_series_close_slot(close_code_of(s))], 1);
    hd_idle_unlink(s);
    hd_young_remove(s);
    hd_session_disconnect(s);
    hd_adapter *a = s->io->srv->adapter;
    if (s->quota_wait || s->quota_cluster)
        a->ops->quota(a, s->app, -1, (hd_ad_caller){0, 0});
    if (s->established || s->quota_wait)
        quota_give_back(s);
    hd_wait_cancel(s->io, s->quota_wait);
    hd_wait_cancel(s->io, s->watch_wait);
    s->quota_wait = s->watch_wait = 0;
    s->quota_cluster = false;
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
