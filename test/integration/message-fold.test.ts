import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLog } from '../../src/runs/message-log.ts';
import { sweepExpiredRuns } from '../../src/runs/retention.ts';
import type { Run } from '../../src/runs/schema.ts';
import { readSse, sseData, startApiService, type ApiHarness, type SseEvent } from '../helpers/api.ts';
import { CHUNKS, JOINED } from '../helpers/letta-chunks-processor.ts';
import { Receiver } from '../helpers/receiver.ts';
import { silentLog, waitFor } from '../helpers/setup.ts';
import { realisticRun } from '../../bench/realistic-payload.ts';

const PROCESSOR = fileURLToPath(new URL('../helpers/letta-chunks-processor.ts', import.meta.url));

const json = async <T>(res: Response) => (await res.json()) as T;
const strip = (ms: Record<string, unknown>[]) => ms.map(({ date: _d, run_id: _r, seq_id: _s, ...rest }) => rest);
const seqIds = (events: SseEvent[]) => events.filter((e) => e.id !== undefined).map((e) => Number(e.id));
const stream = async (api: ApiHarness, id: string, after?: number) =>
  readSse(await api.call(`/v1/runs/${id}/stream`, { method: 'POST', json: after === undefined ? {} : { starting_after: after } }));

async function endedRun(api: ApiHarness, body: Record<string, unknown>): Promise<Run> {
  const run = await json<Run>(await api.call('/v1/runs', { method: 'POST', json: body }));
  return waitFor(async () => {
    const r = await json<Run>(await api.call(`/v1/runs/${run.id}`));
    return ['completed', 'failed', 'cancelled'].includes(r.status) && r;
  });
}

/** The stored log's form once the run's end has folded it. */
async function foldedLog(api: ApiHarness, id: string) {
  const redis = api.service.runhook.redis;
  return waitFor(async () => {
    const log = readLog(await redis.getBuffer(api.service.runhook.store.keys.messageLog(id)));
    return log?.form === 'folded' && log;
  });
}

/**
 * Issue 18: when a run ends, its chunks are folded into whole Letta messages and stored once; the chunks
 * stay for RUNHOOK_STREAM_REPLAY_MINUTES so that a stream resumes exactly, and after that a resume gets
 * whole messages. A run stored by the release before (its log every chunk, no fold marker) still reads.
 */
describe('message logs folded when a run ends', () => {
  let api: ApiHarness;
  /** A replay window so short that a test can wait for it to close. */
  let shortWindow: ApiHarness;

  beforeAll(async () => {
    [api, shortWindow] = await Promise.all([
      startApiService({ processor: PROCESSOR }, ['runs']),
      startApiService({ processor: PROCESSOR, streamReplayMs: 1_000 }, ['runs']),
    ]);
  });
  afterAll(() => Promise.all([api.close(), shortWindow.close()]));

  it('lists the same whole messages from the folded log as from the chunks, and keeps the chunks for the window', async () => {
    const run = await endedRun(api, { agent_id: 'a', input: 'x' });
    const log = await foldedLog(api, run.id);
    expect(log.exact).toBe(false);
    expect(strip(await json(await api.call(`/v1/runs/${run.id}/messages`)))).toEqual(JOINED);
    const chunkKey = api.service.runhook.store.keys.messageChunks(run.id);
    const ttl = await api.service.runhook.redis.pttl(chunkKey);
    expect(ttl).toBeGreaterThan(59 * 60_000);
    expect(ttl).toBeLessThanOrEqual(60 * 60_000);
  });

  it('resumes exactly within the replay window: the chunks after starting_after, one by one', async () => {
    const run = await endedRun(api, { agent_id: 'a', input: 'x' });
    await foldedLog(api, run.id);
    const after = await stream(api, run.id, 6);
    expect(seqIds(after)).toEqual([7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const data = sseData(after);
    expect(strip(data.slice(0, 8))).toEqual(CHUNKS.slice(6).map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined))));
    expect(data[8]).toEqual({ message_type: 'stop_reason', stop_reason: 'end_turn', seq_id: 15 });
  });

  it('after the window, a resume gets whole every message not finished at starting_after, and an ended stream stays ended', async () => {
    const run = await endedRun(shortWindow, { agent_id: 'a', input: 'x' });
    await foldedLog(shortWindow, run.id);
    const chunkKey = shortWindow.service.runhook.store.keys.messageChunks(run.id);
    await waitFor(async () => (await shortWindow.service.runhook.redis.exists(chunkKey)) === 0, 10_000, 'the replay window to close');

    // From the start: every message once, whole, each with the seq id of its last chunk, then the end.
    const all = await stream(shortWindow, run.id);
    expect(strip(sseData(all).filter((d) => d.message_type !== 'stop_reason' && d.message_type !== 'usage_statistics'))).toEqual(JOINED);
    expect(seqIds(all)).toEqual([2, 4, 7, 9, 11, 12, 14, 15]);
    expect(all.at(-1)!.data).toBe('[DONE]');

    // Cut in the middle of the tool return (chunks 5 and 7): it comes again whole, the ones finished before do not.
    const resumed = await stream(shortWindow, run.id, 6);
    expect(seqIds(resumed)).toEqual([7, 9, 11, 12, 14, 15]);
    expect(strip(sseData(resumed).slice(0, 5))).toEqual(JOINED.slice(2));

    // Seq ids only grow, so resuming from the last one seen never starts over (no reconnect loop).
    const last = await stream(shortWindow, run.id, 15);
    expect(last.map((e) => (e.data === '[DONE]' ? e.data : (JSON.parse(e.data) as { message_type: string }).message_type))).toEqual(['usage_statistics', '[DONE]']);
    expect(strip(await json(await shortWindow.call(`/v1/runs/${run.id}/messages`)))).toEqual(JOINED);
  });

  it('with a window of 0 keeps no chunks, and a run whose every message was one chunk needs none', async () => {
    const none = await startApiService({ processor: PROCESSOR, streamReplayMs: 0 }, ['runs']);
    try {
      const run = await endedRun(none, { agent_id: 'a', input: 'x' });
      await foldedLog(none, run.id);
      expect(await none.service.runhook.redis.exists(none.service.runhook.store.keys.messageChunks(run.id))).toBe(0);
      expect(strip(await json(await none.call(`/v1/runs/${run.id}/messages`)))).toEqual(JOINED);
    } finally {
      await none.close();
    }
    // Echo's "hi" is one chunk: the folded form is the stream itself, exact for ever.
    const echo = await startApiService({}, ['runs']);
    try {
      const run = await endedRun(echo, { agent_id: 'a', input: { text: 'hi' } });
      expect((await foldedLog(echo, run.id)).exact).toBe(true);
      // Folded by the script that ended it: never in the set of logs still to fold.
      expect(await echo.service.runhook.redis.zcard(echo.service.runhook.store.keys.unfoldedLogs)).toBe(0);
      expect(await echo.service.runhook.redis.exists(echo.service.runhook.store.keys.messageChunks(run.id))).toBe(0);
      expect(seqIds(await stream(echo, run.id, 0))).toEqual([1, 2]);
      expect(sseData(await stream(echo, run.id, 0))[0]).toMatchObject({ content: 'hi', seq_id: 1 });
    } finally {
      await echo.close();
    }
  });

  it('compresses a large input and a large folded log, and every reader gets them back as they were', async () => {
    const receiver = await Receiver.start({ status: 500 }, { status: 200 });
    const echo = await startApiService({}, ['runs', 'callbacks']);
    try {
      const body = realisticRun(3, receiver.url('/hook'));
      const run = await endedRun(echo, body);
      const { redis, store } = echo.service.runhook;
      const hash = await redis.hgetall(store.keys.run(run.id));
      expect(hash.input).toBeUndefined();
      expect(hash.input_z!.length).toBeLessThan(JSON.stringify(body.input).length * 0.75);
      expect((await store.getRecord(run.id))!.input).toEqual(body.input);
      await foldedLog(echo, run.id);
      const stored = (await redis.getBuffer(store.keys.messageLog(run.id)))!;
      expect(String.fromCharCode(stored[0]!)).toBe('Z');
      expect(stored.length).toBeLessThan(body.input.text.length * 0.75);
      const messages = await json<Record<string, unknown>[]>(await echo.call(`/v1/runs/${run.id}/messages`));
      expect(messages).toHaveLength(1);
      expect(messages[0]!.content).toBe(body.input.text);
      // The first attempt reads the log the end returned; the retry reads the stored, folded one.
      const [first, retry] = await receiver.waitForRequests(2);
      const result = (r: typeof first) => (r!.json() as { metadata: { result: { messages: unknown[] } } }).metadata.result.messages;
      expect(result(retry)).toEqual(result(first));
      expect(result(retry)).toEqual(messages);
      // Within the window the stream is every chunk, exact.
      const events = await stream(echo, run.id, 399);
      expect(seqIds(events)).toEqual([400, 401]);
    } finally {
      await echo.close();
      await receiver.close();
    }
  });

  it('folds in the maintenance pass a log whose run ended without its fold (a process died in between)', async () => {
    const run = await endedRun(api, { agent_id: 'a', input: 'x' });
    const { redis, store } = api.service.runhook;
    await foldedLog(api, run.id);
    // Put back what transition-run.lua leaves before the fold: the chunk lines, and the run in the unfolded set.
    const chunkText = await chunkLines(api, run.id);
    await redis.set(store.keys.messageLog(run.id), chunkText);
    await redis.del(store.keys.messageChunks(run.id));
    await redis.zadd(store.keys.unfoldedLogs, Date.now() - 60_000, run.id);
    expect(readLog(await redis.getBuffer(store.keys.messageLog(run.id)))!.form).toBe('chunks');
    expect(strip(await json(await api.call(`/v1/runs/${run.id}/messages`)))).toEqual(JOINED);

    await sweepExpiredRuns(store, silentLog);
    expect((await foldedLog(api, run.id)).form).toBe('folded');
    expect(await redis.zscore(store.keys.unfoldedLogs, run.id)).toBeNull();
    expect(strip(await json(await api.call(`/v1/runs/${run.id}/messages`)))).toEqual(JOINED);
  });
});

/** The chunk lines of a run, as transition-run.lua writes them (read back from the chunk copy). */
async function chunkLines(api: ApiHarness, id: string): Promise<string> {
  const entries = await api.service.runhook.store.streamEntries(id, 0, 10_000);
  return entries.map((e) => (e.kind === 'stop' ? `${e.seq_id}\ts\t${e.stop_reason ?? ''}` : `${e.seq_id}\tm\t${JSON.stringify(e.message)}`)).join('\n');
}

interface Fixture {
  prefix: string;
  run_id: string;
  keys: Record<string, { type: 'hash' | 'string' | 'zset'; value: Record<string, string> | string | string[] }>;
}

describe('a run stored before logs were folded', () => {
  let api: ApiHarness;
  const fixture = JSON.parse(readFileSync(new URL('../fixtures/old-format-run.json', import.meta.url), 'utf8')) as Fixture;
  const id = fixture.run_id;

  beforeAll(async () => {
    api = await startApiService({}, ['runs']);
    // Written back key by key under this test's prefix, exactly as the earlier release left them.
    const { redis } = api.service.runhook;
    const prefix = api.service.runhook.store.keys.prefix;
    for (const [name, k] of Object.entries(fixture.keys)) {
      const key = `${prefix}:${name}`;
      if (k.type === 'hash') await redis.hset(key, k.value as Record<string, string>);
      else if (k.type === 'string') await redis.set(key, k.value as string);
      else {
        const v = k.value as string[];
        for (let i = 0; i < v.length; i += 2) await redis.zadd(key, v[i + 1]!, v[i]!);
      }
    }
  });
  afterAll(() => api.close());

  it('is read, listed, its messages joined and its stream resumed exactly', async () => {
    const run = await json<Run>(await api.call(`/v1/runs/${id}`));
    expect(run).toMatchObject({ id, status: 'completed', agent_id: 'agent-old', metadata: { team: 'legacy' }, stop_reason: 'end_turn' });
    expect((await api.service.runhook.store.getRecord(id))!.input).toEqual({ text: 'tell me about the old format' });
    const listed = await json<Run[]>(await api.call('/v1/runs?agent_id=agent-old'));
    expect(listed.map((r) => r.id)).toEqual([id]);

    const messages = await json<Record<string, unknown>[]>(await api.call(`/v1/runs/${id}/messages`));
    expect(strip(messages)).toEqual([
      { id: 'message-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d', message_type: 'reasoning_message', reasoning: 'The user asks about it.' },
      { id: 'message-6b0d1c7e-2f3a-4b5c-9d8e-7f6a5b4c3d2e', message_type: 'assistant_message', content: 'The old format kept every chunk.' },
    ]);

    const resumed = await stream(api, id, 4);
    expect(seqIds(resumed)).toEqual([5, 6, 7, 8, 9]);
    expect(sseData(resumed).slice(0, 4).map((d) => d.content)).toEqual(['format ', 'kept ', 'every ', 'chunk.']);
  });

  it('is removed whole by retention', async () => {
    const { redis, store } = api.service.runhook;
    expect(await sweepExpiredRuns(store, silentLog, Date.now() + 365 * 86_400_000)).toBe(1);
    const prefix = store.keys.prefix;
    const left = (await redis.keys(`${prefix}:*${id}*`)).concat(
      ...(await Promise.all(['idx:all', 'idx:agent:agent-old', 'idx:status:completed', 'expiry'].map(async (k) => ((await redis.zscore(`${prefix}:${k}`, id)) === null ? [] : [k])))),
    );
    expect(left).toEqual([]);
  });
});
