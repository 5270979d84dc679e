/* soak_garbage.c - the soak's garbage senders: WebSocket connections that
 * send one malformed frame or message once established, and TCP
 * connections that send random bytes instead of an HTTP request, each at a
 * steady rate; what the server did about each is counted.
 *
 * DESIGN
 * ------
 * A WebSocket garbage connection goes through the normal upgrade, waits for
 * pusher:connection_established, sends the garbage of its kind (kinds take
 * turns, soak.h) and watches for GARBAGE_WAIT_US: a pusher:error reply, a
 * close frame (its code; the client answers it as it should), and the
 * server closing the TCP connection (after a close frame or not: 1006)
 * are counted separately, so a close frame the server never follows up
 * with a TCP close shows; no reaction at all is "ignored". Frames are
 * built by hand here
 * because the point is to break the rules bench_ws_send_text keeps. An
 * HTTP garbage connection sends 16..512 random bytes ending with an empty
 * line and waits as long for an answer (4xx or other) or a close.
 * Connections start at their rate on free slots; when every slot is still
 * waiting the start is skipped and counted. Whatever is open when the wait
 * is over is reset.
 *
 * THREADING
 * ---------
 * Loop thread of the bad worker.
 */
#include <stdio.h>
#include <string.h>

#include "soak.h"

#define GARBAGE_SLOTS 64
#define GARBAGE_WAIT_US (10 * 1000000ull)
#define OVERSIZE_SENT (128 * 1024) /* over herald's default max_message_size_kb (100) */

typedef struct gws_slot {
    bench_ws ws;          /* first */
    soak_garbage *g;
    int kind;
    bool busy, sent, replied;
    uint64_t t_start, t_sent;
} gws_slot;

typedef struct ghttp_slot {
    soak_raw raw;         /* first */
    soak_garbage *g;
    bool busy;
} ghttp_slot;

struct soak_garbage {
    bench_loop *loop;
    const bench_opts *o;
    uint64_t *x;
    gws_slot ws[GARBAGE_SLOTS];
    ghttp_slot http[GARBAGE_SLOTS];
    uint64_t t0, ws_started, http_started;
    uint32_t logged;
};

const char *soak_garbage_name(int kind)
{
    static const char *const names[SG__COUNT] = {
        "reserved opcode", "unmasked frame", "2^40 declared", "2^40, 128 KiB sent", "RSV bits", "invalid UTF-8",
        "fragmented ping",
        "invalid JSON", "unknown event",
    };
    return kind >= 0 && kind < SG__COUNT ? names[kind] : "?";
}

/* ---- WebSocket garbage ---- */

/* One frame with a random mask (or none), from raw header bytes. */
static void frame(hd_buf *out, uint8_t b0, bool masked, const void *payload, size_t len, uint64_t declared)
{
    uint8_t head[14];
    size_t h = 0;
    head[h++] = b0;
    uint8_t m = masked ? 0x80 : 0;
    if (declared < 126) {
        head[h++] = (uint8_t)(m | declared);
    } else if (declared < 65536) {
        head[h++] = m | 126;
        head[h++] = (uint8_t)(declared >> 8);
        head[h++] = (uint8_t)declared;
    } else {
        head[h++] = m | 127;
        for (int i = 7; i >= 0; i--)
            head[h++] = (uint8_t)(declared >> (8 * i));
    }
    uint32_t key = (uint32_t)bench_rand();
    uint8_t *mask = (uint8_t *)&key;
    if (masked) {
        memcpy(head + h, mask, 4);
        h += 4;
    }
    hd_buf_append(out, head, h);
    hd_buf_reserve(out, len);
    uint8_t *dst = (uint8_t *)out->data + out->len;
    for (size_t i = 0; i < len; i++)
        dst[i] = ((const uint8_t *)payload)[i] ^ (masked ? mask[i & 3] : 0);
    out->len += len;
    out->data[out->len] = '\0';
}

static void gws_send(gws_slot *s)
{
    static const char bad_json[] = "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":";
    static const char unknown[] = "{\"event\":\"soak:unknown\",\"data\":{}}";
    static const char bad_utf8[] = "\xff\xfe\xc0\xaf";
    hd_buf out;
    hd_buf_init(&out);
    switch (s->kind) {
    case SG_OPCODE: frame(&out, 0x83, true, "soak", 4, 4); break;
    case SG_UNMASKED: frame(&out, 0x81, false, "{}", 2, 2); break;
    case SG_DECLARED: frame(&out, 0x81, true, "soak-soak-soak-s", 16, 1ull << 40); break;
    case SG_OVERSIZE: {
        char *big = hd_malloc(OVERSIZE_SENT);
        memset(big, 'x', OVERSIZE_SENT);
        frame(&out, 0x81, true, big, OVERSIZE_SENT, 1ull << 40);
        hd_free(big);
        break;
    }
    case SG_RSV: frame(&out, 0xf1, true, "{}", 2, 2); break;
    case SG_BAD_UTF8: frame(&out, 0x81, true, bad_utf8, 4, 4); break;
    case SG_CTRL_FRAG: frame(&out, 0x09, true, "soak", 4, 4); break;
    case SG_BAD_JSON: frame(&out, 0x81, true, bad_json, sizeof bad_json - 1, sizeof bad_json - 1); break;
    default: frame(&out, 0x81, true, unknown, sizeof unknown - 1, sizeof unknown - 1); break;
    }
    bench_ws_send_raw(&s->ws, out.data, out.len);
    hd_buf_deinit(&out);
}

static void gws_end(gws_slot *s)
{
    if (s->ws.io.fd >= 0)
        bench_ws_close(&s->ws, true);
    s->busy = false;
}

static void gws_on_text(bench_ws *ws, const char *msg, size_t len, uint64_t now)
{
    gws_slot *s = (gws_slot *)ws;
    bench_pev ev;
    bench_pusher_parse(msg, len, &ev);
    if (ev.kind == BP_ESTABLISHED && !s->sent) {
        s->sent = true;
        s->t_sent = now;
        s->g->x[SX_GWS(s->kind, GW_STARTED)]++;
        gws_send(s);
    } else if (ev.kind == BP_ERROR && s->sent && !s->replied) {
        s->replied = true;
        s->g->x[SX_GWS(s->kind, GW_ERROR)]++;
    }
}

static void gws_on_close(bench_ws *ws, int code)
{
    gws_slot *s = (gws_slot *)ws;
    if (!s->sent) {
        s->g->x[SX_GWS_SETUP_FAIL]++;
    } else {
        s->g->x[SX_GWS(s->kind, GW_CLOSED)]++;
        s->g->x[SX_GWS(s->kind, GW_CODE)] = code > 0 ? (uint64_t)code : 1006;
    }
    s->busy = false;
}

/* The wait is over with the connection still open. */
static void gws_expire(soak_garbage *g, gws_slot *s)
{
    if (s->ws.state == BWS_CLOSING && s->ws.close_code) {
        g->x[SX_GWS(s->kind, GW_HALF)]++;
        g->x[SX_GWS(s->kind, GW_CODE)] = (uint64_t)s->ws.close_code;
    } else if (!s->replied) {
        g->x[SX_GWS(s->kind, GW_IGNORED)]++;
    }
    gws_end(s);
}

static const bench_ws_ops gws_ops = {.on_text = gws_on_text, .on_close = gws_on_close};

static void gws_start(soak_garbage *g, uint64_t now)
{
    for (int i = 0; i < GARBAGE_SLOTS; i++) {
        gws_slot *s = &g->ws[i];
        if (s->busy)
            continue;
        s->kind = (int)(g->ws_started % SG__COUNT);
        s->busy = true;
        s->sent = s->replied = false;
        s->t_start = now;
        if (bench_ws_open(&s->ws, &g->o->t) < 0) {
            g->x[SX_GWS_SETUP_FAIL]++;
            s->busy = false;
        }
        return;
    }
    g->x[SX_GWS_SKIPPED]++;
}

static void gws_scan(soak_garbage *g, uint64_t now)
{
    for (int i = 0; i < GARBAGE_SLOTS; i++) {
        gws_slot *s = &g->ws[i];
        if (!s->busy)
            continue;
        if (s->sent && soak_elapsed(now, s->t_sent) >= GARBAGE_WAIT_US) {
            gws_expire(g, s);
        } else if (!s->sent && soak_elapsed(now, s->t_start) >= BENCH_CONNECT_TIMEOUT_US) {
            g->x[SX_GWS_SETUP_FAIL]++;
            gws_end(s);
        }
    }
}

/* ---- HTTP garbage ---- */

static void ghttp_on_end(soak_raw *r, int outcome, uint64_t now)
{
    ghttp_slot *s = (ghttp_slot *)r;
    uint64_t *x = s->g->x;
    (void)now;
    s->busy = false;
    if (outcome <= 0)
        x[SX_GHTTP_CLOSED]++; /* a refused connect is counted with the closes */
    else if (outcome >= 400 && outcome < 500)
        x[SX_GHTTP_4XX]++;
    else
        x[SX_GHTTP_OTHER]++;
}

static void ghttp_start(soak_garbage *g, uint64_t now)
{
    uint8_t bytes[520];
    size_t n = 16 + (size_t)(bench_rand() % 497);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = bench_rand();
        memcpy(bytes + i, &r, n - i < 8 ? n - i : 8);
    }
    memcpy(bytes + n, "\r\n\r\n", 4);
    for (int i = 0; i < GARBAGE_SLOTS; i++) {
        ghttp_slot *s = &g->http[i];
        if (s->busy)
            continue;
        s->busy = true;
        g->x[SX_GHTTP_STARTED]++;
        if (soak_raw_open(&s->raw, &g->o->t, bytes, n + 4) < 0) {
            s->busy = false;
            g->x[SX_GHTTP_CLOSED]++;
        }
        return;
    }
    g->x[SX_GHTTP_SKIPPED]++;
    (void)now;
}

static void ghttp_scan(soak_garbage *g, uint64_t now)
{
    for (int i = 0; i < GARBAGE_SLOTS; i++) {
        ghttp_slot *s = &g->http[i];
        if (s->busy && soak_elapsed(now, s->raw.t_open_us) >= GARBAGE_WAIT_US) {
            g->x[SX_GHTTP_IGNORED]++;
            soak_raw_close(&s->raw);
            s->busy = false;
        }
    }
}

/* ---- the module ---- */

soak_garbage *soak_garbage_create(bench_loop *l, const bench_opts *o, uint64_t *x)
{
    soak_garbage *g = hd_calloc(1, sizeof *g);
    g->loop = l;
    g->o = o;
    g->x = x;
    for (int i = 0; i < GARBAGE_SLOTS; i++) {
        bench_ws_init(&g->ws[i].ws, l, &gws_ops);
        g->ws[i].g = g;
        soak_raw_init(&g->http[i].raw, l, ghttp_on_end, NULL);
        g->http[i].g = g;
    }
    return g;
}

void soak_garbage_tick(soak_garbage *g, uint64_t now, bool running)
{
    if (!g->t0)
        g->t0 = now;
    double el = (double)(now - g->t0) / 1e6;
    uint64_t ws_due = (uint64_t)(el * g->o->soak.garbage_ws_rate);
    uint64_t http_due = (uint64_t)(el * g->o->soak.garbage_http_rate);
    for (; running && g->ws_started < ws_due; g->ws_started++)
        gws_start(g, now);
    for (; running && g->http_started < http_due; g->http_started++)
        ghttp_start(g, now);
    gws_scan(g, now);
    ghttp_scan(g, now);
}

bool soak_garbage_idle(const soak_garbage *g)
{
    for (int i = 0; i < GARBAGE_SLOTS; i++)
        if (g->ws[i].busy || g->http[i].busy)
            return false;
    return true;
}

void soak_garbage_close_all(soak_garbage *g)
{
    for (int i = 0; i < GARBAGE_SLOTS; i++) {
        if (g->ws[i].busy)
            gws_end(&g->ws[i]);
        if (g->http[i].busy) {
            soak_raw_close(&g->http[i].raw);
            g->http[i].busy = false;
        }
    }
}

void soak_garbage_destroy(soak_garbage *g)
{
    if (!g)
        return;
    for (int i = 0; i < GARBAGE_SLOTS; i++) {
        bench_ws_deinit(&g->ws[i].ws);
        soak_raw_deinit(&g->http[i].raw);
    }
    hd_free(g);
}
