import { closeRedis, createRedis, ready } from '../../src/queue/connection.ts';
import { Runhook } from '../../src/runhook.ts';
import { STREAM_LINGER_MS } from '../../src/runs/store.ts';
import { BenchChild } from '../child.ts';
import type { BenchEnv } from '../env.ts';
import { payloadBytes, realisticRun } from '../realistic-payload.ts';
import { progress, type Scenario, type ScenarioResult } from '../scenario.ts';
import { round } from '../stats.ts';
import { lanes, sleep, waitForCount } from '../util.ts';
import { census } from './memory.ts';

/**
 * What a retained realistic run costs (issue 18): N runs, each a ~2 KB user message with metadata,
 * answered by echo with the same text streamed a word at a time (400 chunks), each with a delivered
 * callback, in runhook all-in-one in a child process (as the memory scenario). Redis's used_memory delta
 * over the N runs, per run: (a) while the stream replay window is open (default 60 minutes: the chunk
 * copies are there), once the live streams have gone; (b) after the window, which ends by each chunk
 * copy's own expiry, brought forward here (PEXPIRE 1 on each, then touched so Redis frees it) rather than
 * waited for; by then BullMQ has also trimmed the runs' job records (it keeps completed jobs an hour,
 * the window's default length), which Queue.clean brings forward in the same way. Against the payload:
 * the bytes of the input and metadata JSON and of the answer's text.
 * No bare side: BullMQ keeps no messages to compare with.
 */
async function closeWindow(env: BenchEnv, prefix: string): Promise<number> {
  let closed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await env.admin.scan(cursor, 'MATCH', `${prefix}:mchunk:*`, 'COUNT', 2000);
    cursor = next;
    if (keys.length === 0) continue;
    const p = env.admin.pipeline();
    for (const k of keys) p.pexpire(k, 1);
    await p.exec();
    closed += keys.length;
  } while (cursor !== '0');
  await sleep(50);
  // Touch every key so the expired ones are freed now (Redis's active expiry would get there by itself).
  cursor = '0';
  do {
    const [next, keys] = await env.admin.scan(cursor, 'MATCH', `${prefix}:mchunk:*`, 'COUNT', 2000);
    cursor = next;
    if (keys.length > 0) await env.admin.exists(...keys);
  } while (cursor !== '0');
  return closed;
}

export const memoryRealistic: Scenario = {
  name: 'memory_realistic',
  async run(env): Promise<ScenarioResult> {
    const { n } = env.params.memoryRealistic;
    const prefix = env.prefix('mem-realistic');
    const child = await BenchChild.start('./children/memory-node.ts', [
      JSON.stringify({ mode: 'runhook', redisUrl: env.redisUrl, prefix, concurrency: env.params.concurrency, webhookSecret: env.webhookSecret, configOverrides: env.params.configOverrides }),
    ]);
    const receiver = await env.receiver();
    await receiver.reset();
    const redis = createRedis(env.redisUrl, 'worker');
    await ready(redis);
    const rh = new Runhook(env.runhookConfig('mem', { keyPrefix: prefix }), redis, env.log);
    try {
      await sleep(500);
      const before = await env.usedMemory();
      const t0 = performance.now();
      let payload = 0;
      await lanes(n, env.params.enqueueWindow, async (i) => {
        const body = realisticRun(i + 1, receiver.url());
        // Echo answers with the input's text, word by word.
        payload += payloadBytes(body, body.input.text);
        await rh.createRun(body);
      });
      await waitForCount(
        'realistic runs done',
        async () => {
          const [completed, received] = await Promise.all([env.admin.zcard(rh.store.keys.index('status', 'completed')), receiver.count()]);
          return Math.min(completed, received.count);
        },
        n,
        { pollMs: 100, stallMs: env.params.stallMs },
      );
      const seconds = (performance.now() - t0) / 1000;
      // The live streams linger a few seconds for readers blocked on them, then expire.
      await sleep(STREAM_LINGER_MS + 1_500);
      const unfolded = await env.admin.zcard(rh.store.keys.unfoldedLogs);
      const inWindow = await env.usedMemory();
      progress('memory_realistic', 'census in the window...');
      const censusIn = await census(env, prefix, n);
      const closed = await closeWindow(env, prefix);
      // BullMQ's own hour for completed jobs (removeOnComplete age), passed with the window.
      await rh.queue.clean(0, n, 'completed');
      await rh.callbackQueue.clean(0, n, 'completed');
      const after = await env.usedMemory();
      progress('memory_realistic', `census after the window (${closed} chunk copies expired)...`);
      const censusAfter = await census(env, prefix, n);
      const perRun = Math.round((after - before) / n);
      const perRunIn = Math.round((inWindow - before) / n);
      const payloadPerRun = Math.round(payload / n);
      const ratio = round(perRun / payloadPerRun);
      progress('memory_realistic', `${perRunIn} B/run in the window, ${perRun} B/run after it, payload ${payloadPerRun} B/run (${ratio}x), ${round(seconds)} s`);
      return {
        runhook: perRun,
        bare: null,
        ratio,
        unit: 'bytes of Redis per retained run after the replay window',
        target: 'after the window <= 2x the payload',
        met: ratio !== null && ratio <= 2,
        bytes_in_window: perRunIn,
        payload_bytes: payloadPerRun,
        ratio_in_window: round(perRunIn / payloadPerRun),
        runs: n,
        seconds: round(seconds),
        chunks_per_run: 400,
        unfolded_logs_left: unfolded,
        runhook_is: 'all-in-one process (api + run worker + callback worker), echo answering each ~2 KB message in 400 chunks, every run with a delivered callback',
        census_in_window: censusIn,
        census_after_window: censusAfter,
      };
    } finally {
      await rh.close();
      await closeRedis(redis);
      await child.stop();
    }
  },
};
