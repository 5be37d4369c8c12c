import type { StreamEntry } from './store.ts';

/** A Letta message as runhook returns it: its id, type and fields, and the seq id of its last chunk. */
export interface RunMessage {
  id: string;
  message_type: string;
  seq_id: number;
  [field: string]: unknown;
}

/**
 * The string fields in which Letta streams a message's deltas: `content` (assistant, user, system),
 * `reasoning`, `hidden_reasoning`, a tool call's `arguments`, `tool_return`, a summary, a content part's
 * `text`. Chunks of one message join these; any other field is the first chunk's, or filled in by a
 * later chunk when it was still missing (a tool call's `name` and `tool_call_id`, a `signature`).
 */
const DELTA_STRINGS = new Set(['content', 'reasoning', 'hidden_reasoning', 'arguments', 'tool_return', 'summary', 'text']);

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Joins one field of two chunks of a message. */
function mergeValue(key: string, prev: unknown, next: unknown): unknown {
  if (next === undefined || next === null) return prev;
  if (prev === undefined || prev === null) return next;
  if (typeof prev === 'string' && typeof next === 'string') return DELTA_STRINGS.has(key) ? prev + next : prev;
  if (Array.isArray(prev) && Array.isArray(next)) return key === 'content' ? mergeParts(prev, next) : mergeList(prev, next);
  if (isObject(prev) && isObject(next)) return mergeObject(prev, next);
  return prev;
}

function mergeObject(prev: Json, next: Json): Json {
  const out: Json = { ...prev };
  for (const [k, v] of Object.entries(next)) out[k] = mergeValue(k, out[k], v);
  return out;
}

/** Content parts (`[{type: 'text', text}]`) follow each other; a text part continued by the next chunk is joined. */
function mergeParts(prev: unknown[], next: unknown[]): unknown[] {
  const out = [...prev];
  for (const part of next) {
    const last = out.at(-1);
    if (isObject(last) && isObject(part) && last.type === 'text' && part.type === 'text' && typeof last.text === 'string') {
      out[out.length - 1] = mergeObject(last, part);
    } else out.push(part);
  }
  return out;
}

/**
 * Parallel tool calls or returns (`tool_calls`, `tool_returns`): a delta continues the entry with its
 * `tool_call_id`, or, when it carries none (as OpenAI's deltas after the first), the one at its index.
 * Lists of strings (`stdout`, `stderr`) are appended.
 */
function mergeList(prev: unknown[], next: unknown[]): unknown[] {
  const out = [...prev];
  next.forEach((item, i) => {
    if (!isObject(item)) {
      out.push(item);
      return;
    }
    const id = typeof item.tool_call_id === 'string' ? item.tool_call_id : undefined;
    let at = id === undefined ? i : out.findIndex((o) => isObject(o) && o.tool_call_id === id);
    if (at >= out.length || !isObject(out[at])) at = -1;
    if (at < 0) out.push(item);
    else out[at] = mergeObject(out[at] as Json, item);
  });
  return out;
}

/**
 * Folds a run's stream into whole messages, as Letta returns them. A processor may emit one message in
 * chunks that share an id and a type (the echo processor emits a token at a time; an LLM streams
 * reasoning, tool-call arguments, a tool return): they become one message, their deltas joined in order
 * (see DELTA_STRINGS). As in Letta, one id may also name messages of several types (a step's reasoning
 * and its tool call); those stay apart, next to each other, at the place of the id's first chunk, so a
 * cursor naming the id has one place and a page never returns a message twice.
 */
export function assembleMessages(entries: readonly StreamEntry[]): RunMessage[] {
  const groups = new Map<string, RunMessage[]>();
  for (const e of entries) {
    if (e.kind !== 'message') continue;
    const m = e.message as { id?: unknown; message_type?: unknown };
    const id = typeof m.id === 'string' ? m.id : `seq-${e.seq_id}`;
    const type = String(m.message_type ?? 'assistant_message');
    let group = groups.get(id);
    if (!group) groups.set(id, (group = []));
    const i = group.findIndex((g) => g.message_type === type);
    if (i < 0) {
      group.push({ ...e.message, id, message_type: type, seq_id: e.seq_id });
      continue;
    }
    const merged = mergeObject(group[i]!, e.message) as RunMessage;
    group[i] = { ...merged, id, message_type: type, seq_id: e.seq_id };
  }
  return [...groups.values()].flat();
}
