import { Cluster, Redis, type RedisOptions } from 'ioredis';

/**
 * Redis connections. Workers keep retrying forever through an outage (BullMQ requires
 * maxRetriesPerRequest: null); the API fails fast instead, so that a request during an outage is
 * answered 503 at once rather than hanging.
 */
export type ConnectionRole = 'worker' | 'api';

/** A single Redis or a Redis Cluster: runhook's keys share one hash tag, so either works. */
export type RedisClient = Redis | Cluster;

/** A `redis://` URL, or the `host:port` seed nodes of a Redis Cluster. */
export type RedisTarget = string | readonly string[];

export function createRedis(target: RedisTarget, role: ConnectionRole, extra: RedisOptions = {}): RedisClient {
  const options: RedisOptions = {
    maxRetriesPerRequest: role === 'worker' ? null : 1,
    enableOfflineQueue: role === 'worker',
    connectTimeout: 5_000,
    // Reconnect quickly at first, then every second: a restarted Redis is picked up within ~1 s.
    retryStrategy: (times) => Math.min(50 * times, 1_000),
    ...extra,
  };
  if (typeof target === 'string') return new Redis(target, options);
  const nodes = target.map((n) => {
    const [host, port] = n.split(':');
    return { host: host!, port: Number(port) };
  });
  return new Cluster(nodes, {
    redisOptions: options,
    enableOfflineQueue: options.enableOfflineQueue ?? true,
    clusterRetryStrategy: (times) => Math.min(50 * times, 1_000),
  });
}

/** Resolves once the connection is ready, or rejects with its first error. */
export async function ready(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
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
export async function closeRedis(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await Promise.race([redis.quit(), new Promise((r) => setTimeout(r, 1_000))]);
  } catch {
    // quit fails when the connection is already broken; disconnect below still releases it
  }
  redis.disconnect();
}
