/* common_test.c - CUnit suite "common": hd_buf, JSON string escaping,
 * hd_strerror, the string helpers and the listening-socket helpers of
 * src/common (loopback sockets only).
 *
 * THREADING: run by the single-threaded unit test runner.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
    CU_add_test(s, "strerror", test_strerror);
    CU_add_test(s, "strdup/strndup", test_strdup);
    CU_add_test(s, "utf8 prefix", test_utf8_prefix);
}
