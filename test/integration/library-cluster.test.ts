import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRunhook } from '../../src/index.ts';
import { closeRedis, createRedis, ready } from '../../src/queue/connection.ts';
import { TestRedisCluster } from '../helpers/redis-cluster.ts';
import { silentLog, testConfig } from '../helpers/setup.ts';

/** openRunhook follows the same configuration as the processes: REDIS_CLUSTER_NODES wins over REDIS_URL. */
describe('the library entry on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  beforeAll(async () => {
    cluster = await TestRedisCluster.start(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('connects to the cluster nodes it is given, not to REDIS_URL', async () => {
    const { keyPrefix } = testConfig();
    // Nothing listens on port 1: a connection there would be the bug.
    const rh = await openRunhook({ redisClusterNodes: cluster.nodes, redisUrl: 'redis://127.0.0.1:1', keyPrefix, log: silentLog });
    try {
      expect(rh.redis).toBeInstanceOf(Cluster);
      const { run } = await rh.createRun({ agent_id: 'lib-cluster', input: { text: 'hi' } });
      const check = createRedis(cluster.nodes, 'api');
      await ready(check);
      expect(await check.hget(`${keyPrefix}:run:${run.id}`, 'agent_id')).toBe('lib-cluster');
      await closeRedis(check);
    } finally {
      await rh.close();
    }
  });
});
