import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { waitFor } from '../helpers/setup.ts';

const EXAMPLE = fileURLToPath(new URL('../../examples/http-service.py', import.meta.url));
const SECRET = 'whsec_ZXhhbXBsZSBzZXJ2aWNlIHNlY3JldCBmb3IgdGhlIGUyZSB0ZXN0';

/** examples/http-service.py as the README runs it: a real Python process beside runhook. */
describe('the Python example service behind the http processor', () => {
  let child: ChildProcess;
  let url: string;
  let api: ApiHarness;
  let wrongKey: ApiHarness;
  let output = '';

  beforeAll(async () => {
    child = spawn('python3', [EXAMPLE], { env: { PATH: process.env.PATH ?? '', RUNHOOK_HTTP_SECRET: SECRET, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        output += d.toString();
        const m = /listening on (\S+)/.exec(output);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`the example exited (${code}): ${output}`)));
    });
    api = await startApiService({ processor: 'http', httpUrl: url, httpSecret: SECRET }, ['runs']);
    wrongKey = await startApiService({ processor: 'http', httpUrl: url, httpSecret: 'whsec_bm90IHRoZSBzZXJ2aWNlJ3Mgc2VjcmV0' }, ['runs']);
  });
  afterAll(async () => {
    await api?.close();
    await wrongKey?.close();
    child?.kill('SIGTERM');
  });

  const ended = (h: ApiHarness, id: string) =>
    waitFor(async () => {
      const run = (await (await h.call(`/v1/runs/${id}`)).json()) as Run;
      return ['completed', 'failed', 'cancelled'].includes(run.status) && run;
    });

  it("streams the example's answer into the run: messages, a step, usage", async () => {
    const res = await api.call('/v1/agents/agent-py/messages/async', {
      method: 'POST',
      json: { messages: [{ role: 'user', content: 'hello from the test' }] },
    });
    const run = (await res.json()) as Run;
    expect(await ended(api, run.id)).toMatchObject({ status: 'completed', stop_reason: 'end_turn', processor: 'http' });
    const messages = (await (await api.call(`/v1/runs/${run.id}/messages`)).json()) as Record<string, unknown>[];
    expect(messages.map((m) => m.message_type)).toEqual(['reasoning_message', 'assistant_message']);
    expect(messages[1]!.content).toBe('HELLO FROM THE TEST');
    const steps = (await (await api.call(`/v1/runs/${run.id}/steps`)).json()) as Record<string, unknown>[];
    expect(steps).toMatchObject([{ model: 'shout-1', provider_name: 'examples/http-service.py', prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 }]);
    const metrics = (await (await api.call(`/v1/steps/${steps[0]!.id as string}/metrics`)).json()) as Record<string, number>;
    expect(metrics.step_ns).toBeGreaterThan(0);
    expect(await (await api.call(`/v1/runs/${run.id}/usage`)).json()).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8, step_count: 1 });
  });

  it('refuses a request signed with another secret, which fails the run at once', async () => {
    const run = (await (await wrongKey.call('/v1/runs', { method: 'POST', json: { agent_id: 'a', input: { text: 'x' } } })).json()) as Run;
    const done = await ended(wrongKey, run.id);
    expect(done.status).toBe('failed');
    expect(String((done.metadata as Record<string, unknown>).error)).toContain('401');
  });
});
