/* queue.c - the bounded FIFO of events waiting for one endpoint.
 *
 * DESIGN
 * ------
 * A ring of event references, oldest first, that grows by doubling up to
 * its limit (webhooks.queue_size), so an idle endpoint costs a few slots
 * and a failing one at most `limit` pointers plus the events themselves.
 * Pending events and events being retried share the ring: the batch in
 * flight is always its head, and it stays there until the request ends.
 *
 * OVERFLOW POLICY: when the ring is full, the OLDEST event that is not in
 * flight is dropped to make room for the new one. Webhooks describe state
 * changes; when an endpoint has been down long enough to fill its queue,
 * the newest events are the ones that still describe the present (the
 * last channel_vacated of a channel matters, an occupied/vacated pair from
 * minutes ago does not), and the oldest are the closest to their retry
 * expiry anyway. Dropping the newest instead would leave the receiver
 * believing a stale state forever (a dangling "occupied"). Only when every
 * entry is in flight (a queue smaller than a batch) is the new event
 * refused. The caller counts every drop (reason queue_full).
 *
 * THREADING
 * ---------
 * Not synchronised: the owning endpoint's lock guards every call.
 */
#include <string.h>

#include "webhooks_internal.h"

#define MIN_ALLOC 16u

void hd_webhooks__queue_init(hd_wh_queue *q, uint32_t limit)
{
    *q = (hd_wh_queue){.limit = limit ? limit : 1};
}

void hd_webhooks__queue_deinit(hd_wh_queue *q)
{
    while (q->count)
        hd_webhooks__event_unref(hd_webhooks__queue_remove(q, 0));
    hd_free(q->slots);
    *q = (hd_wh_queue){.limit = q->limit};
}

static uint32_t slot(const hd_wh_queue *q, uint32_t i)
{
    return (q->head + i) & (q->alloc - 1);
}

hd_wh_event *hd_webhooks__queue_at(const hd_wh_queue *q, uint32_t i)
{
    hd_assert(i < q->count);
    return q->slots[slot(q, i)];
}

static void grow(hd_wh_queue *q)
{
    uint32_t n = q->alloc ? q->alloc * 2 : MIN_ALLOC;
    hd_wh_event **s = hd_malloc((size_t)n * sizeof *s);
    for (uint32_t i = 0; i < q->count; i++)
        s[i] = q->slots[slot(q, i)];
    hd_free(q->slots);
    q->slots = s;
    q->alloc = n;
    q->head = 0;
}

hd_wh_event *hd_webhooks__queue_remove(hd_wh_queue *q, uint32_t i)
{
    hd_assert(i < q->count);
    hd_wh_event *ev = q->slots[slot(q, i)];
    /* close the gap from the head side: O(i), i is small (at most a batch) */
    for (uint32_t k = i; k > 0; k--)
        q->slots[slot(q, k)] = q->slots[slot(q, k - 1)];
    q->head = (q->head + 1) & (q->alloc - 1);
    q->count--;
    return ev;
}

hd_wh_event *hd_webhooks__queue_push(hd_wh_queue *q, hd_wh_event *ev, uint32_t protect)
{
    hd_wh_event *dropped = NULL;
    if (q->count >= q->limit) {
        if (protect >= q->count)
            return ev; /* everything is in flight: refuse the newest */
        dropped = hd_webhooks__queue_remove(q, protect);
    }
    if (q->count == q->alloc)
        grow(q);
    q->slots[slot(q, q->count)] = ev;
    q->count++;
    return dropped;
}
