/* tls.c - TLS on the main port (wss:// and https://) with OpenSSL.
 *
 * DESIGN
 * ------
 * herald terminates TLS itself, in the HTTP front end (http_front.c): the
 * handshake and the request head are read through an SSL object of ours,
 * so the front end's deadlines, limits and HTTP handling are the same for
 * plain and TLS connections. A WebSocket handshake is then handed to lws
 * together with the established SSL object
 * (lws_adopt_socket_vhost_tls_readbuf, added to lws 4.1 by
 * scripts/lws-patches/0002-adopt-established-tls.patch), and lws goes on
 * reading and writing through it.
 *
 * Defaults: TLS 1.2 and 1.3 only; for 1.2 only ECDHE with AES-GCM or
 * ChaCha20-Poly1305; no renegotiation; no compression; ALPN http/1.1 (a
 * client offering only h2 gets no ALPN and speaks HTTP/1.1, as browsers
 * then do); buffers released while a connection is idle, which matters at
 * 100 000 mostly idle WebSockets.
 *
 * Certificates are reloaded on SIGHUP (hd_tls_reload): a new SSL_CTX is
 * built from the same files and swapped in under a mutex; connections
 * established before keep the context they started with (SSL objects
 * hold a reference to theirs). A reload that fails keeps the old one.
 *
 * THREADING: hd_tls_session() from any io thread, hd_tls_reload() from
 * the main thread; the current context is guarded by lock.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <string.h>

#include "adapter/adapter_internal.h"

struct hd_tls {
    pthread_mutex_t lock;
    SSL_CTX *ctx; /* {lock} */
    char *cert_path, *key_path, *passphrase;
};

static void log_openssl(const char *what, const char *path)
{
    char buf[256] = "";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    hd_log(HD_LOG_ERR, "tls", "%s %s: %s", what, path, buf[0] ? buf : "unknown error");
}

static int passphrase_cb(char *buf, int size, int rwflag, void *userdata)
{
    const char *p = userdata ? userdata : "";
    int n = (int)strlen(p);
    if (n >= size)
        return 0;
    memcpy(buf, p, (size_t)n + 1);
    return n;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    static const unsigned char h1[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h1, sizeof h1 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *ctx_build(const hd_tls *t)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    SSL_CTX_set_default_passwd_cb(ctx, passphrase_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, t->passphrase);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_path) != 1) {
        log_openssl("cannot load the certificate chain (ssl.cert_path)", t->cert_path);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, t->key_path, SSL_FILETYPE_PEM) != 1) {
        log_openssl("cannot load the private key (ssl.key_path, ssl.passphrase)", t->key_path);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        log_openssl("the private key does not match the certificate", t->cert_path);
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

int hd_tls_create(hd_tls **out, const hd_config *cfg)
{
    *out = NULL;
    if (!cfg->ssl.enabled)
        return 0;
    if (!cfg->ssl.cert_path || !*cfg->ssl.cert_path || !cfg->ssl.key_path || !*cfg->ssl.key_path) {
        hd_log(HD_LOG_ERR, "tls", "ssl.enabled is true: ssl.cert_path and ssl.key_path must name PEM files");
        return HD_EINVAL;
    }
    hd_tls *t = hd_calloc(1, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    t->cert_path = hd_strdup(cfg->ssl.cert_path);
    t->key_path = hd_strdup(cfg->ssl.key_path);
    t->passphrase = hd_strdup(cfg->ssl.passphrase ? cfg->ssl.passphrase : "");
    t->ctx = ctx_build(t);
    if (!t->ctx) {
        hd_tls_destroy(t);
        return HD_EINVAL;
    }
    *out = t;
    return 0;
}

void hd_tls_destroy(hd_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->lock);
    hd_free(t->cert_path);
    hd_free(t->key_path);
    if (t->passphrase)
        OPENSSL_cleanse(t->passphrase, strlen(t->passphrase));
    hd_free(t->passphrase);
    hd_free(t);
}

int hd_tls_reload(hd_tls *t)
{
    if (!t)
        return 0;
    SSL_CTX *fresh = ctx_build(t);
    if (!fresh) {
        hd_log(HD_LOG_ERR, "tls", "certificate reload failed: still serving the previous certificate");
        return HD_EINVAL;
    }
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = fresh;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* sessions made from it hold their own reference */
    hd_log(HD_LOG_NOTICE, "tls", "certificate reloaded from %s", t->cert_path);
    return 0;
}

SSL *hd_tls_session(hd_tls *t, int fd)
{
    pthread_mutex_lock(&t->lock);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    if (!ssl)
        return NULL;
    SSL_set_fd(ssl, fd);
    SSL_set_accept_state(ssl);
    return ssl;
}
