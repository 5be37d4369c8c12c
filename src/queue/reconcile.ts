import { readFileSync } from 'node:fs';
import type { Queue } from 'bullmq';
import type { Config } from '../config.ts';
import { nowMicros } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { ReconcileObserver } from '../monitoring/metrics.ts';
import { statusOfStopReason } from '../runs/status.ts';
import { StopReasonType } from '../runs/schema.ts';
import type { RunStore } from '../runs/store.ts';
import type { RedisClient } from './connection.ts';
import { Lease } from './lease.ts';
import { runJobOptions, type RunJobData, type RunJobResult } from './queues.ts';
import { flowJobOptions, repairFlow, sweepReady } from '../flow/flow.ts';

export interface ReconcileDeps {
  config: Config;
  store: RunStore;
  queue: Queue<RunJobData, RunJobResult>;
  log: Logger;
}

export interface ReconcileReport {
  /** Runs whose job was looked at in this pass (a waiting run below the watermark is not, except by the audit). */
  checked: number;
  requeued: number;
  completed: number;
  failed: number;
}

export interface PassOptions {
  /** Created runs re-checked per pass whatever the watermark, round-robin through the whole backlog. */
  auditCount?: number;
  /** Asked between batches; false stops the pass (its lease was lost, another process has taken over). */
  stillHeld?: () => Promise<boolean>;
}

/** Run ids per script call (and per page of an index read). */
const BATCH = 500;
/** See PassOptions.auditCount: 1,000 per 15 s pass re-reads a 100,000-run backlog every 25 minutes. */
const AUDIT_PER_PASS = 1_000;
/** The lease outlives this many maintenance intervals: a holder that crashed is replaced after it. */
const LEASE_INTERVALS = 3;

const CHECK_LUA = readFileSync(new URL('./lua/reconcile-check.lua', import.meta.url), 'utf8');

/** A run of the batch whose job did not look pending: what reconcile-check.lua returned for it. */
export interface Candidate {
  id: string;
  status: 'created' | 'running';
  createdUs: number;
  /** The attempt that started the run (the job's attemptsStarted then), when one did. */
  attempt?: number;
  job: 'missing' | 'completed' | 'failed';
  /** The job's returnvalue (completed) or failedReason (failed). */
  detail: string;
  /** The job's attempts started when it finished. */
  jobAttempt?: number;
}

export type Repair =
  | { kind: 'none'; young?: boolean }
  | { kind: 'requeue'; replaceJob: boolean }
  | { kind: 'complete'; stopReason: StopReasonType }
  | { kind: 'fail'; error: string };

/**
 * What a run needs, from its status and its job's: a pure function, so the decisions are read (and
 * tested) in one place. `young`: a created run within the grace period, whose job may be on its way.
 */
export function repairFor(c: Candidate, nowUs: number, createdGraceMs: number): Repair {
  const young = c.status === 'created' && (nowUs - c.createdUs) / 1000 < createdGraceMs;
  if (c.job === 'failed') return { kind: 'fail', error: c.detail || 'job failed' };
  if (c.job === 'missing') {
    if (c.status === 'running') return { kind: 'fail', error: 'job lost: the run was running but its job no longer exists' };
    return young ? { kind: 'none', young } : { kind: 'requeue', replaceJob: false };
  }
  const result = parseResult(c.detail);
  if (result.skipped !== undefined) {
    // The worker returns {skipped} when its attempt found the run ended, gone, cancelled or taken over
    // by another attempt: the job says nothing about how this run ended. A created run with such a job
    // has never been run by it (the id was used by a run deleted since): it gets a job of its own.
    // A running run has no job left to finish it: it is failed as a lost one is, never completed.
    if (c.status === 'created') return young ? { kind: 'none', young } : { kind: 'requeue', replaceJob: true };
    return { kind: 'fail', error: `job lost: its job ended without finishing the run (skipped: ${String(result.skipped)})` };
  }
  if (c.status === 'created') return { kind: 'fail', error: 'job ended without starting the run' };
  if (c.attempt !== undefined && c.jobAttempt !== undefined && c.attempt !== c.jobAttempt) {
    // The run belongs to another attempt than the one that ended the job: that attempt's move was
    // refused, so its stop reason is not this run's.
    return { kind: 'fail', error: `job lost: its job ended in attempt ${c.jobAttempt}, the run is held by attempt ${c.attempt}` };
  }
  const parsed = StopReasonType.safeParse(result.stop_reason);
  return { kind: 'complete', stopReason: parsed.success ? parsed.data : 'end_turn' };
}

function parseResult(raw: string): RunJobResult {
  try {
    const v: unknown = JSON.parse(raw);
    return v && typeof v === 'object' ? (v as RunJobResult) : {};
  } catch {
    return {};
  }
}

type CheckCommand = { rh_reconcileCheck(...args: string[]): Promise<string[]> };

/** Where the reconciler keeps its progress between passes (whichever process makes them). */
function stateKey(config: Config): string {
  return `${config.keyPrefix}:reconcile:state`;
}

export function reconcileLeaseKey(config: Config): string {
  return `${config.keyPrefix}:reconcile:lease`;
}

/**
 * Repairs runs that are not terminal although their job says otherwise: a job that finished or failed
 * while no one recorded it, a job that is gone, a run whose job was never added (a crash between
 * storing the run and adding its job). Every repair goes through the status machine, so a reconciler
 * racing a worker, or another reconciler, changes nothing twice.
 *
 * A pass costs what may need repair, not the backlog. It reads, in batches of one script call each:
 * every `running` run (bounded by the workers' concurrency); the `created` runs whose job is in the
 * queue's completed or failed set (a ZINTER in Redis, bounded by BullMQ's retention of finished jobs);
 * the `created` runs stored since the last pass (a watermark of creation order: only they can still
 * lack a job added after them); and a fixed slice of the older `created` backlog, round-robin, for a
 * job lost some other way. A waiting run whose job sits in the wait list is otherwise never read.
 */
export async function reconcileRuns(deps: ReconcileDeps, options: PassOptions = {}): Promise<ReconcileReport> {
  const { store, queue, config } = deps;
  const stillHeld = options.stillHeld ?? (() => Promise.resolve(true));
  const report: ReconcileReport = { checked: 0, requeued: 0, completed: 0, failed: 0 };
  const redis = store.redis as RedisClient & Partial<CheckCommand>;
  if (typeof redis.rh_reconcileCheck !== 'function') redis.defineCommand('rh_reconcileCheck', { numberOfKeys: 2, lua: CHECK_LUA });
  const repaired = new Set<string>();

  const check = async (ids: readonly string[]): Promise<{ young: number }> => {
    let young = 0;
    if (ids.length === 0) return { young };
    report.checked += ids.length;
    const flat = await (redis as RedisClient & CheckCommand).rh_reconcileCheck(
      queue.toKey('completed'),
      queue.toKey('failed'),
      store.keys.run(''),
      queue.toKey(''),
      ...ids,
    );
    const nowUs = nowMicros();
    for (let i = 0; i < flat.length; i += 7) {
      const [id, status, createdUs, attempt, job, detail, jobAttempt] = flat.slice(i, i + 7);
      const c: Candidate = {
        id: id!,
        status: status as Candidate['status'],
        createdUs: Number(createdUs),
        ...(attempt && { attempt: Number(attempt) }),
        job: job as Candidate['job'],
        detail: detail ?? '',
        ...(jobAttempt && { jobAttempt: Number(jobAttempt) }),
      };
      const repair = repairFor(c, nowUs, config.createdGraceMs);
      if (repair.kind === 'none') {
        if (repair.young) young++;
        continue;
      }
      if (repaired.has(c.id)) continue;
      repaired.add(c.id);
      await apply(deps, c, repair, report);
    }
    return { young };
  };

  // Every running run: few, and each may have lost its worker.
  for (let after = 0; ; ) {
    const page = await store.nonTerminalIds('running', after, BATCH);
    await check(page.map((r) => r.id));
    if (page.length < BATCH || !(await stillHeld())) break;
    after = page.at(-1)!.seq;
  }

  // Created runs whose job has finished: the intersection is computed in Redis, from the smaller set.
  const createdKey = store.keys.index('status', 'created');
  const [doneIds, failedIds] = await Promise.all([
    store.redis.zinter(2, createdKey, queue.toKey('completed')),
    store.redis.zinter(2, createdKey, queue.toKey('failed')),
  ]);
  const finished = [...new Set([...doneIds, ...failedIds])];
  for (let i = 0; i < finished.length; i += BATCH) await check(finished.slice(i, i + BATCH));

  // Created runs stored since the last pass. The watermark stops before the first one still in its
  // grace period without a job, so it is looked at again next time.
  const state = await store.redis.hmget(stateKey(config), 'created_seq', 'audit_seq');
  let watermark = Number(state[0] ?? 0);
  for (;;) {
    if (!(await stillHeld())) return finish(deps, report);
    const page = await store.nonTerminalIds('created', watermark, BATCH);
    const { young } = await check(page.map((r) => r.id));
    if (young > 0) break;
    if (page.length > 0) watermark = page.at(-1)!.seq;
    if (page.length < BATCH) break;
  }

  // A slice of the whole created backlog, for a job that vanished without finishing (an operator's
  // remove, a failover that lost a write): each run is re-read once per cycle through the backlog.
  const auditCount = options.auditCount ?? AUDIT_PER_PASS;
  let audit = Number(state[1] ?? 0);
  if (auditCount > 0) {
    const page = await store.nonTerminalIds('created', audit, auditCount);
    for (let i = 0; i < page.length; i += BATCH) await check(page.slice(i, i + BATCH).map((r) => r.id));
    audit = page.length < auditCount ? 0 : page.at(-1)!.seq;
  }
  if (await stillHeld()) await store.redis.hset(stateKey(config), 'created_seq', watermark, 'audit_seq', audit);
  // Flow control: admitted runs whose job a crash kept from being added, and conversations or limits
  // whose admitted run ended or vanished without handing over (a write lost in a failover, a run ended
  // by a version without flow control).
  report.requeued += await sweepReady(config, store.redis, store.keys, queue, config.createdGraceMs);
  await repairFlow(config, store.redis, store.keys, queue, deps.log);
  return finish(deps, report);
}

function finish({ log }: ReconcileDeps, report: ReconcileReport): ReconcileReport {
  if (report.requeued + report.completed + report.failed > 0) log.info(report, 'reconciler repaired runs');
  return report;
}

async function apply(deps: ReconcileDeps, c: Candidate, repair: Repair, report: ReconcileReport): Promise<void> {
  const { store, queue, config, log } = deps;
  const id = c.id;
  switch (repair.kind) {
    case 'fail': {
      const r = await store.transition(id, 'failed', { error: repair.error });
      if (r.outcome === 'moved') {
        report.failed++;
        log.warn({ run_id: id, error: repair.error }, 'reconciler failed a run');
      }
      return;
    }
    case 'complete': {
      const r = await store.transition(id, statusOfStopReason(repair.stopReason), { stopReason: repair.stopReason });
      if (r.outcome === 'moved') report.completed++;
      return;
    }
    case 'requeue': {
      // A finished job of an earlier run with this id would make the add a no-op: it goes first.
      if (repair.replaceJob) await queue.remove(id);
      const run = await store.get(id);
      const opts = run?.priority || run?.run_at ? flowJobOptions(config, id, run.priority, run.run_at ? Date.parse(run.run_at) : null) : runJobOptions(config, id);
      await queue.add('run', { agent_id: run?.agent_id ?? '' }, opts);
      report.requeued++;
      log.warn({ run_id: id, replaced_job: repair.replaceJob }, 'reconciler enqueued a run that had no job');
      return;
    }
    case 'none':
      return;
  }
}

/**
 * The reconciler of one process: makes a pass only while it holds the deployment's reconcile lease, so
 * one process at a time walks the runs however many workers run. The holder keeps the lease from pass
 * to pass (and extends it between batches); when it stops or crashes, another takes over at its next
 * turn once the lease is released or has expired.
 */
export class Reconciler {
  readonly lease: Lease;
  readonly #deps: ReconcileDeps;
  readonly #observer: ReconcileObserver | undefined;

  constructor(deps: ReconcileDeps & { observer?: ReconcileObserver }) {
    this.#deps = deps;
    this.#observer = deps.observer;
    const ttlMs = Math.max(1_000, LEASE_INTERVALS * deps.config.maintenanceIntervalMs);
    this.lease = new Lease(deps.store.redis, reconcileLeaseKey(deps.config), ttlMs);
  }

  /** One turn: a pass when this process holds the lease (its report), nothing when another does. */
  async tick(): Promise<ReconcileReport | undefined> {
    if (!(await this.lease.hold())) return undefined;
    const started = performance.now();
    const report = await reconcileRuns(this.#deps, { stillHeld: () => this.lease.hold() });
    this.#observer?.reconcilePass(performance.now() - started, report);
    return report;
  }

  /** Gives the lease up, so another process takes over at its next turn rather than after the TTL. */
  async close(): Promise<void> {
    await this.lease.release();
  }
}
