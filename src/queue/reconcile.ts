import type { Queue } from 'bullmq';
import type { Config } from '../config.ts';
import { nowMicros } from '../clock.ts';
import type { Logger } from '../logger.ts';
import { statusOfStopReason } from '../runs/status.ts';
import { StopReasonType } from '../runs/schema.ts';
import type { RunStore } from '../runs/store.ts';
import { runJobOptions, type RunJobData, type RunJobResult } from './queues.ts';

export interface ReconcileDeps {
  config: Config;
  store: RunStore;
  queue: Queue<RunJobData, RunJobResult>;
  log: Logger;
}

export interface ReconcileReport {
  checked: number;
  requeued: number;
  completed: number;
  failed: number;
}

const PAGE = 500;

/**
 * Repairs every run that is not terminal although its job says otherwise: a job that finished or
 * failed while no one recorded it, a job that is gone, a run whose job was never added (a crash
 * between storing the run and adding its job). Every repair goes through the status machine, so a
 * reconciler racing a worker, or another reconciler, changes nothing twice.
 */
export async function reconcileRuns(deps: ReconcileDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { checked: 0, requeued: 0, completed: 0, failed: 0 };
  for (const status of ['created', 'running'] as const) {
    let after = 0;
    for (;;) {
      const page = await deps.store.nonTerminalIds(status, after, PAGE);
      for (const { id } of page) await reconcileOne(deps, id, report);
      report.checked += page.length;
      if (page.length < PAGE) break;
      after = page.at(-1)!.seq;
    }
  }
  if (report.requeued + report.completed + report.failed > 0) deps.log.info(report, 'reconciler repaired runs');
  return report;
}

async function reconcileOne(deps: ReconcileDeps, id: string, report: ReconcileReport): Promise<void> {
  const { store, queue, config, log } = deps;
  const record = await store.getRecord(id);
  if (!record) return;
  const job = await queue.getJob(id);
  const state = job ? await job.getState() : 'unknown';
  const status = record.run.status;
  const fail = async (error: string) => {
    const r = await store.transition(id, 'failed', { error });
    if (r.outcome === 'moved') {
      report.failed++;
      log.warn({ run_id: id, error }, 'reconciler failed a run');
    }
  };

  if (state === 'failed') return fail(job?.failedReason || 'job failed');
  if (state === 'completed') {
    if (status === 'created') return fail('job ended without starting the run');
    const parsed = StopReasonType.safeParse(job?.returnvalue?.stop_reason);
    const stopReason = parsed.success ? parsed.data : 'end_turn';
    const r = await store.transition(id, statusOfStopReason(stopReason), { stopReason });
    if (r.outcome === 'moved') report.completed++;
    return;
  }
  if (state !== 'unknown') return;
  if (status === 'running') return fail('job lost: the run was running but its job no longer exists');
  const ageMs = (nowMicros() - record.createdUs) / 1000;
  if (ageMs < config.createdGraceMs) return;
  await queue.add('run', { agent_id: record.run.agent_id }, runJobOptions(config, id));
  report.requeued++;
  log.warn({ run_id: id }, 'reconciler enqueued a run that had no job');
}
