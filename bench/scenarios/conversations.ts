import { startService } from '../../src/service.ts';
import type { BenchEnv } from '../env.ts';
import { alternate, type Scenario, type ScenarioResult } from '../scenario.ts';
import { median, percentiles, round } from '../stats.ts';
import { lanes, sleep, waitForCount } from '../util.ts';
import { completedRuns } from './throughput.ts';

/** One round: runs/s through the conversations, and every gap from one run's end to the next one's start. */
interface ConversationsRound {
  runs_per_s: number;
  elapsed_ms: number;
  /** Milliseconds between a run's completed_us and the next run of its conversation's started_us. */
  gaps_ms: number[];
}

/**
 * Flow control's cost (issue 12): `conversations` conversations of `perConversation` runs each, created
 * interleaved (run i of every conversation before run i+1 of any), echo with no delay. Every hand-over
 * happens in the script that ends a run; the gap measured is the whole path to the next start: the
 * ready set, the job added by the worker that ended the run, BullMQ handing it to a worker.
 */
async function round1(env: BenchEnv, conversations: number, perConversation: number, live?: number): Promise<ConversationsRound> {
  const config = env.runhookConfig('rh');
  const service = await startService(config, env.log, new Set(['runs']));
  const rh = service.runhook;
  const n = conversations * perConversation;
  try {
    const ids: string[][] = Array.from({ length: conversations }, () => []);
    const t0 = performance.now();
    const create = async (c: number) => {
      const { run } = await rh.createRun({ agent_id: `agent-${c % 50}`, conversation_id: `conv-${c}`, input: { text: 'hi' } });
      ids[c]!.push(run.id);
    };
    // All at once (run i of every conversation before run i+1 of any), or `live` conversations at a time,
    // each sent its runs at once and the next one started when its last run has ended.
    const enqueue = live
      ? lanes(conversations, live, async (c) => {
          for (let i = 0; i < perConversation; i++) await create(c);
          // Polled on the benchmark's own connection, not often: the polls are not runhook's work.
          const last = rh.store.keys.run(ids[c]!.at(-1)!);
          while ((await env.admin.hget(last, 'status')) !== 'completed') await sleep(25);
        })
      : lanes(n, env.params.enqueueWindow, (i) => create(i % conversations));
    const [end] = await Promise.all([
      waitForCount('conversation runs completed', () => completedRuns(env, rh), n, { stallMs: env.params.stallMs }),
      enqueue,
    ]);
    const elapsed = end - t0;
    // Read on the benchmark's connection, in one pipeline per conversation batch.
    const gaps: number[] = [];
    for (let c = 0; c < conversations; c += 100) {
      const p = env.admin.pipeline();
      const batch = ids.slice(c, c + 100);
      for (const runIds of batch) for (const id of runIds) p.hmget(rh.store.keys.run(id), 'seq', 'started_us', 'completed_us');
      const res = ((await p.exec()) ?? []).map(([, v]) => (v as string[]).map(Number));
      let k = 0;
      for (const runIds of batch) {
        const rows = runIds.map(() => res[k++]!).sort((a, b) => a[0]! - b[0]!);
        for (let i = 1; i < rows.length; i++) gaps.push((rows[i]![1]! - rows[i - 1]![2]!) / 1000);
      }
    }
    if (gaps.some((g) => g < 0)) throw new Error('a conversation ran two runs at once');
    return { runs_per_s: Math.round(n / (elapsed / 1000)), elapsed_ms: Math.round(elapsed), gaps_ms: gaps };
  } finally {
    await service.close();
  }
}

export const conversations: Scenario = {
  name: 'conversations',
  async run(env): Promise<ScenarioResult> {
    const { conversations: c, perConversation: k } = env.params.conversations;
    // Fewer conversations live than workers: the next run never queues behind other conversations' runs,
    // so its gap is the hand-over itself, plus whatever the one Node process is busy with. With 10 live
    // the process has headroom; with 40 it is CPU-bound (~1 ms of Node per run), and every gap also holds
    // the other live runs' work. All at once, a run also waits its turn behind ~1,000 heads.
    const live = 10;
    const busy = Math.max(1, Math.floor(env.params.concurrency * 0.8));
    const rounds = await alternate(
      'conversations',
      env.params.rounds,
      { runhook: () => round1(env, c, k, live), busy: () => round1(env, c, k, busy), saturated: () => round1(env, c, k) },
      {
      describe: (f) => {
        const p = percentiles(f.gaps_ms);
        return `${f.runs_per_s} runs/s, handover p50 ${round(p.p50, 2)} ms p99 ${round(p.p99, 2)} ms`;
      },
    });
    const rs = rounds.runhook!;
    const per = rs.map((r) => percentiles(r.gaps_ms));
    const p50 = median(per.map((p) => p.p50));
    const sat = rounds.saturated!;
    const satPer = sat.map((r) => percentiles(r.gaps_ms));
    const busyPer = rounds.busy!.map((r) => percentiles(r.gaps_ms));
    return {
      runhook: round(median(sat.map((r) => r.runs_per_s))),
      bare: null,
      ratio: null,
      unit: 'runs/s',
      target: 'handover p50 <= 5 ms',
      met: p50 === null ? null : p50 <= 5,
      handover_p50_ms: round(p50, 2),
      handover_p99_ms: round(median(per.map((p) => p.p99)), 2),
      handover_max_ms: round(median(per.map((p) => p.max)), 2),
      handover_is: `end of a run -> start of the next of its conversation, ${live} conversations live at a time (below the worker concurrency, so no queueing behind others)`,
      live_runs_per_s: round(median(rs.map((r) => r.runs_per_s))),
      [`live_${busy}`]: {
        is: `the same with ${busy} conversations live: the process is CPU-bound, so each gap also holds the other live runs' work`,
        runs_per_s: round(median(rounds.busy!.map((r) => r.runs_per_s))),
        gap_p50_ms: round(median(busyPer.map((p) => p.p50)), 2),
        gap_p99_ms: round(median(busyPer.map((p) => p.p99)), 2),
      },
      saturated: {
        is: 'all 1,000 conversations at once: runs/s (the figure above), and the same gap, which then includes waiting in turn behind the other conversations\' runs (FIFO, fair)',
        gap_p50_ms: round(median(satPer.map((p) => p.p50)), 2),
        gap_p99_ms: round(median(satPer.map((p) => p.p99)), 2),
      },
      conversations: c,
      runs_per_conversation: k,
      concurrency: env.params.concurrency,
      bare_is: 'none: BullMQ has no per-key order to compare with (its groups are BullMQ Pro)',
      rounds: {
        live: rs.map((r, i) => ({ runs_per_s: r.runs_per_s, elapsed_ms: r.elapsed_ms, gap_ms: per[i] })),
        saturated: sat.map((r, i) => ({ runs_per_s: r.runs_per_s, elapsed_ms: r.elapsed_ms, gap_ms: satPer[i] })),
      },
    };
  },
};
