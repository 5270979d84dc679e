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

void bench_server_sample_take(pid_t pid, bench_server_sample *s)
{
    memset(s, 0, sizeof *s);
    s->at_us = bench_now_us();
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
    if (!a->ok || !b->ok)
        return;
    double cpu = b->cpu_s - a->cpu_s, wall = (double)(b->at_us - a->at_us) / 1e6;
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

/* Sum every sample line "herald_cleanup_<...fallback...>[{labels}] value". */
static double sum_fallbacks(const char *text)
{
    double sum = 0;
    bool found = false;
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, "herald_cleanup_", 15) != 0)
            continue;
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        const char *name_end = line + strcspn(line, " {\n");
        if (!memmem(line, (size_t)(name_end - line), "fallback", 8))
            continue;
        const char *val = memrchr(line, ' ', n);
        if (val) {
            sum += strtod(val + 1, NULL);
            found = true;
        }
    }
    return found ? sum : -1;
}

double bench_metrics_fallbacks(const bench_target *t)
{
    hd_buf req;
    bench_http_resp resp;
    hd_buf_init(&req);
    hd_buf_printf(&req, "GET /metrics HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", t->host, t->port);
    int rc = bench_http_fetch(t, req.data, req.len, &resp, 2000);
    hd_buf_deinit(&req);
    double v = -1;
    if (rc == 0 && resp.status == 200 && resp.body.data)
        v = sum_fallbacks(resp.body.data);
    hd_buf_deinit(&resp.body);
    return v;
}
