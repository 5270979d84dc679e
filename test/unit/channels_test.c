/* channels_test.c - the channel registry: counts, presence dedup, member
 * limit, cache, lifetime, and concurrent join/leave from several threads
 * (run under ThreadSanitizer by `make test`). */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "channels/channels.h"

static hd_member member(const char *key, const char *id_json, const char *info)
{
    hd_member m = {key, strlen(key), id_json, strlen(id_json), info, info ? strlen(info) : 0};
    return m;
}

static void test_counts_and_lifetime(void)
{
    hd_registry *r = hd_registry_create(2);
    hd_channel *ch = hd_registry_acquire(r, "news", 4, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
    CU_ASSERT_STRING_EQUAL(hd_channel_name(ch), "news");
    hd_join_result jr;
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, NULL, 0, NULL, &jr), 0);
    CU_ASSERT_TRUE(jr.occupied);
    hd_channel_ref(r, ch);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 1, NULL, 0, NULL, &jr), 0);
    CU_ASSERT_FALSE(jr.occupied);
    CU_ASSERT_EQUAL(jr.subscribers, 2);
    uint32_t per[2];
    hd_channel_thread_counts(ch, per, 2);
    CU_ASSERT_EQUAL(per[0], 1);
    CU_ASSERT_EQUAL(per[1], 1);
    hd_leave_result lr;
    hd_channel_leave(ch, 0, NULL, 0, &lr);
    CU_ASSERT_FALSE(lr.vacated);
    hd_registry_release(r, ch);
    hd_channel_leave(ch, 1, NULL, 0, &lr);
    CU_ASSERT_TRUE(lr.vacated);
    CU_ASSERT_EQUAL(hd_registry_channel_count(r), 1);
    hd_registry_release(r, ch);
    CU_ASSERT_EQUAL(hd_registry_channel_count(r), 0);
    CU_ASSERT_PTR_NULL(hd_registry_acquire(r, "news", 4, false));
    hd_registry_destroy(r);
}

static void test_presence_dedup(void)
{
    hd_registry *r = hd_registry_create(1);
    const char *name = "presence-room";
    hd_channel *ch = hd_registry_acquire(r, name, strlen(name), true);
    hd_channel_ref(r, ch);
    hd_channel_ref(r, ch);
    hd_member a1 = member("42", "42", "{\"name\":\"first\"}");
    hd_member a2 = member("42", "42", "{\"name\":\"second\"}");
    hd_member b = member("b", "\"b\"", NULL);
    hd_join_result jr;
    hd_buf snap;
    hd_buf_init(&snap);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &a1, 2, NULL, &jr), 0);
    CU_ASSERT_TRUE(jr.member_added);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &a2, 2, NULL, &jr), 0);
    CU_ASSERT_FALSE(jr.member_added);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &b, 2, &snap, &jr), 0);
    CU_ASSERT_TRUE(jr.member_added);
    CU_ASSERT_PTR_NOT_NULL(strstr(snap.data, "\"count\":2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(snap.data, "\"42\":{\"name\":\"first\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(snap.data, "\"b\":null"));
    hd_member c = member("c", "\"c\"", NULL);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &c, 2, NULL, &jr), HD_ELIMIT);
    uint32_t subs, users;
    hd_channel_counts(ch, &subs, &users);
    CU_ASSERT_EQUAL(subs, 3);
    CU_ASSERT_EQUAL(users, 2);
    hd_leave_result lr;
    hd_channel_leave(ch, 0, "42", 2, &lr);
    CU_ASSERT_FALSE(lr.member_removed);
    CU_ASSERT_TRUE(hd_channel_has_member(ch, "42", 2));
    hd_channel_leave(ch, 0, "42", 2, &lr);
    CU_ASSERT_TRUE(lr.member_removed);
    CU_ASSERT_FALSE(hd_channel_has_member(ch, "42", 2));
    hd_buf users_json;
    hd_buf_init(&users_json);
    hd_channel_users_json(ch, &users_json);
    CU_ASSERT_STRING_EQUAL(users_json.data, "{\"users\":[{\"id\":\"b\"}]}");
    hd_channel_leave(ch, 0, "b", 1, &lr);
    CU_ASSERT_TRUE(lr.vacated && lr.member_removed);
    for (int i = 0; i < 3; i++)
        hd_registry_release(r, ch);
    CU_ASSERT_EQUAL(hd_registry_channel_count(r), 0);
    hd_buf_deinit(&snap);
    hd_buf_deinit(&users_json);
    hd_registry_destroy(r);
}

/* Several leaves under one lock hold: each result is what that leave did. */
static void test_leave_many(void)
{
    hd_registry *r = hd_registry_create(2);
    const char *name = "presence-batch";
    hd_channel *ch = hd_registry_acquire(r, name, strlen(name), true);
    hd_member u1 = member("1", "1", NULL), u2 = member("2", "2", NULL);
    hd_join_result jr;
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &u1, 0, NULL, &jr), 0);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 1, &u1, 0, NULL, &jr), 0);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 1, &u2, 0, NULL, &jr), 0);
    hd_leave_req reqs[3] = {{1, "1", 1}, {0, "1", 1}, {1, "2", 1}};
    hd_leave_result res[3];
    hd_channel_leave_many(ch, reqs, 3, res);
    CU_ASSERT_TRUE(!res[0].member_removed && !res[0].vacated && res[0].subscribers == 2);
    CU_ASSERT_TRUE(res[1].member_removed && !res[1].vacated && res[1].subscribers == 1);
    CU_ASSERT_TRUE(res[2].member_removed && res[2].vacated && res[2].subscribers == 0);
    uint32_t per_thread[2];
    hd_channel_thread_counts(ch, per_thread, 2);
    CU_ASSERT_TRUE(per_thread[0] == 0 && per_thread[1] == 0);
    CU_ASSERT_FALSE(hd_channel_has_member(ch, "1", 1));
    hd_registry_release(r, ch);
    CU_ASSERT_EQUAL(hd_registry_channel_count(r), 0);
    hd_registry_destroy(r);
}

static void test_cache_keeps_channel(void)
{
    hd_registry *r = hd_registry_create(1);
    hd_channel *ch = hd_registry_acquire(r, "cache-x", 7, true);
    CU_ASSERT_TRUE(hd_channel_get_type(ch).cache);
    hd_buf b;
    hd_buf_init(&b);
    CU_ASSERT_FALSE(hd_channel_cache_load(ch, 1000, &b, NULL));
    hd_channel_cache_store(ch, "{\"event\":\"e\"}", 13, hd_mono_ms() + 60000);
    hd_registry_release(r, ch);
    CU_ASSERT_EQUAL(hd_registry_channel_count(r), 1); /* kept for its cache */
    ch = hd_registry_acquire(r, "cache-x", 7, false);
    uint64_t ttl = 0;
    CU_ASSERT_TRUE(hd_channel_cache_load(ch, hd_mono_ms(), &b, &ttl));
    CU_ASSERT_STRING_EQUAL(b.data, "{\"event\":\"e\"}");
    CU_ASSERT_TRUE(ttl > 0 && ttl <= 60000);
    hd_registry_release(r, ch);
    hd_registry_sweep(r, hd_mono_ms() + 120000); /* after expiry */
    CU_ASSERT_EQUAL(hd_registry_channel_count(r), 0);
    hd_buf_deinit(&b);
    hd_registry_destroy(r);
}

/* The scrape-time census: every channel in the table by type, and the
 * distinct presence users summed over the presence channels. */
static void test_census(void)
{
    static const char *const names[] = {
        "news", "private-a", "private-encrypted-b", "presence-c", "presence-cache-d", "cache-e",
        "private-cache-f", "#server-to-user-7", "#watch-7",
    };
    enum { N = sizeof names / sizeof names[0] };
    hd_registry *r = hd_registry_create(1);
    hd_channel *chs[N];
    for (size_t i = 0; i < N; i++)
        chs[i] = hd_registry_acquire(r, names[i], strlen(names[i]), true);
    hd_join_result jr;
    hd_member u1 = member("1", "1", NULL), u2 = member("2", "\"2\"", "{}");
    CU_ASSERT_EQUAL(hd_channel_join(chs[3], 0, &u1, 0, NULL, &jr), 0);
    CU_ASSERT_EQUAL(hd_channel_join(chs[3], 0, &u1, 0, NULL, &jr), 0); /* same user, second socket */
    CU_ASSERT_EQUAL(hd_channel_join(chs[3], 0, &u2, 0, NULL, &jr), 0);
    CU_ASSERT_EQUAL(hd_channel_join(chs[4], 0, &u1, 0, NULL, &jr), 0);
    hd_census c;
    hd_registry_census(r, &c);
    CU_ASSERT_EQUAL(c.channels[HD_CENSUS_PUBLIC], 1);
    CU_ASSERT_EQUAL(c.channels[HD_CENSUS_PRIVATE], 1);
    CU_ASSERT_EQUAL(c.channels[HD_CENSUS_ENCRYPTED], 1);
    CU_ASSERT_EQUAL(c.channels[HD_CENSUS_PRESENCE], 1);
    CU_ASSERT_EQUAL(c.channels[HD_CENSUS_CACHE], 3); /* presence-cache-, cache-, private-cache- */
    CU_ASSERT_EQUAL(c.channels[HD_CENSUS_INTERNAL], 2);
    CU_ASSERT_EQUAL(c.presence_members, 3); /* 2 users in presence-c, 1 in presence-cache-d */
    size_t total = 0;
    for (unsigned t = 0; t < HD_CENSUS_TYPES; t++)
        total += c.channels[t];
    CU_ASSERT_EQUAL(total, hd_registry_channel_count(r));
    CU_ASSERT_STRING_EQUAL(hd_census_type_label(HD_CENSUS_ENCRYPTED), "encrypted");
    CU_ASSERT_STRING_EQUAL(hd_census_type_label(HD_CENSUS_INTERNAL), "internal");
    hd_leave_result lr;
    hd_channel_leave(chs[3], 0, "2", 1, &lr);
    hd_registry_census(r, &c);
    CU_ASSERT_EQUAL(c.presence_members, 2);
    hd_channel_leave(chs[3], 0, "1", 1, &lr);
    hd_channel_leave(chs[3], 0, "1", 1, &lr);
    hd_channel_leave(chs[4], 0, "1", 1, &lr);
    for (size_t i = 0; i < N; i++)
        hd_registry_release(r, chs[i]);
    hd_registry_census(r, &c);
    CU_ASSERT_EQUAL(c.presence_members, 0);
    for (unsigned t = 0; t < HD_CENSUS_TYPES; t++)
        CU_ASSERT_EQUAL(c.channels[t], 0);
    hd_registry_destroy(r);
}

static void count_visit(hd_channel *ch, void *arg)
{
    (void)ch;
    (*(int *)arg)++;
}

static void test_foreach_prefix(void)
{
    hd_registry *r = hd_registry_create(1);
    const char *names[] = {"presence-a", "presence-b", "public", "private-x"};
    hd_channel *chs[4];
    hd_join_result jr;
    for (int i = 0; i < 4; i++) {
        chs[i] = hd_registry_acquire(r, names[i], strlen(names[i]), true);
        hd_member m = member("u", "\"u\"", NULL);
        hd_channel_join(chs[i], 0, &m, 0, NULL, &jr);
    }
    int n = 0;
    hd_registry_foreach_occupied(r, "presence-", count_visit, &n);
    CU_ASSERT_EQUAL(n, 2);
    n = 0;
    hd_registry_foreach_occupied(r, NULL, count_visit, &n);
    CU_ASSERT_EQUAL(n, 4);
    for (int i = 0; i < 4; i++) {
        hd_leave_result lr;
        hd_channel_leave(chs[i], 0, "u", 1, &lr);
        hd_registry_release(r, chs[i]);
    }
    CU_ASSERT_EQUAL(hd_registry_channel_count(r), 0);
    hd_registry_destroy(r);
}

/* Several threads join and leave a few shared channels (presence and
 * public) as different users; every transition must be seen exactly as
 * often as it happened and the registry must end empty. */
#define RACE_THREADS 4
#define RACE_ROUNDS 2000

typedef struct race_arg {
    hd_registry *r;
    unsigned thread;
    unsigned added, removed, occupied, vacated;
} race_arg;

static void *race(void *p)
{
    race_arg *a = p;
    static const char *names[] = {"presence-race", "public-race"};
    char key[16];
    snprintf(key, sizeof key, "u%u", a->thread % 2); /* two users shared by four threads */
    for (int i = 0; i < RACE_ROUNDS; i++) {
        const char *name = names[i % 2];
        hd_channel *ch = hd_registry_acquire(a->r, name, strlen(name), true);
        hd_member m = member(key, key, "{}");
        hd_join_result jr;
        CU_ASSERT_EQUAL(hd_channel_join(ch, a->thread, &m, 0, NULL, &jr), 0);
        a->added += jr.member_added;
        a->occupied += jr.occupied;
        hd_leave_result lr;
        hd_channel_leave(ch, a->thread, key, strlen(key), &lr);
        a->removed += lr.member_removed;
        a->vacated += lr.vacated;
        hd_registry_release(a->r, ch);
    }
    return NULL;
}

static void test_concurrent_join_leave(void)
{
    hd_registry *r = hd_registry_create(RACE_THREADS);
    pthread_t t[RACE_THREADS];
    race_arg args[RACE_THREADS];
    for (unsigned i = 0; i < RACE_THREADS; i++) {
        args[i] = (race_arg){.r = r, .thread = i};
        pthread_create(&t[i], NULL, race, &args[i]);
    }
    unsigned added = 0, removed = 0, occupied = 0, vacated = 0;
    for (unsigned i = 0; i < RACE_THREADS; i++) {
        pthread_join(t[i], NULL);
        added += args[i].added;
        removed += args[i].removed;
        occupied += args[i].occupied;
        vacated += args[i].vacated;
    }
    CU_ASSERT_EQUAL(added, removed);
    CU_ASSERT_EQUAL(occupied, vacated);
    CU_ASSERT_TRUE(occupied >= 1);
    CU_ASSERT_EQUAL(hd_registry_channel_count(r), 0);
    hd_registry_destroy(r);
}

/* A node's absolute state of one user, as the Redis adapter asserts it. */
static void test_member_sockets(void)
{
    hd_registry *r = hd_registry_create(1);
    const char *name = "presence-sockets";
    hd_channel *ch = hd_registry_acquire(r, name, strlen(name), true);
    hd_channel_ref(r, ch);
    hd_member a = member("7", "7", "{\"n\":1}"), b = member("x", "\"x\"", NULL);
    hd_join_result jr;
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &a, 0, NULL, &jr), 0);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &a, 0, NULL, &jr), 0);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &b, 0, NULL, &jr), 0);
    hd_buf id, info;
    hd_buf_init(&id);
    hd_buf_init(&info);
    uint32_t n = 99;
    CU_ASSERT_TRUE(hd_channel_member_sockets(ch, "7", 1, &n, &id, &info));
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(id.data, "7");
    CU_ASSERT_STRING_EQUAL(info.data, "{\"n\":1}");
    id.len = info.len = 0;
    CU_ASSERT_TRUE(hd_channel_member_sockets(ch, "x", 1, &n, &id, &info));
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(id.data, "\"x\"");
    CU_ASSERT_EQUAL(info.len, 0); /* no user_info: nothing appended */
    CU_ASSERT_FALSE(hd_channel_member_sockets(ch, "nobody", 6, &n, NULL, NULL));
    CU_ASSERT_EQUAL(n, 0);
    hd_leave_result lr;
    hd_channel_leave(ch, 0, "7", 1, &lr);
    CU_ASSERT_TRUE(hd_channel_member_sockets(ch, "7", 1, &n, NULL, NULL));
    CU_ASSERT_EQUAL(n, 1);
    hd_buf snap;
    hd_buf_init(&snap);
    hd_channel_presence_json(ch, &snap);
    CU_ASSERT_PTR_NOT_NULL(strstr(snap.data, "\"count\":2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(snap.data, "\"7\":{\"n\":1}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(snap.data, "\"x\":null"));
    hd_channel_leave(ch, 0, "7", 1, &lr);
    hd_channel_leave(ch, 0, "x", 1, &lr);
    CU_ASSERT_TRUE(lr.vacated);
    snap.len = 0;
    hd_channel_presence_json(ch, &snap);
    CU_ASSERT_STRING_EQUAL(snap.data, "{\"presence\":{\"ids\":[],\"hash\":{},\"count\":0}}");
    hd_buf_deinit(&snap);
    hd_buf_deinit(&id);
    hd_buf_deinit(&info);
    hd_registry_release(r, ch);
    hd_registry_release(r, ch);
    hd_registry_destroy(r);
}

typedef struct visit_log {
    hd_channel *ch;
    unsigned calls;
    uint32_t sockets_of_7, sockets_of_x;
    bool info_of_7_ok, x_without_info, lock_free;
} visit_log;

/* Records what it saw; takes the channel lock itself (through a count) to
 * show that no channel lock is held during the callback. */
static void visit_member(const hd_member *m, uint32_t sockets, void *arg)
{
    visit_log *v = arg;
    v->calls++;
    uint32_t subs = 0;
    hd_channel_counts(v->ch, &subs, NULL);
    v->lock_free = subs == 3;
    if (strcmp(m->user_key, "7") == 0) {
        v->sockets_of_7 = sockets;
        v->info_of_7_ok = m->user_info_json && strcmp(m->user_info_json, "{\"n\":1}") == 0 &&
                          m->user_info_json_len == 7 && strcmp(m->user_id_json, "7") == 0;
    } else if (strcmp(m->user_key, "x") == 0) {
        v->sockets_of_x = sockets;
        v->x_without_info = m->user_info_json == NULL && strcmp(m->user_id_json, "\"x\"") == 0;
    }
}

static void test_foreach_member(void)
{
    hd_registry *r = hd_registry_create(1);
    const char *name = "presence-visit";
    hd_channel *ch = hd_registry_acquire(r, name, strlen(name), true);
    hd_member a = member("7", "7", "{\"n\":1}"), b = member("x", "\"x\"", NULL);
    hd_join_result jr;
    visit_log v = {.ch = ch};
    hd_channel_foreach_member(ch, visit_member, &v); /* no members: no call */
    CU_ASSERT_EQUAL(v.calls, 0);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &a, 0, NULL, &jr), 0);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &a, 0, NULL, &jr), 0);
    CU_ASSERT_EQUAL(hd_channel_join(ch, 0, &b, 0, NULL, &jr), 0);
    hd_channel_foreach_member(ch, visit_member, &v);
    CU_ASSERT_EQUAL(v.calls, 2);
    CU_ASSERT_EQUAL(v.sockets_of_7, 2);
    CU_ASSERT_EQUAL(v.sockets_of_x, 1);
    CU_ASSERT_TRUE(v.info_of_7_ok);
    CU_ASSERT_TRUE(v.x_without_info);
    CU_ASSERT_TRUE(v.lock_free);
    hd_leave_req reqs[3] = {{0, "7", 1}, {0, "7", 1}, {0, "x", 1}};
    hd_leave_result res[3];
    hd_channel_leave_many(ch, reqs, 3, res);
    hd_registry_release(r, ch);
    hd_registry_destroy(r);
}

void hd_test_suite_channels(void)
{
    CU_pSuite s = CU_add_suite("channels", NULL, NULL);
    CU_add_test(s, "counts, per-thread counts and lifetime", test_counts_and_lifetime);
    CU_add_test(s, "presence dedup, first user_info wins, member limit", test_presence_dedup);
    CU_add_test(s, "leave_many: one lock, a result per leave", test_leave_many);
    CU_add_test(s, "cache keeps the channel until it expires", test_cache_keeps_channel);
    CU_add_test(s, "foreach occupied with prefix", test_foreach_prefix);
    CU_add_test(s, "census: channels by type, presence members", test_census);
    CU_add_test(s, "concurrent join/leave from several threads", test_concurrent_join_leave);
    CU_add_test(s, "member_sockets and presence_json: one user's node state", test_member_sockets);
    CU_add_test(s, "foreach_member: copies, callback without the lock", test_foreach_member);
}
