/* test_world.h - a real herald server without sockets for the unit suites
 * that drive the connection layer (handler, cleanup, http): apps,
 * registries, the local adapter, the cleanup pool and the io threads'
 * state, with emulated WebSocket connections whose sessions go through the
 * real lws callback steps (hd_session_established, hd_session_closed) and
 * the real handlers (hd_session_on_message).
 *
 * DESIGN
 * ------
 * hd_server_create() would open lws contexts and listening sockets, so the
 * world builds the server like the fuzz harness does (fuzz/fuzz_server.c):
 * hd_server__apps_create and hd_server__io_init, the local adapter and the
 * cleanup pool, and tears it down with the real hd_server_destroy(). The
 * lws functions the connection layer calls on a connection are linked to
 * test_world.c instead of lws (-Wl,--wrap, see CMakeLists.txt): the
 * "struct lws" of a session is its hd_tw_conn.
 *
 * Nothing is written to a socket: the frames a handler queues stay on the
 * session's outbound ring (s->outq) until the test reads them
 * (hd_tw_frame) or drops them (hd_tw_drop). Frames published on a channel
 * reach a session's ring when its io thread drains its inbox (hd_tw_pump).
 * Only the greeting is written (hd_session_established writes it at once,
 * as on a real socket): it is kept as conn->established_frame.
 *
 * Apps: "app-id" / "app-key" / "app-secret" (client events on,
 * subscription_count on), "app-2" / "key-2" / "secret-2" (client events
 * off) and the disabled "app-off" / "key-off" / "secret-off". Limits: 4
 * subscriptions per connection, 3 presence members per channel.
 *
 * THREADING
 * ---------
 * The test's thread, except where a test runs io threads' work on threads
 * of its own (each touching only the sessions of "its" io thread, as in
 * the server).
 */
#ifndef HD_TEST_WORLD_H
#define HD_TEST_WORLD_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/adapter_internal.h"

#define HD_TW_CONNS 64

typedef struct hd_tw hd_tw;

typedef struct hd_tw_conn {
    hd_session s;            /* what lws keeps as the connection's per-session data */
    hd_tw *w;
    bool open;               /* ESTABLISHED ran, CLOSED has not */
    bool want_writable;      /* lws_callback_on_writable() was asked */
    char uri[256];           /* request target of the upgrade: path[?query] */
    char established_frame[256]; /* the first frame written to the socket */
    unsigned close_status;   /* lws_close_reason(): code sent in the close frame (0: none yet) */
    char close_reason[128];
} hd_tw_conn;

struct hd_tw {
    hd_config cfg;
    hd_server *srv;
    hd_tw_conn conns[HD_TW_CONNS];
};

typedef struct hd_tw_options {
    unsigned io_threads;  /* 0: 2 */
    bool async_cleanup;   /* cleanup workers (2) with small queues; else cleanup runs at once */
} hd_tw_options;

/* A fresh server (NULL options: defaults). Fails the calling test and
 * returns NULL when the configuration does not load. */
hd_tw *hd_tw_new(const hd_tw_options *opt);
/* Close every open connection, drain the inboxes, free everything. */
void hd_tw_free(hd_tw *w);

/* Open connection i (on io thread i % io_threads) with the upgrade target
 * uri ("/app/app-key?protocol=7" when NULL); returns its session. */
hd_session *hd_tw_open(hd_tw *w, unsigned i, const char *uri);
/* LWS_CALLBACK_CLOSED for connection i. */
void hd_tw_close(hd_tw *w, unsigned i);
hd_session *hd_tw_session(hd_tw *w, unsigned i);

/* One text message from the client of connection i (the handler layer). */
void hd_tw_send(hd_tw *w, unsigned i, const char *json);
/* The io threads' inboxes drained (publishes reach the rings), until empty. */
void hd_tw_pump(hd_tw *w);

/* Frames queued on s: how many, the k-th (0 = oldest; NUL-terminated), and
 * whether one equals text exactly. */
size_t hd_tw_queued(const hd_session *s);
const char *hd_tw_frame(const hd_session *s, size_t k);
bool hd_tw_has_frame(const hd_session *s, const char *text);
/* The last queued frame, or "" when none. */
const char *hd_tw_last(const hd_session *s);
/* Forget the frames queued on s. */
void hd_tw_drop(hd_session *s);

/* "<app_key>:<hex HMAC-SHA256(app_secret, str)>" into out (out_len >= 200),
 * as a client's auth endpoint signs. */
void hd_tw_sign(const char *app_key, const char *app_secret, const char *str, char *out, size_t out_len);

#endif /* HD_TEST_WORLD_H */
