import Letta, { AuthenticationError, NotFoundError } from '@letta-ai/letta-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

const API_KEY = 'letta-sdk-test-key';

/**
 * The official @letta-ai/letta-client, unchanged but for its baseURL (and an API key), against a
 * runhook with a run worker and a callback worker.
 */
describe('the Letta TypeScript SDK against runhook', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  let letta: Letta;

  beforeAll(async () => {
    receiver = await Receiver.start();
    api = await startApiService({ apiKeys: [API_KEY] }, ['runs', 'callbacks']);
    letta = new Letta({ baseURL: api.url, apiKey: API_KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await api.close();
    await receiver.close();
  });

  const finished = (id: string) =>
    waitFor(async () => {
      const run = await letta.runs.retrieve(id);
      return ['completed', 'failed', 'cancelled'].includes(run.status ?? '') && run;
    });

  /** A slow run of the echo processor, created over plain HTTP (Letta's request has no field for that). */
  const slowRun = async (agentId: string): Promise<Run> => {
    const res = await api.call('/v1/runs', {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}` },
      json: { agent_id: agentId, input: { text: 'a b c d e f g h i j', token_ms: 200 } },
    });
    return (await res.json()) as Run;
  };

  it('agents.messages.createAsync starts a run that delivers its callback; runs.retrieve follows it', async () => {
    const run = await letta.agents.messages.createAsync('agent-sdk', {
      messages: [{ role: 'user', content: 'hello from the sdk' }],
      callback_url: receiver.url('/letta'),
      include_return_message_types: ['assistant_message'],
      max_steps: 3,
    });
    expect(run).toMatchObject({
      agent_id: 'agent-sdk',
      status: 'created',
      background: true,
      callback_url: receiver.url('/letta'),
      request_config: { use_assistant_message: true, include_return_message_types: ['assistant_message'] },
    });
    const record = await api.service.runhook.store.getRecord(run.id);
    expect(record!.input).toEqual({ messages: [{ role: 'user', content: 'hello from the sdk' }], max_steps: 3 });

    const done = await finished(run.id);
    expect(done).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
    expect(done.ttft_ns).toBeGreaterThan(0);
    const [callback] = await receiver.waitForRequests(1);
    expect(callback!.json()).toMatchObject({ run_id: run.id, status: 'completed' });
    await waitFor(async () => (await letta.runs.retrieve(run.id)).callback_status_code === 200);

    const usage = await letta.runs.usage.retrieve(run.id);
    expect(usage.total_tokens).toBeGreaterThan(0);
  });

  it("takes `input` as Letta's shorthand for one user message", async () => {
    const run = await letta.agents.messages.createAsync('agent-sdk', { input: 'short and sweet' });
    await finished(run.id);
    const messages = [];
    for await (const m of letta.runs.messages.list(run.id)) messages.push(m);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ message_type: 'assistant_message', content: 'short and sweet' });
  });

  it('runs.list filters and auto-paginates through every run exactly once', async () => {
    const created = await Promise.all(
      Array.from({ length: 7 }, (_, i) => letta.agents.messages.createAsync('agent-pages', { input: `run ${i}` })),
    );
    await Promise.all(created.map((r) => finished(r.id)));
    const seen: string[] = [];
    for await (const run of letta.runs.list({ agent_id: 'agent-pages', statuses: ['completed'], background: true, limit: 2 })) {
      seen.push(run.id);
    }
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(new Set(created.map((r) => r.id)));

    const asc: string[] = [];
    for await (const run of letta.runs.list({ agent_id: 'agent-pages', order: 'asc', limit: 3 })) asc.push(run.id);
    expect(asc).toEqual([...seen].reverse());

    const page = await letta.runs.list({ agent_id: 'agent-pages', limit: 5 });
    expect(page.getPaginatedItems()).toHaveLength(5);
    expect(page.hasNextPage()).toBe(true);
    expect((await page.getNextPage()).getPaginatedItems().map((r) => r.id)).toEqual(seen.slice(5));

    expect(page.getPaginatedItems().every((r) => r.status === 'completed')).toBe(true);
    const none = await letta.runs.list({ agent_id: 'agent-pages', active: true });
    expect(none.getPaginatedItems()).toEqual([]);
  });

  it('runs.messages.list auto-paginates over whole messages', async () => {
    const { store } = api.service.runhook;
    const { record } = await store.create({ agent_id: 'agent-msgs' });
    const id = record.run.id;
    await store.start(id, 1);
    for (let k = 1; k <= 9; k++) await store.emit(id, 1, { id: `message-${k}`, message_type: 'assistant_message', content: `m${k}` });
    await store.transition(id, 'completed', { attempt: 1 });
    const ids: string[] = [];
    for await (const m of letta.runs.messages.list(id, { limit: 4 })) ids.push(m.id);
    expect(ids).toEqual(Array.from({ length: 9 }, (_, i) => `message-${i + 1}`));
  });

  it('runs.messages.stream yields the messages with seq ids, the stop reason and usage; starting_after resumes', async () => {
    const run = await letta.agents.messages.createAsync('agent-sdk', { input: 'one two three four' });
    const stream = await letta.runs.messages.stream(run.id);
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.flatMap((c) => (c.message_type === 'assistant_message' ? [c.content] : [])).join('');
    expect(text).toBe('one two three four');
    const stop = chunks.find((c) => c.message_type === 'stop_reason');
    expect(stop).toMatchObject({ stop_reason: 'end_turn' });
    expect(chunks.at(-1)).toMatchObject({ message_type: 'usage_statistics' });
    const seqs = chunks.flatMap((c) => ('seq_id' in c && typeof c.seq_id === 'number' ? [c.seq_id] : []));
    expect(seqs).toEqual([1, 2, 3, 4, 5]);

    const resumed = [];
    for await (const chunk of await letta.runs.messages.stream(run.id, { starting_after: 3 })) resumed.push(chunk);
    expect(resumed.flatMap((c) => ('seq_id' in c && typeof c.seq_id === 'number' ? [c.seq_id] : []))).toEqual([4, 5]);
  });

  it('agents.messages.cancel cancels the runs it names, or every active run of the agent', async () => {
    const running = await slowRun('agent-cancel');
    await waitFor(async () => (await letta.runs.retrieve(running.id)).status === 'running');
    const missing = 'run-00000000-0000-4000-8000-000000000000';
    const named = await letta.agents.messages.cancel('agent-cancel', { run_ids: [running.id, missing] });
    expect(named).toEqual({ [running.id]: 'cancelled', [missing]: 'not_found' });
    expect(await letta.runs.retrieve(running.id)).toMatchObject({ status: 'cancelled', stop_reason: 'cancelled' });

    const a = await slowRun('agent-cancel');
    const b = await slowRun('agent-cancel');
    const all = await letta.agents.messages.cancel('agent-cancel');
    expect(all).toEqual({ [a.id]: 'cancelled', [b.id]: 'cancelled' });
    const other = await letta.agents.messages.cancel('agent-other', { run_ids: [a.id] });
    expect(other).toEqual({ [a.id]: 'not_found' });

    const done = await letta.agents.messages.createAsync('agent-cancel', { input: 'quick' });
    await finished(done.id);
    expect(await letta.agents.messages.cancel('agent-cancel', { run_ids: [done.id] })).toEqual({ [done.id]: 'already_completed' });
  });

  it("surfaces runhook's errors as the SDK's error classes", async () => {
    await expect(letta.runs.retrieve('run-00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(NotFoundError);
    const anonymous = new Letta({ baseURL: api.url, apiKey: 'wrong', maxRetries: 0 });
    await expect(anonymous.runs.list()).rejects.toBeInstanceOf(AuthenticationError);
  });
});
