/* channels_internal.h - the registry's private structs, shared by
 * registry.c (the table) and channel.c (one channel's state). */
#ifndef HD_CHANNELS_INTERNAL_H
#define HD_CHANNELS_INTERNAL_H

#include <pthread.h>

#include "channels.h"
#include "common/map.h"

typedef struct hd_presence_member {
    uint32_t sockets;     /* this user's subscriptions in the channel */
    char *user_id_json;   /* raw JSON, type kept */
    char *user_info_json; /* raw JSON or NULL; the first one received wins */
} hd_presence_member;

struct hd_channel {
    hd_map_entry *entry;  /* its slot in the shard map; the key is the name */
    unsigned shard;
    uint32_t refs;        /* {shard lock} */
    hd_channel_type type; /* immutable */

    pthread_mutex_t order; /* see hd_channel_order_lock() */
    pthread_mutex_t lock;
    uint32_t subscribers;                   /* {lock} */
    uint32_t per_thread[HD_MAX_IO_THREADS]; /* {lock} */
    hd_map members;                         /* {lock} user_key -> hd_presence_member */
    char *cache_frame;                      /* {lock} */
    size_t cache_len;                       /* {lock} */
    uint64_t cache_expires_ms;              /* {lock} */
    uint64_t count_sent_ms;                 /* {lock} */
    bool cache_miss_reported;               /* {lock} since the cache was last filled */
};

void hd_channels__member_free(hd_presence_member *m);

#endif /* HD_CHANNELS_INTERNAL_H */
