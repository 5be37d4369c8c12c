import type { RunStatus, StopReasonType, TerminalStatus } from './schema.ts';
import { TERMINAL_STATUSES } from './schema.ts';

/**
 * The status machine of CONTRACT section 1, as pure functions. The Lua scripts in lua/ follow the same
 * table (see MOVES_LUA); a unit test checks the two agree.
 */
const MOVES: Record<RunStatus, readonly RunStatus[]> = {
  created: ['running', 'cancelled', 'failed'],
  running: ['completed', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
};

export function isTerminal(status: RunStatus): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly RunStatus[]).includes(status);
}

/** Terminal statuses are final: a late event from a retried job must never reopen a run. */
export function canMove(from: RunStatus, to: RunStatus): boolean {
  return MOVES[from].includes(to);
}

const STATUS_OF_STOP_REASON: Record<StopReasonType, TerminalStatus> = {
  end_turn: 'completed',
  max_steps: 'completed',
  tool_rule: 'completed',
  requires_approval: 'completed',
  error: 'failed',
  llm_api_error: 'failed',
  invalid_llm_response: 'failed',
  invalid_tool_call: 'failed',
  no_tool_call: 'failed',
  max_tokens_exceeded: 'failed',
  context_window_overflow_in_system_prompt: 'failed',
  insufficient_credits: 'failed',
  cancelled: 'cancelled',
};

/** Letta's mapping from a stop reason to the terminal status it implies. */
export function statusOfStopReason(reason: StopReasonType): TerminalStatus {
  return STATUS_OF_STOP_REASON[reason];
}

const DEFAULT_STOP_REASON: Record<TerminalStatus, StopReasonType> = {
  completed: 'end_turn',
  failed: 'error',
  cancelled: 'cancelled',
};

export function defaultStopReason(status: TerminalStatus): StopReasonType {
  return DEFAULT_STOP_REASON[status];
}

/** The move table as a Lua table literal, injected into the scripts so there is one source of truth. */
export const MOVES_LUA = `{${Object.entries(MOVES)
  .map(([from, tos]) => `["${from}"]={${tos.map((t) => `["${t}"]=true`).join(',')}}`)
  .join(',')}}`;
