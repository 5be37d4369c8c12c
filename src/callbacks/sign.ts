import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the signature covers
 * `${id}.${timestamp}.${body}`, keyed with the base64 bytes after `whsec_`.
 */

export const SECRET_PREFIX = 'whsec_';

export function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

/** The same for every attempt of one run's callback, so a receiver can drop duplicates. */
export function webhookId(runId: string): string {
  return `msg_${runId}`;
}

/** `v1,` + base64 HMAC-SHA256; `key` is secretKey(secret), computed once by the caller. */
export function sign(key: Buffer, id: string, timestampSec: number, body: string | Buffer): string {
  const mac = createHmac('sha256', key).update(`${id}.${timestampSec}.`).update(body).digest('base64');
  return `v1,${mac}`;
}

/** The headers of one attempt; the signature only when a secret is configured. */
export function webhookHeaders(key: Buffer | undefined, id: string, body: string, nowMs = Date.now()): Record<string, string> {
  const ts = Math.floor(nowMs / 1000);
  const headers: Record<string, string> = { 'webhook-id': id, 'webhook-timestamp': String(ts) };
  if (key) headers['webhook-signature'] = sign(key, id, ts, body);
  return headers;
}
