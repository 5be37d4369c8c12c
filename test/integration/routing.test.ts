import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJobOptions } from '../../src/queue/queues.ts';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { waitFor } from '../helpers/setup.ts';

const STEPS_PROCESSOR = fileURLToPath(new URL('../helpers/steps-processor.ts', import.meta.url));

describe('which processor runs a run', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService({ processor: 'echo', routes: [{ agent: 'steps-*', processor: STEPS_PROCESSOR }] }, ['runs']);
  });
  afterAll(() => api.close());

  const create = async (body: Record<string, unknown>) => api.call('/v1/runs', { method: 'POST', json: { input: { text: 'hi', steps: 2 }, ...body } });
  const finished = (id: string) =>
    waitFor(async () => {
      const run = (await (await api.call(`/v1/runs/${id}`)).json()) as Run;
      return run.status === 'completed' && run;
    });
  const models = async (id: string) => ((await (await api.call(`/v1/runs/${id}/steps?order=asc`)).json()) as { model: string }[]).map((s) => s.model);

  it('follows the first route whose glob matches the agent, and shows the choice on the run', async () => {
    const res = await create({ agent_id: 'steps-7' });
    expect(res.status).toBe(201);
    const run = (await res.json()) as Run;
    expect(run.processor).toBe(STEPS_PROCESSOR);
    await finished(run.id);
    expect(await models(run.id)).toEqual(['m1-0', 'm1-1']);
  });

  it('runs RUNHOOK_PROCESSOR for an agent no route matches', async () => {
    const run = (await (await create({ agent_id: 'other' })).json()) as Run;
    expect(run.processor).toBe('echo');
    await finished(run.id);
    expect(await models(run.id)).toEqual(['echo']);
  });

  it('takes the processor the request names over the routes', async () => {
    const run = (await (await create({ agent_id: 'steps-8', processor: 'echo' })).json()) as Run;
    expect(run.processor).toBe('echo');
    const done = await finished(run.id);
    expect(done.processor).toBe('echo');
    expect(await models(run.id)).toEqual(['echo']);
  });

  it('answers 400 UNKNOWN_PROCESSOR for a name the deployment does not run, and creates nothing', async () => {
    for (const processor of ['nope', '/tmp/evil.js', 'http']) {
      const res = await create({ agent_id: 'a-unknown', processor });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string; details: { known: string[] } } };
      expect(body.error.code).toBe('UNKNOWN_PROCESSOR');
      expect(body.error.message).toContain(`"${processor}"`);
      expect(body.error.details.known).toEqual(['echo', 'openai', STEPS_PROCESSOR]);
    }
    expect(await (await api.call('/v1/runs?agent_id=a-unknown')).json()).toEqual([]);
  });

  it('runs a run stored before runs kept their processor with the processor its agent routes to today', async () => {
    // As the previous release stored it: no processor field in the run hash.
    const { runhook } = api.service;
    const { record } = await runhook.store.create({ agent_id: 'steps-old', input: { steps: 1 } });
    await runhook.redis.hdel(runhook.store.keys.run(record.run.id), 'processor');
    await runhook.queue.add('run', { agent_id: 'steps-old' }, runJobOptions(api.config, record.run.id));
    const done = await finished(record.run.id);
    expect(done.processor).toBeNull();
    expect(await models(record.run.id)).toEqual(['m1-0']);
    expect(((await (await api.call('/v1/runs?agent_id=steps-old')).json()) as Run[]).map((r) => r.processor)).toEqual([null]);
  });

  it('labels the run histograms with the processor', async () => {
    const text = await (await api.call('/metrics')).text();
    expect(text).toMatch(/runhook_run_duration_seconds_count\{status="completed",processor="echo"\} [1-9]/);
    expect(text).toContain(`runhook_run_ttft_seconds_count{processor="${STEPS_PROCESSOR}"}`);
  });
});
