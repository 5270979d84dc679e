/* pusher.c - herald_bench's Pusher protocol messages (PUSHER_PROTOCOL.md
 * §1-§4, §6): classifying what the server sends, building subscribes with
 * locally computed channel auth.
 *
 * DESIGN
 * ------
 * No JSON parser on the hot path: a server message is an object whose
 * "event" and "channel" members are plain strings, so they are located
 * with memmem and read up to the closing quote. Numbers the tool itself put
 * into event data (seq, ts, ...) are read by name wherever they appear, so
 * the same code reads them from a string `data` (HTTP events, escaped) and
 * from an object `data` (relayed client events).
 *
 * THREADING
 * ---------
 * Reentrant; no state.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "protocol/protocol.h"

/* The string value of member `key` ("\"event\":"), or NULL. */
static const char *json_str(const char *msg, size_t len, const char *key, size_t *out_len)
{
    size_t klen = strlen(key);
    const char *k = memmem(msg, len, key, klen);
    if (!k)
        return NULL;
    const char *p = k + klen, *end = msg + len;
    while (p < end && *p == ' ')
        p++;
    if (p >= end || *p != '"')
        return NULL;
    p++;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q)
        return NULL;
    *out_len = (size_t)(q - p);
    return p;
}

static bool str_eq(const char *p, size_t n, const char *lit)
{
    return p && n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* Is msg[at..] the member name `name` ("name": or \"name\":)? Sets *val_at. */
static bool member_at(const char *msg, const char *end, const char *at, size_t nlen, const char **val_at)
{
    const char *p = at + nlen;
    if (at == msg || at[-1] != '"')
        return false;
    if (p < end && *p == '\\')
        p++;
    if (p >= end || *p++ != '"')
        return false;
    if (p >= end || *p++ != ':')
        return false;
    while (p < end && *p == ' ')
        p++;
    *val_at = p;
    return true;
}

bool bench_pusher_int(const char *msg, size_t len, const char *name, uint64_t *out)
{
    size_t nlen = strlen(name);
    const char *end = msg + len, *p = msg, *v = NULL;
    while (p < end) {
        const char *k = memmem(p, (size_t)(end - p), name, nlen);
        if (!k)
            return false;
        if (member_at(msg, end, k, nlen, &v))
            break;
        p = k + 1;
    }
    if (!v || v >= end || *v < '0' || *v > '9')
        return false;
    uint64_t n = 0;
    while (v < end && *v >= '0' && *v <= '9')
        n = n * 10 + (uint64_t)(*v++ - '0');
    *out = n;
    return true;
}

static void parse_socket_id(const char *msg, size_t len, bench_pev *ev)
{
    const char *k = memmem(msg, len, "socket_id", 9);
    size_t n = 0;
    if (k) {
        const char *p = k + 9, *end = msg + len;
        while (p < end && (*p == '\\' || *p == '"' || *p == ':' || *p == ' '))
            p++;
        while (p + n < end && n + 1 < sizeof ev->socket_id && ((p[n] >= '0' && p[n] <= '9') || p[n] == '.'))
            n++;
        memcpy(ev->socket_id, p, n);
    }
    ev->socket_id[n] = '\0';
}

static int classify(const char *e, size_t n)
{
    if (n > 16 && memcmp(e, "pusher_internal:", 16) == 0)
        return str_eq(e, n, "pusher_internal:subscription_succeeded") ? BP_SUB_OK : BP_INTERNAL;
    if (n < 7 || memcmp(e, "pusher:", 7) != 0)
        return BP_OTHER;
    if (str_eq(e, n, "pusher:connection_established"))
        return BP_ESTABLISHED;
    if (str_eq(e, n, "pusher:error"))
        return BP_ERROR;
    if (str_eq(e, n, "pusher:subscription_error"))
        return BP_SUB_ERROR;
    if (str_eq(e, n, "pusher:ping"))
        return BP_PING;
    if (str_eq(e, n, "pusher:pong"))
        return BP_PONG;
    return BP_INTERNAL;
}

void bench_pusher_parse(const char *msg, size_t len, bench_pev *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->code = -1;
    ev->event = json_str(msg, len, "\"event\":", &ev->event_len);
    ev->channel = json_str(msg, len, "\"channel\":", &ev->channel_len);
    ev->kind = ev->event ? classify(ev->event, ev->event_len) : BP_OTHER;
    if (ev->kind == BP_ESTABLISHED)
        parse_socket_id(msg, len, ev);
    uint64_t code;
    if (ev->kind == BP_ERROR && bench_pusher_int(msg, len, "code", &code))
        ev->code = (int)code;
}

void bench_pusher_subscribe(hd_buf *out, const bench_target *t, const char *socket_id, const char *channel,
                            const char *channel_data)
{
    bool presence = strncmp(channel, "presence-", 9) == 0;
    bool private = strncmp(channel, "private-", 8) == 0;
    char sig[65] = "";
    out->len = 0;
    if (presence || private) {
        hd_buf s;
        hd_buf_init(&s);
        hd_buf_printf(&s, "%s:%s", socket_id, channel);
        if (presence)
            hd_buf_printf(&s, ":%s", channel_data);
        hd_hmac_sha256_hex(t->app_secret, strlen(t->app_secret), s.data, s.len, sig);
        hd_buf_deinit(&s);
    }
    hd_buf_printf(out, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"", channel);
    if (sig[0])
        hd_buf_printf(out, "%s:%s", t->app_key, sig);
    hd_buf_puts(out, "\"");
    if (presence) {
        hd_buf_puts(out, ",\"channel_data\":");
        hd_buf_json_string(out, channel_data, strlen(channel_data));
    }
    hd_buf_puts(out, "}}");
}

void bench_pusher_pong(bench_ws *ws)
{
    static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":{}}";
    bench_ws_send_text(ws, pong, sizeof pong - 1);
}
