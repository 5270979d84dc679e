/* bench.h - herald_bench: the load generator's internal interface.
 *
 * DESIGN
 * ------
 * herald_bench measures a Pusher-Channels server (herald or any other, e.g.
 * soketi) over loopback. One parent process parses the options, forks worker
 * processes (this machine caps open files at 20 000 per process, so client
 * connections are spread over several), drives the phases of a scenario with
 * one-byte commands on a pipe per worker, reads the server's /proc figures at
 * the phase boundaries, and aggregates the workers' results, which come back
 * on a second pipe per worker as framed messages.
 *
 * Each worker runs one epoll loop (loop.c) on one thread. On it live WebSocket
 * clients (ws_client.c, Pusher messages in pusher.c, a paced set of
 * subscribed clients in pool.c) and HTTP/1.1 keep-alive clients for the
 * signed HTTP API (http_client.c, api.c). Scenarios are in scen_*.c: each has
 * a parent part (bench_run_<name>) and worker parts.
 *
 * Latencies are microseconds of CLOCK_MONOTONIC, which every process on the
 * machine shares, so a timestamp written by one process can be compared with
 * a clock read in another. They go into log-linear histograms (stats.c) that
 * merge by adding buckets.
 *
 * THREADING
 * ---------
 * Single-threaded processes: nothing here is shared between threads. Each
 * process owns its loop, its connections and its bench_result.
 */
#ifndef HD_BENCH_H
#define HD_BENCH_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/common.h"

/* ==== options (main.c) ==== */

typedef struct bench_target {
    char host[64];                /* as given, for the Host header */
    int port;
    struct sockaddr_storage addr; /* resolved, always loopback */
    socklen_t addr_len;
    const char *app_id, *app_key, *app_secret;
} bench_target;

/* soak only (scen_soak.c): the mix of well-behaved and misbehaving load */
typedef struct bench_soak_opts {
    double sample_s;          /* server sampling interval */
    const char *csv;          /* time series output */
    double churn_rate;        /* connect+subscribe+disconnect cycles/s */
    double rst_share;         /* share of churn cycles ending in RST */
    double ce_rate;           /* client events/s, all senders together */
    double api_rate;          /* signed GETs/s (channels, channel, users) */
    double busy_rate;         /* events/s to the slow readers' channel */
    uint32_t busy_payload;    /* padding bytes in each busy event */
    uint32_t slow_readers;    /* concurrent clients that stop reading */
    double slow_hold;         /* s a slow reader stays stalled */
    uint32_t loris_heads;     /* concurrent slowloris request heads */
    uint32_t loris_bodies;    /* concurrent slowloris POST bodies */
    double trickle_s;         /* s between the bytes a slowloris trickles */
    double bad_life;          /* s before a slowloris gives up itself */
    double garbage_ws_rate;   /* WebSocket connections/s sending garbage */
    double garbage_http_rate; /* TCP connections/s sending random bytes */
    int webhook_port;         /* 0: no webhook sink */
    double tolerance_pct;     /* flat/growing verdict tolerance */
} bench_soak_opts;

/* publish only (scen_publish.c): the matrix of runs, each list as given */
#define BENCH_PUB_MAX 8
typedef struct bench_publish_opts {
    uint32_t publishers[BENCH_PUB_MAX]; /* keep-alive connections, closed loop */
    uint32_t payloads[BENCH_PUB_MAX];   /* bytes of each event's data */
    uint32_t batches[BENCH_PUB_MAX];    /* events per request; 1 = /events */
    int n_publishers, n_payloads, n_batches;
} bench_publish_opts;

/* Cluster runs: several server processes, each watched by name. */
#define BENCH_MAX_TARGETS 8
#define BENCH_MAX_WATCH 8
typedef struct bench_watch {
    char name[24];          /* JSON key prefix, [a-z0-9_] */
    pid_t pid;
} bench_watch;

typedef struct bench_opts {
    const char *scenario;
    bench_target t;
    /* --targets: client connections spread over them (bench_target_index);
     * none given: every connection goes to t. */
    bench_target targets[BENCH_MAX_TARGETS];
    int n_targets;
    bench_target pub_target;   /* --publish-target: HTTP publishes (default t) */
    bench_target obs_target;   /* --observe-target: kill-reap's observer (default t) */
    bench_target redis;        /* --redis-url: INFO stats before / after */
    bool has_redis;
    bench_watch watch[BENCH_MAX_WATCH]; /* --watch-pid NAME=PID */
    int n_watch;
    pid_t kill_pid;            /* kill-reap: the node to kill -9 */
    bench_target metrics;   /* valid when has_metrics */
    bool has_metrics;
    pid_t server_pid;       /* 0: no /proc figures */
    int procs;              /* client worker processes; 0 = auto */
    uint32_t conns;         /* N */
    uint32_t channels;      /* C */
    double connect_rate;    /* new connections per second, all workers together */
    uint32_t inflight;      /* handshakes in flight per worker */
    double rate;            /* fanout: events/s (0 = max); client-events: per client */
    double duration, hold, warmup, settle;
    uint32_t publishers;    /* HTTP API connections */
    uint32_t payload;       /* padding bytes in each event's data */
    uint32_t concurrency;   /* churn: parallel connect/subscribe/disconnect loops */
    bool rst;               /* churn: disconnect with RST instead of a close frame */
    bool unique_users;      /* churn: a new presence user id every cycle */
    uint32_t rounds;        /* storm */
    double probe_rate;      /* storm: probe connections per second */
    char tag[16];           /* run tag, part of every channel name */
    uint32_t source_ips;    /* client source addresses 127.0.0.1.. (1) */
    bench_soak_opts soak;
    bench_publish_opts pub;
} bench_opts;

/* ==== clocks, randomness (loop.c) ==== */

uint64_t bench_now_us(void);
uint64_t bench_rand(void);          /* xorshift64*, seeded per process */
void bench_rand_seed(void);         /* call once per process (after fork) */
void bench_sleep_us(uint64_t us);

/* ==== event loop (loop.c) ==== */

typedef struct bench_loop bench_loop;
typedef struct bench_io bench_io;
/* Embedded first in every object registered with the loop. */
struct bench_io {
    void (*cb)(bench_io *io, uint32_t events);
    int fd;
    uint64_t added_epoch; /* events of the batch it was added in are stale */
};
typedef void (*bench_tick_fn)(void *arg, uint64_t now_us);

bench_loop *bench_loop_create(void);
void bench_loop_destroy(bench_loop *l);
/* Register io->fd; returns 0 or -1 (errno). */
int bench_loop_add(bench_loop *l, bench_io *io, uint32_t events);
int bench_loop_mod(bench_loop *l, bench_io *io, uint32_t events);
/* Unregister and close io->fd; io->fd becomes -1. */
void bench_loop_close(bench_loop *l, bench_io *io);
/* Dispatch events, call tick at least every millisecond, until stopped. */
void bench_loop_run(bench_loop *l, bench_tick_fn tick, void *arg);
void bench_loop_stop(bench_loop *l);
/* A 256 KiB scratch buffer for reads, owned by the loop. */
char *bench_loop_scratch(bench_loop *l, size_t *cap);

/* ==== sockets (net.c) ==== */

/* Resolve host (numeric or "localhost") and port; refuses anything outside
 * 127.0.0.0/8 and ::1. Returns 0, or -1 after printing why. */
int bench_target_resolve(bench_target *t, const char *host, int port);
/* Spread connects over source addresses 127.0.0.1 .. 127.0.0.n (IPv4
 * targets; 1 = let the kernel choose). Call before forking. */
void bench_set_source_ips(unsigned n);
/* Non-blocking TCP connect with TCP_NODELAY; returns the fd or -errno. */
int bench_tcp_connect(const bench_target *t);
/* The same with SO_RCVBUF set first (rcvbuf > 0). */
int bench_tcp_connect_rcvbuf(const bench_target *t, int rcvbuf);
/* Close with SO_LINGER 0, so the peer gets an RST. */
void bench_set_rst(int fd);
/* Raise the soft RLIMIT_NOFILE to the hard limit; returns the new limit. */
long bench_raise_nofile(void);
/* write() the whole buffer on a blocking fd; -1 on error. */
int bench_write_all(int fd, const void *p, size_t n);
/* Non-blocking: write what the socket takes of out and drop it from out.
 * Returns 0 (all written, or EAGAIN), or -errno on a write error. */
int bench_flush_out(int fd, hd_buf *out);

/* ==== histograms and results (stats.c) ==== */

#define BENCH_HIST_LINEAR 128
#define BENCH_HIST_SUB 64
#define BENCH_HIST_MAX_MSB 36
#define BENCH_HIST_BUCKETS (BENCH_HIST_LINEAR + (BENCH_HIST_MAX_MSB - 6) * BENCH_HIST_SUB)

/* Log-linear histogram of microseconds: exact below 128 us, then 64
 * sub-buckets per power of two (under 1.6 % error). */
typedef struct bench_hist {
    uint64_t count, sum, min, max;
    uint64_t b[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_record(bench_hist *h, uint64_t us);
void bench_hist_merge(bench_hist *into, const bench_hist *from);
/* Value at percentile p (0..100], the bucket's upper edge clamped to max;
 * 0 for an empty histogram. */
uint64_t bench_hist_pct(const bench_hist *h, double p);

enum bench_counter {
    BC_CONN_OK,       /* pusher:connection_established received */
    BC_CONN_FAIL,     /* refused, reset, timed out before established */
    BC_SUB_OK,        /* subscription_succeeded */
    BC_SUB_FAIL,      /* subscription_error / pusher:error on subscribe */
    BC_CLOSED,        /* server closed an established connection unexpectedly */
    BC_MSGS,          /* measured messages received (incl. duplicates) */
    BC_DUPS,          /* duplicates among them */
    BC_EXPECTED,      /* client-events: deliveries the senders expect */
    BC_DISTINCT,      /* client-events: distinct deliveries */
    BC_SENT,          /* events sent (HTTP publishes or client events) */
    BC_SENT_OK,       /* HTTP publishes answered 2xx without {"error"} */
    BC_SENT_FAIL,     /* HTTP publishes failed (status, error body, lost conn) */
    BC_HTTP_CONNECTS, /* TCP connects made by HTTP clients */
    BC_RATE_LIMITED,  /* pusher:error 4301 */
    BC_ERRORS,        /* other pusher:error */
    BC_CYCLES,        /* churn: completed connect/subscribe/disconnect cycles */
    BC_WARM_CYCLES,   /* churn: cycles done when the warm-up ended */
    BC_BACKLOG,       /* sends due but not made (all connections busy) */
    BC_FIRST_US,      /* first measured event (mono us), for rates */
    BC_LAST_US,       /* last measured event (mono us) */
    BC__COUNT
};

enum bench_hist_id {
    BH_HANDSHAKE,   /* connect() to pusher:connection_established */
    BH_LATENCY,     /* end-to-end delivery / relay latency */
    BH_REQUEST,     /* HTTP publish round trip; churn: whole cycle */
    BH_PROBE_PRE,   /* storm probe connect before the drop */
    BH_PROBE_STORM, /* storm probe connect from drop to registry empty (+settle) */
    BH_PROBE_POST,  /* storm probe connect afterwards */
    BH_SERVED_PRE,  /* storm probe connect + both subscribes, same phases */
    BH_SERVED_STORM,
    BH_SERVED_POST,
    BH_RELAY,       /* soak: client-event relay latency */
    BH_LORIS,       /* soak: slowloris head, connect to the server's reaction */
    BH_LORIS_BODY,  /* soak: slowloris body, the same */
    BH_SLOW_FREED,  /* soak: slow reader stalled to the server's socket released */
    BH_LATENCY_T0,  /* fanout with --targets: BH_LATENCY of the clients on target 0 */
    BH_LATENCY_T1,  /* ... on target 1 */
    BH__COUNT
};

typedef struct bench_result {
    uint64_t c[BC__COUNT];
    bench_hist h[BH__COUNT];
} bench_result;

void bench_result_merge(bench_result *into, const bench_result *from);

/* Growable bit set for sequence tracking; count = distinct bits set. */
typedef struct bench_bitset {
    uint8_t *bits;
    size_t cap;     /* bytes */
    uint64_t count;
} bench_bitset;

/* Set bit i; returns true if it was already set (a duplicate). */
bool bench_bitset_set(bench_bitset *s, uint64_t i);
void bench_bitset_free(bench_bitset *s);

/* ==== summary and JSON output (report.c) ==== */

typedef struct bench_report {
    hd_buf json;
} bench_report;

void bench_report_begin(bench_report *r, const bench_opts *o);
void bench_report_section(bench_report *r, const char *title);
void bench_report_num(bench_report *r, const char *key, double v, const char *unit, const char *label);
void bench_report_int(bench_report *r, const char *key, uint64_t v, const char *label);
void bench_report_str(bench_report *r, const char *key, const char *v, const char *label);
/* Count, mean and p50/p90/p99/p99.9/max in ms, keys <key>_p50_ms etc. */
void bench_report_hist(bench_report *r, const char *key, const bench_hist *h, const char *label);
/* Print the single-line JSON and free. */
void bench_report_end(bench_report *r);

/* ==== server figures (proc.c) ==== */

typedef struct bench_server_sample {
    bool ok;
    uint64_t at_us;
    long rss_kb;    /* VmRSS */
    double cpu_s;   /* utime + stime */
    double client_cpu_s; /* the same, summed over herald_bench's live workers */
    double machine_busy_s; /* all CPUs, non-idle time (/proc/stat) */
    /* the --watch-pid processes (bench_set_watch), in that order; -1: gone */
    double watch_cpu_s[BENCH_MAX_WATCH];
    long watch_rss_kb[BENCH_MAX_WATCH];
    /* redis-server's total_commands_processed (bench_set_redis); -1: none */
    double redis_cmds;
} bench_server_sample;

/* Processes sampled with every server sample besides the server itself
 * (the list is copied; call before any sample). */
void bench_set_watch(const bench_watch *w, int n);
/* A redis-server whose command count is sampled too (NULL: none). */
void bench_set_redis(const bench_target *t);
void bench_server_sample_take(pid_t pid, bench_server_sample *s);
/* herald's cleanup figures from its Prometheus text at t:/metrics; a value
 * the server does not export is -1. Returns 0, or -1 when unreachable. */
typedef struct bench_metrics {
    double sync_fallbacks;   /* herald_cleanup_sync_fallbacks_total */
    double queue_high_water; /* max of herald_cleanup_queue_high_water */
} bench_metrics;
int bench_metrics_read(const bench_target *t, bench_metrics *m);
/* Report the CPU between a and b: the load generator's, the server's and
 * per unit of work (us per item), and what the rest of the machine used
 * (other processes, interrupts), which shows interference. */
void bench_report_cpu(bench_report *r, const char *key, const bench_server_sample *a,
                      const bench_server_sample *b, uint64_t items, const char *item_name);
void bench_report_rss(bench_report *r, const char *key, const bench_server_sample *s, const char *label);
/* A JSON member without a summary line (for figures printed as a table). */
void bench_report_json_num(bench_report *r, const char *key, double v);
void bench_report_json_str(bench_report *r, const char *key, const char *v);

/* ==== worker processes (workers.c) ==== */

enum bench_msg_type {
    BM_READY = 1, /* clients connected and subscribed; payload: none */
    BM_MARK,      /* scenario-defined point reached; payload: uint64 */
    BM_DONE,      /* measured phase over; payload: uint64 */
    BM_RESULT,    /* bench_result, then scenario-defined uint64 array */
};

typedef struct bench_child {
    bench_io cmd_io;   /* first; fd reads one-byte commands from the parent */
    int msg_fd;        /* write: framed messages to the parent */
    int index;         /* 0..nprocs-1 within its role */
    int nprocs;
    const bench_opts *o;
    bench_loop *loop;
    void (*on_cmd)(void *arg, char cmd);
    void *cmd_arg;
} bench_child;

typedef struct bench_proc {
    pid_t pid;
    int cmd_fd, msg_fd;
    int index;
} bench_proc;

typedef int (*bench_child_main)(bench_child *c);

/* Fork a worker that runs fn and exits with its return value. */
int bench_proc_spawn(bench_proc *p, int index, int nprocs, const bench_opts *o, bench_child_main fn);
/* Spawn ps[0..n) as workers 0..n-1 of n; on failure kill those started. */
int bench_proc_spawn_all(bench_proc *ps, int n, const bench_opts *o, bench_child_main fn);
void bench_proc_cmd(bench_proc *ps, int n, char cmd);
/* Wait until each of ps[0..n) sends a message of this type; payload
 * uint64 values (if any) go to vals[i] when vals is not NULL. Returns 0,
 * or -1 on timeout or a dead worker. */
int bench_proc_wait(bench_proc *ps, int n, int type, uint64_t *vals, int timeout_ms);
/* Send 'q', read every worker's BM_RESULT into *sum (merged) and add its
 * extra uint64 array into extra[0..n_extra) (may be NULL), reap. */
int bench_proc_collect(bench_proc *ps, int n, char cmd, bench_result *sum, uint64_t *extra, size_t n_extra);
void bench_proc_reap(bench_proc *ps, int n);
/* Pids of the workers spawned and not yet reaped; returns the count. */
int bench_proc_live(pid_t *out, int cap);
void bench_proc_kill(bench_proc *ps, int n);

void bench_child_post(bench_child *c, int type, const void *payload, size_t len);
void bench_child_post_u64(bench_child *c, int type, uint64_t v);
void bench_child_post_result(bench_child *c, const bench_result *r, const uint64_t *extra, size_t n_extra);
/* Deliver the parent's commands to fn(arg, cmd) from loop l; the parent
 * going away is delivered as 'q'. */
void bench_child_watch(bench_child *c, bench_loop *l, void (*fn)(void *arg, char cmd), void *arg);

/* ==== WebSocket client (ws_client.c) ==== */
/* A WebSocket frame's head (RFC 6455 5.2), shared with the floor server. */
typedef struct bench_ws_head {
    bool fin, masked;
    int opcode;
    uint64_t payload_len;
} bench_ws_head;
/* Parse the head at p[0..len): its length without the mask key, 0 if incomplete. */
size_t bench_ws_frame_head(const char *p, size_t len, bench_ws_head *out);

enum bench_ws_state { BWS_IDLE, BWS_CONNECTING, BWS_UPGRADING, BWS_OPEN, BWS_CLOSING };
#define BENCH_WS_EOF (-EPIPE) /* on_close: the server closed TCP without a close frame */

typedef struct bench_ws bench_ws;
typedef struct bench_ws_ops {
    void (*on_text)(bench_ws *ws, const char *msg, size_t len, uint64_t now_us);
    /* The connection is gone: code 0 after the close handshake we started,
     * the server's close code (> 0) when it started one, -errno on an
     * error, BENCH_WS_EOF for a TCP close (FIN) without close frames. */
    void (*on_close)(bench_ws *ws, int code);
} bench_ws_ops;

struct bench_ws {
    bench_io io;            /* first: the loop hands back &io */
    bench_loop *loop;
    const bench_ws_ops *ops;
    uint8_t state;
    uint8_t pollout;        /* EPOLLOUT registered */
    uint8_t paused;         /* EPOLLIN not registered (bench_ws_pause) */
    int rcvbuf;             /* SO_RCVBUF for the next open; 0: the default */
    int close_code;         /* code of the server's close frame */
    hd_buf in, out, frag;
    uint64_t t_open_us;     /* when connect() was called */
    char accept[32];        /* expected Sec-WebSocket-Accept */
};

void bench_ws_init(bench_ws *ws, bench_loop *l, const bench_ws_ops *ops);
/* Start connecting and upgrading. Returns 0 or -errno (on_close not called). */
int bench_ws_open(bench_ws *ws, const bench_target *t);
/* Queue a masked text frame; returns 0 or -1 if not open. */
int bench_ws_send_text(bench_ws *ws, const char *msg, size_t len);
/* rst: close now with an RST (on_close not called). Otherwise send a close
 * frame and wait for the server's close; on_close(0) follows. */
void bench_ws_close(bench_ws *ws, bool rst);
/* Drop the socket now without callbacks (timeouts, teardown). */
void bench_ws_abort(bench_ws *ws);
/* Queue bytes as they are (already framed, or deliberately not); returns
 * 0 or -1 if not open. */
int bench_ws_send_raw(bench_ws *ws, const void *p, size_t len);
/* Stop (or resume) reading: the peer's data piles up in the socket. */
void bench_ws_pause(bench_ws *ws, bool paused);
void bench_ws_deinit(bench_ws *ws);

/* ==== Pusher messages (pusher.c) ==== */

enum bench_pev_kind {
    BP_OTHER, BP_ESTABLISHED, BP_SUB_OK, BP_SUB_ERROR, BP_ERROR, BP_PING, BP_PONG, BP_INTERNAL,
};

typedef struct bench_pev {
    int kind;
    const char *event, *channel; /* not NUL-terminated */
    size_t event_len, channel_len;
    int code;                    /* pusher:error code, -1 for null or absent */
    char socket_id[48];          /* BP_ESTABLISHED */
} bench_pev;

void bench_pusher_parse(const char *msg, size_t len, bench_pev *ev);
/* The integer value of the first member called `name`, written "name": or,
 * inside a JSON string, \"name\":; false if there is none. */
bool bench_pusher_int(const char *msg, size_t len, const char *name, uint64_t *out);
/* Build a subscribe for a public, private- or presence- channel; signs
 * private and presence channels with the app secret. */
void bench_pusher_subscribe(hd_buf *out, const bench_target *t, const char *socket_id, const char *channel,
                            const char *channel_data);
/* Answer pusher:ping with pusher:pong. */
void bench_pusher_pong(bench_ws *ws);

/* ==== HTTP client and signed API (http_client.c, api.c) ==== */

typedef struct bench_http_resp {
    int status;
    size_t head_len;   /* bytes of status line and headers */
    size_t total_len;  /* head + body as on the wire */
    bool close;        /* Connection: close */
    hd_buf body;       /* decoded body (chunked is joined) */
} bench_http_resp;

/* Parse a response at buf[0..len). Returns 1 when complete (resp filled),
 * 0 when more bytes are needed, -1 when malformed. */
int bench_http_parse(const char *buf, size_t len, bench_http_resp *resp);

typedef struct bench_http bench_http;
typedef void (*bench_http_cb)(bench_http *h, int status, const char *body, size_t len, uint64_t now_us);

struct bench_http {
    bench_io io;            /* first */
    bench_loop *loop;
    const bench_target *t;
    bench_http_cb cb;
    void *user;
    bool busy;              /* a request is in flight */
    bool connecting, connected;
    uint32_t served;        /* responses on the current connection */
    hd_buf out, in, req;    /* req: the request in flight, resent once if the
                               server closed an idle keep-alive connection */
    bool retried;
    uint64_t connects;
    bench_http_resp resp;
};

void bench_http_init(bench_http *h, bench_loop *l, const bench_target *t, bench_http_cb cb, void *user);
/* Send one complete request (connects first if needed). Returns 0, or -1
 * when busy or the connect failed at once. */
int bench_http_send(bench_http *h, const char *req, size_t len);
void bench_http_deinit(bench_http *h);
/* Drop the connection; a request in flight ends with status -1. */
void bench_http_abort(bench_http *h);
/* Blocking request with a deadline; fills resp. Returns 0 or -1. */
int bench_http_fetch(const bench_target *t, const char *req, size_t len, bench_http_resp *resp, int timeout_ms);

/* Full signed request POST /apps/{id}/events with this JSON body. */
void bench_api_events(hd_buf *out, const bench_target *t, const char *body, size_t len);
/* The same for POST /apps/{id}/batch_events (body {"batch":[...]}). */
void bench_api_batch_events(hd_buf *out, const bench_target *t, const char *body, size_t len);
/* Full signed GET request for path (e.g. /apps/ID/channels). */
void bench_api_get(hd_buf *out, const bench_target *t, const char *path);

/* ==== subscribed client pools (pool.c) ==== */

typedef struct bench_pool bench_pool;
typedef struct bench_client {
    bench_ws ws;
    bench_pool *pool;
    uint32_t gidx;          /* global index over all workers */
    uint16_t subs_wanted, subs_ok;
    uint8_t established;    /* pusher:connection_established seen */
    uint8_t settled;        /* connected and subscribed (or failed) */
    char socket_id[48];
} bench_client;

typedef struct bench_pool_ops {
    /* Connection established: send the subscribes, return their count. */
    int (*subscribe)(bench_pool *p, bench_client *cl);
    /* Any message other than those the pool handles itself. */
    void (*on_event)(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                     uint64_t now_us);
} bench_pool_ops;

struct bench_pool {
    bench_loop *loop;
    const bench_opts *o;
    bench_child *child;
    bench_result *res;
    const bench_pool_ops *ops;
    void *user;
    bench_client *cl;
    uint32_t n, opened, settled, inflight;
    uint64_t t0_us, last_scan_us;
    double rate;            /* this worker's share of connect_rate */
    bool dropping, ready_posted;
    uint32_t logged;        /* failures printed to stderr (first few) */
};

/* This worker's share of o->conns: global indexes child->index, +nprocs... */
void bench_pool_init(bench_pool *p, bench_loop *l, bench_child *c, bench_result *res, const bench_pool_ops *ops,
                     void *user);
/* Start (again) opening all clients at the paced rate. */
void bench_pool_start(bench_pool *p, uint64_t now_us);
/* Opens due connections, times out stuck ones, posts BM_READY once all
 * clients are settled. */
void bench_pool_tick(bench_pool *p, uint64_t now_us);
/* Connect a closed client again (and subscribe it as at first), after the
 * pool was ready. Returns 0 or -errno. */
int bench_pool_reopen(bench_pool *p, bench_client *cl);
/* Close every client (RST or close frame); returns how many were open. */
uint32_t bench_pool_drop(bench_pool *p, bool rst);
void bench_pool_deinit(bench_pool *p);
/* Local number of clients for worker index of nprocs. */
uint32_t bench_pool_share(uint32_t total, int index, int nprocs);

/* Handshake and connect timeout. */
#define BENCH_CONNECT_TIMEOUT_US (15 * 1000000ull)

/* ==== scenarios (scen_*.c), run in the parent ==== */

int bench_run_connect(const bench_opts *o);
int bench_run_fanout(const bench_opts *o);
int bench_run_client_events(const bench_opts *o);
int bench_run_churn(const bench_opts *o);
int bench_run_storm(const bench_opts *o);
int bench_run_soak(const bench_opts *o);
int bench_run_publish(const bench_opts *o);
int bench_run_kill_reap(const bench_opts *o);

/* `herald_bench floor-server --port P [--host H]` (floor_server.c): the
 * fanout scenario's one-write floor, a minimal server run in the
 * foreground until SIGTERM / SIGINT. argv[0] is "floor-server". */
int bench_floor_server_main(int argc, char **argv);

/* churn with --targets: the presence observers' process (scen_churn_obs.c)
 * and the counts it reports (extra array of its result). */
enum bench_churn_obs_count {
    BENCH_CHURN_OBS_ADDED_LOCAL,    /* member_added about a user on the observer's node */
    BENCH_CHURN_OBS_ADDED_REMOTE,   /* ... on another node: crossed */
    BENCH_CHURN_OBS_REMOVED_LOCAL,
    BENCH_CHURN_OBS_REMOVED_REMOTE,
    BENCH_CHURN_OBS_UNBALANCED,     /* (observer, user) pairs with added != removed at the end */
    BENCH_CHURN_OBS_CLOSED,         /* observers failed or closed by the server */
    BENCH_CHURN_OBS_UNEXPECTED,     /* member events about nobody of the channel */
    BENCH_CHURN_OBS__COUNT
};
int bench_churn_obs_main(bench_child *c);

/* Shared by the scenarios (main.c). */
/* Which --targets entry client connection gidx goes to: (gidx / channels)
 * mod n_targets, so that the clients of each channel (gidx % channels) are
 * spread over every target; 0 without --targets. */
int bench_target_index(const bench_opts *o, uint32_t gidx);
/* That target (o->t without --targets). */
const bench_target *bench_client_target(const bench_opts *o, uint32_t gidx);
int bench_default_procs(const bench_opts *o, uint32_t conns);
/* How long to wait for conns clients to connect and subscribe. */
int bench_setup_timeout_ms(const bench_opts *o, uint32_t conns);
void bench_report_target(bench_report *r, const bench_opts *o);

#endif /* HD_BENCH_H */
