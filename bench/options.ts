import { parseArgs } from 'node:util';

export const SCENARIOS = [
  'throughput',
  'throughput_callbacks',
  'callback_latency',
  'api_create',
  'list_cost_growth',
  'memory',
  'memory_realistic',
  'streaming',
  'sse_fanout',
  'conversations',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Every size and duration the benchmark uses, in one place; `--quick` swaps in tiny ones. */
export interface BenchParams {
  quick: boolean;
  /** Measured rounds per scenario; within a round bare and runhook run back to back, order alternating. */
  rounds: number;
  /** An uncounted small pass of each variant first, so neither side pays for JIT warm-up in the figures. */
  warmup: boolean;
  /** Worker concurrency of both sides. */
  concurrency: number;
  /** How many createRun calls the runhook side keeps in flight (it has no bulk path to match addBulk). */
  enqueueWindow: number;
  /** addBulk chunk of the bare side. */
  bulkChunk: number;
  /** A scenario that makes no progress for this long is stopped and reported as failed. */
  stallMs: number;
  throughput: { n: number };
  callbacks: { n: number };
  latency: { ratePerSec: number; durationSec: number };
  api: { connections: number; durationSec: number; warmupSec: number };
  list: { small: number; large: number; loadBudgetSec: number; queries: number; warmupQueries: number; agents: number };
  memory: { n: number; rounds: number };
  /** Realistic runs (2 KB message, metadata, 400-chunk answer) for the cost of a retained run. */
  memoryRealistic: { n: number };
  /** Runs at once, each streaming this many content chunks from the model server; then a ttft pass of quietRuns one at a time. */
  streaming: { runs: number; chunks: number; quietRuns: number };
  /** SSE clients spread over live runs, each run getting `messages` messages, one wave every `tickMs`. */
  fanout: { watchers: number; runs: number; messages: number; tickMs: number };
  /** Conversations of perConversation runs each, echo with no delay (flow control's hand-over). */
  conversations: { conversations: number; perConversation: number };
  only: ReadonlySet<ScenarioName>;
  out: string;
  appendOnly: boolean;
  /** Skip the bare BullMQ side (for profiling runhook alone); ratios are then null. */
  noBare: boolean;
  /** Config fields set on every runhook the benchmark starts (`--set field=value`); none by default. */
  configOverrides: Record<string, string | number | boolean>;
}

const FULL = {
  rounds: 3,
  warmup: true,
  throughput: { n: 20_000 },
  callbacks: { n: 20_000 },
  latency: { ratePerSec: 500, durationSec: 20 },
  api: { connections: 50, durationSec: 10, warmupSec: 2 },
  list: { small: 10_000, large: 1_000_000, loadBudgetSec: 200, queries: 300, warmupQueries: 50, agents: 10 },
  memory: { n: 100_000, rounds: 1 },
  memoryRealistic: { n: 10_000 },
  streaming: { runs: 50, chunks: 500, quietRuns: 200 },
  fanout: { watchers: 2_000, runs: 500, messages: 20, tickMs: 50 },
  conversations: { conversations: 1_000, perConversation: 5 },
};

const QUICK: typeof FULL = {
  rounds: 2,
  warmup: false,
  throughput: { n: 1_000 },
  callbacks: { n: 1_000 },
  latency: { ratePerSec: 200, durationSec: 2 },
  api: { connections: 50, durationSec: 2, warmupSec: 0 },
  list: { small: 2_000, large: 20_000, loadBudgetSec: 20, queries: 50, warmupQueries: 10, agents: 2 },
  memory: { n: 2_000, rounds: 1 },
  memoryRealistic: { n: 1_000 },
  streaming: { runs: 50, chunks: 500, quietRuns: 50 },
  fanout: { watchers: 200, runs: 50, messages: 5, tickMs: 50 },
  conversations: { conversations: 1_000, perConversation: 5 },
};

const USAGE = `npm run bench [-- options]
  --quick            tiny sizes, every scenario, < 60 s (also BENCH_QUICK=1); writes bench/results/quick.json
  --only a,b         run these scenarios only (${SCENARIOS.join(', ')}); writes bench/results/partial.json
  --rounds N         measured rounds per scenario (default ${FULL.rounds})
  --out FILE         where to write the JSON (default bench/results/latest.json)
  --aof              run the benchmark's redis-server with AOF (appendfsync everysec), as docker-compose does
  --set field=value  a runhook Config field for every runhook the benchmark starts (repeatable), e.g.
                     --set callbackEndpointConcurrency=50; writes partial.json
  --no-bare          runhook's side only (e.g. under node --cpu-prof); ratios are null; writes partial.json
  --help`;

export function parseOptions(argv: string[]): BenchParams {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      rounds: { type: 'string' },
      out: { type: 'string' },
      aof: { type: 'boolean', default: false },
      'no-bare': { type: 'boolean', default: false },
      set: { type: 'string', multiple: true },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick || process.env.BENCH_QUICK === '1';
  const base = quick ? QUICK : FULL;
  const only = new Set<ScenarioName>();
  for (const name of (values.only ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`--only: unknown scenario "${name}"; known: ${SCENARIOS.join(', ')}`);
    only.add(name as ScenarioName);
  }
  const rounds = values.rounds === undefined ? base.rounds : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds: expected a positive integer');
  const configOverrides: Record<string, string | number | boolean> = {};
  for (const kv of values.set ?? []) {
    const m = /^(\w+)=(.*)$/.exec(kv);
    if (!m) throw new Error(`--set: expected field=value, got "${kv}"`);
    const v = m[2]!;
    configOverrides[m[1]!] = v === 'true' ? true : v === 'false' ? false : v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  const partial = only.size > 0 || values['no-bare'] || Object.keys(configOverrides).length > 0;
  const out = values.out ?? (quick ? 'bench/results/quick.json' : partial ? 'bench/results/partial.json' : 'bench/results/latest.json');
  return {
    quick,
    rounds,
    warmup: base.warmup,
    concurrency: 50,
    enqueueWindow: 500,
    bulkChunk: 1_000,
    stallMs: 20_000,
    throughput: base.throughput,
    callbacks: base.callbacks,
    latency: base.latency,
    api: base.api,
    list: base.list,
    memory: base.memory,
    memoryRealistic: base.memoryRealistic,
    streaming: base.streaming,
    fanout: base.fanout,
    conversations: base.conversations,
    only: only.size > 0 ? only : new Set(SCENARIOS),
    out,
    appendOnly: values.aof,
    noBare: values['no-bare'],
    configOverrides,
  };
}
