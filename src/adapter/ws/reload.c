/* reload.c - SIGHUP: apply a freshly loaded configuration's app list to the
 * running server without dropping connections; the TLS reload hook.
 *
 * DESIGN
 * ------
 * Apps are matched by id. An app that stays keeps its slot (registry,
 * channels, connections, counters) and, if its settings changed, gets the
 * new hd_app_config by an atomic pointer swap: each operation reads the
 * pointer once (hd_app_cfg), so a new secret applies from the next
 * signature check and a new key from the next connection. A new app is
 * appended to the app array, which was allocated at start-up with
 * HD_APP_HEADROOM spare slots and so never moves. A removed app keeps its
 * slot, flagged removed: lookups skip it (new connections 4001, HTTP API
 * 404) and every io thread is told through its inbox to close the app's
 * sessions with pusher:error + close 4001, as a new connection would get;
 * its cleanup and its webhooks (channel_vacated ...) run as usual. An app
 * re-added later comes back in its old slot.
 *
 * Changes go in this order: removals, then changed apps, then new ones, so
 * a key that a removed app frees can be taken by another. Every loaded
 * configuration is kept (srv->reloads) until the server is destroyed:
 * threads may hold pointers into any version, and reloads are rare.
 *
 * THREADING
 * ---------
 * Main thread only: it is the only writer of srv->apps, n_apps, each app's
 * cfg and removed flag, and the webhook pool's slots. Readers (io threads,
 * cleanup workers, webhook senders, the metrics thread) use acquire loads
 * and never see a half-built app: a slot is filled, and its webhooks set
 * up, before the release store of n_apps that makes it visible; a settings
 * object is complete before its pointer is published and is never freed
 * before the server.
 */
#include <string.h>

#include "adapter/adapter_internal.h"
#include "webhooks/webhooks.h"

typedef struct reload_counts {
    size_t added, changed, removed, unchanged;
} reload_counts;

/* The slot of the app with this id among [0, n), removed ones included. */
static hd_app *slot_by_id(hd_server *srv, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(hd_app_cfg(&srv->apps[i])->id, id) == 0)
            return &srv->apps[i];
    return NULL;
}

static size_t count_new_apps(hd_server *srv, const hd_config *cfg)
{
    size_t n = hd_server_n_apps(srv), fresh = 0;
    for (size_t i = 0; i < cfg->n_apps; i++)
        fresh += slot_by_id(srv, n, cfg->apps[i].id) == NULL;
    return fresh;
}

/* Tell every io thread to close the app's sessions (fanout.c). */
static void close_sessions(hd_server *srv, hd_app *app)
{
    for (unsigned t = 0; t < srv->n_threads; t++) {
        hd_inbox_item *it = hd_calloc(1, sizeof *it);
        it->kind = HD_INBOX_APP_REMOVED;
        it->app = app;
        hd_io_inbox_push(&srv->threads[t], it);
    }
}

static void remove_missing(hd_server *srv, const hd_config *cfg, reload_counts *rc)
{
    size_t n = hd_server_n_apps(srv);
    for (size_t i = 0; i < n; i++) {
        hd_app *app = &srv->apps[i];
        const char *id = hd_app_cfg(app)->id;
        if (atomic_load(&app->removed) || hd_config_app_by_id(cfg, id))
            continue;
        /* flagged before the inbox push: a handshake a thread runs after
         * draining the push cannot find the app any more */
        atomic_store_explicit(&app->removed, true, memory_order_release);
        close_sessions(srv, app);
        rc->removed++;
        hd_log(HD_LOG_NOTICE, "reload", "app %s removed: new connections get %d, its API 404; closing its %u "
               "connection(s) with %d", id, HD_CLOSE_APP_NOT_FOUND, atomic_load(&app->connections),
               HD_CLOSE_APP_NOT_FOUND);
    }
}

/* Apps present before: new settings, or back from removal. */
static void update_existing(hd_server *srv, const hd_config *cfg, reload_counts *rc)
{
    size_t n = hd_server_n_apps(srv);
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const hd_app_config *next = &cfg->apps[i];
        hd_app *app = slot_by_id(srv, n, next->id);
        if (!app)
            continue;
        bool was_removed = atomic_load(&app->removed);
        if (!was_removed && hd_config_app_equal(hd_app_cfg(app), next)) {
            rc->unchanged++; /* keeps its old pointer: nothing to swap */
            continue;
        }
        hd_webhooks_app_set(srv->webhooks, app->index, next);
        atomic_store_explicit(&app->cfg, next, memory_order_release);
        if (was_removed) {
            /* after the settings: whoever sees it back sees the new ones */
            atomic_store_explicit(&app->removed, false, memory_order_release);
            rc->added++;
        } else {
            rc->changed++;
        }
        hd_log(HD_LOG_NOTICE, "reload", "app %s: %s", next->id, was_removed ? "added back" : "settings updated");
    }
}

static void add_new(hd_server *srv, const hd_config *cfg, reload_counts *rc)
{
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const hd_app_config *next = &cfg->apps[i];
        size_t n = hd_server_n_apps(srv);
        if (slot_by_id(srv, n, next->id))
            continue;
        hd_assert(n < srv->max_apps); /* checked before anything changed */
        hd_app_slot_init(srv, n, next);
        hd_webhooks_app_set(srv->webhooks, (unsigned)n, next);
        atomic_store_explicit(&srv->n_apps, n + 1, memory_order_release); /* the slot is complete */
        rc->added++;
        hd_log(HD_LOG_NOTICE, "reload", "app %s added", next->id);
    }
}

static void log_changed_key(const char *path, bool app_default, void *arg)
{
    if (app_default)
        hd_log(HD_LOG_NOTICE, "reload", "%s changed: applied to the apps that leave it out", path);
    else
        hd_log(HD_LOG_WARN, "reload", "%s changed: it needs a restart (the running value is kept)", path);
}

static void keep(hd_server *srv, hd_config *cfg)
{
    srv->reloads = hd_realloc(srv->reloads, (srv->n_reloads + 1) * sizeof *srv->reloads);
    srv->reloads[srv->n_reloads++] = cfg;
}

int hd_server_reload(hd_server *srv, hd_config *cfg)
{
    size_t fresh = count_new_apps(srv, cfg), n = hd_server_n_apps(srv);
    if (n + fresh > srv->max_apps) {
        hd_log(HD_LOG_ERR, "reload", "refused: %zu new app(s) do not fit (room for %zu apps: the apps configured at "
               "start-up + %d; %zu slot(s) in use, removed apps included); nothing changed, restart to add them",
               fresh, srv->max_apps, HD_APP_HEADROOM, n);
        hd_config_free(cfg);
        hd_free(cfg);
        return HD_EINVAL;
    }
    keep(srv, cfg);
    reload_counts rc = {0};
    remove_missing(srv, cfg, &rc);
    update_existing(srv, cfg, &rc);
    add_new(srv, cfg, &rc);
    hd_config_diff(srv->cfg, cfg, log_changed_key, NULL);
    hd_log(HD_LOG_NOTICE, "reload", "apps: %zu added, %zu changed, %zu removed, %zu unchanged", rc.added, rc.changed,
           rc.removed, rc.unchanged);
    return 0;
}

/* Reload the TLS certificate and key from their files (tls.c). Called on
 * every SIGHUP, also when the configuration file itself fails to load: a
 * renewed certificate must not wait for an unrelated typo to be fixed. */
void hd_server_reload_tls(hd_server *srv)
{
    if (srv->tls)
        hd_tls_reload(srv->tls);
}
