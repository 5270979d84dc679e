/* protocol.h - pure Pusher-protocol helpers: channel names, ids, signatures,
 * and HTTP API request authentication (PUSHER_PROTOCOL.md §0, §5, §6, §9.1).
 *
 * DESIGN
 * ------
 * No I/O, no global state, no allocation except where a function says so
 * (hd_params_* own heap copies; the hd_http_* functions use temporaries),
 * so every function is unit-testable against the protocol's test vectors.
 * Signatures are lowercase hex HMAC-SHA256 (OpenSSL); comparisons of
 * signatures are constant-time.
 *
 * THREADING
 * ---------
 * Every function is reentrant and safe from any thread.
 */
#ifndef HD_PROTOCOL_H
#define HD_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- channel names (§5) ---- */

typedef enum hd_channel_kind {
    HD_CHANNEL_PUBLIC = 0,
    HD_CHANNEL_PRIVATE,
    HD_CHANNEL_PRIVATE_ENCRYPTED,
    HD_CHANNEL_PRESENCE,
    HD_CHANNEL_SERVER_TO_USER, /* #server-to-user-{id} */
} hd_channel_kind;

typedef struct hd_channel_type {
    hd_channel_kind kind;
    bool cache; /* cache-, private-cache-, private-encrypted-cache-, presence-cache- */
} hd_channel_type;

/* Validate a client- or API-supplied channel name: 1..max_len bytes of
 * [-a-zA-Z0-9_=@,.;], or "#server-to-user-" followed by a valid user id.
 * Classifies by anchored prefix in the order of §5. Returns 0 and fills
 * *out, or HD_EINVAL (bad characters / empty / '#' misuse) or HD_ELIMIT
 * (longer than max_len). */
int hd_channel_classify(const char *name, size_t len, size_t max_len, hd_channel_type *out);

/* True for private-, private-encrypted- and presence- (they need auth). */
bool hd_channel_needs_auth(hd_channel_kind kind);

/* For a #server-to-user-{id} name, the id part (points into name); NULL
 * when name does not start with "#server-to-user-". Does not validate. */
const char *hd_channel_user_id(const char *name);

/* socket_id: ^\d+\.\d+$ (each part 1..20 digits). Room for one, NUL included. */
#define HD_SOCKET_ID_MAX 48
bool hd_socket_id_valid(const char *s, size_t len);

/* User ids (§11): 1..128 bytes of [-a-zA-Z0-9_=@,.;]. */
bool hd_user_id_valid(const char *s, size_t len);

/* ---- text (utf8.c, params.c) ---- */

/* s[0, len) with %XX escapes decoded (and '+' as a space when
 * plus_is_space) into a new NUL-terminated string in *out. HD_EINVAL, with
 * *out NULL, on a broken escape or an escaped NUL. */
int hd_url_decode(const char *s, size_t len, bool plus_is_space, char **out);

/* True when s[0, len) is well-formed UTF-8 (RFC 3629): no overlong forms,
 * no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no sequence cut
 * short by the end. A WebSocket text frame must be (RFC 6455 §8.1), so
 * every string copied into one from an HTTP request is checked. */
bool hd_utf8_valid(const char *s, size_t len);

/* ---- signatures (§0, §6) ---- */

/* out gets 64 lowercase hex chars and a NUL. */
void hd_hmac_sha256_hex(const char *key, size_t key_len, const void *msg, size_t msg_len, char out[65]);
/* out gets 32 lowercase hex chars and a NUL. */
void hd_md5_hex(const void *msg, size_t len, char out[33]);
/* Constant-time equality of two byte strings (time depends only on the lengths). */
bool hd_const_time_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* Check a socket auth value "<app_key>:<hex>" against HMAC(secret, signed).
 * Returns 0 on match, HD_EINVAL when auth is empty / has no ':' / the key
 * part differs from app_key, HD_EAUTH when the signature differs. */
int hd_auth_verify(const char *auth, size_t auth_len, const char *app_key, const char *secret,
                   const char *signed_str, size_t signed_len);

/* ---- HTTP API request authentication (§9.1) ---- */

typedef struct hd_param {
    char *key;   /* as received (case kept); compare with hd_params_get, case-insensitive */
    char *value; /* URL-decoded */
} hd_param;

typedef struct hd_params {
    hd_param *items;
    size_t count;
    size_t cap;
} hd_params;

void hd_params_init(hd_params *p);
void hd_params_free(hd_params *p);
/* Copies key and value as given (no decoding). */
void hd_params_add(hd_params *p, const char *key, size_t key_len, const char *value, size_t value_len);
/* Split a raw query string (no leading '?') on '&', split each on the first
 * '=', URL-decode both sides ('+' -> space, %XX). Empty segments are
 * skipped; a segment without '=' gets an empty value. Returns 0 or
 * HD_EINVAL on a malformed %-escape (truncated, non-hex, or %00); nothing
 * is added then (p is left as it was). */
int hd_params_parse_query(hd_params *p, const char *query, size_t len);
/* Value of the first parameter whose key equals name case-insensitively, or NULL. */
const char *hd_params_get(const hd_params *p, const char *name);

typedef struct hd_http_auth_request {
    const char *method;      /* "GET", "POST" */
    const char *path;        /* "/apps/3/events", as received */
    const hd_params *params; /* every query parameter, decoded */
    const char *body;        /* may be NULL when body_len is 0 */
    size_t body_len;
    const char *app_key;     /* the key of the app named in the path */
    const char *app_secret;
    int64_t now_s;           /* unix seconds */
    int64_t max_skew_s;      /* 600 */
    int mode;                /* HD_AUTH_FULL (0), HD_AUTH_HEAD or HD_AUTH_BODY */
} hd_http_auth_request;

/* Authentication in two steps lets the connection layer refuse a request
 * before it reads (and buffers) its body:
 * HD_AUTH_HEAD: every check but the body's MD5; body_len is the declared
 *   Content-Length, and body_md5 need only be present when it is not 0.
 * HD_AUTH_BODY: only the body's MD5, for a request whose head passed. */
enum { HD_AUTH_FULL = 0, HD_AUTH_HEAD = 1, HD_AUTH_BODY = 2 };

/* Verify per §9.1 in [SIGGEM] order: auth_version == 1.0, timestamp within
 * max_skew_s, auth_key == app_key, body_md5 == md5(body) when there is a
 * body (and present only then), auth_signature == HMAC(secret,
 * METHOD\npath\nsorted lower-cased k=v joined by '&', without
 * auth_signature). Returns 0, or the HTTP status (400 for missing or
 * malformed parameters, 401 for expired timestamp / unknown key / bad
 * signature / bad body_md5) with a human message in err, e.g.
 * "Invalid signature: you should have sent HmacSHA256Hex(\"...\", your_secret_key), but you sent \"...\"".
 * Details: 400 also for a non-numeric auth_timestamp and for a repeated
 * auth_* or body_md5 parameter; a missing body_md5 with a non-empty body
 * is 401; a body_md5 that is present must match even for an empty body.
 * If the signature fails for path as received and path contains '%', the
 * percent-decoded path is tried too (§9.1); the message shows the raw one.
 * err (may be NULL when err_len is 0) is always NUL-terminated, truncated
 * without splitting a UTF-8 sequence; "" on success. Allocates temporaries
 * only (freed before returning). */
int hd_http_auth_verify(const hd_http_auth_request *req, char *err, size_t err_len);

/* Build the string to sign for (method, path, params) into out (NUL-terminated,
 * truncated at out_len); returns the full length. out may be NULL when
 * out_len is 0 (to measure). Exposed for tests and the bench. */
size_t hd_http_string_to_sign(const char *method, const char *path, const hd_params *params, char *out,
                              size_t out_len);

/* Pusher close and error codes (4000-4099: do not reconnect as is;
 * 4100-4199: reconnect after a back-off; 4200-4299: reconnect at once),
 * and the RFC 6455 codes herald uses or counts (NO_STATUS and ABNORMAL are
 * never sent: they stand for a close frame without a code and for no close
 * frame at all, RFC 6455 §7.4.1). */
enum hd_close_code {
    HD_CLOSE_NORMAL = 1000,
    HD_CLOSE_GOING_AWAY = 1001,
    HD_CLOSE_PROTOCOL_ERROR = 1002,
    HD_CLOSE_UNSUPPORTED_DATA = 1003,
    HD_CLOSE_NO_STATUS = 1005,
    HD_CLOSE_ABNORMAL = 1006,
    HD_CLOSE_INVALID_PAYLOAD = 1007,
    HD_CLOSE_POLICY_VIOLATION = 1008,
    HD_CLOSE_MESSAGE_TOO_BIG = 1009,
    HD_CLOSE_INTERNAL_ERROR = 1011,
    HD_CLOSE_APP_NOT_FOUND = 4001,
    HD_CLOSE_APP_DISABLED = 4003,
    HD_CLOSE_APP_OVER_QUOTA = 4004,
    HD_CLOSE_PATH_NOT_FOUND = 4005,
    HD_CLOSE_BAD_PROTOCOL = 4007,
    HD_CLOSE_UNAUTHORIZED = 4009,
    HD_CLOSE_OVER_CAPACITY = 4100,
    HD_CLOSE_SHUTTING_DOWN = 4200,
    HD_CLOSE_PONG_TIMEOUT = 4201,
    HD_ERROR_CLIENT_EVENT_RATE = 4301,
    HD_ERROR_WATCHLIST_LIMIT = 4302,
};

/* ---- frames (frame.c): every Pusher event herald sends is built here ---- */

/* The prefix of a signed-in user's channel; #watch- of a watched user's. */
#define HD_USER_CHANNEL_PREFIX "#server-to-user-"
#define HD_WATCH_CHANNEL_PREFIX "#watch-"

struct hd_buf;
/* {"event":event,"channel":channel,"data":<data as a JSON string>};
 * channel NULL and data NULL are left out. */
void hd_frame_event(struct hd_buf *out, const char *event, const char *channel, const char *data,
                    size_t data_len);
/* pusher_internal:member_added (with user_info, or without when NULL) /
 * member_removed (user_id only): the raw JSON texts are copied as they are. */
void hd_frame_member(struct hd_buf *out, bool added, const char *channel, const char *user_id_json,
                     const char *user_info_json);
/* pusher_internal:watchlist_events with one online / offline user. */
void hd_frame_watchlist(struct hd_buf *out, bool online, const char *user_id);
/* The same for several users: user_ids_json is their ids as JSON strings
 * joined by ',' ("\"u1\",\"u2\""). */
void hd_frame_watchlist_ids(struct hd_buf *out, bool online, const char *user_ids_json);
/* pusher_internal:subscription_count. */
void hd_frame_subscription_count(struct hd_buf *out, const char *channel, uint32_t count);
/* pusher:error {"code":code (0 = null),"message":message}. */
void hd_frame_error(struct hd_buf *out, int code, const char *message);
/* pusher:subscription_error {"type","error","status"} (an object, not a string). */
void hd_frame_subscription_error(struct hd_buf *out, const char *channel, const char *type, const char *error,
                                 int status);
/* pusher:cache_miss. */
void hd_frame_cache_miss(struct hd_buf *out, const char *channel);

/* pusher:connection_established {"socket_id","activity_timeout"} (data as a JSON string). */
void hd_frame_connection_established(struct hd_buf *out, const char *socket_id, uint32_t activity_timeout);
/* pusher:ping / pusher:pong with data "{}". */
void hd_frame_ping(struct hd_buf *out);
void hd_frame_pong(struct hd_buf *out);
/* pusher:signin_success {"user_data":<user_data as a JSON string>} (an object). */
void hd_frame_signin_success(struct hd_buf *out, const char *user_data);
/* A client event relayed to the channel: data_json is the client's data as
 * raw JSON (copied as it is); user_id (presence, else NULL) goes out as a
 * JSON string (§4.4). */
void hd_frame_client_event(struct hd_buf *out, const char *event, const char *channel, const char *data_json,
                           const char *user_id);
/* pusher_internal:subscription_succeeded: data is the presence snapshot
 * (presence_json[0, len), {"presence":{...}}), or {} when NULL / empty. */
void hd_frame_subscription_succeeded(struct hd_buf *out, const char *channel, const char *presence_json, size_t len);

/* The head of a server-to-client WebSocket frame (RFC 6455 5.2: FIN, the
 * opcode, unmasked, the payload length in its shortest form) into p, which
 * has room for 10 bytes; returns its length. Inline: it runs once per frame
 * of a gathered write (outq.c). */
static inline size_t hd_ws_frame_header(unsigned char *p, unsigned opcode, size_t len)
{
    p[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        p[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        p[1] = 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        return 4;
    }
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

#endif /* HD_PROTOCOL_H */
