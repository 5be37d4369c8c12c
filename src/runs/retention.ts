import type { Logger } from '../logger.ts';
import type { RunStore } from './store.ts';

const BATCH = 500;

/** Removes terminal runs whose retention has passed, with their indexes and messages. */
export async function sweepExpiredRuns(store: RunStore, log: Logger, nowMs = Date.now()): Promise<number> {
  let removed = 0;
  for (;;) {
    const ids = await store.expiredIds(nowMs, BATCH);
    for (const id of ids) if (await store.delete(id)) removed++;
    if (ids.length < BATCH) break;
  }
  if (removed > 0) log.info({ removed }, 'retention removed expired runs');
  return removed;
}
