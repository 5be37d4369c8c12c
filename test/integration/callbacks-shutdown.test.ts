import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallbackWorker } from '../../src/callbacks/callback-worker.ts';
import { callbackJobId } from '../../src/queue/queues.ts';
import type { Runhook } from '../../src/runhook.ts';
import { Receiver } from '../helpers/receiver.ts';
import { closeTestRunhook, openTestRunhook, silentLog, testConfig, waitFor } from '../helpers/setup.ts';

describe('stopping a callback worker', () => {
  const config = testConfig({ callbackTimeoutMs: 30_000 });
  let redis: Redis;
  let runhook: Runhook;
  beforeAll(async () => {
    runhook = await openTestRunhook(config);
    redis = runhook.redis as Redis;
  });
  afterAll(async () => {
    await closeTestRunhook(runhook);
  });

  const endedRunTo = async (url: string) => {
    const { record } = await runhook.store.create({ agent_id: 'a', callback_url: url });
    await runhook.store.transition(record.run.id, 'running');
    await runhook.store.transition(record.run.id, 'completed');
    return record.run.id;
  };

  it('puts a delivery cut off by the end of the grace period back in the queue without spending an attempt', async () => {
    const r = await Receiver.start({ hang: true }, { status: 200 });
    try {
      const first = new CallbackWorker({ config, redis, store: runhook.store, log: silentLog });
      await Promise.all([first.start(), first.start()]);
      const id = await endedRunTo(r.url());
      await r.waitForRequests(1);
      await Promise.all([first.close(50), first.close(50)]);
      const job = await runhook.callbackQueue.getJob(callbackJobId(id));
      expect(job?.attemptsMade).toBe(0);
      expect(['delayed', 'waiting']).toContain(await job?.getState());
      expect(await runhook.store.callbackAttempts(id)).toEqual([]);

      const second = new CallbackWorker({ config, redis, store: runhook.store, log: silentLog });
      await second.start();
      try {
        await r.waitForRequests(2);
        const log = await waitFor(async () => {
          const a = await runhook.store.callbackAttempts(id);
          return a.length > 0 ? a : undefined;
        }, 10_000, 'the delivery to be recorded');
        expect(log).toEqual([expect.objectContaining({ attempt: 1, status_code: 200, error: null })]);
      } finally {
        await second.close();
      }
    } finally {
      await r.close();
    }
  });

  it('can be closed before it was started, and while it starts', async () => {
    const never = new CallbackWorker({ config, redis, store: runhook.store, log: silentLog });
    await never.close();
    const racing = new CallbackWorker({ config, redis, store: runhook.store, log: silentLog });
    const started = racing.start();
    await racing.close();
    await started;
  });
});
