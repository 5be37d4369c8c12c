/**
 * What one reconciler pass costs with a large backlog of waiting runs (issue 16, item 7): N `created`
 * runs whose jobs sit in BullMQ's wait list (no worker), then passes of reconcileRuns, timed, with the
 * Redis commands each one made (INFO's total_commands_processed, less the INFO calls themselves).
 *
 *   node --import tsx bench/reconcile-pass.ts [--runs 100000] [--passes 3]
 *
 * Starts its own redis-server (a free port, a temporary directory; never the machine's 6379). Prints
 * the figures and asserts only that no pass repaired anything (every run has its job).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { withConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { runJobOptions } from '../src/queue/queues.ts';
import { reconcileRuns } from '../src/queue/reconcile.ts';
import { RedisServer } from '../src/redis-server.ts';
import { Runhook } from '../src/runhook.ts';
import { newRunId } from '../src/runs/schema.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '100000' }, passes: { type: 'string', default: '3' } },
});
const N = Number(values.runs);
const PASSES = Number(values.passes);
const CHUNK = 1_000;

const dir = mkdtempSync(join(tmpdir(), 'runhook-reconcile-bench-'));
const server = await RedisServer.start({ dir });
const redis = new Redis(server.url, { maxRetriesPerRequest: null });
const log = createLogger('silent');
const config = withConfig({ redisUrl: server.url, keyPrefix: '{bench-reconcile}', logLevel: 'silent', createdGraceMs: 0 });
const runhook = new Runhook(config, redis, log);

async function commandsProcessed(): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
}

try {
  const t0 = performance.now();
  for (let done = 0; done < N; done += CHUNK) {
    const ids = Array.from({ length: Math.min(CHUNK, N - done) }, () => newRunId());
    // One chunk's create scripts go out back to back on the connection (one round trip's worth).
    await Promise.all(ids.map((id, i) => runhook.store.create({ agent_id: `agent-${(done + i) % 100}` }, id)));
    await runhook.queue.addBulk(ids.map((id) => ({ name: 'run', data: { agent_id: 'a' }, opts: runJobOptions(config, id) })));
  }
  const counts = await runhook.queue.getJobCounts('wait', 'waiting');
  console.log(`created ${N} runs with waiting jobs in ${((performance.now() - t0) / 1000).toFixed(1)} s (jobs waiting: ${counts.wait ?? counts.waiting})`);

  for (let pass = 1; pass <= PASSES; pass++) {
    const before = await commandsProcessed();
    const started = performance.now();
    const report = await reconcileRuns({ config, store: runhook.store, queue: runhook.queue, log });
    const ms = performance.now() - started;
    const commands = (await commandsProcessed()) - before - 1;
    console.log(`pass ${pass}: ${(ms / 1000).toFixed(3)} s, ${commands} Redis commands, ${JSON.stringify(report)}`);
    const repaired = report.requeued + report.completed + report.failed;
    if (repaired !== 0) throw new Error(`a pass repaired ${repaired} runs that needed no repair`);
  }
} finally {
  await runhook.close();
  redis.disconnect();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
