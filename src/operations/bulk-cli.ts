import { parseArgs } from 'node:util';
import { InvalidInputError } from '../errors.ts';
import type { Runhook } from '../runhook.ts';
import { BulkOperations } from './bulk.ts';
import { BulkAction, BulkFilter, type BulkOperation } from './schema.ts';

export const BULK_USAGE = `  cancel|replay|delete [--agent ID]... [--status S]... [--conversation ID] [--stop-reason R]
         [--created-after ISO] [--created-before ISO] [--all] [--no-wait] [--json]
                          a bulk operation on every run the filters match (a run worker walks it);
                          prints a progress bar until it ends, then the operation as JSON
`;

export interface BulkCliIo {
  /** Where the progress bar goes (stderr): redrawn in place on a terminal, a line per second otherwise. */
  progress: NodeJS.WriteStream | NodeJS.WritableStream;
  out: NodeJS.WritableStream;
  signal?: AbortSignal;
}

/** The filter the flags say; refuses an empty filter unless `--all` says every run is meant. */
export function filterFromArgs(argv: string[]): { filter: BulkFilter; wait: boolean; json: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      agent: { type: 'string', multiple: true },
      status: { type: 'string', multiple: true },
      conversation: { type: 'string' },
      'stop-reason': { type: 'string' },
      'created-after': { type: 'string' },
      'created-before': { type: 'string' },
      all: { type: 'boolean', default: false },
      'no-wait': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const agents = values.agent ?? [];
  const raw = {
    ...(agents.length === 1 && { agent_id: agents[0] }),
    ...(agents.length > 1 && { agent_ids: agents }),
    ...(values.status && { statuses: values.status }),
    ...(values.conversation && { conversation_id: values.conversation }),
    ...(values['stop-reason'] && { stop_reason: values['stop-reason'] }),
    ...(values['created-after'] && { created_after: values['created-after'] }),
    ...(values['created-before'] && { created_before: values['created-before'] }),
  };
  const parsed = BulkFilter.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  if (Object.keys(parsed.data).length === 0 && !values.all) {
    throw new InvalidInputError('no filter given: name --agent, --status, … or say --all to act on every run');
  }
  return { filter: parsed.data, wait: !values['no-wait'], json: values.json };
}

export function progressBar(op: BulkOperation, width = 30): string {
  const handled = op.done + op.failed;
  // `matched` grows while the walk finds runs: the bar is of what has been found so far.
  const filled = op.matched === 0 ? (op.status === 'running' ? 0 : width) : Math.min(width, Math.round((handled / op.matched) * width));
  const walking = op.status === 'running' ? ' (still finding runs)' : '';
  return `${op.action} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${handled}/${op.matched} · ${op.done} done, ${op.failed} failed · ${op.status}${walking}`;
}

/** `runhook cancel|replay|delete …`: starts the operation, follows it, prints it. Exit code 0 when done. */
export async function bulkCommand(runhook: Runhook, action: string, argv: string[], io: BulkCliIo): Promise<number> {
  const act = BulkAction.parse(action);
  const { filter, wait, json } = filterFromArgs(argv);
  const ops = new BulkOperations(runhook, runhook.log);
  try {
    let op = await ops.start({ action: act, filter });
    const tty = 'isTTY' in io.progress && io.progress.isTTY === true;
    if (wait) {
      if ((await ops.queue.getWorkersCount()) === 0) {
        io.progress.write('runhook: no run worker is running; the operation waits until one starts (runhook worker)\n');
      }
      let lastLine = 0;
      for (;;) {
        op = await ops.require(op.id);
        const line = progressBar(op);
        if (tty) io.progress.write(`\r\x1b[2K${line}`);
        else if (op.status !== 'running' || Date.now() - lastLine >= 1000) {
          io.progress.write(`${line}\n`);
          lastLine = Date.now();
        }
        if (op.status !== 'running' || io.signal?.aborted) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      if (tty) io.progress.write('\n');
    }
    io.out.write(json ? `${JSON.stringify(op)}\n` : `${JSON.stringify(op, null, 2)}\n`);
    return op.status === 'failed' ? 1 : 0;
  } finally {
    await ops.close();
  }
}
