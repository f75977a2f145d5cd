/**
 * LB process entry: validated env → pino logger → store → app → listen. On SIGTERM (ECS stopping the
 * task, the local supervisor, Ctrl-C) it stops accepting, closes open relays with 1001 so clients
 * rejoin at once, waits for in-flight requests, flushes the log and exits; a hung close is cut short.
 */
import { Store } from '../store';
import { buildApp } from './app';
import { EnvironmentError } from '../protocol/environment';
import { readLbEnv } from './env';
import { createLbLogger } from './logging';

/** Below ECS's default 30 s stop timeout, so we exit on our own terms rather than by SIGKILL. */
const SHUTDOWN_TIMEOUT_MS = 20_000;
/** The local emulator accepts any credentials; the SDK still wants some. */
const EMULATOR_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

async function main(): Promise<void> {
  let env;
  try {
    env = readLbEnv(process.env);
  } catch (err) {
    if (!(err instanceof EnvironmentError)) throw err;
    console.error(`LB: ${err.message}`);
    process.exit(2);
  }
  const { config } = env;
  const logger = createLbLogger({ level: env.logLevel, region: config.region });
  const store = new Store({
    region: config.region,
    tableName: env.tableName,
    endpoint: env.dynamoEndpoint,
    credentials: env.dynamoEndpoint && !process.env.AWS_ACCESS_KEY_ID ? EMULATOR_CREDENTIALS : undefined,
  });
  const app = await buildApp({ store, config, logger });

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('graceful shutdown timed out; exiting');
      logger.flush();
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    let code = 0;
    try {
      await app.close();
    } catch (err) {
      logger.error({ err }, 'error while closing');
      code = 1;
    }
    store.close();
    logger.info('stopped');
    logger.flush();
    process.exit(code);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    logger.flush();
    process.exit(1);
  });

  await app.listen({ host: env.host, port: env.port });
  logger.info({ host: env.host, port: env.port, publicApiUrl: config.publicApiUrl }, 'LB listening');
}

void main().catch((err: unknown) => {
  console.error('LB failed to start:', err);
  process.exit(1);
});
