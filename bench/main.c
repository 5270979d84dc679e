/* main.c - herald_bench: command line, scenario defaults, dispatch.
 *
 *   herald_bench SCENARIO [options]     (herald_bench --help lists them)
 *   herald_bench floor-server --port P  (the fanout floor, floor_server.c)
 *
 * DESIGN
 * ------
 * Options are parsed once in the parent, before any fork, into one
 * bench_opts that every worker inherits. Options left unset get the
 * scenario's own default (0 / negative sentinels below). The target must be
 * loopback; so must the metrics endpoint.
 *
 * THREADING
 * ---------
 * Parent process, before the workers exist.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "bench.h"

typedef struct scenario {
    const char *name;
    int (*run)(const bench_opts *o);
    uint32_t conns, channels;
    double rate, duration;
} scenario;

static const scenario scenarios[] = {
    {"connect", bench_run_connect, 10000, 0, 0, 0},
    {"fanout", bench_run_fanout, 1000, 10, 400, 20},
    {"client-events", bench_run_client_events, 1000, 0, 10, 20},
    {"churn", bench_run_churn, 0, 10, 0, 20},
    {"storm", bench_run_storm, 19000, 0, 0, 0},
    {"soak", bench_run_soak, 300, 30, 50, 3600},
    {"publish", bench_run_publish, 1, 1, 0, 5},
    {"kill-reap", bench_run_kill_reap, 500, 10, 0, 30},
};

static void usage(FILE *f)
{
    fputs("usage: herald_bench SCENARIO [options]\n"
          "       herald_bench floor-server --port P [--host 127.0.0.1]   the fanout scenario's one-write\n"
          "                             floor: a minimal server to measure in the same run (floor_server.c)\n"
          "scenarios: connect fanout client-events churn storm soak publish kill-reap\n"
          "target:\n"
          "  --host H (127.0.0.1; loopback only)  --port P (6001)\n"
          "  --app-id ID --app-key KEY --app-secret SECRET   (app-id/app-key/app-secret)\n"
          "  --server-pid PID      read the server's RSS and CPU from /proc\n"
          "  --metrics-url H:P     herald's Prometheus endpoint (storm: cleanup fallbacks)\n"
          "cluster (several server processes sharing a Redis):\n"
          "  --targets H:P,H:P     spread the clients over these (default --host/--port): client g (channel\n"
          "                        g mod C) goes to entry (g / C) mod count, so every channel has clients on\n"
          "                        every entry; one entry puts every client on that node\n"
          "  --publish-target H:P  fanout: where the HTTP publishes go (default --host/--port)\n"
          "  --observe-target H:P  kill-reap: where the observers connect (default --host/--port)\n"
          "  --watch-pid NAME=PID  also report this process's CPU and RSS under NAME (repeatable, up to 8;\n"
          "                        names starting with 'node' are summed as 'nodes', all of them as 'all')\n"
          "  --redis-url H:P       report redis-server's commands processed (INFO stats) over the window\n"
          "kill-reap (-n members 500 on --channels 10 presence channels, on --targets; one observer per\n"
          "channel on --observe-target; then kill -9 of --kill-pid and wait up to --duration 30 s for\n"
          "every member_removed at the observers):\n"
          "  --kill-pid PID        the node the members are connected to (required)\n"
          "load:\n"
          "  -n, --conns N         connections (connect 10000, fanout/client-events 1000, storm 19000)\n"
          "  --channels C          channels (fanout 10, client-events N/2, churn 10, storm N/50)\n"
          "  --connect-rate R      new connections/s over all workers (2000)\n"
          "  --inflight K          handshakes in flight per worker (256)\n"
          "  --rate R              fanout: events/s, 0 = as fast as possible (400);\n"
          "                        client-events: events/s per client (10); connect: = --connect-rate\n"
          "  --duration S          measured phase (fanout/client-events/churn 20)\n"
          "  --hold S              connect: keep the connections idle this long (10)\n"
          "  --publishers K        fanout: HTTP API connections (8)\n"
          "  --payload B           padding bytes in each event's data (0)\n"
          "  --concurrency K       churn: parallel loops (50)\n"
          "  --rst                 churn: disconnect with RST (default: close handshake)\n"
          "  --unique-users        churn: loop g joins as user u<g>c<cycle> (default u<g>), so every cycle\n"
          "                        is a join and a leave of its own (with --targets: counted exactly)\n"
          "  --warmup S            churn: cycles before the RSS baseline (3)\n"
          "  --settle S            churn/storm: wait before the 'settled' RSS (2)\n"
          "  --rounds K            storm: storms in a row (2)\n"
          "  --probe-rate R        storm: probe connections/s (100)\n"
          "  --procs K             client worker processes (auto: one per 15000 connections)\n"
          "  --source-ips K        bind clients to 127.0.0.1..127.0.0.K (IPv4; for > 28000 connections)\n"
          "  --tag T               channel name tag (random)\n"
          "publish (closed-loop signed triggers to one channel, -n subscribers 1; every combination\n"
          "of the three lists below is a run of --warmup 1 s + --duration 5 s; --procs: publisher\n"
          "processes, 1):\n"
          "  --publishers LIST     keep-alive connections, one request in flight each (1,8,32)\n"
          "  --payload LIST        bytes of each event's data as the server decodes it (100,10000)\n"
          "  --batch LIST          events per request: 1 = POST /events, B = /batch_events (1,10)\n"
          "soak (a steady mix for --duration s, default 3600; -n steady clients 300 on --channels 30\n"
          "public/private/presence channels, --rate HTTP triggers/s to them 50; --warmup default\n"
          "duration/10 capped at 300 s):\n"
          "  --sample S            server sampling interval (10)\n"
          "  --csv FILE            time series (soak-TAG.csv)\n"
          "  --churn-rate R        connect+subscribe+disconnect cycles/s (20)\n"
          "  --rst-share F         share of churn cycles ending with RST (0.5)\n"
          "  --ce-rate R           client events/s on the private channels, all senders (50)\n"
          "  --api-rate R          signed HTTP API GETs/s (5)\n"
          "  --busy-rate R         events/s to the slow readers' channel (40)\n"
          "  --busy-payload B      padding bytes of each of those events (8192)\n"
          "  --slow-readers K      clients that subscribe there and stop reading (8)\n"
          "  --slow-hold S         how long a slow reader stays stalled before it drains (30)\n"
          "  --loris-heads K       slowloris request heads trickling a byte at a time (8)\n"
          "  --loris-bodies K      slowloris POST bodies, Content-Length declared, then stalled (8)\n"
          "  --trickle S           s between two trickled bytes (2)\n"
          "  --bad-life S          a slowloris gives up after this long if the server has not (60)\n"
          "  --garbage-ws-rate R   WebSocket connections/s sending one bad frame or message (2)\n"
          "  --garbage-http-rate R TCP connections/s sending random bytes (2)\n"
          "  --webhook-port P      answer herald's webhooks on 127.0.0.1:P (none)\n"
          "  --tolerance PCT       flat/growing verdict tolerance, percent of the mean (5)\n",
          f);
}

enum {
    OPT_HOST = 256, OPT_PORT, OPT_APP_ID, OPT_APP_KEY, OPT_APP_SECRET, OPT_PID, OPT_METRICS, OPT_CHANNELS,
    OPT_CRATE, OPT_INFLIGHT, OPT_RATE, OPT_DURATION, OPT_HOLD, OPT_PUBLISHERS, OPT_PAYLOAD, OPT_CONC, OPT_RST,
    OPT_WARMUP, OPT_SETTLE, OPT_ROUNDS, OPT_PROBE, OPT_PROCS, OPT_TAG, OPT_SRC,
    OPT_SAMPLE, OPT_CSV, OPT_CHURN_RATE, OPT_RST_SHARE, OPT_CE_RATE, OPT_API_RATE, OPT_BUSY_RATE,
    OPT_BUSY_PAYLOAD, OPT_SLOW_READERS, OPT_SLOW_HOLD, OPT_LORIS_HEADS, OPT_LORIS_BODIES, OPT_TRICKLE,
    OPT_BAD_LIFE, OPT_GWS_RATE, OPT_GHTTP_RATE, OPT_HOOK_PORT, OPT_TOLERANCE, OPT_BATCH,
    OPT_TARGETS, OPT_PUB_TARGET, OPT_OBS_TARGET, OPT_WATCH, OPT_REDIS, OPT_KILL, OPT_UNIQUE,
};

static const struct option long_opts[] = {
    {"host", required_argument, 0, OPT_HOST},
    {"port", required_argument, 0, OPT_PORT},
    {"app-id", required_argument, 0, OPT_APP_ID},
    {"app-key", required_argument, 0, OPT_APP_KEY},
    {"app-secret", required_argument, 0, OPT_APP_SECRET},
    {"server-pid", required_argument, 0, OPT_PID},
    {"metrics-url", required_argument, 0, OPT_METRICS},
    {"conns", required_argument, 0, 'n'},
    {"channels", required_argument, 0, OPT_CHANNELS},
    {"connect-rate", required_argument, 0, OPT_CRATE},
    {"inflight", required_argument, 0, OPT_INFLIGHT},
    {"rate", required_argument, 0, OPT_RATE},
    {"duration", required_argument, 0, OPT_DURATION},
    {"hold", required_argument, 0, OPT_HOLD},
    {"publishers", required_argument, 0, OPT_PUBLISHERS},
    {"payload", required_argument, 0, OPT_PAYLOAD},
    {"concurrency", required_argument, 0, OPT_CONC},
    {"rst", no_argument, 0, OPT_RST},
    {"warmup", required_argument, 0, OPT_WARMUP},
    {"settle", required_argument, 0, OPT_SETTLE},
    {"rounds", required_argument, 0, OPT_ROUNDS},
    {"probe-rate", required_argument, 0, OPT_PROBE},
    {"procs", required_argument, 0, OPT_PROCS},
    {"tag", required_argument, 0, OPT_TAG},
    {"source-ips", required_argument, 0, OPT_SRC},
    {"sample", required_argument, 0, OPT_SAMPLE},
    {"csv", required_argument, 0, OPT_CSV},
    {"churn-rate", required_argument, 0, OPT_CHURN_RATE},
    {"rst-share", required_argument, 0, OPT_RST_SHARE},
    {"ce-rate", required_argument, 0, OPT_CE_RATE},
    {"api-rate", required_argument, 0, OPT_API_RATE},
    {"busy-rate", required_argument, 0, OPT_BUSY_RATE},
    {"busy-payload", required_argument, 0, OPT_BUSY_PAYLOAD},
    {"slow-readers", required_argument, 0, OPT_SLOW_READERS},
    {"slow-hold", required_argument, 0, OPT_SLOW_HOLD},
    {"loris-heads", required_argument, 0, OPT_LORIS_HEADS},
    {"loris-bodies", required_argument, 0, OPT_LORIS_BODIES},
    {"trickle", required_argument, 0, OPT_TRICKLE},
    {"bad-life", required_argument, 0, OPT_BAD_LIFE},
    {"garbage-ws-rate", required_argument, 0, OPT_GWS_RATE},
    {"garbage-http-rate", required_argument, 0, OPT_GHTTP_RATE},
    {"webhook-port", required_argument, 0, OPT_HOOK_PORT},
    {"tolerance", required_argument, 0, OPT_TOLERANCE},
    {"batch", required_argument, 0, OPT_BATCH},
    {"targets", required_argument, 0, OPT_TARGETS},
    {"publish-target", required_argument, 0, OPT_PUB_TARGET},
    {"observe-target", required_argument, 0, OPT_OBS_TARGET},
    {"watch-pid", required_argument, 0, OPT_WATCH},
    {"redis-url", required_argument, 0, OPT_REDIS},
    {"kill-pid", required_argument, 0, OPT_KILL},
    {"unique-users", no_argument, 0, OPT_UNIQUE},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

typedef struct raw_opts {
    const char *host, *metrics;
    int port;
    const char *publishers, *payload, *batch; /* publish: lists, as given */
    const char *targets, *pub_target, *obs_target, *redis; /* cluster, as given */
    const char *watch[BENCH_MAX_WATCH];
    int n_watch;
} raw_opts;

static void soak_defaults(bench_soak_opts *k)
{
    k->sample_s = 10;
    k->churn_rate = 20;
    k->rst_share = 0.5;
    k->ce_rate = 50;
    k->api_rate = 5;
    k->busy_rate = 40;
    k->busy_payload = 8192;
    k->slow_readers = 8;
    k->slow_hold = 30;
    k->loris_heads = 8;
    k->loris_bodies = 8;
    k->trickle_s = 2;
    k->bad_life = 60;
    k->garbage_ws_rate = 2;
    k->garbage_http_rate = 2;
    k->tolerance_pct = 5;
}

static void opts_defaults(bench_opts *o, raw_opts *raw)
{
    memset(o, 0, sizeof *o);
    raw->host = "127.0.0.1";
    raw->metrics = NULL;
    raw->port = 6001;
    raw->publishers = raw->payload = raw->batch = NULL;
    raw->targets = raw->pub_target = raw->obs_target = raw->redis = NULL;
    raw->n_watch = 0;
    o->t.app_id = "app-id";
    o->t.app_key = "app-key";
    o->t.app_secret = "app-secret";
    o->connect_rate = 2000;
    o->inflight = 256;
    o->rate = -1;
    o->duration = -1;
    o->hold = 10;
    o->warmup = -1;
    o->settle = -1;
    o->publishers = 8;
    o->concurrency = 50;
    o->rounds = 2;
    o->probe_rate = 100;
    unsigned char r[3] = {0, 0, 0};
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        r[0] = (unsigned char)getpid();
    snprintf(o->tag, sizeof o->tag, "b%02x%02x%02x", r[0], r[1], r[2]);
    soak_defaults(&o->soak);
}

static int soak_opt_apply(bench_soak_opts *k, int c, const char *arg)
{
    switch (c) {
    case OPT_SAMPLE: k->sample_s = atof(arg); break;
    case OPT_CSV: k->csv = arg; break;
    case OPT_CHURN_RATE: k->churn_rate = atof(arg); break;
    case OPT_RST_SHARE: k->rst_share = atof(arg); break;
    case OPT_CE_RATE: k->ce_rate = atof(arg); break;
    case OPT_API_RATE: k->api_rate = atof(arg); break;
    case OPT_BUSY_RATE: k->busy_rate = atof(arg); break;
    case OPT_BUSY_PAYLOAD: k->busy_payload = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_SLOW_READERS: k->slow_readers = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_SLOW_HOLD: k->slow_hold = atof(arg); break;
    case OPT_LORIS_HEADS: k->loris_heads = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_LORIS_BODIES: k->loris_bodies = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_TRICKLE: k->trickle_s = atof(arg); break;
    case OPT_BAD_LIFE: k->bad_life = atof(arg); break;
    case OPT_GWS_RATE: k->garbage_ws_rate = atof(arg); break;
    case OPT_GHTTP_RATE: k->garbage_http_rate = atof(arg); break;
    case OPT_HOOK_PORT: k->webhook_port = atoi(arg); break;
    case OPT_TOLERANCE: k->tolerance_pct = atof(arg); break;
    default: return -1;
    }
    return 0;
}

static int opt_apply(bench_opts *o, raw_opts *raw, int c, const char *arg)
{
    switch (c) {
    case OPT_HOST: raw->host = arg; break;
    case OPT_PORT: raw->port = atoi(arg); break;
    case OPT_APP_ID: o->t.app_id = arg; break;
    case OPT_APP_KEY: o->t.app_key = arg; break;
    case OPT_APP_SECRET: o->t.app_secret = arg; break;
    case OPT_PID: o->server_pid = (pid_t)atoi(arg); break;
    case OPT_METRICS: raw->metrics = arg; break;
    case 'n': o->conns = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_CHANNELS: o->channels = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_CRATE: o->connect_rate = atof(arg); break;
    case OPT_INFLIGHT: o->inflight = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_RATE: o->rate = atof(arg); break;
    case OPT_DURATION: o->duration = atof(arg); break;
    case OPT_HOLD: o->hold = atof(arg); break;
    case OPT_PUBLISHERS: raw->publishers = arg; o->publishers = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_PAYLOAD: raw->payload = arg; o->payload = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_BATCH: raw->batch = arg; break;
    case OPT_CONC: o->concurrency = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_RST: o->rst = true; break;
    case OPT_WARMUP: o->warmup = atof(arg); break;
    case OPT_SETTLE: o->settle = atof(arg); break;
    case OPT_ROUNDS: o->rounds = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_PROBE: o->probe_rate = atof(arg); break;
    case OPT_PROCS: o->procs = atoi(arg); break;
    case OPT_TAG: snprintf(o->tag, sizeof o->tag, "%s", arg); break;
    case OPT_SRC: o->source_ips = (uint32_t)strtoul(arg, NULL, 10); break;
    case OPT_TARGETS: raw->targets = arg; break;
    case OPT_PUB_TARGET: raw->pub_target = arg; break;
    case OPT_OBS_TARGET: raw->obs_target = arg; break;
    case OPT_REDIS: raw->redis = arg; break;
    case OPT_KILL: o->kill_pid = (pid_t)atoi(arg); break;
    case OPT_UNIQUE: o->unique_users = true; break;
    case OPT_WATCH:
        if (raw->n_watch == BENCH_MAX_WATCH) {
            fprintf(stderr, "herald_bench: at most %d --watch-pid\n", BENCH_MAX_WATCH);
            return -1;
        }
        raw->watch[raw->n_watch++] = arg;
        break;
    case 'h': usage(stdout); exit(0);
    default: return soak_opt_apply(&o->soak, c, arg);
    }
    return 0;
}

/* Fill what the user left unset with the scenario's defaults. */
static void scenario_defaults(bench_opts *o, const scenario *s)
{
    if (o->conns == 0)
        o->conns = s->conns;
    bool ce = strcmp(s->name, "client-events") == 0;
    if (o->channels == 0)
        o->channels = s->channels ? s->channels : o->conns / (ce ? 2 : 50);
    if (o->channels == 0)
        o->channels = 1;
    if (o->rate < 0)
        o->rate = s->rate;
    if (strcmp(s->name, "connect") == 0 && o->rate > 0)
        o->connect_rate = o->rate;
    if (o->duration < 0)
        o->duration = s->duration;
    if (o->inflight == 0)
        o->inflight = 1;
    if (o->publishers == 0)
        o->publishers = 1;
    if (o->rounds == 0)
        o->rounds = 1;
    bool soak = strcmp(s->name, "soak") == 0, publish = strcmp(s->name, "publish") == 0;
    if (o->warmup < 0)
        o->warmup = soak ? (o->duration / 10 < 300 ? o->duration / 10 : 300) : publish ? 1 : 3;
    if (o->settle < 0)
        o->settle = soak ? 5 : 2;
}

/* Parse "1,8,32" into out[]; returns the count, or -1 when a value is not
 * a positive number or there are more than max. */
static int parse_list(const char *s, uint32_t *out, int max, const char *what)
{
    int n = 0;
    while (*s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0 || v > 100000000ul || n == max || (*end && *end != ',')) {
            fprintf(stderr, "herald_bench: --%s wants up to %d positive numbers, comma separated\n", what, max);
            return -1;
        }
        out[n++] = (uint32_t)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

/* publish: the run matrix from the three lists (defaults: the issue's). */
static int publish_lists(bench_opts *o, const raw_opts *raw)
{
    bench_publish_opts *p = &o->pub;
    p->n_publishers = parse_list(raw->publishers ? raw->publishers : "1,8,32", p->publishers, BENCH_PUB_MAX,
                                 "publishers");
    p->n_payloads = parse_list(raw->payload ? raw->payload : "100,10000", p->payloads, BENCH_PUB_MAX, "payload");
    p->n_batches = parse_list(raw->batch ? raw->batch : "1,10", p->batches, BENCH_PUB_MAX, "batch");
    return p->n_publishers > 0 && p->n_payloads > 0 && p->n_batches > 0 ? 0 : -1;
}

/* "HOST:PORT" (an optional "http://" is skipped) into a resolved target
 * carrying the app credentials of o->t. */
static int resolve_hostport(bench_target *t, const bench_opts *o, const char *s, size_t len, const char *what)
{
    char buf[96], host[64];
    if (len >= sizeof buf) {
        fprintf(stderr, "herald_bench: --%s: '%.*s' is too long\n", what, (int)len, s);
        return -1;
    }
    snprintf(buf, sizeof buf, "%.*s", (int)len, s);
    const char *start = strncmp(buf, "http://", 7) == 0 ? buf + 7 : buf;
    const char *colon = strrchr(start, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || (size_t)(colon - start) >= sizeof host || colon == start || !end || (*end && *end != '/') ||
        port <= 0 ||
        port > 65535) {
        fprintf(stderr, "herald_bench: --%s wants HOST:PORT, got '%s'\n", what, buf);
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - start), start);
    if (bench_target_resolve(t, host, (int)port) < 0)
        return -1;
    t->app_id = o->t.app_id;
    t->app_key = o->t.app_key;
    t->app_secret = o->t.app_secret;
    return 0;
}

/* --targets H:P,H:P,... */
static int resolve_targets(bench_opts *o, const char *list)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (o->n_targets == BENCH_MAX_TARGETS) {
            fprintf(stderr, "herald_bench: --targets takes at most %d entries\n", BENCH_MAX_TARGETS);
            return -1;
        }
        if (resolve_hostport(&o->targets[o->n_targets++], o, p, len, "targets") < 0)
            return -1;
        p = comma ? comma + 1 : p + len;
    }
    if (o->n_targets == 0) {
        fprintf(stderr, "herald_bench: --targets is empty\n");
        return -1;
    }
    return 0;
}

/* --watch-pid NAME=PID: NAME becomes a JSON key prefix, so [a-z0-9_]. */
static int parse_watch(bench_watch *w, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char *end = NULL;
    long pid = eq ? strtol(eq + 1, &end, 10) : 0;
    size_t nlen = eq ? (size_t)(eq - arg) : 0;
    bool name_ok = nlen > 0 && nlen < sizeof w->name;
    for (size_t i = 0; name_ok && i < nlen; i++)
        name_ok = (arg[i] >= 'a' && arg[i] <= 'z') || (arg[i] >= '0' && arg[i] <= '9') || arg[i] == '_';
    if (!name_ok || !end || *end || pid <= 0) {
        fprintf(stderr, "herald_bench: --watch-pid wants NAME=PID, NAME of a-z 0-9 _ (up to %zu), got '%s'\n",
                sizeof w->name - 1, arg);
        return -1;
    }
    snprintf(w->name, sizeof w->name, "%.*s", (int)nlen, arg);
    w->pid = (pid_t)pid;
    return 0;
}

static int resolve_cluster(bench_opts *o, const raw_opts *raw)
{
    o->pub_target = o->t;
    o->obs_target = o->t;
    if (raw->targets && resolve_targets(o, raw->targets) < 0)
        return -1;
    if (raw->pub_target && resolve_hostport(&o->pub_target, o, raw->pub_target, strlen(raw->pub_target),
                                            "publish-target") < 0)
        return -1;
    if (raw->obs_target && resolve_hostport(&o->obs_target, o, raw->obs_target, strlen(raw->obs_target),
                                            "observe-target") < 0)
        return -1;
    if (raw->redis) {
        if (resolve_hostport(&o->redis, o, raw->redis, strlen(raw->redis), "redis-url") < 0)
            return -1;
        o->has_redis = true;
    }
    for (int i = 0; i < raw->n_watch; i++)
        if (parse_watch(&o->watch[o->n_watch++], raw->watch[i]) < 0)
            return -1;
    return 0;
}

static int resolve_all(bench_opts *o, const raw_opts *raw)
{
    if (bench_target_resolve(&o->t, raw->host, raw->port) < 0)
        return -1;
    if (resolve_cluster(o, raw) < 0)
        return -1;
    if (!raw->metrics)
        return 0;
    if (resolve_hostport(&o->metrics, o, raw->metrics, strlen(raw->metrics), "metrics-url") < 0)
        return -1;
    o->has_metrics = true;
    return 0;
}

int bench_target_index(const bench_opts *o, uint32_t gidx)
{
    uint32_t per_round = o->channels ? o->channels : 1;
    return o->n_targets > 1 ? (int)((gidx / per_round) % (uint32_t)o->n_targets) : 0;
}

const bench_target *bench_client_target(const bench_opts *o, uint32_t gidx)
{
    return o->n_targets > 0 ? &o->targets[bench_target_index(o, gidx)] : &o->t;
}

int bench_default_procs(const bench_opts *o, uint32_t conns)
{
    if (o->procs > 0)
        return o->procs;
    int n = (int)((conns + 14999) / 15000);
    return n > 0 ? n : 1;
}

int bench_setup_timeout_ms(const bench_opts *o, uint32_t conns)
{
    double rate = o->connect_rate > 0 ? o->connect_rate : 1000;
    return (int)((double)conns / rate * 1000.0) + 60000;
}

void bench_report_target(bench_report *r, const bench_opts *o)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s:%d", o->t.host, o->t.port);
    bench_report_str(r, "target", buf, "target");
    if (o->n_targets > 0) {
        hd_buf list;
        hd_buf_init(&list);
        for (int i = 0; i < o->n_targets; i++)
            hd_buf_printf(&list, "%s%s:%d", i ? "," : "", o->targets[i].host, o->targets[i].port);
        bench_report_str(r, "targets", list.data, "client targets (round robin)");
        hd_buf_deinit(&list);
    }
    if (o->pub_target.port != o->t.port || strcmp(o->pub_target.host, o->t.host) != 0) {
        snprintf(buf, sizeof buf, "%s:%d", o->pub_target.host, o->pub_target.port);
        bench_report_str(r, "publish_target", buf, "publish target");
    }
    bench_report_str(r, "app_id", o->t.app_id, "app id");
    bench_report_int(r, "server_pid", (uint64_t)(o->server_pid > 0 ? o->server_pid : 0), "server pid");
    bench_report_str(r, "tag", o->tag, "channel tag");
}

int main(int argc, char **argv)
{
    bench_opts o;
    raw_opts raw;
    if (argc < 2 || argv[1][0] == '-') {
        usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    if (strcmp(argv[1], "floor-server") == 0) /* not a scenario: a server of its own */
        return bench_floor_server_main(argc - 1, argv + 1);
    const scenario *s = NULL;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (strcmp(argv[1], scenarios[i].name) == 0)
            s = &scenarios[i];
    if (!s) {
        fprintf(stderr, "herald_bench: unknown scenario '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    opts_defaults(&o, &raw);
    o.scenario = s->name;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "n:h", long_opts, NULL)) != -1)
        if (opt_apply(&o, &raw, c, optarg) < 0) {
            usage(stderr);
            return 2;
        }
    scenario_defaults(&o, s);
    if (strcmp(s->name, "publish") == 0 && publish_lists(&o, &raw) < 0)
        return 2;
    if (resolve_all(&o, &raw) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_rand_seed();
    bench_raise_nofile();
    bench_set_source_ips(o.source_ips > 254 ? 254 : o.source_ips);
    bench_set_watch(o.watch, o.n_watch);
    bench_set_redis(o.has_redis ? &o.redis : NULL);
    return s->run(&o) == 0 ? 0 : 1;
}
