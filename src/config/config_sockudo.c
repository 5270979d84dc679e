/* config_sockudo.c - sockudo's ways of giving the Redis address:
 * database.redis.* and adapter.redis.redis_pub_options.url.
 *
 * DESIGN
 * ------
 * sockudo takes the adapter's Redis address from database.redis (host,
 * port, username, password, db), or from adapter.redis.redis_pub_options.url
 * when that is set (the URL wins); its prefix is adapter.redis.prefix, which
 * is herald's key too. This file only collects both into the load context;
 * config_redis.c decides which source wins (herald's own keys and URL win
 * over both). The rest of database, and every other redis_pub_options key,
 * is ignored with one warning, like the other sockudo sections.
 *
 * THREADING
 * ---------
 * Called only by the loader, on one thread.
 */
#include "config_internal.h"

#include "common/common.h"

#include <stdio.h>
#include <string.h>

/* database.redis keys herald uses, stored in ctx->redis_db; fields[] says
 * which address field each row is. Bounds are adapter.redis.*'s. */
static const hd_cfg_row db_rows[] = {
    {.path = "host", .type = HD_CFG_STR, .offset = offsetof(hd_cfg_redis_addr, host), .min = 1, .max = 255},
    {.path = "port", .type = HD_CFG_U32, .offset = offsetof(hd_cfg_redis_addr, port), .min = 1, .max = 65535},
    {.path = "username", .type = HD_CFG_STR, .offset = offsetof(hd_cfg_redis_addr, username), .max = 255},
    {.path = "password", .type = HD_CFG_STR, .offset = offsetof(hd_cfg_redis_addr, password), .max = 1024,
     .secret = true},
    {.path = "db", .type = HD_CFG_U32, .offset = offsetof(hd_cfg_redis_addr, db), .max = 1000000},
    {0},
};
static const hd_cfg_redis_field db_fields[] = {HD_CFG_REDIS_HOST, HD_CFG_REDIS_PORT, HD_CFG_REDIS_USERNAME,
                                               HD_CFG_REDIS_PASSWORD, HD_CFG_REDIS_DB};

int hd_config__sockudo_database(hd_cfg_ctx *ctx, const cJSON *v, const char *path)
{
    if (cJSON_IsNull(v))
        return 0;
    char got[80];
    hd_config__describe(v, got, sizeof got);
    if (!cJSON_IsObject(v))
        return hd_config__fail(ctx, "%s: expected an object, got %s", path, got);
    const cJSON *redis = cJSON_GetObjectItemCaseSensitive(v, "redis");
    bool used = false;
    for (size_t i = 0; cJSON_IsObject(redis) && db_rows[i].path; i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(redis, db_rows[i].path);
        if (!item || cJSON_IsNull(item))
            continue;
        char name[64];
        snprintf(name, sizeof name, "%s.redis.%s", path, db_rows[i].path);
        int rc = hd_config__set_json(ctx, &db_rows[i], &ctx->redis_db, item, name);
        if (rc)
            return rc;
        ctx->redis_db.has[db_fields[i]] = true;
        used = true;
    }
    hd_config__warn_ignored(ctx, path,
                            used ? "; database.redis.host/port/username/password/db are used as the redis adapter's "
                                   "address"
                                 : NULL);
    return 0;
}

static int pub_url(hd_cfg_ctx *ctx, const cJSON *v, const char *path)
{
    if (cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v)) {
        char got[40];
        hd_config__describe_kind(v, got, sizeof got);
        return hd_config__fail(ctx, "%s: expected a string redis://[[user]:password@]host[:port][/db], got %s", path,
                               got);
    }
    return hd_config__redis_url(ctx, v->valuestring, path, &ctx->redis_pub_url);
}

int hd_config__sockudo_pub_options(hd_cfg_ctx *ctx, const cJSON *v, const char *path)
{
    if (cJSON_IsNull(v))
        return 0;
    char got[80];
    hd_config__describe(v, got, sizeof got);
    if (!cJSON_IsObject(v))
        return hd_config__fail(ctx, "%s: expected an object, got %s", path, got);
    int rc = hd_config__check_dupes(ctx, v, path);
    for (const cJSON *m = v->child; m && !rc; m = m->next) {
        char p[256];
        hd_config__join(p, sizeof p, path, m->string);
        if (strcmp(m->string, "url") == 0)
            rc = pub_url(ctx, m, p);
        else
            hd_config__warn_ignored(ctx, p, NULL);
    }
    return rc;
}
