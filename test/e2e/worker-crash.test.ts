import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runhook } from '../../src/runhook.ts';
import { closeTestRunhook, openTestRunhook, testConfig, waitFor } from '../helpers/setup.ts';
import { childEnv, startRunhook, type RunhookProcess } from '../helpers/processes.ts';

// Short locks so a killed worker's job is recovered in a few seconds, not BullMQ's default 30 s.
const config = testConfig({ lockDurationMs: 2_000, stalledIntervalMs: 1_000, maxStalledCount: 1 });
const workerEnv = childEnv(config, {
  RUNHOOK_LOCK_DURATION_MS: '2000',
  RUNHOOK_STALLED_INTERVAL_MS: '1000',
  RUNHOOK_MAINTENANCE_INTERVAL_MS: '1000',
  RUNHOOK_CREATED_GRACE_MS: '500',
  RUNHOOK_RUN_BACKOFF_MS: '10',
});

let runhook: Runhook;
const children: RunhookProcess[] = [];

function worker(): RunhookProcess {
  const p = startRunhook(['worker', '--only', 'runs'], workerEnv);
  children.push(p);
  return p;
}

beforeAll(async () => {
  runhook = await openTestRunhook(config);
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await closeTestRunhook(runhook);
});

describe('a worker process that dies', () => {
  it('killed with SIGKILL mid-run: the run is recovered and still ends', async () => {
    const first = worker();
    await first.waitForOutput('run worker started');
    const { run } = await runhook.createRun({ agent_id: 'crash', input: { text: 'one two three four five six', token_ms: 150 } });
    await waitFor(async () => (await runhook.store.streamEntries(run.id)).length >= 2, 10_000, 'the run to emit');
    expect((await runhook.getRun(run.id)).status).toBe('running');
    await first.kill('SIGKILL');

    const second = worker();
    await second.waitForOutput('run worker started');
    const done = await runhook.waitForRun(run.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('completed');
    // The second attempt's messages replace the abandoned first attempt's: the text appears once.
    const text = (await runhook.store.streamEntries(run.id)).flatMap((e) => (e.kind === 'message' ? [e.message.content] : [])).join('');
    expect(text).toBe('one two three four five six');
    await second.kill('SIGTERM');
  });

  it('restarted while runs were queued and running: no transition is lost', async () => {
    const runs = await Promise.all(
      Array.from({ length: 30 }, (_, i) => runhook.createRun({ agent_id: 'restart', input: { text: `run ${i} a b`, token_ms: 20 } })),
    );
    const w1 = worker();
    await w1.waitForOutput('run worker started');
    await waitFor(async () => (await runhook.store.countByStatus()).completed >= 5, 15_000, 'some runs to complete');
    // A graceful stop part-way through, then a new process takes over the rest.
    expect(await w1.kill('SIGTERM')).toBe(0);
    const w2 = worker();
    await w2.waitForOutput('run worker started');
    const ended = await Promise.all(runs.map(({ run }) => runhook.waitForRun(run.id, { timeoutMs: 30_000 })));
    expect(ended.map((r) => r.status)).toEqual(ended.map(() => 'completed'));
    await w2.kill('SIGTERM');
  });
});
