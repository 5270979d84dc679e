/* http_front.c - herald's own HTTP/1.1 front end. Every accepted socket
 * starts here: a WebSocket handshake is handed to lws once its head is
 * complete, and every other request (the HTTP API, health) is answered
 * here without lws.
 *
 * DESIGN
 * ------
 * Why not lws' HTTP server: in lws 4.1 pipelined POSTs sent in one write
 * could wedge an io thread for good inside its HTTP/1 read path, a request
 * body that shares a read with its head is mangled, every body was
 * buffered before anyone had checked the request's signature, and a body
 * over the limit was answered by a reset. Owning the few HTTP/1.1 rules
 * the API needs (http/http_parse.c) makes each phase a client controls
 * explicit and bounded:
 *
 * - head: read into a per-connection buffer (consumed from the socket, so
 *   a stalled client costs no CPU), parsed on every arrival, answered
 *   400/411/414/431/501/505 as soon as it is known to be bad; a deadline
 *   from its first byte (limits.http_head_timeout_ms, 408), not reset by
 *   trickled bytes.
 * - admission before the body: route, app and signature are checked from
 *   the head (the signature covers body_md5); a refused request is
 *   answered at once and its body is never stored. A body over
 *   max_http_body_kb is refused with 413 the same way.
 * - body: read up to its Content-Length with a deadline
 *   (limits.http_body_timeout_ms). "Expect: 100-continue" is honoured.
 * - memory: what every connection holds (its struct and buffers) is
 *   charged to one node-wide budget (limits.http_buffers_mb); a request
 *   that would exceed it is answered 503 with Retry-After.
 * - answers: keep-alive and pipelining, one request at a time: the next
 *   head is parsed only when the previous answer is fully written, so a
 *   client that does not read holds one answer, not a queue of them.
 * - refusals that leave a body unread are sent with "Connection: close",
 *   then the write side is shut and what the client still sends is read
 *   and discarded for a short while (DRAIN_MS): closing with unread data
 *   would reset the connection and the client would never see the status.
 * - idle keep-alive connections hold no buffer and close after
 *   limits.http_keepalive_timeout_ms.
 * - every error answer is logged as a refusal ("http <status>: <request>:
 *   <why>" with the app and the client's address), rate-limited per status
 *   (common/log.h), so a flood of bad requests costs a few lines.
 * Deadlines are checked by the io thread's periodic tick (idle.c), which
 * walks this thread's front connections: there are few outside an attack,
 * and a walk of ten thousand every 250 ms is still negligible.
 *
 * With ssl.enabled every connection is TLS: the same steps run over an SSL
 * object of ours (tls.c), the TLS handshake counting as part of the head
 * and its deadline, and a WebSocket handshake is handed to lws with it.
 *
 * THREADING: each front connection belongs to one io thread; only the
 * node-wide byte count (srv->front_bytes) is shared, as an atomic.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapter/adapter_internal.h"
#include "http/http_api.h"

#define READ_CHUNK 16384
#define DRAIN_MS 2000
#define MAX_HEAD 16384
#define MAX_TARGET 8192
#define MAX_HEADERS 100

/* FS_WAIT: a request's answer is the cluster's; the adapter has not replied yet. */
enum front_state { FS_HEAD, FS_BODY, FS_DRAIN, FS_WAIT };

struct hd_front_conn {
    ev_io watcher; /* EV_READ, or EV_WRITE while an answer waits for the socket */
    hd_io_thread *io;
    hd_front_conn *prev, *next; /* io->front */
    int fd;
    SSL *ssl;          /* ssl.enabled: the connection's TLS session */
    bool tls_want_write; /* the last SSL call needs the socket writable */
    int events;        /* what the watcher waits for */
    uint8_t state;
    bool close_after;  /* close once the current answer is written */
    bool head_started; /* FS_HEAD: a head is arriving (its deadline runs) */
    uint32_t peer;     /* hash of the client's address (admission.c) */
    uint64_t deadline_ms;
    hd_buf in;         /* received and not yet consumed */
    hd_buf out;        /* answer bytes not yet written, from out_off */
    size_t out_off;
    size_t charged;    /* bytes counted in srv->front_bytes for this connection */
    hd_http_head head; /* FS_BODY: the request whose body is arriving */
    char *path;        /* FS_BODY: its path, NUL-terminated */
    char *cors_allow;  /* the request's allowed Origin to echo (cors.origins), or NULL */
    hd_params params;  /* FS_BODY: its decoded query */
    uint64_t head_us;  /* when the current request's head was complete; 0 = counted, or no request */
    hd_http_response *waiting; /* FS_WAIT: the parked answer */
    size_t waiting_total;      /* FS_WAIT: bytes of input the request takes (head + body) */
    uint64_t wait_token;       /* FS_WAIT: its token (host.c) */
};

static const hd_http_head_limits head_limits = {MAX_HEAD, MAX_TARGET, MAX_HEADERS};

/* ---- memory budget ---- */

static size_t held_bytes(const hd_front_conn *c)
{
    return sizeof *c + c->in.cap + c->out.cap;
}

static void recharge(hd_front_conn *c)
{
    size_t now = held_bytes(c);
    hd_server *srv = c->io->srv;
    if (now > c->charged)
        atomic_fetch_add(&srv->front_bytes, now - c->charged);
    else
        atomic_fetch_sub(&srv->front_bytes, c->charged - now);
    c->charged = now;
}

/* May this connection grow its input buffer by extra bytes? */
static bool budget_allows(hd_front_conn *c, size_t extra)
{
    hd_server *srv = c->io->srv;
    size_t budget = (size_t)srv->cfg->limits.http_buffers_mb << 20;
    return atomic_load(&srv->front_bytes) + extra <= budget;
}

/* ---- lifetime ---- */

static void conn_unlink(hd_front_conn *c)
{
    hd_io_thread *io = c->io;
    if (c->prev)
        c->prev->next = c->next;
    else
        io->front = c->next;
    if (c->next)
        c->next->prev = c->prev;
    io->n_front--;
}

static void request_reset(hd_front_conn *c)
{
    c->head_us = 0;
    hd_free(c->path);
    c->path = NULL;
    hd_free(c->cors_allow);
    c->cors_allow = NULL;
    hd_params_free(&c->params);
    hd_params_init(&c->params);
}

/* Forget c; close_fd false when lws took the socket over. */
static void waiting_free(hd_front_conn *c)
{
    hd_wait_cancel(c->io, c->wait_token);
    c->wait_token = 0;
    if (c->waiting) {
        hd_http_response_deinit(c->waiting);
        hd_free(c->waiting);
        c->waiting = NULL;
    }
}

static void conn_free(hd_front_conn *c, bool close_fd)
{
    ev_io_stop(c->io->loop, &c->watcher);
    waiting_free(c);
    conn_unlink(c);
    request_reset(c);
    hd_buf_deinit(&c->in);
    hd_buf_deinit(&c->out);
    atomic_fetch_sub(&c->io->srv->front_bytes, c->charged);
    if (close_fd) {
        SSL_free(c->ssl);
        close(c->fd);
    }
    hd_free(c);
}

static void watch(hd_front_conn *c, int events)
{
    if (c->events == events)
        return;
    c->events = events;
    ev_io_stop(c->io->loop, &c->watcher);
    ev_io_set(&c->watcher, c->fd, events);
    if (events)
        ev_io_start(c->io->loop, &c->watcher);
}

/* ---- socket I/O, plain or TLS: > 0 bytes, 0 end of stream, -1 with errno ---- */

static ssize_t tls_result(hd_front_conn *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->tls_want_write = e == SSL_ERROR_WANT_WRITE;
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = ECONNRESET; /* a failed handshake, a bad record: the connection is done */
    return -1;
}

static ssize_t conn_recv(hd_front_conn *c, void *buf, size_t n)
{
    if (!c->ssl)
        return recv(c->fd, buf, n, 0);
    c->tls_want_write = false;
    int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    return r > 0 ? r : tls_result(c, r);
}

static ssize_t conn_send(hd_front_conn *c, const void *buf, size_t n)
{
    if (!c->ssl)
        return send(c->fd, buf, n, MSG_NOSIGNAL);
    c->tls_want_write = false;
    int r = SSL_write(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    if (r > 0)
        return r;
    ssize_t rc = tls_result(c, r);
    return rc == 0 ? (errno = EPIPE, -1) : rc;
}

/* Waiting for input: a TLS handshake may need the socket writable too. */
static void watch_input(hd_front_conn *c)
{
    watch(c, c->tls_want_write ? EV_READ | EV_WRITE : EV_READ);
}

/* ---- answers ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

static void start_drain(hd_front_conn *c)
{
    if (c->ssl)
        SSL_shutdown(c->ssl); /* close_notify first, so the client sees a clean end */
    shutdown(c->fd, SHUT_WR);
    c->state = FS_DRAIN;
    c->deadline_ms = hd_mono_ms() + DRAIN_MS;
    hd_buf_deinit(&c->in);
    recharge(c);
    watch(c, EV_READ);
}

/* Write what is pending; false when c was freed. */
static bool flush_out(hd_front_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = conn_send(c, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* a client that does not read its answer gets as long as a body */
            c->deadline_ms = hd_mono_ms() + c->io->srv->cfg->limits.http_body_timeout_ms;
            watch(c, EV_WRITE);
            return true;
        }
        conn_free(c, true);
        return false;
    }
    hd_buf_deinit(&c->out);
    c->out_off = 0;
    recharge(c);
    if (c->close_after) {
        start_drain(c);
        return true;
    }
    watch_input(c);
    return true;
}

/* Count a request that got its answer (out_bytes of it): by route and
 * status, its time from the end of its head, and its bytes (head, and the
 * body as far as it was read). Once per request; heads that did not parse
 * and WebSocket handshakes carry no stamp and are not counted here. */
static void count_request(hd_front_conn *c, int status, size_t out_bytes)
{
    if (!c->head_us)
        return;
    hd_io_thread *io = c->io;
    uint64_t us = hd_mono_us() - c->head_us;
    c->head_us = 0;
    hd_http_route r = hd_series_http_route(c->in.data + c->head.target_off, c->head.target_len);
    HD_STAT_ADD(io, http_by_route[r][hd_series_status_slot(status)], 1);
    HD_STAT_ADD(io, http_duration[r][hd_series_http_bucket(us)], 1);
    HD_STAT_ADD(io, http_duration_sum_us[r], us);
    size_t body = 0;
    if ((c->state == FS_BODY || c->state == FS_WAIT) && c->in.len > c->head.head_len) {
        body = c->in.len - c->head.head_len;
        if (body > (size_t)c->head.content_length) /* a pipelined request may follow */
            body = (size_t)c->head.content_length;
    }
    HD_STAT_ADD(io, http_bytes_received, c->head.head_len + body);
    HD_STAT_ADD(io, http_bytes_sent, out_bytes);
}

/* Queue one answer. close: the connection ends after it (Connection: close). */
static void answer(hd_front_conn *c, int status, const char *body, size_t len, unsigned retry_after_s, bool close)
{
    hd_buf *o = &c->out;
    size_t before = o->len;
    hd_buf_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n", status,
                  reason_phrase(status), len);
    if (retry_after_s)
        hd_buf_printf(o, "Retry-After: %u\r\n", retry_after_s);
    if (c->cors_allow)
        hd_buf_printf(o, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", c->cors_allow);
    hd_buf_puts(o, close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
    hd_buf_append(o, body, len);
    c->close_after |= close;
    recharge(c);
    count_request(c, status, o->len - before);
}

/* ---- the log of refused requests (rate-limited per status: common/log.h) ---- */

/* The app id of an /apps/{id}/... path into buf, or NULL. */
static const char *path_app(const char *path, char *buf, size_t len)
{
    if (!path || strncmp(path, "/apps/", 6) != 0)
        return NULL;
    const char *id = path + 6, *end = strchr(id, '/');
    size_t n = end ? (size_t)(end - id) : strlen(id);
    if (!n || n >= len)
        return NULL;
    memcpy(buf, id, n);
    buf[n] = '\0';
    return buf;
}

/* "http <status>: <METHOD> <path>: <why>" with the app and the client's
 * address; the method and path only once the head was parsed (c->path). */
static void log_refusal(hd_front_conn *c, int status, const char *why)
{
    if (HD_LOG_INFO > hd_log_level_current)
        return;
    char key[16], app[128];
    snprintf(key, sizeof key, "http %d", status);
    hd_log_ctx ctx = {.app = path_app(c->path, app, sizeof app), .peer_fd = &c->fd};
    if (c->path)
        hd_log_refusal_emit("http", key, &ctx, "%s %s: %s", c->head.method, c->path, why);
    else
        hd_log_refusal_emit("http", key, &ctx, "%s", why);
}

/* The same for an answer the API made: its reason is the body's "error"
 * (the whole body if it has none). */
static void log_refused_answer(hd_front_conn *c, int status, const hd_buf *body)
{
    if (HD_LOG_INFO > hd_log_level_current)
        return;
    cJSON *j = body->len ? cJSON_ParseWithLength(body->data, body->len) : NULL;
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    log_refusal(c, status, cJSON_IsString(e) ? e->valuestring : body->data ? body->data : "");
    cJSON_Delete(j);
}

static void answer_error(hd_front_conn *c, int status, const char *message, unsigned retry_after_s)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_buf_puts(&b, "{\"error\":");
    hd_buf_json_string(&b, message, strlen(message));
    hd_buf_puts(&b, "}");
    answer(c, status, b.data, b.len, retry_after_s, true);
    hd_buf_deinit(&b);
    HD_STAT_ADD(c->io, http_refused, 1);
    log_refusal(c, status, message);
}

static const char *parse_error_message(int status)
{
    switch (status) {
    case 411: return "Content-Length required: chunked request bodies are not supported";
    case 414: return "Request target too long";
    case 431: return "Request header fields too large";
    case 501: return "Transfer-Encoding not supported";
    case 505: return "HTTP version not supported: use HTTP/1.1";
    default: return "Malformed HTTP request";
    }
}

/* ---- requests ---- */

/* Consume the current request (head + body) from the input buffer. */
static void consume(hd_front_conn *c, size_t n)
{
    size_t rest = c->in.len - n;
    if (rest)
        memmove(c->in.data, c->in.data + n, rest);
    c->in.len = rest;
    c->in.data[rest] = '\0';
    if (!rest)
        hd_buf_deinit(&c->in); /* idle keep-alive connections hold no buffer */
    recharge(c);
    c->state = FS_HEAD;
    c->head_started = false;
    c->deadline_ms = 0;
    request_reset(c);
}

static void park(hd_front_conn *c, hd_http_response *res, size_t total);
static void respond(hd_front_conn *c, hd_http_response *res, size_t total);
static bool process(hd_front_conn *c);
static bool read_input(hd_front_conn *c);

static void dispatch(hd_front_conn *c, bool admitted)
{
    size_t body_len = c->head.content_length > 0 ? (size_t)c->head.content_length : 0;
    size_t total = c->head.head_len + body_len;
    char *body = c->in.data + c->head.head_len;
    char saved = body[body_len]; /* a pipelined request may follow: NUL-terminate the body in place */
    body[body_len] = '\0';
    hd_http_request req = {.method = c->head.method, .path = c->path, .params = &c->params, .body = body,
                           .body_len = body_len, .head_admitted = admitted};
    hd_http_response res = {0};
    hd_buf_init(&res.body);
    hd_http_api_handle(c->io->srv, &req, &res);
    body[body_len] = saved;
    if (res.pending) {
        park(c, &res, total);
        return;
    }
    respond(c, &res, total);
}

/* The handler's answer is the cluster's: wait for the adapter's reply
 * (hd_front_on_reply), reading nothing more meanwhile. The adapter
 * answers every read within adapter.redis.op_timeout_ms; the deadline
 * here is a backstop. */
static void park(hd_front_conn *c, hd_http_response *res, size_t total)
{
    hd_server *srv = c->io->srv;
    c->waiting = hd_malloc(sizeof *c->waiting);
    *c->waiting = *res;
    c->waiting_total = total;
    c->state = FS_WAIT;
    c->wait_token = hd_wait_add(c->io, HD_WAIT_HTTP, c, NULL);
    c->deadline_ms = hd_mono_ms() + srv->cfg->adapter.redis.op_timeout_ms + 2000u;
    watch(c, 0);
    hd_adapter *a = srv->adapter;
    a->ops->read(a, res->read_app, res->read_what, res->read_arg, (hd_ad_caller){c->io->index, c->wait_token});
}

void hd_front_on_reply(hd_front_conn *c, const hd_ad_reply *r)
{
    c->wait_token = 0;
    hd_http_response *res = c->waiting;
    c->waiting = NULL;
    hd_http_api_finish(res, r);
    respond(c, res, c->waiting_total);
    hd_free(res);
    watch(c, EV_READ);
    if (!process(c)) /* requests pipelined behind this one */
        return;
    if (c->state != FS_DRAIN && !c->out.len)
        read_input(c);
}

/* Log, count and queue the answer of the request taking total input bytes. */
static void respond(hd_front_conn *c, hd_http_response *res_p, size_t total)
{
    hd_http_response res = *res_p;
    size_t body_len = c->head.content_length > 0 ? (size_t)c->head.content_length : 0;
    HD_STAT_ADD(c->io, http_requests, 1);
    if (res.status >= 400)
        HD_STAT_ADD(c->io, http_refused, 1);
    if (res.status >= 400) {
        log_refused_answer(c, res.status, &res.body);
    } else if (HD_LOG_DEBUG <= hd_log_level_current) {
        char app[128];
        hd_log_ctx ctx = {.app = path_app(c->path, app, sizeof app), .peer_fd = &c->fd};
        hd_logc(HD_LOG_DEBUG, "http", &ctx, "%s %s (%zu body bytes) -> %d", c->head.method, c->path, body_len,
                res.status);
    }
    answer(c, res.status, res.body.data ? res.body.data : "", res.body.len, res.retry_after_s, !c->head.keep_alive);
    hd_http_response_deinit(&res);
    consume(c, total);
}

/* Split the target into path and decoded query; false with an answer made. */
static bool take_target(hd_front_conn *c)
{
    const char *t = c->in.data + c->head.target_off;
    size_t len = c->head.target_len;
    const char *q = memchr(t, '?', len);
    size_t path_len = q ? (size_t)(q - t) : len;
    c->path = hd_malloc(path_len + 1);
    memcpy(c->path, t, path_len);
    c->path[path_len] = '\0';
    if (q && hd_params_parse_query(&c->params, q + 1, len - path_len - 1) != 0) {
        answer_error(c, 400, "Malformed query string", 0);
        return false;
    }
    return true;
}

/* The head asks for a body: admit it from the head, then wait for it. */
static void expect_body(hd_front_conn *c)
{
    hd_server *srv = c->io->srv;
    size_t body_len = (size_t)c->head.content_length;
    if (body_len > (size_t)srv->cfg->max_http_body_kb * 1024u) {
        answer_error(c, 413, "Request body too large", 0);
        return;
    }
    hd_http_request req = {.method = c->head.method, .path = c->path, .params = &c->params, .body = ""};
    hd_http_response res = {0};
    hd_buf_init(&res.body);
    bool ok = hd_http_api_admit(srv, &req, body_len, &res);
    if (!ok) {
        HD_STAT_ADD(c->io, http_refused, 1);
        log_refused_answer(c, res.status, &res.body); /* refused from its head: the body is never read */
        answer(c, res.status, res.body.data ? res.body.data : "", res.body.len, res.retry_after_s, true);
    }
    hd_buf_deinit(&res.body);
    if (!ok)
        return;
    size_t need = c->head.head_len + body_len + 1;
    if (need > c->in.cap && !budget_allows(c, need - c->in.cap)) {
        answer_error(c, 503, "Server busy: too many request bodies in flight", 1);
        return;
    }
    hd_buf_reserve(&c->in, need - c->in.len);
    recharge(c);
    c->state = FS_BODY;
    c->deadline_ms = hd_mono_ms() + srv->cfg->limits.http_body_timeout_ms;
    if (c->head.expect_continue && c->in.len == c->head.head_len)
        hd_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
}

static void hand_to_lws(hd_front_conn *c)
{
    hd_io_thread *io = c->io;
    int fd = c->fd;
    /* lws reads the head (and anything after it) from this copy; on
     * failure it closes fd itself (every failure path of adoption does). */
    size_t len = 0;
    char *data = hd_buf_steal(&c->in, &len);
    SSL *ssl = c->ssl;
    conn_free(c, false);
    if (ssl) /* lws reads and writes through our session from here on, and frees it */
        lws_adopt_socket_vhost_tls_readbuf(io->vhost, fd, ssl, data, len);
    else
        lws_adopt_socket_vhost_readbuf(io->vhost, fd, data, len);
    hd_free(data);
}

enum step { STEP_NEXT, STEP_WAIT, STEP_GONE };

static enum step on_upgrade(hd_front_conn *c)
{
    if (strcmp(c->head.method, "GET") != 0) {
        answer_error(c, 400, "A WebSocket handshake must be a GET request", 0);
        return STEP_WAIT;
    }
    if (atomic_load(&c->io->srv->stopping)) {
        answer_error(c, 503, "Server shutting down: connect again", 1);
        return STEP_WAIT;
    }
    if (!hd_admission_take(c->io->srv, c->peer)) {
        HD_STAT_ADD(c->io, connections_rate_limited, 1);
        answer_error(c, 429, "Too many new connections: retry later", 1);
        return STEP_WAIT;
    }
    hand_to_lws(c);
    return STEP_GONE;
}

/* ---- CORS (cors.origins): browsers calling the HTTP API from a page ---- */

/* Remember the request's Origin when cors.origins allows it. */
static void cors_check(hd_front_conn *c)
{
    const hd_config *cfg = c->io->srv->cfg;
    if (!cfg->n_cors_origins || !c->head.origin_len)
        return;
    const char *origin = c->in.data + c->head.origin_off;
    size_t len = c->head.origin_len;
    for (size_t i = 0; i < cfg->n_cors_origins; i++) {
        const char *o = cfg->cors_origins[i];
        if (!strcmp(o, "*") || (strlen(o) == len && !memcmp(o, origin, len))) {
            c->cors_allow = hd_malloc(len + 1);
            memcpy(c->cors_allow, origin, len);
            c->cors_allow[len] = '\0';
            return;
        }
    }
}

/* OPTIONS preflight: 204 with what the API accepts, or 403 for an origin
 * not in cors.origins. Only when CORS is configured. */
static void cors_preflight(hd_front_conn *c)
{
    if (!c->cors_allow) {
        answer_error(c, 403, "Origin not allowed by cors.origins", 0);
        return;
    }
    hd_buf *o = &c->out;
    hd_buf_printf(o, "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                     "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n",
                  c->cors_allow);
    const char *acrh = c->in.data + c->head.acrh_off;
    size_t n = c->head.acrh_len; /* the parser let only visible characters through */
    if (n && !memchr(acrh, '\r', n) && !memchr(acrh, '\n', n))
        hd_buf_printf(o, "Access-Control-Allow-Headers: %.*s\r\n", (int)n, acrh);
    hd_buf_puts(o, "Access-Control-Max-Age: 86400\r\n");
    hd_buf_puts(o, c->head.keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
    c->close_after |= !c->head.keep_alive;
    recharge(c);
    consume(c, c->head.head_len);
}

/* A complete head: hand a handshake to lws, answer or admit a request. */
static enum step on_head(hd_front_conn *c)
{
    if (c->head.upgrade_websocket)
        return on_upgrade(c);
    c->head_us = hd_mono_us(); /* the request's duration runs from here to its answer() */
    cors_check(c);
    if (c->io->srv->cfg->n_cors_origins && !strcmp(c->head.method, "OPTIONS") && c->head.content_length <= 0) {
        cors_preflight(c);
        return STEP_NEXT;
    }
    if (!take_target(c))
        return STEP_WAIT;
    if (c->head.content_length > 0) {
        expect_body(c);
        return c->close_after ? STEP_WAIT : STEP_NEXT;
    }
    dispatch(c, false);
    return STEP_NEXT;
}

/* One step of the request in the input buffer. */
static enum step step(hd_front_conn *c)
{
    const hd_config *cfg = c->io->srv->cfg;
    if (c->state == FS_WAIT)
        return STEP_WAIT;
    if (c->state == FS_BODY) {
        if (c->in.len < c->head.head_len + (size_t)c->head.content_length)
            return STEP_WAIT;
        dispatch(c, true);
        return STEP_NEXT;
    }
    if (!c->in.len) {
        if (!c->head_started) /* between requests; a new connection's head is already due */
            c->deadline_ms = hd_mono_ms() + cfg->limits.http_keepalive_timeout_ms;
        return STEP_WAIT;
    }
    if (!c->head_started) { /* from the first byte, not reset by more bytes */
        c->head_started = true;
        c->deadline_ms = hd_mono_ms() + cfg->limits.http_head_timeout_ms;
    }
    int rc = hd_http_parse_head(c->in.data, c->in.len, &head_limits, &c->head);
    if (rc == 0)
        return STEP_WAIT;
    if (rc < 0) {
        answer_error(c, -rc, parse_error_message(-rc), 0);
        return STEP_WAIT;
    }
    return on_head(c);
}

/* Work through what has arrived, one request at a time, writing each
 * answer before the next request is looked at; false when c was freed. */
static bool process(hd_front_conn *c)
{
    for (;;) {
        if (c->out.len) {
            if (!flush_out(c))
                return false;
            if (c->out.len) /* the socket is full: on_io continues when it drains */
                return true;
        }
        if (c->state == FS_DRAIN)
            return true;
        enum step st = step(c);
        if (st == STEP_GONE)
            return false;
        if (st == STEP_WAIT && !c->out.len)
            return true;
    }
}

/* How many more bytes this connection may take from the socket now. */
static size_t read_room(const hd_front_conn *c)
{
    if (c->state == FS_WAIT)
        return 0;
    if (c->state == FS_BODY) {
        size_t want = c->head.head_len + (size_t)c->head.content_length;
        return want > c->in.len ? want - c->in.len : 0;
    }
    return c->in.len < MAX_HEAD ? MAX_HEAD - c->in.len : 0;
}

/* Discard what a refused client still sends, until EOF or the deadline. */
static void drain_input(hd_front_conn *c)
{
    char sink[READ_CHUNK];
    for (;;) {
        ssize_t n = conn_recv(c, sink, sizeof sink);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_free(c, true);
        return;
    }
}

/* Read what there is room for, one chunk per call; false when c was freed.
 * One chunk, then back to the loop: a keep-alive publisher on another core
 * has its next request in the socket by the time this one is answered, and
 * reading on while there is input let a few publishers hold the io thread
 * for tens of milliseconds per turn, so the frames their triggers queued
 * were written only at the end of it and the subscribers' queues grew
 * until they were closed (4100). The watcher is level-triggered: what is
 * left in the socket is read on the next turn. TLS may hold decrypted
 * bytes the socket no longer shows, so those are read on now. */
static bool read_input(hd_front_conn *c)
{
    char buf[READ_CHUNK];
    size_t room = read_room(c);
    bool first = true;
    while (room && !c->out.len && (first || (c->ssl && SSL_pending(c->ssl) > 0))) {
        first = false;
        ssize_t n = conn_recv(c, buf, room < sizeof buf ? room : sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            conn_free(c, true);
            return false;
        }
        if (n < 0) {
            watch_input(c);
            break;
        }
        if (c->in.len + (size_t)n + 1 > c->in.cap && !budget_allows(c, (size_t)n + 1)) {
            answer_error(c, 503, "Server busy: too many requests in flight", 1);
            /* written now: a client that sends nothing more would otherwise
             * never see it (the answer waited for the next socket event) */
            return process(c);
        }
        hd_buf_append(&c->in, buf, (size_t)n);
        recharge(c);
        if (!process(c))
            return false;
        room = read_room(c);
    }
    return true;
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    hd_front_conn *c = w->data;
    if (c->state == FS_DRAIN) {
        drain_input(c);
        return;
    }
    if ((revents & EV_WRITE) && !flush_out(c))
        return;
    if (c->state == FS_DRAIN || c->out.len)
        return;
    if (!process(c)) /* requests that were waiting behind the answer just written */
        return;
    if (c->state != FS_DRAIN && !c->out.len)
        read_input(c);
}

/* ---- entry points ---- */

void hd_front_accept(hd_io_thread *io, int fd, uint32_t peer, const char *data, size_t len)
{
    hd_front_conn *c = hd_calloc(1, sizeof *c);
    c->io = io;
    c->fd = fd;
    c->peer = peer;
    if (io->srv->tls && !(c->ssl = hd_tls_session(io->srv->tls, fd))) {
        close(fd);
        hd_free(c);
        return;
    }
    hd_buf_init(&c->in);
    hd_buf_init(&c->out);
    hd_params_init(&c->params);
    c->next = io->front;
    if (io->front)
        io->front->prev = c;
    io->front = c;
    io->n_front++;
    ev_init(&c->watcher, on_io);
    ev_set_priority(&c->watcher, EV_MAXPRI); /* new clients ahead of a storm of closes (listener.c) */
    c->watcher.data = c;
    /* the head is due within the head timeout of the accept */
    c->head_started = true;
    c->deadline_ms = hd_mono_ms() + io->srv->cfg->limits.http_head_timeout_ms;
    if (len)
        hd_buf_append(&c->in, data, len);
    recharge(c);
    watch(c, EV_READ);
    if (!process(c))
        return;
    if (c->state != FS_DRAIN && !c->out.len)
        read_input(c);
}

/* A deadline passed: say so where a request is half in, then close. */
static void expire(hd_front_conn *c)
{
    if (c->state == FS_DRAIN || c->out.len || (c->state == FS_HEAD && !c->in.len)) {
        conn_free(c, true); /* drained, not reading its answer, or idle */
        return;
    }
    if (c->state == FS_WAIT) { /* the adapter did not answer: it always should */
        waiting_free(c);
        answer_error(c, 503, "Cluster state unavailable: try again shortly", 1);
        flush_out(c);
        return;
    }
    HD_STAT_ADD(c->io, http_timeouts, 1);
    answer_error(c, 408, c->state == FS_BODY ? "Request body timed out" : "Request head timed out", 0);
    flush_out(c);
}

void hd_front_tick(hd_io_thread *io, uint64_t now)
{
    hd_front_conn *c = io->front;
    while (c) {
        hd_front_conn *next = c->next;
        if (c->deadline_ms && now >= c->deadline_ms)
            expire(c);
        c = next;
    }
}

void hd_front_close_all(hd_io_thread *io)
{
    while (io->front)
        conn_free(io->front, true);
}
