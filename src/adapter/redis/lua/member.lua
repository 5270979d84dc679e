-- member.lua - one node's absolute state of one channel (and of the
-- presence users named): every join, leave, batched leave, sign-in count
-- and resync assertion. Decides the cluster-wide crossings atomically and
-- publishes their client events itself (contract: scripts.h HD_RS_MEMBER).

local P, inc, num, A, c = arg_name(1), arg_name(2), arg_name(3), arg_name(4), arg_name(5)
local epoch, node_count, max_members = arg_int(6), arg_int(7), arg_int(8)
local hold_ms, cache_ttl_s = arg_int(9), arg_int(10)
local token, except = arg_str(11), arg_str(12)
local full, count_events = arg_flag(13), arg_flag(14)
local watch = {arg_str(15), arg_str(16)}

local FIRST_USER = 17
if (#ARGV - FIRST_USER + 1) % 5 ~= 0 then bad_arg(#ARGV, 'users come in groups of 5') end
local users = {}
for i = FIRST_USER, #ARGV, 5 do
    users[#users + 1] = {u = arg_name(i), count = arg_int(i + 1), record = ARGV[i + 2], added = ARGV[i + 3],
                         removed = ARGV[i + 4]}
end

local t = now_ms()
if not fenced_ok(P, inc, t) then return lease_lost() end

local ctx = new_ctx(P, A, c, inc, t, hold_ms)
ctx.except, ctx.count_events = except, count_events
local K = ctx.K
local pu = K .. ':pu:' .. c

-- The J message (scripts.h): published before the membership frames.
local function publish_result(status, hooks)
    local subs = tonumber(redis.call('HGET', K .. ':subs', c)) or 0
    local n_users = redis.call('HLEN', pu)
    local presence, cache, ttl, first_miss = '', '', '0', '0'
    if status == 0 and is_presence(c) then presence = presence_json(K, c) end
    if status == 0 and is_cache(c) then
        local frame = redis.call('GET', K .. ':cache:' .. c)
        if frame then
            cache = frame
            local pttl = redis.call('PTTL', K .. ':cache:' .. c)
            ttl = fmt(pttl > 0 and math.ceil(pttl / 1000) or 0)
        else
            local set = redis.call('SET', K .. ':cmiss:' .. c, '1', 'NX', 'EX', fmt(math.max(cache_ttl_s, 1)))
            first_miss = set and '1' or '0'
        end
    end
    local body = netstring(token) .. netstring(fmt(status)) .. netstring(fmt(subs)) .. netstring(fmt(n_users))
        .. netstring(presence) .. netstring(cache) .. netstring(ttl) .. netstring(first_miss)
        .. netstring(hooks or '0')
    redis.call('PUBLISH', P .. ':n:' .. num, payload('J', '-', body))
    return subs, n_users
end

-- Presence limit: users new cluster-wide are admitted while there is room.
local status, refused = 0, {}
if max_members > 0 then
    local len = redis.call('HLEN', pu)
    for _, us in ipairs(users) do
        if us.count > 0 and redis.call('HEXISTS', pu, us.u) == 0 then
            if len < max_members then len = len + 1 else refused[us.u], status = true, 1 end
        end
    end
end
if status == 1 and token ~= '0' then
    local subs, n_users = publish_result(status)
    return {status, 0, 0, 0, 0, subs, n_users}
end

if redis.call('HGET', K .. ':cfg', 'count_events') ~= (count_events and '1' or '0') then
    redis.call('HSET', K .. ':cfg', 'count_events', count_events and '1' or '0')
end
redis.call('SADD', P .. ':node:' .. inc .. ':apps', A)

local crossings, listed = {}, {}
local function user_changed(u, what, hook)
    if what then
        crossings[#crossings + 1], crossings[#crossings + 2], crossings[#crossings + 3] = u, what, hook
    end
end
for _, us in ipairs(users) do
    listed[us.u] = true
    if not refused[us.u] then
        user_changed(us.u, apply_user(ctx, us.u, us.count, us.record, us.added, us.removed))
    end
end
if full then
    for _, u in ipairs(redis.call('HKEYS', K .. ':pn:' .. c .. ':' .. inc)) do
        if not listed[u] then user_changed(u, apply_user(ctx, u, 0)) end
    end
end
local r = apply_channel(ctx, node_count, watch)
index_node_channel(ctx, node_count, epoch)

local n_users = redis.call('HLEN', pu)
if token ~= '0' then
    -- the webhooks this join crossed, reported with its answer (before the
    -- subscriber can act on it): "1"/"0" channel_occupied, US, the
    -- subscription_count total when its webhook is due ("" when not), then
    -- US u for each member_added
    local hooks = { r.hook_occupied == 1 and '1' or '0', r.count_due == 1 and fmt(r.total) or '' }
    for i = 1, #crossings, 3 do
        if crossings[i + 1] == 'added' and crossings[i + 2] == 1 then hooks[#hooks + 1] = crossings[i] end
    end
    publish_result(status, table.concat(hooks, US))
end
flush_pubs(ctx)

local reply = {status, r.occupied, r.hook_occupied, r.vacated, r.count_due, r.total, n_users}
for _, v in ipairs(crossings) do reply[#reply + 1] = v end
return reply
