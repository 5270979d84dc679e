/* config_table.c - the tables: one row per scalar key, and the sockudo keys
 * herald accepts but ignores.
 *
 * DESIGN
 * ------
 * Adding a setting is adding a row here (and a line in
 * docs/CONFIGURATION.md); the loader, the env overrides, the defaults, the
 * error messages and hd_config_free all work from these rows. A row's env
 * name is HERALD_ + its path upper-cased with '.' -> '_' (the unit tests
 * check that), or HERALD_DEFAULT_APP_ + the key for app rows (apps[0]).
 *
 * THREADING
 * ---------
 * Constant data; any thread may read it.
 */
#include "config_internal.h"

#include <stdint.h>

#define CFG(field) offsetof(hd_config, field)
#define APP(field) offsetof(hd_app_config, field)

/* Row builders: path, env, field, bounds, default. */
#define BOOL_ROW(p, e, f, d) \
    {.path = p, .env = e, .type = HD_CFG_BOOL, .offset = CFG(f), .max = 1, .def = d}
#define U16_ROW(p, e, f, lo, hi, d) \
    {.path = p, .env = e, .type = HD_CFG_U16, .offset = CFG(f), .min = lo, .max = hi, .def = d}
#define U32_ROW(p, e, f, lo, hi, d) \
    {.path = p, .env = e, .type = HD_CFG_U32, .offset = CFG(f), .min = lo, .max = hi, .def = d}
#define STR_ROW(p, e, f, lo, hi, d) \
    {.path = p, .env = e, .type = HD_CFG_STR, .offset = CFG(f), .min = lo, .max = hi, .def_str = d}
#define SECRET_ROW(p, e, f, lo, hi) \
    {.path = p, .env = e, .type = HD_CFG_STR, .offset = CFG(f), .min = lo, .max = hi, .def_str = "", .secret = true}
#define ENUM_ROW(p, e, off, ch, d) \
    {.path = p, .env = e, .type = HD_CFG_ENUM, .offset = off, .choices = ch, .def_str = d}

const char *const hd_config__log_levels[] = {"error", "warn", "notice", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const adapter_drivers[] = {"local", "redis", NULL};
static const char *const app_manager_drivers[] = {"memory", "array", NULL};
static const char *const metrics_drivers[] = {"prometheus", NULL};

/* Pusher's webhook events (PUSHER_PROTOCOL.md §10). */
const char *const hd_config__webhook_events[] = {"channel_occupied", "channel_vacated", "member_added",
                                                 "member_removed",   "client_event",    "cache_miss",
                                                 "subscription_count", NULL};

static const char fallback_to_sync_why[] =
    "herald never drops a cleanup job: when every worker queue is full the socket's cleanup runs "
    "synchronously instead (remove the key or set it to true)";

const hd_cfg_row hd_config__rows[] = {
    STR_ROW("host", "HERALD_HOST", host, 1, 255, "0.0.0.0"),
    U16_ROW("port", "HERALD_PORT", port, 1, 65535, 6001),
    BOOL_ROW("reuse_port", "HERALD_REUSE_PORT", reuse_port, 0),
    BOOL_ROW("debug", "HERALD_DEBUG", debug, 0),
    /* info by default: refusals (why a client was turned away) are logged
     * at info, rate-limited per reason (src/common/log.h) */
    ENUM_ROW("log_level", "HERALD_LOG_LEVEL", CFG(log_level), hd_config__log_levels, "info"),
    ENUM_ROW("log_format", "HERALD_LOG_FORMAT", CFG(log_format), log_formats, "text"),
    U32_ROW("activity_timeout", "HERALD_ACTIVITY_TIMEOUT", activity_timeout, 1, 3600, 120),
    U32_ROW("pong_timeout", "HERALD_PONG_TIMEOUT", pong_timeout, 1, 3600, 30),
    U32_ROW("shutdown_grace_period", "HERALD_SHUTDOWN_GRACE_PERIOD", shutdown_grace_period, 0, 3600, 10),
    U32_ROW("io_threads", "HERALD_IO_THREADS", io_threads, 0, 64, 0),
    U32_ROW("max_message_size_kb", "HERALD_MAX_MESSAGE_SIZE_KB", max_message_size_kb, 1, 10240, 100),
    {.path = "websocket_max_payload_kb", .type = HD_CFG_U32, .offset = CFG(max_message_size_kb), .min = 1,
     .max = 10240, .def = 100, .alias_of = "max_message_size_kb"},
    U32_ROW("max_outbound_buffer_kb", "HERALD_MAX_OUTBOUND_BUFFER_KB", max_outbound_buffer_kb, 16, 1048576, 1024),
    U32_ROW("max_http_body_kb", "HERALD_MAX_HTTP_BODY_KB", max_http_body_kb, 1, 1048576, 1024),
    U32_ROW("max_subscriptions_per_connection", "HERALD_MAX_SUBSCRIPTIONS_PER_CONNECTION",
            max_subscriptions_per_connection, 1, 65535, 1000),
    U32_ROW("user_authentication_timeout", "HERALD_USER_AUTHENTICATION_TIMEOUT", user_authentication_timeout, 1,
            86400, 30),

    /* limits: deadlines and abuse limits (herald keys, docs/CONFIGURATION.md) */
    U32_ROW("limits.max_connections", "HERALD_LIMITS_MAX_CONNECTIONS", limits.max_connections, 0, UINT32_MAX, 0),
    U32_ROW("limits.new_connections_per_second", "HERALD_LIMITS_NEW_CONNECTIONS_PER_SECOND",
            limits.new_connections_per_second, 0, 10000000, 0),
    U32_ROW("limits.new_connections_per_ip_per_second", "HERALD_LIMITS_NEW_CONNECTIONS_PER_IP_PER_SECOND",
            limits.new_connections_per_ip_per_second, 0, 10000000, 0),
    U32_ROW("limits.http_head_timeout_ms", "HERALD_LIMITS_HTTP_HEAD_TIMEOUT_MS", limits.http_head_timeout_ms, 100,
            600000, 10000),
    U32_ROW("limits.http_body_timeout_ms", "HERALD_LIMITS_HTTP_BODY_TIMEOUT_MS", limits.http_body_timeout_ms, 100,
            3600000, 30000),
    U32_ROW("limits.http_keepalive_timeout_ms", "HERALD_LIMITS_HTTP_KEEPALIVE_TIMEOUT_MS",
            limits.http_keepalive_timeout_ms, 100, 3600000, 30000),
    U32_ROW("limits.http_buffers_mb", "HERALD_LIMITS_HTTP_BUFFERS_MB", limits.http_buffers_mb, 1, 65536, 64),
    U32_ROW("limits.close_timeout_ms", "HERALD_LIMITS_CLOSE_TIMEOUT_MS", limits.close_timeout_ms, 100, 600000, 3000),

    ENUM_ROW("app_manager.driver", "HERALD_APP_MANAGER_DRIVER", HD_CFG_NOFIELD, app_manager_drivers, "memory"),

    U32_ROW("event_limits.max_channels_at_once", "HERALD_EVENT_LIMITS_MAX_CHANNELS_AT_ONCE",
            event_limits.max_channels_at_once, 1, 10000, 100),
    U32_ROW("event_limits.max_name_length", "HERALD_EVENT_LIMITS_MAX_NAME_LENGTH", event_limits.max_name_length, 1,
            10000, 200),
    U32_ROW("event_limits.max_payload_in_kb", "HERALD_EVENT_LIMITS_MAX_PAYLOAD_IN_KB", event_limits.max_payload_in_kb,
            1, 10240, 10),
    U32_ROW("event_limits.max_batch_size", "HERALD_EVENT_LIMITS_MAX_BATCH_SIZE", event_limits.max_batch_size, 1, 1000,
            10),
    U32_ROW("channel_limits.max_name_length", "HERALD_CHANNEL_LIMITS_MAX_NAME_LENGTH", channel_limits.max_name_length,
            1, 10000, 200),
    U32_ROW("channel_limits.cache_ttl", "HERALD_CHANNEL_LIMITS_CACHE_TTL", channel_limits.cache_ttl, 1, 604800, 1800),
    U32_ROW("presence.max_members_per_channel", "HERALD_PRESENCE_MAX_MEMBERS_PER_CHANNEL",
            presence.max_members_per_channel, 1, 1000000, 100),
    U32_ROW("presence.max_member_size_in_kb", "HERALD_PRESENCE_MAX_MEMBER_SIZE_IN_KB", presence.max_member_size_in_kb,
            1, 1024, 2),

    BOOL_ROW("metrics.enabled", "HERALD_METRICS_ENABLED", metrics.enabled, 1),
    ENUM_ROW("metrics.driver", "HERALD_METRICS_DRIVER", HD_CFG_NOFIELD, metrics_drivers, "prometheus"),
    STR_ROW("metrics.host", "HERALD_METRICS_HOST", metrics.host, 1, 255, "127.0.0.1"),
    U16_ROW("metrics.port", "HERALD_METRICS_PORT", metrics.port, 1, 65535, 9601),

    /* TLS on the main port (sockudo's names) */
    BOOL_ROW("ssl.enabled", "HERALD_SSL_ENABLED", ssl.enabled, 0),
    STR_ROW("ssl.cert_path", "HERALD_SSL_CERT_PATH", ssl.cert_path, 0, 4096, ""),
    STR_ROW("ssl.key_path", "HERALD_SSL_KEY_PATH", ssl.key_path, 0, 4096, ""),
    SECRET_ROW("ssl.passphrase", "HERALD_SSL_PASSPHRASE", ssl.passphrase, 0, 4096),

    BOOL_ROW("cleanup.async_enabled", "HERALD_CLEANUP_ASYNC_ENABLED", cleanup.async_enabled, 1),
    {.path = "cleanup.fallback_to_sync", .env = "HERALD_CLEANUP_FALLBACK_TO_SYNC", .type = HD_CFG_BOOL,
     .offset = CFG(cleanup.fallback_to_sync), .min = 1, .max = 1, .def = 1, .why = fallback_to_sync_why},
    U32_ROW("cleanup.queue_buffer_size", "HERALD_CLEANUP_QUEUE_BUFFER_SIZE", cleanup.queue_buffer_size, 1, 1048576,
            4096),
    U32_ROW("cleanup.batch_size", "HERALD_CLEANUP_BATCH_SIZE", cleanup.batch_size, 1, 10000, 64),
    U32_ROW("cleanup.batch_timeout_ms", "HERALD_CLEANUP_BATCH_TIMEOUT_MS", cleanup.batch_timeout_ms, 1, 10000, 10),
    {.path = "cleanup.worker_threads", .env = "HERALD_CLEANUP_WORKER_THREADS", .type = HD_CFG_WORKERS,
     .offset = CFG(cleanup.worker_threads), .min = 1, .max = 64, .def = 0},
    U32_ROW("cleanup.max_retry_attempts", "HERALD_CLEANUP_MAX_RETRY_ATTEMPTS", cleanup.max_retry_attempts, 0, 10, 2),
    U32_ROW("cleanup.stuck_worker_ms", "HERALD_CLEANUP_STUCK_WORKER_MS", cleanup.stuck_worker_ms, 100, 600000, 5000),

    /* The Redis adapter. The address (host, port, username, password, db)
     * may also come from a URL or from sockudo's keys: config_redis.c
     * decides, field by field, which source wins. */
    ENUM_ROW("adapter.driver", "HERALD_ADAPTER_DRIVER", CFG(adapter.driver), adapter_drivers, "local"),
    STR_ROW("adapter.redis.host", "HERALD_ADAPTER_REDIS_HOST", adapter.redis.host, 1, 255, "127.0.0.1"),
    U16_ROW("adapter.redis.port", "HERALD_ADAPTER_REDIS_PORT", adapter.redis.port, 1, 65535, 6379),
    STR_ROW("adapter.redis.username", "HERALD_ADAPTER_REDIS_USERNAME", adapter.redis.username, 0, 255, ""),
    SECRET_ROW("adapter.redis.password", "HERALD_ADAPTER_REDIS_PASSWORD", adapter.redis.password, 0, 1024),
    /* Redis' own limit is its "databases" setting (16 by default), which
     * only the server knows: SELECT refuses a number past it */
    U32_ROW("adapter.redis.db", "HERALD_ADAPTER_REDIS_DB", adapter.redis.db, 0, 1000000, 0),
    STR_ROW("adapter.redis.prefix", "HERALD_ADAPTER_REDIS_PREFIX", adapter.redis.prefix, 1, 255, "herald"),
    U32_ROW("adapter.redis.node_timeout_ms", "HERALD_ADAPTER_REDIS_NODE_TIMEOUT_MS", adapter.redis.node_timeout_ms,
            3000, 60000, 10000),
    U32_ROW("adapter.redis.op_timeout_ms", "HERALD_ADAPTER_REDIS_OP_TIMEOUT_MS", adapter.redis.op_timeout_ms, 100,
            60000, 2000),
    U32_ROW("adapter.redis.connect_timeout_ms", "HERALD_ADAPTER_REDIS_CONNECT_TIMEOUT_MS",
            adapter.redis.connect_timeout_ms, 100, 60000, 2000),
    U32_ROW("adapter.redis.reconnect_max_ms", "HERALD_ADAPTER_REDIS_RECONNECT_MAX_MS", adapter.redis.reconnect_max_ms,
            100, 600000, 5000),
    U32_ROW("adapter.redis.queue_limit_mb", "HERALD_ADAPTER_REDIS_QUEUE_LIMIT_MB", adapter.redis.queue_limit_mb, 1,
            4096, 32),
    U32_ROW("adapter.redis.unsubscribe_linger_ms", "HERALD_ADAPTER_REDIS_UNSUBSCRIBE_LINGER_MS",
            adapter.redis.unsubscribe_linger_ms, 0, 600000, 2000),
    U32_ROW("adapter.redis.reap_batch", "HERALD_ADAPTER_REDIS_REAP_BATCH", adapter.redis.reap_batch, 1, 10000, 256),

    BOOL_ROW("webhooks.batching.enabled", "HERALD_WEBHOOKS_BATCHING_ENABLED", webhooks.batching_enabled, 1),
    U32_ROW("webhooks.batching.duration", "HERALD_WEBHOOKS_BATCHING_DURATION", webhooks.batching_duration_ms, 1, 60000,
            50),
    U32_ROW("webhooks.vacate_delay_ms", "HERALD_WEBHOOKS_VACATE_DELAY_MS", webhooks.vacate_delay_ms, 0, 600000, 3000),
    U32_ROW("webhooks.retry_max_seconds", "HERALD_WEBHOOKS_RETRY_MAX_SECONDS", webhooks.retry_max_seconds, 0, 86400,
            300),
    U32_ROW("webhooks.max_batch_size", "HERALD_WEBHOOKS_MAX_BATCH_SIZE", webhooks.max_batch_size, 1, 10000, 100),
    U32_ROW("webhooks.queue_size", "HERALD_WEBHOOKS_QUEUE_SIZE", webhooks.queue_size, 1, 10000000, 10000),
    U32_ROW("webhooks.timeout_ms", "HERALD_WEBHOOKS_TIMEOUT_MS", webhooks.timeout_ms, 100, 600000, 10000),
    U32_ROW("webhooks.sender_threads", "HERALD_WEBHOOKS_SENDER_THREADS", webhooks.sender_threads, 1, 16, 1),
    U32_ROW("webhooks.retry_initial_ms", "HERALD_WEBHOOKS_RETRY_INITIAL_MS", webhooks.retry_initial_ms, 1, 600000,
            1000),
    U32_ROW("webhooks.retry_max_interval_ms", "HERALD_WEBHOOKS_RETRY_MAX_INTERVAL_MS", webhooks.retry_max_interval_ms,
            1, 3600000, 60000),
    U32_ROW("webhooks.breaker.failure_threshold", "HERALD_WEBHOOKS_BREAKER_FAILURE_THRESHOLD",
            webhooks.breaker_failure_threshold, 1, 1000, 5),
    U32_ROW("webhooks.breaker.cooldown_ms", "HERALD_WEBHOOKS_BREAKER_COOLDOWN_MS", webhooks.breaker_cooldown_ms, 10,
            3600000, 10000),
    {0},
};

/* App rows. Limits with a fallback take the global value when left out. */
#define APP_BOOL(k, e, f, d, g)                                                                    \
    {.path = k, .env = e, .type = HD_CFG_BOOL, .offset = APP(f), .max = 1, .def = d, .fallback = HD_CFG_NOFIELD, \
     .group = g}
#define APP_STR(k, e, f)                                                                                   \
    {.path = k, .env = e, .type = HD_CFG_STR, .offset = APP(f), .min = 1, .max = 255,                      \
     .fallback = HD_CFG_NOFIELD, .group = HD_CFG_G_APP}
#define APP_U32(k, e, f, lo, hi, d)                                                                        \
    {.path = k, .env = e, .type = HD_CFG_U32, .offset = APP(f), .min = lo, .max = hi, .def = d,            \
     .fallback = HD_CFG_NOFIELD, .group = HD_CFG_G_LIMITS}
#define APP_LIM(k, e, f, lo, hi, glob)                                                                     \
    {.path = k, .env = e, .type = HD_CFG_U32, .offset = APP(f), .min = lo, .max = hi, .fallback = CFG(glob), \
     .group = HD_CFG_G_LIMITS}

const hd_cfg_row hd_config__app_rows[] = {
    APP_STR("id", "HERALD_DEFAULT_APP_ID", id),
    APP_STR("key", "HERALD_DEFAULT_APP_KEY", key),
    APP_STR("secret", "HERALD_DEFAULT_APP_SECRET", secret),
    APP_BOOL("enabled", "HERALD_DEFAULT_APP_ENABLED", enabled, 1, HD_CFG_G_APP),
    APP_U32("max_connections", "HERALD_DEFAULT_APP_MAX_CONNECTIONS", max_connections, 0, UINT32_MAX, 0),
    APP_BOOL("enable_client_messages", "HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES", enable_client_messages, 0,
             HD_CFG_G_FEATURES),
    APP_U32("max_client_events_per_second", "HERALD_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND",
            max_client_events_per_second, 0, UINT32_MAX, 0),
    APP_U32("max_http_requests_per_second", "HERALD_DEFAULT_APP_MAX_HTTP_REQUESTS_PER_SECOND",
            max_http_requests_per_second, 0, 1000000, 0),
    APP_BOOL("enable_user_authentication", "HERALD_DEFAULT_APP_ENABLE_USER_AUTHENTICATION", enable_user_authentication,
             0, HD_CFG_G_FEATURES),
    APP_LIM("user_authentication_timeout", "HERALD_DEFAULT_APP_USER_AUTHENTICATION_TIMEOUT",
            user_authentication_timeout, 1, 86400, user_authentication_timeout),
    APP_BOOL("enable_subscription_count", "HERALD_DEFAULT_APP_ENABLE_SUBSCRIPTION_COUNT", enable_subscription_count, 0,
             HD_CFG_G_FEATURES),
    APP_LIM("max_presence_members_per_channel", "HERALD_DEFAULT_APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL",
            max_presence_members_per_channel, 1, 1000000, presence.max_members_per_channel),
    APP_LIM("max_presence_member_size_in_kb", "HERALD_DEFAULT_APP_MAX_PRESENCE_MEMBER_SIZE_IN_KB",
            max_presence_member_size_in_kb, 1, 1024, presence.max_member_size_in_kb),
    APP_LIM("max_channel_name_length", "HERALD_DEFAULT_APP_MAX_CHANNEL_NAME_LENGTH", max_channel_name_length, 1, 10000,
            channel_limits.max_name_length),
    APP_LIM("max_event_channels_at_once", "HERALD_DEFAULT_APP_MAX_EVENT_CHANNELS_AT_ONCE", max_event_channels_at_once,
            1, 10000, event_limits.max_channels_at_once),
    APP_LIM("max_event_name_length", "HERALD_DEFAULT_APP_MAX_EVENT_NAME_LENGTH", max_event_name_length, 1, 10000,
            event_limits.max_name_length),
    APP_LIM("max_event_payload_in_kb", "HERALD_DEFAULT_APP_MAX_EVENT_PAYLOAD_IN_KB", max_event_payload_in_kb, 1,
            10240, event_limits.max_payload_in_kb),
    APP_LIM("max_event_batch_size", "HERALD_DEFAULT_APP_MAX_EVENT_BATCH_SIZE", max_event_batch_size, 1, 1000,
            event_limits.max_batch_size),
    {0},
};

/* sockudo keys herald accepts with one warning each (full paths). A whole
 * section listed here is skipped without looking inside. database and
 * adapter.redis.redis_pub_options are handled in config_sockudo.c,
 * adapter.redis.url in config_redis.c. */
const char *const hd_config__ignored[] = {
    "ably_compat", "ai_transport", "annotations", "cache", "cluster_health",
    "connection_recovery", "cors.credentials", "cors.methods", "cors.allowed_headers", "database_pooling", "delta_compression", "echo_control",
    "ephemeral", "event_name_filtering", "health_check_timeout_ms", "history", "http_api",
    "idempotency", "instance", "logging", "max_connections", "mode", "path_prefix",
    "presence_history", "push", "push_rules", "queue", "rate_limiter", "server_role", "ssl.ca_path", "ssl.redirect_http", "ssl.http_port",
    "tag_filtering", "unix_socket", "versioned_messages", "websocket",
    "adapter.aggregate_counts", "adapter.buffer_multiplier_per_cpu", "adapter.cluster",
    "adapter.cluster_health", "adapter.enable_socket_counting", "adapter.fallback_to_local",
    "adapter.fast_presence_transitions", "adapter.google_pubsub", "adapter.iggy", "adapter.kafka",
    "adapter.nats", "adapter.pulsar", "adapter.rabbitmq", "adapter.redis.cluster_mode",
    "adapter.redis.redis_sub_options", "adapter.redis.requests_timeout",
    "app_manager.cache", "app_manager.scylladb",
    "metrics.prometheus", "metrics.tcp_exporter",
    "presence.ungraceful_timeout_seconds", "presence.update_rate_limit_per_member_per_second",
    "presence.v2_ungraceful_timeout_seconds",
    "webhooks.batching.size", "webhooks.request_timeout_ms", "webhooks.retry",
    NULL,
};

/* sockudo app keys herald ignores, with where sockudo's nested form puts them. */
const hd_cfg_ignored hd_config__app_ignored[] = {
    {"max_backend_events_per_second", HD_CFG_G_LIMITS}, {"max_read_requests_per_second", HD_CFG_G_LIMITS},
    {"decay_seconds", HD_CFG_G_LIMITS},                 {"terminate_on_limit", HD_CFG_G_LIMITS},
    {"message_rate_limit", HD_CFG_G_LIMITS},            {"enable_watchlist_events", HD_CFG_G_FEATURES},
    {"annotations_enabled", HD_CFG_G_CHANNELS},         {"channel_delta_compression", HD_CFG_G_CHANNELS},
    {"channel_namespaces", HD_CFG_G_CHANNELS},          {"idempotency", HD_CFG_G_POLICY},
    {"connection_recovery", HD_CFG_G_POLICY},           {"history", HD_CFG_G_POLICY},
    {"presence_history", HD_CFG_G_POLICY},              {NULL, HD_CFG_G_APP},
};
