/* config_diff.c - comparing two loaded configurations: which global keys
 * differ, and whether two apps' settings are the same. A reload (SIGHUP,
 * src/adapter/reload.c) applies only the app list: it names every other
 * key that changed, and leaves an app whose settings did not change
 * untouched.
 *
 * DESIGN
 * ------
 * Driven by the same tables as the loader (config_table.c): every scalar
 * row with a field is compared by its type, so a key added there is
 * compared without touching this file. Aliases share their key's field and
 * are skipped (one key, one line). A global key that is the fallback of an
 * app key (event_limits.*, presence.*, ...) is flagged: the loader already
 * folded it into every app that leaves the app key out, so a reload that
 * applies the apps applies it too. The app's arrays (allowed_origins,
 * webhooks) are compared element by element, in order.
 *
 * THREADING
 * ---------
 * Pure functions over configurations nobody modifies; any thread.
 */
#include "config_internal.h"

#include <string.h>

static bool str_equal(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool row_equal(const hd_cfg_row *row, const void *a, const void *b)
{
    const char *pa = (const char *)a + row->offset, *pb = (const char *)b + row->offset;
    switch (row->type) {
    case HD_CFG_BOOL:
        return *(const bool *)pa == *(const bool *)pb;
    case HD_CFG_U16:
        return *(const uint16_t *)pa == *(const uint16_t *)pb;
    case HD_CFG_U32:
    case HD_CFG_WORKERS:
        return *(const uint32_t *)pa == *(const uint32_t *)pb;
    case HD_CFG_STR:
    case HD_CFG_ENUM:
        return str_equal(*(char *const *)pa, *(char *const *)pb);
    }
    return false;
}

static bool rows_compared(const hd_cfg_row *row)
{
    return row->offset != HD_CFG_NOFIELD && !row->alias_of;
}

static bool is_app_fallback(const hd_cfg_row *global)
{
    for (const hd_cfg_row *row = hd_config__app_rows; row->path; row++)
        if (row->fallback != HD_CFG_NOFIELD && row->fallback == global->offset)
            return true;
    return false;
}

size_t hd_config_diff(const hd_config *a, const hd_config *b, hd_config_diff_fn fn, void *arg)
{
    size_t n = 0;
    for (const hd_cfg_row *row = hd_config__rows; row->path; row++) {
        if (!rows_compared(row) || row_equal(row, a, b))
            continue;
        n++;
        if (fn)
            fn(row->path, is_app_fallback(row), arg);
    }
    return n;
}

static bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_equal(a[i], b[i]))
            return false;
    return true;
}

static bool webhook_equal(const hd_webhook_config *a, const hd_webhook_config *b)
{
    if (!str_equal(a->url, b->url) || !strv_equal(a->event_types, a->n_event_types, b->event_types, b->n_event_types) ||
        !str_equal(a->filter_channel_prefix, b->filter_channel_prefix) ||
        !str_equal(a->filter_channel_suffix, b->filter_channel_suffix) || a->n_headers != b->n_headers)
        return false;
    for (size_t i = 0; i < a->n_headers; i++)
        if (!str_equal(a->headers[i].name, b->headers[i].name) || !str_equal(a->headers[i].value, b->headers[i].value))
            return false;
    return true;
}

bool hd_config_app_equal(const hd_app_config *a, const hd_app_config *b)
{
    for (const hd_cfg_row *row = hd_config__app_rows; row->path; row++)
        if (rows_compared(row) && !row_equal(row, a, b))
            return false;
    if (!strv_equal(a->allowed_origins, a->n_allowed_origins, b->allowed_origins, b->n_allowed_origins) ||
        a->n_webhooks != b->n_webhooks)
        return false;
    for (size_t i = 0; i < a->n_webhooks; i++)
        if (!webhook_equal(&a->webhooks[i], &b->webhooks[i]))
            return false;
    return true;
}
