import { z } from 'zod';
import { InvalidInputError } from '../../errors.ts';
import type { RunMessage as AssembledMessage } from '../../runs/messages.ts';
import { RunUsage, type Run } from '../../runs/schema.ts';
import {
  CallbackAttempts,
  ErrorBody,
  MessageListParams,
  RunDoc,
  RunIdParams,
  RunMessage,
  RunMetrics,
  UsageResponse,
} from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };

/**
 * One page of messages by message-id cursors, as the run list pages by run ids (and as Letta pages
 * them): `after` and `before` bound the messages in the requested order, and the page is the first
 * `limit` of what lies between. Messages that share an id (a step's reasoning and tool call) have one
 * place, so a page ends after the last of them, even past `limit`, and `after` = that id goes on with
 * the next. A cursor naming a message dropped since (with an attempt that a new one replaced) stands
 * where those were: before every message of the run.
 */
export function pageMessages(
  messages: AssembledMessage[],
  q: z.output<typeof MessageListParams>,
  { dropped = false, visible = () => true }: { dropped?: boolean; visible?: (m: AssembledMessage) => boolean } = {},
): AssembledMessage[] {
  const groups: AssembledMessage[][] = [];
  for (const m of messages) {
    const last = groups.at(-1);
    if (last && last[0]!.id === m.id) last.push(m);
    else groups.push([m]);
  }
  if (q.order === 'desc') groups.reverse();
  const at = (id: string) => {
    const i = groups.findIndex((g) => g[0]!.id === id);
    if (i >= 0) return i;
    // A dropped attempt's messages all came before the current ones (seq ids only grow).
    if (dropped) return q.order === 'desc' ? groups.length : -1;
    throw new InvalidInputError(`cursor ${id} is not a message of this run`, { cursor: id });
  };
  const start = q.after === undefined ? 0 : Math.min(groups.length, at(q.after) + 1);
  const end = q.before === undefined ? groups.length : Math.max(0, at(q.before));
  const page: AssembledMessage[] = [];
  for (const group of groups.slice(start, Math.max(start, end))) {
    if (page.length >= q.limit) break;
    page.push(...group.filter(visible));
  }
  return page;
}

function visibleTo(run: Run): (m: AssembledMessage) => boolean {
  const types = run.request_config?.include_return_message_types;
  if (!types) return () => true;
  const allowed = new Set<string>(types);
  return (m) => allowed.has(m.message_type);
}

/** What a run produced and cost: messages, usage, metrics, and its callback's delivery log. */
export function runDetailRoutes(app: ApiInstance, { runhook }: ApiDeps): void {
  const { store } = runhook;

  app.get(
    '/runs/:run_id/messages',
    {
      schema: {
        summary: "List a run's messages",
        description: 'Whole Letta messages (streamed chunks folded), oldest first; page with `after` = the last id.',
        tags: ['runs'],
        params: RunIdParams,
        querystring: MessageListParams,
        response: { 200: z.array(RunMessage), ...errors },
      },
    },
    async (req) => {
      const record = await store.requireRecord(req.params.run_id);
      // Folded once the run ended (see runs/message-log.ts), so this reads whole messages, not chunks.
      const { messages, firstSeq } = await store.messages(record.run.id);
      // Seq ids start at 1 and only grow: a first one past 1 means an earlier attempt's were dropped.
      const dropped = (firstSeq ?? record.lastSeq + 1) > 1;
      return pageMessages(messages, req.query, { dropped, visible: visibleTo(record.run) });
    },
  );

  app.get(
    '/runs/:run_id/usage',
    {
      schema: { summary: "A run's usage", tags: ['runs'], params: RunIdParams, response: { 200: UsageResponse, ...errors } },
    },
    async (req) => {
      const record = await store.requireRecord(req.params.run_id);
      return record.usage ?? RunUsage.parse({});
    },
  );

  app.get(
    '/runs/:run_id/metrics',
    {
      schema: { summary: "A run's metrics", tags: ['runs'], params: RunIdParams, response: { 200: RunMetrics, ...errors } },
    },
    async (req) => {
      const r = await store.requireRecord(req.params.run_id);
      return {
        id: r.run.id,
        organization_id: null,
        agent_id: r.run.agent_id,
        project_id: null,
        run_start_ns: r.startedUs === null ? null : r.startedUs * 1000,
        run_ns: r.run.total_duration_ns,
        num_steps: r.usage?.step_count ?? null,
        tools_used: null,
        template_id: null,
        base_template_id: r.run.base_template_id,
        ttft_ns: r.run.ttft_ns,
        queue_wait_ns: r.startedUs === null ? null : Math.max(0, r.startedUs - r.createdUs) * 1000,
        attempts: r.attempt,
      } satisfies z.output<typeof RunMetrics>;
    },
  );

  app.get(
    '/runs/:run_id/callback-attempts',
    {
      schema: {
        summary: "Every delivery attempt of a run's callback",
        tags: ['callbacks'],
        params: RunIdParams,
        response: { 200: CallbackAttempts, ...errors },
      },
    },
    async (req) => {
      await store.require(req.params.run_id);
      return store.callbackAttempts(req.params.run_id);
    },
  );

  app.post(
    '/runs/:run_id/callback/retry',
    {
      schema: {
        summary: "Deliver a run's callback again now",
        description: 'A new delivery with a full retry schedule; 422 if the run has no callback_url, 409 if it has not ended.',
        tags: ['callbacks'],
        params: RunIdParams,
        response: { 202: RunDoc, ...errors },
      },
    },
    async (req, reply) => reply.code(202).send(await runhook.retryCallback(req.params.run_id)),
  );
}
