-- read_users.lua - the distinct users of a presence channel, sorted
-- (HD_AD_READ_USERS body). Contract: scripts.h HD_RS_READ_USERS.

local P, A, c = arg_name(1), arg_name(2), arg_name(3)
local ids = sort_bytes(redis.call('HKEYS', app_key(P, A) .. ':pu:' .. c))
local parts = {}
for i, u in ipairs(ids) do parts[i] = '{"id":' .. json_str(u) .. '}' end
return '{"users":[' .. table.concat(parts, ',') .. ']}'
