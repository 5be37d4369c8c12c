import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { startService, type Service } from '../../src/service.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { silentLog, waitFor } from '../helpers/setup.ts';

interface ErrorAnswer {
  error: { code: string; message: string; details?: { location: string; path: (string | number)[]; code: string }[] };
}

const json = async <T>(res: Response) => (await res.json()) as T;

describe('the runs API with no worker running', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService({ bodyLimit: 4_096 });
  });
  afterAll(() => api.close());

  const create = async (body: unknown, headers: Record<string, string> = {}) => api.call('/v1/runs', { method: 'POST', json: body, headers });

  it('creates a run (201), takes the metadata_ alias, and returns it on GET', async () => {
    const res = await create({ agent_id: 'agent-1', input: { text: 'hi' }, metadata_: { k: 'v' }, background: true, conversation_id: 'c1' });
    expect(res.status).toBe(201);
    const run = await json<Run>(res);
    expect(run).toMatchObject({ status: 'created', agent_id: 'agent-1', metadata: { k: 'v' }, background: true, conversation_id: 'c1' });
    expect(run.id).toMatch(/^run-[0-9a-f-]{36}$/);
    const got = await api.call(`/v1/runs/${run.id}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(run);
    expect(await api.service.runhook.queue.getJob(run.id)).toBeTruthy();
  });

  it('answers malformed JSON with 400 INVALID_INPUT', async () => {
    const res = await api.call('/v1/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"agent_id": ' });
    expect(res.status).toBe(400);
    const body = await json<ErrorAnswer>(res);
    expect(body.error.code).toBe('INVALID_INPUT');
    expect(JSON.stringify(body)).not.toMatch(/at \w+ \(|node_modules|\.ts:\d+/);
  });

  it('answers wrong types with 422 and the zod issues in details', async () => {
    const res = await create({ agent_id: 5, background: 'yes' });
    expect(res.status).toBe(422);
    const { error } = await json<ErrorAnswer>(res);
    expect(error.code).toBe('INVALID_INPUT');
    const paths = error.details!.map((d) => d.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['agent_id', 'background']));
    expect(error.details!.every((d) => d.location === 'body' && d.code === 'invalid_type')).toBe(true);
  });

  it('refuses a callback_url that is not an absolute http(s) URL', async () => {
    for (const callback_url of ['ftp://example.com/x', 'not a url', '/relative']) {
      const res = await create({ agent_id: 'a', callback_url });
      expect(res.status).toBe(422);
      const { error } = await json<ErrorAnswer>(res);
      expect(error.details!.map((d) => d.path.join('.'))).toContain('callback_url');
    }
  });

  it('refuses unknown status values in a list query and in a PATCH', async () => {
    const list = await api.call('/v1/runs?statuses=completed&statuses=bogus');
    expect(list.status).toBe(422);
    const { error } = await json<ErrorAnswer>(list);
    expect(error.details![0]).toMatchObject({ location: 'query', path: ['statuses', 1] });
    const run = await json<Run>(await create({ agent_id: 'a' }));
    const patch = await api.call(`/v1/runs/${run.id}`, { method: 'PATCH', json: { status: 'paused' } });
    expect(patch.status).toBe(422);
  });

  it('answers a body over the limit with 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await create({ agent_id: 'a', input: { text: 'x'.repeat(8_000) } });
    expect(res.status).toBe(413);
    expect((await json<ErrorAnswer>(res)).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers a body that is not JSON with 415', async () => {
    const res = await api.call('/v1/runs', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'agent_id=a' });
    expect(res.status).toBe(415);
    expect((await json<ErrorAnswer>(res)).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 404 RUN_NOT_FOUND on every run route for an unknown run, and NOT_FOUND for an unknown route', async () => {
    const id = 'run-00000000-0000-4000-8000-000000000000';
    const calls: [string, string, unknown?][] = [
      ['GET', ''],
      ['PATCH', '', { metadata: {} }],
      ['DELETE', ''],
      ['POST', '/cancel'],
      ['GET', '/messages'],
      ['GET', '/usage'],
      ['GET', '/metrics'],
      ['GET', '/callback-attempts'],
      ['POST', '/callback/retry'],
      ['POST', '/stream', {}],
      ['GET', '/stream'],
    ];
    for (const [method, suffix, body] of calls) {
      const res = await api.call(`/v1/runs/${id}${suffix}`, { method, ...(body !== undefined && { json: body }) });
      expect(res.status, `${method} ${suffix}`).toBe(404);
      expect((await json<ErrorAnswer>(res)).error.code).toBe('RUN_NOT_FOUND');
    }
    const route = await api.call('/v1/nothing-here');
    expect(route.status).toBe(404);
    expect((await json<ErrorAnswer>(route)).error.code).toBe('NOT_FOUND');
  });

  it('patches metadata, moves a status along the machine, and refuses to leave a terminal status (409)', async () => {
    const run = await json<Run>(await create({ agent_id: 'a', metadata: { a: 1 } }));
    const meta = await api.call(`/v1/runs/${run.id}`, { method: 'PATCH', json: { metadata: { b: 2 }, unknown_field: 'ignored' } });
    expect(meta.status).toBe(200);
    expect((await json<Run>(meta)).metadata).toEqual({ b: 2 });

    const illegal = await api.call(`/v1/runs/${run.id}`, { method: 'PATCH', json: { status: 'completed' } });
    expect(illegal.status).toBe(409);
    expect(illegal.headers.get('x-should-retry')).toBe('false');
    expect((await json<ErrorAnswer>(illegal)).error.code).toBe('RUN_ILLEGAL_TRANSITION');

    const failed = await api.call(`/v1/runs/${run.id}`, { method: 'PATCH', json: { status: 'failed', stop_reason: 'llm_api_error' } });
    expect(await json<Run>(failed)).toMatchObject({ status: 'failed', stop_reason: 'llm_api_error' });
    const reopen = await api.call(`/v1/runs/${run.id}`, { method: 'PATCH', json: { status: 'running' } });
    expect(reopen.status).toBe(409);
    expect((await json<Run>(await api.call(`/v1/runs/${run.id}`))).status).toBe('failed');
  });

  it('deletes a run and its job', async () => {
    const run = await json<Run>(await create({ agent_id: 'a' }));
    const res = await api.call(`/v1/runs/${run.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect((await json<Run>(res)).id).toBe(run.id);
    expect((await api.call(`/v1/runs/${run.id}`)).status).toBe(404);
    expect(await api.service.runhook.queue.getJob(run.id)).toBeUndefined();
  });

  it('returns the same run for the same Idempotency-Key and body, without a second job', async () => {
    const key = `key-${Date.now()}`;
    const body = { agent_id: 'idem-agent', input: { text: 'once' }, metadata: { a: 1, b: 2 } };
    const first = await create(body, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const run = await json<Run>(first);
    // Same request with its keys in another order: the same request.
    const again = await create({ metadata: { b: 2, a: 1 }, input: { text: 'once' }, agent_id: 'idem-agent' }, { 'idempotency-key': key });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await json<Run>(again)).id).toBe(run.id);
    const racing = await Promise.all(Array.from({ length: 10 }, () => create(body, { 'idempotency-key': key })));
    for (const r of racing) expect((await json<Run>(r)).id).toBe(run.id);
    expect(await api.service.runhook.listRuns({ agent_ids: ['idem-agent'] })).toHaveLength(1);
    expect(await api.service.runhook.queue.getJobCounts('waiting')).toMatchObject({ waiting: expect.any(Number) });
    const jobs = await api.service.runhook.queue.getJobs(['waiting', 'prioritized', 'delayed']);
    expect(jobs.filter((j) => j.data.agent_id === 'idem-agent')).toHaveLength(1);

    const other = await create({ ...body, input: { text: 'twice' } }, { 'idempotency-key': key });
    expect(other.status).toBe(409);
    expect(other.headers.get('x-should-retry')).toBe('false');
    expect((await json<ErrorAnswer>(other)).error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('keys idempotency on the endpoint too: a Letta async request with a used key is a conflict', async () => {
    const key = `key-letta-${Date.now()}`;
    expect((await create({ agent_id: 'a' }, { 'idempotency-key': key })).status).toBe(201);
    const res = await api.call('/v1/agents/a/messages/async', { method: 'POST', json: { input: 'hi' }, headers: { 'idempotency-key': key } });
    expect(res.status).toBe(409);
  });

  it('reports usage, metrics and an empty delivery log for a run that has not started', async () => {
    const run = await json<Run>(await create({ agent_id: 'a', callback_url: 'http://127.0.0.1:9/hook' }));
    const usage = await json(await api.call(`/v1/runs/${run.id}/usage`));
    expect(usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, step_count: 0 });
    const metrics = await json(await api.call(`/v1/runs/${run.id}/metrics`));
    expect(metrics).toMatchObject({ id: run.id, agent_id: 'a', attempts: 0, queue_wait_ns: null, run_ns: null });
    expect(await json(await api.call(`/v1/runs/${run.id}/callback-attempts`))).toEqual([]);
    const retry = await api.call(`/v1/runs/${run.id}/callback/retry`, { method: 'POST' });
    expect(retry.status).toBe(409);
    expect((await json<ErrorAnswer>(retry)).error.code).toBe('RUN_NOT_ENDED');
    const noUrl = await json<Run>(await create({ agent_id: 'a' }));
    await api.call(`/v1/runs/${noUrl.id}/cancel`, { method: 'POST' });
    expect((await api.call(`/v1/runs/${noUrl.id}/callback/retry`, { method: 'POST' })).status).toBe(422);
  });

  it('accepts a body-less POST sent with content-type: application/json', async () => {
    const run = await json<Run>(await create({ agent_id: 'a' }));
    const res = await api.call(`/v1/runs/${run.id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
  });

  it('serves /healthz, /readyz, the OpenAPI document and its UI', async () => {
    expect(await json(await api.call('/healthz'))).toEqual({ status: 'ok' });
    expect(await json(await api.call('/readyz'))).toEqual({ status: 'ready' });
    const doc = await json<{ openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } }>(
      await api.call('/openapi.json'),
    );
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/runs', '/v1/runs/{run_id}', '/v1/runs/{run_id}/stream', '/v1/agents/{agent_id}/messages/async']),
    );
    expect(doc.components.schemas).toHaveProperty('Run');
    expect(JSON.stringify(doc.paths['/v1/runs'])).toContain('callback_url');
    const ui = await api.call('/docs/');
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toMatch(/text\/html/);
  });
});

describe('cancelling runs', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService();
  });
  afterAll(() => api.close());

  it('takes a waiting run off the queue: it never starts, even once a worker comes', async () => {
    const waiting = await json<Run>(await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'c', input: { text: 'never' } } }));
    const res = await api.call(`/v1/runs/${waiting.id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await json<Run>(res)).toMatchObject({ status: 'cancelled', stop_reason: 'cancelled' });
    expect(await api.service.runhook.queue.getJob(waiting.id)).toBeUndefined();
    // Cancelling again changes nothing.
    expect(await json<Run>(await api.call(`/v1/runs/${waiting.id}/cancel`, { method: 'POST' }))).toMatchObject({ status: 'cancelled' });

    const worker: Service = await startService(api.config, silentLog, new Set(['runs']));
    try {
      const later = await json<Run>(await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'c', input: { text: 'yes' } } }));
      const done = await waitFor(async () => {
        const r = await json<Run>(await api.call(`/v1/runs/${later.id}`));
        return r.status === 'completed' && r;
      });
      expect(done.status).toBe('completed');
      const cancelled = await json<Run>(await api.call(`/v1/runs/${waiting.id}`));
      expect(cancelled).toMatchObject({ status: 'cancelled', ttft_ns: null });
      expect(await json(await api.call(`/v1/runs/${waiting.id}/messages`))).toEqual([]);
    } finally {
      await worker.close();
    }
  });

  it('aborts a running run through its processor signal', async () => {
    const worker: Service = await startService(api.config, silentLog, new Set(['runs']));
    try {
      const run = await json<Run>(
        await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'c', input: { text: 'a b c d e f g h', token_ms: 150 } } }),
      );
      await waitFor(async () => (await json<Run>(await api.call(`/v1/runs/${run.id}`))).status === 'running');
      const res = await api.call(`/v1/runs/${run.id}/cancel`, { method: 'POST' });
      expect(res.status).toBe(200);
      expect(await json<Run>(res)).toMatchObject({ status: 'cancelled', stop_reason: 'cancelled' });
      await waitFor(() => worker.runWorker!.activeCount === 0, 10_000, 'the processor to stop');
      const after = await json<Run>(await api.call(`/v1/runs/${run.id}`));
      expect(after.status).toBe('cancelled');
      const messages = await json<{ content: string }[]>(await api.call(`/v1/runs/${run.id}/messages`));
      expect(messages.map((m) => m.content).join('').length).toBeLessThan('a b c d e f g h'.length);
      const terminal = await api.call(`/v1/runs/${run.id}/cancel`, { method: 'POST' });
      expect(terminal.status).toBe(200);
    } finally {
      await worker.close();
    }
  });

  it('refuses to cancel a completed run (409)', async () => {
    const run = await json<Run>(await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'c' } }));
    await api.call(`/v1/runs/${run.id}`, { method: 'PATCH', json: { status: 'running' } });
    await api.call(`/v1/runs/${run.id}`, { method: 'PATCH', json: { status: 'completed' } });
    const res = await api.call(`/v1/runs/${run.id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(409);
    expect((await json<ErrorAnswer>(res)).error.code).toBe('RUN_ILLEGAL_TRANSITION');
  });
});
