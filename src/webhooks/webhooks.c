/* webhooks.c - webhook reports. Delivery (batching, signing, retries,
 * vacate delay) is not built yet: with no pool every report is ignored,
 * which hd_webhooks_create() states in the log when an app configures
 * webhooks.
 *
 * THREADING: report functions are safe from any thread.
 */
#include "webhooks.h"

#include "common/common.h"

hd_webhooks *hd_webhooks_create(const hd_config *cfg, const hd_webhooks_probe *probe)
{
    (void)probe;
    for (size_t i = 0; i < cfg->n_apps; i++)
        if (cfg->apps[i].n_webhooks)
            hd_log(HD_LOG_WARN, "webhooks", "app %s: webhooks are configured but delivery is not available yet",
                   cfg->apps[i].id);
    return NULL;
}

void hd_webhooks_destroy(hd_webhooks *wh)
{
    (void)wh;
}

bool hd_webhooks_wanted(const hd_webhooks *wh, const hd_app_config *app, const char *event, const char *channel)
{
    return wh && app->n_webhooks && event && channel;
}

void hd_webhooks_channel_occupied(hd_webhooks *wh, const hd_app_config *app, const char *channel)
{
    (void)wh, (void)app, (void)channel;
}

void hd_webhooks_channel_vacated(hd_webhooks *wh, const hd_app_config *app, const char *channel)
{
    (void)wh, (void)app, (void)channel;
}

void hd_webhooks_member_added(hd_webhooks *wh, const hd_app_config *app, const char *channel, const char *user_id)
{
    (void)wh, (void)app, (void)channel, (void)user_id;
}

void hd_webhooks_member_removed(hd_webhooks *wh, const hd_app_config *app, const char *channel,
                                const char *user_id)
{
    (void)wh, (void)app, (void)channel, (void)user_id;
}

void hd_webhooks_client_event(hd_webhooks *wh, const hd_app_config *app, const char *channel, const char *event,
                              const char *data_json, const char *socket_id, const char *user_id)
{
    (void)wh, (void)app, (void)channel, (void)event, (void)data_json, (void)socket_id, (void)user_id;
}

void hd_webhooks_cache_miss(hd_webhooks *wh, const hd_app_config *app, const char *channel)
{
    (void)wh, (void)app, (void)channel;
}

void hd_webhooks_subscription_count(hd_webhooks *wh, const hd_app_config *app, const char *channel,
                                    uint32_t count)
{
    (void)wh, (void)app, (void)channel, (void)count;
}
