/* scen_publish.c - the `publish` scenario: how many triggers the signed
 * HTTP API takes and how fast it answers them. Closed-loop publishers on
 * keep-alive connections, a matrix of runs (publishers x payload x batch),
 * a subscriber that checks every event arrives exactly once, and the
 * server's CPU per trigger.
 *
 * DESIGN
 * ------
 * A run is one combination of --batch (1: POST /events with one event; B:
 * POST /batch_events with B events), --payload (bytes of each event's
 * data, as the server decodes it) and --publishers (connections, each with
 * one request in flight; the next goes out as soon as the previous one is
 * answered, so the server sets the pace). Every event goes to one public
 * channel, <tag>-pub, with data {"seq":S,"src":P,"ts":T,"pad":"x..."}: S
 * counts the events of publisher process P, T is CLOCK_MONOTONIC us.
 *
 * Per run the parent sends the publishers 'g' (start; --warmup s that are
 * not measured, so connects and the first requests stay out), 'm' (the
 * window opens; server sampled from /proc), and after --duration s 's'
 * (the window closes; server sampled; no new request goes out). A request
 * belongs to the window when its answer arrives in it: the window's 2xx
 * requests and events give the rates, their send -> complete answer times
 * the latency, the /proc samples the server CPU per trigger. Once every
 * publisher has its last answer (BM_DONE) the subscribers get 'f' and
 * report BM_DONE after 300 ms without a delivery; then both report ('R').
 * Loss covers the whole run, warm-up and tail included: every subscriber
 * keeps a bit set per publisher process, and
 *   lost = subscribers x events answered 2xx - distinct deliveries.
 * A subscriber the server closes (e.g. 4100, too far behind) is counted,
 * its missed events are lost, and it rejoins before the next run ('o',
 * BM_MARK once every subscriber is back).
 * --procs publisher processes share each run's connections (default 1;
 * more only when one client core is not enough). Connections stay open
 * from one run to the next; a server that answers with Connection: close
 * (soketi) costs a TCP connect per request, which http_connects shows.
 *
 * THREADING
 * ---------
 * Parent, subscriber workers and publishers are single-threaded processes.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define PUB_EVENT "bench-pub"
#define PUB_MAX_RUNS (BENCH_PUB_MAX * BENCH_PUB_MAX * BENCH_PUB_MAX)
#define PUB_MAX_SRC 64
#define PUB_RETRY_US 10000u            /* after a failed request, before the next */
#define PUB_TIMEOUT_US (15 * 1000000ull)
#define PUB_QUIET_US 300000u
#define PUB_FINISH_MAX_US (30 * 1000000ull)
#define PUB_LOG_MAX 5

typedef struct pub_cfg {
    uint32_t publishers, payload, batch;
} pub_cfg;

static int pub_run_count(const bench_opts *o)
{
    return o->pub.n_batches * o->pub.n_payloads * o->pub.n_publishers;
}

/* Run i: batch outermost, publishers innermost. */
static pub_cfg pub_cfg_at(const bench_opts *o, int i)
{
    const bench_publish_opts *p = &o->pub;
    pub_cfg c;
    c.publishers = p->publishers[i % p->n_publishers];
    i /= p->n_publishers;
    c.payload = p->payloads[i % p->n_payloads];
    c.batch = p->batches[i / p->n_payloads];
    return c;
}

static void pub_channel(const bench_opts *o, char *out, size_t n)
{
    snprintf(out, n, "%s-pub", o->tag);
}

/* ---- subscribers ---- */

/* Reported per run: */
enum { SX_DISTINCT, SX_SUBSCRIBED, SX__COUNT };

typedef struct pub_sub {
    bench_loop *loop;
    bench_child *c;
    bench_result res;
    bench_pool pool;
    bench_bitset *seen;    /* [local client * PUB_MAX_SRC + src] */
    char chan[64];
    bool finishing, done, reopening;
    uint64_t finish_us;
} pub_sub;

static int sub_subscribe(bench_pool *p, bench_client *cl)
{
    pub_sub *w = p->user;
    hd_buf msg;
    hd_buf_init(&msg);
    bench_pusher_subscribe(&msg, &p->o->t, cl->socket_id, w->chan, NULL);
    bench_ws_send_text(&cl->ws, msg.data, msg.len);
    hd_buf_deinit(&msg);
    return 1;
}

static bool sub_is_ours(const pub_sub *w, const bench_pev *ev)
{
    return ev->kind == BP_OTHER && ev->event_len == strlen(PUB_EVENT) &&
           memcmp(ev->event, PUB_EVENT, ev->event_len) == 0 && ev->channel &&
           ev->channel_len == strlen(w->chan) && memcmp(ev->channel, w->chan, ev->channel_len) == 0;
}

static void sub_on_event(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                         uint64_t now_us)
{
    pub_sub *w = p->user;
    uint64_t seq, src, ts;
    if (ev->kind != BP_OTHER)
        return;
    if (!sub_is_ours(w, ev) || !bench_pusher_int(msg, len, "seq", &seq) ||
        !bench_pusher_int(msg, len, "src", &src) || !bench_pusher_int(msg, len, "ts", &ts) || src >= PUB_MAX_SRC) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    w->res.c[BC_MSGS]++;
    if (bench_bitset_set(&w->seen[(size_t)(cl - p->cl) * PUB_MAX_SRC + src], seq))
        w->res.c[BC_DUPS]++;
    bench_hist_record(&w->res.h[BH_LATENCY], now_us > ts ? now_us - ts : 0);
    w->res.c[BC_LAST_US] = now_us;
}

static const bench_pool_ops sub_pool_ops = {.subscribe = sub_subscribe, .on_event = sub_on_event};

static void sub_post(pub_sub *w)
{
    uint64_t x[SX__COUNT] = {0};
    for (uint32_t i = 0; i < w->pool.n; i++) {
        for (uint32_t s = 0; s < PUB_MAX_SRC; s++)
            x[SX_DISTINCT] += w->seen[(size_t)i * PUB_MAX_SRC + s].count;
        if (w->pool.cl[i].subs_ok > 0 && w->pool.cl[i].ws.io.fd >= 0)
            x[SX_SUBSCRIBED]++;
    }
    bench_child_post_result(w->c, &w->res, x, SX__COUNT);
    memset(&w->res, 0, sizeof w->res);
}

static void sub_on_cmd(void *arg, char cmd)
{
    pub_sub *w = arg;
    if (cmd == 'f') {
        w->finishing = true;
        w->done = false;
        w->finish_us = bench_now_us();
    } else if (cmd == 'R') {
        sub_post(w);
    } else if (cmd == 'o') { /* a client the server closed rejoins before the next run */
        for (uint32_t i = 0; i < w->pool.n; i++)
            if (w->pool.cl[i].ws.io.fd < 0)
                bench_pool_reopen(&w->pool, &w->pool.cl[i]);
        w->reopening = true;
    } else if (cmd == 'q') {
        bench_pool_drop(&w->pool, true);
        sub_post(w);
        bench_loop_stop(w->loop);
    }
}

static void sub_tick(void *arg, uint64_t now_us)
{
    pub_sub *w = arg;
    bench_pool_tick(&w->pool, now_us);
    if (w->reopening && w->pool.settled == w->pool.n) {
        w->reopening = false;
        bench_child_post_u64(w->c, BM_MARK, now_us);
    }
    if (!w->finishing || w->done)
        return;
    uint64_t last = w->res.c[BC_LAST_US] > w->finish_us ? w->res.c[BC_LAST_US] : w->finish_us;
    if (now_us - last >= PUB_QUIET_US || now_us - w->finish_us >= PUB_FINISH_MAX_US) {
        w->done = true;
        w->finishing = false;
        bench_child_post_u64(w->c, BM_DONE, now_us);
    }
}

static int pub_sub_main(bench_child *c)
{
    static pub_sub w;
    w.loop = bench_loop_create();
    w.c = c;
    pub_channel(c->o, w.chan, sizeof w.chan);
    bench_pool_init(&w.pool, w.loop, c, &w.res, &sub_pool_ops, &w);
    w.seen = hd_calloc(((size_t)w.pool.n + 1) * PUB_MAX_SRC, sizeof *w.seen);
    bench_child_watch(c, w.loop, sub_on_cmd, &w);
    bench_pool_start(&w.pool, bench_now_us());
    bench_loop_run(w.loop, sub_tick, &w);
    bench_pool_deinit(&w.pool);
    for (size_t i = 0; i < ((size_t)w.pool.n + 1) * PUB_MAX_SRC; i++)
        bench_bitset_free(&w.seen[i]);
    hd_free(w.seen);
    bench_loop_destroy(w.loop);
    return 0;
}

/* ---- publishers ---- */

/* Reported per run: */
enum { PX_EV_OK, PX_EV_FAIL, PX_WIN_REQ_OK, PX_WIN_EV_OK, PX_WIN_REQ_FAIL, PX_CONNECTS, PX__COUNT };

typedef struct pub_proc pub_proc;
typedef struct pub_conn {
    bench_http h;       /* first */
    pub_proc *pp;
    uint64_t sent_us;
    uint64_t retry_at;  /* after a failure, not before this */
} pub_conn;

struct pub_proc {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;
    bench_result res;          /* BH_REQUEST: 2xx round trips answered in the window */
    uint64_t x[PX__COUNT];
    pub_conn *conns;
    uint32_t cap, n;           /* cap: the most any run needs; n: this run's */
    int run;
    pub_cfg cfg;
    uint64_t seq, connects0, last_scan;
    bool running, measuring, idle_posted;
    hd_buf body, req;
    char chan[64];
    uint32_t logged;
};

/* The data string of one event, JSON-escaped inside the body: exactly
 * cfg.payload bytes once decoded (or just the fixed members if bigger). */
static void pp_append_data(pub_proc *pp, uint64_t now)
{
    char head[160];
    int n = snprintf(head, sizeof head, "{\"seq\":%llu,\"src\":%d,\"ts\":%llu,\"pad\":\"",
                     (unsigned long long)pp->seq, pp->c->index, (unsigned long long)now);
    size_t fixed = (size_t)n + 2, pad = pp->cfg.payload > fixed ? pp->cfg.payload - fixed : 0;
    hd_buf_printf(&pp->body, "\"{\\\"seq\\\":%llu,\\\"src\\\":%d,\\\"ts\\\":%llu,\\\"pad\\\":\\\"",
                  (unsigned long long)pp->seq++, pp->c->index, (unsigned long long)now);
    hd_buf_reserve(&pp->body, pad + 8);
    memset(pp->body.data + pp->body.len, 'x', pad);
    pp->body.len += pad;
    hd_buf_puts(&pp->body, "\\\"}\"");
}

static void pp_build(pub_proc *pp, uint64_t now)
{
    pp->body.len = 0;
    if (pp->cfg.batch <= 1) {
        hd_buf_printf(&pp->body, "{\"name\":\"" PUB_EVENT "\",\"channels\":[\"%s\"],\"data\":", pp->chan);
        pp_append_data(pp, now);
        hd_buf_puts(&pp->body, "}");
        bench_api_events(&pp->req, &pp->o->t, pp->body.data, pp->body.len);
        return;
    }
    hd_buf_puts(&pp->body, "{\"batch\":[");
    for (uint32_t i = 0; i < pp->cfg.batch; i++) {
        hd_buf_printf(&pp->body, "%s{\"name\":\"" PUB_EVENT "\",\"channel\":\"%s\",\"data\":", i ? "," : "",
                      pp->chan);
        pp_append_data(pp, now);
        hd_buf_puts(&pp->body, "}");
    }
    hd_buf_puts(&pp->body, "]}");
    bench_api_batch_events(&pp->req, &pp->o->t, pp->body.data, pp->body.len);
}

static void pp_failed(pub_proc *pp, pub_conn *pc, int status, const char *body, size_t len, uint64_t now)
{
    pp->res.c[BC_SENT_FAIL]++;
    pp->x[PX_EV_FAIL] += pp->cfg.batch;
    if (pp->measuring)
        pp->x[PX_WIN_REQ_FAIL]++;
    pc->retry_at = now + PUB_RETRY_US; /* no hot loop against a refusing server */
    if (pp->logged++ < PUB_LOG_MAX)
        fprintf(stderr, "publish: request failed: status %d %.*s\n", status, (int)(len > 200 ? 200 : len),
                body ? body : "");
}

static void pp_send(pub_proc *pp, pub_conn *pc, uint64_t now)
{
    pp_build(pp, now);
    pc->sent_us = bench_now_us(); /* after building: the round trip is the server's, not our MD5 */
    pp->res.c[BC_SENT]++;
    if (bench_http_send(&pc->h, pp->req.data, pp->req.len) < 0)
        pp_failed(pp, pc, -1, NULL, 0, pc->sent_us);
}

static void pp_on_response(bench_http *h, int status, const char *body, size_t len, uint64_t now)
{
    pub_conn *pc = (pub_conn *)h;
    pub_proc *pp = pc->pp;
    bool ok = status >= 200 && status < 300 && !(body && memmem(body, len, "\"error\"", 7));
    if (!ok) {
        pp_failed(pp, pc, status, body, len, now);
        return;
    }
    pp->res.c[BC_SENT_OK]++;
    pp->x[PX_EV_OK] += pp->cfg.batch;
    if (pp->measuring) {
        pp->x[PX_WIN_REQ_OK]++;
        pp->x[PX_WIN_EV_OK] += pp->cfg.batch;
        bench_hist_record(&pp->res.h[BH_REQUEST], now - pc->sent_us);
    }
    if (pp->running)
        pp_send(pp, pc, now); /* closed loop: the answer releases the next request */
}

static uint64_t pp_connects(const pub_proc *pp)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < pp->cap; i++)
        n += pp->conns[i].h.connects;
    return n;
}

static bool pp_all_idle(const pub_proc *pp)
{
    for (uint32_t i = 0; i < pp->cap; i++)
        if (pp->conns[i].h.busy)
            return false;
    return true;
}

/* Abort requests that got no answer in time (counted as failed). */
static void pp_scan(pub_proc *pp, uint64_t now)
{
    for (uint32_t i = 0; i < pp->cap; i++) {
        pub_conn *pc = &pp->conns[i];
        if (pc->h.busy && now > pc->sent_us + PUB_TIMEOUT_US)
            bench_http_abort(&pc->h);
    }
}

static void pp_tick(void *arg, uint64_t now)
{
    pub_proc *pp = arg;
    if (now - pp->last_scan >= 100000u) {
        pp->last_scan = now;
        pp_scan(pp, now);
    }
    if (pp->running) {
        for (uint32_t i = 0; i < pp->n; i++) {
            pub_conn *pc = &pp->conns[i];
            if (!pc->h.busy && now >= pc->retry_at)
                pp_send(pp, pc, now);
        }
    } else if (pp->run >= 0 && !pp->idle_posted && pp_all_idle(pp)) {
        pp->idle_posted = true;
        bench_child_post_u64(pp->c, BM_DONE, now);
    }
}

static void pp_start_run(pub_proc *pp)
{
    if (pp->run + 1 >= pub_run_count(pp->o))
        return;
    pp->run++;
    pp->cfg = pub_cfg_at(pp->o, pp->run);
    pp->n = bench_pool_share(pp->cfg.publishers, pp->c->index, pp->c->nprocs);
    pp->connects0 = pp_connects(pp);
    for (uint32_t i = 0; i < pp->n; i++)
        pp->conns[i].retry_at = 0;
    pp->running = true;
    pp->measuring = false;
    pp->idle_posted = false;
}

static void pp_on_cmd(void *arg, char cmd)
{
    pub_proc *pp = arg;
    if (cmd == 'g') {
        pp_start_run(pp);
    } else if (cmd == 'm') {
        pp->measuring = true;
    } else if (cmd == 's') {
        pp->running = pp->measuring = false;
    } else if (cmd == 'R') {
        pp->x[PX_CONNECTS] = pp_connects(pp) - pp->connects0;
        bench_child_post_result(pp->c, &pp->res, pp->x, PX__COUNT);
        memset(&pp->res, 0, sizeof pp->res);
        memset(pp->x, 0, sizeof pp->x);
    } else if (cmd == 'q') {
        bench_child_post_result(pp->c, &pp->res, pp->x, PX__COUNT);
        bench_loop_stop(pp->loop);
    }
}

static uint32_t pp_max_conns(const bench_child *c)
{
    uint32_t m = 1;
    for (int i = 0; i < c->o->pub.n_publishers; i++) {
        uint32_t n = bench_pool_share(c->o->pub.publishers[i], c->index, c->nprocs);
        m = n > m ? n : m;
    }
    return m;
}

static int pub_proc_main(bench_child *c)
{
    static pub_proc pp;
    pp.loop = bench_loop_create();
    pp.c = c;
    pp.o = c->o;
    pp.run = -1;
    pub_channel(c->o, pp.chan, sizeof pp.chan);
    hd_buf_init(&pp.body);
    hd_buf_init(&pp.req);
    pp.cap = pp_max_conns(c);
    pp.conns = hd_calloc(pp.cap, sizeof *pp.conns);
    for (uint32_t i = 0; i < pp.cap; i++) {
        bench_http_init(&pp.conns[i].h, pp.loop, &pp.o->t, pp_on_response, NULL);
        pp.conns[i].pp = &pp;
    }
    bench_child_watch(c, pp.loop, pp_on_cmd, &pp);
    bench_loop_run(pp.loop, pp_tick, &pp);
    for (uint32_t i = 0; i < pp.cap; i++)
        bench_http_deinit(&pp.conns[i].h);
    hd_free(pp.conns);
    hd_buf_deinit(&pp.body);
    hd_buf_deinit(&pp.req);
    bench_loop_destroy(pp.loop);
    return 0;
}

/* ---- parent ---- */

typedef struct pub_run {
    pub_cfg cfg;
    bench_result pub, sub;
    uint64_t px[PX__COUNT], sx[SX__COUNT];
    uint64_t distinct;         /* this run's, from the cumulative count */
    bench_server_sample s[2];  /* window start, end */
    int rc;
} pub_run;

typedef struct pub_ctx {
    const bench_opts *o;
    bench_proc *subs, *pubs;
    int nsub, npub;
    uint64_t distinct_before;
} pub_ctx;

static int pub_one(pub_ctx *x, pub_run *r)
{
    const bench_opts *o = x->o;
    int rc = 0;
    bench_proc_cmd(x->pubs, x->npub, 'g');
    bench_sleep_us((uint64_t)(o->warmup * 1e6));
    bench_proc_cmd(x->pubs, x->npub, 'm');
    bench_server_sample_take(o->server_pid, &r->s[0]);
    bench_sleep_us((uint64_t)(o->duration * 1e6));
    bench_proc_cmd(x->pubs, x->npub, 's');
    bench_server_sample_take(o->server_pid, &r->s[1]);
    if (bench_proc_wait(x->pubs, x->npub, BM_DONE, NULL, (int)(PUB_TIMEOUT_US / 1000) + 30000) < 0)
        rc = -1;
    bench_proc_cmd(x->subs, x->nsub, 'f');
    if (bench_proc_wait(x->subs, x->nsub, BM_DONE, NULL, (int)(PUB_FINISH_MAX_US / 1000) + 30000) < 0)
        rc = -1;
    if (bench_proc_collect(x->pubs, x->npub, 'R', &r->pub, r->px, PX__COUNT) < 0 ||
        bench_proc_collect(x->subs, x->nsub, 'R', &r->sub, r->sx, SX__COUNT) < 0)
        rc = -1;
    r->distinct = r->sx[SX_DISTINCT] - x->distinct_before;
    x->distinct_before = r->sx[SX_DISTINCT];
    bench_proc_cmd(x->subs, x->nsub, 'o');
    if (bench_proc_wait(x->subs, x->nsub, BM_MARK, NULL, (int)(BENCH_CONNECT_TIMEOUT_US / 1000) + 5000) < 0)
        rc = -1;
    return rc;
}

static double run_window_s(const pub_run *r)
{
    return (double)(r->s[1].at_us - r->s[0].at_us) / 1e6;
}

/* Every subscriber should get every event answered 2xx: one the server
 * closed during the run counts its missed events as lost. */
static uint64_t run_expected(const bench_opts *o, const pub_run *r)
{
    return r->px[PX_EV_OK] * o->conns;
}

/* "events_100b_8p" / "batch10_10000b_32p" */
static void run_key(const pub_run *r, char *out, size_t n)
{
    if (r->cfg.batch <= 1)
        snprintf(out, n, "events_%ub_%up", r->cfg.payload, r->cfg.publishers);
    else
        snprintf(out, n, "batch%u_%ub_%up", r->cfg.batch, r->cfg.payload, r->cfg.publishers);
}

static void report_run(bench_report *rep, const bench_opts *o, const pub_run *r)
{
    char key[64], k[128];
    double win = run_window_s(r);
    uint64_t exp = run_expected(o, r);
#define K(name) (snprintf(k, sizeof k, "%s_%s", key, name), k)
    run_key(r, key, sizeof key);
    bench_report_section(rep, key);
    bench_report_num(rep, K("requests_per_s"), win > 0 ? (double)r->px[PX_WIN_REQ_OK] / win : 0, "req/s",
                     "requests answered 2xx per second");
    bench_report_num(rep, K("triggers_per_s"), win > 0 ? (double)r->px[PX_WIN_EV_OK] / win : 0, "events/s",
                     "triggers (events) per second");
    bench_report_hist(rep, K("rtt"), &r->pub.h[BH_REQUEST], "trigger -> HTTP 2xx");
    bench_report_int(rep, K("failed_in_window"), r->px[PX_WIN_REQ_FAIL], "requests failed in the window");
    bench_report_int(rep, K("failed"), r->pub.c[BC_SENT_FAIL], "requests failed, whole run");
    bench_report_int(rep, K("http_connects"), r->px[PX_CONNECTS], "TCP connects by the publishers");
    bench_report_cpu(rep, K("server"), &r->s[0], &r->s[1], r->px[PX_WIN_EV_OK], "trigger");
    bench_report_int(rep, K("events_ok"), r->px[PX_EV_OK], "events answered 2xx, whole run");
    bench_report_int(rep, K("subscribers_at_end"), r->sx[SX_SUBSCRIBED], "subscribers still subscribed at the end");
    bench_report_int(rep, K("deliveries"), r->sub.c[BC_MSGS], "deliveries");
    bench_report_int(rep, K("lost"), exp > r->distinct ? exp - r->distinct : 0, "lost");
    bench_report_int(rep, K("duplicated"), r->sub.c[BC_DUPS], "duplicated");
    bench_report_int(rep, K("unexpected"), r->distinct > exp ? r->distinct - exp : 0,
                     "delivered, yet not answered 2xx");
    bench_report_int(rep, K("malformed"), r->sub.c[BC_ERRORS], "malformed / wrong channel");
    bench_report_int(rep, K("sub_closed"), r->sub.c[BC_CLOSED], "subscribers closed by the server");
    bench_report_hist(rep, K("e2e"), &r->sub.h[BH_LATENCY], "trigger -> delivery (whole run)");
#undef K
}

/* The compact table, one line per run (summary only; the JSON has it all). */
static void print_table(const bench_opts *o, const pub_run *runs, int n)
{
    printf("-- table\n  %-22s %9s %10s %8s %8s %8s %7s %8s %7s %6s %5s %8s\n", "run", "req/s", "triggers/s",
           "p50 ms", "p99 ms", "max ms", "srv", "us/trig", "loadgen", "lost", "dup", "connects");
    for (int i = 0; i < n; i++) {
        const pub_run *r = &runs[i];
        char key[64];
        double win = run_window_s(r), cpu = r->s[0].ok && r->s[1].ok ? r->s[1].cpu_s - r->s[0].cpu_s : 0;
        double lg = r->s[1].client_cpu_s - r->s[0].client_cpu_s;
        uint64_t exp = run_expected(o, r);
        run_key(r, key, sizeof key);
        printf("  %-22s %9.0f %10.0f %8.3f %8.3f %8.3f %7.2f %8.2f %7.2f %6llu %5llu %8llu\n", key,
               win > 0 ? (double)r->px[PX_WIN_REQ_OK] / win : 0, win > 0 ? (double)r->px[PX_WIN_EV_OK] / win : 0,
               (double)bench_hist_pct(&r->pub.h[BH_REQUEST], 50) / 1000.0,
               (double)bench_hist_pct(&r->pub.h[BH_REQUEST], 99) / 1000.0, (double)r->pub.h[BH_REQUEST].max / 1000.0,
               win > 0 ? cpu / win : 0, r->px[PX_WIN_EV_OK] ? cpu * 1e6 / (double)r->px[PX_WIN_EV_OK] : 0,
               win > 0 ? lg / win : 0, (unsigned long long)(exp > r->distinct ? exp - r->distinct : 0),
               (unsigned long long)r->sub.c[BC_DUPS], (unsigned long long)r->px[PX_CONNECTS]);
    }
}

static void pub_report(const pub_ctx *x, const pub_run *runs, int n, const bench_result *last)
{
    const bench_opts *o = x->o;
    bench_report rep;
    bench_result setup = *last; /* the subscribers' counters of every run, and after */
    for (int i = 0; i < n; i++)
        for (int c = 0; c < BC__COUNT; c++)
            setup.c[c] += runs[i].sub.c[c];
    bench_report_begin(&rep, o);
    bench_report_section(&rep, "load");
    bench_report_int(&rep, "subscribers", o->conns, "subscribers");
    bench_report_int(&rep, "publisher_procs", (uint64_t)x->npub, "publisher processes");
    bench_report_num(&rep, "warmup_s", o->warmup, "s", "warm-up per run (not measured)");
    bench_report_num(&rep, "duration_s", o->duration, "s", "measured window per run");
    bench_report_int(&rep, "runs", (uint64_t)n, "runs");
    bench_report_int(&rep, "sub_conn_fail", setup.c[BC_CONN_FAIL], "subscriber connects failed");
    bench_report_int(&rep, "sub_fail", setup.c[BC_SUB_FAIL], "subscriptions failed");
    bench_report_int(&rep, "sub_closed", setup.c[BC_CLOSED], "subscribers closed by the server");
    for (int i = 0; i < n; i++)
        report_run(&rep, o, &runs[i]);
    print_table(o, runs, n);
    bench_report_end(&rep);
}

static int pub_runs(pub_ctx *x, pub_run *runs, int n)
{
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        pub_run *r = &runs[i];
        char key[64];
        r->cfg = pub_cfg_at(x->o, i);
        rc = pub_one(x, r);
        run_key(r, key, sizeof key);
        double win = run_window_s(r);
        printf("publish: %-22s %.0f triggers/s, p99 %.3f ms\n", key,
               win > 0 ? (double)r->px[PX_WIN_EV_OK] / win : 0,
               (double)bench_hist_pct(&r->pub.h[BH_REQUEST], 99) / 1000.0);
    }
    return rc;
}

int bench_run_publish(const bench_opts *o)
{
    pub_ctx x = {.o = o};
    int n = pub_run_count(o);
    x.nsub = (int)((o->conns + 14999) / 15000);
    x.npub = o->procs > 0 ? o->procs : 1;
    if (x.npub > PUB_MAX_SRC) {
        fprintf(stderr, "publish: at most %d publisher processes\n", PUB_MAX_SRC);
        return -1;
    }
    x.subs = hd_calloc((size_t)x.nsub, sizeof *x.subs);
    x.pubs = hd_calloc((size_t)x.npub, sizeof *x.pubs);
    pub_run *runs = hd_calloc((size_t)n, sizeof *runs);
    bench_result setup;
    memset(&setup, 0, sizeof setup);
    printf("publish: %d runs of %.1f + %.1f s, %u subscriber(s), %d publisher process(es)\n", n, o->warmup,
           o->duration, o->conns, x.npub);
    int rc = bench_proc_spawn_all(x.subs, x.nsub, o, pub_sub_main);
    if (rc == 0)
        rc = bench_proc_wait(x.subs, x.nsub, BM_READY, NULL, bench_setup_timeout_ms(o, o->conns));
    if (rc == 0)
        rc = bench_proc_spawn_all(x.pubs, x.npub, o, pub_proc_main);
    if (rc == 0) {
        rc = pub_runs(&x, runs, n);
        bench_proc_collect(x.pubs, x.npub, 'q', &setup, NULL, 0);
        memset(&setup, 0, sizeof setup);
        bench_proc_collect(x.subs, x.nsub, 'q', &setup, NULL, 0);
        pub_report(&x, runs, n, &setup);
    } else {
        bench_proc_kill(x.pubs, x.npub);
        bench_proc_kill(x.subs, x.nsub);
    }
    bench_proc_reap(x.pubs, x.npub);
    bench_proc_reap(x.subs, x.nsub);
    hd_free(runs);
    hd_free(x.subs);
    hd_free(x.pubs);
    return rc;
}
