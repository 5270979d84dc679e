/* main.c - command line, configuration, signals, and the server's life.
 *
 * THREADING: the main thread blocks SIGINT/SIGTERM/SIGHUP before any
 * thread starts (threads inherit the mask) and waits for them with
 * sigwait(), so shutdown and reloads run as ordinary code, not in a signal
 * handler. A SIGHUP reloads the app list (src/adapter/reload.c) on this
 * thread and the loop goes on; SIGINT/SIGTERM end it.
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

#include "adapter/adapter.h"
#include "config/config.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: herald [--config FILE]\n"
            "       herald --check-config FILE\n"
            "       herald --version | --help\n\n"
            "Pusher Channels protocol server. With no --config, runs on the default\n"
            "configuration compiled into the binary (config/config.json).\n"
            "HERALD_* environment variables override configuration keys; see\n"
            "docs/CONFIGURATION.md.\n");
}

static int load(hd_config *cfg, const char *path)
{
    char err[512] = "";
    int rc = path ? hd_config_load_file(cfg, path, environ, err, sizeof err)
                  : hd_config_load_json(cfg, hd_config_embedded_json, strlen(hd_config_embedded_json), environ, err,
                                        sizeof err);
    if (rc)
        fprintf(stderr, "herald: %s\n", err);
    return rc;
}

static sigset_t stop_signals;

/* During the graceful shutdown a second SIGINT/SIGTERM ends the process at
 * once: an operator pressing Ctrl-C twice means it. */
static void *second_signal(void *arg)
{
    int sig = 0;
    sigwait(&stop_signals, &sig);
    hd_log(HD_LOG_WARN, "main", "signal %d again during shutdown: exiting at once", sig);
    hd_log_exit(1, "stopped without finishing the shutdown");
    _exit(1);
    return NULL;
}

/* SIGHUP: load the file again exactly as at start-up (same loader,
 * HERALD_* overrides included) and let the server apply its app list. A
 * file that does not load changes nothing: the loader's message names the
 * key. */
static void reload(hd_server *srv, const char *path)
{
    hd_server_reload_tls(srv);
    if (!path) {
        hd_log(HD_LOG_NOTICE, "main", "SIGHUP: running on the embedded configuration (no --config): nothing to "
               "reload");
        return;
    }
    hd_log(HD_LOG_NOTICE, "main", "SIGHUP: reloading %s", path);
    hd_config *next = hd_malloc(sizeof *next);
    char err[512] = "";
    if (hd_config_load_file(next, path, environ, err, sizeof err) != 0) {
        hd_log(HD_LOG_ERR, "main", "reload failed, nothing changed (still running on the previous configuration): %s",
               err);
        hd_free(next);
        return;
    }
    hd_server_reload(srv, next); /* takes next */
}

/* Until SIGINT/SIGTERM: each SIGHUP reloads. Returns the stop signal. */
static int wait_for_stop(hd_server *srv, const sigset_t *set, const char *path)
{
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            return sig;
        reload(srv, path);
    }
}

/* Runs the server until SIGINT/SIGTERM; returns the exit status, with
 * *what saying how the run ended (for the final log line). */
static int serve(const hd_config *cfg, const char *path, const char **what)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    stop_signals = set; /* the second-signal watcher: SIGHUP stays blocked and ignored during shutdown */
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    hd_server *srv;
    *what = "not started"; /* the reason (a port in use, a bad certificate, ...) was logged just before */
    if (hd_server_create(&srv, cfg) != 0)
        return 1;
    if (hd_server_start(srv) != 0) {
        hd_server_destroy(srv);
        return 1;
    }
    int sig = wait_for_stop(srv, &set, path);
    hd_log(HD_LOG_NOTICE, "main", "signal %d received: shutting down gracefully (a second one exits at once)", sig);
    pthread_t second;
    if (pthread_create(&second, NULL, second_signal, NULL) == 0)
        pthread_detach(second);
    hd_server_shutdown(srv);
    hd_server_destroy(srv);
    *what = "stopped";
    return 0;
}

/* glibc gives freed memory back to the kernel as soon as 128 KiB sit free
 * at the top of a heap, and maps buffers over a moving threshold on their
 * own: a stream of 10 KB publishes grew and shrank the io thread's heap
 * on every few requests, and the page faults and TLB shootdowns of that
 * cost a fifth of the CPU of a trigger (71 -> 57 us). Keep up to 32 MiB
 * of free heap and map only buffers of 4 MiB and more; memory a storm
 * freed is still reused, so RSS does not grow from one storm to the next. */
static void tune_malloc(void)
{
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", required_argument, NULL, 'k'},
                                         {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    tune_malloc();
    const char *path = NULL;
    bool check_only = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:k:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'k': path = optarg; check_only = true; break;
        case 'v': printf("herald %s\n", HERALD_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    hd_config cfg;
    if (load(&cfg, path) != 0) {
        if (!check_only) /* a run that never started still ends with its exit status */
            hd_log_exit(1, "not started: the configuration did not load");
        return 1;
    }
    if (check_only) {
        printf("herald: %s: configuration OK (%zu app(s))\n", path, cfg.n_apps);
        hd_config_free(&cfg);
        return 0;
    }
    hd_log_set_level(hd_config_log_level(&cfg));
    hd_log_set_format(hd_log_format_parse(cfg.log_format));
    const char *what = "stopped";
    int rc = serve(&cfg, path, &what);
    hd_config_free(&cfg);
    /* Every run ends with this line, whatever the exit status; the second
     * signal's path (second_signal) writes its own before _exit. */
    hd_log_exit(rc, what);
    return rc;
}
