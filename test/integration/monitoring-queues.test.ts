import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withConfig } from '../../src/config.ts';
import type { QueuesReport } from '../../src/monitoring/schemas.ts';
import { Runhook } from '../../src/runhook.ts';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { silentLog, waitFor } from '../helpers/setup.ts';

const KEY = 'monitoring-key-0123456789';
const auth = { authorization: `Bearer ${KEY}` };

describe('GET /v1/queues', () => {
  let api: ApiHarness;
  let delayedMaker: Runhook;
  const report = async () => (await (await api.call('/v1/queues', { headers: auth })).json()) as QueuesReport;
  const create = async (input: object) => {
    const res = await api.call('/v1/runs', { method: 'POST', headers: auth, json: { agent_id: 'a1', input } });
    expect(res.status).toBe(201);
    return (await res.json()) as Run;
  };
  const status = async (id: string) => ((await (await api.call(`/v1/runs/${id}`, { headers: auth })).json()) as Run).status;

  beforeAll(async () => {
    // One run at a time, so that one long run holds the worker and the runs after it wait.
    api = await startApiService({ apiKeys: [KEY], concurrency: 1, runAttempts: 1 }, ['runs']);
    // Runs made through this one get a second attempt after a long backoff: a failed first attempt
    // leaves their job delayed.
    delayedMaker = new Runhook(withConfig({ runAttempts: 2, runBackoffMs: 600_000 }, api.config), api.service.runhook.redis, silentLog);
  });
  afterAll(async () => {
    await delayedMaker?.close();
    await api?.close();
  });

  it('counts a known mix of waiting, active, completed, failed and delayed runs', async () => {
    const done = [await create({ text: 'one' }), await create({ text: 'two' })];
    const failed = await create({ text: 'x', fail: 'boom' });
    for (const r of [...done, failed]) await waitFor(async () => ['completed', 'failed'].includes(await status(r.id)), 15_000, `${r.id} to end`);
    const { run: delayed } = await delayedMaker.createRun({ agent_id: 'a1', input: { text: 'x', fail: 'first attempt fails' } });
    await waitFor(async () => (await report()).queues.runs.counts.delayed === 1, 15_000, 'the failed first attempt to be delayed');
    const long = await create({ text: 'slow', ttft_ms: 600_000 });
    await waitFor(async () => (await status(long.id)) === 'running', 15_000, 'the long run to start');
    const waiting = [await create({ text: 'w1' }), await create({ text: 'w2' }), await create({ text: 'w3' })];

    const r = await report();
    expect(r.queues.runs.counts).toEqual({ waiting: 3, active: 1, delayed: 1, completed: 2, failed: 1, prioritized: 0 });
    expect(r.runs_by_status).toEqual({ created: 3, running: 2, completed: 2, failed: 1, cancelled: 0 });
    expect(r.queues.runs.paused).toBe(false);
    expect(r.queues.runs.workers).toHaveLength(1);
    expect(r.queues.callbacks.workers).toHaveLength(0);
    expect(r.queues.runs.oldest_waiting).toMatchObject({ job_id: waiting[0]!.id });
    expect(Date.parse(r.queues.runs.oldest_waiting!.created_at)).toBeGreaterThanOrEqual(Date.parse(waiting[0]!.created_at));
    expect(r.queues.runs.throughput).toMatchObject({ completed_last_hour: 2, failed_last_hour: 1, completed_total: 2, failed_total: 1 });
    expect(r.queues.runs.throughput.failure_rate).toBeCloseTo(1 / 3);
    expect(r.queues.runs.throughput.completed_per_minute).toHaveLength(60);
    expect(r.queues.callbacks.counts).toEqual({ waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0, prioritized: 0 });
    expect(r.callbacks_by_state).toEqual({ delivered: 0, retrying: 0, given_up: 0 });
    expect(delayed.status).toBe('created');
  });

  it('needs the API key, and answers 404 for a queue that does not exist', async () => {
    expect((await api.call('/v1/queues')).status).toBe(401);
    expect((await api.call('/v1/queues/runs/pause', { method: 'POST' })).status).toBe(401);
    const res = await api.call('/v1/queues/nope/pause', { method: 'POST', headers: auth });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'QUEUE_NOT_FOUND' } });
  });

  it('describes the queue routes in the OpenAPI document', async () => {
    const doc = (await (await api.call('/openapi.json')).json()) as { paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/queues', '/v1/queues/{name}/pause', '/v1/queues/{name}/resume', '/metrics']));
    expect(doc.components.schemas).toHaveProperty('QueuesReport');
  });
});

describe('pausing a queue', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService({}, ['runs', 'callbacks']);
  });
  afterAll(() => api?.close());

  it('keeps new runs from starting until it is resumed', async () => {
    const paused = await api.call('/v1/queues/runs/pause', { method: 'POST' });
    expect(paused.status).toBe(200);
    expect(((await paused.json()) as QueuesReport).queues.runs.paused).toBe(true);

    const run = (await (await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'a1', input: { text: 'held' } } })).json()) as Run;
    const held = (await (await api.call('/v1/queues')).json()) as QueuesReport;
    // BullMQ 6 keeps a paused queue's jobs in its wait list; no worker takes from it while the queue's
    // paused flag is set (checked atomically in its Lua); the worker is connected and idle all the while.
    expect(held.queues.runs.counts).toMatchObject({ waiting: 1, active: 0 });
    expect(held.queues.runs.workers).toHaveLength(1);
    expect(held.queues.runs.oldest_waiting).toMatchObject({ job_id: run.id });
    expect(((await (await api.call(`/v1/runs/${run.id}`)).json()) as Run).status).toBe('created');

    const resumed = await api.call('/v1/queues/runs/resume', { method: 'POST' });
    expect(((await resumed.json()) as QueuesReport).queues.runs.paused).toBe(false);
    const ended = await waitFor(async () => {
      const r = (await (await api.call(`/v1/runs/${run.id}`)).json()) as Run;
      return r.status === 'completed' ? r : undefined;
    });
    expect(ended.stop_reason).toBe('end_turn');
    expect(((await (await api.call('/v1/queues')).json()) as QueuesReport).queues.runs.counts.waiting).toBe(0);
  });
});
