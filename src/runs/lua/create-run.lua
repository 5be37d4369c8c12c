-- create-run: store a new run (status `created`) and add it to its indexes, in one step. With an
-- Idempotency-Key the key is claimed for the run in the same step, so a key always names a run that was
-- stored: a key whose run is gone names a run that was deleted (by DELETE or retention), and is never
-- used to make it again. (The release before this one claimed the key, then created the run; a crash in
-- between left a key with no run, which is refused here too: the safe side, as no run was ever made.)
-- KEYS[1] the run hash
-- ARGV[1] key prefix   ARGV[2] run id   ARGV[3] the Idempotency-Key's Redis key, or ''
-- ARGV[4] hash of the request   ARGV[5] how long the key is kept (ms)   ARGV[6..] field, value pairs of the run hash
-- Returns {seq} (the run's position in creation order, its list cursor) when stored; {0, id} when the
-- id exists already or the key names a live run (a replay: that run); {-1, id} when the key names a
-- deleted run; {-2, id} when the key was used with another request.
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
local seq = redis.call('INCR', p .. ':runs:seq')
redis.call('HSET', KEYS[1], 'seq', seq, unpack(ARGV, 6))
local r = hash_to_table({ unpack(ARGV, 6) })
for _, k in ipairs(index_keys(p, r)) do redis.call('ZADD', k, seq, id) end
if ik ~= '' then redis.call('SET', ik, cjson.encode({ hash = ARGV[4], run_id = id }), 'PX', ARGV[5]) end
return { seq }
