/**
 * Media server process entry (see env.ts for its environment).
 *
 * SIGTERM drains: joins are refused, calls go on until the last room empties or DRAIN_TIMEOUT_MS, then
 * the process removes its table item and exits 0. SIGINT, or a second SIGTERM, stops at once (peers are
 * told to rejoin elsewhere). A worker that cannot be re-created exits non-zero so the fleet replaces us.
 */
import { StoreError } from '../store';
import { EnvironmentError } from '../protocol/environment';
import { readMediaServerConfig } from './env';
import { MediaEngineUnavailableError, loadMediaEngine } from './engine';
import { startMediaServer } from './lifecycle';
import { createLogger } from './logger';

async function main(): Promise<void> {
  let config;
  let engine;
  try {
    config = readMediaServerConfig(process.env);
    engine = loadMediaEngine();
  } catch (err) {
    if (err instanceof EnvironmentError || err instanceof MediaEngineUnavailableError) {
      console.error(`media server: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({
    level: config.logLevel,
    serverId: config.serverId,
    region: config.region,
  });
  const running = await startMediaServer({ config, engine, logger });
  let fatal = false;
  running.server.on('fatal', () => (fatal = true));

  let draining = false;
  process.on('SIGTERM', () => {
    if (draining) {
      void running.stop('second SIGTERM');
      return;
    }
    draining = true;
    logger.info({ drainTimeoutMs: config.drainTimeoutMs }, 'SIGTERM: draining');
    running.drain().catch((err: unknown) => {
      logger.error({ err }, 'drain failed');
      process.exit(1);
    });
  });
  process.on('SIGINT', () => void running.stop('SIGINT'));

  await running.stopped;
  logger.info('media server stopped');
  logger.flush();
  process.exit(fatal ? 1 : 0);
}

main().catch((err: unknown) => {
  // The table being unreachable at start is an environment problem: its message says which call failed.
  console.error('media server failed to start:', err instanceof StoreError ? err.message : err);
  process.exit(1);
});
