-- Flow control (CONTRACT section 8), prepended after _lib.lua to the scripts that create, end and delete
-- runs (see runs/scripts.ts), so the gate and the hand-over happen in the same atomic step as the move.
--
-- A run takes part only when it names a conversation or its agent has a limit; otherwise none of this
-- is called and the run has no flow field. The run hash's `flow` says where a run in flow stands:
--   conv   held behind an earlier run of its conversation
--   limit  heads its conversation (or has none), held by a limit of its scope
--   run    admitted: its job is (or is about to be) in the BullMQ queue
-- `flow_lim` = '1' when the run counts in its agent's active set.
-- Keys (all under the deployment's hash tag; every one of them belongs to one agent or one conversation,
-- and a conversation belongs to one agent):
--   <p>:flow:conv:<cid>          hash: agent_id (fixed by its first run), created_us
--   <p>:flow:conv:<cid>:runs     zset: the conversation's runs not yet terminal, by creation seq; the
--                                first is its head, the only one that may be admitted
--   <p>:flow:convs               zset: every conversation, by when it was made (µs); and per agent,
--   <p>:flow:agent:<aid>:convs   the same for its conversations (GET /v1/conversations)
--   <p>:flow:agent:<aid>         hash: limit (the last one a create saw)
--   <p>:flow:agent:<aid>:active  set: the agent's admitted runs (its counter: SCARD; repairable)
--   <p>:flow:agent:<aid>:waiting zset: runs held by the limit, by priority then creation
--   <p>:flow:ready               zset: admitted runs whose job is to be added, by when (ms); the process
--                                that admitted them adds the jobs and removes them, the reconciler
--                                sweeps what a crash left
--   <p>:flow:counts              hash: conversation, limit: runs held by each (the gauges)
--   <p>:flow:admitted            hash: admitted run id -> agent id TAB conversation id: what the
--                                reconciler walks to find a place whose run ended or vanished without
--                                handing over (its size is what is running or queued in flow, not the
--                                backlog)
-- A project's limit (section 9) is one more scope beside `agent`, with the same three keys.

local function flow_count(p, field, n)
  redis.call('HINCRBY', p .. ':flow:counts', field, n)
end

-- Priority first (1 first, none after every prioritised run), then creation order.
local function flow_wait_score(prio, seq)
  return (tonumber(prio) or 101) * 1e12 + tonumber(seq)
end

local function flow_admitted(p, id, agent, conv)
  redis.call('HSET', p .. ':flow:admitted', id, agent .. '\t' .. (conv or ''))
end

-- `out` gets id, agent id, priority, run_at (µs) per admitted run: what its job needs, so the caller
-- adds it without reading the run first.
local function flow_admit(p, id, agent, conv, now_ms, out)
  local rk = p .. ':run:' .. id
  redis.call('HSET', rk, 'flow', 'run')
  flow_admitted(p, id, agent, conv)
  redis.call('ZADD', p .. ':flow:ready', now_ms, id)
  local job = redis.call('HMGET', rk, 'priority', 'run_at_us')
  out[#out + 1] = id
  out[#out + 1] = agent
  out[#out + 1] = job[1] or ''
  out[#out + 1] = job[2] or ''
end

-- A run that heads its conversation (or has none) meets its agent's limit: true when admitted now.
local function flow_meet_limit(p, id, agent, seq, prio, limit)
  if limit <= 0 then return true end
  local scope = p .. ':flow:agent:' .. agent
  redis.call('HSET', p .. ':run:' .. id, 'flow_lim', '1')
  if redis.call('SCARD', scope .. ':active') < limit and redis.call('ZCARD', scope .. ':waiting') == 0 then
    redis.call('SADD', scope .. ':active', id)
    return true
  end
  redis.call('ZADD', scope .. ':waiting', flow_wait_score(prio, seq), id)
  redis.call('HSET', p .. ':run:' .. id, 'flow', 'limit')
  flow_count(p, 'limit', 1)
  return false
end

-- Before a run is stored: refuses it when its conversation belongs to another agent, or is busy and
-- the deployment answers that with 409. Returns nil to go on, or {code, detail}.
local function flow_refuse(p, conv, agent, busy)
  if not conv then return nil end
  local owner = redis.call('HGET', p .. ':flow:conv:' .. conv, 'agent_id')
  if owner and owner ~= agent then return { 'mismatch', owner } end
  if busy == 'reject' then
    local head = redis.call('ZRANGE', p .. ':flow:conv:' .. conv .. ':runs', 0, 0)
    if head[1] then return { 'busy', head[1] } end
  end
  return nil
end

-- The gate, for a run just stored: 1 when its job may be added now, 0 when it is held.
local function flow_gate(p, id, r, seq, limit, now_us)
  local conv = r.conversation_id
  if not conv and limit <= 0 then return 1 end
  local rk = p .. ':run:' .. id
  local scope = p .. ':flow:agent:' .. r.agent_id
  if limit > 0 or redis.call('EXISTS', scope) == 1 then redis.call('HSET', scope, 'limit', limit) end
  redis.call('HSET', rk, 'flow', 'run')
  if conv then
    local ck = p .. ':flow:conv:' .. conv
    redis.call('HSETNX', ck, 'agent_id', r.agent_id)
    if redis.call('HSETNX', ck, 'created_us', now_us) == 1 then
      redis.call('ZADD', p .. ':flow:agent:' .. r.agent_id .. ':convs', now_us, conv)
      redis.call('ZADD', p .. ':flow:convs', now_us, conv)
    end
    redis.call('ZADD', ck .. ':runs', seq, id)
    if redis.call('ZCARD', ck .. ':runs') > 1 then
      redis.call('HSET', rk, 'flow', 'conv')
      flow_count(p, 'conversation', 1)
      return 0
    end
  end
  if flow_meet_limit(p, id, r.agent_id, seq, r.priority, limit) then
    flow_admitted(p, id, r.agent_id, conv)
    return 1
  end
  return 0
end

-- Admits what an agent's limit lets through now, best score first.
local function flow_drain(p, agent, limit, now_ms, out)
  local scope = p .. ':flow:agent:' .. agent
  local room = limit > 0 and (limit - redis.call('SCARD', scope .. ':active')) or 100
  if room <= 0 then return end
  local next_ids = redis.call('ZRANGE', scope .. ':waiting', 0, room - 1)
  for _, nid in ipairs(next_ids) do
    redis.call('ZREM', scope .. ':waiting', nid)
    flow_count(p, 'limit', -1)
    if limit > 0 then redis.call('SADD', scope .. ':active', nid) end
    flow_admit(p, nid, agent, redis.call('HGET', p .. ':run:' .. nid, 'conversation_id'), now_ms, out)
  end
end

-- A conversation's head left it (ended, deleted, or found gone by the reconciler): the next run of the
-- conversation, if any, heads it now and meets the limit.
local function flow_next_head(p, conv, agent, limit, now_ms, out)
  local nxt = redis.call('ZRANGE', p .. ':flow:conv:' .. conv .. ':runs', 0, 0)[1]
  if not nxt then return end
  local nk = p .. ':run:' .. nxt
  local h = redis.call('HMGET', nk, 'flow', 'seq', 'priority')
  if h[1] ~= 'conv' then return end
  flow_count(p, 'conversation', -1)
  if flow_meet_limit(p, nxt, agent, h[2], h[3], limit) then flow_admit(p, nxt, agent, conv, now_ms, out) end
end

-- The hand-over: a run in flow leaves it (it ended, or is deleted). Returns the runs admitted now (see
-- flow_admit), whose jobs are to be added (they are in <p>:flow:ready until then).
local function flow_release(p, id, now_ms)
  local rk = p .. ':run:' .. id
  local f = redis.call('HMGET', rk, 'flow', 'conversation_id', 'agent_id', 'flow_lim')
  local state = f[1]
  local out = {}
  if not state then return out end
  redis.call('HDEL', rk, 'flow', 'flow_lim')
  local conv, agent = f[2], f[3]
  local scope = p .. ':flow:agent:' .. agent
  local limit = tonumber(redis.call('HGET', scope, 'limit') or '0')
  if state == 'conv' then
    flow_count(p, 'conversation', -1)
  elseif state == 'limit' then
    if redis.call('ZREM', scope .. ':waiting', id) == 1 then flow_count(p, 'limit', -1) end
  elseif f[4] then
    redis.call('SREM', scope .. ':active', id)
  end
  redis.call('ZREM', p .. ':flow:ready', id)
  redis.call('HDEL', p .. ':flow:admitted', id)
  if conv then
    redis.call('ZREM', p .. ':flow:conv:' .. conv .. ':runs', id)
    if state ~= 'conv' then flow_next_head(p, conv, agent, limit, now_ms, out) end
  end
  if f[4] or redis.call('EXISTS', scope .. ':waiting') == 1 then flow_drain(p, agent, limit, now_ms, out) end
  return out
end

-- The reconciler's repair of an admitted run that vanished (its hash is gone) without leaving its place:
-- what flow_release does, from what <p>:flow:admitted remembers of it.
local function flow_release_gone(p, id, agent, conv, now_ms)
  local out = {}
  local scope = p .. ':flow:agent:' .. agent
  local limit = tonumber(redis.call('HGET', scope, 'limit') or '0')
  redis.call('HDEL', p .. ':flow:admitted', id)
  redis.call('ZREM', p .. ':flow:ready', id)
  redis.call('SREM', scope .. ':active', id)
  if conv and conv ~= '' then
    redis.call('ZREM', p .. ':flow:conv:' .. conv .. ':runs', id)
    flow_next_head(p, conv, agent, limit, now_ms, out)
  end
  flow_drain(p, agent, limit, now_ms, out)
  return out
end
