/* scen_client_events.c - the `client-events` scenario: N clients on C
 * private channels, each sending client events at --rate per second for
 * --duration s; relay latency, losses, duplicates and pusher:error 4301
 * (rate limit) replies.
 *
 * DESIGN
 * ------
 * Client g subscribes to private-<tag>-ce-<g % C>, signing the auth
 * locally (HMAC-SHA256 of "socket_id:channel" with the app secret), so its
 * channel has members(c) = the clients with that remainder, and slot g / C
 * within it. The worker's tick sends due events round-robin over its
 * clients, so each client sends once per 1/rate s, staggered. An event's
 * data object is {"seq":<per sender>,"ts":<mono us>,"from":g,"pad":"..."}.
 * The server relays it to the other members; a receiver records now - ts
 * and sets bit seq in its bit set for that sender slot (duplicate if set).
 * Senders add members(c) - 1 to the expected deliveries for every event,
 * and take it back when the server answers 4301 (that event was refused);
 * lost = expected - distinct deliveries, over all workers.
 *
 * THREADING
 * ---------
 * Parent and workers are single-threaded processes.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define CE_EVENT "client-bench"
#define CE_QUIET_US 300000u
#define CE_FINISH_MAX_US (20 * 1000000ull)

typedef struct ce_client {
    char chan[64];
    uint64_t seq;
    bench_bitset *from;   /* per sender slot in the channel */
    uint32_t nslots;
} ce_client;

typedef struct ce_worker {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;
    bench_result res;
    bench_pool pool;
    ce_client *cc;
    hd_buf msg;
    uint64_t t0, t_end, sent, finish_us;
    bool running, finishing, done;
} ce_worker;

static uint32_t ce_members(const bench_opts *o, uint32_t ch)
{
    return o->conns / o->channels + (ch < o->conns % o->channels ? 1 : 0);
}

static int ce_subscribe(bench_pool *p, bench_client *cl)
{
    ce_worker *w = p->user;
    bench_pusher_subscribe(&w->msg, &p->o->t, cl->socket_id, w->cc[cl - p->cl].chan, NULL);
    bench_ws_send_text(&cl->ws, w->msg.data, w->msg.len);
    return 1;
}

static void ce_on_relay(ce_worker *w, ce_client *cc, const char *msg, size_t len, uint64_t now)
{
    uint64_t seq, ts, from;
    if (!bench_pusher_int(msg, len, "seq", &seq) || !bench_pusher_int(msg, len, "ts", &ts) ||
        !bench_pusher_int(msg, len, "from", &from)) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    uint32_t slot = (uint32_t)(from / w->o->channels);
    if (slot >= cc->nslots) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    w->res.c[BC_MSGS]++;
    if (bench_bitset_set(&cc->from[slot], seq))
        w->res.c[BC_DUPS]++;
    bench_hist_record(&w->res.h[BH_LATENCY], now > ts ? now - ts : 0);
    w->res.c[BC_LAST_US] = now;
}

static void ce_on_event(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                        uint64_t now_us)
{
    ce_worker *w = p->user;
    ce_client *cc = &w->cc[cl - p->cl];
    if (ev->kind == BP_ERROR && ev->code == 4301) {
        uint32_t m = ce_members(w->o, cl->gidx % w->o->channels);
        w->res.c[BC_EXPECTED] -= m - 1;
        return;
    }
    if (ev->kind != BP_OTHER || ev->event_len != strlen(CE_EVENT) || memcmp(ev->event, CE_EVENT, ev->event_len))
        return;
    if (!ev->channel || ev->channel_len != strlen(cc->chan) || memcmp(ev->channel, cc->chan, ev->channel_len)) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    ce_on_relay(w, cc, msg, len, now_us);
}

static const bench_pool_ops ce_pool_ops = {.subscribe = ce_subscribe, .on_event = ce_on_event};

static void ce_send(ce_worker *w, bench_client *cl, uint64_t now)
{
    ce_client *cc = &w->cc[cl - w->pool.cl];
    if (!cl->subs_ok || cl->ws.state != BWS_OPEN)
        return;
    w->msg.len = 0;
    hd_buf_printf(&w->msg,
                  "{\"event\":\"" CE_EVENT "\",\"channel\":\"%s\",\"data\":{\"seq\":%llu,\"ts\":%llu,\"from\":%u,"
                  "\"pad\":\"",
                  cc->chan, (unsigned long long)cc->seq++, (unsigned long long)now, cl->gidx);
    for (uint32_t i = 0; i < w->o->payload; i++)
        hd_buf_append(&w->msg, "x", 1);
    hd_buf_puts(&w->msg, "\"}}");
    bench_ws_send_text(&cl->ws, w->msg.data, w->msg.len);
    w->res.c[BC_SENT]++;
    w->res.c[BC_EXPECTED] += ce_members(w->o, cl->gidx % w->o->channels) - 1;
}

static void ce_pace(ce_worker *w, uint64_t now)
{
    if (now >= w->t_end) {
        w->running = false;
        w->finishing = true;
        w->finish_us = now;
        return;
    }
    double per_s = w->o->rate * (double)w->pool.n;
    uint64_t due = (uint64_t)((double)(now - w->t0) * per_s / 1e6) + 1;
    while (w->sent < due && w->pool.n > 0) {
        ce_send(w, &w->pool.cl[w->sent % w->pool.n], now);
        w->sent++;
    }
}

static void ce_tick(void *arg, uint64_t now)
{
    ce_worker *w = arg;
    bench_pool_tick(&w->pool, now);
    if (w->running)
        ce_pace(w, now);
    if (!w->finishing || w->done)
        return;
    uint64_t last = w->res.c[BC_LAST_US] > w->finish_us ? w->res.c[BC_LAST_US] : w->finish_us;
    if (now - last >= CE_QUIET_US || now - w->finish_us >= CE_FINISH_MAX_US) {
        w->done = true;
        bench_child_post_u64(w->c, BM_DONE, w->res.c[BC_LAST_US]);
    }
}

static void ce_on_cmd(void *arg, char cmd)
{
    ce_worker *w = arg;
    if (cmd == 'g' && !w->t0) {
        w->t0 = bench_now_us();
        w->t_end = w->t0 + (uint64_t)(w->o->duration * 1e6);
        w->running = true;
    } else if (cmd == 'q') {
        for (uint32_t i = 0; i < w->pool.n; i++)
            for (uint32_t s = 0; s < w->cc[i].nslots; s++)
                w->res.c[BC_DISTINCT] += w->cc[i].from[s].count;
        bench_pool_drop(&w->pool, true);
        bench_child_post_result(w->c, &w->res, NULL, 0);
        bench_loop_stop(w->loop);
    }
}

static void ce_clients_init(ce_worker *w)
{
    const bench_opts *o = w->o;
    uint32_t slots = (o->conns + o->channels - 1) / o->channels;
    w->cc = hd_calloc(w->pool.n + 1, sizeof *w->cc);
    for (uint32_t i = 0; i < w->pool.n; i++) {
        snprintf(w->cc[i].chan, sizeof w->cc[i].chan, "private-%s-ce-%u", o->tag, w->pool.cl[i].gidx % o->channels);
        w->cc[i].nslots = slots;
        w->cc[i].from = hd_calloc(slots, sizeof *w->cc[i].from);
    }
}

static int ce_worker_main(bench_child *c)
{
    static ce_worker w;
    w.loop = bench_loop_create();
    w.c = c;
    w.o = c->o;
    hd_buf_init(&w.msg);
    bench_pool_init(&w.pool, w.loop, c, &w.res, &ce_pool_ops, &w);
    ce_clients_init(&w);
    bench_child_watch(c, w.loop, ce_on_cmd, &w);
    bench_pool_start(&w.pool, bench_now_us());
    bench_loop_run(w.loop, ce_tick, &w);
    bench_pool_deinit(&w.pool);
    for (uint32_t i = 0; i < w.pool.n; i++) {
        for (uint32_t s = 0; s < w.cc[i].nslots; s++)
            bench_bitset_free(&w.cc[i].from[s]);
        hd_free(w.cc[i].from);
    }
    hd_free(w.cc);
    hd_buf_deinit(&w.msg);
    bench_loop_destroy(w.loop);
    return 0;
}

static void ce_report(const bench_opts *o, int procs, const bench_result *r, const bench_server_sample s[2],
                      uint64_t t_go)
{
    bench_report rep;
    double win_s = r->c[BC_LAST_US] > t_go ? (double)(r->c[BC_LAST_US] - t_go) / 1e6 : 0;
    uint64_t lost = r->c[BC_EXPECTED] > r->c[BC_DISTINCT] ? r->c[BC_EXPECTED] - r->c[BC_DISTINCT] : 0;
    bench_report_begin(&rep, o);
    bench_report_section(&rep, "load");
    bench_report_int(&rep, "clients", o->conns, "clients");
    bench_report_int(&rep, "channels", o->channels, "private channels");
    bench_report_int(&rep, "procs", (uint64_t)procs, "client processes");
    bench_report_num(&rep, "rate_per_client", o->rate, "events/s", "client events per client");
    bench_report_num(&rep, "duration_s", o->duration, "s", "duration");
    bench_report_section(&rep, "setup");
    bench_report_int(&rep, "conn_ok", r->c[BC_CONN_OK], "clients connected");
    bench_report_int(&rep, "conn_fail", r->c[BC_CONN_FAIL], "connections failed");
    bench_report_int(&rep, "sub_fail", r->c[BC_SUB_FAIL], "subscriptions failed");
    bench_report_section(&rep, "relay");
    bench_report_int(&rep, "sent", r->c[BC_SENT], "client events sent");
    bench_report_int(&rep, "rate_limited", r->c[BC_RATE_LIMITED], "pusher:error 4301 replies");
    bench_report_int(&rep, "other_errors", r->c[BC_ERRORS], "other errors / malformed");
    bench_report_int(&rep, "deliveries", r->c[BC_MSGS], "relayed deliveries");
    bench_report_num(&rep, "deliveries_per_s", win_s > 0 ? (double)r->c[BC_MSGS] / win_s : 0, "msg/s",
                     "deliveries per second");
    bench_report_int(&rep, "expected", r->c[BC_EXPECTED], "expected deliveries");
    bench_report_int(&rep, "lost", lost, "lost");
    bench_report_int(&rep, "duplicated", r->c[BC_DUPS], "duplicated");
    bench_report_int(&rep, "closed", r->c[BC_CLOSED], "clients closed by the server");
    bench_report_hist(&rep, "latency", &r->h[BH_LATENCY], "relay latency");
    bench_report_section(&rep, "server");
    bench_report_rss(&rep, "rss_mib", &s[1], "RSS at the end");
    bench_report_cpu(&rep, "server", &s[0], &s[1], r->c[BC_MSGS], "delivery");
    bench_report_end(&rep);
}

int bench_run_client_events(const bench_opts *o)
{
    int n = bench_default_procs(o, o->conns);
    bench_proc *ps = hd_calloc((size_t)n, sizeof *ps);
    bench_result *r = hd_calloc(1, sizeof *r);
    bench_server_sample s[2];
    printf("client-events: %u clients on %u private channels, %.1f events/s each for %.0f s\n", o->conns,
           o->channels, o->rate, o->duration);
    int rc = bench_proc_spawn_all(ps, n, o, ce_worker_main);
    if (rc < 0)
        return -1;
    rc = bench_proc_wait(ps, n, BM_READY, NULL, bench_setup_timeout_ms(o, o->conns));
    bench_server_sample_take(o->server_pid, &s[0]);
    uint64_t t_go = bench_now_us();
    if (rc == 0) {
        bench_proc_cmd(ps, n, 'g');
        rc = bench_proc_wait(ps, n, BM_DONE, NULL, (int)(o->duration * 1000) + 60000);
    }
    bench_server_sample_take(o->server_pid, &s[1]);
    if (bench_proc_collect(ps, n, 'q', r, NULL, 0) < 0)
        rc = -1;
    bench_proc_reap(ps, n);
    ce_report(o, n, r, s, t_go);
    hd_free(ps);
    hd_free(r);
    return rc;
}
