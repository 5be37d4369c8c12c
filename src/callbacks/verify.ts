import { timingSafeEqual } from 'node:crypto';
import { CallbackSignatureError, CallbackTimestampError } from './errors.ts';
import type { CallbackPayload } from './payload.ts';
import { secretKey, sign } from './sign.ts';

/** How far a callback's timestamp may be from now, either way (Standard Webhooks' tolerance). */
export const TIMESTAMP_TOLERANCE_SEC = 5 * 60;

export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const h = headers as Record<string, string | string[] | undefined>;
  const v = h[name] ?? Object.entries(h).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * For receivers: checks a runhook callback against the signing secret and returns its payload. Throws
 * CallbackSignatureError (missing headers, wrong signature) or CallbackTimestampError (older or newer
 * than five minutes, which stops a captured request from being replayed later). `rawBody` must be the
 * bytes as received: re-serialized JSON does not verify.
 */
export function verifyCallback(
  secret: string,
  headers: HeaderSource,
  rawBody: string | Buffer | Uint8Array,
  nowMs = Date.now(),
): CallbackPayload {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !ts || !signatures) throw new CallbackSignatureError('missing webhook-id, webhook-timestamp or webhook-signature');
  const timestamp = Number(ts);
  if (!/^\d+$/.test(ts) || Math.abs(nowMs / 1000 - timestamp) > TIMESTAMP_TOLERANCE_SEC) {
    throw new CallbackTimestampError(`webhook-timestamp ${ts} is not within ${TIMESTAMP_TOLERANCE_SEC} s of now`);
  }
  const body = typeof rawBody === 'string' ? Buffer.from(rawBody) : Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
  const expected = Buffer.from(sign(secretKey(secret), id, timestamp, body).slice(3), 'base64');
  // The header may list several space-separated signatures (secret rotation); one match is enough.
  const ok = signatures.split(' ').some((s) => {
    const [version, value] = s.split(',', 2);
    if (version !== 'v1' || !value) return false;
    const got = Buffer.from(value, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
  if (!ok) throw new CallbackSignatureError('webhook-signature does not match the body');
  return JSON.parse(body.toString('utf8')) as CallbackPayload;
}
