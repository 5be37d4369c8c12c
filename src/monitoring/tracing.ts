import { readFileSync } from 'node:fs';
import type { Telemetry } from 'bullmq';
import { BullMQOtel } from 'bullmq-otel';
import type { Config } from '../config.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

let otel: BullMQOtel | undefined;

/**
 * BullMQ's telemetry for every queue and worker when RUNHOOK_TRACING is on; undefined (BullMQ does no
 * tracing work at all) when off, the default. runhook ships no SDK and no exporter: spans go to
 * whatever OpenTelemetry SDK the user registered (e.g. `node --import ./otel.mjs`), and without one
 * @opentelemetry/api hands out no-op spans. The job carries its producer's context, so a run's add, its
 * processing and its callback delivery (added while the run is being processed) land in one trace.
 */
export function telemetry(config: Pick<Config, 'tracing'>): Telemetry | undefined {
  if (!config.tracing) return undefined;
  otel ??= new BullMQOtel({ tracerName: 'runhook', version: VERSION });
  return otel;
}
