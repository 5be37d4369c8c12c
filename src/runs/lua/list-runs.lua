-- list-runs: one page of runs in creation order, served from the index sets. The smallest index that
-- the filters allow drives the walk (a union of sets for several agents or statuses, merged in order);
-- every candidate is checked against all filters. A walk stops after a budget of candidates, so one
-- call never blocks Redis for long; the caller resumes from the returned cursor.
-- KEYS[1] the all-runs index (declared so a cluster routes the call to the slot of the prefix's hash
--         tag; every other key shares that tag and is derived from ARGV[1])
-- ARGV[1] key prefix   ARGV[2] 'asc' or 'desc'   ARGV[3] start cursor (exclusive seq) or ''
-- ARGV[4] end bound (exclusive seq) or ''   ARGV[5] limit   ARGV[6] candidate budget
-- ARGV[7] filters JSON: {agents=[..], statuses=[..], bg='1'|'0', stop=.., stop_status=.., conv=..}
-- Returns {resume cursor or '', {run fields...}, ...}.
local p, asc = ARGV[1], ARGV[2] == 'asc'
local cursor = ARGV[3] ~= '' and tonumber(ARGV[3]) or nil
local bound = ARGV[4] ~= '' and tonumber(ARGV[4]) or nil
local limit, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
local f = cjson.decode(ARGV[7])

local function set_of(list)
  if type(list) ~= 'table' or #list == 0 then return nil end
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
local agents, statuses = set_of(f.agents), set_of(f.statuses)

local function keys_for(kind, list)
  local out = {}
  for _, v in ipairs(list) do out[#out + 1] = p .. ':idx:' .. kind .. ':' .. v end
  return out
end
local groups = { { p .. ':idx:all' } }
if agents then groups[#groups + 1] = keys_for('agent', f.agents) end
if statuses then groups[#groups + 1] = keys_for('status', f.statuses) end
if type(f.conv) == 'string' then groups[#groups + 1] = { p .. ':idx:conv:' .. f.conv } end
-- A stop reason has no index of its own: the status it implies narrows the walk.
if type(f.stop_status) == 'string' then groups[#groups + 1] = { p .. ':idx:status:' .. f.stop_status } end
if f.bg == '1' then groups[#groups + 1] = { p .. ':idx:bg:1' } end

local driver, best = nil, nil
for _, g in ipairs(groups) do
  local n = 0
  for _, k in ipairs(g) do n = n + redis.call('ZCARD', k) end
  if best == nil or n < best then driver, best = g, n end
end

local function matches(id)
  local r = redis.call('HMGET', p .. ':run:' .. id, 'status', 'agent_id', 'background', 'stop_reason', 'conversation_id')
  if not r[1] then return false end
  if statuses and not statuses[r[1]] then return false end
  if agents and not agents[r[2]] then return false end
  if type(f.bg) == 'string' and (r[3] == '1' and '1' or '0') ~= f.bg then return false end
  if type(f.stop) == 'string' and r[4] ~= f.stop then return false end
  if type(f.conv) == 'string' and r[5] ~= f.conv then return false end
  return true
end

local function past_bound(score)
  if not bound then return false end
  if asc then return score >= bound end
  return score <= bound
end

local BATCH = math.max(limit, 64)
local results, examined = { '' }, 0
while true do
  local merged, frontier, more = {}, nil, false
  for _, k in ipairs(driver) do
    local lo = cursor and ('(' .. int_str(cursor)) or (asc and '-inf' or '+inf')
    local hi = asc and '+inf' or '-inf'
    local r
    if asc then
      r = redis.call('ZRANGE', k, lo, hi, 'BYSCORE', 'LIMIT', 0, BATCH, 'WITHSCORES')
    else
      r = redis.call('ZRANGE', k, lo, hi, 'BYSCORE', 'REV', 'LIMIT', 0, BATCH, 'WITHSCORES')
    end
    for i = 1, #r, 2 do merged[#merged + 1] = { r[i], tonumber(r[i + 1]) } end
    if #r == 2 * BATCH then
      -- This set may hold more beyond its last score: the merge is only complete up to there.
      more = true
      local last = tonumber(r[#r])
      if frontier == nil or (asc and last < frontier) or (not asc and last > frontier) then frontier = last end
    end
  end
  table.sort(merged, function(a, b)
    if asc then return a[2] < b[2] end
    return a[2] > b[2]
  end)
  for _, e in ipairs(merged) do
    local score = e[2]
    if frontier and ((asc and score > frontier) or (not asc and score < frontier)) then break end
    if past_bound(score) then return results end
    if score ~= cursor then
      cursor = score
      examined = examined + 1
      if matches(e[1]) then
        results[#results + 1] = redis.call('HGETALL', p .. ':run:' .. e[1])
        if #results - 1 >= limit then return results end
      end
    end
  end
  if not more then return results end
  cursor = frontier
  if examined >= budget then
    results[1] = int_str(cursor)
    return results
  end
end
