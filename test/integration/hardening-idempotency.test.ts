import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { callbackJobOptions } from '../../src/callbacks/dispatch.ts';
import { callbackJobId } from '../../src/queue/queues.ts';
import type { Run } from '../../src/runs/schema.ts';
import { json, startApiService, type ApiHarness, type ErrorAnswer } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { useTestStore, waitFor } from '../helpers/setup.ts';


describe('an Idempotency-Key whose run was deleted', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService();
  });
  afterAll(() => api.close());

  const create = (body: unknown, key: string) => api.call('/v1/runs', { method: 'POST', json: body, headers: { 'idempotency-key': key } });

  it('never creates the run again: the retry is a 409 RUN_DELETED naming the deleted run, and no job is added', async () => {
    const body = { agent_id: 'a-idem', input: { text: 'once' } };
    const first = await create(body, 'order-1');
    expect(first.status).toBe(201);
    const run = await json<Run>(first);
    expect((await api.call(`/v1/runs/${run.id}`, { method: 'DELETE' })).status).toBe(200);

    const again = await create(body, 'order-1');
    expect(again.status).toBe(409);
    expect(again.headers.get('x-should-retry')).toBe('false');
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    const err = await json<ErrorAnswer>(again);
    expect(err.error.code).toBe('RUN_DELETED');
    expect(err.error.details).toEqual({ run_id: run.id });
    expect((await api.call(`/v1/runs/${run.id}`)).status).toBe(404);
    expect(await api.service.runhook.queue.getJob(run.id)).toBeUndefined();
  });

  it('answers the Letta route the same way', async () => {
    const body = { messages: [{ role: 'user', content: 'hi' }] };
    const first = await api.call('/v1/agents/a-idem/messages/async', { method: 'POST', json: body, headers: { 'idempotency-key': 'letta-1' } });
    expect(first.status).toBe(200);
    const run = await json<Run>(first);
    await api.call(`/v1/runs/${run.id}`, { method: 'DELETE' });
    const again = await api.call('/v1/agents/a-idem/messages/async', { method: 'POST', json: body, headers: { 'idempotency-key': 'letta-1' } });
    expect(again.status).toBe(409);
    expect((await json<ErrorAnswer>(again)).error.code).toBe('RUN_DELETED');
  });

  it('still replays a live run, and still refuses the key with another body', async () => {
    const body = { agent_id: 'a-idem', input: { n: 1 } };
    const run = await json<Run>(await create(body, 'order-2'));
    const replay = await create(body, 'order-2');
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect((await json<Run>(replay)).id).toBe(run.id);
    const other = await create({ ...body, input: { n: 2 } }, 'order-2');
    expect(other.status).toBe(409);
    expect((await json<ErrorAnswer>(other)).error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('makes one run of many concurrent requests with the same key', async () => {
    const body = { agent_id: 'a-idem', input: { n: 3 } };
    const answers = await Promise.all(Array.from({ length: 10 }, () => create(body, 'order-3')));
    const ids = new Set(await Promise.all(answers.map(async (a) => (await json<Run>(a)).id)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(201));
    expect(ids.size).toBe(1);
  });
});

describe('deleting a run with a callback', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await Receiver.start({ status: 500 });
    // The second attempt waits ten minutes: its job sits delayed while the test deletes the run.
    api = await startApiService({ callbackRetryDelaysMs: [0, 600_000] }, ['runs', 'callbacks']);
  });
  afterAll(async () => {
    await api.close();
    await receiver.close();
  });

  it('removes its delayed callback retry job', async () => {
    const run = await json<Run>(
      await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'a-cb', input: { text: 'x' }, callback_url: receiver.url('/hook') } }),
    );
    const queue = api.service.runhook.callbackQueue;
    await waitFor(async () => (await (await queue.getJob(callbackJobId(run.id)))?.getState()) === 'delayed', 15_000, 'the retry job');
    expect((await api.call(`/v1/runs/${run.id}`, { method: 'DELETE' })).status).toBe(200);
    expect(await queue.getJob(callbackJobId(run.id))).toBeUndefined();
    expect(await api.service.runhook.store.callbackAttempts(run.id)).toEqual([]);
  });
});

describe('the run store deleting an ended run', () => {
  const t = useTestStore();

  it('takes it out of the callback outbox and drops its delivery log', async () => {
    const { record } = await t.store.create({ agent_id: 'a', callback_url: 'http://127.0.0.1:9/hook' });
    const id = record.run.id;
    await t.store.transition(id, 'running');
    await t.store.transition(id, 'completed');
    expect(await t.redis.zscore(t.store.keys.callbackOutbox, id)).not.toBeNull();
    await t.store.recordCallbackAttempt(id, { attempt: 1, at: new Date().toISOString(), status_code: 500, error: 'HTTP 500', duration_ms: 1, gave_up: false }, Date.now() * 1000);
    expect(await t.store.delete(id)).toBe(true);
    expect(await t.redis.zscore(t.store.keys.callbackOutbox, id)).toBeNull();
    expect(await t.redis.exists(t.store.keys.callbackAttempts(id), t.store.keys.run(id))).toBe(0);
  });
});

describe('a callback job for a run that has not ended', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await Receiver.start({ status: 200 });
    api = await startApiService({}, ['callbacks']);
  });
  afterEach(() => {
    receiver.requests.length = 0;
  });
  afterAll(async () => {
    await api.close();
    await receiver.close();
  });

  it('posts nothing and records nothing while the run is running; the run is delivered once, when it ends', async () => {
    const { runhook } = api.service;
    const { run } = await runhook.createRun({ agent_id: 'a-stale', callback_url: receiver.url('/hook') });
    await runhook.store.transition(run.id, 'running');
    // A stale job (of an earlier run under this id, or added by hand): it must not send "running".
    await runhook.callbackQueue.add('deliver', { run_id: run.id }, callbackJobOptions(api.config, run.id));
    const job = await waitFor(async () => {
      const j = await runhook.callbackQueue.getJob(callbackJobId(run.id));
      const state = await j?.getState();
      // Either it waits for the run to end, or it has finished without sending.
      return state === 'delayed' || state === 'completed' || state === 'failed' ? j : undefined;
    }, 15_000, 'the stale job to be handled');
    expect(job).toBeDefined();
    expect(receiver.requests).toHaveLength(0);
    const mid = await runhook.store.getRecord(run.id);
    expect(mid?.run.callback_sent_at).toBeNull();
    expect(await runhook.store.callbackAttempts(run.id)).toEqual([]);

    await runhook.store.transition(run.id, 'completed');
    const [req] = await receiver.waitForRequests(1);
    expect((req!.json() as { status: string }).status).toBe('completed');
    await waitFor(async () => (await runhook.store.get(run.id))?.callback_status_code === 200, 15_000, 'the delivery to be recorded');
    const attempts = await runhook.store.callbackAttempts(run.id);
    expect(attempts.filter((a) => a.error === null)).toHaveLength(1);
  });

  it('does not send a manual retry job either', async () => {
    const { runhook } = api.service;
    const { run } = await runhook.createRun({ agent_id: 'a-stale', callback_url: receiver.url('/hook') });
    await runhook.store.transition(run.id, 'running');
    const jobId = `${callbackJobId(run.id)}-retry-1`;
    await runhook.callbackQueue.add('deliver', { run_id: run.id, manual: true }, callbackJobOptions(api.config, run.id, { jobId }));
    await waitFor(async () => {
      const state = await (await runhook.callbackQueue.getJob(jobId))?.getState();
      return state === 'delayed' || state === 'completed' || state === 'failed';
    }, 15_000, 'the manual job to be handled');
    expect(receiver.requests).toHaveLength(0);
    expect(await runhook.store.callbackAttempts(run.id)).toEqual([]);
  });
});
