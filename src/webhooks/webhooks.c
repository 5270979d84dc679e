/* webhooks.c - the pool's front: create/destroy, the report functions,
 * which endpoint takes which event, and the push onto endpoint queues.
 *
 * DESIGN
 * ------
 * create() turns every app's `webhooks` entries into endpoints (one queue,
 * one breaker, one reusable libcurl handle each), spreads endpoints and
 * state shards over webhooks.sender_threads threads, and starts them (with
 * no endpoint yet, libcurl and the threads wait for a reload to add one).
 *
 * Apps are slots (the server's app index). A slot's current endpoints are
 * an immutable hd_wh_set behind an atomic pointer; app_set() (a reload)
 * matches the new `webhooks` entries to the slot's endpoints by URL, gives
 * each a new immutable hd_wh_ep_conf (filter, types, headers, key, secret)
 * and publishes a new set. Endpoints, confs and sets are never freed
 * before destroy(): a reporter or sender holding an old one is safe, and
 * an endpoint dropped from the set still delivers what it queued.
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
 * create/destroy: main thread, with no report running or to come.
 * app_set: main thread, while reports run. Reports and hd_webhooks_wanted:
 * any thread. hd_webhooks_metrics: any thread while the pool exists
 * (stats.c).
 */
#include <inttypes.h>
#include <string.h>

#include "webhooks_internal.h"

const char *const hd_webhooks__drop_names[HD_WH_NDROPS] = {"queue_full", "rejected", "retry_expired", "shutdown"};

const hd_wh_set *hd_webhooks__set(const hd_webhooks *wh, unsigned app)
{
    if (!wh || app >= wh->max_apps)
        return NULL;
    return atomic_load_explicit(&wh->apps[app].set, memory_order_acquire);
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
               " so far for this reason)", ep->url, ep->app_id, n, hd_webhooks__drop_names[reason],
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
    if (count > atomic_load_explicit(&ep->high_water, memory_order_relaxed)) /* only grows here */
        atomic_store_explicit(&ep->high_water, count, memory_order_relaxed);
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
    const hd_wh_ep_conf *c = hd_webhooks__ep_conf(ep);
    return hd_webhooks__matches(c->mask, c->conf->filter_channel_prefix, c->conf->filter_channel_suffix, type,
                                channel);
}

void hd_webhooks__emit(hd_webhooks *wh, unsigned app, hd_wh_type type, const char *channel, const hd_buf *json)
{
    const hd_wh_set *set = hd_webhooks__set(wh, app);
    hd_wh_event *ev = NULL;
    for (size_t i = 0; set && i < set->n; i++) {
        if (!ep_wants(set->eps[i], type, channel))
            continue;
        if (!ev)
            ev = hd_webhooks__event_new(json->data, json->len, hd_mono_ms());
        endpoint_push(wh, set->eps[i], ev);
    }
    hd_webhooks__event_unref(ev);
}

static bool app_wants(const hd_webhooks *wh, unsigned app, hd_wh_type type, const char *channel)
{
    if (!wh || !channel || atomic_load_explicit(&wh->closing, memory_order_relaxed))
        return false;
    const hd_wh_set *set = hd_webhooks__set(wh, app);
    if (!set || !(set->mask & HD_WH_BIT(type)))
        return false;
    for (size_t i = 0; i < set->n; i++)
        if (ep_wants(set->eps[i], type, channel))
            return true;
    return false;
}

bool hd_webhooks_wanted(const hd_webhooks *wh, unsigned app, const char *event, const char *channel)
{
    int t = event ? hd_webhooks__type_of(event) : -1;
    return t >= 0 && app_wants(wh, app, (hd_wh_type)t, channel);
}

/* ---- reports ---- */

static void report_state(hd_webhooks *wh, unsigned app, const char *channel, const char *user_id, bool up)
{
    if (!wh || !channel || atomic_load_explicit(&wh->closing, memory_order_relaxed))
        return;
    const hd_wh_set *set = hd_webhooks__set(wh, app);
    uint32_t kinds = user_id ? HD_WH_BIT(HD_WH_MEMBER_ADDED) | HD_WH_BIT(HD_WH_MEMBER_REMOVED)
                             : HD_WH_BIT(HD_WH_CHANNEL_OCCUPIED) | HD_WH_BIT(HD_WH_CHANNEL_VACATED);
    if (set && (set->mask & kinds))
        hd_webhooks__state_report(wh, app, channel, user_id, up);
}

void hd_webhooks_channel_occupied(hd_webhooks *wh, unsigned app, const char *channel)
{
    report_state(wh, app, channel, NULL, true);
}

void hd_webhooks_channel_vacated(hd_webhooks *wh, unsigned app, const char *channel)
{
    report_state(wh, app, channel, NULL, false);
}

void hd_webhooks_member_added(hd_webhooks *wh, unsigned app, const char *channel, const char *user_id)
{
    if (user_id)
        report_state(wh, app, channel, user_id, true);
}

void hd_webhooks_member_removed(hd_webhooks *wh, unsigned app, const char *channel, const char *user_id)
{
    if (user_id)
        report_state(wh, app, channel, user_id, false);
}

/* The cluster (Redis adapter) already held vacates and removals and
 * confirmed them against its own state, and decided each crossing once
 * for every node: the event goes out as it is, with no local hold. */
void hd_webhooks_decided(hd_webhooks *wh, unsigned app, const char *event, const char *channel, const char *user_id)
{
    static const struct {
        const char *name;
        hd_wh_type type;
        bool member;
    } kinds[] = {
        {"channel_occupied", HD_WH_CHANNEL_OCCUPIED, false},
        {"channel_vacated", HD_WH_CHANNEL_VACATED, false},
        {"member_added", HD_WH_MEMBER_ADDED, true},
        {"member_removed", HD_WH_MEMBER_REMOVED, true},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(event, kinds[i].name) != 0)
            continue;
        if ((kinds[i].member && !user_id) || !app_wants(wh, app, kinds[i].type, channel))
            return;
        hd_buf b;
        hd_buf_init(&b);
        hd_webhooks__event_simple(&b, kinds[i].type, channel, kinds[i].member ? user_id : NULL);
        hd_webhooks__emit(wh, app, kinds[i].type, channel, &b);
        hd_buf_deinit(&b);
        return;
    }
    if (strcmp(event, "cache_miss") == 0)
        hd_webhooks_cache_miss(wh, app, channel);
}

void hd_webhooks_client_event(hd_webhooks *wh, unsigned app, const char *channel, const char *event,
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

void hd_webhooks_cache_miss(hd_webhooks *wh, unsigned app, const char *channel)
{
    if (!app_wants(wh, app, HD_WH_CACHE_MISS, channel))
        return;
    hd_buf b;
    hd_buf_init(&b);
    hd_webhooks__event_simple(&b, HD_WH_CACHE_MISS, channel, NULL);
    hd_webhooks__emit(wh, app, HD_WH_CACHE_MISS, channel, &b);
    hd_buf_deinit(&b);
}

void hd_webhooks_subscription_count(hd_webhooks *wh, unsigned app, const char *channel, uint32_t count)
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

static void pool_free(hd_webhooks *wh)
{
    hd_webhooks__endpoints_free(wh);
    hd_free(wh->apps);
    hd_webhooks__shards_deinit(wh);
    hd_free(wh->senders);
    if (wh->started)
        curl_global_cleanup();
    hd_free(wh);
}

hd_webhooks *hd_webhooks_create(const hd_config *cfg, const hd_webhooks_probe *probe, size_t max_apps)
{
    hd_webhooks *wh = hd_calloc(1, sizeof *wh);
    wh->cfg = cfg;
    if (probe)
        wh->probe = *probe;
    wh->max_apps = max_apps > cfg->n_apps ? max_apps : cfg->n_apps;
    wh->apps = hd_calloc(wh->max_apps ? wh->max_apps : 1, sizeof *wh->apps);
    wh->n_senders = cfg->webhooks.sender_threads ? cfg->webhooks.sender_threads : 1;
    wh->orphan_ms = HD_WH_ORPHAN_MS;
    hd_webhooks__shards_init(wh);
    wh->senders = hd_calloc(wh->n_senders, sizeof *wh->senders);
    for (size_t a = 0; a < cfg->n_apps; a++)
        hd_webhooks_app_set(wh, (unsigned)a, &cfg->apps[a]);
    size_t n = atomic_load(&wh->n_configured);
    if (n)
        hd_log(HD_LOG_NOTICE, "webhooks", "%zu endpoint(s)", n);
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
