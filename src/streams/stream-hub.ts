import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import type { Logger } from '../logger.ts';
import { closeRedis, type RedisClient } from '../queue/connection.ts';
import { announce, PRESENCE_EVERY_MS, withdraw } from './stream-presence.ts';

/** One entry as XREAD returns it: the stream id (`<seq>-0` in runhook's message streams) and its fields. */
export type RawEntry = [id: string, fields: string[]];

/**
 * A watcher of one stream. `push` is called from the reader's loop with entries in stream order and must
 * not wait: a watcher that cannot keep up buffers (boundedly) on its own side, never in the reader.
 */
export interface StreamSubscriber {
  push(entries: readonly RawEntry[]): void;
}

export interface StreamHubOptions {
  /** The connection to duplicate for the one blocking reader. */
  redis: RedisClient;
  /** The hash tag every followed key carries (`{runhook}`): the reader's wake-up stream lives under it too. */
  keyPrefix: string;
  /** Entries per stream per read. */
  batch?: number;
  /** Longest a read blocks before the loop looks around again (ms). */
  blockMs?: number;
  log: Logger;
}

interface Followed {
  /** The seq id of the last entry handed to this key's subscribers: the next read starts after it. */
  pos: number;
  readonly subs: Set<StreamSubscriber>;
}

type XReadReply = [key: string, entries: RawEntry[]][] | null;

const seqOf = (streamId: string): number => Number(streamId.slice(0, streamId.indexOf('-')));

/**
 * Follows every stream its watchers ask for with one connection and one blocking XREAD over all of their
 * keys, and hands each reply to every watcher of that key: a thousand clients on a hundred runs cost one
 * Redis connection, not a thousand. A key is read from where its first watcher joined; a later watcher
 * catches up on its own (a plain read of the log) and drops what it already has by seq id, so joining or
 * leaving never loses or repeats an entry.
 *
 * A read that is blocked when a new key is followed is woken by an XADD to the hub's own wake-up stream
 * (same hash tag, so it works on a Redis Cluster); CLIENT UNBLOCK would need the node and the client id.
 */
export class StreamHub {
  readonly #o: Required<Omit<StreamHubOptions, 'log'>> & { log: Logger };
  readonly #followed = new Map<string, Followed>();
  readonly #id = randomUUID();
  readonly #wakeKey: string;
  readonly #announcer: NodeJS.Timeout;
  #wakePos = '0-0';
  #reader: RedisClient | undefined;
  #loop: Promise<void> | undefined;
  /** Resolves the loop's wait for a first watcher. */
  #idle: (() => void) | undefined;
  /** Keys the read now in flight covers; a key followed outside it needs a wake-up. */
  #reading: ReadonlySet<string> | undefined;
  #wakePending = false;
  #closed = false;
  #watchers = 0;

  constructor(options: StreamHubOptions) {
    this.#o = { batch: 1_000, blockMs: 5_000, ...options };
    this.#wakeKey = `${options.keyPrefix}:streamhub:${this.#id}`;
    // For `runhook status`: watchers and reader connections of every API process, added up.
    this.#announcer = setInterval(() => this.#announce(), PRESENCE_EVERY_MS).unref();
    this.#announce();
  }

  #announce(): void {
    announce(this.#o.redis, this.#o.keyPrefix, this.#id, this.#watchers, this.connections).catch((err: Error) =>
      this.#o.log.debug({ err: err.message }, 'stream hub presence not written'),
    );
  }

  /** Watchers following a stream now. */
  get watchers(): number {
    return this.#watchers;
  }

  /** Streams followed now. */
  get streams(): number {
    return this.#followed.size;
  }

  /** Redis connections the hub holds: its one reader, once a watcher asked for it. */
  get connections(): number {
    return this.#reader ? 1 : 0;
  }

  /**
   * Hands `sub` every entry of `key` after `afterSeq` that the hub reads from now on (and possibly some at
   * or before it, which the subscriber drops by seq id). Returns the function that stops it.
   */
  follow(key: string, afterSeq: number, sub: StreamSubscriber): () => void {
    if (this.#closed) throw new Error('stream hub is closed');
    let f = this.#followed.get(key);
    if (!f) {
      f = { pos: afterSeq, subs: new Set() };
      this.#followed.set(key, f);
    }
    f.subs.add(sub);
    this.#watchers++;
    this.#ensureLoop();
    if (this.#idle) {
      this.#idle();
      this.#idle = undefined;
    } else if (this.#reading && !this.#reading.has(key)) {
      this.#wake();
    }
    let followed = true;
    return () => {
      if (!followed) return;
      followed = false;
      this.#watchers--;
      const cur = this.#followed.get(key);
      if (!cur) return;
      cur.subs.delete(sub);
      // The next read leaves the key out; the one in flight may still bring entries, which are dropped.
      if (cur.subs.size === 0) this.#followed.delete(key);
    };
  }

  #ensureLoop(): void {
    if (this.#loop) return;
    const reader = duplicate(this.#o.redis, `${this.#o.keyPrefix}:streamhub`);
    reader.on('error', (err: Error) => this.#o.log.debug({ err: err.message }, 'stream hub reader error'));
    this.#reader = reader;
    this.#loop = this.#run(reader).catch((err: Error) => {
      this.#o.log.error({ err: err.message }, 'stream hub stopped');
    });
  }

  async #run(reader: RedisClient): Promise<void> {
    while (!this.#closed) {
      if (this.#followed.size === 0) {
        await new Promise<void>((resolve) => (this.#idle = resolve));
        continue;
      }
      const keys = [...this.#followed.keys()];
      const ids = keys.map((k) => `${this.#followed.get(k)!.pos}-0`);
      this.#reading = new Set(keys);
      let reply: XReadReply;
      try {
        reply = (await reader.xread(
          'COUNT',
          this.#o.batch,
          'BLOCK',
          this.#o.blockMs,
          'STREAMS',
          this.#wakeKey,
          ...keys,
          this.#wakePos,
          ...ids,
        )) as XReadReply;
      } catch (err) {
        if (this.#closed) return;
        // Redis went away: ioredis reconnects; try again shortly rather than spin.
        this.#o.log.warn({ err: (err as Error).message }, 'stream hub read failed; retrying');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      } finally {
        this.#reading = undefined;
      }
      if (!reply) continue;
      for (const [key, entries] of reply) {
        if (entries.length === 0) continue;
        if (key === this.#wakeKey) {
          this.#wakePos = entries[entries.length - 1]![0];
          this.#wakePending = false;
          continue;
        }
        const f = this.#followed.get(key);
        if (!f) continue;
        f.pos = seqOf(entries[entries.length - 1]![0]);
        for (const sub of f.subs) {
          try {
            sub.push(entries);
          } catch (err) {
            // One watcher's failure must not starve the others of this read.
            this.#o.log.warn({ err: (err as Error).message }, 'stream watcher failed');
          }
        }
      }
    }
  }

  /** Ends the read in flight so that the next one includes the keys followed since. */
  #wake(): void {
    if (this.#wakePending) return;
    this.#wakePending = true;
    // On the shared command connection, never the blocked reader; the key expires if the hub dies.
    this.#o.redis
      .multi()
      .xadd(this.#wakeKey, 'MAXLEN', '~', '16', '*', 'w', '1')
      .pexpire(this.#wakeKey, 600_000)
      .exec()
      .catch((err: Error) => {
        this.#wakePending = false;
        this.#o.log.warn({ err: err.message }, 'stream hub wake-up failed');
      });
  }

  /** Stops reading and closes the reader; watchers still following get nothing more. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#announcer);
    await withdraw(this.#o.redis, this.#o.keyPrefix, this.#id).catch(() => {});
    this.#idle?.();
    this.#followed.clear();
    this.#watchers = 0;
    if (this.#reader) {
      this.#reader.disconnect();
      await this.#loop;
      await closeRedis(this.#reader);
      await this.#o.redis.del(this.#wakeKey).catch(() => {});
    }
  }
}

function duplicate(redis: RedisClient, name: string): RedisClient {
  return redis instanceof Cluster ? redis.duplicate() : redis.duplicate({ connectionName: name });
}
