/**
 * Structured JSON logs (pino). Objects log through child loggers that carry their context
 * (`room`, `peer`, `worker`), so one call's lines can be followed across the server.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; serverId: string; region: string }): Logger {
  return pino({
    level: opts.level ?? 'info',
    base: { service: 'media', server: opts.serverId, region: opts.region },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
