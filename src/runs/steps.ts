import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { nowMicros } from '../clock.ts';
import { StopReasonType } from './schema.ts';

/**
 * Steps: one per model call, as Letta's `Step` (letta/schemas/step.py) and `StepMetrics`. A processor
 * records them with `context.step(...)`; they are part of the run's record, written with its messages
 * and reset with a retried attempt.
 */

export const STEP_ID_PATTERN = /^step-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const StepId = z.string().regex(STEP_ID_PATTERN, 'expected step-<uuid v4>');
export type StepId = z.infer<typeof StepId>;

export function newStepId(): StepId {
  return `step-${randomUUID()}`;
}

export const StepStatus = z.enum(['pending', 'success', 'failed', 'cancelled']);
export type StepStatus = z.infer<typeof StepStatus>;

const Count = z.number().int().nonnegative();
/** A duration in nanoseconds. */
const Nanos = z.number().int().nonnegative();
/**
 * An epoch time in nanoseconds, as Letta's StepMetrics. It is past 2^53, so a JSON number holds it to
 * about 256 ns (zod's `.int()` would refuse it as unsafe); runhook's clock gives microseconds × 1000.
 */
const EpochNanos = z.number().nonnegative().refine(Number.isInteger, 'expected an integer');

/** What a processor passes to `context.step(...)`: every field optional, unknown fields dropped. */
export const StepInput = z.object({
  model: z.string().max(256).nullish(),
  provider_name: z.string().max(256).nullish(),
  prompt_tokens: Count.nullish(),
  completion_tokens: Count.nullish(),
  total_tokens: Count.nullish(),
  stop_reason: StopReasonType.nullish(),
  /** Default `success`: a step is usually recorded once its model call is over. */
  status: StepStatus.default('success'),
  /** When the step started (epoch ns). */
  step_start_ns: EpochNanos.nullish(),
  /** When the model request was sent (epoch ns). */
  llm_request_start_ns: EpochNanos.nullish(),
  /** How long the model request took, to its last byte. */
  llm_request_ns: Nanos.nullish(),
  /** How long the whole step took. */
  step_ns: Nanos.nullish(),
});
export type StepInput = z.input<typeof StepInput>;
export type StepInputParsed = z.output<typeof StepInput>;

/** A recorded step, as `GET /v1/steps/{step_id}` answers (Letta's `Step` fields that runhook knows). */
export const Step = z.object({
  id: StepId,
  run_id: z.string(),
  agent_id: z.string(),
  model: z.string().nullable(),
  provider_name: z.string().nullable(),
  prompt_tokens: Count.nullable(),
  completion_tokens: Count.nullable(),
  total_tokens: Count.nullable(),
  stop_reason: StopReasonType.nullable(),
  status: StepStatus,
});
export type Step = z.infer<typeof Step>;

/** Letta's StepMetrics, as `GET /v1/steps/{step_id}/metrics` answers. */
export const StepMetrics = z.object({
  id: StepId,
  run_id: z.string(),
  agent_id: z.string(),
  step_start_ns: EpochNanos.nullable(),
  llm_request_start_ns: EpochNanos.nullable(),
  llm_request_ns: Nanos.nullable(),
  step_ns: Nanos.nullable(),
  tool_execution_ns: Nanos.nullable(),
});
export type StepMetrics = z.infer<typeof StepMetrics>;

/** What is stored per step: the step and its metrics in one object. */
export const StoredStep = Step.extend({
  step_start_ns: EpochNanos.nullable(),
  llm_request_start_ns: EpochNanos.nullable(),
  llm_request_ns: Nanos.nullable(),
  step_ns: Nanos.nullable(),
});
export type StoredStep = z.infer<typeof StoredStep>;

/** The stored form of a processor's step (throws a ZodError on invalid input). */
export function makeStep(input: StepInput, ids: { runId: string; agentId: string; id?: StepId }): StoredStep {
  const s = StepInput.parse(input);
  return {
    id: ids.id ?? newStepId(),
    run_id: ids.runId,
    agent_id: ids.agentId,
    model: s.model ?? null,
    provider_name: s.provider_name ?? null,
    prompt_tokens: s.prompt_tokens ?? null,
    completion_tokens: s.completion_tokens ?? null,
    total_tokens: s.total_tokens ?? (s.prompt_tokens != null && s.completion_tokens != null ? s.prompt_tokens + s.completion_tokens : null),
    stop_reason: s.stop_reason ?? null,
    status: s.status,
    step_start_ns: s.step_start_ns ?? null,
    llm_request_start_ns: s.llm_request_start_ns ?? null,
    llm_request_ns: s.llm_request_ns ?? null,
    step_ns: s.step_ns ?? null,
  };
}

export function stepOf(s: StoredStep): Step {
  return {
    id: s.id,
    run_id: s.run_id,
    agent_id: s.agent_id,
    model: s.model,
    provider_name: s.provider_name,
    prompt_tokens: s.prompt_tokens,
    completion_tokens: s.completion_tokens,
    total_tokens: s.total_tokens,
    stop_reason: s.stop_reason,
    status: s.status,
  };
}

export function stepMetricsOf(s: StoredStep): StepMetrics {
  return {
    id: s.id,
    run_id: s.run_id,
    agent_id: s.agent_id,
    step_start_ns: s.step_start_ns,
    llm_request_start_ns: s.llm_request_start_ns,
    llm_request_ns: s.llm_request_ns,
    step_ns: s.step_ns,
    tool_execution_ns: null,
  };
}

/** Epoch nanoseconds now, for the `*_start_ns` fields (microsecond precision, the clock every process shares). */
export function epochNanos(): number {
  return nowMicros() * 1000;
}
