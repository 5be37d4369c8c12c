import Letta, { ConflictError } from '@letta-ai/letta-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectInOrderWithoutOverlap, spansOf } from '../helpers/flow.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { waitFor } from '../helpers/setup.ts';

const API_KEY = 'letta-sdk-conv-key';

/** The official @letta-ai/letta-client's conversation calls, unchanged but for its baseURL, against runhook. */
describe("the Letta SDK's conversation calls against runhook", () => {
  let api: ApiHarness;
  let letta: Letta;

  beforeAll(async () => {
    api = await startApiService({ apiKeys: [API_KEY] }, ['runs']);
    letta = new Letta({ baseURL: api.url, apiKey: API_KEY, maxRetries: 0 });
  });
  afterAll(() => api.close());

  it('conversations.create / retrieve / list', async () => {
    const conv = await letta.conversations.create({ agent_id: 'agent-c', summary: 'about cats' });
    expect(conv).toMatchObject({ agent_id: 'agent-c', summary: 'about cats' });
    expect(conv.id).toMatch(/^conv-/);
    expect(await letta.conversations.retrieve(conv.id)).toMatchObject({ id: conv.id, agent_id: 'agent-c' });
    const other = await letta.conversations.create({ agent_id: 'agent-other' });
    const mine = await letta.conversations.list({ agent_id: 'agent-c' });
    expect(mine.map((c) => c.id)).toEqual([conv.id]);
    expect((await letta.conversations.list()).map((c) => c.id)).toEqual(expect.arrayContaining([conv.id, other.id]));
  });

  it('messages.create with background: true streams the run, each event with run_id and seq_id; concurrent sends queue up in order', async () => {
    const conv = await letta.conversations.create({ agent_id: 'agent-c' });
    const send = async (text: string) => {
      const stream = await letta.conversations.messages.create(conv.id, { agent_id: 'agent-c', input: text, background: true });
      const events: Array<Record<string, unknown>> = [];
      for await (const e of stream) events.push(e as unknown as Record<string, unknown>);
      return events;
    };
    // Sent at once: the second and third wait behind the first (no 409 CONVERSATION_BUSY).
    const [a, b, c] = await Promise.all([send('first one'), send('second one'), send('third one')]);
    for (const events of [a!, b!, c!]) {
      const messages = events.filter((e) => e.message_type === 'assistant_message');
      expect(messages.length).toBeGreaterThan(0);
      for (const m of messages) {
        expect(m.run_id).toMatch(/^run-/);
        expect(typeof m.seq_id).toBe('number');
      }
      expect(events.some((e) => e.message_type === 'stop_reason')).toBe(true);
    }
    const runs = await api.service.runhook.listRuns({ conversation_id: conv.id, order: 'asc' });
    expect(runs).toHaveLength(3);
    expectInOrderWithoutOverlap(await spansOf(api.service.runhook, runs.map((r) => r.id)), conv.id);

    // conversations.messages.list: the messages of its runs, in order.
    const page = await letta.conversations.messages.list(conv.id);
    const texts = page.getPaginatedItems().map((m) => (m as unknown as { content?: string }).content);
    const byRun = runs.map((r) => api.service.runhook.store.messages(r.id));
    const expected = (await Promise.all(byRun)).flatMap((x) => x.messages.map((m) => m.content));
    expect(texts).toEqual(expected);

    // conversations.messages.stream: the last run's stream again, from the start.
    const again = await letta.conversations.messages.stream(conv.id, {});
    const replay: Array<Record<string, unknown>> = [];
    for await (const e of again) replay.push(e as unknown as Record<string, unknown>);
    expect(replay.filter((e) => e.message_type === 'assistant_message').every((e) => e.run_id === runs[2]!.id)).toBe(true);
  });

  it('a conversation is fixed to its agent: another agent is a 409 CONVERSATION_AGENT_MISMATCH', async () => {
    const conv = await letta.conversations.create({ agent_id: 'agent-c' });
    const err = await letta.conversations.messages.create(conv.id, { agent_id: 'agent-x', input: 'hi' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).error).toMatchObject({ error: { code: 'CONVERSATION_AGENT_MISMATCH' } });
  });

  it('conversations.cancel cancels its running run and every one waiting behind it', async () => {
    const conv = await letta.conversations.create({ agent_id: 'agent-c' });
    const runhook = api.service.runhook;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push((await runhook.createRun({ agent_id: 'agent-c', conversation_id: conv.id, input: { text: 'a b c d e f g h', token_ms: 200 } })).run.id);
    }
    await waitFor(async () => (await runhook.getRun(ids[0]!)).status === 'running', 10_000, 'the first run to start');
    const answer = await letta.conversations.cancel(conv.id);
    expect(Object.keys(answer).sort()).toEqual([...ids].sort());
    const ended = await Promise.all(ids.map((id) => runhook.waitForRun(id)));
    expect(ended.map((r) => r.status)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
    // None of the waiting ones ever started.
    expect((await spansOf(runhook, ids.slice(1))).every((s) => Number.isNaN(s.startedUs))).toBe(true);
  });
});
