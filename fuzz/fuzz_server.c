/* fuzz_server.c - the socket-less server of the WebSocket and HTTP fuzz
 * targets, and the lws functions the connection layer calls on a
 * connection, reimplemented over hd_fuzz_conn (see fuzz_server.h).
 *
 * DESIGN
 * ------
 * Why --wrap and not a real lws context: a context means listening
 * sockets, an event loop and real connections per input, which is slow,
 * nondeterministic and hides the handler behind lws' own parsing. The
 * connection layer touches a connection through a dozen lws calls; their
 * stand-ins here behave like lws 4.1 does for what herald relies on
 * (lws_hdr_copy's -1 when the buffer is too small, urlarg lookup by
 * prefix, a choked socket) and double as the oracle on output.
 *
 * The world's server is built like hd_server_create() builds one, minus
 * lws contexts, listeners, metrics and webhooks; keep the two in step.
 * Cleanup runs synchronously (cleanup.async_enabled false in the config),
 * so an input always does the same thing.
 *
 * THREADING: the fuzzer's thread only.
 */
#include "fuzz_server.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cleanup/cleanup.h"

/* disconnect.c: the cleanup pool's step (declared where server.c uses it) */
void hd_disconnect_leave(void *ctx, void *app, hd_channel *ch, const hd_cleanup_leave *leaves, size_t n);

static const char fuzz_config_json[] =
    "{\"port\":6001,\"activity_timeout\":120,\"max_message_size_kb\":4,\"max_outbound_buffer_kb\":16,"
    "\"max_http_body_kb\":8,\"max_subscriptions_per_connection\":24,\"shutdown_grace_period\":0,"
    "\"metrics\":{\"enabled\":false},\"cleanup\":{\"async_enabled\":false},"
    "\"event_limits\":{\"max_channels_at_once\":4,\"max_name_length\":60,\"max_payload_in_kb\":2,"
    "\"max_batch_size\":4},"
    "\"channel_limits\":{\"max_name_length\":120,\"cache_ttl\":60},"
    "\"presence\":{\"max_members_per_channel\":4,\"max_member_size_in_kb\":1},"
    "\"app_manager\":{\"array\":{\"apps\":["
    "{\"id\":\"app-id\",\"key\":\"app-key\",\"secret\":\"app-secret\",\"enable_client_messages\":true,"
    "\"enable_subscription_count\":true},"
    "{\"id\":\"app-2\",\"key\":\"key-2\",\"secret\":\"secret-2\",\"enable_user_authentication\":true,"
    "\"max_connections\":2,\"max_client_events_per_second\":3,\"allowed_origins\":[\"https://ok.example\"]},"
    "{\"id\":\"app-off\",\"key\":\"key-off\",\"secret\":\"secret-off\",\"enabled\":false}"
    "]}}}";

void hd_fuzz_config(hd_config *cfg)
{
    char err[512];
    if (hd_config_load_json(cfg, fuzz_config_json, sizeof fuzz_config_json - 1, NULL, err, sizeof err) != 0)
        hd_fuzz_fail(err, fuzz_config_json, sizeof fuzz_config_json - 1);
}

/* ---- the server, as hd_server_create() builds it minus lws ---- */

static hd_server *server_new(const hd_config *cfg)
{
    hd_server *srv = hd_calloc(1, sizeof *srv);
    srv->cfg = cfg;
    srv->n_threads = HD_FUZZ_THREADS;
    srv->node_num = HD_FUZZ_NODE_ID;
    hd_host_init(srv);
    hd_server__apps_create(srv);
    srv->admission = hd_admission_create();
    srv->adapter = hd_adapter_local_create(srv);
    if (hd_cleanup_create(&srv->cleanup, cfg, hd_disconnect_leave, srv) != 0)
        hd_fuzz_fail("cleanup pool", NULL, 0);
    srv->threads = hd_calloc(srv->n_threads, sizeof *srv->threads);
    for (unsigned i = 0; i < srv->n_threads; i++) {
        hd_io_thread *io = &srv->threads[i];
        hd_server__io_init(srv, io, i);
        atomic_store(&io->alive, true);
    }
    return srv;
}

static const char *default_uri(unsigned i)
{
    return i == HD_FUZZ_CONNS - 1 ? "/app/key-2?protocol=7&client=js&version=8.4.0" : "/app/app-key?protocol=7";
}

hd_fuzz_world *hd_fuzz_world_new(const hd_config *cfg)
{
    hd_fuzz_world *w = hd_calloc(1, sizeof *w);
    w->srv = server_new(cfg);
    for (unsigned i = 0; i < HD_FUZZ_CONNS; i++) {
        w->conns[i].w = w;
        hd_fuzz_open(w, i, NULL, NULL);
    }
    hd_fuzz_pump(w);
    return w;
}

/* ---- connections: the lws callback steps ---- */

void hd_fuzz_close(hd_fuzz_world *w, unsigned i)
{
    hd_fuzz_conn *c = &w->conns[i];
    if (!c->open)
        return;
    c->open = false;
    c->want_writable = false;
    hd_session_closed(&c->s);
    hd_buf_deinit(&c->rx);
}

void hd_fuzz_open(hd_fuzz_world *w, unsigned i, const char *uri, const char *origin)
{
    hd_fuzz_conn *c = &w->conns[i];
    hd_fuzz_close(w, i);
    memset(&c->s, 0, sizeof c->s); /* lws hands out zeroed per-session data */
    snprintf(c->uri, sizeof c->uri, "%s", uri ? uri : default_uri(i));
    if (!origin)
        origin = i == HD_FUZZ_CONNS - 1 ? "https://ok.example" : "";
    snprintf(c->origin, sizeof c->origin, "%s", origin);
    c->open = true;
    c->choked = false;
    c->first = c->final = c->binary = c->rx_binary = false;
    hd_buf_init(&c->rx);
    hd_session_established(&c->s, (struct lws *)c, &w->srv->threads[i % HD_FUZZ_THREADS]);
}

/* rx_buffer_size of the "pusher" protocol (server.c): lws hands a frame's
 * payload to RECEIVE in pieces this big, first only on the first piece of
 * a message, final only on the last piece of its last frame. */
#define RX_PIECE 1024

void hd_fuzz_frame(hd_fuzz_world *w, unsigned i, const char *data, size_t len, bool final, bool binary)
{
    hd_fuzz_conn *c = &w->conns[i];
    if (!c->open)
        hd_fuzz_open(w, i, NULL, NULL);
    w->sender = c;
    bool first = c->rx.data == NULL; /* continuation frames keep the first one's type */
    if (first)
        c->rx_binary = binary;
    hd_buf_append(&c->rx, data, len);
    if (!c->rx_binary && !hd_fuzz_utf8_valid(c->rx.data, c->rx.len, !final)) {
        hd_fuzz_close(w, i); /* lws closes with 1007; herald never sees the frame */
        return;
    }
    c->binary = c->rx_binary;
    size_t off = 0;
    do {
        size_t n = len - off < RX_PIECE ? len - off : RX_PIECE;
        c->first = first && off == 0;
        c->remaining = len - off - n;
        c->final = final && !c->remaining;
        char *copy = hd_malloc(n ? n : 1); /* exactly n bytes: reads past them are caught */
        memcpy(copy, data + off, n);
        hd_session_receive(&c->s, copy, n);
        hd_free(copy);
        off += n;
    } while (off < len);
    if (final)
        hd_buf_deinit(&c->rx);
}

void hd_fuzz_choke(hd_fuzz_world *w, unsigned i, bool choked)
{
    hd_fuzz_conn *c = &w->conns[i];
    if (c->choked && !choked && c->open)
        c->want_writable = true; /* lws: the socket drained, the pending write completes */
    c->choked = choked;
}

static bool inboxes_empty(hd_server *srv)
{
    bool empty = true;
    for (unsigned t = 0; t < srv->n_threads; t++) {
        pthread_mutex_lock(&srv->threads[t].inbox_lock);
        empty = empty && srv->threads[t].inbox_head == NULL;
        pthread_mutex_unlock(&srv->threads[t].inbox_lock);
    }
    return empty;
}

/* One loop turn on every io thread; false when there was nothing to do. */
static bool turn(hd_fuzz_world *w)
{
    hd_server *srv = w->srv;
    bool busy = !inboxes_empty(srv);
    for (unsigned t = 0; t < srv->n_threads; t++)
        hd_io_inbox_drain(&srv->threads[t]);
    for (unsigned t = 0; t < srv->n_threads; t++) {
        busy = busy || srv->threads[t].n_dirty > srv->threads[t].dirty_head;
        while (hd_io_flush_dirty(&srv->threads[t]))
            ;
    }
    for (unsigned i = 0; i < HD_FUZZ_CONNS; i++) {
        hd_fuzz_conn *c = &w->conns[i];
        if (!c->open || !c->want_writable || c->choked)
            continue;
        busy = true;
        c->want_writable = false;
        if (hd_session_writable(&c->s) < 0)
            hd_fuzz_close(w, i);
    }
    return busy;
}

/* ---- the registry against the io threads' local indexes ---- */

/* Distinct presence users among the local subscriptions to name. */
static uint32_t local_users(hd_server *srv, size_t app, const char *name, size_t len)
{
    hd_map seen;
    hd_map_init(&seen);
    for (unsigned t = 0; t < srv->n_threads; t++) {
        hd_local_channel *lc = hd_map_get(&srv->threads[t].local[app], name, len);
        for (hd_sub *sub = lc ? lc->head : NULL; sub; sub = sub->next)
            if (sub->user_key && !hd_map_get(&seen, sub->user_key, strlen(sub->user_key)))
                hd_map_insert(&seen, sub->user_key, strlen(sub->user_key), sub);
    }
    uint32_t n = (uint32_t)seen.count;
    hd_map_deinit(&seen);
    return n;
}

/* Each channel a thread lists locally: the registry counts the same
 * subscriptions on that thread, and (one node) the same users. */
static void check_channel(hd_server *srv, size_t app, hd_io_thread *io, const hd_local_channel *lc)
{
    const char *name = lc->entry->key;
    size_t len = lc->entry->key_len;
    uint32_t listed = 0;
    for (hd_sub *sub = lc->head; sub; sub = sub->next, listed++)
        if (sub->session->io != io || sub->ch == NULL || hd_channel_name_len(sub->ch) != len)
            hd_fuzz_fail("a local subscription is on the wrong thread or channel", name, len);
    hd_channel *ch = hd_registry_acquire(srv->apps[app].registry, name, len, false);
    if (!ch)
        hd_fuzz_fail("a locally listed channel is not in the registry", name, len);
    uint32_t counts[HD_MAX_IO_THREADS], subs, users;
    hd_channel_thread_counts(ch, counts, srv->n_threads);
    hd_channel_counts(ch, &subs, &users);
    bool presence = hd_channel_get_type(ch).kind == HD_CHANNEL_PRESENCE;
    hd_registry_release(srv->apps[app].registry, ch);
    if (listed != lc->count || counts[io->index] != lc->count)
        hd_fuzz_fail("registry's per-thread count differs from the local index", name, len);
    if (presence && users != local_users(srv, app, name, len))
        hd_fuzz_fail("presence user count differs from the subscribed users", name, len);
}

typedef struct occupied_ctx {
    hd_server *srv;
    size_t app;
} occupied_ctx;

/* Every occupied channel is listed by the threads its count names. */
static void check_occupied(hd_channel *ch, void *arg)
{
    occupied_ctx *o = arg;
    uint32_t counts[HD_MAX_IO_THREADS];
    hd_channel_thread_counts(ch, counts, o->srv->n_threads);
    for (unsigned t = 0; t < o->srv->n_threads; t++) {
        hd_local_channel *lc = hd_map_get(&o->srv->threads[t].local[o->app], hd_channel_name(ch),
                                          hd_channel_name_len(ch));
        if (counts[t] != (lc ? lc->count : 0))
            hd_fuzz_fail("an occupied channel's count is not what the threads list", hd_channel_name(ch),
                         hd_channel_name_len(ch));
    }
}

static void check_consistent(hd_server *srv)
{
    for (size_t a = 0; a < hd_server_n_apps(srv); a++) {
        for (unsigned t = 0; t < srv->n_threads; t++) {
            hd_map_iter it = {0};
            hd_map_entry *e;
            while ((e = hd_map_next(&srv->threads[t].local[a], &it)))
                check_channel(srv, a, &srv->threads[t], e->value);
        }
        occupied_ctx o = {srv, a};
        hd_registry_foreach_occupied(srv->apps[a].registry, NULL, check_occupied, &o);
    }
}

void hd_fuzz_pump(hd_fuzz_world *w)
{
    for (int n = 0; turn(w); n++)
        if (n == 10000)
            hd_fuzz_fail("the io threads never go idle", NULL, 0);
    w->sender = NULL;
    check_consistent(w->srv);
}

/* ---- teardown and the end-of-input invariants ---- */

static void occupied_after_close(hd_channel *ch, void *arg)
{
    hd_fuzz_fail("a channel still has subscribers after every connection closed", hd_channel_name(ch),
                 hd_channel_name_len(ch));
}

static void check_nothing_left(hd_server *srv)
{
    if (atomic_load(&srv->connections) != 0)
        hd_fuzz_fail("node connection count is not 0 after every connection closed", NULL, 0);
    for (size_t a = 0; a < hd_server_n_apps(srv); a++) {
        if (atomic_load(&srv->apps[a].connections) != 0)
            hd_fuzz_fail("app connection count is not 0 after every connection closed", NULL, 0);
        hd_registry_foreach_occupied(srv->apps[a].registry, NULL, occupied_after_close, NULL);
    }
    for (unsigned t = 0; t < srv->n_threads; t++) {
        hd_io_thread *io = &srv->threads[t];
        if (io->sessions || io->auth_pending)
            hd_fuzz_fail("a closed session is still linked on its io thread", NULL, 0);
        for (size_t a = 0; a < hd_server_n_apps(srv); a++)
            if (io->local[a].count)
                hd_fuzz_fail("the local index still lists a channel", NULL, 0);
    }
}

void hd_fuzz_world_free(hd_fuzz_world *w)
{
    for (unsigned i = 0; i < HD_FUZZ_CONNS; i++)
        hd_fuzz_choke(w, i, false);
    hd_fuzz_pump(w);
    for (unsigned i = 0; i < HD_FUZZ_CONNS; i++)
        hd_fuzz_close(w, i);
    hd_fuzz_pump(w);
    check_nothing_left(w->srv);
    hd_server_destroy(w->srv);
    hd_free(w);
}

/* ---- signing as a client's auth endpoint would ---- */

/* data of a pusher event: an object, or a string holding one (both occur). */
static cJSON *event_data(cJSON *root, cJSON **from_string)
{
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    *from_string = NULL;
    if (cJSON_IsString(data)) {
        *from_string = cJSON_Parse(data->valuestring);
        return cJSON_IsObject(*from_string) ? *from_string : NULL;
    }
    return cJSON_IsObject(data) ? data : NULL;
}

/* The string the client's auth endpoint signs, or false when there is none. */
static bool string_to_sign(const char *event, cJSON *data, const char *socket_id, hd_buf *out)
{
    if (!strcmp(event, "pusher:subscribe")) {
        cJSON *channel = cJSON_GetObjectItemCaseSensitive(data, "channel");
        cJSON *channel_data = cJSON_GetObjectItemCaseSensitive(data, "channel_data");
        if (!cJSON_IsString(channel))
            return false;
        hd_buf_printf(out, "%s:%s", socket_id, channel->valuestring);
        if (cJSON_IsString(channel_data))
            hd_buf_printf(out, ":%s", channel_data->valuestring);
        return true;
    }
    if (!strcmp(event, "pusher:signin")) {
        cJSON *user_data = cJSON_GetObjectItemCaseSensitive(data, "user_data");
        if (!cJSON_IsString(user_data))
            return false;
        hd_buf_printf(out, "%s::user::%s", socket_id, user_data->valuestring);
        return true;
    }
    return false;
}

char *hd_fuzz_sign_event(hd_fuzz_world *w, unsigned i, const char *json, size_t len)
{
    hd_fuzz_conn *c = &w->conns[i];
    const hd_app_config *app = c->s.app ? hd_app_cfg(c->s.app) : &w->srv->cfg->apps[0];
    cJSON *root = cJSON_ParseWithLength(json, len);
    cJSON *event = cJSON_GetObjectItemCaseSensitive(root, "event");
    cJSON *from_string = NULL;
    cJSON *data = cJSON_IsObject(root) && cJSON_IsString(event) ? event_data(root, &from_string) : NULL;
    hd_buf str, auth;
    hd_buf_init(&str);
    hd_buf_init(&auth);
    char *out = NULL;
    if (data && string_to_sign(event->valuestring, data, c->s.socket_id, &str)) {
        hd_fuzz_socket_auth(&auth, app->key, app->secret, str.data, str.len);
        cJSON_DeleteItemFromObjectCaseSensitive(data, "auth");
        cJSON_AddStringToObject(data, "auth", auth.data);
        if (from_string) { /* keep the client's shape: data stays a string */
            char *inner = cJSON_PrintUnformatted(from_string);
            cJSON_ReplaceItemInObjectCaseSensitive(root, "data", cJSON_CreateString(inner));
            cJSON_free(inner);
        }
        out = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(from_string);
    cJSON_Delete(root);
    hd_buf_deinit(&str);
    hd_buf_deinit(&auth);
    return out;
}

/* ---- the lws stand-ins (linked with -Wl,--wrap=<name>) ---- */

int __wrap_lws_write(struct lws *wsi, unsigned char *buf, size_t len, enum lws_write_protocol wp);
int __wrap_lws_callback_on_writable(struct lws *wsi);
int __wrap_lws_send_pipe_choked(struct lws *wsi);
int __wrap_lws_partial_buffered(struct lws *wsi);
void __wrap_lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf, size_t len);
int __wrap_lws_is_first_fragment(struct lws *wsi);
int __wrap_lws_is_final_fragment(struct lws *wsi);
int __wrap_lws_frame_is_binary(struct lws *wsi);
size_t __wrap_lws_remaining_packet_payload(struct lws *wsi);
void __wrap_lws_set_timeout(struct lws *wsi, enum pending_timeout reason, int secs);
int __wrap_lws_hdr_copy(struct lws *wsi, char *dest, int len, enum lws_token_indexes h);
const char *__wrap_lws_get_urlarg_by_name(struct lws *wsi, const char *name, char *buf, int len);
lws_sockfd_type __wrap_lws_get_socket_fd(struct lws *wsi);
void __wrap_lws_cancel_service(struct lws_context *ctx);

static hd_fuzz_conn *conn_of(struct lws *wsi)
{
    hd_fuzz_conn *c = (hd_fuzz_conn *)wsi;
    if (!c || !c->open)
        hd_fuzz_fail("lws called on a connection that is not open", NULL, 0);
    return c;
}

/* Every frame to a client: one JSON object with an "event" string, in
 * valid UTF-8 (a text frame that is not is a protocol error: browsers
 * drop the connection). */
static void check_frame(const hd_fuzz_conn *c, const unsigned char *p, size_t len)
{
    hd_fuzz_expect_json_object("a frame sent to a client", (const char *)p, len);
    cJSON *root = cJSON_ParseWithLength((const char *)p, len);
    cJSON *event = cJSON_GetObjectItemCaseSensitive(root, "event");
    bool has_event = cJSON_IsString(event);
    bool echo = has_event && !strncmp(event->valuestring, "client-", 7) && c == c->w->sender;
    cJSON_Delete(root);
    if (!has_event)
        hd_fuzz_fail("a frame sent to a client has no \"event\" string", p, len);
    if (echo)
        hd_fuzz_fail("a client event was echoed to its sender", p, len);
    if (!hd_fuzz_utf8_valid(p, len, false))
        hd_fuzz_fail("a text frame sent to a client is not valid UTF-8", p, len);
}

/* LWS_WRITE_RAW from outq.c: several complete server frames (FIN, text, unmasked). */
static void check_gathered(const hd_fuzz_conn *c, const unsigned char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (len - off < 2 || p[off] != 0x81 || (p[off + 1] & 0x80))
            hd_fuzz_fail("gathered write: bad frame header", p + off, len - off);
        size_t hdr = 2, plen = p[off + 1];
        if (plen == 126 || plen == 127) {
            size_t nbytes = plen == 126 ? 2 : 8;
            if (len - off < 2 + nbytes)
                hd_fuzz_fail("gathered write: truncated length", p + off, len - off);
            plen = 0;
            for (size_t k = 0; k < nbytes; k++)
                plen = plen << 8 | p[off + 2 + k];
            hdr += nbytes;
        }
        if (plen > len - off - hdr)
            hd_fuzz_fail("gathered write: frame longer than the write", p + off, len - off);
        check_frame(c, p + off + hdr, plen);
        off += hdr + plen;
    }
}

int __wrap_lws_write(struct lws *wsi, unsigned char *buf, size_t len, enum lws_write_protocol wp)
{
    hd_fuzz_conn *c = conn_of(wsi);
    if (wp == LWS_WRITE_TEXT)
        check_frame(c, buf, len);
    else if (wp == LWS_WRITE_RAW)
        check_gathered(c, buf, len);
    else
        hd_fuzz_fail("lws_write with an unexpected protocol", NULL, 0);
    return (int)len;
}

int __wrap_lws_callback_on_writable(struct lws *wsi)
{
    conn_of(wsi)->want_writable = true;
    return 1;
}

int __wrap_lws_send_pipe_choked(struct lws *wsi)
{
    return conn_of(wsi)->choked;
}

int __wrap_lws_partial_buffered(struct lws *wsi)
{
    return conn_of(wsi)->choked;
}

void __wrap_lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf, size_t len)
{
    conn_of(wsi);
    /* RFC 6455 7.4: codes an endpoint may send (1005, 1006, 1015 never are) */
    bool ok = (status >= 1000 && status <= 1003) || (status >= 1007 && status <= 1014) ||
              (status >= 3000 && status <= 4999);
    if (!ok || !hd_fuzz_utf8_valid(buf, len, false))
        hd_fuzz_fail("close frame with a code or reason that may not be sent", buf, len);
}

int __wrap_lws_is_first_fragment(struct lws *wsi)
{
    return conn_of(wsi)->first;
}

int __wrap_lws_is_final_fragment(struct lws *wsi)
{
    return conn_of(wsi)->final;
}

int __wrap_lws_frame_is_binary(struct lws *wsi)
{
    return conn_of(wsi)->binary;
}

size_t __wrap_lws_remaining_packet_payload(struct lws *wsi)
{
    return conn_of(wsi)->remaining;
}

/* lws 4.1: "" and 0 when absent, -1 when it does not fit with its NUL. */
int __wrap_lws_hdr_copy(struct lws *wsi, char *dest, int len, enum lws_token_indexes h)
{
    hd_fuzz_conn *c = conn_of(wsi);
    const char *v = "";
    size_t n = 0;
    if (h == WSI_TOKEN_GET_URI) {
        v = c->uri;
        n = strcspn(v, "?");
    } else if (h == WSI_TOKEN_ORIGIN) {
        v = c->origin;
        n = strlen(v);
    }
    if (len > 0)
        *dest = '\0';
    if (!n)
        return 0;
    if (n >= (size_t)len)
        return -1;
    memcpy(dest, v, n);
    dest[n] = '\0';
    return (int)n;
}

/* lws 4.1: the first query argument starting with name (which includes
 * the '='), copied into buf; the value follows name in buf. An argument
 * that does not fit ends the search. */
const char *__wrap_lws_get_urlarg_by_name(struct lws *wsi, const char *name, char *buf, int len)
{
    hd_fuzz_conn *c = conn_of(wsi);
    const char *q = strchr(c->uri, '?');
    size_t sl = strlen(name);
    while (q && *q) {
        q++;
        size_t n = strcspn(q, "&");
        if (n >= (size_t)len)
            return NULL;
        memcpy(buf, q, n);
        buf[n] = '\0';
        if (!strncmp(buf, name, sl))
            return buf + sl;
        q += n;
    }
    return NULL;
}

/* idle.c, on the tick (not driven here): lws would drop the connection */
void __wrap_lws_set_timeout(struct lws *wsi, enum pending_timeout reason, int secs)
{
    conn_of(wsi);
}

lws_sockfd_type __wrap_lws_get_socket_fd(struct lws *wsi)
{
    conn_of(wsi);
    return -1;
}

void __wrap_lws_cancel_service(struct lws_context *ctx)
{
    hd_fuzz_fail("lws_cancel_service on a world without lws contexts", NULL, 0);
}
