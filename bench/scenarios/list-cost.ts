import { closeRedis, createRedis, ready } from '../../src/queue/connection.ts';
import { Runhook } from '../../src/runhook.ts';
import type { RunListQuery } from '../../src/runs/schema.ts';
import type { BenchEnv } from '../env.ts';
import { alternate, progress, type Scenario, type ScenarioResult } from '../scenario.ts';
import { median, percentiles, ratio, round } from '../stats.ts';
import { lanes } from '../util.ts';

/**
 * List by agent with filters at a small and at a large number of stored runs. Both stores hold the same
 * mix: `agents` agents in turn, every tenth run failed (the rest `created`), so that each query shape
 * examines about as many candidates per page at either size (each agent has enough runs to fill a page
 * at the small size too) and only the size of the indexes differs.
 * Runs are bulk-loaded through RunStore.create (and transition for the failed ones), 1,000 in flight on
 * one connection; a load that would pass its time budget stops, and the size reached is reported.
 */
const SHAPES: Record<string, RunListQuery> = {
  // The headline: one agent's failed runs, newest first, a page of 50.
  agent_failed: { agent_ids: ['agent-1'], statuses: ['failed'], limit: 50 },
  agent: { agent_ids: ['agent-1'], limit: 50 },
  two_agents_two_statuses: { agent_ids: ['agent-1', 'agent-0'], statuses: ['created', 'failed'], limit: 50 },
  agent_failed_oldest_first: { agent_ids: ['agent-1'], statuses: ['failed'], limit: 50, order: 'asc' },
  // The hard case: agent-1 has no cancelled run, but the other agents have some (1 in 100 of their
  // runs), so the smallest index (status cancelled) is walked to its end: this one grows with the store.
  agent_sparse_status: { agent_ids: ['agent-1'], statuses: ['cancelled'], limit: 50 },
};

const SHAPE_BUDGET_MS = 2_000;
const MIN_QUERIES = 30;

interface Store {
  runhook: Runhook;
  stored: number;
  loadSeconds: number;
  close(): Promise<void>;
}

async function loadStore(env: BenchEnv, label: string, n: number, budgetSec: number): Promise<Store> {
  const config = env.runhookConfig(label);
  const redis = createRedis(env.redisUrl, 'worker');
  await ready(redis);
  const runhook = new Runhook(config, redis, env.log);
  const { agents } = env.params.list;
  const t0 = performance.now();
  const deadline = t0 + budgetSec * 1000;
  let lastReport = t0;
  const stored = await lanes(
    n,
    1_000,
    async (i) => {
      const agent = i % agents;
      const nth = Math.floor(i / agents); // the run's position among its agent's runs
      const { record } = await runhook.store.create({ agent_id: `agent-${agent}`, input: { text: 'hi' } });
      if (nth % 10 === 0) await runhook.store.transition(record.run.id, 'failed', { error: 'bench' });
      else if (nth % 100 === 5 && agent !== 1) await runhook.store.transition(record.run.id, 'cancelled');
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        progress('list_cost_growth', `loading ${label}: ${i.toLocaleString('en-US')} runs after ${Math.round((lastReport - t0) / 1000)} s`);
      }
    },
    deadline,
  );
  const loadSeconds = (performance.now() - t0) / 1000;
  return {
    runhook,
    stored,
    loadSeconds,
    close: async () => {
      await runhook.close();
      await closeRedis(redis);
    },
  };
}

type RoundFigures = Record<string, { p50: number | null; p99: number | null; returned: number; queries: number }>;

async function queryRound(env: BenchEnv, store: Store): Promise<RoundFigures> {
  const { queries, warmupQueries } = env.params.list;
  const out: RoundFigures = {};
  for (const [shape, q] of Object.entries(SHAPES)) {
    let returned = 0;
    for (let i = 0; i < warmupQueries; i++) await store.runhook.listRuns(q);
    const ms: number[] = [];
    // A slow shape (the sparse one at 1M) stops after SHAPE_BUDGET_MS, once it has MIN_QUERIES samples.
    const until = performance.now() + SHAPE_BUDGET_MS;
    for (let i = 0; i < queries && (i < MIN_QUERIES || performance.now() < until); i++) {
      const t = performance.now();
      returned = (await store.runhook.listRuns(q)).length;
      ms.push(performance.now() - t);
    }
    const p = percentiles(ms);
    out[shape] = { p50: round(p.p50), p99: round(p.p99), returned, queries: ms.length };
  }
  return out;
}

export const listCostGrowth: Scenario = {
  name: 'list_cost_growth',
  async run(env): Promise<ScenarioResult> {
    const { small, large, loadBudgetSec } = env.params.list;
    const stores: Store[] = [];
    try {
      const s = await loadStore(env, 'list-small', small, loadBudgetSec);
      stores.push(s);
      progress('list_cost_growth', `small store: ${s.stored.toLocaleString('en-US')} runs in ${s.loadSeconds.toFixed(1)} s`);
      const l = await loadStore(env, 'list-large', large, loadBudgetSec);
      stores.push(l);
      progress(
        'list_cost_growth',
        `large store: ${l.stored.toLocaleString('en-US')} runs in ${l.loadSeconds.toFixed(1)} s (${Math.round(l.stored / l.loadSeconds)} runs/s)` +
          (l.stored < large ? `: the ${loadBudgetSec} s load budget stopped it short of ${large.toLocaleString('en-US')}` : ''),
      );
      const rounds = await alternate(
        'list_cost_growth',
        env.params.rounds,
        { small: () => queryRound(env, s), large: () => queryRound(env, l) },
        { describe: (f) => Object.entries(f).map(([k, v]) => `${k} p50 ${v.p50} ms`).join(', ') },
      );
      const p50 = (v: string, shape: string) => median(rounds[v]!.map((r) => r[shape]!.p50));
      const growth = Object.fromEntries(
        Object.keys(SHAPES).map((shape) => [
          shape,
          { p50_small_ms: round(p50('small', shape)), p50_large_ms: round(p50('large', shape)), ratio: round(ratio(p50('large', shape), p50('small', shape))) },
        ]),
      );
      const headline = growth.agent_failed!.ratio;
      return {
        runhook: headline,
        bare: null,
        ratio: null,
        unit: `x (p50 at ${l.stored.toLocaleString('en-US')} / p50 at ${s.stored.toLocaleString('en-US')} runs)`,
        target: 'runhook (the growth ratio) <= 2',
        met: headline === null ? null : headline <= 2,
        bare_is: 'none: BullMQ has no list of runs by agent and status',
        headline_query: SHAPES.agent_failed,
        stored: { small: s.stored, large: l.stored, large_wanted: large },
        load: {
          small_seconds: round(s.loadSeconds),
          large_seconds: round(l.loadSeconds),
          large_runs_per_s: Math.round(l.stored / l.loadSeconds),
          budget_seconds: loadBudgetSec,
          stopped_by_budget: l.stored < large,
        },
        redis_used_memory_mb: round(Number((await env.info('memory')).used_memory) / 2 ** 20),
        shapes: SHAPES,
        growth,
        rounds,
        table_rows: [
          ['  list p50 small', String(growth.agent_failed!.p50_small_ms), '', '', 'ms', '', ''],
          ['  list p50 large', String(growth.agent_failed!.p50_large_ms), '', '', 'ms', '', ''],
          ['  sparse filter growth', String(growth.agent_sparse_status!.ratio), '', '', 'x (agent_sparse_status)', '', ''],
        ],
      };
    } finally {
      for (const st of stores) await st.close();
    }
  },
};
