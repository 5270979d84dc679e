/* admission.c - rate limits on new WebSocket connections: one token
 * bucket for the node (limits.new_connections_per_second) and one per
 * source address (limits.new_connections_per_ip_per_second).
 *
 * DESIGN
 * ------
 * The per-address buckets live in a fixed, direct-mapped table
 * (ADMISSION_SLOTS slots, hashed by address): memory is bounded whatever
 * the number of addresses, and an address that collides with another
 * simply gets a fresh, full bucket. Collisions can therefore only make the
 * limit more lenient, never refuse a client that is within it. Buckets
 * hold a burst of one second's worth (at least one token).
 *
 * Tokens are kept in thousandths so that low rates refill smoothly.
 *
 * THREADING: any io thread; the node bucket and each stripe of the table
 * have their own mutex, held for a few instructions.
 */
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "adapter/adapter_internal.h"

#define ADMISSION_SLOTS 8192
#define ADMISSION_STRIPES 16

typedef struct bucket {
    uint32_t key; /* peer hash + 1; 0 = empty slot */
    uint32_t milli_tokens;
    uint64_t refill_ms;
} bucket;

struct hd_admission {
    pthread_mutex_t node_lock;
    bucket node;
    pthread_mutex_t stripe[ADMISSION_STRIPES];
    bucket slots[ADMISSION_SLOTS];
};

hd_admission *hd_admission_create(void)
{
    hd_admission *a = hd_calloc(1, sizeof *a);
    pthread_mutex_init(&a->node_lock, NULL);
    for (unsigned i = 0; i < ADMISSION_STRIPES; i++)
        pthread_mutex_init(&a->stripe[i], NULL);
    return a;
}

void hd_admission_destroy(hd_admission *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->node_lock);
    for (unsigned i = 0; i < ADMISSION_STRIPES; i++)
        pthread_mutex_destroy(&a->stripe[i]);
    hd_free(a);
}

/* Take one token from b (rate per second, burst of one second). */
static bool bucket_take(bucket *b, uint32_t rate, uint64_t now)
{
    uint64_t cap = (uint64_t)rate * 1000u;
    if (!b->refill_ms) {
        b->refill_ms = now;
        b->milli_tokens = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
    }
    uint64_t tokens = b->milli_tokens + (now - b->refill_ms) * rate;
    b->refill_ms = now;
    if (tokens > cap)
        tokens = cap;
    bool ok = tokens >= 1000;
    if (ok)
        tokens -= 1000;
    b->milli_tokens = (uint32_t)(tokens > UINT32_MAX ? UINT32_MAX : tokens);
    return ok;
}

static bool take_node(hd_admission *a, uint32_t rate, uint64_t now)
{
    pthread_mutex_lock(&a->node_lock);
    bool ok = bucket_take(&a->node, rate, now);
    pthread_mutex_unlock(&a->node_lock);
    return ok;
}

static bool take_peer(hd_admission *a, uint32_t peer, uint32_t rate, uint64_t now)
{
    uint32_t slot = peer % ADMISSION_SLOTS;
    pthread_mutex_t *lock = &a->stripe[slot % ADMISSION_STRIPES];
    pthread_mutex_lock(lock);
    bucket *b = &a->slots[slot];
    if (b->key != peer + 1u)
        *b = (bucket){.key = peer + 1u};
    bool ok = bucket_take(b, rate, now);
    pthread_mutex_unlock(lock);
    return ok;
}

bool hd_admission_take(hd_server *srv, uint32_t peer)
{
    uint32_t node_rate = srv->cfg->limits.new_connections_per_second;
    uint32_t peer_rate = srv->cfg->limits.new_connections_per_ip_per_second;
    if (!node_rate && !peer_rate)
        return true;
    uint64_t now = hd_mono_ms();
    if (peer_rate && !take_peer(srv->admission, peer, peer_rate, now))
        return false;
    return !node_rate || take_node(srv->admission, node_rate, now);
}

/* FNV-1a over the address bytes; IPv4-mapped IPv6 hashes as IPv4. */
uint32_t hd_admission_peer_hash(const struct sockaddr_storage *ss)
{
    const unsigned char *p = NULL;
    size_t n = 0;
    if (ss->ss_family == AF_INET) {
        p = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
        n = 4;
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        p = a6->s6_addr;
        n = 16;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            p += 12;
            n = 4;
        }
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}
