import type { Config } from '../config.ts';
import { UnknownProcessorError } from '../errors.ts';

/** The processors runhook ships, by the names a request, a route or RUNHOOK_PROCESSOR uses. */
export const BUILT_IN_PROCESSORS = ['echo', 'openai', 'http'] as const;

/**
 * Every processor name this deployment can run: the built-ins (`http` once RUNHOOK_HTTP_URL is set),
 * RUNHOOK_PROCESSOR and every route's target (module paths and packages among them). Every run worker
 * loads all of them, so any worker can take any run; a request may name only these (a request never
 * makes a worker import a module).
 */
export function configuredProcessors(config: Config): string[] {
  const builtIn = BUILT_IN_PROCESSORS.filter((n) => n !== 'http' || config.httpUrl !== undefined);
  return [...new Set<string>([...builtIn, config.processor, ...config.routes.map((r) => r.processor)])];
}

const globs = new Map<string, RegExp>();

/** `*` matches any characters (none included); everything else matches itself. */
export function globMatches(glob: string, value: string): boolean {
  let re = globs.get(glob);
  if (!re) {
    re = new RegExp(`^${glob.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
    globs.set(glob, re);
  }
  return re.test(value);
}

/**
 * The processor of a new run (CONTRACT section 7): the one the request names (an unknown name is a
 * 400), else the first RUNHOOK_ROUTES rule whose agent glob matches, else RUNHOOK_PROCESSOR.
 */
export function chooseProcessor(config: Config, agentId: string, requested?: string | null): string {
  if (requested != null) {
    const known = configuredProcessors(config);
    if (!known.includes(requested)) throw new UnknownProcessorError(requested, known);
    return requested;
  }
  return config.routes.find((r) => globMatches(r.agent, agentId))?.processor ?? config.processor;
}
