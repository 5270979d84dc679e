/* workers.c - herald_bench's worker processes and the pipes that drive
 * them.
 *
 * DESIGN
 * ------
 * The parent forks each worker with two pipes. Parent -> worker: one-byte
 * commands ('g' go, 'd' drop, 'q' quit and report, ...), read by the
 * worker's loop. Worker -> parent: framed messages {u32 type, u32 len,
 * payload}, written blocking (a result is ~100 KiB, bigger than a pipe; the
 * parent reads one worker at a time, and no worker waits on another, so
 * this cannot deadlock). Each worker raises its soft RLIMIT_NOFILE to the
 * hard limit. A worker whose parent dies sees EOF on its command pipe and
 * exits (pool/scenario loops treat EOF as 'q').
 *
 * THREADING
 * ---------
 * bench_proc_* run in the parent, bench_child_* in a worker; each process
 * is single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MAX_LIVE 256

static pid_t live[MAX_LIVE]; /* parent: spawned, not reaped */
static int n_live;

static void live_add(pid_t pid)
{
    if (n_live < MAX_LIVE)
        live[n_live++] = pid;
}

static void live_remove(pid_t pid)
{
    for (int i = 0; i < n_live; i++)
        if (live[i] == pid) {
            live[i] = live[--n_live];
            return;
        }
}

int bench_proc_live(pid_t *out, int cap)
{
    int n = n_live < cap ? n_live : cap;
    memcpy(out, live, (size_t)n * sizeof *out);
    return n;
}

typedef struct msg_head {
    uint32_t type, len;
} msg_head;

int bench_proc_spawn(bench_proc *p, int index, int nprocs, const bench_opts *o, bench_child_main fn)
{
    int cmd[2], msg[2];
    if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(msg, O_CLOEXEC) < 0) {
        perror("pipe");
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        close(cmd[1]);
        close(msg[0]);
        bench_rand_seed();
        bench_raise_nofile();
        fcntl(cmd[0], F_SETFL, O_NONBLOCK);
        bench_child c = {.cmd_io = {.fd = cmd[0]}, .msg_fd = msg[1], .index = index, .nprocs = nprocs, .o = o};
        fflush(stdout);
        _exit(fn(&c));
    }
    close(cmd[0]);
    close(msg[1]);
    live_add(pid);
    p->pid = pid;
    p->cmd_fd = cmd[1];
    p->msg_fd = msg[0];
    p->index = index;
    return 0;
}

int bench_proc_spawn_all(bench_proc *ps, int n, const bench_opts *o, bench_child_main fn)
{
    for (int i = 0; i < n; i++) {
        if (bench_proc_spawn(&ps[i], i, n, o, fn) < 0) {
            bench_proc_kill(ps, i);
            return -1;
        }
    }
    return 0;
}

void bench_proc_cmd(bench_proc *ps, int n, char cmd)
{
    for (int i = 0; i < n; i++)
        if (ps[i].cmd_fd >= 0 && bench_write_all(ps[i].cmd_fd, &cmd, 1) < 0)
            fprintf(stderr, "herald_bench: worker %d is gone\n", (int)ps[i].pid);
}

/* Read exactly n bytes before the deadline; -1 on EOF, error or timeout. */
static int read_full(int fd, void *p, size_t n, uint64_t deadline_us)
{
    char *c = p;
    while (n > 0) {
        uint64_t now = bench_now_us();
        if (now >= deadline_us)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int timeout = (int)((deadline_us - now) / 1000) + 1;
        int rc = poll(&pfd, 1, timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            continue;
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Next message of p into head and payload (payload grown as needed). */
static int read_msg(bench_proc *p, msg_head *head, hd_buf *payload, uint64_t deadline_us)
{
    if (read_full(p->msg_fd, head, sizeof *head, deadline_us) < 0)
        return -1;
    payload->len = 0;
    hd_buf_reserve(payload, head->len);
    if (head->len && read_full(p->msg_fd, payload->data, head->len, deadline_us) < 0)
        return -1;
    payload->len = head->len;
    return 0;
}

int bench_proc_wait(bench_proc *ps, int n, int type, uint64_t *vals, int timeout_ms)
{
    uint64_t deadline = bench_now_us() + (uint64_t)timeout_ms * 1000u;
    hd_buf payload;
    hd_buf_init(&payload);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        msg_head h = {0, 0};
        while (rc == 0 && h.type != (uint32_t)type)
            rc = read_msg(&ps[i], &h, &payload, deadline);
        if (rc == 0 && vals)
            vals[i] = payload.len >= 8 ? *(uint64_t *)payload.data : 0;
        if (rc < 0)
            fprintf(stderr, "herald_bench: worker %d: no message %d (timeout or exit)\n", (int)ps[i].pid, type);
    }
    hd_buf_deinit(&payload);
    return rc;
}

static void add_result(const hd_buf *payload, bench_result *sum, uint64_t *extra, size_t n_extra)
{
    bench_result r;
    if (payload->len < sizeof r)
        return;
    memcpy(&r, payload->data, sizeof r);
    bench_result_merge(sum, &r);
    size_t have = (payload->len - sizeof r) / sizeof(uint64_t);
    const uint64_t *x = (const uint64_t *)(payload->data + sizeof r);
    for (size_t i = 0; extra && i < have && i < n_extra; i++)
        extra[i] += x[i];
}

int bench_proc_collect(bench_proc *ps, int n, char cmd, bench_result *sum, uint64_t *extra, size_t n_extra)
{
    hd_buf payload;
    hd_buf_init(&payload);
    int rc = 0;
    bench_proc_cmd(ps, n, cmd);
    for (int i = 0; i < n; i++) {
        msg_head h = {0, 0};
        uint64_t deadline = bench_now_us() + 60 * 1000000ull;
        int r = 0;
        while (r == 0 && h.type != BM_RESULT)
            r = read_msg(&ps[i], &h, &payload, deadline);
        if (r == 0) {
            add_result(&payload, sum, extra, n_extra);
        } else {
            rc = -1;
            fprintf(stderr, "herald_bench: worker %d sent no result\n", (int)ps[i].pid);
        }
    }
    hd_buf_deinit(&payload);
    return rc;
}

void bench_proc_reap(bench_proc *ps, int n)
{
    for (int i = 0; i < n; i++) {
        if (ps[i].pid <= 0)
            continue;
        close(ps[i].cmd_fd);
        close(ps[i].msg_fd);
        int st;
        waitpid(ps[i].pid, &st, 0);
        live_remove(ps[i].pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "herald_bench: worker %d ended with status %d\n", (int)ps[i].pid, st);
        ps[i].pid = 0;
    }
}

void bench_proc_kill(bench_proc *ps, int n)
{
    for (int i = 0; i < n; i++)
        if (ps[i].pid > 0)
            kill(ps[i].pid, SIGKILL);
    bench_proc_reap(ps, n);
}

void bench_child_post(bench_child *c, int type, const void *payload, size_t len)
{
    msg_head h = {(uint32_t)type, (uint32_t)len};
    if (bench_write_all(c->msg_fd, &h, sizeof h) < 0 || (len && bench_write_all(c->msg_fd, payload, len) < 0))
        _exit(3); /* the parent is gone */
}

void bench_child_post_u64(bench_child *c, int type, uint64_t v)
{
    bench_child_post(c, type, &v, sizeof v);
}

void bench_child_post_result(bench_child *c, const bench_result *r, const uint64_t *extra, size_t n_extra)
{
    size_t len = sizeof *r + n_extra * sizeof(uint64_t);
    char *buf = hd_malloc(len);
    memcpy(buf, r, sizeof *r);
    if (n_extra)
        memcpy(buf + sizeof *r, extra, n_extra * sizeof(uint64_t));
    bench_child_post(c, BM_RESULT, buf, len);
    hd_free(buf);
}

static void child_on_cmd(bench_io *io, uint32_t events)
{
    bench_child *c = (bench_child *)io;
    char cmds[64];
    ssize_t r = read(io->fd, cmds, sizeof cmds);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) { /* the parent is gone */
        bench_loop_close(c->loop, io);
        c->on_cmd(c->cmd_arg, 'q');
        return;
    }
    for (ssize_t i = 0; i < r; i++)
        c->on_cmd(c->cmd_arg, cmds[i]);
}

void bench_child_watch(bench_child *c, bench_loop *l, void (*fn)(void *arg, char cmd), void *arg)
{
    c->cmd_io.cb = child_on_cmd;
    c->loop = l;
    c->on_cmd = fn;
    c->cmd_arg = arg;
    bench_loop_add(l, &c->cmd_io, EPOLLIN);
}
