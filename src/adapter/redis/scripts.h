/* scripts.h - the Lua scripts that hold every piece of cluster-state logic
 * of the Redis adapter, and their calling contract.
 *
 * The sources live in src/adapter/redis/lua/ (prelude.lua + one file per
 * script); the build prepends the prelude to each script and embeds the
 * result (cmake/embed_lua.cmake), so the binary carries them. The adapter
 * loads them with SCRIPT LOAD after every connect and calls them with
 * EVALSHA <sha> 0 <ARGV...> (no KEYS: every script builds its key names
 * from the prefix in ARGV[1]; v1 targets a standalone Redis). A NOSCRIPT
 * error reloads and retries once.
 *
 * THREADING: the functions below return static strings; any thread.
 *
 * CONVENTIONS (all scripts)
 * -------------------------
 * - P = ARGV[1], the key prefix (adapter.redis.prefix). App-scoped keys are
 *   P:{A}:... (docs/CLUSTER.md section 3). inc = "<num>-<k>", num = the 15
 *   decimal digits of the node number. Times are Redis TIME in ms.
 * - Numbers in ARGV are decimal strings. Integers in replies are Redis
 *   integers unless said otherwise; strings are bulk strings.
 * - Fenced scripts (member, quota, renew, resync_begin, sweep) first check
 *   ZSCORE P:nodes inc: missing or < now -> error reply "LEASE_LOST ...";
 *   nothing is written and nothing is published.
 * - Bad arguments -> error reply "ERR herald: ..." (nothing written).
 * - Counts are absolute: re-sending the same call changes nothing and
 *   publishes nothing (except a J message when a token asks for one). A
 *   count that would go below 0 is clamped at 0 and P:inconsistent is
 *   incremented.
 * - Pub/sub payloads: "<origin> <kind> <except>\n<frame>". origin = the
 *   publishing node's num, "0" for everything a script publishes; kind:
 *     P  publish (a node's event), T terminate user (frame = user id),
 *     M  membership / internal frame published by a script (member_added,
 *        member_removed, watchlist online/offline, subscription_count):
 *        delivered by every node, the one that ran the script included,
 *     J  join result on P:n:<num> (body below),
 *     R  read result on P:n:<num> (READ_ONLINE with a token);
 *   except = a socket id, or "-" for none.
 *   Channels: P:m:<A>:<c> (one per app + channel), P:n:<num> (one node).
 * - Netstring: "<decimal length>:<bytes>," (bytes may contain anything).
 *
 * J MESSAGE (member with token != 0): "0 J -\n" followed by 9 netstrings:
 *   1 token        the token argument, verbatim
 *   2 status       "0" OK, "1" LIMIT (the joining user was refused)
 *   3 subscribers  cluster-wide connections of c after the call
 *   4 users        cluster-wide distinct presence users of c after the call
 *   5 presence     presence channels and status 0: exactly what
 *                  hd_channel_join builds, {"presence":{"ids":[...],
 *                  "hash":{...},"count":N}}, members sorted bytewise by u
 *                  (ids are JSON strings of u; hash values the first
 *                  user_info received, or null); "" otherwise
 *   6 cache        cache channels and status 0: the cached frame, "" on a miss
 *   7 cache_ttl_s  seconds the cached frame has left (PTTL rounded up), "0" on a miss
 *   8 first_miss   "1" when this miss is the first of the empty spell
 *                  (send the cache_miss webhook), else "0"
 *   9 hooks        the webhooks this call crossed, reported with the answer
 *                  (so they go out before the subscriber can act on it):
 *                  "1"/"0" channel_occupied, "\x1f", the subscription_count
 *                  total when that webhook is due ("" when not), then
 *                  "\x1f<u>" per member_added ("0" when refused)
 *   Published BEFORE the script's M frames, so the joining socket (pending
 *   until J) receives the subscription_count frame of its own join and
 *   every later message, as in single-node mode.
 */
#ifndef HD_REDIS_SCRIPTS_H
#define HD_REDIS_SCRIPTS_H

enum hd_redis_script {
    /* register: ARGV P, inc, num, lease_ms, gen_candidate, owner, host, pid, started_ms, version
     *   owner: a random string unique to this process (the same for all its incarnations).
     *   If P:gen is missing: SET P:gen gen_candidate, rebuild = 1 (Redis lost its data: re-assert).
     *   If inc is in P:nodes with an expired lease -> error "LEASE_LOST" (take a new k).
     *   If P:num:<num> names another inc whose P:node hash has a different owner -> error
     *   "NUM_TAKEN" (draw another num). Else SET P:num:<num> inc, ZADD P:nodes inc now+lease_ms,
     *   HSET P:node:<inc> num host pid started_ms version owner (+ epoch 1 when fresh).
     * Reply: array {0, gen (string), rebuild (0|1), now_ms, fresh (1 = inc was not registered:
     *   nothing of it is in Redis)}. Publishes nothing. */
    HD_RS_REGISTER,
    /* renew: ARGV P, inc, lease_ms
     *   Fenced (an expired lease is never renewed). ZADD P:nodes XX inc now+lease_ms.
     * Reply: integer now_ms. Publishes nothing. */
    HD_RS_RENEW,
    /* expired: ARGV P, limit
     * Reply: array of inc strings whose lease ended (score < now), at most limit. Read only. */
    HD_RS_EXPIRED,
    /* resync_begin: ARGV P, inc
     *   Fenced. HINCRBY P:node:<inc> epoch 1.
     * Reply: integer, the new epoch (pass it to every member call of the resync, then to sweep). */
    HD_RS_RESYNC_BEGIN,
    /* member: ARGV
     *   1 P, 2 inc, 3 num, 4 A, 5 c, 6 epoch, 7 node_count (absolute: this node's subscriptions of c),
     *   8 max_members (0 = no limit), 9 hold_ms, 10 cache_ttl_s, 11 token ("0" = no J message),
     *   12 except (socket id excluded from member_added, "" = none),
     *   13 full ("1" = the users listed are this node's complete list for c: every other user of
     *      this node in c is set to 0), 14 count_events ("1" = the app has subscription_count
     *      enabled), 15 online_frame, 16 offline_frame (watchlist frames for c =
     *      "#server-to-user-<id>"; "" = let the script build them, same bytes as hd_frame_watchlist),
     *   then 5 values per presence user: u (string form of user_id), node_user_count (absolute: this
     *      node's sockets of u in c), record (user_id_json "\x1f" user_info_json; info may be empty =
     *      null), added_frame, removed_frame.
     * Steps: fence. Presence limit (max_members > 0): a user new cluster-wide with node_user_count > 0
     *   is admitted only while HLEN pu < max_members. With token != 0 a refusal writes and publishes
     *   nothing but the J message (status LIMIT); with token = 0 refused users are skipped, the rest
     *   applied, status LIMIT. Users: 0 -> >0 cluster-wide = member_added: first record wins, PUBLISH
     *   added_frame (kind M, except) on P:m:<A>:<c>, cancel a pending hold m\x1fA\x1fc\x1fu (then no
     *   webhook either: the removal was never reported). >0 -> 0 = member_removed: PUBLISH the
     *   removed_frame stored by the first record (kind M, except -), hold m\x1fA\x1fc\x1fu until
     *   now+hold_ms. Channel: 0 -> >0 = occupied (cancels a pending hold v\x1fA\x1fc: then hook 0),
     *   >0 -> 0 = vacated (hold v\x1fA\x1fc; channels starting with '#' get no holds and no hooks).
     *   #server-to-user-<id>: occupied -> online_frame, vacated -> offline_frame, kind M, except -,
     *   on P:m:<A>:#watch-<id>. subscription_count (c not starting with '#' nor "presence-", total
     *   changed and > 0): due when total <= 100 or >= 5 s since the last one above 100; if due and
     *   count_events = 1, PUBLISH the hd_frame_subscription_count frame (kind M, except -).
     *   Publish order: J (token != 0), member frames, watchlist frame, subscription_count frame.
     * Reply: array {status (0 OK | 1 LIMIT), occupied (0|1), hook_occupied (0|1: send the
     *   channel_occupied webhook), vacated (0|1), count_due (0|1: send the subscription_count
     *   webhook with total), total (cluster connections of c after), users (distinct users after),
     *   then one triple per user crossing: u, "added"|"removed", hook (1: send member_added;
     *   always 0 for removed: that webhook comes from HD_RS_HOLDS)}.
     * A member call with unchanged counts and a token is also the fenced presence snapshot read
     * (presence refresh after a reconnect): it changes nothing and answers with a J message. */
    HD_RS_MEMBER,
    /* quota: ARGV P, inc, A, op ("take" | "release" | "set"), max, n
     *   Fenced. take: sum(HVALS P:{A}:conns) >= max (max > 0) -> status 2 QUOTA, else HINCRBY conns
     *   inc 1. release: HINCRBY conns inc -1, floor 0. set: HSET conns inc n (HDEL when 0).
     * Reply: integer status, 0 OK or 2 QUOTA. Publishes nothing. */
    HD_RS_QUOTA,
    /* reap: ARGV P, dead (an inc), batch, hold_ms, force ("1" = own graceful leave)
     *   Unless force: a lease of dead still valid -> reply {1, 0, 0, 0, 0, {}} (ALIVE), nothing done.
     *   Zeroes at most batch channels of dead (and every user of dead in them) exactly as member
     *   with counts 0 would: same publishes, holds and clamping. An app without channels left loses
     *   dead's quota entry; with no app left dead is removed from P:nodes, P:node:<dead> and
     *   P:num:<num> (if it still names dead). Idempotent, safe on several nodes at once: each
     *   crossing is published once. Call until remaining = 0.
     * Reply: array {status (0 done | 1 ALIVE), remaining (channels of dead still to zero),
     *   channels (entries zeroed by this call), vacated (channel crossings), removed (member
     *   crossings), counts (array of triples A, c, total: send the subscription_count webhook)}. */
    HD_RS_REAP,
    /* sweep: ARGV P, inc, epoch, batch, hold_ms
     *   Fenced. After a resync: zeroes at most batch of inc's channel entries whose epoch is
     *   < epoch (not re-asserted: they left while Redis was away), like reap. Call until
     *   remaining = 0.
     * Reply: same array as reap (status always 0). */
    HD_RS_SWEEP,
    /* holds: ARGV P, batch, flush ("1" = pop up to batch entries even if not due: last node leaving)
     *   Pops due held entries; keeps those still true: v (HEXISTS P:{A}:subs c = 0) and m
     *   (HEXISTS P:{A}:pu:<c> u = 0). One pop per entry: each is returned to exactly one caller.
     * Reply: array {remaining (due entries left; with flush: all entries left), then 4 strings per
     *   confirmed entry: kind ("v" channel_vacated | "m" member_removed), A, c, u ("" for v)}. */
    HD_RS_HOLDS,
    /* publish_cache: ARGV P, A, c, ttl_ms, origin (num), except ("" = none), frame
     *   SET P:{A}:cache:<c> frame PX ttl_ms, DEL P:{A}:cmiss:<c>, PUBLISH P:m:<A>:<c>
     *   "<origin> P <except|->\n<frame>" - one script, so cache and message agree in order.
     * Reply: integer, PUBLISH's receiver count. */
    HD_RS_PUBLISH_CACHE,
    /* read_channels: ARGV P, A, prefix ("" = all)
     * Reply: bulk string, the HD_AD_READ_CHANNELS body: one "name\tsubscribers\tusers\n" per
     *   occupied channel not starting with '#' whose name starts with prefix, sorted bytewise by
     *   name (users = 0 outside presence channels). Read only. */
    HD_RS_READ_CHANNELS,
    /* read_channel: ARGV P, A, c
     * Reply: array {subscribers, users, cache (the cached frame, "" = none), cache_ttl_s (PTTL
     *   rounded up to seconds, 0 = none)}. Read only. */
    HD_RS_READ_CHANNEL,
    /* read_users: ARGV P, A, c
     * Reply: bulk string, the HD_AD_READ_USERS body {"users":[{"id":"1"},...]}, ids = the JSON
     *   strings of u sorted bytewise ({"users":[]} when empty). Read only. */
    HD_RS_READ_USERS,
    /* read_online: ARGV P, A, num, token ("0" = no R message), then user ids
     * Reply: bulk string, the HD_AD_READ_ONLINE body: one '0' or '1' per id in order (1 = the
     *   user's #server-to-user-<id> has subscribers). With token != 0 also PUBLISHes on P:n:<num>
     *   "0 R -\n" + netstring(token) + netstring(body), ordered with the #watch- M frames. */
    HD_RS_READ_ONLINE,
    HD_RS_COUNT
};

/* The full source (prelude + script) of script which (0 <= which <
 * HD_RS_COUNT), NUL-terminated; NULL when out of range. */
const char *hd_redis_script_source(int which);
/* Its short name ("member", "read_users", ...) for logs; NULL when out of range. */
const char *hd_redis_script_name(int which);

#endif /* HD_REDIS_SCRIPTS_H */
