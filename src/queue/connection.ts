import { Redis, type RedisOptions } from 'ioredis';

/**
 * Redis connections. Workers keep retrying forever through an outage (BullMQ requires
 * maxRetriesPerRequest: null); the API fails fast instead, so that a request during an outage is
 * answered 503 at once rather than hanging.
 */
export type ConnectionRole = 'worker' | 'api';

export function createRedis(url: string, role: ConnectionRole, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: role === 'worker' ? null : 1,
    enableOfflineQueue: role === 'worker',
    connectTimeout: 5_000,
    // Reconnect quickly at first, then every second: a restarted Redis is picked up within ~1 s.
    retryStrategy: (times) => Math.min(50 * times, 1_000),
    lazyConnect: false,
    ...extra,
  });
}

/** Resolves once the connection is ready, or rejects with its first error. */
export async function ready(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`redis not ready after ${timeoutMs} ms`)), timeoutMs);
    const onReady = () => done();
    const onError = (err: Error) => {
      if (redis.status === 'end') done(err);
    };
    const done = (err?: Error) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    redis.on('ready', onReady);
    redis.on('error', onError);
  });
}

/** Closes a connection politely, and for certain even if Redis is gone. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await Promise.race([redis.quit(), new Promise((r) => setTimeout(r, 1_000))]);
  } catch {
    // quit fails when the connection is already broken; disconnect below still releases it
  }
  redis.disconnect();
}
