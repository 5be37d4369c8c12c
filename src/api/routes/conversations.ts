import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { IllegalTransitionError, NotFoundError, RunNotFoundError } from '../../errors.ts';
import { Conversation, Conversations } from '../../flow/conversations.ts';
import { MAX_LIST_LIMIT, type Run } from '../../runs/schema.ts';
import type { RunMessage as AssembledMessage } from '../../runs/messages.ts';
import { createRunFor } from '../create-run.ts';
import { replyWithRunStream } from '../stream-reply.ts';
import { ErrorBody, IdempotencyHeaders, LettaAsyncRequest, MessageListParams, RunMessage, StreamRequest } from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';
import { lettaAsyncToRun } from './agents.ts';
import { pageMessages } from './run-details.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };
const ShortId = z.string().min(1).max(256);
const ConversationParams = z.object({ conversation_id: ShortId });
const AgentQuery = z.object({ agent_id: ShortId.nullish() });

const sseResponse = {
  200: { description: "Server-Sent Events: Letta's stream of the run, each message with its run_id and seq_id", content: { 'text/event-stream': { schema: z.string() } } },
  ...errors,
};

/** Letta's conversation message request: its async request plus the agent and stream options. */
const ConversationMessageRequest = z.intersection(
  LettaAsyncRequest,
  z.object({
    agent_id: ShortId.nullish(),
    background: z.boolean().optional(),
    include_pings: z.boolean().optional(),
    streaming: z.boolean().optional(),
    stream_tokens: z.boolean().optional(),
  }),
);

/**
 * Letta's conversation routes (CONTRACT section 8), as the official SDK calls them: a conversation's runs
 * queue up behind one another (flow control), so sending to a busy conversation waits its turn instead of
 * Letta's 409 (unless RUNHOOK_CONVERSATION_BUSY=reject).
 */
export function conversationRoutes(app: ApiInstance, deps: ApiDeps): void {
  const { runhook, config } = deps;
  const conversations = new Conversations(runhook.redis, config.keyPrefix);

  const requireConversation = async (id: string): Promise<Conversation> => {
    const c = await conversations.get(id);
    if (!c) throw new NotFoundError(`conversation ${id} not found`, { conversation_id: id });
    return c;
  };

  /** Its runs in creation order (the most a list returns: a conversation of more pages reads its newest). */
  const runsOf = async (id: string, statuses?: Run['status'][]): Promise<Run[]> =>
    (await runhook.listRuns({ conversation_id: id, order: 'desc', limit: MAX_LIST_LIMIT, ...(statuses && { statuses }) })).reverse();

  const stream = (req: FastifyRequest, reply: FastifyReply, run: Run, after: number, p: { include_pings?: boolean | null; batch_size?: number | null }) =>
    replyWithRunStream(deps, req, reply, run, { ...p, after });

  app.post(
    '/conversations',
    {
      schema: {
        summary: 'Create a conversation (Letta)',
        tags: ['conversations'],
        querystring: z.object({ agent_id: ShortId }),
        body: z.looseObject({ summary: z.string().max(10_000).nullish(), description: z.string().max(10_000).nullish() }).nullish(),
        response: { 200: Conversation, ...errors },
      },
    },
    async (req) => conversations.create(req.query.agent_id, { summary: req.body?.summary ?? null, description: req.body?.description ?? null }),
  );

  app.get(
    '/conversations',
    {
      schema: {
        summary: "List conversations (Letta), an agent's or all",
        tags: ['conversations'],
        querystring: z.object({
          agent_id: ShortId.nullish(),
          after: ShortId.nullish(),
          limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(50),
          order: z.enum(['asc', 'desc']).default('desc'),
        }),
        response: { 200: z.array(Conversation), ...errors },
      },
    },
    async (req) =>
      conversations.list({
        ...(req.query.agent_id && { agentId: req.query.agent_id }),
        ...(req.query.after && { after: req.query.after }),
        limit: req.query.limit,
        order: req.query.order,
      }),
  );

  app.get(
    '/conversations/:conversation_id',
    { schema: { summary: 'Retrieve a conversation (Letta)', tags: ['conversations'], params: ConversationParams, response: { 200: Conversation, ...errors } } },
    async (req) => requireConversation(req.params.conversation_id),
  );

  app.post(
    '/conversations/:conversation_id/messages',
    {
      schema: {
        summary: 'Send a message to a conversation (Letta)',
        description:
          "Makes a run on the conversation (queued behind its earlier runs) and answers Letta's stream of it. The agent is the conversation's, or `agent_id` for one not made yet.",
        tags: ['conversations'],
        params: ConversationParams,
        headers: IdempotencyHeaders,
        body: ConversationMessageRequest,
        response: sseResponse,
      },
    },
    async (req, reply) => {
      const id = req.params.conversation_id;
      const owner = (await conversations.get(id))?.agent_id;
      const agentId = req.body.agent_id ?? owner;
      if (!agentId) throw new NotFoundError(`conversation ${id} not found (name its agent_id to make it)`, { conversation_id: id });
      const body = { ...lettaAsyncToRun(agentId, req.body), conversation_id: id, background: req.body.background ?? null };
      const run = await createRunFor(runhook, req, reply, body, 'POST /v1/conversations/messages');
      return stream(req, reply, run, 0, { include_pings: req.body.include_pings ?? true });
    },
  );

  app.post(
    '/conversations/:conversation_id/stream',
    {
      schema: {
        summary: "Stream a conversation's current or last run (Letta)",
        description: 'Resumable with `starting_after` (a seq_id of that run); `run_id` names another run of the conversation.',
        tags: ['conversations'],
        params: ConversationParams,
        body: z.intersection(StreamRequest, z.object({ run_id: ShortId.nullish(), agent_id: ShortId.nullish() }).passthrough()),
        response: sseResponse,
      },
    },
    async (req, reply) => {
      const id = req.params.conversation_id;
      await requireConversation(id);
      const b = req.body ?? {};
      let run: Run | undefined;
      if (b.run_id) {
        run = await runhook.getRun(b.run_id);
        if (run.conversation_id !== id) throw new RunNotFoundError(b.run_id);
      } else {
        const running = await runhook.listRuns({ conversation_id: id, statuses: ['running'], limit: 1 });
        run = running[0] ?? (await runhook.listRuns({ conversation_id: id, limit: 1 }))[0];
      }
      if (!run) throw new NotFoundError(`conversation ${id} has no run to stream`, { conversation_id: id });
      return stream(req, reply, run, b.starting_after ?? 0, b);
    },
  );

  app.post(
    '/conversations/:conversation_id/cancel',
    {
      schema: {
        summary: "Cancel a conversation's runs (Letta)",
        description: 'Its running run and every run waiting behind it; answers each run id with `cancelled` or why not.',
        tags: ['conversations'],
        params: ConversationParams,
        querystring: AgentQuery,
        response: { 200: z.record(z.string(), z.string()), ...errors },
      },
    },
    async (req) => {
      const id = req.params.conversation_id;
      await requireConversation(id);
      // The waiting ones first, newest first: cancelling the head first would admit the next.
      const active = (await runsOf(id, ['created', 'running'])).reverse();
      const out: Record<string, string> = {};
      for (const run of active) {
        try {
          await runhook.cancelRun(run.id);
          out[run.id] = 'cancelled';
        } catch (err) {
          if (err instanceof RunNotFoundError) out[run.id] = 'not_found';
          else if (err instanceof IllegalTransitionError) out[run.id] = `already_${err.from}`;
          else throw err;
        }
      }
      return out;
    },
  );

  app.get(
    '/conversations/:conversation_id/messages',
    {
      schema: {
        summary: "List a conversation's messages (Letta)",
        description: 'The messages of its runs, in order, paged as a run\'s messages (`after` = the last message id).',
        tags: ['conversations'],
        params: ConversationParams,
        querystring: z.intersection(MessageListParams, AgentQuery),
        response: { 200: z.array(RunMessage), ...errors },
      },
    },
    async (req) => {
      const id = req.params.conversation_id;
      await requireConversation(id);
      const runs = await runsOf(id);
      const all: AssembledMessage[] = [];
      for (const run of runs) {
        const { messages } = await runhook.store.messages(run.id);
        all.push(...messages.map((m) => ({ ...m, run_id: m.run_id ?? run.id })));
      }
      return pageMessages(all, req.query);
    },
  );
}
