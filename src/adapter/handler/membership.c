/* membership.c - joins and leaves of the registry shared by subscribe,
 * signin, unsubscribe and the disconnect cleanup, each followed by the
 * adapter's joined / left under the channel's order lock: the adapter
 * decides what the change crossed and announces it (local: the registry's
 * result; Redis: the cluster's, decided once for every node).
 *
 * THREADING: any thread (io threads on subscribe and unsubscribe, cleanup
 * workers on disconnect).
 */
#include <string.h>

#include "adapter/adapter_internal.h"
#include "cleanup/cleanup.h"

void hd_membership_joined(hd_session *s, hd_channel *ch, const hd_join_result *jr, const hd_member *member,
                          uint64_t wait_token)
{
    hd_adapter *a = s->io->srv->adapter;
    a->ops->joined(a, s->app, ch, jr, member, s->socket_id, (hd_ad_caller){s->io->index, wait_token});
}

/* The channel lock is held once for all n leaves (hd_channel_leave_many);
 * the order lock around it keeps this group's announcements in order with
 * joins and other leaves of the channel. */
void hd_membership_leave_many(hd_server *srv, hd_app *app, hd_channel *ch, const hd_cleanup_leave *leaves,
                              size_t n)
{
    enum { SMALL = 8 };
    hd_leave_req reqs_small[SMALL], *reqs = n <= SMALL ? reqs_small : hd_malloc(n * sizeof *reqs);
    hd_leave_result res_small[SMALL], *res = n <= SMALL ? res_small : hd_malloc(n * sizeof *res);
    const char *keys_small[SMALL], **keys = n <= SMALL ? keys_small : hd_malloc(n * sizeof *keys);
    const char *ids_small[SMALL], **ids = n <= SMALL ? ids_small : hd_malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        reqs[i] = (hd_leave_req){leaves[i].thread, leaves[i].user_key,
                                 leaves[i].user_key ? strlen(leaves[i].user_key) : 0};
        keys[i] = leaves[i].user_key;
        ids[i] = leaves[i].user_id_json;
    }
    hd_channel_order_lock(ch);
    hd_channel_leave_many(ch, reqs, n, res);
    srv->adapter->ops->left(srv->adapter, app, ch, res, keys, ids, n);
    hd_channel_order_unlock(ch);
    if (reqs != reqs_small) {
        hd_free(reqs);
        hd_free(res);
        hd_free(keys);
        hd_free(ids);
    }
    for (size_t i = 0; i < n; i++)
        hd_registry_release(app->registry, ch); /* after unlocking: the last may free ch */
}

void hd_membership_leave(hd_server *srv, hd_app *app, unsigned thread, hd_channel *ch, const char *user_key,
                         const char *user_id_json)
{
    hd_cleanup_leave leave = {thread, NULL, user_key, user_id_json};
    hd_membership_leave_many(srv, app, ch, &leave, 1);
}
