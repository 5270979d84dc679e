/* config_test.c - CUnit suite "config": defaults, the embedded config, a
 * sockudo-style file, every kind of error (asserting on the message), env
 * overrides, per-app fallback, numeric strings, webhooks, worker_threads
 * and several apps. Runs under ASan: every test frees what it loads, and
 * the error cases check that a failed load leaves nothing behind.
 *
 * JSON in this file is written with single quotes for readability; dq()
 * turns them into double quotes before loading.
 *
 * THREADING: single-threaded. Warning lines are captured by redirecting
 * fd 2 to a temporary file around a load.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include "common/common.h"

#include <CUnit/CUnit.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[512];

#define APP1 "'app_manager':{'array':{'apps':[{'id':'a1','key':'k1','secret':'s1'}]}}"

static char *dq(const char *s)
{
    char *d = hd_strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static int load(hd_config *cfg, const char *json_sq, char *const *env)
{
    char *j = dq(json_sq);
    int rc = hd_config_load_json(cfg, j, strlen(j), env, err, sizeof err);
    hd_free(j);
    return rc;
}

/* ---- capture of warning lines (hd_log writes to fd 2) ---- */

static FILE *cap_file;
static int cap_saved = -1;

static void capture_begin(void)
{
    fflush(stderr);
    cap_file = tmpfile();
    cap_saved = dup(2);
    dup2(fileno(cap_file), 2);
    hd_log_set_level(HD_LOG_WARN);
}

static char *capture_end(void)
{
    hd_log_set_level(HD_LOG_ERR);
    fflush(stderr);
    dup2(cap_saved, 2);
    close(cap_saved);
    long n = ftell(cap_file);
    char *text = hd_calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    rewind(cap_file);
    if (n > 0 && fread(text, 1, (size_t)n, cap_file) != (size_t)n)
        text[0] = '\0';
    fclose(cap_file);
    return text;
}

/* Load must fail with HD_EINVAL, a message containing needle, and a
 * zeroed cfg. Prints what went wrong for the CUnit report. */
static int fails_with(const char *json_sq, char *const *env, const char *needle)
{
    hd_config cfg;
    memset(&cfg, 0xab, sizeof cfg);
    int rc = load(&cfg, json_sq, env);
    bool zeroed = !cfg.apps && !cfg.n_apps && !cfg.host && !cfg.log_level && !cfg.adapter.driver;
    if (rc == HD_EINVAL && strstr(err, needle) && zeroed && strncmp(err, "config: ", 8) == 0)
        return 1;
    fprintf(stderr, "\n  expected failure with \"%s\"\n  got rc=%d err=\"%s\" zeroed=%d\n", needle, rc, err, zeroed);
    if (rc == 0)
        hd_config_free(&cfg);
    return 0;
}

#define EXPECT_FAIL(json, env, needle) CU_ASSERT(fails_with(json, env, needle))
#define EXPECT_ERR_IS(json, env, text)                                                                           \
    do {                                                                                                         \
        CU_ASSERT(fails_with(json, env, text));                                                                  \
        CU_ASSERT_STRING_EQUAL(err, text);                                                                       \
    } while (0)

/* ---- defaults and the embedded file ---- */

static void check_default_globals(const hd_config *cfg)
{
    hd_config c = *cfg;
    CU_ASSERT_STRING_EQUAL(c.host, "0.0.0.0");
    CU_ASSERT_EQUAL(c.port, 6001);
    CU_ASSERT_EQUAL(c.activity_timeout, 120);
    CU_ASSERT_EQUAL(c.pong_timeout, 30);
    CU_ASSERT_EQUAL(c.max_message_size_kb, 100);
    CU_ASSERT_EQUAL(c.shutdown_grace_period, 10);
    CU_ASSERT_EQUAL(c.io_threads, 0);
    CU_ASSERT_EQUAL(c.max_outbound_buffer_kb, 1024);
    CU_ASSERT_EQUAL(c.max_http_body_kb, 1024);
    CU_ASSERT_STRING_EQUAL(c.log_level, "info"); /* refusals are logged by default (CONFIGURATION.md) */
    CU_ASSERT_EQUAL(hd_config_log_level(&c), HD_LOG_INFO);
    CU_ASSERT_STRING_EQUAL(c.log_format, "text");
    CU_ASSERT_FALSE(c.debug);
    CU_ASSERT_EQUAL(c.user_authentication_timeout, 30);
    CU_ASSERT_EQUAL(c.event_limits.max_channels_at_once, 100);
    CU_ASSERT_EQUAL(c.event_limits.max_name_length, 200);
    CU_ASSERT_EQUAL(c.event_limits.max_payload_in_kb, 10);
    CU_ASSERT_EQUAL(c.event_limits.max_batch_size, 10);
    CU_ASSERT_EQUAL(c.channel_limits.max_name_length, 200);
    CU_ASSERT_EQUAL(c.channel_limits.cache_ttl, 1800);
    CU_ASSERT_EQUAL(c.presence.max_members_per_channel, 100);
    CU_ASSERT_EQUAL(c.presence.max_member_size_in_kb, 2);
    CU_ASSERT_TRUE(c.metrics.enabled);
    CU_ASSERT_STRING_EQUAL(c.metrics.host, "127.0.0.1");
    CU_ASSERT_EQUAL(c.metrics.port, 9601);
    CU_ASSERT_TRUE(c.cleanup.async_enabled);
    CU_ASSERT_TRUE(c.cleanup.fallback_to_sync);
    CU_ASSERT_EQUAL(c.cleanup.queue_buffer_size, 4096);
    CU_ASSERT_EQUAL(c.cleanup.batch_size, 64);
    CU_ASSERT_EQUAL(c.cleanup.batch_timeout_ms, 10);
    CU_ASSERT_EQUAL(c.cleanup.worker_threads, 0);
    CU_ASSERT_EQUAL(c.cleanup.max_retry_attempts, 2);
    CU_ASSERT_EQUAL(c.cleanup.stuck_worker_ms, 5000);
    CU_ASSERT_STRING_EQUAL(c.adapter.driver, "local");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "127.0.0.1");
    CU_ASSERT_EQUAL(c.adapter.redis.port, 6379);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.prefix, "herald");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.username, "");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "");
    CU_ASSERT_EQUAL(c.adapter.redis.db, 0);
    CU_ASSERT_EQUAL(c.adapter.redis.node_timeout_ms, 10000);
    CU_ASSERT_EQUAL(c.adapter.redis.op_timeout_ms, 2000);
    CU_ASSERT_EQUAL(c.adapter.redis.connect_timeout_ms, 2000);
    CU_ASSERT_EQUAL(c.adapter.redis.reconnect_max_ms, 5000);
    CU_ASSERT_EQUAL(c.adapter.redis.queue_limit_mb, 32);
    CU_ASSERT_EQUAL(c.adapter.redis.unsubscribe_linger_ms, 2000);
    CU_ASSERT_EQUAL(c.adapter.redis.reap_batch, 256);
    CU_ASSERT_TRUE(c.webhooks.batching_enabled);
    CU_ASSERT_EQUAL(c.webhooks.batching_duration_ms, 50);
    CU_ASSERT_EQUAL(c.webhooks.vacate_delay_ms, 3000);
    CU_ASSERT_EQUAL(c.webhooks.retry_max_seconds, 300);
}

static void test_defaults(void)
{
    hd_config c;
    hd_config_defaults(&c);
    check_default_globals(&c);
    CU_ASSERT_EQUAL_FATAL(c.n_apps, 1);
    const hd_app_config *a = &c.apps[0];
    CU_ASSERT_STRING_EQUAL(a->id, "app-id");
    CU_ASSERT_STRING_EQUAL(a->key, "app-key");
    CU_ASSERT_STRING_EQUAL(a->secret, "app-secret");
    CU_ASSERT_TRUE(a->enabled);
    CU_ASSERT_TRUE(a->enable_client_messages);
    CU_ASSERT_FALSE(a->enable_user_authentication);
    CU_ASSERT_FALSE(a->enable_subscription_count);
    CU_ASSERT_EQUAL(a->max_connections, 0);
    CU_ASSERT_EQUAL(a->user_authentication_timeout, 30);
    CU_ASSERT_EQUAL(a->max_presence_members_per_channel, 100);
    CU_ASSERT_EQUAL(a->max_presence_member_size_in_kb, 2);
    CU_ASSERT_EQUAL(a->max_channel_name_length, 200);
    CU_ASSERT_EQUAL(a->max_event_channels_at_once, 100);
    CU_ASSERT_EQUAL(a->max_event_name_length, 200);
    CU_ASSERT_EQUAL(a->max_event_payload_in_kb, 10);
    CU_ASSERT_EQUAL(a->max_event_batch_size, 10);
    CU_ASSERT_PTR_EQUAL(hd_config_app_by_key(&c, "app-key"), a);
    CU_ASSERT_PTR_EQUAL(hd_config_app_by_id(&c, "app-id"), a);
    CU_ASSERT_PTR_NULL(hd_config_app_by_key(&c, "nope"));
    hd_config_free(&c);
    CU_ASSERT_PTR_NULL(c.apps);
    CU_ASSERT_PTR_NULL(c.host);
    hd_config_free(&c); /* twice is harmless */
    hd_config_free(NULL);
}

/* Every row's field in a equals b's. */
static int rows_equal(const hd_cfg_row *table, const void *a, const void *b)
{
    int same = 1;
    for (const hd_cfg_row *r = table; r->path; r++) {
        if (r->offset == HD_CFG_NOFIELD || r->alias_of)
            continue;
        const char *pa = (const char *)a + r->offset, *pb = (const char *)b + r->offset;
        int eq;
        if (r->type == HD_CFG_STR || r->type == HD_CFG_ENUM)
            eq = strcmp(*(char *const *)pa, *(char *const *)pb) == 0;
        else if (r->type == HD_CFG_BOOL)
            eq = *(const bool *)pa == *(const bool *)pb;
        else if (r->type == HD_CFG_U16)
            eq = *(const uint16_t *)pa == *(const uint16_t *)pb;
        else
            eq = *(const uint32_t *)pa == *(const uint32_t *)pb;
        if (!eq)
            fprintf(stderr, "\n  %s differs\n", r->path);
        same &= eq;
    }
    return same;
}

static void test_embedded(void)
{
    hd_config c, d;
    int rc = hd_config_load_json(&c, hd_config_embedded_json, strlen(hd_config_embedded_json), NULL, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    hd_config_defaults(&d);
    CU_ASSERT_TRUE(rows_equal(hd_config__rows, &c, &d));
    CU_ASSERT_EQUAL_FATAL(c.n_apps, 1);
    CU_ASSERT_TRUE(rows_equal(hd_config__app_rows, &c.apps[0], &d.apps[0]));
    CU_ASSERT_EQUAL_FATAL(c.apps[0].n_allowed_origins, 1);
    CU_ASSERT_STRING_EQUAL(c.apps[0].allowed_origins[0], "*");
    CU_ASSERT_EQUAL(c.apps[0].n_webhooks, 0);
    hd_config_free(&c);
    hd_config_free(&d);
}

/* Env names follow the rule; defaults are inside their own bounds. */
static void test_table(void)
{
    size_t n = 0;
    for (const hd_cfg_row *r = hd_config__rows; r->path; r++, n++) {
        if (r->alias_of) {
            CU_ASSERT_PTR_NULL(r->env);
            CU_ASSERT_PTR_NOT_NULL(hd_config__row(r->alias_of));
            continue;
        }
        char want[128] = "HERALD_";
        for (size_t i = 0; r->path[i]; i++)
            want[7 + i] = r->path[i] == '.' ? '_' : (char)toupper((unsigned char)r->path[i]);
        CU_ASSERT_STRING_EQUAL(r->env, want);
        if (r->type != HD_CFG_STR && r->type != HD_CFG_ENUM && r->type != HD_CFG_WORKERS)
            CU_ASSERT(r->def >= r->min && r->def <= r->max);
    }
    CU_ASSERT(n < HD_CFG_MAX_ROWS);
    n = 0;
    for (const hd_cfg_row *r = hd_config__app_rows; r->path; r++, n++) {
        char want[128] = "HERALD_DEFAULT_APP_";
        for (size_t i = 0; r->path[i]; i++)
            want[19 + i] = (char)toupper((unsigned char)r->path[i]);
        CU_ASSERT_STRING_EQUAL(r->env, want);
    }
    CU_ASSERT(n < HD_CFG_MAX_ROWS);
}

/* ---- a sockudo user's file ---- */

static const char sockudo_file[] =
    "{'debug':false,'host':'127.0.0.1','port':6001,'mode':'production','path_prefix':'/',"
    "'shutdown_grace_period':15,'websocket_max_payload_kb':64,'user_authentication_timeout':3600,"
    "'activity_timeout':100,'max_connections':0,'health_check_timeout_ms':2000,"
    "'unix_socket':{'enabled':false,'path':'/tmp/s.sock','permission_mode':'660'},"
    "'adapter':{'driver':'redis','redis':{'requests_timeout':5000,'prefix':'sockudo_adapter:','cluster_mode':false,"
    "  'redis_pub_options':{},'redis_sub_options':{}},'cluster':{'nodes':[],'prefix':'c:'},"
    "  'nats':{'servers':['nats://nats:4222']},'cluster_health':{'enabled':true},'fallback_to_local':true},"
    "'app_manager':{'driver':'memory','array':{'apps':[{'id':'app1','key':'key1','secret':'secret1',"
    "  'max_connections':'100000','enable_client_messages':true,'enabled':true,"
    "  'max_client_events_per_second':'10000','max_backend_events_per_second':null,"
    "  'max_presence_members_per_channel':null,'allowed_origins':['https://a.example','*.b.example'],"
    "  'webhooks':[{'url':'https://hooks.example/pusher','event_types':['channel_occupied','channel_vacated'],"
    "   'filter':{'channel_prefix':'private-'},'headers':{'X-Hook-Key':'abc'}}]}]},"
    "  'cache':{'enabled':true,'ttl':300}},"
    "'cache':{'driver':'memory','memory':{'ttl':300}},"
    "'database':{'redis':{'host':'redis.internal','port':6380,'db':0,'key_prefix':'sockudo:','sentinels':[]},"
    "  'mysql':{'host':'mysql','port':3306}},"
    "'queue':{'driver':'memory'},'rate_limiter':{'enabled':false,'api_rate_limit':{'max_requests':100}},"
    "'metrics':{'enabled':false,'driver':'prometheus','host':'0.0.0.0','port':9601,'prometheus':{'prefix':'s_'}},"
    "'ssl':{'enabled':false,'cert_path':'','key_path':''},'cors':{'credentials':true,'origin':['*']},"
    "'channel_limits':{'max_name_length':200,'cache_ttl':3600},"
    "'event_limits':{'max_channels_at_once':1000,'max_name_length':2000,'max_payload_in_kb':1000,'max_batch_size':100},"
    "'presence':{'max_members_per_channel':100,'max_member_size_in_kb':2},"
    "'http_api':{'request_limit_in_mb':10,'accept_traffic':{'memory_threshold':0.9}},"
    "'webhooks':{'batching':{'enabled':false,'duration':50}},'instance':{'process_id':'x'},"
    "'logging':{'colors_enabled':true},'database_pooling':{'enabled':true,'min':2,'max':10},"
    "'cleanup':{'async_enabled':true,'fallback_to_sync':true,'queue_buffer_size':50000,'batch_size':25,"
    "  'batch_timeout_ms':50,'worker_threads':'auto','max_retry_attempts':2}}";

static void test_sockudo_file(void)
{
    hd_config c;
    capture_begin();
    int rc = load(&c, sockudo_file, NULL);
    char *log = capture_end();
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ignored: cors.credentials (not supported by herald)"));
    CU_ASSERT_PTR_NULL(strstr(log, "ignored: cors.origin")); /* sockudo's CORS origins are read */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ignored: rate_limiter (not supported by herald)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ignored: adapter.nats (not supported by herald)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ignored: database (not supported by herald); database.redis.host/port"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ignored: app_manager.array.apps[0].max_backend_events_per_second"));
    CU_ASSERT_PTR_NULL(strstr(log, "ignored: metrics.driver"));
    hd_free(log);
    CU_ASSERT_STRING_EQUAL(c.host, "127.0.0.1");
    CU_ASSERT_EQUAL(c.shutdown_grace_period, 15);
    CU_ASSERT_EQUAL(c.activity_timeout, 100);
    CU_ASSERT_EQUAL(c.max_message_size_kb, 64);      /* websocket_max_payload_kb */
    CU_ASSERT_STRING_EQUAL(c.adapter.driver, "redis");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "redis.internal"); /* database.redis */
    CU_ASSERT_EQUAL(c.adapter.redis.port, 6380);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.prefix, "sockudo_adapter:");
    CU_ASSERT_FALSE(c.metrics.enabled);
    CU_ASSERT_STRING_EQUAL(c.metrics.host, "0.0.0.0");
    CU_ASSERT_EQUAL_FATAL(c.n_cors_origins, 1); /* cors.origin, sockudo's name */
    CU_ASSERT_STRING_EQUAL(c.cors_origins[0], "*");
    CU_ASSERT_FALSE(c.webhooks.batching_enabled);
    CU_ASSERT_EQUAL(c.cleanup.queue_buffer_size, 50000);
    CU_ASSERT_EQUAL(c.cleanup.batch_size, 25);
    CU_ASSERT_EQUAL(c.cleanup.worker_threads, 0);
    CU_ASSERT_EQUAL(c.event_limits.max_payload_in_kb, 1000);
    CU_ASSERT_EQUAL_FATAL(c.n_apps, 1);
    const hd_app_config *a = hd_config_app_by_key(&c, "key1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(a->max_connections, 100000);
    CU_ASSERT_EQUAL(a->max_client_events_per_second, 10000);
    CU_ASSERT_EQUAL(a->max_presence_members_per_channel, 100); /* null -> presence section */
    CU_ASSERT_EQUAL(a->max_event_payload_in_kb, 1000);          /* event_limits */
    CU_ASSERT_EQUAL(a->max_event_batch_size, 100);
    CU_ASSERT_EQUAL(a->user_authentication_timeout, 3600);      /* top-level sockudo key */
    CU_ASSERT_EQUAL(a->n_allowed_origins, 2);
    CU_ASSERT_EQUAL(a->n_webhooks, 1);
    hd_config_free(&c);
}

/* sockudo's newer nested app shape: policy.limits / features / channels. */
static void test_sockudo_policy_shape(void)
{
    hd_config c;
    capture_begin();
    int rc = load(&c, "{'app_manager':{'array':{'apps':[{'id':'p','key':'pk','secret':'ps','enabled':false,"
                      "'policy':{'limits':{'max_connections':'7','max_event_batch_size':3,'decay_seconds':5},"
                      "'features':{'enable_client_messages':true,'enable_user_authentication':true},"
                      "'channels':{'allowed_origins':['https://x.example'],'channel_namespaces':[]},"
                      "'webhooks':[{'url':'http://h/','event_types':['member_added']}],'history':{}}}]}}}",
                   NULL);
    char *log = capture_end();
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ignored: app_manager.array.apps[0].policy.limits.decay_seconds"));
    hd_free(log);
    const hd_app_config *a = &c.apps[0];
    CU_ASSERT_FALSE(a->enabled);
    CU_ASSERT_EQUAL(a->max_connections, 7);
    CU_ASSERT_EQUAL(a->max_event_batch_size, 3);
    CU_ASSERT_EQUAL(a->max_event_name_length, 200);
    CU_ASSERT_TRUE(a->enable_client_messages);
    CU_ASSERT_TRUE(a->enable_user_authentication);
    CU_ASSERT_EQUAL(a->n_allowed_origins, 1);
    CU_ASSERT_EQUAL(a->n_webhooks, 1);
    hd_config_free(&c);
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[{'id':'p','key':'pk','secret':'ps',"
                "'policy':{'limits':{'enable_client_messages':true}}}]}}}",
                NULL, "config: app_manager.array.apps[0].policy.limits.enable_client_messages: unknown key");
}

/* ---- errors ---- */

static void test_err_unknown_key(void)
{
    EXPECT_FAIL("{'prot':6001," APP1 "}", NULL, "config: prot: unknown key (allowed here: host, port,");
    EXPECT_FAIL("{'cleanup':{'batch_sise':3}," APP1 "}", NULL,
                "config: cleanup.batch_sise: unknown key (allowed here: async_enabled, fallback_to_sync,");
    EXPECT_FAIL("{'adapter':{'redis':{'hots':'x'}}," APP1 "}", NULL, "config: adapter.redis.hots: unknown key");
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s','max_conections':1}]}}}", NULL,
                "config: app_manager.array.apps[0].max_conections: unknown key (allowed here: id, key, secret,");
    EXPECT_FAIL("{'port':1,'port':2," APP1 "}", NULL, "config: port: duplicate key");
    EXPECT_FAIL("{'max_message_size_kb':10,'websocket_max_payload_kb':20," APP1 "}", NULL,
                "config: websocket_max_payload_kb: conflicts with max_message_size_kb");
}

static void test_err_wrong_type(void)
{
    EXPECT_ERR_IS("{'port':'abc'," APP1 "}", NULL, "config: port: \"abc\" is not a whole number (1..65535)");
    EXPECT_ERR_IS("{'metrics':{'enabled':'yes'}," APP1 "}", NULL,
                  "config: metrics.enabled: expected true or false, got string \"yes\"");
    EXPECT_ERR_IS("{'host':5," APP1 "}", NULL, "config: host: expected a string, got number 5");
    EXPECT_ERR_IS("{'cleanup':[]," APP1 "}", NULL, "config: cleanup: expected an object, got an array");
    EXPECT_ERR_IS("{'activity_timeout':1.5," APP1 "}", NULL,
                  "config: activity_timeout: 1.5 is not a whole number (1..3600)");
    EXPECT_FAIL("{'app_manager':{'array':{'apps':{}}}}", NULL,
                "config: app_manager.array.apps: expected an array of apps, got an object");
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s','allowed_origins':'*'}]}}}",
                NULL, "config: app_manager.array.apps[0].allowed_origins: expected an array of strings");
    EXPECT_FAIL("{'adapter':{'driver':'nats'}," APP1 "}", NULL,
                "config: adapter.driver: \"nats\" is not supported (allowed: local, redis)");
    EXPECT_FAIL("{'app_manager':{'driver':'mysql','array':{'apps':[]}}}", NULL,
                "config: app_manager.driver: \"mysql\" is not supported (allowed: memory, array)");
    EXPECT_FAIL("{'log_level':'loud'," APP1 "}", NULL, "allowed: error, warn, notice, info, debug");
    EXPECT_FAIL("{'log_format':'xml'," APP1 "}", NULL, "allowed: text, json");
}

static void test_err_out_of_range(void)
{
    EXPECT_ERR_IS("{'cleanup':{'batch_size':0}," APP1 "}", NULL,
                  "config: cleanup.batch_size: 0 is out of range (1..10000)");
    EXPECT_ERR_IS("{'port':70000," APP1 "}", NULL, "config: port: 70000 is out of range (1..65535)");
    EXPECT_ERR_IS("{'io_threads':-1," APP1 "}", NULL, "config: io_threads: -1 is out of range (0..64)");
    EXPECT_ERR_IS("{'cleanup':{'queue_buffer_size':2000000}," APP1 "}", NULL,
                  "config: cleanup.queue_buffer_size: 2000000 is out of range (1..1048576)");
    EXPECT_ERR_IS("{'cleanup':{'worker_threads':0}," APP1 "}", NULL,
                  "config: cleanup.worker_threads: 0 is out of range (\"auto\" or 1..64)");
    EXPECT_ERR_IS("{'cleanup':{'worker_threads':'lots'}," APP1 "}", NULL,
                  "config: cleanup.worker_threads: \"lots\" is not a whole number (\"auto\" or 1..64)");
    EXPECT_ERR_IS("{'max_outbound_buffer_kb':8," APP1 "}", NULL,
                  "config: max_outbound_buffer_kb: 8 is out of range (16..1048576)");
    EXPECT_ERR_IS("{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s',"
                  "'max_connections':'5000000000'}]}}}",
                  NULL, "config: app_manager.array.apps[0].max_connections: 5000000000 is out of range "
                        "(0..4294967295)");
    EXPECT_FAIL("{'host':''," APP1 "}", NULL, "config: host: must not be empty");
}

static void test_err_fallback_to_sync(void)
{
    EXPECT_FAIL("{'cleanup':{'fallback_to_sync':false}," APP1 "}", NULL,
                "config: cleanup.fallback_to_sync: false is refused: herald never drops a cleanup job");
    char *env[] = {"HERALD_CLEANUP_FALLBACK_TO_SYNC=0", NULL};
    EXPECT_FAIL("{" APP1 "}", env,
                "config: HERALD_CLEANUP_FALLBACK_TO_SYNC (cleanup.fallback_to_sync): false is refused");
}

static void test_err_apps(void)
{
    EXPECT_ERR_IS("{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s'},"
                  "{'id':'b','key':'k','secret':'t'}]}}}",
                  NULL, "config: app_manager.array.apps[1].key: duplicate app key \"k\" (also used by apps[0])");
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s'},"
                "{'id':'a','key':'k2','secret':'t'}]}}}",
                NULL, "config: app_manager.array.apps[1].id: duplicate app id \"a\"");
    EXPECT_ERR_IS("{'app_manager':{'array':{'apps':[{'id':'a','key':'k'}]}}}", NULL,
                  "config: app_manager.array.apps[0].secret: required (a non-empty string)");
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':''}]}}}", NULL,
                "config: app_manager.array.apps[0].secret: must not be empty");
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[]}}}", NULL,
                "config: app_manager.array.apps: at least one app is required");
    EXPECT_FAIL("{}", NULL, "config: app_manager.array.apps: at least one app is required");
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[7]}}}", NULL,
                "config: app_manager.array.apps[0]: expected an object, got number 7");
}

static void test_err_json(void)
{
    EXPECT_ERR_IS("{\n 'port': 6001,\n 'host': ,\n}", NULL, "config: invalid JSON at line 3, column 10");
    EXPECT_FAIL("[1,2]", NULL, "config: the top level must be a JSON object");
    EXPECT_ERR_IS("{" APP1 "}\n}", NULL,
                  "config: invalid JSON at line 2, column 1: text after the end of the top-level object");
    EXPECT_FAIL("", NULL, "config: invalid JSON");
    hd_config c;
    CU_ASSERT_EQUAL(hd_config_load_file(&c, "/nonexistent/herald.json", NULL, err, sizeof err), HD_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "config: cannot open /nonexistent/herald.json"));
    CU_ASSERT_PTR_NULL(c.apps);
}

static void test_err_webhooks(void)
{
#define WH(body) "{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s','webhooks':[" body "]}]}}}"
    EXPECT_FAIL(WH("{'url':'ftp://x','event_types':['channel_vacated']}"), NULL,
                "config: app_manager.array.apps[0].webhooks[0].url: expected an http:// or https:// URL");
    EXPECT_FAIL(WH("{'url':'http://x','event_types':['channel_gone']}"), NULL,
                "config: app_manager.array.apps[0].webhooks[0].event_types[0]: \"channel_gone\" is not a webhook "
                "event (allowed: channel_occupied,");
    EXPECT_FAIL(WH("{'url':'http://x','event_types':['member_added'],'filter':{'channel_pattern':'^a'}}"), NULL,
                "webhooks[0].filter.channel_pattern: not supported by herald (allowed here: channel_prefix, "
                "channel_suffix)");
    EXPECT_FAIL(WH("{'lambda_function':'f','event_types':['member_added']}"), NULL,
                "webhooks[0].url: required (an http:// or https:// URL); lambda webhooks are not supported");
    EXPECT_FAIL(WH("{'url':'http://x'}"), NULL, "webhooks[0].event_types: required");
    EXPECT_FAIL(WH("{'url':'http://x','event_types':['member_added'],'headers':{'A':1}}"), NULL,
                "webhooks[0].headers.A: expected a string value");
    EXPECT_FAIL(WH("{'url':'http://x','event_types':['member_added'],'secret':'x'}"), NULL,
                "webhooks[0].secret: unknown key (allowed here: url, event_types, filter, headers)");
}

/* ---- env ---- */

static void test_env_valid(void)
{
    char *env[] = {"PATH=/bin",
                   "HERALD_PORT=7000",
                   "HERALD_CLEANUP_QUEUE_BUFFER_SIZE=100",
                   "HERALD_METRICS_ENABLED=false",
                   "HERALD_CLEANUP_ASYNC_ENABLED=0",
                   "HERALD_WEBHOOKS_BATCHING_ENABLED=TRUE",
                   "HERALD_CLEANUP_WORKER_THREADS=4",
                   "HERALD_ADAPTER_DRIVER=redis",
                   "HERALD_ADAPTER_REDIS_HOST=env-redis",
                   "HERALD_EVENT_LIMITS_MAX_BATCH_SIZE=50",
                   "HERALD_DEFAULT_APP_KEY=env-key",
                   "HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=1",
                   "HERALD_DEFAULT_APP_MAX_CONNECTIONS=5",
                   "HERALD_LOG_LEVEL=warn",
                   "HERALD_LOG_FORMAT=json",
                   "HERALD_CONFIG=/etc/herald.json",
                   NULL};
    hd_config c;
    capture_begin();
    int rc = load(&c, "{'port':6001,'adapter':{'redis':{'host':'file-redis'}}," APP1 "}", env);
    char *log = capture_end();
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NULL(strstr(log, "HERALD_CONFIG "));
    hd_free(log);
    CU_ASSERT_EQUAL(c.port, 7000);
    CU_ASSERT_EQUAL(c.cleanup.queue_buffer_size, 100);
    CU_ASSERT_FALSE(c.metrics.enabled);
    CU_ASSERT_FALSE(c.cleanup.async_enabled);
    CU_ASSERT_TRUE(c.webhooks.batching_enabled);
    CU_ASSERT_EQUAL(c.cleanup.worker_threads, 4);
    CU_ASSERT_STRING_EQUAL(c.adapter.driver, "redis");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "env-redis");
    CU_ASSERT_STRING_EQUAL(c.log_level, "warn");
    CU_ASSERT_EQUAL(hd_config_log_level(&c), HD_LOG_WARN);
    CU_ASSERT_STRING_EQUAL(c.log_format, "json");
    CU_ASSERT_STRING_EQUAL(c.apps[0].key, "env-key");
    CU_ASSERT_STRING_EQUAL(c.apps[0].id, "a1");
    CU_ASSERT_TRUE(c.apps[0].enable_client_messages);
    CU_ASSERT_EQUAL(c.apps[0].max_connections, 5);
    CU_ASSERT_EQUAL(c.apps[0].max_event_batch_size, 50); /* global env reaches the fallback */
    hd_config_free(&c);

    /* No app in the file: the env creates apps[0]. */
    char *env2[] = {"HERALD_DEFAULT_APP_ID=e", "HERALD_DEFAULT_APP_KEY=ek", "HERALD_DEFAULT_APP_SECRET=es", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'event_limits':{'max_batch_size':7}}", env2), 0);
    CU_ASSERT_EQUAL_FATAL(c.n_apps, 1);
    CU_ASSERT_STRING_EQUAL(c.apps[0].secret, "es");
    CU_ASSERT_TRUE(c.apps[0].enabled);
    CU_ASSERT_EQUAL(c.apps[0].max_event_batch_size, 7);
    hd_config_free(&c);
}

static void test_env_invalid(void)
{
    char *e1[] = {"HERALD_PORT=abc", NULL};
    EXPECT_ERR_IS("{" APP1 "}", e1, "config: HERALD_PORT (port): \"abc\" is not a whole number (1..65535)");
    char *e2[] = {"HERALD_METRICS_ENABLED=maybe", NULL};
    EXPECT_ERR_IS("{" APP1 "}", e2,
                  "config: HERALD_METRICS_ENABLED (metrics.enabled): \"maybe\" is not a boolean (true, false, 1 or 0)");
    char *e3[] = {"HERALD_CLEANUP_BATCH_SIZE=0", NULL};
    EXPECT_ERR_IS("{" APP1 "}", e3,
                  "config: HERALD_CLEANUP_BATCH_SIZE (cleanup.batch_size): 0 is out of range (1..10000)");
    char *e4[] = {"HERALD_DEFAULT_APP_SECRET=", NULL};
    EXPECT_FAIL("{" APP1 "}", e4,
                "config: HERALD_DEFAULT_APP_SECRET (app_manager.array.apps[0].secret): must not be empty");
    char *e5[] = {"HERALD_DEFAULT_APP_ID=only-id", NULL};
    EXPECT_FAIL("{}", e5, "config: app_manager.array.apps[0].key: required");
    char *e6[] = {"HERALD_DEFAULT_APP_KEY=k2", NULL};
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s'},"
                "{'id':'b','key':'k2','secret':'t'}]}}}",
                e6, "config: app_manager.array.apps[1].key: duplicate app key \"k2\"");
}

/* ---- apps ---- */

static void test_app_fallback(void)
{
    hd_config c;
    int rc = load(&c, "{'event_limits':{'max_channels_at_once':50,'max_name_length':150,'max_payload_in_kb':20,"
                      "'max_batch_size':5},'channel_limits':{'max_name_length':120},"
                      "'presence':{'max_members_per_channel':30,'max_member_size_in_kb':4},"
                      "'user_authentication_timeout':60," APP1 "}",
                  NULL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    const hd_app_config *a = &c.apps[0];
    CU_ASSERT_EQUAL(a->max_event_channels_at_once, 50);
    CU_ASSERT_EQUAL(a->max_event_name_length, 150);
    CU_ASSERT_EQUAL(a->max_event_payload_in_kb, 20);
    CU_ASSERT_EQUAL(a->max_event_batch_size, 5);
    CU_ASSERT_EQUAL(a->max_channel_name_length, 120);
    CU_ASSERT_EQUAL(a->max_presence_members_per_channel, 30);
    CU_ASSERT_EQUAL(a->max_presence_member_size_in_kb, 4);
    CU_ASSERT_EQUAL(a->user_authentication_timeout, 60);
    CU_ASSERT_TRUE(a->enabled);                 /* enabled defaults to true */
    CU_ASSERT_FALSE(a->enable_client_messages); /* Pusher's default */
    hd_config_free(&c);
}

static void test_numeric_strings(void)
{
    hd_config c;
    int rc = load(&c, "{'port':'6002','cleanup':{'batch_size':'32'},'app_manager':{'array':{'apps':[{'id':'a',"
                      "'key':'k','secret':'s','max_connections':'100000','max_event_batch_size':'20',"
                      "'max_client_events_per_second':'10'}]}}}",
                  NULL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(c.port, 6002);
    CU_ASSERT_EQUAL(c.cleanup.batch_size, 32);
    CU_ASSERT_EQUAL(c.apps[0].max_connections, 100000);
    CU_ASSERT_EQUAL(c.apps[0].max_event_batch_size, 20);
    CU_ASSERT_EQUAL(c.apps[0].max_client_events_per_second, 10);
    hd_config_free(&c);
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s','max_connections':'10x'}]}}}",
                NULL, "config: app_manager.array.apps[0].max_connections: \"10x\" is not a whole number");
    EXPECT_FAIL("{'port':' 6001'," APP1 "}", NULL, "config: port: \" 6001\" is not a whole number");
}

static void test_http_rate_key(void)
{
    /* flat and nested (policy.limits) shapes, default 0, env for apps[0], bounds */
    char *env[] = {"HERALD_DEFAULT_APP_MAX_HTTP_REQUESTS_PER_SECOND=11", NULL};
    hd_config c;
    int rc = load(&c, "{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s',"
                      "'max_http_requests_per_second':7},{'id':'b','key':'kb','secret':'s',"
                      "'policy':{'limits':{'max_http_requests_per_second':'9'}}},{'id':'c','key':'kc','secret':'s'}]}}}",
                  NULL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(c.apps[0].max_http_requests_per_second, 7);
    CU_ASSERT_EQUAL(c.apps[1].max_http_requests_per_second, 9);
    CU_ASSERT_EQUAL(c.apps[2].max_http_requests_per_second, 0);
    hd_config_free(&c);
    rc = load(&c, "{" APP1 "}", env);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(c.apps[0].max_http_requests_per_second, 11);
    hd_config_free(&c);
    EXPECT_FAIL("{'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'s',"
                "'max_http_requests_per_second':1000001}]}}}",
                NULL, "app_manager.array.apps[0].max_http_requests_per_second: 1000001 is out of range (0..1000000)");
}

static void test_webhooks(void)
{
    hd_config c;
    int rc = load(&c, WH("{'url':'https://a.example/hook','event_types':['channel_occupied','channel_vacated'],"
                         "'filter':{'channel_prefix':'private-','channel_suffix':'-x'},"
                         "'headers':{'X-One':'1','Authorization':'Bearer t'}},"
                         "{'url':'http://b.example','event_types':['member_added','member_removed','client_event',"
                         "'cache_miss','subscription_count'],'filter':{'channel_prefix':null}}"),
                  NULL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    const hd_app_config *a = &c.apps[0];
    CU_ASSERT_EQUAL_FATAL(a->n_webhooks, 2);
    const hd_webhook_config *w = &a->webhooks[0];
    CU_ASSERT_STRING_EQUAL(w->url, "https://a.example/hook");
    CU_ASSERT_EQUAL_FATAL(w->n_event_types, 2);
    CU_ASSERT_STRING_EQUAL(w->event_types[1], "channel_vacated");
    CU_ASSERT_STRING_EQUAL(w->filter_channel_prefix, "private-");
    CU_ASSERT_STRING_EQUAL(w->filter_channel_suffix, "-x");
    CU_ASSERT_EQUAL_FATAL(w->n_headers, 2);
    CU_ASSERT_STRING_EQUAL(w->headers[1].name, "Authorization");
    CU_ASSERT_STRING_EQUAL(w->headers[1].value, "Bearer t");
    w = &a->webhooks[1];
    CU_ASSERT_EQUAL(w->n_event_types, 5);
    CU_ASSERT_PTR_NULL(w->filter_channel_prefix);
    CU_ASSERT_PTR_NULL(w->filter_channel_suffix);
    CU_ASSERT_EQUAL(w->n_headers, 0);
    hd_config_free(&c);
}

static void test_worker_threads(void)
{
    static const struct {
        const char *json;
        uint32_t want;
    } cases[] = {
        {"{'cleanup':{'worker_threads':'auto'}," APP1 "}", 0},
        {"{'cleanup':{'worker_threads':'AUTO'}," APP1 "}", 0},
        {"{'cleanup':{'worker_threads':8}," APP1 "}", 8},
        {"{'cleanup':{'worker_threads':'3'}," APP1 "}", 3},
        {"{'cleanup':{'worker_threads':64}," APP1 "}", 64},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hd_config c;
        CU_ASSERT_EQUAL_FATAL(load(&c, cases[i].json, NULL), 0);
        CU_ASSERT_EQUAL(c.cleanup.worker_threads, cases[i].want);
        hd_config_free(&c);
    }
    char *env[] = {"HERALD_CLEANUP_WORKER_THREADS=auto", NULL};
    hd_config c;
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'cleanup':{'worker_threads':8}," APP1 "}", env), 0);
    CU_ASSERT_EQUAL(c.cleanup.worker_threads, 0);
    hd_config_free(&c);
    EXPECT_FAIL("{'cleanup':{'worker_threads':65}," APP1 "}", NULL, "65 is out of range (\"auto\" or 1..64)");
}

static void test_several_apps(void)
{
    hd_config c;
    int rc = load(&c, "{'event_limits':{'max_batch_size':10},'app_manager':{'array':{'apps':["
                      "{'id':'1','key':'k1','secret':'s1','max_connections':10,'max_event_batch_size':2,"
                      " 'enable_client_messages':true,'enable_subscription_count':true,"
                      " 'user_authentication_timeout':5},"
                      "{'id':'2','key':'k2','secret':'s2','enabled':false,'max_presence_members_per_channel':500},"
                      "{'id':'3','key':'k3','secret':'s3','max_event_payload_in_kb':'100','allowed_origins':[]}"
                      "]}}}",
                  NULL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(c.n_apps, 3);
    const hd_app_config *a1 = hd_config_app_by_key(&c, "k1"), *a2 = hd_config_app_by_id(&c, "2"),
                        *a3 = hd_config_app_by_key(&c, "k3");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a3);
    CU_ASSERT_EQUAL(a1->max_connections, 10);
    CU_ASSERT_EQUAL(a1->max_event_batch_size, 2);
    CU_ASSERT_TRUE(a1->enable_client_messages);
    CU_ASSERT_TRUE(a1->enable_subscription_count);
    CU_ASSERT_EQUAL(a1->user_authentication_timeout, 5);
    CU_ASSERT_FALSE(a2->enabled);
    CU_ASSERT_EQUAL(a2->max_presence_members_per_channel, 500);
    CU_ASSERT_EQUAL(a2->max_event_batch_size, 10);
    CU_ASSERT_EQUAL(a2->user_authentication_timeout, 30);
    CU_ASSERT_EQUAL(a3->max_event_payload_in_kb, 100);
    CU_ASSERT_EQUAL(a3->max_presence_members_per_channel, 100);
    CU_ASSERT_EQUAL(a3->n_allowed_origins, 0);
    CU_ASSERT_PTR_NULL(hd_config_app_by_id(&c, "4"));
    hd_config_free(&c);
}

/* sockudo's ways of giving the address: database.redis and
 * redis_pub_options.url (the URL wins, herald's keys win over both). */
static void test_redis_address(void)
{
    hd_config c;
    capture_begin();
    int rc = load(&c, "{'database':{'redis':{'host':'db-redis','port':6390,'password':'dbpw','db':4}},"
                      "'adapter':{'driver':'redis',"
                      "'redis':{'redis_pub_options':{'url':'redis://u:pw@url-redis:6391/2'}}}," APP1 "}",
                  NULL);
    char *log = capture_end();
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "url-redis"); /* the URL wins, as in sockudo */
    CU_ASSERT_EQUAL(c.adapter.redis.port, 6391);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.username, "u");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "pw"); /* not database.redis.password */
    CU_ASSERT_EQUAL(c.adapter.redis.db, 2);
    CU_ASSERT_PTR_NULL(strstr(log, "credentials")); /* used now, no warning */
    CU_ASSERT_PTR_NULL(strstr(log, "pw"));
    hd_free(log);
    hd_config_free(&c);

    /* database.redis alone: every field it names */
    rc = load(&c, "{'database':{'redis':{'host':'db-redis','port':'6390','username':'du','password':'dbpw','db':'5',"
                  "'key_prefix':'x:'}}," APP1 "}",
              NULL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "db-redis");
    CU_ASSERT_EQUAL(c.adapter.redis.port, 6390);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.username, "du");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "dbpw");
    CU_ASSERT_EQUAL(c.adapter.redis.db, 5);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.prefix, "herald"); /* key_prefix is not the adapter's prefix */
    hd_config_free(&c);

    /* herald's keys win field by field; database.redis fills the rest */
    rc = load(&c, "{'database':{'redis':{'host':'db-redis','password':'dbpw','db':3}},"
                  "'adapter':{'redis':{'host':'mine','port':1,'db':7}}," APP1 "}",
              NULL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "mine");
    CU_ASSERT_EQUAL(c.adapter.redis.port, 1);
    CU_ASSERT_EQUAL(c.adapter.redis.db, 7);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "dbpw");
    hd_config_free(&c);

    rc = load(&c, "{'adapter':{'redis':{'redis_pub_options':{'url':'redis://[::1]'}}}," APP1 "}", NULL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "::1");
    CU_ASSERT_EQUAL(c.adapter.redis.port, 6379);
    hd_config_free(&c);
    EXPECT_FAIL("{'adapter':{'redis':{'redis_pub_options':{'url':'rediss://x'}}}," APP1 "}", NULL,
                "config: adapter.redis.redis_pub_options.url: rediss:// is refused: TLS to Redis is not supported yet");
    EXPECT_FAIL("{'database':{'redis':{'port':0}}," APP1 "}", NULL,
                "config: database.redis.port: 0 is out of range (1..65535)");
    EXPECT_FAIL("{'database':{'redis':{'db':1000001}}," APP1 "}", NULL,
                "config: database.redis.db: 1000001 is out of range (0..1000000)");
    EXPECT_ERR_IS("{'database':{'redis':{'password':12345}}," APP1 "}", NULL,
                  "config: database.redis.password: expected a string, got a number");
}

static void collect_path(const char *path, bool app_default, void *arg);

/* Every adapter.redis number: default, bounds, file and env. */
static const struct redis_num {
    const char *key, *env;
    size_t offset; /* uint32_t in hd_config */
    uint32_t def, lo, hi;
} redis_nums[] = {
    {"db", "HERALD_ADAPTER_REDIS_DB", offsetof(hd_config, adapter.redis.db), 0, 0, 1000000},
    {"node_timeout_ms", "HERALD_ADAPTER_REDIS_NODE_TIMEOUT_MS", offsetof(hd_config, adapter.redis.node_timeout_ms),
     10000, 3000, 60000},
    {"op_timeout_ms", "HERALD_ADAPTER_REDIS_OP_TIMEOUT_MS", offsetof(hd_config, adapter.redis.op_timeout_ms), 2000,
     100, 60000},
    {"connect_timeout_ms", "HERALD_ADAPTER_REDIS_CONNECT_TIMEOUT_MS",
     offsetof(hd_config, adapter.redis.connect_timeout_ms), 2000, 100, 60000},
    {"reconnect_max_ms", "HERALD_ADAPTER_REDIS_RECONNECT_MAX_MS", offsetof(hd_config, adapter.redis.reconnect_max_ms),
     5000, 100, 600000},
    {"queue_limit_mb", "HERALD_ADAPTER_REDIS_QUEUE_LIMIT_MB", offsetof(hd_config, adapter.redis.queue_limit_mb), 32, 1,
     4096},
    {"unsubscribe_linger_ms", "HERALD_ADAPTER_REDIS_UNSUBSCRIBE_LINGER_MS",
     offsetof(hd_config, adapter.redis.unsubscribe_linger_ms), 2000, 0, 600000},
    {"reap_batch", "HERALD_ADAPTER_REDIS_REAP_BATCH", offsetof(hd_config, adapter.redis.reap_batch), 256, 1, 10000},
};

static uint32_t num_at(const hd_config *c, size_t offset)
{
    return *(const uint32_t *)((const char *)c + offset);
}

/* Load {'adapter':{'redis':{key:value}}} (+ env) and return the field, or
 * UINT32_MAX when the load failed. */
static uint32_t load_redis_num(const struct redis_num *k, uint64_t value, char *const *env)
{
    char json[256];
    snprintf(json, sizeof json, "{'adapter':{'redis':{'%s':%llu}}," APP1 "}", k->key, (unsigned long long)value);
    hd_config c;
    if (load(&c, json, env) != 0)
        return UINT32_MAX;
    uint32_t v = num_at(&c, k->offset);
    hd_config_free(&c);
    return v;
}

static void test_redis_numbers(void)
{
    hd_config c;
    CU_ASSERT_EQUAL_FATAL(load(&c, "{" APP1 "}", NULL), 0);
    for (size_t i = 0; i < sizeof redis_nums / sizeof redis_nums[0]; i++)
        CU_ASSERT_EQUAL(num_at(&c, redis_nums[i].offset), redis_nums[i].def);
    hd_config_free(&c);
    for (size_t i = 0; i < sizeof redis_nums / sizeof redis_nums[0]; i++) {
        const struct redis_num *k = &redis_nums[i];
        CU_ASSERT_EQUAL(load_redis_num(k, k->lo, NULL), k->lo);
        CU_ASSERT_EQUAL(load_redis_num(k, k->hi, NULL), k->hi);
        char want[160];
        snprintf(want, sizeof want, "config: adapter.redis.%s: %llu is out of range (%u..%u)", k->key,
                 (unsigned long long)k->hi + 1, k->lo, k->hi);
        CU_ASSERT_EQUAL(load_redis_num(k, (uint64_t)k->hi + 1, NULL), UINT32_MAX);
        CU_ASSERT_STRING_EQUAL(err, want);
        if (k->lo > 0) {
            CU_ASSERT_EQUAL(load_redis_num(k, k->lo - 1, NULL), UINT32_MAX);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "is out of range"));
        }
        /* the env wins over the file */
        char var[96];
        snprintf(var, sizeof var, "%s=%u", k->env, k->lo + 1);
        char *env[] = {var, NULL};
        CU_ASSERT_EQUAL(load_redis_num(k, k->hi, env), k->lo + 1);
        snprintf(var, sizeof var, "%s=many", k->env);
        CU_ASSERT_EQUAL(load_redis_num(k, k->hi, env), UINT32_MAX);
        snprintf(want, sizeof want, "config: %s (adapter.redis.%s): \"many\" is not a whole number", k->env, k->key);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    }
}

/* The string keys: file, env, bounds; the password never shows in a message. */
static void test_redis_strings(void)
{
    hd_config c;
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'adapter':{'redis':{'username':'fu','password':'fpw'}}," APP1 "}", NULL), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.username, "fu");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "fpw");
    hd_config_free(&c);
    char *env[] = {"HERALD_ADAPTER_REDIS_USERNAME=eu", "HERALD_ADAPTER_REDIS_PASSWORD=e pw:@/", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'adapter':{'redis':{'username':'fu','password':'fpw'}}," APP1 "}", env), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.username, "eu");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "e pw:@/"); /* taken as it is: no URL decoding */
    hd_config_free(&c);
    char *pw_only[] = {"HERALD_ADAPTER_REDIS_PASSWORD=only", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{" APP1 "}", pw_only), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.username, "");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "only");
    hd_config_free(&c);

    EXPECT_ERR_IS("{'adapter':{'redis':{'password':123456}}," APP1 "}", NULL,
                  "config: adapter.redis.password: expected a string, got a number");
    EXPECT_ERR_IS("{'ssl':{'passphrase':987654}," APP1 "}", NULL,
                  "config: ssl.passphrase: expected a string, got a number");
    EXPECT_ERR_IS("{'adapter':{'redis':{'username':5}}," APP1 "}", NULL,
                  "config: adapter.redis.username: expected a string, got number 5");
    char longpw[1100];
    memset(longpw, 'q', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    char json[1300];
    snprintf(json, sizeof json, "{'adapter':{'redis':{'password':'%s'}}," APP1 "}", longpw);
    EXPECT_ERR_IS(json, NULL, "config: adapter.redis.password: is too long (1099 characters, at most 1024)");
    EXPECT_ERR_IS("{'adapter':{'redis':{'username':'u'}}," APP1 "}", NULL,
                  "config: adapter.redis.username: a user needs a password too (adapter.redis.password)");

    /* a reload names a changed password by its key only */
    hd_config a, b;
    CU_ASSERT_EQUAL_FATAL(load(&a, "{'adapter':{'redis':{'password':'old-sekret'}}," APP1 "}", NULL), 0);
    CU_ASSERT_EQUAL_FATAL(load(&b, "{'adapter':{'redis':{'password':'new-sekret','db':1}}," APP1 "}", NULL), 0);
    hd_buf got;
    hd_buf_init(&got);
    CU_ASSERT_EQUAL(hd_config_diff(&a, &b, collect_path, &got), 2);
    CU_ASSERT_STRING_EQUAL(got.data, "adapter.redis.password;adapter.redis.db;");
    hd_buf_deinit(&got);
    hd_config_free(&a);
    hd_config_free(&b);
}

static void expect_url(const char *url, const char *host, unsigned port, const char *user, const char *pw,
                       unsigned db)
{
    char json[512];
    snprintf(json, sizeof json, "{'adapter':{'redis':{'url':'%s'}}," APP1 "}", url);
    hd_config c;
    int rc = load(&c, json, NULL);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) {
        fprintf(stderr, "\n  %s: %s\n", url, err);
        return;
    }
    int ok = strcmp(c.adapter.redis.host, host) == 0 && c.adapter.redis.port == port &&
             strcmp(c.adapter.redis.username, user) == 0 && strcmp(c.adapter.redis.password, pw) == 0 &&
             c.adapter.redis.db == db;
    if (!ok)
        fprintf(stderr, "\n  %s -> host=%s port=%u user=%s pw=%s db=%u\n", url, c.adapter.redis.host,
                c.adapter.redis.port, c.adapter.redis.username, c.adapter.redis.password, c.adapter.redis.db);
    CU_ASSERT(ok);
    hd_config_free(&c);
}

/* A refused URL: the message names the key, says why, shows the expected
 * shape, and never the URL (which may hold a password). */
static void expect_bad_url(const char *url, const char *why)
{
    char json[512], want[256];
    snprintf(json, sizeof json, "{'adapter':{'redis':{'url':'%s'}}," APP1 "}", url);
    snprintf(want, sizeof want, "config: adapter.redis.url: %s", why);
    CU_ASSERT(fails_with(json, NULL, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "(expected redis://[[user]:password@]host[:port][/db])"));
    CU_ASSERT_PTR_NULL(strstr(err, "sekret"));
}

static void test_redis_url(void)
{
    expect_url("redis://h", "h", 6379, "", "", 0);
    expect_url("REDIS://Redis-1.internal:6380", "Redis-1.internal", 6380, "", "", 0);
    expect_url("redis://h/", "h", 6379, "", "", 0);
    expect_url("redis://:pw@h:1/3", "h", 1, "", "pw", 3);
    expect_url("redis://user:pw@h/0", "h", 6379, "user", "pw", 0);
    expect_url("redis://a:b:c@h", "h", 6379, "a", "b:c", 0);        /* the password may hold ':' */
    expect_url("redis://:p@ss@h", "h", 6379, "", "p@ss", 0);        /* the last '@' ends it */
    expect_url("redis://%40u:p%3Aw%2F%25@h", "h", 6379, "@u", "p:w/%", 0); /* %-escapes */
    expect_url("redis://@h", "h", 6379, "", "", 0);
    expect_url("redis://[::1]", "::1", 6379, "", "", 0);
    expect_url("redis://:pw@[::1]:6390/2", "::1", 6390, "", "pw", 2);
    expect_url("redis://[fe80::1:2]:65535/1000000", "fe80::1:2", 65535, "", "", 1000000);
    expect_url("redis://10.0.0.7:7000/15", "10.0.0.7", 7000, "", "", 15);

    expect_bad_url("redis://", "no host");
    expect_bad_url("redis://:sekret@", "no host");
    expect_bad_url("redis://:sekret@:6379/1", "no host");
    expect_bad_url("redis:///0", "no host");
    expect_bad_url("redis://[]:6379", "no host");
    expect_bad_url("redis://h:0", "the port must be a number 1..65535");
    expect_bad_url("redis://h:65536", "the port must be a number 1..65535");
    expect_bad_url("redis://:sekret@h:abc", "the port must be a number 1..65535");
    expect_bad_url("redis://h:", "the port must be a number 1..65535");
    expect_bad_url("redis://h:-1", "the port must be a number 1..65535");
    expect_bad_url("redis://h/abc", "the db after / must be a number 0..1000000");
    expect_bad_url("redis://:sekret@h/1x", "the db after / must be a number 0..1000000");
    expect_bad_url("redis://h/-1", "the db after / must be a number 0..1000000");
    expect_bad_url("redis://h/1000001", "the db after / must be a number 0..1000000");
    expect_bad_url("redis://h/0/1", "the db after / must be a number 0..1000000");
    expect_bad_url("rediss://:sekret@h:6380", "rediss:// is refused: TLS to Redis is not supported yet");
    expect_bad_url("http://h", "not a redis:// URL");
    expect_bad_url("unix:///tmp/redis.sock", "not a redis:// URL");
    expect_bad_url("h:6379", "not a redis:// URL");
    expect_bad_url("", "not a redis:// URL");
    expect_bad_url("redis://sekret@h", "a password alone is written :password@");
    expect_bad_url("redis://user:@h", "a user needs a password");
    expect_bad_url("redis://:sek%zzret@h", "bad %-escape in the user or password");
    expect_bad_url("redis://:sekret%00@h", "bad %-escape in the user or password");
    expect_bad_url("redis://:sekret%4@h", "bad %-escape in the user or password");
    expect_bad_url("redis://h:6379/0?protocol=3", "query strings (?...) and fragments (#...) are not supported");
    expect_bad_url("redis://::1:6379", "an IPv6 address goes in brackets");
    expect_bad_url("redis://[::1:6379", "an IPv6 address needs its closing ]");
    expect_bad_url("redis://[::1]6379", "only :port may follow ]");
    expect_bad_url("redis://[h]:6379", "[...] must hold an IPv6 address");
    expect_bad_url("redis://ho st", "the host may hold only letters, digits");
    EXPECT_ERR_IS("{'adapter':{'redis':{'url':6379}}," APP1 "}", NULL,
                  "config: adapter.redis.url: expected a string redis://[[user]:password@]host[:port][/db], got a "
                  "number");
    hd_config c;
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'adapter':{'redis':{'url':null}}," APP1 "}", NULL), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "127.0.0.1");
    hd_config_free(&c);
    EXPECT_FAIL("{'adapter':{'redis':{'url':'redis://a','url':'redis://b'}}," APP1 "}", NULL,
                "config: adapter.redis.url: duplicate key");
    EXPECT_FAIL("{'adapter':{'redis':{'uri':'redis://a'}}," APP1 "}", NULL, "allowed here: host, port, username, "
                "password, db, prefix, node_timeout_ms");
    EXPECT_FAIL("{'adapter':{'redis':{'uri':'redis://a'}}," APP1 "}", NULL, "redis_pub_options, url)");
}

/* Which source gives each field (config_redis.c, docs/CONFIGURATION.md). */
static void test_redis_precedence(void)
{
    hd_config c;
    /* in the file, a key beats the URL, field by field */
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'adapter':{'redis':{'url':'redis://u:upw@url-h:6390/3','password':'kpw',"
                                   "'db':4}}," APP1 "}",
                               NULL),
                          0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "url-h");
    CU_ASSERT_EQUAL(c.adapter.redis.port, 6390);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.username, "u");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "kpw");
    CU_ASSERT_EQUAL(c.adapter.redis.db, 4);
    hd_config_free(&c);

    /* adapter.redis.url beats database.redis; with redis_pub_options.url it conflicts */
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'database':{'redis':{'host':'db-h','password':'dbpw','db':9}},"
                                   "'adapter':{'redis':{'url':'redis://url-h'}}," APP1 "}",
                               NULL),
                          0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "url-h");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, ""); /* a URL is a whole address */
    CU_ASSERT_EQUAL(c.adapter.redis.db, 0);
    hd_config_free(&c);
    EXPECT_ERR_IS("{'adapter':{'redis':{'url':'redis://a','redis_pub_options':{'url':'redis://b'}}}," APP1 "}", NULL,
                  "config: adapter.redis.url: conflicts with adapter.redis.redis_pub_options.url (give only one of "
                  "them)");

    /* the env URL beats the file (keys included); the env keys beat the env URL */
    char *env[] = {"HERALD_ADAPTER_REDIS_URL=redis://:envpw@env-h/6", "HERALD_ADAPTER_REDIS_DB=8", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'adapter':{'redis':{'host':'file-h','port':7000,'password':'fpw','db':1,"
                                   "'url':'redis://x:y@url-h:7001/2'}}," APP1 "}",
                               env),
                          0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "env-h");
    CU_ASSERT_EQUAL(c.adapter.redis.port, 6379); /* the URL leaves it out: default, not the file's 7000 */
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.username, "");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "envpw");
    CU_ASSERT_EQUAL(c.adapter.redis.db, 8);
    hd_config_free(&c);

    /* an env key over the file URL: that field only */
    char *env_port[] = {"HERALD_ADAPTER_REDIS_PORT=7002", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'adapter':{'redis':{'url':'redis://:p@url-h:7001/2'}}," APP1 "}", env_port), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "url-h");
    CU_ASSERT_EQUAL(c.adapter.redis.port, 7002);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "p");
    CU_ASSERT_EQUAL(c.adapter.redis.db, 2);
    hd_config_free(&c);

    char *bad[] = {"HERALD_ADAPTER_REDIS_URL=rediss://:sekret@h", NULL};
    EXPECT_ERR_IS("{" APP1 "}", bad,
                  "config: HERALD_ADAPTER_REDIS_URL (adapter.redis.url): rediss:// is refused: TLS to Redis is not "
                  "supported yet (expected redis://[[user]:password@]host[:port][/db])");
    char *typo[] = {"HERALD_ADAPTER_REDIS_UR=redis://h", NULL};
    EXPECT_FAIL("{" APP1 "}", typo, "HERALD_ADAPTER_REDIS_UR: no such herald setting (did you mean "
                                    "HERALD_ADAPTER_REDIS_URL?)");
}

/* REDIS_URL: a fallback, read only with adapter.driver redis and no
 * address from herald's own keys, URLs or sockudo's keys. */
static void test_redis_url_fallback(void)
{
    hd_config c;
    char *env[] = {"REDIS_URL=redis://ru:rpw@fallback-h:6391/5", "HERALD_ADAPTER_DRIVER=redis", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{" APP1 "}", env), 0); /* not refused as an unknown variable */
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "fallback-h");
    CU_ASSERT_EQUAL(c.adapter.redis.port, 6391);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.username, "ru");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "rpw");
    CU_ASSERT_EQUAL(c.adapter.redis.db, 5);
    hd_config_free(&c);

    /* the embedded configuration leaves the address to it */
    CU_ASSERT_EQUAL_FATAL(hd_config_load_json(&c, hd_config_embedded_json, strlen(hd_config_embedded_json), env, err,
                                              sizeof err),
                          0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "fallback-h");
    hd_config_free(&c);

    /* herald's own keys win: a host anywhere turns REDIS_URL off whole */
    static const char *const configured[] = {
        "{'adapter':{'redis':{'host':'mine'}}," APP1 "}",
        "{'adapter':{'redis':{'url':'redis://mine'}}," APP1 "}",
        "{'adapter':{'redis':{'redis_pub_options':{'url':'redis://mine'}}}," APP1 "}",
        "{'database':{'redis':{'host':'mine'}}," APP1 "}",
    };
    for (size_t i = 0; i < sizeof configured / sizeof configured[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(load(&c, configured[i], env), 0);
        CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "mine");
        CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, ""); /* not REDIS_URL's */
        CU_ASSERT_EQUAL(c.adapter.redis.db, 0);
        hd_config_free(&c);
    }
    char *env_host[] = {"REDIS_URL=redis://:rpw@fallback-h/5", "HERALD_ADAPTER_DRIVER=redis",
                        "HERALD_ADAPTER_REDIS_HOST=env-h", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{" APP1 "}", env_host), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "env-h");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "");
    hd_config_free(&c);
    char *env_url[] = {"REDIS_URL=redis://fallback-h", "HERALD_ADAPTER_DRIVER=redis",
                       "HERALD_ADAPTER_REDIS_URL=redis://herald-h", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{" APP1 "}", env_url), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "herald-h");
    hd_config_free(&c);

    /* without a host, herald's other keys still win field by field */
    char *env_pw[] = {"REDIS_URL=redis://:rpw@fallback-h:6391/5", "HERALD_ADAPTER_DRIVER=redis",
                      "HERALD_ADAPTER_REDIS_PASSWORD=hpw", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{'adapter':{'redis':{'db':2}}," APP1 "}", env_pw), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "fallback-h");
    CU_ASSERT_EQUAL(c.adapter.redis.port, 6391);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "hpw");
    CU_ASSERT_EQUAL(c.adapter.redis.db, 2);
    hd_config_free(&c);

    /* a single node never reads it, even a URL herald would refuse */
    char *local[] = {"REDIS_URL=rediss://:sekret@tls-h:6380", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{" APP1 "}", local), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.password, "");
    hd_config_free(&c);
    char *empty[] = {"REDIS_URL=", "HERALD_ADAPTER_DRIVER=redis", NULL};
    CU_ASSERT_EQUAL_FATAL(load(&c, "{" APP1 "}", empty), 0);
    CU_ASSERT_STRING_EQUAL(c.adapter.redis.host, "127.0.0.1");
    hd_config_free(&c);
    char *tls[] = {"REDIS_URL=rediss://:sekret@tls-h:6380", "HERALD_ADAPTER_DRIVER=redis", NULL};
    EXPECT_FAIL("{" APP1 "}", tls, "config: REDIS_URL (read because adapter.driver is redis and no adapter.redis "
                                   "address is configured): rediss:// is refused");
    CU_ASSERT_PTR_NULL(strstr(err, "sekret"));
}

static void test_debug_and_file(void)
{
    char path[] = "/tmp/herald_config_test_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    char *j = dq("{'debug':true,'log_level':'warn'," APP1 "}");
    CU_ASSERT_EQUAL(write(fd, j, strlen(j)), (ssize_t)strlen(j));
    close(fd);
    hd_free(j);
    hd_config c;
    CU_ASSERT_EQUAL_FATAL(hd_config_load_file(&c, path, NULL, err, sizeof err), 0);
    unlink(path);
    CU_ASSERT_TRUE(c.debug);
    CU_ASSERT_STRING_EQUAL(c.log_level, "debug");
    CU_ASSERT_EQUAL(hd_config_log_level(&c), HD_LOG_DEBUG);
    hd_config_free(&c);
}

/* ---- comparing configurations (config_diff.c, for SIGHUP reloads) ---- */

static void collect_path(const char *path, bool app_default, void *arg)
{
    hd_buf_printf(arg, "%s%s;", path, app_default ? "(apps)" : "");
}

static void test_diff_globals(void)
{
    hd_config a, b;
    CU_ASSERT_EQUAL_FATAL(load(&a, "{" APP1 "}", NULL), 0);
    CU_ASSERT_EQUAL_FATAL(load(&b, "{" APP1 "}", NULL), 0);
    CU_ASSERT_EQUAL(hd_config_diff(&a, &b, NULL, NULL), 0);
    hd_config_free(&b);
    /* every row type; an alias is reported once, under its key; the app
     * list is not compared (another app here) */
    CU_ASSERT_EQUAL_FATAL(load(&b, "{'host':'127.0.0.1','log_level':'debug','activity_timeout':60,"
                                   "'websocket_max_payload_kb':7,'metrics':{'enabled':false,'port':9700},"
                                   "'cleanup':{'worker_threads':3},'event_limits':{'max_name_length':20},"
                                   "'channel_limits':{'cache_ttl':5},"
                                   "'app_manager':{'array':{'apps':[{'id':'x','key':'y','secret':'z'}]}}}",
                              NULL),
                          0);
    hd_buf got;
    hd_buf_init(&got);
    CU_ASSERT_EQUAL(hd_config_diff(&a, &b, collect_path, &got), 9);
    /* event_limits.max_name_length is every app's default (flagged);
     * channel_limits.cache_ttl is used as it is (not flagged) */
    CU_ASSERT_STRING_EQUAL(got.data, "host;log_level;activity_timeout;max_message_size_kb;"
                                     "event_limits.max_name_length(apps);channel_limits.cache_ttl;"
                                     "metrics.enabled;metrics.port;cleanup.worker_threads;");
    hd_buf_deinit(&got);
    hd_config_free(&a);
    hd_config_free(&b);
}

/* One app: globals, secret, more app keys, origins, webhook url, event
 * types and more webhook keys filled in. */
static int load_app(hd_config *cfg, const char *globals, const char *secret, const char *app_extra,
                    const char *origins, const char *url, const char *types, const char *wh_extra)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{%s'app_manager':{'array':{'apps':[{'id':'a','key':'k','secret':'%s'%s,'allowed_origins':[%s],"
             "'webhooks':[{'url':'%s','event_types':[%s]%s}]}]}}}",
             globals, secret, app_extra, origins, url, types, wh_extra);
    return load(cfg, json, NULL);
}

static void test_app_equal(void)
{
    static const char *const o = "'https://x'", *const u = "http://h/1", *const t = "'channel_occupied'",
                             *const h = ",'headers':{'X-A':'1'}";
    hd_config a, b;
    CU_ASSERT_EQUAL_FATAL(load_app(&a, "", "s", "", o, u, t, h), 0);
    CU_ASSERT_EQUAL_FATAL(load_app(&b, "", "s", "", o, u, t, h), 0);
    CU_ASSERT_TRUE(hd_config_app_equal(&a.apps[0], &b.apps[0]));
    hd_config_free(&b);
    struct { const char *g, *s, *x, *o, *u, *t, *w; } differ[] = {
        {"", "s2", "", o, u, t, h},                                   /* secret */
        {"", "s", ",'max_connections':5", o, u, t, h},                /* a limit */
        {"", "s", ",'enabled':false", o, u, t, h},                    /* a bool */
        {"'event_limits':{'max_name_length':50},", "s", "", o, u, t, h}, /* an inherited limit */
        {"", "s", "", "'https://y'", u, t, h},                        /* an origin */
        {"", "s", "", "'https://x','https://y'", u, t, h},            /* one more origin */
        {"", "s", "", o, "http://h/2", t, h},                         /* webhook url */
        {"", "s", "", o, u, "'channel_occupied','channel_vacated'", h}, /* event types */
        {"", "s", "", o, u, t, ",'headers':{'X-A':'2'}"},             /* a header value */
        {"", "s", "", o, u, t, ",'headers':{'X-A':'1'},'filter':{'channel_prefix':'p-'}"}, /* a filter */
    };
    for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(load_app(&b, differ[i].g, differ[i].s, differ[i].x, differ[i].o, differ[i].u,
                                       differ[i].t, differ[i].w),
                              0);
        if (hd_config_app_equal(&a.apps[0], &b.apps[0]))
            fprintf(stderr, "\napp_equal: variant %zu compared equal\n", i);
        CU_ASSERT_FALSE(hd_config_app_equal(&a.apps[0], &b.apps[0]));
        hd_config_free(&b);
    }
    hd_config_free(&a);
}

static int suite_init(void)
{
    hd_log_set_level(HD_LOG_ERR); /* keep "ignored:" lines out of the report */
    return 0;
}

static int suite_clean(void)
{
    hd_log_set_level(HD_LOG_NOTICE);
    return 0;
}

/* A mistyped variable stops the load like a mistyped key, and says which
 * variable was probably meant. */
static void test_env_unknown_refused(void)
{
    char *typo[] = {"HERALD_PROT=7000", NULL};
    char *other[] = {"HERALD_NO_SUCH_THING=1", NULL};
    hd_config c;
    char msg[512];
    CU_ASSERT_EQUAL(hd_config_load_json(&c, "{}", 2, typo, msg, sizeof msg), HD_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "HERALD_PROT: no such herald setting (did you mean HERALD_PORT?)"));
    CU_ASSERT_EQUAL(hd_config_load_json(&c, "{}", 2, other, msg, sizeof msg), HD_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "HERALD_NO_SUCH_THING: no such herald setting"));
}

void hd_test_suite_config(void)
{
    CU_pSuite s = CU_add_suite("config", suite_init, suite_clean);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "embedded config loads", test_embedded);
    CU_add_test(s, "table rows", test_table);
    CU_add_test(s, "sockudo file", test_sockudo_file);
    CU_add_test(s, "sockudo policy shape", test_sockudo_policy_shape);
    CU_add_test(s, "error: unknown key", test_err_unknown_key);
    CU_add_test(s, "error: wrong type", test_err_wrong_type);
    CU_add_test(s, "error: out of range", test_err_out_of_range);
    CU_add_test(s, "error: fallback_to_sync false", test_err_fallback_to_sync);
    CU_add_test(s, "error: apps", test_err_apps);
    CU_add_test(s, "error: invalid JSON / file", test_err_json);
    CU_add_test(s, "error: webhooks", test_err_webhooks);
    CU_add_test(s, "env overrides", test_env_valid);
    CU_add_test(s, "env errors", test_env_invalid);
    CU_add_test(s, "env: an unknown HERALD_ variable is refused", test_env_unknown_refused);
    CU_add_test(s, "per-app fallback", test_app_fallback);
    CU_add_test(s, "numeric strings", test_numeric_strings);
    CU_add_test(s, "max_http_requests_per_second", test_http_rate_key);
    CU_add_test(s, "webhooks", test_webhooks);
    CU_add_test(s, "worker_threads", test_worker_threads);
    CU_add_test(s, "several apps", test_several_apps);
    CU_add_test(s, "redis: sockudo's address keys", test_redis_address);
    CU_add_test(s, "redis: number keys", test_redis_numbers);
    CU_add_test(s, "redis: user and password", test_redis_strings);
    CU_add_test(s, "redis: URL form", test_redis_url);
    CU_add_test(s, "redis: precedence", test_redis_precedence);
    CU_add_test(s, "redis: REDIS_URL fallback", test_redis_url_fallback);
    CU_add_test(s, "debug, load_file", test_debug_and_file);
    CU_add_test(s, "diff: global keys", test_diff_globals);
    CU_add_test(s, "diff: app settings", test_app_equal);
}
