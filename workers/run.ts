import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { startService, type Part } from '../src/service.ts';
import { closeOnSignals } from '../src/shutdown.ts';

/** Reads the config, starts the given parts, and stops them on SIGTERM/SIGINT. */
export async function runParts(parts: Part[]): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, undefined, config.logFormat);
  const service = await startService(config, log, new Set(parts));
  closeOnSignals(() => service.close(), log);
  log.info({ parts }, 'runhook is up');
}
