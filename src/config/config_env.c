/* config_env.c - HERALD_* environment overrides.
 *
 * DESIGN
 * ------
 * After the file, every global row's variable (HERALD_PORT,
 * HERALD_CLEANUP_QUEUE_BUFFER_SIZE, ...) and every app row's
 * HERALD_DEFAULT_APP_* variable (applied to apps[0]) is looked up in the
 * environ-style array the caller passed. Values go through the same checks
 * as file values; errors name the variable and the key. When the file has
 * no app and a HERALD_DEFAULT_APP_* variable is set, apps[0] is created
 * from the app defaults (id, key and secret must then come from the env).
 * A HERALD_* variable that matches no key is logged and ignored.
 *
 * THREADING
 * ---------
 * Called only by the loader, on one thread. It reads only the array it is
 * given, never the process environment.
 */
#include "config_internal.h"

#include "common/common.h"

#include <stdio.h>
#include <string.h>

#define ENV_PREFIX "HERALD_"

/* Variables herald's launcher may read itself (not config keys). */
static const char *const env_reserved[] = {"HERALD_CONFIG", NULL};

static const char *env_get(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

static bool name_in_table(const hd_cfg_row *table, const char *entry, size_t n)
{
    for (const hd_cfg_row *row = table; row->path; row++)
        if (row->env && strlen(row->env) == n && strncmp(row->env, entry, n) == 0)
            return true;
    return false;
}

static void warn_unknown(hd_cfg_ctx *ctx, char *const *env)
{
    for (size_t i = 0; env[i]; i++) {
        const char *e = env[i];
        size_t n = strcspn(e, "=");
        if (strncmp(e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
            continue;
        if (name_in_table(hd_config__rows, e, n) || name_in_table(hd_config__app_rows, e, n))
            continue;
        bool reserved = false;
        for (size_t r = 0; env_reserved[r]; r++)
            reserved = reserved || (strlen(env_reserved[r]) == n && strncmp(env_reserved[r], e, n) == 0);
        if (reserved)
            continue;
        ctx->warnings++;
        hd_log(HD_LOG_WARN, "config", "ignored: environment variable %.*s (no such herald setting)", (int)n, e);
    }
}

/* Apply one table's variables to base; set[] records which rows were set. */
static int apply_table(hd_cfg_ctx *ctx, const hd_cfg_row *table, void *base, bool *set, char *const *env)
{
    for (const hd_cfg_row *row = table; row->path; row++) {
        const char *val = row->env ? env_get(env, row->env) : NULL;
        if (!val)
            continue;
        char name[200];
        if (table == hd_config__app_rows)
            snprintf(name, sizeof name, "%s (app_manager.array.apps[0].%s)", row->env, row->path);
        else
            snprintf(name, sizeof name, "%s (%s)", row->env, row->path);
        int rc = hd_config__set_text(ctx, row, base, val, name);
        if (rc)
            return rc;
        set[hd_config__row_index(table, row)] = true;
    }
    return 0;
}

static bool any_app_var(char *const *env)
{
    for (const hd_cfg_row *row = hd_config__app_rows; row->path; row++)
        if (row->env && env_get(env, row->env))
            return true;
    return false;
}

int hd_config__apply_env(hd_cfg_ctx *ctx, char *const *env)
{
    if (!env)
        return 0;
    warn_unknown(ctx, env);
    int rc = apply_table(ctx, hd_config__rows, ctx->cfg, ctx->set, env);
    if (rc || !any_app_var(env))
        return rc;
    if (ctx->cfg->n_apps == 0)
        hd_config__apps_create_one(ctx);
    return apply_table(ctx, hd_config__app_rows, &ctx->cfg->apps[0], ctx->app_set[0], env);
}
