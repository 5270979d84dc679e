/* soak_bad.c - the soak's misbehaving clients: slow readers, slowloris
 * request heads and bodies (here), and the garbage senders
 * (soak_garbage.c), all in one worker, each kept at a constant count or
 * rate so the pressure on the server never lets up.
 *
 * DESIGN
 * ------
 * Slow reader: connects with a 4 KiB receive buffer (set before connect(),
 * so its window never shrinks under the server), subscribes to the busy
 * channel, then stops reading (bench_ws_pause) for --slow-hold s. herald
 * should notice its outbound buffer overflowing, queue a 4100 close and
 * release the connection. The client cannot see that while it does not
 * read, so once a second it looks the server's end of its connection up in
 * /proc/net/tcp: gone, or held by no process (inode 0), means released
 * (time from the stall to then: BH_SLOW_FREED). After the hold it reads
 * everything that piled up: a 4100 close frame at the end is what the
 * server promised; a TCP close with no close frame at all (the frame was
 * dropped with what the server still held), another close code or a reset
 * are counted apart; no close within SLOW_DRAIN_US means the server was
 * still writing to it.
 *
 * Slowloris: a head (half the slots a WebSocket upgrade GET, half an API
 * POST) that is never finished, one more header byte every --trickle s;
 * or a complete signed POST head with Content-Length, the first 512 body
 * bytes, then one body byte per --trickle s, never the last. What ends it
 * is counted: the server closing, the server answering (a status), or the
 * client giving up after --bad-life s (outlived: the server had no
 * deadline). Connect-to-end times go to BH_LORIS / BH_LORIS_BODY.
 * Every slot starts again SLOT_RESTART_US after it ended.
 *
 * THREADING
 * ---------
 * Single-threaded worker process.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "soak.h"

#define SLOT_RESTART_US 100000u
#define SLOW_DRAIN_US (15 * 1000000ull)
#define SLOW_RCVBUF 4096
#define DRAIN_RCVBUF (1 << 20)
#define SLOW_SCAN_US 1000000u
#define LORIS_BODY_LEN 16384
#define LORIS_BODY_FIRST 512
#define MAX_BAD_SLOTS 1024

enum { SR_IDLE, SR_SETUP, SR_STALLED, SR_DRAINING };

typedef struct soak_bad soak_bad;

typedef struct slow_slot {
    bench_ws ws;          /* first */
    soak_bad *b;
    uint8_t state;
    bool freed;
    unsigned local_port;
    uint64_t t_start, t_stall, t_drain, next_us;
} slow_slot;

typedef struct loris_slot {
    soak_raw raw;         /* first */
    soak_bad *b;
    bool body;            /* a stalled body, else a stalled head */
    bool busy;
    uint32_t trickled;
    uint64_t next_us, next_byte_us;
} loris_slot;

struct soak_bad {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;
    bench_result res;
    uint64_t *x;
    slow_slot *slow;
    uint32_t n_slow;
    loris_slot *loris;
    uint32_t n_loris;
    soak_garbage *garbage;
    hd_buf msg, body_req;  /* body_req: the slowloris POST, head and whole body */
    size_t body_head_len;
    uint64_t t0, stop_us, last_slow_scan, started;
    bool running, done;
    uint32_t logged;
};

/* ---- slow readers ---- */

static void slow_end(slow_slot *s, uint64_t now)
{
    if (s->ws.io.fd >= 0)
        bench_ws_close(&s->ws, true);
    s->state = SR_IDLE;
    s->next_us = now + SLOT_RESTART_US;
}

static void slow_setup_fail(slow_slot *s, const char *why, int code)
{
    soak_bad *b = s->b;
    b->x[SX_SLOW_SETUP_FAIL]++;
    if (b->logged++ < 5)
        fprintf(stderr, "soak: slow reader setup: %s (%d)\n", why, code);
    slow_end(s, bench_now_us() + 900000u);
}

static void slow_stall(slow_slot *s, uint64_t now)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    s->local_port = 0;
    if (getsockname(s->ws.io.fd, (struct sockaddr *)&sa, &sl) == 0)
        s->local_port = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
                                                      : ((struct sockaddr_in6 *)&sa)->sin6_port);
    s->state = SR_STALLED;
    s->freed = false;
    s->t_stall = now;
    s->b->x[SX_SLOW_STARTED]++;
    bench_ws_pause(&s->ws, true);
}

static void slow_on_text(bench_ws *ws, const char *msg, size_t len, uint64_t now)
{
    slow_slot *s = (slow_slot *)ws;
    if (s->state != SR_SETUP)
        return; /* the drain: what piled up is only read through */
    bench_pev ev;
    bench_pusher_parse(msg, len, &ev);
    if (ev.kind == BP_ESTABLISHED) {
        char ch[96];
        soak_channel_name(s->b->o, s->b->o->channels, ch, sizeof ch);
        bench_pusher_subscribe(&s->b->msg, &s->b->o->t, ev.socket_id, ch, NULL);
        bench_ws_send_text(ws, s->b->msg.data, s->b->msg.len);
    } else if (ev.kind == BP_SUB_OK) {
        slow_stall(s, now);
    } else if (ev.kind == BP_SUB_ERROR || ev.kind == BP_ERROR) {
        slow_setup_fail(s, "subscription refused", ev.code);
    }
}

static void slow_on_close(bench_ws *ws, int code)
{
    slow_slot *s = (slow_slot *)ws;
    soak_bad *b = s->b;
    uint64_t now = bench_now_us();
    if (s->state == SR_SETUP) {
        slow_setup_fail(s, code < 0 ? strerror(-code) : "closed by the server", code);
        return;
    }
    if (code == 4100) {
        b->x[SX_SLOW_4100]++;
    } else if (code == BENCH_WS_EOF && s->state == SR_DRAINING) {
        b->x[SX_SLOW_NO_FRAME]++;
    } else {
        b->x[SX_SLOW_OTHER]++;
        if (b->logged++ < 5)
            fprintf(stderr, "soak: slow reader ended with %d (%s) instead of 4100\n", code,
                    s->state == SR_STALLED ? "while stalled" : "on draining");
    }
    slow_end(s, now);
}

static const bench_ws_ops slow_ops = {.on_text = slow_on_text, .on_close = slow_on_close};

static void slow_start(slow_slot *s, uint64_t now)
{
    s->state = SR_SETUP;
    s->t_start = now;
    s->ws.rcvbuf = SLOW_RCVBUF;
    int rc = bench_ws_open(&s->ws, &s->b->o->t);
    if (rc < 0)
        slow_setup_fail(s, strerror(-rc), rc);
}

static void slow_tick(soak_bad *b, slow_slot *s, uint64_t now)
{
    switch (s->state) {
    case SR_IDLE:
        if (b->running && now >= s->next_us)
            slow_start(s, now);
        break;
    case SR_SETUP:
        if (soak_elapsed(now, s->t_start) > BENCH_CONNECT_TIMEOUT_US)
            slow_setup_fail(s, "timeout", 0);
        break;
    case SR_STALLED:
        if (soak_elapsed(now, s->t_stall) >= (uint64_t)(b->o->soak.slow_hold * 1e6)) {
            int rcv = DRAIN_RCVBUF; /* growing the window is safe, and drains faster */
            setsockopt(s->ws.io.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
            s->state = SR_DRAINING;
            s->t_drain = now;
            bench_ws_pause(&s->ws, false);
        }
        break;
    case SR_DRAINING:
        if (soak_elapsed(now, s->t_drain) >= SLOW_DRAIN_US) {
            b->x[SX_SLOW_OPEN]++;
            slow_end(s, now);
        }
        break;
    }
}

/* /proc/net/tcp: is the server's end of a stalled reader still held? */
typedef struct held_scan {
    soak_bad *b;
    unsigned server_port;
    uint8_t *held;          /* per slow slot */
} held_scan;

static void held_row(void *arg, unsigned lport, unsigned rport, unsigned st, unsigned long inode)
{
    held_scan *h = arg;
    if (lport != h->server_port || inode == 0)
        return;
    for (uint32_t i = 0; i < h->b->n_slow; i++)
        if (h->b->slow[i].local_port == rport)
            h->held[i] = 1;
    (void)st;
}

static void slow_check_freed(soak_bad *b, uint64_t now)
{
    uint8_t held[MAX_BAD_SLOTS] = {0};
    held_scan h = {b, (unsigned)b->o->t.port, held};
    if (soak_tcp_scan(held_row, &h) < 0)
        return;
    for (uint32_t i = 0; i < b->n_slow; i++) {
        slow_slot *s = &b->slow[i];
        if (s->state != SR_STALLED || s->freed || held[i] || s->local_port == 0)
            continue;
        s->freed = true;
        b->x[SX_SLOW_FREED]++;
        bench_hist_record(&b->res.h[BH_SLOW_FREED], soak_elapsed(now, s->t_stall));
    }
}

/* ---- slowloris ---- */

static void loris_on_end(soak_raw *r, int outcome, uint64_t now)
{
    loris_slot *s = (loris_slot *)r;
    uint64_t *x = s->b->x;
    s->busy = false;
    s->next_us = now + SLOT_RESTART_US;
    if (outcome < 0)
        return; /* refused at connect: nothing was held */
    x[s->body ? (outcome ? SX_BODY_ANSWERED : SX_BODY_CLOSED) : (outcome ? SX_LORIS_ANSWERED : SX_LORIS_CLOSED)]++;
    if (outcome > 0)
        x[s->body ? SX_BODY_STATUS : SX_LORIS_STATUS] = (uint64_t)outcome;
    bench_hist_record(&s->b->res.h[s->body ? BH_LORIS_BODY : BH_LORIS], soak_elapsed(now, r->t_open_us));
}

static void loris_head(soak_bad *b, hd_buf *out)
{
    const bench_target *t = &b->o->t;
    out->len = 0;
    if (b->started % 2 == 0)
        hd_buf_printf(out, "GET /app/%s?protocol=7&client=soak HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n",
                      t->app_key, t->host, t->port);
    else
        hd_buf_printf(out, "POST /apps/%s/events HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n",
                      t->app_id, t->host, t->port);
    hd_buf_puts(out, "X-Soak-Trickle: ");
}

static void loris_start(soak_bad *b, loris_slot *s, uint64_t now)
{
    int rc;
    s->trickled = 0;
    s->next_byte_us = now + (uint64_t)(b->o->soak.trickle_s * 1e6);
    if (s->body) {
        b->x[SX_BODY_STARTED]++;
        rc = soak_raw_open(&s->raw, &b->o->t, b->body_req.data, b->body_head_len + LORIS_BODY_FIRST);
    } else {
        b->x[SX_LORIS_STARTED]++;
        loris_head(b, &b->msg);
        rc = soak_raw_open(&s->raw, &b->o->t, b->msg.data, b->msg.len);
    }
    b->started++;
    s->busy = rc == 0;
    if (rc < 0)
        s->next_us = now + 1000000u;
}

/* One more byte, never the last one of a body. */
static void loris_trickle(soak_bad *b, loris_slot *s, uint64_t now)
{
    s->next_byte_us = now + (uint64_t)(b->o->soak.trickle_s * 1e6);
    if (!s->body) {
        soak_raw_write(&s->raw, "a", 1);
        return;
    }
    size_t at = b->body_head_len + LORIS_BODY_FIRST + s->trickled;
    if (at + 1 < b->body_req.len) {
        soak_raw_write(&s->raw, b->body_req.data + at, 1);
        s->trickled++;
    }
}

static void loris_tick(soak_bad *b, loris_slot *s, uint64_t now)
{
    if (!s->busy) {
        if (b->running && now >= s->next_us)
            loris_start(b, s, now);
        return;
    }
    if (soak_elapsed(now, s->raw.t_open_us) >= (uint64_t)(b->o->soak.bad_life * 1e6)) {
        b->x[s->body ? SX_BODY_OUTLIVED : SX_LORIS_OUTLIVED]++;
        bench_hist_record(&b->res.h[s->body ? BH_LORIS_BODY : BH_LORIS], soak_elapsed(now, s->raw.t_open_us));
        soak_raw_close(&s->raw);
        s->busy = false;
        s->next_us = now + SLOT_RESTART_US;
    } else if (s->raw.connected && now >= s->next_byte_us) {
        loris_trickle(b, s, now);
    }
}

/* The signed POST a stalled body belongs to: valid, so only the missing
 * bytes stand between it and being processed. */
static void loris_body_request(soak_bad *b)
{
    hd_buf body;
    hd_buf_init(&body);
    hd_buf_printf(&body, "{\"name\":\"soak-loris\",\"channels\":[\"%s-soak-loris\"],\"data\":\"", b->o->tag);
    while (body.len < LORIS_BODY_LEN - 2)
        hd_buf_append(&body, "x", 1);
    hd_buf_puts(&body, "\"}");
    bench_api_events(&b->body_req, &b->o->t, body.data, body.len);
    b->body_head_len = b->body_req.len - body.len;
    hd_buf_deinit(&body);
}

/* ---- the worker ---- */

static bool bad_idle(soak_bad *b)
{
    for (uint32_t i = 0; i < b->n_slow; i++)
        if (b->slow[i].state != SR_IDLE)
            return false;
    for (uint32_t i = 0; i < b->n_loris; i++)
        if (b->loris[i].busy)
            return false;
    return soak_garbage_idle(b->garbage);
}

static void bad_close_all(soak_bad *b)
{
    uint64_t now = bench_now_us();
    for (uint32_t i = 0; i < b->n_slow; i++)
        if (b->slow[i].state != SR_IDLE)
            slow_end(&b->slow[i], now);
    for (uint32_t i = 0; i < b->n_loris; i++) {
        soak_raw_close(&b->loris[i].raw);
        b->loris[i].busy = false;
    }
    soak_garbage_close_all(b->garbage);
}

static void bad_tick(void *arg, uint64_t now)
{
    soak_bad *b = arg;
    if (!b->t0 || b->done)
        return;
    for (uint32_t i = 0; i < b->n_slow; i++)
        slow_tick(b, &b->slow[i], now);
    for (uint32_t i = 0; i < b->n_loris; i++)
        loris_tick(b, &b->loris[i], now);
    soak_garbage_tick(b->garbage, now, b->running);
    if (b->n_slow && now - b->last_slow_scan >= SLOW_SCAN_US) {
        b->last_slow_scan = now;
        slow_check_freed(b, now);
    }
    /* the last stalls and slowloris waits are cut short: 's' ends the run */
    if (!b->running && (bad_idle(b) || now - b->stop_us >= 1000000u)) {
        bad_close_all(b);
        b->done = true;
        bench_child_post_u64(b->c, BM_DONE, now);
    }
}

static void bad_on_cmd(void *arg, char cmd)
{
    soak_bad *b = arg;
    if (cmd == 'g' && !b->t0) {
        b->t0 = b->last_slow_scan = bench_now_us();
        b->running = true;
    } else if (cmd == 's' && b->running) {
        b->running = false;
        b->stop_us = bench_now_us();
    } else if (cmd == 'q') {
        bad_close_all(b);
        soak_post(b->c, &b->res, b->x);
        bench_loop_stop(b->loop);
    }
}

static uint32_t clamp_slots(uint32_t n)
{
    return n > MAX_BAD_SLOTS ? MAX_BAD_SLOTS : n;
}

static void bad_init(soak_bad *b, bench_child *c)
{
    const bench_soak_opts *k = &c->o->soak;
    b->loop = bench_loop_create();
    b->c = c;
    b->o = c->o;
    b->x = hd_calloc(soak_extra_len(c->o), sizeof *b->x);
    hd_buf_init(&b->msg);
    hd_buf_init(&b->body_req);
    loris_body_request(b);
    b->n_slow = clamp_slots(k->slow_readers);
    b->slow = hd_calloc(b->n_slow + 1, sizeof *b->slow);
    for (uint32_t i = 0; i < b->n_slow; i++) {
        bench_ws_init(&b->slow[i].ws, b->loop, &slow_ops);
        b->slow[i].b = b;
    }
    uint32_t heads = clamp_slots(k->loris_heads), bodies = clamp_slots(k->loris_bodies);
    b->n_loris = heads + bodies;
    b->loris = hd_calloc(b->n_loris + 1, sizeof *b->loris);
    for (uint32_t i = 0; i < b->n_loris; i++) {
        soak_raw_init(&b->loris[i].raw, b->loop, loris_on_end, NULL);
        b->loris[i].b = b;
        b->loris[i].body = i >= heads;
    }
    b->garbage = soak_garbage_create(b->loop, c->o, b->x);
}

int soak_bad_main(bench_child *c)
{
    static soak_bad b;
    bad_init(&b, c);
    bench_child_watch(c, b.loop, bad_on_cmd, &b);
    bench_loop_run(b.loop, bad_tick, &b);
    for (uint32_t i = 0; i < b.n_slow; i++)
        bench_ws_deinit(&b.slow[i].ws);
    for (uint32_t i = 0; i < b.n_loris; i++)
        soak_raw_deinit(&b.loris[i].raw);
    soak_garbage_destroy(b.garbage);
    hd_free(b.slow);
    hd_free(b.loris);
    hd_free(b.x);
    hd_buf_deinit(&b.msg);
    hd_buf_deinit(&b.body_req);
    bench_loop_destroy(b.loop);
    return 0;
}
