import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runhook } from '../../src/runhook.ts';
import { waitingCounts } from '../../src/flow/flow.ts';
import { expectInOrderWithoutOverlap, spansOf } from '../helpers/flow.ts';
import { childEnv, startRunhook, type RunhookProcess } from '../helpers/processes.ts';
import { closeTestRunhook, openTestRunhook, testConfig, waitFor } from '../helpers/setup.ts';

// Short locks so a killed worker's job is recovered in a few seconds, not BullMQ's default 30 s.
const config = testConfig({ lockDurationMs: 2_000, stalledIntervalMs: 1_000, maxStalledCount: 1 });
const workerEnv = childEnv(config, {
  RUNHOOK_LOCK_DURATION_MS: '2000',
  RUNHOOK_STALLED_INTERVAL_MS: '1000',
  RUNHOOK_MAINTENANCE_INTERVAL_MS: '1000',
  RUNHOOK_CREATED_GRACE_MS: '500',
  RUNHOOK_RUN_BACKOFF_MS: '10',
  RUNHOOK_CONCURRENCY: '8',
});

let runhook: Runhook;
const children: RunhookProcess[] = [];

async function worker(): Promise<RunhookProcess> {
  const p = startRunhook(['worker', '--only', 'runs'], workerEnv);
  children.push(p);
  await p.waitForOutput('run worker started', 90_000);
  return p;
}

beforeAll(async () => {
  runhook = await openTestRunhook(config);
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await closeTestRunhook(runhook);
});

describe('conversations across worker processes', () => {
  it('a worker SIGKILLed in the middle of a conversation: the rest still run, in order, none twice', async () => {
    const first = await worker();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const input = { text: `turn ${i} one two three four five`, token_ms: 80 };
      ids.push((await runhook.createRun({ agent_id: 'crash', conversation_id: 'conv-crash', input })).run.id);
    }
    // Killed while the second run of the conversation is running.
    await waitFor(async () => (await runhook.getRun(ids[1]!)).status === 'running', 15_000, 'the second run to start');
    await first.kill('SIGKILL');
    const second = await worker();
    const ended = await Promise.all(ids.map((id) => runhook.waitForRun(id, { timeoutMs: 40_000 })));
    expect(ended.map((r) => r.status)).toEqual(ids.map(() => 'completed'));
    const spans = await spansOf(runhook, ids);
    expectInOrderWithoutOverlap(spans, 'conv-crash');
    // Only the killed run was attempted again; every other ran once.
    const attempts = await Promise.all(ids.map((id) => runhook.redis.hget(runhook.store.keys.run(id), 'attempt')));
    expect(attempts.map(Number)).toEqual([1, 2, 1, 1, 1]);
    await second.kill('SIGTERM');
  });

  it('200 runs over 20 conversations on 4 worker processes: each conversation in order, without overlap', { timeout: 180_000 }, async () => {
    const workers = await Promise.all([worker(), worker(), worker(), worker()]);
    const byConv = new Map<string, string[]>();
    // Interleaved: run i of every conversation before run i+1 of any.
    for (let i = 0; i < 10; i++) {
      const made = await Promise.all(
        Array.from({ length: 20 }, (_, c) =>
          runhook.createRun({ agent_id: `agent-${c % 5}`, conversation_id: `c-${c}`, input: { text: `c${c} r${i}`, ttft_ms: 10 } }),
        ),
      );
      made.forEach(({ run }, c) => byConv.set(`c-${c}`, [...(byConv.get(`c-${c}`) ?? []), run.id]));
    }
    const all = [...byConv.values()].flat();
    await Promise.all(all.map((id) => runhook.waitForRun(id, { timeoutMs: 60_000 })));
    for (const [conv, ids] of byConv) {
      const spans = await spansOf(runhook, ids);
      expect(spans.every((s) => s.status === 'completed')).toBe(true);
      expectInOrderWithoutOverlap(spans, conv);
    }
    expect(await waitingCounts(runhook.redis, config.keyPrefix)).toEqual({ conversation: 0, limit: 0 });
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  });
});
