import { setTimeout as sleep } from 'node:timers/promises';
import type { Runhook } from '../runhook.ts';
import { readQueuesReport } from './queue-state.ts';
import { renderStatus } from './status-view.ts';

export interface StatusOptions {
  /** Redraw every `intervalMs` until `signal` aborts. */
  watch: boolean;
  /** The report as JSON (GET /v1/queues' shape); with watch, one JSON object a line. */
  json: boolean;
  intervalMs: number;
  out: NodeJS.WriteStream | NodeJS.WritableStream;
  /** What the header says this is, e.g. the key prefix. */
  where: string;
  signal?: AbortSignal;
}

const CLEAR = '\x1b[H\x1b[2J';

/**
 * `runhook status`: the state GET /v1/queues reports, read from Redis with the same function, so the
 * two always agree. A failed read while watching is shown and the next one tried; a failed first read
 * (no --watch) is thrown.
 */
export async function showStatus(runhook: Runhook, o: StatusOptions): Promise<void> {
  const tty = 'isTTY' in o.out && o.out.isTTY === true;
  const footer = `every ${o.intervalMs} ms; Ctrl-C to stop`;
  const show = async () => {
    const report = await readQueuesReport(runhook);
    if (o.json) o.out.write(`${o.watch ? JSON.stringify(report) : JSON.stringify(report, null, 2)}\n`);
    else o.out.write((o.watch && tty ? CLEAR : '') + renderStatus(report, { where: o.where, ...(o.watch && { footer }) }));
  };
  await show();
  while (o.watch && !o.signal?.aborted) {
    try {
      await sleep(o.intervalMs, undefined, { signal: o.signal });
    } catch {
      return; // aborted: Ctrl-C
    }
    await show().catch((err: Error) =>
      o.out.write(o.json ? `${JSON.stringify({ error: { message: err.message } })}\n` : `runhook status: ${err.message}; retrying\n`),
    );
  }
}
