/**
 * The control channel between this leg of a room and one other leg, and the pipe it sets up: one
 * WebSocket (through the asked leg's LB, see Cascade) and one PipeLink.
 *
 * Policy:
 *   - The asking leg (`initiator`) creates its PipeLink when the socket opens and sends `pipeOpen`;
 *     the asked leg refuses a pipe beyond its capacity (`pipeClose`), else creates its link, connects
 *     and answers its own `pipeOpen`. Once connected, each side sends `producers` (all of its leg's
 *     producers, piped out) and then one message per producer added, paused or closed.
 *   - `producers` is the whole set: a pipe producer from the other leg that the set lacks is closed.
 *     Producers keep their origin id on every leg and a link pipes an id at most once, so a replay, a
 *     retried message or a healed partition never makes a duplicate.
 *   - Messages are handled one at a time, in order (each may await mediasoup). Anything malformed
 *     closes the channel: the other side is a media server of ours, not a client to be patient with.
 *   - Liveness: heartbeats every CASCADE_HEARTBEAT_MS; nothing heard for CASCADE_DEAD_AFTER_MS, or the
 *     pipe's keepalive silent (PipeLink `silent`), or the socket closed, and the other leg is gone:
 *     the link closes, its pipe producers close, this leg's peers see the other leg's peers leave.
 *     Everything else of the room goes on. Close is idempotent and final; the Cascade opens a new
 *     channel when the other leg is live again.
 */
import { EventEmitter } from 'node:events';
import WebSocket, { type RawData } from 'ws';
import {
  CASCADE_DEAD_AFTER_MS,
  CASCADE_HEARTBEAT_MS,
  cascadeMessageSchema,
  type CascadeMessage,
  type CascadeProducer,
} from '../protocol/pipes';
import type { MsProducer } from './engine';
import type { PortRange } from './engine';
import type { Logger } from './logger';
import type { Peer } from './Peer';
import { PipeLink, type PipeLinkCloseReason } from './PipeLink';
import type { SilenceOptions } from './PipeSilenceDetector';
import type { Room } from './Room';

/** RFC 6455's normal closure: the close frame's reason (after a `pipeClose` message, for some) says why. */
const WS_NORMAL_CLOSURE = 1000;

export type CascadeRole = 'initiator' | 'responder';

export type CascadeCloseReason =
  | 'closed'
  | 'remote_closed'
  | 'remote_gone'
  | 'remote_silent'
  | 'socket_closed'
  | 'protocol'
  | 'full'
  | 'pipe_failed';

type ChannelEvents = { close: [reason: CascadeCloseReason] };

export interface CascadeChannelOptions {
  readonly room: Room;
  readonly role: CascadeRole;
  readonly remoteRegion: string;
  readonly remoteServerId: string;
  /** Open (responder) or connecting (initiator). */
  readonly socket: WebSocket;
  readonly portRange: PortRange;
  /** Whether this server may take another pipe (load below capacity). Asked by the responder. */
  readonly hasCapacity: () => boolean;
  readonly logger: Logger;
  readonly silence?: SilenceOptions;
}

export class CascadeChannel extends EventEmitter<ChannelEvents> {
  readonly room: Room;
  readonly role: CascadeRole;
  readonly remoteRegion: string;
  readonly remoteServerId: string;
  readonly logger: Logger;
  private readonly socket: WebSocket;
  private readonly opts: CascadeChannelOptions;
  private link: PipeLink | undefined;
  private queue: Promise<void> = Promise.resolve();
  private lastHeardAt = Date.now();
  private readonly heartbeatTimer: NodeJS.Timeout;
  private connected = false;
  private closedFlag = false;
  private readonly onLocalProducer = (peer: Peer, producer: MsProducer) =>
    this.enqueue(() => this.sendProducerAdded(peer, producer));
  private readonly onLocalProducerClosed = (producerId: string) => this.pipeOutClosed(producerId);

  constructor(opts: CascadeChannelOptions) {
    super();
    this.opts = opts;
    this.room = opts.room;
    this.role = opts.role;
    this.remoteRegion = opts.remoteRegion;
    this.remoteServerId = opts.remoteServerId;
    this.socket = opts.socket;
    this.logger = opts.room.logger.child({
      leg: opts.remoteRegion,
      legServer: opts.remoteServerId,
      role: opts.role,
    });
    this.socket.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    this.socket.on('error', (err) => this.logger.debug({ err: err.message }, 'control socket error'));
    this.socket.on('close', () => this.close('socket_closed'));
    this.socket.on('unexpected-response', (_req, res) => {
      this.logger.info({ status: res.statusCode }, 'control channel refused');
      this.close('socket_closed');
    });
    this.room.on('localProducer', this.onLocalProducer);
    this.room.on('localProducerClosed', this.onLocalProducerClosed);
    this.heartbeatTimer = setInterval(() => this.tick(), CASCADE_HEARTBEAT_MS);
    if (opts.role === 'initiator') {
      this.socket.once('open', () => {
        this.lastHeardAt = Date.now();
        this.enqueue(() => this.openPipe());
      });
    }
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Whether the pipe is connected and both sides exchanged their producers. */
  get ready(): boolean {
    return this.connected && !this.closedFlag;
  }

  get pipeLink(): PipeLink | undefined {
    return this.link;
  }

  /** Idempotent: tells the other side (when the socket is still open), closes the link and the socket. */
  close(reason: CascadeCloseReason = 'closed'): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    clearInterval(this.heartbeatTimer);
    this.room.off('localProducer', this.onLocalProducer);
    this.room.off('localProducerClosed', this.onLocalProducerClosed);
    if (reason === 'closed' || reason === 'full') this.send({ type: 'pipeClose', reason });
    const link = this.link;
    if (link) {
      if (this.room.links.get(this.remoteRegion) === link) this.room.links.delete(this.remoteRegion);
      link.close(linkReason(reason));
    }
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(WS_NORMAL_CLOSURE, reason);
    else this.socket.terminate();
    this.logger.info({ reason }, 'cascade channel closed');
    this.emit('close', reason);
  }

  private tick(): void {
    if (this.closedFlag) return;
    const silentMs = Date.now() - this.lastHeardAt;
    // The initiator's socket may still be connecting; the Cascade bounds that with its own timeout.
    if (this.socket.readyState === WebSocket.OPEN && silentMs > CASCADE_DEAD_AFTER_MS) {
      this.logger.warn({ silentMs }, 'control channel silent: the other leg is gone');
      this.close('remote_gone');
      return;
    }
    this.send({ type: 'heartbeat' });
  }

  private send(message: CascadeMessage): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify(message));
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue
      .then(() => (this.closedFlag ? undefined : task()))
      .catch((err: Error) => {
        if (this.closedFlag) return;
        this.logger.warn({ err: err.message }, 'cascade step failed; closing the channel');
        this.close('pipe_failed');
      });
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    if (this.closedFlag) return;
    this.lastHeardAt = Date.now();
    let message: CascadeMessage;
    try {
      if (isBinary) throw new Error('binary frame');
      const parsed = cascadeMessageSchema.safeParse(JSON.parse(rawText(data)));
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new Error(`${issue.path.join('.') || '(root)'}: ${issue.message}`);
      }
      message = parsed.data;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'malformed control message');
      this.close('protocol');
      return;
    }
    if (message.type === 'heartbeat') return;
    if (message.type === 'pipeClose') {
      this.logger.info({ remoteReason: message.reason }, 'the other leg closed the pipe');
      this.close('remote_closed');
      return;
    }
    this.enqueue(() => this.handle(message));
  }

  private async handle(message: Exclude<CascadeMessage, { type: 'heartbeat' | 'pipeClose' }>): Promise<void> {
    switch (message.type) {
      case 'pipeOpen':
        return this.role === 'responder'
          ? this.answerPipe(message.description)
          : this.connectPipe(message.description);
      case 'producers': {
        const link = this.requireLink();
        const listed = new Set(message.producers.map((p) => p.piped.producerId));
        for (const producerId of [...link.pipedIn.keys()])
          if (!listed.has(producerId)) link.closeProducer(producerId);
        for (const producer of message.producers) await this.pipeIn(producer);
        return;
      }
      case 'producerAdded':
        return this.pipeIn(message.producer);
      case 'pipePaused':
        await this.requireLink().setPaused(message.producerId, message.paused);
        this.room.remotePaused(message.producerId, message.paused);
        return;
      case 'pipeClosed':
        this.requireLink().closeProducer(message.producerId);
        return;
    }
  }

  private async openPipe(): Promise<void> {
    const link = await this.createLink();
    this.send({ type: 'pipeOpen', description: link.describe() });
  }

  private async answerPipe(description: Parameters<PipeLink['connect']>[0]): Promise<void> {
    if (this.link) throw new Error('a second pipeOpen on one control channel');
    if (!this.opts.hasCapacity()) {
      this.logger.warn('refusing a pipe: this media server is at capacity');
      this.close('full');
      return;
    }
    const link = await this.createLink();
    await link.connect(description);
    this.send({ type: 'pipeOpen', description: link.describe() });
    await this.sendProducers();
  }

  private async connectPipe(description: Parameters<PipeLink['connect']>[0]): Promise<void> {
    await this.requireLink().connect(description);
    await this.sendProducers();
  }

  private async createLink(): Promise<PipeLink> {
    const link = await PipeLink.create({
      worker: this.room.worker,
      router: this.room.router,
      portRange: this.opts.portRange,
      remoteLeg: this.remoteRegion,
      logger: this.logger,
      ...(this.opts.silence && { silence: this.opts.silence }),
    });
    if (this.closedFlag || this.room.closed) {
      link.close('closed');
      throw new Error('the channel or the room closed while the pipe was created');
    }
    // A channel replacing an older one to the same leg (a reconnect) takes its place.
    const previous = this.room.links.get(this.remoteRegion);
    if (previous && previous !== link) previous.close('closed');
    this.link = link;
    this.room.links.set(this.remoteRegion, link);
    link.on('pipeOutPaused', (producerId, paused) => this.send({ type: 'pipePaused', producerId, paused }));
    link.on('pipeOutClosed', (producerId) => this.send({ type: 'pipeClosed', producerId }));
    link.on('pipeInClosed', (producerId, cause) =>
      this.room.removeRemoteProducer(producerId, cause === 'link_closed' ? 'leg_lost' : 'closed'),
    );
    link.on('loadChanged', () => this.room.emit('loadChanged'));
    // Paused media or not, the keepalive flows: silence is a dead or blackholed path.
    link.on('silent', () => this.close('remote_silent'));
    link.on('close', () => this.close('pipe_failed'));
    return link;
  }

  /** Every producer of this leg's peers, piped out, as one `producers` message. */
  private async sendProducers(): Promise<void> {
    const link = this.requireLink();
    const producers: CascadeProducer[] = [];
    for (const peer of [...this.room.peers.values()]) {
      for (const producer of [...peer.producers.values()]) {
        if (producer.closed) continue;
        try {
          producers.push({ piped: await link.pipeOut(producer), peerId: peer.id, identity: peer.identity });
        } catch (err) {
          // Closed meanwhile: the other leg never needs it.
          this.logger.debug({ producer: producer.id, err: (err as Error).message }, 'producer not piped');
        }
      }
    }
    this.send({ type: 'producers', producers });
    this.connected = true;
    this.logger.info({ producers: producers.length }, 'cascade channel connected');
  }

  private async sendProducerAdded(peer: Peer, producer: MsProducer): Promise<void> {
    // Before the pipe connects, `producers` will carry it.
    if (!this.connected || !this.link || producer.closed) return;
    try {
      const piped = await this.link.pipeOut(producer);
      this.send({ type: 'producerAdded', producer: { piped, peerId: peer.id, identity: peer.identity } });
    } catch (err) {
      this.logger.debug({ producer: producer.id, err: (err as Error).message }, 'producer not piped');
    }
  }

  /**
   * A producer of this leg closed. Told now, not when the worker reports the pipe consumer's
   * `producerclose`: a peer that leaves as the last of its leg closes the room, and with it this
   * channel, before that report, and the other leg would take a peer that left for a lost leg.
   */
  private pipeOutClosed(producerId: string): void {
    const link = this.link;
    if (!link?.pipedOut.has(producerId)) {
      // Not piped (yet): a pipeOut in flight for it is refused from now on.
      link?.closeProducer(producerId);
      return;
    }
    link.closeProducer(producerId);
    this.send({ type: 'pipeClosed', producerId });
  }

  private async pipeIn(remote: CascadeProducer): Promise<void> {
    const link = this.requireLink();
    let producer: MsProducer;
    try {
      producer = await link.pipeIn(remote.piped);
    } catch (err) {
      // Closed on this link already (a late message): nothing to add.
      this.logger.debug({ producer: remote.piped.producerId, err: (err as Error).message }, 'not piped in');
      return;
    }
    if (producer.closed || this.closedFlag) return;
    this.room.addRemoteProducer({
      producer,
      peerId: remote.peerId,
      identity: remote.identity,
      region: this.remoteRegion,
    });
  }

  private requireLink(): PipeLink {
    if (!this.link) throw new Error(`no pipe to leg "${this.remoteRegion}" yet (pipeOpen first)`);
    return this.link;
  }
}

function linkReason(reason: CascadeCloseReason): PipeLinkCloseReason {
  return reason === 'closed' || reason === 'full' || reason === 'remote_closed' ? 'closed' : 'remote_gone';
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}
