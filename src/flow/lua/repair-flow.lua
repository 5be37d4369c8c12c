-- repair-flow: of a batch of admitted runs (from <p>:flow:admitted), the ones that ended or vanished
-- without handing their place over leave it now (flow.lua is prepended). A run still created or running
-- is left alone: its end hands over.
-- KEYS[1] <p>:flow:admitted (named so that a Redis Cluster routes the script to the deployment's slot)
-- ARGV[1] key prefix   ARGV[2] now (epoch ms)   ARGV[3..] run id, agent TAB conversation pairs
-- Returns {repaired count, admitted run ids...}.
local p, now_ms = ARGV[1], tonumber(ARGV[2])
local repaired, ready = 0, {}
for i = 3, #ARGV, 2 do
  local id, where = ARGV[i], ARGV[i + 1]
  local status = redis.call('HGET', p .. ':run:' .. id, 'status')
  local out
  if not status then
    local agent, conv = string.match(where, '^(.-)\t(.*)$')
    out = flow_release_gone(p, id, agent or where, conv, now_ms)
    repaired = repaired + 1
  elseif TERMINAL[status] then
    out = flow_release(p, id, now_ms)
    redis.call('HDEL', p .. ':flow:admitted', id)
    repaired = repaired + 1
  end
  -- Ids only (flow_admit gives four fields per run): the caller reads what each job needs.
  for j = 1, #(out or {}), 4 do ready[#ready + 1] = out[j] end
end
table.insert(ready, 1, repaired)
return ready
