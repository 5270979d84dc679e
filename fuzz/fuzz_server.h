/* fuzz_server.h - a real herald server without sockets, for the WebSocket
 * and HTTP fuzz targets: apps, registries, the local adapter, cleanup (run
 * synchronously) and two io threads' state, driven by the harness on its
 * own thread, plus a few emulated client connections.
 *
 * DESIGN
 * ------
 * hd_server_create() would open lws contexts and listening sockets, so the
 * world builds the same struct by hand (fuzz_server.c mirrors it) and
 * tears it down with the real hd_server_destroy(). A connection is an
 * hd_session fed through the real lws callback steps: hd_session_established
 * (handshake checks), hd_session_receive (fragments, size limit),
 * hd_session_writable and hd_session_closed. The lws functions those steps
 * call on a connection are linked to fuzz_server.c instead of lws
 * (-Wl,--wrap, fuzz/CMakeLists.txt): the "struct lws" is the hd_fuzz_conn.
 * Every frame herald writes is checked there: one JSON object, valid UTF-8.
 * After each pump the registry's counts (per channel, per io thread,
 * presence users) must match what the io threads' local indexes hold.
 *
 * Not covered: webhooks (a pool means sender threads and HTTP; the
 * webhook_payload target covers the payloads) and the idle tick.
 */
#ifndef HD_FUZZ_SERVER_H
#define HD_FUZZ_SERVER_H

#include "adapter/adapter_internal.h"
#include "fuzz_util.h"

#define HD_FUZZ_CONNS 4
#define HD_FUZZ_THREADS 2
/* node id of the world's server: socket ids are "100000.<n>", n counting
 * connections opened from 0, so seeds can carry real signatures */
#define HD_FUZZ_NODE_ID 100000u

typedef struct hd_fuzz_world hd_fuzz_world;

typedef struct hd_fuzz_conn {
    hd_session s; /* what lws keeps as the connection's per-session data */
    hd_fuzz_world *w;
    bool open;          /* ESTABLISHED ran, CLOSED has not */
    bool want_writable; /* lws_callback_on_writable() was asked */
    bool choked;        /* the socket takes nothing: no writable callbacks */
    bool first, final, binary; /* the piece of a frame being delivered */
    size_t remaining;          /* payload of that frame still to come */
    bool rx_binary;     /* the message being assembled */
    hd_buf rx;          /* its text so far: lws checks UTF-8 before herald sees it */
    char uri[512];      /* request target of the upgrade: path[?query] */
    char origin[256];   /* Origin header; "" = none */
} hd_fuzz_conn;

struct hd_fuzz_world {
    hd_server *srv;
    hd_fuzz_conn conns[HD_FUZZ_CONNS];
    /* the connection whose message the next pump answers, or NULL: no
     * client-* frame may be written to it then (client events are never
     * echoed; frames queued earlier for a choked socket wait for its unchoke) */
    hd_fuzz_conn *sender;
};

/* The config of these targets: app-id/app-key/app-secret (client events,
 * subscription_count), app-2/key-2/secret-2 (user authentication, origin
 * check, 2 connections, 3 client events per second, no client events) and
 * the disabled app-off/key-off; small limits so they are reached. */
void hd_fuzz_config(hd_config *cfg);

/* A fresh server on cfg with every connection open: 0-2 on app-key, 3 on
 * key-2 (origin https://ok.example); connection i is on io thread i % 2. */
hd_fuzz_world *hd_fuzz_world_new(const hd_config *cfg);
/* Close every connection, check that nothing is left subscribed, free. */
void hd_fuzz_world_free(hd_fuzz_world *w);

/* (Re)open connection i with this upgrade target and origin (NULL: its default). */
void hd_fuzz_open(hd_fuzz_world *w, unsigned i, const char *uri, const char *origin);
/* The client went away (LWS_CALLBACK_CLOSED). */
void hd_fuzz_close(hd_fuzz_world *w, unsigned i);
/* One WebSocket data frame from connection i (reopened first when closed),
 * handed over as lws does: in pieces of the protocol's rx buffer size. */
void hd_fuzz_frame(hd_fuzz_world *w, unsigned i, const char *data, size_t len, bool final, bool binary);
/* Connection i's socket stops / starts taking data. */
void hd_fuzz_choke(hd_fuzz_world *w, unsigned i, bool choked);
/* Run the io threads' work until nothing is left: inboxes, the end-of-turn
 * flush, writable callbacks, closes; then check the registry's counts
 * against the local indexes. */
void hd_fuzz_pump(hd_fuzz_world *w);

/* json with its auth filled in as connection i's client would have it
 * signed: pusher:subscribe (socket_id:channel[:channel_data]) or
 * pusher:signin (socket_id::user::user_data). NULL when json is not such
 * an event; otherwise a heap string the caller frees. */
char *hd_fuzz_sign_event(hd_fuzz_world *w, unsigned i, const char *json, size_t len);

#endif /* HD_FUZZ_SERVER_H */
