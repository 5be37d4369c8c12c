import { describe, expect, it } from 'vitest';
import { defineProcessor } from '../../src/processing/processor.ts';
import { RunWorker } from '../../src/processing/run-worker.ts';
import { RunStore } from '../../src/runs/store.ts';
import { closeTestRunhook, openTestRunhook, silentLog, testConfig, useTestStore, waitFor } from '../helpers/setup.ts';

describe('a start from an older attempt that arrives after a newer one', () => {
  const t = useTestStore();

  it('is refused as stale and leaves the newer attempt its run and its messages', async () => {
    const { record } = await t.store.create({ agent_id: 'a-att' });
    const id = record.run.id;
    expect((await t.store.start(id, 2)).outcome).toBe('started');
    expect(await t.store.emit(id, 2, { message_type: 'assistant_message', content: 'from 2' })).toBe(1);

    expect(await t.store.start(id, 1)).toEqual({ outcome: 'stale', attempt: 2 });
    const after = await t.store.getRecord(id);
    expect(after).toMatchObject({ attempt: 2, run: { status: 'running' } });
    expect(after?.run.ttft_ns).not.toBeNull();
    // The newer attempt still writes; the older one does not.
    expect(await t.store.emit(id, 2, { message_type: 'assistant_message', content: ' and more' })).toBe(2);
    expect(await t.store.emit(id, 1, { message_type: 'assistant_message', content: 'from 1' })).toBe(0);
    expect((await t.store.streamEntries(id)).map((e) => e.seq_id)).toEqual([1, 2]);
  });

  it('lets a newer attempt take over a run an older one abandoned', async () => {
    const { record } = await t.store.create({ agent_id: 'a-att' });
    const id = record.run.id;
    await t.store.start(id, 1);
    await t.store.emit(id, 1, { message_type: 'assistant_message', content: 'abandoned' });
    expect((await t.store.start(id, 2)).outcome).toBe('started');
    expect(await t.store.streamEntries(id)).toEqual([]);
    expect((await t.store.getRecord(id))?.attempt).toBe(2);
  });
});

/** A run store whose message writes wait at a gate the test opens: it holds a worker between its processor's return and its terminal move. */
class GatedStore extends RunStore {
  gate: Promise<void> | undefined;
  override async emitMany(...args: Parameters<RunStore['emitMany']>): Promise<number> {
    await this.gate;
    return super.emitMany(...args);
  }
}

describe('a shutdown whose grace period ends after the processor returned', () => {
  it('does not fail the run the processor finished', async () => {
    const config = testConfig();
    const runhook = await openTestRunhook(config);
    const store = new GatedStore(runhook.redis, { keyPrefix: config.keyPrefix, retentionMs: config.retentionMs });
    let open!: () => void;
    store.gate = new Promise((r) => (open = r));
    let signal: AbortSignal | undefined;
    let returned = false;
    const processor = defineProcessor({
      name: 'returns-then-writes',
      async run(args) {
        signal = args.signal;
        void args.context.emit({ message_type: 'assistant_message', content: 'done' });
        // The batch is sent on the next turn and waits at the gate: the worker's flush waits for it.
        await new Promise((r) => setImmediate(r));
        returned = true;
        return { stop_reason: 'end_turn' };
      },
    });
    const worker = new RunWorker({ config, redis: runhook.redis, store, processor, log: silentLog });
    try {
      await worker.start();
      const { run } = await runhook.createRun({ agent_id: 'a-shutdown' });
      await waitFor(() => returned, 10_000, 'the processor to return');
      // Grace 0: the timer aborts every active job's signal while the worker still writes the last message.
      const closing = worker.close(0);
      await waitFor(() => signal?.aborted === true, 10_000, 'the shutdown to abort the signal');
      open();
      await closing;
      const done = await runhook.getRun(run.id);
      expect(done).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
      const entries = await runhook.store.streamEntries(run.id);
      expect(entries.filter((e) => e.kind === 'message')).toHaveLength(1);
    } finally {
      open();
      await worker.close();
      await closeTestRunhook(runhook);
    }
  });
});
