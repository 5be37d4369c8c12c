import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readQueuesReport } from '../../src/monitoring/queue-state.ts';
import { renderStatus } from '../../src/monitoring/status-view.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';

describe('runs held by flow control are visible', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    // The API alone: nothing runs, so what is held stays held.
    api = await startApiService({ agentConcurrency: 1 });
  });
  afterAll(() => api.close());

  it('in GET /v1/queues, /metrics and runhook status; priority and run_at in the Run and the list', async () => {
    const post = async (json: Record<string, unknown>) => (await api.call('/v1/runs', { method: 'POST', json })).json() as Promise<Record<string, unknown>>;
    // Conversation c1: its first run takes agent a's one slot, the next two wait behind it.
    for (let i = 0; i < 3; i++) await post({ agent_id: 'a', conversation_id: 'c1', input: { text: 'x' } });
    // Without a conversation, agent a's next two wait on the limit.
    const p = await post({ agent_id: 'a', priority: 5, run_at: '2030-01-01T00:00:00Z', input: { text: 'y' } });
    await post({ agent_id: 'a', input: { text: 'z' } });
    expect(p).toMatchObject({ status: 'created', priority: 5, run_at: '2030-01-01T00:00:00.000Z' });

    const queues = (await (await api.call('/v1/queues')).json()) as { flow: unknown };
    expect(queues.flow).toEqual({ waiting_on_conversation: 2, waiting_on_limit: 2 });

    const metrics = await (await api.call('/metrics')).text();
    expect(metrics).toMatch(/runhook_flow_waiting_runs\{reason="conversation"\} 2/);
    expect(metrics).toMatch(/runhook_flow_waiting_runs\{reason="limit"\} 2/);

    const view = renderStatus(await readQueuesReport(api.service.runhook), { where: 'test' });
    expect(view).toMatch(/^HELD\s+on conversation 2 · on limit 2$/m);

    const list = (await (await api.call('/v1/runs?agent_id=a&order=asc')).json()) as Array<Record<string, unknown>>;
    expect(list.map((r) => r.status)).toEqual(['created', 'created', 'created', 'created', 'created']);
    expect(list[3]).toMatchObject({ priority: 5, run_at: '2030-01-01T00:00:00.000Z' });
    expect(list[0]).toMatchObject({ priority: null, run_at: null });
  });

  it('refuses a priority outside 1..100 and a run_at that is not a time', async () => {
    for (const bad of [{ priority: 0 }, { priority: 101 }, { priority: 1.5 }, { run_at: 'tomorrow' }]) {
      const res = await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'b', ...bad } });
      expect(res.status).toBe(422);
    }
  });
});
