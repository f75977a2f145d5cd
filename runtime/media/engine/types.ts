/**
 * The subset of mediasoup's API this server uses, typed once so that everything above the engine works
 * the same on mediasoup 3.27 (production) and 3.8 (local runs and tests). Both versions satisfy these
 * shapes (typeConformance.ts proves it at compile time); the loader casts where it requires the module.
 *
 * RTP capabilities/parameters and DTLS parameters stay opaque (`MediasoupObject`): they travel between
 * the client and mediasoup unchanged and mediasoup validates them.
 */

export type MediasoupObject = Record<string, unknown>;
export type MediaKind = 'audio' | 'video';

/** Events both versions emit with these names and arguments (a structural view of EventEmitter). */
interface Emitter<Events extends Record<string, unknown[]>> {
  on<E extends keyof Events & string>(event: E, listener: (...args: Events[E]) => void): unknown;
}

export interface RtpCodecCapability {
  readonly kind: MediaKind;
  readonly mimeType: string;
  readonly clockRate: number;
  readonly channels?: number;
  readonly parameters?: Record<string, string | number>;
}

export interface MsWorker extends Emitter<{ died: [Error] }> {
  readonly pid: number;
  readonly closed: boolean;
  close(): void;
  getResourceUsage(): Promise<{ ru_utime: number; ru_stime: number }>;
  createRouter(options: { mediaCodecs: RtpCodecCapability[] }): Promise<MsRouter>;
}

export interface MsRouter {
  readonly id: string;
  readonly closed: boolean;
  readonly rtpCapabilities: unknown;
  close(): void;
  canConsume(args: { producerId: string; rtpCapabilities: MediasoupObject }): boolean;
  /** Options differ between versions; only the engine builds them. */
  createWebRtcTransport(options: Record<string, unknown>): Promise<MsWebRtcTransport>;
  /** Options differ between versions (`listenIp` vs `listenInfo`); only the engine builds them. */
  createPipeTransport(options: Record<string, unknown>): Promise<MsPipeTransport>;
  /** A transport fed from Node: the pipes' keepalive stream comes from one. */
  createDirectTransport(): Promise<MsDirectTransport>;
}

export type DtlsState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';

export interface MsWebRtcTransport extends Emitter<{ dtlsstatechange: [DtlsState]; routerclose: [] }> {
  readonly id: string;
  readonly closed: boolean;
  readonly iceParameters: unknown;
  readonly iceCandidates: unknown[];
  readonly dtlsParameters: unknown;
  close(): void;
  connect(args: { dtlsParameters: MediasoupObject }): Promise<void>;
  restartIce(): Promise<unknown>;
  setMaxIncomingBitrate(bitrate: number): Promise<void>;
  getStats(): Promise<unknown[]>;
  produce(args: {
    kind: MediaKind;
    rtpParameters: MediasoupObject;
    paused?: boolean;
    /** Video: a key frame request within this long of the previous one waits for it (codecs.ts). */
    keyFrameRequestDelay?: number;
    appData?: Record<string, unknown>;
  }): Promise<MsProducer>;
  consume(args: {
    producerId: string;
    rtpCapabilities: MediasoupObject;
    paused?: boolean;
  }): Promise<MsConsumer>;
}

/**
 * `score` carries one entry per RTP stream the producer receives. Both versions create a stream when its
 * first packet arrives and emit `score` right then, so a non-empty score means the producer has carried
 * media (load.ts counts consumers from that moment).
 */
export interface MsProducer extends Emitter<{
  transportclose: [];
  score: [unknown[]];
  trace: [ProducerTrace];
}> {
  readonly id: string;
  readonly kind: MediaKind;
  readonly closed: boolean;
  readonly paused: boolean;
  close(): void;
  pause(): Promise<void>;
  resume(): Promise<void>;
  getStats(): Promise<unknown[]>;
  /** `'rtp'`: one `trace` event per RTP packet received; used on the pipes' keepalive stream only. */
  enableTraceEvent(types: Array<'rtp'>): Promise<void>;
}

/** What the code reads of a `trace` event; both versions carry more. */
export interface ProducerTrace {
  readonly type: string;
}

export interface MsConsumer extends Emitter<{
  transportclose: [];
  producerclose: [];
  producerpause: [];
  producerresume: [];
}> {
  readonly id: string;
  readonly producerId: string;
  readonly kind: MediaKind;
  readonly closed: boolean;
  readonly paused: boolean;
  readonly rtpParameters: unknown;
  close(): void;
  resume(): Promise<void>;
  getStats(): Promise<unknown[]>;
}

/** SRTP keying of a PipeTransport. A secret: it travels over the authenticated control channel only. */
export interface SrtpParameters {
  /** 3.8 pipes use AES_CM_128_HMAC_SHA1_80 only, 3.27 pipes AEAD_AES_256_GCM only. */
  readonly cryptoSuite: string;
  readonly keyBase64: string;
}

/**
 * A PipeTransport's local address: 3.8 names it `localIp`, 3.27 `localAddress` (and keeps `localIp` as
 * a deprecated copy). Both are the announced address when one was given. Read it through `pipeEndpoint`.
 */
export interface PipeTransportTuple {
  readonly localIp?: string;
  readonly localAddress?: string;
  readonly localPort: number;
}

/** Counters of a transport's `getStats()` that both versions report under these names. */
export interface TransportCounters {
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly rtpBytesReceived: number;
  readonly rtpBytesSent: number;
}

/**
 * A PipeTransport: plain RTP/RTCP over one UDP 5-tuple to another router's PipeTransport, with SRTP
 * and RTX when created by the engine. It accepts packets only from the tuple it was connected to.
 */
export interface MsPipeTransport extends Emitter<{ routerclose: [] }> {
  readonly id: string;
  readonly closed: boolean;
  readonly tuple: PipeTransportTuple;
  readonly srtpParameters?: SrtpParameters;
  close(): void;
  /** Once per transport: mediasoup refuses a second call. */
  connect(args: { ip: string; port: number; srtpParameters?: SrtpParameters }): Promise<void>;
  /** A pipe consumer: forwards every stream of the producer, unchanged, with RTX when enabled. */
  consume(args: { producerId: string; appData?: Record<string, unknown> }): Promise<MsPipeConsumer>;
  /**
   * The far side of a pipe consumer: a producer with the consumer's parameters. `id` is optional in
   * mediasoup's type (a random one otherwise); PipeLink always gives the origin producer's id.
   */
  produce(args: {
    id?: string;
    kind: MediaKind;
    rtpParameters: MediasoupObject;
    paused?: boolean;
    keyFrameRequestDelay?: number;
    appData?: Record<string, unknown>;
  }): Promise<MsProducer>;
  getStats(): Promise<TransportCounters[]>;
}

export interface MsPipeConsumer extends MsConsumer {
  /** Whether the consumed producer is paused (a pipe consumer itself is never paused by us). */
  readonly producerPaused: boolean;
}

export interface MsDirectTransport {
  readonly id: string;
  readonly closed: boolean;
  close(): void;
  produce(args: { kind: MediaKind; rtpParameters: MediasoupObject }): Promise<MsDirectProducer>;
}

export interface MsDirectProducer extends MsProducer {
  /** Injects one RTP packet as if the transport had received it. */
  send(rtpPacket: Buffer): void;
}
