-- read_online.lua - which of the given users are signed in anywhere
-- (HD_AD_READ_ONLINE body); with a token also answered on the node's
-- channel, ordered with the #watch- events. Contract: scripts.h HD_RS_READ_ONLINE.

local P, A, num, token = arg_name(1), arg_name(2), arg_name(3), arg_str(4)
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = USER_PREFIX .. ARGV[i] end
local body = ''
if #fields > 0 then
    local subs = redis.call('HMGET', app_key(P, A) .. ':subs', unpack(fields))
    local bits = {}
    for i = 1, #fields do bits[i] = (tonumber(subs[i]) or 0) > 0 and '1' or '0' end
    body = table.concat(bits)
end
if token ~= '0' then
    redis.call('PUBLISH', P .. ':n:' .. num, payload('R', '-', netstring(token) .. netstring(body)))
end
return body
