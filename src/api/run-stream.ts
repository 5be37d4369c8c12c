import { Cluster } from 'ioredis';
import { ready, type RedisClient } from '../queue/connection.ts';
import type { RunRecord } from '../runs/record.ts';
import { RunUsage, type Run } from '../runs/schema.ts';
import { isTerminal } from '../runs/status.ts';
import { parseStreamEntry, type RunStore, type StreamEntry } from '../runs/store.ts';
import type { SseWriter } from './sse.ts';

export interface RunStreamOptions {
  store: RunStore;
  run: Run;
  /** Send what comes after this seq id. */
  after: number;
  batch: number;
  pingMs: number;
  /** Keep-alives as Letta `ping` messages (the SDK yields them) or as SSE comments (nobody sees them). */
  pings: boolean;
  writer: SseWriter;
  signal: AbortSignal;
}

type XReadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

/**
 * Sends a run's message stream as SSE: what is already there, then what is appended, until the stop
 * entry, which the store writes in the same script that ends the run, so it is always the last entry.
 * Each event carries its seq id; resuming after a seq id therefore neither skips nor repeats one.
 * While the run goes on, a connection of its own blocks on XREAD for the next entries (it is closed
 * when the client goes); a run that has ended is read without blocking.
 */
export async function streamRun(o: RunStreamOptions): Promise<void> {
  const filter = messageFilter(o.run);
  let last = o.after;

  /** Writes entries; true once the stop entry was sent (and the stream is finished). */
  const send = async (entries: StreamEntry[]): Promise<boolean> => {
    for (const e of entries) {
      last = e.seq_id;
      if (e.kind === 'stop') {
        await finish(e);
        return true;
      }
      if (filter(e.message)) await o.writer.event({ ...e.message, seq_id: e.seq_id }, e.seq_id);
    }
    return false;
  };

  /**
   * The end of an ended run's stream, as Letta's: the stop reason (unless the client saw it already),
   * always `usage_statistics` (zeros when the processor reported none), and for a failed run Letta's
   * `event: error` (an error_message), on which the SDK's stream iterator throws, then `[DONE]`.
   */
  const finish = async (stop: Extract<StreamEntry, { kind: 'stop' }> | undefined): Promise<void> => {
    if (stop) await o.writer.event({ message_type: 'stop_reason', stop_reason: stop.stop_reason, seq_id: stop.seq_id }, stop.seq_id);
    const record = await o.store.getRecord(o.run.id);
    if (record && isTerminal(record.run.status)) {
      await o.writer.event({ message_type: 'usage_statistics', ...(record.usage ?? RunUsage.parse({})), run_ids: [o.run.id] });
      if (record.run.status === 'failed') await o.writer.error(errorMessage(record));
    }
    await o.writer.done();
  };

  /** Reads to the end without blocking: the run has ended, so nothing more will be appended. */
  const drain = async (): Promise<void> => {
    for (;;) {
      const entries = await o.store.streamEntries(o.run.id, last, o.batch);
      if (await send(entries)) return;
      // The stop entry is at or before `after` (the client saw it already), or the stream is gone.
      if (entries.length < o.batch) return finish(undefined);
      if (o.writer.closed) return;
    }
  };

  if (isTerminal(o.run.status)) return drain();

  const conn = duplicate(o.store.redis, `${o.store.keys.prefix}:stream`);
  const aborted = new Promise<void>((resolve) => o.signal.addEventListener('abort', () => resolve(), { once: true }));
  o.signal.addEventListener('abort', () => conn.disconnect(), { once: true });
  conn.on('error', () => {});
  try {
    await Promise.race([ready(conn), aborted]);
    const key = o.store.keys.messages(o.run.id);
    while (!o.signal.aborted && !o.writer.closed) {
      const reply = (await conn.xread('COUNT', o.batch, 'BLOCK', o.pingMs, 'STREAMS', key, `${last}-0`)) as XReadReply;
      if (reply) {
        const entries = reply[0]![1].map(([id, fields]) => parseStreamEntry(id, fields));
        if (await send(entries)) return;
        continue;
      }
      // Silent for pingMs: is the run still there, and still going?
      const run = await o.store.get(o.run.id);
      if (!run) {
        await o.writer.error({ error: { code: 'RUN_NOT_FOUND', message: `run ${o.run.id} was deleted` } });
        return;
      }
      if (isTerminal(run.status)) return drain();
      if (o.pings) await o.writer.event({ message_type: 'ping', id: `ping-${Date.now()}`, date: new Date().toISOString(), run_id: o.run.id });
      else await o.writer.comment('ping');
    }
  } catch (err) {
    // A read interrupted because the client went away is the normal end of a stream.
    if (o.signal.aborted || o.writer.closed) return;
    throw err;
  } finally {
    conn.disconnect();
  }
}

/** Letta's LettaErrorMessage for a failed run: its stop reason as the error type, its error as the message. */
function errorMessage(record: RunRecord): Record<string, unknown> {
  const stop = record.run.stop_reason ?? 'error';
  return {
    message_type: 'error_message',
    run_id: record.run.id,
    error_type: stop,
    message: record.error ?? `run failed (${stop})`,
    detail: null,
    seq_id: null,
  };
}

/** The run's `include_return_message_types`, as Letta applies it to what a run returns. */
function messageFilter(run: Run): (m: Record<string, unknown>) => boolean {
  const types = run.request_config?.include_return_message_types;
  if (!types) return () => true;
  const allowed = new Set<string>(types);
  return (m) => allowed.has(String(m.message_type));
}

function duplicate(redis: RedisClient, name: string): RedisClient {
  return redis instanceof Cluster ? redis.duplicate() : redis.duplicate({ connectionName: name });
}
