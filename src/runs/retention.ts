import type { Logger } from '../logger.ts';
import type { RunStore } from './store.ts';

const BATCH = 500;

/**
 * The maintenance pass over ended runs: folds the message logs that a run's own end left unfolded (a
 * process died between the two; see message-log.ts), then removes terminal runs whose retention has
 * passed, with their indexes and messages.
 */
export async function sweepExpiredRuns(store: RunStore, log: Logger, nowMs = Date.now()): Promise<number> {
  let folded = 0;
  for (;;) {
    const n = await store.foldLeftoverLogs(nowMs, BATCH);
    folded += n;
    if (n < BATCH) break;
  }
  if (folded > 0) log.info({ folded }, 'maintenance folded message logs left unfolded');
  let removed = 0;
  for (;;) {
    const ids = await store.expiredIds(nowMs, BATCH);
    for (const id of ids) if (await store.delete(id)) removed++;
    if (ids.length < BATCH) break;
  }
  if (removed > 0) log.info({ removed }, 'retention removed expired runs');
  return removed;
}
