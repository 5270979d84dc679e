/* loop.c - herald_bench's epoll event loop, clocks and randomness.
 *
 * DESIGN
 * ------
 * Level-triggered epoll. Every registered object embeds a bench_io first,
 * whose pointer is the epoll cookie. Objects are never freed while the loop
 * runs (clients live in arrays and are reused), so a stale event can only
 * reach a reused object; an io added during the current batch is skipped
 * (added_epoch), and a closed io has fd -1. After each batch, and at least
 * every millisecond, the tick callback runs: scenarios pace their work
 * there (token counts from elapsed time, so the long-run rate is exact).
 *
 * THREADING
 * ---------
 * One loop per thread, and herald_bench runs one thread per process. The
 * random state is per process (seed it after fork).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define LOOP_MAX_EVENTS 512
#define LOOP_SCRATCH (256 * 1024)

struct bench_loop {
    int epfd;
    bool stop;
    uint64_t epoch;
    char *scratch;
};

static uint64_t rand_state = 0x9e3779b97f4a7c15ull;

uint64_t bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000u;
}

void bench_sleep_us(uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void bench_rand_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
        s = bench_now_us() ^ ((uint64_t)getpid() << 32);
    rand_state = s ? s : 1;
}

uint64_t bench_rand(void)
{
    rand_state ^= rand_state >> 12;
    rand_state ^= rand_state << 25;
    rand_state ^= rand_state >> 27;
    return rand_state * 0x2545f4914f6cdd1dull;
}

bench_loop *bench_loop_create(void)
{
    bench_loop *l = hd_calloc(1, sizeof *l);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        perror("epoll_create1");
        exit(1);
    }
    l->scratch = hd_malloc(LOOP_SCRATCH);
    return l;
}

void bench_loop_destroy(bench_loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    hd_free(l->scratch);
    hd_free(l);
}

char *bench_loop_scratch(bench_loop *l, size_t *cap)
{
    *cap = LOOP_SCRATCH;
    return l->scratch;
}

int bench_loop_add(bench_loop *l, bench_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    io->added_epoch = l->epoch;
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev);
}

int bench_loop_mod(bench_loop *l, bench_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void bench_loop_close(bench_loop *l, bench_io *io)
{
    if (io->fd < 0)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    close(io->fd);
    io->fd = -1;
}

void bench_loop_stop(bench_loop *l)
{
    l->stop = true;
}

static void loop_dispatch(bench_loop *l, struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        bench_io *io = evs[i].data.ptr;
        if (io->fd < 0 || io->added_epoch == l->epoch)
            continue; /* closed, or re-added after this batch was collected */
        io->cb(io, evs[i].events);
    }
}

void bench_loop_run(bench_loop *l, bench_tick_fn tick, void *arg)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    l->stop = false;
    while (!l->stop) {
        int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, 1);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            exit(1);
        }
        l->epoch++;
        if (n > 0)
            loop_dispatch(l, evs, n);
        if (tick)
            tick(arg, bench_now_us());
    }
}
