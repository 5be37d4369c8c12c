// `runhook worker [--only runs|callbacks]`: the workers, without the API. Start as many as you like.
import { parseArgs } from 'node:util';
import { runParts } from './run.ts';

const { values } = parseArgs({ args: process.argv.slice(2).filter((a) => a !== 'worker'), options: { only: { type: 'string' } }, strict: false });
const only = values.only;
if (only !== undefined && only !== 'runs' && only !== 'callbacks') {
  console.error(`--only must be "runs" or "callbacks", not "${String(only)}"`);
  process.exit(2);
}
await runParts(only ? [only] : ['runs', 'callbacks']);
