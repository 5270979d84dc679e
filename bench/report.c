/* report.c - herald_bench's output: a readable summary on stdout, and the
 * same figures as one JSON object on the last line.
 *
 * DESIGN
 * ------
 * Each bench_report_* call prints one summary line and appends one (or, for
 * histograms, several) JSON members, so every figure a scenario shows is in
 * the JSON too, under a stable snake_case key. Latencies are given in ms.
 *
 * THREADING
 * ---------
 * Parent process only.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static void json_key(bench_report *r, const char *key)
{
    if (r->json.len > 1)
        hd_buf_puts(&r->json, ",");
    hd_buf_json_string(&r->json, key, strlen(key));
    hd_buf_puts(&r->json, ":");
}

static double loadavg_1m(void)
{
    double v = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

void bench_report_begin(bench_report *r, const bench_opts *o)
{
    hd_buf_init(&r->json);
    hd_buf_puts(&r->json, "{");
    bench_report_str(r, "scenario", o->scenario, "scenario");
    bench_report_target(r, o);
}

void bench_report_end(bench_report *r)
{
    bench_report_section(r, "machine");
    bench_report_num(r, "loadavg_1m", loadavg_1m(), "", "load average (1 min) at the end");
    hd_buf_puts(&r->json, "}");
    printf("%s\n", r->json.data);
    fflush(stdout);
    hd_buf_deinit(&r->json);
}

void bench_report_section(bench_report *r, const char *title)
{
    (void)r;
    printf("-- %s\n", title);
}

void bench_report_num(bench_report *r, const char *key, double v, const char *unit, const char *label)
{
    if (!isfinite(v))
        v = 0;
    printf("  %-34s %.3f%s%s\n", label, v, unit && *unit ? " " : "", unit ? unit : "");
    json_key(r, key);
    hd_buf_printf(&r->json, "%.10g", v);
}

void bench_report_int(bench_report *r, const char *key, uint64_t v, const char *label)
{
    printf("  %-34s %llu\n", label, (unsigned long long)v);
    json_key(r, key);
    hd_buf_printf(&r->json, "%llu", (unsigned long long)v);
}

void bench_report_str(bench_report *r, const char *key, const char *v, const char *label)
{
    printf("  %-34s %s\n", label, v);
    json_key(r, key);
    hd_buf_json_string(&r->json, v, strlen(v));
}

void bench_report_json_num(bench_report *r, const char *key, double v)
{
    json_key(r, key);
    hd_buf_printf(&r->json, "%.10g", isfinite(v) ? v : 0);
}

void bench_report_json_str(bench_report *r, const char *key, const char *v)
{
    json_key(r, key);
    hd_buf_json_string(&r->json, v, strlen(v));
}

static void hist_json(bench_report *r, const char *key, const char *suffix, double v)
{
    char k[96];
    snprintf(k, sizeof k, "%s_%s", key, suffix);
    json_key(r, k);
    hd_buf_printf(&r->json, "%.10g", v);
}

void bench_report_hist(bench_report *r, const char *key, const bench_hist *h, const char *label)
{
    static const struct {
        const char *label, *name;
        double p;
    } pcts[] = {{"p50", "p50_ms", 50}, {"p90", "p90_ms", 90}, {"p99", "p99_ms", 99}, {"p99.9", "p999_ms", 99.9}};
    double mean = h->count ? (double)h->sum / (double)h->count / 1000.0 : 0;
    printf("  %-34s n=%llu mean=%.3f", label, (unsigned long long)h->count, mean);
    char k[96];
    snprintf(k, sizeof k, "%s_count", key);
    json_key(r, k);
    hd_buf_printf(&r->json, "%llu", (unsigned long long)h->count);
    hist_json(r, key, "mean_ms", mean);
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
        double v = (double)bench_hist_pct(h, pcts[i].p) / 1000.0;
        printf(" %s=%.3f", pcts[i].label, v);
        hist_json(r, key, pcts[i].name, v);
    }
    printf(" max=%.3f ms\n", (double)h->max / 1000.0);
    hist_json(r, key, "max_ms", (double)h->max / 1000.0);
}
