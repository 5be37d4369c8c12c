import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/service.ts';
import { closeRedis, connect, silentLog, testConfig, waitFor } from '../helpers/setup.ts';
import type { Redis } from 'ioredis';

/**
 * The maintenance pass of a run-worker process makes several chores: the reconciler's pass, then
 * retention (and the folds a run's end left undone). One failing must not stop the others: a reconciler
 * pass that throws every time (on a Redis Cluster, flow control's repair script did, 2026-12) would
 * otherwise leave every ended run in Redis for ever.
 */
describe('the maintenance pass', () => {
  const config = testConfig({ maintenanceIntervalMs: 200, retentionMs: 1 });
  let redis: Redis;
  let service: Service;
  beforeAll(async () => {
    redis = await connect();
    // The reconciler's progress key holding something else: its pass fails (WRONGTYPE) every time.
    await redis.set(`${config.keyPrefix}:reconcile:state`, 'not a hash');
    service = await startService(config, silentLog, new Set(['runs']));
  });
  afterAll(async () => {
    await service?.close();
    await closeRedis(redis);
  });

  it('removes expired runs even when the reconciler pass fails', async () => {
    const { run } = await service.runhook.createRun({ agent_id: 'maintenance', input: { text: 'hi' } });
    await service.runhook.waitForRun(run.id);
    await waitFor(async () => (await service.runhook.store.getRecord(run.id)) === null, 15_000, 'retention to remove the ended run');
    expect(await redis.zscore(`${config.keyPrefix}:expiry`, run.id)).toBeNull();
  });
});
