import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleMessages } from '../../src/runs/messages.ts';
import type { Runhook } from '../../src/runhook.ts';
import { OpenAIServer } from '../helpers/openai-server.ts';
import { childEnv, startRunhook, type RunhookProcess } from '../helpers/processes.ts';
import { closeTestRunhook, openTestRunhook, testConfig, waitFor } from '../helpers/setup.ts';

// Short locks so a killed worker's job is recovered in a few seconds, not BullMQ's default 30 s. The
// processor is the default here too: the process that creates a run is the one that picks its processor.
const config = testConfig({ lockDurationMs: 2_000, stalledIntervalMs: 1_000, maxStalledCount: 1, processor: 'openai' });

let runhook: Runhook;
let server: OpenAIServer;
const children: RunhookProcess[] = [];

const first = { content: Array.from({ length: 40 }, (_, i) => `first${i} `), chunkDelayMs: 100, usage: { prompt_tokens: 5, completion_tokens: 40, total_tokens: 45 } };
const second = { content: ['second ', 'attempt ', 'answer'], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } };

function worker(): RunhookProcess {
  const p = startRunhook(
    ['worker', '--only', 'runs'],
    childEnv(config, {
      RUNHOOK_PROCESSOR: 'openai',
      RUNHOOK_OPENAI_BASE_URL: server.baseURL,
      RUNHOOK_OPENAI_MODEL: 'crash-model',
      RUNHOOK_LOCK_DURATION_MS: '2000',
      RUNHOOK_STALLED_INTERVAL_MS: '1000',
      RUNHOOK_MAINTENANCE_INTERVAL_MS: '1000',
      RUNHOOK_CREATED_GRACE_MS: '500',
      RUNHOOK_RUN_BACKOFF_MS: '10',
    }),
  );
  children.push(p);
  return p;
}

beforeAll(async () => {
  server = await OpenAIServer.start(first, second);
  runhook = await openTestRunhook(config);
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await closeTestRunhook(runhook);
  await server?.close();
});

describe('an openai run whose worker dies mid-stream', () => {
  it('is completed by a second attempt with only that attempt’s messages, usage and steps', async () => {
    const w1 = worker();
    await w1.waitForOutput('run worker started');
    const { run } = await runhook.createRun({ agent_id: 'crash-openai', input: { messages: [{ role: 'user', content: 'tell me' }] } });
    await waitFor(async () => (await runhook.store.streamEntries(run.id)).length >= 3, 15_000, 'the first attempt to stream');
    await w1.kill('SIGKILL');
    // The model server sees the dead worker's connection go.
    await server.clientClosed(0).catch((err: Error) => {
      const r = server.requests[0];
      throw new Error(`${err.message}; request 0: ${r ? `sent ${r.sent.length}, finished ${r.finished}` : 'none'}; ${server.requests.length} requests`);
    });

    const w2 = worker();
    await w2.waitForOutput('run worker started');
    const done = await runhook.waitForRun(run.id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.finished).toBe(true);

    const entries = await runhook.store.streamEntries(run.id);
    const messages = assembleMessages(entries);
    expect(messages.map((m) => [m.message_type, m.content])).toEqual([['assistant_message', 'second attempt answer']]);
    expect(entries.some((e) => e.kind === 'message' && String(e.message.content).startsWith('first'))).toBe(false);
    const record = await runhook.store.getRecord(run.id);
    expect(record?.usage).toMatchObject({ ...second.usage, step_count: 1 });
    const steps = await runhook.store.steps(run.id);
    expect(steps).toEqual([expect.objectContaining({ model: 'crash-model', ...second.usage, status: 'success', stop_reason: 'end_turn' })]);
    await w2.kill('SIGTERM');
  });
});
