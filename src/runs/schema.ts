import { randomUUID } from 'node:crypto';
import { z } from 'zod';

/**
 * The Run and the shapes around it, following Letta's `Run` (letta/schemas/run.py). Defined once; the
 * store, the workers, the API and the client all use these types.
 */

export const RunStatus = z.enum(['created', 'running', 'completed', 'failed', 'cancelled']);
export type RunStatus = z.infer<typeof RunStatus>;

export const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled'] as const satisfies readonly RunStatus[];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

export const StopReasonType = z.enum([
  'end_turn',
  'error',
  'llm_api_error',
  'invalid_llm_response',
  'invalid_tool_call',
  'max_steps',
  'max_tokens_exceeded',
  'no_tool_call',
  'tool_rule',
  'cancelled',
  'insufficient_credits',
  'requires_approval',
  'context_window_overflow_in_system_prompt',
]);
export type StopReasonType = z.infer<typeof StopReasonType>;

export const MessageType = z.enum([
  'system_message',
  'user_message',
  'assistant_message',
  'reasoning_message',
  'hidden_reasoning_message',
  'tool_call_message',
  'tool_return_message',
  'approval_request_message',
  'approval_response_message',
  'summary_message',
  'event_message',
]);
export type MessageType = z.infer<typeof MessageType>;

export const LettaRequestConfig = z.object({
  use_assistant_message: z.boolean().default(true),
  assistant_message_tool_name: z.string().max(256).default('send_message'),
  assistant_message_tool_kwarg: z.string().max(256).default('message'),
  include_return_message_types: z.array(MessageType).nullable().default(null),
});
export type LettaRequestConfig = z.infer<typeof LettaRequestConfig>;

/** The caller's metadata: any JSON object. Kept as the caller sent it. */
export const Metadata = z.record(z.string(), z.unknown());
export type Metadata = z.infer<typeof Metadata>;

export const RUN_ID_PATTERN = /^run-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const RunId = z.string().regex(RUN_ID_PATTERN, 'expected run-<uuid v4>');
export type RunId = z.infer<typeof RunId>;

export function newRunId(): RunId {
  return `run-${randomUUID()}`;
}

export const MAX_CALLBACK_URL_LENGTH = 2048;

/** Absolute http(s) URL of at most 2048 characters; where it may point is checked at send time. */
export const CallbackUrl = z
  .string()
  .max(MAX_CALLBACK_URL_LENGTH, `callback_url must be at most ${MAX_CALLBACK_URL_LENGTH} characters`)
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'callback_url must be an absolute http(s) URL');

const Timestamp = z.string();
/**
 * A time a caller gives (RunUpdate's completed_at): ISO 8601 with a real calendar date; with no offset it
 * is UTC, as Letta stores naive times.
 */
export const GivenTimestamp = z.iso.datetime({ offset: true, local: true });
const NonNegativeInt = z.number().int().nonnegative();

export const Run = z.object({
  id: RunId,
  status: RunStatus,
  created_at: Timestamp,
  completed_at: Timestamp.nullable(),
  agent_id: z.string(),
  conversation_id: z.string().nullable(),
  base_template_id: z.string().nullable(),
  background: z.boolean().nullable(),
  metadata: Metadata.nullable(),
  request_config: LettaRequestConfig.nullable(),
  stop_reason: StopReasonType.nullable(),
  callback_url: z.string().nullable(),
  callback_sent_at: Timestamp.nullable(),
  callback_status_code: z.number().int().nullable(),
  callback_error: z.string().nullable(),
  ttft_ns: NonNegativeInt.nullable(),
  total_duration_ns: NonNegativeInt.nullable(),
  /** runhook's: the processor that runs it (CONTRACT section 7); null for runs stored before it was kept. */
  processor: z.string().nullable(),
  /** runhook's: the run this one replays (POST /v1/runs/{id}/replay, CONTRACT section 10); null otherwise. */
  replay_of: z.string().nullable(),
  /** runhook's: its priority (1 first … 100 last), null for none (CONTRACT section 8). */
  priority: z.number().int().nullable(),
  /** runhook's: when it may start, null for at once (CONTRACT section 8). */
  run_at: Timestamp.nullable(),
});
export type Run = z.infer<typeof Run>;

const ShortId = z.string().min(1).max(256);

/** What a client sends to create a run. `metadata_` is Letta's input alias of `metadata`. */
export const RunCreate = z
  .object({
    agent_id: ShortId,
    input: z.unknown().optional(),
    callback_url: CallbackUrl.nullish(),
    metadata: Metadata.nullish(),
    metadata_: Metadata.nullish(),
    background: z.boolean().nullish(),
    conversation_id: ShortId.nullish(),
    base_template_id: ShortId.nullish(),
    request_config: LettaRequestConfig.nullish(),
    /** runhook's: a processor by name (echo, openai, http, or one the deployment configured). */
    processor: ShortId.nullish(),
    /** runhook's (CONTRACT section 8): 1 = first … 100 = last; none, after every prioritised run. */
    priority: z.number().int().min(1).max(100).nullish(),
    /** runhook's (CONTRACT section 8): the run stays `created` until then (an ISO 8601 time with an offset). */
    run_at: z.iso.datetime({ offset: true }).nullish(),
  })
  .transform(({ metadata_, ...rest }) => ({ ...rest, metadata: rest.metadata ?? metadata_ ?? null }));
export type RunCreate = z.input<typeof RunCreate>;
export type RunCreateParsed = z.output<typeof RunCreate>;

/** Letta's RunUpdate: these fields only; anything else is dropped, as Letta does. */
export const RunUpdate = z.object({
  status: RunStatus.optional(),
  completed_at: GivenTimestamp.nullish(),
  stop_reason: StopReasonType.nullish(),
  metadata: Metadata.nullish(),
  metadata_: Metadata.nullish(),
  total_duration_ns: NonNegativeInt.nullish(),
});
export type RunUpdate = z.infer<typeof RunUpdate>;

/** What a processor reports about the tokens and steps a run used (Letta's usage statistics). */
export const RunUsage = z.object({
  prompt_tokens: NonNegativeInt.default(0),
  completion_tokens: NonNegativeInt.default(0),
  total_tokens: NonNegativeInt.default(0),
  step_count: NonNegativeInt.default(0),
});
export type RunUsage = z.infer<typeof RunUsage>;

export const SortOrder = z.enum(['asc', 'desc']);
export type SortOrder = z.infer<typeof SortOrder>;

export const MAX_LIST_LIMIT = 1000;

/** The list filters and cursors of CONTRACT section 3, after parsing. */
export const RunListQuery = z.object({
  agent_ids: z.array(ShortId).optional(),
  statuses: z.array(RunStatus).optional(),
  background: z.boolean().optional(),
  stop_reason: StopReasonType.optional(),
  conversation_id: ShortId.optional(),
  before: RunId.optional(),
  after: RunId.optional(),
  limit: z.number().int().min(1).max(MAX_LIST_LIMIT).default(100),
  order: SortOrder.default('desc'),
});
export type RunListQuery = z.input<typeof RunListQuery>;

/** One delivery attempt of a run's callback, as the delivery log keeps it. */
export const CallbackAttempt = z.object({
  attempt: z.number().int().positive(),
  at: Timestamp,
  status_code: z.number().int().nullable(),
  error: z.string().nullable(),
  duration_ms: z.number().nonnegative(),
  /** true when this attempt was the last one and it failed: the callback is given up. */
  gave_up: z.boolean().default(false),
});
export type CallbackAttempt = z.infer<typeof CallbackAttempt>;
