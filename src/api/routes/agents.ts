import { IllegalTransitionError, RunNotFoundError } from '../../errors.ts';
import { LettaRequestConfig, MAX_LIST_LIMIT, type RunCreate } from '../../runs/schema.ts';
import type { Runhook } from '../../runhook.ts';
import { createRunFor } from '../create-run.ts';
import {
  AgentIdParams,
  CancelAgentRunsRequest,
  CancelAgentRunsResponse,
  ErrorBody,
  IdempotencyHeaders,
  LettaAsyncRequest,
  RunDoc,
} from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };

/**
 * Letta's async request as a run: its messages (or `input`, Letta's shorthand for one user message)
 * become the processor's input, its request-config fields the run's request_config, as Letta's
 * send_message_async does.
 */
export function lettaAsyncToRun(agentId: string, b: LettaAsyncRequest): RunCreate {
  const messages = b.messages?.length ? b.messages : [{ role: 'user', content: b.input }];
  return {
    agent_id: agentId,
    input: {
      messages,
      ...(b.max_steps !== undefined && { max_steps: b.max_steps }),
      ...(b.override_model && { override_model: b.override_model }),
    },
    callback_url: b.callback_url ?? null,
    background: true,
    metadata: { run_type: 'send_message_async' },
    request_config: LettaRequestConfig.parse({
      use_assistant_message: b.use_assistant_message,
      assistant_message_tool_name: b.assistant_message_tool_name,
      assistant_message_tool_kwarg: b.assistant_message_tool_kwarg,
      include_return_message_types: b.include_return_message_types ?? null,
    }),
  };
}

/** Letta's answer per run: "cancelled", or why not. */
async function cancelOne(runhook: Runhook, agentId: string, runId: string): Promise<string> {
  try {
    const run = await runhook.getRun(runId);
    // Another agent's run is not this agent's to cancel, and saying more would tell what exists.
    if (run.agent_id !== agentId) return 'not_found';
    await runhook.cancelRun(runId);
    return 'cancelled';
  } catch (err) {
    if (err instanceof RunNotFoundError) return 'not_found';
    if (err instanceof IllegalTransitionError) return `already_${err.from}`;
    throw err;
  }
}

/** Letta's agent-scoped run routes: start a background run, cancel an agent's runs. */
export function agentRoutes(app: ApiInstance, { runhook }: ApiDeps): void {
  app.post(
    '/agents/:agent_id/messages/async',
    {
      schema: {
        summary: 'Start a background run (Letta)',
        description: "Letta's create_agent_message_async: answers 200 with the Run.",
        tags: ['agents'],
        params: AgentIdParams,
        headers: IdempotencyHeaders,
        body: LettaAsyncRequest,
        response: { 200: RunDoc, ...errors },
      },
    },
    async (req, reply) => {
      const body = lettaAsyncToRun(req.params.agent_id, req.body);
      return reply.send(await createRunFor(runhook, req, reply, body, 'POST /v1/agents/messages/async'));
    },
  );

  app.post(
    '/agents/:agent_id/messages/cancel',
    {
      schema: {
        summary: "Cancel an agent's runs (Letta)",
        description: 'The runs named in run_ids, or, without them, every created or running run of the agent.',
        tags: ['agents'],
        params: AgentIdParams,
        body: CancelAgentRunsRequest,
        response: { 200: CancelAgentRunsResponse, ...errors },
      },
    },
    async (req) => {
      const agentId = req.params.agent_id;
      let ids = req.body?.run_ids ?? [];
      if (ids.length === 0) {
        const active = await runhook.listRuns({ agent_ids: [agentId], statuses: ['created', 'running'], limit: MAX_LIST_LIMIT });
        ids = active.map((r) => r.id);
      }
      const outcomes = await Promise.all(ids.map((id) => cancelOne(runhook, agentId, id)));
      return Object.fromEntries(ids.map((id, i) => [id, outcomes[i]!]));
    },
  );
}
