import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { readSse, sseData, sseEvents, startApiService, type ApiHarness, type SseEvent } from '../helpers/api.ts';
import { closeRedis, connect, waitFor } from '../helpers/setup.ts';

const TEXT = 'one two three four five six seven eight nine ten';

const json = async <T>(res: Response) => (await res.json()) as T;

async function createRun(api: ApiHarness, input: unknown): Promise<Run> {
  return json<Run>(await api.call('/v1/runs', { method: 'POST', json: { agent_id: 's', input } }));
}

async function waitDone(api: ApiHarness, id: string): Promise<Run> {
  return waitFor(async () => {
    const r = await json<Run>(await api.call(`/v1/runs/${id}`));
    return ['completed', 'failed', 'cancelled'].includes(r.status) && r;
  });
}

const seqIds = (events: SseEvent[]) => events.filter((e) => e.id !== undefined).map((e) => Number(e.id));

describe("a run's SSE stream", () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService({}, ['runs']);
  });
  afterAll(() => api.close());

  it('sends every message with its seq_id, then the stop reason, usage and [DONE]', async () => {
    const run = await createRun(api, { text: TEXT });
    await waitDone(api, run.id);
    const res = await api.call(`/v1/runs/${run.id}/stream`, { method: 'POST', json: {} });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = await readSse(res);
    const data = sseData(events);
    const messages = data.filter((d) => d.message_type === 'assistant_message');
    expect(messages.map((m) => m.content).join('')).toBe(TEXT);
    expect(messages.map((m) => m.seq_id)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(data.at(-2)).toEqual({ message_type: 'stop_reason', stop_reason: 'end_turn', seq_id: 11 });
    expect(data.at(-1)).toMatchObject({ message_type: 'usage_statistics', completion_tokens: 10, run_ids: [run.id] });
    expect(events.at(-1)!.data).toBe('[DONE]');
    expect(seqIds(events)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  });

  it('resumes after a seq id once the run has ended: from the middle, and from its very end', async () => {
    const run = await createRun(api, { text: TEXT });
    await waitDone(api, run.id);
    const middle = await readSse(await api.call(`/v1/runs/${run.id}/stream`, { method: 'POST', json: { starting_after: 4 } }));
    expect(seqIds(middle)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    expect(sseData(middle)[0]).toMatchObject({ seq_id: 5, content: 'five ' });

    const get = await readSse(await api.call(`/v1/runs/${run.id}/stream?starting_after=9`));
    expect(seqIds(get)).toEqual([10, 11]);

    const end = await readSse(await api.call(`/v1/runs/${run.id}/stream`, { method: 'POST', json: { starting_after: 11 } }));
    // Past the stop reason, the stream still closes with the usage (as every stream does), then [DONE].
    expect(end.map((e) => (e.data === '[DONE]' ? e.data : (JSON.parse(e.data) as { message_type: string }).message_type))).toEqual(['usage_statistics', '[DONE]']);
  });

  it('resumes a live run with Last-Event-ID without a gap or a repeat', async () => {
    const run = await createRun(api, { text: TEXT, ttft_ms: 20, token_ms: 30 });
    const first = await api.call(`/v1/runs/${run.id}/stream`, { method: 'POST', json: {} });
    const seen: SseEvent[] = [];
    for await (const e of sseEvents(first)) {
      seen.push(e);
      if (seen.length === 3) break;
    }
    expect(seqIds(seen)).toEqual([1, 2, 3]);
    const rest = await readSse(await api.call(`/v1/runs/${run.id}/stream`, { headers: { 'last-event-id': seen.at(-1)!.id! } }));
    const all = [...seen, ...rest];
    expect(seqIds(all)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(sseData(all).filter((d) => d.message_type === 'assistant_message').map((d) => d.content).join('')).toBe(TEXT);
  });

  it('refuses a Last-Event-ID that is not a seq id', async () => {
    const run = await createRun(api, { text: 'x' });
    const res = await api.call(`/v1/runs/${run.id}/stream`, { headers: { 'last-event-id': 'abc' } });
    expect(res.status).toBe(422);
  });
});

describe('a stream of a run that waits', () => {
  let api: ApiHarness;
  let redis: Redis;
  beforeAll(async () => {
    api = await startApiService({ streamPingMs: 50 });
    redis = await connect();
  });
  afterAll(async () => {
    await closeRedis(redis);
    await api.close();
  });

  it('sends keep-alive pings (Letta ping messages, or comments), then the stop reason when the run is cancelled', async () => {
    const run = await createRun(api, { text: 'never runs' });
    const pings = sseEvents(await api.call(`/v1/runs/${run.id}/stream`, { method: 'POST', json: {} }));
    const comments = sseEvents(await api.call(`/v1/runs/${run.id}/stream?include_pings=false`));
    const firstPing = (await pings.next()).value as SseEvent;
    expect(JSON.parse(firstPing.data)).toMatchObject({ message_type: 'ping', run_id: run.id });
    const firstComment = (await comments.next()).value as SseEvent;
    expect(firstComment).toMatchObject({ comment: true, data: 'ping' });

    await api.call(`/v1/runs/${run.id}/cancel`, { method: 'POST' });
    for (const stream of [pings, comments]) {
      const rest: SseEvent[] = [];
      for await (const e of stream) rest.push(e);
      const data = sseData(rest).filter((d) => d.message_type !== 'ping');
      expect(data).toEqual([
        { message_type: 'stop_reason', stop_reason: 'cancelled', seq_id: 1 },
        { message_type: 'usage_statistics', prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, step_count: 0, run_ids: [run.id] },
      ]);
      expect(rest.at(-1)!.data).toBe('[DONE]');
    }
  });

  it("serves every client from the process's one stream reader, and lets go of a client's place when it goes", async () => {
    const name = `${api.config.keyPrefix}:streamhub`;
    const readers = async () => String(await redis.client('LIST')).split('\n').filter((l) => l.includes(` name=${name} `)).length;
    const runs = await Promise.all([createRun(api, { text: 'never runs' }), createRun(api, { text: 'never runs either' })]);
    const controllers = runs.flatMap(() => [new AbortController(), new AbortController()]);
    const streams = await Promise.all(
      controllers.map(async (c, i) => {
        const events = sseEvents(await api.call(`/v1/runs/${runs[i % 2]!.id}/stream`, { signal: c.signal }));
        await events.next();
        return events;
      }),
    );
    const gauge = async (metric: string) => {
      const text = await (await api.call('/metrics')).text();
      return Number(new RegExp(`^${metric} (\\d+)$`, 'm').exec(text)?.[1]);
    };
    await waitFor(async () => (await gauge('runhook_stream_watchers')) === 4, 10_000, 'four watchers');
    expect(await gauge('runhook_stream_reader_connections')).toBe(1);
    // Every API process reports its hub in Redis, so `runhook status` and GET /v1/queues add them up.
    const streamsReport = async () => ((await (await api.call('/v1/queues')).json()) as { streams: Record<string, number> }).streams;
    expect(await waitFor(async () => {
      const r = await streamsReport();
      return r.watchers === 4 ? r : undefined;
    }, 15_000, 'the hub to report four watchers')).toEqual({ watchers: 4, reader_connections: 1, api_processes: 1 });
    // Four clients on two live runs: one reader connection, not one per client.
    expect(await readers()).toBe(1);
    controllers.forEach((c) => c.abort());
    await Promise.all(streams.map((e) => e.return(undefined).catch(() => {})));
    await waitFor(async () => (await gauge('runhook_stream_watchers')) === 0, 10_000, 'the watchers to leave');
  });

  it('ends open streams when the server closes, so close() does not wait for their clients', async () => {
    const own = await startApiService({ streamPingMs: 50 });
    const run = await json<Run>(await own.call('/v1/runs', { method: 'POST', json: { agent_id: 's' } }));
    const events = sseEvents(await own.call(`/v1/runs/${run.id}/stream`));
    await events.next();
    await own.close();
    const rest: SseEvent[] = [];
    for await (const e of events) rest.push(e);
    expect(rest.every((e) => e.data !== '[DONE]')).toBe(true);
  });
});
