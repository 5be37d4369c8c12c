import OpenAI from 'openai';
import { startService } from '../../src/service.ts';
import { BenchChild } from '../child.ts';
import type { BenchEnv } from '../env.ts';
import { alternate, skipBare, type Scenario, type ScenarioResult } from '../scenario.ts';
import { median, percentiles, ratio, round } from '../stats.ts';
import { waitForCount } from '../util.ts';
import { completedRuns } from './throughput.ts';

/**
 * Model streams through the `openai` processor: `runs` runs at once, each streaming `chunks` content
 * deltas from an OpenAI-compatible server (its own process, no delay), against the same streams read by
 * a bare `openai` client in this process. Figure: content chunks per second from the first request (or
 * createRun) to the last stream's end (or the last run completed); runhook's chunks are the ones it
 * recorded (each checked against what was streamed). Beside it, ttft_ns minus the server's first-chunk
 * delay (0 here). With 50 firehoses at once that is mostly the wait for an event loop busy parsing the
 * other streams (the bare client's `bare_first_chunk_*` shows the same wait), so a second pass makes runs
 * one at a time whose first chunk comes after QUIET_DELAY_MS: `ttft_overhead_quiet_*` is what runhook
 * itself adds before a first token (queueing, starting, the request).
 *
 * Both sides read through the SDK's SSE reader, which copies the rest of its buffer for every event it
 * takes out (openai/core/streaming iterSSEChunks), so one network read holding many events costs it
 * time quadratic in their number; a no-delay server makes such reads, a real model rarely does.
 */
interface StreamingRound {
  chunks_per_s: number;
  elapsed_ms: number;
  chunks: number;
  /** runhook: ttft_ns of each run, ms; bare: request start → first content chunk, ms. */
  ttft_ms: number[];
}

const MODEL = 'bench-model';

async function serverCounts(server: BenchChild): Promise<{ requests: number; finished: number; closed: number }> {
  return server.request('count');
}

async function bareRound(env: BenchEnv, server: BenchChild, baseURL: string, runs: number, chunks: number): Promise<StreamingRound> {
  await serverCounts(server);
  const client = new OpenAI({ baseURL, apiKey: 'bench', maxRetries: 0 });
  const t0 = performance.now();
  const ttft: number[] = [];
  const counts = await Promise.all(
    Array.from({ length: runs }, async (_, i) => {
      const start = performance.now();
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: `stream ${i}` }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let n = 0;
      for await (const chunk of stream) {
        const c = chunk.choices[0]?.delta.content;
        if (typeof c === 'string' && c !== '') {
          if (n === 0) ttft.push(performance.now() - start);
          n++;
        }
      }
      return n;
    }),
  );
  const elapsed = performance.now() - t0;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== runs * chunks) throw new Error(`bare: read ${total} chunks, expected ${runs * chunks}`);
  return { chunks_per_s: Math.round(total / (elapsed / 1000)), elapsed_ms: Math.round(elapsed), chunks: total, ttft_ms: ttft };
}

async function runhookRound(env: BenchEnv, server: BenchChild, baseURL: string, runs: number, chunks: number): Promise<StreamingRound> {
  await serverCounts(server);
  const config = env.runhookConfig('stream', { processor: 'openai', openaiBaseUrl: baseURL, openaiModel: MODEL, openaiMaxRetries: 0 });
  const service = await startService(config, env.log, new Set(['runs']));
  const rh = service.runhook;
  try {
    const t0 = performance.now();
    const created = await Promise.all(
      Array.from({ length: runs }, (_, i) => rh.createRun({ agent_id: 'agent-bench', input: { messages: [{ role: 'user', content: `stream ${i}` }] } })),
    );
    const end = await waitForCount('runhook streaming runs completed', () => completedRuns(env, rh), runs, { stallMs: env.params.stallMs });
    const elapsed = end - t0;
    // Every chunk the server streamed is recorded, in order, as one assistant message.
    let total = 0;
    const ttft: number[] = [];
    for (const { run } of created) {
      const entries = await rh.store.streamEntries(run.id, 0, chunks + 10);
      const messages = entries.filter((e) => e.kind === 'message');
      if (messages.length !== chunks) throw new Error(`run ${run.id}: recorded ${messages.length} chunks, expected ${chunks}`);
      total += messages.length;
      const done = await rh.getRun(run.id);
      if (done.ttft_ns !== null) ttft.push(done.ttft_ns / 1e6);
    }
    const seen = await serverCounts(server);
    if (seen.finished !== runs) throw new Error(`the server finished ${seen.finished} of ${runs} streams (${seen.closed} closed early)`);
    return { chunks_per_s: Math.round(total / (elapsed / 1000)), elapsed_ms: Math.round(elapsed), chunks: total, ttft_ms: ttft };
  } finally {
    await service.close();
  }
}

/** The quiet pass's first-chunk delay at the server. */
const QUIET_DELAY_MS = 20;

/** ttft_ns − the server's delay of runs made one at a time, each answered by a "quiet" stream. */
async function quietRunhook(env: BenchEnv, baseURL: string, n: number): Promise<number[]> {
  const config = env.runhookConfig('stream-quiet', { processor: 'openai', openaiBaseUrl: baseURL, openaiModel: MODEL, openaiMaxRetries: 0 });
  const service = await startService(config, env.log, new Set(['runs']));
  try {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const { run } = await service.runhook.createRun({ agent_id: 'agent-bench', input: { messages: [{ role: 'user', content: `quiet ${i}` }] } });
      const done = await service.runhook.waitForRun(run.id, { timeoutMs: 10_000, pollMs: 5 });
      if (done.status !== 'completed' || done.ttft_ns === null) throw new Error(`quiet run ${run.id} ended ${done.status}`);
      // The first few warm the worker's path; they count like the rest.
      out.push(done.ttft_ns / 1e6 - QUIET_DELAY_MS);
    }
    return out;
  } finally {
    await service.close();
  }
}

/** The same for a bare client: request start → first content chunk, less the server's delay. */
async function quietBare(baseURL: string, n: number): Promise<number[]> {
  const client = new OpenAI({ baseURL, apiKey: 'bench', maxRetries: 0 });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `quiet ${i}` }], stream: true });
    let first: number | undefined;
    for await (const chunk of stream) if (first === undefined && chunk.choices[0]?.delta.content) first = performance.now();
    out.push(first! - t0 - QUIET_DELAY_MS);
  }
  return out;
}

const describe = (r: StreamingRound) => {
  const p = percentiles(r.ttft_ms);
  return `${r.chunks_per_s} chunks/s in ${r.elapsed_ms} ms, ttft p50 ${round(p.p50)} ms p99 ${round(p.p99)} ms`;
};

export const streaming: Scenario = {
  name: 'streaming',
  async run(env): Promise<ScenarioResult> {
    const { runs, chunks } = env.params.streaming;
    const server = await BenchChild.start('./children/openai-server.ts', [String(chunks), String(QUIET_DELAY_MS)]);
    const baseURL = `http://127.0.0.1:${Number(server.ready.port)}/v1`;
    try {
      const rounds = await alternate(
        'streaming',
        env.params.rounds,
        { bare: () => bareRound(env, server, baseURL, runs, chunks), runhook: () => runhookRound(env, server, baseURL, runs, chunks) },
        {
          skip: skipBare(env),
          describe,
          ...(env.params.warmup && {
            warmup: { bare: () => bareRound(env, server, baseURL, runs, chunks), runhook: () => runhookRound(env, server, baseURL, runs, chunks) },
          }),
        },
      );
      const quiet = percentiles(await quietRunhook(env, baseURL, env.params.streaming.quietRuns));
      const quietBareP = env.params.noBare ? null : percentiles(await quietBare(baseURL, env.params.streaming.quietRuns));
      const rh = median(rounds.runhook!.map((r) => r.chunks_per_s));
      const bare = median(rounds.bare!.map((r) => r.chunks_per_s));
      const r = ratio(rh, bare);
      // The server's first-chunk delay is 0, so ttft_ns itself is the overhead.
      const overhead = percentiles(rounds.runhook!.flatMap((x) => x.ttft_ms));
      const bareTtft = percentiles(rounds.bare!.flatMap((x) => x.ttft_ms));
      return {
        runhook: round(rh),
        bare: round(bare),
        ratio: round(r),
        unit: 'chunks/s',
        target: 'ratio >= 0.5; ttft overhead p50 <= 5 ms (quiet pass)',
        met: r === null ? null : r >= 0.5 && quiet.p50 !== null && quiet.p50 <= 5,
        // Of the 50 runs at once: each run's first token waits for the event loop, busy parsing the other
        // 49 streams (bare_first_chunk_* is the same wait for the bare client).
        ttft_overhead_p50_ms: round(overhead.p50),
        ttft_overhead_p99_ms: round(overhead.p99),
        bare_first_chunk_p50_ms: round(bareTtft.p50),
        bare_first_chunk_p99_ms: round(bareTtft.p99),
        // One run at a time, first chunk after QUIET_DELAY_MS: what runhook itself adds before a first token.
        ttft_overhead_quiet_p50_ms: round(quiet.p50),
        ttft_overhead_quiet_p99_ms: round(quiet.p99),
        bare_first_chunk_overhead_quiet_p50_ms: round(quietBareP?.p50),
        bare_first_chunk_overhead_quiet_p99_ms: round(quietBareP?.p99),
        quiet_runs: env.params.streaming.quietRuns,
        quiet_first_chunk_delay_ms: QUIET_DELAY_MS,
        runs,
        chunks_per_run: chunks,
        first_chunk_delay_ms: 0,
        rounds: Object.fromEntries(
          Object.entries(rounds).map(([v, rs]) => [v, rs.map((x) => ({ chunks_per_s: x.chunks_per_s, elapsed_ms: x.elapsed_ms, ttft_p50_ms: round(percentiles(x.ttft_ms).p50) }))]),
        ),
        table_rows: [
          ['  ttft overhead, 50 at once', `p50 ${round(overhead.p50)}`, `p50 ${round(bareTtft.p50)}`, '', 'ms', '', ''],
          ['  ttft overhead, one at a time', `p50 ${round(quiet.p50)}`, `p50 ${round(quietBareP?.p50)}`, '', 'ms', '', ''],
          ['', `p99 ${round(quiet.p99)}`, `p99 ${round(quietBareP?.p99)}`, '', 'ms', '', ''],
        ],
      };
    } finally {
      await server.stop();
    }
  },
};
