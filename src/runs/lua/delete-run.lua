-- delete-run: remove a run, its message stream and every index entry that names it.
-- KEYS[1] the run hash   KEYS[2] the run's message stream   KEYS[3] the run's message log
-- ARGV[1] key prefix   ARGV[2] run id
-- Returns 1 when the run existed, 0 otherwise.
local flat = redis.call('HGETALL', KEYS[1])
local p, id = ARGV[1], ARGV[2]
redis.call('ZREM', p .. ':expiry', id)
redis.call('ZREM', p .. ':cb:outbox', id)
redis.call('DEL', KEYS[2], KEYS[3])
if #flat == 0 then return 0 end
local r = hash_to_table(flat)
for _, k in ipairs(index_keys(p, r)) do redis.call('ZREM', k, id) end
if r.callback_state then redis.call('HINCRBY', p .. ':cb:counts', r.callback_state, -1) end
redis.call('DEL', KEYS[1])
return 1
