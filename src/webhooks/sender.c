/* sender.c - the sender threads: libcurl multi loops that batch, sign,
 * post and retry, and fire the held-back events of their state shards.
 *
 * DESIGN
 * ------
 * webhooks.sender_threads threads; the i-th endpoint made and state shard
 * s belong to thread i % n and s % n. A thread walks its endpoints on an
 * append-only list, so endpoints a reload adds join the next pass. Each thread has one CURLM; each endpoint one
 * CURL easy handle that is reused for every request, so the multi handle's
 * connection cache keeps one kept-alive connection per endpoint, while
 * many endpoints have requests in flight at once.
 *
 * Each endpoint has at most one request in flight: its events reach the
 * receiver in the order they were reported (a later batch never overtakes
 * an earlier one, so occupied/vacated stay in order on the wire too). A
 * batch is the head of the endpoint's queue, up to webhooks.max_batch_size
 * events (1 with batching off, as Pusher does), cut when the oldest
 * waiting event is webhooks.batching.duration ms old (at once when
 * batching is off, when a full batch is waiting, or when retrying). The
 * body is built from the queue under the endpoint's lock; signing and
 * libcurl calls happen outside it.
 *
 * Result (breaker.c classifies it): delivered -> the batch leaves the
 * queue; rejected (4xx) -> dropped, not retried; retry -> the events stay
 * at the head and the next attempt waits hd_webhooks__backoff_ms(n),
 * except events reported more than webhooks.retry_max_seconds ago, which
 * are dropped (reason retry_expired). The breaker may hold the next
 * attempt back further. Each breaker transition is logged once.
 *
 * One loop pass: fire due timers, start what is ready, let libcurl work,
 * handle finished transfers, then sleep in curl_multi_poll until the next
 * deadline (batch window, retry, breaker, timer) or a wake-up
 * (curl_multi_wakeup from a report).
 *
 * Shutdown (stopping): timers all fire at once (probe still checked),
 * batching windows are skipped, and the loop runs until every owned
 * endpoint is empty and idle, or the deadline passes; whatever is left is
 * aborted and dropped (reason shutdown).
 *
 * THREADING
 * ---------
 * Everything here runs on the owning sender thread, except
 * hd_webhooks__wake (any thread: curl_multi_wakeup is thread-safe),
 * fixed_headers and endpoint_init (main thread, before the endpoint is
 * published), endpoint_deinit and senders_start/join (main thread, no
 * sender running). A request loads its endpoint's conf once (acquire) and
 * signs with that conf's secret.
 */
#include <inttypes.h>
#include <string.h>

#include "protocol/protocol.h"
#include "webhooks_internal.h"

static uint32_t rng_next(hd_wh_sender *snd)
{
    uint64_t x = snd->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    snd->rng = x;
    return (uint32_t)((x * 2685821657736338717ull) >> 32);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

/* ---- endpoint request setup ---- */

static bool reserved_header(const char *name)
{
    return strcasecmp(name, "Content-Type") == 0 || strcasecmp(name, "X-Pusher-Key") == 0 ||
           strcasecmp(name, "X-Pusher-Signature") == 0 || strcasecmp(name, "Content-Length") == 0;
}

struct curl_slist *hd_webhooks__fixed_headers(const hd_app_config *app, const hd_webhook_config *conf)
{
    hd_buf b;
    hd_buf_init(&b);
    struct curl_slist *list = curl_slist_append(NULL, "Content-Type: application/json");
    hd_buf_printf(&b, "X-Pusher-Key: %s", app->key);
    list = curl_slist_append(list, b.data);
    list = curl_slist_append(list, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; i < conf->n_headers; i++) {
        const hd_webhook_header *h = &conf->headers[i];
        if (reserved_header(h->name) || strpbrk(h->name, "\r\n:") || strpbrk(h->value, "\r\n")) {
            hd_log(HD_LOG_WARN, "webhooks", "%s (app %s): header \"%s\" ignored (reserved or malformed)",
                   conf->url, app->id, h->name);
            continue;
        }
        b.len = 0;
        hd_buf_printf(&b, "%s: %s", h->name, h->value);
        list = curl_slist_append(list, b.data);
    }
    hd_buf_deinit(&b);
    hd_assert(list);
    return list;
}

int hd_webhooks__endpoint_init(hd_wh_endpoint *ep)
{
    const hd_config *cfg = ep->wh->cfg;
    ep->easy = curl_easy_init();
    if (!ep->easy)
        return HD_EIO;
    CURL *e = ep->easy;
    curl_easy_setopt(e, CURLOPT_URL, ep->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->webhooks.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->webhooks.timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "herald/" HERALD_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PRIVATE, ep);
    return 0;
}

void hd_webhooks__endpoint_deinit(hd_wh_endpoint *ep)
{
    if (ep->easy)
        curl_easy_cleanup(ep->easy);
    curl_slist_free_all(ep->req_headers);
    ep->easy = NULL;
    ep->req_headers = NULL;
}

/* ---- breaker transitions ---- */

static void breaker_note(hd_wh_endpoint *ep, hd_wh_breaker_state before, const char *why)
{
    hd_wh_breaker_state now = ep->br.state;
    atomic_store_explicit(&ep->breaker_pub, (int)now, memory_order_relaxed);
    if (now == before)
        return;
    const char *url = ep->url, *app = ep->app_id;
    if (now == HD_WH_OPEN && before == HD_WH_CLOSED)
        hd_log(HD_LOG_WARN, "webhooks", "%s (app %s): circuit breaker open after %u consecutive failures (last: %s); "
               "events wait in the queue, probing again in %u ms", url, app, ep->br.failures, why,
               ep->br.cooldown_ms);
    else if (now == HD_WH_OPEN)
        hd_log(HD_LOG_WARN, "webhooks", "%s (app %s): circuit breaker probe failed (%s): open again for %u ms", url,
               app, why, ep->br.cooldown_ms);
    else if (now == HD_WH_HALF_OPEN)
        hd_log(HD_LOG_NOTICE, "webhooks", "%s (app %s): circuit breaker half-open: sending one probe request", url,
               app);
    else
        hd_log(HD_LOG_NOTICE, "webhooks", "%s (app %s): circuit breaker closed: delivery resumed", url, app);
}

/* ---- starting a request ---- */

/* Is the head of ep's queue due to go now? Else *wait = when to look
 * again. Endpoint lock held. */
static bool head_ready(hd_wh_endpoint *ep, uint64_t now, bool stopping, uint64_t *wait)
{
    const hd_config *cfg = ep->wh->cfg;
    bool window = cfg->webhooks.batching_enabled && !ep->attempts && !stopping;
    if (window && ep->q.count < hd_webhooks__batch_max(ep->wh)) {
        uint64_t close_at = hd_webhooks__queue_at(&ep->q, 0)->reported_ms + cfg->webhooks.batching_duration_ms;
        if (now < close_at) {
            *wait = close_at;
            return false;
        }
    }
    if (ep->attempts && now < ep->retry_at) {
        *wait = ep->retry_at;
        return false;
    }
    return hd_webhooks__breaker_allow(&ep->br, now, wait);
}

static void start_request(hd_wh_sender *snd, hd_wh_endpoint *ep, uint64_t now)
{
    char sig[65], line[96];
    const hd_wh_ep_conf *c = hd_webhooks__ep_conf(ep); /* a reload's new secret signs the next request */
    hd_hmac_sha256_hex(c->app->secret, strlen(c->app->secret), ep->body.data, ep->body.len, sig);
    snprintf(line, sizeof line, "X-Pusher-Signature: %s", sig);
    struct curl_slist *list = curl_slist_append(NULL, line);
    for (const struct curl_slist *h = c->headers; h && list; h = h->next)
        list = curl_slist_append(list, h->data);
    hd_assert(list);
    ep->req_headers = list;
    curl_easy_setopt(ep->easy, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ep->body.len);
    curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDS, ep->body.data);
    ep->started_ms = now;
    atomic_fetch_add_explicit(&snd->wh->in_flight, 1, memory_order_relaxed);
    curl_multi_add_handle(snd->multi, ep->easy);
}

/* Start ep's next request if it is due; returns when to look again. */
static uint64_t ep_service(hd_wh_sender *snd, hd_wh_endpoint *ep, uint64_t now, bool stopping)
{
    uint64_t wait = UINT64_MAX;
    hd_wh_breaker_state before = ep->br.state;
    bool go = false;
    pthread_mutex_lock(&ep->lock); /* --------- endpoint lock { */
    if (!ep->in_flight && ep->q.count && head_ready(ep, now, stopping, &wait)) {
        uint32_t max = hd_webhooks__batch_max(ep->wh), k = ep->q.count < max ? ep->q.count : max;
        ep->body.len = 0;
        hd_webhooks__body(&ep->body, hd_wall_ms(), &ep->q, k);
        ep->batch_len = k;
        ep->in_flight = go = true;
    }
    pthread_mutex_unlock(&ep->lock); /* } endpoint lock --------- */
    breaker_note(ep, before, NULL);
    if (go)
        start_request(snd, ep, now);
    return wait;
}

/* ---- finishing a request ---- */

static void record_delivered(hd_webhooks *wh, hd_wh_endpoint *ep, const hd_wh_event *ev, uint64_t now)
{
    uint64_t ms = now > ev->reported_ms ? now - ev->reported_ms : 0;
    unsigned b = 0;
    while (b < HD_WH_LAT_BUCKETS - 1 && ms > hd_webhooks__lat_le_ms[b])
        b++;
    atomic_fetch_add_explicit(&wh->lat_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wh->lat_sum_ms, ms, memory_order_relaxed);
    atomic_fetch_add_explicit(&ep->ctr.sent, 1, memory_order_relaxed);
}

static void record_batch(hd_wh_endpoint *ep, uint32_t k)
{
    unsigned b = 0;
    while (b < HD_WH_BATCH_BUCKETS - 1 && k > hd_webhooks__batch_le[b])
        b++;
    atomic_fetch_add_explicit(&ep->ctr.batch_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ep->ctr.batch_events, k, memory_order_relaxed);
}

/* Remove the head's events reported more than retry_max_seconds ago;
 * returns how many. Endpoint lock held. */
static uint32_t expire_head(hd_wh_endpoint *ep, uint32_t k, uint64_t now)
{
    uint64_t max_ms = (uint64_t)ep->wh->cfg->webhooks.retry_max_seconds * 1000u;
    uint32_t expired = 0;
    for (uint32_t i = 0, seen = 0; seen < k; seen++) {
        if (hd_webhooks__queue_at(&ep->q, i)->reported_ms + max_ms <= now) {
            hd_webhooks__event_unref(hd_webhooks__queue_remove(&ep->q, i));
            expired++;
        } else {
            i++;
        }
    }
    return expired;
}

/* Apply outcome to the k events at the head. Returns events dropped. */
static uint32_t settle_head(hd_wh_sender *snd, hd_wh_endpoint *ep, hd_wh_outcome outcome, uint64_t now)
{
    pthread_mutex_lock(&ep->lock); /* --------- endpoint lock { */
    uint32_t k = ep->batch_len, dropped = 0;
    ep->batch_len = 0;
    ep->in_flight = false;
    if (outcome == HD_WH_RETRY) {
        dropped = expire_head(ep, k, now);
        ep->attempts++;
        const hd_config *cfg = snd->wh->cfg;
        ep->retry_at = now + hd_webhooks__backoff_ms(ep->attempts, cfg->webhooks.retry_initial_ms,
                                                     cfg->webhooks.retry_max_interval_ms, rng_next(snd));
        if (dropped < k)
            atomic_fetch_add_explicit(&ep->ctr.retried, 1, memory_order_relaxed);
    } else {
        for (uint32_t i = 0; i < k; i++) {
            hd_wh_event *ev = hd_webhooks__queue_remove(&ep->q, 0);
            if (outcome == HD_WH_DELIVERED)
                record_delivered(snd->wh, ep, ev, now);
            hd_webhooks__event_unref(ev);
        }
        if (outcome == HD_WH_DELIVERED)
            record_batch(ep, k);
        dropped = outcome == HD_WH_REJECTED ? k : 0;
        ep->attempts = 0;
    }
    atomic_store_explicit(&ep->depth, ep->q.count, memory_order_relaxed);
    pthread_mutex_unlock(&ep->lock); /* } endpoint lock --------- */
    return dropped;
}

static void ep_complete(hd_wh_sender *snd, hd_wh_endpoint *ep, CURLcode cc)
{
    long status = 0;
    curl_easy_getinfo(ep->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(snd->multi, ep->easy);
    curl_slist_free_all(ep->req_headers);
    ep->req_headers = NULL;
    atomic_fetch_sub_explicit(&snd->wh->in_flight, 1, memory_order_relaxed);
    uint64_t now = hd_mono_ms();
    hd_wh_outcome outcome = hd_webhooks__classify(cc, status);
    atomic_fetch_add_explicit(&ep->ctr.requests[outcome], 1, memory_order_relaxed);
    char why[160];
    if (cc != CURLE_OK)
        snprintf(why, sizeof why, "%s", curl_easy_strerror(cc));
    else
        snprintf(why, sizeof why, "HTTP %ld", status);
    uint32_t dropped = settle_head(snd, ep, outcome, now);
    hd_wh_breaker_state before = ep->br.state;
    hd_webhooks__breaker_record(&ep->br, outcome == HD_WH_RETRY, now);
    breaker_note(ep, before, why);
    if (outcome == HD_WH_REJECTED)
        hd_webhooks__count_drop(ep, HD_WH_DROP_REJECTED, dropped, why);
    else if (outcome == HD_WH_RETRY) {
        hd_log(HD_LOG_INFO, "webhooks", "%s (app %s): attempt %u failed (%s) after %" PRIu64 " ms", ep->url,
               ep->app_id, ep->attempts, why, now - ep->started_ms);
        hd_webhooks__count_drop(ep, HD_WH_DROP_RETRY_EXPIRED, dropped, why);
    }
}

/* Handle finished transfers; true when there were any. */
static bool drain_done(hd_wh_sender *snd)
{
    bool any = false;
    int left;
    for (CURLMsg *m; (m = curl_multi_info_read(snd->multi, &left)) != NULL;) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode cc = m->data.result; /* m dies with remove_handle */
        hd_wh_endpoint *ep = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&ep);
        ep_complete(snd, ep, cc);
        any = true;
    }
    return any;
}

/* ---- the loop ---- */

static uint64_t run_timers(hd_wh_sender *snd, uint64_t now, bool stopping)
{
    hd_webhooks *wh = snd->wh;
    uint64_t next = UINT64_MAX;
    for (unsigned s = snd->index; s < HD_WH_SHARDS; s += wh->n_senders) {
        uint64_t d = hd_webhooks__timers_run(wh, s, now, stopping);
        next = d < next ? d : next;
    }
    if (stopping && !snd->timers_flushed) {
        snd->timers_flushed = true; /* nothing can arm a timer any more */
        atomic_fetch_sub(&wh->timer_senders_left, 1);
    }
    return next;
}

static bool owned_idle(hd_wh_sender *snd)
{
    HD_WH_EACH(ep, snd->eps, next_owned) {
        pthread_mutex_lock(&ep->lock);
        bool idle = !ep->in_flight && !ep->q.count;
        pthread_mutex_unlock(&ep->lock);
        if (!idle)
            return false;
    }
    return true;
}

static bool flush_done(hd_wh_sender *snd, uint64_t now)
{
    /* timers first: another sender's timers may still feed our endpoints */
    return now >= snd->wh->deadline_ms || (atomic_load(&snd->wh->timer_senders_left) == 0 && owned_idle(snd));
}

/* After the loop: abort what is in flight, drop what is left. */
static void abandon(hd_wh_sender *snd)
{
    hd_webhooks *wh = snd->wh;
    HD_WH_EACH(ep, snd->eps, next_owned) {
        pthread_mutex_lock(&ep->lock);
        uint32_t n = ep->q.count;
        bool was_in_flight = ep->in_flight;
        hd_webhooks__queue_deinit(&ep->q);
        ep->in_flight = false;
        ep->batch_len = 0;
        atomic_store_explicit(&ep->depth, 0, memory_order_relaxed);
        pthread_mutex_unlock(&ep->lock);
        if (was_in_flight) {
            curl_multi_remove_handle(snd->multi, ep->easy);
            atomic_fetch_sub_explicit(&wh->in_flight, 1, memory_order_relaxed);
        }
        hd_webhooks__count_drop(ep, HD_WH_DROP_SHUTDOWN, n, "not delivered within shutdown_grace_period");
    }
}

static void *sender_main(void *arg)
{
    hd_wh_sender *snd = arg;
    hd_webhooks *wh = snd->wh;
    for (;;) {
        uint64_t now = hd_mono_ms();
        bool stopping = atomic_load(&wh->stopping);
        uint64_t next = run_timers(snd, now, stopping);
        HD_WH_EACH(ep, snd->eps, next_owned) {
            uint64_t d = ep_service(snd, ep, now, stopping);
            next = d < next ? d : next;
        }
        int running = 0;
        curl_multi_perform(snd->multi, &running);
        if (drain_done(snd))
            continue; /* a finished request may let the next one start */
        now = hd_mono_ms();
        if (stopping && flush_done(snd, now))
            break;
        uint64_t cap = now + (stopping ? 10 : 1000);
        next = next < cap ? next : cap;
        curl_multi_poll(snd->multi, NULL, 0, next > now ? (int)(next - now) : 0, NULL);
    }
    abandon(snd);
    return NULL;
}

int hd_webhooks__senders_start(hd_webhooks *wh)
{
    for (unsigned i = 0; i < wh->n_senders; i++) {
        hd_wh_sender *snd = &wh->senders[i];
        snd->wh = wh;
        snd->index = i;
        snd->rng = (hd_mono_us() ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull)) | 1;
        snd->multi = curl_multi_init();
        if (!snd->multi)
            return HD_EIO;
    }
    for (unsigned i = 0; i < wh->n_senders; i++) {
        if (pthread_create(&wh->senders[i].thread, NULL, sender_main, &wh->senders[i]) != 0)
            return HD_ETHREAD;
        wh->senders[i].started = true;
    }
    return 0;
}

void hd_webhooks__senders_join(hd_webhooks *wh)
{
    for (unsigned i = 0; wh->senders && i < wh->n_senders; i++) {
        hd_wh_sender *snd = &wh->senders[i];
        if (snd->started)
            pthread_join(snd->thread, NULL);
        snd->started = false;
        if (snd->multi)
            curl_multi_cleanup(snd->multi);
        snd->multi = NULL;
    }
}

void hd_webhooks__wake(hd_webhooks *wh, unsigned sender)
{
    if (sender < wh->n_senders && wh->senders[sender].multi)
        curl_multi_wakeup(wh->senders[sender].multi);
}
