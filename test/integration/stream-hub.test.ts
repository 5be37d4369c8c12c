import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamHub, type RawEntry } from '../../src/streams/stream-hub.ts';
import { StreamWatcher } from '../../src/streams/stream-watcher.ts';
import { closeRedis, connect, silentLog, waitFor } from '../helpers/setup.ts';

const seqOf = (e: RawEntry) => Number(e[0].split('-')[0]);

/** A watcher that keeps every seq id it was handed after its start, dropping repeats as run-stream does. */
function collector(after: number) {
  const seen: number[] = [];
  let last = after;
  const watcher = new StreamWatcher(100_000, () => {});
  return {
    watcher,
    seen,
    /** Takes what the hub delivered, once. */
    drain() {
      return watcher.take(0, new AbortController().signal).then((entries) => {
        for (const e of entries) {
          const s = seqOf(e);
          if (s > last) {
            seen.push(s);
            last = s;
          }
        }
      });
    },
  };
}

async function clientsOf(redis: Redis, name: string): Promise<number> {
  const list = (await redis.client('LIST')) as string;
  return list.split('\n').filter((l) => l.includes(`name=${name}`)).length;
}

describe('one stream reader for many watchers', () => {
  let redis: Redis;
  let writer: Redis;
  const prefix = `{t-${randomUUID().slice(0, 8)}}`;
  const key = (i: number) => `${prefix}:msgs:r${i}`;
  const append = (k: string, seq: number) => writer.xadd(k, `${seq}-0`, 'm', `{"n":${seq}}`);

  beforeAll(async () => {
    redis = await connect();
    writer = await connect();
  });
  afterAll(async () => {
    await closeRedis(redis);
    await closeRedis(writer);
  });

  it('hands 500 watchers on 100 live streams every entry once and in order, over one connection', async () => {
    const hub = new StreamHub({ redis, keyPrefix: prefix, log: silentLog });
    const before = await clientsOf(redis, `${prefix}:streamhub`);
    const watchers = Array.from({ length: 500 }, (_, i) => ({ stream: i % 100, c: collector(0) }));
    const stops = watchers.map((w) => hub.follow(key(w.stream), 0, w.c.watcher));
    expect(hub.watchers).toBe(500);
    expect(hub.streams).toBe(100);

    const perStream = 30;
    for (let seq = 1; seq <= perStream; seq++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => append(key(i), seq)));
    }
    const expected = Array.from({ length: perStream }, (_, i) => i + 1);
    await waitFor(async () => {
      await Promise.all(watchers.map((w) => w.c.drain()));
      return watchers.every((w) => w.c.seen.length === perStream);
    }, 20_000, 'every watcher to get every entry');
    for (const w of watchers) expect(w.c.seen).toEqual(expected);

    expect(hub.connections).toBe(1);
    expect((await clientsOf(redis, `${prefix}:streamhub`)) - before).toBe(1);
    stops.forEach((stop) => stop());
    expect(hub.watchers).toBe(0);
    await hub.close();
  });

  it('keeps a watcher that stopped reading from delaying the others, and drops it past its bound', async () => {
    const hub = new StreamHub({ redis, keyPrefix: prefix, log: silentLog });
    let dropped = false;
    const stuck = new StreamWatcher(50, () => (dropped = true));
    const healthy = collector(0);
    hub.follow(key(1000), 0, stuck);
    hub.follow(key(1000), 0, healthy.watcher);
    for (let seq = 1; seq <= 200; seq++) await append(key(1000), seq);
    await waitFor(async () => {
      await healthy.drain();
      return healthy.seen.length === 200;
    }, 10_000, 'the healthy watcher to get all 200 entries');
    expect(dropped).toBe(true);
    expect(stuck.overflowed).toBe(true);
    await hub.close();
  });

  it('lets watchers join and leave while entries arrive, each getting exactly what follows its start', async () => {
    const hub = new StreamHub({ redis, keyPrefix: prefix, log: silentLog });
    const k = key(2000);
    const early = collector(0);
    hub.follow(k, 0, early.watcher);
    const late: { after: number; c: ReturnType<typeof collector>; stop: () => void }[] = [];
    let leaving: ReturnType<typeof collector> | undefined;
    let stopLeaving: (() => void) | undefined;
    for (let seq = 1; seq <= 120; seq++) {
      await append(k, seq);
      if (seq % 20 === 0) {
        // A resume from seq: whatever the hub read before the join comes from the log (as run-stream does).
        const c = collector(seq);
        late.push({ after: seq, c, stop: hub.follow(k, seq, c.watcher) });
      }
      if (seq === 30) {
        leaving = collector(0);
        stopLeaving = hub.follow(k, 0, leaving.watcher);
      }
      if (seq === 60) stopLeaving!();
    }
    await waitFor(async () => {
      await Promise.all([early.drain(), ...late.map((l) => l.c.drain())]);
      return early.seen.length === 120 && late.every((l) => l.c.seen.at(-1) === 120 || l.after === 120);
    }, 10_000, 'every watcher to reach seq 120');
    expect(early.seen).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    for (const l of late) {
      // Live entries follow the join without a gap: the first one the hub hands over is the next seq.
      const expected = Array.from({ length: 120 - l.after }, (_, i) => l.after + i + 1);
      expect(l.c.seen).toEqual(expected);
    }
    await leaving!.drain();
    expect(leaving!.seen.length).toBeLessThanOrEqual(60);
    await hub.close();
  });

  it('wakes a read in flight when a new stream is followed, so its first entry is not held back', async () => {
    const hub = new StreamHub({ redis, keyPrefix: prefix, log: silentLog, blockMs: 60_000 });
    const a = collector(0);
    hub.follow(key(3000), 0, a.watcher);
    await append(key(3000), 1);
    await waitFor(async () => {
      await a.drain();
      return a.seen.length === 1;
    });
    // The reader now blocks for up to a minute on key 3000 alone; a new key must not wait for that.
    const b = collector(0);
    hub.follow(key(3001), 0, b.watcher);
    await append(key(3001), 1);
    await waitFor(async () => {
      await b.drain();
      return b.seen.length === 1;
    }, 10_000, 'the new stream to be read');
    await hub.close();
  });
});
