/* scen_churn.c - the `churn` scenario: --concurrency loops, each doing
 * connect -> subscribe (one presence channel with channel_data, two public
 * channels) -> disconnect (close handshake, or RST with --rst), again and
 * again for --duration s; cycles/s, cycle latency, and the server's RSS
 * growth per cycle.
 *
 * DESIGN
 * ------
 * Loop g (global index over all workers) always uses user id "u<g>" (with
 * --unique-users "u<g>c<n>" in its n-th cycle, so no cycle's join can meet
 * the same user's previous connection still on the server) and
 * channels presence-<tag>-churn-<g % C>, <tag>-churn-a-<g % C> and
 * <tag>-churn-b-<g % C>, so presence members come and go (member_added /
 * member_removed reach the other loops on the channel). A cycle completes
 * when the disconnect is done: at once for RST, after the server closed TCP
 * for a close handshake. A failed cycle (refused, error, 15 s timeout)
 * restarts after 10 ms and is counted. With --targets, loop g connects to
 * target (g / C) % count, so a channel's members sit on every node (cluster
 * presence churn: each join and leave crosses to the other nodes), and
 * an observer process (scen_churn_obs.c) keeps one member per channel per
 * node for the whole run and counts the member_added / member_removed that
 * reach it from its own node and from the others.
 * Phases: 'g' starts; each worker posts BM_MARK with its cycle count when
 * --warmup s have passed (the parent samples RSS then: the baseline), and
 * BM_DONE with its count after --duration s (parent samples again, then
 * once more after --settle s). Growth per cycle = RSS delta / cycles after
 * the warm-up.
 *
 * THREADING
 * ---------
 * Parent and workers are single-threaded processes.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define CHURN_RETRY_US 10000u
#define CHURN_DRAIN_US (3 * 1000000ull)

enum { CS_IDLE, CS_OPENING, CS_SUBSCRIBING, CS_CLOSING };

typedef struct churn_worker churn_worker;
typedef struct churn_slot {
    bench_ws ws;          /* first */
    churn_worker *w;
    uint32_t gidx;
    uint8_t state, subs_ok;
    uint32_t opened;      /* cycles started (the user id's suffix with --unique-users) */
    uint64_t t_start, next_us;
} churn_slot;

struct churn_worker {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;
    bench_result res;
    churn_slot *slots;
    uint32_t n;
    hd_buf msg;
    uint64_t t0, t_warm, t_end, last_scan;
    bool running, marked, done;
    uint32_t logged;
};

static void churn_subscribe_all(churn_worker *w, churn_slot *s, const char *socket_id)
{
    char ch[96], data[96], user[32];
    uint32_t k = s->gidx % w->o->channels;
    if (w->o->unique_users)
        snprintf(user, sizeof user, "u%uc%u", s->gidx, s->opened);
    else
        snprintf(user, sizeof user, "u%u", s->gidx);
    snprintf(data, sizeof data, "{\"user_id\":\"%s\",\"user_info\":{\"name\":\"bench\"}}", user);
    snprintf(ch, sizeof ch, "presence-%s-churn-%u", w->o->tag, k);
    bench_pusher_subscribe(&w->msg, &w->o->t, socket_id, ch, data);
    bench_ws_send_text(&s->ws, w->msg.data, w->msg.len);
    snprintf(ch, sizeof ch, "%s-churn-a-%u", w->o->tag, k);
    bench_pusher_subscribe(&w->msg, &w->o->t, socket_id, ch, NULL);
    bench_ws_send_text(&s->ws, w->msg.data, w->msg.len);
    snprintf(ch, sizeof ch, "%s-churn-b-%u", w->o->tag, k);
    bench_pusher_subscribe(&w->msg, &w->o->t, socket_id, ch, NULL);
    bench_ws_send_text(&s->ws, w->msg.data, w->msg.len);
}

static void churn_cycle_done(churn_worker *w, churn_slot *s, uint64_t now)
{
    w->res.c[BC_CYCLES]++;
    bench_hist_record(&w->res.h[BH_REQUEST], now - s->t_start);
    s->state = CS_IDLE;
    s->next_us = now;
}

static void churn_fail(churn_worker *w, churn_slot *s, const char *why, int code)
{
    uint64_t now = bench_now_us();
    if (w->logged++ < 5)
        fprintf(stderr, "churn: loop %u: %s (%d)\n", s->gidx, why, code);
    w->res.c[s->state == CS_OPENING ? BC_CONN_FAIL : BC_SUB_FAIL]++;
    bench_ws_abort(&s->ws);
    s->state = CS_IDLE;
    s->next_us = now + CHURN_RETRY_US;
}

static void churn_disconnect(churn_worker *w, churn_slot *s, uint64_t now)
{
    if (w->o->rst) {
        bench_ws_close(&s->ws, true);
        churn_cycle_done(w, s, now);
        return;
    }
    s->state = CS_CLOSING;
    bench_ws_close(&s->ws, false);
}

static void churn_on_text(bench_ws *ws, const char *msg, size_t len, uint64_t now)
{
    churn_slot *s = (churn_slot *)ws;
    churn_worker *w = s->w;
    bench_pev ev;
    bench_pusher_parse(msg, len, &ev);
    if (ev.kind == BP_PING) {
        bench_pusher_pong(ws);
    } else if (ev.kind == BP_ESTABLISHED && s->state == CS_OPENING) {
        w->res.c[BC_CONN_OK]++;
        bench_hist_record(&w->res.h[BH_HANDSHAKE], now - s->t_start);
        s->state = CS_SUBSCRIBING;
        churn_subscribe_all(w, s, ev.socket_id);
    } else if (ev.kind == BP_SUB_OK && s->state == CS_SUBSCRIBING) {
        w->res.c[BC_SUB_OK]++;
        if (++s->subs_ok == 3)
            churn_disconnect(w, s, now);
    } else if ((ev.kind == BP_SUB_ERROR || ev.kind == BP_ERROR) && s->state == CS_SUBSCRIBING) {
        churn_fail(w, s, "subscription refused", ev.code);
    }
}

static void churn_on_close(bench_ws *ws, int code)
{
    churn_slot *s = (churn_slot *)ws;
    if (s->state == CS_CLOSING)
        churn_cycle_done(s->w, s, bench_now_us());
    else if (s->state != CS_IDLE)
        churn_fail(s->w, s, code < 0 ? strerror(-code) : "closed by the server", code);
}

static const bench_ws_ops churn_ws_ops = {.on_text = churn_on_text, .on_close = churn_on_close};

static void churn_open(churn_worker *w, churn_slot *s, uint64_t now)
{
    s->t_start = now;
    s->subs_ok = 0;
    s->opened++;
    s->state = CS_OPENING;
    int rc = bench_ws_open(&s->ws, bench_client_target(w->o, s->gidx));
    if (rc < 0)
        churn_fail(w, s, strerror(-rc), rc);
}

/* Time out stuck cycles; true when every loop is idle. */
static bool churn_scan(churn_worker *w, uint64_t now)
{
    bool idle = true;
    for (uint32_t i = 0; i < w->n; i++) {
        churn_slot *s = &w->slots[i];
        if (s->state != CS_IDLE && now > s->t_start + BENCH_CONNECT_TIMEOUT_US)
            churn_fail(w, s, "timeout", 0);
        idle = idle && s->state == CS_IDLE;
    }
    return idle;
}

static void churn_phase(churn_worker *w, uint64_t now)
{
    if (!w->marked && now >= w->t_warm) {
        w->marked = true;
        w->res.c[BC_WARM_CYCLES] = w->res.c[BC_CYCLES];
        bench_child_post_u64(w->c, BM_MARK, w->res.c[BC_CYCLES]);
    }
    if (w->running && now >= w->t_end)
        w->running = false;
}

static void churn_tick(void *arg, uint64_t now)
{
    churn_worker *w = arg;
    if (!w->t0 || w->done)
        return;
    churn_phase(w, now);
    for (uint32_t i = 0; w->running && i < w->n; i++)
        if (w->slots[i].state == CS_IDLE && now >= w->slots[i].next_us)
            churn_open(w, &w->slots[i], now);
    if (now - w->last_scan < 100000u)
        return;
    w->last_scan = now;
    bool idle = churn_scan(w, now);
    if (!w->running && (idle || now >= w->t_end + CHURN_DRAIN_US)) {
        w->done = true;
        bench_child_post_u64(w->c, BM_DONE, w->res.c[BC_CYCLES]);
    }
}

static void churn_on_cmd(void *arg, char cmd)
{
    churn_worker *w = arg;
    if (cmd == 'g' && !w->t0) {
        w->t0 = w->last_scan = bench_now_us();
        w->t_warm = w->t0 + (uint64_t)(w->o->warmup * 1e6);
        w->t_end = w->t_warm + (uint64_t)(w->o->duration * 1e6);
        w->running = true;
    } else if (cmd == 'q') {
        for (uint32_t i = 0; i < w->n; i++)
            bench_ws_close(&w->slots[i].ws, true);
        bench_child_post_result(w->c, &w->res, NULL, 0);
        bench_loop_stop(w->loop);
    }
}

static int churn_worker_main(bench_child *c)
{
    static churn_worker w;
    w.loop = bench_loop_create();
    w.c = c;
    w.o = c->o;
    w.n = bench_pool_share(c->o->concurrency, c->index, c->nprocs);
    w.slots = hd_calloc(w.n + 1, sizeof *w.slots);
    hd_buf_init(&w.msg);
    for (uint32_t i = 0; i < w.n; i++) {
        bench_ws_init(&w.slots[i].ws, w.loop, &churn_ws_ops);
        w.slots[i].w = &w;
        w.slots[i].gidx = i * (uint32_t)c->nprocs + (uint32_t)c->index;
    }
    bench_child_watch(c, w.loop, churn_on_cmd, &w);
    bench_loop_run(w.loop, churn_tick, &w);
    for (uint32_t i = 0; i < w.n; i++)
        bench_ws_deinit(&w.slots[i].ws);
    hd_free(w.slots);
    hd_buf_deinit(&w.msg);
    bench_loop_destroy(w.loop);
    return 0;
}

typedef struct churn_marks {
    bench_server_sample s[4]; /* start, warm, end, settled */
    uint64_t warm_cycles, end_cycles;
} churn_marks;

static uint64_t sum_u64(const uint64_t *v, int n)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s;
}

static void churn_report_rss(bench_report *rep, const churn_marks *m, uint64_t cycles)
{
    const bench_server_sample *s = m->s;
    bench_report_rss(rep, "rss_start_mib", &s[0], "RSS at start");
    bench_report_rss(rep, "rss_warm_mib", &s[1], "RSS after the warm-up");
    bench_report_rss(rep, "rss_end_mib", &s[2], "RSS at the end");
    bench_report_rss(rep, "rss_settled_mib", &s[3], "RSS after settling");
    if (!s[1].ok || !s[2].ok || !s[3].ok || cycles == 0)
        return;
    bench_report_num(rep, "rss_growth_per_cycle_bytes", (double)(s[2].rss_kb - s[1].rss_kb) * 1024.0 / (double)cycles,
                     "B", "RSS growth per cycle (after warm-up)");
    bench_report_num(rep, "rss_growth_per_cycle_settled_bytes",
                     (double)(s[3].rss_kb - s[1].rss_kb) * 1024.0 / (double)cycles, "B",
                     "RSS growth per cycle, settled");
}

/* Cluster runs: what the observers saw (scen_churn_obs.c). */
static void churn_report_observers(bench_report *rep, const bench_opts *o, const bench_result *r, const uint64_t *x)
{
    uint64_t added = x[BENCH_CHURN_OBS_ADDED_LOCAL] + x[BENCH_CHURN_OBS_ADDED_REMOTE];
    /* each cycle is seen by one observer per node on its channel */
    uint64_t seen_max = r->c[BC_CYCLES] * (uint64_t)o->n_targets;
    bench_report_section(rep, "observers (one per channel per node)");
    bench_report_int(rep, "obs_added_local", x[BENCH_CHURN_OBS_ADDED_LOCAL], "member_added from the same node");
    bench_report_int(rep, "obs_added_remote", x[BENCH_CHURN_OBS_ADDED_REMOTE], "member_added from another node");
    bench_report_int(rep, "obs_removed_local", x[BENCH_CHURN_OBS_REMOVED_LOCAL], "member_removed, same node");
    bench_report_int(rep, "obs_removed_remote", x[BENCH_CHURN_OBS_REMOVED_REMOTE], "member_removed, another node");
    bench_report_num(rep, "obs_added_per_cycle", seen_max ? (double)added / (double)seen_max : 0, "",
                     "member_added seen / (cycles x nodes)");
    if (o->unique_users) { /* every cycle is exactly one added and one removed at each of them */
        uint64_t removed = x[BENCH_CHURN_OBS_REMOVED_LOCAL] + x[BENCH_CHURN_OBS_REMOVED_REMOTE];
        bench_report_int(rep, "obs_expected", seen_max, "expected of each (cycles x nodes)");
        bench_report_int(rep, "obs_added_missing", seen_max > added ? seen_max - added : 0,
                         "member_added missing (must be 0)");
        bench_report_int(rep, "obs_removed_missing", seen_max > removed ? seen_max - removed : 0,
                         "member_removed missing (must be 0)");
        bench_report_int(rep, "obs_extra", (added > seen_max ? added - seen_max : 0) +
                         (removed > seen_max ? removed - seen_max : 0), "events beyond the expected");
    }
    bench_report_int(rep, "obs_unbalanced", x[BENCH_CHURN_OBS_UNBALANCED], "users added != removed (must be 0)");
    bench_report_int(rep, "obs_failed", x[BENCH_CHURN_OBS_CLOSED], "observers failed or closed");
    bench_report_int(rep, "obs_unexpected", x[BENCH_CHURN_OBS_UNEXPECTED], "member events about nobody");
}

static void churn_report(const bench_opts *o, int procs, const bench_result *r, const churn_marks *m,
                         const uint64_t *obs)
{
    bench_report rep;
    uint64_t cycles = m->end_cycles - m->warm_cycles;
    double secs = (double)(m->s[2].at_us - m->s[1].at_us) / 1e6;
    bench_report_begin(&rep, o);
    bench_report_section(&rep, "load");
    bench_report_int(&rep, "concurrency", o->concurrency, "parallel loops");
    bench_report_int(&rep, "procs", (uint64_t)procs, "client processes");
    bench_report_int(&rep, "presence_channels", o->channels, "presence channels");
    bench_report_str(&rep, "disconnect", o->rst ? "rst" : "close", "disconnect");
    bench_report_num(&rep, "warmup_s", o->warmup, "s", "warm-up");
    bench_report_num(&rep, "duration_s", o->duration, "s", "measured");
    bench_report_section(&rep, "cycles");
    bench_report_int(&rep, "cycles", cycles, "cycles after warm-up");
    bench_report_num(&rep, "cycles_per_s", secs > 0 ? (double)cycles / secs : 0, "cycles/s", "cycles per second");
    bench_report_int(&rep, "cycles_total", r->c[BC_CYCLES], "cycles in all");
    bench_report_int(&rep, "conn_fail", r->c[BC_CONN_FAIL], "failed connects");
    bench_report_int(&rep, "sub_fail", r->c[BC_SUB_FAIL], "failed subscriptions / closes");
    bench_report_hist(&rep, "handshake", &r->h[BH_HANDSHAKE], "handshake latency");
    bench_report_hist(&rep, "cycle", &r->h[BH_REQUEST], "whole cycle");
    if (o->n_targets > 1)
        churn_report_observers(&rep, o, r, obs);
    bench_report_section(&rep, "server");
    churn_report_rss(&rep, m, cycles);
    bench_report_cpu(&rep, "server", &m->s[1], &m->s[2], cycles, "cycle");
    bench_report_end(&rep);
}

int bench_run_churn(const bench_opts *o)
{
    int n = bench_default_procs(o, o->concurrency);
    bench_proc *ps = hd_calloc((size_t)n, sizeof *ps);
    bench_result *r = hd_calloc(1, sizeof *r);
    uint64_t *vals = hd_calloc((size_t)n, sizeof *vals);
    churn_marks m = {0};
    printf("churn: %u loops, presence + 2 public channels, %s, %.0f s warm-up + %.0f s\n", o->concurrency,
           o->rst ? "RST" : "close handshake", o->warmup, o->duration);
    bench_proc obs_proc = {0};
    uint64_t obs[BENCH_CHURN_OBS__COUNT] = {0};
    bool observe = o->n_targets > 1;
    if (observe && (bench_proc_spawn(&obs_proc, 0, 1, o, bench_churn_obs_main) < 0 ||
                    bench_proc_wait(&obs_proc, 1, BM_READY, NULL, bench_setup_timeout_ms(o, o->channels)) < 0)) {
        bench_proc_kill(&obs_proc, 1);
        return -1;
    }
    if (bench_proc_spawn_all(ps, n, o, churn_worker_main) < 0)
        return -1;
    bench_server_sample_take(o->server_pid, &m.s[0]);
    bench_proc_cmd(ps, n, 'g');
    int rc = bench_proc_wait(ps, n, BM_MARK, vals, (int)(o->warmup * 1000) + 30000);
    m.warm_cycles = sum_u64(vals, n);
    bench_server_sample_take(o->server_pid, &m.s[1]);
    if (rc == 0)
        rc = bench_proc_wait(ps, n, BM_DONE, vals, (int)(o->duration * 1000) + 30000);
    m.end_cycles = sum_u64(vals, n);
    bench_server_sample_take(o->server_pid, &m.s[2]);
    bench_sleep_us((uint64_t)(o->settle * 1e6));
    bench_server_sample_take(o->server_pid, &m.s[3]);
    if (bench_proc_collect(ps, n, 'q', r, NULL, 0) < 0)
        rc = -1;
    bench_proc_reap(ps, n);
    if (observe) { /* after --settle s: the last leaves have reached them */
        bench_result obs_res = {0};
        if (bench_proc_collect(&obs_proc, 1, 'q', &obs_res, obs, BENCH_CHURN_OBS__COUNT) < 0)
            rc = -1;
        bench_proc_reap(&obs_proc, 1);
    }
    churn_report(o, n, r, &m, obs);
    hd_free(vals);
    hd_free(ps);
    hd_free(r);
    return rc;
}
