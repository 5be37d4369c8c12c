import { createHash } from 'node:crypto';
import type { IdempotencyClaim } from '../runs/store.ts';

/** How long a key is remembered; Stripe keeps its keys for 24 h too. */
export const IDEMPOTENCY_TTL_MS = 86_400_000;

/** JSON with object keys sorted, so that `{"a":1,"b":2}` and `{"b":2,"a":1}` are the same request. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function requestHash(route: string, body: unknown): string {
  return createHash('sha256').update(route).update('\n').update(canonical(body)).digest('hex');
}

/**
 * The claim a create with an Idempotency-Key makes, in the same script that stores the run (see
 * create-run.lua): the key names that run for IDEMPOTENCY_TTL_MS. A retry with the same request gets the
 * run back; with another request it is a 409 IDEMPOTENCY_KEY_REUSED; once the run was deleted, a 409
 * RUN_DELETED, so a deleted run is never made (or processed) again.
 */
export function idempotencyClaim(key: string, route: string, body: unknown): IdempotencyClaim {
  return { key, requestHash: requestHash(route, body), ttlMs: IDEMPOTENCY_TTL_MS };
}
