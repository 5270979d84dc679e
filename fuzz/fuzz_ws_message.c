/* fuzz_ws_message.c - libFuzzer target: what WebSocket clients send, through
 * the real message handler (src/adapter/handler/events.c hd_session_on_message:
 * pusher:subscribe with auth and channel_data, unsubscribe, signin with
 * watchlists, client events, ping) on a socket-less server (fuzz_server.h).
 *
 * Input: records separated by '\n' (see fuzz/README.md):
 *   <text>                          a text message from connection 0
 *   @D <text>                       a text message from connection D (0-3)
 *   ~D <text>                       a text fragment, not final (the next frame of D continues it)
 *   #D <bytes>                      a binary message from connection D
 *   +D <json>                       a text message from D with its auth signed for D's socket id
 *   !open D <target> [<origin>]     D reconnects with this upgrade target (/app/<key>?protocol=7)
 *   !close D                        D goes away
 *   !choke D, !unchoke D            D's socket stops / starts taking data
 *   !publish <channel> <event> <data>   the HTTP API publishes on app-id
 *   !flood <channel> <n>            n (<= 64) publishes of 1 KB: fills slow consumers' buffers
 * After each record the io threads run until idle; every frame written is
 * checked (JSON object with an event, valid UTF-8, no client event echoed
 * to its sender) and the registry's counts must match the io threads'
 * local indexes; at the end every connection closes and nothing may be
 * left subscribed (fuzz_server.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_server.h"

#define MAX_RECORDS 256

static hd_config g_cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    hd_fuzz_quiet();
    hd_fuzz_config(&g_cfg);
    return 0;
}

/* "X<digit> " at the start of a record: the connection it names, else -1. */
static int conn_prefix(const char *rec, size_t len, char mark)
{
    if (len < 3 || rec[0] != mark || rec[1] < '0' || rec[1] > '9' || rec[2] != ' ')
        return -1;
    return (rec[1] - '0') % HD_FUZZ_CONNS;
}

static void publish(hd_fuzz_world *w, char *args)
{
    char *channel = strtok(args, " ");
    char *event = strtok(NULL, " ");
    char *payload = strtok(NULL, "");
    if (!channel || !event)
        return;
    hd_app *app = &w->srv->apps[0];
    hd_channel_type t;
    payload = payload ? payload : "";
    /* what http_events.c checks before it publishes */
    if (hd_channel_classify(channel, strlen(channel), hd_app_cfg(app)->max_channel_name_length, &t) != 0 ||
        strlen(event) > hd_app_cfg(app)->max_event_name_length || !hd_fuzz_utf8_valid(event, strlen(event), false) ||
        !hd_fuzz_utf8_valid(payload, strlen(payload), false))
        return;
    hd_server_publish(w->srv, app, channel, event, payload, strlen(payload), NULL);
}

static void flood(hd_fuzz_world *w, char *args)
{
    char *channel = strtok(args, " ");
    char *count = strtok(NULL, " ");
    hd_app *app = &w->srv->apps[0];
    hd_channel_type t;
    if (!channel || !count ||
        hd_channel_classify(channel, strlen(channel), hd_app_cfg(app)->max_channel_name_length, &t) != 0)
        return;
    char payload[1024];
    memset(payload, 'f', sizeof payload);
    for (int n = atoi(count) % 65; n > 0; n--)
        hd_server_publish(w->srv, app, channel, "flood", payload, sizeof payload, NULL);
}

static void control(hd_fuzz_world *w, char *cmd)
{
    char *verb = strtok(cmd, " ");
    if (!verb)
        return;
    if (!strcmp(verb, "publish"))
        return publish(w, strtok(NULL, ""));
    if (!strcmp(verb, "flood"))
        return flood(w, strtok(NULL, ""));
    char *d = strtok(NULL, " ");
    if (!d || d[0] < '0' || d[0] > '9')
        return;
    unsigned i = (unsigned)(d[0] - '0') % HD_FUZZ_CONNS;
    if (!strcmp(verb, "open")) {
        char *target = strtok(NULL, " ");
        hd_fuzz_open(w, i, target ? target : "", strtok(NULL, ""));
    } else if (!strcmp(verb, "close")) {
        hd_fuzz_close(w, i);
    } else if (!strcmp(verb, "choke") || !strcmp(verb, "unchoke")) {
        hd_fuzz_choke(w, i, verb[0] == 'c');
    }
}

static void signed_message(hd_fuzz_world *w, unsigned i, const char *json, size_t len)
{
    if (!w->conns[i].open)
        hd_fuzz_open(w, i, NULL, NULL); /* sign for the socket id it will have */
    char *text = hd_fuzz_sign_event(w, i, json, len);
    if (text)
        hd_fuzz_frame(w, i, text, strlen(text), true, false);
    else
        hd_fuzz_frame(w, i, json, len, true, false);
    hd_free(text);
}

static void record(hd_fuzz_world *w, const char *rec, size_t len)
{
    int i;
    if (len > 1 && rec[0] == '!') {
        char *cmd = hd_strndup(rec + 1, len - 1);
        control(w, cmd);
        hd_free(cmd);
    } else if ((i = conn_prefix(rec, len, '@')) >= 0) {
        hd_fuzz_frame(w, (unsigned)i, rec + 3, len - 3, true, false);
    } else if ((i = conn_prefix(rec, len, '~')) >= 0) {
        hd_fuzz_frame(w, (unsigned)i, rec + 3, len - 3, false, false);
    } else if ((i = conn_prefix(rec, len, '#')) >= 0) {
        hd_fuzz_frame(w, (unsigned)i, rec + 3, len - 3, true, true);
    } else if ((i = conn_prefix(rec, len, '+')) >= 0) {
        signed_message(w, (unsigned)i, rec + 3, len - 3);
    } else {
        hd_fuzz_frame(w, 0, rec, len, true, false);
    }
    hd_fuzz_pump(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hd_fuzz_world *w = hd_fuzz_world_new(&g_cfg);
    const char *p = (const char *)data, *end = p + size, *rec;
    size_t len;
    for (int n = 0; n < MAX_RECORDS && hd_fuzz_next_record(&p, end, "\n", &rec, &len); n++)
        record(w, rec, len);
    hd_fuzz_world_free(w);
    return 0;
}
