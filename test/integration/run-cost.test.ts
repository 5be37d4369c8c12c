import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { payloadBytes, realisticRun } from '../../bench/realistic-payload.ts';
import { sweepExpiredRuns } from '../../src/runs/retention.ts';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { silentLog, waitFor } from '../helpers/setup.ts';

/** One key under the test's prefix: its name with the run id as <run>, type, MEMORY USAGE, and whether it names the run. */
interface KeyCost {
  key: string;
  type: string;
  bytes: number;
  /** The run's own key (its id in the name), or a shared structure holding an entry for it. */
  of: 'run' | 'entry' | 'shared';
}

/**
 * Issue 18 item 4: every byte one realistic run leaves in Redis (a 2 KB user message, metadata, a ~2 KB
 * answer streamed by echo in 400 chunks, a delivered callback), key by key with MEMORY USAGE, while the
 * stream replay window is open, after it, and after retention. Keys that were there before the run
 * (queue metadata, the API's presence) are left out; a shared set or counter that the run created or
 * added an entry to is listed with its whole size (for one run, that is the run's entry).
 */
describe('what one realistic run costs in Redis', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  let baseline: Set<string>;

  beforeAll(async () => {
    receiver = await Receiver.start({ status: 200 });
    // A window longer than the 5 s the live stream lingers, so both phases can be seen, and short enough to wait for.
    api = await startApiService({ streamReplayMs: 6_000 }, ['runs', 'callbacks']);
    baseline = new Set(await keys());
  });
  afterAll(async () => {
    await api.close();
    await receiver.close();
  });

  const keys = async (): Promise<string[]> => {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await api.service.runhook.redis.scan(cursor, 'MATCH', `${api.service.runhook.store.keys.prefix}:*`, 'COUNT', 1000);
      cursor = next;
      out.push(...batch);
    } while (cursor !== '0');
    return out.sort();
  };

  const census = async (runId: string): Promise<KeyCost[]> => {
    const redis = api.service.runhook.redis;
    const prefix = api.service.runhook.store.keys.prefix;
    const out: KeyCost[] = [];
    for (const k of await keys()) {
      const type = await redis.type(k);
      const names = k.includes(runId);
      const entry = !names && type === 'zset' && (await redis.zscore(k, runId)) !== null;
      // Keys the service had before the run are its own, not the run's (unless they hold an entry for it).
      if (!names && !entry && baseline.has(k)) continue;
      // The stream hub's wake-up stream and presence belong to the API process, not to a run.
      if (!names && !entry && /:streamhub|:presence|:lease|:lock/.test(k)) continue;
      out.push({
        key: k.slice(prefix.length + 1).replace(runId, '<run>'),
        type,
        bytes: Number(await redis.memory('USAGE', k, 'SAMPLES', '0')),
        of: names ? 'run' : entry ? 'entry' : 'shared',
      });
    }
    return out;
  };

  const print = (phase: string, costs: KeyCost[], payload: number) => {
    const total = costs.reduce((n, c) => n + c.bytes, 0);
    const rows = costs.map((c) => `  ${c.key.padEnd(34)} ${c.type.padEnd(7)} ${String(c.bytes).padStart(6)} B  ${c.of}`);
    console.log(`${phase}: ${total} B in ${costs.length} keys (payload ${payload} B, ${(total / payload).toFixed(2)}x)\n${rows.join('\n')}`);
    return total;
  };

  it('lists every key with its size in the window, after it, and after retention (nothing of the run left)', async () => {
    const body = realisticRun(42, receiver.url('/hook'));
    const { redis, store } = api.service.runhook;
    const created = (await (await api.call('/v1/runs', { method: 'POST', json: body })).json()) as Run;
    const id = created.id;
    await waitFor(async () => (await store.get(id))?.status === 'completed', 20_000, 'the run to complete');
    await receiver.waitForRequests(1);
    await waitFor(async () => (await store.get(id))?.callback_status_code === 200, 10_000, 'the callback to be recorded');
    const answer = (await store.messages(id)).messages.map((m) => String(m.content)).join('');
    expect(answer).toBe(body.input.text);
    expect(answer.split(' ')).toHaveLength(400);
    const payload = payloadBytes(body, answer);

    // Within the window, once the live stream has gone (it lingers 5 s for readers blocked on it).
    await waitFor(async () => (await redis.exists(store.keys.messages(id))) === 0, 10_000, 'the live stream to expire');
    const inWindow = await census(id);
    const windowBytes = print('in the replay window', inWindow, payload);
    expect(inWindow.filter((c) => c.of === 'run').map((c) => c.key)).toEqual(['cb:attempts:<run>', 'mchunk:<run>', 'mlog:<run>', 'run:<run>', 'runs:<run>']);
    expect(inWindow.filter((c) => c.of === 'entry').map((c) => c.key)).toEqual([
      'expiry',
      'idx:agent:agent-support',
      'idx:all',
      'idx:status:completed',
      'runs:completed',
    ]);

    // After the window: the chunk copy expired by itself.
    await waitFor(async () => (await redis.exists(store.keys.messageChunks(id))) === 0, 10_000, 'the replay window to close');
    const after = await census(id);
    const afterBytes = print('after the replay window', after, payload);
    expect(after.filter((c) => c.of === 'run').map((c) => c.key)).toEqual(['cb:attempts:<run>', 'mlog:<run>', 'run:<run>', 'runs:<run>']);
    expect(afterBytes).toBeLessThan(windowBytes);
    // The per-run keys of runhook itself (not BullMQ's job hash, which it keeps an hour) cost less than twice the payload.
    const own = after.filter((c) => c.of === 'run' && c.key !== 'runs:<run>').reduce((n, c) => n + c.bytes, 0);
    expect(own).toBeLessThan(2 * payload);

    // After retention (and BullMQ's own removal of completed jobs, after an hour, done here at once):
    // nothing names the run but its cursor tombstone (kept so that a list cursor naming it still pages).
    expect(await sweepExpiredRuns(store, silentLog, Date.now() + 31 * 86_400_000)).toBe(1);
    await api.service.runhook.queue.clean(0, 1000, 'completed');
    const gone = await census(id);
    print('after retention', gone, payload);
    expect(gone.filter((c) => c.of !== 'shared').map((c) => c.key)).toEqual(['runs:gone']);
  });
});
