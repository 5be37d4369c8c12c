import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRecovery, runRecovery, type CallbackRecovery } from '../../src/callbacks/recover.ts';
import { verifyCallback } from '../../src/callbacks/verify.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

const secret = `whsec_${randomBytes(24).toString('base64')}`;

/**
 * Callback recovery (CONTRACT section 10): after a receiver outage, POST /v1/callbacks/recover sends
 * again the callbacks given up in a window, with the webhook-id they had, and only those.
 */
describe('POST /v1/callbacks/recover after a receiver outage', () => {
  let h: ApiHarness;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await Receiver.start({ status: 503 });
    h = await startApiService(
      // Two quick attempts, then given up; the breaker is kept out of the way (callbacks-breaker.test.ts).
      { webhookSecret: secret, callbackTimeoutMs: 1_000, callbackRetryDelaysMs: [0, 10], callbackBreakerFailures: 10_000 },
      ['runs', 'callbacks'],
    );
  });
  afterAll(async () => {
    await h?.close();
    await receiver?.close();
  });

  const store = () => h.service.runhook.store;
  const inGivenUp = (id: string) => h.service.runhook.redis.zscore(store().keys.callbackGivenUp, id);
  const state = (id: string) => h.service.runhook.redis.hget(store().keys.run(id), 'callback_state');
  const create = async (agent: string) => {
    const res = await h.call('/v1/runs', { method: 'POST', json: { agent_id: agent, input: { text: `for ${agent}` }, callback_url: receiver.url('/hook') } });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };
  const givenUp = (ids: string[]) =>
    waitFor(async () => (await Promise.all(ids.map(state))).every((s) => s === 'given_up'), 15_000, 'the callbacks to be given up');
  const recover = async (body: Record<string, unknown>) => {
    const res = await h.call('/v1/callbacks/recover', { method: 'POST', json: body });
    expect(res.status).toBe(202);
    const op = (await res.json()) as CallbackRecovery;
    expect(op).toMatchObject({ action: 'recover', status: 'running' });
    return waitFor(async () => {
      const r = (await (await h.call(`/v1/callbacks/recover/${op.id}`)).json()) as CallbackRecovery;
      return r.status === 'done' ? r : undefined;
    }, 15_000, 'the recovery to finish');
  };
  const webhookIdsOf = (from: number) => receiver.requests.slice(from).map((r) => r.headers['webhook-id']);

  let early: string;
  let since: string;
  const a: string[] = [];
  const b: string[] = [];

  it('records given-up callbacks in the given-up index, by when they were given up', async () => {
    early = await create('agent-a');
    await givenUp([early]);
    since = new Date(Date.now() + 1).toISOString();
    await waitFor(() => Date.parse(since) < Date.now(), 1_000, 'the clock to pass since');
    for (let i = 0; i < 6; i++) a.push(await create('agent-a'));
    for (let i = 0; i < 3; i++) b.push(await create('agent-b'));
    await givenUp([...a, ...b]);
    for (const id of [early, ...a, ...b]) expect(await inGivenUp(id)).not.toBeNull();
    // Two attempts each, every one with the run's webhook-id.
    expect(receiver.requests).toHaveLength(2 * 10);
    expect((await store().callbackCounts()).given_up).toBe(10);
  });

  it("sends again the agent's callbacks given up in the window, with the same webhook-id, once the receiver is back", async () => {
    receiver.answer({ status: 200 });
    const from = receiver.requests.length;
    const op = await recover({ since, agent_id: 'agent-a' });
    expect(op).toMatchObject({ status: 'done', matched: 6, done: 6, failed: 0, agent_id: 'agent-a' });
    // A bulk operation of its own kind: readable where the others are, too.
    expect(await (await h.call(`/v1/runs/bulk/${op.id}`)).json()).toEqual(op);
    await receiver.waitForRequests(from + 6);
    await waitFor(async () => (await Promise.all(a.map(state))).every((s) => s === 'delivered'), 15_000, 'the recovered callbacks to be delivered');
    expect(webhookIdsOf(from).sort()).toEqual(a.map((id) => `msg_${id}`).sort());
    for (const r of receiver.requests.slice(from)) {
      const payload = verifyCallback(secret, r.headers, r.body);
      expect(a).toContain(payload.run_id);
    }
    // Delivered now: out of the given-up index. The other agent's and the earlier one stay given up.
    for (const id of a) expect(await inGivenUp(id)).toBeNull();
    for (const id of [early, ...b]) expect(await state(id)).toBe('given_up');
    const attempts = await store().callbackAttempts(a[0]!);
    expect(attempts.map((x) => x.status_code)).toEqual([503, 503, 200]);
    expect(await store().callbackCounts()).toMatchObject({ given_up: 4, delivered: 6 });
  });

  it('forgets a deleted run, and a second recovery of the whole window sends only what is still given up', async () => {
    const gone = b.pop()!;
    expect((await h.call(`/v1/runs/${gone}`, { method: 'DELETE' })).status).toBe(200);
    expect(await inGivenUp(gone)).toBeNull();

    const from = receiver.requests.length;
    const op = await recover({ since, until: new Date().toISOString() });
    expect(op).toMatchObject({ matched: 2, done: 2, failed: 0, agent_id: null });
    await waitFor(async () => (await Promise.all(b.map(state))).every((s) => s === 'delivered'), 15_000, "agent-b's callbacks to be delivered");
    expect(webhookIdsOf(from).sort()).toEqual(b.map((id) => `msg_${id}`).sort());
    expect(await state(early)).toBe('given_up');
    expect(await h.service.runhook.redis.zcard(store().keys.callbackGivenUp)).toBe(1);
  });

  it('refuses a window that ends before it starts, and answers 404 for an unknown operation', async () => {
    const res = await h.call('/v1/callbacks/recover', { method: 'POST', json: { since: new Date().toISOString(), until: '2020-01-01T00:00:00Z' } });
    expect(res.status).toBe(422);
    expect((await h.call('/v1/callbacks/recover/recover-00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });
});

describe('a callback recovery resumed after a crash', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    // The API alone: the recover job is run here by hand, as a callback worker would.
    h = await startApiService({ callbackRetryDelaysMs: [0, 10] });
  });
  afterAll(() => h?.close());

  it('acts once per run when a page is walked again (the crash came after its jobs were added, before its position was written)', async () => {
    const rh = h.service.runhook;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { run } = await rh.createRun({ agent_id: 'agent-crash', input: { text: 'x' }, callback_url: 'http://127.0.0.1:1/hook' });
      await rh.store.transition(run.id, 'running', { attempt: 1 });
      await rh.store.transition(run.id, 'completed', { attempt: 1 });
      await rh.store.recordCallbackAttempt(
        run.id,
        { attempt: 1, at: new Date().toISOString(), status_code: null, error: 'connection refused', duration_ms: 1, gave_up: true },
        Date.now() * 1000,
      );
      ids.push(run.id);
    }
    const since = new Date(Date.now() - 60_000).toISOString();
    const res = await h.call('/v1/callbacks/recover', { method: 'POST', json: { since } });
    expect(res.status).toBe(202);
    const op = (await res.json()) as CallbackRecovery;
    const deps = { config: h.config, redis: rh.redis, keys: rh.store.keys, queue: rh.callbackQueue };
    // A worker walks it, dies before it records being done: the next one walks the same page again.
    await runRecovery(deps, op.id);
    await rh.redis.hset(rh.store.keys.callbackRecovery(op.id), { status: 'running', pos: 0, matched: 0, done: 0, failed: 0 });
    await runRecovery(deps, op.id);
    expect(await getRecovery(deps, op.id)).toMatchObject({ status: 'done', matched: 5, done: 5, failed: 0 });
    const jobs = await rh.callbackQueue.getJobs(['waiting', 'delayed', 'prioritized']);
    const forOp = jobs.filter((j) => j.name === 'deliver' && j.id?.endsWith(op.id));
    expect(forOp.map((j) => j.data.run_id).sort()).toEqual([...ids].sort());
    for (const j of forOp) expect(j.data.manual).toBe(true);
  });
});
