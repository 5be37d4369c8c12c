import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../../src/runs/store.ts';
import { outboxGraceMs, sweepCallbackOutbox } from '../../src/callbacks/outbox.ts';
import { startService, type Service } from '../../src/service.ts';
import { Receiver } from '../helpers/receiver.ts';
import { silentLog, testConfig, waitFor } from '../helpers/setup.ts';

describe('callback deliveries that do not wait for one another', () => {
  let service: Service;
  beforeAll(async () => {
    // A long timeout, so the slow receivers hold their deliveries for the whole test.
    const config = testConfig({ callbackTimeoutMs: 30_000, callbackConcurrency: 16 });
    service = await startService(config, silentLog, new Set(['runs', 'callbacks']));
  });
  afterAll(() => service.close());

  const runTo = async (url: string) => (await service.runhook.createRun({ agent_id: 'a', input: { text: 'x' }, callback_url: url })).run.id;

  it('delivers to a fast receiver while ten slow receivers hold their deliveries', async () => {
    const slow = await Promise.all(Array.from({ length: 10 }, () => Receiver.start({ hang: true })));
    const fast = await Receiver.start({ status: 200 });
    try {
      const slowRuns = await Promise.all(slow.map((r) => runTo(r.url())));
      await Promise.all(slow.map((r) => r.waitForRequests(1)));
      const fastRun = await runTo(fast.url());
      await fast.waitForRequests(1);
      await waitFor(async () => (await service.runhook.getRun(fastRun)).callback_status_code === 200, 10_000, 'the fast callback');
      // Every slow delivery is still in flight: none has an attempt recorded yet.
      const slowAttempts = await Promise.all(slowRuns.map((id) => service.runhook.store.callbackAttempts(id)));
      expect(slowAttempts.every((a) => a.length === 0)).toBe(true);
    } finally {
      await Promise.all([...slow, fast].map((r) => r.close()));
    }
  });

  it('adds the job of a run whose process ended it but died before dispatching its callback', async () => {
    const r = await Receiver.start({ status: 200 });
    try {
      // A store with no Runhook listening stands for the process that died after the terminal move.
      const orphanStore = new RunStore(service.runhook.redis, { keyPrefix: service.runhook.config.keyPrefix, retentionMs: 60_000 });
      const { record } = await orphanStore.create({ agent_id: 'a', callback_url: r.url() });
      await orphanStore.transition(record.run.id, 'running');
      await orphanStore.transition(record.run.id, 'completed');
      expect(await service.runhook.store.dueCallbackIds(Date.now() + 1, 1_000)).toContain(record.run.id);
      // The periodic sweep takes entries older than its grace; here, as if that much time had passed.
      await sweepCallbackOutbox(
        { store: service.runhook.store, dispatch: (ids) => service.runhook.dispatchCallbacks(ids), log: silentLog },
        Date.now() + outboxGraceMs(service.runhook.config) + 1,
      );
      const [req] = await r.waitForRequests(1, 15_000);
      expect(req!.headers['webhook-id']).toBe(`msg_${record.run.id}`);
      await waitFor(async () => !(await service.runhook.store.dueCallbackIds(Date.now() + 1, 1_000)).includes(record.run.id), 5_000, 'the outbox to empty');
    } finally {
      await r.close();
    }
  });
});
