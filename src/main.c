/* main.c - command line, configuration, signals, and the server's life.
 *
 * THREADING: the main thread blocks SIGINT/SIGTERM before any thread
 * starts (threads inherit the mask) and waits for them with sigwait(), so
 * shutdown runs as ordinary code, not in a signal handler.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

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

static int log_level_of(const hd_config *cfg)
{
    static const char *names[] = {"error", "warn", "notice", "info", "debug"};
    if (cfg->debug)
        return HD_LOG_DEBUG;
    for (int i = 0; i < 5; i++)
        if (cfg->log_level && !strcmp(cfg->log_level, names[i]))
            return i;
    return HD_LOG_NOTICE;
}

static int serve(const hd_config *cfg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    hd_server *srv;
    if (hd_server_create(&srv, cfg) != 0)
        return 1;
    if (hd_server_start(srv) != 0) {
        hd_server_destroy(srv);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    hd_log(HD_LOG_NOTICE, "main", "signal %d received", sig);
    hd_server_shutdown(srv);
    hd_server_destroy(srv);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", required_argument, NULL, 'k'},
                                         {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
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
    if (load(&cfg, path) != 0)
        return 1;
    if (check_only) {
        printf("herald: %s: configuration OK (%zu app(s))\n", path, cfg.n_apps);
        hd_config_free(&cfg);
        return 0;
    }
    hd_log_set_level(log_level_of(&cfg));
    int rc = serve(&cfg);
    hd_config_free(&cfg);
    return rc;
}
