import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { StopReasonType } from '../../runs/schema.ts';
import { epochNanos } from '../../runs/steps.ts';
import { defineProcessor, RunFailure, sleep } from '../processor.ts';

/** The optional fields the echo processor follows (CONTRACT section 5). */
const EchoInput = z.looseObject({
  text: z.string().optional(),
  messages: z.array(z.unknown()).optional(),
  ttft_ms: z.number().nonnegative().optional(),
  token_ms: z.number().nonnegative().optional(),
  fail: z.string().optional(),
  stop_reason: StopReasonType.optional(),
});

const UserMessage = z.looseObject({
  role: z.literal('user'),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string(), text: z.string().optional() }))]),
});

/** The text to echo: input.text, else the last user message's text. */
export function echoText(input: unknown): string {
  const parsed = EchoInput.safeParse(input);
  if (!parsed.success) return typeof input === 'string' ? input : '';
  if (parsed.data.text !== undefined) return parsed.data.text;
  const users = (parsed.data.messages ?? []).flatMap((m) => {
    const u = UserMessage.safeParse(m);
    return u.success ? [u.data] : [];
  });
  const last = users.at(-1);
  if (!last) return '';
  return typeof last.content === 'string' ? last.content : last.content.map((c) => c.text ?? '').join('');
}

/** Words with their trailing whitespace, so that the tokens join back into the text. */
export function tokenize(text: string): string[] {
  return text.match(/\s*\S+\s*/g) ?? [];
}

export const echoProcessor = defineProcessor({
  name: 'echo',
  async run({ input, signal, context }) {
    const opts = EchoInput.safeParse(input).data ?? {};
    const text = echoText(input);
    const tokens = tokenize(text);
    const messageId = `message-${randomUUID()}`;
    // The whole answer is echo's one "model call": one step, as Letta records one per LLM request.
    const startNs = epochNanos();
    await sleep(opts.ttft_ms ?? 0, signal);
    for (const [i, token] of tokens.entries()) {
      if (i > 0) await sleep(opts.token_ms ?? 0, signal);
      if (signal.aborted) throw signal.reason;
      // Not awaited (tokens batch per tick); a failed write is re-raised by the worker's flush, not here.
      context.emit({ id: messageId, message_type: 'assistant_message', content: token }).catch(() => {});
    }
    const stopReason = opts.fail !== undefined ? 'error' : (opts.stop_reason ?? 'end_turn');
    const tookNs = epochNanos() - startNs;
    const usage = { prompt_tokens: tokens.length, completion_tokens: tokens.length, total_tokens: 2 * tokens.length, step_count: 1 };
    context.step({
      model: 'echo',
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      total_tokens: usage.total_tokens,
      stop_reason: stopReason,
      status: opts.fail !== undefined ? 'failed' : 'success',
      step_start_ns: startNs,
      llm_request_start_ns: startNs,
      llm_request_ns: tookNs,
      step_ns: tookNs,
    });
    if (opts.fail !== undefined) throw new RunFailure(opts.fail);
    return { stop_reason: stopReason, usage };
  },
});

export default echoProcessor;
