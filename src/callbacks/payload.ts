import type { RunMessage } from '../runs/messages.ts';
import type { RunRecord } from '../runs/record.ts';
import type { Metadata, RunStatus, StopReasonType } from '../runs/schema.ts';

/** Letta's usage statistics as its callback result carries them. */
export interface CallbackUsage {
  message_type: 'usage_statistics';
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  step_count: number;
}

/**
 * What a receiver gets: Letta's completion callback (`run_id`, `status`, `completed_at`, `metadata` with
 * the run's result inside) and, beside it, the fields runhook adds (CONTRACT section 4).
 */
export interface CallbackPayload {
  run_id: string;
  status: RunStatus;
  completed_at: string | null;
  metadata: Metadata & {
    result: {
      messages: RunMessage[];
      stop_reason: { message_type: 'stop_reason'; stop_reason: StopReasonType | null };
      usage: CallbackUsage;
    };
  };
  agent_id: string;
  stop_reason: StopReasonType | null;
  ttft_ns: number | null;
  total_duration_ns: number | null;
}

export function buildPayload(record: RunRecord, messages: RunMessage[]): CallbackPayload {
  const { run, usage } = record;
  // Letta's result holds only the message types the caller asked to get back.
  const only = run.request_config?.include_return_message_types;
  const kept = only ? messages.filter((m) => (only as string[]).includes(m.message_type)) : messages;
  return {
    run_id: run.id,
    status: run.status,
    completed_at: run.completed_at,
    metadata: {
      ...(run.metadata ?? {}),
      result: {
        messages: kept,
        stop_reason: { message_type: 'stop_reason', stop_reason: run.stop_reason },
        usage: {
          message_type: 'usage_statistics',
          prompt_tokens: usage?.prompt_tokens ?? 0,
          completion_tokens: usage?.completion_tokens ?? 0,
          total_tokens: usage?.total_tokens ?? 0,
          step_count: usage?.step_count ?? 0,
        },
      },
    },
    agent_id: run.agent_id,
    stop_reason: run.stop_reason,
    ttft_ns: run.ttft_ns,
    total_duration_ns: run.total_duration_ns,
  };
}
