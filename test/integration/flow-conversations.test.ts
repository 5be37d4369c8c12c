import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConversationAgentMismatchError } from '../../src/errors.ts';
import { waitingCounts } from '../../src/flow/flow.ts';
import { startService, type Service } from '../../src/service.ts';
import { expectInOrderWithoutOverlap, spansOf } from '../helpers/flow.ts';
import { closeTestRunhook, openTestRunhook, silentLog, testConfig, waitFor } from '../helpers/setup.ts';

let service: Service;

beforeAll(async () => {
  service = await startService(testConfig({ concurrency: 8 }), silentLog, new Set(['runs']));
});
afterAll(async () => {
  await service.close();
});

describe('conversations run in order', () => {
  it('hands the place of a head deleted straight from the store to the next run at once', async () => {
    const own = await openTestRunhook(testConfig());
    try {
      const first = (await own.createRun({ agent_id: 'a-del', conversation_id: 'conv-del', input: { text: 'one' } })).run;
      const second = (await own.createRun({ agent_id: 'a-del', conversation_id: 'conv-del', input: { text: 'two' } })).run;
      expect(await own.queue.getJob(second.id)).toBeUndefined();
      // No worker and no reconciler here: only the delete's own hand-over can add the next job.
      await own.store.delete(first.id);
      await waitFor(async () => (await own.queue.getJob(second.id)) !== undefined, 5_000, "the next run's job");
    } finally {
      await closeTestRunhook(own);
    }
  });

  it('5 runs on one conversation created at once never overlap and run in creation order; another conversation is not held', async () => {
    const runhook = service.runhook;
    const ids: string[] = [];
    // Created one after another (creation order is the order asked), but without waiting for any to run.
    for (let i = 0; i < 5; i++) {
      const { run } = await runhook.createRun({ agent_id: 'a1', conversation_id: 'conv-1', input: { text: `turn ${i}`, ttft_ms: 200 } });
      ids.push(run.id);
    }
    const other = (await runhook.createRun({ agent_id: 'a1', conversation_id: 'conv-2', input: { text: 'other', ttft_ms: 200 } })).run;
    expect((await waitingCounts(runhook.redis, runhook.config.keyPrefix)).conversation).toBe(4);
    const listed = await runhook.listRuns({ conversation_id: 'conv-1', order: 'asc' });
    expect(listed.map((r) => r.id)).toEqual(ids);
    // Held behind the first: still created, listed in order.
    expect(listed.slice(1).map((r) => r.status)).toEqual(['created', 'created', 'created', 'created']);
    await Promise.all([...ids, other.id].map((id) => runhook.waitForRun(id, { timeoutMs: 20_000 })));
    const spans = await spansOf(runhook, ids);
    expect(spans.map((s) => s.status)).toEqual(ids.map(() => 'completed'));
    expectInOrderWithoutOverlap(spans, 'conv-1');
    const [otherSpan] = await spansOf(runhook, [other.id]);
    // Created last, it finished before the conversation's second run even started.
    expect(otherSpan!.completedUs).toBeLessThan(spans[1]!.completedUs);
    expect(await waitingCounts(runhook.redis, runhook.config.keyPrefix)).toEqual({ conversation: 0, limit: 0 });
  });

  it('cancelling and deleting waiting runs in the middle leaves their place cleanly', async () => {
    const runhook = service.runhook;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await runhook.createRun({ agent_id: 'a1', conversation_id: 'conv-3', input: { text: `turn ${i}`, ttft_ms: 150 } })).run.id);
    }
    await runhook.cancelRun(ids[1]!);
    await runhook.deleteRun(ids[3]!);
    const rest = [ids[0]!, ids[2]!, ids[4]!];
    await Promise.all(rest.map((id) => runhook.waitForRun(id, { timeoutMs: 20_000 })));
    const spans = await spansOf(runhook, rest);
    expect(spans.map((s) => s.status)).toEqual(['completed', 'completed', 'completed']);
    expectInOrderWithoutOverlap(spans, 'conv-3');
    const cancelled = await runhook.getRun(ids[1]!);
    expect(cancelled.status).toBe('cancelled');
    expect((await spansOf(runhook, [ids[1]!]))[0]!.startedUs).toBeNaN();
    expect(await runhook.store.get(ids[3]!)).toBeNull();
    expect(await runhook.redis.zcard(`${runhook.config.keyPrefix}:flow:conv:conv-3:runs`)).toBe(0);
  });

  it('a conversation belongs to the agent of its first run', async () => {
    const runhook = service.runhook;
    const { run } = await runhook.createRun({ agent_id: 'owner', conversation_id: 'conv-owned', input: { text: 'x' } });
    await expect(runhook.createRun({ agent_id: 'intruder', conversation_id: 'conv-owned', input: { text: 'y' } })).rejects.toBeInstanceOf(
      ConversationAgentMismatchError,
    );
    await runhook.waitForRun(run.id);
    // Even once it is idle.
    await expect(runhook.createRun({ agent_id: 'intruder', conversation_id: 'conv-owned' })).rejects.toMatchObject({ code: 'CONVERSATION_AGENT_MISMATCH', status: 409 });
  });

  it('RUNHOOK_CONVERSATION_BUSY=reject answers a busy conversation with 409 CONVERSATION_BUSY, as Letta does', async () => {
    const runhook = await openTestRunhook(testConfig({ conversationBusy: 'reject' }));
    try {
      const first = (await runhook.createRun({ agent_id: 'r', conversation_id: 'busy', input: { text: 'x' } })).run;
      await expect(runhook.createRun({ agent_id: 'r', conversation_id: 'busy' })).rejects.toMatchObject({
        code: 'CONVERSATION_BUSY',
        status: 409,
        details: { run_id: first.id },
      });
      // Another conversation is not busy, and once the first run ends this one is not either.
      await runhook.createRun({ agent_id: 'r', conversation_id: 'free' });
      await runhook.cancelRun(first.id);
      expect((await runhook.createRun({ agent_id: 'r', conversation_id: 'busy' })).run.status).toBe('created');
    } finally {
      await closeTestRunhook(runhook);
    }
  });

  it('a head whose run vanished without handing over is repaired by the reconciler', async () => {
    const runhook = service.runhook;
    // No workers take these: a Runhook of a deployment whose only worker is paused.
    await runhook.queue.pause();
    try {
      const a = (await runhook.createRun({ agent_id: 'a9', conversation_id: 'conv-lost', input: { text: 'a' } })).run;
      const b = (await runhook.createRun({ agent_id: 'a9', conversation_id: 'conv-lost', input: { text: 'b' } })).run;
      // A lost write: the head's hash and job vanish, nothing hands over.
      await runhook.queue.remove(a.id);
      await runhook.redis.del(runhook.store.keys.run(a.id));
      const { repairFlow } = await import('../../src/flow/flow.ts');
      expect(await repairFlow(runhook.config, runhook.redis, runhook.store.keys, runhook.queue, silentLog)).toBe(1);
      expect(await runhook.queue.getJob(b.id)).toBeDefined();
      await runhook.queue.resume();
      expect((await runhook.waitForRun(b.id)).status).toBe('completed');
    } finally {
      await runhook.queue.resume();
    }
  });

  it('an admitted run whose job a crash kept from being added gets it from the ready sweep', async () => {
    const runhook = service.runhook;
    const { reconcileRuns } = await import('../../src/queue/reconcile.ts');
    const a = (await runhook.createRun({ agent_id: 'a8', conversation_id: 'conv-ready', input: { text: 'a', ttft_ms: 100 } })).run;
    const b = (await runhook.createRun({ agent_id: 'a8', conversation_id: 'conv-ready', input: { text: 'b' } })).run;
    // As if the process that ended `a` died before adding b's job: nobody listens to the hand-over.
    const listeners = runhook.store.events.listeners('flow-ready');
    runhook.store.events.removeAllListeners('flow-ready');
    try {
      await runhook.waitForRun(a.id);
      await waitFor(async () => (await runhook.redis.zscore(`${runhook.config.keyPrefix}:flow:ready`, b.id)) !== null, 5_000, 'b to be ready');
      expect(await runhook.queue.getJob(b.id)).toBeUndefined();
      expect((await runhook.getRun(b.id)).status).toBe('created');
    } finally {
      for (const l of listeners) runhook.store.events.on('flow-ready', l as (admitted: string[]) => void);
    }
    // The reconciler's pass (its grace is 0 in tests) adds the job from the ready set.
    const report = await reconcileRuns({ config: runhook.config, store: runhook.store, queue: runhook.queue, log: silentLog });
    expect(report.requeued).toBe(1);
    expect((await runhook.waitForRun(b.id)).status).toBe('completed');
  });
});
