/* config.c - the public API: defaults, load (file -> env -> checks), free,
 * and the walker over the global keys.
 *
 * DESIGN
 * ------
 * hd_config_load_json starts from the defaults without any app, walks the
 * JSON object against hd_config__rows (config_table.c): a member is a
 * scalar row, a section (some row's path continues below it), a special
 * (apps, adapter.redis.url, sockudo's database / redis_pub_options), an
 * ignored sockudo key (one warning) or an error. Then the HERALD_*
 * environment is applied, the Redis address is resolved from its sources
 * (config_redis.c) and debug is folded in, apps inherit the global limits
 * they left out, and the apps are checked. Every allocation hangs off
 * cfg or the load context, so any error frees everything and leaves cfg
 * zeroed.
 *
 * THREADING
 * ---------
 * Load and free on one thread before others start; after that the config is
 * read-only and the lookups may be called from any thread.
 */
#include "config_internal.h"

#include "common/common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef int (*special_fn)(hd_cfg_ctx *ctx, const cJSON *v, const char *path);

static int parse_cors_origins(hd_cfg_ctx *ctx, const cJSON *v, const char *path)
{
    return hd_config__parse_strv(ctx, v, path, &ctx->cfg->cors_origins, &ctx->cfg->n_cors_origins);
}

/* Members that are not scalar rows: handled by their own parser. */
static const struct {
    const char *path;
    special_fn fn;
} specials[] = {
    {"app_manager.array.apps", hd_config__parse_apps},
    {"database", hd_config__sockudo_database},
    {"adapter.redis.redis_pub_options", hd_config__sockudo_pub_options},
    {"adapter.redis.url", hd_config__redis_url_key},
    {"cors.origins", parse_cors_origins},
    {"cors.origin", parse_cors_origins}, /* sockudo's name */
};
#define N_SPECIALS (sizeof specials / sizeof specials[0])

const hd_cfg_row *hd_config__row(const char *path)
{
    for (const hd_cfg_row *row = hd_config__rows; row->path; row++)
        if (strcmp(row->path, path) == 0)
            return row;
    return NULL;
}

size_t hd_config__row_index(const hd_cfg_row *table, const hd_cfg_row *row)
{
    return (size_t)(row - table);
}

bool hd_config__is_ignored(const char *path)
{
    for (size_t i = 0; hd_config__ignored[i]; i++)
        if (strcmp(hd_config__ignored[i], path) == 0)
            return true;
    return false;
}

static bool has_prefix_path(const char *full, const char *prefix, size_t plen)
{
    return strncmp(full, prefix, plen) == 0 && full[plen] == '.';
}

/* A section is an object some row or special lives under. */
static bool is_section(const char *path)
{
    size_t plen = strlen(path);
    for (const hd_cfg_row *row = hd_config__rows; row->path; row++)
        if (has_prefix_path(row->path, path, plen))
            return true;
    for (size_t i = 0; i < N_SPECIALS; i++)
        if (has_prefix_path(specials[i].path, path, plen))
            return true;
    return false;
}

/* Append the next path component of full below prefix to out, once. */
static void add_child(char *out, size_t outlen, const char *prefix, const char *full)
{
    size_t plen = strlen(prefix);
    if (plen && !has_prefix_path(full, prefix, plen))
        return;
    const char *name = full + (plen ? plen + 1 : 0);
    size_t nlen = strcspn(name, ".");
    char item[128];
    snprintf(item, sizeof item, "%.*s", (int)nlen, name);
    for (const char *p = out; (p = strstr(p, item)) != NULL; p += nlen)
        if ((p == out || p[-1] == ' ') && (p[nlen] == ',' || p[nlen] == '\0'))
            return;
    size_t used = strlen(out);
    snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", item);
}

static int unknown_key(hd_cfg_ctx *ctx, const char *path, const char *prefix)
{
    char allowed[1024] = "";
    for (const hd_cfg_row *row = hd_config__rows; row->path; row++)
        add_child(allowed, sizeof allowed, prefix, row->path);
    for (size_t i = 0; i < N_SPECIALS; i++)
        if (strcmp(specials[i].path, "database") != 0)
            add_child(allowed, sizeof allowed, prefix, specials[i].path);
    return hd_config__fail(ctx, "%s: unknown key (allowed here: %s)", path, allowed);
}

/* Mark a global row given by the file; an alias and its key conflict. */
static int mark_set(hd_cfg_ctx *ctx, const hd_cfg_row *row, const char *path)
{
    const hd_cfg_row *canon = row->alias_of ? hd_config__row(row->alias_of) : row;
    hd_assert(canon);
    size_t idx = hd_config__row_index(hd_config__rows, canon);
    if (ctx->set[idx]) {
        const char *other = row->alias_of;
        for (const hd_cfg_row *r = hd_config__rows; !other && r->path; r++)
            if (r->alias_of && strcmp(r->alias_of, row->path) == 0)
                other = r->path;
        return hd_config__fail(ctx, "%s: conflicts with %s (give only one of them)", path, other ? other : "?");
    }
    ctx->set[idx] = true;
    return 0;
}

static int walk_object(hd_cfg_ctx *ctx, const cJSON *obj, const char *prefix);

static int walk_member(hd_cfg_ctx *ctx, const cJSON *m, const char *path, const char *prefix)
{
    for (size_t i = 0; i < N_SPECIALS; i++)
        if (strcmp(specials[i].path, path) == 0)
            return specials[i].fn(ctx, m, path);
    const hd_cfg_row *row = hd_config__row(path);
    if (row) {
        if (cJSON_IsNull(m))
            return 0; /* null = leave the default, as sockudo's optional keys */
        int rc = mark_set(ctx, row, path);
        return rc ? rc : hd_config__set_json(ctx, row, ctx->cfg, m, path);
    }
    if (is_section(path)) {
        if (cJSON_IsNull(m))
            return 0;
        if (!cJSON_IsObject(m)) {
            char got[80];
            hd_config__describe(m, got, sizeof got);
            return hd_config__fail(ctx, "%s: expected an object, got %s", path, got);
        }
        return walk_object(ctx, m, path);
    }
    if (hd_config__is_ignored(path)) {
        hd_config__warn_ignored(ctx, path, NULL);
        return 0;
    }
    return unknown_key(ctx, path, prefix);
}

static int walk_object(hd_cfg_ctx *ctx, const cJSON *obj, const char *prefix)
{
    int rc = hd_config__check_dupes(ctx, obj, prefix);
    for (const cJSON *m = obj->child; m && !rc; m = m->next) {
        char path[256];
        hd_config__join(path, sizeof path, prefix, m->string);
        rc = walk_member(ctx, m, path, prefix);
    }
    return rc;
}

static void defaults_no_apps(hd_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (const hd_cfg_row *row = hd_config__rows; row->path; row++)
        hd_config__set_default(row, cfg);
}

void hd_config_defaults(hd_config *cfg)
{
    defaults_no_apps(cfg);
    cfg->apps = hd_calloc(1, sizeof *cfg->apps);
    cfg->n_apps = 1;
    hd_app_config *app = &cfg->apps[0];
    hd_config__app_defaults(app);
    app->id = hd_strdup("app-id");
    app->key = hd_strdup("app-key");
    app->secret = hd_strdup("app-secret");
    app->enable_client_messages = true;
    hd_config__app_fallback(cfg, app, NULL);
}

void hd_config__ctx_deinit(hd_cfg_ctx *ctx)
{
    hd_free(ctx->app_set);
    ctx->app_set = NULL;
    hd_config__redis_addr_free(&ctx->redis_url);
    hd_config__redis_addr_free(&ctx->redis_pub_url);
    hd_config__redis_addr_free(&ctx->redis_db);
}

static int json_error(hd_cfg_ctx *ctx, const char *json, size_t len, const char *at, const char *what)
{
    size_t off = at && at >= json ? (size_t)(at - json) : 0, line = 1, col = 1;
    for (size_t i = 0; i < off && i < len; i++, col++)
        if (json[i] == '\n')
            line++, col = 0;
    return hd_config__fail(ctx, "invalid JSON at line %zu, column %zu%s", line, col, what);
}

static int parse_root(hd_cfg_ctx *ctx, const char *json, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root)
        return json_error(ctx, json, len, end, "");
    while (end && end < json + len && strchr(" \t\r\n", *end) && *end)
        end++;
    int rc;
    if (end && end < json + len && *end)
        rc = json_error(ctx, json, len, end, ": text after the end of the top-level object");
    else if (!cJSON_IsObject(root))
        rc = hd_config__fail(ctx, "the top level must be a JSON object");
    else
        rc = walk_object(ctx, root, "");
    cJSON_Delete(root);
    return rc;
}

/* After file and env: sockudo's debug flag wins over log_level. */
static void finish_globals(hd_cfg_ctx *ctx)
{
    if (ctx->cfg->debug)
        hd_config__replace(&ctx->cfg->log_level, "debug");
}

int hd_config_load_json(hd_config *cfg, const char *json, size_t len, char *const *env, char *err, size_t errlen)
{
    hd_cfg_ctx ctx = {.cfg = cfg, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    defaults_no_apps(cfg);
    int rc = json ? parse_root(&ctx, json, len) : hd_config__fail(&ctx, "no JSON text");
    if (!rc)
        rc = hd_config__apply_env(&ctx, env);
    if (!rc)
        rc = hd_config__redis_finish(&ctx, env);
    if (!rc) {
        finish_globals(&ctx);
        hd_config__apps_fallback(&ctx);
        rc = hd_config__apps_validate(&ctx);
    }
    hd_config__ctx_deinit(&ctx);
    if (rc)
        hd_config_free(cfg);
    return rc;
}

#define MAX_FILE_BYTES (64u << 20)

/* Read all of path into a NUL-terminated heap buffer. */
static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "config: cannot open %s: %s", path, strerror(errno));
        return HD_EIO;
    }
    hd_buf b;
    hd_buf_init(&b);
    char chunk[8192];
    size_t n;
    while (b.len <= MAX_FILE_BYTES && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        hd_buf_append(&b, chunk, n);
    const char *why = ferror(f) ? "read error" : b.len > MAX_FILE_BYTES ? "larger than 64 MiB" : NULL;
    fclose(f);
    if (why) {
        hd_buf_deinit(&b);
        if (err && errlen)
            snprintf(err, errlen, "config: cannot read %s: %s", path, why);
        return HD_EIO;
    }
    *out = hd_buf_steal(&b, len);
    return 0;
}

int hd_config_load_file(hd_config *cfg, const char *path, char *const *env, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    memset(cfg, 0, sizeof *cfg);
    int rc = read_file(path, &text, &len, err, errlen);
    if (rc)
        return rc;
    rc = hd_config_load_json(cfg, text, len, env, err, errlen);
    hd_free(text);
    return rc;
}

void hd_config_free(hd_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_apps; i++)
        hd_config__app_free(&cfg->apps[i]);
    hd_free(cfg->apps);
    hd_config__strv_free(cfg->cors_origins, cfg->n_cors_origins);
    hd_config__free_strings(hd_config__rows, cfg);
    memset(cfg, 0, sizeof *cfg);
}

int hd_config_log_level(const hd_config *cfg)
{
    if (cfg->debug)
        return HD_LOG_DEBUG;
    for (int i = 0; cfg->log_level && hd_config__log_levels[i]; i++)
        if (strcasecmp(cfg->log_level, hd_config__log_levels[i]) == 0)
            return i;
    return HD_LOG_INFO; /* the default of log_level */
}

const hd_app_config *hd_config_app_by_key(const hd_config *cfg, const char *key)
{
    for (size_t i = 0; cfg && key && i < cfg->n_apps; i++)
        if (cfg->apps[i].key && strcmp(cfg->apps[i].key, key) == 0)
            return &cfg->apps[i];
    return NULL;
}

const hd_app_config *hd_config_app_by_id(const hd_config *cfg, const char *id)
{
    for (size_t i = 0; cfg && id && i < cfg->n_apps; i++)
        if (cfg->apps[i].id && strcmp(cfg->apps[i].id, id) == 0)
            return &cfg->apps[i];
    return NULL;
}
