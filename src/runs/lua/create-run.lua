-- create-run: store a new run (status `created`) and add it to its indexes, in one step. With an
-- Idempotency-Key the key is claimed for the run in the same step, so a key always names a run that was
-- stored: a key whose run is gone names a run that was deleted (by DELETE or retention), and is never
-- used to make it again. (The release before this one claimed the key, then created the run; a crash in
-- between left a key with no run, which is refused here too: the safe side, as no run was ever made.)
-- KEYS[1] the run hash
-- ARGV[1] key prefix   ARGV[2] run id   ARGV[3] the Idempotency-Key's Redis key, or ''
-- ARGV[4] hash of the request   ARGV[5] how long the key is kept (ms)
-- ARGV[6] the agent's concurrency limit (0 none)   ARGV[7] 'reject' when a busy conversation is a 409
-- ARGV[8..] field, value pairs of the run hash
-- Returns {seq, 1 when its job may be added now | 0 when flow control holds it} when stored (the seq is
-- the run's position in creation order, its list cursor); {0, id} when the
-- id exists already or the key names a live run (a replay: that run); {-1, id} when the key names a
-- deleted run; {-2, id} when the key was used with another request; {-3, agent} when its conversation
-- belongs to another agent; {-4, run id} when its conversation is busy and ARGV[7] is 'reject'.
local p, id, ik = ARGV[1], ARGV[2], ARGV[3]
if ik ~= '' then
  local prior = redis.call('GET', ik)
  if prior then
    local c = cjson.decode(prior)
    if c.hash ~= ARGV[4] then return { -2, c.run_id } end
    if redis.call('EXISTS', p .. ':run:' .. c.run_id) == 1 then return { 0, c.run_id } end
    return { -1, c.run_id }
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return { 0, id } end
local r = hash_to_table({ unpack(ARGV, 8) })
local limit = tonumber(ARGV[6])
-- Flow control (flow/lua/flow.lua): refused before anything is stored.
local refused = flow_refuse(p, r.conversation_id, r.agent_id, ARGV[7])
if refused then return { refused[1] == 'mismatch' and -3 or -4, refused[2] } end
local seq = redis.call('INCR', p .. ':runs:seq')
redis.call('HSET', KEYS[1], 'seq', seq, unpack(ARGV, 8))
for _, k in ipairs(index_keys(p, r)) do redis.call('ZADD', k, seq, id) end
if ik ~= '' then redis.call('SET', ik, cjson.encode({ hash = ARGV[4], run_id = id }), 'PX', ARGV[5]) end
return { seq, flow_gate(p, id, r, seq, limit, r.created_us) }
