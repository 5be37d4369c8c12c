import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { RunStore } from '../runs/store.ts';

/** How often callback workers look at the outbox, and how old an entry must be to count as left behind. */
export const OUTBOX_SWEEP_INTERVAL_MS = 1_000;
export const OUTBOX_GRACE_MS = 2_000;

/**
 * How old an outbox entry must be before the sweep takes it: past the longest first attempt made at
 * once (connect, headers and body timeouts, plus reading and recording), so that the sweep only takes
 * what a crash left.
 */
export function outboxGraceMs(config: Pick<Config, 'callbackTimeoutMs'>): number {
  return OUTBOX_GRACE_MS + 3 * config.callbackTimeoutMs;
}
const PAGE = 500;

export interface OutboxDeps {
  store: RunStore;
  /** Adds the delivery jobs and takes the runs out of the outbox (Runhook.dispatchCallbacks). */
  dispatch: (runIds: string[]) => Promise<void>;
  log: Logger;
}

/**
 * The slow path of the callback trigger. The process that ends a run dispatches its callback at once;
 * if it died between the terminal transition and adding the job, the run is still in the outbox, and
 * this sweep adds the job. Entries younger than the grace are left to the fast path. Adding twice is
 * harmless (the job id is per run).
 */
export async function sweepCallbackOutbox(deps: OutboxDeps, nowMs = Date.now(), graceMs = OUTBOX_GRACE_MS): Promise<number> {
  let swept = 0;
  for (;;) {
    const ids = await deps.store.dueCallbackIds(nowMs - graceMs, PAGE);
    if (ids.length === 0) return swept;
    await deps.dispatch(ids);
    for (const id of ids) deps.log.info({ run_id: id }, 'callback job added by the outbox sweep');
    swept += ids.length;
    if (ids.length < PAGE) return swept;
  }
}
