import type { StreamEntry } from './store.ts';

/** A Letta message as runhook returns it: its id, type and fields, and the seq id of its last chunk. */
export interface RunMessage {
  id: string;
  message_type: string;
  seq_id: number;
  [field: string]: unknown;
}

/**
 * Folds a run's stream into whole messages. A processor may emit one message in chunks (the echo
 * processor emits a token at a time) that share an id: their string `content` is joined, in order.
 */
export function assembleMessages(entries: readonly StreamEntry[]): RunMessage[] {
  const out: RunMessage[] = [];
  const byId = new Map<string, RunMessage>();
  for (const e of entries) {
    if (e.kind !== 'message') continue;
    const m = e.message as { id?: unknown; message_type?: unknown; content?: unknown };
    const id = typeof m.id === 'string' ? m.id : `seq-${e.seq_id}`;
    const prev = byId.get(id);
    if (prev && typeof prev.content === 'string' && typeof m.content === 'string') {
      prev.content += m.content;
      prev.seq_id = e.seq_id;
      continue;
    }
    const msg: RunMessage = { ...e.message, id, message_type: String(m.message_type ?? 'assistant_message'), seq_id: e.seq_id };
    byId.set(id, msg);
    out.push(msg);
  }
  return out;
}
