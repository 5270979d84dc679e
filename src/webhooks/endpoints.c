/* endpoints.c - the pool's app slots: which endpoints each app has, built
 * by create and rebuilt by a reload (hd_webhooks_app_set), and libcurl and
 * the sender threads, started with the first endpoint.
 *
 * DESIGN
 * ------
 * An endpoint is one URL of one app slot (the n-th `webhooks` entry with a
 * URL is the n-th endpoint made for that URL): its queue, breaker,
 * kept-alive connection and counters outlive reloads, so a reload neither
 * reorders nor loses its events and its metrics series stay continuous.
 * What it sends with (key, secret, headers) and what it takes (event
 * types, filter) is an immutable hd_wh_ep_conf behind an atomic pointer;
 * the slot's list of endpoints is an immutable hd_wh_set behind another.
 * A reload builds new ones and publishes them; the old ones are chained
 * and freed with the pool, so no reader ever holds freed memory (reloads
 * are rare, a few hundred bytes each).
 *
 * THREADING
 * ---------
 * Main thread only (create, reloads, destroy). Publication order: a new
 * endpoint is complete (libcurl handle set up, conf published) before it
 * is appended to its sender's and the pool's lists (release), and both
 * happen before the set naming it is published (release); the senders run
 * before the first set with an endpoint is published, so a reporter that
 * sees a set (acquire) may wake the senders.
 */
#include <string.h>

#include "metrics/metrics.h"
#include "webhooks_internal.h"

/* ---- libcurl and the senders ---- */

/* Start libcurl and the senders once; false (logged once) when they
 * cannot start: webhooks stay off for the pool's life. */
static bool pool_start(hd_webhooks *wh)
{
    if (wh->started)
        return true;
    if (wh->failed)
        return false;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        hd_log(HD_LOG_ERR, "webhooks", "libcurl failed to initialise: webhooks are disabled");
        wh->failed = true;
        return false;
    }
    wh->started = true; /* from here on, freeing the pool calls curl_global_cleanup */
    if (hd_webhooks__senders_start(wh) != 0) {
        hd_log(HD_LOG_ERR, "webhooks", "could not start the webhook senders: webhooks are disabled");
        atomic_store(&wh->stopping, true);
        hd_webhooks__senders_join(wh);
        wh->failed = true;
        return false;
    }
    const hd_config *cfg = wh->cfg;
    hd_log(HD_LOG_NOTICE, "webhooks", "%u sender thread(s), batching %s (%u ms, up to %u events), vacate delay %u ms, "
           "retries for %u s", wh->n_senders, cfg->webhooks.batching_enabled ? "on" : "off",
           cfg->webhooks.batching_duration_ms, cfg->webhooks.max_batch_size, cfg->webhooks.vacate_delay_ms,
           cfg->webhooks.retry_max_seconds);
    return true;
}

/* ---- endpoints ---- */

static void conf_chain_free(const hd_wh_ep_conf *c)
{
    while (c) {
        const hd_wh_ep_conf *older = c->older;
        curl_slist_free_all(c->headers);
        hd_free((void *)c);
        c = older;
    }
}

static void endpoint_free(hd_wh_endpoint *ep)
{
    hd_webhooks__endpoint_deinit(ep);
    hd_webhooks__queue_deinit(&ep->q);
    pthread_mutex_destroy(&ep->lock);
    hd_buf_deinit(&ep->body);
    hd_free(ep->labels);
    conf_chain_free(atomic_load_explicit(&ep->cur, memory_order_relaxed));
    hd_free(ep);
}

/* A new endpoint for url of slot app, ready to send; NULL (logged) when
 * libcurl cannot give it a handle. */
static hd_wh_endpoint *endpoint_new(hd_webhooks *wh, unsigned app, const char *app_id, const char *url)
{
    const hd_config *cfg = wh->cfg;
    hd_wh_endpoint *ep = hd_calloc(1, sizeof *ep);
    ep->wh = wh;
    ep->app = app;
    ep->app_id = app_id;
    ep->url = url;
    ep->sender = (unsigned)(wh->n_made % wh->n_senders);
    pthread_mutex_init(&ep->lock, NULL);
    hd_webhooks__queue_init(&ep->q, cfg->webhooks.queue_size);
    ep->capacity = ep->q.limit;
    hd_webhooks__breaker_init(&ep->br, cfg->webhooks.breaker_failure_threshold, cfg->webhooks.breaker_cooldown_ms);
    hd_buf_init(&ep->body);
    hd_buf l;
    hd_buf_init(&l);
    hd_metrics_label(&l, "app", app_id);
    hd_buf_append(&l, ",", 1);
    hd_metrics_label(&l, "url", url);
    ep->labels = hd_buf_steal(&l, NULL);
    if (hd_webhooks__endpoint_init(ep) != 0) {
        hd_log(HD_LOG_ERR, "webhooks", "%s (app %s): libcurl could not set up the endpoint: it is skipped", url,
               app_id);
        endpoint_free(ep);
        return NULL;
    }
    return ep;
}

/* Make ep reachable: its slot's list (main thread), then its sender's and
 * the pool's lists (release: the sender and the metrics thread walk them). */
static void endpoint_link(hd_webhooks *wh, hd_wh_app *wa, hd_wh_endpoint *ep)
{
    hd_wh_endpoint **slot = &wa->eps;
    while (*slot)
        slot = &(*slot)->app_next;
    *slot = ep;
    hd_wh_sender *snd = &wh->senders[ep->sender];
    atomic_store_explicit(snd->eps_tail ? &snd->eps_tail->next_owned : &snd->eps, ep, memory_order_release);
    snd->eps_tail = ep;
    atomic_store_explicit(wh->all_tail ? &wh->all_tail->next_all : &wh->all, ep, memory_order_release);
    wh->all_tail = ep;
    wh->n_made++;
}

static bool in_set(const hd_wh_set *set, const hd_wh_endpoint *ep)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->eps[i] == ep)
            return true;
    return false;
}

/* The slot's endpoint for url not yet taken by set, or NULL. */
static hd_wh_endpoint *endpoint_find(const hd_wh_app *wa, const char *url, const hd_wh_set *set)
{
    for (hd_wh_endpoint *ep = wa->eps; ep; ep = ep->app_next)
        if (strcmp(ep->url, url) == 0 && !in_set(set, ep))
            return ep;
    return NULL;
}

/* Give ep what it sends with under cfg's settings (release: reporters and
 * the sender load it with acquire). */
static uint32_t conf_publish(hd_wh_endpoint *ep, const hd_app_config *cfg, const hd_webhook_config *w)
{
    hd_wh_ep_conf *c = hd_calloc(1, sizeof *c);
    c->app = cfg;
    c->conf = w;
    for (size_t i = 0; i < w->n_event_types; i++) {
        int t = hd_webhooks__type_of(w->event_types[i]);
        if (t >= 0)
            c->mask |= HD_WH_BIT(t);
    }
    c->headers = hd_webhooks__fixed_headers(cfg, w);
    c->older = (hd_wh_ep_conf *)atomic_load_explicit(&ep->cur, memory_order_relaxed);
    atomic_store_explicit(&ep->cur, c, memory_order_release);
    return c->mask;
}

void hd_webhooks_app_set(hd_webhooks *wh, unsigned app, const hd_app_config *cfg)
{
    if (!wh || !cfg || app >= wh->max_apps)
        return;
    hd_wh_app *wa = &wh->apps[app];
    const hd_wh_set *old = atomic_load_explicit(&wa->set, memory_order_relaxed);
    if (!old && !cfg->n_webhooks)
        return;
    hd_wh_set *set = hd_calloc(1, sizeof *set + cfg->n_webhooks * sizeof set->eps[0]);
    for (size_t k = 0; k < cfg->n_webhooks && pool_start(wh); k++) {
        const hd_webhook_config *w = &cfg->webhooks[k];
        hd_wh_endpoint *ep = endpoint_find(wa, w->url, set);
        bool fresh = !ep;
        if (fresh && !(ep = endpoint_new(wh, app, cfg->id, w->url)))
            continue;
        set->mask |= conf_publish(ep, cfg, w);
        if (fresh) /* after its conf: whoever finds it finds it complete */
            endpoint_link(wh, wa, ep);
        set->eps[set->n++] = ep;
    }
    set->older = wa->history;
    wa->history = set;
    atomic_store_explicit(&wa->set, set->n ? set : NULL, memory_order_release);
    atomic_fetch_add_explicit(&wh->n_configured, set->n, memory_order_relaxed);
    atomic_fetch_sub_explicit(&wh->n_configured, old ? old->n : 0, memory_order_relaxed);
}

void hd_webhooks__endpoints_free(hd_webhooks *wh)
{
    for (hd_wh_endpoint *ep = atomic_load(&wh->all), *next; ep; ep = next) {
        next = atomic_load(&ep->next_all);
        endpoint_free(ep);
    }
    for (size_t a = 0; wh->apps && a < wh->max_apps; a++) {
        for (hd_wh_set *set = wh->apps[a].history, *older; set; set = older) {
            older = set->older;
            hd_free(set);
        }
    }
}
