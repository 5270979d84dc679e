/* prom.c - the Prometheus text exposition format (0.0.4) for every
 * renderer: family headers, samples, escaped labels and histograms
 * (metrics.h). One writer of the format, so the server's, the cleanup
 * pool's and the webhook pool's series cannot drift apart in shape.
 *
 * THREADING: reentrant, any thread (the metrics thread in practice).
 */
#include <inttypes.h>
#include <stdbool.h>

#include "metrics.h"

void hd_metrics_family(hd_buf *out, const char *name, const char *type, const char *help)
{
    hd_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void hd_metrics_sample(hd_buf *out, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        hd_buf_printf(out, "%s{%s} %.17g\n", name, labels, value);
    else
        hd_buf_printf(out, "%s %.17g\n", name, value);
}

void hd_metrics_label(hd_buf *out, const char *name, const char *value)
{
    hd_buf_printf(out, "%s=\"", name);
    for (const char *s = value; *s; s++) {
        if (*s == '\\' || *s == '"')
            hd_buf_append(out, "\\", 1);
        if (*s == '\n')
            hd_buf_puts(out, "\\n");
        else
            hd_buf_append(out, s, 1);
    }
    hd_buf_append(out, "\"", 1);
}

void hd_metrics_histogram(hd_buf *out, const char *name, const char *labels, const uint64_t *counts,
                          const double *le, unsigned n, double sum, int sum_decimals)
{
    bool labelled = labels && *labels;
    const char *l = labelled ? labels : "", *sep = labelled ? "," : "";
    uint64_t cum = 0;
    for (unsigned b = 0; b < n; b++) {
        cum += counts[b];
        if (b + 1 < n)
            hd_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, l, sep, le[b], cum);
        else
            hd_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, l, sep, cum);
    }
    if (labelled) {
        hd_buf_printf(out, "%s_sum{%s} %.*f\n", name, l, sum_decimals, sum);
        hd_buf_printf(out, "%s_count{%s} %" PRIu64 "\n", name, l, cum);
    } else {
        hd_buf_printf(out, "%s_sum %.*f\n", name, sum_decimals, sum);
        hd_buf_printf(out, "%s_count %" PRIu64 "\n", name, cum);
    }
}
