/**
 * One mediasoup worker per core. A worker that dies takes its routers with it (mediasoup closes them);
 * the pool reports the death so the server can send that worker's rooms elsewhere, then re-creates the
 * worker on the same port slice. A worker that cannot be re-created after a few attempts leaves the
 * server unable to serve its share: that is fatal for the process, and the fleet replaces the instance.
 */
import { EventEmitter } from 'node:events';
import type { EngineWorker, MediaEngine, WorkerLogLevel } from './engine';
import type { Logger } from './logger';

/** Re-creation backoff: the first retry is quick (a crash is usually a one-off), later ones spread out. */
const RESPAWN_DELAYS_MS = [100, 1_000, 3_000, 10_000, 30_000];

/** What the workers are: how many, their log level, the RTC ports they share, their addresses. */
export interface WorkerPoolSettings {
  /** One per core. */
  readonly numWorkers: number;
  readonly logLevel: WorkerLogLevel;
  /** The RTC port range, split evenly between the workers (a re-created worker keeps its slice). */
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
  /** Address mediasoup binds for media. */
  readonly listenIp: string;
  /** Address ICE candidates announce: where clients send media. */
  readonly announcedIp: string;
  /** A second announced address, for the region's TURN relay (MediaServerConfig.privateIp). @default none */
  readonly privateAnnouncedIp?: string;
}

export interface WorkerPoolOptions extends WorkerPoolSettings {
  readonly engine: MediaEngine;
  readonly logger: Logger;
}

type PoolEvents = {
  /** A worker died; its routers are already closed. */
  workerDied: [index: number, error: Error];
  workerRespawned: [worker: EngineWorker];
  /** A worker could not be re-created: the server cannot serve its share any more. */
  fatal: [error: Error];
};

export class WorkerPool extends EventEmitter<PoolEvents> {
  private readonly engine: MediaEngine;
  private readonly settings: WorkerPoolSettings;
  private readonly logger: Logger;
  private readonly workers: (EngineWorker | undefined)[];
  private readonly portsPerWorker: number;
  private readonly respawnTimers = new Set<NodeJS.Timeout>();
  private closed = false;
  private restarts = 0;

  static async create(options: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    try {
      for (let index = 0; index < options.numWorkers; index++) await pool.spawn(index);
    } catch (err) {
      pool.close();
      throw err;
    }
    return pool;
  }

  private constructor({ engine, logger, ...settings }: WorkerPoolOptions) {
    super();
    this.engine = engine;
    this.settings = settings;
    this.logger = logger;
    this.workers = new Array<EngineWorker | undefined>(settings.numWorkers).fill(undefined);
    this.portsPerWorker = engine.portsPerWorker(
      settings.rtcMaxPort - settings.rtcMinPort + 1,
      settings.numWorkers,
    );
  }

  /** Live workers (a dead one is absent until re-created). */
  get alive(): EngineWorker[] {
    return this.workers.filter((w): w is EngineWorker => w !== undefined);
  }

  get restartCount(): number {
    return this.restarts;
  }

  /** The live worker with the smallest load as measured by `loadOf`; ties go to the lowest index. */
  leastLoaded(loadOf: (index: number) => number): EngineWorker | undefined {
    let best: EngineWorker | undefined;
    let bestLoad = Infinity;
    for (const worker of this.alive) {
      const load = loadOf(worker.index);
      if (load < bestLoad) {
        best = worker;
        bestLoad = load;
      }
    }
    return best;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.respawnTimers) clearTimeout(timer);
    this.respawnTimers.clear();
    for (const worker of this.alive) worker.close();
    this.workers.fill(undefined);
  }

  private async spawn(index: number): Promise<EngineWorker> {
    const rtcMinPort = this.settings.rtcMinPort + index * this.portsPerWorker;
    const worker = await this.engine.createWorker({
      index,
      logLevel: this.settings.logLevel,
      rtcMinPort,
      rtcMaxPort: rtcMinPort + this.portsPerWorker - 1,
      listenIp: this.settings.listenIp,
      announcedIp: this.settings.announcedIp,
      privateAnnouncedIp: this.settings.privateAnnouncedIp,
    });
    if (this.closed) {
      worker.close();
      throw new Error('worker pool closed while a worker started');
    }
    this.workers[index] = worker;
    worker.worker.on('died', (error) => this.onDied(worker, error));
    this.logger.info(
      { worker: index, pid: worker.pid, ports: `${rtcMinPort}-${rtcMinPort + this.portsPerWorker - 1}` },
      'mediasoup worker started',
    );
    return worker;
  }

  private onDied(worker: EngineWorker, error: Error): void {
    if (this.workers[worker.index] !== worker) return;
    this.workers[worker.index] = undefined;
    this.logger.error({ worker: worker.index, pid: worker.pid, err: error.message }, 'mediasoup worker died');
    this.emit('workerDied', worker.index, error);
    this.scheduleRespawn(worker.index, 0);
  }

  private scheduleRespawn(index: number, attempt: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer);
      this.spawn(index).then(
        (worker) => {
          this.restarts++;
          this.logger.warn(
            { worker: index, pid: worker.pid, attempt: attempt + 1 },
            'mediasoup worker re-created',
          );
          this.emit('workerRespawned', worker);
        },
        (err: Error) => {
          if (this.closed) return;
          this.logger.error(
            { worker: index, attempt: attempt + 1, err: err.message },
            'cannot re-create mediasoup worker',
          );
          if (attempt + 1 < RESPAWN_DELAYS_MS.length) this.scheduleRespawn(index, attempt + 1);
          else this.emit('fatal', new Error(`worker ${index} could not be re-created: ${err.message}`));
        },
      );
    }, RESPAWN_DELAYS_MS[attempt]);
    this.respawnTimers.add(timer);
  }
}
