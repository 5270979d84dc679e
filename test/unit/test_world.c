/* test_world.c - the socket-less server of the unit suites and the lws
 * functions the connection layer calls on a connection, reimplemented over
 * hd_tw_conn (see test_world.h).
 *
 * THREADING: the test's thread (see test_world.h for the exceptions).
 */
#include "test_world.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "cleanup/cleanup.h"

/* disconnect.c: the cleanup pool's step (declared where server.c uses it) */
void hd_disconnect_leave(void *ctx, void *app, hd_channel *ch, const hd_cleanup_leave *leaves, size_t n);

#define DEFAULT_THREADS 2

static const char config_fmt[] =
    "{\"port\":6001,\"activity_timeout\":120,\"max_message_size_kb\":16,\"max_outbound_buffer_kb\":256,"
    "\"max_http_body_kb\":64,\"max_subscriptions_per_connection\":4,\"shutdown_grace_period\":0,"
    "\"metrics\":{\"enabled\":false},"
    "\"cleanup\":{\"async_enabled\":%s,\"worker_threads\":2,\"queue_buffer_size\":4,\"batch_size\":2,"
    "\"batch_timeout_ms\":1},"
    "\"channel_limits\":{\"max_name_length\":120,\"cache_ttl\":60},"
    "\"presence\":{\"max_members_per_channel\":3,\"max_member_size_in_kb\":1},"
    "\"app_manager\":{\"array\":{\"apps\":["
    "{\"id\":\"app-id\",\"key\":\"app-key\",\"secret\":\"app-secret\",\"enable_client_messages\":true,"
    "\"enable_subscription_count\":true},"
    "{\"id\":\"app-2\",\"key\":\"key-2\",\"secret\":\"secret-2\",\"enable_client_messages\":false},"
    "{\"id\":\"app-off\",\"key\":\"key-off\",\"secret\":\"secret-off\",\"enabled\":false}"
    "]}}}";

/* ---- the server, as hd_server_create() builds it minus lws ---- */

static hd_server *server_new(const hd_config *cfg, unsigned threads)
{
    hd_server *srv = hd_calloc(1, sizeof *srv);
    srv->cfg = cfg;
    srv->n_threads = threads;
    srv->node_num = 123456789012345ull;
    hd_host_init(srv);
    hd_server__apps_create(srv);
    srv->admission = hd_admission_create();
    srv->adapter = hd_adapter_local_create(srv);
    if (hd_cleanup_create(&srv->cleanup, cfg, hd_disconnect_leave, srv) != 0)
        CU_FAIL_FATAL("cleanup pool");
    srv->threads = hd_calloc(srv->n_threads, sizeof *srv->threads);
    for (unsigned i = 0; i < srv->n_threads; i++) {
        hd_server__io_init(srv, &srv->threads[i], i);
        atomic_store(&srv->threads[i].alive, true);
    }
    return srv;
}

hd_tw *hd_tw_new(const hd_tw_options *opt)
{
    hd_tw_options o = opt ? *opt : (hd_tw_options){0};
    char json[sizeof config_fmt + 16], err[512];
    int n = snprintf(json, sizeof json, config_fmt, o.async_cleanup ? "true" : "false");
    hd_tw *w = hd_calloc(1, sizeof *w);
    hd_log_set_level(HD_LOG_WARN); /* the pool's and the config's start-up notices are noise here */
    if (hd_config_load_json(&w->cfg, json, (size_t)n, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "test world config: %s\n", err);
        CU_FAIL("test world config does not load");
        hd_free(w);
        return NULL;
    }
    w->srv = server_new(&w->cfg, o.io_threads ? o.io_threads : DEFAULT_THREADS);
    for (unsigned i = 0; i < HD_TW_CONNS; i++)
        w->conns[i].w = w;
    return w;
}

void hd_tw_free(hd_tw *w)
{
    if (!w)
        return;
    for (unsigned i = 0; i < HD_TW_CONNS; i++)
        hd_tw_close(w, i);
    hd_tw_pump(w);
    hd_server_destroy(w->srv);
    hd_config_free(&w->cfg);
    hd_free(w);
    hd_log_set_level(HD_LOG_NOTICE);
}

/* ---- connections ---- */

hd_session *hd_tw_open(hd_tw *w, unsigned i, const char *uri)
{
    hd_tw_conn *c = &w->conns[i];
    hd_tw_close(w, i);
    memset(&c->s, 0, sizeof c->s); /* lws hands out zeroed per-session data */
    snprintf(c->uri, sizeof c->uri, "%s", uri ? uri : "/app/app-key?protocol=7");
    c->established_frame[0] = c->close_reason[0] = '\0';
    c->close_status = 0;
    c->want_writable = false;
    c->open = true;
    hd_session_established(&c->s, (struct lws *)c, &w->srv->threads[i % w->srv->n_threads]);
    return &c->s;
}

void hd_tw_close(hd_tw *w, unsigned i)
{
    hd_tw_conn *c = &w->conns[i];
    if (!c->open)
        return;
    hd_session_closed(&c->s);
    c->open = false;
}

hd_session *hd_tw_session(hd_tw *w, unsigned i)
{
    return &w->conns[i].s;
}

void hd_tw_send(hd_tw *w, unsigned i, const char *json)
{
    hd_session_on_message(&w->conns[i].s, json, strlen(json));
}

static bool inbox_empty(hd_io_thread *io)
{
    pthread_mutex_lock(&io->inbox_lock);
    bool empty = io->inbox_head == NULL;
    pthread_mutex_unlock(&io->inbox_lock);
    return empty;
}

void hd_tw_pump(hd_tw *w)
{
    for (int round = 0; round < 1000; round++) {
        bool busy = false;
        for (unsigned t = 0; t < w->srv->n_threads; t++) {
            if (inbox_empty(&w->srv->threads[t]))
                continue;
            busy = true;
            hd_io_inbox_drain(&w->srv->threads[t]);
        }
        if (!busy)
            return;
    }
    CU_FAIL("the inboxes never empty");
}

/* ---- frames on a session's ring ---- */

size_t hd_tw_queued(const hd_session *s)
{
    return s->oq_count;
}

const char *hd_tw_frame(const hd_session *s, size_t k)
{
    if (k >= s->oq_count)
        return NULL;
    return hd_msg_payload(s->outq[(s->oq_head + k) % s->oq_cap]);
}

bool hd_tw_has_frame(const hd_session *s, const char *text)
{
    for (size_t k = 0; k < s->oq_count; k++)
        if (!strcmp(hd_tw_frame(s, k), text))
            return true;
    return false;
}

const char *hd_tw_last(const hd_session *s)
{
    return s->oq_count ? hd_tw_frame(s, s->oq_count - 1) : "";
}

void hd_tw_drop(hd_session *s)
{
    hd_session_outq_clear(s);
}

void hd_tw_sign(const char *app_key, const char *app_secret, const char *str, char *out, size_t out_len)
{
    char hex[65];
    hd_hmac_sha256_hex(app_secret, strlen(app_secret), str, strlen(str), hex);
    snprintf(out, out_len, "%s:%s", app_key, hex);
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

static hd_tw_conn *conn_of(struct lws *wsi)
{
    hd_tw_conn *c = (hd_tw_conn *)wsi;
    if (!c || !c->open)
        CU_FAIL("lws called on a connection that is not open");
    return c;
}

/* The only frame written in these tests is the greeting (later ones stay
 * queued): kept for the test to read. */
int __wrap_lws_write(struct lws *wsi, unsigned char *buf, size_t len, enum lws_write_protocol wp)
{
    hd_tw_conn *c = conn_of(wsi);
    if (wp == LWS_WRITE_TEXT && !c->established_frame[0])
        snprintf(c->established_frame, sizeof c->established_frame, "%.*s", (int)len, (const char *)buf);
    return (int)len;
}

int __wrap_lws_callback_on_writable(struct lws *wsi)
{
    conn_of(wsi)->want_writable = true;
    return 1;
}

int __wrap_lws_send_pipe_choked(struct lws *wsi)
{
    conn_of(wsi);
    return 0;
}

int __wrap_lws_partial_buffered(struct lws *wsi)
{
    conn_of(wsi);
    return 0;
}

void __wrap_lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf, size_t len)
{
    hd_tw_conn *c = conn_of(wsi);
    c->close_status = (unsigned)status;
    snprintf(c->close_reason, sizeof c->close_reason, "%.*s", (int)len, (const char *)buf);
}

/* Messages reach the handlers through hd_session_on_message, not through
 * lws' fragment callbacks: one complete text frame. */
int __wrap_lws_is_first_fragment(struct lws *wsi)
{
    conn_of(wsi);
    return 1;
}

int __wrap_lws_is_final_fragment(struct lws *wsi)
{
    conn_of(wsi);
    return 1;
}

int __wrap_lws_frame_is_binary(struct lws *wsi)
{
    conn_of(wsi);
    return 0;
}

size_t __wrap_lws_remaining_packet_payload(struct lws *wsi)
{
    conn_of(wsi);
    return 0;
}

void __wrap_lws_set_timeout(struct lws *wsi, enum pending_timeout reason, int secs)
{
    conn_of(wsi);
}

/* lws 4.1: "" and 0 when absent, -1 when it does not fit with its NUL. */
int __wrap_lws_hdr_copy(struct lws *wsi, char *dest, int len, enum lws_token_indexes h)
{
    hd_tw_conn *c = conn_of(wsi);
    size_t n = h == WSI_TOKEN_GET_URI ? strcspn(c->uri, "?") : 0;
    if (len > 0)
        *dest = '\0';
    if (!n)
        return 0;
    if (n >= (size_t)len)
        return -1;
    memcpy(dest, c->uri, n);
    dest[n] = '\0';
    return (int)n;
}

/* lws 4.1: the first query argument starting with name (which includes
 * the '='), copied into buf; the value follows name in buf. */
const char *__wrap_lws_get_urlarg_by_name(struct lws *wsi, const char *name, char *buf, int len)
{
    hd_tw_conn *c = conn_of(wsi);
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

lws_sockfd_type __wrap_lws_get_socket_fd(struct lws *wsi)
{
    conn_of(wsi);
    return -1;
}

/* The world's io threads have no lws context (io->ctx is NULL), so
 * nothing may try to wake one. */
void __wrap_lws_cancel_service(struct lws_context *ctx)
{
    CU_FAIL("lws_cancel_service on a world without lws contexts");
}
