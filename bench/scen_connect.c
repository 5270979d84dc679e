/* scen_connect.c - the `connect` scenario: open N WebSocket connections at
 * --connect-rate, measure the handshake (connect() to
 * pusher:connection_established), the server's RSS per connection, then hold
 * them idle for --hold seconds.
 *
 * DESIGN
 * ------
 * Parent: sample the server, fork the workers (each a bench_pool without
 * subscriptions), wait for BM_READY from all, sample again, hold, sample,
 * then 'q': workers close with RST and send their results.
 * RSS per connection = (RSS when all are connected - RSS before) / N.
 *
 * THREADING
 * ---------
 * Parent and workers are single-threaded processes.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef struct conn_worker {
    bench_loop *loop;
    bench_child *c;
    bench_result res;
    bench_pool pool;
} conn_worker;

static int conn_subscribe(bench_pool *p, bench_client *cl)
{
    (void)p;
    (void)cl;
    return 0;
}

static void conn_on_event(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                          uint64_t now_us)
{
    (void)p, (void)cl, (void)ev, (void)msg, (void)len, (void)now_us;
}

static const bench_pool_ops conn_pool_ops = {.subscribe = conn_subscribe, .on_event = conn_on_event};

static void conn_on_cmd(void *arg, char cmd)
{
    conn_worker *w = arg;
    if (cmd != 'q')
        return;
    bench_pool_drop(&w->pool, true);
    bench_child_post_result(w->c, &w->res, NULL, 0);
    bench_loop_stop(w->loop);
}

static void conn_tick(void *arg, uint64_t now_us)
{
    conn_worker *w = arg;
    bench_pool_tick(&w->pool, now_us);
}

static int conn_worker_main(bench_child *c)
{
    static conn_worker w;
    w.loop = bench_loop_create();
    w.c = c;
    bench_pool_init(&w.pool, w.loop, c, &w.res, &conn_pool_ops, &w);
    bench_child_watch(c, w.loop, conn_on_cmd, &w);
    bench_pool_start(&w.pool, bench_now_us());
    bench_loop_run(w.loop, conn_tick, &w);
    bench_pool_deinit(&w.pool);
    bench_loop_destroy(w.loop);
    return 0;
}

static void conn_report(const bench_opts *o, int procs, const bench_result *r, const bench_server_sample s[3],
                        uint64_t t0)
{
    bench_report rep;
    uint64_t ok = r->c[BC_CONN_OK];
    double secs = (double)(s[1].at_us - t0) / 1e6;
    bench_report_begin(&rep, o);
    bench_report_section(&rep, "load");
    bench_report_int(&rep, "conns", o->conns, "connections asked");
    bench_report_int(&rep, "procs", (uint64_t)procs, "client processes");
    bench_report_num(&rep, "connect_rate_target", o->connect_rate, "conn/s", "connect rate target");
    bench_report_section(&rep, "connect");
    bench_report_int(&rep, "conn_ok", ok, "established");
    bench_report_int(&rep, "conn_fail", r->c[BC_CONN_FAIL], "failed");
    bench_report_num(&rep, "connect_s", secs, "s", "time to connect all");
    bench_report_num(&rep, "connect_rate", secs > 0 ? (double)ok / secs : 0, "conn/s", "achieved connect rate");
    bench_report_hist(&rep, "handshake", &r->h[BH_HANDSHAKE], "handshake latency");
    bench_report_section(&rep, "server");
    bench_report_rss(&rep, "rss_before_mib", &s[0], "RSS before");
    bench_report_rss(&rep, "rss_connected_mib", &s[1], "RSS with all connected");
    bench_report_rss(&rep, "rss_after_hold_mib", &s[2], "RSS after the hold");
    if (s[0].ok && s[1].ok && s[2].ok && ok > 0) {
        bench_report_num(&rep, "rss_per_conn_kib", (double)(s[1].rss_kb - s[0].rss_kb) / (double)ok, "KiB",
                         "RSS per connection");
        bench_report_num(&rep, "rss_per_conn_after_hold_kib", (double)(s[2].rss_kb - s[0].rss_kb) / (double)ok,
                         "KiB", "RSS per connection after the hold");
    }
    bench_report_cpu(&rep, "connect", &s[0], &s[1], ok, "conn");
    bench_report_section(&rep, "hold");
    bench_report_num(&rep, "hold_s", o->hold, "s", "held idle");
    bench_report_int(&rep, "closed_during_hold", r->c[BC_CLOSED], "closed by the server");
    bench_report_cpu(&rep, "hold", &s[1], &s[2], 0, "conn");
    bench_report_end(&rep);
}

int bench_run_connect(const bench_opts *o)
{
    int n = bench_default_procs(o, o->conns);
    bench_proc *ps = hd_calloc((size_t)n, sizeof *ps);
    bench_server_sample s[3];
    bench_result *r = hd_calloc(1, sizeof *r);
    printf("connect: %u connections at %.0f/s over %d processes to %s:%d\n", o->conns, o->connect_rate, n,
           o->t.host, o->t.port);
    bench_server_sample_take(o->server_pid, &s[0]);
    uint64_t t0 = bench_now_us();
    if (bench_proc_spawn_all(ps, n, o, conn_worker_main) < 0)
        return -1;
    int rc = bench_proc_wait(ps, n, BM_READY, NULL, bench_setup_timeout_ms(o, o->conns));
    bench_server_sample_take(o->server_pid, &s[1]);
    if (rc == 0)
        bench_sleep_us((uint64_t)(o->hold * 1e6));
    bench_server_sample_take(o->server_pid, &s[2]);
    if (bench_proc_collect(ps, n, 'q', r, NULL, 0) < 0)
        rc = -1;
    bench_proc_reap(ps, n);
    conn_report(o, n, r, s, t0);
    hd_free(ps);
    hd_free(r);
    return rc;
}
