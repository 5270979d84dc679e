/* floor_server.c - `herald_bench floor-server --port P [--host 127.0.0.1]`:
 * the "one-write floor" for the fanout scenario. It serves exactly the
 * traffic of scen_fanout.c with the least work any server could do, so a
 * real server's CPU per delivery can be set against it in the same run.
 *
 * DESIGN
 * ------
 * The floor is defined as ONE write() per delivery: an HTTP publish is
 * turned into its Pusher frame once per channel, and that frame is written
 * to each subscriber's socket with a single write() and nothing else
 * (no queue, no copy, no per-subscriber work). Everything around it is the
 * minimum that keeps the load generator's clients working:
 *  - WebSocket upgrade (GET with Sec-WebSocket-Key): 101 with the RFC 6455
 *    Sec-WebSocket-Accept, then pusher:connection_established (socket id
 *    "1.<connection number>"), in the same write. The path and app key are
 *    not looked at.
 *  - Client frames (masked) are unmasked; a text frame that contains
 *    "pusher:subscribe" is scanned for "channel":"..." (a string scan, not
 *    a JSON parser: escapes in the name are kept as they are, and the
 *    member order does not matter) and the connection joins that channel's
 *    subscriber list (channels are a linear array: the scenario uses ~10);
 *    "pusher:ping" gets pusher:pong; a close frame is echoed and the
 *    connection closed; anything else (binary, pings, fragments, unmasked
 *    frames aside) is ignored. Unmasked frames close the connection.
 *  - HTTP/1.1 keep-alive: POST .../events takes the body by Content-Length
 *    and scans it for "name", "data" (kept exactly as in the body, still
 *    escaped: the outgoing frame is JSON too) and "channels":[...] or
 *    "channel"; the answer is 200 {}. Every other request gets a JSON 404
 *    (the fanout scenario sends no other request).
 * There is NO authentication (signatures, app key), no validation, no JSON
 * parsing and no output buffering: it is a lower bound no real server
 * reaches, not a server. A write that would block, or is short, drops that
 * connection (counted, printed at exit): the benchmark's fixed rate is low
 * enough that a loopback socket buffer never fills, so this should not
 * happen; if the exit line shows any, the run was not a floor run.
 *
 * Counters are printed at exit (SIGTERM / SIGINT, read from a signalfd so
 * the wait cannot miss one). Only loopback addresses are accepted.
 *
 * THREADING
 * ---------
 * One thread, one level-triggered epoll loop, non-blocking sockets.
 * Connections closed while a batch of events is dispatched are freed after
 * the batch, so a later event of the same batch never sees freed memory.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bench.h"
#include "protocol/protocol.h"

#define FLOOR_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define FLOOR_MAX_HEAD 16384          /* request head; more is answered 431 */
#define FLOOR_MAX_BODY (1u << 20)     /* request body; more is answered 413 */
#define FLOOR_MAX_FRAME (1u << 20)    /* client frame payload; more closes */
#define FLOOR_MAX_CHANNEL 200         /* channel name bytes (Pusher: 164) */
#define FLOOR_MAX_CHANNELS 4096       /* distinct channels ever subscribed */
#define FLOOR_READ_CAP 65536
#define FLOOR_EVENTS 256

enum floor_kind { FK_LISTEN, FK_SIGNAL, FK_HTTP, FK_WS };
enum { WS_TEXT = 1, WS_CLOSE = 8 };

/* Embedded first in everything registered with epoll (data.ptr). */
typedef struct floor_io {
    int kind;
    int fd;     /* -1 once closed */
} floor_io;

typedef struct floor_conn {
    floor_io io;
    uint64_t id;                    /* socket id 1.<id> */
    hd_buf in;                      /* an incomplete request / frame between reads */
    uint32_t *chans;                /* channel indexes it is subscribed to */
    uint32_t n_chans, cap_chans;
    struct floor_conn *prev, *next; /* live list; next: dead list once closed */
} floor_conn;

typedef struct floor_channel {
    char name[FLOOR_MAX_CHANNEL + 1];
    size_t len;
    floor_conn **subs;
    uint32_t n, cap;
} floor_channel;

typedef struct floor_counts {
    uint64_t accepted, upgrades, subscribes, publishes, deliveries;
    uint64_t blocked;      /* writes that would block or were short: connection dropped */
    uint64_t write_errors; /* writes that failed otherwise (peer gone) */
    uint64_t bad;          /* requests / messages answered with an error */
} floor_counts;

typedef struct floor_server {
    int ep;
    floor_io listen, sig;
    floor_channel *channels;
    uint32_t n_channels, cap_channels;
    floor_conn *live, *dead;
    hd_buf frame;          /* the fan-out frame being sent */
    char scratch[FLOOR_READ_CAP];
    floor_counts n;
    bool stop;
} floor_server;

static void conn_close(floor_server *fs, floor_conn *c);

/* ---- writing: one write() per message, never buffered ---- */

/* Exactly one write(); anything but all of it drops the connection. */
static bool send_once(floor_server *fs, floor_conn *c, const void *p, size_t n)
{
    ssize_t r;
    do
        r = write(c->io.fd, p, n);
    while (r < 0 && errno == EINTR);
    if (r == (ssize_t)n)
        return true;
    if (r >= 0 || errno == EAGAIN || errno == EWOULDBLOCK)
        fs->n.blocked++;
    else
        fs->n.write_errors++;
    conn_close(fs, c);
    return false;
}

/* A small text message (control answers: well under 1 KiB). */
static bool send_text(floor_server *fs, floor_conn *c, const char *msg, size_t len)
{
    char buf[1024];
    if (len > sizeof buf - 4)
        len = sizeof buf - 4; /* cannot happen: every caller bounds its message */
    size_t h = hd_ws_frame_header((unsigned char *)buf, WS_TEXT, len);
    memcpy(buf + h, msg, len);
    return send_once(fs, c, buf, h + len);
}

/* ---- channels ---- */

static int channel_find(const floor_server *fs, const char *name, size_t len)
{
    for (uint32_t i = 0; i < fs->n_channels; i++)
        if (fs->channels[i].len == len && memcmp(fs->channels[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* The channel's index, created if new; -1 when the table is full. */
static int channel_get(floor_server *fs, const char *name, size_t len)
{
    int i = channel_find(fs, name, len);
    if (i >= 0 || fs->n_channels == FLOOR_MAX_CHANNELS)
        return i;
    if (fs->n_channels == fs->cap_channels) {
        fs->cap_channels = fs->cap_channels ? fs->cap_channels * 2 : 16;
        fs->channels = hd_realloc(fs->channels, fs->cap_channels * sizeof *fs->channels);
    }
    floor_channel *ch = &fs->channels[fs->n_channels];
    memset(ch, 0, sizeof *ch);
    memcpy(ch->name, name, len);
    ch->len = len;
    return (int)fs->n_channels++;
}

/* Add c to channel ci once; false if it already was there. */
static bool channel_join(floor_server *fs, floor_conn *c, uint32_t ci)
{
    for (uint32_t i = 0; i < c->n_chans; i++)
        if (c->chans[i] == ci)
            return false;
    if (c->n_chans == c->cap_chans) {
        c->cap_chans = c->cap_chans ? c->cap_chans * 2 : 4;
        c->chans = hd_realloc(c->chans, c->cap_chans * sizeof *c->chans);
    }
    c->chans[c->n_chans++] = ci;
    floor_channel *ch = &fs->channels[ci];
    if (ch->n == ch->cap) {
        ch->cap = ch->cap ? ch->cap * 2 : 64;
        ch->subs = hd_realloc(ch->subs, ch->cap * sizeof *ch->subs);
    }
    ch->subs[ch->n++] = c;
    return true;
}

/* Swap-remove c from every channel it joined. fan_out walks a list from
 * the end, so the element moved into a hole was already visited. */
static void channel_leave_all(floor_server *fs, floor_conn *c)
{
    for (uint32_t k = 0; k < c->n_chans; k++) {
        floor_channel *ch = &fs->channels[c->chans[k]];
        for (uint32_t i = 0; i < ch->n; i++) {
            if (ch->subs[i] == c) {
                ch->subs[i] = ch->subs[--ch->n];
                break;
            }
        }
    }
    c->n_chans = 0;
}

/* ---- connections ---- */

static void conn_close(floor_server *fs, floor_conn *c)
{
    if (c->io.fd < 0)
        return;
    channel_leave_all(fs, c);
    close(c->io.fd); /* also leaves the epoll set */
    c->io.fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        fs->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = fs->dead;
    fs->dead = c;
}

static void conn_free(floor_conn *c)
{
    hd_buf_deinit(&c->in);
    hd_free(c->chans);
    hd_free(c);
}

static void free_dead(floor_server *fs)
{
    while (fs->dead) {
        floor_conn *c = fs->dead;
        fs->dead = c->next;
        conn_free(c);
    }
}

/* ---- string scans (no JSON parser: see the file comment) ---- */

/* Just after the member name `key` (e.g. "\"name\":") and any spaces, or NULL. */
static const char *member_value(const char *p, const char *end, const char *key)
{
    const char *k = memmem(p, (size_t)(end - p), key, strlen(key));
    if (!k)
        return NULL;
    const char *v = k + strlen(key);
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    return v < end ? v : NULL;
}

/* s points just after an opening quote: the closing quote, or NULL. */
static const char *string_end(const char *s, const char *end)
{
    while (s < end && *s != '"')
        s += *s == '\\' ? 2 : 1;
    return s < end ? s : NULL;
}

/* ---- WebSocket side ---- */

static void ws_subscribe(floor_server *fs, floor_conn *c, const char *msg, size_t len)
{
    char out[512];
    const char *end = msg + len, *v = member_value(msg, end, "\"channel\":");
    const char *name = v && *v == '"' ? v + 1 : NULL, *e = name ? string_end(name, end) : NULL;
    size_t nlen = e ? (size_t)(e - name) : 0;
    if (!e || nlen == 0 || nlen > FLOOR_MAX_CHANNEL) {
        static const char err[] = "{\"event\":\"pusher:error\",\"data\":{\"code\":null,"
                                  "\"message\":\"floor server: pusher:subscribe without a channel name of "
                                  "1..200 bytes\"}}";
        fs->n.bad++;
        send_text(fs, c, err, sizeof err - 1);
        return;
    }
    int ci = channel_get(fs, name, nlen);
    if (ci < 0) {
        int n = snprintf(out, sizeof out, "{\"event\":\"pusher:subscription_error\",\"channel\":\"%.*s\","
                         "\"data\":{\"type\":\"LimitReached\",\"error\":\"floor server: more than %d channels\","
                         "\"status\":400}}", (int)nlen, name, FLOOR_MAX_CHANNELS);
        fs->n.bad++;
        send_text(fs, c, out, (size_t)n);
        return;
    }
    if (channel_join(fs, c, (uint32_t)ci))
        fs->n.subscribes++;
    int n = snprintf(out, sizeof out,
                     "{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":\"%.*s\",\"data\":\"{}\"}",
                     (int)nlen, name);
    send_text(fs, c, out, (size_t)n);
}

static void ws_on_text(floor_server *fs, floor_conn *c, const char *msg, size_t len)
{
    static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":\"{}\"}";
    if (memmem(msg, len, "\"pusher:subscribe\"", 18))
        ws_subscribe(fs, c, msg, len);
    else if (memmem(msg, len, "\"pusher:ping\"", 13))
        send_text(fs, c, pong, sizeof pong - 1);
}

/* One client frame at p: bytes consumed, 0 if incomplete, -1 once closed. */
static long ws_frame(floor_server *fs, floor_conn *c, char *p, size_t len)
{
    const unsigned char *u = (const unsigned char *)p;
    bench_ws_head fh;
    size_t h = bench_ws_frame_head(p, len, &fh);
    if (!h)
        return 0;
    bool fin = fh.fin, masked = fh.masked;
    int opcode = fh.opcode;
    uint64_t plen = fh.payload_len;
    if (!masked || plen > FLOOR_MAX_FRAME) { /* RFC 6455 §5.1 / our own bound: no answer, just close */
        fs->n.bad++;
        conn_close(fs, c);
        return -1;
    }
    if (len < h + 4 || len - h - 4 < plen)
        return 0;
    const unsigned char *mask = u + h;
    char *payload = p + h + 4;
    for (uint64_t i = 0; i < plen; i++)
        payload[i] ^= (char)mask[i & 3];
    if (opcode == WS_TEXT && fin) {
        ws_on_text(fs, c, payload, (size_t)plen);
    } else if (opcode == WS_CLOSE) {
        unsigned char close_frame[4];
        size_t n = hd_ws_frame_header(close_frame, WS_CLOSE, plen >= 2 ? 2 : 0);
        if (plen >= 2)
            memcpy(close_frame + n, payload, 2);
        if (send_once(fs, c, close_frame, n + (plen >= 2 ? 2 : 0)))
            conn_close(fs, c);
        return -1;
    }
    return c->io.fd >= 0 ? (long)(h + 4 + plen) : -1;
}

/* ---- HTTP side ---- */

/* The value of header `name` (lower case) in head[0..len), trimmed; NULL if absent. */
static const char *header(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *end = head + len, *line = memchr(head, '\n', len);
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            return NULL;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

/* Answer in one write(); close after it when asked. Returns false once closed. */
static bool http_reply(floor_server *fs, floor_conn *c, const char *status, const char *body, bool close_after)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
                     status, strlen(body), close_after ? "Connection: close\r\n" : "", body);
    if (!send_once(fs, c, buf, (size_t)n))
        return false;
    if (close_after) {
        conn_close(fs, c);
        return false;
    }
    return true;
}

/* Build {"event":<name>,"channel":<c>,"data":<data>} once, then one write()
 * per subscriber. name and data are the body's JSON strings, quotes
 * included, bytes as they were. */
static void fan_out(floor_server *fs, const char *name, size_t nlen, const char *chan, size_t clen,
                    const char *data, size_t dlen)
{
    int ci = channel_find(fs, chan, clen);
    if (ci < 0 || fs->channels[ci].n == 0)
        return;
    floor_channel *ch = &fs->channels[ci];
    static const char a[] = "{\"event\":", b[] = ",\"channel\":\"", d[] = "\",\"data\":";
    size_t plen = (sizeof a - 1) + nlen + (sizeof b - 1) + clen + (sizeof d - 1) + dlen + 1;
    unsigned char h[10];
    size_t hl = hd_ws_frame_header(h, WS_TEXT, plen);
    hd_buf *f = &fs->frame;
    f->len = 0;
    hd_buf_reserve(f, hl + plen);
    hd_buf_append(f, h, hl);
    hd_buf_append(f, a, sizeof a - 1);
    hd_buf_append(f, name, nlen);
    hd_buf_append(f, b, sizeof b - 1);
    hd_buf_append(f, chan, clen);
    hd_buf_append(f, d, sizeof d - 1);
    hd_buf_append(f, data, dlen);
    hd_buf_append(f, "}", 1);
    for (uint32_t i = ch->n; i-- > 0;) /* from the end: a dropped subscriber is swap-removed */
        if (send_once(fs, ch->subs[i], f->data, f->len))
            fs->n.deliveries++;
}

/* A JSON string value at v (quote included): its end (closing quote + 1), or NULL. */
static const char *json_string_at(const char *v, const char *end)
{
    if (!v || *v != '"')
        return NULL;
    const char *e = string_end(v + 1, end);
    return e ? e + 1 : NULL;
}

/* POST .../events: NULL when delivered, else why not. */
static const char *publish(floor_server *fs, const char *body, size_t len)
{
    const char *end = body + len;
    const char *name = member_value(body, end, "\"name\":"), *name_end = json_string_at(name, end);
    const char *data = member_value(body, end, "\"data\":"), *data_end = json_string_at(data, end);
    if (!name_end || !data_end)
        return "{\"error\":\"floor server: the body needs \\\"name\\\" and \\\"data\\\" strings\"}";
    size_t nlen = (size_t)(name_end - name), dlen = (size_t)(data_end - data);
    const char *list = member_value(body, end, "\"channels\":");
    if (list && *list == '[') {
        const char *p = list + 1;
        for (;;) {
            while (p < end && (*p == ' ' || *p == ','))
                p++;
            if (p < end && *p == ']')
                break;
            const char *ce = json_string_at(p, end);
            if (!ce)
                return "{\"error\":\"floor server: \\\"channels\\\" must be an array of strings\"}";
            fan_out(fs, name, nlen, p + 1, (size_t)(ce - p - 2), data, dlen);
            p = ce;
        }
    } else {
        const char *one = member_value(body, end, "\"channel\":"), *one_end = json_string_at(one, end);
        if (!one_end)
            return "{\"error\":\"floor server: the body needs \\\"channels\\\" or \\\"channel\\\"\"}";
        fan_out(fs, name, nlen, one + 1, (size_t)(one_end - one - 2), data, dlen);
    }
    fs->n.publishes++;
    return NULL;
}

/* 101 + pusher:connection_established in one write(). */
static long http_upgrade(floor_server *fs, floor_conn *c, const char *key, size_t klen, size_t consumed)
{
    char concat[128], accept[32], msg[160], buf[512];
    unsigned char digest[SHA_DIGEST_LENGTH];
    if (klen == 0 || klen > 64) {
        fs->n.bad++;
        http_reply(fs, c, "400 Bad Request", "{\"error\":\"floor server: bad Sec-WebSocket-Key\"}", true);
        return -1;
    }
    int cl = snprintf(concat, sizeof concat, "%.*s%s", (int)klen, key, FLOOR_GUID);
    SHA1((const unsigned char *)concat, (size_t)cl, digest);
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
    int ml = snprintf(msg, sizeof msg,
                      "{\"event\":\"pusher:connection_established\",\"data\":\"{\\\"socket_id\\\":\\\"1.%llu\\\","
                      "\\\"activity_timeout\\\":120}\"}", (unsigned long long)c->id);
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    n += (int)hd_ws_frame_header((unsigned char *)buf + n, WS_TEXT, (size_t)ml);
    memcpy(buf + n, msg, (size_t)ml);
    c->io.kind = FK_WS;
    fs->n.upgrades++;
    return send_once(fs, c, buf, (size_t)n + (size_t)ml) ? (long)consumed : -1;
}

/* Content-Length: digits only; -1 when malformed. */
static long content_length(const char *head, size_t len)
{
    size_t vl;
    const char *v = header(head, len, "content-length", &vl);
    if (!v)
        return 0;
    if (vl == 0 || vl > 9)
        return -1;
    long n = 0;
    for (size_t i = 0; i < vl; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

static bool wants_close(const char *head, size_t len)
{
    size_t vl;
    const char *v = header(head, len, "connection", &vl);
    for (size_t i = 0; v && i + 5 <= vl; i++)
        if (strncasecmp(v + i, "close", 5) == 0)
            return true;
    return false;
}

/* Is path (up to '?' or its end) /apps/<id>/events? */
static bool is_events_path(const char *path, size_t len)
{
    const char *q = memchr(path, '?', len);
    size_t n = q ? (size_t)(q - path) : len;
    return n > 13 && memcmp(path, "/apps/", 6) == 0 && memcmp(path + n - 7, "/events", 7) == 0;
}

/* One request at p: bytes consumed, 0 if incomplete, -1 once closed. */
static long http_request(floor_server *fs, floor_conn *c, const char *p, size_t len)
{
    const char *hend = memmem(p, len, "\r\n\r\n", 4);
    if (!hend) {
        if (len <= FLOOR_MAX_HEAD)
            return 0;
        fs->n.bad++;
        http_reply(fs, c, "431 Request Header Fields Too Large", "{\"error\":\"floor server: head too large\"}", true);
        return -1;
    }
    size_t head_len = (size_t)(hend - p) + 4, klen;
    const char *sp1 = memchr(p, ' ', head_len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - p)) : NULL;
    if (!sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        fs->n.bad++;
        http_reply(fs, c, "400 Bad Request", "{\"error\":\"floor server: not an HTTP/1.x request\"}", true);
        return -1;
    }
    bool get = sp1 - p == 3 && memcmp(p, "GET", 3) == 0, post = sp1 - p == 4 && memcmp(p, "POST", 4) == 0;
    const char *key = get ? header(p, head_len, "sec-websocket-key", &klen) : NULL;
    if (key)
        return http_upgrade(fs, c, key, klen, head_len);
    long body_len = content_length(p, head_len);
    size_t tl;
    if (body_len < 0 || header(p, head_len, "transfer-encoding", &tl)) {
        fs->n.bad++;
        http_reply(fs, c, "400 Bad Request", "{\"error\":\"floor server: only a Content-Length body\"}", true);
        return -1;
    }
    if ((size_t)body_len > FLOOR_MAX_BODY) {
        fs->n.bad++;
        http_reply(fs, c, "413 Payload Too Large", "{\"error\":\"floor server: body over 1 MiB\"}", true);
        return -1;
    }
    if (len - head_len < (size_t)body_len)
        return 0;
    bool close_after = wants_close(p, head_len);
    bool ok;
    if (post && is_events_path(sp1 + 1, (size_t)(sp2 - sp1 - 1))) {
        const char *err = publish(fs, p + head_len, (size_t)body_len);
        if (err)
            fs->n.bad++;
        ok = err ? http_reply(fs, c, "400 Bad Request", err, close_after)
                 : http_reply(fs, c, "200 OK", "{}", close_after);
    } else {
        fs->n.bad++;
        ok = http_reply(fs, c, "404 Not Found",
                        "{\"error\":\"floor server: only POST /apps/<id>/events and WebSocket upgrades\"}",
                        close_after);
    }
    return ok ? (long)(head_len + (size_t)body_len) : -1;
}

/* ---- reading ---- */

/* Handle what p[0..len) holds: bytes consumed, or -1 once closed. */
static long conn_process(floor_server *fs, floor_conn *c, char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        long n = c->io.kind == FK_WS ? ws_frame(fs, c, p + off, len - off) : http_request(fs, c, p + off, len - off);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        off += (size_t)n;
    }
    return (long)off;
}

/* Parse in place from the scratch buffer; only an incomplete tail is kept. */
static void conn_feed(floor_server *fs, floor_conn *c, char *p, size_t n)
{
    if (c->in.len == 0) {
        long used = conn_process(fs, c, p, n);
        if (used >= 0 && (size_t)used < n)
            hd_buf_append(&c->in, p + used, n - (size_t)used);
        return;
    }
    hd_buf_append(&c->in, p, n);
    long used = conn_process(fs, c, c->in.data, c->in.len);
    if (used <= 0)
        return;
    memmove(c->in.data, c->in.data + used, c->in.len - (size_t)used);
    c->in.len -= (size_t)used;
}

static void conn_read(floor_server *fs, floor_conn *c)
{
    ssize_t r = read(c->io.fd, fs->scratch, sizeof fs->scratch);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        conn_close(fs, c);
        return;
    }
    conn_feed(fs, c, fs->scratch, (size_t)r); /* more waiting: level-triggered epoll calls again */
}

static void accept_all(floor_server *fs)
{
    static bool warned;
    for (;;) {
        int fd = accept4(fs->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && !warned) {
                warned = true; /* EMFILE etc.: the loop comes back; say it once */
                fprintf(stderr, "floor server: accept: %s\n", strerror(errno));
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as herald's listener does */
        floor_conn *c = hd_calloc(1, sizeof *c);
        c->io.kind = FK_HTTP;
        c->io.fd = fd;
        c->id = ++fs->n.accepted;
        hd_buf_init(&c->in);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(fs->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            fprintf(stderr, "floor server: epoll_ctl: %s\n", strerror(errno));
            close(fd);
            conn_free(c);
            continue;
        }
        c->next = fs->live;
        if (fs->live)
            fs->live->prev = c;
        fs->live = c;
    }
}

/* ---- setup, loop, teardown ---- */

static int listen_on(const bench_target *t)
{
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) {
        fprintf(stderr, "floor server: socket: %s\n", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&t->addr, t->addr_len) < 0 || listen(fd, SOMAXCONN) < 0) {
        fprintf(stderr, "floor server: %s:%d: %s\n", t->host, t->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* SIGTERM / SIGINT arrive on a signalfd; SIGPIPE is ignored (write errors are counted). */
static int signals_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int floor_setup(floor_server *fs, const bench_target *t)
{
    fs->ep = epoll_create1(EPOLL_CLOEXEC);
    fs->listen = (floor_io){FK_LISTEN, listen_on(t)};
    fs->sig = (floor_io){FK_SIGNAL, signals_fd()};
    hd_buf_init(&fs->frame);
    if (fs->ep < 0 || fs->sig.fd < 0)
        fprintf(stderr, "floor server: epoll / signalfd: %s\n", strerror(errno));
    if (fs->ep < 0 || fs->listen.fd < 0 || fs->sig.fd < 0)
        return -1;
    struct epoll_event l = {.events = EPOLLIN, .data.ptr = &fs->listen};
    struct epoll_event s = {.events = EPOLLIN, .data.ptr = &fs->sig};
    if (epoll_ctl(fs->ep, EPOLL_CTL_ADD, fs->listen.fd, &l) < 0 ||
        epoll_ctl(fs->ep, EPOLL_CTL_ADD, fs->sig.fd, &s) < 0) {
        fprintf(stderr, "floor server: epoll_ctl: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static void floor_run(floor_server *fs)
{
    struct epoll_event evs[FLOOR_EVENTS];
    while (!fs->stop) {
        int n = epoll_wait(fs->ep, evs, FLOOR_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "floor server: epoll_wait: %s\n", strerror(errno));
            return;
        }
        for (int i = 0; i < n; i++) {
            floor_io *io = evs[i].data.ptr;
            if (io->kind == FK_LISTEN)
                accept_all(fs);
            else if (io->kind == FK_SIGNAL)
                fs->stop = true;
            else if (io->fd >= 0) /* not closed earlier in this batch */
                conn_read(fs, (floor_conn *)io);
        }
        free_dead(fs);
    }
}

static void floor_teardown(floor_server *fs)
{
    while (fs->live)
        conn_close(fs, fs->live);
    free_dead(fs);
    for (uint32_t i = 0; i < fs->n_channels; i++)
        hd_free(fs->channels[i].subs);
    hd_free(fs->channels);
    hd_buf_deinit(&fs->frame);
    if (fs->listen.fd >= 0)
        close(fs->listen.fd);
    if (fs->sig.fd >= 0)
        close(fs->sig.fd);
    if (fs->ep >= 0)
        close(fs->ep);
}

static void floor_usage(FILE *f)
{
    fputs("usage: herald_bench floor-server --port P [--host 127.0.0.1]\n"
          "  the fanout scenario's one-write floor (bench/floor_server.c): runs until SIGTERM / SIGINT,\n"
          "  then prints its counters; loopback addresses only\n",
          f);
}

int bench_floor_server_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, 0, 'p'}, {"host", required_argument, 0, 'H'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *host = "127.0.0.1";
    int port = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p') {
            port = atoi(optarg);
        } else if (c == 'H') {
            host = optarg;
        } else {
            floor_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    bench_target t;
    memset(&t, 0, sizeof t);
    if (optind != argc || port <= 0) {
        floor_usage(stderr);
        return 2;
    }
    if (bench_target_resolve(&t, host, port) < 0)
        return 2;
    bench_raise_nofile();
    static floor_server fs; /* 64 KiB of scratch: not on the stack */
    int rc = floor_setup(&fs, &t);
    if (rc == 0) {
        printf("floor server listening on %s:%d\n", t.host, t.port);
        fflush(stdout);
        floor_run(&fs);
        printf("floor server: connections %llu, websocket upgrades %llu, subscriptions %llu, publishes %llu, "
               "deliveries %llu, writes that would block %llu (connections dropped), write errors %llu, "
               "bad requests %llu\n",
               (unsigned long long)fs.n.accepted, (unsigned long long)fs.n.upgrades,
               (unsigned long long)fs.n.subscribes, (unsigned long long)fs.n.publishes,
               (unsigned long long)fs.n.deliveries, (unsigned long long)fs.n.blocked,
               (unsigned long long)fs.n.write_errors, (unsigned long long)fs.n.bad);
        fflush(stdout);
    }
    floor_teardown(&fs);
    return rc == 0 ? 0 : 1;
}
