-- Shared helpers, prepended to every run script (see scripts.ts). MOVES is injected from status.ts.
local MOVES = __MOVES__
local TERMINAL = { completed = true, failed = true, cancelled = true }

local function hash_to_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- The index sets a run belongs to, derived from its fields; kept in one place so that create, move
-- and delete always agree.
local function index_keys(p, r)
  -- Each index entry costs ~130 bytes of Redis per run, so only filters that need a set get one: a
  -- stop reason is found through the status it implies, and only background runs are indexed as such.
  local keys = {
    p .. ':idx:all',
    p .. ':idx:agent:' .. r.agent_id,
    p .. ':idx:status:' .. r.status,
  }
  if r.background == '1' then keys[#keys + 1] = p .. ':idx:bg:1' end
  if r.conversation_id then keys[#keys + 1] = p .. ':idx:conv:' .. r.conversation_id end
  return keys
end

-- Integers as decimal strings: Lua's tostring would print large numbers in exponent form.
local function int_str(n)
  return string.format('%.0f', n)
end

-- Appends args[from..to] (message JSONs) to a run's stream with the next sequence numbers; the first
-- message of an attempt sets ttft_ns (measured from created_us). Returns the first sequence number.
local function append_messages(run_key, stream_key, args, from, to, now_us, ttft, created_us)
  local n = to - from + 1
  if n <= 0 then return 0 end
  local last = redis.call('HINCRBY', run_key, 'msg_seq', n)
  local first = last - n + 1
  for i = from, to do redis.call('XADD', stream_key, (first + i - from) .. '-0', 'm', args[i]) end
  if not ttft then
    redis.call('HSET', run_key, 'ttft_ns', int_str(math.max(0, (tonumber(now_us) - tonumber(created_us)) * 1000)))
  end
  return first
end

-- Writes steps into the run hash (see steps.ts): steps_json is '' or the JSON array [field, value, ...].
local function write_steps(run_key, steps_json)
  if steps_json == '' then return end
  redis.call('HSET', run_key, unpack(cjson.decode(steps_json)))
end

-- Removes the steps of an abandoned attempt from the run hash: every field a step may have (an attempt
-- records at most 64; no count is kept, it would cost a field in every run).
local function reset_steps(run_key)
  local fields = {}
  for i = 1, 64 do
    fields[#fields + 1] = 'st' .. i
    fields[#fields + 1] = 'sm' .. i
    fields[#fields + 1] = 'sn' .. i
  end
  redis.call('HDEL', run_key, unpack(fields))
end
