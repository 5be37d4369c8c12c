import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { deltas, OpenAIServer, type StreamScript } from '../helpers/openai-server.ts';
import { waitFor } from '../helpers/setup.ts';

/**
 * The `openai` processor against a real OpenAI-compatible streaming server over loopback, through a real
 * run worker and the HTTP API. Each test tags its run's user message; the server answers each tag with
 * that test's scripts, one per request in order (the last repeating).
 */
let server: OpenAIServer;
let api: ApiHarness;
const plans = new Map<string, StreamScript[]>();
let tags = 0;

const tagOf = (body: Record<string, unknown>): string => {
  const messages = (body.messages ?? []) as Array<{ role: string; content: unknown }>;
  const last = messages.filter((m) => m.role === 'user').at(-1)?.content;
  return typeof last === 'string' ? last : JSON.stringify(last);
};
const requestsOf = (tag: string) => server.requests.filter((r) => tagOf(r.body) === tag);

/** A fresh tag answered with these scripts. */
function plan(...scripts: StreamScript[]): string {
  const tag = `tag-${++tags}`;
  plans.set(tag, scripts);
  return tag;
}

async function json<T = Record<string, unknown>>(path: string, init?: Parameters<ApiHarness['call']>[1]): Promise<T> {
  const res = await api.call(path, init);
  expect(res.status, `${path}: ${await res.clone().text()}`).toBeLessThan(300);
  return (await res.json()) as T;
}

async function createRun(input: Record<string, unknown>): Promise<string> {
  const run = await json<{ id: string }>('/v1/runs', { method: 'POST', json: { agent_id: 'agent-openai', input } });
  return run.id;
}

async function runEnded(id: string) {
  return waitFor(
    async () => {
      const r = await json<{ status: string }>(`/v1/runs/${id}`);
      return ['completed', 'failed', 'cancelled'].includes(r.status) ? (r as Record<string, unknown>) : undefined;
    },
    20_000,
    `run ${id} to end`,
  );
}

type Msg = { id: string; message_type: string; content?: string; reasoning?: string; tool_call?: Record<string, unknown> };

beforeAll(async () => {
  server = await OpenAIServer.start((req) => {
    const tag = tagOf(req.body);
    const scripts = plans.get(tag) ?? [{}];
    return scripts[Math.min(requestsOf(tag).length - 1, scripts.length - 1)]!;
  });
  api = await startApiService(
    { processor: 'openai', openaiBaseUrl: server.baseURL, openaiModel: 'test-model', openaiApiKey: 'sk-test', openaiMaxRetries: 2, runAttempts: 2, concurrency: 4 },
    ['runs'],
  );
  // A few runs first, so that the measured ones see a warm process (the first fetch of a process loads
  // undici, the first runs pay for JIT): their ttft overheads are printed, not asserted.
  const overheads: string[] = [];
  for (let i = 0; i < 8; i++) {
    const run = await runEnded(await createRun({ input: plan({ content: ['warm'], firstChunkDelayMs: 20 }) }));
    overheads.push(((run.ttft_ns as number) / 1e6 - 20).toFixed(1));
  }
  console.log(`[openai] warm-up runs: ttft_ns - first-chunk delay = ${overheads.join(', ')} ms`);
});
afterAll(async () => {
  await api?.close();
  await server?.close();
});

describe('the openai processor', () => {
  it('records the transcript the server streamed, with ttft_ns, usage and the request it made', async () => {
    const content = Array.from({ length: 20 }, (_, i) => `tok${i} `);
    const reasoning = ['Let me ', 'think ', 'about it.'];
    const usage = { prompt_tokens: 31, completion_tokens: 23, total_tokens: 54 };
    const tag = plan({ content, reasoning, firstChunkDelayMs: 300, chunkDelayMs: 3, usage });
    const id = await createRun({ system: 'Be brief.', messages: [{ role: 'user', content: tag }], max_tokens: 64, temperature: 0.2 });
    const run = await runEnded(id);
    expect(run).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });

    // What the processor asked for, as the server received it.
    const [req] = requestsOf(tag);
    expect(req!.url).toBe('/v1/chat/completions');
    expect(req!.headers.authorization).toBe('Bearer sk-test');
    expect(req!.body).toMatchObject({
      model: 'test-model',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 64,
      temperature: 0.2,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: tag },
      ],
    });

    // Whole messages: the reasoning, then the answer, each the concatenation of what was streamed.
    const messages = await json<Msg[]>(`/v1/runs/${id}/messages`);
    expect(messages.map((m) => m.message_type)).toEqual(['reasoning_message', 'assistant_message']);
    expect(messages[0]!.reasoning).toBe(reasoning.join(''));
    expect(messages[1]!.content).toBe(content.join(''));
    expect(messages[0]!.id).not.toBe(messages[1]!.id);
    // Chunk by chunk, the run's stream equals the server's deltas, in order.
    const entries = await api.service.runhook.store.streamEntries(id);
    const chunks = entries.flatMap((e) => (e.kind === 'message' ? [e.message as Msg] : []));
    expect(chunks.filter((c) => c.message_type === 'reasoning_message').map((c) => c.reasoning)).toEqual(deltas(req!.sent, 'reasoning_content'));
    expect(chunks.filter((c) => c.message_type === 'assistant_message').map((c) => c.content)).toEqual(server.sentContent(server.requests.indexOf(req!)));
    expect(new Set(chunks.filter((c) => c.message_type === 'assistant_message').map((c) => c.id)).size).toBe(1);

    // ttft_ns runs from created_at to the first emitted chunk, which the server held back 300 ms.
    const ttftNs = run.ttft_ns as number;
    expect(ttftNs).toBeGreaterThanOrEqual(300_000_000);
    const m = await json<{ queue_wait_ns: number }>(`/v1/runs/${id}/metrics`);
    const createdMs = Date.parse(run.created_at as string);
    console.log(
      `[openai] ttft_ns - first-chunk delay = ${((ttftNs - 300_000_000) / 1e6).toFixed(2)} ms ` +
        `(queue wait ${(m.queue_wait_ns / 1e6).toFixed(1)} ms, created → request at the server ${(req!.receivedAt - createdMs).toFixed(1)} ms, ` +
        `first chunk written → ttft ${(createdMs + ttftNs / 1e6 - req!.firstChunkAt!).toFixed(1)} ms)`,
    );

    // One model call: one step with the usage chunk's tokens, and the run's usage the same.
    const runUsage = await json(`/v1/runs/${id}/usage`);
    expect(runUsage).toMatchObject({ ...usage, step_count: 1 });
    const steps = await json<Array<Record<string, unknown>>>(`/v1/runs/${id}/steps`);
    expect(steps).toEqual([
      expect.objectContaining({
        run_id: id,
        agent_id: 'agent-openai',
        model: 'test-model',
        provider_name: `127.0.0.1:${server.port}`,
        ...usage,
        stop_reason: 'end_turn',
        status: 'success',
      }),
    ]);
    const metrics = await json<Record<string, number>>(`/v1/steps/${steps[0]!.id as string}/metrics`);
    // The request took at least the server's 300 ms hold-back, and the step at least its request.
    expect(metrics.llm_request_ns).toBeGreaterThanOrEqual(300_000_000);
    expect(metrics.step_ns).toBeGreaterThanOrEqual(metrics.llm_request_ns!);
    expect(metrics.llm_request_start_ns).toBeGreaterThanOrEqual(metrics.step_start_ns!);
  });

  it('reads reasoning from a `reasoning` field, and ends max_tokens_exceeded on finish_reason length', async () => {
    const tag = plan({ reasoning: ['a', 'b'], reasoningField: 'reasoning', content: ['cut ', 'sh'], finishReason: 'length' });
    const id = await createRun({ messages: [{ role: 'user', content: tag }] });
    const run = await runEnded(id);
    // Letta maps max_tokens_exceeded to failed.
    expect(run).toMatchObject({ status: 'failed', stop_reason: 'max_tokens_exceeded' });
    const messages = await json<Msg[]>(`/v1/runs/${id}/messages`);
    expect(messages.map((m) => [m.message_type, m.reasoning ?? m.content])).toEqual([
      ['reasoning_message', 'ab'],
      ['assistant_message', 'cut sh'],
    ]);
    expect(requestsOf(tag)).toHaveLength(1);
  });

  it('turns tool calls into tool_call_messages and ends requires_approval', async () => {
    const tag = plan({
      content: ['Checking.'],
      toolCalls: [
        { id: 'call_1', name: 'get_weather', arguments: ['{"city"', ': "Paris"}'] },
        { id: 'call_2', name: 'get_time', arguments: ['{}'] },
      ],
    });
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const id = await createRun({ messages: [{ role: 'user', content: tag }], tools });
    const run = await runEnded(id);
    expect(run).toMatchObject({ status: 'completed', stop_reason: 'requires_approval' });
    expect(requestsOf(tag)[0]!.body.tools).toEqual(tools);
    const messages = await json<Msg[]>(`/v1/runs/${id}/messages`);
    expect(messages.map((m) => m.message_type)).toEqual(['assistant_message', 'tool_call_message', 'tool_call_message']);
    expect(messages[1]!.tool_call).toEqual({ name: 'get_weather', arguments: '{"city": "Paris"}', tool_call_id: 'call_1' });
    expect(messages[2]!.tool_call).toEqual({ name: 'get_time', arguments: '{}', tool_call_id: 'call_2' });
  });

  it('waits out a 429 with Retry-After: 1 and completes in the same run attempt', async () => {
    const tag = plan({ status: 429, headers: { 'retry-after': '1' } }, { content: ['ok'] });
    const id = await createRun({ input: tag });
    const run = await runEnded(id);
    expect(run).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
    const [first, second] = requestsOf(tag);
    expect(requestsOf(tag)).toHaveLength(2);
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(1000);
    const metrics = await json<{ attempts: number }>(`/v1/runs/${id}/metrics`);
    expect(metrics.attempts).toBe(1);
    expect((await json<Msg[]>(`/v1/runs/${id}/messages`)).map((m) => m.content)).toEqual(['ok']);
    // The retried call is one step, as Letta counts a model call retried inside its client.
    const steps = await json<Array<Record<string, unknown>>>(`/v1/runs/${id}/steps`);
    expect(steps.map((st) => [st.status, st.stop_reason])).toEqual([['success', 'end_turn']]);
  });

  it('fails at once with llm_api_error on a 400', async () => {
    const tag = plan({ status: 400, errorBody: { error: { message: 'bad model', type: 'invalid_request_error', code: 'model_not_found' } } });
    const id = await createRun({ input: tag });
    const run = await runEnded(id);
    expect(run).toMatchObject({ status: 'failed', stop_reason: 'llm_api_error' });
    expect(JSON.stringify(run.metadata)).toContain('400');
    expect(requestsOf(tag)).toHaveLength(1);
    expect((await json<{ attempts: number }>(`/v1/runs/${id}/metrics`)).attempts).toBe(1);
    const steps = await json<Array<Record<string, unknown>>>(`/v1/runs/${id}/steps`);
    expect(steps.map((st) => [st.status, st.stop_reason, st.total_tokens])).toEqual([['failed', 'llm_api_error', null]]);
  });

  it('fails with llm_api_error once retries of a 5xx run out, in one run attempt', async () => {
    const tag = plan({ status: 503, headers: { 'retry-after-ms': '20' } });
    const id = await createRun({ input: tag });
    const run = await runEnded(id);
    expect(run).toMatchObject({ status: 'failed', stop_reason: 'llm_api_error' });
    // openaiMaxRetries: 2 → three tries, then no further run attempt.
    expect(requestsOf(tag)).toHaveLength(3);
    expect((await json<{ attempts: number }>(`/v1/runs/${id}/metrics`)).attempts).toBe(1);
  });

  it('retries a connection broken before the first chunk within the attempt', async () => {
    const tag = plan({ breakAfter: 0 }, { content: ['fine'] });
    const id = await createRun({ input: tag });
    expect(await runEnded(id)).toMatchObject({ status: 'completed' });
    expect(requestsOf(tag)).toHaveLength(2);
    expect((await json<{ attempts: number }>(`/v1/runs/${id}/metrics`)).attempts).toBe(1);
    expect((await json<Msg[]>(`/v1/runs/${id}/messages`)).map((m) => m.content)).toEqual(['fine']);
  });

  it('retries a stream broken after content as a new attempt whose transcript starts clean', async () => {
    const tag = plan({ content: ['half ', 'an ', 'answer'], chunkDelayMs: 5, breakAfter: 3 }, { content: ['whole ', 'answer'] });
    const id = await createRun({ input: tag });
    expect(await runEnded(id)).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
    expect(requestsOf(tag)).toHaveLength(2);
    expect((await json<{ attempts: number }>(`/v1/runs/${id}/metrics`)).attempts).toBe(2);
    expect((await json<Msg[]>(`/v1/runs/${id}/messages`)).map((m) => m.content)).toEqual(['whole answer']);
    // The broken first attempt's failed step went with its messages.
    const steps = await json<Array<Record<string, unknown>>>(`/v1/runs/${id}/steps`);
    expect(steps.map((st) => st.status)).toEqual(['success']);
  });

  it('closes the upstream connection when the run is cancelled mid-stream', async () => {
    const tag = plan({ content: ['a', 'b', 'c', 'd', 'e', 'f'], chunkDelayMs: 5, hangAfter: 4 });
    const id = await createRun({ input: tag });
    await waitFor(async () => (await api.service.runhook.store.streamEntries(id)).length >= 2, 10_000, 'the run to stream');
    const index = server.requests.indexOf(requestsOf(tag)[0]!);
    const t0 = performance.now();
    const cancelled = await json(`/v1/runs/${id}/cancel`, { method: 'POST' });
    expect(cancelled).toMatchObject({ status: 'cancelled' });
    await server.clientClosed(index, 10_000);
    console.log(`[openai] cancel → upstream closed in ${(performance.now() - t0).toFixed(1)} ms`);
    expect(requestsOf(tag)).toHaveLength(1);
    await waitFor(() => api.service.runWorker!.activeCount === 0, 5_000, 'the worker to let the run go');
  });

  it('takes Letta content parts, `input` and override_model', async () => {
    const tag = plan({ content: ['seen'] });
    const id = await createRun({
      override_model: 'other-model',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'earlier' }] },
        { role: 'assistant', content: 'noted' },
        { role: 'user', content: tag },
      ],
    });
    expect(await runEnded(id)).toMatchObject({ status: 'completed' });
    expect(requestsOf(tag)[0]!.body).toMatchObject({
      model: 'other-model',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'earlier' }] },
        { role: 'assistant', content: 'noted' },
        { role: 'user', content: tag },
      ],
    });
  });

  it("takes a run started by Letta's messages/async route, with its override_model", async () => {
    const tag = plan({ content: ['via ', 'letta'] });
    const run = await json<{ id: string }>('/v1/agents/agent-openai/messages/async', {
      method: 'POST',
      json: { messages: [{ role: 'user', content: tag }], override_model: 'letta-override' },
    });
    expect(await runEnded(run.id)).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
    expect(requestsOf(tag)[0]!.body).toMatchObject({ model: 'letta-override', messages: [{ role: 'user', content: tag }] });
    expect((await json<Msg[]>(`/v1/runs/${run.id}/messages`)).map((m) => m.content)).toEqual(['via letta']);
  });

  it('fails at once, without a request, on input it cannot use', async () => {
    const before = server.requests.length;
    const id = await createRun({ messages: [] });
    expect(await runEnded(id)).toMatchObject({ status: 'failed', stop_reason: 'error' });
    expect(server.requests.length).toBe(before);
  });
});

describe('the openai processor with a short idle timeout', () => {
  let quick: ApiHarness;
  beforeAll(async () => {
    quick = await startApiService(
      { processor: 'openai', openaiBaseUrl: server.baseURL, openaiModel: 'test-model', openaiMaxRetries: 2, openaiIdleTimeoutMs: 300, concurrency: 2 },
      ['runs'],
    );
  });
  afterAll(() => quick?.close());

  it('gives up on a silent server and tries again within the attempt', async () => {
    const tag = plan({ hangAfter: 0 }, { content: ['after ', 'silence'] });
    const res = await quick.call('/v1/runs', { method: 'POST', json: { agent_id: 'agent-openai', input: tag } });
    const { id } = (await res.json()) as { id: string };
    const done = await waitFor(async () => {
      const r = (await (await quick.call(`/v1/runs/${id}`)).json()) as { status: string };
      return r.status === 'completed' || r.status === 'failed' ? r : undefined;
    });
    expect(done).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
    const [silent, answered] = requestsOf(tag);
    expect(silent!.clientClosed).toBe(true);
    expect(answered!.finished).toBe(true);
    expect(((await (await quick.call(`/v1/runs/${id}/metrics`)).json()) as { attempts: number }).attempts).toBe(1);
  });
});

describe('the test server', () => {
  it('agrees with the official openai client', async () => {
    const usage = { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 };
    const tag = plan({ content: ['a', 'b', 'c'], reasoning: ['r'], usage, toolCalls: [{ id: 'call_x', name: 'f', arguments: ['{"x":', '1}'] }] });
    const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'k', maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: tag }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let reasoning = '';
    let args = '';
    let finish: string | null = null;
    let seenUsage: unknown;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (chunk.usage) seenUsage = chunk.usage;
      if (!c) continue;
      text += c.delta.content ?? '';
      reasoning += (c.delta as { reasoning_content?: string }).reasoning_content ?? '';
      args += c.delta.tool_calls?.[0]?.function?.arguments ?? '';
      finish = c.finish_reason ?? finish;
    }
    expect({ text, reasoning, args, finish, seenUsage }).toEqual({ text: 'abc', reasoning: 'r', args: '{"x":1}', finish: 'tool_calls', seenUsage: usage });
    const req = requestsOf(tag)[0]!;
    expect(req.sent.at(-1)).toBe('[DONE]');
    expect(req.finished).toBe(true);
    expect(req.clientClosed).toBe(false);

    // And an error status reaches the client as the API's error, with its headers.
    const errTag = plan({ status: 429, headers: { 'retry-after': '7' } });
    const err = await client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: errTag }], stream: true })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toBe('7');
  });
});
