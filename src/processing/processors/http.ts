import { request, type Dispatcher } from 'undici';
import { z } from 'zod';
import { secretKey, webhookHeaders } from '../../callbacks/sign.ts';
import type { Config } from '../../config.ts';
import { RunUsage, StopReasonType } from '../../runs/schema.ts';
import { defineProcessor, RunFailure, type EmittedMessage, type Processor, type ProcessorContext } from '../processor.ts';

/**
 * The `http` processor (CONTRACT section 7): hands a run to the user's own service, in any language.
 * It POSTs `{"run", "input", "attempt"}` to RUNHOOK_HTTP_URL, signed as callbacks are (Standard
 * Webhooks), and reads the answer as it comes: NDJSON or Server-Sent Events of objects that are each a
 * Letta message, `{"usage"}`, `{"step"}`, or, last, `{"stop_reason"}`; or one JSON answer
 * `{"messages", "stop_reason", "usage"}`. Whether a failure is retried follows HTTP: a 5xx, a broken
 * connection, silence past the idle timeout or a stream that ends without its stop reason are tried
 * again (the worker's attempts; the attempt's messages and steps are reset); a 4xx, or an answer that
 * breaks the protocol, fails the run at once.
 */

export interface HttpProcessorOptions {
  /** The service's URL: operator configuration, never taken from a request (so no SSRF guard). */
  url: string;
  /** Signs each request; undefined sends it unsigned. */
  secret?: string | undefined;
  /** Longest silence (before the answer's headers, between two pieces of its body). */
  idleTimeoutMs: number;
  dispatcher?: Dispatcher;
}

export function httpOptions(config: Config): HttpProcessorOptions {
  if (!config.httpUrl) throw new Error('the http processor needs RUNHOOK_HTTP_URL');
  return { url: config.httpUrl, secret: config.httpSecret ?? config.webhookSecret, idleTimeoutMs: config.httpIdleTimeoutMs };
}

/** A line (NDJSON) or an event (SSE) longer than this is a broken answer, not something to buffer. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
/** A plain JSON answer, and the part of an error answer kept for the run's error message. */
const MAX_JSON_BYTES = 16 * 1024 * 1024;
const ERROR_BODY_BYTES = 512;

const Usage = RunUsage.partial();
/** `{"stop_reason": "end_turn"}`, or Letta's own stop-reason message `{"message_type": "stop_reason", …}`. */
const StopReasonField = z.union([StopReasonType, z.object({ stop_reason: StopReasonType })]);
const JsonAnswer = z.object({
  messages: z.array(z.looseObject({ message_type: z.string() })).default([]),
  stop_reason: StopReasonField.optional(),
  usage: Usage.nullish(),
  steps: z.array(z.unknown()).optional(),
});

/** A protocol error of the service's answer: retrying would get the same answer. */
function broken(message: string): RunFailure {
  return new RunFailure(`http processor: ${message}`, { retry: false });
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string {
  const v = headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? '';
}

/** What one run attempt has read from the service so far. */
class Answer {
  stopReason: StopReasonType | undefined;
  usage: Partial<RunUsage> | undefined;

  constructor(private readonly context: ProcessorContext) {}

  /** One object of the stream. Returns true once it was the stop reason (the answer is complete). */
  take(obj: unknown): boolean {
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw broken(`expected a JSON object, got ${JSON.stringify(obj)?.slice(0, 100)}`);
    const o = obj as Record<string, unknown>;
    if (typeof o.message_type === 'string') {
      // Letta's own stream objects, for a service that relays one.
      if (o.message_type === 'stop_reason') return this.#stop(o.stop_reason);
      if (o.message_type === 'usage_statistics') return this.#usage(o);
      if (o.message_type === 'ping') return false;
      // Not awaited (messages batch per tick); a failed write is re-raised by the worker's flush, and left
      // unhandled here it would end the worker process (as echo and openai catch theirs).
      this.context.emit(o as EmittedMessage).catch(() => {});
      return false;
    }
    if ('stop_reason' in o) return this.#stop(o.stop_reason);
    if ('usage' in o) return this.#usage(o.usage);
    if ('step' in o) {
      try {
        this.context.step((o.step ?? {}) as Parameters<ProcessorContext['step']>[0]);
      } catch (err) {
        throw broken(`invalid step: ${err instanceof Error ? err.message : String(err)}`);
      }
      return false;
    }
    throw broken(`an object with neither message_type, usage, step nor stop_reason: ${JSON.stringify(o).slice(0, 200)}`);
  }

  #stop(v: unknown): boolean {
    const parsed = StopReasonType.safeParse(v);
    if (!parsed.success) throw broken(`unknown stop_reason ${JSON.stringify(v)}`);
    this.stopReason = parsed.data;
    return true;
  }

  /** Usage objects add up (a service may send one per model call). */
  #usage(v: unknown): boolean {
    const parsed = Usage.safeParse(v);
    if (!parsed.success) throw broken(`invalid usage: ${parsed.error.message}`);
    const cur = this.usage ?? {};
    const add = (k: keyof RunUsage) => (cur[k] ?? 0) + (parsed.data[k] ?? 0);
    this.usage = { prompt_tokens: add('prompt_tokens'), completion_tokens: add('completion_tokens'), total_tokens: add('total_tokens'), step_count: add('step_count') };
    return false;
  }
}

/** Splits a byte stream into lines (NDJSON) or into the data of events (SSE), bounded in size. */
class Framer {
  #buf = '';
  #data: string[] = [];
  readonly #decoder = new TextDecoder();

  constructor(private readonly sse: boolean) {}

  /** The complete objects' texts in `chunk` (and what was left of the previous one). */
  push(chunk: Uint8Array | undefined): string[] {
    this.#buf += chunk ? this.#decoder.decode(chunk, { stream: true }) : this.#decoder.decode();
    const out: string[] = [];
    let nl: number;
    while ((nl = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, nl).replace(/\r$/, '');
      this.#buf = this.#buf.slice(nl + 1);
      this.#line(line, out);
    }
    if (this.#buf.length > MAX_LINE_BYTES) throw broken(`a line longer than ${MAX_LINE_BYTES} bytes`);
    if (!chunk && this.#buf !== '') {
      // The last line needs no newline.
      this.#line(this.#buf, out);
      this.#buf = '';
      if (this.sse) this.#line('', out);
    }
    return out;
  }

  #line(line: string, out: string[]): void {
    if (!this.sse) {
      if (line.trim() !== '') out.push(line);
      return;
    }
    if (line === '') {
      // A blank line ends an event; its data lines are joined with newlines (the SSE standard).
      if (this.#data.length > 0) {
        const data = this.#data.join('\n');
        this.#data = [];
        if (data.trim() !== '[DONE]') out.push(data);
      }
      return;
    }
    if (line.startsWith(':')) return; // a comment: keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    if (field !== 'data') return; // event, id, retry: the object itself says what it is
    this.#data.push(colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, ''));
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw broken(`not JSON: ${text.slice(0, 200)}`);
  }
}

async function readSome(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    n += (chunk as Buffer).length;
    if (n >= max) break;
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}

export function httpProcessor(o: HttpProcessorOptions): Processor {
  const key = o.secret ? secretKey(o.secret) : undefined;
  return defineProcessor({
    name: 'http',
    async run({ run, input, signal, context }) {
      const body = JSON.stringify({ run, input: input ?? null, attempt: context.attempt });
      let res: Dispatcher.ResponseData;
      try {
        res = await request(o.url, {
          method: 'POST',
          body,
          headers: {
            'content-type': 'application/json',
            accept: 'application/x-ndjson, text/event-stream, application/json',
            // One id per attempt: a retried attempt is a new request the service must not drop as a duplicate.
            ...webhookHeaders(key, `msg_${run.id}_${context.attempt}`, body),
          },
          signal,
          headersTimeout: o.idleTimeoutMs,
          bodyTimeout: o.idleTimeoutMs,
          ...(o.dispatcher && { dispatcher: o.dispatcher }),
        });
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw new RunFailure(`http processor: ${o.url} unreachable: ${(err as Error).message}`);
      }

      if (res.statusCode < 200 || res.statusCode >= 300) {
        const text = await readSome(res.body, ERROR_BODY_BYTES).catch(() => '');
        const message = `http processor: the service answered ${res.statusCode}${text ? `: ${text}` : ''}`;
        // 5xx (and anything else that is not a client error) may pass; a 4xx will not.
        throw new RunFailure(message, { retry: !(res.statusCode >= 400 && res.statusCode < 500) });
      }

      const answer = new Answer(context);
      const type = header(res.headers, 'content-type').split(';')[0]!.trim().toLowerCase();
      try {
        if (type === 'application/json') {
          const parsed = JsonAnswer.safeParse(parse(await readSome(res.body, MAX_JSON_BYTES)));
          if (!parsed.success) throw broken(`invalid JSON answer: ${parsed.error.message}`);
          for (const m of parsed.data.messages) answer.take(m);
          for (const s of parsed.data.steps ?? []) answer.take({ step: s });
          if (parsed.data.usage) answer.take({ usage: parsed.data.usage });
          const stop = parsed.data.stop_reason;
          // A whole answer is complete by definition: no stop reason means the turn ended.
          answer.take({ stop_reason: stop === undefined ? 'end_turn' : typeof stop === 'string' ? stop : stop.stop_reason });
        } else if (type === 'application/x-ndjson' || type === 'application/jsonl' || type === 'text/event-stream') {
          const framer = new Framer(type === 'text/event-stream');
          let done = false;
          for await (const chunk of res.body) {
            for (const text of framer.push(chunk as Buffer)) if ((done = answer.take(parse(text)))) break;
            // The stop reason is last: the rest of the body is not read (breaking out closes it).
            if (done) break;
          }
          if (!done) for (const text of framer.push(undefined)) if ((done = answer.take(parse(text)))) break;
          if (!done) throw new RunFailure('http processor: the stream ended before its stop reason');
        } else {
          throw broken(`unsupported content-type "${type}": expected application/x-ndjson, text/event-stream or application/json`);
        }
      } catch (err) {
        res.body.destroy();
        if (signal.aborted) throw signal.reason;
        if (err instanceof RunFailure) throw err;
        // The connection broke or went silent mid-answer (undici's "terminated", a body timeout).
        throw new RunFailure(`http processor: the answer broke off: ${(err as Error).message}`);
      }
      return { stop_reason: answer.stopReason!, ...(answer.usage && { usage: answer.usage }) };
    },
  });
}
