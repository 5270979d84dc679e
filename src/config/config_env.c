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
 * A HERALD_* variable that matches no key stops the load, like an unknown
 * key in the file: a mistyped HERALD_PROT would otherwise leave herald on
 * its default port with only a warning. The message suggests the closest
 * variable name. HERALD_ADAPTER_REDIS_URL is known here but read by
 * config_redis.c, with REDIS_URL (which, without the HERALD_ prefix, is
 * never refused). Global rows set here are recorded in ctx->env_set, apart
 * from the file's ctx->set: the Redis address needs to know which layer
 * gave a field.
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

/* Settings that are not table rows, read by their own code: the Redis URL
 * (config_redis.c). Known names, and suggested for near misses. */
static const char *const env_special[] = {"HERALD_ADAPTER_REDIS_URL", NULL};

const char *hd_config__env_get(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
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

/* Edit distance between a[0, an) and b, capped at 3 (only near misses matter). */
static size_t distance(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    if (an > 64 || bn > 64)
        return 3;
    size_t row[65];
    for (size_t j = 0; j <= bn; j++)
        row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn] < 3 ? row[bn] : 3;
}

/* The variable name closest to entry[0, n), or NULL when none is near. */
static const char *closest_name(const char *entry, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    const hd_cfg_row *tables[] = {hd_config__rows, hd_config__app_rows};
    for (size_t t = 0; t < 2; t++)
        for (const hd_cfg_row *row = tables[t]; row->path; row++) {
            size_t d = row->env ? distance(entry, n, row->env) : 3;
            if (d < best_d) {
                best_d = d;
                best = row->env;
            }
        }
    for (size_t i = 0; env_special[i]; i++)
        if (distance(entry, n, env_special[i]) < best_d) {
            best_d = distance(entry, n, env_special[i]);
            best = env_special[i];
        }
    return best;
}

static bool name_in_list(const char *const *list, const char *e, size_t n)
{
    for (size_t r = 0; list[r]; r++)
        if (strlen(list[r]) == n && strncmp(list[r], e, n) == 0)
            return true;
    return false;
}

static bool reserved_name(const char *e, size_t n)
{
    return name_in_list(env_reserved, e, n) || name_in_list(env_special, e, n);
}

static int refuse_unknown(hd_cfg_ctx *ctx, char *const *env)
{
    for (size_t i = 0; env[i]; i++) {
        const char *e = env[i];
        size_t n = strcspn(e, "=");
        if (strncmp(e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
            continue;
        if (name_in_table(hd_config__rows, e, n) || name_in_table(hd_config__app_rows, e, n) || reserved_name(e, n))
            continue;
        const char *near = closest_name(e, n);
        if (near)
            return hd_config__fail(ctx, "environment variable %.*s: no such herald setting (did you mean %s?)", (int)n,
                                   e, near);
        return hd_config__fail(ctx,
                               "environment variable %.*s: no such herald setting (HERALD_ + a key's path in "
                               "capitals, e.g. HERALD_PORT; see docs/CONFIGURATION.md)",
                               (int)n, e);
    }
    return 0;
}

/* Apply one table's variables to base; set[] records which rows were set. */
static int apply_table(hd_cfg_ctx *ctx, const hd_cfg_row *table, void *base, bool *set, char *const *env)
{
    for (const hd_cfg_row *row = table; row->path; row++) {
        const char *val = row->env ? hd_config__env_get(env, row->env) : NULL;
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
        if (row->env && hd_config__env_get(env, row->env))
            return true;
    return false;
}

int hd_config__apply_env(hd_cfg_ctx *ctx, char *const *env)
{
    if (!env)
        return 0;
    int rc = refuse_unknown(ctx, env);
    if (rc)
        return rc;
    rc = apply_table(ctx, hd_config__rows, ctx->cfg, ctx->env_set, env);
    if (rc || !any_app_var(env))
        return rc;
    if (ctx->cfg->n_apps == 0)
        hd_config__apps_create_one(ctx);
    return apply_table(ctx, hd_config__app_rows, &ctx->cfg->apps[0], ctx->app_set[0], env);
}
