/**
 * Start and stop of one media server process, apart from signal handling (server.ts) so the order of
 * things is in one place:
 *
 *   start:  engine → workers → signaling listener → registration (placement only sees a server that
 *           can already take joins).
 *   drain:  mark draining (joins refused, table status `draining` so placement skips it) → wait until
 *           the last room closes or the drain timeout → rooms still open are told to rejoin → stop.
 *   stop:   close rooms and workers → close the listener → remove the table item.
 */
import type { FastifyInstance } from 'fastify';
import { Store } from '../store';
import type { MediaServerConfig } from './config';
import { describeEngine, type MediaEngine } from './engine';
import { LoadMeter } from './LoadMeter';
import type { Logger } from './logger';
import { MediaServer } from './MediaServer';
import { MediaMetrics } from './MediaMetrics';
import { Cascade } from './Cascade';
import { Registrar } from './Registrar';
import { buildSignalingApp } from './signaling/app';

export interface RunningMediaServer {
  readonly server: MediaServer;
  readonly registrar: Registrar;
  readonly app: FastifyInstance;
  /** Resolves when the server has stopped (after a drain or a stop). */
  readonly stopped: Promise<void>;
  drain(): Promise<void>;
  stop(reason: string): Promise<void>;
}

export interface StartMediaServerOptions {
  /** The process's whole configuration: this is where it is split into what each part needs. */
  readonly config: MediaServerConfig;
  readonly engine: MediaEngine;
  readonly logger: Logger;
}

export async function startMediaServer({
  config,
  engine,
  logger,
}: StartMediaServerOptions): Promise<RunningMediaServer> {
  logger.info({ engine: describeEngine(engine), workerBin: engine.workerBin }, 'media engine');
  const store = new Store({
    region: config.region,
    tableName: config.tableName,
    endpoint: config.dynamoEndpoint,
  });
  const server = await MediaServer.create({
    serverId: config.serverId,
    region: config.region,
    engine,
    workers: {
      numWorkers: config.numWorkers,
      logLevel: config.workerLogLevel,
      rtcMinPort: config.rtcMinPort,
      rtcMaxPort: config.rtcMaxPort,
      listenIp: config.rtcListenIp,
      announcedIp: config.publicIp,
      privateAnnouncedIp: config.privateIp,
    },
    peerLimits: config.peer,
    roomLimits: config.room,
    store,
    logger,
  });
  const metrics = new MediaMetrics({ region: config.region, server: config.serverId });
  metrics.observe(server, config.capacity);
  const cascade = new Cascade({
    serverId: config.serverId,
    region: config.region,
    store,
    keys: config.mediaTokenKeys,
    server,
    // 3.8 pipes bind from their worker's RTC range; 3.27 pipes from this range (the same ports).
    portRange: { min: config.rtcMinPort, max: config.rtcMaxPort },
    capacity: config.capacity,
    logger,
  });
  const app = await buildSignalingApp({
    cascade,
    serverId: config.serverId,
    region: config.region,
    capacity: config.capacity,
    mediaTokenKeys: config.mediaTokenKeys,
    signalingLimits: config.signaling,
    debugEndpoints: config.debugEndpoints,
    server,
    metrics,
    logger,
    engine: describeEngine(engine),
  });
  const registrar = new Registrar({
    serverId: config.serverId,
    region: config.region,
    privateEndpoint: config.privateEndpoint,
    publicIp: config.publicIp,
    capacity: config.capacity,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    roomCheckIntervalMs: config.roomCheckIntervalMs,
    roomRefreshIntervalMs: config.roomRefreshIntervalMs,
    server,
    store,
    meter: new LoadMeter({ pool: server.pool, capacity: config.capacity }),
    logger,
  });
  try {
    await app.listen({ host: config.listenHost, port: config.signalingPort });
    await registrar.start();
    cascade.start();
  } catch (err) {
    server.close();
    await app.close();
    store.close();
    throw err;
  }
  logger.info(
    {
      signaling: `${config.listenHost}:${config.signalingPort}`,
      workers: config.numWorkers,
      rtcPorts: `${config.rtcMinPort}-${config.rtcMaxPort}`,
    },
    'media server ready',
  );

  let stopping: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));

  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason, rooms: server.rooms.size }, 'media server stopping');
      cascade.stop();
      server.close();
      await app.close();
      try {
        await registrar.stop();
      } catch (err) {
        logger.warn(
          { err: (err as Error).message },
          'cannot remove the server item; liveness will expire it',
        );
      }
      store.close();
      resolveStopped();
    })();
    return stopping;
  };

  server.on('fatal', (err) => {
    logger.error({ err: err.message }, 'media server cannot go on');
    void stop('fatal');
  });

  const drain = async (): Promise<void> => {
    if (server.status === 'draining') return stopping ?? stopped;
    server.startDraining();
    await registrar.heartbeat();
    const idle = new Promise<'idle'>((resolve) => {
      if (server.rooms.size === 0) resolve('idle');
      else server.once('idle', () => resolve('idle'));
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), config.drainTimeoutMs);
    });
    const outcome = await Promise.race([idle, timeout, stopped.then(() => 'stopped' as const)]);
    clearTimeout(timer);
    if (outcome === 'timeout')
      logger.warn({ rooms: server.rooms.size }, 'drain timeout: remaining peers rejoin elsewhere');
    await stop(outcome === 'idle' ? 'drained' : 'drain timeout');
  };

  return { server, registrar, app, stopped, drain, stop };
}
