import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/service.ts';
import { Receiver } from '../helpers/receiver.ts';
import { silentLog, testConfig, waitFor } from '../helpers/setup.ts';
import { FAULT_SECRET } from './chaos.ts';

const HEALTHY_RUNS = 400;
const BAD_RUNS_EACH = 100;

let service: Service;
const receivers: Receiver[] = [];

async function receiver(...replies: Parameters<typeof Receiver.start>): Promise<Receiver> {
  const r = await Receiver.start(...replies);
  receivers.push(r);
  return r;
}

beforeAll(async () => {
  service = await startService(
    testConfig({
      concurrency: 50,
      webhookSecret: FAULT_SECRET,
      callbackTimeoutMs: 1_000,
      // Svix's first steps: a failing receiver is tried again after seconds, not milliseconds, so the test
      // measures slot starvation rather than the CPU of a compressed retry storm.
      callbackRetryDelaysMs: [0, 5_000, 300_000],
    }),
    silentLog,
    new Set(['runs', 'callbacks']),
  );
});
afterAll(async () => {
  await service.close();
  await Promise.all(receivers.map((r) => r.close()));
});

/** Runs to a fresh healthy receiver, interleaved with runs to `others`; the healthy receiver's delivery rate. */
async function healthyRate(others: Receiver[]): Promise<number> {
  const healthy = await receiver({ status: 200 });
  const started = Date.now();
  const creates: Promise<unknown>[] = [];
  for (let i = 0; i < HEALTHY_RUNS; i++) {
    creates.push(service.runhook.createRun({ agent_id: 'fast', input: { text: 'ok' }, callback_url: healthy.url('/hook') }));
    const b = others[i % others.length];
    if (b && i < BAD_RUNS_EACH * others.length) creates.push(service.runhook.createRun({ agent_id: 'slow', input: { text: 'ok' }, callback_url: b.url('/hook') }));
  }
  await Promise.all(creates);
  await healthy.waitForRequests(HEALTHY_RUNS, 120_000);
  const last = Math.max(...healthy.requests.map((r) => r.at));
  return HEALTHY_RUNS / ((last - started) / 1000);
}

describe('fault suite: receivers that hang, fail forever or drip slowly', () => {
  it('do not stop the other runs’ callbacks from flowing', async () => {
    // The same load both times (400 runs to the measured receiver, 300 to three others); only whether
    // the others behave differs, so the comparison isolates what bad receivers do to a good one.
    const good = [await receiver({ status: 200 }), await receiver({ status: 200 }), await receiver({ status: 200 })];
    await healthyRate(good); // warm-up: JIT, connections
    const alone = await healthyRate(good);
    const bad = [await receiver({ hang: true }), await receiver({ status: 500 }), await receiver({ dripMs: 200 })];
    const withBad = await healthyRate(bad);
    const report = { healthy_alone_per_s: Math.round(alone), healthy_with_bad_per_s: Math.round(withBad), ratio: +(withBad / alone).toFixed(2) };
    console.log('slow receivers:', JSON.stringify(report));
    // Every healthy callback arrived (waitForRequests above) while the bad ones were still failing.
    await waitFor(async () => (await service.runhook.store.callbackCounts()).retrying > 0 || undefined, 10_000, 'bad callbacks retrying');
    expect(bad[1]!.requests.length).toBeGreaterThan(0);
  }, 240_000);
});
