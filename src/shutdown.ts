import type { Logger } from './logger.ts';

/**
 * SIGTERM and SIGINT run `close` once and exit 0 when it is done (1 if it throws). A second signal
 * while closing exits at once.
 */
export function closeOnSignals(close: () => Promise<void>, log: Logger): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    closing = true;
    log.info({ signal }, 'shutting down');
    close().then(
      () => {
        // Written before exit, as every line is (see logger.ts): the last thing an operator reads.
        log.info({ signal }, 'stopped');
        process.exit(0);
      },
      (err: Error) => {
        log.error({ err: err.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
