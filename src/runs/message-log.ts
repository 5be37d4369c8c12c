import { packText, unpackText } from './compact.ts';
import { assembleMessages, type RunMessage } from './messages.ts';
import type { StopReasonType } from './schema.ts';
import type { StreamEntry } from './store.ts';

/**
 * An ended run's message log (`<prefix>:mlog:<id>`), in one of two forms, told apart by the first byte
 * (after packText's compression, see compact.ts):
 *
 * - **chunks** (a digit first): `seq\tfield\tvalue` lines, every entry the run streamed and its stop
 *   entry. transition-run.lua writes this when the run ends, and it is all a log was before logs were
 *   folded: runs stored by that release, or whose fold was interrupted, read from it exactly as before.
 * - **folded** (`F`): a header line `F1 <first seq> <exact 0|1>`, then one line `seq\tm\tjson` per whole
 *   Letta message (chunks that share an id and type joined by assembleMessages, in its order, each with
 *   the seq id of its last chunk), then the stop line `seq\ts\treason`. `first seq` is the seq id of the
 *   run's first chunk (past 1 when an earlier attempt's were dropped); `exact` says that every message
 *   was one chunk, so the folded form is the stream itself and no chunk copy is kept.
 *
 * While the replay window is open, the chunk lines are also kept, compressed, in `<prefix>:mchunk:<id>`,
 * which expires by itself when the window closes (its PEXPIRE), so a resumed stream gets exactly the
 * chunks it missed until then, and no timer or sweep per run is needed to drop them.
 */
export interface MessageLog {
  form: 'chunks' | 'folded';
  /** Chunk entries in seq order, or whole messages in Letta's order then the stop entry. */
  entries: StreamEntry[];
  /** The seq id of the run's first chunk, null when it had none. */
  firstSeq: number | null;
  /** Folded and identical to the chunk stream (every message was one chunk). */
  exact: boolean;
}

const FOLDED = 'F';

export function parseEntryLine(line: string): StreamEntry {
  const a = line.indexOf('\t');
  const b = line.indexOf('\t', a + 1);
  const seq_id = Number(line.slice(0, a));
  const field = line.slice(a + 1, b);
  const value = line.slice(b + 1);
  if (field === 's') return { seq_id, kind: 'stop', stop_reason: (value || null) as StopReasonType | null };
  return { seq_id, kind: 'message', message: JSON.parse(value || '{}') as Record<string, unknown> };
}

/** A stored log (as GET returned it, Buffer or text) in whichever form it has; null when there is none. */
export function readLog(stored: Buffer | string | null | undefined): MessageLog | null {
  if (stored === null || stored === undefined || stored.length === 0) return null;
  const text = unpackText(stored);
  const lines = text.split('\n');
  if (text.startsWith(FOLDED)) {
    const [, first, exact] = lines[0]!.split(' ');
    return { form: 'folded', entries: lines.slice(1).map(parseEntryLine), firstSeq: first === '' || first === '0' ? null : Number(first), exact: exact === '1' };
  }
  const entries = lines.map(parseEntryLine);
  const firstMessage = entries.find((e) => e.kind === 'message');
  return { form: 'chunks', entries, firstSeq: firstMessage?.seq_id ?? null, exact: true };
}

/** The run's whole messages from a log of either form (the folded form holds them already). */
export function logMessages(log: MessageLog): RunMessage[] {
  return assembleMessages(log.entries);
}

/**
 * What a stream sends from a log: chunks in seq order, or the folded messages in the order they were
 * finished (by the seq id of their last chunk), so seq ids only grow and a resume after seq N gets
 * exactly the messages not finished at N, whole, then the stop entry.
 */
export function streamOrder(log: MessageLog): StreamEntry[] {
  return log.form === 'chunks' ? log.entries : [...log.entries].sort((a, b) => a.seq_id - b.seq_id);
}

export interface Folded {
  /** The folded log as stored (compressed when it pays). */
  log: Buffer;
  /** The chunk lines as stored for the replay window, or null when the folded form is exact. */
  chunks: Buffer | null;
}

/** Folds a chunk log (the lines transition-run.lua wrote) into whole messages. */
export function foldLog(chunkText: string): Folded {
  const entries = chunkText.split('\n').map(parseEntryLine);
  const chunks = entries.filter((e) => e.kind === 'message');
  const messages = assembleMessages(entries);
  const exact =
    messages.length === chunks.length &&
    chunks.every((e) => typeof e.message.id === 'string' && typeof e.message.message_type === 'string');
  const lines = [`${FOLDED}1 ${chunks[0]?.seq_id ?? 0} ${exact ? 1 : 0}`];
  for (const { seq_id, ...m } of messages) lines.push(`${seq_id}\tm\t${JSON.stringify(m)}`);
  for (const e of entries) if (e.kind === 'stop') lines.push(`${e.seq_id}\ts\t${e.stop_reason ?? ''}`);
  return { log: packText(lines.join('\n')), chunks: exact ? null : packText(chunkText) };
}
