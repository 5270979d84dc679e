/* config_internal.h - what the config module's .c files share: the key
 * tables, the load context and the value setters.
 *
 * DESIGN
 * ------
 * Every scalar key is one hd_cfg_row (config_table.c). Global rows carry the
 * full dotted JSON path ("cleanup.batch_size") and point into hd_config; app
 * rows carry the key name inside one app ("max_connections") and point into
 * hd_app_config. A walker (config.c for the globals, config_apps.c for apps)
 * looks each JSON member up in the tables; config_value.c converts and
 * range-checks one value, from JSON or from an environment string, and
 * writes the message naming the key. Nothing outside src/config includes
 * this header.
 *
 * Keys sockudo has and herald does not implement are listed in
 * hd_config__ignored / hd_config__app_ignored: they load with one warning.
 *
 * THREADING
 * ---------
 * Loading runs on one thread (the main thread, before others start); the
 * tables are const and the context lives on the loader's stack.
 */
#ifndef HD_CONFIG_INTERNAL_H
#define HD_CONFIG_INTERNAL_H

#include "config.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum hd_cfg_type {
    HD_CFG_BOOL,    /* bool; env: true/false/1/0 */
    HD_CFG_U16,     /* uint16_t in [min, max]; numeric strings accepted */
    HD_CFG_U32,     /* uint32_t in [min, max]; numeric strings accepted */
    HD_CFG_WORKERS, /* uint32_t: "auto" (stored 0) or a number in [min, max] */
    HD_CFG_STR,     /* char *, length in [min, max] */
    HD_CFG_ENUM,    /* char *, one of choices (stored in its canonical spelling) */
} hd_cfg_type;

/* Which part of an app object a key belongs to. A flat (sockudo legacy)
 * app accepts every group at its top level; sockudo's newer nested form
 * puts them under policy.limits / policy.features / policy.channels. */
typedef enum hd_cfg_group {
    HD_CFG_G_APP,      /* id, key, secret, enabled: app top level only */
    HD_CFG_G_POLICY,   /* policy.<key>, e.g. webhooks */
    HD_CFG_G_LIMITS,   /* policy.limits.<key> */
    HD_CFG_G_FEATURES, /* policy.features.<key> */
    HD_CFG_G_CHANNELS, /* policy.channels.<key> */
} hd_cfg_group;

#define HD_CFG_NOFIELD ((size_t)-1) /* row is validated but stored nowhere */
#define HD_CFG_MAX_ROWS 128         /* per table; checked by the unit tests */

typedef struct hd_cfg_row {
    const char *path;    /* global: "cleanup.batch_size"; app: "max_connections" */
    const char *env;     /* HERALD_* variable; NULL = none (aliases) */
    hd_cfg_type type;
    size_t offset;       /* into hd_config / hd_app_config, or HD_CFG_NOFIELD */
    uint64_t min, max;   /* integer bounds, or string length bounds */
    uint64_t def;        /* bool / integer default */
    const char *def_str; /* string / enum default (NULL = none) */
    const char *const *choices; /* HD_CFG_ENUM values, NULL-terminated */
    const char *alias_of;  /* this key is another name for that row's key */
    const char *why;       /* bool rows: explanation when the value is refused */
    bool secret;           /* a password: no message ever shows its value */
    size_t fallback;       /* app rows: hd_config offset of the global default */
    hd_cfg_group group;    /* app rows */
} hd_cfg_row;

/* The fields of the Redis adapter's address, in the order config_redis.c
 * resolves them. */
typedef enum hd_cfg_redis_field {
    HD_CFG_REDIS_HOST,
    HD_CFG_REDIS_PORT,
    HD_CFG_REDIS_USERNAME,
    HD_CFG_REDIS_PASSWORD,
    HD_CFG_REDIS_DB,
    HD_CFG_REDIS_NFIELDS,
} hd_cfg_redis_field;

/* A Redis address from one source (config_redis.c): a URL gives every
 * field (what it leaves out is the default), sockudo's database.redis the
 * fields it names. The strings are owned. */
typedef struct hd_cfg_redis_addr {
    bool has[HD_CFG_REDIS_NFIELDS];
    char *host, *username, *password;
    uint32_t port, db;
} hd_cfg_redis_addr;

typedef struct hd_cfg_ignored {
    const char *name;    /* key inside an app */
    hd_cfg_group group;
} hd_cfg_ignored;

extern const hd_cfg_row hd_config__rows[];     /* terminated by path == NULL */
extern const hd_cfg_row hd_config__app_rows[]; /* terminated by path == NULL */
extern const char *const hd_config__ignored[];    /* full paths, NULL-terminated */
extern const hd_cfg_ignored hd_config__app_ignored[];
extern const char *const hd_config__webhook_events[];
extern const char *const hd_config__log_levels[]; /* index = HD_LOG_* */

/* State of one load. Every allocation is reachable from cfg or from the
 * fields below, so hd_config__ctx_deinit + hd_config_free free everything
 * on any error path. */
typedef struct hd_cfg_ctx {
    hd_config *cfg;
    char *err;
    size_t errlen;
    bool set[HD_CFG_MAX_ROWS];     /* global rows given by the file */
    bool env_set[HD_CFG_MAX_ROWS]; /* global rows given by the environment */
    bool (*app_set)[HD_CFG_MAX_ROWS]; /* per app (n_apps entries), file or env */
    /* The file's other ways of giving the Redis address; config_redis.c
     * decides which source wins, field by field. */
    hd_cfg_redis_addr redis_url;     /* adapter.redis.url */
    hd_cfg_redis_addr redis_pub_url; /* adapter.redis.redis_pub_options.url (sockudo) */
    hd_cfg_redis_addr redis_db;      /* database.redis.* (sockudo) */
    unsigned warnings;           /* "ignored: ..." lines logged */
} hd_cfg_ctx;

void hd_config__ctx_deinit(hd_cfg_ctx *ctx);

/* Write "config: <message>" to ctx->err; returns HD_EINVAL. */
int hd_config__fail(hd_cfg_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log "ignored: <what> (not supported by herald)<note>" (note may be NULL). */
void hd_config__warn_ignored(hd_cfg_ctx *ctx, const char *what, const char *note);
/* out = prefix "." name, or name when prefix is empty. */
void hd_config__join(char *out, size_t outlen, const char *prefix, const char *name);
/* Parse 1..20 decimal digits into *out; false on anything else or overflow. */
bool hd_config__parse_uint(const char *s, uint64_t *out);

/* Row lookups; NULL when absent. */
const hd_cfg_row *hd_config__row(const char *path);
size_t hd_config__row_index(const hd_cfg_row *table, const hd_cfg_row *row);
bool hd_config__is_ignored(const char *path);

/* Set one field of base (an hd_config or hd_app_config) from a JSON value
 * or from text (env). name is what the error message calls the key. */
int hd_config__set_json(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, const cJSON *v, const char *name);
int hd_config__set_text(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, const char *text, const char *name);
/* Store a row's default in base. */
void hd_config__set_default(const hd_cfg_row *row, void *base);
/* Free the strings a table's rows own in base. */
void hd_config__free_strings(const hd_cfg_row *table, void *base);
/* Copy an owned string into *slot, freeing the old one. */
void hd_config__replace(char **slot, const char *s);
/* Describe a JSON value for messages: "string \"abc\"", "number 1.5", ... */
void hd_config__describe(const cJSON *v, char *out, size_t outlen);
/* The same without the value, for secrets: "a string", "a number", ... */
void hd_config__describe_kind(const cJSON *v, char *out, size_t outlen);
/* Fail if obj has two members with the same name. */
int hd_config__check_dupes(hd_cfg_ctx *ctx, const cJSON *obj, const char *path);

/* config_apps.c */
int hd_config__parse_apps(hd_cfg_ctx *ctx, const cJSON *arr, const char *path);
/* An array of non-empty strings into *out (replacing what was there). */
int hd_config__parse_strv(hd_cfg_ctx *ctx, const cJSON *arr, const char *path, char ***out, size_t *n_out);
void hd_config__strv_free(char **v, size_t n);
void hd_config__app_defaults(hd_app_config *app);
void hd_config__app_free(hd_app_config *app);
/* Grow cfg->apps to one default app with empty credentials (for env). */
void hd_config__apps_create_one(hd_cfg_ctx *ctx);
void hd_config__apps_fallback(hd_cfg_ctx *ctx);
/* Copy globals into app's fallback fields whose set[] entry is false
 * (set may be NULL: all fall back). */
void hd_config__app_fallback(const hd_config *cfg, hd_app_config *app, const bool *set);
int hd_config__apps_validate(hd_cfg_ctx *ctx);

/* config_sockudo.c: sockudo-only shapes mapped onto herald keys */
int hd_config__sockudo_database(hd_cfg_ctx *ctx, const cJSON *v, const char *path);
int hd_config__sockudo_pub_options(hd_cfg_ctx *ctx, const cJSON *v, const char *path);

/* config_redis.c: the Redis adapter's address */
/* Parse redis://[[user]:password@]host[:port][/db] into *out (all fields
 * set; what the URL leaves out is the default). name is what an error
 * calls the key; the message never shows the URL (it may hold a password). */
int hd_config__redis_url(hd_cfg_ctx *ctx, const char *url, const char *name, hd_cfg_redis_addr *out);
/* The file's adapter.redis.url (a special member, see config.c). */
int hd_config__redis_url_key(hd_cfg_ctx *ctx, const cJSON *v, const char *path);
/* After the file and the HERALD_* env: pick each address field from the
 * strongest source (HERALD_ADAPTER_REDIS_URL and REDIS_URL are read from
 * env here; env may be NULL) and check the result. */
int hd_config__redis_finish(hd_cfg_ctx *ctx, char *const *env);
void hd_config__redis_addr_free(hd_cfg_redis_addr *a);

/* config_env.c */
int hd_config__apply_env(hd_cfg_ctx *ctx, char *const *env);
/* The value of name in an environ-style array, or NULL (env may be NULL). */
const char *hd_config__env_get(char *const *env, const char *name);

#endif /* HD_CONFIG_INTERNAL_H */
