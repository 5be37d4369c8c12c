import { describe, expect, it } from 'vitest';
import { newRunId } from '../../src/runs/schema.ts';
import { decodeStep, encodeStep, MAX_STEPS_PER_RUN, STEP_ID_PATTERN, stepFields, stepIdOf, stepRef, type StepInput } from '../../src/runs/steps.ts';

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
  const hashOf = (fields: string[]) => Object.fromEntries(fields.flatMap((f, i) => (i % 2 === 0 ? [[f, fields[i + 1]!]] : [])));
  const roundTrip = (input: StepInput, index: number) => {
    const h = hashOf(encodeStep(input, run.createdUs, index));
    const [st, sm, sn] = stepFields(index);
    return decodeStep({ st: h[st]!, sm: h[sm], sn: h[sn] }, run, index);
  };

  it('comes back as it was recorded, times included', () => {
    const start = run.createdUs * 1000 + 2_500_000;
    const input: StepInput = {
      model: 'gpt-4o-mini',
      provider_name: 'openai',
      prompt_tokens: 12,
      completion_tokens: 30,
      stop_reason: 'end_turn',
      step_start_ns: start,
      llm_request_start_ns: start + 1000,
      llm_request_ns: 123_456_000,
      step_ns: 123_999_000,
    };
    expect(roundTrip(input, 3)).toEqual({
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
      llm_request_ns: 123_456_000,
      step_ns: 123_999_000,
    });
  });

  it('keeps times to the microsecond, and a total that is not the sum of its parts', () => {
    expect(roundTrip({ prompt_tokens: 1, completion_tokens: 2, total_tokens: 10, status: 'failed', step_ns: 1_234_567 }, 0)).toMatchObject({
      total_tokens: 10,
      status: 'failed',
      step_ns: 1_235_000,
      model: null,
    });
  });

  it("keeps each field of a typical step under 64 bytes, so the run hash keeps Redis's compact encoding", () => {
    // An openai step late in a run 40 s long: a long model name, five-digit token counts, a long stop reason.
    const start = run.createdUs * 1000 + 38_123_456_789;
    const fields = encodeStep(
      {
        model: 'gpt-4o-mini-2024-07-18',
        provider_name: 'api.openai.com',
        prompt_tokens: 12_345,
        completion_tokens: 54_321,
        stop_reason: 'max_tokens_exceeded',
        status: 'failed',
        step_start_ns: start,
        llm_request_start_ns: start + 150_000,
        llm_request_ns: 2_123_456_789,
        step_ns: 2_124_456_789,
      },
      run.createdUs,
      41,
    );
    expect(fields.filter((_, i) => i % 2 === 0)).toEqual(['st42', 'sm42', 'sn42']);
    for (const v of fields.filter((_, i) => i % 2 === 1)) expect(v.length).toBeLessThanOrEqual(64);
  });

  it('keeps absent fields null, and stores nothing for them', () => {
    expect(encodeStep({}, run.createdUs, 0)).toEqual(['st1', '[]']);
    expect(roundTrip({}, 0)).toMatchObject({ model: null, prompt_tokens: null, total_tokens: null, status: 'success', step_ns: null, step_start_ns: null });
  });
});
