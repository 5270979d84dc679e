/* server.c - the server object: apps, io threads with one lws_context
 * each (all listening on one port with SO_REUSEPORT), the lws callback
 * that dispatches every reason to one small handler, start and graceful
 * shutdown.
 *
 * THREADING
 * ---------
 * create/start/shutdown/destroy: main thread. The callback runs on the io
 * thread that owns the context. The only cross-thread lws call is
 * lws_cancel_service() (inbox pushes and shutdown).
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapter/adapter_internal.h"
#include "cleanup/cleanup.h"
#include "common/net.h"
#include "metrics/metrics.h"
#include "webhooks/webhooks.h"

#define SWEEP_INTERVAL_S 30.0

void hd_disconnect_leave(void *ctx, void *app, hd_channel *ch, const hd_cleanup_leave *leaves, size_t n);

static hd_io_thread *thread_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* Shutdown, on each io thread: stop accepting first, so that a client's
 * immediate reconnect is refused here (and goes to another node, or
 * retries) instead of being welcomed and closed again a moment later;
 * then pusher:error + close 4200 (reconnect at once) for every session. */
static void stop_serving(hd_io_thread *io)
{
    hd_listener_stop(io);
    for (hd_session *s = io->sessions; s; s = s->next)
        hd_session_fail(s, HD_CLOSE_SHUTTING_DOWN, "Server shutting down");
}

static void on_wake(hd_io_thread *io)
{
    hd_io_inbox_drain(io);
    if (atomic_load(&io->srv->stopping))
        stop_serving(io);
    if (atomic_load(&io->srv->exiting))
        ev_break(io->loop, EVBREAK_ALL);
}

/* RFC 6455 version 13 only: lws would upgrade any version it is given.
 * Anything else gets 426 with the version we speak (RFC 6455 §4.4). */
static int upgrade_filter(struct lws *wsi)
{
    char v[8];
    if (lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_VERSION) > 0 && !strcmp(v, "13"))
        return 0;
    static const char body[] = "{\"error\":\"Unsupported WebSocket version: use 13\"}";
    unsigned char buf[LWS_PRE + 256], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (!lws_add_http_header_status(wsi, 426, &p, end) &&
        !lws_add_http_header_by_name(wsi, (const unsigned char *)"sec-websocket-version:", (const unsigned char *)"13",
                                     2, &p, end) &&
        !lws_add_http_header_by_name(wsi, (const unsigned char *)"content-type:",
                                     (const unsigned char *)"application/json", 16, &p, end) &&
        !lws_add_http_header_content_length(wsi, sizeof body - 1, &p, end) &&
        !lws_finalize_http_header(wsi, &p, end)) {
        memcpy(p, body, sizeof body - 1);
        p += sizeof body - 1;
        lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL);
    }
    return -1;
}

/* lws only ever sees WebSocket handshakes (http_front.c answers every
 * other request); one it did not upgrade is refused here. */
static int refuse_plain_http(struct lws *wsi)
{
    static const char body[] = "{\"error\":\"Invalid WebSocket handshake\"}";
    unsigned char buf[LWS_PRE + 256], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (!lws_add_http_common_headers(wsi, HTTP_STATUS_BAD_REQUEST, "application/json", sizeof body - 1, &p, end) &&
        !lws_finalize_write_http_header(wsi, start, &p, end))
        lws_write(wsi, (unsigned char *)(uintptr_t)body, sizeof body - 1, LWS_WRITE_HTTP_FINAL);
    return -1;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    hd_session *s = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return upgrade_filter(wsi);
    case LWS_CALLBACK_ESTABLISHED:
        hd_session_established(s, wsi, thread_of(wsi));
        if (atomic_load(&s->io->srv->stopping))
            hd_session_fail(s, HD_CLOSE_SHUTTING_DOWN, "Server shutting down");
        return 0;
    case LWS_CALLBACK_RECEIVE:
        hd_session_receive(s, in, len);
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        hd_session_touch(s);
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (s && s->kind == HD_CONN_WS) /* 0: lws answers the close as usual */
            hd_session_wire_close(s, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return s->kind == HD_CONN_WS ? hd_session_writable(s) : 0;
    case LWS_CALLBACK_CLOSED:
        if (s && s->kind == HD_CONN_WS) {
            /* a protocol error lws caught itself (an unmasked frame, ...)
             * was closed with a code lws chose: herald never saw it */
            if (lws_get_close_length(wsi) >= 2)
                hd_session_wire_close(s, lws_get_close_payload(wsi), (size_t)lws_get_close_length(wsi));
            hd_session_closed(s);
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        on_wake(thread_of(wsi));
        return 0;
    case LWS_CALLBACK_HTTP:
        return refuse_plain_http(wsi);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    /* rx_buffer_size: lws allocates an rx buffer this size (+ 20) for every
     * WebSocket at its handshake and keeps it for the connection's life,
     * idle or not. 1024 made it 40 % of an idle connection's memory;
     * Pusher messages are mostly shorter than 256 bytes, and longer ones
     * arrive in 256-byte pieces that hd_session_receive() reassembles
     * (still one recv() per 4 KiB: scripts/lws-patches/0003).
     * tx_packet_size: with 0, lws caps every send() at rx_buffer_size + 20
     * bytes and keeps the rest for later POLLOUTs; with 1024 it was one 1 044-byte send per
     * loop turn: a gathered write (outq.c) or a 10 KB event then took ten
     * turns, and a subscriber of fast HTTP publishes fell behind until it
     * was closed with 4100. It costs no memory per socket; the kernel's
     * send buffer decides how much one send() takes. */
    {"pusher", callback, sizeof(hd_session), HD_RX_BUFFER_SIZE, 0, NULL, HD_TX_PACKET_SIZE},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    hd_io_thread *io = w->data;
    hd_server *srv = io->srv;
    size_t n = hd_server_n_apps(srv); /* removed apps too: their caches expire as well */
    for (size_t i = 0; i < n; i++)
        hd_registry_sweep(srv->apps[i].registry, hd_mono_ms());
}

static void idle_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    hd_idle_tick(w->data);
}

/* Before the loop waits again: write what this turn queued (outq.c). While
 * sessions are left over, an idle watcher keeps the loop from blocking, so
 * the next turn comes at once. */
static void flush_turn(struct ev_loop *loop, ev_prepare *w, int revents)
{
    hd_io_thread *io = w->data;
    if (hd_io_flush_dirty(io))
        ev_idle_start(loop, &io->flush_more);
    else
        ev_idle_stop(loop, &io->flush_more);
}

static void flush_more(struct ev_loop *loop, ev_idle *w, int revents)
{
    /* nothing: its being active is the point (flush_turn does the work) */
}

static int context_create(hd_server *srv, hd_io_thread *io)
{
    const hd_config *cfg = srv->cfg;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* listener.c opens a SO_REUSEPORT socket per thread */
    info.protocols = protocols;
    /* lws 4.1 on its own polls every socket on each turn of its loop, so
     * with 19 000 connections most of the io thread went to poll() scanning
     * idle sockets. Attached to a libev loop we create with the epoll
     * backend, each turn costs what is ready, not what is open. */
    io->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (!io->loop)
        return HD_EIO;
    void *foreign_loops[1] = {io->loop};
    info.foreign_loops = foreign_loops;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_LIBEV;
    info.user = io;
    /* No lws validity timers: herald tracks activity itself (idle.c). lws'
     * default policy arms one timer per connection in its sorted timer list,
     * an O(connections) insert each time a connection proves valid. */
    static const lws_retry_bo_t no_idle_policy = {.secs_since_valid_ping = 0, .secs_since_valid_hangup = 0};
    info.retry_and_idle_policy = &no_idle_policy;
    info.count_threads = 1;
    info.max_http_header_data = 4096;
    info.timeout_secs = 10;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    io->ctx = lws_create_context(&info);
    int fd = io->ctx ? hd_net_listen(cfg->host, cfg->port) : -1;
    if (fd < 0) {
        hd_log(HD_LOG_ERR, "server", "io thread %u: cannot listen on %s:%u: %s", io->index, cfg->host, cfg->port,
               strerror(errno));
        return HD_EIO;
    }
    hd_listener_start(io, fd);
    return 0;
}

void hd_app_slot_init(hd_server *srv, size_t i, const hd_app_config *cfg)
{
    hd_app *app = &srv->apps[i];
    atomic_init(&app->cfg, cfg);
    app->index = (unsigned)i;
    app->registry = hd_registry_create(srv->n_threads);
    atomic_init(&app->removed, false);
    atomic_init(&app->connections, 0);
    atomic_init(&app->http_tat_ns, 0);
}

/* The array has room for HD_APP_HEADROOM more apps: reloads add apps
 * without moving it under the threads reading it. */
void hd_server__apps_create(hd_server *srv)
{
    srv->max_apps = srv->cfg->n_apps + HD_APP_HEADROOM;
    srv->apps = hd_calloc(srv->max_apps, sizeof *srv->apps);
    for (size_t i = 0; i < srv->cfg->n_apps; i++)
        hd_app_slot_init(srv, i, &srv->cfg->apps[i]);
    atomic_init(&srv->n_apps, srv->cfg->n_apps);
}

void hd_server__io_init(hd_server *srv, hd_io_thread *io, unsigned index)
{
    io->srv = srv;
    io->index = index;
    io->listen_fd = -1;
    pthread_mutex_init(&io->inbox_lock, NULL);
    io->local = hd_calloc(srv->max_apps, sizeof *io->local); /* zeroed maps are empty maps */
    io->scratch = hd_malloc(LWS_PRE + HD_SCRATCH_SIZE);
}

static unsigned io_thread_count(const hd_config *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = cfg->io_threads ? cfg->io_threads : (unsigned)(cpus > 0 ? cpus : 1);
    return n > HD_MAX_IO_THREADS ? HD_MAX_IO_THREADS : n;
}

/* The webhook pool names apps by slot (hd_app.index). */
static hd_app *app_at(hd_server *srv, unsigned index)
{
    return index < hd_server_n_apps(srv) ? &srv->apps[index] : NULL;
}

static bool probe_channel_occupied(void *ctx, unsigned app, const char *channel)
{
    uint32_t subs = 0;
    hd_app *a = app_at(ctx, app);
    if (a)
        hd_server_channel_counts(ctx, a, channel, &subs, NULL);
    return subs > 0;
}

static bool probe_member_present(void *ctx, unsigned app, const char *channel, const char *user_id)
{
    hd_app *a = app_at(ctx, app);
    return a && hd_server_member_present(ctx, a, channel, user_id);
}

/* 15 random decimal digits: the socket-id prefix, unique across a
 * cluster's nodes and their restarts with odds of a clash about 1e-14 per
 * pair (the Redis adapter also claims it). */
static uint64_t draw_node_num(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint64_t)ts.tv_nsec * 6364136223846793005ull ^ (uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_sec;
    }
    return 100000000000000ull + r % 900000000000000ull;
}

static hd_adapter *adapter_create(hd_server *srv)
{
    const char *driver = srv->cfg->adapter.driver ? srv->cfg->adapter.driver : "local";
    if (strcmp(driver, "local") == 0)
        return hd_adapter_local_create(srv);
    if (strcmp(driver, "redis") == 0)
        return hd_adapter_redis_create(srv, &srv->host);
    hd_log(HD_LOG_ERR, "server", "adapter.driver \"%s\" is unknown (use \"local\" or \"redis\")", driver);
    return NULL;
}

int hd_server_create(hd_server **out, const hd_config *cfg)
{
    /* lws' own logging is off: lws 4.1 formats every line into one static
     * buffer, a data race once several io threads log (ThreadSanitizer
     * caught it), and it logs the normal readbuf adoption of listener.c
     * at error level, once per connection. herald logs the failures that
     * matter itself (listen, accept, closes with their reasons). */
    lws_set_log_level(0, NULL);
    *out = NULL;
    /* Our listeners set SO_REUSEPORT, so binding cannot tell that another
     * process already serves a port: check both before opening any (one
     * opened for a moment would take some of the other process' clients). */
    if (!cfg->reuse_port && hd_net_claim_port(cfg->host, cfg->port) != 0) {
        hd_net_log_listen_error("server", cfg->host, cfg->port, errno, "(reuse_port: true shares it on purpose)");
        return HD_EIO;
    }
    if (cfg->metrics.enabled && hd_net_claim_port(cfg->metrics.host, cfg->metrics.port) != 0) {
        hd_net_log_listen_error("metrics", cfg->metrics.host, cfg->metrics.port, errno, NULL);
        return HD_EIO;
    }
    hd_server *srv = hd_calloc(1, sizeof *srv);
    srv->cfg = cfg;
    srv->n_threads = io_thread_count(cfg);
    srv->node_num = draw_node_num();
    hd_host_init(srv);
    hd_server__apps_create(srv);
    srv->admission = hd_admission_create();
    if (hd_tls_create(&srv->tls, cfg) != 0) {
        hd_server_destroy(srv);
        return HD_EINVAL;
    }
    if (!(srv->adapter = adapter_create(srv))) {
        hd_server_destroy(srv);
        return HD_EINVAL;
    }
    hd_webhooks_probe probe = {srv, probe_channel_occupied, probe_member_present};
    srv->webhooks = hd_webhooks_create(cfg, &probe, srv->max_apps);
    if (hd_cleanup_create(&srv->cleanup, cfg, hd_disconnect_leave, srv) != 0) {
        hd_server_destroy(srv);
        return HD_ETHREAD;
    }
    srv->threads = hd_calloc(srv->n_threads, sizeof *srv->threads);
    for (unsigned i = 0; i < srv->n_threads; i++) {
        hd_io_thread *io = &srv->threads[i];
        hd_server__io_init(srv, io, i);
        if (context_create(srv, io) != 0) {
            hd_server_destroy(srv);
            return HD_EIO;
        }
    }
    if (cfg->metrics.enabled && hd_metrics_create(&srv->metrics, cfg->metrics.host, cfg->metrics.port,
                                                  hd_server_metrics_render, hd_server_metrics_ready, srv) != 0) {
        hd_server_destroy(srv);
        return HD_EIO;
    }
    hd_log(HD_LOG_NOTICE, "server", "herald %s listening on %s:%u with %u io thread(s), %zu app(s)", HERALD_VERSION,
           cfg->host, cfg->port, srv->n_threads, hd_server_n_apps(srv));
    *out = srv;
    return 0;
}

static void *io_main(void *arg)
{
    hd_io_thread *io = arg;
    atomic_store(&io->alive, true);
    ev_timer_init(&io->sweep_timer, sweep, SWEEP_INTERVAL_S, SWEEP_INTERVAL_S);
    io->sweep_timer.data = io;
    if (io->index == 0)
        ev_timer_start(io->loop, &io->sweep_timer);
    ev_timer_init(&io->idle_timer, idle_tick, HD_IDLE_TICK_MS / 1000.0, HD_IDLE_TICK_MS / 1000.0);
    io->idle_timer.data = io;
    ev_timer_start(io->loop, &io->idle_timer);
    ev_prepare_init(&io->flush_turn, flush_turn);
    io->flush_turn.data = io;
    ev_prepare_start(io->loop, &io->flush_turn);
    ev_idle_init(&io->flush_more, flush_more);
    if (!atomic_load(&io->srv->exiting))
        ev_run(io->loop, 0); /* until on_wake() sees exiting */
    ev_timer_stop(io->loop, &io->idle_timer);
    ev_timer_stop(io->loop, &io->sweep_timer);
    ev_prepare_stop(io->loop, &io->flush_turn);
    ev_idle_stop(io->loop, &io->flush_more);
    atomic_store(&io->alive, false);
    return NULL;
}

int hd_server_start(hd_server *srv)
{
    for (unsigned i = 0; i < srv->n_threads; i++)
        if (pthread_create(&srv->threads[i].thread, NULL, io_main, &srv->threads[i]) != 0)
            return HD_ETHREAD;
    if (srv->adapter->ops->start && srv->adapter->ops->start(srv->adapter) != 0)
        return HD_EIO;
    return 0;
}

static unsigned total_connections(hd_server *srv)
{
    unsigned n = 0;
    size_t apps = hd_server_n_apps(srv);
    for (size_t i = 0; i < apps; i++)
        n += atomic_load(&srv->apps[i].connections);
    return n;
}

/* After every io thread has stopped: destroying a context closes what is
 * left (CLOSED runs the cleanup, which may push to other threads' inboxes,
 * and cleanup workers may still be pushing), so contexts go one by one from
 * this thread, each unhooked from its inbox (under the inbox lock) before
 * it is destroyed. */
static void contexts_destroy(hd_server *srv)
{
    for (unsigned i = 0; i < srv->n_threads; i++) {
        hd_io_thread *io = &srv->threads[i];
        pthread_mutex_lock(&io->inbox_lock);
        struct lws_context *ctx = io->ctx;
        io->ctx = NULL;
        pthread_mutex_unlock(&io->inbox_lock);
        if (io->loop) {
            hd_listener_stop(io);
            hd_front_close_all(io);
        }
        if (ctx)
            lws_context_destroy(ctx);
        if (io->loop)
            ev_loop_destroy(io->loop);
        io->loop = NULL;
    }
    for (unsigned i = 0; i < srv->n_threads; i++)
        hd_io_inbox_drain(&srv->threads[i]);
}

void hd_server_shutdown(hd_server *srv)
{
    hd_log(HD_LOG_NOTICE, "server", "shutting down: closing %u connection(s) with %d", total_connections(srv),
           HD_CLOSE_SHUTTING_DOWN);
    /* Stop accepting on every listener at once, from here: each io thread
     * closes its own only when it wakes, and until the last one did, the
     * kernel would still hand new clients to an open one (SO_REUSEPORT).
     * shutdown() leaves the descriptor to its thread; accept() on it then
     * fails until the thread closes it. */
    for (unsigned i = 0; i < srv->n_threads; i++)
        if (srv->threads[i].listen_fd >= 0)
            shutdown(srv->threads[i].listen_fd, SHUT_RD);
    /* This node's members leave the cluster before its clients are told
     * to reconnect: observers elsewhere see them go at once, and a client
     * that rejoins through another node within the webhook hold cancels
     * its own vacate. */
    if (srv->adapter->ops->leave_cluster)
        srv->adapter->ops->leave_cluster(srv->adapter, 2000);
    atomic_store(&srv->stopping, true);
    for (unsigned i = 0; i < srv->n_threads; i++)
        lws_cancel_service(srv->threads[i].ctx);
    uint64_t deadline = hd_mono_ms() + (uint64_t)srv->cfg->shutdown_grace_period * 1000u;
    while (total_connections(srv) && hd_mono_ms() < deadline)
        usleep(10 * 1000);
    atomic_store(&srv->exiting, true);
    for (unsigned i = 0; i < srv->n_threads; i++)
        lws_cancel_service(srv->threads[i].ctx);
    for (unsigned i = 0; i < srv->n_threads; i++)
        pthread_join(srv->threads[i].thread, NULL);
    contexts_destroy(srv);
}

void hd_server_destroy(hd_server *srv)
{
    if (!srv)
        return;
    hd_metrics_destroy(srv->metrics);
    if (srv->threads)
        contexts_destroy(srv); /* never started, or already done */
    hd_cleanup_destroy(srv->cleanup, srv->cfg->shutdown_grace_period * 1000u);
    /* the adapter's threads push to io inboxes: stopped before those go */
    if (srv->adapter)
        srv->adapter->ops->destroy(srv->adapter);
    srv->adapter = NULL;
    for (unsigned i = 0; srv->threads && i < srv->n_threads; i++)
        hd_io_inbox_drain(&srv->threads[i]); /* what the last cleanup jobs published */
    for (unsigned i = 0; srv->threads && i < srv->n_threads; i++) {
        hd_io_thread *io = &srv->threads[i];
        for (size_t a = 0; io->local && a < srv->max_apps; a++)
            hd_map_deinit(&io->local[a]);
        hd_free(io->local);
        hd_waits_clear(io);
        hd_free(io->scratch);
        hd_free(io->dirty);
        pthread_mutex_destroy(&io->inbox_lock);
    }
    hd_free(srv->threads);
    hd_admission_destroy(srv->admission);
    hd_tls_destroy(srv->tls);
    hd_webhooks_destroy(srv->webhooks);
    for (size_t i = 0; i < srv->n_apps; i++)
        hd_registry_destroy(srv->apps[i].registry);
    hd_free(srv->apps);
    for (size_t i = 0; i < srv->n_reloads; i++) { /* after everything that may still point into them */
        hd_config_free(srv->reloads[i]);
        hd_free(srv->reloads[i]);
    }
    hd_free(srv->reloads);
    hd_free(srv);
}

bool hd_server_ready(hd_server *srv, hd_buf *why)
{
    if (atomic_load(&srv->stopping)) {
        if (why)
            hd_buf_puts(why, "shutting down");
        return false;
    }
    for (unsigned i = 0; i < srv->n_threads; i++) {
        if (!atomic_load(&srv->threads[i].alive)) {
            if (why)
                hd_buf_printf(why, "io thread %u is not running", i);
            return false;
        }
    }
    if (!srv->adapter->ops->ready(srv->adapter, why))
        return false;
    return hd_cleanup_ready(srv->cleanup, why);
}

/* A removed app is skipped: it refuses new connections and API requests.
 * A reload that swaps two apps' keys may, for an instant, let a lookup
 * see both old or both new; it answers with the first match. */
static hd_app *app_lookup(hd_server *srv, const char *value, size_t field)
{
    size_t n = hd_server_n_apps(srv);
    for (size_t i = 0; i < n; i++) {
        hd_app *app = &srv->apps[i];
        if (atomic_load_explicit(&app->removed, memory_order_acquire))
            continue;
        const char *mine = *(char *const *)((const char *)hd_app_cfg(app) + field);
        if (!strcmp(mine, value))
            return app;
    }
    return NULL;
}

hd_app *hd_server_app_by_id(hd_server *srv, const char *id)
{
    return app_lookup(srv, id, offsetof(hd_app_config, id));
}

hd_app *hd_server_app_by_key(hd_server *srv, const char *key)
{
    return app_lookup(srv, key, offsetof(hd_app_config, key));
}
