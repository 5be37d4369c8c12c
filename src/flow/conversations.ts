import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { microsToIso, nowMicros } from '../clock.ts';
import { ConversationAgentMismatchError } from '../errors.ts';
import type { RedisClient } from '../queue/connection.ts';
import { FlowKeys } from './flow.ts';

/**
 * Letta's Conversation, as far as runhook keeps one: its agent (fixed by the first run or POST that
 * named it), when it was made, and the summary and description given at creation. A run that names a
 * conversation id nobody created makes it (flow.lua), as it fixes its agent.
 */
export const Conversation = z
  .object({
    id: z.string(),
    agent_id: z.string(),
    created_at: z.string().nullable(),
    updated_at: z.string().nullable(),
    summary: z.string().nullable(),
    description: z.string().nullable(),
    archived: z.boolean(),
    in_context_message_ids: z.array(z.string()),
  })
  .meta({ id: 'Conversation' });
export type Conversation = z.infer<typeof Conversation>;

function toConversation(id: string, h: Record<string, string>): Conversation {
  const created = h.created_us ? microsToIso(Number(h.created_us)) : null;
  return {
    id,
    agent_id: h.agent_id!,
    created_at: created,
    updated_at: created,
    summary: h.summary ?? null,
    description: h.description ?? null,
    archived: false,
    in_context_message_ids: [],
  };
}

export class Conversations {
  readonly #keys: FlowKeys;

  constructor(
    readonly redis: RedisClient,
    prefix: string,
  ) {
    this.#keys = new FlowKeys(prefix);
  }

  /** A new conversation of `agentId` (Letta's ids are `conv-<uuid>`). */
  async create(agentId: string, fields: { summary?: string | null; description?: string | null } = {}): Promise<Conversation> {
    const id = `conv-${randomUUID()}`;
    const us = nowMicros();
    const h: Record<string, string> = { agent_id: agentId, created_us: String(us) };
    if (fields.summary) h.summary = fields.summary;
    if (fields.description) h.description = fields.description;
    await Promise.all([
      this.redis.hset(this.#keys.conversation(id), h),
      this.redis.zadd(this.#keys.agentConversations(agentId), us, id),
      this.redis.zadd(`${this.#keys.prefix}:flow:convs`, us, id),
    ]);
    return toConversation(id, h);
  }

  async get(id: string): Promise<Conversation | null> {
    const h = await this.redis.hgetall(this.#keys.conversation(id));
    return h.agent_id === undefined ? null : toConversation(id, h);
  }

  /** Refuses a conversation that belongs to another agent (the create script refuses it too). */
  async requireOwnedBy(id: string, agentId: string): Promise<void> {
    const owner = await this.redis.hget(this.#keys.conversation(id), 'agent_id');
    if (owner && owner !== agentId) throw new ConversationAgentMismatchError(id, agentId, owner);
  }

  /** Newest first unless asked otherwise; `after` is a conversation id (a cursor). */
  async list(q: { agentId?: string; limit: number; after?: string; order: 'asc' | 'desc' }): Promise<Conversation[]> {
    const index = q.agentId ? this.#keys.agentConversations(q.agentId) : `${this.#keys.prefix}:flow:convs`;
    let start = 0;
    if (q.after) {
      const rank = q.order === 'asc' ? await this.redis.zrank(index, q.after) : await this.redis.zrevrank(index, q.after);
      start = rank === null ? 0 : rank + 1;
    }
    const ids =
      q.order === 'asc' ? await this.redis.zrange(index, start, start + q.limit - 1) : await this.redis.zrevrange(index, start, start + q.limit - 1);
    const rows = await Promise.all(ids.map((id) => this.get(id)));
    return rows.filter((c): c is Conversation => c !== null);
  }
}
