/* webhooks.c - the pool's front: create/destroy, the report functions,
 * which endpoint takes which event, and the push onto endpoint queues.
 *
 * DESIGN
 * ------
 * create() turns every app's `webhooks` entries into endpoints (one queue,
 * one breaker, one reusable libcurl handle each), spreads endpoints and
 * state shards over webhooks.sender_threads threads, and starts them.
 *
 * A report never blocks on I/O and never fails for its caller: it checks
 * whether any endpoint of the app wants the event for the channel, builds
 * the event's JSON once, and pushes a reference onto each such endpoint's
 * bounded queue under that endpoint's mutex (a few pointer moves). The
 * owning sender is woken (curl_multi_wakeup) only when the queue goes from
 * empty to non-empty or reaches a full batch. Occupancy and presence
 * reports go through state.c first (alternation, vacate delay).
 *
 * destroy() stops reports, then lets the senders fire every held-back
 * event (after the probe confirms it) and deliver what they can until
 * shutdown_grace_period has passed; what is left is dropped and counted
 * as reason "shutdown", with one log line.
 *
 * THREADING
 * ---------
 * create/destroy: main thread, with no report running or to come. Reports
 * and hd_webhooks_wanted: any thread. hd_webhooks_metrics: any thread
 * while the pool exists (stats.c).
 */
#include <inttypes.h>
#include <string.h>

#include "webhooks_internal.h"

const char *const hd_webhooks__drop_names[HD_WH_NDROPS] = {"queue_full", "rejected", "retry_expired", "shutdown"};

size_t hd_webhooks__app_index(const hd_webhooks *wh, const hd_app_config *app)
{
    hd_assert(app >= wh->cfg->apps && app < wh->cfg->apps + wh->cfg->n_apps);
    return (size_t)(app - wh->cfg->apps);
}

uint32_t hd_webhooks__batch_max(const hd_webhooks *wh)
{
    return wh->cfg->webhooks.batching_enabled ? wh->cfg->webhooks.max_batch_size : 1;
}

/* ---- drops ---- */

/* Is there a power of two in (before, after]? */
static bool crosses_power_of_two(uint64_t before, uint64_t after)
{
    return before == 0 || __builtin_clzll(after) < __builtin_clzll(before);
}

void hd_webhooks__count_drop(hd_wh_endpoint *ep, hd_wh_drop reason, uint64_t n, const char *detail)
{
    if (!n)
        return;
    uint64_t before = atomic_fetch_add_explicit(&ep->ctr.dropped[reason], n, memory_order_relaxed);
    uint64_t after = before + n;
    /* log when the total crosses a power of two: the first drop at once,
     * then ever more rarely, so an operator sees it without a flood */
    if (crosses_power_of_two(before, after) || reason == HD_WH_DROP_SHUTDOWN)
        hd_log(HD_LOG_WARN, "webhooks", "%s (app %s): dropped %" PRIu64 " event(s), reason %s%s%s (%" PRIu64
               " so far for this reason)", ep->conf->url, ep->app->id, n, hd_webhooks__drop_names[reason],
               detail ? ": " : "", detail ? detail : "", after);
}

/* ---- routing ---- */

static void endpoint_push(hd_webhooks *wh, hd_wh_endpoint *ep, hd_wh_event *ev)
{
    uint32_t max_batch = hd_webhooks__batch_max(wh);
    hd_webhooks__event_ref(ev);
    pthread_mutex_lock(&ep->lock); /* --------- endpoint lock { */
    hd_wh_event *dropped = hd_webhooks__queue_push(&ep->q, ev, ep->in_flight ? ep->batch_len : 0);
    uint32_t count = ep->q.count;
    bool in_flight = ep->in_flight;
    atomic_store_explicit(&ep->depth, count, memory_order_relaxed);
    pthread_mutex_unlock(&ep->lock); /* } endpoint lock --------- */
    if (dropped != ev)
        atomic_fetch_add_explicit(&ep->ctr.queued, 1, memory_order_relaxed);
    if (dropped) {
        hd_webhooks__event_unref(dropped);
        hd_webhooks__count_drop(ep, HD_WH_DROP_QUEUE_FULL, 1,
                                dropped == ev ? "queue full of in-flight events, newest refused"
                                              : "queue full, oldest dropped");
    }
    if (count == 1 || (!in_flight && count == max_batch))
        hd_webhooks__wake(wh, ep->sender);
}

static bool ep_wants(const hd_wh_endpoint *ep, hd_wh_type type, const char *channel)
{
    return hd_webhooks__matches(ep->mask, ep->conf->filter_channel_prefix, ep->conf->filter_channel_suffix, type,
                                channel);
}

void hd_webhooks__emit(hd_webhooks *wh, const hd_app_config *app, hd_wh_type type, const char *channel,
                       const hd_buf *json)
{
    const hd_wh_app *wa = &wh->apps[hd_webhooks__app_index(wh, app)];
    hd_wh_event *ev = NULL;
    for (size_t i = 0; i < wa->n; i++) {
        if (!ep_wants(wa->eps[i], type, channel))
            continue;
        if (!ev)
            ev = hd_webhooks__event_new(json->data, json->len, hd_mono_ms());
        endpoint_push(wh, wa->eps[i], ev);
    }
    hd_webhooks__event_unref(ev);
}

static bool app_wants(const hd_webhooks *wh, const hd_app_config *app, hd_wh_type type, const char *channel)
{
    if (!wh || !app || !channel || atomic_load_explicit(&wh->closing, memory_order_relaxed))
        return false;
    const hd_wh_app *wa = &wh->apps[hd_webhooks__app_index(wh, app)];
    if (!(wa->mask & HD_WH_BIT(type)))
        return false;
    for (size_t i = 0; i < wa->n; i++)
        if (ep_wants(wa->eps[i], type, channel))
            return true;
    return false;
}

bool hd_webhooks_wanted(const hd_webhooks *wh, const hd_app_config *app, const char *event, const char *channel)
{
    int t = event ? hd_webhooks__type_of(event) : -1;
    return t >= 0 && app_wants(wh, app, (hd_wh_type)t, channel);
}

/* ---- reports ---- */

static void report_state(hd_webhooks *wh, const hd_app_config *app, const char *channel, const char *user_id,
                         bool up)
{
    if (!wh || !app || !channel || atomic_load_explicit(&wh->closing, memory_order_relaxed))
        return;
    hd_wh_app *wa = &wh->apps[hd_webhooks__app_index(wh, app)];
    uint32_t kinds = user_id ? HD_WH_BIT(HD_WH_MEMBER_ADDED) | HD_WH_BIT(HD_WH_MEMBER_REMOVED)
                             : HD_WH_BIT(HD_WH_CHANNEL_OCCUPIED) | HD_WH_BIT(HD_WH_CHANNEL_VACATED);
    if (wa->mask & kinds)
        hd_webhooks__state_report(wh, app, channel, user_id, up);
}

void hd_webhooks_channel_occupied(hd_webhooks *wh, const hd_app_config *app, const char *channel)
{
    report_state(wh, app, channel, NULL, true);
}

void hd_webhooks_channel_vacated(hd_webhooks *wh, const hd_app_config *app, const char *channel)
{
    report_state(wh, app, channel, NULL, false);
}

void hd_webhooks_member_added(hd_webhooks *wh, const hd_app_config *app, const char *channel, const char *user_id)
{
    if (user_id)
        report_state(wh, app, channel, user_id, true);
}

void hd_webhooks_member_removed(hd_webhooks *wh, const hd_app_config *app, const char *channel,
                                const char *user_id)
{
    if (user_id)
        report_state(wh, app, channel, user_id, false);
}

void hd_webhooks_client_event(hd_webhooks *wh, const hd_app_config *app, const char *channel, const char *event,
                              const char *data_json, const char *socket_id, const char *user_id)
{
    if (!event || !socket_id || !app_wants(wh, app, HD_WH_CLIENT_EVENT, channel))
        return;
    hd_buf b;
    hd_buf_init(&b);
    hd_webhooks__event_client(&b, channel, event, data_json, socket_id, user_id);
    hd_webhooks__emit(wh, app, HD_WH_CLIENT_EVENT, channel, &b);
    hd_buf_deinit(&b);
}

void hd_webhooks_cache_miss(hd_webhooks *wh, const hd_app_config *app, const char *channel)
{
    if (!app_wants(wh, app, HD_WH_CACHE_MISS, channel))
        return;
    hd_buf b;
    hd_buf_init(&b);
    hd_webhooks__event_simple(&b, HD_WH_CACHE_MISS, channel, NULL);
    hd_webhooks__emit(wh, app, HD_WH_CACHE_MISS, channel, &b);
    hd_buf_deinit(&b);
}

void hd_webhooks_subscription_count(hd_webhooks *wh, const hd_app_config *app, const char *channel,
                                    uint32_t count)
{
    if (!app_wants(wh, app, HD_WH_SUBSCRIPTION_COUNT, channel))
        return;
    hd_buf b;
    hd_buf_init(&b);
    hd_webhooks__event_count(&b, channel, count);
    hd_webhooks__emit(wh, app, HD_WH_SUBSCRIPTION_COUNT, channel, &b);
    hd_buf_deinit(&b);
}

/* ---- create / destroy ---- */

static void label_escape(hd_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            hd_buf_append(b, "\\", 1);
        if (*s == '\n')
            hd_buf_puts(b, "\\n");
        else
            hd_buf_append(b, s, 1);
    }
}

static hd_wh_endpoint *endpoint_new(hd_webhooks *wh, const hd_app_config *app, const hd_webhook_config *conf,
                                    size_t index)
{
    const hd_config *cfg = wh->cfg;
    hd_wh_endpoint *ep = hd_calloc(1, sizeof *ep);
    ep->wh = wh;
    ep->app = app;
    ep->conf = conf;
    ep->sender = (unsigned)(index % wh->n_senders);
    for (size_t i = 0; i < conf->n_event_types; i++) {
        int t = hd_webhooks__type_of(conf->event_types[i]);
        if (t >= 0)
            ep->mask |= HD_WH_BIT(t);
    }
    pthread_mutex_init(&ep->lock, NULL);
    hd_webhooks__queue_init(&ep->q, cfg->webhooks.queue_size);
    hd_webhooks__breaker_init(&ep->br, cfg->webhooks.breaker_failure_threshold, cfg->webhooks.breaker_cooldown_ms);
    hd_buf_init(&ep->body);
    hd_buf l;
    hd_buf_init(&l);
    hd_buf_puts(&l, "app=\"");
    label_escape(&l, app->id);
    hd_buf_puts(&l, "\",url=\"");
    label_escape(&l, conf->url);
    hd_buf_puts(&l, "\"");
    ep->labels = hd_buf_steal(&l, NULL);
    return ep;
}

static void endpoint_free(hd_wh_endpoint *ep)
{
    if (!ep)
        return;
    hd_webhooks__endpoint_deinit(ep);
    hd_webhooks__queue_deinit(&ep->q);
    pthread_mutex_destroy(&ep->lock);
    hd_buf_deinit(&ep->body);
    hd_free(ep->labels);
    hd_free(ep);
}

static size_t count_endpoints(const hd_config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_apps; i++)
        n += cfg->apps[i].n_webhooks;
    return n;
}

static int endpoints_create(hd_webhooks *wh)
{
    const hd_config *cfg = wh->cfg;
    wh->apps = hd_calloc(cfg->n_apps ? cfg->n_apps : 1, sizeof *wh->apps);
    wh->eps = hd_calloc(wh->n_eps, sizeof *wh->eps);
    size_t k = 0;
    for (size_t a = 0; a < cfg->n_apps; a++) {
        const hd_app_config *app = &cfg->apps[a];
        hd_wh_app *wa = &wh->apps[a];
        wa->eps = hd_calloc(app->n_webhooks ? app->n_webhooks : 1, sizeof *wa->eps);
        for (size_t i = 0; i < app->n_webhooks; i++, k++) {
            hd_wh_endpoint *ep = endpoint_new(wh, app, &app->webhooks[i], k);
            wh->eps[k] = wa->eps[wa->n++] = ep;
            wa->mask |= ep->mask;
            if (hd_webhooks__endpoint_init(ep) != 0)
                return HD_EIO;
        }
    }
    return 0;
}

static void pool_free(hd_webhooks *wh)
{
    for (size_t i = 0; i < wh->n_eps; i++)
        endpoint_free(wh->eps[i]);
    for (size_t a = 0; wh->apps && a < wh->cfg->n_apps; a++)
        hd_free(wh->apps[a].eps);
    hd_free(wh->apps);
    hd_free(wh->eps);
    hd_webhooks__shards_deinit(wh);
    hd_free(wh->senders);
    hd_free(wh);
    curl_global_cleanup();
}

hd_webhooks *hd_webhooks_create(const hd_config *cfg, const hd_webhooks_probe *probe)
{
    size_t n_eps = count_endpoints(cfg);
    if (!n_eps)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        hd_log(HD_LOG_ERR, "webhooks", "libcurl failed to initialise: webhooks are disabled");
        return NULL;
    }
    hd_webhooks *wh = hd_calloc(1, sizeof *wh);
    wh->cfg = cfg;
    if (probe)
        wh->probe = *probe;
    wh->n_eps = n_eps;
    wh->n_senders = cfg->webhooks.sender_threads ? cfg->webhooks.sender_threads : 1;
    if (wh->n_senders > n_eps + HD_WH_SHARDS)
        wh->n_senders = (unsigned)(n_eps + HD_WH_SHARDS);
    hd_webhooks__shards_init(wh);
    wh->senders = hd_calloc(wh->n_senders, sizeof *wh->senders);
    if (endpoints_create(wh) != 0 || hd_webhooks__senders_start(wh) != 0) {
        hd_log(HD_LOG_ERR, "webhooks", "could not start the webhook senders: webhooks are disabled");
        atomic_store(&wh->stopping, true);
        hd_webhooks__senders_join(wh);
        pool_free(wh);
        return NULL;
    }
    hd_log(HD_LOG_NOTICE, "webhooks", "%zu endpoint(s), %u sender thread(s), batching %s (%u ms, up to %u events), "
           "vacate delay %u ms, retries for %u s", n_eps, wh->n_senders,
           cfg->webhooks.batching_enabled ? "on" : "off", cfg->webhooks.batching_duration_ms,
           cfg->webhooks.max_batch_size, cfg->webhooks.vacate_delay_ms, cfg->webhooks.retry_max_seconds);
    return wh;
}

void hd_webhooks_destroy(hd_webhooks *wh)
{
    if (!wh)
        return;
    atomic_store(&wh->closing, true);
    wh->deadline_ms = hd_mono_ms() + (uint64_t)wh->cfg->shutdown_grace_period * 1000u;
    atomic_store(&wh->timer_senders_left, wh->n_senders);
    atomic_store(&wh->stopping, true);
    for (unsigned i = 0; i < wh->n_senders; i++)
        hd_webhooks__wake(wh, i);
    hd_webhooks__senders_join(wh);
    pool_free(wh);
}
