/**
 * `npm run bench`: runhook against bare BullMQ, scenario by scenario, in one process run, on a
 * redis-server of its own. Prints a table of medians and ratios; writes every figure to
 * bench/results/latest.json (see bench/README.md for the method behind each figure).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname } from 'node:path';
import { BenchEnv } from './env.ts';
import { installCommandCounter } from './instrument.ts';
import { parseOptions, SCENARIOS, type ScenarioName } from './options.ts';
import { progress, type Scenario, type ScenarioResult } from './scenario.ts';
import { apiCreate } from './scenarios/api-create.ts';
import { callbackLatency } from './scenarios/callback-latency.ts';
import { listCostGrowth } from './scenarios/list-cost.ts';
import { memory } from './scenarios/memory.ts';
import { memoryRealistic } from './scenarios/memory-realistic.ts';
import { sseFanout } from './scenarios/sse-fanout.ts';
import { streaming } from './scenarios/streaming.ts';
import { throughput, throughputCallbacks } from './scenarios/throughput.ts';
import { conversations } from './scenarios/conversations.ts';
import { printTable } from './table.ts';

const ALL: Record<ScenarioName, Scenario> = {
  throughput,
  throughput_callbacks: throughputCallbacks,
  callback_latency: callbackLatency,
  api_create: apiCreate,
  list_cost_growth: listCostGrowth,
  memory,
  memory_realistic: memoryRealistic,
  streaming,
  sse_fanout: sseFanout,
  conversations,
};

const UNITS: Record<ScenarioName, string> = {
  throughput: 'runs/s',
  throughput_callbacks: 'runs/s',
  callback_latency: 'ms (p50)',
  api_create: 'requests/s',
  list_cost_growth: 'x (p50 at large / p50 at small)',
  memory: 'bytes of Redis per retained run',
  memory_realistic: 'bytes of Redis per retained run after the replay window',
  streaming: 'chunks/s',
  sse_fanout: 'Redis connections of the API process',
  conversations: 'runs/s (1,000 conversations x 5 runs)',
};

async function main(): Promise<void> {
  const params = parseOptions(process.argv.slice(2));
  installCommandCounter();
  const started = performance.now();
  const env = await BenchEnv.start(params);
  const stop = async () => {
    await env.close();
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const scenarios: Partial<Record<ScenarioName, ScenarioResult>> = {};
  let machine: Record<string, unknown> = {};
  try {
    machine = await env.machine();
    progress('bench', `${params.quick ? 'quick' : 'full'} run, ${params.rounds} round(s), redis ${String(machine.redis)} at ${env.redisUrl}`);
    for (const name of SCENARIOS) {
      if (!params.only.has(name)) continue;
      const t0 = performance.now();
      progress(name, 'start');
      try {
        scenarios[name] = await ALL[name].run(env);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        progress(name, `FAILED: ${message}`);
        scenarios[name] = { runhook: null, bare: null, ratio: null, unit: UNITS[name], error: message };
      }
      scenarios[name]!.seconds = Math.round((performance.now() - t0) / 1000);
      progress(name, `done in ${scenarios[name]!.seconds} s`);
      await env.flush();
    }
  } finally {
    await env.close();
  }

  const result = {
    machine: {
      ...machine,
      loadavg_at_end: loadavg().map((x) => Number(x.toFixed(2))),
      quick: params.quick,
      rounds: params.rounds,
      date: new Date().toISOString(),
      total_seconds: Math.round((performance.now() - started) / 1000),
    },
    scenarios,
  };
  mkdirSync(dirname(params.out), { recursive: true });
  writeFileSync(params.out, `${JSON.stringify(result, null, 2)}\n`);
  printTable(result.scenarios);
  console.log(`\n${result.machine.total_seconds} s; figures in ${params.out}`);
  process.exit(Object.values(scenarios).some((s) => s?.error) ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
