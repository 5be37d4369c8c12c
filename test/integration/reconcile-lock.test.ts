import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/monitoring/metrics.ts';
import { Lease } from '../../src/queue/lease.ts';
import { closeRedis, createRedis, ready } from '../../src/queue/connection.ts';
import { Reconciler, reconcileLeaseKey } from '../../src/queue/reconcile.ts';
import { Runhook } from '../../src/runhook.ts';
import { childEnv, startRunhook, type RunhookProcess } from '../helpers/processes.ts';
import { TestRedisCluster } from '../helpers/redis-cluster.ts';
import { closeTestRunhook, openTestRunhook, silentLog, testConfig, waitFor } from '../helpers/setup.ts';

describe('one reconciler at a time', () => {
  // A 1 s maintenance interval: the lease lives 3 s.
  const config = testConfig({ maintenanceIntervalMs: 1_000, createdGraceMs: 0 });
  let a: Runhook;
  let b: Runhook;
  beforeAll(async () => {
    [a, b] = await Promise.all([openTestRunhook(config), openTestRunhook(config)]);
  });
  afterAll(async () => {
    await closeTestRunhook(a);
    await closeTestRunhook(b);
  });
  const reconcilerOf = (rh: Runhook, observer?: Metrics) =>
    new Reconciler({ config, store: rh.store, queue: rh.queue, log: silentLog, ...(observer && { observer }) });
  const holderToken = () => a.redis.get(reconcileLeaseKey(config));

  it('makes passes only in the process that holds the lease, however often the others take their turn', async () => {
    const first = reconcilerOf(a);
    const second = reconcilerOf(b);
    try {
      const holders = new Set<Reconciler>();
      for (let round = 0; round < 10; round++) {
        const [ra, rb] = await Promise.all([first.tick(), second.tick()]);
        // Exactly one of the two made a pass, and it was the same one every round.
        expect([ra, rb].filter(Boolean)).toHaveLength(1);
        holders.add(ra ? first : second);
      }
      expect(holders.size).toBe(1);
      const [holder] = [...holders];
      expect(await holderToken()).toBe(holder!.lease.token);
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('hands over at the next turn when the holder stops', async () => {
    const first = reconcilerOf(a);
    const second = reconcilerOf(b);
    expect(await first.tick()).toBeDefined();
    expect(await second.tick()).toBeUndefined();
    await first.close();
    expect(await holderToken()).toBeNull();
    expect(await second.tick()).toBeDefined();
    expect(await first.tick()).toBeUndefined();
    await second.close();
  });

  it('never lets a holder whose lease expired release or extend the next holder’s', async () => {
    const key = `${config.keyPrefix}:test-lease`;
    const stale = new Lease(a.redis, key, 50);
    const next = new Lease(b.redis, key, 60_000);
    expect(await stale.hold()).toBe(true);
    expect(await next.hold()).toBe(false);
    await waitFor(async () => (await a.redis.exists(key)) === 0, 5_000, 'the short lease to expire');
    expect(await next.hold()).toBe(true);
    expect(await stale.release()).toBe(false);
    expect(await stale.hold()).toBe(false);
    expect(await a.redis.get(key)).toBe(next.token);
    expect(await next.release()).toBe(true);
  });

  it('reports the passes it makes and its repairs by kind in /metrics; a process without the lease reports none', async () => {
    const holderMetrics = new Metrics({ runhook: a, log: silentLog });
    const otherMetrics = new Metrics({ runhook: b, log: silentLog });
    const first = reconcilerOf(a, holderMetrics);
    const second = reconcilerOf(b, otherMetrics);
    try {
      // Stored without its job (a crash between the two steps): the pass adds it.
      await a.store.create({ agent_id: 'lock-metrics' });
      expect(await first.tick()).toMatchObject({ requeued: 1 });
      expect(await second.tick()).toBeUndefined();
      const text = await holderMetrics.render();
      expect(text).toContain('# TYPE runhook_reconcile_duration_seconds histogram');
      expect(text).toMatch(/^runhook_reconcile_duration_seconds_count 1$/m);
      expect(text).toMatch(/^runhook_reconcile_repairs_total\{kind="requeued"\} 1$/m);
      expect(text).toMatch(/^runhook_reconcile_repairs_total\{kind="failed"\} 0$/m);
      expect(await otherMetrics.render()).toMatch(/^runhook_reconcile_duration_seconds_count 0$/m);
    } finally {
      await first.close();
      await second.close();
    }
  });

  describe('when the holder process is killed', () => {
    let worker: RunhookProcess | undefined;
    afterAll(async () => {
      await worker?.kill();
    });

    it('keeps the lease away from the others until it expires, then another process takes over', async () => {
      worker = startRunhook(['worker', '--only', 'runs'], childEnv(config, { RUNHOOK_MAINTENANCE_INTERVAL_MS: '1000' }));
      const childToken = await waitFor(() => holderToken().then((t) => t ?? undefined), 20_000, 'the worker process to take the lease');
      const survivor = reconcilerOf(b);
      try {
        expect(await survivor.tick()).toBeUndefined();
        await worker.kill('SIGKILL');
        // Killed without releasing: while its lease lives, the survivor's turns make no pass.
        const pttl = await b.redis.pttl(reconcileLeaseKey(config));
        expect(pttl).toBeGreaterThan(0);
        const turn = await survivor.tick();
        if ((await holderToken()) === childToken) expect(turn).toBeUndefined();
        // Once it has expired, the next turn takes the lease and makes a pass.
        const report = await waitFor(() => survivor.tick(), 10_000, 'the survivor to take over');
        expect(report).toMatchObject({ requeued: 0, completed: 0, failed: 0 });
        expect(await holderToken()).toBe(survivor.lease.token);
      } finally {
        await survivor.close();
      }
    });
  });
});

describe('on a Redis Cluster', () => {
  // The reconcile script, the ZINTERs and the lease touch run-store and queue keys together: one hash tag, one slot.
  let cluster: TestRedisCluster;
  beforeAll(async () => {
    cluster = await TestRedisCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('holds the lease and repairs in a pass', async () => {
    const config = testConfig({ redisUrl: undefined, redisClusterNodes: cluster.nodes, createdGraceMs: 0, runAttempts: 1 });
    const redis = createRedis(cluster.nodes, 'worker');
    await ready(redis);
    const rh = new Runhook(config, redis, silentLog);
    const reconciler = new Reconciler({ config, store: rh.store, queue: rh.queue, log: silentLog });
    try {
      const stored = await rh.store.create({ agent_id: 'cluster-rec' });
      const { run } = await rh.createRun({ agent_id: 'cluster-rec' });
      await rh.store.start(run.id, 1);
      await rh.queue.remove(run.id).catch(() => 0);
      expect(await reconciler.tick()).toMatchObject({ requeued: 1, failed: 1 });
      expect(await rh.queue.getJobState(stored.record.run.id)).toBe('waiting');
      expect((await rh.getRun(run.id)).status).toBe('failed');
      expect(await redis.get(reconcileLeaseKey(config))).toBe(reconciler.lease.token);
      // A run admitted by flow control (a conversation's head) makes every pass repair flow places too:
      // that script must reach the deployment's slot, pass after pass.
      await rh.createRun({ agent_id: 'cluster-rec', conversation_id: 'conv-on-cluster' });
      for (let i = 0; i < 6; i++) await expect(reconciler.tick()).resolves.toBeTruthy();
    } finally {
      await reconciler.close();
      await rh.close();
      await closeRedis(redis);
    }
  });
});
