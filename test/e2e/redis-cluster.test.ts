import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/service.ts';
import { TestRedisCluster } from '../helpers/redis-cluster.ts';
import { silentLog, testConfig } from '../helpers/setup.ts';

let cluster: TestRedisCluster;
let service: Service;

beforeAll(async () => {
  cluster = await TestRedisCluster.start(3);
  service = await startService(
    testConfig({ redisUrl: undefined, redisClusterNodes: cluster.nodes, concurrency: 8 }),
    silentLog,
    new Set(['runs', 'callbacks']),
  );
}, 60_000);
afterAll(async () => {
  await service?.close();
  await cluster?.stop();
});

describe('runhook on a 3-master Redis Cluster', () => {
  it('runs runs end to end, lists them and cancels one', async () => {
    const created = await Promise.all(
      Array.from({ length: 40 }, (_, i) => service.runhook.createRun({ agent_id: `agent-${i % 2}`, input: { text: `run ${i}` } })),
    );
    const done = await Promise.all(created.map(({ run }) => service.runhook.waitForRun(run.id, { timeoutMs: 20_000 })));
    expect(done.every((r) => r.status === 'completed' && r.ttft_ns !== null)).toBe(true);
    const listed = await service.runhook.listRuns({ agent_ids: ['agent-0'], statuses: ['completed'], limit: 100 });
    expect(listed).toHaveLength(20);
    const { run } = await service.runhook.createRun({ agent_id: 'agent-0', input: { text: 'a b c d e', token_ms: 300 } });
    await service.runhook.cancelRun(run.id);
    expect((await service.runhook.waitForRun(run.id)).status).toBe('cancelled');
  });
});
