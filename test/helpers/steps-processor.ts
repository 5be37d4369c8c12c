import { defineProcessor, RunFailure } from '../../src/processing/processor.ts';
import { epochNanos } from '../../src/runs/steps.ts';

/**
 * A test processor that records `input.steps` steps (model `m<attempt>-<i>`, tokens i, i+1), each with a
 * message, and fails its first `input.fail_attempts` attempts after recording them.
 */
export default defineProcessor({
  name: 'steps',
  async run({ input, context }) {
    const { steps = 1, fail_attempts = 0 } = (input ?? {}) as { steps?: number; fail_attempts?: number };
    for (let i = 0; i < steps; i++) {
      const start = epochNanos();
      void context.emit({ message_type: 'assistant_message', content: `step ${i} ` });
      context.step({
        model: `m${context.attempt}-${i}`,
        provider_name: 'test',
        prompt_tokens: i,
        completion_tokens: i + 1,
        stop_reason: 'end_turn',
        step_start_ns: start,
        llm_request_start_ns: start + 1000,
        llm_request_ns: 5000 + 1000 * i,
        step_ns: 7000 + 1000 * i,
      });
      // Let the step ride with its own batch of messages, not all with the terminal move.
      await new Promise((r) => setImmediate(r));
    }
    if (context.attempt <= fail_attempts) throw new RunFailure(`attempt ${context.attempt} fails`);
    return { stop_reason: 'end_turn' };
  },
});
