import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run, RunCreate, RunStatus } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';

const TOTAL = 2_500;

interface Made {
  id: string;
  agent: string;
  background: boolean;
  conversation: string;
  status: RunStatus;
}

describe('listing 2,500 runs over HTTP', () => {
  let api: ApiHarness;
  /** Every run made, oldest first. */
  const made: Made[] = [];

  beforeAll(async () => {
    api = await startApiService();
    const { store } = api.service.runhook;
    // Created straight in the store, in order, 250 at a time: the list is what is under test, not the queue.
    for (let start = 0; start < TOTAL; start += 250) {
      const batch = Array.from({ length: 250 }, (_, j) => start + j);
      const created = await Promise.all(
        batch.map((i) => {
          // i % 12 fixes i % 4: each conversation belongs to one agent (CONTRACT section 8).
          const body: RunCreate = { agent_id: `agent-${i % 4}`, background: i % 2 === 0, conversation_id: `conv-${i % 12}` };
          return store.create(body).then((r) => ({ i, run: r.record.run }));
        }),
      );
      created.sort((a, b) => a.i - b.i);
      for (const { i, run } of created) {
        let status: RunStatus = 'created';
        if (i % 5 === 0) {
          await store.transition(run.id, 'cancelled');
          status = 'cancelled';
        } else if (i % 3 === 0) {
          await store.transition(run.id, 'running');
          await store.transition(run.id, 'completed', { stopReason: 'max_steps' });
          status = 'completed';
        }
        made.push({ id: run.id, agent: run.agent_id, background: run.background!, conversation: run.conversation_id!, status });
      }
    }
    // Parallel creation within a batch does not fix their order; the store's order is creation order.
    const seqs = await Promise.all(made.map((m) => store.getRecord(m.id).then((r) => r!.seq)));
    const bySeq = new Map(made.map((m, i) => [m.id, seqs[i]!]));
    made.sort((a, b) => bySeq.get(a.id)! - bySeq.get(b.id)!);
  }, 60_000);
  afterAll(() => api.close());

  const list = async (query: string): Promise<Run[]> => {
    const res = await api.call(`/v1/runs?${query}`);
    expect(res.status, query).toBe(200);
    return (await res.json()) as Run[];
  };

  /** Pages forward as the Letta SDK does: `after` = the last id of the page, until a page comes back empty. */
  const walk = async (query: string): Promise<string[]> => {
    const ids: string[] = [];
    for (;;) {
      const page = await list(`${query}${ids.length ? `&after=${ids.at(-1)}` : ''}`);
      if (page.length === 0) return ids;
      ids.push(...page.map((r) => r.id));
    }
  };

  it('returns newest first by default, 100 to a page (as Letta)', async () => {
    const page = await list('');
    expect(page.map((r) => r.id)).toEqual(made.slice(-100).reverse().map((m) => m.id));
  });

  it('walks every run exactly once, in both orders, with after = the last id', async () => {
    const all = made.map((m) => m.id);
    const desc = await walk('limit=97');
    expect(desc).toEqual([...all].reverse());
    const asc = await walk('limit=97&order=asc');
    expect(asc).toEqual(all);
    // Letta's older flag
    expect(await walk('limit=1000&ascending=true')).toEqual(all);
  });

  it('walks backwards from a cursor with the opposite order and after; before alone gives the first runs before it (as Letta)', async () => {
    const all = made.map((m) => m.id);
    const newestFirst = [...all].reverse();
    const ids: string[] = [];
    let after = newestFirst.at(-1)!;
    for (;;) {
      const page = await list(`limit=113&order=asc&after=${after}`);
      if (page.length === 0) break;
      ids.unshift(...page.map((r) => r.id).reverse());
      after = page.at(-1)!.id;
    }
    expect(ids).toEqual(newestFirst.slice(0, -1));
    expect((await list(`limit=113&before=${newestFirst.at(-1)}`)).map((r) => r.id)).toEqual(newestFirst.slice(0, 113));
  });

  it('walks a filtered list exactly once: agent, statuses, background', async () => {
    const expected = made.filter((m) => m.agent === 'agent-1' && m.background === false && ['created', 'cancelled'].includes(m.status));
    for (const order of ['asc', 'desc'] as const) {
      const ids = await walk(`agent_id=agent-1&statuses=created&statuses=cancelled&background=false&limit=41&order=${order}`);
      const want = expected.map((m) => m.id);
      expect(ids).toEqual(order === 'asc' ? want : [...want].reverse());
    }
  });

  it('filters by conversation, stop reason, active, and the deprecated agent_ids', async () => {
    const conv = await walk('conversation_id=conv-2&limit=1000');
    expect(new Set(conv)).toEqual(new Set(made.filter((m) => m.conversation === 'conv-2').map((m) => m.id)));
    const stop = await walk('stop_reason=max_steps&limit=1000');
    expect(new Set(stop)).toEqual(new Set(made.filter((m) => m.status === 'completed').map((m) => m.id)));
    const active = await walk('active=true&agent_ids=agent-3&limit=1000');
    expect(new Set(active)).toEqual(new Set(made.filter((m) => m.agent === 'agent-3' && m.status === 'created').map((m) => m.id)));
    // As Letta: statuses, when given, win over active.
    const completed = await walk('active=true&statuses=completed&limit=1000');
    expect(new Set(completed)).toEqual(new Set(made.filter((m) => m.status === 'completed').map((m) => m.id)));
  });

  it('answers a cursor that never was a run id with 422, and a limit over 1000 with 422', async () => {
    expect((await api.call('/v1/runs?after=run-00000000-0000-4000-8000-000000000000')).status).toBe(422);
    expect((await api.call('/v1/runs?after=nope')).status).toBe(422);
    expect((await api.call('/v1/runs?limit=1001')).status).toBe(422);
    expect((await api.call('/v1/runs/?limit=1')).status).toBe(200);
  });
});

describe("paging a run's messages", () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService();
  });
  afterAll(() => api.close());

  async function runWithMessages(n: number, body: RunCreate = { agent_id: 'm' }): Promise<string> {
    const { store } = api.service.runhook;
    const { record } = await store.create(body);
    const id = record.run.id;
    await store.start(id, 1);
    for (let k = 1; k <= n; k++) {
      const type = k % 2 === 0 ? 'reasoning_message' : 'assistant_message';
      // Two chunks per message: the API folds them into one.
      await store.emit(id, 1, { id: `message-${k}`, message_type: type, content: `m${k}` });
      await store.emit(id, 1, { id: `message-${k}`, message_type: type, content: '!' });
    }
    await store.transition(id, 'completed', { attempt: 1 });
    return id;
  }

  const page = async (id: string, query: string) => {
    const res = await api.call(`/v1/runs/${id}/messages?${query}`);
    expect(res.status).toBe(200);
    return (await res.json()) as { id: string; content: string; seq_id: number; message_type: string }[];
  };

  it('pages whole messages forward (default asc) and backward, none missing or repeated', async () => {
    const id = await runWithMessages(25);
    const first = await page(id, '');
    expect(first).toHaveLength(25);
    expect(first[0]).toMatchObject({ id: 'message-1', content: 'm1!', seq_id: 2 });

    const forward: string[] = [];
    for (;;) {
      const p = await page(id, `limit=7${forward.length ? `&after=${forward.at(-1)}` : ''}`);
      if (p.length === 0) break;
      forward.push(...p.map((m) => m.id));
    }
    expect(forward).toEqual(Array.from({ length: 25 }, (_, i) => `message-${i + 1}`));

    const desc = await page(id, 'order=desc&limit=3');
    expect(desc.map((m) => m.id)).toEqual(['message-25', 'message-24', 'message-23']);
    // As Letta: the first `limit` of the messages that come before the cursor (or between the two).
    const before = await page(id, 'before=message-10&limit=4');
    expect(before.map((m) => m.id)).toEqual(['message-1', 'message-2', 'message-3', 'message-4']);
    const between = await page(id, 'after=message-5&before=message-10&limit=4');
    expect(between.map((m) => m.id)).toEqual(['message-6', 'message-7', 'message-8', 'message-9']);
    expect((await api.call(`/v1/runs/${id}/messages?after=message-999`)).status).toBe(422);
  });

  it("returns only the run's include_return_message_types", async () => {
    const id = await runWithMessages(6, {
      agent_id: 'm',
      request_config: {
        use_assistant_message: true,
        assistant_message_tool_name: 'send_message',
        assistant_message_tool_kwarg: 'message',
        include_return_message_types: ['reasoning_message'],
      },
    });
    const all = await page(id, '');
    expect(all.map((m) => m.id)).toEqual(['message-2', 'message-4', 'message-6']);
  });
});
