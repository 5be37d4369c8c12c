import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { Runhook } from '../../src/runhook.ts';
import type { RunStatus } from '../../src/runs/schema.ts';
import { Receiver } from '../helpers/receiver.ts';
import { closeRedis, connect, silentLog, testConfig, waitFor } from '../helpers/setup.ts';
import { faultEnv, randomBetween, sleep, WorkerPool } from './chaos.ts';

const RUNS = 2_000;

/** Creates RUNS runs with callbacks, in batches, while `chaos` runs; then checks that nothing was lost. */
async function runUnderChaos(pools: { runs: WorkerPool; callbacks: WorkerPool }, chaos: () => Promise<void>) {
  const config = testConfig();
  const redis: Redis = await connect();
  const runhook = new Runhook(config, redis, silentLog);
  const receiver = await Receiver.start({ status: 200 });
  const env = faultEnv(config);
  const runs = new WorkerPool(['worker', '--only', 'runs'], env, 'run worker started');
  const callbacks = new WorkerPool(['worker', '--only', 'callbacks'], env, 'runhook is up');
  pools.runs = runs;
  pools.callbacks = callbacks;
  try {
    await Promise.all([runs.start(2), callbacks.start(2)]);
    const ids: string[] = [];
    const creating = (async () => {
      for (let i = 0; i < RUNS; i += 100) {
        const batch = await Promise.all(
          Array.from({ length: 100 }, (_, j) =>
            runhook.createRun({
              agent_id: `chaos-${(i + j) % 10}`,
              input: { text: 'a b c d', token_ms: 5 },
              callback_url: receiver.url('/hook'),
            }),
          ),
        );
        ids.push(...batch.map((b) => b.run.id));
        await sleep(30);
      }
    })();
    await Promise.all([creating, chaos()]);

    const statuses = await waitFor(
      async () => {
        const counts = await runhook.store.countByStatus();
        return counts.created + counts.running === 0 ? counts : undefined;
      },
      120_000,
      'every run to end',
    );
    const hooks = await waitFor(
      () => {
        const seen = new Set(receiver.requests.map((r) => String(r.headers['webhook-id'])));
        return seen.size >= RUNS ? seen : undefined;
      },
      120_000,
      'every callback to arrive',
    );
    const byStatus: Partial<Record<RunStatus, number>> = statuses;
    expect(byStatus.created).toBe(0);
    expect(byStatus.running).toBe(0);
    expect((byStatus.completed ?? 0) + (byStatus.failed ?? 0) + (byStatus.cancelled ?? 0)).toBe(RUNS);
    expect(ids.every((id) => hooks.has(`msg_${id}`) || [...hooks].some((h) => h.includes(id)))).toBe(true);
    return { statuses, callbacks: receiver.requests.length, unique: hooks.size, runKills: runs.kills, callbackKills: callbacks.kills };
  } finally {
    await Promise.all([runs.stop(), callbacks.stop()]);
    await receiver.close();
    await runhook.close();
    await closeRedis(redis);
  }
}

describe('fault suite: workers killed with SIGKILL under load', () => {
  const pools = {} as { runs: WorkerPool; callbacks: WorkerPool };

  it(`${RUNS} runs with callbacks, run workers killed 10 times: every run ends, every callback arrives`, async () => {
    const report = await runUnderChaos(pools, async () => {
      for (let k = 0; k < 10; k++) {
        await sleep(randomBetween(150, 600));
        await pools.runs.killOneAndReplace();
      }
    });
    expect(report.runKills).toBe(10);
    console.log('run-worker kills:', JSON.stringify(report));
  }, 300_000);

  it(`${RUNS} runs with callbacks, callback workers killed 5 times: every callback arrives`, async () => {
    const report = await runUnderChaos(pools, async () => {
      for (let k = 0; k < 5; k++) {
        await sleep(randomBetween(200, 800));
        await pools.callbacks.killOneAndReplace();
      }
    });
    expect(report.callbackKills).toBe(5);
    console.log('callback-worker kills:', JSON.stringify(report));
  }, 300_000);
});
