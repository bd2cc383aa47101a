-- The fleet's roster: which edges polled the flags feed lately (any origin's), and a generation
-- that moves exactly once per change of their number (so the feed's version moves with it).
-- KEYS: 1 zset edge id -> last heard (ms), 2 hash {count, gen}
-- ARGV: 1 how long an edge counts after its last poll (ms), 2.. edge ids heard since the last call
-- Returns {count, gen}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
local n = redis.call('ZCARD', KEYS[1])
local last = tonumber(redis.call('HGET', KEYS[2], 'count') or '0')
local gen = tonumber(redis.call('HGET', KEYS[2], 'gen') or '0')
if last ~= n then
  redis.call('HSET', KEYS[2], 'count', n)
  gen = redis.call('HINCRBY', KEYS[2], 'gen', 1)
end
return {n, gen}
