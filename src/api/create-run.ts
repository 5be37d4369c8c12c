import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Runhook } from '../runhook.ts';
import type { Run, RunCreate, RunCreateParsed } from '../runs/schema.ts';
import { idempotencyClaim } from './idempotency.ts';

/**
 * Creates a run for a request, honouring its Idempotency-Key: the first request with a key claims it
 * for the run it stores, a retry of it gets that same run back (marked `idempotent-replayed: true`), a
 * retry after the run was deleted is a 409 RUN_DELETED. Both create routes (runhook's and Letta's) go
 * through here.
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
  // A replay returns the run the key names; it also adds its job again if a crash came between storing
  // the run and adding its job (the job id is the run id, so never a second job).
  const { run, created } = await runhook.createRun(body, undefined, { validated, idempotency: idempotencyClaim(key, route, body) });
  if (!created) reply.header('idempotent-replayed', 'true');
  return run;
}
