/* proc.c - herald_bench's view of the server process: RSS and CPU time
 * from /proc/<pid>, and herald's cleanup fallback counters from its
 * Prometheus endpoint. For cluster runs also the other watched processes
 * (--watch-pid: the second node, redis-server) and redis-server's command
 * count (INFO stats over RESP).
 *
 * DESIGN
 * ------
 * CPU is utime + stime of /proc/PID/stat (all threads, clock ticks, so a
 * 10 ms resolution); RSS is VmRSS of /proc/PID/status. Samples are taken by
 * the parent at phase boundaries; a missing pid gives ok = false and the
 * figures are reported as 0. Watched processes are sampled with the server
 * and reported under their names; those whose name starts with "node" are
 * also summed as "nodes" (the Pusher servers of a cluster, without Redis),
 * and all of them with the server as "all".
 *
 * THREADING
 * ---------
 * Parent process only; reentrant.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static long read_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static double read_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* comm may contain spaces */
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ... utime is field 14, stime 15 */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Non-idle time of all CPUs: user nice system idle iowait irq softirq steal. */
static double machine_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return 0;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double clients_cpu_s(void)
{
    pid_t pids[256];
    int n = bench_proc_live(pids, 256);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double c = read_cpu_s(pids[i]);
        sum += c > 0 ? c : 0;
    }
    return sum;
}

static bench_watch watched[BENCH_MAX_WATCH];
static int n_watched;
static bench_target redis_target;
static bool has_redis;

void bench_set_watch(const bench_watch *w, int n)
{
    n_watched = n < BENCH_MAX_WATCH ? n : BENCH_MAX_WATCH;
    memcpy(watched, w, (size_t)n_watched * sizeof *w);
}

void bench_set_redis(const bench_target *t)
{
    has_redis = t != NULL;
    if (t)
        redis_target = *t;
}

/* Read from a connected socket until `done` says the reply is complete or
 * the deadline passes; returns the bytes read or -1. */
static ssize_t read_reply(int fd, char *buf, size_t cap, uint64_t deadline_us)
{
    size_t n = 0;
    while (n + 1 < cap) {
        uint64_t now = bench_now_us();
        if (now >= deadline_us)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)((deadline_us - now) / 1000) + 1) <= 0)
            return -1;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        /* a RESP bulk string: $<len>\r\n<len bytes>\r\n */
        char *eol = strstr(buf, "\r\n");
        if (buf[0] != '$' || !eol)
            continue;
        long want = strtol(buf + 1, NULL, 10);
        if (want < 0 || (size_t)(eol + 2 - buf) + (size_t)want + 2 <= n)
            return (ssize_t)n;
    }
    return (ssize_t)n;
}

/* redis-server's total_commands_processed, or -1 when unreachable. */
static double redis_commands(void)
{
    static const char cmd[] = "*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n";
    char buf[16384];
    int fd = bench_tcp_connect(&redis_target);
    if (fd < 0)
        return -1;
    uint64_t deadline = bench_now_us() + 2000000u;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    double v = -1;
    if (poll(&pfd, 1, 2000) == 1 && bench_write_all(fd, cmd, sizeof cmd - 1) == 0 &&
        read_reply(fd, buf, sizeof buf, deadline) > 0) {
        const char *k = strstr(buf, "total_commands_processed:");
        if (k)
            v = strtod(k + strlen("total_commands_processed:"), NULL);
    }
    close(fd);
    return v;
}

void bench_server_sample_take(pid_t pid, bench_server_sample *s)
{
    memset(s, 0, sizeof *s);
    s->at_us = bench_now_us();
    s->client_cpu_s = clients_cpu_s();
    s->machine_busy_s = machine_busy_s();
    for (int i = 0; i < n_watched; i++) {
        s->watch_cpu_s[i] = read_cpu_s(watched[i].pid);
        s->watch_rss_kb[i] = read_rss_kb(watched[i].pid);
    }
    s->redis_cmds = has_redis ? redis_commands() : -1;
    if (pid <= 0)
        return;
    s->rss_kb = read_rss_kb(pid);
    s->cpu_s = read_cpu_s(pid);
    s->ok = s->rss_kb >= 0 && s->cpu_s >= 0;
}

/* CPU seconds, utilisation and CPU per item of one process. */
static void report_one_cpu(bench_report *r, const char *name, double cpu, double wall, uint64_t items,
                           const char *item_name)
{
    char k[192], label[192];
    snprintf(k, sizeof k, "%s_cpu_s", name);
    snprintf(label, sizeof label, "%s CPU (utime+stime)", name);
    bench_report_num(r, k, cpu, "s", label);
    snprintf(k, sizeof k, "%s_cpu_util", name);
    snprintf(label, sizeof label, "%s CPU utilisation", name);
    bench_report_num(r, k, wall > 0 ? cpu / wall : 0, "cores", label);
    if (items > 0) {
        snprintf(k, sizeof k, "%s_cpu_us_per_%s", name, item_name);
        snprintf(label, sizeof label, "%s CPU per %s", name, item_name);
        bench_report_num(r, k, cpu * 1e6 / (double)items, "us", label);
    }
}

/* The watched processes one by one, then "nodes" and "all"; returns their
 * CPU seconds in all (gone processes count 0). Keys are "<name>_..." for
 * the phase key "server", "<key>_<name>_..." for any other. */
static double report_watched(bench_report *r, const char *key, const bench_server_sample *a,
                             const bench_server_sample *b, double server_cpu, double wall, uint64_t items,
                             const char *item_name)
{
    double sum = 0, nodes = 0;
    int n_nodes = 0;
    char name[96], k[128];
    bool plain = strcmp(key, "server") == 0;
    for (int i = 0; i < n_watched; i++) {
        snprintf(name, sizeof name, "%.40s%s%.23s", plain ? "" : key, plain ? "" : "_", watched[i].name);
        if (a->watch_cpu_s[i] < 0 || b->watch_cpu_s[i] < 0) {
            snprintf(k, sizeof k, "%s_gone", name);
            bench_report_str(r, k, "yes", "process gone before the end");
            continue;
        }
        double cpu = b->watch_cpu_s[i] - a->watch_cpu_s[i];
        report_one_cpu(r, name, cpu, wall, items, item_name);
        if (b->watch_rss_kb[i] >= 0) {
            char label[64];
            snprintf(k, sizeof k, "%s_rss_mib", name);
            snprintf(label, sizeof label, "%.23s RSS at the end", watched[i].name);
            bench_report_num(r, k, (double)b->watch_rss_kb[i] / 1024.0, "MiB", label);
        }
        sum += cpu;
        if (strncmp(watched[i].name, "node", 4) == 0) {
            nodes += cpu;
            n_nodes++;
        }
    }
    if (n_nodes > 1) {
        snprintf(name, sizeof name, "%.40s%snodes", plain ? "" : key, plain ? "" : "_");
        report_one_cpu(r, name, nodes, wall, items, item_name);
    }
    if (n_watched > 0) {
        snprintf(name, sizeof name, "%.40s%sall", plain ? "" : key, plain ? "" : "_");
        report_one_cpu(r, name, sum + server_cpu, wall, items, item_name);
    }
    return sum;
}

static void report_redis(bench_report *r, const char *key, const bench_server_sample *a,
                         const bench_server_sample *b, double wall, uint64_t items, const char *item_name)
{
    if (a->redis_cmds < 0 || b->redis_cmds < 0)
        return;
    char k[160], label[96], pre[64];
    snprintf(pre, sizeof pre, "%.40s%s", strcmp(key, "server") == 0 ? "" : key, strcmp(key, "server") == 0 ? "" : "_");
    /* minus one: our own INFO of the first sample */
    double cmds = b->redis_cmds - a->redis_cmds - 1;
    snprintf(k, sizeof k, "%sredis_cmds", pre);
    bench_report_num(r, k, cmds, "", "redis commands processed");
    snprintf(k, sizeof k, "%sredis_cmds_per_s", pre);
    bench_report_num(r, k, wall > 0 ? cmds / wall : 0, "cmd/s", "redis commands per second");
    if (items > 0) {
        snprintf(k, sizeof k, "%sredis_cmds_per_%s", pre, item_name);
        snprintf(label, sizeof label, "redis commands per %s", item_name);
        bench_report_num(r, k, cmds / (double)items, "", label);
    }
}

void bench_report_cpu(bench_report *r, const char *key, const bench_server_sample *a,
                      const bench_server_sample *b, uint64_t items, const char *item_name)
{
    char k[96], label[96];
    double wall = (double)(b->at_us - a->at_us) / 1e6, client = b->client_cpu_s - a->client_cpu_s;
    snprintf(k, sizeof k, "%s_loadgen_cpu_util", key);
    bench_report_num(r, k, wall > 0 ? client / wall : 0, "cores", "load generator CPU utilisation");
    double cpu = a->ok && b->ok ? b->cpu_s - a->cpu_s : 0;
    double watched_cpu = report_watched(r, key, a, b, cpu, wall, items, item_name);
    report_redis(r, key, a, b, wall, items, item_name);
    double rest = (b->machine_busy_s - a->machine_busy_s) - client - cpu - watched_cpu;
    snprintf(k, sizeof k, "%s_other_cpu_util", key);
    bench_report_num(r, k, wall > 0 && rest > 0.005 ? rest / wall : 0, "cores", "rest of machine (irq, others)");
    if (!a->ok || !b->ok)
        return;
    snprintf(k, sizeof k, "%s_cpu_s", key);
    bench_report_num(r, k, cpu, "s", "server CPU (utime+stime)");
    snprintf(k, sizeof k, "%s_cpu_util", key);
    bench_report_num(r, k, wall > 0 ? cpu / wall : 0, "cores", "server CPU utilisation");
    if (items > 0) {
        snprintf(k, sizeof k, "%s_cpu_us_per_%s", key, item_name);
        snprintf(label, sizeof label, "server CPU per %s", item_name);
        bench_report_num(r, k, cpu * 1e6 / (double)items, "us", label);
    }
}

void bench_report_rss(bench_report *r, const char *key, const bench_server_sample *s, const char *label)
{
    if (s->ok)
        bench_report_num(r, key, (double)s->rss_kb / 1024.0, "MiB", label);
}

/* Sum (or max) of the samples "<name>[{labels}] value" of one metric. */
static double metric_value(const char *text, const char *name, bool max)
{
    double acc = 0;
    bool found = false;
    size_t nlen = strlen(name);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (n > nlen && strncmp(line, name, nlen) == 0 && (line[nlen] == ' ' || line[nlen] == '{')) {
            const char *sp = memrchr(line, ' ', n);
            double v = sp ? strtod(sp + 1, NULL) : 0;
            acc = !found ? v : max ? (v > acc ? v : acc) : acc + v;
            found = true;
        }
        line = end ? end + 1 : NULL;
    }
    return found ? acc : -1;
}

int bench_metrics_read(const bench_target *t, bench_metrics *m)
{
    hd_buf req;
    bench_http_resp resp;
    m->sync_fallbacks = m->queue_high_water = -1;
    hd_buf_init(&req);
    hd_buf_printf(&req, "GET /metrics HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", t->host, t->port);
    int rc = bench_http_fetch(t, req.data, req.len, &resp, 2000);
    hd_buf_deinit(&req);
    if (rc == 0 && resp.status == 200 && resp.body.data) {
        m->sync_fallbacks = metric_value(resp.body.data, "herald_cleanup_sync_fallbacks_total", false);
        m->queue_high_water = metric_value(resp.body.data, "herald_cleanup_queue_high_water", true);
    } else {
        rc = -1;
    }
    hd_buf_deinit(&resp.body);
    return rc;
}
