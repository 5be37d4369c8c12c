import Letta from '@letta-ai/letta-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepExpiredRuns } from '../../src/runs/retention.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { silentLog } from '../helpers/setup.ts';

/**
 * Issue 16, item 4: a cursor (a run id for the list, a message id for a run's messages) that names a run
 * or a message removed since still pages on from where it was, so that the SDK's auto-pagination never
 * throws halfway because a run was deleted or retention removed it.
 */
describe('cursors that name what was removed since', () => {
  let api: ApiHarness;
  let letta: Letta;

  beforeAll(async () => {
    api = await startApiService();
    letta = new Letta({ baseURL: api.url, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => api.close());

  /** `n` runs of one agent, created one after the other (so creation order is array order), ended. */
  const makeRuns = async (agent: string, n: number, end = true): Promise<string[]> => {
    const { store } = api.service.runhook;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const { record } = await store.create({ agent_id: agent });
      if (end) await store.transition(record.run.id, 'cancelled');
      ids.push(record.run.id);
    }
    return ids;
  };

  it('pages on after the run named by `after` is deleted, in both orders', async () => {
    for (const order of ['desc', 'asc'] as const) {
      const ids = await makeRuns(`cur-del-${order}`, 10);
      const want = order === 'asc' ? ids : [...ids].reverse();
      const first = await letta.runs.list({ agent_id: `cur-del-${order}`, order, limit: 3 });
      const got = first.getPaginatedItems().map((r) => r.id);
      expect(got).toEqual(want.slice(0, 3));
      // The cursor's run goes, and so does the one right after it.
      expect((await api.call(`/v1/runs/${got[2]}`, { method: 'DELETE' })).status).toBe(200);
      expect((await api.call(`/v1/runs/${want[3]}`, { method: 'DELETE' })).status).toBe(200);
      const rest: string[] = [];
      for await (const page of (await first.getNextPage()).iterPages()) rest.push(...page.getPaginatedItems().map((r) => r.id));
      expect(rest, order).toEqual(want.slice(4));
    }
  });

  it('answers `before` = a deleted run with the runs that come before its place', async () => {
    const ids = await makeRuns('cur-before', 6);
    await api.call(`/v1/runs/${ids[3]}`, { method: 'DELETE' });
    const res = await api.call(`/v1/runs?agent_id=cur-before&order=asc&before=${ids[3]}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }[]).map((r) => r.id)).toEqual(ids.slice(0, 3));
  });

  it("keeps the SDK's auto-pagination going when retention removes runs halfway", async () => {
    const { service, config } = api;
    const old = await makeRuns('cur-ret', 8);
    const seen: string[] = [];
    let swept = false;
    // Newest first: the walk reaches the oldest runs last, which are the ones retention removes first.
    for await (const run of letta.runs.list({ agent_id: 'cur-ret', limit: 2 })) {
      seen.push(run.id);
      if (seen.length === 4 && !swept) {
        swept = true;
        // Every one of these runs is past its retention now (the cursor's run included).
        expect(await sweepExpiredRuns(service.runhook.store, silentLog, Date.now() + config.retentionMs + 60_000)).toBeGreaterThanOrEqual(8);
      }
    }
    expect(seen).toEqual([...old].reverse().slice(0, 4));
  });

  it("still refuses a cursor that never was a run, as invalid input", async () => {
    const res = await api.call('/v1/runs?after=run-00000000-0000-4000-8000-000000000000');
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_INPUT');
  });

  it("pages on through a run's messages after the message named by `after` was dropped with its attempt", async () => {
    const { store } = api.service.runhook;
    const { record } = await store.create({ agent_id: 'cur-msgs' });
    const id = record.run.id;
    await store.start(id, 1);
    for (let k = 1; k <= 4; k++) await store.emit(id, 1, { id: `old-${k}`, message_type: 'assistant_message', content: `o${k}` });
    const firstPage = await letta.runs.messages.list(id, { limit: 2 });
    expect(firstPage.getPaginatedItems().map((m) => m.id)).toEqual(['old-1', 'old-2']);
    // The worker died; another attempt starts over, and the first attempt's messages are dropped.
    await store.start(id, 2);
    for (let k = 1; k <= 3; k++) await store.emit(id, 2, { id: `new-${k}`, message_type: 'assistant_message', content: `n${k}` });
    await store.transition(id, 'completed', { attempt: 2 });
    const rest: string[] = [];
    for await (const page of (await firstPage.getNextPage()).iterPages()) rest.push(...page.getPaginatedItems().map((m) => m.id));
    expect(rest).toEqual(['new-1', 'new-2', 'new-3']);
    const desc = await api.call(`/v1/runs/${id}/messages?order=desc&after=old-2`);
    expect(await desc.json()).toEqual([]);
  });
});
