import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { startService, type Part } from '../src/service.ts';
import { closeOnSignals } from '../src/shutdown.ts';

/** Reads the config, starts the given parts, and stops them on SIGTERM/SIGINT. */
export async function runParts(parts: Part[]): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, undefined, config.logFormat);
  const starting = startService(config, log, new Set(parts));
  // Listening before the parts start: a signal that arrives while the later parts are still starting
  // (the run worker already takes jobs) waits for them, then drains as usual, instead of killing the
  // process with its runs mid-flight.
  closeOnSignals(async () => (await starting).close(), log);
  await starting;
  log.info({ parts }, 'runhook is up');
}
