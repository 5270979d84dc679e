/* seam.c - the small parts of the adapter seam (adapter.h) that every
 * room of src/adapter shares: replies, and what an adapter may read of its
 * server. Here rather than in ws/ so that the adapters depend on the seam,
 * not on the transport.
 *
 * THREADING: any thread.
 */
#include "adapter/adapter_internal.h"

hd_ad_reply *hd_ad_reply_new(hd_ad_caller to)
{
    hd_ad_reply *r = hd_calloc(1, sizeof *r);
    r->to = to;
    hd_buf_init(&r->presence);
    hd_buf_init(&r->cache);
    hd_buf_init(&r->body);
    return r;
}

void hd_ad_reply_free(hd_ad_reply *r)
{
    if (!r)
        return;
    hd_buf_deinit(&r->presence);
    hd_buf_deinit(&r->cache);
    hd_buf_deinit(&r->body);
    hd_free(r);
}

const hd_config *hd_server_config(const hd_server *srv)
{
    return srv->cfg;
}

uint64_t hd_server_node_num(const hd_server *srv)
{
    return srv->node_num;
}

hd_adapter *hd_server_adapter(hd_server *srv)
{
    return srv->adapter;
}
