import { z } from 'zod';
import { nowMicros } from '../clock.ts';
import { StopReasonType } from './schema.ts';

/**
 * Steps: one per model call, as Letta's `Step` (letta/schemas/step.py) and `StepMetrics`. A processor
 * records them with `context.step(...)`; they are part of the run's record, written with its messages
 * and reset with a retried attempt.
 */

/**
 * A step's id is derived from its run's id, so that finding a step's run needs no index (an index entry
 * would cost ~100 bytes of Redis per step, more than the step itself, and would have to be cleaned up
 * apart from the run). A v4 UUID fixes 6 of its 128 bits (the version nibble and the variant's top two
 * bits); a step's UUID is its run's with those 6 bits holding the step's number in the run (0–63).
 */
export const STEP_ID_PATTERN = /^step-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const StepId = z.string().regex(STEP_ID_PATTERN, 'expected step-<uuid>');
export type StepId = z.infer<typeof StepId>;

/** Steps one attempt may record (the 6 bits of its id); Letta's own agent loop stops at 50 by default. */
export const MAX_STEPS_PER_RUN = 64;

/** Offsets in a UUID string of the version nibble and of the variant nibble. */
const VERSION_AT = 14;
const VARIANT_AT = 19;

/** The id of step `index` (0-based) of run `runId` (`run-<uuid v4>`). */
export function stepIdOf(runId: string, index: number): StepId {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_STEPS_PER_RUN) throw new RangeError(`step index ${index} out of range`);
  const u = runId.slice('run-'.length).split('');
  u[VERSION_AT] = (index & 0xf).toString(16);
  u[VARIANT_AT] = (((index >> 4) << 2) | (parseInt(u[VARIANT_AT]!, 16) & 3)).toString(16);
  return `step-${u.join('')}`;
}

/** The run and the step number a step id names, or null when it is not a step id. */
export function stepRef(stepId: string): { runId: string; index: number } | null {
  if (!STEP_ID_PATTERN.test(stepId)) return null;
  const u = stepId.slice('step-'.length).split('');
  const version = parseInt(u[VERSION_AT]!, 16);
  const variant = parseInt(u[VARIANT_AT]!, 16);
  u[VERSION_AT] = '4';
  u[VARIANT_AT] = (8 | (variant & 3)).toString(16);
  return { runId: `run-${u.join('')}`, index: version | ((variant >> 2) << 4) };
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

/**
 * How a step is kept: in its run's hash, as up to three fields (n 1-based): `st<n>` its stop reason,
 * tokens and status, `sm<n>` its model and provider, `sn<n>` its timings, each a JSON array with
 * trailing nulls dropped. Each value stays under Redis's 64 bytes (`hash-max-listpack-value`) for a
 * typical step, so the run hash keeps its compact encoding (one value past that converts the whole hash,
 * ~700 bytes more per run). To that end times are microseconds (runhook's clock has no more precision),
 * the start times offsets from the run's creation, and a total that is the sum of its parts and a
 * `success` status are left out. Nothing else is stored per step: a step is written, reset and removed
 * with its run's hash.
 */
export function encodeStep(input: StepInput, createdUs: number, index: number): string[] {
  const s = StepInput.parse(input);
  const us = (ns: number | null | undefined) => (ns == null ? null : Math.round(ns / 1000));
  const since = (ns: number | null | undefined) => (ns == null ? null : Math.round(ns / 1000 - createdUs));
  const sum = s.prompt_tokens != null && s.completion_tokens != null ? s.prompt_tokens + s.completion_tokens : null;
  const trim = (a: unknown[]) => {
    while (a.length > 0 && a.at(-1) === null) a.pop();
    return a;
  };
  const n = index + 1;
  const fields = [
    `st${n}`,
    JSON.stringify(
      trim([
        s.stop_reason ?? null,
        s.prompt_tokens ?? null,
        s.completion_tokens ?? null,
        s.total_tokens == null || s.total_tokens === sum ? null : s.total_tokens,
        s.status === 'success' ? null : s.status,
      ]),
    ),
  ];
  const model = trim([s.model ?? null, s.provider_name ?? null]);
  if (model.length > 0) fields.push(`sm${n}`, JSON.stringify(model));
  const times = trim([since(s.step_start_ns), us(s.step_ns), since(s.llm_request_start_ns), us(s.llm_request_ns)]);
  if (times.length > 0) fields.push(`sn${n}`, JSON.stringify(times));
  return fields;
}

/** The run-hash fields of step `index` (0-based): tokens and status, model, timings. */
export function stepFields(index: number): [st: string, sm: string, sn: string] {
  return [`st${index + 1}`, `sm${index + 1}`, `sn${index + 1}`];
}

/** A step back from its fields in the run hash (`sm`, `sn` absent when it had no model, no timings). */
export function decodeStep(
  fields: { st: string; sm?: string | null | undefined; sn?: string | null | undefined },
  run: { id: string; agentId: string; createdUs: number },
  index: number,
): StoredStep {
  const list = (v: string | null | undefined) => (v ? (JSON.parse(v) as unknown[]) : []);
  const st = list(fields.st);
  const sm = list(fields.sm);
  const sn = list(fields.sn);
  const of = <T>(a: unknown[], i: number) => (a[i] ?? null) as T | null;
  const ns = (i: number) => {
    const v = of<number>(sn, i);
    return v === null ? null : v * 1000;
  };
  const abs = (i: number) => {
    const v = of<number>(sn, i);
    return v === null ? null : (run.createdUs + v) * 1000;
  };
  const prompt = of<number>(st, 1);
  const completion = of<number>(st, 2);
  return {
    id: stepIdOf(run.id, index),
    run_id: run.id,
    agent_id: run.agentId,
    model: of<string>(sm, 0),
    provider_name: of<string>(sm, 1),
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: of<number>(st, 3) ?? (prompt !== null && completion !== null ? prompt + completion : null),
    stop_reason: of<StopReasonType>(st, 0),
    status: of<StepStatus>(st, 4) ?? 'success',
    step_start_ns: abs(0),
    llm_request_start_ns: abs(2),
    llm_request_ns: ns(3),
    step_ns: ns(1),
  };
}

/** Steps to write with a batch: their run-hash fields and values. */
export interface StepWrites {
  fields: string[];
}

/** As the scripts take them: `[field, value, …]` in JSON, or '' for none. */
export function stepWritesArg(w: StepWrites | null | undefined): string {
  return w && w.fields.length > 0 ? JSON.stringify(w.fields) : '';
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
