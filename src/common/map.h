/* map.h - string-keyed chained hash map owned by one thread or one lock.
 *
 * DESIGN
 * ------
 * Keys are copied into the entry (one allocation per entry: entry + key).
 * Values are opaque pointers; the map never frees them. Grows by doubling
 * at load factor 1. Iteration order is unspecified; removing the current
 * entry while iterating with hd_map_next is allowed.
 *
 * THREADING
 * ---------
 * Not synchronised: the owner (an io thread, or whoever holds the lock
 * named next to the map) is the only caller.
 */
#ifndef HD_MAP_H
#define HD_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hd_map_entry {
    struct hd_map_entry *next;
    void *value;
    uint32_t hash;
    uint32_t key_len;
    char key[]; /* NUL-terminated */
} hd_map_entry;

typedef struct hd_map {
    hd_map_entry **buckets;
    size_t n_buckets;
    size_t count;
} hd_map;

uint32_t hd_hash(const char *s, size_t len);

void hd_map_init(hd_map *m);
/* Frees entries, never values. */
void hd_map_deinit(hd_map *m);
void *hd_map_get(const hd_map *m, const char *key, size_t len);
hd_map_entry *hd_map_find(const hd_map *m, const char *key, size_t len);
/* Insert key (must be absent); returns the new entry, whose key is the map's copy. */
hd_map_entry *hd_map_insert(hd_map *m, const char *key, size_t len, void *value);
/* Remove key; returns its value, or NULL when absent. */
void *hd_map_remove(hd_map *m, const char *key, size_t len);
/* Iterate: it starts zeroed; returns NULL at the end. */
typedef struct hd_map_iter {
    size_t bucket;
    hd_map_entry *next;
} hd_map_iter;
hd_map_entry *hd_map_next(const hd_map *m, hd_map_iter *it);

#endif /* HD_MAP_H */
