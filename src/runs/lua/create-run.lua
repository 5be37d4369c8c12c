-- create-run: store a new run (status `created`) and add it to its indexes, in one step.
-- KEYS[1] the run hash
-- ARGV[1] key prefix   ARGV[2] run id   ARGV[3..] field, value pairs of the run hash
-- Returns the run's position in creation order (its list cursor), or 0 when the id exists already.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local p, id = ARGV[1], ARGV[2]
local seq = redis.call('INCR', p .. ':runs:seq')
redis.call('HSET', KEYS[1], 'seq', seq, unpack(ARGV, 3))
local r = hash_to_table({ unpack(ARGV, 3) })
for _, k in ipairs(index_keys(p, r)) do redis.call('ZADD', k, seq, id) end
return seq
