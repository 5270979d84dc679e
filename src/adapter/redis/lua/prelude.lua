-- prelude.lua - shared by every herald Redis script: prepended to each one
-- at build time (cmake/embed_lua.cmake), so everything here is a local of
-- the script's chunk (Redis forbids globals). The calling contract of each
-- script is in src/adapter/redis/scripts.h; the key layout in
-- docs/CLUSTER.md section 3, with two differences: no K:users hash (a
-- presence channel's user count is HLEN K:pu:<c>, one fewer thing to keep
-- in step), and K:cfg.count_events is written by member (from its ARGV), so
-- reap and sweep, which have no app config, can read it.
--
-- Every count written here is absolute per node: a script reads the node's
-- previous value, applies the difference to the cluster total, and only the
-- call that moves a total across 0 <-> 1 announces it. Re-sending a call
-- therefore changes nothing and publishes nothing.

local US = '\31' -- field separator inside values and hold entries (never in names, ids or JSON)
local HOLD_V, HOLD_M = 'v', 'm'
local USER_PREFIX = '#server-to-user-'
local COUNT_THROTTLE_ABOVE, COUNT_THROTTLE_MS = 100, 5000

-- ---- arguments and errors ----

local function bad_arg(i, what)
    error({err = 'ERR herald: ARGV[' .. i .. '] ' .. what})
end

local function arg_str(i)
    local v = ARGV[i]
    if v == nil then bad_arg(i, 'is missing') end
    return v
end

local function arg_int(i)
    local v = tonumber(arg_str(i))
    if not v or v < 0 or v ~= math.floor(v) then bad_arg(i, 'must be a non-negative integer') end
    return v
end

local function arg_flag(i)
    local v = arg_str(i)
    if v ~= '0' and v ~= '1' then bad_arg(i, 'must be 0 or 1') end
    return v == '1'
end

local function arg_name(i)
    local v = arg_str(i)
    if v == '' then bad_arg(i, 'must not be empty') end
    return v
end

local function lease_lost()
    return redis.error_reply('LEASE_LOST the lease of this incarnation is missing or expired')
end

-- ---- small helpers ----

local function fmt(n)
    return string.format('%d', n)
end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function starts(s, prefix)
    return s:sub(1, #prefix) == prefix
end

local function app_key(P, A)
    return P .. ':{' .. A .. '}'
end

-- Bytewise order (memcmp), the order ZRANGEBYLEX uses: Lua's own string
-- comparison follows the server's collation locale.
local function byte_less(a, b)
    local n = math.min(#a, #b)
    for i = 1, n do
        local x, y = a:byte(i), b:byte(i)
        if x ~= y then return x < y end
    end
    return #a < #b
end

local function sort_bytes(list)
    table.sort(list, byte_less)
    return list
end

local function netstring(s)
    return #s .. ':' .. s .. ','
end

-- The same bytes as hd_buf_json_string (src/common/common.c): short escapes
-- for " \ \n \r \t \b \f, \u00xx (lowercase hex) for the other bytes below
-- 0x20, everything else (DEL, UTF-8) as is.
local JSON_ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
                      ['\b'] = '\\b', ['\f'] = '\\f'}

local function json_escape_char(ch)
    return JSON_ESCAPES[ch] or string.format('\\u%04x', ch:byte())
end

local function json_str(s)
    return '"' .. s:gsub('[%z\1-\31"\\]', json_escape_char) .. '"'
end

-- ---- channel kinds (src/protocol: names decide the type) ----

local function is_listed(c) -- client-visible: herald's own channels start with '#'
    return c:sub(1, 1) ~= '#'
end

local function is_presence(c)
    return starts(c, 'presence-')
end

local function is_cache(c)
    return starts(c, 'cache-') or starts(c, 'private-cache-') or starts(c, 'private-encrypted-cache-')
        or starts(c, 'presence-cache-')
end

-- ---- frames: the same bytes as src/protocol/frame.c ----

local function event_frame(event, channel, data)
    local s = '{"event":' .. json_str(event)
    if channel then s = s .. ',"channel":' .. json_str(channel) end
    if data then s = s .. ',"data":' .. json_str(data) end
    return s .. '}'
end

local function watchlist_frame(online, user_id) -- hd_frame_watchlist
    local data = '{"events":[{"name":"' .. (online and 'online' or 'offline') .. '","user_ids":['
        .. json_str(user_id) .. ']}]}'
    return event_frame('pusher_internal:watchlist_events', nil, data)
end

local function count_frame(c, count) -- hd_frame_subscription_count
    return event_frame('pusher_internal:subscription_count', c, '{"subscription_count":' .. fmt(count) .. '}')
end

local function payload(kind, except, frame)
    if except == nil or except == '' then except = '-' end
    return '0 ' .. kind .. ' ' .. except .. '\n' .. frame
end

-- ---- lease ----

local function fenced_ok(P, inc, t)
    local score = tonumber(redis.call('ZSCORE', P .. ':nodes', inc))
    return score ~= nil and score >= t
end

-- ---- presence records: user_id_json US user_info_json US removed_frame ----

local function record_field(rec, n)
    local start = 1
    for _ = 2, n do
        local at = rec:find(US, start, true)
        if not at then return '' end
        start = at + 1
    end
    local stop = rec:find(US, start, true)
    return rec:sub(start, stop and stop - 1 or #rec)
end

-- {"presence":{"ids":[...],"hash":{...},"count":N}}, the bytes of
-- hd_channel_join's snapshot, members in bytewise order of u.
local function presence_json(K, c)
    local flat = redis.call('HGETALL', K .. ':pi:' .. c)
    local ids, info = {}, {}
    for i = 1, #flat, 2 do
        ids[#ids + 1] = flat[i]
        local v = record_field(flat[i + 1], 2)
        info[flat[i]] = v ~= '' and v or 'null'
    end
    sort_bytes(ids)
    local jids, pairs_ = {}, {}
    for i, u in ipairs(ids) do
        jids[i] = json_str(u)
        pairs_[i] = jids[i] .. ':' .. info[u]
    end
    return '{"presence":{"ids":[' .. table.concat(jids, ',') .. '],"hash":{' .. table.concat(pairs_, ',')
        .. '},"count":' .. #ids .. '}}'
end

-- ---- the apply functions: one node's absolute counts -> cluster totals ----
--
-- ctx: P, A, K (app key), c, inc, t (now ms), hold_ms, except (member_added),
-- count_events (bool), pubs (list of {channel, payload}, published in order
-- by flush_pubs), inconsistent (clamps so far).

local function new_ctx(P, A, c, inc, t, hold_ms)
    return {P = P, A = A, K = app_key(P, A), c = c, inc = inc, t = t, hold_ms = hold_ms, except = '',
            count_events = false, pubs = {}, inconsistent = 0}
end

local function queue_pub(ctx, channel, kind, except, frame)
    ctx.pubs[#ctx.pubs + 1] = {ctx.P .. ':m:' .. ctx.A .. ':' .. channel, payload(kind, except, frame)}
end

local function flush_pubs(ctx)
    for _, p in ipairs(ctx.pubs) do redis.call('PUBLISH', p[1], p[2]) end
    ctx.pubs = {}
    if ctx.inconsistent > 0 then
        redis.call('INCRBY', ctx.P .. ':inconsistent', ctx.inconsistent)
        ctx.inconsistent = 0
    end
end

-- Set this node's field of a per-node hash to count; returns count - old.
local function set_node_count(key, field, count)
    local old = tonumber(redis.call('HGET', key, field)) or 0
    if count ~= old then
        if count > 0 then redis.call('HSET', key, field, fmt(count)) else redis.call('HDEL', key, field) end
    end
    return count - old
end

-- Add d to a cluster total (field of a hash), clamped at 0; returns prev, new.
local function add_total(ctx, key, field, d)
    local prev = tonumber(redis.call('HGET', key, field)) or 0
    if d == 0 then return prev, prev end
    local new = prev + d
    if new < 0 then
        new = 0
        ctx.inconsistent = ctx.inconsistent + 1
    end
    if new > 0 then redis.call('HSET', key, field, fmt(new)) else redis.call('HDEL', key, field) end
    return prev, new
end

local function hold_entry(kind, A, c, u)
    local e = kind .. US .. A .. US .. c
    if u then e = e .. US .. u end
    return e
end

-- User u of ctx.c now has count sockets on ctx.inc. Returns 'added' (with
-- hook: 1 = report the member_added webhook), 'removed' (hook 0: held), or
-- nil. record/removed_frame are only needed when the user may be added.
local function apply_user(ctx, u, count, record, added_frame, removed_frame)
    local K, c = ctx.K, ctx.c
    local ud = set_node_count(K .. ':pn:' .. c .. ':' .. ctx.inc, u, count)
    local prev, new = add_total(ctx, K .. ':pu:' .. c, u, ud)
    local hold = hold_entry(HOLD_M, ctx.A, c, u)
    if prev == 0 and new > 0 then
        redis.call('HSETNX', K .. ':pi:' .. c, u, (record or '') .. US .. (removed_frame or ''))
        if added_frame and added_frame ~= '' then queue_pub(ctx, c, 'M', ctx.except, added_frame) end
        local cancelled = redis.call('ZREM', ctx.P .. ':holds', hold)
        return 'added', cancelled == 0 and 1 or 0
    end
    if prev > 0 and new == 0 then
        local pi = K .. ':pi:' .. c
        local rec = redis.call('HGET', pi, u)
        redis.call('HDEL', pi, u)
        local frame = rec and record_field(rec, 3) or ''
        if frame ~= '' then queue_pub(ctx, c, 'M', '-', frame) end
        redis.call('ZADD', ctx.P .. ':holds', fmt(ctx.t + ctx.hold_ms), hold)
        return 'removed', 0
    end
    return nil, 0
end

-- subscription_count after a change of total (not vacated): true when due
-- (then the frame is queued if the app enabled the event).
local function count_update(ctx, total)
    if total > COUNT_THROTTLE_ABOVE then
        local key = ctx.K .. ':cnt_ts'
        local last = tonumber(redis.call('HGET', key, ctx.c)) or 0
        if ctx.t - last < COUNT_THROTTLE_MS then return false end
        redis.call('HSET', key, ctx.c, fmt(ctx.t))
    end
    if ctx.count_events then queue_pub(ctx, ctx.c, 'M', '-', count_frame(ctx.c, total)) end
    return true
end

-- ctx.c now has count subscriptions on ctx.inc. Returns a table: prev, total,
-- occupied, hook_occupied, vacated, count_due (booleans as 0/1).
-- watch: {online_frame, offline_frame} for #server-to-user- channels ('' = build).
local function apply_channel(ctx, count, watch)
    local K, c = ctx.K, ctx.c
    local d = set_node_count(K .. ':cn:' .. c, ctx.inc, count)
    local prev, new = add_total(ctx, K .. ':subs', c, d)
    local r = {prev = prev, total = new, occupied = 0, hook_occupied = 0, vacated = 0, count_due = 0}
    local listed = is_listed(c)
    if prev == 0 and new > 0 then
        r.occupied = 1
        if listed then
            redis.call('ZADD', K .. ':chans', '0', c)
            redis.call('HDEL', K .. ':cnt_ts', c)
            local cancelled = redis.call('ZREM', ctx.P .. ':holds', hold_entry(HOLD_V, ctx.A, c))
            r.hook_occupied = cancelled == 0 and 1 or 0
        end
    elseif prev > 0 and new == 0 then
        r.vacated = 1
        if listed then
            redis.call('ZREM', K .. ':chans', c)
            redis.call('HDEL', K .. ':cnt_ts', c)
            redis.call('ZADD', ctx.P .. ':holds', fmt(ctx.t + ctx.hold_ms), hold_entry(HOLD_V, ctx.A, c))
        end
    end
    if starts(c, USER_PREFIX) and (r.occupied == 1 or r.vacated == 1) then
        local id = c:sub(#USER_PREFIX + 1)
        local online = r.occupied == 1
        local frame = watch and watch[online and 1 or 2] or ''
        if frame == '' then frame = watchlist_frame(online, id) end
        queue_pub(ctx, '#watch-' .. id, 'M', '-', frame)
    end
    if listed and not is_presence(c) and new ~= prev and new > 0 then
        r.count_due = count_update(ctx, new) and 1 or 0
    end
    return r
end

-- Keep the node's channel index (K:nc:<inc>) in step: the entry stays while
-- the node has subscriptions or users in c, with the epoch of its last write.
local function index_node_channel(ctx, count, epoch)
    local nc = ctx.K .. ':nc:' .. ctx.inc
    if count == 0 and redis.call('EXISTS', ctx.K .. ':pn:' .. ctx.c .. ':' .. ctx.inc) == 0 then
        redis.call('ZREM', nc, ctx.c)
    else
        redis.call('ZADD', nc, fmt(epoch), ctx.c)
    end
end

-- Zero everything ctx.inc contributed to ctx.c (reap, sweep): every user,
-- then the channel; announces and holds like a leave. Adds to stats.
local function zero_node_channel(ctx, stats)
    local users = redis.call('HKEYS', ctx.K .. ':pn:' .. ctx.c .. ':' .. ctx.inc)
    for _, u in ipairs(users) do
        if apply_user(ctx, u, 0) == 'removed' then stats.removed = stats.removed + 1 end
    end
    local r = apply_channel(ctx, 0, nil)
    if r.vacated == 1 and is_listed(ctx.c) then stats.vacated = stats.vacated + 1 end
    if r.count_due == 1 then
        local n = #stats.counts
        stats.counts[n + 1], stats.counts[n + 2], stats.counts[n + 3] = ctx.A, ctx.c, r.total
    end
    redis.call('ZREM', ctx.K .. ':nc:' .. ctx.inc, ctx.c)
    stats.channels = stats.channels + 1
    flush_pubs(ctx)
end

local function app_count_events(K)
    return redis.call('HGET', K .. ':cfg', 'count_events') == '1'
end

local function new_stats()
    return {channels = 0, vacated = 0, removed = 0, counts = {}}
end
