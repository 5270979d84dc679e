/* pool.c - herald_bench's paced pool of subscribed Pusher clients: one
 * worker's share of the scenario's N connections.
 *
 * DESIGN
 * ------
 * Worker i of n owns the clients with global index i, i+n, i+2n, ... so
 * channel assignment by global index is the same whatever the number of
 * workers. The tick opens connections at this worker's share of
 * --connect-rate, with at most --inflight handshakes outstanding. A client
 * is "settled" once every subscription it asked for (ops->subscribe) was
 * answered, or once it failed (refused, reset, subscription error, or no
 * answer within BENCH_CONNECT_TIMEOUT_US); when all are settled the worker
 * posts BM_READY. Client g connects to bench_client_target(o, g) (the
 * --targets of a cluster run, spread so that each channel has clients on
 * every target). The pool answers pusher:ping and counts handshakes,
 * subscriptions and errors; everything else goes to ops->on_event.
 *
 * THREADING
 * ---------
 * Loop thread of one worker process.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define POOL_SCAN_US 100000u

uint32_t bench_pool_share(uint32_t total, int index, int nprocs)
{
    return total / (uint32_t)nprocs + ((uint32_t)index < total % (uint32_t)nprocs ? 1 : 0);
}

static void pool_check_ready(bench_pool *p)
{
    if (!p->ready_posted && p->opened == p->n && p->settled == p->n) {
        p->ready_posted = true;
        bench_child_post(p->child, BM_READY, NULL, 0);
    }
}

static void pool_settle(bench_pool *p, bench_client *cl)
{
    if (cl->settled)
        return;
    cl->settled = 1;
    p->settled++;
    pool_check_ready(p);
}

static void pool_established(bench_pool *p, bench_client *cl, const bench_pev *ev, uint64_t now)
{
    if (cl->established)
        return;
    cl->established = 1;
    p->inflight--;
    snprintf(cl->socket_id, sizeof cl->socket_id, "%s", ev->socket_id);
    p->res->c[BC_CONN_OK]++;
    bench_hist_record(&p->res->h[BH_HANDSHAKE], now - cl->ws.t_open_us);
    cl->subs_wanted = (uint16_t)p->ops->subscribe(p, cl);
    if (cl->subs_wanted == 0)
        pool_settle(p, cl);
}

static void pool_on_error(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                          uint64_t now)
{
    if (ev->code == 4301) {
        p->res->c[BC_RATE_LIMITED]++;
    } else if (!cl->settled) {
        p->res->c[BC_SUB_FAIL]++;
        pool_settle(p, cl);
    } else {
        p->res->c[BC_ERRORS]++;
    }
    p->ops->on_event(p, cl, ev, msg, len, now);
}

static void pool_on_text(bench_ws *ws, const char *msg, size_t len, uint64_t now)
{
    bench_client *cl = (bench_client *)ws;
    bench_pool *p = cl->pool;
    bench_pev ev;
    bench_pusher_parse(msg, len, &ev);
    switch (ev.kind) {
    case BP_ESTABLISHED:
        pool_established(p, cl, &ev, now);
        break;
    case BP_PING:
        bench_pusher_pong(ws);
        break;
    case BP_SUB_OK:
        p->res->c[BC_SUB_OK]++;
        if (++cl->subs_ok >= cl->subs_wanted)
            pool_settle(p, cl);
        break;
    case BP_SUB_ERROR:
        p->res->c[BC_SUB_FAIL]++;
        pool_settle(p, cl);
        break;
    case BP_ERROR:
        pool_on_error(p, cl, &ev, msg, len, now);
        break;
    default:
        p->ops->on_event(p, cl, &ev, msg, len, now);
    }
}

static void pool_fail(bench_pool *p, bench_client *cl)
{
    if (!cl->established) {
        cl->established = 1; /* no longer in flight */
        p->inflight--;
        p->res->c[BC_CONN_FAIL]++;
    }
    pool_settle(p, cl);
}

static void pool_on_close(bench_ws *ws, int code)
{
    bench_client *cl = (bench_client *)ws;
    bench_pool *p = cl->pool;
    if (p->dropping)
        return;
    if (p->logged++ < 5)
        fprintf(stderr, "herald_bench: client %u closed (%s): %s %d\n", cl->gidx,
                cl->settled ? "established" : "connecting", code < 0 ? strerror(-code) : "close code", code);
    if (cl->settled && cl->established)
        p->res->c[BC_CLOSED]++;
    pool_fail(p, cl);
}

static const bench_ws_ops pool_ws_ops = {.on_text = pool_on_text, .on_close = pool_on_close};

void bench_pool_init(bench_pool *p, bench_loop *l, bench_child *c, bench_result *res, const bench_pool_ops *ops,
                     void *user)
{
    memset(p, 0, sizeof *p);
    p->loop = l;
    p->o = c->o;
    p->child = c;
    p->res = res;
    p->ops = ops;
    p->user = user;
    p->n = bench_pool_share(c->o->conns, c->index, c->nprocs);
    p->rate = c->o->connect_rate / c->nprocs;
    p->cl = hd_calloc(p->n ? p->n : 1, sizeof *p->cl);
    for (uint32_t i = 0; i < p->n; i++) {
        bench_ws_init(&p->cl[i].ws, l, &pool_ws_ops);
        p->cl[i].pool = p;
        p->cl[i].gidx = i * (uint32_t)c->nprocs + (uint32_t)c->index;
    }
}

void bench_pool_deinit(bench_pool *p)
{
    for (uint32_t i = 0; i < p->n; i++)
        bench_ws_deinit(&p->cl[i].ws);
    hd_free(p->cl);
    p->cl = NULL;
}

void bench_pool_start(bench_pool *p, uint64_t now_us)
{
    p->opened = p->settled = p->inflight = 0;
    p->ready_posted = p->dropping = false;
    p->t0_us = p->last_scan_us = now_us;
    for (uint32_t i = 0; i < p->n; i++) {
        bench_client *cl = &p->cl[i];
        cl->subs_wanted = cl->subs_ok = 0;
        cl->established = cl->settled = 0;
        cl->socket_id[0] = '\0';
    }
    pool_check_ready(p);
}

static void pool_open_next(bench_pool *p)
{
    bench_client *cl = &p->cl[p->opened++];
    p->inflight++;
    int rc = bench_ws_open(&cl->ws, bench_client_target(p->o, cl->gidx));
    if (rc < 0) {
        if (p->logged++ < 5)
            fprintf(stderr, "herald_bench: connect: %s\n", strerror(-rc));
        pool_fail(p, cl);
    }
}

/* Abort clients that did not settle in time. */
static void pool_scan(bench_pool *p, uint64_t now)
{
    for (uint32_t i = 0; i < p->opened; i++) {
        bench_client *cl = &p->cl[i];
        if (!cl->settled && now > cl->ws.t_open_us + BENCH_CONNECT_TIMEOUT_US) {
            bench_ws_abort(&cl->ws);
            if (cl->established)
                p->res->c[BC_SUB_FAIL]++;
            pool_fail(p, cl);
        }
    }
}

int bench_pool_reopen(bench_pool *p, bench_client *cl)
{
    if (cl->ws.io.fd >= 0 || p->dropping)
        return 0;
    if (cl->settled) {
        cl->settled = 0;
        p->settled--;
    }
    cl->established = 0;
    cl->subs_wanted = cl->subs_ok = 0;
    cl->socket_id[0] = '\0';
    p->inflight++;
    int rc = bench_ws_open(&cl->ws, bench_client_target(p->o, cl->gidx));
    if (rc < 0)
        pool_fail(p, cl);
    return rc;
}

/* Before the pool is ready: open due connections. Reopened clients
 * (bench_pool_reopen) need only the timeout scan. */
static void pool_open_due(bench_pool *p, uint64_t now_us)
{
    uint64_t due = p->n;
    if (p->rate > 0) {
        double d = (double)(now_us - p->t0_us) * p->rate / 1e6 + 1;
        due = d < (double)p->n ? (uint64_t)d : p->n;
    }
    while (p->opened < due && p->inflight < p->o->inflight)
        pool_open_next(p);
}

void bench_pool_tick(bench_pool *p, uint64_t now_us)
{
    if (p->dropping)
        return;
    if (!p->ready_posted)
        pool_open_due(p, now_us);
    if (now_us - p->last_scan_us >= POOL_SCAN_US) {
        p->last_scan_us = now_us;
        pool_scan(p, now_us);
    }
}

uint32_t bench_pool_drop(bench_pool *p, bool rst)
{
    uint32_t n = 0;
    p->dropping = true;
    for (uint32_t i = 0; i < p->n; i++) {
        if (p->cl[i].ws.io.fd >= 0) {
            bench_ws_close(&p->cl[i].ws, rst);
            n++;
        }
    }
    return n;
}
