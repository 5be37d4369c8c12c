import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callbackJobId } from '../../src/queue/queues.ts';
import { startService, type Service } from '../../src/service.ts';
import { Receiver } from '../helpers/receiver.ts';
import { silentLog, testConfig, waitFor } from '../helpers/setup.ts';

describe('the callback worker with the SSRF guard on', () => {
  let service: Service;
  let r: Receiver;
  beforeAll(async () => {
    r = await Receiver.start({ status: 200 });
    service = await startService(testConfig({ callbackAllowPrivate: false }), silentLog, new Set(['runs', 'callbacks']));
  });
  afterAll(async () => {
    await service.close();
    await r.close();
  });

  it.each([
    ['loopback', () => r.url()],
    ['a name resolving to loopback', () => `http://localhost:${r.port}/`],
    ['IPv4-mapped loopback', () => `http://[::ffff:127.0.0.1]:${r.port}/`],
    ['the metadata address', () => 'http://169.254.169.254/latest/meta-data/'],
  ])('never sends to %s and records a blocked address', async (_what, url) => {
    const { run } = await service.runhook.createRun({ agent_id: 'a', input: { text: 'x' }, callback_url: url() });
    await waitFor(async () => (await (await service.runhook.callbackQueue.getJob(callbackJobId(run.id)))?.getState()) === 'failed', 15_000, 'the callback to be given up');
    const log = await service.runhook.store.callbackAttempts(run.id);
    expect(log.map((a) => [a.status_code, a.error])).toEqual([
      [null, 'blocked address'],
      [null, 'blocked address'],
      [null, 'blocked address'],
    ]);
    expect(log.at(-1)!.gave_up).toBe(true);
    expect(await service.runhook.getRun(run.id)).toMatchObject({ callback_status_code: null, callback_error: 'blocked address' });
    expect(r.requests).toHaveLength(0);
  });
});
