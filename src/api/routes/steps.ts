import { z } from 'zod';
import { InvalidInputError, RunNotFoundError, StepNotFoundError } from '../../errors.ts';
import { MAX_LIST_LIMIT, SortOrder } from '../../runs/schema.ts';
import { Step, StepId, StepMetrics, stepMetricsOf, stepOf, type StoredStep } from '../../runs/steps.ts';
import { ErrorBody, RunIdParams } from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };

const StepDoc = Step.meta({ id: 'Step', description: "One model call of a run, as Letta's Step" });
const StepMetricsDoc = StepMetrics.meta({ id: 'StepMetrics', description: "A step's timings, as Letta's StepMetrics" });
const StepIdParams = z.object({ step_id: StepId.describe('The step id, step-<uuid>') });

/** GET /v1/runs/{run_id}/steps: paged by step ids as the list of runs pages by run ids (newest first). */
export const StepListParams = z.object({
  before: StepId.optional().describe('Steps that come before this step id in the requested order'),
  after: StepId.optional().describe('Steps that come after this step id in the requested order'),
  limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(50),
  order: SortOrder.default('desc').describe('Default desc: the last step first'),
  order_by: z.literal('created_at').optional(),
});

/** One page of a run's steps (recorded in order) by step-id cursors, as the run list pages. */
export function pageSteps(steps: StoredStep[], q: z.output<typeof StepListParams>): StoredStep[] {
  const ordered = q.order === 'desc' ? [...steps].reverse() : steps;
  const at = (id: string) => {
    const i = ordered.findIndex((s) => s.id === id);
    if (i < 0) throw new InvalidInputError(`cursor ${id} is not a step of this run`, { cursor: id });
    return i;
  };
  const start = q.after === undefined ? 0 : at(q.after) + 1;
  const end = q.before === undefined ? ordered.length : at(q.before);
  return ordered.slice(start, Math.max(start, end)).slice(0, q.limit);
}

/** Letta's steps: a run's list, one step, a step's metrics. */
export function stepRoutes(app: ApiInstance, { runhook }: ApiDeps): void {
  const { store } = runhook;

  app.get(
    '/runs/:run_id/steps',
    {
      schema: {
        summary: "List a run's steps",
        description: 'One step per model call, as Letta records them; a plain array, paged with `after`/`before` step ids.',
        tags: ['steps'],
        params: RunIdParams,
        querystring: StepListParams,
        response: { 200: z.array(StepDoc), ...errors },
      },
    },
    async (req) => {
      const steps = await store.steps(req.params.run_id);
      if (!steps) throw new RunNotFoundError(req.params.run_id);
      return pageSteps(steps, req.query).map(stepOf);
    },
  );

  const requireStep = async (id: string): Promise<StoredStep> => {
    const step = await store.step(id);
    if (!step) throw new StepNotFoundError(id);
    return step;
  };

  app.get(
    '/steps/:step_id',
    {
      schema: { summary: 'A step', tags: ['steps'], params: StepIdParams, response: { 200: StepDoc, ...errors } },
    },
    async (req) => stepOf(await requireStep(req.params.step_id)),
  );

  app.get(
    '/steps/:step_id/metrics',
    {
      schema: { summary: "A step's metrics", tags: ['steps'], params: StepIdParams, response: { 200: StepMetricsDoc, ...errors } },
    },
    async (req) => stepMetricsOf(await requireStep(req.params.step_id)),
  );
}
