/* map.c - see map.h. THREADING: caller-synchronised. */
#include "map.h"

#include <string.h>

#include "common.h"

uint32_t hd_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a: short keys, no need for more */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

void hd_map_init(hd_map *m)
{
    m->buckets = NULL;
    m->n_buckets = 0;
    m->count = 0;
}

void hd_map_deinit(hd_map *m)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        hd_map_entry *e = m->buckets[i];
        while (e) {
            hd_map_entry *n = e->next;
            hd_free(e);
            e = n;
        }
    }
    hd_free(m->buckets);
    hd_map_init(m);
}

hd_map_entry *hd_map_find(const hd_map *m, const char *key, size_t len)
{
    if (!m->n_buckets)
        return NULL;
    uint32_t h = hd_hash(key, len);
    for (hd_map_entry *e = m->buckets[h & (m->n_buckets - 1)]; e; e = e->next)
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

void *hd_map_get(const hd_map *m, const char *key, size_t len)
{
    hd_map_entry *e = hd_map_find(m, key, len);
    return e ? e->value : NULL;
}

static void grow(hd_map *m)
{
    size_t n = m->n_buckets ? m->n_buckets * 2 : 8;
    hd_map_entry **b = hd_calloc(n, sizeof *b);
    for (size_t i = 0; i < m->n_buckets; i++) {
        hd_map_entry *e = m->buckets[i];
        while (e) {
            hd_map_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    hd_free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
}

hd_map_entry *hd_map_insert(hd_map *m, const char *key, size_t len, void *value)
{
    if (m->count >= m->n_buckets)
        grow(m);
    hd_map_entry *e = hd_malloc(sizeof *e + len + 1);
    e->hash = hd_hash(key, len);
    e->key_len = (uint32_t)len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->value = value;
    size_t i = e->hash & (m->n_buckets - 1);
    e->next = m->buckets[i];
    m->buckets[i] = e;
    m->count++;
    return e;
}

void *hd_map_remove(hd_map *m, const char *key, size_t len)
{
    if (!m->n_buckets)
        return NULL;
    uint32_t h = hd_hash(key, len);
    hd_map_entry **pp = &m->buckets[h & (m->n_buckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        hd_map_entry *e = *pp;
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) {
            void *v = e->value;
            *pp = e->next;
            hd_free(e);
            m->count--;
            return v;
        }
    }
    return NULL;
}

hd_map_entry *hd_map_next(const hd_map *m, hd_map_iter *it)
{
    while (!it->next) {
        if (it->bucket >= m->n_buckets)
            return NULL;
        it->next = m->buckets[it->bucket++];
    }
    hd_map_entry *e = it->next;
    it->next = e->next;
    return e;
}
