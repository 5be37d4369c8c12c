import { describe, expect, it } from 'vitest';
import { newRunId } from '../../src/runs/schema.ts';
import { decodeStep, encodeStep, MAX_STEPS_PER_RUN, STEP_ID_PATTERN, stepIdOf, stepRef } from '../../src/runs/steps.ts';

describe('step ids', () => {
  it('name their run and their place in it, for every step a run may record', () => {
    for (let n = 0; n < 50; n++) {
      const runId = newRunId();
      const ids = new Set<string>();
      for (let i = 0; i < MAX_STEPS_PER_RUN; i++) {
        const id = stepIdOf(runId, i);
        expect(id).toMatch(STEP_ID_PATTERN);
        expect(stepRef(id)).toEqual({ runId, index: i });
        ids.add(id);
      }
      expect(ids.size).toBe(MAX_STEPS_PER_RUN);
    }
  });

  it('refuses what is not a step id', () => {
    expect(stepRef('run-3f0c1e2a-1111-4222-8333-444455556666')).toBeNull();
    expect(stepRef('step-nope')).toBeNull();
    expect(() => stepIdOf(newRunId(), MAX_STEPS_PER_RUN)).toThrow(RangeError);
  });
});

describe('a stored step', () => {
  const run = { id: newRunId(), agentId: 'a1', createdUs: 1_764_000_000_123_456 };

  it('comes back as it was recorded, times included', () => {
    const start = run.createdUs * 1000 + 2_500_000;
    const value = encodeStep(
      {
        model: 'gpt-4o-mini',
        provider_name: 'openai',
        prompt_tokens: 12,
        completion_tokens: 30,
        stop_reason: 'end_turn',
        step_start_ns: start,
        llm_request_start_ns: start + 1000,
        llm_request_ns: 123_456_789,
        step_ns: 123_999_999,
      },
      run.createdUs,
    );
    expect(decodeStep(value, run, 3)).toEqual({
      id: stepIdOf(run.id, 3),
      run_id: run.id,
      agent_id: 'a1',
      model: 'gpt-4o-mini',
      provider_name: 'openai',
      prompt_tokens: 12,
      completion_tokens: 30,
      total_tokens: 42,
      stop_reason: 'end_turn',
      status: 'success',
      step_start_ns: start,
      llm_request_start_ns: start + 1000,
      llm_request_ns: 123_456_789,
      step_ns: 123_999_999,
    });
  });

  it("stays under 64 bytes for echo's step, so the run hash keeps Redis's compact encoding", () => {
    const start = run.createdUs * 1000 + 900_000;
    const value = encodeStep(
      { model: 'echo', prompt_tokens: 2, completion_tokens: 2, total_tokens: 4, stop_reason: 'end_turn', step_start_ns: start, llm_request_start_ns: start, llm_request_ns: 35_000, step_ns: 35_000 },
      run.createdUs,
    );
    expect(value.length).toBeLessThanOrEqual(64);
  });

  it('keeps absent fields null', () => {
    expect(decodeStep(encodeStep({}, run.createdUs), run, 0)).toMatchObject({ model: null, prompt_tokens: null, total_tokens: null, status: 'success', step_ns: null });
  });
});
