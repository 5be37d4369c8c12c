import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Runhook } from '../runhook.ts';
import { newRunId, type Run, type RunCreate, type RunCreateParsed } from '../runs/schema.ts';
import { claimIdempotencyKey, requestHash } from './idempotency.ts';

/**
 * Creates a run for a request, honouring its Idempotency-Key: the first request with a key claims a
 * run id, a retry of it gets that same run back (marked `idempotent-replayed: true`). Both create
 * routes (runhook's and Letta's) go through here.
 */
export async function createRunFor(
  runhook: Runhook,
  req: FastifyRequest,
  reply: FastifyReply,
  body: RunCreate | RunCreateParsed,
  route: string,
  /** The body is RunCreate's output (the route validated it with that schema): not parsed again. */
  validated = false,
): Promise<Run> {
  const key = req.headers['idempotency-key'];
  if (typeof key !== 'string' || key === '') return (await runhook.createRun(body, undefined, { validated })).run;
  const { runId, replayed } = await claimIdempotencyKey(runhook.store, key, requestHash(route, body), newRunId());
  if (replayed) reply.header('idempotent-replayed', 'true');
  // Under a replayed id this returns the run that exists; it also adds the job again if a crash came
  // between the claim and the first create (the job id is the run id, so never a second job).
  return (await runhook.createRun(body, runId, { validated })).run;
}
