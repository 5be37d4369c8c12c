import { fileURLToPath } from 'node:url';
import Letta from '@letta-ai/letta-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { CHUNKS, JOINED } from '../helpers/letta-chunks-processor.ts';
import { waitFor } from '../helpers/setup.ts';

const PROCESSOR = fileURLToPath(new URL('../helpers/letta-chunks-processor.ts', import.meta.url));

/**
 * Issue 16, item 5: a run's messages list pages to its end for every message type. Chunks that share an
 * id and a type are joined (reasoning, tool calls, tool returns, hidden reasoning, as well as assistant
 * content), as Letta merges them, and no message is returned twice, so the SDK's auto-pagination ends.
 */
describe("a run's messages, streamed in chunks of every type, listed with the Letta SDK", () => {
  let api: ApiHarness;
  let letta: Letta;
  let runId: string;

  beforeAll(async () => {
    api = await startApiService({ processor: PROCESSOR }, ['runs']);
    letta = new Letta({ baseURL: api.url, apiKey: 'unused', maxRetries: 0 });
    const run = await letta.agents.messages.createAsync('agent-chunks', { input: 'what is the weather?' });
    runId = run.id;
    await waitFor(async () => (await letta.runs.retrieve(runId)).status === 'completed');
  });
  afterAll(() => api.close());

  /** Auto-paginates, stopping (and failing) if the walk yields more than every chunk could make. */
  const walk = async (query: { limit?: number; order?: 'asc' | 'desc' } = {}) => {
    const out: Record<string, unknown>[] = [];
    for await (const m of letta.runs.messages.list(runId, query)) {
      out.push(m as unknown as Record<string, unknown>);
      if (out.length > CHUNKS.length) break;
    }
    return out;
  };

  const strip = (ms: Record<string, unknown>[]) => ms.map(({ date: _d, run_id: _r, seq_id: _s, ...rest }) => rest);

  it('joins the chunks of each message and returns each message once, whatever the page size', async () => {
    for (const limit of [1, 2, 3, 100]) {
      expect(strip(await walk({ limit })), `limit ${limit}`).toEqual(JOINED);
    }
  });

  it('pages newest first just as well', async () => {
    for (const limit of [1, 2, 100]) {
      const ids = (await walk({ limit, order: 'desc' })).map((m) => `${String(m.id)}/${String(m.message_type)}`);
      // Messages that share an id keep their order within it; the ids come newest first.
      expect(ids, `limit ${limit}`).toEqual([
        'message-step4/reasoning_message',
        'message-step4/assistant_message',
        'message-step3/hidden_reasoning_message',
        'message-step2/tool_call_message',
        'message-ret1/tool_return_message',
        'message-step1/reasoning_message',
        'message-step1/tool_call_message',
      ]);
    }
  });

  it('gives each joined message the seq id of its last chunk', async () => {
    const all = await walk();
    const seqOfLast = (id: string, type: string) => 1 + CHUNKS.findLastIndex((c) => c.id === id && c.message_type === type);
    for (const m of all) expect(m.seq_id).toBe(seqOfLast(String(m.id), String(m.message_type)));
  });
});
