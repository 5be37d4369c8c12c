// `npm start`: the API, the run worker and the callback worker in one process.
import { runParts } from './run.ts';

await runParts(['api', 'runs', 'callbacks']);
