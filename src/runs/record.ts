import { microsToIso } from '../clock.ts';
import { packJsonField, unpackJsonField } from './compact.ts';
import type { LettaRequestConfig, Metadata, Run, RunStatus, RunUsage, StopReasonType } from './schema.ts';

/**
 * How a Run is laid out in its Redis hash, and back. Absent fields mean null; JSON fields hold objects;
 * times are epoch microseconds (see clock.ts), so scripts can subtract them.
 */
export interface RunRecord {
  run: Run;
  input: unknown;
  seq: number;
  createdUs: number;
  startedUs: number | null;
  attempt: number;
  error: string | null;
  usage: RunUsage | null;
  lastSeq: number;
  /** Where flow control holds it (flow/lua/flow.lua): conv, limit, run (admitted); null when not in flow. */
  flow: 'conv' | 'limit' | 'run' | null;
}

export type RunHash = Record<string, string>;

export function flatToHash(flat: unknown): RunHash {
  const arr = flat as string[];
  const h: RunHash = {};
  for (let i = 0; i < arr.length; i += 2) h[arr[i]!] = arr[i + 1]!;
  return h;
}

function json<T>(v: string | undefined): T | null {
  return v === undefined ? null : (JSON.parse(v) as T);
}

function usageFromField(v: string | undefined): RunUsage | null {
  if (v === undefined) return null;
  const [prompt_tokens = 0, completion_tokens = 0, total_tokens = 0, step_count = 0] = v.split(',').map(Number);
  return { prompt_tokens, completion_tokens, total_tokens, step_count };
}

function num(v: string | undefined): number | null {
  return v === undefined ? null : Number(v);
}

export function hashToRecord(h: RunHash): RunRecord {
  const error = h.error ?? null;
  const metadata = json<Metadata>(h.metadata);
  const createdUs = Number(h.created_us);
  const run: Run = {
    id: h.id!,
    status: h.status as RunStatus,
    created_at: microsToIso(createdUs),
    completed_at: h.completed_us === undefined ? null : microsToIso(Number(h.completed_us)),
    agent_id: h.agent_id!,
    conversation_id: h.conversation_id ?? null,
    base_template_id: h.base_template_id ?? null,
    background: h.background === undefined ? null : h.background === '1',
    // Letta keeps a failed run's error in its metadata; it is stored apart so the caller's JSON is never
    // rewritten by a script.
    metadata: error === null ? metadata : { ...(metadata ?? {}), error },
    request_config: json<LettaRequestConfig>(h.request_config),
    stop_reason: (h.stop_reason as StopReasonType | undefined) ?? null,
    callback_url: h.callback_url ?? null,
    callback_sent_at: h.callback_sent_us === undefined ? null : microsToIso(Number(h.callback_sent_us)),
    callback_status_code: num(h.callback_status_code),
    callback_error: h.callback_error ?? null,
    ttft_ns: num(h.ttft_ns),
    total_duration_ns: num(h.total_duration_ns),
    processor: h.processor ?? null,
    replay_of: h.replay_of ?? null,
    priority: num(h.priority),
    run_at: h.run_at_us === undefined ? null : microsToIso(Number(h.run_at_us)),
  };
  return {
    run,
    // A large input is kept compressed (input_z, see compact.ts; one stored before that is plain), and
    // inflated only when read: a page of the run list never needs it.
    get input(): unknown {
      const value = json(unpackJsonField(h, 'input')) ?? undefined;
      Object.defineProperty(this, 'input', { value, enumerable: true, writable: true });
      return value;
    },
    seq: Number(h.seq),
    createdUs,
    startedUs: num(h.started_us),
    attempt: Number(h.attempt ?? 0),
    error,
    usage: usageFromField(h.usage),
    lastSeq: Number(h.msg_seq ?? 0),
    flow: (h.flow as RunRecord['flow'] | undefined) ?? null,
  };
}

/** Field/value pairs for a new run's hash; nulls are left out to keep the hash small. */
export function newRunFields(r: {
  id: string;
  agentId: string;
  createdUs: number;
  input: unknown;
  callbackUrl: string | null | undefined;
  metadata: Metadata | null | undefined;
  background: boolean | null | undefined;
  conversationId: string | null | undefined;
  baseTemplateId: string | null | undefined;
  requestConfig: LettaRequestConfig | null | undefined;
  processor?: string | null | undefined;
  replayOf?: string | null | undefined;
  priority?: number | null | undefined;
  runAtUs?: number | null | undefined;
}): string[] {
  const f: string[] = ['id', r.id, 'status', 'created', 'agent_id', r.agentId, 'created_us', String(r.createdUs)];
  const put = (k: string, v: string | null | undefined) => {
    if (v !== null && v !== undefined) f.push(k, v);
  };
  if (r.input !== undefined) f.push(...packJsonField('input', JSON.stringify(r.input)));
  put('callback_url', r.callbackUrl);
  put('metadata', r.metadata ? JSON.stringify(r.metadata) : undefined);
  put('background', r.background === null || r.background === undefined ? undefined : r.background ? '1' : '0');
  put('conversation_id', r.conversationId);
  put('base_template_id', r.baseTemplateId);
  put('request_config', r.requestConfig ? JSON.stringify(r.requestConfig) : undefined);
  put('processor', r.processor);
  put('replay_of', r.replayOf);
  put('priority', r.priority === null || r.priority === undefined ? undefined : String(r.priority));
  put('run_at_us', r.runAtUs === null || r.runAtUs === undefined ? undefined : String(r.runAtUs));
  return f;
}
