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
  local keys = {
    p .. ':idx:all',
    p .. ':idx:agent:' .. r.agent_id,
    p .. ':idx:status:' .. r.status,
    p .. ':idx:bg:' .. (r.background == '1' and '1' or '0'),
  }
  if r.conversation_id then keys[#keys + 1] = p .. ':idx:conv:' .. r.conversation_id end
  if r.stop_reason then keys[#keys + 1] = p .. ':idx:stop:' .. r.stop_reason end
  return keys
end

-- Integers as decimal strings: Lua's tostring would print large numbers in exponent form.
local function int_str(n)
  return string.format('%.0f', n)
end
