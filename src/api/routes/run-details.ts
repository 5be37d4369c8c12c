import { z } from 'zod';
import { InvalidInputError } from '../../errors.ts';
import { assembleMessages, type RunMessage as AssembledMessage } from '../../runs/messages.ts';
import { RunUsage, type Run } from '../../runs/schema.ts';
import type { RunStore, StreamEntry } from '../../runs/store.ts';
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
const PAGE = 1_000;

async function allEntries(store: RunStore, id: string): Promise<StreamEntry[]> {
  const out: StreamEntry[] = [];
  for (;;) {
    const page = await store.streamEntries(id, out.at(-1)?.seq_id ?? 0, PAGE);
    out.push(...page);
    if (page.length < PAGE) return out;
  }
}

/**
 * One page of messages by message-id cursors, as the run list pages by run ids: `after` gives the
 * `limit` messages that follow the cursor in the requested order, `before` the `limit` that precede it.
 */
export function pageMessages(
  messages: AssembledMessage[],
  q: z.output<typeof MessageListParams>,
): AssembledMessage[] {
  let list = q.order === 'desc' ? [...messages].reverse() : messages;
  const at = (id: string) => {
    const i = list.findIndex((m) => m.id === id);
    if (i < 0) throw new InvalidInputError(`cursor ${id} is not a message of this run`, { cursor: id });
    return i;
  };
  if (q.after !== undefined) list = list.slice(at(q.after) + 1);
  if (q.before !== undefined) {
    list = list.slice(0, at(q.before));
    return list.slice(Math.max(0, list.length - q.limit));
  }
  return list.slice(0, q.limit);
}

function visible(run: Run, messages: AssembledMessage[]): AssembledMessage[] {
  const types = run.request_config?.include_return_message_types;
  if (!types) return messages;
  const allowed = new Set<string>(types);
  return messages.filter((m) => allowed.has(m.message_type));
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
      const run = await store.require(req.params.run_id);
      const messages = visible(run, assembleMessages(await allEntries(store, run.id)));
      return pageMessages(messages, req.query);
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
        description: 'A new delivery with a full retry schedule; 400 if the run has no callback_url, 409 if it has not ended.',
        tags: ['callbacks'],
        params: RunIdParams,
        response: { 202: RunDoc, ...errors },
      },
    },
    async (req, reply) => reply.code(202).send(await runhook.retryCallback(req.params.run_id)),
  );
}
