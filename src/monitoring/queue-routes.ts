import { QueueNotFoundError } from '../errors.ts';
import type { Runhook } from '../runhook.ts';
import { ErrorBody } from '../api/schemas.ts';
import type { ApiInstance } from '../api/types.ts';
import { queuesOf, readQueuesReport } from './queue-state.ts';
import { QUEUE_NAMES, QueueNameParams, QueuesReport, type QueueName } from './schemas.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };

function isQueueName(name: string): name is QueueName {
  return (QUEUE_NAMES as readonly string[]).includes(name);
}

/**
 * GET /v1/queues and pausing/resuming a queue. A paused queue keeps its jobs and takes new ones, but no
 * worker starts a job from it until it is resumed (BullMQ's global pause: every worker, every process).
 */
export function queueRoutes(app: ApiInstance, runhook: Runhook): void {
  app.get(
    '/queues',
    {
      schema: {
        summary: 'State of the runs and callbacks queues',
        description: 'Jobs by state, workers, pause state, completed and failed per minute over the last hour, the oldest waiting job, runs by status and callbacks by state.',
        tags: ['queues'],
        response: { 200: QueuesReport, ...errors },
      },
    },
    async () => readQueuesReport(runhook),
  );

  for (const action of ['pause', 'resume'] as const) {
    app.post(
      `/queues/:name/${action}`,
      {
        schema: {
          summary: action === 'pause' ? 'Pause a queue: no worker starts a job from it' : 'Resume a paused queue',
          tags: ['queues'],
          params: QueueNameParams,
          response: { 200: QueuesReport, ...errors },
        },
      },
      async (req) => {
        const { name } = req.params;
        if (!isQueueName(name)) throw new QueueNotFoundError(name);
        const queue = queuesOf(runhook)[name];
        await (action === 'pause' ? queue.pause() : queue.resume());
        req.log.info({ queue: name }, action === 'pause' ? 'queue paused' : 'queue resumed');
        return readQueuesReport(runhook);
      },
    );
  }
}
