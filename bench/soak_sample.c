/* soak_sample.c - the soak's view of the server over time: RSS, open
 * descriptors and threads from /proc/<pid>, every herald_* gauge and
 * counter of its Prometheus endpoint, written as a CSV time series, and
 * the end-of-run judgement of each series: flat, growing or falling.
 *
 * DESIGN
 * ------
 * The metric columns are fixed by the first scrape (families of type gauge
 * or counter, named herald_*, with at least one sample), so the CSV keeps
 * one header; a family's samples are summed over their labels (workers,
 * apps, io threads), except high-water and max gauges, whose maximum is
 * taken. Values later missing are left empty. Rows are flushed as they are
 * written, so a run cut short leaves its series behind.
 *
 * The judgement uses the samples after the warm-up (phase SP_MEASURE): a
 * least-squares line through them gives the slope (reported per hour) and
 * the change over the window (slope x window). A series is flat when that
 * change stays within the tolerance: --tolerance percent of its mean, but
 * never less than a floor that keeps idle series from flapping (RSS 2 MiB,
 * descriptors 8, gauges 2, threads 0.5, i.e. any change). The change over
 * the window, not the extrapolated hourly slope, is judged, so a short run
 * is not condemned by noise blown up to an hour. High-water marks and
 * maxima only ever grow and are shown, not judged; counters are reported
 * as rates.
 *
 * THREADING
 * ---------
 * Parent process only.
 */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "soak.h"

#define MAX_COLS 96
#define MAX_ROWS 20000
#define PROC_COLS 3

enum col_type { CT_RSS, CT_FDS, CT_THREADS, CT_GAUGE, CT_COUNTER };

typedef struct soak_col {
    char name[96];
    int type;
    bool use_max;   /* high-water / max gauges: max over labels, not judged */
} soak_col;

struct soak_sampler {
    const bench_opts *o;
    pid_t pid;
    FILE *csv;
    soak_col cols[MAX_COLS];
    int ncols;
    double *v;          /* rows x MAX_COLS, NAN = missing */
    double *t;
    int *phase;
    size_t nrows;
};

/* ---- /proc/net/tcp ---- */

static int tcp_scan_file(const char *path, soak_tcp_fn fn, void *arg)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f)
        return -1;
    if (!fgets(line, sizeof line, f)) { /* header */
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        unsigned lport, rport, st;
        unsigned long inode;
        char laddr[64], raddr[64];
        if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %63[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", laddr,
                   &lport, raddr, &rport, &st, &inode) == 6)
            fn(arg, lport, rport, st, inode);
    }
    fclose(f);
    return 0;
}

int soak_tcp_scan(soak_tcp_fn fn, void *arg)
{
    int a = tcp_scan_file("/proc/net/tcp", fn, arg), b = tcp_scan_file("/proc/net/tcp6", fn, arg);
    return a == 0 || b == 0 ? 0 : -1;
}

typedef struct listen_find {
    unsigned port;
    unsigned long inode;
} listen_find;

static void listen_row(void *arg, unsigned lport, unsigned rport, unsigned st, unsigned long inode)
{
    listen_find *lf = arg;
    if (lport == lf->port && st == 0x0a && inode && !lf->inode) /* 0x0a: LISTEN */
        lf->inode = inode;
    (void)rport;
}

static bool pid_holds_inode(pid_t pid, const char *want)
{
    char dir[64], path[384], link[128];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            found = strcmp(link, want) == 0;
        }
    }
    closedir(d);
    return found;
}

pid_t soak_find_pid_by_port(int port)
{
    listen_find lf = {(unsigned)port, 0};
    if (soak_tcp_scan(listen_row, &lf) < 0 || !lf.inode)
        return 0;
    char want[64];
    snprintf(want, sizeof want, "socket:[%lu]", lf.inode);
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    pid_t pid = 0;
    struct dirent *e;
    while (!pid && (e = readdir(d)))
        if (isdigit((unsigned char)e->d_name[0]) && pid_holds_inode((pid_t)atoi(e->d_name), want))
            pid = (pid_t)atoi(e->d_name);
    closedir(d);
    return pid;
}

/* ---- /proc/<pid> ---- */

/* VmRSS (kB) and Threads; false when the process is gone. */
static bool proc_status(pid_t pid, double *rss_kb, double *threads)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    long v;
    *rss_kb = *threads = NAN;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            *rss_kb = (double)v;
        else if (sscanf(line, "Threads: %ld", &v) == 1)
            *threads = (double)v;
    }
    fclose(f);
    return !isnan(*rss_kb); /* a zombie has no VmRSS */
}

static double proc_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return NAN;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- Prometheus text ---- */

static bool metrics_fetch(const bench_opts *o, bench_http_resp *resp)
{
    hd_buf req;
    hd_buf_init(&req);
    hd_buf_printf(&req, "GET /metrics HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", o->metrics.host,
                  o->metrics.port);
    int rc = bench_http_fetch(&o->metrics, req.data, req.len, resp, 2000);
    hd_buf_deinit(&req);
    return rc == 0 && resp->status == 200 && resp->body.data;
}

static int col_find(const soak_sampler *s, const char *name, size_t n)
{
    for (int i = PROC_COLS; i < s->ncols; i++)
        if (strlen(s->cols[i].name) == n && memcmp(s->cols[i].name, name, n) == 0)
            return i;
    return -1;
}

/* "# TYPE herald_x gauge|counter": a column, once it has a sample. */
static void discover_type(soak_sampler *s, const char *line, size_t n, hd_buf *pending)
{
    char name[96], type[16];
    char tmp[160];
    if (n >= sizeof tmp)
        return;
    memcpy(tmp, line, n);
    tmp[n] = '\0';
    if (sscanf(tmp, "# TYPE %95s %15s", name, type) != 2 || strncmp(name, "herald_", 7) != 0)
        return;
    if (strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0)
        hd_buf_printf(pending, "%s %c\n", name, type[0]);
}

static void discover_sample(soak_sampler *s, const char *line, size_t n, const hd_buf *pending)
{
    size_t nl = strcspn(line, "{ ");
    if (nl >= n || col_find(s, line, nl) >= 0 || s->ncols >= MAX_COLS || !pending->data)
        return;
    char key[100];
    if (nl + 2 >= sizeof key)
        return;
    memcpy(key, line, nl);
    memcpy(key + nl, " ", 2);
    const char *hit = strstr(pending->data, key);
    if (!hit || (hit != pending->data && hit[-1] != '\n'))
        return;
    soak_col *c = &s->cols[s->ncols++];
    snprintf(c->name, sizeof c->name, "%.*s", (int)nl, line);
    c->type = hit[nl + 1] == 'g' ? CT_GAUGE : CT_COUNTER;
    c->use_max = strstr(c->name, "high_water") || strstr(c->name, "_max_");
}

static void metrics_discover(soak_sampler *s, const char *text)
{
    hd_buf pending;
    hd_buf_init(&pending);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (p[0] == '#')
            discover_type(s, p, n, &pending);
        else
            discover_sample(s, p, n, &pending);
        p = eol ? eol + 1 : NULL;
    }
    hd_buf_deinit(&pending);
}

static void metrics_values(const soak_sampler *s, const char *text, double *row)
{
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        int c = p[0] == '#' ? -1 : col_find(s, p, strcspn(p, "{ "));
        const char *sp = c >= 0 ? memrchr(p, ' ', n) : NULL;
        if (sp) {
            double v = strtod(sp + 1, NULL);
            if (isnan(row[c]))
                row[c] = v;
            else
                row[c] = s->cols[c].use_max ? fmax(row[c], v) : row[c] + v;
        }
        p = eol ? eol + 1 : NULL;
    }
}

/* ---- the sampler ---- */

static void csv_header(soak_sampler *s)
{
    if (!s->csv)
        return;
    fputs("t_s,phase", s->csv);
    for (int i = 0; i < s->ncols; i++)
        fprintf(s->csv, ",%s", s->cols[i].name);
    fputc('\n', s->csv);
    fflush(s->csv);
}

soak_sampler *soak_sampler_create(const bench_opts *o, pid_t pid, const char *csv_path)
{
    soak_sampler *s = hd_calloc(1, sizeof *s);
    static const char *const proc_names[PROC_COLS] = {"rss_kb", "fds", "threads"};
    s->o = o;
    s->pid = pid;
    for (int i = 0; i < PROC_COLS; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", proc_names[i]);
        s->cols[i].type = i;
    }
    s->ncols = PROC_COLS;
    for (int tries = 0; o->has_metrics && tries < 5 && s->ncols == PROC_COLS; tries++) {
        bench_http_resp resp;
        if (metrics_fetch(o, &resp))
            metrics_discover(s, resp.body.data);
        else
            bench_sleep_us(500000);
        hd_buf_deinit(&resp.body);
    }
    if (o->has_metrics && s->ncols == PROC_COLS)
        fprintf(stderr, "soak: no herald_* metrics at %s:%d; sampling /proc only\n", o->metrics.host,
                o->metrics.port);
    s->csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv_path && !s->csv)
        perror(csv_path);
    csv_header(s);
    s->v = hd_calloc((size_t)MAX_ROWS * MAX_COLS, sizeof *s->v);
    s->t = hd_calloc(MAX_ROWS, sizeof *s->t);
    s->phase = hd_calloc(MAX_ROWS, sizeof *s->phase);
    return s;
}

void soak_sampler_destroy(soak_sampler *s)
{
    if (!s)
        return;
    if (s->csv)
        fclose(s->csv);
    hd_free(s->v);
    hd_free(s->t);
    hd_free(s->phase);
    hd_free(s);
}

static double col_value(const soak_sampler *s, size_t row, const char *name)
{
    for (int i = 0; i < s->ncols; i++)
        if (strcmp(s->cols[i].name, name) == 0)
            return s->v[row * MAX_COLS + (size_t)i];
    return NAN;
}

static const char *const phase_names[] = {"idle", "warmup", "measure", "after"};

static void csv_row(soak_sampler *s, size_t row)
{
    if (!s->csv)
        return;
    fprintf(s->csv, "%.1f,%s", s->t[row], phase_names[s->phase[row]]);
    for (int i = 0; i < s->ncols; i++) {
        double v = s->v[row * MAX_COLS + (size_t)i];
        if (isnan(v))
            fputs(",", s->csv);
        else
            fprintf(s->csv, ",%.10g", v);
    }
    fputc('\n', s->csv);
    fflush(s->csv);
}

static void progress_line(const soak_sampler *s, size_t row, char *line, size_t cap)
{
    double rss = col_value(s, row, "rss_kb"), fds = col_value(s, row, "fds");
    double conns = col_value(s, row, "herald_connections"), chans = col_value(s, row, "herald_channels");
    double cq = col_value(s, row, "herald_cleanup_queue_depth"), wq = col_value(s, row, "herald_webhook_queue_depth");
    snprintf(line, cap, "t=%6.0f s %-7s rss %.1f MiB  fds %.0f  connections %.0f  channels %.0f  cleanup queue %.0f"
                        "  webhook queue %.0f",
             s->t[row], phase_names[s->phase[row]], rss / 1024.0, fds, conns, chans, cq, wq);
}

bool soak_sample(soak_sampler *s, double t_s, int phase, char *line, size_t cap)
{
    size_t row = s->nrows < MAX_ROWS ? s->nrows++ : MAX_ROWS - 1;
    double *v = &s->v[row * MAX_COLS];
    bool alive = true;
    for (int i = 0; i < MAX_COLS; i++)
        v[i] = NAN;
    s->t[row] = t_s;
    s->phase[row] = phase;
    if (s->pid > 0) {
        alive = proc_status(s->pid, &v[CT_RSS], &v[CT_THREADS]);
        v[CT_FDS] = proc_fds(s->pid);
    }
    if (s->ncols > PROC_COLS) {
        bench_http_resp resp;
        if (metrics_fetch(s->o, &resp))
            metrics_values(s, resp.body.data, v);
        hd_buf_deinit(&resp.body);
    }
    csv_row(s, row);
    progress_line(s, row, line, cap);
    return alive;
}

/* ---- judgement ---- */

typedef struct series_fit {
    size_t n;
    double first, last, max, mean, slope_s, window_s; /* slope per second */
} series_fit;

static bool series_fit_col(const soak_sampler *s, int c, series_fit *f)
{
    double st = 0, sv = 0, stt = 0, stv = 0, t0 = 0, t1 = 0;
    memset(f, 0, sizeof *f);
    for (size_t r = 0; r < s->nrows; r++) {
        double v = s->v[r * MAX_COLS + (size_t)c];
        if (s->phase[r] != SP_MEASURE || isnan(v))
            continue;
        if (f->n == 0) {
            f->first = f->max = v;
            t0 = s->t[r];
        }
        f->n++;
        f->last = v;
        f->max = fmax(f->max, v);
        t1 = s->t[r];
        st += s->t[r];
        sv += v;
        stt += s->t[r] * s->t[r];
        stv += s->t[r] * v;
    }
    if (f->n < 3)
        return false;
    double n = (double)f->n, den = n * stt - st * st;
    f->mean = sv / n;
    f->slope_s = den > 0 ? (n * stv - st * sv) / den : 0;
    f->window_s = t1 - t0;
    return true;
}

static double col_tolerance(const soak_sampler *s, const soak_col *c, double mean)
{
    double rel = fabs(mean) * s->o->soak.tolerance_pct / 100.0;
    double floor = c->type == CT_RSS ? 2048 : c->type == CT_FDS ? 8 : c->type == CT_THREADS ? 0.5 : 2;
    return c->type == CT_THREADS ? floor : fmax(rel, floor);
}

static const char *col_unit(const soak_col *c, double *scale)
{
    *scale = c->type == CT_RSS ? 1.0 / 1024.0 : 1.0;
    return c->type == CT_RSS ? "MiB" : "";
}

static void report_row_json(bench_report *rep, const soak_col *c, const char *what, double v)
{
    char key[160];
    snprintf(key, sizeof key, "%s_%s", c->name, what);
    bench_report_json_num(rep, key, v);
}

/* Prints the row and adds its JSON; returns 1 when judged growing. */
static int report_series(const soak_sampler *s, bench_report *rep, int i)
{
    const soak_col *c = &s->cols[i];
    series_fit f;
    double k;
    const char *unit = col_unit(c, &k);
    char key[160];
    if (!series_fit_col(s, i, &f)) {
        printf("  %-44s (fewer than 3 samples after the warm-up)\n", c->name);
        return 0;
    }
    double change = f.slope_s * f.window_s, tol = col_tolerance(s, c, f.mean);
    const char *verdict = c->type == CT_COUNTER ? "counter"
                          : c->use_max           ? "n/a (high-water)"
                          : change > tol         ? "growing"
                          : change < -tol        ? "falling"
                                                 : "flat";
    if (c->type == CT_COUNTER) {
        double rate = f.window_s > 0 ? (f.last - f.first) / f.window_s : 0;
        printf("  %-44s %12.0f %12.0f %12s %12.2f/s %9s\n", c->name, f.first, f.last, "", rate, "");
        report_row_json(rep, c, "rate_per_s", rate);
        return 0;
    }
    printf("  %-44s %12.2f %12.2f %12.2f %+12.2f %+9.2f ±%-8.2f %s %s\n", c->name, f.first * k, f.last * k, f.max * k,
           f.slope_s * 3600 * k, change * k, tol * k, unit, verdict);
    report_row_json(rep, c, "first", f.first);
    report_row_json(rep, c, "last", f.last);
    report_row_json(rep, c, "max", f.max);
    report_row_json(rep, c, "slope_per_h", f.slope_s * 3600);
    report_row_json(rep, c, "change", change);
    report_row_json(rep, c, "tolerance", tol);
    snprintf(key, sizeof key, "%s_verdict", c->name);
    bench_report_json_str(rep, key, verdict);
    return strcmp(verdict, "growing") == 0;
}

/* Idle (before any client) and after (load stopped, clients gone) values. */
static void report_edges(const soak_sampler *s, bench_report *rep)
{
    size_t idle = SIZE_MAX, after = SIZE_MAX;
    for (size_t r = 0; r < s->nrows; r++) {
        if (s->phase[r] == SP_IDLE && idle == SIZE_MAX)
            idle = r;
        if (s->phase[r] == SP_AFTER)
            after = r;
    }
    bench_report_section(rep, "server before the load / after it stopped");
    for (int i = 0; i < s->ncols; i++) {
        const soak_col *c = &s->cols[i];
        double k, a = idle != SIZE_MAX ? s->v[idle * MAX_COLS + (size_t)i] : NAN;
        double b = after != SIZE_MAX ? s->v[after * MAX_COLS + (size_t)i] : NAN;
        const char *unit = col_unit(c, &k);
        if (c->type == CT_COUNTER || (isnan(a) && isnan(b)))
            continue;
        printf("  %-44s %12.2f -> %12.2f %s\n", c->name, a * k, b * k, unit);
        report_row_json(rep, c, "idle", a);
        report_row_json(rep, c, "after", b);
    }
}

int soak_sampler_report(soak_sampler *s, bench_report *rep)
{
    int growing = 0;
    bench_report_section(rep, "server series after the warm-up");
    printf("  %-44s %12s %12s %12s %13s %9s %-9s   verdict\n", "series", "first", "last", "max", "slope/h", "change",
           " tolerance");
    for (int i = 0; i < s->ncols; i++)
        growing += report_series(s, rep, i);
    report_edges(s, rep);
    bench_report_json_num(rep, "series_growing", growing);
    bench_report_json_num(rep, "samples", (double)s->nrows);
    return growing;
}
