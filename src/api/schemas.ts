import { z } from 'zod';
import { ERROR_CODES } from '../errors.ts';
import {
  CallbackAttempt,
  CallbackUrl,
  MAX_LIST_LIMIT,
  MessageType,
  Run,
  RunId,
  RunStatus,
  RunUsage,
  SortOrder,
  StopReasonType,
} from '../runs/schema.ts';

/**
 * The shapes of the HTTP API that are not the Run itself: query strings, Letta's request bodies, and
 * the answers. The routes validate with these and /openapi.json is generated from them.
 */

// Named in the OpenAPI document's components instead of being inlined into every route.
export const RunDoc = Run.meta({ id: 'Run', description: "A background run, as Letta's Run" });

const ShortId = z.string().min(1).max(256);

const queryBool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const limit = (fallback: number) => z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(fallback);

export const RunIdParams = z.object({ run_id: ShortId.describe('The run id, run-<uuid>') });
export const AgentIdParams = z.object({ agent_id: ShortId });

/** GET /v1/runs: Letta's list parameters, the deprecated ones included, so older clients keep working. */
export const RunListParams = z.object({
  agent_id: ShortId.optional(),
  agent_ids: z.array(ShortId).optional().describe('Deprecated in Letta in favour of agent_id; both are accepted'),
  statuses: z.array(RunStatus).optional().describe('Repeat the key for several: statuses=a&statuses=b'),
  active: queryBool.optional().describe('true: only created or running runs; ignored when `statuses` is given (as Letta)'),
  background: queryBool.optional(),
  stop_reason: StopReasonType.optional(),
  conversation_id: ShortId.optional(),
  before: RunId.optional().describe('Runs that come before this run id in the requested order (the first `limit` of them)'),
  after: RunId.optional().describe('Runs that come after this run id in the requested order'),
  limit: limit(100),
  order: SortOrder.optional().describe('Default desc: newest first'),
  order_by: z.literal('created_at').optional(),
  ascending: queryBool.optional().describe("Letta's older flag; true wins over `order`, as in Letta"),
});

/** GET /v1/runs/{run_id}/messages: paged by message id, oldest first by default (as Letta). */
export const MessageListParams = z.object({
  before: ShortId.optional(),
  after: ShortId.optional(),
  limit: limit(100),
  order: SortOrder.default('asc'),
  order_by: z.literal('created_at').optional(),
});

/** A Letta message as a run emitted it: its id and type, and whatever fields the processor gave. */
export const RunMessage = z
  .looseObject({ id: z.string(), message_type: z.string(), seq_id: z.number().int() })
  .meta({ id: 'RunMessage' });

/** Letta's LettaAsyncRequest, as far as a run needs it; fields it does not know are ignored, as Letta does. */
export const LettaAsyncRequest = z
  .object({
    messages: z.array(z.looseObject({})).nullish().describe("Letta MessageCreate objects: {role, content, ...}"),
    input: z
      .union([z.string(), z.array(z.looseObject({}))])
      .nullish()
      .describe("Shorthand for messages = [{role: 'user', content: input}]"),
    callback_url: CallbackUrl.nullish(),
    max_steps: z.number().int().positive().optional(),
    override_model: z.string().min(1).max(256).nullish().describe('A model for this request instead of the processor\'s default'),
    use_assistant_message: z.boolean().optional(),
    assistant_message_tool_name: z.string().max(256).optional(),
    assistant_message_tool_kwarg: z.string().max(256).optional(),
    include_return_message_types: z.array(MessageType).nullish(),
  })
  .refine((b) => (b.messages?.length ?? 0) > 0 || (b.input !== null && b.input !== undefined), {
    message: 'messages or input is required',
    path: ['messages'],
  });
export type LettaAsyncRequest = z.output<typeof LettaAsyncRequest>;

/** Letta's CancelAgentRunRequest; no body, or no run_ids, means every active run of the agent. */
export const CancelAgentRunsRequest = z.object({ run_ids: z.array(ShortId).max(MAX_LIST_LIMIT).nullish() }).nullish();

export const CancelAgentRunsResponse = z
  .record(z.string(), z.string())
  .describe('run id → "cancelled", or why it was not: not_found, already_completed, already_failed');

/** Letta's RetrieveStreamRequest (POST body) and its query-string twin for GET. */
export const StreamRequest = z
  .object({
    starting_after: z.number().int().nonnegative().optional().describe('Resume after this seq_id'),
    include_pings: z.boolean().nullish().describe('Keep-alive as Letta ping messages (default) or SSE comments'),
    batch_size: z.number().int().min(1).max(MAX_LIST_LIMIT).nullish(),
    poll_interval: z.number().nullish().describe('Accepted for Letta compatibility; the stream is pushed, not polled'),
  })
  .nullish();

export const StreamQuery = z.object({
  starting_after: z.coerce.number().int().nonnegative().optional(),
  include_pings: queryBool.optional(),
  batch_size: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).optional(),
});

export const IdempotencyHeaders = z.object({
  'idempotency-key': z.string().min(1).max(255).optional().describe('A retry with the same key and body returns the same run'),
});

export const UsageResponse = RunUsage.extend({}).meta({ id: 'RunUsage' });

/** Letta's RunMetrics, plus what a queue adds: time spent waiting for a worker, and attempts. */
export const RunMetrics = z
  .object({
    id: z.string(),
    organization_id: z.string().nullable(),
    agent_id: z.string().nullable(),
    project_id: z.string().nullable(),
    run_start_ns: z.number().int().nullable().describe('Epoch ns at which a worker started the run'),
    run_ns: z.number().int().nullable(),
    num_steps: z.number().int().nullable(),
    tools_used: z.array(z.string()).nullable(),
    template_id: z.string().nullable(),
    base_template_id: z.string().nullable(),
    ttft_ns: z.number().int().nullable(),
    queue_wait_ns: z.number().int().nullable().describe('From created_at until a worker started the run'),
    attempts: z.number().int().describe('Attempts started so far'),
  })
  .meta({ id: 'RunMetrics' });

export const CallbackAttempts = z.array(CallbackAttempt);

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      details: z.unknown().optional(),
    }),
    detail: z
      .array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() }))
      .optional()
      .describe("Invalid input only: Letta's (FastAPI's) list of what was refused, where"),
  })
  .meta({ id: 'Error' });

export const Health = z.object({ status: z.string() });
