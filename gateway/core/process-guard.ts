// The last line of defence of a serving process: an error that escaped every handler is a bug, but it is
// one request's bug, and ending the process would reset every other client's connection with it. So it is
// logged and counted (portcullis_internal_errors_total, alert on any increase) and the process serves on.
// PORTCULLIS_EXIT_ON_INTERNAL_ERROR=1 makes it exit instead: the test suite sets it, so that a gateway it
// starts fails the test that provoked such an error rather than hiding it.
import { LOG_EVENTS, type Logger } from './log.js';
import type { Metrics } from './metrics.js';

export const EXIT_ON_INTERNAL_ERROR = 'PORTCULLIS_EXIT_ON_INTERNAL_ERROR';

/** Exit code of a process that ended on an internal error (EX_SOFTWARE). */
export const INTERNAL_ERROR_EXIT = 70;

export function installProcessGuard(logger: Logger, metrics: Metrics): void {
  const report = (kind: string) => (err: unknown) => {
    logger.error({ event: LOG_EVENTS.INTERNAL_ERROR, kind, err }, 'internal error: an error escaped every handler');
    metrics.internalError(kind);
    if (process.env[EXIT_ON_INTERNAL_ERROR] === '1') {
      logger.flush();
      process.exit(INTERNAL_ERROR_EXIT);
    }
  };
  process.on('uncaughtException', report('uncaught_exception'));
  process.on('unhandledRejection', report('unhandled_rejection'));
}
