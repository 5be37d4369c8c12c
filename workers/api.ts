// `runhook api`: the HTTP API alone.
import { runParts } from './run.ts';

await runParts(['api']);
