import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNS_QUEUE, runJobOptions, type RunJobResult } from '../../src/queue/queues.ts';
import { reconcileRuns } from '../../src/queue/reconcile.ts';
import { sweepExpiredRuns } from '../../src/runs/retention.ts';
import { Runhook } from '../../src/runhook.ts';
import { startService } from '../../src/service.ts';
import { closeRedis, closeTestRunhook, openTestRunhook, silentLog, testConfig, waitFor } from '../helpers/setup.ts';

const config = testConfig({ createdGraceMs: 0, runAttempts: 1 });
let redis: Redis;
let runhook: Runhook;
const reconcile = () => reconcileRuns({ config, store: runhook.store, queue: runhook.queue, log: silentLog });

beforeAll(async () => {
  runhook = await openTestRunhook(config);
  redis = runhook.redis as Redis;
});
afterAll(async () => {
  await closeTestRunhook(runhook);
});

/**
 * A bare BullMQ worker that finishes jobs without telling the store, as a crash after the job would;
 * `returns` is the job's return value when it completes.
 */
async function finishJobsBehindTheStoresBack(
  outcome: 'complete' | 'fail',
  count: number,
  { returns = { stop_reason: 'max_steps' } as RunJobResult, prefix = config.keyPrefix } = {},
) {
  let seen = 0;
  const connection = redis.duplicate();
  const worker = new Worker(
    RUNS_QUEUE,
    async () => {
      seen++;
      if (outcome === 'fail') throw new Error('exploded without a word');
      return returns;
    },
    { connection, prefix },
  );
  await waitFor(() => seen >= count, 10_000, 'bare worker');
  await worker.close();
  await closeRedis(connection);
}

describe('the reconciler', () => {
  it('adds the job of a run that was stored but never enqueued (a crash between the two steps)', async () => {
    const { record } = await runhook.store.create({ agent_id: 'rec', input: { text: 'hello' } });
    expect(await runhook.queue.getJob(record.run.id)).toBeUndefined();
    const report = await reconcile();
    expect(report.requeued).toBe(1);
    expect(await runhook.queue.getJobState(record.run.id)).toBe('waiting');
    const service = await startService(config, silentLog, new Set(['runs']));
    try {
      expect((await service.runhook.waitForRun(record.run.id)).status).toBe('completed');
    } finally {
      await service.close();
    }
  });

  it('completes a running run whose job completed unrecorded, with the job’s stop reason', async () => {
    const { run } = await runhook.createRun({ agent_id: 'rec' });
    await runhook.store.start(run.id, 1);
    await finishJobsBehindTheStoresBack('complete', 1);
    await reconcile();
    expect(await runhook.getRun(run.id)).toMatchObject({ status: 'completed', stop_reason: 'max_steps' });
  });

  it('fails a running run whose job failed unrecorded, keeping the job’s error', async () => {
    const { run } = await runhook.createRun({ agent_id: 'rec' });
    await runhook.store.start(run.id, 1);
    await finishJobsBehindTheStoresBack('fail', 1);
    await reconcile();
    const after = await runhook.getRun(run.id);
    expect(after).toMatchObject({ status: 'failed', stop_reason: 'error' });
    expect(after.metadata).toMatchObject({ error: 'exploded without a word' });
  });

  it('fails a running run whose job is gone', async () => {
    const { record } = await runhook.store.create({ agent_id: 'rec' });
    await runhook.store.start(record.run.id, 1);
    await reconcile();
    const after = await runhook.getRun(record.run.id);
    expect(after.status).toBe('failed');
    expect(String(after.metadata?.error)).toContain('job lost');
  });

  it('changes nothing when replayed', async () => {
    await reconcile();
    const before = await runhook.listRuns({ agent_ids: ['rec'], limit: 100 });
    const report = await reconcile();
    expect(report).toMatchObject({ requeued: 0, completed: 0, failed: 0 });
    expect(await runhook.listRuns({ agent_ids: ['rec'], limit: 100 })).toEqual(before);
  });

  it('leaves a fresh created run alone while its job may still be on its way', async () => {
    const graceful = testConfig({ createdGraceMs: 60_000 });
    const rh = new Runhook(graceful, redis, silentLog);
    const { record } = await rh.store.create({ agent_id: 'rec' });
    const report = await reconcileRuns({ config: graceful, store: rh.store, queue: rh.queue, log: silentLog });
    expect(report.requeued).toBe(0);
    expect(await rh.queue.getJob(record.run.id)).toBeUndefined();
    await rh.close();
  });
});

describe('a job that ended {skipped} (issue 16, item 6)', () => {
  // The run worker returns {skipped} when its attempt found the run ended or gone, or was cancelled or
  // superseded by another attempt: such a job says nothing about how the run ended.
  it('is not read as a completed run: a running run whose job ended skipped is failed as lost, never completed', async () => {
    const { run } = await runhook.createRun({ agent_id: 'rec-skip' });
    await runhook.store.start(run.id, 1);
    await finishJobsBehindTheStoresBack('complete', 1, { returns: { skipped: 'superseded' } });
    expect(await runhook.queue.getJobState(run.id)).toBe('completed');
    const report = await reconcile();
    expect(report.completed).toBe(0);
    const after = await runhook.getRun(run.id);
    expect(after).toMatchObject({ status: 'failed', stop_reason: 'error' });
    expect(String(after.metadata?.error)).toContain('skipped: superseded');
  });

  it('does not complete a running run from a job whose last attempt is not the one that holds the run', async () => {
    // That attempt's own move was refused (another attempt holds the run), so its stop reason is not the run's.
    const { run } = await runhook.createRun({ agent_id: 'rec-skip' });
    await runhook.store.start(run.id, 2);
    await finishJobsBehindTheStoresBack('complete', 1);
    const report = await reconcile();
    expect(report.completed).toBe(0);
    const after = await runhook.getRun(run.id);
    expect(after.status).toBe('failed');
    expect(String(after.metadata?.error)).toContain('the run is held by attempt 2');
  });

  it('gives a created run whose id’s earlier job ended skipped a job of its own, which then runs it', async () => {
    // The job of an earlier run with this id found it gone and ended; the run stored since under the
    // same id has never been run, and adding its job is a no-op while the old one is kept.
    const { record } = await runhook.store.create({ agent_id: 'rec-skip', input: { text: 'again' } });
    const id = record.run.id;
    await runhook.queue.add('run', { agent_id: 'rec-skip' }, runJobOptions(config, id));
    await finishJobsBehindTheStoresBack('complete', 1, { returns: { skipped: 'missing' } });
    await runhook.queue.add('run', { agent_id: 'rec-skip' }, runJobOptions(config, id));
    expect(await runhook.queue.getJobState(id)).toBe('completed');
    const report = await reconcile();
    expect(report).toMatchObject({ requeued: 1, failed: 0, completed: 0 });
    expect(await runhook.queue.getJobState(id)).toBe('waiting');
    const service = await startService(config, silentLog, new Set(['runs']));
    try {
      expect((await service.runhook.waitForRun(id)).status).toBe('completed');
    } finally {
      await service.close();
    }
  });
});

describe('what a pass reads', () => {
  // Its own prefix: the counts below are of this backlog alone.
  const own = testConfig({ createdGraceMs: 0, runAttempts: 1 });
  let rh: Runhook;
  const pass = (auditCount: number) => reconcileRuns({ config: own, store: rh.store, queue: rh.queue, log: silentLog }, { auditCount });
  beforeAll(() => {
    rh = new Runhook(own, redis, silentLog);
  });
  afterAll(async () => {
    await rh.close();
  });

  it('reads a waiting backlog once, then only what may need repair and a slice for the audit', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 1_200; i += 200) {
      const batch = await Promise.all(Array.from({ length: 200 }, () => rh.createRun({ agent_id: 'backlog' })));
      ids.push(...batch.map((b) => b.run.id));
    }
    expect(await pass(0)).toEqual({ checked: 1_200, requeued: 0, completed: 0, failed: 0 });
    // Nothing new, nothing running, no finished job: the pass reads none of the 1,200 waiting runs.
    expect(await pass(0)).toEqual({ checked: 0, requeued: 0, completed: 0, failed: 0 });
    expect(await pass(500)).toMatchObject({ checked: 500, requeued: 0 });

    // A job that vanished below the watermark is found by the audit, within one cycle through the backlog.
    const lost = ids[700]!;
    await rh.queue.remove(lost);
    let requeued = 0;
    for (let i = 0; i < 3 && requeued === 0; i++) requeued = (await pass(500)).requeued;
    expect(requeued).toBe(1);
    expect(await rh.queue.getJobState(lost)).toBe('waiting');
  });

  it('finds a created run below the watermark whose job failed, without the audit', async () => {
    await pass(0);
    // A worker that took the job and died before starting the run, until BullMQ failed the job.
    await finishJobsBehindTheStoresBack('fail', 1_200, { prefix: own.keyPrefix });
    const report = await pass(0);
    expect(report).toMatchObject({ failed: 1_200, requeued: 0 });
    expect(report.checked).toBe(1_200);
    expect((await rh.listRuns({ agent_ids: ['backlog'], statuses: ['failed'], limit: 1 }))[0]?.metadata).toMatchObject({
      error: 'exploded without a word',
    });
  });
});

describe('retention', () => {
  it('removes terminal runs after the retention, with their index entries, and keeps the others', async () => {
    const short = testConfig({ retentionMs: 1 });
    const rh = new Runhook(short, redis, silentLog);
    const done = await rh.store.create({ agent_id: 'old', conversation_id: 'c' });
    await rh.store.transition(done.record.run.id, 'running');
    await rh.store.transition(done.record.run.id, 'completed');
    const live = await rh.store.create({ agent_id: 'old' });
    await new Promise((r) => setTimeout(r, 5));
    expect(await sweepExpiredRuns(rh.store, silentLog)).toBe(1);
    expect(await rh.store.get(done.record.run.id)).toBeNull();
    expect((await rh.listRuns({ agent_ids: ['old'] })).map((r) => r.id)).toEqual([live.record.run.id]);
    const keys = await redis.keys(`${short.keyPrefix}:*`);
    for (const k of keys) {
      // The cursor tombstones keep a removed run's place in creation order, by design (item 4).
      if (k === rh.store.keys.cursorTombstones) continue;
      if ((await redis.type(k)) === 'zset') expect(await redis.zscore(k, done.record.run.id)).toBeNull();
    }
    expect(runJobOptions(short, 'x').removeOnComplete).toBeTruthy();
    await rh.close();
  });
});
