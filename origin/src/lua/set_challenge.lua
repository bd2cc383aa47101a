-- Set the difficulty of a sale's proof-of-work challenge (0: none); the feed carries it to every edge.
-- KEYS: 1 sale hash   ARGV: 1 bits
-- Returns 1, or 0 for an unknown sku
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'challenge_bits') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'challenge_bits', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return 1
