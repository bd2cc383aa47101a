-- Mark an order paid (stand-in for the payment provider's callback).
-- KEYS: 1 sale hash, 2 orders hash, 3 pending zset
-- ARGV: 1 order id, 2 uid of the caller
-- Returns {'paid'} {'expired'} {'not_found'}  (another uid's order reads as not found)
local rec = redis.call('HGET', KEYS[2], ARGV[1])
if not rec then return {'not_found'} end
local uid, state, created, deadline = string.match(rec, '^(%S+) (%S+) (%S+) (%S+)$')
if uid ~= ARGV[2] then return {'not_found'} end
if state == 'paid' then return {'paid'} end
if state == 'expired' then return {'expired'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Past the deadline but not yet swept: it is expired; the sweeper returns the unit.
if now > tonumber(deadline) then return {'expired'} end
redis.call('HSET', KEYS[2], ARGV[1], uid .. ' paid ' .. created .. ' ' .. deadline)
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'paid', 1)
return {'paid'}
