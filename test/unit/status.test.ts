import { describe, expect, it } from 'vitest';
import { RunStatus, StopReasonType } from '../../src/runs/schema.ts';
import { canMove, defaultStopReason, isTerminal, statusOfStopReason } from '../../src/runs/status.ts';

const ALL = RunStatus.options;

describe('the status machine', () => {
  it('moves one way: created → running → terminal, and created → cancelled | failed', () => {
    const legal = ALL.flatMap((from) => ALL.filter((to) => canMove(from, to)).map((to) => `${from}→${to}`));
    expect(legal.sort()).toEqual(
      ['created→running', 'created→cancelled', 'created→failed', 'running→completed', 'running→failed', 'running→cancelled'].sort(),
    );
  });

  it('never leaves a terminal status', () => {
    for (const from of ALL.filter(isTerminal)) for (const to of ALL) expect(canMove(from, to)).toBe(false);
  });

  it('maps every stop reason to the status Letta gives it', () => {
    expect(StopReasonType.options.filter((r) => statusOfStopReason(r) === 'completed').sort()).toEqual(
      ['end_turn', 'max_steps', 'requires_approval', 'tool_rule'].sort(),
    );
    expect(statusOfStopReason('cancelled')).toBe('cancelled');
    expect(statusOfStopReason('llm_api_error')).toBe('failed');
    for (const s of ['completed', 'failed', 'cancelled'] as const) expect(statusOfStopReason(defaultStopReason(s))).toBe(s);
  });
});
