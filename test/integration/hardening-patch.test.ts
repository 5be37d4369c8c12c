import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { json, startApiService, type ApiHarness, type ErrorAnswer } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { useTestStore, waitFor } from '../helpers/setup.ts';


describe('PATCH /v1/runs/{id} and completed_at', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService();
  });
  afterAll(() => api.close());

  const running = async (): Promise<Run> => {
    const run = await json<Run>(await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'a-patch' } }));
    expect((await api.call(`/v1/runs/${run.id}`, { method: 'PATCH', json: { status: 'running' } })).status).toBe(200);
    return run;
  };
  const patch = (id: string, body: unknown) => api.call(`/v1/runs/${id}`, { method: 'PATCH', json: body });
  const expectRefused = async (res: Response) => {
    expect([400, 422]).toContain(res.status);
    expect((await json<ErrorAnswer>(res)).error.code).toBe('INVALID_INPUT');
  };

  it('refuses a completed_at before the run was created, and changes nothing', async () => {
    const run = await running();
    await expectRefused(await patch(run.id, { status: 'cancelled', completed_at: '2000-01-01T00:00:00Z', metadata: { x: 1 } }));
    const after = await json<Run>(await api.call(`/v1/runs/${run.id}`));
    expect(after).toMatchObject({ status: 'running', completed_at: null, metadata: null });
    expect(await api.service.runhook.redis.zscore(api.service.runhook.store.keys.expiry, run.id)).toBeNull();
  });

  it('refuses a completed_at more than 5 s in the future, and one that is not a real time', async () => {
    const run = await running();
    await expectRefused(await patch(run.id, { status: 'completed', completed_at: new Date(Date.now() + 60_000).toISOString() }));
    await expectRefused(await patch(run.id, { status: 'completed', completed_at: '2026-02-31T00:00:00Z' }));
    await expectRefused(await patch(run.id, { status: 'completed', completed_at: 'yesterday' }));
    expect((await json<Run>(await api.call(`/v1/runs/${run.id}`))).status).toBe('running');
  });

  it('takes a completed_at between created_at and now, and counts retention from the server clock', async () => {
    const run = await running();
    const createdMs = Date.parse(run.created_at);
    // Let some time pass, so that the PATCH's own time is after the completed_at it sends.
    await waitFor(() => Date.now() > createdMs + 50, 5_000, 'time to pass');
    const before = Date.now();
    const res = await patch(run.id, { status: 'completed', completed_at: run.created_at });
    expect(res.status).toBe(200);
    expect(await json<Run>(res)).toMatchObject({ status: 'completed', completed_at: run.created_at, total_duration_ns: 0 });
    const expiry = Number(await api.service.runhook.redis.zscore(api.service.runhook.store.keys.expiry, run.id));
    expect(expiry).toBeGreaterThanOrEqual(before + api.config.retentionMs);
    expect(expiry).toBeLessThanOrEqual(Date.now() + api.config.retentionMs);
  });

  it('accepts a completed_at a little in the future (clock skew) without letting it drive retention', async () => {
    const run = await running();
    const res = await patch(run.id, { status: 'completed', completed_at: new Date(Date.now() + 2_000).toISOString() });
    expect(res.status).toBe(200);
    const expiry = Number(await api.service.runhook.redis.zscore(api.service.runhook.store.keys.expiry, run.id));
    expect(expiry).toBeLessThanOrEqual(Date.now() + api.config.retentionMs);
  });

  it('applies status, stop_reason and metadata all or nothing', async () => {
    const run = await running();
    // An illegal move leaves the metadata as it was.
    const illegal = await patch(run.id, { status: 'created', metadata: { lost: true } });
    expect(illegal.status).toBe(409);
    expect((await json<Run>(await api.call(`/v1/runs/${run.id}`))).metadata).toBeNull();
    const ok = await patch(run.id, { status: 'failed', stop_reason: 'llm_api_error', metadata: { kept: true } });
    expect(await json<Run>(ok)).toMatchObject({ status: 'failed', stop_reason: 'llm_api_error', metadata: { kept: true } });
    // A terminal run keeps its stop reason: asking another one is a 409 and the metadata stays.
    const other = await patch(run.id, { status: 'failed', stop_reason: 'error', metadata: { lost: true } });
    expect(other.status).toBe(409);
    expect((await json<Run>(await api.call(`/v1/runs/${run.id}`))).metadata).toEqual({ kept: true });
    // Metadata alone still changes on an ended run, as in Letta.
    const meta = await patch(run.id, { metadata: { later: 1 } });
    expect((await json<Run>(meta)).metadata).toEqual({ later: 1 });
  });
});

describe('PATCH to a terminal status with a callback', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await Receiver.start({ status: 200 });
    api = await startApiService({}, ['callbacks']);
  });
  afterAll(async () => {
    await api.close();
    await receiver.close();
  });

  it('sends the metadata of the same PATCH in the callback', async () => {
    // The process's own Runhook: it makes the first attempt at once, from what the terminal move returned.
    const { runhook } = api.service;
    const { run } = await runhook.createRun({ agent_id: 'a-patch', callback_url: receiver.url('/hook'), metadata: { before: true } });
    await runhook.updateRun(run.id, { status: 'running' });
    const ended = new Promise<Record<string, string>>((resolve) =>
      runhook.store.events.once('callback-due', (_id, e) => resolve(e.hash)),
    );
    const done = await runhook.updateRun(run.id, { status: 'completed', metadata: { after: true } });
    expect(done.metadata).toEqual({ after: true });
    expect(JSON.parse((await ended).metadata!)).toEqual({ after: true });
    const [req] = await receiver.waitForRequests(1);
    const body = req!.json() as { status: string; metadata: Record<string, unknown> };
    expect(body.status).toBe('completed');
    expect(body.metadata).toMatchObject({ after: true });
    expect(body.metadata.before).toBeUndefined();
  });
});

describe('the run store updating a run that is being deleted', () => {
  const t = useTestStore();

  it('leaves no orphan run key when a metadata or status update races a delete', async () => {
    for (const patch of [{ metadata: { x: 1 } }, { status: 'cancelled' as const, metadata: { x: 2 } }]) {
      const { record } = await t.store.create({ agent_id: 'a-race' });
      const id = record.run.id;
      // Both on one connection, sent in this order: the update's first command reaches Redis first.
      const [updated] = await Promise.allSettled([t.store.update(id, patch), t.store.delete(id)]);
      expect(await t.redis.exists(t.store.keys.run(id))).toBe(0);
      if (updated.status === 'rejected') expect((updated.reason as { code?: string }).code).toBe('RUN_NOT_FOUND');
    }
  });

  it('leaves no orphan run key when retention removes the run first', async () => {
    const { record } = await t.store.create({ agent_id: 'a-race' });
    const id = record.run.id;
    await t.store.delete(id);
    await expect(t.store.update(id, { metadata: { x: 1 } })).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    expect(await t.redis.exists(t.store.keys.run(id))).toBe(0);
  });
});
