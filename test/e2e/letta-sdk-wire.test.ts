import Letta, { APIError, BadRequestError, UnprocessableEntityError } from '@letta-ai/letta-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { readSse, startApiService, type ApiHarness } from '../helpers/api.ts';
import { waitFor } from '../helpers/setup.ts';

interface Detail {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/**
 * Issue 16, item 8: what the official @letta-ai/letta-client sees on the wire is what Letta sends: a
 * failed run's stream ends in Letta's `event: error`, invalid input is a 422 with FastAPI's `detail`,
 * every stream ends with usage_statistics, and the runs list follows Letta's parameter rules.
 */
describe("Letta's wire behaviour, through the Letta SDK", () => {
  let api: ApiHarness;
  let letta: Letta;

  beforeAll(async () => {
    api = await startApiService({ runAttempts: 1 }, ['runs']);
    letta = new Letta({ baseURL: api.url, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => api.close());

  const post = async (body: unknown): Promise<Run> => (await (await api.call('/v1/runs', { method: 'POST', json: body })).json()) as Run;
  const ended = (id: string) => waitFor(async () => ['completed', 'failed', 'cancelled'].includes((await letta.runs.retrieve(id)).status ?? ''));

  it("ends a failed run's stream with stop_reason, usage_statistics and Letta's error event, so the iterator throws", async () => {
    const run = await post({ agent_id: 'wire', input: { text: 'partial answer', fail: 'the model went away' } });
    await ended(run.id);
    const chunks: Record<string, unknown>[] = [];
    let thrown: unknown;
    try {
      for await (const chunk of await letta.runs.messages.stream(run.id)) chunks.push(chunk as Record<string, unknown>);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(APIError);
    expect((thrown as APIError).error).toEqual({
      message_type: 'error_message',
      run_id: run.id,
      error_type: 'error',
      message: 'the model went away',
      detail: null,
      seq_id: null,
    });
    expect((thrown as APIError).message).toBe('the model went away');
    expect(chunks.at(-2)).toMatchObject({ message_type: 'stop_reason', stop_reason: 'error' });
    expect(chunks.at(-1)).toMatchObject({ message_type: 'usage_statistics', run_ids: [run.id] });

    // On the wire: the error event comes after the usage and before [DONE].
    const events = await readSse(await api.call(`/v1/runs/${run.id}/stream`));
    expect(events.slice(-2).map((e) => e.event ?? e.data)).toEqual(['error', '[DONE]']);
  });

  it('ends every stream with usage_statistics, also when the processor reported no usage', async () => {
    const { store } = api.service.runhook;
    // A run cancelled before it started has no usage at all.
    const { record } = await store.create({ agent_id: 'wire' });
    await store.transition(record.run.id, 'cancelled');
    const chunks: Record<string, unknown>[] = [];
    for await (const chunk of await letta.runs.messages.stream(record.run.id)) chunks.push(chunk as Record<string, unknown>);
    expect(chunks.map((c) => c.message_type)).toEqual(['stop_reason', 'usage_statistics']);
    expect(chunks[1]).toMatchObject({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, step_count: 0, run_ids: [record.run.id] });
    // Resumed after the stop reason: the usage still closes the stream.
    const resumed: Record<string, unknown>[] = [];
    for await (const chunk of await letta.runs.messages.stream(record.run.id, { starting_after: 1 })) resumed.push(chunk as Record<string, unknown>);
    expect(resumed.map((c) => c.message_type)).toEqual(['usage_statistics']);
  });

  it("answers invalid input with 422 and FastAPI's detail beside runhook's error, so the SDK raises UnprocessableEntityError", async () => {
    const err = await letta.agents.messages.createAsync('wire', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnprocessableEntityError);
    const body = (err as UnprocessableEntityError).error as { error: { code: string }; detail: Detail[] };
    expect(body.error.code).toBe('INVALID_INPUT');
    expect(body.detail).toEqual([{ loc: ['body', 'messages'], msg: 'messages or input is required', type: 'value_error' }]);

    const res = await api.call('/v1/runs?limit=5000&statuses=bogus');
    expect(res.status).toBe(422);
    const list = (await res.json()) as { detail: Detail[] };
    expect(list.detail).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ loc: ['query', 'limit'], type: 'less_than_equal' }),
        expect.objectContaining({ loc: ['query', 'statuses', 0], type: 'enum' }),
      ]),
    );
    const missing = (await (await api.call('/v1/runs', { method: 'POST', json: { input: 1 } })).json()) as { detail: Detail[] };
    expect(missing.detail).toEqual([expect.objectContaining({ loc: ['body', 'agent_id'], type: 'missing' })]);
    await expect(letta.runs.list({ limit: 5000 })).rejects.toBeInstanceOf(UnprocessableEntityError);
  });

  it('still answers a body that is not JSON with 400', async () => {
    const res = await api.call('/v1/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"agent_id": ' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_INPUT');
    const sdk = await letta.post('/v1/runs', { body: '{"agent_id": ', headers: { 'content-type': 'application/json' } }).catch((e: unknown) => e);
    expect(sdk).toBeInstanceOf(BadRequestError);
  });

  describe("the runs list, by Letta's rules", () => {
    const made: string[] = [];
    beforeAll(async () => {
      const { store } = api.service.runhook;
      for (let i = 0; i < 130; i++) {
        const { record } = await store.create({ agent_id: 'wire-list' });
        // Every third one ends, so `active` and `statuses` pick different runs.
        if (i % 3 === 0) await store.transition(record.run.id, 'cancelled');
        made.push(record.run.id);
      }
    });
    const ids = async (query: string) => ((await (await api.call(`/v1/runs?agent_id=wire-list&${query}`)).json()) as Run[]).map((r) => r.id);

    it('gives 100 runs to a page by default, newest first', async () => {
      expect(await ids('')).toEqual([...made].reverse().slice(0, 100));
      const page = await letta.runs.list({ agent_id: 'wire-list' });
      expect(page.getPaginatedItems()).toHaveLength(100);
    });

    it('lets `statuses` win over `active`', async () => {
      const cancelled = made.filter((_, i) => i % 3 === 0);
      expect(await ids('active=true&statuses=cancelled&order=asc&limit=1000')).toEqual(cancelled);
      expect(await ids('active=true&order=asc&limit=1000')).toEqual(made.filter((_, i) => i % 3 !== 0));
    });

    it('lets `ascending=true` win over `order`, and `order` decide when ascending is false', async () => {
      expect(await ids('ascending=true&order=desc&limit=5')).toEqual(made.slice(0, 5));
      expect(await ids('ascending=false&order=asc&limit=5')).toEqual(made.slice(0, 5));
      expect(await ids('ascending=false&limit=5')).toEqual([...made].reverse().slice(0, 5));
    });

    it('answers `before` alone with the first `limit` runs that come before the cursor', async () => {
      const newestFirst = [...made].reverse();
      expect(await ids(`before=${newestFirst[50]}&limit=10`)).toEqual(newestFirst.slice(0, 10));
      expect(await ids(`before=${made[50]}&order=asc&limit=10`)).toEqual(made.slice(0, 10));
      expect(await ids(`after=${newestFirst[9]}&before=${newestFirst[20]}&limit=100`)).toEqual(newestFirst.slice(10, 20));
    });
  });
});
