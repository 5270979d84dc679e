/* scen_storm.c - the `storm` scenario (mass disconnect, issue 4): N
 * connections on presence and public channels all drop at once with RST
 * while a probe keeps connecting new clients; time until the server's
 * registry is empty, how fast a new client is served during the storm
 * (connected and subscribed), RSS before and after, herald's cleanup
 * fallbacks; --rounds storms in a row to show RSS growth between rounds.
 *
 * DESIGN
 * ------
 * Client g joins presence-<tag>-storm-<g % C> (user "s<g>") and
 * <tag>-storm-<g % C>. The probe process opens a connection every
 * 1/--probe-rate s (at most PROBE_SLOTS at once; a probe that finds every
 * slot busy is counted as skipped), times connect() -> connection_established,
 * subscribes to a public and a presence channel of its own (presence signed
 * with channel_data), times connect() -> the second subscription_succeeded
 * ("served": what a real client waits for before it is useful) and resets
 * it. It runs from 'p' (1 s before the drop) to 'R' (end of the round).
 * Each probe's latencies go to the histograms of the phase it started in:
 * before the drop, the storm (from the drop until the registry is empty,
 * and at least STORM_MIN_US), or after (--settle s); probes over 50 ms are
 * counted per phase.
 * Per round the parent: waits for BM_READY (all connected and subscribed)
 * and --settle s more, runs the probe for 1 s, samples RSS and the fallback
 * counters, sends 'd'
 * (each worker resets all its sockets in a tight loop and answers BM_DONE),
 * polls GET /apps/{id}/channels (signed) every 10 ms until no channel with
 * the storm tag is listed, samples again, lets --settle s pass, samples the
 * "after" RSS, and collects the round's results ('R'). Next round: 'r'.
 *
 * THREADING
 * ---------
 * Parent, storm workers and the probe are single-threaded processes.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define PROBE_SLOTS 16
#define STORM_MIN_US 1000000ull
#define STORM_POLL_US 10000u
#define STORM_EMPTY_TIMEOUT_US (120 * 1000000ull)
#define STORM_MAX_ROUNDS 16
#define PROBE_SLOW_US 50000u /* a probe over this is counted: the 50 ms */

/* ---- storm workers ---- */

typedef struct storm_worker {
    bench_loop *loop;
    bench_child *c;
    bench_result res;
    bench_pool pool;
    hd_buf msg;
} storm_worker;

static int storm_subscribe(bench_pool *p, bench_client *cl)
{
    storm_worker *w = p->user;
    char ch[96], data[64];
    uint32_t k = cl->gidx % p->o->channels;
    snprintf(data, sizeof data, "{\"user_id\":\"s%u\"}", cl->gidx);
    snprintf(ch, sizeof ch, "presence-%s-storm-%u", p->o->tag, k);
    bench_pusher_subscribe(&w->msg, &p->o->t, cl->socket_id, ch, data);
    bench_ws_send_text(&cl->ws, w->msg.data, w->msg.len);
    snprintf(ch, sizeof ch, "%s-storm-%u", p->o->tag, k);
    bench_pusher_subscribe(&w->msg, &p->o->t, cl->socket_id, ch, NULL);
    bench_ws_send_text(&cl->ws, w->msg.data, w->msg.len);
    return 2;
}

static void storm_on_event(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                           uint64_t now_us)
{
    (void)p, (void)cl, (void)ev, (void)msg, (void)len, (void)now_us;
}

static const bench_pool_ops storm_pool_ops = {.subscribe = storm_subscribe, .on_event = storm_on_event};

static void storm_on_cmd(void *arg, char cmd)
{
    storm_worker *w = arg;
    if (cmd == 'd') {
        bench_pool_drop(&w->pool, true);
        bench_child_post_u64(w->c, BM_DONE, bench_now_us());
    } else if (cmd == 'r') {
        bench_pool_start(&w->pool, bench_now_us());
    } else if (cmd == 'R' || cmd == 'q') {
        bench_child_post_result(w->c, &w->res, NULL, 0);
        memset(&w->res, 0, sizeof w->res);
        if (cmd == 'q') {
            bench_pool_drop(&w->pool, true);
            bench_loop_stop(w->loop);
        }
    }
}

static void storm_tick(void *arg, uint64_t now_us)
{
    storm_worker *w = arg;
    bench_pool_tick(&w->pool, now_us);
}

static int storm_worker_main(bench_child *c)
{
    static storm_worker w;
    w.loop = bench_loop_create();
    w.c = c;
    hd_buf_init(&w.msg);
    bench_pool_init(&w.pool, w.loop, c, &w.res, &storm_pool_ops, &w);
    bench_child_watch(c, w.loop, storm_on_cmd, &w);
    bench_pool_start(&w.pool, bench_now_us());
    bench_loop_run(w.loop, storm_tick, &w);
    bench_pool_deinit(&w.pool);
    hd_buf_deinit(&w.msg);
    bench_loop_destroy(w.loop);
    return 0;
}

/* ---- probe ---- */

enum { PH_PRE, PH_STORM, PH_POST, PH__COUNT };

/* Extra figures the probe reports per round, indexed by phase. */
enum { PX_CONN_SLOW = 0, PX_SERVED_SLOW = PH__COUNT, PX__COUNT = 2 * PH__COUNT };

typedef struct probe probe;
typedef struct probe_slot {
    bench_ws ws; /* first */
    probe *p;
    bool busy;
    bool established;
    int phase;   /* PH_* when this probe started */
    int subs_ok;
} probe_slot;

struct probe {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;
    bench_result res;
    uint64_t x[PX__COUNT];
    probe_slot slots[PROBE_SLOTS];
    int phase; /* PH_* */
    uint64_t t0, due_done, last_scan, users;
    bool running;
    hd_buf msg;
};

static void probe_free(probe_slot *s)
{
    bench_ws_close(&s->ws, true);
    s->busy = false;
}

static void probe_fail(probe_slot *s, int counter)
{
    s->p->res.c[counter]++;
    probe_free(s);
}

/* Subscribe to this slot's own public and presence channels: not the storm
 * channels, so probes never keep a storm channel in the registry and the
 * drop -> empty figure stays the storm's alone. One channel pair per slot
 * keeps the presence channel far below its member limit even when the
 * departed probes' cleanup lags. */
static void probe_subscribe(probe_slot *s, const char *socket_id)
{
    probe *p = s->p;
    char ch[96], data[64];
    int slot = (int)(s - p->slots);
    snprintf(ch, sizeof ch, "%s-probe-%d", p->o->tag, slot);
    bench_pusher_subscribe(&p->msg, &p->o->t, socket_id, ch, NULL);
    bench_ws_send_text(&s->ws, p->msg.data, p->msg.len);
    snprintf(ch, sizeof ch, "presence-%s-probe-%d", p->o->tag, slot);
    snprintf(data, sizeof data, "{\"user_id\":\"p%llu\"}", (unsigned long long)p->users++);
    bench_pusher_subscribe(&p->msg, &p->o->t, socket_id, ch, data);
    bench_ws_send_text(&s->ws, p->msg.data, p->msg.len);
}

static void probe_established(probe_slot *s, const bench_pev *ev, uint64_t now)
{
    probe *p = s->p;
    uint64_t us = now - s->ws.t_open_us;
    s->established = true;
    p->res.c[BC_CONN_OK]++;
    bench_hist_record(&p->res.h[BH_PROBE_PRE + s->phase], us);
    if (us > PROBE_SLOW_US)
        p->x[PX_CONN_SLOW + s->phase]++;
    probe_subscribe(s, ev->socket_id);
}

/* Served: connected and both subscriptions confirmed. */
static void probe_sub_ok(probe_slot *s, uint64_t now)
{
    probe *p = s->p;
    p->res.c[BC_SUB_OK]++;
    if (++s->subs_ok < 2)
        return;
    uint64_t us = now - s->ws.t_open_us;
    bench_hist_record(&p->res.h[BH_SERVED_PRE + s->phase], us);
    if (us > PROBE_SLOW_US)
        p->x[PX_SERVED_SLOW + s->phase]++;
    probe_free(s);
}

static void probe_on_text(bench_ws *ws, const char *msg, size_t len, uint64_t now)
{
    probe_slot *s = (probe_slot *)ws;
    bench_pev ev;
    bench_pusher_parse(msg, len, &ev);
    if (ev.kind == BP_ESTABLISHED && !s->established)
        probe_established(s, &ev, now);
    else if (ev.kind == BP_SUB_OK && s->established)
        probe_sub_ok(s, now);
    else if (ev.kind == BP_SUB_ERROR || ev.kind == BP_ERROR)
        probe_fail(s, s->established ? BC_SUB_FAIL : BC_CONN_FAIL);
}

static void probe_on_close(bench_ws *ws, int code)
{
    probe_slot *s = (probe_slot *)ws;
    (void)code;
    s->p->res.c[s->established ? BC_SUB_FAIL : BC_CONN_FAIL]++;
    s->busy = false;
}

static const bench_ws_ops probe_ws_ops = {.on_text = probe_on_text, .on_close = probe_on_close};

static void probe_open(probe *p)
{
    for (int i = 0; i < PROBE_SLOTS; i++) {
        probe_slot *s = &p->slots[i];
        if (s->busy)
            continue;
        s->busy = true;
        s->established = false;
        s->subs_ok = 0;
        s->phase = p->phase;
        if (bench_ws_open(&s->ws, &p->o->t) < 0) {
            p->res.c[BC_CONN_FAIL]++;
            s->busy = false;
        }
        return;
    }
    p->res.c[BC_BACKLOG]++; /* every slot busy: the server is not answering */
}

static void probe_scan(probe *p, uint64_t now)
{
    for (int i = 0; i < PROBE_SLOTS; i++) {
        probe_slot *s = &p->slots[i];
        if (s->busy && now > s->ws.t_open_us + BENCH_CONNECT_TIMEOUT_US)
            probe_fail(s, s->established ? BC_SUB_FAIL : BC_CONN_FAIL);
    }
}

static void probe_tick(void *arg, uint64_t now)
{
    probe *p = arg;
    if (!p->running)
        return;
    uint64_t due = (uint64_t)((double)(now - p->t0) * p->o->probe_rate / 1e6) + 1;
    for (; p->due_done < due; p->due_done++)
        probe_open(p);
    if (now - p->last_scan >= 100000u) {
        p->last_scan = now;
        probe_scan(p, now);
    }
}

static void probe_on_cmd(void *arg, char cmd)
{
    probe *p = arg;
    if (cmd == 'p') { /* (re)start, phase "before" */
        p->running = true;
        p->t0 = p->last_scan = bench_now_us();
        p->due_done = 0;
        p->phase = PH_PRE;
    } else if (cmd == 's' || cmd == 'a') {
        p->phase = cmd == 's' ? PH_STORM : PH_POST;
    } else if (cmd == 'R' || cmd == 'q') { /* report and pause */
        p->running = false;
        for (int i = 0; i < PROBE_SLOTS; i++)
            if (p->slots[i].busy)
                probe_free(&p->slots[i]);
        bench_child_post_result(p->c, &p->res, p->x, PX__COUNT);
        memset(&p->res, 0, sizeof p->res);
        memset(p->x, 0, sizeof p->x);
        if (cmd == 'q')
            bench_loop_stop(p->loop);
    }
}

static int probe_main(bench_child *c)
{
    static probe p;
    p.loop = bench_loop_create();
    p.c = c;
    p.o = c->o;
    hd_buf_init(&p.msg);
    for (int i = 0; i < PROBE_SLOTS; i++) {
        bench_ws_init(&p.slots[i].ws, p.loop, &probe_ws_ops);
        p.slots[i].p = &p;
    }
    bench_child_watch(c, p.loop, probe_on_cmd, &p);
    bench_loop_run(p.loop, probe_tick, &p);
    for (int i = 0; i < PROBE_SLOTS; i++)
        bench_ws_deinit(&p.slots[i].ws);
    hd_buf_deinit(&p.msg);
    bench_loop_destroy(p.loop);
    return 0;
}

/* ---- parent ---- */

typedef struct storm_round {
    bench_server_sample before, empty, after;
    bench_metrics m_before, m_after;
    uint64_t t_drop, t_dropped, t_empty;
    uint32_t polls, left_first;
    bench_result workers, probe;
    uint64_t probe_x[PX__COUNT]; /* probes over PROBE_SLOW_US, per phase */
} storm_round;

/* Storm channels still listed by GET /apps/{id}/channels; -1 on error. */
static long storm_count_channels(const bench_opts *o, hd_buf *req)
{
    char path[300], needle[48];
    bench_http_resp resp;
    snprintf(path, sizeof path, "/apps/%s/channels", o->t.app_id);
    snprintf(needle, sizeof needle, "%s-storm-", o->tag);
    bench_api_get(req, &o->t, path);
    long n = -1;
    if (bench_http_fetch(&o->t, req->data, req->len, &resp, 5000) == 0 && resp.status == 200) {
        n = 0;
        for (const char *p = resp.body.data; p && (p = strstr(p, needle)); p += strlen(needle))
            n++;
    } else {
        fprintf(stderr, "storm: GET %s failed (status %d)\n", path, resp.status);
    }
    hd_buf_deinit(&resp.body);
    return n;
}

static void storm_poll_empty(const bench_opts *o, storm_round *rd)
{
    hd_buf req;
    hd_buf_init(&req);
    for (;;) {
        long n = storm_count_channels(o, &req);
        rd->polls++;
        if (rd->polls == 1)
            rd->left_first = n > 0 ? (uint32_t)n : 0;
        uint64_t now = bench_now_us();
        if (n == 0) {
            rd->t_empty = now;
            break;
        }
        if (now > rd->t_drop + STORM_EMPTY_TIMEOUT_US)
            break;
        bench_sleep_us(STORM_POLL_US);
    }
    hd_buf_deinit(&req);
}

static void storm_metrics(const bench_opts *o, bench_metrics *m)
{
    m->sync_fallbacks = m->queue_high_water = -1;
    if (o->has_metrics && bench_metrics_read(&o->metrics, m) < 0)
        fprintf(stderr, "storm: metrics endpoint %s:%d unreachable\n", o->metrics.host, o->metrics.port);
}

static uint64_t max_u64(const uint64_t *v, int n)
{
    uint64_t m = 0;
    for (int i = 0; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

static int storm_one(const bench_opts *o, bench_proc *ws, int n, bench_proc *pr, storm_round *rd)
{
    uint64_t *done = hd_calloc((size_t)n, sizeof *done);
    bench_sleep_us((uint64_t)(o->settle * 1e6)); /* let the joins' member_added traffic drain */
    bench_proc_cmd(pr, 1, 'p');
    bench_sleep_us(1000000);
    bench_server_sample_take(o->server_pid, &rd->before);
    storm_metrics(o, &rd->m_before);
    bench_proc_cmd(pr, 1, 's');
    rd->t_drop = bench_now_us();
    bench_proc_cmd(ws, n, 'd');
    int rc = bench_proc_wait(ws, n, BM_DONE, done, 60000);
    rd->t_dropped = max_u64(done, n);
    hd_free(done);
    storm_poll_empty(o, rd);
    bench_server_sample_take(o->server_pid, &rd->empty);
    uint64_t storm_end = rd->t_empty > rd->t_drop + STORM_MIN_US ? rd->t_empty : rd->t_drop + STORM_MIN_US;
    uint64_t now = bench_now_us();
    if (now < storm_end)
        bench_sleep_us(storm_end - now);
    bench_proc_cmd(pr, 1, 'a');
    bench_sleep_us((uint64_t)(o->settle * 1e6));
    bench_server_sample_take(o->server_pid, &rd->after);
    storm_metrics(o, &rd->m_after);
    if (bench_proc_collect(ws, n, 'R', &rd->workers, NULL, 0) < 0 ||
        bench_proc_collect(pr, 1, 'R', &rd->probe, rd->probe_x, PX__COUNT) < 0)
        rc = -1;
    return rc;
}

static const char *const phase_key[PH__COUNT] = {"pre", "storm", "post"};
static const char *const phase_label[PH__COUNT] = {"before", "storm", "after"};

/* Connect, and connect + subscribe (served), per phase; prefix "r1_" or "all_". */
static void storm_report_probe(bench_report *rep, char *k, size_t ksz, int round, const bench_result *pr,
                               const uint64_t *x)
{
    char label[64], pre[16] = "all";
    if (round >= 0)
        snprintf(pre, sizeof pre, "r%d", round + 1);
    for (int ph = 0; ph < PH__COUNT; ph++) {
        snprintf(k, ksz, "%s_probe_%s", pre, phase_key[ph]);
        snprintf(label, sizeof label, "probe connect, %s", phase_label[ph]);
        bench_report_hist(rep, k, &pr->h[BH_PROBE_PRE + ph], label);
        snprintf(k, ksz, "%s_probe_served_%s", pre, phase_key[ph]);
        snprintf(label, sizeof label, "probe connect+subscribe, %s", phase_label[ph]);
        bench_report_hist(rep, k, &pr->h[BH_SERVED_PRE + ph], label);
        snprintf(k, ksz, "%s_probe_connect_over_50ms_%s", pre, phase_key[ph]);
        snprintf(label, sizeof label, "probes connect > 50 ms, %s", phase_label[ph]);
        bench_report_int(rep, k, x[PX_CONN_SLOW + ph], label);
        snprintf(k, ksz, "%s_probe_served_over_50ms_%s", pre, phase_key[ph]);
        snprintf(label, sizeof label, "probes served > 50 ms, %s", phase_label[ph]);
        bench_report_int(rep, k, x[PX_SERVED_SLOW + ph], label);
    }
    snprintf(k, ksz, "%s_probe_sub_fail", pre);
    bench_report_int(rep, k, pr->c[BC_SUB_FAIL], "probe subscribe failures");
}

static void storm_report_round(bench_report *rep, const bench_opts *o, int i, const storm_round *rd)
{
    char k[64], title[64];
#define KEY(name) (snprintf(k, sizeof k, "r%d_%s", i + 1, name), k)
    snprintf(title, sizeof title, "round %d", i + 1);
    bench_report_section(rep, title);
    bench_report_int(rep, KEY("conn_ok"), rd->workers.c[BC_CONN_OK], "connected");
    bench_report_int(rep, KEY("conn_fail"), rd->workers.c[BC_CONN_FAIL], "failed connects");
    bench_report_int(rep, KEY("sub_ok"), rd->workers.c[BC_SUB_OK], "subscriptions");
    bench_report_int(rep, KEY("sub_fail"), rd->workers.c[BC_SUB_FAIL], "failed subscriptions");
    bench_report_int(rep, KEY("closed_early"), rd->workers.c[BC_CLOSED], "closed by the server before the drop");
    bench_report_hist(rep, KEY("handshake"), &rd->workers.h[BH_HANDSHAKE], "handshake latency (setup)");
    bench_report_num(rep, KEY("drop_ms"), (double)(rd->t_dropped - rd->t_drop) / 1000.0, "ms",
                     "time to reset every socket");
    bench_report_int(rep, KEY("channels_left_first_poll"), rd->left_first, "storm channels at first poll");
    bench_report_int(rep, KEY("polls"), rd->polls, "registry polls");
    bench_report_num(rep, KEY("registry_empty_ms"),
                     rd->t_empty ? (double)(rd->t_empty - rd->t_drop) / 1000.0 : -1, "ms",
                     "drop -> registry empty (-1: never)");
    storm_report_probe(rep, k, sizeof k, i, &rd->probe, rd->probe_x);
    bench_report_int(rep, KEY("probe_fail"), rd->probe.c[BC_CONN_FAIL], "probe connect failures");
    bench_report_int(rep, KEY("probe_skipped"), rd->probe.c[BC_BACKLOG], "probes skipped (all slots busy)");
    bench_report_rss(rep, KEY("rss_before_mib"), &rd->before, "RSS before the drop");
    bench_report_rss(rep, KEY("rss_empty_mib"), &rd->empty, "RSS when the registry is empty");
    bench_report_rss(rep, KEY("rss_after_mib"), &rd->after, "RSS after settling");
    bench_report_cpu(rep, KEY("storm"), &rd->before, &rd->empty, rd->workers.c[BC_CONN_OK], "disconnect");
    if (rd->m_before.sync_fallbacks >= 0 && rd->m_after.sync_fallbacks >= 0)
        bench_report_num(rep, KEY("cleanup_sync_fallbacks"), rd->m_after.sync_fallbacks - rd->m_before.sync_fallbacks,
                         "", "herald cleanup sync fallbacks");
    if (rd->m_after.queue_high_water >= 0)
        bench_report_num(rep, KEY("cleanup_queue_high_water"), rd->m_after.queue_high_water, "",
                         "herald cleanup queue high water");
#undef KEY
    (void)o;
}

/* The probes of every round together: the figures the target is about. */
static void storm_report_all(bench_report *rep, const storm_round *rd, uint32_t rounds)
{
    bench_result all;
    uint64_t x[PX__COUNT] = {0};
    char k[64];
    memset(&all, 0, sizeof all);
    for (uint32_t i = 0; i < rounds; i++) {
        bench_result_merge(&all, &rd[i].probe);
        for (int j = 0; j < PX__COUNT; j++)
            x[j] += rd[i].probe_x[j];
    }
    bench_report_section(rep, "probes, all rounds");
    storm_report_probe(rep, k, sizeof k, -1, &all, x);
    bench_report_int(rep, "all_probe_fail", all.c[BC_CONN_FAIL], "probe connect failures");
    bench_report_int(rep, "all_probe_skipped", all.c[BC_BACKLOG], "probes skipped (all slots busy)");
}

static void storm_report(const bench_opts *o, int procs, const storm_round *rd, uint32_t rounds,
                         const bench_server_sample *idle)
{
    bench_report rep;
    bench_report_begin(&rep, o);
    bench_report_section(&rep, "load");
    bench_report_int(&rep, "conns", o->conns, "connections");
    bench_report_int(&rep, "channels", o->channels, "presence + public channel pairs");
    bench_report_int(&rep, "procs", (uint64_t)procs, "client processes");
    bench_report_num(&rep, "probe_rate", o->probe_rate, "conn/s", "probe rate");
    bench_report_int(&rep, "rounds", rounds, "rounds");
    bench_report_int(&rep, "metrics", o->has_metrics, "metrics endpoint given");
    bench_report_rss(&rep, "rss_idle_mib", idle, "RSS before any connection");
    for (uint32_t i = 0; i < rounds; i++)
        storm_report_round(&rep, o, (int)i, &rd[i]);
    storm_report_all(&rep, rd, rounds);
    if (rounds >= 2 && rd[0].after.ok && rd[0].after.rss_kb > 0) {
        bench_report_section(&rep, "growth");
        double g = (double)(rd[rounds - 1].after.rss_kb - rd[0].after.rss_kb) * 100.0 / (double)rd[0].after.rss_kb;
        bench_report_num(&rep, "rss_growth_pct", g, "%", "RSS after last vs first round");
    }
    bench_report_end(&rep);
}

static int storm_rounds(const bench_opts *o, bench_proc *ws, int n, bench_proc *pr, storm_round *rd,
                        uint32_t rounds)
{
    int rc = 0;
    for (uint32_t i = 0; i < rounds && rc == 0; i++) {
        if (i > 0)
            bench_proc_cmd(ws, n, 'r');
        rc = bench_proc_wait(ws, n, BM_READY, NULL, bench_setup_timeout_ms(o, o->conns));
        if (rc == 0)
            rc = storm_one(o, ws, n, pr, &rd[i]);
        printf("storm: round %u: registry empty after %.1f ms\n", i + 1,
               rd[i].t_empty ? (double)(rd[i].t_empty - rd[i].t_drop) / 1000.0 : -1.0);
    }
    return rc;
}

int bench_run_storm(const bench_opts *o)
{
    int n = bench_default_procs(o, o->conns);
    uint32_t rounds = o->rounds > STORM_MAX_ROUNDS ? STORM_MAX_ROUNDS : o->rounds;
    bench_proc *ws = hd_calloc((size_t)n, sizeof *ws), pr = {0};
    storm_round *rd = hd_calloc(rounds, sizeof *rd);
    bench_server_sample idle;
    bench_result scratch;
    printf("storm: %u connections on %u presence + %u public channels, %u round(s), probe %.0f/s\n", o->conns,
           o->channels, o->channels, rounds, o->probe_rate);
    bench_server_sample_take(o->server_pid, &idle);
    if (bench_proc_spawn_all(ws, n, o, storm_worker_main) < 0 || bench_proc_spawn(&pr, 0, 1, o, probe_main) < 0)
        return -1;
    int rc = storm_rounds(o, ws, n, &pr, rd, rounds);
    memset(&scratch, 0, sizeof scratch);
    bench_proc_collect(ws, n, 'q', &scratch, NULL, 0);
    bench_proc_collect(&pr, 1, 'q', &scratch, NULL, 0);
    bench_proc_reap(ws, n);
    bench_proc_reap(&pr, 1);
    storm_report(o, n, rd, rounds, &idle);
    hd_free(rd);
    hd_free(ws);
    return rc;
}
