/* loop_batch.c - bounds how many ready sockets one turn of an io thread's
 * event loop takes from epoll.
 *
 * WHY
 * ---
 * libev grows its epoll event array each time a wait fills it and never
 * shrinks it. After a busy spell (a fan-out to 19 000 sockets) one turn
 * could take ten thousand ready sockets, and libev runs every one of them
 * before it looks at epoll again. In a mass disconnect that meant a new
 * client's accept, handshake and connection_established, which need three
 * turns, waited behind hundreds of milliseconds of closes. With turns of
 * at most HD_LOOP_BATCH sockets a turn lasts about a millisecond even
 * during a storm, and what is not taken stays ready in epoll (level
 * triggered) for the next turn.
 *
 * The herald executable is linked with -Wl,--wrap=epoll_wait, which sends
 * libev's epoll_wait() calls (libev is linked statically) here; nothing
 * else in herald calls epoll_wait.
 *
 * A full wait also tells young.c that a backlog is queued (hd_loop_backlog).
 *
 * THREADING: called by each io thread on its own loop; its one flag is
 * thread-local.
 */
#include <sys/epoll.h>

#include "adapter/adapter_internal.h"

#define HD_LOOP_BATCH 64

int __real_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
int __wrap_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);

int __wrap_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    int cap = maxevents < HD_LOOP_BATCH ? maxevents : HD_LOOP_BATCH;
    int n = __real_epoll_wait(epfd, events, cap, timeout);
    hd_loop_backlog = n == cap;
    return n;
}
