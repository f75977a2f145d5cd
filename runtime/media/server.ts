/**
 * Media server process entry (see env.ts for its environment).
 *
 * SIGTERM drains: joins are refused, calls go on until the last room empties or DRAIN_TIMEOUT_MS, then
 * the process removes its table item and exits 0. SIGINT, or a second SIGTERM, stops at once (peers are
 * told to rejoin elsewhere). A worker that cannot be re-created exits non-zero so the fleet replaces us.
 */
import { ConfigError, readMediaServerConfig } from './env';
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
    if (err instanceof ConfigError || err instanceof MediaEngineUnavailableError) {
      console.error(`media server: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({
    level: process.env.LOG_LEVEL,
    serverId: config.serverId,
    region: config.region,
  });
  const running = await startMediaServer(config, engine, logger);
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
    void running.drain();
  });
  process.on('SIGINT', () => void running.stop('SIGINT'));

  await running.stopped;
  logger.info('media server stopped');
  logger.flush();
  process.exit(fatal ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error('media server failed to start:', err);
  process.exit(1);
});
