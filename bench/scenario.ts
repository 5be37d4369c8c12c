import { loadavg } from 'node:os';
import type { BenchEnv } from './env.ts';
import type { ScenarioName } from './options.ts';

/** One scenario's entry of latest.json: the contract's four fields, then whatever detail it has. */
export interface ScenarioResult {
  runhook: number | null;
  bare: number | null;
  ratio: number | null;
  unit: string;
  /** The target, in words, and whether the medians meet it (null: not measured). */
  target?: string;
  met?: boolean | null;
  error?: string;
  [detail: string]: unknown;
}

export interface Scenario {
  name: ScenarioName;
  run(env: BenchEnv): Promise<ScenarioResult>;
}

export function progress(name: string, text: string): void {
  process.stderr.write(`[${name}] ${text}\n`);
}

/**
 * Runs every variant once per round, the order rotating from round to round so that neither side always
 * goes first (warm caches, a noisy neighbour's rhythm). With `warmup`, each variant runs once first,
 * uncounted. Returns the figures of each variant, in round order.
 */
export async function alternate<T>(
  name: string,
  rounds: number,
  variants: Record<string, (round: number) => Promise<T>>,
  opts: { warmup?: Record<string, () => Promise<unknown>>; describe?: (v: T) => string; skip?: (variant: string) => boolean } = {},
): Promise<Record<string, T[]>> {
  const all = Object.keys(variants);
  const out: Record<string, T[]> = Object.fromEntries(all.map((n) => [n, []]));
  const names = all.filter((n) => !opts.skip?.(n));
  for (const [v, warm] of Object.entries(opts.warmup ?? {})) {
    if (opts.skip?.(v)) continue;
    progress(name, `warm-up ${v}`);
    await warm();
  }
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    for (const v of order) {
      const figures = await variants[v]!(r);
      out[v]!.push(figures);
      progress(name, `round ${r + 1}/${rounds} ${v}: ${opts.describe ? opts.describe(figures) : JSON.stringify(figures)} (load ${loadavg()[0]!.toFixed(2)})`);
    }
  }
  return out;
}

/** With --no-bare, the bare BullMQ variants are left out. */
export function skipBare(env: BenchEnv): (variant: string) => boolean {
  return (v) => env.params.noBare && v.startsWith('bare');
}
