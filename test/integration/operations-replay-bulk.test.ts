import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunhookClient } from '../../src/client.ts';
import { BulkOperations } from '../../src/operations/bulk.ts';
import { replayIdFor } from '../../src/operations/replay.ts';
import type { BulkOperation } from '../../src/operations/schema.ts';
import { RUN_ID_PATTERN, type Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { silentLog, waitFor } from '../helpers/setup.ts';

let api: ApiHarness;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await Receiver.start({ status: 200 });
  api = await startApiService({ runAttempts: 1 }, ['runs', 'callbacks']);
});
afterAll(async () => {
  await api?.close();
  await receiver?.close();
});

async function json<T>(path: string, init: Parameters<ApiHarness['call']>[1] = {}, status?: number): Promise<T> {
  const res = await api.call(path, init);
  const body = (await res.json()) as T;
  if (status !== undefined) expect(res.status, JSON.stringify(body)).toBe(status);
  return body;
}
const create = (body: object) => json<Run>('/v1/runs', { method: 'POST', json: body }, 201);
const get = (id: string) => json<Run>(`/v1/runs/${id}`);
const ended = (id: string) => waitFor(async () => ((r) => (['completed', 'failed', 'cancelled'].includes(r.status) ? r : undefined))(await get(id)), 15_000, `run ${id} to end`);
const messagesText = async (id: string) =>
  (await json<Array<{ message_type: string; content?: string }>>(`/v1/runs/${id}/messages`))
    .filter((m) => m.message_type === 'assistant_message')
    .map((m) => m.content)
    .join('');
async function bulk(body: object): Promise<BulkOperation> {
  const op = await json<BulkOperation>('/v1/runs/bulk', { method: 'POST', json: body }, 202);
  return waitFor(async () => ((o) => (o.status !== 'running' ? o : undefined))(await json<BulkOperation>(`/v1/runs/bulk/${op.id}`)), 20_000, 'the bulk operation');
}

describe('POST /v1/runs/{id}/replay', () => {
  it("makes a new run with the original's agent, input, processor, request config, conversation, callback URL and metadata", async () => {
    const original = await create({
      agent_id: 'replay-agent',
      input: { text: 'say it again' },
      metadata: { customer: 'c-1' },
      conversation_id: 'conv-9',
      callback_url: receiver.url('/hook'),
      request_config: { use_assistant_message: true, assistant_message_tool_name: 'send_message', assistant_message_tool_kwarg: 'message', include_return_message_types: null },
      processor: 'echo',
    });
    await ended(original.id);
    // Once its callback is recorded too, so that nothing of the original moves after this snapshot.
    const before = await waitFor(async () => ((r) => (r.callback_status_code === 200 ? r : undefined))(await get(original.id)), 10_000, 'the callback');
    expect(before.status).toBe('completed');

    const replay = await json<Run>(`/v1/runs/${original.id}/replay`, { method: 'POST' }, 201);
    expect(replay.id).not.toBe(original.id);
    expect(replay.status).toBe('created');
    expect(replay.replay_of).toBe(original.id);
    for (const k of ['agent_id', 'metadata', 'conversation_id', 'callback_url', 'request_config', 'processor', 'base_template_id', 'background'] as const) {
      expect(replay[k], k).toEqual(before[k]);
    }
    const done = await ended(replay.id);
    expect(done.status).toBe('completed');
    expect(await messagesText(replay.id)).toBe('say it again');
    // The original is only read.
    expect(await get(original.id)).toEqual(before);
    expect(before.replay_of).toBeNull();
    // Each run has its own callback.
    await waitFor(() => receiver.requests.some((r) => (r.json() as { run_id?: string }).run_id === replay.id), 10_000, 'the replay callback');
  });

  it("replays a failed run without taking its error into the new run's metadata", async () => {
    const failed = await ended((await create({ agent_id: 'replay-agent', input: { text: 'x', fail: 'boom' }, metadata: { k: 1 } })).id);
    expect(failed.status).toBe('failed');
    expect(failed.metadata).toEqual({ k: 1, error: expect.stringContaining('boom') });
    const replay = await json<Run>(`/v1/runs/${failed.id}/replay`, { method: 'POST' }, 201);
    expect(replay.metadata).toEqual({ k: 1 });
  });

  it('is a 404 for a run that does not exist', async () => {
    const res = await api.call('/v1/runs/run-00000000-0000-4000-8000-000000000000/replay', { method: 'POST' });
    expect(res.status).toBe(404);
  });
});

describe('bulk actions', () => {
  it('replays the failed runs of an agent, each once, and leaves everything else alone', async () => {
    const failing = await Promise.all(Array.from({ length: 7 }, (_, i) => create({ agent_id: 'bulk-replay', input: { text: `t${i}`, fail: 'first time' } })));
    const fine = await Promise.all(Array.from({ length: 3 }, (_, i) => create({ agent_id: 'bulk-replay', input: { text: `ok${i}` } })));
    const other = await create({ agent_id: 'bulk-replay-other', input: { text: 'o', fail: 'other' } });
    for (const r of [...failing, ...fine, other]) await ended(r.id);

    const op = await bulk({ action: 'replay', filter: { agent_id: 'bulk-replay', statuses: ['failed'] } });
    expect(op).toMatchObject({ action: 'replay', status: 'done', matched: 7, done: 7, failed: 0, error: null });
    expect(op.completed_at).not.toBeNull();

    const runs = await json<Run[]>('/v1/runs?agent_id=bulk-replay&limit=100');
    const replays = runs.filter((r) => r.replay_of !== null);
    expect(replays.map((r) => r.replay_of).sort()).toEqual(failing.map((r) => r.id).sort());
    // The replay ids are the operation's: a resumed walk would name the same runs.
    expect(replays.map((r) => r.id).sort()).toEqual(failing.map((r) => replayIdFor(op.id, r.id)).sort());
    expect(runs).toHaveLength(17);
    for (const r of replays) expect((await ended(r.id)).status).toBe('failed');
    expect((await json<Run[]>('/v1/runs?agent_id=bulk-replay-other')).map((r) => r.id)).toEqual([other.id]);
  });

  it('deletes by agent and creation time, and cancels only what is still waiting', async () => {
    const old = await Promise.all(Array.from({ length: 4 }, () => create({ agent_id: 'bulk-delete', input: { text: 'old' } })));
    for (const r of old) await ended(r.id);
    const cut = new Date(Date.now() + 5).toISOString();
    await waitFor(() => Date.now() > Date.parse(cut) + 5, 1000, 'the clock to pass the cut');
    const recent = await Promise.all(Array.from({ length: 3 }, () => create({ agent_id: 'bulk-delete', input: { text: 'new' } })));
    for (const r of recent) await ended(r.id);

    const op = await bulk({ action: 'delete', filter: { agent_id: 'bulk-delete', created_before: cut } });
    expect(op).toMatchObject({ status: 'done', matched: 4, done: 4, failed: 0 });
    expect((await json<Run[]>('/v1/runs?agent_id=bulk-delete')).map((r) => r.id).sort()).toEqual(recent.map((r) => r.id).sort());

    // A cancel over ended runs matches none of them.
    const none = await bulk({ action: 'cancel', filter: { agent_id: 'bulk-delete' } });
    expect(none).toMatchObject({ status: 'done', matched: 0, done: 0 });
  });

  it('refuses an unknown action or filter field, and an unknown operation is a 404', async () => {
    expect((await api.call('/v1/runs/bulk', { method: 'POST', json: { action: 'explode', filter: {} } })).status).toBe(422);
    expect((await api.call('/v1/runs/bulk', { method: 'POST', json: { action: 'cancel', filter: { agent: 'x' } } })).status).toBe(422);
    expect((await api.call('/v1/runs/bulk', { method: 'POST', json: { action: 'cancel' } })).status).toBe(422);
    expect((await api.call('/v1/runs/bulk/bulk-00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await api.call('/v1/runs/bulk/nonsense')).status).toBe(404);
  });

  it('resumes a walk a crash interrupted: finishes what was matched and not recorded, once, then goes on from the cursor', async () => {
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const { runhook } = api.service;
    const mk = () => runhook.createRun({ agent_id: 'bulk-resume', input: { text: 'x' }, run_at: later }).then((r) => r.run);
    const older = [await mk(), await mk(), await mk()];
    const finished = await runhook.createRun({ agent_id: 'bulk-resume', input: { text: 'done' } }).then((r) => r.run);
    expect((await ended(finished.id)).status).toBe('completed');
    const newer = [await mk(), await mk()];
    // The state a worker killed mid-step leaves: the step's ids in `matched` with the cursor past them;
    // one of them cancelled and recorded, one cancelled but not recorded (killed in between), and one
    // that ended before the walk got to it (a cancel of it is refused). The older runs are not walked yet.
    await runhook.cancelRun(newer[1]!.id);
    await runhook.cancelRun(newer[0]!.id);
    const ops = new BulkOperations(runhook, silentLog);
    const id = 'bulk-11111111-2222-4333-8444-555555555555';
    await runhook.redis.hset(ops.keys.op(id), { id, action: 'cancel', filter: JSON.stringify({ agent_id: 'bulk-resume' }), status: 'running', created_us: String(Date.now() * 1000), upto: newer[1]!.id, cursor: finished.id });
    await runhook.redis.sadd(ops.keys.matched(id), newer[1]!.id, newer[0]!.id, finished.id);
    await runhook.redis.sadd(ops.keys.done(id), newer[1]!.id);
    const later2 = await mk(); // made after the operation began: not touched

    await ops.walk(id);
    const op = await ops.require(id);
    expect(op).toMatchObject({ status: 'done', matched: 6, done: 5, failed: 1 });
    for (const r of [...older, ...newer]) expect((await get(r.id)).status).toBe('cancelled');
    expect((await get(finished.id)).status).toBe('completed');
    expect((await get(later2.id)).status).toBe('created');
    expect(await runhook.redis.hget(ops.keys.op(id), 'last_failure')).toContain('RUN_ILLEGAL_TRANSITION');
    await ops.close();
  });

  it('is driven by RunhookClient too', async () => {
    const client = new RunhookClient({ baseUrl: api.url });
    try {
      const r = await client.createRun({ agent_id: 'bulk-client', input: { text: 'c' } });
      await client.waitForRun(r.id, { pollMs: 20 });
      const replay = await client.replayRun(r.id);
      expect(replay.replay_of).toBe(r.id);
      await client.waitForRun(replay.id, { pollMs: 20 });
      const op = await client.startBulkOperation({ action: 'delete', filter: { agent_id: 'bulk-client' } });
      const end = await waitFor(async () => ((o) => (o.status === 'done' ? o : undefined))(await client.getBulkOperation(op.id)), 10_000, 'the delete');
      expect(end).toMatchObject({ matched: 2, done: 2 });
    } finally {
      await client.close();
    }
  });

  it('derives replay ids in the shape of run ids', () => {
    const id = replayIdFor('bulk-1', 'run-2');
    expect(id).toMatch(RUN_ID_PATTERN);
    expect(replayIdFor('bulk-1', 'run-2')).toBe(id);
    expect(replayIdFor('bulk-1', 'run-3')).not.toBe(id);
  });
});
