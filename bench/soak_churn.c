/* soak_churn.c - the soak's churn: --churn-rate connect -> subscribe ->
 * disconnect cycles per second, a --rst-share of them ending with an RST
 * and the rest with a close handshake.
 *
 * DESIGN
 * ------
 * Cycle n joins one of the steady presence channels (user "c<n>", so the
 * steady members there see member_added / member_removed all the time) and
 * one steady public channel, waits for both subscription_succeeded, and
 * leaves. Cycles start at the rate whatever the server's speed, on the
 * first free slot; with every slot busy a cycle stays due for up to a
 * second and is then dropped and counted as backlog. Whether a cycle ends
 * with RST is decided by an accumulator, so the share is exact and the two
 * kinds interleave. A cycle that fails (refused, error, closed early, 15 s
 * without progress) is counted and its slot freed.
 *
 * THREADING
 * ---------
 * Single-threaded worker process.
 */
#include <stdio.h>
#include <string.h>

#include "soak.h"

#define CHURN_MIN_SLOTS 16
#define CHURN_MAX_SLOTS 1024
#define CHURN_DRAIN_US (5 * 1000000ull)

enum { CY_IDLE, CY_OPENING, CY_SUBSCRIBING, CY_CLOSING };

typedef struct soak_churn soak_churn;
typedef struct cy_slot {
    bench_ws ws;        /* first */
    soak_churn *w;
    uint8_t state, subs_ok, subs_wanted;
    uint64_t n, t_start;
} cy_slot;

struct soak_churn {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;
    bench_result res;
    uint64_t *x;
    cy_slot *slots;
    uint32_t n_slots;
    uint64_t t0, started, dropped, stop_us, last_scan;
    double rst_acc;
    bool running, done;
    hd_buf msg;
    uint32_t logged;
};

static void cy_idle(cy_slot *s)
{
    s->state = CY_IDLE;
}

static void cy_fail(cy_slot *s, const char *why, int code)
{
    soak_churn *w = s->w;
    w->x[SX_CHURN_FAIL]++;
    if (w->logged++ < 5)
        fprintf(stderr, "soak: churn cycle %llu: %s (%d)\n", (unsigned long long)s->n, why, code);
    bench_ws_abort(&s->ws);
    cy_idle(s);
}

static void cy_done(cy_slot *s, uint64_t now)
{
    s->w->x[SX_CHURN_CYCLES]++;
    bench_hist_record(&s->w->res.h[BH_REQUEST], now - s->t_start);
    cy_idle(s);
}

/* One presence and one public steady channel, chosen by cycle number. */
static void cy_subscribe(cy_slot *s, const char *socket_id)
{
    soak_churn *w = s->w;
    uint32_t groups = w->o->channels / 3;
    char ch[96], data[128], user[32];
    s->subs_wanted = 0;
    if (groups > 0) {
        snprintf(user, sizeof user, "c%llu", (unsigned long long)s->n);
        soak_presence_data(data, sizeof data, user);
        soak_channel_name(w->o, 3 * (uint32_t)(s->n % groups) + SK_PRESENCE, ch, sizeof ch);
        bench_pusher_subscribe(&w->msg, &w->o->t, socket_id, ch, data);
        bench_ws_send_text(&s->ws, w->msg.data, w->msg.len);
        s->subs_wanted++;
    }
    soak_channel_name(w->o, groups > 0 ? 3 * (uint32_t)(s->n / 3 % groups) : 0, ch, sizeof ch);
    bench_pusher_subscribe(&w->msg, &w->o->t, socket_id, ch, NULL);
    bench_ws_send_text(&s->ws, w->msg.data, w->msg.len);
    s->subs_wanted++;
}

static void cy_leave(cy_slot *s, uint64_t now)
{
    soak_churn *w = s->w;
    w->rst_acc += w->o->soak.rst_share;
    if (w->rst_acc >= 1.0) {
        w->rst_acc -= 1.0;
        w->x[SX_CHURN_RST]++;
        bench_ws_close(&s->ws, true);
        cy_done(s, now);
        return;
    }
    s->state = CY_CLOSING;
    bench_ws_close(&s->ws, false);
}

static void cy_on_text(bench_ws *ws, const char *msg, size_t len, uint64_t now)
{
    cy_slot *s = (cy_slot *)ws;
    bench_pev ev;
    bench_pusher_parse(msg, len, &ev);
    if (ev.kind == BP_PING) {
        bench_pusher_pong(ws);
    } else if (ev.kind == BP_ESTABLISHED && s->state == CY_OPENING) {
        s->w->res.c[BC_CONN_OK]++;
        bench_hist_record(&s->w->res.h[BH_HANDSHAKE], now - s->t_start);
        s->state = CY_SUBSCRIBING;
        cy_subscribe(s, ev.socket_id);
    } else if (ev.kind == BP_SUB_OK && s->state == CY_SUBSCRIBING) {
        if (++s->subs_ok == s->subs_wanted)
            cy_leave(s, now);
    } else if ((ev.kind == BP_SUB_ERROR || ev.kind == BP_ERROR) && s->state == CY_SUBSCRIBING) {
        cy_fail(s, "subscription refused", ev.code);
    }
}

static void cy_on_close(bench_ws *ws, int code)
{
    cy_slot *s = (cy_slot *)ws;
    if (s->state == CY_CLOSING)
        cy_done(s, bench_now_us());
    else if (s->state != CY_IDLE)
        cy_fail(s, code < 0 ? strerror(-code) : "closed by the server", code);
}

static const bench_ws_ops cy_ws_ops = {.on_text = cy_on_text, .on_close = cy_on_close};

static void cy_start(soak_churn *w, cy_slot *s, uint64_t now)
{
    s->n = w->started++;
    s->t_start = now;
    s->subs_ok = 0;
    s->state = CY_OPENING;
    int rc = bench_ws_open(&s->ws, &w->o->t);
    if (rc < 0)
        cy_fail(s, strerror(-rc), rc);
}

static cy_slot *cy_free_slot(soak_churn *w)
{
    for (uint32_t i = 0; i < w->n_slots; i++)
        if (w->slots[i].state == CY_IDLE)
            return &w->slots[i];
    return NULL;
}

static void churn_pace(soak_churn *w, uint64_t now)
{
    double rate = w->o->soak.churn_rate;
    uint64_t due = (uint64_t)((double)(now - w->t0) * rate / 1e6) + 1;
    uint64_t done = w->started + w->dropped, cap = (uint64_t)rate + 1;
    if (due > done + cap) {
        w->dropped += due - done - cap;
        w->x[SX_CHURN_BACKLOG] += due - done - cap;
    }
    cy_slot *s;
    while (w->started + w->dropped < due && (s = cy_free_slot(w)))
        cy_start(w, s, now);
}

/* Times out stuck cycles; true when every slot is idle. */
static bool churn_scan(soak_churn *w, uint64_t now)
{
    bool idle = true;
    for (uint32_t i = 0; i < w->n_slots; i++) {
        cy_slot *s = &w->slots[i];
        if (s->state != CY_IDLE && now > s->t_start + BENCH_CONNECT_TIMEOUT_US)
            cy_fail(s, "timeout", 0);
        idle = idle && s->state == CY_IDLE;
    }
    return idle;
}

static void churn_tick(void *arg, uint64_t now)
{
    soak_churn *w = arg;
    if (!w->t0 || w->done)
        return;
    if (w->running && w->o->soak.churn_rate > 0)
        churn_pace(w, now);
    if (now - w->last_scan < 100000u)
        return;
    w->last_scan = now;
    bool idle = churn_scan(w, now);
    if (!w->running && (idle || now >= w->stop_us + CHURN_DRAIN_US)) {
        w->done = true;
        bench_child_post_u64(w->c, BM_DONE, now);
    }
}

static void churn_on_cmd(void *arg, char cmd)
{
    soak_churn *w = arg;
    if (cmd == 'g' && !w->t0) {
        w->t0 = w->last_scan = bench_now_us();
        w->running = true;
    } else if (cmd == 's' && w->running) {
        w->running = false;
        w->stop_us = bench_now_us();
    } else if (cmd == 'q') {
        for (uint32_t i = 0; i < w->n_slots; i++)
            bench_ws_close(&w->slots[i].ws, true);
        soak_post(w->c, &w->res, w->x);
        bench_loop_stop(w->loop);
    }
}

int soak_churn_main(bench_child *c)
{
    static soak_churn w;
    double want = c->o->soak.churn_rate;
    w.loop = bench_loop_create();
    w.c = c;
    w.o = c->o;
    w.x = hd_calloc(soak_extra_len(c->o), sizeof *w.x);
    w.n_slots = want < CHURN_MIN_SLOTS ? CHURN_MIN_SLOTS : want > CHURN_MAX_SLOTS ? CHURN_MAX_SLOTS : (uint32_t)want;
    w.slots = hd_calloc(w.n_slots, sizeof *w.slots);
    hd_buf_init(&w.msg);
    for (uint32_t i = 0; i < w.n_slots; i++) {
        bench_ws_init(&w.slots[i].ws, w.loop, &cy_ws_ops);
        w.slots[i].w = &w;
    }
    bench_child_watch(c, w.loop, churn_on_cmd, &w);
    bench_loop_run(w.loop, churn_tick, &w);
    for (uint32_t i = 0; i < w.n_slots; i++)
        bench_ws_deinit(&w.slots[i].ws);
    hd_free(w.slots);
    hd_buf_deinit(&w.msg);
    hd_free(w.x);
    bench_loop_destroy(w.loop);
    return 0;
}
