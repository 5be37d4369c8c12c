import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Config } from '../config.ts';
import { ProcessorLoadError } from '../errors.ts';
import { echoProcessor } from './echo.ts';
import type { Processor } from './processor.ts';
import { openaiOptions, openaiProcessor } from './processors/openai.ts';

/** The built-in processors, each made from the configuration it needs. */
const BUILT_IN: Record<string, (config: Config) => Processor> = {
  echo: () => echoProcessor,
  openai: (config) => openaiProcessor(openaiOptions(config)),
};

/** The processor named by RUNHOOK_PROCESSOR: a built-in name, a file path, or a package name. */
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
