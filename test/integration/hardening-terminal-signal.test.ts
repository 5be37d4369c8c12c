import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineProcessor } from '../../src/processing/processor.ts';
import { RunWorker } from '../../src/processing/run-worker.ts';
import type { Runhook } from '../../src/runhook.ts';
import { closeTestRunhook, openTestRunhook, silentLog, testConfig, waitFor } from '../helpers/setup.ts';

/** Signals of the attempts the processor is running, by run id; it only ends when its signal aborts. */
const signals = new Map<string, AbortSignal>();
const untilAborted = defineProcessor({
  name: 'until-aborted',
  run: ({ run, signal }) => {
    signals.set(run.id, signal);
    return new Promise((_, reject) => {
      if (signal.aborted) reject(signal.reason as Error);
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  },
});

describe('a terminal move of a running run made outside its worker', () => {
  const config = testConfig({ concurrency: 4 });
  let runhook: Runhook;
  let worker: RunWorker;
  beforeAll(async () => {
    runhook = await openTestRunhook(config);
    worker = new RunWorker({ config, redis: runhook.redis, store: runhook.store, processor: untilAborted, log: silentLog });
    await worker.start();
  });
  afterAll(async () => {
    await worker.close();
    await closeTestRunhook(runhook);
  });

  const startedRun = async (): Promise<string> => {
    const { run } = await runhook.createRun({ agent_id: 'a-signal' });
    await waitFor(() => signals.has(run.id), 10_000, 'the processor to start');
    expect((await runhook.getRun(run.id)).status).toBe('running');
    return run.id;
  };
  const freed = (id: string) =>
    waitFor(() => signals.get(id)?.aborted === true && worker.activeCount === 0, 10_000, "the processor's signal to abort and its slot to free");

  it('aborts the processor when a PATCH completes the run, and keeps the PATCH', async () => {
    const id = await startedRun();
    await runhook.updateRun(id, { status: 'completed', stop_reason: 'end_turn' });
    await freed(id);
    expect(await runhook.getRun(id)).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
  });

  it('aborts the processor when a PATCH fails the run', async () => {
    const id = await startedRun();
    await runhook.updateRun(id, { status: 'failed', stop_reason: 'llm_api_error' });
    await freed(id);
    expect(await runhook.getRun(id)).toMatchObject({ status: 'failed', stop_reason: 'llm_api_error' });
  });

  it('aborts the processor when the reconciler fails the run (a store move with no attempt)', async () => {
    const id = await startedRun();
    const moved = await runhook.store.transition(id, 'failed', { error: 'job lost' });
    expect(moved).toMatchObject({ outcome: 'moved', from: 'running' });
    await freed(id);
    expect((await runhook.getRun(id)).status).toBe('failed');
  });

  it('still aborts it on cancel', async () => {
    const id = await startedRun();
    await runhook.cancelRun(id);
    await freed(id);
    expect((await runhook.getRun(id)).status).toBe('cancelled');
  });
});
