import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunhookClient } from '../../src/client.ts';
import { ApiResponseError } from '../../src/errors.ts';
import type { CallbackAttempt, Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

describe('RunhookClient against a running service', () => {
  let api: ApiHarness;
  let client: RunhookClient;
  beforeAll(async () => {
    api = await startApiService({ apiKeys: ['client-key'] }, ['runs']);
    client = new RunhookClient({ baseUrl: api.url, apiKey: 'client-key' });
  });
  afterAll(async () => {
    await client.close();
    await api.close();
  });

  it('creates a run and waits for it to complete', async () => {
    const run = await client.createRun({ agent_id: 'cl', input: { text: 'hi there', ttft_ms: 30, token_ms: 5 } });
    expect(run.status).toBe('created');
    const done = await client.waitForRun(run.id, { timeoutMs: 15_000, pollMs: 20 });
    expect(done).toMatchObject({ id: run.id, status: 'completed', stop_reason: 'end_turn' });
    expect(await client.getRun(run.id)).toEqual(done);
    const res = await fetch(`${api.url}/v1/runs/${run.id}/metrics`, { headers: { authorization: 'Bearer client-key' } });
    const metrics = (await res.json()) as Record<string, number | null>;
    expect(metrics).toMatchObject({ id: run.id, attempts: 1, num_steps: 1, run_ns: done.total_duration_ns, ttft_ns: done.ttft_ns });
    expect(metrics.queue_wait_ns).toBeGreaterThanOrEqual(0);
    expect(metrics.queue_wait_ns!).toBeLessThanOrEqual(done.ttft_ns!);
    expect(metrics.run_start_ns! / 1e6).toBeGreaterThanOrEqual(Date.parse(done.created_at) - 1);
  });

  it('lists with filters and iterates every page', async () => {
    const runs = await Promise.all(Array.from({ length: 7 }, () => client.createRun({ agent_id: 'cl-list', input: { text: 'x' } })));
    await Promise.all(runs.map((r) => client.waitForRun(r.id, { pollMs: 20 })));
    const page = await client.listRuns({ agent_id: 'cl-list', statuses: ['completed', 'failed'], limit: 3, order: 'asc' });
    const everyOne = await client.listRuns({ agent_id: 'cl-list', order: 'asc', limit: 100 });
    expect(everyOne).toHaveLength(7);
    expect(page).toEqual(everyOne.slice(0, 3));
    const all: Run[] = [];
    for await (const r of client.iterateRuns({ agent_id: 'cl-list', limit: 2 })) all.push(r);
    expect(new Set(all.map((r) => r.id))).toEqual(new Set(runs.map((r) => r.id)));
    expect(all).toHaveLength(7);
  });

  it('cancels a running run', async () => {
    const run = await client.createRun({ agent_id: 'cl', input: { text: 'a b c d e f g', token_ms: 150 } });
    await waitFor(async () => (await client.getRun(run.id)).status === 'running');
    expect(await client.cancelRun(run.id)).toMatchObject({ status: 'cancelled', stop_reason: 'cancelled' });
  });

  it('sends an Idempotency-Key', async () => {
    const a = await client.createRun({ agent_id: 'cl', input: { text: 'x' } }, { idempotencyKey: 'client-idem-1' });
    const b = await client.createRun({ agent_id: 'cl', input: { text: 'x' } }, { idempotencyKey: 'client-idem-1' });
    expect(b.id).toBe(a.id);
  });

  it('reports error answers as ApiResponseError with the status and the server code', async () => {
    const err = await client.getRun('run-00000000-0000-4000-8000-000000000000').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiResponseError);
    expect(err).toMatchObject({ status: 404, apiCode: 'RUN_NOT_FOUND', code: 'API_ERROR' });
    const bad = await client.createRun({ agent_id: '' }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 422, apiCode: 'INVALID_INPUT' });
    const anonymous = new RunhookClient({ baseUrl: api.url });
    try {
      await expect(anonymous.listRuns()).rejects.toMatchObject({ status: 401, apiCode: 'UNAUTHORIZED' });
    } finally {
      await anonymous.close();
    }
  });
});

describe('the callback delivery log and a manual retry over HTTP', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await Receiver.start();
    api = await startApiService({}, ['runs', 'callbacks']);
  });
  afterAll(async () => {
    await api.close();
    await receiver.close();
  });

  it('shows each delivery attempt, and delivers again on POST /callback/retry', async () => {
    const body = { agent_id: 'cb', input: { text: 'hi' }, callback_url: receiver.url('/hook') };
    const res = await api.call('/v1/runs', { method: 'POST', json: body });
    const run = (await res.json()) as Run;
    await receiver.waitForRequests(1);
    const attempts = await waitFor(async () => {
      const a = (await (await api.call(`/v1/runs/${run.id}/callback-attempts`)).json()) as CallbackAttempt[];
      return a.length === 1 && a;
    });
    expect(attempts[0]).toMatchObject({ attempt: 1, status_code: 200, error: null });
    expect((await (await api.call(`/v1/runs/${run.id}`)).json()) as Run).toMatchObject({ callback_status_code: 200, callback_error: null });

    const retry = await api.call(`/v1/runs/${run.id}/callback/retry`, { method: 'POST' });
    expect(retry.status).toBe(202);
    const [, second] = await receiver.waitForRequests(2);
    expect((second!.json() as { run_id: string }).run_id).toBe(run.id);
    await waitFor(async () => ((await (await api.call(`/v1/runs/${run.id}/callback-attempts`)).json()) as unknown[]).length === 2);
  });
});
