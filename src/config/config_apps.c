/* config_apps.c - app_manager.array.apps: apps, their origins and webhooks,
 * fallback to the global limits, and the checks across apps.
 *
 * DESIGN
 * ------
 * An app is walked against hd_config__app_rows. sockudo writes apps in two
 * shapes, both accepted: flat ({"id", "max_connections", "webhooks", ...})
 * and nested ({"id", "policy": {"limits": {...}, "features": {...},
 * "channels": {...}, "webhooks": [...]}}). Each row names the group it
 * belongs to in the nested shape; the flat shape accepts every group.
 * Which rows an app set is recorded in ctx->app_set, so limits it left out
 * take the global value after the environment has been applied.
 *
 * THREADING
 * ---------
 * Called only by the loader, on one thread.
 */
#include "config_internal.h"

#include "common/common.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef int (*app_fn)(hd_cfg_ctx *ctx, hd_app_config *app, const cJSON *v, const char *path);

static int walk_app(hd_cfg_ctx *ctx, size_t idx, const cJSON *obj, const char *path, hd_cfg_group group);
static int parse_origins(hd_cfg_ctx *ctx, hd_app_config *app, const cJSON *v, const char *path);
static int parse_webhooks(hd_cfg_ctx *ctx, hd_app_config *app, const cJSON *v, const char *path);

/* Array-valued app keys, and the group they sit in when nested. */
static const struct {
    const char *name;
    hd_cfg_group group;
    app_fn fn;
} app_specials[] = {
    {"allowed_origins", HD_CFG_G_CHANNELS, parse_origins},
    {"webhooks", HD_CFG_G_POLICY, parse_webhooks},
};

/* Objects that open a group of sockudo's nested shape. */
static const struct {
    const char *name;
    hd_cfg_group parent, child;
} app_nests[] = {
    {"policy", HD_CFG_G_APP, HD_CFG_G_POLICY},
    {"limits", HD_CFG_G_POLICY, HD_CFG_G_LIMITS},
    {"features", HD_CFG_G_POLICY, HD_CFG_G_FEATURES},
    {"channels", HD_CFG_G_POLICY, HD_CFG_G_CHANNELS},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool group_accepts(hd_cfg_group where, hd_cfg_group key_group)
{
    return where == HD_CFG_G_APP || where == key_group;
}

static int expect(hd_cfg_ctx *ctx, const cJSON *v, const char *path, bool ok, const char *what)
{
    if (ok)
        return 0;
    char got[80];
    hd_config__describe(v, got, sizeof got);
    return hd_config__fail(ctx, "%s: expected %s, got %s", path, what, got);
}

void hd_config__app_defaults(hd_app_config *app)
{
    memset(app, 0, sizeof *app);
    for (const hd_cfg_row *row = hd_config__app_rows; row->path; row++)
        if (row->fallback == HD_CFG_NOFIELD)
            hd_config__set_default(row, app);
}

void hd_config__strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hd_free(v[i]);
    hd_free(v);
}

static void webhook_free(hd_webhook_config *wh)
{
    hd_free(wh->url);
    hd_config__strv_free(wh->event_types, wh->n_event_types);
    hd_free(wh->filter_channel_prefix);
    hd_free(wh->filter_channel_suffix);
    for (size_t i = 0; i < wh->n_headers; i++) {
        hd_free(wh->headers[i].name);
        hd_free(wh->headers[i].value);
    }
    hd_free(wh->headers);
    memset(wh, 0, sizeof *wh);
}

static void webhooks_free(hd_app_config *app)
{
    for (size_t i = 0; i < app->n_webhooks; i++)
        webhook_free(&app->webhooks[i]);
    hd_free(app->webhooks);
    app->webhooks = NULL;
    app->n_webhooks = 0;
}

void hd_config__app_free(hd_app_config *app)
{
    hd_config__free_strings(hd_config__app_rows, app);
    hd_config__strv_free(app->allowed_origins, app->n_allowed_origins);
    webhooks_free(app);
    memset(app, 0, sizeof *app);
}

static void apps_alloc(hd_cfg_ctx *ctx, size_t n)
{
    hd_config *cfg = ctx->cfg;
    hd_assert(cfg->n_apps == 0 && !ctx->app_set);
    cfg->apps = hd_calloc(n, sizeof *cfg->apps);
    ctx->app_set = hd_calloc(n, sizeof *ctx->app_set);
    cfg->n_apps = n;
    for (size_t i = 0; i < n; i++)
        hd_config__app_defaults(&cfg->apps[i]);
}

void hd_config__apps_create_one(hd_cfg_ctx *ctx)
{
    apps_alloc(ctx, 1);
}

int hd_config__parse_apps(hd_cfg_ctx *ctx, const cJSON *arr, const char *path)
{
    if (cJSON_IsNull(arr))
        return 0;
    int rc = expect(ctx, arr, path, cJSON_IsArray(arr), "an array of apps");
    size_t n = rc ? 0 : (size_t)cJSON_GetArraySize(arr);
    if (n)
        apps_alloc(ctx, n);
    size_t i = 0;
    for (const cJSON *a = arr->child; a && !rc; a = a->next, i++) {
        char p[256];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        rc = expect(ctx, a, p, cJSON_IsObject(a), "an object");
        if (!rc)
            rc = walk_app(ctx, i, a, p, HD_CFG_G_APP);
    }
    return rc;
}

/* "allowed here: id, key, ..." for an unknown key inside an app. */
static int app_unknown(hd_cfg_ctx *ctx, const char *path, hd_cfg_group group)
{
    char allowed[1024] = "";
    size_t used = 0;
    for (const hd_cfg_row *row = hd_config__app_rows; row->path; row++)
        if (group_accepts(group, row->group) && used < sizeof allowed)
            used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", used ? ", " : "", row->path);
    for (size_t i = 0; i < COUNT(app_specials); i++)
        if (group_accepts(group, app_specials[i].group) && used < sizeof allowed)
            used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", used ? ", " : "",
                                     app_specials[i].name);
    for (size_t i = 0; i < COUNT(app_nests); i++)
        if (app_nests[i].parent == group && used < sizeof allowed)
            used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", used ? ", " : "",
                                     app_nests[i].name);
    return hd_config__fail(ctx, "%s: unknown key (allowed here: %s)", path, allowed);
}

static const hd_cfg_row *app_row(const char *name, hd_cfg_group group)
{
    for (const hd_cfg_row *row = hd_config__app_rows; row->path; row++)
        if (strcmp(row->path, name) == 0 && group_accepts(group, row->group))
            return row;
    return NULL;
}

static bool app_ignored(const char *name, hd_cfg_group group)
{
    for (const hd_cfg_ignored *ig = hd_config__app_ignored; ig->name; ig++)
        if (strcmp(ig->name, name) == 0 && group_accepts(group, ig->group))
            return true;
    return false;
}

static int app_member(hd_cfg_ctx *ctx, size_t idx, const cJSON *m, const char *path, hd_cfg_group group)
{
    hd_app_config *app = &ctx->cfg->apps[idx];
    for (size_t i = 0; i < COUNT(app_nests); i++)
        if (app_nests[i].parent == group && strcmp(app_nests[i].name, m->string) == 0) {
            if (cJSON_IsNull(m))
                return 0;
            int rc = expect(ctx, m, path, cJSON_IsObject(m), "an object");
            return rc ? rc : walk_app(ctx, idx, m, path, app_nests[i].child);
        }
    const hd_cfg_row *row = app_row(m->string, group);
    if (row) {
        if (cJSON_IsNull(m))
            return 0; /* sockudo's optional limits: null = use the global value */
        ctx->app_set[idx][hd_config__row_index(hd_config__app_rows, row)] = true;
        return hd_config__set_json(ctx, row, app, m, path);
    }
    for (size_t i = 0; i < COUNT(app_specials); i++)
        if (group_accepts(group, app_specials[i].group) && strcmp(app_specials[i].name, m->string) == 0)
            return app_specials[i].fn(ctx, app, m, path);
    if (app_ignored(m->string, group)) {
        hd_config__warn_ignored(ctx, path, NULL);
        return 0;
    }
    return app_unknown(ctx, path, group);
}

static int walk_app(hd_cfg_ctx *ctx, size_t idx, const cJSON *obj, const char *path, hd_cfg_group group)
{
    int rc = hd_config__check_dupes(ctx, obj, path);
    for (const cJSON *m = obj->child; m && !rc; m = m->next) {
        char p[256];
        hd_config__join(p, sizeof p, path, m->string);
        rc = app_member(ctx, idx, m, p, group);
    }
    return rc;
}

/* A JSON array of non-empty strings into a fresh vector (replacing *out). */
int hd_config__parse_strv(hd_cfg_ctx *ctx, const cJSON *arr, const char *path, char ***out, size_t *n_out)
{
    hd_config__strv_free(*out, *n_out);
    *out = NULL;
    *n_out = 0;
    int rc = expect(ctx, arr, path, cJSON_IsArray(arr), "an array of strings");
    if (rc)
        return rc;
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    *out = hd_calloc(n, sizeof **out);
    for (const cJSON *s = arr->child; s; s = s->next, i++) {
        char p[256];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        rc = expect(ctx, s, p, cJSON_IsString(s) && s->valuestring[0], "a non-empty string");
        if (rc)
            return rc;
        (*out)[i] = hd_strdup(s->valuestring);
        *n_out = i + 1;
    }
    return 0;
}

static int parse_origins(hd_cfg_ctx *ctx, hd_app_config *app, const cJSON *v, const char *path)
{
    if (cJSON_IsNull(v))
        return 0;
    return hd_config__parse_strv(ctx, v, path, &app->allowed_origins, &app->n_allowed_origins);
}

/* ---- webhooks: [{url, event_types[], filter{}, headers{}}] ---- */

typedef int (*wh_fn)(hd_cfg_ctx *ctx, hd_webhook_config *wh, const cJSON *v, const char *path);

static int wh_url(hd_cfg_ctx *ctx, hd_webhook_config *wh, const cJSON *v, const char *path)
{
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    bool ok = s && ((strncasecmp(s, "http://", 7) == 0 && s[7]) || (strncasecmp(s, "https://", 8) == 0 && s[8]));
    int rc = expect(ctx, v, path, ok, "an http:// or https:// URL");
    if (!rc)
        hd_config__replace(&wh->url, s);
    return rc;
}

static int wh_events(hd_cfg_ctx *ctx, hd_webhook_config *wh, const cJSON *v, const char *path)
{
    int rc = hd_config__parse_strv(ctx, v, path, &wh->event_types, &wh->n_event_types);
    for (size_t i = 0; !rc && i < wh->n_event_types; i++) {
        bool known = false;
        for (size_t k = 0; hd_config__webhook_events[k]; k++)
            known = known || strcmp(wh->event_types[i], hd_config__webhook_events[k]) == 0;
        if (!known)
            rc = hd_config__fail(ctx, "%s[%zu]: \"%.60s\" is not a webhook event (allowed: channel_occupied, "
                                      "channel_vacated, member_added, member_removed, client_event, cache_miss, "
                                      "subscription_count)", path, i, wh->event_types[i]);
    }
    if (!rc && wh->n_event_types == 0)
        rc = hd_config__fail(ctx, "%s: list at least one event type", path);
    return rc;
}

static int wh_filter_member(hd_cfg_ctx *ctx, hd_webhook_config *wh, const cJSON *m, const char *path)
{
    char **slot = strcmp(m->string, "channel_prefix") == 0   ? &wh->filter_channel_prefix
                  : strcmp(m->string, "channel_suffix") == 0 ? &wh->filter_channel_suffix
                                                             : NULL;
    if (!slot) {
        bool sockudo = strncmp(m->string, "channel_", 8) == 0;
        return hd_config__fail(ctx, "%s: %s (allowed here: channel_prefix, channel_suffix)", path,
                               sockudo ? "not supported by herald" : "unknown key");
    }
    if (cJSON_IsNull(m))
        return 0;
    int rc = expect(ctx, m, path, cJSON_IsString(m), "a string");
    if (!rc)
        hd_config__replace(slot, m->valuestring);
    return rc;
}

static int wh_filter(hd_cfg_ctx *ctx, hd_webhook_config *wh, const cJSON *v, const char *path)
{
    int rc = expect(ctx, v, path, cJSON_IsObject(v), "an object");
    if (!rc)
        rc = hd_config__check_dupes(ctx, v, path);
    for (const cJSON *m = v->child; m && !rc; m = m->next) {
        char p[256];
        hd_config__join(p, sizeof p, path, m->string);
        rc = wh_filter_member(ctx, wh, m, p);
    }
    return rc;
}

static int wh_headers(hd_cfg_ctx *ctx, hd_webhook_config *wh, const cJSON *v, const char *path)
{
    int rc = expect(ctx, v, path, cJSON_IsObject(v), "an object of header names to string values");
    if (!rc)
        rc = hd_config__check_dupes(ctx, v, path);
    size_t n = rc ? 0 : (size_t)cJSON_GetArraySize(v);
    wh->headers = hd_calloc(n, sizeof *wh->headers);
    for (const cJSON *m = v->child; m && !rc; m = m->next) {
        char p[256];
        hd_config__join(p, sizeof p, path, m->string);
        rc = expect(ctx, m, p, cJSON_IsString(m) && m->string[0], "a string value for a non-empty header name");
        if (rc)
            break;
        wh->headers[wh->n_headers].name = hd_strdup(m->string);
        wh->headers[wh->n_headers++].value = hd_strdup(m->valuestring);
    }
    return rc;
}

static const struct {
    const char *name;
    wh_fn fn; /* NULL = sockudo key herald ignores */
} wh_keys[] = {
    {"url", wh_url},         {"event_types", wh_events}, {"filter", wh_filter},          {"headers", wh_headers},
    {"lambda", NULL},        {"lambda_function", NULL},  {"request_timeout_ms", NULL}, {"retry", NULL},
};

static int wh_member(hd_cfg_ctx *ctx, hd_webhook_config *wh, const cJSON *m, const char *path)
{
    for (size_t i = 0; i < COUNT(wh_keys); i++) {
        if (strcmp(wh_keys[i].name, m->string) != 0)
            continue;
        if (!wh_keys[i].fn) {
            hd_config__warn_ignored(ctx, path, NULL);
            return 0;
        }
        return cJSON_IsNull(m) ? 0 : wh_keys[i].fn(ctx, wh, m, path);
    }
    return hd_config__fail(ctx, "%s: unknown key (allowed here: url, event_types, filter, headers)", path);
}

static int parse_webhook(hd_cfg_ctx *ctx, hd_webhook_config *wh, const cJSON *obj, const char *path)
{
    int rc = expect(ctx, obj, path, cJSON_IsObject(obj), "an object");
    if (!rc)
        rc = hd_config__check_dupes(ctx, obj, path);
    for (const cJSON *m = obj->child; m && !rc; m = m->next) {
        char p[256];
        hd_config__join(p, sizeof p, path, m->string);
        rc = wh_member(ctx, wh, m, p);
    }
    if (!rc && !wh->url) {
        bool lambda = cJSON_GetObjectItemCaseSensitive(obj, "lambda") ||
                      cJSON_GetObjectItemCaseSensitive(obj, "lambda_function");
        rc = hd_config__fail(ctx, "%s.url: required (an http:// or https:// URL)%s", path,
                             lambda ? "; lambda webhooks are not supported by herald" : "");
    }
    if (!rc && !wh->n_event_types)
        rc = hd_config__fail(ctx, "%s.event_types: required (a list of webhook events)", path);
    return rc;
}

static int parse_webhooks(hd_cfg_ctx *ctx, hd_app_config *app, const cJSON *v, const char *path)
{
    if (cJSON_IsNull(v))
        return 0;
    webhooks_free(app);
    int rc = expect(ctx, v, path, cJSON_IsArray(v), "an array of webhooks");
    size_t n = rc ? 0 : (size_t)cJSON_GetArraySize(v), i = 0;
    app->webhooks = hd_calloc(n, sizeof *app->webhooks);
    app->n_webhooks = n;
    for (const cJSON *w = rc ? NULL : v->child; w && !rc; w = w->next, i++) {
        char p[256];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        rc = parse_webhook(ctx, &app->webhooks[i], w, p);
    }
    return rc;
}

/* ---- after file and env ---- */

void hd_config__app_fallback(const hd_config *cfg, hd_app_config *app, const bool *set)
{
    size_t r = 0;
    for (const hd_cfg_row *row = hd_config__app_rows; row->path; row++, r++) {
        if (row->fallback == HD_CFG_NOFIELD || (set && set[r]))
            continue;
        uint32_t v = *(const uint32_t *)((const char *)cfg + row->fallback);
        *(uint32_t *)((char *)app + row->offset) = v;
    }
}

void hd_config__apps_fallback(hd_cfg_ctx *ctx)
{
    for (size_t i = 0; i < ctx->cfg->n_apps; i++)
        hd_config__app_fallback(ctx->cfg, &ctx->cfg->apps[i], ctx->app_set ? ctx->app_set[i] : NULL);
}

static int check_unique(hd_cfg_ctx *ctx, size_t i, const char *field, size_t offset)
{
    const hd_config *cfg = ctx->cfg;
    const char *mine = *(char *const *)((const char *)&cfg->apps[i] + offset);
    for (size_t j = 0; j < i; j++) {
        const char *other = *(char *const *)((const char *)&cfg->apps[j] + offset);
        if (strcmp(mine, other) == 0)
            return hd_config__fail(ctx, "app_manager.array.apps[%zu].%s: duplicate app %s \"%.60s\" (also used by "
                                        "apps[%zu])", i, field, field, mine, j);
    }
    return 0;
}

int hd_config__apps_validate(hd_cfg_ctx *ctx)
{
    const hd_config *cfg = ctx->cfg;
    if (cfg->n_apps == 0)
        return hd_config__fail(ctx, "app_manager.array.apps: at least one app is required (an object with id, key "
                                    "and secret, or HERALD_DEFAULT_APP_ID, _KEY and _SECRET)");
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const hd_app_config *app = &cfg->apps[i];
        const char *missing = !app->id ? "id" : !app->key ? "key" : !app->secret ? "secret" : NULL;
        if (missing)
            return hd_config__fail(ctx, "app_manager.array.apps[%zu].%s: required (a non-empty string)", i, missing);
        int rc = check_unique(ctx, i, "id", offsetof(hd_app_config, id));
        if (!rc)
            rc = check_unique(ctx, i, "key", offsetof(hd_app_config, key));
        if (rc)
            return rc;
    }
    return 0;
}
