-- read_channels.lua - occupied client-visible channels of an app with a
-- name prefix, sorted, with their counts (HD_AD_READ_CHANNELS body).
-- Contract: scripts.h HD_RS_READ_CHANNELS.

local P, A, prefix = arg_name(1), arg_name(2), arg_str(3)
local K = app_key(P, A)

-- The lex range of every name starting with prefix: [prefix, (prefix with
-- its last byte below 0xff incremented.
local function prefix_range(p)
    if p == '' then return '-', '+' end
    local stem = p:gsub('\255+$', '')
    if stem == '' then return '[' .. p, '+' end
    return '[' .. p, '(' .. stem:sub(1, -2) .. string.char(stem:byte(-1) + 1)
end

local lo, hi = prefix_range(prefix)
local names = redis.call('ZRANGEBYLEX', K .. ':chans', lo, hi)
local lines = {}
local CHUNK = 1000 -- unpack() is bounded by the Lua stack
for first = 1, #names, CHUNK do
    local last = math.min(first + CHUNK - 1, #names)
    local subs = redis.call('HMGET', K .. ':subs', unpack(names, first, last))
    for i = first, last do
        local c = names[i]
        local n = tonumber(subs[i - first + 1]) or 0
        if n > 0 then
            local users = is_presence(c) and redis.call('HLEN', K .. ':pu:' .. c) or 0
            lines[#lines + 1] = c .. '\t' .. fmt(n) .. '\t' .. fmt(users) .. '\n'
        end
    end
end
return table.concat(lines)
