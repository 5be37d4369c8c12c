import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runhook } from '../../src/runhook.ts';
import { closeTestRunhook, openTestRunhook, testConfig, waitFor } from '../helpers/setup.ts';
import { childEnv, startRunhook } from '../helpers/processes.ts';

const config = testConfig();
let runhook: Runhook;

beforeAll(async () => {
  runhook = await openTestRunhook(config);
});
afterAll(async () => {
  await closeTestRunhook(runhook);
});

describe('SIGTERM', () => {
  it('lets active runs finish within the grace period, then exits 0', async () => {
    const w = startRunhook(['worker', '--only', 'runs'], childEnv(config, { RUNHOOK_SHUTDOWN_GRACE_MS: '10000' }));
    await w.waitForOutput('run worker started');
    const { run } = await runhook.createRun({ agent_id: 'term', input: { text: 'a b c d', token_ms: 100 } });
    await waitFor(async () => (await runhook.getRun(run.id)).status === 'running', 10_000, 'running');
    expect(await w.kill('SIGTERM')).toBe(0);
    expect(await runhook.getRun(run.id)).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
    expect(await runhook.queue.getActiveCount()).toBe(0);
  });

  it('exits 0 on a SIGTERM that arrives while its later parts are still starting', async () => {
    const w = startRunhook(['worker'], childEnv(config));
    // The run worker is up (and may take jobs) before the callback worker, the bulk worker and the
    // maintenance loop: a signal now must still drain and exit cleanly.
    await w.waitForOutput('run worker started');
    expect(await w.kill('SIGTERM')).toBe(0);
  });

  it('aborts runs still going after the grace period: they end failed with the reason, no job stays locked', async () => {
    const w = startRunhook(['worker', '--only', 'runs'], childEnv(config, { RUNHOOK_SHUTDOWN_GRACE_MS: '300' }));
    await w.waitForOutput('run worker started');
    const { run } = await runhook.createRun({ agent_id: 'term', input: { text: 'slow run', ttft_ms: 60_000 } });
    await waitFor(async () => (await runhook.getRun(run.id)).status === 'running', 10_000, 'running');
    expect(await w.kill('SIGTERM')).toBe(0);
    const after = await runhook.getRun(run.id);
    expect(after).toMatchObject({ status: 'failed', stop_reason: 'error' });
    expect(String(after.metadata?.error)).toContain('worker shut down');
    expect(await runhook.queue.getActiveCount()).toBe(0);
    expect(await runhook.queue.getJobState(run.id)).toBe('failed');
  });
});
