/**
 * A real WebRTC peer in Node for media tests: @roamhq/wrtc (libwebrtc) under mediasoup-client's
 * Chrome111 handler, speaking the media server's signaling protocol (runtime/protocol/signaling.ts).
 *
 *   const peer = await TestPeer.join(signalingUrl, mediaToken);
 *   const video = await peer.produceVideo();            // synthetic VP8 from a moving test pattern
 *   const viewer = await TestPeer.join(url, otherToken);
 *   const consumer = await viewer.consume(video.producerId);
 *   await waitFor(async () => (await viewer.consumerStats(consumer)).framesDecoded > 30);
 *   await viewer.leave(); await peer.leave();
 *
 * `SignalingClient` is usable alone for protocol-level tests (raw frames, error codes, notifications).
 * Everything a peer starts (sockets, peer connections, frame timers) stops in `close()`.
 */
import { EventEmitter } from 'node:events';
import { Device, type types as ms } from 'mediasoup-client';
import WebSocket from 'ws';
import type {
  Method,
  NotificationName,
  Notifications,
  ProtocolErrorCode,
  RequestData,
  ResponseData,
  ResponseFrame,
} from '../../runtime/protocol/signaling';

// ---- globals and synthetic media -----------------------------------------------------------------

import {
  installWrtcGlobals,
  SyntheticAudioSource,
  SyntheticVideoSource,
  VideoFrameCounter,
} from '../../scripts/support/syntheticMedia';

export { installWrtcGlobals, SyntheticAudioSource, SyntheticVideoSource, VideoFrameCounter };

// ---- signaling -------------------------------------------------------------------------------------

/** A request the server answered with an error; `serverMessage` is its message verbatim. */
export class SignalingRequestError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    readonly serverMessage: string,
    readonly method: string,
  ) {
    super(`${method} failed (${code}): ${serverMessage}`);
    this.name = 'SignalingRequestError';
  }
}

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

type NotificationListener = <N extends NotificationName>(name: N, data: Notifications[N]) => void;

/** Requests time out so a test fails with a message instead of hanging until jest's timeout. */
const REQUEST_TIMEOUT_MS = 10_000;

/** The client side of the signaling protocol over one WebSocket. */
export class SignalingClient {
  /** Every notification received, in order (tests look back at them). */
  readonly notifications: Array<{ name: NotificationName; data: unknown }> = [];
  /** Frames with `id: null` (rate limiting, unparseable frames). */
  readonly unmatchedErrors: ResponseFrame[] = [];
  readonly closed: Promise<CloseInfo>;
  private readonly pending = new Map<number, (frame: ResponseFrame) => void>();
  private readonly events = new EventEmitter();
  private nextId = 1;
  private closeInfo?: CloseInfo;

  private constructor(private readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const settle of this.pending.values()) {
          settle({ id: null, ok: false, error: { code: 'internal', message: `socket closed (${code})` } });
        }
        this.pending.clear();
        resolve(this.closeInfo);
      });
    });
    socket.on('error', () => {});
    socket.on('message', (raw) => this.onFrame(raw.toString()));
  }

  /** Opens the socket; rejects with the HTTP status when the server refuses the upgrade. */
  static connect(url: string): Promise<SignalingClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.once('open', () => resolve(new SignalingClient(socket)));
      socket.once('unexpected-response', (_req, res) => {
        reject(
          Object.assign(new Error(`upgrade refused with HTTP ${res.statusCode}`), {
            statusCode: res.statusCode,
          }),
        );
        socket.terminate();
      });
      socket.once('error', reject);
    });
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  get closeState(): CloseInfo | undefined {
    return this.closeInfo;
  }

  async request<M extends Method>(method: M, data: RequestData<M>): Promise<ResponseData[M]> {
    const frame = await this.requestFrame({ method, data });
    if (!frame.ok) throw new SignalingRequestError(frame.error.code, frame.error.message, method);
    return frame.data as ResponseData[M];
  }

  /** Sends `{ id, ...fields }` as is (no client-side validation) and resolves with the response frame. */
  requestFrame(fields: Record<string, unknown>): Promise<ResponseFrame> {
    const id = this.nextId++;
    return this.sendRaw(JSON.stringify({ id, ...fields }), id);
  }

  /** Sends any text and waits for the response carrying `expectId` (or an `id: null` error). */
  sendRaw(text: string, expectId: number | null = null): Promise<ResponseFrame> {
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new Error('signaling socket is not open'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new Error(`no response to frame ${expectId ?? '(null id)'} in ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      // Frames without a readable id are answered with id null; they wait under a negative key.
      const key = expectId ?? -this.nextId++;
      this.pending.set(key, (frame) => {
        clearTimeout(timer);
        resolve(frame);
      });
      this.socket.send(text);
    });
  }

  onNotification(listener: NotificationListener): void {
    this.events.on('notification', listener);
  }

  /** Resolves with the first notification `name` (already received or future) that matches. */
  waitForNotification<N extends NotificationName>(
    name: N,
    match: (data: Notifications[N]) => boolean = () => true,
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<Notifications[N]> {
    const seen = this.notifications.find((n) => n.name === name && match(n.data as Notifications[N]));
    if (seen) return Promise.resolve(seen.data as Notifications[N]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.events.off('notification', listener);
        reject(new Error(`no "${name}" notification in ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (n: NotificationName, data: unknown) => {
        if (n !== name || !match(data as Notifications[N])) return;
        clearTimeout(timer);
        this.events.off('notification', listener);
        resolve(data as Notifications[N]);
      };
      this.events.on('notification', listener);
    });
  }

  close(code = 1000): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close(code);
    }
  }

  /** Drops the connection without a close handshake (a client that vanished). */
  terminate(): void {
    this.socket.terminate();
  }

  private onFrame(text: string): void {
    const frame = JSON.parse(text) as ResponseFrame | { notification: NotificationName; data: unknown };
    if ('notification' in frame) {
      this.notifications.push({ name: frame.notification, data: frame.data });
      this.events.emit('notification', frame.notification, frame.data);
      return;
    }
    if (frame.id === null) {
      this.unmatchedErrors.push(frame);
      // Settle the oldest request waiting for an id-less answer, if any.
      const key = [...this.pending.keys()].find((k) => k < 0);
      if (key !== undefined) {
        this.pending.get(key)!(frame);
        this.pending.delete(key);
      }
      return;
    }
    const settle = this.pending.get(frame.id);
    if (settle) {
      this.pending.delete(frame.id);
      settle(frame);
    }
  }
}

// ---- the peer ------------------------------------------------------------------------------------

export interface InboundStats {
  readonly bytesReceived: number;
  readonly packetsReceived: number;
  /** Video only; 0 for audio. */
  readonly framesDecoded: number;
}

export interface ProducedTrack {
  readonly producerId: string;
  readonly producer: ms.Producer;
}

export interface ConsumedTrack {
  readonly consumerId: string;
  readonly producerId: string;
  readonly consumer: ms.Consumer;
  /** Video consumers count decoded frames as they arrive. */
  readonly frameCounter?: VideoFrameCounter;
}

export class TestPeer {
  private sendTransport?: ms.Transport;
  private recvTransport?: ms.Transport;
  private readonly sources: Array<{ stop(): void }> = [];
  private closedFlag = false;

  private constructor(
    readonly signaling: SignalingClient,
    readonly device: Device,
    readonly peerId: string,
  ) {}

  /** Connects to `signalingUrl`, joins with `mediaToken` and loads the device with the router's capabilities. */
  static async join(signalingUrl: string, mediaToken: string, displayName?: string): Promise<TestPeer> {
    installWrtcGlobals();
    const signaling = await SignalingClient.connect(signalingUrl);
    try {
      const joined = await signaling.request('join', {
        token: mediaToken,
        ...(displayName ? { displayName } : {}),
      });
      const device = new Device({ handlerName: 'Chrome111' });
      await device.load({ routerRtpCapabilities: joined.routerRtpCapabilities as ms.RtpCapabilities });
      return new TestPeer(signaling, device, joined.peerId);
    } catch (err) {
      signaling.close();
      throw err;
    }
  }

  async produceVideo(): Promise<ProducedTrack> {
    const source = new SyntheticVideoSource();
    this.sources.push(source);
    return this.produce(source.track, 'synthetic');
  }

  async produceAudio(): Promise<ProducedTrack> {
    const source = new SyntheticAudioSource();
    this.sources.push(source);
    return this.produce(source.track, 'synthetic');
  }

  /** Consumes a producer of another peer and resumes it once the track is wired, as a real client does. */
  async consume(producerId: string): Promise<ConsumedTrack> {
    const transport = await this.ensureRecvTransport();
    const answer = await this.signaling.request('consume', {
      transportId: transport.id,
      producerId,
      rtpCapabilities: this.device.rtpCapabilities as unknown as Record<string, unknown>,
    });
    const consumer = await transport.consume({
      id: answer.consumerId,
      producerId: answer.producerId,
      kind: answer.kind,
      rtpParameters: answer.rtpParameters as ms.RtpParameters,
    });
    const frameCounter = consumer.kind === 'video' ? new VideoFrameCounter(consumer.track) : undefined;
    if (frameCounter) this.sources.push(frameCounter);
    await this.signaling.request('resumeConsumer', { consumerId: answer.consumerId });
    return { consumerId: answer.consumerId, producerId, consumer, frameCounter };
  }

  /**
   * Inbound RTP stats of a consumer. wrtc has no RTCRtpReceiver.getStats(), so this reads the recv
   * transport's peer connection report and picks the consumer's stream by SSRC.
   */
  async consumerStats(consumed: ConsumedTrack): Promise<InboundStats> {
    const ssrc = consumed.consumer.rtpParameters.encodings?.[0]?.ssrc;
    const report = await this.recvTransport!.getStats();
    let stats: InboundStats = { bytesReceived: 0, packetsReceived: 0, framesDecoded: 0 };
    report.forEach(
      (entry: {
        type: string;
        ssrc?: number;
        bytesReceived?: number;
        packetsReceived?: number;
        framesDecoded?: number;
      }) => {
        if (entry.type !== 'inbound-rtp' || entry.ssrc !== ssrc) return;
        stats = {
          bytesReceived: entry.bytesReceived ?? 0,
          packetsReceived: entry.packetsReceived ?? 0,
          framesDecoded: entry.framesDecoded ?? 0,
        };
      },
    );
    return stats;
  }

  /** Sends `leave`, then closes everything (idempotent; a closed socket is not an error here). */
  async leave(): Promise<void> {
    if (this.closedFlag) return;
    if (this.signaling.isOpen) await this.signaling.request('leave', {}).catch(() => undefined);
    this.close();
  }

  /** Stops media and transports and closes the socket without `leave` (the server sees a disconnect). */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const source of this.sources) source.stop();
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.signaling.close();
  }

  private async produce(track: MediaStreamTrack, source: 'synthetic'): Promise<ProducedTrack> {
    const transport = await this.ensureSendTransport();
    const producer = await transport.produce({ track, appData: { source } });
    return { producerId: producer.id, producer };
  }

  private async ensureSendTransport(): Promise<ms.Transport> {
    if (this.sendTransport) return this.sendTransport;
    const info = await this.signaling.request('createWebRtcTransport', { direction: 'send' });
    const transport = this.device.createSendTransport(transportOptions(info));
    this.wireConnect(transport);
    transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
      this.signaling
        .request('produce', {
          transportId: transport.id,
          kind,
          rtpParameters: rtpParameters as unknown as Record<string, unknown>,
          appData: appData as { source?: 'synthetic' },
        })
        .then(({ producerId }) => callback({ id: producerId }), errback);
    });
    this.sendTransport = transport;
    return transport;
  }

  private async ensureRecvTransport(): Promise<ms.Transport> {
    if (this.recvTransport) return this.recvTransport;
    const info = await this.signaling.request('createWebRtcTransport', { direction: 'recv' });
    const transport = this.device.createRecvTransport(transportOptions(info));
    this.wireConnect(transport);
    this.recvTransport = transport;
    return transport;
  }

  private wireConnect(transport: ms.Transport): void {
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.signaling
        .request('connectWebRtcTransport', {
          transportId: transport.id,
          dtlsParameters: dtlsParameters as unknown as Record<string, unknown>,
        })
        .then(() => callback(), errback);
    });
  }
}

function transportOptions(info: ResponseData['createWebRtcTransport']): ms.TransportOptions {
  return {
    id: info.id,
    iceParameters: info.iceParameters as ms.IceParameters,
    iceCandidates: info.iceCandidates as ms.IceCandidate[],
    dtlsParameters: info.dtlsParameters as ms.DtlsParameters,
  };
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. Bounded by its deadline. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
