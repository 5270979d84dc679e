/* config.h - herald's configuration: defaults, JSON file, HERALD_* env overrides.
 *
 * DESIGN
 * ------
 * Key names and nesting follow sockudo's config.json wherever the feature
 * matches, so a sockudo user's file loads. Loading is table-driven: each
 * scalar key is one row {path, type, offset, min, max, default}. The env
 * variable of a scalar is HERALD_ + its path upper-cased with '.' -> '_'
 * (cleanup.queue_buffer_size -> HERALD_CLEANUP_QUEUE_BUFFER_SIZE), plus
 * HERALD_DEFAULT_APP_<KEY> for every scalar app key of apps[0] (ID, KEY,
 * SECRET, ENABLED, ENABLE_CLIENT_MESSAGES, MAX_CONNECTIONS, ...).
 * Sections sockudo has and herald does not implement (cors, ssl, queue, ...)
 * load with one "ignored: <key>" warning each. Any other unknown key, wrong
 * type or out-of-range value makes hd_config_load fail with a message
 * naming the key and the allowed values. docs/CONFIGURATION.md lists every
 * key; src/config/config_table.c is where they are defined.
 *
 * Per-app limits left out of an app fall back to the global sections
 * (event_limits, channel_limits, presence); after a successful load every
 * hd_app_config field holds its effective value.
 *
 * THREADING
 * ---------
 * Loaded on the main thread (at start-up, and again by each SIGHUP reload
 * into a new hd_config); once handed to the server a configuration is
 * read-only, so any thread may read it without locks.
 */
#ifndef HD_CONFIG_H
#define HD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hd_webhook_header {
    char *name;
    char *value;
} hd_webhook_header;

typedef struct hd_webhook_config {
    char *url;
    char **event_types; /* channel_occupied, channel_vacated, member_added, ... */
    size_t n_event_types;
    char *filter_channel_prefix; /* NULL = any */
    char *filter_channel_suffix; /* NULL = any */
    hd_webhook_header *headers;
    size_t n_headers;
} hd_webhook_config;

typedef struct hd_app_config {
    char *id;
    char *key;
    char *secret;
    bool enabled;
    uint32_t max_connections; /* 0 = unlimited */
    bool enable_client_messages;
    uint32_t max_client_events_per_second; /* 0 = unlimited */
    uint32_t max_http_requests_per_second; /* authenticated HTTP API requests, 0 = unlimited (herald key) */
    bool enable_user_authentication; /* close 4009 if not signed in within user_authentication_timeout */
    uint32_t user_authentication_timeout; /* seconds (herald key) */
    bool enable_subscription_count; /* send pusher_internal:subscription_count (herald key) */
    uint32_t max_presence_members_per_channel;
    uint32_t max_presence_member_size_in_kb;
    uint32_t max_channel_name_length;
    uint32_t max_event_channels_at_once;
    uint32_t max_event_name_length;
    uint32_t max_event_payload_in_kb;
    uint32_t max_event_batch_size;
    char **allowed_origins; /* empty or containing "*" = any origin */
    size_t n_allowed_origins;
    hd_webhook_config *webhooks;
    size_t n_webhooks;
} hd_app_config;

typedef struct hd_config {
    char *host;                     /* "0.0.0.0" */
    uint16_t port;                  /* 6001 */
    /* false: start-up fails when another process listens on port; true: join
     * it (SO_REUSEPORT) for a deliberate handover (herald key) */
    bool reuse_port;
    uint32_t activity_timeout;      /* seconds, 120 */
    uint32_t pong_timeout;          /* seconds after the server ping before close 4201, 30 (herald key) */
    uint32_t max_message_size_kb;   /* largest inbound WebSocket message; bigger closes 1009, 100 (herald key) */
    uint32_t shutdown_grace_period; /* seconds, 10 */
    uint32_t io_threads;            /* 0 = CPU count (herald key) */
    uint32_t max_outbound_buffer_kb;/* per socket; slow consumers closed past it (herald key) */
    uint32_t max_http_body_kb;      /* HTTP API request bodies (herald key) */
    uint32_t max_subscriptions_per_connection; /* channels one socket may join, 1000 (herald key) */
    char *log_level;                /* "error" | "warn" | "notice" | "info" | "debug" (herald key) */
    char *log_format;               /* "text" | "json": one JSON object per line (herald key) */
    bool debug;                     /* sockudo key: true = log_level debug */
    /* seconds, 30: the apps' user_authentication_timeout when an app leaves
     * it out (sockudo's top-level key; added to the contract by config) */
    uint32_t user_authentication_timeout;

    /* Deadlines for what a client controls, and abuse limits (herald keys). */
    struct {
        uint32_t max_connections;                    /* WebSocket connections on this node, 0 = no limit */
        uint32_t new_connections_per_second;         /* WebSocket handshakes, node-wide token bucket, 0 = off */
        uint32_t new_connections_per_ip_per_second;  /* the same per source address, 0 = off */
        uint32_t http_head_timeout_ms;      /* a request head, first byte to blank line, 10000 */
        uint32_t http_body_timeout_ms;      /* a request body, from the end of its head, 30000 */
        uint32_t http_keepalive_timeout_ms; /* an idle keep-alive connection, 30000 */
        uint32_t http_buffers_mb;           /* request heads and bodies held at once, node-wide, 64 */
        uint32_t close_timeout_ms;          /* a WebSocket closed by herald is torn down within this, 3000 */
    } limits;

    hd_app_config *apps;
    size_t n_apps;

    struct {
        uint32_t max_channels_at_once; /* 100 */
        uint32_t max_name_length;      /* 200 */
        uint32_t max_payload_in_kb;    /* 10 */
        uint32_t max_batch_size;       /* 10 */
    } event_limits;
    struct {
        uint32_t max_name_length; /* 200 */
        uint32_t cache_ttl;       /* seconds, 1800 */
    } channel_limits;
    struct {
        uint32_t max_members_per_channel; /* 100 */
        uint32_t max_member_size_in_kb;   /* 2 */
    } presence;

    struct {
        bool enabled;   /* true */
        char *host;     /* "127.0.0.1" */
        uint16_t port;  /* 9601 */
    } metrics;

    /* CORS for the HTTP API: origins allowed to call it from a browser
     * (cors.origins, or sockudo's cors.origin); empty = no CORS headers,
     * "*" = any origin. */
    char **cors_origins;
    size_t n_cors_origins;

    struct {
        bool enabled;     /* false: TLS (wss://, https://) on the main port */
        char *cert_path;  /* PEM certificate chain */
        char *key_path;   /* PEM private key */
        char *passphrase; /* of the key, "" = none */
    } ssl;

    struct {
        bool async_enabled;         /* true */
        bool fallback_to_sync;      /* true; false is refused: herald never drops a job */
        uint32_t queue_buffer_size; /* per worker */
        uint32_t batch_size;
        uint32_t batch_timeout_ms;
        uint32_t worker_threads;    /* 0 = "auto" */
        uint32_t max_retry_attempts;
        uint32_t stuck_worker_ms;   /* herald key */
    } cleanup;

    struct {
        char *driver; /* "local" | "redis" */
        struct {
            char *host;   /* "127.0.0.1" */
            uint16_t port;/* 6379 */
            char *password; /* "" = none (AUTH <password>; a URL may also give a user: AUTH <user> <password>) */
            char *username; /* "" = none */
            uint32_t db;  /* SELECT, 0 */
            char *prefix; /* "herald": every key and pub/sub channel starts with it */
            uint32_t node_timeout_ms;       /* 10000: a node silent this long is reaped */
            uint32_t op_timeout_ms;         /* 2000: a cluster answer later than this counts as unavailable */
            uint32_t connect_timeout_ms;    /* 2000 */
            uint32_t reconnect_max_ms;      /* 5000: cap of the jittered reconnect back-off */
            uint32_t queue_limit_mb;        /* 32: commands waiting for Redis; beyond, dropped and counted */
            uint32_t unsubscribe_linger_ms; /* 2000: keep a channel's pub/sub subscription after its last local subscriber */
            uint32_t reap_batch;            /* 256: channels of a dead node removed per script call */
        } redis;
    } adapter;

    struct {
        bool batching_enabled; /* webhooks.batching.enabled, true */
        uint32_t batching_duration_ms; /* webhooks.batching.duration, 50 */
        uint32_t vacate_delay_ms;      /* 3000 (herald key) */
        uint32_t retry_max_seconds;    /* 300 (herald key) */
        /* herald keys, see docs/CONFIGURATION.md */
        uint32_t max_batch_size;        /* events per request, 100 */
        uint32_t queue_size;            /* events held per endpoint (pending + retrying), 10000 */
        uint32_t timeout_ms;            /* one request, connect included, 10000 */
        uint32_t sender_threads;        /* libcurl multi loops, 1 */
        uint32_t retry_initial_ms;      /* first backoff step, 1000 */
        uint32_t retry_max_interval_ms; /* backoff cap, 60000 */
        uint32_t breaker_failure_threshold; /* consecutive failures that open the breaker, 5 */
        uint32_t breaker_cooldown_ms;   /* open -> half-open after, 10000 */
    } webhooks;
} hd_config;

/* Fill cfg with every default and one app "app-id"/"app-key"/"app-secret"
 * (enabled, client messages on). Free with hd_config_free. A loaded file's
 * apps replace this app: a file with no app is an error. */
void hd_config_defaults(hd_config *cfg);

/* Load from a JSON text (len bytes), then apply HERALD_* env overrides
 * (env may be NULL to skip), then validate. Returns 0, or HD_EINVAL with a
 * message naming the key and the allowed values in err. On failure cfg is
 * left freed (hd_config_free not needed). */
int hd_config_load_json(hd_config *cfg, const char *json, size_t len, char *const *env, char *err, size_t errlen);

/* Read path and hd_config_load_json it. Returns 0, HD_EINVAL as above, or
 * HD_EIO when the file cannot be read (err says why); on failure cfg is
 * zeroed. */
int hd_config_load_file(hd_config *cfg, const char *path, char *const *env, char *err, size_t errlen);

/* The JSON of config/config.json compiled into the binary. */
extern const char hd_config_embedded_json[];

/* Free every string and array cfg owns and zero it. NULL-safe; safe on a
 * zeroed or already-freed cfg. */
void hd_config_free(hd_config *cfg);

/* cfg->log_level as an HD_LOG_* level (HD_LOG_DEBUG when cfg->debug). */
int hd_config_log_level(const hd_config *cfg);

const hd_app_config *hd_config_app_by_key(const hd_config *cfg, const char *key);
const hd_app_config *hd_config_app_by_id(const hd_config *cfg, const char *id);

/* Call fn for every global scalar key (config_table.c rows, aliases once)
 * whose value differs between a and b; returns how many. The app list is
 * not compared. app_default: the key is the default of an app key
 * (event_limits.*, ...), already folded into the apps that leave that key
 * out. fn may be NULL (count only). */
typedef void (*hd_config_diff_fn)(const char *path, bool app_default, void *arg);
size_t hd_config_diff(const hd_config *a, const hd_config *b, hd_config_diff_fn fn, void *arg);
/* True when two apps' settings are identical: every app key, the allowed
 * origins and the webhooks (in order). */
bool hd_config_app_equal(const hd_app_config *a, const hd_app_config *b);

#endif /* HD_CONFIG_H */
