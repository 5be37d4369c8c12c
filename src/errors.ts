/**
 * Every error runhook raises on purpose, each with a stable `code` callers can match on and the HTTP
 * status the API answers with. The API maps these in one place (api/error-handler.ts).
 */
export abstract class RunhookError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly details: unknown;

  constructor(message: string, details?: unknown) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

export class ConfigError extends RunhookError {
  readonly code = 'CONFIG_INVALID';
  readonly status = 500;
}

/**
 * Input the schemas (or a rule about a request) refuse: 422, as Letta's FastAPI answers it, so the Letta
 * SDK raises UnprocessableEntityError; the API adds Letta's `detail` list beside the error object.
 */
export class InvalidInputError extends RunhookError {
  readonly code = 'INVALID_INPUT';
  readonly status: number = 422;
}

/** A request body that is not JSON at all (malformed, empty, a bad content-length): still a 400. */
export class MalformedBodyError extends InvalidInputError {
  override readonly status: number = 400;
}

export class UnauthorizedError extends RunhookError {
  readonly code = 'UNAUTHORIZED';
  readonly status = 401;
}

export class RunNotFoundError extends RunhookError {
  readonly code = 'RUN_NOT_FOUND';
  readonly status = 404;
  constructor(readonly runId: string) {
    super(`run ${runId} not found`, { run_id: runId });
  }
}

/**
 * A create with an Idempotency-Key whose run was deleted (by DELETE or retention): the key keeps naming
 * that run, so a retry never makes it again (and never processes it twice). Use a new key for a new run.
 */
export class RunDeletedError extends RunhookError {
  readonly code = 'RUN_DELETED';
  readonly status = 409;
  constructor(readonly runId: string) {
    super(`run ${runId}, made with this Idempotency-Key, was deleted; a new run needs a new key`, { run_id: runId });
  }
}

export class NotFoundError extends RunhookError {
  readonly code = 'NOT_FOUND';
  readonly status = 404;
}

export class StepNotFoundError extends RunhookError {
  readonly code = 'STEP_NOT_FOUND';
  readonly status = 404;
  constructor(readonly stepId: string) {
    super(`step ${stepId} not found`, { step_id: stepId });
  }
}

/** A run asked for a processor this deployment does not have (CONTRACT section 7: a 400). */
export class UnknownProcessorError extends RunhookError {
  readonly code = 'UNKNOWN_PROCESSOR';
  readonly status = 400;
  constructor(
    readonly processor: string,
    readonly known: readonly string[],
  ) {
    super(`unknown processor "${processor}": this deployment runs ${known.map((k) => `"${k}"`).join(', ')}`, { processor, known });
  }
}

export class QueueNotFoundError extends RunhookError {
  readonly code = 'QUEUE_NOT_FOUND';
  readonly status = 404;
  constructor(readonly queue: string) {
    super(`no queue named "${queue}": runs or callbacks`, { queue });
  }
}

export class IllegalTransitionError extends RunhookError {
  readonly code = 'RUN_ILLEGAL_TRANSITION';
  readonly status = 409;
  constructor(
    readonly runId: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`run ${runId} cannot move from ${from} to ${to}`, { run_id: runId, from, to });
  }
}

/** A callback is asked for again (POST …/callback/retry) before the run has ended. */
export class RunNotEndedError extends RunhookError {
  readonly code = 'RUN_NOT_ENDED';
  readonly status = 409;
  constructor(
    readonly runId: string,
    readonly runStatus: string,
  ) {
    super(`run ${runId} is ${runStatus}: its callback is sent when it ends`, { run_id: runId, status: runStatus });
  }
}

export class IdempotencyConflictError extends RunhookError {
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
  readonly status = 409;
}

/** A run names a conversation that another run not yet ended holds, with RUNHOOK_CONVERSATION_BUSY=reject (Letta's 409). */
export class ConversationBusyError extends RunhookError {
  readonly code = 'CONVERSATION_BUSY';
  readonly status = 409;
  constructor(conversationId: string, runId: string) {
    super(`conversation ${conversationId} is busy with run ${runId}`, { conversation_id: conversationId, run_id: runId });
  }
}

/** A conversation belongs to the agent its first run (or POST /v1/conversations) named. */
export class ConversationAgentMismatchError extends RunhookError {
  readonly code = 'CONVERSATION_AGENT_MISMATCH';
  readonly status = 409;
  constructor(conversationId: string, agentId: string, ownerId: string) {
    super(`conversation ${conversationId} belongs to agent ${ownerId}, not ${agentId}`, {
      conversation_id: conversationId,
      agent_id: agentId,
      conversation_agent_id: ownerId,
    });
  }
}

export class PayloadTooLargeError extends RunhookError {
  readonly code = 'PAYLOAD_TOO_LARGE';
  readonly status = 413;
}

export class RateLimitedError extends RunhookError {
  readonly code = 'RATE_LIMITED';
  readonly status = 429;
}

export class RedisUnavailableError extends RunhookError {
  readonly code = 'REDIS_UNAVAILABLE';
  readonly status = 503;
}

export class ProcessorLoadError extends RunhookError {
  readonly code = 'PROCESSOR_LOAD_FAILED';
  readonly status = 500;
}

/** Thrown by the waiting helpers when a run does not end in time. */
export class RunTimeoutError extends RunhookError {
  readonly code = 'RUN_WAIT_TIMEOUT';
  readonly status = 504;
}

/** A request body in a media type the API does not read (it speaks JSON). */
export class UnsupportedMediaTypeError extends RunhookError {
  readonly code = 'UNSUPPORTED_MEDIA_TYPE';
  readonly status = 415;
}

/** Anything unexpected; the API answers with this and logs the cause, never sending a stack trace. */
export class InternalError extends RunhookError {
  readonly code = 'INTERNAL_ERROR';
  readonly status = 500;
}

/**
 * An error answer of the runhook API, as RunhookClient reports it: `status` is the HTTP status and
 * `apiCode` the code the server sent (e.g. RUN_NOT_FOUND).
 */
export class ApiResponseError extends RunhookError {
  readonly code = 'API_ERROR';
  constructor(
    readonly status: number,
    readonly apiCode: string,
    message: string,
    details?: unknown,
  ) {
    super(message, details);
  }
}

/** Every code above, for the docs test and the OpenAPI error schema. */
export const ERROR_CODES = [
  'CONFIG_INVALID',
  'INVALID_INPUT',
  'UNAUTHORIZED',
  'RUN_NOT_FOUND',
  'RUN_DELETED',
  'NOT_FOUND',
  'QUEUE_NOT_FOUND',
  'STEP_NOT_FOUND',
  'UNKNOWN_PROCESSOR',
  'RUN_ILLEGAL_TRANSITION',
  'RUN_NOT_ENDED',
  'IDEMPOTENCY_KEY_REUSED',
  'CONVERSATION_BUSY',
  'CONVERSATION_AGENT_MISMATCH',
  'PAYLOAD_TOO_LARGE',
  'RATE_LIMITED',
  'REDIS_UNAVAILABLE',
  'PROCESSOR_LOAD_FAILED',
  'RUN_WAIT_TIMEOUT',
  'UNSUPPORTED_MEDIA_TYPE',
  'INTERNAL_ERROR',
  'API_ERROR',
] as const;
