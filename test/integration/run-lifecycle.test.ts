import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/service.ts';
import { silentLog, testConfig, waitFor } from '../helpers/setup.ts';

describe('a run through a real worker with the echo processor', () => {
  let service: Service;
  beforeAll(async () => {
    service = await startService(testConfig({ concurrency: 4, runAttempts: 3 }), silentLog, new Set(['runs']));
  });
  afterAll(() => service.close());

  it('completes with ttft_ns at least the ttft asked and total_duration_ns at least ttft_ns', async () => {
    const { run } = await service.runhook.createRun({ agent_id: 'a1', input: { text: 'hi there', ttft_ms: 30 } });
    expect(run.status).toBe('created');
    const done = await service.runhook.waitForRun(run.id, { timeoutMs: 10_000 });
    expect(done.status).toBe('completed');
    expect(done.stop_reason).toBe('end_turn');
    expect(done.completed_at).not.toBeNull();
    expect(done.ttft_ns).toBeGreaterThanOrEqual(30_000_000);
    expect(done.total_duration_ns).toBeGreaterThanOrEqual(done.ttft_ns!);
    const entries = await service.runhook.store.streamEntries(run.id);
    const text = entries.flatMap((e) => (e.kind === 'message' ? [e.message.content] : [])).join('');
    expect(text).toBe('hi there');
    expect(entries.map((e) => e.seq_id)).toEqual([1, 2, 3]);
    expect(entries.at(-1)).toMatchObject({ kind: 'stop', stop_reason: 'end_turn' });
  });

  it('retries a failing processor and fails the run only after the last attempt', async () => {
    const { run } = await service.runhook.createRun({ agent_id: 'a1', input: { text: 'x', fail: 'boom' } });
    const done = await service.runhook.waitForRun(run.id, { timeoutMs: 10_000 });
    expect(done.status).toBe('failed');
    expect(done.stop_reason).toBe('error');
    expect(done.metadata).toMatchObject({ error: 'boom' });
    const job = await service.runhook.queue.getJob(run.id);
    expect(job?.attemptsMade).toBe(3);
  });

  it('ends with the stop reason the processor gives', async () => {
    const { run } = await service.runhook.createRun({ agent_id: 'a1', input: { text: 'x', stop_reason: 'max_steps' } });
    const done = await service.runhook.waitForRun(run.id);
    expect(done).toMatchObject({ status: 'completed', stop_reason: 'max_steps' });
  });

  it('cancels a running run through its signal', async () => {
    const { run } = await service.runhook.createRun({ agent_id: 'a1', input: { text: 'a b c d e f', token_ms: 200 } });
    await waitFor(async () => (await service.runhook.getRun(run.id)).status === 'running', 5_000, 'the run to start');
    const cancelled = await service.runhook.cancelRun(run.id);
    expect(cancelled).toMatchObject({ status: 'cancelled', stop_reason: 'cancelled' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await service.runhook.getRun(run.id)).status).toBe('cancelled');
    expect(service.runWorker?.activeCount).toBe(0);
  });
});
