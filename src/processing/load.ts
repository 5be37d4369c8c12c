import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Config } from '../config.ts';
import { ProcessorLoadError } from '../errors.ts';
import { echoProcessor } from './processors/echo.ts';
import type { Processor } from './processor.ts';
import { configuredProcessors } from './routing.ts';
import { httpOptions, httpProcessor } from './processors/http.ts';
import { openaiOptions, openaiProcessor } from './processors/openai.ts';

/** The built-in processors, each made from the configuration it needs. */
const BUILT_IN: Record<string, (config: Config) => Processor> = {
  echo: () => echoProcessor,
  openai: (config) => openaiProcessor(openaiOptions(config)),
  http: (config) => {
    if (!config.httpUrl) throw new ProcessorLoadError('processor "http" needs RUNHOOK_HTTP_URL: the URL of your service');
    return httpProcessor(httpOptions(config));
  },
};

/**
 * Every processor this deployment is configured to run (routing.ts), by name: a worker can then take
 * any run, whichever processor it names. A processor that does not load stops start-up.
 */
export async function loadProcessors(config: Config, cwd = process.cwd()): Promise<Map<string, Processor>> {
  const out = new Map<string, Processor>();
  for (const name of configuredProcessors(config)) out.set(name, await loadProcessor(name, config, cwd));
  return out;
}

/** A processor by name: a built-in name, a file path, or a package name. */
export async function loadProcessor(name: string, config: Config, cwd = process.cwd()): Promise<Processor> {
  const builtIn = BUILT_IN[name];
  if (builtIn) return builtIn(config);
  const isPath = name.startsWith('.') || isAbsolute(name);
  const specifier = isPath ? pathToFileURL(resolve(cwd, name)).href : name;
  let mod: { default?: unknown };
  try {
    mod = (await import(specifier)) as { default?: unknown };
  } catch (err) {
    throw new ProcessorLoadError(`cannot load processor "${name}": ${(err as Error).message}`);
  }
  const p = mod.default as Partial<Processor> | undefined;
  if (!p || typeof p.run !== 'function') {
    throw new ProcessorLoadError(`processor "${name}" must default-export defineProcessor(...)`);
  }
  return p as Processor;
}
