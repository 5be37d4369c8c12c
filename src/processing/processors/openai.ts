import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import type { Config } from '../../config.ts';
import { epochNanos } from '../../runs/steps.ts';
import type { StopReasonType } from '../../runs/schema.ts';
import { defineProcessor, RunFailure, sleep, type Processor, type ProcessorContext } from '../processor.ts';
import { chatRequest, InvalidOpenAIInput } from './openai-input.ts';

export interface OpenAIProcessorOptions {
  /** An OpenAI-compatible API's base, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`. */
  baseURL: string;
  apiKey?: string | undefined;
  /** The model when the input names none. */
  model?: string | undefined;
  /** Tries of a model call after the first, within one run attempt. */
  maxRetries: number;
  /** Longest silence (before the answer, between two chunks) before the call counts as broken. */
  idleTimeoutMs: number;
}

export function openaiOptions(config: Config): OpenAIProcessorOptions {
  return {
    baseURL: config.openaiBaseUrl,
    apiKey: config.openaiApiKey,
    model: config.openaiModel,
    maxRetries: config.openaiMaxRetries,
    idleTimeoutMs: config.openaiIdleTimeoutMs,
  };
}

/** The retry policy of one model call, in one place (the numbers are the openai SDK's own defaults). */
export const OPENAI_RETRY = {
  /** Backoff without Retry-After: 0.5 s, 1 s, 2 s, 4 s, 8 s, less up to 25 % jitter. */
  initialDelayMs: 500,
  maxDelayMs: 8_000,
  /** A server that asks for a longer wait than this fails the run instead of holding a worker slot. */
  maxRetryAfterMs: 60_000,
} as const;

/** Letta's stop reason for an OpenAI finish reason (tool calls are decided by what was streamed). */
function stopReasonOf(finish: string): StopReasonType {
  if (finish === 'length') return 'max_tokens_exceeded';
  if (finish === 'tool_calls' || finish === 'function_call') return 'requires_approval';
  return 'end_turn';
}

/** A stream that broke or went silent: retried like a 5xx. */
class BrokenStream extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BrokenStream';
  }
}

interface Verdict {
  retry: boolean;
  /** How long the server asked us to wait, if it did. */
  retryAfterMs?: number;
  message: string;
}

/** Retry-After as the SDK reads it: `retry-after-ms`, then `retry-after` in seconds or as an HTTP date. */
export function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(parseFloat(ms))) return Math.max(0, parseFloat(ms));
  const ra = headers?.get('retry-after');
  if (!ra) return undefined;
  const seconds = parseFloat(ra);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Whether a failed call is worth another try: 408/409/429/5xx, broken connections and streams; never another 4xx. */
function judge(err: unknown): Verdict {
  if (err instanceof OpenAI.APIError) {
    const status = err.status;
    const message = status ? `model server answered ${status}: ${err.message}` : `model server error: ${err.message}`;
    if (status === undefined) return { retry: true, message }; // connection errors, an error event mid-stream
    const should = err.headers?.get('x-should-retry');
    const retry = should === 'true' || (should !== 'false' && (status === 408 || status === 409 || status === 429 || status >= 500));
    const after = retryAfterMs(err.headers);
    return { retry, message, ...(after !== undefined && { retryAfterMs: after }) };
  }
  if (err instanceof BrokenStream) return { retry: true, message: err.message };
  if (err instanceof OpenAI.OpenAIError) return { retry: false, message: err.message };
  // Anything the body read threw (undici's "terminated" when the socket goes, a garbled chunk).
  return { retry: true, message: `model stream broke: ${err instanceof Error ? err.message : String(err)}` };
}

function backoffMs(retry: number): number {
  const d = Math.min(OPENAI_RETRY.initialDelayMs * 2 ** retry, OPENAI_RETRY.maxDelayMs);
  return d * (1 - Math.random() * 0.25);
}

/** Letta's provider_name: `openai` for OpenAI itself, else the host of the compatible server. */
function providerName(baseURL: string): string {
  try {
    const host = new URL(baseURL).host;
    return host === 'api.openai.com' ? 'openai' : host;
  } catch {
    return 'openai-compatible';
  }
}

interface ToolCallDraft {
  id: string;
  name: string;
  arguments: string;
}

interface CallResult {
  stopReason: StopReasonType;
  model: string;
  usage: ChatCompletionChunk['usage'] | undefined;
}

/**
 * One streamed call: emits content and reasoning deltas as they arrive and the tool calls once the
 * stream has them whole. `onEmit` is told of the first emitted message, so the caller knows whether
 * a failure can still be retried without leaving a half message in the transcript.
 */
async function streamCall(
  client: OpenAI,
  params: ChatCompletionCreateParamsStreaming,
  signal: AbortSignal,
  context: ProcessorContext,
  idleTimeoutMs: number,
  onEmit: () => void,
): Promise<CallResult> {
  // The call's own controller: aborted by the run's signal (cancel, shutdown) or by silence.
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  // One timer for the whole call, re-armed lazily: a chunk only stamps the time, so a fast stream costs
  // no timer per chunk.
  let lastAt = performance.now();
  let idle = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number) => {
    timer = setTimeout(() => {
      const quiet = performance.now() - lastAt;
      if (quiet < idleTimeoutMs) return arm(idleTimeoutMs - quiet);
      idle = true;
      ctrl.abort(new BrokenStream(`model server silent for ${idleTimeoutMs} ms`));
    }, ms);
    timer.unref();
  };
  arm(idleTimeoutMs);

  const assistantId = `message-${randomUUID()}`;
  let reasoningId: string | undefined;
  const tools = new Map<number, ToolCallDraft>();
  let finish: string | undefined;
  let model = params.model;
  let usage: ChatCompletionChunk['usage'] | undefined;
  let emitted = false;
  const emit = (m: Parameters<ProcessorContext['emit']>[0]) => {
    if (!emitted) {
      emitted = true;
      onEmit();
    }
    // Not awaited: writes are pipelined, and a failed one surfaces when the processor returns (flush);
    // the catch keeps its rejection from being an unhandled one meanwhile.
    context.emit(m).catch(() => {});
  };
  try {
    const stream = await client.chat.completions.create(params, { signal: ctrl.signal });
    for await (const chunk of stream) {
      lastAt = performance.now();
      if (chunk.model) model = chunk.model;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      const delta = choice.delta as ChatCompletionChunk.Choice.Delta & { reasoning_content?: unknown; reasoning?: unknown };
      const reasoning = typeof delta.reasoning_content === 'string' ? delta.reasoning_content : delta.reasoning;
      if (typeof reasoning === 'string' && reasoning !== '') {
        reasoningId ??= `message-${randomUUID()}`;
        emit({ id: reasoningId, message_type: 'reasoning_message', reasoning, source: 'reasoner_model' });
      }
      if (typeof delta.content === 'string' && delta.content !== '') {
        emit({ id: assistantId, message_type: 'assistant_message', content: delta.content });
      }
      for (const tc of delta.tool_calls ?? []) {
        const draft = tools.get(tc.index) ?? { id: '', name: '', arguments: '' };
        if (tc.id) draft.id = tc.id;
        if (tc.function?.name) draft.name += tc.function.name;
        if (tc.function?.arguments) draft.arguments += tc.function.arguments;
        tools.set(tc.index, draft);
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    // The SDK ends an aborted stream quietly; say why it ended.
    if (signal.aborted) throw signal.reason;
    if (idle) throw new BrokenStream(`model server silent for ${idleTimeoutMs} ms`);
    if (finish === undefined) throw new BrokenStream('model stream ended before a finish reason');
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (idle) throw new BrokenStream(`model server silent for ${idleTimeoutMs} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
  // Letta's tool_call_message, one per call, once its arguments are whole (runhook runs no tools).
  for (const [i, t] of [...tools.entries()].sort(([a], [b]) => a - b)) {
    const call = { name: t.name, arguments: t.arguments, tool_call_id: t.id || `call-${i}` };
    emit({ message_type: 'tool_call_message', tool_call: call, tool_calls: [call] });
  }
  return { stopReason: tools.size > 0 ? 'requires_approval' : stopReasonOf(finish), model, usage };
}

/**
 * The `openai` processor: a run's messages to `POST {base}/chat/completions` with `stream: true`, its
 * deltas back as Letta messages as they arrive (CONTRACT section 7).
 *
 * Retries: 408/409/429/5xx, broken connections and silent servers are tried again within the attempt
 * (waiting what Retry-After asks, else backing off), so they cost no run attempt. That holds until the
 * first message of the call was emitted: a transcript cannot take back half a message, so a call that
 * breaks after that ends the attempt as a retryable failure, and BullMQ's next attempt starts over
 * from a clean transcript (the store resets a retried attempt's messages and steps). Other 4xx, and
 * retries run out, fail the run at once with `llm_api_error`.
 */
export function openaiProcessor(opts: OpenAIProcessorOptions): Processor {
  // The SDK's own retries would hide Retry-After waits and broken streams from us: ours decide.
  const client = new OpenAI({
    baseURL: opts.baseURL,
    // A local server needs no key; the SDK insists on one, and a placeholder is harmless there.
    apiKey: opts.apiKey ?? 'no-key',
    maxRetries: 0,
    timeout: opts.idleTimeoutMs,
  });
  const provider = providerName(opts.baseURL);

  return defineProcessor({
    name: 'openai',
    async run({ input, signal, context }) {
      let params: ChatCompletionCreateParamsStreaming;
      try {
        params = chatRequest(input, opts.model);
      } catch (err) {
        if (err instanceof InvalidOpenAIInput) throw new RunFailure(err.message, { retry: false });
        throw err;
      }
      const stepStart = epochNanos();
      const step = (fields: { status: 'success' | 'failed'; stop_reason: StopReasonType; model: string; requestStart: number; usage?: CallResult['usage'] }) => {
        const now = epochNanos();
        context.step({
          model: fields.model,
          provider_name: provider,
          prompt_tokens: fields.usage?.prompt_tokens ?? null,
          completion_tokens: fields.usage?.completion_tokens ?? null,
          total_tokens: fields.usage?.total_tokens ?? null,
          stop_reason: fields.stop_reason,
          status: fields.status,
          step_start_ns: stepStart,
          llm_request_start_ns: fields.requestStart,
          llm_request_ns: Math.max(0, Math.round(now - fields.requestStart)),
          step_ns: Math.max(0, Math.round(now - stepStart)),
        });
      };

      for (let retry = 0; ; retry++) {
        const requestStart = epochNanos();
        let emitted = false;
        try {
          const r = await streamCall(client, params, signal, context, opts.idleTimeoutMs, () => (emitted = true));
          if (r.usage) {
            context.reportUsage({ prompt_tokens: r.usage.prompt_tokens, completion_tokens: r.usage.completion_tokens, total_tokens: r.usage.total_tokens });
          }
          step({ status: 'success', stop_reason: r.stopReason, model: r.model, requestStart, usage: r.usage });
          return { stop_reason: r.stopReason };
        } catch (err) {
          if (signal.aborted) throw signal.reason;
          const v = judge(err);
          const fail = (message: string, retryRun: boolean): RunFailure => {
            step({ status: 'failed', stop_reason: 'llm_api_error', model: params.model, requestStart });
            return new RunFailure(message, { stopReason: 'llm_api_error', retry: retryRun });
          };
          if (!v.retry) throw fail(v.message, false);
          if (emitted) throw fail(`${v.message} (after the stream had begun; the attempt is retried from the start)`, true);
          if (retry >= opts.maxRetries) throw fail(`${v.message} (gave up after ${retry + 1} tries)`, false);
          if (v.retryAfterMs !== undefined && v.retryAfterMs > OPENAI_RETRY.maxRetryAfterMs) {
            throw fail(`${v.message} (asked to wait ${Math.round(v.retryAfterMs / 1000)} s, longer than ${OPENAI_RETRY.maxRetryAfterMs / 1000} s)`, false);
          }
          const wait = v.retryAfterMs ?? backoffMs(retry);
          context.log.warn({ err: v.message, retry: retry + 1, wait_ms: Math.round(wait) }, 'model call failed; trying again');
          await sleep(wait, signal);
        }
      }
    },
  });
}
