import { readFileSync } from 'node:fs';
import type { JobsOptions, Queue } from 'bullmq';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { RedisClient } from '../queue/connection.ts';
import { runJobOptions, type RunJobData, type RunJobResult } from '../queue/queues.ts';
import type { RunKeys } from '../runs/keys.ts';
import { withRunLib } from '../runs/scripts.ts';

/**
 * Flow control (CONTRACT section 8): conversations in order, concurrency limits, priority and delay.
 *
 * The gate and the hand-over are Lua (lua/flow.lua), run inside the scripts that create, end and delete
 * a run, so they are atomic with the move itself: a crash can delay the next run of a conversation but
 * never skip, reorder, double-start or block it. What Lua cannot do is add a BullMQ job, so a run
 * admitted by a hand-over is put in a ready set in that same step; the process that ended the run adds
 * its job right after (`addReadyJobs`, from the store's `flow-ready` event), and the reconciler adds
 * whatever a crash left there (`sweepReady`).
 */

/** The flow keys of a deployment (all under its hash tag; per agent or per conversation but the two sets). */
export class FlowKeys {
  constructor(readonly prefix: string) {}

  conversation(id: string): string {
    return `${this.prefix}:flow:conv:${id}`;
  }

  conversationRuns(id: string): string {
    return `${this.prefix}:flow:conv:${id}:runs`;
  }

  /** An agent's conversations, by when they were made (epoch µs). */
  agentConversations(agentId: string): string {
    return `${this.prefix}:flow:agent:${agentId}:convs`;
  }

  scope(kind: 'agent', id: string): string {
    return `${this.prefix}:flow:${kind}:${id}`;
  }

  active(kind: 'agent', id: string): string {
    return `${this.scope(kind, id)}:active`;
  }

  waiting(kind: 'agent', id: string): string {
    return `${this.scope(kind, id)}:waiting`;
  }

  get ready(): string {
    return `${this.prefix}:flow:ready`;
  }

  get counts(): string {
    return `${this.prefix}:flow:counts`;
  }
}

/** A run's job options: the run's priority and run_at become BullMQ's priority and delay. */
export function flowJobOptions(config: Config, runId: string, priority: number | null | undefined, runAtMs: number | null | undefined, nowMs = Date.now()): JobsOptions {
  const o = runJobOptions(config, runId);
  if (priority) o.priority = priority;
  if (runAtMs && runAtMs > nowMs) o.delay = Math.ceil(runAtMs - nowMs);
  return o;
}

type RunQueue = Queue<RunJobData, RunJobResult, string>;

/** A run a hand-over admitted, with what its job needs (flow.lua's flow_admit returns these four). */
export interface ReadyRun {
  id: string;
  agentId: string;
  priority: number | null;
  runAtMs: number | null;
}

/** flow_admit's flat list (id, agent id, priority or '', run_at µs or '') as ReadyRuns. */
export function readyRuns(flat: readonly string[]): ReadyRun[] {
  const out: ReadyRun[] = [];
  for (let i = 0; i + 3 < flat.length; i += 4) {
    out.push({ id: flat[i]!, agentId: flat[i + 1]!, priority: flat[i + 2] ? Number(flat[i + 2]) : null, runAtMs: flat[i + 3] ? Number(flat[i + 3]) / 1000 : null });
  }
  return out;
}

/**
 * Adds the jobs of runs a hand-over admitted, then takes them out of the ready set: BullMQ's add, then
 * one ZREM. Adding twice is harmless (the job id is the run id); a run cancelled in between gets a job
 * that finds it ended and does nothing.
 */
export async function addReadyJobs(config: Config, redis: RedisClient, keys: RunKeys, queue: RunQueue, runs: readonly ReadyRun[]): Promise<number> {
  if (runs.length === 0) return 0;
  const nowMs = Date.now();
  const jobs = runs.map((r) => ({ name: 'run', data: { agent_id: r.agentId }, opts: flowJobOptions(config, r.id, r.priority, r.runAtMs, nowMs) }));
  // One job (a conversation's next run, the common case) is one script; addBulk wraps it in a MULTI.
  if (jobs.length === 1) await queue.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts);
  else await queue.addBulk(jobs);
  await redis.zrem(new FlowKeys(keys.prefix).ready, ...runs.map((r) => r.id));
  return runs.length;
}

/**
 * The slow path's add, from ids alone (the ready set, the repair): reads each run first, and a run that
 * is no longer `created` and admitted (cancelled meanwhile, deleted) gets no job.
 */
export async function addReadyIds(config: Config, redis: RedisClient, keys: RunKeys, queue: RunQueue, runIds: readonly string[]): Promise<number> {
  if (runIds.length === 0) return 0;
  const rows = await Promise.all(runIds.map((id) => redis.hmget(keys.run(id), 'status', 'flow', 'agent_id', 'priority', 'run_at_us')));
  const runs: ReadyRun[] = [];
  for (const [i, id] of runIds.entries()) {
    const [status, flow, agentId, priority, runAtUs] = rows[i]!;
    if (status === 'created' && flow === 'run') {
      runs.push({ id, agentId: agentId ?? '', priority: priority ? Number(priority) : null, runAtMs: runAtUs ? Number(runAtUs) / 1000 : null });
    }
  }
  if (runs.length > 0) await addReadyJobs(config, redis, keys, queue, runs);
  const gone = runIds.filter((id) => !runs.some((r) => r.id === id));
  if (gone.length > 0) await redis.zrem(new FlowKeys(keys.prefix).ready, ...gone);
  return runs.length;
}

/** The reconciler's part: ready runs older than `graceMs` whose process did not add their job (it crashed). */
export async function sweepReady(config: Config, redis: RedisClient, keys: RunKeys, queue: RunQueue, graceMs: number, nowMs = Date.now()): Promise<number> {
  let added = 0;
  for (;;) {
    const ids = await redis.zrangebyscore(new FlowKeys(keys.prefix).ready, '-inf', nowMs - graceMs, 'LIMIT', 0, 500);
    if (ids.length === 0) return added;
    added += await addReadyIds(config, redis, keys, queue, ids);
    if (ids.length < 500) return added;
  }
}

/** How many runs wait on a conversation and on a limit: two counters kept by the scripts (one read). */
export async function waitingCounts(redis: RedisClient, prefix: string): Promise<{ conversation: number; limit: number }> {
  const [c, l] = await redis.hmget(new FlowKeys(prefix).counts, 'conversation', 'limit');
  return { conversation: Math.max(0, Number(c ?? 0)), limit: Math.max(0, Number(l ?? 0)) };
}

const REPAIR_LUA = withRunLib(readFileSync(new URL('./lua/repair-flow.lua', import.meta.url), 'utf8'));
type RepairCommand = { rh_repairFlow(...args: Array<string | number>): Promise<Array<string | number>> };

/**
 * The reconciler's repair of flow control: walks the admitted runs (what is running or queued in flow,
 * never the held backlog) in batches and makes every one that ended or vanished without handing over
 * leave its place, adding the jobs of the runs that admits. Returns how many places it repaired.
 */
export async function repairFlow(config: Config, redis: RedisClient, keys: RunKeys, queue: RunQueue, log: Logger): Promise<number> {
  const r = redis as RedisClient & Partial<RepairCommand>;
  // One key named, so that on a Redis Cluster the script goes to the deployment's slot (with none,
  // ioredis sends it to any node, which refuses the keys it builds from the prefix).
  if (typeof r.rh_repairFlow !== 'function') redis.defineCommand('rh_repairFlow', { numberOfKeys: 1, lua: REPAIR_LUA });
  const admittedKey = `${keys.prefix}:flow:admitted`;
  let repaired = 0;
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(admittedKey, cursor, 'COUNT', 500);
    cursor = next;
    if (flat.length === 0) continue;
    const [n, ...ready] = await (r as RedisClient & RepairCommand).rh_repairFlow(admittedKey, keys.prefix, Date.now(), ...flat);
    if (Number(n) > 0) {
      repaired += Number(n);
      log.warn({ repaired: Number(n), admitted: ready }, 'flow control: places left by runs that ended without handing over were repaired');
    }
    if (ready.length > 0) await addReadyIds(config, redis, keys, queue, ready.map(String));
  } while (cursor !== '0');
  return repaired;
}
