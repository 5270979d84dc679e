/* listener.c - one listening socket per io thread, all bound to the same
 * port with SO_REUSEPORT so the kernel spreads new connections over the
 * threads.
 *
 * DESIGN
 * ------
 * Debian's libwebsockets 4.1 sets SO_REUSEPORT only on Windows, so each
 * context is created without a listener and we open our own: the socket
 * is adopted into the thread's lws loop as a raw file descriptor, and when
 * it is readable we accept() every pending connection and hand it to
 * lws_adopt_socket_vhost(), which serves it like any lws connection (HTTP,
 * upgraded to WebSocket on /app/{key}).
 *
 * THREADING: each listener belongs to one io thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapter_internal.h"
#include "common/net.h"

/* LWS_CALLBACK_RAW_RX_FILE on the listening socket: accept all pending. */
int hd_listener_readable(struct lws *wsi)
{
    int lfd = lws_get_socket_fd(wsi);
    struct lws_vhost *vh = lws_get_vhost(wsi);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                hd_log(HD_LOG_WARN, "listener", "accept: out of file descriptors");
            return 0; /* EAGAIN, or retried on the next readiness */
        }
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        if (!lws_adopt_socket_vhost(vh, fd))
            close(fd);
    }
}

int hd_listener_adopt(hd_io_thread *io, int fd)
{
    struct lws_vhost *vh = lws_get_vhost_by_name(io->ctx, "default");
    lws_sock_file_fd_type u;
    u.filefd = (lws_filefd_type)fd;
    struct lws *wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u, "herald-listen", NULL);
    return wsi ? 0 : HD_EIO;
}
