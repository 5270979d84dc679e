/* common_test.c - CUnit suite "common": hd_buf, JSON string escaping,
 * hd_strerror, the string helpers, the listening-socket helpers of
 * src/common (loopback sockets only), and the log (log.c): escaping, text
 * and JSON lines, the rate-limited refusal log.
 *
 * THREADING: run by the single-threaded unit test runner; the refusal
 * test starts its own threads (run it under TSan too).
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "common/net.h"

static void test_buf_append_puts(void)
{
    hd_buf b;
    hd_buf_init(&b);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    hd_buf_append(&b, "abc", 3);
    hd_buf_puts(&b, "def");
    hd_buf_append(&b, "", 0);
    CU_ASSERT_EQUAL(b.len, 6);
    CU_ASSERT_STRING_EQUAL(b.data, "abcdef");
    hd_buf_append(&b, "g\0h", 3);
    CU_ASSERT_EQUAL(b.len, 9);
    CU_ASSERT_EQUAL(memcmp(b.data, "abcdefg\0h", 10), 0);
    hd_buf_deinit(&b);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_EQUAL(b.cap, 0);
}

static void test_buf_growth(void)
{
    hd_buf b;
    hd_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        hd_buf_append(&b, "0123456789", 10);
    CU_ASSERT_EQUAL(b.len, 10000);
    CU_ASSERT(b.cap > b.len);
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    CU_ASSERT_EQUAL(memcmp(b.data + 9990, "0123456789", 10), 0);
    hd_buf_reserve(&b, 100000);
    CU_ASSERT(b.cap >= b.len + 100001);
    CU_ASSERT_EQUAL(b.len, 10000);
    hd_buf_deinit(&b);
}

static void test_buf_printf(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_buf_printf(&b, "%d-%s", 42, "x");
    hd_buf_printf(&b, "|%05.1f|", 3.14159);
    CU_ASSERT_STRING_EQUAL(b.data, "42-x|003.1|");
    CU_ASSERT_EQUAL(b.len, strlen("42-x|003.1|"));
    char big[300];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    hd_buf_printf(&b, "[%s]", big);
    CU_ASSERT_EQUAL(b.len, 11 + 301);
    CU_ASSERT_EQUAL(b.data[b.len - 1], ']');
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    size_t before = b.len;
    hd_buf_printf(&b, "%s", "");
    CU_ASSERT_EQUAL(b.len, before);
    hd_buf_deinit(&b);
}

static void test_buf_steal(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_buf_puts(&b, "hello");
    size_t len = 0;
    char *s = hd_buf_steal(&b, &len);
    CU_ASSERT_STRING_EQUAL(s, "hello");
    CU_ASSERT_EQUAL(len, 5);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_EQUAL(b.cap, 0);
    hd_free(s);
    /* Stealing an empty buffer yields "" the caller frees. */
    s = hd_buf_steal(&b, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "");
    CU_ASSERT_EQUAL(len, 0);
    hd_free(s);
    hd_buf_puts(&b, "again");
    s = hd_buf_steal(&b, NULL);
    CU_ASSERT_STRING_EQUAL(s, "again");
    hd_free(s);
    hd_buf_deinit(&b);
}

static void check_json(const char *in, size_t n, const char *want)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_buf_puts(&b, "x=");
    hd_buf_json_string(&b, in, n);
    CU_ASSERT_STRING_EQUAL(b.data + 2, want);
    CU_ASSERT_EQUAL(b.len, 2 + strlen(want));
    if (strcmp(b.data + 2, want) != 0)
        fprintf(stderr, "\n  json got %s want %s\n", b.data + 2, want);
    hd_buf_deinit(&b);
}

static void check_json_str(const char *in, const char *want)
{
    check_json(in, strlen(in), want);
}

static void test_json_string_escapes(void)
{
    check_json_str("", "\"\"");
    check_json_str("plain text", "\"plain text\"");
    check_json_str("say \"hi\"", "\"say \\\"hi\\\"\"");
    check_json_str("back\\slash", "\"back\\\\slash\"");
    check_json_str("a\nb\tc\rd", "\"a\\nb\\tc\\rd\"");
    check_json_str("\b\f", "\"\\b\\f\"");
    check_json_str("\x01\x1f\x0b", "\"\\u0001\\u001f\\u000b\"");
    check_json_str("/ and \x7f", "\"/ and \x7f\"");
    check_json_str("{\"some\":\"data\"}", "\"{\\\"some\\\":\\\"data\\\"}\"");
}

static void test_json_string_utf8_and_nul(void)
{
    /* é, €, U+1F600: bytes pass through unchanged. */
    check_json_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    check_json("a\0b", 3, "\"a\\u0000b\"");
    check_json("\0", 1, "\"\\u0000\"");
    /* n bounds the input: bytes after it are not read. */
    check_json("abcdef", 3, "\"abc\"");
}

/* The byte-at-a-time escaper the word-at-a-time one must match. */
static void json_reference(hd_buf *out, const unsigned char *in, size_t n)
{
    hd_buf_puts(out, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        if (c == '"' || c == '\\')
            hd_buf_printf(out, "\\%c", c);
        else if (c == '\n')
            hd_buf_puts(out, "\\n");
        else if (c == '\r')
            hd_buf_puts(out, "\\r");
        else if (c == '\t')
            hd_buf_puts(out, "\\t");
        else if (c == '\b')
            hd_buf_puts(out, "\\b");
        else if (c == '\f')
            hd_buf_puts(out, "\\f");
        else if (c < 0x20)
            hd_buf_printf(out, "\\u%04x", c);
        else
            hd_buf_append(out, (const char *)&c, 1);
    }
    hd_buf_puts(out, "\"");
}

/* Every special byte at every offset of a 40-byte text (so in each lane of
 * an eight-byte word and in the tail), and random texts of every length. */
static void test_json_string_words(void)
{
    static const unsigned char specials[] = {'"', '\\', '\n', 0x00, 0x01, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xff, '/'};
    unsigned char text[40];
    hd_buf got, want;
    hd_buf_init(&got);
    hd_buf_init(&want);
    for (size_t k = 0; k < sizeof specials; k++) {
        for (size_t at = 0; at < sizeof text; at++) {
            memset(text, 'a', sizeof text);
            text[at] = specials[k];
            got.len = want.len = 0;
            hd_buf_json_string(&got, (const char *)text, sizeof text);
            json_reference(&want, text, sizeof text);
            CU_ASSERT_EQUAL(got.len, want.len);
            CU_ASSERT(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
        }
    }
    unsigned seed = 12345;
    for (size_t len = 0; len < 200; len++) {
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            text[i % sizeof text] = (seed >> 16) % 4 ? (unsigned char)('a' + (seed >> 8) % 26) : specials[(seed >> 20) % sizeof specials];
        }
        unsigned char buf[200];
        for (size_t i = 0; i < len; i++)
            buf[i] = text[i % sizeof text];
        got.len = want.len = 0;
        hd_buf_json_string(&got, (const char *)buf, len);
        json_reference(&want, buf, len);
        CU_ASSERT(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
    }
    hd_buf_deinit(&got);
    hd_buf_deinit(&want);
}

static void test_strerror(void)
{
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_OK), "success");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EINVAL), "invalid argument");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ENOMEM), "out of memory");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EFULL), "queue full");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ESHUTDOWN), "shutting down");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ENOENT), "not found");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EEXIST), "already exists");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ELIMIT), "limit reached");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EAUTH), "authentication failed");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EIO), "i/o error");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ETHREAD), "thread error");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EAGAIN), "try again");
    CU_ASSERT_STRING_EQUAL(hd_strerror(-12345), "unknown error");
    CU_ASSERT_STRING_EQUAL(hd_strerror(1), "unknown error");
}

static void test_strdup(void)
{
    char *s = hd_strdup("herald");
    CU_ASSERT_STRING_EQUAL(s, "herald");
    hd_free(s);
    s = hd_strndup("herald", 3);
    CU_ASSERT_STRING_EQUAL(s, "her");
    hd_free(s);
    s = hd_strndup("a\0b", 3);
    CU_ASSERT_EQUAL(memcmp(s, "a\0b\0", 4), 0);
    hd_free(s);
}

/* Regression (found by fuzz/ws_message): "Unknown event: %.64s" cut a
 * two-byte character in half and the error frame was not UTF-8. */
static void test_utf8_prefix(void)
{
    const char *e = "pusher:\xc3\xa9\xc3\xa9"; /* "pusher:" + two U+00E9, 11 bytes */
    CU_ASSERT_EQUAL(hd_utf8_prefix(e, 11, 64), 11); /* short enough: all of it */
    CU_ASSERT_EQUAL(hd_utf8_prefix(e, 11, 11), 11);
    CU_ASSERT_EQUAL(hd_utf8_prefix(e, 11, 10), 9); /* would end inside the second: before it */
    CU_ASSERT_EQUAL(hd_utf8_prefix(e, 11, 9), 9);
    CU_ASSERT_EQUAL(hd_utf8_prefix(e, 11, 8), 7);
    const char *four = "a\xf0\x9f\x98\x80"; /* "a" + U+1F600 */
    for (size_t max = 1; max < 5; max++)
        CU_ASSERT_EQUAL(hd_utf8_prefix(four, 5, max), 1);
    CU_ASSERT_EQUAL(hd_utf8_prefix(four, 5, 5), 5);
    CU_ASSERT_EQUAL(hd_utf8_prefix("abc", 3, 0), 0);
    CU_ASSERT_EQUAL(hd_utf8_prefix("\x80\x80\x80", 3, 2), 0); /* not UTF-8 at all: never longer than max */
}

/* ---- net.c: who may listen on a port ---- */

/* The port a listening socket got (bound to port 0). */
static uint16_t port_of(int fd)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    CU_ASSERT_EQUAL(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    return ntohs(a.sin_port);
}

/* SO_REUSEPORT listeners let another one join silently; the probe sees them,
 * on the same address and through the wildcard address. */
static void test_net_claim_port(void)
{
    int a = hd_net_listen("127.0.0.1", 0);
    CU_ASSERT_FATAL(a >= 0);
    uint16_t port = port_of(a);
    errno = 0;
    CU_ASSERT_EQUAL(hd_net_claim_port("127.0.0.1", port), -1);
    CU_ASSERT_EQUAL(errno, EADDRINUSE);
    errno = 0;
    CU_ASSERT_EQUAL(hd_net_claim_port("0.0.0.0", port), -1);
    CU_ASSERT_EQUAL(errno, EADDRINUSE);
    int b = hd_net_listen("127.0.0.1", port); /* why the probe is needed */
    CU_ASSERT(b >= 0);
    CU_ASSERT_EQUAL(hd_net_claim_port("127.0.0.1", port), -1);
    close(a);
    if (b >= 0)
        close(b);
    CU_ASSERT_EQUAL(hd_net_claim_port("127.0.0.1", port), 0); /* free again, and the probe left nothing bound */
    int c = hd_net_listen_exclusive("127.0.0.1", port);
    CU_ASSERT(c >= 0);
    if (c >= 0)
        close(c);
    CU_ASSERT_EQUAL(hd_net_claim_port("127.0.0.1", 0), 0);
}

/* The exclusive listener refuses a port in use and keeps later listeners,
 * SO_REUSEPORT ones included, out of its own. */
static void test_net_listen_exclusive(void)
{
    int a = hd_net_listen_exclusive("127.0.0.1", 0);
    CU_ASSERT_FATAL(a >= 0);
    uint16_t port = port_of(a);
    errno = 0;
    CU_ASSERT_EQUAL(hd_net_listen("127.0.0.1", port), -1);
    CU_ASSERT_EQUAL(errno, EADDRINUSE);
    CU_ASSERT_EQUAL(hd_net_listen_exclusive("127.0.0.1", port), -1);
    CU_ASSERT_EQUAL(hd_net_claim_port("127.0.0.1", port), -1);
    close(a);
    int b = hd_net_listen("127.0.0.1", 0);
    CU_ASSERT_FATAL(b >= 0);
    errno = 0;
    CU_ASSERT_EQUAL(hd_net_listen_exclusive("127.0.0.1", port_of(b)), -1);
    CU_ASSERT_EQUAL(errno, EADDRINUSE);
    close(b);
}

/* ---- log.c: escaping, line formats, the rate-limited refusal log ---- */

static uint64_t fake_now_ms;
static _Atomic uint64_t fake_now_atomic;
static uint64_t fake_clock(void)
{
    return fake_now_ms;
}
static uint64_t fake_clock_atomic(void)
{
    return atomic_load(&fake_now_atomic);
}

static int log_capture_fd = -1;

/* Lines go to a temporary file, the refusal table starts empty, the
 * clock is ours. */
static void log_capture_begin(int level, int format)
{
    char path[] = "/tmp/herald-log-test-XXXXXX";
    log_capture_fd = mkstemp(path);
    CU_ASSERT_FATAL(log_capture_fd >= 0);
    unlink(path);
    hd_log_set_fd(log_capture_fd);
    hd_log_set_level(level);
    hd_log_set_format(format);
    hd_log_set_clock(fake_clock);
    hd_log_refusal_reset();
    fake_now_ms = 1000000;
}

/* What was logged since log_capture_begin (caller frees); restores the defaults. */
static char *log_capture_end(void)
{
    off_t n = lseek(log_capture_fd, 0, SEEK_END);
    char *text = hd_calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (n > 0 && pread(log_capture_fd, text, (size_t)n, 0) != n)
        text[0] = '\0';
    close(log_capture_fd);
    log_capture_fd = -1;
    hd_log_set_fd(2);
    hd_log_set_level(HD_LOG_NOTICE);
    hd_log_set_format(HD_LOG_TEXT);
    hd_log_set_clock(NULL);
    hd_log_refusal_reset();
    return text;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static size_t count_substr(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void check_escape(const char *in, size_t n, size_t cap, const char *want, size_t want_used)
{
    char out[128];
    size_t used = 99;
    size_t len = hd_log_json_escape(out, cap, in, n, &used);
    out[len] = '\0';
    CU_ASSERT_STRING_EQUAL(out, want);
    CU_ASSERT_EQUAL(used, want_used);
}

static void test_log_json_escape(void)
{
    check_escape("a\"b\\c", 5, 64, "a\\\"b\\\\c", 5);
    check_escape("\n\r\t\b\f", 5, 64, "\\n\\r\\t\\b\\f", 5);
    check_escape("\x01\x1f\x7f", 3, 64, "\\u0001\\u001f\\u007f", 3);
    check_escape("x\0y", 3, 64, "x\\u0000y", 3);
    check_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 64, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
    /* not UTF-8: a lone continuation byte, a truncated sequence, an overlong form, a surrogate */
    check_escape("a\x80z", 3, 64, "a\\ufffdz", 3);
    check_escape("\xe2\x82", 2, 64, "\\ufffd\\ufffd", 2);
    check_escape("\xc0\xaf", 2, 64, "\\ufffd\\ufffd", 2);
    check_escape("\xed\xa0\x80", 3, 64, "\\ufffd\\ufffd\\ufffd", 3);
    /* out of room: whole characters and whole escapes only */
    check_escape("ab\ncd", 5, 3, "ab", 2);
    check_escape("a\xc3\xa9", 3, 2, "a", 1);
    check_escape("\x01", 1, 5, "", 0);
}

static void test_log_text_line(void)
{
    log_capture_begin(HD_LOG_DEBUG, HD_LOG_TEXT);
    hd_log_ctx ctx = {.app = "app-id", .socket_id = "1.2", .channel = "bad\nname", .remote = "127.0.0.1:5000"};
    hd_logc(HD_LOG_WARN, "session", &ctx, "hello %d", 42);
    hd_log(HD_LOG_INFO, "main", "plain \x01 line");
    hd_log(HD_LOG_DEBUG + 1, "main", "never: above the level");
    char *text = log_capture_end();
    CU_ASSERT_EQUAL(count_lines(text), 2); /* the newline in the channel is escaped: still one line */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " WARN   session  hello 42 [app=app-id socket_id=1.2 channel=bad\\nname "
                                        "remote=127.0.0.1:5000]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " INFO   main     plain \\x01 line\n"));
    CU_ASSERT_EQUAL(text[4], '-'); /* starts with the timestamp */
    hd_free(text);
}

/* The remote address is looked up from the socket only when written. */
static void test_log_peer_fd(void)
{
    int l = hd_net_listen_exclusive("127.0.0.1", 0);
    CU_ASSERT_FATAL(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port_of(l))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    int s = -1;
    for (int i = 0; i < 100 && s < 0; i++, usleep(1000))
        s = accept(l, NULL, NULL);
    CU_ASSERT_FATAL(s >= 0);
    uint16_t client_port = port_of(c);
    log_capture_begin(HD_LOG_INFO, HD_LOG_TEXT);
    hd_log_ctx ctx = {.app = "a", .peer_fd = &s};
    hd_logc(HD_LOG_INFO, "http", &ctx, "x");
    int none = -1;
    hd_log_ctx no_peer = {.app = "b", .peer_fd = &none};
    hd_logc(HD_LOG_INFO, "http", &no_peer, "y");
    char *text = log_capture_end();
    char want[64];
    snprintf(want, sizeof want, "x [app=a remote=127.0.0.1:%u]\n", client_port);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "y [app=b]\n"));
    hd_free(text);
    close(s);
    close(c);
    close(l);
}

static void test_log_json_line(void)
{
    log_capture_begin(HD_LOG_INFO, HD_LOG_JSON);
    hd_log_ctx ctx = {.app = "app-id", .socket_id = "1.2", .channel = "c\"h", .user = "u1", .remote = "[::1]:9"};
    hd_logc(HD_LOG_NOTICE, "session", &ctx, "quote \" backslash \\ newline \n bad \xff" " end");
    hd_log_refusal("http", "http 401", &ctx, "%s", "Invalid signature");
    char *text = log_capture_end();
    CU_ASSERT_EQUAL_FATAL(count_lines(text), 2);
    char *second = strchr(text, '\n') + 1;
    second[-1] = '\0';
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "level")->valuestring, "notice");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "module")->valuestring, "session");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "msg")->valuestring,
                           "quote \" backslash \\ newline \n bad \xef\xbf\xbd" " end");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "app")->valuestring, "app-id");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "socket_id")->valuestring, "1.2");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "channel")->valuestring, "c\"h");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "user")->valuestring, "u1");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "remote")->valuestring, "[::1]:9");
    CU_ASSERT_EQUAL(strlen(cJSON_GetObjectItem(j, "ts")->valuestring), 24);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(j, "reason"));
    cJSON_Delete(j);
    j = cJSON_Parse(second);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "level")->valuestring, "info");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "msg")->valuestring, "http 401: Invalid signature");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "reason")->valuestring, "http 401");
    cJSON_Delete(j);
    hd_free(text);
}

/* A message too long for a line is cut (and says so); the context and,
 * in JSON, the closing brace are kept. */
static void test_log_long_line(void)
{
    char *big = hd_malloc(10001);
    memset(big, 'x', 10000);
    big[10000] = '\0';
    big[3000] = '\n';
    hd_log_ctx ctx = {.app = "app-id"};
    for (int format = HD_LOG_TEXT; format <= HD_LOG_JSON; format++) {
        log_capture_begin(HD_LOG_INFO, format);
        hd_logc(HD_LOG_INFO, "http", &ctx, "%s", big);
        char *text = log_capture_end();
        CU_ASSERT_EQUAL(count_lines(text), 1);
        CU_ASSERT(strlen(text) <= HD_LOG_LINE_MAX);
        CU_ASSERT(strlen(text) > HD_LOG_LINE_MAX - 300);
        if (format == HD_LOG_TEXT) {
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "xxx... [app=app-id]\n"));
        } else {
            cJSON *j = cJSON_Parse(text);
            CU_ASSERT_PTR_NOT_NULL(j);
            CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(j, "app")), "app-id");
            cJSON_Delete(j);
        }
        hd_free(text);
    }
    hd_free(big);
}

/* First of a reason at once, then counted; the window's end gives one
 * "N more" line, from the periodic flush or from the next refusal. */
static void test_refusal_window(void)
{
    log_capture_begin(HD_LOG_INFO, HD_LOG_TEXT);
    hd_log_ctx ctx = {.remote = "10.0.0.1:1"};
    for (int i = 0; i < 200; i++)
        hd_log_refusal("http", "http 400", &ctx, "bad request %d", i);
    hd_log_refusal("session", "close 4001", NULL, "Application does not exist");
    hd_log_refusal_flush(false); /* nothing due yet */
    fake_now_ms += HD_REFUSAL_WINDOW_MS - 1;
    hd_log_refusal_flush(false);
    char *text = log_capture_end();
    CU_ASSERT_EQUAL(count_lines(text), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " INFO   http     http 400: bad request 0 [remote=10.0.0.1:1]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "session  close 4001: Application does not exist\n"));
    hd_free(text);

    log_capture_begin(HD_LOG_INFO, HD_LOG_TEXT);
    for (int i = 0; i < 200; i++)
        hd_log_refusal("http", "http 400", &ctx, "bad request %d", i);
    fake_now_ms += HD_REFUSAL_WINDOW_MS;
    hd_log_refusal_flush(false);
    hd_log_refusal_flush(false); /* once */
    hd_log_refusal("http", "http 400", &ctx, "bad request %d", 200); /* a new window: logged at once */
    text = log_capture_end();
    CU_ASSERT_EQUAL(count_lines(text), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "http     199 more http 400 in the last 10 s\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "http 400: bad request 200"));
    hd_free(text);

    /* without a flush the next refusal writes the summary first */
    log_capture_begin(HD_LOG_INFO, HD_LOG_TEXT);
    for (int i = 0; i < 5; i++)
        hd_log_refusal("session", "close 4009", NULL, "x%d", i);
    fake_now_ms += HD_REFUSAL_WINDOW_MS + 5000;
    hd_log_refusal("session", "close 4009", NULL, "x%d", 5);
    text = log_capture_end();
    CU_ASSERT_EQUAL(count_lines(text), 3);
    const char *sum = strstr(text, "4 more close 4009 in the last 10 s");
    const char *again = strstr(text, "close 4009: x5");
    CU_ASSERT(sum && again && sum < again);
    hd_free(text);
}

/* At exit every count is written, however young its window; the level
 * filters refusals before they are counted. */
static void test_refusal_flush_all(void)
{
    log_capture_begin(HD_LOG_INFO, HD_LOG_JSON);
    for (int i = 0; i < 3; i++)
        hd_log_refusal("session", "subscription AuthError", NULL, "x");
    fake_now_ms += 2500;
    hd_log_exit(0, "stopped");
    hd_log_refusal_flush(true); /* nothing left */
    char *text = log_capture_end();
    CU_ASSERT_EQUAL_FATAL(count_lines(text), 3);
    char *sum = strchr(text, '\n') + 1, *last = strchr(sum, '\n') + 1;
    sum[-1] = last[-1] = '\0';
    cJSON *j = cJSON_Parse(sum);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(j, "msg")),
                           "2 more subscription AuthError in the last 3 s");
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(j, "reason")), "subscription AuthError");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "count")->valueint, 2);
    cJSON_Delete(j);
    j = cJSON_Parse(last);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(j, "msg")), "stopped (exit status 0)");
    cJSON_Delete(j);
    hd_free(text);

    log_capture_begin(HD_LOG_NOTICE, HD_LOG_TEXT);
    hd_log_refusal("http", "http 401", NULL, "x");
    hd_log_refusal("http", "http 401", NULL, "x");
    hd_log_exit(1, "not started");
    text = log_capture_end();
    CU_ASSERT_EQUAL(count_lines(text), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " ERR    main     not started (exit status 1)\n"));
    hd_free(text);
}

/* However many reasons clients produce, the table stays at
 * HD_REFUSAL_KEYS: the keys past it share "other refusals". */
static void test_refusal_bounded(void)
{
    log_capture_begin(HD_LOG_INFO, HD_LOG_TEXT);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 200; i++) {
            char key[32];
            snprintf(key, sizeof key, "key %d", i);
            hd_log_refusal("t", key, NULL, "r%d", round);
        }
    hd_log_refusal_flush(true);
    char *text = log_capture_end();
    size_t named = HD_REFUSAL_KEYS - 1, others = 2 * (200 - named) - 1;
    CU_ASSERT_EQUAL(count_substr(text, ": r0"), named + 1); /* each named key's first, and the first of the rest */
    CU_ASSERT_EQUAL(count_substr(text, ": r1"), 0);
    CU_ASSERT_EQUAL(count_substr(text, " 1 more key "), named);
    char want[64];
    snprintf(want, sizeof want, " %zu more other refusals in the last 1 s\n", others);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    CU_ASSERT_EQUAL(count_lines(text), 2 * named + 2);
    hd_free(text);
}

static void *refusal_thread(void *arg)
{
    for (int i = 0; i < 20000; i++) {
        hd_log_refusal("t", (i & 1) ? "close 4100" : "http 429", NULL, "n%d", i);
        if (i % 1000 == 0) {
            atomic_fetch_add(&fake_now_atomic, 1000);
            hd_log_refusal_flush(false);
        }
    }
    return arg;
}

/* Several threads refusing at once (and flushing, as the io threads do):
 * nothing is lost, every refusal is a line or part of a count. */
static void test_refusal_threads(void)
{
    log_capture_begin(HD_LOG_INFO, HD_LOG_JSON);
    atomic_store(&fake_now_atomic, 1000000);
    hd_log_set_clock(fake_clock_atomic);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, refusal_thread, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    hd_log_refusal_flush(true);
    char *text = log_capture_end();
    CU_ASSERT(count_lines(text) < 200);
    unsigned long long total = 0;
    for (char *line = text, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        *end = '\0';
        cJSON *j = cJSON_Parse(line);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        cJSON *count = cJSON_GetObjectItem(j, "count"); /* a summary; otherwise one refusal's line */
        total += count ? (unsigned long long)count->valuedouble : 1;
        cJSON_Delete(j);
    }
    CU_ASSERT_EQUAL(total, 4 * 20000);
    hd_free(text);
}

void hd_test_suite_common(void)
{
    CU_pSuite s = CU_add_suite("common", NULL, NULL);
    CU_add_test(s, "net claim port", test_net_claim_port);
    CU_add_test(s, "net exclusive listener", test_net_listen_exclusive);
    CU_add_test(s, "buf append/puts", test_buf_append_puts);
    CU_add_test(s, "buf growth", test_buf_growth);
    CU_add_test(s, "buf printf", test_buf_printf);
    CU_add_test(s, "buf steal", test_buf_steal);
    CU_add_test(s, "json string escapes", test_json_string_escapes);
    CU_add_test(s, "json string utf8 and NUL", test_json_string_utf8_and_nul);
    CU_add_test(s, "json string word at a time", test_json_string_words);
    CU_add_test(s, "strerror", test_strerror);
    CU_add_test(s, "strdup/strndup", test_strdup);
    CU_add_test(s, "utf8 prefix", test_utf8_prefix);
    CU_add_test(s, "log json escape", test_log_json_escape);
    CU_add_test(s, "log text line", test_log_text_line);
    CU_add_test(s, "log remote from the socket", test_log_peer_fd);
    CU_add_test(s, "log json line", test_log_json_line);
    CU_add_test(s, "log long line", test_log_long_line);
    CU_add_test(s, "refusal window", test_refusal_window);
    CU_add_test(s, "refusal flush at exit", test_refusal_flush_all);
    CU_add_test(s, "refusal keys bounded", test_refusal_bounded);
    CU_add_test(s, "refusal threads", test_refusal_threads);
}
