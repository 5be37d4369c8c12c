import type { Config } from './config.ts';
import { ConfigError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { RedisTarget } from './queue/connection.ts';
import { pingRedis, RedisServer } from './redis-server.ts';

/**
 * The Redis to use. With REDIS_URL set, that one. Without it, redis://127.0.0.1:6379; and where nothing
 * answers there, a `redis-server` this process starts, with its data (AOF) under the data dir, so that
 * `npm start` works on a machine with nothing but redis-server installed.
 */
export async function resolveRedis(
  config: Config,
  log: Logger,
  { startIfMissing = config.embeddedRedis } = {},
): Promise<{ url: string; target: RedisTarget; close(): Promise<void> }> {
  if (config.redisClusterNodes) {
    return { url: `cluster:${config.redisClusterNodes.join(',')}`, target: config.redisClusterNodes, close: async () => {} };
  }
  if (config.redisUrl) return { url: config.redisUrl, target: config.redisUrl, close: async () => {} };
  const url = `redis://127.0.0.1:${config.embeddedRedisPort}`;
  if (await pingRedis(config.embeddedRedisPort)) {
    log.info({ redis: url }, 'using the local Redis');
    return { url, target: url, close: async () => {} };
  }
  if (!startIfMissing || !RedisServer.isInstalled()) {
    throw new ConfigError(
      `REDIS_URL: not set and nothing answers at ${url}; set REDIS_URL or install redis-server (apt-get install redis-server)`,
    );
  }
  const server = await RedisServer.start({ port: config.embeddedRedisPort, dir: config.dataDir, appendOnly: true });
  log.info({ redis: url, dir: config.dataDir }, 'started an embedded redis-server');
  return { url, target: url, close: () => server.stop() };
}
