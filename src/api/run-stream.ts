import type { RunRecord } from '../runs/record.ts';
import { RunUsage, type Run } from '../runs/schema.ts';
import { isTerminal } from '../runs/status.ts';
import { parseStreamEntry, type RunStore, type StreamEntry } from '../runs/store.ts';
import type { RawEntry, StreamHub } from '../streams/stream-hub.ts';
import { StreamWatcher } from '../streams/stream-watcher.ts';
import { SseWriter } from './sse.ts';

/**
 * The hub hands every watcher of a run the same entry objects: each is parsed, and its event rendered,
 * once for all of them (a run watched by ten clients costs one JSON.parse and one JSON.stringify per
 * entry, not ten). Weak maps, so an entry is forgotten when the last watcher is done with it.
 */
const parsed = new WeakMap<RawEntry, StreamEntry>();
const rendered = new WeakMap<StreamEntry, string>();

function sharedEntry(raw: RawEntry): StreamEntry {
  let e = parsed.get(raw);
  if (!e) {
    e = parseStreamEntry(raw[0], raw[1]);
    parsed.set(raw, e);
  }
  return e;
}

function renderedEvent(e: Extract<StreamEntry, { kind: 'message' }>): string {
  let text = rendered.get(e);
  if (text === undefined) {
    text = SseWriter.render({ ...e.message, seq_id: e.seq_id }, e.seq_id);
    rendered.set(e, text);
  }
  return text;
}

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
  /** The process's one reader of live streams. */
  hub: StreamHub;
  /** Entries held for a client that reads slower than the run writes, before it is dropped. */
  watcherBuffer: number;
}

/**
 * Sends a run's message stream as SSE: what is already there, then what is appended, until the stop
 * entry, which the store writes in the same script that ends the run, so it is always the last entry.
 * Each event carries its seq id; resuming after a seq id therefore neither skips nor repeats one.
 * While the run goes on, the process's stream hub follows it (one XREAD for every watched run, however
 * many clients) and hands this client what it reads; what came before the client joined is read from the
 * log, and the seq id drops anything seen twice. A run that has ended is read without blocking.
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
      if (filter(e.message)) await o.writer.rendered(renderedEvent(e));
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

  const watcher = new StreamWatcher(o.watcherBuffer, () => {
    // Too far behind: say where to resume, then let go of the connection (its buffer may never drain).
    void o.writer.error({
      error: { code: 'STREAM_CLIENT_TOO_SLOW', message: `the client fell more than ${o.watcherBuffer} entries behind; resume with starting_after=${last}` },
    });
    o.writer.end({ closeConnection: true });
  });
  const unfollow = o.hub.follow(o.store.keys.messages(o.run.id), last, watcher);
  try {
    // What the run wrote before the hub followed it for this client; the hub hands over the rest.
    for (;;) {
      const entries = await o.store.streamEntries(o.run.id, last, o.batch);
      if (await send(entries)) return;
      if (entries.length < o.batch) break;
    }
    while (!o.signal.aborted && !o.writer.closed && !watcher.overflowed) {
      const raw = await watcher.take(o.pingMs, o.signal);
      if (raw.length > 0) {
        const fresh = raw.map(sharedEntry).filter((e) => e.seq_id > last);
        if (await send(fresh)) return;
        continue;
      }
      if (o.signal.aborted || watcher.overflowed) return;
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
    unfollow();
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
