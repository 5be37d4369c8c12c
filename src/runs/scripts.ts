import { readFileSync } from 'node:fs';
import type { RedisClient } from '../queue/connection.ts';
import { MOVES_LUA } from './status.ts';

/**
 * The run store's Lua scripts, defined as ioredis commands (EVALSHA, falling back to EVAL after a Redis
 * restart empties the script cache). Each script gets the shared helpers of _lib.lua prepended.
 */
// Flow control's gate and hand-over (flow/lua/flow.lua) ride in the scripts that create, end and delete runs.
const lib = `${readLua('_lib').replace('__MOVES__', MOVES_LUA)}\n${readFileSync(new URL('../flow/lua/flow.lua', import.meta.url), 'utf8')}`;

const SCRIPTS = {
  createRun: { file: 'create-run', keys: 1 },
  startRun: { file: 'start-run', keys: 2 },
  emitMessage: { file: 'emit-message', keys: 2 },
  transitionRun: { file: 'transition-run', keys: 3 },
  deleteRun: { file: 'delete-run', keys: 3 },
  listRuns: { file: 'list-runs', keys: 1 },
  foldLog: { file: 'fold-log', keys: 4 },
  recordCallbackAttempt: { file: 'record-callback-attempt', keys: 4 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/** A script of another room (flow/) with the run store's helpers prepended, as the store's own get them. */
export function withRunLib(lua: string): string {
  return `${lib}\n${lua}`;
}

function readLua(name: string): string {
  return readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
}

const sources = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, s]) => [name, { numberOfKeys: s.keys, lua: `${lib}\n${readLua(s.file)}` }]),
) as Record<ScriptName, { numberOfKeys: number; lua: string }>;

/** Buffers go to Redis as they are (a compressed log is binary). */
type Arg = string | number | Buffer;
export type ScriptRunner = Record<ScriptName, (...args: Arg[]) => Promise<unknown>>;

/** Defines the scripts on a connection (once per connection) and returns typed callers. */
export function runScripts(redis: RedisClient): ScriptRunner {
  const r = redis as RedisClient & Record<string, unknown>;
  for (const [name, def] of Object.entries(sources)) {
    if (typeof r[`rh_${name}`] !== 'function') redis.defineCommand(`rh_${name}`, def);
  }
  return Object.fromEntries(
    Object.keys(sources).map((name) => {
      const fn = r[`rh_${name}`] as (...args: Arg[]) => Promise<unknown>;
      return [name, (...args: Arg[]) => fn.apply(redis, args)];
    }),
  ) as ScriptRunner;
}
