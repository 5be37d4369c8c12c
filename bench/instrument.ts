import { Pipeline, Redis } from 'ioredis';

/**
 * Where the time of a run goes, seen from both ends: the Redis commands this process sends (scripts by
 * name, pipelined commands apart, pipelines counted as one write), this process's CPU, and Redis's CPU.
 * The counter patches ioredis once; an increment per command costs nothing next to a round trip.
 */
type SendCommand = (this: Redis, command: { name: string; args: unknown[] }, stream?: unknown) => unknown;

const counts = new Map<string, number>();
const shaNames = new Map<string, string>();
let installed = false;
/** Connections whose commands are the benchmark's own bookkeeping (INFO, polling), not counted. */
const excluded = new WeakSet<object>();

export function excludeFromCount(redis: Redis): void {
  excluded.add(redis);
}

function scriptName(redis: Redis, sha: string): string {
  let name = shaNames.get(sha);
  if (name) return name;
  const set = (redis as unknown as { scriptsSet?: Record<string, { sha: string }> }).scriptsSet ?? {};
  for (const [n, s] of Object.entries(set)) shaNames.set(s.sha, n);
  name = shaNames.get(sha) ?? `script:${sha.slice(0, 8)}`;
  shaNames.set(sha, name);
  return name;
}

export function installCommandCounter(): void {
  if (installed) return;
  installed = true;
  const proto = Redis.prototype as unknown as { sendCommand: SendCommand };
  const original = proto.sendCommand;
  proto.sendCommand = function (this: Redis, command, stream) {
    if (excluded.has(this)) return original.call(this, command, stream);
    let name = command.name.toLowerCase();
    if ((name === 'evalsha' || name === 'eval') && typeof command.args[0] === 'string') {
      name = `lua:${scriptName(this, command.args[0])}`;
    }
    // A command handed a stream belongs to a pipeline/MULTI: written with the others in one go.
    if (stream) name = `${name} (pipelined)`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return original.call(this, command, stream);
  };
  const pipelineProto = Pipeline.prototype as unknown as { exec: (...a: unknown[]) => unknown };
  const exec = pipelineProto.exec;
  pipelineProto.exec = function (this: unknown, ...args: unknown[]) {
    counts.set('<pipeline write>', (counts.get('<pipeline write>') ?? 0) + 1);
    return exec.apply(this, args);
  };
}

export function commandSnapshot(): Map<string, number> {
  return new Map(counts);
}

/** Commands per run between two snapshots, biggest first; blocking reads of idle workers are included. */
export function commandsPerRun(before: Map<string, number>, after: Map<string, number>, runs: number): Record<string, number> {
  const out: [string, number][] = [];
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) out.push([k, Number((d / runs).toFixed(3))]);
  }
  out.sort((a, b) => b[1] - a[1]);
  return Object.fromEntries(out);
}

/** Round trips per run: commands written on their own, plus one per pipeline. */
export function roundTripsPerRun(perRun: Record<string, number>): number {
  let n = 0;
  for (const [k, v] of Object.entries(perRun)) {
    if (k.endsWith('(pipelined)')) continue;
    if (k === 'multi' || k === 'exec') continue;
    n += v;
  }
  return Number(n.toFixed(2));
}

export interface CpuSnapshot {
  nodeUs: number;
  redisUs: number;
  at: number;
}

export async function cpuSnapshot(admin: Redis): Promise<CpuSnapshot> {
  const info = await admin.info('cpu');
  const field = (k: string) => Number(info.match(new RegExp(`^${k}:([\\d.]+)`, 'm'))?.[1] ?? 0);
  const u = process.cpuUsage();
  return {
    nodeUs: u.user + u.system,
    // used_cpu_*_main_thread would exclude I/O threads; redis-server runs single-threaded I/O here anyway.
    redisUs: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6,
    at: performance.now(),
  };
}

export function cpuPerRun(a: CpuSnapshot, b: CpuSnapshot, runs: number): { node_cpu_us_per_run: number; redis_cpu_us_per_run: number } {
  return {
    node_cpu_us_per_run: Number(((b.nodeUs - a.nodeUs) / runs).toFixed(1)),
    redis_cpu_us_per_run: Number(((b.redisUs - a.redisUs) / runs).toFixed(1)),
  };
}

export type CommandStats = Map<string, { calls: number; usec: number }>;

/** Redis's own count of commands (scripts' inner calls included) and the time it spent in each. */
export async function redisCommandStats(admin: Redis): Promise<CommandStats> {
  const text = await admin.info('commandstats');
  const out: CommandStats = new Map();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

/**
 * Per run, the commands Redis ran and the µs it spent on them. `eval` (the whole script text sent and
 * hashed again) against `evalsha` tells whether a client resends script bodies; a script's time includes
 * the commands it calls, which are listed too.
 */
export function redisStatsPerRun(a: CommandStats, b: CommandStats, runs: number): Record<string, { calls: number; usec: number }> {
  const rows: [string, { calls: number; usec: number }][] = [];
  for (const [k, v] of b) {
    const before = a.get(k) ?? { calls: 0, usec: 0 };
    const calls = v.calls - before.calls;
    if (calls <= 0 || k === 'info') continue;
    rows.push([k, { calls: Number((calls / runs).toFixed(3)), usec: Number(((v.usec - before.usec) / runs).toFixed(1)) }]);
  }
  rows.sort((x, y) => y[1].usec - x[1].usec);
  return Object.fromEntries(rows);
}
