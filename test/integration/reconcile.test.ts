import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNS_QUEUE, runJobOptions } from '../../src/queue/queues.ts';
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

/** A bare BullMQ worker that finishes jobs without telling the store, as a crash after the job would. */
async function finishJobsBehindTheStoresBack(outcome: 'complete' | 'fail', count: number) {
  let seen = 0;
  const connection = redis.duplicate();
  const worker = new Worker(
    RUNS_QUEUE,
    async () => {
      seen++;
      if (outcome === 'fail') throw new Error('exploded without a word');
      return { stop_reason: 'max_steps' };
    },
    { connection, prefix: config.keyPrefix },
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
      if ((await redis.type(k)) === 'zset') expect(await redis.zscore(k, done.record.run.id)).toBeNull();
    }
    expect(runJobOptions(short, 'x').removeOnComplete).toBeTruthy();
    await rh.close();
  });
});
