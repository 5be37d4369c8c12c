import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { answerOf, HttpService, type ServiceScript } from '../helpers/http-service.ts';
import { waitFor } from '../helpers/setup.ts';

const SECRET = 'whsec_dGhlIHNlcnZpY2UncyBvd24gc2VjcmV0IGZvciB0ZXN0cw==';
const OTHER_SECRET = 'whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0IGFsdG9nZXRoZXI=';

type Json = Record<string, unknown>;

describe('the http processor against a streaming service', () => {
  let service: HttpService;
  let api: ApiHarness;
  beforeAll(async () => {
    service = await HttpService.start(SECRET);
    // The webhook secret signs the service's requests too when RUNHOOK_HTTP_SECRET is not set.
    api = await startApiService({ httpUrl: service.url, webhookSecret: SECRET, httpIdleTimeoutMs: 1_000, runAttempts: 3 }, ['runs']);
  });
  afterAll(async () => {
    await api.close();
    await service.close();
  });

  const create = async (script: ServiceScript): Promise<Run> => {
    const res = await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'agent-http', processor: 'http', input: script } });
    expect(res.status).toBe(201);
    return (await res.json()) as Run;
  };
  const ended = (id: string) =>
    waitFor(async () => {
      const run = (await (await api.call(`/v1/runs/${id}`)).json()) as Run;
      return ['completed', 'failed', 'cancelled'].includes(run.status) && run;
    });
  const get = async <T = Json[]>(path: string) => (await (await api.call(path)).json()) as T;

  /** The run's record matches what attempt `attempt` of the service streamed: messages, steps, usage. */
  async function expectRecordOf(run: Run, script: ServiceScript, attempt: number) {
    const streamed = answerOf(script, attempt) as Json[];
    const words = script.words ?? ['hello ', 'world'];
    const messages = await get(`/v1/runs/${run.id}/messages`);
    expect(messages.map((m) => [m.id, m.message_type, m.content ?? m.reasoning])).toEqual([
      [`message-http-${attempt}-r`, 'reasoning_message', `attempt ${attempt}`],
      [`message-http-${attempt}`, 'assistant_message', words.join('')],
    ]);
    const steps = await get(`/v1/runs/${run.id}/steps`);
    expect(steps).toMatchObject([{ ...(streamed.at(-3)!.step as Json), total_tokens: 7 + words.length, status: 'success', run_id: run.id }]);
    expect(await get<Json>(`/v1/runs/${run.id}/usage`)).toEqual({ ...(streamed.at(-2)!.usage as Json), step_count: 1 });
  }

  it.each(['ndjson', 'sse', 'json'] as const)('records what the service answers as %s', async (mode) => {
    const script: ServiceScript = { mode, words: ['one ', 'two ', 'three'] };
    const run = await create(script);
    const done = await ended(run.id);
    expect(done).toMatchObject({ status: 'completed', stop_reason: 'end_turn', processor: 'http' });
    expect(done.ttft_ns).toBeGreaterThan(0);
    await expectRecordOf(run, script, 1);
    const [req] = service.requestsOf(run.id);
    // The service verified the signature with the standardwebhooks package, and got the run, its input and the attempt.
    expect(req!.verified).toBe(true);
    expect(req!.headers['webhook-id']).toBe(`msg_${run.id}_1`);
    expect(req!.body).toMatchObject({ run: { id: run.id, agent_id: 'agent-http', processor: 'http' }, input: script, attempt: 1 });
  });

  it('ends with the stop reason the service gives, failed ones included', async () => {
    const run = await create({ stop_reason: 'llm_api_error' });
    expect(await ended(run.id)).toMatchObject({ status: 'failed', stop_reason: 'llm_api_error' });
    expect(service.requestsOf(run.id)).toHaveLength(1);
  });

  it('retries a 500 and completes with only the second attempt in the record', async () => {
    const script: ServiceScript = { fail_attempts: 1, status: 500 };
    const run = await create(script);
    expect(await ended(run.id)).toMatchObject({ status: 'completed' });
    expect(service.requestsOf(run.id).map((r) => r.body.attempt)).toEqual([1, 2]);
    await expectRecordOf(run, script, 2);
    expect(await get<Json>(`/v1/runs/${run.id}/metrics`)).toMatchObject({ attempts: 2 });
  });

  it('fails a run at once on a 4xx', async () => {
    const run = await create({ fail_attempts: 3, status: 422 });
    const done = await ended(run.id);
    expect(done).toMatchObject({ status: 'failed', stop_reason: 'error' });
    expect(String((done.metadata as Json).error)).toContain('422');
    expect(service.requestsOf(run.id)).toHaveLength(1);
  });

  it.each(['end', 'destroy'] as const)('retries a stream cut before its stop reason (%s)', async (cut) => {
    const script: ServiceScript = { fail_attempts: 1, cut };
    const run = await create(script);
    expect(await ended(run.id)).toMatchObject({ status: 'completed' });
    expect(service.requestsOf(run.id)).toHaveLength(2);
    // The first attempt's message and step are gone with it.
    await expectRecordOf(run, script, 2);
  });

  it('retries an attempt whose service goes silent past RUNHOOK_HTTP_IDLE_TIMEOUT_MS', async () => {
    const script: ServiceScript = { fail_attempts: 1, silence_ms: 5_000 };
    const run = await create(script);
    expect(await ended(run.id)).toMatchObject({ status: 'completed' });
    const [first] = service.requestsOf(run.id);
    // The processor let go of the silent attempt's connection.
    await first!.closed;
    await expectRecordOf(run, script, 2);
  });

  it('closes the request to the service within a second of a cancel', async () => {
    const run = await create({ words: Array.from({ length: 200 }, (_, i) => `w${i} `), delay_ms: 50 });
    await waitFor(async () => (await get(`/v1/runs/${run.id}/messages`)).length > 0, 10_000, 'the first message');
    const at = performance.now();
    expect((await api.call(`/v1/runs/${run.id}/cancel`, { method: 'POST' })).status).toBe(200);
    const closedAt = await service.requestsOf(run.id)[0]!.closed;
    expect(closedAt - at).toBeLessThan(1_000);
    expect(await ended(run.id)).toMatchObject({ status: 'cancelled' });
  });
});

describe('the http processor with a secret the service does not know', () => {
  let service: HttpService;
  let api: ApiHarness;
  beforeAll(async () => {
    service = await HttpService.start(SECRET);
    api = await startApiService({ httpUrl: service.url, httpSecret: OTHER_SECRET, webhookSecret: SECRET, processor: 'http' }, ['runs']);
  });
  afterAll(async () => {
    await api.close();
    await service.close();
  });

  it('signs with RUNHOOK_HTTP_SECRET before the webhook secret, so the service refuses it (401: failed at once)', async () => {
    const res = await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'a', input: {} } });
    const run = (await res.json()) as Run;
    expect(run.processor).toBe('http');
    const done = await waitFor(async () => {
      const r = (await (await api.call(`/v1/runs/${run.id}`)).json()) as Run;
      return r.status === 'failed' && r;
    });
    expect(String((done.metadata as Json).error)).toContain('401');
    expect(service.requestsOf(run.id).map((r) => r.verified)).toEqual([false]);
  });
});
