/**
 * One leg's side of the pipe to one other leg of the same room: a PipeTransport on this leg's router
 * (SRTP and RTX on), the pipe consumers that send this leg's producers to the remote, the pipe producers
 * that bring the remote's producers here, and a keepalive stream each way that tells whether the remote
 * is still there.
 *
 *   - Setup is an exchange of `describe()`s over the control channel; each side `connect()`s to the
 *     other's. One transport carries both directions.
 *   - A producer is piped out once per link (`pipeOut` returns the same parameters again) and piped in
 *     once (`pipeIn` returns the existing producer): a retried or replayed message, or a partition that
 *     heals, never makes a second pipe consumer or producer. The pipe producer keeps the origin's id.
 *   - The link reports what the remote must hear (`pipeOutPaused`, `pipeOutClosed`) and what this leg's
 *     peers must hear (`pipeInClosed`); the owner carries them. It never talks to the remote itself.
 *   - `closeProducer` is final for that id on this link: a late `pipeIn` or `pipeOut` of it is refused.
 *   - `silent` means nothing came from the remote for the silence window, paused media or not (the
 *     keepalive runs regardless); the owner decides whether that closes the link.
 *   - `close()` is idempotent and cascades: the transport closes its pipe consumers and producers, and
 *     mediasoup closes this leg's consumers of those producers.
 */
import { EventEmitter } from 'node:events';
import type { z } from 'zod';
import {
  pipeEndpoint,
  type EngineWorker,
  type MsPipeConsumer,
  type MsPipeTransport,
  type MsProducer,
  type MsRouter,
  type PortRange,
  type SrtpParameters,
} from './engine';
import { KEY_FRAME_REQUEST_DELAY_MS } from './codecs';
import type { Logger } from './logger';
import {
  pipeLinkDescriptionSchema,
  pipedProducerSchema,
  type PipeLinkDescription,
  type PipedProducer,
} from '../protocol/pipes';
import { KEEPALIVE_INTERVAL_MS, PipeKeepalive } from './PipeKeepalive';
import { PipeSilenceDetector, type SilenceOptions } from './PipeSilenceDetector';

/**
 * `closed`: the owner closed it (room closed, remote leg left). `router_closed`: the room's router or
 * its worker went away. `remote_gone`: the owner judged the remote dead (silence, heartbeats).
 * `connect_failed`: the remote's description could not be used; open a new link.
 */
export type PipeLinkCloseReason = 'closed' | 'router_closed' | 'remote_gone' | 'connect_failed';

type PipeLinkEvents = {
  close: [reason: PipeLinkCloseReason];
  /** Nothing arrived from the remote for `silentMs` (the silence window, or the setup grace). */
  silent: [silentMs: number];
  /** Packets arrive again after `silent`. */
  heard: [];
  /** A producer piped out paused or resumed: tell the remote, which calls `setPaused`. */
  pipeOutPaused: [producerId: string, paused: boolean];
  /** A producer piped out closed at its origin: tell the remote, which calls `closeProducer`. */
  pipeOutClosed: [producerId: string];
  /**
   * A pipe producer here closed: this leg's peers lose that producer. `producer_closed`: that one
   * producer ended (the remote said so, or the router went); `link_closed`: the whole link closed
   * with it, so the remote leg is cut off from this one.
   */
  pipeInClosed: [producerId: string, cause: PipeInCloseCause];
  /** `counts` changed. */
  loadChanged: [];
};

export type PipeInCloseCause = 'producer_closed' | 'link_closed';

/** What a link costs its media server, for load accounting. The keepalive streams are not counted. */
export interface PipeLinkCounts {
  readonly pipeTransports: number;
  readonly pipeConsumers: number;
  readonly pipeProducers: number;
}

/** App data of the producers a link creates on this leg's router. */
export interface PipeProducerAppData extends Record<string, unknown> {
  readonly remoteLeg: string;
  /** The remote's keepalive stream, not a participant's media. */
  readonly keepalive: boolean;
}

export interface PipeLinkOptions {
  readonly worker: EngineWorker;
  /** This leg's router, created on `worker`. */
  readonly router: MsRouter;
  /** Ports the pipe may bind (see PipeTransportSettings). */
  readonly portRange: PortRange;
  /** The remote leg's name (its region), for logs and app data. */
  readonly remoteLeg: string;
  readonly logger: Logger;
  /** @default - a one-second window, checked every 100 ms, five seconds to hear the remote first */
  readonly silence?: SilenceOptions;
}

/**
 * The shortest silence window a link accepts: three keepalive periods, so one or two lost keepalives
 * and ordinary jitter never read as a dead leg.
 */
export const MIN_SILENCE_WINDOW_MS = 3 * KEEPALIVE_INTERVAL_MS;

/** Producer ids a link remembers as closed. Far above what one room creates in a call's lifetime. */
const MAX_REMEMBERED_CLOSED_PRODUCERS = 4_096;

export class PipeLink extends EventEmitter<PipeLinkEvents> {
  private readonly pipeConsumers = new Map<string, MsPipeConsumer>();
  private readonly pipeProducers = new Map<string, MsProducer>();
  private readonly pendingOut = new Map<string, Promise<MsPipeConsumer>>();
  private readonly pendingIn = new Map<string, Promise<MsProducer>>();
  /** Paused state asked for by `setPaused` or a duplicate `pipeIn` while the pipe producer was created. */
  private readonly pausedWhilePending = new Map<string, boolean>();
  /** Paused state last asked of each pipe producer; the calls reach the worker in that order. */
  private readonly requestedPaused = new Map<string, boolean>();
  /** Insertion-ordered, so the oldest is forgotten first. */
  private readonly closedProducerIds = new Set<string>();
  private connection: { readonly remote: PipeLinkDescription; readonly done: Promise<void> } | undefined;
  private remoteKeepalive: MsProducer | undefined;
  private closedFlag = false;

  static async create(options: PipeLinkOptions): Promise<PipeLink> {
    const detector = new PipeSilenceDetector(options.silence);
    if (detector.windowMs < MIN_SILENCE_WINDOW_MS) {
      throw new Error(
        `pipe silence window ${detector.windowMs} ms is shorter than ${MIN_SILENCE_WINDOW_MS} ms ` +
          `(three keepalive periods); lost keepalives would look like a dead leg`,
      );
    }
    const transport = await options.worker.createPipeTransport(options.router, {
      portRange: options.portRange,
    });
    let keepalive: PipeKeepalive | undefined;
    try {
      keepalive = await PipeKeepalive.create(options.router);
      const keepaliveOut = await transport.consume({ producerId: keepalive.producer.id });
      return new PipeLink({
        remoteLeg: options.remoteLeg,
        logger: options.logger,
        transport,
        keepalive,
        keepaliveOut,
        detector,
      });
    } catch (err) {
      keepalive?.close();
      transport.close();
      throw err;
    }
  }

  readonly remoteLeg: string;
  readonly logger: Logger;

  private readonly transport: MsPipeTransport;
  private readonly keepalive: PipeKeepalive;
  private readonly keepaliveOut: MsPipeConsumer;
  private readonly detector: PipeSilenceDetector;

  private constructor(parts: {
    readonly remoteLeg: string;
    readonly logger: Logger;
    readonly transport: MsPipeTransport;
    /** This leg's keepalive stream, and its pipe consumer toward the remote. */
    readonly keepalive: PipeKeepalive;
    readonly keepaliveOut: MsPipeConsumer;
    readonly detector: PipeSilenceDetector;
  }) {
    super();
    const { transport, detector } = parts;
    this.transport = transport;
    this.keepalive = parts.keepalive;
    this.keepaliveOut = parts.keepaliveOut;
    this.detector = detector;
    this.remoteLeg = parts.remoteLeg;
    this.logger = parts.logger.child({ pipe: transport.id, remoteLeg: parts.remoteLeg });
    transport.on('routerclose', () => this.close('router_closed'));
    detector.on('silent', (silentMs) => {
      this.logger.warn({ silentMs }, 'pipe silent: nothing from the remote leg');
      this.emit('silent', silentMs);
    });
    detector.on('heard', () => {
      this.logger.info('pipe heard again');
      this.emit('heard');
    });
    this.logger.info({ endpoint: pipeEndpoint(transport) }, 'pipe created');
  }

  get id(): string {
    return this.transport.id;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get connected(): boolean {
    return this.remoteKeepalive !== undefined && !this.closedFlag;
  }

  /**
   * Whether the remote's keepalive has arrived at least once. A link connected for a few seconds that
   * has not heard its remote has a path problem (a closed port, a wrong announced address).
   */
  get hasHeardRemote(): boolean {
    return this.detector.everHeard;
  }

  get counts(): PipeLinkCounts {
    return {
      pipeTransports: this.closedFlag ? 0 : 1,
      pipeConsumers: this.pipeConsumers.size,
      pipeProducers: this.pipeProducers.size,
    };
  }

  /** Bytes the pipe's transport sent and received on the wire (SRTP, RTCP and keepalive included). */
  async transportBytes(): Promise<{ readonly sent: number; readonly received: number }> {
    const stats = await this.transport.getStats();
    return {
      sent: stats.reduce((sum, s) => sum + s.bytesSent, 0),
      received: stats.reduce((sum, s) => sum + s.bytesReceived, 0),
    };
  }

  /** The remote's producers piped in here, by producer id (the origin's). */
  get pipedIn(): ReadonlyMap<string, MsProducer> {
    return this.pipeProducers;
  }

  /** This leg's producers piped out to the remote: the pipe consumers, by producer id. */
  get pipedOut(): ReadonlyMap<string, MsPipeConsumer> {
    return this.pipeConsumers;
  }

  /** What the remote needs to connect to this side. Carries the SRTP key: send it over TLS, never log it. */
  describe(): PipeLinkDescription {
    this.assertOpen();
    return {
      endpoint: pipeEndpoint(this.transport),
      srtpParameters: this.localSrtp(),
      keepalive: pipedProducerOf(this.keepaliveOut),
    };
  }

  /**
   * Connects to the remote's `describe()`, pipes its keepalive in and starts this side's keepalive and
   * silence detector. The same description again is a no-op (a retried message); a different one is
   * refused, since mediasoup connects a transport once. A failure closes the link (`connect_failed`).
   */
  async connect(remote: PipeLinkDescription): Promise<void> {
    this.assertOpen();
    const description = parse(
      pipeLinkDescriptionSchema,
      remote,
      `pipe description from leg "${this.remoteLeg}"`,
    );
    if (this.connection) {
      if (sameDescription(this.connection.remote, description)) return this.connection.done;
      const { ip, port } = this.connection.remote.endpoint;
      throw new Error(
        `pipe to leg "${this.remoteLeg}" is already connected to ${ip}:${port}; close it and open a new one`,
      );
    }
    const local = this.localSrtp();
    if (description.srtpParameters.cryptoSuite !== local.cryptoSuite) {
      throw new Error(
        `leg "${this.remoteLeg}" offers SRTP ${description.srtpParameters.cryptoSuite} and this leg's pipes ` +
          `use ${local.cryptoSuite}: both legs must run the same mediasoup (3.8 pipes speak ` +
          `AES_CM_128_HMAC_SHA1_80 only, 3.27 pipes AEAD_AES_256_GCM only)`,
      );
    }
    const done = this.connectTo(description).catch((err: Error) => {
      this.logger.warn({ err: err.message }, 'cannot connect the pipe');
      this.close('connect_failed');
      throw err;
    });
    this.connection = { remote: description, done };
    return done;
  }

  /**
   * Pipes a producer of this leg's router to the remote and returns what the remote's `pipeIn` needs.
   * At most one pipe consumer per producer: asking again returns the same parameters (with the paused
   * state of now).
   */
  async pipeOut(producer: MsProducer): Promise<PipedProducer> {
    this.assertOpen();
    const producerId = producer.id;
    this.assertNotClosed(producerId);
    const existing = this.pipeConsumers.get(producerId);
    if (existing) return pipedProducerOf(existing);
    let pending = this.pendingOut.get(producerId);
    if (!pending) {
      pending = this.createPipeConsumer(producerId).finally(() => this.pendingOut.delete(producerId));
      this.pendingOut.set(producerId, pending);
    }
    return pipedProducerOf(await pending);
  }

  /**
   * Creates the pipe producer for a producer the remote piped out, or returns the one that exists (a
   * duplicate never makes a second). A duplicate's `paused` is applied: it is the remote's state when
   * it sent it.
   */
  async pipeIn(params: PipedProducer): Promise<MsProducer> {
    this.assertOpen();
    const piped = parse(pipedProducerSchema, params, `piped producer from leg "${this.remoteLeg}"`);
    const { producerId } = piped;
    this.assertNotClosed(producerId);
    const existing = this.pipeProducers.get(producerId);
    if (existing) {
      await this.requestPaused(producerId, existing, piped.paused);
      return existing;
    }
    const pending = this.pendingIn.get(producerId);
    if (pending) {
      this.pausedWhilePending.set(producerId, piped.paused);
      return pending;
    }
    const created = this.createPipeProducer(piped).finally(() => this.pendingIn.delete(producerId));
    this.pendingIn.set(producerId, created);
    return created;
  }

  /**
   * Pauses or resumes the pipe producer of a remote producer (the remote's `pipeOutPaused`); this
   * leg's consumers of it get `producerpause`/`producerresume`. Idempotent; unknown ids are ignored.
   */
  async setPaused(producerId: string, paused: boolean): Promise<void> {
    const producer = this.pipeProducers.get(producerId);
    if (producer) return this.requestPaused(producerId, producer, paused);
    if (this.pendingIn.has(producerId)) this.pausedWhilePending.set(producerId, paused);
    else this.logger.debug({ producer: producerId, paused }, 'pause of a producer not piped in; ignored');
  }

  /**
   * Ends a producer on this link, both directions: its pipe consumer (piped out) and its pipe producer
   * (piped in), whichever this side holds. Idempotent; the id stays refused on this link afterwards.
   */
  closeProducer(producerId: string): void {
    this.rememberClosed(producerId);
    this.pausedWhilePending.delete(producerId);
    const consumer = this.pipeConsumers.get(producerId);
    if (consumer) {
      this.pipeConsumers.delete(producerId);
      consumer.close();
      this.logger.debug({ producer: producerId }, 'pipe consumer closed');
      this.emit('loadChanged');
    }
    const producer = this.pipeProducers.get(producerId);
    if (producer) {
      this.forgetPipeProducer(producerId);
      producer.close();
    }
  }

  /** Idempotent. Emits `pipeInClosed` for every pipe producer, then `close` once. */
  close(reason: PipeLinkCloseReason = 'closed'): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.detector.stop();
    this.keepalive.close();
    const pipedIn = [...this.pipeProducers.keys()];
    this.pipeProducers.clear();
    this.pipeConsumers.clear();
    this.pausedWhilePending.clear();
    this.requestedPaused.clear();
    // Before the transport closes: this leg's peers hear why a producer went (from the owner) before
    // the worker tells them their consumers of it closed.
    for (const producerId of pipedIn) this.emit('pipeInClosed', producerId, 'link_closed');
    // Closes the pipe consumers and producers in mediasoup, which closes this leg's consumers of them.
    this.transport.close();
    this.logger.info({ reason }, 'pipe closed');
    this.emit('loadChanged');
    this.emit('close', reason);
  }

  private async connectTo(remote: PipeLinkDescription): Promise<void> {
    const { ip, port } = remote.endpoint;
    await this.transport.connect({ ip, port, srtpParameters: remote.srtpParameters });
    const appData: PipeProducerAppData = { remoteLeg: this.remoteLeg, keepalive: true };
    const keepaliveIn = await this.transport.produce({
      id: remote.keepalive.producerId,
      kind: remote.keepalive.kind,
      rtpParameters: remote.keepalive.rtpParameters,
      appData,
    });
    if (this.closedFlag) {
      keepaliveIn.close();
      return;
    }
    keepaliveIn.on('trace', () => this.detector.heard());
    await keepaliveIn.enableTraceEvent(['rtp']);
    if (this.closedFlag) return;
    this.remoteKeepalive = keepaliveIn;
    this.keepalive.start();
    this.detector.start();
    this.logger.info({ remote: { ip, port } }, 'pipe connected');
  }

  private async createPipeConsumer(producerId: string): Promise<MsPipeConsumer> {
    const consumer = await this.transport.consume({ producerId });
    if (this.closedFlag || consumer.closed || this.closedProducerIds.has(producerId)) {
      consumer.close();
      throw new Error(
        `producer "${producerId}" or its pipe to leg "${this.remoteLeg}" closed while piping it`,
      );
    }
    this.pipeConsumers.set(producerId, consumer);
    consumer.on('producerpause', () => this.emit('pipeOutPaused', producerId, true));
    consumer.on('producerresume', () => this.emit('pipeOutPaused', producerId, false));
    consumer.on('producerclose', () => {
      if (!this.forgetPipeConsumer(producerId, consumer)) return;
      this.rememberClosed(producerId);
      this.emit('pipeOutClosed', producerId);
    });
    consumer.on('transportclose', () => this.forgetPipeConsumer(producerId, consumer));
    this.logger.debug({ producer: producerId, kind: consumer.kind }, 'producer piped out');
    this.emit('loadChanged');
    return consumer;
  }

  private async createPipeProducer(piped: PipedProducer): Promise<MsProducer> {
    const { producerId } = piped;
    const appData: PipeProducerAppData = { remoteLeg: this.remoteLeg, keepalive: false };
    const producer = await this.transport.produce({
      id: producerId,
      kind: piped.kind,
      rtpParameters: piped.rtpParameters,
      paused: piped.paused,
      keyFrameRequestDelay: KEY_FRAME_REQUEST_DELAY_MS,
      appData,
    });
    if (this.closedFlag || producer.closed || this.closedProducerIds.has(producerId)) {
      producer.close();
      throw new Error(
        `producer "${producerId}" or its pipe from leg "${this.remoteLeg}" closed while piping it in`,
      );
    }
    this.pipeProducers.set(producerId, producer);
    this.requestedPaused.set(producerId, piped.paused);
    producer.on('transportclose', () => {
      if (this.pipeProducers.get(producerId) === producer) this.forgetPipeProducer(producerId);
    });
    this.logger.debug({ producer: producerId, kind: piped.kind, paused: piped.paused }, 'producer piped in');
    this.emit('loadChanged');
    const paused = this.pausedWhilePending.get(producerId);
    this.pausedWhilePending.delete(producerId);
    if (paused !== undefined) await this.requestPaused(producerId, producer, paused);
    return producer;
  }

  /**
   * Compares with the state last asked for, not `producer.paused`: mediasoup updates that flag only
   * when the worker answers, so a resume right after a pause would look like a no-op and be dropped.
   */
  private requestPaused(producerId: string, producer: MsProducer, paused: boolean): Promise<void> {
    if (this.requestedPaused.get(producerId) === paused || producer.closed) return Promise.resolve();
    this.requestedPaused.set(producerId, paused);
    return paused ? producer.pause() : producer.resume();
  }

  private forgetPipeConsumer(producerId: string, consumer: MsPipeConsumer): boolean {
    if (this.pipeConsumers.get(producerId) !== consumer) return false;
    this.pipeConsumers.delete(producerId);
    this.logger.debug({ producer: producerId }, 'pipe consumer closed');
    this.emit('loadChanged');
    return true;
  }

  private forgetPipeProducer(producerId: string): void {
    this.pipeProducers.delete(producerId);
    this.requestedPaused.delete(producerId);
    this.logger.debug({ producer: producerId }, 'pipe producer closed');
    this.emit('pipeInClosed', producerId, 'producer_closed');
    this.emit('loadChanged');
  }

  private rememberClosed(producerId: string): void {
    this.closedProducerIds.delete(producerId);
    this.closedProducerIds.add(producerId);
    if (this.closedProducerIds.size > MAX_REMEMBERED_CLOSED_PRODUCERS) {
      const oldest = this.closedProducerIds.values().next().value;
      if (oldest !== undefined) this.closedProducerIds.delete(oldest);
    }
  }

  private localSrtp(): SrtpParameters {
    const srtp = this.transport.srtpParameters;
    if (!srtp) throw new Error(`pipe transport "${this.transport.id}" has no SRTP parameters`);
    return { cryptoSuite: srtp.cryptoSuite, keyBase64: srtp.keyBase64 };
  }

  private assertOpen(): void {
    if (this.closedFlag) throw new Error(`pipe "${this.transport.id}" to leg "${this.remoteLeg}" is closed`);
  }

  private assertNotClosed(producerId: string): void {
    if (this.closedProducerIds.has(producerId)) {
      throw new Error(
        `producer "${producerId}" was closed on the pipe to leg "${this.remoteLeg}"; it is not piped again`,
      );
    }
  }
}

function pipedProducerOf(consumer: MsPipeConsumer): PipedProducer {
  return {
    producerId: consumer.producerId,
    kind: consumer.kind,
    rtpParameters: consumer.rtpParameters as PipedProducer['rtpParameters'],
    paused: consumer.producerPaused,
  };
}

function sameDescription(a: PipeLinkDescription, b: PipeLinkDescription): boolean {
  return (
    a.endpoint.ip === b.endpoint.ip &&
    a.endpoint.port === b.endpoint.port &&
    a.srtpParameters.cryptoSuite === b.srtpParameters.cryptoSuite &&
    a.srtpParameters.keyBase64 === b.srtpParameters.keyBase64 &&
    a.keepalive.producerId === b.keepalive.producerId
  );
}

/** Parses what a remote leg sent; the message names the field and never echoes the SRTP key. */
function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new Error(`invalid ${what}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return result.data;
}
