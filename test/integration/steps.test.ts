import Letta from '@letta-ai/letta-client';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { stepIdOf } from '../../src/runs/steps.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { waitFor } from '../helpers/setup.ts';

const STEPS_PROCESSOR = fileURLToPath(new URL('../helpers/steps-processor.ts', import.meta.url));

async function finished(api: ApiHarness, id: string): Promise<Run> {
  return waitFor(async () => {
    const run = (await (await api.call(`/v1/runs/${id}`)).json()) as Run;
    return ['completed', 'failed', 'cancelled'].includes(run.status) && run;
  });
}

async function create(api: ApiHarness, body: Record<string, unknown>): Promise<Run> {
  const res = await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'agent-steps', ...body } });
  expect(res.status).toBe(201);
  return (await res.json()) as Run;
}

describe('steps of the echo processor', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService({}, ['runs']);
  });
  afterAll(() => api.close());

  it('records one step per run, with its tokens and timings, counted in usage.step_count', async () => {
    const run = await create(api, { input: { text: 'one two three', ttft_ms: 5 } });
    await finished(api, run.id);
    const steps = (await (await api.call(`/v1/runs/${run.id}/steps`)).json()) as Record<string, unknown>[];
    expect(steps).toEqual([
      {
        id: stepIdOf(run.id, 0),
        run_id: run.id,
        agent_id: 'agent-steps',
        model: 'echo',
        provider_name: null,
        prompt_tokens: 3,
        completion_tokens: 3,
        total_tokens: 6,
        stop_reason: 'end_turn',
        status: 'success',
      },
    ]);
    expect(await (await api.call(`/v1/steps/${steps[0]!.id as string}`)).json()).toEqual(steps[0]);
    const metrics = (await (await api.call(`/v1/steps/${steps[0]!.id as string}/metrics`)).json()) as Record<string, number>;
    expect(metrics).toMatchObject({ id: steps[0]!.id, run_id: run.id, agent_id: 'agent-steps', tool_execution_ns: null });
    // The step spans the 5 ms wait before the first token, and it started after the run was created.
    expect(metrics.step_ns).toBeGreaterThanOrEqual(5_000_000);
    expect(metrics.llm_request_ns).toBe(metrics.step_ns);
    expect(metrics.step_start_ns).toBeGreaterThanOrEqual(Date.parse(run.created_at) * 1e6);
    expect(await (await api.call(`/v1/runs/${run.id}/usage`)).json()).toMatchObject({ step_count: 1, total_tokens: 6 });
  });

  it('answers 404 for a step or run that does not exist, and for the steps of a deleted run', async () => {
    const run = await create(api, { input: { text: 'bye' } });
    await finished(api, run.id);
    const stepId = stepIdOf(run.id, 0);
    expect((await api.call(`/v1/steps/${stepId}`)).status).toBe(200);
    expect((await api.call(`/v1/steps/${stepIdOf(run.id, 1)}`)).status).toBe(404);
    expect((await api.call(`/v1/runs/${run.id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    const gone = await api.call(`/v1/steps/${stepId}`);
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ error: { code: 'STEP_NOT_FOUND' } });
    expect((await api.call(`/v1/steps/${stepId}/metrics`)).status).toBe(404);
    expect((await api.call(`/v1/runs/${run.id}/steps`)).status).toBe(404);
    // Nothing of the run is left in Redis: its steps lived in its hash.
    const keys = await api.service.runhook.redis.keys(`${api.config.keyPrefix}:*${run.id.slice(4)}*`);
    expect(keys.filter((k) => !k.includes(':runs:gone'))).toEqual([]);
  });
});

describe('steps of a processor that records several, over retries', () => {
  let api: ApiHarness;
  let letta: Letta;
  beforeAll(async () => {
    api = await startApiService({ processor: STEPS_PROCESSOR, runAttempts: 3 }, ['runs']);
    letta = new Letta({ baseURL: api.url, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => api.close());

  it('keeps only the steps of the attempt that completed the run', async () => {
    const run = await create(api, { input: { steps: 3, fail_attempts: 2 } });
    const done = await finished(api, run.id);
    expect(done.status).toBe('completed');
    const steps = (await (await api.call(`/v1/runs/${run.id}/steps?order=asc`)).json()) as Record<string, unknown>[];
    expect(steps.map((s) => s.model)).toEqual(['m3-0', 'm3-1', 'm3-2']);
    expect(steps.map((s) => s.total_tokens)).toEqual([1, 3, 5]);
    expect(await (await api.call(`/v1/runs/${run.id}/usage`)).json()).toMatchObject({ step_count: 3 });
    expect(await (await api.call(`/v1/runs/${run.id}/metrics`)).json()).toMatchObject({ num_steps: 3, attempts: 3 });
  });

  it('keeps the steps of the last attempt of a run that failed', async () => {
    const run = await create(api, { input: { steps: 2, fail_attempts: 5 } });
    expect((await finished(api, run.id)).status).toBe('failed');
    const steps = (await (await api.call(`/v1/runs/${run.id}/steps?order=asc`)).json()) as Record<string, unknown>[];
    expect(steps.map((s) => s.model)).toEqual(['m3-0', 'm3-1']);
  });

  it('pages with after and before step ids, newest first by default', async () => {
    const run = await create(api, { input: { steps: 5 } });
    await finished(api, run.id);
    const page = async (q: string) =>
      ((await (await api.call(`/v1/runs/${run.id}/steps?${q}`)).json()) as { model: string }[]).map((s) => s.model);
    expect(await page('')).toEqual(['m1-4', 'm1-3', 'm1-2', 'm1-1', 'm1-0']);
    expect(await page('order=asc&limit=2')).toEqual(['m1-0', 'm1-1']);
    expect(await page(`order=asc&after=${stepIdOf(run.id, 1)}&limit=2`)).toEqual(['m1-2', 'm1-3']);
    expect(await page(`after=${stepIdOf(run.id, 3)}`)).toEqual(['m1-2', 'm1-1', 'm1-0']);
    expect(await page(`order=asc&before=${stepIdOf(run.id, 2)}`)).toEqual(['m1-0', 'm1-1']);
    const bad = await api.call(`/v1/runs/${run.id}/steps?after=${stepIdOf(run.id, 9)}`);
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
  });

  it("serves the Letta SDK's runs.steps.list, steps.retrieve and steps.metrics.retrieve", async () => {
    const run = await create(api, { input: { steps: 4 } });
    await finished(api, run.id);
    const listed = [];
    // The SDK pages forward with `after` = the last id it got.
    for await (const step of letta.runs.steps.list(run.id, { limit: 3, order: 'asc' })) listed.push(step);
    expect(listed.map((s) => s.model)).toEqual(['m1-0', 'm1-1', 'm1-2', 'm1-3']);
    expect(listed.every((s) => s.run_id === run.id && s.agent_id === 'agent-steps' && s.status === 'success')).toBe(true);
    const step = await letta.steps.retrieve(listed[2]!.id);
    expect(step).toMatchObject({ id: listed[2]!.id, model: 'm1-2', provider_name: 'test', prompt_tokens: 2, completion_tokens: 3, total_tokens: 5, stop_reason: 'end_turn' });
    const metrics = await letta.steps.metrics.retrieve(listed[2]!.id);
    expect(metrics).toMatchObject({ id: listed[2]!.id, run_id: run.id, llm_request_ns: 7000, step_ns: 9000 });
    expect(metrics.llm_request_start_ns! - metrics.step_start_ns!).toBeCloseTo(1000, -3);
  });
});
