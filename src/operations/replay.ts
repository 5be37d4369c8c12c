import { createHash } from 'node:crypto';
import type { Runhook } from '../runhook.ts';
import { newRunId, type Metadata, type Run } from '../runs/schema.ts';

/**
 * A replay: a new run with the original's agent, input, processor, request config, conversation,
 * callback URL and metadata, and `replay_of` naming the original (CONTRACT section 10). The original
 * is only read. With `id` given, replaying again with the same id returns the run made the first time
 * (create with an existing id is a no-op), which is what makes a bulk replay safe to resume.
 */
export async function replayRun(runhook: Runhook, originalId: string, id: string = newRunId()): Promise<{ run: Run; created: boolean }> {
  const record = await runhook.store.requireRecord(originalId);
  const o = record.run;
  // The stored metadata, not the Run's: a failed run shows its error inside metadata, and that must not
  // become part of the new run's metadata.
  const raw = await runhook.redis.hget(runhook.store.keys.run(originalId), 'metadata');
  const metadata = raw === null ? null : (JSON.parse(raw) as Metadata);
  return runhook.createRun(
    {
      agent_id: o.agent_id,
      input: record.input,
      callback_url: o.callback_url,
      metadata,
      background: o.background,
      conversation_id: o.conversation_id,
      base_template_id: o.base_template_id,
      request_config: o.request_config,
      processor: o.processor,
      // Its priority too; not its run_at: a replay is asked for now.
      priority: o.priority,
    },
    id,
    { replayOf: originalId },
  );
}

/**
 * The id of the run a bulk operation makes when it replays `runId`: derived from both, in the shape of
 * a run id (a UUID v4's version and variant bits), so a resumed operation that replays the same run
 * again names the same new run and does not make a second one.
 */
export function replayIdFor(operationId: string, runId: string): string {
  const h = createHash('sha256').update(`${operationId}\n${runId}`).digest('hex');
  const variant = '89ab'[parseInt(h[16]!, 16) & 3]!;
  return `run-${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
