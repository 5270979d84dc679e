/* proc.c - herald_bench's view of the server process: RSS and CPU time
 * from /proc/<pid>, and herald's cleanup fallback counters from its
 * Prometheus endpoint.
 *
 * DESIGN
 * ------
 * CPU is utime + stime of /proc/PID/stat (all threads, clock ticks, so a
 * 10 ms resolution); RSS is VmRSS of /proc/PID/status. Samples are taken by
 * the parent at phase boundaries; a missing pid gives ok = false and the
 * figures are reported as 0.
 *
 * THREADING
 * ---------
 * Parent process only; reentrant.
 */
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

void bench_server_sample_take(pid_t pid, bench_server_sample *s)
{
    memset(s, 0, sizeof *s);
    s->at_us = bench_now_us();
    s->client_cpu_s = clients_cpu_s();
    s->machine_busy_s = machine_busy_s();
    if (pid <= 0)
        return;
    s->rss_kb = read_rss_kb(pid);
    s->cpu_s = read_cpu_s(pid);
    s->ok = s->rss_kb >= 0 && s->cpu_s >= 0;
}

void bench_report_cpu(bench_report *r, const char *key, const bench_server_sample *a,
                      const bench_server_sample *b, uint64_t items, const char *item_name)
{
    char k[96], label[96];
    double wall = (double)(b->at_us - a->at_us) / 1e6, client = b->client_cpu_s - a->client_cpu_s;
    snprintf(k, sizeof k, "%s_loadgen_cpu_util", key);
    bench_report_num(r, k, wall > 0 ? client / wall : 0, "cores", "load generator CPU utilisation");
    double cpu = a->ok && b->ok ? b->cpu_s - a->cpu_s : 0;
    double rest = (b->machine_busy_s - a->machine_busy_s) - client - cpu;
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
