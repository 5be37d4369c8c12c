import { z } from 'zod';
import { RunStatus, StopReasonType } from '../runs/schema.ts';

/**
 * Bulk operations (CONTRACT section 10): one action applied to every run a filter matches, walked in
 * pages by a job, with its progress readable while it goes.
 */

export const BulkAction = z.enum(['cancel', 'replay', 'delete']);
export type BulkAction = z.infer<typeof BulkAction>;

const ShortId = z.string().min(1).max(256);
const Time = z.iso.datetime({ offset: true });

export const BulkFilter = z
  .object({
    agent_id: ShortId.optional(),
    agent_ids: z.array(ShortId).min(1).max(1000).optional(),
    statuses: z.array(RunStatus).min(1).optional(),
    conversation_id: ShortId.optional(),
    stop_reason: StopReasonType.optional(),
    created_after: Time.optional().describe('Only runs created at or after this time'),
    created_before: Time.optional().describe('Only runs created before this time'),
  })
  .strict();
export type BulkFilter = z.infer<typeof BulkFilter>;

export const BulkCreate = z.object({
  action: BulkAction,
  // A bulk action over every run of the deployment is a mistake more often than a wish: say `{}` to mean it.
  filter: BulkFilter,
});
export type BulkCreate = z.infer<typeof BulkCreate>;

export const BulkStatus = z.enum(['running', 'done', 'failed']);
export type BulkStatus = z.infer<typeof BulkStatus>;

export const BulkOperation = z
  .object({
    id: z.string(),
    action: BulkAction,
    filter: BulkFilter,
    status: BulkStatus,
    /** Runs found matching so far (the final count once done). */
    matched: z.number().int().nonnegative(),
    /** Runs the action was applied to (for cancel: now cancelled; delete: gone; replay: replayed). */
    done: z.number().int().nonnegative(),
    /** Runs the action could not be applied to (e.g. a run that completed before it could be cancelled). */
    failed: z.number().int().nonnegative(),
    created_at: z.string(),
    completed_at: z.string().nullable(),
    /** Why the operation failed, when it did. */
    error: z.string().nullable(),
  })
  .meta({ id: 'BulkOperation' });
export type BulkOperation = z.infer<typeof BulkOperation>;

export const BULK_ID_PATTERN = /^bulk-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
