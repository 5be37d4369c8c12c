import { Agent } from 'undici';
import { BlockedAddressError, CallbackDnsError } from './errors.ts';
import { AddressPolicy, guardedConnector } from './ssrf.ts';

/** At most this much of a receiver's answer is read; the rest is discarded with the socket. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export interface DeliveryResult {
  /** The receiver's HTTP status; null when no response came. */
  statusCode: number | null;
  /** Null on a 2xx; otherwise short and meant for a person: `HTTP 503`, `timeout after 5000 ms`, … */
  error: string | null;
  durationMs: number;
  /** No later attempt can succeed (410 Gone, an unusable URL): stop retrying. */
  final: boolean;
}

export interface DelivererOptions {
  timeoutMs: number;
  allowPrivate: boolean | readonly string[];
  userAgent?: string;
}

/**
 * One POST of a callback, over one shared undici Agent (connections kept alive per receiver). Each
 * phase (DNS, connect, headers, body) is bounded by the timeout; redirects are never followed (undici
 * follows none without its redirect interceptor), since a redirect may point at an internal address.
 */
export class Deliverer {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #userAgent: string;

  constructor(o: DelivererOptions) {
    this.#timeoutMs = o.timeoutMs;
    this.#userAgent = o.userAgent ?? 'runhook';
    this.#agent = new Agent({
      connect: guardedConnector(new AddressPolicy(o.allowPrivate), o.timeoutMs),
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    });
  }

  /** `signal` cuts the attempt short (a shutdown); the result then says how far it got. */
  async deliver(url: string, body: string, headers: Record<string, string>, signal?: AbortSignal): Promise<DeliveryResult> {
    const started = performance.now();
    const done = (statusCode: number | null, error: string | null, final = false): DeliveryResult => ({
      statusCode,
      error,
      durationMs: Math.round(performance.now() - started),
      final,
    });
    let target: URL;
    try {
      target = new URL(url);
      if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      return done(null, 'invalid callback url', true);
    }
    let statusCode: number;
    try {
      const res = await this.#agent.request({
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': this.#userAgent, ...headers },
        body,
        signal,
      });
      statusCode = res.statusCode;
      // The answer does not matter beyond its status; reading a little lets the connection be reused,
      // and a huge or endless body is cut off with its socket.
      // A plain timer, not AbortSignal.timeout + any: those cost a few percent of CPU per delivery.
      const deadline = setTimeout(() => res.body.destroy(), this.#timeoutMs);
      try {
        await res.body.dump({ limit: MAX_RESPONSE_BYTES, ...(signal && { signal }) }).catch(() => undefined);
      } finally {
        clearTimeout(deadline);
      }
    } catch (err) {
      return done(null, describeError(err, this.#timeoutMs));
    }
    if (statusCode >= 200 && statusCode < 300) return done(statusCode, null);
    if (statusCode >= 300 && statusCode < 400) return done(statusCode, 'redirect refused');
    return done(statusCode, `HTTP ${statusCode}`, statusCode === 410);
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/** Why a request got no response, keyed by the error codes of undici and node:net. */
const BY_CODE: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  UND_ERR_SOCKET: 'connection closed',
  EPIPE: 'connection closed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE: 'response too large',
};

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

export function describeError(err: unknown, timeoutMs: number): string {
  if (err instanceof BlockedAddressError) return 'blocked address';
  if (err instanceof CallbackDnsError) return err.message;
  const e = err as { code?: string; message?: string; cause?: unknown };
  const code = e.code ?? '';
  if (code === 'UND_ERR_ABORTED' || (err as Error)?.name === 'AbortError') return 'aborted';
  if (TIMEOUT_CODES.has(code)) return `timeout after ${timeoutMs} ms`;
  const known = BY_CODE[code];
  if (known) return known;
  if (code.startsWith('ERR_TLS') || code.includes('CERT')) return `TLS error (${code})`;
  if (e.cause && e.cause !== err) return describeError(e.cause, timeoutMs);
  return (code || e.message || String(err)).slice(0, 200);
}
