import { createHash } from 'node:crypto';
import { IdempotencyConflictError } from '../errors.ts';
import type { RunStore } from '../runs/store.ts';

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
 * Claims an Idempotency-Key for a new run id, or finds the run id an earlier request with the same key
 * claimed. The key maps to {hash of the request, run id} (SET NX, with a TTL); the same key with another
 * request is a conflict. The caller then creates the run under the returned id: creating an id that
 * exists returns that run, so a retry (or a race between two retries) never makes a second run or job.
 */
export async function claimIdempotencyKey(
  store: RunStore,
  key: string,
  hash: string,
  newId: string,
): Promise<{ runId: string; replayed: boolean }> {
  const redisKey = store.keys.idempotency(key);
  const claim = JSON.stringify({ hash, run_id: newId });
  const set = await store.redis.set(redisKey, claim, 'PX', IDEMPOTENCY_TTL_MS, 'NX');
  if (set === 'OK') return { runId: newId, replayed: false };
  const raw = await store.redis.get(redisKey);
  // Expired between the two calls: claim it again.
  if (raw === null) return claimIdempotencyKey(store, key, hash, newId);
  const prior = JSON.parse(raw) as { hash: string; run_id: string };
  if (prior.hash !== hash) {
    throw new IdempotencyConflictError('this Idempotency-Key was used with a different request', { run_id: prior.run_id });
  }
  return { runId: prior.run_id, replayed: true };
}
