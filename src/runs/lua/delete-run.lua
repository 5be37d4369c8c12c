-- delete-run: remove a run, its message stream, its message logs and every index entry that names it; its place in the
-- list stays as a tombstone for cursors.
-- KEYS[1] the run hash   KEYS[2] the run's message stream   KEYS[3] the run's message log
-- ARGV[1] key prefix   ARGV[2] run id
-- Returns {1, runs flow control admitted (4 fields each, see flow_admit)} when the run existed, 0 otherwise.
local flat = redis.call('HGETALL', KEYS[1])
local p, id = ARGV[1], ARGV[2]
redis.call('ZREM', p .. ':expiry', id)
redis.call('ZREM', p .. ':cb:outbox', id)
redis.call('ZREM', p .. ':cb:given_up', id)
redis.call('DEL', KEYS[2], KEYS[3])
-- The chunk copy of a run still in its replay window, and a fold that has not happened yet (see message-log.ts).
redis.call('DEL', p .. ':mchunk:' .. id)
redis.call('ZREM', p .. ':mlog:unfolded', id)
if #flat == 0 then return 0 end
local r = hash_to_table(flat)
-- A run deleted while in flow control leaves its place (flow/lua/flow.lua); the runs it admits are in
-- the ready set, for the caller (or the reconciler) to add their jobs.
local flow_ready = flow_release(p, id, math.floor(tonumber(redis.call('TIME')[1]) * 1000))
for _, k in ipairs(index_keys(p, r)) do redis.call('ZREM', k, id) end
-- A list cursor may still name this run (a client paging while it was deleted or retention removed
-- it): keep its place in creation order, so the next page starts from there. CURSOR_TOMBSTONES are
-- kept (~145 bytes each, so at most ~15 MB); past that, the places of the oldest-created runs go first.
local CURSOR_TOMBSTONES = 100000
redis.call('ZADD', p .. ':runs:gone', r.seq, id)
if redis.call('ZCARD', p .. ':runs:gone') > CURSOR_TOMBSTONES then redis.call('ZREMRANGEBYRANK', p .. ':runs:gone', 0, 0) end
if r.callback_state then redis.call('HINCRBY', p .. ':cb:counts', r.callback_state, -1) end
redis.call('DEL', KEYS[1])
return { 1, flow_ready }
