import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run, RunListQuery, RunStatus } from '../../src/runs/schema.ts';
import { RunStore } from '../../src/runs/store.ts';
import { closeRedis, connect, testConfig } from '../helpers/setup.ts';

const N = 3_000;
const config = testConfig();
let redis: Redis;
let store: RunStore;
/** Every run created, in creation order, with the fields the filters look at. */
const created: Pick<Run, 'id' | 'agent_id' | 'status' | 'background' | 'conversation_id' | 'stop_reason'>[] = [];

beforeAll(async () => {
  redis = await connect();
  store = new RunStore(redis, { keyPrefix: config.keyPrefix, retentionMs: config.retentionMs });
  const statuses: RunStatus[] = ['created', 'running', 'completed', 'failed', 'cancelled'];
  for (let i = 0; i < N; i += 100) {
    // Created one batch at a time so creation order is the order of `created`.
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, N - i) }, (_, j) =>
        store.create({
          agent_id: `agent-${(i + j) % 7}`,
          background: (i + j) % 3 === 0,
          // A conversation belongs to one agent (CONTRACT section 8): conv-a is agent-0's.
          conversation_id: (i + j) % 35 === 0 ? 'conv-a' : null,
        }),
      ),
    );
    batch.sort((a, b) => a.record.seq - b.record.seq);
    for (const [j, { record }] of batch.entries()) {
      const status = statuses[(i + j) % 5]!;
      const id = record.run.id;
      if (status !== 'created') await store.transition(id, 'running');
      if (status !== 'created' && status !== 'running') await store.transition(id, status);
      const run = (await store.get(id))!;
      created.push({ id, agent_id: run.agent_id, status: run.status, background: run.background, conversation_id: run.conversation_id, stop_reason: run.stop_reason });
    }
  }
}, 120_000);
afterAll(() => closeRedis(redis));

/** Walks every page with `after` cursors, as the Letta SDK does. */
async function walk(query: RunListQuery): Promise<string[]> {
  const ids: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.list({ ...query, ...(after && { after }) });
    ids.push(...page.map((r) => r.id));
    if (page.length < (query.limit ?? 50)) return ids;
    after = page.at(-1)!.id;
  }
}

describe('listing runs from the indexes', () => {
  it.each([
    ['no filter', {}, () => true],
    ['one agent', { agent_ids: ['agent-3'] }, (r: (typeof created)[number]) => r.agent_id === 'agent-3'],
    ['two agents and active', { agent_ids: ['agent-1', 'agent-4'], statuses: ['created', 'running'] as RunStatus[] }, (r: (typeof created)[number]) => ['agent-1', 'agent-4'].includes(r.agent_id) && ['created', 'running'].includes(r.status)],
    ['background and a stop reason', { background: true, stop_reason: 'error' as const }, (r: (typeof created)[number]) => r.background === true && r.stop_reason === 'error'],
    ['a conversation, not background', { conversation_id: 'conv-a', background: false }, (r: (typeof created)[number]) => r.conversation_id === 'conv-a' && r.background === false],
    ['several statuses', { statuses: ['completed', 'cancelled'] as RunStatus[] }, (r: (typeof created)[number]) => ['completed', 'cancelled'].includes(r.status)],
  ])('pages through %s in both orders, no run missing or repeated', async (_name, filter, pred) => {
    const expected = created.filter(pred).map((r) => r.id);
    expect(expected.length).toBeGreaterThan(0);
    const asc = await walk({ ...filter, order: 'asc', limit: 97 });
    expect(asc).toEqual(expected);
    const desc = await walk({ ...filter, order: 'desc', limit: 101 });
    expect(desc).toEqual([...expected].reverse());
  });

  it('returns newest first by default, and `before` gives the runs that come before a cursor', async () => {
    const newest = await store.list({ limit: 3 });
    expect(newest.map((r) => r.id)).toEqual(created.slice(-3).reverse().map((r) => r.id));
    const pivot = created[1000]!.id;
    const before = await store.list({ before: pivot, order: 'asc', limit: 5 });
    expect(before.map((r) => r.id)).toEqual(created.slice(0, 5).map((r) => r.id));
    const between = await store.list({ after: created[10]!.id, before: created[14]!.id, order: 'asc' });
    expect(between.map((r) => r.id)).toEqual(created.slice(11, 14).map((r) => r.id));
  });

  it('refuses a cursor that is not a run it knows', async () => {
    await expect(store.list({ after: 'run-00000000-0000-4000-8000-000000000000' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
