import type { RedisClient } from '../queue/connection.ts';

/**
 * Each API process's stream hub says, every few seconds, how many watchers it serves and with how many
 * Redis connections, in one hash under the deployment's hash tag; `runhook status` and GET /v1/queues add
 * up the fresh entries. A process that died stops refreshing its entry, which then no longer counts.
 */
export const PRESENCE_EVERY_MS = 5_000;
/** An entry older than this is a process that is gone. */
const FRESH_MS = 3 * PRESENCE_EVERY_MS;

export interface StreamsPresence {
  watchers: number;
  reader_connections: number;
  api_processes: number;
}

const presenceKey = (keyPrefix: string) => `${keyPrefix}:streamhub:presence`;

export async function announce(redis: RedisClient, keyPrefix: string, hubId: string, watchers: number, connections: number): Promise<void> {
  const key = presenceKey(keyPrefix);
  await redis.multi().hset(key, hubId, `${watchers},${connections},${Date.now()}`).pexpire(key, 4 * FRESH_MS).exec();
}

export async function withdraw(redis: RedisClient, keyPrefix: string, hubId: string): Promise<void> {
  await redis.hdel(presenceKey(keyPrefix), hubId);
}

export async function readPresence(redis: RedisClient, keyPrefix: string, nowMs = Date.now()): Promise<StreamsPresence> {
  const all = await redis.hgetall(presenceKey(keyPrefix));
  const out: StreamsPresence = { watchers: 0, reader_connections: 0, api_processes: 0 };
  for (const v of Object.values(all)) {
    const [watchers, connections, at] = v.split(',').map(Number) as [number, number, number];
    if (nowMs - at > FRESH_MS) continue;
    out.watchers += watchers;
    out.reader_connections += connections;
    out.api_processes++;
  }
  return out;
}
