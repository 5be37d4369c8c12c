import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStatus } from '../../src/runs/schema.ts';
import { canMove } from '../../src/runs/status.ts';
import { RunStore } from '../../src/runs/store.ts';
import { closeRedis, connect, testConfig } from '../helpers/setup.ts';

const config = testConfig();
let redis: Redis;
let store: RunStore;

beforeAll(async () => {
  redis = await connect();
  store = new RunStore(redis, { keyPrefix: config.keyPrefix, retentionMs: config.retentionMs });
});
afterAll(() => closeRedis(redis));

/** A fresh run brought to `status` through legal moves. */
async function runIn(status: RunStatus): Promise<string> {
  const { record } = await store.create({ agent_id: 'agent-t' });
  const id = record.run.id;
  if (status === 'created') return id;
  await store.transition(id, 'running');
  if (status !== 'running') await store.transition(id, status);
  return id;
}

describe('status moves in Redis', () => {
  for (const from of RunStatus.options) {
    for (const to of RunStatus.options) {
      if (from === to) continue;
      const legal = canMove(from, to);
      it(`${legal ? 'allows' : 'refuses'} ${from} → ${to}`, async () => {
        const id = await runIn(from);
        const before = await store.get(id);
        const r = await store.transition(id, to);
        const after = await store.get(id);
        if (legal) {
          expect(r).toMatchObject({ outcome: 'moved', from });
          expect(after?.status).toBe(to);
        } else {
          expect(r).toEqual({ outcome: 'illegal', status: from });
          expect(after).toEqual(before);
        }
      });
    }
  }

  it('treats a replayed move as a no-op', async () => {
    const id = await runIn('running');
    expect(await store.transition(id, 'running')).toEqual({ outcome: 'unchanged', status: 'running' });
    await store.transition(id, 'completed');
    const first = await store.get(id);
    expect(await store.transition(id, 'completed', { stopReason: 'max_steps' })).toEqual({ outcome: 'unchanged', status: 'completed' });
    expect(await store.get(id)).toEqual(first);
  });

  it('sets completed_at and total_duration_ns once, from created_at', async () => {
    const id = await runIn('running');
    await store.transition(id, 'failed', { error: 'x' });
    const run = (await store.get(id))!;
    expect(run.completed_at).not.toBeNull();
    expect(run.total_duration_ns).toBeGreaterThanOrEqual(0);
    expect(run.stop_reason).toBe('error');
    expect(Date.parse(run.completed_at!)).toBeGreaterThanOrEqual(Date.parse(run.created_at));
  });

  it('answers missing for a run that does not exist', async () => {
    expect(await store.transition('run-00000000-0000-4000-8000-000000000000', 'running')).toEqual({ outcome: 'missing' });
  });

  it('lets exactly one of two processes win a race to end a run', async () => {
    const other = redis.duplicate();
    const otherStore = new RunStore(other, { keyPrefix: config.keyPrefix, retentionMs: config.retentionMs });
    try {
      for (let i = 0; i < 200; i++) {
        const id = await runIn('running');
        const [a, b] = await Promise.all([
          store.transition(id, 'completed'),
          otherStore.transition(id, i % 2 ? 'cancelled' : 'failed'),
        ]);
        const winners = [a, b].filter((r) => r.outcome === 'moved');
        expect(winners).toHaveLength(1);
        const run = (await store.get(id))!;
        expect(run.status).toBe(a.outcome === 'moved' ? 'completed' : i % 2 ? 'cancelled' : 'failed');
        // The loser sees the winner's terminal status and its index entry is unique.
        const inIndexes = await Promise.all(
          (['completed', 'failed', 'cancelled', 'running'] as const).map((s) => redis.zscore(store.keys.index('status', s), id)),
        );
        expect(inIndexes.filter((x) => x !== null)).toHaveLength(1);
      }
    } finally {
      await closeRedis(other);
    }
  });

  it('refuses a stale attempt moving the run out of running', async () => {
    const id = await runIn('created');
    await store.start(id, 1);
    await store.start(id, 2);
    expect(await store.transition(id, 'completed', { attempt: 1 })).toEqual({ outcome: 'stale', status: 'running' });
    expect(await store.transition(id, 'completed', { attempt: 2 })).toMatchObject({ outcome: 'moved', from: 'running' });
  });

  it('keeps an abandoned attempt’s messages out of the new attempt', async () => {
    const id = await runIn('created');
    await store.start(id, 1);
    expect(await store.emit(id, 1, { message_type: 'assistant_message', content: 'old' })).toBe(1);
    await store.start(id, 2);
    expect(await store.emit(id, 1, { message_type: 'assistant_message', content: 'late' })).toBe(0);
    expect(await store.emit(id, 2, { message_type: 'assistant_message', content: 'new' })).toBe(2);
    const entries = await store.streamEntries(id);
    expect(entries.map((e) => (e.kind === 'message' ? e.message.content : e.stop_reason))).toEqual(['new']);
  });

  it('deletes a run with its messages and every index entry', async () => {
    const { record } = await store.create({ agent_id: 'agent-del', conversation_id: 'c1', background: true });
    const id = record.run.id;
    await store.start(id, 1);
    await store.emit(id, 1, { message_type: 'assistant_message', content: 'x' });
    await store.transition(id, 'completed');
    expect(await store.delete(id)).toBe(true);
    const keys = await redis.keys(`${config.keyPrefix}:*`);
    const mentioning = [];
    // The one trace a delete leaves on purpose: its place in creation order, so a list cursor naming
    // the run still pages on (a capped tombstone set, see delete-run.lua).
    expect(await redis.zscore(store.keys.cursorTombstones, id)).not.toBeNull();
    for (const k of keys) {
      if (k === store.keys.cursorTombstones) continue;
      const type = await redis.type(k);
      if (type === 'zset' && (await redis.zscore(k, id)) !== null) mentioning.push(k);
      if (k.includes(id)) mentioning.push(k);
    }
    expect(mentioning).toEqual([]);
  });
});
