/* scen_fanout.c - the `fanout` scenario: N subscribers over C public
 * channels; events published through the signed HTTP API at --rate
 * events/s (0 = as fast as the publisher connections allow) for
 * --duration s; deliveries/s, end-to-end latency, lost and duplicated
 * messages, server CPU per delivery.
 *
 * DESIGN
 * ------
 * Subscriber g listens on channel g % C and connects to --targets entry
 * (g / C) % count (cluster runs: every channel has subscribers on every
 * node; default the one target). The publisher process
 * (its own role, one loop, --publishers keep-alive connections to
 * --publish-target, default the target, one request in flight on each)
 * sends event k to channel k % C with data
 * {"seq":<per-channel sequence>,"ts":<CLOCK_MONOTONIC us>,"pad":"..."}. A
 * subscriber records now - ts for every delivery and sets bit seq in its
 * bit set: a bit already set is a duplicate. At the end the parent knows,
 * per channel, the events published with a 2xx answer (publisher) and the
 * subscribers and distinct deliveries (subscribers):
 *   lost = sum over channels of subscribers * published - distinct.
 * Phases: subscribers connect and subscribe (BM_READY) -> publisher 'g'
 * -> publisher BM_DONE when its duration is over and nothing is in flight
 * -> subscribers 'f': each reports BM_DONE once 300 ms pass without a
 * delivery -> 'q' everywhere: results.
 *
 * THREADING
 * ---------
 * Parent, subscriber workers and the publisher are single-threaded
 * processes.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define FAN_QUIET_US 300000u
#define FAN_FINISH_MAX_US (20 * 1000000ull)
#define FAN_EVENT "bench-fanout"

/* ---- subscribers ---- */

typedef struct fan_worker {
    bench_loop *loop;
    bench_child *c;
    bench_result res;
    bench_pool pool;
    bench_bitset *seen;    /* per local client */
    char (*chan)[64];      /* per local client: its channel name */
    bool finishing, done;
    uint64_t finish_us;
} fan_worker;

static int fan_subscribe(bench_pool *p, bench_client *cl)
{
    fan_worker *w = p->user;
    hd_buf msg;
    hd_buf_init(&msg);
    bench_pusher_subscribe(&msg, &p->o->t, cl->socket_id, w->chan[cl - p->cl], NULL);
    bench_ws_send_text(&cl->ws, msg.data, msg.len);
    hd_buf_deinit(&msg);
    return 1;
}

static void fan_on_event(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                         uint64_t now_us)
{
    fan_worker *w = p->user;
    uint64_t seq, ts;
    if (ev->kind != BP_OTHER || ev->event_len != strlen(FAN_EVENT) || memcmp(ev->event, FAN_EVENT, ev->event_len))
        return;
    size_t i = (size_t)(cl - p->cl);
    const char *want = w->chan[i];
    if (!ev->channel || ev->channel_len != strlen(want) || memcmp(ev->channel, want, ev->channel_len) != 0 ||
        !bench_pusher_int(msg, len, "seq", &seq) || !bench_pusher_int(msg, len, "ts", &ts)) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    w->res.c[BC_MSGS]++;
    if (bench_bitset_set(&w->seen[i], seq))
        w->res.c[BC_DUPS]++;
    uint64_t lat = now_us > ts ? now_us - ts : 0;
    bench_hist_record(&w->res.h[BH_LATENCY], lat);
    int node = bench_target_index(p->o, cl->gidx);
    if (p->o->n_targets > 1 && node < 2)
        bench_hist_record(&w->res.h[BH_LATENCY_T0 + node], lat);
    if (!w->res.c[BC_FIRST_US])
        w->res.c[BC_FIRST_US] = now_us;
    w->res.c[BC_LAST_US] = now_us;
}

static const bench_pool_ops fan_pool_ops = {.subscribe = fan_subscribe, .on_event = fan_on_event};

/* extra[c] = subscribed clients on channel c, extra[C + c] = their distinct deliveries */
static void fan_post_result(fan_worker *w)
{
    uint32_t nc = w->c->o->channels;
    uint64_t *extra = hd_calloc(2 * (size_t)nc, sizeof *extra);
    for (uint32_t i = 0; i < w->pool.n; i++) {
        uint32_t ch = w->pool.cl[i].gidx % nc;
        if (w->pool.cl[i].subs_ok > 0)
            extra[ch]++;
        extra[nc + ch] += w->seen[i].count;
    }
    bench_child_post_result(w->c, &w->res, extra, 2 * (size_t)nc);
    hd_free(extra);
}

static void fan_on_cmd(void *arg, char cmd)
{
    fan_worker *w = arg;
    if (cmd == 'f') {
        w->finishing = true;
        w->finish_us = bench_now_us();
    } else if (cmd == 'q') {
        bench_pool_drop(&w->pool, true);
        fan_post_result(w);
        bench_loop_stop(w->loop);
    }
}

static void fan_tick(void *arg, uint64_t now_us)
{
    fan_worker *w = arg;
    bench_pool_tick(&w->pool, now_us);
    if (!w->finishing || w->done)
        return;
    uint64_t last = w->res.c[BC_LAST_US] > w->finish_us ? w->res.c[BC_LAST_US] : w->finish_us;
    if (now_us - last >= FAN_QUIET_US || now_us - w->finish_us >= FAN_FINISH_MAX_US) {
        w->done = true;
        bench_child_post_u64(w->c, BM_DONE, w->res.c[BC_LAST_US]);
    }
}

static int fan_sub_main(bench_child *c)
{
    static fan_worker w;
    w.loop = bench_loop_create();
    w.c = c;
    bench_pool_init(&w.pool, w.loop, c, &w.res, &fan_pool_ops, &w);
    w.seen = hd_calloc(w.pool.n + 1, sizeof *w.seen);
    w.chan = hd_calloc(w.pool.n + 1, sizeof *w.chan);
    for (uint32_t i = 0; i < w.pool.n; i++)
        snprintf(w.chan[i], sizeof w.chan[i], "%s-fan-%u", c->o->tag, w.pool.cl[i].gidx % c->o->channels);
    bench_child_watch(c, w.loop, fan_on_cmd, &w);
    bench_pool_start(&w.pool, bench_now_us());
    bench_loop_run(w.loop, fan_tick, &w);
    bench_pool_deinit(&w.pool);
    for (uint32_t i = 0; i < w.pool.n; i++)
        bench_bitset_free(&w.seen[i]);
    hd_free(w.seen);
    hd_free(w.chan);
    bench_loop_destroy(w.loop);
    return 0;
}

/* ---- publisher ---- */

typedef struct fan_pub fan_pub;
typedef struct pub_slot {
    bench_http h;
    fan_pub *pub;
    uint32_t chan;
    uint64_t sent_us;
} pub_slot;

struct fan_pub {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;
    bench_result res;
    pub_slot *slots;
    uint64_t *seq, *ok;    /* per channel: published, answered 2xx */
    uint64_t t0, t_end, total;
    bool running, done;
    hd_buf body, req;
    uint32_t fail_logged;
};

static void pub_send(fan_pub *p, pub_slot *s, uint64_t now)
{
    uint32_t ch = (uint32_t)(p->total++ % p->o->channels);
    uint64_t seq = p->seq[ch]++;
    p->body.len = 0;
    hd_buf_printf(&p->body, "{\"name\":\"" FAN_EVENT "\",\"channels\":[\"%s-fan-%u\"],"
                  "\"data\":\"{\\\"seq\\\":%llu,\\\"ts\\\":%llu,\\\"pad\\\":\\\"", p->o->tag, ch,
                  (unsigned long long)seq, (unsigned long long)now);
    for (uint32_t i = 0; i < p->o->payload; i++)
        hd_buf_append(&p->body, "x", 1);
    hd_buf_puts(&p->body, "\\\"}\"}");
    bench_api_events(&p->req, &p->o->pub_target, p->body.data, p->body.len);
    s->chan = ch;
    s->sent_us = now;
    p->res.c[BC_SENT]++;
    if (bench_http_send(&s->h, p->req.data, p->req.len) < 0)
        p->res.c[BC_SENT_FAIL]++;
}

static void pub_on_response(bench_http *h, int status, const char *body, size_t len, uint64_t now)
{
    pub_slot *s = (pub_slot *)h;
    fan_pub *p = s->pub;
    bool ok = status >= 200 && status < 300 && !(body && memmem(body, len, "\"error\"", 7));
    if (ok) {
        p->res.c[BC_SENT_OK]++;
        p->ok[s->chan]++;
    } else {
        p->res.c[BC_SENT_FAIL]++;
        if (p->fail_logged++ < 5)
            fprintf(stderr, "fanout: publish failed: status %d %.*s\n", status, (int)(len > 200 ? 200 : len),
                    body ? body : "");
    }
    bench_hist_record(&p->res.h[BH_REQUEST], now - s->sent_us);
    if (p->running && p->o->rate <= 0 && now < p->t_end)
        pub_send(p, s, now);
}

static pub_slot *pub_idle(fan_pub *p)
{
    for (uint32_t i = 0; i < p->o->publishers; i++)
        if (!p->slots[i].h.busy)
            return &p->slots[i];
    return NULL;
}

static bool pub_all_idle(const fan_pub *p)
{
    for (uint32_t i = 0; i < p->o->publishers; i++)
        if (p->slots[i].h.busy)
            return false;
    return true;
}

static void pub_stop(fan_pub *p)
{
    p->running = false;
    if (p->o->rate > 0) {
        uint64_t target = (uint64_t)(p->o->rate * p->o->duration);
        p->res.c[BC_BACKLOG] = target > p->total ? target - p->total : 0;
    }
}

static void pub_tick(void *arg, uint64_t now)
{
    fan_pub *p = arg;
    if (!p->t0 || p->done)
        return;
    if (p->running && now >= p->t_end)
        pub_stop(p);
    if (p->running) {
        uint64_t due = p->o->rate > 0 ? (uint64_t)((double)(now - p->t0) * p->o->rate / 1e6) + 1 : UINT64_MAX;
        pub_slot *s;
        while (p->total < due && (s = pub_idle(p)))
            pub_send(p, s, now);
    } else if (pub_all_idle(p)) {
        p->done = true;
        p->res.c[BC_HTTP_CONNECTS] = 0;
        for (uint32_t i = 0; i < p->o->publishers; i++)
            p->res.c[BC_HTTP_CONNECTS] += p->slots[i].h.connects;
        bench_child_post_u64(p->c, BM_DONE, now);
    }
}

static void pub_on_cmd(void *arg, char cmd)
{
    fan_pub *p = arg;
    if (cmd == 'g' && !p->t0) {
        p->t0 = bench_now_us();
        p->t_end = p->t0 + (uint64_t)(p->o->duration * 1e6);
        p->running = true;
    } else if (cmd == 'q') {
        bench_child_post_result(p->c, &p->res, p->ok, p->o->channels);
        bench_loop_stop(p->loop);
    }
}

static int fan_pub_main(bench_child *c)
{
    static fan_pub p;
    p.loop = bench_loop_create();
    p.c = c;
    p.o = c->o;
    p.slots = hd_calloc(p.o->publishers, sizeof *p.slots);
    p.seq = hd_calloc(p.o->channels, sizeof *p.seq);
    p.ok = hd_calloc(p.o->channels, sizeof *p.ok);
    hd_buf_init(&p.body);
    hd_buf_init(&p.req);
    for (uint32_t i = 0; i < p.o->publishers; i++) {
        bench_http_init(&p.slots[i].h, p.loop, &p.o->pub_target, pub_on_response, NULL);
        p.slots[i].pub = &p;
    }
    bench_child_watch(c, p.loop, pub_on_cmd, &p);
    bench_loop_run(p.loop, pub_tick, &p);
    for (uint32_t i = 0; i < p.o->publishers; i++)
        bench_http_deinit(&p.slots[i].h);
    hd_buf_deinit(&p.body);
    hd_buf_deinit(&p.req);
    hd_free(p.slots);
    hd_free(p.seq);
    hd_free(p.ok);
    bench_loop_destroy(p.loop);
    return 0;
}

/* ---- parent ---- */

typedef struct fan_totals {
    bench_result subs, pub;
    uint64_t *ok;       /* [C] published per channel */
    uint64_t *subx;     /* [2C] subscribers, distinct deliveries per channel */
    uint64_t expected, distinct;
} fan_totals;

static void fan_count_lost(const bench_opts *o, fan_totals *t)
{
    for (uint32_t ch = 0; ch < o->channels; ch++) {
        t->expected += t->subx[ch] * t->ok[ch];
        t->distinct += t->subx[o->channels + ch];
    }
}

static void fan_report(const bench_opts *o, int procs, fan_totals *t, const bench_server_sample s[2],
                       uint64_t t_go, uint64_t t_pub_done)
{
    bench_report rep;
    const bench_result *r = &t->subs;
    double pub_s = (double)(t_pub_done - t_go) / 1e6;
    double win_s = r->c[BC_LAST_US] > t_go ? (double)(r->c[BC_LAST_US] - t_go) / 1e6 : 0;
    bench_report_begin(&rep, o);
    bench_report_section(&rep, "load");
    bench_report_int(&rep, "subscribers", o->conns, "subscribers");
    bench_report_int(&rep, "channels", o->channels, "channels");
    bench_report_int(&rep, "procs", (uint64_t)procs, "subscriber processes");
    bench_report_int(&rep, "publishers", o->publishers, "publisher connections");
    bench_report_num(&rep, "rate_target", o->rate, "events/s", "publish rate target (0 = max)");
    bench_report_num(&rep, "duration_s", o->duration, "s", "publish duration");
    bench_report_int(&rep, "payload_bytes", o->payload, "padding bytes");
    bench_report_section(&rep, "setup");
    bench_report_int(&rep, "conn_ok", r->c[BC_CONN_OK], "subscribers connected");
    bench_report_int(&rep, "conn_fail", r->c[BC_CONN_FAIL], "connections failed");
    bench_report_int(&rep, "sub_fail", r->c[BC_SUB_FAIL], "subscriptions failed");
    bench_report_section(&rep, "publish");
    bench_report_int(&rep, "published", t->pub.c[BC_SENT], "events published");
    bench_report_int(&rep, "published_ok", t->pub.c[BC_SENT_OK], "answered 2xx");
    bench_report_int(&rep, "publish_failed", t->pub.c[BC_SENT_FAIL], "failed");
    bench_report_int(&rep, "publish_backlog", t->pub.c[BC_BACKLOG], "due but not sent (publishers busy)");
    bench_report_int(&rep, "http_connects", t->pub.c[BC_HTTP_CONNECTS], "HTTP connections opened");
    bench_report_num(&rep, "publish_rate", pub_s > 0 ? (double)t->pub.c[BC_SENT] / pub_s : 0, "events/s",
                     "achieved publish rate");
    bench_report_hist(&rep, "publish", &t->pub.h[BH_REQUEST], "HTTP publish round trip");
    bench_report_section(&rep, "delivery");
    bench_report_int(&rep, "deliveries", r->c[BC_MSGS], "deliveries");
    bench_report_num(&rep, "deliveries_per_s", win_s > 0 ? (double)r->c[BC_MSGS] / win_s : 0, "msg/s",
                     "deliveries per second");
    bench_report_int(&rep, "expected", t->expected, "expected deliveries");
    bench_report_int(&rep, "lost", t->expected > t->distinct ? t->expected - t->distinct : 0, "lost");
    bench_report_int(&rep, "duplicated", r->c[BC_DUPS], "duplicated");
    bench_report_int(&rep, "unexpected", r->c[BC_ERRORS], "malformed / wrong channel");
    bench_report_int(&rep, "closed", r->c[BC_CLOSED], "subscribers closed by the server");
    bench_report_hist(&rep, "latency", &r->h[BH_LATENCY], "end-to-end latency");
    if (o->n_targets > 1) { /* where the tail is: per node of the subscribers */
        bench_report_hist(&rep, "latency_t0", &r->h[BH_LATENCY_T0], "  of subscribers on target 0");
        bench_report_hist(&rep, "latency_t1", &r->h[BH_LATENCY_T1], "  of subscribers on target 1");
    }
    bench_report_section(&rep, "server");
    bench_report_rss(&rep, "rss_mib", &s[1], "RSS at the end");
    bench_report_cpu(&rep, "server", &s[0], &s[1], r->c[BC_MSGS], "delivery");
    bench_report_end(&rep);
}

static int fan_measure(const bench_opts *o, bench_proc *subs, int n, fan_totals *t, int procs)
{
    bench_proc pub = {0};
    bench_server_sample s[2];
    uint64_t t_done = 0;
    bench_server_sample_take(o->server_pid, &s[0]);
    uint64_t t_go = bench_now_us();
    if (bench_proc_spawn(&pub, 0, 1, o, fan_pub_main) < 0)
        return -1;
    bench_proc_cmd(&pub, 1, 'g');
    int rc = bench_proc_wait(&pub, 1, BM_DONE, &t_done, (int)(o->duration * 1000) + 120000);
    bench_proc_cmd(subs, n, 'f');
    if (bench_proc_wait(subs, n, BM_DONE, NULL, 60000) < 0)
        rc = -1;
    bench_server_sample_take(o->server_pid, &s[1]);
    if (bench_proc_collect(&pub, 1, 'q', &t->pub, t->ok, o->channels) < 0 ||
        bench_proc_collect(subs, n, 'q', &t->subs, t->subx, 2 * (size_t)o->channels) < 0)
        rc = -1;
    bench_proc_reap(&pub, 1);
    fan_count_lost(o, t);
    fan_report(o, procs, t, s, t_go, t_done ? t_done : bench_now_us());
    return rc;
}

int bench_run_fanout(const bench_opts *o)
{
    int n = bench_default_procs(o, o->conns);
    bench_proc *subs = hd_calloc((size_t)n, sizeof *subs);
    fan_totals *t = hd_calloc(1, sizeof *t);
    t->ok = hd_calloc(o->channels, sizeof *t->ok);
    t->subx = hd_calloc(2 * (size_t)o->channels, sizeof *t->subx);
    printf("fanout: %u subscribers on %u channels, %.0f events/s (0 = max) for %.0f s, %u publishers\n",
           o->conns, o->channels, o->rate, o->duration, o->publishers);
    int rc = bench_proc_spawn_all(subs, n, o, fan_sub_main);
    if (rc == 0)
        rc = bench_proc_wait(subs, n, BM_READY, NULL, bench_setup_timeout_ms(o, o->conns));
    if (rc == 0)
        rc = fan_measure(o, subs, n, t, n);
    else
        bench_proc_kill(subs, n);
    bench_proc_reap(subs, n);
    hd_free(t->ok);
    hd_free(t->subx);
    hd_free(t);
    hd_free(subs);
    return rc;
}
