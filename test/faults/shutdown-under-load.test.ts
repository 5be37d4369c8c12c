import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runhook } from '../../src/runhook.ts';
import { closeTestRunhook, openTestRunhook, testConfig, waitFor } from '../helpers/setup.ts';
import { faultEnv, sleep } from './chaos.ts';
import { startRunhook, type RunhookProcess } from '../helpers/processes.ts';

const config = testConfig();
let runhook: Runhook;
const procs: RunhookProcess[] = [];

beforeAll(async () => {
  runhook = await openTestRunhook(config);
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await closeTestRunhook(runhook);
});

describe('fault suite: SIGTERM under load', () => {
  it('drains: active runs finish or end failed after the grace period, no job stays locked, exit 0', async () => {
    const env = faultEnv(config, { RUNHOOK_SHUTDOWN_GRACE_MS: '1500', RUNHOOK_CONCURRENCY: '20' });
    const first = startRunhook(['worker'], env);
    procs.push(first);
    await first.waitForOutput('runhook is up');
    // Short runs and some that outlive the grace period.
    const runs = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        runhook.createRun({ agent_id: 'drain', input: i % 50 === 0 ? { text: 'long', ttft_ms: 5_000 } : { text: 'a b c', token_ms: 20 } }),
      ),
    );
    await waitFor(async () => (await runhook.store.countByStatus()).completed >= 50, 30_000, 'some runs to complete');
    expect(await first.kill('SIGTERM')).toBe(0);

    expect(await runhook.queue.getActiveCount()).toBe(0);
    const after = await Promise.all(runs.map(({ run }) => runhook.getRun(run.id)));
    expect(after.filter((r) => r.status === 'running')).toEqual([]);
    const aborted = after.filter((r) => r.status === 'failed');
    expect(aborted.length).toBeGreaterThan(0);
    for (const r of aborted) expect(String(r.metadata?.error)).toContain('worker shut down');

    // What was still waiting is taken by the next worker.
    const second = startRunhook(['worker'], env);
    procs.push(second);
    await second.waitForOutput('runhook is up');
    const ended = await Promise.all(runs.map(({ run }) => runhook.waitForRun(run.id, { timeoutMs: 60_000 })));
    expect(ended.filter((r) => r.status === 'completed').length + aborted.length).toBe(runs.length);
    await sleep(10);
    expect(await second.kill('SIGTERM')).toBe(0);
  }, 120_000);
});
